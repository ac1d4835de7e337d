//! The client's one flat error type.

use std::io;

#[cfg(doc)]
use super::Client;
use crate::error::{DecodeError, EncodeError, FrameError};
use crate::pdu::{ExceptionCode, ExceptionResponse, FunctionCode};
use crate::session::client::ClientError;

/// Everything a [`Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No response within the response timeout, after every attempt the retry policy allows.
    #[error("no response after {attempts} attempts")]
    Timeout {
        /// Transmissions made.
        attempts: u32,
    },
    /// The server answered with an exception response (kept whole: function and code).
    #[error("{0}")]
    Exception(ExceptionResponse),
    /// The response does not fit the request (function, byte count, echo, field values).
    #[error("unexpected response: {0}")]
    UnexpectedResponse(DecodeError),
    /// The byte stream could not be framed any more (TCP: MBAP length field out of range); the
    /// connection was reopened.
    #[error("framing: {0}")]
    Frame(FrameError),
    /// The link failed and could not be reopened, or a request that may not be retried was lost
    /// with it.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// Too many requests outstanding (a pipeline larger than the session holds).
    #[error("too many requests outstanding")]
    Busy,
    /// The request breaks a rule of the specification; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(EncodeError),
    /// A broadcast must be a write: nobody answers it.
    #[error("function {function} returns data and cannot be broadcast")]
    BroadcastRead {
        /// The function code.
        function: FunctionCode,
    },
    /// [`Client::call`] was given a request that gets no response (a broadcast, FC 08/04); use
    /// [`Client::send`].
    #[error("the request gets no response")]
    NoResponse,
}

impl Error {
    /// The exception code, when the server answered with an exception.
    #[must_use]
    pub fn exception(&self) -> Option<ExceptionCode> {
        match self {
            Self::Exception(exception) => Some(exception.code),
            _ => None,
        }
    }
}

impl From<ClientError> for Error {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Busy { .. } => Self::Busy,
            ClientError::InvalidRequest(error) => Self::InvalidRequest(error),
            ClientError::BroadcastRead { function } => Self::BroadcastRead { function },
        }
    }
}

/// Shorthand for a result with a client [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
