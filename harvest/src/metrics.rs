//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::mqtt::MqttStats;

use modbus_stack::harvest::{DeviceSnapshot, Histogram, Quality, Status};

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, device: &str, histogram: &Histogram) {
    for (bound, count) in histogram.cumulative() {
        let _ = writeln!(
            out,
            "{name}_bucket{{device=\"{device}\",le=\"{}\"}} {count}",
            bound.as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{device=\"{device}\",le=\"+Inf\"}} {}",
        histogram.count()
    );
    let _ = writeln!(
        out,
        "{name}_sum{{device=\"{device}\"}} {}",
        histogram.sum().as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{name}_count{{device=\"{device}\"}} {}",
        histogram.count()
    );
}

/// Renders every device's counters, status, round-trip and lateness histograms and numeric
/// point values; `dropped` is the service's own count of events its stream lost; `mqtt` the
/// publisher's counters, when it publishes.
#[must_use]
#[allow(clippy::too_many_lines)] // one metric family after the other
pub fn render(devices: &[DeviceSnapshot], dropped: u64, mqtt: Option<&MqttStats>) -> String {
    type Counter = fn(&DeviceSnapshot) -> u64;
    let mut out = String::with_capacity(4096 + devices.len() * 2048);
    let counters: [(&str, &str, Counter); 8] = [
        ("polls", "Polls made.", |d| d.counters.polls),
        ("requests", "Requests sent.", |d| d.counters.requests),
        (
            "responses",
            "Responses received, exceptions included.",
            |d| d.counters.responses,
        ),
        (
            "timeouts",
            "Requests unanswered after every attempt.",
            |d| d.counters.timeouts,
        ),
        ("retries", "Transmissions repeated after a timeout.", |d| {
            d.counters.retries
        }),
        (
            "invalid_responses",
            "Responses that did not fit their request.",
            |d| d.counters.invalid_responses,
        ),
        ("reconnects", "Times the device's link was reopened.", |d| {
            d.counters.reconnects
        }),
        (
            "plan_rebuilds",
            "Read plans rebuilt around learned holes.",
            |d| d.counters.plan_rebuilds,
        ),
    ];
    for (name, help, value) in counters {
        let metric = format!("modbus_harvest_{name}_total");
        header(&mut out, &metric, "counter", help);
        for device in devices {
            let _ = writeln!(
                out,
                "{metric}{{device=\"{}\"}} {}",
                escape(&device.config.name),
                value(device)
            );
        }
    }
    header(
        &mut out,
        "modbus_harvest_exceptions_total",
        "counter",
        "Exception responses by exception code.",
    );
    for device in devices {
        for (code, count) in &device.counters.exceptions {
            let _ = writeln!(
                out,
                "modbus_harvest_exceptions_total{{device=\"{}\",code=\"{code:02}\"}} {count}",
                escape(&device.config.name)
            );
        }
    }
    header(
        &mut out,
        "modbus_harvest_device_status",
        "gauge",
        "1 for the device's current status.",
    );
    for device in devices {
        let _ = writeln!(
            out,
            "modbus_harvest_device_status{{device=\"{}\",status=\"{}\"}} 1",
            escape(&device.config.name),
            device.status.name()
        );
    }
    header(
        &mut out,
        "modbus_harvest_device_up",
        "gauge",
        "1 when the device's latest poll was answered.",
    );
    for device in devices {
        let up = matches!(device.status, Status::Connected | Status::Error { .. });
        let _ = writeln!(
            out,
            "modbus_harvest_device_up{{device=\"{}\"}} {}",
            escape(&device.config.name),
            u8::from(up)
        );
    }
    header(
        &mut out,
        "modbus_harvest_rtt_seconds",
        "histogram",
        "Round-trip time of answered requests.",
    );
    for device in devices {
        histogram(
            &mut out,
            "modbus_harvest_rtt_seconds",
            &escape(&device.config.name),
            &device.counters.rtt,
        );
    }
    header(
        &mut out,
        "modbus_harvest_poll_lateness_seconds",
        "histogram",
        "How late polls started against their schedule.",
    );
    for device in devices {
        histogram(
            &mut out,
            "modbus_harvest_poll_lateness_seconds",
            &escape(&device.config.name),
            &device.counters.lateness,
        );
    }
    header(
        &mut out,
        "modbus_harvest_point_value",
        "gauge",
        "Latest good value of each numeric or bool point.",
    );
    for device in devices {
        for point in &device.points {
            let Some(value) = point
                .value
                .as_ref()
                .and_then(modbus_stack::point::PointValue::as_f64)
            else {
                continue;
            };
            if point.quality != Quality::Good {
                continue;
            }
            let _ = writeln!(
                out,
                "modbus_harvest_point_value{{device=\"{}\",point=\"{}\"}} {value}",
                escape(&device.config.name),
                escape(&point.name)
            );
        }
    }
    header(
        &mut out,
        "modbus_harvest_stream_dropped_events_total",
        "counter",
        "Engine events the service's live stream dropped because it fell behind.",
    );
    let _ = writeln!(out, "modbus_harvest_stream_dropped_events_total {dropped}");
    if let Some(mqtt) = mqtt {
        mqtt_metrics(&mut out, mqtt);
    }
    out
}

fn mqtt_metrics(out: &mut String, stats: &MqttStats) {
    let get = |value: &AtomicU64| value.load(Ordering::Relaxed);
    let families: [(&str, &str, &str, u64); 12] = [
        (
            "mqtt_connected",
            "gauge",
            "1 while connected to the broker.",
            u64::from(stats.connected.load(Ordering::Relaxed)),
        ),
        (
            "mqtt_connects_total",
            "counter",
            "Connections made to the broker.",
            get(&stats.connects),
        ),
        (
            "mqtt_connection_failures_total",
            "counter",
            "Connection attempts and connections that failed.",
            get(&stats.connection_failures),
        ),
        (
            "mqtt_acknowledged_total",
            "counter",
            "Messages the broker acknowledged.",
            get(&stats.acknowledged),
        ),
        (
            "mqtt_queued_polls_total",
            "counter",
            "Device polls put in the store-and-forward queue.",
            get(&stats.queued),
        ),
        (
            "mqtt_queue_polls",
            "gauge",
            "Polls in the queue the broker has not acknowledged.",
            get(&stats.backlog),
        ),
        (
            "mqtt_queue_bytes",
            "gauge",
            "Size of the queue on disk.",
            get(&stats.backlog_bytes),
        ),
        (
            "mqtt_dropped_polls_total",
            "counter",
            "Polls dropped, oldest first, because the queue was full.",
            get(&stats.dropped),
        ),
        (
            "mqtt_corrupt_records_total",
            "counter",
            "Queued records that did not read back (skipped).",
            get(&stats.corrupt),
        ),
        (
            "mqtt_missed_events_total",
            "counter",
            "Engine events the publisher missed because it fell behind.",
            get(&stats.missed_events),
        ),
        (
            "mqtt_writes_total",
            "counter",
            "Writes from the broker carried out.",
            get(&stats.writes),
        ),
        (
            "mqtt_writes_refused_total",
            "counter",
            "Writes from the broker refused or failed.",
            get(&stats.writes_refused),
        ),
    ];
    for (name, kind, help, value) in families {
        let name = format!("modbus_harvest_{name}");
        header(out, &name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}
