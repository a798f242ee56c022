//! Commands as plain data: what a host can log, replay, send over a channel
//! or fuzz, and hand to [`Ledger::execute`](crate::Ledger::execute).
//!
//! Owns: the request types ([`AllocateRequest`]) and the [`Command`] /
//! [`Outcome`] enums that wrap every command and its result.
//!
//! Must never: validate or execute. Requests carry raw numbers exactly as a
//! caller or a wire sent them; the ledger validates every one before it
//! touches state.

use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, NewLot};
use crate::outcome::{Adjusted, Allocation, Committed, Received, Released, Sale, SkuDefined};
use crate::policy::{AllocationPolicy, FillMode};
use std::time::Duration;

/// A request for units of one SKU, for [`Ledger::allocate`](crate::Ledger::allocate)
/// (hold them) or [`Ledger::take`](crate::Ledger::take) (sell them now).
///
/// ```
/// use stockroom::{AllocateRequest, FillMode, SkuId};
/// use std::time::Duration;
///
/// let request = AllocateRequest::new(SkuId(1), 1_500)
///     .fill(FillMode::Partial)
///     .min_shelf_life(Duration::from_secs(3 * 86_400));
/// assert_eq!(request.quantity, 1_500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AllocateRequest {
    /// The SKU.
    pub sku: SkuId,
    /// Units wanted; validated (non-zero, at most [`Quantity::MAX`](crate::Quantity::MAX)).
    pub quantity: u64,
    /// All or nothing (the default), or as much as there is.
    pub fill: FillMode,
    /// Overrides the SKU's policy for this request (a slower path: the lots
    /// are sorted for the request).
    pub policy: Option<AllocationPolicy>,
    /// Skip lots that expire within this long after the allocation instant.
    pub min_shelf_life: Duration,
}

impl AllocateRequest {
    /// `quantity` units of `sku`, fill-or-kill, by the SKU's policy, any
    /// unexpired lot.
    pub fn new(sku: SkuId, quantity: u64) -> AllocateRequest {
        AllocateRequest { sku, quantity, fill: FillMode::FillOrKill, policy: None, min_shelf_life: Duration::ZERO }
    }

    /// Sets the fill mode.
    pub fn fill(mut self, fill: FillMode) -> AllocateRequest {
        self.fill = fill;
        self
    }

    /// Overrides the SKU's allocation policy for this request.
    pub fn policy(mut self, policy: AllocationPolicy) -> AllocateRequest {
        self.policy = Some(policy);
        self
    }

    /// Sets the minimum remaining shelf life of the lots drawn.
    pub fn min_shelf_life(mut self, shelf_life: Duration) -> AllocateRequest {
        self.min_shelf_life = shelf_life;
        self
    }
}

/// Every command the ledger accepts, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Command {
    /// [`Ledger::define_sku`](crate::Ledger::define_sku).
    DefineSku {
        /// The SKU.
        sku: SkuId,
        /// Its allocation policy.
        policy: AllocationPolicy,
    },
    /// [`Ledger::receive`](crate::Ledger::receive).
    Receive {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: NewLot,
    },
    /// [`Ledger::allocate`](crate::Ledger::allocate).
    Allocate(AllocateRequest),
    /// [`Ledger::take`](crate::Ledger::take).
    Take(AllocateRequest),
    /// [`Ledger::release`](crate::Ledger::release).
    Release {
        /// The reservation.
        reservation: ReservationId,
    },
    /// [`Ledger::commit`](crate::Ledger::commit).
    Commit {
        /// The reservation.
        reservation: ReservationId,
        /// Units to commit; `None` commits everything held.
        quantity: Option<u64>,
    },
    /// [`Ledger::adjust`](crate::Ledger::adjust).
    Adjust {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The signed change in units.
        delta: i64,
        /// Why.
        reason: AdjustmentReason,
    },
}

impl Command {
    /// The SKU the command changes.
    pub fn sku(&self) -> SkuId {
        match self {
            Command::DefineSku { sku, .. } | Command::Receive { sku, .. } | Command::Adjust { sku, .. } => *sku,
            Command::Allocate(request) | Command::Take(request) => request.sku,
            Command::Release { reservation } | Command::Commit { reservation, .. } => reservation.sku,
        }
    }
}

/// The outcome of any [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// From [`Command::DefineSku`].
    SkuDefined(SkuDefined),
    /// From [`Command::Receive`].
    Received(Received),
    /// From [`Command::Allocate`].
    Allocated(Allocation),
    /// From [`Command::Take`].
    Sold(Sale),
    /// From [`Command::Release`].
    Released(Released),
    /// From [`Command::Commit`].
    Committed(Committed),
    /// From [`Command::Adjust`].
    Adjusted(Adjusted),
}
