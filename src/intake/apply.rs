//! What the intake's workers apply orders to.
//!
//! Owns: the [`Apply`] trait and its implementations for the
//! [`Ledger`] and for anything behind an `Arc`.
//!
//! Must never: reach past [`Ledger::execute`] and [`Ledger::execute_keyed`]
//! (the intake is a host of the ledger like any other; it applies commands
//! through the public API), or apply a keyed order without its key.

use super::error::IntakeError;
use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::idempotency::IdempotencyKey;
use crate::keyed_error::KeyedError;
use crate::ledger::Ledger;
use crate::outcome::Keyed;
use crate::sync::Arc;

/// Something that applies a [`Command`]: the [`Ledger`], or a host's
/// wrapper around it (one that logs, meters, simulates latency, or — in a
/// test — panics on purpose).
///
/// Workers call `apply` from several threads at once, inside
/// [`std::panic::catch_unwind`]: a panic becomes that order's
/// [`IntakeError::Panicked`](super::IntakeError::Panicked) and the worker
/// carries on. The intake asserts unwind safety on the executor's behalf,
/// so an executor with interior state of its own must leave it consistent
/// when it panics (the [`Ledger`] does: it publishes a change whole, with
/// one compare-and-swap, or not at all).
///
/// ```
/// use stockroom::intake::{Apply, Intake};
/// use stockroom::{AllocateRequest, Command, CommandError, Ledger, Outcome, SkuId};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts the orders that reach the ledger.
/// struct Metered { ledger: Ledger, applied: AtomicU64 }
///
/// impl Apply for Metered {
///     fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
///         self.applied.fetch_add(1, Ordering::Relaxed);
///         self.ledger.execute(command)
///     }
/// }
///
/// let metered = Arc::new(Metered { ledger: Ledger::new(), applied: AtomicU64::new(0) });
/// let intake = Intake::builder().workers(1).build(Arc::clone(&metered))?;
/// intake.submit(Command::Take(AllocateRequest::new(SkuId(9), 1)))?.wait();
/// assert_eq!(metered.applied.load(Ordering::Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Apply: Send + Sync {
    /// Applies one command and returns its outcome or its typed error.
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError>;

    /// Applies one command under an idempotency key (an order submitted
    /// with [`Intake::submit_keyed`](super::Intake::submit_keyed)): at most
    /// once per key, a retry answered with the first outcome
    /// ([`Keyed::replay`]), a key reused for another command refused with
    /// [`IntakeError::Key`].
    ///
    /// The default keeps no keys, so it refuses every keyed order with
    /// [`IntakeError::KeysUnsupported`]: applying it without its key could
    /// apply a retry twice. The [`Ledger`] keeps keys
    /// ([`Ledger::execute_keyed`]); a wrapper around it forwards here.
    fn apply_keyed(&self, key: &IdempotencyKey, command: &Command) -> Result<Keyed<Outcome>, IntakeError> {
        let _ = (key, command);
        Err(IntakeError::KeysUnsupported)
    }

    /// Whether a worker should apply the orders queued together as one
    /// batch and call [`make_durable`](Apply::make_durable) once before
    /// deciding any of them (a group commit: one fsync for the batch).
    /// The default, false, decides each order as soon as it is applied.
    fn batches_for_durability(&self) -> bool {
        false
    }

    /// Makes every order applied so far durable; called by a worker after
    /// a batch, before it decides the batch's tickets. An `Err` (its
    /// reason) decides each of them [`IntakeError::Undurable`]. The
    /// default has nothing to make durable.
    fn make_durable(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Apply for Ledger {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        self.execute(command)
    }

    fn apply_keyed(&self, key: &IdempotencyKey, command: &Command) -> Result<Keyed<Outcome>, IntakeError> {
        self.execute_keyed(key, command).map_err(|error| match error {
            KeyedError::Refused { error, .. } => IntakeError::Refused(error),
            other => IntakeError::Key(other),
        })
    }

    /// True for a ledger kept in a `Sync` journal: its tickets are decided
    /// once their orders are on disk, a batch to a group commit.
    fn batches_for_durability(&self) -> bool {
        #[cfg(feature = "journal")]
        if let Some(journal) = self.journal() {
            return journal.options().durability() == crate::journal::Durability::Sync;
        }
        false
    }

    /// [`Ledger::acknowledge`], with a journal.
    fn make_durable(&self) -> Result<(), String> {
        #[cfg(feature = "journal")]
        if self.journal().is_some() {
            return self.acknowledge().map(drop).map_err(|error| error.to_string());
        }
        Ok(())
    }
}

impl<T: Apply + ?Sized> Apply for Arc<T> {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        (**self).apply(command)
    }

    fn apply_keyed(&self, key: &IdempotencyKey, command: &Command) -> Result<Keyed<Outcome>, IntakeError> {
        (**self).apply_keyed(key, command)
    }

    fn batches_for_durability(&self) -> bool {
        (**self).batches_for_durability()
    }

    fn make_durable(&self) -> Result<(), String> {
        (**self).make_durable()
    }
}
