//! Modbus RTU framing: address, PDU, CRC-16 (low byte first), delimited by silence on the line.
//!
//! RTU has no length field and no delimiter (`modbus-reference.md` §8). A receiver ends a frame
//! after t3.5 of silence, or earlier when the function code tells the length: the *length
//! oracle* [`frame_len`] knows the layout of every public function code for requests and
//! responses, and [`LengthRules`] adds vendor function codes. On lines without timing
//! (RTU over TCP) the oracle and the CRC alone cut the stream, resynchronising after garbage by
//! dropping one byte at a time.
//!
//! This module holds the [`Adu`] view, [`encode`], the stateless [`parse`], the oracle and the
//! line [`Timing`]; the streaming [`Decoder`] with its t1.5/t3.5 state machine is in `decoder.rs`.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod decoder;

pub use decoder::{Config, Decoder, Mode, RoleFrame};

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::frame::check::{RunningCrc, crc16, crc16_from_trailer, crc16_trailer, verify_crc16};
use crate::frame::{Needed, Role, Status};
use crate::pdu::MAX_PDU_LEN;
use core::time::Duration;

/// Largest RTU ADU: address, 253-byte PDU, two CRC bytes.
pub const MAX_ADU_LEN: usize = 256;
/// Smallest RTU ADU: address, function code, two CRC bytes.
pub const MIN_ADU_LEN: usize = 4;
/// Bytes of the CRC trailer.
pub const CRC_LEN: usize = 2;

/// A view over one RTU ADU: `address | pdu | crc low | crc high`.
///
/// ```
/// use modbus_stack::frame::rtu::Adu;
/// let adu = Adu::new_checked(&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17][..]).unwrap();
/// assert_eq!(adu.unit_id(), 1);
/// assert_eq!(adu.pdu(), &[0x03, 0x00, 0x6B, 0x00, 0x03]);
/// assert_eq!(adu.crc(), 0x1774);
/// assert!(adu.verify_crc().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adu<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Adu<T> {
    /// Wraps `buffer` without checking its length (see the panic contract in [`crate::frame`]).
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooShort`] under 4 bytes, [`FrameError::FrameTooLong`] over 256.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let adu = Self::new_unchecked(buffer);
        adu.check_len()?;
        Ok(adu)
    }

    /// Checks that the buffer is 4..=256 bytes long, so every accessor has its field.
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooShort`] under 4 bytes, [`FrameError::FrameTooLong`] over 256.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let len = self.buffer.as_ref().len();
        if len < MIN_ADU_LEN {
            Err(FrameError::FrameTooShort { len })
        } else if len > MAX_ADU_LEN {
            Err(FrameError::FrameTooLong { len })
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole ADU, CRC included.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The server address: 0 broadcast, 1–247 a server, 248–255 reserved.
    pub fn unit_id(&self) -> u8 {
        self.as_bytes().first().copied().unwrap_or(0)
    }

    /// The bytes the CRC covers: address, function code and data.
    pub fn covered(&self) -> &[u8] {
        let bytes = self.as_bytes();
        bytes
            .get(..bytes.len().saturating_sub(CRC_LEN))
            .unwrap_or_default()
    }

    /// The PDU: function code and data, without address and CRC.
    pub fn pdu(&self) -> &[u8] {
        self.covered().get(1..).unwrap_or_default()
    }

    /// The CRC the frame carries, read low byte first.
    pub fn crc(&self) -> u16 {
        let bytes = self.as_bytes();
        match bytes.get(bytes.len().saturating_sub(CRC_LEN)..) {
            Some(&[low, high]) => crc16_from_trailer(low, high),
            _ => 0,
        }
    }

    /// The CRC computed over address, function code and data.
    pub fn computed_crc(&self) -> u16 {
        crc16(self.covered())
    }

    /// Checks the CRC trailer (always succeeds under `cfg(fuzzing)`).
    ///
    /// # Errors
    ///
    /// [`FrameError::CrcMismatch`] with the carried and the computed value.
    pub fn verify_crc(&self) -> Result<(), FrameError> {
        verify_crc16(self.covered(), self.crc())
    }
}

