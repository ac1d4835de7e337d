//! Helpers shared by the integration tests: hex parsing, the spec's test vectors, and encode
//! checks that catch writes past the encoded length.
//!
//! Each test crate uses a different subset, so unused items are expected here.
#![allow(dead_code)]

use modbus_stack::pdu::{Request, Response};

/// Parses space-separated hex byte pairs, e.g. `hex("01 03 00 6B")`. Also accepts quoted ASCII
/// runs (`"V2.11"`) between the pairs, as the reference writes device-id objects.
///
/// Panics on anything else, so a typo in a vector fails loudly instead of testing the wrong bytes.
#[must_use]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .unwrap_or_else(|| panic!("unterminated string in {text:?}"));
            out.extend_from_slice(&quoted.as_bytes()[..end]);
            rest = quoted[end + 1..].trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        assert_eq!(
            token.len(),
            2,
            "hex token {token:?} in {text:?} is not one byte"
        );
        let byte = u8::from_str_radix(token, 16)
            .unwrap_or_else(|_| panic!("bad hex token {token:?} in {text:?}"));
        out.push(byte);
        rest = rest[end..].trim_start();
    }
    out
}

/// CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF), computed bit by bit so it
/// is independent of the crate's table-driven implementation. Returns the two bytes in wire
/// order (low byte first).
#[must_use]
pub(crate) fn crc16_modbus(bytes: &[u8]) -> [u8; 2] {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc.to_le_bytes()
}

/// The PDU inside an RTU ADU: drops the address byte and the two CRC bytes, after checking the
/// CRC so a mistyped vector cannot slip through.
#[must_use]
pub(crate) fn rtu_pdu(adu: &[u8]) -> Vec<u8> {
    assert!(adu.len() >= 4, "RTU ADU {adu:02X?} is too short");
    let (body, crc) = adu.split_at(adu.len() - 2);
    assert_eq!(crc16_modbus(body), crc, "CRC of RTU ADU {adu:02X?}");
    body[1..].to_vec()
}

/// One request/response pair of `modbus-reference.md` §12.1, as RTU ADUs for server 0x01.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtuVector {
    /// Function name as the reference's table gives it.
    pub(crate) name: &'static str,
    /// Request ADU.
    pub(crate) request: &'static str,
    /// Response ADU (the same as the request for the echo functions).
    pub(crate) response: &'static str,
}

impl RtuVector {
    /// The request PDU.
    #[must_use]
    pub(crate) fn request_pdu(&self) -> Vec<u8> {
        rtu_pdu(&hex(self.request))
    }

    /// The response PDU.
    #[must_use]
    pub(crate) fn response_pdu(&self) -> Vec<u8> {
        rtu_pdu(&hex(self.response))
    }
}

/// `modbus-reference.md` §12.1, every row (server address 0x01, CRC included).
pub(crate) const SPEC_RTU_VECTORS: &[RtuVector] = &[
    RtuVector {
        name: "01 Read Coils",
        request: "01 01 00 13 00 13 8C 02",
        response: "01 01 03 CD 6B 05 42 82",
    },
    RtuVector {
        name: "02 Read Discrete Inputs",
        request: "01 02 00 C4 00 16 B8 39",
        response: "01 02 03 AC DB 35 22 88",
    },
    RtuVector {
        name: "03 Read Holding Registers",
        request: "01 03 00 6B 00 03 74 17",
        response: "01 03 06 02 2B 00 00 00 64 05 7A",
    },
    RtuVector {
        name: "04 Read Input Registers",
        request: "01 04 00 08 00 01 B0 08",
        response: "01 04 02 00 0A 39 37",
    },
    RtuVector {
        name: "05 Write Single Coil",
        request: "01 05 00 AC FF 00 4C 1B",
        response: "01 05 00 AC FF 00 4C 1B",
    },
    RtuVector {
        name: "06 Write Single Register",
        request: "01 06 00 01 00 03 98 0B",
        response: "01 06 00 01 00 03 98 0B",
    },
    RtuVector {
        name: "07 Read Exception Status",
        request: "01 07 41 E2",
        response: "01 07 6D E3 DD",
    },
    RtuVector {
        name: "08/00 Return Query Data",
        request: "01 08 00 00 A5 37 DA 8D",
        response: "01 08 00 00 A5 37 DA 8D",
    },
    RtuVector {
        name: "0B Get Comm Event Counter",
        request: "01 0B 41 E7",
        response: "01 0B FF FF 01 08 A4 79",
    },
    RtuVector {
        name: "0C Get Comm Event Log",
        request: "01 0C 00 25",
        response: "01 0C 08 00 00 01 08 01 21 20 00 0D C1",
    },
    RtuVector {
        name: "0F Write Multiple Coils",
        request: "01 0F 00 13 00 0A 02 CD 01 72 CB",
        response: "01 0F 00 13 00 0A 24 09",
    },
    RtuVector {
        name: "10 Write Multiple Registers",
        request: "01 10 00 01 00 02 04 00 0A 01 02 92 30",
        response: "01 10 00 01 00 02 10 08",
    },
    RtuVector {
        name: "14 Read File Record",
        request: "01 14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00 02 F4 FD",
        response: "01 14 0C 05 06 0D FE 00 20 05 06 33 CD 00 40 79 A1",
    },
    RtuVector {
        name: "15 Write File Record",
        request: "01 15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D D6 0B",
        response: "01 15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D D6 0B",
    },
    RtuVector {
        name: "16 Mask Write Register",
        request: "01 16 00 04 00 F2 00 25 67 EE",
        response: "01 16 00 04 00 F2 00 25 67 EE",
    },
    RtuVector {
        name: "17 Read/Write Multiple Registers",
        request: "01 17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF 46 91",
        response: "01 17 0C 00 FE 0A CD 00 01 00 03 00 0D 00 FF 1D 79",
    },
    RtuVector {
        name: "18 Read FIFO Queue",
        request: "01 18 04 DE 03 47",
        response: "01 18 00 06 00 02 01 B8 12 84 19 18",
    },
    RtuVector {
        name: "2B/0E Read Device Id",
        request: "01 2B 0E 01 00 70 77",
        response: "01 2B 0E 01 01 00 00 03 00 16 43 6F 6D 70 61 6E 79 20 69 64 65 6E 74 69 66 69 63 61 74 69 6F 6E 01 0F 50 72 6F 64 75 63 74 20 63 6F 64 65 20 58 58 02 05 56 32 2E 31 31 FC 21",
    },
    RtuVector {
        name: "Exception (FC01 to nonexistent address 0x04A1)",
        request: "01 01 04 A1 00 01 AD 18",
        response: "01 81 02 C1 91",
    },
];

