//! A blocking Modbus TCP server over `std::net` and `socket2`, also usable for RTU over TCP.
//!
//! [`TcpServer::bind`] opens the listening socket (`SO_REUSEADDR`); [`TcpServer::serve`] runs the
//! accept loop in the calling thread until a [`ShutdownHandle`] asks it to stop, and
//! [`TcpServer::spawn`] runs it in a background thread. Each accepted connection gets its own
//! thread, its own streaming decoder and its own [`Server`] session; the [`Service`] behind them
//! is shared.
//!
//! # Resource bounds
//!
//! * At most [`Config::max_connections`] connection threads exist at once. A connection
//!   arriving while all are busy is accepted and closed at once, without reading from it: the
//!   client sees an orderly close and can retry later. (`modbus-reference.md` §10.5 suggests
//!   closing the oldest unused connection instead; refusing the newcomer keeps working clients
//!   working, which matters more for a simulator and a small device.)
//! * A connection silent for [`Config::idle_timeout`] is closed, whether it is between requests
//!   or in the middle of one (half a frame then silence). Clients must accept a close from the
//!   server and reconnect (§10.5).
//! * Buffers are fixed: one read buffer, one decoder (260 bytes for MBAP, 256 for RTU) and one
//!   response buffer per connection (plus, with [`Config::with_coalesced_responses`], one of
//!   [`COALESCE_LEN`] bytes that gathers responses). A client that does not read its responses blocks its own
//!   connection thread for at most the idle timeout (the write timeout), then is closed.
//!
//! # Framing
//!
//! With [`Framing::Tcp`], the MBAP length field cuts the stream: several requests in one read
//! (pipelining) are answered in order, a request split over many reads is answered once whole,
//! an ADU with a protocol id other than 0 is dropped silently (§10.4), and a length field outside
//! 2..=254 closes the connection, since the stream can no longer be framed. With
//! [`Framing::RtuOverTcp`], raw RTU ADUs (no MBAP header) are cut by the function-code length
//! rules and checked by CRC (§10.6); frames with a bad CRC or for a foreign unit id are ignored,
//! as on a serial line.
//!
//! # One write per response, or coalesced
//!
//! By default every response is its own write, as `modbus-reference.md` §10.3 asks (one ADU per
//! TCP segment). With [`Config::with_coalesced_responses`] the responses to all complete ADUs
//! found in one read are gathered and written together (one syscall instead of one per
//! response, which is most of the cost of a pipelined batch on 127.0.0.1). That is safe for any
//! client that parses the byte stream (this crate's client, libmodbus, anything that honours
//! the MBAP length); a client that expects each `recv` to return exactly one response and drops
//! the rest would lose answers, so it stays off unless asked for. It changes nothing for a
//! client that sends one request at a time.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use std::vec::Vec;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use super::Service;
use crate::frame::{Framing, rtu, tcp};
use crate::pdu::MAX_PDU_LEN;
use crate::session::{self, Reply, Server};
use crate::time::Instant;

/// How often the accept loop wakes up to look at the shutdown flag and at idle connections.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Bytes read from a socket at a time: three maximum-size ADUs, as §10.5 suggests.
const READ_BUFFER_LEN: usize = 1024;
/// Keep-alive idle time before the first probe: finds half-open connections after a peer reboot
/// within minutes rather than the BSD default of two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Most bytes of responses gathered before a write when responses are coalesced: sixteen
/// maximum-size MBAP ADUs (a full pipeline of `NumberMaxOfClientTransaction`, §10.3). More
/// responses from one read go out in further writes of up to this size.
pub const COALESCE_LEN: usize = 16 * tcp::MAX_ADU_LEN;

/// Configuration of a [`TcpServer`].
///
/// The framing is a [`Framing`]: [`Framing::Tcp`] (the default) or [`Framing::RtuOverTcp`]. The
/// serial-line framings ([`Framing::Rtu`], [`Framing::Ascii`]) are accepted here, since the
/// configuration is a plain value, but [`TcpServer::bind`] refuses them.
///
/// ```
/// use modbus_stack::frame::Framing;
/// use modbus_stack::server::tcp::Config;
/// use std::time::Duration;
///
/// let config = Config::tcp().with_max_connections(4).with_idle_timeout(Duration::from_secs(10));
/// assert_eq!(config.framing(), Framing::Tcp);
/// assert_eq!(config.max_connections(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    framing: Framing,
    session: session::Config,
    max_connections: usize,
    idle_timeout: Duration,
    coalesce_responses: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::tcp()
    }
}

impl Config {
    /// Default number of simultaneous connections.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
    /// Default idle timeout.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

