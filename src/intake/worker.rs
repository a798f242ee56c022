//! The worker loop: take a job off the queue (and the jobs queued behind
//! it, a batch), apply each with a panic contained, make the batch durable
//! with one call, decide their tickets.
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

/// The most orders a worker applies before it makes them durable and
/// decides them: one [`Apply::make_durable`] (a group commit, with a
/// journaled ledger) covers them all.
pub(super) const BATCH_MAX: usize = 256;

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
    // One buffer for the worker's life, grown to the largest batch seen
    // (one order, for an executor that does not batch): after the first
    // few batches, a batch allocates nothing.
    let mut batch: Vec<(Job, Decision)> = Vec::new();
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
        apply_batch(index, shared, executor, job, &mut batch);
    }
    // Stopping: no submitter can send any more, so the queue only shrinks.
    // Bounded: each iteration removes at least one of at most `capacity`
    // jobs.
    while let Ok(job) = shared.queue_rx.try_recv() {
        apply_batch(index, shared, executor, job, &mut batch);
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

/// Applies `first` and, for an executor that
/// [batches for durability](Apply::batches_for_durability), whatever else
/// is queued (up to [`BATCH_MAX`] orders in all); makes them durable with one [`Apply::make_durable`],
/// then decides them. A failure to make them durable decides every order
/// of the batch [`IntakeError::Undurable`]: none of them may be taken as
/// done.
fn apply_batch<A: Apply>(index: usize, shared: &Shared, executor: &A, first: Job, batch: &mut Vec<(Job, Decision)>) {
    debug_assert!(batch.is_empty());
    // An executor with nothing to make durable decides each order at once.
    let batch_max = if executor.batches_for_durability() { BATCH_MAX } else { 1 };
    let mut next = Some(first);
    // Bounded by `batch_max`.
    while let Some(job) = next.take() {
        let decision = apply_one(index, shared, executor, &job);
        batch.push((job, decision));
        if batch.len() < batch_max {
            next = shared.queue_rx.try_recv().ok();
        }
    }
    // As `apply_one`: the executor takes on unwind safety (see `Apply`).
    let durable = match catch_unwind(AssertUnwindSafe(|| executor.make_durable())) {
        Ok(durable) => durable,
        Err(payload) => Err(format!("making the orders durable panicked: {}", message_of(payload))),
    };
    for (job, decision) in batch.drain(..) {
        let decision = match &durable {
            Ok(()) => decision,
            Err(reason) => Err(IntakeError::Undurable { reason: reason.clone() }),
        };
        drop(job.decide(shared, decision));
    }
    // Relaxed: a report; pairs with nothing (see `Shared::applying`).
    shared.applying[index].store(0, Ordering::Relaxed);
}

/// Applies one order with its panic contained; its decision, not yet
/// given.
fn apply_one<A: Apply>(index: usize, shared: &Shared, executor: &A, job: &Job) -> Decision {
    // Relaxed: a report for a shutdown whose deadline passes; pairs with
    // nothing. It names the order being applied; while the batch is made
    // durable, the batch's last.
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
    match catch_unwind(AssertUnwindSafe(apply)) {
        Ok(result) => result,
        Err(payload) => {
            shared.counters.panicked();
            Err(IntakeError::Panicked(Panicked::new(message_of(payload))))
        }
    }
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
