//! MQTT publishing at scale: N devices × 20 points polled every second over 127.0.0.1 (the
//! simulators in another process), published as plain JSON at QoS 1 to a local mosquitto, and
//! read back by a subscriber in a third process. The issue: publishing must not slow polling.
//!
//! Two fresh service processes ([`modbus_harvest::Service`]), each warmed up for `--warmup`
//! seconds and then measured over a window of `--seconds`:
//!
//! 1. MQTT off: samples polled per second, poll lateness (p50/p99), service CPU in cores.
//! 2. MQTT on: the same, plus samples the subscriber received per second, end-to-end latency
//!    (receive time − the poll's timestamp in the payload), the broker's and subscriber's CPU;
//!    then the broker is stopped for `--outage` seconds (queue size on disk and polls queued at
//!    its end) and started again on the same port, and the backlog is timed until it is back
//!    to at most one second of polls (N), with the drain rate as a ratio to the live rate.
//!
//! Ratios are against the MQTT-off run (cores, poll lateness) and against what was polled in
//! the same run (published / polled, which must be 1.000).
//!
//! ```text
//! cargo bench -j1 -p modbus-harvest --bench mqtt_scale                  # N = 1000, 60 s, 60 s outage
//! cargo bench -j1 -p modbus-harvest --bench mqtt_scale -- --devices 50 --seconds 10 --warmup 3 --outage 10
//! ```
//!
//! Options: `--devices N` (1000), `--seconds S` (60), `--warmup S` (15), `--outage S` (60),
//! `--broker-nodelay` (mosquitto's `set_tcp_nodelay true`: with its default, Nagle on its
//! sockets, delayed ACKs put a 40 ms tail on the end-to-end latency that is the broker's).
//! The publisher reconnects with a backoff of 100 ms to 1 s (the default grows to 10 s), so
//! the drain time measures the publisher, not the backoff; the reconnect delay is shown apart.
//!
//! Without `--bench` (`cargo test --benches`) it runs a smoke configuration of 5 devices with a
//! 2 s outage and checks that every sample polled was published, acknowledged and received
//! once, and that the backlog drains.
//!
//! The same binary is the simulator process ([`SIMULATORS_ENV`]), the subscriber process
//! ([`SUBSCRIBER_ENV`]: commands on stdin, answers on stdout) and the measured service process
//! ([`SERVICE_ENV`]: one measurement, its figures as one JSON line on stdout).

#[path = "../../benches/scale/mod.rs"]
mod scale;

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use modbus_harvest::Service;
use modbus_harvest::mqtt::{Broker, Mode, MqttConfig, MqttStats};
use modbus_stack::harvest::{DeviceConfig, Event, Link, Quality, Subscription};
use scale::{
    Helper, Histogram, POINTS, cpu_seconds, load_average, open_files_limit, point_map, rss_kib,
    seconds, serve_simulators, start_simulators,
};
use serde::{Deserialize, Serialize};

/// Set to N in the simulator process.
const SIMULATORS_ENV: &str = "MQTT_SCALE_SIMULATORS";
/// Set to the broker's port in the subscriber process.
const SUBSCRIBER_ENV: &str = "MQTT_SCALE_SUBSCRIBER";
/// Set to `on` or `off` (MQTT) in the service process.
const SERVICE_ENV: &str = "MQTT_SCALE_SERVICE";
/// Poll interval of every device.
const INTERVAL: Duration = Duration::from_secs(1);
/// Topic prefix of the samples.
const PREFIX: &str = "scale";
/// Between the live window's end and the outage: polls of the window finish and arrive.
const SETTLE: Duration = Duration::from_secs(2);
/// Most time a child process or the broker may take to start or stop.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);
/// Most time the publisher may take to reconnect after the broker is back.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// How long, after the drain, the subscriber may take to receive the rest.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(30);

/// What one measurement is asked to do.
#[derive(Debug, Clone)]
struct Options {
    devices: usize,
    seconds: f64,
    warmup: f64,
    outage: f64,
    broker_nodelay: bool,
    bench: bool,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            devices: 1000,
            seconds: 60.0,
            warmup: 15.0,
            outage: 60.0,
            broker_nodelay: false,
            bench: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => options.bench = true,
                "--broker-nodelay" => options.broker_nodelay = true,
                "--devices" => {
                    let text = value("--devices")?;
                    options.devices = match text.parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(format!("--devices {text}: give a count of at least 1")),
                    };
                }
                "--seconds" => options.seconds = seconds("--seconds", &value("--seconds")?)?,
                "--warmup" => options.warmup = seconds("--warmup", &value("--warmup")?)?,
                "--outage" => options.outage = seconds("--outage", &value("--outage")?)?,
                // Filters and flags cargo may pass along.
                _ => {}
            }
        }
        Ok(options)
    }

    fn to_args(&self) -> Vec<String> {
        let nodelay = self.broker_nodelay.then(|| "--broker-nodelay".to_string());
        [
            ("--devices", self.devices.to_string()),
            ("--seconds", self.seconds.to_string()),
            ("--warmup", self.warmup.to_string()),
            ("--outage", self.outage.to_string()),
        ]
        .into_iter()
        .flat_map(|(name, value)| [name.to_string(), value])
        .chain(nodelay)
        .collect()
    }
}

