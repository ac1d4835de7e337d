//! Requests: what a client sends and a server decodes.

use super::cursor::{Reader, Writer, byte_count, offset_of};
use super::device_id::{MEI_CANOPEN_GENERAL_REFERENCE, MEI_READ_DEVICE_ID, ReadDeviceIdCode};
use super::diagnostics::{self, DiagnosticCounter, DiagnosticsRequest, RESTART_CLEAR_EVENT_LOG};
use super::file_record::{
    FileReadGroups, FileRecords, MAX_FILE_WRITE_RECORDS, READ_GROUP_LEN, REFERENCE_TYPE,
    check_file_range,
};
use super::payload::{Coils, Registers, register_bytes};
use super::{
    COIL_OFF, COIL_ON, FunctionCode, MAX_PDU_LEN, MAX_READ_BITS, MAX_READ_REGISTERS,
    MAX_READ_WRITE_WRITE_REGISTERS, MAX_WRITE_COILS, MAX_WRITE_REGISTERS,
};
use crate::error::{DecodeError, EncodeError};

/// Most groups one FC 20 request may carry: byte count 0xF5 = 245 = 35 × 7.
pub const MAX_FILE_READ_GROUPS: usize = 35;

/// A Modbus request PDU, borrowing its payload from the buffer it was decoded from (or from the
/// caller's data when built to be sent).
///
/// ```
/// use modbus_stack::pdu::{Request, Registers};
/// // Spec example: read 3 holding registers from address 0x6B.
/// let request = Request::decode(&[0x03, 0x00, 0x6B, 0x00, 0x03]).unwrap();
/// assert_eq!(request, Request::ReadHoldingRegisters { address: 0x6B, quantity: 3 });
///
/// // Build and encode a write without any scratch buffer for the values.
/// let write = Request::WriteMultipleRegisters { address: 1, values: Registers::from_words(&[0x000A, 0x0102]) };
/// let mut buf = [0u8; 253];
/// let len = write.encode(&mut buf).unwrap();
/// assert_eq!(&buf[..len], &[0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request<'a> {
    /// FC 01: read `quantity` (1–2000) coils from `address`.
    ReadCoils {
        /// First coil.
        address: u16,
        /// Number of coils.
        quantity: u16,
    },
    /// FC 02: read `quantity` (1–2000) discrete inputs from `address`.
    ReadDiscreteInputs {
        /// First input.
        address: u16,
        /// Number of inputs.
        quantity: u16,
    },
    /// FC 03: read `quantity` (1–125) holding registers from `address`.
    ReadHoldingRegisters {
        /// First register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
    /// FC 04: read `quantity` (1–125) input registers from `address`.
    ReadInputRegisters {
        /// First register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
    /// FC 05: switch one coil on or off (0xFF00 / 0x0000 on the wire).
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// `true` for ON.
        value: bool,
    },
    /// FC 06: write one holding register.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The new value.
        value: u16,
    },
    /// FC 07: read the eight exception status outputs.
    ReadExceptionStatus,
    /// FC 08: diagnostics.
    Diagnostics(DiagnosticsRequest<'a>),
    /// FC 11: read the status word and the event counter.
    GetCommEventCounter,
    /// FC 12: read the status, counters and the event log.
    GetCommEventLog,
    /// FC 15: write 1–1968 coils from `address`.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// The values; their number is the quantity.
        values: Coils<'a>,
    },
    /// FC 16: write 1–123 holding registers from `address`.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// The values; their number is the quantity.
        values: Registers<'a>,
    },
    /// FC 17: read the server id, run status and device-specific data.
    ReportServerId,
    /// FC 20: read 1–35 groups of file records.
    ReadFileRecord {
        /// What to read.
        groups: FileReadGroups<'a>,
    },
    /// FC 21: write groups of file records.
    WriteFileRecord {
        /// What to write.
        records: FileRecords<'a>,
    },
    /// FC 22: `register = (register & and_mask) | (or_mask & !and_mask)`.
    MaskWriteRegister {
        /// The register.
        address: u16,
        /// Bits to keep.
        and_mask: u16,
        /// Bits to set among those not kept.
        or_mask: u16,
    },
    /// FC 23: write `values` (1–121) from `write_address`, then read `read_quantity` (1–125)
    /// from `read_address`.
    ReadWriteMultipleRegisters {
        /// First register to read.
        read_address: u16,
        /// Number of registers to read.
        read_quantity: u16,
        /// First register to write.
        write_address: u16,
        /// Values to write (written before the read).
        values: Registers<'a>,
    },
    /// FC 24: read the FIFO queue whose count register is at `address`.
    ReadFifoQueue {
        /// The FIFO pointer address (the count register).
        address: u16,
    },
    /// FC 43 / MEI 13: `CANopen` general reference, an opaque payload defined by `CiA`.
    CanOpenGeneralReference {
        /// The bytes after the MEI type.
        data: &'a [u8],
    },
    /// FC 43 / MEI 14: read device identification objects.
    ReadDeviceIdentification {
        /// Which objects.
        code: ReadDeviceIdCode,
        /// The first object wanted (stream access) or the object wanted (individual access).
        object_id: u8,
    },
    /// Any other function code (user-defined, reserved, unassigned), with its raw data.
    ///
    /// Encoding also accepts a public code here, as an escape hatch for legacy sub-functions;
    /// decoding always gives public codes their typed variant.
    Custom {
        /// The function code, 1–127.
        function: FunctionCode,
        /// The bytes after the function code.
        data: &'a [u8],
    },
}

