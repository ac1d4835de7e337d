//! Check values: CRC-16/MODBUS for RTU and the longitudinal redundancy check (LRC) for ASCII.
//!
//! The CRC uses the `crc` crate's catalogued `CRC_16_MODBUS` (poly 0x8005 reflected, init 0xFFFF,
//! no final xor) with the 16-lane table, which measured fastest in `benches/frame.rs` (16 × 256 × 2 = 8 KiB
//! of tables in flash; see the bench for the numbers against the 1-lane and table-free variants).
//! The CRC travels low byte first; [`crc16_trailer`] spells that out instead of leaning on the host's
//! byte order.
//!
//! Under `cfg(fuzzing)` the *verification* functions accept any check value, so a fuzzer reaches
//! the PDU decoder behind the framing instead of stalling at a 1-in-65536 CRC guess. The computing
//! functions stay exact in every build.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use crc::{CRC_16_MODBUS, Crc, Table};

use crate::FrameError;

/// The CRC engine: 16-lane table, the fastest variant on 256-byte frames and on bulk data.
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_MODBUS);

/// CRC-16/MODBUS of `bytes` (address, function code and data of an RTU frame).
///
/// ```
/// use modbus_stack::frame::check::crc16;
/// assert_eq!(crc16(b"123456789"), 0x4B37);
/// assert_eq!(crc16(&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03]), 0x1774);
/// ```
#[must_use]
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC16.checksum(bytes)
}

/// The two trailer bytes of an RTU frame for `crc`: low byte first, then high byte
/// (`modbus-reference.md` §8.4: "low byte first, high byte last").
///
/// ```
/// use modbus_stack::frame::check::crc16_trailer;
/// assert_eq!(crc16_trailer(0x1774), [0x74, 0x17]);
/// ```
#[must_use]
pub const fn crc16_trailer(crc: u16) -> [u8; 2] {
    let [low, high] = crc.to_le_bytes();
    [low, high]
}

/// Reads the CRC value from two trailer bytes in wire order (low byte first).
#[must_use]
pub const fn crc16_from_trailer(low: u8, high: u8) -> u16 {
    u16::from_le_bytes([low, high])
}

/// Checks that `expected` (the frame's CRC) is the CRC of `bytes`.
///
/// # Errors
///
/// [`FrameError::CrcMismatch`] with both values when they differ (never under `cfg(fuzzing)`).
pub fn verify_crc16(bytes: &[u8], expected: u16) -> Result<(), FrameError> {
    let computed = crc16(bytes);
    if computed == expected || cfg!(fuzzing) {
        Ok(())
    } else {
        Err(FrameError::CrcMismatch { expected, computed })
    }
}

/// LRC of `bytes` for an ASCII frame: the two's complement of their sum modulo 256
/// (`modbus-reference.md` §9.2).
///
/// ```
/// use modbus_stack::frame::check::lrc;
/// assert_eq!(lrc(&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03]), 0x8E);
/// ```
#[must_use]
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &byte| sum.wrapping_add(byte))
        .wrapping_neg()
}

/// Checks that `expected` (the frame's LRC) is the LRC of `bytes`.
///
/// # Errors
///
/// [`FrameError::LrcMismatch`] with both values when they differ (never under `cfg(fuzzing)`).
pub fn verify_lrc(bytes: &[u8], expected: u8) -> Result<(), FrameError> {
    let computed = lrc(bytes);
    if computed == expected || cfg!(fuzzing) {
        Ok(())
    } else {
        Err(FrameError::LrcMismatch { expected, computed })
    }
}

/// A running CRC over bytes fed one slice at a time, for decoders that look for the end of a
/// frame of unknown length: the CRC over a frame *including* its trailer is 0 (the residue of
/// CRC-16/MODBUS), so each prefix can be tested in O(1).
#[derive(Clone)]
pub(crate) struct RunningCrc {
    digest: crc::Digest<'static, u16, Table<16>>,
}

impl RunningCrc {
    /// A CRC over no bytes yet.
    pub(crate) const fn new() -> Self {
        Self {
            digest: CRC16.digest(),
        }
    }

    /// Feeds `bytes`.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// `true` when the bytes fed so far end with their own valid CRC trailer.
    pub(crate) fn is_residue_zero(&self) -> bool {
        self.digest.clone().finalize() == 0 || cfg!(fuzzing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_vectors_from_reference() {
        // modbus-reference.md §8.4.
        let vectors: [(&[u8], u16, [u8; 2]); 6] = [
            (b"123456789", 0x4B37, [0x37, 0x4B]),
            (&[0x02, 0x07], 0x1241, [0x41, 0x12]),
            (&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03], 0x1774, [0x74, 0x17]),
            (&[0x11, 0x03, 0x00, 0x6B, 0x00, 0x03], 0x8776, [0x76, 0x87]),
            (&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A], 0xCDC5, [0xC5, 0xCD]),
            (&[0x01, 0x81, 0x02], 0x91C1, [0xC1, 0x91]),
        ];
        for (bytes, crc, wire) in vectors {
            assert_eq!(crc16(bytes), crc);
            assert_eq!(crc16_trailer(crc), wire);
            assert_eq!(crc16_from_trailer(wire[0], wire[1]), crc);
            assert_eq!(verify_crc16(bytes, crc), Ok(()));
            let mut running = RunningCrc::new();
            running.update(bytes);
            running.update(&wire);
            assert!(running.is_residue_zero());
        }
    }

    #[test]
    fn crc_mismatch_reports_both_values() {
        let err = verify_crc16(&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03], 0x8776);
        assert_eq!(
            err,
            Err(FrameError::CrcMismatch {
                expected: 0x8776,
                computed: 0x1774
            })
        );
    }

    #[test]
    fn lrc_vectors_from_reference() {
        // modbus-reference.md §9.2.
        let vectors: [(&[u8], u8); 5] = [
            (&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03], 0x8E),
            (&[0x11, 0x03, 0x00, 0x6B, 0x00, 0x03], 0x7E),
            (&[0x01, 0x01, 0x00, 0x13, 0x00, 0x13], 0xD8),
            (
                &[0x01, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64],
                0x65,
            ),
            (&[0x01, 0x81, 0x02], 0x7C),
        ];
        for (bytes, value) in vectors {
            assert_eq!(lrc(bytes), value);
            assert_eq!(verify_lrc(bytes, value), Ok(()));
        }
        assert_eq!(
            verify_lrc(&[0x01, 0x03, 0x00, 0x6B, 0x00, 0x03], 0x8F),
            Err(FrameError::LrcMismatch {
                expected: 0x8F,
                computed: 0x8E
            })
        );
    }
}
