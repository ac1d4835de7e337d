//! The set of unit ids a server answers.

/// The unit ids a server answers, as a 256-bit set.
///
/// A serial server answers only its own address (1–247); a server directly on TCP answers any
/// unit id (0xFF and 0x00 by convention, `modbus-reference.md` §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitIds {
    bits: [u64; 4],
}

impl UnitIds {
    /// No unit id at all.
    #[must_use]
    pub const fn none() -> Self {
        Self { bits: [0; 4] }
    }

    /// Every unit id.
    #[must_use]
    pub const fn all() -> Self {
        Self {
            bits: [u64::MAX; 4],
        }
    }

    /// Just `unit_id`.
    #[must_use]
    pub fn single(unit_id: u8) -> Self {
        Self::none().with(unit_id)
    }

    /// This set plus `unit_id`.
    #[must_use]
    pub fn with(mut self, unit_id: u8) -> Self {
        if let Some(word) = self.bits.get_mut(usize::from(unit_id / 64)) {
            *word |= 1 << (unit_id % 64);
        }
        self
    }

    /// `true` when `unit_id` is in the set.
    #[must_use]
    pub fn contains(&self, unit_id: u8) -> bool {
        self.bits
            .get(usize::from(unit_id / 64))
            .is_some_and(|word| word & (1 << (unit_id % 64)) != 0)
    }
}
