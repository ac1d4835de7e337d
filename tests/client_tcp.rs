//! The blocking client against test servers on 127.0.0.1: every function code, exceptions,
//! pipelining with reordered answers, stale responses, timeouts, reconnection, and broadcast on
//! RTU over TCP; and, over a socket-less transport that records every write, pipelining with
//! and without coalesced requests. Every loop is bounded; no assertion depends on timing.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use modbus_stack::client::{Client, DiagnosticsReply, Error};
use modbus_stack::frame::{Framing, Role, Status, rtu, tcp};
use modbus_stack::pdu::{
    DiagnosticCounter, DiagnosticsRequest, ExceptionCode, FileReadGroup, FileRecord,
    ReadDeviceIdCode, Registers, Request, Response,
};
use modbus_stack::server::{DataStore, UnitMap};
use modbus_stack::session::client::RetryPolicy;
use modbus_stack::session::server::{PduServer, Reply, UnitIds};
use modbus_stack::time::Instant;
use modbus_stack::transport::{self, Transport};

/// A request as the test server saw it.
struct Received {
    transaction_id: u16,
    unit_id: u8,
    pdu: Vec<u8>,
}

/// Reads the next complete MBAP ADU from `stream`; `None` when the client closed.
fn read_adu(stream: &mut TcpStream, decoder: &mut tcp::Decoder) -> Option<Received> {
    let mut buf = [0u8; 260];
    loop {
        if let Some(frame) = decoder.poll_frame() {
            let adu = frame.ok()?;
            return Some(Received {
                transaction_id: adu.transaction_id(),
                unit_id: adu.unit_id(),
                pdu: adu.pdu().to_vec(),
            });
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        decoder.push(Instant::now(), &buf[..n]);
    }
}

/// The MBAP response the server core gives to `request`, if any.
fn answer(map: &mut UnitMap, server: &mut PduServer, request: &Received) -> Option<Vec<u8>> {
    let mut pdu = [0u8; 253];
    let Reply::Send(len) = server.respond(request.unit_id, &request.pdu, map, &mut pdu) else {
        return None;
    };
    let mut adu = [0u8; 260];
    let len = tcp::encode(
        request.transaction_id,
        request.unit_id,
        &pdu[..len],
        &mut adu,
    )
    .unwrap();
    Some(adu[..len].to_vec())
}

/// Starts a listener whose connections are each served by `serve` (connection number, stream).
fn listen(serve: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for (number, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve(number, stream));
        }
    });
    addr
}

fn store() -> DataStore {
    DataStore::builder()
        .coils(100)
        .discrete_inputs(100)
        .holding_registers(100)
        .input_registers(100)
        .fifo_queue(50, vec![7, 8, 9])
        .file(1, 100)
        .device_identification(0x00, "Acme")
        .device_identification(0x01, "PLC-1")
        .device_identification(0x02, "1.2")
        .exception_status(0x55)
        .server_id([0x11, 0xFF])
        .build()
}

/// A well-behaved Modbus TCP server over `store`.
fn serve_store(store: DataStore) -> SocketAddr {
    listen(move |_, mut stream| {
        let mut map = UnitMap::serving_all(store.clone());
        let mut server = PduServer::tcp();
        let mut decoder = tcp::Decoder::new();
        while let Some(request) = read_adu(&mut stream, &mut decoder) {
            if let Some(response) = answer(&mut map, &mut server, &request) {
                if stream.write_all(&response).is_err() {
                    return;
                }
            }
        }
    })
}

fn config() -> transport::tcp::Config {
    transport::tcp::Config {
        connect_timeout: Duration::from_secs(5),
        ..transport::tcp::Config::default()
    }
}

