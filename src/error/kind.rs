//! What kind of refusal an error is: [`ErrorKind`], and the mapping of every
//! public error type of the crate onto it.
//!
//! Owns: [`ErrorKind`]; the `questions!` macro that gives an error type
//! the `is_*()` questions from its `kind()`; the kinds of the errors of
//! this layer (the command errors of `error.rs`, [`QuantityTooLarge`]); and
//! `tests::check`, which every error type's tests use to pin the kind of
//! each variant.
//!
//! Must never: guess, or import above the values. Every `kind()` is a
//! `match` without a wildcard, so a new variant does not compile until it
//! has a kind; a wrapper's kind is its cause's. Error types of higher
//! layers map themselves beside their definition (`KeyedError`,
//! `ReaperError`) or, for modules that predate `ErrorKind`, in
//! `error_kinds.rs` (the ledger's queries, settings and subscriptions, the
//! idempotency key, the event receivers); the intake maps its own.

use super::{
    AdjustError, AllocateError, CommandError, CommitError, DefineError, ExpireError, ExtendError, OrderError,
    ReceiveError, ReleaseError, ThresholdError,
};
use crate::quantity::QuantityTooLarge;
use core::fmt;

/// What kind of refusal an error is, and so what a caller should do next.
///
/// Every public error type of the crate has `kind()`, and the questions
/// `is_transient()`, `is_insufficient()`, `is_not_found()`, `is_ended()`,
/// `is_conflict()` and `is_invalid()` that compare it. A wrapper error
/// ([`KeyedError`](crate::KeyedError), [`CommandError`],
/// [`OrderError::Line`]) has its cause's kind:
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, Command, ErrorKind, IdempotencyKey, Ledger, LotId, NewLot, SkuId};
///
/// let ledger = Ledger::new();
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 2))?;
/// let key = IdempotencyKey::new("order-17")?;
/// let refused = ledger.execute_keyed(&key, &Command::Take(AllocateRequest::new(SkuId(1), 5))).unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::Insufficient);
/// assert!(refused.is_insufficient() && !refused.is_transient());
/// // The cause is the source: keyed → command → allocation.
/// let cause = std::error::Error::source(&refused).and_then(std::error::Error::source);
/// assert_eq!(cause.map(|cause| cause.to_string()), Some("sku:1: 5 requested, 2 available".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Kinds may be added in later versions (`#[non_exhaustive]`): match with
/// a wildcard arm, and treat a kind you do not know as final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed, or outside a bound the crate or the ledger's
    /// settings state, whatever the stock: zero or oversized quantities, deltas
    /// and thresholds (`ZeroQuantity`, `QuantityTooLarge`, `ZeroDelta`,
    /// `DeltaTooLarge`, [`ThresholdError::TooLarge`], [`QuantityTooLarge`]);
    /// hold durations and extensions out of range (`ZeroHold`, `HoldTooLong`,
    /// `ZeroDuration`); a backorder asked of an immediate sale
    /// ([`AllocateError::BackorderOnTake`]); an order with no lines or too many
    /// ([`OrderError::Empty`], [`OrderError::TooManyLines`]); a string past its
    /// maximum ([`ReceiveError::AttributeTooLong`],
    /// [`KeyError`](crate::KeyError)); a sweep instant ahead of the clock
    /// ([`ExpireError::InFuture`]); settings out of range or a call they do not
    /// allow ([`LedgerBuildError`](crate::LedgerBuildError),
    /// [`SubscribeError`](crate::SubscribeError),
    /// [`ReaperError::TickTooShort`](crate::ReaperError::TickTooShort),
    /// [`ReaperError::ZeroSkusPerTick`](crate::ReaperError::ZeroSkusPerTick)).
    ///
    /// What to do: fix the request (it is a bug or bad user input). The same
    /// request is refused every time.
    Invalid,
    /// The request names a SKU, lot or reservation the ledger does not have:
    /// every `UnknownSku`, `UnknownLot` and `UnknownReservation`.
    ///
    /// What to do: check the id; define the SKU or receive the lot first. The
    /// same request is refused until it exists.
    NotFound,
    /// The request is well formed but contradicts the state it met: the thing
    /// already exists ([`DefineError::AlreadyDefined`],
    /// [`ReceiveError::DuplicateLot`]), the SKU moved past the version the
    /// caller decided on (every `VersionMismatch`), the reservation has no
    /// deadline to extend ([`ExtendError::NoDeadline`]), the reservation is a
    /// part of an order and ends only with it (every `OrderPart`), the SKU is
    /// a kit ([`AllocateError::Kit`]), or the key was first used for another
    /// command
    /// ([`KeyedError::KeyReused`](crate::KeyedError::KeyReused)).
    ///
    /// What to do: read the state again (a snapshot) and decide again (for
    /// an order's part, act on the order); for a version mismatch, that is
    /// optimistic concurrency working.
    Conflict,
    /// The request names a reservation that has already ended: committed,
    /// released (`Ended`) or lapsed at its deadline (`Expired`), from
    /// [`ReleaseError`], [`CommitError`], [`ExtendError`] and
    /// [`QueryError`](crate::QueryError).
    ///
    /// What to do: treat the hold as gone (its units are back in stock, or left
    /// with the commit); allocate again if the units are still wanted. A
    /// retried commit should carry an idempotency key, so that its replay
    /// answers with the first outcome instead.
    Ended,
    /// There are not enough units: the eligible lots cannot cover the request
    /// ([`AllocateError::Insufficient`]), the reservation holds fewer units
    /// than the commit names (after a shrink shorted it:
    /// [`CommitError::ExceedsHeld`]), a backorder still waits for units
    /// ([`CommitError::Waiting`]), or a shrink removes more than the lot has
    /// on hand ([`AdjustError::OutOfRange`] with a negative delta).
    ///
    /// What to do: it is a business answer (sold out), final for the stock it
    /// met: offer less, wait for stock (for a backorder, its fill notice), or
    /// tell the customer. Not worth an immediate retry; an idempotent retry of
    /// it stays refused.
    Insufficient,
    /// The request is well formed, but applying it would carry a count past a
    /// maximum the engine keeps: a SKU's total past
    /// [`Quantity::MAX`](crate::Quantity::MAX) ([`ReceiveError::Overflow`],
    /// [`AdjustError::OutOfRange`] with a positive delta), more lots than a SKU
    /// may have ([`ReceiveError::TooManyLots`]), more backorders than a SKU
    /// keeps waiting ([`AllocateError::BackorderQueueFull`]), a deadline past
    /// the latest the reservation may have ([`ExtendError::BeyondMaximum`]).
    ///
    /// What to do: final for this state; spread the stock over more SKUs or
    /// lots, wait for backorders to fill, or stop extending.
    Limit,
    /// Nothing changed and the same call, retried as it is, may succeed: it
    /// lost to contention (every `Contended`: the compare-and-swap retry bound
    /// ran out while other threads made progress), or found nothing yet
    /// ([`TryRecvError::Empty`](crate::TryRecvError::Empty),
    /// [`RecvTimeoutError::Timeout`](crate::RecvTimeoutError::Timeout)).
    ///
    /// What to do: retry, with a backoff.
    Transient,
    /// The other end is gone for good: the event hub was dropped and everything
    /// it sent has been received (every `Disconnected`).
    ///
    /// What to do: stop; nothing more will come.
    Closed,
    /// The operating system refused a resource: a thread could not start
    /// ([`ReaperError::Spawn`](crate::ReaperError::Spawn)).
    ///
    /// What to do: report it; retry later if the system recovers.
    System,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Invalid,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Ended,
        ErrorKind::Insufficient,
        ErrorKind::Limit,
        ErrorKind::Transient,
        ErrorKind::Closed,
        ErrorKind::System,
    ];

    /// The kind's name in lower case, words separated by a space: `invalid`,
    /// `not found`, `conflict`, `ended`, `insufficient`, `limit`,
    /// `transient`, `closed`, `system`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Ended => "ended",
            ErrorKind::Insufficient => "insufficient",
            ErrorKind::Limit => "limit",
            ErrorKind::Transient => "transient",
            ErrorKind::Closed => "closed",
            ErrorKind::System => "system",
        }
    }
}

