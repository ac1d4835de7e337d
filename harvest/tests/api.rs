//! The service's HTTP API through a real HTTP client (ureq) against real simulators on
//! 127.0.0.1: every route's happy path, each error status with its JSON body, `/data` served
//! from the latest poll without a read per request, `/metrics` as Prometheus text, and the
//! live event stream.
//!
//! Each test starts its own simulators and service and stops them (a guard stops them on a
//! failed assertion too). Every wait is bounded in count and time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use modbus_harvest::Service;
use modbus_harvest::demo::{self, Demo};
use modbus_stack::harvest::{DeviceConfig, Link};
use modbus_stack::point::{Point, PointKind, PointMap, Table};
use modbus_stack::server::DataStore;
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::session::server::UnitIds;
use modbus_stack::sim;
use modbus_stack::value::{self, DataType, Order};
use serde_json::{Value, json};

/// Longest wait for anything the engine does on its own (first poll, status changes). The
/// machine is shared with other builds, so it is generous; the loops end as soon as it holds.
const PATIENCE: Duration = Duration::from_secs(20);

/// An HTTP answer: status, content type and the body parsed as JSON when it is JSON.
struct Reply {
    status: u16,
    content_type: String,
    allow: Option<String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| {
            panic!(
                "status {}: the body is not JSON ({error}): {}",
                self.status, self.text
            )
        })
    }

    /// Asserts this is an error answer of `status` with a JSON object body and a message a
    /// person can read; returns the body.
    fn error(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "an error is JSON, got {:?}",
            self.content_type
        );
        let body = self.json();
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.len() >= 10,
            "the error body needs a message a person can act on: {body}"
        );
        body
    }

    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "body: {}", self.text);
        self.json()
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        // Only 127.0.0.1 is ever asked: no proxy from the environment may intervene.
        .proxy(None)
        .build()
        .into()
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let response = response.expect("the HTTP request completes");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response
        .into_body()
        .read_to_string()
        .expect("read the body");
    Reply {
        status,
        content_type,
        allow,
        text,
    }
}

/// A service and the simulators it polls, stopped when dropped (a failed test included).
struct Rig {
    service: Option<Service>,
    servers: Vec<SpawnedServer>,
    base: String,
    http: ureq::Agent,
}

impl Rig {
    fn start(devices: Vec<DeviceConfig>, servers: Vec<SpawnedServer>) -> Self {
        let service = Service::start(devices, SocketAddr::from(([127, 0, 0, 1], 0)), None)
            .expect("start the service");
        let base = format!("http://{}", service.addr());
        Self {
            service: Some(service),
            servers,
            base,
            http: agent(Duration::from_secs(30)),
        }
    }

    fn get(&self, path: &str) -> Reply {
        reply(self.http.get(format!("{}{path}", self.base)).call())
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        reply(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .send(body),
        )
    }

    fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post(path, &body.to_string())
    }

    fn post_empty(&self, path: &str) -> Reply {
        reply(self.http.post(format!("{}{path}", self.base)).send_empty())
    }

    fn device(&self, name: &str) -> Value {
        self.get(&format!("/api/devices/{name}")).ok()
    }

    /// Waits until `condition` holds for the device's detail, and returns that detail.
    fn wait_for(&self, name: &str, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let detail = self.device(name);
            if condition(&detail) {
                return detail;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {name}: {what}; last detail: {detail}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_polls(&self, name: &str, polls: u64) -> Value {
        self.wait_for(name, &format!("{polls} poll(s)"), |detail| {
            detail["counters"]["polls"].as_u64().unwrap_or(0) >= polls
                && !detail["last_poll"].is_null()
        })
    }

    fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.stop().expect("the service stops cleanly");
        }
        for server in self.servers.drain(..) {
            server.shutdown().expect("the simulator stops");
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The service first: it stops polling before its simulators go away.
        drop(self.service.take());
        for server in self.servers.drain(..) {
            let _ = server.shutdown();
        }
    }
}

/// A simulator (every table 10 000 entries, see [`sim`]) on an ephemeral port.
fn simulator(store: &DataStore, units: Option<UnitIds>) -> (SpawnedServer, SocketAddr) {
    let mut config = Config::tcp();
    if let Some(units) = units {
        config.session.units = units;
    }
    let server = TcpServer::bind("127.0.0.1:0", config)
        .and_then(|server| server.spawn(store.clone()))
        .expect("start the simulator");
    let addr = server.local_addr();
    (server, addr)
}

fn number(name: &str, unit: u8, table: Table, address: u16, data_type: DataType) -> Point {
    Point::new(
        name,
        unit,
        table,
        address,
        PointKind::number(data_type, Order::Abcd),
    )
}