#[test]
// One server, one walk through the whole function table: splitting it would only add setup.
#[allow(clippy::too_many_lines)]
fn every_function_code_round_trips() {
    let store = store();
    store
        .write_discrete_inputs(3, &[true, false, true])
        .unwrap();
    store.write_input_registers(4, &[40, 41]).unwrap();
    let mut client = Client::tcp(serve_store(store.clone()), config()).unwrap();

    client.write_single_coil(1, 0, true).unwrap();
    client
        .write_multiple_coils(1, 1, &[false, true, true])
        .unwrap();
    assert_eq!(
        client.read_coils(1, 0, 4).unwrap(),
        [true, false, true, true]
    );
    let mut coils = [false; 4];
    client.read_coils_into(1, 0, &mut coils).unwrap();
    assert_eq!(coils, [true, false, true, true]);

    assert_eq!(
        client.read_discrete_inputs(1, 3, 3).unwrap(),
        [true, false, true]
    );
    let mut inputs = [false; 3];
    client.read_discrete_inputs_into(1, 3, &mut inputs).unwrap();
    assert_eq!(inputs, [true, false, true]);

    client.write_single_register(1, 10, 0x1234).unwrap();
    client.write_multiple_registers(1, 11, &[1, 2, 3]).unwrap();
    assert_eq!(
        client.read_holding_registers(1, 10, 4).unwrap(),
        [0x1234, 1, 2, 3]
    );
    let mut registers = [0u16; 4];
    client
        .read_holding_registers_into(1, 10, &mut registers)
        .unwrap();
    assert_eq!(registers, [0x1234, 1, 2, 3]);

    assert_eq!(client.read_input_registers(1, 4, 2).unwrap(), [40, 41]);
    let mut input_registers = [0u16; 2];
    client
        .read_input_registers_into(1, 4, &mut input_registers)
        .unwrap();
    assert_eq!(input_registers, [40, 41]);

    // (0x1234 & 0x00F2) | (0x0025 & !0x00F2) = 0x0030 | 0x0005
    client.mask_write_register(1, 10, 0x00F2, 0x0025).unwrap();
    assert_eq!(client.read_holding_registers(1, 10, 1).unwrap(), [0x0035]);

    assert_eq!(
        client
            .read_write_multiple_registers(1, 20, 2, 20, &[5, 6])
            .unwrap(),
        [5, 6]
    );
    assert_eq!(client.read_fifo_queue(1, 50).unwrap(), [7, 8, 9]);

    let record = [FileRecord {
        file_number: 1,
        record_number: 2,
        values: Registers::from_words(&[0xAAAA, 0xBBBB]),
    }];
    client.write_file_record(1, &record).unwrap();
    let group = [FileReadGroup {
        file_number: 1,
        record_number: 2,
        record_length: 2,
    }];
    assert_eq!(
        client.read_file_record(1, &group).unwrap(),
        [vec![0xAAAA, 0xBBBB]]
    );

    assert_eq!(client.read_exception_status(1).unwrap(), 0x55);
    assert_eq!(
        client
            .diagnostics(1, DiagnosticsRequest::ReturnQueryData { data: &[1, 2] })
            .unwrap(),
        DiagnosticsReply::ReturnQueryData(vec![1, 2])
    );
    assert!(matches!(
        client
            .diagnostics(
                1,
                DiagnosticsRequest::ReturnCounter(DiagnosticCounter::BusMessage)
            )
            .unwrap(),
        DiagnosticsReply::ReturnCounter { .. }
    ));
    let counter = client.get_comm_event_counter(1).unwrap();
    assert_eq!(counter.status, 0);
    let log = client.get_comm_event_log(1).unwrap();
    assert_eq!(log.status, 0);
    assert_eq!(client.report_server_id(1).unwrap(), [0x11, 0xFF]);

    let info = client
        .read_device_identification(1, ReadDeviceIdCode::BasicStream, 0)
        .unwrap();
    assert_eq!(info.get(0x00), Some(&b"Acme"[..]));
    assert_eq!(info.get(0x01), Some(&b"PLC-1"[..]));
    assert_eq!(info.get(0x02), Some(&b"1.2"[..]));

    // The generic call, and values as the store sees them.
    let request = Request::ReadHoldingRegisters {
        address: 11,
        quantity: 2,
    };
    let sum = client
        .call(1, &request, |response| match response {
            Response::ReadHoldingRegisters { values } => {
                Ok(values.iter().map(u32::from).sum::<u32>())
            }
            _ => unreachable!(),
        })
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(store.holding_registers(11, 3), Ok(vec![1, 2, 3]));
}

