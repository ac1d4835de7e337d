//! The Modbus device simulator: serves the `modbus_stack::sim` data model (10000 of each table,
//! device identification, FIFO queue, files) over Modbus TCP, RTU over TCP, RTU or ASCII.
//!
//! ```text
//! cargo run --release --example simulator -- --tcp 127.0.0.1:5020
//! cargo run --release --example simulator -- --rtu-over-tcp 127.0.0.1:5021 --unit 1
//! cargo run --release --example simulator --features serial -- --rtu /dev/ttyUSB0 --baud 19200 --unit 1
//! cargo run --release --example simulator --features serial -- --ascii /dev/ttyUSB0
//! ```
//!
//! Several listeners can run at once; all share one data store. `--duration SECONDS` stops the
//! simulator cleanly after that long; otherwise it runs until Ctrl-C or SIGTERM, which stop it
//! just as cleanly (listeners closed, connection threads joined).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};

const USAGE: &str = "\
usage: simulator [OPTIONS]

listeners (at least one, any combination):
  --tcp ADDR             Modbus TCP, e.g. 127.0.0.1:5020 (answers every unit id)
  --rtu-over-tcp ADDR    RTU frames over TCP (answers --unit only)
  --rtu DEVICE           Modbus RTU on a serial port (feature `serial`)
  --ascii DEVICE         Modbus ASCII on a serial port (feature `serial`)

options:
  --unit N               unit id for RTU, ASCII and RTU over TCP (default 1)
  --baud N               serial baud rate (default 19200)
  --parity even|odd|none serial parity (default even; none uses two stop bits)
  --max-connections N    simultaneous TCP connections per listener (default 16); at the cap
                         the least recently used connection makes room for a newcomer
  --max-connections-per-address N
                         simultaneous TCP connections from one peer address (default: no cap)
  --idle-timeout SECONDS close a TCP connection with no complete request for this long
                         (default 60)
  --frame-timeout SECONDS
                         close a TCP connection whose frame is not complete this long after
                         its first byte (default 5)
  --frame-gap SECONDS    RTU over TCP: a pause this long ends a frame attempt (default 0.05)
  --duration SECONDS     stop after this many seconds (default: run until interrupted)
  --help                 this text

Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the simulator cleanly.";

/// What the command line asks for.
#[derive(Debug, Default)]
struct Options {
    tcp: Vec<String>,
    rtu_over_tcp: Vec<String>,
    rtu: Vec<String>,
    ascii: Vec<String>,
    unit: Option<u8>,
    baud: Option<u32>,
    parity: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    idle_timeout: Option<Duration>,
    frame_timeout: Option<Duration>,
    frame_gap: Option<Duration>,
    duration: Option<Duration>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tcp" => options.tcp.push(value()?),
            "--rtu-over-tcp" => options.rtu_over_tcp.push(value()?),
            "--rtu" => options.rtu.push(value()?),
            "--ascii" => options.ascii.push(value()?),
            "--unit" => options.unit = Some(number(&flag, &value()?)?),
            "--baud" => options.baud = Some(number(&flag, &value()?)?),
            "--parity" => options.parity = Some(value()?),
            "--max-connections" => options.max_connections = Some(number(&flag, &value()?)?),
            "--max-connections-per-address" => {
                options.max_connections_per_address = Some(number(&flag, &value()?)?);
            }
            "--idle-timeout" => options.idle_timeout = Some(seconds(&flag, &value()?)?),
            "--frame-timeout" => options.frame_timeout = Some(seconds(&flag, &value()?)?),
            "--frame-gap" => options.frame_gap = Some(seconds(&flag, &value()?)?),
            "--duration" => options.duration = Some(seconds(&flag, &value()?)?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.tcp.is_empty()
        && options.rtu_over_tcp.is_empty()
        && options.rtu.is_empty()
        && options.ascii.is_empty()
    {
        return Err("no listener given".into());
    }
    Ok(Some(options))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a valid number"))
}

fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    let seconds: f64 = number(flag, text)?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{flag}: {seconds} is not a number of seconds"))
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("simulator: {message}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("simulator: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let map = Arc::new(modbus_stack::sim::unit_map());
    let unit = options.unit.unwrap_or(1);
    let max_connections = options
        .max_connections
        .unwrap_or(Config::DEFAULT_MAX_CONNECTIONS);
    let mut servers: Vec<SpawnedServer> = Vec::new();
    for (addrs, base, kind) in [
        (&options.tcp, Config::tcp(), "Modbus TCP"),
        (
            &options.rtu_over_tcp,
            Config::rtu_over_tcp(unit),
            "RTU over TCP",
        ),
    ] {
        for addr in addrs {
            let mut config = base
                .with_max_connections(max_connections)
                .with_max_connections_per_address(options.max_connections_per_address);
            if let Some(timeout) = options.idle_timeout {
                config = config.with_idle_timeout(timeout);
            }
            if let Some(timeout) = options.frame_timeout {
                config = config.with_frame_timeout(timeout);
            }
            if let Some(gap) = options.frame_gap {
                config = config.with_frame_gap(gap);
            }
            let server = TcpServer::bind(addr.as_str(), config)
                .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
            let local = server.local_addr().map_err(|error| error.to_string())?;
            servers.push(
                server
                    .spawn(Arc::clone(&map))
                    .map_err(|error| error.to_string())?,
            );
            println!("{kind} simulator listening on {local}");
        }
    }
    let serial = serial::start(options, unit, &map)?;

    // Ctrl-C (SIGINT), SIGTERM (what service managers and containers send), SIGHUP or the end
    // of --duration stops every listener and joins its threads, so connections are closed
    // cleanly rather than cut by the process dying.
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|error| format!("cannot install the signal handler: {error}"))?;
    if let Some(duration) = options.duration {
        let _ = stopped.recv_timeout(duration);
    } else {
        println!("press Ctrl-C to stop");
        let _ = stopped.recv();
    }
    serial.stop();
    for server in servers {
        server.shutdown().map_err(|error| error.to_string())?;
    }
    println!("simulator stopped");
    Ok(())
}

