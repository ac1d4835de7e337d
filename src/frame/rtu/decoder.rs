//! The streaming RTU decoder: bytes with timestamps in, frames out, in a fixed 256-byte buffer.
//!
//! With [`Timing`] it runs the receiver state machine of `modbus-reference.md` §8.6: silence of
//! t3.5 or more ends a frame, a gap of more than t1.5 inside a frame marks it invalid (it is
//! reported once the frame ends), and a frame whose function code tells its length completes as
//! soon as that many bytes with a valid CRC are in. Without timing (RTU over TCP) the length
//! oracle and the CRC alone cut the stream, and an invalid frame is left behind one byte at a time.
//!
//! # Call order
//!
//! 1. [`Decoder::push`] the bytes read, with the time they were read; it returns how many it
//!    took. It stops taking bytes while a frame or error is waiting.
//! 2. [`Decoder::poll_frame`] until it returns `None`; then push the bytes not taken yet.
//! 3. When no bytes arrive, sleep until [`Decoder::poll_timeout`] and call
//!    [`Decoder::handle_timeout`], which ends a frame by silence; then poll again.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use super::{Adu, FrameLength, LengthRules, MAX_ADU_LEN, MIN_ADU_LEN, Timing, frame_len, parse};
use crate::error::FrameError;
use crate::frame::{Counters, Role, Status};
use crate::time::Instant;
use core::time::Duration;

/// Which frames a [`Decoder`] expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Requests: the decoder of a server.
    Requests,
    /// Responses: the decoder of a client.
    Responses,
    /// Both, as on an RS-485 line watched by a passive bus monitor. After a request the decoder
    /// expects a response and after a response a request; the length oracle is asked for both
    /// directions and the CRC decides which one the bytes are.
    Monitor,
}

/// Configuration of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    mode: Mode,
    timing: Option<Timing>,
    /// Untimed streams: a pause this long between bytes ends the frame attempt in progress.
    frame_gap: Option<Duration>,
    rules: LengthRules,
}

impl Config {
    /// A server on a serial line: decodes requests, frames by `timing` and the oracle.
    #[must_use]
    pub const fn server(timing: Timing) -> Self {
        Self::timed(Mode::Requests, timing)
    }

    /// A client on a serial line: decodes responses.
    #[must_use]
    pub const fn client(timing: Timing) -> Self {
        Self::timed(Mode::Responses, timing)
    }

    /// A passive bus monitor: decodes requests and responses as they alternate on the line.
    #[must_use]
    pub const fn monitor(timing: Timing) -> Self {
        Self::timed(Mode::Monitor, timing)
    }

    /// A serial line in `mode` with `timing`.
    #[must_use]
    pub const fn timed(mode: Mode, timing: Timing) -> Self {
        Self {
            mode,
            timing: Some(timing),
            frame_gap: None,
            rules: LengthRules::new(),
        }
    }

    /// A stream without timing (RTU over TCP): oracle, CRC and one-byte resynchronisation.
    /// Function codes without a length rule cannot be framed here and are skipped as garbage.
    #[must_use]
    pub const fn untimed(mode: Mode) -> Self {
        Self {
            mode,
            timing: None,
            frame_gap: None,
            rules: LengthRules::new(),
        }
    }

    /// An untimed stream (RTU over TCP) on which a pause of at least `gap` between two bytes
    /// ends the frame attempt in progress: the bytes held are dropped (reported as
    /// [`FrameError::Incomplete`]) and the next byte starts a new frame. Without it, garbage
    /// whose first bytes announce a long frame holds every byte after it until that length is
    /// reached, and requests sent meanwhile are lost. No effect with line timing, where t3.5
    /// does this.
    #[must_use]
    pub const fn with_frame_gap(mut self, gap: Duration) -> Self {
        self.frame_gap = Some(gap);
        self
    }

    /// The pause that ends a frame attempt on an untimed stream, if set.
    #[must_use]
    pub const fn frame_gap(&self) -> Option<Duration> {
        self.frame_gap
    }

