//! The Modbus TCP client runbook: reads holding registers, input registers and coils, writes one
//! register and one coil and reads them back, printing each result and, for each failure, what
//! to check.
//!
//! ```text
//! cargo run --example tcp_client -- 127.0.0.1:5020 [unit]
//! cargo run --example tcp_client -- 192.168.1.10:502 1 --read-only
//! ```
//!
//! Try it against the simulator: `cargo run --example simulator -- --tcp 127.0.0.1:5020`.
//! The exit status is 0 when every step succeeded, 1 when one failed, 2 for a usage error or
//! when no connection could be made.

use std::process::ExitCode;
use std::time::Duration;

use modbus_stack::client::Client;
use modbus_stack::transport::tcp;

#[path = "runbook/mod.rs"]
mod runbook;

fn usage() -> String {
    format!(
        "usage: tcp_client HOST:PORT [UNIT] [OPTIONS]\n\n  \
         HOST:PORT              the Modbus TCP server, e.g. 127.0.0.1:5020\n  \
         UNIT                   unit id, 0-255 (default 1; a gateway routes on it)\n{}",
        runbook::OPTIONS
    )
}

fn main() -> ExitCode {
    let (address, plan) = match parse(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let config = tcp::Config {
        connect_timeout: Duration::from_secs(3),
        ..tcp::Config::default()
    };
    let mut client = match Client::tcp(address.as_str(), config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: cannot connect to {address}: {error}");
            eprintln!(
                "hint: check the address and port (Modbus TCP uses 502), that the server runs \
                 (`cargo run --example simulator -- --tcp 127.0.0.1:5020`), and firewalls"
            );
            return ExitCode::from(2);
        }
    };
    client.set_response_timeout(Duration::from_secs(1));
    println!("connected to {address}, unit {}\n", plan.unit);
    let medium = format!("Modbus TCP {address}");
    match runbook::run(&mut client, &plan, &medium) {
        0 => ExitCode::SUCCESS,
        failures => {
            eprintln!("\n{failures} step(s) failed");
            ExitCode::FAILURE
        }
    }
}

/// `None` for `--help`.
fn parse(
    mut args: impl Iterator<Item = String>,
) -> Result<Option<(String, runbook::Plan)>, String> {
    let mut positional = Vec::new();
    let mut plan = runbook::Plan::new(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        if arg.starts_with("--") {
            plan.option(&arg, &mut args)?;
        } else {
            positional.push(arg);
        }
    }
    let mut positional = positional.into_iter();
    let address = positional.next().ok_or("the server address is missing")?;
    if let Some(unit) = positional.next() {
        plan.unit = runbook::number("UNIT", &unit)?;
    }
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok(Some((address, plan)))
}