    /// Modbus TCP, answering every unit id with no broadcast semantics (§10.2), 16 connections,
    /// 60 s idle timeout.
    #[must_use]
    pub const fn tcp() -> Self {
        Self {
            framing: Framing::Tcp,
            session: session::Config::tcp(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            coalesce_responses: false,
        }
    }

    /// RTU over TCP with serial semantics: answers only `unit_id`, executes broadcasts (unit 0)
    /// without answering them.
    #[must_use]
    pub fn rtu_over_tcp(unit_id: u8) -> Self {
        Self {
            framing: Framing::RtuOverTcp,
            session: session::Config::serial(unit_id),
            ..Self::tcp()
        }
    }

    /// The same configuration with another framing. Only [`Framing::Tcp`] and
    /// [`Framing::RtuOverTcp`] run on a TCP listener: [`TcpServer::bind`] fails with
    /// [`ErrorKind::InvalidInput`] for [`Framing::Rtu`] and [`Framing::Ascii`] (a serial line is
    /// served by `server::serial`, feature `serial`).
    #[must_use]
    pub const fn with_framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// The same configuration with another unit-id filter and broadcast rule.
    #[must_use]
    pub const fn with_session(mut self, session: session::Config) -> Self {
        self.session = session;
        self
    }

    /// The same configuration with at most `max_connections` simultaneous connections (at
    /// least 1).
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// The same configuration closing connections silent for `idle_timeout` (at least 1 ms).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout.max(Duration::from_millis(1));
        self
    }

    /// The same configuration answering all complete ADUs found in one read with one write
    /// (`true`), or each with its own write (`false`, the default, as §10.3 asks). See the
    /// [module documentation](self#one-write-per-response-or-coalesced) for the trade-off.
    #[must_use]
    pub const fn with_coalesced_responses(mut self, coalesce: bool) -> Self {
        self.coalesce_responses = coalesce;
        self
    }

    /// `true` when the responses to one read are written together.
    #[must_use]
    pub const fn coalesced_responses(&self) -> bool {
        self.coalesce_responses
    }

    /// The framing.
    #[must_use]
    pub const fn framing(&self) -> Framing {
        self.framing
    }

    /// The unit-id filter and broadcast rule each connection's session starts with.
    #[must_use]
    pub const fn session(&self) -> session::Config {
        self.session
    }

    /// The largest number of simultaneous connections.
    #[must_use]
    pub const fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The silence after which a connection is closed.
    #[must_use]
    pub const fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

/// Asks a running [`TcpServer::serve`] loop to stop; cheap to clone and send to other threads.
///
/// After [`shutdown`](Self::shutdown) the accept loop stops accepting within a few tens of
/// milliseconds, closes every connection, joins every connection thread, and `serve` returns.
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Signals the server to stop; returns at once (see [`SpawnedServer::shutdown`] to wait).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// `true` once [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A bound, not yet serving, Modbus TCP (or RTU over TCP) server.
///
/// ```no_run
/// use std::sync::Arc;
/// use modbus_stack::server::tcp::{Config, TcpServer};
/// use modbus_stack::sim;
///
/// let server = TcpServer::bind("127.0.0.1:5020", Config::tcp())?;
/// println!("listening on {}", server.local_addr()?);
/// let running = server.spawn(Arc::new(sim::unit_map()))?;
/// // ... talk to it ...
/// running.shutdown()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    config: Config,
    shutdown: ShutdownHandle,
}

