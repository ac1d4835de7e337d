//! Sparkplug B 3.0 for the harvesting service: the protobuf payloads and session rules of one
//! edge node, without I/O.
//!
//! An [`EdgeNode`] is the harvester as a Sparkplug edge node: its devices are the harvested
//! devices, their metrics the points ([`MetricSpec`]). It builds each message's topic and
//! payload (NBIRTH and NDEATH for the node, DBIRTH, DDATA and DDEATH per device), keeps `bdSeq`
//! and `seq`, and turns NCMD and DCMD messages into [`Command`]s. The MQTT connection publishes
//! what it returns: the NDEATH as the connection's will, then NBIRTH, one DBIRTH per device,
//! and DDATA for each poll.
//!
//! Metrics are announced by name and alias in the births and sent by alias only afterwards.
//! Values travel in the field Eclipse Tahu (the reference implementation, by the authors of
//! Ignition's MQTT modules) uses for each type, so its decoders read them back unchanged:
//!
//! | Point | Sparkplug datatype | Value field | [`PointValue`] |
//! |---|---|---|---|
//! | coil, discrete input, register bit | `Boolean` (11) | `boolean_value` | `Bool` |
//! | `u16` | `UInt16` (6) | `int_value` | `U16` |
//! | `i16` | `Int16` (2) | `int_value`, sign-extended to 32 bits | `I16` |
//! | `u32` | `UInt32` (7) | `long_value` | `U32` |
//! | `i32` | `Int32` (3) | `int_value`, two's complement | `I32` |
//! | `u64` | `UInt64` (8) | `long_value` | `U64` |
//! | `i64` | `Int64` (4) | `long_value`, two's complement | `I64` |
//! | `f32` | `Float` (9) | `float_value` | `F32` |
//! | `f64`, and any scaled number | `Double` (10) | `double_value` | `F64` |
//! | string | `String` (12) | `string_value` | `Text` |
//!
//! Negative `Int16` values are sign-extended (−1 is `0xFFFF_FFFF`), not sent as 16-bit patterns:
//! Tahu reads `int_value` of the signed types as an `i32`, so `0x0000_FFFF` would arrive as 65535.
//! The specification's table puts `UInt32` in `int_value`, but both Tahu libraries write and read
//! it in `long_value` (Tahu's JavaScript decoder gives no value for a `UInt32` in `int_value`), so
//! we follow Tahu. Commands are read either way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use modbus_stack::point::{Point, PointKind, PointValue};
use modbus_stack::value::DataType as RegisterType;
use prost::Message as _;

use proto::{Metric, MetricValue, Payload, PropertySet, PropertyValue, PropertyValueKind};

/// The topic namespace of Sparkplug B: every topic starts with it.
pub const NAMESPACE: &str = "spBv1.0";
/// The node metric that carries the birth/death sequence number.
pub const BD_SEQ_METRIC: &str = "bdSeq";
/// The node metric a host sets to `true` in an NCMD to ask for a rebirth.
pub const REBIRTH_METRIC: &str = "Node Control/Rebirth";

// The node's own metrics take the first aliases: the specification wants every metric of a
// birth to carry one once aliases are used, and hosts may send the rebirth command by alias.
const BD_SEQ_ALIAS: u64 = 1;
const REBIRTH_ALIAS: u64 = 2;
const FIRST_POINT_ALIAS: u64 = 3;

/// Property keys Ignition's MQTT Engine maps onto the tag properties of the same names.
const ENG_UNIT: &str = "engUnit";
const READ_ONLY: &str = "readOnly";
/// The specification's quality property: an `Int32`, sent only when the quality is not good.
const QUALITY: &str = "Quality";
const QUALITY_BAD: i32 = 0;
/// The largest NCMD or DCMD read. Writing every point of a large device takes a few KiB;
/// the bound keeps a hostile command from being decoded into hundreds of MiB of metrics.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// How much of a sender's name or value an error repeats (errors are logged and published).
const ECHO_CHARS: usize = 64;
const QUALITY_STALE: i32 = 500;

/// The protobuf messages of `sparkplug_b.proto` (package `org.eclipse.tahu.protobuf`, proto2),
/// with the published field numbers and types; the parts this node does not use (`DataSet`,
/// `Template`, `MetaData`, nested property sets, extensions) are left out, and a decoder skips
/// their fields. Every `optional` field is an `Option`, so a present zero (`seq` 0 in an NBIRTH)
/// is encoded and an absent field (`seq` in an NDEATH) is not.
pub mod proto {
    /// One Sparkplug message body.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Payload {
        /// Milliseconds since the Unix epoch (UTC) when the message was made.
        #[prost(uint64, optional, tag = "1")]
        pub timestamp: Option<u64>,
        /// The metrics.
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
        /// The message sequence number, 0..=255; absent in NDEATH.
        #[prost(uint64, optional, tag = "3")]
        pub seq: Option<u64>,
        /// A schema identifier (unused here).
        #[prost(string, optional, tag = "4")]
        pub uuid: Option<String>,
        /// Opaque bytes (unused here).
        #[prost(bytes = "vec", optional, tag = "5")]
        pub body: Option<Vec<u8>>,
    }

    /// One metric: a point's name or alias, type and value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        /// The name; in births, and in commands from hosts that do not use aliases.
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        /// The alias the births bound to the name.
        #[prost(uint64, optional, tag = "2")]
        pub alias: Option<u64>,
        /// Milliseconds since the Unix epoch (UTC) when the value was read.
        #[prost(uint64, optional, tag = "3")]
        pub timestamp: Option<u64>,
        /// The Sparkplug datatype code ([`DataType`](super::DataType)).
        #[prost(uint32, optional, tag = "4")]
        pub datatype: Option<u32>,
        /// A value replayed from the store-and-forward queue, not a live one.
        #[prost(bool, optional, tag = "5")]
        pub is_historical: Option<bool>,
        /// Not to be stored by historians.
        #[prost(bool, optional, tag = "6")]
        pub is_transient: Option<bool>,
        /// The value is null (a bad or missing reading).
        #[prost(bool, optional, tag = "7")]
        pub is_null: Option<bool>,
        /// Properties (`engUnit`, `readOnly`, `Quality`).
        #[prost(message, optional, tag = "9")]
        pub properties: Option<PropertySet>,
        /// The value.
        #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16")]
        pub value: Option<MetricValue>,
    }

    /// The value fields of a [`Metric`] (one of them).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum MetricValue {
        /// Booleans aside, the types of 32 bits and less (signed ones as their bit pattern).
        #[prost(uint32, tag = "10")]
        IntValue(u32),
        /// The 64-bit types, and `UInt32` as Tahu sends it.
        #[prost(uint64, tag = "11")]
        LongValue(u64),
        /// `Float`.
        #[prost(float, tag = "12")]
        FloatValue(f32),
        /// `Double`.
        #[prost(double, tag = "13")]
        DoubleValue(f64),
        /// `Boolean`.
        #[prost(bool, tag = "14")]
        BooleanValue(bool),
        /// `String` and `Text`.
        #[prost(string, tag = "15")]
        StringValue(String),
        /// `Bytes` and `File`.
        #[prost(bytes = "vec", tag = "16")]
        BytesValue(Vec<u8>),
    }

    /// Properties of a metric: `keys[i]` names `values[i]`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PropertySet {
        /// The names.
        #[prost(string, repeated, tag = "1")]
        pub keys: Vec<String>,
        /// The values.
        #[prost(message, repeated, tag = "2")]
        pub values: Vec<PropertyValue>,
    }

    /// One property value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PropertyValue {
        /// The Sparkplug datatype code.
        #[prost(uint32, optional, tag = "1")]
        pub r#type: Option<u32>,
        /// The value is null.
        #[prost(bool, optional, tag = "2")]
        pub is_null: Option<bool>,
        /// The value.
        #[prost(oneof = "PropertyValueKind", tags = "3, 4, 5, 6, 7, 8")]
        pub value: Option<PropertyValueKind>,
    }

    /// The scalar value fields of a [`PropertyValue`].
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum PropertyValueKind {
        /// Types of 32 bits and less.
        #[prost(uint32, tag = "3")]
        IntValue(u32),
        /// 64-bit types.
        #[prost(uint64, tag = "4")]
        LongValue(u64),
        /// `Float`.
        #[prost(float, tag = "5")]
        FloatValue(f32),
        /// `Double`.
        #[prost(double, tag = "6")]
        DoubleValue(f64),
        /// `Boolean`.
        #[prost(bool, tag = "7")]
        BooleanValue(bool),
        /// `String` and `Text`.
        #[prost(string, tag = "8")]
        StringValue(String),
    }
}

/// The basic Sparkplug datatypes, with their codes in `sparkplug_b.proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// Signed 8-bit.
    Int8 = 1,
    /// Signed 16-bit.
    Int16 = 2,
    /// Signed 32-bit.
    Int32 = 3,
    /// Signed 64-bit.
    Int64 = 4,
    /// Unsigned 8-bit.
    UInt8 = 5,
    /// Unsigned 16-bit.
    UInt16 = 6,
    /// Unsigned 32-bit.
    UInt32 = 7,
    /// Unsigned 64-bit.
    UInt64 = 8,
    /// IEEE 754 single precision.
    Float = 9,
    /// IEEE 754 double precision.
    Double = 10,
    /// A boolean.
    Boolean = 11,
    /// A UTF-8 string.
    String = 12,
    /// Milliseconds since the Unix epoch.
    DateTime = 13,
    /// A UTF-8 text.
    Text = 14,
}

impl DataType {
    const ALL: [Self; 14] = [
        Self::Int8,
        Self::Int16,
        Self::Int32,
        Self::Int64,
        Self::UInt8,
        Self::UInt16,
        Self::UInt32,
        Self::UInt64,
        Self::Float,
        Self::Double,
        Self::Boolean,
        Self::String,
        Self::DateTime,
        Self::Text,
    ];

