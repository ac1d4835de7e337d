//! The engine handle: devices, their links' workers, subscriptions, and the calls that reach a
//! worker (writes, connect, disconnect, enable, disable).

use std::boxed::Box;
use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::config::{DeviceConfig, Link};
use super::state::{DeviceSnapshot, DeviceState, PlanView, Sample, Status};
use super::worker::{self, Command};
use crate::pdu::ExceptionResponse;
use crate::point::{PlanConfig, PlanError, PointValue, WriteError};

/// Why an engine call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No device has this name.
    #[error("no device named {device:?}")]
    UnknownDevice {
        /// The name asked for.
        device: String,
    },
    /// The device has no point of this name.
    #[error("device {device:?} has no point named {point:?}")]
    UnknownPoint {
        /// The device.
        device: String,
        /// The name asked for.
        point: String,
    },
    /// A device of this name exists already.
    #[error("a device named {device:?} exists already")]
    DuplicateDevice {
        /// The name.
        device: String,
    },
    /// The device's configuration cannot work; the message says what to change.
    #[error("device {device:?}: {message}")]
    InvalidDevice {
        /// The device.
        device: String,
        /// What is wrong.
        message: String,
    },
    /// The device's link is the same port or address as another device's, with other settings.
    #[error(
        "device {device:?}: link {link} is already used by device {other:?} with other settings; devices on one link must use the same framing and settings"
    )]
    LinkConflict {
        /// The device.
        device: String,
        /// Its link.
        link: String,
        /// A device already on it.
        other: String,
    },
    /// The point map cannot be planned under the device's limits.
    #[error("device {device:?}: {error}")]
    Plan {
        /// The device.
        device: String,
        /// Why.
        error: PlanError,
    },
    /// The point is not configured writable.
    #[error("point {point:?} of device {device:?} is read-only")]
    ReadOnly {
        /// The device.
        device: String,
        /// The point.
        point: String,
    },
    /// The device is disabled.
    #[error("device {device:?} is disabled; enable it first")]
    Disabled {
        /// The device.
        device: String,
    },
    /// The device was disconnected by the operator.
    #[error("device {device:?} is disconnected; connect it first")]
    Disconnected {
        /// The device.
        device: String,
    },
    /// The value does not suit the point (type, range); nothing was sent.
    #[error("point {point:?}: {error}")]
    Value {
        /// The point.
        point: String,
        /// Why.
        error: WriteError,
    },
    /// The device answered with an exception response.
    #[error("device {device:?} answered with {exception}")]
    Exception {
        /// The device.
        device: String,
        /// The exception (function and code).
        exception: ExceptionResponse,
    },
    /// The device did not answer in time.
    #[error("device {device:?} did not answer ({message})")]
    NoAnswer {
        /// The device.
        device: String,
        /// The timeout or the link failure.
        message: String,
    },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Stopped,
}

/// Something that happened in the engine, for subscribers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A point was read (or its read failed: [`Quality::Bad`](super::Quality::Bad)).
    Sample(Sample),
    /// A device's status changed.
    Status {
        /// The device.
        device: Arc<str>,
        /// Its new status.
        status: Status,
    },
    /// A device's poll ended.
    Polled(PollReport),
}

/// One poll, for schedules and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// The device.
    pub device: Arc<str>,
    /// When it was due.
    pub due: Instant,
    /// How late it started.
    pub lateness: Duration,
    /// How long it took.
    pub duration: Duration,
    /// Requests sent.
    pub requests: u32,
    /// `true` when every point was read.
    pub complete: bool,
}

/// A stream of [`Event`]s from [`Engine::subscribe`].
///
/// Its channel is bounded: when the subscriber falls behind, the engine drops the events that
/// do not fit (and counts them, [`dropped`](Self::dropped)) rather than wait: a slow subscriber
/// never slows polling. Dropping the subscription unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    receiver: Receiver<Event>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event, waiting as long as it takes; `None` once the engine has shut down.
    #[must_use]
    pub fn recv(&self) -> Option<Event> {
        self.receiver.recv().ok()
    }

    /// The next event, waiting at most `timeout`; `None` on timeout or after shutdown.
    #[must_use]
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    #[must_use]
    pub fn try_recv(&self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }

    /// Events dropped because the channel was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Subscriber {
    sender: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
}

/// What every worker shares with the handle.
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    /// Devices added so far, engine-wide: each one's first poll takes the next golden-ratio
    /// phase of its interval, so devices on different links (each worker alone on its own)
    /// spread over the interval as well as devices sharing one.
    pub(super) added: AtomicU32,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl Shared {
    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hands `events` to every subscriber, without waiting.
    pub(super) fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|subscriber| {
            for event in events {
                match subscriber.sender.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        subscriber.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }
}

/// One device as the handle knows it.
pub(super) struct Device {
    pub(super) config: Arc<DeviceConfig>,
    pub(super) name: Arc<str>,
    pub(super) state: Mutex<DeviceState>,
    link: String,
}

impl Device {
    pub(super) fn state(&self) -> MutexGuard<'_, DeviceState> {
        lock(&self.state)
    }
}

