//! Byte-exact PDU tests against `modbus-reference.md`: every §12.1 vector and §4 example in both
//! directions, every FC 08 sub-function, the §12.3 negative vectors and the limits of §4/§5.

mod support;

use modbus_stack::pdu::diagnostics::{DiagnosticCounter, DiagnosticsRequest, DiagnosticsResponse};
use modbus_stack::pdu::{
    Coils, DeviceIdObject, DeviceIdObjects, DeviceIdentification, ExceptionCode, ExceptionResponse,
    FileReadGroup, FileReadGroups, FileReadResponses, FileRecord, FileRecords, FunctionCode,
    ReadDeviceIdCode, Registers, Request, Response,
};
use modbus_stack::{DecodeError, EncodeError};
use support::{
    DEVICE_ID_REQUEST, DEVICE_ID_RESPONSE, DEVICE_ID_SPLIT_REQUEST_2, DEVICE_ID_SPLIT_RESPONSE_1,
    DEVICE_ID_SPLIT_RESPONSE_2, SPEC_RTU_VECTORS, encode_request, encode_response, hex,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Decodes `pdu` as a request, asserts it equals `expected`, and that encoding `expected` gives
/// exactly `pdu` back.
#[track_caller]
fn check_request(pdu: &[u8], expected: &Request<'_>) {
    let decoded =
        Request::decode(pdu).unwrap_or_else(|err| panic!("decoding {pdu:02X?} failed: {err}"));
    assert_eq!(&decoded, expected, "decoded request of {pdu:02X?}");
    assert_eq!(encode_request(expected), pdu, "encoding {expected:?}");
    // The decoded (wire-backed) value re-encodes identically too.
    assert_eq!(
        encode_request(&decoded),
        pdu,
        "re-encoding decoded {decoded:?}"
    );
}

/// As [`check_request`], for a response to `request`.
#[track_caller]
fn check_response(pdu: &[u8], request: &Request<'_>, expected: &Response<'_>) {
    let decoded = Response::decode(pdu, request)
        .unwrap_or_else(|err| panic!("decoding {pdu:02X?} for {request:?} failed: {err}"));
    assert_eq!(&decoded, expected, "decoded response of {pdu:02X?}");
    assert_eq!(encode_response(expected), pdu, "encoding {expected:?}");
    assert_eq!(
        encode_response(&decoded),
        pdu,
        "re-encoding decoded {decoded:?}"
    );
}

/// Decoding `pdu` as a request fails with `expected`, which maps to exception `code`.
#[track_caller]
fn reject_request(pdu: &[u8], expected: DecodeError, code: u8) {
    let err = Request::decode(pdu).expect_err(&format!("{pdu:02X?} must be rejected"));
    assert_eq!(err, expected, "error for {pdu:02X?}");
    assert_eq!(
        err.exception_code(),
        ExceptionCode::from(code),
        "exception for {pdu:02X?} ({err})"
    );
}

/// Decoding `pdu` as a request fails with exception `code`, whatever the error's details.
#[track_caller]
fn reject_request_code(pdu: &[u8], code: u8) -> DecodeError {
    let err = Request::decode(pdu).expect_err(&format!("{pdu:02X?} must be rejected"));
    assert_eq!(
        err.exception_code(),
        ExceptionCode::from(code),
        "exception for {pdu:02X?} ({err})"
    );
    err
}

#[track_caller]
fn reject_response(pdu: &[u8], request: &Request<'_>, expected: DecodeError) {
    let err = Response::decode(pdu, request)
        .expect_err(&format!("{pdu:02X?} for {request:?} must be rejected"));
    assert_eq!(err, expected, "error for {pdu:02X?}");
}

fn bits(text: &str) -> Vec<bool> {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '0' => false,
            '1' => true,
            other => panic!("bad bit {other:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// §12.1 vectors, both directions, with typed field checks
// ---------------------------------------------------------------------------------------------

/// Every §12.1 row is covered by one of the typed tests below (this checks the list itself:
/// CRCs are verified when the PDU is extracted, and each request/response pair decodes).
#[test]
fn every_rtu_vector_decodes_and_reencodes() {
    assert_eq!(SPEC_RTU_VECTORS.len(), 19);
    for vector in SPEC_RTU_VECTORS {
        let request_pdu = vector.request_pdu();
        let response_pdu = vector.response_pdu();
        let request = Request::decode(&request_pdu)
            .unwrap_or_else(|err| panic!("{}: request: {err}", vector.name));
        let response = Response::decode(&response_pdu, &request)
            .unwrap_or_else(|err| panic!("{}: response: {err}", vector.name));
        assert_eq!(encode_request(&request), request_pdu, "{}", vector.name);
        assert_eq!(encode_response(&response), response_pdu, "{}", vector.name);
        assert_eq!(
            request.function().value(),
            request_pdu[0],
            "{}",
            vector.name
        );
        assert_eq!(response.function(), request.function(), "{}", vector.name);
    }
}

fn vector(name_prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let v = SPEC_RTU_VECTORS
        .iter()
        .find(|v| v.name.starts_with(name_prefix))
        .unwrap_or_else(|| panic!("no vector {name_prefix}"));
    (v.request_pdu(), v.response_pdu())
}

#[test]
fn rtu_pdus_are_the_section_4_examples() {
    // Stripping address and CRC gives the §4 PDUs (guards the helper and the table).
    assert_eq!(vector("01 ").0, hex("01 00 13 00 13"));
    assert_eq!(vector("01 ").1, hex("01 03 CD 6B 05"));
    assert_eq!(vector("2B/0E").1, hex(DEVICE_ID_RESPONSE));
    assert_eq!(vector("Exception").1, hex("81 02"));
}

#[test]
fn fc01_read_coils() {
    let (req, rsp) = vector("01 ");
    let request = Request::ReadCoils {
        address: 0x13,
        quantity: 19,
    };
    check_request(&req, &request);
    // 0xCD = coils 27..20, 0x6B = 35..28, 0x05 = 38..36: LSB first.
    let expected = bits("10110011 11010110 101");
    check_response(
        &rsp,
        &request,
        &Response::ReadCoils {
            values: Coils::from_bools(&expected),
        },
    );
    let Response::ReadCoils { values } = Response::decode(&rsp, &request).unwrap() else {
        panic!("not ReadCoils");
    };
    assert_eq!(values.len(), 19);
    for (i, &bit) in expected.iter().enumerate() {
        assert_eq!(values.get(i), Some(bit), "coil {}", 20 + i);
    }
    assert_eq!(values.get(19), None);
    assert_eq!(values.iter().filter(|&on| on).count(), 12);
    let mut out = [false; 19];
    assert_eq!(values.copy_to(&mut out), 19);
    assert_eq!(out.as_slice(), expected.as_slice());
}

#[test]
fn fc02_read_discrete_inputs() {
    let (req, rsp) = vector("02 ");
    let request = Request::ReadDiscreteInputs {
        address: 0xC4,
        quantity: 22,
    };
    check_request(&req, &request);
    // 0xAC = inputs 204..197, 0xDB = 212..205, 0x35 = 218..213 (two padding bits).
    let expected = bits("00110101 11011011 101011");
    check_response(
        &rsp,
        &request,
        &Response::ReadDiscreteInputs {
            values: Coils::from_bools(&expected),
        },
    );
    let Response::ReadDiscreteInputs { values } = Response::decode(&rsp, &request).unwrap() else {
        panic!("not ReadDiscreteInputs");
    };
    assert!(values.iter().eq(expected.iter().copied()));
    assert_eq!(values.packed_bytes(), Some(&hex("AC DB 35")[..]));
}

#[test]
fn fc03_read_holding_registers() {
    let (req, rsp) = vector("03 ");
    let request = Request::ReadHoldingRegisters {
        address: 0x6B,
        quantity: 3,
    };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::ReadHoldingRegisters {
            values: Registers::from_words(&[555, 0, 100]),
        },
    );
    let Response::ReadHoldingRegisters { values } = Response::decode(&rsp, &request).unwrap()
    else {
        panic!("not ReadHoldingRegisters");
    };
    assert_eq!(values.len(), 3);
    assert_eq!(
        (values.get(0), values.get(1), values.get(2), values.get(3)),
        (Some(555), Some(0), Some(100), None)
    );
    let mut out = [0u16; 3];
    assert_eq!(values.copy_to(&mut out), 3);
    assert_eq!(out, [555, 0, 100]);
}

#[test]
fn fc04_read_input_registers() {
    let (req, rsp) = vector("04 ");
    let request = Request::ReadInputRegisters {
        address: 8,
        quantity: 1,
    };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::ReadInputRegisters {
            values: Registers::from_words(&[10]),
        },
    );
}

#[test]
fn fc05_write_single_coil() {
    let (req, rsp) = vector("05 ");
    assert_eq!(req, rsp);
    let request = Request::WriteSingleCoil {
        address: 0xAC,
        value: true,
    };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::WriteSingleCoil {
            address: 0xAC,
            value: true,
        },
    );
    // OFF is 0x0000.
    let off = Request::WriteSingleCoil {
        address: 0xAC,
        value: false,
    };
    check_request(&hex("05 00 AC 00 00"), &off);
    check_response(
        &hex("05 00 AC 00 00"),
        &off,
        &Response::WriteSingleCoil {
            address: 0xAC,
            value: false,
        },
    );
}

#[test]
fn fc06_write_single_register() {
    let (req, rsp) = vector("06 ");
    assert_eq!(req, rsp);
    let request = Request::WriteSingleRegister {
        address: 1,
        value: 3,
    };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::WriteSingleRegister {
            address: 1,
            value: 3,
        },
    );
}

