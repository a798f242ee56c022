//! What a publisher leaves when it sheds an event at the full inbox: the
//! event's identity in the shed log, or, when the shed log is full too, a
//! mark in a fixed table of counters.
//!
//! A [`Shed`] is the SKU and version of a shed event, 16 bytes: the
//! publisher drops the event and queues its identity in a second bounded
//! queue (the hub's shed log, an `Inbox<Shed>` of
//! [`SHED_LOG_MAX`](super::budget::SHED_LOG_MAX)); the dispatcher takes it
//! like an event whose payload is gone (`reorder.rs`), so every subscriber
//! is told of it exactly, in its place in the stream.
//!
//! Only when the shed log is full as well is the identity lost. Then the
//! publisher bumps the counter of the SKU's slot (SKUs hashed into
//! [`SHED_SLOTS`] slots) and a total: a counting Bloom filter with one hash
//! and counters that only grow. The dispatcher keeps a copy of the
//! counters ([`ShedView`]), refreshed when the total moved, and each SKU's
//! stream remembers the count of its slot when it last skipped a gap for
//! a shed. A stream whose slot counted a shed since then *may* be missing
//! a version that will never arrive, so the reorder buffer skips its gap
//! at once instead of waiting for it. A false positive (another SKU of the
//! slot shed, or the missing version was only late) skips a gap that would
//! have filled: the skipped versions are counted to every subscriber like
//! any other loss, and the late event is dropped when it comes. A false
//! negative is impossible: a mark always bumps its own SKU's slot. What the
//! marks cannot do is tell of a shed that is its SKU's latest version
//! until the SKU changes again, nor which of several gaps a shed explains
//! (`reorder.rs` expires such gaps on the clock).
//!
//! Owns: [`Shed`], [`ShedMarks`] (the publishers' side of the fallback:
//! the counters and the total) and [`ShedView`] (the dispatcher's copy).
//!
//! Must never: grow, wait, or be read as a count of events for
//! subscribers: what a subscriber is told it missed is what the
//! dispatcher released as lost or skipped, counted there.
//!
//! # Orderings
//!
//! 1. A slot's counter is bumped Relaxed, then the total with Release;
//!    the dispatcher loads the total with Acquire and only then the slots
//!    (Relaxed). Every bump of the total is a read-modify-write, so it
//!    continues the release sequence of every earlier one: a dispatcher
//!    that reads a total sees every slot bump made before it. Weaker on
//!    either side, the dispatcher could see the new total and an old slot,
//!    record the shed as absorbed, and leave a shed SKU's gap waiting.
//! 2. `absorbed` (the total the dispatcher last acted on) is written
//!    Relaxed by the flag holder only; it is read Relaxed by whoever
//!    decides whether a pump has work. A stale read shows an older,
//!    smaller value: it can only make a pump take one turn too many, never
//!    skip one that is due. The hub's fences order the read against the
//!    flag (`hub.rs`, # Orderings, point 1).

use super::budget::SHED_SLOTS;
use crate::ids::SkuId;
use crate::sync::{AtomicU64, Ordering};

/// The identity of an event shed at the full inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shed {
    /// The event's SKU.
    pub(crate) sku: SkuId,
    /// The event's version.
    pub(crate) version: u64,
}

/// The slot of `sku`: Fibonacci hashing, so consecutive ids spread out.
fn slot(sku: SkuId) -> usize {
    const SLOT_BITS: u32 = SHED_SLOTS.trailing_zeros();
    // The top SLOT_BITS bits of the product; with one slot, slot 0.
    sku.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).checked_shr(u64::BITS - SLOT_BITS).unwrap_or(0) as usize
}

/// The publishers' side (see the module docs).
pub(crate) struct ShedMarks {
    /// Sheds per slot of SKUs, ever.
    slots: [AtomicU64; SHED_SLOTS],
    /// Sheds, ever.
    total: AtomicU64,
    /// The total the dispatcher last refreshed its view at.
    absorbed: AtomicU64,
}

