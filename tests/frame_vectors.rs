//! Spec vectors for the framings (`modbus-reference.md` §8.4, §9.2, §12.1–§12.3): the oracle gives
//! each RTU ADU's exact length, decoders give unit id and PDU, encoders give the same bytes.

use modbus_stack::FrameError;
use modbus_stack::frame::rtu::{self, FrameLength, LengthRules, frame_len};
use modbus_stack::frame::{Role, Status, ascii, tcp};
use modbus_stack::time::Instant;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// §12.1: every RTU ADU with the direction(s) it travels in.
const RTU_VECTORS: &[(&str, &[Role], &str)] = &[
    ("01 req", &[Role::Request], "01 01 00 13 00 13 8C 02"),
    ("01 rsp", &[Role::Response], "01 01 03 CD 6B 05 42 82"),
    ("02 req", &[Role::Request], "01 02 00 C4 00 16 B8 39"),
    ("02 rsp", &[Role::Response], "01 02 03 AC DB 35 22 88"),
    ("03 req", &[Role::Request], "01 03 00 6B 00 03 74 17"),
    (
        "03 rsp",
        &[Role::Response],
        "01 03 06 02 2B 00 00 00 64 05 7A",
    ),
    ("04 req", &[Role::Request], "01 04 00 08 00 01 B0 08"),
    ("04 rsp", &[Role::Response], "01 04 02 00 0A 39 37"),
    (
        "05",
        &[Role::Request, Role::Response],
        "01 05 00 AC FF 00 4C 1B",
    ),
    (
        "06",
        &[Role::Request, Role::Response],
        "01 06 00 01 00 03 98 0B",
    ),
    ("07 req", &[Role::Request], "01 07 41 E2"),
    ("07 rsp", &[Role::Response], "01 07 6D E3 DD"),
    ("0B req", &[Role::Request], "01 0B 41 E7"),
    ("0B rsp", &[Role::Response], "01 0B FF FF 01 08 A4 79"),
    ("0C req", &[Role::Request], "01 0C 00 25"),
    (
        "0C rsp",
        &[Role::Response],
        "01 0C 08 00 00 01 08 01 21 20 00 0D C1",
    ),
    (
        "0F req",
        &[Role::Request],
        "01 0F 00 13 00 0A 02 CD 01 72 CB",
    ),
    ("0F rsp", &[Role::Response], "01 0F 00 13 00 0A 24 09"),
    (
        "10 req",
        &[Role::Request],
        "01 10 00 01 00 02 04 00 0A 01 02 92 30",
    ),
    ("10 rsp", &[Role::Response], "01 10 00 01 00 02 10 08"),
    (
        "14 req",
        &[Role::Request],
        "01 14 0E 06 00 04 00 01 00 02 06 00 03 00 09 00 02 F4 FD",
    ),
    (
        "14 rsp",
        &[Role::Response],
        "01 14 0C 05 06 0D FE 00 20 05 06 33 CD 00 40 79 A1",
    ),
    (
        "15",
        &[Role::Request, Role::Response],
        "01 15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D D6 0B",
    ),
    (
        "16",
        &[Role::Request, Role::Response],
        "01 16 00 04 00 F2 00 25 67 EE",
    ),
    (
        "17 req",
        &[Role::Request],
        "01 17 00 03 00 06 00 0E 00 03 06 00 FF 00 FF 00 FF 46 91",
    ),
    (
        "17 rsp",
        &[Role::Response],
        "01 17 0C 00 FE 0A CD 00 01 00 03 00 0D 00 FF 1D 79",
    ),
    ("18 req", &[Role::Request], "01 18 04 DE 03 47"),
    (
        "18 rsp",
        &[Role::Response],
        "01 18 00 06 00 02 01 B8 12 84 19 18",
    ),
    ("2B/0E req", &[Role::Request], "01 2B 0E 01 00 70 77"),
    (
        "2B/0E rsp",
        &[Role::Response],
        "01 2B 0E 01 01 00 00 03 00 16 43 6F 6D 70 61 6E 79 20 69 64 65 6E 74 69 66 69 63 61 74 69 6F 6E 01 0F 50 72 6F 64 75 63 74 20 63 6F 64 65 20 58 58 02 05 56 32 2E 31 31 FC 21",
    ),
    ("exception req", &[Role::Request], "01 01 04 A1 00 01 AD 18"),
    ("exception rsp", &[Role::Response], "01 81 02 C1 91"),
];

