//! The read planner: the fewest reads that cover every point within the device's limits.

use std::collections::{BTreeMap, BTreeSet};
use std::vec;
use std::vec::Vec;

use super::map::{Point, PointMap, PointValue, Table};
use crate::pdu::{Coils, Registers, Request};
use crate::value::ValueError;

/// What one device accepts; the defaults are the specification's limits and no read-through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Largest register read (1..=125). Some devices answer fewer, or fail above a size.
    pub max_registers: u16,
    /// Largest bit read (1..=2000).
    pub max_bits: u16,
    /// Unused registers a read may span to join two points (0 = only adjacent points join).
    pub max_register_gap: u16,
    /// Unused bits a read may span to join two points.
    pub max_bit_gap: u16,
    /// Addresses that must never be read, per table: undefined registers that make the device
    /// answer exception 02 (illegal data address) and fail the whole read.
    pub forbidden: BTreeSet<(Table, u16)>,
    /// Addresses a read may start at but never run into, per table: no read covers both
    /// `address - 1` and `address`. For devices whose register blocks must be read separately
    /// even where they are adjacent.
    pub boundaries: BTreeSet<(Table, u16)>,
    /// Read every point with a request of its own (devices that refuse any multi-point read).
    pub one_read_per_point: bool,
}

impl Default for DeviceLimits {
    fn default() -> Self {
        Self {
            max_registers: crate::pdu::MAX_READ_REGISTERS,
            max_bits: crate::pdu::MAX_READ_BITS,
            max_register_gap: 0,
            max_bit_gap: 0,
            forbidden: BTreeSet::new(),
            boundaries: BTreeSet::new(),
            one_read_per_point: false,
        }
    }
}

impl DeviceLimits {
    fn max_read(&self, table: Table) -> u16 {
        if table.is_bits() {
            self.max_bits
        } else {
            self.max_registers
        }
    }

    fn max_gap(&self, table: Table) -> u16 {
        if table.is_bits() {
            self.max_bit_gap
        } else {
            self.max_register_gap
        }
    }

    /// The first forbidden address of `table` in `first..=last`.
    fn forbidden_in(&self, table: Table, first: u16, last: u16) -> Option<u16> {
        self.forbidden
            .range((table, first)..=(table, last))
            .next()
            .map(|&(_, address)| address)
    }

    /// The first boundary of `table` in `first..=last`.
    fn boundary_in(&self, table: Table, first: u16, last: u16) -> Option<u16> {
        self.boundaries
            .range((table, first)..=(table, last))
            .next()
            .map(|&(_, address)| address)
    }
}

/// Limits for the planner: one set per unit id, and defaults for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanConfig {
    /// Limits for unit ids without their own entry.
    pub defaults: DeviceLimits,
    /// Limits for particular unit ids.
    pub devices: BTreeMap<u8, DeviceLimits>,
}

impl PlanConfig {
    /// The limits that apply to `unit_id`.
    #[must_use]
    pub fn limits(&self, unit_id: u8) -> &DeviceLimits {
        self.devices.get(&unit_id).unwrap_or(&self.defaults)
    }
}

/// One read the plan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlannedRead {
    /// Unit id of the device.
    pub unit_id: u8,
    /// Table to read.
    pub table: Table,
    /// First address.
    pub address: u16,
    /// Number of bits or registers.
    pub quantity: u16,
}

impl PlannedRead {
    /// The read request (FC 01, 02, 03 or 04) for this read.
    ///
    /// ```
    /// use modbus_stack::pdu::Request;
    /// use modbus_stack::point::{PlannedRead, Table};
    /// let read = PlannedRead { unit_id: 1, table: Table::HoldingRegisters, address: 0x6B, quantity: 3 };
    /// assert_eq!(read.to_request(), Request::ReadHoldingRegisters { address: 0x6B, quantity: 3 });
    /// ```
    #[must_use]
    pub fn to_request(&self) -> Request<'static> {
        let (address, quantity) = (self.address, self.quantity);
        match self.table {
            Table::Coils => Request::ReadCoils { address, quantity },
            Table::DiscreteInputs => Request::ReadDiscreteInputs { address, quantity },
            Table::InputRegisters => Request::ReadInputRegisters { address, quantity },
            Table::HoldingRegisters => Request::ReadHoldingRegisters { address, quantity },
        }
    }

    /// Address of the last item read.
    #[must_use]
    pub fn last_address(&self) -> u16 {
        // The planner never builds a read past 0xFFFF or of quantity 0.
        self.address.saturating_add(self.quantity.saturating_sub(1))
    }
}

