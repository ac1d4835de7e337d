//! The sans-IO server core against the in-memory `DataStore`: request bytes in, response bytes
//! out, with the specification's examples (`modbus-reference.md` §4, §12) as expected values.
#![cfg(feature = "std")]

use std::thread;

use modbus_stack::pdu::DiagnosticCounter;
use modbus_stack::server::{DataStore, UnitMap};
use modbus_stack::session::server::{
    EVENT_COMMUNICATION_RESTART, EVENT_ENTERED_LISTEN_ONLY, RECEIVE_BROADCAST, RECEIVE_EVENT,
    SEND_EVENT, SEND_READ_EXCEPTION,
};
use modbus_stack::session::server::{PduServer, Reply, SilentReason, UnitIds};

const UNIT: u8 = 1;

fn store() -> DataStore {
    DataStore::builder()
        .coils(300)
        .discrete_inputs(300)
        .holding_registers(200)
        .input_registers(100)
        .fifo_queue(0x04DE, [0x01B8, 0x1284])
        .fifo_queue(0x0010, vec![0; 32])
        .file(3, 100)
        .file(4, 100)
        .exception_status(0x6D)
        .server_id([0x2A, 0xFF, b'o', b'k'])
        .device_identification(0x00, "Company identification")
        .device_identification(0x01, "Product code XX")
        .device_identification(0x02, "V2.11")
        .build()
}

/// Sends `pdu` to `unit_id` and returns the response bytes, or `None` when the server is silent.
fn ask(server: &mut PduServer, store: &DataStore, unit_id: u8, pdu: &[u8]) -> Option<Vec<u8>> {
    let mut out = [0u8; 253];
    match server.respond(unit_id, pdu, &mut store.clone(), &mut out) {
        Reply::Send(len) => Some(out[..len].to_vec()),
        Reply::Silent(_) => None,
    }
}

fn serial() -> PduServer {
    PduServer::serial(UNIT)
}

fn unpack(bytes: &[u8], count: usize) -> Vec<bool> {
    (0..count)
        .map(|i| bytes[i / 8] & (1 << (i % 8)) != 0)
        .collect()
}

#[test]
fn read_functions_answer_the_spec_examples() {
    let store = store();
    let mut server = serial();
    store
        .write_coils(0x13, &unpack(&[0xCD, 0x6B, 0x05], 19))
        .unwrap();
    store
        .write_discrete_inputs(0xC4, &unpack(&[0xAC, 0xDB, 0x35], 22))
        .unwrap();
    store
        .write_holding_registers(0x6B, &[0x022B, 0x0000, 0x0064])
        .unwrap();
    store.write_input_registers(0x08, &[0x000A]).unwrap();

    let cases: &[(&[u8], &[u8])] = &[
        (
            &[0x01, 0x00, 0x13, 0x00, 0x13],
            &[0x01, 0x03, 0xCD, 0x6B, 0x05],
        ),
        (
            &[0x02, 0x00, 0xC4, 0x00, 0x16],
            &[0x02, 0x03, 0xAC, 0xDB, 0x35],
        ),
        (
            &[0x03, 0x00, 0x6B, 0x00, 0x03],
            &[0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64],
        ),
        (&[0x04, 0x00, 0x08, 0x00, 0x01], &[0x04, 0x02, 0x00, 0x0A]),
        (&[0x07], &[0x07, 0x6D]),
        (
            &[0x18, 0x04, 0xDE],
            &[0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84],
        ),
        (&[0x11], &[0x11, 0x04, 0x2A, 0xFF, b'o', b'k']),
    ];
    for (request, response) in cases {
        assert_eq!(
            ask(&mut server, &store, UNIT, request).as_deref(),
            Some(*response),
            "request {request:02X?}"
        );
    }
}

