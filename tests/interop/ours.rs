//! Our blocking client against the peer servers, and the peer clients against our servers
//! (issue 6), over TCP on 127.0.0.1 and (feature `serial`) over RTU on a socat pty pair.

use modbus_stack::client::{Client, Error};
use modbus_stack::pdu::{ExceptionCode, FunctionCode, Request};
use modbus_stack::server::tcp::{self, TcpServer};
use modbus_stack::server::{DataStore, UnitMap};
use modbus_stack::sim;
use modbus_stack::transport::Transport;
use modbus_stack::transport::tcp::Config as TcpClientConfig;
use modbus_stack::value::{self, Order};

use super::harness::{self, Outcome, Peer, PeerServer, Script};
use super::{FLOAT_A, FLOAT_B, INT32, check_core_steps};

/// How long our client waits for one response from a peer.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The byte orders a peer client's typed helpers put on the wire for the float at 400 and the
/// float at 402 (the int32 at 404 is A B C D for both; DIFFERENCES.md #2).
fn typed_orders(client: Peer) -> (Order, Order) {
    match client {
        // libmodbus 3.1.6: `modbus_set_float_abcd` is B A D C, `modbus_set_float_dcba` C D A B.
        Peer::Libmodbus => (Order::Badc, Order::Cdab),
        Peer::Pymodbus => (Order::Abcd, Order::Dcba),
    }
}

/// Decodes the six registers a peer client wrote at 400 with our `value` module.
fn check_typed(client: Peer, regs: &[u16]) {
    let (order_a, order_b) = typed_orders(client);
    let name = client.name();
    let a: f32 = value::decode(&regs[0..2], order_a).expect("float a");
    let b: f32 = value::decode(&regs[2..4], order_b).expect("float b");
    let c: i32 = value::decode(&regs[4..6], Order::Abcd).expect("int32");
    assert!((a - FLOAT_A).abs() < 1e-6, "{name}: {a} from {regs:04X?}");
    assert!((b - FLOAT_B).abs() < 1e-9, "{name}: {b} from {regs:04X?}");
    assert_eq!(c, INT32, "{name}: from {regs:04X?}");
}

fn u16s(values: &[u32]) -> Vec<u16> {
    values
        .iter()
        .map(|&v| u16::try_from(v).expect("u16"))
        .collect()
}

fn exception_code(result: Result<impl std::fmt::Debug, Error>) -> ExceptionCode {
    match result {
        Err(Error::Exception(exception)) => exception.code,
        other => panic!("expected an exception, got {other:?}"),
    }
}

// ---- our client against the peer servers ------------------------------------------------------

/// The values our client script writes.
const HR_WORDS: [u16; 3] = [0xCAFE, 0x0001, 0xFFFF];
const COIL_BITS: [bool; 10] = [
    true, true, false, true, false, false, true, false, true, true,
];