    /// The same configuration with custom length rules.
    #[must_use]
    pub const fn with_rules(mut self, rules: LengthRules) -> Self {
        self.rules = rules;
        self
    }

    /// Which frames the decoder expects.
    #[must_use]
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The line timing, `None` for an untimed stream.
    #[must_use]
    pub const fn timing(&self) -> Option<Timing> {
        self.timing
    }
}

/// A frame with the direction it was decoded as, from [`Decoder::poll_frame_with_role`].
pub type RoleFrame<'a> = (Role, Adu<&'a [u8]>);

/// What waits for [`Decoder::poll_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// A frame of this length at the front of the buffer, in this direction.
    Frame {
        len: usize,
        role: Role,
    },
    Error(FrameError),
}

/// Streaming RTU decoder with a fixed 256-byte buffer; see the module documentation for the call
/// order.
///
/// ```
/// use modbus_stack::frame::rtu::{Config, Decoder, Parity, StopBits, Timing};
/// use modbus_stack::time::Instant;
/// let timing = Timing::for_line(19_200, Parity::Even, StopBits::One);
/// let mut decoder = Decoder::new(Config::server(timing));
/// let bytes = [0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17];
/// assert_eq!(decoder.push(Instant::from_millis(5), &bytes), 8);
/// // The oracle knows FC 03 requests are 8 bytes: no need to wait for t3.5.
/// let adu = decoder.poll_frame().unwrap().unwrap();
/// assert_eq!((adu.unit_id(), adu.pdu()), (1, &[0x03, 0x00, 0x6B, 0x00, 0x03][..]));
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    config: Config,
    buf: [u8; MAX_ADU_LEN],
    /// Bytes stored in `buf`.
    len: usize,
    /// Bytes of the frame in progress, including those not stored because it is invalid
    /// (timed mode only).
    frame_bytes: usize,
    /// Why the frame in progress is already known to be invalid (timed mode).
    broken: Option<FrameError>,
    last_byte: Option<Instant>,
    pending: Pending,
    /// Bytes of a delivered frame to drop from the front at the next call.
    consume: usize,
    /// Untimed mode: an error was reported and bytes are dropped silently until a frame is found.
    resyncing: bool,
    /// Direction expected next (fixed unless the mode is `Monitor`).
    expect: Role,
    counters: Counters,
}

impl Decoder {
    /// A decoder in the idle state: it assumes the line was silent before it was created.
    #[must_use]
    pub const fn new(config: Config) -> Self {
        Self {
            config,
            buf: [0; MAX_ADU_LEN],
            len: 0,
            frame_bytes: 0,
            broken: None,
            last_byte: None,
            pending: Pending::None,
            consume: 0,
            resyncing: false,
            expect: match config.mode {
                Mode::Responses => Role::Response,
                Mode::Requests | Mode::Monitor => Role::Request,
            },
            counters: Counters {
                frames_ok: 0,
                crc_errors: 0,
                other_errors: 0,
            },
        }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Frames delivered and errors seen since creation.
    #[must_use]
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// `true` when no byte of an undelivered frame (nor a frame or error waiting to be
    /// polled) is held.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len <= self.consume && self.frame_bytes == 0 && matches!(self.pending, Pending::None)
    }

    /// The direction the next frame is expected in (alternates in [`Mode::Monitor`]).
    #[must_use]
    pub const fn expected_role(&self) -> Role {
        self.expect
    }

    /// Drops all buffered bytes and any waiting frame or error, keeping the counters; for a
    /// transport that knows the stream was interrupted (a reconnect, a long idle on RTU over TCP).
    pub fn reset(&mut self) {
        self.len = 0;
        self.frame_bytes = 0;
        self.broken = None;
        self.pending = Pending::None;
        self.consume = 0;
        self.resyncing = false;
    }

    /// Takes bytes that arrived at `now`; returns how many were taken. Takes none while a frame or
    /// error waits for [`poll_frame`](Self::poll_frame), and stops right after a frame completes.
    pub fn push(&mut self, now: Instant, bytes: &[u8]) -> usize {
        self.settle();
        if self.pending != Pending::None || bytes.is_empty() {
            return 0;
        }
        match self.config.timing {
            Some(timing) => self.push_timed(now, timing, bytes),
            None => self.push_untimed(now, bytes),
        }
    }

