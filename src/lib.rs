#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod client;
mod error;
pub mod frame;
#[cfg(feature = "std")]
pub mod harvest;
pub mod pdu;
#[cfg(feature = "std")]
pub mod point;
#[cfg(feature = "std")]
pub mod server;
pub mod session;
#[cfg(feature = "std")]
pub mod sim;
pub mod time;
#[cfg(feature = "std")]
pub mod transport;
pub mod value;

pub use error::{DecodeError, EncodeError, FrameError};
