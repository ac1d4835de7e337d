//! The configuration file: every shipped example loads (without opening the serial ports it
//! names), and each kind of mistake, written to a real file, is reported as
//! `file:line:col: field: message` at the place it was made, all of them at once where the
//! loader can go on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modbus_harvest::config::{self, Config, ConfigError};
use modbus_stack::frame::Framing;
use modbus_stack::frame::rtu::{Parity, StopBits};
use modbus_stack::harvest::Link;
use modbus_stack::point::{PointKind, Table};

/// A valid device with one point named `p`; `point` gives the rest of the point's fields.
fn with_point(point: &str) -> String {
    format!(
        r#"[[devices]]
name = "meter"
connection = "tcp"
address = "127.0.0.1"
unit_id = 1

  [[devices.points]]
  name = "p"
{point}
"#
    )
}

/// A fresh directory of this test binary's temporary space.
fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("config_files")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the temporary directory");
    dir
}

/// Writes `text` to `plant.toml` in the test's directory and loads it.
fn load(test: &str, text: &str) -> (String, Result<Config, Vec<ConfigError>>) {
    let path = temp_dir(test).join("plant.toml");
    std::fs::write(&path, text).expect("write the file");
    let result = config::load(&path).map_err(|errors| errors.0);
    (path.display().to_string(), result)
}

/// The errors of `text`, as displayed, with the file name.
fn errors(test: &str, text: &str) -> (String, Vec<String>) {
    let (file, result) = load(test, text);
    let errors = result.expect_err("the file has errors");
    for error in &errors {
        assert_eq!(error.file, file, "every error names the file");
        assert!(error.line >= 1 && error.column >= 1);
    }
    (file, errors.iter().map(ToString::to_string).collect())
}

/// Asserts `text` has exactly one error, starting `file:` + `expected`.
fn assert_only_error(test: &str, text: &str, expected: &str) -> String {
    let (file, errors) = errors(test, text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let want = format!("{file}:{expected}");
    assert!(
        errors[0].starts_with(&want),
        "\n got: {}\nwant: {want}…",
        errors[0]
    );
    errors[0].clone()
}

fn shipped(file: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(file);
    config::load(&path).unwrap_or_else(|errors| panic!("{file}:\n{errors}"))
}

#[test]
fn every_shipped_configuration_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("list harvest/config") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!config.devices.is_empty(), "{}", path.display());
            loaded.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    loaded.sort();
    assert_eq!(loaded, ["fleet.toml", "plant.toml", "simulator.toml"]);
}

#[test]
fn plant_toml_describes_its_four_devices_without_opening_their_ports() {
    let plant = shipped("plant.toml");
    assert_eq!(plant.listen, Some("0.0.0.0:5000".parse().unwrap()));
    let names: Vec<&str> = plant.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "line-1-plc",
            "meter-incomer",
            "meter-chiller",
            "oven-controller"
        ]
    );
    let plc = &plant.devices[0];
    assert_eq!(plc.interval, Duration::from_millis(500));
    assert_eq!(plc.response_timeout, Duration::from_millis(300));
    assert_eq!(plc.retries, 2);
    assert_eq!(plc.limits.max_registers, 100);
    assert_eq!(plc.limits.max_register_gap, 4);
    assert_eq!(plc.history, 1000);
    let place = |device: usize, name: &str| {
        let point = plant.devices[device]
            .points
            .get(name)
            .unwrap_or_else(|| panic!("no point {name}"));
        (point.table, point.address)
    };
    assert_eq!(place(0, "speed_setpoint"), (Table::HoldingRegisters, 100));
    assert_eq!(place(0, "running"), (Table::Coils, 0));
    assert_eq!(place(0, "recipe"), (Table::HoldingRegisters, 200));
    let writable: Vec<&str> = plc.writable.iter().map(String::as_str).collect();
    assert_eq!(writable, ["running", "speed_setpoint"]);
    // The meters share the gateway; the undocumented hole 30007 is input register 6.
    assert_eq!(plant.devices[1].link, plant.devices[2].link);
    assert_eq!(plant.devices[1].link.framing(), Framing::RtuOverTcp);
    assert!(
        plant.devices[1]
            .limits
            .forbidden
            .contains(&(Table::InputRegisters, 6))
    );
    assert_eq!(plant.devices[1].frame_gap, Duration::from_millis(20));
    assert_eq!(place(1, "energy"), (Table::InputRegisters, 8));
    let oven = &plant.devices[3];
    assert_eq!(oven.unit_id, 7);
    assert!(oven.limits.one_read_per_point);
    assert_eq!(oven.pause_after_connect, Duration::from_millis(200));
    match &oven.link {
        Link::Serial {
            path,
            framing,
            config,
        } => {
            assert_eq!(path, "/dev/ttyUSB0");
            assert_eq!(*framing, Framing::Rtu);
            assert_eq!(config.baud_rate, 9600);
            assert_eq!(config.parity, Parity::None);
            assert_eq!(config.stop_bits, StopBits::One);
        }
        other => panic!("the oven is on a serial line, not {other:?}"),
    }
}

