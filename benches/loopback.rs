//! Loopback benchmarks: the blocking [`Client`] against the [`TcpServer`] and the simulator over
//! 127.0.0.1, next to a raw TCP ping-pong floor that moves the same bytes.
//!
//! * `loopback/sequential/{read10,read125}`: one request, one response, repeat (FC 03 of 10 and
//!   125 holding registers: a 12-byte request, a 29- or 259-byte response).
//! * `loopback/sequential-close/{read10,read125}`: the same with the client's
//!   `tcp::Config::close_on_timeout` on, whose response wait arms no kernel timer per read.
//! * `loopback/floor/{read10,read125}`: the same frame sizes between two plain `std` sockets
//!   (`TCP_NODELAY` on both sides); a thread answers every fixed 12-byte request with a fixed
//!   response, with no Modbus code on either side. This is what the kernel and the thread
//!   wake-ups cost; our client and server can only add to it.
//! * `loopback/pipelined/read10x16`: [`Client::pipeline`] with 16 reads of 10 registers in
//!   flight; throughput counts requests, so criterion prints requests/s for every case.
//! * `loopback/pipelined/read10x16-coalesced`: the same with both opt-ins for write coalescing
//!   on: the client writes the requests it has ready in one `send`
//!   (`tcp::Config::coalesce_requests`) and the server answers all ADUs of one read in one write
//!   (`Config::with_coalesced_responses`). Off is the default (§10.3: one ADU per segment).
//! * `loopback/floor/read10x16`: the raw floor for 16 requests in flight, for reference.
//!
//! The issue's target is "16 pipelined ≥ 3× the sequential floor" (`floor/read10`); compare
//! requests/s of the pipelined rows with it:
//!
//! ```text
//! taskset -c 0 cargo bench --bench loopback -- 'pipelined|floor/read10$'
//! ```
//!
//! Set `LOOPBACK_LATENCY=<samples>` to skip criterion and instead time that many round trips of
//! each case one by one, printing requests/s, p50 and p99 (see the module's `latency` function):
//!
//! ```text
//! LOOPBACK_LATENCY=20000 cargo bench --bench loopback
//! LOOPBACK_LATENCY=20000 taskset -c 0 cargo bench --bench loopback   # client and server on one CPU
//! ```

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use modbus_stack::client::{Client, MAX_PIPELINE};
use modbus_stack::pdu::{Request, Response};
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::sim;
use modbus_stack::transport::tcp::{self, TcpTransport};

/// Unit id of every request (the simulator answers them all).
const UNIT: u8 = 1;
/// First register read.
const ADDRESS: u16 = 100;
/// The two read sizes: the smallest common poll and the largest read FC 03 allows.
const QUANTITIES: [u16; 2] = [10, 125];
/// Requests in flight in the pipelined case (the client's limit).
const DEPTH: usize = MAX_PIPELINE;

/// The MBAP ADU of "FC 03, `quantity` registers from [`ADDRESS`]": 12 bytes.
fn request_adu(quantity: u16) -> [u8; 12] {
    let [address_hi, address_lo] = ADDRESS.to_be_bytes();
    let [quantity_hi, quantity_lo] = quantity.to_be_bytes();
    [
        0x00,
        0x01,
        0x00,
        0x00,
        0x00,
        0x06,
        UNIT,
        0x03,
        address_hi,
        address_lo,
        quantity_hi,
        quantity_lo,
    ]
}

/// The MBAP ADU answering [`request_adu`]: 9 + 2 × `quantity` bytes (29 or 259).
fn response_adu(quantity: u16) -> Vec<u8> {
    let data_len = 2 * usize::from(quantity);
    let mut adu = vec![0x00, 0x01, 0x00, 0x00];
    adu.extend_from_slice(
        &u16::try_from(3 + data_len)
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    adu.extend_from_slice(&[UNIT, 0x03, u8::try_from(data_len).unwrap_or(u8::MAX)]);
    adu.resize(adu.len() + data_len, 0);
    adu
}

/// The raw floor: a connected client socket whose peer thread answers every 12-byte request
/// with the fixed response for the quantity in it. The thread ends when the socket is dropped.
fn floor() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the floor listener");
    let address = listener.local_addr().expect("floor address");
    let responses: Vec<(u16, Vec<u8>)> = QUANTITIES.iter().map(|&q| (q, response_adu(q))).collect();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_nodelay(true)
            .expect("TCP_NODELAY on the floor server");
        let mut request = [0u8; 12];
        while stream.read_exact(&mut request).is_ok() {
            let quantity = u16::from_be_bytes([request[10], request[11]]);
            let Some((_, response)) = responses.iter().find(|(q, _)| *q == quantity) else {
                return;
            };
            if stream.write_all(response).is_err() {
                return;
            }
        }
    });
    let stream = TcpStream::connect(address).expect("connect to the floor");
    stream
        .set_nodelay(true)
        .expect("TCP_NODELAY on the floor client");
    stream
}

