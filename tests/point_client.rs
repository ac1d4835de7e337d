//! The read planner on the wire (issue 5): plans executed with the blocking [`Client`] against
//! the simulator over 127.0.0.1. Values written through [`Point::write`] read back identically
//! through a plan of mixed types; a plan sends exactly one request per planned read, and never
//! one that covers a forbidden address; an exception fails its own read only; the input tables
//! match the simulator's model. Every loop is bounded. (Polling devices on a schedule is
//! tested with the engine, in `harvest_engine.rs`.)

// Point maps own collections: the point module exists only with `std`.
#![cfg(feature = "std")]

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use modbus_stack::client::Client;
use modbus_stack::frame::{Framing, tcp::HEADER_LEN};
use modbus_stack::pdu::{ExceptionCode, Request};
use modbus_stack::point::{
    DeviceError, DeviceLimits, PlanConfig, PlannedRead, Point, PointKind, PointMap, PointValue,
    ReadPlan, ReadResult, Table,
};
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::sim;
use modbus_stack::time::Instant;
use modbus_stack::transport::Transport;
use modbus_stack::transport::tcp::{self, TcpTransport};
use modbus_stack::value::{DataType, Order, StringFormat};

/// Unit id of every point (the simulator answers every unit id on TCP).
const UNIT: u8 = 1;

/// The simulator on an ephemeral port of 127.0.0.1.
fn start_server() -> SpawnedServer {
    TcpServer::bind("127.0.0.1:0", Config::tcp())
        .and_then(|server| server.spawn(sim::unit_map()))
        .expect("start the simulator")
}

/// A transport that gives up quickly once its server is gone (the manager test shuts one down).
fn transport(addr: SocketAddr) -> TcpTransport {
    let config = tcp::Config {
        reconnect_attempts: 2,
        reconnect_backoff: Duration::from_millis(10),
        reconnect_max_backoff: Duration::from_millis(20),
        ..tcp::Config::default()
    };
    TcpTransport::connect(addr, config).expect("connect")
}

/// A client over `transport`, with a timeout generous enough for a loaded CI machine.
fn client<T: Transport>(transport: T) -> Client<T> {
    let mut client = Client::new(transport);
    client.set_response_timeout(Duration::from_secs(10));
    client
}

/// A transport that keeps every ADU it sends (one per `send`: nothing here coalesces).
struct Recording<T> {
    inner: T,
    sent: Vec<Vec<u8>>,
}

impl<T: Transport> Transport for Recording<T> {
    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn send(&mut self, adu: &[u8]) -> io::Result<()> {
        self.sent.push(adu.to_vec());
        self.inner.send(adu)
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        self.inner.receive(buf, deadline)
    }

    fn clear_input(&mut self) -> io::Result<()> {
        self.inner.clear_input()
    }

    fn reconnect(&mut self) -> io::Result<()> {
        self.inner.reconnect()
    }
}

/// The reads a recording client sent, as planned reads, in the order sent.
fn reads_sent(client: &Client<Recording<TcpTransport>>) -> Vec<PlannedRead> {
    client
        .transport()
        .sent
        .iter()
        .map(|adu| {
            let unit_id = adu[HEADER_LEN - 1];
            let request = Request::decode(&adu[HEADER_LEN..]).expect("a request");
            let (table, address, quantity) = match request {
                Request::ReadCoils { address, quantity } => (Table::Coils, address, quantity),
                Request::ReadDiscreteInputs { address, quantity } => {
                    (Table::DiscreteInputs, address, quantity)
                }
                Request::ReadInputRegisters { address, quantity } => {
                    (Table::InputRegisters, address, quantity)
                }
                Request::ReadHoldingRegisters { address, quantity } => {
                    (Table::HoldingRegisters, address, quantity)
                }
                other => panic!("not a read: {other:?}"),
            };
            PlannedRead {
                unit_id,
                table,
                address,
                quantity,
            }
        })
        .collect()
}

fn point(name: &str, table: Table, address: u16, kind: PointKind) -> Point {
    Point::new(name, UNIT, table, address, kind)
}

