//! The sales word: immediate sales of a published version's first lot,
//! counted in one atomic word instead of each publishing a version.
//!
//! Owns: [`SalesWord`] and [`Tally`]: how many sales went through a
//! published version's word and how many units they took, and the seal
//! that ends the word's life.
//!
//! Must never: let a sale through after the seal. A change to the SKU
//! seals the word of the version it replaces before it swaps (see the
//! `# Orderings` of [`SkuCell`](super::SkuCell)), so the tally it reads
//! then is final, and every sale counted in it happened while that
//! version was current.

use crate::quantity::Quantity;
use crate::sync::{AtomicU64, Ordering};
use std::fmt;

/// Bits of the word: the units (48, as a [`Quantity`]), the sales (15) and
/// the seal (1).
const UNITS_BITS: u32 = 48;
const UNITS_MASK: u64 = (1 << UNITS_BITS) - 1;
const SALES_MAX: u64 = (1 << 15) - 1;
const SEALED: u64 = 1 << 63;

/// What went through a sales word: `sales` sales of `units` units in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) sales: u64,
    pub(crate) units: Quantity,
}

impl Tally {
    fn of(word: u64) -> Tally {
        // 48 bits are at most `Quantity::MAX`.
        let units = Quantity::new(word & UNITS_MASK).unwrap_or(Quantity::MAX);
        Tally { sales: (word & !SEALED) >> UNITS_BITS, units }
    }

    pub(crate) fn is_empty(self) -> bool {
        self.sales == 0
    }
}

/// A published version's sales word. A new version starts with an empty,
/// open word: cloning a state (to derive the next version) never carries
/// sales over, because the derivation has folded them in.
pub(crate) struct SalesWord(AtomicU64);

impl SalesWord {
    pub(crate) fn new() -> SalesWord {
        SalesWord(AtomicU64::new(0))
    }

    /// The sales so far and whether the word is sealed.
    pub(crate) fn read(&self) -> (Tally, bool) {
        // SeqCst: one total order with `add`, `seal` and the cell's swaps;
        // an open word read here means this version was still current.
        let word = self.0.load(Ordering::SeqCst);
        (Tally::of(word), word & SEALED != 0)
    }

    /// Seals the word and returns the final tally (the same tally to every
    /// caller, once sealed).
    pub(crate) fn seal(&self) -> Tally {
        // SeqCst: pairs with `add`'s compare-and-swap: every sale that got
        // in precedes this in the word's order, so it is in the tally; every
        // later one fails on the seal.
        Tally::of(self.0.fetch_or(SEALED, Ordering::SeqCst))
    }

    /// Counts one sale of `units` if the word is open, it has room for one
    /// more sale, and at most `available` units would then have been sold
    /// through it. Returns the tally before this sale; `None` if the sale
    /// must take the slow path.
    pub(crate) fn add(&self, units: Quantity, available: Quantity) -> Option<Tally> {
        // SeqCst: see `read`.
        let mut word = self.0.load(Ordering::SeqCst);
        loop {
            let before = Tally::of(word);
            let room = available.checked_sub(before.units)?;
            if word & SEALED != 0 || before.sales == SALES_MAX || units > room {
                return None;
            }
            let next = (before.sales + 1) << UNITS_BITS | before.units.plus(units).get();
            // SeqCst: pairs with `seal` (an open word at this swap means the
            // version was current) and with the cell's swaps.
            match self.0.compare_exchange_weak(word, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Some(before),
                Err(current) => word = current,
            }
        }
    }
}

impl Clone for SalesWord {
    fn clone(&self) -> SalesWord {
        SalesWord::new()
    }
}

impl fmt::Debug for SalesWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tally, sealed) = self.read();
        f.debug_struct("SalesWord").field("tally", &tally).field("sealed", &sealed).finish()
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    fn q(units: u64) -> Quantity {
        Quantity::new(units).unwrap()
    }

    #[test]
    fn sales_count_until_the_units_run_out() {
        let word = SalesWord::new();
        assert_eq!(word.add(q(2), q(3)), Some(Tally::default()));
        assert_eq!(word.add(q(2), q(3)), None, "only 1 unit left");
        assert_eq!(word.add(q(1), q(3)), Some(Tally { sales: 1, units: q(2) }));
        assert_eq!(word.read(), (Tally { sales: 2, units: q(3) }, false));
    }

    #[test]
    fn nothing_gets_in_after_the_seal() {
        let word = SalesWord::new();
        word.add(q(1), q(10)).unwrap();
        assert_eq!(word.seal(), Tally { sales: 1, units: q(1) });
        assert_eq!(word.add(q(1), q(10)), None);
        assert_eq!(word.seal(), Tally { sales: 1, units: q(1) }, "a second seal reads the same tally");
        assert_eq!(word.read(), (Tally { sales: 1, units: q(1) }, true));
    }

    #[test]
    fn the_sales_count_saturates_into_the_slow_path() {
        let word = SalesWord::new();
        for _ in 0..SALES_MAX {
            word.add(q(1), Quantity::MAX).unwrap();
        }
        assert_eq!(word.add(q(1), Quantity::MAX), None);
        assert_eq!(word.read().0, Tally { sales: SALES_MAX, units: q(SALES_MAX) });
    }

    #[test]
    fn a_clone_starts_empty_and_open() {
        let word = SalesWord::new();
        word.add(q(1), q(1)).unwrap();
        word.seal();
        assert_eq!(word.clone().read(), (Tally::default(), false));
    }
}
