//! The publisher: a collector thread that turns the engine's events into queued polls, and an
//! MQTT connection (rumqttc on a small tokio runtime of its own) that drains the queue.
//!
//! Acknowledgements are matched without looking inside rumqttc: every publish is sent from
//! under one lock that also appends a tag to a FIFO, and rumqttc reports each publish it
//! writes (`Outgoing::Publish(pkid)`) in the order it was sent, so the FIFO's head is that
//! publish. Nothing is sent while disconnected, and on a disconnect the request channel is
//! emptied under the same lock, so the FIFO and rumqttc never disagree. Sessions are clean:
//! after a reconnect the broker holds nothing of ours, and the sender starts again at the
//! queue's first unacknowledged record.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use modbus_stack::harvest::{DeviceConfig, Engine, Event, Quality, Sample, Status};
use modbus_stack::point::{Point, PointValue};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event as MqttEvent, EventLoop, LastWill,
    MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

use super::queue::{Queue, QueueError, QueueOptions};
use super::record::{QueuedPoint, QueuedPoll};
use super::sparkplug::{Command, EdgeNode, MetricSpec};
use super::{Mode, MqttConfig, PublishPolicy, Qos};
use crate::api::{json_to_value, status_json, value_json};

/// Publishes sent and not yet acknowledged, at most; also rumqttc's inflight limit.
const WINDOW: u16 = 512;
/// Records read from the queue per batch.
const BATCH: usize = 256;
/// Engine events buffered for the collector (about 3 s of 1000 devices × 20 points).
const EVENT_QUEUE: usize = 65_536;
/// How long a stop waits for the goodbye message and the DISCONNECT to go out.
const GOODBYE: Duration = Duration::from_secs(2);

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The store-and-forward queue could not be opened.
    #[error("mqtt queue: {0}")]
    Queue(#[from] QueueError),
    /// The queue directory's state file could not be read or written.
    #[error("mqtt queue state {path}: {source}; check the directory's permissions and free space")]
    State {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The CA file given for TLS could not be read.
    #[error("mqtt ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The Sparkplug node could not be set up (an id with a character MQTT topics forbid).
    #[error("sparkplug: {0}")]
    Sparkplug(String),
    /// A device or point name cannot be a topic level.
    #[error("mqtt: the name {0:?} cannot be a topic level; rename it without /, + or #")]
    Name(String),
    /// A thread could not be started.
    #[error("mqtt thread: {0}")]
    Thread(io::Error),
}

/// The publisher's counters, for `/metrics` and the page.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Connected to the broker now.
    pub connected: AtomicBool,
    /// Successful connections since start.
    pub connects: AtomicU64,
    /// Connection attempts or connections that failed.
    pub connection_failures: AtomicU64,
    /// Messages the broker acknowledged (samples, statuses, births, results).
    pub acknowledged: AtomicU64,
    /// Polls queued.
    pub queued: AtomicU64,
    /// Polls not yet acknowledged (in the queue).
    pub backlog: AtomicU64,
    /// Bytes of the queue on disk.
    pub backlog_bytes: AtomicU64,
    /// Polls dropped from a full queue, oldest first.
    pub dropped: AtomicU64,
    /// Queued records that did not decode (skipped).
    pub corrupt: AtomicU64,
    /// Engine events the collector missed because it fell behind.
    pub missed_events: AtomicU64,
    /// Writes from the broker carried out.
    pub writes: AtomicU64,
    /// Writes from the broker refused or failed.
    pub writes_refused: AtomicU64,
}

/// A running publisher; [`stop`](Self::stop) (or drop) ends it, leaving what the broker has
/// not acknowledged in the queue for the next start.
pub struct Publisher {
    stats: Arc<MqttStats>,
    stop: watch::Sender<bool>,
    collector: Option<JoinHandle<()>>,
    connection: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

/// What one publish was for, so its acknowledgement can be credited.
#[derive(Debug, Clone, Copy)]
struct Tag {
    /// The queue record it carries part of, and which of the record's messages it is.
    record: Option<(u64, u32)>,
    /// QoS 0 publishes complete when written.
    qos: QoS,
}

/// The connection's bookkeeping, under one lock with every send.
struct Link {
    client: AsyncClient,
    connected: bool,
    /// Sent, not yet reported written by rumqttc.
    unsent: VecDeque<Tag>,
    /// Written, waiting for PUBACK/PUBCOMP.
    unacked: HashMap<u16, Tag>,
    /// Messages of each record not yet acknowledged.
    outstanding: BTreeMap<u64, u32>,
    /// Which messages of each record past `committed` the broker has acknowledged, kept
    /// across a disconnect: the resend after it skips them instead of repeating them.
    delivered: BTreeMap<u64, Vec<u64>>,
    /// The next record to send.
    cursor: u64,
    /// Records up to here (exclusive) are acknowledged in the queue.
    committed: u64,
    node: Option<EdgeNode>,
    /// Sparkplug: devices with a DBIRTH in this session and no DDEATH since.
    born: HashMap<String, bool>,
    /// Sparkplug: polls taken before this session's birth are published as historical.
    session_start: SystemTime,
    /// The latest status of each device, for the births (or retained statuses) of the next
    /// connection.
    statuses: BTreeMap<String, Status>,
}

impl Link {
    /// Records before `through` are acknowledged in the queue.
    fn commit(&mut self, through: u64) {
        self.committed = through;
        self.delivered = self.delivered.split_off(&through);
    }