#[test]
fn write_functions_echo_and_change_the_store() {
    let store = store();
    let mut server = serial();
    let echo = |server: &mut PduServer, pdu: &[u8], expected: &[u8]| {
        assert_eq!(ask(server, &store, UNIT, pdu).as_deref(), Some(expected));
    };
    echo(
        &mut server,
        &[0x05, 0x00, 0xAC, 0xFF, 0x00],
        &[0x05, 0x00, 0xAC, 0xFF, 0x00],
    );
    assert_eq!(store.coils(0xAC, 1), Ok(vec![true]));

    echo(
        &mut server,
        &[0x06, 0x00, 0x01, 0x00, 0x03],
        &[0x06, 0x00, 0x01, 0x00, 0x03],
    );
    assert_eq!(store.holding_registers(1, 1), Ok(vec![3]));

    echo(
        &mut server,
        &[0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01],
        &[0x0F, 0x00, 0x13, 0x00, 0x0A],
    );
    assert_eq!(store.coils(0x13, 10), Ok(unpack(&[0xCD, 0x01], 10)));

    echo(
        &mut server,
        &[0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02],
        &[0x10, 0x00, 0x01, 0x00, 0x02],
    );
    assert_eq!(store.holding_registers(1, 2), Ok(vec![0x000A, 0x0102]));

    // Mask write spec example: 0x12 AND 0xF2 OR 0x25 → 0x17.
    store.write_holding_registers(4, &[0x12]).unwrap();
    echo(
        &mut server,
        &[0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25],
        &[0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25],
    );
    assert_eq!(store.holding_registers(4, 1), Ok(vec![0x17]));
}

#[test]
fn read_write_multiple_registers_writes_before_reading() {
    let store = store();
    let mut server = serial();
    store
        .write_holding_registers(3, &[0x00FE, 0x0ACD, 0x0001, 0x0003, 0x000D, 0x00FF])
        .unwrap();
    // Spec example: read 6 from 3, write 3 at 14.
    let request = [
        0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF, 0x00, 0xFF, 0x00,
        0xFF,
    ];
    let expected = [
        0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D, 0x00, 0xFF,
    ];
    assert_eq!(
        ask(&mut server, &store, UNIT, &request).as_deref(),
        Some(&expected[..])
    );
    assert_eq!(store.holding_registers(14, 3), Ok(vec![0xFF; 3]));
    // Overlapping ranges: the read sees the write.
    let request = [
        0x17, 0x00, 0x05, 0x00, 0x01, 0x00, 0x05, 0x00, 0x01, 0x02, 0xBE, 0xEF,
    ];
    assert_eq!(
        ask(&mut server, &store, UNIT, &request).as_deref(),
        Some(&[0x17, 0x02, 0xBE, 0xEF][..])
    );
    // A read range beyond the map fails before anything is written.
    let request = [
        0x17, 0x00, 0xC7, 0x00, 0x02, 0x00, 0x05, 0x00, 0x01, 0x02, 0x11, 0x11,
    ];
    assert_eq!(
        ask(&mut server, &store, UNIT, &request).as_deref(),
        Some(&[0x97, 0x02][..])
    );
    assert_eq!(store.holding_registers(5, 1), Ok(vec![0xBEEF]));
}

