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
  --unit N               unit id for RTU, ASCII and RTU over TCP, 1-247 (default 1)
  --baud N               serial baud rate (default 19200)
  --parity even|odd|none serial parity (default even, the specification's default; pymodbus
                         defaults to none)
  --stop-bits 1|2        stop bits (default 1 with parity, 2 without, as the specification
                         asks; give 1 for 8N1, what many devices and pymodbus use)
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
    stop_bits: Option<u8>,
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
            "--unit" => options.unit = Some(unit_id(&flag, &value()?)?),
            "--baud" => options.baud = Some(number(&flag, &value()?)?),
            "--parity" => options.parity = Some(value()?),
            "--stop-bits" => options.stop_bits = Some(number(&flag, &value()?)?),
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

/// A unicast unit id: 0 is the broadcast address and 248-255 are reserved (§8.8).
fn unit_id(flag: &str, text: &str) -> Result<u8, String> {
    match number(flag, text)? {
        id @ 1..=247 => Ok(id),
        id => Err(format!("{flag}: {id} is not a unit id; use 1 to 247")),
    }
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
    let map = modbus_stack::sim::unit_map();
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
            let mut config = Config {
                max_connections: max_connections.max(1),
                max_connections_per_address: options.max_connections_per_address,
                idle_timeout: options.idle_timeout.unwrap_or(base.idle_timeout),
                frame_timeout: options.frame_timeout.unwrap_or(base.frame_timeout),
                ..base
            };
            if let Some(gap) = options.frame_gap {
                config.session.frame_gap = Some(gap);
            }
            let server = TcpServer::bind(addr.as_str(), config)
                .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
            let local = server.local_addr().map_err(|error| error.to_string())?;
            servers.push(
                server
                    .spawn(map.clone())
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
    use modbus_stack::frame::rtu::{Parity, StopBits};
    use modbus_stack::server::UnitMap;
    use modbus_stack::server::serial::{SerialServer, SpawnedServer};
    use modbus_stack::session::server::ServerConfig;
    use modbus_stack::transport::serial::Config;

    use super::Options;

    /// The serial listeners.
    pub(super) struct Running(Vec<(String, SpawnedServer)>);

    impl Running {
        pub(super) fn stop(self) {
            for (label, server) in self.0 {
                if let Err(error) = server.shutdown() {
                    eprintln!("simulator: {label}: {error}");
                }
            }
        }
    }

    pub(super) fn start(options: &Options, unit: u8, map: &UnitMap) -> Result<Running, String> {
        let parity = match options.parity.as_deref().unwrap_or("even") {
            "even" => Parity::Even,
            "odd" => Parity::Odd,
            "none" => Parity::None,
            other => return Err(format!("--parity {other:?}: use even, odd or none")),
        };
        let stop_bits = match (options.stop_bits, parity) {
            (Some(1), _) | (None, Parity::Even | Parity::Odd) => StopBits::One,
            (Some(2), _) | (None, Parity::None) => StopBits::Two,
            (Some(other), _) => return Err(format!("--stop-bits {other}: use 1 or 2")),
        };
        let line = Config {
            parity,
            stop_bits,
            ..Config::new(options.baud.unwrap_or(19_200))
        };
        let lines = options
            .rtu
            .iter()
            .map(|path| (path, ServerConfig::rtu(unit, line.timing()), "RTU"))
            .chain(
                options
                    .ascii
                    .iter()
                    .map(|path| (path, ServerConfig::ascii(unit), "ASCII")),
            );
        let mut running = Vec::new();
        for (path, session, kind) in lines {
            let server = SerialServer::open(path, &line, session)
                .and_then(|server| server.spawn(map.clone()))
                .map_err(|error| format!("cannot serve {kind} on {path}: {error}"))?;
            println!(
                "{kind} simulator on {path} at {} baud, {parity:?} parity, {stop_bits:?} stop bits, unit {unit}",
                line.baud_rate
            );
            running.push((format!("{kind} on {path}"), server));
        }
        Ok(Running(running))
    }
}

#[cfg(not(feature = "serial"))]
mod serial {
    use modbus_stack::server::UnitMap;

    use super::Options;

    /// Nothing runs without the `serial` feature.
    pub(super) struct Running;

    impl Running {
        #[allow(clippy::unused_self, reason = "same signature as with `serial`")]
        pub(super) fn stop(self) {}
    }

    pub(super) fn start(options: &Options, _unit: u8, _map: &UnitMap) -> Result<Running, String> {
        if options.rtu.is_empty() && options.ascii.is_empty() {
            Ok(Running)
        } else {
            Err("--rtu and --ascii need the `serial` feature: \
                 cargo run --release --example simulator --features serial -- ..."
                .into())
        }
    }
}
