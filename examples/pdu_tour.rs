//! A tour of the PDU codec: one request and its response for every public function code,
//! encoded, decoded back against the request, and printed with the wire bytes.
//!
//! Run with `cargo run --example pdu_tour`. No hardware and no network are needed.

use modbus_stack::pdu::{
    Coils, DeviceIdObject, DeviceIdObjects, DeviceIdentification, DiagnosticCounter,
    DiagnosticsRequest, DiagnosticsResponse, ExceptionCode, ExceptionResponse, FileReadGroup,
    FileReadGroups, FileReadResponses, FileRecord, FileRecords, FunctionCode, ReadDeviceIdCode,
    Registers, Request, Response,
};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Encodes both messages, decodes them back, checks nothing changed, and prints them.
fn show(request: &Request<'_>, response: Option<&Response<'_>>) {
    let mut request_bytes = [0u8; 253];
    let len = request.encode(&mut request_bytes).expect("valid request");
    let request_bytes = &request_bytes[..len];
    let decoded = Request::decode(request_bytes).expect("request decodes");
    assert_eq!(&decoded, request);
    println!("{}", request.function());
    println!("  request  {:<40} {decoded:?}", hex(request_bytes));
    match response {
        Some(response) => {
            let mut response_bytes = [0u8; 253];
            let len = response
                .encode(&mut response_bytes)
                .expect("valid response");
            let response_bytes = &response_bytes[..len];
            let decoded = Response::decode(response_bytes, request).expect("response decodes");
            assert_eq!(&decoded, response);
            println!("  response {:<40} {decoded:?}", hex(response_bytes));
        }
        None => println!("  response (none: the server stays silent)"),
    }
}

