//! FC 08 Diagnostics: typed sub-functions (`modbus-reference.md` §6).
//!
//! Every sub-function the specification defines (0x00–0x04, 0x0A–0x12, 0x14) has a variant; the
//! reserved ones (0x05–0x09, 0x13, 0x15 and up) are rejected by the decoder with
//! [`DecodeError::UnsupportedSubFunction`](crate::DecodeError::UnsupportedSubFunction), which a
//! server answers with exception 01. A client that must speak a legacy sub-function sends it as
//! [`Request::Custom`](super::Request::Custom).

/// Sub-function 0x00: Return Query Data (loop-back).
pub const RETURN_QUERY_DATA: u16 = 0x00;
/// Sub-function 0x01: Restart Communications Option.
pub const RESTART_COMMUNICATIONS_OPTION: u16 = 0x01;
/// Sub-function 0x02: Return Diagnostic Register.
pub const RETURN_DIAGNOSTIC_REGISTER: u16 = 0x02;
/// Sub-function 0x03: Change ASCII Input Delimiter.
pub const CHANGE_ASCII_INPUT_DELIMITER: u16 = 0x03;
/// Sub-function 0x04: Force Listen Only Mode.
pub const FORCE_LISTEN_ONLY_MODE: u16 = 0x04;
/// Sub-function 0x0A: Clear Counters and Diagnostic Register.
pub const CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER: u16 = 0x0A;
/// Sub-function 0x14: Clear Overrun Counter and Flag.
pub const CLEAR_OVERRUN_COUNTER_AND_FLAG: u16 = 0x14;

/// Data word of 08/01 that also clears the communication event log.
pub const RESTART_CLEAR_EVENT_LOG: u16 = 0xFF00;

/// One of the eight serial-line counters returned by sub-functions 0x0B–0x12 (`§7.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiagnosticCounter {
    /// 0x0B, CPT1: frames seen on the bus with a valid check, any address.
    BusMessage,
    /// 0x0C, CPT2: CRC/LRC errors, character errors and frames shorter than 3 bytes.
    BusCommunicationError,
    /// 0x0D, CPT3: exception conditions detected, broadcasts included.
    BusExceptionError,
    /// 0x0E, CPT4: messages addressed to this server (or broadcast) that it processed.
    ServerMessage,
    /// 0x0F, CPT5: processed messages that got no response.
    ServerNoResponse,
    /// 0x10, CPT6: negative-acknowledge (07) exceptions returned.
    ServerNak,
    /// 0x11, CPT7: server-busy (06) exceptions returned.
    ServerBusy,
    /// 0x12, CPT8: messages lost to character overrun.
    BusCharacterOverrun,
}

impl DiagnosticCounter {
    /// All counters, in sub-function order.
    pub const ALL: [Self; 8] = [
        Self::BusMessage,
        Self::BusCommunicationError,
        Self::BusExceptionError,
        Self::ServerMessage,
        Self::ServerNoResponse,
        Self::ServerNak,
        Self::ServerBusy,
        Self::BusCharacterOverrun,
    ];

    /// The sub-function code that returns this counter.
    #[must_use]
    pub const fn sub_function(self) -> u16 {
        match self {
            Self::BusMessage => 0x0B,
            Self::BusCommunicationError => 0x0C,
            Self::BusExceptionError => 0x0D,
            Self::ServerMessage => 0x0E,
            Self::ServerNoResponse => 0x0F,
            Self::ServerNak => 0x10,
            Self::ServerBusy => 0x11,
            Self::BusCharacterOverrun => 0x12,
        }
    }

    /// The counter a sub-function code returns, if it is one of 0x0B–0x12.
    #[must_use]
    pub const fn from_sub_function(code: u16) -> Option<Self> {
        Some(match code {
            0x0B => Self::BusMessage,
            0x0C => Self::BusCommunicationError,
            0x0D => Self::BusExceptionError,
            0x0E => Self::ServerMessage,
            0x0F => Self::ServerNoResponse,
            0x10 => Self::ServerNak,
            0x11 => Self::ServerBusy,
            0x12 => Self::BusCharacterOverrun,
            _ => return None,
        })
    }