/// One raw round trip: write the request, read the whole response.
fn floor_round_trip(stream: &mut TcpStream, request: &[u8], response: &mut [u8]) {
    stream.write_all(request).expect("floor write");
    stream.read_exact(response).expect("floor read");
}

/// `depth` raw requests in flight: one write per request (as the client does), then every
/// response.
fn floor_pipelined(stream: &mut TcpStream, request: &[u8], response: &mut [u8], depth: usize) {
    for _ in 0..depth {
        stream.write_all(request).expect("floor write");
    }
    for _ in 0..depth {
        stream.read_exact(response).expect("floor read");
    }
}

/// The simulator on an ephemeral 127.0.0.1 port and a client connected to it; with `coalesce`
/// the client writes its ready requests together and the server its responses to one read.
fn ours(coalesce: bool) -> (SpawnedServer, Client<TcpTransport>) {
    let config = Config {
        coalesce_responses: coalesce,
        ..Config::tcp()
    };
    let server = TcpServer::bind("127.0.0.1:0", config)
        .and_then(|server| server.spawn(sim::unit_map()))
        .expect("start the simulator");
    let client_config = tcp::Config {
        coalesce_requests: coalesce,
        ..tcp::Config::default()
    };
    let client = Client::tcp(server.local_addr(), client_config).expect("connect");
    (server, client)
}

/// A second client of `server`, with `close_on_timeout` on.
fn closing_client(server: &SpawnedServer) -> Client<TcpTransport> {
    let config = tcp::Config {
        close_on_timeout: true,
        ..tcp::Config::default()
    };
    Client::tcp(server.local_addr(), config).expect("connect")
}

/// One sequential read through our client, into a caller buffer (no allocation).
fn ours_round_trip(client: &mut Client<TcpTransport>, out: &mut [u16]) {
    client
        .read_holding_registers_into(UNIT, ADDRESS, out)
        .expect("read holding registers");
}

/// The pipelined batch: [`DEPTH`] reads of 10 registers.
fn batch() -> Vec<Request<'static>> {
    (0..DEPTH)
        .map(|i| Request::ReadHoldingRegisters {
            address: ADDRESS + 10 * u16::try_from(i).unwrap_or(0),
            quantity: 10,
        })
        .collect()
}

/// One pipelined batch through our client; every response is checked for its variant.
fn ours_pipelined(client: &mut Client<TcpTransport>, requests: &[Request<'_>]) {
    let results = client
        .pipeline(UNIT, requests, |_, response| match response {
            Response::ReadHoldingRegisters { values } => Ok(values.len()),
            _ => Ok(0),
        })
        .expect("pipeline");
    for result in results {
        assert_eq!(result.expect("pipelined read"), 10);
    }
}

fn sequential(c: &mut Criterion) {
    let (server, mut client) = ours(false);
    let mut closing = closing_client(&server);
    let (coalescing_server, mut coalescing_client) = ours(true);
    let mut raw = floor();
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements(1));
    for quantity in QUANTITIES {
        let mut out = vec![0u16; usize::from(quantity)];
        group.bench_function(format!("sequential/read{quantity}"), |b| {
            b.iter(|| ours_round_trip(&mut client, black_box(&mut out)));
        });
        group.bench_function(format!("sequential-close/read{quantity}"), |b| {
            b.iter(|| ours_round_trip(&mut closing, black_box(&mut out)));
        });
        let request = request_adu(quantity);
        let mut response = response_adu(quantity);
        group.bench_function(format!("floor/read{quantity}"), |b| {
            b.iter(|| floor_round_trip(&mut raw, black_box(&request), &mut response));
        });
    }
    group.throughput(Throughput::Elements(DEPTH as u64));
    let requests = batch();
    group.bench_function(format!("pipelined/read10x{DEPTH}"), |b| {
        b.iter(|| ours_pipelined(&mut client, black_box(&requests)));
    });
    group.bench_function(format!("pipelined/read10x{DEPTH}-coalesced"), |b| {
        b.iter(|| ours_pipelined(&mut coalescing_client, black_box(&requests)));
    });
    let request = request_adu(10);
    let mut response = response_adu(10);
    group.bench_function(format!("floor/read10x{DEPTH}"), |b| {
        b.iter(|| floor_pipelined(&mut raw, black_box(&request), &mut response, DEPTH));
    });
    group.finish();
    drop(client);
    drop(closing);
    drop(coalescing_client);
    server.shutdown().expect("stop the simulator");
    coalescing_server
        .shutdown()
        .expect("stop the coalescing simulator");
}

/// Round-trip times of one case.
struct Samples {
    name: String,
    per_run: usize,
    times: Vec<Duration>,
}

impl Samples {
    fn new(name: String, per_run: usize, samples: usize) -> Self {
        Self {
            name,
            per_run,
            times: Vec::with_capacity(samples),
        }
    }

    fn time(&mut self, run: impl FnOnce()) {
        let begin = Instant::now();
        run();
        self.times.push(begin.elapsed());
    }