/// A device of six points on the simulator at `addr`: `setpoint` (holding 0, u16), `flow`
/// (holding 1–2, f32) and `pump` (coil 0) writable; `level` (holding 3), `ir100` (input
/// register 100, which holds 100) and `door` (discrete input 3, on) read-only.
fn rig_device(name: &str, addr: SocketAddr, unit: u8, interval: Duration) -> DeviceConfig {
    let points = PointMap::new([
        number("setpoint", unit, Table::HoldingRegisters, 0, DataType::U16),
        number("flow", unit, Table::HoldingRegisters, 1, DataType::F32).with_unit("m³/h"),
        number("level", unit, Table::HoldingRegisters, 3, DataType::U16).with_unit("%"),
        number("ir100", unit, Table::InputRegisters, 100, DataType::U16),
        Point::new("pump", unit, Table::Coils, 0, PointKind::Bit),
        Point::new("door", unit, Table::DiscreteInputs, 3, PointKind::Bit),
    ])
    .expect("a valid point map");
    let mut config = DeviceConfig::new(name, Link::tcp(addr.to_string()), unit, points)
        .with_interval(interval)
        .with_writable(["setpoint", "flow", "pump"]);
    config.device_type = Some("test rig".into());
    config.response_timeout = Duration::from_millis(500);
    config.retries = 0;
    config.history = 50;
    config.backoff.initial = Duration::from_millis(200);
    config.backoff.max = Duration::from_secs(1);
    config
}

/// A fresh simulator store with holding register 0 = 42 and holding register 3 = 7.
fn rig_store() -> DataStore {
    let store = sim::store();
    store.write_holding_registers(0, &[42]).expect("in range");
    store.write_holding_registers(3, &[7]).expect("in range");
    store
}

/// The points of a `/data` answer by name.
fn points_by_name(data: &Value) -> BTreeMap<String, Value> {
    data["points"]
        .as_array()
        .expect("points is an array")
        .iter()
        .map(|point| {
            (
                point["name"]
                    .as_str()
                    .expect("a point has a name")
                    .to_string(),
                point.clone(),
            )
        })
        .collect()
}

fn holding_f32(store: &DataStore, address: u16) -> f32 {
    let words = store.holding_registers(address, 2).expect("in range");
    value::decode(&words, Order::Abcd).expect("two registers")
}

#[test]
fn list_and_detail_describe_each_device() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(100))],
        vec![server],
    );
    rig.wait_for_polls("rig", 5);

    let list = rig.get("/api/devices");
    assert!(list.content_type.starts_with("application/json"));
    let list = list.ok();
    let devices = list["devices"].as_array().expect("devices is an array");
    assert_eq!(devices.len(), 1, "{list}");
    let summary = &devices[0];
    assert_eq!(summary["name"], "rig");
    assert_eq!(summary["type"], "test rig");
    assert_eq!(summary["unit_id"], 1);
    assert_eq!(summary["enabled"], true);
    assert_eq!(summary["status"]["state"], "connected", "{summary}");
    assert_eq!(summary["link"]["id"], format!("tcp:{addr}"));
    assert!(
        summary["link"]["description"]
            .as_str()
            .is_some_and(|d| d.contains(&addr.to_string())),
        "the link names the address: {summary}"
    );
    assert!((summary["interval_ms"].as_f64().unwrap() - 100.0).abs() < 1e-6);

    let detail = rig.device("rig");
    let config = &detail["config"];
    assert!(
        (config["timeout_ms"].as_f64().unwrap() - 500.0).abs() < 1e-6,
        "{config}"
    );
    assert_eq!(config["retries"], 0);
    assert_eq!(config["history"], 50);
    assert_eq!(config["max_registers_per_read"], 125);
    let counters = &detail["counters"];
    for key in [
        "polls",
        "requests",
        "responses",
        "timeouts",
        "retries",
        "reconnects",
    ] {
        assert!(counters[key].is_u64(), "counter {key} in {counters}");
    }
    assert!(counters["polls"].as_u64().unwrap() >= 5);
    assert!(counters["requests"].as_u64().unwrap() >= counters["polls"].as_u64().unwrap());
    assert_eq!(
        counters["responses"], counters["requests"],
        "every request answered"
    );
    assert_eq!(counters["timeouts"], 0);
    assert!(counters["mean_rtt_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let points = detail["points"].as_array().expect("points");
    let names: Vec<&str> = points.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        ["setpoint", "flow", "level", "ir100", "pump", "door"]
    );
    let flow = &points[1];
    assert_eq!(flow["table"], "holding_registers");
    assert_eq!(flow["address"], 1);
    assert_eq!(flow["type"], "f32");
    assert_eq!(flow["unit"], "m³/h");
    assert_eq!(flow["access"], "read-write");
    assert_eq!(points[3]["access"], "read");
    assert_eq!(points[5]["table"], "discrete_inputs");
    assert_eq!(points[5]["type"], "bool");
    let requests = detail["plan"]["requests"]
        .as_array()
        .expect("plan requests");
    assert!(!requests.is_empty(), "{detail}");
    assert!(
        detail["plan"]["explained"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    rig.stop();
}

#[test]
fn data_and_history_are_the_polled_values() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(100))],
        vec![server],
    );
    // Five polls: enough history to see the limit cut it.
    rig.wait_for_polls("rig", 5);
    let data = rig.get("/api/devices/rig/data").ok();
    assert_eq!(data["device"], "rig");
    assert_eq!(data["status"]["state"], "connected");
    assert!(data["polled_at"].as_f64().is_some_and(|t| t > 1.0e9));
    assert!(data["age_ms"].as_f64().is_some_and(|age| age >= 0.0));
    let values = points_by_name(&data);
    assert_eq!(values["setpoint"]["value"], 42);
    assert_eq!(values["level"]["value"], 7);
    assert_eq!(values["ir100"]["value"], 100);
    assert_eq!(values["pump"]["value"], false);
    assert_eq!(values["door"]["value"], true);
    assert!(
        values["flow"]["value"]
            .as_f64()
            .is_some_and(|v| v.abs() < 1e-9)
    );
    for (name, point) in &values {
        assert_eq!(point["quality"], "good", "{name}: {point}");
        let age = point["age_ms"].as_f64().expect("a good value has an age");
        assert!((0.0..60_000.0).contains(&age), "{name}: age {age}");
        assert!(point["timestamp"].as_f64().is_some_and(|t| t > 1.0e9));
        assert!(point["sequence"].as_u64().is_some_and(|s| s >= 5));
    }
    assert_eq!(values["ir100"]["type"], "u16");

    let history = rig.get("/api/devices/rig/history?limit=3").ok();
    assert_eq!(history["limit"], 3);
    let series = history["points"].as_object().expect("points by name");
    assert_eq!(series.len(), 6, "every point by default: {history}");
    for (name, samples) in series {
        let samples = samples.as_array().expect("samples");
        assert_eq!(samples.len(), 3, "{name}: the limit is kept");
        let sequences: Vec<u64> = samples
            .iter()
            .filter_map(|s| s["sequence"].as_u64())
            .collect();
        assert_eq!(sequences.len(), 3);
        assert!(
            sequences.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "{name}: consecutive samples, oldest first: {sequences:?}"
        );
        for sample in samples {
            assert_eq!(sample["device"], "rig");
            assert_eq!(sample["point"], name.as_str());
            assert_eq!(sample["quality"], "good");
        }
    }
    assert_eq!(series["ir100"][2]["value"], 100);
    let one = rig.get("/api/devices/rig/history?limit=1&point=ir100").ok();
    let only = one["points"].as_object().expect("points");
    assert_eq!(only.len(), 1, "{one}");
    assert_eq!(only["ir100"].as_array().map(Vec::len), Some(1));
    // The default limit covers every sample kept so far (fewer than 100).
    let all = rig.get("/api/devices/rig/history?point=door").ok();
    assert!(
        all["points"]["door"]
            .as_array()
            .is_some_and(|s| s.len() >= 5)
    );

    for bad in ["0", "-1", "ten"] {
        let body = rig
            .get(&format!("/api/devices/rig/history?limit={bad}"))
            .error(400);
        assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    }

    // The dashboard is served at the root.
    let page = rig.get("/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    rig.stop();
}