fn check_quantity(
    function: FunctionCode,
    quantity: usize,
    max: impl Into<usize>,
) -> Result<(), DecodeError> {
    let max = max.into();
    if quantity == 0 || quantity > max {
        return Err(DecodeError::QuantityOutOfRange {
            function,
            quantity,
            min: 1,
            max,
        });
    }
    Ok(())
}

/// `address + quantity − 1 ≤ 0xFFFF`, in a wider type so the range never wraps (§3.3). That type
/// is `u64`, not `usize`: `0x1_0000` does not fit a 16-bit `usize`.
pub(crate) fn check_range(
    function: FunctionCode,
    address: u16,
    quantity: usize,
) -> Result<(), DecodeError> {
    let quantity_wide = u64::try_from(quantity).unwrap_or(u64::MAX);
    if u64::from(address).saturating_add(quantity_wide) > 0x1_0000 {
        return Err(DecodeError::AddressOverflow {
            function,
            address,
            quantity,
        });
    }
    Ok(())
}

/// The quantity and range rules of the FC 01–04 reads, in decision order.
#[inline]
fn check_read(
    function: FunctionCode,
    address: u16,
    quantity: u16,
    max: u16,
) -> Result<(), DecodeError> {
    check_quantity(function, usize::from(quantity), max)?;
    check_range(function, address, usize::from(quantity))
}

/// Reads the two words that end a fixed-layout request, then checks nothing follows them.
///
/// Always inlined: out of line, its `Result` goes through memory and is read back with a wider
/// load than the stores that wrote it, which stalls store-to-load forwarding.
#[expect(
    clippy::inline_always,
    reason = "measured: out of line it costs a forwarding stall per decode"
)]
#[inline(always)]
fn read_pair(r: &mut Reader<'_>) -> Result<(u16, u16), DecodeError> {
    let first = r.u16()?;
    let second = r.u16()?;
    r.finish()?;
    Ok((first, second))
}