impl<'a> Adu<&'a [u8]> {
    /// The PDU with the lifetime of the buffer rather than of the view.
    #[must_use]
    pub fn into_pdu(self) -> &'a [u8] {
        let bytes = self.buffer;
        bytes
            .get(1..bytes.len().saturating_sub(CRC_LEN))
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Adu<T> {
    /// Sets the address byte (does nothing on an empty buffer).
    pub fn set_unit_id(&mut self, unit_id: u8) {
        if let Some(first) = self.buffer.as_mut().first_mut() {
            *first = unit_id;
        }
    }

    /// Recomputes the CRC over the covered bytes and writes the trailer.
    pub fn fill_crc(&mut self) {
        let crc = self.computed_crc();
        let bytes = self.buffer.as_mut();
        let at = bytes.len().saturating_sub(CRC_LEN);
        if let Some(trailer) = bytes.get_mut(at..) {
            if trailer.len() == CRC_LEN {
                trailer.copy_from_slice(&crc16_trailer(crc));
            }
        }
    }
}

/// Bytes an RTU ADU around a PDU of `pdu_len` bytes takes.
#[must_use]
pub const fn encoded_len(pdu_len: usize) -> usize {
    pdu_len.saturating_add(1 + CRC_LEN)
}

/// Completes the RTU ADU around a PDU of `pdu_len` bytes that is already in place at
/// `frame[1..]`: writes the unit id in front and the CRC behind it, and returns the ADU length.
/// A server builds its answer straight into the ADU buffer this way, without copying the PDU.
///
/// ```
/// use modbus_stack::frame::rtu;
/// let mut frame = [0u8; rtu::MAX_ADU_LEN];
/// frame[1..6].copy_from_slice(&[0x03, 0x00, 0x6B, 0x00, 0x03]);
/// let len = rtu::encode_in_place(1, 5, &mut frame).unwrap();
/// assert_eq!(&frame[..len], &[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17]);
/// ```
///
/// # Errors
///
/// [`EncodeError::Invalid`] for an empty PDU or one over 253 bytes;
/// [`EncodeError::BufferTooSmall`] when `frame` cannot hold the ADU.
pub fn encode_in_place(
    unit_id: u8,
    pdu_len: usize,
    frame: &mut [u8],
) -> Result<usize, EncodeError> {
    if pdu_len == 0 {
        return Err(DecodeError::Empty.into());
    }
    if pdu_len > MAX_PDU_LEN {
        return Err(DecodeError::PduTooLong { len: pdu_len }.into());
    }
    let len = encoded_len(pdu_len);
    let available = frame.len();
    let frame = frame.get_mut(..len).ok_or(EncodeError::BufferTooSmall {
        required: len,
        available,
    })?;
    let mut adu = Adu::new_unchecked(frame);
    adu.set_unit_id(unit_id);
    adu.fill_crc();
    Ok(len)
}

/// Writes the RTU ADU for `unit_id` and `pdu` (function code and data) to the front of `out`;
/// returns its length.
///
/// ```
/// use modbus_stack::frame::rtu;
/// let mut out = [0u8; 256];
/// let len = rtu::encode(1, &[0x03, 0x00, 0x6B, 0x00, 0x03], &mut out).unwrap();
/// assert_eq!(&out[..len], &[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17]);
/// ```
///
/// # Errors
///
/// [`EncodeError::Invalid`] for an empty PDU or one over 253 bytes;
/// [`EncodeError::BufferTooSmall`] when `out` cannot hold the ADU.
pub fn encode(unit_id: u8, pdu: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    // The PDU is copied only when `encode_in_place` will accept it; otherwise it reports the
    // fault (the PDU's own before the buffer's).
    let fits = !pdu.is_empty() && pdu.len() <= MAX_PDU_LEN && out.len() >= encoded_len(pdu.len());
    if let (true, Some(body)) = (fits, out.get_mut(1..=pdu.len())) {
        body.copy_from_slice(pdu);
    }
    encode_in_place(unit_id, pdu.len(), out)
}

/// How the length of a function code's PDU follows from its bytes, for [`LengthRules`].
///
/// Offsets and lengths are in the PDU (offset 0 is the function code), so one rule reads the same
/// as the function's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthRule {
    /// The PDU always has this many bytes (function code included).
    Fixed(u8),
    /// The PDU is `pdu[offset] + add` bytes long: a one-byte count at `offset` plus `add` bytes of
    /// header (for a classic `fc, count, data…` response: `offset: 1, add: 2`).
    ByteCountAt {
        /// PDU offset of the count byte.
        offset: u8,
        /// Bytes that are not counted by it (function code, the count itself, fixed fields).
        add: u8,
    },
    /// The length cannot be told from the bytes: the frame ends by t3.5 of silence (or, without
    /// timing, at the first position where the CRC matches).
    Unknown,
}

