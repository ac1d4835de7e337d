//! Jitter without a random-number crate: `SplitMix64` seeded from std's per-process random keys.

use core::hash::{BuildHasher, Hasher};
use std::collections::hash_map::RandomState;

/// A small, fast, non-cryptographic generator; jitter only needs devices not to move in step.
#[derive(Debug, Clone)]
pub(super) struct Random {
    state: u64,
}

impl Random {
    /// Seeded from `RandomState` (random per process) and `salt` (per link).
    pub(super) fn new(salt: &str) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write(salt.as_bytes());
        Self {
            state: hasher.finish(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    #[allow(clippy::cast_precision_loss)] // 53 bits fill an f64 mantissa exactly
    pub(super) fn unit(&mut self) -> f64 {
        let value = (self.next_u64() >> 11) as f64;
        value / (1u64 << 53) as f64
    }
}