impl fmt::Display for ErrorKind {
    /// [`as_str`](ErrorKind::as_str).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Gives each error type listed the questions every error answers from its
/// `kind()` (and, in tests, [`tests::Answers`] for `tests::check`). With
/// `@transient` it also defines `is_transient()`; without, the type's own
/// module already does (with the same meaning: the tests check it).
macro_rules! questions {
    (@transient $($error:ty),* $(,)?) => {$(
        impl $error {
            /// True when nothing changed and the same call, retried as it is,
            /// may succeed ([`ErrorKind::Transient`](crate::ErrorKind::Transient):
            /// lost to contention).
            /// Every other refusal is final for the state it met; running
            /// short of stock is final too (a retry loop would spin until
            /// someone else returns units: that is a new decision, not a
            /// retry).
            pub fn is_transient(&self) -> bool {
                self.kind() == $crate::error::ErrorKind::Transient
            }
        }
        $crate::error::questions!($error);
    )*};
    ($($error:ty),* $(,)?) => {$(
        impl $error {
            /// True when there were not enough units
            /// ([`ErrorKind::Insufficient`](crate::ErrorKind::Insufficient)).
            pub fn is_insufficient(&self) -> bool {
                self.kind() == $crate::error::ErrorKind::Insufficient
            }

            /// True when a SKU, lot or reservation named does not exist
            /// ([`ErrorKind::NotFound`](crate::ErrorKind::NotFound)).
            pub fn is_not_found(&self) -> bool {
                self.kind() == $crate::error::ErrorKind::NotFound
            }

            /// True when the reservation named has already ended
            /// ([`ErrorKind::Ended`](crate::ErrorKind::Ended)).
            pub fn is_ended(&self) -> bool {
                self.kind() == $crate::error::ErrorKind::Ended
            }

            /// True when the request contradicts the state it met
            /// ([`ErrorKind::Conflict`](crate::ErrorKind::Conflict)).
            pub fn is_conflict(&self) -> bool {
                self.kind() == $crate::error::ErrorKind::Conflict
            }

            /// True when the request itself is malformed or out of bounds
            /// ([`ErrorKind::Invalid`](crate::ErrorKind::Invalid)).
            pub fn is_invalid(&self) -> bool {
                self.kind() == $crate::error::ErrorKind::Invalid
            }
        }

        #[cfg(test)]
        impl $crate::error::kind::tests::Answers for $error {
            fn kind_of(&self) -> $crate::error::ErrorKind {
                self.kind()
            }

            fn answers(&self) -> [bool; 6] {
                [
                    self.is_transient(),
                    self.is_insufficient(),
                    self.is_not_found(),
                    self.is_ended(),
                    self.is_conflict(),
                    self.is_invalid(),
                ]
            }
        }
    )*};
}

pub(crate) use questions;

questions!(@transient
    DefineError,
    ReceiveError,
    AllocateError,
    ReleaseError,
    CommitError,
    AdjustError,
    ExtendError,
    ExpireError,
    OrderError,
    ThresholdError,
    CommandError,
    QuantityTooLarge,
);

use ErrorKind::{Conflict, Ended, Insufficient, Invalid, Limit, NotFound, Transient};

impl DefineError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DefineError::AlreadyDefined { .. } => Conflict,
            DefineError::CatalogFull { .. } => Limit,
        }
    }
}

