//! Responses: what a server sends and a client decodes against its request.

use super::cursor::{Reader, Writer, byte_count, offset_of};
use super::device_id::{
    DeviceIdObjects, DeviceIdentification, MAX_OBJECT_BYTES, MEI_CANOPEN_GENERAL_REFERENCE,
    MEI_READ_DEVICE_ID, ReadDeviceIdCode,
};
use super::diagnostics::{DiagnosticsRequest, DiagnosticsResponse, RESTART_CLEAR_EVENT_LOG};
use super::file_record::{FileReadResponses, FileRecords, REFERENCE_TYPE};
use super::list::WireItem;
use super::payload::{Coils, Registers, register_bytes};
use super::request::{Request, check_range, counted_payload, decode_file_records, len_u16};
use super::{
    COIL_OFF, COIL_ON, ExceptionCode, ExceptionResponse, FunctionCode, MAX_FIFO_COUNT, MAX_PDU_LEN,
    MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_COILS, MAX_WRITE_REGISTERS,
};
use crate::error::{DecodeError, EncodeError};

/// Most events the communication event log returns (FC 12).
pub const MAX_EVENT_LOG_LEN: usize = 64;
/// Byte count of an FC 12 response without events: status, event count, message count.
const EVENT_LOG_HEADER_LEN: usize = 6;
/// Value of the FC 43/14 more-follows byte when more objects follow.
const MORE_FOLLOWS: u8 = 0xFF;

/// A Modbus response PDU, borrowing its payload from the received buffer (or from the caller's
/// data when built to be sent). An exception response is a variant, not an error: the server
/// did answer.
///
/// Decoding needs the request the response answers, because Modbus responses are not
/// self-describing: the number of coils, the echoed fields and the FC 08 sub-function only make
/// sense against it.
///
/// ```
/// use modbus_stack::pdu::{ExceptionCode, Request, Response};
/// let request = Request::ReadHoldingRegisters { address: 0x6B, quantity: 3 };
/// let response = Response::decode(&[0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64], &request).unwrap();
/// let Response::ReadHoldingRegisters { values } = response else { panic!() };
/// assert!(values.iter().eq([555, 0, 100]));
///
/// let exception = Response::decode(&[0x83, 0x02], &request).unwrap();
/// assert_eq!(exception.exception_code(), Some(ExceptionCode::IllegalDataAddress));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response<'a> {
    /// FC 01: the coils read, exactly as many as requested.
    ReadCoils {
        /// Coil states.
        values: Coils<'a>,
    },
    /// FC 02: the discrete inputs read.
    ReadDiscreteInputs {
        /// Input states.
        values: Coils<'a>,
    },
    /// FC 03: the holding registers read.
    ReadHoldingRegisters {
        /// Register values.
        values: Registers<'a>,
    },
    /// FC 04: the input registers read.
    ReadInputRegisters {
        /// Register values.
        values: Registers<'a>,
    },
    /// FC 05: echo of the coil written.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// Its new state.
        value: bool,
    },
    /// FC 06: echo of the register written.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// Its new value.
        value: u16,
    },
    /// FC 07: the eight exception status outputs, lowest in bit 0.
    ReadExceptionStatus {
        /// Output states.
        status: u8,
    },
    /// FC 08: diagnostics.
    Diagnostics(DiagnosticsResponse<'a>),
    /// FC 11: status and event counter.
    GetCommEventCounter {
        /// 0xFFFF while a program command is still running, 0x0000 otherwise.
        status: u16,
        /// Successful message completions.
        event_count: u16,
    },
    /// FC 12: status, counters and up to 64 events, newest first.
    GetCommEventLog {
        /// 0xFFFF while a program command is still running, 0x0000 otherwise.
        status: u16,
        /// Successful message completions.
        event_count: u16,
        /// Bus messages seen (as diagnostics counter 0x0B).
        message_count: u16,
        /// Event bytes, newest first.
        events: &'a [u8],
    },
    /// FC 15: echo of where coils were written.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// Number of coils written.
        quantity: u16,
    },
    /// FC 16: echo of where registers were written.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// Number of registers written.
        quantity: u16,
    },
    /// FC 17: the device-specific server id, run indicator and additional data, as raw bytes
    /// (their layout differs between devices).
    ReportServerId {
        /// The bytes after the byte count.
        data: &'a [u8],
    },
    /// FC 20: the records of each requested group, in request order.
    ReadFileRecord {
        /// One register list per group.
        records: FileReadResponses<'a>,
    },
    /// FC 21: echo of the records written.
    WriteFileRecord {
        /// The groups written.
        records: FileRecords<'a>,
    },
    /// FC 22: echo of the mask write.
    MaskWriteRegister {
        /// The register.
        address: u16,
        /// Bits kept.
        and_mask: u16,
        /// Bits set among those not kept.
        or_mask: u16,
    },
    /// FC 23: the registers read (after the write).
    ReadWriteMultipleRegisters {
        /// Register values.
        values: Registers<'a>,
    },
    /// FC 24: the queued values (0–31), not including the count register.
    ReadFifoQueue {
        /// Queue contents, oldest first.
        values: Registers<'a>,
    },
    /// FC 43 / MEI 13: opaque `CANopen` payload.
    CanOpenGeneralReference {
        /// The bytes after the MEI type.
        data: &'a [u8],
    },
    /// FC 43 / MEI 14: device identification objects.
    ReadDeviceIdentification(DeviceIdentification<'a>),
    /// The answer to a [`Request::Custom`]: raw data after the function code.
    Custom {
        /// The function code.
        function: FunctionCode,
        /// The bytes after the function code.
        data: &'a [u8],
    },
    /// An exception response.
    Exception(ExceptionResponse),
}

