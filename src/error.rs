//! Errors of the sans-IO core.
//!
//! Each layer has its own small enum: [`DecodeError`] for PDUs, [`FrameError`] for the framings
//! (RTU, ASCII, TCP) around them, [`EncodeError`] for building either. All are `Copy`, allocate nothing and carry the
//! offending numbers in named fields, so a log line says exactly what was wrong with the input.
//!
//! The layer that detects a fault does not decide its consequence: a server maps a
//! [`DecodeError`] to the exception it must answer with [`DecodeError::exception_code`].

use crate::pdu::{ExceptionCode, FunctionCode};

/// Why a PDU could not be decoded, as a sentence about the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The PDU has no bytes at all, not even a function code.
    #[error("empty pdu: no function code")]
    Empty,
    /// The PDU is longer than the 253 bytes any Modbus transport can carry.
    #[error("pdu of {len} bytes exceeds the 253-byte maximum")]
    PduTooLong {
        /// Length of the PDU that was offered.
        len: usize,
    },
    /// The function code byte is 0 or has bit 7 set, which no request may carry.
    #[error("function code byte 0x{code:02X} is not a valid request code (1..=127)")]
    InvalidFunctionCode {
        /// The offending byte.
        code: u8,
    },
    /// A response carried a different function code than the request.
    #[error("response has function code 0x{actual:02X}, request was {expected}")]
    UnexpectedFunction {
        /// The request's function code.
        expected: FunctionCode,
        /// The byte found in the response.
        actual: u8,
    },
    /// The sub-function (FC 08) or MEI type (FC 43) is reserved or unknown.
    #[error("function {function}: sub-function or MEI type 0x{sub_function:02X} is not supported")]
    UnsupportedSubFunction {
        /// The function code.
        function: FunctionCode,
        /// The sub-function code (FC 08) or MEI type (FC 43).
        sub_function: u16,
    },
    /// The PDU ends before the fields its function requires.
    #[error("function {function}: pdu of {actual} bytes is truncated, at least {needed} needed")]
    Truncated {
        /// The function code.
        function: FunctionCode,
        /// Bytes needed (a lower bound where the layout is variable).
        needed: usize,
        /// Bytes present.
        actual: usize,
    },
    /// The PDU has bytes after the last field its function defines.
    #[error("function {function}: pdu of {actual} bytes has trailing data, {expected} expected")]
    TrailingBytes {
        /// The function code.
        function: FunctionCode,
        /// The exact length the fields define.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A byte-count field disagrees with the quantity or with the bytes present.
    #[error("function {function}: byte count {byte_count} does not match the {expected} expected")]
    ByteCountMismatch {
        /// The function code.
        function: FunctionCode,
        /// The byte count found.
        byte_count: usize,
        /// The byte count the quantity (or the layout) requires.
        expected: usize,
    },
    /// Register bytes of odd length: registers are two bytes each.
    #[error("{len} register bytes is not a whole number of registers")]
    OddRegisterBytes {
        /// The byte length found.
        len: usize,
    },
    /// Packed bit bytes whose length is not `ceil(count / 8)`.
    #[error("{count} bits need {} bytes, {len} given", count.div_ceil(8))]
    CoilBytesMismatch {
        /// The number of bits.
        count: usize,
        /// The byte length found.
        len: usize,
    },
    /// A quantity is outside the range the specification allows for this function.
    #[error("function {function}: quantity {quantity} outside {min}..={max}")]
    QuantityOutOfRange {
        /// The function code.
        function: FunctionCode,
        /// The quantity found.
        quantity: usize,
        /// Smallest allowed quantity.
        min: usize,
        /// Largest allowed quantity.
        max: usize,
    },
    /// `address + quantity - 1` lies beyond 0xFFFF: the range wraps the 16-bit address space.
    #[error(
        "function {function}: {quantity} items from address {address} pass the end of the address space"
    )]
    AddressOverflow {
        /// The function code.
        function: FunctionCode,
        /// The starting address.
        address: u16,
        /// The quantity.
        quantity: usize,
    },
    /// A single-coil write carried a value other than 0xFF00 (on) or 0x0000 (off).
    #[error("coil value 0x{value:04X} is neither 0xFF00 nor 0x0000")]
    InvalidCoilValue {
        /// The value found.
        value: u16,
    },
    /// A diagnostics sub-function carried data its definition does not allow.
    #[error("diagnostics sub-function 0x{sub_function:04X}: data 0x{data:04X} is not allowed")]
    InvalidDiagnosticData {
        /// The sub-function code.
        sub_function: u16,
        /// The data word found.
        data: u16,
    },
    /// A read-device-identification code other than 1–4.
    #[error("read device id code {code} outside 1..=4")]
    InvalidDeviceIdCode {
        /// The code found.
        code: u8,
    },
    /// A file-record group with a reference type other than 6.
    #[error("file record reference type {reference_type} is not 6")]
    InvalidReferenceType {
        /// The reference type found.
        reference_type: u8,
    },
    /// A file-record group addresses file 0, a record beyond 9999, or runs past the file's end.
    #[error(
        "file {file_number}: {record_length} records from {record_number} are outside the file"
    )]
    FileRecordOutOfRange {
        /// The file number.
        file_number: u16,
        /// The first record.
        record_number: u16,
        /// The number of records.
        record_length: u16,
    },
    /// The response the request asks for could not fit in one 253-byte PDU.
    #[error("function {function}: the response would take {len} bytes, more than a pdu holds")]
    ResponseTooLong {
        /// The function code.
        function: FunctionCode,
        /// Length the response would need.
        len: usize,
    },
    /// A field with a fixed set of values (FIFO count, more-follows flag, ...) holds another.
    #[error("function {function}: field value {value} is not allowed")]
    InvalidFieldValue {
        /// The function code.
        function: FunctionCode,
        /// The offending value.
        value: u16,
    },
    /// An echo response does not repeat the request's fields.
    #[error("function {function}: response does not echo the request")]
    EchoMismatch {
        /// The function code.
        function: FunctionCode,
    },
    /// A response arrived for a request that gets none (FC 08 sub-function 0x04).
    #[error("function {function}: this request gets no response")]
    NoResponseExpected {
        /// The function code.
        function: FunctionCode,
    },
}

