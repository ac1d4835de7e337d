//! Polling several devices with the harvesting engine: two simulators in-process, one point
//! map, a few rounds.
//!
//! Between rounds a separate client changes each simulator's values (standing in for the
//! process the devices measure), and before the last round the second simulator is shut down,
//! so its status shows the failure and the backoff while the first keeps updating.
//!
//! Run with `cargo run --example poll_devices`.

use std::error::Error;
use std::time::Duration;

use modbus_stack::client::Client;
use modbus_stack::harvest::{DeviceConfig, DeviceSnapshot, Engine, Link, Status};
use modbus_stack::point::{Point, PointKind, PointMap, PointValue, Table};
use modbus_stack::server::tcp::{Config, TcpServer};
use modbus_stack::sim;
use modbus_stack::transport::tcp;
use modbus_stack::value::{DataType, Order};

/// Unit id of every point; the simulator answers every unit id on TCP.
const UNIT: u8 = 1;
/// Rounds printed.
const ROUNDS: u16 = 3;
/// Poll interval of both devices.
const INTERVAL: Duration = Duration::from_millis(200);

fn main() -> Result<(), Box<dyn Error>> {
    let servers = [
        TcpServer::bind("127.0.0.1:0", Config::tcp())?.spawn(sim::unit_map())?,
        TcpServer::bind("127.0.0.1:0", Config::tcp())?.spawn(sim::unit_map())?,
    ];
    let names = ["boiler", "chiller"];

    let map = PointMap::new([
        Point::new(
            "setpoint",
            UNIT,
            Table::HoldingRegisters,
            0,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
        Point::new(
            "temperature",
            UNIT,
            Table::HoldingRegisters,
            1,
            PointKind::number(DataType::F32, Order::Abcd),
        )
        .with_unit("°C"),
        Point::new(
            "counter",
            UNIT,
            Table::InputRegisters,
            40,
            PointKind::number(DataType::U32, Order::Cdab),
        ),
        Point::new("pump", UNIT, Table::Coils, 0, PointKind::Bit),
        Point::new("door", UNIT, Table::DiscreteInputs, 3, PointKind::Bit),
    ])?;

    let engine = Engine::new();
    for (name, server) in names.iter().zip(&servers) {
        let mut device = DeviceConfig::new(
            *name,
            Link::tcp(server.local_addr().to_string()),
            UNIT,
            map.clone(),
        )
        .with_interval(INTERVAL);
        device.backoff.initial = INTERVAL;
        engine.add_device(device)?;
    }
    if let Some(device) = engine.device(names[0]) {
        println!(
            "{} points in {} requests per device, polled every {INTERVAL:?}: {}\n",
            map.len(),
            device.plan.reads.len(),
            device.plan
        );
    }

    // The process the devices measure, through clients of its own.
    let tcp = tcp::Config {
        reconnect_attempts: 1,
        ..tcp::Config::default()
    };
    let mut process = Vec::new();
    for server in &servers {
        process.push(Client::tcp(server.local_addr(), tcp)?);
    }
    let [first, second] = servers;
    let mut second = Some(second);

    for round in 0..ROUNDS {
        for (device, client) in process.iter_mut().enumerate() {
            let step = round + u16::try_from(device)? * 10;
            let writes = [
                ("temperature", PointValue::F32(20.5 + f32::from(step))),
                ("setpoint", PointValue::U16(100 + step)),
                ("pump", PointValue::Bool(round % 2 == 0)),
            ];
            for (name, value) in writes {
                if let Some(point) = map.get(name) {
                    // Fails once the second simulator is gone; the engine reports that below.
                    let _ = point.write(client, &value);
                }
            }
        }
        if round == ROUNDS - 1 {
            if let Some(server) = second.take() {
                server.shutdown()?;
                println!("(chiller simulator shut down)\n");
            }
        }
        // Two intervals: every device is polled at least once meanwhile.
        std::thread::sleep(INTERVAL * 2);
        println!("round {round}:");
        print_table(&engine.devices(), &map);
    }
    engine.shutdown();
    first.shutdown()?;
    Ok(())
}

/// One row per device, one column per point, and the device's status.
fn print_table(devices: &[DeviceSnapshot], map: &PointMap) {
    print!("{:<10}", "device");
    for point in map.points() {
        print!(" {:>12}", point.name);
    }
    println!("  status");
    for device in devices {
        print!("{:<10}", device.config.name);
        for point in &device.points {
            let cell = point.value.as_ref().map_or_else(|| "-".to_owned(), show);
            print!(" {cell:>12}");
        }
        match &device.status {
            Status::BackingOff {
                error, failures, ..
            } => println!("  backing off after {failures} failure(s): {error}"),
            status => println!("  {}", status.name()),
        }
    }
    println!();
}

/// A value for the table.
fn show(value: &PointValue) -> String {
    match value {
        PointValue::Bool(on) => (if *on { "on" } else { "off" }).to_owned(),
        PointValue::F32(v) => format!("{v:.1}"),
        PointValue::Text(text) => text.clone(),
        other => other.as_f64().map_or_else(String::new, |v| format!("{v}")),
    }
}
