//! The configuration file: TOML, checked whole before anything starts.
//!
//! Every error names the file, the line and column, and the field, e.g.
//! `plant.toml:14:9: devices[1].points[3].type: unknown data type "f33", expected one of bool,
//! u16, …`. Indices count from 0, in file order. `config/README.md` describes every field.
//!
//! Register numbers: a point gives either `address`, the 0-based address on the wire, with its
//! `table`, or `register`, the number a data sheet prints (the Modicon convention): the first
//! digit names the table and the rest counts from 1. Five digits: `00001`–`09999` coils,
//! `10001`–`19999` discrete inputs, `30001`–`39999` input registers, `40001`–`49999` holding
//! registers; six digits (`400001`–`465536`, and so on) reach all 65 536 addresses. So
//! `register = 40001` is holding register address 0, and `register = 30017` input register
//! 16. A coil number given as an integer loses its leading zeros (`1` is coil 0); six-digit
//! coil numbers must be strings (`"065536"`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use modbus_stack::frame::Framing;
use modbus_stack::frame::rtu::{Parity, StopBits};
use modbus_stack::harvest::{Backoff, DEFAULT_HISTORY, DeviceConfig, Link};
use modbus_stack::point::{DeviceLimits, MapError, Point, PointKind, PointMap, Table};
use modbus_stack::transport::serial;
use modbus_stack::value::{DataType, Order, Scale, StringFormat};
use serde::Deserialize;
use toml::Spanned;

use crate::mqtt::queue::FsyncPolicy;
use crate::mqtt::{Broker, Mode, MqttConfig, PublishPolicy, PublishRules, Qos};

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the API listens, if the file says (the command line wins).
    pub listen: Option<SocketAddr>,
    /// The devices, in file order.
    pub devices: Vec<DeviceConfig>,
    /// Publishing to an MQTT broker, if the file has an `[mqtt]` section.
    pub mqtt: Option<MqttConfig>,
}

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (in characters).
    pub column: usize,
    /// The field, e.g. `devices[1].points[3].type` (empty for the file as a whole).
    pub path: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Everything wrong with a configuration file (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and checks the file at `path`.
///
/// # Errors
/// The file cannot be read, or [`parse`] finds errors.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            file: name.clone(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("cannot read the file: {error}"),
        }])
    })?;
    let mut config = parse(&name, &text)?;
    // A relative queue directory is the file's neighbour, wherever the service is started.
    if let (Some(mqtt), Some(dir)) = (config.mqtt.as_mut(), path.parent()) {
        if mqtt.queue_dir.is_relative() {
            mqtt.queue_dir = dir.join(&mqtt.queue_dir);
        }
    }
    Ok(config)
}

/// Checks configuration `text`; `file` names it in errors.
///
/// # Errors
/// Every error found: a syntax or type error stops at the first; the checks after that report
/// all they find.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let locate = |span: Range<usize>| position(text, span.start);
    let deserializer = toml::Deserializer::parse(text).map_err(|error| {
        let (line, column) = error.span().map_or((1, 1), locate);
        ConfigErrors(vec![ConfigError {
            file: file.into(),
            line,
            column,
            path: String::new(),
            message: error.message().trim().to_string(),
        }])
    })?;
    let raw: RawFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // A `Spanned` field's type error names serde_spanned's private inner field: the field
        // itself is what a person wrote.
        let path = error
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = error.into_inner();
        let (line, column) = inner.span().map_or((1, 1), locate);
        ConfigErrors(vec![ConfigError {
            file: file.into(),
            line,
            column,
            path: if path == "." { String::new() } else { path },
            // Rust's type names mean nothing in a TOML file.
            message: inner
                .message()
                .trim()
                .replace("expected i64", "expected a whole number")
                .replace("expected f64", "expected a number"),
        }])
    })?;
    let mut checker = Checker {
        file,
        text,
        errors: Vec::new(),
    };
    let config = checker.file(raw);
    if checker.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(checker.errors))
    }
}

/// Line and column (from 1, in characters) of byte `offset`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    service: Option<RawService>,
    mqtt: Option<RawMqtt>,
    #[serde(default)]
    devices: Vec<RawDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    listen: Option<Spanned<String>>,
    history: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    broker: Spanned<String>,
    client_id: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<String>,
    qos: Option<Spanned<i64>>,
    mode: Option<Spanned<String>>,
    topic_prefix: Option<Spanned<String>>,
    group_id: Option<Spanned<String>>,
    edge_node_id: Option<Spanned<String>>,
    queue_dir: Option<String>,
    queue_max_mb: Option<Spanned<i64>>,
    fsync: Option<Spanned<String>>,
    keep_alive: Option<Spanned<String>>,
    reconnect_initial: Option<Spanned<String>>,
    reconnect_max: Option<Spanned<String>>,
    publish: Option<Spanned<String>>,
    deadband: Option<Spanned<f64>>,
    max_interval: Option<Spanned<String>>,
}