#[test]
fn a_write_reaches_the_simulator_and_is_read_back() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(200))],
        vec![server],
    );
    rig.wait_for_polls("rig", 1);
    let answer = rig
        .post_json(
            "/api/devices/rig/write",
            &json!({ "setpoint": 1234, "flow": 12.5, "pump": true }),
        )
        .ok();
    assert_eq!(answer["device"], "rig");
    let written = answer["written"].as_object().expect("written by point");
    assert_eq!(written.len(), 3, "{answer}");
    // Each written point is read back from the device at once.
    assert_eq!(written["setpoint"]["value"], 1234);
    assert_eq!(written["setpoint"]["quality"], "good");
    assert!((written["flow"]["value"].as_f64().unwrap() - 12.5).abs() < 1e-9);
    assert_eq!(written["pump"]["value"], true);

    assert_eq!(store.holding_registers(0, 1).unwrap(), [1234]);
    assert!((holding_f32(&store, 1) - 12.5).abs() < f32::EPSILON);
    assert_eq!(store.coils(0, 1).unwrap(), [true]);
    // Nothing else moved.
    assert_eq!(store.holding_registers(3, 1).unwrap(), [7]);

    let data = rig.get("/api/devices/rig/data").ok();
    let values = points_by_name(&data);
    assert_eq!(values["setpoint"]["value"], 1234);
    assert_eq!(values["pump"]["value"], true);

    // 0 and 1 are accepted for a bool too; a negative float for an f32.
    rig.post_json(
        "/api/devices/rig/write",
        &json!({ "pump": 0, "flow": -0.25 }),
    )
    .ok();
    assert_eq!(store.coils(0, 1).unwrap(), [false]);
    assert!((holding_f32(&store, 1) + 0.25).abs() < f32::EPSILON);
    rig.stop();
}