impl TcpServer {
    /// Binds a listening socket to the first address of `addr` that works, with
    /// `SO_REUSEADDR` so a restarted server can bind while old connections linger in
    /// `TIME_WAIT`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the configuration's framing is a serial-line one
    /// ([`Framing::Rtu`], [`Framing::Ascii`]: a TCP listener carries [`Framing::Tcp`] or
    /// [`Framing::RtuOverTcp`]); otherwise the address does not resolve, or no resolved address
    /// can be bound.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Self> {
        if config.framing.is_serial() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                std::format!(
                    "{:?} is a serial-line framing; a TCP server carries Tcp or RtuOverTcp",
                    config.framing
                ),
            ));
        }
        let mut last_error = None;
        for addr in addr.to_socket_addrs()? {
            match listen(addr) {
                Ok(listener) => {
                    return Ok(Self {
                        listener,
                        config,
                        shutdown: ShutdownHandle::default(),
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(ErrorKind::InvalidInput, "address resolved to nothing")
        }))
    }

    /// The address the server listens on (with the port chosen by the system for port 0).
    ///
    /// # Errors
    /// The socket's address cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// A handle that stops [`serve`](Self::serve) from another thread.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Accepts and serves connections in the calling thread until the [`ShutdownHandle`] is
    /// used; then closes every connection, joins every connection thread, and returns.
    ///
    /// # Errors
    /// The listening socket cannot be made non-blocking, or accepting fails for a reason other
    /// than a transient one (interrupted, aborted or reset connection, out of descriptors).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the server owns its service while it runs, as `spawn` does"
    )]
    pub fn serve<S: Service + ?Sized + 'static>(self, service: Arc<S>) -> io::Result<()> {
        // A non-blocking accept polled every POLL_INTERVAL lets shutdown be prompt without
        // waking the listener from another thread (which std cannot do portably).
        self.listener.set_nonblocking(true)?;
        let mut connections: Vec<Connection> = Vec::new();
        let result = self.accept_loop(&service, &mut connections);
        for connection in &connections {
            // Wakes a thread blocked in read or write at once; it then sees the flag and ends.
            let _ = connection.stream.shutdown(Shutdown::Both);
        }
        for connection in connections {
            let _ = connection.thread.join();
        }
        result
    }

    /// Runs [`serve`](Self::serve) in a background thread.
    ///
    /// # Errors
    /// The thread cannot be spawned or the local address cannot be read.
    pub fn spawn<S: Service + ?Sized + 'static>(
        self,
        service: Arc<S>,
    ) -> io::Result<SpawnedServer> {
        let local_addr = self.local_addr()?;
        let shutdown = self.shutdown_handle();
        let thread = thread::Builder::new()
            .name("modbus-tcp-accept".into())
            .spawn(move || self.serve(service))?;
        Ok(SpawnedServer {
            local_addr,
            shutdown,
            thread: Some(thread),
        })
    }

    fn accept_loop<S: Service + ?Sized + 'static>(
        &self,
        service: &Arc<S>,
        connections: &mut Vec<Connection>,
    ) -> io::Result<()> {
        while !self.shutdown.is_shutdown() {
            // Finished connections free their slot before the limit is checked.
            let (finished, running): (Vec<_>, Vec<_>) = connections
                .drain(..)
                .partition(|connection| connection.thread.is_finished());
            *connections = running;
            for connection in finished {
                let _ = connection.thread.join();
            }
            close_idle(connections, self.config.idle_timeout);
            match self.listener.accept() {
                Ok((stream, _peer)) => {
                    if connections.len() >= self.config.max_connections {
                        // Over the limit: an orderly close, nothing read or written.
                        let _ = stream.shutdown(Shutdown::Both);
                        continue;
                    }
                    // A connection that cannot be set up is dropped (closed); the server itself
                    // is fine.
                    if let Ok(connection) = self.start_connection(stream, service) {
                        connections.push(connection);
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(POLL_INTERVAL);
                }
                Err(error) if is_transient(&error) => thread::sleep(POLL_INTERVAL),
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn start_connection<S: Service + ?Sized + 'static>(
        &self,
        stream: TcpStream,
        service: &Arc<S>,
    ) -> io::Result<Connection> {
        // The accepted socket may inherit non-blocking mode from the listener on some systems.
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        let socket = SockRef::from(&stream);
        socket.set_keepalive(true)?;
        // Not every platform lets the idle time be set; keep-alive with system defaults is fine.
        let _ = socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(KEEPALIVE_IDLE));
        // No read timeout: a blocking read with a timeout arms a kernel timer on every wait, a
        // measurable cost per request on a fast link. The accept loop closes idle connections
        // instead (`close_idle`), and shutdown closes every socket, which wakes its reader.
        stream.set_write_timeout(Some(self.config.idle_timeout))?;
        let control = stream.try_clone()?;
        let reads = Arc::new(AtomicU64::new(0));
        let worker = ConnectionWorker {
            stream,
            reads: Arc::clone(&reads),
            config: self.config,
            shutdown: self.shutdown.clone(),
            pending: if self.config.coalesce_responses {
                Vec::with_capacity(COALESCE_LEN)
            } else {
                Vec::new()
            },
        };
        let service = Arc::clone(service);
        let thread = thread::Builder::new()
            .name("modbus-tcp-connection".into())
            .spawn(move || worker.run(&*service))?;
        Ok(Connection {
            stream: control,
            thread,
            reads,
            reads_seen: 0,
            quiet_since: Instant::now(),
        })
    }
}

/// A [`TcpServer`] serving in a background thread, from [`TcpServer::spawn`]. Dropping it shuts
/// the server down and waits for it, like [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct SpawnedServer {
    local_addr: SocketAddr,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl SpawnedServer {
    /// The address the server listens on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the server without waiting for it.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Stops accepting, closes every connection, and joins the accept thread and every
    /// connection thread.
    ///
    /// # Errors
    /// The error that stopped the accept loop early, if any; an `Other` error if the accept
    /// thread panicked.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.shutdown.shutdown();
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// A running connection as the accept loop sees it.
#[derive(Debug)]
struct Connection {
    /// A second handle on the socket, to close it at shutdown or when idle.
    stream: TcpStream,
    thread: JoinHandle<()>,
    /// How many reads returned bytes, counted by the connection's thread. A counter rather
    /// than a timestamp, so the thread reads no clock per request: the accept loop notices
    /// when it stops moving.
    reads: Arc<AtomicU64>,
    /// `reads` when the accept loop last looked.
    reads_seen: u64,
    /// Since when `reads` has not moved.
    quiet_since: Instant,
}

/// Closes the connections that received nothing for `idle_timeout` (a client that sent half a
/// frame and went quiet included); their threads see the closed socket and end. Called every
/// [`POLL_INTERVAL`] or so, which is how late a close may come.
fn close_idle(connections: &mut [Connection], idle_timeout: Duration) {
    let now = Instant::now();
    for connection in connections {
        let reads = connection.reads.load(Ordering::Relaxed);
        if reads != connection.reads_seen {
            connection.reads_seen = reads;
            connection.quiet_since = now;
        } else if Duration::from(now - connection.quiet_since) >= idle_timeout {
            let _ = connection.stream.shutdown(Shutdown::Both);
        }
    }
}

/// The state a connection thread owns.
struct ConnectionWorker {
    stream: TcpStream,
    /// Reads that returned bytes; shared with the accept loop, which closes the connection
    /// once it stops moving for the idle timeout.
    reads: Arc<AtomicU64>,
    config: Config,
    shutdown: ShutdownHandle,
    /// Responses gathered for one write (coalesced responses only; at most [`COALESCE_LEN`]).
    pending: Vec<u8>,
}

/// The framing state of one connection.
enum StreamDecoder {
    Tcp(tcp::Decoder),
    Rtu(rtu::Decoder),
}

/// What a connection does after handling some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Continue,
    Close,
}

impl ConnectionWorker {
    fn run<S: Service + ?Sized>(mut self, service: &S) {
        let mut server = Server::new(self.config.session);
        let mut decoder = match self.config.framing {
            Framing::Tcp => StreamDecoder::Tcp(tcp::Decoder::new()),
            Framing::RtuOverTcp => {
                StreamDecoder::Rtu(rtu::Decoder::new(rtu::Config::untimed(rtu::Mode::Requests)))
            }
            // `TcpServer::bind` refuses serial-line framings; close rather than guess.
            Framing::Rtu | Framing::Ascii => {
                let _ = self.stream.shutdown(Shutdown::Both);
                return;
            }
        };
        let mut buf = [0u8; READ_BUFFER_LEN];
        // Responses are built here, the PDU in place behind the MBAP header: no copy per response.
        let mut adu_out = [0u8; tcp::MAX_ADU_LEN];
        while !self.shutdown.is_shutdown() {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // Only this thread writes the counter: a plain store, no atomic increment.
                    let reads = self.reads.load(Ordering::Relaxed).wrapping_add(1);
                    self.reads.store(reads, Ordering::Relaxed);
                    let bytes = buf.get(..n).unwrap_or_default();
                    let next = match &mut decoder {
                        StreamDecoder::Tcp(decoder) => {
                            self.handle_tcp(decoder, &mut server, service, bytes, &mut adu_out)
                        }
                        StreamDecoder::Rtu(decoder) => {
                            self.handle_rtu(decoder, &mut server, service, bytes)
                        }
                    };
                    // Answers gathered before a broken frame still go out, as they would have
                    // one by one.
                    if self.flush().is_err() || next == Next::Close {
                        break;
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Writes one response ADU, or with coalesced responses adds it to those waiting for
    /// [`flush`](Self::flush) (writing them first when it would not fit).
    fn emit(&mut self, adu: &[u8]) -> io::Result<()> {
        if !self.config.coalesce_responses {
            return self.stream.write_all(adu);
        }
        if self.pending.len().saturating_add(adu.len()) > COALESCE_LEN {
            self.flush()?;
        }
        self.pending.extend_from_slice(adu);
        Ok(())
    }

    /// Writes the coalesced responses waiting, in one write.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.pending);
        self.pending.clear();
        result
    }

    /// Feeds MBAP bytes and answers every complete ADU in order.
    fn handle_tcp<S: Service + ?Sized>(
        &mut self,
        decoder: &mut tcp::Decoder,
        server: &mut Server,
        service: &S,
        mut bytes: &[u8],
        adu_out: &mut [u8; tcp::MAX_ADU_LEN],
    ) -> Next {
        // A request usually arrives whole: answer it where it lies, not copied into the decoder
        // first. A protocol id other than 0 is skipped whole and silently (§10.4).
        let mut adus = decoder.whole_adus(bytes);
        for adu in (&mut adus).flatten() {
            if self.answer_tcp(server, service, &adu, adu_out) == Next::Close {
                return Next::Close;
            }
        }
        bytes = adus.rest();
        // Each round takes at least one byte or delivers at least one frame; a stuck decoder
        // (neither) ends the loop rather than spinning.
        while !bytes.is_empty() {
            let taken = decoder.push(bytes);
            bytes = bytes.get(taken..).unwrap_or_default();
            let mut delivered = false;
            while let Some(frame) = decoder.poll_frame() {
                delivered = true;
                let Ok(adu) = frame else {
                    // A protocol id other than 0 is skipped whole and silently (§10.4); a
                    // length-field error marks the decoder broken, handled below.
                    continue;
                };
                if self.answer_tcp(server, service, &adu, adu_out) == Next::Close {
                    return Next::Close;
                }
            }
            if decoder.is_broken() {
                // The length field was outside 2..=254: alignment is lost for good (§10.4).
                return Next::Close;
            }
            if taken == 0 && !delivered {
                break;
            }
        }
        Next::Continue
    }

    /// Answers one MBAP request ADU (or stays silent, as the service decides).
    fn answer_tcp<S: Service + ?Sized>(
        &mut self,
        server: &mut Server,
        service: &S,
        adu: &tcp::Adu<'_>,
        adu_out: &mut [u8; tcp::MAX_ADU_LEN],
    ) -> Next {
        let pdu_out = adu_out.get_mut(tcp::HEADER_LEN..).unwrap_or_default();
        let Reply::Send(len) = service.respond(server, adu.unit_id(), adu.pdu(), pdu_out) else {
            return Next::Continue;
        };
        let Ok(len) = tcp::encode_header(adu.transaction_id(), adu.unit_id(), len, adu_out) else {
            return Next::Continue;
        };
        match self.emit(adu_out.get(..len).unwrap_or_default()) {
            Ok(()) => Next::Continue,
            Err(_) => Next::Close,
        }
    }

    /// Feeds RTU-over-TCP bytes and answers every complete frame in order.
    fn handle_rtu<S: Service + ?Sized>(
        &mut self,
        decoder: &mut rtu::Decoder,
        server: &mut Server,
        service: &S,
        mut bytes: &[u8],
    ) -> Next {
        let mut pdu_out = [0u8; MAX_PDU_LEN];
        let mut adu_out = [0u8; rtu::MAX_ADU_LEN];
        loop {
            let taken = decoder.push(Instant::now(), bytes);
            bytes = bytes.get(taken..).unwrap_or_default();
            let mut delivered = false;
            while let Some(frame) = decoder.poll_frame() {
                delivered = true;
                match frame {
                    Ok(adu) => {
                        server.note_frame_received();
                        let unit_id = adu.unit_id();
                        let reply = service.respond(server, unit_id, adu.pdu(), &mut pdu_out);
                        if let Reply::Send(len) = reply {
                            let pdu = pdu_out.get(..len).unwrap_or_default();
                            let Ok(len) = rtu::encode(unit_id, pdu, &mut adu_out) else {
                                continue;
                            };
                            if self.emit(adu_out.get(..len).unwrap_or_default()).is_err() {
                                return Next::Close;
                            }
                        }
                    }
                    // Bad CRC or garbage: dropped silently, counted for the diagnostics (CPT2).
                    Err(_) => server.note_frame_error(),
                }
            }
            if bytes.is_empty() || (taken == 0 && !delivered) {
                return Next::Continue;
            }
        }
    }
}

/// A listening socket for `addr` with `SO_REUSEADDR`.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// Accept errors that concern one connection (or a momentary shortage), not the listener.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Interrupted
            | ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::TimedOut
    ) || error.raw_os_error().is_some_and(is_descriptor_shortage)
}

/// `EMFILE`/`ENFILE` on Unix: out of file descriptors; accepting again later may work.
const fn is_descriptor_shortage(code: i32) -> bool {
    cfg!(unix) && (code == 23 || code == 24)
}
