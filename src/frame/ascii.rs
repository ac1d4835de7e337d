//! Modbus ASCII framing: `:`, address, PDU and LRC as hex digits, then CR LF.
//!
//! Each byte travels as two hex characters, high nibble first; the LRC covers the binary bytes
//! (`modbus-reference.md` §9). The encoder writes upper case; the decoder also accepts lower case
//! ("be lenient on input, strict on output"). The decoder keeps the raw characters in a fixed
//! 513-character buffer (the longest frame) and converts them in place when the frame ends, so
//! the [`Adu`] it returns is binary: `address | pdu | lrc`.
//!
//! Rules the decoder follows: characters before `:` are ignored; a `:` in the middle of a frame
//! drops the partial frame and starts a new one; the frame ends at CR followed by the end
//! character (LF unless changed by diagnostics sub-function 03); a gap longer than the
//! inter-character timeout (1 s by default) inside a frame discards it. Call order as for the RTU
//! decoder: [`Decoder::push`], [`Decoder::poll_frame`] until `None`, and
//! [`Decoder::poll_timeout`] / [`Decoder::handle_timeout`] when idle.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::frame::Counters;
use crate::frame::check::{lrc, verify_lrc};
use crate::pdu::MAX_PDU_LEN;
use crate::time::Instant;
use core::time::Duration;

/// The character that starts a frame.
pub const START: u8 = b':';
/// The first end character.
pub const CR: u8 = b'\r';
/// The default second end character.
pub const LF: u8 = b'\n';
/// Longest ASCII frame in characters: `:`, 2 × (address + 253-byte PDU + LRC), CR LF.
pub const MAX_FRAME_CHARS: usize = 513;
/// Longest binary ADU an ASCII frame carries: address, 253-byte PDU, LRC.
pub const MAX_ADU_LEN: usize = MAX_PDU_LEN + 2;
/// Shortest binary ADU: address, function code, LRC.
pub const MIN_ADU_LEN: usize = 3;
/// Default largest gap between two characters of a frame (§9.1: "up to 1 s").
pub const DEFAULT_CHAR_TIMEOUT: Duration = Duration::from_secs(1);

/// Upper-case hex digits, for the encoder.
const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// A view over a decoded ASCII ADU in binary: `address | pdu | lrc`.
///
/// ```
/// use modbus_stack::frame::ascii::Adu;
/// let adu = Adu::new_checked(&[0x01, 0x81, 0x02, 0x7C][..]).unwrap();
/// assert_eq!((adu.unit_id(), adu.pdu(), adu.lrc()), (1, &[0x81, 0x02][..], 0x7C));
/// assert!(adu.verify_lrc().is_ok());
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

    /// Wraps `buffer` after checking it is 3..=255 bytes long.
    ///
    /// # Errors
    ///
    /// [`FrameError::FrameTooShort`] or [`FrameError::FrameTooLong`].
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let len = buffer.as_ref().len();
        if len < MIN_ADU_LEN {
            Err(FrameError::FrameTooShort { len })
        } else if len > MAX_ADU_LEN {
            Err(FrameError::FrameTooLong { len })
        } else {
            Ok(Self::new_unchecked(buffer))
        }
    }

    /// The whole binary ADU, LRC included.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The server address.
    pub fn unit_id(&self) -> u8 {
        self.as_bytes().first().copied().unwrap_or(0)
    }

    /// The bytes the LRC covers: address, function code and data.
    pub fn covered(&self) -> &[u8] {
        let bytes = self.as_bytes();
        bytes
            .get(..bytes.len().saturating_sub(1))
            .unwrap_or_default()
    }

    /// The PDU: function code and data.
    pub fn pdu(&self) -> &[u8] {
        self.covered().get(1..).unwrap_or_default()
    }

    /// The LRC the frame carries.
    pub fn lrc(&self) -> u8 {
        self.as_bytes().last().copied().unwrap_or(0)
    }

    /// Checks the LRC (always succeeds under `cfg(fuzzing)`).
    ///
    /// # Errors
    ///
    /// [`FrameError::LrcMismatch`] with the carried and the computed value.
    pub fn verify_lrc(&self) -> Result<(), FrameError> {
        verify_lrc(self.covered(), self.lrc())
    }
}

