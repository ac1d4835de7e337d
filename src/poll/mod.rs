//! Point maps, read planning and polling: from "what values do I want" to "which requests do I
//! send", and sending them.
//!
//! A [`Point`] names one value on a device: which table, unit id and address it lives at and how
//! its registers or bits decode (a number in some [`Order`](crate::value::Order), a string, a
//! bit). A [`PointMap`] holds many and checks them once, when it is built. A [`ReadPlan`] turns
//! the map into the fewest reads the device limits allow ([`PlanConfig`]), then decodes the
//! data those reads returned into [`PointValue`]s. In the write direction, [`Point::encode`]
//! and [`Point::write_request`] turn a value back into registers and the request that stores
//! them.
//!
//! On the wire, [`ReadPlan::execute`] runs a plan through a blocking
//! [`Client`](crate::client::Client) (one read's failure stays that read's), [`Point::write`]
//! writes a value, and a [`DeviceManager`] polls many devices on their own intervals, keeping
//! each point's latest value and each device's [`DeviceHealth`].
//!
//! This module owns collections (names, lists of points and reads), so it needs `std`; the
//! conversions underneath are the allocation-free [`value`](crate::value) functions.

mod manager;
mod map;
mod plan;

pub use manager::{
    DEFAULT_MAX_BACKOFF, Device, DeviceHealth, DeviceManager, PollError, ReadResult,
};
pub use map::{MapError, Point, PointKind, PointMap, PointValue, Table, WriteError};
pub use plan::{DeviceLimits, PlanConfig, PlanError, PlannedRead, ReadData, ReadPlan, Reading};