/// Our client's script against a peer server (unit `unit`); the same over every transport.
fn our_client_script<T: Transport>(peer: Peer, client: &mut Client<T>, unit: u8, serial: bool) {
    let name = peer.name();
    // FC 16, 06, 03.
    client
        .write_multiple_registers(unit, 1000, &HR_WORDS)
        .expect("FC 16");
    client
        .write_single_register(unit, 1003, 0xBEEF)
        .expect("FC 06");
    assert_eq!(
        client.read_holding_registers(unit, 999, 6).expect("FC 03"),
        [0, 0xCAFE, 1, 0xFFFF, 0xBEEF, 0],
        "{name}"
    );
    // FC 15, 05, 01.
    client
        .write_multiple_coils(unit, 2000, &COIL_BITS)
        .expect("FC 15");
    client.write_single_coil(unit, 2010, true).expect("FC 05");
    client
        .write_single_coil(unit, 2000, false)
        .expect("FC 05 off");
    let mut expected = COIL_BITS.to_vec();
    expected[0] = false;
    expected.push(true);
    expected.push(false);
    assert_eq!(
        client.read_coils(unit, 2000, 12).expect("FC 01"),
        expected,
        "{name}"
    );
    // FC 04, 02 at the top edge of the map.
    assert_eq!(
        client.read_input_registers(unit, 9990, 10).expect("FC 04"),
        (9990..10000).collect::<Vec<u16>>(),
        "{name}"
    );
    let expected: Vec<bool> = (9993..10000).map(sim::discrete_input).collect();
    assert_eq!(
        client.read_discrete_inputs(unit, 9993, 7).expect("FC 02"),
        expected,
        "{name}"
    );
    // FC 22, the spec example: 0x12 AND 0xF2 OR 0x25 = 0x17.
    client
        .write_single_register(unit, 3000, 0x12)
        .expect("FC 06");
    client
        .mask_write_register(unit, 3000, 0x00F2, 0x0025)
        .expect("FC 22");
    assert_eq!(
        client.read_holding_registers(unit, 3000, 1).expect("FC 03"),
        [0x17],
        "{name}"
    );
    // FC 23: the write happens before the read.
    assert_eq!(
        client
            .read_write_multiple_registers(unit, 3009, 5, 3010, &[11, 22, 33])
            .expect("FC 23"),
        [0, 11, 22, 33, 0],
        "{name}"
    );
    // FC 17: device specific (DIFFERENCES.md #10); our client returns the bytes after the count.
    let id = client.report_server_id(unit).expect("FC 17");
    match peer {
        Peer::Libmodbus => assert_eq!(id, b"\xB4\xFFLMB3.1.6", "{name}"),
        Peer::Pymodbus => assert!(id.starts_with(b"Pymodbus"), "{name}: {id:02X?}"),
    }
    our_client_exceptions(peer, client, unit, serial);
}

/// Exceptions 02, 03 and 01 as our client reports them.
fn our_client_exceptions<T: Transport>(peer: Peer, client: &mut Client<T>, unit: u8, serial: bool) {
    let name = peer.name();
    // 02: beyond the map.
    assert_eq!(
        exception_code(client.read_holding_registers(unit, 9999, 2)),
        ExceptionCode::IllegalDataAddress,
        "{name}"
    );
    assert_eq!(
        exception_code(client.read_coils(unit, 10000, 1)),
        ExceptionCode::IllegalDataAddress,
        "{name}"
    );
    // 03: quantity 126; 01: a function nobody implements.
    let data = [0x00, 0x00, 0x00, 0x7E];
    let too_many = Request::Custom {
        function: FunctionCode::ReadHoldingRegisters,
        data: &data,
    };
    if serial && peer == Peer::Pymodbus {
        client.set_response_timeout(std::time::Duration::from_millis(500));
    }
    let too_many = client.call(unit, &too_many, |_| Ok(()));
    let unsupported = Request::Custom {
        function: FunctionCode::from(0x41),
        data: &[],
    };
    let unsupported = client.call(unit, &unsupported, |_| Ok(()));
    match peer {
        Peer::Libmodbus => {
            assert_eq!(exception_code(too_many), ExceptionCode::IllegalDataValue);
            assert_eq!(exception_code(unsupported), ExceptionCode::IllegalFunction);
        }
        Peer::Pymodbus if serial => {
            // On RTU pymodbus drops what it cannot decode: no answer (DIFFERENCES.md #1).
            assert!(
                matches!(too_many, Err(Error::Timeout { .. })),
                "{too_many:?}"
            );
            assert!(
                matches!(unsupported, Err(Error::Timeout { .. })),
                "{unsupported:?}"
            );
        }
        Peer::Pymodbus => {
            // pymodbus answers both with `80 01` (DIFFERENCES.md #1): a protocol error, not an
            // exception, for a client that checks the function byte (§3.4).
            assert!(
                matches!(too_many, Err(Error::UnexpectedResponse(_))),
                "{too_many:?}"
            );
            assert!(
                matches!(unsupported, Err(Error::UnexpectedResponse(_))),
                "{unsupported:?}"
            );
        }
    }
}

