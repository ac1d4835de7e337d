//! What the engine is told about a device and its link.

use std::boxed::Box;
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::string::String;
use std::time::Duration;

use crate::frame::Framing;
use crate::point::{DeviceLimits, PointMap};
use crate::transport::Transport;
use crate::transport::tcp::{self, TcpTransport};

/// Samples kept per point unless [`DeviceConfig::history`] says otherwise.
pub const DEFAULT_HISTORY: usize = 1000;

/// The physical link a device sits on. Devices whose links have the same
/// [`id`](Self::id) share one connection (one TCP connection to a gateway address, one open
/// serial port) and one worker thread, which polls them in turn.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Link {
    /// A TCP connection: Modbus TCP, or RTU over TCP to a serial-to-Ethernet converter.
    Tcp {
        /// `host:port` (the same text for every device behind one gateway).
        address: String,
        /// [`Framing::Tcp`] or [`Framing::RtuOverTcp`].
        framing: Framing,
        /// Socket settings. The engine reopens broken connections itself, with backoff and
        /// jitter: it sets [`tcp::Config::reconnect_attempts`] to 1. Leave
        /// [`tcp::Config::close_on_timeout`] off on a shared link: one silent unit id would
        /// close the connection of every device behind the gateway.
        config: tcp::Config,
    },
    /// A serial port (feature `serial`): RTU or ASCII.
    #[cfg(feature = "serial")]
    Serial {
        /// Path of the port, e.g. `/dev/ttyUSB0`.
        path: String,
        /// [`Framing::Rtu`] or [`Framing::Ascii`].
        framing: Framing,
        /// Character format and timing.
        config: crate::transport::serial::Config,
    },
}

impl Link {
    /// Modbus TCP to `address` (`host:port`) with default socket settings.
    pub fn tcp(address: impl Into<String>) -> Self {
        Self::Tcp {
            address: address.into(),
            framing: Framing::Tcp,
            config: tcp::Config::default(),
        }
    }

    /// RTU over TCP to `address` (`host:port`) with default socket settings.
    pub fn rtu_over_tcp(address: impl Into<String>) -> Self {
        Self::Tcp {
            address: address.into(),
            framing: Framing::RtuOverTcp,
            config: tcp::Config::default(),
        }
    }

    /// The framing of the link.
    #[must_use]
    pub fn framing(&self) -> Framing {
        match self {
            Self::Tcp { framing, .. } => *framing,
            #[cfg(feature = "serial")]
            Self::Serial { framing, .. } => *framing,
        }
    }

    /// What identifies the physical link: `tcp:ADDRESS` or `serial:PATH`.
    #[must_use]
    pub fn id(&self) -> String {
        match self {
            Self::Tcp { address, .. } => std::format!("tcp:{address}"),
            #[cfg(feature = "serial")]
            Self::Serial { path, .. } => std::format!("serial:{path}"),
        }
    }

    /// `true` when the framing suits the medium.
    pub(super) fn framing_fits(&self) -> bool {
        match self {
            Self::Tcp { framing, .. } => !framing.is_serial(),
            #[cfg(feature = "serial")]
            Self::Serial { framing, .. } => framing.is_serial(),
        }
    }

    /// Opens the link: one connection attempt.
    pub(super) fn open(&self) -> io::Result<Box<dyn Transport + Send>> {
        match self {
            Self::Tcp {
                address,
                framing,
                config,
            } => {
                let config = tcp::Config {
                    reconnect_attempts: 1,
                    ..*config
                };
                let transport = if *framing == Framing::RtuOverTcp {
                    TcpTransport::connect_rtu_over_tcp(address.as_str(), config)?
                } else {
                    TcpTransport::connect(address.as_str(), config)?
                };
                Ok(Box::new(transport))
            }
            #[cfg(feature = "serial")]
            Self::Serial {
                path,
                framing,
                config,
            } => Ok(Box::new(crate::transport::serial::SerialTransport::open(
                path, *config, *framing,
            )?)),
        }
    }
}