impl<'a> Adu<&'a [u8]> {
    /// The PDU with the lifetime of the buffer rather than of the view.
    #[must_use]
    pub fn into_pdu(self) -> &'a [u8] {
        let bytes = self.buffer;
        let covered = bytes
            .get(..bytes.len().saturating_sub(1))
            .unwrap_or_default();
        covered.get(1..).unwrap_or_default()
    }
}

/// Characters the ASCII frame around a PDU of `pdu_len` bytes takes (CR LF included).
#[must_use]
pub const fn encoded_len(pdu_len: usize) -> usize {
    // ':' + 2 × (address + pdu + lrc) + CR LF
    pdu_len
        .saturating_add(2)
        .saturating_mul(2)
        .saturating_add(3)
}

/// Writes the ASCII frame for `unit_id` and `pdu` (upper-case hex, CR LF) to the front of `out`;
/// returns its length.
///
/// ```
/// use modbus_stack::frame::ascii;
/// let mut out = [0u8; 513];
/// let len = ascii::encode(1, &[0x03, 0x00, 0x6B, 0x00, 0x03], &mut out).unwrap();
/// assert_eq!(&out[..len], b":0103006B00038E\r\n");
/// ```
///
/// # Errors
///
/// [`EncodeError::Invalid`] for an empty PDU or one over 253 bytes;
/// [`EncodeError::BufferTooSmall`] when `out` cannot hold the frame.
pub fn encode(unit_id: u8, pdu: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    if pdu.is_empty() {
        return Err(DecodeError::Empty.into());
    }
    if pdu.len() > MAX_PDU_LEN {
        return Err(DecodeError::PduTooLong { len: pdu.len() }.into());
    }
    let len = encoded_len(pdu.len());
    let available = out.len();
    let Some(frame) = out.get_mut(..len) else {
        return Err(EncodeError::BufferTooSmall {
            required: len,
            available,
        });
    };
    let check = lrc(pdu).wrapping_sub(unit_id);
    let bytes = core::iter::once(unit_id)
        .chain(pdu.iter().copied())
        .chain(core::iter::once(check));
    let (start, rest) = frame.split_at_mut(1);
    start.copy_from_slice(&[START]);
    let mut pairs = rest.chunks_exact_mut(2);
    for (pair, byte) in pairs.by_ref().zip(bytes) {
        pair.copy_from_slice(&[hex_digit(byte >> 4), hex_digit(byte & 0x0F)]);
    }
    // The last pair is the end sequence: `len` is odd, so rest has an even length ending in CR LF.
    if let Some(end) = frame.get_mut(len.saturating_sub(2)..) {
        end.copy_from_slice(&[CR, LF]);
    }
    Ok(len)
}

/// The upper-case hex digit for a nibble (only the low four bits are used).
fn hex_digit(nibble: u8) -> u8 {
    HEX_DIGITS
        .get(usize::from(nibble & 0x0F))
        .copied()
        .unwrap_or(b'0')
}

/// The value of a hex digit of either case.
const fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit.wrapping_sub(b'0')),
        b'A'..=b'F' => Some(digit.wrapping_sub(b'A').wrapping_add(10)),
        b'a'..=b'f' => Some(digit.wrapping_sub(b'a').wrapping_add(10)),
        _ => None,
    }
}

/// Configuration of an ASCII [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    end: u8,
    char_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// LF as end character, 1 s inter-character timeout.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            end: LF,
            char_timeout: DEFAULT_CHAR_TIMEOUT,
        }
    }

    /// The character that ends a frame after CR (diagnostics sub-function 03 changes it).
    #[must_use]
    pub const fn with_end_char(mut self, end: u8) -> Self {
        self.end = end;
        self
    }

    /// The largest gap between characters of a frame (wide-area links may need 4–5 s).
    #[must_use]
    pub const fn with_char_timeout(mut self, timeout: Duration) -> Self {
        self.char_timeout = timeout;
        self
    }
}

/// Where the decoder is in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for `:`; everything else is ignored.
    Idle,
    /// After `:`, collecting hex digits.
    Digits,
    /// After CR, expecting the end character.
    Cr,
}

