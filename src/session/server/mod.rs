//! The sans-IO server core: request bytes in, response frames out.
//!
//! A user implements [`Handler`] for the data model (coils, registers, files, device
//! identification); every method has a default that answers exception 01, so a handler
//! implements only the functions it serves. A [`ServerSession`] does everything else between the
//! bytes a link delivers and the bytes it must send back: framing for any [`Framing`] (one
//! [`frame::Decoder`]), the MBAP echo of transaction and unit id, the
//! serial-line diagnostics counters, the RTU turnaround (an answer waits t3.5 after the
//! request), ASCII delimiter changes (08/03), and the protocol itself through its
//! [`PduServer`]. A driver (a blocking socket loop, a tokio task, a UART interrupt) only moves
//! bytes and reads its clock.
//!
//! Nothing here allocates.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::time::Duration;

use crate::frame::{self, Framing, Role, ascii, rtu, tcp};
use crate::pdu::MAX_PDU_LEN;
use crate::time::Instant;

mod handler;
mod pdu_server;
mod units;

pub use handler::{Handler, Unit};
pub use pdu_server::{
    DEFAULT_ASCII_DELIMITER, EVENT_COMMUNICATION_RESTART, EVENT_ENTERED_LISTEN_ONLY,
    MAX_DEVICE_ID_OBJECT_LEN, PduServer, RECEIVE_BROADCAST, RECEIVE_CHARACTER_OVERRUN,
    RECEIVE_COMMUNICATION_ERROR, RECEIVE_EVENT, RECEIVE_LISTEN_ONLY, Reply, SEND_ABORT_EXCEPTION,
    SEND_BUSY_EXCEPTION, SEND_EVENT, SEND_LISTEN_ONLY, SEND_NAK_EXCEPTION, SEND_READ_EXCEPTION,
    SilentReason,
};
pub use units::UnitIds;

/// Longest frame a session sends: an ASCII frame of a 253-byte PDU.
const MAX_REPLY_LEN: usize = ascii::MAX_FRAME_CHARS;

/// Configuration of a [`ServerSession`]: the framing and how unit ids are treated.
///
/// ```
/// use modbus_stack::frame::Framing;
/// use modbus_stack::session::server::ServerConfig;
///
/// let config = ServerConfig::rtu_over_tcp(7);
/// assert_eq!(config.framing, Framing::RtuOverTcp);
/// assert!(config.units.contains(7) && !config.units.contains(8) && config.broadcast);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// The framing on the link.
    pub framing: Framing,
    /// Unit ids answered; requests for others are ignored silently (§8.8).
    pub units: UnitIds,
    /// Treat unit id 0 as a broadcast: execute writes, never reply (§8.9). Serial lines do; a
    /// server directly on TCP does not (unit 0 is then an ordinary id, if `units` has it).
    pub broadcast: bool,
    /// [`Framing::Rtu`] on a line: its timing, by which frames end (t3.5 of silence) and
    /// answers wait (t3.5 after the request, §8.6). Without it RTU frames are cut by the length
    /// rules and the CRC alone and answers go at once.
    pub rtu_timing: Option<rtu::Timing>,
    /// [`Framing::RtuOverTcp`]: a pause this long ends a frame attempt, so the bytes after it
    /// start a new frame ([`rtu::Config::with_frame_gap`]).
    pub frame_gap: Option<Duration>,
    /// [`Framing::Tcp`]: part of an ADU not complete this long after its first byte is
    /// dropped and the stream declared broken ([`tcp::Decoder::with_frame_timeout`]), which a
    /// driver with cheap timers uses against slowloris senders.
    pub frame_timeout: Option<Duration>,
}

impl ServerConfig {
    /// The frame gap [`rtu_over_tcp`](Self::rtu_over_tcp) sets: far beyond the gaps inside a
    /// frame one client write produces, far below the response timeout a client waits before
    /// its next request.
    pub const DEFAULT_FRAME_GAP: Duration = Duration::from_millis(50);

    /// Modbus TCP, answering every unit id with no broadcast semantics (§10.2).
    #[must_use]
    pub const fn tcp() -> Self {
        Self {
            framing: Framing::Tcp,
            units: UnitIds::all(),
            broadcast: false,
            rtu_timing: None,
            frame_gap: None,
            frame_timeout: None,
        }
    }

