//! The kinds of the errors defined above the value layer by modules that
//! do not map them themselves: the ledger's queries, settings and
//! subscriptions ([`QueryError`], [`SubscribeError`], [`LedgerBuildError`]),
//! the idempotency key ([`KeyError`]), the event receivers ([`RecvError`],
//! [`TryRecvError`], [`RecvTimeoutError`]), orders ([`OrderChangeError`])
//! and kits ([`KitError`]).
//!
//! Owns: `kind()` and the `is_*()` questions of those types, and the tests
//! that pin each variant's kind.
//!
//! Must never: guess (every `kind()` is a `match` without a wildcard), or
//! be imported by the modules it maps. A mapping may move home, beside its
//! type, when its module's owner next edits it.

use crate::error::{ErrorKind, questions};
use crate::events::{RecvError, RecvTimeoutError, TryRecvError};
use crate::idempotency::KeyError;
use crate::kits::KitError;
use crate::ledger::{LedgerBuildError, QueryError, SubscribeError};
use crate::orders::{OrderChangeError, PartFailure};
use ErrorKind::{Closed, Conflict, Ended, Insufficient, Invalid, Limit, NotFound, Transient};

questions!(@transient QueryError, SubscribeError, LedgerBuildError, KeyError, OrderChangeError, KitError);

// The event receivers define `is_transient()` beside their other questions.
questions!(RecvError, TryRecvError, RecvTimeoutError);

impl QueryError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::UnknownSku { .. } | QueryError::UnknownReservation { .. } | QueryError::UnknownOrder { .. } => {
                NotFound
            }
            QueryError::Ended { .. } | QueryError::Expired { .. } => Ended,
            QueryError::Contended { .. } => Transient,
        }
    }
}

impl SubscribeError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SubscribeError::EventsOff | SubscribeError::Capacity { .. } => Invalid,
        }
    }
}

impl LedgerBuildError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LedgerBuildError::ZeroHoldMax | LedgerBuildError::EmptyKeyWindow => Invalid,
        }
    }
}

impl KeyError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyError::Empty | KeyError::TooLong { .. } => Invalid,
        }
    }
}

impl RecvError {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RecvError::Disconnected => Closed,
        }
    }
}

impl TryRecvError {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TryRecvError::Disconnected => Closed,
            TryRecvError::Empty => Transient,
        }
    }
}

impl RecvTimeoutError {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RecvTimeoutError::Disconnected => Closed,
            RecvTimeoutError::Timeout => Transient,
        }
    }
}

impl OrderChangeError {
    /// What kind of refusal this is (see [`ErrorKind`]); for a part that
    /// stopped the command, what stopped it: a lapsed or ended part is
    /// [`Ended`](ErrorKind::Ended), a shorted or still waiting one
    /// [`Insufficient`](ErrorKind::Insufficient), a part without a deadline
    /// a [`Conflict`](ErrorKind::Conflict), a deadline past the latest a
    /// [`Limit`](ErrorKind::Limit).
    pub fn kind(&self) -> ErrorKind {
        match self {
            OrderChangeError::UnknownOrder { .. } => NotFound,
            OrderChangeError::Busy { .. } => Transient,
            OrderChangeError::Ended { .. } => Ended,
            OrderChangeError::Part { failure, .. } => match failure {
                PartFailure::Lapsed { .. } | PartFailure::Ended => Ended,
                PartFailure::Shorted { .. } | PartFailure::Waiting { .. } => Insufficient,
                PartFailure::NoDeadline => Conflict,
                PartFailure::BeyondMaximum { .. } => Limit,
            },
            OrderChangeError::ZeroDuration { .. } => Invalid,
        }
    }
}

impl KitError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            KitError::Empty { .. }
            | KitError::TooManyComponents { .. }
            | KitError::InvalidQuantity { .. }
            | KitError::DuplicateComponent { .. } => Invalid,
            KitError::UnknownComponent { .. } => NotFound,
            KitError::AlreadyDefined { .. } => Conflict,
            KitError::CatalogFull { .. } => Limit,
        }
    }
}

#[cfg(test)]
mod tests;
