//! Points, their values, and the map that validates them.

use std::collections::BTreeSet;
use std::string::String;
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use crate::pdu::{Coils, Registers, Request};
use crate::value::{
    self, DataType, Order, RegisterSource, Rounding, Scale, StringFormat, Value, ValueError,
};

/// The four Modbus data tables (`modbus-reference.md` §1.4). Each is its own 65 536-item
/// address space per unit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Read/write bits (FC 01, 05, 15).
    Coils,
    /// Read-only bits (FC 02).
    DiscreteInputs,
    /// Read-only registers (FC 04).
    InputRegisters,
    /// Read/write registers (FC 03, 06, 16).
    HoldingRegisters,
}

impl Table {
    /// `true` for the bit tables (coils, discrete inputs).
    #[must_use]
    pub const fn is_bits(self) -> bool {
        matches!(self, Self::Coils | Self::DiscreteInputs)
    }

    /// `true` for the tables a client may write (coils, holding registers).
    #[must_use]
    pub const fn is_writable(self) -> bool {
        matches!(self, Self::Coils | Self::HoldingRegisters)
    }

    /// Largest quantity one read of this table may ask for: 2000 bits or 125 registers.
    #[must_use]
    pub const fn max_read(self) -> u16 {
        if self.is_bits() {
            crate::pdu::MAX_READ_BITS
        } else {
            crate::pdu::MAX_READ_REGISTERS
        }
    }
}

/// How a point's bits or registers decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PointKind {
    /// One coil or discrete input (bit tables only).
    Bit,
    /// Bit `bit` (0 = least significant) of one register (register tables only).
    RegisterBit {
        /// Bit number, 0..=15.
        bit: u8,
    },
    /// A number in `data_type.registers()` registers (register tables only).
    Number {
        /// The register type.
        data_type: DataType,
        /// Byte/word order of its registers.
        order: Order,
        /// Optional engineering scaling; a scaled point reads as [`PointValue::F64`].
        scale: Option<Scale>,
    },
    /// A fixed-length string (register tables only).
    String(StringFormat),
}

impl PointKind {
    /// A number without scaling.
    #[must_use]
    pub const fn number(data_type: DataType, order: Order) -> Self {
        Self::Number {
            data_type,
            order,
            scale: None,
        }
    }

    /// Items (bits or registers) the point covers.
    #[must_use]
    pub const fn len(&self) -> u16 {
        match self {
            Self::Bit | Self::RegisterBit { .. } => 1,
            Self::Number { data_type, .. } => data_type.registers(),
            Self::String(format) => format.registers,
        }
    }

    /// `true` for a zero-register string, which [`PointMap::new`] rejects.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A decoded point value.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// A coil, discrete input or register bit.
    Bool(bool),
    /// An unscaled `u16`.
    U16(u16),
    /// An unscaled `i16`.
    I16(i16),
    /// An unscaled `u32`.
    U32(u32),
    /// An unscaled `i32`.
    I32(i32),
    /// An unscaled `u64`.
    U64(u64),
    /// An unscaled `i64`.
    I64(i64),
    /// An unscaled `f32`.
    F32(f32),
    /// An unscaled `f64`, or any scaled number in engineering units.
    F64(f64),
    /// A string.
    Text(String),
}

impl PointValue {
    /// `whole` as a value of the integer type `data_type`, if it is one and `whole` is in its
    /// range (`None` for a float type or a number outside the range).
    ///
    /// ```
    /// use modbus_stack::point::PointValue;
    /// use modbus_stack::value::DataType;
    /// assert_eq!(PointValue::from_integer(DataType::I16, -5), Some(PointValue::I16(-5)));
    /// assert_eq!(PointValue::from_integer(DataType::U16, 70_000), None);
    /// assert_eq!(PointValue::from_integer(DataType::F32, 1), None);
    /// ```
    #[must_use]
    pub fn from_integer(data_type: DataType, whole: i128) -> Option<Self> {
        match data_type {
            DataType::U16 => u16::try_from(whole).ok().map(Self::U16),
            DataType::I16 => i16::try_from(whole).ok().map(Self::I16),
            DataType::U32 => u32::try_from(whole).ok().map(Self::U32),
            DataType::I32 => i32::try_from(whole).ok().map(Self::I32),
            DataType::U64 => u64::try_from(whole).ok().map(Self::U64),
            DataType::I64 => i64::try_from(whole).ok().map(Self::I64),
            DataType::F32 | DataType::F64 => None,
        }
    }

