//! The service as a Sparkplug B 3.0 edge node against a real broker (Debian's `mosquitto`,
//! started by each test on a free 127.0.0.1 port and stopped by it), every payload read back
//! by Eclipse Tahu's JavaScript decoder (`support::sparkplug_js`). The devices are the
//! embedded demo's simulators, polled fast.
//!
//! Each test keeps every message under `spBv1.0/#` from before the service starts, and
//! [`check_session`] holds the whole stream to the session rules: NBIRTH first with `seq` 0
//! and a `bdSeq`, a device's DBIRTH before its DDATA, `seq` up by one (mod 256) per message,
//! DDATA by alias only with the births' datatypes, NDEATH with the session's `bdSeq`.
//!
//! Needs `node` and `npm ci --prefix harvest/tests/sparkplug`; without them each test fails and
//! says so, unless `MODBUS_SKIP_SPARKPLUG_JS=1` makes it a visible skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use modbus_harvest::Service;
use modbus_harvest::demo::{Demo, plc};
use modbus_harvest::mqtt::{Broker, Mode, MqttConfig, MqttStats};
use modbus_stack::harvest::DeviceConfig;
use modbus_stack::value::{self, Order};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use support::mqtt::{Message, Mosquitto, Subscriber};
use support::sparkplug_js;

const ANY_PORT: ([u8; 4], u16) = ([127, 0, 0, 1], 0);
const GROUP: &str = "plant";
/// How often the devices are polled (but in the session test, which wants more messages).
const INTERVAL: Duration = Duration::from_millis(100);

fn sparkplug_config(broker: Broker, node: &str, queue: &Path) -> MqttConfig {
    let mut config = MqttConfig::new(broker, node, queue.to_path_buf());
    config.mode = Mode::Sparkplug {
        group_id: GROUP.into(),
        edge_node_id: node.into(),
    };
    config.reconnect.initial = Duration::from_millis(100);
    config.reconnect.max = Duration::from_millis(400);
    config
}

/// The demo's devices polled every `interval`, and `copies - 1` more of each under other names
/// (`plc-2`, …) reading the same simulators, for more messages per second.
fn devices(demo: &Demo, copies: usize, interval: Duration) -> Vec<DeviceConfig> {
    (1..=copies)
        .flat_map(|copy| {
            demo.devices.iter().cloned().map(move |mut device| {
                if copy > 1 {
                    device.name = format!("{}-{copy}", device.name);
                }
                device.with_interval(interval)
            })
        })
        .collect()
}

fn stats(service: &Service) -> &Arc<MqttStats> {
    service.mqtt().expect("the service publishes")
}

fn wait(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn epoch_ms(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// A JSON number, or a decimal string (Tahu's 64-bit integers).
fn int(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

/// How many messages of `verb` (`DDATA`, `NCMD`, …) for edge node `node` have arrived.
fn count(messages: &[Message], node: &str, verb: &str) -> usize {
    messages
        .iter()
        .filter(|message| {
            let parts: Vec<&str> = message.topic.split('/').collect();
            parts.len() >= 4 && parts[1] == GROUP && parts[2] == verb && parts[3] == node
        })
        .count()
}

/// Stops the service and waits for its NDEATH (one more than before: mosquitto may have sent
/// the will of an earlier connection when it was stopped itself).
fn stop(service: Service, subscriber: &Subscriber, node: &str) {
    let before = count(&subscriber.messages(), node, "NDEATH");
    service.stop().unwrap();
    subscriber.wait_for(Duration::from_secs(5), "the NDEATH", |m| {
        count(m, node, "NDEATH") > before
    });
}

/// Publishes `payload` at QoS 1 from a client of its own and waits for the broker's PUBACK
/// (the harness's subscriber publishes text only; Sparkplug commands are protobuf).
fn publish_bytes(port: u16, client_id: &str, topic: &str, payload: Vec<u8>) {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 16);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("publishing {topic}: {error}"),
            Err(timeout) => panic!("no PUBACK for {topic} in 10 s ({timeout:?})"),
        }
    }
    client.disconnect().unwrap();
    while let Ok(Ok(event)) = connection.recv_timeout(Duration::from_secs(2)) {
        if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
            break;
        }
    }
}