    /// The code on the wire.
    #[must_use]
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The datatype of a code, if it is a basic one.
    #[must_use]
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|datatype| datatype.code() == code)
    }

    /// The name, as in the schema (`"UInt16"`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Int8 => "Int8",
            Self::Int16 => "Int16",
            Self::Int32 => "Int32",
            Self::Int64 => "Int64",
            Self::UInt8 => "UInt8",
            Self::UInt16 => "UInt16",
            Self::UInt32 => "UInt32",
            Self::UInt64 => "UInt64",
            Self::Float => "Float",
            Self::Double => "Double",
            Self::Boolean => "Boolean",
            Self::String => "String",
            Self::DateTime => "DateTime",
            Self::Text => "Text",
        }
    }

    const fn is_signed(self) -> bool {
        matches!(self, Self::Int8 | Self::Int16 | Self::Int32 | Self::Int64)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the births announce about one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSpec {
    /// The metric name (the point's name; `/` makes folders in hosts).
    pub name: String,
    /// Its datatype; values must be the [`PointValue`] variant it maps to (module table).
    pub datatype: DataType,
    /// Engineering unit, sent as the `engUnit` property.
    pub unit: Option<String>,
    /// Whether DCMD may write it.
    pub writable: bool,
}

impl MetricSpec {
    /// The metric of `point`, with the datatype its values decode to (module table).
    #[must_use]
    pub fn for_point(point: &Point, writable: bool) -> Self {
        let datatype = match point.kind {
            PointKind::Bit | PointKind::RegisterBit { .. } => DataType::Boolean,
            // A scaled point reads as PointValue::F64 in engineering units.
            PointKind::Number { scale: Some(_), .. } => DataType::Double,
            PointKind::Number { data_type, .. } => match data_type {
                RegisterType::U16 => DataType::UInt16,
                RegisterType::I16 => DataType::Int16,
                RegisterType::U32 => DataType::UInt32,
                RegisterType::I32 => DataType::Int32,
                RegisterType::U64 => DataType::UInt64,
                RegisterType::I64 => DataType::Int64,
                RegisterType::F32 => DataType::Float,
                RegisterType::F64 => DataType::Double,
            },
            PointKind::String(_) => DataType::String,
        };
        Self {
            name: point.name.clone(),
            datatype,
            unit: point.unit.clone(),
            writable,
        }
    }
}

/// What a host asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// NCMD `Node Control/Rebirth` = `true`: publish NBIRTH and every DBIRTH again, with the
    /// same `bdSeq`.
    Rebirth,
    /// DCMD: write these points of `device`, in this order.
    Write {
        /// The device.
        device: String,
        /// `(point index, point name, value)`, each value of the point's own type.
        writes: Vec<(usize, String, PointValue)>,
    },
}

/// Why a Sparkplug message could not be made or a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SparkplugError {
    /// A group, edge node or device id that cannot be a topic level.
    #[error(
        "sparkplug {what} {id:?} {problem}: ids are MQTT topic levels, so they must not be empty \
         or contain '/', '+' or '#'"
    )]
    InvalidId {
        /// `"group id"`, `"edge node id"` or `"device id"`.
        what: &'static str,
        /// The id.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A `bdSeq` beyond 255.
    #[error("bdSeq {bd_seq} is out of range: Sparkplug's bdSeq is 0..=255")]
    BdSeqOutOfRange {
        /// The value given.
        bd_seq: u64,
    },
    /// Two devices with one name.
    #[error("device {device:?} is given twice: device ids must be unique within an edge node")]
    DuplicateDevice {
        /// The name.
        device: String,
    },
    /// Two metrics of a device with one name.
    #[error("device {device:?} has two metrics named {metric:?}: rename one")]
    DuplicateMetric {
        /// The device.
        device: String,
        /// The name.
        metric: String,
    },
    /// A metric without a name.
    #[error("device {device:?} has a metric with an empty name: Sparkplug metrics need one")]
    EmptyMetricName {
        /// The device.
        device: String,
    },
    /// A device the node was not built with.
    #[error("edge node has no device {device:?}")]
    UnknownDevice {
        /// The name asked for.
        device: String,
    },
    /// A point index past the device's points.
    #[error("device {device:?} has {points} points: there is no point {index}")]
    UnknownPoint {
        /// The device.
        device: String,
        /// The index given.
        index: usize,
        /// How many points it has.
        points: usize,
    },
    /// A value of another type than the metric's (the caller mixed up points).
    #[error("point {point:?} of device {device:?} is {datatype} in Sparkplug, not {value:?}")]
    ValueMismatch {
        /// The device.
        device: String,
        /// The point.
        point: String,
        /// The metric's datatype.
        datatype: DataType,
        /// The value given.
        value: String,
    },
    /// More birth values than the device has points.
    #[error("device {device:?} has {points} points, but {given} values were given for its birth")]
    TooManyValues {
        /// The device.
        device: String,
        /// Its points.
        points: usize,
        /// The values given.
        given: usize,
    },
    /// A topic that is not this node's NCMD or DCMD topic.
    #[error(
        "{topic:?} is not a command topic of this edge node (spBv1.0/GROUP/NCMD/NODE or \
         spBv1.0/GROUP/DCMD/NODE/DEVICE)"
    )]
    NotACommandTopic {
        /// The topic.
        topic: String,
    },
    /// A command larger than [`MAX_COMMAND_BYTES`].
    #[error(
        "the command on {topic:?} has {bytes} bytes, more than the {MAX_COMMAND_BYTES} read: \
         split the write into smaller commands"
    )]
    CommandTooLarge {
        /// The topic.
        topic: String,
        /// Its size.
        bytes: usize,
    },
    /// A payload that is not a Sparkplug B protobuf.
    #[error("the payload on {topic:?} is not a Sparkplug B payload: {reason}")]
    Decode {
        /// The topic.
        topic: String,
        /// What the protobuf decoder said.
        reason: String,
    },
    /// An NCMD without `Node Control/Rebirth` = `true`.
    #[error("NCMD {metric}: the only node command supported is 'Node Control/Rebirth' = true")]
    UnsupportedNodeCommand {
        /// What the NCMD carried instead.
        metric: String,
    },
    /// A DCMD without metrics.
    #[error("the DCMD for device {device:?} has no metrics")]
    EmptyCommand {
        /// The device.
        device: String,
    },
    /// A DCMD metric that names no point of the device.
    #[error("device {device:?} has no metric {metric}")]
    UnknownMetric {
        /// The device.
        device: String,
        /// The name (quoted) or `alias N` the command used.
        metric: String,
    },
    /// A DCMD metric whose alias and name are different points.
    #[error("DCMD alias {alias} is point {point:?} of device {device:?}, but its name is {name:?}")]
    AliasMismatch {
        /// The device.
        device: String,
        /// The alias.
        alias: u64,
        /// The point the alias is bound to.
        point: String,
        /// The name the metric gave.
        name: String,
    },
    /// A DCMD for a point that is not writable.
    #[error(
        "point {point:?} of device {device:?} is read-only: give it access = \"read-write\" in \
         the configuration to allow writes"
    )]
    ReadOnly {
        /// The device.
        device: String,
        /// The point.
        point: String,
    },
    /// A DCMD naming one point twice.
    #[error("the DCMD names point {point:?} of device {device:?} twice: send one value per point")]
    DuplicateWrite {
        /// The device.
        device: String,
        /// The point.
        point: String,
    },
    /// A DCMD metric that is null or carries no value.
    #[error("the DCMD for point {point:?} of device {device:?} carries no value")]
    NullWrite {
        /// The device.
        device: String,
        /// The point.
        point: String,
    },
    /// A DCMD value of the wrong kind.
    #[error("point {point:?} of device {device:?} is {expected}: the DCMD sent {got}")]
    WrongType {
        /// The device.
        device: String,
        /// The point.
        point: String,
        /// The point's datatype.
        expected: DataType,
        /// What came instead (`"a string"`).
        got: &'static str,
    },
    /// A DCMD number outside the point's range.
    #[error("point {point:?} of device {device:?} takes {range}: {value} is out of range")]
    OutOfRange {
        /// The device.
        device: String,
        /// The point.
        point: String,
        /// The value sent.
        value: String,
        /// The values it takes (`"0..=65535"`).
        range: &'static str,
    },
    /// A DCMD number the point's type cannot hold exactly (a fraction for an integer).
    #[error(
        "point {point:?} of device {device:?} is {datatype}: {value} has no exact {datatype} value"
    )]
    NotExact {
        /// The device.
        device: String,
        /// The point.
        point: String,
        /// The value sent.
        value: String,
        /// The point's datatype.
        datatype: DataType,
    },
}

#[derive(Debug, Clone)]
struct Device {
    name: String,
    metrics: Vec<MetricSpec>,
    first_alias: u64,
    /// `spBv1.0/GROUP/DDATA/NODE/DEVICE`, built once: it goes with every poll.
    data_topic: String,
}

impl Device {
    fn alias(&self, index: usize) -> u64 {
        self.first_alias + index as u64
    }

    fn metric(&self, index: usize) -> Result<&MetricSpec, SparkplugError> {
        self.metrics
            .get(index)
            .ok_or_else(|| SparkplugError::UnknownPoint {
                device: self.name.clone(),
                index,
                points: self.metrics.len(),
            })
    }
}

/// One Sparkplug edge node: its ids, devices and metric aliases, and the session counters.
///
/// Message order is the caller's: [`death`](Self::death) as the will of each MQTT connection,
/// then [`birth`](Self::birth), a [`device_birth`](Self::device_birth) per live device, and
/// [`device_data`](Self::device_data); [`device_death`](Self::device_death) when a device stops
/// answering. Every message but the NDEATH takes the next `seq` (0..=255, wrapping); NBIRTH
/// resets it to 0.
///
/// Aliases are assigned once, at [`new`](Self::new): 1 and 2 for `bdSeq` and
/// `Node Control/Rebirth`, then 3, 4, … through the devices' points in the order given, so the
/// same configuration always gets the same aliases. Hosts rebind aliases at every birth, so a
/// changed configuration is safe too.
#[derive(Debug, Clone)]
pub struct EdgeNode {
    group_id: String,
    node_id: String,
    bd_seq: u64,
    seq: u8,
    devices: Vec<Device>,
    by_name: BTreeMap<String, usize>,
}

