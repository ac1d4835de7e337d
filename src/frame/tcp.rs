//! Modbus TCP framing: the 7-byte MBAP header (transaction id, protocol id, length, unit id)
//! followed by the PDU, all big-endian (`modbus-reference.md` §10).
//!
//! The length field cuts the byte stream, so [`parse`] always knows how many bytes are missing.
//! Two header faults differ in consequence. A protocol id other than 0 leaves the stream aligned:
//! the ADU is skipped whole (`discard` covers it) and a server drops it silently. A length field
//! outside 2..=254 means the stream can no longer be framed: `discard` is all buffered data, the
//! [`Decoder`] drops everything after it, and the connection should be closed (§10.4). Neither
//! case ever waits for bytes that will not come or allocates.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use core::time::Duration;

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::frame::{Needed, Status};
use crate::pdu::MAX_PDU_LEN;
use crate::time::Instant;

/// Bytes of the MBAP header, unit id included.
pub const HEADER_LEN: usize = 7;
/// Largest Modbus TCP ADU: header and a 253-byte PDU.
pub const MAX_ADU_LEN: usize = HEADER_LEN + MAX_PDU_LEN;
/// Smallest valid length field: unit id and a function code.
pub const MIN_LENGTH_FIELD: u16 = 2;
/// Largest valid length field: unit id and a 253-byte PDU.
pub const MAX_LENGTH_FIELD: u16 = 254;
/// The protocol identifier of Modbus.
pub const MODBUS_PROTOCOL_ID: u16 = 0;

/// Bytes before the length field's count starts (transaction id, protocol id, length).
const PREFIX_LEN: usize = 6;

/// A view over a Modbus TCP ADU: MBAP header fields and the PDU after them.
///
/// ```
/// use modbus_stack::frame::tcp::MbapHeader;
/// let bytes = [0x15, 0x01, 0x00, 0x00, 0x00, 0x06, 0xFF, 0x03, 0x00, 0x04, 0x00, 0x01];
/// let adu = MbapHeader::new_checked(&bytes[..]).unwrap();
/// assert_eq!((adu.transaction_id(), adu.length(), adu.unit_id()), (0x1501, 6, 0xFF));
/// assert_eq!(adu.pdu(), &[0x03, 0x00, 0x04, 0x00, 0x01]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbapHeader<T: AsRef<[u8]>> {
    buffer: T,
}

/// A complete ADU as [`parse`] returns it: the header view over a buffer that holds the PDU too.
pub type Adu<'a> = MbapHeader<&'a [u8]>;