fn main() -> ExitCode {
    let role = |name: &str| std::env::var(name).ok();
    let result = if let Some(count) = role(SIMULATORS_ENV) {
        count
            .parse::<usize>()
            .map_err(|e| format!("{SIMULATORS_ENV}={count}: {e}"))
            .and_then(|count| serve_simulators(count).map_err(|e| format!("simulators: {e}")))
    } else if let Some(port) = role(SUBSCRIBER_ENV) {
        port.parse::<u16>()
            .map_err(|e| format!("{SUBSCRIBER_ENV}={port}: {e}"))
            .and_then(|port| serve_subscriber(port).map_err(|e| format!("subscriber: {e}")))
    } else {
        match Options::parse(std::env::args().skip(1)) {
            Err(error) => Err(error),
            Ok(options) => match role(SERVICE_ENV) {
                Some(mqtt) => measure(&options, mqtt == "on").and_then(|figures| {
                    let line = serde_json::to_string(&figures).map_err(|e| e.to_string())?;
                    println!("FIGURES {line}");
                    Ok(())
                }),
                None if options.bench => bench(&options),
                None => {
                    smoke();
                    Ok(())
                }
            },
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mqtt_scale: {error}");
            ExitCode::FAILURE
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since the Unix epoch, as the publisher writes a payload's `timestamp`.
fn epoch(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Child processes: the simulators, the subscriber, the broker.

/// A mosquitto of the bench's own on a free 127.0.0.1 port, the same across restarts.
struct Mosquitto {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    binary: PathBuf,
}

impl Mosquitto {
    fn start(dir: &Path, nodelay: bool) -> Result<Self, String> {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .iter()
            .map(Path::new)
            .find(|path| path.exists())
            .ok_or("mosquitto is not installed: `apt-get install mosquitto`")?
            .to_path_buf();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        // Started as root, mosquitto drops to its own user, which must write its database
        // here. Persistence keeps the subscriber's session (and what is queued for it) across
        // the outage; no limits on queued or in-flight messages, so the broker drops nothing.
        let rw = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        std::fs::set_permissions(dir, rw).map_err(|e| e.to_string())?;
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nlog_dest stderr\nlog_type error\nmax_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay {nodelay}\n",
                dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut broker = Self {
            child: None,
            port,
            config,
            binary,
        };
        broker.restart()?;
        Ok(broker)
    }

    /// Starts it (again), on the same port.
    fn restart(&mut self) -> Result<(), String> {
        let child = Command::new(&self.binary)
            .env_remove(SERVICE_ENV)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start mosquitto: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + CHILD_DEADLINE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("mosquitto did not listen on {}", self.port));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// SIGTERM, as an operator would stop it: it saves the sessions first.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stat(&self) -> String {
        self.child
            .as_ref()
            .map(|child| format!("/proc/{}/stat", child.id()))
            .unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The subscriber process.

/// A window of poll timestamps, in seconds since the epoch: `[start, end)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Window {
    start: f64,
    end: f64,
}

impl Window {
    fn holds(&self, timestamp: f64) -> bool {
        timestamp >= self.start && timestamp < self.end
    }
}

/// What the subscriber saw of the samples polled in one window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Arrivals {
    /// First arrivals (repeats after a reconnect are not counted).
    samples: u64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
}

/// The subscriber's answer to `report`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Received {
    windows: Vec<Arrivals>,
    /// Sample messages, repeats included.
    messages: u64,
    /// Samples that came again (sequence numbers already seen).
    repeats: u64,
    /// Sequence numbers skipped: samples lost.
    missing: u64,
    /// Messages that were not samples (statuses, the service's birth).
    other: u64,
}

/// The fields of a plain-mode sample payload the subscriber needs.
#[derive(Deserialize)]
struct Payload {
    timestamp: f64,
    sequence: u64,
    run: u64,
}

#[derive(Default)]
struct SubscriberState {
    windows: Vec<(Window, u64, Histogram)>,
    /// Per topic: the run and the next sequence number expected.
    next: HashMap<String, (u64, u64)>,
    totals: Received,
}

impl SubscriberState {
    fn receive(&mut self, topic: &str, payload: &[u8]) {
        let Ok(sample) = serde_json::from_slice::<Payload>(payload) else {
            self.totals.other += 1;
            return;
        };
        let received = epoch(SystemTime::now());
        self.totals.messages += 1;
        let next = self
            .next
            .entry(topic.to_string())
            .or_insert((sample.run, 1));
        if next.0 != sample.run {
            *next = (sample.run, 1);
        }
        if sample.sequence < next.1 {
            self.totals.repeats += 1;
            return;
        }
        self.totals.missing += sample.sequence - next.1;
        next.1 = sample.sequence + 1;
        let latency = Duration::from_secs_f64((received - sample.timestamp).max(0.0));
        for (window, count, latencies) in &mut self.windows {
            if window.holds(sample.timestamp) {
                *count += 1;
                latencies.record(latency);
            }
        }
    }

    fn report(&self) -> Received {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Received {
            windows: self
                .windows
                .iter()
                .map(|(_, samples, latencies)| Arrivals {
                    samples: *samples,
                    latency_p50_ms: ms(latencies.quantile(0.50)),
                    latency_p99_ms: ms(latencies.quantile(0.99)),
                    latency_max_ms: ms(latencies.max),
                })
                .collect(),
            ..self.totals.clone()
        }
    }
}

/// Subscribes to `PREFIX/#` at QoS 1 with a persistent session, prints `ready` at the SUBACK,
/// then answers stdin: `window START END` adds a window, `report` prints `REPORT {json}`.
/// Ends when stdin closes.
fn serve_subscriber(port: u16) -> io::Result<()> {
    use rumqttc::{Client, Event as MqttEvent, MqttOptions, Outgoing, Packet, QoS};
    let filter = format!("{PREFIX}/#");
    let mut options = MqttOptions::new("mqtt-scale-subscriber", "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 64);
    let state = Arc::new(Mutex::new(SubscriberState::default()));
    let (subscribed, ready) = std::sync::mpsc::channel();
    let thread = {
        let (client, state) = (client.clone(), Arc::clone(&state));
        thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(MqttEvent::Incoming(Packet::Publish(publish))) => {
                        lock(&state).receive(&publish.topic, &publish.payload);
                    }
                    // A broker that lost the session (or a first connect): subscribe (again).
                    Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                        let _ = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                    }
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed.send(());
                    }
                    Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    // The broker is down: rumqttc reconnects at the next poll.
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        })
    };
    ready
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| io::Error::other("no SUBACK from the broker"))?;
    let mut out = io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["window", start, end] => {
                let bound = |text: &str| text.parse::<f64>().map_err(io::Error::other);
                let window = Window {
                    start: bound(start)?,
                    end: bound(end)?,
                };
                lock(&state).windows.push((window, 0, Histogram::new()));
            }
            ["report"] => {
                let report = lock(&state).report();
                writeln!(out, "REPORT {}", serde_json::to_string(&report)?)?;
                out.flush()?;
            }
            _ => return Err(io::Error::other(format!("unknown command {line:?}"))),
        }
    }
    let _ = client.disconnect();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !thread.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The subscriber process, seen from the service process.
