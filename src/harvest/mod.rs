//! The harvesting engine: many devices on many links polled on their schedules, with status,
//! latest values, bounded history, counters, writes and subscriptions.
//!
//! An [`Engine`] takes [`DeviceConfig`]s: a name, a [`Link`], a unit id and a
//! [`PointMap`](crate::point::PointMap), with an interval and per-device limits. Devices
//! whose links are the same (one TCP address, one serial port; see [`Link::id`]) share one
//! connection and one worker thread, which polls them in turn, never two requests at once;
//! devices on different links never wait for each other. A worker opens its link lazily and
//! reopens it with backoff and jitter, so a device that is offline when it is added is polled
//! once it appears. A device that stops answering backs off on its own ([`Backoff`]), and its
//! probes never take a healthy device's slot on a shared line; a unit id that is silent never
//! closes the shared link.
//!
//! Each poll runs the device's [`ReadPlan`](crate::point::ReadPlan). A coalesced read answered
//! with exception 02 (illegal data address) is split: its points are read one by one, the
//! addresses between them become holes (or, when there are none, read boundaries), and the
//! plan is rebuilt around them; [`DeviceSnapshot::plan`] always explains the current one.
//!
//! The engine keeps, per point, the latest value with its [`Quality`] and timestamp and a ring
//! of the latest [`DeviceConfig::history`] [`Sample`]s (allocated whole at the first sample, so
//! memory depends on the configuration only); per device a [`Status`] and [`Counters`].
//! [`Engine::subscribe`] streams [`Event`]s through a bounded channel that never blocks a
//! worker. [`Engine::write`] goes through the device's worker, in order with its polls.
//!
//! With feature `tracing`, the engine logs connects, reconnects, backoff, plan rebuilds and
//! discarded answers as `tracing` events (target `modbus_stack::harvest`).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use modbus_stack::harvest::{DeviceConfig, Engine, Event, Link, Quality};
//! use modbus_stack::point::{Point, PointKind, PointMap, PointValue, Table};
//! use modbus_stack::server::tcp::{Config, TcpServer};
//! use modbus_stack::value::{DataType, Order};
//!
//! let server = TcpServer::bind("127.0.0.1:0", Config::tcp())?
//!     .spawn(modbus_stack::sim::unit_map())?;
//! let points = PointMap::new([Point::new(
//!     "setpoint", 1, Table::HoldingRegisters, 0, PointKind::number(DataType::U16, Order::Abcd),
//! )])?;
//! let device = DeviceConfig::new("boiler", Link::tcp(server.local_addr().to_string()), 1, points)
//!     .with_interval(Duration::from_millis(50))
//!     .with_writable(["setpoint"]);
//! let engine = Engine::new();
//! let events = engine.subscribe(64);
//! engine.add_device(device)?;
//! let sample = engine.write("boiler", "setpoint", PointValue::U16(42))?;
//! assert_eq!(sample.value, Some(PointValue::U16(42)));
//! // Polls go on in the background; the latest value is served from memory.
//! while let Some(event) = events.recv_timeout(Duration::from_secs(5)) {
//!     if let Event::Sample(sample) = event {
//!         assert_eq!(sample.quality, Quality::Good);
//!         break;
//!     }
//! }
//! let snapshot = engine.device("boiler").unwrap();
//! assert_eq!(snapshot.points[0].value, Some(PointValue::U16(42)));
//! engine.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[macro_use]
mod trace;

mod config;
mod engine;
mod random;
mod state;
mod worker;

pub use config::{Backoff, DEFAULT_HISTORY, DeviceConfig, Link};
pub use engine::{Engine, Error, Event, PollReport, Subscription};
pub use state::{
    Counters, DeviceSnapshot, Histogram, PlanView, PlannedReadView, PointSnapshot, Quality,
    RTT_BUCKETS_MICROS, Sample, Status, table_name,
};