/// What waits for [`Decoder::poll_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// A binary ADU of this length at the front of the buffer.
    Frame(usize),
    Error(FrameError),
}

/// Streaming ASCII decoder with a fixed 513-character buffer.
///
/// ```
/// use modbus_stack::frame::ascii::{Config, Decoder};
/// use modbus_stack::time::Instant;
/// let mut decoder = Decoder::new(Config::new());
/// let frame = b":0181027c\r\n"; // lower case is accepted
/// assert_eq!(decoder.push(Instant::ZERO, frame), frame.len());
/// let adu = decoder.poll_frame().unwrap().unwrap();
/// assert_eq!((adu.unit_id(), adu.pdu()), (1, &[0x81, 0x02][..]));
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    config: Config,
    /// `:` and the hex digits of the frame in progress; the binary ADU after it ends.
    buf: [u8; MAX_FRAME_CHARS],
    len: usize,
    state: State,
    last_char: Option<Instant>,
    pending: Pending,
    /// A delivered frame is still in the buffer; clear it at the next call.
    delivered: bool,
    counters: Counters,
}

impl Decoder {
    /// An idle decoder.
    #[must_use]
    pub const fn new(config: Config) -> Self {
        Self {
            config,
            buf: [0; MAX_FRAME_CHARS],
            len: 0,
            state: State::Idle,
            last_char: None,
            pending: Pending::None,
            delivered: false,
            counters: Counters {
                frames_ok: 0,
                crc_errors: 0,
                other_errors: 0,
            },
        }
    }

    /// Frames delivered and errors seen (LRC errors count as `crc_errors`).
    #[must_use]
    pub const fn counters(&self) -> Counters {
        self.counters
    }

    /// Drops the frame in progress and any frame or error waiting, keeping the configuration
    /// and the counters; for a reopened port.
    pub fn reset(&mut self) {
        *self = Self {
            counters: self.counters,
            ..Self::new(self.config)
        };
    }

