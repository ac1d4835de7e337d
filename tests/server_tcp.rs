//! The blocking TCP server against the simulator model, over real sockets on 127.0.0.1 (port 0).
//!
//! Requests are raw ADUs written with `std::net::TcpStream`, so these tests check the wire bytes
//! and depend on no client code. Nothing asserts on timing: reads carry a generous deadline
//! only so a broken server fails the test instead of hanging it.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use modbus_stack::frame::Framing;
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::session::server::ServerConfig;
use modbus_stack::sim;
use support::{crc16_modbus, hex};

/// Deadline for any single read: far above any real answer time, only there to end a hang.
const READ_DEADLINE: Duration = Duration::from_secs(10);

fn spawn(config: Config) -> SpawnedServer {
    let server = TcpServer::bind("127.0.0.1:0", config).expect("bind");
    server.spawn(sim::unit_map()).expect("spawn")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_DEADLINE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn adu(transaction_id: u16, unit_id: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&u16::try_from(pdu.len() + 1).unwrap().to_be_bytes());
    out.push(unit_id);
    out.extend_from_slice(pdu);
    out
}

/// Reads one response ADU: (transaction id, unit id, PDU).
fn read_adu(stream: &mut TcpStream) -> (u16, u8, Vec<u8>) {
    let mut header = [0u8; 7];
    stream.read_exact(&mut header).expect("response header");
    assert_eq!(&header[2..4], &[0, 0], "protocol id");
    let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let mut pdu = vec![0u8; length - 1];
    stream.read_exact(&mut pdu).expect("response pdu");
    (u16::from_be_bytes([header[0], header[1]]), header[6], pdu)
}

/// Sends one request PDU and returns the response PDU, checking the echoed header fields.
fn call(stream: &mut TcpStream, transaction_id: u16, pdu: &[u8]) -> Vec<u8> {
    stream.write_all(&adu(transaction_id, 0xFF, pdu)).unwrap();
    let (tid, unit, response) = read_adu(stream);
    assert_eq!((tid, unit), (transaction_id, 0xFF));
    response
}

/// Waits (up to the read deadline) for the server to close the connection.
fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return;
            }
            Err(error) => panic!("connection not closed by the server: {error}"),
        }
    }
}