#[test]
fn unknown_devices_points_and_routes_are_404() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(200))],
        vec![server],
    );
    for path in [
        "/api/devices/nope",
        "/api/devices/nope/data",
        "/api/devices/nope/history",
        "/api/devices/nope/history?limit=5",
    ] {
        let body = rig.get(path).error(404);
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("\"nope\""),
            "{path}: names the device: {body}"
        );
        assert!(
            message.contains("/api/devices"),
            "{path}: says where to look: {body}"
        );
    }
    for action in ["connect", "disconnect", "enable", "disable"] {
        rig.post_empty(&format!("/api/devices/nope/{action}"))
            .error(404);
    }
    rig.post_json("/api/devices/nope/write", &json!({ "setpoint": 1 }))
        .error(404);

    let body = rig
        .post_json("/api/devices/rig/write", &json!({ "nosuch": 1 }))
        .error(404);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("\"nosuch\""), "{body}");
    assert!(message.contains("/api/devices/rig"), "{body}");
    let body = rig.get("/api/devices/rig/history?point=nosuch").error(404);
    assert!(body["error"].as_str().unwrap().contains("nosuch"), "{body}");
    // Every point is checked before anything is sent: the known one is not written.
    rig.post_json(
        "/api/devices/rig/write",
        &json!({ "setpoint": 5, "nosuch": 1 }),
    )
    .error(404);
    assert_eq!(store.holding_registers(0, 1).unwrap(), [42]);

    let body = rig.get("/api/nothing-here").error(404);
    assert!(
        body["error"].as_str().unwrap().contains("/api/devices"),
        "{body}"
    );
    rig.stop();
}

#[test]
fn malformed_bodies_and_wrong_values_are_400_and_nothing_is_written() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(200))],
        vec![server],
    );
    rig.wait_for_polls("rig", 1);
    let cases: [(&str, &str); 14] = [
        ("{\"setpoint\": ", "not JSON"),
        ("setpoint=5", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "object"),
        ("42", "object"),
        ("{}", "names no point"),
        ("{\"flow\": \"fast\"}", "number"),
        ("{\"flow\": true}", "number"),
        ("{\"flow\": 1e300}", "f32"),
        ("{\"setpoint\": 70000}", "range"),
        ("{\"setpoint\": -1}", "range"),
        ("{\"setpoint\": 1.5}", "range"),
        ("{\"pump\": \"on\"}", "true or false"),
        ("{\"setpoint\": 1, \"setpoint\": 2}", "twice"),
    ];
    for (body, expected) in cases {
        let answer = rig.post("/api/devices/rig/write", body).error(400);
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{body:?}: expected {expected:?} in {message:?}"
        );
    }
    // A bad value later in the object stops the good one before it too.
    rig.post(
        "/api/devices/rig/write",
        "{\"setpoint\": 9, \"pump\": \"on\"}",
    )
    .error(400);
    assert_eq!(store.holding_registers(0, 1).unwrap(), [42]);
    assert!(holding_f32(&store, 1).abs() < f32::EPSILON);
    assert_eq!(store.coils(0, 1).unwrap(), [false]);
    let detail = rig.device("rig");
    let requests = detail["counters"]["requests"].as_u64().unwrap();
    let polls = detail["counters"]["polls"].as_u64().unwrap();
    // Polls read in one or more requests each; no write was among them.
    let plan_reads = detail["plan"]["requests"].as_array().unwrap().len() as u64;
    assert!(requests <= polls * plan_reads + plan_reads, "{detail}");
    rig.stop();
}