    /// RTU over TCP with serial semantics: answers only `unit_id`, executes broadcasts without
    /// answering them, and a 50 ms frame gap.
    #[must_use]
    pub fn rtu_over_tcp(unit_id: u8) -> Self {
        Self {
            framing: Framing::RtuOverTcp,
            frame_gap: Some(Self::DEFAULT_FRAME_GAP),
            ..Self::serial(unit_id)
        }
    }

    /// RTU on a serial line with `timing`, answering `unit_id` and executing broadcasts.
    #[must_use]
    pub fn rtu(unit_id: u8, timing: rtu::Timing) -> Self {
        Self {
            framing: Framing::Rtu,
            rtu_timing: Some(timing),
            ..Self::serial(unit_id)
        }
    }

    /// ASCII on a serial line (1 s character timeout, LF end character), answering `unit_id`
    /// and executing broadcasts.
    #[must_use]
    pub fn ascii(unit_id: u8) -> Self {
        Self {
            framing: Framing::Ascii,
            ..Self::serial(unit_id)
        }
    }

    fn serial(unit_id: u8) -> Self {
        Self {
            units: UnitIds::single(unit_id),
            broadcast: true,
            ..Self::tcp()
        }
    }

    /// The request decoder for this configuration.
    fn decoder(&self) -> frame::Decoder {
        match self.framing {
            Framing::Tcp => {
                let decoder = tcp::Decoder::new();
                match self.frame_timeout {
                    Some(timeout) => decoder.with_frame_timeout(timeout).into(),
                    None => decoder.into(),
                }
            }
            Framing::RtuOverTcp | Framing::Rtu => {
                let config = match (self.framing, self.rtu_timing) {
                    (Framing::Rtu, Some(timing)) => rtu::Config::server(timing),
                    _ => rtu::Config::untimed(rtu::Mode::Requests),
                };
                let config = match (self.framing, self.frame_gap) {
                    (Framing::RtuOverTcp, Some(gap)) => config.with_frame_gap(gap),
                    _ => config,
                };
                rtu::Decoder::new(config).into()
            }
            Framing::Ascii => frame::Decoder::new(Framing::Ascii, Role::Request),
        }
    }
}

/// A Modbus server's protocol state for one link (a TCP connection, a serial line): framing,
/// the [`PduServer`] and its diagnostics, and the answer waiting to be sent.
///
/// # Method groups and call order
///
/// * **Input**: pass received bytes to [`handle_input`](Self::handle_input) with the time they
///   arrived and the [`Handler`]; it returns how many it took. It stops after a request whose
///   answer is waiting: send that answer, then call it again with the rest, even when nothing
///   is left (further whole requests may already be held), until a call neither takes bytes
///   nor yields an answer.
/// * **Output**: after every call, [`poll_transmit`](Self::poll_transmit) until `None`, and
///   send each frame it writes. On RTU an answer is released only t3.5 after its request.
/// * **Time**: wake at [`poll_timeout`](Self::poll_timeout) (a frame ended by silence, an
///   answer's turnaround, a frame timeout) and call [`handle_timeout`](Self::handle_timeout).
/// * **Connection**: [`needs_close`](Self::needs_close) says when a Modbus TCP stream can no
///   longer be framed; [`reset`](Self::reset) starts afresh for a new connection.
///
/// A microcontroller's loop, fed from a UART:
///
/// ```
/// use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
/// use modbus_stack::pdu::ExceptionCode;
/// use modbus_stack::session::server::{Handler, ServerConfig, ServerSession, Unit};
/// use modbus_stack::time::Instant;
///
/// struct Sensor([u16; 4]);
/// impl Handler for Sensor {
///     fn read_input_registers(&mut self, _: Unit, address: u16, out: &mut [u16]) -> Result<(), ExceptionCode> {
///         let start = usize::from(address);
///         out.copy_from_slice(self.0.get(start..start + out.len()).ok_or(ExceptionCode::IllegalDataAddress)?);
///         Ok(())
///     }
/// }
///
/// let timing = Timing::for_line(19_200, Parity::Even, StopBits::One);
/// let mut session = ServerSession::new(ServerConfig::rtu(1, timing));
/// let mut sensor = Sensor([215, 0, 0, 0]);
/// // FC 04, input register 0, from unit 1, received at t = 10 ms.
/// let request = [0x01, 0x04, 0x00, 0x00, 0x00, 0x01, 0x31, 0xCA];
/// let now = Instant::from_millis(10);
/// assert_eq!(session.handle_input(now, &request, &mut sensor), request.len());
/// let mut out = [0u8; 256];
/// // The answer waits t3.5 after the request (§8.6).
/// assert!(session.poll_transmit(&mut out).is_none());
/// let due = session.poll_timeout().unwrap();
/// assert_eq!(due, now + timing.t3_5());
/// session.handle_timeout(due, &mut sensor);
/// let len = session.poll_transmit(&mut out).unwrap();
/// assert_eq!(&out[..len], &[0x01, 0x04, 0x02, 0x00, 0xD7, 0xF9, 0x6E]);
/// ```
#[derive(Debug, Clone)]
pub struct ServerSession {
    framing: Framing,
    server: PduServer,
    decoder: frame::Decoder,
    /// How long an answer waits after its request: t3.5 on a timed RTU line, else nothing.
    turnaround: Duration,
    /// The answer waiting to be sent, as a whole frame.
    reply: [u8; MAX_REPLY_LEN],
    reply_len: usize,
    /// When the waiting answer may go; `None` when none waits.
    reply_at: Option<Instant>,
    /// The latest time a call was given.
    now: Instant,
    /// Complete request frames received, for any unit.
    requests: u64,
}