    /// Requests per second of the time spent in the runs.
    fn rate(&self) -> f64 {
        let total: Duration = self.times.iter().sum();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let requests = (self.times.len() * self.per_run) as f64;
        requests / total.as_secs_f64()
    }

    /// Prints requests/s, p50 and p99 (`self.times` gets sorted).
    fn print(&mut self) -> f64 {
        self.times.sort_unstable();
        let len = self.times.len();
        let percentile = |p: usize| self.times[(len * p / 100).min(len - 1)].as_secs_f64() * 1e6;
        let rate = self.rate();
        println!(
            "{:<22} {rate:>10.0} req/s   p50 {:>8.1} us   p99 {:>8.1} us",
            self.name,
            percentile(50),
            percentile(99),
        );
        rate
    }
}

/// Round trips timed in a row before switching between ours and the floor: long enough that
/// each side runs with its own code and data in the caches (as it would alone), short enough
/// that both see the same load on the machine.
const BLOCK: usize = 500;

/// Times `samples` runs of `ours` and of `floor`, alternating in blocks of [`BLOCK`] so that
/// both see the same load on the machine (after a warm-up of a tenth as many), and prints both
/// and their ratio.
fn paired(
    name: &str,
    samples: usize,
    per_run: usize,
    ours: impl FnMut(),
    floor: impl FnMut(),
) -> (f64, f64) {
    paired_named(name, name, samples, per_run, ours, floor)
}

/// [`paired`] with the floor's case named apart (`floor_name`).
fn paired_named(
    name: &str,
    floor_name: &str,
    samples: usize,
    per_run: usize,
    mut ours: impl FnMut(),
    mut floor: impl FnMut(),
) -> (f64, f64) {
    for _ in 0..samples / 10 {
        ours();
        floor();
    }
    let mut a = Samples::new(format!("ours/{name}"), per_run, samples);
    let mut b = Samples::new(format!("floor/{floor_name}"), per_run, samples);
    let mut done = 0;
    while done < samples {
        let block = BLOCK.min(samples - done);
        for _ in 0..block {
            a.time(&mut ours);
        }
        for _ in 0..block {
            b.time(&mut floor);
        }
        done += block;
    }
    let (ours_rate, floor_rate) = (a.print(), b.print());
    println!("{:<22} {:>10.3} x floor", "", ours_rate / floor_rate);
    (ours_rate, floor_rate)
}

/// The `LOOPBACK_LATENCY` mode: per-round-trip latency percentiles (criterion gives medians of
/// batches only), ours and the floor interleaved in blocks.
fn latency(samples: usize) {
    let (server, mut client) = ours(false);
    let mut closing = closing_client(&server);
    let (coalescing_server, mut coalescing_client) = ours(true);
    let mut raw = floor();
    println!("{samples} samples per case; latency of one round trip (pipelined: of the batch)");
    let mut sequential_floor = 0.0_f64;
    for quantity in QUANTITIES {
        let mut out = vec![0u16; usize::from(quantity)];
        let request = request_adu(quantity);
        let mut response = response_adu(quantity);
        let (_, floor_rate) = paired(
            &format!("read{quantity}"),
            samples,
            1,
            || ours_round_trip(&mut client, &mut out),
            || floor_round_trip(&mut raw, &request, &mut response),
        );
        if quantity == 10 {
            sequential_floor = floor_rate;
        }
        paired_named(
            &format!("read{quantity}-close"),
            &format!("read{quantity}"),
            samples,
            1,
            || ours_round_trip(&mut closing, &mut out),
            || floor_round_trip(&mut raw, &request, &mut response),
        );
    }
    let requests = batch();
    let request = request_adu(10);
    let mut response = response_adu(10);
    let (pipelined, _) = paired(
        &format!("read10x{DEPTH}"),
        samples,
        DEPTH,
        || ours_pipelined(&mut client, &requests),
        || floor_pipelined(&mut raw, &request, &mut response, DEPTH),
    );
    // The same raw floor (one write per request): the floor has no Modbus code to coalesce.
    let (coalesced, _) = paired_named(
        &format!("read10x{DEPTH}-coalesced"),
        &format!("read10x{DEPTH}"),
        samples,
        DEPTH,
        || ours_pipelined(&mut coalescing_client, &requests),
        || floor_pipelined(&mut raw, &request, &mut response, DEPTH),
    );
    println!(
        "{:<22} {:>10.3} x the sequential read10 floor",
        "ours pipelined",
        pipelined / sequential_floor
    );
    println!(
        "{:<22} {:>10.3} x the sequential read10 floor",
        "ours coalesced",
        coalesced / sequential_floor
    );
    drop(client);
    drop(closing);
    drop(coalescing_client);
    server.shutdown().expect("stop the simulator");
    coalescing_server
        .shutdown()
        .expect("stop the coalescing simulator");
}

fn main() {
    if let Some(samples) = std::env::var("LOOPBACK_LATENCY")
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|&samples| samples > 0)
    {
        latency(samples);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    sequential(&mut criterion);
    criterion.final_summary();
}
