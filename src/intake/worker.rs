//! The worker loop: take a job off the queue, apply it with a panic
//! contained, decide its ticket.
//!
//! Owns: [`Job`] (an accepted order on its way to a worker) and the loop
//! each worker thread runs.
//!
//! Must never: let one order's panic kill the worker (the pool keeps its
//! size), decide an order twice, or exit while an order it could still
//! reach is queued and unclaimed.

use super::apply::Apply;
use super::error::{IntakeError, Panicked};
use super::ticket::{Decision, OrderId, Slot};
use super::{Never, Shared};
use crate::command::Command;
use crate::idempotency::IdempotencyKey;
use crate::sync::{Arc, Ordering};
use crossbeam::channel::Select;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// An accepted order: its command (and key, if it has one), its ticket's
/// slot, and when it was accepted. Holds one in-flight permit until it is decided.
pub(super) struct Job {
    pub(super) id: OrderId,
    pub(super) command: Command,
    /// The order's idempotency key, if it was submitted with one.
    pub(super) key: Option<IdempotencyKey>,
    pub(super) slot: Arc<Slot>,
    pub(super) accepted_at: Instant,
}

impl Job {
    /// Gives the in-flight permit back and the order its decision.
    ///
    /// Counts first, decides last: a waiter that sees the decision (the
    /// slot's release/acquire) also sees the statistics and the permit
    /// already updated.
    pub(super) fn decide(self, shared: &Shared, decision: Decision) -> Command {
        shared.counters.decided(self.accepted_at.elapsed());
        shared.release_permit();
        self.slot.decide(decision);
        self.command
    }
}

/// Marks a worker as gone when its thread ends, however it ends.
struct Alive<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        // Relaxed: a report; pairs with nothing (see `Shared::applying`).
        self.shared.applying[self.index].store(0, Ordering::Relaxed);
        // Relaxed: a statistic; pairs with nothing. Shutdown learns of the
        // exit from the channel below, which carries its own ordering.
        self.shared.workers_alive.fetch_sub(1, Ordering::Relaxed);
        // Cannot fail: `shared` holds the receiver.
        let _ = self.shared.exited_tx.send(self.index);
    }
}

/// The loop of worker `index`: runs until the intake is stopping and the
/// queue is empty.
pub(super) fn run<A: Apply>(index: usize, shared: &Shared, executor: &A) {
    let _alive = Alive { shared, index };
    // Bounded by the intake's life: ends when `stopping` disconnects, which
    // shutdown guarantees once no submitter can send again.
    loop {
        let job = match shared.queue_rx.try_recv() {
            Ok(job) => job,
            Err(_) => match next_job(shared) {
                Some(job) => job,
                None => break,
            },
        };
        apply_one(index, shared, executor, job);
    }
    // Stopping: no submitter can send any more, so the queue only shrinks.
    // Bounded: each iteration removes one of at most `capacity` jobs.
    while let Ok(job) = shared.queue_rx.try_recv() {
        apply_one(index, shared, executor, job);
    }
}

/// Blocks for the next job; `None` once the intake is stopping.
fn next_job(shared: &Shared) -> Option<Job> {
    let mut select = Select::new();
    let queue = select.recv(&shared.queue_rx);
    let stopping = select.recv(&shared.stopping_rx);
    let operation = select.select();
    match operation.index() {
        index if index == queue => operation.recv(&shared.queue_rx).ok(),
        index => {
            debug_assert_eq!(index, stopping);
            let signal: Result<Never, _> = operation.recv(&shared.stopping_rx);
            debug_assert!(signal.is_err(), "the stop signal carries no message, it disconnects");
            None
        }
    }
}

fn apply_one<A: Apply>(index: usize, shared: &Shared, executor: &A, job: Job) {
    // Relaxed: a report for a shutdown whose deadline passes; pairs with nothing.
    shared.applying[index].store(job.id.0, Ordering::Relaxed);
    // AssertUnwindSafe: the ledger stays consistent across a panic inside
    // `execute`, because a command's state is only published by its final
    // compare-and-swap; a panic before it published nothing. Other
    // executors take on the same duty (see `Apply`). The command is only
    // read.
    let apply = || match &job.key {
        None => executor.apply(&job.command).map_err(IntakeError::Refused),
        Some(key) => executor.apply_keyed(key, &job.command).map(|keyed| keyed.outcome),
    };
    let decision = match catch_unwind(AssertUnwindSafe(apply)) {
        Ok(result) => result,
        Err(payload) => {
            shared.counters.panicked();
            Err(IntakeError::Panicked(Panicked::new(message_of(payload))))
        }
    };
    drop(job.decide(shared, decision));
    // Relaxed: a report; pairs with nothing (see above).
    shared.applying[index].store(0, Ordering::Relaxed);
}

/// The message of a panic payload. Dropping a payload runs arbitrary code
/// that may panic again; that second panic is contained too, and its own
/// payload leaked rather than dropped.
fn message_of(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
    message
}