impl ShedMarks {
    /// No shed yet.
    pub(crate) fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            total: AtomicU64::new(0),
            absorbed: AtomicU64::new(0),
        }
    }

    /// Records that an event of `sku` was shed. Two read-modify-writes; never
    /// waits.
    pub(crate) fn mark(&self, sku: SkuId) {
        // Relaxed: published by the Release bump of the total below
        // (# Orderings, point 1).
        let before = self.slots[slot(sku)].fetch_add(1, Ordering::Relaxed);
        assert!(before < u64::MAX, "a shed mark about to wrap");
        // Release: pairs with the Acquire load in `ShedView::refresh`, so
        // the slot's bump is seen with the total (# Orderings, point 1).
        let total = self.total.fetch_add(1, Ordering::Release);
        assert!(total < u64::MAX, "the shed total about to wrap");
    }

    /// Events shed so far.
    pub(crate) fn total(&self) -> u64 {
        // Relaxed: a tally; the decision that uses it is ordered by the
        // hub's fences (# Orderings, point 2).
        self.total.load(Ordering::Relaxed)
    }

    /// True if a shed happened that no dispatcher turn has acted on yet
    /// (or, rarely, one has but this thread has not seen it: one turn too
    /// many, see # Orderings, point 2).
    pub(crate) fn unabsorbed(&self) -> bool {
        // Relaxed: both, see # Orderings, point 2.
        self.total.load(Ordering::Relaxed) != self.absorbed.load(Ordering::Relaxed)
    }
}

/// The dispatcher's copy of the marks (see the module docs).
pub(crate) struct ShedView {
    total_seen: u64,
    slots: [u64; SHED_SLOTS],
}

impl ShedView {
    /// A view of marks that never shed.
    pub(crate) fn new() -> Self {
        Self { total_seen: 0, slots: [0; SHED_SLOTS] }
    }

    /// Re-reads the marks if the total moved since the last refresh, and
    /// records it as absorbed. True if it moved. Called by the flag holder
    /// only.
    pub(crate) fn refresh(&mut self, marks: &ShedMarks) -> bool {
        // Acquire: pairs with the Release bump in `mark` (# Orderings,
        // point 1).
        let total = marks.total.load(Ordering::Acquire);
        if total == self.total_seen {
            return false;
        }
        assert!(total > self.total_seen, "the shed total went back: {} -> {total}", self.total_seen);
        for (seen, counter) in self.slots.iter_mut().zip(&marks.slots) {
            // Relaxed: ordered after the Acquire load above (# Orderings,
            // point 1).
            *seen = counter.load(Ordering::Relaxed);
        }
        self.total_seen = total;
        // Relaxed: only the flag holder writes it (# Orderings, point 2).
        marks.absorbed.store(total, Ordering::Relaxed);
        true
    }

    /// True if any shed was seen by the last refresh.
    pub(crate) fn any(&self) -> bool {
        self.total_seen > 0
    }

    /// Sheds counted in `sku`'s slot as of the last refresh.
    pub(crate) fn marks(&self, sku: SkuId) -> u64 {
        self.slots[slot(sku)]
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn a_view_sees_a_shed_in_its_skus_slot_once_refreshed() {
        let marks = ShedMarks::new();
        let mut view = ShedView::new();
        assert!(!view.refresh(&marks) && !marks.unabsorbed());
        marks.mark(SkuId(7));
        marks.mark(SkuId(7));
        assert!(marks.unabsorbed());
        assert_eq!(view.marks(SkuId(7)), 0, "not before a refresh");
        assert!(view.refresh(&marks));
        assert!(!marks.unabsorbed());
        assert_eq!((view.marks(SkuId(7)), marks.total()), (2, 2));
        assert!(!view.refresh(&marks), "nothing new");
        // Some other SKU lands in another slot and is untouched.
        let other = (0..1_000).map(SkuId).find(|&sku| slot(sku) != slot(SkuId(7))).expect("64 slots");
        assert_eq!(view.marks(other), 0);
    }

    #[test]
    fn slots_spread_consecutive_ids() {
        let mut used = [0u32; SHED_SLOTS];
        for sku in 0..(SHED_SLOTS as u64 * 16) {
            used[slot(SkuId(sku))] += 1;
        }
        assert!(used.iter().all(|&count| (8..=24).contains(&count)), "{used:?}");
    }
}
