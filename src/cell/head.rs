//! The head of a SKU cell: the one word every change to the SKU
//! compare-and-swaps, and what it holds.
//!
//! Owns: [`Head`], its 128-bit layout and the limits the layout sets
//! ([`LOTS_MAX`], [`DESCRIPTORS_MAX`]).
//!
//! Must never: hold anything a change could need to know about another
//! change's effects beyond the descriptor that lists them. The head is the
//! linearization point of every change: version, the change's descriptor,
//! and the few fields every change decides on together (where the cursor
//! is, how many lots there are, whether any hold can lapse) move in one
//! compare-and-swap.
//!
//! | bits | field |
//! |---|---|
//! | 80..128 | `version`: changes so far (48 bits, asserted below 2^48) |
//! | 56..80 | `desc`: 1 + the registry index of the last change's descriptor; 0 before the first |
//! | 32..56 | `cursor`: arrival index of the lot the cursor is on |
//! | 8..32 | `lots`: lots received so far |
//! | 0..8 | `flags`: [`DEADLINES`], [`BACKORDERS`], [`QUIET`], [`DISARMED`] |

use super::word::VERSION_MAX;

/// The most lots one SKU may receive (24 bits of arrival index).
pub(crate) const LOTS_MAX: u32 = (1 << 24) - 1;
/// The most descriptors a ledger's registry may hand out at once (24 bits).
pub(crate) const DESCRIPTORS_MAX: u32 = (1 << 24) - 2;

/// Some live hold may have a deadline: the cell's `due` word is meaningful.
pub(crate) const DEADLINES: u8 = 1;
/// Backorders are waiting: every change that gives units back fills them
/// first (see [`super::backorder`]), so the fast paths stay off.
pub(crate) const BACKORDERS: u8 = 1 << 1;
/// The SKU's low-stock rule is disarmed: it fired (or was set while stock
/// was low) and stock has not yet risen above threshold + margin (see
/// [`crate::low_stock`]). Kept only when events are on.
pub(crate) const DISARMED: u8 = 1 << 3;
/// A long change asked the SKU to be quiet while it publishes: other
/// changes wait for it, a bounded while (see [`super::quiet`]).
pub(crate) const QUIET: u8 = 1 << 2;

/// A head, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) version: u64,
    /// 1 + the descriptor's registry index; 0 for none.
    pub(crate) desc: u32,
    /// Every lot before this one in policy order has no unit available; if
    /// this one has none, no lot has any.
    pub(crate) cursor: u32,
    pub(crate) lots: u32,
    pub(crate) flags: u8,
}

impl Head {
    #[inline]
    pub(crate) fn pack(self) -> u128 {
        // The version bound is asserted where a version is made (`land`,
        // and every versioned word); the other fields are bounded where
        // they are handed out (registry, receipts).
        debug_assert!(self.version <= VERSION_MAX, "version past 2^48");
        debug_assert!(self.desc <= DESCRIPTORS_MAX + 1 && self.cursor <= LOTS_MAX && self.lots <= LOTS_MAX);
        u128::from(self.version) << 80
            | u128::from(self.desc) << 56
            | u128::from(self.cursor) << 32
            | u128::from(self.lots) << 8
            | u128::from(self.flags)
    }

    #[inline]
    pub(crate) fn unpack(word: u128) -> Head {
        let bits = |shift: u32, width: u32| ((word >> shift) & ((1 << width) - 1)) as u64;
        Head {
            version: bits(80, 48),
            desc: bits(56, 24) as u32,
            cursor: bits(32, 24) as u32,
            lots: bits(8, 24) as u32,
            flags: bits(0, 8) as u8,
        }
    }

    #[inline]
    pub(crate) fn has(self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_at_its_maximum() {
        let head =
            Head { version: VERSION_MAX, desc: DESCRIPTORS_MAX + 1, cursor: LOTS_MAX, lots: LOTS_MAX, flags: 0xFF };
        assert_eq!(Head::unpack(head.pack()), head);
        let zero = Head { version: 0, desc: 0, cursor: 0, lots: 0, flags: 0 };
        assert_eq!(Head::unpack(zero.pack()), zero);
        let one = Head { version: 1, desc: 2, cursor: 3, lots: 4, flags: DEADLINES };
        assert_eq!(Head::unpack(one.pack()), one);
        assert!(one.has(DEADLINES));
    }
}