    /// `true` when [`poll_frame`](Self::poll_frame) has a frame or an error to return.
    pub fn is_ready(&mut self) -> bool {
        self.settle();
        if self.config.timing.is_none() && self.pending == Pending::None {
            self.scan_untimed();
        }
        self.pending != Pending::None
    }

    /// The next frame or framing error, if one is ready. The frame borrows the decoder's buffer
    /// and is dropped from it at the next call.
    #[must_use = "a frame not taken now is dropped at the next call"]
    pub fn poll_frame(&mut self) -> Option<Result<Adu<&[u8]>, FrameError>> {
        self.poll_frame_with_role()
            .map(|result| result.map(|(_, adu)| adu))
    }

    /// Like [`poll_frame`](Self::poll_frame), with the direction the frame was decoded as (useful
    /// in [`Mode::Monitor`]).
    #[must_use = "a frame not taken now is dropped at the next call"]
    pub fn poll_frame_with_role(&mut self) -> Option<Result<RoleFrame<'_>, FrameError>> {
        self.settle();
        if self.config.timing.is_none() && self.pending == Pending::None {
            self.scan_untimed();
        }
        match core::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => None,
            Pending::Error(error) => Some(Err(error)),
            Pending::Frame { len, role } => {
                self.consume = len;
                let frame = self.buf.get(..len).unwrap_or_default();
                Some(Ok((role, Adu::new_unchecked(frame))))
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called: t3.5 (or, untimed, the
    /// [frame gap](Config::with_frame_gap)) after the last byte of a frame in progress. `None`
    /// without either, when idle, or while a frame waits.
    #[must_use]
    #[allow(clippy::arithmetic_side_effects)] // `Instant + Duration` saturates, never overflows.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.pending != Pending::None {
            return None;
        }
        let Some(timing) = self.config.timing else {
            let gap = self.config.frame_gap?;
            if self.len == 0 {
                return None;
            }
            return Some(self.last_byte? + gap);
        };
        if self.frame_bytes == 0 {
            return None;
        }
        Some(self.last_byte? + timing.t3_5())
    }