impl DecodeError {
    /// The exception a server must answer a request with when decoding failed this way.
    ///
    /// Decoding checks in the specification's decision order (`modbus-reference.md` §3.3): an
    /// unsupported function or sub-function first (01), then values, quantities and structure
    /// (03), then address ranges (02). So the first error found is the one to report.
    ///
    /// ```
    /// use modbus_stack::pdu::{ExceptionCode, Request};
    /// // 2001 coils: quantity out of range.
    /// let err = Request::decode(&[0x01, 0x00, 0x00, 0x07, 0xD1]).unwrap_err();
    /// assert_eq!(err.exception_code(), ExceptionCode::IllegalDataValue);
    /// // Addresses 0xFFFF..=0x10000 never wrap.
    /// let err = Request::decode(&[0x01, 0xFF, 0xFF, 0x00, 0x02]).unwrap_err();
    /// assert_eq!(err.exception_code(), ExceptionCode::IllegalDataAddress);
    /// ```
    #[must_use]
    pub fn exception_code(&self) -> ExceptionCode {
        match self {
            Self::InvalidFunctionCode { .. } | Self::UnsupportedSubFunction { .. } => {
                ExceptionCode::IllegalFunction
            }
            Self::AddressOverflow { .. }
            | Self::InvalidReferenceType { .. }
            | Self::FileRecordOutOfRange { .. } => ExceptionCode::IllegalDataAddress,
            Self::Empty
            | Self::PduTooLong { .. }
            | Self::UnexpectedFunction { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::ByteCountMismatch { .. }
            | Self::OddRegisterBytes { .. }
            | Self::CoilBytesMismatch { .. }
            | Self::QuantityOutOfRange { .. }
            | Self::InvalidCoilValue { .. }
            | Self::InvalidDiagnosticData { .. }
            | Self::InvalidDeviceIdCode { .. }
            | Self::ResponseTooLong { .. }
            | Self::InvalidFieldValue { .. }
            | Self::EchoMismatch { .. }
            | Self::NoResponseExpected { .. } => ExceptionCode::IllegalDataValue,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer cannot hold the encoded bytes.
    #[error("buffer of {available} bytes is too small, {required} needed")]
    BufferTooSmall {
        /// Bytes the encoding needs.
        required: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The message breaks a rule of the specification; the decoder would reject it this way.
    #[error("invalid message: {0}")]
    Invalid(DecodeError),
}

impl From<DecodeError> for EncodeError {
    fn from(error: DecodeError) -> Self {
        Self::Invalid(error)
    }
}

/// Why bytes on a transport do not form a valid frame, as a sentence about the input.
///
/// The framing decoders report these and then resynchronise by themselves; what to do about the
/// error is the caller's decision (a serial server counts it and stays silent, a TCP server closes
/// the connection after [`FrameError::LengthField`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The CRC-16 trailer of an RTU frame does not match the bytes before it.
    #[error("crc 0x{expected:04X} in the frame, 0x{computed:04X} computed over its bytes")]
    CrcMismatch {
        /// The CRC carried by the frame (its trailer read low byte first).
        expected: u16,
        /// The CRC computed over address, function code and data.
        computed: u16,
    },
    /// The LRC of an ASCII frame does not match the bytes before it.
    #[error("lrc 0x{expected:02X} in the frame, 0x{computed:02X} computed over its bytes")]
    LrcMismatch {
        /// The LRC carried by the frame.
        expected: u8,
        /// The LRC computed over address, function code and data.
        computed: u8,
    },
    /// An ASCII frame holds a character that is neither a hex digit nor a delimiter.
    #[error("byte 0x{byte:02X} is not a hex digit")]
    InvalidHexDigit {
        /// The offending byte.
        byte: u8,
    },
    /// An ASCII frame's carriage return is followed by something other than the end character.
    #[error("byte 0x{byte:02X} after carriage return is not the end character")]
    InvalidEnd {
        /// The byte found after the carriage return.
        byte: u8,
    },
    /// An ASCII frame has an odd number of hex digits, so its last byte is half a byte.
    #[error("{len} hex digits do not form whole bytes")]
    OddHexDigits {
        /// The number of hex digits between `:` and the end.
        len: usize,
    },
    /// A frame is longer than its framing allows (256 bytes RTU, 513 characters ASCII).
    #[error("frame of {len} bytes exceeds the maximum of its framing")]
    FrameTooLong {
        /// Length reached (or announced) when the frame was given up.
        len: usize,
    },
    /// A frame is shorter than the smallest frame its framing allows.
    #[error("frame of {len} bytes is shorter than the minimum of its framing")]
    FrameTooShort {
        /// Length of the frame.
        len: usize,
    },
    /// Characters of one frame were separated by a gap longer than the framing allows
    /// (t1.5 in RTU, the inter-character timeout in ASCII).
    #[error(
        "gap of {gap_micros} µs between characters inside a frame exceeds the {limit_micros} µs allowed"
    )]
    InterCharacterGap {
        /// The gap measured, in microseconds.
        gap_micros: u64,
        /// The largest gap allowed, in microseconds.
        limit_micros: u64,
    },
    /// An MBAP header's protocol identifier is not 0 (Modbus); the ADU is skipped whole.
    #[error("mbap protocol id {protocol_id} is not 0 (modbus)")]
    ProtocolId {
        /// The protocol identifier found.
        protocol_id: u16,
    },
    /// An MBAP header's length field is outside 2..=254; the stream can no longer be framed.
    #[error("mbap length field {length} outside 2..=254")]
    LengthField {
        /// The length field found.
        length: u16,
    },
    /// An RTU frame's function code has no length rule, so without timing it cannot be cut from
    /// the stream (register a rule in `frame::rtu::LengthRules`).
    #[error("function code 0x{function:02X} has no length rule and no timing ends the frame")]
    LengthUnknown {
        /// The function code byte.
        function: u8,
    },
    /// Part of a frame was received but the rest did not come in time: its deadline passed, or
    /// the stream fell silent. The part is dropped; on a TCP stream (MBAP) alignment is lost
    /// with it, so the connection must be closed.
    #[error("frame cut off after {len} bytes: the rest did not arrive in time")]
    Incomplete {
        /// Bytes of the frame received.
        len: usize,
    },
}
