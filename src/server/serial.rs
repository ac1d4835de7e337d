//! A blocking Modbus RTU or ASCII server on a serial line (feature `serial`).
//!
//! A [`SerialServer`] owns the port and the [`ServerSession`] of one line, which does all the
//! line rules of `modbus-reference.md` §8 and §9: it answers only its own unit id, executes
//! broadcasts (unit 0) without answering, drops frames with a bad CRC or LRC silently (counted
//! for the diagnostics), cuts RTU frames by t1.5/t3.5 and the function-code length rules, and
//! holds each answer until t3.5 after its request. The server only moves bytes and reads the
//! clock. Reads use short timeouts, so a shutdown is seen within [`POLL_INTERVAL`].

use std::boxed::Box;
use std::io::{self, ErrorKind};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serialport::SerialPort;

use super::ShutdownHandle;
use crate::frame::ascii;
use crate::session::server::{Handler, ServerConfig, ServerSession};
use crate::time::Instant;
use crate::transport::serial::Config as LineConfig;

/// The longest a read blocks while no timer is due: how quickly a shutdown is seen.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Bytes read from the port at a time.
const READ_BUFFER_LEN: usize = 256;
/// Most timer waits while one read's bytes are passed on: an answer's turnaround, and the
/// decoder timers that may fall before it.
const MAX_TIMER_WAITS: u32 = 16;

/// A Modbus RTU or ASCII server for one serial line.
///
/// ```no_run
/// use modbus_stack::server::serial::SerialServer;
/// use modbus_stack::session::server::ServerConfig;
/// use modbus_stack::transport::serial::Config;
///
/// let line = Config::new(19_200); // 8E1
/// let mut server = SerialServer::open("/dev/ttyUSB0", &line, ServerConfig::rtu(1, line.timing()))?;
/// server.serve(modbus_stack::sim::unit_map())?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SerialServer {
    port: Box<dyn SerialPort>,
    session: ServerSession,
    shutdown: ShutdownHandle,
}