/// One message as Tahu read it.
#[derive(Debug, Clone)]
struct Decoded {
    /// Its place in arrival order.
    index: usize,
    /// `NBIRTH`, `DDATA`, … (commands too).
    verb: String,
    /// The device level of the topic, if any.
    device: Option<String>,
    /// What Tahu's `decodePayload` gives.
    tahu: Value,
    /// The protobuf fields on the wire.
    raw: Value,
}

impl Decoded {
    fn seq(&self) -> Option<u64> {
        self.tahu.get("seq").filter(|seq| !seq.is_null()).map(int)
    }

    fn timestamp(&self) -> u64 {
        int(&self.tahu["timestamp"])
    }

    fn metrics(&self) -> &[Value] {
        self.tahu["metrics"].as_array().map_or(&[], Vec::as_slice)
    }

    fn bd_seq(&self) -> Option<u64> {
        self.metrics()
            .iter()
            .find(|metric| metric["name"] == "bdSeq")
            .map(|metric| int(&metric["value"]))
    }

    fn is(&self, verb: &str, device: &str) -> bool {
        self.verb == verb && self.device.as_deref() == Some(device)
    }
}

/// Every message of edge node `node` (its own and the commands sent to it), decoded by Tahu in
/// one node run. QoS 1 redeliveries to the checking subscriber (byte-identical, since every
/// payload has its own `seq` or timestamp) are dropped.
fn decode_stream(messages: &[Message], node: &str) -> Vec<Decoded> {
    let mut seen = HashSet::new();
    let ours: Vec<(String, Option<String>, &Message)> = messages
        .iter()
        .filter_map(|message| {
            let parts: Vec<&str> = message.topic.split('/').collect();
            if parts.len() < 4 || parts[0] != "spBv1.0" || parts[1] != GROUP || parts[3] != node {
                return None;
            }
            if !seen.insert((message.topic.clone(), message.payload.clone())) {
                return None;
            }
            Some((
                parts[2].to_string(),
                parts.get(4).map(|device| (*device).to_string()),
                message,
            ))
        })
        .collect();
    let answers = sparkplug_js::decode(ours.iter().map(|(_, _, m)| m.payload.as_slice()));
    ours.into_iter()
        .zip(answers)
        .enumerate()
        .map(|(index, ((verb, device, _), answer))| Decoded {
            index,
            verb,
            device,
            tahu: answer["tahu"].clone(),
            raw: answer["raw"].clone(),
        })
        .collect()
}

/// One NBIRTH and what followed it.
#[derive(Debug)]
struct Birth {
    index: usize,
    bd_seq: u64,
    timestamp: u64,
}

/// What [`check_session`] found.
#[derive(Debug, Default)]
struct Session {
    births: Vec<Birth>,
    /// `(index, bdSeq)` of each NDEATH.
    deaths: Vec<(usize, u64)>,
    /// How often `seq` went from 255 to 0 without an NBIRTH.
    wraps: usize,
    /// By device: alias → (name, datatype) of its latest DBIRTH.
    aliases: BTreeMap<String, BTreeMap<u64, (String, String)>>,
    /// DDATA messages.
    data: usize,
}

/// Whether a Tahu value fits a Sparkplug datatype (64-bit integers come as decimal strings).
fn fits(datatype: &str, value: &Value) -> bool {
    match datatype {
        "Boolean" => value.is_boolean(),
        "String" | "Text" => value.is_string(),
        "Float" | "Double" => value.is_number(),
        "UInt64" | "Int64" => value.is_string() || value.is_number(),
        "Int8" | "Int16" | "Int32" => value.is_i64(),
        "UInt8" | "UInt16" | "UInt32" => value.is_u64(),
        _ => false,
    }
}

