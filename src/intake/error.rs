//! The intake's typed errors.
//!
//! Owns: every way the intake can refuse an order ([`SubmitError`]), every
//! way an accepted order can end other than with an [`Outcome`](crate::Outcome)
//! ([`IntakeError`], [`Panicked`]), and the one way waiting on a ticket can
//! fail ([`WaitError`]), and every way starting one can fail
//! ([`BuildError`]).
//!
//! Must never: lose what was rejected. A refused submission hands the
//! [`Command`] back untouched, so a host can retry it, log it or answer
//! "429 Too Many Requests" with it.

use crate::command::Command;
use crate::error::CommandError;
use crate::keyed_error::KeyedError;

/// The intake refused an order; the command comes back untouched.
///
/// Variants are in precedence order: a shut-down intake answers
/// [`ShutDown`](SubmitError::ShutDown) even when it is also full.
///
/// ```
/// use stockroom::intake::SubmitError;
/// use stockroom::{AllocateRequest, Command, SkuId};
///
/// let command = Command::Take(AllocateRequest::new(SkuId(1), 1));
/// let refused = SubmitError::Full(Box::new(command.clone()));
/// assert!(refused.is_full() && refused.is_transient());
/// assert_eq!(refused.into_inner(), command);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The intake is shut down (or shutting down); it accepts nothing more.
    /// Final: retrying on this intake will not help.
    #[error("the intake is shut down; the order was not accepted")]
    ShutDown(Box<Command>),
    /// The queue or the in-flight limit was full and the caller asked not
    /// to wait ([`Intake::try_submit`](super::Intake::try_submit)): the
    /// order was shed. Transient.
    #[error("the intake is full; the order was shed")]
    Full(Box<Command>),
    /// The queue or the in-flight limit stayed full for the whole timeout
    /// of [`Intake::submit_timeout`](super::Intake::submit_timeout).
    /// Transient.
    #[error("the intake stayed full for the whole timeout; the order was not accepted")]
    Timeout(Box<Command>),
}

impl SubmitError {
    /// True for [`SubmitError::ShutDown`].
    pub fn is_shut_down(&self) -> bool {
        matches!(self, SubmitError::ShutDown(_))
    }

    /// True for [`SubmitError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, SubmitError::Full(_))
    }

    /// True for [`SubmitError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, SubmitError::Timeout(_))
    }

    /// True when the same order could be accepted if submitted again later
    /// ([`Full`](SubmitError::Full) and [`Timeout`](SubmitError::Timeout)).
    pub fn is_transient(&self) -> bool {
        !self.is_shut_down()
    }

    /// The refused command.
    pub fn command(&self) -> &Command {
        match self {
            SubmitError::ShutDown(command) | SubmitError::Full(command) | SubmitError::Timeout(command) => command,
        }
    }

    /// Takes the refused command back.
    pub fn into_inner(self) -> Command {
        match self {
            SubmitError::ShutDown(command) | SubmitError::Full(command) | SubmitError::Timeout(command) => *command,
        }
    }
}

/// Waiting on a [`Ticket`](super::Ticket) gave up before the order was
/// decided. The order is still accepted and will still get its outcome;
/// wait again or poll later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The timeout passed first.
    #[error("the order was not decided within the timeout")]
    Timeout,
}

/// An accepted order ended without an [`Outcome`](crate::Outcome).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum IntakeError {
    /// The ledger (or the executor) refused the command with its typed
    /// error; nothing changed.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// Applying the order panicked. The panic was contained: the worker
    /// lives on, and the ledger is as if the command never ran (see
    /// [`Panicked`]).
    #[error(transparent)]
    Panicked(Panicked),
    /// The order was never applied: a shutdown's deadline passed while it
    /// was still queued, and the shutdown took it back. Its command is in
    /// [`ShutdownReport::unapplied`](super::ShutdownReport::unapplied).
    #[error("the intake shut down before a worker reached the order; it was not applied")]
    Unapplied,
    /// A keyed order ([`Intake::submit_keyed`](super::Intake::submit_keyed))
    /// was refused by its key: the key was first used for a different
    /// command, or the executor's key table is full inside every key's
    /// window. Nothing was applied.
    #[error(transparent)]
    Key(KeyedError),
    /// A keyed order reached an executor that keeps no idempotency keys
    /// (the default [`Apply::apply_keyed`](super::Apply::apply_keyed)):
    /// it was refused, never applied without its key.
    #[error("the intake's executor keeps no idempotency keys: the keyed order was not applied")]
    KeysUnsupported,
    /// The executor applied the order but could not make it durable (a
    /// journal's write or sync failed): do not acknowledge it to anyone.
    /// What the journal holds says whether it survives a restart.
    #[error("the order was applied but could not be made durable: {reason}")]
    Undurable {
        /// Why, in the executor's words.
        reason: String,
    },
}

impl IntakeError {
    /// True for [`IntakeError::Refused`].
    pub fn is_refused(&self) -> bool {
        matches!(self, IntakeError::Refused(_))
    }

    /// True for [`IntakeError::Panicked`].
    pub fn is_panicked(&self) -> bool {
        matches!(self, IntakeError::Panicked(_))
    }

    /// True for [`IntakeError::Unapplied`].
    pub fn is_unapplied(&self) -> bool {
        matches!(self, IntakeError::Unapplied)
    }

    /// The ledger's error, for [`IntakeError::Refused`].
    pub fn command_error(&self) -> Option<&CommandError> {
        match self {
            IntakeError::Refused(error) => Some(error),
            IntakeError::Panicked(_)
            | IntakeError::Unapplied
            | IntakeError::Key(_)
            | IntakeError::KeysUnsupported
            | IntakeError::Undurable { .. } => None,
        }
    }
}

/// The outcome of an order whose application panicked.
///
/// With the [`Ledger`](crate::Ledger) as executor a contained panic leaves
/// no half-applied change: a command derives the SKU's next version off to
/// the side and publishes it whole with one compare-and-swap as its last
/// step, so a panic before that step published nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[error("applying the order panicked: {message}")]
pub struct Panicked {
    message: String,
}

impl Panicked {
    /// Wraps a panic message.
    pub fn new(message: impl Into<String>) -> Panicked {
        Panicked { message: message.into() }
    }

    /// The panic's message (`"a panic with a non-string payload"` when the
    /// payload was neither a `&str` nor a `String`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// An intake could not be started. Variants are in precedence order: the
/// settings are checked first, in the order listed, before any thread is
/// spawned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The queue capacity is 0 or above [`Intake::CAPACITY_MAX`](super::Intake::CAPACITY_MAX).
    #[error("intake capacity {capacity} is outside 1..={}", super::Intake::<()>::CAPACITY_MAX)]
    Capacity {
        /// The rejected capacity.
        capacity: usize,
    },
    /// The worker count is 0 or above [`Intake::WORKERS_MAX`](super::Intake::WORKERS_MAX).
    #[error("intake workers {workers} is outside 1..={}", super::Intake::<()>::WORKERS_MAX)]
    Workers {
        /// The rejected worker count.
        workers: usize,
    },
    /// The in-flight limit is 0 or above [`Intake::IN_FLIGHT_MAX`](super::Intake::IN_FLIGHT_MAX).
    #[error("intake in-flight limit {max_in_flight} is outside 1..={}", super::Intake::<()>::IN_FLIGHT_MAX)]
    InFlight {
        /// The rejected limit.
        max_in_flight: usize,
    },
    /// The operating system refused a worker thread.
    #[error("cannot spawn an intake worker: {0}")]
    Spawn(#[source] std::io::Error),
}
