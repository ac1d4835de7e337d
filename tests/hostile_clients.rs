//! The TCP server against hostile clients on 127.0.0.1: idle connections and slowloris senders
//! that try to hold every slot, trickles that try to keep a connection alive, a host that opens
//! too many connections, garbage on Modbus TCP and on RTU over TCP, a client that floods without
//! reading, and an idle server that must wake no thread (so a new connection is served at once).
//!
//! What each case checks is that well-behaved clients keep being served. Reads carry deadlines
//! so a broken server fails a test instead of hanging it; every loop is bounded; every server
//! and client thread is stopped by the test that started it.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::sim;
use support::{crc16_modbus, hex};

fn spawn(config: Config) -> SpawnedServer {
    TcpServer::bind("127.0.0.1:0", config)
        .expect("bind")
        .spawn(sim::unit_map())
        .expect("spawn")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// FC 04 for input register `address` (the simulator's register `i` holds `i`) under
/// transaction id `id`, and the answer it must get.
fn read_input(id: u16, address: u16) -> (Vec<u8>, Vec<u8>) {
    let [hi, lo] = address.to_be_bytes();
    let [tid_hi, tid_lo] = id.to_be_bytes();
    let request = vec![tid_hi, tid_lo, 0, 0, 0, 6, 1, 0x04, hi, lo, 0, 1];
    let answer = vec![tid_hi, tid_lo, 0, 0, 0, 5, 1, 0x04, 2, hi, lo];
    (request, answer)
}

/// Sends one request and checks its answer.
fn served(stream: &mut TcpStream, id: u16) -> bool {
    let (request, answer) = read_input(id, id % 1000);
    if stream.write_all(&request).is_err() {
        return false;
    }
    let mut got = vec![0u8; answer.len()];
    stream.read_exact(&mut got).is_ok() && got == answer
}

/// `true` once the server has closed `stream` (within its read deadline).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    for _ in 0..1000 {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return true;
            }
            Err(_) => return false,
        }
    }
    false
}

