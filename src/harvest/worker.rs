//! One worker thread per link: it owns the link's client and polls the link's devices in
//! turn, on their schedules; commands (writes, operator actions) come in between polls.
//!
//! Scheduling rules, all local to one link:
//! - a healthy device is polled on a fixed grid (`first poll + k × interval`); a late poll
//!   does not shift the grid;
//! - a device that stopped answering backs off and is then *probed*: one request, one
//!   attempt, before the rest of its plan. A probe starts only when the line is free for its
//!   whole response timeout before the next healthy device is due, so a dead unit never
//!   makes a live one late (postponed at most one maximum backoff);
//! - the link is opened lazily and reopened with backoff and jitter; a unit id that stops
//!   answering never closes it.

use std::boxed::Box;
use std::collections::BTreeSet;
use std::io;
use std::string::{String, ToString};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};
use std::vec::Vec;

use super::config::{Backoff, DeviceConfig, Link};
use super::engine::{Device, Error, Event, PollReport, Shared};
use super::random::Random;
use super::state::{PlanView, Sample, Status};
use crate::client::{self, Client};
use crate::pdu::ExceptionCode;
use crate::point::{DeviceError, PlanConfig, PointMap, PointValue, ReadPlan, ReadResult, Reading};
use crate::session::client::RetryPolicy;
use crate::transport::Transport;

type LinkClient = Client<Box<dyn Transport + Send>>;

/// Stack of a worker thread: a client holds about 11 KiB of buffers, which unoptimised builds
/// copy a few times per call (256 KiB overflowed there). Only the pages touched are resident.
const WORKER_STACK: usize = 1024 * 1024;
/// Longest a worker sleeps without looking at its commands and the stop flag.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// An operator action on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control {
    Connect,
    Disconnect,
    Enable,
    Disable,
}

/// What the engine handle asks of a worker.
pub(super) enum Command {
    Add {
        device: Arc<Device>,
        plan: Box<ReadPlan>,
        limits: PlanConfig,
        /// The device's place in the engine's order of adds (sets its first poll's phase).
        order: u32,
    },
    Write {
        device: Arc<str>,
        point: usize,
        value: PointValue,
        reply: SyncSender<Result<Sample, Error>>,
    },
    Control {
        device: Arc<str>,
        control: Control,
        reply: SyncSender<Result<(), Error>>,
    },
    Stop,
}

pub(super) fn spawn(
    link: Link,
    commands: Receiver<Command>,
    shared: Arc<Shared>,
) -> io::Result<JoinHandle<()>> {
    let id = link.id();
    let worker = Worker {
        random: Random::new(&id),
        link,
        commands,
        shared,
        slots: Vec::new(),
        client: None,
        link_failures: 0,
        link_retry_at: Instant::now(),
        ever_connected: false,
        last_exchange_end: Instant::now(),
        events: Vec::new(),
    };
    thread::Builder::new()
        .name(std::format!("harvest {id}"))
        .stack_size(WORKER_STACK)
        .spawn(move || worker.run())
}

/// A device as its worker runs it.
struct Slot {
    device: Arc<Device>,
    plan: ReadPlan,
    /// The planner's input, grown by what exception 02 taught.
    limits: PlanConfig,
    next_due: Instant,
    /// Not before this (pause after connect).
    ready_at: Instant,
    /// Failed polls in a row; a device with failures is probed.
    failures: u32,
    /// When its probe was first held back for a healthy device.
    postponed_since: Option<Instant>,
    enabled: bool,
    connected: bool,
    /// The status last published.
    status: Status,
}

impl Slot {
    fn config(&self) -> &DeviceConfig {
        &self.device.config
    }

    fn active(&self) -> bool {
        self.enabled && self.connected
    }