impl ServerSession {
    /// A session in its power-up state.
    #[must_use]
    pub fn new(config: ServerConfig) -> Self {
        let turnaround = match (config.framing, config.rtu_timing) {
            (Framing::Rtu, Some(timing)) => timing.t3_5(),
            _ => Duration::ZERO,
        };
        Self {
            framing: config.framing,
            server: PduServer::new(config.units, config.broadcast),
            decoder: config.decoder(),
            turnaround,
            reply: [0; MAX_REPLY_LEN],
            reply_len: 0,
            reply_at: None,
            now: Instant::ZERO,
            requests: 0,
        }
    }

    /// The framing.
    #[must_use]
    pub const fn framing(&self) -> Framing {
        self.framing
    }

    /// The PDU server: diagnostics counters, event log, listen-only mode.
    #[must_use]
    pub const fn pdu_server(&self) -> &PduServer {
        &self.server
    }

    /// The PDU server, mutably (to set the diagnostic register or the program-busy flag).
    pub fn pdu_server_mut(&mut self) -> &mut PduServer {
        &mut self.server
    }

    /// Complete request frames received since creation, for any unit id (a driver's
    /// watchdog notes a connection's last complete request by it).
    #[must_use]
    pub const fn requests_received(&self) -> u64 {
        self.requests
    }

    /// `true` while part of a request frame is held.
    #[must_use]
    pub fn is_mid_frame(&self) -> bool {
        !self.decoder.is_empty()
    }

    /// `true` once a Modbus TCP stream can no longer be framed (a length field outside
    /// 2..=254, a frame timeout): close the connection (§10.4).
    #[must_use]
    pub const fn needs_close(&self) -> bool {
        self.decoder.is_broken()
    }

