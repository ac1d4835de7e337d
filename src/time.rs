//! Time for the sans-IO core.
//!
//! The core never reads a clock: every call that depends on time takes `now` as an argument, so the
//! same state machines run on a microcontroller timer, on `std::time::Instant`, or on a fake clock
//! in tests. [`Instant`] is a point on a monotonic microsecond timeline whose origin the caller
//! chooses. Spans are [`core::time::Duration`], the very type `std::time::Duration` is, so
//! one duration type serves the core and the blocking API alike. Arithmetic between the two
//! saturates instead of overflowing, so a misbehaving clock can produce a wrong timeout but
//! never a panic.

use core::ops::{Add, Sub};
use core::time::Duration;

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
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Adds whole microseconds of `rhs` (rounded down), saturating at the end of the timeline.
    fn add(self, rhs: Duration) -> Self {
        Self {
            micros: self.micros.saturating_add(micros(rhs)),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    /// Subtracts whole microseconds of `rhs` (rounded down), saturating at the origin.
    fn sub(self, rhs: Duration) -> Self {
        Self {
            micros: self.micros.saturating_sub(micros(rhs)),
        }
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// Whole microseconds of `duration`, saturating at `u64::MAX` (about 584 000 years); the
/// 64-bit arithmetic spares the hot paths `Duration::as_micros`'s `u128`.
#[must_use]
pub(crate) const fn micros(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(duration.subsec_micros() as u64)
}
