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

use crate::frame::Framing;
use crate::time::Instant;

#[cfg(feature = "serial")]
pub mod serial;
pub mod tcp;
mod watchdog;

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
    /// configured for it (see [`TcpConfig::coalesce_requests`](tcp::TcpConfig::coalesce_requests)):
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
    /// ([`TcpConfig::close_on_timeout`](tcp::TcpConfig::close_on_timeout)) may then end the
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
}

/// The time from now until `deadline`, at least `min` so that a blocking read with this timeout
/// does not mean "block forever" (a zero timeout does, on sockets).
pub(crate) fn remaining(
    deadline: Instant,
    min: std::time::Duration,
) -> Option<std::time::Duration> {
    let now = Instant::now();
    if now >= deadline {
        return None;
    }
    Some(std::time::Duration::from(deadline - now).max(min))
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
}