/// How many custom rules a [`LengthRules`] holds.
pub const MAX_CUSTOM_RULES: usize = 8;

/// All [`MAX_CUSTOM_RULES`] custom length rules are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all {capacity} custom length rules are in use")]
pub struct RulesFull {
    /// The number of rules a table holds.
    pub capacity: usize,
}

/// Length rules for function codes the crate does not know (user-defined 65–72, 100–110, or a
/// vendor's), by function code and direction. They take precedence over the built-in table.
///
/// ```
/// use modbus_stack::frame::Role;
/// use modbus_stack::frame::rtu::{FrameLength, LengthRule, LengthRules, frame_len};
/// let mut rules = LengthRules::new();
/// rules.set(0x41, Role::Request, LengthRule::Fixed(3)).unwrap();
/// assert_eq!(frame_len(&[0x01, 0x41], Role::Request, &rules), FrameLength::Exact(6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LengthRules {
    entries: [Option<(u8, Role, LengthRule)>; MAX_CUSTOM_RULES],
}

impl LengthRules {
    /// A table without custom rules.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: [None; MAX_CUSTOM_RULES],
        }
    }

    /// Sets the rule of `function_code` in direction `role`, replacing an earlier one.
    ///
    /// # Errors
    ///
    /// [`RulesFull`] when all slots hold rules for other codes.
    pub fn set(
        &mut self,
        function_code: u8,
        role: Role,
        rule: LengthRule,
    ) -> Result<(), RulesFull> {
        let slot = self
            .entries
            .iter()
            .position(|e| matches!(e, Some((f, r, _)) if *f == function_code && *r == role))
            .or_else(|| self.entries.iter().position(Option::is_none));
        match slot.and_then(|i| self.entries.get_mut(i)) {
            Some(entry) => {
                *entry = Some((function_code, role, rule));
                Ok(())
            }
            None => Err(RulesFull {
                capacity: MAX_CUSTOM_RULES,
            }),
        }
    }

    /// The custom rule of `function_code` in direction `role`, if one was set.
    #[must_use]
    pub fn get(&self, function_code: u8, role: Role) -> Option<LengthRule> {
        self.entries
            .iter()
            .flatten()
            .find_map(|&(f, r, rule)| (f == function_code && r == role).then_some(rule))
    }
}

/// What the length oracle can tell about the frame at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLength {
    /// The ADU is exactly this many bytes long (may exceed 256 for a corrupt count).
    Exact(usize),
    /// The buffer must hold at least this many bytes before the length can be told.
    AtLeast(usize),
    /// The layout is known not to tell the length (FC 08/0000, FC 2B with MEI type other than 0x0E,
    /// or a [`LengthRule::Unknown`]); only silence or the CRC can end the frame.
    NotDerivable,
    /// No length rule exists for this function code; register one in [`LengthRules`].
    UnknownFunction(u8),
}

/// The length oracle: the length of the RTU ADU starting at `adu[0]` from its function code and
/// the bytes present, per `modbus-reference.md` §8.7 (byte indices below are ADU indices).
///
/// ```
/// use modbus_stack::frame::Role;
/// use modbus_stack::frame::rtu::{FrameLength, LengthRules, frame_len};
/// let rules = LengthRules::new();
/// // Read holding registers response: 5 + byte count at byte 2.
/// assert_eq!(frame_len(&[0x01, 0x03], Role::Response, &rules), FrameLength::AtLeast(3));
/// assert_eq!(frame_len(&[0x01, 0x03, 0x06], Role::Response, &rules), FrameLength::Exact(11));
/// ```
#[must_use]
pub fn frame_len(adu: &[u8], role: Role, rules: &LengthRules) -> FrameLength {
    let Some(&function) = adu.get(1) else {
        return FrameLength::AtLeast(2);
    };
    if let Some(rule) = rules.get(function, role) {
        return custom_len(adu, rule);
    }
    match role {
        Role::Request => request_len(adu, function),
        Role::Response => response_len(adu, function),
    }
}

