//! Typed register data: numbers, strings and bits spread over 16-bit registers.
//!
//! Modbus moves bare 16-bit registers; what they mean is up to the device. This module turns
//! registers into `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32` and `f64` values and back in
//! every byte/word [`Order`], packs fixed-length strings two bytes per register
//! ([`StringFormat`]), reads and sets single bits of a register, and applies an optional linear
//! [`Scale`] for engineering units.
//!
//! Everything works on a decoded [`Registers`] view and on plain `&[u16]` (any
//! [`RegisterSource`]); encoding writes into a caller `&mut [u16]`. Nothing allocates and
//! nothing panics on bad input: a short source, a string that does not fit or a value that a
//! register type cannot hold is a [`ValueError`]. For bulk data, [`decode_slice`] and
//! [`decode_registers`] convert whole arrays in a loop the compiler vectorises.
//!
//! ```
//! use modbus_stack::value::{self, Order};
//! // π as a big-endian f32 in two registers.
//! let pi: f32 = value::decode(&[0x4049, 0x0FDB], Order::Abcd).unwrap();
//! assert!((pi - core::f32::consts::PI).abs() < 1e-6);
//! let mut regs = [0u16; 2];
//! value::encode(3.14159_f32, Order::Cdab, &mut regs).unwrap();
//! assert_eq!(regs, [0x0FD0, 0x4049]);
//! ```

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::fmt;

use crate::pdu::Registers;

mod number;
mod order;
mod scale;
mod string;

pub use number::Rounding;
pub use order::{ByteOrder, Order, WordOrder};
pub use scale::{Scale, decode_scaled, decode_scaled_at, encode_scaled};
pub use string::{
    StringFormat, Trim, decode_bytes, decode_bytes_at, decode_str, decode_str_at, encode_bytes,
    encode_str,
};

/// Why registers could not be converted to or from a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The source ends before the value does.
    #[error("{needed} registers needed, {available} available")]
    NotEnoughRegisters {
        /// Registers the value takes.
        needed: usize,
        /// Registers present from the requested index (or room in the output).
        available: usize,
    },
    /// The caller's byte buffer cannot hold the decoded string.
    #[error("buffer of {available} bytes is too small, {required} needed")]
    BufferTooSmall {
        /// Bytes the string takes.
        required: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The text is longer than the registers reserved for it.
    #[error("string of {len} bytes does not fit in {capacity} bytes")]
    StringTooLong {
        /// Length of the text in bytes.
        len: usize,
        /// Bytes the registers hold (two per register).
        capacity: usize,
    },
    /// The string bytes are not UTF-8.
    #[error("string is not utf-8: invalid byte after {valid_up_to} valid bytes")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A bit number beyond 15: a register has bits 0 (least significant) to 15.
    #[error("bit {bit} is outside a 16-bit register (0..=15)")]
    BitOutOfRange {
        /// The bit number given.
        bit: u8,
    },
    /// NaN or an infinity was to be stored in an integer register type.
    #[error("a non-finite value cannot be stored as {data_type}")]
    NotFinite {
        /// The register type.
        data_type: DataType,
    },
    /// The (scaled, rounded) value lies outside the register type's range.
    #[error("value out of range for {data_type}")]
    OutOfRange {
        /// The register type.
        data_type: DataType,
    },
    /// [`Rounding::Exact`] was asked for and the value is not exactly representable.
    #[error("value is not exactly representable as {data_type}")]
    Inexact {
        /// The register type.
        data_type: DataType,
    },
    /// A scale factor of zero or a non-finite scale or offset: the conversion could not be
    /// inverted for writing.
    #[error("scale must be finite and non-zero, offset finite")]
    InvalidScale,
}

/// The numeric register types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit (two's complement), one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// Unsigned 64-bit, four registers.
    U64,
    /// Signed 64-bit, four registers.
    I64,
    /// IEEE 754 single precision, two registers.
    F32,
    /// IEEE 754 double precision, four registers.
    F64,
}

impl DataType {
    /// Every numeric type.
    pub const ALL: [Self; 8] = [
        Self::U16,
        Self::I16,
        Self::U32,
        Self::I32,
        Self::U64,
        Self::I64,
        Self::F32,
        Self::F64,
    ];

