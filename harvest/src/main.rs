//! `harvest`: polls the devices of a configuration file (or, without one, in-process
//! simulators) and serves a JSON API, metrics and a live dashboard.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use modbus_harvest::Service;
use modbus_harvest::config;
use modbus_harvest::demo::Demo;
use tracing_subscriber::EnvFilter;

/// Harvests Modbus devices and serves their data.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The configuration file (TOML). Without it, the service runs on embedded simulators:
    /// a PLC over Modbus TCP and two meters sharing one RTU line.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address for the API and the dashboard [default: the file's `service.listen`, else
    /// 127.0.0.1:5000].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Stop after this many seconds (for scripts and CI); otherwise run until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    run_for: Option<Duration>,
    /// Check the configuration file given with --config and exit.
    #[arg(long, requires = "config")]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Before anything starts: a stop requested during start-up is a clean stop once it is up.
    let signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!("cannot listen for Ctrl-C and SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (devices, listen, mqtt, mut demo) = match &args.config {
        Some(path) => match config::load(path) {
            Ok(config) => (config.devices, config.listen, config.mqtt, None),
            Err(errors) => {
                for error in &errors.0 {
                    tracing::error!("{error}");
                }
                tracing::error!(
                    "{} error(s) in {}; nothing was started",
                    errors.0.len(),
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => match Demo::start() {
            Ok(demo) => {
                tracing::info!(
                    "no --config: running on embedded simulators (a PLC over Modbus TCP, two meters on one RTU line)"
                );
                (demo.devices.clone(), None, None, Some(demo))
            }
            Err(error) => {
                tracing::error!("cannot start the simulators: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    if args.check {
        tracing::info!(
            "configuration is valid: {} devices{}",
            devices.len(),
            mqtt.as_ref().map_or(String::new(), |m| format!(
                ", publishing to {}:{}",
                m.broker.host, m.broker.port
            ))
        );
        return ExitCode::SUCCESS;
    }
    let listen = args
        .listen
        .or(listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    let service = match Service::start(devices, listen, mqtt) {
        Ok(service) => service,
        Err(error) => {
            tracing::error!("cannot start the service on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The one line for people and scripts on stdout: where to look.
    println!("harvest: open http://{}/", service.addr());
    let reason = signals.wait(args.run_for);
    tracing::info!("stopping ({reason})");
    let result = service.stop();
    if let Some(demo) = demo.as_mut() {
        demo.stop();
    }
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("the HTTP server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--run-for`: a number of seconds, 0 or more. A negative or NaN value is refused rather
/// than taken as "run forever".
fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds, e.g. 2 or 0.5"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text} is not a time to run: give a number of seconds, 0 or more"))
}

/// Ctrl-C and SIGTERM, listened for from creation on: a signal that arrives before
/// [`Self::wait`] (say, right after the URL is printed) is still seen there, instead of killing
/// the process by the default action before the service and simulators are stopped.
struct Signals {
    runtime: tokio::runtime::Runtime,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        #[cfg(unix)]
        let (interrupt, terminate) = {
            use tokio::signal::unix::{SignalKind, signal};
            let _context = runtime.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(Self {
            runtime,
            #[cfg(unix)]
            interrupt,
            #[cfg(unix)]
            terminate,
        })
    }

    /// Waits for Ctrl-C, SIGTERM or the end of `run_for`; says which.
    #[cfg_attr(not(unix), allow(unused_mut))]
    fn wait(mut self, run_for: Option<Duration>) -> &'static str {
        self.runtime.block_on(async {
            let limit = async {
                match run_for {
                    Some(duration) => tokio::time::sleep(duration).await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(unix)]
            {
                tokio::select! {
                    _ = self.interrupt.recv() => "Ctrl-C",
                    _ = self.terminate.recv() => "SIGTERM",
                    () = limit => "--run-for elapsed",
                }
            }
            #[cfg(not(unix))]
            {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "Ctrl-C",
                    () = limit => "--run-for elapsed",
                }
            }
        })
    }
}
