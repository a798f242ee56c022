//! A hold: what one live reservation holds of one SKU.
//!
//! Owns: [`Hold`] and [`HoldLine`], the form a reservation takes inside a
//! SKU snapshot (lots by arrival index).
//!
//! Must never: outlive its reservation. A hold is removed from the snapshot
//! in the same compare-and-swap that ends its reservation, which is what
//! makes "ends exactly once" hold.

use crate::clock::Timestamp;
use crate::quantity::Quantity;
use smallvec::SmallVec;

/// Units held on one lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HoldLine {
    /// The lot's arrival index in its SKU's catalog.
    pub(crate) lot: u32,
    pub(crate) quantity: Quantity,
}

/// Most orders span one or two lots; those need no heap allocation.
pub(crate) type HoldLines = SmallVec<[HoldLine; 2]>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    /// In the order the policy drew them.
    pub(crate) lines: HoldLines,
    /// Units the reservation was granted.
    pub(crate) granted: Quantity,
    /// Units taken from it by shrinking adjustments (and not re-sourced).
    pub(crate) shorted: Quantity,
    /// When it lapses; `None` holds until ended.
    pub(crate) deadline: Option<Deadline>,
}

/// A hold's deadline, and how far it may be extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline {
    /// It lapses at this instant (a hold whose deadline is `now` has lapsed).
    pub(crate) at: Timestamp,
    /// Its allocation instant plus the ledger's maximum hold duration.
    pub(crate) latest: Timestamp,
}

impl Hold {
    /// Units held now: `granted - shorted`, the sum of the lines.
    pub(crate) fn held(&self) -> Quantity {
        self.lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity))
    }

    /// Whether its deadline has passed at `now`.
    pub(crate) fn lapsed(&self, now: Timestamp) -> bool {
        self.deadline.is_some_and(|deadline| deadline.at <= now)
    }

    /// Adds `quantity` on lot `arrival`, merging with a line already there.
    pub(crate) fn add(&mut self, arrival: u32, quantity: Quantity) {
        match self.lines.iter_mut().find(|line| line.lot == arrival) {
            Some(line) => line.quantity = line.quantity.plus(quantity),
            None => self.lines.push(HoldLine { lot: arrival, quantity }),
        }
    }
}
