//! A blocking Modbus TCP server over `std::net` and `socket2`, also usable for RTU over TCP.
//!
//! [`TcpServer::bind`] opens the listening socket (`SO_REUSEADDR`); [`TcpServer::serve`] runs the
//! accept loop in the calling thread until a [`ShutdownHandle`] asks it to stop, and
//! [`TcpServer::spawn`] runs it in a background thread. Each accepted connection gets its own
//! thread and its own [`ServerSession`], which does all the framing; each gets a clone of the
//! [`Handler`] (a [`DataStore`](super::DataStore) or [`UnitMap`](super::UnitMap) clone shares
//! its data). Accepting blocks in the kernel, so a new connection is served at once;
//! [`ShutdownHandle::shutdown`] wakes it.
//!
//! # Resource bounds
//!
//! No peer can keep the server from others, whether it holds connections open, sends one byte
//! at a time (slowloris), or floods:
//!
//! * At most [`Config::max_connections`] connections exist at once. When a newcomer arrives at
//!   the cap, a connection that never completed a request (the oldest of them), else the one
//!   whose last complete request lies furthest back, is closed to make room, as the TCP
//!   implementation guide advises (`modbus-reference.md` §10.5): a client that holds a slot
//!   without using it loses it, a client that is being served does not.
//!   [`Config::max_connections_per_address`] caps the connections of one peer address the
//!   same way, within its own connections, so a single host cannot take every slot.
//! * A connection is closed when no request completed on it for [`Config::idle_timeout`]
//!   (counted from the last complete request, so a trickle of bytes does not keep it alive),
//!   and when a frame it began is not complete after [`Config::frame_timeout`]. Clients must
//!   accept a close from the server and reconnect (§10.5).
//! * Buffers are fixed: one read buffer, one decoder (260 bytes for MBAP, 256 for RTU) and one
//!   response buffer per connection (plus, with [`Config::coalesce_responses`], one of
//!   [`COALESCE_LEN`] bytes that gathers responses). A client that does not read its
//!   responses blocks its own connection thread for at most the idle timeout (the write
//!   timeout), then is closed.
//!
//! The timers are kept by one watcher thread per server, which wakes a few times per timeout
//! and costs the connections nothing per request: connection threads only count their
//! requests, and never read the clock for it.
//!
//! # Framing
//!
//! With [`Framing::Tcp`], the MBAP length field cuts the stream: several requests in one read
//! (pipelining) are answered in order, a request split over many reads is answered once whole,
//! an ADU with a protocol id other than 0 is dropped silently (§10.4), and a length field outside
//! 2..=254 closes the connection, since the stream can no longer be framed. With
//! [`Framing::RtuOverTcp`], raw RTU ADUs (no MBAP header) are cut by the function-code length
//! rules and checked by CRC (§10.6); frames with a bad CRC or for a foreign unit id are ignored,
//! as on a serial line. A pause of [`ServerConfig::frame_gap`] ends a frame attempt, as t3.5 does on
//! a line: after garbage, the first request sent after a pause is framed afresh.
//!
//! # One write per response, or coalesced
//!
//! By default every response is its own write, as `modbus-reference.md` §10.3 asks (one ADU per
//! TCP segment). With [`Config::coalesce_responses`] the responses to all complete ADUs
//! found in one read are gathered and written together (one syscall instead of one per
//! response, which is most of the cost of a pipelined batch on 127.0.0.1). That is safe for any
//! client that parses the byte stream (this crate's client, libmodbus, anything that honours
//! the MBAP length); a client that expects each `recv` to return exactly one response and drops
//! the rest would lose answers, so it stays off unless asked for. It changes nothing for a
//! client that sends one request at a time.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use std::vec::Vec;

use socket2::{Domain, Protocol, Socket, Type};

use super::{ShutdownHandle, lock};
#[cfg(doc)]
use crate::frame::Framing;
use crate::frame::tcp;
use crate::session::server::{Handler, ServerConfig, ServerSession};
use crate::time::Instant;
use crate::transport::SocketOptions;