    /// The first grid time at or after `at`.
    fn grid_at_or_after(&self, at: Instant) -> Instant {
        let interval = self.config().interval;
        let mut due = self.next_due;
        if due >= at {
            return due;
        }
        let behind = at.duration_since(due);
        let steps = behind.as_nanos().div_ceil(interval.as_nanos().max(1));
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        due += interval.saturating_mul(steps);
        due
    }
}

struct Worker {
    link: Link,
    commands: Receiver<Command>,
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    client: Option<LinkClient>,
    link_failures: u32,
    link_retry_at: Instant,
    ever_connected: bool,
    last_exchange_end: Instant,
    random: Random,
    /// Events of the current step, published together.
    events: Vec<Event>,
}

/// What one poll saw, to set the status afterwards.
#[derive(Default)]
struct Outcome {
    /// The device (or link) did not answer.
    silent: Option<String>,
    /// The device answered, but not everything was read.
    failed: Option<String>,
    requests: u32,
    link_lost: bool,
}

impl Worker {
    fn run(mut self) {
        log_info!("link {}: worker started", self.link);
        loop {
            if self.shared.stopping() {
                break;
            }
            loop {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if !self.handle(command) {
                            return self.finish();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.finish(),
                }
            }
            let now = Instant::now();
            let next = self.next_action(now);
            let wait = next.map_or(MAX_SLEEP, |(_, at)| at.saturating_duration_since(now));
            if !wait.is_zero() {
                match self.commands.recv_timeout(wait.min(MAX_SLEEP)) {
                    Ok(command) => {
                        if !self.handle(command) {
                            return self.finish();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return self.finish(),
                }
                if wait > MAX_SLEEP {
                    continue;
                }
            }
            if let Some((index, _)) = next {
                self.poll(index);
            }
        }
        self.finish();
    }

    fn finish(mut self) {
        // Dropping the client closes the link.
        self.client = None;
        for index in 0..self.slots.len() {
            if let Some(slot) = self.slots.get(index) {
                slot.device.state().mark_stale();
            }
        }
        log_info!("link {}: worker stopped", self.link);
    }

    /// Handles one command; `false` to stop.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Stop => return false,
            Command::Add {
                device,
                plan,
                limits,
                order,
            } => self.add(device, *plan, limits, order),
            Command::Write {
                device,
                point,
                value,
                reply,
            } => {
                let result = self.write(&device, point, &value);
                let _ = reply.send(result);
            }
            Command::Control {
                device,
                control,
                reply,
            } => {
                let result = self.control(&device, control);
                let _ = reply.send(result);
            }
        }
        self.flush_events();
        true
    }

    fn add(&mut self, device: Arc<Device>, plan: ReadPlan, limits: PlanConfig, order: u32) {
        let now = Instant::now();
        let config = &device.config;
        // Devices added together spread over the interval (golden-ratio steps of the engine's
        // order of adds), so they neither queue for a line nor wake the machine at one instant.
        let phase = f64::from(order) * 0.618_033_988_75 % 1.0;
        let next_due = now + config.interval.mul_f64(phase);
        log_info!(
            "device {}: {} point(s) in {} request(s) on {}: {}",
            device.name,
            config.points.len(),
            plan.reads().len(),
            self.link,
            PlanView::new(&plan, &limits)
        );
        let status = device.state().status.clone();
        self.slots.push(Slot {
            enabled: config.enabled,
            connected: true,
            device,
            plan,
            limits,
            next_due,
            ready_at: now,
            failures: 0,
            postponed_since: None,
            status,
        });
    }

    fn find(&self, device: &str) -> Result<usize, Error> {
        self.slots
            .iter()
            .position(|slot| &*slot.device.name == device)
            .ok_or_else(|| Error::UnknownDevice {
                device: device.into(),
            })
    }