impl<'a> Request<'a> {
    /// Decodes a request PDU (function code first).
    ///
    /// Checks run in the specification's decision order, so the error returned maps to the
    /// exception a server must send (see [`DecodeError::exception_code`]).
    ///
    /// # Errors
    /// A [`DecodeError`] naming the first rule the bytes break.
    // One arm per function code reads better than splitting the table across helpers.
    #[allow(clippy::too_many_lines)]
    pub fn decode(pdu: &'a [u8]) -> Result<Self, DecodeError> {
        if pdu.len() > MAX_PDU_LEN {
            return Err(DecodeError::PduTooLong { len: pdu.len() });
        }
        let &code = pdu.first().ok_or(DecodeError::Empty)?;
        let function = FunctionCode::from(code);
        if !function.is_valid_request_code() {
            return Err(DecodeError::InvalidFunctionCode { code });
        }
        let mut r = Reader::after_function(pdu, function);
        // The common, fixed-layout functions validate and return from their arm, so the value is
        // built straight into the result instead of in a temporary that `validate` then reads
        // back (a store-to-load round trip costing more than the checks). Their checks run in the
        // same order as the general path below: fields, trailing bytes, values, addresses. The
        // PDU length rule cannot fail for them, as a decoded PDU is at most `MAX_PDU_LEN` long.
        let request = match function {
            FunctionCode::ReadCoils => {
                let (address, quantity) = read_pair(&mut r)?;
                check_read(function, address, quantity, MAX_READ_BITS)?;
                return Ok(Self::ReadCoils { address, quantity });
            }
            FunctionCode::ReadDiscreteInputs => {
                let (address, quantity) = read_pair(&mut r)?;
                check_read(function, address, quantity, MAX_READ_BITS)?;
                return Ok(Self::ReadDiscreteInputs { address, quantity });
            }
            FunctionCode::ReadHoldingRegisters => {
                let (address, quantity) = read_pair(&mut r)?;
                check_read(function, address, quantity, MAX_READ_REGISTERS)?;
                return Ok(Self::ReadHoldingRegisters { address, quantity });
            }
            FunctionCode::ReadInputRegisters => {
                let (address, quantity) = read_pair(&mut r)?;
                check_read(function, address, quantity, MAX_READ_REGISTERS)?;
                return Ok(Self::ReadInputRegisters { address, quantity });
            }
            FunctionCode::WriteSingleCoil => {
                let address = r.u16()?;
                let value = match r.u16()? {
                    COIL_ON => true,
                    COIL_OFF => false,
                    value => return Err(DecodeError::InvalidCoilValue { value }),
                };
                r.finish()?;
                return Ok(Self::WriteSingleCoil { address, value });
            }
            FunctionCode::WriteSingleRegister => {
                let (address, value) = read_pair(&mut r)?;
                return Ok(Self::WriteSingleRegister { address, value });
            }
            FunctionCode::ReadExceptionStatus => Self::ReadExceptionStatus,
            FunctionCode::Diagnostics => Self::Diagnostics(decode_diagnostics(&mut r)?),
            FunctionCode::GetCommEventCounter => Self::GetCommEventCounter,
            FunctionCode::GetCommEventLog => Self::GetCommEventLog,
            FunctionCode::WriteMultipleCoils => {
                let address = r.u16()?;
                let quantity = usize::from(r.u16()?);
                check_quantity(function, quantity, MAX_WRITE_COILS)?;
                // `counted_payload` reads to the end, so there are no trailing bytes to check.
                let bytes = counted_payload(&mut r, function, quantity.div_ceil(8))?;
                let values = Coils::new(bytes, quantity)?;
                check_range(function, address, values.len())?;
                return Ok(Self::WriteMultipleCoils { address, values });
            }
            FunctionCode::WriteMultipleRegisters => {
                let address = r.u16()?;
                let quantity = r.u16()?;
                check_quantity(function, usize::from(quantity), MAX_WRITE_REGISTERS)?;
                let byte_len = register_bytes(quantity);
                let values = Registers::try_from(counted_payload(&mut r, function, byte_len)?)?;
                check_range(function, address, values.len())?;
                return Ok(Self::WriteMultipleRegisters { address, values });
            }
            FunctionCode::ReportServerId => Self::ReportServerId,
            FunctionCode::ReadFileRecord => decode_read_file_record(&mut r)?,
            FunctionCode::WriteFileRecord => {
                let byte_count = usize::from(r.u8()?);
                if !(9..=MAX_PDU_LEN - 2).contains(&byte_count) {
                    return Err(DecodeError::ByteCountMismatch {
                        function,
                        byte_count,
                        expected: byte_count.clamp(9, MAX_PDU_LEN - 2),
                    });
                }
                r.expect_remaining(byte_count)?;
                Self::WriteFileRecord {
                    records: decode_file_records(r.rest())?,
                }
            }
            FunctionCode::MaskWriteRegister => {
                let address = r.u16()?;
                let (and_mask, or_mask) = read_pair(&mut r)?;
                return Ok(Self::MaskWriteRegister {
                    address,
                    and_mask,
                    or_mask,
                });
            }
            FunctionCode::ReadWriteMultipleRegisters => {
                let read_address = r.u16()?;
                let read_quantity = r.u16()?;
                let write_address = r.u16()?;
                let write_quantity = r.u16()?;
                check_quantity(function, usize::from(read_quantity), MAX_READ_REGISTERS)?;
                check_quantity(
                    function,
                    usize::from(write_quantity),
                    MAX_READ_WRITE_WRITE_REGISTERS,
                )?;
                let byte_len = register_bytes(write_quantity);
                let values = Registers::try_from(counted_payload(&mut r, function, byte_len)?)?;
                check_range(function, read_address, usize::from(read_quantity))?;
                check_range(function, write_address, values.len())?;
                return Ok(Self::ReadWriteMultipleRegisters {
                    read_address,
                    read_quantity,
                    write_address,
                    values,
                });
            }
            FunctionCode::ReadFifoQueue => Self::ReadFifoQueue { address: r.u16()? },
            FunctionCode::EncapsulatedInterfaceTransport => match r.u8()? {
                MEI_CANOPEN_GENERAL_REFERENCE => Self::CanOpenGeneralReference { data: r.rest() },
                MEI_READ_DEVICE_ID => {
                    let code = r.u8()?;
                    let code = ReadDeviceIdCode::from_value(code)
                        .ok_or(DecodeError::InvalidDeviceIdCode { code })?;
                    Self::ReadDeviceIdentification {
                        code,
                        object_id: r.u8()?,
                    }
                }
                mei => {
                    return Err(DecodeError::UnsupportedSubFunction {
                        function,
                        sub_function: u16::from(mei),
                    });
                }
            },
            FunctionCode::Other(_) => Self::Custom {
                function,
                data: r.rest(),
            },
        };
        r.finish()?;
        request.validate()?;
        match request {
            Self::ReadFileRecord { groups } => check_read_reference_types(groups)?,
            Self::WriteFileRecord { records } => check_write_reference_types(records)?,
            _ => {}
        }
        Ok(request)
    }