/// Publish rules, at the `[mqtt]`, device or point level.
struct RawRules {
    publish: Option<Spanned<String>>,
    deadband: Option<Spanned<f64>>,
    max_interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Spanned<String>,
    #[serde(rename = "type")]
    device_type: Option<String>,
    connection: Spanned<String>,
    address: Spanned<String>,
    port: Option<Spanned<i64>>,
    baud_rate: Option<Spanned<i64>>,
    data_bits: Option<Spanned<i64>>,
    parity: Option<Spanned<String>>,
    stop_bits: Option<Spanned<i64>>,
    unit_id: Spanned<i64>,
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
    retry_delay: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    enabled: Option<bool>,
    history: Option<Spanned<i64>>,
    max_registers_per_read: Option<Spanned<i64>>,
    max_bits_per_read: Option<Spanned<i64>>,
    max_register_gap: Option<Spanned<i64>>,
    max_bit_gap: Option<Spanned<i64>>,
    one_request_per_point: Option<bool>,
    pause_after_connect: Option<Spanned<String>>,
    frame_gap: Option<Spanned<String>>,
    backoff_initial: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    publish: Option<Spanned<String>>,
    deadband: Option<Spanned<f64>>,
    max_interval: Option<Spanned<String>>,
    #[serde(default)]
    skip_registers: Vec<Spanned<RegisterNumber>>,
    #[serde(default)]
    points: Vec<RawPoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    name: Spanned<String>,
    table: Option<Spanned<String>>,
    address: Option<Spanned<i64>>,
    register: Option<Spanned<RegisterNumber>>,
    #[serde(rename = "type")]
    data_type: Spanned<String>,
    order: Option<Spanned<String>>,
    bit: Option<Spanned<i64>>,
    length: Option<Spanned<i64>>,
    scale: Option<Spanned<f64>>,
    offset: Option<f64>,
    unit: Option<String>,
    access: Option<Spanned<String>>,
    publish: Option<Spanned<String>>,
    deadband: Option<Spanned<f64>>,
    max_interval: Option<Spanned<String>>,
}

/// A data-sheet register number, as an integer or a string (to keep leading zeros).
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum RegisterNumber {
    Number(i64),
    Text(String),
}

const TABLES: &str = "coils, discrete_inputs, input_registers, holding_registers";
const TYPES: &str = "bool, u16, i16, u32, i32, u64, i64, f32, f64, string";
const ORDERS: &str =
    "abcd, cdab, badc, dcba (16-bit: ab, ba; 64-bit: abcdefgh, ghefcdab, badcfehg, hgfedcba)";
const CONNECTIONS: &str = "tcp, rtu-over-tcp, rtu, ascii";

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

