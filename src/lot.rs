//! Lots: what a receipt brings in, and what the engine reports about each
//! lot afterwards.
//!
//! Owns: [`NewLot`] (the input of a receipt), [`LotAttributes`] and the
//! stated maximum size of each of its strings (checked by `validate`
//! before a receipt touches anything), [`LotQuantities`] (a lot's
//! counters) and [`LotSnapshot`] (one lot as a snapshot shows it), plus
//! [`AdjustmentReason`].
//!
//! Must never: change a counter, or let a string a wire sent grow without
//! a bound into every snapshot and event. These are plain values; the SKU
//! cell is the only place lot counters move.

use crate::clock::Timestamp;
use crate::ids::{LocationId, LotId};
use crate::quantity::Quantity;
use core::fmt;
use std::sync::Arc;

/// Optional descriptive facts about a lot. The engine stores them and hands
/// them back; it never allocates by them.
///
/// Each string has a stated maximum size; a receipt carrying a longer one
/// is refused with
/// [`ReceiveError::AttributeTooLong`](crate::ReceiveError::AttributeTooLong)
/// before anything changes.
///
/// ```
/// use stockroom::LotAttributes;
/// let attributes = LotAttributes::default().supplier("Acme Dairy");
/// assert_eq!(attributes.supplier.as_deref(), Some("Acme Dairy"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LotAttributes {
    /// Who supplied the lot: at most
    /// [`SUPPLIER_LEN_MAX`](LotAttributes::SUPPLIER_LEN_MAX) bytes.
    pub supplier: Option<String>,
}

impl LotAttributes {
    /// The longest [`supplier`](LotAttributes::supplier), in bytes (UTF-8):
    /// a name, not a document. Every snapshot and event of the lot carries
    /// it.
    pub const SUPPLIER_LEN_MAX: usize = 256;

    /// Sets who supplied the lot.
    pub fn supplier(mut self, supplier: impl Into<String>) -> LotAttributes {
        self.supplier = Some(supplier.into());
        self
    }

    /// Checks every string against its stated maximum, in field order.
    pub(crate) fn validate(&self) -> Result<(), AttributeTooLong> {
        let bounded = [(LotAttribute::Supplier, self.supplier.as_deref(), LotAttributes::SUPPLIER_LEN_MAX)];
        for (field, text, max) in bounded {
            if let Some(len) = text.map(str::len).filter(|&len| len > max) {
                return Err(AttributeTooLong { field, len, max });
            }
        }
        Ok(())
    }
}

/// A string field of [`LotAttributes`] with a stated maximum size, as a
/// refusal names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum LotAttribute {
    /// [`LotAttributes::supplier`].
    Supplier,
}

impl fmt::Display for LotAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LotAttribute::Supplier => "supplier",
        })
    }
}

/// A lot attribute past its maximum size (what `validate` found).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttributeTooLong {
    pub(crate) field: LotAttribute,
    pub(crate) len: usize,
    pub(crate) max: usize,
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
#[non_exhaustive]
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
    /// Where the lot is kept (a warehouse, a store): requests may restrict
    /// or rank locations; at most [`LOCATION_MAX`](crate::LOCATION_MAX).
    #[cfg_attr(feature = "serde", serde(default))]
    pub location: Option<LocationId>,
}

impl NewLot {
    /// A lot of `quantity` units, received now, that never expires.
    pub fn new(id: LotId, quantity: u64) -> NewLot {
        NewLot { id, quantity, received_at: None, expires_at: None, attributes: None, location: None }
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

    /// Keeps the lot at `location`.
    pub fn at(mut self, location: LocationId) -> NewLot {
        self.location = Some(location);
        self
    }

    /// Sets the descriptive attributes.
    pub fn attributes(mut self, attributes: LotAttributes) -> NewLot {
        self.attributes = Some(attributes);
        self
    }

    /// Checks the lot's strings against their stated maximums (the
    /// quantity is the ledger's to check: its error names the SKU).
    pub(crate) fn validate(&self) -> Result<(), AttributeTooLong> {
        self.attributes.as_ref().map_or(Ok(()), LotAttributes::validate)
    }
}

/// Prints `text` quoted, with escapes (so it stays on one line), or only
/// its length past `max` bytes.
struct Quoted<'a>(&'a str, usize);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Quoted(text, max) if text.len() > max => write!(f, "of {} bytes", text.len()),
            Quoted(text, _) => write!(f, "{text:?}"),
        }
    }
}

