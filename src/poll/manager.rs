//! Plans and points on the wire: executing a [`ReadPlan`] with a blocking [`Client`], writing a
//! [`PointValue`] to a [`Point`], and a [`DeviceManager`] that polls many devices.
//!
//! The planner and the map stay pure (they only build requests and decode data); this module is
//! the one place where the poll layer meets a client, so the I/O policy lives here: which
//! failures end a plan early, which belong to one read only, and how a device that stops
//! answering is backed off.

use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use super::map::{Point, PointMap, PointValue, Table, WriteError};
use super::plan::{PlanConfig, PlanError, PlannedRead, ReadData, ReadPlan, Reading};
use crate::client::{self, Client};
use crate::error::DecodeError;
use crate::pdu::{MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_REGISTERS, Request, Response};
use crate::time::Instant;
use crate::transport::Transport;
use core::time::Duration;

/// Longest a failing device waits between polls unless [`DeviceManager::set_max_backoff`] says
/// otherwise.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a read, a write or a poll failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// The client call failed: an exception response, a timeout, a lost link.
    #[error(transparent)]
    Client(#[from] client::Error),
    /// The data returned does not fit the planned read.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The value cannot be written to the point.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// [`DeviceManager::add`] was given a name it already has.
    #[error("device name {name:?} is used twice")]
    DuplicateDevice {
        /// The name.
        name: String,
    },
}

/// What one planned read gave: the readings of its points, or why it failed.
pub type ReadResult<'m> = Result<Vec<Reading<'m>>, PollError>;