/// ADU length = 1 (address) + PDU length + 2 (CRC) for a custom rule.
#[allow(clippy::arithmetic_side_effects)] // u8 operands widened to usize: sums stay below 520.
fn custom_len(adu: &[u8], rule: LengthRule) -> FrameLength {
    match rule {
        LengthRule::Fixed(pdu_len) => FrameLength::Exact(usize::from(pdu_len) + 3),
        LengthRule::ByteCountAt { offset, add } => {
            count_at(adu, usize::from(offset) + 1, usize::from(add) + 3)
        }
        LengthRule::Unknown => FrameLength::NotDerivable,
    }
}

/// `adu[index] + add`, or the bytes needed to read `adu[index]`.
#[allow(clippy::arithmetic_side_effects)] // index ≤ 256 and add ≤ 258: no overflow in usize.
fn count_at(adu: &[u8], index: usize, add: usize) -> FrameLength {
    match adu.get(index) {
        Some(&count) => FrameLength::Exact(usize::from(count) + add),
        None => FrameLength::AtLeast(index + 1),
    }
}

/// FC 08: 8 bytes except sub-function 0x0000 (return query data), whose data length is free.
fn diagnostics_len(adu: &[u8]) -> FrameLength {
    match adu.get(2..4) {
        Some([0, 0]) => FrameLength::NotDerivable,
        Some(_) => FrameLength::Exact(8),
        None => FrameLength::AtLeast(4),
    }
}

fn request_len(adu: &[u8], function: u8) -> FrameLength {
    match function {
        0x01..=0x06 => FrameLength::Exact(8),
        0x07 | 0x0B | 0x0C | 0x11 => FrameLength::Exact(4),
        0x08 => diagnostics_len(adu),
        0x0F | 0x10 => count_at(adu, 6, 9),
        0x14 | 0x15 => count_at(adu, 2, 5),
        0x16 => FrameLength::Exact(10),
        0x17 => count_at(adu, 10, 13),
        0x18 => FrameLength::Exact(6),
        0x2B => match adu.get(2) {
            Some(0x0E) => FrameLength::Exact(7),
            Some(_) => FrameLength::NotDerivable,
            None => FrameLength::AtLeast(3),
        },
        other => FrameLength::UnknownFunction(other),
    }
}

fn response_len(adu: &[u8], function: u8) -> FrameLength {
    match function {
        0x01..=0x04 | 0x0C | 0x11 | 0x14 | 0x15 | 0x17 => count_at(adu, 2, 5),
        0x05 | 0x06 | 0x0B | 0x0F | 0x10 => FrameLength::Exact(8),
        0x08 => diagnostics_len(adu),
        0x16 => FrameLength::Exact(10),
        // FIFO: a 16-bit byte count at bytes 2..4 (pymodbus erratum §14 #11: not `* 2`).
        0x18 => match adu.get(2..4) {
            Some(&[high, low]) => {
                FrameLength::Exact(usize::from(u16::from_be_bytes([high, low])).saturating_add(6))
            }
            _ => FrameLength::AtLeast(4),
        },
        0x2B => match adu.get(2) {
            Some(0x0E) => device_identification_len(adu),
            Some(_) => FrameLength::NotDerivable,
            None => FrameLength::AtLeast(3),
        },
        // Read exception status (address, fc, status, crc) and every exception response.
        0x07 | 0x80..=0xFF => FrameLength::Exact(5),
        other => FrameLength::UnknownFunction(other),
    }
}