#[test]
fn fc07_read_exception_status() {
    let (req, rsp) = vector("07 ");
    check_request(&req, &Request::ReadExceptionStatus);
    check_response(
        &rsp,
        &Request::ReadExceptionStatus,
        &Response::ReadExceptionStatus { status: 0x6D },
    );
}

#[test]
fn fc08_return_query_data_vector() {
    let (req, rsp) = vector("08/00");
    let data = hex("A5 37");
    let request = Request::Diagnostics(DiagnosticsRequest::ReturnQueryData { data: &data });
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::Diagnostics(DiagnosticsResponse::ReturnQueryData { data: &data }),
    );
}

#[test]
fn fc0b_get_comm_event_counter() {
    let (req, rsp) = vector("0B ");
    check_request(&req, &Request::GetCommEventCounter);
    check_response(
        &rsp,
        &Request::GetCommEventCounter,
        &Response::GetCommEventCounter {
            status: 0xFFFF,
            event_count: 264,
        },
    );
}

#[test]
fn fc0c_get_comm_event_log() {
    let (req, rsp) = vector("0C ");
    check_request(&req, &Request::GetCommEventLog);
    check_response(
        &rsp,
        &Request::GetCommEventLog,
        &Response::GetCommEventLog {
            status: 0x0000,
            event_count: 0x0108,
            message_count: 0x0121,
            events: &[0x20, 0x00],
        },
    );
    // No events at all: byte count 6.
    check_response(
        &hex("0C 06 FF FF 00 01 00 02"),
        &Request::GetCommEventLog,
        &Response::GetCommEventLog {
            status: 0xFFFF,
            event_count: 1,
            message_count: 2,
            events: &[],
        },
    );
    // 64 events, the maximum: byte count 70.
    let events: Vec<u8> = (0..64).collect();
    let mut full = hex("0C 46 00 00 00 03 00 04");
    full.extend_from_slice(&events);
    check_response(
        &full,
        &Request::GetCommEventLog,
        &Response::GetCommEventLog {
            status: 0,
            event_count: 3,
            message_count: 4,
            events: &events,
        },
    );
}

#[test]
fn fc0f_write_multiple_coils() {
    let (req, rsp) = vector("0F ");
    let values = bits("10110011 10");
    let request = Request::WriteMultipleCoils {
        address: 0x13,
        values: Coils::from_bools(&values),
    };
    check_request(&req, &request);
    let Request::WriteMultipleCoils {
        values: decoded, ..
    } = Request::decode(&req).unwrap()
    else {
        panic!("not WriteMultipleCoils");
    };
    assert_eq!(decoded.len(), 10);
    assert!(decoded.iter().eq(values.iter().copied()));
    check_response(
        &rsp,
        &request,
        &Response::WriteMultipleCoils {
            address: 0x13,
            quantity: 10,
        },
    );
}

#[test]
fn fc10_write_multiple_registers() {
    let (req, rsp) = vector("10 ");
    let request = Request::WriteMultipleRegisters {
        address: 1,
        values: Registers::from_words(&[0x000A, 0x0102]),
    };
    check_request(&req, &request);
    let Request::WriteMultipleRegisters { values, .. } = Request::decode(&req).unwrap() else {
        panic!("not WriteMultipleRegisters");
    };
    assert_eq!((values.get(0), values.get(1)), (Some(0x000A), Some(0x0102)));
    check_response(
        &rsp,
        &request,
        &Response::WriteMultipleRegisters {
            address: 1,
            quantity: 2,
        },
    );
}

#[test]
fn fc11_report_server_id() {
    // Not in §12.1: the libmodbus-style answer of §4.13 (id 0xB4, run ON, "LMB").
    check_request(&hex("11"), &Request::ReportServerId);
    let data = hex(r#"B4 FF "LMB3.1""#);
    let rsp = hex(r#"11 08 B4 FF "LMB3.1""#);
    check_response(
        &rsp,
        &Request::ReportServerId,
        &Response::ReportServerId { data: &data },
    );
}

#[test]
fn fc14_read_file_record() {
    let (req, rsp) = vector("14 ");
    let groups = [
        FileReadGroup {
            file_number: 4,
            record_number: 1,
            record_length: 2,
        },
        FileReadGroup {
            file_number: 3,
            record_number: 9,
            record_length: 2,
        },
    ];
    let request = Request::ReadFileRecord {
        groups: FileReadGroups::from_items(&groups),
    };
    check_request(&req, &request);
    let Request::ReadFileRecord { groups: decoded } = Request::decode(&req).unwrap() else {
        panic!("not ReadFileRecord");
    };
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded.iter().collect::<Vec<_>>(), groups.to_vec());

    let records = [
        Registers::from_words(&[0x0DFE, 0x0020]),
        Registers::from_words(&[0x33CD, 0x0040]),
    ];
    check_response(
        &rsp,
        &request,
        &Response::ReadFileRecord {
            records: FileReadResponses::from_items(&records),
        },
    );
    let Response::ReadFileRecord { records: decoded } = Response::decode(&rsp, &request).unwrap()
    else {
        panic!("not ReadFileRecord");
    };
    let decoded: Vec<Vec<u16>> = decoded.iter().map(|r| r.iter().collect()).collect();
    assert_eq!(decoded, vec![vec![0x0DFE, 0x0020], vec![0x33CD, 0x0040]]);
}

#[test]
fn fc15_write_file_record() {
    let (req, rsp) = vector("15 ");
    assert_eq!(req, rsp);
    let records = [FileRecord {
        file_number: 4,
        record_number: 7,
        values: Registers::from_words(&[0x06AF, 0x04BE, 0x100D]),
    }];
    let request = Request::WriteFileRecord {
        records: FileRecords::from_items(&records),
    };
    check_request(&req, &request);
    let Request::WriteFileRecord { records: decoded } = Request::decode(&req).unwrap() else {
        panic!("not WriteFileRecord");
    };
    let decoded: Vec<FileRecord<'_>> = decoded.iter().collect();
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].file_number, 4);
    assert_eq!(decoded[0].record_number, 7);
    assert!(decoded[0].values.iter().eq([0x06AF, 0x04BE, 0x100D]));
    check_response(
        &rsp,
        &request,
        &Response::WriteFileRecord {
            records: FileRecords::from_items(&records),
        },
    );
}

#[test]
fn fc15_write_file_record_two_groups() {
    let records = [
        FileRecord {
            file_number: 1,
            record_number: 0,
            values: Registers::from_words(&[0x1234]),
        },
        FileRecord {
            file_number: 0xFFFF,
            record_number: 9998,
            values: Registers::from_words(&[0xABCD, 0x0001]),
        },
    ];
    let pdu = hex("15 14 06 00 01 00 00 00 01 12 34 06 FF FF 27 0E 00 02 AB CD 00 01");
    let request = Request::WriteFileRecord {
        records: FileRecords::from_items(&records),
    };
    check_request(&pdu, &request);
    check_response(
        &pdu,
        &request,
        &Response::WriteFileRecord {
            records: FileRecords::from_items(&records),
        },
    );
}

#[test]
fn fc16_mask_write_register() {
    let (req, rsp) = vector("16 ");
    assert_eq!(req, rsp);
    let request = Request::MaskWriteRegister {
        address: 4,
        and_mask: 0xF2,
        or_mask: 0x25,
    };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::MaskWriteRegister {
            address: 4,
            and_mask: 0xF2,
            or_mask: 0x25,
        },
    );
}

#[test]
fn fc17_read_write_multiple_registers() {
    let (req, rsp) = vector("17 ");
    let request = Request::ReadWriteMultipleRegisters {
        read_address: 3,
        read_quantity: 6,
        write_address: 0x0E,
        values: Registers::from_words(&[0x00FF, 0x00FF, 0x00FF]),
    };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::ReadWriteMultipleRegisters {
            values: Registers::from_words(&[0x00FE, 0x0ACD, 0x0001, 0x0003, 0x000D, 0x00FF]),
        },
    );
}

#[test]
fn fc18_read_fifo_queue() {
    let (req, rsp) = vector("18 ");
    let request = Request::ReadFifoQueue { address: 0x04DE };
    check_request(&req, &request);
    check_response(
        &rsp,
        &request,
        &Response::ReadFifoQueue {
            values: Registers::from_words(&[0x01B8, 0x1284]),
        },
    );
    // Empty queue: byte count 2, count 0.
    check_response(
        &hex("18 00 02 00 00"),
        &request,
        &Response::ReadFifoQueue {
            values: Registers::from_words(&[]),
        },
    );
    // Full queue: 31 values, byte count 64.
    let values: Vec<u16> = (0..31).map(|i| 0x0100 + i).collect();
    let mut full = hex("18 00 40 00 1F");
    for v in &values {
        full.extend_from_slice(&v.to_be_bytes());
    }
    check_response(
        &full,
        &request,
        &Response::ReadFifoQueue {
            values: Registers::from_words(&values),
        },
    );
}

fn device_id_objects_of(response: &Response<'_>) -> Vec<(u8, Vec<u8>)> {
    let Response::ReadDeviceIdentification(identification) = response else {
        panic!("not ReadDeviceIdentification: {response:?}");
    };
    identification
        .objects
        .iter()
        .map(|object| (object.id, object.value.to_vec()))
        .collect()
}