/// Mixed types on all four tables, with the values the writable ones get.
fn mixed_map() -> (PointMap, Vec<(&'static str, PointValue)>) {
    let map = PointMap::new([
        point(
            "setpoint",
            Table::HoldingRegisters,
            0,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
        point(
            "offset",
            Table::HoldingRegisters,
            1,
            PointKind::number(DataType::I32, Order::Cdab),
        ),
        point(
            "flow",
            Table::HoldingRegisters,
            3,
            PointKind::number(DataType::F32, Order::Abcd),
        ),
        point(
            "label",
            Table::HoldingRegisters,
            10,
            PointKind::String(StringFormat::new(8)),
        ),
        point(
            "enable",
            Table::HoldingRegisters,
            20,
            PointKind::RegisterBit { bit: 3 },
        ),
        point("pump", Table::Coils, 0, PointKind::Bit),
        point("valve", Table::Coils, 1, PointKind::Bit),
        point("alarm", Table::Coils, 5, PointKind::Bit),
        point("di0", Table::DiscreteInputs, 0, PointKind::Bit),
        point("di1", Table::DiscreteInputs, 1, PointKind::Bit),
        point("di3", Table::DiscreteInputs, 3, PointKind::Bit),
        point(
            "ir100",
            Table::InputRegisters,
            100,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
        point(
            "ir101",
            Table::InputRegisters,
            101,
            PointKind::number(DataType::U32, Order::Abcd),
        ),
    ])
    .expect("a valid map");
    let writes = vec![
        ("setpoint", PointValue::U16(4242)),
        ("offset", PointValue::I32(-123_456)),
        ("flow", PointValue::F32(3.5)),
        ("label", PointValue::Text("pump-7".into())),
        ("enable", PointValue::Bool(true)),
        ("pump", PointValue::Bool(true)),
        ("valve", PointValue::Bool(false)),
        ("alarm", PointValue::Bool(true)),
    ];
    (map, writes)
}

/// What the simulator's read-only tables hold for the mixed map's input points.
fn model_inputs() -> Vec<(&'static str, PointValue)> {
    vec![
        ("di0", PointValue::Bool(sim::discrete_input(0))),
        ("di1", PointValue::Bool(sim::discrete_input(1))),
        ("di3", PointValue::Bool(sim::discrete_input(3))),
        ("ir100", PointValue::U16(sim::input_register(100))),
        (
            "ir101",
            PointValue::U32(
                u32::from(sim::input_register(101)) << 16 | u32::from(sim::input_register(102)),
            ),
        ),
    ]
}

/// Every reading of `results`, which must all be `Ok`, by point name.
fn values(results: Vec<ReadResult<'_>>) -> Vec<(String, PointValue)> {
    let mut values: Vec<(String, PointValue)> = results
        .into_iter()
        .flat_map(|result| result.expect("every read succeeds"))
        .map(|reading| (reading.point.name.clone(), reading.value.expect("decodes")))
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values
}

fn sorted(mut expected: Vec<(&str, PointValue)>) -> Vec<(String, PointValue)> {
    expected.sort_by(|a, b| a.0.cmp(b.0));
    expected
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

#[test]
fn written_values_read_back_through_the_plan() {
    let server = start_server();
    let mut client = client(transport(server.local_addr()));
    let (map, writes) = mixed_map();
    for (name, value) in &writes {
        map.get(name)
            .expect("in the map")
            .write(&mut client, value)
            .unwrap_or_else(|error| panic!("write {name}: {error}"));
    }
    let plan = map.plan(&PlanConfig::default()).expect("a plan");
    let mut expected = writes;
    expected.extend(model_inputs());
    let expected = sorted(expected);
    assert_eq!(
        values(plan.execute(&mut client).expect("link up")),
        expected
    );
    assert_eq!(
        values(plan.execute_pipelined(&mut client).expect("link up")),
        expected
    );

    // The register bit went out as FC 22: the register's other bits are untouched.
    client.write_single_register(UNIT, 21, 0xFFFF).unwrap();
    let enable = map.get("enable").unwrap();
    client.write_single_register(UNIT, 20, 0x8001).unwrap();
    enable.write(&mut client, &PointValue::Bool(true)).unwrap();
    assert_eq!(
        client.read_holding_registers(UNIT, 20, 1).unwrap(),
        [0x8009]
    );
    enable.write(&mut client, &PointValue::Bool(false)).unwrap();
    assert_eq!(
        client.read_holding_registers(UNIT, 20, 1).unwrap(),
        [0x8001]
    );

    // A value the point cannot take is refused before anything is sent.
    let setpoint = map.get("setpoint").unwrap();
    assert!(matches!(
        setpoint.write(&mut client, &PointValue::Text("x".into())),
        Err(DeviceError::Write(_))
    ));
    assert!(matches!(
        map.get("ir100")
            .unwrap()
            .write(&mut client, &PointValue::U16(1)),
        Err(DeviceError::Write(_))
    ));
}

#[test]
fn one_request_per_planned_read() {
    let server = start_server();
    let mut client = client(Recording {
        inner: transport(server.local_addr()),
        sent: Vec::new(),
    });
    let (map, _) = mixed_map();
    // Small reads, so the plan has several per table.
    let limits = DeviceLimits {
        max_registers: 8,
        max_bits: 2,
        ..DeviceLimits::default()
    };
    let config = PlanConfig {
        defaults: limits,
        ..PlanConfig::default()
    };
    let plan = map.plan(&config).expect("a plan");
    assert!(plan.reads().len() > 4, "{:?}", plan.reads());

    let results = plan.execute(&mut client).expect("link up");
    assert_eq!(results.len(), plan.reads().len());
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(reads_sent(&client), plan.reads());

    client.transport_mut().sent.clear();
    let results = plan.execute_pipelined(&mut client).expect("link up");
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(reads_sent(&client), plan.reads());
}

#[test]
fn input_tables_match_the_simulator() {
    let server = start_server();
    let mut client = client(transport(server.local_addr()));
    // 300 input registers and 300 discrete inputs: several reads of each table.
    let points = (0..300u16).flat_map(|address| {
        [
            point(
                &format!("ir{address}"),
                Table::InputRegisters,
                address,
                PointKind::number(DataType::U16, Order::Abcd),
            ),
            point(
                &format!("di{address}"),
                Table::DiscreteInputs,
                address,
                PointKind::Bit,
            ),
        ]
    });
    let map = PointMap::new(points).expect("a valid map");
    let config = PlanConfig {
        defaults: DeviceLimits {
            max_bits: 128,
            ..DeviceLimits::default()
        },
        ..PlanConfig::default()
    };
    let plan = map.plan(&config).expect("a plan");
    assert_eq!(plan.reads().len(), 3 + 3);
    let mut checked = 0;
    for execute in [ReadPlan::execute, ReadPlan::execute_pipelined] {
        for result in execute(&plan, &mut client).expect("link up") {
            for reading in result.expect("read succeeds") {
                let expected = match reading.point.table {
                    Table::InputRegisters => {
                        PointValue::U16(sim::input_register(reading.point.address))
                    }
                    _ => PointValue::Bool(sim::discrete_input(reading.point.address)),
                };
                assert_eq!(reading.value, Ok(expected), "{}", reading.point.name);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * map.len());
}

#[test]
fn a_forbidden_address_is_never_read() {
    let server = start_server();
    let mut client = client(Recording {
        inner: transport(server.local_addr()),
        sent: Vec::new(),
    });
    let u16_at = |name: &str, address| {
        point(
            name,
            Table::HoldingRegisters,
            address,
            PointKind::number(DataType::U16, Order::Abcd),
        )
    };
    let map = PointMap::new([u16_at("a", 0), u16_at("b", 6), u16_at("c", 8)]).unwrap();
    let mut limits = DeviceLimits {
        max_register_gap: 10,
        ..DeviceLimits::default()
    };
    // Without the rule, one read spans the gap.
    let config = |limits: &DeviceLimits| PlanConfig {
        devices: [(UNIT, limits.clone())].into(),
        ..PlanConfig::default()
    };
    assert_eq!(map.plan(&config(&limits)).unwrap().reads().len(), 1);

    limits.forbidden = BTreeSet::from([(Table::HoldingRegisters, 3)]);
    let plan = map.plan(&config(&limits)).unwrap();
    assert_eq!(plan.reads().len(), 2);
    let results = plan.execute(&mut client).expect("link up");
    assert!(results.iter().all(Result::is_ok));
    let sent = reads_sent(&client);
    assert_eq!(sent, plan.reads());
    assert!(
        sent.iter()
            .all(|read| !(read.address..=read.last_address()).contains(&3)),
        "{sent:?}"
    );
}

#[test]
fn an_exception_fails_only_its_own_read() {
    let server = start_server();
    let mut client = client(transport(server.local_addr()));
    // The simulator has 10 000 registers: address 10 005 answers exception 02.
    let map = PointMap::new([
        point(
            "here",
            Table::InputRegisters,
            7,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
        point(
            "missing",
            Table::HoldingRegisters,
            10_005,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
        point(
            "there",
            Table::HoldingRegisters,
            9,
            PointKind::number(DataType::U16, Order::Abcd),
        ),
    ])
    .unwrap();
    let plan = map.plan(&PlanConfig::default()).unwrap();
    for execute in [ReadPlan::execute, ReadPlan::execute_pipelined] {
        let results = execute(&plan, &mut client).expect("link up");
        assert_eq!(results.len(), 3);
        for (read, result) in plan.reads().iter().zip(results) {
            if read.address == 10_005 {
                let Err(DeviceError::Client(error)) = result else {
                    panic!("{result:?}")
                };
                assert_eq!(error.exception(), Some(ExceptionCode::IllegalDataAddress));
            } else {
                let readings = result.expect("the other reads succeed");
                assert_eq!(readings.len(), 1);
                assert!(readings[0].value.is_ok());
            }
        }
    }
}
