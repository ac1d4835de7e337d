//! Point maps and read planning: from "what values do I want" to "which requests do I send".
//!
//! A [`Point`] names one value on a device: which table, unit id and address it lives at and how
//! its registers or bits decode (a number in some [`Order`](crate::value::Order), a string, a
//! bit). A [`PointMap`] holds many and checks them once, when it is built. A [`ReadPlan`] turns
//! the map into the fewest reads the device limits allow ([`PlanConfig`]), then decodes the
//! data those reads returned into [`PointValue`]s. In the write direction, [`Point::encode`]
//! and [`Point::write_request`] turn a value back into registers and the request that stores
//! them.
//!
//! This module owns collections (names, lists of points and reads), so it needs `std`; the
//! conversions underneath are the allocation-free [`value`](crate::value) functions.

mod map;
mod plan;

pub use map::{MapError, Point, PointKind, PointMap, PointValue, Table, WriteError};
pub use plan::{DeviceLimits, PlanConfig, PlanError, PlannedRead, ReadData, ReadPlan, Reading};
