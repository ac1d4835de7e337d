//! The HTTP side: JSON API, Server-Sent Events, Prometheus metrics and the dashboard.
//!
//! Every answer comes from the engine's memory (the latest poll, the history rings): no HTTP
//! request ever causes a read on a device, so no number of browser tabs can flood a serial
//! line. Writes and operator actions go to the device's link worker; the points of one write
//! are written in the order the body names them, and the first failure stops the rest.
//!
//! Status codes: 404 unknown device, point or route; 400 malformed body or a value of the
//! wrong type or range; 409 read-only point, disabled or disconnected device; 502 the device
//! answered with an exception (code and name in the body); 504 the device did not answer.
//! Every error body is `{"error": "…"}` with a message that says what to do, whichever layer
//! refused the request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use modbus_stack::harvest::{
    self, DeviceSnapshot, Engine, Event, Link, PlanView, Quality, Sample, Status, table_name,
};
use modbus_stack::point::{Point, PointKind, PointValue};
use modbus_stack::value::DataType;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::metrics;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Samples and status changes, already in SSE form, for every stream.
    pub events: broadcast::Sender<Arc<(String, String)>>,
    /// Events the service's own subscription lost (a stalled forwarder).
    pub dropped: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Becomes `true` when the service stops: open event streams end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The MQTT publisher's counters, when it publishes.
    pub mqtt: Option<Arc<crate::mqtt::MqttStats>>,
}

/// The router of every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/api/devices", get(list_devices))
        .route("/api/devices/{name}", get(device_detail))
        .route("/api/devices/{name}/data", get(device_data))
        .route("/api/devices/{name}/history", get(device_history))
        .route("/api/devices/{name}/write", post(device_write))
        .route("/api/devices/{name}/connect", post(device_connect))
        .route("/api/devices/{name}/disconnect", post(device_disconnect))
        .route("/api/devices/{name}/enable", post(device_enable))
        .route("/api/devices/{name}/disable", post(device_disable))
        .route("/api/events", get(events))
        .route("/api/mqtt", get(mqtt_status))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// Makes every error answer JSON, including those axum writes itself as plain text or with no
/// body at all (a wrong method, a body over the size limit, a query or path that does not
/// parse), so a client can always read `error`.
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = response.into_body();
    // axum's own messages are one short line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match status {
        // The router adds the `Allow` header itself, after this layer.
        StatusCode::METHOD_NOT_ALLOWED => {
            let actions = ["write", "connect", "disconnect", "enable", "disable"];
            let post = path
                .rsplit('/')
                .next()
                .is_some_and(|last| actions.contains(&last));
            format!(
                "{method} is not allowed on {path}; use {}",
                if post { "POST" } else { "GET" }
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the body is too large ({text}); a write names only the points it sets")
        }
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string(),
        _ => text,
    };
    ApiError::new(status, message).into_response()
}

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        if let Value::Object(map) = &mut self.body {
            map.insert(key.into(), value);
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<harvest::Error> for ApiError {
    fn from(error: harvest::Error) -> Self {
        let message = error.to_string();
        match error {
            harvest::Error::UnknownDevice { .. } => Self::new(
                StatusCode::NOT_FOUND,
                format!("{message}; GET /api/devices lists them"),
            ),
            harvest::Error::UnknownPoint { device, .. } => Self::new(
                StatusCode::NOT_FOUND,
                format!("{message}; GET /api/devices/{device} lists its points"),
            ),
            harvest::Error::ReadOnly { .. } => Self::new(
                StatusCode::CONFLICT,
                format!("{message}: set access = \"read-write\" for it in the configuration"),
            ),
            harvest::Error::Disabled { .. } | harvest::Error::Disconnected { .. } => {
                Self::new(StatusCode::CONFLICT, message)
            }
            harvest::Error::Value { .. } => Self::new(StatusCode::BAD_REQUEST, message),
            harvest::Error::Exception { exception, .. } => {
                Self::new(StatusCode::BAD_GATEWAY, message).with(
                    "exception",
                    json!({
                        "code": exception.code.value(),
                        "name": exception.code.name().unwrap_or("unknown"),
                        "function": exception.function.value(),
                    }),
                )
            }
            harvest::Error::NoAnswer { .. } => Self::new(StatusCode::GATEWAY_TIMEOUT, message),
            _ => Self::new(StatusCode::SERVICE_UNAVAILABLE, message),
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route; the API is under /api/devices, metrics at /metrics, the dashboard at /",
    )
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../assets/index.html"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/app.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/style.css"),
    )
}