// A straight list of one example per function code; splitting it would only scatter the tour.
#[allow(clippy::too_many_lines)]
fn main() {
    println!("modbus-stack PDU tour: every function code, encoded and decoded\n");
    let coil_bits = [
        true, false, true, true, false, false, true, true, false, true,
    ];
    show(
        &Request::ReadCoils {
            address: 19,
            quantity: 10,
        },
        Some(&Response::ReadCoils {
            values: Coils::from_bools(&coil_bits),
        }),
    );
    show(
        &Request::ReadDiscreteInputs {
            address: 196,
            quantity: 10,
        },
        Some(&Response::ReadDiscreteInputs {
            values: Coils::from_bools(&coil_bits),
        }),
    );
    show(
        &Request::ReadHoldingRegisters {
            address: 107,
            quantity: 3,
        },
        Some(&Response::ReadHoldingRegisters {
            values: Registers::from_words(&[555, 0, 100]),
        }),
    );
    show(
        &Request::ReadInputRegisters {
            address: 8,
            quantity: 1,
        },
        Some(&Response::ReadInputRegisters {
            values: Registers::from_words(&[10]),
        }),
    );
    show(
        &Request::WriteSingleCoil {
            address: 172,
            value: true,
        },
        Some(&Response::WriteSingleCoil {
            address: 172,
            value: true,
        }),
    );
    show(
        &Request::WriteSingleRegister {
            address: 1,
            value: 3,
        },
        Some(&Response::WriteSingleRegister {
            address: 1,
            value: 3,
        }),
    );
    show(
        &Request::ReadExceptionStatus,
        Some(&Response::ReadExceptionStatus { status: 0x6D }),
    );
    show(
        &Request::Diagnostics(DiagnosticsRequest::ReturnQueryData {
            data: &[0xA5, 0x37],
        }),
        Some(&Response::Diagnostics(
            DiagnosticsResponse::ReturnQueryData {
                data: &[0xA5, 0x37],
            },
        )),
    );
    show(
        &Request::Diagnostics(DiagnosticsRequest::ReturnCounter(
            DiagnosticCounter::BusMessage,
        )),
        Some(&Response::Diagnostics(DiagnosticsResponse::ReturnCounter {
            counter: DiagnosticCounter::BusMessage,
            value: 42,
        })),
    );
    show(
        &Request::Diagnostics(DiagnosticsRequest::ForceListenOnlyMode),
        None,
    );
    show(
        &Request::GetCommEventCounter,
        Some(&Response::GetCommEventCounter {
            status: 0xFFFF,
            event_count: 264,
        }),
    );
    show(
        &Request::GetCommEventLog,
        Some(&Response::GetCommEventLog {
            status: 0,
            event_count: 264,
            message_count: 289,
            events: &[0x20, 0x00],
        }),
    );
    show(
        &Request::WriteMultipleCoils {
            address: 19,
            values: Coils::from_bools(&coil_bits),
        },
        Some(&Response::WriteMultipleCoils {
            address: 19,
            quantity: 10,
        }),
    );
    show(
        &Request::WriteMultipleRegisters {
            address: 1,
            values: Registers::from_words(&[10, 258]),
        },
        Some(&Response::WriteMultipleRegisters {
            address: 1,
            quantity: 2,
        }),
    );
    show(
        &Request::ReportServerId,
        Some(&Response::ReportServerId {
            data: b"\x2A\xFFdemo",
        }),
    );
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
    let group_data = [
        Registers::from_words(&[0x0DFE, 0x0020]),
        Registers::from_words(&[0x33CD, 0x0040]),
    ];
    show(
        &Request::ReadFileRecord {
            groups: FileReadGroups::from_items(&groups),
        },
        Some(&Response::ReadFileRecord {
            records: FileReadResponses::from_items(&group_data),
        }),
    );
    let records = [FileRecord {
        file_number: 4,
        record_number: 7,
        values: Registers::from_words(&[0x06AF, 0x04BE, 0x100D]),
    }];
    show(
        &Request::WriteFileRecord {
            records: FileRecords::from_items(&records),
        },
        Some(&Response::WriteFileRecord {
            records: FileRecords::from_items(&records),
        }),
    );
    show(
        &Request::MaskWriteRegister {
            address: 4,
            and_mask: 0xF2,
            or_mask: 0x25,
        },
        Some(&Response::MaskWriteRegister {
            address: 4,
            and_mask: 0xF2,
            or_mask: 0x25,
        }),
    );
    show(
        &Request::ReadWriteMultipleRegisters {
            read_address: 3,
            read_quantity: 2,
            write_address: 14,
            values: Registers::from_words(&[0xFF, 0xFF, 0xFF]),
        },
        Some(&Response::ReadWriteMultipleRegisters {
            values: Registers::from_words(&[0xFE, 0x0ACD]),
        }),
    );
    show(
        &Request::ReadFifoQueue { address: 0x04DE },
        Some(&Response::ReadFifoQueue {
            values: Registers::from_words(&[0x01B8, 0x1284]),
        }),
    );
    show(
        &Request::CanOpenGeneralReference {
            data: &[0x01, 0x02],
        },
        Some(&Response::CanOpenGeneralReference { data: &[0x03] }),
    );
    let objects = [
        DeviceIdObject {
            id: 0,
            value: b"Company identification",
        },
        DeviceIdObject {
            id: 1,
            value: b"Product code XX",
        },
        DeviceIdObject {
            id: 2,
            value: b"V2.11",
        },
    ];
    show(
        &Request::ReadDeviceIdentification {
            code: ReadDeviceIdCode::BasicStream,
            object_id: 0,
        },
        Some(&Response::ReadDeviceIdentification(DeviceIdentification {
            code: ReadDeviceIdCode::BasicStream,
            conformity_level: 0x01,
            more_follows: false,
            next_object_id: 0,
            objects: DeviceIdObjects::from_items(&objects),
        })),
    );
    show(
        &Request::Custom {
            function: FunctionCode::Other(0x41),
            data: &[0x01, 0x02],
        },
        Some(&Response::Custom {
            function: FunctionCode::Other(0x41),
            data: &[0x03],
        }),
    );
    show(
        &Request::ReadCoils {
            address: 0x04A1,
            quantity: 1,
        },
        Some(&Response::Exception(ExceptionResponse {
            function: FunctionCode::ReadCoils,
            code: ExceptionCode::IllegalDataAddress,
        })),
    );

    println!("\nA malformed request, and the exception a server answers it with:");
    let malformed = [0x01, 0x00, 0x00, 0x07, 0xD1];
    let error = Request::decode(&malformed).unwrap_err();
    println!(
        "  {}  ->  {error}  ->  exception {}",
        hex(&malformed),
        error.exception_code()
    );
}