    /// The value as an `f64`, for numbers (exact up to 2⁵³) and bools (0 or 1).
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // documented: integers beyond 2^53 round
    pub fn as_f64(&self) -> Option<f64> {
        Some(match *self {
            Self::Bool(on) => f64::from(u8::from(on)),
            Self::U16(v) => f64::from(v),
            Self::I16(v) => f64::from(v),
            Self::U32(v) => f64::from(v),
            Self::I32(v) => f64::from(v),
            Self::U64(v) => v as f64,
            Self::I64(v) => v as f64,
            Self::F32(v) => f64::from(v),
            Self::F64(v) => v,
            Self::Text(_) => return None,
        })
    }
}

/// A named value on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Unique name within its map.
    pub name: String,
    /// Unit id of the device.
    pub unit_id: u8,
    /// Table the point lives in.
    pub table: Table,
    /// Wire (0-based) address of its first bit or register.
    pub address: u16,
    /// How its items decode.
    pub kind: PointKind,
    /// Engineering unit for display ("°C", "kWh"), if any.
    pub unit: Option<String>,
}

impl Point {
    /// A point without an engineering unit.
    pub fn new(
        name: impl Into<String>,
        unit_id: u8,
        table: Table,
        address: u16,
        kind: PointKind,
    ) -> Self {
        Self {
            name: name.into(),
            unit_id,
            table,
            address,
            kind,
            unit: None,
        }
    }

    /// The same point with an engineering unit.
    #[must_use]
    pub fn with_unit(self, unit: impl Into<String>) -> Self {
        Self {
            unit: Some(unit.into()),
            ..self
        }
    }

    /// The same point with engineering scaling (numbers only; other kinds are unchanged).
    #[must_use]
    pub fn with_scale(mut self, new_scale: Scale) -> Self {
        if let PointKind::Number { scale, .. } = &mut self.kind {
            *scale = Some(new_scale);
        }
        self
    }

    /// Items (bits or registers) the point covers.
    #[must_use]
    pub const fn len(&self) -> u16 {
        self.kind.len()
    }

    /// `true` for an empty string point.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// Address of the last item, or `None` when the range passes 0xFFFF (or is empty).
    #[must_use]
    pub fn last_address(&self) -> Option<u16> {
        self.address.checked_add(self.len().checked_sub(1)?)
    }

    /// Decodes the point from registers read from this point's table, its first register at
    /// `offset`. (A [`PointKind::Bit`] read this way is bit 0 of its register, for devices
    /// that overlay their bit and register tables.)
    ///
    /// # Errors
    /// Any [`ValueError`] of the conversion (short data, invalid UTF-8, ...).
    pub fn decode_registers(
        &self,
        registers: Registers<'_>,
        offset: usize,
    ) -> Result<PointValue, ValueError> {
        match self.kind {
            PointKind::Bit => value::decode_bit(&registers, offset, 0).map(PointValue::Bool),
            PointKind::RegisterBit { bit } => {
                value::decode_bit(&registers, offset, bit).map(PointValue::Bool)
            }
            PointKind::Number {
                data_type,
                order,
                scale,
            } => decode_number(&registers, offset, data_type, order, scale),
            PointKind::String(format) => {
                let mut buf = vec![0; format.byte_len()];
                let text = value::decode_str_at(&registers, offset, format, &mut buf)?;
                Ok(PointValue::Text(text.into()))
            }
        }
    }

    /// Decodes a bit point from bits read from its table, the point's bit at `offset`.
    ///
    /// # Errors
    /// [`ValueError::NotEnoughRegisters`] (counting bits) when `offset` is past the end.
    pub fn decode_bits(&self, bits: Coils<'_>, offset: usize) -> Result<PointValue, ValueError> {
        bits.get(offset)
            .map(PointValue::Bool)
            .ok_or(ValueError::NotEnoughRegisters {
                needed: 1,
                available: 0,
            })
    }

