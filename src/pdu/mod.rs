//! The protocol data unit: function code plus data, identical on every transport.
//!
//! [`Request`] and [`Response`] are borrowed enums with a named variant for every public function
//! code; payloads are zero-copy views ([`Registers`], [`Coils`], and the record, object and event
//! iterators of the more exotic functions). Decoding never allocates and never panics: any byte
//! slice yields a value or a [`DecodeError`](crate::DecodeError) that says what is wrong and which
//! exception a server should answer. Encoding writes into a caller buffer of at least
//! `encoded_len()` bytes and validates the message against the same rules, so only what the
//! decoder accepts can be sent.
//!
//! Everything here is `no_std` without `alloc`.
//!
//! Panic freedom is a contract here, enforced by the lints below and verified by fuzzing and
//! property tests: no indexing, no `unwrap`, no explicit panics on any decode or encode path.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod code;
mod cursor;
pub mod device_id;
pub mod diagnostics;
mod exception;
pub mod file_record;
mod function;
mod list;
mod payload;
mod request;
mod response;

pub use device_id::{DeviceIdObject, DeviceIdObjects, DeviceIdentification, ReadDeviceIdCode};
pub use diagnostics::{DiagnosticCounter, DiagnosticsRequest, DiagnosticsResponse};
pub use exception::{ExceptionCode, ExceptionResponse};
pub use file_record::{FileReadGroup, FileReadGroups, FileReadResponses, FileRecord, FileRecords};
pub use function::{EXCEPTION_BIT, FunctionCode};
pub use list::{WireItem, WireList, WireListIter};
pub use payload::{CoilIter, Coils, RegisterIter, Registers};
pub use request::{MAX_FILE_READ_GROUPS, Request};
pub(crate) use response::BulkRead;
pub use response::{MAX_EVENT_LOG_LEN, Response};

/// Largest PDU any transport carries: 256-byte RTU ADU minus address and CRC.
pub const MAX_PDU_LEN: usize = 253;

/// Largest number of coils or discrete inputs one read may ask for (FC 01, 02).
pub const MAX_READ_BITS: u16 = 2000;
/// Largest number of registers one read may ask for (FC 03, 04, and the read half of FC 23).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Largest number of coils one FC 15 request may write.
pub const MAX_WRITE_COILS: u16 = 1968;
/// Largest number of registers one FC 16 request may write.
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Largest number of registers the write half of FC 23 may carry.
pub const MAX_READ_WRITE_WRITE_REGISTERS: u16 = 121;
/// Largest number of queued values an FC 24 response may carry.
pub const MAX_FIFO_COUNT: u16 = 31;
/// Coil value meaning ON in FC 05.
pub const COIL_ON: u16 = 0xFF00;
/// Coil value meaning OFF in FC 05.
pub const COIL_OFF: u16 = 0x0000;