/// FC 2B/0E response: 10 + Σ(2 + Lᵢ) over the number of objects at byte 7, walking each object's
/// length byte in turn.
#[allow(clippy::arithmetic_side_effects)] // `end` stops growing once past 256; at most 255 + 3 added.
fn device_identification_len(adu: &[u8]) -> FrameLength {
    let Some(&objects) = adu.get(7) else {
        return FrameLength::AtLeast(8);
    };
    // `end` is the ADU offset just past the objects walked so far (before the CRC).
    let mut end = 8usize;
    for _ in 0..objects {
        let Some(&object_len) = adu.get(end + 1) else {
            return FrameLength::AtLeast(end + 2);
        };
        end += 2 + usize::from(object_len);
        if end > MAX_ADU_LEN {
            break;
        }
    }
    FrameLength::Exact(end + CRC_LEN)
}

/// Decodes the RTU ADU at the front of `buf` without timing: the oracle gives the length, the
/// CRC confirms it. For RTU over TCP and for users with their own buffer.
///
/// On an invalid frame `discard` is 1: without timing, the way back into step is to drop one byte
/// and look again (a server on a timed line discards the whole frame at t3.5 instead, as
/// [`Decoder`] does). Frames of not-derivable length complete at the first prefix whose CRC
/// matches.
///
/// ```
/// use modbus_stack::frame::{Role, Status, rtu};
/// let bytes = [0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17, 0x01];
/// let rules = rtu::LengthRules::new();
/// let Status::Complete { frame, consumed } = rtu::parse(&bytes, Role::Request, &rules) else {
///     panic!()
/// };
/// assert_eq!((frame.unit_id(), consumed), (1, 8));
/// ```
#[must_use]
pub fn parse<'a>(buf: &'a [u8], role: Role, rules: &LengthRules) -> Status<Adu<&'a [u8]>> {
    match frame_len(buf, role, rules) {
        FrameLength::AtLeast(n) => {
            Status::Incomplete(Needed::at_least(n.saturating_sub(buf.len())))
        }
        FrameLength::Exact(n) if n > MAX_ADU_LEN => Status::Invalid {
            error: FrameError::FrameTooLong { len: n },
            discard: 1,
        },
        FrameLength::Exact(n) => match buf.get(..n) {
            None => Status::Incomplete(Needed::at_least(n.saturating_sub(buf.len()))),
            Some(frame) => {
                let adu = Adu::new_unchecked(frame);
                match adu.verify_crc() {
                    Ok(()) => Status::Complete {
                        frame: adu,
                        consumed: n,
                    },
                    Err(error) => Status::Invalid { error, discard: 1 },
                }
            }
        },
        FrameLength::NotDerivable => scan_by_crc(buf),
        FrameLength::UnknownFunction(function) => Status::Invalid {
            error: FrameError::LengthUnknown { function },
            discard: 1,
        },
    }
}

/// Completes a frame of unknown length at the shortest prefix (of at least 4 bytes) that ends
/// with its own valid CRC.
fn scan_by_crc(buf: &[u8]) -> Status<Adu<&[u8]>> {
    let mut running = RunningCrc::new();
    let mut len = 0usize;
    for byte in buf.iter().take(MAX_ADU_LEN) {
        running.update(core::slice::from_ref(byte));
        len = len.saturating_add(1);
        if len >= MIN_ADU_LEN && running.is_residue_zero() {
            if let Some(frame) = buf.get(..len) {
                return Status::Complete {
                    frame: Adu::new_unchecked(frame),
                    consumed: len,
                };
            }
        }
    }
    if buf.len() >= MAX_ADU_LEN {
        Status::Invalid {
            error: FrameError::FrameTooLong { len: buf.len() },
            discard: 1,
        }
    } else {
        Status::Incomplete(Needed::Unknown)
    }
}

/// Parity of the serial character format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parity {
    /// No parity bit (the specification then asks for two stop bits).
    None,
    /// Even parity: the specification's default.
    #[default]
    Even,
    /// Odd parity.
    Odd,
}

/// Stop bits of the serial character format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopBits {
    /// One stop bit.
    #[default]
    One,
    /// Two stop bits.
    Two,
}

