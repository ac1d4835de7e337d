//! FC 20/21 file records: groups of 16-bit records in files of 10 000 (`modbus-reference.md` §4.14).
//!
//! A request carries one or more groups; each names a file, a first record and a count. The
//! types here are the items of [`WireList`]s, so a decoded request iterates over the received
//! bytes and a built one over the caller's slice.

use super::list::{WireItem, WireList, sealed};
use super::payload::Registers;
use crate::error::{DecodeError, EncodeError};

/// The only reference type the specification defines for file records.
pub const REFERENCE_TYPE: u8 = 6;
/// Records per file: record numbers run from 0 to 9999.
pub const RECORDS_PER_FILE: u16 = 10_000;
/// Most records one FC 21 group can carry: a 251-byte request holds 7 + 2 × 122.
pub const MAX_FILE_WRITE_RECORDS: u16 = 122;
/// Wire size of one FC 20 request group.
pub const READ_GROUP_LEN: usize = 7;

/// One group of an FC 20 request: read `record_length` records of `file_number` from
/// `record_number` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileReadGroup {
    /// File number, 1–65535.
    pub file_number: u16,
    /// First record, 0–9999.
    pub record_number: u16,
    /// Number of 16-bit records to read.
    pub record_length: u16,
}

/// One group of an FC 21 request (and its echo): write `values` into `file_number` from
/// `record_number` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRecord<'a> {
    /// File number, 1–65535.
    pub file_number: u16,
    /// First record, 0–9999.
    pub record_number: u16,
    /// The record values.
    pub values: Registers<'a>,
}

/// The groups of an FC 20 request.
pub type FileReadGroups<'a> = WireList<'a, FileReadGroup>;
/// The groups of an FC 21 request or response.
pub type FileRecords<'a> = WireList<'a, FileRecord<'a>>;
/// The sub-responses of an FC 20 response: the records of each group, in request order.
pub type FileReadResponses<'a> = WireList<'a, Registers<'a>>;

/// Checks the file-number and record range rules (§4.14, errata 7): file 0 is not a file, and
/// the records must lie within 0..10000.
pub(crate) fn check_file_range(
    file_number: u16,
    record_number: u16,
    record_length: u16,
) -> Result<(), DecodeError> {
    // Two `u16`s cannot overflow a `u32`, and a saturated sum would fail the check anyway.
    let end = u32::from(record_number).saturating_add(u32::from(record_length));
    if file_number == 0 || end > u32::from(RECORDS_PER_FILE) {
        return Err(DecodeError::FileRecordOutOfRange {
            file_number,
            record_number,
            record_length,
        });
    }
    Ok(())
}

impl sealed::Sealed for FileReadGroup {}

impl WireItem<'_> for FileReadGroup {
    fn read(bytes: &mut &[u8]) -> Option<Self> {
        let (group, rest) = bytes.split_first_chunk::<READ_GROUP_LEN>()?;
        *bytes = rest;
        let [_reference_type, f0, f1, r0, r1, l0, l1] = *group;
        Some(Self {
            file_number: u16::from_be_bytes([f0, f1]),
            record_number: u16::from_be_bytes([r0, r1]),
            record_length: u16::from_be_bytes([l0, l1]),
        })
    }

    fn wire_len(&self) -> usize {
        READ_GROUP_LEN
    }

    fn write_to(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let [f0, f1] = self.file_number.to_be_bytes();
        let [r0, r1] = self.record_number.to_be_bytes();
        let [l0, l1] = self.record_length.to_be_bytes();
        write_front(out, &[REFERENCE_TYPE, f0, f1, r0, r1, l0, l1])
    }
}

impl sealed::Sealed for FileRecord<'_> {}

impl<'a> WireItem<'a> for FileRecord<'a> {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        let (header, rest) = bytes.split_first_chunk::<7>()?;
        let [_reference_type, f0, f1, r0, r1, l0, l1] = *header;
        let data_len = usize::from(u16::from_be_bytes([l0, l1])).checked_mul(2)?;
        let (data, rest) = rest.split_at_checked(data_len)?;
        *bytes = rest;
        Some(Self {
            file_number: u16::from_be_bytes([f0, f1]),
            record_number: u16::from_be_bytes([r0, r1]),
            values: Registers::try_from(data).ok()?,
        })
    }

    fn wire_len(&self) -> usize {
        // Saturates only for values no PDU can carry, which validation rejects by length.
        self.values.byte_len().saturating_add(7)
    }

    fn write_to(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = u16::try_from(self.values.len())
            .map_err(|_| EncodeError::Invalid(self.range_error()))?;
        let [f0, f1] = self.file_number.to_be_bytes();
        let [r0, r1] = self.record_number.to_be_bytes();
        let [l0, l1] = len.to_be_bytes();
        let header = write_front(out, &[REFERENCE_TYPE, f0, f1, r0, r1, l0, l1])?;
        let required = self.wire_len();
        let available = out.len();
        let data = out
            .get_mut(header..required)
            .ok_or(EncodeError::BufferTooSmall {
                required,
                available,
            })?;
        self.values.write_wire(data);
        Ok(required)
    }
}

impl FileRecord<'_> {
    fn range_error(&self) -> DecodeError {
        DecodeError::FileRecordOutOfRange {
            file_number: self.file_number,
            record_number: self.record_number,
            record_length: u16::try_from(self.values.len()).unwrap_or(u16::MAX),
        }
    }

    /// The number of records, saturated to `u16::MAX` (validation rejects such lengths).
    pub(crate) fn record_length(&self) -> u16 {
        u16::try_from(self.values.len()).unwrap_or(u16::MAX)
    }
}

impl sealed::Sealed for Registers<'_> {}

/// An FC 20 sub-response: length byte (1 + 2N), reference type, N records.
impl<'a> WireItem<'a> for Registers<'a> {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        let (&len, rest) = bytes.split_first()?;
        let (_reference_type, rest) = rest.split_first()?;
        let (data, rest) = rest.split_at_checked(usize::from(len).checked_sub(1)?)?;
        *bytes = rest;
        Registers::try_from(data).ok()
    }

    fn wire_len(&self) -> usize {
        // Saturates only for values no PDU can carry, which validation rejects by length.
        self.byte_len().saturating_add(2)
    }

    fn write_to(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        // A saturated length fails the conversion like any other too-long one.
        let len = u8::try_from(self.byte_len().saturating_add(1)).map_err(|_| {
            EncodeError::Invalid(DecodeError::ResponseTooLong {
                function: super::FunctionCode::ReadFileRecord,
                len: self.wire_len(),
            })
        })?;
        write_front(out, &[len, REFERENCE_TYPE])?;
        let required = self.wire_len();
        let available = out.len();
        let data = out
            .get_mut(2..required)
            .ok_or(EncodeError::BufferTooSmall {
                required,
                available,
            })?;
        self.write_wire(data);
        Ok(required)
    }
}

/// Copies `bytes` to the front of `out`.
pub(crate) fn write_front(out: &mut [u8], bytes: &[u8]) -> Result<usize, EncodeError> {
    let available = out.len();
    out.get_mut(..bytes.len())
        .ok_or(EncodeError::BufferTooSmall {
            required: bytes.len(),
            available,
        })?
        .copy_from_slice(bytes);
    Ok(bytes.len())
}