/// Seconds since the Unix epoch, with milliseconds.
fn epoch(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A point value as JSON: numbers as numbers (non-finite floats as null), bools, strings.
pub fn value_json(value: &PointValue) -> Value {
    match value {
        PointValue::Bool(on) => json!(on),
        PointValue::U16(v) => json!(v),
        PointValue::I16(v) => json!(v),
        PointValue::U32(v) => json!(v),
        PointValue::I32(v) => json!(v),
        PointValue::U64(v) => json!(v),
        PointValue::I64(v) => json!(v),
        PointValue::F32(v) => {
            serde_json::Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number)
        }
        PointValue::F64(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        PointValue::Text(text) => json!(text),
    }
}

/// A status as JSON.
#[must_use]
pub fn status_json(status: &Status) -> Value {
    let mut body = json!({ "state": status.name() });
    if let Value::Object(map) = &mut body {
        match status {
            Status::Error { error, at } => {
                map.insert("error".into(), json!(error));
                map.insert("at".into(), json!(epoch(*at)));
            }
            Status::BackingOff {
                until,
                error,
                at,
                failures,
            } => {
                map.insert("error".into(), json!(error));
                map.insert("at".into(), json!(epoch(*at)));
                map.insert("until".into(), json!(epoch(*until)));
                map.insert("failures".into(), json!(failures));
            }
            _ => {}
        }
    }
    body
}

fn link_json(link: &Link) -> Value {
    json!({ "id": link.id(), "description": link.to_string() })
}

fn counters_json(device: &DeviceSnapshot) -> Value {
    let counters = &device.counters;
    let exceptions: Map<String, Value> = counters
        .exceptions
        .iter()
        .map(|(code, count)| (format!("{code:02}"), json!(count)))
        .collect();
    json!({
        "polls": counters.polls,
        "requests": counters.requests,
        "responses": counters.responses,
        "exceptions": exceptions,
        "timeouts": counters.timeouts,
        "retries": counters.retries,
        "invalid_responses": counters.invalid_responses,
        "reconnects": counters.reconnects,
        "plan_rebuilds": counters.plan_rebuilds,
        "last_rtt_ms": counters.last_rtt.map(millis),
        "mean_rtt_ms": counters.mean_rtt().map(millis),
    })
}

/// The type name of a point kind, as in the configuration file.
fn kind_name(kind: &PointKind) -> &'static str {
    match kind {
        PointKind::Bit | PointKind::RegisterBit { .. } => "bool",
        PointKind::String(_) => "string",
        PointKind::Number { data_type, .. } => match data_type {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
        },
    }
}

fn point_config_json(point: &Point, writable: bool) -> Value {
    let scale = match point.kind {
        PointKind::Number {
            scale: Some(scale), ..
        } => Some(scale),
        _ => None,
    };
    json!({
        "name": point.name,
        "table": table_name(point.table),
        "address": point.address,
        "type": kind_name(&point.kind),
        "unit": point.unit,
        "access": if writable { "read-write" } else { "read" },
        "scaled": scale.is_some(),
    })
}

fn summary_json(device: &DeviceSnapshot) -> Value {
    let config = &device.config;
    json!({
        "name": config.name,
        "type": config.device_type,
        "link": link_json(&config.link),
        "unit_id": config.unit_id,
        "interval_ms": millis(config.interval),
        "enabled": !matches!(device.status, Status::Disabled),
        "status": status_json(&device.status),
        "counters": counters_json(device),
        "last_poll": device.last_poll.map(epoch),
    })
}

fn plan_json(plan: &PlanView) -> Value {
    json!({
        "requests": plan.reads.iter().map(|read| json!({
            "table": table_name(read.table),
            "address": read.address,
            "quantity": read.quantity,
            "points": read.points,
        })).collect::<Vec<_>>(),
        "skipped_addresses": plan.forbidden.iter().map(|(table, address)| json!({
            "table": table_name(*table), "address": address
        })).collect::<Vec<_>>(),
        "read_boundaries": plan.boundaries.iter().map(|(table, address)| json!({
            "table": table_name(*table), "address": address
        })).collect::<Vec<_>>(),
        "explained": plan.to_string(),
    })
}

