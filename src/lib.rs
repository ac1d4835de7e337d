//! modbus-stack: a complete Modbus stack with a `no_std`, allocation-free sans-IO core.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

pub mod error;
pub mod frame;
pub mod pdu;
pub mod time;

pub use error::{DecodeError, EncodeError, FrameError};