    fn control(&mut self, device: &str, control: Control) -> Result<(), Error> {
        let index = self.find(device)?;
        let now = Instant::now();
        let Some(slot) = self.slots.get_mut(index) else {
            return Err(Error::UnknownDevice {
                device: device.into(),
            });
        };
        let status = match control {
            Control::Connect => {
                if !slot.enabled {
                    return Err(Error::Disabled {
                        device: device.into(),
                    });
                }
                slot.connected = true;
                Status::Connecting
            }
            Control::Enable => {
                slot.enabled = true;
                if slot.connected {
                    Status::Connecting
                } else {
                    Status::Disconnected
                }
            }
            Control::Disconnect => {
                slot.connected = false;
                if slot.enabled {
                    Status::Disconnected
                } else {
                    Status::Disabled
                }
            }
            Control::Disable => {
                slot.enabled = false;
                Status::Disabled
            }
        };
        if slot.active() && matches!(control, Control::Connect | Control::Enable) {
            slot.failures = 0;
            slot.next_due = now;
            slot.postponed_since = None;
        }
        if !slot.active() {
            slot.device.state().mark_stale();
        }
        log_info!("device {device}: {control:?} by the operator");
        self.set_status(index, status);
        if matches!(control, Control::Connect | Control::Enable) {
            // The operator asks for the link now: no waiting out its backoff.
            self.link_retry_at = now;
        }
        if self.client.is_some() && !self.slots.iter().any(Slot::active) {
            log_info!("link {}: closed, no device on it is polled", self.link);
            self.client = None;
        }
        Ok(())
    }