fn find(engine: &Engine, name: &str) -> Result<DeviceSnapshot, ApiError> {
    engine.device(name).ok_or_else(|| {
        harvest::Error::UnknownDevice {
            device: name.into(),
        }
        .into()
    })
}

async fn list_devices(State(state): State<AppState>) -> impl IntoResponse {
    let devices: Vec<Value> = state.engine.devices().iter().map(summary_json).collect();
    axum::Json(json!({ "devices": devices }))
}

async fn device_detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let device = find(&state.engine, &name)?;
    let mut body = summary_json(&device);
    let config = &device.config;
    if let Value::Object(map) = &mut body {
        map.insert(
            "config".into(),
            json!({
                "timeout_ms": millis(config.response_timeout),
                "retries": config.retries,
                "retry_delay_ms": millis(config.retry_delay),
                "history": config.history,
                "max_registers_per_read": config.limits.max_registers,
                "max_bits_per_read": config.limits.max_bits,
                "one_request_per_point": config.limits.one_read_per_point,
                "pause_after_connect_ms": millis(config.pause_after_connect),
                "frame_gap_ms": millis(config.frame_gap),
                "backoff_initial_ms": millis(config.backoff.initial),
                "backoff_max_ms": millis(config.backoff.max),
            }),
        );
        map.insert(
            "points".into(),
            config
                .points
                .points()
                .iter()
                .map(|point| point_config_json(point, config.writable.contains(&point.name)))
                .collect(),
        );
        map.insert("plan".into(), plan_json(&device.plan));
    }
    Ok(axum::Json(body))
}

fn sample_json(sample: &Sample) -> Value {
    let mut body = json!({
        "device": &*sample.device,
        "point": &*sample.point,
        "value": sample.value.as_ref().map(value_json),
        "quality": sample.quality.as_str(),
        "timestamp": epoch(sample.timestamp),
        "sequence": sample.sequence,
    });
    if let (Quality::Bad(reason), Value::Object(map)) = (&sample.quality, &mut body) {
        map.insert("reason".into(), json!(&**reason));
    }
    body
}

async fn device_data(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let device = find(&state.engine, &name)?;
    let now = SystemTime::now();
    let age = |at: SystemTime| now.duration_since(at).map_or(0.0, millis);
    let config = &device.config;
    let points: Vec<Value> = device
        .points
        .iter()
        .zip(config.points.points())
        .map(|(state, point)| {
            let mut body = json!({
                "name": &*state.name,
                "value": state.value.as_ref().map(value_json),
                "unit": point.unit,
                "type": kind_name(&point.kind),
                "quality": state.quality.as_str(),
                "timestamp": state.timestamp.map(epoch),
                "age_ms": state.timestamp.map(age),
                "sequence": state.sequence,
                "access": if config.writable.contains(&point.name) { "read-write" } else { "read" },
            });
            if let (Quality::Bad(reason), Value::Object(map)) = (&state.quality, &mut body) {
                map.insert("reason".into(), json!(&**reason));
            }
            body
        })
        .collect();
    Ok(axum::Json(json!({
        "device": config.name,
        "status": status_json(&device.status),
        "polled_at": device.last_poll.map(epoch),
        "age_ms": device.last_poll.map(age),
        "points": points,
    })))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<String>,
    point: Option<String>,
}

async fn device_history(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let device = find(&state.engine, &name)?;
    let limit = match query.limit.as_deref() {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("limit={text:?} is not a positive whole number, e.g. ?limit=100"),
                )
            })?,
    };
    let names: Vec<String> = match &query.point {
        Some(point) => vec![point.clone()],
        None => device
            .config
            .points
            .points()
            .iter()
            .map(|point| point.name.clone())
            .collect(),
    };
    let mut points = Map::new();
    for point in names {
        let samples = state.engine.history(&name, &point, limit)?;
        points.insert(
            point,
            samples.iter().map(sample_json).collect::<Vec<_>>().into(),
        );
    }
    Ok(axum::Json(
        json!({ "device": name, "limit": limit, "points": points }),
    ))
}

