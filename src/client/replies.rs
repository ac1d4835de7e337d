//! Typed answers of the diagnostic and identification functions.

use std::vec::Vec;

use crate::pdu::{DiagnosticCounter, DiagnosticsResponse};

/// FC 11: the status word and the event counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommEventCounter {
    /// 0xFFFF while a program command is still running, 0x0000 otherwise.
    pub status: u16,
    /// Successful message completions.
    pub event_count: u16,
}

/// FC 12: status, counters and the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommEventLog {
    /// 0xFFFF while a program command is still running, 0x0000 otherwise.
    pub status: u16,
    /// Successful message completions.
    pub event_count: u16,
    /// Bus messages seen.
    pub message_count: u16,
    /// Event bytes, newest first.
    pub events: Vec<u8>,
}

/// FC 08: the answer to a diagnostics request, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticsReply {
    /// 0x00: the echoed data.
    ReturnQueryData(Vec<u8>),
    /// 0x01: echo of the restart request.
    RestartCommunicationsOption {
        /// Echo of the request's choice.
        clear_event_log: bool,
    },
    /// 0x02: the diagnostic register.
    ReturnDiagnosticRegister(u16),
    /// 0x03: echo of the new ASCII delimiter.
    ChangeAsciiInputDelimiter(u8),
    /// 0x04: sent; the server answers nothing by definition.
    ForceListenOnlyMode,
    /// 0x0A: the counters were cleared.
    ClearCountersAndDiagnosticRegister,
    /// 0x0B–0x12: a counter's value.
    ReturnCounter {
        /// Which counter.
        counter: DiagnosticCounter,
        /// Its value.
        value: u16,
    },
    /// 0x14: the overrun counter and flag were cleared.
    ClearOverrunCounterAndFlag,
}

impl From<DiagnosticsResponse<'_>> for DiagnosticsReply {
    fn from(response: DiagnosticsResponse<'_>) -> Self {
        match response {
            DiagnosticsResponse::ReturnQueryData { data } => Self::ReturnQueryData(data.to_vec()),
            DiagnosticsResponse::RestartCommunicationsOption { clear_event_log } => {
                Self::RestartCommunicationsOption { clear_event_log }
            }
            DiagnosticsResponse::ReturnDiagnosticRegister { value } => {
                Self::ReturnDiagnosticRegister(value)
            }
            DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter } => {
                Self::ChangeAsciiInputDelimiter(delimiter)
            }
            DiagnosticsResponse::ClearCountersAndDiagnosticRegister => {
                Self::ClearCountersAndDiagnosticRegister
            }
            DiagnosticsResponse::ReturnCounter { counter, value } => {
                Self::ReturnCounter { counter, value }
            }
            DiagnosticsResponse::ClearOverrunCounterAndFlag => Self::ClearOverrunCounterAndFlag,
        }
    }
}

/// FC 43/14: the device identification objects collected, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The server's conformity level (0x01–0x03, 0x81–0x83).
    pub conformity_level: u8,
    /// `(object id, value)` pairs.
    pub objects: Vec<(u8, Vec<u8>)>,
}

impl DeviceInfo {
    /// The value of object `id`, if received.
    #[must_use]
    pub fn get(&self, id: u8) -> Option<&[u8]> {
        self.objects
            .iter()
            .find(|(object, _)| *object == id)
            .map(|(_, value)| value.as_slice())
    }
}