#[test]
fn every_function_code_against_the_simulator() {
    let server = spawn(Config::tcp());
    let mut s = connect(server.local_addr());
    let mut tid = 0u16;
    let mut call = |pdu: &str| {
        tid += 1;
        call(&mut s, tid, &hex(pdu))
    };

    // FC 01 / 02 / 03 / 04: the model's initial values.
    assert_eq!(call("01 00 00 00 0A"), hex("01 02 00 00"));
    // Discrete input i is on when i % 3 == 0: 0, 3, 6 in the first byte, 9 in the second.
    assert_eq!(call("02 00 00 00 0A"), hex("02 02 49 02"));
    assert_eq!(call("03 00 00 00 02"), hex("03 04 00 00 00 00"));
    assert_eq!(call("04 00 07 00 02"), hex("04 04 00 07 00 08"));
    assert_eq!(call("04 27 0F 00 01"), hex("04 02 27 0F"));
    // Beyond address 9999: exception 02.
    assert_eq!(call("04 27 0F 00 02"), hex("84 02"));
    assert_eq!(call("03 27 10 00 01"), hex("83 02"));
    assert_eq!(call("01 27 10 00 01"), hex("81 02"));
    // A bad quantity is 03 (checked before the address).
    assert_eq!(call("03 00 00 00 00"), hex("83 03"));

    // FC 05 / 06 and read back.
    assert_eq!(call("05 00 05 FF 00"), hex("05 00 05 FF 00"));
    assert_eq!(call("01 00 00 00 08"), hex("01 01 20"));
    assert_eq!(call("06 00 01 12 34"), hex("06 00 01 12 34"));
    assert_eq!(call("03 00 01 00 01"), hex("03 02 12 34"));

    // FC 07, FC 08/00 (echo), FC 11, FC 12.
    assert_eq!(call("07"), hex("07 00"));
    assert_eq!(call("08 00 00 A5 37"), hex("08 00 00 A5 37"));
    let counter = call("0B");
    assert_eq!((counter.len(), &counter[..3]), (5, &hex("0B 00 00")[..]));
    let log = call("0C");
    assert_eq!((log[0], usize::from(log[1]) + 2), (0x0C, log.len()));

    // FC 15 / 16 (the specification's examples) and read back.
    assert_eq!(call("0F 00 13 00 0A 02 CD 01"), hex("0F 00 13 00 0A"));
    assert_eq!(call("01 00 13 00 0A"), hex("01 02 CD 01"));
    assert_eq!(call("10 00 01 00 02 04 00 0A 01 02"), hex("10 00 01 00 02"));
    assert_eq!(call("03 00 01 00 02"), hex("03 04 00 0A 01 02"));

    // FC 17: the simulator's server id payload.
    let mut expected = vec![0x11, u8::try_from(sim::SERVER_ID.len()).unwrap()];
    expected.extend_from_slice(sim::SERVER_ID);
    assert_eq!(call("11"), expected);

    // FC 21 then FC 20 (file 4, records 7..10), a missing file is 02.
    assert_eq!(
        call("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D"),
        hex("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0D")
    );
    assert_eq!(
        call("14 07 06 00 04 00 07 00 03"),
        hex("14 08 07 06 06 AF 04 BE 10 0D")
    );
    assert_eq!(call("14 07 06 00 09 00 00 00 01"), hex("94 02"));

    // FC 22 (the specification's example): (0x12 & 0xF2) | (0x25 & !0xF2) = 0x17.
    assert_eq!(call("06 00 04 00 12"), hex("06 00 04 00 12"));
    assert_eq!(call("16 00 04 00 F2 00 25"), hex("16 00 04 00 F2 00 25"));
    assert_eq!(call("03 00 04 00 01"), hex("03 02 00 17"));

    // FC 23: write 3 registers at 14, read 2 from 15.
    assert_eq!(
        call("17 00 0F 00 02 00 0E 00 03 06 00 FF 00 FE 00 FD"),
        hex("17 04 00 FE 00 FD")
    );

    // FC 24: the simulator's FIFO queue; an unknown pointer is 02.
    assert_eq!(call("18 04 DE"), hex("18 00 06 00 02 01 B8 12 84"));
    assert_eq!(call("18 00 00"), hex("98 02"));

    // FC 43/14: basic stream from object 0.
    let mut expected = hex("2B 0E 01 82 00 00 03");
    for (id, value) in [sim::VENDOR_NAME, sim::PRODUCT_CODE, sim::REVISION]
        .iter()
        .enumerate()
    {
        expected.push(u8::try_from(id).unwrap());
        expected.push(u8::try_from(value.len()).unwrap());
        expected.extend_from_slice(value.as_bytes());
    }
    assert_eq!(call("2B 0E 01 00"), expected);
    // Individual access to the model name.
    let mut expected = hex("2B 0E 04 82 00 00 01 05");
    expected.push(u8::try_from(sim::MODEL_NAME.len()).unwrap());
    expected.extend_from_slice(sim::MODEL_NAME.as_bytes());
    assert_eq!(call("2B 0E 04 05"), expected);

    // An unimplemented function code: 01.
    assert_eq!(call("41 00"), hex("C1 01"));

    server.shutdown().unwrap();
}

#[test]
fn unit_ids_zero_and_ff_are_both_answered_on_tcp() {
    let server = spawn(Config::tcp());
    let mut s = connect(server.local_addr());
    for unit in [0x00, 0x01, 0xFF] {
        s.write_all(&adu(9, unit, &hex("04 00 01 00 01"))).unwrap();
        assert_eq!(read_adu(&mut s), (9, unit, hex("04 02 00 01")));
    }
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = spawn(Config::tcp());
    let mut s = connect(server.local_addr());
    let mut batch = Vec::new();
    for tid in 1..=10u16 {
        batch.extend(adu(
            tid,
            1,
            &[0x04, 0x00, u8::try_from(tid).unwrap(), 0x00, 0x01],
        ));
    }
    s.write_all(&batch).unwrap();
    for tid in 1..=10u16 {
        let (got, _, pdu) = read_adu(&mut s);
        assert_eq!(got, tid);
        assert_eq!(pdu, vec![0x04, 0x02, 0x00, u8::try_from(tid).unwrap()]);
    }
}

#[test]
fn a_request_split_byte_by_byte_is_answered() {
    let server = spawn(Config::tcp());
    let mut s = connect(server.local_addr());
    for byte in adu(0x1501, 0xFF, &hex("04 00 04 00 01")) {
        s.write_all(&[byte]).unwrap();
        s.flush().unwrap();
    }
    assert_eq!(read_adu(&mut s), (0x1501, 0xFF, hex("04 02 00 04")));
}

