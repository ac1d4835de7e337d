//! The JSON API through a real HTTP client (ureq) against the service on 127.0.0.1, with real
//! Modbus servers behind it: every route, and every error with the status code that names it
//! (404, 400, 409, 502, 504) and a JSON body whose message says what to do.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use modbus_harvest::Service;
use modbus_stack::harvest::{DeviceConfig, Link};
use modbus_stack::point::{Point, PointKind, PointMap, Table};
use modbus_stack::server::DataStore;
use modbus_stack::server::tcp::{Config, SpawnedServer, TcpServer};
use modbus_stack::session::server::UnitIds;
use modbus_stack::value::{DataType, Order};
use serde_json::{Value, json};

fn holding(name: &str, unit: u8, address: u16, data_type: DataType) -> Point {
    Point::new(
        name,
        unit,
        Table::HoldingRegisters,
        address,
        PointKind::number(data_type, Order::Abcd),
    )
}

/// A PLC with 16 holding registers on unit 1, answering no other unit (so unit 2 is silent).
struct Plant {
    store: DataStore,
    server: SpawnedServer,
    service: Service,
    agent: ureq::Agent,
}

impl Plant {
    /// `plc` (unit 1): `setpoint` read-write, `level` read-only; `gappy` (unit 1 as well):
    /// `beyond`, read-write past the end of the store (exception 02); `mute` (unit 2, never
    /// answered): `setpoint`.
    fn start(interval: Duration) -> Self {
        let store = DataStore::builder().holding_registers(16).build();
        store.write_holding_registers(0, &[7, 0, 33]).unwrap();
        let mut config = Config::tcp();
        config.session.units = UnitIds::single(1);
        let server = TcpServer::bind("127.0.0.1:0", config)
            .unwrap()
            .spawn(store.clone())
            .unwrap();
        let link = Link::tcp(server.local_addr().to_string());
        let points = PointMap::new([
            holding("setpoint", 1, 0, DataType::U16),
            holding("level", 1, 2, DataType::I16),
        ])
        .unwrap();
        let mut plc = DeviceConfig::new("plc", link.clone(), 1, points)
            .with_interval(interval)
            .with_writable(["setpoint"]);
        plc.device_type = Some("plc".into());
        let gappy = DeviceConfig::new(
            "gappy",
            link.clone(),
            1,
            PointMap::new([holding("beyond", 1, 100, DataType::U16)]).unwrap(),
        )
        .with_interval(interval)
        .with_writable(["beyond"]);
        let mut mute = DeviceConfig::new(
            "mute",
            link,
            2,
            PointMap::new([holding("setpoint", 2, 0, DataType::U16)]).unwrap(),
        )
        .with_interval(Duration::from_secs(3600))
        .with_writable(["setpoint"]);
        mute.response_timeout = Duration::from_millis(150);
        mute.retries = 0;
        let service = Service::start(
            vec![plc, gappy, mute],
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .unwrap();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let plant = Self {
            store,
            server,
            service,
            agent,
        };
        plant.wait_for("plc polled", |p| {
            p.get("/api/devices/plc/data").1["points"][0]["quality"] == "good"
        });
        plant
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.service.addr())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self.agent.get(&self.url(path)).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_json().unwrap())
    }

    fn get_text(&self, path: &str) -> (u16, String) {
        let mut response = self.agent.get(&self.url(path)).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut response = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_json().unwrap())
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(self) {
        self.service.stop().unwrap();
        self.server.shutdown().unwrap();
    }
}

/// An error answer: the status, and a message a person can act on.
fn assert_error(answer: &(u16, Value), status: u16, needle: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let message = answer.1["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{status}: {message:?} lacks {needle:?}"
    );
}

