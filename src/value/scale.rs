//! Linear scaling between register values and engineering units.
//!
//! Devices often store a temperature as tenths of a degree or a pressure with an offset:
//! `engineering = raw * scale + offset`. Reading applies the formula; writing inverts it and
//! then has to fit the result into the register type, which is where rounding and range errors
//! surface, so they are explicit ([`Rounding`], [`ValueError::OutOfRange`]) rather than
//! saturating silently.

use super::{Order, RegisterSource, Rounding, Value, ValueError, decode_at, encode};

/// `engineering = raw * scale + offset`.
///
/// ```
/// use modbus_stack::value::{Rounding, Scale};
/// let tenths = Scale::new(0.1, 0.0).unwrap();
/// assert!((tenths.to_engineering(215_i16) - 21.5).abs() < 1e-9);
/// assert_eq!(tenths.to_raw::<i16>(21.5, Rounding::Nearest), Ok(215));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    scale: f64,
    offset: f64,
}

impl Default for Scale {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Scale {
    /// Scale 1, offset 0: engineering value = raw value.
    pub const IDENTITY: Self = Self {
        scale: 1.0,
        offset: 0.0,
    };

    /// A scale; `scale` must be finite and non-zero (or writes could not be inverted),
    /// `offset` finite.
    ///
    /// # Errors
    /// [`ValueError::InvalidScale`] otherwise.
    pub fn new(scale: f64, offset: f64) -> Result<Self, ValueError> {
        if !scale.is_finite() || scale == 0.0 || !offset.is_finite() {
            return Err(ValueError::InvalidScale);
        }
        Ok(Self { scale, offset })
    }

    /// The factor.
    #[must_use]
    pub const fn scale(&self) -> f64 {
        self.scale
    }

    /// The offset.
    #[must_use]
    pub const fn offset(&self) -> f64 {
        self.offset
    }

    /// `raw * scale + offset`.
    #[must_use]
    pub fn to_engineering<T: Value>(&self, raw: T) -> f64 {
        raw.to_f64() * self.scale + self.offset
    }

    /// `(engineering - offset) / scale`, converted to `T` with `rounding`.
    ///
    /// # Errors
    /// [`ValueError::NotFinite`], [`ValueError::OutOfRange`] or [`ValueError::Inexact`] when
    /// the raw value does not fit `T`.
    pub fn to_raw<T: Value>(&self, engineering: f64, rounding: Rounding) -> Result<T, ValueError> {
        T::from_f64((engineering - self.offset) / self.scale, rounding)
    }
}

/// Decodes a `T` from the first registers of `registers` and scales it.
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when the source is shorter than `T`.
pub fn decode_scaled<T: Value, R: RegisterSource + ?Sized>(
    registers: &R,
    order: Order,
    scale: Scale,
) -> Result<f64, ValueError> {
    decode_scaled_at::<T, R>(registers, 0, order, scale)
}

/// Decodes a `T` starting at register `index` and scales it.
///
/// ```
/// use modbus_stack::value::{self, Order, Scale};
/// // -40.0 °C stored as u16 in hundredths with a +50 °C offset.
/// let scale = Scale::new(0.01, -50.0).unwrap();
/// let celsius = value::decode_scaled_at::<u16, _>(&[0, 1000], 1, Order::Abcd, scale).unwrap();
/// assert!((celsius - -40.0).abs() < 1e-9);
/// ```
///
/// # Errors
/// [`ValueError::NotEnoughRegisters`] when the source ends before the value does.
pub fn decode_scaled_at<T: Value, R: RegisterSource + ?Sized>(
    registers: &R,
    index: usize,
    order: Order,
    scale: Scale,
) -> Result<f64, ValueError> {
    let raw: T = decode_at(registers, index, order)?;
    Ok(scale.to_engineering(raw))
}

/// Converts `engineering` to a raw `T` and encodes it into `out`; returns the number of
/// registers written.
///
/// ```
/// use modbus_stack::value::{self, DataType, Order, Rounding, Scale, ValueError};
/// let tenths = Scale::new(0.1, 0.0).unwrap();
/// let mut out = [0u16; 1];
/// assert_eq!(value::encode_scaled::<u16>(12.34, Order::Abcd, tenths, Rounding::Nearest, &mut out), Ok(1));
/// assert_eq!(out, [123]);
/// assert_eq!(
///     value::encode_scaled::<u16>(12.34, Order::Abcd, tenths, Rounding::Exact, &mut out),
///     Err(ValueError::Inexact { data_type: DataType::U16 }),
/// );
/// assert_eq!(
///     value::encode_scaled::<u16>(-1.0, Order::Abcd, tenths, Rounding::Nearest, &mut out),
///     Err(ValueError::OutOfRange { data_type: DataType::U16 }),
/// );
/// ```
///
/// # Errors
/// The conversion errors of [`Scale::to_raw`], or [`ValueError::NotEnoughRegisters`].
pub fn encode_scaled<T: Value>(
    engineering: f64,
    order: Order,
    scale: Scale,
    rounding: Rounding,
    out: &mut [u16],
) -> Result<usize, ValueError> {
    let raw: T = scale.to_raw(engineering, rounding)?;
    encode(raw, order, out)
}