    /// The function code.
    #[must_use]
    pub const fn function(&self) -> FunctionCode {
        match self {
            Self::ReadCoils { .. } => FunctionCode::ReadCoils,
            Self::ReadDiscreteInputs { .. } => FunctionCode::ReadDiscreteInputs,
            Self::ReadHoldingRegisters { .. } => FunctionCode::ReadHoldingRegisters,
            Self::ReadInputRegisters { .. } => FunctionCode::ReadInputRegisters,
            Self::WriteSingleCoil { .. } => FunctionCode::WriteSingleCoil,
            Self::WriteSingleRegister { .. } => FunctionCode::WriteSingleRegister,
            Self::ReadExceptionStatus => FunctionCode::ReadExceptionStatus,
            Self::Diagnostics(_) => FunctionCode::Diagnostics,
            Self::GetCommEventCounter => FunctionCode::GetCommEventCounter,
            Self::GetCommEventLog => FunctionCode::GetCommEventLog,
            Self::WriteMultipleCoils { .. } => FunctionCode::WriteMultipleCoils,
            Self::WriteMultipleRegisters { .. } => FunctionCode::WriteMultipleRegisters,
            Self::ReportServerId => FunctionCode::ReportServerId,
            Self::ReadFileRecord { .. } => FunctionCode::ReadFileRecord,
            Self::WriteFileRecord { .. } => FunctionCode::WriteFileRecord,
            Self::MaskWriteRegister { .. } => FunctionCode::MaskWriteRegister,
            Self::ReadWriteMultipleRegisters { .. } => FunctionCode::ReadWriteMultipleRegisters,
            Self::ReadFifoQueue { .. } => FunctionCode::ReadFifoQueue,
            Self::CanOpenGeneralReference { .. } | Self::ReadDeviceIdentification { .. } => {
                FunctionCode::EncapsulatedInterfaceTransport
            }
            Self::Custom { function, .. } => *function,
        }
    }