    /// Whether message `index` of record `seq` has been acknowledged already.
    fn was_delivered(&self, seq: u64, index: u32) -> bool {
        self.delivered
            .get(&seq)
            .and_then(|bits| bits.get((index / 64) as usize))
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    fn window_free(&self) -> bool {
        self.unsent.len() + self.unacked.len() < usize::from(WINDOW)
    }

    /// Sends one publish; `false` when it cannot go now (disconnected, or the channel full).
    fn send(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
        record: Option<(u64, u32)>,
    ) -> bool {
        if !self.connected
            || self
                .client
                .try_publish(topic, qos, retain, payload)
                .is_err()
        {
            return false;
        }
        self.unsent.push_back(Tag { record, qos });
        if let Some((seq, _)) = record {
            *self.outstanding.entry(seq).or_insert(0) += 1;
        }
        true
    }
}

/// What both threads and the connection's tasks share.
struct Shared {
    engine: Arc<Engine>,
    config: MqttConfig,
    queue: Mutex<Queue>,
    link: Mutex<Option<Link>>,
    /// Something new for the sender: a record queued, a window freed, a connection made.
    wake: Notify,
    stats: Arc<MqttStats>,
    devices: BTreeMap<String, Arc<DeviceConfig>>,
    /// Each device's point index and topics, built once (looked up per message).
    points: HashMap<String, DevicePoints>,
    run: u64,
}

/// One device's points, indexed for the per-message path.
struct DevicePoints {
    config: Arc<DeviceConfig>,
    /// Each point's place in the device's point map, by name.
    index: HashMap<String, usize>,
    /// Plain mode: each point's topic `PREFIX/DEVICE/POINT`, by place.
    topics: Vec<String>,
}

impl DevicePoints {
    fn new(config: &Arc<DeviceConfig>, mode: &Mode) -> Self {
        let points = config.points.points();
        let topics = match mode {
            Mode::Plain { prefix } => points
                .iter()
                .map(|point| format!("{prefix}/{}/{}", config.name, point.name))
                .collect(),
            Mode::Sparkplug { .. } => Vec::new(),
        };
        Self {
            config: Arc::clone(config),
            index: points
                .iter()
                .enumerate()
                .map(|(i, point)| (point.name.clone(), i))
                .collect(),
            topics,
        }
    }

    /// `name`, with its place in the point map.
    fn point(&self, name: &str) -> Option<(usize, &Point)> {
        let index = *self.index.get(name)?;
        Some((index, self.config.points.points().get(index)?))
    }
}

impl Shared {
    /// `point` of `device`, with its place in the device's point map.
    fn point(&self, device: &str, point: &str) -> Option<(usize, &Point)> {
        self.points.get(device)?.point(point)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Publisher {
    /// Opens the queue and starts publishing the samples of `devices` from `engine` as
    /// `config` says. Start it before adding the devices to the engine, so that it sees
    /// their first samples. The broker need not be up: samples queue until it is.
    ///
    /// # Errors
    /// [`MqttError`] when the queue directory is unusable or a setting cannot be applied.
    #[allow(clippy::too_many_lines)] // set-up, one part after the other
    pub fn start(
        engine: &Arc<Engine>,
        devices: &[DeviceConfig],
        config: MqttConfig,
    ) -> Result<Self, MqttError> {
        let bad_level = |name: &str| name.contains(['/', '+', '#', '\0']);
        for device in devices {
            if bad_level(&device.name) {
                return Err(MqttError::Name(device.name.clone()));
            }
            if let Some(point) = device.points.points().iter().find(|p| bad_level(&p.name)) {
                return Err(MqttError::Name(point.name.clone()));
            }
        }
        let queue = Queue::open(
            &config.queue_dir,
            QueueOptions {
                max_bytes: config.queue_max_bytes,
                // Drops go a segment at a time: eight or more segments keep each drop small.
                segment_bytes: (config.queue_max_bytes / 8).clamp(4 << 10, 8 << 20),
                fsync: config.fsync,
            },
        )?;
        let (run, bd_seq) = next_run(&config.queue_dir)?;
        let devices: BTreeMap<String, Arc<DeviceConfig>> = devices
            .iter()
            .map(|device| (device.name.clone(), Arc::new(device.clone())))
            .collect();
        let node = match &config.mode {
            Mode::Plain { .. } => None,
            Mode::Sparkplug {
                group_id,
                edge_node_id,
            } => Some(
                EdgeNode::new(
                    group_id,
                    edge_node_id,
                    bd_seq,
                    devices
                        .values()
                        .map(|device| {
                            let specs = device
                                .points
                                .points()
                                .iter()
                                .map(|point| {
                                    MetricSpec::for_point(
                                        point,
                                        device.writable.contains(&point.name),
                                    )
                                })
                                .collect();
                            (device.name.clone(), specs)
                        })
                        .collect(),
                )
                .map_err(|error| MqttError::Sparkplug(error.to_string()))?,
            ),
        };
        let stats = Arc::new(MqttStats::default());
        stats.backlog.store(queue.len(), Ordering::Relaxed);
        stats
            .backlog_bytes
            .store(queue.bytes_on_disk(), Ordering::Relaxed);
        let options = mqtt_options(&config, node.as_ref(), run)?;
        let (client, eventloop) = AsyncClient::new(options, usize::from(WINDOW) + 256);
        let cursor = queue.first_unacked();
        let shared = Arc::new(Shared {
            engine: Arc::clone(engine),
            queue: Mutex::new(queue),
            link: Mutex::new(Some(Link {
                client,
                connected: false,
                unsent: VecDeque::new(),
                unacked: HashMap::new(),
                outstanding: BTreeMap::new(),
                delivered: BTreeMap::new(),
                cursor,
                committed: cursor,
                node,
                born: HashMap::new(),
                session_start: SystemTime::now(),
                statuses: BTreeMap::new(),
            })),
            wake: Notify::new(),
            stats: Arc::clone(&stats),
            points: devices
                .iter()
                .map(|(name, device)| (name.clone(), DevicePoints::new(device, &config.mode)))
                .collect(),
            devices,
            run,
            config,
        });
        let (stop, stopped) = watch::channel(false);
        let (statuses, status_events) = mpsc::unbounded_channel();
        let subscription = engine.subscribe(EVENT_QUEUE);
        let collector = {
            let shared = Arc::clone(&shared);
            let stopped = stopped.clone();
            thread::Builder::new()
                .name("mqtt collector".into())
                .spawn(move || collect(&shared, &subscription, &statuses, &stopped))
                .map_err(MqttError::Thread)?
        };
        let connection = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("mqtt connection".into())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            tracing::error!("mqtt: no runtime: {error}");
                            return;
                        }
                    };
                    runtime.block_on(connect_loop(shared, eventloop, status_events, stopped));
                })
                .map_err(MqttError::Thread)?
        };
        Ok(Self {
            stats,
            stop,
            collector: Some(collector),
            connection: Some(connection),
        })
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<MqttStats> {
        &self.stats
    }