#[test]
fn protocol_id_other_than_zero_is_dropped_silently() {
    let server = spawn(Config::tcp());
    let mut s = connect(server.local_addr());
    let mut foreign = adu(7, 1, &hex("04 00 01 00 01"));
    foreign[3] = 1;
    s.write_all(&foreign).unwrap();
    s.write_all(&adu(8, 1, &hex("04 00 02 00 01"))).unwrap();
    // The first answer is that of transaction 8: transaction 7 got none.
    assert_eq!(read_adu(&mut s), (8, 1, hex("04 02 00 02")));
}

#[test]
fn a_bad_length_field_closes_the_connection() {
    let server = spawn(Config::tcp());
    let mut s = connect(server.local_addr());
    s.write_all(&hex("00 01 00 00 03 00 01 03 00 00 00 01"))
        .unwrap();
    assert_closed(&mut s);
    // The server itself keeps serving.
    let mut other = connect(server.local_addr());
    assert_eq!(
        call(&mut other, 1, &hex("04 00 03 00 01")),
        hex("04 02 00 03")
    );
}

#[test]
fn half_a_frame_then_silence_is_closed_after_the_idle_timeout() {
    let server = spawn(Config {
        idle_timeout: Duration::from_millis(200),
        ..Config::tcp()
    });
    let mut s = connect(server.local_addr());
    s.write_all(&hex("00 01 00 00 00 06 01 03")).unwrap();
    assert_closed(&mut s);
}

#[test]
fn at_the_cap_the_least_recently_used_connection_makes_room() {
    let server = spawn(Config {
        max_connections: 2,
        ..Config::tcp()
    });
    let mut first = connect(server.local_addr());
    let mut second = connect(server.local_addr());
    // Answers prove both connections have their thread; `first` is then used again, so
    // `second` is the one whose last request lies furthest back.
    assert_eq!(
        call(&mut first, 1, &hex("04 00 01 00 01")),
        hex("04 02 00 01")
    );
    assert_eq!(
        call(&mut second, 1, &hex("04 00 02 00 01")),
        hex("04 02 00 02")
    );
    assert_eq!(
        call(&mut first, 2, &hex("04 00 03 00 01")),
        hex("04 02 00 03")
    );
    let mut newcomer = connect(server.local_addr());
    assert_eq!(
        call(&mut newcomer, 1, &hex("04 00 05 00 01")),
        hex("04 02 00 05")
    );
    assert_closed(&mut second);
    assert_eq!(
        call(&mut first, 3, &hex("04 00 04 00 01")),
        hex("04 02 00 04")
    );
}

#[test]
fn at_the_cap_a_connection_that_never_sent_a_request_goes_before_one_in_use() {
    let server = spawn(Config {
        max_connections: 2,
        ..Config::tcp()
    });
    let mut used = connect(server.local_addr());
    assert_eq!(
        call(&mut used, 1, &hex("04 00 01 00 01")),
        hex("04 02 00 01")
    );
    // Accepted after `used` was last served, but never used: it goes first.
    let mut silent = connect(server.local_addr());
    thread::sleep(Duration::from_millis(20));
    let mut newcomer = connect(server.local_addr());
    assert_eq!(
        call(&mut newcomer, 1, &hex("04 00 05 00 01")),
        hex("04 02 00 05")
    );
    assert_closed(&mut silent);
    assert_eq!(
        call(&mut used, 2, &hex("04 00 02 00 01")),
        hex("04 02 00 02")
    );
}

#[test]
fn a_connection_its_client_closed_holds_no_slot() {
    let server = spawn(Config {
        max_connections: 2,
        ..Config::tcp()
    });
    let mut first = connect(server.local_addr());
    let mut gone = connect(server.local_addr());
    assert_eq!(
        call(&mut first, 1, &hex("04 00 01 00 01")),
        hex("04 02 00 01")
    );
    // `gone` is served last, then its client closes it: its thread ends at once, the
    // watcher reaps it at its next tick (up to 250 ms later), and until then it must not
    // count against the cap.
    assert_eq!(
        call(&mut gone, 1, &hex("04 00 02 00 01")),
        hex("04 02 00 02")
    );
    drop(gone);
    thread::sleep(Duration::from_millis(20));
    let mut newcomer = connect(server.local_addr());
    assert_eq!(
        call(&mut newcomer, 1, &hex("04 00 05 00 01")),
        hex("04 02 00 05")
    );
    assert_eq!(
        call(&mut first, 2, &hex("04 00 03 00 01")),
        hex("04 02 00 03")
    );
}