    /// `true` when a server answers this request at all: every request except FC 08
    /// sub-function 0x04 (force listen-only mode). Broadcasts are a separate matter, decided by
    /// the unit id.
    #[must_use]
    pub const fn expects_response(&self) -> bool {
        match self {
            Self::Diagnostics(diagnostics) => diagnostics.expects_response(),
            _ => true,
        }
    }

    /// `true` for requests that only read: safe to retry after a timeout, because repeating
    /// them changes nothing on the server.
    #[must_use]
    pub const fn is_read_only(&self) -> bool {
        matches!(
            self,
            Self::ReadCoils { .. }
                | Self::ReadDiscreteInputs { .. }
                | Self::ReadHoldingRegisters { .. }
                | Self::ReadInputRegisters { .. }
                | Self::ReadExceptionStatus
                | Self::GetCommEventCounter
                | Self::GetCommEventLog
                | Self::ReportServerId
                | Self::ReadFileRecord { .. }
                | Self::ReadFifoQueue { .. }
                | Self::ReadDeviceIdentification { .. }
        )
    }

    /// Checks the request against the specification's value and address rules, in decision
    /// order (values first, then addresses). [`encode`](Self::encode) calls this; use it to
    /// check a request built by hand before queueing it.
    ///
    /// # Errors
    /// The first rule broken, as the decoder would report it.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let function = self.function();
        match self {
            Self::ReadCoils { address, quantity }
            | Self::ReadDiscreteInputs { address, quantity } => {
                check_read(function, *address, *quantity, MAX_READ_BITS)?;
            }
            Self::ReadHoldingRegisters { address, quantity }
            | Self::ReadInputRegisters { address, quantity } => {
                check_read(function, *address, *quantity, MAX_READ_REGISTERS)?;
            }
            Self::WriteMultipleCoils { address, values } => {
                check_quantity(function, values.len(), MAX_WRITE_COILS)?;
                check_range(function, *address, values.len())?;
            }
            Self::WriteMultipleRegisters { address, values } => {
                check_quantity(function, values.len(), MAX_WRITE_REGISTERS)?;
                check_range(function, *address, values.len())?;
            }
            Self::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                values,
            } => {
                check_quantity(function, usize::from(*read_quantity), MAX_READ_REGISTERS)?;
                check_quantity(function, values.len(), MAX_READ_WRITE_WRITE_REGISTERS)?;
                check_range(function, *read_address, usize::from(*read_quantity))?;
                check_range(function, *write_address, values.len())?;
            }
            Self::ReadFileRecord { groups } => validate_read_file_record(*groups)?,
            Self::WriteFileRecord { records } => validate_write_file_record(*records)?,
            Self::Custom { function, .. } if !function.is_valid_request_code() => {
                return Err(DecodeError::InvalidFunctionCode {
                    code: function.value(),
                });
            }
            Self::Diagnostics(_)
            | Self::WriteSingleCoil { .. }
            | Self::WriteSingleRegister { .. }
            | Self::ReadExceptionStatus
            | Self::GetCommEventCounter
            | Self::GetCommEventLog
            | Self::ReportServerId
            | Self::MaskWriteRegister { .. }
            | Self::ReadFifoQueue { .. }
            | Self::CanOpenGeneralReference { .. }
            | Self::ReadDeviceIdentification { .. }
            | Self::Custom { .. } => {}
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
            Self::ReadCoils { .. }
            | Self::ReadDiscreteInputs { .. }
            | Self::ReadHoldingRegisters { .. }
            | Self::ReadInputRegisters { .. }
            | Self::WriteSingleCoil { .. }
            | Self::WriteSingleRegister { .. } => 4,
            Self::ReadExceptionStatus
            | Self::GetCommEventCounter
            | Self::GetCommEventLog
            | Self::ReportServerId => 0,
            Self::Diagnostics(DiagnosticsRequest::ReturnQueryData { data }) => {
                data.len().saturating_add(2)
            }
            Self::Diagnostics(_) => 4,
            Self::WriteMultipleCoils { values, .. } => values.byte_len().saturating_add(5),
            Self::WriteMultipleRegisters { values, .. } => values.byte_len().saturating_add(5),
            Self::ReadFileRecord { groups } => groups.wire_len().saturating_add(1),
            Self::WriteFileRecord { records } => records.wire_len().saturating_add(1),
            Self::MaskWriteRegister { .. } => 6,
            Self::ReadWriteMultipleRegisters { values, .. } => values.byte_len().saturating_add(9),
            Self::ReadFifoQueue { .. } => 2,
            Self::CanOpenGeneralReference { data } => data.len().saturating_add(1),
            Self::ReadDeviceIdentification { .. } => 3,
            Self::Custom { data, .. } => data.len(),
        };
        data_len.saturating_add(1)
    }

    /// Encodes the PDU into `out`, returning the number of bytes written.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] when the request breaks a rule of the specification (see
    /// [`validate`](Self::validate)); [`EncodeError::BufferTooSmall`] when `out` is shorter than
    /// [`encoded_len`](Self::encoded_len).
    #[allow(clippy::too_many_lines)]
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
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
        w.u8(function.value())?;
        match self {
            Self::ReadCoils { address, quantity }
            | Self::ReadDiscreteInputs { address, quantity }
            | Self::ReadHoldingRegisters { address, quantity }
            | Self::ReadInputRegisters { address, quantity } => {
                w.u16(*address)?;
                w.u16(*quantity)?;
            }
            Self::WriteSingleCoil { address, value } => {
                w.u16(*address)?;
                w.u16(if *value { COIL_ON } else { COIL_OFF })?;
            }
            Self::WriteSingleRegister { address, value } => {
                w.u16(*address)?;
                w.u16(*value)?;
            }
            Self::ReadExceptionStatus
            | Self::GetCommEventCounter
            | Self::GetCommEventLog
            | Self::ReportServerId => {}
            Self::Diagnostics(diagnostics) => encode_diagnostics(diagnostics, &mut w)?,
            Self::WriteMultipleCoils { address, values } => {
                w.u16(*address)?;
                w.u16(len_u16(function, values.len())?)?;
                w.u8(byte_count(function, values.byte_len())?)?;
                values.write_wire(w.slot(values.byte_len())?);
            }
            Self::WriteMultipleRegisters { address, values } => {
                w.u16(*address)?;
                w.u16(len_u16(function, values.len())?)?;
                w.u8(byte_count(function, values.byte_len())?)?;
                values.write_wire(w.slot(values.byte_len())?);
            }
            Self::ReadFileRecord { groups } => {
                w.u8(byte_count(function, groups.wire_len())?)?;
                groups.write(&mut w)?;
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
            Self::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                values,
            } => {
                w.u16(*read_address)?;
                w.u16(*read_quantity)?;
                w.u16(*write_address)?;
                w.u16(len_u16(function, values.len())?)?;
                w.u8(byte_count(function, values.byte_len())?)?;
                values.write_wire(w.slot(values.byte_len())?);
            }
            Self::ReadFifoQueue { address } => w.u16(*address)?,
            Self::CanOpenGeneralReference { data } => {
                w.u8(MEI_CANOPEN_GENERAL_REFERENCE)?;
                w.bytes(data)?;
            }
            Self::ReadDeviceIdentification { code, object_id } => {
                w.u8(MEI_READ_DEVICE_ID)?;
                w.u8(code.value())?;
                w.u8(*object_id)?;
            }
            Self::Custom { data, .. } => w.bytes(data)?,
        }
        Ok(w.position())
    }
}

