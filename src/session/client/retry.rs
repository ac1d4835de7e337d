//! The retry schedule of a client session.

use core::time::Duration;

use crate::pdu::Request;

/// When and how often a request is sent again after its response timed out.
///
/// Attempt 1 is the first transmission. After attempt `k` times out, attempt `k + 1` is sent
/// after [`backoff(k)`](Self::backoff) = `min(initial_backoff × 2^(k−1), max_backoff)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Transmissions in total, at least 1 (a value of 0 is treated as 1).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial_backoff: Duration,
    /// Largest delay between two attempts.
    pub max_backoff: Duration,
    /// Retry requests that change the server's state, too.
    ///
    /// Off by default: when the response to a write is lost, the server may well have applied
    /// the write, and repeating it is not always harmless: a mask write (FC 22) applied twice
    /// is, but a FIFO queue or a vendor function may count or consume, and a second write may
    /// overwrite a value someone else set in between. Only requests for which
    /// [`Request::is_read_only`] holds (minus FC 24, whose queue some devices pop on read) are
    /// retried unless this is set.
    pub retry_writes: bool,
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub const NONE: Self = Self {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        retry_writes: false,
    };

    /// Three attempts for reads, 100 ms then 200 ms apart (capped at 1 s); writes once.
    pub const DEFAULT: Self = Self {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        retry_writes: false,
    };

    /// The delay between attempt `attempt` (1-based) timing out and the next attempt.
    ///
    /// ```
    /// use modbus_stack::session::client::RetryPolicy;
    /// use std::time::Duration;
    /// let policy = RetryPolicy {
    ///     max_attempts: 5,
    ///     initial_backoff: Duration::from_millis(100),
    ///     max_backoff: Duration::from_millis(300),
    ///     retry_writes: false,
    /// };
    /// assert_eq!(policy.backoff(1), Duration::from_millis(100));
    /// assert_eq!(policy.backoff(2), Duration::from_millis(200));
    /// assert_eq!(policy.backoff(3), Duration::from_millis(300)); // capped
    /// ```
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let factor = 1u32.checked_shl(exponent).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// `true` when `request` may be sent again after a timeout under this policy.
    #[must_use]
    pub fn may_retry(&self, request: &Request<'_>) -> bool {
        self.retry_writes
            || (request.is_read_only() && !matches!(request, Request::ReadFifoQueue { .. }))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}
