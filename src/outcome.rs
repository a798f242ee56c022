//! What a successful command reports.
//!
//! Owns: one outcome type per command, and [`Line`], the "this many units
//! of this lot" every outcome speaks in.
//!
//! Must never: report something that did not happen. Every outcome names
//! the SKU version its change produced: the version an observer will see in
//! the SKU's snapshot once the change is visible.

use crate::clock::Timestamp;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, LotQuantities};
use crate::quantity::Quantity;

/// Units of one lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Line {
    /// The lot.
    pub lot: LotId,
    /// How many of its units.
    pub quantity: Quantity,
}

/// Sum of the lines' quantities.
pub(crate) fn total(lines: &[Line]) -> Quantity {
    lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity))
}

/// A SKU was defined at version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SkuDefined {
    /// The SKU.
    pub sku: SkuId,
    /// Always 0: the empty SKU.
    pub version: u64,
}

/// A lot was received.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Received {
    /// The SKU.
    pub sku: SkuId,
    /// The lot.
    pub lot: LotId,
    /// When it was received (the ledger's clock if the request left it out).
    pub received_at: Timestamp,
    /// The SKU version this receipt produced.
    pub version: u64,
}

/// Units are held for a new reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Allocation {
    /// The new reservation.
    pub reservation: ReservationId,
    /// What it holds, in the order the policy drew the lots.
    pub lines: Vec<Line>,
    /// The SKU version this allocation produced; its lines are what the
    /// policy chooses from the version before it.
    pub version: u64,
}

impl Allocation {
    /// Units held.
    pub fn quantity(&self) -> Quantity {
        total(&self.lines)
    }
}

/// Units were sold outright (allocated and committed in one step).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Sale {
    /// The SKU.
    pub sku: SkuId,
    /// What left the building, in the order the policy drew the lots.
    pub lines: Vec<Line>,
    /// The SKU version this sale produced.
    pub version: u64,
}

impl Sale {
    /// Units sold.
    pub fn quantity(&self) -> Quantity {
        total(&self.lines)
    }
}

/// A reservation was released; its units are available again.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Released {
    /// The reservation, now ended.
    pub reservation: ReservationId,
    /// What returned to the lots.
    pub lines: Vec<Line>,
    /// The SKU version this release produced.
    pub version: u64,
}

/// A reservation was committed; its units left the building.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Committed {
    /// The reservation, now ended.
    pub reservation: ReservationId,
    /// What left the building.
    pub committed: Vec<Line>,
    /// What was held but not committed, returned to the lots.
    pub returned: Vec<Line>,
    /// The SKU version this commit produced.
    pub version: u64,
}

/// A reservation lost units to a shrinking adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Shortfall {
    /// The reservation that holds fewer units now.
    pub reservation: ReservationId,
    /// Units it lost on the adjusted lot.
    pub quantity: Quantity,
}

/// A lot was adjusted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Adjusted {
    /// The SKU.
    pub sku: SkuId,
    /// The lot.
    pub lot: LotId,
    /// The change applied.
    pub delta: i64,
    /// Why.
    pub reason: AdjustmentReason,
    /// The lot's counters after the change.
    pub quantities: LotQuantities,
    /// Reservations that held units the shrink took, newest reservation
    /// first (the most recent order is shorted before older ones). Empty
    /// when the lot's available units covered the shrink.
    pub shortfalls: Vec<Shortfall>,
    /// The SKU version this adjustment produced.
    pub version: u64,
}
