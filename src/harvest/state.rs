//! What the engine knows about each device: status, counters, latest values and history.

use std::collections::BTreeMap;
use std::fmt;
use std::string::String;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use super::config::DeviceConfig;
use crate::point::{PlanConfig, PointValue, ReadPlan, Table};

/// How good a value is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Quality {
    /// Read in the device's latest poll.
    Good,
    /// Read earlier; the polls since failed or were not made (backing off, disabled,
    /// disconnected). The value is the last one read, with its own timestamp.
    Stale,
    /// No usable value: the read failed (the reason says how) or the registers did not decode.
    Bad(Arc<str>),
}

impl Quality {
    /// `"good"`, `"stale"` or `"bad"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Stale => "stale",
            Self::Bad(_) => "bad",
        }
    }
}

/// One recorded reading of one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The device's name.
    pub device: Arc<str>,
    /// The point's name.
    pub point: Arc<str>,
    /// The value, for a [`Quality::Good`] sample.
    pub value: Option<PointValue>,
    /// [`Quality::Good`] or [`Quality::Bad`] (a sample is never stale when recorded).
    pub quality: Quality,
    /// When the read that produced it was answered (or failed).
    pub timestamp: SystemTime,
    /// Number of the sample among this point's samples, from 1, without gaps: a consumer that
    /// sees a jump has missed samples.
    pub sequence: u64,
}

/// What a device is doing, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Added and enabled, not polled yet (or reconnected by the operator).
    Connecting,
    /// The latest poll read every point.
    Connected,
    /// The device answers but the latest poll had failures of its own (an exception response,
    /// a read that did not decode); polling goes on at the normal interval.
    Error {
        /// The first error of that poll.
        error: String,
        /// When it happened.
        at: SystemTime,
    },
    /// The device (or its link) did not answer; it is left alone until `until`.
    BackingOff {
        /// The next attempt.
        until: SystemTime,
        /// Why.
        error: String,
        /// When it happened.
        at: SystemTime,
        /// Failed attempts in a row.
        failures: u32,
    },
    /// Taken off the link by the operator ([`Engine::disconnect`](super::Engine::disconnect)).
    Disconnected,
    /// Disabled by the operator or by its configuration; not polled, not written.
    Disabled,
}

impl Status {
    /// A short lowercase name: `connecting`, `connected`, `error`, `backing_off`,
    /// `disconnected`, `disabled`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Error { .. } => "error",
            Self::BackingOff { .. } => "backing_off",
            Self::Disconnected => "disconnected",
            Self::Disabled => "disabled",
        }
    }
}

/// Upper bounds of the round-trip histogram's buckets, in microseconds (a last bucket holds
/// everything slower).
pub const RTT_BUCKETS_MICROS: [u64; 13] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    2_000_000, 5_000_000,
];

/// A fixed-bucket histogram of durations (round trips, poll lateness): bounded memory, the
/// shape Prometheus histograms export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; RTT_BUCKETS_MICROS.len() + 1],
    sum: Duration,
    count: u64,
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = RTT_BUCKETS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(RTT_BUCKETS_MICROS.len());
        if let Some(count) = self.counts.get_mut(bucket) {
            *count = count.saturating_add(1);
        }
        self.sum = self.sum.saturating_add(duration);
        self.count = self.count.saturating_add(1);
    }

    /// Durations recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum.
    #[must_use]
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// Their mean, once one was recorded.
    #[must_use]
    pub fn mean(&self) -> Option<Duration> {
        let count = u32::try_from(self.count).unwrap_or(u32::MAX);
        (count > 0).then(|| self.sum / count)
    }

    /// `(upper bound, durations at or below it)` for each bound of [`RTT_BUCKETS_MICROS`],
    /// cumulative as Prometheus wants; the total is [`count`](Self::count).
    pub fn cumulative(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        let mut total = 0u64;
        RTT_BUCKETS_MICROS
            .iter()
            .zip(self.counts.iter())
            .map(move |(&bound, &count)| {
                total = total.saturating_add(count);
                (Duration::from_micros(bound), total)
            })
    }
}

