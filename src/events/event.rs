//! Events as data: what every change to a SKU tells its subscribers.
//!
//! Owns: [`Event`], [`Change`] (which change produced the version) and
//! [`Notice`] (threshold crossings the change caused).
//!
//! Must never: describe anything but one published version. An event is
//! built from the version a change replaced and the version it published,
//! after the publishing compare-and-swap succeeded; its `version` is that
//! version's, and each SKU's versions are gap-free, so a subscriber that
//! keeps up sees every change of a SKU exactly once, in order.

use crate::ids::{LotId, ReservationId, SkuId};
use crate::outcome::{
    Adjusted, Allocation, Committed, Extended, Lines, LowStockSet, Pinned, Received, Released, Sale, SkuDefined, Swept,
};
use crate::quantity::Quantity;

/// One change to one SKU, as a subscriber receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// Global sequence number: increases across everything one subscriber
    /// receives (assigned in delivery order).
    pub seq: u64,
    /// The SKU.
    pub sku: SkuId,
    /// The SKU version the change produced.
    pub version: u64,
    /// What changed: the command's outcome, or a sweep.
    pub change: Change,
    /// Thresholds this change crossed, each exactly once per crossing.
    pub notices: Vec<Notice>,
}

/// The change that produced a version.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Change {
    /// The SKU was defined (version 0).
    Defined(SkuDefined),
    /// A lot was received.
    Received(Received),
    /// A reservation was made (alone, or as one SKU's part of an order).
    Allocated(Allocation),
    /// Units were sold outright.
    Sold(Sale),
    /// A reservation was released (by its caller, by a guard's drop, or by
    /// an order rolling back a line it could not complete).
    Released(Released),
    /// A reservation was committed.
    Committed(Committed),
    /// A lot was adjusted; the outcome says what became of every affected
    /// reservation.
    Adjusted(Adjusted),
    /// A reservation's deadline moved later.
    Extended(Extended),
    /// An order's commit pinned or unpinned one of its parts.
    Pinned(Pinned),
    /// Units that left came back (a return or restock).
    Returned(crate::returns::Returned),
    /// Lapsed reservations returned their units, and/or lots were found
    /// past their expiry.
    Swept(Swept),
    /// The low-stock threshold changed.
    LowStockSet(LowStockSet),
}

/// A threshold a change crossed.
///
/// "Available" is the SKU's `totals().available`: units on hand that no
/// reservation holds (units of expired lots included until written off).
/// Each notice fires on the one version whose change crossed its line, so
/// exactly once per crossing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Notice {
    /// The SKU's low-stock rule fired: the stock it counts fell to or below
    /// its threshold while the rule was armed (see
    /// [`Ledger::set_low_stock_rule`](crate::Ledger::set_low_stock_rule)).
    /// Once per crossing: it fires again only after stock rose above
    /// threshold + margin. A fall to zero available also fires
    /// [`Notice::SoldOut`].
    LowStock {
        /// The stock the rule counts, now: available units, or units on
        /// hand under [`LowStockBasis::OnHand`](crate::LowStockBasis::OnHand).
        available: Quantity,
        /// The threshold.
        threshold: Quantity,
    },
    /// Available units fell to zero.
    SoldOut,
    /// Available units rose from zero (including a SKU's first receipt).
    BackInStock {
        /// Available units now.
        available: Quantity,
    },
    /// A lot's expiry passed: reported by the first sweep that looked at
    /// lots after it ([`Ledger::expire_due`](crate::Ledger::expire_due) or
    /// the reaper), or at receipt for a lot received already past the
    /// instant such a sweep covered.
    LotExpired {
        /// The lot.
        lot: LotId,
    },
    /// A waiting backorder drew units the change brought in (a receipt, a
    /// growth, a release, a lapse, a return): backorders are filled oldest
    /// first, before any request can take those units.
    BackorderFilled {
        /// The backorder.
        reservation: ReservationId,
        /// The units it drew, per lot.
        drawn: Lines,
        /// Units it still waits for (zero: it is whole and may be
        /// committed).
        outstanding: Quantity,
    },
}
