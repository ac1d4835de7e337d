//! The Sparkplug B payloads of [`EdgeNode`] read by Eclipse Tahu's JavaScript decoder (npm
//! `sparkplug-payload` 1.0.3, pinned in `tests/sparkplug/`, driven by `tests/sparkplug/decode.mjs`):
//! a node with two devices, points of every type, negative integers at their limits, a stale and
//! a bad value, units, read-only and writable points, a historical DDATA, a device death and a
//! reconnect. Every field Tahu gives back is checked (names, aliases, datatypes, values,
//! properties, flags, `seq`, `bdSeq`), and the raw protobuf fields beside it (`is_null`, which
//! value field, `seq` present or not). The other way, commands encoded by Tahu are parsed here.
//!
//! Needs `node` and `npm ci --prefix harvest/tests/sparkplug` (CI installs both). Without them the
//! test fails and says so, unless `MODBUS_SKIP_SPARKPLUG_JS=1` makes it a visible skip.

mod support;

use modbus_harvest::mqtt::sparkplug::{Command, EdgeNode, MetricSpec, SparkplugError};
use modbus_stack::point::{Point, PointKind, PointValue, Table};
use modbus_stack::value::{DataType, Order, Scale, StringFormat};
use serde_json::{Value, json};
use support::sparkplug_js::{available as decoder_available, hex, run as tahu, unhex};

const T0: u64 = 1_700_000_000_000;

fn number(name: &str, address: u16, data_type: DataType) -> Point {
    Point::new(
        name,
        1,
        Table::HoldingRegisters,
        address,
        PointKind::number(data_type, Order::Abcd),
    )
}

/// `(point, writable)` of the boiler: every kind of point.
fn boiler() -> Vec<(Point, bool)> {
    vec![
        (number("setpoint", 0, DataType::U16).with_unit("°C"), true),
        (
            number("temperature", 1, DataType::I16).with_unit("°C"),
            false,
        ),
        (number("offset", 2, DataType::I32), true),
        (number("counter", 4, DataType::U32), false),
        (number("energy", 6, DataType::U64).with_unit("kWh"), false),
        (number("balance", 10, DataType::I64), true),
        (number("flow", 14, DataType::F32).with_unit("m³/h"), true),
        (number("precise", 16, DataType::F64), false),
        (
            number("level", 20, DataType::I16)
                .with_unit("%")
                .with_scale(Scale::new(0.1, 0.0).unwrap()),
            true,
        ),
        (
            Point::new(
                "label",
                1,
                Table::HoldingRegisters,
                30,
                PointKind::String(StringFormat::new(8)),
            ),
            true,
        ),
        (Point::new("pump", 1, Table::Coils, 0, PointKind::Bit), true),
        (
            Point::new(
                "burner/alarm",
                1,
                Table::InputRegisters,
                0,
                PointKind::RegisterBit { bit: 3 },
            ),
            false,
        ),
    ]
}

fn meter() -> Vec<(Point, bool)> {
    vec![
        (number("power", 0, DataType::F32).with_unit("kW"), false),
        (number("voltage", 2, DataType::U16).with_unit("V"), false),
        (number("imported", 3, DataType::I64).with_unit("Wh"), false),
    ]
}

fn specs(points: &[(Point, bool)]) -> Vec<MetricSpec> {
    points
        .iter()
        .map(|(point, writable)| MetricSpec::for_point(point, *writable))
        .collect()
}

/// The properties Tahu should give for a point: its unit, access and quality.
fn properties(unit: Option<&str>, writable: bool, quality: Option<i64>) -> Value {
    let mut properties = json!({"readOnly": {"type": "Boolean", "value": !writable}});
    if let Some(unit) = unit {
        properties["engUnit"] = json!({"type": "String", "value": unit});
    }
    if let Some(quality) = quality {
        properties["Quality"] = json!({"type": "Int32", "value": quality});
    }
    properties
}

/// A metric of a birth, as Tahu decodes it.
fn born(
    name: &str,
    alias: u64,
    datatype: &str,
    value: &Value,
    properties: &Value,
    at: u64,
) -> Value {
    json!({
        "name": name,
        "alias": alias.to_string(),
        "timestamp": at.to_string(),
        "type": datatype,
        "value": value,
        "properties": properties,
    })
}

/// The raw oneof field name and `is_null` of each metric.
fn wire_fields(answer: &Value) -> Vec<(Value, Value)> {
    answer["raw"]["metrics"]
        .as_array()
        .expect("raw metrics")
        .iter()
        .map(|metric| (metric["value"].clone(), metric["isNull"].clone()))
        .collect()
}

