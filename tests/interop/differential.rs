//! Differential testing: the same raw request bytes to two servers, the response bytes side by
//! side: libmodbus with pymodbus, and our simulator with libmodbus.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use modbus_stack::frame::{Status, tcp};

/// How long to wait for responses after the last write of a case.
const READ_DEADLINE: Duration = Duration::from_millis(1500);
/// Pause between the segments of a split case.
const SEGMENT_PAUSE: Duration = Duration::from_millis(50);

/// One case: byte segments written on a fresh connection, with a pause between segments.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) segments: Vec<Vec<u8>>,
    /// Responses we expect at most (reading stops early once this many are in).
    pub(crate) responses: usize,
}

impl Case {
    /// One request ADU in one write.
    pub(crate) fn whole(name: &'static str, adu: Vec<u8>) -> Self {
        Self {
            name,
            segments: vec![adu],
            responses: 1,
        }
    }

    /// Several ADUs pipelined in one write.
    pub(crate) fn pipelined(name: &'static str, adus: &[Vec<u8>]) -> Self {
        Self {
            name,
            segments: vec![adus.concat()],
            responses: adus.len(),
        }
    }

    /// One ADU split at the given offsets into separate writes.
    pub(crate) fn split(name: &'static str, adu: &[u8], cuts: &[usize]) -> Self {
        let mut segments = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            segments.push(adu[start..cut].to_vec());
            start = cut;
        }
        segments.push(adu[start..].to_vec());
        Self {
            name,
            segments,
            responses: 1,
        }
    }
}

/// What one server did with one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observed {
    /// Each response ADU, as raw bytes.
    pub(crate) responses: Vec<Vec<u8>>,
    /// Bytes that did not form a whole ADU before the deadline or close.
    pub(crate) trailing: Vec<u8>,
    /// The server closed the connection.
    pub(crate) closed: bool,
}

impl Observed {
    /// A one-line summary: hex ADUs, `no response`, `closed`.
    pub(crate) fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .responses
            .iter()
            .map(|adu| {
                adu.iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if parts.is_empty() {
            parts.push("no response".into());
        }
        if !self.trailing.is_empty() {
            parts.push(format!("+{} stray bytes", self.trailing.len()));
        }
        if self.closed {
            parts.push("closed".into());
        }
        parts.join(" | ")
    }
}

/// Runs `case` against the server at `addr` on a fresh connection.
pub(crate) fn observe(addr: &str, case: &Case) -> Observed {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    for (i, segment) in case.segments.iter().enumerate() {
        if i > 0 {
            thread::sleep(SEGMENT_PAUSE);
        }
        if stream.write_all(segment).is_err() {
            break;
        }
    }
    let deadline = Instant::now() + READ_DEADLINE;
    let mut buf = Vec::new();
    let mut observed = Observed {
        responses: Vec::new(),
        trailing: Vec::new(),
        closed: false,
    };
    while observed.responses.len() < case.responses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) => {
                observed.closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => {
                observed.closed = true;
                break;
            }
            Err(_) => break, // deadline
        }
        // Cut whole ADUs by the MBAP length.
        while let Status::Complete { frame, consumed } = tcp::parse(&buf) {
            observed.responses.push(frame.as_bytes().to_vec());
            buf.drain(..consumed);
        }
    }
    observed.trailing = buf;
    observed
}

/// Runs every case against both servers (the two sides in parallel, the cases in order, so
/// both servers see the same writes in the same order); returns `(case, a, b)` per case.
pub(crate) fn compare<'c>(
    a: &str,
    b: &str,
    cases: &'c [Case],
) -> Vec<(&'c Case, Observed, Observed)> {
    let run =
        |addr: &str| -> Vec<Observed> { cases.iter().map(|case| observe(addr, case)).collect() };
    let (seen_a, seen_b) = thread::scope(|scope| {
        let side_a = scope.spawn(|| run(a));
        let seen_b = run(b);
        (side_a.join().expect("side a"), seen_b)
    });
    cases
        .iter()
        .zip(seen_a)
        .zip(seen_b)
        .map(|((case, x), y)| (case, x, y))
        .collect()
}