impl EdgeNode {
    /// A node in group `group_id` named `edge_node_id`, with `bd_seq` for its first session and
    /// `devices` as `(device id, metrics)` in alias order.
    ///
    /// # Errors
    /// [`SparkplugError::InvalidId`] for an id that cannot be a topic level,
    /// [`SparkplugError::BdSeqOutOfRange`], [`SparkplugError::DuplicateDevice`],
    /// [`SparkplugError::DuplicateMetric`] and [`SparkplugError::EmptyMetricName`].
    pub fn new(
        group_id: &str,
        edge_node_id: &str,
        bd_seq: u64,
        devices: Vec<(String, Vec<MetricSpec>)>,
    ) -> Result<Self, SparkplugError> {
        check_id("group id", group_id)?;
        check_id("edge node id", edge_node_id)?;
        if bd_seq > 255 {
            return Err(SparkplugError::BdSeqOutOfRange { bd_seq });
        }
        let mut by_name = BTreeMap::new();
        let mut list = Vec::with_capacity(devices.len());
        let mut next_alias = FIRST_POINT_ALIAS;
        for (name, metrics) in devices {
            check_id("device id", &name)?;
            if by_name.insert(name.clone(), list.len()).is_some() {
                return Err(SparkplugError::DuplicateDevice { device: name });
            }
            let mut names = BTreeSet::new();
            for metric in &metrics {
                if metric.name.is_empty() {
                    return Err(SparkplugError::EmptyMetricName { device: name });
                }
                if !names.insert(metric.name.as_str()) {
                    return Err(SparkplugError::DuplicateMetric {
                        device: name.clone(),
                        metric: metric.name.clone(),
                    });
                }
            }
            let first_alias = next_alias;
            next_alias += metrics.len() as u64;
            list.push(Device {
                data_topic: format!("{NAMESPACE}/{group_id}/DDATA/{edge_node_id}/{name}"),
                name,
                metrics,
                first_alias,
            });
        }
        Ok(Self {
            group_id: group_id.to_owned(),
            node_id: edge_node_id.to_owned(),
            bd_seq,
            seq: 0,
            devices: list,
            by_name,
        })
    }

    /// The group id.
    #[must_use]
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The edge node id.
    #[must_use]
    pub fn edge_node_id(&self) -> &str {
        &self.node_id
    }

    /// The `bdSeq` of the current session.
    #[must_use]
    pub fn bd_seq(&self) -> u64 {
        self.bd_seq
    }

    /// The alias of point `point` (its index) of `device`.
    #[must_use]
    pub fn alias(&self, device: &str, point: usize) -> Option<u64> {
        let device = self.devices.get(*self.by_name.get(device)?)?;
        (point < device.metrics.len()).then(|| device.alias(point))
    }

    /// The NDEATH: topic `spBv1.0/GROUP/NDEATH/NODE` and a payload with the current `bdSeq`
    /// (`UInt64`) and no `seq`, as the specification wants, stamped `now_ms`. It goes into the
    /// MQTT will of each connection (made before the connection exists, so the time is that
    /// of the will, not of the death) and is published on a clean shutdown.
    #[must_use]
    pub fn death(&self, now_ms: u64) -> (String, Vec<u8>) {
        let payload = Payload {
            timestamp: Some(now_ms),
            metrics: vec![self.bd_seq_metric(now_ms, None)],
            ..Payload::default()
        };
        (self.topic("NDEATH", None), payload.encode_to_vec())
    }

    /// The NBIRTH, at `now_ms` (milliseconds since the Unix epoch): `seq` 0 (the counter starts
    /// again), `bdSeq` (`UInt64`) and `Node Control/Rebirth` (`Boolean` `false`). For a rebirth,
    /// call it again and then [`device_birth`](Self::device_birth) for every live device; the
    /// `bdSeq` stays, as the session does.
    pub fn birth(&mut self, now_ms: u64) -> (String, Vec<u8>) {
        self.seq = 0;
        let seq = self.take_seq();
        let payload = Payload {
            timestamp: Some(now_ms),
            metrics: vec![
                self.bd_seq_metric(now_ms, Some(BD_SEQ_ALIAS)),
                Metric {
                    name: Some(REBIRTH_METRIC.into()),
                    alias: Some(REBIRTH_ALIAS),
                    timestamp: Some(now_ms),
                    datatype: Some(DataType::Boolean.code()),
                    value: Some(MetricValue::BooleanValue(false)),
                    ..Metric::default()
                },
            ],
            seq: Some(seq),
            ..Payload::default()
        };
        (self.topic("NBIRTH", None), payload.encode_to_vec())
    }

    /// The DBIRTH of `device` at `now_ms`: every metric with name, alias, datatype and its
    /// current value from `values` (one `(value, good)` per point, in point order; missing ones
    /// at the end count as not read). Properties: `engUnit` (`String`) when the point has a
    /// unit; `readOnly` (`Boolean`): Ignition's MQTT Engine sets the tag properties of the same
    /// names from metric properties, so `true` makes the tag refuse writes before any DCMD is
    /// sent; and, when the value is
    /// not good, the specification's `Quality` (`Int32`): 500 (stale) for a value read earlier,
    /// or 0 (bad) with `is_null` when there is none. A good value has no `Quality` (the
    /// specification's default).
    ///
    /// # Errors
    /// [`SparkplugError::UnknownDevice`], [`SparkplugError::TooManyValues`], and
    /// [`SparkplugError::ValueMismatch`] for a value of another type than its metric's. A
    /// refused birth takes no `seq`.
    pub fn device_birth(
        &mut self,
        device: &str,
        values: &[(Option<PointValue>, bool)],
        now_ms: u64,
    ) -> Result<(String, Vec<u8>), SparkplugError> {
        let spec = self.device(device)?;
        if values.len() > spec.metrics.len() {
            return Err(SparkplugError::TooManyValues {
                device: spec.name.clone(),
                points: spec.metrics.len(),
                given: values.len(),
            });
        }
        let mut metrics = Vec::with_capacity(spec.metrics.len());
        for (index, metric) in spec.metrics.iter().enumerate() {
            let (value, good) = values
                .get(index)
                .map_or((None, false), |(value, good)| (value.as_ref(), *good));
            let value = value
                .map(|value| metric_value(spec, metric, value))
                .transpose()?;
            let mut properties = PropertySet::default();
            if let Some(unit) = &metric.unit {
                push_property(
                    &mut properties,
                    ENG_UNIT,
                    DataType::String,
                    PropertyValueKind::StringValue(unit.clone()),
                );
            }
            push_property(
                &mut properties,
                READ_ONLY,
                DataType::Boolean,
                PropertyValueKind::BooleanValue(!metric.writable),
            );
            match (&value, good) {
                (None, _) => push_quality(&mut properties, QUALITY_BAD),
                (Some(_), false) => push_quality(&mut properties, QUALITY_STALE),
                (Some(_), true) => {}
            }
            metrics.push(Metric {
                name: Some(metric.name.clone()),
                alias: Some(spec.alias(index)),
                timestamp: Some(now_ms),
                datatype: Some(metric.datatype.code()),
                is_null: value.is_none().then_some(true),
                properties: Some(properties),
                value,
                ..Metric::default()
            });
        }
        let topic = self.topic("DBIRTH", Some(device));
        Ok((topic, self.sequenced(now_ms, metrics)))
    }

    /// The DDATA of `device`: `metrics` as `(point index, value)`, read at `timestamp_ms`,
    /// each by alias only (no name), with its timestamp, datatype and value; `None` is sent as
    /// `is_null` with `Quality` 0 (bad). `historical` marks every metric `is_historical`: for
    /// readings replayed from the queue after a reconnect, which hosts store without
    /// overwriting the live value. The datatype is sent although the specification makes it
    /// optional after the birth: decoders that read values by datatype, Tahu's among them,
    /// find no value without it.
    ///
    /// # Errors
    /// [`SparkplugError::UnknownDevice`], [`SparkplugError::UnknownPoint`] and
    /// [`SparkplugError::ValueMismatch`]; a refused message takes no `seq`.
    pub fn device_data(
        &mut self,
        device: &str,
        timestamp_ms: u64,
        metrics: &[(usize, Option<PointValue>)],
        historical: bool,
    ) -> Result<(String, Vec<u8>), SparkplugError> {
        let spec = self.device(device)?;
        let mut out = Vec::with_capacity(metrics.len());
        for (index, value) in metrics {
            let metric = spec.metric(*index)?;
            let value = value
                .as_ref()
                .map(|value| metric_value(spec, metric, value))
                .transpose()?;
            let properties = value.is_none().then(|| {
                let mut properties = PropertySet::default();
                push_quality(&mut properties, QUALITY_BAD);
                properties
            });
            out.push(Metric {
                alias: Some(spec.alias(*index)),
                timestamp: Some(timestamp_ms),
                datatype: Some(metric.datatype.code()),
                is_historical: historical.then_some(true),
                is_null: value.is_none().then_some(true),
                properties,
                value,
                ..Metric::default()
            });
        }
        let topic = spec.data_topic.clone();
        Ok((topic, self.sequenced(timestamp_ms, out)))
    }

    /// The DDEATH of `device` at `now_ms`: a timestamp and `seq`, no metrics. Hosts mark the
    /// device's metrics stale until its next DBIRTH.
    ///
    /// # Errors
    /// [`SparkplugError::UnknownDevice`].
    pub fn device_death(
        &mut self,
        device: &str,
        now_ms: u64,
    ) -> Result<(String, Vec<u8>), SparkplugError> {
        self.device(device)?;
        let topic = self.topic("DDEATH", Some(device));
        Ok((topic, self.sequenced(now_ms, Vec::new())))
    }

    /// Moves to the `bdSeq` of a new MQTT connection (one more, 255 wrapping to 0) and returns
    /// it. Call it before each reconnect and put the new [`death`](Self::death) in the will;
    /// a rebirth on the same connection keeps the `bdSeq`.
    pub fn next_bd_seq(&mut self) -> u64 {
        self.bd_seq = (self.bd_seq + 1) % 256;
        self.bd_seq
    }

    /// The topics to subscribe to: `spBv1.0/GROUP/NCMD/NODE` and `spBv1.0/GROUP/DCMD/NODE/+`.
    #[must_use]
    pub fn command_topics(&self) -> [String; 2] {
        [self.topic("NCMD", None), self.topic("DCMD", Some("+"))]
    }