fn tahu_metrics(answer: &Value) -> &Vec<Value> {
    answer["tahu"]["metrics"].as_array().expect("metrics")
}

#[test]
#[allow(clippy::too_many_lines)] // one story: a node's session as Tahu reads it
fn tahu_reads_every_message_of_a_session_as_we_meant_it() {
    if !decoder_available("sparkplug payload test") {
        return;
    }
    let (boiler, meter) = (boiler(), meter());
    let mut node = EdgeNode::new(
        "Plant 1",
        "harvester",
        7,
        vec![
            ("boiler".into(), specs(&boiler)),
            ("meter".into(), specs(&meter)),
        ],
    )
    .unwrap();

    let mut payloads = Vec::new();
    let mut topics = Vec::new();
    let mut push = |(topic, payload): (String, Vec<u8>)| {
        topics.push(topic);
        payloads.push(payload);
    };
    push(node.death(T0 - 1));
    push(node.birth(T0));
    let boiler_values = vec![
        (Some(PointValue::U16(65535)), true),
        (Some(PointValue::I16(-1)), true),
        (Some(PointValue::I32(i32::MIN)), true),
        (Some(PointValue::U32(4_000_000_000)), true),
        (Some(PointValue::U64(u64::MAX)), true),
        (Some(PointValue::I64(i64::MIN)), true),
        (Some(PointValue::F32(-2.25)), false), // read before the device stopped answering
        (None, false),                         // never read
        (Some(PointValue::F64(-12.5)), true),
        (Some(PointValue::Text("Boiler 2".into())), true),
        (Some(PointValue::Bool(true)), true),
        (Some(PointValue::Bool(false)), true),
    ];
    push(node.device_birth("boiler", &boiler_values, T0 + 1).unwrap());
    push(
        node.device_birth(
            "meter",
            &[
                (Some(PointValue::F32(1234.5)), true),
                (Some(PointValue::U16(230)), true),
                (Some(PointValue::I64(-5)), true),
            ],
            T0 + 2,
        )
        .unwrap(),
    );
    push(
        node.device_data(
            "boiler",
            T0 + 1000,
            &[
                (1, Some(PointValue::I16(i16::MIN))),
                (2, Some(PointValue::I32(-123_456))),
                (5, Some(PointValue::I64(-1))),
                (7, Some(PointValue::F64(0.5))),
                (0, None),
            ],
            false,
        )
        .unwrap(),
    );
    // Polls queued while the broker was away, replayed after the reconnect.
    push(
        node.device_data(
            "meter",
            T0 - 60_000,
            &[(0, Some(PointValue::F32(-0.75))), (2, None)],
            true,
        )
        .unwrap(),
    );
    push(node.device_death("meter", T0 + 2000).unwrap());
    // A new connection: the next bdSeq in the will and the birth, seq from 0 again.
    assert_eq!(node.next_bd_seq(), 8);
    push(node.death(T0 + 3000));
    push(node.birth(T0 + 5000));

    let requests: Vec<String> = payloads.iter().map(|payload| hex(payload)).collect();
    let answers = tahu(&requests);
    assert_eq!(topics[0], "spBv1.0/Plant 1/NDEATH/harvester");
    assert_eq!(topics[2], "spBv1.0/Plant 1/DBIRTH/harvester/boiler");
    assert_eq!(topics[4], "spBv1.0/Plant 1/DDATA/harvester/boiler");
    assert_eq!(topics[6], "spBv1.0/Plant 1/DDEATH/harvester/meter");

    // Sequence numbers: none in the deaths, 0 in each NBIRTH, then one more per message.
    let seqs: Vec<&Value> = answers
        .iter()
        .map(|answer| &answer["tahu"]["seq"])
        .collect();
    let expected = [
        Value::Null,
        json!("0"),
        json!("1"),
        json!("2"),
        json!("3"),
        json!("4"),
        json!("5"),
        Value::Null,
        json!("0"),
    ];
    assert_eq!(seqs, expected.iter().collect::<Vec<_>>());
    for index in [0, 7] {
        assert!(
            answers[index]["raw"].get("seq").is_none(),
            "NDEATH with a seq"
        );
    }

    // NDEATH: bdSeq only, as UInt64; the second after the reconnect.
    for (index, bd_seq, at) in [(0, "7", T0 - 1), (7, "8", T0 + 3000)] {
        let metrics = tahu_metrics(&answers[index]);
        assert_eq!(metrics.len(), 1);
        let death = metrics[0].as_object().unwrap();
        assert_eq!(death["name"], "bdSeq");
        assert_eq!(death["type"], "UInt64");
        assert_eq!(death["value"], bd_seq);
        assert_eq!(death["timestamp"], at.to_string());
        assert!(!death.contains_key("alias"));
    }

    // NBIRTH: bdSeq and the rebirth control, by name and alias.
    for (index, bd_seq, at) in [(1, "7", T0), (8, "8", T0 + 5000)] {
        assert_eq!(answers[index]["tahu"]["timestamp"], at.to_string());
        let at = at.to_string();
        assert_eq!(
            answers[index]["tahu"]["metrics"],
            json!([
                {"name": "bdSeq", "alias": "1", "timestamp": at, "type": "UInt64", "value": bd_seq},
                {"name": "Node Control/Rebirth", "alias": "2", "timestamp": at, "type": "Boolean",
                 "value": false},
            ])
        );
    }

    // DBIRTH of the boiler: every metric, the negative limits as negative numbers.
    let values = [
        json!(65535),
        json!(-1),
        json!(i32::MIN),
        json!(4_000_000_000u64),
        json!(u64::MAX.to_string()),
        json!(i64::MIN.to_string()),
        json!(-2.25),
        Value::Null,
        json!(-12.5),
        json!("Boiler 2"),
        json!(true),
        json!(false),
    ];
    let datatypes = [
        "UInt16", "Int16", "Int32", "UInt32", "UInt64", "Int64", "Float", "Double", "Double",
        "String", "Boolean", "Boolean",
    ];
    let qualities = [
        None,
        None,
        None,
        None,
        None,
        None,
        Some(500),
        Some(0),
        None,
        None,
        None,
        None,
    ];
    let metrics = tahu_metrics(&answers[2]);
    assert_eq!(metrics.len(), boiler.len());
    for (index, (point, writable)) in boiler.iter().enumerate() {
        let alias = node.alias("boiler", index).unwrap();
        assert_eq!(alias, 3 + index as u64);
        let expected = born(
            &point.name,
            alias,
            datatypes[index],
            &values[index],
            &properties(point.unit.as_deref(), *writable, qualities[index]),
            T0 + 1,
        );
        assert_eq!(metrics[index], expected, "boiler metric {index}");
    }
    assert_eq!(
        wire_fields(&answers[2]),
        [
            ("intValue", Value::Null),
            ("intValue", Value::Null),
            ("intValue", Value::Null),
            ("longValue", Value::Null),
            ("longValue", Value::Null),
            ("longValue", Value::Null),
            ("floatValue", Value::Null),
            ("", json!(true)),
            ("doubleValue", Value::Null),
            ("stringValue", Value::Null),
            ("booleanValue", Value::Null),
            ("booleanValue", Value::Null),
        ]
        .map(|(field, null)| (
            if field.is_empty() {
                Value::Null
            } else {
                json!(field)
            },
            null
        ))
    );
    // On the wire, negative Int16 and Int32 are their 32-bit two's complement (as Tahu writes).
    assert_eq!(
        answers[2]["raw"]["metrics"][1]["intValue"],
        json!(0xFFFF_FFFFu32)
    );
    assert_eq!(
        answers[2]["raw"]["metrics"][2]["intValue"],
        json!(0x8000_0000u32)
    );

    // DBIRTH of the meter: aliases go on after the boiler's.
    let metrics = tahu_metrics(&answers[3]);
    let expected = [
        ("power", "Float", json!(1234.5), "kW"),
        ("voltage", "UInt16", json!(230), "V"),
        ("imported", "Int64", json!("-5"), "Wh"),
    ];
    assert_eq!(metrics.len(), expected.len());
    for (index, (name, datatype, value, unit)) in expected.iter().enumerate() {
        let alias = 15 + index as u64;
        assert_eq!(node.alias("meter", index), Some(alias));
        let want = born(
            name,
            alias,
            datatype,
            value,
            &properties(Some(unit), false, None),
            T0 + 2,
        );
        assert_eq!(metrics[index], want);
    }

    // DDATA: by alias, no name; datatype, timestamp and value; a null with bad quality.
    let at = (T0 + 1000).to_string();
    assert_eq!(answers[4]["tahu"]["timestamp"], at);
    assert_eq!(
        answers[4]["tahu"]["metrics"],
        json!([
            {"alias": "4", "timestamp": at, "type": "Int16", "value": i16::MIN},
            {"alias": "5", "timestamp": at, "type": "Int32", "value": -123_456},
            {"alias": "8", "timestamp": at, "type": "Int64", "value": "-1"},
            {"alias": "10", "timestamp": at, "type": "Double", "value": 0.5},
            {"alias": "3", "timestamp": at, "type": "UInt16", "value": null,
             "properties": {"Quality": {"type": "Int32", "value": 0}}},
        ])
    );
    assert!(
        answers[4]["raw"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|metric| metric.get("name").is_none())
    );
    assert_eq!(answers[4]["raw"]["metrics"][4]["isNull"], true);

    // Historical DDATA: every metric flagged, timestamps of the readings.
    let at = (T0 - 60_000).to_string();
    assert_eq!(
        answers[5]["tahu"]["metrics"],
        json!([
            {"alias": "15", "timestamp": at, "type": "Float", "value": -0.75, "isHistorical": true},
            {"alias": "17", "timestamp": at, "type": "Int64", "value": null, "isHistorical": true,
             "properties": {"Quality": {"type": "Int32", "value": 0}}},
        ])
    );

    // DDEATH: timestamp and seq only.
    assert_eq!(answers[6]["tahu"]["timestamp"], (T0 + 2000).to_string());
    assert_eq!(answers[6]["tahu"]["metrics"], json!([]));
}