#[test]
fn exceptions_surface_with_their_code() {
    let mut client = Client::tcp(serve_store(store()), config()).unwrap();
    let error = client.read_holding_registers(1, 99, 2).unwrap_err();
    assert_eq!(error.exception(), Some(ExceptionCode::IllegalDataAddress));
    let Error::Exception(exception) = error else {
        panic!("{error:?}")
    };
    assert_eq!(exception.function.value(), 0x03);
    // A request the specification forbids is refused before sending.
    assert!(matches!(
        client.read_holding_registers(1, 0, 200),
        Err(Error::InvalidRequest(_))
    ));
    // The client still works afterwards.
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [0]);
}

#[test]
fn pipelined_requests_answered_out_of_order() {
    const COUNT: usize = 5;
    let store = store();
    store
        .write_holding_registers(0, &[10, 11, 12, 13, 14])
        .unwrap();
    let served = store.clone();
    let addr = listen(move |_, mut stream| {
        let mut map = UnitMap::serving_all(served.clone());
        let mut server = PduServer::tcp();
        let mut decoder = tcp::Decoder::new();
        loop {
            // Collect the whole batch, then answer it backwards.
            let mut batch = Vec::new();
            for _ in 0..COUNT {
                let Some(request) = read_adu(&mut stream, &mut decoder) else {
                    return;
                };
                batch.push(answer(&mut map, &mut server, &request).unwrap());
            }
            for response in batch.iter().rev() {
                stream.write_all(response).unwrap();
            }
        }
    });
    let mut client = Client::tcp(addr, config()).unwrap();
    let requests: Vec<Request<'static>> = (0..u16::try_from(COUNT).unwrap())
        .map(|address| Request::ReadHoldingRegisters {
            address,
            quantity: 1,
        })
        .collect();
    let results = client
        .pipeline(1, &requests, |index, response| match response {
            Response::ReadHoldingRegisters { values } => Ok((index, values.get(0).unwrap())),
            _ => unreachable!(),
        })
        .unwrap();
    let values: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, [(0, 10), (1, 11), (2, 12), (3, 13), (4, 14)]);
}

#[test]
fn stale_response_is_discarded() {
    let store = store();
    store.write_holding_registers(0, &[42]).unwrap();
    let served = store.clone();
    let addr = listen(move |_, mut stream| {
        let mut map = UnitMap::serving_all(served.clone());
        let mut server = PduServer::tcp();
        let mut decoder = tcp::Decoder::new();
        while let Some(request) = read_adu(&mut stream, &mut decoder) {
            // First a late answer to an earlier transaction, with a wrong value...
            let mut stale = [0u8; 260];
            let len = tcp::encode(
                request.transaction_id.wrapping_sub(1),
                request.unit_id,
                &[0x03, 0x02, 0xDE, 0xAD],
                &mut stale,
            )
            .unwrap();
            stream.write_all(&stale[..len]).unwrap();
            // ... then the real one.
            let response = answer(&mut map, &mut server, &request).unwrap();
            stream.write_all(&response).unwrap();
        }
    });
    let mut client = Client::tcp(addr, config()).unwrap();
    for _ in 0..3 {
        assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [42]);
    }
}

#[test]
fn silent_server_times_out() {
    let addr = listen(|_, mut stream| {
        let mut decoder = tcp::Decoder::new();
        while read_adu(&mut stream, &mut decoder).is_some() {}
    });
    let mut client = Client::tcp(addr, config()).unwrap();
    client.set_response_timeout(Duration::from_millis(50));
    client.set_retry_policy(RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        retry_writes: false,
    });
    assert!(matches!(
        client.read_holding_registers(1, 0, 1),
        Err(Error::Timeout { attempts: 2 })
    ));
    // Writes are not retried.
    assert!(matches!(
        client.write_single_register(1, 0, 1),
        Err(Error::Timeout { attempts: 1 })
    ));
}