    /// Registers one value of this type takes.
    #[must_use]
    pub const fn registers(self) -> u16 {
        match self {
            Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
            Self::U64 | Self::I64 | Self::F64 => 4,
        }
    }

    /// The Rust name of the type (`"u16"`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    // Unnameable on purpose: that is what seals `Value`.
    #[allow(unnameable_types)]
    /// Keeps [`Value`](super::Value) closed: the slice paths rely on `REGISTERS >= 1` and on
    /// `Words` being exactly `[u16; REGISTERS]`.
    pub trait Sealed {}

    // Unnameable on purpose, as `Sealed`.
    #[allow(unnameable_types)]
    /// `u16`, `u32`, `u64` seen as lanes of 16 bits, lane 0 least significant.
    pub trait Bits: Copy {
        /// `[u8; size_of::<Self>()]`.
        type Bytes: Default + AsMut<[u8]>;
        /// The integer whose little-endian bytes are `bytes`.
        fn from_le_byte_array(bytes: Self::Bytes) -> Self;
        /// Swaps the two bytes of every lane.
        fn swap_lane_bytes(self) -> Self;
        /// Reverses the order of the lanes.
        fn reverse_lanes(self) -> Self;
    }

    impl Bits for u16 {
        type Bytes = [u8; 2];
        fn from_le_byte_array(bytes: [u8; 2]) -> Self {
            Self::from_le_bytes(bytes)
        }
        fn swap_lane_bytes(self) -> Self {
            self.swap_bytes()
        }
        fn reverse_lanes(self) -> Self {
            self
        }
    }

    impl Bits for u32 {
        type Bytes = [u8; 4];
        fn from_le_byte_array(bytes: [u8; 4]) -> Self {
            Self::from_le_bytes(bytes)
        }
        fn swap_lane_bytes(self) -> Self {
            ((self & 0x00FF_00FF) << 8) | ((self >> 8) & 0x00FF_00FF)
        }
        fn reverse_lanes(self) -> Self {
            self.rotate_left(16)
        }
    }

    impl Bits for u64 {
        type Bytes = [u8; 8];
        fn from_le_byte_array(bytes: [u8; 8]) -> Self {
            Self::from_le_bytes(bytes)
        }
        fn swap_lane_bytes(self) -> Self {
            ((self & 0x00FF_00FF_00FF_00FF) << 8) | ((self >> 8) & 0x00FF_00FF_00FF_00FF)
        }
        fn reverse_lanes(self) -> Self {
            // Reversing all bytes reverses the lanes and swaps bytes within them; undo the latter.
            self.swap_bytes().swap_lane_bytes()
        }
    }
}

use sealed::Bits as _;

/// A number stored in one or more registers: `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`,
/// `f64`.
///
/// The conversions are exact bit copies: floats keep their NaN payloads and signed zeros.
/// The trait is sealed; use the free functions ([`decode`], [`encode`], ...) rather than its
/// methods, which work in logical order (most significant word first, [`Order::Abcd`]).
pub trait Value: Copy + sealed::Sealed {
    /// The matching [`DataType`].
    const DATA_TYPE: DataType;
    /// Registers one value takes.
    const REGISTERS: usize;
    /// The value's registers, `[u16; REGISTERS]`.
    type Words: Copy + Default + AsRef<[u16]> + AsMut<[u16]>;
    /// The unsigned integer of the same width, for the bulk wire path.
    type Bits: sealed::Bits;

    /// The value from its registers in [`Order::Abcd`].
    fn from_words(words: Self::Words) -> Self;
    /// The value's registers in [`Order::Abcd`].
    fn to_words(self) -> Self::Words;
    /// The value from the unsigned integer with the same bits.
    fn from_bits(bits: Self::Bits) -> Self;
    /// The value as an `f64`, for scaling (exact except for integers beyond 2⁵³).
    fn to_f64(self) -> f64;
    /// The value nearest to `value` (integers: per `rounding`).
    ///
    /// # Errors
    /// [`ValueError::NotFinite`], [`ValueError::OutOfRange`] or [`ValueError::Inexact`].
    fn from_f64(value: f64, rounding: Rounding) -> Result<Self, ValueError>;
}