    /// Stops: queues what the collector holds, says goodbye to the broker (the service's
    /// offline status or NDEATH) and disconnects. Unacknowledged samples stay queued.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let _ = self.stop.send(true);
        if let Some(collector) = self.collector.take() {
            let _ = collector.join();
        }
        if let Some(connection) = self.connection.take() {
            let _ = connection.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Reads, bumps and writes the queue directory's run counter and Sparkplug bdSeq: sequence
/// numbers restart with each run, so consumers need the run to tell a restart from a gap.
fn next_run(dir: &Path) -> Result<(u64, u64), MqttError> {
    let path = dir.join("run");
    let error = |source| MqttError::State {
        path: path.clone(),
        source,
    };
    let (run, bd_seq) = match fs::read_to_string(&path) {
        Ok(text) => {
            let mut numbers = text.split_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(run)), Some(Ok(bd_seq))) = (numbers.next(), numbers.next()) {
                (run + 1, (bd_seq + 1) % 256)
            } else {
                {
                    tracing::warn!(
                        "{}: unreadable, starting the run count again",
                        path.display()
                    );
                    (1, 0)
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (1, 0),
        Err(e) => return Err(error(e)),
    };
    let temporary = dir.join("run.tmp");
    fs::write(&temporary, format!("{run} {bd_seq}\n")).map_err(error)?;
    fs::rename(&temporary, &path).map_err(error)?;
    Ok((run, bd_seq))
}

fn rumqtt_qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn mqtt_options(
    config: &MqttConfig,
    node: Option<&EdgeNode>,
    run: u64,
) -> Result<MqttOptions, MqttError> {
    let mut options = MqttOptions::new(&config.client_id, &config.broker.host, config.broker.port);
    // Nagle stays on (rumqttc's default): rumqttc writes and flushes each publish on its
    // own, and Nagle packs those writes into full segments while PUBACKs keep the stream
    // moving; the latency tail in the mqtt_scale bench is the broker's side, not ours.
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_session(true)
        .set_inflight(WINDOW)
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &config.credentials {
        options.set_credentials(user, password);
    }
    let (topic, payload) = match node {
        Some(node) => node.death(epoch_millis(SystemTime::now())),
        None => (service_topic(config), offline_payload(config, run)),
    };
    options.set_last_will(LastWill::new(
        topic,
        payload,
        QoS::AtLeastOnce,
        node.is_none(),
    ));
    if config.broker.tls {
        // rustls needs a process-wide provider; a second install (another publisher) fails
        // harmlessly. ring, not aws-lc-rs (which would need cmake and a long C build); its
        // deprecation is for lacking post-quantum key exchange, which brokers do not need.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let transport = match &config.ca_file {
            Some(path) => Transport::tls_with_config(TlsConfiguration::Simple {
                ca: fs::read(path).map_err(|source| MqttError::CaFile {
                    path: path.clone(),
                    source,
                })?,
                alpn: None,
                client_auth: None,
            }),
            None => Transport::tls_with_default_config(),
        };
        options.set_transport(transport);
    }
    Ok(options)
}

fn prefix(config: &MqttConfig) -> &str {
    match &config.mode {
        Mode::Plain { prefix } => prefix,
        Mode::Sparkplug { .. } => "",
    }
}

fn service_topic(config: &MqttConfig) -> String {
    format!("{}/_service/{}", prefix(config), config.client_id)
}

fn offline_payload(config: &MqttConfig, run: u64) -> Vec<u8> {
    json!({ "state": "offline", "client_id": config.client_id, "run": run })
        .to_string()
        .into_bytes()
}

fn epoch(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---- the collector -------------------------------------------------------------------------

/// What the publish rules remember of one point.
#[derive(Default)]
struct PointMemory {
    /// The point's publish rule, looked up once (the lookup builds its key).
    policy: PublishPolicy,
    /// The last published reading.
    last: Option<Result<PointValue, ()>>,
    last_at: Option<SystemTime>,
    sequence: u64,
}

fn changed(policy: &PublishPolicy, memory: &PointMemory, sample: &Sample) -> bool {
    let reading = match &sample.value {
        Some(value) if sample.quality == Quality::Good => Ok(value),
        _ => Err(()),
    };
    let Some(last) = &memory.last else {
        return true;
    };
    if !policy.on_change {
        return true;
    }
    if let (Some(max), Some(at)) = (policy.max_interval, memory.last_at) {
        if sample.timestamp.duration_since(at).unwrap_or_default() >= max {
            return true;
        }
    }
    match (last, reading) {
        (Ok(old), Ok(new)) => match (old.as_f64(), new.as_f64()) {
            (Some(a), Some(b)) if !matches!(new, PointValue::Bool(_)) => {
                (a - b).abs() > policy.deadband
            }
            _ => old != new,
        },
        (Err(()), Err(())) => false,
        _ => true,
    }
}

fn collect(
    shared: &Shared,
    subscription: &modbus_stack::harvest::Subscription,
    statuses: &mpsc::UnboundedSender<(String, Status)>,
    stopped: &watch::Receiver<bool>,
) {
    let mut pending: HashMap<Arc<str>, Vec<Sample>> = HashMap::new();
    let mut memory: HashMap<(Arc<str>, Arc<str>), PointMemory> = HashMap::new();
    loop {
        let waited = Instant::now();
        let Some(event) = subscription.recv_timeout(Duration::from_millis(100)) else {
            let mut queue = lock(&shared.queue);
            if let Err(error) = queue.flush() {
                tracing::error!("mqtt queue: {error}");
            }
            // No event before the timeout ran out means the engine has shut down: every
            // sample it took is queued now.
            let closed = waited.elapsed() < Duration::from_millis(50);
            if closed || *stopped.borrow() {
                drop(queue);
                // A poll cut short by the shutdown has samples but no report: queue them too.
                let devices: Vec<Arc<str>> = pending.keys().cloned().collect();
                for device in devices {
                    queue_poll(shared, &mut pending, &mut memory, &device);
                }
                let _ = lock(&shared.queue).sync();
                return;
            }
            continue;
        };
        shared
            .stats
            .missed_events
            .store(subscription.dropped(), Ordering::Relaxed);
        match event {
            Event::Sample(sample) => pending
                .entry(Arc::clone(&sample.device))
                .or_default()
                .push(sample),
            Event::Status { device, status } => {
                let _ = statuses.send((device.to_string(), status));
            }
            Event::Polled(report) => queue_poll(shared, &mut pending, &mut memory, &report.device),
            _ => {}
        }
    }
}

/// Puts `device`'s pending samples into the queue as one poll (those its rules publish).
fn queue_poll(
    shared: &Shared,
    pending: &mut HashMap<Arc<str>, Vec<Sample>>,
    memory: &mut HashMap<(Arc<str>, Arc<str>), PointMemory>,
    device: &Arc<str>,
) {
    let Some(samples) = pending.remove(device) else {
        return;
    };
    let mut points = Vec::new();
    let mut timestamp = None;
    for sample in samples {
        let memory = memory
            .entry((Arc::clone(&sample.device), Arc::clone(&sample.point)))
            .or_insert_with(|| PointMemory {
                policy: shared.config.publish.policy(&sample.device, &sample.point),
                ..PointMemory::default()
            });
        if !changed(&memory.policy, memory, &sample) {
            continue;
        }
        let reading = match (&sample.value, &sample.quality) {
            (Some(value), Quality::Good) => Ok(value.clone()),
            (_, Quality::Bad(reason)) => Err(reason.to_string()),
            _ => Err("no value".to_string()),
        };
        memory.last = Some(reading.clone().map_err(|_| ()));
        memory.last_at = Some(sample.timestamp);
        memory.sequence += 1;
        timestamp =
            Some(timestamp.map_or(sample.timestamp, |t: SystemTime| t.min(sample.timestamp)));
        points.push(QueuedPoint {
            name: sample.point.to_string(),
            sequence: memory.sequence,
            reading,
        });
    }
    let Some(timestamp) = timestamp else { return };
    let poll = QueuedPoll {
        device: device.to_string(),
        run: shared.run,
        timestamp,
        points,
    };
    let mut queue = lock(&shared.queue);
    match queue.push(&poll.encode()).and_then(|_| queue.flush()) {
        Ok(()) => {
            shared.stats.queued.fetch_add(1, Ordering::Relaxed);
            shared.stats.backlog.store(queue.len(), Ordering::Relaxed);
            shared
                .stats
                .backlog_bytes
                .store(queue.bytes_on_disk(), Ordering::Relaxed);
            shared
                .stats
                .dropped
                .store(queue.dropped(), Ordering::Relaxed);
        }
        Err(error) => tracing::error!("mqtt queue: {error}; this poll is not published"),
    }
    drop(queue);
    shared.wake.notify_one();
}

// ---- the connection ------------------------------------------------------------------------

async fn connect_loop(
    shared: Arc<Shared>,
    mut eventloop: EventLoop,
    mut statuses: mpsc::UnboundedReceiver<(String, Status)>,
    mut stopped: watch::Receiver<bool>,
) {
    let sender = tokio::spawn(send_loop(Arc::clone(&shared), stopped.clone()));
    // Statuses on a task of their own: `EventLoop::poll` is not cancel-safe, so nothing but
    // the stop may interrupt it. A poll dropped between CONNECT and CONNACK made a second
    // connection, whose takeover of the first had the broker publish the will (NDEATH)
    // before the NBIRTH; one dropped in a write could cut a packet.
    let status_task = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some((device, status)) = statuses.recv().await {
                on_status(&shared, &device, &status);
            }
        })
    };
    let mut failures = 0u32;
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            _ = stopped.changed() => break,
        };
        match event {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                on_connected(&shared);
            }
            Ok(MqttEvent::Outgoing(Outgoing::Publish(pkid))) => on_written(&shared, pkid),
            Ok(MqttEvent::Incoming(Packet::PubAck(ack))) => on_acknowledged(&shared, ack.pkid),
            Ok(MqttEvent::Incoming(Packet::PubComp(comp))) => on_acknowledged(&shared, comp.pkid),
            Ok(MqttEvent::Incoming(Packet::Publish(publish))) => {
                on_command(&shared, &publish.topic, publish.payload.to_vec());
            }
            Ok(_) => {}
            Err(error) => {
                failures = failures.saturating_add(1);
                on_disconnected(&shared, &mut eventloop, &error);
                let wait = backoff(&shared.config, failures);
                tracing::info!("mqtt: reconnecting in {} ms", wait.as_millis());
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => break,
                }
            }
        }
    }
    goodbye(&shared, &mut eventloop).await;
    sender.abort();
    status_task.abort();
    let _ = sender.await;
    let _ = status_task.await;
}