    /// Encodes `value` into the registers this point occupies; returns how many were written.
    ///
    /// A value of the point's own type is stored exactly; another number goes through `f64`
    /// and must convert exactly ([`Rounding::Exact`]), and a scaled point takes any number in
    /// engineering units and rounds to nearest. A register bit cannot be encoded alone (it needs
    /// the register's other bits): use [`write_request`](Self::write_request), which masks it.
    ///
    /// # Errors
    /// [`WriteError::Value`] for conversion failures, [`WriteError::TypeMismatch`] when the
    /// value does not suit the point, [`WriteError::NotRegisters`] for bit points.
    pub fn encode(&self, point_value: &PointValue, out: &mut [u16]) -> Result<usize, WriteError> {
        match (self.kind, point_value) {
            (
                PointKind::Number {
                    data_type,
                    order,
                    scale,
                },
                value,
            ) => encode_number(data_type, order, scale, value, out),
            (PointKind::String(format), PointValue::Text(text)) => {
                Ok(value::encode_str(text, format, out)?)
            }
            (PointKind::Bit | PointKind::RegisterBit { .. }, _) => Err(WriteError::NotRegisters),
            (PointKind::String(_), _) => Err(WriteError::TypeMismatch),
        }
    }

    /// The request that writes `value` to this point, encoding registers into `buf`.
    ///
    /// One register goes out as FC 06 (`WriteSingleRegister`), several as FC 16
    /// (`WriteMultipleRegisters`), a coil as FC 05, a register bit as FC 22
    /// (`MaskWriteRegister`, which changes that bit only).
    ///
    /// ```
    /// use modbus_stack::pdu::Request;
    /// use modbus_stack::point::{Point, PointKind, PointValue, Table};
    /// use modbus_stack::value::{DataType, Order};
    /// let point = Point::new("setpoint", 1, Table::HoldingRegisters, 100,
    ///     PointKind::number(DataType::F32, Order::Cdab));
    /// let mut buf = [0u16; 4];
    /// let request = point.write_request(&PointValue::F32(3.14159), &mut buf).unwrap();
    /// let Request::WriteMultipleRegisters { address, values } = request else { panic!() };
    /// assert_eq!(address, 100);
    /// assert!(values.iter().eq([0x0FD0, 0x4049]));
    /// ```
    ///
    /// # Errors
    /// [`WriteError::ReadOnly`] for discrete inputs and input registers, and the errors of
    /// [`encode`](Self::encode).
    pub fn write_request<'b>(
        &self,
        point_value: &PointValue,
        buf: &'b mut [u16],
    ) -> Result<Request<'b>, WriteError> {
        if !self.table.is_writable() {
            return Err(WriteError::ReadOnly { table: self.table });
        }
        let address = self.address;
        match (self.kind, point_value) {
            (PointKind::Bit, PointValue::Bool(on)) => Ok(Request::WriteSingleCoil {
                address,
                value: *on,
            }),
            (PointKind::RegisterBit { bit }, PointValue::Bool(on)) => {
                // FC 22 computes (current AND and_mask) OR (or_mask AND NOT and_mask): clearing
                // only our bit in the AND mask leaves every other bit as the device has it.
                let mask = value::with_bit(0, bit, true)?;
                Ok(Request::MaskWriteRegister {
                    address,
                    and_mask: !mask,
                    or_mask: if *on { mask } else { 0 },
                })
            }
            (PointKind::Bit | PointKind::RegisterBit { .. }, _) => Err(WriteError::TypeMismatch),
            _ => {
                let written = self.encode(point_value, buf)?;
                match buf.get(..written).unwrap_or_default() {
                    [single] => Ok(Request::WriteSingleRegister {
                        address,
                        value: *single,
                    }),
                    words => Ok(Request::WriteMultipleRegisters {
                        address,
                        values: Registers::from_words(words),
                    }),
                }
            }
        }
    }
}

fn decode_number<R: RegisterSource + ?Sized>(
    registers: &R,
    offset: usize,
    data_type: DataType,
    order: Order,
    scale: Option<Scale>,
) -> Result<PointValue, ValueError> {
    fn typed<T: Value, R: RegisterSource + ?Sized>(
        registers: &R,
        offset: usize,
        order: Order,
        scale: Option<Scale>,
        wrap: fn(T) -> PointValue,
    ) -> Result<PointValue, ValueError> {
        let raw: T = value::decode_at(registers, offset, order)?;
        Ok(match scale {
            Some(scale) => PointValue::F64(scale.to_engineering(raw)),
            None => wrap(raw),
        })
    }
    match data_type {
        DataType::U16 => typed(registers, offset, order, scale, PointValue::U16),
        DataType::I16 => typed(registers, offset, order, scale, PointValue::I16),
        DataType::U32 => typed(registers, offset, order, scale, PointValue::U32),
        DataType::I32 => typed(registers, offset, order, scale, PointValue::I32),
        DataType::U64 => typed(registers, offset, order, scale, PointValue::U64),
        DataType::I64 => typed(registers, offset, order, scale, PointValue::I64),
        DataType::F32 => typed(registers, offset, order, scale, PointValue::F32),
        DataType::F64 => typed(registers, offset, order, scale, PointValue::F64),
    }
}

