//! Reservation slots: where a SKU keeps its live holds, outside any
//! version, one slot per hold line.
//!
//! Owns: [`Slot`] (a main word, a deadline word, an extension word and
//! three fields written once per use), [`Main`] (the main word's states),
//! [`Slots`] (the table, and how a thread claims a free slot for a hold it
//! is preparing).
//!
//! Must never: let two holds share a slot, or a reservation id name the
//! wrong hold. A slot moves `Free → Reserved` by a claim (a thread's
//! private compare-and-swap that keeps the word's version), `Reserved →
//! Live` (or `Line`) by the change that makes the hold (stamped with that
//! change's version), and `Live → Free` by the change that ends it (stamped
//! again). The version stamped at `Live` is the reservation's `seq`, so an
//! id names one use of one slot: once the slot is ended and used again, its
//! version has moved past the old `seq` and the old id finds nothing. Ending
//! is one versioned write, so a hold ends exactly once.
//!
//! A hold's fields (deadline, granted units, latest deadline, tag, its
//! next line) are written by the claiming thread while the slot is
//! `Reserved` and no other thread can touch it, before the change that
//! publishes the hold; afterwards only changes (through versioned words)
//! alter them: an extension moves the deadline word, a shrink the
//! extension word.

use super::chunks::Chunks;
use super::word::{Stamped, VWord, field, put};
use crate::clock::Timestamp;
use crate::quantity::Quantity;
use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

/// No slot: the end of a line chain.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Consecutive slots a claim looks at before growing the table: bounds the
/// claim, and keeps the table within about `64 / 63` of the live holds
/// (a run of 64 taken slots is unlikely while more than 1 in 64 is free).
const SCAN_MAX: u32 = 64;

/// Rounds of scan-then-grow a claim makes; each lost round means another
/// thread claimed a slot, so reaching this is a bug.
const CLAIM_ROUNDS_MAX: u32 = 1 << 16;

/// A slot's main word, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Main {
    /// Unused: any thread may claim it.
    Free,
    /// Claimed by the thread whose descriptor is `owner`, which is filling
    /// it in for a hold it has not published yet.
    Reserved { owner: u32 },
    /// The first line of a live reservation; `part`: the reservation is a
    /// part of an order ([`Marks::order`]).
    Live { lot: u32, quantity: Quantity, part: bool },
    /// A further line of a live reservation (reached through the first
    /// slot's extension word).
    Line { lot: u32, quantity: Quantity },
    /// The first slot of a live reservation that has no line of its own:
    /// a backorder, whose lines (if any yet) follow through the extension
    /// word.
    Head { part: bool },
}

const FREE: u64 = 0;
const RESERVED: u64 = 2;
const LIVE: u64 = 3;
const LINE: u64 = 4;
const HEAD: u64 = 5;

/// Bit of the order-part flag in a `Live` or `Head` payload.
const PART_BIT: u32 = 72;

impl Main {
    #[inline]
    pub(crate) fn payload(self) -> u128 {
        let line = |state: u64, lot: u32, quantity: Quantity| {
            put(state, 77, 3) | put(u64::from(lot), 40, 32) | put(quantity.get(), 0, 40)
        };
        match self {
            Main::Free => put(FREE, 77, 3),
            Main::Reserved { owner } => put(RESERVED, 77, 3) | put(u64::from(owner), 0, 32),
            Main::Live { lot, quantity, part } => line(LIVE, lot, quantity) | put(u64::from(part), PART_BIT, 1),
            Main::Line { lot, quantity } => line(LINE, lot, quantity),
            Main::Head { part } => put(HEAD, 77, 3) | put(u64::from(part), PART_BIT, 1),
        }
    }

    #[inline]
    pub(crate) fn from_payload(payload: u128) -> Main {
        let lot = field(payload, 40, 32) as u32;
        // 40 bits are at most `Quantity::MAX`.
        let quantity = Quantity::new(field(payload, 0, 40)).unwrap_or(Quantity::MAX);
        let part = field(payload, PART_BIT, 1) == 1;
        match field(payload, 77, 3) {
            FREE => Main::Free,
            RESERVED => Main::Reserved { owner: field(payload, 0, 32) as u32 },
            LIVE => Main::Live { lot, quantity, part },
            LINE => Main::Line { lot, quantity },
            HEAD => Main::Head { part },
            state => unreachable!("slot state {state} was never written"),
        }
    }