/// The JSON value for `point` as a [`PointValue`].
///
/// # Errors
/// Why the value does not fit the point's type, worded for the person who sent it.
pub fn json_to_value(point: &Point, value: &Value) -> Result<PointValue, String> {
    let name = &point.name;
    match point.kind {
        PointKind::Bit | PointKind::RegisterBit { .. } => match value {
            Value::Bool(on) => Ok(PointValue::Bool(*on)),
            Value::Number(n) if n.as_u64() == Some(0) => Ok(PointValue::Bool(false)),
            Value::Number(n) if n.as_u64() == Some(1) => Ok(PointValue::Bool(true)),
            other => Err(format!(
                "point {name:?} is a bool: send true or false, not {other}"
            )),
        },
        PointKind::String(format) => match value {
            Value::String(text) => Ok(PointValue::Text(text.clone())),
            other => Err(format!(
                "point {name:?} is a string of up to {} characters: send a JSON string, not {other}",
                format.byte_len()
            )),
        },
        PointKind::Number {
            data_type, scale, ..
        } => {
            let Value::Number(number) = value else {
                return Err(format!(
                    "point {name:?} is a number: send a JSON number, not {value}"
                ));
            };
            if scale.is_some() || matches!(data_type, DataType::F32 | DataType::F64) {
                let float = number
                    .as_f64()
                    .ok_or_else(|| format!("{number} is not a number"))?;
                return Ok(if scale.is_none() && data_type == DataType::F32 {
                    #[allow(clippy::cast_possible_truncation)] // f32 points take f32 precision
                    let single = float as f32;
                    if !single.is_finite() {
                        return Err(format!("{number} does not fit an f32"));
                    }
                    PointValue::F32(single)
                } else {
                    PointValue::F64(float)
                });
            }
            let out_of_range = || {
                format!(
                    "{number} is not a whole number in the range of point {name:?}'s type ({})",
                    kind_name(&point.kind)
                )
            };
            let integer = || -> Result<i128, String> {
                number
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| number.as_u64().map(i128::from))
                    .ok_or_else(out_of_range)
            };
            PointValue::from_integer(data_type, integer()?).ok_or_else(out_of_range)
        }
    }
}

/// A JSON object's entries in the order of the text.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a JSON object of point name to value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

async fn device_write(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let device = find(&state.engine, &name)?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON ({error}); send an object of point name to value, e.g. {{\"setpoint\": 42.5}}"),
        )
    })?;
    let Value::Object(_) = parsed else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "send a JSON object of point name to value, e.g. {\"setpoint\": 42.5}",
        ));
    };
    // The points are written in the order the body names them (a set-point before the start
    // command), which `serde_json::Map` would sort away.
    let writes = serde_json::from_slice::<Entries>(&body)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?
        .0;
    let mut named = std::collections::BTreeSet::new();
    if let Some((twice, _)) = writes.iter().find(|(name, _)| !named.insert(name)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("point {twice:?} is named twice in the object; name each point once"),
        ));
    }
    if writes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the object names no point; send e.g. {\"setpoint\": 42.5}",
        ));
    }
    // Every point and value is checked before anything is sent.
    let config = &device.config;
    let mut values = Vec::new();
    for (point_name, value) in &writes {
        let point = config.points.get(point_name).ok_or_else(|| {
            ApiError::from(harvest::Error::UnknownPoint {
                device: name.clone(),
                point: point_name.clone(),
            })
        })?;
        if !config.writable.contains(point_name) {
            return Err(harvest::Error::ReadOnly {
                device: name.clone(),
                point: point_name.clone(),
            }
            .into());
        }
        let value = json_to_value(point, value)
            .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, message))?;
        values.push((point_name.clone(), value));
    }
    let engine = Arc::clone(&state.engine);
    let device_name = name.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        for (point, value) in values {
            let result = engine.write(&device_name, &point, value);
            let failed = result.is_err();
            results.push((point, result));
            if failed {
                // Later points are not written after a failure, so the order stays simple.
                break;
            }
        }
        results
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the write task failed"))?;
    let mut written = Map::new();
    let mut failure = None;
    for (point, result) in outcome {
        match result {
            Ok(sample) => {
                written.insert(point, sample_json(&sample));
            }
            Err(error) => failure = Some((point, error)),
        }
    }
    let skipped: Vec<&String> = writes
        .iter()
        .map(|(point, _)| point)
        .filter(|point| {
            !written.contains_key(*point) && failure.as_ref().is_none_or(|(p, _)| p != *point)
        })
        .collect();
    match failure {
        None => Ok(axum::Json(json!({ "device": name, "written": written })).into_response()),
        Some((point, error)) => Err(ApiError::from(error)
            .with("point", json!(point))
            .with("written", Value::Object(written))
            .with("not_sent", json!(skipped))),
    }
}