fn encode_number(
    data_type: DataType,
    order: Order,
    scale: Option<Scale>,
    point_value: &PointValue,
    out: &mut [u16],
) -> Result<usize, WriteError> {
    fn typed<T: Value>(
        exact: Option<T>,
        engineering: f64,
        order: Order,
        scale: Option<Scale>,
        out: &mut [u16],
    ) -> Result<usize, WriteError> {
        Ok(match (scale, exact) {
            (Some(scale), _) => {
                value::encode_scaled::<T>(engineering, order, scale, Rounding::Nearest, out)?
            }
            (None, Some(raw)) => value::encode(raw, order, out)?,
            (None, None) => value::encode_scaled::<T>(
                engineering,
                order,
                Scale::IDENTITY,
                Rounding::Exact,
                out,
            )?,
        })
    }
    let engineering = point_value.as_f64().ok_or(WriteError::TypeMismatch)?;
    // The value itself when it already has the register type, so it is stored bit-exactly.
    macro_rules! exact {
        ($variant:ident) => {
            if let PointValue::$variant(raw) = *point_value {
                Some(raw)
            } else {
                None
            }
        };
    }
    match data_type {
        DataType::U16 => typed(exact!(U16), engineering, order, scale, out),
        DataType::I16 => typed(exact!(I16), engineering, order, scale, out),
        DataType::U32 => typed(exact!(U32), engineering, order, scale, out),
        DataType::I32 => typed(exact!(I32), engineering, order, scale, out),
        DataType::U64 => typed(exact!(U64), engineering, order, scale, out),
        DataType::I64 => typed(exact!(I64), engineering, order, scale, out),
        DataType::F32 => typed(exact!(F32), engineering, order, scale, out),
        DataType::F64 => typed(exact!(F64), engineering, order, scale, out),
    }
}

/// Why a value could not be written to a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Discrete inputs and input registers cannot be written.
    #[error("{table:?} are read-only")]
    ReadOnly {
        /// The point's table.
        table: Table,
    },
    /// The value's kind does not suit the point (text for a number, a number for a bit...).
    #[error("value does not match the point's kind")]
    TypeMismatch,
    /// Bit points have no registers to encode into; use `write_request`.
    #[error("bit points are not written as registers")]
    NotRegisters,
    /// The conversion failed.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// Why a set of points cannot form a [`PointMap`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// Two points share a name.
    #[error("point name {name:?} is used twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The point's items run past address 0xFFFF.
    #[error("point {name:?}: {len} items from address {address} pass address 0xFFFF")]
    AddressOverflow {
        /// The point.
        name: String,
        /// Its first address.
        address: u16,
        /// Its length in items.
        len: u16,
    },
    /// A bit kind on a register table or a register kind on a bit table.
    #[error("point {name:?}: its kind does not fit the {table:?} table")]
    WrongTable {
        /// The point.
        name: String,
        /// Its table.
        table: Table,
    },
    /// A register bit beyond 15.
    #[error("point {name:?}: bit {bit} is outside a 16-bit register")]
    BitOutOfRange {
        /// The point.
        name: String,
        /// The bit given.
        bit: u8,
    },
    /// A string of zero registers.
    #[error("point {name:?}: string of zero registers")]
    EmptyString {
        /// The point.
        name: String,
    },
    /// Two points on the same unit and table share some, but not all, of their items and
    /// neither contains the other: almost always an off-by-one in the map.
    #[error("points {first:?} and {second:?} overlap partially")]
    PartialOverlap {
        /// The point that starts first.
        first: String,
        /// The point that starts inside it and ends after it.
        second: String,
    },
}