pub(crate) fn len_u16(function: FunctionCode, len: usize) -> Result<u16, DecodeError> {
    u16::try_from(len).map_err(|_| DecodeError::ResponseTooLong { function, len })
}

/// Reads a one-byte count that must equal `expected`, then exactly that many bytes to the end.
pub(crate) fn counted_payload<'a>(
    r: &mut Reader<'a>,
    function: FunctionCode,
    expected: usize,
) -> Result<&'a [u8], DecodeError> {
    let byte_count = usize::from(r.u8()?);
    if byte_count != expected {
        return Err(DecodeError::ByteCountMismatch {
            function,
            byte_count,
            expected,
        });
    }
    r.expect_remaining(byte_count)?;
    Ok(r.rest())
}

fn decode_diagnostics<'a>(r: &mut Reader<'a>) -> Result<DiagnosticsRequest<'a>, DecodeError> {
    let sub_function = r.u16()?;
    // The sub-function is checked before its data: an unknown one is exception 01 whatever
    // follows it (decision order, §3.3).
    let zero_data = |r: &mut Reader<'a>| -> Result<(), DecodeError> {
        match r.u16()? {
            0 => Ok(()),
            data => Err(DecodeError::InvalidDiagnosticData { sub_function, data }),
        }
    };
    Ok(match sub_function {
        diagnostics::RETURN_QUERY_DATA => DiagnosticsRequest::ReturnQueryData { data: r.rest() },
        diagnostics::RESTART_COMMUNICATIONS_OPTION => match r.u16()? {
            0 => DiagnosticsRequest::RestartCommunicationsOption {
                clear_event_log: false,
            },
            RESTART_CLEAR_EVENT_LOG => DiagnosticsRequest::RestartCommunicationsOption {
                clear_event_log: true,
            },
            data => return Err(DecodeError::InvalidDiagnosticData { sub_function, data }),
        },
        diagnostics::RETURN_DIAGNOSTIC_REGISTER => {
            zero_data(r)?;
            DiagnosticsRequest::ReturnDiagnosticRegister
        }
        diagnostics::CHANGE_ASCII_INPUT_DELIMITER => {
            let data = r.u16()?;
            let [delimiter, low] = data.to_be_bytes();
            if low != 0 {
                return Err(DecodeError::InvalidDiagnosticData { sub_function, data });
            }
            DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter }
        }
        diagnostics::FORCE_LISTEN_ONLY_MODE => {
            zero_data(r)?;
            DiagnosticsRequest::ForceListenOnlyMode
        }
        diagnostics::CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER => {
            zero_data(r)?;
            DiagnosticsRequest::ClearCountersAndDiagnosticRegister
        }
        diagnostics::CLEAR_OVERRUN_COUNTER_AND_FLAG => {
            zero_data(r)?;
            DiagnosticsRequest::ClearOverrunCounterAndFlag
        }
        code => match DiagnosticCounter::from_sub_function(code) {
            Some(counter) => {
                zero_data(r)?;
                DiagnosticsRequest::ReturnCounter(counter)
            }
            None => {
                return Err(DecodeError::UnsupportedSubFunction {
                    function: FunctionCode::Diagnostics,
                    sub_function,
                });
            }
        },
    })
}

