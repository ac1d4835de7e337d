//! [`Value`] for the eight numeric types, and the `f64` conversions scaling needs.
//!
//! Register words are joined with shifts and split through the types' own big-endian bytes;
//! both are exact bit copies (floats keep NaN payloads). Conversions from `f64` round
//! by hand because `f64::round` is not in `core`.

use super::{DataType, Value, ValueError, sealed::Sealed};

/// How an engineering value is turned into an integer register value when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rounding {
    /// To the nearest integer, halves away from zero (2.5 → 3, −2.5 → −3). For float
    /// register types: the nearest representable value.
    #[default]
    Nearest,
    /// Refuse with [`ValueError::Inexact`] unless the value is exactly representable: catches a
    /// wrong scale factor instead of silently writing a rounded value.
    Exact,
}

/// 2⁵²: from here on every `f64` is an integer.
const INTEGRAL_FROM: f64 = 4_503_599_627_370_496.0;

/// Rounds a finite `value` to the nearest integer, halves away from zero.
fn round_half_away(value: f64) -> f64 {
    let magnitude = if value < 0.0 { -value } else { value };
    if magnitude >= INTEGRAL_FROM {
        return value;
    }
    // Exact: |value| < 2^52 fits an i64 and the truncated integer converts back exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let truncated = (value as i64) as f64;
    let fraction = value - truncated;
    if fraction >= 0.5 {
        truncated + 1.0
    } else if fraction <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Joins logical (most significant first) words with shifts rather than through a byte array:
/// on a little-endian machine a word-swapped value then needs no byte moves at all and a
/// big-endian one the same per-register byte swap as a plain register read, which is what
/// lets the bulk loops vectorise.
macro_rules! join {
    ($words:expr, 1) => {{
        let [word] = $words;
        word.to_ne_bytes()
    }};
    ($words:expr, 2) => {{
        let [high, low] = $words;
        ((u32::from(high) << 16) | u32::from(low)).to_ne_bytes()
    }};
    ($words:expr, 4) => {{
        let [a, b, c, d] = $words;
        ((u64::from(a) << 48) | (u64::from(b) << 32) | (u64::from(c) << 16) | u64::from(d))
            .to_ne_bytes()
    }};
}

/// Splits big-endian bytes into logical (most significant first) words.
macro_rules! split {
    ($bytes:expr, $n:literal) => {{
        let mut words = [0u16; $n];
        for (word, pair) in words.iter_mut().zip($bytes.chunks_exact(2)) {
            if let [high, low] = *pair {
                *word = u16::from_be_bytes([high, low]);
            }
        }
        words
    }};
}

macro_rules! integer_value {
    ($($ty:ty => $data_type:ident, $n:tt, $bits:ty;)*) => {$(
        impl Sealed for $ty {}

        impl Value for $ty {
            const DATA_TYPE: DataType = DataType::$data_type;
            const REGISTERS: usize = $n;
            type Words = [u16; $n];
            type Bits = $bits;

            #[inline]
            fn from_bits(bits: $bits) -> Self {
                Self::from_ne_bytes(bits.to_ne_bytes())
            }

            #[inline]
            fn from_words(words: [u16; $n]) -> Self {
                Self::from_ne_bytes(join!(words, $n))
            }

            #[inline]
            fn to_words(self) -> [u16; $n] {
                split!(self.to_be_bytes(), $n)
            }

            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn to_f64(self) -> f64 {
                // Exact up to 2^53; documented as rounding beyond.
                self as f64
            }

            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                clippy::cast_lossless,
                clippy::float_cmp
            )]
            fn from_f64(value: f64, rounding: Rounding) -> Result<Self, ValueError> {
                let data_type = DataType::$data_type;
                if !value.is_finite() {
                    return Err(ValueError::NotFinite { data_type });
                }
                let rounded = round_half_away(value);
                if rounding == Rounding::Exact && rounded != value {
                    return Err(ValueError::Inexact { data_type });
                }
                // MIN is a power of two (or zero) and MAX + 1 rounds to a power of two, both
                // exact in f64, so this is the exact range check.
                if rounded < Self::MIN as f64 || rounded >= (Self::MAX as f64) + 1.0 {
                    return Err(ValueError::OutOfRange { data_type });
                }
                // In range and integral: the cast is exact.
                Ok(rounded as Self)
            }
        }
    )*};
}