#[test]
fn read_only_points_and_disabled_or_disconnected_devices_are_409() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(200))],
        vec![server],
    );
    rig.wait_for_polls("rig", 1);
    for point in ["level", "ir100", "door"] {
        let body = rig
            .post_json("/api/devices/rig/write", &json!({ point: 1 }))
            .error(409);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("read-only"), "{point}: {body}");
        assert!(
            message.contains("read-write"),
            "{point}: says what to change: {body}"
        );
    }
    assert_eq!(store.holding_registers(3, 1).unwrap(), [7]);

    let answer = rig.post_empty("/api/devices/rig/disable").ok();
    assert_eq!(answer["status"]["state"], "disabled");
    let detail = rig.device("rig");
    assert_eq!(detail["enabled"], false);
    let body = rig
        .post_json("/api/devices/rig/write", &json!({ "setpoint": 5 }))
        .error(409);
    assert!(
        body["error"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    // A disabled device cannot be connected either: enable it first.
    rig.post_empty("/api/devices/rig/connect").error(409);
    assert_eq!(store.holding_registers(0, 1).unwrap(), [42]);
    // Its values stay, marked stale.
    let data = rig.get("/api/devices/rig/data").ok();
    assert_eq!(
        points_by_name(&data)["setpoint"]["quality"],
        "stale",
        "{data}"
    );

    rig.post_empty("/api/devices/rig/enable").ok();
    rig.wait_for("rig", "enabled again", |d| d["enabled"] == true);
    rig.post_json("/api/devices/rig/write", &json!({ "setpoint": 5 }))
        .ok();
    assert_eq!(store.holding_registers(0, 1).unwrap(), [5]);

    let answer = rig.post_empty("/api/devices/rig/disconnect").ok();
    assert_eq!(answer["status"]["state"], "disconnected");
    let body = rig
        .post_json("/api/devices/rig/write", &json!({ "setpoint": 6 }))
        .error(409);
    assert!(
        body["error"].as_str().unwrap().contains("connect it"),
        "{body}"
    );
    assert_eq!(store.holding_registers(0, 1).unwrap(), [5]);
    rig.post_empty("/api/devices/rig/connect").ok();
    rig.wait_for("rig", "connected again", |d| {
        d["status"]["state"] == "connected"
    });
    rig.post_json("/api/devices/rig/write", &json!({ "setpoint": 6 }))
        .ok();
    assert_eq!(store.holding_registers(0, 1).unwrap(), [6]);
    rig.stop();
}

#[test]
fn an_exception_answer_is_502_with_its_code_and_name() {
    let store = sim::store();
    let (server, addr) = simulator(&store, None);
    // Holding register 10 000 is past the simulator's table: exception 02.
    let points = PointMap::new([number(
        "beyond",
        1,
        Table::HoldingRegisters,
        10_000,
        DataType::U16,
    )])
    .unwrap();
    let mut faulty = DeviceConfig::new("faulty", Link::tcp(addr.to_string()), 1, points)
        .with_interval(Duration::from_millis(200))
        .with_writable(["beyond"]);
    faulty.retries = 0;
    let rig = Rig::start(vec![faulty], vec![server]);
    let body = rig
        .post_json("/api/devices/faulty/write", &json!({ "beyond": 1 }))
        .error(502);
    assert_eq!(body["exception"]["code"], 2, "{body}");
    assert_eq!(body["exception"]["name"], "illegal data address", "{body}");
    // FC 06, write single register.
    assert_eq!(body["exception"]["function"], 6, "{body}");
    assert_eq!(body["point"], "beyond");
    assert!(body["error"].as_str().unwrap().contains("faulty"), "{body}");

    // Its polls get the same answer: bad quality with the reason, the exception counted.
    // (The write's exception and at least one poll's; the status is set as a poll ends.)
    rig.wait_for("faulty", "a poll answered with exception 02", |d| {
        d["counters"]["exceptions"]["02"].as_u64().unwrap_or(0) >= 2
            && d["status"]["state"] == "error"
    });
    let data = rig.get("/api/devices/faulty/data").ok();
    let beyond = &points_by_name(&data)["beyond"];
    assert_eq!(beyond["quality"], "bad", "{data}");
    assert!(beyond["value"].is_null());
    assert!(
        beyond["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{data}"
    );
    rig.stop();
}

#[test]
fn a_device_that_never_answers_is_504() {
    let store = rig_store();
    // The server answers unit 1 only; requests for unit 2 are silently dropped.
    let (server, addr) = simulator(&store, Some(UnitIds::single(1)));
    let mut silent = rig_device("silent", addr, 2, Duration::from_millis(300));
    silent.response_timeout = Duration::from_millis(200);
    let rig = Rig::start(vec![silent], vec![server]);
    let started = Instant::now();
    let body = rig
        .post(
            "/api/devices/silent/write",
            r#"{"setpoint": 9, "pump": true}"#,
        )
        .error(504);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by the timeout"
    );
    assert!(
        body["error"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );
    // Points are written in the order the body names them; the first failure stops the rest.
    assert_eq!(body["point"], "setpoint", "{body}");
    assert_eq!(body["written"], json!({}));
    assert_eq!(body["not_sent"], json!(["pump"]), "{body}");
    assert_eq!(store.holding_registers(0, 1).unwrap(), [42]);
    assert_eq!(store.coils(0, 1).unwrap(), [false]);

    let detail = rig.wait_for("silent", "backing off", |d| {
        d["status"]["state"] == "backing_off"
    });
    assert!(
        detail["counters"]["timeouts"].as_u64().unwrap() >= 1,
        "{detail}"
    );
    assert_eq!(detail["counters"]["responses"], 0);
    assert!(
        detail["status"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{detail}"
    );
    let data = rig.get("/api/devices/silent/data").ok();
    for (name, point) in points_by_name(&data) {
        assert!(point["value"].is_null(), "{name} was never read: {point}");
        assert_ne!(point["quality"], "good", "{name}: {point}");
    }
    rig.stop();
}

#[test]
fn data_is_the_latest_poll_and_never_causes_a_read() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    // One poll at start, the next a minute later: far beyond this test.
    let rig = Rig::start(
        vec![rig_device("slow", addr, 1, Duration::from_secs(60))],
        vec![server],
    );
    let before = rig.wait_for_polls("slow", 1);
    let requests = before["counters"]["requests"].as_u64().unwrap();
    assert!(requests >= 1);
    // The simulator moves on; the service may only learn it at its next poll.
    store.write_input_registers(100, &[4242]).unwrap();
    let mut ages = Vec::new();
    for _ in 0..25 {
        let data = rig.get("/api/devices/slow/data").ok();
        let ir100 = &points_by_name(&data)["ir100"];
        assert_eq!(
            ir100["value"], 100,
            "from the latest poll, not a fresh read"
        );
        assert_eq!(ir100["quality"], "good");
        ages.push(data["age_ms"].as_f64().expect("the poll's age"));
        thread::sleep(Duration::from_millis(10));
    }
    let after = rig.device("slow");
    assert_eq!(
        after["counters"]["requests"].as_u64().unwrap(),
        requests,
        "25 GETs of /data sent no request to the device"
    );
    assert_eq!(after["counters"]["polls"], before["counters"]["polls"]);
    assert!(
        ages.windows(2).all(|pair| pair[1] >= pair[0]),
        "the age grows: {ages:?}"
    );
    assert!(ages[24] - ages[0] >= 200.0, "25 × 10 ms later: {ages:?}");

    // A reconnect polls at once; once that poll is done, /data shows the new value.
    let first_poll = before["last_poll"].as_f64().unwrap();
    rig.post_empty("/api/devices/slow/disconnect").ok();
    rig.post_empty("/api/devices/slow/connect").ok();
    let start = Instant::now();
    loop {
        let data = rig.get("/api/devices/slow/data").ok();
        // Points are published as their reads complete; the poll has ended when `polled_at`
        // moved and the status is set (the engine sets the two one after the other).
        if data["polled_at"].as_f64().unwrap() > first_poll
            && data["status"]["state"] == "connected"
        {
            assert_eq!(points_by_name(&data)["ir100"]["value"], 4242, "{data}");
            assert!(
                data["age_ms"].as_f64().unwrap() < ages[24],
                "{data} {ages:?}"
            );
            break;
        }
        assert!(start.elapsed() < PATIENCE, "no poll after connect: {data}");
        thread::sleep(Duration::from_millis(20));
    }
    rig.stop();
}

/// One sample line of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{a="x",b="y"}` (with `\\`, `\"` and `\n` escapes); returns the labels and the rest.
fn parse_labels(text: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = text.strip_prefix('{') else {
        return (labels, text);
    };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
        assert!(
            is_metric_name(name) && !name.contains(':'),
            "label name {name:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (index, c) = chars.next().expect("a closed label value");
            match c {
                '"' => break index,
                '\\' => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    other @ ('\\' | '"') => value.push(other),
                    other => panic!("bad escape \\{other}"),
                },
                c => value.push(c),
            }
        };
        assert!(
            labels.insert(name.to_string(), value).is_none(),
            "{name} twice"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses the exposition text strictly: every sample belongs to a family whose `# TYPE` came
/// before it (once), and every value is a number.
fn parse_prometheus(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_metric_name(name), "{line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line}"
                    );
                    assert!(
                        types.insert(name.to_string(), kind.to_string()).is_none(),
                        "TYPE twice: {line}"
                    );
                }
                (Some("HELP"), Some(name), Some(help)) => {
                    assert!(is_metric_name(name) && !help.is_empty(), "{line}");
                }
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .expect("a name then labels or a value");
        let name = &line[..name_end];
        assert!(is_metric_name(name), "{line}");
        let (labels, rest) = parse_labels(&line[name_end..]);
        let mut fields = rest.split_whitespace();
        let value = fields.next().expect("a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or_else(|_| panic!("value in {line}")),
        };
        assert!(
            fields.count() <= 1,
            "at most a timestamp after the value: {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (types, samples)
}

fn sample<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// Counters every device has.
const COUNTERS: [&str; 8] = [
    "modbus_harvest_polls_total",
    "modbus_harvest_requests_total",
    "modbus_harvest_responses_total",
    "modbus_harvest_timeouts_total",
    "modbus_harvest_retries_total",
    "modbus_harvest_invalid_responses_total",
    "modbus_harvest_reconnects_total",
    "modbus_harvest_plan_rebuilds_total",
];

/// Checks a device's histogram (ascending bounds ending in `+Inf`, cumulative counts, the
/// `+Inf` bucket equal to `_count`) and returns its count and sum.
fn histogram(samples: &[Sample], family: &str, device: &str) -> (f64, f64) {
    let bucket_name = format!("{family}_bucket");
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == bucket_name && s.labels.get("device").map(String::as_str) == Some(device)
        })
        .collect();
    assert!(buckets.len() >= 5, "{buckets:?}");
    let bounds: Vec<f64> = buckets
        .iter()
        .map(|s| match s.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            le => le.parse().expect("le is a number"),
        })
        .collect();
    assert!(
        bounds.windows(2).all(|pair| pair[0] < pair[1]),
        "{bounds:?}"
    );
    assert!(bounds.last().is_some_and(|b| b.is_infinite()));
    assert!(
        buckets
            .windows(2)
            .all(|pair| pair[0].value <= pair[1].value)
    );
    let count = sample(samples, &format!("{family}_count"), &[("device", device)])
        .unwrap()
        .value;
    let sum = sample(samples, &format!("{family}_sum"), &[("device", device)])
        .unwrap()
        .value;
    assert!((buckets.last().unwrap().value - count).abs() < f64::EPSILON);
    (count, sum)
}

