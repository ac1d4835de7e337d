//! Exception codes and exception responses (`modbus-reference.md` §3).
//!
//! At the PDU layer an exception response is ordinary data: the server did answer. Only the
//! client API turns it into an error.

use core::fmt;

use super::code::open_byte_enum;
use super::function::{EXCEPTION_BIT, FunctionCode};

open_byte_enum! {
    /// The reason a server gives in an exception response.
    ///
    /// Unknown codes (0x09, vendor codes) stay as [`ExceptionCode::Other`] instead of making the
    /// response undecodable.
    pub enum ExceptionCode {
        /// 0x01: the function code, sub-function or MEI type is not supported.
        IllegalFunction = 0x01,
        /// 0x02: the address, or the range start..start+quantity, is not valid on this server.
        IllegalDataAddress = 0x02,
        /// 0x03: a value in the request is not acceptable (quantity, byte count, structure).
        IllegalDataValue = 0x03,
        /// 0x04: an unrecoverable error occurred while performing the action.
        ServerDeviceFailure = 0x04,
        /// 0x05: accepted, but it will take long; poll for completion later.
        Acknowledge = 0x05,
        /// 0x06: busy with a long command (or, on TCP, no free transaction slot); retry later.
        ServerDeviceBusy = 0x06,
        /// 0x07: negative acknowledge of a program command (legacy; decode only).
        NegativeAcknowledge = 0x07,
        /// 0x08: the extended file area failed a consistency check (FC 20/21 only).
        MemoryParityError = 0x08,
        /// 0x0A: a gateway could not allocate a path to the target.
        GatewayPathUnavailable = 0x0A,
        /// 0x0B: a gateway got no answer from the target device.
        GatewayTargetDeviceFailedToRespond = 0x0B,
    }
}

impl ExceptionCode {
    /// The spec's name of a known exception code, or `None` for [`ExceptionCode::Other`].
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::IllegalFunction => "illegal function",
            Self::IllegalDataAddress => "illegal data address",
            Self::IllegalDataValue => "illegal data value",
            Self::ServerDeviceFailure => "server device failure",
            Self::Acknowledge => "acknowledge",
            Self::ServerDeviceBusy => "server device busy",
            Self::NegativeAcknowledge => "negative acknowledge",
            Self::MemoryParityError => "memory parity error",
            Self::GatewayPathUnavailable => "gateway path unavailable",
            Self::GatewayTargetDeviceFailedToRespond => "gateway target device failed to respond",
            Self::Other(_) => return None,
        })
    }
}

impl fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:02X} ({name})", self.value()),
            None => write!(f, "0x{:02X}", self.value()),
        }
    }
}

/// An exception response: the request's function code (without bit 7) and the reason.
///
/// On the wire it is two bytes, `function | 0x80` then `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExceptionResponse {
    /// The function code of the request that failed, as the client sent it.
    pub function: FunctionCode,
    /// Why it failed.
    pub code: ExceptionCode,
}

impl ExceptionResponse {
    /// Length of an exception PDU: the marked function code and the exception code.
    pub const ENCODED_LEN: usize = 2;

    /// The two PDU bytes.
    #[must_use]
    pub fn to_bytes(self) -> [u8; 2] {
        [self.function.value() | EXCEPTION_BIT, self.code.value()]
    }
}

impl fmt::Display for ExceptionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exception {} to function {}", self.code, self.function)
    }
}