/// Bytes read from a socket at a time: three maximum-size ADUs, as §10.5 suggests.
const READ_BUFFER_LEN: usize = 1024;
/// Bounds of the watcher's tick: a quarter of the shortest timeout, within these.
const MIN_TICK: Duration = Duration::from_millis(5);
const MAX_TICK: Duration = Duration::from_millis(250);
/// Most bytes of responses gathered before a write when responses are coalesced: sixteen
/// maximum-size MBAP ADUs (a full pipeline of `NumberMaxOfClientTransaction`, §10.3). More
/// responses from one read go out in further writes of up to this size.
pub const COALESCE_LEN: usize = 16 * tcp::MAX_ADU_LEN;

/// Configuration of a [`TcpServer`].
///
/// The session's framing is [`Framing::Tcp`] or [`Framing::RtuOverTcp`]; [`TcpServer::bind`]
/// refuses the serial-line ones.
///
/// ```
/// use modbus_stack::frame::Framing;
/// use modbus_stack::server::tcp::Config;
/// use std::time::Duration;
///
/// let config = Config { max_connections: 4, idle_timeout: Duration::from_secs(10), ..Config::tcp() };
/// assert_eq!(config.session.framing, Framing::Tcp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Framing, unit ids and broadcast rule of every connection's session.
    pub session: ServerConfig,
    /// Most simultaneous connections (at least 1); at the cap, one that never completed a
    /// request, else the least recently used one, makes room for a newcomer.
    pub max_connections: usize,
    /// Most simultaneous connections from one peer address, if capped; a host at its cap that
    /// connects again loses its own least recently used connection.
    pub max_connections_per_address: Option<usize>,
    /// A connection on which no request completed for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose frame, once its first byte arrived, is not complete after this long
    /// is closed.
    pub frame_timeout: Duration,
    /// Answer all complete ADUs found in one read with one write (see the
    /// [module documentation](self#one-write-per-response-or-coalesced)); off by default, as
    /// §10.3 asks.
    pub coalesce_responses: bool,
    /// Options of every accepted socket.
    pub socket: SocketOptions,
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
    /// Default frame timeout: far beyond the milliseconds a frame takes on any working link,
    /// short enough that a slowloris sender gains little.
    pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

    /// Modbus TCP, answering every unit id with no broadcast semantics (§10.2), 16 connections
    /// (no per-address cap), 60 s idle timeout, 5 s frame timeout.
    #[must_use]
    pub const fn tcp() -> Self {
        Self::with_session(ServerConfig::tcp())
    }

    /// RTU over TCP with serial semantics: answers only `unit_id`, executes broadcasts (unit 0)
    /// without answering them, and a pause of [`ServerConfig::DEFAULT_FRAME_GAP`] ends a
    /// frame attempt.
    #[must_use]
    pub fn rtu_over_tcp(unit_id: u8) -> Self {
        Self::with_session(ServerConfig::rtu_over_tcp(unit_id))
    }

    /// The defaults around `session`.
    #[must_use]
    pub const fn with_session(session: ServerConfig) -> Self {
        Self {
            session,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: None,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            frame_timeout: Self::DEFAULT_FRAME_TIMEOUT,
            coalesce_responses: false,
            socket: SocketOptions::DEFAULT,
        }
    }

    /// How often the watcher looks at the connections' timers.
    fn tick(&self) -> Duration {
        (self.idle_timeout.min(self.frame_timeout) / 4).clamp(MIN_TICK, MAX_TICK)
    }
}

