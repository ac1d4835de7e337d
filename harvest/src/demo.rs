//! The embedded default: simulated devices in-process, whose values move like a plant's.
//!
//! * `plc`: a PLC on Modbus TCP. A tank level follows its set-point through a first-order
//!   lag with a ripple, an inlet temperature swings on a slow sine, a production counter
//!   counts up, a ramp saws 0–1000, and a high-level alarm coil switches with hysteresis. The
//!   pump coil and the set-point are read-write.
//! * `meter-1`, `meter-2`: two energy meters sharing one RTU line, reached as RTU over TCP
//!   through an in-process gateway that answers unit ids 1 and 2 (the way a serial-to-Ethernet
//!   converter carries a real RS-485 line). Voltage, current, power and frequency wobble; the
//!   energy register counts up with the power drawn.
//!
//! The simulators listen on ephemeral ports of 127.0.0.1 and stop with [`Demo`].

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use modbus_stack::harvest::{DeviceConfig, Link};
use modbus_stack::point::{Point, PointKind, PointMap, Table};
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::server::{DataStore, UnitMap};
use modbus_stack::session::server::UnitIds;
use modbus_stack::value::{self, DataType, Order, Scale};

/// How often the simulated process moves.
const STEP: Duration = Duration::from_millis(100);

/// Register layout of the PLC (0-based addresses).
pub mod plc {
    /// Holding registers 0–1: tank level set-point, f32 in %, read-write.
    pub const SETPOINT: u16 = 0;
    /// Holding registers 2–3: tank level, f32 in %.
    pub const LEVEL: u16 = 2;
    /// Input register 0: inlet temperature, i16 in 0.1 °C.
    pub const TEMPERATURE: u16 = 0;
    /// Input registers 1–2: production counter, u32 (word order CDAB).
    pub const COUNTER: u16 = 1;
    /// Input register 3: ramp 0–1000.
    pub const RAMP: u16 = 3;
    /// Coil 0: pump, read-write.
    pub const PUMP: u16 = 0;
    /// Coil 1: high-level alarm.
    pub const ALARM: u16 = 1;
    /// Holding registers 10–17: the PLC's name, a 16-character string.
    pub const NAME: u16 = 10;
}

/// Register layout of each meter (0-based input registers, f32 ABCD, plus the energy).
pub mod meter {
    /// Input registers 0–1: voltage, V.
    pub const VOLTAGE: u16 = 0;
    /// Input registers 2–3: current, A.
    pub const CURRENT: u16 = 2;
    /// Input registers 4–5: active power, kW.
    pub const POWER: u16 = 4;
    /// Input register 6: frequency, u16 in 0.01 Hz.
    pub const FREQUENCY: u16 = 6;
    /// Input registers 7–8: energy, u32 in 0.01 kWh.
    pub const ENERGY: u16 = 7;
}

/// The running simulators and the devices that read them.
pub struct Demo {
    /// The PLC's data, shared with its server.
    pub plc: DataStore,
    /// The two meters' data (units 1 and 2).
    pub meters: [DataStore; 2],
    /// The devices the service polls.
    pub devices: Vec<DeviceConfig>,
    servers: Vec<SpawnedServer>,
    stop: Arc<AtomicBool>,
    process: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for Demo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Demo")
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// Starts the simulators and the process that moves their values.
    ///
    /// # Errors
    /// A listener cannot be bound or a thread cannot be started.
    pub fn start() -> io::Result<Self> {
        let plc = DataStore::builder()
            .coils(16)
            .discrete_inputs(16)
            .holding_registers(32)
            .input_registers(16)
            .build();
        let meters = [new_meter(), new_meter()];
        let plc_server = TcpServer::bind("127.0.0.1:0", Config::tcp())?.spawn(plc.clone())?;
        let mut line = UnitMap::new();
        line.insert(1, meters[0].clone());
        line.insert(2, meters[1].clone());
        let mut gateway_config = Config::rtu_over_tcp(1);
        gateway_config.session.units = UnitIds::single(1).with(2);
        let gateway = TcpServer::bind("127.0.0.1:0", gateway_config)?.spawn(line)?;
        let devices = vec![
            plc_device(&plc_server.local_addr().to_string()),
            meter_device("meter-1", 1, &gateway.local_addr().to_string()),
            meter_device("meter-2", 2, &gateway.local_addr().to_string()),
        ];
        // Initial values: a set-point to aim for, a name.
        let mut words = [0u16; 8];
        let _ = value::encode(55.0f32, Order::Abcd, &mut words);
        let _ = plc.write_holding_registers(plc::SETPOINT, words.get(..2).unwrap_or_default());
        let _ = value::encode_str("Tank farm PLC", value::StringFormat::new(8), &mut words);
        let _ = plc.write_holding_registers(plc::NAME, &words);
        let _ = plc.write_coils(plc::PUMP, &[true]);
        let stop = Arc::new(AtomicBool::new(false));
        let process = {
            let (plc, meters, stop) = (plc.clone(), meters.clone(), Arc::clone(&stop));
            thread::Builder::new()
                .name("demo process".into())
                .spawn(move || run_process(&plc, &meters, &stop))?
        };
        Ok(Self {
            plc,
            meters,
            devices,
            servers: vec![plc_server, gateway],
            stop,
            process: Some(process),
        })
    }

