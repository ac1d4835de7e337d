//! One streaming decoder for every [`Framing`]: the contract drivers and sessions program
//! against, whichever framing is underneath.
//!
//! A [`Decoder`] wraps the decoder of its framing ([`tcp::Decoder`], [`rtu::Decoder`],
//! [`ascii::Decoder`], unchanged underneath) behind one set of calls, `push(now, bytes)`,
//! `poll_frame`, `poll_timeout`/`handle_timeout` and `reset`, and yields one [`Frame`] type:
//! the unit id and the PDU, with the transaction id when the framing has one. Its
//! [`frames`](Decoder::frames) call takes received bytes and yields every frame in them,
//! framing whole Modbus TCP ADUs where they lie in the caller's buffer (no copy) and only
//! partial ones through the decoder's own buffer.

use crate::error::FrameError;
use crate::frame::{Framing, Role, ascii, rtu, tcp};
use crate::time::Instant;

/// One frame as a [`Decoder`] delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The MBAP transaction id (Modbus TCP only).
    pub transaction_id: Option<u16>,
    /// The unit id (the serial address on RTU and ASCII).
    pub unit_id: u8,
    /// The PDU: function code and data.
    pub pdu: &'a [u8],
}

impl<'a> From<tcp::Adu<'a>> for Frame<'a> {
    fn from(adu: tcp::Adu<'a>) -> Self {
        Self {
            transaction_id: Some(adu.transaction_id()),
            unit_id: adu.unit_id(),
            pdu: adu.into_pdu(),
        }
    }
}

impl<'a> From<rtu::Adu<&'a [u8]>> for Frame<'a> {
    fn from(adu: rtu::Adu<&'a [u8]>) -> Self {
        Self {
            transaction_id: None,
            unit_id: adu.unit_id(),
            pdu: adu.into_pdu(),
        }
    }
}

impl<'a> From<ascii::Adu<&'a [u8]>> for Frame<'a> {
    fn from(adu: ascii::Adu<&'a [u8]>) -> Self {
        Self {
            transaction_id: None,
            unit_id: adu.unit_id(),
            pdu: adu.into_pdu(),
        }
    }
}

#[derive(Debug, Clone)]
enum Inner {
    Tcp(tcp::Decoder),
    Rtu(rtu::Decoder),
    Ascii(ascii::Decoder),
}

/// A streaming decoder for any [`Framing`], with a fixed buffer of that framing's maximum.
///
/// ```
/// use modbus_stack::frame::{Decoder, Framing, Role};
/// use modbus_stack::time::Instant;
///
/// let mut decoder = Decoder::new(Framing::Tcp, Role::Request);
/// // A request split over two reads, then two at once.
/// let adu = [0x00, 0x07, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x6B, 0x00, 0x03];
/// let mut pdus = Vec::new();
/// for bytes in [&adu[..5], &adu[5..], &[adu, adu].concat()[..]] {
///     let mut frames = decoder.frames(Instant::ZERO, bytes);
///     while let Some(frame) = frames.next() {
///         let frame = frame.unwrap();
///         assert_eq!((frame.transaction_id, frame.unit_id), (Some(7), 1));
///         pdus.push(frame.pdu.to_vec());
///     }
/// }
/// assert_eq!(pdus, vec![adu[7..].to_vec(); 3]);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    inner: Inner,
}

impl Decoder {
    /// A decoder for `framing` expecting frames in direction `role`, with each framing's
    /// defaults: Modbus TCP without a frame timeout, RTU (on a line or over TCP) framed by the
    /// length rules and the CRC without line timing, ASCII with LF and a 1 s character
    /// timeout. For other settings build the framing's own decoder and convert it
    /// (`Decoder::from(rtu::Decoder::new(rtu::Config::server(timing)))`).
    #[must_use]
    pub const fn new(framing: Framing, role: Role) -> Self {
        let mode = match role {
            Role::Request => rtu::Mode::Requests,
            Role::Response => rtu::Mode::Responses,
        };
        let inner = match framing {
            Framing::Tcp => Inner::Tcp(tcp::Decoder::new()),
            Framing::RtuOverTcp | Framing::Rtu => {
                Inner::Rtu(rtu::Decoder::new(rtu::Config::untimed(mode)))
            }
            Framing::Ascii => Inner::Ascii(ascii::Decoder::new(ascii::Config::new())),
        };
        Self { inner }
    }

