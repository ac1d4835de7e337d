//! The blocking Modbus client (feature `std`): typed calls for every public function code.
//!
//! [`Client`] drives the sans-IO [`session::client::ClientSession`](crate::session::client::ClientSession)
//! over a [`Transport`]: it sends what the session frames, feeds it what arrives, sleeps until
//! its deadlines and reconnects a broken link. Every rule of the protocol (matching, timeouts,
//! retries, broadcast turnaround) stays in the session, so this layer holds no protocol logic of
//! its own beyond turning responses into Rust values.
//!
//! Every call returns one flat [`Error`]; an exception response from the server is
//! [`Error::Exception`], and [`Error::exception`] gives its code.
//!
//! # Retries
//!
//! Requests that only read are sent again after a timeout or a lost connection, as the
//! [`RetryPolicy`] says (three attempts by default). Writes are sent once unless
//! [`RetryPolicy::retry_writes`] is set: when the response to a write is lost, the server may
//! have applied it, and repeating it is not harmless for every request (a FIFO or a vendor
//! function may count or consume; a second write may overwrite a value set in between).
//!
//! ```no_run
//! use modbus_stack::client::Client;
//! use modbus_stack::transport::tcp;
//!
//! let mut client = Client::tcp("127.0.0.1:502", tcp::Config::default())?;
//! client.write_multiple_registers(1, 100, &[1, 2, 3])?;
//! assert_eq!(client.read_holding_registers(1, 100, 3)?, vec![1, 2, 3]);
//! # Ok::<(), modbus_stack::client::Error>(())
//! ```

use std::io;
use std::net::ToSocketAddrs;
use std::time::Duration;
use std::vec::Vec;

use crate::error::DecodeError;
use crate::frame::{Framing, ascii};
use crate::pdu::{Request, Response};
use crate::session::client::{
    AbortCause, ClientConfig, ClientError, ClientSession, Event, RetryPolicy, TransactionId,
};
use crate::time::Instant;
use crate::transport::Transport;
use crate::transport::tcp::{self, TcpTransport};

/// Most requests a [`Client`] keeps outstanding on Modbus TCP (the spec's 1–16 range, §10.3).
pub const MAX_PIPELINE: usize = 16;
/// Most requests [`Client::read_device_identification`] sends to follow "more follows".
pub const MAX_DEVICE_ID_REQUESTS: usize = 32;
/// Largest ADU of any framing (an ASCII frame), the size of the client's buffers.
const BUFFER_LEN: usize = ascii::MAX_FRAME_CHARS;

mod error;
mod functions;
mod replies;

pub use error::{Error, Result};
pub use replies::{CommEventCounter, CommEventLog, DeviceInfo, DiagnosticsReply};

/// A blocking Modbus client over one [`Transport`].
///
/// One call at a time; on Modbus TCP [`pipeline`](Self::pipeline) keeps several requests in
/// flight. Unit id 0 on serial framings and RTU over TCP is a broadcast: the write calls return
/// after the turnaround delay without waiting for a reply.
pub struct Client<T: Transport> {
    transport: T,
    session: ClientSession<MAX_PIPELINE>,
    transmit: [u8; BUFFER_LEN],
    receive: [u8; BUFFER_LEN],
    /// Requests gathered for one write when the transport coalesces them (empty, unallocated,
    /// otherwise).
    batch: Vec<u8>,
    /// The error that broke the link, reported for requests lost with it.
    last_io_error: Option<io::Error>,
}

impl<T: Transport> core::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("config", self.session.config())
            .finish_non_exhaustive()
    }
}

impl Client<TcpTransport> {
    /// Connects to a Modbus TCP server.
    ///
    /// # Errors
    /// [`Error::Io`] when no connection could be made.
    pub fn tcp(addr: impl ToSocketAddrs, config: tcp::Config) -> Result<Self> {
        Ok(Self::new(TcpTransport::connect(addr, config)?))
    }

    /// Connects to a serial-to-Ethernet converter that carries RTU frames on TCP.
    ///
    /// # Errors
    /// [`Error::Io`] when no connection could be made.
    pub fn rtu_over_tcp(addr: impl ToSocketAddrs, config: tcp::Config) -> Result<Self> {
        Ok(Self::new(TcpTransport::connect_rtu_over_tcp(addr, config)?))
    }
}