/// What a device's traffic has been since it was added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Polls made (probes of a backing-off device included).
    pub polls: u64,
    /// Requests sent (one per planned read or write; the client's retries are counted in
    /// [`retries`](Self::retries)).
    pub requests: u64,
    /// Responses received, exception responses included.
    pub responses: u64,
    /// Exception responses, by exception code.
    pub exceptions: BTreeMap<u8, u64>,
    /// Requests that got no response after every attempt.
    pub timeouts: u64,
    /// Transmissions repeated by the client after a timeout.
    pub retries: u64,
    /// Responses that did not fit their request, or data that did not fit the plan.
    pub invalid_responses: u64,
    /// Times the device's link was opened again after it had been up.
    pub reconnects: u64,
    /// Times the read plan was rebuilt around holes the device revealed.
    pub plan_rebuilds: u64,
    /// Round trip of the latest answered request.
    pub last_rtt: Option<Duration>,
    /// Round trips of answered requests.
    pub rtt: Histogram,
    /// How late polls started against their schedule.
    pub lateness: Histogram,
}

impl Counters {
    /// Mean round trip of answered requests.
    #[must_use]
    pub fn mean_rtt(&self) -> Option<Duration> {
        self.rtt.mean()
    }
}

/// One planned request of a device, for people: which points a read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedReadView {
    /// The table read.
    pub table: Table,
    /// First (0-based wire) address.
    pub address: u16,
    /// Registers or bits read.
    pub quantity: u16,
    /// The points it covers, by name.
    pub points: Vec<String>,
}

/// A device's read plan, explained: the requests its points became, and what the engine
/// learned about the device's holes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanView {
    /// The requests of one poll, in order.
    pub reads: Vec<PlannedReadView>,
    /// Addresses never read (configured, or learned from exception 02).
    pub forbidden: Vec<(Table, u16)>,
    /// Addresses no read runs into (learned from exception 02 on adjacent points).
    pub boundaries: Vec<(Table, u16)>,
}

impl PlanView {
    pub(super) fn new(plan: &ReadPlan, config: &PlanConfig) -> Self {
        let reads = plan
            .reads()
            .iter()
            .enumerate()
            .map(|(index, read)| PlannedReadView {
                table: read.table,
                address: read.address,
                quantity: read.quantity,
                points: plan
                    .points_of(index)
                    .map(|(point, _)| point.name.clone())
                    .collect(),
            })
            .collect();
        Self {
            reads,
            forbidden: config.defaults.forbidden.iter().copied().collect(),
            boundaries: config.defaults.boundaries.iter().copied().collect(),
        }
    }
}

impl fmt::Display for PlanView {
    /// One line per request: `FC 03 holding 0..=9 (10): a, b, c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, read) in self.reads.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            let function = match read.table {
                Table::Coils => 1,
                Table::DiscreteInputs => 2,
                Table::HoldingRegisters => 3,
                Table::InputRegisters => 4,
            };
            let last = u32::from(read.address) + u32::from(read.quantity.saturating_sub(1));
            write!(
                f,
                "FC {function:02} {} {}..={last} ({}): {}",
                table_name(read.table),
                read.address,
                read.quantity,
                read.points.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The table's name in configurations and the API.
#[must_use]
pub fn table_name(table: Table) -> &'static str {
    match table {
        Table::Coils => "coils",
        Table::DiscreteInputs => "discrete_inputs",
        Table::InputRegisters => "input_registers",
        Table::HoldingRegisters => "holding_registers",
    }
}

/// One point's latest state, from [`Engine::device`](super::Engine::device).
#[derive(Debug, Clone, PartialEq)]
pub struct PointSnapshot {
    /// The point's name.
    pub name: Arc<str>,
    /// The latest value read, kept across failed polls (see [`quality`](Self::quality)).
    pub value: Option<PointValue>,
    /// Its quality now.
    pub quality: Quality,
    /// When [`value`](Self::value) was read.
    pub timestamp: Option<SystemTime>,
    /// Sequence number of the point's latest sample (0 before the first).
    pub sequence: u64,
}