/// The data one read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadData<'a> {
    /// Registers from FC 03 or 04.
    Registers(Registers<'a>),
    /// Bits from FC 01 or 02.
    Bits(Coils<'a>),
}

impl<'a> From<Registers<'a>> for ReadData<'a> {
    fn from(registers: Registers<'a>) -> Self {
        Self::Registers(registers)
    }
}

impl<'a> From<Coils<'a>> for ReadData<'a> {
    fn from(bits: Coils<'a>) -> Self {
        Self::Bits(bits)
    }
}

impl<'a> From<&'a [u16]> for ReadData<'a> {
    fn from(words: &'a [u16]) -> Self {
        Self::Registers(Registers::from_words(words))
    }
}

impl<'a> From<&'a [bool]> for ReadData<'a> {
    fn from(bits: &'a [bool]) -> Self {
        Self::Bits(Coils::from_bools(bits))
    }
}

impl ReadData<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Registers(registers) => registers.len(),
            Self::Bits(bits) => bits.len(),
        }
    }
}

/// One decoded point.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<'m> {
    /// The point.
    pub point: &'m Point,
    /// Its index in the map ([`PointMap::points`]).
    pub index: usize,
    /// Its value, or why it could not be decoded (the other points of the read still are).
    pub value: Result<PointValue, ValueError>,
}

/// Why a plan could not be made or its data not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A limit outside 1..=125 registers or 1..=2000 bits.
    #[error("unit {unit_id}: read limit {max} for {table:?} is outside 1..={spec_max}")]
    InvalidLimit {
        /// The unit id.
        unit_id: u8,
        /// The table.
        table: Table,
        /// The configured limit.
        max: u16,
        /// The specification's limit.
        spec_max: u16,
    },
    /// A point is longer than one read may be for its device.
    #[error("point {name:?}: {len} items exceed the read limit of {max}")]
    PointTooLarge {
        /// The point.
        name: std::string::String,
        /// Its length.
        len: u16,
        /// The device's read limit.
        max: u16,
    },
    /// A point runs across one of its device's read boundaries, so no read can hold it whole.
    #[error("point {name:?} runs across read boundary {address}")]
    PointCrossesBoundary {
        /// The point.
        name: std::string::String,
        /// The boundary.
        address: u16,
    },
    /// A point covers an address its device forbids reading.
    #[error("point {name:?} covers forbidden address {address}")]
    PointReadsForbidden {
        /// The point.
        name: std::string::String,
        /// The forbidden address.
        address: u16,
    },
    /// No read with this index.
    #[error("read {index} does not exist, the plan has {reads}")]
    NoSuchRead {
        /// The index given.
        index: usize,
        /// Reads in the plan.
        reads: usize,
    },
    /// Registers given for a bit read, or bits for a register read.
    #[error("read {index} of {table:?} was given the wrong kind of data")]
    WrongData {
        /// The read.
        index: usize,
        /// Its table.
        table: Table,
    },
    /// The data has another length than the read's quantity.
    #[error("read {index}: {actual} items given, {expected} read")]
    WrongLength {
        /// The read.
        index: usize,
        /// The read's quantity.
        expected: usize,
        /// Items given.
        actual: usize,
    },
    /// `decode_all` got a different number of responses than there are reads.
    #[error("{actual} responses given for {expected} reads")]
    WrongResponseCount {
        /// Reads in the plan.
        expected: usize,
        /// Responses given.
        actual: usize,
    },
}

/// A point's items in a group: (first address, last address, point index).
type Span = (u16, u16, usize);