    /// `true` when no character of a frame in progress (nor a frame or error waiting) is held.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        matches!(self.state, State::Idle) && matches!(self.pending, Pending::None)
    }

    /// `true` when [`poll_frame`](Self::poll_frame) has a frame or an error to return.
    #[must_use]
    pub const fn is_ready(&self) -> bool {
        !matches!(self.pending, Pending::None)
    }

    /// Changes the end character, for diagnostics sub-function 03; takes effect at once.
    pub fn set_end_char(&mut self, end: u8) {
        self.config.end = end;
    }

    /// Takes characters that arrived at `now`; returns how many were taken. Takes none while a
    /// frame or error waits, and stops right after a frame ends or an error is found.
    pub fn push(&mut self, now: Instant, chars: &[u8]) -> usize {
        self.settle();
        if self.pending != Pending::None || chars.is_empty() {
            return 0;
        }
        if self.state != State::Idle {
            if let Some(last) = self.last_char {
                let gap = now.saturating_duration_since(last);
                if gap > self.config.char_timeout {
                    self.fail(FrameError::InterCharacterGap {
                        gap_micros: crate::time::micros(gap),
                        limit_micros: crate::time::micros(self.config.char_timeout),
                    });
                    return 0;
                }
            }
        }
        self.last_char = Some(now);
        let mut accepted = 0usize;
        for &char in chars {
            accepted = accepted.saturating_add(1);
            self.step(char);
            if self.pending != Pending::None {
                break;
            }
        }
        accepted
    }

    /// The next frame or framing error, if one is ready. The frame borrows the decoder's buffer.
    #[must_use = "a frame not taken now is dropped at the next call"]
    pub fn poll_frame(&mut self) -> Option<Result<Adu<&[u8]>, FrameError>> {
        self.settle();
        match core::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => None,
            Pending::Error(error) => Some(Err(error)),
            Pending::Frame(len) => {
                self.delivered = true;
                Some(Ok(Adu::new_unchecked(
                    self.buf.get(..len).unwrap_or_default(),
                )))
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called: just past the
    /// inter-character timeout after the last character of a frame in progress.
    #[must_use]
    #[allow(clippy::arithmetic_side_effects)] // `Instant + Duration` saturates, never overflows.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Idle || self.pending != Pending::None {
            return None;
        }
        Some(self.last_char? + self.config.char_timeout + Duration::from_micros(1))
    }

    /// Discards the frame in progress if no character came for longer than the timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle();
        if self.state == State::Idle || self.pending != Pending::None {
            return;
        }
        if let Some(last) = self.last_char {
            let gap = now.saturating_duration_since(last);
            if gap > self.config.char_timeout {
                self.fail(FrameError::InterCharacterGap {
                    gap_micros: crate::time::micros(gap),
                    limit_micros: crate::time::micros(self.config.char_timeout),
                });
            }
        }
    }

    fn settle(&mut self) {
        if self.delivered {
            self.delivered = false;
            self.len = 0;
        }
    }

    /// Drops the frame in progress and reports `error`; the decoder then waits for `:`.
    fn fail(&mut self, error: FrameError) {
        self.len = 0;
        self.state = State::Idle;
        self.counters.count_error(error);
        self.pending = Pending::Error(error);
    }

    fn step(&mut self, char: u8) {
        if char == START {
            if self.state != State::Idle {
                // "A ':' received mid-frame discards the partial frame": counted, not reported,
                // since the frame that follows is the one that matters.
                self.counters.other_errors = self.counters.other_errors.wrapping_add(1);
            }
            if let Some(first) = self.buf.first_mut() {
                *first = START;
            }
            self.len = 1;
            self.state = State::Digits;
            return;
        }
        match self.state {
            State::Idle => {}
            State::Digits if char == CR => self.state = State::Cr,
            State::Digits => {
                if hex_value(char).is_none() {
                    self.fail(FrameError::InvalidHexDigit { byte: char });
                } else if let Some(slot) = self.buf.get_mut(self.len) {
                    *slot = char;
                    self.len = self.len.saturating_add(1);
                } else {
                    // Room for CR and the end character is not kept in the buffer, so this is
                    // the 514th character at the earliest once CR LF are counted.
                    self.fail(FrameError::FrameTooLong {
                        len: self.len.saturating_add(3),
                    });
                }
            }
            State::Cr if char == self.config.end => self.finish(),
            State::Cr => self.fail(FrameError::InvalidEnd { byte: char }),
        }
    }

    /// CR and end character seen: convert the digits in place and check the LRC.
    fn finish(&mut self) {
        let digits = self.len.saturating_sub(1);
        if digits % 2 != 0 {
            self.fail(FrameError::OddHexDigits { len: digits });
            return;
        }
        if digits.saturating_add(3) > MAX_FRAME_CHARS {
            self.fail(FrameError::FrameTooLong {
                len: digits.saturating_add(3),
            });
            return;
        }
        let bytes = digits / 2;
        // Byte i is written at index i from digits at 1 + 2i and 2 + 2i, both ≥ i: in place is safe.
        for i in 0..bytes {
            let high = self.digit_at(i.saturating_mul(2).saturating_add(1));
            let low = self.digit_at(i.saturating_mul(2).saturating_add(2));
            if let Some(slot) = self.buf.get_mut(i) {
                *slot = (high << 4) | low;
            }
        }
        if bytes < MIN_ADU_LEN {
            self.fail(FrameError::FrameTooShort { len: bytes });
            return;
        }
        let adu = Adu::new_unchecked(self.buf.get(..bytes).unwrap_or_default());
        if let Err(error) = adu.verify_lrc() {
            self.fail(error);
            return;
        }
        self.len = bytes;
        self.state = State::Idle;
        self.counters.count_ok();
        self.pending = Pending::Frame(bytes);
    }

    /// The nibble of the (already validated) hex digit at `index`.
    fn digit_at(&self, index: usize) -> u8 {
        self.buf
            .get(index)
            .copied()
            .and_then(hex_value)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_counts_delimiters() {
        // ":0181027C\r\n"
        assert_eq!(encoded_len(2), 11);
        assert_eq!(encoded_len(MAX_PDU_LEN), MAX_FRAME_CHARS);
    }

    #[test]
    fn hex_values_of_both_cases() {
        assert_eq!(hex_value(b'a'), Some(10));
        assert_eq!(hex_value(b'F'), Some(15));
        assert_eq!(hex_value(b'g'), None);
    }
}
