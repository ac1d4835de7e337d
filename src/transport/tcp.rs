//! Modbus TCP and RTU over TCP on a `std::net::TcpStream` set up with `socket2`.
//!
//! The socket gets the options `modbus-reference.md` §10.5 recommends: `TCP_NODELAY` (requests
//! are small and latency-bound, Nagle would hold them back) and `SO_KEEPALIVE` (to notice a
//! half-open connection after the server rebooted). Connecting has its own timeout, and a
//! connection that breaks is reopened with exponential backoff between attempts: the spec asks a
//! client to accept a close from the server and reconnect when needed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use std::vec::Vec;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use super::watchdog::Watch;
use super::{SocketOptions, Transport, remaining};
use crate::frame::Framing;
use crate::time::Instant;

/// Shortest read or write timeout handed to the socket (a zero timeout would block forever).
const MIN_SOCKET_TIMEOUT: Duration = Duration::from_millis(1);
/// Waits longer than this are armed a sixteenth short of the deadline (see
/// [`TcpTransport::arm_read_timeout`]); shorter ones exactly.
const EXACT_READ_TIMEOUT: Duration = Duration::from_millis(16);

/// Settings of a [`TcpTransport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Longest wait for one connection attempt.
    pub connect_timeout: Duration,
    /// Longest a write may block. A write blocks only when the socket's send buffer is full,
    /// that is when the server has stopped reading (a hung device, a dead peer TCP has not
    /// noticed yet); without a limit the client would hang in that write for good. The
    /// connection is then treated as broken and reopened.
    pub write_timeout: Duration,
    /// `TCP_NODELAY` and keep-alive.
    pub socket: SocketOptions,
    /// Connection attempts per [`Transport::reconnect`], at least 1.
    pub reconnect_attempts: u32,
    /// Delay after the first failed attempt; doubled after each further one.
    pub reconnect_backoff: Duration,
    /// Largest delay between two attempts.
    pub reconnect_max_backoff: Duration,
    /// Write every request that [`Client::pipeline`](crate::client::Client::pipeline) has ready
    /// in one `send` (one syscall, usually one segment) instead of one `send` per request. Off by
    /// default, and only used on Modbus TCP ([`Framing::Tcp`]; RTU over TCP has one request at a
    /// time anyway).
    ///
    /// `modbus-reference.md` §10.3: each TCP segment *should* carry one ADU and clients should
    /// not pack several requests into one segment, although receivers must handle several ADUs
    /// in one read. Servers that read one ADU per `recv` and drop the rest lose every request
    /// after the first of a coalesced batch (pymodbus answers only the first of two requests in
    /// one write, `tests/interop/DIFFERENCES.md` #7); such peers time those requests out. Turn
    /// this on only towards servers that parse the byte stream (libmodbus, this crate's
    /// [`TcpServer`](crate::server::tcp::TcpServer)): on 127.0.0.1 it roughly halves the
    /// syscalls of a pipelined batch.
    pub coalesce_requests: bool,
    /// Close the connection when a response times out, and open a new one for the next
    /// request (a retry included). Off by default.
    ///
    /// With it, a timeout also clears whatever the server still had queued for this client,
    /// and a connection that went dead silently (a NAT or firewall that forgot it, a cable
    /// pulled) is replaced at the first timeout instead of when TCP gives up on it, many
    /// minutes later (industrial drivers commonly offer the same switch). And
    /// the wait for a response arms no kernel timer per read: a watchdog thread, one per
    /// process, shuts the socket down at the deadline instead, which makes a fast link's
    /// request/response cycle 1–2% cheaper.
    ///
    /// Against it: every timeout costs a reconnection, hard on a gateway with one or two
    /// connection slots that answers nothing for a dead device behind it; pipelined requests
    /// still in flight when one times out are lost with the connection (reads are retried,
    /// writes end with an I/O error); and the TCP guide asks clients to keep their
    /// connections open (`modbus-reference.md` §10.5).
    pub close_on_timeout: bool,
}