async fn control(
    state: AppState,
    name: String,
    action: fn(&Engine, &str) -> Result<(), harvest::Error>,
) -> Result<impl IntoResponse, ApiError> {
    let engine = Arc::clone(&state.engine);
    let device = name.clone();
    tokio::task::spawn_blocking(move || action(&engine, &device))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the task failed"))??;
    let snapshot = find(&state.engine, &name)?;
    Ok(axum::Json(
        json!({ "device": name, "status": status_json(&snapshot.status) }),
    ))
}

async fn device_connect(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    control(state, name, Engine::connect).await
}

async fn device_disconnect(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    control(state, name, Engine::disconnect).await
}

async fn device_enable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    control(state, name, Engine::enable).await
}

async fn device_disable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    control(state, name, Engine::disable).await
}

/// An engine event as an SSE message (`sample` or `status`), or `None` for events the stream
/// does not carry.
#[must_use]
pub fn sse_message(event: &Event) -> Option<(String, String)> {
    match event {
        Event::Sample(sample) => Some(("sample".into(), sample_json(sample).to_string())),
        Event::Status { device, status } => Some((
            "status".into(),
            json!({ "device": &**device, "status": status_json(status) }).to_string(),
        )),
        _ => None,
    }
}

async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = state.events.subscribe();
    let stopping = state.stopping.clone();
    let stream = stream::unfold(
        (receiver, stopping),
        |(mut receiver, mut stopping)| async move {
            let received = tokio::select! {
                received = receiver.recv() => received,
                _ = stopping.wait_for(|stop| *stop) => return None,
            };
            let event = match received {
                Ok(message) => {
                    let (kind, data) = &*message;
                    SseEvent::default().event(kind).data(data)
                }
                // The page reloads its state when it learns it missed events.
                Err(broadcast::error::RecvError::Lagged(missed)) => SseEvent::default()
                    .event("lagged")
                    .data(json!({ "missed": missed }).to_string()),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), (receiver, stopping)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The MQTT publisher's state: `{"enabled": false}` without one.
async fn mqtt_status(State(state): State<AppState>) -> impl IntoResponse {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(stats) = &state.mqtt else {
        return axum::Json(json!({ "enabled": false }));
    };
    axum::Json(json!({
        "enabled": true,
        "connected": stats.connected.load(Relaxed),
        "connects": stats.connects.load(Relaxed),
        "connection_failures": stats.connection_failures.load(Relaxed),
        "acknowledged": stats.acknowledged.load(Relaxed),
        "queued_polls": stats.queued.load(Relaxed),
        "backlog_polls": stats.backlog.load(Relaxed),
        "backlog_bytes": stats.backlog_bytes.load(Relaxed),
        "dropped_polls": stats.dropped.load(Relaxed),
        "corrupt_records": stats.corrupt.load(Relaxed),
        "missed_events": stats.missed_events.load(Relaxed),
        "writes": stats.writes.load(Relaxed),
        "writes_refused": stats.writes_refused.load(Relaxed),
    }))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let devices = state.engine.devices();
    let dropped = (state.dropped)();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&devices, dropped, state.mqtt.as_deref()),
    )
}

/// The latest values of every device as `device → point → value`, for logs and tests.
#[must_use]
pub fn latest_values(engine: &Engine) -> BTreeMap<String, BTreeMap<String, Value>> {
    engine
        .devices()
        .iter()
        .map(|device| {
            let points = device
                .points
                .iter()
                .map(|point| {
                    (
                        point.name.to_string(),
                        point.value.as_ref().map_or(Value::Null, value_json),
                    )
                })
                .collect();
            (device.config.name.clone(), points)
        })
        .collect()
}