    /// Takes bytes received at `now`; returns how many were taken (see the framing's decoder
    /// for when it takes fewer). Prefer [`frames`](Self::frames), which pushes and polls.
    pub fn push(&mut self, now: Instant, bytes: &[u8]) -> usize {
        match &mut self.inner {
            Inner::Tcp(decoder) => decoder.push(now, bytes),
            Inner::Rtu(decoder) => decoder.push(now, bytes),
            Inner::Ascii(decoder) => decoder.push(now, bytes),
        }
    }

    /// The next frame or framing error, if one is ready; the frame borrows the decoder and is
    /// dropped from it at the next call.
    #[must_use = "a frame not taken now is dropped at the next call"]
    pub fn poll_frame(&mut self) -> Option<Result<Frame<'_>, FrameError>> {
        match &mut self.inner {
            Inner::Tcp(decoder) => decoder.poll_frame().map(|result| result.map(Frame::from)),
            Inner::Rtu(decoder) => decoder.poll_frame().map(|result| result.map(Frame::from)),
            Inner::Ascii(decoder) => decoder.poll_frame().map(|result| result.map(Frame::from)),
        }
    }

    /// `true` when [`poll_frame`](Self::poll_frame) has a frame or an error to return.
    pub fn is_ready(&mut self) -> bool {
        match &mut self.inner {
            Inner::Tcp(decoder) => decoder.is_ready(),
            Inner::Rtu(decoder) => decoder.is_ready(),
            Inner::Ascii(decoder) => decoder.is_ready(),
        }
    }

    /// Every frame in `bytes`, received at `now`, after the one the decoder holds part of.
    /// Call [`Frames::next`] until `None`; the bytes left then are in the decoder.
    ///
    /// On Modbus TCP, whole ADUs are framed where they lie in `bytes`, without being copied
    /// into the decoder first, exactly as [`push`](Self::push) and
    /// [`poll_frame`](Self::poll_frame) would deliver them.
    pub fn frames<'d, 'b>(&'d mut self, now: Instant, bytes: &'b [u8]) -> Frames<'d, 'b> {
        let in_place = matches!(&self.inner, Inner::Tcp(decoder) if decoder.is_empty() && !decoder.is_broken());
        Frames {
            decoder: self,
            now,
            rest: bytes,
            in_place,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do: the end of an RTU
    /// frame by silence, the ASCII character timeout, a TCP frame timeout.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.inner {
            Inner::Tcp(decoder) => decoder.poll_timeout(),
            Inner::Rtu(decoder) => decoder.poll_timeout(),
            Inner::Ascii(decoder) => decoder.poll_timeout(),
        }
    }

    /// Acts on the timer due at `now`; a frame or error it completes waits for
    /// [`poll_frame`](Self::poll_frame).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.inner {
            Inner::Tcp(decoder) => decoder.handle_timeout(now),
            Inner::Rtu(decoder) => decoder.handle_timeout(now),
            Inner::Ascii(decoder) => decoder.handle_timeout(now),
        }
    }

    /// Empties the decoder (a new connection, a reopened port); configuration and counters
    /// stay.
    pub fn reset(&mut self) {
        match &mut self.inner {
            Inner::Tcp(decoder) => decoder.reset(),
            Inner::Rtu(decoder) => decoder.reset(),
            Inner::Ascii(decoder) => decoder.reset(),
        }
    }

    /// `true` when no byte of an undelivered frame is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match &self.inner {
            Inner::Tcp(decoder) => decoder.is_empty(),
            Inner::Rtu(decoder) => decoder.is_empty(),
            Inner::Ascii(decoder) => decoder.is_empty(),
        }
    }

    /// Bytes held of a Modbus TCP ADU not delivered yet (0 for the other framings, whose
    /// frames end by silence, length rule or delimiter).
    #[must_use]
    pub const fn held(&self) -> usize {
        match &self.inner {
            Inner::Tcp(decoder) => decoder.held(),
            Inner::Rtu(_) | Inner::Ascii(_) => 0,
        }
    }

    /// `true` once a Modbus TCP stream can no longer be framed (a length field outside
    /// 2..=254, a frame timeout): close the connection. Serial framings resynchronise by
    /// themselves and are never broken.
    #[must_use]
    pub const fn is_broken(&self) -> bool {
        match &self.inner {
            Inner::Tcp(decoder) => decoder.is_broken(),
            Inner::Rtu(_) | Inner::Ascii(_) => false,
        }
    }

    /// Changes the ASCII end character (diagnostics 08/03); no effect on other framings.
    pub fn set_ascii_end_char(&mut self, end: u8) {
        if let Inner::Ascii(decoder) = &mut self.inner {
            decoder.set_end_char(end);
        }
    }
}