impl ReceiveError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReceiveError::ZeroQuantity { .. }
            | ReceiveError::QuantityTooLarge { .. }
            | ReceiveError::AttributeTooLong { .. }
            | ReceiveError::LocationOutOfRange { .. } => Invalid,
            ReceiveError::UnknownSku { .. } => NotFound,
            ReceiveError::DuplicateLot { .. } => Conflict,
            ReceiveError::Overflow { .. } | ReceiveError::TooManyLots { .. } => Limit,
            ReceiveError::Contended { .. } => Transient,
        }
    }
}

impl AllocateError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AllocateError::ZeroQuantity { .. }
            | AllocateError::QuantityTooLarge { .. }
            | AllocateError::ZeroHold { .. }
            | AllocateError::HoldTooLong { .. }
            | AllocateError::InvalidLocations { .. }
            | AllocateError::BackorderWithLocations { .. } => Invalid,
            AllocateError::UnknownSku { .. } => NotFound,
            AllocateError::VersionMismatch { .. } => Conflict,
            AllocateError::Insufficient { .. } => Insufficient,
            AllocateError::Kit { .. } => Conflict,
            AllocateError::BackorderQueueFull { .. } => Limit,
            AllocateError::BackorderOnTake { .. } => Invalid,
            AllocateError::Contended { .. } => Transient,
        }
    }
}