#[test]
fn thirty_two_concurrent_clients_write_and_read_back_distinct_ranges() {
    let server = spawn(Config {
        max_connections: 40,
        ..Config::tcp()
    });
    let addr = server.local_addr();
    let clients: Vec<_> = (0..32u16)
        .map(|client| {
            thread::spawn(move || {
                let mut s = connect(addr);
                let start = client * 100;
                for round in 0..20u16 {
                    let values: Vec<u16> =
                        (0..50).map(|i| client ^ (round << 8) ^ (i << 4)).collect();
                    let mut pdu = vec![0x10];
                    pdu.extend_from_slice(&start.to_be_bytes());
                    pdu.extend_from_slice(&50u16.to_be_bytes());
                    pdu.push(100);
                    for value in &values {
                        pdu.extend_from_slice(&value.to_be_bytes());
                    }
                    let tid = round * 2;
                    let mut expected = vec![0x10];
                    expected.extend_from_slice(&start.to_be_bytes());
                    expected.extend_from_slice(&50u16.to_be_bytes());
                    assert_eq!(call(&mut s, tid, &pdu), expected);

                    let mut read = vec![0x03];
                    read.extend_from_slice(&start.to_be_bytes());
                    read.extend_from_slice(&50u16.to_be_bytes());
                    let response = call(&mut s, tid + 1, &read);
                    let mut expected = vec![0x03, 100];
                    for value in &values {
                        expected.extend_from_slice(&value.to_be_bytes());
                    }
                    assert_eq!(response, expected, "client {client} round {round}");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    server.shutdown().unwrap();
}

#[test]
fn shutdown_closes_connections_and_joins_everything() {
    let server = spawn(Config::tcp());
    let addr = server.local_addr();
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(call(&mut a, 1, &hex("04 00 01 00 01")), hex("04 02 00 01"));
    assert_eq!(call(&mut b, 1, &hex("04 00 01 00 01")), hex("04 02 00 01"));
    // Half a request on `b`: its thread is mid-frame when the shutdown comes.
    b.write_all(&hex("00 02 00 00")).unwrap();
    server.shutdown().expect("clean shutdown");
    assert_closed(&mut a);
    assert_closed(&mut b);
    // The listener is gone with the accept thread.
    assert!(TcpStream::connect(addr).is_err());
}

fn rtu(bytes: &str) -> Vec<u8> {
    let mut frame = hex(bytes);
    let crc = crc16_modbus(&frame);
    frame.extend_from_slice(&crc);
    frame
}

/// Reads exactly `len` bytes of an RTU-over-TCP response.
fn read_rtu(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    stream.read_exact(&mut out).expect("rtu response");
    out
}

#[test]
fn rtu_over_tcp_answers_with_the_right_crc() {
    let server = spawn(Config::rtu_over_tcp(1));
    let mut s = connect(server.local_addr());
    // The specification's FC 03 request (registers 0x6B..0x6D hold 0 in the simulator).
    s.write_all(&hex("01 03 00 6B 00 03 74 17")).unwrap();
    assert_eq!(read_rtu(&mut s, 11), rtu("01 03 06 00 00 00 00 00 00"));
    s.write_all(&rtu("01 04 00 07 00 02")).unwrap();
    assert_eq!(read_rtu(&mut s, 9), rtu("01 04 04 00 07 00 08"));
}

#[test]
fn rtu_over_tcp_ignores_bad_crc_and_foreign_units() {
    let server = spawn(Config::rtu_over_tcp(1));
    let mut s = connect(server.local_addr());
    let mut corrupted = rtu("01 04 00 01 00 01");
    corrupted[7] ^= 0xFF;
    s.write_all(&corrupted).unwrap();
    s.write_all(&rtu("02 04 00 02 00 01")).unwrap();
    s.write_all(&rtu("01 04 00 03 00 01")).unwrap();
    // Only the last frame is answered.
    assert_eq!(read_rtu(&mut s, 7), rtu("01 04 02 00 03"));
    // Broadcasts are executed and never answered.
    s.write_all(&rtu("00 06 00 09 00 2A")).unwrap();
    s.write_all(&rtu("01 03 00 09 00 01")).unwrap();
    assert_eq!(read_rtu(&mut s, 7), rtu("01 03 02 00 2A"));
}

#[test]
fn serial_line_framings_are_refused_by_bind() {
    for framing in [Framing::Rtu, Framing::Ascii] {
        let config = Config::with_session(ServerConfig {
            framing,
            ..ServerConfig::tcp()
        });
        let error = TcpServer::bind("127.0.0.1:0", config).expect_err("serial framing on TCP");
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{framing:?}");
    }
    // Both TCP framings bind.
    for framing in [Framing::Tcp, Framing::RtuOverTcp] {
        let config = Config::with_session(ServerConfig {
            framing,
            ..ServerConfig::tcp()
        });
        assert!(
            TcpServer::bind("127.0.0.1:0", config).is_ok(),
            "{framing:?}"
        );
    }
}

/// A request stream with pipelined reads (some of the largest size, so that one read's answers
/// exceed one coalesced write), a write read back, an exception and an ADU with a foreign
/// protocol id (dropped silently). Returns the bytes and how many responses they get.
fn mixed_requests() -> (Vec<u8>, usize) {
    let mut stream = Vec::new();
    let mut answered = 0;
    for tid in 0..48u16 {
        let pdu = match tid % 6 {
            // 125 holding registers: a 259-byte response.
            0 => hex("03 00 00 00 7D"),
            1 => vec![0x04, 0x00, u8::try_from(tid).unwrap(), 0x00, 0x02],
            2 => vec![0x06, 0x00, u8::try_from(tid).unwrap(), 0x12, 0x34],
            3 => vec![0x03, 0x00, u8::try_from(tid - 1).unwrap(), 0x00, 0x01],
            // Exception 02: beyond the map.
            4 => hex("04 FF F0 00 20"),
            _ => hex("01 00 00 00 10"),
        };
        let mut adu = adu(tid, 1, &pdu);
        if tid == 29 {
            adu[3] = 1; // protocol id 1: no response
        } else {
            answered += 1;
        }
        stream.extend(adu);
    }
    (stream, answered)
}

/// Writes `requests` in chunks of the given sizes (cycled), reads `count` responses.
fn exchange(
    config: Config,
    requests: &[u8],
    chunks: &[usize],
    count: usize,
) -> Vec<(u16, u8, Vec<u8>)> {
    let server = spawn(config);
    let mut s = connect(server.local_addr());
    let mut rest = requests;
    for &size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
        rest = tail;
    }
    (0..count).map(|_| read_adu(&mut s)).collect()
}

#[test]
fn coalesced_responses_match_one_write_per_response_however_requests_are_cut() {
    let (requests, count) = mixed_requests();
    let expected = exchange(Config::tcp(), &requests, &[requests.len()], count);
    assert_eq!(expected.len(), count);
    assert!(expected.iter().all(|(tid, _, _)| *tid != 29));
    assert_eq!(expected[0].2.len(), 2 + 250);
    let coalesced = Config {
        coalesce_responses: true,
        ..Config::tcp()
    };
    assert!(coalesced.coalesce_responses);
    assert!(!Config::tcp().coalesce_responses);
    // All in one write; byte by byte; cut at irregular places (ADUs split and merged).
    let cuts: [&[usize]; 4] = [
        &[requests.len()],
        &[1],
        &[5, 17, 3, 40, 12, 1, 29, 64],
        &[7, 120, 2, 33, 500, 11],
    ];
    for chunks in cuts {
        assert_eq!(
            exchange(coalesced, &requests, chunks, count),
            expected,
            "chunks {chunks:?}"
        );
    }
}

#[test]
fn coalesced_responses_on_rtu_over_tcp_answer_every_frame() {
    let config = Config {
        coalesce_responses: true,
        ..Config::rtu_over_tcp(1)
    };
    let server = spawn(config);
    let mut s = connect(server.local_addr());
    let mut batch = rtu("01 04 00 07 00 02");
    batch.extend(rtu("02 04 00 02 00 01")); // foreign unit: ignored
    batch.extend(rtu("01 03 00 6B 00 03"));
    s.write_all(&batch).unwrap();
    assert_eq!(read_rtu(&mut s, 9), rtu("01 04 04 00 07 00 08"));
    assert_eq!(read_rtu(&mut s, 11), rtu("01 03 06 00 00 00 00 00 00"));
}