impl fmt::Display for Link {
    /// `modbus-tcp 10.0.0.5:502`, `rtu-over-tcp 10.0.0.6:4001`, `rtu /dev/ttyUSB0 19200 8E1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp {
                address, framing, ..
            } => {
                let name = if *framing == Framing::RtuOverTcp {
                    "rtu-over-tcp"
                } else {
                    "modbus-tcp"
                };
                write!(f, "{name} {address}")
            }
            #[cfg(feature = "serial")]
            Self::Serial {
                path,
                framing,
                config,
            } => {
                use crate::frame::rtu::{Parity, StopBits};
                let name = if *framing == Framing::Ascii {
                    "ascii"
                } else {
                    "rtu"
                };
                let parity = match config.parity {
                    Parity::None => 'N',
                    Parity::Even => 'E',
                    Parity::Odd => 'O',
                };
                let stop = match config.stop_bits {
                    StopBits::One => 1,
                    StopBits::Two => 2,
                };
                write!(
                    f,
                    "{name} {path} {} {}{parity}{stop}",
                    config.baud_rate, config.data_bits
                )
            }
        }
    }
}

/// Exponential backoff of a device that stops answering (or a link that cannot be opened):
/// the n-th failure in a row waits `initial × 2ⁿ⁻¹`, at most `max`, with jitter (a random
/// 50–100% of that), so devices that failed together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, doubling up to 60 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (at least 1), with `random` in `0.0..1.0`
    /// choosing the jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modbus_stack::harvest::Backoff;
    /// let backoff = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(8) };
    /// assert_eq!(backoff.delay(1, 0.999_999).as_millis(), 999);
    /// assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(2));
    /// assert_eq!(backoff.delay(30, 0.5), Duration::from_secs(6));
    /// ```
    #[must_use]
    pub fn delay(&self, failures: u32, random: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let full = self
            .initial
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.initial));
        // Equal jitter: never less than half the step, so the waits still grow.
        full.mul_f64(0.5 + random.clamp(0.0, 1.0) / 2.0)
    }
}

/// A device for the [`Engine`](super::Engine): where it is, what to read, how often, and how
/// to treat it. [`DeviceConfig::new`] sets the defaults; change the public fields as needed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Unique name (in the API, the logs, the metrics).
    pub name: String,
    /// What it is ("plc", "meter"), for people; the engine does not use it.
    pub device_type: Option<String>,
    /// Its link.
    pub link: Link,
    /// Its unit id; every point of [`points`](Self::points) must carry it.
    pub unit_id: u8,
    /// What to read.
    pub points: PointMap,
    /// Names of the points that may be written ([`Engine::write`](super::Engine::write));
    /// every other point is read-only, whatever its table allows.
    pub writable: BTreeSet<String>,
    /// Time between polls. Polls keep to a fixed schedule (a late poll does not shift the next).
    pub interval: Duration,
    /// How long to wait for each response. Default 1 s.
    pub response_timeout: Duration,
    /// Transmissions repeated after a timeout (reads only; a write is sent once). Default 2.
    pub retries: u32,
    /// Wait before the first repeat (doubling after it). Default 100 ms.
    pub retry_delay: Duration,
    /// Read limits and addresses to avoid; the planner's input.
    pub limits: DeviceLimits,
    /// Silence after the link is opened before the first request to this device (devices that
    /// need time after a connect).
    pub pause_after_connect: Duration,
    /// Least silence between the end of one exchange on the link and a request to this device.
    pub frame_gap: Duration,
    /// Backoff when it stops answering.
    pub backoff: Backoff,
    /// Samples kept per point (at least 1).
    pub history: usize,
    /// Polled from the start; a disabled device is added but left alone until enabled.
    pub enabled: bool,
}

impl DeviceConfig {
    /// A device polled every second, with the defaults of every other field.
    pub fn new(name: impl Into<String>, link: Link, unit_id: u8, points: PointMap) -> Self {
        Self {
            name: name.into(),
            device_type: None,
            link,
            unit_id,
            points,
            writable: BTreeSet::new(),
            interval: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            retries: 2,
            retry_delay: Duration::from_millis(100),
            limits: DeviceLimits::default(),
            pause_after_connect: Duration::ZERO,
            frame_gap: Duration::ZERO,
            backoff: Backoff::default(),
            history: DEFAULT_HISTORY,
            enabled: true,
        }
    }

    /// The same device with points `names` writable.
    #[must_use]
    pub fn with_writable<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.writable.extend(names.into_iter().map(Into::into));
        self
    }

    /// The same device polled every `interval`.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}