impl From<tcp::Decoder> for Decoder {
    fn from(decoder: tcp::Decoder) -> Self {
        Self {
            inner: Inner::Tcp(decoder),
        }
    }
}

impl From<rtu::Decoder> for Decoder {
    fn from(decoder: rtu::Decoder) -> Self {
        Self {
            inner: Inner::Rtu(decoder),
        }
    }
}

impl From<ascii::Decoder> for Decoder {
    fn from(decoder: ascii::Decoder) -> Self {
        Self {
            inner: Inner::Ascii(decoder),
        }
    }
}

/// The frames in one batch of received bytes, from [`Decoder::frames`].
///
/// A lending iterator: each frame borrows it, so take what you need from a frame before asking
/// for the next. Call [`next`](Self::next) until `None`: the bytes not framed when it is
/// dropped early are lost (see [`rest`](Self::rest)).
#[derive(Debug)]
#[must_use = "frames are only decoded when `next` is called"]
pub struct Frames<'d, 'b> {
    decoder: &'d mut Decoder,
    now: Instant,
    rest: &'b [u8],
    /// Whole TCP ADUs may still be framed in place at the front of `rest`.
    in_place: bool,
}

impl Frames<'_, '_> {
    /// The next frame or framing error, or `None` once every byte is framed or held.
    #[allow(
        clippy::should_implement_trait,
        reason = "frames borrow the iterator itself, which `Iterator` cannot express"
    )]
    pub fn next(&mut self) -> Option<Result<Frame<'_>, FrameError>> {
        if self.in_place {
            match tcp::parse(self.rest) {
                crate::frame::Status::Complete { frame, consumed } => {
                    self.rest = self.rest.get(consumed..).unwrap_or_default();
                    return Some(Ok(Frame::from(frame)));
                }
                // "Protocol id ≠ 0 → discard the indication": skipped whole, as in the decoder.
                crate::frame::Status::Invalid {
                    error: error @ FrameError::ProtocolId { .. },
                    discard,
                } => {
                    self.rest = self.rest.get(discard..).unwrap_or_default();
                    return Some(Err(error));
                }
                // A partial ADU, or a length field only the decoder may judge.
                _ => self.in_place = false,
            }
        }
        // Each round takes at least one byte or ends: at most `rest.len() + 1` rounds.
        loop {
            if self.decoder.is_ready() {
                return self.decoder.poll_frame();
            }
            if self.rest.is_empty() {
                return None;
            }
            let taken = self.decoder.push(self.now, self.rest);
            self.rest = self.rest.get(taken..).unwrap_or_default();
            if taken == 0 && !self.decoder.is_ready() {
                // Nothing taken and nothing to deliver: the rest cannot be framed.
                self.rest = &[];
                return None;
            }
        }
    }

    /// The bytes not taken yet: neither framed nor in the decoder.
    #[must_use]
    pub const fn rest(&self) -> &[u8] {
        self.rest
    }
}
