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

use crate::clock::Timestamp;
use crate::idempotency::IdempotencyKey;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::quantity::Quantity;
use std::time::Duration;

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
    /// A hold duration under one millisecond, the clock's resolution
    /// (leave it unset to hold until ended).
    #[error("{sku}: a hold duration must be at least one millisecond")]
    ZeroHold {
        /// The SKU.
        sku: SkuId,
    },
    /// A hold duration longer than the ledger's maximum.
    #[error("{sku}: holding for {requested:?} exceeds the maximum of {max:?}")]
    HoldTooLong {
        /// The SKU.
        sku: SkuId,
        /// The rejected duration.
        requested: Duration,
        /// The ledger's maximum hold duration.
        max: Duration,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The request was conditional on a version the SKU no longer has.
    #[error("{sku}: expected version {expected}, the SKU is at {current}")]
    VersionMismatch {
        /// The SKU.
        sku: SkuId,
        /// The version the caller decided on.
        expected: u64,
        /// The version the request met.
        current: u64,
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
    /// The reservation's deadline had passed: it lapsed (this very call
    /// returned its units) and can no longer be ended any other way.
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
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
    /// The reservation's deadline had passed: it lapsed (this very call
    /// returned its units) and can no longer be ended any other way.
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
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
    /// The adjustment was conditional on a version the SKU no longer has.
    #[error("{sku}: expected version {expected}, the SKU is at {current}")]
    VersionMismatch {
        /// The SKU.
        sku: SkuId,
        /// The version the caller decided on.
        expected: u64,
        /// The version the adjustment met.
        current: u64,
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

/// Extending a reservation's deadline was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExtendError {
    /// An extension by less than one millisecond, the clock's resolution.
    #[error("{id}: an extension must be at least one millisecond")]
    ZeroDuration {
        /// The reservation.
        id: ReservationId,
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
    /// The reservation already ended.
    #[error("{id} has already ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
    /// The deadline had already passed: the reservation lapsed.
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
    },
    /// The reservation has no deadline to extend: it holds until ended.
    #[error("{id} has no deadline")]
    NoDeadline {
        /// The reservation.
        id: ReservationId,
    },
    /// The new deadline would pass the latest this reservation may have
    /// (its allocation instant plus the ledger's maximum hold duration).
    #[error("{id}: deadline {requested} is past the latest allowed, {latest}")]
    BeyondMaximum {
        /// The reservation.
        id: ReservationId,
        /// The deadline asked for.
        requested: Timestamp,
        /// The latest deadline it may have.
        latest: Timestamp,
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

/// A sweep of lapsed reservations was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExpireError {
    /// The instant is later than the ledger's clock: sweeping at it would
    /// end reservations before their deadlines.
    #[error("cannot sweep at {now}: the ledger's clock reads {clock}")]
    InFuture {
        /// The instant asked for.
        now: Timestamp,
        /// The ledger clock's reading.
        clock: Timestamp,
    },
}

/// A multi-line order was refused; no line of it is held.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OrderError {
    /// An order without lines.
    #[error("an order must have at least one line")]
    Empty,
    /// More lines than [`OrderRequest::LINES_MAX`](crate::OrderRequest::LINES_MAX).
    #[error("{lines} lines exceed the maximum of {max}")]
    TooManyLines {
        /// Lines in the order.
        lines: usize,
        /// The maximum.
        max: usize,
    },
    /// A hold duration under one millisecond (leave it unset to hold until
    /// ended).
    #[error("an order's hold duration must be at least one millisecond")]
    ZeroHold,
    /// A hold duration longer than the ledger's maximum.
    #[error("holding for {requested:?} exceeds the maximum of {max:?}")]
    HoldTooLong {
        /// The rejected duration.
        requested: Duration,
        /// The ledger's maximum hold duration.
        max: Duration,
    },
    /// One line was refused (its index in the request, and why). Input
    /// errors of every line are found before any stock is touched; a stock
    /// refusal names the first line its SKU could not cover.
    #[error("line {index}: {error}")]
    Line {
        /// The line's index in the request.
        index: usize,
        /// Why it was refused.
        error: AllocateError,
    },
}

/// Setting a low-stock threshold was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ThresholdError {
    /// A threshold larger than [`Quantity::MAX`].
    #[error("{sku}: threshold {threshold} exceeds the maximum")]
    TooLarge {
        /// The SKU.
        sku: SkuId,
        /// The rejected threshold.
        threshold: u64,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
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

/// A keyed command ([`Ledger::execute_keyed`](crate::Ledger::execute_keyed))
/// was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KeyedError {
    /// The key is remembered (or in flight) with a different command;
    /// nothing was applied.
    #[error("idempotency key {key} was first used for a command that differs in `{field}`")]
    KeyReused {
        /// The key.
        key: IdempotencyKey,
        /// The first field in which this command differs from the first
        /// one (`"command"` for a different kind of command).
        field: String,
    },
    /// The command was refused. A final refusal is remembered for the key:
    /// every retry with it gets the same refusal, marked as a replay. A
    /// transient one (`Contended`) is not: a retry may apply.
    #[error("{error}")]
    Refused {
        /// Why.
        error: CommandError,
        /// True when this is the first call's refusal, replayed.
        replay: bool,
    },
}

impl KeyedError {
    /// True only for a refusal that lost to contention (nothing recorded,
    /// a retry with the same key may apply).
    pub fn is_transient(&self) -> bool {
        matches!(self, KeyedError::Refused { error, .. } if error.is_transient())
    }
}

impl OrderError {
    /// True only when a line lost to contention and nothing changed.
    pub fn is_transient(&self) -> bool {
        matches!(self, OrderError::Line { error, .. } if error.is_transient())
    }
}

impl ExpireError {
    /// Always false: the instant stays in the future for this clock reading.
    pub fn is_transient(&self) -> bool {
        false
    }
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
    ExtendError => Contended;
    ThresholdError => Contended;
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
    /// From [`Command::Extend`](crate::Command::Extend).
    #[error(transparent)]
    Extend(#[from] ExtendError),
    /// From [`Command::ExpireDue`](crate::Command::ExpireDue).
    #[error(transparent)]
    Expire(#[from] ExpireError),
    /// From [`Command::AllocateOrder`](crate::Command::AllocateOrder).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// From [`Command::SetLowStock`](crate::Command::SetLowStock).
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
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
            CommandError::Extend(e) => e.is_transient(),
            CommandError::Expire(e) => e.is_transient(),
            CommandError::Order(e) => e.is_transient(),
            CommandError::Threshold(e) => e.is_transient(),
        }
    }
}