impl fmt::Display for LotAttributes {
    /// `supplier "Acme"` when set; a string longer than its maximum prints
    /// as `supplier of N bytes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = LotAttributes::SUPPLIER_LEN_MAX;
        let fields = [("supplier", self.supplier.as_deref())];
        let mut separator = "";
        for (name, text) in fields {
            if let Some(text) = text {
                write!(f, "{separator}{name} {}", Quoted(text, max))?;
                separator = ", ";
            }
        }
        Ok(())
    }
}

impl fmt::Display for NewLot {
    /// `lot:7 of 100`, then `, received at 5ms`, `, expires at 900ms` and
    /// the attributes (`, supplier "Acme"`) when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}{}", self.id, self.quantity, LotDetails(self))
    }
}

/// What a [`NewLot`] prints after its id and quantity: `, received at
/// 5ms`, `, expires at 900ms` and the attributes, when set.
pub(crate) struct LotDetails<'a>(pub(crate) &'a NewLot);

impl fmt::Display for LotDetails<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lot = self.0;
        if let Some(at) = lot.received_at {
            write!(f, ", received at {at}")?;
        }
        if let Some(at) = lot.expires_at {
            write!(f, ", expires at {at}")?;
        }
        if let Some(attributes) = lot.attributes.as_ref().filter(|attributes| **attributes != LotAttributes::default())
        {
            write!(f, ", {attributes}")?;
        }
        match lot.location {
            Some(location) => write!(f, ", at {location}"),
            None => Ok(()),
        }
    }
}

/// One lot's counters. They always satisfy the conservation law
/// `received + adjusted + returned = available + expired + held +
/// committed + written_off`, and none but `adjusted` is ever negative.
///
/// More counters may come (it is `#[non_exhaustive]`): build one from
/// [`LotQuantities::default`] and set its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LotQuantities {
    /// Units received.
    pub received: Quantity,
    /// Net adjustments (spoilage, recounts, damage …), signed; expiry
    /// write-offs are counted apart, in `written_off`.
    pub adjusted: i64,
    /// Units in the building, not held, and sellable: what allocations may
    /// draw on (zero for a lot past its expiry at the reading instant).
    pub available: Quantity,
    /// Units in the building, not held, on a lot past its expiry at the
    /// reading instant: never sold, kept apart from `available` until
    /// written off.
    #[cfg_attr(feature = "serde", serde(default))]
    pub expired: Quantity,
    /// Units held by live reservations.
    pub held: Quantity,
    /// Units that left the building (committed reservations and sales;
    /// units returned later are counted in `returned`, not taken off here).
    pub committed: Quantity,
    /// Units written off because the lot expired.
    #[cfg_attr(feature = "serde", serde(default))]
    pub written_off: Quantity,
    /// Units that came back into this lot (returns and restocks).
    #[cfg_attr(feature = "serde", serde(default))]
    pub returned: Quantity,
}

impl LotQuantities {
    /// Units physically present: `available + expired + held`.
    pub fn on_hand(&self) -> u64 {
        self.available.get() + self.expired.get() + self.held.get()
    }

    /// Adds `other`'s counters to these (a SKU's totals).
    pub(crate) fn add(&mut self, other: &LotQuantities) {
        self.received = self.received.plus(other.received);
        self.adjusted += other.adjusted;
        self.available = self.available.plus(other.available);
        self.expired = self.expired.plus(other.expired);
        self.held = self.held.plus(other.held);
        self.committed = self.committed.plus(other.committed);
        self.written_off = self.written_off.plus(other.written_off);
        self.returned = self.returned.plus(other.returned);
    }
}