integer_value! {
    u16 => U16, 1, u16;
    i16 => I16, 1, u16;
    u32 => U32, 2, u32;
    i32 => I32, 2, u32;
    u64 => U64, 4, u64;
    i64 => I64, 4, u64;
}

impl Sealed for f32 {}

impl Value for f32 {
    const DATA_TYPE: DataType = DataType::F32;
    const REGISTERS: usize = 2;
    type Words = [u16; 2];
    type Bits = u32;

    #[inline]
    fn from_bits(bits: u32) -> Self {
        Self::from_bits(bits)
    }

    #[inline]
    fn from_words(words: [u16; 2]) -> Self {
        Self::from_ne_bytes(join!(words, 2))
    }

    #[inline]
    fn to_words(self) -> [u16; 2] {
        split!(self.to_be_bytes(), 2)
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
    fn from_f64(value: f64, rounding: Rounding) -> Result<Self, ValueError> {
        let data_type = DataType::F32;
        // `as` rounds to nearest; a finite value too large for f32 becomes infinite.
        let narrowed = value as Self;
        if value.is_finite() && narrowed.is_infinite() {
            return Err(ValueError::OutOfRange { data_type });
        }
        if rounding == Rounding::Exact && !value.is_nan() && f64::from(narrowed) != value {
            return Err(ValueError::Inexact { data_type });
        }
        Ok(narrowed)
    }
}

impl Sealed for f64 {}

impl Value for f64 {
    const DATA_TYPE: DataType = DataType::F64;
    const REGISTERS: usize = 4;
    type Words = [u16; 4];
    type Bits = u64;

    #[inline]
    fn from_bits(bits: u64) -> Self {
        Self::from_bits(bits)
    }

    #[inline]
    fn from_words(words: [u16; 4]) -> Self {
        Self::from_ne_bytes(join!(words, 4))
    }

    #[inline]
    fn to_words(self) -> [u16; 4] {
        split!(self.to_be_bytes(), 4)
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn from_f64(value: f64, _rounding: Rounding) -> Result<Self, ValueError> {
        Ok(value)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact results are the point of these tests
mod tests {
    use super::*;

    #[test]
    fn rounding_halves_away_from_zero() {
        assert_eq!(round_half_away(2.5), 3.0);
        assert_eq!(round_half_away(-2.5), -3.0);
        assert_eq!(round_half_away(2.4999), 2.0);
        assert_eq!(round_half_away(-0.4), 0.0);
        assert_eq!(round_half_away(1e300), 1e300);
    }

    #[test]
    fn integer_ranges_are_exact() {
        assert_eq!(u16::from_f64(65535.4, Rounding::Nearest), Ok(65535));
        assert_eq!(
            u16::from_f64(65535.5, Rounding::Nearest),
            Err(ValueError::OutOfRange {
                data_type: DataType::U16
            })
        );
        assert_eq!(i16::from_f64(-32768.0, Rounding::Exact), Ok(i16::MIN));
        assert_eq!(
            i64::from_f64(9_223_372_036_854_775_808.0, Rounding::Nearest),
            Err(ValueError::OutOfRange {
                data_type: DataType::I64
            })
        );
        assert_eq!(
            i64::from_f64(-9_223_372_036_854_775_808.0, Rounding::Nearest),
            Ok(i64::MIN)
        );
        assert_eq!(
            u64::from_f64(18_446_744_073_709_551_615.0, Rounding::Nearest),
            Err(ValueError::OutOfRange {
                data_type: DataType::U64
            })
        );
        assert_eq!(
            u32::from_f64(-0.5, Rounding::Nearest),
            Err(ValueError::OutOfRange {
                data_type: DataType::U32
            })
        );
        assert_eq!(
            u32::from_f64(1.5, Rounding::Exact),
            Err(ValueError::Inexact {
                data_type: DataType::U32
            })
        );
        assert_eq!(
            i32::from_f64(f64::NAN, Rounding::Nearest),
            Err(ValueError::NotFinite {
                data_type: DataType::I32
            })
        );
        assert_eq!(
            f32::from_f64(1e39, Rounding::Nearest),
            Err(ValueError::OutOfRange {
                data_type: DataType::F32
            })
        );
        assert_eq!(f32::from_f64(0.5, Rounding::Exact), Ok(0.5));
    }
}