    /// The slot to poll next and when: the earliest due, except that a probe gives way to a
    /// healthy device due before the probe could end.
    fn next_action(&mut self, now: Instant) -> Option<(usize, Instant)> {
        let link_down_until = (self.client.is_none()).then_some(self.link_retry_at);
        let time = |slot: &Slot| -> Instant {
            let mut at = slot.next_due.max(slot.ready_at);
            if let Some(until) = link_down_until {
                at = at.max(until);
            }
            at
        };
        let (index, at) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.active())
            .map(|(index, slot)| (index, time(slot)))
            .min_by_key(|&(_, at)| at)?;
        let slot = self.slots.get(index)?;
        if slot.failures == 0 || self.client.is_none() {
            return Some((index, at));
        }
        // A probe: it may occupy the line for one response timeout.
        let start = at.max(now);
        let end = start + slot.config().response_timeout;
        let healthy = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, other)| other.active() && other.failures == 0)
            .map(|(other, slot)| (other, time(slot)))
            .filter(|&(_, due)| due < end)
            .min_by_key(|&(_, due)| due);
        let Some((other, due)) = healthy else {
            return Some((index, at));
        };
        let max_wait = slot.config().backoff.max;
        let slot = self.slots.get_mut(index)?;
        let since = *slot.postponed_since.get_or_insert(now);
        if now.duration_since(since) >= max_wait {
            return Some((index, at));
        }
        Some((other, due))
    }

    /// Opens the link; on failure every active device backs off with it.
    fn open_link(&mut self) -> bool {
        let now = Instant::now();
        match self.link.open() {
            Ok(transport) => {
                self.client = Some(Client::new(transport));
                if self.ever_connected {
                    log_info!(
                        "link {}: reconnected after {} failed attempts",
                        self.link,
                        self.link_failures
                    );
                } else {
                    log_info!("link {}: connected", self.link);
                }
                for slot in &mut self.slots {
                    slot.ready_at = now + slot.device.config.pause_after_connect;
                    if self.ever_connected && slot.active() {
                        slot.device.state().counters.reconnects += 1;
                    }
                }
                self.ever_connected = true;
                self.link_failures = 0;
                true
            }
            Err(error) => {
                self.link_failures = self.link_failures.saturating_add(1);
                let backoff = self.link_backoff();
                let delay = backoff.delay(self.link_failures, self.random.unit());
                self.link_retry_at = now + delay;
                log_warn!(
                    "link {}: cannot connect ({error}); attempt {} failed, next in {} ms",
                    self.link,
                    self.link_failures,
                    delay.as_millis()
                );
                let message = std::format!("cannot connect to {}: {error}", self.link);
                let until = SystemTime::now() + delay;
                let failures = self.link_failures;
                for index in 0..self.slots.len() {
                    let Some(slot) = self.slots.get_mut(index) else {
                        continue;
                    };
                    if !slot.active() {
                        continue;
                    }
                    slot.next_due = slot.grid_at_or_after(now + delay);
                    slot.device.state().mark_stale();
                    self.set_status(
                        index,
                        Status::BackingOff {
                            until,
                            error: message.clone(),
                            at: SystemTime::now(),
                            failures,
                        },
                    );
                }
                false
            }
        }
    }

    /// The link's backoff: the shortest of its devices'.
    fn link_backoff(&self) -> Backoff {
        self.slots
            .iter()
            .map(|slot| slot.device.config.backoff)
            .min_by_key(|backoff| backoff.initial)
            .unwrap_or_default()
    }

    fn lose_link(&mut self, error: &str) {
        log_warn!("link {}: lost ({error}); reopening", self.link);
        self.client = None;
        // Reopen at once: the next attempt's failure starts the backoff.
        self.link_retry_at = Instant::now();
    }

    /// Waits out the device's frame gap since the last exchange on the link.
    fn frame_gap(&self, gap: Duration) {
        if gap.is_zero() {
            return;
        }
        let ready = self.last_exchange_end + gap;
        let now = Instant::now();
        if ready > now {
            thread::sleep(ready - now);
        }
    }

    fn poll(&mut self, index: usize) {
        if self.client.is_none() && !self.open_link() {
            self.flush_events();
            return;
        }
        let started = Instant::now();
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let due = slot.next_due.max(slot.ready_at);
        let lateness = started.saturating_duration_since(due);
        let probing = slot.failures > 0;
        slot.postponed_since = None;
        let device = Arc::clone(&slot.device);
        let config = Arc::clone(&device.config);
        let reads = slot.plan.reads().len();
        let mut outcome = Outcome::default();
        let mut relearn: Vec<usize> = Vec::new();
        for read in 0..reads {
            if self.shared.stopping() {
                break;
            }
            self.frame_gap(config.frame_gap);
            let Some(client) = self.client.as_mut() else {
                break;
            };
            client.set_response_timeout(config.response_timeout);
            client.set_retry_policy(if probing && read == 0 {
                RetryPolicy::NONE
            } else {
                retry_policy(&config)
            });
            let Some(slot) = self.slots.get(index) else {
                return;
            };
            let sent = Instant::now();
            let result = slot.plan.execute_read(read, client);
            let rtt = sent.elapsed();
            self.last_exchange_end = Instant::now();
            let at = SystemTime::now();
            outcome.requests += 1;
            let split = record_read(&device, &slot.plan, read, result, rtt, at, &mut outcome);
            if split {
                relearn.push(read);
            }
            if outcome.link_lost {
                break;
            }
            if outcome.silent.is_some() {
                // Unanswered: the rest of the plan would most likely time out too, holding
                // the line for the other devices on it.
                break;
            }
        }
        let samples = device.drain_samples();
        self.events.extend(samples.into_iter().map(Event::Sample));
        for read in relearn.into_iter().rev() {
            self.split_read(index, read);
        }
        if outcome.link_lost {
            let message = outcome.silent.clone().unwrap_or_default();
            self.lose_link(&message);
        }
        self.finish_poll(index, due, lateness, started, &outcome);
        self.flush_events();
    }

    fn flush_events(&mut self) {
        self.shared.publish(&self.events);
        self.events.clear();
    }

    /// Status, schedule and counters after a poll.
    fn finish_poll(
        &mut self,
        index: usize,
        due: Instant,
        lateness: Duration,
        started: Instant,
        outcome: &Outcome,
    ) {
        let now = Instant::now();
        let random = self.random.unit();
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let config = Arc::clone(&slot.device.config);
        let status = if let Some(error) = &outcome.silent {
            slot.failures = slot.failures.saturating_add(1);
            let delay = config.backoff.delay(slot.failures, random);
            slot.next_due = slot.grid_at_or_after(now + delay);
            let wait = slot.next_due.saturating_duration_since(now);
            log_warn!(
                "device {}: {error}; failure {} in a row, backing off {} ms",
                slot.device.name,
                slot.failures,
                wait.as_millis()
            );
            slot.device.state().mark_stale();
            Status::BackingOff {
                until: SystemTime::now() + wait,
                error: error.clone(),
                at: SystemTime::now(),
                failures: slot.failures,
            }
        } else {
            if slot.failures > 0 {
                log_info!(
                    "device {}: answering again after {} failed polls",
                    slot.device.name,
                    slot.failures
                );
            }
            slot.failures = 0;
            slot.next_due = slot.grid_at_or_after(now.max(due + Duration::from_nanos(1)));
            match &outcome.failed {
                Some(error) => Status::Error {
                    error: error.clone(),
                    at: SystemTime::now(),
                },
                None => Status::Connected,
            }
        };
        {
            let mut state = slot.device.state();
            state.counters.polls += 1;
            state.counters.lateness.record(lateness);
            state.last_poll = Some(SystemTime::now());
        }
        self.events.push(Event::Polled(PollReport {
            device: Arc::clone(&slot.device.name),
            due,
            lateness,
            duration: now.saturating_duration_since(started),
            requests: outcome.requests,
            complete: outcome.silent.is_none() && outcome.failed.is_none(),
        }));
        self.set_status(index, status);
    }

    /// Publishes a status change (only a change).
    fn set_status(&mut self, index: usize, status: Status) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if slot.status == status {
            return;
        }
        slot.status = status.clone();
        slot.device.state().status = status.clone();
        log_debug!("device {}: status {}", slot.device.name, status.name());
        self.events.push(Event::Status {
            device: Arc::clone(&slot.device.name),
            status,
        });
    }

    /// Exception 02 on a read of several points: reads each point alone, learns where the
    /// holes are, and rebuilds the plan around them.
    fn split_read(&mut self, index: usize, read: usize) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let Some(planned) = slot.plan.reads().get(read).copied() else {
            return;
        };
        let members: Vec<(usize, crate::point::Point)> = slot
            .plan
            .points_of(read)
            .filter_map(|(point, _)| {
                let position = slot
                    .plan
                    .map()
                    .points()
                    .iter()
                    .position(|candidate| candidate.name == point.name)?;
                Some((position, point.clone()))
            })
            .collect();
        let device = Arc::clone(&slot.device);
        let config = Arc::clone(&device.config);
        let Ok(alone) = PointMap::new(members.iter().map(|(_, point)| point.clone())) else {
            return;
        };
        let mut one_each = slot.limits.clone();
        one_each.defaults.one_read_per_point = true;
        let Ok(alone_plan) = alone.plan(&one_each) else {
            return;
        };
        // Which points answer on their own.
        let mut refused: Vec<(u16, u16)> = Vec::new();
        for single in 0..alone_plan.reads().len() {
            self.frame_gap(config.frame_gap);
            let Some(client) = self.client.as_mut() else {
                return;
            };
            client.set_retry_policy(retry_policy(&config));
            let sent = Instant::now();
            let result = alone_plan.execute_read(single, client);
            let rtt = sent.elapsed();
            self.last_exchange_end = Instant::now();
            let refused_here = matches!(
                &result,
                Err(error) if error.exception() == Some(ExceptionCode::IllegalDataAddress)
            );
            if refused_here {
                if let Some(read) = alone_plan.reads().get(single) {
                    refused.push((read.address, read.last_address()));
                }
            }
            let mut outcome = Outcome::default();
            let remapped = result.map(|readings| {
                readings
                    .into_iter()
                    .filter_map(|reading| {
                        let (position, _) = members.get(reading.index)?;
                        Some((*position, reading.value))
                    })
                    .collect::<Vec<_>>()
            });
            record_results(
                &device,
                remapped,
                alone_plan
                    .points_of(single)
                    .filter_map(|(point, _)| {
                        members
                            .iter()
                            .find(|(_, member)| member.name == point.name)
                            .map(|(position, _)| *position)
                    })
                    .collect(),
                rtt,
                SystemTime::now(),
                &mut outcome,
            );
            if outcome.link_lost {
                self.lose_link(outcome.silent.as_deref().unwrap_or_default());
                return;
            }
        }
        let samples = device.drain_samples();
        self.events.extend(samples.into_iter().map(Event::Sample));
        self.learn_holes(index, planned, &members, &refused);
    }

    /// After [`split_read`](Self::split_read): records what the split taught and rebuilds the
    /// plan.
    fn learn_holes(
        &mut self,
        index: usize,
        planned: crate::point::PlannedRead,
        members: &[(usize, crate::point::Point)],
        refused: &[(u16, u16)],
    ) {
        // Learn: the read's addresses that no point covers are holes; if there are none, the
        // device refuses reads across its points, so each starts a new read.
        let table = planned.table;
        let mut covered = BTreeSet::new();
        for (_, point) in members {
            let last = point.last_address().unwrap_or(point.address);
            covered.extend(point.address..=last);
        }
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let device = Arc::clone(&slot.device);
        let limits = &mut slot.limits.defaults;
        let mut holes = 0;
        for address in planned.address..=planned.last_address() {
            if !covered.contains(&address) {
                limits.forbidden.insert((table, address));
                holes += 1;
            }
        }
        if holes == 0 || !refused.is_empty() {
            for (_, point) in members {
                if point.address > planned.address {
                    limits.boundaries.insert((table, point.address));
                }
                if let Some(after) = point.last_address().and_then(|last| last.checked_add(1)) {
                    if after <= planned.last_address() {
                        limits.boundaries.insert((table, after));
                    }
                }
            }
        }
        match slot.plan.map().plan(&slot.limits) {
            Ok(plan) => {
                let view = PlanView::new(&plan, &slot.limits);
                log_warn!(
                    "device {}: exception 02 on {} points read together; learned {holes} holes, new plan: {view}",
                    device.name,
                    members.len()
                );
                slot.plan = plan;
                let mut state = device.state();
                state.plan = view;
                state.counters.plan_rebuilds += 1;
            }
            Err(error) => {
                log_warn!("device {}: cannot rebuild the plan: {error}", device.name);
            }
        }
    }

    fn write(&mut self, device: &str, point: usize, value: &PointValue) -> Result<Sample, Error> {
        let index = self.find(device)?;
        let Some(slot) = self.slots.get(index) else {
            return Err(Error::UnknownDevice {
                device: device.into(),
            });
        };
        if !slot.enabled {
            return Err(Error::Disabled {
                device: device.into(),
            });
        }
        if !slot.connected {
            return Err(Error::Disconnected {
                device: device.into(),
            });
        }
        let device_arc = Arc::clone(&slot.device);
        let config = Arc::clone(&device_arc.config);
        let Some(target) = config.points.points().get(point).cloned() else {
            return Err(Error::UnknownPoint {
                device: device.into(),
                point: point.to_string(),
            });
        };
        // Refuse what cannot be encoded before touching the link.
        let mut scratch = [0u16; crate::pdu::MAX_WRITE_REGISTERS as usize];
        if let Err(error) = target.write_request(value, &mut scratch) {
            return Err(Error::Value {
                point: target.name.clone(),
                error,
            });
        }
        if self.client.is_none() && !self.open_link() {
            self.flush_events();
            return Err(Error::NoAnswer {
                device: device.into(),
                message: std::format!("link {} cannot be opened", self.link),
            });
        }
        self.frame_gap(config.frame_gap);
        let Some(client) = self.client.as_mut() else {
            return Err(Error::Stopped);
        };
        client.set_response_timeout(config.response_timeout);
        client.set_retry_policy(retry_policy(&config));
        let sent = Instant::now();
        let result = target.write(client, value);
        let rtt = sent.elapsed();
        self.last_exchange_end = Instant::now();
        {
            let mut state = device_arc.state();
            state.counters.requests += 1;
            match &result {
                Ok(()) => {
                    state.counters.responses += 1;
                    state.counters.last_rtt = Some(rtt);
                    state.counters.rtt.record(rtt);
                }
                Err(error) => count_error(&mut state.counters, error),
            }
        }
        match result {
            Ok(()) => {
                log_info!("device {device}: wrote {value:?} to {}", target.name);
            }
            Err(DeviceError::Client(client::Error::Exception(exception))) => {
                log_warn!(
                    "device {device}: write to {} refused: {exception}",
                    target.name
                );
                return Err(Error::Exception {
                    device: device.into(),
                    exception,
                });
            }
            Err(DeviceError::Write(error)) => {
                return Err(Error::Value {
                    point: target.name.clone(),
                    error,
                });
            }
            Err(error) => {
                if matches!(error, DeviceError::Client(client::Error::Io(_))) {
                    self.lose_link(&error.to_string());
                }
                log_warn!("device {device}: write to {} failed: {error}", target.name);
                return Err(Error::NoAnswer {
                    device: device.into(),
                    message: error.to_string(),
                });
            }
        }
        self.read_back(&device_arc, point, target)
    }

    /// Reads a point just written, so the caller and the subscribers see what the device holds.
    fn read_back(
        &mut self,
        device_arc: &Arc<Device>,
        point: usize,
        target: crate::point::Point,
    ) -> Result<Sample, Error> {
        let config = Arc::clone(&device_arc.config);
        let Ok(alone) = PointMap::new([target]) else {
            return Err(Error::Stopped);
        };
        let mut plan_config = PlanConfig::default();
        plan_config.defaults.one_read_per_point = true;
        let Ok(plan) = alone.plan(&plan_config) else {
            return Err(Error::Stopped);
        };
        self.frame_gap(config.frame_gap);
        let Some(client) = self.client.as_mut() else {
            return Err(Error::Stopped);
        };
        let sent = Instant::now();
        let result = plan.execute_read(0, client);
        let rtt = sent.elapsed();
        self.last_exchange_end = Instant::now();
        let mut outcome = Outcome::default();
        record_results(
            device_arc,
            result.map(|readings| {
                readings
                    .into_iter()
                    .map(|reading| (point, reading.value))
                    .collect()
            }),
            std::vec![point],
            rtt,
            SystemTime::now(),
            &mut outcome,
        );
        let samples = device_arc.drain_samples();
        let sample = samples.last().cloned();
        self.events.extend(samples.into_iter().map(Event::Sample));
        if outcome.link_lost {
            self.lose_link(outcome.silent.as_deref().unwrap_or_default());
        }
        sample.ok_or(Error::Stopped)
    }
}

