//! The configuration file: every shipped example loads, and each kind of mistake is reported
//! as `file:line:col: field: message` at the place it was made, all of them at once where the
//! loader can go on.

use std::path::Path;

use modbus_harvest::config::{self, ConfigError};
use modbus_stack::frame::Framing;
use modbus_stack::harvest::Link;
use modbus_stack::point::Table;

/// A valid device with one point; `point` replaces the point's fields.
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

fn errors(text: &str) -> Vec<ConfigError> {
    config::parse("plant.toml", text).unwrap_err().0
}

/// The one error of `text`, as displayed.
fn only_error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].to_string()
}

#[test]
fn every_shipped_configuration_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!config.devices.is_empty(), "{}", path.display());
            loaded += 1;
        }
    }
    assert!(loaded >= 2, "only {loaded} example files");
    // plant.toml names serial ports that don't exist here: checking must not open them.
    let plant = config::load(&dir.join("plant.toml")).unwrap();
    assert!(
        plant
            .devices
            .iter()
            .any(|d| matches!(d.link, Link::Serial { .. }))
    );
}

#[test]
fn an_unknown_data_type_names_file_line_column_and_field() {
    let text = with_point("  register = 40001\n  type = \"f33\"");
    let error = only_error(&text);
    assert!(
        error.starts_with(
            "plant.toml:10:10: devices[0].points[0].type: unknown data type \"f33\", expected one of"
        ),
        "{error}"
    );
}

#[test]
fn data_sheet_register_numbers_map_to_table_and_address() {
    let text = format!(
        "{}\n  [[devices.points]]\n  name = \"q\"\n  register = 30017\n  type = \"i16\"\n\n  [[devices.points]]\n  name = \"c\"\n  register = \"00003\"\n  type = \"bool\"\n",
        with_point("  register = 40001\n  type = \"u16\"")
    );
    let config = config::parse("plant.toml", &text).unwrap();
    let points = config.devices[0].points.points();
    let place = |name: &str| {
        let point = points.iter().find(|p| p.name == name).unwrap();
        (point.table, point.address)
    };
    assert_eq!(place("p"), (Table::HoldingRegisters, 0));
    assert_eq!(place("q"), (Table::InputRegisters, 16));
    assert_eq!(place("c"), (Table::Coils, 2));
    // 2xxxx names no table.
    let error = only_error(&with_point("  register = 20001\n  type = \"u16\""));
    assert!(
        error.starts_with("plant.toml:9:14: devices[0].points[0].register: "),
        "{error}"
    );
}

#[test]
fn a_missing_field_a_bad_duration_and_an_unknown_field_are_reported() {
    let missing =
        only_error("[[devices]]\nname = \"m\"\nconnection = \"tcp\"\naddress = \"127.0.0.1\"\n");
    assert!(
        missing.starts_with("plant.toml:1:1: devices[0]"),
        "{missing}"
    );
    assert!(missing.contains("unit_id"), "{missing}");

    let duration = only_error(
        &with_point("  register = 40001\n  type = \"u16\"")
            .replace("unit_id = 1", "unit_id = 1\npoll_interval = \"5\""),
    );
    assert!(
        duration.starts_with("plant.toml:6:17: devices[0].poll_interval: \"5\" is not a duration"),
        "{duration}"
    );

    let unknown = only_error(&with_point(
        "  register = 40001\n  type = \"u16\"\n  colour = \"red\"",
    ));
    assert!(unknown.starts_with("plant.toml:11:3: "), "{unknown}");
    assert!(unknown.contains("colour"), "{unknown}");
}

#[test]
fn checks_after_parsing_report_every_error_at_once() {
    let text = r#"[[devices]]
name = "a"
connection = "tcp"
address = "127.0.0.1"
unit_id = 300

  [[devices.points]]
  name = "x"
  register = 40001
  type = "u16"

  [[devices.points]]
  name = "x"
  register = 40002
  type = "u16"

[[devices]]
name = "a"
connection = "rtu"
address = "/dev/ttyUSB0"
unit_id = 0
"#;
    let errors = errors(text);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let find = |prefix: &str| {
        assert!(
            shown.iter().any(|e| e.starts_with(prefix)),
            "no error starting {prefix:?} in {shown:#?}"
        );
    };
    find("plant.toml:5:11: devices[0].unit_id: ");
    find("plant.toml:13:10: devices[0].points[1]: point name \"x\" is used twice");
    find("plant.toml:18:8: devices[1].name: ");
    find("plant.toml:21:11: devices[1].unit_id: ");
    assert!(errors.len() >= 4, "{shown:#?}");
}

#[test]
fn a_valid_file_gives_the_devices_it_describes() {
    let text = r#"[service]
listen = "127.0.0.1:5999"

[[devices]]
name = "line"
connection = "rtu-over-tcp"
address = "127.0.0.1"
port = 5020
unit_id = 7
poll_interval = "250ms"
timeout = "300ms"
retries = 0

  [[devices.points]]
  name = "level"
  register = 40003
  type = "f32"
  order = "cdab"
  access = "read-write"
"#;
    let config = config::parse("plant.toml", text).unwrap();
    assert_eq!(config.listen, Some("127.0.0.1:5999".parse().unwrap()));
    let device = &config.devices[0];
    assert_eq!(device.unit_id, 7);
    assert_eq!(device.interval.as_millis(), 250);
    assert_eq!(device.response_timeout.as_millis(), 300);
    assert_eq!(device.retries, 0);
    assert!(device.writable.contains("level"));
    match &device.link {
        Link::Tcp { framing, .. } => assert_eq!(*framing, Framing::RtuOverTcp),
        other => panic!("{other:?}"),
    }
}