impl Default for Config {
    /// 3 s connect and write timeouts, `TCP_NODELAY`, keep-alive after 60 s idle, 3
    /// reconnection attempts 100 ms then 200 ms apart (capped at 2 s), one request per write,
    /// the connection kept when a response times out.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(3),
            socket: SocketOptions::DEFAULT,
            reconnect_attempts: 3,
            reconnect_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(2),
            coalesce_requests: false,
            close_on_timeout: false,
        }
    }
}

/// A TCP connection to one server, carrying Modbus TCP ([`Framing::Tcp`]) or RTU over TCP
/// ([`Framing::RtuOverTcp`]).
#[derive(Debug)]
pub struct TcpTransport {
    addrs: Vec<SocketAddr>,
    config: Config,
    framing: Framing,
    stream: Option<TcpStream>,
    /// The read timeout set on `stream` (`None`: none).
    read_timeout: Option<Duration>,
    /// `stream`'s registration with the watchdog ([`Config::close_on_timeout`]).
    watch: Option<Arc<Watch>>,
    /// The watchdog closed the connection at a response deadline: the next send reopens it.
    closed_by_timeout: bool,
}

impl TcpTransport {
    /// Connects to `addr` for Modbus TCP.
    ///
    /// # Errors
    /// The address does not resolve, or no address accepted a connection in time.
    pub fn connect(addr: impl ToSocketAddrs, config: Config) -> io::Result<Self> {
        Self::connect_with(addr, config, Framing::Tcp)
    }

    /// Connects to `addr` for RTU over TCP (a serial-to-Ethernet converter in transparent mode).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_rtu_over_tcp(addr: impl ToSocketAddrs, config: Config) -> io::Result<Self> {
        Self::connect_with(addr, config, Framing::RtuOverTcp)
    }

    fn connect_with(
        addr: impl ToSocketAddrs,
        config: Config,
        framing: Framing,
    ) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "address resolved to nothing",
            ));
        }
        let mut transport = Self {
            addrs,
            config,
            framing,
            stream: None,
            read_timeout: None,
            watch: None,
            closed_by_timeout: false,
        };
        let stream = transport.open()?;
        transport.attach(stream)?;
        Ok(transport)
    }

    /// Makes `stream` the connection, registered with the watchdog when responses time out by
    /// closing it.
    fn attach(&mut self, stream: TcpStream) -> io::Result<()> {
        self.detach();
        if self.config.close_on_timeout {
            self.watch = Some(Watch::register(&stream)?);
        }
        self.stream = Some(stream);
        Ok(())
    }

    /// Drops the connection (and its watch).
    fn detach(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.unregister();
        }
        self.stream = None;
        self.read_timeout = None;
        self.closed_by_timeout = false;
    }

    /// The address connected to (the first that accepted), if connected.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream
            .as_ref()
            .and_then(|stream| stream.peer_addr().ok())
    }

    /// One connection attempt to each resolved address in turn.
    fn open(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::NotConnected, "no address tried");
        for addr in &self.addrs {
            match self.open_one(*addr) {
                Ok(stream) => return Ok(stream),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    fn open_one(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.connect_timeout(&SockAddr::from(addr), self.config.connect_timeout)?;
        self.config.socket.apply(&SockRef::from(&socket))?;
        // A zero timeout would mean "block forever" to the socket.
        socket.set_write_timeout(Some(self.config.write_timeout.max(MIN_SOCKET_TIMEOUT)))?;
        Ok(TcpStream::from(socket))
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }

    /// What a read into a `len`-byte buffer that did not time out returns: its bytes, `Ok(0)`
    /// when interrupted (the caller looks at the clock and reads again), or the error that
    /// broke the connection (a close by the server included).
    fn received(&mut self, read: io::Result<usize>, len: usize) -> io::Result<usize> {
        match read {
            Ok(0) if len > 0 => self.broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            )),
            Ok(n) => Ok(n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(error) => self.broken(error),
        }
    }

    /// Forgets the connection after an error, so the next use reconnects.
    fn broken<T>(&mut self, error: io::Error) -> io::Result<T> {
        self.detach();
        Err(error)
    }

    /// Makes the next read return by `remaining` from now at the latest, with as few
    /// `setsockopt` calls as possible: a timeout already set is kept while it is no longer than
    /// `remaining` and at least half of it (the read may then end early; [`Transport::receive`]
    /// reads again until the deadline). A new timeout stops a sixteenth short of `remaining`, so
    /// the next requests, whose deadlines lie as far ahead, find it still good: one call per
    /// connection instead of one per read.
    fn arm_read_timeout(&mut self, remaining: Duration) -> io::Result<()> {
        if self
            .read_timeout
            .is_some_and(|set| set <= remaining && set >= remaining / 2)
        {
            return Ok(());
        }
        let timeout = if remaining > EXACT_READ_TIMEOUT {
            remaining.saturating_sub(remaining / 16)
        } else {
            remaining
        };
        self.stream()?.set_read_timeout(Some(timeout))?;
        self.read_timeout = Some(timeout);
        Ok(())
    }
}