/// Anything registers can be read from: `[u16]`, `[u16; N]`, a [`Registers`] view (and, with
/// `std`, `Vec<u16>`).
pub trait RegisterSource {
    /// Number of registers.
    fn register_count(&self) -> usize;
    /// The register at `index`, or `None` past the end.
    fn register(&self, index: usize) -> Option<u16>;
}

impl RegisterSource for [u16] {
    fn register_count(&self) -> usize {
        self.len()
    }
    fn register(&self, index: usize) -> Option<u16> {
        self.get(index).copied()
    }
}

impl<const N: usize> RegisterSource for [u16; N] {
    fn register_count(&self) -> usize {
        N
    }
    fn register(&self, index: usize) -> Option<u16> {
        self.get(index).copied()
    }
}

impl RegisterSource for Registers<'_> {
    fn register_count(&self) -> usize {
        self.len()
    }
    fn register(&self, index: usize) -> Option<u16> {
        self.get(index)
    }
}

#[cfg(feature = "std")]
impl RegisterSource for std::vec::Vec<u16> {
    fn register_count(&self) -> usize {
        self.len()
    }
    fn register(&self, index: usize) -> Option<u16> {
        self.get(index).copied()
    }
}

/// Copies `out.len()` registers starting at `index`, or says how many were there.
fn read_words<R: RegisterSource + ?Sized>(
    registers: &R,
    index: usize,
    out: &mut [u16],
) -> Result<(), ValueError> {
    let available = registers.register_count().saturating_sub(index);
    let not_enough = ValueError::NotEnoughRegisters {
        needed: out.len(),
        available,
    };
    if available < out.len() {
        return Err(not_enough);
    }
    for (offset, word) in out.iter_mut().enumerate() {
        let at = index.checked_add(offset).ok_or(not_enough)?;
        *word = registers.register(at).ok_or(not_enough)?;
    }
    Ok(())
}

/// Decodes the value in the first registers of `registers`.
///
/// Registers after the value are ignored.
///
/// ```
/// use modbus_stack::value::{self, Order};
/// assert_eq!(value::decode::<i32, _>(&[0xFFFF, 0xFFFF], Order::Abcd), Ok(-1));
/// assert_eq!(value::decode::<u16, _>(&[0x3412], Order::BA), Ok(0x1234));
/// ```
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when the source is shorter than the value.
pub fn decode<T: Value, R: RegisterSource + ?Sized>(
    registers: &R,
    order: Order,
) -> Result<T, ValueError> {
    decode_at(registers, 0, order)
}

/// Decodes the value whose first register is `registers[index]`.
///
/// ```
/// use modbus_stack::pdu::Registers;
/// use modbus_stack::value::{self, Order};
/// let wire: [u8; 6] = [0x00, 0x01, 0x40, 0x49, 0x0F, 0xDB];
/// let regs = Registers::try_from(&wire[..]).unwrap();
/// let pi: f32 = value::decode_at(&regs, 1, Order::Abcd).unwrap();
/// assert_eq!(pi, core::f32::consts::PI);
/// ```
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when the source ends before the value does.
pub fn decode_at<T: Value, R: RegisterSource + ?Sized>(
    registers: &R,
    index: usize,
    order: Order,
) -> Result<T, ValueError> {
    let mut words = T::Words::default();
    read_words(registers, index, words.as_mut())?;
    Ok(from_wire(words, order))
}

/// Encodes `value` into the first registers of `out`; returns the number of registers written.
///
/// ```
/// use modbus_stack::value::{self, Order};
/// let mut out = [0u16; 4];
/// assert_eq!(value::encode(u64::MAX - 1, Order::HGFEDCBA, &mut out), Ok(4));
/// assert_eq!(out, [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF]);
/// ```
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when `out` is shorter than the value.
pub fn encode<T: Value>(value: T, order: Order, out: &mut [u16]) -> Result<usize, ValueError> {
    let words = to_wire(value, order);
    let available = out.len();
    let slot = out
        .get_mut(..T::REGISTERS)
        .ok_or(ValueError::NotEnoughRegisters {
            needed: T::REGISTERS,
            available,
        })?;
    slot.copy_from_slice(words.as_ref());
    Ok(T::REGISTERS)
}

