//! Blocking Modbus RTU and ASCII servers over a serial line (feature `serial`).
//!
//! A [`SerialServer`] owns the framing decoder and the [`Server`] session of one serial line; it
//! borrows the port for [`serve`](SerialServer::serve), so it runs over anything implementing
//! [`serialport::SerialPort`]: a port from [`open`], a `serialport::TTYPort` (and the pseudo
//! terminal pairs tests use), or a `Box<dyn SerialPort>`.
//!
//! The line rules are those of `modbus-reference.md` §8 and §9: the server answers only its own
//! unit id, executes broadcasts (unit 0) without answering, and drops frames with a bad CRC or
//! LRC silently, counting them for the diagnostics (CPT2 through
//! [`Server::note_frame_error`], CPT1 through [`Server::note_frame_received`]). RTU frames are
//! cut by the t1.5/t3.5 timing of [`Timing`] (from [`Timing::for_line`]) and the function-code
//! length rules; the server waits until t3.5 after the last request byte before it answers.
//! Reads use short timeouts, so a shutdown request is seen within [`POLL_INTERVAL`].

use std::boxed::Box;
use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use serialport::SerialPort;

use super::Service;
use crate::frame::ascii;
use crate::frame::rtu::{self, Parity, StopBits, Timing};
use crate::pdu::MAX_PDU_LEN;
use crate::session::{self, Reply, Server};
use crate::time::Instant;

/// The longest a read blocks while no frame is in progress: how quickly a shutdown is seen.
pub const POLL_INTERVAL: StdDuration = StdDuration::from_millis(20);
/// Bytes read from the port at a time.
const READ_BUFFER_LEN: usize = 256;

/// The framing of a serial line and its decoder.
#[derive(Debug, Clone)]
enum Line {
    Rtu {
        decoder: Box<rtu::Decoder>,
        timing: Timing,
    },
    Ascii {
        decoder: Box<ascii::Decoder>,
    },
}

/// Opens the serial port at `path` for Modbus: `baud`, 8 data bits, `parity`, `stop_bits`, no
/// flow control.
///
/// # Errors
/// The port cannot be opened or configured.
pub fn open(
    path: &str,
    baud: u32,
    parity: Parity,
    stop_bits: StopBits,
) -> io::Result<Box<dyn SerialPort>> {
    let parity = match parity {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    };
    let stop_bits = match stop_bits {
        StopBits::One => serialport::StopBits::One,
        StopBits::Two => serialport::StopBits::Two,
    };
    Ok(serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(serialport::FlowControl::None)
        .timeout(POLL_INTERVAL)
        .open()?)
}

/// A Modbus RTU or ASCII server for one serial line.
///
/// ```no_run
/// use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
/// use modbus_stack::server::serial::{self, SerialServer};
///
/// let mut port = serial::open("/dev/ttyUSB0", 19_200, Parity::Even, StopBits::One)?;
/// let timing = Timing::for_line(19_200, Parity::Even, StopBits::One);
/// let mut server = SerialServer::rtu(1, timing);
/// server.serve(&mut *port, &modbus_stack::sim::unit_map())?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SerialServer {
    line: Line,
    session: Server,
    stop: Arc<AtomicBool>,
}

impl SerialServer {
    /// An RTU server answering `unit_id` on a line with `timing`.
    #[must_use]
    pub fn rtu(unit_id: u8, timing: Timing) -> Self {
        Self::new(
            Line::Rtu {
                decoder: Box::new(rtu::Decoder::new(rtu::Config::server(timing))),
                timing,
            },
            session::Config::serial(unit_id),
        )
    }

    /// An ASCII server answering `unit_id` (1 s inter-character timeout, LF end character).
    #[must_use]
    pub fn ascii(unit_id: u8) -> Self {
        Self::new(
            Line::Ascii {
                decoder: Box::new(ascii::Decoder::new(ascii::Config::new())),
            },
            session::Config::serial(unit_id),
        )
    }

