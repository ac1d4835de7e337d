//! Plans and points on the wire: executing a [`ReadPlan`] with a blocking [`Client`] and
//! writing a [`PointValue`] to a [`Point`].
//!
//! The planner and the map stay pure (they only build requests and decode data); this file is
//! the one place where points meet a client, so the I/O policy lives here: which failures end
//! a plan early and which belong to one read only. Scheduling, backoff and many devices are the
//! [`harvest`](crate::harvest) engine's business.

use std::vec::Vec;

use super::map::{Point, PointValue, Table, WriteError};
use super::plan::{PlanError, PlannedRead, ReadData, ReadPlan, Reading};
use crate::client::{self, Client};
use crate::error::DecodeError;
use crate::pdu::{MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_REGISTERS, Request, Response};
use crate::transport::Transport;

/// Why reading or writing points on a device failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The client call failed: an exception response, a timeout, a lost link.
    #[error(transparent)]
    Client(#[from] client::Error),
    /// The data returned does not fit the planned read.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The value cannot be written to the point.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl DeviceError {
    /// The exception code, when the device answered with an exception.
    #[must_use]
    pub fn exception(&self) -> Option<crate::pdu::ExceptionCode> {
        match self {
            Self::Client(error) => error.exception(),
            _ => None,
        }
    }
}

/// What one planned read gave: the readings of its points, or why it failed.
pub type ReadResult<'p> = Result<Vec<Reading<'p>>, DeviceError>;

impl ReadPlan {
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
    /// use std::sync::Arc;
    /// use modbus_stack::client::Client;
    /// use modbus_stack::point::{PlanConfig, Point, PointKind, PointMap, PointValue, Table};
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
    /// [`DeviceError::Client`] with [`client::Error::Io`] when the link failed and could not be
    /// reopened.
    pub fn execute<T: Transport>(
        &self,
        client: &mut Client<T>,
    ) -> Result<Vec<ReadResult<'_>>, DeviceError> {
        let mut results = Vec::with_capacity(self.reads().len());
        for index in 0..self.reads().len() {
            match self.execute_read(index, client) {
                Err(DeviceError::Client(client::Error::Io(error))) => {
                    return Err(client::Error::Io(error).into());
                }
                result => results.push(result),
            }
        }
        Ok(results)
    }

    /// Runs read `index` of the plan through `client` and decodes its points: one request.
    /// Callers that schedule each request themselves (the [`harvest`](crate::harvest) engine
    /// times each round trip and leaves gaps between frames) use this instead of
    /// [`execute`](Self::execute).
    ///
    /// # Errors
    /// [`DeviceError::Client`] when the request failed (an exception, a timeout, the link),
    /// [`DeviceError::Plan`] for an index the plan does not have.
    pub fn execute_read<T: Transport>(
        &self,
        index: usize,
        client: &mut Client<T>,
    ) -> ReadResult<'_> {
        let read = self.reads().get(index).ok_or(PlanError::NoSuchRead {
            index,
            reads: self.reads().len(),
        })?;
        // The planner never builds a read larger than the specification allows, so these
        // buffers fit every read; an oversized one would become an empty slice, which the
        // client refuses as an invalid request instead of panicking here.
        let len = usize::from(read.quantity);
        let (unit_id, address) = (read.unit_id, read.address);
        if read.table.is_bits() {
            let mut bits = [false; MAX_READ_BITS as usize];
            let out = bits.get_mut(..len).unwrap_or_default();
            if read.table == Table::Coils {
                client.read_coils_into(unit_id, address, out)?;
            } else {
                client.read_discrete_inputs_into(unit_id, address, out)?;
            }
            Ok(self.decode_read(index, ReadData::from(&*out))?)
        } else {
            let mut words = [0u16; MAX_READ_REGISTERS as usize];
            let out = words.get_mut(..len).unwrap_or_default();
            if read.table == Table::HoldingRegisters {
                client.read_holding_registers_into(unit_id, address, out)?;
            } else {
                client.read_input_registers_into(unit_id, address, out)?;
            }
            Ok(self.decode_read(index, ReadData::from(&*out))?)
        }
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
    /// [`DeviceError::Client`] when the link failed for good.
    pub fn execute_pipelined<T: Transport>(
        &self,
        client: &mut Client<T>,
    ) -> Result<Vec<ReadResult<'_>>, DeviceError> {
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
                    .map_err(DeviceError::from)
                    .and_then(|readings| readings)
            }));
            start = end;
        }
        Ok(results)
    }

    /// Decodes the response to read `index`.
    fn decode_response(&self, index: usize, response: &Response<'_>) -> ReadResult<'_> {
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
    /// [`DeviceError::Write`] when the value does not suit the point (nothing is sent), and
    /// [`DeviceError::Client`] when the call fails.
    pub fn write<T: Transport>(
        &self,
        client: &mut Client<T>,
        value: &PointValue,
    ) -> Result<(), DeviceError> {
        // Large enough for any single write; a longer string fails to encode, it is not cut.
        let mut buf = [0u16; MAX_WRITE_REGISTERS as usize];
        let request = self.write_request(value, &mut buf)?;
        client.send(self.unit_id, &request)?;
        Ok(())
    }
}