/// RTU line timing: character time, t1.5 (largest gap inside a frame) and t3.5 (silence that
/// ends a frame), `modbus-reference.md` §8.5.
///
/// ```
/// use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
/// use std::time::Duration;
/// let t = Timing::for_line(9600, Parity::Even, StopBits::One);
/// assert_eq!(t.t3_5(), Duration::from_micros(4011));
/// let fast = Timing::for_line(115_200, Parity::Even, StopBits::One);
/// assert_eq!((fast.t1_5(), fast.t3_5()), (Duration::from_micros(750), Duration::from_micros(1750)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    char_time: Duration,
    t1_5: Duration,
    t3_5: Duration,
}

impl Timing {
    /// Timing for a line at `baud` with 8 data bits, `parity` and `stop_bits`.
    ///
    /// The character time counts the real bits (start + 8 + parity + stop, so 8N1 lines get
    /// 10-bit characters, as libmodbus computes it). Above 19200 baud the specification fixes
    /// t1.5 = 750 µs and t3.5 = 1750 µs; at or below it they are 1.5 and 3.5 character times,
    /// rounded up to whole microseconds. A baud rate of 0 is treated as 1.
    #[must_use]
    pub fn for_line(baud: u32, parity: Parity, stop_bits: StopBits) -> Self {
        let parity_bits: u64 = match parity {
            Parity::None => 0,
            Parity::Even | Parity::Odd => 1,
        };
        let stop: u64 = match stop_bits {
            StopBits::One => 1,
            StopBits::Two => 2,
        };
        // start + 8 data + parity + stop: at most 12, so the products below cannot overflow.
        let bits = parity_bits.saturating_add(stop).saturating_add(9);
        let baud = u64::from(baud.max(1));
        let char_time = Duration::from_micros(bits.saturating_mul(1_000_000).div_ceil(baud));
        if baud > 19_200 {
            Self {
                char_time,
                t1_5: Duration::from_micros(750),
                t3_5: Duration::from_micros(1750),
            }
        } else {
            let half_baud = baud.saturating_mul(2);
            Self {
                char_time,
                t1_5: Duration::from_micros(bits.saturating_mul(3_000_000).div_ceil(half_baud)),
                t3_5: Duration::from_micros(bits.saturating_mul(7_000_000).div_ceil(half_baud)),
            }
        }
    }

    /// Timing with explicit limits, for lines that need other values than the specification's.
    /// `t3_5` is raised to `t1_5` if it is smaller.
    #[must_use]
    pub fn from_limits(char_time: Duration, t1_5: Duration, t3_5: Duration) -> Self {
        Self {
            char_time,
            t1_5,
            t3_5: if t3_5 < t1_5 { t1_5 } else { t3_5 },
        }
    }

    /// Widens t1.5 and t3.5 by `tolerance`, for USB serial adapters that deliver bytes in bursts.
    ///
    /// Such adapters hold received bytes for up to their latency timer (often 1–16 ms) and hand
    /// them over together, so the host sees gaps up to `tolerance` longer (or shorter) than they
    /// were on the wire. Widening both limits by the adapter's latency keeps valid frames whole.
    /// The price: a frame is recognised as ended `tolerance` later (slower turnaround), two frames
    /// closer together than the widened t3.5 are only told apart by the length oracle, and a real
    /// t1.5 violation shorter than the tolerance goes unnoticed (the CRC still rejects a frame
    /// whose bytes were corrupted).
    #[must_use]
    #[allow(clippy::arithmetic_side_effects)] // `Duration + Duration` saturates, never overflows.
    pub fn with_burst_tolerance(self, tolerance: Duration) -> Self {
        Self {
            char_time: self.char_time,
            t1_5: self.t1_5 + tolerance,
            t3_5: self.t3_5 + tolerance,
        }
    }

    /// Time one character takes on the wire.
    #[must_use]
    pub const fn char_time(&self) -> Duration {
        self.char_time
    }

    /// Largest gap allowed between two characters of one frame.
    #[must_use]
    pub const fn t1_5(&self) -> Duration {
        self.t1_5
    }

    /// Silence that ends a frame.
    #[must_use]
    pub const fn t3_5(&self) -> Duration {
        self.t3_5
    }
}