/// What a bulk read (FC 01, 02, 03, 04, 23) expects back: its function and how many items it
/// asked for. All the fast path of [`Response::decode`] needs of the request, small enough to
/// keep beside a request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BulkRead {
    function: FunctionCode,
    quantity: u16,
}

impl BulkRead {
    /// The bulk read `request` is, if it is one.
    #[must_use]
    pub(crate) const fn of(request: &Request<'_>) -> Option<Self> {
        let (function, quantity) = match *request {
            Request::ReadCoils { quantity, .. } => (FunctionCode::ReadCoils, quantity),
            Request::ReadDiscreteInputs { quantity, .. } => {
                (FunctionCode::ReadDiscreteInputs, quantity)
            }
            Request::ReadHoldingRegisters { quantity, .. } => {
                (FunctionCode::ReadHoldingRegisters, quantity)
            }
            Request::ReadInputRegisters { quantity, .. } => {
                (FunctionCode::ReadInputRegisters, quantity)
            }
            Request::ReadWriteMultipleRegisters { read_quantity, .. } => {
                (FunctionCode::ReadWriteMultipleRegisters, read_quantity)
            }
            _ => return None,
        };
        Some(Self { function, quantity })
    }
}

impl<'a> Response<'a> {
    /// Decodes `pdu` as the response to `request`, checking byte counts, echoes and
    /// quantities against it exactly (`modbus-reference.md` §3.4).
    ///
    /// # Errors
    /// A [`DecodeError`] naming the first mismatch: a foreign function code, a byte count that
    /// does not fit the requested quantity, an echo that differs, a malformed exception.
    pub fn decode(pdu: &'a [u8], request: &Request<'_>) -> Result<Self, DecodeError> {
        // Fast path for well-formed bulk read responses: the value is built straight into the
        // result. Anything it does not accept falls through to `decode_checked`, which finds
        // the error in decision order (or accepts the PDU, with the same result).
        // Written out per arm with early returns, not through `bulk_registers` and friends:
        // that form measured 3-8% slower on the 125-register bench (issue 11).
        match *request {
            Request::ReadCoils { quantity, .. } => {
                let quantity = usize::from(quantity);
                if let Some(bytes) =
                    bulk_payload(pdu, FunctionCode::ReadCoils, quantity.div_ceil(8))
                {
                    if let Ok(values) = Coils::new(bytes, quantity) {
                        return Ok(Self::ReadCoils { values });
                    }
                }
            }
            Request::ReadDiscreteInputs { quantity, .. } => {
                let quantity = usize::from(quantity);
                let function = FunctionCode::ReadDiscreteInputs;
                if let Some(bytes) = bulk_payload(pdu, function, quantity.div_ceil(8)) {
                    if let Ok(values) = Coils::new(bytes, quantity) {
                        return Ok(Self::ReadDiscreteInputs { values });
                    }
                }
            }
            Request::ReadHoldingRegisters { quantity, .. } => {
                let function = FunctionCode::ReadHoldingRegisters;
                if let Some(bytes) = bulk_payload(pdu, function, register_bytes(quantity)) {
                    if let Ok(values) = Registers::try_from(bytes) {
                        return Ok(Self::ReadHoldingRegisters { values });
                    }
                }
            }
            Request::ReadInputRegisters { quantity, .. } => {
                let function = FunctionCode::ReadInputRegisters;
                if let Some(bytes) = bulk_payload(pdu, function, register_bytes(quantity)) {
                    if let Ok(values) = Registers::try_from(bytes) {
                        return Ok(Self::ReadInputRegisters { values });
                    }
                }
            }
            Request::ReadWriteMultipleRegisters { read_quantity, .. } => {
                let function = FunctionCode::ReadWriteMultipleRegisters;
                if let Some(bytes) = bulk_payload(pdu, function, register_bytes(read_quantity)) {
                    if let Ok(values) = Registers::try_from(bytes) {
                        return Ok(Self::ReadWriteMultipleRegisters { values });
                    }
                }
            }
            _ => {}
        }
        Self::decode_checked(pdu, request)
    }