#[test]
fn routes_answer_from_the_latest_poll() {
    let plant = Plant::start(Duration::from_millis(100));
    let (status, list) = plant.get("/api/devices");
    assert_eq!(status, 200);
    let names: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(["plc", "gappy", "mute"].iter().all(|n| names.contains(n)));

    let (status, detail) = plant.get("/api/devices/plc");
    assert_eq!(status, 200);
    assert_eq!(detail["type"], "plc");
    assert_eq!(detail["unit_id"], 1);
    assert_eq!(detail["status"]["state"], "connected");
    assert!(detail["counters"]["responses"].as_u64().unwrap() >= 1);
    assert!(
        detail["plan"]["requests"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );

    let (status, data) = plant.get("/api/devices/plc/data");
    assert_eq!(status, 200);
    let point = |name: &str| {
        data["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(point("setpoint")["value"], 7);
    assert_eq!(point("level")["value"], 33);
    assert_eq!(point("setpoint")["quality"], "good");
    assert!(data["age_ms"].as_f64().unwrap() < 5_000.0);
    // Past the end of the store: bad, with the device's reason.
    plant.wait_for("gappy polled", |p| {
        p.get("/api/devices/gappy/data").1["points"][0]["quality"] == "bad"
    });
    let gappy = plant.get("/api/devices/gappy/data").1;
    assert!(
        gappy["points"][0]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );

    plant.wait_for("five samples of history", |p| {
        p.get("/api/devices/plc/history?limit=5").1["points"]["setpoint"]
            .as_array()
            .is_some_and(|s| s.len() == 5)
    });
    let (status, history) = plant.get("/api/devices/plc/history?limit=3");
    assert_eq!(status, 200);
    let samples = history["points"]["setpoint"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    let sequences: Vec<u64> = samples
        .iter()
        .map(|s| s["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequences:?}"
    );
    plant.stop();
}

#[test]
fn data_never_triggers_a_read() {
    // One poll an hour: whatever the page asks, the device sees no further request.
    let plant = Plant::start(Duration::from_secs(3600));
    let requests = |p: &Plant| p.get("/api/devices/plc").1["counters"]["requests"].as_u64();
    let before = requests(&plant);
    for _ in 0..50 {
        assert_eq!(plant.get("/api/devices/plc/data").0, 200);
    }
    assert_eq!(requests(&plant), before);
    plant.stop();
}

#[test]
fn a_write_reaches_the_device_and_reads_back() {
    let plant = Plant::start(Duration::from_millis(100));
    let (status, body) = plant.post("/api/devices/plc/write", r#"{"setpoint": 4242}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["written"]["setpoint"]["value"], 4242);
    assert_eq!(plant.store.holding_registers(0, 1).unwrap(), [4242]);
    plant.stop();
}

#[test]
fn unknown_names_are_404() {
    let plant = Plant::start(Duration::from_millis(100));
    assert_error(
        &plant.get("/api/devices/nope"),
        404,
        "GET /api/devices lists them",
    );
    assert_error(&plant.get("/api/devices/nope/data"), 404, "nope");
    assert_error(&plant.post("/api/devices/nope/connect", ""), 404, "nope");
    assert_error(
        &plant.post("/api/devices/plc/write", r#"{"nope": 1}"#),
        404,
        "lists its points",
    );
    assert_error(&plant.get("/api/nothing-here"), 404, "/api/devices");
    plant.stop();
}

#[test]
fn malformed_bodies_and_values_that_do_not_fit_are_400() {
    let plant = Plant::start(Duration::from_millis(100));
    let write = |body: &str| plant.post("/api/devices/plc/write", body);
    assert_error(&write("{\"setpoint\": "), 400, "not JSON");
    assert_error(&write("[1, 2]"), 400, "JSON object");
    assert_error(&write("{}"), 400, "names no point");
    assert_error(&write(r#"{"setpoint": "high"}"#), 400, "setpoint");
    assert_error(&write(r#"{"setpoint": 70000}"#), 400, "setpoint");
    assert_error(&write(r#"{"setpoint": -1}"#), 400, "setpoint");
    assert_error(
        &plant.get("/api/devices/plc/history?limit=zero"),
        400,
        "limit",
    );
    // Nothing was written by any of them.
    assert_eq!(plant.store.holding_registers(0, 1).unwrap(), [7]);
    plant.stop();
}

#[test]
fn read_only_points_and_disabled_devices_are_409() {
    let plant = Plant::start(Duration::from_millis(100));
    assert_error(
        &plant.post("/api/devices/plc/write", r#"{"level": 5}"#),
        409,
        "read-write",
    );
    let (status, body) = plant.post("/api/devices/plc/disable", "");
    assert_eq!(
        (status, &body["status"]["state"]),
        (200, &json!("disabled"))
    );
    let answer = plant.post("/api/devices/plc/write", r#"{"setpoint": 1}"#);
    assert_eq!(answer.0, 409, "{}", answer.1);
    assert_eq!(plant.store.holding_registers(0, 1).unwrap(), [7]);
    let (status, body) = plant.post("/api/devices/plc/enable", "");
    assert_eq!(status, 200, "{body}");
    // Disconnect and connect again.
    let (status, body) = plant.post("/api/devices/plc/disconnect", "");
    assert_eq!(
        (status, &body["status"]["state"]),
        (200, &json!("disconnected"))
    );
    let (status, _) = plant.post("/api/devices/plc/connect", "");
    assert_eq!(status, 200);
    plant.wait_for("plc connected again", |p| {
        p.get("/api/devices/plc").1["status"]["state"] == "connected"
    });
    plant.stop();
}

#[test]
fn an_exception_is_502_and_silence_is_504() {
    let plant = Plant::start(Duration::from_millis(100));
    let answer = plant.post("/api/devices/gappy/write", r#"{"beyond": 1}"#);
    assert_eq!(answer.0, 502, "{}", answer.1);
    assert_eq!(answer.1["exception"]["code"], 2);
    assert_eq!(answer.1["exception"]["name"], "illegal data address");
    assert_eq!(answer.1["point"], "beyond");
    assert!(answer.1["error"].as_str().is_some_and(|m| !m.is_empty()));

    let answer = plant.post("/api/devices/mute/write", r#"{"setpoint": 1}"#);
    assert_eq!(answer.0, 504, "{}", answer.1);
    assert!(answer.1["error"].as_str().is_some_and(|m| !m.is_empty()));
    plant.stop();
}

#[test]
fn metrics_are_prometheus_text_with_counters_and_histograms() {
    let plant = Plant::start(Duration::from_millis(100));
    let (status, text) = plant.get_text("/metrics");
    assert_eq!(status, 200);
    let mut families = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "{line}"
            );
            families += usize::from(rest.starts_with("TYPE "));
            continue;
        }
        // name{labels} value
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(!series.is_empty() && !series.contains(' '), "{line}");
    }
    assert!(families >= 5, "{families} metric families");
    assert!(text.contains("device=\"plc\""));
    assert!(text.contains("_bucket{"), "no histogram buckets");
    assert!(text.contains("le=\"+Inf\""));
    plant.stop();
}

#[test]
fn the_event_stream_carries_samples() {
    use std::io::{BufRead, BufReader};
    let plant = Plant::start(Duration::from_millis(50));
    let response = plant.agent.get(&plant.url("/api/events")).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut reader = BufReader::new(response.into_body().into_reader());
    let started = Instant::now();
    let mut line = String::new();
    let mut sample = None;
    while sample.is_none() && started.elapsed() < Duration::from_secs(10) {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.starts_with("event: sample") {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let data = line.trim_end().strip_prefix("data: ").unwrap().to_owned();
            sample = Some(serde_json::from_str::<Value>(&data).unwrap());
        }
    }
    let sample = sample.expect("no sample event in 10 s");
    assert!(
        ["plc", "gappy", "mute"]
            .iter()
            .any(|n| sample["device"] == *n)
    );
    assert!(sample["sequence"].is_u64() && sample["timestamp"].is_number());
    drop(reader);
    plant.stop();
}
