//! Framing: the transport envelopes around a PDU (RTU, ASCII, Modbus TCP).
//!
//! Each framing has a view over a complete ADU (`rtu::Adu`, `ascii::Adu`, `tcp::MbapHeader`), an
//! encoder that writes into a caller buffer, and a streaming decoder with a fixed buffer of the
//! framing's maximum size that accepts bytes in any chunking. RTU and TCP also offer a stateless
//! `parse` over a caller buffer, for users who keep their own ring or DMA buffer. All decoders
//! speak the vocabulary defined here: a [`Status`] that tells *complete* (with the bytes
//! consumed), *incomplete* (with a lower bound on the bytes still needed, when known) and
//! *invalid* (with a [`FrameError`](crate::FrameError) and the bytes to discard) apart.
//!
//! # Panic contract
//!
//! Nothing in this module panics on any input. Views are built with `new_checked`, which checks
//! every length the accessors rely on; after that no accessor panics. `new_unchecked` skips the
//! check, and its accessors then return shortened or empty slices rather than panic on a short
//! buffer, so a wrong length gives wrong data, never a crash. Encoders take any output buffer and
//! return [`EncodeError::BufferTooSmall`](crate::EncodeError::BufferTooSmall) when it cannot hold
//! the frame; they never write past it. Decoders accept arbitrary bytes at arbitrary times and
//! never grow beyond their fixed buffer. This is tested by property tests and fuzzing.
//!
//! Everything here is `no_std` without `alloc`.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use core::num::NonZeroUsize;

pub mod ascii;
pub mod check;
mod decoder;
pub mod rtu;
pub mod tcp;

pub use decoder::{Decoder, Frame, Frames};

/// How request and response ADUs are framed on a link: the one name for a framing across the
/// crate (client sessions and transports, the TCP server).
///
/// [`Tcp`](Self::Tcp) and [`RtuOverTcp`](Self::RtuOverTcp) run on a TCP stream,
/// [`Rtu`](Self::Rtu) and [`Ascii`](Self::Ascii) on a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Modbus TCP: MBAP header with transaction ids, so several requests may be outstanding.
    Tcp,
    /// RTU ADUs on a TCP stream (serial-to-Ethernet converters, §10.6): no transaction id, one
    /// request at a time, broadcasts as on a serial line, frames cut by the length oracle.
    RtuOverTcp,
    /// RTU on a serial line.
    Rtu,
    /// ASCII on a serial line.
    Ascii,
}

impl Framing {
    /// `true` when unit id 0 means a broadcast that no server answers (all but Modbus TCP, where
    /// a server directly on the network treats 0 as an ordinary id).
    #[must_use]
    pub const fn has_broadcast(self) -> bool {
        !matches!(self, Self::Tcp)
    }

    /// `true` when several requests may be outstanding: only Modbus TCP tells responses apart
    /// by transaction id.
    #[must_use]
    pub const fn can_pipeline(self) -> bool {
        matches!(self, Self::Tcp)
    }

    /// `true` for the framings of a serial line ([`Rtu`](Self::Rtu), [`Ascii`](Self::Ascii)),
    /// which a TCP transport or listener does not carry.
    #[must_use]
    pub const fn is_serial(self) -> bool {
        matches!(self, Self::Rtu | Self::Ascii)
    }

    /// Largest ADU of this framing in bytes (characters for ASCII).
    #[must_use]
    pub const fn max_adu_len(self) -> usize {
        match self {
            Self::Tcp => tcp::MAX_ADU_LEN,
            Self::RtuOverTcp | Self::Rtu => rtu::MAX_ADU_LEN,
            Self::Ascii => ascii::MAX_FRAME_CHARS,
        }
    }
}

/// The outcome of trying to decode one frame from the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole frame is at the front of the buffer.
    Complete {
        /// The frame.
        frame: T,
        /// Bytes it takes at the front of the buffer; drop them before decoding the next.
        consumed: usize,
    },
    /// The buffer holds the start of a frame but not all of it.
    Incomplete(Needed),
    /// The front of the buffer is not a valid frame.
    Invalid {
        /// What is wrong.
        error: crate::FrameError,
        /// Bytes to drop from the front before trying again (at least 1).
        discard: usize,
    },
}

/// How many more bytes an incomplete frame needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// The frame's length cannot be told yet (or at all, for frames ended by silence).
    Unknown,
    /// At least this many more bytes are needed; more may be needed once they are read.
    AtLeast(NonZeroUsize),
}

impl Needed {
    /// `AtLeast(n)`, or `Unknown` when `n` is 0 (which no incomplete frame should report).
    #[must_use]
    pub const fn at_least(n: usize) -> Self {
        match NonZeroUsize::new(n) {
            Some(n) => Self::AtLeast(n),
            None => Self::Unknown,
        }
    }
}

/// The direction of the frames a decoder expects: it decides how an RTU frame's length follows
/// from its function code, since requests and responses of one function differ in layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Client to server: a server decodes requests.
    Request,
    /// Server to client: a client decodes responses.
    Response,
}

impl Role {
    /// The other direction.
    #[must_use]
    pub const fn opposite(self) -> Self {
        match self {
            Self::Request => Self::Response,
            Self::Response => Self::Request,
        }
    }
}

/// Counts a serial decoder keeps for the diagnostics counters of FC 08 (bus message count,
/// communication error count) and for logs. All counters wrap at `u32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Frames delivered with a correct check value.
    pub frames_ok: u32,
    /// Frames discarded because their CRC (RTU) or LRC (ASCII) did not match.
    pub crc_errors: u32,
    /// Frames discarded for any other framing error (gap, length, bad character).
    pub other_errors: u32,
}

impl Counters {
    /// Counts one delivered frame.
    fn count_ok(&mut self) {
        self.frames_ok = self.frames_ok.wrapping_add(1);
    }

    /// Counts one error by kind.
    fn count_error(&mut self, error: crate::FrameError) {
        match error {
            crate::FrameError::CrcMismatch { .. } | crate::FrameError::LrcMismatch { .. } => {
                self.crc_errors = self.crc_errors.wrapping_add(1);
            }
            _ => self.other_errors = self.other_errors.wrapping_add(1),
        }
    }
}