    /// Stops the process and the simulators.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(process) = self.process.take() {
            let _ = process.join();
        }
        for server in self.servers.drain(..) {
            let _ = server.shutdown();
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

fn new_meter() -> DataStore {
    DataStore::builder().input_registers(16).build()
}

fn number(name: &str, unit_id: u8, table: Table, address: u16, data_type: DataType) -> Point {
    Point::new(
        name,
        unit_id,
        table,
        address,
        PointKind::number(data_type, Order::Abcd),
    )
}

fn plc_device(address: &str) -> DeviceConfig {
    let points = PointMap::new([
        number(
            "setpoint",
            1,
            Table::HoldingRegisters,
            plc::SETPOINT,
            DataType::F32,
        )
        .with_unit("%"),
        number(
            "level",
            1,
            Table::HoldingRegisters,
            plc::LEVEL,
            DataType::F32,
        )
        .with_unit("%"),
        number(
            "temperature",
            1,
            Table::InputRegisters,
            plc::TEMPERATURE,
            DataType::I16,
        )
        .with_scale(Scale::new(0.1, 0.0).unwrap_or_default())
        .with_unit("°C"),
        Point::new(
            "production",
            1,
            Table::InputRegisters,
            plc::COUNTER,
            PointKind::number(DataType::U32, Order::Cdab),
        )
        .with_unit("pcs"),
        number("ramp", 1, Table::InputRegisters, plc::RAMP, DataType::U16),
        Point::new("pump", 1, Table::Coils, plc::PUMP, PointKind::Bit),
        Point::new(
            "high_level_alarm",
            1,
            Table::Coils,
            plc::ALARM,
            PointKind::Bit,
        ),
        Point::new(
            "name",
            1,
            Table::HoldingRegisters,
            plc::NAME,
            PointKind::String(value::StringFormat::new(8)),
        ),
    ])
    .unwrap_or_default();
    let mut device = DeviceConfig::new("plc", Link::tcp(address), 1, points)
        .with_interval(Duration::from_millis(500))
        .with_writable(["setpoint", "pump"]);
    device.device_type = Some("plc".into());
    device.backoff.initial = Duration::from_millis(500);
    device.backoff.max = Duration::from_secs(10);
    device
}

fn meter_device(name: &str, unit_id: u8, gateway: &str) -> DeviceConfig {
    let points = PointMap::new([
        number(
            "voltage",
            unit_id,
            Table::InputRegisters,
            meter::VOLTAGE,
            DataType::F32,
        )
        .with_unit("V"),
        number(
            "current",
            unit_id,
            Table::InputRegisters,
            meter::CURRENT,
            DataType::F32,
        )
        .with_unit("A"),
        number(
            "power",
            unit_id,
            Table::InputRegisters,
            meter::POWER,
            DataType::F32,
        )
        .with_unit("kW"),
        number(
            "frequency",
            unit_id,
            Table::InputRegisters,
            meter::FREQUENCY,
            DataType::U16,
        )
        .with_scale(Scale::new(0.01, 0.0).unwrap_or_default())
        .with_unit("Hz"),
        number(
            "energy",
            unit_id,
            Table::InputRegisters,
            meter::ENERGY,
            DataType::U32,
        )
        .with_scale(Scale::new(0.01, 0.0).unwrap_or_default())
        .with_unit("kWh"),
    ])
    .unwrap_or_default();
    let mut device = DeviceConfig::new(name, Link::rtu_over_tcp(gateway), unit_id, points)
        .with_interval(Duration::from_secs(1));
    device.device_type = Some("energy meter".into());
    device.writable = BTreeSet::new();
    device.backoff.initial = Duration::from_millis(500);
    device.backoff.max = Duration::from_secs(10);
    device
}

/// Writes an f32 (ABCD) into holding or input registers.
fn put_f32(store: &DataStore, table: Table, address: u16, value: f32) {
    let mut words = [0u16; 2];
    if value::encode(value, Order::Abcd, &mut words).is_ok() {
        let _ = if table == Table::HoldingRegisters {
            store.write_holding_registers(address, &words)
        } else {
            store.write_input_registers(address, &words)
        };
    }
}

fn get_f32(store: &DataStore, address: u16) -> Option<f32> {
    let words = store.holding_registers(address, 2).ok()?;
    value::decode(&words, Order::Abcd).ok()
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // values are clamped first
fn run_process(plc: &DataStore, meters: &[DataStore; 2], stop: &AtomicBool) {
    let start = Instant::now();
    let mut level = 40.0f32;
    let mut production = 0u32;
    let mut energy = [12_345.0f64, 67_890.0f64];
    let mut alarm = false;
    while !stop.load(Ordering::SeqCst) {
        let t = start.elapsed().as_secs_f32();
        let setpoint = get_f32(plc, plc::SETPOINT)
            .unwrap_or(50.0)
            .clamp(0.0, 100.0);
        let pump = plc
            .coils(plc::PUMP, 1)
            .ok()
            .and_then(|bits| bits.first().copied())
            .unwrap_or(false);
        // The level follows the set-point while the pump runs, and drains slowly when it stops.
        let target = if pump { setpoint } else { 0.0 };
        level += (target - level) * 0.05 + (t * 1.3).sin() * 0.15;
        level = level.clamp(0.0, 100.0);
        put_f32(plc, Table::HoldingRegisters, plc::LEVEL, level);
        if level > 80.0 {
            alarm = true;
        } else if level < 75.0 {
            alarm = false;
        }
        let _ = plc.write_coils(plc::ALARM, &[alarm]);
        let temperature = 18.0 + 6.0 * (t / 20.0).sin();
        let _ = plc.write_input_registers(
            plc::TEMPERATURE,
            &[(temperature * 10.0).round() as i16 as u16],
        );
        if pump {
            production = production.wrapping_add(1);
        }
        let mut words = [0u16; 2];
        let _ = value::encode(production, Order::Cdab, &mut words);
        let _ = plc.write_input_registers(plc::COUNTER, &words);
        let ramp = ((t * 50.0) % 1000.0) as u16;
        let _ = plc.write_input_registers(plc::RAMP, &[ramp]);
        for ((index, meter), offset) in meters.iter().enumerate().zip([0.0f32, 1.0]) {
            let phase = offset * 1.7;
            let voltage = 230.0 + 2.5 * (t * 0.7 + phase).sin();
            let current = 10.0 + 4.0 * offset + 3.0 * (t * 0.23 + phase).sin();
            let power = voltage * current / 1000.0;
            put_f32(meter, Table::InputRegisters, meter::VOLTAGE, voltage);
            put_f32(meter, Table::InputRegisters, meter::CURRENT, current);
            put_f32(meter, Table::InputRegisters, meter::POWER, power);
            let frequency = 50.0 + 0.05 * (t * 0.9 + phase).sin();
            let _ = meter
                .write_input_registers(meter::FREQUENCY, &[(frequency * 100.0).round() as u16]);
            if let Some(total) = energy.get_mut(index) {
                // kW over one step, in kWh, sped up 600× so the counter visibly moves.
                *total += f64::from(power) * STEP.as_secs_f64() / 3600.0 * 600.0;
                let _ = value::encode((*total * 100.0) as u32, Order::Abcd, &mut words);
                let _ = meter.write_input_registers(meter::ENERGY, &words);
            }
        }
        thread::sleep(STEP);
    }
}
