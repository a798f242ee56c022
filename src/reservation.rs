//! Reservations as a reader sees them.
//!
//! Owns: [`Reservation`], the public view of a live hold.
//!
//! Must never: be a handle that changes stock. It is a copy taken from one
//! snapshot version; ending a reservation goes through the ledger.

use crate::clock::Timestamp;
use crate::ids::ReservationId;
use crate::outcome::{Lines, total};
use crate::quantity::Quantity;

/// A live reservation: units set aside for an order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// What it holds now, in the order the policy drew the lots.
    pub lines: Lines,
    /// Units it was granted when allocated.
    pub granted: Quantity,
    /// Units shrinking adjustments took from it since (and no other lot
    /// could cover).
    pub shorted: Quantity,
    /// Units a backorder still waits for (zero once whole, and for every
    /// other reservation).
    #[cfg_attr(feature = "serde", serde(default))]
    pub backordered: Quantity,
    /// When it lapses; `None` holds until ended.
    pub deadline: Option<Timestamp>,
    /// The host's tag ([`AllocateRequest::tag`](crate::AllocateRequest::tag)); 0 for none.
    #[cfg_attr(feature = "serde", serde(default))]
    pub tag: u64,
}

impl Reservation {
    /// A reservation of these fields, in declaration order (for tests,
    /// reference models and stand-ins for a ledger). The fields added since
    /// start at their neutral value: `backordered` zero, `tag` 0 (set them
    /// by assignment).
    pub fn new(
        id: ReservationId,
        lines: impl Into<Lines>,
        granted: Quantity,
        shorted: Quantity,
        deadline: Option<Timestamp>,
    ) -> Reservation {
        Reservation { id, lines: lines.into(), granted, shorted, backordered: Quantity::ZERO, deadline, tag: 0 }
    }

    /// Units held now: `granted - shorted - backordered`.
    pub fn held(&self) -> Quantity {
        total(&self.lines)
    }
}
