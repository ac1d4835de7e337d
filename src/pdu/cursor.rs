//! Bounds-checked reading and writing of PDU fields.
//!
//! Every decoder reads through [`Reader`], so a short PDU becomes
//! [`DecodeError::Truncated`] with the exact byte count instead of a panic, and every encoder
//! writes through [`Writer`], which reports a too-small buffer instead of panicking.

use super::FunctionCode;
use crate::error::{DecodeError, EncodeError};

/// Reads big-endian fields from a PDU, tracking the offset for error messages.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    total: usize,
    function: FunctionCode,
}

impl<'a> Reader<'a> {
    /// A reader positioned after the function code byte of `pdu` (which the caller has read).
    pub(crate) fn after_function(pdu: &'a [u8], function: FunctionCode) -> Self {
        Self {
            rest: pdu.get(1..).unwrap_or_default(),
            total: pdu.len(),
            function,
        }
    }

    fn offset(&self) -> usize {
        // `rest` is always a suffix of the `total`-byte PDU: `after_function` starts it so, and
        // every read only shortens it. A plain subtraction (unlike `offset_of`'s saturating
        // one) lets the compiler fold offsets to constants on the fixed-layout decode paths.
        #[allow(clippy::arithmetic_side_effects)]
        let offset = self.total - self.rest.len();
        offset
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&byte, tail) = self.rest.split_first().ok_or(DecodeError::Truncated {
            function: self.function,
            needed: self.offset().saturating_add(1),
            actual: self.total,
        })?;
        self.rest = tail;
        Ok(byte)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let (pair, tail) = self
            .rest
            .split_first_chunk::<2>()
            .ok_or(DecodeError::Truncated {
                function: self.function,
                needed: self.offset().saturating_add(2),
                actual: self.total,
            })?;
        self.rest = tail;
        Ok(u16::from_be_bytes(*pair))
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                function: self.function,
                expected: self.offset(),
                actual: self.total,
            })
        }
    }

    /// Checks that exactly `n` bytes remain, reporting truncation or trailing data.
    pub(crate) fn expect_remaining(&self, n: usize) -> Result<(), DecodeError> {
        let expected = self.offset().saturating_add(n);
        match self.rest.len().cmp(&n) {
            core::cmp::Ordering::Equal => Ok(()),
            core::cmp::Ordering::Less => Err(DecodeError::Truncated {
                function: self.function,
                needed: expected,
                actual: self.total,
            }),
            core::cmp::Ordering::Greater => Err(DecodeError::TrailingBytes {
                function: self.function,
                expected,
                actual: self.total,
            }),
        }
    }
}

/// Writes big-endian fields into a caller buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next `n` bytes of the buffer, advancing past them.
    pub(crate) fn slot(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let end = self.pos.saturating_add(n);
        let available = self.buf.len();
        let slot = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall {
                required: end,
                available,
            })?;
        self.pos = end;
        Ok(slot)
    }

    pub(crate) fn u8(&mut self, value: u8) -> Result<(), EncodeError> {
        self.slot(1)?.copy_from_slice(&[value]);
        Ok(())
    }

    pub(crate) fn u16(&mut self, value: u16) -> Result<(), EncodeError> {
        self.slot(2)?.copy_from_slice(&value.to_be_bytes());
        Ok(())
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.slot(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

/// How far into a buffer of `total` bytes its suffix `rest` starts: `total − rest.len()`.
///
/// Every caller passes a `rest` that ends the buffer, so this never saturates; it saturates
/// rather than wraps only so that no length arithmetic can overflow. The callers are error
/// paths, where saturating costs nothing that matters, and their further arithmetic on an
/// offset saturates too: an offset is at most a slice length (≤ `isize::MAX`), so adding a
/// field size never reaches `usize::MAX`.
pub(crate) const fn offset_of(total: usize, rest: &[u8]) -> usize {
    total.saturating_sub(rest.len())
}

/// Converts a length known to be small (bounded by [`super::MAX_PDU_LEN`]) to a one-byte count
/// field, failing loudly rather than truncating.
pub(crate) fn byte_count(function: FunctionCode, len: usize) -> Result<u8, DecodeError> {
    u8::try_from(len).map_err(|_| DecodeError::ResponseTooLong { function, len })
}
