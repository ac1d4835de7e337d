//! Interoperability tests against real peers (issue 6): libmodbus (Debian `libmodbus-dev`, our C
//! peer in `peers/libmodbus_peer.c`) and pymodbus (`PyPI`, pinned in `requirements.txt`), over TCP
//! on 127.0.0.1 and over RTU on a socat pty pair.
//!
//! Prepare with `bash tests/interop/setup.sh`; run with
//! `MODBUS_INTEROP_REQUIRED=1 cargo test --test interop`. Without the peers each test prints a
//! `SKIP` line and passes, unless `MODBUS_INTEROP_REQUIRED=1`, which turns a missing peer into a
//! failure (CI sets it).
//!
//! Shared data model (identical to our simulator): 10000 coils, discrete inputs, holding and input
//! registers at 0..=9999; coils and holding registers start at 0, discrete input i = (i % 3 == 0),
//! input register i = i. Differences between the peers, and between our simulator and libmodbus,
//! are written up in `DIFFERENCES.md`.
//!
//! Our side (`ours.rs`): our blocking client against each peer's TCP and RTU server, each peer's
//! client against our `TcpServer` and `SerialServer` (RTU tests need feature `serial`), and
//! `differential_ours_vs_libmodbus`, the same raw ADUs to our simulator and to libmodbus.

mod differential;
mod harness;
mod ours;

use differential::Case;
use harness::{Outcome, Peer, PeerServer, PtyPair, RTU_UNIT, RawTcp, RtuPort, Script};
use modbus_stack::pdu::{
    Coils, ExceptionCode, ExceptionResponse, FunctionCode, Registers, Request, Response,
};
use modbus_stack::server::tcp::{self, TcpServer};
use modbus_stack::value::{self, Order};

// Not `PI`: the peers write this literal.
#[allow(clippy::approx_constant)]
const FLOAT_A: f32 = 3.141_59;
const FLOAT_B: f32 = -2.5e-3;
const INT32: i32 = -123_456_789;