impl<'m> ReadPlan<'m> {
    /// Runs every read of the plan through `client`, one request at a time, and decodes the
    /// answers; `results[i]` belongs to [`reads()[i]`](Self::reads).
    ///
    /// Reads go into fixed buffers with the allocation-free `read_*_into` calls, so the only
    /// allocations are the result vectors. Works on every framing; on Modbus TCP,
    /// [`execute_pipelined`](Self::execute_pipelined) keeps the reads in flight together.
    ///
    /// A failure of one read (an exception response such as 02 for an address the device does
    /// not have, a timeout, an unexpected response) is that read's `Err` only: the other reads
    /// still run and their points still decode. Only a link that is gone for good
    /// ([`client::Error::Io`], after the transport's own reconnection attempts) ends the plan
    /// early, since every further read would wait for the same reconnection to fail.
    ///
    /// ```
    /// use modbus_stack::client::Client;
    /// use modbus_stack::poll::{PlanConfig, Point, PointKind, PointMap, PointValue, Table};
    /// use modbus_stack::server::tcp::{Config, TcpServer};
    /// use modbus_stack::transport::tcp;
    /// use modbus_stack::value::{DataType, Order};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", Config::tcp())?
    ///     .spawn(modbus_stack::sim::unit_map())?;
    /// let mut client = Client::tcp(server.local_addr(), tcp::Config::default())?;
    /// let map = PointMap::new([
    ///     Point::new("level", 1, Table::HoldingRegisters, 0, PointKind::number(DataType::F32, Order::Cdab)),
    ///     Point::new("count", 1, Table::InputRegisters, 7, PointKind::number(DataType::U16, Order::Abcd)),
    /// ])?;
    /// map.points()[0].write(&mut client, &PointValue::F32(1.5))?;
    /// let plan = map.plan(&PlanConfig::default())?;
    /// for result in plan.execute(&mut client)? {
    ///     for reading in result? {
    ///         println!("{} = {:?}", reading.point.name, reading.value);
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`PollError::Client`] with [`client::Error::Io`] when the link failed and could not be
    /// reopened.
    pub fn execute<T: Transport>(
        &self,
        client: &mut Client<T>,
    ) -> Result<Vec<ReadResult<'m>>, PollError> {
        // The planner never builds a read larger than the specification allows, so these
        // buffers fit every read; an oversized one would become an empty slice, which the
        // client refuses as an invalid request instead of panicking here.
        let mut words = [0u16; MAX_READ_REGISTERS as usize];
        let mut bits = [false; MAX_READ_BITS as usize];
        let mut results = Vec::with_capacity(self.reads().len());
        for (index, read) in self.reads().iter().enumerate() {
            let len = usize::from(read.quantity);
            let (unit_id, address) = (read.unit_id, read.address);
            let data = if read.table.is_bits() {
                let out = bits.get_mut(..len).unwrap_or_default();
                let done = if read.table == Table::Coils {
                    client.read_coils_into(unit_id, address, out)
                } else {
                    client.read_discrete_inputs_into(unit_id, address, out)
                };
                done.map(|()| ReadData::from(&*out))
            } else {
                let out = words.get_mut(..len).unwrap_or_default();
                let done = if read.table == Table::HoldingRegisters {
                    client.read_holding_registers_into(unit_id, address, out)
                } else {
                    client.read_input_registers_into(unit_id, address, out)
                };
                done.map(|()| ReadData::from(&*out))
            };
            match data {
                Ok(data) => results.push(self.decode_read(index, data).map_err(PollError::from)),
                Err(client::Error::Io(error)) => return Err(client::Error::Io(error).into()),
                Err(error) => results.push(Err(error.into())),
            }
        }
        Ok(results)
    }

    /// As [`execute`](Self::execute), but the reads of each unit id go out as one
    /// [`Client::pipeline`]: on Modbus TCP they are all in flight at once (up to
    /// [`client::MAX_PIPELINE`]), on the other framings they are sent one after the other.
    ///
    /// Pipelining saves a round trip per read, but some TCP gateways answer one request at a
    /// time and drop the rest; use it towards servers known to handle it. The points decode
    /// straight from the response buffers.
    ///
    /// # Errors
    /// [`PollError::Client`] when the link failed for good.
    pub fn execute_pipelined<T: Transport>(
        &self,
        client: &mut Client<T>,
    ) -> Result<Vec<ReadResult<'m>>, PollError> {
        let reads = self.reads();
        let mut results = Vec::with_capacity(reads.len());
        let mut start = 0;
        // The plan groups reads by unit id, and one pipeline addresses one unit id.
        while let Some(first) = reads.get(start) {
            let unit_id = first.unit_id;
            let rest = reads.get(start..).unwrap_or_default();
            let end = rest
                .iter()
                .position(|read| read.unit_id != unit_id)
                .map_or(reads.len(), |len| start + len);
            let requests: Vec<Request<'static>> = reads
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(PlannedRead::to_request)
                .collect();
            let batch = client.pipeline(unit_id, &requests, |offset, response| {
                Ok(self.decode_response(start + offset, response))
            })?;
            results.extend(batch.into_iter().map(|result| {
                result
                    .map_err(PollError::from)
                    .and_then(|readings| readings)
            }));
            start = end;
        }
        Ok(results)
    }

    /// Decodes the response to read `index`.
    fn decode_response(&self, index: usize, response: &Response<'_>) -> ReadResult<'m> {
        let data = match response {
            Response::ReadCoils { values } | Response::ReadDiscreteInputs { values } => {
                ReadData::Bits(*values)
            }
            Response::ReadHoldingRegisters { values } | Response::ReadInputRegisters { values } => {
                ReadData::Registers(*values)
            }
            // The session matches the function to the request; this is only a safety net.
            other => {
                let expected = self
                    .reads()
                    .get(index)
                    .map_or(other.function(), |read| read.to_request().function());
                return Err(
                    client::Error::UnexpectedResponse(DecodeError::UnexpectedFunction {
                        expected,
                        actual: other.function().value(),
                    })
                    .into(),
                );
            }
        };
        Ok(self.decode_read(index, data)?)
    }
}

impl Point {
    /// Writes `value` to this point through `client`, with the request
    /// [`write_request`](Self::write_request) builds (FC 05, 06, 16 or 22), to the point's unit
    /// id.
    ///
    /// # Errors
    /// [`PollError::Write`] when the value does not suit the point (nothing is sent), and
    /// [`PollError::Client`] when the call fails.
    pub fn write<T: Transport>(
        &self,
        client: &mut Client<T>,
        value: &PointValue,
    ) -> Result<(), PollError> {
        // Large enough for any single write; a longer string fails to encode, it is not cut.
        let mut buf = [0u16; MAX_WRITE_REGISTERS as usize];
        let request = self.write_request(value, &mut buf)?;
        client.send(self.unit_id, &request)?;
        Ok(())
    }
}

