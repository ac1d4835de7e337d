//! Shared parts of the harvest crate's integration tests.

#![allow(unreachable_pub)]

pub mod mqtt;
pub mod node;
pub mod sparkplug_js;
