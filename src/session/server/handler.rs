//! The data model a server serves: the [`Handler`] trait, and the [`Unit`] each call is for.

use crate::pdu::{Coils, ExceptionCode, FunctionCode, Registers};

/// The unit a request is addressed to, as a [`Handler`] sees it.
///
/// A handler for one device ignores it; a handler for several (a gateway, a
/// [`UnitMap`](crate::server::UnitMap)) routes by it. Only writes are ever [`Broadcast`]: the
/// session never executes a reading function for a broadcast (§8.9).
///
/// [`Broadcast`]: Unit::Broadcast
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// The unit with this id.
    Id(u8),
    /// Every unit at once: unit id 0 on a framing with broadcast (serial lines, RTU over TCP).
    Broadcast,
}

/// Serves the data model of one unit. Every method defaults to exception 01 (illegal function),
/// so an implementation overrides only the functions its device supports.
///
/// The server core has already checked the quantities, byte counts and value rules (exception
/// 03) and that no range wraps the 16-bit address space, before calling a method. What it cannot
/// know is the handler's map: a method answers [`ExceptionCode::IllegalDataAddress`] (02) for an
/// address or range outside it, and [`ExceptionCode::ServerDeviceFailure`] (04) when the action
/// fails. `out` slices are exactly as long as the request's quantity.
pub trait Handler {
    /// FC 01: fill `out` with the coils from `address`.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_coils(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 02: fill `out` with the discrete inputs from `address`.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_discrete_inputs(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 03: fill `out` with the holding registers from `address`.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_holding_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 04: fill `out` with the input registers from `address`.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_input_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 05: switch the coil at `address` on (`true`) or off.
    ///
    /// # Errors
    /// The exception to answer.
    fn write_single_coil(
        &mut self,
        unit: Unit,
        address: u16,
        value: bool,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, value);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 06: write the holding register at `address`.
    ///
    /// # Errors
    /// The exception to answer.
    fn write_single_register(
        &mut self,
        unit: Unit,
        address: u16,
        value: u16,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, value);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 15: write `values` to the coils from `address`, all or nothing.
    ///
    /// # Errors
    /// The exception to answer.
    fn write_multiple_coils(
        &mut self,
        unit: Unit,
        address: u16,
        values: Coils<'_>,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 16: write `values` to the holding registers from `address`, all or nothing.
    ///
    /// # Errors
    /// The exception to answer.
    fn write_multiple_registers(
        &mut self,
        unit: Unit,
        address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 22: `register = (register & and_mask) | (or_mask & !and_mask)` at `address`.
    ///
    /// # Errors
    /// The exception to answer.
    fn mask_write_register(
        &mut self,
        unit: Unit,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, address, and_mask, or_mask);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 23: write `values` from `write_address` first, then fill `out` with the holding
    /// registers from `read_address`. Check both ranges before writing anything.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_write_multiple_registers(
        &mut self,
        unit: Unit,
        read_address: u16,
        out: &mut [u16],
        write_address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, read_address, out, write_address, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 24: copy the FIFO queue whose count register is at `address` into `out` (31 slots),
    /// oldest first, and return the number of values. A queue holding more than 31 values is
    /// [`ExceptionCode::IllegalDataValue`] (03); an unknown pointer address is 02.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_fifo_queue(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<usize, ExceptionCode> {
        let _ = (unit, address, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 20, once per group: fill `out` with the records of `file_number` from
    /// `record_number`. The core has checked the file number (≥ 1) and that the records lie in
    /// 0..10000; a file or record the device lacks is 02.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_file_record(
        &mut self,
        unit: Unit,
        file_number: u16,
        record_number: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, file_number, record_number, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 21, once per group in request order: write `values` into `file_number` from
    /// `record_number`.
    ///
    /// # Errors
    /// The exception to answer.
    fn write_file_record(
        &mut self,
        unit: Unit,
        file_number: u16,
        record_number: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        let _ = (unit, file_number, record_number, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 07: the eight exception status outputs, lowest in bit 0.
    ///
    /// # Errors
    /// The exception to answer.
    fn read_exception_status(&mut self, unit: Unit) -> Result<u8, ExceptionCode> {
        let _ = unit;
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 17: write the server id, run indicator and any additional data into `out` (up to 251
    /// bytes) and return the number of bytes written.
    ///
    /// # Errors
    /// The exception to answer.
    fn report_server_id(&mut self, unit: Unit, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let _ = (unit, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 43/14: the device's conformity level (0x01–0x03 stream only, 0x81–0x83 with
    /// individual access). It caps the category a stream request is answered at.
    fn device_identification_conformity_level(&mut self, unit: Unit) -> u8 {
        let _ = unit;
        0x81
    }

    /// FC 43/14: copy the value of object `object_id` into `out` (244 bytes) and return its
    /// length, or `Ok(None)` when the device has no such object. The core applies the stream,
    /// individual-access and splitting rules; a device implementing this must have objects
    /// 0x00–0x02.
    ///
    /// # Errors
    /// The exception to answer; the default (01) makes the whole MEI 14 unsupported.
    fn read_device_identification(
        &mut self,
        unit: Unit,
        object_id: u8,
        out: &mut [u8],
    ) -> Result<Option<usize>, ExceptionCode> {
        let _ = (unit, object_id, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// FC 43/13: answer a `CANopen` general reference request: `data` follows the MEI type, the
    /// response data (after the MEI type) goes into `out`; returns its length.
    ///
    /// # Errors
    /// The exception to answer.
    fn can_open_general_reference(
        &mut self,
        unit: Unit,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ExceptionCode> {
        let _ = (unit, data, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// Any function code without a typed variant (user-defined 65–72 and 100–110, reserved
    /// codes): `data` follows the function code; write the response data (after the function
    /// code) into `out` and return its length.
    ///
    /// # Errors
    /// The exception to answer.
    fn custom(
        &mut self,
        unit: Unit,
        function: FunctionCode,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ExceptionCode> {
        let _ = (unit, function, data, out);
        Err(ExceptionCode::IllegalFunction)
    }
}

/// A handler borrowed mutably is a handler: a serial server can serve one the caller keeps.
impl<H: Handler + ?Sized> Handler for &mut H {
    fn read_coils(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        (**self).read_coils(unit, address, out)
    }

    fn read_discrete_inputs(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [bool],
    ) -> Result<(), ExceptionCode> {
        (**self).read_discrete_inputs(unit, address, out)
    }

    fn read_holding_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        (**self).read_holding_registers(unit, address, out)
    }

    fn read_input_registers(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        (**self).read_input_registers(unit, address, out)
    }

    fn write_single_coil(
        &mut self,
        unit: Unit,
        address: u16,
        value: bool,
    ) -> Result<(), ExceptionCode> {
        (**self).write_single_coil(unit, address, value)
    }

    fn write_single_register(
        &mut self,
        unit: Unit,
        address: u16,
        value: u16,
    ) -> Result<(), ExceptionCode> {
        (**self).write_single_register(unit, address, value)
    }

    fn write_multiple_coils(
        &mut self,
        unit: Unit,
        address: u16,
        values: Coils<'_>,
    ) -> Result<(), ExceptionCode> {
        (**self).write_multiple_coils(unit, address, values)
    }

    fn write_multiple_registers(
        &mut self,
        unit: Unit,
        address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        (**self).write_multiple_registers(unit, address, values)
    }

    fn mask_write_register(
        &mut self,
        unit: Unit,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<(), ExceptionCode> {
        (**self).mask_write_register(unit, address, and_mask, or_mask)
    }

    fn read_write_multiple_registers(
        &mut self,
        unit: Unit,
        read_address: u16,
        out: &mut [u16],
        write_address: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        (**self).read_write_multiple_registers(unit, read_address, out, write_address, values)
    }

    fn read_fifo_queue(
        &mut self,
        unit: Unit,
        address: u16,
        out: &mut [u16],
    ) -> Result<usize, ExceptionCode> {
        (**self).read_fifo_queue(unit, address, out)
    }

    fn read_file_record(
        &mut self,
        unit: Unit,
        file_number: u16,
        record_number: u16,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        (**self).read_file_record(unit, file_number, record_number, out)
    }

    fn write_file_record(
        &mut self,
        unit: Unit,
        file_number: u16,
        record_number: u16,
        values: Registers<'_>,
    ) -> Result<(), ExceptionCode> {
        (**self).write_file_record(unit, file_number, record_number, values)
    }

    fn read_exception_status(&mut self, unit: Unit) -> Result<u8, ExceptionCode> {
        (**self).read_exception_status(unit)
    }

    fn report_server_id(&mut self, unit: Unit, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        (**self).report_server_id(unit, out)
    }

    fn device_identification_conformity_level(&mut self, unit: Unit) -> u8 {
        (**self).device_identification_conformity_level(unit)
    }

    fn read_device_identification(
        &mut self,
        unit: Unit,
        object_id: u8,
        out: &mut [u8],
    ) -> Result<Option<usize>, ExceptionCode> {
        (**self).read_device_identification(unit, object_id, out)
    }

    fn can_open_general_reference(
        &mut self,
        unit: Unit,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ExceptionCode> {
        (**self).can_open_general_reference(unit, data, out)
    }

    fn custom(
        &mut self,
        unit: Unit,
        function: FunctionCode,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ExceptionCode> {
        (**self).custom(unit, function, data, out)
    }
}
