//! End to end over 127.0.0.1: the blocking [`Client`] against the real [`TcpServer`] serving the
//! simulator. Every public function code once; 32 concurrent clients writing and reading back
//! their own ranges; a connection cut in the middle of a response and a server restarted on the
//! same port, after which the client's next call reconnects and succeeds; pipelining through the
//! real server, also with requests and responses coalesced into one write each. Every loop is
//! bounded; no assertion depends on timing.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use modbus_stack::client::{Client, DiagnosticsReply, Error};
use modbus_stack::pdu::{
    DiagnosticsRequest, ExceptionCode, FileReadGroup, FileRecord, ReadDeviceIdCode, Registers,
    Request, Response, device_id,
};
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::sim;
use modbus_stack::transport::tcp::{self, TcpTransport};

/// Unit id used throughout (the simulator answers every unit id on TCP).
const UNIT: u8 = 1;
/// Concurrent clients in the concurrency test.
const CLIENTS: u16 = 32;
/// Write/read-back rounds per concurrent client.
const ROUNDS: u16 = 10;
/// Holding registers and coils owned by each concurrent client.
const SPAN: u16 = 100;

/// The simulator on `addr` (port 0: an ephemeral port), room for every concurrent client.
fn start_server(addr: impl std::net::ToSocketAddrs) -> SpawnedServer {
    start_server_with(addr, Config::tcp())
}

/// As [`start_server`], on top of `config`.
fn start_server_with(addr: impl std::net::ToSocketAddrs, config: Config) -> SpawnedServer {
    let config = Config {
        max_connections: usize::from(CLIENTS) + 8,
        ..config
    };
    TcpServer::bind(addr, config)
        .and_then(|server| server.spawn(sim::unit_map()))
        .expect("start the simulator")
}

/// A client with short reconnection backoff (the tests restart servers).
fn connect(addr: SocketAddr) -> Client<TcpTransport> {
    connect_with(addr, false)
}

/// As [`connect`], writing the requests of a pipeline together when `coalesce_requests`.
fn connect_with(addr: SocketAddr, coalesce_requests: bool) -> Client<TcpTransport> {
    let config = tcp::Config {
        reconnect_attempts: 20,
        reconnect_backoff: Duration::from_millis(10),
        reconnect_max_backoff: Duration::from_millis(100),
        coalesce_requests,
        ..tcp::Config::default()
    };
    let mut client = Client::tcp(addr, config).expect("connect");
    // Generous, so a loaded CI machine does not turn a slow answer into a failure.
    client.set_response_timeout(Duration::from_secs(10));
    client
}