/// The serial-line and less common functions pymodbus serves over TCP (libmodbus answers 01).
fn our_client_more_functions<T: Transport>(peer: Peer, client: &mut Client<T>, unit: u8) {
    use modbus_stack::client::DiagnosticsReply;
    use modbus_stack::pdu::{DiagnosticsRequest, FileReadGroup, FileRecord, Registers};
    let echo = client.diagnostics(
        unit,
        DiagnosticsRequest::ReturnQueryData {
            data: &[0xA5, 0x37],
        },
    );
    let words = [0x06AF, 0x04BE];
    let record = FileRecord {
        file_number: 4,
        record_number: 7,
        values: Registers::from_words(&words),
    };
    let written = client.write_file_record(unit, &[record]);
    let group = FileReadGroup {
        file_number: 4,
        record_number: 7,
        record_length: 2,
    };
    let read = client.read_file_record(unit, &[group]);
    match peer {
        Peer::Libmodbus => {
            for code in [
                exception_code(echo),
                exception_code(client.get_comm_event_counter(unit)),
                exception_code(client.get_comm_event_log(unit)),
                exception_code(written),
                exception_code(read),
                exception_code(client.read_fifo_queue(unit, sim::FIFO_ADDRESS)),
            ] {
                assert_eq!(code, ExceptionCode::IllegalFunction);
            }
        }
        Peer::Pymodbus => {
            assert_eq!(
                echo.expect("FC 08/00"),
                DiagnosticsReply::ReturnQueryData(vec![0xA5, 0x37])
            );
            client.get_comm_event_counter(unit).expect("FC 11");
            client.get_comm_event_log(unit).expect("FC 12");
            written.expect("FC 21");
            // pymodbus 3.16 answers FC 20 with a byte count that does not match its
            // sub-responses (DIFFERENCES.md #13); our client refuses it (§3.4).
            assert!(
                matches!(
                    read,
                    Err(Error::UnexpectedResponse(
                        modbus_stack::DecodeError::ByteCountMismatch { .. }
                    ))
                ),
                "{read:?}"
            );
            assert_eq!(client.read_exception_status(unit).expect("FC 07"), 0);
        }
    }
}

/// Our TCP client against each peer TCP server: every function the peer implements, exceptions,
/// the typed values a peer client wrote, and a read-back by the peer's own client.
#[test]
fn our_client_against_peer_tcp_servers() {
    if !harness::available("our_client_against_peer_tcp_servers", &Peer::ALL, false) {
        return;
    }
    for (server, writer) in [
        (Peer::Libmodbus, Peer::Pymodbus),
        (Peer::Pymodbus, Peer::Libmodbus),
    ] {
        let peer_server = PeerServer::tcp(server);
        // The other peer's client writes its typed values (and runs its script) first; the
        // libmodbus server serves one connection at a time.
        let script = harness::run_client_tcp(writer, &peer_server);
        assert_eq!(script.ok("write_typed"), [6], "{}", script.raw);
        let mut client =
            Client::tcp(peer_server.addr(), TcpClientConfig::default()).expect("connect");
        client.set_response_timeout(RESPONSE_TIMEOUT);
        let regs = client
            .read_holding_registers(1, 400, 6)
            .expect("typed registers");
        check_typed(writer, &regs);
        assert_eq!(regs, u16s(script.ok("typed_values")));

        our_client_script(server, &mut client, 1, false);
        our_client_more_functions(server, &mut client, 1);
        drop(client);

        // Cross-check from the peer's side: its own client reads what ours wrote.
        let read = harness::peer_read_tcp(server, peer_server.addr(), (999, 6), (2000, 12));
        assert_eq!(
            u16s(read.ok("holding")),
            [0, 0xCAFE, 1, 0xFFFF, 0xBEEF, 0],
            "{}",
            read.raw
        );
        let mut coils: Vec<u32> = COIL_BITS.iter().map(|&b| u32::from(b)).collect();
        coils[0] = 0;
        coils.extend([1, 0]);
        assert_eq!(read.ok("coils"), coils, "{}", read.raw);
    }
}

