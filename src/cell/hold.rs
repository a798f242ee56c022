//! A hold: what one live reservation holds of one SKU.
//!
//! Owns: [`Hold`] and [`HoldLine`], the form a reservation takes inside a
//! SKU snapshot (lots by arrival index).
//!
//! Must never: outlive its reservation. A hold is removed from the snapshot
//! in the same compare-and-swap that ends its reservation, which is what
//! makes "ends exactly once" hold.

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
    /// Units taken from it by shrinking adjustments.
    pub(crate) shorted: Quantity,
}

impl Hold {
    /// Units held now: `granted - shorted`, the sum of the lines.
    pub(crate) fn held(&self) -> Quantity {
        self.lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity))
    }
}