/// Decoded points of one request: (index in the device's map, value or why not).
type PointReadings = Vec<(usize, Result<PointValue, crate::value::ValueError>)>;

/// The client's retry policy for a device.
fn retry_policy(config: &DeviceConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: config.retries.saturating_add(1),
        initial_backoff: config.retry_delay,
        max_backoff: config.retry_delay.saturating_mul(8),
        retry_writes: false,
    }
}

/// Counts a failed request.
fn count_error(counters: &mut super::state::Counters, error: &DeviceError) {
    match error {
        DeviceError::Client(client::Error::Exception(exception)) => {
            counters.responses += 1;
            *counters
                .exceptions
                .entry(exception.code.value())
                .or_insert(0) += 1;
        }
        DeviceError::Client(client::Error::Timeout { attempts }) => {
            counters.timeouts += 1;
            counters.retries += u64::from(attempts.saturating_sub(1));
        }
        DeviceError::Client(client::Error::UnexpectedResponse(_) | client::Error::Frame(_))
        | DeviceError::Plan(_) => {
            counters.invalid_responses += 1;
        }
        _ => {}
    }
}

/// Records one planned read's result; `true` when it should be split (exception 02 on a
/// read of several points).
fn record_read(
    device: &Arc<Device>,
    plan: &ReadPlan,
    read: usize,
    result: ReadResult<'_>,
    rtt: Duration,
    at: SystemTime,
    outcome: &mut Outcome,
) -> bool {
    let indices: Vec<usize> = plan
        .points_of(read)
        .filter_map(|(point, _)| {
            plan.map()
                .points()
                .iter()
                .position(|candidate| candidate.name == point.name)
        })
        .collect();
    let split = indices.len() > 1
        && matches!(&result, Err(error) if error.exception() == Some(ExceptionCode::IllegalDataAddress));
    let result = result.map(|readings: Vec<Reading<'_>>| {
        readings
            .into_iter()
            .map(|reading| (reading.index, reading.value))
            .collect()
    });
    if split {
        // Counted, not recorded: the points are read one by one right after.
        let mut state = device.state();
        state.counters.requests += 1;
        if let Err(error) = &result {
            count_error(&mut state.counters, error);
        }
        state.counters.last_rtt = Some(rtt);
        state.counters.rtt.record(rtt);
        return true;
    }
    record_results(device, result, indices, rtt, at, outcome);
    false
}