struct SubscriberProcess(Helper);

impl SubscriberProcess {
    fn start(port: u16) -> Result<Self, String> {
        let mut helper = Helper::start(SUBSCRIBER_ENV, &port.to_string(), SERVICE_ENV)
            .map_err(|e| e.to_string())?;
        match helper.line() {
            Ok(line) if line == "ready" => Ok(Self(helper)),
            other => Err(format!("the subscriber did not start: {other:?}")),
        }
    }

    fn window(&mut self, window: Window) -> Result<(), String> {
        self.0
            .say(&format!("window {} {}", window.start, window.end))
            .map_err(|e| format!("subscriber: {e}"))
    }

    fn report(&mut self) -> Result<Received, String> {
        self.0
            .say("report")
            .map_err(|e| format!("subscriber: {e}"))?;
        let line = self.0.line().map_err(|e| format!("subscriber: {e}"))?;
        let json = line
            .strip_prefix("REPORT ")
            .ok_or_else(|| format!("subscriber said {line:?}"))?;
        serde_json::from_str(json).map_err(|e| format!("subscriber report: {e}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The service process: the collector of polls, and one measurement.

/// The polls whose timestamp fell in one window, as the engine reported them.
#[derive(Debug, Clone, Default)]
struct Polled {
    polls: u64,
    samples: u64,
    bad: u64,
    incomplete: u64,
    lateness: Histogram,
}

/// A poll's samples so far: the earliest timestamp (the poll's, as the publisher takes it),
/// good and bad counts.
type Pending = (f64, u64, u64);

/// The bench's own engine subscriber in the service process: it groups samples into polls as
/// the publisher does, so both sides count a poll in the same window.
struct Collector {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
    windows: Arc<Mutex<Vec<(Window, Polled)>>>,
    /// `/proc/PID/task/TID/stat` of its thread, for its share of the process's CPU.
    stat: String,
}

impl Collector {
    fn start(subscription: Subscription) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let windows: Arc<Mutex<Vec<(Window, Polled)>>> = Arc::default();
        let (stat_tx, stat_rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, windows) = (Arc::clone(&stop), Arc::clone(&windows));
            thread::spawn(move || {
                let stat = std::fs::read_link("/proc/thread-self")
                    .map(|link| Path::new("/proc").join(link).join("stat"))
                    .map(|path| path.display().to_string())
                    .unwrap_or_default();
                let _ = stat_tx.send(stat);
                let mut pending: HashMap<Arc<str>, Pending> = HashMap::new();
                // Bounded by the stop flag, which is set before the engine stops.
                while !stop.load(Ordering::Relaxed) {
                    match subscription.recv_timeout(Duration::from_millis(100)) {
                        Some(Event::Sample(sample)) => {
                            let at = epoch(sample.timestamp);
                            let poll = pending.entry(sample.device).or_insert((at, 0, 0));
                            poll.0 = poll.0.min(at);
                            if sample.quality == Quality::Good {
                                poll.1 += 1;
                            } else {
                                poll.2 += 1;
                            }
                        }
                        Some(Event::Polled(report)) => {
                            let Some((at, good, bad)) = pending.remove(&report.device) else {
                                continue;
                            };
                            for (window, polled) in lock(&windows).iter_mut() {
                                if window.holds(at) {
                                    polled.polls += 1;
                                    polled.samples += good;
                                    polled.bad += bad;
                                    polled.incomplete += u64::from(!report.complete);
                                    polled.lateness.record(report.lateness);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                subscription.dropped()
            })
        };
        let stat = stat_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        Self {
            stop,
            thread,
            windows,
            stat,
        }
    }

    /// Counts polls in `window` from now on; its index.
    fn open(&self, window: Window) -> usize {
        let mut windows = lock(&self.windows);
        windows.push((window, Polled::default()));
        windows.len() - 1
    }

    /// Ends an open window now: exact, since a poll is counted only after its timestamp.
    fn close(&self, index: usize) -> Window {
        let mut windows = lock(&self.windows);
        let window = &mut windows[index].0;
        window.end = epoch(SystemTime::now());
        *window
    }

    fn polled(&self, index: usize) -> Polled {
        lock(&self.windows)[index].1.clone()
    }

    /// Stops it; the events the engine dropped because it fell behind.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(u64::MAX)
    }
}

/// Resident memory of this process in MiB (`VmRSS`).
#[allow(clippy::cast_precision_loss, reason = "KiB of one process")]
fn rss_mib() -> f64 {
    rss_kib().map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
                Ok(meta) => meta.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// Polling in one phase, with the CPU it took.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Phase {
    seconds: f64,
    polls: u64,
    samples: u64,
    bad: u64,
    incomplete: u64,
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    lateness_max_ms: f64,
    /// The service process's CPU seconds, the bench's collector thread excluded.
    service_cpu: f64,
    /// The collector thread's.
    collector_cpu: f64,
}

impl Phase {
    fn new(polled: &Polled, seconds: f64, cpu: &CpuSpan) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Self {
            seconds,
            polls: polled.polls,
            samples: polled.samples,
            bad: polled.bad,
            incomplete: polled.incomplete,
            lateness_p50_ms: ms(polled.lateness.quantile(0.50)),
            lateness_p99_ms: ms(polled.lateness.quantile(0.99)),
            lateness_max_ms: ms(polled.lateness.max),
            service_cpu: cpu.process - cpu.collector,
            collector_cpu: cpu.collector,
        }
    }

    fn cores(&self) -> f64 {
        self.service_cpu / self.seconds
    }
}

/// CPU seconds over a span: the service process, its collector thread, and the other
/// processes of the run.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSpan {
    process: f64,
    collector: f64,
    simulators: f64,
    broker: f64,
    subscriber: f64,
}

/// The `/proc` stat files whose CPU a span reads.
struct CpuProbe {
    files: [String; 5],
}

impl CpuProbe {
    fn read(&self) -> [f64; 5] {
        self.files
            .each_ref()
            .map(|file| cpu_seconds(file).unwrap_or(f64::NAN))
    }

    fn since(&self, start: [f64; 5]) -> CpuSpan {
        let now = self.read();
        let [process, collector, simulators, broker, subscriber] =
            std::array::from_fn(|i| now[i] - start[i]);
        CpuSpan {
            process,
            collector,
            simulators,
            broker,
            subscriber,
        }
    }
}

/// The figures of one service process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Figures {
    devices: usize,
    live: Phase,
    simulators_cpu: f64,
    rss_start_mib: f64,
    rss_end_mib: f64,
    load: (f64, f64),
    /// Engine events the collector missed (it fell behind).
    collector_missed: u64,
    mqtt: Option<MqttFigures>,
}

/// The publishing figures of the MQTT-on run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MqttFigures {
    /// What the subscriber received of the live window's polls.
    live: Arrivals,
    /// Messages the broker acknowledged during the live window.
    acknowledged: u64,
    /// Most polls queued and not yet acknowledged, sampled each second of the live window.
    backlog_max: u64,
    broker_cpu: f64,
    subscriber_cpu: f64,
    /// Polling while the broker was down.
    outage: Phase,
    /// Polls queued and their bytes (the queue's count, and the files) at the outage's end.
    outage_backlog: u64,
    outage_backlog_bytes: u64,
    outage_disk_bytes: u64,
    /// What the subscriber received, in the end, of the polls taken during the outage.
    outage_arrivals: Arrivals,
    /// From the broker's restart to the publisher's connection.
    reconnect_s: f64,
    /// From the connection to a backlog of at most N polls; `None` if it did not drain.
    drain_s: Option<f64>,
    /// Polls queued when the publisher reconnected.
    drain_backlog_start: u64,
    /// Messages acknowledged while draining.
    drain_acknowledged: u64,
    /// Polling while draining (the service's CPU includes the publishing).
    drain: Phase,
    drain_broker_cpu: f64,
    drain_subscriber_cpu: f64,
    /// The subscriber's totals at the end (repeats, samples missing, other messages).
    received: Received,
    /// The publisher's counters at the end.
    queued: u64,
    dropped: u64,
    missed_events: u64,
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// One measurement: a service with (`mqtt`) or without the publisher.
#[allow(
    clippy::too_many_lines,
    clippy::cast_precision_loss,
    reason = "one straight sequence of steps reads best in one piece; counts far below 2^52"
)]
fn measure(options: &Options, mqtt: bool) -> Result<Figures, String> {
    let n = options.devices;
    let label = if mqtt { "MQTT on" } else { "MQTT off" };
    if let Some(limit) = open_files_limit() {
        // The service holds one socket per device; the simulators three descriptors each.
        let needed = u64::try_from(n).unwrap_or(u64::MAX).saturating_mul(3) + 64;
        if limit < needed {
            return Err(format!(
                "{n} devices need about {needed} open files, the limit is {limit}: `ulimit -n {needed}`"
            ));
        }
    }
    let (simulators, ports) = start_simulators(SIMULATORS_ENV, SERVICE_ENV, n)?;
    let broker_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let queue_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (mut broker, mut subscriber) = if mqtt {
        let broker = Mosquitto::start(broker_dir.path(), options.broker_nodelay)?;
        let subscriber = SubscriberProcess::start(broker.port)?;
        (Some(broker), Some(subscriber))
    } else {
        (None, None)
    };
    let mqtt_config = broker.as_ref().map(|broker| {
        let mut config = MqttConfig::new(
            Broker {
                host: "127.0.0.1".into(),
                port: broker.port,
                tls: false,
            },
            "mqtt-scale",
            queue_dir.path().to_path_buf(),
        );
        config.mode = Mode::Plain {
            prefix: PREFIX.into(),
        };
        config.reconnect.initial = Duration::from_millis(100);
        config.reconnect.max = Duration::from_secs(1);
        config
    });
    let points = point_map();
    let devices: Vec<DeviceConfig> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            DeviceConfig::new(
                format!("device{index:04}"),
                Link::tcp(format!("127.0.0.1:{port}")),
                1,
                points.clone(),
            )
            .with_interval(INTERVAL)
        })
        .collect();
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let service = Service::start(devices, listen, mqtt_config).map_err(|e| e.to_string())?;
    let stats: Option<Arc<MqttStats>> = service.mqtt().cloned();
    // Room for two seconds of events: the engine drops what does not fit, and says so.
    let collector = Collector::start(service.engine().subscribe(n * (POINTS + 2) * 2));

    // The windows are fixed ahead, so the subscriber and the collector count the same polls.
    let now = epoch(SystemTime::now());
    let live = Window {
        start: now + options.warmup,
        end: now + options.warmup + options.seconds,
    };
    let outage_window = Window {
        start: live.end + SETTLE.as_secs_f64(),
        end: live.end + SETTLE.as_secs_f64() + options.outage,
    };
    let live_index = collector.open(live);
    let outage_index = collector.open(outage_window);
    if let Some(subscriber) = subscriber.as_mut() {
        subscriber.window(live)?;
        subscriber.window(outage_window)?;
    }
    let subscriber_stat = subscriber.as_ref().map(|s| s.0.stat()).unwrap_or_default();
    let mut probe = CpuProbe {
        files: [
            "/proc/self/stat".into(),
            collector.stat.clone(),
            simulators.stat(),
            broker.as_ref().map(Mosquitto::stat).unwrap_or_default(),
            subscriber_stat.clone(),
        ],
    };
    let until = |at: f64| {
        let wait = at - epoch(SystemTime::now());
        if wait > 0.0 {
            thread::sleep(Duration::from_secs_f64(wait));
        }
    };
    eprintln!(
        "  {label}: {n} devices added; warming up {} s",
        options.warmup
    );
    until(live.start);
    let load_start = load_average();
    let rss_start_mib = rss_mib();
    let cpu_start = probe.read();
    let acknowledged_start = stats.as_ref().map_or(0, |s| load(&s.acknowledged));
    let mut backlog_max = 0;
    let mut next_report = live.start + 10.0;
    // One tick a second, bounded by the window's end.
    while epoch(SystemTime::now()) < live.end {
        let left = live.end - epoch(SystemTime::now());
        thread::sleep(Duration::from_secs_f64(left.clamp(0.0, 1.0)));
        let backlog = stats.as_ref().map_or(0, |s| load(&s.backlog));
        backlog_max = backlog_max.max(backlog);
        let at = epoch(SystemTime::now());
        if at >= next_report && at < live.end {
            next_report += 10.0;
            eprintln!(
                "  {label}: {:.0} s of {:.0} s, {:.0} samples/s polled, backlog {backlog} polls, RSS {:.1} MiB",
                at - live.start,
                options.seconds,
                collector.polled(live_index).samples as f64 / (at - live.start),
                rss_mib()
            );
        }
    }
    let cpu_live = probe.since(cpu_start);
    let acknowledged = stats
        .as_ref()
        .map_or(0, |s| load(&s.acknowledged) - acknowledged_start);
    let rss_end_mib = rss_mib();
    let load_end = load_average();
    // Polls due in the window end within a response timeout or so after it.
    thread::sleep(Duration::from_millis(1500));
    let mut figures = Figures {
        devices: n,
        live: Phase::new(&collector.polled(live_index), options.seconds, &cpu_live),
        simulators_cpu: cpu_live.simulators,
        rss_start_mib,
        rss_end_mib,
        load: (load_start, load_end),
        ..Figures::default()
    };
    if let (Some(broker), Some(subscriber), Some(stats)) =
        (broker.as_mut(), subscriber.as_mut(), stats.as_ref())
    {
        let mut m = MqttFigures {
            acknowledged,
            backlog_max,
            broker_cpu: cpu_live.broker,
            subscriber_cpu: cpu_live.subscriber,
            ..MqttFigures::default()
        };
        until(outage_window.start);
        eprintln!("  {label}: broker stopped for {} s", options.outage);
        let cpu_outage_start = probe.read();
        broker.stop();
        let mut next_report = outage_window.start + 10.0;
        while epoch(SystemTime::now()) < outage_window.end {
            let left = outage_window.end - epoch(SystemTime::now());
            thread::sleep(Duration::from_secs_f64(left.clamp(0.0, 1.0)));
            let at = epoch(SystemTime::now());
            if at >= next_report && at < outage_window.end {
                next_report += 10.0;
                eprintln!(
                    "  {label}: broker down {:.0} s of {:.0} s, {} polls queued, {:.1} MiB",
                    at - outage_window.start,
                    options.outage,
                    load(&stats.backlog),
                    load(&stats.backlog_bytes) as f64 / f64::from(1 << 20)
                );
            }
        }
        m.outage_backlog = load(&stats.backlog);
        m.outage_backlog_bytes = load(&stats.backlog_bytes);
        m.outage_disk_bytes = dir_bytes(queue_dir.path());
        let cpu_outage = probe.since(cpu_outage_start);
        let restarted = Instant::now();
        broker.restart()?;
        probe.files[3] = broker.stat();
        eprintln!(
            "  {label}: broker back; {} polls queued ({:.1} MiB)",
            m.outage_backlog,
            m.outage_backlog_bytes as f64 / f64::from(1 << 20)
        );
        while !stats.connected.load(Ordering::Relaxed) {
            if restarted.elapsed() > RECONNECT_DEADLINE {
                return Err("the publisher did not reconnect".into());
            }
            thread::sleep(Duration::from_millis(5));
        }
        let connected = Instant::now();
        let drain_index = collector.open(Window {
            start: epoch(SystemTime::now()),
            end: f64::INFINITY,
        });
        m.reconnect_s = (connected - restarted).as_secs_f64();
        m.drain_backlog_start = load(&stats.backlog);
        let acknowledged_start = load(&stats.acknowledged);
        let cpu_drain_start = probe.read();
        // The drain must beat polling; a publisher slower than that never gets there.
        let drain_limit = Duration::from_secs_f64((options.outage * 5.0).max(30.0));
        let n_polls = u64::try_from(n).unwrap_or(u64::MAX);
        let mut next_report = Instant::now() + Duration::from_secs(10);
        while load(&stats.backlog) > n_polls && connected.elapsed() < drain_limit {
            thread::sleep(Duration::from_millis(20));
            if Instant::now() >= next_report {
                next_report += Duration::from_secs(10);
                eprintln!(
                    "  {label}: draining {:.0} s, {} polls left",
                    connected.elapsed().as_secs_f64(),
                    load(&stats.backlog)
                );
            }
        }
        let drained = load(&stats.backlog) <= n_polls;
        let drain_s = connected.elapsed().as_secs_f64();
        m.drain_s = drained.then_some(drain_s);
        m.drain_acknowledged = load(&stats.acknowledged) - acknowledged_start;
        let cpu_drain = probe.since(cpu_drain_start);
        m.drain_broker_cpu = cpu_drain.broker;
        m.drain_subscriber_cpu = cpu_drain.subscriber;
        let drain_window = collector.close(drain_index);
        eprintln!(
            "  {label}: {} after {drain_s:.1} s",
            if drained { "drained" } else { "NOT drained" }
        );
        // What was polled in the windows has arrived once the subscriber has at least as many.
        thread::sleep(Duration::from_millis(1500));
        let deadline = Instant::now() + ARRIVAL_DEADLINE;
        let expected = [live_index, outage_index].map(|i| collector.polled(i).samples);
        let received = loop {
            let received = subscriber.report()?;
            let arrived = received
                .windows
                .iter()
                .zip(expected)
                .all(|(arrivals, expected)| arrivals.samples >= expected);
            if arrived || Instant::now() > deadline {
                break received;
            }
            thread::sleep(Duration::from_millis(200));
        };
        m.live = received.windows.first().cloned().unwrap_or_default();
        m.outage_arrivals = received.windows.get(1).cloned().unwrap_or_default();
        m.received = Received {
            windows: Vec::new(),
            ..received
        };
        m.outage = Phase::new(&collector.polled(outage_index), options.outage, &cpu_outage);
        m.drain = Phase::new(
            &collector.polled(drain_index),
            drain_window.end - drain_window.start,
            &cpu_drain,
        );
        m.queued = load(&stats.queued);
        m.dropped = load(&stats.dropped);
        m.missed_events = load(&stats.missed_events);
        figures.mqtt = Some(m);
    }
    figures.collector_missed = collector.finish();
    service.stop().map_err(|e| e.to_string())?;
    drop(subscriber);
    drop(broker);
    drop(simulators);
    Ok(figures)
}

