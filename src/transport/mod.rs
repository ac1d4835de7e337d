//! Blocking transports (feature `std`): they move bytes and read the clock, nothing else.
//!
//! A [`Transport`] writes whole ADUs, reads whatever bytes arrive before a deadline, clears
//! stale input and reopens a broken link. Framing, matching, timeouts and retries belong to the
//! sans-IO [`session::client`](crate::session::client) that the blocking
//! [`Client`](crate::client::Client) drives over it; the transports only add what the medium
//! itself needs (socket options and reconnection on TCP, the t3.5 silence before sending on an
//! RTU line).
//!
//! [`tcp::TcpTransport`] carries Modbus TCP or RTU over TCP; `serial::SerialTransport`
//! (feature `serial`) carries RTU or ASCII on a serial port.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::frame::Framing;
use crate::time::Instant;

#[cfg(feature = "serial")]
pub mod serial;
pub mod tcp;
mod watchdog;

/// Options of a TCP socket, for clients and servers alike: those `modbus-reference.md` §10.5
/// recommends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// Disable Nagle's algorithm (`TCP_NODELAY`): requests and responses are small and
    /// latency-bound, and Nagle would hold them back. On by default.
    pub nodelay: bool,
    /// Idle time before the first keep-alive probe, which finds a half-open connection after
    /// the peer rebooted within minutes instead of the system default of two hours; `None`
    /// leaves `SO_KEEPALIVE` off. 60 s by default.
    pub keepalive: Option<Duration>,
}

impl SocketOptions {
    /// `TCP_NODELAY`, keep-alive after 60 s idle.
    pub const DEFAULT: Self = Self {
        nodelay: true,
        keepalive: Some(Duration::from_secs(60)),
    };

    /// Sets the options on `socket`. A platform that cannot set the keep-alive idle time gets
    /// keep-alive with its own default.
    pub(crate) fn apply(&self, socket: &SockRef<'_>) -> io::Result<()> {
        socket.set_tcp_nodelay(self.nodelay)?;
        if let Some(idle) = self.keepalive {
            socket.set_keepalive(true)?;
            let _ = socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle));
        }
        Ok(())
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A byte link for a Modbus client: one TCP connection or one serial port.
pub trait Transport {
    /// The framing of the ADUs this transport carries.
    fn framing(&self) -> Framing;

    /// Writes all of `adu` (one ADU; the transport may wait before sending, as an RTU line waits
    /// for t3.5 of silence). When [`coalesce_requests`](Self::coalesce_requests) is `true`,
    /// `adu` may hold several ADUs back to back, to go out in one write.
    ///
    /// # Errors
    /// The I/O error; the caller then calls [`reconnect`](Self::reconnect).
    fn send(&mut self, adu: &[u8]) -> io::Result<()>;

    /// `true` when the client may gather every request it has ready (a
    /// [`Client::pipeline`](crate::client::Client::pipeline) batch) into one
    /// [`send`](Self::send), instead of one `send` per ADU. `false` unless the transport was
    /// configured for it (see [`tcp::Config::coalesce_requests`](tcp::Config::coalesce_requests)):
    /// `modbus-reference.md` §10.3 asks clients not to pack several requests into one segment,
    /// and some servers answer only the first ADU of a read.
    fn coalesce_requests(&self) -> bool {
        false
    }

    /// Reads the bytes that arrive before `deadline` (on [`Instant::now`]'s clock) into `buf`.
    /// Returns as soon as some bytes are in, and `Ok(0)` once the deadline has passed without
    /// any.
    ///
    /// # Errors
    /// The I/O error, or [`io::ErrorKind::UnexpectedEof`] when the peer closed the connection.
    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize>;

    /// [`receive`](Self::receive) while a response is awaited and `deadline` is its response
    /// deadline (rather than the end of a retry's backoff, say). A transport set to close the
    /// link when a response times out
    /// ([`tcp::Config::close_on_timeout`](tcp::Config::close_on_timeout)) may then end the
    /// wait by closing the link at `deadline`, and reports that with an
    /// [`io::ErrorKind::TimedOut`] error; it reopens the link at the next
    /// [`send`](Self::send). The default is [`receive`](Self::receive).
    ///
    /// # Errors
    /// As [`receive`](Self::receive), and [`io::ErrorKind::TimedOut`] as above.
    fn receive_response(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        self.receive(buf, deadline)
    }

    /// Drops bytes received but not read yet (stale answers, line noise) before a request.
    ///
    /// # Errors
    /// The I/O error.
    fn clear_input(&mut self) -> io::Result<()>;

    /// Closes the link and opens it again (with the transport's own backoff between attempts).
    ///
    /// # Errors
    /// The error of the last attempt, when the link could not be reopened.
    fn reconnect(&mut self) -> io::Result<()>;

    /// Ends the link on purpose: whatever was sent reaches the wire, and the peer learns the
    /// link is closed (a TCP FIN, rather than a reset a peer may log as a fault). The next
    /// [`send`](Self::send) opens it again. The default has nothing to do.
    ///
    /// # Errors
    /// The I/O error of flushing or shutting down; the link is closed all the same.
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The time from now until `deadline`, at least `min` so that a blocking read with this timeout
/// does not mean "block forever" (a zero timeout does, on sockets).
pub(crate) fn remaining(deadline: Instant, min: Duration) -> Option<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return None;
    }
    Some((deadline - now).max(min))
}

/// A boxed transport is a transport, so one [`Client`](crate::client::Client) type (and one
/// [`harvest::Engine`](crate::harvest::Engine)) can drive TCP and serial links alike:
/// `Client<Box<dyn Transport + Send>>`.
impl<T: Transport + ?Sized> Transport for std::boxed::Box<T> {
    fn framing(&self) -> Framing {
        (**self).framing()
    }

    fn send(&mut self, adu: &[u8]) -> io::Result<()> {
        (**self).send(adu)
    }

    fn coalesce_requests(&self) -> bool {
        (**self).coalesce_requests()
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        (**self).receive(buf, deadline)
    }

    fn receive_response(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        (**self).receive_response(buf, deadline)
    }

    fn clear_input(&mut self) -> io::Result<()> {
        (**self).clear_input()
    }

    fn reconnect(&mut self) -> io::Result<()> {
        (**self).reconnect()
    }

    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
}
