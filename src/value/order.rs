//! Byte and word order of multi-register values.
//!
//! Modbus fixes the byte order inside one register (high byte first) but says nothing about how
//! devices spread a 32- or 64-bit value over several registers, and vendors disagree. Names such
//! as "little-endian" or "swapped" mean different things in different manuals, so an [`Order`] is
//! named by the permutation it applies: the letters are the value's big-endian bytes, written in
//! the order they travel on the wire.

use core::fmt;

/// Order of the registers that make up one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WordOrder {
    /// The most significant register comes first (at the lowest address).
    HighWordFirst,
    /// The least significant register comes first.
    LowWordFirst,
}

/// Order of the two bytes inside each register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ByteOrder {
    /// The more significant byte first, as the specification defines registers (`AB`).
    HighByteFirst,
    /// The bytes of each register are swapped (`BA`).
    LowByteFirst,
}

/// How a value's bytes are laid out over its registers, named by byte permutation.
///
/// Take the value's big-endian bytes `A B C D` (32 bits) or `A B ... H` (64 bits). The variant
/// name spells the order in which those bytes appear on the wire, register after register, high
/// byte of each register first. One `Order` covers every width: the 32-bit names are the
/// variants, and associated constants give the 16- and 64-bit spelling of the same variant.
///
/// | Order | 16-bit | 64-bit | `0x12345678` registers | wire bytes | `π` as `f32` registers | `π` as `f64` registers |
/// |-------|--------|--------|-----------------------|------------|------------------------|------------------------|
/// | [`Abcd`](Order::Abcd) (big-endian) | `AB` | `ABCDEFGH` | `1234 5678` | `12 34 56 78` | `4049 0FDB` | `4009 21FB 5444 2D18` |
/// | [`Cdab`](Order::Cdab) (word swap) | `AB` | `GHEFCDAB` | `5678 1234` | `56 78 12 34` | `0FDB 4049` | `2D18 5444 21FB 4009` |
/// | [`Badc`](Order::Badc) (byte swap) | `BA` | `BADCFEHG` | `3412 7856` | `34 12 78 56` | `4940 DB0F` | `0940 FB21 4454 182D` |
/// | [`Dcba`](Order::Dcba) (little-endian) | `BA` | `HGFEDCBA` | `7856 3412` | `78 56 34 12` | `DB0F 4940` | `182D 4454 FB21 0940` |
///
/// A 16-bit value has a single register, so word order does not apply to it: `Abcd` and
/// `Cdab` read it as sent (`AB`), `Badc` and `Dcba` swap its bytes (`BA`).
///
/// ```
/// use modbus_stack::value::{self, Order};
/// assert_eq!(value::decode::<u32, _>(&[0x5678, 0x1234], Order::Cdab), Ok(0x1234_5678));
/// assert_eq!(Order::GHEFCDAB, Order::Cdab);
/// assert_eq!(value::decode::<f64, _>(&[0x2D18, 0x5444, 0x21FB, 0x4009], Order::GHEFCDAB),
///            Ok(core::f64::consts::PI));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Order {
    /// Big-endian: most significant register first, high byte first in each register.
    #[default]
    Abcd,
    /// Word swap: least significant register first, high byte first in each register.
    Cdab,
    /// Byte swap: most significant register first, bytes swapped in each register.
    Badc,
    /// Little-endian: least significant register first, bytes swapped in each register.
    Dcba,
}

impl Order {
    /// Every order, for tables and tests.
    pub const ALL: [Self; 4] = [Self::Abcd, Self::Cdab, Self::Badc, Self::Dcba];

    /// 16-bit: the register as sent.
    pub const AB: Self = Self::Abcd;
    /// 16-bit: the register's two bytes swapped.
    pub const BA: Self = Self::Badc;
    /// 64-bit big-endian (same as [`Abcd`](Self::Abcd)).
    pub const ABCDEFGH: Self = Self::Abcd;
    /// 64-bit word swap: registers in reverse order, bytes as sent (same as [`Cdab`](Self::Cdab)).
    pub const GHEFCDAB: Self = Self::Cdab;
    /// 64-bit byte swap inside each register (same as [`Badc`](Self::Badc)).
    pub const BADCFEHG: Self = Self::Badc;
    /// 64-bit little-endian (same as [`Dcba`](Self::Dcba)).
    pub const HGFEDCBA: Self = Self::Dcba;

    /// The order made of a word order and a byte order.
    #[must_use]
    pub const fn new(words: WordOrder, bytes: ByteOrder) -> Self {
        match (words, bytes) {
            (WordOrder::HighWordFirst, ByteOrder::HighByteFirst) => Self::Abcd,
            (WordOrder::LowWordFirst, ByteOrder::HighByteFirst) => Self::Cdab,
            (WordOrder::HighWordFirst, ByteOrder::LowByteFirst) => Self::Badc,
            (WordOrder::LowWordFirst, ByteOrder::LowByteFirst) => Self::Dcba,
        }
    }

    /// The order of registers within a value.
    #[must_use]
    pub const fn word_order(self) -> WordOrder {
        match self {
            Self::Abcd | Self::Badc => WordOrder::HighWordFirst,
            Self::Cdab | Self::Dcba => WordOrder::LowWordFirst,
        }
    }

    /// The order of bytes within each register.
    #[must_use]
    pub const fn byte_order(self) -> ByteOrder {
        match self {
            Self::Abcd | Self::Cdab => ByteOrder::HighByteFirst,
            Self::Badc | Self::Dcba => ByteOrder::LowByteFirst,
        }
    }

    /// The 32-bit name (`"ABCD"`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Abcd => "ABCD",
            Self::Cdab => "CDAB",
            Self::Badc => "BADC",
            Self::Dcba => "DCBA",
        }
    }

    /// The 64-bit name (`"ABCDEFGH"`, ...).
    #[must_use]
    pub const fn name_64(self) -> &'static str {
        match self {
            Self::Abcd => "ABCDEFGH",
            Self::Cdab => "GHEFCDAB",
            Self::Badc => "BADCFEHG",
            Self::Dcba => "HGFEDCBA",
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Moves words between wire order and logical order (most significant word first, high byte
/// first). Both steps are involutions and commute, so the same call serves decode and encode.
#[inline]
pub(super) fn arrange(words: &mut [u16], reverse: bool, swap: bool) {
    if reverse {
        words.reverse();
    }
    if swap {
        for word in words {
            *word = word.swap_bytes();
        }
    }
}