/// The wait before reconnection attempt `failures + 1`: the configured [`Backoff`], its
/// jitter drawn afresh each time, so a fleet that lost its broker at once does not come
/// back at once.
///
/// [`Backoff`]: modbus_stack::harvest::Backoff
fn backoff(config: &MqttConfig, failures: u32) -> Duration {
    use std::hash::BuildHasher;
    // Each RandomState has its own keys: a random fraction without a random-number crate.
    let bits = std::collections::hash_map::RandomState::new().hash_one(failures);
    #[allow(clippy::cast_precision_loss)] // 53 bits into an f64's mantissa
    let random = (bits >> 11) as f64 / (1u64 << 53) as f64;
    config.reconnect.delay(failures, random)
}

fn on_disconnected(shared: &Shared, eventloop: &mut EventLoop, error: &ConnectionError) {
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    if link.connected {
        tracing::warn!("mqtt: connection lost: {error}");
    } else if let ConnectionError::ConnectionRefused(code) = error {
        // Retrying will not help until someone changes the configuration or the broker.
        let advice = match code {
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => {
                "check the user name and password in [mqtt] and the broker's access rules"
            }
            ConnectReturnCode::BadClientId => "check client_id: the broker does not accept it",
            _ => "check the broker",
        };
        tracing::warn!("mqtt: the broker refused the connection ({code:?}): {advice}");
    } else {
        tracing::debug!("mqtt: cannot connect: {error}");
    }
    shared
        .stats
        .connection_failures
        .fetch_add(1, Ordering::Relaxed);
    shared.stats.connected.store(false, Ordering::Relaxed);
    // Sparkplug's bdSeq goes up by one per CONNECT packet: only an attempt that got as far as
    // an answer from the broker sent one. A refused TCP connection (the broker down) did not,
    // so retrying through an outage does not skip bdSeq values.
    let sent_connect = link.connected
        || matches!(
            error,
            ConnectionError::ConnectionRefused(_) | ConnectionError::NotConnAck(_)
        );
    link.connected = false;
    // Whatever rumqttc still holds would go out in the next session, untracked: the queue
    // sends it again instead.
    eventloop.clean();
    eventloop.pending.clear();
    link.unsent.clear();
    link.unacked.clear();
    link.outstanding.clear();
    link.cursor = link.committed;
    link.born.clear();
    if let Some(node) = link.node.as_mut().filter(|_| sent_connect) {
        // The next connection is a new Sparkplug session: a new bdSeq in the will.
        node.next_bd_seq();
        let (topic, payload) = node.death(epoch_millis(SystemTime::now()));
        eventloop.mqtt_options.set_last_will(LastWill::new(
            topic,
            payload,
            QoS::AtLeastOnce,
            false,
        ));
    }
}