#[cfg(feature = "serial")]
mod serial {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;

    use modbus_stack::frame::rtu::{Parity, StopBits, Timing};
    use modbus_stack::server::UnitMap;
    use modbus_stack::server::serial::{self, SerialServer};

    use super::Options;

    /// The serial listeners' threads and stop flags.
    pub(super) struct Running(Vec<(Arc<AtomicBool>, JoinHandle<()>)>);

    impl Running {
        pub(super) fn stop(self) {
            for (flag, _) in &self.0 {
                flag.store(true, Ordering::SeqCst);
            }
            for (_, thread) in self.0 {
                let _ = thread.join();
            }
        }
    }

    pub(super) fn start(
        options: &Options,
        unit: u8,
        map: &Arc<UnitMap>,
    ) -> Result<Running, String> {
        let baud = options.baud.unwrap_or(19_200);
        let (parity, stop_bits) = match options.parity.as_deref().unwrap_or("even") {
            "even" => (Parity::Even, StopBits::One),
            "odd" => (Parity::Odd, StopBits::One),
            "none" => (Parity::None, StopBits::Two),
            other => return Err(format!("--parity {other:?}: use even, odd or none")),
        };
        let timing = Timing::for_line(baud, parity, stop_bits);
        let mut running = Vec::new();
        let lines = options
            .rtu
            .iter()
            .map(|path| (path, SerialServer::rtu(unit, timing), "RTU"))
            .chain(
                options
                    .ascii
                    .iter()
                    .map(|path| (path, SerialServer::ascii(unit), "ASCII")),
            );
        for (path, mut server, kind) in lines {
            let mut port = serial::open(path, baud, parity, stop_bits)
                .map_err(|error| format!("cannot open {path}: {error}"))?;
            let flag = server.shutdown_flag();
            let map = Arc::clone(map);
            let label = format!("{kind} on {path}");
            let thread = std::thread::spawn(move || {
                if let Err(error) = server.serve(&mut *port, &*map) {
                    eprintln!("simulator: {label}: {error}");
                }
            });
            println!("{kind} simulator on {path} at {baud} baud, unit {unit}");
            running.push((flag, thread));
        }
        Ok(Running(running))
    }
}

#[cfg(not(feature = "serial"))]
mod serial {
    use std::sync::Arc;

    use modbus_stack::server::UnitMap;

    use super::Options;

    /// Nothing runs without the `serial` feature.
    pub(super) struct Running;

    impl Running {
        #[allow(clippy::unused_self, reason = "same signature as with `serial`")]
        pub(super) fn stop(self) {}
    }

    pub(super) fn start(
        options: &Options,
        _unit: u8,
        _map: &Arc<UnitMap>,
    ) -> Result<Running, String> {
        if options.rtu.is_empty() && options.ascii.is_empty() {
            Ok(Running)
        } else {
            Err("--rtu and --ascii need the `serial` feature: \
                 cargo run --release --example simulator --features serial -- ..."
                .into())
        }
    }
}