    fn new(line: Line, config: session::Config) -> Self {
        Self {
            line,
            session: Server::new(config),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same server with another unit-id filter and broadcast rule.
    #[must_use]
    pub fn with_session(mut self, config: session::Config) -> Self {
        self.session.set_config(config);
        self
    }

    /// The protocol session: diagnostics counters, event log, listen-only mode.
    #[must_use]
    pub const fn session(&self) -> &Server {
        &self.session
    }

    /// A flag that stops [`serve`](Self::serve) when set; share it with another thread.
    #[must_use]
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Reads requests from `port` and answers them from `service` until the
    /// [`shutdown_flag`](Self::shutdown_flag) is set. Changes the port's timeout.
    ///
    /// # Errors
    /// Reading from, writing to or configuring the port fails (a read timeout is not an error).
    pub fn serve<P, S>(&mut self, port: &mut P, service: &S) -> io::Result<()>
    where
        P: SerialPort + ?Sized,
        S: Service + ?Sized,
    {
        let mut buf = [0u8; READ_BUFFER_LEN];
        let mut timeout = POLL_INTERVAL;
        port.set_timeout(timeout)?;
        while !self.stop.load(Ordering::SeqCst) {
            // Wake up when the decoder's timer (t3.5 or the ASCII character timeout) is due, so
            // a frame that ends by silence is answered promptly; otherwise at the poll interval.
            let wanted = self.poll_timeout().map_or(POLL_INTERVAL, |deadline| {
                let wait = deadline.saturating_duration_since(Instant::now());
                wait.clamp(StdDuration::from_millis(1), POLL_INTERVAL)
            });
            if wanted != timeout {
                timeout = wanted;
                port.set_timeout(timeout)?;
            }
            match port.read(&mut buf) {
                Ok(n) => {
                    let now = Instant::now();
                    self.receive(now, buf.get(..n).unwrap_or_default(), port, service)?;
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(error),
            }
            self.handle_timeout(Instant::now());
            self.answer_pending(port, service)?;
        }
        Ok(())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.line {
            Line::Rtu { decoder, .. } => decoder.poll_timeout(),
            Line::Ascii { decoder } => decoder.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match &mut self.line {
            Line::Rtu { decoder, .. } => decoder.handle_timeout(now),
            Line::Ascii { decoder } => decoder.handle_timeout(now),
        }
    }

    /// Feeds bytes read at `now` to the decoder, answering frames as they complete.
    fn receive<P, S>(
        &mut self,
        now: Instant,
        mut bytes: &[u8],
        port: &mut P,
        service: &S,
    ) -> io::Result<()>
    where
        P: SerialPort + ?Sized,
        S: Service + ?Sized,
    {
        // Each round takes at least one byte or answers a waiting frame; a round with neither
        // ends the loop (dropping the rest) rather than spinning.
        while !bytes.is_empty() {
            let taken = match &mut self.line {
                Line::Rtu { decoder, .. } => decoder.push(now, bytes),
                Line::Ascii { decoder } => decoder.push(now, bytes),
            };
            bytes = bytes.get(taken..).unwrap_or_default();
            let answered = self.answer_pending(port, service)?;
            if taken == 0 && !answered {
                break;
            }
        }
        Ok(())
    }

    /// Answers every frame the decoder holds; returns `true` if there was any frame or error.
    fn answer_pending<P, S>(&mut self, port: &mut P, service: &S) -> io::Result<bool>
    where
        P: SerialPort + ?Sized,
        S: Service + ?Sized,
    {
        let mut pdu_out = [0u8; MAX_PDU_LEN];
        let mut frame_out = [0u8; ascii::MAX_FRAME_CHARS];
        let mut any = false;
        loop {
            // Decode, respond and encode while the frame borrows the decoder; send after.
            let (len, wait_until) = match &mut self.line {
                Line::Rtu { decoder, timing } => match decoder.poll_frame() {
                    None => return Ok(any),
                    Some(Err(_)) => {
                        // Bad CRC, gap or length: dropped silently, counted (CPT2).
                        self.session.note_frame_error();
                        (None, None)
                    }
                    Some(Ok(adu)) => {
                        self.session.note_frame_received();
                        let unit_id = adu.unit_id();
                        let reply =
                            service.respond(&mut self.session, unit_id, adu.pdu(), &mut pdu_out);
                        let len = sendable(reply, &pdu_out)
                            .and_then(|pdu| rtu::encode(unit_id, pdu, &mut frame_out).ok());
                        // "Emission ... after t3.5 of silence" (§8.6): the request's last byte
                        // arrived no later than now.
                        (len, Some(Instant::now() + timing.t3_5()))
                    }
                },
                Line::Ascii { decoder } => match decoder.poll_frame() {
                    None => return Ok(any),
                    Some(Err(_)) => {
                        self.session.note_frame_error();
                        (None, None)
                    }
                    Some(Ok(adu)) => {
                        self.session.note_frame_received();
                        let unit_id = adu.unit_id();
                        let reply =
                            service.respond(&mut self.session, unit_id, adu.pdu(), &mut pdu_out);
                        let len = sendable(reply, &pdu_out)
                            .and_then(|pdu| ascii::encode(unit_id, pdu, &mut frame_out).ok());
                        (len, None)
                    }
                },
            };
            any = true;
            if let Line::Ascii { decoder } = &mut self.line {
                // Diagnostics 08/03 may have changed the end character.
                decoder.set_end_char(self.session.ascii_delimiter());
            }
            if let Some(len) = len {
                if let Some(deadline) = wait_until {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    std::thread::sleep(wait);
                }
                port.write_all(frame_out.get(..len).unwrap_or_default())?;
                port.flush()?;
            }
        }
    }
}

/// The response PDU to send for `reply`, if any.
fn sendable(reply: Reply, pdu_out: &[u8]) -> Option<&[u8]> {
    match reply {
        Reply::Send(len) => pdu_out.get(..len),
        Reply::Silent(_) => None,
    }
}
