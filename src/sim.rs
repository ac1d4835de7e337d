//! The device simulator's data model (feature `std`): one [`DataStore`] that answers every
//! function code the crate implements, the same for every unit id.
//!
//! The model is deterministic so tests and demos can predict every answer:
//!
//! | Table | Addresses | Initial value |
//! |-------|-----------|---------------|
//! | coils | 0..=9999 | off |
//! | discrete inputs | 0..=9999 | input *i* is on when *i* % 3 == 0 |
//! | holding registers | 0..=9999 | 0 |
//! | input registers | 0..=9999 | register *i* holds *i* |
//!
//! Addresses from 10000 on answer exception 02. Besides the tables there are device
//! identification objects 0x00–0x06 ([`VENDOR_NAME`], [`PRODUCT_CODE`], the crate version, ...),
//! a report-server-id payload ([`SERVER_ID`]), a FIFO queue at pointer address
//! [`FIFO_ADDRESS`], files 1 to [`FILE_COUNT`] of [`FILE_RECORDS`] zeroed records, and exception
//! status [`EXCEPTION_STATUS`]. Diagnostics (FC 08) and the event counter and log (FC 11, 12)
//! are answered by the session core itself.
//!
//! ```
//! use modbus_stack::session::server::{PduServer, Reply};
//!
//! let mut map = modbus_stack::sim::unit_map();
//! let mut server = PduServer::tcp();
//! let mut out = [0u8; 253];
//! // FC 04: input registers 7 and 8 hold 7 and 8.
//! let reply = server.respond(1, &[0x04, 0x00, 0x07, 0x00, 0x02], &mut map, &mut out);
//! assert_eq!(reply, Reply::Send(6));
//! assert_eq!(&out[..6], &[0x04, 0x04, 0x00, 0x07, 0x00, 0x08]);
//! ```

use std::vec::Vec;

use crate::server::{DataStore, UnitMap};

/// Entries in each of the four tables (addresses 0..=9999).
pub const TABLE_LEN: usize = 10_000;
/// Device identification object 0x00, the vendor name.
pub const VENDOR_NAME: &str = "modbus-stack";
/// Device identification object 0x01, the product code.
pub const PRODUCT_CODE: &str = "MBS-SIM";
/// Device identification object 0x02, the revision: the crate version.
pub const REVISION: &str = env!("CARGO_PKG_VERSION");
/// Device identification object 0x03, the vendor URL.
pub const VENDOR_URL: &str = "https://example.invalid/modbus-stack";
/// Device identification object 0x04, the product name.
pub const PRODUCT_NAME: &str = "modbus-stack simulator";
/// Device identification object 0x05, the model name.
pub const MODEL_NAME: &str = "simulator";
/// Device identification object 0x06, the user application name.
pub const APPLICATION_NAME: &str = "modbus-stack sim";
/// FC 17 payload: server id 0x53 ('S'), run indicator 0xFF (on), then an ASCII description.
pub const SERVER_ID: &[u8] = b"S\xFFmodbus-stack simulator";
/// FC 24 pointer address of the simulator's FIFO queue (the specification's example address).
pub const FIFO_ADDRESS: u16 = 0x04DE;
/// The values of the FIFO queue, oldest first (the specification's example).
pub const FIFO_VALUES: [u16; 2] = [0x01B8, 0x1284];
/// Files 1..=`FILE_COUNT` exist for FC 20/21.
pub const FILE_COUNT: u16 = 4;
/// Records in each file (record numbers 0..=9999), initially 0.
pub const FILE_RECORDS: usize = 10_000;
/// The eight exception status outputs FC 07 returns: all clear.
pub const EXCEPTION_STATUS: u8 = 0x00;

/// The initial value of discrete input `address`.
#[must_use]
pub const fn discrete_input(address: u16) -> bool {
    address % 3 == 0
}

/// The initial value of input register `address`.
#[must_use]
pub const fn input_register(address: u16) -> u16 {
    address
}

/// A fresh simulator store, as described in the module documentation.
#[must_use]
pub fn store() -> DataStore {
    let mut builder = DataStore::builder()
        .coils(TABLE_LEN)
        .discrete_inputs(TABLE_LEN)
        .holding_registers(TABLE_LEN)
        .input_registers(TABLE_LEN)
        .device_identification(0x00, VENDOR_NAME)
        .device_identification(0x01, PRODUCT_CODE)
        .device_identification(0x02, REVISION)
        .device_identification(0x03, VENDOR_URL)
        .device_identification(0x04, PRODUCT_NAME)
        .device_identification(0x05, MODEL_NAME)
        .device_identification(0x06, APPLICATION_NAME)
        .server_id(SERVER_ID)
        .fifo_queue(FIFO_ADDRESS, FIFO_VALUES.to_vec())
        .exception_status(EXCEPTION_STATUS);
    for file_number in 1..=FILE_COUNT {
        builder = builder.file(file_number, FILE_RECORDS);
    }
    let store = builder.build();
    // TABLE_LEN fits u16, so the address range is exact.
    let addresses = 0..=u16::try_from(TABLE_LEN - 1).unwrap_or(u16::MAX);
    let discrete: Vec<bool> = addresses.clone().map(discrete_input).collect();
    let input: Vec<u16> = addresses.map(input_register).collect();
    // Both writes are in range by construction; a failure would leave the defaults (all 0).
    let _ = store.write_discrete_inputs(0, &discrete);
    let _ = store.write_input_registers(0, &input);
    store
}

/// The simulator as a [`UnitMap`]: one fresh [`store`] serving every unit id.
#[must_use]
pub fn unit_map() -> UnitMap {
    UnitMap::serving_all(store())
}