    /// A payload as a state, `None` if it names none a cell writes (an
    /// image read from outside is checked with this before it is trusted).
    pub(crate) fn decode(payload: u128) -> Option<Main> {
        let state = field(payload, 77, 3);
        let known = matches!(state, FREE | RESERVED | LIVE | LINE | HEAD);
        (known && payload <= super::word::PAYLOAD_MAX).then(|| Main::from_payload(payload))
    }

    /// Whether this is the first slot of a live reservation.
    pub(crate) fn is_first(self) -> bool {
        matches!(self, Main::Live { .. } | Main::Head { .. })
    }
}

/// A slot's extension word: the next line of the same hold, the units
/// shrinking adjustments have taken from this line, and whether the line
/// counts as removed (its lot's line in the hold reached zero: units
/// re-sourced onto that lot later make a line at the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ext {
    pub(crate) next: u32,
    pub(crate) taken: Quantity,
    pub(crate) removed: bool,
}

impl Ext {
    pub(crate) fn payload(self) -> u128 {
        put(u64::from(self.next), 40, 32) | put(self.taken.get(), 0, 40) | put(u64::from(self.removed), 72, 1)
    }

    pub(crate) fn from_payload(payload: u128) -> Ext {
        Ext {
            next: field(payload, 40, 32) as u32,
            taken: Quantity::new(field(payload, 0, 40)).unwrap_or(Quantity::MAX),
            removed: field(payload, 72, 1) == 1,
        }
    }
}

/// "No deadline", as a deadline payload or floor: bit 64, past every
/// instant a `u64` of milliseconds can name (a deadline may itself be
/// `u64::MAX`: a hold that saturated at the end of time).
pub(crate) const NEVER: u128 = 1 << 64;

/// A deadline as a word payload.
pub(crate) fn deadline_payload(deadline: Option<Timestamp>) -> u128 {
    deadline.map_or(NEVER, |at| u128::from(at.as_millis()))
}

/// A deadline word's payload as a deadline.
pub(crate) fn deadline_of(payload: u128) -> Option<Timestamp> {
    (payload < NEVER).then_some(Timestamp(payload as u64))
}

/// One slot (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) main: VWord,
    /// The deadline ([`deadline_payload`]); its version is the change that
    /// last set it.
    pub(crate) deadline: VWord,
    pub(crate) ext: VWord,
    /// [`Terms::granted`] (first line only).
    granted: AtomicU64,
    /// [`Terms::latest`] (first line only).
    latest: AtomicU64,
    /// [`Marks::tag`] (first line only).
    tag: AtomicU64,
    /// [`Marks::order`] (first line only).
    order: AtomicU64,
}

/// What a hold's first slot records once, privately, before the hold is
/// published, and keeps unchanged while the hold lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Terms {
    /// Units the reservation was granted.
    pub(crate) granted: Quantity,
    /// The latest its deadline may be extended to (ms).
    pub(crate) latest: u64,
    /// Who the hold is for.
    pub(crate) marks: Marks,
}

/// What a host and the ledger attach to a hold when they make it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// The host's tag (0: none).
    pub(crate) tag: u64,
    /// The order the hold is a part of (0: none): only that order's
    /// commands end or extend it.
    pub(crate) order: u64,
}

/// What a claiming thread writes into a slot before publishing the hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fill {
    /// As a payload ([`deadline_payload`]).
    pub(crate) deadline: u128,
    pub(crate) next: u32,
    pub(crate) terms: Terms,
}

