//! What order commands answer and refuse, as data.
//!
//! Owns: [`OrderStatus`] (and its [`OrderState`], [`PartStatus`],
//! [`PartState`]), the outcomes [`OrderCommitted`], [`OrderReleased`],
//! [`OrderExtended`], and the refusal [`OrderChangeError`] with its
//! [`PartFailure`].
//!
//! Must never: describe an order other than as one unit: a refusal names
//! the one part that stopped the command, and says that nothing of it
//! stayed done.

use crate::clock::Timestamp;
use crate::ids::{OrderId, ReservationId};
use crate::outcome::{Committed, Extended, Released};
use crate::quantity::Quantity;

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum OrderState {
    /// Every part is held.
    Held,
    /// Some part has ended without the order (it lapsed, or a shrink took
    /// all its units): the order can no longer commit; release it.
    Broken,
    /// A command is acting on it right now.
    Busy,
    /// Every part committed.
    Committed,
    /// Every part was released (or had already ended).
    Released,
}

/// How one part of an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PartState {
    /// Held: `held` units now.
    Held {
        /// Units held now.
        held: Quantity,
    },
    /// It lapsed at its deadline.
    Lapsed,
    /// It ended (committed or released with its order, or lapsed and
    /// already swept).
    Ended,
}

/// One part of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PartStatus {
    /// The part's reservation.
    pub reservation: ReservationId,
    /// How it stands.
    pub state: PartState,
}

/// An order as [`Ledger::order`](crate::Ledger::order) reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderStatus {
    /// The order.
    pub order: OrderId,
    /// The host's tag.
    pub tag: u64,
    /// Where it is.
    pub state: OrderState,
    /// The parts' deadline when they were made (`None`: held until ended).
    pub deadline: Option<Timestamp>,
    /// Its parts, by SKU id.
    pub parts: Vec<PartStatus>,
}

/// Every part of an order committed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderCommitted {
    /// The order.
    pub order: OrderId,
    /// Each part's commit, by SKU id.
    pub parts: Vec<Committed>,
}

/// An order was released: every part that was still held returned its
/// units.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderReleased {
    /// The order.
    pub order: OrderId,
    /// The parts this call released, by SKU id.
    pub parts: Vec<Released>,
    /// Parts that had already ended (lapsed) before the call.
    pub already_ended: Vec<ReservationId>,
}

/// Every part of an order has a later deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderExtended {
    /// The order.
    pub order: OrderId,
    /// Each part's extension, by SKU id.
    pub parts: Vec<Extended>,
}

/// Why a part stopped its order's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PartFailure {
    /// The part lapsed at its deadline.
    Lapsed {
        /// The deadline it missed.
        deadline: Timestamp,
    },
    /// The part has ended (lapsed and swept earlier).
    Ended,
    /// A shrink took units from the part that no other lot could cover.
    Shorted {
        /// Units it holds.
        held: Quantity,
        /// Units it was granted.
        granted: Quantity,
    },
    /// The part is a backorder still waiting for units.
    Waiting {
        /// Units it still waits for.
        outstanding: Quantity,
    },
    /// The part has no deadline to extend.
    NoDeadline,
    /// The new deadline would pass the latest the part may have.
    BeyondMaximum {
        /// The latest deadline it may have.
        latest: Timestamp,
    },
}

impl core::fmt::Display for PartFailure {
    /// `lapsed at 34800000ms`, `ended`, `shorted: holds 2 of 5`, `waiting
    /// for 3`, `has no deadline`, `would pass its latest deadline
    /// 34800000ms`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PartFailure::Lapsed { deadline } => write!(f, "lapsed at {deadline}"),
            PartFailure::Ended => f.write_str("ended"),
            PartFailure::Shorted { held, granted } => write!(f, "shorted: holds {held} of {granted}"),
            PartFailure::Waiting { outstanding } => write!(f, "waiting for {outstanding}"),
            PartFailure::NoDeadline => f.write_str("has no deadline"),
            PartFailure::BeyondMaximum { latest } => write!(f, "would pass its latest deadline {latest}"),
        }
    }
}

/// An order's commit, release or extension was refused. Nothing of it
/// stayed done: a commit or an extension that a part stopped undid what
/// it had done to the parts before it (a pinned part got its deadline
/// back, an extended one its old deadline).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum OrderChangeError {
    /// The ledger never made this order, or forgot it (finished orders are
    /// kept for a bounded while: see [`ORDERS_KEPT`](crate::ORDERS_KEPT)).
    #[error("{order} is not known")]
    UnknownOrder {
        /// The order.
        order: OrderId,
    },
    /// Another command is acting on the order right now.
    #[error("{order} is busy with another command")]
    Busy {
        /// The order.
        order: OrderId,
    },
    /// The order is already committed or released.
    #[error("{order} has already ended")]
    Ended {
        /// The order.
        order: OrderId,
        /// How it ended.
        state: OrderState,
    },
    /// A part stopped the command.
    #[error("{order}: part {index} ({reservation}) stopped it: {failure}")]
    Part {
        /// The order.
        order: OrderId,
        /// The part's index among the order's parts (by SKU id).
        index: usize,
        /// The part's reservation.
        reservation: ReservationId,
        /// Why.
        failure: PartFailure,
    },
    /// An extension by less than one millisecond.
    #[error("{order}: an extension must be at least one millisecond")]
    ZeroDuration {
        /// The order.
        order: OrderId,
    },
}