#[test]
fn checking_never_opens_a_serial_port() {
    // A port that cannot exist: if checking opened it, the check would fail.
    let dir = temp_dir("serial_port");
    let port = dir.join("no-such-port");
    let text = format!(
        "[[devices]]\nname = \"oven\"\nconnection = \"rtu\"\naddress = \"{}\"\nbaud_rate = 38400\nparity = \"odd\"\nstop_bits = 2\nunit_id = 3\n\n  [[devices.points]]\n  name = \"t\"\n  register = 30001\n  type = \"i16\"\n",
        port.display()
    );
    let (_, result) = load("serial_port_file", &text);
    let config = result.expect("a valid file, whether or not the port exists");
    assert!(!port.exists());
    match &config.devices[0].link {
        Link::Serial { path, config, .. } => {
            assert_eq!(Path::new(path), port);
            assert_eq!(config.baud_rate, 38_400);
            assert_eq!(config.parity, Parity::Odd);
            assert_eq!(config.stop_bits, StopBits::Two);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn simulator_toml_maps_its_register_numbers() {
    let sim = shipped("simulator.toml");
    assert_eq!(sim.listen, Some("127.0.0.1:5000".parse().unwrap()));
    assert_eq!(sim.devices.len(), 2);
    let boiler = &sim.devices[0];
    let place = |name: &str| {
        let point = boiler.points.get(name).expect("a boiler point");
        (point.table, point.address)
    };
    assert_eq!(place("setpoint"), (Table::HoldingRegisters, 0));
    assert_eq!(place("flow"), (Table::HoldingRegisters, 1));
    assert_eq!(place("ir100"), (Table::InputRegisters, 100));
    assert_eq!(place("pump"), (Table::Coils, 0));
    assert_eq!(place("door_closed"), (Table::DiscreteInputs, 3));
    let meter = &sim.devices[1];
    assert_eq!(meter.unit_id, 2);
    assert_eq!(boiler.link, meter.link, "one connection for both units");
    let bit = meter.points.get("status_bit_3").expect("the bit point");
    assert_eq!((bit.table, bit.address), (Table::InputRegisters, 42));
    assert_eq!(bit.kind, PointKind::RegisterBit { bit: 3 });
    assert_eq!(meter.history, 600);
}

#[test]
fn an_unknown_data_type_names_file_line_column_and_field() {
    assert_only_error(
        "unknown_type",
        &with_point("  register = 40001\n  type = \"f33\""),
        "10:10: devices[0].points[0].type: unknown data type \"f33\", expected one of bool, u16, i16, u32, i32, u64, i64, f32, f64, string",
    );
}

#[test]
fn data_sheet_register_numbers_map_to_table_and_address() {
    let cases: [(&str, Table, u16); 8] = [
        ("40001", Table::HoldingRegisters, 0),
        ("49999", Table::HoldingRegisters, 9998),
        ("30017", Table::InputRegisters, 16),
        ("10001", Table::DiscreteInputs, 0),
        ("\"00003\"", Table::Coils, 2),
        ("3", Table::Coils, 2),
        ("465536", Table::HoldingRegisters, 65_535),
        ("300001", Table::InputRegisters, 0),
    ];
    for (register, table, address) in cases {
        let text = with_point(&format!(
            "  register = {register}\n  type = \"bool\"\n  bit = 0"
        ))
        .replace("bit = 0", if table.is_bits() { "" } else { "bit = 0" });
        let (_, result) = load("registers", &text);
        let config = result.unwrap_or_else(|e| panic!("{register}: {e:?}"));
        let point = &config.devices[0].points.points()[0];
        assert_eq!((point.table, point.address), (table, address), "{register}");
    }
    // A table given as well must agree.
    assert_only_error(
        "register_table",
        &with_point("  register = 40001\n  table = \"input_registers\"\n  type = \"u16\""),
        "10:11: devices[0].points[0].table: register 40001 is in holding_registers, not input_registers",
    );
}

#[test]
fn register_numbers_outside_the_convention_are_refused() {
    let cases = [
        ("50000", "\"50000\" is not a register number: use 5 digits"),
        ("20001", "\"20001\" is not a register number"),
        (
            "40000",
            "\"40000\": the number after the table digit counts from 1 and goes up to 9999",
        ),
        (
            "465537",
            "\"465537\": the number after the table digit counts from 1 and goes up to 65536",
        ),
        ("\"4x001\"", "\"4x001\" is not a register number"),
        ("4000001", "\"4000001\" is not a register number"),
    ];
    for (register, message) in cases {
        assert_only_error(
            "bad_registers",
            &with_point(&format!("  register = {register}\n  type = \"u16\"")),
            &format!("9:14: devices[0].points[0].register: {message}"),
        );
    }
    assert_only_error(
        "register_and_address",
        &with_point("  register = 40001\n  address = 0\n  table = \"holding\"\n  type = \"u16\""),
        "9:14: devices[0].points[0].register: give either `address` (0-based, with `table`) or `register`",
    );
}

#[test]
fn a_missing_field_is_named_at_its_table() {
    // The second device lacks its unit id: the error points at that device's table.
    let text = format!(
        "{}\n[[devices]]\nname = \"m2\"\nconnection = \"tcp\"\naddress = \"127.0.0.2\"\n",
        with_point("  register = 40001\n  type = \"u16\"")
    );
    let error = assert_only_error("missing_unit_id", &text, "12:1: devices[1]: ");
    assert!(error.ends_with("missing field `unit_id`"), "{error}");
    let error = assert_only_error(
        "missing_name",
        &with_point("  register = 40001\n  type = \"u16\"").replace("  name = \"p\"\n", ""),
        "7:3: devices[0].points[0]: ",
    );
    assert!(error.ends_with("missing field `name`"), "{error}");
    assert_only_error(
        "missing_location",
        &with_point("  type = \"u16\""),
        "8:10: devices[0].points[0]: missing location: give `register` (e.g. 40001) or `address` with `table`",
    );
    assert_only_error(
        "missing_table",
        &with_point("  address = 7\n  type = \"u16\""),
        "8:10: devices[0].points[0].table: missing: a point given by `address` needs a `table`",
    );
    assert_only_error(
        "missing_length",
        &with_point("  register = 40001\n  type = \"string\""),
        "10:10: devices[0].points[0].length: missing: a string needs `length`",
    );
    assert_only_error(
        "no_devices",
        "[service]\nlisten = \"127.0.0.1:5000\"\n",
        "1:1: devices: no devices: add at least one [[devices]] table",
    );
}

#[test]
fn a_bad_duration_is_refused_with_an_example() {
    for (value, column, message) in [
        (
            "\"5\"",
            17,
            "\"5\" is not a duration: a number with a unit, e.g. \"250ms\"",
        ),
        ("\"fast\"", 17, "\"fast\" is not a duration"),
        ("\"-1s\"", 17, "\"-1s\" is not a duration"),
        ("\"0s\"", 17, "must be longer than 0"),
    ] {
        let text = with_point("  register = 40001\n  type = \"u16\"").replace(
            "unit_id = 1",
            &format!("unit_id = 1\npoll_interval = {value}"),
        );
        assert_only_error(
            "bad_duration",
            &text,
            &format!("6:{column}: devices[0].poll_interval: {message}"),
        );
    }
    let text = with_point("  register = 40001\n  type = \"u16\"").replace(
        "unit_id = 1",
        "unit_id = 1\npoll_interval = \"1.5s\"\nframe_gap = \"20ms\"\nbackoff_max = \"2m\"",
    );
    let (_, result) = load("good_durations", &text);
    let device = &result.expect("valid durations").devices[0];
    assert_eq!(device.interval, Duration::from_millis(1500));
    assert_eq!(device.frame_gap, Duration::from_millis(20));
    assert_eq!(device.backoff.max, Duration::from_secs(120));
}

#[test]
fn an_unknown_field_names_itself_and_the_fields_that_exist() {
    let error = assert_only_error(
        "unknown_point_field",
        &with_point("  register = 40001\n  type = \"u16\"\n  colour = \"red\""),
        "11:3: devices[0].points[0].colour: unknown field `colour`, expected one of `name`",
    );
    assert!(
        error.contains("`register`") && error.contains("`access`"),
        "{error}"
    );
    assert_only_error(
        "unknown_device_field",
        &with_point("  register = 40001\n  type = \"u16\"")
            .replace("unit_id = 1", "unit_id = 1\nunitid = 2"),
        "6:1: devices[0].unitid: unknown field `unitid`, expected one of",
    );
    assert_only_error(
        "unknown_section",
        &format!(
            "[servce]\nlisten = \"127.0.0.1:1\"\n{}",
            with_point("  register = 40001\n  type = \"u16\"")
        ),
        "1:2: servce: unknown field `servce`, expected one of `service`, `mqtt`, `devices`",
    );
}

#[test]
fn a_value_of_the_wrong_type_names_the_field_not_serde_internals() {
    let error = assert_only_error(
        "float_unit_id",
        &with_point("  register = 40001\n  type = \"u16\"").replace("unit_id = 1", "unit_id = 1.5"),
        "5:11: devices[0].unit_id: invalid type: floating point `1.5`, expected a whole number",
    );
    assert!(!error.contains("serde"), "{error}");
    assert_only_error(
        "string_scale",
        &with_point("  register = 40001\n  type = \"u16\"\n  scale = \"x\""),
        "11:11: devices[0].points[0].scale: invalid type: string \"x\", expected a number",
    );
}

#[test]
fn a_syntax_error_names_its_line_and_column() {
    assert_only_error(
        "syntax",
        "[[devices]\nname = \"m\"\n",
        "1:11: unclosed array table, expected `]`",
    );
    let error = assert_only_error(
        "duplicate_key",
        &with_point("  register = 40001\n  type = \"u16\"\n  type = \"i16\""),
        "11:3: ",
    );
    assert!(error.contains("duplicate key"), "{error}");
}

#[test]
fn duplicates_ranges_and_link_conflicts_are_refused() {
    assert_only_error(
        "unit_id_range_tcp",
        &with_point("  register = 40001\n  type = \"u16\"").replace("unit_id = 1", "unit_id = 256"),
        "5:11: devices[0].unit_id: 256 is outside 0..=255",
    );
    assert_only_error(
        "unit_id_range_rtu",
        &with_point("  register = 40001\n  type = \"u16\"")
            .replace("\"tcp\"", "\"rtu-over-tcp\"")
            .replace("unit_id = 1", "unit_id = 248"),
        "5:11: devices[0].unit_id: 248 is outside 1..=247",
    );
    assert_only_error(
        "duplicate_point",
        &with_point(
            "  register = 40001\n  type = \"u16\"\n\n  [[devices.points]]\n  name = \"p\"\n  register = 40002\n  type = \"u16\"",
        ),
        "13:10: devices[0].points[1]: point name \"p\" is used twice",
    );
    let device = with_point("  register = 40001\n  type = \"u16\"");
    assert_only_error(
        "duplicate_device",
        &format!("{device}\n{device}"),
        "13:8: devices[1].name: device name \"meter\" is used twice (first by devices[0])",
    );
    // One gateway address, two framings: the second device is told.
    let second = device
        .replace("\"meter\"", "\"meter-2\"")
        .replace("\"tcp\"", "\"rtu-over-tcp\"");
    assert_only_error(
        "link_conflict",
        &format!("{device}\n{second}"),
        "14:14: devices[1].connection: ",
    );
    assert_only_error(
        "read_write_input",
        &with_point("  register = 30001\n  type = \"u16\"\n  access = \"read-write\""),
        "11:12: devices[0].points[0].access: input_registers cannot be written: use coils or holding_registers",
    );
}

#[test]
fn every_error_after_parsing_is_reported_at_once() {
    let text = r#"[[devices]]
name = "a"
connection = "tcp"
address = "127.0.0.1"
unit_id = 300
frame_gap = "soon"

  [[devices.points]]
  name = "x"
  register = 40001
  type = "u16"

  [[devices.points]]
  name = "x"
  register = 40002
  type = "f33"

[[devices]]
name = "a"
connection = "rtu"
address = "/dev/ttyUSB0"
unit_id = 0

  [[devices.points]]
  name = "y"
  register = 50000
  type = "u16"
"#;
    let (file, shown) = errors("all_at_once", text);
    let expected = [
        "5:11: devices[0].unit_id: 300 is outside 0..=255",
        "6:13: devices[0].frame_gap: \"soon\" is not a duration",
        "16:10: devices[0].points[1].type: unknown data type \"f33\"",
        "19:8: devices[1].name: device name \"a\" is used twice",
        "22:11: devices[1].unit_id: 0 is outside 1..=247",
        "26:14: devices[1].points[0].register: \"50000\" is not a register number",
    ];
    for prefix in expected {
        let want = format!("{file}:{prefix}");
        assert!(
            shown.iter().any(|e| e.starts_with(&want)),
            "no error starting {want:?} in {shown:#?}"
        );
    }
    assert_eq!(shown.len(), expected.len(), "{shown:#?}");
}

#[test]
fn an_unreadable_file_is_one_error_naming_it() {
    let path = temp_dir("unreadable").join("absent.toml");
    let errors = config::load(&path).expect_err("no such file").0;
    assert_eq!(errors.len(), 1);
    let shown = errors[0].to_string();
    assert!(
        shown.starts_with(&format!("{}:1:1: cannot read the file: ", path.display())),
        "{shown}"
    );
}

#[test]
fn a_valid_file_gives_the_devices_it_describes() {
    let text = r#"[service]
listen = "127.0.0.1:5999"
history = 20

[[devices]]
name = "line"
type = "meter"
connection = "rtu-over-tcp"
address = "127.0.0.1"
port = 5020
unit_id = 7
poll_interval = "250ms"
timeout = "300ms"
retries = 0
enabled = false

  [[devices.points]]
  name = "level"
  register = 40003
  type = "f32"
  order = "cdab"
  unit = "%"
  access = "read-write"

  [[devices.points]]
  name = "energy"
  register = 30010
  type = "u32"
  scale = 2
  offset = 0.5
"#;
    let (_, result) = load("valid", text);
    let config = result.expect("a valid file");
    assert_eq!(config.listen, Some("127.0.0.1:5999".parse().unwrap()));
    let device = &config.devices[0];
    assert_eq!(device.device_type.as_deref(), Some("meter"));
    assert_eq!(device.unit_id, 7);
    assert_eq!(device.interval, Duration::from_millis(250));
    assert_eq!(device.response_timeout, Duration::from_millis(300));
    assert_eq!(device.retries, 0);
    assert_eq!(device.history, 20);
    assert!(!device.enabled);
    assert!(device.writable.contains("level"));
    assert!(!device.writable.contains("energy"));
    match &device.link {
        Link::Tcp {
            address, framing, ..
        } => {
            assert_eq!(address, "127.0.0.1:5020");
            assert_eq!(*framing, Framing::RtuOverTcp);
        }
        other => panic!("{other:?}"),
    }
    let level = device.points.get("level").expect("level");
    assert_eq!((level.table, level.address), (Table::HoldingRegisters, 2));
    assert_eq!(level.unit.as_deref(), Some("%"));
    assert_eq!(level.unit_id, 7, "points carry the device's unit id");
    let energy = device.points.get("energy").expect("energy");
    assert_eq!((energy.table, energy.address), (Table::InputRegisters, 9));
    assert!(matches!(
        energy.kind,
        PointKind::Number { scale: Some(_), .. }
    ));
}

/// A device with two points, for the `[mqtt]` tests.
const MQTT_DEVICE: &str = r#"
[[devices]]
name = "boiler"
connection = "tcp"
address = "127.0.0.1"
unit_id = 1
publish = "change"
deadband = 0.5

  [[devices.points]]
  name = "temperature"
  register = 40001
  type = "f32"

  [[devices.points]]
  name = "pump"
  register = "00001"
  type = "bool"
  publish = "every_poll"
"#;

#[test]
fn the_mqtt_section_gives_broker_mode_queue_and_publish_rules() {
    use modbus_harvest::mqtt::{Mode, Qos, queue::FsyncPolicy};
    let text = format!(
        r#"[mqtt]
broker = "mqtts://broker.plant:8884"
client_id = "line-1"
username = "harvest"
password = "secret"
qos = 2
mode = "sparkplug"
group_id = "plant1"
queue_dir = "spool"
queue_max_mb = 64
fsync = "always"
reconnect_initial = "250ms"
reconnect_max = "10s"
publish = "change"
max_interval = "5m"
{MQTT_DEVICE}"#
    );
    let (file, result) = load("mqtt_section", &text);
    let mqtt = result.unwrap().mqtt.expect("an [mqtt] section");
    assert_eq!(
        (mqtt.broker.host.as_str(), mqtt.broker.port, mqtt.broker.tls),
        ("broker.plant", 8884, true)
    );
    assert_eq!(mqtt.client_id, "line-1");
    assert_eq!(mqtt.credentials, Some(("harvest".into(), "secret".into())));
    assert_eq!(mqtt.qos, Qos::ExactlyOnce);
    assert_eq!(
        mqtt.mode,
        Mode::Sparkplug {
            group_id: "plant1".into(),
            edge_node_id: "line-1".into()
        }
    );
    // A relative queue directory sits next to the file.
    assert_eq!(
        mqtt.queue_dir,
        Path::new(&file).parent().unwrap().join("spool")
    );
    assert_eq!(mqtt.queue_max_bytes, 64 << 20);
    assert_eq!(mqtt.fsync, FsyncPolicy::Always);
    assert_eq!(mqtt.reconnect.initial, Duration::from_millis(250));
    // The device's rule (change, deadband 0.5) keeps the file-wide 5 minute maximum; the
    // pump's own rule publishes every poll.
    let temperature = mqtt.publish.policy("boiler", "temperature");
    assert!(temperature.on_change);
    assert!((temperature.deadband - 0.5).abs() < f64::EPSILON);
    assert_eq!(temperature.max_interval, Some(Duration::from_secs(300)));
    assert!(!mqtt.publish.policy("boiler", "pump").on_change);
    // Defaults: plain mode under `modbus`, QoS 1, port 1883.
    let (_, result) = load(
        "mqtt_defaults",
        &format!("[mqtt]\nbroker = \"mqtt://127.0.0.1\"\n{MQTT_DEVICE}"),
    );
    let mqtt = result.unwrap().mqtt.unwrap();
    assert_eq!(mqtt.broker.port, 1883);
    assert_eq!(mqtt.qos, Qos::AtLeastOnce);
    assert_eq!(
        mqtt.mode,
        Mode::Plain {
            prefix: "modbus".into()
        }
    );
    assert_eq!(mqtt.fsync, FsyncPolicy::Interval(Duration::from_secs(1)));
}

#[test]
fn mqtt_mistakes_are_each_named_at_their_place() {
    let text = format!(
        r#"[mqtt]
broker = "tcp://broker:1883"
qos = 3
mode = "sparkplug"
fsync = "sometimes"
topic_prefix = "plant/#"
deadband = 2
{MQTT_DEVICE}"#
    );
    let (file, messages) = errors("mqtt_mistakes", &text);
    let expect = |place: &str, words: &str| {
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with(&format!("{file}:{place}")) && m.contains(words)),
            "no error at {place} with {words:?} among {messages:#?}"
        );
    };
    expect("2:10: mqtt.broker: ", "mqtts://HOST");
    expect("3:7: mqtt.qos: ", "use 0, 1");
    expect("2:10: mqtt.group_id: ", "needs a group_id");
    expect("5:9: mqtt.fsync: ", "\"always\", \"never\"");
    expect("6:16: mqtt.topic_prefix: ", "is for mode = \"plain\"");
    expect("7:12: mqtt.publish: ", "apply to publish = \"change\"");
    assert_eq!(messages.len(), 6, "{messages:#?}");
    let (file, messages) = errors(
        "mqtt_prefix",
        &format!("[mqtt]\nbroker = \"mqtt://b\"\ntopic_prefix = \"plant/#\"\n{MQTT_DEVICE}"),
    );
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].starts_with(&format!("{file}:3:16: mqtt.topic_prefix: ")),
        "{messages:?}"
    );
    assert!(
        messages[0].contains("must not be empty, contain + or #"),
        "{messages:?}"
    );
}

