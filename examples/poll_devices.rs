//! Polling several devices with the `DeviceManager`: two simulators in-process, one point map,
//! three rounds.
//!
//! Between rounds a separate client changes each simulator's values (standing in for the
//! process the devices measure), and before the last round the second simulator is shut down,
//! so its health shows the failure and the backoff while the first keeps updating.
//!
//! Run with `cargo run --example poll_devices`.

use std::error::Error;
use std::time::Duration;

use modbus_stack::client::Client;
use modbus_stack::poll::{
    DeviceManager, PlanConfig, Point, PointKind, PointMap, PointValue, Table,
};
use modbus_stack::server::tcp::{Config, TcpServer};
use modbus_stack::sim;
use modbus_stack::time::Instant;
use modbus_stack::transport::tcp::{self, TcpTransport};
use modbus_stack::value::{DataType, Order};

/// Unit id of every point; the simulator answers every unit id on TCP.
const UNIT: u8 = 1;
/// Polling rounds.
const ROUNDS: u16 = 3;

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

    // Quick to give up on a dead device: one reconnection attempt per poll.
    let tcp = tcp::Config {
        reconnect_attempts: 1,
        ..tcp::Config::default()
    };
    let interval = Duration::from_millis(100);
    let mut manager = DeviceManager::new();
    for (name, server) in names.iter().zip(&servers) {
        let client = Client::tcp(server.local_addr(), tcp)?;
        manager.add(*name, client, &map, &PlanConfig::default(), interval)?;
    }
    let plan = map.plan(&PlanConfig::default())?;
    println!(
        "{} points in {} reads per device, polled every {interval:?}\n",
        map.len(),
        plan.reads().len()
    );

    // The process the devices measure, through clients of its own.
    let mut process = Vec::new();
    for server in &servers {
        process.push(Client::tcp(server.local_addr(), tcp)?);
    }
    let [first, second] = servers;
    let mut second = Some(second);

    for round in 0..ROUNDS {
        for (device, client) in process.iter_mut().enumerate() {
            let step = round + u16::try_from(device)? * 10;
            let temperature = 20.5 + f32::from(step);
            let writes = [
                ("temperature", PointValue::F32(temperature)),
                ("setpoint", PointValue::U16(100 + step)),
                ("pump", PointValue::Bool(round % 2 == 0)),
            ];
            for (name, value) in writes {
                if let Some(point) = map.get(name) {
                    // Fails once the second simulator is gone; the manager reports that below.
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

        let polled = manager.run_once();
        println!("round {round}: {polled} devices polled");
        print_table(&manager, &map);

        // Sleep until the next device is due (bounded: ROUNDS rounds in all).
        if let Some(next) = manager.next_due().filter(|_| round + 1 < ROUNDS) {
            std::thread::sleep(next - Instant::now());
        }
    }
    first.shutdown()?;
    Ok(())
}

/// One row per device, one column per point, and the device's health.
fn print_table(manager: &DeviceManager<'_, TcpTransport>, map: &PointMap) {
    print!("{:<10}", "device");
    for point in map.points() {
        print!(" {:>12}", point.name);
    }
    println!("  health");
    for device in manager.devices() {
        print!("{:<10}", device.name());
        for point in map.points() {
            let cell = device
                .latest(&point.name)
                .map_or_else(|| "-".to_owned(), show);
            print!(" {cell:>12}");
        }
        let health = device.health();
        match &health.last_error {
            None => println!("  ok"),
            Some(error) => println!(
                "  {} failure(s), next poll in {} ms: {error}",
                health.consecutive_failures,
                (health.next_poll - Instant::now()).as_millis()
            ),
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
