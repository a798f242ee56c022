//! What the service's intake workers apply orders to: the ledger, behind a
//! gate an operator (or a test) can close to hold the workers still; when
//! the ledger keeps a journal, the workers make each batch of orders
//! durable (one group commit) before deciding them.
//!
//! Owns: [`Executor`] and its pause gate.
//!
//! Must never: hold a worker longer than [`PAUSE_MAX`] (a closed gate opens
//! by itself), change a command, or decide a keyed order of a journaled
//! ledger before its outcome is on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stockroom::intake::{Apply, IntakeError};
use stockroom::{Command, CommandError, IdempotencyKey, Keyed, Ledger, Outcome};

/// The longest a paused gate holds a worker.
pub const PAUSE_MAX: Duration = Duration::from_secs(10);

/// The ledger, with a pause gate in front (see the module docs).
#[derive(Debug)]
pub struct Executor {
    ledger: Arc<Ledger>,
    paused: Arc<AtomicBool>,
}

impl Executor {
    /// An open gate in front of `ledger`; `paused` closes it while true.
    pub fn new(ledger: Arc<Ledger>, paused: Arc<AtomicBool>) -> Executor {
        Executor { ledger, paused }
    }

    /// Waits while the gate is closed, at most [`PAUSE_MAX`].
    fn pass_gate(&self) {
        let started = Instant::now();
        // Bounded by PAUSE_MAX. Relaxed: a drill switch; the command's own
        // data reaches the worker through the intake's queue.
        while self.paused.load(Ordering::Relaxed) && started.elapsed() < PAUSE_MAX {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Apply for Executor {
    /// An order without a key (the service sends those only when the
    /// ledger keeps no journal).
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        self.pass_gate();
        self.ledger.execute(command)
    }

    /// A keyed order: applied at most once per key (the ledger's keys,
    /// journaled with it).
    fn apply_keyed(&self, key: &IdempotencyKey, command: &Command) -> Result<Keyed<Outcome>, IntakeError> {
        self.pass_gate();
        self.ledger.apply_keyed(key, command)
    }

    /// With a journal, a worker applies the orders queued together and
    /// makes them durable with one group commit before it decides them.
    fn batches_for_durability(&self) -> bool {
        self.ledger.batches_for_durability()
    }

    fn make_durable(&self) -> Result<(), String> {
        self.ledger.make_durable()
    }
}
