//! The blocking TCP client against hostile and broken servers on 127.0.0.1: silent, wrong
//! transaction id, wrong unit, truncated then correct, trailing bytes, answers sent ahead of the
//! request, byte-by-byte drip, a huge length field, close and reset.
//!
//! The rule every case checks: a call ends with the right value or a typed error, and within
//! the time its configuration allows (attempts × response timeout + backoffs + reconnects, with
//! slack for a loaded machine). A wrong value returned as `Ok` fails the test. Every server a
//! test starts is stopped when its guard drops; every loop is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use modbus_stack::client::{Client, Error};
use modbus_stack::frame::tcp;
use modbus_stack::session::client::RetryPolicy;
use modbus_stack::transport::{self, tcp::TcpTransport};

/// The registers every well-behaved answer carries: 0x1011, 0x1213, ... (the values).
fn registers(count: u16) -> Vec<u16> {
    (0..count)
        .map(|i| {
            let high = 0x10 + 2 * i;
            (high << 8) | (high + 1)
        })
        .collect()
}

/// One request as a hostile server read it.
#[derive(Debug, Clone)]
struct Request {
    transaction_id: u16,
    unit_id: u8,
    pdu: Vec<u8>,
}

impl Request {
    /// The correct FC 03 answer from [`registers`], under another transaction id and unit.
    fn answer_as(&self, transaction_id: u16, unit_id: u8) -> Vec<u8> {
        assert_eq!(self.pdu[0], 0x03, "these servers only serve FC 03");
        let address = u16::from_be_bytes([self.pdu[1], self.pdu[2]]);
        let quantity = u16::from_be_bytes([self.pdu[3], self.pdu[4]]);
        let all = registers(address + quantity);
        let mut pdu = vec![0x03, u8::try_from(quantity * 2).unwrap()];
        for value in &all[usize::from(address)..] {
            pdu.extend_from_slice(&value.to_be_bytes());
        }
        let mut adu = [0u8; tcp::MAX_ADU_LEN];
        let len = tcp::encode(transaction_id, unit_id, &pdu, &mut adu).unwrap();
        adu[..len].to_vec()
    }

    /// The correct answer.
    fn answer(&self) -> Vec<u8> {
        self.answer_as(self.transaction_id, self.unit_id)
    }
}

/// A connection as a hostile server's handler sees it.
struct Conn {
    /// The only strong handle: the socket closes when the handler returns (with RST when the
    /// handler set `SO_LINGER` to 0), while the acceptor keeps a weak one to shut it down.
    stream: Arc<TcpStream>,
    /// Which connection of the server this is, from 0.
    number: usize,
}

impl Conn {
    /// The next request, or `None` when the client closed or nothing came for 10 s.
    fn request(&mut self) -> Option<Request> {
        let mut header = [0u8; tcp::HEADER_LEN];
        (&*self.stream).read_exact(&mut header).ok()?;
        let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let mut pdu = vec![0u8; length.checked_sub(1)?];
        (&*self.stream).read_exact(&mut pdu).ok()?;
        Some(Request {
            transaction_id: u16::from_be_bytes([header[0], header[1]]),
            unit_id: header[6],
            pdu,
        })
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        (&*self.stream).write_all(bytes).is_ok()
    }
}