fn on_connected(shared: &Shared) {
    let config = &shared.config;
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    tracing::info!(
        "mqtt: connected to {}:{}",
        config.broker.host,
        config.broker.port
    );
    link.connected = true;
    link.session_start = SystemTime::now();
    shared.stats.connects.fetch_add(1, Ordering::Relaxed);
    shared.stats.connected.store(true, Ordering::Relaxed);
    let now_ms = epoch_millis(SystemTime::now());
    if let Some(node) = link.node.as_mut() {
        for topic in node.command_topics() {
            let _ = link.client.try_subscribe(topic, QoS::AtLeastOnce);
        }
        let (topic, payload) = node.birth(now_ms);
        link.send(topic, payload, birth_qos(shared), false, None);
        for device in shared.devices.keys() {
            if link.statuses.get(device).is_none_or(is_alive) {
                birth_device(shared, link, device);
            }
        }
    } else {
        let _ = link
            .client
            .try_subscribe(format!("{}/+/+/set", prefix(config)), QoS::AtLeastOnce);
        let birth = json!({
            "state": "online",
            "client_id": config.client_id,
            "run": shared.run,
            "devices": shared.devices.keys().collect::<Vec<_>>(),
        });
        link.send(
            service_topic(config),
            birth.to_string().into_bytes(),
            QoS::AtLeastOnce,
            true,
            None,
        );
        let statuses: Vec<(String, Status)> = link
            .statuses
            .iter()
            .map(|(device, status)| (device.clone(), status.clone()))
            .collect();
        for (device, status) in &statuses {
            send_status(link, config, device, status);
        }
    }
    drop(guard);
    shared.wake.notify_one();
}

/// Sparkplug births and DDEATH go at the QoS of the data. Sparkplug 3.0 puts them, and
/// DDATA, at QoS 0; store-and-forward needs DDATA acknowledged, and a broker holds QoS 1
/// messages for a slow subscriber while it forwards QoS 0 at once, so a DBIRTH or DDEATH at
/// QoS 0 could overtake DDATA sent before it. One QoS keeps the node's one order.
fn birth_qos(shared: &Shared) -> QoS {
    rumqtt_qos(shared.config.qos)
}

/// A device whose values are live (Sparkplug: it has a DBIRTH and no DDEATH).
fn is_alive(status: &Status) -> bool {
    matches!(
        status,
        Status::Connecting | Status::Connected | Status::Error { .. }
    )
}

fn birth_device(shared: &Shared, link: &mut Link, device: &str) {
    let Some(node) = link.node.as_mut() else {
        return;
    };
    let values: Vec<(Option<PointValue>, bool)> =
        shared
            .engine
            .device(device)
            .map_or_else(Vec::new, |snapshot| {
                snapshot
                    .points
                    .iter()
                    .map(|point| (point.value.clone(), point.quality == Quality::Good))
                    .collect()
            });
    match node.device_birth(device, &values, epoch_millis(SystemTime::now())) {
        Ok((topic, payload)) => {
            link.send(topic, payload, birth_qos(shared), false, None);
            link.born.insert(device.to_string(), true);
        }
        Err(error) => tracing::warn!("sparkplug: {error}"),
    }
}

fn on_status(shared: &Shared, device: &str, status: &Status) {
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    link.statuses.insert(device.to_string(), status.clone());
    if !link.connected {
        return;
    }
    if link.node.is_some() {
        let was = link.born.get(device).copied().unwrap_or(false);
        if is_alive(status) && !was {
            birth_device(shared, link, device);
        } else if !is_alive(status) && was {
            if let Some(Ok((topic, payload))) = link
                .node
                .as_mut()
                .map(|node| node.device_death(device, epoch_millis(SystemTime::now())))
            {
                link.send(topic, payload, birth_qos(shared), false, None);
            }
            link.born.insert(device.to_string(), false);
        }
    } else {
        send_status(link, &shared.config, device, status);
    }
}

/// Plain mode: a device's status, retained, so a consumer that comes later learns it.
fn send_status(link: &mut Link, config: &MqttConfig, device: &str, status: &Status) {
    let topic = format!("{}/{device}/status", prefix(config));
    let payload = status_json(status).to_string().into_bytes();
    link.send(topic, payload, QoS::AtLeastOnce, true, None);
}

fn on_written(shared: &Shared, pkid: u16) {
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    let Some(tag) = link.unsent.pop_front() else {
        tracing::warn!("mqtt: a publish was written that was not sent from here");
        return;
    };
    if tag.qos == QoS::AtMostOnce {
        complete(shared, link, tag);
    } else {
        link.unacked.insert(pkid, tag);
    }
}

fn on_acknowledged(shared: &Shared, pkid: u16) {
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    if let Some(tag) = link.unacked.remove(&pkid) {
        complete(shared, link, tag);
    }
}

/// One publish done: credits its record, and advances the queue past every record whose
/// messages are all done.
fn complete(shared: &Shared, link: &mut Link, tag: Tag) {
    shared.stats.acknowledged.fetch_add(1, Ordering::Relaxed);
    if let Some((seq, index)) = tag.record {
        let bits = link.delivered.entry(seq).or_default();
        let word = (index / 64) as usize;
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        bits[word] |= 1 << (index % 64);
        if let Some(left) = link.outstanding.get_mut(&seq) {
            *left -= 1;
            if *left == 0 {
                link.outstanding.remove(&seq);
            }
        }
    }
    let through = link
        .outstanding
        .keys()
        .next()
        .copied()
        .unwrap_or(link.cursor);
    if through > link.committed {
        let mut queue = lock(&shared.queue);
        match queue.ack_through(through - 1) {
            Ok(()) => link.commit(through),
            Err(error) => tracing::error!("mqtt queue: {error}"),
        }
        shared.stats.backlog.store(queue.len(), Ordering::Relaxed);
        shared
            .stats
            .backlog_bytes
            .store(queue.bytes_on_disk(), Ordering::Relaxed);
    }
    shared.wake.notify_one();
}