// ---- the peer clients against our servers ------------------------------------------------------

/// What every peer client must see from our servers beyond the core steps, and what it must
/// leave in our store.
fn check_peer_client_against_ours(client: Peer, script: &Script, store: &DataStore) {
    eprintln!("--- {} client -> our server\n{}", client.name(), script.raw);
    check_core_steps(script);
    let name = client.name();
    assert_eq!(
        *script.get("illegal_quantity"),
        Outcome::Exception(3),
        "{name}"
    );
    assert_eq!(
        *script.get("unsupported_function"),
        Outcome::Exception(1),
        "{name}"
    );
    // Values the peer wrote, as our store holds them.
    assert_eq!(
        store.holding_registers(100, 4).expect("100..104"),
        [0x1234, 0x5678, 0x9ABC, 0xBEEF]
    );
    assert_eq!(
        store.coils(200, 10).expect("200..210"),
        [
            true, false, true, true, false, false, true, false, true, true
        ]
    );
    assert_eq!(store.holding_registers(300, 1).expect("300"), [0x17]);
    assert_eq!(
        store.holding_registers(309, 5).expect("309..314"),
        [0, 11, 22, 33, 0]
    );
    let typed = store.holding_registers(400, 6).expect("400..406");
    assert_eq!(typed, u16s(script.ok("typed_values")), "{name}");
    check_typed(client, &typed);
    // FC 17: our server id bytes (libmodbus prints the bytes after the count; pymodbus' client
    // cuts the run indicator off the end, DIFFERENCES.md #10).
    let id: Vec<u32> = sim::SERVER_ID.iter().map(|&b| u32::from(b)).collect();
    match client {
        Peer::Libmodbus => assert_eq!(script.ok("report_server_id"), id, "{name}"),
        Peer::Pymodbus => {
            assert!(
                matches!(script.get("report_server_id"), Outcome::Ok(_)),
                "{name}"
            );
            check_pymodbus_more_steps(script);
        }
    }
}

/// The extra steps of the pymodbus client (response PDUs, function code first).
fn check_pymodbus_more_steps(script: &Script) {
    assert_eq!(
        script.ok("read_exception_status"),
        [u32::from(sim::EXCEPTION_STATUS)]
    );
    assert_eq!(script.ok("diag_return_query_data"), [8, 0, 0, 0xA5, 0x37]);
    assert_eq!(script.ok("comm_event_counter")[0], 11);
    assert_eq!(script.ok("comm_event_log")[0], 12);
    assert_eq!(
        script.ok("write_file_record"),
        [21, 11, 6, 0, 4, 0, 7, 0, 2, 6, 0xAF, 4, 0xBE]
    );
    // pymodbus prints its re-encoding of the responses it parsed; for FC 20 and FC 43 that
    // re-encoding is not the wire bytes (our bytes are checked by our client and the
    // differential test), so only the function codes are checked.
    assert_eq!(script.ok("read_file_record")[0], 20);
    // Address 500 holds no FIFO in our simulator (it is at 0x04DE): 02.
    assert_eq!(*script.get("read_fifo_queue"), Outcome::Exception(2));
    let Outcome::Ok(id) = script.get("read_device_identification") else {
        panic!("read_device_identification: {script:?}");
    };
    assert_eq!(id[..4], [0x2B, 0x0E, 1, 0x82]);
}

/// Each peer client against our TCP server serving the simulator.
#[test]
fn peer_clients_against_our_tcp_server() {
    if !harness::available("peer_clients_against_our_tcp_server", &Peer::ALL, false) {
        return;
    }
    for client in Peer::ALL {
        let store = sim::store();
        let ours = TcpServer::bind("127.0.0.1:0", tcp::Config::tcp())
            .expect("bind 127.0.0.1:0")
            .spawn(UnitMap::serving_all(store.clone()))
            .expect("spawn");
        let script = harness::run_client_at(client, &ours.local_addr().to_string());
        check_peer_client_against_ours(client, &script, &store);
        ours.shutdown().expect("shutdown");
    }
}