/// The steps every peer client must get right against every peer server.
fn check_core_steps(script: &Script) {
    assert!(script.done, "script did not finish:\n{}", script.raw);
    assert_eq!(script.ok("write_registers"), [3]);
    assert_eq!(
        script.ok("read_registers"),
        [0x1234, 0x5678, 0x9ABC, 0xBEEF]
    );
    assert_eq!(script.ok("write_coils"), [9]);
    assert_eq!(script.ok("read_coils"), [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]);
    assert_eq!(
        script.ok("read_input_registers"),
        (0..10).collect::<Vec<u32>>()
    );
    assert_eq!(
        script.ok("read_discrete_inputs"),
        [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    );
    assert_eq!(
        script.ok("mask_write_readback"),
        [0x17],
        "FC 22 spec example"
    );
    assert_eq!(script.ok("write_read_registers"), [0, 11, 22, 33, 0]);
    assert_eq!(script.ok("read_typed"), script.ok("typed_values"));
    assert_eq!(*script.get("read_beyond"), Outcome::Exception(2));
    assert_eq!(*script.get("read_coils_beyond"), Outcome::Exception(2));
}

// ---- (a) peer against peer: the harness and the peers work ----------------------------------

#[test]
fn peer_vs_peer_tcp() {
    if !harness::available("peer_vs_peer_tcp", &Peer::ALL, false) {
        return;
    }
    for (client, server) in [
        (Peer::Libmodbus, Peer::Pymodbus),
        (Peer::Pymodbus, Peer::Libmodbus),
    ] {
        let peer_server = PeerServer::tcp(server);
        let script = harness::run_client_tcp(client, &peer_server);
        eprintln!(
            "--- {} client -> {} TCP server\n{}",
            client.name(),
            server.name(),
            script.raw
        );
        check_core_steps(&script);
    }
}

#[test]
fn peer_vs_peer_rtu() {
    if !harness::available("peer_vs_peer_rtu", &Peer::ALL, true) {
        return;
    }
    // libmodbus client -> pymodbus RTU server: the full core script.
    {
        let pty = PtyPair::new();
        let _server = PeerServer::rtu(Peer::Pymodbus, &pty.a);
        let script = harness::run_client_rtu(Peer::Libmodbus, &pty.b);
        eprintln!(
            "--- libmodbus client -> pymodbus RTU server\n{}",
            script.raw
        );
        check_core_steps(&script);
    }
    // pymodbus client -> libmodbus RTU server. The pymodbus 3.16 serial client intermittently
    // reports exception 4 on this pair (see DIFFERENCES.md), so only the read-only steps that
    // have been reliable are asserted; the rest is printed.
    {
        let pty = PtyPair::new();
        let _server = PeerServer::rtu(Peer::Libmodbus, &pty.a);
        let script = harness::run_client_rtu(Peer::Pymodbus, &pty.b);
        eprintln!(
            "--- pymodbus client -> libmodbus RTU server\n{}",
            script.raw
        );
        assert!(script.done, "script did not finish:\n{}", script.raw);
        assert_eq!(
            script.ok("read_input_registers"),
            (0..10).collect::<Vec<u32>>()
        );
        assert_eq!(
            script.ok("read_discrete_inputs"),
            [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]
        );
    }
}

// ---- (b) our sans-IO pieces against the peer servers ------------------------------------------

fn registers(response: &Response<'_>) -> Vec<u16> {
    match response {
        Response::ReadHoldingRegisters { values }
        | Response::ReadInputRegisters { values }
        | Response::ReadWriteMultipleRegisters { values } => values.iter().collect(),
        other => panic!("not a register response: {other:?}"),
    }
}

fn bits(response: &Response<'_>) -> Vec<bool> {
    match response {
        Response::ReadCoils { values } | Response::ReadDiscreteInputs { values } => {
            values.iter().collect()
        }
        other => panic!("not a bit response: {other:?}"),
    }
}

fn exception(response: &Response<'_>) -> ExceptionCode {
    match response {
        Response::Exception(ExceptionResponse { code, .. }) => *code,
        other => panic!("not an exception: {other:?}"),
    }
}

/// The exchanges of the raw tests; `send` carries one request and returns the response PDU.
fn raw_script(peer: Peer, send: &mut dyn FnMut(&Request<'_>) -> Vec<u8>) {
    let name = peer.name();
    // Write then read back holding registers.
    let words = [0xCAFE, 0x0001, 0xFFFF];
    let write = Request::WriteMultipleRegisters {
        address: 1000,
        values: Registers::from_words(&words),
    };
    let pdu = send(&write);
    assert!(
        matches!(
            harness::decode(&pdu, &write),
            Response::WriteMultipleRegisters {
                address: 1000,
                quantity: 3
            }
        ),
        "{name}"
    );
    let read = Request::ReadHoldingRegisters {
        address: 999,
        quantity: 5,
    };
    let pdu = send(&read);
    assert_eq!(
        registers(&harness::decode(&pdu, &read)),
        [0, 0xCAFE, 1, 0xFFFF, 0],
        "{name}"
    );

    // Coils.
    let coils = [true, true, false, true];
    let write = Request::WriteMultipleCoils {
        address: 2000,
        values: Coils::from_bools(&coils),
    };
    let pdu = send(&write);
    harness::decode(&pdu, &write);
    let read = Request::ReadCoils {
        address: 2000,
        quantity: 5,
    };
    let pdu = send(&read);
    assert_eq!(
        bits(&harness::decode(&pdu, &read)),
        [true, true, false, true, false],
        "{name}"
    );

    // The fixed parts of the model, at the top edge of the map.
    let read = Request::ReadInputRegisters {
        address: 9990,
        quantity: 10,
    };
    let pdu = send(&read);
    assert_eq!(
        registers(&harness::decode(&pdu, &read)),
        (9990..10000).collect::<Vec<u16>>(),
        "{name}"
    );
    let read = Request::ReadDiscreteInputs {
        address: 9993,
        quantity: 7,
    };
    let pdu = send(&read);
    let expected: Vec<bool> = (9993..10000).map(|i| i % 3 == 0).collect();
    assert_eq!(bits(&harness::decode(&pdu, &read)), expected, "{name}");

    // 02: beyond the map.
    let beyond = Request::ReadHoldingRegisters {
        address: 9999,
        quantity: 2,
    };
    let pdu = send(&beyond);
    assert_eq!(
        exception(&harness::decode(&pdu, &beyond)),
        ExceptionCode::IllegalDataAddress,
        "{name}"
    );

    // 03: quantity 126 (max 125), only expressible as a Custom request.
    let data = [0x00, 0x00, 0x00, 0x7E];
    let too_many = Request::Custom {
        function: FunctionCode::ReadHoldingRegisters,
        data: &data,
    };
    let pdu = send(&too_many);
    // 01: a user-defined function code nobody implements.
    let unsupported = Request::Custom {
        function: FunctionCode::from(0x41),
        data: &[],
    };
    let pdu_unsupported = send(&unsupported);
    match peer {
        Peer::Libmodbus => {
            assert_eq!(
                exception(&harness::decode(&pdu, &too_many)),
                ExceptionCode::IllegalDataValue
            );
            assert_eq!(
                exception(&harness::decode(&pdu_unsupported, &unsupported)),
                ExceptionCode::IllegalFunction
            );
        }
        Peer::Pymodbus => {
            // pymodbus 3.16 answers any request it cannot decode with function byte 0x80 and
            // exception 01 (DIFFERENCES.md #1); our decoder rightly refuses that as a response to
            // FC 03 / FC 0x41 (modbus-reference.md §3.4).
            assert_eq!(pdu, [0x80, 0x01], "{name}");
            assert!(Response::decode(&pdu, &too_many).is_err());
            assert_eq!(pdu_unsupported, [0x80, 0x01], "{name}");
        }
    }
}

#[test]
fn raw_tcp_against_peer_servers() {
    if !harness::available("raw_tcp_against_peer_servers", &Peer::ALL, false) {
        return;
    }
    for peer in Peer::ALL {
        let server = PeerServer::tcp(peer);
        let mut conn = RawTcp::connect(server.addr());
        raw_script(peer, &mut |request| {
            conn.transact(1, request)
                .unwrap_or_else(|| panic!("{}: no response to {request:?}", peer.name()))
        });
    }
}

#[test]
fn raw_rtu_against_peer_servers() {
    if !harness::available("raw_rtu_against_peer_servers", &Peer::ALL, true) {
        return;
    }
    for peer in Peer::ALL {
        let pty = PtyPair::new();
        let _server = PeerServer::rtu(peer, &pty.a);
        let mut port = RtuPort::open(&pty.b);
        let mut send = |request: &Request<'_>| -> Option<Vec<u8>> {
            let (unit, pdu) = port.transact(RTU_UNIT, request)?;
            assert_eq!(unit, RTU_UNIT, "{}: responding unit", peer.name());
            Some(pdu)
        };
        let read = Request::ReadInputRegisters {
            address: 9990,
            quantity: 10,
        };
        let pdu = send(&read).expect("response to FC 04");
        assert_eq!(
            registers(&harness::decode(&pdu, &read)),
            (9990..10000).collect::<Vec<u16>>(),
            "{}",
            peer.name()
        );
        let words = [7, 8];
        let write = Request::WriteMultipleRegisters {
            address: 50,
            values: Registers::from_words(&words),
        };
        let pdu = send(&write).expect("response to FC 16");
        harness::decode(&pdu, &write);
        let read = Request::ReadHoldingRegisters {
            address: 50,
            quantity: 2,
        };
        let pdu = send(&read).expect("response to FC 03");
        assert_eq!(registers(&harness::decode(&pdu, &read)), [7, 8]);
        let read = Request::ReadDiscreteInputs {
            address: 0,
            quantity: 4,
        };
        let pdu = send(&read).expect("response to FC 02");
        assert_eq!(
            bits(&harness::decode(&pdu, &read)),
            [true, false, false, true]
        );
        let beyond = Request::ReadHoldingRegisters {
            address: 9999,
            quantity: 2,
        };
        let pdu = send(&beyond).expect("response to FC 03 beyond the map");
        assert_eq!(
            exception(&harness::decode(&pdu, &beyond)),
            ExceptionCode::IllegalDataAddress,
            "{}",
            peer.name()
        );
        // Another unit on the line: a server must stay silent (modbus-reference.md §8.2).
        let other = Request::ReadInputRegisters {
            address: 0,
            quantity: 1,
        };
        let answer = port.transact(RTU_UNIT + 1, &other);
        match peer {
            Peer::Libmodbus => assert_eq!(answer, None, "libmodbus answered another unit"),
            // pymodbus 3.16 answers an unknown unit with exception 04 (DIFFERENCES.md #6).
            Peer::Pymodbus => assert_eq!(answer, Some((RTU_UNIT + 1, vec![0x84, 0x04]))),
        }
    }
}

/// A peer client writes floats and a 32-bit int through a peer server; we read the registers raw
/// and decode them with our `value` module.
#[test]
fn typed_values_written_by_peer_clients() {
    if !harness::available("typed_values_written_by_peer_clients", &Peer::ALL, false) {
        return;
    }
    for (client, server, order_a, order_b) in [
        // libmodbus 3.1.6's `modbus_set_float_abcd` puts the bytes on the wire as B A D C and
        // `modbus_set_float_dcba` as C D A B (DIFFERENCES.md #2).
        (Peer::Libmodbus, Peer::Pymodbus, Order::Badc, Order::Cdab),
        // pymodbus: `convert_to_registers(FLOAT32, word_order="big")` is A B C D; the peer's
        // DCBA helper reverses the four bytes.
        (Peer::Pymodbus, Peer::Libmodbus, Order::Abcd, Order::Dcba),
    ] {
        let peer_server = PeerServer::tcp(server);
        let script = harness::run_client_tcp(client, &peer_server);
        assert_eq!(script.ok("write_typed"), [6], "{}", script.raw);
        let mut conn = RawTcp::connect(peer_server.addr());
        let read = Request::ReadHoldingRegisters {
            address: 400,
            quantity: 6,
        };
        let pdu = conn.transact(1, &read).expect("response");
        let regs = registers(&harness::decode(&pdu, &read));
        let a: f32 = value::decode(&regs[0..2], order_a).expect("float a");
        let b: f32 = value::decode(&regs[2..4], order_b).expect("float b");
        let c: i32 = value::decode(&regs[4..6], Order::Abcd).expect("int32");
        let name = client.name();
        assert!((a - FLOAT_A).abs() < 1e-6, "{name}: {a} from {regs:04X?}");
        assert!((b - FLOAT_B).abs() < 1e-9, "{name}: {b} from {regs:04X?}");
        assert_eq!(c, INT32, "{name}");
        // And the registers the peer says it wrote are the ones the server holds.
        let said: Vec<u16> = script
            .ok("typed_values")
            .iter()
            .map(|&v| u16::try_from(v).expect("u16"))
            .collect();
        assert_eq!(said, regs, "{name}");
    }
}

// ---- differential: the same bytes to two servers ----------------------------------------------

fn differential_cases() -> Vec<Case> {
    let read = |tid: u16, address: u16, quantity: u16| {
        harness::tcp_adu(tid, 1, &Request::ReadHoldingRegisters { address, quantity })
    };
    let inputs = |tid: u16, address: u16, quantity: u16| {
        harness::tcp_adu(tid, 1, &Request::ReadInputRegisters { address, quantity })
    };
    let raw = |tid: u16, pdu: &[u8]| {
        let mut adu = vec![0u8; 260];
        let len = modbus_stack::frame::tcp::encode(tid, 1, pdu, &mut adu).expect("encode");
        adu.truncate(len);
        adu
    };
    let mut bad_protocol = inputs(9, 0, 1);
    bad_protocol[3] = 1; // protocol id 1
    let mut long_length = inputs(10, 0, 1);
    long_length[5] = 7; // MBAP says one byte more than the PDU has
    vec![
        Case::whole("read input regs 0..3", inputs(1, 0, 3)),
        Case::whole("read input regs at the top edge", inputs(2, 9997, 3)),
        Case::whole("read holding regs beyond the map", read(3, 9999, 2)),
        Case::whole("read holding regs start beyond", read(4, 10000, 1)),
        Case::whole("quantity 0", raw(5, &[0x03, 0x00, 0x00, 0x00, 0x00])),
        Case::whole("quantity 126", raw(6, &[0x03, 0x00, 0x00, 0x00, 0x7E])),
        Case::whole("user-defined FC 0x41", raw(7, &[0x41])),
        Case::whole("FC 07 read exception status", raw(8, &[0x07])),
        Case::whole("protocol id 1", bad_protocol),
        Case::whole("MBAP length one too long", long_length),
        Case::whole(
            "coil value 0x1234",
            raw(11, &[0x05, 0x00, 0x10, 0x12, 0x34]),
        ),
        Case::whole(
            "FC 16 byte count mismatch",
            raw(12, &[0x10, 0x00, 0x00, 0x00, 0x02, 0x03, 0x00, 0x01, 0x00]),
        ),
        Case::whole(
            "FC 43/14 read device id basic",
            raw(13, &[0x2B, 0x0E, 0x01, 0x00]),
        ),
        Case::pipelined(
            "two reads pipelined in one write",
            &[inputs(20, 0, 2), inputs(21, 5, 2)],
        ),
        Case::split(
            "read split across three segments",
            &inputs(30, 7, 2),
            &[3, 8],
        ),
    ]
}

/// The cases on which every conforming server must give the same bytes.
const MUST_AGREE: &[&str] = &[
    "read input regs 0..3",
    "read input regs at the top edge",
    "read holding regs beyond the map",
    "read holding regs start beyond",
    "read split across three segments",
];

#[test]
fn differential_libmodbus_vs_pymodbus() {
    if !harness::available("differential_libmodbus_vs_pymodbus", &Peer::ALL, false) {
        return;
    }
    let libmodbus = PeerServer::tcp(Peer::Libmodbus);
    let pymodbus = PeerServer::tcp(Peer::Pymodbus);
    let cases = differential_cases();
    let results = differential::compare(libmodbus.addr(), pymodbus.addr(), &cases);
    let mut disagreements = Vec::new();
    for (case, a, b) in &results {
        let mark = if a == b { "same" } else { "DIFF" };
        eprintln!(
            "[{mark}] {}\n    libmodbus: {}\n    pymodbus:  {}",
            case.name,
            a.summary(),
            b.summary()
        );
        if a != b && MUST_AGREE.contains(&case.name) {
            disagreements.push(case.name);
        }
    }
    assert!(
        disagreements.is_empty(),
        "peers disagree on {disagreements:?}"
    );
    // The baseline cases got real answers, not two identical silences.
    for (case, a, _) in &results {
        if MUST_AGREE.contains(&case.name) {
            assert_eq!(a.responses.len(), case.responses, "{}", case.name);
        }
    }
}

// ---- differential: our simulator against libmodbus -------------------------------------------

/// More cases for our simulator against libmodbus: edges of every quantity limit, writes at the
/// map's edge, malformed PDUs and MBAP headers, pipelining and segmenting.
#[allow(clippy::too_many_lines)] // a table of cases
fn more_differential_cases() -> Vec<Case> {
    let raw = |tid: u16, pdu: &[u8]| {
        let mut adu = vec![0u8; 260];
        let len = modbus_stack::frame::tcp::encode(tid, 1, pdu, &mut adu).expect("encode");
        adu.truncate(len);
        adu
    };
    let inputs = |tid: u16, address: u16, quantity: u16| {
        harness::tcp_adu(tid, 1, &Request::ReadInputRegisters { address, quantity })
    };
    let coils_2000 = raw(41, &[0x01, 0x00, 0x00, 0x07, 0xD0]);
    let coils_2001 = raw(42, &[0x01, 0x00, 0x00, 0x07, 0xD1]);
    let discrete_2000 = raw(43, &[0x02, 0x1F, 0x40 - 0x07, 0x07, 0xD0]);
    let regs_125_top = raw(44, &[0x04, 0x26, 0x93, 0x00, 0x7D]); // 9875..=9999
    let fc16 = |tid: u16, address: u16, quantity: u16| {
        let mut pdu = vec![0x10];
        pdu.extend_from_slice(&address.to_be_bytes());
        pdu.extend_from_slice(&quantity.to_be_bytes());
        pdu.push(u8::try_from(quantity * 2).unwrap_or(0xFF));
        for i in 0..quantity {
            pdu.extend_from_slice(&(i + 1).to_be_bytes());
        }
        raw(tid, &pdu)
    };
    let fc15 = |tid: u16, address: u16, quantity: u16| {
        let mut pdu = vec![0x0F];
        pdu.extend_from_slice(&address.to_be_bytes());
        pdu.extend_from_slice(&quantity.to_be_bytes());
        let bytes = quantity.div_ceil(8);
        pdu.push(u8::try_from(bytes).unwrap_or(0xFF));
        pdu.extend(std::iter::repeat_n(0xA5, usize::from(bytes)));
        raw(tid, &pdu)
    };
    let mut length_one = raw(60, &[0x03]);
    length_one.truncate(7);
    length_one[5] = 1; // MBAP length 1: a unit id and no PDU
    let mut short_length = inputs(61, 0, 1);
    short_length[5] = 5; // MBAP says one byte less than the PDU has
    let mut unit_ff = inputs(62, 0, 1);
    unit_ff[6] = 0xFF;
    let mut unit_0 = inputs(63, 0, 1);
    unit_0[6] = 0x00;
    vec![
        Case::whole("read coils quantity 2000", coils_2000),
        Case::whole("read coils quantity 2001", coils_2001),
        Case::whole("read discrete inputs 2000 at the top", discrete_2000),
        Case::whole("read input regs 125 at the top", regs_125_top),
        Case::whole("FC 16 quantity 123", fc16(45, 5000, 123)),
        Case::whole("FC 16 quantity 0", fc16(46, 5000, 0)),
        Case::whole("FC 16 ending past the map", fc16(47, 9998, 3)),
        Case::whole("FC 15 quantity 1968", fc15(48, 6000, 1968)),
        Case::whole("FC 15 quantity 1969", fc15(49, 6000, 1969)),
        Case::whole("FC 06 at 9999", raw(50, &[0x06, 0x27, 0x0F, 0xAB, 0xCD])),
        Case::whole("FC 06 at 10000", raw(51, &[0x06, 0x27, 0x10, 0xAB, 0xCD])),
        Case::whole("FC 05 at 10000", raw(52, &[0x05, 0x27, 0x10, 0xFF, 0x00])),
        Case::whole(
            "FC 22 at 9999",
            raw(53, &[0x16, 0x27, 0x0F, 0x00, 0xF2, 0x00, 0x25]),
        ),
        Case::whole(
            "FC 23 read quantity 126",
            raw(54, &[0x17, 0, 0, 0, 0x7E, 0, 10, 0, 1, 2, 0, 1]),
        ),
        Case::whole("FC 23 write quantity 121", fc23(55, 121, &raw)),
        Case::whole("FC 23 write quantity 0", fc23(67, 0, &raw)),
        Case::whole("FC 03 truncated PDU", raw(56, &[0x03, 0x00, 0x00, 0x00])),
        Case::whole(
            "FC 03 PDU one byte long",
            raw(57, &[0x03, 0x00, 0x00, 0x00, 0x01, 0x00]),
        ),
        Case::whole("FC 0x80 (exception bit)", raw(58, &[0x83, 0x00])),
        Case::whole("FC 0", raw(59, &[0x00])),
        Case::whole("MBAP length 1", length_one),
        Case::whole("MBAP length one too short", short_length),
        Case::whole("unit id 0xFF", unit_ff),
        Case::whole("unit id 0", unit_0),
        Case::whole("FC 11 report server id", raw(64, &[0x11])),
        Case::whole(
            "FC 08 return query data",
            raw(65, &[0x08, 0x00, 0x00, 0xA5, 0x37]),
        ),
        Case::whole("FC 24 read FIFO", raw(66, &[0x18, 0x04, 0xDE])),
        Case::whole("MBAP length 255", {
            let mut adu = inputs(75, 0, 1);
            adu[5] = 0xFF;
            adu
        }),
        Case::whole(
            "FC 01 address wraps past 0xFFFF",
            raw(76, &[0x01, 0xFF, 0xFF, 0x00, 0x02]),
        ),
        Case::whole("FC 11 with a data byte", raw(77, &[0x11, 0x00])),
        Case::whole("FC 05 truncated", raw(78, &[0x05, 0x00, 0x01, 0xFF])),
        Case::whole(
            "FC 23 write beyond the map",
            raw(79, &[0x17, 0, 0, 0, 1, 0x27, 0x0F, 0, 2, 4, 0, 1, 0, 2]),
        ),
        Case::whole(
            "FC 23 write byte count mismatch",
            raw(80, &[0x17, 0, 0, 0, 1, 0, 10, 0, 2, 3, 0, 1, 0, 2]),
        ),
        Case::whole(
            "FC 15 byte count mismatch",
            raw(81, &[0x0F, 0, 0, 0, 9, 1, 0xFF]),
        ),
        Case::whole(
            "FC 22 truncated",
            raw(82, &[0x16, 0x00, 0x01, 0x00, 0xF2, 0x00]),
        ),
        Case::whole("FC 43/14 read code 5", raw(83, &[0x2B, 0x0E, 0x05, 0x00])),
        Case::whole("FC 43 MEI type 0x0D", raw(84, &[0x2B, 0x0D, 0x01, 0x00])),
        Case::pipelined(
            "three requests pipelined, one an exception",
            &[inputs(70, 1, 1), inputs(71, 9999, 2), inputs(72, 2, 1)],
        ),
        Case::split(
            "MBAP header split byte by byte",
            &inputs(73, 4, 1),
            &[1, 2, 3, 4, 5, 6, 7],
        ),
        Case::split("split after the MBAP header", &inputs(74, 4, 2), &[7]),
    ]
}

fn fc23(tid: u16, write_quantity: u16, raw: &dyn Fn(u16, &[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut pdu = vec![0x17, 0x00, 0x00, 0x00, 0x01];
    pdu.extend_from_slice(&7000u16.to_be_bytes());
    pdu.extend_from_slice(&write_quantity.to_be_bytes());
    pdu.push(u8::try_from(write_quantity * 2).unwrap_or(0xFF));
    for i in 0..write_quantity {
        pdu.extend_from_slice(&i.to_be_bytes());
    }
    raw(tid, &pdu)
}

/// What our simulator must do on a case where it differs from libmodbus (DIFFERENCES.md, "our
/// simulator vs libmodbus").
enum OurSide {
    /// One response with this PDU (same transaction and unit id as the request), no close.
    Pdu(Vec<u8>),
    /// No response, connection kept open.
    Silent,
    /// No response, connection closed.
    Closed,
}

/// The documented differences between our simulator and libmodbus 3.1.6, with our side.
fn documented_differences() -> Vec<(&'static str, OurSide)> {
    use modbus_stack::sim;
    let mut device_id = vec![0x2B, 0x0E, 0x01, 0x82, 0x00, 0x00, 0x03];
    for (id, object) in [sim::VENDOR_NAME, sim::PRODUCT_CODE, sim::REVISION]
        .iter()
        .enumerate()
    {
        device_id.push(u8::try_from(id).expect("id"));
        device_id.push(u8::try_from(object.len()).expect("len"));
        device_id.extend_from_slice(object.as_bytes());
    }
    let mut server_id = vec![0x11, u8::try_from(sim::SERVER_ID.len()).expect("len")];
    server_id.extend_from_slice(sim::SERVER_ID);
    let [f0, f1] = sim::FIFO_VALUES.map(u16::to_be_bytes);
    let fifo = vec![0x18, 0x00, 0x06, 0x00, 0x02, f0[0], f0[1], f1[0], f1[1]];
    vec![
        // D1: FC 07 answered (libmodbus closes the connection).
        (
            "FC 07 read exception status",
            OurSide::Pdu(vec![0x07, sim::EXCEPTION_STATUS]),
        ),
        // D2: protocol id 1 discarded silently (libmodbus answers).
        ("protocol id 1", OurSide::Silent),
        // D3: the MBAP length cuts the stream (libmodbus frames by function code).
        ("MBAP length one too long", OurSide::Silent),
        ("MBAP length one too short", OurSide::Pdu(vec![0x84, 0x03])),
        ("FC 03 PDU one byte long", OurSide::Pdu(vec![0x83, 0x03])),
        // D4: a length field outside 2..=254 closes the connection.
        ("MBAP length 255", OurSide::Closed),
        // D5: a PDU shorter than its function needs is answered 03 (libmodbus closes).
        ("FC 03 truncated PDU", OurSide::Pdu(vec![0x83, 0x03])),
        ("FC 05 truncated", OurSide::Pdu(vec![0x85, 0x03])),
        ("FC 22 truncated", OurSide::Pdu(vec![0x96, 0x03])),
        ("FC 11 with a data byte", OurSide::Pdu(vec![0x91, 0x03])),
        // D6: function codes 0 and 128..=255 are not supported: 01.
        ("FC 0", OurSide::Pdu(vec![0x80, 0x01])),
        ("FC 0x80 (exception bit)", OurSide::Pdu(vec![0x83, 0x01])),
        // D7: functions we implement and libmodbus does not.
        ("FC 43/14 read device id basic", OurSide::Pdu(device_id)),
        ("FC 43/14 read code 5", OurSide::Pdu(vec![0xAB, 0x03])),
        (
            "FC 08 return query data",
            OurSide::Pdu(vec![0x08, 0x00, 0x00, 0xA5, 0x37]),
        ),
        ("FC 24 read FIFO", OurSide::Pdu(fifo)),
        // D8: the server id is device specific.
        ("FC 11 report server id", OurSide::Pdu(server_id)),
    ]
}

/// Checks our side of a documented difference.
fn check_our_side(case: &Case, ours: &differential::Observed, expected: &OurSide) {
    let name = case.name;
    match expected {
        OurSide::Pdu(pdu) => {
            let request = &case.segments[0];
            let mut adu = request[..4].to_vec(); // transaction id, protocol id
            adu.extend_from_slice(&u16::try_from(pdu.len() + 1).expect("len").to_be_bytes());
            adu.push(request[6]);
            adu.extend_from_slice(pdu);
            assert_eq!(ours.responses, [adu], "{name}: {}", ours.summary());
            assert!(!ours.closed, "{name}: closed");
        }
        OurSide::Silent => {
            assert!(ours.responses.is_empty(), "{name}: {}", ours.summary());
            assert!(!ours.closed, "{name}: closed");
        }
        OurSide::Closed => {
            assert!(ours.responses.is_empty(), "{name}: {}", ours.summary());
            assert!(ours.closed, "{name}: not closed");
        }
    }
}

/// The same raw ADUs to our simulator and to libmodbus: byte-identical answers everywhere but on
/// the differences documented in DIFFERENCES.md, where our side is asserted.
#[test]
fn differential_ours_vs_libmodbus() {
    if !harness::available("differential_ours_vs_libmodbus", &[Peer::Libmodbus], false) {
        return;
    }
    let ours = TcpServer::bind("127.0.0.1:0", tcp::Config::tcp())
        .expect("bind 127.0.0.1:0")
        .spawn(modbus_stack::sim::unit_map())
        .expect("spawn our server");
    let our_addr = ours.local_addr().to_string();
    let libmodbus = PeerServer::tcp(Peer::Libmodbus);
    let mut cases = differential_cases();
    cases.extend(more_differential_cases());
    let documented = documented_differences();
    for (name, _) in &documented {
        assert!(
            cases.iter().any(|case| case.name == *name),
            "documented case {name:?} is not run"
        );
    }
    let results = differential::compare(&our_addr, libmodbus.addr(), &cases);
    let mut undocumented = Vec::new();
    for (case, a, b) in &results {
        let mark = if a == b { "same" } else { "DIFF" };
        eprintln!(
            "[{mark}] {}\n    ours:      {}\n    libmodbus: {}",
            case.name,
            a.summary(),
            b.summary()
        );
        if let Some((_, expected)) = documented.iter().find(|(name, _)| *name == case.name) {
            check_our_side(case, a, expected);
            if a == b {
                eprintln!("    (documented difference no longer seen: libmodbus changed?)");
            }
        } else if a != b {
            undocumented.push(case.name);
        }
    }
    assert!(
        undocumented.is_empty(),
        "undocumented differences from libmodbus: {undocumented:?}"
    );
    // The agreed baseline got real answers, not two identical silences.
    for (case, a, _) in &results {
        if MUST_AGREE.contains(&case.name) || case.name.starts_with("FC 16 quantity") {
            assert_eq!(a.responses.len(), case.responses, "{}", case.name);
        }
    }
    ours.shutdown().expect("shutdown");
}