/// One line per message: verb, device, `seq`, `bdSeq`, timestamp.
fn summary(messages: &[Decoded]) -> String {
    use std::fmt::Write as _;
    messages.iter().fold(String::new(), |mut text, m| {
        let _ = write!(
            text,
            "\n  {} {} {:?} seq {:?} bdSeq {:?} at {}",
            m.index,
            m.verb,
            m.device,
            m.seq(),
            m.bd_seq(),
            m.timestamp()
        );
        text
    })
}

/// Holds the stream to the session rules of Sparkplug B 3.0 and panics at the first message
/// that breaks one, saying which.
#[allow(clippy::too_many_lines)] // one rule after the other
fn check_session(stream: &[Decoded]) -> Session {
    let mut session = Session::default();
    let first = stream.first().expect("no messages at all");
    assert_eq!(
        first.verb,
        "NBIRTH",
        "the first message is not the NBIRTH: {}",
        summary(&stream[..stream.len().min(6)])
    );
    let mut last_seq: Option<u64> = None;
    let mut born: BTreeSet<String> = BTreeSet::new();
    for message in stream {
        let at = message.index;
        if matches!(message.verb.as_str(), "NCMD" | "DCMD") {
            continue;
        }
        if message.verb == "NDEATH" {
            assert!(
                message.raw.get("seq").is_none_or(Value::is_null),
                "NDEATH {at} has a seq"
            );
            assert_eq!(message.metrics().len(), 1, "NDEATH {at}: bdSeq only");
            let bd_seq = message.bd_seq().expect("NDEATH without bdSeq");
            session.deaths.push((at, bd_seq));
            continue;
        }
        let seq = message
            .seq()
            .unwrap_or_else(|| panic!("message {at} ({}) has no seq", message.verb));
        assert!(seq <= 255, "seq {seq} at {at}");
        if message.verb == "NBIRTH" {
            assert_eq!(seq, 0, "NBIRTH {at} has seq {seq}");
            let bd_seq = message.bd_seq().expect("NBIRTH without bdSeq");
            let rebirth = message
                .metrics()
                .iter()
                .find(|metric| metric["name"] == "Node Control/Rebirth")
                .expect("NBIRTH without Node Control/Rebirth");
            assert_eq!(rebirth["type"], "Boolean");
            assert_eq!(rebirth["value"], false);
            session.births.push(Birth {
                index: at,
                bd_seq,
                timestamp: message.timestamp(),
            });
            // A new birth: every device is born again before its data.
            born.clear();
            session.aliases.clear();
            last_seq = Some(0);
            continue;
        }
        let expected = (last_seq.expect("a message before any NBIRTH") + 1) % 256;
        assert_eq!(
            seq, expected,
            "message {at} ({} {:?}): seq {seq} after {last_seq:?}",
            message.verb, message.device
        );
        if seq == 0 {
            session.wraps += 1;
        }
        last_seq = Some(seq);
        let device = message
            .device
            .clone()
            .unwrap_or_else(|| panic!("{} {at} without a device", message.verb));
        match message.verb.as_str() {
            "DBIRTH" => {
                let mut aliases = BTreeMap::new();
                for metric in message.metrics() {
                    let name = metric["name"]
                        .as_str()
                        .unwrap_or_else(|| panic!("DBIRTH {at}: a metric without name"));
                    let alias = int(&metric["alias"]);
                    let datatype = metric["type"].as_str().expect("a datatype").to_string();
                    assert!(metric["timestamp"].is_string() || metric["timestamp"].is_number());
                    aliases.insert(alias, (name.to_string(), datatype));
                }
                assert!(!aliases.is_empty(), "DBIRTH {at} without metrics");
                // Unique across the edge node: its own metrics take aliases 1 and 2.
                for (other, theirs) in &session.aliases {
                    if *other != device {
                        let shared: Vec<_> =
                            aliases.keys().filter(|a| theirs.contains_key(a)).collect();
                        assert!(shared.is_empty(), "{device} and {other} share {shared:?}");
                    }
                }
                assert!(!aliases.contains_key(&1) && !aliases.contains_key(&2));
                session.aliases.insert(device.clone(), aliases);
                born.insert(device);
            }
            "DDATA" => {
                assert!(
                    born.contains(&device),
                    "DDATA {at} of {device} before its DBIRTH"
                );
                let aliases = &session.aliases[&device];
                assert!(!message.metrics().is_empty(), "DDATA {at} without metrics");
                for (metric, raw) in message
                    .metrics()
                    .iter()
                    .zip(message.raw["metrics"].as_array().unwrap())
                {
                    assert!(
                        metric.get("name").is_none() && raw.get("name").is_none(),
                        "DDATA {at} names a metric: {metric}"
                    );
                    let alias = int(&metric["alias"]);
                    let (name, datatype) = aliases.get(&alias).unwrap_or_else(|| {
                        panic!("DDATA {at}: alias {alias} is not in {device}'s DBIRTH")
                    });
                    assert_eq!(
                        metric["type"], *datatype,
                        "DDATA {at}: {device}/{name} changed type"
                    );
                    assert!(
                        metric["value"].is_null() || fits(datatype, &metric["value"]),
                        "DDATA {at}: {device}/{name} is {datatype} but reads {}",
                        metric["value"]
                    );
                }
                session.data += 1;
            }
            "DDEATH" => {
                assert!(born.remove(&device), "DDEATH {at} of an unborn {device}");
            }
            verb => panic!("unexpected {verb} at {at}"),
        }
    }
    session
}

