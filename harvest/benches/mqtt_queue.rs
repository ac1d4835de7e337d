//! The store-and-forward queue's own speed, against a floor measured in the same run: the same
//! bytes written through a buffered file, synced once, and read back.
//!
//! Two cases, 100 000 records of 150 B (a plain-JSON poll is about 430 B, a Sparkplug one
//! less; 150 B makes the per-record cost show):
//! - **live**: a poll cycle's 1000 records pushed, then read and acknowledged, as the sender
//!   keeps up with a connected broker;
//! - **drain**: all of them pushed (a broker outage), then read back in the sender's batches
//!   of 256 and acknowledged.
//!
//! Each case and its floor run alternately, 5 rounds; the medians and their ratio are printed.
//!
//! ```text
//! cargo bench -p modbus-harvest --bench mqtt_queue
//! ```
//!
//! Without `--bench` (`cargo test --benches`) each case runs once on 2000 records and checks
//! that every record comes back once, in order, with its bytes.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use modbus_harvest::mqtt::queue::{Queue, QueueOptions};

const RECORD: usize = 150;
/// A record's framing on disk (length, checksum, sequence), written by the floor too.
const FRAMING: usize = 16;
const ROUNDS: usize = 5;
/// Records per measured case.
const RECORDS: u64 = 100_000;

/// A case: runs on a fresh directory with this many records and returns its time.
type Case = fn(&Path, u64) -> Duration;

fn record(seq: u64) -> [u8; RECORD] {
    let mut bytes = [0x5A; RECORD];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    bytes
}

/// Checks a record read back is the one pushed as `seq`.
fn check(seq: u64, bytes: &[u8], expected: u64) {
    assert_eq!(seq, expected, "records come back in order, none missing");
    assert_eq!(bytes, record(seq), "record {seq} comes back with its bytes");
}

/// Push a cycle, read it, acknowledge it: the connected sender's pattern.
fn live(dir: &Path, records: u64) -> Duration {
    let start = Instant::now();
    let mut queue = Queue::open(dir, QueueOptions::default()).expect("open the queue");
    let mut out = Vec::with_capacity(1000);
    let mut next = 0;
    for seq in 0..records {
        queue.push(&record(seq)).expect("push");
        if seq % 1000 == 999 || seq + 1 == records {
            queue.flush().expect("flush");
            out.clear();
            queue.read(next, 1000, 1 << 20, &mut out).expect("read");
            for (got, bytes) in &out {
                check(*got, bytes, next);
                next += 1;
            }
            queue.ack_through(next - 1).expect("ack");
        }
    }
    queue.sync().expect("sync");
    assert_eq!(next, records);
    start.elapsed()
}

/// Push everything first, then read it back in batches: the drain after an outage.
fn drain(dir: &Path, records: u64) -> Duration {
    let start = Instant::now();
    let mut queue = Queue::open(dir, QueueOptions::default()).expect("open the queue");
    for seq in 0..records {
        queue.push(&record(seq)).expect("push");
    }
    queue.flush().expect("flush");
    let mut out = Vec::with_capacity(256);
    let mut next = 0;
    while next < records {
        out.clear();
        queue.read(next, 256, 1 << 20, &mut out).expect("read");
        assert!(!out.is_empty(), "record {next} is there to read");
        for (got, bytes) in &out {
            check(*got, bytes, next);
            next += 1;
        }
        queue.ack_through(next - 1).expect("ack");
    }
    queue.sync().expect("sync");
    assert!(queue.is_empty());
    start.elapsed()
}

/// The floor: the same bytes through a buffered file, synced, read back record by record.
fn floor(dir: &Path, records: u64) -> Duration {
    let path = dir.join("floor");
    let start = Instant::now();
    let mut file = BufWriter::new(File::create(&path).expect("create"));
    for seq in 0..records {
        file.write_all(&[0; FRAMING]).expect("write");
        file.write_all(&record(seq)).expect("write");
    }
    file.into_inner().expect("flush").sync_data().expect("sync");
    let mut reader = BufReader::new(File::open(&path).expect("open"));
    let mut framing = [0; FRAMING];
    for _ in 0..records {
        reader.read_exact(&mut framing).expect("read");
        let mut payload = vec![0; RECORD];
        reader.read_exact(&mut payload).expect("read");
    }
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn fresh() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let cases: [(&str, Case); 2] = [("live", live), ("drain", drain)];
    if !bench {
        for (name, case) in cases {
            case(fresh().path(), 2000);
            println!("mqtt_queue {name}: 2000 records back once, in order");
        }
        return;
    }
    println!("mqtt_queue: {RECORDS} records of {RECORD} B, median of {ROUNDS} rounds");
    for (name, case) in cases {
        let (mut queue_times, mut floor_times) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            queue_times.push(case(fresh().path(), RECORDS));
            floor_times.push(floor(fresh().path(), RECORDS));
        }
        let (queue, floor) = (median(queue_times), median(floor_times));
        #[allow(clippy::cast_precision_loss)] // a rate
        let rate = RECORDS as f64 / queue.as_secs_f64();
        println!(
            "{name:>6}: queue {:7.2} ms ({:.2} M records/s), buffered file {:7.2} ms, ratio {:.2}×",
            queue.as_secs_f64() * 1e3,
            rate / 1e6,
            floor.as_secs_f64() * 1e3,
            queue.as_secs_f64() / floor.as_secs_f64(),
        );
    }
}