/// A read being built: its first and last address and its points with their offsets.
struct OpenRead {
    start: u16,
    end: u16,
    members: Vec<(usize, u16)>,
}

/// The reads that cover a [`PointMap`], and how to decode their data.
///
/// Reads are built per unit id and table, points sorted by address, greedily: a read grows to
/// take the next point while (1) it stays within the device's read limit, (2) the unused gap
/// it would span is at most the configured maximum, (3) nothing it would newly cover is a
/// forbidden address or runs into a boundary, and (4) the device takes more than one point
/// per read. The plan holds a copy of the map (cheap: the points are shared). Because any sub-range of a valid read is valid too, taking each read as
/// far as it goes is optimal: no plan under these rules needs fewer reads. Every point is read
/// by exactly one read, whole.
///
/// ```
/// use modbus_stack::point::{PlanConfig, Point, PointKind, PointMap, PointValue, Table};
/// use modbus_stack::value::{DataType, Order};
/// let map = PointMap::new([
///     Point::new("temp", 1, Table::InputRegisters, 0, PointKind::number(DataType::F32, Order::Abcd)),
///     Point::new("count", 1, Table::InputRegisters, 2, PointKind::number(DataType::U16, Order::Abcd)),
/// ]).unwrap();
/// let plan = map.plan(&PlanConfig::default()).unwrap();
/// assert_eq!(plan.reads().len(), 1);
/// let readings = plan.decode_read(0, (&[0x4049, 0x0FDB, 7][..]).into()).unwrap();
/// assert_eq!(readings[1].value, Ok(PointValue::U16(7)));
/// ```
#[derive(Debug, Clone)]
pub struct ReadPlan {
    map: PointMap,
    reads: Vec<PlannedRead>,
    /// For each read: (point index, offset of the point's first item in the read).
    members: Vec<Vec<(usize, u16)>>,
}

impl PointMap {
    /// Plans the reads for this map; see [`ReadPlan`].
    ///
    /// # Errors
    /// [`PlanError::InvalidLimit`], [`PlanError::PointTooLarge`] or
    /// [`PlanError::PointReadsForbidden`].
    pub fn plan(&self, config: &PlanConfig) -> Result<ReadPlan, PlanError> {
        let mut groups: BTreeMap<(u8, Table), Vec<Span>> = BTreeMap::new();
        for (index, point) in self.points().iter().enumerate() {
            // The map guarantees last_address() is Some.
            let last = point.last_address().unwrap_or(point.address);
            groups
                .entry((point.unit_id, point.table))
                .or_default()
                .push((point.address, last, index));
        }
        let mut plan = ReadPlan {
            map: self.clone(),
            reads: Vec::new(),
            members: Vec::new(),
        };
        for ((unit_id, table), mut spans) in groups {
            let limits = config.limits(unit_id);
            let max = limits.max_read(table);
            if max == 0 || max > table.max_read() {
                return Err(PlanError::InvalidLimit {
                    unit_id,
                    table,
                    max,
                    spec_max: table.max_read(),
                });
            }
            let gap = limits.max_gap(table);
            // By start, longer first, so enclosing points come before what they contain.
            spans.sort_by(|a, b| (a.0, b.1).cmp(&(b.0, a.1)));
            let mut current: Option<OpenRead> = None;
            for (first, last, index) in spans {
                let point = self.points().get(index);
                let name = || point.map(|p| p.name.clone()).unwrap_or_default();
                let len = last - first + 1;
                if len > max {
                    return Err(PlanError::PointTooLarge {
                        name: name(),
                        len,
                        max,
                    });
                }
                if let Some(address) = limits.forbidden_in(table, first, last) {
                    return Err(PlanError::PointReadsForbidden {
                        name: name(),
                        address,
                    });
                }
                if first < last {
                    if let Some(address) = limits.boundary_in(table, first + 1, last) {
                        return Err(PlanError::PointCrossesBoundary {
                            name: name(),
                            address,
                        });
                    }
                }
                if let Some(open) = &mut current {
                    if last <= open.end {
                        // Contained in what the read already covers.
                        open.members.push((index, first - open.start));
                        continue;
                    }
                    let span_ok = last - open.start < max;
                    // Unused items between the read's end and this point's start.
                    let unused = first.saturating_sub(open.end).saturating_sub(1);
                    let gap_ok = unused <= gap;
                    let clear = limits.forbidden_in(table, open.end + 1, last).is_none()
                        && limits.boundary_in(table, open.end + 1, last).is_none();
                    if span_ok && gap_ok && clear && !limits.one_read_per_point {
                        open.end = last;
                        open.members.push((index, first - open.start));
                        continue;
                    }
                }
                if let Some(done) = current.take() {
                    plan.push(unit_id, table, done);
                }
                current = Some(OpenRead {
                    start: first,
                    end: last,
                    members: vec![(index, 0)],
                });
            }
            if let Some(done) = current {
                plan.push(unit_id, table, done);
            }
        }
        Ok(plan)
    }
}