// ---------------------------------------------------------------------------------------------
// The orchestrator and the smoke run.

fn bench(options: &Options) -> Result<(), String> {
    let command: Vec<String> = std::env::args().collect();
    let cores = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("mqtt_scale: {}", command.join(" "));
    println!(
        "{} devices × {POINTS} points (2 reads) every {} s, QoS 1 plain JSON to a local mosquitto ({}); warm-up {} s, window {} s, outage {} s; {cores} CPUs, load average {:.2}",
        options.devices,
        INTERVAL.as_secs_f64(),
        if options.broker_nodelay {
            "set_tcp_nodelay true"
        } else {
            "its default: Nagle on"
        },
        options.warmup,
        options.seconds,
        options.outage,
        load_average()
    );
    let mut runs = Vec::new();
    for mqtt in [false, true] {
        eprintln!(
            "measuring MQTT {} with N={} ...",
            if mqtt { "on" } else { "off" },
            options.devices
        );
        runs.push(run_service(options, mqtt)?);
    }
    print_table(&runs[0], &runs[1]);
    Ok(())
}

/// One measurement in a fresh service process.
fn run_service(options: &Options, mqtt: bool) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .env(SERVICE_ENV, if mqtt { "on" } else { "off" })
        .env_remove(SIMULATORS_ENV)
        .env_remove(SUBSCRIBER_ENV)
        .args(options.to_args())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("start the service process: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| serde_json::from_str(line.strip_prefix("FIGURES ")?).ok())
        .ok_or_else(|| format!("the service process failed ({}): {text}", output.status))
}