async fn send_loop(shared: Arc<Shared>, stopped: watch::Receiver<bool>) {
    // Records read and not yet sent: the window takes fewer than a batch holds, and reading
    // them again would re-open, seek and checksum the same bytes.
    let mut batch: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut read = Vec::new();
    // The cursor the batch's head follows; a rewind (a disconnect) makes the batch stale.
    let mut follows = 0;
    loop {
        let woken = shared.wake.notified();
        let (ready, cursor) = {
            let guard = lock(&shared.link);
            guard.as_ref().map_or((false, 0), |link| {
                (link.connected && link.window_free(), link.cursor)
            })
        };
        if cursor != follows {
            batch.clear();
        }
        if ready && batch.is_empty() {
            read.clear();
            let mut queue = lock(&shared.queue);
            if let Err(error) = queue.read(cursor, BATCH, 1 << 20, &mut read) {
                tracing::error!("mqtt queue: {error}");
            }
            batch.extend(read.drain(..));
            follows = cursor;
        }
        if !ready || batch.is_empty() {
            if *stopped.borrow() {
                return;
            }
            // The timeout only covers a wake-up lost to a race; every change notifies.
            let _ = tokio::time::timeout(Duration::from_millis(200), woken).await;
            continue;
        }
        let mut guard = lock(&shared.link);
        let Some(link) = guard.as_mut() else { return };
        if link.cursor != follows {
            // A disconnect rewound the cursor while the batch was read.
            continue;
        }
        while let Some((seq, bytes)) = batch.front() {
            let seq = *seq;
            if !link.connected || !link.window_free() {
                break;
            }
            match QueuedPoll::decode(bytes) {
                Ok(poll) => {
                    if !publish_poll(&shared, link, seq, &poll) {
                        break;
                    }
                }
                Err(error) => {
                    shared.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("mqtt queue record {seq}: {error}; skipped");
                }
            }
            link.cursor = seq + 1;
            follows = link.cursor;
            batch.pop_front();
        }
        if link.outstanding.is_empty() && link.committed < link.cursor {
            // Only skipped records since the last commit: nothing will acknowledge them.
            let through = link.cursor;
            let mut queue = lock(&shared.queue);
            if queue.ack_through(through - 1).is_ok() {
                link.commit(through);
            }
        }
    }
}

/// Sends the messages of one queued poll; `false` if they could not all go (the record is
/// then sent again whole after the next connect).
fn publish_poll(shared: &Shared, link: &mut Link, seq: u64, poll: &QueuedPoll) -> bool {
    let qos = rumqtt_qos(shared.config.qos);
    if !shared.devices.contains_key(&poll.device) {
        // A device removed from the configuration since the poll was queued.
        return true;
    }
    if link.node.is_some() {
        if !link.born.get(&poll.device).copied().unwrap_or(false) {
            birth_device(shared, link, &poll.device);
        }
        if link.was_delivered(seq, 0) {
            return true;
        }
        let metrics: Vec<(usize, Option<PointValue>)> = poll
            .points
            .iter()
            .filter_map(|point| {
                let (index, _) = shared.point(&poll.device, &point.name)?;
                Some((index, point.reading.clone().ok()))
            })
            .collect();
        let historical = poll.timestamp < link.session_start;
        let Some(node) = link.node.as_mut() else {
            return true;
        };
        return match node.device_data(
            &poll.device,
            epoch_millis(poll.timestamp),
            &metrics,
            historical,
        ) {
            Ok((topic, payload)) => link.send(topic, payload, qos, false, Some((seq, 0))),
            Err(error) => {
                tracing::warn!("sparkplug: {error}");
                true
            }
        };
    }
    let Some(device) = shared.points.get(&poll.device) else {
        return true;
    };
    let timestamp = epoch(poll.timestamp);
    for (part, point) in (0..).zip(&poll.points) {
        if link.was_delivered(seq, part) {
            continue;
        }
        let Some((index, config)) = device.point(&point.name) else {
            // A point removed from the configuration since the poll was queued.
            continue;
        };
        let message = PointMessage {
            value: point.reading.as_ref().ok().map(JsonValue),
            unit: config.unit.as_deref(),
            quality: if point.reading.is_ok() { "good" } else { "bad" },
            reason: point.reading.as_ref().err().map(String::as_str),
            timestamp,
            sequence: point.sequence,
            run: poll.run,
        };
        let mut payload = Vec::with_capacity(128);
        if let Err(error) = serde_json::to_writer(&mut payload, &message) {
            tracing::warn!("mqtt: {}/{}: {error}", poll.device, point.name);
            continue;
        }
        let tag = Some((seq, part));
        if !link.send(device.topics[index].clone(), payload, qos, false, tag) {
            return false;
        }
    }
    true
}

/// A plain-mode sample message, serialized straight from the queued record.
#[derive(serde::Serialize)]
struct PointMessage<'a> {
    value: Option<JsonValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    quality: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    timestamp: f64,
    sequence: u64,
    run: u64,
}

/// A point value as the HTTP API writes it ([`value_json`]), without building a `Value`.
struct JsonValue<'a>(&'a PointValue);

impl serde::Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            PointValue::Bool(on) => serializer.serialize_bool(*on),
            PointValue::U16(v) => serializer.serialize_u16(*v),
            PointValue::I16(v) => serializer.serialize_i16(*v),
            PointValue::U32(v) => serializer.serialize_u32(*v),
            PointValue::I32(v) => serializer.serialize_i32(*v),
            PointValue::U64(v) => serializer.serialize_u64(*v),
            PointValue::I64(v) => serializer.serialize_i64(*v),
            // Widened as value_json does, so both paths print a sample alike; serde_json
            // writes a NaN or an infinity as null, as value_json does.
            PointValue::F32(v) => serializer.serialize_f64(f64::from(*v)),
            PointValue::F64(v) => serializer.serialize_f64(*v),
            PointValue::Text(text) => serializer.serialize_str(text),
        }
    }
}

