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

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::frame::{Framing, ascii};
use crate::pdu::{
    Coils, DiagnosticCounter, DiagnosticsRequest, DiagnosticsResponse, ExceptionCode,
    ExceptionResponse, FileReadGroup, FileReadGroups, FileRecord, FileRecords, FunctionCode,
    ReadDeviceIdCode, Registers, Request, Response,
};
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

/// Everything a [`Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No response within the response timeout, after every attempt the retry policy allows.
    #[error("no response after {attempts} attempts")]
    Timeout {
        /// Transmissions made.
        attempts: u32,
    },
    /// The server answered with an exception response (kept whole: function and code).
    #[error("{0}")]
    Exception(ExceptionResponse),
    /// The response does not fit the request (function, byte count, echo, field values).
    #[error("unexpected response: {0}")]
    UnexpectedResponse(DecodeError),
    /// The byte stream could not be framed any more (TCP: MBAP length field out of range); the
    /// connection was reopened.
    #[error("framing: {0}")]
    Frame(FrameError),
    /// The link failed and could not be reopened, or a request that may not be retried was lost
    /// with it.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// Too many requests outstanding (a pipeline larger than the session holds).
    #[error("too many requests outstanding")]
    Busy,
    /// The request breaks a rule of the specification; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(EncodeError),
    /// A broadcast must be a write: nobody answers it.
    #[error("function {function} returns data and cannot be broadcast")]
    BroadcastRead {
        /// The function code.
        function: FunctionCode,
    },
    /// [`Client::call`] was given a request that gets no response (a broadcast, FC 08/04); use
    /// [`Client::send`].
    #[error("the request gets no response")]
    NoResponse,
}

impl Error {
    /// The exception code, when the server answered with an exception.
    #[must_use]
    pub fn exception(&self) -> Option<ExceptionCode> {
        match self {
            Self::Exception(exception) => Some(exception.code),
            _ => None,
        }
    }
}

impl From<ClientError> for Error {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Busy { .. } => Self::Busy,
            ClientError::InvalidRequest(error) => Self::InvalidRequest(error),
            ClientError::BroadcastRead { function } => Self::BroadcastRead { function },
        }
    }
}

/// Shorthand for a result with a client [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// FC 11: the status word and the event counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommEventCounter {
    /// 0xFFFF while a program command is still running, 0x0000 otherwise.
    pub status: u16,
    /// Successful message completions.
    pub event_count: u16,
}

/// FC 12: status, counters and the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommEventLog {
    /// 0xFFFF while a program command is still running, 0x0000 otherwise.
    pub status: u16,
    /// Successful message completions.
    pub event_count: u16,
    /// Bus messages seen.
    pub message_count: u16,
    /// Event bytes, newest first.
    pub events: Vec<u8>,
}

/// FC 08: the answer to a diagnostics request, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticsReply {
    /// 0x00: the echoed data.
    ReturnQueryData(Vec<u8>),
    /// 0x01: echo of the restart request.
    RestartCommunicationsOption {
        /// Echo of the request's choice.
        clear_event_log: bool,
    },
    /// 0x02: the diagnostic register.
    ReturnDiagnosticRegister(u16),
    /// 0x03: echo of the new ASCII delimiter.
    ChangeAsciiInputDelimiter(u8),
    /// 0x04: sent; the server answers nothing by definition.
    ForceListenOnlyMode,
    /// 0x0A: the counters were cleared.
    ClearCountersAndDiagnosticRegister,
    /// 0x0B–0x12: a counter's value.
    ReturnCounter {
        /// Which counter.
        counter: DiagnosticCounter,
        /// Its value.
        value: u16,
    },
    /// 0x14: the overrun counter and flag were cleared.
    ClearOverrunCounterAndFlag,
}