/// A value of a point's `type`.
#[derive(Clone, Copy)]
enum TypeName {
    Bool,
    Number(DataType),
    Text,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, path: String, message: impl Into<String>) {
        let (line, column) = position(self.text, span.start);
        self.errors.push(ConfigError {
            file: self.file.into(),
            line,
            column,
            path,
            message: message.into(),
        });
    }

    fn file(&mut self, raw: RawFile) -> Config {
        let mut listen = None;
        let mut history = DEFAULT_HISTORY;
        if let Some(service) = raw.service {
            if let Some(text) = service.listen {
                match text.get_ref().parse::<SocketAddr>() {
                    Ok(addr) => listen = Some(addr),
                    Err(_) => self.error(
                        text.span(),
                        "service.listen".into(),
                        format!(
                            "{:?} is not an address with a port, e.g. \"127.0.0.1:5000\"",
                            text.get_ref()
                        ),
                    ),
                }
            }
            if let Some(value) = service.history {
                history = self
                    .integer(&value, "service.history".into(), 1, 1_000_000)
                    .unwrap_or(history);
            }
        }
        if raw.devices.is_empty() {
            self.error(
                0..0,
                "devices".into(),
                "no devices: add at least one [[devices]] table",
            );
        }
        let mut mqtt = raw.mqtt.map(|section| self.mqtt(section));
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut links: BTreeMap<String, (usize, Link)> = BTreeMap::new();
        let mut devices = Vec::new();
        for (index, device) in raw.devices.into_iter().enumerate() {
            let path = format!("devices[{index}]");
            let name_span = device.name.span();
            let name = device.name.get_ref().clone();
            if let Some(first) = names.insert(name.clone(), index) {
                self.error(
                    name_span.clone(),
                    format!("{path}.name"),
                    format!("device name {name:?} is used twice (first by devices[{first}])"),
                );
            }
            let connection_span = device.connection.span();
            if let Some(rules) = mqtt.as_mut().map(|m| &mut m.publish) {
                self.device_rules(&path, &device, rules);
            }
            if let Some(config) = self.device(&path, device, history) {
                let id = config.link.id();
                match links.get(&id) {
                    Some((first, link)) if *link != config.link => self.error(
                        connection_span,
                        format!("{path}.connection"),
                        format!(
                            "{} is the link of devices[{first}] too, with other settings; devices on one line or gateway must use the same connection, port and serial settings",
                            config.link
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        links.insert(id, (index, config.link.clone()));
                    }
                }
                devices.push(config);
            }
        }
        Config {
            listen,
            devices,
            mqtt,
        }
    }

    #[allow(clippy::too_many_lines)] // one field after the other
    fn mqtt(&mut self, raw: RawMqtt) -> MqttConfig {
        let broker = self.broker(&raw.broker);
        let client_id = raw.client_id.as_ref().map_or_else(
            || "modbus-harvest".to_string(),
            |id| {
                let text = id.get_ref();
                if text.is_empty() || text.len() > 65_535 {
                    self.error(
                        id.span(),
                        "mqtt.client_id".into(),
                        "the client id must not be empty",
                    );
                }
                text.clone()
            },
        );
        let mut config = MqttConfig::new(
            broker,
            &client_id,
            raw.queue_dir
                .map_or_else(|| "mqtt-queue".into(), Into::into),
        );
        config.credentials = match (raw.username, raw.password) {
            (Some(user), password) => Some((user, password.unwrap_or_default())),
            (None, Some(_)) => {
                self.error(
                    raw.broker.span(),
                    "mqtt.password".into(),
                    "a password needs a username too",
                );
                None
            }
            (None, None) => None,
        };
        config.ca_file = raw.ca_file.map(Into::into);
        if let Some(qos) = &raw.qos {
            config.qos = match *qos.get_ref() {
                0 => Qos::AtMostOnce,
                1 => Qos::AtLeastOnce,
                2 => Qos::ExactlyOnce,
                other => {
                    self.error(qos.span(), "mqtt.qos".into(), format!("QoS {other} does not exist: use 0, 1 (the default: a sample leaves the queue at its PUBACK) or 2"));
                    Qos::AtLeastOnce
                }
            };
        }
        let topic_id = |checker: &mut Self, value: &Spanned<String>, path: &str| {
            let text = value.get_ref();
            if text.is_empty()
                || text.contains(['+', '#'])
                || text.starts_with('/')
                || text.ends_with('/')
            {
                checker.error(value.span(), path.into(), format!("{text:?} cannot start a topic: it must not be empty, contain + or #, or start or end with /"));
            }
            text.clone()
        };
        let mode = raw
            .mode
            .as_ref()
            .map_or("plain".to_string(), |m| m.get_ref().to_ascii_lowercase());
        config.mode = match mode.as_str() {
            "plain" => Mode::Plain {
                prefix: raw.topic_prefix.as_ref().map_or_else(
                    || "modbus".into(),
                    |p| topic_id(self, p, "mqtt.topic_prefix"),
                ),
            },
            "sparkplug" | "sparkplug_b" | "sparkplug-b" => {
                let single_level = |checker: &mut Self, value: &Spanned<String>, path: &str| {
                    let text = topic_id(checker, value, path);
                    if text.contains('/') {
                        checker.error(
                            value.span(),
                            path.into(),
                            format!("{text:?}: Sparkplug ids are one topic level, without /"),
                        );
                    }
                    text
                };
                let group_id = if let Some(group) = &raw.group_id {
                    single_level(self, group, "mqtt.group_id")
                } else {
                    {
                        self.error(raw.broker.span(), "mqtt.group_id".into(), "sparkplug mode needs a group_id (the Sparkplug group, e.g. \"plant1\")");
                        String::new()
                    }
                };
                let edge_node_id = match &raw.edge_node_id {
                    Some(node) => single_level(self, node, "mqtt.edge_node_id"),
                    None => client_id.clone(),
                };
                if let Some(prefix) = &raw.topic_prefix {
                    self.error(prefix.span(), "mqtt.topic_prefix".into(), "topic_prefix is for mode = \"plain\"; Sparkplug topics are spBv1.0/GROUP_ID/…, set group_id instead");
                }
                Mode::Sparkplug {
                    group_id,
                    edge_node_id,
                }
            }
            other => {
                if let Some(m) = &raw.mode {
                    self.error(
                        m.span(),
                        "mqtt.mode".into(),
                        format!("unknown mode {other:?}, expected plain or sparkplug"),
                    );
                }
                config.mode.clone()
            }
        };
        if let Some(mb) = &raw.queue_max_mb {
            config.queue_max_bytes = self
                .integer(mb, "mqtt.queue_max_mb".into(), 1, 1 << 20)
                .map_or(config.queue_max_bytes, |mb| (mb as u64) << 20);
        }
        if let Some(fsync) = &raw.fsync {
            config.fsync = match fsync.get_ref().as_str() {
                "always" => FsyncPolicy::Always,
                "never" => FsyncPolicy::Never,
                text => {
                    if let Some(interval) = parse_duration(text) {
                        FsyncPolicy::Interval(interval)
                    } else {
                        {
                            self.error(fsync.span(), "mqtt.fsync".into(), format!("{text:?}: use \"always\", \"never\" or an interval such as \"1s\" (the default)"));
                            config.fsync
                        }
                    }
                }
            };
        }
        config.keep_alive = self.positive_duration(
            raw.keep_alive.as_ref(),
            "mqtt.keep_alive".into(),
            config.keep_alive,
        );
        config.reconnect.initial = self.positive_duration(
            raw.reconnect_initial.as_ref(),
            "mqtt.reconnect_initial".into(),
            config.reconnect.initial,
        );
        config.reconnect.max = self.positive_duration(
            raw.reconnect_max.as_ref(),
            "mqtt.reconnect_max".into(),
            config.reconnect.max,
        );
        if config.reconnect.max < config.reconnect.initial {
            let span = raw.reconnect_max.as_ref().map_or(0..0, Spanned::span);
            self.error(
                span,
                "mqtt.reconnect_max".into(),
                "reconnect_max is shorter than reconnect_initial",
            );
        }
        let own = RawRules {
            publish: raw.publish,
            deadband: raw.deadband,
            max_interval: raw.max_interval,
        };
        config.publish.default = self.rules("mqtt", &own, PublishPolicy::default());
        config
    }

    fn broker(&mut self, raw: &Spanned<String>) -> Broker {
        let text = raw.get_ref();
        let bad = |checker: &mut Self| {
            checker.error(raw.span(), "mqtt.broker".into(), format!("{text:?} is not a broker URL: use mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)"));
            Broker {
                host: String::new(),
                port: 1883,
                tls: false,
            }
        };
        let (tls, rest) = if let Some(rest) = text.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return bad(self);
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                match port.parse::<u16>() {
                    Ok(port) if port > 0 => (host, port),
                    _ => return bad(self),
                }
            }
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return bad(self);
        }
        Broker {
            host: host.into(),
            port,
            tls,
        }
    }

    /// A publish policy from `raw`, with what it leaves out taken from `base`.
    fn rules(&mut self, path: &str, raw: &RawRules, base: PublishPolicy) -> PublishPolicy {
        let mut policy = base;
        if let Some(publish) = &raw.publish {
            policy.on_change = match publish.get_ref().as_str() {
                "change" | "on_change" => true,
                "every_poll" | "always" => false,
                other => {
                    self.error(
                        publish.span(),
                        format!("{path}.publish"),
                        format!("{other:?}: use \"every_poll\" (the default) or \"change\""),
                    );
                    base.on_change
                }
            };
        }
        if let Some(deadband) = &raw.deadband {
            let value = *deadband.get_ref();
            if value.is_finite() && value >= 0.0 {
                policy.deadband = value;
            } else {
                self.error(
                    deadband.span(),
                    format!("{path}.deadband"),
                    "the deadband is a number of at least 0",
                );
            }
        }
        if let Some(interval) = &raw.max_interval {
            policy.max_interval = Some(self.positive_duration(
                Some(interval),
                format!("{path}.max_interval"),
                Duration::from_secs(60),
            ));
        }
        if (raw.deadband.is_some() || raw.max_interval.is_some()) && !policy.on_change {
            let span = raw.deadband.as_ref().map_or_else(
                || raw.max_interval.as_ref().map_or(0..0, Spanned::span),
                Spanned::span,
            );
            self.error(
                span,
                format!("{path}.publish"),
                "deadband and max_interval apply to publish = \"change\"; set it here or in [mqtt]",
            );
        }
        policy
    }

    fn device_rules(&mut self, path: &str, device: &RawDevice, rules: &mut PublishRules) {
        let name = device.name.get_ref().clone();
        let own = RawRules {
            publish: device.publish.clone(),
            deadband: device.deadband.clone(),
            max_interval: device.max_interval.clone(),
        };
        self.topic_level(device.name.span(), format!("{path}.name"), &name);
        if name == "_service" {
            self.error(
                device.name.span(),
                format!("{path}.name"),
                "\"_service\" is the service's own topic in MQTT: name the device otherwise",
            );
        }
        let base = rules.default;
        let policy = self.rules(path, &own, base);
        if policy != base {
            rules.devices.insert(name.clone(), policy);
        }
        for (index, point) in device.points.iter().enumerate() {
            let point_path = format!("{path}.points[{index}]");
            if point.name.get_ref() == "status" {
                self.error(
                    point.name.span(),
                    format!("{point_path}.name"),
                    "\"status\" is the device's status topic in MQTT: name the point otherwise",
                );
            }
            self.topic_level(
                point.name.span(),
                format!("{point_path}.name"),
                point.name.get_ref(),
            );
            let own = RawRules {
                publish: point.publish.clone(),
                deadband: point.deadband.clone(),
                max_interval: point.max_interval.clone(),
            };
            let point_policy = self.rules(&point_path, &own, policy);
            if point_policy != policy {
                rules
                    .points
                    .insert((name.clone(), point.name.get_ref().clone()), point_policy);
            }
        }
    }

    /// Device and point names are topic levels under MQTT: a `/` would split one, and `+`, `#`
    /// are wildcards a broker refuses in a published topic (it drops the connection).
    fn topic_level(&mut self, span: Range<usize>, path: String, name: &str) {
        if let Some(bad) = name.chars().find(|c| matches!(c, '/' | '+' | '#' | '\0')) {
            self.error(
                span,
                path,
                format!("{bad:?} cannot be in a name that is an MQTT topic level: rename it"),
            );
        }
    }

    fn integer(&mut self, value: &Spanned<i64>, path: String, min: i64, max: i64) -> Option<usize> {
        let number = *value.get_ref();
        if (min..=max).contains(&number) {
            usize::try_from(number).ok()
        } else {
            self.error(
                value.span(),
                path,
                format!("{number} is outside {min}..={max}"),
            );
            None
        }
    }

    fn u16_in(&mut self, value: &Spanned<i64>, path: String, min: u16, max: u16) -> Option<u16> {
        self.integer(value, path, i64::from(min), i64::from(max))
            .and_then(|n| u16::try_from(n).ok())
    }

    /// As [`duration`](Self::duration), for a duration that must not be zero.
    fn positive_duration(
        &mut self,
        value: Option<&Spanned<String>>,
        path: String,
        default: Duration,
    ) -> Duration {
        let duration = self.duration(value, path.clone(), default);
        if let (true, Some(value)) = (duration.is_zero(), value) {
            self.error(value.span(), path, "must be longer than 0");
        }
        duration
    }

    fn duration(
        &mut self,
        value: Option<&Spanned<String>>,
        path: String,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        if let Some(duration) = parse_duration(value.get_ref()) {
            return duration;
        }
        self.error(
            value.span(),
            path,
            format!(
                "{:?} is not a duration: a number with a unit, e.g. \"250ms\", \"1s\", \"2m\"",
                value.get_ref()
            ),
        );
        default
    }

    #[allow(clippy::too_many_lines)] // one field after the other
    fn device(&mut self, path: &str, raw: RawDevice, history: usize) -> Option<DeviceConfig> {
        let errors_before = self.errors.len();
        let connection = raw.connection.get_ref().to_ascii_lowercase();
        let framing = match connection.as_str() {
            "tcp" | "modbus-tcp" => Some(Framing::Tcp),
            "rtu-over-tcp" => Some(Framing::RtuOverTcp),
            "rtu" => Some(Framing::Rtu),
            "ascii" => Some(Framing::Ascii),
            other => {
                self.error(
                    raw.connection.span(),
                    format!("{path}.connection"),
                    format!("unknown connection type {other:?}, expected one of {CONNECTIONS}"),
                );
                None
            }
        };
        let unit_range = if framing == Some(Framing::Tcp) {
            0..=255
        } else {
            1..=247
        };
        let unit_id = self
            .integer(
                &raw.unit_id,
                format!("{path}.unit_id"),
                *unit_range.start(),
                *unit_range.end(),
            )
            .and_then(|n| u8::try_from(n).ok());
        let link = framing.and_then(|framing| self.link(path, &raw, framing));
        let interval = self.positive_duration(
            raw.poll_interval.as_ref(),
            format!("{path}.poll_interval"),
            Duration::from_secs(1),
        );
        let timeout = self.positive_duration(
            raw.timeout.as_ref(),
            format!("{path}.timeout"),
            Duration::from_secs(1),
        );
        let retry_delay = self.duration(
            raw.retry_delay.as_ref(),
            format!("{path}.retry_delay"),
            Duration::from_millis(100),
        );
        let retries = raw
            .retries
            .as_ref()
            .and_then(|value| self.integer(value, format!("{path}.retries"), 0, 10))
            .map_or(2, |n| u32::try_from(n).unwrap_or(2));
        let mut limits = DeviceLimits::default();
        if let Some(value) = &raw.max_registers_per_read {
            if let Some(n) = self.u16_in(value, format!("{path}.max_registers_per_read"), 1, 125) {
                limits.max_registers = n;
            }
        }
        if let Some(value) = &raw.max_bits_per_read {
            if let Some(n) = self.u16_in(value, format!("{path}.max_bits_per_read"), 1, 2000) {
                limits.max_bits = n;
            }
        }
        if let Some(value) = &raw.max_register_gap {
            if let Some(n) = self.u16_in(value, format!("{path}.max_register_gap"), 0, 124) {
                limits.max_register_gap = n;
            }
        }
        if let Some(value) = &raw.max_bit_gap {
            if let Some(n) = self.u16_in(value, format!("{path}.max_bit_gap"), 0, 1999) {
                limits.max_bit_gap = n;
            }
        }
        limits.one_read_per_point = raw.one_request_per_point.unwrap_or(false);
        for (index, number) in raw.skip_registers.iter().enumerate() {
            match register_number(number.get_ref()) {
                Ok((table, address)) => {
                    limits.forbidden.insert((table, address));
                }
                Err(message) => {
                    self.error(
                        number.span(),
                        format!("{path}.skip_registers[{index}]"),
                        message,
                    );
                }
            }
        }
        let device_history = raw
            .history
            .as_ref()
            .and_then(|value| self.integer(value, format!("{path}.history"), 1, 1_000_000))
            .unwrap_or(history);
        let pause_after_connect = self.duration(
            raw.pause_after_connect.as_ref(),
            format!("{path}.pause_after_connect"),
            Duration::ZERO,
        );
        let frame_gap = self.duration(
            raw.frame_gap.as_ref(),
            format!("{path}.frame_gap"),
            Duration::ZERO,
        );
        let default_backoff = Backoff::default();
        let backoff = Backoff {
            initial: self.duration(
                raw.backoff_initial.as_ref(),
                format!("{path}.backoff_initial"),
                default_backoff.initial,
            ),
            max: self.duration(
                raw.backoff_max.as_ref(),
                format!("{path}.backoff_max"),
                default_backoff.max,
            ),
        };
        let mut points = Vec::new();
        let mut writable = BTreeSet::new();
        let mut name_spans = Vec::new();
        if raw.points.is_empty() {
            self.error(
                raw.name.span(),
                format!("{path}.points"),
                "the device has no points: add [[devices.points]] tables",
            );
        }
        for (index, point) in raw.points.iter().enumerate() {
            let point_path = format!("{path}.points[{index}]");
            name_spans.push((
                point.name.get_ref().clone(),
                point.name.span(),
                point_path.clone(),
            ));
            if let Some((point, read_write)) = self.point(&point_path, point, unit_id.unwrap_or(1))
            {
                if read_write {
                    writable.insert(point.name.clone());
                }
                points.push(point);
            }
        }
        let map = match PointMap::new(points) {
            Ok(map) => Some(map),
            Err(error) => {
                let named = match &error {
                    MapError::DuplicateName { name }
                    | MapError::AddressOverflow { name, .. }
                    | MapError::WrongTable { name, .. }
                    | MapError::BitOutOfRange { name, .. }
                    | MapError::EmptyString { name } => Some(name.clone()),
                    MapError::PartialOverlap { second, .. } => Some(second.clone()),
                    _ => None,
                };
                // The last point of that name: for a duplicate, the second use.
                let (span, at) = named
                    .and_then(|name| {
                        name_spans
                            .iter()
                            .rev()
                            .find(|(candidate, _, _)| *candidate == name)
                            .map(|(_, span, at)| (span.clone(), at.clone()))
                    })
                    .unwrap_or((raw.name.span(), format!("{path}.points")));
                self.error(span, at, error.to_string());
                None
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        let (link, unit_id, map) = (link?, unit_id?, map?);
        let mut config = DeviceConfig::new(raw.name.get_ref().clone(), link, unit_id, map);
        config.device_type = raw.device_type;
        config.writable = writable;
        config.interval = interval;
        config.response_timeout = timeout;
        config.retries = retries;
        config.retry_delay = retry_delay;
        config.limits = limits;
        config.history = device_history;
        config.enabled = raw.enabled.unwrap_or(true);
        config.pause_after_connect = pause_after_connect;
        config.frame_gap = frame_gap;
        config.backoff = backoff;
        // The planner's own checks (a point longer than the read limit, a skipped register
        // inside a point), reported at the device.
        let plan_config = modbus_stack::point::PlanConfig {
            defaults: config.limits.clone(),
            devices: BTreeMap::new(),
        };
        if let Err(error) = config.points.plan(&plan_config) {
            self.error(raw.name.span(), format!("{path}.points"), error.to_string());
            return None;
        }
        Some(config)
    }

    fn link(&mut self, path: &str, raw: &RawDevice, framing: Framing) -> Option<Link> {
        let address = raw.address.get_ref().trim();
        if address.is_empty() {
            self.error(
                raw.address.span(),
                format!("{path}.address"),
                "the address is empty",
            );
            return None;
        }
        if framing.is_serial() {
            if let Some(port) = &raw.port {
                self.error(
                    port.span(),
                    format!("{path}.port"),
                    "a serial device has no TCP port: give the serial port as `address`, e.g. \"/dev/ttyUSB0\"",
                );
            }
            let baud = raw
                .baud_rate
                .as_ref()
                .and_then(|value| self.integer(value, format!("{path}.baud_rate"), 50, 4_000_000))
                .map_or(19_200, |n| u32::try_from(n).unwrap_or(19_200));
            let mut serial = serial::Config::new(baud);
            if framing == Framing::Ascii {
                serial.data_bits = 7;
            }
            if let Some(value) = &raw.data_bits {
                if let Some(n) = self.integer(value, format!("{path}.data_bits"), 7, 8) {
                    serial.data_bits = u8::try_from(n).unwrap_or(8);
                }
            }
            if let Some(value) = &raw.parity {
                match value.get_ref().to_ascii_lowercase().as_str() {
                    "none" => serial.parity = Parity::None,
                    "even" => serial.parity = Parity::Even,
                    "odd" => serial.parity = Parity::Odd,
                    other => self.error(
                        value.span(),
                        format!("{path}.parity"),
                        format!("unknown parity {other:?}, expected one of none, even, odd"),
                    ),
                }
            }
            if let Some(value) = &raw.stop_bits {
                match value.get_ref() {
                    1 => serial.stop_bits = StopBits::One,
                    2 => serial.stop_bits = StopBits::Two,
                    other => self.error(
                        value.span(),
                        format!("{path}.stop_bits"),
                        format!("{other} stop bits: expected 1 or 2"),
                    ),
                }
            }
            Some(Link::Serial {
                path: address.into(),
                framing,
                config: serial,
            })
        } else {
            for (field, value) in [
                ("baud_rate", &raw.baud_rate),
                ("data_bits", &raw.data_bits),
                ("stop_bits", &raw.stop_bits),
            ] {
                if let Some(value) = value {
                    self.error(
                        value.span(),
                        format!("{path}.{field}"),
                        "serial settings do not apply to a TCP connection",
                    );
                }
            }
            let port = raw
                .port
                .as_ref()
                .and_then(|value| self.integer(value, format!("{path}.port"), 1, 65_535))
                .unwrap_or(502);
            let address = if address.contains(':') && !address.starts_with('[') {
                // An IPv6 literal without brackets.
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            };
            let mut link = if framing == Framing::RtuOverTcp {
                Link::rtu_over_tcp(address)
            } else {
                Link::tcp(address)
            };
            if let Link::Tcp { config, .. } = &mut link {
                config.connect_timeout = Duration::from_secs(2);
            }
            Some(link)
        }
    }

    #[allow(clippy::too_many_lines)] // one field after the other
    fn point(&mut self, path: &str, raw: &RawPoint, unit_id: u8) -> Option<(Point, bool)> {
        let errors_before = self.errors.len();
        let type_name = match raw.data_type.get_ref().to_ascii_lowercase().as_str() {
            "bool" => Some(TypeName::Bool),
            "u16" => Some(TypeName::Number(DataType::U16)),
            "i16" => Some(TypeName::Number(DataType::I16)),
            "u32" => Some(TypeName::Number(DataType::U32)),
            "i32" => Some(TypeName::Number(DataType::I32)),
            "u64" => Some(TypeName::Number(DataType::U64)),
            "i64" => Some(TypeName::Number(DataType::I64)),
            "f32" => Some(TypeName::Number(DataType::F32)),
            "f64" => Some(TypeName::Number(DataType::F64)),
            "string" => Some(TypeName::Text),
            other => {
                self.error(
                    raw.data_type.span(),
                    format!("{path}.type"),
                    format!("unknown data type {other:?}, expected one of {TYPES}"),
                );
                None
            }
        };
        let table_field = raw.table.as_ref().and_then(|value| {
            let table = match value.get_ref().to_ascii_lowercase().as_str() {
                "coils" | "coil" => Some(Table::Coils),
                "discrete_inputs" | "discrete_input" | "discrete" => Some(Table::DiscreteInputs),
                "input_registers" | "input_register" | "input" => Some(Table::InputRegisters),
                "holding_registers" | "holding_register" | "holding" => {
                    Some(Table::HoldingRegisters)
                }
                other => {
                    self.error(
                        value.span(),
                        format!("{path}.table"),
                        format!("unknown table {other:?}, expected one of {TABLES}"),
                    );
                    None
                }
            };
            table.map(|table| (table, value.span()))
        });
        let location = match (&raw.address, &raw.register) {
            (Some(_), Some(register)) => {
                self.error(
                    register.span(),
                    format!("{path}.register"),
                    "give either `address` (0-based, with `table`) or `register` (data-sheet number), not both",
                );
                None
            }
            (Some(address), None) => {
                let address = self.u16_in(address, format!("{path}.address"), 0, u16::MAX);
                match (&table_field, address) {
                    (Some((table, _)), Some(address)) => Some((*table, address)),
                    (None, _) => {
                        self.error(
                            raw.name.span(),
                            format!("{path}.table"),
                            format!(
                                "missing: a point given by `address` needs a `table` ({TABLES})"
                            ),
                        );
                        None
                    }
                    _ => None,
                }
            }
            (None, Some(register)) => match register_number(register.get_ref()) {
                Ok((table, address)) => match &table_field {
                    Some((given, span)) if *given != table => {
                        self.error(
                            span.clone(),
                            format!("{path}.table"),
                            format!(
                                "register {} is in {}, not {}",
                                register_text(register.get_ref()),
                                modbus_stack::harvest::table_name(table),
                                modbus_stack::harvest::table_name(*given)
                            ),
                        );
                        None
                    }
                    _ => Some((table, address)),
                },
                Err(message) => {
                    self.error(register.span(), format!("{path}.register"), message);
                    None
                }
            },
            (None, None) => {
                self.error(
                    raw.name.span(),
                    path.to_string(),
                    "missing location: give `register` (e.g. 40001) or `address` with `table`",
                );
                None
            }
        };
        let order = match &raw.order {
            None => Some(Order::Abcd),
            Some(value) => match value.get_ref().to_ascii_lowercase().as_str() {
                "abcd" | "ab" | "abcdefgh" | "big" => Some(Order::Abcd),
                "cdab" | "ghefcdab" => Some(Order::Cdab),
                "badc" | "ba" | "badcfehg" => Some(Order::Badc),
                "dcba" | "hgfedcba" | "little" => Some(Order::Dcba),
                other => {
                    self.error(
                        value.span(),
                        format!("{path}.order"),
                        format!("unknown byte/word order {other:?}, expected one of {ORDERS}"),
                    );
                    None
                }
            },
        };
        let read_write = match &raw.access {
            None => false,
            Some(value) => match value.get_ref().to_ascii_lowercase().as_str() {
                "read" | "read-only" | "ro" => false,
                "read-write" | "rw" => true,
                other => {
                    self.error(
                        value.span(),
                        format!("{path}.access"),
                        format!("unknown access {other:?}, expected read or read-write"),
                    );
                    false
                }
            },
        };
        let (Some(type_name), Some((table, address)), Some(order)) = (type_name, location, order)
        else {
            return None;
        };
        let kind = match type_name {
            TypeName::Bool if table.is_bits() => {
                if let Some(bit) = &raw.bit {
                    self.error(
                        bit.span(),
                        format!("{path}.bit"),
                        "a coil or discrete input has no bit number",
                    );
                }
                PointKind::Bit
            }
            TypeName::Bool => {
                let Some(bit) = &raw.bit else {
                    self.error(
                        raw.data_type.span(),
                        format!("{path}.bit"),
                        "missing: a bool in a register table needs `bit` (0 = least significant, up to 15)",
                    );
                    return None;
                };
                let bit = self.integer(bit, format!("{path}.bit"), 0, 15)?;
                PointKind::RegisterBit {
                    bit: u8::try_from(bit).unwrap_or(0),
                }
            }
            _ if table.is_bits() => {
                self.error(
                    raw.data_type.span(),
                    format!("{path}.type"),
                    format!(
                        "{} holds bits: the type must be bool",
                        modbus_stack::harvest::table_name(table)
                    ),
                );
                return None;
            }
            TypeName::Number(data_type) => {
                let scale = match (&raw.scale, raw.offset) {
                    (None, None) => None,
                    (scale, offset) => {
                        let factor = scale.as_ref().map_or(1.0, |s| *s.get_ref());
                        match Scale::new(factor, offset.unwrap_or(0.0)) {
                            Ok(scale) => Some(scale),
                            Err(error) => {
                                let span = scale.as_ref().map_or(raw.name.span(), Spanned::span);
                                self.error(span, format!("{path}.scale"), error.to_string());
                                return None;
                            }
                        }
                    }
                };
                PointKind::Number {
                    data_type,
                    order,
                    scale,
                }
            }
            TypeName::Text => {
                let Some(length) = &raw.length else {
                    self.error(
                        raw.data_type.span(),
                        format!("{path}.length"),
                        "missing: a string needs `length`, its size in registers (two characters each)",
                    );
                    return None;
                };
                let registers = self.u16_in(length, format!("{path}.length"), 1, 123)?;
                let mut format = StringFormat::new(registers);
                if matches!(order, Order::Badc | Order::Dcba) {
                    format.byte_order = modbus_stack::value::ByteOrder::LowByteFirst;
                }
                PointKind::String(format)
            }
        };
        if read_write && !table.is_writable() {
            if let Some(access) = &raw.access {
                self.error(
                    access.span(),
                    format!("{path}.access"),
                    format!(
                        "{} cannot be written: use coils or holding_registers for a read-write point",
                        modbus_stack::harvest::table_name(table)
                    ),
                );
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let mut point = Point::new(raw.name.get_ref().clone(), unit_id, table, address, kind);
        if let Some(unit) = &raw.unit {
            point = point.with_unit(unit.clone());
        }
        Some((point, read_write))
    }
}

fn register_text(number: &RegisterNumber) -> String {
    match number {
        RegisterNumber::Number(n) => n.to_string(),
        RegisterNumber::Text(text) => text.clone(),
    }
}

/// A data-sheet register number: its table and 0-based address (see the module docs).
fn register_number(number: &RegisterNumber) -> Result<(Table, u16), String> {
    let text = register_text(number);
    let digits = text.trim();
    let bad = || {
        format!(
            "{digits:?} is not a register number: use 5 digits (00001-09999 coils, 10001-19999 discrete inputs, 30001-39999 input registers, 40001-49999 holding registers) or 6 digits (e.g. 400001-465536)"
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (table_digit, rest) = match digits.len() {
        // Integers lose a coil's leading zeros.
        1..=4 => ('0', digits),
        5 | 6 => (
            digits.chars().next().unwrap_or('?'),
            digits.get(1..).unwrap_or(""),
        ),
        _ => return Err(bad()),
    };
    let table = match table_digit {
        '0' => Table::Coils,
        '1' => Table::DiscreteInputs,
        '3' => Table::InputRegisters,
        '4' => Table::HoldingRegisters,
        _ => return Err(bad()),
    };
    let offset: u32 = rest.parse().map_err(|_| bad())?;
    let max = if digits.len() == 6 { 65_536 } else { 9_999 };
    if offset == 0 || offset > max {
        return Err(format!(
            "{digits:?}: the number after the table digit counts from 1 and goes up to {max}"
        ));
    }
    u16::try_from(offset - 1)
        .map(|address| (table, address))
        .map_err(|_| bad())
}

/// `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_numbers_follow_the_modicon_convention() {
        let n = |v: i64| register_number(&RegisterNumber::Number(v));
        let t = |v: &str| register_number(&RegisterNumber::Text(v.into()));
        assert_eq!(n(40001), Ok((Table::HoldingRegisters, 0)));
        assert_eq!(n(49999), Ok((Table::HoldingRegisters, 9998)));
        assert_eq!(n(30017), Ok((Table::InputRegisters, 16)));
        assert_eq!(n(10001), Ok((Table::DiscreteInputs, 0)));
        assert_eq!(n(1), Ok((Table::Coils, 0)));
        assert_eq!(t("00001"), Ok((Table::Coils, 0)));
        assert_eq!(n(465_536), Ok((Table::HoldingRegisters, 65_535)));
        assert_eq!(t("065536"), Ok((Table::Coils, 65_535)));
        assert!(n(40000).is_err());
        assert!(n(20001).is_err());
        assert!(n(465_537).is_err());
        assert!(t("4x001").is_err());
        assert!(n(0).is_err());
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("100"), None);
        assert_eq!(parse_duration("1x"), None);
    }
}