impl<T: AsRef<[u8]>> MbapHeader<T> {
    /// Wraps `buffer` without checking it (see the panic contract in [`crate::frame`]).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the header is whole, its length field is in 2..=254, and the buffer holds the
    /// `6 + length` bytes it announces (more are allowed and ignored by [`pdu`](Self::pdu)).
    /// The protocol id is not checked here: that is a decision about the content.
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooShort`] when the buffer is shorter than the header or the ADU,
    /// [`FrameError::LengthField`] for a length field outside 2..=254.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(FrameError::FrameTooShort { len });
        }
        let length = self.length();
        if !(MIN_LENGTH_FIELD..=MAX_LENGTH_FIELD).contains(&length) {
            return Err(FrameError::LengthField { length });
        }
        if len < self.adu_len() {
            return Err(FrameError::FrameTooShort { len });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn field(&self, at: usize) -> u16 {
        match self.buffer.as_ref().get(at..at.saturating_add(2)) {
            Some(&[high, low]) => u16::from_be_bytes([high, low]),
            _ => 0,
        }
    }

    /// Transaction identifier: chosen by the client, copied by the server.
    pub fn transaction_id(&self) -> u16 {
        self.field(0)
    }

    /// Protocol identifier: 0 for Modbus.
    pub fn protocol_id(&self) -> u16 {
        self.field(2)
    }

    /// Length field: bytes after it (unit id and PDU).
    pub fn length(&self) -> u16 {
        self.field(4)
    }

    /// Unit identifier: 0xFF (or 0) for a server directly on TCP, the serial address behind a
    /// gateway.
    pub fn unit_id(&self) -> u8 {
        self.buffer.as_ref().get(6).copied().unwrap_or(0)
    }

    /// Bytes of the whole ADU according to the length field (`6 + length`).
    pub fn adu_len(&self) -> usize {
        usize::from(self.length()).saturating_add(PREFIX_LEN)
    }

    /// The PDU: the `length - 1` bytes after the header (shortened if the buffer is).
    pub fn pdu(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let end = self.adu_len().min(bytes.len());
        bytes.get(HEADER_LEN..end).unwrap_or_default()
    }

    /// The whole ADU as the length field delimits it (shortened if the buffer is).
    pub fn as_bytes(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        bytes
            .get(..self.adu_len().min(bytes.len()))
            .unwrap_or_default()
    }
}

impl<'a> MbapHeader<&'a [u8]> {
    /// The PDU with the lifetime of the buffer rather than of the view.
    #[must_use]
    pub fn into_pdu(self) -> &'a [u8] {
        let bytes = self.buffer;
        let end = self.adu_len().min(bytes.len());
        bytes.get(HEADER_LEN..end).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MbapHeader<T> {
    fn set_field(&mut self, at: usize, value: u16) {
        if let Some(field) = self.buffer.as_mut().get_mut(at..at.saturating_add(2)) {
            field.copy_from_slice(&value.to_be_bytes());
        }
    }

    /// Sets the transaction identifier.
    pub fn set_transaction_id(&mut self, value: u16) {
        self.set_field(0, value);
    }

    /// Sets the protocol identifier.
    pub fn set_protocol_id(&mut self, value: u16) {
        self.set_field(2, value);
    }

    /// Sets the length field.
    pub fn set_length(&mut self, value: u16) {
        self.set_field(4, value);
    }

    /// Sets the unit identifier.
    pub fn set_unit_id(&mut self, value: u8) {
        if let Some(unit) = self.buffer.as_mut().get_mut(6) {
            *unit = value;
        }
    }
}

/// Bytes the Modbus TCP ADU around a PDU of `pdu_len` bytes takes.
#[must_use]
pub const fn encoded_len(pdu_len: usize) -> usize {
    pdu_len.saturating_add(HEADER_LEN)
}

/// Writes the ADU for `transaction_id`, `unit_id` and `pdu` (protocol id 0) to the front of
/// `out`; returns its length.
///
/// ```
/// use modbus_stack::frame::tcp;
/// let mut out = [0u8; 260];
/// let len = tcp::encode(4, 0xFF, &[0x07], &mut out).unwrap();
/// assert_eq!(&out[..len], &[0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0xFF, 0x07]);
/// ```
///
/// # Errors
///
/// [`EncodeError::Invalid`] for an empty PDU or one over 253 bytes;
/// [`EncodeError::BufferTooSmall`] when `out` cannot hold the ADU.
pub fn encode(
    transaction_id: u16,
    unit_id: u8,
    pdu: &[u8],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    // The PDU's own faults come before the buffer's, as in `encode_header`.
    length_field(pdu.len())?;
    let required = encoded_len(pdu.len());
    let available = out.len();
    let body = out
        .get_mut(HEADER_LEN..required)
        .ok_or(EncodeError::BufferTooSmall {
            required,
            available,
        })?;
    body.copy_from_slice(pdu);
    encode_header(transaction_id, unit_id, pdu.len(), out)
}

/// Writes the MBAP header in front of a PDU of `pdu_len` bytes that is already in place at
/// `frame[HEADER_LEN..]`, returning the ADU length. A server builds its response straight into
/// the ADU buffer this way, without copying the PDU.
///
/// ```
/// use modbus_stack::frame::tcp;
/// let mut frame = [0u8; tcp::MAX_ADU_LEN];
/// frame[tcp::HEADER_LEN] = 0x07;
/// let len = tcp::encode_header(4, 0xFF, 1, &mut frame).unwrap();
/// assert_eq!(&frame[..len], &[0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0xFF, 0x07]);
/// ```
///
/// # Errors
///
/// [`EncodeError::Invalid`] for an empty PDU or one over 253 bytes;
/// [`EncodeError::BufferTooSmall`] when `frame` cannot hold the ADU.
pub fn encode_header(
    transaction_id: u16,
    unit_id: u8,
    pdu_len: usize,
    frame: &mut [u8],
) -> Result<usize, EncodeError> {
    if pdu_len == 0 {
        return Err(DecodeError::Empty.into());
    }
    let (Ok(length), true) = (
        u16::try_from(pdu_len.saturating_add(1)),
        pdu_len <= MAX_PDU_LEN,
    ) else {
        return Err(DecodeError::PduTooLong { len: pdu_len }.into());
    };
    let len = encoded_len(pdu_len);
    let available = frame.len();
    let header = frame
        .get_mut(..HEADER_LEN)
        .filter(|_| available >= len)
        .ok_or(EncodeError::BufferTooSmall {
            required: len,
            available,
        })?;
    let mut view = MbapHeader::new_unchecked(header);
    view.set_transaction_id(transaction_id);
    view.set_protocol_id(MODBUS_PROTOCOL_ID);
    view.set_length(length);
    view.set_unit_id(unit_id);
    Ok(len)
}

/// The MBAP length field for a PDU of `pdu_len` bytes (unit id + PDU), if such a PDU is valid.
fn length_field(pdu_len: usize) -> Result<u16, EncodeError> {
    if pdu_len == 0 {
        return Err(DecodeError::Empty.into());
    }
    match u16::try_from(pdu_len.saturating_add(1)) {
        Ok(length) if pdu_len <= MAX_PDU_LEN => Ok(length),
        _ => Err(DecodeError::PduTooLong { len: pdu_len }.into()),
    }
}

/// Decodes the Modbus TCP ADU at the front of `buf`.
///
/// ```
/// use modbus_stack::frame::{Needed, Status, tcp};
/// let bytes = [0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0xFF, 0x07];
/// assert!(matches!(tcp::parse(&bytes[..5]), Status::Incomplete(Needed::AtLeast(n)) if n.get() == 2));
/// let Status::Complete { frame, consumed } = tcp::parse(&bytes) else { panic!() };
/// assert_eq!((frame.transaction_id(), frame.pdu(), consumed), (4, &[0x07][..], 8));
/// ```
#[must_use]
pub fn parse(buf: &[u8]) -> Status<Adu<'_>> {
    if buf.len() < HEADER_LEN {
        return Status::Incomplete(Needed::at_least(HEADER_LEN.saturating_sub(buf.len())));
    }
    let header = MbapHeader::new_unchecked(buf);
    let length = header.length();
    if !(MIN_LENGTH_FIELD..=MAX_LENGTH_FIELD).contains(&length) {
        // Alignment is lost: nothing in the buffer can be trusted to start an ADU.
        return Status::Invalid {
            error: FrameError::LengthField { length },
            discard: buf.len(),
        };
    }
    let adu_len = header.adu_len();
    let Some(adu) = buf.get(..adu_len) else {
        return Status::Incomplete(Needed::at_least(adu_len.saturating_sub(buf.len())));
    };
    let protocol_id = header.protocol_id();
    if protocol_id != MODBUS_PROTOCOL_ID {
        // "Protocol id ≠ 0 → silently discard the indication" [TCP §4.4.2.2]; the length field
        // still tells where the next ADU starts.
        return Status::Invalid {
            error: FrameError::ProtocolId { protocol_id },
            discard: adu_len,
        };
    }
    Status::Complete {
        frame: MbapHeader::new_unchecked(adu),
        consumed: adu_len,
    }
}