/// A server on 127.0.0.1 whose connections are handled by `handle`; stopped (its threads
/// joined, its sockets closed) when dropped.
struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl Hostile {
    fn start(handle: impl Fn(&mut Conn) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let handle = Arc::new(handle);
        let acceptor = {
            let stop = Arc::clone(&stop);
            let connections = Arc::clone(&connections);
            thread::spawn(move || {
                let mut handlers: Vec<(Weak<TcpStream>, JoinHandle<()>)> = Vec::new();
                // Bounded: no test makes more than a few dozen connections.
                for number in 0..64 {
                    let Ok((stream, _)) = listener.accept() else {
                        break;
                    };
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    connections.fetch_add(1, Ordering::SeqCst);
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let stream = Arc::new(stream);
                    let control = Arc::downgrade(&stream);
                    let handle = Arc::clone(&handle);
                    let thread = thread::spawn(move || {
                        let mut conn = Conn { stream, number };
                        handle(&mut conn);
                    });
                    handlers.push((control, thread));
                }
                for (stream, thread) in handlers {
                    if let Some(stream) = stream.upgrade() {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    let _ = thread.join();
                }
            })
        };
        Self {
            addr,
            stop,
            connections,
            acceptor: Some(acceptor),
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept call; the acceptor then closes every connection and joins.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Short timeouts, so that each case takes well under a second or two.
fn fast_client(addr: SocketAddr) -> Client<TcpTransport> {
    let mut client = Client::tcp(addr, transport::tcp::Config::default()).unwrap();
    client.set_response_timeout(Duration::from_millis(200));
    client.set_retry_policy(RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(20),
        retry_writes: false,
    });
    client
}

/// The longest a call of [`fast_client`] may take: two 200 ms attempts, a 20 ms backoff, and
/// generous slack for reconnects and a loaded machine.
const FAST_BOUND: Duration = Duration::from_secs(2);

/// Runs `call`, checks it ended within `bound`, and returns its result.
fn bounded<T>(bound: Duration, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = call();
    let took = started.elapsed();
    assert!(took <= bound, "call took {took:?}, more than {bound:?}");
    result
}

/// The outcome of reading `quantity` registers from 0: the right values, or a typed error.
/// Wrong values fail the test here.
fn read_checked(client: &mut Client<TcpTransport>, quantity: u16) -> Result<(), Error> {
    let values = client.read_holding_registers(1, 0, quantity)?;
    assert_eq!(values, registers(quantity), "wrong values returned as Ok");
    Ok(())
}

#[test]
fn truncated_first_response_never_yields_spliced_values_with_default_config() {
    // The exact case: "read 10 holding registers", the first answer cut after 10 of its
    // 29 bytes, every later answer correct; `transport::tcp::Config::default()` and the default session.
    let server = Hostile::start(|conn| {
        let mut first = conn.number == 0;
        while let Some(request) = conn.request() {
            let answer = request.answer();
            assert_eq!(answer.len(), 29);
            let bytes = if first { &answer[..10] } else { &answer[..] };
            first = false;
            if !conn.send(bytes) {
                return;
            }
        }
    });
    let mut client = Client::tcp(server.addr, transport::tcp::Config::default()).unwrap();
    // One response timeout (1 s), a backoff (100 ms), a reconnect: the retry gets the answer.
    let result = bounded(Duration::from_secs(4), || read_checked(&mut client, 10));
    assert!(result.is_ok(), "{result:?}");
    // And the client stays usable.
    assert!(bounded(Duration::from_secs(4), || read_checked(&mut client, 10)).is_ok());
}

#[test]
fn truncated_response_then_correct_ones_on_the_same_connection() {
    // Every connection cuts its first answer; a client that reused the connection would splice.
    let server = Hostile::start(|conn| {
        let mut first = true;
        while let Some(request) = conn.request() {
            let answer = request.answer();
            let bytes = if first { &answer[..10] } else { &answer[..] };
            first = false;
            if !conn.send(bytes) {
                return;
            }
        }
    });
    let mut client = fast_client(server.addr);
    for _ in 0..3 {
        match bounded(FAST_BOUND, || read_checked(&mut client, 10)) {
            Ok(()) | Err(Error::Timeout { .. } | Error::Io(_) | Error::Frame(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
}

#[test]
fn a_late_answer_to_a_timed_out_attempt_is_not_taken_for_the_retry() {
    // The first attempt is answered after the client gave up on it, with values that are not
    // those of the retry's answer; the retry goes out under a fresh transaction id.
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&ids);
    let server = Hostile::start(move |conn| {
        let mut stale: Option<Request> = None;
        while let Some(request) = conn.request() {
            seen.lock().unwrap().push(request.transaction_id);
            match stale.take() {
                None => stale = Some(request),
                Some(old) => {
                    // The old attempt's answer (under its own id) with other values, then the
                    // right answer to the retry.
                    let mut late = old.answer();
                    let last = late.len() - 1;
                    late[last] ^= 0xFF;
                    if !conn.send(&late) || !conn.send(&request.answer()) {
                        return;
                    }
                }
            }
        }
    });
    let mut client = fast_client(server.addr);
    assert!(bounded(FAST_BOUND, || read_checked(&mut client, 10)).is_ok());
    let ids = ids.lock().unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "a retry must not reuse the transaction id");
}

#[test]
fn trailing_partial_frame_after_a_correct_answer_never_splices_into_the_next() {
    // After each correct answer the server sends the first 10 bytes of a frame that announces
    // itself as the next request's answer, under each id a sequential client would pick next.
    let server = Hostile::start(|conn| {
        while let Some(request) = conn.request() {
            let mut bytes = request.answer();
            let next = request.transaction_id.wrapping_add(1);
            let mut forged = request.answer_as(next, request.unit_id);
            forged[9..].iter_mut().for_each(|byte| *byte = 0xEE);
            bytes.extend_from_slice(&forged[..10]);
            if !conn.send(&bytes) {
                return;
            }
        }
    });
    let mut client = fast_client(server.addr);
    for _ in 0..5 {
        match bounded(FAST_BOUND, || read_checked(&mut client, 10)) {
            Ok(()) | Err(Error::Timeout { .. } | Error::Io(_) | Error::Frame(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
}

#[test]
fn answers_sent_ahead_of_the_request_are_not_taken() {
    // After answering, the server sends wrong answers for the next transaction ids a
    // sequential client would use, before that client sends them; then answers correctly.
    let server = Hostile::start(|conn| {
        while let Some(request) = conn.request() {
            if !conn.send(&request.answer()) {
                return;
            }
            thread::sleep(Duration::from_millis(5));
            for ahead in 1..=4u16 {
                let id = request.transaction_id.wrapping_add(ahead);
                let mut early = request.answer_as(id, request.unit_id);
                early[9..].iter_mut().for_each(|byte| *byte = 0xAB);
                if !conn.send(&early) {
                    return;
                }
            }
        }
    });
    let mut client = fast_client(server.addr);
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(20));
        match bounded(FAST_BOUND, || read_checked(&mut client, 4)) {
            Ok(()) | Err(Error::Timeout { .. } | Error::Io(_) | Error::Frame(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
}

#[test]
fn a_silent_server_times_out_within_the_configured_time() {
    let server = Hostile::start(|conn| while conn.request().is_some() {});
    let mut client = fast_client(server.addr);
    let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
    assert!(
        matches!(result, Err(Error::Timeout { attempts: 2 })),
        "{result:?}"
    );
}

#[test]
fn wrong_transaction_id_and_wrong_unit_are_never_accepted() {
    for wrong_unit in [false, true] {
        let server = Hostile::start(move |conn| {
            while let Some(request) = conn.request() {
                let answer = if wrong_unit {
                    request.answer_as(request.transaction_id, request.unit_id ^ 0x40)
                } else {
                    request.answer_as(request.transaction_id ^ 0x5A5A, request.unit_id)
                };
                if !conn.send(&answer) {
                    return;
                }
            }
        });
        let mut client = fast_client(server.addr);
        let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
        assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    }
}

#[test]
fn an_answer_dripped_byte_by_byte_arrives_whole() {
    let server = Hostile::start(|conn| {
        conn.stream.set_nodelay(true).unwrap();
        while let Some(request) = conn.request() {
            for byte in request.answer() {
                if !conn.send(&[byte]) {
                    return;
                }
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let mut client = fast_client(server.addr);
    assert!(bounded(FAST_BOUND, || read_checked(&mut client, 10)).is_ok());
}

#[test]
fn a_drip_slower_than_the_timeout_ends_in_a_typed_error() {
    let server = Hostile::start(|conn| {
        conn.stream.set_nodelay(true).unwrap();
        while let Some(request) = conn.request() {
            for byte in request.answer() {
                if !conn.send(&[byte]) {
                    return;
                }
                thread::sleep(Duration::from_millis(30));
            }
        }
    });
    let mut client = fast_client(server.addr);
    let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
    assert!(
        matches!(
            result,
            Err(Error::Timeout { .. } | Error::Io(_) | Error::Frame(_))
        ),
        "{result:?}"
    );
}

#[test]
fn a_huge_length_field_ends_in_a_typed_error_and_a_new_connection() {
    let server = Hostile::start(|conn| {
        let huge = conn.number == 0;
        while let Some(request) = conn.request() {
            let mut answer = request.answer();
            if huge {
                answer[4] = 0xFF;
                answer[5] = 0xFF;
            }
            if !conn.send(&answer) {
                return;
            }
        }
    });
    let mut client = fast_client(server.addr);
    let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
    assert!(
        matches!(
            result,
            Ok(()) | Err(Error::Frame(_) | Error::Timeout { .. })
        ),
        "{result:?}"
    );
    // The connection was replaced: the next call is answered by the second connection.
    assert!(bounded(FAST_BOUND, || read_checked(&mut client, 10)).is_ok());
    assert!(server.connections() >= 2);
}

#[test]
fn close_and_reset_after_the_request_end_in_a_retry_or_a_typed_error() {
    for reset in [false, true] {
        let server = Hostile::start(move |conn| {
            let Some(request) = conn.request() else {
                return;
            };
            if conn.number < 2 {
                if reset {
                    // SO_LINGER 0: the close sends RST.
                    socket2::SockRef::from(&*conn.stream)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                }
                return;
            }
            conn.send(&request.answer());
            while let Some(request) = conn.request() {
                if !conn.send(&request.answer()) {
                    return;
                }
            }
        });
        let mut client = fast_client(server.addr);
        let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
        assert!(
            matches!(result, Ok(()) | Err(Error::Io(_) | Error::Timeout { .. })),
            "{result:?}"
        );
        // Reads are retried over a new connection; whatever the first call saw, the next works.
        let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
        assert!(result.is_ok(), "reset {reset}: {result:?}");
    }
}

#[test]
fn garbage_instead_of_an_answer_ends_in_a_typed_error() {
    let server = Hostile::start(|conn| {
        let mut seed = 0x2545_F491_u32;
        while conn.request().is_some() {
            let mut junk = [0u8; 300];
            for byte in &mut junk {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *byte = seed.to_le_bytes()[0];
            }
            if !conn.send(&junk) {
                return;
            }
        }
    });
    let mut client = fast_client(server.addr);
    for _ in 0..3 {
        let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
        assert!(
            matches!(
                result,
                Err(Error::Timeout { .. }
                    | Error::Io(_)
                    | Error::Frame(_)
                    | Error::UnexpectedResponse(_))
            ),
            "{result:?}"
        );
    }
}

#[test]
fn a_server_that_closes_at_once_ends_in_an_io_error_within_the_bound() {
    let server = Hostile::start(|conn| {
        let _ = conn.stream.shutdown(Shutdown::Both);
    });
    let mut client = fast_client(server.addr);
    let result = bounded(FAST_BOUND, || read_checked(&mut client, 10));
    assert!(
        matches!(result, Err(Error::Io(ref error)) if error.kind() != ErrorKind::Other),
        "{result:?}"
    );
}