#[test]
fn metrics_are_prometheus_text_with_per_device_counters_and_histograms() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let (other_server, other_addr) = simulator(&sim::store(), None);
    let points = PointMap::new([number(
        "beyond",
        1,
        Table::HoldingRegisters,
        10_000,
        DataType::U16,
    )])
    .unwrap();
    let mut faulty = DeviceConfig::new("faulty", Link::tcp(other_addr.to_string()), 1, points)
        .with_interval(Duration::from_millis(100));
    faulty.retries = 0;
    let rig = Rig::start(
        vec![
            rig_device("rig", addr, 1, Duration::from_millis(100)),
            faulty,
        ],
        vec![server, other_server],
    );
    rig.wait_for_polls("rig", 3);
    rig.wait_for("faulty", "an exception", |d| {
        d["counters"]["exceptions"]["02"].as_u64().unwrap_or(0) >= 1
    });
    let answer = rig.get("/metrics");
    assert_eq!(answer.status, 200);
    assert!(
        answer.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        answer.content_type
    );
    let (types, samples) = parse_prometheus(&answer.text);
    assert_eq!(types["modbus_harvest_requests_total"], "counter");
    assert_eq!(types["modbus_harvest_rtt_seconds"], "histogram");
    for device in ["rig", "faulty"] {
        for name in COUNTERS {
            let found = sample(&samples, name, &[("device", device)]);
            assert!(found.is_some(), "{name} for {device}");
        }
    }
    let requests = sample(
        &samples,
        "modbus_harvest_requests_total",
        &[("device", "rig")],
    )
    .unwrap()
    .value;
    assert!(requests >= 3.0);
    let exceptions = sample(
        &samples,
        "modbus_harvest_exceptions_total",
        &[("device", "faulty")],
    )
    .expect("the faulty device's exceptions");
    assert!(exceptions.value >= 1.0);
    assert_eq!(
        exceptions.labels["code"].trim_start_matches('0'),
        "2",
        "{exceptions:?}"
    );
    assert!(
        sample(
            &samples,
            "modbus_harvest_exceptions_total",
            &[("device", "rig")]
        )
        .is_none()
    );
    assert!(
        sample(
            &samples,
            "modbus_harvest_device_status",
            &[("device", "rig"), ("status", "connected")]
        )
        .is_some_and(|s| (s.value - 1.0).abs() < f64::EPSILON)
    );
    assert!(
        sample(
            &samples,
            "modbus_harvest_point_value",
            &[("device", "rig"), ("point", "ir100")]
        )
        .is_some_and(|s| (s.value - 100.0).abs() < f64::EPSILON)
    );

    let (count, sum) = histogram(&samples, "modbus_harvest_rtt_seconds", "rig");
    assert!(count >= 3.0 && sum > 0.0, "count {count}, sum {sum}");
    let (late, _) = histogram(&samples, "modbus_harvest_poll_lateness_seconds", "rig");
    assert!(late >= 3.0, "every poll's lateness is recorded: {late}");
    assert!(
        sample(
            &samples,
            "modbus_harvest_rtt_seconds_count",
            &[("device", "faulty")]
        )
        .is_some()
    );
    rig.stop();
}