/// A bound, not yet serving, Modbus TCP (or RTU over TCP) server.
///
/// ```no_run
/// use modbus_stack::server::tcp::{Config, TcpServer};
/// use modbus_stack::sim;
///
/// let server = TcpServer::bind("127.0.0.1:5020", Config::tcp())?;
/// println!("listening on {}", server.local_addr()?);
/// let running = server.spawn(sim::unit_map())?;
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
        if config.session.framing.is_serial() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                std::format!(
                    "{:?} is a serial-line framing; a TCP server carries Tcp or RtuOverTcp",
                    config.session.framing
                ),
            ));
        }
        let mut last_error = None;
        for addr in addr.to_socket_addrs()? {
            match listen(addr) {
                Ok(listener) => {
                    let shutdown = ShutdownHandle::for_listener(&listener);
                    return Ok(Self {
                        listener,
                        config,
                        shutdown,
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
    /// The watcher thread cannot be started, or accepting fails for a reason other than a
    /// transient one (interrupted, aborted or reset connection, out of descriptors).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the server owns its handler while it runs, as `spawn` does"
    )]
    pub fn serve<H>(self, handler: H) -> io::Result<()>
    where
        H: Handler + Clone + Send + 'static,
    {
        let registry = Arc::new(Registry::default());
        let watcher = {
            let registry = Arc::clone(&registry);
            let shutdown = self.shutdown.clone();
            let config = self.config;
            thread::Builder::new()
                .name("modbus-tcp-watcher".into())
                .spawn(move || watch(&registry, &shutdown, &config))?
        };
        let result = self.accept_loop(&handler, &registry);
        // Stops the watcher too, if the accept loop ended by itself.
        self.shutdown.shutdown();
        let _ = watcher.join();
        let connections = core::mem::take(&mut *lock(&registry.connections));
        for connection in connections.live.values() {
            // Wakes a thread blocked in read or write at once; it then sees the flag and ends.
            connection.close();
        }
        let live = connections
            .live
            .into_values()
            .map(|connection| connection.thread);
        for thread in live.chain(connections.closing) {
            let _ = thread.join();
        }
        result
    }

    /// Runs [`serve`](Self::serve) in a background thread.
    ///
    /// # Errors
    /// The thread cannot be spawned or the local address cannot be read.
    pub fn spawn<H>(self, handler: H) -> io::Result<SpawnedServer>
    where
        H: Handler + Clone + Send + 'static,
    {
        let local_addr = self.local_addr()?;
        let shutdown = self.shutdown_handle();
        let thread = thread::Builder::new()
            .name("modbus-tcp-accept".into())
            .spawn(move || self.serve(handler))?;
        Ok(SpawnedServer {
            local_addr,
            shutdown,
            thread: Some(thread),
        })
    }

    fn accept_loop<H>(&self, handler: &H, registry: &Registry) -> io::Result<()>
    where
        H: Handler + Clone + Send + 'static,
    {
        let mut next_id = 0u64;
        while !self.shutdown.is_shutdown() {
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(_) if self.shutdown.is_shutdown() => break,
                Err(error) if is_transient(&error) => {
                    if error.raw_os_error().is_some_and(is_descriptor_shortage) {
                        // Nothing frees a descriptor faster than a short pause does.
                        thread::sleep(MIN_TICK);
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            if self.shutdown.is_shutdown() {
                break;
            }
            let mut connections = lock(&registry.connections);
            make_room(&mut connections, peer.ip(), &self.config);
            // A connection that cannot be set up is dropped (closed); the server itself is
            // fine.
            if let Ok(connection) = self.start_connection(stream, peer, handler) {
                next_id = next_id.wrapping_add(1);
                let first = connections.live.is_empty() && connections.closing.is_empty();
                connections.live.insert(next_id, connection);
                drop(connections);
                if first {
                    self.shutdown.wake();
                }
            }
        }
        Ok(())
    }

    fn start_connection<H>(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        handler: &H,
    ) -> io::Result<Connection>
    where
        H: Handler + Clone + Send + 'static,
    {
        // The accepted socket may inherit non-blocking mode from the listener on some systems.
        stream.set_nonblocking(false)?;
        self.config.socket.apply(&socket2::SockRef::from(&stream))?;
        // No read timeout: a blocking read with a timeout arms a kernel timer on every wait, a
        // measurable cost per request on a fast link. The watcher closes connections whose
        // timers ran out instead, and shutdown closes every socket, which wakes its reader.
        stream.set_write_timeout(Some(self.config.idle_timeout))?;
        let control = stream.try_clone()?;
        let progress = Arc::new(Progress::new(Instant::now()));
        let worker = ConnectionWorker {
            stream,
            progress: Arc::clone(&progress),
            config: self.config,
            shutdown: self.shutdown.clone(),
            pending: if self.config.coalesce_responses {
                Vec::with_capacity(COALESCE_LEN)
            } else {
                Vec::new()
            },
            stamped: None,
            frame_in_progress: false,
        };
        let mut handler = handler.clone();
        let thread = thread::Builder::new()
            .name("modbus-tcp-connection".into())
            .spawn(move || worker.run(&mut handler))?;
        Ok(Connection {
            stream: control,
            peer: peer.ip(),
            thread,
            progress,
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

/// What a connection thread tells the watcher and the accept loop: times in [`Instant`]
/// microseconds, written by that thread alone.
#[derive(Debug)]
struct Progress {
    /// When the latest complete request arrived (the accept, before the first).
    last_request: AtomicU64,
    /// A request has completed: the connection is in use.
    used: AtomicBool,
    /// When the frame in progress began; 0 when none is.
    frame_started: AtomicU64,
}

impl Progress {
    fn new(accepted: Instant) -> Self {
        Self {
            last_request: AtomicU64::new(accepted.as_micros()),
            used: AtomicBool::new(false),
            frame_started: AtomicU64::new(0),
        }
    }

    fn last_request(&self) -> Instant {
        Instant::from_micros(self.last_request.load(Ordering::Relaxed))
    }

    fn frame_started(&self) -> Option<Instant> {
        match self.frame_started.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Instant::from_micros(micros)),
        }
    }
}

/// The connections of a server.
#[derive(Debug, Default)]
struct Registry {
    connections: Mutex<Connections>,
}

#[derive(Debug, Default)]
struct Connections {
    /// Running connections, by the order they were accepted.
    live: BTreeMap<u64, Connection>,
    /// Threads of connections closed to make room, ending; the watcher joins them.
    closing: Vec<JoinHandle<()>>,
}

/// A running connection as the accept loop and the watcher see it.
#[derive(Debug)]
struct Connection {
    /// A second handle on the socket, to close it.
    stream: TcpStream,
    peer: IpAddr,
    thread: JoinHandle<()>,
    progress: Arc<Progress>,
}

impl Connection {
    /// `true` when a timer of `config` ran out at `now`.
    fn expired(&self, now: Instant, config: &Config) -> bool {
        let since = |at: Instant| now.saturating_duration_since(at);
        since(self.progress.last_request()) >= config.idle_timeout
            || self
                .progress
                .frame_started()
                .is_some_and(|at| since(at) >= config.frame_timeout)
    }

    fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Before a connection from `peer` is added: closes the least recently used connection of
/// `peer` when it is at its per-address cap, then the least recently used of all when the
/// server is at its cap (§10.5: "the oldest unused connection"). Connections that never
/// completed a request go first, oldest first: accepts can lag (a loaded accept thread takes
/// a backlog at once), and by accept time alone a burst of newcomers that send nothing would
/// look fresher than a client being served.
fn make_room(connections: &mut Connections, peer: IpAddr, config: &Config) {
    // Connections whose thread has ended (closed by their peer or for bad framing) hold no
    // slot; the watcher reaps them only at its next tick.
    let ended: Vec<u64> = connections
        .live
        .iter()
        .filter(|(_, connection)| connection.thread.is_finished())
        .map(|(id, _)| *id)
        .collect();
    for id in ended {
        if let Some(connection) = connections.live.remove(&id) {
            connections.closing.push(connection.thread);
        }
    }
    let evict = |connections: &mut Connections, same_peer: bool| -> bool {
        let oldest = connections
            .live
            .iter()
            .filter(|(_, connection)| !same_peer || connection.peer == peer)
            .min_by_key(|(id, connection)| {
                let progress = &connection.progress;
                let used = progress.used.load(Ordering::Relaxed);
                (used, progress.last_request(), **id)
            })
            .map(|(id, _)| *id);
        let Some(connection) = oldest.and_then(|id| connections.live.remove(&id)) else {
            return false;
        };
        connection.close();
        connections.closing.push(connection.thread);
        true
    };
    if let Some(cap) = config.max_connections_per_address {
        while connections
            .live
            .values()
            .filter(|connection| connection.peer == peer)
            .count()
            >= cap
        {
            if !evict(connections, true) {
                break;
            }
        }
    }
    while connections.live.len() >= config.max_connections {
        if !evict(connections, false) {
            break;
        }
    }
}

/// The watcher: every tick, closes the connections whose idle or frame timer ran out and joins
/// the threads of those that ended; sleeps without a time limit while there are none.
fn watch(registry: &Registry, shutdown: &ShutdownHandle, config: &Config) {
    let tick = config.tick();
    while !shutdown.is_shutdown() {
        let now = Instant::now();
        let (finished, idle) = {
            let mut connections = lock(&registry.connections);
            let ended: Vec<u64> = connections
                .live
                .iter()
                .filter_map(|(id, connection)| {
                    if connection.thread.is_finished() {
                        return Some(*id);
                    }
                    if connection.expired(now, config) {
                        connection.close();
                    }
                    None
                })
                .collect();
            let mut finished: Vec<JoinHandle<()>> = ended
                .iter()
                .filter_map(|id| connections.live.remove(id))
                .map(|connection| connection.thread)
                .collect();
            let (done, running): (Vec<_>, Vec<_>) = core::mem::take(&mut connections.closing)
                .into_iter()
                .partition(JoinHandle::is_finished);
            connections.closing = running;
            finished.extend(done);
            let idle = connections.live.is_empty() && connections.closing.is_empty();
            (finished, idle)
        };
        for thread in finished {
            let _ = thread.join();
        }
        shutdown.sleep((!idle).then_some(tick));
    }
}

/// The state a connection thread owns.
struct ConnectionWorker {
    stream: TcpStream,
    /// Counters for the watcher, written by this thread alone.
    progress: Arc<Progress>,
    config: Config,
    shutdown: ShutdownHandle,
    /// Responses gathered for one write (coalesced responses only; at most [`COALESCE_LEN`]).
    pending: Vec<u8>,
    /// When the current read's first complete request was stamped, if it had one.
    stamped: Option<u64>,
    /// The session held part of a frame after the previous read.
    frame_in_progress: bool,
}

impl ConnectionWorker {
    fn run<H: Handler>(mut self, handler: &mut H) {
        let mut session = ServerSession::new(self.config.session);
        let mut buf = [0u8; READ_BUFFER_LEN];
        let mut out = [0u8; tcp::MAX_ADU_LEN];
        while !self.shutdown.is_shutdown() {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    let open = self.handle(&mut session, handler, bytes, &mut out);
                    // Answers gathered before a broken frame still go out, as they would have
                    // one by one.
                    if self.flush().is_err() || !open {
                        break;
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Passes one read's bytes through the session and sends its answers; `false` when the
    /// connection must close (the stream can no longer be framed, or a write failed).
    fn handle<H: Handler>(
        &mut self,
        session: &mut ServerSession,
        handler: &mut H,
        mut bytes: &[u8],
        out: &mut [u8; tcp::MAX_ADU_LEN],
    ) -> bool {
        // One clock read per read: the RTU-over-TCP frame gap needs it, and it stamps the
        // requests for the watcher.
        let now = Instant::now();
        let before = session.requests_received();
        loop {
            let taken = session.handle_input(now, bytes, handler);
            bytes = bytes.get(taken..).unwrap_or_default();
            if session.requests_received() != before {
                // Stamped before the answer goes out, so that a client which got its answer
                // is never taken for the least recently used one.
                self.note_request(now);
            }
            let mut sent = false;
            while let Some(len) = session.poll_transmit(out) {
                sent = true;
                if self.emit(out.get(..len).unwrap_or_default()).is_err() {
                    return false;
                }
            }
            if session.needs_close() {
                // A length field outside 2..=254: alignment is lost for good (§10.4).
                return false;
            }
            // After an answer the session may hold further whole requests (the decoder took
            // them with the first), so it gets another round even with no bytes left. A round
            // that neither sends nor takes ends the loop rather than spins.
            if !sent && (bytes.is_empty() || taken == 0) {
                break;
            }
        }
        self.publish(session.is_mid_frame(), now);
        true
    }

    /// Stamps the read's requests for the watcher and the accept loop, once per read.
    fn note_request(&mut self, now: Instant) {
        if self.stamped.is_none() {
            let now = now.as_micros().max(1);
            self.progress.last_request.store(now, Ordering::Relaxed);
            self.progress.used.store(true, Ordering::Relaxed);
            self.stamped = Some(now);
        }
    }

    /// Tells the watcher whether the read left a frame begun (and since when).
    fn publish(&mut self, partial: bool, now: Instant) {
        let stamped = self.stamped.take();
        if partial && (stamped.is_some() || !self.frame_in_progress) {
            // A frame begun after the requests of this read, or the first bytes of one.
            let now = stamped.unwrap_or_else(|| now.as_micros().max(1));
            self.progress.frame_started.store(now, Ordering::Relaxed);
        } else if !partial && self.frame_in_progress {
            self.progress.frame_started.store(0, Ordering::Relaxed);
        }
        self.frame_in_progress = partial;
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