#[test]
fn fc2b_0e_read_device_identification() {
    let (req, rsp) = vector("2B/0E");
    assert_eq!(req, hex(DEVICE_ID_REQUEST));
    let request = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        object_id: 0,
    };
    check_request(&req, &request);
    let objects = [
        DeviceIdObject {
            id: 0x00,
            value: b"Company identification",
        },
        DeviceIdObject {
            id: 0x01,
            value: b"Product code XX",
        },
        DeviceIdObject {
            id: 0x02,
            value: b"V2.11",
        },
    ];
    let expected = Response::ReadDeviceIdentification(DeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        conformity_level: 0x01,
        more_follows: false,
        next_object_id: 0,
        objects: DeviceIdObjects::from_items(&objects),
    });
    check_response(&rsp, &request, &expected);
    let decoded = Response::decode(&rsp, &request).unwrap();
    assert_eq!(
        device_id_objects_of(&decoded),
        vec![
            (0x00, b"Company identification".to_vec()),
            (0x01, b"Product code XX".to_vec()),
            (0x02, b"V2.11".to_vec()),
        ]
    );
    let Response::ReadDeviceIdentification(identification) = decoded else {
        unreachable!()
    };
    assert_eq!(identification.objects.len(), 3);
    assert_eq!(identification.conformity_level, 0x01);
    assert!(!identification.more_follows);
}

#[test]
fn fc2b_0e_split_read_device_identification() {
    // First transaction: two objects, more follows, continue at object 2.
    let request_1 = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        object_id: 0,
    };
    check_request(&hex(DEVICE_ID_REQUEST), &request_1);
    let objects_1 = [
        DeviceIdObject {
            id: 0x00,
            value: b"Company identification",
        },
        DeviceIdObject {
            id: 0x01,
            value: b"Product code XXXXXXXXXXXXXXXX",
        },
    ];
    assert_eq!(objects_1[1].value.len(), 0x1D);
    let rsp_1 = hex(DEVICE_ID_SPLIT_RESPONSE_1);
    check_response(
        &rsp_1,
        &request_1,
        &Response::ReadDeviceIdentification(DeviceIdentification {
            code: ReadDeviceIdCode::BasicStream,
            conformity_level: 0x01,
            more_follows: true,
            next_object_id: 0x02,
            objects: DeviceIdObjects::from_items(&objects_1),
        }),
    );
    let Response::ReadDeviceIdentification(first) = Response::decode(&rsp_1, &request_1).unwrap()
    else {
        panic!("not ReadDeviceIdentification");
    };
    assert!(first.more_follows);
    assert_eq!(first.next_object_id, 2);
    assert_eq!(first.objects.len(), 2);

    // Second transaction asks from the next object id.
    let request_2 = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        object_id: first.next_object_id,
    };
    check_request(&hex(DEVICE_ID_SPLIT_REQUEST_2), &request_2);
    let objects_2 = [DeviceIdObject {
        id: 0x02,
        value: b"V2.11",
    }];
    let rsp_2 = hex(DEVICE_ID_SPLIT_RESPONSE_2);
    check_response(
        &rsp_2,
        &request_2,
        &Response::ReadDeviceIdentification(DeviceIdentification {
            code: ReadDeviceIdCode::BasicStream,
            conformity_level: 0x01,
            more_follows: false,
            next_object_id: 0,
            objects: DeviceIdObjects::from_items(&objects_2),
        }),
    );
    assert_eq!(
        device_id_objects_of(&Response::decode(&rsp_2, &request_2).unwrap()),
        vec![(0x02, b"V2.11".to_vec())]
    );
}

#[test]
fn fc2b_0e_other_codes_and_individual_access() {
    for (byte, code) in [
        (1, ReadDeviceIdCode::BasicStream),
        (2, ReadDeviceIdCode::RegularStream),
        (3, ReadDeviceIdCode::ExtendedStream),
        (4, ReadDeviceIdCode::Individual),
    ] {
        check_request(
            &[0x2B, 0x0E, byte, 0x81],
            &Request::ReadDeviceIdentification {
                code,
                object_id: 0x81,
            },
        );
    }
    let request = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::Individual,
        object_id: 0x04,
    };
    let objects = [DeviceIdObject {
        id: 0x04,
        value: b"Pump",
    }];
    check_response(
        &hex(r#"2B 0E 04 83 00 00 01 04 04 "Pump""#),
        &request,
        &Response::ReadDeviceIdentification(DeviceIdentification {
            code: ReadDeviceIdCode::Individual,
            conformity_level: 0x83,
            more_follows: false,
            next_object_id: 0,
            objects: DeviceIdObjects::from_items(&objects),
        }),
    );
}

#[test]
fn fc2b_0d_canopen_general_reference_is_opaque() {
    let data = hex("01 02 03");
    let request = Request::CanOpenGeneralReference { data: &data };
    check_request(&hex("2B 0D 01 02 03"), &request);
    check_request(
        &hex("2B 0D"),
        &Request::CanOpenGeneralReference { data: &[] },
    );
    let rsp_data = hex("AA BB");
    check_response(
        &hex("2B 0D AA BB"),
        &request,
        &Response::CanOpenGeneralReference { data: &rsp_data },
    );
    // The response must echo MEI type 13.
    reject_response(
        &hex("2B 0E AA BB"),
        &request,
        DecodeError::EchoMismatch {
            function: FunctionCode::EncapsulatedInterfaceTransport,
        },
    );
}