    /// Reads a command published on `topic`.
    ///
    /// NCMD: `Node Control/Rebirth` = `true` (by name or alias) is [`Command::Rebirth`]. DCMD:
    /// each metric, by alias or name, must be a writable point of the device; its value is
    /// converted to the point's type, exactly (a whole number for an integer point, within its
    /// range; a `Float` point takes the nearest `f32` of a finite `Double`). Signed integers are
    /// read as Tahu writes them, and also as bare 8- or 16-bit patterns. The whole command is
    /// checked before anything is returned, so a bad metric never leaves half a write done.
    ///
    /// # Errors
    /// Every refusal is a [`SparkplugError`] naming the device, point and what to change:
    /// another node's or an unknown topic, a payload that does not decode, an unknown device or
    /// metric, a read-only point, a null, a value of the wrong type, out of range or not exact.
    pub fn parse_command(&self, topic: &str, payload: &[u8]) -> Result<Command, SparkplugError> {
        let target = self.command_target(topic)?;
        if payload.len() > MAX_COMMAND_BYTES {
            return Err(SparkplugError::CommandTooLarge {
                topic: topic.to_owned(),
                bytes: payload.len(),
            });
        }
        let payload = Payload::decode(payload).map_err(|error| SparkplugError::Decode {
            topic: topic.to_owned(),
            reason: error.to_string(),
        })?;
        match target {
            None => node_command(&payload),
            Some(device) => device_command(device, &payload),
        }
    }

    /// `None` for the node's NCMD topic, the device for a DCMD topic.
    fn command_target(&self, topic: &str) -> Result<Option<&Device>, SparkplugError> {
        let not_ours = || SparkplugError::NotACommandTopic {
            topic: topic.to_owned(),
        };
        let rest = topic
            .strip_prefix(NAMESPACE)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(not_ours)?;
        let mut levels = rest.splitn(4, '/');
        let (Some(group), Some(verb), Some(node)) = (levels.next(), levels.next(), levels.next())
        else {
            return Err(not_ours());
        };
        if group != self.group_id || node != self.node_id {
            return Err(not_ours());
        }
        match (verb, levels.next()) {
            ("NCMD", None) => Ok(None),
            ("DCMD", Some(device)) => self.device(device).map(Some),
            _ => Err(not_ours()),
        }
    }

    fn device(&self, name: &str) -> Result<&Device, SparkplugError> {
        self.by_name
            .get(name)
            .and_then(|&index| self.devices.get(index))
            .ok_or_else(|| SparkplugError::UnknownDevice {
                device: name.to_owned(),
            })
    }

    fn topic(&self, verb: &str, device: Option<&str>) -> String {
        let mut topic = format!("{NAMESPACE}/{}/{verb}/{}", self.group_id, self.node_id);
        if let Some(device) = device {
            topic.push('/');
            topic.push_str(device);
        }
        topic
    }

    /// `bdSeq` (`UInt64`) at `now_ms`: by name only in the NDEATH (the will outlives the
    /// session's aliases), with its alias in the NBIRTH.
    fn bd_seq_metric(&self, now_ms: u64, alias: Option<u64>) -> Metric {
        Metric {
            name: Some(BD_SEQ_METRIC.into()),
            alias,
            timestamp: Some(now_ms),
            datatype: Some(DataType::UInt64.code()),
            value: Some(MetricValue::LongValue(self.bd_seq)),
            ..Metric::default()
        }
    }

    /// The current `seq`, moving the counter on (255 wraps to 0).
    fn take_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        u64::from(seq)
    }

    /// A payload of `metrics` with the next `seq`.
    fn sequenced(&mut self, timestamp_ms: u64, metrics: Vec<Metric>) -> Vec<u8> {
        Payload {
            timestamp: Some(timestamp_ms),
            metrics,
            seq: Some(self.take_seq()),
            ..Payload::default()
        }
        .encode_to_vec()
    }
}

fn check_id(what: &'static str, id: &str) -> Result<(), SparkplugError> {
    let problem = if id.is_empty() {
        "is empty"
    } else if id.contains('/') {
        "contains '/'"
    } else if id.contains('+') {
        "contains '+'"
    } else if id.contains('#') {
        "contains '#'"
    } else {
        return Ok(());
    };
    Err(SparkplugError::InvalidId {
        what,
        id: id.to_owned(),
        problem,
    })
}

fn push_property(set: &mut PropertySet, key: &str, datatype: DataType, value: PropertyValueKind) {
    set.keys.push(key.to_owned());
    set.values.push(PropertyValue {
        r#type: Some(datatype.code()),
        is_null: None,
        value: Some(value),
    });
}

fn push_quality(set: &mut PropertySet, quality: i32) {
    push_property(
        set,
        QUALITY,
        DataType::Int32,
        PropertyValueKind::IntValue(i32_bits(quality)),
    );
}

/// The two's complement bit pattern of `value`, as `int_value` carries signed integers.
const fn i32_bits(value: i32) -> u32 {
    u32::from_ne_bytes(value.to_ne_bytes())
}

/// The two's complement bit pattern of `value`, as `long_value` carries signed integers.
const fn i64_bits(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

/// `value` in the field its metric's datatype uses (module table).
fn metric_value(
    device: &Device,
    metric: &MetricSpec,
    value: &PointValue,
) -> Result<MetricValue, SparkplugError> {
    Ok(match (metric.datatype, value) {
        (DataType::Boolean, PointValue::Bool(on)) => MetricValue::BooleanValue(*on),
        (DataType::UInt16, PointValue::U16(v)) => MetricValue::IntValue(u32::from(*v)),
        // Sign-extended to 32 bits: Tahu reads int_value of the signed types as an i32.
        (DataType::Int16, PointValue::I16(v)) => MetricValue::IntValue(i32_bits(i32::from(*v))),
        // long_value, as both Tahu libraries write and read UInt32 (module docs).
        (DataType::UInt32, PointValue::U32(v)) => MetricValue::LongValue(u64::from(*v)),
        (DataType::Int32, PointValue::I32(v)) => MetricValue::IntValue(i32_bits(*v)),
        (DataType::UInt64, PointValue::U64(v)) => MetricValue::LongValue(*v),
        (DataType::Int64, PointValue::I64(v)) => MetricValue::LongValue(i64_bits(*v)),
        (DataType::Float, PointValue::F32(v)) => MetricValue::FloatValue(*v),
        (DataType::Double, PointValue::F64(v)) => MetricValue::DoubleValue(*v),
        (DataType::String | DataType::Text, PointValue::Text(text)) => {
            MetricValue::StringValue(text.clone())
        }
        (datatype, value) => {
            return Err(SparkplugError::ValueMismatch {
                device: device.name.clone(),
                point: metric.name.clone(),
                datatype,
                value: format!("{value:?}"),
            });
        }
    })
}

/// At most [`ECHO_CHARS`] of a sender's text, marked when cut.
fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn node_command(payload: &Payload) -> Result<Command, SparkplugError> {
    let is_rebirth = |metric: &Metric| {
        metric.alias == Some(REBIRTH_ALIAS) || metric.name.as_deref() == Some(REBIRTH_METRIC)
    };
    if payload
        .metrics
        .iter()
        .any(|metric| is_rebirth(metric) && metric.value == Some(MetricValue::BooleanValue(true)))
    {
        return Ok(Command::Rebirth);
    }
    let metric = match payload.metrics.first() {
        None => "has no metrics".to_owned(),
        Some(metric) if is_rebirth(metric) => {
            format!(
                "sets {REBIRTH_METRIC:?} to {}",
                echo(&format!("{:?}", metric.value))
            )
        }
        Some(metric) => match (&metric.name, metric.alias) {
            (Some(name), _) => format!("names {:?}", echo(name)),
            (None, Some(alias)) => format!("names alias {alias}"),
            (None, None) => "has a metric without name or alias".to_owned(),
        },
    };
    Err(SparkplugError::UnsupportedNodeCommand { metric })
}

fn device_command(device: &Device, payload: &Payload) -> Result<Command, SparkplugError> {
    if payload.metrics.is_empty() {
        return Err(SparkplugError::EmptyCommand {
            device: device.name.clone(),
        });
    }
    // A flag per point, not a search per metric: a large hostile DCMD stays linear.
    let mut seen = vec![false; device.metrics.len()];
    let mut writes = Vec::with_capacity(payload.metrics.len().min(device.metrics.len()));
    for metric in &payload.metrics {
        let index = resolve(device, metric)?;
        let spec = device.metric(index)?;
        let refusal = |point: &MetricSpec| (device.name.clone(), point.name.clone());
        if !spec.writable {
            let (device, point) = refusal(spec);
            return Err(SparkplugError::ReadOnly { device, point });
        }
        if let Some(seen) = seen.get_mut(index) {
            if *seen {
                let (device, point) = refusal(spec);
                return Err(SparkplugError::DuplicateWrite { device, point });
            }
            *seen = true;
        }
        let value = command_value(device, spec, metric)?;
        writes.push((index, spec.name.clone(), value));
    }
    Ok(Command::Write {
        device: device.name.clone(),
        writes,
    })
}

/// The point a DCMD metric means: by alias when it has one (checked against its name, if
/// given too), else by name.
fn resolve(device: &Device, metric: &Metric) -> Result<usize, SparkplugError> {
    let unknown = |metric: String| SparkplugError::UnknownMetric {
        device: device.name.clone(),
        metric,
    };
    match (metric.alias, metric.name.as_deref()) {
        (Some(alias), name) => {
            let index = alias
                .checked_sub(device.first_alias)
                .and_then(|offset| usize::try_from(offset).ok())
                .filter(|&index| index < device.metrics.len())
                .ok_or_else(|| unknown(format!("alias {alias}")))?;
            let point = device.metric(index)?;
            match name {
                Some(name) if name != point.name => Err(SparkplugError::AliasMismatch {
                    device: device.name.clone(),
                    alias,
                    point: point.name.clone(),
                    name: echo(name),
                }),
                _ => Ok(index),
            }
        }
        (None, Some(name)) => device
            .metrics
            .iter()
            .position(|point| point.name == name)
            .ok_or_else(|| unknown(format!("{:?}", echo(name)))),
        (None, None) => Err(unknown("without name or alias".to_owned())),
    }
}

/// A DCMD value before it is fitted to a point.
enum Incoming {
    Bool(bool),
    Integer(i128),
    Real(f64),
    Text(String),
    Bytes,
}

impl Incoming {
    const fn kind(&self) -> &'static str {
        match self {
            Self::Bool(_) => "a boolean",
            Self::Integer(_) | Self::Real(_) => "a number",
            Self::Text(_) => "a string",
            Self::Bytes => "bytes",
        }
    }
}

