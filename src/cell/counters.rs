//! A lot's changing counters, as a SKU version stores them.
//!
//! Owns: [`Counts`] (the four counters transitions work with) and
//! [`LotCounters`] (the same four, packed into 24 bytes for the per-lot
//! table every version shares).
//!
//! Must never: hold what a lot's catalog entry already holds. `received`
//! never changes, so it lives in the catalog; `adjusted` is not stored at
//! all but read as `net - received`, so the conservation law
//! `received + adjusted = available + held + committed` is checked by the
//! audit as `net = available + held + committed`: `net` is kept by
//! receipts and adjustments alone, the other three by allocations, so a
//! unit that vanished still shows.

use crate::quantity::{PackedQuantity, Quantity};

/// One lot's counters, unpacked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Units in the building and not held.
    pub(crate) available: Quantity,
    /// Units held by live reservations.
    pub(crate) held: Quantity,
    /// Units that left the building.
    pub(crate) committed: Quantity,
    /// Units received plus net adjustments. At most the SKU's inflow, so a
    /// [`Quantity`]: it is `available + held + committed`, none negative.
    pub(crate) net: Quantity,
}

/// [`Counts`] in 24 bytes: 48 bits a counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LotCounters([PackedQuantity; 4]);

const _: () = assert!(std::mem::size_of::<LotCounters>() == 24);

impl Counts {
    /// A lot just received: all of it available.
    pub(crate) fn received(quantity: Quantity) -> Counts {
        Counts { available: quantity, held: Quantity::ZERO, committed: Quantity::ZERO, net: quantity }
    }

    pub(crate) fn pack(self) -> LotCounters {
        LotCounters([self.available, self.held, self.committed, self.net].map(PackedQuantity::new))
    }
}

impl LotCounters {
    pub(crate) fn unpack(self) -> Counts {
        let [available, held, committed, net] = self.0.map(PackedQuantity::get);
        Counts { available, held, committed, net }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_each_counter_on_its_own() {
        let q = |value| Quantity::new(value).unwrap();
        let counts = Counts { available: q(1), held: q(Quantity::MAX.get()), committed: q(0), net: q(0xAB_CDEF) };
        assert_eq!(counts.pack().unpack(), counts);
        assert_eq!(Counts::received(q(7)).pack().unpack(), Counts::received(q(7)));
    }
}