    /// Ends the frame in progress if the line has been silent for t3.5 (untimed: the frame
    /// gap) at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle();
        let Some(last) = self.last_byte else {
            return;
        };
        let Some(timing) = self.config.timing else {
            if let Some(gap) = self.config.frame_gap {
                if self.pending == Pending::None
                    && self.len > 0
                    && now.saturating_duration_since(last) >= gap
                {
                    self.drop_stale_untimed();
                }
            }
            return;
        };
        if self.pending == Pending::None
            && self.frame_bytes > 0
            && now.saturating_duration_since(last) >= timing.t3_5()
        {
            self.end_frame();
        }
    }

    /// Drops the bytes of the frame delivered by the last `poll_frame`.
    fn settle(&mut self) {
        if self.consume > 0 {
            let consume = self.consume.min(self.len);
            self.buf.copy_within(consume..self.len, 0);
            self.len = self.len.saturating_sub(consume);
            self.consume = 0;
        }
    }

    fn push_untimed(&mut self, now: Instant, bytes: &[u8]) -> usize {
        if let (Some(gap), Some(last)) = (self.config.frame_gap, self.last_byte) {
            if self.len > 0 && now.saturating_duration_since(last) >= gap {
                self.drop_stale_untimed();
                if self.pending != Pending::None {
                    return 0;
                }
            }
        }
        let free = MAX_ADU_LEN.saturating_sub(self.len);
        let take = free.min(bytes.len());
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len.saturating_add(take)),
            bytes.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len = self.len.saturating_add(take);
            self.last_byte = Some(now);
        }
        take
    }

    /// Untimed with a frame gap: the pause is over, so the bytes held will never complete a
    /// frame. They are dropped and reported once (unless a run of garbage was reported already).
    fn drop_stale_untimed(&mut self) {
        let error = FrameError::Incomplete { len: self.len };
        self.len = 0;
        if self.resyncing {
            self.resyncing = false;
        } else {
            self.counters.count_error(error);
            self.pending = Pending::Error(error);
        }
    }

    /// Untimed: cut the next frame from the buffer, dropping invalid bytes one at a time.
    fn scan_untimed(&mut self) {
        // Each round drops at least one byte or returns, so MAX_ADU_LEN + 1 rounds always suffice.
        for _ in 0..=MAX_ADU_LEN {
            let buf = self.buf.get(..self.len).unwrap_or_default();
            let status = match parse_either(buf, self.config.mode, self.expect, &self.config.rules)
            {
                // A full buffer that still holds no frame never will: no RTU ADU is longer than
                // MAX_ADU_LEN. Without this the decoder would accept no more bytes and stall
                // (a custom function code without a length rule, or a garbage byte count).
                Status::Incomplete(_) if self.len >= MAX_ADU_LEN => Status::Invalid {
                    error: FrameError::FrameTooLong { len: self.len },
                    discard: 1,
                },
                status => status,
            };
            match status {
                Status::Complete { consumed, .. } => {
                    let role = self.role_of(consumed);
                    self.deliver(consumed, role);
                    self.resyncing = false;
                    return;
                }
                Status::Incomplete(_) => return,
                Status::Invalid { error, discard } => {
                    self.consume = discard.max(1);
                    self.settle();
                    if !self.resyncing {
                        // Report the first error of a run of garbage only: the bytes dropped
                        // after it while looking for the next frame are the same fault.
                        self.resyncing = true;
                        self.counters.count_error(error);
                        self.pending = Pending::Error(error);
                        return;
                    }
                }
            }
        }
    }

    fn push_timed(&mut self, now: Instant, timing: Timing, bytes: &[u8]) -> usize {
        if self.frame_bytes > 0 {
            if let Some(last) = self.last_byte {
                let gap = now.saturating_duration_since(last);
                if gap >= timing.t3_5() {
                    // "≥ t3.5 of silence after a character ends the frame" (§8.5).
                    self.end_frame();
                    if self.pending != Pending::None {
                        return 0;
                    }
                } else if gap > timing.t1_5() && self.broken.is_none() {
                    // "a gap > 1.5 character times makes the frame incomplete → discard it",
                    // reported when the frame ends so its remaining bytes are not a new frame.
                    self.broken = Some(FrameError::InterCharacterGap {
                        gap_micros: crate::time::micros(gap),
                        limit_micros: crate::time::micros(timing.t1_5()),
                    });
                }
            }
        }
        self.last_byte = Some(now);
        let mut accepted = 0usize;
        // Each round takes at least one byte or returns, so `bytes.len()` rounds suffice.
        for _ in 0..bytes.len() {
            let rest = bytes.get(accepted..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            if self.broken.is_some() || self.len >= MAX_ADU_LEN {
                if self.broken.is_none() {
                    self.broken = Some(FrameError::FrameTooLong {
                        len: MAX_ADU_LEN.saturating_add(1),
                    });
                }
                // The bytes of a broken frame are counted, not kept: it ends with the silence.
                self.frame_bytes = self.frame_bytes.saturating_add(rest.len());
                if let Some(FrameError::FrameTooLong { len }) = &mut self.broken {
                    *len = self.frame_bytes;
                }
                return accepted.saturating_add(rest.len());
            }
            let take = self.next_stop().min(rest.len());
            let end = self.len.saturating_add(take);
            if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..end), rest.get(..take)) {
                dst.copy_from_slice(src);
            }
            self.len = end;
            self.frame_bytes = self.frame_bytes.saturating_add(take);
            accepted = accepted.saturating_add(take);
            if self.try_complete_early() {
                break;
            }
        }
        accepted
    }

    /// Bytes to store before the oracle can say more (at least 1, at most the free space).
    fn next_stop(&self) -> usize {
        let free = MAX_ADU_LEN.saturating_sub(self.len);
        let buf = self.buf.get(..self.len).unwrap_or_default();
        self.candidate_roles()
            .into_iter()
            .flatten()
            .filter_map(|role| match frame_len(buf, role, &self.config.rules) {
                FrameLength::Exact(n) | FrameLength::AtLeast(n) if n > self.len => {
                    Some(n.saturating_sub(self.len))
                }
                _ => None,
            })
            .min()
            .unwrap_or(free)
            .clamp(1, free.max(1))
    }

    /// The directions to try, expected one first.
    fn candidate_roles(&self) -> [Option<Role>; 2] {
        match self.config.mode {
            Mode::Monitor => [Some(self.expect), Some(self.expect.opposite())],
            Mode::Requests | Mode::Responses => [Some(self.expect), None],
        }
    }

    /// Completes the frame in progress if the oracle says it is whole and its CRC matches.
    fn try_complete_early(&mut self) -> bool {
        if self.broken.is_some() || self.len < MIN_ADU_LEN {
            return false;
        }
        let buf = self.buf.get(..self.len).unwrap_or_default();
        let roles = self.candidate_roles();
        // A bus monitor tries both directions. While one of them still wants more bytes, a
        // match of the other is not conclusive: a valid frame ending in 0x00 has a valid CRC
        // one byte shorter too, and that length may be the other direction's. The silence
        // after the frame (t3.5) decides instead.
        let len = self.len;
        let ambiguous = roles.into_iter().flatten().any(|role| {
            matches!(
                frame_len(buf, role, &self.config.rules),
                FrameLength::Exact(n) | FrameLength::AtLeast(n) if n > len
            )
        });
        if ambiguous {
            return false;
        }
        for role in roles.into_iter().flatten() {
            if frame_len(buf, role, &self.config.rules) == FrameLength::Exact(len)
                && Adu::new_unchecked(buf).verify_crc().is_ok()
            {
                self.frame_bytes = 0;
                self.deliver(len, role);
                return true;
            }
        }
        false
    }

    /// Silence ended the frame in progress: check it whole.
    fn end_frame(&mut self) {
        let result = match self.broken.take() {
            Some(error) => Err(error),
            None if self.len < MIN_ADU_LEN => Err(FrameError::FrameTooShort { len: self.len }),
            None => {
                let buf = self.buf.get(..self.len).unwrap_or_default();
                Adu::new_unchecked(buf).verify_crc()
            }
        };
        self.frame_bytes = 0;
        match result {
            Ok(()) => {
                let role = self.role_of(self.len);
                self.deliver(self.len, role);
            }
            Err(error) => {
                self.len = 0;
                self.counters.count_error(error);
                self.pending = Pending::Error(error);
            }
        }
    }

    /// The direction whose oracle agrees with a frame of `len` bytes, expected one first.
    fn role_of(&self, len: usize) -> Role {
        let buf = self.buf.get(..len).unwrap_or_default();
        self.candidate_roles()
            .into_iter()
            .flatten()
            .find(|&role| frame_len(buf, role, &self.config.rules) == FrameLength::Exact(len))
            .unwrap_or(self.expect)
    }

    fn deliver(&mut self, len: usize, role: Role) {
        self.counters.count_ok();
        if self.config.mode == Mode::Monitor {
            self.expect = role.opposite();
        }
        self.pending = Pending::Frame { len, role };
    }
}

/// [`parse`] in the expected direction, and in the other one too for a monitor when the first
/// does not give a frame.
fn parse_either<'a>(
    buf: &'a [u8],
    mode: Mode,
    expect: Role,
    rules: &LengthRules,
) -> Status<Adu<&'a [u8]>> {
    let first = parse(buf, expect, rules);
    if mode != Mode::Monitor || matches!(first, Status::Complete { .. }) {
        return first;
    }
    match (first, parse(buf, expect.opposite(), rules)) {
        (_, second @ Status::Complete { .. }) => second,
        (incomplete @ Status::Incomplete(_), _) | (_, incomplete @ Status::Incomplete(_)) => {
            incomplete
        }
        (invalid, _) => invalid,
    }
}
