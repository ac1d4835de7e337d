//! The MQTT publisher against a real broker: Debian's `mosquitto`, started by each test on a
//! free 127.0.0.1 port and stopped by it. The devices are the embedded demo's simulators.
//!
//! Outages are real: the broker process is stopped (SIGTERM, so it saves the subscriber's
//! persistent session) and started again on the same port; the subscriber keeps a
//! persistent session so that it misses nothing published while it was reconnecting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use modbus_harvest::Service;
use modbus_harvest::demo::{Demo, plc};
use modbus_harvest::mqtt::{Broker, MqttConfig, MqttStats};
use modbus_stack::point::{Point, PointKind, PointMap, Table};
use modbus_stack::value::{self, Order};
use serde_json::Value;
use support::mqtt::{Message, Mosquitto, Subscriber};

const ANY_PORT: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

fn mqtt_config(broker: Broker, client_id: &str, prefix: &str, queue: &Path) -> MqttConfig {
    let mut config = MqttConfig::new(broker, client_id, queue.to_path_buf());
    config.mode = modbus_harvest::mqtt::Mode::Plain {
        prefix: prefix.into(),
    };
    config.reconnect.initial = Duration::from_millis(100);
    config.reconnect.max = Duration::from_millis(400);
    config
}

/// The demo's devices, polled every 100 ms so an outage of a few seconds holds many polls.
fn fast(demo: &Demo) -> Vec<modbus_stack::harvest::DeviceConfig> {
    demo.devices
        .iter()
        .cloned()
        .map(|device| device.with_interval(Duration::from_millis(100)))
        .collect()
}

fn stats(service: &Service) -> &Arc<MqttStats> {
    service.mqtt().expect("the service publishes")
}

fn backlog(service: &Service) -> u64 {
    stats(service).backlog.load(Ordering::Relaxed)
}

/// Per (device, point): `(run, sequence, timestamp)` of each arrival, in arrival order.
type Arrivals = BTreeMap<(String, String), Vec<(u64, u64, f64)>>;

/// The sample messages under `prefix`.
fn samples(messages: &[Message], prefix: &str) -> Arrivals {
    let mut out: Arrivals = BTreeMap::new();
    for message in messages {
        let Some(rest) = message.topic.strip_prefix(&format!("{prefix}/")) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != 2 || parts[0] == "_service" || parts[1] == "status" {
            continue;
        }
        let body = message.json();
        out.entry((parts[0].into(), parts[1].into()))
            .or_default()
            .push((
                body["run"].as_u64().unwrap(),
                body["sequence"].as_u64().unwrap(),
                body["timestamp"].as_f64().unwrap(),
            ));
    }
    out
}

/// What is wrong with the arrivals, if anything: every run's sequence numbers of every point
/// must arrive complete from 1 and in order (the first arrival of each number after the first
/// arrival of the one before; resends after a reconnect may repeat numbers).
fn incomplete_or_disordered(
    seen: &Arrivals,
    expected: &BTreeMap<(u64, String, String), u64>,
) -> Option<String> {
    for ((run, device, point), &last) in expected {
        let Some(arrivals) = seen.get(&(device.clone(), point.clone())) else {
            return Some(format!("no samples of {device}/{point}"));
        };
        let mut next = 1;
        for &(r, sequence, _) in arrivals {
            if r != *run {
                continue;
            }
            if sequence == next {
                next += 1;
            } else if sequence > next {
                return Some(format!(
                    "{device}/{point} run {run}: sample {sequence} arrived before {next}"
                ));
            }
        }
        if next <= last {
            return Some(format!(
                "{device}/{point} run {run}: samples up to {} arrived, {last} were taken",
                next - 1
            ));
        }
    }
    None
}