#[test]
fn a_server_that_stops_reading_cannot_hang_a_write() {
    // The server accepts and never reads. Once its receive buffer (made small) and our send
    // buffer are full, the next write blocks: the write timeout ends it with an I/O error.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(4).unwrap();
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        // Connections are held open, unread, until the test ends.
        let held: Vec<TcpStream> = listener.incoming().take(2).flatten().collect();
        thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let config = transport::tcp::Config {
        write_timeout: Duration::from_millis(100),
        ..config()
    };
    let mut client = Client::tcp(addr, config).unwrap();
    client.set_response_timeout(Duration::from_millis(1));
    client.set_retry_policy(RetryPolicy::NONE);
    let values = [0x5A5Au16; 123];
    let batch: Vec<Request<'_>> = (0..16)
        .map(|_| Request::WriteMultipleRegisters {
            address: 0,
            values: Registers::from_words(&values),
        })
        .collect();
    let started = std::time::Instant::now();
    // 16 writes of 259 bytes per millisecond fill the socket's largest send buffer (4 MiB by
    // default on Linux) in about a second; the bounds only keep a failure from running on.
    let mut failure = None;
    for _ in 0..20_000 {
        let results = client
            .pipeline(1, &batch, |_, _| Ok(()))
            .expect("the link reopens after the failed write");
        failure = results.into_iter().find_map(|result| match result {
            Err(Error::Timeout { .. }) => None,
            other => Some(other),
        });
        if failure.is_some() || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    match failure {
        Some(Err(Error::Io(error))) => assert!(
            matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{error:?}"
        ),
        other => panic!("expected the blocked write to fail, got {other:?}"),
    }
}

/// [`config`] with `close_on_timeout`.
fn closing_config() -> transport::tcp::Config {
    transport::tcp::Config {
        close_on_timeout: true,
        ..config()
    }
}

/// A server whose first connection reads requests and never answers; later connections are
/// served from `store`. Returns its address and the number of connections it accepted.
fn silent_first_connection(store: DataStore) -> (SocketAddr, Arc<AtomicUsize>) {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let addr = listen(move |number, mut stream| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut map = UnitMap::serving_all(store.clone());
        let mut server = PduServer::tcp();
        let mut decoder = tcp::Decoder::new();
        while let Some(request) = read_adu(&mut stream, &mut decoder) {
            if number > 0 {
                let response = answer(&mut map, &mut server, &request).unwrap();
                stream.write_all(&response).unwrap();
            }
        }
    });
    (addr, connections)
}

#[test]
fn close_on_timeout_retries_over_a_new_connection() {
    let store = store();
    store.write_holding_registers(0, &[77]).unwrap();
    let retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        retry_writes: false,
    };
    // Kept open, the silent connection times the retry out as well.
    let (addr, _) = silent_first_connection(store.clone());
    let mut client = Client::tcp(addr, config()).unwrap();
    client.set_response_timeout(Duration::from_millis(100));
    client.set_retry_policy(retry);
    assert!(matches!(
        client.read_holding_registers(1, 0, 1),
        Err(Error::Timeout { attempts: 2 })
    ));
    // Closed at the first timeout, it is replaced and the retry is answered.
    let (addr, connections) = silent_first_connection(store);
    let mut client = Client::tcp(addr, closing_config()).unwrap();
    client.set_response_timeout(Duration::from_millis(100));
    client.set_retry_policy(retry);
    let begin = std::time::Instant::now();
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [77]);
    assert!(begin.elapsed() >= Duration::from_millis(100));
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    // The new connection stays: no further reconnection.
    for _ in 0..100 {
        assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [77]);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[test]