#[test]
fn commands_encoded_by_tahu_are_understood() {
    if !decoder_available("sparkplug command test") {
        return;
    }
    let boiler = boiler();
    let node = EdgeNode::new(
        "Plant 1",
        "harvester",
        0,
        vec![("boiler".into(), specs(&boiler))],
    )
    .unwrap();
    let requests = [
        // A host writing by alias (the specification's way) with Tahu's encoder.
        json!({"timestamp": T0, "metrics": [
            {"alias": 3 + 5, "type": "Int64", "value": -5},
            {"alias": 3 + 2, "type": "Int32", "value": -2_000_000_000},
            {"alias": 3 + 6, "type": "Float", "value": -2.25},
            {"alias": 3 + 8, "type": "Double", "value": -12.5},
        ]}),
        // A host writing by name.
        json!({"timestamp": T0, "metrics": [
            {"name": "setpoint", "type": "UInt16", "value": 65535},
            {"name": "label", "type": "String", "value": "Boiler 3"},
            {"name": "pump", "type": "Boolean", "value": false},
        ]}),
        json!({"timestamp": T0, "metrics": [
            {"name": "Node Control/Rebirth", "type": "Boolean", "value": true},
        ]}),
        // Refused: 70000 does not fit a UInt16; a read-only point.
        json!({"timestamp": T0, "metrics": [{"name": "setpoint", "type": "UInt32", "value": 70000}]}),
        json!({"timestamp": T0, "metrics": [{"name": "temperature", "type": "Int16", "value": -1}]}),
    ];
    let answers = tahu(&requests.iter().map(Value::to_string).collect::<Vec<_>>());
    let encoded: Vec<Vec<u8>> = answers
        .iter()
        .map(|answer| unhex(answer["encoded"].as_str().expect("encoded")))
        .collect();
    let dcmd = "spBv1.0/Plant 1/DCMD/harvester/boiler";
    assert_eq!(
        node.parse_command(dcmd, &encoded[0]),
        Ok(Command::Write {
            device: "boiler".into(),
            writes: vec![
                (5, "balance".into(), PointValue::I64(-5)),
                (2, "offset".into(), PointValue::I32(-2_000_000_000)),
                (6, "flow".into(), PointValue::F32(-2.25)),
                (8, "level".into(), PointValue::F64(-12.5)),
            ],
        })
    );
    assert_eq!(
        node.parse_command(dcmd, &encoded[1]),
        Ok(Command::Write {
            device: "boiler".into(),
            writes: vec![
                (0, "setpoint".into(), PointValue::U16(65535)),
                (9, "label".into(), PointValue::Text("Boiler 3".into())),
                (10, "pump".into(), PointValue::Bool(false)),
            ],
        })
    );
    assert_eq!(
        node.parse_command("spBv1.0/Plant 1/NCMD/harvester", &encoded[2]),
        Ok(Command::Rebirth)
    );
    let error = node.parse_command(dcmd, &encoded[3]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "point \"setpoint\" of device \"boiler\" takes 0..=65535: 70000 is out of range"
    );
    assert!(matches!(
        node.parse_command(dcmd, &encoded[4]),
        Err(SparkplugError::ReadOnly { .. })
    ));
}
