//! A SKU's lots as the cell stores them: each lot's fixed facts and its
//! one counter word.
//!
//! Owns: [`Lot`] (a counter word and four fact words), [`LotFacts`] (the
//! facts as values), [`Counts`] (the counter word's payload: available and
//! net units) and [`Lots`] (the table by arrival index: the first lot
//! inline in the cell, the rest in a [`Chunks`] array installed with the
//! second).
//!
//! Must never: hold a count that can be derived. A lot stores `available`
//! (what draws take from) and `net` (received, plus adjustments and
//! returns, less write-offs: what is in the building or left it); units
//! held are the sum of the live reservation lines on the lot, and units
//! committed are `net - available - held`. The rare counts (written off,
//! returned) live in a second word, [`LotExt`], only for lots that had
//! them. One word per lot means a sale, a hold or a return changes one
//! word, and conservation (`net = available + held + committed`) holds by
//! construction; the audit checks what can still go wrong (nothing
//! negative, holds adding up).
//!
//! Facts are written once, by the receipt that adds the lot (possibly by
//! several threads applying it, all with the same values), before the
//! lot count in the head covers the lot; a lot's arrival index is never
//! reused, so nothing ever overwrites them.

use super::chunks::Chunks;
use super::word::{VWord, field, put};
use crate::clock::Timestamp;
use crate::ids::{LOCATION_MAX, LocationId, LotId};
use crate::quantity::Quantity;
use crate::sync::{AtomicU64, OnceLock, Ordering};

/// A lot's counter word, unpacked: `available` in bits 0..40, `net` in
/// 40..80.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) available: Quantity,
    pub(crate) net: Quantity,
}

impl Counts {
    #[inline]
    pub(crate) fn payload(self) -> u128 {
        put(self.available.get(), 0, 40) | put(self.net.get(), 40, 40)
    }

    #[inline]
    pub(crate) fn from_payload(payload: u128) -> Counts {
        // 40 bits are at most `Quantity::MAX`.
        let quantity = |bits| Quantity::new(bits).unwrap_or(Quantity::MAX);
        Counts { available: quantity(field(payload, 0, 40)), net: quantity(field(payload, 40, 40)) }
    }
}

/// A lot's extension word, unpacked: units written off (bits 0..40) and
/// units returned into it (40..80). Kept only for lots that had either
/// (see the cell's `Extra`): a lot without one reads as zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LotExt {
    pub(crate) written_off: Quantity,
    pub(crate) returned: Quantity,
}

impl LotExt {
    pub(crate) fn payload(self) -> u128 {
        put(self.written_off.get(), 0, 40) | put(self.returned.get(), 40, 40)
    }

    pub(crate) fn from_payload(payload: u128) -> LotExt {
        // 40 bits are at most `Quantity::MAX`.
        let quantity = |bits| Quantity::new(bits).unwrap_or(Quantity::MAX);
        LotExt { written_off: quantity(field(payload, 0, 40)), returned: quantity(field(payload, 40, 40)) }
    }
}

/// A lot's fixed facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LotFacts {
    pub(crate) id: LotId,
    pub(crate) received_at: Timestamp,
    pub(crate) expires_at: Option<Timestamp>,
    /// Units the lot was received with.
    pub(crate) received: Quantity,
    /// Whether the structure keeps attributes for it.
    pub(crate) has_attributes: bool,
    /// Where it is kept (at most [`LOCATION_MAX`]).
    pub(crate) location: Option<LocationId>,
}

const HAS_EXPIRY: u64 = 1 << 62;
const HAS_ATTRIBUTES: u64 = 1 << 61;
/// `1 +` the location in bits 40..60 of the info word (0: none).
const LOCATION_SHIFT: u32 = 40;
const LOCATION_BITS: u32 = 20;
const _: () = assert!(LOCATION_MAX + 1 < 1 << LOCATION_BITS, "a location fits the info word");

/// One lot: its counter word and its facts (48 bytes with the word's
/// alignment).
#[derive(Debug, Default)]
pub(crate) struct Lot {
    pub(crate) word: VWord,
    id: AtomicU64,
    received_at: AtomicU64,
    expiry: AtomicU64,
    /// `received` (bits 0..40) and the `HAS_*` flags.
    info: AtomicU64,
}

impl Default for VWord {
    fn default() -> VWord {
        VWord::new(0, 0)
    }
}

