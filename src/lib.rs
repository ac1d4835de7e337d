#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

pub mod error;
pub mod pdu;
#[cfg(feature = "std")]
pub mod server;
pub mod session;
pub mod time;

pub use error::{DecodeError, EncodeError};