impl From<DiagnosticsResponse<'_>> for DiagnosticsReply {
    fn from(response: DiagnosticsResponse<'_>) -> Self {
        match response {
            DiagnosticsResponse::ReturnQueryData { data } => Self::ReturnQueryData(data.to_vec()),
            DiagnosticsResponse::RestartCommunicationsOption { clear_event_log } => {
                Self::RestartCommunicationsOption { clear_event_log }
            }
            DiagnosticsResponse::ReturnDiagnosticRegister { value } => {
                Self::ReturnDiagnosticRegister(value)
            }
            DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter } => {
                Self::ChangeAsciiInputDelimiter(delimiter)
            }
            DiagnosticsResponse::ClearCountersAndDiagnosticRegister => {
                Self::ClearCountersAndDiagnosticRegister
            }
            DiagnosticsResponse::ReturnCounter { counter, value } => {
                Self::ReturnCounter { counter, value }
            }
            DiagnosticsResponse::ClearOverrunCounterAndFlag => Self::ClearOverrunCounterAndFlag,
        }
    }
}

/// FC 43/14: the device identification objects collected, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The server's conformity level (0x01–0x03, 0x81–0x83).
    pub conformity_level: u8,
    /// `(object id, value)` pairs.
    pub objects: Vec<(u8, Vec<u8>)>,
}