impl Slot {
    /// Writes a claimed slot's fields. `version` is the slot's main-word
    /// version (the change that last ended it): stamping the private words
    /// with it keeps every older change's late helper away from them.
    ///
    /// The terms are sequence-locked by the main word: the claim moved it
    /// to `Reserved` (a compare-and-swap) before these stores, and a reader
    /// reads the terms between two loads of the main word ([`View::terms`](super::view::View::terms)).
    #[inline]
    pub(crate) fn fill(&self, version: u64, fill: Fill) {
        self.deadline.store_private(version, fill.deadline);
        self.ext.store_private(version, Ext { next: fill.next, taken: Quantity::ZERO, removed: false }.payload());
        // Release: pairs with the Acquire fence in `View::terms`: a reader
        // whose loads below see these stores then sees the claim's change of
        // the main word, and so discards what it read.
        fence(Ordering::Release);
        // Relaxed: published with the hold by the change's head
        // compare-and-swap (see the cell's `# Orderings`); fenced above
        // against readers of a previous use of the slot.
        self.granted.store(fill.terms.granted.get(), Ordering::Relaxed);
        self.latest.store(fill.terms.latest, Ordering::Relaxed);
        self.tag.store(fill.terms.marks.tag, Ordering::Relaxed);
        self.order.store(fill.terms.marks.order, Ordering::Relaxed);
    }

    /// Writes every word and term of a slot being restored from an image,
    /// in a cell no other thread can reach yet.
    pub(crate) fn restore(&self, main: Stamped, deadline: Stamped, ext: Stamped, terms: Terms) {
        self.main.store_private(main.version, main.payload);
        self.deadline.store_private(deadline.version, deadline.payload);
        self.ext.store_private(ext.version, ext.payload);
        // Relaxed: the cell is published to other threads after this (by
        // the catalog's insert), which orders these stores before any read.
        self.granted.store(terms.granted.get(), Ordering::Relaxed);
        self.latest.store(terms.latest, Ordering::Relaxed);
        self.tag.store(terms.marks.tag, Ordering::Relaxed);
        self.order.store(terms.marks.order, Ordering::Relaxed);
    }

    /// The terms as stored; only meaningful between two equal loads of the
    /// main word (see [`fill`](Self::fill)).
    pub(crate) fn terms_raw(&self) -> Terms {
        // Relaxed: validated by the caller's fence and main-word reload.
        Terms {
            granted: Quantity::new(self.granted.load(Ordering::Relaxed)).unwrap_or(Quantity::MAX),
            latest: self.latest.load(Ordering::Relaxed),
            marks: Marks { tag: self.tag.load(Ordering::Relaxed), order: self.order.load(Ordering::Relaxed) },
        }
    }
}

/// A SKU's slots (see the module docs).
#[derive(Debug)]
pub(crate) struct Slots {
    table: Chunks<Slot>,
    /// Slots handed out so far.
    len: AtomicU32,
    /// Where the next claim starts looking (a hint: any value is safe).
    hint: AtomicU32,
}

impl core::fmt::Debug for Chunks<Slot> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks").field("capacity", &self.capacity()).finish()
    }
}

impl Default for Slots {
    fn default() -> Slots {
        Slots { table: Chunks::new(), len: AtomicU32::new(0), hint: AtomicU32::new(0) }
    }
}

impl Slots {
    /// A table of `len` installed slots, all free at version 0, for a
    /// restore to fill ([`Slot::restore`]) before the cell is shared.
    pub(crate) fn restored(len: u32) -> Slots {
        let slots = Slots::default();
        for index in 0..len {
            slots.table.ensure(index);
        }
        // Relaxed: the cell is not shared yet (see `Slot::restore`).
        slots.len.store(len, Ordering::Relaxed);
        slots
    }

    /// Slots handed out so far. One just handed out may not be installed
    /// yet (its claimer installs it before filling it): [`get`](Self::get)
    /// answers `None` for it, and it cannot be live.
    pub(crate) fn len(&self) -> u32 {
        // Relaxed: a bound for scans; a slot is reached through its chunk's
        // once cell (Acquire inside `OnceLock::get`) and its main word.
        self.len.load(Ordering::Relaxed)
    }