/// FC 08/0000 (return query data): valid, but its length is not derivable.
const RTU_DIAGNOSTIC_ECHO: &str = "01 08 00 00 A5 37 DA 8D";

#[test]
fn rtu_oracle_gives_exact_length_of_every_vector() {
    let rules = LengthRules::new();
    for &(name, roles, text) in RTU_VECTORS {
        let adu = hex(text);
        for &role in roles {
            assert_eq!(
                frame_len(&adu, role, &rules),
                FrameLength::Exact(adu.len()),
                "{name} as {role:?}"
            );
            // Every shorter prefix either asks for more bytes or already knows the length.
            for cut in 0..adu.len() {
                match frame_len(&adu[..cut], role, &rules) {
                    FrameLength::AtLeast(n) => {
                        assert!(n > cut && n <= adu.len(), "{name} at {cut}");
                    }
                    FrameLength::Exact(n) => assert_eq!(n, adu.len(), "{name} at {cut}"),
                    other => panic!("{name} at {cut}: {other:?}"),
                }
            }
        }
    }
    let echo = hex(RTU_DIAGNOSTIC_ECHO);
    assert_eq!(
        frame_len(&echo, Role::Request, &rules),
        FrameLength::NotDerivable
    );
    assert_eq!(
        frame_len(&echo, Role::Response, &rules),
        FrameLength::NotDerivable
    );
    assert_eq!(
        frame_len(&[0x01, 0x2B, 0x0D], Role::Request, &rules),
        FrameLength::NotDerivable
    );
    assert_eq!(
        frame_len(&[0x01, 0x2B, 0x0D], Role::Response, &rules),
        FrameLength::NotDerivable
    );
}

#[test]
fn rtu_parse_and_encode_every_vector() {
    let rules = LengthRules::new();
    let mut all: Vec<(&str, Vec<Role>, Vec<u8>)> = RTU_VECTORS
        .iter()
        .map(|&(n, r, t)| (n, r.to_vec(), hex(t)))
        .collect();
    all.push((
        "08/00",
        vec![Role::Request, Role::Response],
        hex(RTU_DIAGNOSTIC_ECHO),
    ));
    for (name, roles, adu) in all {
        for role in roles {
            let Status::Complete { frame, consumed } = rtu::parse(&adu, role, &rules) else {
                panic!("{name}: not complete");
            };
            assert_eq!(consumed, adu.len(), "{name}");
            assert_eq!(frame.unit_id(), 1);
            assert_eq!(frame.pdu(), &adu[1..adu.len() - 2]);
            assert_eq!(frame.verify_crc(), Ok(()));
            let checked = rtu::Adu::new_checked(&adu[..]).unwrap();
            assert_eq!(checked.pdu(), frame.pdu());
        }
        // Encode into a poisoned buffer: exactly the ADU's bytes are written.
        let mut out = [0xA5u8; 300];
        let len = rtu::encode(1, &adu[1..adu.len() - 2], &mut out).unwrap();
        assert_eq!(&out[..len], &adu[..], "{name}");
        assert!(out[len..].iter().all(|&b| b == 0xA5));
    }
}

#[test]
fn rtu_encode_reports_small_buffer_and_bad_pdu() {
    let mut out = [0u8; 7];
    assert_eq!(
        rtu::encode(1, &[0x03, 0x00, 0x6B, 0x00, 0x03], &mut out),
        Err(modbus_stack::EncodeError::BufferTooSmall {
            required: 8,
            available: 7
        })
    );
    assert!(rtu::encode(1, &[], &mut [0u8; 8]).is_err());
    assert!(rtu::encode(1, &[0u8; 254], &mut [0u8; 300]).is_err());
}

#[test]
fn rtu_crc_mismatch_is_invalid() {
    // §12.3 / §14 #12: 76 87 is the CRC for address 0x11.
    let adu = hex("01 03 00 6B 00 03 76 87");
    let status = rtu::parse(&adu, Role::Request, &LengthRules::new());
    assert_eq!(
        status,
        Status::Invalid {
            error: FrameError::CrcMismatch {
                expected: 0x8776,
                computed: 0x1774
            },
            discard: 1
        }
    );
}