impl DeviceInfo {
    /// The value of object `id`, if received.
    #[must_use]
    pub fn get(&self, id: u8) -> Option<&[u8]> {
        self.objects
            .iter()
            .find(|(object, _)| *object == id)
            .map(|(_, value)| value.as_slice())
    }
}

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

    /// FC 01: reads `quantity` (1–2000) coils from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_coils(&mut self, unit_id: u8, address: u16, quantity: u16) -> Result<Vec<bool>> {
        let mut out = std::vec![false; usize::from(quantity)];
        self.read_bits(unit_id, &Request::ReadCoils { address, quantity }, &mut out)?;
        Ok(out)
    }

    /// FC 01 into `out`: reads `out.len()` coils from `address`, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_coils_into(&mut self, unit_id: u8, address: u16, out: &mut [bool]) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_bits(unit_id, &Request::ReadCoils { address, quantity }, out)
    }

    /// FC 02: reads `quantity` (1–2000) discrete inputs from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_discrete_inputs(
        &mut self,
        unit_id: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<bool>> {
        let mut out = std::vec![false; usize::from(quantity)];
        let request = Request::ReadDiscreteInputs { address, quantity };
        self.read_bits(unit_id, &request, &mut out)?;
        Ok(out)
    }

    /// FC 02 into `out`, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_discrete_inputs_into(
        &mut self,
        unit_id: u8,
        address: u16,
        out: &mut [bool],
    ) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_bits(
            unit_id,
            &Request::ReadDiscreteInputs { address, quantity },
            out,
        )
    }

    /// FC 03: reads `quantity` (1–125) holding registers from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_holding_registers(
        &mut self,
        unit_id: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<u16>> {
        let mut out = std::vec![0; usize::from(quantity)];
        let request = Request::ReadHoldingRegisters { address, quantity };
        self.read_words(unit_id, &request, &mut out)?;
        Ok(out)
    }

    /// FC 03 into `out`: reads `out.len()` holding registers, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_holding_registers_into(
        &mut self,
        unit_id: u8,
        address: u16,
        out: &mut [u16],
    ) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_words(
            unit_id,
            &Request::ReadHoldingRegisters { address, quantity },
            out,
        )
    }

    /// FC 04: reads `quantity` (1–125) input registers from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_input_registers(
        &mut self,
        unit_id: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<u16>> {
        let mut out = std::vec![0; usize::from(quantity)];
        let request = Request::ReadInputRegisters { address, quantity };
        self.read_words(unit_id, &request, &mut out)?;
        Ok(out)
    }

    /// FC 04 into `out`, without allocating.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_input_registers_into(
        &mut self,
        unit_id: u8,
        address: u16,
        out: &mut [u16],
    ) -> Result<()> {
        let quantity = quantity(out.len());
        self.read_words(
            unit_id,
            &Request::ReadInputRegisters { address, quantity },
            out,
        )
    }

    /// FC 01 or 02 into `out` (as long as the request's quantity). The response was decoded
    /// against `request`, so its function and count are the request's.
    fn read_bits(&mut self, unit_id: u8, request: &Request<'_>, out: &mut [bool]) -> Result<()> {
        self.expect(unit_id, request, |response| match response {
            Response::ReadCoils { values } | Response::ReadDiscreteInputs { values } => {
                values.copy_to(out);
                Some(())
            }
            _ => None,
        })
    }

    /// FC 03 or 04 into `out`, as [`read_bits`](Self::read_bits).
    fn read_words(&mut self, unit_id: u8, request: &Request<'_>, out: &mut [u16]) -> Result<()> {
        self.expect(unit_id, request, |response| match response {
            Response::ReadHoldingRegisters { values } | Response::ReadInputRegisters { values } => {
                values.copy_to(out);
                Some(())
            }
            _ => None,
        })
    }

    /// FC 05: switches one coil on or off.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_single_coil(&mut self, unit_id: u8, address: u16, value: bool) -> Result<()> {
        self.write(unit_id, &Request::WriteSingleCoil { address, value })
    }

    /// FC 06: writes one holding register.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_single_register(&mut self, unit_id: u8, address: u16, value: u16) -> Result<()> {
        self.write(unit_id, &Request::WriteSingleRegister { address, value })
    }

    /// FC 15: writes 1–1968 coils from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_multiple_coils(
        &mut self,
        unit_id: u8,
        address: u16,
        values: &[bool],
    ) -> Result<()> {
        let values = Coils::from_bools(values);
        self.write(unit_id, &Request::WriteMultipleCoils { address, values })
    }

    /// FC 16: writes 1–123 holding registers from `address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_multiple_registers(
        &mut self,
        unit_id: u8,
        address: u16,
        values: &[u16],
    ) -> Result<()> {
        let values = Registers::from_words(values);
        self.write(
            unit_id,
            &Request::WriteMultipleRegisters { address, values },
        )
    }

    /// FC 22: `register = (register & and_mask) | (or_mask & !and_mask)`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn mask_write_register(
        &mut self,
        unit_id: u8,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<()> {
        let request = Request::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        };
        self.write(unit_id, &request)
    }

    /// FC 23: writes `values` (1–121) from `write_address`, then reads `read_quantity` (1–125)
    /// registers from `read_address`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_write_multiple_registers(
        &mut self,
        unit_id: u8,
        read_address: u16,
        read_quantity: u16,
        write_address: u16,
        values: &[u16],
    ) -> Result<Vec<u16>> {
        let request = Request::ReadWriteMultipleRegisters {
            read_address,
            read_quantity,
            write_address,
            values: Registers::from_words(values),
        };
        self.expect(unit_id, &request, |response| match response {
            Response::ReadWriteMultipleRegisters { values } => Some(values.iter().collect()),
            _ => None,
        })
    }

    /// FC 24: reads the FIFO queue whose count register is at `address` (0–31 values).
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_fifo_queue(&mut self, unit_id: u8, address: u16) -> Result<Vec<u16>> {
        let request = Request::ReadFifoQueue { address };
        self.expect(unit_id, &request, |response| match response {
            Response::ReadFifoQueue { values } => Some(values.iter().collect()),
            _ => None,
        })
    }

    /// FC 20: reads the record groups in `groups`; one register list per group.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_file_record(
        &mut self,
        unit_id: u8,
        groups: &[FileReadGroup],
    ) -> Result<Vec<Vec<u16>>> {
        let request = Request::ReadFileRecord {
            groups: FileReadGroups::from_items(groups),
        };
        self.expect(unit_id, &request, |response| match response {
            Response::ReadFileRecord { records } => {
                Some(records.iter().map(|group| group.iter().collect()).collect())
            }
            _ => None,
        })
    }

    /// FC 21: writes the record groups in `records`.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn write_file_record(&mut self, unit_id: u8, records: &[FileRecord<'_>]) -> Result<()> {
        let request = Request::WriteFileRecord {
            records: FileRecords::from_items(records),
        };
        self.write(unit_id, &request)
    }

    /// FC 07: the eight exception status outputs, lowest in bit 0.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn read_exception_status(&mut self, unit_id: u8) -> Result<u8> {
        self.expect(
            unit_id,
            &Request::ReadExceptionStatus,
            |response| match response {
                Response::ReadExceptionStatus { status } => Some(*status),
                _ => None,
            },
        )
    }

    /// FC 08: a diagnostics request. Sub-function 0x04 gets no response and returns
    /// [`DiagnosticsReply::ForceListenOnlyMode`] once sent.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn diagnostics(
        &mut self,
        unit_id: u8,
        request: DiagnosticsRequest<'_>,
    ) -> Result<DiagnosticsReply> {
        let request = Request::Diagnostics(request);
        let function = request.function();
        let reply = self.execute(unit_id, &request, |response| match response {
            Response::Diagnostics(diagnostics) => Ok(DiagnosticsReply::from(*diagnostics)),
            _ => Err(Error::UnexpectedResponse(DecodeError::UnexpectedFunction {
                expected: function,
                actual: response.function().value(),
            })),
        })?;
        Ok(reply.unwrap_or(DiagnosticsReply::ForceListenOnlyMode))
    }

    /// FC 11: the status word and the event counter.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn get_comm_event_counter(&mut self, unit_id: u8) -> Result<CommEventCounter> {
        self.expect(
            unit_id,
            &Request::GetCommEventCounter,
            |response| match response {
                Response::GetCommEventCounter {
                    status,
                    event_count,
                } => Some(CommEventCounter {
                    status: *status,
                    event_count: *event_count,
                }),
                _ => None,
            },
        )
    }

    /// FC 12: status, counters and the event log.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn get_comm_event_log(&mut self, unit_id: u8) -> Result<CommEventLog> {
        self.expect(
            unit_id,
            &Request::GetCommEventLog,
            |response| match response {
                Response::GetCommEventLog {
                    status,
                    event_count,
                    message_count,
                    events,
                } => Some(CommEventLog {
                    status: *status,
                    event_count: *event_count,
                    message_count: *message_count,
                    events: events.to_vec(),
                }),
                _ => None,
            },
        )
    }

    /// FC 17: the device-specific server id, run indicator and additional data, raw.
    ///
    /// # Errors
    /// Any [`Error`].
    pub fn report_server_id(&mut self, unit_id: u8) -> Result<Vec<u8>> {
        self.expect(
            unit_id,
            &Request::ReportServerId,
            |response| match response {
                Response::ReportServerId { data } => Some(data.to_vec()),
                _ => None,
            },
        )
    }

    /// FC 43/14: reads device identification objects from `object_id` on. For stream access
    /// (codes 1–3) it follows "more follows" until the server has sent everything, with at most
    /// [`MAX_DEVICE_ID_REQUESTS`] requests and only while the next object id moves forward.
    ///
    /// # Errors
    /// Any [`Error`]; [`Error::UnexpectedResponse`] when the server's "next object id" does not
    /// move forward or the request limit is reached.
    pub fn read_device_identification(
        &mut self,
        unit_id: u8,
        code: ReadDeviceIdCode,
        object_id: u8,
    ) -> Result<DeviceInfo> {
        let mut info = DeviceInfo {
            conformity_level: 0,
            objects: Vec::new(),
        };
        let mut next = object_id;
        for _ in 0..MAX_DEVICE_ID_REQUESTS {
            let request = Request::ReadDeviceIdentification {
                code,
                object_id: next,
            };
            let (more, next_object_id) =
                self.expect(unit_id, &request, |response| match response {
                    Response::ReadDeviceIdentification(identification) => {
                        info.conformity_level = identification.conformity_level;
                        info.objects.extend(
                            identification
                                .objects
                                .iter()
                                .map(|object| (object.id, object.value.to_vec())),
                        );
                        Some((identification.more_follows, identification.next_object_id))
                    }
                    _ => None,
                })?;
            if !more || code == ReadDeviceIdCode::Individual {
                return Ok(info);
            }
            if next_object_id <= next {
                // A server that does not make progress would keep us asking forever.
                return Err(Error::UnexpectedResponse(DecodeError::InvalidFieldValue {
                    function: FunctionCode::EncapsulatedInterfaceTransport,
                    value: u16::from(next_object_id),
                }));
            }
            next = next_object_id;
        }
        Err(Error::UnexpectedResponse(DecodeError::InvalidFieldValue {
            function: FunctionCode::EncapsulatedInterfaceTransport,
            value: u16::from(next),
        }))
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
fn quantity(len: usize) -> u16 {
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