fn encode_diagnostics(d: &DiagnosticsRequest<'_>, w: &mut Writer<'_>) -> Result<(), EncodeError> {
    w.u16(d.sub_function())?;
    match d {
        DiagnosticsRequest::ReturnQueryData { data } => w.bytes(data),
        DiagnosticsRequest::RestartCommunicationsOption { clear_event_log } => {
            w.u16(if *clear_event_log {
                RESTART_CLEAR_EVENT_LOG
            } else {
                0
            })
        }
        DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter } => {
            w.u16(u16::from_be_bytes([*delimiter, 0]))
        }
        DiagnosticsRequest::ReturnDiagnosticRegister
        | DiagnosticsRequest::ForceListenOnlyMode
        | DiagnosticsRequest::ClearCountersAndDiagnosticRegister
        | DiagnosticsRequest::ReturnCounter(_)
        | DiagnosticsRequest::ClearOverrunCounterAndFlag => w.u16(0),
    }
}

fn decode_read_file_record<'a>(r: &mut Reader<'a>) -> Result<Request<'a>, DecodeError> {
    let function = FunctionCode::ReadFileRecord;
    let byte_count = usize::from(r.u8()?);
    let max = MAX_FILE_READ_GROUPS * READ_GROUP_LEN;
    // 0x07..=0xF5 and a whole number of 7-byte groups (§4.14).
    if byte_count == 0 || byte_count > max || byte_count % READ_GROUP_LEN != 0 {
        // At most `max` = 35 × 7: the group count is clamped, so this never saturates.
        let expected = (byte_count / READ_GROUP_LEN)
            .clamp(1, MAX_FILE_READ_GROUPS)
            .saturating_mul(READ_GROUP_LEN);
        return Err(DecodeError::ByteCountMismatch {
            function,
            byte_count,
            expected,
        });
    }
    r.expect_remaining(byte_count)?;
    Ok(Request::ReadFileRecord {
        groups: FileReadGroups::from_validated_wire(r.rest()),
    })
}