fn close_on_timeout_times_out_a_silent_server_at_each_deadline() {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let addr = listen(move |_, mut stream| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut decoder = tcp::Decoder::new();
        while read_adu(&mut stream, &mut decoder).is_some() {}
    });
    let mut client = Client::tcp(addr, closing_config()).unwrap();
    client.set_response_timeout(Duration::from_millis(50));
    client.set_retry_policy(RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        retry_writes: false,
    });
    let begin = std::time::Instant::now();
    assert!(matches!(
        client.read_holding_registers(1, 0, 1),
        Err(Error::Timeout { attempts: 2 })
    ));
    // Two full response timeouts and a backoff: never cut short.
    assert!(begin.elapsed() >= Duration::from_millis(110));
    let begin = std::time::Instant::now();
    assert!(matches!(
        client.write_single_register(1, 0, 1),
        Err(Error::Timeout { attempts: 1 })
    ));
    assert!(begin.elapsed() >= Duration::from_millis(50));
    // One connection per attempt: the first, the read's retry, the write.
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[test]
fn close_on_timeout_clients_share_the_watchdog_without_disturbing_each_other() {
    let store = store();
    let served = serve_store(store.clone());
    let silent = listen(|_, mut stream| {
        let mut decoder = tcp::Decoder::new();
        while read_adu(&mut stream, &mut decoder).is_some() {}
    });
    let threads: Vec<_> = (0..6u16)
        .map(|i| {
            thread::spawn(move || {
                if i == 0 {
                    // Times out again and again while the others are served.
                    let mut client = Client::tcp(silent, closing_config()).unwrap();
                    client.set_response_timeout(Duration::from_millis(20));
                    client.set_retry_policy(RetryPolicy::NONE);
                    for _ in 0..10 {
                        assert!(matches!(
                            client.read_holding_registers(1, 0, 1),
                            Err(Error::Timeout { attempts: 1 })
                        ));
                    }
                    return;
                }
                let mut client = Client::tcp(served, closing_config()).unwrap();
                let address = 16 * i;
                for round in 0..300u16 {
                    client.write_single_register(1, address, round).unwrap();
                    assert_eq!(
                        client.read_holding_registers(1, address, 1).unwrap(),
                        [round]
                    );
                }
                let batch: Vec<Request<'_>> = (0..16)
                    .map(|k| Request::ReadHoldingRegisters {
                        address: address + k,
                        quantity: 1,
                    })
                    .collect();
                let results = client.pipeline(1, &batch, |_, _| Ok(())).unwrap();
                assert!(results.iter().all(Result::is_ok));
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn reconnects_after_the_server_closes_mid_response() {
    let store = store();
    store.write_holding_registers(0, &[9]).unwrap();
    let served = store.clone();
    let addr = listen(move |number, mut stream| {
        let mut map = UnitMap::serving_all(served.clone());
        let mut server = PduServer::tcp();
        let mut decoder = tcp::Decoder::new();
        while let Some(request) = read_adu(&mut stream, &mut decoder) {
            let response = answer(&mut map, &mut server, &request).unwrap();
            if number == 0 {
                // The first connection dies half-way through its first answer.
                stream.write_all(&response[..5]).unwrap();
                return;
            }
            stream.write_all(&response).unwrap();
        }
    });
    let mut client = Client::tcp(addr, config()).unwrap();
    // A write lost with the connection is not repeated: the caller learns of the failure.
    assert!(matches!(
        client.write_single_register(1, 1, 5),
        Err(Error::Io(_))
    ));
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [9]);
}

#[test]
fn reads_are_retried_over_a_new_connection() {
    let store = store();
    store.write_holding_registers(0, &[3]).unwrap();
    let served = store.clone();
    let addr = listen(move |number, mut stream| {
        let mut map = UnitMap::serving_all(served.clone());
        let mut server = PduServer::tcp();
        let mut decoder = tcp::Decoder::new();
        while let Some(request) = read_adu(&mut stream, &mut decoder) {
            if number == 0 {
                return;
            }
            let response = answer(&mut map, &mut server, &request).unwrap();
            stream.write_all(&response).unwrap();
        }
    });
    let mut client = Client::tcp(addr, config()).unwrap();
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [3]);
}

#[test]
fn broadcast_over_rtu_over_tcp_is_not_awaited() {
    let store = store();
    let served = store.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let addr = listen(move |_, mut stream| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut map = UnitMap::serving_all(served.clone());
        let mut server = PduServer::new(UnitIds::all(), true);
        let rules = rtu::LengthRules::new();
        let mut pending = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match rtu::parse(&pending, Role::Request, &rules) {
                Status::Complete { frame, consumed } => {
                    let (unit_id, pdu) = (frame.unit_id(), frame.pdu().to_vec());
                    pending.drain(..consumed);
                    let mut out = [0u8; 253];
                    if let Reply::Send(len) = server.respond(unit_id, &pdu, &mut map, &mut out) {
                        let mut adu = [0u8; 256];
                        let len = rtu::encode(unit_id, &out[..len], &mut adu).unwrap();
                        stream.write_all(&adu[..len]).unwrap();
                    }
                }
                Status::Invalid { discard, .. } => {
                    pending.drain(..discard);
                }
                Status::Incomplete(_) => match stream.read(&mut buf) {
                    Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                    _ => return,
                },
            }
        }
    });
    // The turnaround is no response deadline: it must not close the connection either.
    for (i, tcp_config) in [config(), closing_config()].into_iter().enumerate() {
        let mut client = Client::rtu_over_tcp(addr, tcp_config).unwrap();
        client.set_turnaround_delay(Duration::from_millis(20));
        // A long response timeout: were the broadcast awaited, this test would take a minute.
        client.set_response_timeout(Duration::from_secs(60));
        let value = 77 + u16::try_from(i).unwrap();
        client.write_single_register(0, 5, value).unwrap();
        assert!(matches!(
            client.read_holding_registers(0, 5, 1),
            Err(Error::BroadcastRead { .. })
        ));
        // The broadcast was executed; unicast requests are answered as usual.
        assert_eq!(client.read_holding_registers(1, 5, 1).unwrap(), [value]);
        assert_eq!(store.holding_registers(5, 1), Ok(vec![value]));
        assert_eq!(connections.load(Ordering::SeqCst), i + 1);
    }
}

/// A Modbus TCP transport without a socket: each `send` is recorded (how many ADUs it carried)
/// and answered at once by the server core; the answers come back cut into chunks of the given
/// sizes, cycled, so that responses arrive split and merged.
struct Recording {
    coalesce: bool,
    sends: Vec<usize>,
    map: UnitMap,
    server: PduServer,
    decoder: tcp::Decoder,
    inbound: Vec<u8>,
    chunks: Vec<usize>,
    next_chunk: usize,
}

impl Recording {
    fn new(store: DataStore, coalesce: bool, chunks: &[usize]) -> Self {
        Self {
            coalesce,
            sends: Vec::new(),
            map: UnitMap::serving_all(store),
            server: PduServer::tcp(),
            decoder: tcp::Decoder::new(),
            inbound: Vec::new(),
            chunks: chunks.to_vec(),
            next_chunk: 0,
        }
    }
}

impl Transport for Recording {
    fn framing(&self) -> Framing {
        Framing::Tcp
    }

    fn coalesce_requests(&self) -> bool {
        self.coalesce
    }

    fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let mut adus = 0;
        while !bytes.is_empty() {
            let taken = self.decoder.push(Instant::now(), bytes);
            bytes = &bytes[taken..];
            while let Some(frame) = self.decoder.poll_frame() {
                let adu = frame.expect("a well-formed request");
                let request = Received {
                    transaction_id: adu.transaction_id(),
                    unit_id: adu.unit_id(),
                    pdu: adu.pdu().to_vec(),
                };
                adus += 1;
                let response = answer(&mut self.map, &mut self.server, &request).unwrap();
                self.inbound.extend(response);
            }
        }
        self.sends.push(adus);
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8], _deadline: Instant) -> io::Result<usize> {
        let chunk = self.chunks[self.next_chunk % self.chunks.len()];
        self.next_chunk += 1;
        let n = chunk.min(buf.len()).min(self.inbound.len());
        buf[..n].copy_from_slice(&self.inbound[..n]);
        self.inbound.drain(..n);
        Ok(n)
    }

    fn clear_input(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn reconnect(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn coalesced_requests_leave_in_one_write_with_the_same_results() {
    const COUNT: u16 = 40;
    let store = store();
    let values: Vec<u16> = (0..100).map(|i| 3 * i + 1).collect();
    store.write_holding_registers(0, &values).unwrap();
    let requests: Vec<Request<'static>> = (0..COUNT)
        .map(|i| Request::ReadHoldingRegisters {
            address: i,
            quantity: 1 + i % 4,
        })
        .collect();
    let expected: Vec<Vec<u16>> = (0..COUNT)
        .map(|i| values[usize::from(i)..usize::from(i + 1 + i % 4)].to_vec())
        .collect();
    // Responses whole, byte by byte, and cut anywhere (split and merged).
    let cuts: [&[usize]; 3] = [&[1024], &[1], &[3, 50, 7, 13, 200, 2]];
    for coalesce in [false, true] {
        for chunks in cuts {
            let transport = Recording::new(store.clone(), coalesce, chunks);
            let mut client = Client::new(transport);
            let results = client
                .pipeline(1, &requests, |_, response| match response {
                    Response::ReadHoldingRegisters { values } => Ok(values.iter().collect()),
                    _ => Err(Error::NoResponse),
                })
                .unwrap();
            let results: Vec<Vec<u16>> = results.into_iter().map(Result::unwrap).collect();
            assert_eq!(results, expected, "coalesce {coalesce}, chunks {chunks:?}");
            let sends = &client.transport().sends;
            assert_eq!(sends.iter().sum::<usize>(), usize::from(COUNT));
            if coalesce {
                // The first 16 (the whole pipeline) in one write, the refills in few more.
                assert_eq!(sends[0], modbus_stack::client::MAX_PIPELINE, "{sends:?}");
                assert!(sends.len() < usize::from(COUNT), "{sends:?}");
            } else {
                // The default: one ADU per write (§10.3).
                assert!(sends.iter().all(|&adus| adus == 1), "{sends:?}");
            }
        }
    }
}

#[test]
fn coalescing_is_off_by_default_and_only_on_modbus_tcp() {
    assert!(!transport::tcp::Config::default().coalesce_requests);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = transport::tcp::Config {
        coalesce_requests: true,
        ..config()
    };
    let tcp = transport::tcp::TcpTransport::connect(addr, config).unwrap();
    assert!(tcp.coalesce_requests());
    let plain = transport::tcp::TcpTransport::connect(addr, transport::tcp::Config::default());
    assert!(!plain.unwrap().coalesce_requests());
    // RTU over TCP has one request at a time: nothing to coalesce.
    let rtu = transport::tcp::TcpTransport::connect_rtu_over_tcp(addr, config);
    assert!(!rtu.unwrap().coalesce_requests());
}

#[test]
fn close_ends_the_connection_with_a_fin_after_the_last_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut decoder = tcp::Decoder::new();
        let request = read_adu(&mut stream, &mut decoder).unwrap();
        let mut answer = request.transaction_id.to_be_bytes().to_vec();
        answer.extend_from_slice(&[0, 0, 0, 5, request.unit_id, 0x03, 2, 0x12, 0x34]);
        stream.write_all(&answer).unwrap();
        // After close, the next read sees the orderly end of the stream: Ok(0), not a reset.
        let mut rest = [0u8; 16];
        stream.read(&mut rest).unwrap()
    });
    let mut client = Client::tcp(addr, config()).unwrap();
    assert_eq!(client.read_holding_registers(1, 0, 1).unwrap(), [0x1234]);
    client.close().unwrap();
    assert_eq!(server.join().unwrap(), 0);
}