impl ReleaseError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReleaseError::UnknownSku { .. } | ReleaseError::UnknownReservation { .. } => NotFound,
            ReleaseError::Ended { .. } | ReleaseError::Expired { .. } => Ended,
            ReleaseError::OrderPart { .. } => Conflict,
            ReleaseError::Contended { .. } => Transient,
        }
    }
}

impl CommitError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommitError::ZeroQuantity { .. } | CommitError::QuantityTooLarge { .. } => Invalid,
            CommitError::UnknownSku { .. } | CommitError::UnknownReservation { .. } => NotFound,
            CommitError::Ended { .. } | CommitError::Expired { .. } => Ended,
            CommitError::Waiting { .. } | CommitError::ExceedsHeld { .. } => Insufficient,
            CommitError::OrderPart { .. } => Conflict,
            CommitError::Contended { .. } => Transient,
        }
    }
}

impl AdjustError {
    /// What kind of refusal this is (see [`ErrorKind`]). An out-of-range
    /// shrink is [`Insufficient`](ErrorKind::Insufficient) (fewer units on
    /// hand than it removes), an out-of-range growth a
    /// [`Limit`](ErrorKind::Limit).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AdjustError::ZeroDelta { .. } | AdjustError::DeltaTooLarge { .. } => Invalid,
            AdjustError::UnknownSku { .. } | AdjustError::UnknownLot { .. } => NotFound,
            AdjustError::VersionMismatch { .. } => Conflict,
            AdjustError::OutOfRange { delta, .. } if *delta < 0 => Insufficient,
            AdjustError::OutOfRange { .. } => Limit,
            AdjustError::Contended { .. } => Transient,
        }
    }
}

impl ExtendError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExtendError::ZeroDuration { .. } => Invalid,
            ExtendError::UnknownSku { .. } | ExtendError::UnknownReservation { .. } => NotFound,
            ExtendError::Ended { .. } | ExtendError::Expired { .. } => Ended,
            ExtendError::NoDeadline { .. } => Conflict,
            ExtendError::BeyondMaximum { .. } => Limit,
            ExtendError::OrderPart { .. } => Conflict,
            ExtendError::Contended { .. } => Transient,
        }
    }
}

impl ExpireError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExpireError::InFuture { .. } => Invalid,
        }
    }
}

impl OrderError {
    /// What kind of refusal this is (see [`ErrorKind`]); for a refused
    /// line, its cause's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OrderError::Empty
            | OrderError::TooManyLines { .. }
            | OrderError::ZeroHold
            | OrderError::HoldTooLong { .. } => Invalid,
            OrderError::Line { error, .. } => error.kind(),
        }
    }
}

impl ThresholdError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ThresholdError::TooLarge { .. } => Invalid,
            ThresholdError::UnknownSku { .. } => NotFound,
            ThresholdError::Contended { .. } => Transient,
        }
    }
}

impl CommandError {
    /// The command's own error's kind (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommandError::Define(error) => error.kind(),
            CommandError::Receive(error) => error.kind(),
            CommandError::Allocate(error) => error.kind(),
            CommandError::Release(error) => error.kind(),
            CommandError::Commit(error) => error.kind(),
            CommandError::Adjust(error) => error.kind(),
            CommandError::Extend(error) => error.kind(),
            CommandError::Expire(error) => error.kind(),
            CommandError::Order(error) => error.kind(),
            CommandError::Threshold(error) => error.kind(),
            CommandError::OrderChange(error) => error.kind(),
            CommandError::Kit(error) => error.kind(),
            CommandError::Return(error) => error.kind(),
            CommandError::OutcomeLost => ErrorKind::System,
        }
    }
}

impl QuantityTooLarge {
    /// What kind of refusal this is: always [`Invalid`](ErrorKind::Invalid).
    pub fn kind(&self) -> ErrorKind {
        Invalid
    }
}

#[cfg(test)]
pub(crate) mod tests;
