//! The harvesting engine at scale: N devices of 20 points each, polled every second over
//! 127.0.0.1, each on its own simulator port (so N independent links and N worker threads),
//! with the simulators in another process.
//!
//! For each N (default 100, then 1000) a fresh service process adds the devices, lets them
//! settle for a warm-up, then measures a window of `--seconds` (default 60): samples per
//! second against the ideal N × 20 / s, the service's CPU in cores (utime + stime of the whole
//! process, of which the bench's own subscriber thread), its resident memory at the start and
//! end of the window, the p50/p99/max lateness of polls against their schedule (from the
//! engine's [`PollReport`]s), and what failed. Targets (issue): N = 1000 with p99 lateness under
//! 50 ms, the service under half a core, and memory that does not grow over the window; each
//! figure is also printed as a ratio of its target.
//!
//! ```text
//! cargo bench -j1 --bench harvest_scale                                   # N = 100, 1000; 60 s each
//! cargo bench -j1 --bench harvest_scale -- --devices 100 --seconds 10     # a short run
//! cargo bench -j1 --bench harvest_scale -- --stagger                      # adds spread over 1 s
//! ```
//!
//! Options: `--devices N[,N...]`, `--seconds S`, `--warmup S` (default 15: at N = 1000 the service's RSS settles by about 4 MiB in the first ten seconds, then stays flat), `--history H`
//! (samples kept per point, default the engine's), `--stagger` (add the devices one
//! interval / N apart instead of all at once).
//!
//! Without `--bench` (`cargo test --benches`) it runs a smoke configuration of 5 devices for
//! 2 s and checks that every poll read every point.
//!
//! The same binary is the simulator process (environment [`SIMULATORS_ENV`] = N: N servers
//! on 127.0.0.1, their ports on stdout, serving until stdin closes) and the measured service
//! process ([`SERVICE_ENV`] set: one measurement, its figures as one line on stdout).

mod scale;

use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use modbus_stack::harvest::{DEFAULT_HISTORY, DeviceConfig, Engine, Event, Link, Quality};
use modbus_stack::point::PointValue;
use scale::{
    Histogram, POINTS, cpu_seconds, load_average, open_files_limit, point_map, rss_kib, seconds,
    serve_simulators, start_simulators,
};

/// Set to N in the simulator process.
const SIMULATORS_ENV: &str = "HARVEST_SCALE_SIMULATORS";
/// Set in the service process.
const SERVICE_ENV: &str = "HARVEST_SCALE_SERVICE";
/// Poll interval of every device.
const INTERVAL: Duration = Duration::from_secs(1);
/// The issue's targets at N = 1000.
const TARGET_P99: Duration = Duration::from_millis(50);
const TARGET_CORES: f64 = 0.5;
/// How often the service's memory is read during the window.
const RSS_EVERY: Duration = Duration::from_secs(5);

/// What one measurement is asked to do.
#[derive(Debug, Clone)]
struct Options {
    devices: Vec<usize>,
    seconds: f64,
    warmup: f64,
    history: usize,
    stagger: bool,
    bench: bool,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            devices: vec![100, 1000],
            seconds: 60.0,
            warmup: 15.0,
            history: DEFAULT_HISTORY,
            stagger: false,
            bench: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => options.bench = true,
                "--stagger" => options.stagger = true,
                "--devices" => {
                    options.devices = value("--devices")?
                        .split(',')
                        .map(|n| {
                            n.trim()
                                .parse::<usize>()
                                .map_err(|e| format!("--devices {n}: {e}"))
                        })
                        .collect::<Result<_, _>>()?;
                    if options.devices.contains(&0) {
                        return Err("--devices: each count must be at least 1".into());
                    }
                }
                "--seconds" => options.seconds = seconds("--seconds", &value("--seconds")?)?,
                "--warmup" => options.warmup = seconds("--warmup", &value("--warmup")?)?,
                "--history" => {
                    let text = value("--history")?;
                    options.history = text
                        .parse::<usize>()
                        .map_err(|e| format!("--history {text}: {e}"))?
                        .max(1);
                }
                // Filters and flags cargo or criterion conventions may pass along.
                _ => {}
            }
        }
        Ok(options)
    }

    fn to_args(&self, devices: usize) -> Vec<String> {
        let mut args = vec![
            "--devices".into(),
            devices.to_string(),
            "--seconds".into(),
            self.seconds.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--history".into(),
            self.history.to_string(),
        ];
        if self.stagger {
            args.push("--stagger".into());
        }
        args
    }
}