/// The registers of `value` in `order`, as an array (`[u16; T::REGISTERS]`).
///
/// ```
/// use modbus_stack::value::{self, Order};
/// assert_eq!(value::to_registers(0x1234_5678_u32, Order::Badc), [0x3412, 0x7856]);
/// ```
#[must_use]
pub fn to_registers<T: Value>(value: T, order: Order) -> T::Words {
    to_wire(value, order)
}

#[inline]
fn from_wire<T: Value>(mut words: T::Words, order: Order) -> T {
    let (reverse, swap) = flags(order);
    order::arrange(words.as_mut(), reverse, swap);
    T::from_words(words)
}

#[inline]
fn to_wire<T: Value>(value: T, order: Order) -> T::Words {
    let mut words = value.to_words();
    let (reverse, swap) = flags(order);
    order::arrange(words.as_mut(), reverse, swap);
    words
}

#[inline]
const fn flags(order: Order) -> (bool, bool) {
    (
        matches!(order.word_order(), WordOrder::LowWordFirst),
        matches!(order.byte_order(), ByteOrder::LowByteFirst),
    )
}

/// Runs `$body` with `$rev`/`$swap` bound to constants for `$order`, so each order gets its
/// own loop without a branch inside (the branch-free loop is what the compiler vectorises).
macro_rules! per_order {
    ($order:expr, $f:ident, $($arg:expr),*) => {
        match $order {
            Order::Abcd => $f::<T, false, false>($($arg),*),
            Order::Cdab => $f::<T, true, false>($($arg),*),
            Order::Badc => $f::<T, false, true>($($arg),*),
            Order::Dcba => $f::<T, true, true>($($arg),*),
        }
    };
}

/// Decodes consecutive values from `registers` into `out`; returns how many were written.
///
/// Stops at whichever runs out first: `out`, or whole values in `registers` (a trailing partial
/// value is ignored). This is the bulk path: one branch-free loop per order.
///
/// ```
/// use modbus_stack::value::{self, Order};
/// let regs = [0x0FDB, 0x4049, 0x0000, 0x3F80, 0xFFFF];
/// let mut out = [0f32; 4];
/// assert_eq!(value::decode_slice(&regs, Order::Cdab, &mut out), 2);
/// assert_eq!(out[..2], [core::f32::consts::PI, 1.0]);
/// ```
pub fn decode_slice<T: Value>(registers: &[u16], order: Order, out: &mut [T]) -> usize {
    per_order!(order, decode_words_into, registers, out)
}

/// Decodes consecutive values from a [`Registers`] view into `out`; returns how many were
/// written. Views of received bytes are converted straight from the wire bytes.
///
/// ```
/// use modbus_stack::pdu::Registers;
/// use modbus_stack::value::{self, Order};
/// let wire: [u8; 4] = [0x0F, 0xDB, 0x40, 0x49];
/// let mut out = [0f32; 1];
/// let n = value::decode_registers(Registers::try_from(&wire[..]).unwrap(), Order::Cdab, &mut out);
/// assert_eq!((n, out[0]), (1, core::f32::consts::PI));
/// ```
pub fn decode_registers<T: Value>(registers: Registers<'_>, order: Order, out: &mut [T]) -> usize {
    if let Some(bytes) = registers.wire_bytes() {
        return per_order!(order, decode_bytes_into, bytes, out);
    }
    // A words view: decode value by value through the view's accessor.
    let mut written = 0;
    for (index, slot) in out.iter_mut().enumerate() {
        let Some(start) = index.checked_mul(T::REGISTERS) else {
            break;
        };
        match decode_at(&registers, start, order) {
            Ok(value) => *slot = value,
            Err(_) => break,
        }
        written = index.saturating_add(1);
    }
    written
}

/// Encodes `values` one after the other into `out`; returns the number of registers written.
///
/// ```
/// use modbus_stack::value::{self, Order};
/// let mut out = [0u16; 4];
/// assert_eq!(value::encode_slice(&[1i32, -2], Order::Cdab, &mut out), Ok(4));
/// assert_eq!(out, [0x0001, 0x0000, 0xFFFE, 0xFFFF]);
/// ```
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when `out` cannot hold every value (nothing is written).
pub fn encode_slice<T: Value>(
    values: &[T],
    order: Order,
    out: &mut [u16],
) -> Result<usize, ValueError> {
    let needed = values.len().saturating_mul(T::REGISTERS);
    let available = out.len();
    let out = out
        .get_mut(..needed)
        .ok_or(ValueError::NotEnoughRegisters { needed, available })?;
    per_order!(order, encode_into, values, out);
    Ok(needed)
}