#[cfg(feature = "serial")]
impl Client<crate::transport::serial::SerialTransport> {
    /// Opens the serial port at `path` for Modbus RTU.
    ///
    /// # Errors
    /// [`Error::Io`] when the port cannot be opened or configured.
    pub fn rtu(path: &str, config: crate::transport::serial::Config) -> Result<Self> {
        let transport =
            crate::transport::serial::SerialTransport::open(path, config, Framing::Rtu)?;
        Ok(Self::new(transport))
    }

    /// Opens the serial port at `path` for Modbus ASCII.
    ///
    /// # Errors
    /// [`Error::Io`] when the port cannot be opened or configured.
    pub fn ascii(path: &str, config: crate::transport::serial::Config) -> Result<Self> {
        let transport =
            crate::transport::serial::SerialTransport::open(path, config, Framing::Ascii)?;
        Ok(Self::new(transport))
    }
}

impl<T: Transport> Client<T> {
    /// A client over `transport` with the session defaults for its framing: 1 s response
    /// timeout, 100 ms broadcast turnaround, [`RetryPolicy::DEFAULT`].
    pub fn new(transport: T) -> Self {
        Self::with_config(transport, ClientConfig::new(Framing::Tcp))
    }

    /// A client over `transport` with session `config` (its framing is replaced by the
    /// transport's).
    pub fn with_config(transport: T, config: ClientConfig) -> Self {
        let config = ClientConfig {
            framing: transport.framing(),
            ..config
        };
        let mut session = ClientSession::new(config);
        session.seed_transaction_ids(random_seed());
        Self {
            transport,
            session,
            transmit: [0; BUFFER_LEN],
            receive: [0; BUFFER_LEN],
            batch: Vec::new(),
            last_io_error: None,
        }
    }

    /// Closes the link explicitly rather than by dropping the client: a TCP connection ends
    /// with a FIN, a serial port's last frame is drained first, and a failure is reported.
    /// Requests still in flight are abandoned.
    ///
    /// # Errors
    /// [`Error::Io`] when the transport could not flush or shut down cleanly.
    pub fn close(mut self) -> Result<()> {
        self.transport.close().map_err(Error::Io)
    }

    /// The session configuration.
    pub fn config(&self) -> &ClientConfig {
        self.session.config()
    }

    /// Sets how long to wait for each response.
    pub fn set_response_timeout(&mut self, timeout: Duration) {
        let config = ClientConfig {
            response_timeout: timeout,
            ..*self.session.config()
        };
        self.session.set_config(config);
    }

    /// Sets how long a broadcast occupies the line.
    pub fn set_turnaround_delay(&mut self, delay: Duration) {
        let config = ClientConfig {
            turnaround_delay: delay,
            ..*self.session.config()
        };
        self.session.set_config(config);
    }