#[test]
fn file_records_round_trip_through_write_and_read() {
    let store = store();
    let mut server = serial();
    // Spec FC 21 example: file 4, record 7, three values; echoed.
    let write = [
        0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D,
    ];
    assert_eq!(
        ask(&mut server, &store, UNIT, &write).as_deref(),
        Some(&write[..])
    );
    assert_eq!(store.file(4).unwrap()[7..10], [0x06AF, 0x04BE, 0x100D]);
    // FC 20: two groups, file 4 records 7–8 and file 3 records 0–1.
    let read = [
        0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00,
        0x02,
    ];
    let expected = [
        0x14, 0x0C, 0x05, 0x06, 0x06, 0xAF, 0x04, 0xBE, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(
        ask(&mut server, &store, UNIT, &read).as_deref(),
        Some(&expected[..])
    );
    // A file the store lacks: 02.
    let read = [0x14, 0x07, 0x06, 0x00, 0x09, 0x00, 0x00, 0x00, 0x01];
    assert_eq!(
        ask(&mut server, &store, UNIT, &read).as_deref(),
        Some(&[0x94, 0x02][..])
    );
}

#[test]
fn negative_vectors_get_the_documented_exceptions() {
    let store = store();
    let mut server = serial();
    let cases: &[(&[u8], &[u8])] = &[
        (&[0x01, 0x00, 0x00, 0x07, 0xD1], &[0x81, 0x03]),
        (&[0x01, 0xFF, 0xFF, 0x00, 0x02], &[0x81, 0x02]),
        (&[0x05, 0x00, 0x00, 0x00, 0x01], &[0x85, 0x03]),
        (&[0x0F, 0x00, 0x00, 0x00, 0x0A, 0x01, 0xFF], &[0x8F, 0x03]),
        (
            &[0x10, 0x00, 0x00, 0x00, 0x02, 0x03, 0x00, 0x01, 0x00],
            &[0x90, 0x03],
        ),
        (
            &[
                0x17, 0x00, 0x00, 0x00, 0x7E, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00,
            ],
            &[0x97, 0x03],
        ),
        (&[0x2B, 0x0E, 0x05, 0x00], &[0xAB, 0x03]),
        (&[0x2B, 0x0E, 0x04, 0x50], &[0xAB, 0x02]),
        (&[0x2B, 0x0C, 0x00], &[0xAB, 0x01]),
        (&[0x08, 0x00, 0x05, 0x00, 0x00], &[0x88, 0x01]),
        (&[0x08, 0x00, 0x0B, 0x12, 0x34], &[0x88, 0x03]),
        // Inside the 16-bit space but beyond the store's 200 registers: the handler's 02.
        (&[0x03, 0x00, 0xC4, 0x00, 0x05], &[0x83, 0x02]),
        (
            &[0x03, 0x00, 0x60, 0x00, 0x04],
            &[0x03, 0x08, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        // Mask write beyond the map, FIFO pointer unknown, FIFO with 32 values.
        (&[0x16, 0x00, 0xC8, 0x00, 0xF2, 0x00, 0x25], &[0x96, 0x02]),
        (&[0x18, 0x00, 0x01], &[0x98, 0x02]),
        (&[0x18, 0x00, 0x10], &[0x98, 0x03]),
        // User-defined function code the store does not serve.
        (&[0x41, 0x01, 0x02], &[0xC1, 0x01]),
    ];
    for (request, response) in cases {
        assert_eq!(
            ask(&mut server, &store, UNIT, request).as_deref(),
            Some(*response),
            "request {request:02X?}"
        );
    }
}

#[test]
fn stream_from_unknown_object_restarts_at_zero_and_individual_access_works() {
    let store = store();
    let mut server = serial();
    let mut expected = vec![0x2B, 0x0E, 0x01, 0x81, 0x00, 0x00, 0x03];
    for (id, value) in [
        (0u8, &b"Company identification"[..]),
        (1, b"Product code XX"),
        (2, b"V2.11"),
    ] {
        expected.extend([id, u8::try_from(value.len()).unwrap()]);
        expected.extend_from_slice(value);
    }
    for object_id in [0x00, 0x50] {
        assert_eq!(
            ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x01, object_id]),
            Some(expected.clone())
        );
    }
    // A regular stream on a basic device is answered at the basic level.
    let mut regular = expected.clone();
    regular[2] = 0x02;
    assert_eq!(
        ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x02, 0x00]),
        Some(regular)
    );
    // Individual access: exactly that object.
    assert_eq!(
        ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x04, 0x02]).as_deref(),
        Some(
            &[
                0x2B, 0x0E, 0x04, 0x81, 0x00, 0x00, 0x01, 0x02, 0x05, b'V', b'2', b'.', b'1', b'1'
            ][..]
        )
    );
}

#[test]
fn device_identification_splits_into_whole_objects_with_more_follows() {
    let store = DataStore::builder()
        .device_identification(0x00, [b'a'; 100])
        .device_identification(0x01, [b'b'; 100])
        .device_identification(0x02, [b'c'; 100])
        .device_identification(0x80, [b'd'; 244])
        .build();
    let mut server = serial();
    let first = ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x03, 0x00]).unwrap();
    // Extended conformity (object 0x80), more follows, next object 2, two objects.
    assert_eq!(first[..7], [0x2B, 0x0E, 0x03, 0x83, 0xFF, 0x02, 0x02]);
    assert_eq!(first.len(), 7 + 2 * 102);
    let second = ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x03, 0x02]).unwrap();
    assert_eq!(second[..7], [0x2B, 0x0E, 0x03, 0x83, 0xFF, 0x80, 0x01]);
    assert_eq!(second[7..9], [0x02, 100]);
    let third = ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x03, 0x80]).unwrap();
    assert_eq!(
        third[..9],
        [0x2B, 0x0E, 0x03, 0x83, 0x00, 0x00, 0x01, 0x80, 244]
    );
    assert_eq!(third.len(), 253);
    // A basic stream never goes past object 2, whatever the device has.
    let basic = ask(&mut server, &store, UNIT, &[0x2B, 0x0E, 0x01, 0x02]).unwrap();
    assert_eq!(basic[..7], [0x2B, 0x0E, 0x01, 0x83, 0x00, 0x00, 0x01]);
}