impl core::fmt::Debug for SerialServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SerialServer")
            .field("port", &self.port.name())
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SerialServer {
    /// Opens the port at `path` with the character format of `line`, for a session of
    /// `session` (its framing is [`Rtu`](crate::frame::Framing::Rtu) or
    /// [`Ascii`](crate::frame::Framing::Ascii); give RTU the line's
    /// [`timing`](LineConfig::timing)).
    ///
    /// # Errors
    /// The port cannot be opened or configured, or `session`'s framing is a TCP one.
    pub fn open(path: &str, line: &LineConfig, session: ServerConfig) -> io::Result<Self> {
        check_framing(&session)?;
        Ok(Self::with_port(line.open(path, POLL_INTERVAL)?, session))
    }

    /// Serves on a port opened and configured by the caller (a pseudo-terminal, a port with
    /// special settings).
    ///
    /// # Errors
    /// `session`'s framing is a TCP one.
    pub fn from_port(port: Box<dyn SerialPort>, session: ServerConfig) -> io::Result<Self> {
        check_framing(&session)?;
        Ok(Self::with_port(port, session))
    }

    fn with_port(port: Box<dyn SerialPort>, session: ServerConfig) -> Self {
        Self {
            port,
            session: ServerSession::new(session),
            shutdown: ShutdownHandle::new(),
        }
    }

    /// The protocol session: diagnostics counters, event log, listen-only mode.
    #[must_use]
    pub const fn session(&self) -> &ServerSession {
        &self.session
    }

    /// A handle that stops [`serve`](Self::serve) from another thread.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Answers requests on the line from `handler` in the calling thread until the
    /// [`ShutdownHandle`] is used. Changes the port's timeout.
    ///
    /// # Errors
    /// Reading from, writing to or configuring the port fails (a read timeout is not an error).
    pub fn serve<H: Handler>(&mut self, mut handler: H) -> io::Result<()> {
        let mut buf = [0u8; READ_BUFFER_LEN];
        let mut out = [0u8; ascii::MAX_FRAME_CHARS];
        let mut timeout = POLL_INTERVAL;
        self.port.set_timeout(timeout)?;
        while !self.shutdown.is_shutdown() {
            // Wake when the session's timer is due (a frame ended by silence, an answer's
            // turnaround), so both happen promptly; otherwise at the poll interval.
            let wanted = self.session.poll_timeout().map_or(POLL_INTERVAL, |due| {
                let wait = due.saturating_duration_since(Instant::now());
                wait.clamp(Duration::from_millis(1), POLL_INTERVAL)
            });
            if wanted != timeout {
                timeout = wanted;
                self.port.set_timeout(timeout)?;
            }
            match self.port.read(&mut buf) {
                Ok(n) => {
                    let now = Instant::now();
                    self.receive(
                        now,
                        buf.get(..n).unwrap_or_default(),
                        &mut handler,
                        &mut out,
                    )?;
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(error),
            }
            let now = Instant::now();
            if self.session.poll_timeout().is_some_and(|due| due <= now) {
                self.session.handle_timeout(now, &mut handler);
            }
            self.transmit(&mut out)?;
        }
        Ok(())
    }

    /// Runs [`serve`](Self::serve) in a background thread.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn spawn<H: Handler + Send + 'static>(mut self, handler: H) -> io::Result<SpawnedServer> {
        let shutdown = self.shutdown_handle();
        let thread = thread::Builder::new()
            .name("modbus-serial".into())
            .spawn(move || {
                let result = self.serve(handler);
                (self, result)
            })?;
        Ok(SpawnedServer { shutdown, thread })
    }

    /// Passes bytes read at `now` to the session, sending answers as they fall due.
    fn receive<H: Handler>(
        &mut self,
        now: Instant,
        mut bytes: &[u8],
        handler: &mut H,
        out: &mut [u8; ascii::MAX_FRAME_CHARS],
    ) -> io::Result<()> {
        // Each round takes bytes, or sends an answer (after which the session may hold further
        // whole requests, so it gets another round even with no bytes left), or waits for the
        // session's next timer (an answer's turnaround, or a decoder timer before it). The
        // waits are bounded, so a session that never frees itself cannot hold the loop.
        let mut waits = 0;
        loop {
            let taken = self.session.handle_input(now, bytes, handler);
            bytes = bytes.get(taken..).unwrap_or_default();
            if self.transmit(out)? {
                continue;
            }
            if bytes.is_empty() {
                break;
            }
            if taken > 0 {
                continue;
            }
            let Some(due) = self.session.poll_timeout() else {
                break;
            };
            waits += 1;
            if waits > MAX_TIMER_WAITS {
                break;
            }
            thread::sleep(due.saturating_duration_since(Instant::now()));
            self.session
                .handle_timeout(Instant::now().max(due), handler);
        }
        Ok(())
    }

    /// Sends the answers that are due; `true` if there was one.
    fn transmit(&mut self, out: &mut [u8; ascii::MAX_FRAME_CHARS]) -> io::Result<bool> {
        let mut sent = false;
        while let Some(len) = self.session.poll_transmit(out) {
            self.port.write_all(out.get(..len).unwrap_or_default())?;
            self.port.flush()?;
            sent = true;
        }
        Ok(sent)
    }
}

fn check_framing(session: &ServerConfig) -> io::Result<()> {
    if session.framing.is_serial() {
        Ok(())
    } else {
        Err(io::Error::new(
            ErrorKind::InvalidInput,
            std::format!(
                "{:?} is a TCP framing; a serial line carries Rtu or Ascii",
                session.framing
            ),
        ))
    }
}

/// A [`SerialServer`] serving in a background thread, from [`SerialServer::spawn`].
#[derive(Debug)]
pub struct SpawnedServer {
    shutdown: ShutdownHandle,
    thread: JoinHandle<(SerialServer, io::Result<()>)>,
}

impl SpawnedServer {
    /// A handle that stops the server without waiting for it.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Stops the server, waits for its thread, and hands the server back (its session's
    /// diagnostics included).
    ///
    /// # Errors
    /// The error that stopped `serve` early, if any; an `Other` error if its thread panicked.
    pub fn shutdown(self) -> io::Result<SerialServer> {
        self.shutdown.shutdown();
        let (server, result) = self
            .thread
            .join()
            .map_err(|_| io::Error::other("serial server thread panicked"))?;
        result.map(|()| server)
    }
}
