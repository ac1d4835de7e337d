//! What the scale benches share (`harvest_scale` here and `mqtt_scale` in `harvest/`, which
//! takes this file by path): child processes of the bench binary and the simulator one, the
//! 20-point map, a latency histogram,
//! and the `/proc` readings of CPU, memory, load and the descriptor limit (Linux).

#![allow(dead_code)] // each bench uses a part

use std::io::{self, BufRead, BufReader, Lines, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use modbus_stack::point::{Point, PointKind, PointMap, Table};
use modbus_stack::server::tcp::{Config, TcpServer};
use modbus_stack::sim;
use modbus_stack::value::{DataType, Order};

/// Points per device.
pub(crate) const POINTS: usize = 20;
/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;
/// How long a child process may take to stop when asked.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// A bench option given in seconds: finite, above 0, below a day.
pub(crate) fn seconds(name: &str, text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value < 86_400.0 => Ok(value),
        _ => Err(format!("{name} {text}: give seconds, more than 0")),
    }
}

/// The simulator process: `count` servers on 127.0.0.1 over one store, their ports on
/// stdout, then `ready`; serves until the parent closes stdin (or dies, which closes it).
pub(crate) fn serve_simulators(count: usize) -> io::Result<()> {
    let store = sim::store();
    // Varied holding registers, so the decoded values are not all zero.
    let values: Vec<u16> = (0..64u16).map(|i| i.wrapping_mul(7919)).collect();
    store
        .write_holding_registers(0, &values)
        .map_err(|code| io::Error::other(format!("seeding the store: {code:?}")))?;
    let config = Config {
        // Only the engine connects, once per port.
        max_connections: 4,
        ..Config::tcp()
    };
    let mut servers = Vec::with_capacity(count);
    let mut out = io::stdout().lock();
    for _ in 0..count {
        let server = TcpServer::bind("127.0.0.1:0", config)?.spawn(store.clone())?;
        writeln!(out, "{}", server.local_addr().port())?;
        servers.push(server);
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    let _ = io::stdin().read_to_end(&mut Vec::new());
    for server in servers {
        server.shutdown()?;
    }
    Ok(())
}

/// A child process of this binary in `role`, talking over its stdin and stdout.
pub(crate) struct Helper {
    /// The child process.
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Helper {
    /// Starts it with `role` set to `value` and `not` (the measured-service role) unset.
    pub(crate) fn start(role: &str, value: &str, not: &str) -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(role, value)
            .env_remove(not)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// The next line; a child that failed ends its stdout, so this returns.
    pub(crate) fn line(&mut self) -> io::Result<String> {
        self.stdout
            .next()
            .unwrap_or_else(|| Err(io::Error::other("the child process ended")))
    }

    /// Writes `line` to its stdin.
    pub(crate) fn say(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Its `/proc` stat file.
    pub(crate) fn stat(&self) -> String {
        format!("/proc/{}/stat", self.child.id())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; kill only if it does not, in time.
        self.stdin = None;
        let deadline = Instant::now() + CHILD_DEADLINE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator process and its ports.
pub(crate) fn start_simulators(
    role: &str,
    not: &str,
    count: usize,
) -> Result<(Helper, Vec<u16>), String> {
    let mut helper =
        Helper::start(role, &count.to_string(), not).map_err(|e| format!("simulators: {e}"))?;
    let mut ports = Vec::with_capacity(count);
    loop {
        let line = helper.line().map_err(|e| format!("simulators: {e}"))?;
        if line == "ready" {
            break;
        }
        ports.push(
            line.parse::<u16>()
                .map_err(|e| format!("simulator said {line:?}: {e}"))?,
        );
    }
    if ports.len() != count {
        return Err(format!("{} of {count} simulators started", ports.len()));
    }
    Ok((helper, ports))
}

/// 20 points in 2 reads: 10 holding and 10 input registers of mixed types, each block
/// contiguous (22 registers), so the planner coalesces each into one request.
pub(crate) fn point_map() -> PointMap {
    let kinds = [
        DataType::U16,
        DataType::I16,
        DataType::U32,
        DataType::I32,
        DataType::F32,
        DataType::U64,
        DataType::F64,
        DataType::U16,
        DataType::I16,
        DataType::I64,
    ];
    let mut points = Vec::with_capacity(POINTS);
    for (table, base, prefix) in [
        (Table::HoldingRegisters, 0u16, "hr"),
        (Table::InputRegisters, 100u16, "ir"),
    ] {
        let mut address = base;
        for (index, data_type) in kinds.iter().enumerate() {
            let order = if index % 2 == 0 {
                Order::Abcd
            } else {
                Order::Cdab
            };
            points.push(Point::new(
                format!("{prefix}{index}"),
                1,
                table,
                address,
                PointKind::number(*data_type, order),
            ));
            address += data_type.registers();
        }
    }
    PointMap::new(points).expect("the bench's point map is valid")
}

/// CPU seconds (user + system) of the process or thread whose `stat` file this is.
#[allow(clippy::cast_precision_loss)] // ticks of one run stay far below 2^52
pub(crate) fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name may hold spaces and parentheses; the fields follow the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // Field 14 (utime) and 15 (stime) of proc(5); `fields` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// This process's resident memory in KiB.
pub(crate) fn rss_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The one-minute load average (NaN if unknown).
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// This process's limit on open descriptors (one socket per device).
pub(crate) fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Durations with bounded memory (the collectors must not grow): 10 µs buckets up to 100 ms,
/// 1 ms up to 10 s, 100 ms up to 1000 s, then one bucket.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    tiers: [(u64, Vec<u64>); 3],
    over: u64,
    count: u64,
    /// The largest value recorded.
    pub(crate) max: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            tiers: [10, 1_000, 100_000].map(|step| (step, vec![0; 10_000])),
            over: 0,
            count: 0,
            max: Duration::ZERO,
        }
    }

    pub(crate) fn record(&mut self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        let bucket = self.tiers.iter_mut().find_map(|(step, buckets)| {
            usize::try_from(micros / *step)
                .ok()
                .and_then(|i| buckets.get_mut(i))
        });
        match bucket {
            Some(bucket) => *bucket += 1,
            None => self.over += 1,
        }
        self.count += 1;
        self.max = self.max.max(value);
    }

    /// The upper bound of the bucket holding the `quantile` (0..=1).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank among at most millions of values"
    )]
    pub(crate) fn quantile(&self, quantile: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((quantile * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (step, buckets) in &self.tiers {
            for (index, count) in buckets.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return Duration::from_micros((index as u64 + 1) * step).min(self.max);
                }
            }
        }
        self.max
    }
}