#[test]
fn the_event_stream_delivers_samples_and_ends_when_the_service_stops() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(100))],
        vec![server],
    );
    let stream_agent = agent(Duration::from_secs(30));
    let response = stream_agent
        .get(format!("{}/api/events", rig.base))
        .header("accept", "text/event-stream")
        .call()
        .expect("open the stream");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut lines = BufReader::new(response.into_body().into_reader());

    // Reads events (bounded in count; the agent's timeout bounds the time) until `wanted`.
    let mut next_sample = |wanted: &dyn Fn(&Value) -> bool| -> Value {
        let mut event = String::new();
        for _ in 0..5000 {
            let mut line = String::new();
            let read = lines.read_line(&mut line).expect("read the stream");
            assert!(read > 0, "the stream ended early");
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                let data: Value = serde_json::from_str(data.trim()).expect("data is JSON");
                if event == "sample" && wanted(&data) {
                    return data;
                }
            }
        }
        panic!("no such sample in 5000 lines");
    };
    let polled = next_sample(&|data| data["point"] == "ir100");
    assert_eq!(polled["device"], "rig");
    assert_eq!(polled["value"], 100);
    assert_eq!(polled["quality"], "good");
    assert!(polled["timestamp"].as_f64().is_some_and(|t| t > 1.0e9));
    assert!(polled["sequence"].as_u64().is_some_and(|s| s >= 1));

    // A write shows up in the stream (its read-back, and then the polls).
    rig.post_json("/api/devices/rig/write", &json!({ "setpoint": 777 }))
        .ok();
    let written = next_sample(&|data| data["point"] == "setpoint" && data["value"] == 777);
    assert_eq!(written["quality"], "good");
    // Samples of one point come in sequence order.
    let later = next_sample(&|data| data["point"] == "setpoint");
    assert!(later["sequence"].as_u64() > written["sequence"].as_u64());

    // Stopping the service ends the open stream: the reader sees its end, not a hang.
    let stopped_at = Instant::now();
    rig.stop();
    let mut ended = false;
    for _ in 0..100_000 {
        let mut line = String::new();
        match lines.read_line(&mut line) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(_) => {}
            Err(error) => panic!("the stream broke instead of ending: {error}"),
        }
    }
    assert!(ended, "the stream ended");
    assert!(stopped_at.elapsed() < Duration::from_secs(15));
}