    /// Drops everything held (part of a frame, an answer not sent), for a new connection or a
    /// reopened port; the diagnostics state stays.
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.reply_at = None;
        self.reply_len = 0;
    }

    /// Takes bytes received at `now` and answers the requests in them from `handler`. Returns
    /// how many bytes it took: all of them, unless a request's answer is waiting, in which case
    /// it stops after that request (send the answer with
    /// [`poll_transmit`](Self::poll_transmit), then pass the rest). Takes nothing while an
    /// answer waits.
    #[must_use = "the bytes not taken must be passed again after the answer is sent"]
    pub fn handle_input<H: Handler + ?Sized>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        handler: &mut H,
    ) -> usize {
        self.now = now;
        if self.reply_at.is_some() {
            return 0;
        }
        let Self {
            framing,
            server,
            decoder,
            turnaround,
            reply,
            reply_len,
            reply_at,
            requests,
            ..
        } = self;
        let mut frames = decoder.frames(now, bytes);
        while let Some(result) = frames.next() {
            let answered = if let Ok(frame) = result {
                *requests = requests.wrapping_add(1);
                answer(*framing, server, handler, &frame, reply)
            } else {
                // A frame the decoder rejected (bad CRC or LRC, a pause inside it): silent,
                // counted on the framings that keep serial-line counters (CPT2).
                if *framing != Framing::Tcp {
                    server.note_frame_error();
                }
                None
            };
            if let Some(len) = answered {
                *reply_len = len;
                *reply_at = Some(now + *turnaround);
                break;
            }
        }
        let taken = bytes.len().saturating_sub(frames.rest().len());
        self.sync_ascii_delimiter();
        taken
    }

    /// Acts on the timers due at `now`: ends a frame by silence (and answers it), releases an
    /// answer whose turnaround has passed, drops a TCP frame past its timeout.
    pub fn handle_timeout<H: Handler + ?Sized>(&mut self, now: Instant, handler: &mut H) {
        self.now = now;
        self.decoder.handle_timeout(now);
        if self.reply_at.is_none() {
            // A frame the silence completed is answered now: the silence was its t3.5.
            let turnaround = core::mem::replace(&mut self.turnaround, Duration::ZERO);
            // Nothing is passed, so nothing can be left over.
            let _ = self.handle_input(now, &[], handler);
            self.turnaround = turnaround;
        }
    }

    /// Writes the answer that is due into `out` (give it [`Framing::max_adu_len`] bytes) and
    /// returns its length; `None` when none is due. An answer that does not fit `out` is
    /// dropped.
    #[must_use = "the frame written must be sent"]
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.reply_at? > self.now {
            return None;
        }
        self.reply_at = None;
        let reply = self.reply.get(..self.reply_len)?;
        let slot = out.get_mut(..reply.len())?;
        slot.copy_from_slice(reply);
        Some(reply.len())
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reply = self.reply_at.filter(|&at| at > self.now);
        match (reply, self.decoder.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Diagnostics 08/03 may have changed the ASCII end character; the decoder follows.
    fn sync_ascii_delimiter(&mut self) {
        if self.framing == Framing::Ascii {
            self.decoder
                .set_ascii_end_char(self.server.ascii_delimiter());
        }
    }
}

/// Answers one request frame into `reply` as a whole frame of `framing`; returns its length, or
/// `None` when nothing is to be sent.
fn answer<H: Handler + ?Sized>(
    framing: Framing,
    server: &mut PduServer,
    handler: &mut H,
    frame: &frame::Frame<'_>,
    reply: &mut [u8; MAX_REPLY_LEN],
) -> Option<usize> {
    if framing != Framing::Tcp {
        // CPT1 counts every frame with a valid check value, whatever its unit id.
        server.note_frame_received();
    }
    let unit_id = frame.unit_id;
    match framing {
        Framing::Tcp => {
            // The PDU is built in place behind the MBAP header: no copy per answer.
            let pdu_out = reply.get_mut(tcp::HEADER_LEN..)?;
            let Reply::Send(len) = server.respond(unit_id, frame.pdu, handler, pdu_out) else {
                return None;
            };
            tcp::encode_header(frame.transaction_id?, unit_id, len, reply).ok()
        }
        Framing::RtuOverTcp | Framing::Rtu => {
            let pdu_out = reply.get_mut(1..=MAX_PDU_LEN)?;
            let Reply::Send(len) = server.respond(unit_id, frame.pdu, handler, pdu_out) else {
                return None;
            };
            rtu::encode_in_place(unit_id, len, reply).ok()
        }
        Framing::Ascii => {
            let mut pdu = [0u8; MAX_PDU_LEN];
            let Reply::Send(len) = server.respond(unit_id, frame.pdu, handler, &mut pdu) else {
                return None;
            };
            ascii::encode(unit_id, pdu.get(..len)?, reply).ok()
        }
    }
}
