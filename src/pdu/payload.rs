//! Zero-copy payload views: [`Registers`] and [`Coils`].
//!
//! A decoded PDU does not copy its data: a view borrows the bytes of the received buffer and
//! converts on access. The same types also wrap caller data (`&[u16]`, `&[bool]`) so a request or
//! response can be encoded without first packing it into a scratch buffer. Accessors return data
//! with the lifetime of the underlying buffer, not of the view, so a view can be dropped while its
//! values live on.

use core::fmt;
use core::ops::Range;

use crate::error::DecodeError;

/// Wire bytes of `quantity` registers, two each.
///
/// Exact wherever `usize` has 32 bits or more. Where it has 16, a quantity above 32 767
/// saturates to `usize::MAX`, a length no PDU (at most [`MAX_PDU_LEN`](super::MAX_PDU_LEN)
/// bytes) has, so the byte-count and length checks every caller makes reject it.
#[inline]
pub(crate) fn register_bytes(quantity: u16) -> usize {
    usize::from(quantity).saturating_mul(2)
}

/// A sequence of 16-bit registers: big-endian words on the wire, or caller-owned `u16`s.
///
/// ```
/// use modbus_stack::pdu::Registers;
/// let wire: [u8; 6] = [0x02, 0x2B, 0x00, 0x00, 0x00, 0x64];
/// let regs = Registers::try_from(&wire[..]).unwrap();
/// assert_eq!(regs.len(), 3);
/// assert_eq!(regs.get(0), Some(555));
/// assert!(regs.iter().eq([555, 0, 100]));
/// assert_eq!(regs, Registers::from_words(&[555, 0, 100]));
/// ```
#[derive(Clone, Copy)]
pub struct Registers<'a> {
    repr: RegistersRepr<'a>,
}

#[derive(Clone, Copy)]
enum RegistersRepr<'a> {
    /// Big-endian words as received; even length is an invariant of construction.
    Wire(&'a [u8]),
    Words(&'a [u16]),
}

impl<'a> Registers<'a> {
    /// Wraps caller-owned register values, for encoding without a scratch buffer.
    #[must_use]
    pub const fn from_words(words: &'a [u16]) -> Self {
        Self {
            repr: RegistersRepr::Words(words),
        }
    }

    /// Number of registers.
    #[must_use]
    pub const fn len(&self) -> usize {
        match self.repr {
            RegistersRepr::Wire(bytes) => bytes.len() / 2,
            RegistersRepr::Words(words) => words.len(),
        }
    }

    /// `true` when there are no registers.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of bytes the registers take on the wire (two per register).
    #[must_use]
    pub const fn byte_len(&self) -> usize {
        match self.repr {
            RegistersRepr::Wire(bytes) => bytes.len(),
            RegistersRepr::Words(words) => words.len().saturating_mul(2),
        }
    }

    /// The register at `index`, or `None` past the end.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<u16> {
        match self.repr {
            RegistersRepr::Wire(bytes) => {
                let start = index.checked_mul(2)?;
                let pair = bytes.get(start..start.checked_add(2)?)?;
                Some(u16::from_be_bytes([*pair.first()?, *pair.get(1)?]))
            }
            RegistersRepr::Words(words) => words.get(index).copied(),
        }
    }

    /// Iterates over the register values.
    #[must_use]
    pub fn iter(&self) -> RegisterIter<'a> {
        RegisterIter { repr: self.repr }
    }

    /// The big-endian bytes as received, when this view was decoded from the wire.
    #[must_use]
    pub const fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            RegistersRepr::Wire(bytes) => Some(bytes),
            RegistersRepr::Words(_) => None,
        }
    }

    /// Copies the values into `out`, as many as fit; returns how many were copied.
    ///
    /// This is the fast way out of a view: the conversion runs over whole slices so the
    /// compiler can vectorise it.
    pub fn copy_to(&self, out: &mut [u16]) -> usize {
        let n = self.len().min(out.len());
        match self.repr {
            RegistersRepr::Wire(bytes) => {
                for (word, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    if let &[high, low] = pair {
                        *word = u16::from_be_bytes([high, low]);
                    }
                }
            }
            RegistersRepr::Words(words) => {
                for (word, value) in out.iter_mut().zip(words) {
                    *word = *value;
                }
            }
        }
        n
    }

    /// Writes the big-endian wire bytes into `out`, which must be exactly
    /// [`byte_len`](Self::byte_len) long (callers in this crate check it first).
    pub(crate) fn write_wire(&self, out: &mut [u8]) {
        match self.repr {
            RegistersRepr::Wire(bytes) => out.copy_from_slice(bytes),
            RegistersRepr::Words(words) => {
                for (pair, word) in out.chunks_exact_mut(2).zip(words) {
                    pair.copy_from_slice(&word.to_be_bytes());
                }
            }
        }
    }
}