    /// Slot `index`, if its chunk is installed.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<&Slot> {
        self.table.get(index)
    }

    /// Claims a free slot for the thread whose descriptor is `owner`:
    /// scans from the hint for a `Free` slot and reserves it, or takes a
    /// new one. Returns its index and its main word's version.
    ///
    /// A new index is this thread's to install, but once installed a
    /// scanning thread may claim it first (the scan bound, `len`, already
    /// covers it): then this thread looks again. Every lost race means
    /// another thread claimed a slot, so the rounds are bounded.
    pub(crate) fn claim(&self, owner: u32) -> (u32, u64) {
        for _ in 0..CLAIM_ROUNDS_MAX {
            if let Some(claimed) = self.scan(owner) {
                return claimed;
            }
            // Relaxed: the new index is this thread's alone (the RMW hands
            // out each index once); nothing is published through `len`.
            let index = self.len.fetch_add(1, Ordering::Relaxed);
            assert!(index < super::chunks::INDEX_MAX, "a SKU ran out of reservation slots");
            if let Some(claimed) = self.reserve(index, self.table.ensure(index), owner) {
                return claimed;
            }
        }
        unreachable!("{CLAIM_ROUNDS_MAX} rounds of slots claimed by other threads first")
    }

    /// Reserves a `Free` slot from the hint on, looking at most at
    /// [`SCAN_MAX`] slots.
    fn scan(&self, owner: u32) -> Option<(u32, u64)> {
        let len = self.len();
        // Relaxed: a hint; the claim itself is the compare-and-swap.
        let start = self.hint.load(Ordering::Relaxed);
        for probe in 0..SCAN_MAX.min(len) {
            let mut index = start.wrapping_add(probe);
            if index >= len {
                index %= len;
            }
            // A slot whose chunk its claimer is still installing is taken.
            let Some(slot) = self.table.get(index) else { continue };
            if let Some(claimed) = self.reserve(index, slot, owner) {
                // Relaxed: a hint (see above).
                self.hint.store(index.wrapping_add(1), Ordering::Relaxed);
                return Some(claimed);
            }
        }
        None
    }

    /// Moves slot `index` from `Free` to reserved by `owner`, keeping its
    /// version; `None` if it is not free.
    fn reserve(&self, index: u32, slot: &Slot, owner: u32) -> Option<(u32, u64)> {
        let word = slot.main.load();
        if Main::from_payload(word.payload) != Main::Free {
            return None;
        }
        slot.main.replace(word, Main::Reserved { owner }.payload()).ok()?;
        Some((index, word.version))
    }

    /// Notes that slot `index` was just freed: the next claim looks there
    /// first (a hint, stored without a read-modify-write).
    pub(crate) fn freed(&self, index: u32) {
        // Relaxed: a hint; the claim is the compare-and-swap.
        self.hint.store(index, Ordering::Relaxed);
    }

    /// Gives back a slot this thread claimed and did not publish.
    pub(crate) fn unclaim(&self, index: u32, version: u64, owner: u32) {
        let slot = self.table.get(index).expect("a claimed slot is installed");
        let reserved = Stamped { version, payload: Main::Reserved { owner }.payload() };
        slot.main.replace(reserved, Main::Free.payload()).expect("only the claimer changes a reserved slot");
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for main in [
            Main::Free,
            Main::Reserved { owner: u32::MAX },
            Main::Live { lot: u32::MAX, quantity: Quantity::MAX, part: true },
            Main::Live { lot: 1, quantity: Quantity::ZERO, part: false },
            Main::Line { lot: 0, quantity: Quantity::ZERO },
            Main::Head { part: true },
            Main::Head { part: false },
        ] {
            assert_eq!(Main::from_payload(main.payload()), main);
        }
        for ext in [
            Ext { next: 7, taken: Quantity::MAX, removed: true },
            Ext { next: NO_SLOT, taken: Quantity::ZERO, removed: false },
        ] {
            assert_eq!(Ext::from_payload(ext.payload()), ext);
        }
    }

    #[test]
    fn claims_reuse_freed_slots_before_growing() {
        let slots = Slots::default();
        let (a, _) = slots.claim(1);
        let (b, _) = slots.claim(1);
        assert_ne!(a, b);
        assert_eq!(slots.len(), 2);
        // Publish `a` and end it again, as two changes would.
        let slot = slots.get(a).unwrap();
        assert!(slot.main.set_at(5, Main::Live { lot: 0, quantity: Quantity::new(1).unwrap(), part: false }.payload()));
        assert!(slot.main.set_at(6, Main::Free.payload()));
        let (c, version) = slots.claim(2);
        assert_eq!((c, version), (a, 6), "the freed slot, at the version that freed it");
        slots.unclaim(c, version, 2);
        assert_eq!(Main::from_payload(slots.get(c).unwrap().main.load().payload), Main::Free);
        assert_eq!(slots.len(), 2, "no growth while a slot was free");
    }
}