/// Streaming Modbus TCP decoder with a fixed 260-byte buffer, for ADUs back to back or split
/// anywhere in a byte stream.
///
/// Call [`push`](Self::push) with received bytes (it returns how many it took: at most the free
/// space) and [`poll_frame`](Self::poll_frame) until `None`, then push the rest. After
/// [`FrameError::LengthField`] the decoder drops every byte it is given until
/// [`reset`](Self::reset): close the connection.
///
/// With a [frame timeout](Self::with_frame_timeout), part of an ADU older than the timeout is
/// not kept: [`poll_timeout`](Self::poll_timeout) says when, and
/// [`handle_timeout`](Self::handle_timeout) (or the next [`push`](Self::push)) reports
/// [`FrameError::Incomplete`]. The stream cannot be framed after that either, so the decoder is
/// broken as after a length-field error: a truncated ADU completed by the bytes of the next
/// one would otherwise pass for a whole one.
///
/// ```
/// use modbus_stack::frame::tcp::Decoder;
/// use modbus_stack::time::Instant;
/// let mut decoder = Decoder::new();
/// let bytes = [0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0xFF, 0x07];
/// assert_eq!(decoder.push(Instant::ZERO, &bytes[..3]), 3);
/// assert!(decoder.poll_frame().is_none());
/// decoder.push(Instant::ZERO, &bytes[3..]);
/// assert_eq!(decoder.poll_frame().unwrap().unwrap().pdu(), &[0x07]);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: [u8; MAX_ADU_LEN],
    len: usize,
    /// Bytes of a delivered ADU to drop at the next call.
    consume: usize,
    /// Stream alignment was lost; everything is dropped until `reset`.
    broken: bool,
    /// An error to report before anything else (the frame timeout's).
    error: Option<FrameError>,
    frame_timeout: Option<Duration>,
    /// When the first byte of the partial ADU held arrived.
    frame_started: Instant,
    /// When the latest bytes were pushed: the start of an ADU left behind a delivered one.
    last_push: Instant,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty decoder without a frame timeout.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_ADU_LEN],
            len: 0,
            consume: 0,
            broken: false,
            error: None,
            frame_timeout: None,
            frame_started: Instant::ZERO,
            last_push: Instant::ZERO,
        }
    }

    /// The same decoder dropping part of an ADU that is not complete `timeout` after its first
    /// byte arrived.
    #[must_use]
    pub const fn with_frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = Some(timeout);
        self
    }

    /// `true` when the decoder holds no bytes of an undelivered ADU: the stream is at an ADU
    /// boundary, so the next bytes may as well be framed where they lie with [`parse`] (without
    /// copying them in) until a partial ADU is left to [`push`](Self::push).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len <= self.consume
    }

    /// Bytes held that belong to no ADU delivered yet (a partial ADU).
    #[must_use]
    pub const fn held(&self) -> usize {
        self.len.saturating_sub(self.consume)
    }

    /// `true` after a length-field error or a frame timeout: the stream cannot be framed any
    /// more.
    #[must_use]
    pub const fn is_broken(&self) -> bool {
        self.broken
    }

    /// Empties the decoder, for a new connection (the frame timeout stays).
    pub fn reset(&mut self) {
        *self = Self {
            frame_timeout: self.frame_timeout,
            ..Self::new()
        };
    }

    /// Takes bytes received at `now`, up to the free buffer space; returns how many were taken
    /// (all of them once the decoder is broken, since they are dropped).
    pub fn push(&mut self, now: Instant, bytes: &[u8]) -> usize {
        self.settle();
        self.handle_timeout(now);
        if self.broken {
            return bytes.len();
        }
        if self.len == 0 && !bytes.is_empty() {
            self.frame_started = now;
        }
        self.last_push = now;
        let take = MAX_ADU_LEN.saturating_sub(self.len).min(bytes.len());
        let end = self.len.saturating_add(take);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..end), bytes.get(..take)) {
            dst.copy_from_slice(src);
            self.len = end;
        }
        take
    }

    /// `true` when [`poll_frame`](Self::poll_frame) has an ADU or an error to return.
    #[must_use]
    pub fn is_ready(&mut self) -> bool {
        self.settle();
        self.error.is_some()
            || (!self.broken
                && !matches!(
                    parse(self.buf.get(..self.len).unwrap_or_default()),
                    Status::Incomplete(_)
                ))
    }

    /// The next ADU or framing error, if one is ready. The ADU borrows the decoder's buffer and
    /// is dropped from it at the next call.
    #[must_use = "an ADU not taken now is dropped at the next call"]
    pub fn poll_frame(&mut self) -> Option<Result<Adu<'_>, FrameError>> {
        self.settle();
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        if self.broken {
            return None;
        }
        match parse(self.buf.get(..self.len).unwrap_or_default()) {
            Status::Incomplete(_) => None,
            Status::Complete { consumed, .. } => {
                self.consume = consumed;
                let adu = self.buf.get(..consumed).unwrap_or_default();
                Some(Ok(MbapHeader::new_unchecked(adu)))
            }
            Status::Invalid { error, discard } => {
                if matches!(error, FrameError::LengthField { .. }) {
                    self.break_stream();
                } else {
                    self.consume = discard;
                    self.settle();
                }
                Some(Err(error))
            }
        }
    }

    /// When the partial ADU held times out, if the decoder has a frame timeout and holds one.
    #[must_use]
    #[allow(clippy::arithmetic_side_effects)] // `Instant + Duration` saturates, never overflows.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.frame_timeout?;
        (!self.is_empty() && !self.broken).then(|| self.frame_started + timeout)
    }

    /// Drops the partial ADU held if it timed out at `now`; [`poll_frame`](Self::poll_frame)
    /// then reports [`FrameError::Incomplete`] and the decoder is broken.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.settle();
            self.error = Some(FrameError::Incomplete { len: self.len });
            self.break_stream();
        }
    }

    fn break_stream(&mut self) {
        self.broken = true;
        self.len = 0;
        self.consume = 0;
    }

    fn settle(&mut self) {
        if self.consume > 0 {
            let consume = self.consume.min(self.len);
            self.buf.copy_within(consume..self.len, 0);
            self.len = self.len.saturating_sub(consume);
            self.consume = 0;
            // What is left behind a delivered ADU is the start of the next, which came with
            // the latest push at the earliest.
            self.frame_started = self.last_push;
        }
    }
}