/// A validated set of points.
///
/// Rules checked by [`PointMap::new`]:
/// * names are unique;
/// * a point's items end at or before address 0xFFFF;
/// * [`PointKind::Bit`] lives on a bit table, every other kind on a register table; register
///   bits are 0..=15 and strings have at least one register;
/// * overlaps: the four tables are separate address spaces per unit id, so points on
///   different tables or unit ids never conflict. On the same table and unit, two points may
///   share items only if one range **contains** the other (same registers read as a `u32` and
///   as two `u16`, status bits of a register, an `f32` and the same registers as `i32`).
///   A **partial** overlap (a `u32` at 100–101 and another at 101–102) is rejected: real
///   devices do not lay values out that way, maps with an off-by-one do.
///
/// The points are shared: cloning a map (as every [`ReadPlan`](super::ReadPlan) does) copies a
/// pointer, not the points.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointMap {
    points: Arc<[Point]>,
}

impl PointMap {
    /// Validates `points` into a map (order is kept).
    ///
    /// ```
    /// use modbus_stack::point::{MapError, Point, PointKind, PointMap, Table};
    /// use modbus_stack::value::{DataType, Order};
    /// let u32_at = |name: &str, address| Point::new(name, 1, Table::HoldingRegisters, address,
    ///     PointKind::number(DataType::U32, Order::Abcd));
    /// assert!(PointMap::new([u32_at("a", 100), u32_at("b", 102)]).is_ok());
    /// assert!(matches!(PointMap::new([u32_at("a", 100), u32_at("b", 101)]),
    ///     Err(MapError::PartialOverlap { .. })));
    /// assert!(matches!(PointMap::new([u32_at("a", 0xFFFF)]),
    ///     Err(MapError::AddressOverflow { .. })));
    /// ```
    ///
    /// # Errors
    /// The first rule broken, as a [`MapError`].
    pub fn new(points: impl IntoIterator<Item = Point>) -> Result<Self, MapError> {
        let points: Vec<Point> = points.into_iter().collect();
        let mut names = BTreeSet::new();
        for point in &points {
            check_point(point)?;
            if !names.insert(point.name.as_str()) {
                return Err(MapError::DuplicateName {
                    name: point.name.clone(),
                });
            }
        }
        check_overlaps(&points)?;
        Ok(Self {
            points: points.into(),
        })
    }

    /// The points, in the order given.
    #[must_use]
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// The point called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Point> {
        self.points.iter().find(|point| point.name == name)
    }

    /// Number of points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// `true` when the map has no points.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

fn check_point(point: &Point) -> Result<(), MapError> {
    let name = || point.name.clone();
    let bit_kind = matches!(point.kind, PointKind::Bit);
    if bit_kind != point.table.is_bits() {
        return Err(MapError::WrongTable {
            name: name(),
            table: point.table,
        });
    }
    match point.kind {
        PointKind::RegisterBit { bit } if bit > 15 => {
            return Err(MapError::BitOutOfRange { name: name(), bit });
        }
        PointKind::String(format) if format.registers == 0 => {
            return Err(MapError::EmptyString { name: name() });
        }
        _ => {}
    }
    if point.last_address().is_none() {
        return Err(MapError::AddressOverflow {
            name: name(),
            address: point.address,
            len: point.len(),
        });
    }
    Ok(())
}

/// Rejects partial overlaps within each (unit id, table) group: after sorting by start (and
/// longest first), every range must either start after the enclosing ones end or end inside
/// the innermost enclosing one.
fn check_overlaps(points: &[Point]) -> Result<(), MapError> {
    let mut spans: Vec<(u8, Table, u16, u16, usize)> = points
        .iter()
        .enumerate()
        .filter_map(|(index, p)| Some((p.unit_id, p.table, p.address, p.last_address()?, index)))
        .collect();
    spans.sort_by(|a, b| (a.0, a.1, a.2, b.3).cmp(&(b.0, b.1, b.2, a.3)));
    // Stack of enclosing spans (unit, table, end, index), innermost last.
    let mut open: Vec<(u8, Table, u16, usize)> = Vec::new();
    for &(unit, table, start, end, index) in &spans {
        while let Some(&(open_unit, open_table, open_end, _)) = open.last() {
            if open_unit != unit || open_table != table || open_end < start {
                open.pop();
            } else {
                break;
            }
        }
        if let Some(&(_, _, open_end, open_index)) = open.last() {
            if end > open_end {
                return Err(MapError::PartialOverlap {
                    first: points
                        .get(open_index)
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    second: points
                        .get(index)
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                });
            }
        }
        open.push((unit, table, end, index));
    }
    Ok(())
}