fn main() -> ExitCode {
    if let Ok(count) = std::env::var(SIMULATORS_ENV) {
        return match count.parse::<usize>() {
            Ok(count) => match serve_simulators(count) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("simulators: {error}");
                    ExitCode::FAILURE
                }
            },
            Err(error) => {
                eprintln!("{SIMULATORS_ENV}={count}: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("harvest_scale: {error}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os(SERVICE_ENV).is_some() {
        let devices = options.devices.first().copied().unwrap_or(1);
        return match measure(devices, &options) {
            Ok(figures) => {
                println!("{}", figures.to_line());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("service: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if options.bench {
        bench(&options)
    } else {
        smoke();
        ExitCode::SUCCESS
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator process.

// ---------------------------------------------------------------------------------------------
// The service: one measurement.

/// The measured window, set once the devices are added and warmed up.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
    start_wall: SystemTime,
    end_wall: SystemTime,
}

/// What the subscriber saw in the window.
struct Collected {
    lateness: Histogram,
    polls: u64,
    incomplete_polls: u64,
    requests: u64,
    good_samples: u64,
    bad_samples: u64,
    status_changes: u64,
    /// Events the engine dropped because this subscriber fell behind.
    dropped_events: u64,
    /// Polls due in each 10 ms slot of the interval: how evenly the schedule spreads.
    due_slots: [u64; SLOTS],
}

/// Slots of the interval in [`Collected::due_slots`].
const SLOTS: usize = 100;

/// The bench's subscriber: counts samples and records poll lateness in the window.
struct Collector {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Collected>,
    /// `/proc/self/task/TID/stat` of its thread, for its share of the CPU.
    stat_path: String,
}

impl Collector {
    fn start(engine: &Engine, devices: usize, window: Arc<OnceLock<Window>>) -> Self {
        // Room for two seconds of events: the engine drops what does not fit, and says so.
        let subscription = engine.subscribe(devices * (POINTS + 2) * 2);
        let stop = Arc::new(AtomicBool::new(false));
        let (path_tx, path_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("bench-subscriber".into())
                .spawn(move || {
                    // The link reads `PID/task/TID`, relative to /proc.
                    let path = std::fs::read_link("/proc/thread-self")
                        .map(|link| std::path::Path::new("/proc").join(link).join("stat"))
                        .map(|path| path.display().to_string())
                        .unwrap_or_default();
                    let _ = path_tx.send(path);
                    let mut collected = Collected {
                        lateness: Histogram::new(),
                        polls: 0,
                        incomplete_polls: 0,
                        requests: 0,
                        good_samples: 0,
                        bad_samples: 0,
                        status_changes: 0,
                        dropped_events: 0,
                        due_slots: [0; SLOTS],
                    };
                    // Bounded by the stop flag: the engine is shut down after it is set.
                    while !stop.load(Ordering::Relaxed) {
                        let Some(event) = subscription.recv_timeout(Duration::from_millis(100))
                        else {
                            continue;
                        };
                        let Some(window) = window.get() else {
                            continue;
                        };
                        count(&mut collected, window, &event);
                    }
                    collected.dropped_events = subscription.dropped();
                    collected
                })
                .expect("start the subscriber thread")
        };
        let stat_path = path_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        Self {
            stop,
            thread,
            stat_path,
        }
    }

    fn finish(self) -> Collected {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the subscriber thread")
    }
}

fn count(collected: &mut Collected, window: &Window, event: &Event) {
    match event {
        Event::Polled(report) if report.due >= window.start && report.due < window.end => {
            collected.polls += 1;
            collected.requests += u64::from(report.requests);
            collected.lateness.record(report.lateness);
            let offset = report.due.duration_since(window.start).as_nanos() % INTERVAL.as_nanos();
            let slot = offset * u128::try_from(SLOTS).unwrap_or(1) / INTERVAL.as_nanos();
            if let Some(count) = usize::try_from(slot)
                .ok()
                .and_then(|slot| collected.due_slots.get_mut(slot))
            {
                *count += 1;
            }
            if !report.complete {
                collected.incomplete_polls += 1;
            }
        }
        Event::Sample(sample)
            if sample.timestamp >= window.start_wall && sample.timestamp < window.end_wall =>
        {
            if sample.quality == Quality::Good {
                collected.good_samples += 1;
            } else {
                collected.bad_samples += 1;
            }
        }
        Event::Status { .. } if Instant::now() >= window.start => collected.status_changes += 1,
        _ => {}
    }
}

/// The figures of one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    devices: f64,
    seconds: f64,
    good_samples: f64,
    bad_samples: f64,
    polls: f64,
    incomplete_polls: f64,
    requests: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    service_cpu: f64,
    subscriber_cpu: f64,
    simulator_cpu: f64,
    rss_start_mib: f64,
    rss_end_mib: f64,
    rss_max_mib: f64,
    timeouts: f64,
    reconnects: f64,
    invalid_responses: f64,
    dropped_events: f64,
    status_changes: f64,
    load_start: f64,
    load_end: f64,
    /// How long adding the devices took.
    add_ms: f64,
    /// Polls due per second in the busiest 10 ms slot of the interval.
    peak_due_per_slot: f64,
}

impl Figures {
    /// The field values in declaration order, for the line between processes.
    fn values(&self) -> [f64; 25] {
        [
            self.devices,
            self.seconds,
            self.good_samples,
            self.bad_samples,
            self.polls,
            self.incomplete_polls,
            self.requests,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.service_cpu,
            self.subscriber_cpu,
            self.simulator_cpu,
            self.rss_start_mib,
            self.rss_end_mib,
            self.rss_max_mib,
            self.timeouts,
            self.reconnects,
            self.invalid_responses,
            self.dropped_events,
            self.status_changes,
            self.load_start,
            self.load_end,
            self.add_ms,
            self.peak_due_per_slot,
        ]
    }

    fn to_line(self) -> String {
        let values: Vec<String> = self.values().iter().map(f64::to_string).collect();
        format!("FIGURES {}", values.join(" "))
    }

    fn from_line(line: &str) -> Option<Self> {
        let values: Vec<f64> = line
            .strip_prefix("FIGURES ")?
            .split_whitespace()
            .map(|value| value.parse().ok())
            .collect::<Option<_>>()?;
        let [
            devices,
            seconds,
            good_samples,
            bad_samples,
            polls,
            incomplete_polls,
            requests,
            p50_ms,
            p99_ms,
            max_ms,
            service_cpu,
            subscriber_cpu,
            simulator_cpu,
            rss_start_mib,
            rss_end_mib,
            rss_max_mib,
            timeouts,
            reconnects,
            invalid_responses,
            dropped_events,
            status_changes,
            load_start,
            load_end,
            add_ms,
            peak_due_per_slot,
        ] = <[f64; 25]>::try_from(values).ok()?;
        Some(Self {
            devices,
            seconds,
            good_samples,
            bad_samples,
            polls,
            incomplete_polls,
            requests,
            p50_ms,
            p99_ms,
            max_ms,
            service_cpu,
            subscriber_cpu,
            simulator_cpu,
            rss_start_mib,
            rss_end_mib,
            rss_max_mib,
            timeouts,
            reconnects,
            invalid_responses,
            dropped_events,
            status_changes,
            load_start,
            load_end,
            add_ms,
            peak_due_per_slot,
        })
    }

    fn samples_per_second(&self) -> f64 {
        self.good_samples / self.seconds
    }

    #[allow(clippy::cast_precision_loss, reason = "small constants")]
    fn ideal_samples_per_second(&self) -> f64 {
        self.devices * POINTS as f64 / INTERVAL.as_secs_f64()
    }

    fn service_cores(&self) -> f64 {
        self.service_cpu / self.seconds
    }
}

/// Runs `devices` devices against simulators in another process and measures the window.
#[allow(
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    reason = "counts far below 2^52; one straight sequence of steps reads best in one piece"
)]
fn measure(devices: usize, options: &Options) -> Result<Figures, String> {
    if let Some(limit) = open_files_limit() {
        // The service holds one socket per device; the simulators three descriptors each.
        let needed = u64::try_from(devices).unwrap_or(u64::MAX).saturating_mul(3) + 64;
        if limit < needed {
            return Err(format!(
                "{devices} devices need about {needed} open files, the limit is {limit}; raise it first (`ulimit -n {needed}`)"
            ));
        }
    }
    let (simulators, ports) = start_simulators(SIMULATORS_ENV, SERVICE_ENV, devices)?;
    let simulator_stat = simulators.stat();
    let engine = Engine::new();
    let window_cell = Arc::new(OnceLock::new());
    let collector = Collector::start(&engine, devices, Arc::clone(&window_cell));
    let points = point_map();
    let stagger = if options.stagger {
        INTERVAL / u32::try_from(devices).unwrap_or(u32::MAX)
    } else {
        Duration::ZERO
    };
    let adding = Instant::now();
    for (index, port) in ports.iter().enumerate() {
        let mut config = DeviceConfig::new(
            format!("device{index:04}"),
            Link::tcp(format!("127.0.0.1:{port}")),
            1,
            points.clone(),
        )
        .with_interval(INTERVAL);
        config.history = options.history;
        engine
            .add_device(config)
            .map_err(|e| format!("add device {index}: {e}"))?;
        if !stagger.is_zero() {
            thread::sleep(stagger);
        }
    }
    let add_ms = adding.elapsed().as_secs_f64() * 1e3;
    let warmup = Duration::from_secs_f64(options.warmup);
    let length = Duration::from_secs_f64(options.seconds);
    let start = Instant::now() + warmup;
    let start_wall = SystemTime::now() + warmup;
    let window = Window {
        start,
        end: start + length,
        start_wall,
        end_wall: start_wall + length,
    };
    window_cell
        .set(window)
        .map_err(|_| "the window was set twice".to_string())?;
    thread::sleep(window.start.saturating_duration_since(Instant::now()));

    let load_start = load_average();
    let cpu_start = cpu_seconds("/proc/self/stat").unwrap_or(f64::NAN);
    let subscriber_start = cpu_seconds(&collector.stat_path).unwrap_or(f64::NAN);
    let simulator_start = cpu_seconds(&simulator_stat).unwrap_or(f64::NAN);
    let rss_start = rss_kib().unwrap_or(0);
    let mut rss_max = rss_start;
    let mut next_report = Instant::now() + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        thread::sleep(RSS_EVERY.min(window.end - now));
        let rss = rss_kib().unwrap_or(0);
        rss_max = rss_max.max(rss);
        if Instant::now() >= next_report && Instant::now() < window.end {
            next_report += Duration::from_secs(10);
            eprintln!(
                "  N={devices}: {:.0} s of {:.0} s, RSS {:.1} MiB",
                window.start.elapsed().as_secs_f64(),
                options.seconds,
                rss as f64 / 1024.0
            );
        }
    }
    let cpu_end = cpu_seconds("/proc/self/stat").unwrap_or(f64::NAN);
    let subscriber_end = cpu_seconds(&collector.stat_path).unwrap_or(f64::NAN);
    let simulator_end = cpu_seconds(&simulator_stat).unwrap_or(f64::NAN);
    let rss_end = rss_kib().unwrap_or(0);
    rss_max = rss_max.max(rss_end);
    let load_end = load_average();
    // Polls due in the window end within a response timeout or so after it.
    thread::sleep(Duration::from_millis(1500));
    let (mut timeouts, mut reconnects, mut invalid) = (0u64, 0u64, 0u64);
    for snapshot in engine.devices() {
        timeouts += snapshot.counters.timeouts;
        reconnects += snapshot.counters.reconnects;
        invalid += snapshot.counters.invalid_responses;
    }
    let collected = collector.finish();
    engine.shutdown();
    drop(simulators);
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(Figures {
        devices: devices as f64,
        seconds: options.seconds,
        good_samples: collected.good_samples as f64,
        bad_samples: collected.bad_samples as f64,
        polls: collected.polls as f64,
        incomplete_polls: collected.incomplete_polls as f64,
        requests: collected.requests as f64,
        p50_ms: collected.lateness.quantile(0.50).as_secs_f64() * 1e3,
        p99_ms: collected.lateness.quantile(0.99).as_secs_f64() * 1e3,
        max_ms: collected.lateness.max.as_secs_f64() * 1e3,
        service_cpu: cpu_end - cpu_start,
        subscriber_cpu: subscriber_end - subscriber_start,
        simulator_cpu: simulator_end - simulator_start,
        rss_start_mib: mib(rss_start),
        rss_end_mib: mib(rss_end),
        rss_max_mib: mib(rss_max),
        timeouts: timeouts as f64,
        reconnects: reconnects as f64,
        invalid_responses: invalid as f64,
        dropped_events: collected.dropped_events as f64,
        status_changes: collected.status_changes as f64,
        load_start,
        load_end,
        add_ms,
        peak_due_per_slot: collected.due_slots.iter().copied().max().unwrap_or(0) as f64
            / options.seconds,
    })
}

// ---------------------------------------------------------------------------------------------
// The orchestrator and the smoke run.

fn bench(options: &Options) -> ExitCode {
    let command: Vec<String> = std::env::args().collect();
    let cores = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("harvest_scale: {}", command.join(" "));
    println!(
        "{} devices × {POINTS} points (2 reads) every {} s, warm-up {} s, window {} s, history {}{}; {cores} CPUs, load average {:.2}",
        options
            .devices
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" then "),
        INTERVAL.as_secs_f64(),
        options.warmup,
        options.seconds,
        options.history,
        if options.stagger {
            ", adds staggered"
        } else {
            ""
        },
        load_average()
    );
    let mut rows = Vec::new();
    for &devices in &options.devices {
        eprintln!("measuring N={devices} ...");
        match run_service(devices, options) {
            Ok(figures) => rows.push(figures),
            Err(error) => {
                eprintln!("N={devices}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&rows, options);
    ExitCode::SUCCESS
}

/// Runs one measurement in a fresh service process, so each N's memory is its own.
fn run_service(devices: usize, options: &Options) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .env(SERVICE_ENV, "1")
        .env_remove(SIMULATORS_ENV)
        .args(options.to_args(devices))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("start the service process: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(Figures::from_line)
        .ok_or_else(|| format!("the service process failed ({}): {text}", output.status))
}

fn print_table(rows: &[Figures], options: &Options) {
    println!();
    println!(
        "{:>5} {:>9} {:>9} {:>6} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>6} {:>5} {:>5} {:>5} {:>5} {:>9}",
        "N",
        "samples/s",
        "ideal/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cores",
        "(sub)",
        "sim",
        "RSS0 MiB",
        "RSS1 MiB",
        "grow MiB",
        "bad",
        "incpl",
        "t/o",
        "recon",
        "drop",
        "load",
    );
    for row in rows {
        println!(
            "{:>5} {:>9.0} {:>9.0} {:>6.3} {:>7.2} {:>7.2} {:>7.2} {:>6.3} {:>6.3} {:>6.3} {:>8.1} {:>8.1} {:>8.1} {:>6} {:>5} {:>5} {:>5} {:>5} {:>4.2}/{:<4.2}",
            row.devices,
            row.samples_per_second(),
            row.ideal_samples_per_second(),
            row.samples_per_second() / row.ideal_samples_per_second(),
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.service_cores(),
            row.subscriber_cpu / row.seconds,
            row.simulator_cpu / row.seconds,
            row.rss_start_mib,
            row.rss_end_mib,
            row.rss_end_mib - row.rss_start_mib,
            row.bad_samples,
            row.incomplete_polls,
            row.timeouts,
            row.reconnects,
            row.dropped_events,
            row.load_start,
            row.load_end,
        );
    }
    println!();
    println!(
        "ratio = samples/s achieved / ideal; cores = service CPU (utime+stime) / window, (sub) = the bench's subscriber thread's share; sim = simulator process; bad = bad samples, incpl = incomplete polls, t/o = timeouts, recon = reconnects, drop = events dropped for the subscriber; RSS0/RSS1 = service VmRSS at the window's start/end; load = 1-min load average at start/end"
    );
    let target_p99 = TARGET_P99.as_secs_f64() * 1e3;
    for row in rows {
        let growth_per_minute = (row.rss_end_mib - row.rss_start_mib) / row.seconds * 60.0;
        println!(
            "N={}: p99 lateness {:.2} ms = {:.3} × the {target_p99:.0} ms target [{}]; service {:.3} cores = {:.3} × the {TARGET_CORES} core target [{}]; RSS {:+.1} MiB/min [{}]; polls {} of ideal {:.0}",
            row.devices,
            row.p99_ms,
            row.p99_ms / target_p99,
            verdict(row.p99_ms < target_p99),
            row.service_cores(),
            row.service_cores() / TARGET_CORES,
            verdict(row.service_cores() < TARGET_CORES),
            growth_per_minute,
            verdict(row.rss_end_mib - row.rss_start_mib < 1.0),
            row.polls,
            row.devices * row.seconds / INTERVAL.as_secs_f64(),
        );
        println!(
            "    history rings: {} B per sample × {} samples × {:.0} points = {:.0} MiB, resident from each point's first sample (before the window)",
            history_entry_bytes(),
            options.history,
            ring_points(row),
            ring_mib(row, options),
        );
        println!(
            "    schedule: {} devices added in {:.0} ms; busiest 10 ms slot of the interval has {:.1} polls due per second (even spread: {:.1})",
            row.devices,
            row.add_ms,
            row.peak_due_per_slot,
            row.devices / f64::from(u32::try_from(SLOTS).unwrap_or(1)),
        );
    }
}

/// Bytes of one history entry, as `state.rs` lays it out (reading, time in µs; the sequence
/// is implicit).
fn history_entry_bytes() -> usize {
    size_of::<Result<PointValue, Arc<str>>>() + size_of::<u64>()
}

/// Points of the run.
#[allow(clippy::cast_precision_loss, reason = "small constants")]
fn ring_points(row: &Figures) -> f64 {
    row.devices * POINTS as f64
}

/// The rings' memory: whole from each point's first sample.
#[allow(clippy::cast_precision_loss, reason = "small constants")]
fn ring_mib(row: &Figures, options: &Options) -> f64 {
    ring_points(row) * options.history as f64 * history_entry_bytes() as f64 / (1024.0 * 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// `cargo test --benches`: a small configuration, checked for sanity.
fn smoke() {
    let options = Options {
        devices: vec![5],
        seconds: 2.0,
        warmup: 1.0,
        history: 100,
        stagger: false,
        bench: false,
    };
    let figures = measure(5, &options).expect("the smoke measurement runs");
    println!("{}", figures.to_line());
    // Two seconds of five devices: 10 polls due, give or take one per device at the edges.
    assert!(
        (5.0..=15.0).contains(&figures.polls),
        "polls in the window: {figures:?}"
    );
    assert_eq!(whole(figures.incomplete_polls), 0, "{figures:?}");
    assert_eq!(whole(figures.bad_samples), 0, "{figures:?}");
    assert_eq!(whole(figures.timeouts), 0, "{figures:?}");
    assert_eq!(
        whole(figures.requests),
        whole(figures.polls) * 2,
        "two reads per poll: {figures:?}"
    );
    // Samples count by their timestamp, polls by when they were due: at the window's edges
    // one poll per device may fall on either side.
    assert!(
        (figures.good_samples - figures.polls * 20.0).abs() <= 5.0 * 20.0,
        "every point of every poll in the window: {figures:?}"
    );
    assert_eq!(whole(figures.dropped_events), 0, "{figures:?}");
    assert!(
        figures.service_cpu >= 0.0 && figures.rss_start_mib > 0.0,
        "{figures:?}"
    );
}

/// A count carried as `f64` in [`Figures`], back as an integer.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "counts are whole, non-negative and far below 2^53"
)]
fn whole(count: f64) -> u64 {
    count.round() as u64
}