    /// The fast path of [`decode`](Self::decode) for a bulk read: the response if `pdu` is a
    /// well-formed answer to it, else `None` (an exception or an error, for `decode` to name).
    /// A client that kept `bulk` from its request needs no second decode of the request.
    #[must_use]
    pub(crate) fn decode_bulk(pdu: &'a [u8], bulk: BulkRead) -> Option<Self> {
        let BulkRead { function, quantity } = bulk;
        match function {
            FunctionCode::ReadCoils => {
                bulk_bits(pdu, function, quantity).map(|values| Self::ReadCoils { values })
            }
            FunctionCode::ReadDiscreteInputs => {
                bulk_bits(pdu, function, quantity).map(|values| Self::ReadDiscreteInputs { values })
            }
            FunctionCode::ReadHoldingRegisters => bulk_registers(pdu, function, quantity)
                .map(|values| Self::ReadHoldingRegisters { values }),
            FunctionCode::ReadInputRegisters => bulk_registers(pdu, function, quantity)
                .map(|values| Self::ReadInputRegisters { values }),
            FunctionCode::ReadWriteMultipleRegisters => bulk_registers(pdu, function, quantity)
                .map(|values| Self::ReadWriteMultipleRegisters { values }),
            _ => None,
        }
    }

    /// [`decode`](Self::decode) without the fast path: every function, every check, in
    /// decision order. Kept out of line so the fast path stays small enough to inline.
    #[inline(never)]
    // One arm per function code reads better than splitting the table across helpers.
    #[allow(clippy::too_many_lines)]
    fn decode_checked(pdu: &'a [u8], request: &Request<'_>) -> Result<Self, DecodeError> {
        if pdu.len() > MAX_PDU_LEN {
            return Err(DecodeError::PduTooLong { len: pdu.len() });
        }
        let &code = pdu.first().ok_or(DecodeError::Empty)?;
        let function = request.function();
        let mut r = Reader::after_function(pdu, function);
        if code == function.exception_byte() {
            let exception = ExceptionCode::from(r.u8()?);
            r.finish()?;
            return Ok(Self::Exception(ExceptionResponse {
                function,
                code: exception,
            }));
        }
        if code != function.value() {
            return Err(DecodeError::UnexpectedFunction {
                expected: function,
                actual: code,
            });
        }
        let echo = |matches: bool| {
            if matches {
                Ok(())
            } else {
                Err(DecodeError::EchoMismatch { function })
            }
        };
        let response = match *request {
            Request::ReadCoils { quantity, .. } => {
                let quantity = usize::from(quantity);
                let bytes = counted_payload(&mut r, function, quantity.div_ceil(8))?;
                Self::ReadCoils {
                    values: Coils::new(bytes, quantity)?,
                }
            }
            Request::ReadDiscreteInputs { quantity, .. } => {
                let quantity = usize::from(quantity);
                let bytes = counted_payload(&mut r, function, quantity.div_ceil(8))?;
                Self::ReadDiscreteInputs {
                    values: Coils::new(bytes, quantity)?,
                }
            }
            Request::ReadHoldingRegisters { quantity, .. } => Self::ReadHoldingRegisters {
                values: read_registers(&mut r, function, quantity)?,
            },
            Request::ReadInputRegisters { quantity, .. } => Self::ReadInputRegisters {
                values: read_registers(&mut r, function, quantity)?,
            },
            Request::WriteSingleCoil { address, value } => {
                let echoed_address = r.u16()?;
                let echoed_value = match r.u16()? {
                    COIL_ON => true,
                    COIL_OFF => false,
                    value => return Err(DecodeError::InvalidCoilValue { value }),
                };
                echo(echoed_address == address && echoed_value == value)?;
                Self::WriteSingleCoil { address, value }
            }
            Request::WriteSingleRegister { address, value } => {
                echo(r.u16()? == address && r.u16()? == value)?;
                Self::WriteSingleRegister { address, value }
            }
            Request::ReadExceptionStatus => Self::ReadExceptionStatus { status: r.u8()? },
            Request::Diagnostics(diagnostics) => {
                Self::Diagnostics(decode_diagnostics(&mut r, &diagnostics)?)
            }
            Request::GetCommEventCounter => Self::GetCommEventCounter {
                status: r.u16()?,
                event_count: r.u16()?,
            },
            Request::GetCommEventLog => {
                let byte_count = usize::from(r.u8()?);
                let max = EVENT_LOG_HEADER_LEN + MAX_EVENT_LOG_LEN;
                if !(EVENT_LOG_HEADER_LEN..=max).contains(&byte_count) {
                    let expected = byte_count.clamp(EVENT_LOG_HEADER_LEN, max);
                    return Err(DecodeError::ByteCountMismatch {
                        function,
                        byte_count,
                        expected,
                    });
                }
                r.expect_remaining(byte_count)?;
                Self::GetCommEventLog {
                    status: r.u16()?,
                    event_count: r.u16()?,
                    message_count: r.u16()?,
                    events: r.rest(),
                }
            }
            Request::WriteMultipleCoils { address, values } => {
                echo(r.u16()? == address && usize::from(r.u16()?) == values.len())?;
                Self::WriteMultipleCoils {
                    address,
                    quantity: len_u16(function, values.len())?,
                }
            }
            Request::WriteMultipleRegisters { address, values } => {
                echo(r.u16()? == address && usize::from(r.u16()?) == values.len())?;
                Self::WriteMultipleRegisters {
                    address,
                    quantity: len_u16(function, values.len())?,
                }
            }
            Request::ReportServerId => {
                let byte_count = usize::from(r.u8()?);
                r.expect_remaining(byte_count)?;
                Self::ReportServerId { data: r.rest() }
            }
            Request::ReadFileRecord { groups } => {
                let byte_count = usize::from(r.u8()?);
                r.expect_remaining(byte_count)?;
                let bytes = r.rest();
                let mut rest = bytes;
                // The request's groups were not necessarily validated: saturate, as a saturated
                // length never matches a one-byte length field. `pdu.len()` ≤ `MAX_PDU_LEN`.
                for group in groups {
                    let data_len = register_bytes(group.record_length);
                    let expected = data_len.saturating_add(1);
                    let (&len, tail) = rest.split_first().ok_or(DecodeError::Truncated {
                        function,
                        needed: pdu.len().saturating_add(1),
                        actual: pdu.len(),
                    })?;
                    if usize::from(len) != expected {
                        return Err(DecodeError::ByteCountMismatch {
                            function,
                            byte_count: usize::from(len),
                            expected,
                        });
                    }
                    let (&reference_type, tail) =
                        tail.split_first().ok_or(DecodeError::Truncated {
                            function,
                            needed: pdu.len().saturating_add(1),
                            actual: pdu.len(),
                        })?;
                    if reference_type != REFERENCE_TYPE {
                        return Err(DecodeError::InvalidReferenceType { reference_type });
                    }
                    rest = tail.get(data_len..).ok_or(DecodeError::Truncated {
                        function,
                        needed: offset_of(pdu.len(), tail).saturating_add(data_len),
                        actual: pdu.len(),
                    })?;
                }
                if !rest.is_empty() {
                    return Err(DecodeError::TrailingBytes {
                        function,
                        expected: offset_of(pdu.len(), rest),
                        actual: pdu.len(),
                    });
                }
                Self::ReadFileRecord {
                    records: FileReadResponses::from_validated_wire(bytes),
                }
            }
            Request::WriteFileRecord { records } => {
                let byte_count = usize::from(r.u8()?);
                r.expect_remaining(byte_count)?;
                let echoed = decode_file_records(r.rest())?;
                echo(echoed == records && reference_types_are_valid(echoed))?;
                Self::WriteFileRecord { records: echoed }
            }
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                echo(r.u16()? == address && r.u16()? == and_mask && r.u16()? == or_mask)?;
                Self::MaskWriteRegister {
                    address,
                    and_mask,
                    or_mask,
                }
            }
            Request::ReadWriteMultipleRegisters { read_quantity, .. } => {
                Self::ReadWriteMultipleRegisters {
                    values: read_registers(&mut r, function, read_quantity)?,
                }
            }
            Request::ReadFifoQueue { .. } => {
                let byte_count = usize::from(r.u16()?);
                let count = r.u16()?;
                if count > MAX_FIFO_COUNT {
                    return Err(DecodeError::QuantityOutOfRange {
                        function,
                        quantity: usize::from(count),
                        min: 0,
                        max: usize::from(MAX_FIFO_COUNT),
                    });
                }
                // At most 2 + 2 × 31: `count` ≤ `MAX_FIFO_COUNT` was checked just above.
                let data_len = register_bytes(count);
                let expected = data_len.saturating_add(2);
                if byte_count != expected {
                    return Err(DecodeError::ByteCountMismatch {
                        function,
                        byte_count,
                        expected,
                    });
                }
                r.expect_remaining(data_len)?;
                Self::ReadFifoQueue {
                    values: Registers::try_from(r.rest())?,
                }
            }
            Request::CanOpenGeneralReference { .. } => {
                echo(r.u8()? == MEI_CANOPEN_GENERAL_REFERENCE)?;
                Self::CanOpenGeneralReference { data: r.rest() }
            }
            Request::ReadDeviceIdentification { code, .. } => {
                echo(r.u8()? == MEI_READ_DEVICE_ID)?;
                let echoed_code = r.u8()?;
                let echoed_code = ReadDeviceIdCode::from_value(echoed_code)
                    .ok_or(DecodeError::InvalidDeviceIdCode { code: echoed_code })?;
                echo(echoed_code == code)?;
                let conformity_level = r.u8()?;
                let more_follows = match r.u8()? {
                    0 => false,
                    MORE_FOLLOWS => true,
                    value => {
                        return Err(DecodeError::InvalidFieldValue {
                            function,
                            value: u16::from(value),
                        });
                    }
                };
                let next_object_id = r.u8()?;
                let count = r.u8()?;
                let bytes = r.rest();
                let mut rest = bytes;
                for _ in 0..count {
                    let before = rest;
                    if super::DeviceIdObject::read(&mut rest).is_none() {
                        // The object's header and value, from where it starts in the PDU.
                        let object_len = rest.get(1).map_or(0, |&l| usize::from(l));
                        return Err(DecodeError::Truncated {
                            function,
                            needed: offset_of(pdu.len(), before)
                                .saturating_add(2)
                                .saturating_add(object_len),
                            actual: pdu.len(),
                        });
                    }
                }
                if !rest.is_empty() {
                    return Err(DecodeError::TrailingBytes {
                        function,
                        expected: offset_of(pdu.len(), rest),
                        actual: pdu.len(),
                    });
                }
                Self::ReadDeviceIdentification(DeviceIdentification {
                    code,
                    conformity_level,
                    more_follows,
                    next_object_id,
                    objects: DeviceIdObjects::from_validated_wire(bytes),
                })
            }
            Request::Custom { function, .. } => Self::Custom {
                function,
                data: r.rest(),
            },
        };
        r.finish()?;
        Ok(response)
    }

    /// The function code of the request this answers (for an exception, without bit 7).
    #[must_use]
    pub const fn function(&self) -> FunctionCode {
        match self {
            Self::ReadCoils { .. } => FunctionCode::ReadCoils,
            Self::ReadDiscreteInputs { .. } => FunctionCode::ReadDiscreteInputs,
            Self::ReadHoldingRegisters { .. } => FunctionCode::ReadHoldingRegisters,
            Self::ReadInputRegisters { .. } => FunctionCode::ReadInputRegisters,
            Self::WriteSingleCoil { .. } => FunctionCode::WriteSingleCoil,
            Self::WriteSingleRegister { .. } => FunctionCode::WriteSingleRegister,
            Self::ReadExceptionStatus { .. } => FunctionCode::ReadExceptionStatus,
            Self::Diagnostics(_) => FunctionCode::Diagnostics,
            Self::GetCommEventCounter { .. } => FunctionCode::GetCommEventCounter,
            Self::GetCommEventLog { .. } => FunctionCode::GetCommEventLog,
            Self::WriteMultipleCoils { .. } => FunctionCode::WriteMultipleCoils,
            Self::WriteMultipleRegisters { .. } => FunctionCode::WriteMultipleRegisters,
            Self::ReportServerId { .. } => FunctionCode::ReportServerId,
            Self::ReadFileRecord { .. } => FunctionCode::ReadFileRecord,
            Self::WriteFileRecord { .. } => FunctionCode::WriteFileRecord,
            Self::MaskWriteRegister { .. } => FunctionCode::MaskWriteRegister,
            Self::ReadWriteMultipleRegisters { .. } => FunctionCode::ReadWriteMultipleRegisters,
            Self::ReadFifoQueue { .. } => FunctionCode::ReadFifoQueue,
            Self::CanOpenGeneralReference { .. } | Self::ReadDeviceIdentification(_) => {
                FunctionCode::EncapsulatedInterfaceTransport
            }
            Self::Custom { function, .. } => *function,
            Self::Exception(exception) => exception.function,
        }
    }

    /// The exception code, when this is an exception response.
    #[must_use]
    pub const fn exception_code(&self) -> Option<ExceptionCode> {
        match self {
            Self::Exception(exception) => Some(exception.code),
            _ => None,
        }
    }

    /// Checks the response against the specification's limits (quantities, list sizes, PDU
    /// length). [`encode`](Self::encode) calls this, so a server cannot send what a client
    /// would have to reject.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let function = self.function();
        let check = |quantity: usize, min: usize, max: usize| {
            if quantity < min || quantity > max {
                return Err(DecodeError::QuantityOutOfRange {
                    function,
                    quantity,
                    min,
                    max,
                });
            }
            Ok(())
        };
        match self {
            Self::ReadCoils { values } | Self::ReadDiscreteInputs { values } => {
                check(values.len(), 1, usize::from(MAX_READ_BITS))?;
            }
            Self::ReadHoldingRegisters { values }
            | Self::ReadInputRegisters { values }
            | Self::ReadWriteMultipleRegisters { values } => {
                check(values.len(), 1, usize::from(MAX_READ_REGISTERS))?;
            }
            Self::ReadFifoQueue { values } => check(values.len(), 0, usize::from(MAX_FIFO_COUNT))?,
            Self::WriteMultipleCoils { address, quantity } => {
                check(usize::from(*quantity), 1, usize::from(MAX_WRITE_COILS))?;
                check_range(function, *address, usize::from(*quantity))?;
            }
            Self::WriteMultipleRegisters { address, quantity } => {
                check(usize::from(*quantity), 1, usize::from(MAX_WRITE_REGISTERS))?;
                check_range(function, *address, usize::from(*quantity))?;
            }
            Self::GetCommEventLog { events, .. } => {
                check(events.len(), 0, MAX_EVENT_LOG_LEN)?;
            }
            Self::ReadFileRecord { records } => {
                check(records.len(), 1, super::request::MAX_FILE_READ_GROUPS)?;
                for group in records {
                    check(group.len(), 1, usize::from(MAX_READ_REGISTERS))?;
                }
            }
            Self::WriteFileRecord { records } => {
                Request::WriteFileRecord { records: *records }.validate()?;
            }
            Self::ReadDeviceIdentification(identification) => {
                check(identification.objects.len(), 0, usize::from(u8::MAX))?;
                let len = identification.objects.wire_len();
                if len > MAX_OBJECT_BYTES {
                    return Err(DecodeError::ResponseTooLong {
                        function,
                        len: len.saturating_add(7),
                    });
                }
            }
            Self::Custom { function, .. } | Self::Exception(ExceptionResponse { function, .. })
                if !function.is_valid_request_code() =>
            {
                return Err(DecodeError::InvalidFunctionCode {
                    code: function.value(),
                });
            }
            Self::WriteSingleCoil { .. }
            | Self::WriteSingleRegister { .. }
            | Self::ReadExceptionStatus { .. }
            | Self::Diagnostics(_)
            | Self::GetCommEventCounter { .. }
            | Self::ReportServerId { .. }
            | Self::MaskWriteRegister { .. }
            | Self::CanOpenGeneralReference { .. }
            | Self::Custom { .. }
            | Self::Exception(_) => {}
        }
        let len = self.encoded_len();
        if len > MAX_PDU_LEN {
            return Err(DecodeError::PduTooLong { len });
        }
        Ok(())
    }

    /// Length of the encoded PDU in bytes.
    ///
    /// Saturates at `usize::MAX` for payloads no PDU can carry (which [`validate`](Self::validate)
    /// then rejects as too long) rather than overflowing.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let data_len = match self {
            Self::ReadCoils { values } | Self::ReadDiscreteInputs { values } => {
                values.byte_len().saturating_add(1)
            }
            Self::ReadHoldingRegisters { values }
            | Self::ReadInputRegisters { values }
            | Self::ReadWriteMultipleRegisters { values } => values.byte_len().saturating_add(1),
            Self::WriteSingleCoil { .. }
            | Self::WriteSingleRegister { .. }
            | Self::WriteMultipleCoils { .. }
            | Self::WriteMultipleRegisters { .. }
            | Self::GetCommEventCounter { .. } => 4,
            Self::ReadExceptionStatus { .. } | Self::Exception(_) => 1,
            Self::Diagnostics(DiagnosticsResponse::ReturnQueryData { data }) => {
                data.len().saturating_add(2)
            }
            Self::Diagnostics(_) => 4,
            Self::GetCommEventLog { events, .. } => {
                events.len().saturating_add(1 + EVENT_LOG_HEADER_LEN)
            }
            Self::ReportServerId { data } | Self::CanOpenGeneralReference { data } => {
                data.len().saturating_add(1)
            }
            Self::ReadFileRecord { records } => records.wire_len().saturating_add(1),
            Self::WriteFileRecord { records } => records.wire_len().saturating_add(1),
            Self::MaskWriteRegister { .. } => 6,
            Self::ReadFifoQueue { values } => values.byte_len().saturating_add(4),
            Self::ReadDeviceIdentification(identification) => {
                identification.objects.wire_len().saturating_add(6)
            }
            Self::Custom { data, .. } => data.len(),
        };
        data_len.saturating_add(1)
    }

    /// Encodes the PDU into `out`, returning the number of bytes written.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] when the response breaks a limit of the specification (see
    /// [`validate`](Self::validate)); [`EncodeError::BufferTooSmall`] when `out` is shorter
    /// than [`encoded_len`](Self::encoded_len).
    #[allow(clippy::too_many_lines)]
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        // The bulk reads take a fast path that runs `validate`'s checks for them in the same
        // order without the out-of-line calls, so a server's hot path stays inlinable.
        match self {
            Self::ReadCoils { values } | Self::ReadDiscreteInputs { values } => {
                let (payload, len) = counted_header(
                    self.function(),
                    values.len(),
                    MAX_READ_BITS,
                    values.byte_len(),
                    out,
                )?;
                values.write_wire(payload);
                return Ok(len);
            }
            Self::ReadHoldingRegisters { values }
            | Self::ReadInputRegisters { values }
            | Self::ReadWriteMultipleRegisters { values } => {
                let (payload, len) = counted_header(
                    self.function(),
                    values.len(),
                    MAX_READ_REGISTERS,
                    values.byte_len(),
                    out,
                )?;
                values.write_wire(payload);
                return Ok(len);
            }
            _ => {}
        }
        self.validate()?;
        let required = self.encoded_len();
        if out.len() < required {
            return Err(EncodeError::BufferTooSmall {
                required,
                available: out.len(),
            });
        }
        let function = self.function();
        let mut w = Writer::new(out);
        if let Self::Exception(exception) = self {
            w.bytes(&exception.to_bytes())?;
            return Ok(w.position());
        }
        w.u8(function.value())?;
        match self {
            Self::ReadCoils { values } | Self::ReadDiscreteInputs { values } => {
                w.u8(byte_count(function, values.byte_len())?)?;
                values.write_wire(w.slot(values.byte_len())?);
            }
            Self::ReadHoldingRegisters { values }
            | Self::ReadInputRegisters { values }
            | Self::ReadWriteMultipleRegisters { values } => {
                w.u8(byte_count(function, values.byte_len())?)?;
                values.write_wire(w.slot(values.byte_len())?);
            }
            Self::WriteSingleCoil { address, value } => {
                w.u16(*address)?;
                w.u16(if *value { COIL_ON } else { COIL_OFF })?;
            }
            Self::WriteSingleRegister { address, value } => {
                w.u16(*address)?;
                w.u16(*value)?;
            }
            Self::ReadExceptionStatus { status } => w.u8(*status)?,
            Self::Diagnostics(diagnostics) => {
                w.u16(diagnostics.sub_function())?;
                match diagnostics {
                    DiagnosticsResponse::ReturnQueryData { data } => w.bytes(data)?,
                    DiagnosticsResponse::RestartCommunicationsOption { clear_event_log } => {
                        w.u16(if *clear_event_log {
                            RESTART_CLEAR_EVENT_LOG
                        } else {
                            0
                        })?;
                    }
                    DiagnosticsResponse::ReturnDiagnosticRegister { value }
                    | DiagnosticsResponse::ReturnCounter { value, .. } => w.u16(*value)?,
                    DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter } => {
                        w.u16(u16::from_be_bytes([*delimiter, 0]))?;
                    }
                    DiagnosticsResponse::ClearCountersAndDiagnosticRegister
                    | DiagnosticsResponse::ClearOverrunCounterAndFlag => w.u16(0)?,
                }
            }
            Self::GetCommEventCounter {
                status,
                event_count,
            } => {
                w.u16(*status)?;
                w.u16(*event_count)?;
            }
            Self::GetCommEventLog {
                status,
                event_count,
                message_count,
                events,
            } => {
                // `validate` allowed at most 64 events; a saturated count fails anyway.
                let count = events.len().saturating_add(EVENT_LOG_HEADER_LEN);
                w.u8(byte_count(function, count)?)?;
                w.u16(*status)?;
                w.u16(*event_count)?;
                w.u16(*message_count)?;
                w.bytes(events)?;
            }
            Self::WriteMultipleCoils { address, quantity }
            | Self::WriteMultipleRegisters { address, quantity } => {
                w.u16(*address)?;
                w.u16(*quantity)?;
            }
            Self::ReportServerId { data } => {
                w.u8(byte_count(function, data.len())?)?;
                w.bytes(data)?;
            }
            Self::ReadFileRecord { records } => {
                w.u8(byte_count(function, records.wire_len())?)?;
                records.write(&mut w)?;
            }
            Self::WriteFileRecord { records } => {
                w.u8(byte_count(function, records.wire_len())?)?;
                records.write(&mut w)?;
            }
            Self::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                w.u16(*address)?;
                w.u16(*and_mask)?;
                w.u16(*or_mask)?;
            }
            Self::ReadFifoQueue { values } => {
                // `validate` allowed at most 31 values; a saturated count fails anyway.
                w.u16(len_u16(function, values.byte_len().saturating_add(2))?)?;
                w.u16(len_u16(function, values.len())?)?;
                values.write_wire(w.slot(values.byte_len())?);
            }
            Self::CanOpenGeneralReference { data } => {
                w.u8(MEI_CANOPEN_GENERAL_REFERENCE)?;
                w.bytes(data)?;
            }
            Self::ReadDeviceIdentification(identification) => {
                w.u8(MEI_READ_DEVICE_ID)?;
                w.u8(identification.code.value())?;
                w.u8(identification.conformity_level)?;
                w.u8(if identification.more_follows {
                    MORE_FOLLOWS
                } else {
                    0
                })?;
                w.u8(identification.next_object_id)?;
                w.u8(byte_count(function, identification.objects.len())?)?;
                identification.objects.write(&mut w)?;
            }
            Self::Custom { data, .. } => w.bytes(data)?,
            Self::Exception(_) => {}
        }
        Ok(w.position())
    }
}