/// The DDATA values of `device`'s metric `name` as `(timestamp, value, historical, index)`.
fn series(stream: &[Decoded], device: &str, name: &str) -> Vec<(u64, Value, bool, usize)> {
    let mut alias = None;
    let mut out = Vec::new();
    for message in stream {
        if message.is("DBIRTH", device) {
            alias = message
                .metrics()
                .iter()
                .find(|metric| metric["name"] == name)
                .map(|metric| int(&metric["alias"]));
        }
        if !message.is("DDATA", device) {
            continue;
        }
        for metric in message.metrics() {
            if Some(int(&metric["alias"])) == alias {
                out.push((
                    int(&metric["timestamp"]),
                    metric["value"].clone(),
                    metric["isHistorical"] == true,
                    message.index,
                ));
            }
        }
    }
    out
}

/// (1) One session from start to stop: the rules hold over more than 256 messages, so `seq`
/// wraps, and the NDEATH at the stop carries the NBIRTH's `bdSeq`.
#[test]
fn a_session_follows_the_sparkplug_rules() {
    if !sparkplug_js::available("sparkplug session test") {
        return;
    }
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-session", "spBv1.0/#");
    let queue = tempfile::tempdir().unwrap();
    // Six devices every 50 ms: about 120 messages a second.
    let fleet = devices(&demo, 2, Duration::from_millis(50));
    let names: BTreeSet<String> = fleet.iter().map(|d| d.name.clone()).collect();
    let config = sparkplug_config(broker.broker(), "session", queue.path());
    let service = Service::start(fleet, SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    subscriber.wait_for(Duration::from_secs(20), "300 DDATA", |m| {
        count(m, "session", "DDATA") >= 300
    });
    stop(service, &subscriber, "session");
    // Births and data at the one QoS of the samples (1), so the broker keeps their order.
    let messages = subscriber.messages();
    for verb in ["NBIRTH", "DBIRTH", "DDATA"] {
        let topic = format!("spBv1.0/{GROUP}/{verb}/session");
        let qos: BTreeSet<String> = messages
            .iter()
            .filter(|m| m.topic.starts_with(&topic))
            .map(|m| format!("{:?}", m.qos))
            .collect();
        assert_eq!(qos, BTreeSet::from(["AtLeastOnce".to_string()]), "{verb}");
    }
    let stream = decode_stream(&messages, "session");
    drop(subscriber);
    broker.stop();
    demo.stop();

    let session = check_session(&stream);
    assert_eq!(session.births.len(), 1, "{:?}", session.births);
    assert!(
        session.wraps >= 1,
        "seq never wrapped in {} messages",
        stream.len()
    );
    assert!(session.data >= 300);
    let born: BTreeSet<String> = session.aliases.keys().cloned().collect();
    assert_eq!(born, names, "the devices born");
    for name in &names {
        assert!(
            stream.iter().any(|m| m.is("DDATA", name)),
            "no DDATA of {name}"
        );
    }
    // The stop: NDEATH last, with the session's bdSeq (the first of a fresh queue: 0).
    assert_eq!(session.births[0].bd_seq, 0);
    assert_eq!(session.deaths, vec![(stream.len() - 1, 0)]);
}

/// (2) The broker stops and comes back: the node's next session has a new NBIRTH (`seq` 0,
/// `bdSeq` one more) and DBIRTHs, the polls of the outage arrive as historical DDATA stamped
/// inside it, and no poll is lost.
#[test]
#[allow(clippy::too_many_lines)] // one story: before, during and after the outage
fn a_broker_outage_starts_a_new_session_and_replays_the_outage_as_history() {
    if !sparkplug_js::available("sparkplug outage test") {
        return;
    }
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-outage", "spBv1.0/#");
    let queue = tempfile::tempdir().unwrap();
    let mut config = sparkplug_config(broker.broker(), "outage", queue.path());
    // Each reconnection attempt at least 750 ms after the one before: the subscriber (which
    // retries every 50 ms) is back first, so the new births find its session.
    config.reconnect.initial = Duration::from_millis(1500);
    config.reconnect.max = Duration::from_millis(1500);
    let fleet = devices(&demo, 1, INTERVAL);
    let service = Service::start(fleet, SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    subscriber.wait_for(Duration::from_secs(10), "live DDATA", |m| {
        count(m, "outage", "DDATA") >= 15
    });

    let stopped_at = epoch_ms(SystemTime::now());
    broker.stop();
    let failures = || stats(&service).connection_failures.load(Ordering::Relaxed);
    wait(Duration::from_secs(5), "the connection loss", || {
        failures() >= 1
    });
    thread::sleep(Duration::from_secs(1));
    // Right after a failed attempt the next one is at least 750 ms away.
    let before = failures();
    wait(Duration::from_secs(5), "a failed reconnection", || {
        failures() > before
    });
    broker.restart();
    let restarted_at = epoch_ms(SystemTime::now());
    subscriber.publish("spBv1.0/probe", "back");
    subscriber.wait_for(Duration::from_secs(5), "the subscriber back", |m| {
        m.iter().any(|m| m.topic == "spBv1.0/probe")
    });
    assert!(
        !stats(&service).connected.load(Ordering::Relaxed),
        "the service reconnected before the subscriber: the births may be lost to it"
    );
    wait(Duration::from_secs(5), "the reconnection", || {
        stats(&service).connected.load(Ordering::Relaxed)
    });
    wait(Duration::from_secs(10), "the backlog to drain", || {
        stats(&service).backlog.load(Ordering::Relaxed) <= 3
    });
    // Every sample the engine took is queued once it has stopped; then all must arrive.
    service.engine().shutdown();
    let taken: BTreeMap<String, u64> = service
        .engine()
        .devices()
        .iter()
        .map(|device| {
            let level = device
                .points
                .iter()
                .find(|point| &*point.name == "level" || &*point.name == "voltage")
                .expect("a first point");
            (device.config.name.clone(), level.sequence)
        })
        .collect();
    // The collector queues a poll the shutdown cut short within its 100 ms wait for events:
    // done when nothing more is queued for 300 ms and the broker has acknowledged it all.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let queued = stats(&service).queued.load(Ordering::Relaxed);
        thread::sleep(Duration::from_millis(300));
        if queued == stats(&service).queued.load(Ordering::Relaxed)
            && stats(&service).backlog.load(Ordering::Relaxed) == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "the backlog did not drain");
    }
    // The NDEATH follows the last DDATA on the way to the subscriber.
    stop(service, &subscriber, "outage");
    let stream = decode_stream(&subscriber.messages(), "outage");
    drop(subscriber);
    broker.stop();
    demo.stop();

    let session = check_session(&stream);
    assert_eq!(session.births.len(), 2, "{:?}", session.births);
    let (first, second) = (&session.births[0], &session.births[1]);
    assert_eq!(
        second.bd_seq,
        (first.bd_seq + 1) % 256,
        "bdSeq of the new session"
    );
    assert!(
        second.timestamp >= restarted_at,
        "the new NBIRTH predates the broker"
    );
    // The births come before any data of the new session.
    let dbirths: Vec<&Decoded> = stream[second.index + 1..]
        .iter()
        .take_while(|m| m.verb == "DBIRTH")
        .collect();
    assert_eq!(dbirths.len(), 3, "DBIRTHs right after the new NBIRTH");
    // A will the broker sent for the old connection, if any, has the old bdSeq; the stop's
    // NDEATH the new one.
    let (last_death, last_bd_seq) = *session.deaths.last().unwrap();
    assert_eq!((last_death, last_bd_seq), (stream.len() - 1, second.bd_seq));
    for &(at, bd_seq) in &session.deaths[..session.deaths.len() - 1] {
        assert!(
            at < second.index && bd_seq == first.bd_seq,
            "NDEATH {at}: bdSeq {bd_seq}"
        );
    }

    for (device, point) in [
        ("plc", "level"),
        ("meter-1", "voltage"),
        ("meter-2", "voltage"),
    ] {
        let values = series(&stream, device, point);
        let after: Vec<_> = values.iter().filter(|v| v.3 > second.index).collect();
        // Replayed polls are flagged historical, live ones are not (a poll in the NBIRTH's
        // millisecond may be either: the session starts within it).
        for (timestamp, _, historical, at) in &after {
            assert!(
                *timestamp == second.timestamp || *historical == (*timestamp < second.timestamp),
                "{device}/{point} at {timestamp} (message {at}, new session {}): historical {}",
                second.timestamp,
                historical
            );
        }
        let outage: Vec<u64> = after
            .iter()
            .filter(|v| v.2 && v.0 > stopped_at && v.0 < restarted_at)
            .map(|v| v.0)
            .collect();
        let interval = u64::try_from(INTERVAL.as_millis()).unwrap();
        let expected = (restarted_at - stopped_at) / interval;
        assert!(
            outage.len() as u64 >= expected / 2,
            "{device}/{point}: {} historical polls inside the {} ms outage",
            outage.len(),
            restarted_at - stopped_at
        );
        // No poll lost: one DDATA per sample the engine took, and no hole in time.
        let times: BTreeSet<u64> = values.iter().map(|v| v.0).collect();
        assert_eq!(
            times.len() as u64,
            taken[device],
            "{device}/{point}: polls published vs taken"
        );
        let times: Vec<u64> = times.into_iter().collect();
        let widest = times
            .windows(2)
            .map(|pair| (pair[1] - pair[0], pair[0]))
            .max()
            .unwrap();
        assert!(
            widest.0 <= 3 * interval,
            "{device}/{point}: no poll for {} ms after {} (outage {stopped_at}..{restarted_at})",
            widest.0,
            widest.1
        );
    }
}