impl Transport for TcpTransport {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn coalesce_requests(&self) -> bool {
        self.config.coalesce_requests && self.framing.can_pipeline()
    }

    fn send(&mut self, adu: &[u8]) -> io::Result<()> {
        if self.closed_by_timeout {
            // The session already knows the old connection is gone (the timeout said so).
            self.reconnect()?;
        }
        // One ADU per write unless `coalesce_requests`: TCP §4.3.1 asks clients not to pack
        // several requests in a segment.
        let result = self.stream()?.write_all(adu);
        match result {
            Ok(()) => Ok(()),
            Err(error) => self.broken(error),
        }
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        if self.closed_by_timeout {
            // No connection until the next send: nothing can arrive, wait out the deadline
            // (the end of a retry's backoff).
            if let Some(remaining) = remaining(deadline, Duration::ZERO) {
                std::thread::sleep(remaining);
            }
            return Ok(0);
        }
        loop {
            let Some(remaining) = remaining(deadline, MIN_SOCKET_TIMEOUT) else {
                return Ok(0);
            };
            self.arm_read_timeout(remaining)?;
            let read = self.stream()?.read(buf);
            match read {
                // The socket's timeout may end before the deadline: look at the clock again.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                read => return self.received(read, buf.len()),
            }
        }
    }

    fn receive_response(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let (Some(watch), Some(stream)) = (&self.watch, &mut self.stream) else {
            // Not closing on timeouts, or closed by one until the next send.
            return self.receive(buf, deadline);
        };
        if self.read_timeout.is_some() {
            // Set by a plain `receive` (a backoff wait): this read must not arm a timer.
            stream.set_read_timeout(None)?;
            self.read_timeout = None;
        }
        watch.arm(deadline);
        let read = stream.read(buf);
        if !watch.disarm() {
            // The watchdog shut the socket down at the deadline; bytes that made it in the
            // meantime came too late.
            self.detach();
            self.closed_by_timeout = true;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no response by the deadline: connection closed",
            ));
        }
        self.received(read, buf.len())
    }

    fn clear_input(&mut self) -> io::Result<()> {
        let stream = self.stream()?;
        stream.set_nonblocking(true)?;
        let mut scratch = [0u8; 256];
        let result = loop {
            match stream.read(&mut scratch) {
                // A close is noticed by the next receive.
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        stream.set_nonblocking(false)?;
        result
    }

    fn close(&mut self) -> io::Result<()> {
        let result = match &self.stream {
            Some(stream) => match stream.shutdown(std::net::Shutdown::Both) {
                // The peer (or the watchdog) closed it first: closed is what was asked.
                Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
                other => other,
            },
            None => Ok(()),
        };
        self.detach();
        result
    }

    fn reconnect(&mut self) -> io::Result<()> {
        self.detach();
        let attempts = self.config.reconnect_attempts.max(1);
        let mut backoff = self.config.reconnect_backoff;
        let mut attempt = 1;
        loop {
            match self.open() {
                Ok(stream) => return self.attach(stream),
                Err(error) if attempt >= attempts => return Err(error),
                Err(_) => {
                    std::thread::sleep(backoff);
                    backoff = backoff
                        .saturating_mul(2)
                        .min(self.config.reconnect_max_backoff);
                    attempt += 1;
                }
            }
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        // The watchdog keeps a handle on the socket until the watch is removed.
        self.detach();
    }
}
