//! What the service's intake workers apply orders to: the ledger, behind a
//! gate an operator (or a test) can close to hold the workers still.
//!
//! Owns: [`Executor`] and its pause gate.
//!
//! Must never: hold a worker longer than [`PAUSE_MAX`] (a closed gate opens
//! by itself), or change a command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stockroom::intake::Apply;
use stockroom::{Command, CommandError, Ledger, Outcome};

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
}

impl Apply for Executor {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        let started = Instant::now();
        // Bounded by PAUSE_MAX. Relaxed: a drill switch; the command's own
        // data reaches the worker through the intake's queue.
        while self.paused.load(Ordering::Relaxed) && started.elapsed() < PAUSE_MAX {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.ledger.execute(command)
    }
}