#[test]
fn rtu_adu_view_checks_length() {
    assert_eq!(
        rtu::Adu::new_checked(&[0x01, 0x07, 0x41][..]).unwrap_err(),
        FrameError::FrameTooShort { len: 3 }
    );
    assert_eq!(
        rtu::Adu::new_checked(&[0u8; 257][..]).unwrap_err(),
        FrameError::FrameTooLong { len: 257 }
    );
    // Unchecked views never panic, even on nothing.
    let empty = rtu::Adu::new_unchecked(&[][..]);
    assert_eq!((empty.unit_id(), empty.pdu(), empty.crc()), (0, &[][..], 0));
}

#[test]
fn rtu_adu_setters_refill_crc() {
    let mut bytes = hex("01 03 00 6B 00 03 74 17");
    let mut adu = rtu::Adu::new_checked(&mut bytes[..]).unwrap();
    adu.set_unit_id(0x11);
    adu.fill_crc();
    assert_eq!(bytes, hex("11 03 00 6B 00 03 76 87"));
}

/// §9.2 frames and their binary contents.
const ASCII_VECTORS: &[(&str, &str)] = &[
    (":0103006B00038E\r\n", "01 03 00 6B 00 03"),
    (":1103006B00037E\r\n", "11 03 00 6B 00 03"),
    (":010100130013D8\r\n", "01 01 00 13 00 13"),
    (":010306022B0000006465\r\n", "01 03 06 02 2B 00 00 00 64"),
    (":0181027C\r\n", "01 81 02"),
];

#[test]
fn ascii_vectors_decode_and_encode() {
    for &(frame, bytes) in ASCII_VECTORS {
        let bytes = hex(bytes);
        let mut out = [0u8; ascii::MAX_FRAME_CHARS];
        let len = ascii::encode(bytes[0], &bytes[1..], &mut out).unwrap();
        assert_eq!(&out[..len], frame.as_bytes());

        let mut decoder = ascii::Decoder::new(ascii::Config::new());
        assert_eq!(decoder.push(Instant::ZERO, frame.as_bytes()), frame.len());
        let adu = decoder.poll_frame().unwrap().unwrap();
        assert_eq!(adu.unit_id(), bytes[0]);
        assert_eq!(adu.pdu(), &bytes[1..]);
        assert!(decoder.poll_frame().is_none());
        // Lower case is accepted too.
        let lower = frame.to_ascii_lowercase();
        decoder.push(Instant::ZERO, lower.as_bytes());
        assert_eq!(decoder.poll_frame().unwrap().unwrap().pdu(), &bytes[1..]);
    }
}

fn ascii_error(input: &[u8]) -> FrameError {
    let mut decoder = ascii::Decoder::new(ascii::Config::new());
    let mut rest = input;
    for _ in 0..=input.len() {
        let n = decoder.push(Instant::ZERO, rest);
        rest = &rest[n..];
        if let Some(result) = decoder.poll_frame() {
            return result.unwrap_err();
        }
    }
    panic!("no error for {input:?}");
}

#[test]
fn ascii_negative_vectors() {
    // §12.3: LRC error.
    assert_eq!(
        ascii_error(b":0103006B00038F\r\n"),
        FrameError::LrcMismatch {
            expected: 0x8F,
            computed: 0x8E
        }
    );
    assert_eq!(
        ascii_error(b":01G3\r\n"),
        FrameError::InvalidHexDigit { byte: b'G' }
    );
    assert_eq!(
        ascii_error(b":0181027\r\n"),
        FrameError::OddHexDigits { len: 7 }
    );
    assert_eq!(
        ascii_error(b":01FF\r\n"),
        FrameError::FrameTooShort { len: 2 }
    );
    assert_eq!(
        ascii_error(b":0181027C\rX"),
        FrameError::InvalidEnd { byte: b'X' }
    );
    let mut long = vec![b':'];
    long.extend(std::iter::repeat_n(b'0', 520));
    assert!(matches!(
        ascii_error(&long),
        FrameError::FrameTooLong { len } if len > ascii::MAX_FRAME_CHARS
    ));
}

#[test]
fn ascii_colon_mid_frame_restarts() {
    let mut decoder = ascii::Decoder::new(ascii::Config::new());
    let input = b":0103:0181027C\r\n";
    assert_eq!(decoder.push(Instant::ZERO, input), input.len());
    assert_eq!(decoder.poll_frame().unwrap().unwrap().pdu(), &[0x81, 0x02]);
    assert_eq!(decoder.counters().other_errors, 1);
}