#[test]
fn every_function_code_once() {
    let server = start_server("127.0.0.1:0");
    let mut client = connect(server.local_addr());

    // FC 01, 05, 15: coils.
    client.write_single_coil(UNIT, 3, true).unwrap();
    client
        .write_multiple_coils(UNIT, 4, &[true, false, true])
        .unwrap();
    assert_eq!(
        client.read_coils(UNIT, 2, 6).unwrap(),
        [false, true, true, false, true, false]
    );

    // FC 02: discrete input i is on when i % 3 == 0.
    let inputs = client.read_discrete_inputs(UNIT, 10, 6).unwrap();
    let expected: Vec<bool> = (10..16).map(sim::discrete_input).collect();
    assert_eq!(inputs, expected);

    // FC 03, 06, 16: holding registers.
    client.write_single_register(UNIT, 20, 0x1234).unwrap();
    client
        .write_multiple_registers(UNIT, 21, &[0xBEEF, 42])
        .unwrap();
    assert_eq!(
        client.read_holding_registers(UNIT, 20, 3).unwrap(),
        [0x1234, 0xBEEF, 42]
    );

    // FC 04: input register i holds i.
    assert_eq!(
        client.read_input_registers(UNIT, 500, 3).unwrap(),
        [500, 501, 502]
    );

    // FC 07.
    assert_eq!(
        client.read_exception_status(UNIT).unwrap(),
        sim::EXCEPTION_STATUS
    );

    // FC 08: return query data echoes.
    assert_eq!(
        client
            .diagnostics(UNIT, DiagnosticsRequest::ReturnQueryData { data: &[9, 8] })
            .unwrap(),
        DiagnosticsReply::ReturnQueryData(vec![9, 8])
    );

    // FC 11, 12.
    let counter = client.get_comm_event_counter(UNIT).unwrap();
    assert_eq!(counter.status, 0);
    let log = client.get_comm_event_log(UNIT).unwrap();
    assert_eq!(log.status, 0);

    // FC 17.
    assert_eq!(client.report_server_id(UNIT).unwrap(), sim::SERVER_ID);

    // FC 21, then 20: file records.
    let records = [FileRecord {
        file_number: 2,
        record_number: 7,
        values: Registers::from_words(&[0xAAAA, 0x5555, 3]),
    }];
    client.write_file_record(UNIT, &records).unwrap();
    let groups = [FileReadGroup {
        file_number: 2,
        record_number: 7,
        record_length: 3,
    }];
    assert_eq!(
        client.read_file_record(UNIT, &groups).unwrap(),
        [vec![0xAAAA, 0x5555, 3]]
    );

    // FC 22: the specification's example, 0x12 -> 0x17.
    client.write_single_register(UNIT, 30, 0x12).unwrap();
    client
        .mask_write_register(UNIT, 30, 0x00F2, 0x0025)
        .unwrap();
    assert_eq!(client.read_holding_registers(UNIT, 30, 1).unwrap(), [0x17]);

    // FC 23: the write happens before the read.
    assert_eq!(
        client
            .read_write_multiple_registers(UNIT, 40, 3, 41, &[7, 8])
            .unwrap(),
        [0, 7, 8]
    );

    // FC 24.
    assert_eq!(
        client.read_fifo_queue(UNIT, sim::FIFO_ADDRESS).unwrap(),
        sim::FIFO_VALUES
    );

    // FC 43/14.
    let info = client
        .read_device_identification(UNIT, ReadDeviceIdCode::BasicStream, 0)
        .unwrap();
    assert_eq!(
        info.get(device_id::VENDOR_NAME),
        Some(sim::VENDOR_NAME.as_bytes())
    );
    assert_eq!(
        info.get(device_id::PRODUCT_CODE),
        Some(sim::PRODUCT_CODE.as_bytes())
    );
    assert_eq!(
        info.get(device_id::MAJOR_MINOR_REVISION),
        Some(sim::REVISION.as_bytes())
    );

    // An exception: the tables end at 9999.
    let error = client.read_holding_registers(UNIT, 9999, 2).unwrap_err();
    assert!(matches!(error, Error::Exception(_)), "{error:?}");
    assert_eq!(error.exception(), Some(ExceptionCode::IllegalDataAddress));

    drop(client);
    server.shutdown().unwrap();
}

/// The values client `id` writes in `round` (distinct per client and round).
fn pattern(id: u16, round: u16) -> Vec<u16> {
    (0..SPAN)
        .map(|i| id.wrapping_mul(1000) ^ round.wrapping_mul(31) ^ i.wrapping_mul(7))
        .collect()
}

