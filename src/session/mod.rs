//! Sans-IO protocol sessions: the state a Modbus endpoint keeps between messages, with no I/O.
//!
//! A session consumes bytes that a transport has already framed and produces bytes for the
//! transport to send; it never touches a socket, a serial port or a clock of its own. That keeps
//! the protocol logic (decision order, counters, broadcast and listen-only rules) testable with
//! plain byte slices and usable on a microcontroller without `alloc`.
//!
//! [`server`] holds the server core: a [`Handler`] serves the data model and a
//! [`Server`] turns one request PDU into one reply. [`client`] holds the client core: a
//! [`client::Session`] frames requests, matches responses to them and keeps their timers.

pub mod client;
pub mod server;

pub use server::{Config, Handler, Reply, Server, SilentReason, UnitIds};
