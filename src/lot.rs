//! Lots: what a receipt brings in, and what the engine reports about each
//! lot afterwards.
//!
//! Owns: [`NewLot`] (the input of a receipt), [`LotAttributes`],
//! [`LotQuantities`] (a lot's counters) and [`LotSnapshot`] (one lot as a
//! snapshot shows it), plus [`AdjustmentReason`].
//!
//! Must never: change a counter. These are plain values; the SKU cell is the
//! only place lot counters move.

use crate::clock::Timestamp;
use crate::ids::LotId;
use crate::quantity::Quantity;
use std::sync::Arc;

/// Optional descriptive facts about a lot. The engine stores them and hands
/// them back; it never allocates by them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LotAttributes {
    /// Who supplied the lot.
    pub supplier: Option<String>,
    /// Where the lot is kept (warehouse, aisle, bin).
    pub location: Option<String>,
}

/// A lot to receive into a SKU.
///
/// ```
/// use stockroom::{LotId, NewLot, Timestamp};
/// let pallet = NewLot::new(LotId(7), 100_000).expires_at(Timestamp::from_millis(86_400_000));
/// assert_eq!(pallet.quantity, 100_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NewLot {
    /// The lot's id, unique within its SKU.
    pub id: LotId,
    /// Units received; validated (non-zero, at most [`Quantity::MAX`]).
    pub quantity: u64,
    /// When the lot was received; `None` means "now" by the ledger's clock.
    pub received_at: Option<Timestamp>,
    /// When the lot expires; `None` means never.
    pub expires_at: Option<Timestamp>,
    /// Optional descriptive facts.
    pub attributes: Option<LotAttributes>,
}

impl NewLot {
    /// A lot of `quantity` units, received now, that never expires.
    pub fn new(id: LotId, quantity: u64) -> NewLot {
        NewLot { id, quantity, received_at: None, expires_at: None, attributes: None }
    }

    /// Sets the receipt instant (default: the ledger's clock at receipt).
    pub fn received_at(mut self, instant: Timestamp) -> NewLot {
        self.received_at = Some(instant);
        self
    }

    /// Sets the expiry instant.
    pub fn expires_at(mut self, instant: Timestamp) -> NewLot {
        self.expires_at = Some(instant);
        self
    }

    /// Sets the descriptive attributes.
    pub fn attributes(mut self, attributes: LotAttributes) -> NewLot {
        self.attributes = Some(attributes);
        self
    }
}

/// One lot's counters. They always satisfy the conservation law
/// `received + adjusted = available + held + committed`, and
/// `available`, `held`, `committed` are never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LotQuantities {
    /// Units received.
    pub received: Quantity,
    /// Net adjustments (spoilage, recounts, write-offs …), signed.
    pub adjusted: i64,
    /// Units in the building and not held: what allocations may draw on.
    pub available: Quantity,
    /// Units held by live reservations.
    pub held: Quantity,
    /// Units that left the building (committed reservations and sales).
    pub committed: Quantity,
}

impl LotQuantities {
    /// Units physically present: `available + held`.
    pub fn on_hand(&self) -> u64 {
        self.available.get() + self.held.get()
    }
}

/// One lot as a snapshot shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LotSnapshot {
    /// The lot's id.
    pub id: LotId,
    /// When it was received.
    pub received_at: Timestamp,
    /// When it expires, if ever.
    pub expires_at: Option<Timestamp>,
    /// Its descriptive attributes, if any.
    pub attributes: Option<Arc<LotAttributes>>,
    /// Its counters.
    pub quantities: LotQuantities,
}

/// Why the physical world changed a lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AdjustmentReason {
    /// More units arrived for an existing lot.
    Receipt,
    /// Units spoiled.
    Spoilage,
    /// A count found a different number.
    Recount,
    /// Units were damaged.
    Damage,
    /// A scale was recalibrated.
    Recalibration,
    /// Expired units written off.
    Expiry,
    /// Anything else.
    Other,
}
