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
    #[arg(long, value_name = "SECONDS")]
    run_for: Option<f64>,
    /// Check the configuration file and exit.
    #[arg(long)]
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
    let (devices, listen, mut demo) = match &args.config {
        Some(path) => match config::load(path) {
            Ok(config) => (config.devices, config.listen, None),
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
                (demo.devices.clone(), None, Some(demo))
            }
            Err(error) => {
                tracing::error!("cannot start the simulators: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    if args.check {
        tracing::info!("configuration is valid: {} devices", devices.len());
        return ExitCode::SUCCESS;
    }
    let listen = args
        .listen
        .or(listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    let service = match Service::start(devices, listen) {
        Ok(service) => service,
        Err(error) => {
            tracing::error!("cannot start the service on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The one line for people and scripts on stdout: where to look.
    println!("harvest: open http://{}/", service.addr());
    let reason = wait(args.run_for);
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

/// Waits for Ctrl-C, SIGTERM or the end of `--run-for`; says which.
fn wait(run_for: Option<f64>) -> &'static str {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return "no signal handling available";
    };
    runtime.block_on(async {
        let limit = async {
            match run_for.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending().await,
            }
        };
        let terminate = async {
            #[cfg(unix)]
            {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            }
            #[cfg(not(unix))]
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            () = terminate => "SIGTERM",
            () = limit => "--run-for elapsed",
        }
    })
}
