//! Points and read planning: from "what values do I want" to "which requests do I send", and
//! sending them.
//!
//! A [`Point`] names one value on a device: which table, unit id and address it lives at and how
//! its registers or bits decode (a number in some [`Order`](crate::value::Order), a string, a
//! bit). A [`PointMap`] holds many and checks them once, when it is built. A [`ReadPlan`] turns
//! the map into the fewest reads the device limits allow ([`PlanConfig`], [`DeviceLimits`]),
//! then decodes the data those reads returned into [`PointValue`]s. In the write direction,
//! [`Point::encode`] and [`Point::write_request`] turn a value back into registers and the
//! request that stores them.
//!
//! On the wire, [`ReadPlan::execute`] runs a plan through a blocking
//! [`Client`](crate::client::Client) (one read's failure stays that read's) and [`Point::write`]
//! writes a value. Polling many devices on a schedule, with status and history, is the
//! [`harvest`](crate::harvest) engine.
//!
//! This module owns collections (names, lists of points and reads), so it needs `std`; the
//! conversions underneath are the allocation-free [`value`](crate::value) functions.

mod exec;
mod map;
mod plan;

pub use exec::{DeviceError, ReadResult};
pub use map::{MapError, Point, PointKind, PointMap, PointValue, Table, WriteError};
pub use plan::{DeviceLimits, PlanConfig, PlanError, PlannedRead, ReadData, ReadPlan, Reading};
