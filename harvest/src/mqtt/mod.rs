//! Publishing to an MQTT broker: plain JSON topics or Sparkplug B, every sample through an
//! on-disk store-and-forward queue that it leaves only once the broker has acknowledged it.
//!
//! The path of a sample: the engine's event stream → the publish rules (on change, deadband,
//! maximum interval) → one [`record::QueuedPoll`] per device poll, appended to the
//! [`queue::Queue`] → read back in order by the sender, published at the configured QoS →
//! acknowledged (PUBACK at QoS 1, PUBCOMP at 2, the socket write at 0) → removed.
//! After a disconnect the sender starts again at the first unacknowledged record, so delivery
//! is at least once; each point's `sequence` (fixed when queued) lets a consumer drop
//! duplicates and see gaps.

pub mod publisher;
pub mod queue;
pub mod record;
pub mod sparkplug;

#[cfg(test)]
mod test_rng {
    /// xorshift64*: a seeded generator for the randomised tests, so a failing run replays.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        pub(crate) fn index(&mut self, n: usize) -> usize {
            usize::try_from(self.below(n as u64)).unwrap_or(0)
        }
    }
}

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use modbus_stack::harvest::Backoff;

pub use publisher::{MqttError, MqttStats, Publisher};

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// TCP port (1883 for `mqtt://`, 8883 for `mqtts://` unless given).
    pub port: u16,
    /// TLS (rustls) to the broker.
    pub tls: bool,
}

/// The MQTT quality of service of sample messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Fire and forget: a sample leaves the queue once written to the socket, so a
    /// disconnect can lose the messages in flight.
    AtMostOnce,
    /// Acknowledged (PUBACK); the default.
    AtLeastOnce,
    /// Acknowledged in two steps (PUBCOMP).
    ExactlyOnce,
}

/// What the topics and payloads look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `PREFIX/DEVICE/POINT` with a JSON payload per point; `PREFIX/DEVICE/status` retained.
    Plain {
        /// Topic prefix, e.g. `plant/line1`.
        prefix: String,
    },
    /// Sparkplug B 3.0: `spBv1.0/GROUP/{N,D}{BIRTH,DATA,DEATH}/NODE[/DEVICE]`.
    Sparkplug {
        /// The Sparkplug group id.
        group_id: String,
        /// The edge node id (defaults to the client id).
        edge_node_id: String,
    },
}

/// When a point's sample is published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishPolicy {
    /// Only when the value (beyond `deadband`) or the quality changed.
    pub on_change: bool,
    /// For numbers under `on_change`: a change of at most this much is not a change.
    pub deadband: f64,
    /// Under `on_change`, publish at least this often anyway, so consumers see it is alive.
    pub max_interval: Option<Duration>,
}

impl Default for PublishPolicy {
    fn default() -> Self {
        Self {
            on_change: false,
            deadband: 0.0,
            max_interval: None,
        }
    }
}

/// Publish policies by device and point, falling back to the service-wide default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishRules {
    /// For points without a rule of their own.
    pub default: PublishPolicy,
    /// A device's own default.
    pub devices: BTreeMap<String, PublishPolicy>,
    /// A point's own, by (device, point).
    pub points: BTreeMap<(String, String), PublishPolicy>,
}

impl PublishRules {
    /// The policy of `point` of `device`.
    #[must_use]
    pub fn policy(&self, device: &str, point: &str) -> PublishPolicy {
        self.points
            .get(&(device.to_string(), point.to_string()))
            .or_else(|| self.devices.get(device))
            .copied()
            .unwrap_or(self.default)
    }
}

/// The `[mqtt]` section of the configuration file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// The broker.
    pub broker: Broker,
    /// The MQTT client id; also names the service in its birth and will messages.
    pub client_id: String,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    /// CA certificates (PEM) to trust for TLS; without, the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The QoS of sample messages.
    pub qos: Qos,
    /// Topic layout.
    pub mode: Mode,
    /// Publish rules.
    pub publish: PublishRules,
    /// The store-and-forward queue's directory.
    pub queue_dir: PathBuf,
    /// The queue's size limit on disk; past it the oldest samples are dropped (and counted).
    pub queue_max_bytes: u64,
    /// When the queue forces its writes to disk.
    pub fsync: queue::FsyncPolicy,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Waits between reconnection attempts: doubling, with jitter. Its `max` (10 s by
    /// default) is also the longest a drain waits once the broker is back.
    pub reconnect: Backoff,
}

impl MqttConfig {
    /// A plain-mode configuration for `broker` with every other setting at its default.
    #[must_use]
    pub fn new(broker: Broker, client_id: &str, queue_dir: PathBuf) -> Self {
        Self {
            broker,
            client_id: client_id.into(),
            credentials: None,
            ca_file: None,
            qos: Qos::AtLeastOnce,
            mode: Mode::Plain {
                prefix: "modbus".into(),
            },
            publish: PublishRules::default(),
            queue_dir,
            queue_max_bytes: 256 << 20,
            fsync: queue::FsyncPolicy::Interval(Duration::from_secs(1)),
            keep_alive: Duration::from_secs(30),
            reconnect: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(10),
            },
        }
    }
}