/// One lot as a snapshot shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LotSnapshot {
    /// The lot's id.
    pub id: LotId,
    /// When it was received.
    pub received_at: Timestamp,
    /// When it expires, if ever.
    pub expires_at: Option<Timestamp>,
    /// Its descriptive attributes, if any.
    pub attributes: Option<Arc<LotAttributes>>,
    /// Where it is kept, if said.
    #[cfg_attr(feature = "serde", serde(default))]
    pub location: Option<LocationId>,
    /// Its counters.
    pub quantities: LotQuantities,
}

impl LotSnapshot {
    /// A lot as a snapshot would show it, every field in declaration order
    /// (for tests, reference models and stand-ins for a ledger; a field
    /// added later starts at its neutral value here).
    pub fn new(
        id: LotId,
        received_at: Timestamp,
        expires_at: Option<Timestamp>,
        attributes: Option<Arc<LotAttributes>>,
        quantities: LotQuantities,
    ) -> LotSnapshot {
        LotSnapshot { id, received_at, expires_at, attributes, location: None, quantities }
    }
}

/// Why the physical world changed a lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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

impl fmt::Display for AdjustmentReason {
    /// The reason in lower case: `receipt`, `spoilage`, `recount`,
    /// `damage`, `recalibration`, `expiry`, `other`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdjustmentReason::Receipt => "receipt",
            AdjustmentReason::Spoilage => "spoilage",
            AdjustmentReason::Recount => "recount",
            AdjustmentReason::Damage => "damage",
            AdjustmentReason::Recalibration => "recalibration",
            AdjustmentReason::Expiry => "expiry",
            AdjustmentReason::Other => "other",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_strings_are_bounded_at_their_stated_maximum() {
        let max = LotAttributes::SUPPLIER_LEN_MAX;
        let supplier = |len: usize| LotAttributes::default().supplier("é".repeat(len / 2) + &"x".repeat(len % 2));
        assert_eq!(supplier(max).validate(), Ok(()));
        assert_eq!(
            supplier(max + 1).validate(),
            Err(AttributeTooLong { field: LotAttribute::Supplier, len: max + 1, max }),
            "the bound is in bytes (UTF-8), not characters"
        );
        assert_eq!(LotAttributes::default().validate(), Ok(()));
        let lot = NewLot::new(LotId(1), 1);
        assert_eq!(lot.validate(), Ok(()), "no attributes");
        let huge = lot.attributes(LotAttributes::default().supplier("x".repeat(1 << 20)));
        assert_eq!(huge.validate().map_err(|e| e.len), Err(1 << 20));
    }

    #[test]
    fn lots_and_reasons_print_one_line() {
        assert_eq!(NewLot::new(LotId(7), 100).to_string(), "lot:7 of 100");
        let attributes = LotAttributes::default().supplier("Acme");
        assert_eq!(attributes.to_string(), r#"supplier "Acme""#);
        assert_eq!(LotAttributes::default().supplier("A\n1").to_string(), r#"supplier "A\n1""#);
        assert_eq!(
            NewLot::new(LotId(7), 100).expires_at(Timestamp(9)).attributes(LotAttributes::default()).to_string(),
            "lot:7 of 100, expires at 9ms",
            "empty attributes print nothing"
        );
        let reasons = [
            AdjustmentReason::Receipt,
            AdjustmentReason::Spoilage,
            AdjustmentReason::Recount,
            AdjustmentReason::Damage,
            AdjustmentReason::Recalibration,
            AdjustmentReason::Expiry,
            AdjustmentReason::Other,
        ];
        let printed: Vec<String> = reasons
            .iter()
            .map(|reason| match reason {
                // No wildcard: a new reason fails to compile here until it is listed.
                AdjustmentReason::Receipt
                | AdjustmentReason::Spoilage
                | AdjustmentReason::Recount
                | AdjustmentReason::Damage
                | AdjustmentReason::Recalibration
                | AdjustmentReason::Expiry
                | AdjustmentReason::Other => reason.to_string(),
            })
            .collect();
        assert_eq!(printed, ["receipt", "spoilage", "recount", "damage", "recalibration", "expiry", "other"]);
        assert_eq!(LotAttribute::Supplier.to_string(), "supplier");
    }
}