#[test]
fn the_embedded_demo_is_served_and_its_setpoint_written() {
    let mut plant = Demo::start().expect("start the demo simulators");
    let service = Service::start(
        plant.devices.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
    )
    .expect("start the service");
    let rig = Rig {
        base: format!("http://{}", service.addr()),
        service: Some(service),
        servers: Vec::new(),
        http: agent(Duration::from_secs(30)),
    };
    let list = rig.get("/api/devices").ok();
    let names: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["meter-1", "meter-2", "plc"]);
    for name in ["plc", "meter-1", "meter-2"] {
        rig.wait_for(name, "connected", |d| d["status"]["state"] == "connected");
        let data = rig.get(&format!("/api/devices/{name}/data")).ok();
        for (point, state) in points_by_name(&data) {
            assert_eq!(state["quality"], "good", "{name}.{point}: {state}");
        }
    }
    let meter = points_by_name(&rig.get("/api/devices/meter-1/data").ok());
    let voltage = meter["voltage"]["value"].as_f64().unwrap();
    assert!((220.0..240.0).contains(&voltage), "voltage {voltage}");
    let frequency = meter["frequency"]["value"].as_f64().unwrap();
    assert!((49.0..51.0).contains(&frequency), "frequency {frequency}");
    let plc = points_by_name(&rig.get("/api/devices/plc/data").ok());
    assert_eq!(plc["name"]["value"], "Tank farm PLC");
    assert_eq!(plc["setpoint"]["unit"], "%");

    rig.post_json("/api/devices/plc/write", &json!({ "setpoint": 30.5 }))
        .ok();
    assert!((holding_f32(&plant.plc, demo::plc::SETPOINT) - 30.5).abs() < f32::EPSILON);
    // The meters are read-only.
    rig.post_json("/api/devices/meter-1/write", &json!({ "voltage": 1.0 }))
        .error(409);
    rig.stop();
    plant.stop();
}

/// A write of a 3 MiB body as raw HTTP, the body pushed from another thread while the answer
/// is read: the server answers once it has read past its limit and closes the connection, and
/// a client that only read after sending would see the close instead of the answer.
fn oversized_write(rig: &Rig) -> Reply {
    let addr = rig.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let mut sender = stream.try_clone().expect("clone the stream");
    sender
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("a write timeout");
    let head = format!(
        "POST /api/devices/rig/write HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        3 << 20
    );
    let pusher = thread::spawn(move || {
        // Fails with a broken pipe once the server has answered and closed: expected.
        let _ = sender.write_all(head.as_bytes());
        let _ = sender.write_all(&vec![b' '; 3 << 20]);
    });
    let mut answer = Vec::new();
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    // Until the head and the body it announces are in (bounded in time and size).
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .expect("the answer has a length");
            if body.len() >= length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("a status line");
                let content_type = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-type")
                            .then(|| value.trim().to_string())
                    })
                    .unwrap_or_default();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                pusher.join().expect("the body thread ends");
                return Reply {
                    status,
                    content_type,
                    allow: None,
                    text: body[..length].to_string(),
                };
            }
        }
        assert!(
            start.elapsed() < PATIENCE && answer.len() < 1 << 20,
            "no answer: {text}"
        );
        let read = stream.read(&mut buffer).expect("read the answer");
        assert!(read > 0, "closed before answering: {text}");
        answer.extend_from_slice(&buffer[..read]);
    }
}

#[test]
fn refusals_by_the_http_layer_are_json_errors_too() {
    let store = rig_store();
    let (server, addr) = simulator(&store, None);
    let rig = Rig::start(
        vec![rig_device("rig", addr, 1, Duration::from_millis(200))],
        vec![server],
    );
    let wrong_method = rig.get("/api/devices/rig/write");
    let body = wrong_method.error(405);
    assert_eq!(
        body["error"],
        "GET is not allowed on /api/devices/rig/write; use POST"
    );
    assert_eq!(wrong_method.allow.as_deref(), Some("POST"));
    let body = rig.post_empty("/api/devices/rig/data").error(405);
    assert!(
        body["error"].as_str().unwrap().ends_with("use GET"),
        "{body}"
    );

    let body = oversized_write(&rig).error(413);
    assert!(
        body["error"].as_str().unwrap().contains("too large"),
        "{body}"
    );
    let body = rig
        .get("/api/devices/rig/history?limit=5&limit=6")
        .error(400);
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    rig.get("/api/devices/%FF/data").error(400);
    // The refusals wrote nothing, and the service still answers.
    assert_eq!(store.holding_registers(0, 1).unwrap(), [42]);
    rig.get("/api/devices").ok();
    rig.stop();
}