/// A write from the broker: `PREFIX/DEVICE/POINT/set` (plain) or DCMD (Sparkplug), carried
/// out on a blocking thread through the same engine path as the HTTP API; NCMD rebirth.
fn on_command(shared: &Arc<Shared>, topic: &str, payload: Vec<u8>) {
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    if let Some(node) = link.node.as_ref() {
        match node.parse_command(topic, &payload) {
            Ok(Command::Rebirth) => {
                tracing::info!("sparkplug: rebirth requested");
                let now_ms = epoch_millis(SystemTime::now());
                if let Some((topic, payload)) = link.node.as_mut().map(|node| node.birth(now_ms)) {
                    link.send(topic, payload, birth_qos(shared), false, None);
                }
                let born: Vec<String> = link
                    .born
                    .iter()
                    .filter(|(_, alive)| **alive)
                    .map(|(device, _)| device.clone())
                    .collect();
                for device in born {
                    birth_device(shared, link, &device);
                }
            }
            Ok(Command::Write { device, writes }) => {
                drop(guard);
                let shared = Arc::clone(shared);
                tokio::task::spawn_blocking(move || {
                    for (_, point, value) in writes {
                        match shared.engine.write(&device, &point, value) {
                            Ok(sample) => {
                                shared.stats.writes.fetch_add(1, Ordering::Relaxed);
                                report_written_metric(&shared, &device, &point, &sample);
                            }
                            Err(error) => {
                                shared.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!("sparkplug DCMD {device}/{point}: {error}");
                            }
                        }
                    }
                });
            }
            Err(error) => {
                shared.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("sparkplug command on {topic}: {error}");
            }
        }
        return;
    }
    drop(guard);
    let prefix = format!("{}/", prefix(&shared.config));
    let Some((device, point)) = topic
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("/set"))
        .and_then(|rest| rest.split_once('/'))
    else {
        return;
    };
    let (device, point) = (device.to_string(), point.to_string());
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let (id, result) = plain_write(&shared, &device, &point, &payload);
        let mut body = match result {
            Ok(value) => {
                shared.stats.writes.fetch_add(1, Ordering::Relaxed);
                json!({ "ok": true, "value": value })
            }
            Err(error) => {
                shared.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("mqtt write {device}/{point}: {error}");
                json!({ "ok": false, "error": error })
            }
        };
        if let (Some(id), Value::Object(map)) = (id, &mut body) {
            map.insert("id".into(), id);
        }
        let topic = format!("{prefix}{device}/{point}/set/result");
        let mut guard = lock(&shared.link);
        if let Some(link) = guard.as_mut() {
            if !link.send(
                topic,
                body.to_string().into_bytes(),
                QoS::AtLeastOnce,
                false,
                None,
            ) {
                tracing::warn!(
                    "mqtt: the result of a write to {device}/{point} could not be published"
                );
            }
        }
    });
}

/// Carries out a plain-mode write: the payload is a JSON value, or `{"value": …, "id": …}`
/// (the id is echoed in the result).
fn plain_write(
    shared: &Shared,
    device: &str,
    point: &str,
    payload: &[u8],
) -> (Option<Value>, Result<Value, String>) {
    let body: Value = match serde_json::from_slice(payload) {
        Ok(body) => body,
        Err(error) => {
            return (
                None,
                Err(format!(
                    "the payload is not JSON ({error}); send a value such as 21.5, true or {{\"value\": 21.5}}"
                )),
            );
        }
    };
    let (id, value) = match body {
        Value::Object(mut map) => {
            let id = map.remove("id");
            match map.remove("value") {
                Some(value) => (id, value),
                None => return (id, Err("the object has no \"value\"".into())),
            }
        }
        other => (None, other),
    };
    if !shared.devices.contains_key(device) {
        return (id, Err(format!("no device {device:?}")));
    }
    let Some((_, target)) = shared.point(device, point) else {
        return (id, Err(format!("device {device:?} has no point {point:?}")));
    };
    let value = match json_to_value(target, &value) {
        Ok(value) => value,
        Err(error) => return (id, Err(error)),
    };
    let result = shared
        .engine
        .write(device, point, value)
        .map(|sample| sample.value.as_ref().map_or(Value::Null, value_json))
        .map_err(|error| error.to_string());
    (id, result)
}

/// Sparkplug answers a DCMD with a DDATA of the written metric's new value.
fn report_written_metric(shared: &Shared, device: &str, point: &str, sample: &Sample) {
    let Some((index, _)) = shared.point(device, point) else {
        return;
    };
    let mut guard = lock(&shared.link);
    let Some(link) = guard.as_mut() else { return };
    let qos = rumqtt_qos(shared.config.qos);
    if let Some(Ok((topic, payload))) = link.node.as_mut().map(|node| {
        node.device_data(
            device,
            epoch_millis(sample.timestamp),
            &[(index, sample.value.clone())],
            false,
        )
    }) {
        link.send(topic, payload, qos, false, None);
    }
}