/// Walks FC 21 groups, checking that they tile the bytes exactly.
pub(crate) fn decode_file_records(bytes: &[u8]) -> Result<FileRecords<'_>, DecodeError> {
    let function = FunctionCode::WriteFileRecord;
    // `bytes` follows the function code and the byte count in the PDU; offsets in errors count
    // from the start of the PDU. They are error reports only, and none of them can saturate
    // except a data length on a 16-bit target, which is reported as truncation all the same.
    let actual = bytes.len().saturating_add(2);
    let mut rest = bytes;
    while !rest.is_empty() {
        let group_start = offset_of(bytes.len(), rest).saturating_add(2);
        let Some((header, tail)) = rest.split_first_chunk::<7>() else {
            return Err(DecodeError::Truncated {
                function,
                needed: group_start.saturating_add(7),
                actual,
            });
        };
        let [_, _, _, _, _, l0, l1] = *header;
        let data_len = register_bytes(u16::from_be_bytes([l0, l1]));
        let Some((_, tail)) = tail.split_at_checked(data_len) else {
            return Err(DecodeError::Truncated {
                function,
                needed: group_start.saturating_add(7).saturating_add(data_len),
                actual,
            });
        };
        rest = tail;
    }
    Ok(FileRecords::from_validated_wire(bytes))
}

/// Reference type 6 is an address rule (exception 02), so it is checked after the value rules.
fn check_write_reference_types(records: FileRecords<'_>) -> Result<(), DecodeError> {
    let Some(mut rest) = records.wire_bytes() else {
        return Ok(());
    };
    while let Some((header, tail)) = rest.split_first_chunk::<7>() {
        let [reference_type, _, _, _, _, l0, l1] = *header;
        if reference_type != REFERENCE_TYPE {
            return Err(DecodeError::InvalidReferenceType { reference_type });
        }
        let data_len = register_bytes(u16::from_be_bytes([l0, l1]));
        rest = tail.get(data_len..).unwrap_or_default();
    }
    Ok(())
}

fn check_read_reference_types(groups: FileReadGroups<'_>) -> Result<(), DecodeError> {
    let Some(bytes) = groups.wire_bytes() else {
        return Ok(());
    };
    for group in bytes.chunks_exact(READ_GROUP_LEN) {
        if let Some(&reference_type) = group.first() {
            if reference_type != REFERENCE_TYPE {
                return Err(DecodeError::InvalidReferenceType { reference_type });
            }
        }
    }
    Ok(())
}

fn validate_read_file_record(groups: FileReadGroups<'_>) -> Result<(), DecodeError> {
    let function = FunctionCode::ReadFileRecord;
    let count = groups.len();
    check_quantity(function, count, MAX_FILE_READ_GROUPS)?;
    // The whole response must fit one PDU: 2 + Σ(2 + 2·N) ≤ 253. With at most 35 groups of at
    // most 125 records (both checked first) the sum stays below 9 000, so nothing saturates.
    let mut response_len = 2usize;
    for group in groups {
        check_quantity(
            function,
            usize::from(group.record_length),
            MAX_READ_REGISTERS,
        )?;
        let group_len = register_bytes(group.record_length).saturating_add(2);
        response_len = response_len.saturating_add(group_len);
    }
    if response_len > MAX_PDU_LEN {
        return Err(DecodeError::ResponseTooLong {
            function,
            len: response_len,
        });
    }
    for group in groups {
        check_file_range(group.file_number, group.record_number, group.record_length)?;
    }
    Ok(())
}

fn validate_write_file_record(records: FileRecords<'_>) -> Result<(), DecodeError> {
    let function = FunctionCode::WriteFileRecord;
    if records.is_empty() {
        return Err(DecodeError::QuantityOutOfRange {
            function,
            quantity: 0,
            min: 1,
            max: 35,
        });
    }
    for record in records {
        check_quantity(function, record.values.len(), MAX_FILE_WRITE_RECORDS)?;
    }
    for record in records {
        check_file_range(
            record.file_number,
            record.record_number,
            record.record_length(),
        )?;
    }
    Ok(())
}