/// Checks a bulk read response (`1..=max` items in `byte_len` bytes) exactly as
/// [`Response::validate`] and [`Response::encode`] would, writes the function code and byte
/// count, and returns the payload slot and the encoded length.
#[inline]
fn counted_header(
    function: FunctionCode,
    quantity: usize,
    max: u16,
    byte_len: usize,
    out: &mut [u8],
) -> Result<(&mut [u8], usize), EncodeError> {
    let max = usize::from(max);
    if quantity < 1 || quantity > max {
        return Err(DecodeError::QuantityOutOfRange {
            function,
            quantity,
            min: 1,
            max,
        }
        .into());
    }
    // Saturated, the length fails the PDU limit like any other too-long one.
    let required = byte_len.saturating_add(2);
    if required > MAX_PDU_LEN {
        return Err(DecodeError::PduTooLong { len: required }.into());
    }
    let available = out.len();
    let too_small = EncodeError::BufferTooSmall {
        required,
        available,
    };
    let (header, rest) = out.split_first_chunk_mut::<2>().ok_or(too_small)?;
    let payload = rest.get_mut(..byte_len).ok_or(too_small)?;
    *header = [function.value(), byte_count(function, byte_len)?];
    Ok((payload, required))
}

/// The values of a well-formed bit read answer (FC 01, 02), else `None`.
#[inline]
fn bulk_bits(pdu: &[u8], function: FunctionCode, quantity: u16) -> Option<Coils<'_>> {
    let bits = usize::from(quantity);
    Coils::new(bulk_payload(pdu, function, bits.div_ceil(8))?, bits).ok()
}