/// Everything the engine knows about a device at one moment, from
/// [`Engine::device`](super::Engine::device) or [`Engine::devices`](super::Engine::devices).
#[derive(Debug, Clone)]
pub struct DeviceSnapshot {
    /// The device's configuration, as added.
    pub config: Arc<DeviceConfig>,
    /// Its status.
    pub status: Status,
    /// Its counters.
    pub counters: Counters,
    /// When its latest poll ended.
    pub last_poll: Option<SystemTime>,
    /// Each point's latest state, in the order of the device's point map.
    pub points: Vec<PointSnapshot>,
    /// The read plan, explained.
    pub plan: PlanView,
}

/// One entry of a point's history ring: 32 bytes. The sequence number is implicit (entries
/// are consecutive samples) and the time is kept as microseconds since the Unix epoch.
#[derive(Debug, Clone)]
struct Entry {
    /// The value, or why there is none (a `Result` is the smallest shape for both).
    reading: Result<PointValue, Arc<str>>,
    micros: u64,
}

impl Entry {
    /// What an unwritten slot holds: no heap, so filling a ring costs only its own memory.
    const UNUSED: Self = Self {
        reading: Ok(PointValue::Bool(false)),
        micros: 0,
    };
}

/// A point's history ring. Its whole length is allocated and written at the first sample, so
/// a service's memory is set by its configuration (points × history length) from the first
/// poll on, rather than climbing until every ring is full: a machine too small for the
/// configuration shows it at start, not hours later.
#[derive(Debug, Default)]
struct Ring {
    entries: Vec<Entry>,
    /// Index of the oldest entry.
    head: usize,
    len: usize,
}

impl Ring {
    fn push(&mut self, capacity: usize, entry: Entry) {
        if self.entries.is_empty() {
            self.entries = std::vec![Entry::UNUSED; capacity.max(1)];
        }
        let capacity = self.entries.len();
        let slot = (self.head + self.len) % capacity;
        if let Some(place) = self.entries.get_mut(slot) {
            *place = entry;
        }
        if self.len == capacity {
            self.head = (self.head + 1) % capacity;
        } else {
            self.len += 1;
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The entries, oldest first.
    fn iter(&self) -> impl Iterator<Item = &Entry> {
        let capacity = self.entries.len().max(1);
        (0..self.len).filter_map(move |i| self.entries.get((self.head + i) % capacity))
    }
}

/// A point's state inside the engine.
#[derive(Debug)]
pub(super) struct PointState {
    name: Arc<str>,
    latest: Option<(PointValue, SystemTime)>,
    quality: Quality,
    /// The newest sample's sequence number (0 before the first).
    sequence: u64,
    history: Ring,
}

impl PointState {
    fn history_push(
        &mut self,
        history_len: usize,
        reading: Result<PointValue, Arc<str>>,
        timestamp: SystemTime,
    ) {
        let micros = timestamp.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        });
        self.history.push(history_len, Entry { reading, micros });
    }
}

/// A device's state, shared between its link's worker (the writer) and readers.
#[derive(Debug)]
pub(super) struct DeviceState {
    pub(super) status: Status,
    pub(super) counters: Counters,
    pub(super) last_poll: Option<SystemTime>,
    pub(super) plan: PlanView,
    /// Samples recorded but not yet handed to subscribers.
    pub(super) pending: Vec<Sample>,
    points: Vec<PointState>,
    history_len: usize,
}

impl DeviceState {
    pub(super) fn new(config: &DeviceConfig, plan: PlanView) -> Self {
        let history_len = config.history.max(1);
        Self {
            status: if config.enabled {
                Status::Connecting
            } else {
                Status::Disabled
            },
            counters: Counters::default(),
            last_poll: None,
            plan,
            pending: Vec::new(),
            points: config
                .points
                .points()
                .iter()
                .map(|point| PointState {
                    name: point.name.as_str().into(),
                    latest: None,
                    quality: Quality::Bad("not read yet".into()),
                    sequence: 0,
                    // Allocated at the first sample: a device that is never read costs no ring.
                    history: Ring::default(),
                })
                .collect(),
            history_len,
        }
    }