/// Reads `raw` from `int_value` as a number of `datatype`.
fn from_int_value(datatype: DataType, raw: u32) -> i128 {
    let signed = i128::from(i32::from_ne_bytes(raw.to_ne_bytes()));
    match datatype {
        // The bare 8- or 16-bit pattern of a negative number, which some encoders send instead
        // of its sign extension; as a sign-extended value it would be out of range anyway.
        DataType::Int8 if (0x80..=0xFF).contains(&raw) => i128::from(raw) - 0x100,
        DataType::Int16 if (0x8000..=0xFFFF).contains(&raw) => i128::from(raw) - 0x1_0000,
        datatype if datatype.is_signed() => signed,
        _ => i128::from(raw),
    }
}

/// The DCMD metric's value as a value of `point`'s type.
fn command_value(
    device: &Device,
    point: &MetricSpec,
    metric: &Metric,
) -> Result<PointValue, SparkplugError> {
    let names = || (device.name.clone(), point.name.clone());
    // The sender's datatype says how to read a signed integer; without one, ours does. A code
    // Sparkplug does not define says nothing we can read the value by.
    let datatype = match metric.datatype {
        None => point.datatype,
        Some(code) => DataType::from_code(code).ok_or_else(|| {
            let (device, point_name) = names();
            SparkplugError::WrongType {
                device,
                point: point_name,
                expected: point.datatype,
                got: "a datatype Sparkplug does not define",
            }
        })?,
    };
    let incoming = match (&metric.value, metric.is_null) {
        (_, Some(true)) | (None, _) => {
            let (device, point) = names();
            return Err(SparkplugError::NullWrite { device, point });
        }
        (Some(value), _) => match value {
            MetricValue::IntValue(raw) => Incoming::Integer(from_int_value(datatype, *raw)),
            MetricValue::LongValue(raw) if datatype.is_signed() => {
                Incoming::Integer(i128::from(i64::from_ne_bytes(raw.to_ne_bytes())))
            }
            MetricValue::LongValue(raw) => Incoming::Integer(i128::from(*raw)),
            MetricValue::FloatValue(real) => Incoming::Real(f64::from(*real)),
            MetricValue::DoubleValue(real) => Incoming::Real(*real),
            MetricValue::BooleanValue(on) => Incoming::Bool(*on),
            MetricValue::StringValue(text) => Incoming::Text(text.clone()),
            MetricValue::BytesValue(_) => Incoming::Bytes,
        },
    };
    fit(point.datatype, incoming).map_err(|refusal| {
        let (device, point_name) = names();
        match refusal {
            Refusal::WrongType(got) => SparkplugError::WrongType {
                device,
                point: point_name,
                expected: point.datatype,
                got,
            },
            Refusal::OutOfRange(value, range) => SparkplugError::OutOfRange {
                device,
                point: point_name,
                value,
                range,
            },
            Refusal::NotExact(value) => SparkplugError::NotExact {
                device,
                point: point_name,
                value,
                datatype: point.datatype,
            },
        }
    })
}

enum Refusal {
    WrongType(&'static str),
    OutOfRange(String, &'static str),
    NotExact(String),
}

/// `incoming` as a value of `datatype`, exactly (a `Float` takes the nearest `f32`).
fn fit(datatype: DataType, incoming: Incoming) -> Result<PointValue, Refusal> {
    let range = range_text(datatype);
    match (datatype, incoming) {
        (DataType::Boolean, Incoming::Bool(on)) => Ok(PointValue::Bool(on)),
        (DataType::String | DataType::Text, Incoming::Text(text)) => Ok(PointValue::Text(text)),
        (DataType::Float, Incoming::Real(real)) => {
            if !real.is_finite() || real.abs() > f64::from(f32::MAX) {
                return Err(Refusal::OutOfRange(real.to_string(), range));
            }
            #[allow(clippy::cast_possible_truncation)] // in range, checked above: rounds only
            let nearest = real as f32;
            Ok(PointValue::F32(nearest))
        }
        (DataType::Double, Incoming::Real(real)) => {
            if !real.is_finite() {
                return Err(Refusal::OutOfRange(real.to_string(), range));
            }
            Ok(PointValue::F64(real))
        }
        (DataType::Float, Incoming::Integer(whole)) => {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            // Checked for exactness by the round trip.
            let real = whole as f32;
            #[allow(clippy::cast_possible_truncation)]
            let exact = real as i128 == whole;
            if exact {
                Ok(PointValue::F32(real))
            } else {
                Err(Refusal::NotExact(whole.to_string()))
            }
        }
        (DataType::Double, Incoming::Integer(whole)) => {
            #[allow(clippy::cast_precision_loss)] // checked for exactness by the round trip
            let real = whole as f64;
            #[allow(clippy::cast_possible_truncation)]
            let exact = real as i128 == whole;
            if exact {
                Ok(PointValue::F64(real))
            } else {
                Err(Refusal::NotExact(whole.to_string()))
            }
        }
        (datatype, Incoming::Real(real)) if integer_type(datatype) => {
            // Only whole numbers well inside i128 are cast, so the cast is exact.
            if !real.is_finite() || real.fract() != 0.0 {
                return Err(Refusal::NotExact(real.to_string()));
            }
            if real.abs() >= 1e38 {
                return Err(Refusal::OutOfRange(real.to_string(), range));
            }
            #[allow(clippy::cast_possible_truncation)]
            let whole = real as i128;
            fit_integer(datatype, whole).ok_or_else(|| Refusal::OutOfRange(real.to_string(), range))
        }
        (datatype, Incoming::Integer(whole)) if integer_type(datatype) => {
            fit_integer(datatype, whole)
                .ok_or_else(|| Refusal::OutOfRange(whole.to_string(), range))
        }
        (_, incoming) => Err(Refusal::WrongType(incoming.kind())),
    }
}

const fn integer_type(datatype: DataType) -> bool {
    matches!(
        datatype,
        DataType::UInt16
            | DataType::Int16
            | DataType::UInt32
            | DataType::Int32
            | DataType::UInt64
            | DataType::Int64
    )
}

/// `whole` as the point value of an integer `datatype`, if it fits.
fn fit_integer(datatype: DataType, whole: i128) -> Option<PointValue> {
    use modbus_stack::value::DataType as Register;
    let register = match datatype {
        DataType::UInt16 => Register::U16,
        DataType::Int16 => Register::I16,
        DataType::UInt32 => Register::U32,
        DataType::Int32 => Register::I32,
        DataType::UInt64 => Register::U64,
        DataType::Int64 => Register::I64,
        _ => return None,
    };
    PointValue::from_integer(register, whole)
}

/// The values a point of `datatype` takes, for error messages.
const fn range_text(datatype: DataType) -> &'static str {
    match datatype {
        DataType::Int8 => "-128..=127",
        DataType::UInt8 => "0..=255",
        DataType::UInt16 => "0..=65535",
        DataType::Int16 => "-32768..=32767",
        DataType::UInt32 => "0..=4294967295",
        DataType::Int32 => "-2147483648..=2147483647",
        DataType::UInt64 => "0..=18446744073709551615",
        DataType::Int64 => "-9223372036854775808..=9223372036854775807",
        DataType::Float => "finite numbers up to ±3.4028235e38",
        DataType::Double => "finite numbers",
        DataType::Boolean => "true or false",
        DataType::String | DataType::Text => "strings",
        DataType::DateTime => "milliseconds since 1970",
    }
}

#[cfg(test)]
mod tests {
    use modbus_stack::point::Table;
    use modbus_stack::value::{Order, Scale, StringFormat};

    use super::*;
    use crate::mqtt::test_rng::Rng;

    fn number(name: &str, address: u16, data_type: RegisterType) -> Point {
        Point::new(
            name,
            1,
            Table::HoldingRegisters,
            address,
            PointKind::number(data_type, Order::Abcd),
        )
    }

    /// A boiler with a point of every kind and a meter with one read-only point.
    fn boiler_points() -> Vec<(Point, bool)> {
        vec![
            (number("setpoint", 0, RegisterType::U16), true),
            (
                number("temperature", 1, RegisterType::I16).with_unit("°C"),
                false,
            ),
            (number("offset", 2, RegisterType::I32), true),
            (number("counter", 4, RegisterType::U32), true),
            (number("energy", 8, RegisterType::U64), true),
            (number("balance", 12, RegisterType::I64), true),
            (
                number("flow", 16, RegisterType::F32).with_unit("m³/h"),
                true,
            ),
            (number("precise", 20, RegisterType::F64), true),
            (
                number("level", 24, RegisterType::U16).with_scale(Scale::new(0.1, 0.0).unwrap()),
                true,
            ),
            (
                Point::new(
                    "label",
                    1,
                    Table::HoldingRegisters,
                    30,
                    PointKind::String(StringFormat::new(4)),
                ),
                true,
            ),
            (Point::new("pump", 1, Table::Coils, 0, PointKind::Bit), true),
            (
                Point::new(
                    "alarm",
                    1,
                    Table::InputRegisters,
                    0,
                    PointKind::RegisterBit { bit: 3 },
                ),
                false,
            ),
        ]
    }

    fn specs(points: &[(Point, bool)]) -> Vec<MetricSpec> {
        points
            .iter()
            .map(|(point, writable)| MetricSpec::for_point(point, *writable))
            .collect()
    }

    fn node() -> EdgeNode {
        let meter = vec![(number("power", 0, RegisterType::F32).with_unit("kW"), false)];
        EdgeNode::new(
            "Plant 1",
            "harvester",
            7,
            vec![
                ("boiler".into(), specs(&boiler_points())),
                ("meter".into(), specs(&meter)),
            ],
        )
        .unwrap()
    }

    fn decode(bytes: &[u8]) -> Payload {
        Payload::decode(bytes).expect("our payloads decode")
    }