/// Records the samples of one request and counts it.
fn record_results(
    device: &Arc<Device>,
    result: Result<PointReadings, DeviceError>,
    indices: Vec<usize>,
    rtt: Duration,
    at: SystemTime,
    outcome: &mut Outcome,
) {
    let mut state = device.state();
    state.counters.requests += 1;
    match result {
        Ok(readings) => {
            state.counters.responses += 1;
            state.counters.last_rtt = Some(rtt);
            state.counters.rtt.record(rtt);
            for (index, value) in readings {
                let value = value.map_err(|error| {
                    let reason: Arc<str> = std::format!("does not decode: {error}").into();
                    outcome.failed.get_or_insert_with(|| reason.to_string());
                    reason
                });
                device.push_sample(&mut state, index, value, at);
            }
        }
        Err(error) => {
            count_error(&mut state.counters, &error);
            let reason: Arc<str> = error.to_string().into();
            match &error {
                DeviceError::Client(client::Error::Exception(_)) => {
                    state.counters.last_rtt = Some(rtt);
                    state.counters.rtt.record(rtt);
                    outcome.failed.get_or_insert_with(|| reason.to_string());
                }
                DeviceError::Client(client::Error::Io(_)) => {
                    outcome.link_lost = true;
                    outcome
                        .silent
                        .get_or_insert_with(|| std::format!("link lost: {reason}"));
                }
                DeviceError::Client(client::Error::Timeout { .. }) => {
                    outcome.silent.get_or_insert_with(|| reason.to_string());
                }
                _ => {
                    log_warn!("device {}: discarded an answer: {reason}", device.name);
                    outcome.silent.get_or_insert_with(|| reason.to_string());
                }
            }
            for index in indices {
                device.push_sample(&mut state, index, Err(Arc::clone(&reason)), at);
            }
        }
    }
}

impl Device {
    /// Records a sample and queues it for subscribers.
    fn push_sample(
        &self,
        state: &mut super::state::DeviceState,
        index: usize,
        value: Result<PointValue, Arc<str>>,
        at: SystemTime,
    ) {
        if let Some(sample) = state.record(&self.name, index, value, at) {
            state.pending.push(sample);
        }
    }

    /// The samples recorded since the last call.
    fn drain_samples(&self) -> Vec<Sample> {
        core::mem::take(&mut self.state().pending)
    }
}