#[test]
fn broadcast_writes_are_executed_but_never_answered() {
    let store = store();
    let mut server = serial();
    let mut out = [0u8; 253];
    let write = [0x06, 0x00, 0x02, 0x12, 0x34];
    assert_eq!(
        server.respond(0, &write, &mut store.clone(), &mut out),
        Reply::Silent(SilentReason::Broadcast)
    );
    assert_eq!(store.holding_registers(2, 1), Ok(vec![0x1234]));
    // A broadcast read is not executed: CPT3 and CPT5 count it.
    let read = [0x03, 0x00, 0x00, 0x00, 0x01];
    assert_eq!(
        server.respond(0, &read, &mut store.clone(), &mut out),
        Reply::Silent(SilentReason::Broadcast)
    );
    // A failing broadcast write is silent as well.
    let bad = [0x06, 0x00, 0xC8, 0x00, 0x01];
    assert_eq!(
        server.respond(0, &bad, &mut store.clone(), &mut out),
        Reply::Silent(SilentReason::Broadcast)
    );
    assert_eq!(server.counter(DiagnosticCounter::ServerMessage), 3);
    assert_eq!(server.counter(DiagnosticCounter::ServerNoResponse), 3);
    assert_eq!(server.counter(DiagnosticCounter::BusExceptionError), 2);
    assert_eq!(server.event_count(), 1);
    let rx = RECEIVE_EVENT | RECEIVE_BROADCAST;
    assert_eq!(
        server.event_log(),
        &[
            SEND_EVENT | SEND_READ_EXCEPTION,
            rx,
            SEND_EVENT,
            rx,
            SEND_EVENT,
            rx
        ]
    );
    // On TCP, unit 0 is an ordinary unit id and gets an answer.
    let mut tcp = PduServer::tcp();
    assert_eq!(
        tcp.respond(0, &read, &mut store.clone(), &mut out),
        Reply::Send(4)
    );
}

#[test]
fn foreign_unit_ids_are_ignored_when_filtering() {
    let store = store();
    let mut server = serial();
    let mut out = [0u8; 253];
    let read = [0x03, 0x00, 0x00, 0x00, 0x01];
    assert_eq!(
        server.respond(2, &read, &mut store.clone(), &mut out),
        Reply::Silent(SilentReason::ForeignUnit)
    );
    assert_eq!(server.counter(DiagnosticCounter::ServerMessage), 0);
    let mut several = PduServer::new(UnitIds::single(1).with(7), true);
    assert_eq!(
        several.respond(7, &read, &mut store.clone(), &mut out),
        Reply::Send(4)
    );
    let mut tcp = PduServer::tcp();
    assert_eq!(
        tcp.respond(0xFF, &read, &mut store.clone(), &mut out),
        Reply::Send(4)
    );
}

