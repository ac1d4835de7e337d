//! Blocking-world server building blocks (feature `std`).
//!
//! The protocol logic lives in the sans-IO [`session::server`](crate::session::server); this
//! module supplies what a typical device or simulator needs around it: an in-memory
//! [`DataStore`] that implements [`Handler`](crate::session::Handler) and can be shared
//! between threads, and a [`UnitMap`] that routes unit ids to stores.

mod store;

pub use store::{DataStore, DataStoreBuilder, UnitMap};