impl<'a> TryFrom<&'a [u8]> for Registers<'a> {
    type Error = DecodeError;

    /// Views big-endian register bytes; fails on an odd length.
    fn try_from(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() % 2 != 0 {
            return Err(DecodeError::OddRegisterBytes { len: bytes.len() });
        }
        Ok(Self {
            repr: RegistersRepr::Wire(bytes),
        })
    }
}

impl<'a> From<&'a [u16]> for Registers<'a> {
    fn from(words: &'a [u16]) -> Self {
        Self::from_words(words)
    }
}

impl PartialEq for Registers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Registers<'_> {}

impl fmt::Debug for Registers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Registers<'a> {
    type Item = u16;
    type IntoIter = RegisterIter<'a>;
    fn into_iter(self) -> RegisterIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Registers<'a> {
    type Item = u16;
    type IntoIter = RegisterIter<'a>;
    fn into_iter(self) -> RegisterIter<'a> {
        self.iter()
    }
}

/// Iterator over the values of a [`Registers`] view.
#[derive(Debug, Clone)]
pub struct RegisterIter<'a> {
    repr: RegistersRepr<'a>,
}

impl fmt::Debug for RegistersRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wire(bytes) => f.debug_tuple("Wire").field(bytes).finish(),
            Self::Words(words) => f.debug_tuple("Words").field(words).finish(),
        }
    }
}

impl Iterator for RegisterIter<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        match &mut self.repr {
            RegistersRepr::Wire(bytes) => {
                let (pair, rest) = bytes.split_first_chunk::<2>()?;
                *bytes = rest;
                Some(u16::from_be_bytes(*pair))
            }
            RegistersRepr::Words(words) => {
                let (first, rest) = words.split_first()?;
                *words = rest;
                Some(*first)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = Registers { repr: self.repr }.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for RegisterIter<'_> {}

/// A sequence of bits (coils, discrete inputs): packed LSB-first on the wire, or caller `bool`s.
///
/// On the wire the first item is bit 0 of the first byte (`modbus-reference.md` §1.3). Padding
/// bits of the last byte are not part of the value: they are ignored by comparisons and
/// preserved when a decoded view is re-encoded, so nothing received is silently altered.
///
/// ```
/// use modbus_stack::pdu::Coils;
/// // Spec example: coils 20..=38, 0xCD 0x6B 0x05.
/// let coils = Coils::new(&[0xCD, 0x6B, 0x05], 19).unwrap();
/// assert_eq!(coils.get(0), Some(true));
/// assert_eq!(coils.get(1), Some(false));
/// assert_eq!(coils.iter().filter(|&on| on).count(), 12);
/// ```
#[derive(Clone, Copy)]
pub struct Coils<'a> {
    repr: CoilsRepr<'a>,
}

#[derive(Clone, Copy)]
enum CoilsRepr<'a> {
    /// `bytes.len() == count.div_ceil(8)` is an invariant of construction.
    Packed {
        bytes: &'a [u8],
        count: usize,
    },
    Bools(&'a [bool]),
}

impl<'a> Coils<'a> {
    /// Views `count` bits packed LSB-first in `bytes`.
    ///
    /// # Errors
    /// [`DecodeError::CoilBytesMismatch`] unless `bytes.len() == count.div_ceil(8)`.
    pub fn new(bytes: &'a [u8], count: usize) -> Result<Self, DecodeError> {
        let expected = count.div_ceil(8);
        if bytes.len() != expected {
            return Err(DecodeError::CoilBytesMismatch {
                count,
                len: bytes.len(),
            });
        }
        Ok(Self {
            repr: CoilsRepr::Packed { bytes, count },
        })
    }

    /// Wraps caller-owned bit values, for encoding without a scratch buffer.
    #[must_use]
    pub const fn from_bools(bits: &'a [bool]) -> Self {
        Self {
            repr: CoilsRepr::Bools(bits),
        }
    }

    /// Number of bits.
    #[must_use]
    pub const fn len(&self) -> usize {
        match self.repr {
            CoilsRepr::Packed { count, .. } => count,
            CoilsRepr::Bools(bits) => bits.len(),
        }
    }

    /// `true` when there are no bits.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of bytes the bits take on the wire.
    #[must_use]
    pub const fn byte_len(&self) -> usize {
        self.len().div_ceil(8)
    }

    /// The bit at `index`, or `None` past the end.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<bool> {
        if index >= self.len() {
            return None;
        }
        match self.repr {
            CoilsRepr::Packed { bytes, .. } => {
                Some(bytes.get(index / 8)? & (1 << (index % 8)) != 0)
            }
            CoilsRepr::Bools(bits) => bits.get(index).copied(),
        }
    }