/// How a device has been answering, as the [`DeviceManager`] saw it.
///
/// A poll *fails* when any of its reads fails (or the link does); points that were read keep
/// their new values either way. A point that is read but does not decode (a string that is not
/// UTF-8) keeps its previous value and does not count as a failure: the device answered.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeviceHealth {
    /// Polls made.
    pub polls: u64,
    /// Failed polls in a row, 0 after a poll without error.
    pub consecutive_failures: u32,
    /// The first error of the latest poll; `None` when it had none.
    pub last_error: Option<PollError>,
    /// When the latest poll was made.
    pub last_poll: Option<Instant>,
    /// When the latest poll without error was made.
    pub last_success: Option<Instant>,
    /// When the device is due next: one interval after a good poll, longer after failures.
    pub next_poll: Instant,
}

/// One device of a [`DeviceManager`]: a client, the plan of its point map, its latest values
/// and its health.
pub struct Device<'m, T: Transport> {
    name: String,
    client: Client<T>,
    plan: ReadPlan<'m>,
    interval: Duration,
    pipelined: bool,
    /// Each point's latest decoded value and the time of the poll that read it.
    values: BTreeMap<&'m str, (PointValue, Instant)>,
    health: DeviceHealth,
}

impl<T: Transport> core::fmt::Debug for Device<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.name)
            .field("reads", &self.plan.reads().len())
            .field("interval", &self.interval)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl<'m, T: Transport> Device<'m, T> {
    /// The device's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plan computed from its point map when it was added.
    #[must_use]
    pub fn plan(&self) -> &ReadPlan<'m> {
        &self.plan
    }

    /// How it has been answering.
    #[must_use]
    pub fn health(&self) -> &DeviceHealth {
        &self.health
    }

    /// The latest value read for point `point` (by name), kept across failed polls; see
    /// [`read_at`](Self::read_at) for its age.
    #[must_use]
    pub fn latest(&self, point: &str) -> Option<&PointValue> {
        self.values.get(point).map(|(value, _)| value)
    }

    /// When the value [`latest`](Self::latest) returns was read (the `now` of that poll).
    #[must_use]
    pub fn read_at(&self, point: &str) -> Option<Instant> {
        self.values.get(point).map(|&(_, at)| at)
    }

    /// The client, for writes ([`Point::write`]) or settings between polls.
    pub fn client_mut(&mut self) -> &mut Client<T> {
        &mut self.client
    }

    /// Polls with [`ReadPlan::execute_pipelined`] instead of [`ReadPlan::execute`].
    pub fn set_pipelined(&mut self, pipelined: bool) {
        self.pipelined = pipelined;
    }

    fn poll(&mut self, now: Instant, max_backoff: Duration) {
        let outcome = if self.pipelined {
            self.plan.execute_pipelined(&mut self.client)
        } else {
            self.plan.execute(&mut self.client)
        };
        let mut first_error = None;
        match outcome {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(readings) => {
                            for reading in readings {
                                if let Ok(value) = reading.value {
                                    self.values
                                        .insert(reading.point.name.as_str(), (value, now));
                                }
                            }
                        }
                        Err(error) => {
                            first_error.get_or_insert(error);
                        }
                    }
                }
            }
            Err(error) => first_error = Some(error),
        }
        let health = &mut self.health;
        health.polls = health.polls.saturating_add(1);
        health.last_poll = Some(now);
        let wait = if first_error.is_some() {
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            // Doubling per failure: a dead device costs its timeouts ever more rarely, so it
            // holds up the devices polled after it less and less, down to once per max_backoff.
            let factor = 1u32 << health.consecutive_failures.min(20);
            self.interval
                .saturating_mul(factor)
                .min(max_backoff.max(self.interval))
        } else {
            health.consecutive_failures = 0;
            health.last_success = Some(now);
            self.interval
        };
        health.last_error = first_error;
        health.next_poll = now + wait;
    }
}

