//! Typed errors, one enum per command family.
//!
//! Owns: every way a command can be refused, and which refusals are worth a
//! retry as they are ([`is_transient`](AllocateError::is_transient): only
//! contention).
//!
//! Must never: describe a half-applied change. A command that returns an
//! error changed nothing. Variants are listed in precedence order: when
//! several apply, the first one listed is reported (input checks first,
//! then lookups, then stock), so the same bad command always gets the same
//! error. Each variant carries what was rejected.

use crate::ids::{LotId, ReservationId, SkuId};
use crate::quantity::Quantity;

/// Defining a SKU was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DefineError {
    /// The SKU is already defined.
    #[error("{sku} is already defined")]
    AlreadyDefined {
        /// The SKU.
        sku: SkuId,
    },
}

/// Receiving a lot was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ReceiveError {
    /// A lot of zero units.
    #[error("{lot} of {sku}: a lot must have at least one unit")]
    ZeroQuantity {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// More units than [`Quantity::MAX`].
    #[error("{lot} of {sku}: quantity {quantity} exceeds the maximum")]
    QuantityTooLarge {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The SKU already has a lot with this id.
    #[error("{sku} already has {lot}")]
    DuplicateLot {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// The SKU's total received would exceed [`Quantity::MAX`].
    #[error("{sku}: receiving {quantity} more would exceed the maximum total")]
    Overflow {
        /// The SKU.
        sku: SkuId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{sku}: gave up after {attempts} contended attempts")]
    Contended {
        /// The SKU.
        sku: SkuId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// An allocation (or an immediate sale) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AllocateError {
    /// A request for zero units.
    #[error("{sku}: an allocation must ask for at least one unit")]
    ZeroQuantity {
        /// The SKU.
        sku: SkuId,
    },
    /// A request for more than [`Quantity::MAX`] units.
    #[error("{sku}: quantity {quantity} exceeds the maximum")]
    QuantityTooLarge {
        /// The SKU.
        sku: SkuId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The eligible lots hold fewer units than a fill-or-kill request asked
    /// for (or none at all, for a partial request).
    #[error("{sku}: {requested} requested, {available} available")]
    Insufficient {
        /// The SKU.
        sku: SkuId,
        /// Units asked for.
        requested: Quantity,
        /// Units the policy could have allocated at that instant.
        available: Quantity,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{sku}: gave up after {attempts} contended attempts")]
    Contended {
        /// The SKU.
        sku: SkuId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// Releasing a reservation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ReleaseError {
    /// The reservation's SKU is not defined.
    #[error("{} is not defined", id.sku)]
    UnknownSku {
        /// The reservation.
        id: ReservationId,
    },
    /// The SKU never issued this reservation.
    #[error("{id} was never issued")]
    UnknownReservation {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation already ended (committed, released or expired).
    #[error("{id} has already ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{id}: gave up after {attempts} contended attempts")]
    Contended {
        /// The reservation.
        id: ReservationId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// Committing a reservation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CommitError {
    /// An explicit commit of zero units (commit everything with `None`).
    #[error("{id}: an explicit commit must be of at least one unit")]
    ZeroQuantity {
        /// The reservation.
        id: ReservationId,
    },
    /// More than [`Quantity::MAX`] units.
    #[error("{id}: quantity {quantity} exceeds the maximum")]
    QuantityTooLarge {
        /// The reservation.
        id: ReservationId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// The reservation's SKU is not defined.
    #[error("{} is not defined", id.sku)]
    UnknownSku {
        /// The reservation.
        id: ReservationId,
    },
    /// The SKU never issued this reservation.
    #[error("{id} was never issued")]
    UnknownReservation {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation already ended (committed, released or expired).
    #[error("{id} has already ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
    /// More units than the reservation holds.
    #[error("{id}: commit of {requested} exceeds the {held} held")]
    ExceedsHeld {
        /// The reservation.
        id: ReservationId,
        /// Units asked to commit.
        requested: Quantity,
        /// Units the reservation holds.
        held: Quantity,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{id}: gave up after {attempts} contended attempts")]
    Contended {
        /// The reservation.
        id: ReservationId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// An adjustment was refused. Reality is never refused: a shrink below what
/// reservations hold is applied. Only impossible input is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AdjustError {
    /// A delta of zero.
    #[error("{lot} of {sku}: an adjustment must change something")]
    ZeroDelta {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// A delta larger in size than [`Quantity::MAX`].
    #[error("{lot} of {sku}: delta {delta} exceeds the maximum")]
    DeltaTooLarge {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The rejected delta.
        delta: i64,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The SKU has no such lot.
    #[error("{sku} has no {lot}")]
    UnknownLot {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// The lot would hold fewer than zero units, or more than the maximum.
    #[error("{lot} of {sku}: {on_hand} on hand cannot change by {delta}")]
    OutOfRange {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// Units on hand before the adjustment.
        on_hand: Quantity,
        /// The rejected delta.
        delta: i64,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{sku}: gave up after {attempts} contended attempts")]
    Contended {
        /// The SKU.
        sku: SkuId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

macro_rules! transient {
    ($($error:ident => $($variant:ident)|+;)*) => {$(
        impl $error {
            /// True only when the command lost to contention and changed
            /// nothing: the same command, retried as it is, may succeed.
            /// Every other refusal is final for the state it met; stock
            /// running short is final too (a retry loop would spin until
            /// someone else returns units: that is a new decision, not a
            /// retry), and an idempotent retry of it stays refused.
            pub fn is_transient(&self) -> bool {
                matches!(self, $($error::$variant { .. })|+)
            }
        }
    )*};
}

transient! {
    ReceiveError => Contended;
    AllocateError => Contended;
    ReleaseError => Contended;
    CommitError => Contended;
    AdjustError => Contended;
}

impl DefineError {
    /// Always false: a SKU, once defined, stays defined.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// The error of any [`Command`](crate::Command) run through
/// [`Ledger::execute`](crate::Ledger::execute).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CommandError {
    /// From [`Command::DefineSku`](crate::Command::DefineSku).
    #[error(transparent)]
    Define(#[from] DefineError),
    /// From [`Command::Receive`](crate::Command::Receive).
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// From [`Command::Allocate`](crate::Command::Allocate) or
    /// [`Command::Take`](crate::Command::Take).
    #[error(transparent)]
    Allocate(#[from] AllocateError),
    /// From [`Command::Release`](crate::Command::Release).
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// From [`Command::Commit`](crate::Command::Commit).
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// From [`Command::Adjust`](crate::Command::Adjust).
    #[error(transparent)]
    Adjust(#[from] AdjustError),
}

impl CommandError {
    /// True only when the command lost to contention and changed nothing
    /// (see [`AllocateError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            CommandError::Define(e) => e.is_transient(),
            CommandError::Receive(e) => e.is_transient(),
            CommandError::Allocate(e) => e.is_transient(),
            CommandError::Release(e) => e.is_transient(),
            CommandError::Commit(e) => e.is_transient(),
            CommandError::Adjust(e) => e.is_transient(),
        }
    }
}
