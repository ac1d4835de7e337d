//! Blocking-world server building blocks (feature `std`).
//!
//! The protocol logic lives in the sans-IO [`session::server`](crate::session::server); this
//! module supplies what a typical device or simulator needs around it: an in-memory
//! [`DataStore`] that implements [`Handler`](crate::session::Handler) and can be shared
//! between threads, a [`UnitMap`] that routes unit ids to stores, and the blocking servers that
//! move bytes between the network or a serial line and the session: [`tcp::TcpServer`] (Modbus
//! TCP and RTU over TCP) and, with feature `serial`, `serial::SerialServer` (RTU and ASCII).
//!
//! The servers are generic over a [`Service`]: anything that turns a request PDU into a reply
//! with a [`Server`] session. [`UnitMap`] and [`DataStore`] are services.

mod store;
pub mod tcp;

#[cfg(feature = "serial")]
pub mod serial;

pub use store::{DataStore, DataStoreBuilder, UnitMap};

use crate::session::{Reply, Server};

/// What a blocking server asks of the data model behind it: answer one request PDU.
///
/// Implementations are shared between connection threads (`Sync`), so interior data needs its
/// own locking, as [`DataStore`] has. Each connection or serial line owns its [`Server`] session
/// (unit-id filter, counters, listen-only mode) and passes it in.
pub trait Service: Send + Sync {
    /// Answers `request_pdu`, addressed to `unit_id`, into `out` (253 bytes), usually by calling
    /// [`Server::respond`] with a [`Handler`](crate::session::Handler).
    fn respond(
        &self,
        server: &mut Server,
        unit_id: u8,
        request_pdu: &[u8],
        out: &mut [u8],
    ) -> Reply;
}

impl Service for UnitMap {
    fn respond(
        &self,
        server: &mut Server,
        unit_id: u8,
        request_pdu: &[u8],
        out: &mut [u8],
    ) -> Reply {
        Self::respond(self, server, unit_id, request_pdu, out)
    }
}

impl Service for DataStore {
    fn respond(
        &self,
        server: &mut Server,
        unit_id: u8,
        request_pdu: &[u8],
        out: &mut [u8],
    ) -> Reply {
        server.respond(unit_id, request_pdu, &mut &*self, out)
    }
}