struct LinkWorker {
    link: Link,
    /// A device on it, named in conflicts.
    first_device: String,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

/// Polls many devices on many links, keeps their status, latest values and history, and takes
/// writes. See the [module documentation](super).
pub struct Engine {
    shared: Arc<Shared>,
    devices: RwLock<BTreeMap<String, Arc<Device>>>,
    links: Mutex<BTreeMap<String, LinkWorker>>,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("devices", &self.device_names())
            .finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked mid-update leaves data that is still consistent field by field.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    /// An engine without devices.
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                added: AtomicU32::new(0),
                subscribers: Mutex::new(Vec::new()),
            }),
            devices: RwLock::new(BTreeMap::new()),
            links: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds a device and starts polling it (unless it is disabled). Its link is opened by the
    /// link's worker, started now if the link is new; a device whose link cannot be opened
    /// yet is added all the same, backs off, and is polled once the link opens.
    ///
    /// # Errors
    /// [`Error::DuplicateDevice`], [`Error::InvalidDevice`], [`Error::LinkConflict`],
    /// [`Error::Plan`], [`Error::Stopped`].
    pub fn add_device(&self, config: DeviceConfig) -> Result<(), Error> {
        if self.shared.stopping() {
            return Err(Error::Stopped);
        }
        let plan_config = PlanConfig {
            defaults: config.limits.clone(),
            devices: BTreeMap::new(),
        };
        validate(&config)?;
        let plan = config
            .points
            .plan(&plan_config)
            .map_err(|error| Error::Plan {
                device: config.name.clone(),
                error,
            })?;
        let view = PlanView::new(&plan, &plan_config);
        let link_id = config.link.id();
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        if devices.contains_key(&config.name) {
            return Err(Error::DuplicateDevice {
                device: config.name.clone(),
            });
        }
        let mut links = lock(&self.links);
        if let Some(worker) = links.get(&link_id) {
            if !same_link_settings(&worker.link, &config.link) {
                return Err(Error::LinkConflict {
                    device: config.name.clone(),
                    link: config.link.to_string(),
                    other: worker.first_device.clone(),
                });
            }
        }
        let config = Arc::new(config);
        let device = Arc::new(Device {
            name: config.name.as_str().into(),
            state: Mutex::new(DeviceState::new(&config, view)),
            link: link_id.clone(),
            config: Arc::clone(&config),
        });
        let command = Command::Add {
            device: Arc::clone(&device),
            plan: Box::new(plan),
            limits: plan_config,
            order: self.shared.added.fetch_add(1, Ordering::Relaxed),
        };
        if let Some(worker) = links.get(&link_id) {
            worker.commands.send(command).map_err(|_| Error::Stopped)?;
        } else {
            let (commands, receiver) = mpsc::channel();
            commands.send(command).map_err(|_| Error::Stopped)?;
            let thread = worker::spawn(config.link.clone(), receiver, Arc::clone(&self.shared))
                .map_err(|error| Error::InvalidDevice {
                    device: config.name.clone(),
                    message: std::format!("cannot start a worker thread: {error}"),
                })?;
            links.insert(
                link_id,
                LinkWorker {
                    link: config.link.clone(),
                    first_device: config.name.clone(),
                    commands,
                    thread: Some(thread),
                },
            );
        }
        devices.insert(config.name.clone(), device);
        Ok(())
    }

    /// The names of the devices, in name order.
    #[must_use]
    pub fn device_names(&self) -> Vec<String> {
        self.read_devices().keys().cloned().collect()
    }

    /// Everything known about device `name` now.
    #[must_use]
    pub fn device(&self, name: &str) -> Option<DeviceSnapshot> {
        let device = self.find(name).ok()?;
        let snapshot = device.state().snapshot(&device.config);
        Some(snapshot)
    }

    /// Every device's snapshot, in name order.
    #[must_use]
    pub fn devices(&self) -> Vec<DeviceSnapshot> {
        let devices: Vec<Arc<Device>> = self.read_devices().values().cloned().collect();
        devices
            .iter()
            .map(|device| device.state().snapshot(&device.config))
            .collect()
    }

    /// The latest `limit` samples of point `point` of device `device`, oldest first.
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::UnknownPoint`].
    pub fn history(&self, device: &str, point: &str, limit: usize) -> Result<Vec<Sample>, Error> {
        let found = self.find(device)?;
        let index = point_index(&found, point)?;
        let samples = found.state().history(&found.name, index, limit);
        Ok(samples)
    }

    /// Writes `value` to point `point` of device `device` (typed and scaled by
    /// [`Point::write_request`](crate::point::Point::write_request)) through the device's link
    /// worker, in order with its polls, and waits for the device's answer. On success the
    /// point is read back at once; the new sample is returned (and published).
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::UnknownPoint`], [`Error::ReadOnly`],
    /// [`Error::Disabled`], [`Error::Disconnected`], [`Error::Value`], [`Error::Exception`],
    /// [`Error::NoAnswer`], [`Error::Stopped`].
    pub fn write(&self, device: &str, point: &str, value: PointValue) -> Result<Sample, Error> {
        let found = self.find(device)?;
        let index = point_index(&found, point)?;
        if !found.config.writable.contains(point) {
            return Err(Error::ReadOnly {
                device: device.into(),
                point: point.into(),
            });
        }
        self.ask(&found, |reply| Command::Write {
            device: Arc::clone(&found.name),
            point: index,
            value,
            reply,
        })?
    }

    /// Puts a device back on its link after [`disconnect`](Self::disconnect) (the link is
    /// opened if it was closed) and polls it at once.
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::Disabled`], [`Error::Stopped`].
    pub fn connect(&self, device: &str) -> Result<(), Error> {
        self.control(device, worker::Control::Connect)
    }

    /// Stops polling a device and marks it [`Status::Disconnected`]; its link is closed when
    /// no other device on it is still polled.
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::Stopped`].
    pub fn disconnect(&self, device: &str) -> Result<(), Error> {
        self.control(device, worker::Control::Disconnect)
    }

    /// Enables a disabled device: it is polled at once.
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::Stopped`].
    pub fn enable(&self, device: &str) -> Result<(), Error> {
        self.control(device, worker::Control::Enable)
    }

    /// Disables a device: not polled, not written, [`Status::Disabled`].
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::Stopped`].
    pub fn disable(&self, device: &str) -> Result<(), Error> {
        self.control(device, worker::Control::Disable)
    }

    /// A new subscription to every [`Event`] from now on, with room for `capacity` events
    /// (at least 1) between the engine and the subscriber.
    #[must_use]
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        lock(&self.shared.subscribers).push(Subscriber {
            sender,
            dropped: Arc::clone(&dropped),
        });
        Subscription { receiver, dropped }
    }

    /// Stops every worker and waits for them. A worker finishes the request it is waiting for
    /// (at most one response timeout), records it, and closes its link. Subscriptions end.
    /// Calling it again does nothing; dropping the engine calls it.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let workers: Vec<LinkWorker> = {
            let mut links = lock(&self.links);
            let taken = core::mem::take(&mut *links);
            taken.into_values().collect()
        };
        for worker in &workers {
            let _ = worker.commands.send(Command::Stop);
        }
        for mut worker in workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
        lock(&self.shared.subscribers).clear();
    }

    fn read_devices(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Device>>> {
        self.devices.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, name: &str) -> Result<Arc<Device>, Error> {
        self.read_devices()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownDevice {
                device: name.into(),
            })
    }

    fn control(&self, device: &str, control: worker::Control) -> Result<(), Error> {
        let found = self.find(device)?;
        self.ask(&found, |reply| Command::Control {
            device: Arc::clone(&found.name),
            control,
            reply,
        })?
    }

    /// Sends a command to `device`'s worker and waits for its answer.
    fn ask<R>(
        &self,
        device: &Device,
        command: impl FnOnce(SyncSender<R>) -> Command,
    ) -> Result<R, Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let links = lock(&self.links);
            let worker = links.get(&device.link).ok_or(Error::Stopped)?;
            worker
                .commands
                .send(command(reply))
                .map_err(|_| Error::Stopped)?;
        }
        answer.recv().map_err(|_| Error::Stopped)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn point_index(device: &Device, point: &str) -> Result<usize, Error> {
    device
        .config
        .points
        .points()
        .iter()
        .position(|candidate| candidate.name == point)
        .ok_or_else(|| Error::UnknownPoint {
            device: device.config.name.clone(),
            point: point.into(),
        })
}