    /// Sets the retry policy.
    pub fn set_retry_policy(&mut self, retry: RetryPolicy) {
        let config = ClientConfig {
            retry,
            ..*self.session.config()
        };
        self.session.set_config(config);
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably (to change settings between calls).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Sends `request` to `unit_id` and hands the response to `f`; an exception response
    /// becomes [`Error::Exception`]. For any function, including custom ones.
    ///
    /// # Errors
    /// Any [`Error`]; [`Error::NoResponse`] for a request that gets no response.
    pub fn call<R>(
        &mut self,
        unit_id: u8,
        request: &Request<'_>,
        f: impl FnOnce(&Response<'_>) -> Result<R>,
    ) -> Result<R> {
        self.execute(unit_id, request, f)?.ok_or(Error::NoResponse)
    }

    /// Sends a request that gets no response (a broadcast, FC 08/04), or any request whose
    /// response only needs to be a success.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn send(&mut self, unit_id: u8, request: &Request<'_>) -> Result<()> {
        self.execute(unit_id, request, |_| Ok(())).map(|_| ())
    }

    /// Sends several requests to `unit_id` without waiting for each answer (Modbus TCP
    /// pipelining; other framings send them one after the other) and collects the results in
    /// request order.
    ///
    /// Each request is its own write unless the transport coalesces them
    /// ([`Transport::coalesce_requests`], e.g.
    /// [`tcp::Config::coalesce_requests`]): then every request ready to go (up to
    /// [`MAX_PIPELINE`]) leaves in one write. Use that only towards servers that parse the byte
    /// stream; see the trade-off there.
    ///
    /// # Errors
    /// The outer error when the link failed for good; per-request errors in the vector.
    pub fn pipeline<R>(
        &mut self,
        unit_id: u8,
        requests: &[Request<'_>],
        mut f: impl FnMut(usize, &Response<'_>) -> Result<R>,
    ) -> Result<Vec<Result<R>>> {
        self.prepare();
        let mut results: Vec<Option<Result<R>>> = requests.iter().map(|_| None).collect();
        let mut in_flight: Vec<(TransactionId, usize)> = Vec::new();
        let mut next = 0;
        loop {
            // Fill the session.
            let started = Instant::now();
            while let Some(request) = requests.get(next) {
                match self.session.start(started, unit_id, request) {
                    Ok(id) => in_flight.push((id, next)),
                    Err(ClientError::Busy { .. }) if !in_flight.is_empty() => break,
                    Err(error) => {
                        if let Some(slot) = results.get_mut(next) {
                            *slot = Some(Err(error.into()));
                        }
                    }
                }
                next += 1;
            }
            while let Some(event) = self.session.poll_event() {
                let Some((id, result)) = outcome(event, &mut self.last_io_error) else {
                    continue;
                };
                let Some(position) = in_flight.iter().position(|(known, _)| *known == id) else {
                    continue;
                };
                let (_, index) = in_flight.swap_remove(position);
                let result = result.and_then(|response| match response {
                    Some(response) => f(index, &response),
                    None => Err(Error::NoResponse),
                });
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
            if in_flight.is_empty() && next >= requests.len() {
                break;
            }
            if let Err(error) = self.step(started) {
                for (id, _) in in_flight {
                    self.session.cancel(id);
                }
                return Err(error);
            }
        }
        Ok(results
            .into_iter()
            .map(|result| result.unwrap_or(Err(Error::NoResponse)))
            .collect())
    }

    /// Runs one request to its end: `Some(f(response))`, or `None` when it gets no response.
    fn execute<R>(
        &mut self,
        unit_id: u8,
        request: &Request<'_>,
        f: impl FnOnce(&Response<'_>) -> Result<R>,
    ) -> Result<Option<R>> {
        self.prepare();
        let started = Instant::now();
        let id = self.session.start(started, unit_id, request)?;
        let mut f = Some(f);
        loop {
            while let Some(event) = self.session.poll_event() {
                let Some((done, result)) = outcome(event, &mut self.last_io_error) else {
                    continue;
                };
                if done != id {
                    continue;
                }
                return match result? {
                    Some(response) => match f.take() {
                        Some(f) => f(&response).map(Some),
                        None => Ok(None),
                    },
                    None => Ok(None),
                };
            }
            if let Err(error) = self.step(started) {
                self.session.cancel(id);
                return Err(error);
            }
        }
    }

    /// Before a new request on an idle serial link: drop stale input (a late answer, noise).
    fn prepare(&mut self) {
        if self.session.outstanding() == 0 && !self.session.config().framing.can_pipeline() {
            // Best effort: a failing clear shows up again at the next read or write.
            let _ = self.transport.clear_input();
        }
    }

    /// Sends what the session has queued, then waits for input or the next deadline once.
    /// `started` is when the latest request was started: the arrival time of TCP input, which
    /// the session does not use ([`ClientSession::handle_input`]), so the clock is read once per
    /// request instead of once more per response.
    fn step(&mut self, started: Instant) -> Result<()> {
        if self.transport.coalesce_requests() {
            if let Err(error) = self.send_coalesced() {
                return self.recover(error);
            }
        } else {
            while let Some(len) = self.session.poll_transmit(&mut self.transmit) {
                let adu = self.transmit.get(..len).unwrap_or_default();
                if let Err(error) = self.transport.send(adu) {
                    return self.recover(error);
                }
            }
        }
        let Some(deadline) = self.session.poll_timeout() else {
            // Nothing sent waits for anything: events are ready, or the request was refused.
            return Ok(());
        };
        let awaiting_response = self.session.poll_response_deadline() == Some(deadline);
        let received = if awaiting_response {
            self.transport.receive_response(&mut self.receive, deadline)
        } else {
            self.transport.receive(&mut self.receive, deadline)
        };
        match received {
            Ok(0) => {
                self.session.handle_timeout(Instant::now());
                self.reconnect_if_needed()?;
            }
            Ok(n) => {
                let bytes = self.receive.get(..n).unwrap_or_default();
                let arrived = if self.session.config().framing.is_serial() {
                    Instant::now()
                } else {
                    started
                };
                self.session.handle_input(arrived, bytes);
                self.reconnect_if_needed()?;
            }
            Err(error) if awaiting_response && error.kind() == io::ErrorKind::TimedOut => {
                // The transport closed the link at the response deadline
                // (`tcp::Config::close_on_timeout`): what is due times out (or backs off for a
                // retry), and the rest in flight is lost with the connection. The next send
                // reopens it.
                let now = Instant::now();
                self.session.handle_timeout(now);
                self.last_io_error = Some(error);
                self.session.handle_disconnect(now);
            }
            Err(error) => return self.recover(error),
        }
        Ok(())
    }

    /// Replaces the connection when the session found the stream unusable (a broken MBAP
    /// length, part of a frame nobody can be waiting for).
    fn reconnect_if_needed(&mut self) -> Result<()> {
        if self.session.needs_reconnect() {
            self.transport.reconnect()?;
            self.session.handle_disconnect(Instant::now());
        }
        Ok(())
    }

    /// Gathers every ADU the session has queued into `batch` and sends them in one write.
    fn send_coalesced(&mut self) -> io::Result<()> {
        let room = self.session.config().framing.max_adu_len();
        self.batch.clear();
        loop {
            let start = self.batch.len();
            self.batch.resize(start + room, 0);
            let out = self.batch.get_mut(start..).unwrap_or_default();
            let Some(len) = self.session.poll_transmit(out) else {
                self.batch.truncate(start);
                break;
            };
            self.batch.truncate(start + len);
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        self.transport.send(&self.batch)
    }

    /// Reopens the link after `error`; requests in flight are retried or aborted by the session.
    fn recover(&mut self, error: io::Error) -> Result<()> {
        self.transport.reconnect()?;
        self.last_io_error = Some(error);
        self.session.handle_disconnect(Instant::now());
        Ok(())
    }

    /// Runs `request` and converts the response with `f`, which sees only the expected variant.
    fn expect<R>(
        &mut self,
        unit_id: u8,
        request: &Request<'_>,
        f: impl FnOnce(&Response<'_>) -> Option<R>,
    ) -> Result<R> {
        let function = request.function();
        self.call(unit_id, request, |response| {
            f(response).ok_or(Error::UnexpectedResponse(DecodeError::UnexpectedFunction {
                expected: function,
                actual: response.function().value(),
            }))
        })
    }

    /// A write: a broadcast completes without a response.
    fn write(&mut self, unit_id: u8, request: &Request<'_>) -> Result<()> {
        self.send(unit_id, request)
    }
}

/// 32 bits from the randomness std seeds its hash maps with: enough to scatter transaction ids
/// (see [`ClientSession::seed_transaction_ids`]) without a random-number dependency.
fn random_seed() -> u32 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(0x4D42_u16);
    // Folding the halves keeps every bit of the hash in play.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "folded to 32 bits on purpose"
    )]
    let folded = (bits ^ (bits >> 32)) as u32;
    folded
}

/// A quantity from a buffer length; lengths beyond `u16` become `u16::MAX`, which every
/// quantity check rejects.
pub(super) fn quantity(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// What a terminal event means for its request: the response (`None` when none is expected) or
/// the error. `None` for events that end no request.
fn outcome<'a>(
    event: Event<'a>,
    last_io_error: &mut Option<io::Error>,
) -> Option<(TransactionId, Result<Option<Response<'a>>>)> {
    Some(match event {
        Event::Response { id, response, .. } => match response {
            Response::Exception(exception) => (id, Err(Error::Exception(exception))),
            response => (id, Ok(Some(response))),
        },
        Event::InvalidResponse { id, error } => (id, Err(Error::UnexpectedResponse(error))),
        Event::Timeout { id, attempts } => (id, Err(Error::Timeout { attempts })),
        Event::BroadcastDone { id } | Event::Sent { id } => (id, Ok(None)),
        Event::Aborted { id, cause } => (
            id,
            Err(match cause {
                AbortCause::Frame(error) => Error::Frame(error),
                _ => Error::Io(last_io_error.take().unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::ConnectionAborted, "connection lost")
                })),
            }),
        ),
        _ => return None,
    })
}