    fn property<'a>(metric: &'a Metric, key: &str) -> Option<&'a PropertyValue> {
        let set = metric.properties.as_ref()?;
        let at = set.keys.iter().position(|k| k == key)?;
        set.values.get(at)
    }

    fn dcmd(metrics: Vec<Metric>) -> Vec<u8> {
        Payload {
            timestamp: Some(1),
            metrics,
            ..Payload::default()
        }
        .encode_to_vec()
    }

    fn by_name(name: &str, value: MetricValue) -> Metric {
        Metric {
            name: Some(name.into()),
            value: Some(value),
            ..Metric::default()
        }
    }

    fn by_alias(alias: u64, value: MetricValue) -> Metric {
        Metric {
            alias: Some(alias),
            value: Some(value),
            ..Metric::default()
        }
    }

    const DCMD: &str = "spBv1.0/Plant 1/DCMD/harvester/boiler";
    const NCMD: &str = "spBv1.0/Plant 1/NCMD/harvester";

    fn write(node: &EdgeNode, metrics: Vec<Metric>) -> Result<Command, SparkplugError> {
        node.parse_command(DCMD, &dcmd(metrics))
    }

    fn written(node: &EdgeNode, metric: Metric) -> PointValue {
        match write(node, vec![metric]) {
            Ok(Command::Write { mut writes, .. }) if writes.len() == 1 => writes.remove(0).2,
            other => panic!("expected one write, got {other:?}"),
        }
    }

    #[test]
    fn points_map_to_the_datatype_of_their_values() {
        let expected = [
            DataType::UInt16,
            DataType::Int16,
            DataType::Int32,
            DataType::UInt32,
            DataType::UInt64,
            DataType::Int64,
            DataType::Float,
            DataType::Double,
            DataType::Double, // scaled: PointValue::F64 in engineering units
            DataType::String,
            DataType::Boolean,
            DataType::Boolean,
        ];
        let specs = specs(&boiler_points());
        let datatypes: Vec<DataType> = specs.iter().map(|spec| spec.datatype).collect();
        assert_eq!(datatypes, expected);
        assert_eq!(specs[1].unit.as_deref(), Some("°C"));
        assert!(specs[0].writable && !specs[1].writable);
        assert_eq!(specs[9].name, "label");
        // The basic types of sparkplug_b.proto's DataType enum, by code.
        let schema = [
            "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float",
            "Double", "Boolean", "String", "DateTime", "Text",
        ];
        for (code, name) in (1..).zip(schema) {
            let datatype = DataType::from_code(code).unwrap_or_else(|| panic!("code {code}"));
            assert_eq!((datatype.name(), datatype.code()), (name, code));
        }
        assert_eq!(DataType::from_code(0), None);
        assert_eq!(DataType::from_code(15), None);
    }

    #[test]
    fn ndeath_carries_bd_seq_and_no_seq() {
        let node = node();
        let (topic, bytes) = node.death(1_700_000_000_000);
        assert_eq!(topic, "spBv1.0/Plant 1/NDEATH/harvester");
        let payload = decode(&bytes);
        assert_eq!(payload.seq, None);
        assert_eq!(payload.timestamp, Some(1_700_000_000_000));
        assert_eq!(payload.metrics.len(), 1);
        let metric = &payload.metrics[0];
        assert_eq!(metric.name.as_deref(), Some("bdSeq"));
        assert_eq!(
            metric.alias, None,
            "the will outlives the session's aliases"
        );
        assert_eq!(metric.timestamp, Some(1_700_000_000_000));
        assert_eq!(metric.datatype, Some(8));
        assert_eq!(metric.value, Some(MetricValue::LongValue(7)));
        // Prost writes what it read back the same.
        assert_eq!(payload.encode_to_vec(), bytes);
    }

    #[test]
    fn nbirth_has_seq_zero_bd_seq_and_rebirth_false() {
        let mut node = node();
        let (topic, bytes) = node.birth(1_700_000_000_123);
        assert_eq!(topic, "spBv1.0/Plant 1/NBIRTH/harvester");
        let payload = decode(&bytes);
        assert_eq!(payload.seq, Some(0));
        assert_eq!(payload.timestamp, Some(1_700_000_000_123));
        let metrics: Vec<_> = payload
            .metrics
            .iter()
            .map(|m| {
                (
                    m.name.as_deref(),
                    m.alias,
                    m.datatype,
                    m.value.clone(),
                    m.timestamp,
                )
            })
            .collect();
        assert_eq!(
            metrics,
            [
                (
                    Some("bdSeq"),
                    Some(1),
                    Some(8),
                    Some(MetricValue::LongValue(7)),
                    Some(1_700_000_000_123)
                ),
                (
                    Some("Node Control/Rebirth"),
                    Some(2),
                    Some(11),
                    Some(MetricValue::BooleanValue(false)),
                    Some(1_700_000_000_123)
                ),
            ]
        );
        assert_eq!(payload.encode_to_vec(), bytes);
    }

    #[test]
    fn dbirth_declares_every_metric_with_value_unit_access_and_quality() {
        let mut node = node();
        node.birth(1000);
        let values = vec![
            (Some(PointValue::U16(42)), true),
            (Some(PointValue::I16(-1)), true),
            (Some(PointValue::I32(i32::MIN)), true),
            (Some(PointValue::U32(4_000_000_000)), true),
            (Some(PointValue::U64(u64::MAX)), true),
            (Some(PointValue::I64(-5)), true),
            (Some(PointValue::F32(1.5)), false), // read earlier: stale
            (None, false),                       // never read: bad
            (Some(PointValue::F64(12.3)), true),
            (Some(PointValue::Text("AB".into())), true),
            (Some(PointValue::Bool(true)), true),
            // "alarm" left out: counts as not read.
        ];
        let (topic, bytes) = node.device_birth("boiler", &values, 2000).unwrap();
        assert_eq!(topic, "spBv1.0/Plant 1/DBIRTH/harvester/boiler");
        let payload = decode(&bytes);
        assert_eq!(payload.seq, Some(1));
        assert_eq!(payload.timestamp, Some(2000));
        assert_eq!(payload.metrics.len(), 12);
        let expected_values = [
            Some(MetricValue::IntValue(42)),
            Some(MetricValue::IntValue(0xFFFF_FFFF)),
            Some(MetricValue::IntValue(0x8000_0000)),
            Some(MetricValue::LongValue(4_000_000_000)),
            Some(MetricValue::LongValue(u64::MAX)),
            Some(MetricValue::LongValue(u64::MAX - 4)),
            Some(MetricValue::FloatValue(1.5)),
            None,
            Some(MetricValue::DoubleValue(12.3)),
            Some(MetricValue::StringValue("AB".into())),
            Some(MetricValue::BooleanValue(true)),
            None,
        ];
        let points = boiler_points();
        for (index, metric) in payload.metrics.iter().enumerate() {
            let (point, writable) = &points[index];
            assert_eq!(metric.name.as_deref(), Some(point.name.as_str()));
            assert_eq!(metric.alias, Some(3 + index as u64));
            assert_eq!(metric.alias, node.alias("boiler", index));
            assert_eq!(metric.timestamp, Some(2000));
            assert_eq!(
                metric.datatype,
                Some(MetricSpec::for_point(point, *writable).datatype.code())
            );
            assert_eq!(metric.value, expected_values[index], "{}", point.name);
            assert_eq!(
                metric.is_null,
                expected_values[index].is_none().then_some(true)
            );
            assert_eq!(metric.is_historical, None);
            let read_only = property(metric, "readOnly").unwrap();
            assert_eq!(read_only.r#type, Some(11));
            assert_eq!(
                read_only.value,
                Some(PropertyValueKind::BooleanValue(!writable))
            );
            let unit = property(metric, "engUnit").map(|p| (p.r#type, p.value.clone()));
            let expected_unit = point
                .unit
                .clone()
                .map(|unit| (Some(12), Some(PropertyValueKind::StringValue(unit))));
            assert_eq!(unit, expected_unit, "{}", point.name);
            let quality = property(metric, "Quality").map(|p| (p.r#type, p.value.clone()));
            let expected_quality = match index {
                6 => Some((Some(3), Some(PropertyValueKind::IntValue(500)))),
                7 | 11 => Some((Some(3), Some(PropertyValueKind::IntValue(0)))),
                _ => None,
            };
            assert_eq!(quality, expected_quality, "{}", point.name);
        }
        assert_eq!(payload.encode_to_vec(), bytes);
    }

    #[test]
    fn ddata_sends_metrics_by_alias_with_timestamp_datatype_and_flags() {
        let mut node = node();
        node.birth(1000);
        let (topic, bytes) = node
            .device_data(
                "boiler",
                5000,
                &[
                    (1, Some(PointValue::I16(-300))),
                    (7, None),
                    (10, Some(PointValue::Bool(false))),
                ],
                false,
            )
            .unwrap();
        assert_eq!(topic, "spBv1.0/Plant 1/DDATA/harvester/boiler");
        let payload = decode(&bytes);
        assert_eq!((payload.seq, payload.timestamp), (Some(1), Some(5000)));
        let summary: Vec<_> = payload
            .metrics
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.alias,
                    m.timestamp,
                    m.datatype,
                    m.is_null,
                    m.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    None,
                    Some(4),
                    Some(5000),
                    Some(2),
                    None,
                    Some(MetricValue::IntValue(i32_bits(-300)))
                ),
                (None, Some(10), Some(5000), Some(10), Some(true), None),
                (
                    None,
                    Some(13),
                    Some(5000),
                    Some(11),
                    None,
                    Some(MetricValue::BooleanValue(false))
                ),
            ]
        );
        assert!(payload.metrics.iter().all(|m| m.is_historical.is_none()));
        // Only the null carries a property: Quality 0 (bad).
        assert_eq!(payload.metrics[0].properties, None);
        assert_eq!(
            property(&payload.metrics[1], "Quality").and_then(|p| p.value.clone()),
            Some(PropertyValueKind::IntValue(0))
        );
        let (_, bytes) = node
            .device_data("meter", 6000, &[(0, Some(PointValue::F32(2.5)))], true)
            .unwrap();
        let payload = decode(&bytes);
        assert_eq!(payload.seq, Some(2));
        assert_eq!(payload.metrics[0].alias, Some(15));
        assert_eq!(payload.metrics[0].is_historical, Some(true));
        assert_eq!(payload.encode_to_vec(), bytes);
    }

    #[test]
    fn ddeath_has_seq_and_no_metrics() {
        let mut node = node();
        node.birth(1000);
        let (topic, bytes) = node.device_death("meter", 3000).unwrap();
        assert_eq!(topic, "spBv1.0/Plant 1/DDEATH/harvester/meter");
        let payload = decode(&bytes);
        assert_eq!((payload.seq, payload.timestamp), (Some(1), Some(3000)));
        assert!(payload.metrics.is_empty());
        assert!(matches!(
            node.device_death("pump house", 3000),
            Err(SparkplugError::UnknownDevice { .. })
        ));
    }

    #[test]
    fn seq_counts_every_message_but_ndeath_and_wraps_255_to_0() {
        let mut node = node();
        let mut seqs = vec![decode(&node.birth(0).1).seq];
        for i in 1..300u64 {
            let (_, bytes) = match i % 4 {
                0 => node.device_birth("meter", &[], i).unwrap(),
                1 => node
                    .device_data("boiler", i, &[(0, Some(PointValue::U16(1)))], false)
                    .unwrap(),
                2 => node.device_death("meter", i).unwrap(),
                _ => {
                    // The will takes no number.
                    assert_eq!(decode(&node.death(1_700_000_000_000).1).seq, None);
                    node.device_data("meter", i, &[(0, None)], true).unwrap()
                }
            };
            seqs.push(decode(&bytes).seq);
        }
        let expected: Vec<Option<u64>> = (0..300u64).map(|i| Some(i % 256)).collect();
        assert_eq!(seqs, expected);
        assert_eq!(seqs[255], Some(255));
        assert_eq!(seqs[256], Some(0));
    }

    #[test]
    fn nbirth_resets_seq_and_keeps_bd_seq_for_a_rebirth() {
        let mut node = node();
        node.birth(0);
        for i in 0..10 {
            node.device_data("meter", i, &[(0, None)], false).unwrap();
        }
        let rebirth = decode(&node.birth(20).1);
        assert_eq!(rebirth.seq, Some(0));
        assert_eq!(rebirth.metrics[0].value, Some(MetricValue::LongValue(7)));
        let (_, bytes) = node.device_birth("boiler", &[], 21).unwrap();
        assert_eq!(decode(&bytes).seq, Some(1));
    }

    #[test]
    fn bd_seq_moves_on_per_connection_and_wraps_255_to_0() {
        let mut node = EdgeNode::new("g", "n", 254, Vec::new()).unwrap();
        assert_eq!(node.next_bd_seq(), 255);
        assert_eq!(node.bd_seq(), 255);
        let death = decode(&node.death(1_700_000_000_000).1);
        assert_eq!(death.metrics[0].value, Some(MetricValue::LongValue(255)));
        assert_eq!(node.next_bd_seq(), 0);
        let birth = decode(&node.birth(1).1);
        assert_eq!(birth.metrics[0].value, Some(MetricValue::LongValue(0)));
        assert_eq!(node.next_bd_seq(), 1);
        assert!(matches!(
            EdgeNode::new("g", "n", 256, Vec::new()),
            Err(SparkplugError::BdSeqOutOfRange { bd_seq: 256 })
        ));
    }

    #[test]
    fn aliases_are_unique_across_the_node_and_stable() {
        let first = node();
        let again = node();
        let mut seen = BTreeSet::from([BD_SEQ_ALIAS, REBIRTH_ALIAS]);
        for (device, points) in [("boiler", 12), ("meter", 1)] {
            for index in 0..points {
                let alias = first.alias(device, index).unwrap();
                assert!(seen.insert(alias), "alias {alias} used twice");
                assert_eq!(again.alias(device, index), Some(alias));
            }
            assert_eq!(first.alias(device, points), None);
        }
        assert_eq!(seen.len(), 15);
        assert_eq!(first.alias("nobody", 0), None);
    }

    #[test]
    fn ids_that_cannot_be_topic_levels_are_refused_with_what_to_change() {
        for (group, node_id, device, bad) in [
            ("", "n", "d", ""),
            ("a/b", "n", "d", "a/b"),
            ("g", "n+", "d", "n+"),
            ("g", "n", "#", "#"),
            ("g", "n", "", ""),
        ] {
            let error =
                EdgeNode::new(group, node_id, 0, vec![(device.into(), Vec::new())]).unwrap_err();
            let SparkplugError::InvalidId { id, .. } = &error else {
                panic!("{error:?}");
            };
            assert_eq!(id, bad);
            assert!(
                error
                    .to_string()
                    .contains("must not be empty or contain '/', '+' or '#'")
            );
        }
        let spec = MetricSpec::for_point(&number("a", 0, RegisterType::U16), false);
        assert!(matches!(
            EdgeNode::new(
                "g",
                "n",
                0,
                vec![("d".into(), vec![]), ("d".into(), vec![])]
            ),
            Err(SparkplugError::DuplicateDevice { .. })
        ));
        assert!(matches!(
            EdgeNode::new(
                "g",
                "n",
                0,
                vec![("d".into(), vec![spec.clone(), spec.clone()])]
            ),
            Err(SparkplugError::DuplicateMetric { .. })
        ));
        let unnamed = MetricSpec {
            name: String::new(),
            ..spec
        };
        assert!(matches!(
            EdgeNode::new("g", "n", 0, vec![("d".into(), vec![unnamed])]),
            Err(SparkplugError::EmptyMetricName { .. })
        ));
    }

    #[test]
    fn a_value_of_another_type_is_refused_and_takes_no_seq() {
        let mut node = node();
        node.birth(0);
        let error = node
            .device_data("boiler", 1, &[(0, Some(PointValue::I16(1)))], false)
            .unwrap_err();
        assert!(matches!(
            error,
            SparkplugError::ValueMismatch {
                datatype: DataType::UInt16,
                ..
            }
        ));
        assert!(matches!(
            node.device_data("boiler", 1, &[(12, None)], false),
            Err(SparkplugError::UnknownPoint {
                index: 12,
                points: 12,
                ..
            })
        ));
        assert!(matches!(
            node.device_birth("meter", &[(None, false), (None, false)], 1),
            Err(SparkplugError::TooManyValues {
                points: 1,
                given: 2,
                ..
            })
        ));
        assert!(matches!(
            node.device_birth("boiler", &[(Some(PointValue::Text("x".into())), true)], 1),
            Err(SparkplugError::ValueMismatch { .. })
        ));
        let (_, bytes) = node.device_death("boiler", 2).unwrap();
        assert_eq!(decode(&bytes).seq, Some(1));
    }

    #[test]
    fn command_topics_are_this_nodes() {
        assert_eq!(
            node().command_topics(),
            [NCMD, "spBv1.0/Plant 1/DCMD/harvester/+"]
        );
    }

    #[test]
    fn ncmd_rebirth_by_name_or_alias() {
        let node = node();
        let topic = NCMD;
        let rebirth = |metric| node.parse_command(topic, &dcmd(vec![metric]));
        assert_eq!(
            rebirth(by_name(REBIRTH_METRIC, MetricValue::BooleanValue(true))),
            Ok(Command::Rebirth)
        );
        assert_eq!(
            rebirth(by_alias(REBIRTH_ALIAS, MetricValue::BooleanValue(true))),
            Ok(Command::Rebirth)
        );
        for metric in [
            by_name(REBIRTH_METRIC, MetricValue::BooleanValue(false)),
            by_name("Node Control/Reboot", MetricValue::BooleanValue(true)),
        ] {
            let error = rebirth(metric).unwrap_err();
            assert!(
                matches!(error, SparkplugError::UnsupportedNodeCommand { .. }),
                "{error}"
            );
        }
        assert!(matches!(
            node.parse_command(topic, &dcmd(Vec::new())),
            Err(SparkplugError::UnsupportedNodeCommand { .. })
        ));
    }

    #[test]
    fn dcmd_writes_by_name_and_by_alias_in_order() {
        let node = node();
        let command = write(
            &node,
            vec![
                by_name("setpoint", MetricValue::IntValue(65535)),
                by_alias(3 + 6, MetricValue::FloatValue(-2.25)),
                Metric {
                    name: Some("pump".into()),
                    alias: Some(3 + 10),
                    ..by_name("pump", MetricValue::BooleanValue(true))
                },
                by_name("label", MetricValue::StringValue("Boiler 2".into())),
                by_name("level", MetricValue::DoubleValue(55.5)),
            ],
        )
        .unwrap();
        assert_eq!(
            command,
            Command::Write {
                device: "boiler".into(),
                writes: vec![
                    (0, "setpoint".into(), PointValue::U16(65535)),
                    (6, "flow".into(), PointValue::F32(-2.25)),
                    (10, "pump".into(), PointValue::Bool(true)),
                    (9, "label".into(), PointValue::Text("Boiler 2".into())),
                    (8, "level".into(), PointValue::F64(55.5)),
                ],
            }
        );
    }

    #[test]
    fn dcmd_reads_signed_and_wide_integers_as_tahu_writes_them() {
        let node = node();
        let typed = |name: &str, datatype: DataType, value| Metric {
            datatype: Some(datatype.code()),
            ..by_name(name, value)
        };
        // Int32 -1 sign-extended (Tahu) and as bare 16 bits, into an i32 point via Int16.
        assert_eq!(
            written(
                &node,
                typed("offset", DataType::Int32, MetricValue::IntValue(u32::MAX))
            ),
            PointValue::I32(-1)
        );
        assert_eq!(
            written(
                &node,
                typed("offset", DataType::Int16, MetricValue::IntValue(0xFFFF))
            ),
            PointValue::I32(-1)
        );
        assert_eq!(
            written(
                &node,
                typed(
                    "offset",
                    DataType::Int64,
                    MetricValue::LongValue(u64::MAX - 9)
                )
            ),
            PointValue::I32(-10)
        );
        // Without a datatype the point's own says how to read it.
        assert_eq!(
            written(&node, by_name("offset", MetricValue::IntValue(0x8000_0000))),
            PointValue::I32(i32::MIN)
        );
        assert_eq!(
            written(&node, by_name("balance", MetricValue::LongValue(u64::MAX))),
            PointValue::I64(-1)
        );
        // UInt32 either way: long_value as Tahu sends it, int_value as the table says.
        assert_eq!(
            written(
                &node,
                by_name("counter", MetricValue::LongValue(4_000_000_000))
            ),
            PointValue::U32(4_000_000_000)
        );
        assert_eq!(
            written(
                &node,
                by_name("counter", MetricValue::IntValue(4_000_000_000))
            ),
            PointValue::U32(4_000_000_000)
        );
        assert_eq!(
            written(&node, by_name("energy", MetricValue::LongValue(u64::MAX))),
            PointValue::U64(u64::MAX)
        );
        // Whole numbers across the families, exactly.
        assert_eq!(
            written(&node, by_name("setpoint", MetricValue::DoubleValue(12.0))),
            PointValue::U16(12)
        );
        assert_eq!(
            written(&node, by_name("precise", MetricValue::LongValue(1 << 53))),
            PointValue::F64(9_007_199_254_740_992.0)
        );
        assert_eq!(
            written(&node, by_name("flow", MetricValue::DoubleValue(0.1))),
            PointValue::F32(0.1)
        );
    }

    #[test]
    fn dcmd_values_that_do_not_fit_are_refused_naming_the_point() {
        let node = node();
        let refused = |metric| write(&node, vec![metric]).unwrap_err();

        let error = refused(by_name("setpoint", MetricValue::IntValue(70_000)));
        assert!(
            matches!(error, SparkplugError::OutOfRange { ref point, range: "0..=65535", .. } if point == "setpoint")
        );
        assert_eq!(
            error.to_string(),
            "point \"setpoint\" of device \"boiler\" takes 0..=65535: 70000 is out of range"
        );
        assert!(matches!(
            refused(by_name("setpoint", MetricValue::IntValue(u32::MAX))),
            SparkplugError::OutOfRange { .. }
        ));
        assert!(matches!(
            refused(by_name("balance", MetricValue::DoubleValue(1e300))),
            SparkplugError::OutOfRange { .. }
        ));
        assert!(matches!(
            refused(by_name("flow", MetricValue::DoubleValue(1e39))),
            SparkplugError::OutOfRange { .. }
        ));
        assert!(matches!(
            refused(by_name("precise", MetricValue::DoubleValue(f64::NAN))),
            SparkplugError::OutOfRange { .. }
        ));
        assert!(matches!(
            refused(by_name("setpoint", MetricValue::DoubleValue(2.5))),
            SparkplugError::NotExact { .. }
        ));
        assert!(matches!(
            refused(by_name("flow", MetricValue::LongValue((1 << 24) + 1))),
            SparkplugError::NotExact { .. }
        ));
        let error = refused(by_name("setpoint", MetricValue::StringValue("12".into())));
        assert_eq!(
            error.to_string(),
            "point \"setpoint\" of device \"boiler\" is UInt16: the DCMD sent a string"
        );
        assert!(matches!(
            refused(by_name("pump", MetricValue::IntValue(1))),
            SparkplugError::WrongType {
                expected: DataType::Boolean,
                got: "a number",
                ..
            }
        ));
        assert!(matches!(
            refused(by_name("label", MetricValue::BytesValue(vec![1]))),
            SparkplugError::WrongType { got: "bytes", .. }
        ));
    }

    #[test]
    fn oversized_commands_unknown_datatypes_and_long_names_are_refused_briefly() {
        let node = node();
        // 64 KiB of empty metrics would decode into some 30k structs: refused unread.
        let flood = [0x12, 0x00].repeat(MAX_COMMAND_BYTES / 2 + 1);
        for topic in [DCMD, NCMD] {
            assert!(matches!(
                node.parse_command(topic, &flood),
                Err(SparkplugError::CommandTooLarge { bytes, .. }) if bytes == flood.len()
            ));
        }
        assert!(matches!(
            write(
                &node,
                vec![Metric {
                    datatype: Some(99),
                    ..by_name("setpoint", MetricValue::IntValue(1))
                }]
            ),
            Err(SparkplugError::WrongType {
                got: "a datatype Sparkplug does not define",
                ..
            })
        ));
        // A sender's long name comes back cut, in the error that is logged and published.
        let long = "x".repeat(10_000);
        let error = write(&node, vec![by_name(&long, MetricValue::IntValue(1))]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.len() < 300 && text.contains(&format!("{}…", "x".repeat(64))),
            "{text}"
        );
    }

    #[test]
    fn dcmd_for_points_that_cannot_be_written_is_refused_whole() {
        let node = node();
        let refused = |metric| write(&node, vec![metric]).unwrap_err();
        let error = refused(by_name("temperature", MetricValue::IntValue(20)));
        assert!(
            matches!(error, SparkplugError::ReadOnly { ref point, .. } if point == "temperature")
        );
        assert!(error.to_string().contains("read-write"));
        assert!(matches!(
            refused(by_alias(3 + 11, MetricValue::BooleanValue(true))),
            SparkplugError::ReadOnly { .. }
        ));
        assert!(matches!(
            refused(by_name("nonesuch", MetricValue::IntValue(1))),
            SparkplugError::UnknownMetric { .. }
        ));
        // The meter's alias is not a boiler metric, nor is the node's rebirth.
        for alias in [15, REBIRTH_ALIAS, 0, u64::MAX] {
            assert!(matches!(
                refused(by_alias(alias, MetricValue::IntValue(1))),
                SparkplugError::UnknownMetric { .. }
            ));
        }
        assert!(matches!(
            refused(Metric {
                name: Some("offset".into()),
                ..by_alias(3, MetricValue::IntValue(1))
            }),
            SparkplugError::AliasMismatch { alias: 3, .. }
        ));
        assert!(matches!(
            refused(Metric {
                is_null: Some(true),
                ..by_name("setpoint", MetricValue::IntValue(1))
            }),
            SparkplugError::NullWrite { .. }
        ));
        assert!(matches!(
            refused(Metric {
                name: Some("setpoint".into()),
                ..Metric::default()
            }),
            SparkplugError::NullWrite { .. }
        ));
        assert!(matches!(
            refused(Metric::default()),
            SparkplugError::UnknownMetric { .. }
        ));
        // One bad metric refuses the whole command, and a point named twice too.
        assert!(matches!(
            write(
                &node,
                vec![
                    by_name("setpoint", MetricValue::IntValue(1)),
                    by_name("temperature", MetricValue::IntValue(1)),
                ]
            ),
            Err(SparkplugError::ReadOnly { .. })
        ));
        assert!(matches!(
            write(
                &node,
                vec![
                    by_name("setpoint", MetricValue::IntValue(1)),
                    by_alias(3, MetricValue::IntValue(2)),
                ]
            ),
            Err(SparkplugError::DuplicateWrite { .. })
        ));
        assert!(matches!(
            write(&node, Vec::new()),
            Err(SparkplugError::EmptyCommand { .. })
        ));
    }

    #[test]
    fn commands_on_other_topics_or_malformed_are_refused() {
        let node = node();
        let payload = dcmd(vec![by_name("setpoint", MetricValue::IntValue(1))]);
        for topic in [
            "spBv1.0/Plant 1/DCMD/harvester",
            "spBv1.0/Plant 1/DCMD/other/boiler",
            "spBv1.0/Plant 2/DCMD/harvester/boiler",
            "spBv1.0/Plant 1/DDATA/harvester/boiler",
            "spBv1.0/Plant 1/NCMD/harvester/boiler",
            "spAv1.0/Plant 1/DCMD/harvester/boiler",
            "spBv1.0",
            "",
        ] {
            assert!(
                matches!(
                    node.parse_command(topic, &payload),
                    Err(SparkplugError::NotACommandTopic { .. })
                ),
                "{topic}"
            );
        }
        for topic in [
            "spBv1.0/Plant 1/DCMD/harvester/pump house",
            "spBv1.0/Plant 1/DCMD/harvester/boiler/extra",
        ] {
            assert!(matches!(
                node.parse_command(topic, &payload),
                Err(SparkplugError::UnknownDevice { .. })
            ));
        }
        // A truncated payload, and one that is not protobuf at all.
        for bytes in [
            &payload[..payload.len() - 1],
            b"{\"setpoint\": 1}".as_slice(),
        ] {
            let error = node.parse_command(DCMD, bytes).unwrap_err();
            assert!(matches!(error, SparkplugError::Decode { .. }), "{error:?}");
        }
    }

    #[test]
    fn random_commands_never_panic() {
        let node = node();
        let mut rng = Rng(0x5EED_0F5A_4C91_F6C1);
        let boiler = specs(&boiler_points());
        let valid = dcmd(vec![
            by_name("setpoint", MetricValue::IntValue(7)),
            by_alias(3 + 6, MetricValue::FloatValue(1.0)),
            by_name("label", MetricValue::StringValue("x".into())),
        ]);
        let topics = [DCMD, NCMD];
        let (mut decoded, mut writes) = (0, 0);
        for round in 0..10_000 {
            let (topic, bytes): (_, Vec<u8>) = if round % 2 == 0 {
                // Noise of up to 64 bytes, to either topic.
                let noise = (0..rng.index(65)).map(|_| rng.next().to_le_bytes()[0]);
                (topics[round / 2 % 2], noise.collect())
            } else {
                // A valid command with a few bytes changed: deeper into the decoder.
                let mut bytes = valid.clone();
                for _ in 0..=rng.index(3) {
                    let at = rng.index(bytes.len());
                    bytes[at] = rng.next().to_le_bytes()[0];
                }
                (DCMD, bytes)
            };
            match node.parse_command(topic, &bytes) {
                Err(SparkplugError::Decode { .. }) => {}
                Ok(Command::Write {
                    device,
                    writes: list,
                }) => {
                    // What is accepted is sound: the boiler's writable points, each once, by
                    // its own name, with a value its type can hold.
                    assert_eq!(device, "boiler");
                    let mut seen = BTreeSet::new();
                    for (index, name, value) in &list {
                        let spec = &boiler[*index];
                        assert!(spec.writable && seen.insert(*index), "{list:?}");
                        assert_eq!(*name, spec.name);
                        let probe = Device {
                            name: "boiler".into(),
                            metrics: vec![spec.clone()],
                            first_alias: FIRST_POINT_ALIAS,
                            data_topic: String::new(),
                        };
                        assert!(metric_value(&probe, spec, value).is_ok(), "{value:?}");
                    }
                    decoded += 1;
                    writes += list.len();
                }
                _ => decoded += 1,
            }
        }
        // The mutations reach past the protobuf decoder often enough to mean something.
        assert!(decoded > 500, "only {decoded} of 10000 decoded");
        assert!(writes > 100, "only {writes} writes accepted");
    }
}