    /// Iterates over the bits.
    #[must_use]
    pub fn iter(&self) -> CoilIter<'a> {
        CoilIter {
            coils: *self,
            indices: 0..self.len(),
        }
    }

    /// The packed bytes as received, when this view was decoded from the wire.
    #[must_use]
    pub const fn packed_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            CoilsRepr::Packed { bytes, .. } => Some(bytes),
            CoilsRepr::Bools(_) => None,
        }
    }

    /// Unpacks the bits into `out`, as many as fit; returns how many were written.
    ///
    /// Whole bytes are expanded eight bits at a time; this is the fast way out of a view.
    pub fn copy_to(&self, out: &mut [bool]) -> usize {
        let n = self.len().min(out.len());
        let Some(out) = out.get_mut(..n) else {
            return 0;
        };
        match self.repr {
            CoilsRepr::Packed { bytes, .. } => unpack_bits(bytes, out),
            CoilsRepr::Bools(bits) => {
                if let Some(bits) = bits.get(..n) {
                    out.copy_from_slice(bits);
                }
            }
        }
        n
    }

    /// Writes the packed wire bytes into `out`, which must be exactly
    /// [`byte_len`](Self::byte_len) long (callers in this crate check it first).
    pub(crate) fn write_wire(&self, out: &mut [u8]) {
        match self.repr {
            CoilsRepr::Packed { bytes, .. } => out.copy_from_slice(bytes),
            CoilsRepr::Bools(bits) => {
                for (byte, chunk) in out.iter_mut().zip(bits.chunks(8)) {
                    *byte = chunk
                        .iter()
                        .enumerate()
                        .fold(0u8, |acc, (bit, &on)| acc | (u8::from(on) << bit));
                }
            }
        }
    }
}

/// `UNPACKED[b]` is byte `b` as eight bits, LSB first: one load and one 8-byte store per wire
/// byte instead of a shift, mask and compare per bit (2 KiB of read-only data).
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: a bad index is a build error, never a run-time panic"
)]
static UNPACKED: [[bool; 8]; 256] = {
    let mut table = [[false; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut bit = 0;
        while bit < 8 {
            table[byte][bit] = byte & (1 << bit) != 0;
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// Unpacks whole bytes from `bytes` into `out`, eight bits each, `N` bytes (`M == 8 * N` bits)
/// per step so the loop body is straight-line table copies; returns how many bytes it did.
#[inline]
fn unpack_groups<const N: usize, const M: usize>(bytes: &[u8], out: &mut [bool]) -> usize {
    // The zip below runs exactly this many steps.
    let groups = out
        .len()
        .checked_div(M)
        .unwrap_or(0)
        .min(bytes.len().checked_div(N).unwrap_or(0));
    for (chunk, group) in out.chunks_exact_mut(M).zip(bytes.chunks_exact(N)) {
        for (slots, &byte) in chunk.chunks_exact_mut(8).zip(group) {
            if let (Ok(slots), Some(bits)) = (
                <&mut [bool; 8]>::try_from(slots),
                UNPACKED.get(usize::from(byte)),
            ) {
                *slots = *bits;
            }
        }
    }
    groups.saturating_mul(N)
}

/// Unpacks LSB-first `bytes` into `out`, which holds at most `8 * bytes.len()` bits.
fn unpack_bits(bytes: &[u8], out: &mut [bool]) {
    // Eight bytes (64 bits) per step while they last, then single bytes, then a partial byte.
    let done = unpack_groups::<8, 64>(bytes, out);
    let (bytes, out) = (
        bytes.get(done..).unwrap_or_default(),
        out.get_mut(done.saturating_mul(8)..).unwrap_or_default(),
    );
    let done = unpack_groups::<1, 8>(bytes, out);
    if let (Some(&byte), Some(rest)) = (bytes.get(done), out.get_mut(done.saturating_mul(8)..)) {
        for (bit, slot) in rest.iter_mut().take(8).enumerate() {
            *slot = byte & (1 << bit) != 0;
        }
    }
}

impl<'a> From<&'a [bool]> for Coils<'a> {
    fn from(bits: &'a [bool]) -> Self {
        Self::from_bools(bits)
    }
}

impl PartialEq for Coils<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Coils<'_> {}

impl fmt::Debug for Coils<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(u8::from)).finish()
    }
}

impl<'a> IntoIterator for Coils<'a> {
    type Item = bool;
    type IntoIter = CoilIter<'a>;
    fn into_iter(self) -> CoilIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Coils<'a> {
    type Item = bool;
    type IntoIter = CoilIter<'a>;
    fn into_iter(self) -> CoilIter<'a> {
        self.iter()
    }
}

/// Iterator over the bits of a [`Coils`] view.
#[derive(Clone)]
pub struct CoilIter<'a> {
    coils: Coils<'a>,
    /// The indices not yet yielded; `Range` steps without arithmetic that could overflow.
    indices: Range<usize>,
}

impl fmt::Debug for CoilIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoilIter")
            .field("remaining", &self.len())
            .finish()
    }
}

impl Iterator for CoilIter<'_> {
    type Item = bool;

    fn next(&mut self) -> Option<bool> {
        self.coils.get(self.indices.next()?)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.indices.size_hint()
    }
}

impl ExactSizeIterator for CoilIter<'_> {}