/// The values of a well-formed register read answer (FC 03, 04, 23), else `None`.
#[inline]
fn bulk_registers(pdu: &[u8], function: FunctionCode, quantity: u16) -> Option<Registers<'_>> {
    Registers::try_from(bulk_payload(pdu, function, register_bytes(quantity))?).ok()
}

/// The payload of a well-formed `[function, byte count, payload]` response whose byte count
/// is `expected`, or `None` for anything else (which the full decoder then diagnoses).
#[inline]
fn bulk_payload(pdu: &[u8], function: FunctionCode, expected: usize) -> Option<&[u8]> {
    let (&[code, count], payload) = pdu.split_first_chunk::<2>()?;
    let ok = pdu.len() <= MAX_PDU_LEN
        && code == function.value()
        && usize::from(count) == expected
        && payload.len() == expected;
    ok.then_some(payload)
}

fn read_registers<'a>(
    r: &mut Reader<'a>,
    function: FunctionCode,
    quantity: u16,
) -> Result<Registers<'a>, DecodeError> {
    Registers::try_from(counted_payload(r, function, register_bytes(quantity))?)
}

fn reference_types_are_valid(records: FileRecords<'_>) -> bool {
    records.wire_bytes().is_none_or(|bytes| {
        let mut rest = bytes;
        while let Some((header, tail)) = rest.split_first_chunk::<7>() {
            let [reference_type, _, _, _, _, l0, l1] = *header;
            if reference_type != REFERENCE_TYPE {
                return false;
            }
            let data_len = register_bytes(u16::from_be_bytes([l0, l1]));
            rest = tail.get(data_len..).unwrap_or_default();
        }
        true
    })
}

