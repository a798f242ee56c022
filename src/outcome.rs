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
    /// When it lapses if neither committed nor released; `None` holds until
    /// ended.
    #[cfg_attr(feature = "serde", serde(default))]
    pub deadline: Option<Timestamp>,
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

/// What became of one reservation whose units a shrinking adjustment took.
///
/// The engine first moves the lost units to other eligible lots of the SKU,
/// by the SKU's policy ([`resourced`](Shortfall::resourced)); only what no
/// other lot can cover is taken from the reservation for good
/// ([`shorted`](Shortfall::shorted)). `quantity = total(resourced) + shorted`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Shortfall {
    /// The reservation.
    pub reservation: ReservationId,
    /// Units it lost on the adjusted lot.
    pub quantity: Quantity,
    /// Units it now holds on other lots instead, in the order the policy drew
    /// them (lots not yet expired at the adjustment's instant).
    pub resourced: Vec<Line>,
    /// Units it no longer holds at all: the part no other lot could cover.
    pub shorted: Quantity,
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
    /// first (the most recent order loses units before older ones), each
    /// with what was re-sourced and what was shorted. Empty when the lot's
    /// available units covered the shrink.
    pub shortfalls: Vec<Shortfall>,
    /// The SKU version this adjustment produced.
    pub version: u64,
}

/// A reservation's deadline moved later.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Extended {
    /// The reservation.
    pub reservation: ReservationId,
    /// Its new deadline.
    pub deadline: Timestamp,
    /// The SKU version this extension produced.
    pub version: u64,
}

/// A reservation that lapsed: its deadline passed before it was committed or
/// released, and its units returned to their lots.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lapsed {
    /// The reservation.
    pub reservation: ReservationId,
    /// The deadline it missed.
    pub deadline: Timestamp,
    /// The units that returned, per lot.
    pub lines: Vec<Line>,
}

/// One sweep of one SKU: the reservations that lapsed and the lots whose
/// expiry passed since the last sweep that looked at lots.
///
/// A sweep is a change of its own (one version): time's change, not a
/// caller's. Any operation on a SKU sweeps the SKU's lapsed reservations
/// first; [`Ledger::expire_due`](crate::Ledger::expire_due) also reports lots.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Swept {
    /// The SKU.
    pub sku: SkuId,
    /// The instant the sweep ran at.
    pub at: Timestamp,
    /// Lapsed reservations, oldest reservation first.
    pub lapsed: Vec<Lapsed>,
    /// Lots whose expiry passed (at or before `at`) since they were last
    /// looked at, in the SKU's policy order. Their units stay on hand:
    /// write them off with an [`AdjustmentReason::Expiry`] adjustment.
    pub expired_lots: Vec<LotId>,
    /// The SKU version this sweep produced.
    pub version: u64,
}

/// What [`Ledger::expire_due`](crate::Ledger::expire_due) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExpiryReport {
    /// One sweep per SKU that had something lapsed or expired, by SKU id.
    pub swept: Vec<Swept>,
}

impl ExpiryReport {
    /// Every reservation that lapsed, across SKUs.
    pub fn lapsed(&self) -> impl Iterator<Item = &Lapsed> + '_ {
        self.swept.iter().flat_map(|swept| swept.lapsed.iter())
    }
}

/// A multi-line order was held: one reservation per SKU, holding the
/// combined demand of that SKU's lines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderAllocation {
    /// One allocation per SKU, by SKU id.
    pub allocations: Vec<Allocation>,
}

impl OrderAllocation {
    /// The reservations, by SKU id.
    pub fn reservations(&self) -> impl Iterator<Item = ReservationId> + '_ {
        self.allocations.iter().map(|allocation| allocation.reservation)
    }
}

/// A SKU's low-stock threshold was set (or cleared).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LowStockSet {
    /// The SKU.
    pub sku: SkuId,
    /// The threshold: a low-stock notice fires when available units fall
    /// from above it to at or below it.
    pub threshold: Option<Quantity>,
    /// The SKU version this change produced.
    pub version: u64,
}

/// The answer to a keyed command
/// ([`Ledger::execute_keyed`](crate::Ledger::execute_keyed)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Keyed<T> {
    /// The outcome: this call's, or the first call's for a replay.
    pub outcome: T,
    /// True when the command was not applied by this call: the key had
    /// already applied it (or a racing duplicate just did), and this is that
    /// first outcome, unchanged.
    pub replay: bool,
}
