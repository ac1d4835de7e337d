//! Variable-length lists inside a PDU: file-record groups (FC 20/21) and device-id objects (FC 43/14).
//!
//! A [`WireList`] is either a zero-copy view of validated wire bytes (what decoding returns) or a
//! borrowed slice of typed items (what a caller builds to encode). Both iterate the same items and
//! compare equal when their items are equal.

use core::fmt;

use super::cursor::Writer;
use crate::error::EncodeError;

/// An element of a [`WireList`]: knows how to read itself from validated bytes and write itself.
///
/// Implemented by [`FileReadGroup`](super::FileReadGroup), [`FileRecord`](super::FileRecord),
/// [`Registers`](super::Registers) (FC 20 sub-responses) and
/// [`DeviceIdObject`](super::DeviceIdObject). The trait is sealed.
pub trait WireItem<'a>: Copy + PartialEq + fmt::Debug + sealed::Sealed {
    /// Reads one item from the front of `bytes`, advancing it; `None` when no whole item remains.
    /// Only called on bytes the decoder has validated.
    fn read(bytes: &mut &'a [u8]) -> Option<Self>;
    /// Bytes this item takes on the wire.
    fn wire_len(&self) -> usize;
    /// Writes the item at the front of `out`, returning the bytes written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` is shorter than [`wire_len`](Self::wire_len).
    fn write_to(&self, out: &mut [u8]) -> Result<usize, EncodeError>;
}

pub(crate) mod sealed {
    /// Keeps [`WireItem`](super::WireItem) closed: its items are defined by the specification.
    #[allow(unnameable_types)]
    pub trait Sealed {}
}

/// A list of [`WireItem`]s: validated wire bytes, or caller-owned items.
#[derive(Clone, Copy)]
pub struct WireList<'a, T> {
    repr: Repr<'a, T>,
}

#[derive(Clone, Copy)]
enum Repr<'a, T> {
    Wire(&'a [u8]),
    Items(&'a [T]),
}

impl<'a, T: WireItem<'a>> WireList<'a, T> {
    /// Wraps caller-owned items, for encoding.
    #[must_use]
    pub const fn from_items(items: &'a [T]) -> Self {
        Self {
            repr: Repr::Items(items),
        }
    }

    /// Wraps bytes the decoder has validated to hold a whole number of items.
    pub(crate) const fn from_validated_wire(bytes: &'a [u8]) -> Self {
        Self {
            repr: Repr::Wire(bytes),
        }
    }

    /// Iterates over the items.
    #[must_use]
    pub fn iter(&self) -> WireListIter<'a, T> {
        WireListIter { repr: self.repr }
    }

    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Wire(_) => self.iter().count(),
            Repr::Items(items) => items.len(),
        }
    }

    /// `true` when the list has no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self.repr {
            Repr::Wire(bytes) => bytes.is_empty(),
            Repr::Items(items) => items.is_empty(),
        }
    }

    /// Bytes the items take on the wire.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        match self.repr {
            Repr::Wire(bytes) => bytes.len(),
            // Caller items may repeat one large buffer, so the total could pass `usize::MAX`:
            // saturate, as a saturated length fails every PDU length check.
            Repr::Items(items) => items.iter().fold(0, |total: usize, item| {
                total.saturating_add(item.wire_len())
            }),
        }
    }

    /// The bytes as received, when this list was decoded from the wire.
    #[must_use]
    pub const fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            Repr::Wire(bytes) => Some(bytes),
            Repr::Items(_) => None,
        }
    }

    pub(crate) fn write(&self, out: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self.repr {
            Repr::Wire(bytes) => out.bytes(bytes),
            Repr::Items(items) => items.iter().try_for_each(|item| {
                item.write_to(out.slot(item.wire_len())?)?;
                Ok(())
            }),
        }
    }
}

impl<'a, T: WireItem<'a>> PartialEq for WireList<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: WireItem<'a> + Eq> Eq for WireList<'a, T> {}

impl<'a, T: WireItem<'a>> fmt::Debug for WireList<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: WireItem<'a>> IntoIterator for WireList<'a, T> {
    type Item = T;
    type IntoIter = WireListIter<'a, T>;
    fn into_iter(self) -> WireListIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: WireItem<'a>> IntoIterator for &WireList<'a, T> {
    type Item = T;
    type IntoIter = WireListIter<'a, T>;
    fn into_iter(self) -> WireListIter<'a, T> {
        self.iter()
    }
}

/// Iterator over a [`WireList`].
#[derive(Clone)]
pub struct WireListIter<'a, T> {
    repr: Repr<'a, T>,
}

impl<T> fmt::Debug for WireListIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireListIter").finish_non_exhaustive()
    }
}

impl<'a, T: WireItem<'a>> Iterator for WireListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.repr {
            Repr::Wire(bytes) => T::read(bytes),
            Repr::Items(items) => {
                let (first, rest) = items.split_first()?;
                *items = rest;
                Some(*first)
            }
        }
    }
}