impl Lot {
    /// Writes the facts (a receipt's effect; every writer writes the same).
    pub(crate) fn set_facts(&self, facts: &LotFacts) {
        let mut info = facts.received.get();
        if facts.expires_at.is_some() {
            info |= HAS_EXPIRY;
        }
        if facts.has_attributes {
            info |= HAS_ATTRIBUTES;
        }
        if let Some(location) = facts.location {
            assert!(location.0 <= LOCATION_MAX, "receipts check the location's range");
            info |= u64::from(location.0 + 1) << LOCATION_SHIFT;
        }
        // Relaxed: published by the head's compare-and-swap and the
        // `applied` store that follow the receipt's effects (see the
        // cell's `# Orderings`); a reader reaches a lot only through them.
        self.id.store(facts.id.0, Ordering::Relaxed);
        self.received_at.store(facts.received_at.as_millis(), Ordering::Relaxed);
        self.expiry.store(facts.expires_at.map_or(0, Timestamp::as_millis), Ordering::Relaxed);
        self.info.store(info, Ordering::Relaxed);
    }

    pub(crate) fn facts(&self) -> LotFacts {
        // Relaxed: see `set_facts`.
        let info = self.info.load(Ordering::Relaxed);
        let expiry = self.expiry.load(Ordering::Relaxed);
        LotFacts {
            id: LotId(self.id.load(Ordering::Relaxed)),
            received_at: Timestamp(self.received_at.load(Ordering::Relaxed)),
            expires_at: (info & HAS_EXPIRY != 0).then_some(Timestamp(expiry)),
            received: Quantity::new(info & ((1 << 40) - 1)).unwrap_or(Quantity::MAX),
            has_attributes: info & HAS_ATTRIBUTES != 0,
            location: location_of(info),
        }
    }

    /// The expiry alone (the hot path's eligibility check).
    #[inline]
    pub(crate) fn expires_at(&self) -> Option<Timestamp> {
        // Relaxed: see `set_facts`.
        let info = self.info.load(Ordering::Relaxed);
        (info & HAS_EXPIRY != 0).then(|| Timestamp(self.expiry.load(Ordering::Relaxed)))
    }
}

fn location_of(info: u64) -> Option<LocationId> {
    let stored = (info >> LOCATION_SHIFT) & ((1 << LOCATION_BITS) - 1);
    (stored != 0).then(|| LocationId(stored as u32 - 1))
}

/// A SKU's lots by arrival index (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Lots {
    first: Lot,
    more: OnceLock<Box<Chunks<Lot>>>,
}

impl core::fmt::Debug for Chunks<Lot> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks").field("capacity", &self.capacity()).finish()
    }
}

impl Lots {
    /// Lot `arrival`; it must be covered by the head's lot count (or be
    /// the lot a receipt being applied adds, after [`ensure`](Self::ensure)).
    #[inline]
    pub(crate) fn get(&self, arrival: u32) -> &Lot {
        if arrival == 0 {
            return &self.first;
        }
        self.more.get().and_then(|more| more.get(arrival - 1)).expect("a lot within the head's count exists")
    }

    /// Lot `arrival`, installing its chunk if needed (a receipt's owner
    /// calls this before publishing the receipt).
    pub(crate) fn ensure(&self, arrival: u32) -> &Lot {
        if arrival == 0 {
            return &self.first;
        }
        self.more.get_or_init(|| Box::new(Chunks::new())).ensure(arrival - 1)
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_facts_round_trip() {
        let counts = Counts { available: Quantity::MAX, net: Quantity::new(12).unwrap() };
        assert_eq!(Counts::from_payload(counts.payload()), counts);
        let lot = Lot::default();
        for facts in [
            LotFacts {
                id: LotId(u64::MAX),
                received_at: Timestamp(u64::MAX),
                expires_at: Some(Timestamp(u64::MAX)),
                received: Quantity::MAX,
                has_attributes: true,
                location: Some(LocationId(LOCATION_MAX)),
            },
            LotFacts {
                id: LotId(0),
                received_at: Timestamp(0),
                expires_at: None,
                received: Quantity::new(1).unwrap(),
                has_attributes: false,
                location: Some(LocationId(0)),
            },
            LotFacts {
                id: LotId(7),
                received_at: Timestamp(5),
                expires_at: Some(Timestamp(0)),
                received: Quantity::ZERO,
                has_attributes: false,
                location: None,
            },
        ] {
            lot.set_facts(&facts);
            assert_eq!(lot.facts(), facts);
            assert_eq!(lot.expires_at(), facts.expires_at);
        }
    }

    #[test]
    fn the_first_lot_is_inline_and_later_ones_are_installed() {
        let lots = Lots::default();
        assert!(lots.more.get().is_none());
        lots.get(0).word.set_at(1, 5);
        lots.ensure(3).word.set_at(2, 6);
        assert_eq!(lots.get(3).word.load().payload, 6);
        assert_eq!(lots.get(0).word.load().payload, 5);
    }
}