#[inline]
fn decode_words_into<T: Value, const REVERSE: bool, const SWAP: bool>(
    registers: &[u16],
    out: &mut [T],
) -> usize {
    let mut written = 0;
    for (slot, chunk) in out.iter_mut().zip(registers.chunks_exact(T::REGISTERS)) {
        let mut words = T::Words::default();
        for (word, &register) in words.as_mut().iter_mut().zip(chunk) {
            *word = register;
        }
        order::arrange(words.as_mut(), REVERSE, SWAP);
        *slot = T::from_words(words);
        written += 1;
    }
    written
}

#[inline]
fn decode_bytes_into<T: Value, const REVERSE: bool, const SWAP: bool>(
    bytes: &[u8],
    out: &mut [T],
) -> usize {
    let mut written = 0;
    let value_bytes = T::REGISTERS.saturating_mul(2);
    for (slot, chunk) in out.iter_mut().zip(bytes.chunks_exact(value_bytes)) {
        // Load the wire bytes as one little-endian integer: lane i then holds register i with
        // its bytes swapped. The logical value wants the first register most significant unless
        // the order is word-swapped, and high byte first unless it is byte-swapped. Written as
        // whole-integer lane operations, LLVM turns this into the same few shifts per vector as
        // a plain register read (a byte-array shuffle costs twice as much on baseline x86-64).
        let mut raw = <T::Bits as sealed::Bits>::Bytes::default();
        for (byte, &wire) in raw.as_mut().iter_mut().zip(chunk) {
            *byte = wire;
        }
        let mut bits = T::Bits::from_le_byte_array(raw);
        if !SWAP {
            bits = bits.swap_lane_bytes();
        }
        if !REVERSE {
            bits = bits.reverse_lanes();
        }
        *slot = T::from_bits(bits);
        written += 1;
    }
    written
}

#[inline]
fn encode_into<T: Value, const REVERSE: bool, const SWAP: bool>(values: &[T], out: &mut [u16]) {
    for (value, chunk) in values.iter().zip(out.chunks_exact_mut(T::REGISTERS)) {
        let mut words = value.to_words();
        order::arrange(words.as_mut(), REVERSE, SWAP);
        chunk.copy_from_slice(words.as_ref());
    }
}

/// Reads bit `bit` (0 = least significant, 15 = most significant) of the register at `index`.
///
/// ```
/// use modbus_stack::value;
/// assert_eq!(value::decode_bit(&[0x8001], 0, 15), Ok(true));
/// assert_eq!(value::decode_bit(&[0x8001], 0, 1), Ok(false));
/// ```
///
/// # Errors
/// [`ValueError::BitOutOfRange`] for `bit > 15`, [`ValueError::NotEnoughRegisters`] past the end.
pub fn decode_bit<R: RegisterSource + ?Sized>(
    registers: &R,
    index: usize,
    bit: u8,
) -> Result<bool, ValueError> {
    let mask = bit_mask(bit)?;
    let register = registers
        .register(index)
        .ok_or(ValueError::NotEnoughRegisters {
            needed: 1,
            available: 0,
        })?;
    Ok(register & mask != 0)
}

/// `register` with bit `bit` (0 = least significant) set to `on`; the other bits are kept.
///
/// ```
/// use modbus_stack::value;
/// assert_eq!(value::with_bit(0x00F0, 15, true), Ok(0x80F0));
/// assert_eq!(value::with_bit(0x00F0, 4, false), Ok(0x00E0));
/// ```
///
/// # Errors
/// [`ValueError::BitOutOfRange`] for `bit > 15`.
pub fn with_bit(register: u16, bit: u8, on: bool) -> Result<u16, ValueError> {
    let mask = bit_mask(bit)?;
    Ok(if on {
        register | mask
    } else {
        register & !mask
    })
}

fn bit_mask(bit: u8) -> Result<u16, ValueError> {
    1u16.checked_shl(u32::from(bit))
        .ok_or(ValueError::BitOutOfRange { bit })
}