/// Links with the same id must be configured the same way.
fn same_link_settings(a: &Link, b: &Link) -> bool {
    a == b
}

/// Checks what the planner does not.
fn validate(config: &DeviceConfig) -> Result<(), Error> {
    let invalid = |message: String| Error::InvalidDevice {
        device: config.name.clone(),
        message,
    };
    if config.name.trim().is_empty() {
        return Err(invalid("the name is empty".into()));
    }
    if !config.link.framing_fits() {
        return Err(invalid(std::format!(
            "framing {:?} does not run on link {}",
            config.link.framing(),
            config.link
        )));
    }
    if config.link.framing().has_broadcast() && !(1..=247).contains(&config.unit_id) {
        return Err(invalid(std::format!(
            "unit id {} is outside 1..=247, the unicast addresses of a serial line",
            config.unit_id
        )));
    }
    if config.interval.is_zero() {
        return Err(invalid("the poll interval is zero".into()));
    }
    if config.response_timeout.is_zero() {
        return Err(invalid("the response timeout is zero".into()));
    }
    if config.points.is_empty() {
        return Err(invalid("it has no points".into()));
    }
    for point in config.points.points() {
        if point.unit_id != config.unit_id {
            return Err(invalid(std::format!(
                "point {:?} is for unit id {}, the device is unit id {}",
                point.name,
                point.unit_id,
                config.unit_id
            )));
        }
    }
    for name in &config.writable {
        let point = config
            .points
            .get(name)
            .ok_or_else(|| invalid(std::format!("writable point {name:?} does not exist")))?;
        if !point.table.is_writable() {
            return Err(invalid(std::format!(
                "point {name:?} is in {}, which cannot be written",
                super::state::table_name(point.table)
            )));
        }
    }
    Ok(())
}
