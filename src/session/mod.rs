//! Sans-IO protocol sessions: the state a Modbus endpoint keeps between messages, with no I/O.
//!
//! A session takes the bytes a link received, with the time they arrived, and produces the bytes
//! to send and the time it next needs to be woken; it never touches a socket, a serial port or a
//! clock of its own. That keeps the protocol logic (framing, matching, timers, decision order,
//! counters, broadcast and listen-only rules) testable with plain byte slices and usable on a
//! microcontroller without `alloc`, and every driver (blocking, async, firmware) a thin loop.
//!
//! The two sessions speak one vocabulary: `handle_input(now, bytes)`, `handle_timeout(now)`,
//! `poll_transmit(out)`, `poll_timeout()`. [`client::ClientSession`] frames requests, matches
//! responses to them and keeps their retry timers; [`server::ServerSession`] frames requests,
//! answers them from a [`server::Handler`] and times its answers.

pub mod client;
pub mod server;