    /// Records a sample for point `index`; returns it, for subscribers.
    pub(super) fn record(
        &mut self,
        device: &Arc<str>,
        index: usize,
        value: Result<PointValue, Arc<str>>,
        timestamp: SystemTime,
    ) -> Option<Sample> {
        let history_len = self.history_len;
        let point = self.points.get_mut(index)?;
        point.sequence = point.sequence.saturating_add(1);
        point.history_push(history_len, value.clone(), timestamp);
        let (value, quality) = match value {
            Ok(value) => {
                point.latest = Some((value.clone(), timestamp));
                point.quality = Quality::Good;
                (Some(value), Quality::Good)
            }
            Err(reason) => {
                let quality = Quality::Bad(reason);
                point.quality = if point.latest.is_some() {
                    Quality::Stale
                } else {
                    quality.clone()
                };
                (None, quality)
            }
        };
        Some(Sample {
            device: Arc::clone(device),
            point: Arc::clone(&point.name),
            value,
            quality,
            timestamp,
            sequence: point.sequence,
        })
    }

    /// Marks every good value stale (the device is no longer being read).
    pub(super) fn mark_stale(&mut self) {
        for point in &mut self.points {
            if point.latest.is_some() {
                point.quality = Quality::Stale;
            }
        }
    }

    /// The latest `limit` samples of point `index`, oldest first.
    pub(super) fn history(&self, device: &Arc<str>, index: usize, limit: usize) -> Vec<Sample> {
        let Some(point) = self.points.get(index) else {
            return Vec::new();
        };
        let len = point.history.len();
        let skip = len.saturating_sub(limit);
        // Entries are consecutive samples ending with the newest.
        let first_sequence = point
            .sequence
            .saturating_sub(u64::try_from(len).unwrap_or(0))
            + 1;
        point
            .history
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(age, entry)| Sample {
                device: Arc::clone(device),
                point: Arc::clone(&point.name),
                value: entry.reading.as_ref().ok().cloned(),
                quality: match &entry.reading {
                    Ok(_) => Quality::Good,
                    Err(reason) => Quality::Bad(Arc::clone(reason)),
                },
                timestamp: UNIX_EPOCH + Duration::from_micros(entry.micros),
                sequence: first_sequence + u64::try_from(age).unwrap_or(0),
            })
            .collect()
    }

    pub(super) fn snapshot(&self, config: &Arc<DeviceConfig>) -> DeviceSnapshot {
        DeviceSnapshot {
            config: Arc::clone(config),
            status: self.status.clone(),
            counters: self.counters.clone(),
            last_poll: self.last_poll,
            plan: self.plan.clone(),
            points: self
                .points
                .iter()
                .map(|point| PointSnapshot {
                    name: Arc::clone(&point.name),
                    value: point.latest.as_ref().map(|(value, _)| value.clone()),
                    quality: point.quality.clone(),
                    timestamp: point.latest.as_ref().map(|&(_, at)| at),
                    sequence: point.sequence,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Entry, PointValue, Ring};

    #[test]
    fn a_ring_keeps_the_newest_entries_in_order_and_is_filled_at_once() {
        let mut ring = Ring::default();
        for micros in 1..=7 {
            ring.push(
                3,
                Entry {
                    reading: Ok(PointValue::U16(0)),
                    micros,
                },
            );
            assert_eq!(
                ring.entries.len(),
                3,
                "the whole ring from the first sample"
            );
        }
        let kept: std::vec::Vec<u64> = ring.iter().map(|entry| entry.micros).collect();
        assert_eq!(kept, [5, 6, 7]);
        // What the configuration guide's memory figure is made of (32 bytes per sample).
        assert_eq!(size_of::<Entry>(), 32);
    }
}
