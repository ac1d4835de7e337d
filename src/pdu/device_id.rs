//! FC 43 / MEI 14 Read Device Identification (`modbus-reference.md` §4.19.2).
//!
//! A device describes itself as numbered string objects. A response carries as many whole
//! objects as fit one PDU and says, with `more_follows` and `next_object_id`, where the client
//! continues; [`DeviceIdObjects`] iterates over the objects of one response without copying.

use super::file_record::write_front;
use super::list::{WireItem, WireList, sealed};
use crate::error::EncodeError;

/// MEI type of Read Device Identification.
pub const MEI_READ_DEVICE_ID: u8 = 0x0E;
/// MEI type of `CANopen` General Reference.
pub const MEI_CANOPEN_GENERAL_REFERENCE: u8 = 0x0D;

/// Object 0x00, mandatory: vendor name.
pub const VENDOR_NAME: u8 = 0x00;
/// Object 0x01, mandatory: product code.
pub const PRODUCT_CODE: u8 = 0x01;
/// Object 0x02, mandatory: major/minor revision.
pub const MAJOR_MINOR_REVISION: u8 = 0x02;
/// Object 0x03, regular: vendor URL.
pub const VENDOR_URL: u8 = 0x03;
/// Object 0x04, regular: product name.
pub const PRODUCT_NAME: u8 = 0x04;
/// Object 0x05, regular: model name.
pub const MODEL_NAME: u8 = 0x05;
/// Object 0x06, regular: user application name.
pub const USER_APPLICATION_NAME: u8 = 0x06;

/// The most object bytes (ids, lengths and values) one response can carry: 253 − 7.
pub const MAX_OBJECT_BYTES: usize = 246;

/// What a Read Device Identification request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadDeviceIdCode {
    /// 01: the basic objects 0x00–0x02, as a stream.
    BasicStream,
    /// 02: the basic and regular objects 0x00–0x7F, as a stream.
    RegularStream,
    /// 03: all objects including private ones 0x80–0xFF, as a stream.
    ExtendedStream,
    /// 04: one specific object.
    Individual,
}

impl ReadDeviceIdCode {
    /// The code byte.
    #[must_use]
    pub const fn value(self) -> u8 {
        match self {
            Self::BasicStream => 1,
            Self::RegularStream => 2,
            Self::ExtendedStream => 3,
            Self::Individual => 4,
        }
    }

    /// The code for a byte, if it is 1–4.
    #[must_use]
    pub const fn from_value(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::BasicStream,
            2 => Self::RegularStream,
            3 => Self::ExtendedStream,
            4 => Self::Individual,
            _ => return None,
        })
    }
}

/// One identification object: an id and its value bytes (usually ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceIdObject<'a> {
    /// Object id (see the constants in this module).
    pub id: u8,
    /// Object value, at most 244 bytes.
    pub value: &'a [u8],
}

/// The objects of one Read Device Identification response.
pub type DeviceIdObjects<'a> = WireList<'a, DeviceIdObject<'a>>;

/// A Read Device Identification response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentification<'a> {
    /// Echo of the request's code.
    pub code: ReadDeviceIdCode,
    /// The device's conformity level (0x01–0x03, or 0x81–0x83 when individual access works).
    pub conformity_level: u8,
    /// More objects follow: repeat the request from `next_object_id`.
    pub more_follows: bool,
    /// The object id to ask for next when `more_follows` is set (0 otherwise).
    pub next_object_id: u8,
    /// The objects in this response.
    pub objects: DeviceIdObjects<'a>,
}

impl sealed::Sealed for DeviceIdObject<'_> {}

impl<'a> WireItem<'a> for DeviceIdObject<'a> {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        let (&[id, len], rest) = bytes.split_first_chunk::<2>()?;
        let (value, rest) = rest.split_at_checked(usize::from(len))?;
        *bytes = rest;
        Some(Self { id, value })
    }

    fn wire_len(&self) -> usize {
        // Saturates only for a value no PDU can carry; `write_to` and `validate` reject it.
        self.value.len().saturating_add(2)
    }

    fn write_to(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = u8::try_from(self.value.len()).map_err(|_| {
            EncodeError::Invalid(crate::DecodeError::ResponseTooLong {
                function: super::FunctionCode::EncapsulatedInterfaceTransport,
                len: self.wire_len(),
            })
        })?;
        write_front(out, &[self.id, len])?;
        let required = self.wire_len();
        let available = out.len();
        out.get_mut(2..required)
            .ok_or(EncodeError::BufferTooSmall {
                required,
                available,
            })?
            .copy_from_slice(self.value);
        Ok(required)
    }
}