async fn goodbye(shared: &Shared, eventloop: &mut EventLoop) {
    {
        let mut guard = lock(&shared.link);
        let Some(link) = guard.as_mut() else { return };
        if !link.connected {
            return;
        }
        let (topic, payload, retain) = match link.node.as_ref() {
            Some(node) => {
                let (topic, payload) = node.death(epoch_millis(SystemTime::now()));
                (topic, payload, false)
            }
            None => (
                service_topic(&shared.config),
                offline_payload(&shared.config, shared.run),
                true,
            ),
        };
        link.send(topic, payload, QoS::AtLeastOnce, retain, None);
        let _ = link.client.try_disconnect();
    }
    let _ = tokio::time::timeout(GOODBYE, async {
        loop {
            match eventloop.poll().await {
                Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(MqttEvent::Outgoing(Outgoing::Publish(pkid))) => on_written(shared, pkid),
                Ok(MqttEvent::Incoming(Packet::PubAck(ack))) => on_acknowledged(shared, ack.pkid),
                Ok(_) => {}
            }
        }
    })
    .await;
    let mut queue = lock(&shared.queue);
    let _ = queue.sync();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(value: Option<PointValue>, quality: Quality, at: u64) -> Sample {
        Sample {
            device: "d".into(),
            point: "p".into(),
            value,
            quality,
            timestamp: UNIX_EPOCH + Duration::from_secs(at),
            sequence: at,
        }
    }

    fn published(memory: &PointMemory, sample: &Sample) -> PointMemory {
        PointMemory {
            last: Some(match (&sample.value, &sample.quality) {
                (Some(value), Quality::Good) => Ok(value.clone()),
                _ => Err(()),
            }),
            last_at: Some(sample.timestamp),
            sequence: memory.sequence + 1,
            policy: memory.policy,
        }
    }

    /// Runs `samples` through `policy` and returns which were published.
    fn run(policy: &PublishPolicy, samples: &[Sample]) -> Vec<bool> {
        let mut memory = PointMemory::default();
        samples
            .iter()
            .map(|sample| {
                let publish = changed(policy, &memory, sample);
                if publish {
                    memory = published(&memory, sample);
                }
                publish
            })
            .collect()
    }

    #[test]
    fn reconnect_waits_double_to_the_maximum_with_jitter() {
        let broker = crate::mqtt::Broker {
            host: "127.0.0.1".into(),
            port: 1,
            tls: false,
        };
        let config = MqttConfig::new(broker, "backoff", std::env::temp_dir());
        let (initial, max) = (config.reconnect.initial, config.reconnect.max);
        for failures in 1..=12 {
            let full = initial.saturating_mul(1 << (failures - 1)).min(max);
            let waits: Vec<Duration> = (0..20).map(|_| backoff(&config, failures)).collect();
            for wait in &waits {
                assert!(
                    *wait >= full / 2 && *wait <= full,
                    "{failures}: {wait:?} of {full:?}"
                );
            }
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "{failures}: no jitter"
            );
        }
    }

    #[test]
    fn sample_values_print_as_the_http_api_prints_them() {
        let values = [
            PointValue::Bool(true),
            PointValue::U16(65535),
            PointValue::I16(-32768),
            PointValue::U32(u32::MAX),
            PointValue::I32(i32::MIN),
            PointValue::U64(u64::MAX),
            PointValue::I64(i64::MIN),
            PointValue::F32(0.1),
            PointValue::F32(f32::NAN),
            PointValue::F64(-1e300),
            PointValue::F64(f64::INFINITY),
            PointValue::Text("a \"quoted\" \u{1}line\n".into()),
        ];
        for value in &values {
            let direct = serde_json::to_string(&JsonValue(value)).expect("serializes");
            assert_eq!(direct, value_json(value).to_string(), "{value:?}");
        }
    }

    #[test]
    fn names_that_cannot_be_topic_levels_refuse_the_start() {
        use modbus_stack::harvest::Link as DeviceLink;
        use modbus_stack::point::{PointKind, PointMap, Table};
        use modbus_stack::value::{DataType, Order};
        let engine = Arc::new(Engine::new());
        let dir = std::env::temp_dir().join(format!("mqtt-names-{}", std::process::id()));
        let device = |device: &str, point: &str| {
            let kind = PointKind::number(DataType::U16, Order::default());
            let points = PointMap::new([Point::new(point, 1, Table::HoldingRegisters, 0, kind)]);
            DeviceConfig::new(
                device,
                DeviceLink::tcp("127.0.0.1:1"),
                1,
                points.expect("map"),
            )
        };
        let broker = crate::mqtt::Broker {
            host: "127.0.0.1".into(),
            port: 1,
            tls: false,
        };
        for (name, bad) in [("line/1", "x"), ("ok", "a+b"), ("ok", "#")] {
            let config = MqttConfig::new(broker.clone(), "names", dir.clone());
            let refused = Publisher::start(&engine, &[device(name, bad)], config);
            let Err(MqttError::Name(named)) = refused else {
                panic!("{name}/{bad} started: {refused:?}");
            };
            assert!(named == name || named == bad, "{named}");
        }
        assert!(!dir.exists(), "refused before the queue directory was made");
    }

    #[test]
    fn every_poll_publishes_everything() {
        let samples: Vec<Sample> = (0..3)
            .map(|t| sample(Some(PointValue::U16(7)), Quality::Good, t))
            .collect();
        assert_eq!(run(&PublishPolicy::default(), &samples), [true; 3]);
    }

    #[test]
    fn on_change_compares_against_the_last_published_value_beyond_the_deadband() {
        let policy = PublishPolicy {
            on_change: true,
            deadband: 0.5,
            max_interval: None,
        };
        // 20.0 → 20.3 → 20.6: each step is within the deadband, but 20.6 is 0.6 from the
        // last *published* 20.0, so it goes.
        let values = [20.0, 20.3, 20.6, 20.6, 19.0];
        let samples: Vec<Sample> = values
            .iter()
            .zip(0..)
            .map(|(&v, t)| sample(Some(PointValue::F64(v)), Quality::Good, t))
            .collect();
        assert_eq!(run(&policy, &samples), [true, false, true, false, true]);
    }

    #[test]
    fn quality_changes_and_the_maximum_interval_always_publish() {
        let policy = PublishPolicy {
            on_change: true,
            deadband: 0.0,
            max_interval: Some(Duration::from_secs(10)),
        };
        let good = |t| sample(Some(PointValue::Bool(true)), Quality::Good, t);
        let bad = |t| sample(None, Quality::Bad("timeout".into()), t);
        let samples = [
            good(0),
            good(1),
            bad(2),
            bad(3),
            good(4),
            good(9),
            good(14),
            good(15),
        ];
        // first; same; bad; still bad; good again; same; 10 s since the last (4 s); same.
        assert_eq!(
            run(&policy, &samples),
            [true, false, true, false, true, false, true, false]
        );
    }

    #[test]
    fn texts_and_bools_change_on_any_difference() {
        let policy = PublishPolicy {
            on_change: true,
            deadband: 100.0,
            max_interval: None,
        };
        let text = |s: &str, t| sample(Some(PointValue::Text(s.into())), Quality::Good, t);
        assert_eq!(
            run(&policy, &[text("a", 0), text("a", 1), text("b", 2)]),
            [true, false, true]
        );
        let bit = |b, t| sample(Some(PointValue::Bool(b)), Quality::Good, t);
        assert_eq!(
            run(&policy, &[bit(false, 0), bit(true, 1), bit(true, 2)]),
            [true, true, false]
        );
    }
}