/// Threads that write to their connections until stopped.
struct Senders {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Senders {
    /// `count` connections, each sending one byte of a never-ending frame every `every`.
    fn slowloris(addr: SocketAddr, count: usize, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let mut stream = connect(addr);
                thread::spawn(move || {
                    // An MBAP header announcing 254 bytes, then filler: it never completes.
                    let frame = [0u8, 1, 0, 0, 0, 0xFE, 1, 0x10]
                        .into_iter()
                        .chain(std::iter::repeat(0x00));
                    for byte in frame.take(10_000) {
                        if stop.load(Ordering::SeqCst) || stream.write_all(&[byte]).is_err() {
                            return;
                        }
                        thread::sleep(every);
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[test]
fn idle_and_slowloris_connections_cannot_lock_a_new_client_out() {
    // The target: 64 idle and 16 slowloris connections held against the default
    // configuration (16 slots); a new well-behaved client is answered within one second.
    let server = spawn(Config::tcp());
    let addr = server.local_addr();
    let idle: Vec<TcpStream> = (0..64).map(|_| connect(addr)).collect();
    let slowloris = Senders::slowloris(addr, 16, Duration::from_millis(100));
    thread::sleep(Duration::from_millis(200));
    for id in 1..=5 {
        let started = Instant::now();
        let mut client = connect(addr);
        assert!(served(&mut client, id), "client {id} was not served");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "client {id} waited {took:?}");
        // A client being served keeps its slot while others come and go.
        assert!(served(&mut client, id + 100));
    }
    drop(slowloris);
    drop(idle);
}

#[test]
fn a_slowloris_sender_is_closed_at_the_frame_timeout() {
    let server = spawn(Config {
        frame_timeout: Duration::from_millis(300),
        ..Config::tcp()
    });
    let mut stream = connect(server.local_addr());
    let started = Instant::now();
    // A valid 12-byte request, one byte every 100 ms: it would take 1.2 s.
    let (request, _) = read_input(1, 1);
    for byte in request {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        let mut probe = [0u8; 1];
        stream.set_nonblocking(true).unwrap();
        let gone = matches!(stream.read(&mut probe), Ok(0));
        stream.set_nonblocking(false).unwrap();
        if gone {
            break;
        }
    }
    let took = started.elapsed();
    assert!(closed_by_server(&mut stream));
    assert!(
        took < Duration::from_millis(1100),
        "closed only after {took:?}"
    );
}

#[test]
fn idle_time_counts_from_the_last_complete_request_not_the_last_byte() {
    let config = Config {
        idle_timeout: Duration::from_millis(300),
        frame_timeout: Duration::from_secs(60),
        ..Config::tcp()
    };
    let server = spawn(config);
    let mut stream = connect(server.local_addr());
    assert!(served(&mut stream, 1));
    // A trickle of a frame that never completes does not keep the connection alive.
    let started = Instant::now();
    let trickle = [0u8, 2, 0, 0, 0, 0xFE, 1, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
    for byte in trickle {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(closed_by_server(&mut stream));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_host_at_its_cap_loses_its_own_least_recently_used_connection() {
    let server = spawn(Config {
        max_connections: 8,
        max_connections_per_address: Some(2),
        ..Config::tcp()
    });
    let addr = server.local_addr();
    let mut first = connect(addr);
    let mut second = connect(addr);
    assert!(served(&mut second, 1));
    assert!(served(&mut first, 2));
    // A third from the same host: `second` is its least recently used.
    let mut third = connect(addr);
    assert!(served(&mut third, 3));
    assert!(closed_by_server(&mut second));
    assert!(served(&mut first, 4));
    assert!(served(&mut third, 5));
}

/// A deterministic stream of pseudo-random bytes (xorshift).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[3]
        })
        .collect()
}

/// An RTU request with its CRC.
fn rtu(bytes: &str) -> Vec<u8> {
    let mut frame = hex(bytes);
    let crc = crc16_modbus(&frame);
    frame.extend_from_slice(&crc);
    frame
}

#[test]
fn rtu_over_tcp_answers_the_first_or_second_request_after_garbage() {
    let server = spawn(Config::rtu_over_tcp(1));
    let request = rtu("01 04 00 07 00 01");
    let answer = rtu("01 04 02 00 07");
    for (round, len) in [100, 1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .enumerate()
    {
        let mut stream = connect(server.local_addr());
        stream
            .write_all(&garbage(len, 0x9E37_79B9 + round as u64))
            .unwrap();
        let mut answered_at = None;
        for attempt in 1..=2 {
            // The first wait is the silence after which the server drops the garbage, so it
            // stays short; the second leaves a loaded machine time to scan a megabyte of it
            // in a debug build (within the 5 s frame timeout).
            let wait = if attempt == 1 { 500 } else { 3000 };
            stream
                .set_read_timeout(Some(Duration::from_millis(wait)))
                .unwrap();
            stream.write_all(&request).unwrap();
            let mut got = vec![0u8; answer.len()];
            if stream.read_exact(&mut got).is_ok() {
                assert_eq!(got, answer, "after {len} bytes of garbage");
                answered_at = Some(attempt);
                break;
            }
        }
        assert!(
            answered_at.is_some(),
            "neither of the first two requests after {len} bytes of garbage was answered"
        );
        // And the connection stays in step afterwards.
        stream.write_all(&request).unwrap();
        let mut got = vec![0u8; answer.len()];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(got, answer);
    }
}

#[test]
fn garbage_on_modbus_tcp_costs_only_that_connection() {
    let server = spawn(Config::tcp());
    let addr = server.local_addr();
    let mut bystander = connect(addr);
    assert!(served(&mut bystander, 1));
    for round in 0..20u64 {
        let mut attacker = connect(addr);
        // Whatever the server makes of it (a length-field error closes the connection, a
        // plausible header waits for its frame), it must keep serving the bystander.
        let _ = attacker.write_all(&garbage(4096, 0xA5A5 + round));
        assert!(served(&mut bystander, 2 + u16::try_from(round).unwrap()));
    }
}

#[test]
fn a_client_that_never_reads_is_closed_and_others_keep_being_served() {
    let server = spawn(Config {
        idle_timeout: Duration::from_millis(500),
        ..Config::tcp()
    });
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = Arc::clone(&stop);
        let mut stream = connect(addr);
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        thread::spawn(move || {
            let (request, _) = read_input(7, 7);
            let batch: Vec<u8> = request.iter().copied().cycle().take(120 * 100).collect();
            let started = Instant::now();
            // Requests as fast as the socket takes them, never reading the answers.
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
                if stream.write_all(&batch).is_err() {
                    return true;
                }
            }
            false
        })
    };
    let mut bystander = connect(addr);
    // Served all along (at least 20 times, and until the flooder gives up, bounded by its own
    // 10 s): a bystander that paused for longer than the idle timeout would rightly be closed.
    for id in 1..=250 {
        assert!(served(&mut bystander, id), "request {id}");
        if id >= 20 && flooder.is_finished() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // The flooder's connection was closed by the server (its writes then fail).
    let closed = flooder.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(closed, "the flooding connection was never closed");
    assert!(served(&mut bystander, 251));
}

/// Set in the child process of [`an_idle_server_wakes_no_thread`].
const IDLE_CHILD: &str = "MODBUS_HOSTILE_IDLE_CHILD";

/// A new connection is answered at once only if the accept loop blocks in `accept` (one that
/// polls every 20 ms adds 10 ms to the median first answer), and an idle server should cost
/// nothing. Both show as wake-ups, which Linux counts per thread (voluntary context
/// switches), so this checks the count rather than a time a loaded machine would stretch. It
/// runs in a child process (this binary, running only [`idle_server_child`]) so that its
/// server's threads are the only ones of their name.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_server_wakes_no_thread() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "idle_server_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env(IDLE_CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "the child ran the check"
    );
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "run by an_idle_server_wakes_no_thread in a child process"]
fn idle_server_child() {
    assert!(std::env::var_os(IDLE_CHILD).is_some(), "run by its parent");
    // Timeouts of 400 ms make the watcher tick every 100 ms while it has connections to watch.
    let server = spawn(Config {
        idle_timeout: Duration::from_millis(400),
        frame_timeout: Duration::from_millis(400),
        ..Config::tcp()
    });
    let mut stream = connect(server.local_addr());
    assert!(served(&mut stream, 1));
    drop(stream);
    // The connection's thread ends and the watcher reaps it within a tick or two.
    thread::sleep(Duration::from_millis(500));
    let before = wake_ups();
    thread::sleep(Duration::from_secs(1));
    let after = wake_ups();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["modbus-tcp-acce", "modbus-tcp-watc"],
        "one accept thread and one watcher (names cut to 15 bytes)"
    );
    for (thread, count) in &after {
        let woken = count - before[thread];
        // A spurious wake-up or two is the kernel's; a 20 ms poll would be 50.
        assert!(woken <= 2, "{thread} woke {woken} times in 1 s of idleness");
    }
    // Asleep, not stuck: a new connection is still answered.
    let mut stream = connect(server.local_addr());
    assert!(served(&mut stream, 2));
}

/// Voluntary context switches of this process's server threads, by thread name.
#[cfg(target_os = "linux")]
fn wake_ups() -> std::collections::BTreeMap<String, u64> {
    let mut found = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue; // a thread that just ended
        };
        let name = name.trim_end().to_string();
        if !name.starts_with("modbus-tcp-") || name.starts_with("modbus-tcp-conn") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let count = status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("no context switch count for {name}"));
        assert!(
            found.insert(name, count).is_none(),
            "two server threads of one name"
        );
    }
    found
}