/// Polls many devices from one thread, each on its own interval.
///
/// Each device is a name, a [`Client`] of its own, and a [`PointMap`] planned once (with its
/// [`PlanConfig`]) when the device is added; the map's points carry their unit ids, so one
/// device may be several unit ids behind one gateway. [`poll_due`](Self::poll_due) polls every
/// device whose time has come and keeps each point's latest value with its time, and each
/// device's [`DeviceHealth`].
///
/// Devices are polled one after the other in the calling thread: a slow or dead device delays
/// the ones after it by its timeouts. Backoff bounds that: after a failed poll a device waits
/// twice as long as before, up to [`set_max_backoff`](Self::set_max_backoff). Devices that must
/// not wait for each other at all belong in managers of their own, one thread each.
///
/// The transport type is one for all devices; `Box<dyn Transport + Send>` mixes TCP and serial
/// links. The maps are borrowed, so the manager lives no longer than they do.
pub struct DeviceManager<'m, T: Transport> {
    devices: Vec<Device<'m, T>>,
    max_backoff: Duration,
}

impl<T: Transport> core::fmt::Debug for DeviceManager<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceManager")
            .field("devices", &self.devices)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl<T: Transport> Default for DeviceManager<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'m, T: Transport> DeviceManager<'m, T> {
    /// A manager without devices, backing failing devices off up to [`DEFAULT_MAX_BACKOFF`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            devices: Vec::new(),
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }

    /// Sets the longest wait between polls of a failing device (never shorter than its
    /// interval).
    pub fn set_max_backoff(&mut self, max_backoff: Duration) {
        self.max_backoff = max_backoff;
    }

    /// Adds a device polled every `interval` through `client`, and plans its map. It is due at
    /// once. ([`device_mut`](Self::device_mut) reaches it later, e.g. to pipeline its reads.)
    ///
    /// # Errors
    /// [`PollError::DuplicateDevice`] for a name already used, [`PollError::Plan`] when the map
    /// cannot be planned under `config`.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        client: Client<T>,
        map: &'m PointMap,
        config: &PlanConfig,
        interval: Duration,
    ) -> Result<(), PollError> {
        let name = name.into();
        if self.device(&name).is_some() {
            return Err(PollError::DuplicateDevice { name });
        }
        let plan = map.plan(config)?;
        self.devices.push(Device {
            name,
            client,
            plan,
            interval,
            pipelined: false,
            values: BTreeMap::new(),
            health: DeviceHealth {
                polls: 0,
                consecutive_failures: 0,
                last_error: None,
                last_poll: None,
                last_success: None,
                next_poll: Instant::ZERO,
            },
        });
        Ok(())
    }

    /// Polls every device due at `now` (its [`DeviceHealth::next_poll`] is not later), in the
    /// order added; returns how many were polled. Values and health are stamped with `now`,
    /// so a test can drive the schedule with its own clock.
    pub fn poll_due(&mut self, now: Instant) -> usize {
        let max_backoff = self.max_backoff;
        let mut polled = 0;
        for device in &mut self.devices {
            if device.health.next_poll <= now {
                device.poll(now, max_backoff);
                polled += 1;
            }
        }
        polled
    }

    /// [`poll_due`](Self::poll_due) at [`Instant::now`].
    pub fn run_once(&mut self) -> usize {
        self.poll_due(Instant::now())
    }

    /// When the next device is due (`None` without devices): sleep until then between
    /// [`run_once`](Self::run_once) calls.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.devices
            .iter()
            .map(|device| device.health.next_poll)
            .min()
    }

    /// The devices, in the order added.
    #[must_use]
    pub fn devices(&self) -> &[Device<'m, T>] {
        &self.devices
    }

    /// The device called `name`.
    #[must_use]
    pub fn device(&self, name: &str) -> Option<&Device<'m, T>> {
        self.devices.iter().find(|device| device.name == name)
    }

    /// The device called `name`, mutably (for its client).
    pub fn device_mut(&mut self, name: &str) -> Option<&mut Device<'m, T>> {
        self.devices.iter_mut().find(|device| device.name == name)
    }

    /// The latest value of point `point` on device `device`; see [`Device::latest`].
    #[must_use]
    pub fn latest(&self, device: &str, point: &str) -> Option<&PointValue> {
        self.device(device)?.latest(point)
    }
}
