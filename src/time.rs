//! Time for the sans-IO core.
//!
//! The core never reads a clock: every call that depends on time takes `now` as an argument, so the
//! same state machines run on a microcontroller timer, on `std::time::Instant`, or on a fake clock
//! in tests. [`Instant`] is a point on a monotonic microsecond timeline whose origin the caller
//! chooses; [`Duration`] is a span of microseconds. Both saturate instead of overflowing, so a
//! misbehaving clock can produce a wrong timeout but never a panic.

use core::ops::{Add, Sub};

/// A point in time, in microseconds since an origin chosen by the caller (boot, process start, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The origin of the timeline.
    pub const ZERO: Self = Self { micros: 0 };

    /// An instant `micros` microseconds after the origin.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// The current time on the process-wide monotonic clock, whose origin is the first call.
    ///
    /// Only the `std` layer reads the clock; the core always takes `now` as an argument.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn now() -> Self {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        let elapsed = std::time::Instant::now().saturating_duration_since(origin);
        // 64-bit arithmetic: `Duration::as_micros` goes through `u128`, and this runs for every
        // request a client sends.
        Self {
            micros: elapsed
                .as_secs()
                .saturating_mul(1_000_000)
                .saturating_add(u64::from(elapsed.subsec_micros())),
        }
    }

    /// Microseconds since the origin.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Self {
            micros: self.micros.saturating_add(rhs.micros),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Self {
            micros: self.micros.saturating_sub(rhs.micros),
        }
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A span of time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    micros: u64,
}

impl Duration {
    /// No time at all.
    pub const ZERO: Self = Self { micros: 0 };

    /// A span of `micros` microseconds.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// A span of `millis` milliseconds (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// A span of `secs` seconds (saturating).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// The span in microseconds.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// The span in whole milliseconds, rounded down.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.micros / 1000
    }

    /// `self * factor`, saturating at the largest representable span.
    #[must_use]
    pub const fn saturating_mul(self, factor: u64) -> Self {
        Self {
            micros: self.micros.saturating_mul(factor),
        }
    }
}

impl Add for Duration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self {
            micros: self.micros.saturating_add(rhs.micros),
        }
    }
}

impl Sub for Duration {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self {
            micros: self.micros.saturating_sub(rhs.micros),
        }
    }
}

#[cfg(feature = "std")]
impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        Self::from_micros(d.micros)
    }
}

#[cfg(feature = "std")]
impl From<std::time::Duration> for Duration {
    /// Converts, saturating spans longer than `u64::MAX` microseconds (about 584 000 years).
    fn from(d: std::time::Duration) -> Self {
        Self {
            micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}