/// `modbus-reference.md` §4.19.2, corrected single-response example (PDU).
pub(crate) const DEVICE_ID_REQUEST: &str = "2B 0E 01 00";
/// Response to [`DEVICE_ID_REQUEST`]: three basic objects in one PDU.
pub(crate) const DEVICE_ID_RESPONSE: &str =
    r#"2B 0E 01 01 00 00 03 00 16 "Company identification" 01 0F "Product code XX" 02 05 "V2.11""#;
/// §4.19.2 split example, first response (request [`DEVICE_ID_REQUEST`]): two objects, more
/// follows, next object 0x02.
pub(crate) const DEVICE_ID_SPLIT_RESPONSE_1: &str =
    r#"2B 0E 01 01 FF 02 02 00 16 "Company identification" 01 1D "Product code XXXXXXXXXXXXXXXX""#;
/// §4.19.2 split example, second request: continue from object 0x02.
pub(crate) const DEVICE_ID_SPLIT_REQUEST_2: &str = "2B 0E 01 02";
/// §4.19.2 split example, second response: the last object.
pub(crate) const DEVICE_ID_SPLIT_RESPONSE_2: &str = r#"2B 0E 01 01 00 00 01 02 05 "V2.11""#;

/// Size of the poisoned buffers the encode checks use: larger than any PDU.
pub(crate) const POISON_LEN: usize = 300;
/// The byte the encode checks fill their buffers with.
pub(crate) const POISON: u8 = 0xAA;

/// Encodes `request` into a buffer filled with [`POISON`], checks that the length returned
/// equals `encoded_len()`, that nothing past it was touched, and that a buffer one byte short
/// is refused; returns the encoded bytes.
#[track_caller]
pub(crate) fn encode_request(request: &Request<'_>) -> Vec<u8> {
    let mut buf = [POISON; POISON_LEN];
    let len = request
        .encode(&mut buf)
        .unwrap_or_else(|err| panic!("encoding {request:?} failed: {err}"));
    check_encoded(len, request.encoded_len(), &buf);
    let mut short = vec![POISON; len - 1];
    assert!(
        request.encode(&mut short).is_err(),
        "encoding {request:?} into {} bytes succeeded",
        len - 1
    );
    buf[..len].to_vec()
}

/// As [`encode_request`], for a response.
#[track_caller]
pub(crate) fn encode_response(response: &Response<'_>) -> Vec<u8> {
    let mut buf = [POISON; POISON_LEN];
    let len = response
        .encode(&mut buf)
        .unwrap_or_else(|err| panic!("encoding {response:?} failed: {err}"));
    check_encoded(len, response.encoded_len(), &buf);
    let mut short = vec![POISON; len - 1];
    assert!(
        response.encode(&mut short).is_err(),
        "encoding {response:?} into {} bytes succeeded",
        len - 1
    );
    buf[..len].to_vec()
}

#[track_caller]
fn check_encoded(len: usize, encoded_len: usize, buf: &[u8]) {
    assert_eq!(len, encoded_len, "encode() and encoded_len() disagree");
    assert!(len <= 253, "encoded PDU of {len} bytes exceeds 253");
    if let Some(pos) = buf[len..].iter().position(|&b| b != POISON) {
        panic!(
            "encode wrote past its length {len}: byte {} is {:#04X}",
            len + pos,
            buf[len + pos]
        );
    }
}

/// Modbus ASCII LRC (two's complement of the byte sum), computed independently of the crate's
/// implementation.
#[must_use]
pub(crate) fn lrc(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &byte| sum.wrapping_add(byte))
        .wrapping_neg()
}
