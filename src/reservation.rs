//! Reservations as a reader sees them.
//!
//! Owns: [`Reservation`], the public view of a live hold.
//!
//! Must never: be a handle that changes stock. It is a copy taken from one
//! snapshot version; ending a reservation goes through the ledger.

use crate::clock::Timestamp;
use crate::ids::ReservationId;
use crate::outcome::{Line, total};
use crate::quantity::Quantity;

/// A live reservation: units set aside for an order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// What it holds now, in the order the policy drew the lots.
    pub lines: Vec<Line>,
    /// Units it was granted when allocated.
    pub granted: Quantity,
    /// Units shrinking adjustments took from it since (and no other lot
    /// could cover).
    pub shorted: Quantity,
    /// When it lapses; `None` holds until ended.
    pub deadline: Option<Timestamp>,
}

impl Reservation {
    /// Units held now: `granted - shorted`.
    pub fn held(&self) -> Quantity {
        total(&self.lines)
    }
}