    /// Position of this counter in [`ALL`](Self::ALL), for indexing a counter array.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// An FC 08 request, by sub-function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticsRequest<'a> {
    /// 0x00: the server echoes `data` back unchanged. The spec sizes it as 2·N bytes; any
    /// length that fits a PDU is accepted because the test is a loop-back.
    ReturnQueryData {
        /// The bytes to echo.
        data: &'a [u8],
    },
    /// 0x01: restart the serial port and leave listen-only mode; answered before restarting
    /// (not at all if the server was in listen-only mode).
    RestartCommunicationsOption {
        /// Data 0xFF00: also clear the communication event log (data 0x0000 keeps it).
        clear_event_log: bool,
    },
    /// 0x02: read the 16-bit diagnostic register.
    ReturnDiagnosticRegister,
    /// 0x03: use `delimiter` instead of LF to end ASCII frames.
    ChangeAsciiInputDelimiter {
        /// The new end-of-frame character.
        delimiter: u8,
    },
    /// 0x04: enter listen-only mode. The server sends no response.
    ForceListenOnlyMode,
    /// 0x0A: clear all counters and the diagnostic register.
    ClearCountersAndDiagnosticRegister,
    /// 0x0B–0x12: read one counter.
    ReturnCounter(DiagnosticCounter),
    /// 0x14: clear the overrun counter and flag.
    ClearOverrunCounterAndFlag,
}

impl DiagnosticsRequest<'_> {
    /// The sub-function code.
    #[must_use]
    pub const fn sub_function(&self) -> u16 {
        match self {
            Self::ReturnQueryData { .. } => RETURN_QUERY_DATA,
            Self::RestartCommunicationsOption { .. } => RESTART_COMMUNICATIONS_OPTION,
            Self::ReturnDiagnosticRegister => RETURN_DIAGNOSTIC_REGISTER,
            Self::ChangeAsciiInputDelimiter { .. } => CHANGE_ASCII_INPUT_DELIMITER,
            Self::ForceListenOnlyMode => FORCE_LISTEN_ONLY_MODE,
            Self::ClearCountersAndDiagnosticRegister => CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER,
            Self::ReturnCounter(counter) => counter.sub_function(),
            Self::ClearOverrunCounterAndFlag => CLEAR_OVERRUN_COUNTER_AND_FLAG,
        }
    }

    /// `false` only for 0x04 (force listen-only mode), which the server never answers.
    #[must_use]
    pub const fn expects_response(&self) -> bool {
        !matches!(self, Self::ForceListenOnlyMode)
    }
}

/// An FC 08 response, by sub-function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticsResponse<'a> {
    /// 0x00: the echoed data.
    ReturnQueryData {
        /// The echoed bytes.
        data: &'a [u8],
    },
    /// 0x01: echo of the restart request.
    RestartCommunicationsOption {
        /// Echo of the request's choice.
        clear_event_log: bool,
    },
    /// 0x02: the diagnostic register.
    ReturnDiagnosticRegister {
        /// Its device-specific contents.
        value: u16,
    },
    /// 0x03: echo of the new delimiter.
    ChangeAsciiInputDelimiter {
        /// The new end-of-frame character.
        delimiter: u8,
    },
    /// 0x0A: echo; counters were cleared.
    ClearCountersAndDiagnosticRegister,
    /// 0x0B–0x12: a counter's value.
    ReturnCounter {
        /// Which counter.
        counter: DiagnosticCounter,
        /// Its value.
        value: u16,
    },
    /// 0x14: echo; the overrun counter and flag were cleared.
    ClearOverrunCounterAndFlag,
}

impl DiagnosticsResponse<'_> {
    /// The sub-function code.
    #[must_use]
    pub const fn sub_function(&self) -> u16 {
        match self {
            Self::ReturnQueryData { .. } => RETURN_QUERY_DATA,
            Self::RestartCommunicationsOption { .. } => RESTART_COMMUNICATIONS_OPTION,
            Self::ReturnDiagnosticRegister { .. } => RETURN_DIAGNOSTIC_REGISTER,
            Self::ChangeAsciiInputDelimiter { .. } => CHANGE_ASCII_INPUT_DELIMITER,
            Self::ClearCountersAndDiagnosticRegister => CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER,
            Self::ReturnCounter { counter, .. } => counter.sub_function(),
            Self::ClearOverrunCounterAndFlag => CLEAR_OVERRUN_COUNTER_AND_FLAG,
        }
    }
}