impl ReadPlan {
    fn push(&mut self, unit_id: u8, table: Table, read: OpenRead) {
        self.reads.push(PlannedRead {
            unit_id,
            table,
            address: read.start,
            quantity: read.end - read.start + 1,
        });
        self.members.push(read.members);
    }

    /// The map this plan reads.
    #[must_use]
    pub fn map(&self) -> &PointMap {
        &self.map
    }

    /// The reads, grouped by unit id and table, in address order.
    #[must_use]
    pub fn reads(&self) -> &[PlannedRead] {
        &self.reads
    }

    /// The points read `index` covers, with each point's offset inside the read.
    pub fn points_of(&self, index: usize) -> impl Iterator<Item = (&Point, u16)> + '_ {
        self.members_of(index)
            .map(|(point, _, offset)| (point, offset))
    }

    /// As [`points_of`](Self::points_of), with each point's index in the map.
    fn members_of(&self, index: usize) -> impl Iterator<Item = (&Point, usize, u16)> + '_ {
        self.members
            .get(index)
            .into_iter()
            .flatten()
            .filter_map(|&(point, offset)| Some((self.map.points().get(point)?, point, offset)))
    }

    /// Decodes the points of read `index` from the data it returned.
    ///
    /// # Errors
    /// [`PlanError::NoSuchRead`], [`PlanError::WrongData`] or [`PlanError::WrongLength`];
    /// a point that fails to decode (invalid UTF-8, ...) is an `Err` in its [`Reading`] only.
    pub fn decode_read(
        &self,
        index: usize,
        data: ReadData<'_>,
    ) -> Result<Vec<Reading<'_>>, PlanError> {
        let read = self.reads.get(index).ok_or(PlanError::NoSuchRead {
            index,
            reads: self.reads.len(),
        })?;
        if matches!(data, ReadData::Bits(_)) != read.table.is_bits() {
            return Err(PlanError::WrongData {
                index,
                table: read.table,
            });
        }
        if data.len() != usize::from(read.quantity) {
            return Err(PlanError::WrongLength {
                index,
                expected: usize::from(read.quantity),
                actual: data.len(),
            });
        }
        Ok(self
            .members_of(index)
            .map(|(point, point_index, offset)| {
                let offset = usize::from(offset);
                let value = match data {
                    ReadData::Registers(registers) => point.decode_registers(registers, offset),
                    ReadData::Bits(bits) => point.decode_bits(bits, offset),
                };
                Reading {
                    point,
                    index: point_index,
                    value,
                }
            })
            .collect())
    }

    /// Decodes every read; `responses[i]` is the data of read `i`.
    ///
    /// # Errors
    /// [`PlanError::WrongResponseCount`] and the errors of [`decode_read`](Self::decode_read).
    pub fn decode_all(&self, responses: &[ReadData<'_>]) -> Result<Vec<Reading<'_>>, PlanError> {
        if responses.len() != self.reads.len() {
            return Err(PlanError::WrongResponseCount {
                expected: self.reads.len(),
                actual: responses.len(),
            });
        }
        let mut readings = Vec::with_capacity(self.map.len());
        for (index, data) in responses.iter().enumerate() {
            readings.extend(self.decode_read(index, *data)?);
        }
        Ok(readings)
    }
}