#[test]
fn listen_only_mode_answers_nothing_until_restart() {
    let store = store();
    let mut server = serial();
    let mut out = [0u8; 253];
    assert_eq!(
        server.respond(
            UNIT,
            &[0x08, 0x00, 0x04, 0x00, 0x00],
            &mut store.clone(),
            &mut out
        ),
        Reply::Silent(SilentReason::NoResponse)
    );
    assert!(server.is_listen_only());
    // Writes are not executed, reads not answered.
    assert_eq!(
        server.respond(
            UNIT,
            &[0x06, 0x00, 0x00, 0x00, 0x09],
            &mut store.clone(),
            &mut out
        ),
        Reply::Silent(SilentReason::ListenOnly)
    );
    assert_eq!(store.holding_registers(0, 1), Ok(vec![0]));
    // 08/01 leaves listen-only mode without a reply, clears counters, logs the restart.
    assert_eq!(
        server.respond(
            UNIT,
            &[0x08, 0x00, 0x01, 0x00, 0x00],
            &mut store.clone(),
            &mut out
        ),
        Reply::Silent(SilentReason::ListenOnly)
    );
    assert!(!server.is_listen_only());
    assert_eq!(server.counter(DiagnosticCounter::ServerMessage), 0);
    assert_eq!(server.event_log()[0], EVENT_COMMUNICATION_RESTART);
    assert!(server.event_log().contains(&EVENT_ENTERED_LISTEN_ONLY));
    // Restart outside listen-only is echoed; 0xFF00 clears the log first.
    assert_eq!(
        ask(&mut server, &store, UNIT, &[0x08, 0x00, 0x01, 0xFF, 0x00]).as_deref(),
        Some(&[0x08, 0x00, 0x01, 0xFF, 0x00][..])
    );
    assert_eq!(server.event_log(), &[EVENT_COMMUNICATION_RESTART]);
    assert_eq!(server.event_count(), 0);
}

#[test]
fn counters_follow_a_sequence_of_good_and_bad_frames() {
    let store = store();
    let mut server = serial();
    let read = [0x03, 0x00, 0x00, 0x00, 0x01];
    for _ in 0..3 {
        server.note_frame_received();
        assert!(ask(&mut server, &store, UNIT, &read).is_some());
    }
    server.note_frame_error();
    server.note_frame_error();
    server.note_frame_received();
    assert!(ask(&mut server, &store, 9, &read).is_none());
    server.note_frame_received();
    assert_eq!(
        ask(&mut server, &store, UNIT, &[0x03, 0x00, 0x00, 0x00, 0x00]).as_deref(),
        Some(&[0x83, 0x03][..])
    );
    let counter = |server: &mut PduServer, sub: u8| {
        let response = ask(server, &store, UNIT, &[0x08, 0x00, sub, 0x00, 0x00]).unwrap();
        assert_eq!(response[..3], [0x08, 0x00, sub]);
        u16::from_be_bytes([response[3], response[4]])
    };
    assert_eq!(counter(&mut server, 0x0B), 5); // CPT1: every good frame, any unit.
    assert_eq!(counter(&mut server, 0x0C), 2); // CPT2: the two bad frames.
    assert_eq!(counter(&mut server, 0x0D), 1); // CPT3: the quantity-0 read.
    // CPT4: 4 requests for this unit plus the four counter reads (this one included).
    assert_eq!(counter(&mut server, 0x0E), 8);
    assert_eq!(counter(&mut server, 0x0F), 0);
    // FC 11: 3 reads + 5 counter reads completed; the exception and FC 11 itself do not count.
    assert_eq!(
        ask(&mut server, &store, UNIT, &[0x0B]).as_deref(),
        Some(&[0x0B, 0x00, 0x00, 0x00, 0x08][..])
    );
    // FC 12: status, event count (FC 11 not counted), message count, newest event first: the
    // receive event of this very request, then the send event of FC 11.
    let log = ask(&mut server, &store, UNIT, &[0x0C]).unwrap();
    let events = u8::try_from(server.event_log().len() - 1).unwrap();
    assert_eq!(log[..8], [0x0C, 6 + events, 0, 0, 0, 8, 0, 5]);
    assert_eq!(log[8..10], [RECEIVE_EVENT, SEND_EVENT]);
    // 08/0A clears everything after its echo; 08/02 reads the register; 08/00 loops back.
    assert!(ask(&mut server, &store, UNIT, &[0x08, 0x00, 0x0A, 0x00, 0x00]).is_some());
    assert_eq!(server.counter(DiagnosticCounter::BusMessage), 0);
    assert_eq!(server.event_count(), 0);
    server.set_diagnostic_register(0xA5A5);
    assert_eq!(counter(&mut server, 0x02), 0xA5A5);
    let query = [0x08, 0x00, 0x00, 0xA5, 0x37];
    assert_eq!(
        ask(&mut server, &store, UNIT, &query).as_deref(),
        Some(&query[..])
    );
    // 08/03 changes the ASCII delimiter; 08/14 clears the overrun counter.
    let delimiter = [0x08, 0x00, 0x03, b'#', 0x00];
    assert_eq!(
        ask(&mut server, &store, UNIT, &delimiter).as_deref(),
        Some(&delimiter[..])
    );
    assert_eq!(server.ascii_delimiter(), b'#');
    server.note_character_overrun();
    assert_eq!(counter(&mut server, 0x12), 1);
    assert!(ask(&mut server, &store, UNIT, &[0x08, 0x00, 0x14, 0x00, 0x00]).is_some());
    assert_eq!(server.counter(DiagnosticCounter::BusCharacterOverrun), 0);
}