#[test]
fn ascii_end_char_is_configurable() {
    let mut decoder = ascii::Decoder::new(ascii::Config::new().with_end_char(b'!'));
    let input = b":0181027C\r!";
    assert_eq!(decoder.push(Instant::ZERO, input), input.len());
    assert_eq!(decoder.poll_frame().unwrap().unwrap().unit_id(), 1);
    decoder.set_end_char(b'\n');
    decoder.push(Instant::ZERO, b":0181027C\r\n");
    assert!(decoder.poll_frame().unwrap().is_ok());
}

/// §12.2 TCP frames: (ADU, transaction id, unit id).
const TCP_VECTORS: &[(&str, u16, u8)] = &[
    ("15 01 00 00 00 06 FF 03 00 04 00 01", 0x1501, 0xFF),
    ("00 01 00 00 00 06 01 03 00 6B 00 03", 1, 1),
    ("00 01 00 00 00 09 01 03 06 02 2B 00 00 00 64", 1, 1),
    (
        "00 02 00 00 00 0B FF 10 00 01 00 02 04 00 0A 01 02",
        2,
        0xFF,
    ),
    ("00 02 00 00 00 06 FF 10 00 01 00 02", 2, 0xFF),
    ("00 03 00 00 00 03 FF 81 02", 3, 0xFF),
    ("00 04 00 00 00 02 FF 07", 4, 0xFF),
];

#[test]
fn tcp_vectors_parse_and_encode() {
    for &(text, tid, unit) in TCP_VECTORS {
        let adu = hex(text);
        let Status::Complete { frame, consumed } = tcp::parse(&adu) else {
            panic!("{text}");
        };
        assert_eq!(consumed, adu.len());
        assert_eq!(
            (frame.transaction_id(), frame.protocol_id(), frame.unit_id()),
            (tid, 0, unit)
        );
        assert_eq!(usize::from(frame.length()), adu.len() - 6);
        assert_eq!(frame.pdu(), &adu[7..]);
        let mut out = [0xA5u8; 300];
        let len = tcp::encode(tid, unit, &adu[7..], &mut out).unwrap();
        assert_eq!(&out[..len], &adu[..]);
        assert!(out[len..].iter().all(|&b| b == 0xA5));
        // Every prefix is incomplete with the exact count missing once the header is in.
        for cut in 0..adu.len() {
            let Status::Incomplete(needed) = tcp::parse(&adu[..cut]) else {
                panic!("{text} at {cut}");
            };
            let want = if cut < 7 { 7 - cut } else { adu.len() - cut };
            assert_eq!(needed, modbus_stack::frame::Needed::at_least(want));
        }
    }
}

#[test]
fn tcp_negative_vectors() {
    // Protocol id 1: the whole ADU is skipped, alignment kept.
    let adu = hex("00 01 00 01 00 06 01 03 00 6B 00 03 00 04");
    assert_eq!(
        tcp::parse(&adu),
        Status::Invalid {
            error: FrameError::ProtocolId { protocol_id: 1 },
            discard: 12
        }
    );
    for length in [0u16, 1, 255, 0xFFFF] {
        let mut adu = hex("00 01 00 00 00 00 01 03 00 6B 00 03");
        adu[4..6].copy_from_slice(&length.to_be_bytes());
        assert_eq!(
            tcp::parse(&adu),
            Status::Invalid {
                error: FrameError::LengthField { length },
                discard: adu.len()
            }
        );
        assert_eq!(
            tcp::MbapHeader::new_checked(&adu[..]).unwrap_err(),
            FrameError::LengthField { length }
        );
        // The decoder reports it once and then drops everything: close the connection.
        let mut decoder = tcp::Decoder::new();
        decoder.push(Instant::ZERO, &adu);
        assert_eq!(
            decoder.poll_frame().unwrap().unwrap_err(),
            FrameError::LengthField { length }
        );
        assert!(decoder.is_broken());
        let good = hex(TCP_VECTORS[6].0);
        assert_eq!(decoder.push(Instant::ZERO, &good), good.len());
        assert!(decoder.poll_frame().is_none());
        decoder.reset();
        decoder.push(Instant::ZERO, &good);
        assert!(decoder.poll_frame().unwrap().is_ok());
    }
}

#[test]
fn tcp_header_setters() {
    let mut bytes = hex("00 04 00 00 00 02 FF 07");
    let mut header = tcp::MbapHeader::new_checked(&mut bytes[..]).unwrap();
    header.set_transaction_id(0xBEEF);
    header.set_unit_id(1);
    assert_eq!(bytes, hex("BE EF 00 00 00 02 01 07"));
}