/// Waits (at most 20 s) until every expected sample has arrived in order.
fn assert_complete_and_ordered(
    subscriber: &Subscriber,
    prefix: &str,
    expected: &BTreeMap<(u64, String, String), u64>,
) -> Arrivals {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = samples(&subscriber.messages(), prefix);
        match incomplete_or_disordered(&seen, expected) {
            None => return seen,
            Some(problem) if problem.contains("arrived before") || Instant::now() > deadline => {
                panic!("{problem}")
            }
            Some(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// How many samples each point of `service` has taken so far, keyed by run.
fn taken(service: &Service, run: u64) -> BTreeMap<(u64, String, String), u64> {
    service
        .engine()
        .devices()
        .iter()
        .flat_map(|device| {
            device.points.iter().map(move |point| {
                (
                    (run, device.config.name.clone(), point.name.to_string()),
                    point.sequence,
                )
            })
        })
        .collect()
}

fn wait(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(25));
    }
}

/// (a) Samples polled while the broker was stopped arrive after it is back: all, in order.
#[test]
fn an_outage_loses_no_sample() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-a", "fleet/#");
    let queue = tempfile::tempdir().unwrap();
    let config = mqtt_config(broker.broker(), "harvest-a", "fleet", queue.path());
    let service = Service::start(fast(&demo), SocketAddr::from(ANY_PORT), Some(config)).unwrap();

    subscriber.wait_for(Duration::from_secs(10), "first samples", |m| {
        samples(m, "fleet").values().any(|s| s.len() >= 3)
    });
    broker.stop();
    let outage = Instant::now();
    let polls_before = stats(&service).queued.load(Ordering::Relaxed);
    thread::sleep(Duration::from_secs(3));
    let queued_in_outage = stats(&service).queued.load(Ordering::Relaxed) - polls_before;
    assert!(
        queued_in_outage >= 20,
        "only {queued_in_outage} polls queued in 3 s"
    );
    assert!(
        backlog(&service) >= 20,
        "the backlog holds {}",
        backlog(&service)
    );
    // The outage shows on the page's source and on /metrics.
    let state: Value = ureq::get(&format!("http://{}/api/mqtt", service.addr()))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(state["connected"], false, "{state}");
    assert!(state["backlog_polls"].as_u64().unwrap() >= 20, "{state}");
    assert!(state["backlog_bytes"].as_u64().unwrap() > 0, "{state}");
    assert_eq!(state["dropped_polls"], 0, "{state}");
    let metrics = ureq::get(&format!("http://{}/metrics", service.addr()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let gauge = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(gauge("modbus_harvest_mqtt_queue_polls") >= 20.0);
    assert!(gauge("modbus_harvest_mqtt_connected") == 0.0);
    assert!(gauge("modbus_harvest_mqtt_dropped_polls_total") == 0.0);
    broker.restart();
    // Polls go on meanwhile: drained means down to the few of the latest round.
    wait(Duration::from_secs(15), "the backlog to drain", || {
        backlog(&service) <= 3
    });
    let outage_took = outage.elapsed();

    // The engine stops first, so every sample it took is queued; then the backlog drains.
    service.engine().shutdown();
    let expected = taken(&service, 1);
    wait(Duration::from_secs(15), "the last samples", || {
        backlog(&service) == 0
    });
    assert_complete_and_ordered(&subscriber, "fleet", &expected);
    assert!(outage_took < Duration::from_secs(20));
    service.stop().unwrap();
    drop(subscriber);
    broker.stop();
    demo.stop();
}

/// (b) As (a), with the service itself restarted during the outage: what the first run
/// queued is delivered by the second, and the second's samples follow under its own run.
#[test]
fn an_outage_across_a_service_restart_loses_no_sample() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-b", "fleet/#");
    let queue = tempfile::tempdir().unwrap();
    let config = mqtt_config(broker.broker(), "harvest-b", "fleet", queue.path());
    let first = Service::start(
        fast(&demo),
        SocketAddr::from(ANY_PORT),
        Some(config.clone()),
    )
    .unwrap();
    subscriber.wait_for(Duration::from_secs(10), "first samples", |m| {
        samples(m, "fleet").values().any(|s| s.len() >= 3)
    });
    broker.stop();
    thread::sleep(Duration::from_millis(1500));
    first.engine().shutdown();
    let mut expected = taken(&first, 1);
    assert!(
        backlog(&first) >= 10,
        "the first run left {} polls",
        backlog(&first)
    );
    first.stop().unwrap();

    let second = Service::start(fast(&demo), SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    assert!(
        backlog(&second) >= 10,
        "the second run found {} polls",
        backlog(&second)
    );
    thread::sleep(Duration::from_millis(1500));
    broker.restart();
    wait(Duration::from_secs(15), "the backlog to drain", || {
        backlog(&second) <= 3
    });
    second.engine().shutdown();
    expected.extend(taken(&second, 2));
    wait(Duration::from_secs(15), "the last samples", || {
        backlog(&second) == 0
    });
    let seen = assert_complete_and_ordered(&subscriber, "fleet", &expected);
    // Run 1's samples all come before run 2's, point by point: the queue is one order.
    for ((device, point), arrivals) in &seen {
        let first_of_second = arrivals.iter().position(|a| a.0 == 2);
        let last_of_first = arrivals.iter().rposition(|a| a.0 == 1);
        if let (Some(second), Some(first)) = (first_of_second, last_of_first) {
            assert!(first < second, "{device}/{point}: run 1 after run 2");
        }
    }
    second.stop().unwrap();
    drop(subscriber);
    broker.stop();
    demo.stop();
}

/// The meters of `devices`, the second with a point its simulator does not have: its
/// samples are bad, with the reason.
fn with_a_missing_point(
    devices: Vec<modbus_stack::harvest::DeviceConfig>,
) -> Vec<modbus_stack::harvest::DeviceConfig> {
    devices
        .into_iter()
        .filter(|d| d.name.starts_with("meter"))
        .map(|mut device| {
            if device.name == "meter-2" {
                let mut points = device.points.points().to_vec();
                let kind = PointKind::number(value::DataType::U16, Order::Abcd);
                let unit = points[0].unit_id;
                points.push(Point::new(
                    "missing",
                    unit,
                    Table::HoldingRegisters,
                    60_000,
                    kind,
                ));
                device.points = PointMap::new(points).unwrap();
            }
            device
        })
        .collect()
}

/// A bad sample on `topic`: no value, quality bad, the reason, no unit.
fn assert_bad_sample(messages: &[Message], topic: &str) {
    let missing = messages
        .iter()
        .find(|m| m.topic == topic)
        .expect("the bad point is published too")
        .json();
    assert_eq!(missing["quality"], "bad", "{missing}");
    assert!(missing["value"].is_null(), "{missing}");
    assert!(
        missing["reason"]
            .as_str()
            .is_some_and(|r| r.contains("address")),
        "{missing}"
    );
    assert!(missing.get("unit").is_none(), "{missing}");
}

/// (c) Two services with different devices publish into one broker; one subscriber sees
/// both fleets, each with its birth message.
#[test]
fn two_services_one_subscriber_sees_both_fleets() {
    let mut demo_a = Demo::start().unwrap();
    let mut demo_b = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-c", "#");
    let (qa, qb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Service::start(
        fast(&demo_a),
        SocketAddr::from(ANY_PORT),
        Some(mqtt_config(
            broker.broker(),
            "line-a",
            "site/line-a",
            qa.path(),
        )),
    )
    .unwrap();
    let b = Service::start(
        with_a_missing_point(fast(&demo_b)),
        SocketAddr::from(ANY_PORT),
        Some(mqtt_config(
            broker.broker(),
            "line-b",
            "site/line-b",
            qb.path(),
        )),
    )
    .unwrap();
    subscriber.wait_for(Duration::from_secs(10), "both fleets", |m| {
        let a = samples(m, "site/line-a");
        let b = samples(m, "site/line-b");
        a.keys().any(|(d, _)| d == "plc")
            && b.keys().any(|(d, _)| d == "meter-2")
            && m.iter().any(|m| m.topic == "site/line-a/plc/status")
    });
    let messages = subscriber.messages();
    assert!(
        samples(&messages, "site/line-b")
            .keys()
            .all(|(d, _)| d.starts_with("meter"))
    );
    for (topic, id) in [
        ("site/line-a/_service/line-a", "line-a"),
        ("site/line-b/_service/line-b", "line-b"),
    ] {
        let birth = messages
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no {topic}"));
        assert_eq!(birth.json()["state"], "online");
        assert_eq!(birth.json()["client_id"], id);
    }
    let status = messages
        .iter()
        .find(|m| m.topic == "site/line-a/plc/status")
        .unwrap_or_else(|| {
            let topics: std::collections::BTreeSet<&str> =
                messages.iter().map(|m| m.topic.as_str()).collect();
            panic!("no retained plc status among {topics:?}")
        });
    assert_eq!(status.json()["state"], "connected");
    // A subscriber that comes later still learns every device's state.
    let late = Subscriber::start(broker.port, "check-c-late", "site/line-a/plc/status");
    late.wait_for(Duration::from_secs(5), "the retained status", |m| {
        m.iter()
            .any(|m| m.retained && m.json()["state"] == "connected")
    });
    drop(late);
    let temperature = messages
        .iter()
        .find(|m| m.topic == "site/line-a/plc/temperature")
        .unwrap()
        .json();
    assert_eq!(temperature["unit"], "°C");
    assert_eq!(temperature["quality"], "good");
    assert!(temperature["value"].is_number());
    assert!(temperature.get("reason").is_none(), "{temperature}");
    assert_bad_sample(&messages, "site/line-b/meter-2/missing");
    // Stopping one service says so on its retained service topic; the other goes on.
    a.stop().unwrap();
    subscriber.wait_for(Duration::from_secs(5), "line-a offline", |m| {
        m.iter()
            .any(|m| m.topic == "site/line-a/_service/line-a" && m.json()["state"] == "offline")
    });
    let before = samples(&subscriber.messages(), "site/line-b")
        .values()
        .map(Vec::len)
        .sum::<usize>();
    subscriber.wait_for(Duration::from_secs(5), "line-b going on", |m| {
        samples(m, "site/line-b")
            .values()
            .map(Vec::len)
            .sum::<usize>()
            > before + 5
    });
    b.stop().unwrap();
    drop(subscriber);
    broker.stop();
    demo_a.stop();
    demo_b.stop();
}

/// (d) A `set` message writes the simulator's register through the engine; one to a
/// read-only point is refused with a published error and writes nothing.
#[test]
fn set_messages_write_read_write_points_only() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-d", "cmd/#");
    let queue = tempfile::tempdir().unwrap();
    let service = Service::start(
        fast(&demo),
        SocketAddr::from(ANY_PORT),
        Some(mqtt_config(
            broker.broker(),
            "harvest-d",
            "cmd",
            queue.path(),
        )),
    )
    .unwrap();
    subscriber.wait_for(Duration::from_secs(10), "the service online", |m| {
        m.iter().any(|m| m.topic == "cmd/_service/harvest-d")
    });
    thread::sleep(Duration::from_millis(300)); // its SUBSCRIBE follows the birth
    subscriber.publish("cmd/plc/setpoint/set", r#"{"value": 37.5, "id": "op-1"}"#);
    subscriber.wait_for(Duration::from_secs(10), "the set-point result", |m| {
        m.iter().any(|m| m.topic == "cmd/plc/setpoint/set/result")
    });
    let words = demo.plc.holding_registers(plc::SETPOINT, 2).unwrap();
    let setpoint: f32 = value::decode(&words[..], Order::Abcd).unwrap();
    assert!(
        (setpoint - 37.5).abs() < f32::EPSILON,
        "set-point {setpoint}"
    );
    let result = subscriber
        .messages()
        .into_iter()
        .find(|m| m.topic == "cmd/plc/setpoint/set/result")
        .unwrap()
        .json();
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["id"], "op-1");
    assert_eq!(result["value"], 37.5);

    subscriber.publish("cmd/plc/level/set", "12");
    subscriber.publish("cmd/plc/pump/set", "\"on\"");
    subscriber.wait_for(Duration::from_secs(10), "the refusals", |m| {
        m.iter().any(|m| m.topic == "cmd/plc/level/set/result")
            && m.iter().any(|m| m.topic == "cmd/plc/pump/set/result")
    });
    let messages = subscriber.messages();
    let refused = |topic: &str| messages.iter().find(|m| m.topic == topic).unwrap().json();
    let level = refused("cmd/plc/level/set/result");
    assert_eq!(level["ok"], false);
    assert!(
        level["error"].as_str().unwrap().contains("read-only"),
        "{level}"
    );
    let pump = refused("cmd/plc/pump/set/result");
    assert_eq!(pump["ok"], false);
    assert!(pump["error"].as_str().unwrap().contains("bool"), "{pump}");
    let level: f32 = value::decode(
        &demo.plc.holding_registers(plc::LEVEL, 2).unwrap()[..],
        Order::Abcd,
    )
    .unwrap();
    assert!(
        (level - 12.0).abs() > 1e-3,
        "the read-only level was written"
    );
    let writes = stats(&service);
    assert_eq!(writes.writes.load(Ordering::Relaxed), 1);
    assert_eq!(writes.writes_refused.load(Ordering::Relaxed), 2);
    service.stop().unwrap();
    drop(subscriber);
    broker.stop();
    demo.stop();
}

/// The service starts while the broker is down, queues, and connects once it is up.
#[test]
fn the_service_starts_without_a_broker_and_connects_later() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    broker.stop();
    let queue = tempfile::tempdir().unwrap();
    let service = Service::start(
        fast(&demo),
        SocketAddr::from(ANY_PORT),
        Some(mqtt_config(
            broker.broker(),
            "harvest-late",
            "late",
            queue.path(),
        )),
    )
    .unwrap();
    wait(Duration::from_secs(5), "polls queued", || {
        backlog(&service) >= 5
    });
    let failures = stats(&service).connection_failures.load(Ordering::Relaxed);
    assert!(failures >= 1, "no failed attempt recorded");
    broker.restart();
    wait(Duration::from_secs(10), "connected", || {
        stats(&service).connected.load(Ordering::Relaxed)
    });
    wait(Duration::from_secs(10), "the backlog to drain", || {
        backlog(&service) <= 3
    });
    service.stop().unwrap();
    broker.stop();
    demo.stop();
}

/// A full queue drops its oldest polls, counts them on `/metrics`, and delivers the rest in
/// order: each point's first sample to arrive is a later one, and none after it is missing.
#[test]
fn a_full_queue_drops_the_oldest_and_says_so() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    // Subscribed before the outage: its persistent session keeps what comes while it reconnects.
    let subscriber = Subscriber::start(broker.port, "check-full", "full/#");
    broker.stop();
    let queue = tempfile::tempdir().unwrap();
    let mut config = mqtt_config(broker.broker(), "harvest-full", "full", queue.path());
    config.queue_max_bytes = 64 << 10;
    // Polled as fast as the simulators answer, the queue overflows in a few seconds.
    let devices = demo
        .devices
        .iter()
        .cloned()
        .map(|device| device.with_interval(Duration::from_millis(5)))
        .collect();
    let service = Service::start(devices, SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    let dropped = || stats(&service).dropped.load(Ordering::Relaxed);
    wait(Duration::from_secs(20), "polls dropped", || dropped() >= 10);
    let metrics = ureq::get(&format!("http://{}/metrics", service.addr()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let counted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("modbus_harvest_mqtt_dropped_polls_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(counted >= 10, "{counted} on /metrics");
    let bytes = stats(&service).backlog_bytes.load(Ordering::Relaxed);
    assert!(
        bytes <= 64 << 10,
        "the queue holds {bytes} bytes, over its 64 KiB"
    );

    broker.restart();
    service.engine().shutdown();
    let expected = taken(&service, 1);
    wait(Duration::from_secs(20), "the backlog to drain", || {
        backlog(&service) == 0
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = samples(&subscriber.messages(), "full");
        let done = expected.iter().all(|((_, d, p), &last)| {
            seen.get(&(d.clone(), p.clone()))
                .is_some_and(|a| a.iter().any(|&(_, s, _)| s == last))
        });
        if done || Instant::now() > deadline {
            break seen;
        }
        thread::sleep(Duration::from_millis(50));
    };
    for ((_, device, point), &last) in &expected {
        let arrivals = &seen[&(device.clone(), point.clone())];
        let mut numbers: Vec<u64> = arrivals.iter().map(|a| a.1).collect();
        numbers.dedup();
        let first = numbers[0];
        assert!(
            first > 1,
            "{device}/{point}: the oldest samples were not dropped"
        );
        assert_eq!(
            numbers,
            (first..=last).collect::<Vec<_>>(),
            "{device}/{point}: after the drop, every sample in order"
        );
    }
    service.stop().unwrap();
    drop(subscriber);
    broker.stop();
    demo.stop();
}

/// `mqtts://`: the service publishes over TLS (rustls) to a broker whose certificate its
/// `ca_file` trusts, and refuses one it does not.
#[test]
fn tls_to_the_broker_with_its_ca() {
    let mut demo = Demo::start().unwrap();
    let (mut broker, ca) = Mosquitto::start_with_tls();
    let subscriber = Subscriber::start(broker.port, "check-tls", "tls/#");
    let tls = Broker {
        host: "127.0.0.1".into(),
        port: broker.tls_port.unwrap(),
        tls: true,
    };
    let queue = tempfile::tempdir().unwrap();
    let mut config = mqtt_config(tls.clone(), "harvest-tls", "tls", queue.path());
    config.ca_file = Some(ca);
    let service = Service::start(fast(&demo), SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    subscriber.wait_for(Duration::from_secs(10), "samples over TLS", |m| {
        samples(m, "tls").values().any(|s| s.len() >= 3)
    });
    service.stop().unwrap();

    // Without the CA, the system's roots do not know the broker: no connection, all queued.
    let untrusted = tempfile::tempdir().unwrap();
    let service = Service::start(
        fast(&demo),
        SocketAddr::from(ANY_PORT),
        Some(mqtt_config(
            tls,
            "harvest-untrusted",
            "untrusted",
            untrusted.path(),
        )),
    )
    .unwrap();
    wait(Duration::from_secs(10), "refused attempts", || {
        stats(&service).connection_failures.load(Ordering::Relaxed) >= 2
    });
    assert!(!stats(&service).connected.load(Ordering::Relaxed));
    assert!(backlog(&service) > 0);
    service.stop().unwrap();
    assert!(
        !subscriber
            .messages()
            .iter()
            .any(|m| m.topic.starts_with("untrusted/")),
        "an untrusted broker got samples"
    );
    drop(subscriber);
    broker.stop();
    demo.stop();
}

/// Credentials: the broker's password listener admits the configured user, and refuses a
/// wrong password, in which case nothing is published and every poll stays queued.
#[test]
fn the_broker_checks_the_configured_credentials() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start_with_password("harvest", "s3cret pass");
    let subscriber = Subscriber::start(broker.port, "check-auth", "#");
    let guarded = Broker {
        host: "127.0.0.1".into(),
        port: broker.password_port.unwrap(),
        tls: false,
    };
    let run = |client: &str, password: &str, queue: &Path| {
        let mut config = mqtt_config(guarded.clone(), client, client, queue);
        config.credentials = Some(("harvest".into(), password.into()));
        Service::start(fast(&demo), SocketAddr::from(ANY_PORT), Some(config)).unwrap()
    };
    let queue = tempfile::tempdir().unwrap();
    let service = run("admitted", "s3cret pass", queue.path());
    subscriber.wait_for(Duration::from_secs(10), "samples", |m| {
        samples(m, "admitted").values().any(|s| s.len() >= 3)
    });
    service.stop().unwrap();

    let refused = tempfile::tempdir().unwrap();
    let service = run("refused", "wrong", refused.path());
    wait(Duration::from_secs(10), "refused attempts", || {
        stats(&service).connection_failures.load(Ordering::Relaxed) >= 2
    });
    assert!(!stats(&service).connected.load(Ordering::Relaxed));
    assert!(backlog(&service) > 0);
    service.stop().unwrap();
    assert!(
        !subscriber
            .messages()
            .iter()
            .any(|m| m.topic.starts_with("refused/")),
        "a refused client's samples arrived"
    );
    drop(subscriber);
    broker.stop();
    demo.stop();
}

/// A TCP proxy between the service and the broker that holds what the service sends for
/// [`Self::HOLD`] before passing it on, and on [`Self::cut`] drops the connection with what it
/// holds: publishes the service has written, that never reach the broker (the seconds in
/// flight at a network cut).
struct CuttingProxy {
    port: u16,
    /// Bumped by each cut; a connection ends when it sees a newer one than its own.
    generation: Arc<AtomicU64>,
    /// Bytes thrown away at cuts.
    discarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl CuttingProxy {
    const HOLD: Duration = Duration::from_millis(150);

    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let generation = Arc::new(AtomicU64::new(0));
        let discarded = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (generation, discarded, stop) = (
                Arc::clone(&generation),
                Arc::clone(&discarded),
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                let mut pumps = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    client.set_nonblocking(false).unwrap();
                    let own = generation.load(Ordering::SeqCst);
                    let ended = {
                        let (generation, stop) = (Arc::clone(&generation), Arc::clone(&stop));
                        move || {
                            generation.load(Ordering::SeqCst) != own || stop.load(Ordering::SeqCst)
                        }
                    };
                    pumps.push(thread::spawn({
                        let (from, to, ended) = (
                            client.try_clone().unwrap(),
                            broker.try_clone().unwrap(),
                            ended.clone(),
                        );
                        let discarded = Arc::clone(&discarded);
                        move || pump(from, to, CuttingProxy::HOLD, &ended, &discarded)
                    }));
                    pumps.push(thread::spawn({
                        let discarded = Arc::new(AtomicU64::new(0));
                        move || pump(broker, client, Duration::ZERO, &ended, &discarded)
                    }));
                }
                for pump in pumps {
                    let _ = pump.join();
                }
            })
        };
        Self {
            port,
            generation,
            discarded,
            stop,
            accept: Some(accept),
        }
    }

    /// Drops every connection now, with what it holds.
    fn cut(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Copies `from` to `to`, each chunk held for `hold` first, until `ended` says so; then closes
/// both and counts what it still held in `discarded`.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    hold: Duration,
    ended: &dyn Fn() -> bool,
    discarded: &AtomicU64,
) {
    from.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = [0u8; 16 * 1024];
    let mut open = true;
    while !ended() {
        if open {
            match from.read(&mut buf) {
                Ok(0) => open = false,
                Ok(n) => held.push_back((Instant::now(), buf[..n].to_vec())),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => open = false,
            }
        } else {
            thread::sleep(Duration::from_millis(5));
        }
        while held.front().is_some_and(|(at, _)| at.elapsed() >= hold) {
            let (_, bytes) = held.pop_front().unwrap();
            if to.write_all(&bytes).is_err() {
                return;
            }
        }
        if !open && held.is_empty() {
            let _ = to.shutdown(Shutdown::Write);
            return;
        }
    }
    let lost: usize = held.iter().map(|(_, bytes)| bytes.len()).sum();
    discarded.fetch_add(lost as u64, Ordering::SeqCst);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The top data-loss report against gateways: a network cut loses what was in flight. Here a
/// proxy holds 150 ms of the service's traffic and drops it at each of three cuts; every
/// sample still arrives, in order, because none left the queue without its PUBACK.
#[test]
fn network_cuts_lose_nothing_in_flight() {
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-cut", "cut/#");
    let proxy = CuttingProxy::start(broker.port);
    let through_proxy = Broker {
        host: "127.0.0.1".into(),
        port: proxy.port,
        tls: false,
    };
    let queue = tempfile::tempdir().unwrap();
    let config = mqtt_config(through_proxy, "harvest-cut", "cut", queue.path());
    let service = Service::start(fast(&demo), SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    let connects = || stats(&service).connects.load(Ordering::Relaxed);
    for cut in 1..=3 {
        wait(Duration::from_secs(10), "a connection", || {
            connects() >= cut
        });
        // Traffic in flight: at least one poll sent since the connection.
        thread::sleep(Duration::from_millis(600));
        proxy.cut();
    }
    wait(Duration::from_secs(10), "the last connection", || {
        connects() >= 4
    });
    assert!(
        proxy.discarded() > 0,
        "the cuts dropped nothing in flight, so they tested nothing"
    );
    service.engine().shutdown();
    let expected = taken(&service, 1);
    wait(Duration::from_secs(15), "the backlog to drain", || {
        backlog(&service) == 0
    });
    assert_complete_and_ordered(&subscriber, "cut", &expected);
    service.stop().unwrap();
    drop(proxy);
    drop(subscriber);
    broker.stop();
    demo.stop();
}
