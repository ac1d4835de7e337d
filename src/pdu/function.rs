//! Function codes: the first byte of every PDU.

use core::fmt;

use super::code::open_byte_enum;

open_byte_enum! {
    /// A Modbus function code (`modbus-reference.md` §2).
    ///
    /// Every public code has a named variant; user-defined (65–72, 100–110), reserved and
    /// unassigned codes are [`FunctionCode::Other`]. Exception responses are not function codes
    /// of their own: they carry the request's code with bit 7 set, see [`EXCEPTION_BIT`].
    ///
    /// ```
    /// use modbus_stack::pdu::FunctionCode;
    /// assert_eq!(FunctionCode::from(0x03), FunctionCode::ReadHoldingRegisters);
    /// assert_eq!(FunctionCode::from(0x41), FunctionCode::Other(0x41));
    /// assert_eq!(u8::from(FunctionCode::Other(0x41)), 0x41);
    /// ```
    pub enum FunctionCode {
        /// 0x01: read 1–2000 coils.
        ReadCoils = 0x01,
        /// 0x02: read 1–2000 discrete inputs.
        ReadDiscreteInputs = 0x02,
        /// 0x03: read 1–125 holding registers.
        ReadHoldingRegisters = 0x03,
        /// 0x04: read 1–125 input registers.
        ReadInputRegisters = 0x04,
        /// 0x05: write one coil (0xFF00 on, 0x0000 off).
        WriteSingleCoil = 0x05,
        /// 0x06: write one holding register.
        WriteSingleRegister = 0x06,
        /// 0x07: read the eight exception status outputs (serial line).
        ReadExceptionStatus = 0x07,
        /// 0x08: serial-line diagnostics, with sub-functions.
        Diagnostics = 0x08,
        /// 0x0B: get the communication event counter (serial line).
        GetCommEventCounter = 0x0B,
        /// 0x0C: get the communication event log (serial line).
        GetCommEventLog = 0x0C,
        /// 0x0F: write 1–1968 coils.
        WriteMultipleCoils = 0x0F,
        /// 0x10: write 1–123 holding registers.
        WriteMultipleRegisters = 0x10,
        /// 0x11: report the server id and run status (serial line).
        ReportServerId = 0x11,
        /// 0x14: read groups of file records.
        ReadFileRecord = 0x14,
        /// 0x15: write groups of file records.
        WriteFileRecord = 0x15,
        /// 0x16: modify one holding register with an AND and an OR mask.
        MaskWriteRegister = 0x16,
        /// 0x17: write then read holding registers in one transaction.
        ReadWriteMultipleRegisters = 0x17,
        /// 0x18: read a first-in-first-out queue of holding registers.
        ReadFifoQueue = 0x18,
        /// 0x2B: encapsulated interface transport (MEI 13 `CANopen`, MEI 14 device identification).
        EncapsulatedInterfaceTransport = 0x2B,
    }
}

/// Bit 7 of the function code byte marks an exception response (`request code | 0x80`).
pub const EXCEPTION_BIT: u8 = 0x80;

impl FunctionCode {
    /// `true` for codes a client may send as a request: 1–127. Zero is invalid and 128–255
    /// are reserved for exception responses (`modbus-reference.md` §1.2).
    #[must_use]
    pub fn is_valid_request_code(self) -> bool {
        matches!(self.value(), 1..EXCEPTION_BIT)
    }

    /// The byte an exception response to this function carries: the code with bit 7 set.
    #[must_use]
    pub fn exception_byte(self) -> u8 {
        self.value() | EXCEPTION_BIT
    }

    /// The spec's name of a public function code, or `None` for [`FunctionCode::Other`].
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::ReadCoils => "Read Coils",
            Self::ReadDiscreteInputs => "Read Discrete Inputs",
            Self::ReadHoldingRegisters => "Read Holding Registers",
            Self::ReadInputRegisters => "Read Input Registers",
            Self::WriteSingleCoil => "Write Single Coil",
            Self::WriteSingleRegister => "Write Single Register",
            Self::ReadExceptionStatus => "Read Exception Status",
            Self::Diagnostics => "Diagnostics",
            Self::GetCommEventCounter => "Get Comm Event Counter",
            Self::GetCommEventLog => "Get Comm Event Log",
            Self::WriteMultipleCoils => "Write Multiple Coils",
            Self::WriteMultipleRegisters => "Write Multiple Registers",
            Self::ReportServerId => "Report Server ID",
            Self::ReadFileRecord => "Read File Record",
            Self::WriteFileRecord => "Write File Record",
            Self::MaskWriteRegister => "Mask Write Register",
            Self::ReadWriteMultipleRegisters => "Read/Write Multiple Registers",
            Self::ReadFifoQueue => "Read FIFO Queue",
            Self::EncapsulatedInterfaceTransport => "Encapsulated Interface Transport",
            Self::Other(_) => return None,
        })
    }
}

impl fmt::Display for FunctionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:02X} ({name})", self.value()),
            None => write!(f, "0x{:02X}", self.value()),
        }
    }
}
