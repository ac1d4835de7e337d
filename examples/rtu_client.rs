//! The Modbus RTU client runbook (feature `serial`): reads holding registers, input registers
//! and coils, writes one register and one coil and reads them back, printing each result and,
//! for each failure, what to check.
//!
//! ```text
//! cargo run --example rtu_client --features serial -- /dev/ttyUSB0 19200 1
//! cargo run --example rtu_client --features serial -- /dev/ttyUSB0 9600 17 --parity none --read-only
//! ```
//!
//! The line format is 8 data bits, even parity, one stop bit (the specification's default);
//! `--parity none` uses two stop bits as the specification requires, `--parity odd` one, and
//! `--stop-bits 1|2` sets them outright (`--parity none --stop-bits 1` is the 8N1 many devices
//! ship with, and pymodbus's default). The exit
//! status is 0 when every step succeeded, 1 when one failed, 2 for a usage error or when the
//! port could not be opened.

use std::process::ExitCode;
use std::time::Duration;

use modbus_stack::client::Client;
use modbus_stack::frame::rtu::{Parity, StopBits};
use modbus_stack::transport::serial;

#[path = "runbook/mod.rs"]
mod runbook;

fn usage() -> String {
    format!(
        "usage: rtu_client DEVICE BAUD UNIT [OPTIONS]\n\n  \
         DEVICE                 the serial port, e.g. /dev/ttyUSB0 or COM3\n  \
         BAUD                   baud rate, e.g. 9600 or 19200\n  \
         UNIT                   unit id (slave address), 1-247\n  \
         --parity even|odd|none line parity (default even; none uses two stop bits)\n  \
         --stop-bits 1|2        stop bits, after --parity (e.g. --parity none --stop-bits 1: 8N1)\n{}",
        runbook::OPTIONS
    )
}

/// What the command line asks for.
struct Args {
    device: String,
    config: serial::Config,
    plan: runbook::Plan,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let mut client = match Client::rtu(&args.device, args.config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: cannot open {}: {error}", args.device);
            eprintln!(
                "hint: check the device name, that no other program holds the port, and your \
                 permissions (on Linux, membership of the `dialout` group)"
            );
            return ExitCode::from(2);
        }
    };
    client.set_response_timeout(Duration::from_secs(1));
    let line = format!(
        "RTU {} at {} baud, {:?} parity",
        args.device, args.config.baud_rate, args.config.parity
    );
    println!("opened {line}, unit {}\n", args.plan.unit);
    let medium = format!("{line}; check wiring (A/B may be swapped), baud rate and parity");
    match runbook::run(&mut client, &args.plan, &medium) {
        0 => ExitCode::SUCCESS,
        failures => {
            eprintln!("\n{failures} step(s) failed");
            ExitCode::FAILURE
        }
    }
}

/// `None` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut plan = runbook::Plan::new(1);
    let mut parity = (Parity::Even, StopBits::One);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--parity" => {
                parity = match args.next().as_deref() {
                    Some("even") => (Parity::Even, StopBits::One),
                    Some("odd") => (Parity::Odd, StopBits::One),
                    Some("none") => (Parity::None, StopBits::Two),
                    other => return Err(format!("--parity {other:?}: use even, odd or none")),
                };
            }
            "--stop-bits" => {
                parity.1 = match args.next().as_deref() {
                    Some("1") => StopBits::One,
                    Some("2") => StopBits::Two,
                    other => return Err(format!("--stop-bits {other:?}: use 1 or 2")),
                };
            }
            flag if flag.starts_with("--") => plan.option(flag, &mut args)?,
            _ => positional.push(arg),
        }
    }
    let [device, baud, unit]: [String; 3] = positional
        .try_into()
        .map_err(|given: Vec<String>| format!("DEVICE BAUD UNIT expected, got {given:?}"))?;
    plan.unit = runbook::number("UNIT", &unit)?;
    if plan.unit == 0 {
        return Err("unit 0 is the broadcast address: nobody answers reads".to_owned());
    }
    if plan.unit > 247 {
        return Err(format!(
            "unit {} is reserved on a serial line (§2.2): devices answer 1-247",
            plan.unit
        ));
    }
    let mut config = serial::Config::new(runbook::number("BAUD", &baud)?);
    (config.parity, config.stop_bits) = parity;
    Ok(Some(Args {
        device,
        config,
        plan,
    }))
}