#[test]
fn concurrent_clients_read_back_their_own_writes() {
    let server = start_server("127.0.0.1:0");
    let addr = server.local_addr();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            thread::spawn(move || {
                let mut client = connect(addr);
                let base = id * SPAN;
                for round in 0..ROUNDS {
                    let values = pattern(id, round);
                    // 100 registers: one FC 16 of 100 (≤ 123).
                    client
                        .write_multiple_registers(UNIT, base, &values)
                        .unwrap();
                    client
                        .write_single_register(UNIT, base + round, !values[usize::from(round)])
                        .unwrap();
                    let mut expected = values.clone();
                    expected[usize::from(round)] = !values[usize::from(round)];
                    assert_eq!(
                        client.read_holding_registers(UNIT, base, SPAN).unwrap(),
                        expected,
                        "client {id} round {round}: holding registers"
                    );

                    let coils: Vec<bool> = values.iter().map(|value| value & 1 == 1).collect();
                    client.write_multiple_coils(UNIT, base, &coils).unwrap();
                    client
                        .write_single_coil(UNIT, base + round, !coils[usize::from(round)])
                        .unwrap();
                    let mut expected = coils.clone();
                    expected[usize::from(round)] = !coils[usize::from(round)];
                    assert_eq!(
                        client.read_coils(UNIT, base, SPAN).unwrap(),
                        expected,
                        "client {id} round {round}: coils"
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a client thread failed");
    }

    // Every range holds its owner's last round: nobody wrote over anybody else.
    let mut client = connect(addr);
    for id in 0..CLIENTS {
        let last = ROUNDS - 1;
        let mut values = pattern(id, last);
        values[usize::from(last)] = !values[usize::from(last)];
        assert_eq!(
            client
                .read_holding_registers(UNIT, id * SPAN, SPAN)
                .unwrap(),
            values
        );
    }
    drop(client);
    server.shutdown().unwrap();
}

/// Reads one MBAP ADU (header and the length field's bytes); `None` at end of stream or error.
fn read_adu(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut adu = vec![0u8; 7];
    stream.read_exact(&mut adu).ok()?;
    let len = usize::from(u16::from_be_bytes([adu[4], adu[5]]));
    adu.resize(6 + len.max(1), 0);
    stream.read_exact(&mut adu[7..]).ok()?;
    Some(adu)
}

/// A proxy in front of `upstream` that passes whole request/response pairs, except that when
/// `cut` is set it passes half of the next response and then closes both connections.
/// Returns its address and the number of connections it has accepted.
fn cutting_proxy(upstream: SocketAddr, cut: Arc<AtomicBool>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    thread::spawn(move || {
        // Bounded: the test opens only a few connections; the thread ends with the process.
        for client in listener.incoming().take(8) {
            let Ok(mut client) = client else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let Ok(mut server) = TcpStream::connect(upstream) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            while let Some(request) = read_adu(&mut client) {
                if server.write_all(&request).is_err() {
                    break;
                }
                let Some(response) = read_adu(&mut server) else {
                    break;
                };
                if cut.swap(false, Ordering::SeqCst) {
                    let _ = client.write_all(&response[..response.len() / 2]);
                    break;
                }
                if client.write_all(&response).is_err() {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    });
    (addr, accepted)
}

#[test]
fn connection_cut_mid_response_then_next_call_reconnects() {
    let server = start_server("127.0.0.1:0");
    let cut = Arc::new(AtomicBool::new(false));
    let (proxy, accepted) = cutting_proxy(server.local_addr(), Arc::clone(&cut));
    let mut client = connect(proxy);
    client.write_single_register(UNIT, 7, 70).unwrap();

    // A write whose response is cut: it is not retried (it may have been applied, and was).
    cut.store(true, Ordering::SeqCst);
    let error = client.write_single_register(UNIT, 8, 80).unwrap_err();
    assert!(matches!(error, Error::Io(_)), "{error:?}");
    // The next call reconnects and succeeds, and sees both writes.
    assert_eq!(client.read_holding_registers(UNIT, 7, 2).unwrap(), [70, 80]);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // A read whose response is cut is retried on a new connection within the same call.
    cut.store(true, Ordering::SeqCst);
    assert_eq!(
        client.read_input_registers(UNIT, 100, 4).unwrap(),
        [100, 101, 102, 103]
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(client.read_holding_registers(UNIT, 8, 1).unwrap(), [80]);

    drop(client);
    server.shutdown().unwrap();
}

#[test]
fn server_restarted_on_the_same_port_then_next_call_reconnects() {
    let server = start_server("127.0.0.1:0");
    let addr = server.local_addr();
    let mut client = connect(addr);
    client.write_single_register(UNIT, 1, 11).unwrap();
    assert_eq!(client.read_holding_registers(UNIT, 1, 1).unwrap(), [11]);

    // The server goes away (closing our connection) and a fresh one takes its port.
    server.shutdown().unwrap();
    let server = start_server(addr);
    assert_eq!(server.local_addr(), addr);

    // A read is retried over a new connection; the fresh simulator starts from zero.
    assert_eq!(client.read_holding_registers(UNIT, 1, 1).unwrap(), [0]);
    client.write_single_register(UNIT, 1, 12).unwrap();
    assert_eq!(client.read_holding_registers(UNIT, 1, 1).unwrap(), [12]);

    drop(client);
    server.shutdown().unwrap();
}

#[test]
fn pipelining_through_the_real_server() {
    assert_eq!(
        pipeline_through_the_real_server(false, false),
        Outcomes::expected()
    );
}

#[test]
fn pipelining_with_coalesced_requests_and_responses_gives_the_same_results() {
    // Both opt-ins on, and each alone.
    for (requests, responses) in [(true, true), (true, false), (false, true)] {
        assert_eq!(
            pipeline_through_the_real_server(requests, responses),
            Outcomes::expected(),
            "coalesced requests {requests}, coalesced responses {responses}"
        );
    }
}

/// What [`pipeline_through_the_real_server`] saw: the 40-request batch and the mixed batch
/// (values, or the exception code).
#[derive(Debug, PartialEq, Eq)]
struct Outcomes {
    batch: Vec<(usize, Vec<u16>)>,
    mixed: Vec<Result<Vec<u16>, Option<ExceptionCode>>>,
}

impl Outcomes {
    fn expected() -> Self {
        Self {
            batch: (0..40u16)
                .map(|i| {
                    let values = if i % 2 == 0 {
                        vec![i * 10, i * 10 + 1, i * 10 + 2]
                    } else {
                        vec![1000 + i, 1001 + i]
                    };
                    (usize::from(i), values)
                })
                .collect(),
            mixed: vec![
                Ok(vec![1]),
                Err(Some(ExceptionCode::IllegalDataAddress)),
                Ok(vec![2]),
            ],
        }
    }
}

/// 40 requests: more than the 16 the session keeps in flight, so it refills as answers come.
/// Reads registers 2000.. as written by [`pipeline_through_the_real_server`].
fn batch() -> Vec<Request<'static>> {
    (0..40u16)
        .map(|i| {
            if i % 2 == 0 {
                Request::ReadInputRegisters {
                    address: i * 10,
                    quantity: 3,
                }
            } else {
                Request::ReadHoldingRegisters {
                    address: 2000 + i,
                    quantity: 2,
                }
            }
        })
        .collect()
}

/// The pipeline callback of [`batch`]: the index and the register values.
fn collect(index: usize, response: &Response<'_>) -> Result<(usize, Vec<u16>), Error> {
    match response {
        Response::ReadInputRegisters { values } | Response::ReadHoldingRegisters { values } => {
            Ok((index, values.iter().collect()))
        }
        _ => Err(Error::NoResponse),
    }
}

/// Pipelines through the simulator, the client coalescing its requests and the server its
/// responses as told.
fn pipeline_through_the_real_server(requests: bool, responses: bool) -> Outcomes {
    let server = start_server_with(
        "127.0.0.1:0",
        Config {
            coalesce_responses: responses,
            ..Config::tcp()
        },
    );
    let mut client = connect_with(server.local_addr(), requests);
    let written: Vec<u16> = (0..64).map(|i| 1000 + i).collect();
    client
        .write_multiple_registers(UNIT, 2000, &written)
        .unwrap();
    let requests = batch();
    let results = client.pipeline(UNIT, &requests, collect).unwrap();
    assert_eq!(results.len(), requests.len());
    let batch = results.into_iter().map(Result::unwrap).collect();

    // A failing request in the batch fails alone.
    let mixed = [
        Request::ReadInputRegisters {
            address: 1,
            quantity: 1,
        },
        Request::ReadInputRegisters {
            address: 9999,
            quantity: 5,
        },
        Request::ReadInputRegisters {
            address: 2,
            quantity: 1,
        },
    ];
    let mixed = client
        .pipeline(UNIT, &mixed, |_, response| match response {
            Response::ReadInputRegisters { values } => Ok(values.iter().collect::<Vec<u16>>()),
            _ => Err(Error::NoResponse),
        })
        .unwrap()
        .into_iter()
        .map(|result| result.map_err(|error| error.exception()))
        .collect();

    drop(client);
    server.shutdown().unwrap();
    Outcomes { batch, mixed }
}