#[test]
fn event_log_keeps_the_newest_64_events() {
    let store = store();
    let mut server = serial();
    for _ in 0..40 {
        ask(&mut server, &store, UNIT, &[0x03, 0x00, 0x00, 0x00, 0x01]);
    }
    assert_eq!(server.event_log().len(), 64);
    let log = ask(&mut server, &store, UNIT, &[0x0C]).unwrap();
    assert_eq!(log.len(), 2 + 6 + 64);
    assert_eq!(log[1], 70);
    assert_eq!(
        log[8..12],
        [RECEIVE_EVENT, SEND_EVENT, RECEIVE_EVENT, SEND_EVENT]
    );
}

#[test]
fn unit_map_routes_unit_ids_and_fans_out_broadcasts() {
    let first = store();
    let second = store();
    let mut map = UnitMap::new();
    map.insert(1, first.clone());
    map.insert(2, second.clone());
    let mut server = PduServer::new(map.unit_ids(), true);
    let mut out = [0u8; 253];
    assert_eq!(
        server.respond(2, &[0x06, 0x00, 0x00, 0x00, 0x05], &mut map, &mut out),
        Reply::Send(5)
    );
    assert_eq!(second.holding_registers(0, 1), Ok(vec![5]));
    assert_eq!(first.holding_registers(0, 1), Ok(vec![0]));
    assert_eq!(
        server.respond(3, &[0x03, 0x00, 0x00, 0x00, 0x01], &mut map, &mut out),
        Reply::Silent(SilentReason::ForeignUnit)
    );
    assert_eq!(
        server.respond(0, &[0x06, 0x00, 0x01, 0x00, 0x07], &mut map, &mut out),
        Reply::Silent(SilentReason::Broadcast)
    );
    assert_eq!(first.holding_registers(1, 1), Ok(vec![7]));
    assert_eq!(second.holding_registers(1, 1), Ok(vec![7]));
    let all = UnitMap::serving_all(first.clone());
    assert!(all.get(200).is_some());
    assert_eq!(all.unit_ids(), UnitIds::all());
}

#[test]
fn concurrent_writers_never_see_torn_writes() {
    const THREADS: u16 = 4;
    const WIDTH: u16 = 20;
    const ROUNDS: u16 = 200;
    let store = DataStore::builder().holding_registers(100).build();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut server = PduServer::tcp();
                let address = t * WIDTH;
                for round in 0..ROUNDS {
                    let value = t * 1000 + round;
                    let mut request = vec![0x10];
                    request.extend(address.to_be_bytes());
                    request.extend(WIDTH.to_be_bytes());
                    request.push(u8::try_from(WIDTH * 2).unwrap());
                    for _ in 0..WIDTH {
                        request.extend(value.to_be_bytes());
                    }
                    assert!(ask(&mut server, &store, 1, &request).is_some());
                    // Read the range back: every register carries this round's value.
                    let mut read = vec![0x03];
                    read.extend(address.to_be_bytes());
                    read.extend(WIDTH.to_be_bytes());
                    let response = ask(&mut server, &store, 1, &read).unwrap();
                    for pair in response[2..].chunks(2) {
                        assert_eq!(u16::from_be_bytes([pair[0], pair[1]]), value);
                    }
                    // And a reader across all ranges sees each range whole.
                    let all = store
                        .holding_registers(0, usize::from(THREADS * WIDTH))
                        .unwrap();
                    for range in all.chunks(usize::from(WIDTH)) {
                        assert!(range.iter().all(|&v| v == range[0]));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