fn decode_diagnostics<'a>(
    r: &mut Reader<'a>,
    request: &DiagnosticsRequest<'_>,
) -> Result<DiagnosticsResponse<'a>, DecodeError> {
    let function = FunctionCode::Diagnostics;
    let echo = |matches: bool| {
        if matches {
            Ok(())
        } else {
            Err(DecodeError::EchoMismatch { function })
        }
    };
    echo(r.u16()? == request.sub_function())?;
    Ok(match *request {
        DiagnosticsRequest::ReturnQueryData { data } => {
            let echoed = r.rest();
            echo(echoed == data)?;
            DiagnosticsResponse::ReturnQueryData { data: echoed }
        }
        DiagnosticsRequest::RestartCommunicationsOption { clear_event_log } => {
            let expected = if clear_event_log {
                RESTART_CLEAR_EVENT_LOG
            } else {
                0
            };
            echo(r.u16()? == expected)?;
            DiagnosticsResponse::RestartCommunicationsOption { clear_event_log }
        }
        DiagnosticsRequest::ReturnDiagnosticRegister => {
            DiagnosticsResponse::ReturnDiagnosticRegister { value: r.u16()? }
        }
        DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter } => {
            echo(r.u16()? == u16::from_be_bytes([delimiter, 0]))?;
            DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter }
        }
        DiagnosticsRequest::ForceListenOnlyMode => {
            return Err(DecodeError::NoResponseExpected { function });
        }
        DiagnosticsRequest::ClearCountersAndDiagnosticRegister => {
            echo(r.u16()? == 0)?;
            DiagnosticsResponse::ClearCountersAndDiagnosticRegister
        }
        DiagnosticsRequest::ReturnCounter(counter) => DiagnosticsResponse::ReturnCounter {
            counter,
            value: r.u16()?,
        },
        DiagnosticsRequest::ClearOverrunCounterAndFlag => {
            echo(r.u16()? == 0)?;
            DiagnosticsResponse::ClearOverrunCounterAndFlag
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{BulkRead, Request, Response};

    /// The fast path agrees with the checked decoder: same response when it accepts, and it
    /// declines whatever the checked decoder rejects or reads as an exception.
    #[test]
    fn the_bulk_fast_path_agrees_with_the_checked_decoder() {
        let requests = [
            Request::ReadCoils {
                address: 0,
                quantity: 10,
            },
            Request::ReadDiscreteInputs {
                address: 0,
                quantity: 8,
            },
            Request::ReadHoldingRegisters {
                address: 0,
                quantity: 2,
            },
            Request::ReadInputRegisters {
                address: 0,
                quantity: 1,
            },
        ];
        let pdus: [&[u8]; 9] = [
            &[0x01, 2, 0xFF, 0x03],
            &[0x02, 1, 0xA5],
            &[0x03, 4, 0, 1, 0, 2],
            &[0x04, 2, 0x12, 0x34],
            &[0x03, 2, 0, 1],
            &[0x83, 2],
            &[0x01, 2, 0xFF],
            &[0x04, 2, 0x12, 0x34, 0],
            &[0x02, 1],
        ];
        let mut accepted = 0;
        for request in &requests {
            let bulk = BulkRead::of(request).unwrap();
            for pdu in pdus {
                let checked = Response::decode_checked(pdu, request);
                match Response::decode_bulk(pdu, bulk) {
                    Some(fast) => {
                        assert_eq!(Ok(fast), checked, "{request:?} {pdu:02X?}");
                        accepted += 1;
                    }
                    None => assert!(
                        !matches!(checked, Ok(ref r) if !matches!(r, Response::Exception(_))),
                        "{request:?} {pdu:02X?}: the fast path declined {checked:?}"
                    ),
                }
            }
        }
        assert_eq!(accepted, 4);
        assert!(BulkRead::of(&Request::ReadExceptionStatus).is_none());
    }
}