// ---- RTU on a pty pair (feature `serial`) ------------------------------------------------------

#[cfg(feature = "serial")]
mod rtu {
    use std::time::Duration;

    use modbus_stack::client::Client;
    use modbus_stack::frame::Framing;
    use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
    use modbus_stack::server::UnitMap;
    use modbus_stack::server::serial::{SerialServer, SpawnedServer};
    use modbus_stack::session::server::ServerConfig;
    use modbus_stack::sim;
    use modbus_stack::transport::serial::{self, SerialTransport};

    use super::super::harness::{self, Peer, PeerServer, PtyPair, RTU_UNIT};
    use super::{RESPONSE_TIMEOUT, check_peer_client_against_ours, our_client_script};

    const BAUD: u32 = 19_200;

    /// 19200 8N1, as the peers (see `libmodbus_peer.c` for why not 8E1).
    fn line() -> serial::Config {
        serial::Config {
            parity: Parity::None,
            ..serial::Config::new(BAUD)
        }
    }

    /// Our RTU client on `path`.
    fn our_client(path: &std::path::Path) -> Client<SerialTransport> {
        let port = serialport::new(path.to_str().expect("utf-8 path"), BAUD)
            .timeout(Duration::from_millis(100))
            .open()
            .expect("open pty");
        let transport = SerialTransport::from_port(port, line(), Framing::Rtu).expect("rtu");
        let mut client = Client::new(transport);
        client.set_response_timeout(RESPONSE_TIMEOUT);
        client
    }

    /// Our RTU serial server (unit 17) on `path` in a thread; stopped and joined on drop.
    struct OurRtuServer {
        server: Option<SpawnedServer>,
    }

    impl OurRtuServer {
        fn start(path: &std::path::Path, map: UnitMap) -> Self {
            let port = serialport::new(path.to_str().expect("utf-8 path"), BAUD)
                .data_bits(serialport::DataBits::Eight)
                .parity(serialport::Parity::None)
                .stop_bits(serialport::StopBits::One)
                .flow_control(serialport::FlowControl::None)
                .timeout(Duration::from_millis(20))
                .open_native()
                .expect("open pty (TTYPort)");
            let session = ServerConfig::rtu(
                RTU_UNIT,
                Timing::for_line(BAUD, Parity::None, StopBits::One),
            );
            let server = SerialServer::from_port(Box::new(port), session)
                .and_then(|server| server.spawn(map))
                .expect("serve");
            Self {
                server: Some(server),
            }
        }
    }

    impl Drop for OurRtuServer {
        fn drop(&mut self) {
            if let Some(server) = self.server.take() {
                let _ = server.shutdown();
            }
        }
    }

    /// Our RTU client against each peer RTU server on a pty pair.
    #[test]
    fn our_client_against_peer_rtu_servers() {
        if !harness::available("our_client_against_peer_rtu_servers", &Peer::ALL, true) {
            return;
        }
        for peer in Peer::ALL {
            let pty = PtyPair::new();
            let _server = PeerServer::rtu(peer, &pty.a);
            let mut client = our_client(&pty.b);
            our_client_script(peer, &mut client, RTU_UNIT, true);
        }
    }

    /// Each peer client against our RTU serial server on a pty pair.
    #[test]
    fn peer_clients_against_our_rtu_server() {
        if !harness::available("peer_clients_against_our_rtu_server", &Peer::ALL, true) {
            return;
        }
        for client in Peer::ALL {
            let pty = PtyPair::new();
            let store = sim::store();
            let server = OurRtuServer::start(&pty.a, UnitMap::serving_all(store.clone()));
            let script = harness::run_client_rtu(client, &pty.b);
            drop(server);
            check_peer_client_against_ours(client, &script, &store);
        }
    }
}