#[test]
fn names_that_cannot_be_topic_levels_are_refused_under_mqtt() {
    let devices = MQTT_DEVICE
        .replace("\"boiler\"", "\"line/1\"")
        .replace("\"temperature\"", "\"a+b\"")
        .replace("\"pump\"", "\"status\"");
    let text = format!("[mqtt]\nbroker = \"mqtt://b\"\n{devices}");
    let (file, messages) = errors("mqtt_names", &text);
    let expect = |place: &str, words: &str| {
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with(&format!("{file}:{place}")) && m.contains(words)),
            "no error at {place} with {words:?} among {messages:#?}"
        );
    };
    expect("5:8: devices[0].name: ", "'/' cannot be in a name");
    expect(
        "13:10: devices[0].points[0].name: ",
        "'+' cannot be in a name",
    );
    expect(
        "18:10: devices[0].points[1].name: ",
        "device's status topic",
    );
    assert_eq!(messages.len(), 3, "{messages:#?}");
    let service = format!(
        "[mqtt]\nbroker = \"mqtt://b\"\n{}",
        MQTT_DEVICE.replace("\"boiler\"", "\"_service\"")
    );
    assert_only_error("mqtt_service_name", &service, "5:8: devices[0].name: ");
    // Without [mqtt] the names are only names.
    let (_, loaded) = load("mqtt_names_plain", &devices);
    assert!(loaded.is_ok(), "{loaded:?}");
}