#[allow(
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    reason = "counts far below 2^52; one table and its notes"
)]
fn print_table(off: &Figures, on: &Figures) {
    let ideal = (on.devices * POINTS) as f64 / INTERVAL.as_secs_f64();
    let rate = |phase: &Phase| phase.samples as f64 / phase.seconds;
    println!();
    println!(
        "{:<9} {:>9} {:>6} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5}",
        "run",
        "polled/s",
        "ideal",
        "publ/s",
        "publ/pol",
        "poll50",
        "poll99",
        "e2e50",
        "e2e99",
        "e2emax",
        "cores",
        "sim",
        "broker",
        "sub",
        "RSS",
        "bad"
    );
    for (name, run) in [("MQTT off", off), ("MQTT on", on)] {
        let m = run.mqtt.as_ref();
        let dash = |value: Option<f64>, width: usize, precision: usize| {
            value.map_or(format!("{:>width$}", "-"), |v| {
                format!("{v:>width$.precision$}")
            })
        };
        println!(
            "{name:<9} {:>9.0} {:>6.3} {} {} {:>7.2} {:>7.2} {} {} {} {:>6.3} {:>6.3} {} {} {:>6.1} {:>5}",
            rate(&run.live),
            rate(&run.live) / ideal,
            dash(m.map(|m| m.live.samples as f64 / run.live.seconds), 9, 0),
            dash(
                m.map(|m| m.live.samples as f64 / run.live.samples as f64),
                8,
                3
            ),
            run.live.lateness_p50_ms,
            run.live.lateness_p99_ms,
            dash(m.map(|m| m.live.latency_p50_ms), 7, 2),
            dash(m.map(|m| m.live.latency_p99_ms), 7, 2),
            dash(m.map(|m| m.live.latency_max_ms), 7, 1),
            run.live.cores(),
            run.simulators_cpu / run.live.seconds,
            dash(m.map(|m| m.broker_cpu / run.live.seconds), 6, 3),
            dash(m.map(|m| m.subscriber_cpu / run.live.seconds), 6, 3),
            run.rss_end_mib,
            run.live.bad + run.live.incomplete,
        );
    }
    println!(
        "on/off    {:>9.3} {:>6} {:>9} {:>8} {:>7.2} {:>7.2} {:>7} {:>7} {:>7} {:>6.3}",
        rate(&on.live) / rate(&off.live),
        "",
        "",
        "",
        on.live.lateness_p50_ms / off.live.lateness_p50_ms,
        on.live.lateness_p99_ms / off.live.lateness_p99_ms,
        "",
        "",
        "",
        on.live.cores() / off.live.cores(),
    );
    println!();
    println!(
        "polled/s = good samples whose poll fell in the window / s; ideal = that / (N × {POINTS} / s); publ/s = first arrivals at the subscriber of those samples / s; publ/pol = published / polled (1.000: every sample); poll50/99 = poll lateness p50/p99 ms against the schedule; e2e = poll timestamp to subscriber receipt, ms; cores = service process CPU (utime+stime) / window, without the bench's collector thread; sim, broker, sub = the other processes; RSS = service MiB at the window's end; bad = bad samples + incomplete polls. Load average {:.2}/{:.2} (off), {:.2}/{:.2} (on), start/end.",
        off.load.0, off.load.1, on.load.0, on.load.1
    );
    let Some(m) = on.mqtt.as_ref() else { return };
    let live_rate = rate(&on.live);
    println!(
        "live: the broker acknowledged {:.0} messages/s = {:.3} × samples polled/s; backlog at most {} polls; repeats {}, missing {}, engine events missed by the publisher {}",
        m.acknowledged as f64 / on.live.seconds,
        m.acknowledged as f64 / on.live.seconds / live_rate,
        m.backlog_max,
        m.received.repeats,
        m.received.missing,
        m.missed_events,
    );
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!(
        "outage {:.0} s: {} polls ({} samples) polled, {} polls queued at its end, {:.1} MiB on disk ({:.1} MiB by the queue's count; {:.0} B per poll); service {:.3} cores while queueing = {:.3} × live MQTT off; poll p99 {:.2} ms",
        m.outage.seconds,
        m.outage.polls,
        m.outage.samples,
        m.outage_backlog,
        mib(m.outage_disk_bytes),
        mib(m.outage_backlog_bytes),
        m.outage_disk_bytes as f64 / m.outage_backlog.max(1) as f64,
        m.outage.cores(),
        m.outage.cores() / off.live.cores(),
        m.outage.lateness_p99_ms,
    );
    match m.drain_s {
        Some(drain_s) => {
            let messages = m.drain_acknowledged as f64 / drain_s;
            println!(
                "drain: reconnected {:.2} s after the broker's restart; {} polls queued then, down to ≤ N in {drain_s:.1} s: {:.0} messages/s acknowledged = {:.0} polls/s = {:.3} × the live rate; catching up at {:.0} polls/s net",
                m.reconnect_s,
                m.drain_backlog_start,
                messages,
                messages / POINTS as f64,
                messages / live_rate,
                m.drain_backlog_start.saturating_sub(on.devices as u64) as f64 / drain_s,
            );
        }
        None => println!(
            "drain: reconnected {:.2} s after the broker's restart; {} polls queued then; NOT back to ≤ N polls within the limit ({} messages acknowledged)",
            m.reconnect_s, m.drain_backlog_start, m.drain_acknowledged
        ),
    }
    println!(
        "while draining: service {:.3} cores = {:.3} × live MQTT on, broker {:.3}, subscriber {:.3}; poll lateness p99 {:.2} ms = {:.3} × live MQTT off; polled {:.3} × ideal",
        m.drain.cores(),
        m.drain.cores() / on.live.cores(),
        m.drain_broker_cpu / m.drain.seconds,
        m.drain_subscriber_cpu / m.drain.seconds,
        m.drain.lateness_p99_ms,
        m.drain.lateness_p99_ms / off.live.lateness_p99_ms,
        rate(&m.drain) / ideal,
    );
    println!(
        "outage samples received in the end: {} of {} ({:.3}); in all {} sample messages, {} repeats, {} missing; {} polls queued, {} dropped from a full queue",
        m.outage_arrivals.samples,
        m.outage.samples,
        m.outage_arrivals.samples as f64 / m.outage.samples.max(1) as f64,
        m.received.messages,
        m.received.repeats,
        m.received.missing,
        m.queued,
        m.dropped,
    );
}