#[test]
fn exception_vector() {
    let (req, rsp) = vector("Exception");
    let request = Request::ReadCoils {
        address: 0x04A1,
        quantity: 1,
    };
    check_request(&req, &request);
    let expected = Response::Exception(ExceptionResponse {
        function: FunctionCode::ReadCoils,
        code: ExceptionCode::IllegalDataAddress,
    });
    check_response(&rsp, &request, &expected);
    let decoded = Response::decode(&rsp, &request).unwrap();
    assert_eq!(
        decoded.exception_code(),
        Some(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(decoded.function(), FunctionCode::ReadCoils);
}

#[test]
fn exception_responses_for_every_function_and_code() {
    let requests = [
        (hex("01 00 00 00 01"), 0x81),
        (hex("03 00 00 00 01"), 0x83),
        (hex("07"), 0x87),
        (hex("08 00 00"), 0x88),
        (hex("14 07 06 00 01 00 00 00 01"), 0x94),
        (hex("18 00 00"), 0x98),
        (hex("2B 0E 01 00"), 0xAB),
        (hex("41 01 02"), 0xC1),
    ];
    for (req, byte) in &requests {
        let request = Request::decode(req).unwrap();
        for code in [1u8, 2, 3, 4, 5, 6, 7, 8, 0x09, 0x0A, 0x0B, 0x00, 0xFF] {
            let rsp = [*byte, code];
            let expected = Response::Exception(ExceptionResponse {
                function: request.function(),
                code: ExceptionCode::from(code),
            });
            check_response(&rsp, &request, &expected);
            assert_eq!(
                Response::decode(&rsp, &request).unwrap().exception_code(),
                Some(ExceptionCode::from(code))
            );
        }
    }
}

#[test]
fn user_defined_function_code_is_custom() {
    let data = hex("01 02 03");
    let request = Request::Custom {
        function: FunctionCode::Other(0x41),
        data: &data,
    };
    check_request(&hex("41 01 02 03"), &request);
    let rsp_data = hex("09");
    check_response(
        &hex("41 09"),
        &request,
        &Response::Custom {
            function: FunctionCode::Other(0x41),
            data: &rsp_data,
        },
    );
    // Reserved and legacy codes too (9, 10, 13, 14, 0x7F).
    for code in [0x09u8, 0x0A, 0x0D, 0x0E, 0x64, 0x7F] {
        let pdu = [code];
        let decoded = Request::decode(&pdu).unwrap();
        assert_eq!(
            decoded,
            Request::Custom {
                function: FunctionCode::Other(code),
                data: &[],
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// FC 08: every defined sub-function, request and response
// ---------------------------------------------------------------------------------------------

#[test]
fn fc08_every_defined_sub_function() {
    type Case = (
        &'static str,
        DiagnosticsRequest<'static>,
        &'static str,
        Option<DiagnosticsResponse<'static>>,
    );
    let cases: Vec<Case> = vec![
        (
            "08 00 00 12 34 56 78",
            DiagnosticsRequest::ReturnQueryData {
                data: &[0x12, 0x34, 0x56, 0x78],
            },
            "08 00 00 12 34 56 78",
            Some(DiagnosticsResponse::ReturnQueryData {
                data: &[0x12, 0x34, 0x56, 0x78],
            }),
        ),
        (
            "08 00 00",
            DiagnosticsRequest::ReturnQueryData { data: &[] },
            "08 00 00",
            Some(DiagnosticsResponse::ReturnQueryData { data: &[] }),
        ),
        (
            "08 00 01 00 00",
            DiagnosticsRequest::RestartCommunicationsOption {
                clear_event_log: false,
            },
            "08 00 01 00 00",
            Some(DiagnosticsResponse::RestartCommunicationsOption {
                clear_event_log: false,
            }),
        ),
        (
            "08 00 01 FF 00",
            DiagnosticsRequest::RestartCommunicationsOption {
                clear_event_log: true,
            },
            "08 00 01 FF 00",
            Some(DiagnosticsResponse::RestartCommunicationsOption {
                clear_event_log: true,
            }),
        ),
        (
            "08 00 02 00 00",
            DiagnosticsRequest::ReturnDiagnosticRegister,
            "08 00 02 80 01",
            Some(DiagnosticsResponse::ReturnDiagnosticRegister { value: 0x8001 }),
        ),
        (
            "08 00 03 0D 00",
            DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter: b'\r' },
            "08 00 03 0D 00",
            Some(DiagnosticsResponse::ChangeAsciiInputDelimiter { delimiter: b'\r' }),
        ),
        (
            "08 00 04 00 00",
            DiagnosticsRequest::ForceListenOnlyMode,
            "08 00 04 00 00",
            None,
        ),
        (
            "08 00 0A 00 00",
            DiagnosticsRequest::ClearCountersAndDiagnosticRegister,
            "08 00 0A 00 00",
            Some(DiagnosticsResponse::ClearCountersAndDiagnosticRegister),
        ),
        (
            "08 00 14 00 00",
            DiagnosticsRequest::ClearOverrunCounterAndFlag,
            "08 00 14 00 00",
            Some(DiagnosticsResponse::ClearOverrunCounterAndFlag),
        ),
    ];
    for (req, request, rsp, response) in cases {
        let req = hex(req);
        let rsp = hex(rsp);
        let request = Request::Diagnostics(request);
        check_request(&req, &request);
        if let Some(response) = response {
            assert!(request.expects_response());
            check_response(&rsp, &request, &Response::Diagnostics(response));
        } else {
            assert!(!request.expects_response());
            reject_response(
                &rsp,
                &request,
                DecodeError::NoResponseExpected {
                    function: FunctionCode::Diagnostics,
                },
            );
        }
    }
}

#[test]
fn fc08_every_counter_sub_function() {
    let expected_subs = [0x0Bu16, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12];
    assert_eq!(DiagnosticCounter::ALL.len(), expected_subs.len());
    for (counter, sub) in DiagnosticCounter::ALL.into_iter().zip(expected_subs) {
        assert_eq!(counter.sub_function(), sub);
        assert_eq!(DiagnosticCounter::from_sub_function(sub), Some(counter));
        let [hi, lo] = sub.to_be_bytes();
        let request = Request::Diagnostics(DiagnosticsRequest::ReturnCounter(counter));
        check_request(&[0x08, hi, lo, 0x00, 0x00], &request);
        let value = 0x0100 + sub;
        let [vh, vl] = value.to_be_bytes();
        check_response(
            &[0x08, hi, lo, vh, vl],
            &request,
            &Response::Diagnostics(DiagnosticsResponse::ReturnCounter { counter, value }),
        );
        // A response for another counter's sub-function is not an echo.
        let [oh, ol] = (sub ^ 0x01).to_be_bytes();
        reject_response(
            &[0x08, oh, ol, vh, vl],
            &request,
            DecodeError::EchoMismatch {
                function: FunctionCode::Diagnostics,
            },
        );
        // Non-zero request data is a value error (§12.3 `08 00 0B 12 34`).
        reject_request(
            &[0x08, hi, lo, 0x12, 0x34],
            DecodeError::InvalidDiagnosticData {
                sub_function: sub,
                data: 0x1234,
            },
            3,
        );
    }
}

#[test]
fn fc08_request_data_rules() {
    // Sub-functions whose data must be 0x0000.
    for sub in [0x02u8, 0x04, 0x0A, 0x14] {
        reject_request(
            &[0x08, 0x00, sub, 0x00, 0x01],
            DecodeError::InvalidDiagnosticData {
                sub_function: u16::from(sub),
                data: 0x0001,
            },
            3,
        );
    }
    // 08/01 data is 0x0000 or 0xFF00 only.
    reject_request(
        &hex("08 00 01 00 FF"),
        DecodeError::InvalidDiagnosticData {
            sub_function: 1,
            data: 0x00FF,
        },
        3,
    );
    // 08/03 data is `CHAR 00`.
    reject_request(
        &hex("08 00 03 0D 0A"),
        DecodeError::InvalidDiagnosticData {
            sub_function: 3,
            data: 0x0D0A,
        },
        3,
    );
    // Fixed-data sub-functions take exactly two data bytes.
    reject_request(
        &hex("08 00 0A 00 00 00"),
        DecodeError::TrailingBytes {
            function: FunctionCode::Diagnostics,
            expected: 5,
            actual: 6,
        },
        3,
    );
    reject_request(
        &hex("08 00 0A 00"),
        DecodeError::Truncated {
            function: FunctionCode::Diagnostics,
            needed: 5,
            actual: 4,
        },
        3,
    );
    // Only the sub-function: truncated.
    reject_request_code(&hex("08 00"), 3);
    reject_request_code(&hex("08"), 3);
}

#[test]
fn fc08_reserved_sub_functions_are_illegal_function() {
    for sub in [
        0x05u16, 0x06, 0x07, 0x08, 0x09, 0x13, 0x15, 0x16, 0x100, 0xFFFF,
    ] {
        let [hi, lo] = sub.to_be_bytes();
        reject_request(
            &[0x08, hi, lo, 0x00, 0x00],
            DecodeError::UnsupportedSubFunction {
                function: FunctionCode::Diagnostics,
                sub_function: sub,
            },
            1,
        );
        // The sub-function is judged before its data (01 beats 03).
        reject_request_code(&[0x08, hi, lo, 0x12, 0x34], 1);
        reject_request_code(&[0x08, hi, lo], 1);
    }
}

#[test]
fn fc08_response_echo_mismatches() {
    let diag = |d| Request::Diagnostics(d);
    let mismatch = DecodeError::EchoMismatch {
        function: FunctionCode::Diagnostics,
    };
    let data = hex("A5 37");
    let cases = [
        (
            diag(DiagnosticsRequest::ReturnQueryData { data: &data }),
            "08 00 00 A5 38",
        ),
        (
            diag(DiagnosticsRequest::ReturnQueryData { data: &data }),
            "08 00 00 A5",
        ),
        (
            diag(DiagnosticsRequest::ReturnQueryData { data: &data }),
            "08 00 00 A5 37 00",
        ),
        (
            diag(DiagnosticsRequest::ReturnQueryData { data: &data }),
            "08 00 01 A5 37",
        ),
        (
            diag(DiagnosticsRequest::RestartCommunicationsOption {
                clear_event_log: false,
            }),
            "08 00 01 FF 00",
        ),
        (
            diag(DiagnosticsRequest::ChangeAsciiInputDelimiter { delimiter: b'\r' }),
            "08 00 03 0A 00",
        ),
        (
            diag(DiagnosticsRequest::ClearCountersAndDiagnosticRegister),
            "08 00 0A 00 01",
        ),
        (
            diag(DiagnosticsRequest::ClearOverrunCounterAndFlag),
            "08 00 14 01 00",
        ),
        (
            diag(DiagnosticsRequest::ReturnDiagnosticRegister),
            "08 00 0B 00 00",
        ),
    ];
    for (request, rsp) in &cases {
        reject_response(&hex(rsp), request, mismatch);
    }
}

// ---------------------------------------------------------------------------------------------
// §12.3 negative vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn section_12_3_negative_vectors() {
    let rc = FunctionCode::ReadCoils;
    reject_request(
        &hex("01 00 00 07 D1"),
        DecodeError::QuantityOutOfRange {
            function: rc,
            quantity: 2001,
            min: 1,
            max: 2000,
        },
        3,
    );
    reject_request(
        &hex("01 FF FF 00 02"),
        DecodeError::AddressOverflow {
            function: rc,
            address: 0xFFFF,
            quantity: 2,
        },
        2,
    );
    reject_request(
        &hex("05 00 00 00 01"),
        DecodeError::InvalidCoilValue { value: 0x0001 },
        3,
    );
    reject_request(
        &hex("0F 00 00 00 0A 01 FF"),
        DecodeError::ByteCountMismatch {
            function: FunctionCode::WriteMultipleCoils,
            byte_count: 1,
            expected: 2,
        },
        3,
    );
    reject_request(
        &hex("10 00 00 00 02 03 00 01 00"),
        DecodeError::ByteCountMismatch {
            function: FunctionCode::WriteMultipleRegisters,
            byte_count: 3,
            expected: 4,
        },
        3,
    );
    reject_request(
        &hex("17 00 00 00 7E 00 00 00 01 02 00 00"),
        DecodeError::QuantityOutOfRange {
            function: FunctionCode::ReadWriteMultipleRegisters,
            quantity: 126,
            min: 1,
            max: 125,
        },
        3,
    );
    reject_request(
        &hex("2B 0E 05 00"),
        DecodeError::InvalidDeviceIdCode { code: 5 },
        3,
    );
    reject_request(
        &hex("2B 0E 00 00"),
        DecodeError::InvalidDeviceIdCode { code: 0 },
        3,
    );
    // MEI type 12 (and every reserved MEI type) is an illegal function.
    for mei in [0x00u8, 0x0C, 0x0F, 0xFF] {
        reject_request(
            &[0x2B, mei, 0x00, 0x00],
            DecodeError::UnsupportedSubFunction {
                function: FunctionCode::EncapsulatedInterfaceTransport,
                sub_function: u16::from(mei),
            },
            1,
        );
    }
    reject_request(
        &hex("2B 0C"),
        DecodeError::UnsupportedSubFunction {
            function: FunctionCode::EncapsulatedInterfaceTransport,
            sub_function: 0x0C,
        },
        1,
    );
    reject_request(
        &hex("08 00 05 00 00"),
        DecodeError::UnsupportedSubFunction {
            function: FunctionCode::Diagnostics,
            sub_function: 5,
        },
        1,
    );
    reject_request(
        &hex("08 00 0B 12 34"),
        DecodeError::InvalidDiagnosticData {
            sub_function: 0x0B,
            data: 0x1234,
        },
        3,
    );
}

#[test]
fn device_id_unknown_objects_are_server_data_dependent() {
    // `2B 0E 04 50` (→ 02) and `2B 0E 01 50` (→ restart at 0) depend on the server's objects:
    // at PDU level both are well-formed requests.
    assert_eq!(
        Request::decode(&hex("2B 0E 04 50")).unwrap(),
        Request::ReadDeviceIdentification {
            code: ReadDeviceIdCode::Individual,
            object_id: 0x50,
        }
    );
    assert_eq!(
        Request::decode(&hex("2B 0E 01 50")).unwrap(),
        Request::ReadDeviceIdentification {
            code: ReadDeviceIdCode::BasicStream,
            object_id: 0x50,
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Truncation and trailing bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn every_proper_prefix_of_a_vector_request_is_truncated() {
    let mut requests: Vec<Vec<u8>> = SPEC_RTU_VECTORS
        .iter()
        .filter(|v| !v.name.starts_with("08/00")) // a shorter loop-back is still valid
        .map(support::RtuVector::request_pdu)
        .collect();
    requests.push(hex("11"));
    requests.push(hex("08 00 01 FF 00"));
    requests.push(hex(
        "15 14 06 00 01 00 00 00 01 12 34 06 FF FF 27 0E 00 02 AB CD 00 01",
    ));
    for req in &requests {
        assert!(Request::decode(req).is_ok());
        let err = Request::decode(&[]).unwrap_err();
        assert_eq!(err, DecodeError::Empty);
        for len in 1..req.len() {
            let prefix = &req[..len];
            let err = Request::decode(prefix).expect_err(&format!("prefix {prefix:02X?}"));
            let DecodeError::Truncated { needed, actual, .. } = err else {
                panic!("prefix {prefix:02X?}: expected Truncated, got {err:?}");
            };
            assert_eq!(actual, len, "prefix {prefix:02X?}");
            assert!(
                needed > actual && needed <= req.len(),
                "prefix {prefix:02X?}: {err:?}"
            );
            assert_eq!(err.exception_code(), ExceptionCode::IllegalDataValue);
        }
    }
}

#[test]
fn every_proper_prefix_of_a_vector_response_is_rejected() {
    for v in SPEC_RTU_VECTORS {
        let req = v.request_pdu();
        let rsp = v.response_pdu();
        let request = Request::decode(&req).unwrap();
        assert_eq!(Response::decode(&[], &request), Err(DecodeError::Empty));
        for len in 1..rsp.len() {
            let prefix = &rsp[..len];
            let err = Response::decode(prefix, &request)
                .expect_err(&format!("{}: prefix {prefix:02X?}", v.name));
            if v.name.starts_with("08/00") && len >= 3 {
                // A shorter loop-back is not an echo of the request.
                assert_eq!(
                    err,
                    DecodeError::EchoMismatch {
                        function: FunctionCode::Diagnostics
                    }
                );
                continue;
            }
            let DecodeError::Truncated { needed, actual, .. } = err else {
                panic!(
                    "{}: prefix {prefix:02X?}: expected Truncated, got {err:?}",
                    v.name
                );
            };
            assert_eq!(actual, len, "{}: prefix {prefix:02X?}", v.name);
            assert!(needed > actual, "{}: prefix {prefix:02X?}: {err:?}", v.name);
        }
    }
}

#[test]
fn a_trailing_byte_after_a_vector_is_rejected() {
    for v in SPEC_RTU_VECTORS {
        let req = v.request_pdu();
        let rsp = v.response_pdu();
        let request = Request::decode(&req).unwrap();
        let mut long_req = req.clone();
        long_req.push(0x00);
        let mut long_rsp = rsp.clone();
        long_rsp.push(0x00);
        if v.name.starts_with("08/00") {
            // Loop-back data has no fixed length: one more byte is another valid request, and
            // then the response is no longer its echo.
            assert!(Request::decode(&long_req).is_ok());
            assert_eq!(
                Response::decode(&long_rsp, &request),
                Err(DecodeError::EchoMismatch {
                    function: FunctionCode::Diagnostics
                })
            );
            continue;
        }
        let err = Request::decode(&long_req).expect_err(v.name);
        assert_eq!(
            err,
            DecodeError::TrailingBytes {
                function: request.function(),
                expected: req.len(),
                actual: req.len() + 1,
            },
            "{}",
            v.name
        );
        assert_eq!(err.exception_code(), ExceptionCode::IllegalDataValue);
        let err = Response::decode(&long_rsp, &request).expect_err(v.name);
        assert_eq!(
            err,
            DecodeError::TrailingBytes {
                function: request.function(),
                expected: rsp.len(),
                actual: rsp.len() + 1,
            },
            "{}",
            v.name
        );
    }
}

#[test]
fn exception_response_must_be_two_bytes() {
    let request = Request::ReadCoils {
        address: 0,
        quantity: 1,
    };
    reject_response(
        &hex("81 02 00"),
        &request,
        DecodeError::TrailingBytes {
            function: FunctionCode::ReadCoils,
            expected: 2,
            actual: 3,
        },
    );
    reject_response(
        &hex("81"),
        &request,
        DecodeError::Truncated {
            function: FunctionCode::ReadCoils,
            needed: 2,
            actual: 1,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Function codes
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_request_function_codes_are_illegal_function() {
    for code in [0x00u8, 0x80, 0x81, 0x83, 0xAB, 0xFF] {
        reject_request(&[code], DecodeError::InvalidFunctionCode { code }, 1);
        reject_request(
            &[code, 0x00, 0x00, 0x00, 0x01],
            DecodeError::InvalidFunctionCode { code },
            1,
        );
    }
    assert_eq!(Request::decode(&[]), Err(DecodeError::Empty));
    // Encoding refuses them too.
    for code in [0x00u8, 0x80, 0xFF] {
        let request = Request::Custom {
            function: FunctionCode::from(code),
            data: &[],
        };
        assert_eq!(
            request.validate(),
            Err(DecodeError::InvalidFunctionCode { code })
        );
        let mut buf = [0u8; 8];
        assert_eq!(
            request.encode(&mut buf),
            Err(EncodeError::Invalid(DecodeError::InvalidFunctionCode {
                code
            }))
        );
    }
}

#[test]
fn response_with_a_foreign_function_code_is_rejected() {
    let request = Request::ReadHoldingRegisters {
        address: 0,
        quantity: 1,
    };
    for actual in [0x04u8, 0x84, 0x00, 0x80, 0xFF, 0x43] {
        reject_response(
            &[actual, 0x02, 0x00, 0x0A],
            &request,
            DecodeError::UnexpectedFunction {
                expected: FunctionCode::ReadHoldingRegisters,
                actual,
            },
        );
    }
    reject_response(
        &hex("84 02"),
        &request,
        DecodeError::UnexpectedFunction {
            expected: FunctionCode::ReadHoldingRegisters,
            actual: 0x84,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Quantity limits: 0 and max+1 rejected (03), 1 and max accepted
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn quantity_error(function: FunctionCode, quantity: usize, max: usize) -> DecodeError {
    DecodeError::QuantityOutOfRange {
        function,
        quantity,
        min: 1,
        max,
    }
}

#[test]
fn read_quantity_limits() {
    for (fc, function, max) in [
        (0x01u8, FunctionCode::ReadCoils, 2000u16),
        (0x02, FunctionCode::ReadDiscreteInputs, 2000),
        (0x03, FunctionCode::ReadHoldingRegisters, 125),
        (0x04, FunctionCode::ReadInputRegisters, 125),
    ] {
        for bad in [0u16, max + 1, 0xFFFF] {
            let [qh, ql] = bad.to_be_bytes();
            reject_request(
                &[fc, 0x00, 0x00, qh, ql],
                quantity_error(function, usize::from(bad), usize::from(max)),
                3,
            );
        }
        for good in [1u16, max] {
            let [qh, ql] = good.to_be_bytes();
            let pdu = [fc, 0x00, 0x00, qh, ql];
            let decoded = Request::decode(&pdu).unwrap();
            assert_eq!(decoded.function(), function);
            assert_eq!(encode_request(&decoded), [fc, 0x00, 0x00, qh, ql]);
        }
        // The largest range that ends exactly at 0xFFFF is fine; one more wraps (02).
        let start = 0x1_0000 - u32::from(max);
        let [ah, al] = u16::try_from(start).unwrap().to_be_bytes();
        let [qh, ql] = max.to_be_bytes();
        assert!(Request::decode(&[fc, ah, al, qh, ql]).is_ok());
        let [ah, al] = u16::try_from(start + 1).unwrap().to_be_bytes();
        reject_request(
            &[fc, ah, al, qh, ql],
            DecodeError::AddressOverflow {
                function,
                address: u16::try_from(start + 1).unwrap(),
                quantity: usize::from(max),
            },
            2,
        );
    }
}

#[test]
fn read_quantity_limits_on_encode() {
    for bad in [0u16, 2001] {
        let request = Request::ReadCoils {
            address: 0,
            quantity: bad,
        };
        let mut buf = [0u8; 16];
        assert_eq!(
            request.encode(&mut buf),
            Err(EncodeError::Invalid(quantity_error(
                FunctionCode::ReadCoils,
                usize::from(bad),
                2000
            )))
        );
    }
    let request = Request::ReadHoldingRegisters {
        address: 0xFFFF,
        quantity: 2,
    };
    assert_eq!(
        request.validate(),
        Err(DecodeError::AddressOverflow {
            function: FunctionCode::ReadHoldingRegisters,
            address: 0xFFFF,
            quantity: 2,
        })
    );
    let mut buf = [0u8; 4];
    assert_eq!(
        Request::ReadHoldingRegisters {
            address: 0,
            quantity: 1
        }
        .encode(&mut buf),
        Err(EncodeError::BufferTooSmall {
            required: 5,
            available: 4
        })
    );
}

fn fc0f(address: u16, quantity: u16, byte_count: u8, payload_len: usize) -> Vec<u8> {
    let mut out = vec![0x0F];
    out.extend_from_slice(&address.to_be_bytes());
    out.extend_from_slice(&quantity.to_be_bytes());
    out.push(byte_count);
    out.extend(std::iter::repeat_n(0x55, payload_len));
    out
}

#[test]
fn fc0f_quantity_and_byte_count_limits() {
    let f = FunctionCode::WriteMultipleCoils;
    reject_request(&fc0f(0, 0, 0, 0), quantity_error(f, 0, 1968), 3);
    // 1969 coils with a consistent byte count (247) still fits a 253-byte PDU: the quantity
    // rule is what rejects it.
    reject_request(&fc0f(0, 1969, 247, 247), quantity_error(f, 1969, 1968), 3);
    // 1968 coils = 246 bytes: the largest request, PDU 252.
    let max = fc0f(0, 1968, 246, 246);
    assert_eq!(max.len(), 252);
    let decoded = Request::decode(&max).unwrap();
    let Request::WriteMultipleCoils { values, .. } = decoded else {
        panic!("not WriteMultipleCoils");
    };
    assert_eq!(values.len(), 1968);
    assert_eq!(encode_request(&decoded), max);
    // Byte count disagreeing with the quantity, either way.
    for (quantity, byte_count) in [(10u16, 1u8), (10, 3), (8, 2), (9, 1), (1, 0)] {
        reject_request(
            &fc0f(0, quantity, byte_count, usize::from(byte_count)),
            DecodeError::ByteCountMismatch {
                function: f,
                byte_count: usize::from(byte_count),
                expected: usize::from(quantity).div_ceil(8),
            },
            3,
        );
    }
    // Byte count right but the bytes present disagree.
    reject_request(
        &fc0f(0, 10, 2, 1),
        DecodeError::Truncated {
            function: f,
            needed: 8,
            actual: 7,
        },
        3,
    );
    reject_request(
        &fc0f(0, 10, 2, 3),
        DecodeError::TrailingBytes {
            function: f,
            expected: 8,
            actual: 9,
        },
        3,
    );
    // Encoding an empty coil list is refused.
    let empty = Request::WriteMultipleCoils {
        address: 0,
        values: Coils::from_bools(&[]),
    };
    assert_eq!(empty.validate(), Err(quantity_error(f, 0, 1968)));
    let too_many = vec![true; 1969];
    let request = Request::WriteMultipleCoils {
        address: 0,
        values: Coils::from_bools(&too_many),
    };
    assert_eq!(request.validate(), Err(quantity_error(f, 1969, 1968)));
}

fn fc10(quantity: u16, byte_count: u8, payload_len: usize) -> Vec<u8> {
    let mut out = vec![0x10, 0x00, 0x00];
    out.extend_from_slice(&quantity.to_be_bytes());
    out.push(byte_count);
    out.extend(std::iter::repeat_n(0x33, payload_len));
    out
}

#[test]
fn fc10_quantity_and_byte_count_limits() {
    let f = FunctionCode::WriteMultipleRegisters;
    reject_request(&fc10(0, 0, 0), quantity_error(f, 0, 123), 3);
    reject_request(&fc10(124, 248, 0), quantity_error(f, 124, 123), 3);
    let max = fc10(123, 246, 246);
    assert_eq!(max.len(), 252);
    let decoded = Request::decode(&max).unwrap();
    assert_eq!(encode_request(&decoded), max);
    for (quantity, byte_count) in [(2u16, 3u8), (2, 5), (1, 0), (123, 0)] {
        reject_request(
            &fc10(quantity, byte_count, usize::from(byte_count)),
            DecodeError::ByteCountMismatch {
                function: f,
                byte_count: usize::from(byte_count),
                expected: usize::from(quantity) * 2,
            },
            3,
        );
    }
    let words = vec![0u16; 124];
    let request = Request::WriteMultipleRegisters {
        address: 0,
        values: Registers::from_words(&words),
    };
    assert_eq!(request.validate(), Err(quantity_error(f, 124, 123)));
    // Range ends at 0xFFFF: fine; one further: address error.
    assert!(Request::decode(&hex("10 FF FE 00 02 04 00 01 00 02")).is_ok());
    reject_request(
        &hex("10 FF FF 00 02 04 00 01 00 02"),
        DecodeError::AddressOverflow {
            function: f,
            address: 0xFFFF,
            quantity: 2,
        },
        2,
    );
}

fn fc17(read_quantity: u16, write_quantity: u16, byte_count: u8, payload_len: usize) -> Vec<u8> {
    let mut out = vec![0x17, 0x00, 0x00];
    out.extend_from_slice(&read_quantity.to_be_bytes());
    out.extend_from_slice(&[0x00, 0x10]);
    out.extend_from_slice(&write_quantity.to_be_bytes());
    out.push(byte_count);
    out.extend(std::iter::repeat_n(0x11, payload_len));
    out
}

#[test]
fn fc17_quantity_and_byte_count_limits() {
    let f = FunctionCode::ReadWriteMultipleRegisters;
    reject_request(&fc17(0, 1, 2, 2), quantity_error(f, 0, 125), 3);
    reject_request(&fc17(126, 1, 2, 2), quantity_error(f, 126, 125), 3);
    reject_request(&fc17(1, 0, 0, 0), quantity_error(f, 0, 121), 3);
    reject_request(&fc17(1, 122, 244, 0), quantity_error(f, 122, 121), 3);
    let max = fc17(125, 121, 242, 242);
    assert_eq!(max.len(), 252);
    let decoded = Request::decode(&max).unwrap();
    assert_eq!(encode_request(&decoded), max);
    reject_request(
        &fc17(1, 2, 3, 3),
        DecodeError::ByteCountMismatch {
            function: f,
            byte_count: 3,
            expected: 4,
        },
        3,
    );
    // Either range past 0xFFFF is an address error.
    reject_request_code(&hex("17 FF FF 00 02 00 00 00 01 02 00 00"), 2);
    reject_request_code(&hex("17 00 00 00 02 FF FF 00 02 04 00 00 00 00"), 2);
}

#[test]
fn coil_values_other_than_on_and_off_are_rejected() {
    for value in [0x0001u16, 0x00FF, 0xFFFF, 0xFF01, 0x0100] {
        let [vh, vl] = value.to_be_bytes();
        reject_request(
            &[0x05, 0x00, 0x10, vh, vl],
            DecodeError::InvalidCoilValue { value },
            3,
        );
    }
    // In a response too.
    let request = Request::WriteSingleCoil {
        address: 0x10,
        value: true,
    };
    reject_response(
        &hex("05 00 10 00 01"),
        &request,
        DecodeError::InvalidCoilValue { value: 1 },
    );
}

// ---------------------------------------------------------------------------------------------
// FC 20 / 21 file records
// ---------------------------------------------------------------------------------------------

fn group(reference_type: u8, file: u16, record: u16, length: u16) -> Vec<u8> {
    let mut out = vec![reference_type];
    out.extend_from_slice(&file.to_be_bytes());
    out.extend_from_slice(&record.to_be_bytes());
    out.extend_from_slice(&length.to_be_bytes());
    out
}

fn fc14(groups: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = groups.concat();
    let mut out = vec![0x14, u8::try_from(body.len()).unwrap()];
    out.extend_from_slice(&body);
    out
}

#[test]
fn fc14_request_rules() {
    let f = FunctionCode::ReadFileRecord;
    // Byte count not a multiple of 7 → 03.
    let mut bad = fc14(&[group(6, 1, 0, 1)]);
    bad.push(0x00);
    bad[1] = 8;
    reject_request(
        &bad,
        DecodeError::ByteCountMismatch {
            function: f,
            byte_count: 8,
            expected: 7,
        },
        3,
    );
    reject_request_code(&hex("14 00"), 3);
    reject_request_code(&hex("14 06 06 00 01 00 00 00"), 3);
    // 36 groups (byte count 252) is over the 0xF5 maximum.
    let too_many: Vec<Vec<u8>> = (0..36).map(|_| group(6, 1, 0, 1)).collect();
    let too_many = fc14(&too_many);
    assert_eq!(too_many[1], 252);
    reject_request_code(&too_many, 3);
    // Reference type 5 → 02 (address rule).
    reject_request(
        &fc14(&[group(5, 1, 0, 1)]),
        DecodeError::InvalidReferenceType { reference_type: 5 },
        2,
    );
    reject_request_code(&fc14(&[group(6, 1, 0, 1), group(0, 1, 0, 1)]), 2);
    // File number 0 → 02.
    reject_request(
        &fc14(&[group(6, 0, 0, 1)]),
        DecodeError::FileRecordOutOfRange {
            file_number: 0,
            record_number: 0,
            record_length: 1,
        },
        2,
    );
    // Record 10000 → 02; record 9999 length 2 runs past the file → 02; 9999 length 1 is fine.
    reject_request(
        &fc14(&[group(6, 1, 10_000, 1)]),
        DecodeError::FileRecordOutOfRange {
            file_number: 1,
            record_number: 10_000,
            record_length: 1,
        },
        2,
    );
    reject_request_code(&fc14(&[group(6, 1, 9999, 2)]), 2);
    let last = fc14(&[group(6, 0xFFFF, 9999, 1)]);
    let decoded = Request::decode(&last).unwrap();
    assert_eq!(encode_request(&decoded), last);
    // Record length 0 → 03.
    reject_request(&fc14(&[group(6, 1, 0, 0)]), quantity_error(f, 0, 125), 3);
    // The response would not fit one PDU → 03.
    let err = reject_request_code(&fc14(&[group(6, 1, 0, 100), group(6, 2, 0, 100)]), 3);
    assert!(
        matches!(err, DecodeError::ResponseTooLong { .. }),
        "{err:?}"
    );
    // The largest single group: 2 + 2 + 2·124 = 252.
    assert!(Request::decode(&fc14(&[group(6, 1, 0, 124)])).is_ok());
    // 35 groups: the maximum count.
    let many: Vec<Vec<u8>> = (0..35).map(|i| group(6, i + 1, 0, 1)).collect();
    let many = fc14(&many);
    let decoded = Request::decode(&many).unwrap();
    let Request::ReadFileRecord { groups } = decoded else {
        panic!("not ReadFileRecord")
    };
    assert_eq!(groups.len(), 35);
    assert_eq!(encode_request(&decoded), many);
    // Byte count disagreeing with the bytes present.
    let mut short = fc14(&[group(6, 1, 0, 1)]);
    short.pop();
    short[1] = 7;
    reject_request_code(&short, 3);
}

#[test]
fn fc14_response_rules() {
    let groups = [FileReadGroup {
        file_number: 4,
        record_number: 1,
        record_length: 2,
    }];
    let request = Request::ReadFileRecord {
        groups: FileReadGroups::from_items(&groups),
    };
    let f = FunctionCode::ReadFileRecord;
    // Good.
    let records = [Registers::from_words(&[0x0DFE, 0x0020])];
    check_response(
        &hex("14 06 05 06 0D FE 00 20"),
        &request,
        &Response::ReadFileRecord {
            records: FileReadResponses::from_items(&records),
        },
    );
    // Sub-response length not 1 + 2·N.
    reject_response(
        &hex("14 06 07 06 0D FE 00 20"),
        &request,
        DecodeError::ByteCountMismatch {
            function: f,
            byte_count: 7,
            expected: 5,
        },
    );
    // Wrong reference type.
    reject_response(
        &hex("14 06 05 05 0D FE 00 20"),
        &request,
        DecodeError::InvalidReferenceType { reference_type: 5 },
    );
    // Extra sub-response.
    assert!(matches!(
        Response::decode(&hex("14 0A 05 06 0D FE 00 20 03 06 00 01"), &request),
        Err(DecodeError::TrailingBytes { .. })
    ));
    // Outer byte count disagreeing with the bytes present.
    assert!(Response::decode(&hex("14 07 05 06 0D FE 00 20"), &request).is_err());
}

fn fc15(groups: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = groups.concat();
    let mut out = vec![0x15, u8::try_from(body.len()).unwrap()];
    out.extend_from_slice(&body);
    out
}

fn write_group(reference_type: u8, file: u16, record: u16, values: &[u16]) -> Vec<u8> {
    let mut out = group(
        reference_type,
        file,
        record,
        u16::try_from(values.len()).unwrap(),
    );
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

#[test]
fn fc15_request_lengths() {
    let f = FunctionCode::WriteFileRecord;
    // Request data length below 9 → 03.
    reject_request(
        &hex("15 08 06 00 01 00 00 00 00 00"),
        DecodeError::ByteCountMismatch {
            function: f,
            byte_count: 8,
            expected: 9,
        },
        3,
    );
    reject_request_code(&hex("15 00"), 3);
    // Above 0xFB → 03.
    reject_request_code(&hex("15 FC"), 3);
    // 9 bytes: one group, one register, the minimum.
    let min = fc15(&[write_group(6, 1, 0, &[0xBEEF])]);
    assert_eq!(min[1], 9);
    let decoded = Request::decode(&min).unwrap();
    assert_eq!(encode_request(&decoded), min);
    // 251 bytes: one group of 122 registers, PDU 253.
    let words: Vec<u16> = (0..122).collect();
    let max = fc15(&[write_group(6, 1, 0, &words)]);
    assert_eq!((max[1], max.len()), (251, 253));
    let decoded = Request::decode(&max).unwrap();
    assert_eq!(encode_request(&decoded), max);
    // Byte count disagreeing with the bytes present.
    let mut short = min.clone();
    short.pop();
    reject_request_code(&short, 3);
    let mut long = min.clone();
    long.push(0);
    reject_request_code(&long, 3);
    // A group's record length running past the request data → 03.
    let mut overrun = fc15(&[write_group(6, 1, 0, &[1, 2])]);
    overrun[8] = 3; // record length 3, only two registers present
    let err = reject_request_code(&overrun, 3);
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err:?}");
    // A group of zero records → 03.
    let mut zero = fc15(&[write_group(6, 1, 0, &[]), write_group(6, 1, 0, &[1])]);
    zero[1] = 7 + 9;
    reject_request_code(&zero, 3);
    // Reference type, file number and record range → 02.
    reject_request(
        &fc15(&[write_group(5, 1, 0, &[1])]),
        DecodeError::InvalidReferenceType { reference_type: 5 },
        2,
    );
    reject_request(
        &fc15(&[write_group(6, 0, 0, &[1])]),
        DecodeError::FileRecordOutOfRange {
            file_number: 0,
            record_number: 0,
            record_length: 1,
        },
        2,
    );
    reject_request_code(&fc15(&[write_group(6, 1, 10_000, &[1])]), 2);
    reject_request_code(&fc15(&[write_group(6, 1, 9_999, &[1, 2])]), 2);
}

#[test]
fn fc15_response_echo_mismatch() {
    let req = hex("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D");
    let request = Request::decode(&req).unwrap();
    let mismatch = DecodeError::EchoMismatch {
        function: FunctionCode::WriteFileRecord,
    };
    // Any changed field of the group is not an echo.
    for index in [3usize, 5, 9, 14] {
        let mut rsp = req.clone();
        rsp[index] ^= 0x01;
        reject_response(&rsp, &request, mismatch);
    }
    // A changed reference type is not an echo either.
    let mut rsp = req.clone();
    rsp[2] = 5;
    reject_response(&rsp, &request, mismatch);
}

// ---------------------------------------------------------------------------------------------
// Response checks against the request (§3.4)
// ---------------------------------------------------------------------------------------------

#[test]
fn read_response_byte_count_must_match_quantity() {
    let coils = Request::ReadCoils {
        address: 0,
        quantity: 9,
    };
    reject_response(
        &hex("01 01 FF"),
        &coils,
        DecodeError::ByteCountMismatch {
            function: FunctionCode::ReadCoils,
            byte_count: 1,
            expected: 2,
        },
    );
    reject_response(
        &hex("01 03 FF 01 00"),
        &coils,
        DecodeError::ByteCountMismatch {
            function: FunctionCode::ReadCoils,
            byte_count: 3,
            expected: 2,
        },
    );
    let inputs = Request::ReadDiscreteInputs {
        address: 0,
        quantity: 8,
    };
    reject_response(
        &hex("02 02 FF 00"),
        &inputs,
        DecodeError::ByteCountMismatch {
            function: FunctionCode::ReadDiscreteInputs,
            byte_count: 2,
            expected: 1,
        },
    );
    for (fc, request) in [
        (
            0x03u8,
            Request::ReadHoldingRegisters {
                address: 0,
                quantity: 2,
            },
        ),
        (
            0x04,
            Request::ReadInputRegisters {
                address: 0,
                quantity: 2,
            },
        ),
        (
            0x17,
            Request::ReadWriteMultipleRegisters {
                read_address: 0,
                read_quantity: 2,
                write_address: 0,
                values: Registers::from_words(&[1]),
            },
        ),
    ] {
        for byte_count in [2u8, 3, 6] {
            let mut rsp = vec![fc, byte_count];
            rsp.extend(std::iter::repeat_n(0, usize::from(byte_count)));
            reject_response(
                &rsp,
                &request,
                DecodeError::ByteCountMismatch {
                    function: request.function(),
                    byte_count: usize::from(byte_count),
                    expected: 4,
                },
            );
        }
    }
}

#[test]
fn padding_bits_of_a_coil_response_survive_reencoding() {
    // 3 coils, padding bits set: values compare by bits, the bytes are kept as received.
    let request = Request::ReadCoils {
        address: 0,
        quantity: 3,
    };
    let rsp = hex("01 01 FD");
    let decoded = Response::decode(&rsp, &request).unwrap();
    assert_eq!(
        decoded,
        Response::ReadCoils {
            values: Coils::from_bools(&[true, false, true])
        }
    );
    assert_eq!(encode_response(&decoded), rsp);
}

#[test]
#[allow(clippy::too_many_lines)] // a table of cases
fn echo_mismatches_are_rejected() {
    let cases: Vec<(Request<'static>, &str, FunctionCode)> = vec![
        (
            Request::WriteSingleCoil {
                address: 0xAC,
                value: true,
            },
            "05 00 AD FF 00",
            FunctionCode::WriteSingleCoil,
        ),
        (
            Request::WriteSingleCoil {
                address: 0xAC,
                value: true,
            },
            "05 00 AC 00 00",
            FunctionCode::WriteSingleCoil,
        ),
        (
            Request::WriteSingleRegister {
                address: 1,
                value: 3,
            },
            "06 00 02 00 03",
            FunctionCode::WriteSingleRegister,
        ),
        (
            Request::WriteSingleRegister {
                address: 1,
                value: 3,
            },
            "06 00 01 00 04",
            FunctionCode::WriteSingleRegister,
        ),
        (
            Request::WriteMultipleCoils {
                address: 0x13,
                values: Coils::from_bools(&[true; 10]),
            },
            "0F 00 14 00 0A",
            FunctionCode::WriteMultipleCoils,
        ),
        (
            Request::WriteMultipleCoils {
                address: 0x13,
                values: Coils::from_bools(&[true; 10]),
            },
            "0F 00 13 00 09",
            FunctionCode::WriteMultipleCoils,
        ),
        (
            Request::WriteMultipleRegisters {
                address: 1,
                values: Registers::from_words(&[10, 258]),
            },
            "10 00 00 00 02",
            FunctionCode::WriteMultipleRegisters,
        ),
        (
            Request::WriteMultipleRegisters {
                address: 1,
                values: Registers::from_words(&[10, 258]),
            },
            "10 00 01 00 03",
            FunctionCode::WriteMultipleRegisters,
        ),
        (
            Request::MaskWriteRegister {
                address: 4,
                and_mask: 0xF2,
                or_mask: 0x25,
            },
            "16 00 05 00 F2 00 25",
            FunctionCode::MaskWriteRegister,
        ),
        (
            Request::MaskWriteRegister {
                address: 4,
                and_mask: 0xF2,
                or_mask: 0x25,
            },
            "16 00 04 00 F3 00 25",
            FunctionCode::MaskWriteRegister,
        ),
        (
            Request::MaskWriteRegister {
                address: 4,
                and_mask: 0xF2,
                or_mask: 0x25,
            },
            "16 00 04 00 F2 00 24",
            FunctionCode::MaskWriteRegister,
        ),
        (
            Request::ReadDeviceIdentification {
                code: ReadDeviceIdCode::BasicStream,
                object_id: 0,
            },
            "2B 0E 02 01 00 00 00",
            FunctionCode::EncapsulatedInterfaceTransport,
        ),
    ];
    for (request, rsp, function) in &cases {
        reject_response(
            &hex(rsp),
            request,
            DecodeError::EchoMismatch {
                function: *function,
            },
        );
    }
}

#[test]
fn fc18_response_rules() {
    let request = Request::ReadFifoQueue { address: 0x04DE };
    let f = FunctionCode::ReadFifoQueue;
    // FIFO count 32 → 03.
    let mut rsp = hex("18 00 42 00 20");
    rsp.extend(std::iter::repeat_n(0, 64));
    let err = Response::decode(&rsp, &request).unwrap_err();
    assert_eq!(
        err,
        DecodeError::QuantityOutOfRange {
            function: f,
            quantity: 32,
            min: 0,
            max: 31,
        }
    );
    assert_eq!(err.exception_code(), ExceptionCode::IllegalDataValue);
    // Byte count not 2 + 2·count.
    reject_response(
        &hex("18 00 04 00 02 01 B8 12 84"),
        &request,
        DecodeError::ByteCountMismatch {
            function: f,
            byte_count: 4,
            expected: 6,
        },
    );
    // Count says two values, one present.
    assert!(matches!(
        Response::decode(&hex("18 00 06 00 02 01 B8"), &request),
        Err(DecodeError::Truncated { .. })
    ));
    // Encoding 32 values is refused.
    let words = [0u16; 32];
    let too_many = Response::ReadFifoQueue {
        values: Registers::from_words(&words),
    };
    assert_eq!(
        too_many.validate(),
        Err(DecodeError::QuantityOutOfRange {
            function: f,
            quantity: 32,
            min: 0,
            max: 31,
        })
    );
}

#[test]
fn fc0c_response_rules() {
    let f = FunctionCode::GetCommEventLog;
    // Byte count below 6 or above 70.
    for byte_count in [0u8, 5, 71] {
        let mut rsp = vec![0x0C, byte_count];
        rsp.extend(std::iter::repeat_n(0, usize::from(byte_count)));
        assert!(
            matches!(
                Response::decode(&rsp, &Request::GetCommEventLog),
                Err(DecodeError::ByteCountMismatch { function, .. }) if function == f
            ),
            "byte count {byte_count}"
        );
    }
    let events = [0u8; 65];
    let too_many = Response::GetCommEventLog {
        status: 0,
        event_count: 0,
        message_count: 0,
        events: &events,
    };
    assert!(too_many.validate().is_err());
}

#[test]
fn fc2b_0e_response_rules() {
    let request = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        object_id: 0,
    };
    // More-follows byte other than 00/FF.
    reject_response(
        &hex(r#"2B 0E 01 01 01 00 01 00 01 "A""#),
        &request,
        DecodeError::InvalidFieldValue {
            function: FunctionCode::EncapsulatedInterfaceTransport,
            value: 1,
        },
    );
    // Number of objects larger than the objects present (the spec's own erratum).
    assert!(matches!(
        Response::decode(
            &hex(r#"2B 0E 01 01 00 00 03 00 01 "A" 01 01 "B""#),
            &request
        ),
        Err(DecodeError::Truncated { .. })
    ));
    // Smaller than present.
    assert!(matches!(
        Response::decode(
            &hex(r#"2B 0E 01 01 00 00 01 00 01 "A" 01 01 "B""#),
            &request
        ),
        Err(DecodeError::TrailingBytes { .. })
    ));
    // Object length running past the PDU.
    assert!(matches!(
        Response::decode(&hex(r#"2B 0E 01 01 00 00 01 00 05 "AB""#), &request),
        Err(DecodeError::Truncated { .. })
    ));
    // Encoding objects beyond 246 bytes is refused.
    let big = [b'x'; 245];
    let objects = [DeviceIdObject { id: 0, value: &big }];
    let response = Response::ReadDeviceIdentification(DeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        conformity_level: 1,
        more_follows: false,
        next_object_id: 0,
        objects: DeviceIdObjects::from_items(&objects),
    });
    assert!(response.validate().is_err());
    // 244-byte object: the largest, PDU 253.
    let ok = [b'y'; 244];
    let objects = [DeviceIdObject {
        id: 0x80,
        value: &ok,
    }];
    let response = Response::ReadDeviceIdentification(DeviceIdentification {
        code: ReadDeviceIdCode::BasicStream,
        conformity_level: 3,
        more_follows: false,
        next_object_id: 0,
        objects: DeviceIdObjects::from_items(&objects),
    });
    let encoded = encode_response(&response);
    assert_eq!(encoded.len(), 253);
    assert_eq!(Response::decode(&encoded, &request).unwrap(), response);
}

// ---------------------------------------------------------------------------------------------
// PDU size and decision order
// ---------------------------------------------------------------------------------------------

#[test]
fn pdu_longer_than_253_is_rejected() {
    // The longest loop-back fits exactly.
    let mut max = hex("08 00 00");
    max.extend(std::iter::repeat_n(0x5A, 250));
    assert_eq!(max.len(), 253);
    let request = Request::decode(&max).unwrap();
    assert_eq!(encode_request(&request), max);
    assert!(Response::decode(&max, &request).is_ok());
    let mut long = max.clone();
    long.push(0x5A);
    reject_request(&long, DecodeError::PduTooLong { len: 254 }, 3);
    assert_eq!(
        Response::decode(&long, &request),
        Err(DecodeError::PduTooLong { len: 254 })
    );
    // Whatever the function, even an invalid one.
    let mut junk = vec![0x00; 300];
    junk[0] = 0x03;
    assert_eq!(
        Request::decode(&junk),
        Err(DecodeError::PduTooLong { len: 300 })
    );
    // Encoding refuses too.
    let data = vec![0u8; 251];
    let request = Request::Diagnostics(DiagnosticsRequest::ReturnQueryData { data: &data });
    assert_eq!(
        request.validate(),
        Err(DecodeError::PduTooLong { len: 254 })
    );
    let data = vec![0u8; 253];
    let custom = Request::Custom {
        function: FunctionCode::Other(0x41),
        data: &data,
    };
    assert_eq!(custom.validate(), Err(DecodeError::PduTooLong { len: 254 }));
}

#[test]
fn value_rules_are_reported_before_address_rules() {
    // Quantity 2001 from 0xFFFF: both broken, the value rule (03) wins.
    reject_request(
        &hex("01 FF FF 07 D1"),
        quantity_error(FunctionCode::ReadCoils, 2001, 2000),
        3,
    );
    reject_request(
        &hex("03 FF FF 00 00"),
        quantity_error(FunctionCode::ReadHoldingRegisters, 0, 125),
        3,
    );
    // Byte count wrong and the range wraps.
    reject_request(
        &hex("0F FF FF 00 0A 01 FF"),
        DecodeError::ByteCountMismatch {
            function: FunctionCode::WriteMultipleCoils,
            byte_count: 1,
            expected: 2,
        },
        3,
    );
    reject_request(
        &hex("10 FF FF 00 02 03 00 01 00"),
        DecodeError::ByteCountMismatch {
            function: FunctionCode::WriteMultipleRegisters,
            byte_count: 3,
            expected: 4,
        },
        3,
    );
    reject_request(
        &hex("17 FF FF 00 7E 00 00 00 01 02 00 00"),
        quantity_error(FunctionCode::ReadWriteMultipleRegisters, 126, 125),
        3,
    );
    reject_request(
        &hex("17 00 00 00 01 FF FF 00 7A"),
        quantity_error(FunctionCode::ReadWriteMultipleRegisters, 122, 121),
        3,
    );
    // Trailing bytes (a structure rule) beat the wrapping range.
    reject_request_code(&hex("03 FF FF 00 02 00"), 3);
    // FC 20: record length 0 (03) beats reference type 5 and file 0 (02).
    reject_request(
        &fc14(&[group(5, 0, 0, 0)]),
        quantity_error(FunctionCode::ReadFileRecord, 0, 125),
        3,
    );
    // ... and a too-long response (03) beats a bad reference type in another group (02).
    reject_request_code(&fc14(&[group(5, 1, 0, 100), group(6, 1, 0, 100)]), 3);
    // FC 21: an empty group (03) beats reference type 5 (02).
    let mut zero = fc15(&[write_group(5, 1, 0, &[1]), write_group(6, 1, 0, &[])]);
    zero[1] = 9 + 7;
    reject_request_code(&zero, 3);
    // FC 08: an unknown sub-function (01) beats bad data (03).
    reject_request_code(&hex("08 00 13 12 34"), 1);
    // FC 43: an unknown MEI type (01) beats a bad device id code (03).
    reject_request_code(&hex("2B 0C 05 00"), 1);
}