/// (3) A host's rebirth request (NCMD `Node Control/Rebirth` = true, encoded by Tahu): a new
/// NBIRTH with `seq` 0 and the same `bdSeq` (the session goes on), then every DBIRTH, then data.
#[test]
fn a_rebirth_request_births_the_node_and_its_devices_again() {
    if !sparkplug_js::available("sparkplug rebirth test") {
        return;
    }
    let ncmd = sparkplug_js::encode(&[json!({
        "timestamp": epoch_ms(SystemTime::now()),
        "metrics": [{"name": "Node Control/Rebirth", "type": "Boolean", "value": true}],
    })])
    .remove(0);
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-rebirth", "spBv1.0/#");
    let queue = tempfile::tempdir().unwrap();
    let config = sparkplug_config(broker.broker(), "rebirth", queue.path());
    let fleet = devices(&demo, 1, INTERVAL);
    let service = Service::start(fleet, SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    // The node subscribes to its commands before it sends the NBIRTH.
    subscriber.wait_for(Duration::from_secs(10), "live DDATA", |m| {
        count(m, "rebirth", "DDATA") >= 10
    });
    publish_bytes(
        broker.port,
        "host-rebirth",
        &format!("spBv1.0/{GROUP}/NCMD/rebirth"),
        ncmd,
    );
    subscriber.wait_for(Duration::from_secs(10), "the rebirth", |m| {
        count(m, "rebirth", "NBIRTH") == 2 && count(m, "rebirth", "DBIRTH") == 6
    });
    let data_before = count(&subscriber.messages(), "rebirth", "DDATA");
    subscriber.wait_for(Duration::from_secs(10), "data after the rebirth", |m| {
        count(m, "rebirth", "DDATA") >= data_before + 6
    });
    stop(service, &subscriber, "rebirth");
    let stream = decode_stream(&subscriber.messages(), "rebirth");
    drop(subscriber);
    broker.stop();
    demo.stop();

    let session = check_session(&stream);
    assert_eq!(session.births.len(), 2, "{:?}", session.births);
    let (first, second) = (&session.births[0], &session.births[1]);
    assert_eq!(second.bd_seq, first.bd_seq, "a rebirth keeps the bdSeq");
    let command = stream
        .iter()
        .position(|m| m.verb == "NCMD")
        .expect("the NCMD");
    assert!(command < second.index, "the NBIRTH before the request");
    // NBIRTH, the three DBIRTHs, in a row; then data again.
    let births: BTreeSet<&str> = stream[second.index + 1..second.index + 4]
        .iter()
        .map(|m| {
            assert_eq!(m.verb, "DBIRTH", "message {} after the rebirth", m.index);
            m.device.as_deref().unwrap()
        })
        .collect();
    assert_eq!(births, BTreeSet::from(["meter-1", "meter-2", "plc"]));
    assert!(stream[second.index + 4..].iter().any(|m| m.verb == "DDATA"));
    assert_eq!(session.deaths, vec![(stream.len() - 1, first.bd_seq)]);
}

/// (4) DCMD writes as a host sends them (by the births' aliases, encoded by Tahu): the
/// set-point and the pump change in the simulator and a DDATA reports the new value; a write
/// to the read-only level is refused and counted, and writes nothing.
#[test]
#[allow(clippy::too_many_lines)] // one story: learn the aliases, write, check
fn dcmd_writes_writable_points_and_refuses_read_only_ones() {
    if !sparkplug_js::available("sparkplug DCMD test") {
        return;
    }
    let mut demo = Demo::start().unwrap();
    let mut broker = Mosquitto::start();
    let subscriber = Subscriber::start(broker.port, "check-dcmd", "spBv1.0/#");
    let queue = tempfile::tempdir().unwrap();
    let config = sparkplug_config(broker.broker(), "dcmd", queue.path());
    let fleet = devices(&demo, 1, INTERVAL);
    let service = Service::start(fleet, SocketAddr::from(ANY_PORT), Some(config)).unwrap();
    subscriber.wait_for(Duration::from_secs(10), "live DDATA", |m| {
        count(m, "dcmd", "DDATA") >= 6
    });
    // The host learns the aliases from the DBIRTH.
    let births = decode_stream(&subscriber.messages(), "dcmd");
    let dbirth = births
        .iter()
        .find(|m| m.is("DBIRTH", "plc"))
        .expect("the plc's DBIRTH");
    let alias = |name: &str| {
        let metric = dbirth
            .metrics()
            .iter()
            .find(|metric| metric["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in the DBIRTH"));
        int(&metric["alias"])
    };
    let (setpoint, pump) = (alias("setpoint"), alias("pump"));
    let now = epoch_ms(SystemTime::now());
    let commands = sparkplug_js::encode(&[
        json!({"timestamp": now, "metrics": [
            {"alias": setpoint, "type": "Float", "value": 37.5},
            {"alias": pump, "type": "Boolean", "value": false},
        ]}),
        json!({"timestamp": now, "metrics": [{"name": "level", "type": "Float", "value": 12.0}]}),
    ]);
    let dcmd = format!("spBv1.0/{GROUP}/DCMD/dcmd/plc");
    for (n, command) in commands.into_iter().enumerate() {
        publish_bytes(broker.port, &format!("host-dcmd-{n}"), &dcmd, command);
    }
    // The counters outlive the service, for a last look after the stop.
    let mqtt = Arc::clone(stats(&service));
    let writes = || {
        (
            mqtt.writes.load(Ordering::Relaxed),
            mqtt.writes_refused.load(Ordering::Relaxed),
        )
    };
    wait(Duration::from_secs(10), "the writes", || writes() == (2, 1));
    let words = demo.plc.holding_registers(plc::SETPOINT, 2).unwrap();
    let written: f32 = value::decode(&words[..], Order::Abcd).unwrap();
    assert!((written - 37.5).abs() < f32::EPSILON, "set-point {written}");
    assert_eq!(demo.plc.coils(plc::PUMP, 1).unwrap(), vec![false]);
    let level: f32 = value::decode(
        &demo.plc.holding_registers(plc::LEVEL, 2).unwrap()[..],
        Order::Abcd,
    )
    .unwrap();
    assert!(
        (level - 12.0).abs() > 1e-3,
        "the read-only level was written"
    );
    let data_before = count(&subscriber.messages(), "dcmd", "DDATA");
    subscriber.wait_for(Duration::from_secs(10), "data after the writes", |m| {
        count(m, "dcmd", "DDATA") >= data_before + 6
    });
    stop(service, &subscriber, "dcmd");
    let stream = decode_stream(&subscriber.messages(), "dcmd");
    drop(subscriber);
    broker.stop();
    demo.stop();

    check_session(&stream);
    assert_eq!(writes(), (2, 1), "(writes, refused)");
    let first_command = stream
        .iter()
        .position(|m| m.verb == "DCMD")
        .expect("the DCMD");
    // The write's own report: a DDATA after the command carrying the new value, and every
    // poll from then on reads it.
    let setpoints = series(&stream, "plc", "setpoint");
    let after: Vec<&(u64, Value, bool, usize)> =
        setpoints.iter().filter(|v| v.3 > first_command).collect();
    let reported = after
        .iter()
        .position(|v| v.1 == 37.5)
        .expect("a DDATA with the new set-point");
    assert!(
        after[reported..].iter().all(|v| v.1 == 37.5 && !v.2),
        "{:?}",
        &after[reported..]
    );
    let pumps = series(&stream, "plc", "pump");
    assert_eq!(pumps.last().unwrap().1, false);
    // The refused write left no DDATA of a level of 12.
    assert!(series(&stream, "plc", "level").iter().all(|v| v.1 != 12.0));
}