/// `cargo test --benches`: 5 devices with MQTT on and a 2 s outage, checked.
fn smoke() {
    let options = Options {
        devices: 5,
        seconds: 2.0,
        warmup: 1.0,
        outage: 2.0,
        broker_nodelay: false,
        bench: false,
    };
    let figures = measure(&options, true).expect("the smoke measurement runs");
    println!("{}", serde_json::to_string(&figures).unwrap_or_default());
    let live = &figures.live;
    let m = figures.mqtt.as_ref().expect("MQTT figures");
    // Two seconds of five devices: 10 polls, give or take one per device at the edges.
    assert!((5..=15).contains(&live.polls), "{figures:?}");
    assert_eq!(live.samples, live.polls * POINTS as u64, "{figures:?}");
    assert_eq!((live.bad, live.incomplete), (0, 0), "{figures:?}");
    assert_eq!(
        m.live.samples, live.samples,
        "every sample polled in the window arrived once: {figures:?}"
    );
    // Acks count by when they came, polls by when they were taken: at the window's edges one
    // poll per device may fall on either side.
    assert!(
        m.acknowledged + 5 * POINTS as u64 >= live.samples,
        "acknowledged by the broker: {figures:?}"
    );
    assert!(
        m.live.latency_p50_ms > 0.0 && m.live.latency_max_ms < 1000.0,
        "poll-to-subscriber latency: {figures:?}"
    );
    assert!(
        m.outage_backlog >= 5 && m.outage_disk_bytes > 0 && m.outage_backlog_bytes > 0,
        "the outage's polls queued on disk: {figures:?}"
    );
    assert!(m.drain_s.is_some(), "the backlog drained: {figures:?}");
    assert!(m.outage.samples >= 5 * POINTS as u64, "{figures:?}");
    assert_eq!(
        m.outage_arrivals.samples, m.outage.samples,
        "every sample polled during the outage arrived after it: {figures:?}"
    );
    assert_eq!(m.received.missing, 0, "no sample lost: {figures:?}");
    assert_eq!((m.dropped, m.missed_events), (0, 0), "{figures:?}");
    assert_eq!(figures.collector_missed, 0, "{figures:?}");
}
