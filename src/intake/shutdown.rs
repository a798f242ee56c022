//! Shutdown: stop accepting, drain, join; with a deadline, account for
//! every order that was not decided in time.
//!
//! Owns: [`Intake::shutdown`], [`Intake::shutdown_timeout`],
//! [`ShutdownReport`] and [`UnappliedOrder`].
//!
//! Must never: drop an accepted order silently. Without a deadline every
//! accepted order is applied before shutdown returns. With one, the orders
//! still queued at the deadline are taken back, decided as
//! [`IntakeError::Unapplied`](super::IntakeError::Unapplied) and handed to
//! the caller with their commands; the orders a worker is still applying
//! are named, and get their outcome when the worker returns.

use super::worker::Job;
use super::{Intake, IntakeError, OrderId, Shared};
use crate::command::Command;
use crate::sync::Ordering;
use std::time::{Duration, Instant};

/// How many times a shutdown past its deadline yields for submitters that
/// were already mid-submission when it closed the intake (they are woken
/// by the closing signal and need microseconds).
const SUBMITTERS_YIELDS_MAX: u32 = 10_000;

/// An order a shutdown took back from the queue at its deadline, never
/// applied; its ticket holds [`IntakeError::Unapplied`](super::IntakeError::Unapplied).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnappliedOrder {
    /// The order's number (its ticket's [`id`](super::Ticket::id)).
    pub id: OrderId,
    /// The command, untouched: apply it elsewhere, persist it, or refuse
    /// it to its sender.
    pub command: Command,
}

/// What a shutdown left undone. Empty (see [`is_complete`](ShutdownReport::is_complete))
/// unless a deadline passed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Orders still queued at the deadline, taken back unapplied, in queue
    /// order.
    pub unapplied: Vec<UnappliedOrder>,
    /// Orders a worker was applying at the deadline. Each gets its outcome
    /// on its ticket when the worker returns. (An order a worker took off
    /// the queue in the very instant of the report may be missing here; it
    /// too is decided when that worker gets to it.)
    pub undecided: Vec<OrderId>,
    /// Workers that had not exited by the deadline; they are left running
    /// to finish the orders in `undecided`, then exit on their own.
    pub workers_detached: usize,
}

impl ShutdownReport {
    /// True when every accepted order was applied and every worker joined.
    pub fn is_complete(&self) -> bool {
        self.unapplied.is_empty() && self.undecided.is_empty() && self.workers_detached == 0
    }
}

impl<A> Intake<A> {
    /// Stops accepting orders, applies every order already accepted, and
    /// joins the workers.
    ///
    /// From the moment it begins, every submission (including one blocked
    /// waiting for room) gets [`SubmitError::ShutDown`](super::SubmitError::ShutDown)
    /// with its command. Blocks as long as the workers take to drain the
    /// queue: an executor that never returns makes this never return (use
    /// [`shutdown_timeout`](Intake::shutdown_timeout)). Calling it again, or
    /// concurrently, is harmless.
    pub fn shutdown(&self) -> ShutdownReport {
        self.shutdown_until(None)
    }

    /// As [`shutdown`](Intake::shutdown), but gives up waiting for the
    /// workers after `timeout`, and reports what was not decided instead.
    ///
    /// ```
    /// use stockroom::intake::{Apply, Intake};
    /// use stockroom::{AllocateRequest, Command, CommandError, Ledger, Outcome, SkuId};
    /// use std::sync::Arc;
    /// use std::sync::mpsc::{Receiver, channel};
    /// use std::time::Duration;
    ///
    /// /// Applies nothing until the gate's sender is dropped.
    /// struct Gated(std::sync::Mutex<Receiver<()>>);
    /// impl Apply for Gated {
    ///     fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
    ///         let _ = self.0.lock().unwrap().recv_timeout(Duration::from_secs(30));
    ///         Ledger::new().execute(command)
    ///     }
    /// }
    ///
    /// let (gate, held) = channel();
    /// let intake = Intake::builder().capacity(4).workers(1).build(Gated(std::sync::Mutex::new(held)))?;
    /// let order = |n| Command::Take(AllocateRequest::new(SkuId(n), 1));
    /// let tickets: Vec<_> = (1..=3).map(|n| intake.submit(order(n))).collect::<Result<_, _>>()?;
    /// // Wait until the worker holds the first order (it is then out of the queue).
    /// while intake.stats().queue_depth != 2 { std::thread::yield_now(); }
    ///
    /// let report = intake.shutdown_timeout(Duration::from_millis(50));
    /// assert_eq!(report.undecided, [tickets[0].id()]);
    /// let unapplied: Vec<_> = report.unapplied.iter().map(|order| &order.command).collect();
    /// assert_eq!(unapplied, [&order(2), &order(3)]);
    /// assert!(tickets[1].wait().as_ref().unwrap_err().is_unapplied());
    ///
    /// drop(gate); // the worker finishes the first order; it is not lost
    /// assert!(tickets[0].wait_timeout(Duration::from_secs(30))?.is_err()); // SKU 1 is unknown there
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        // A timeout too large to add to now is no timeout at all.
        self.shutdown_until(Instant::now().checked_add(timeout))
    }

    pub(super) fn shutdown_until(&self, deadline: Option<Instant>) -> ShutdownReport {
        let shared = &*self.shared;
        crate::trace::info!(queue_depth = shared.queue_rx.len(), "intake shutting down: draining");
        shared.close();
        let mut workers = self.workers.lock();
        // Bounded: one iteration per worker exit, at most one per worker,
        // or until the deadline.
        while workers.iter().any(Option::is_some) {
            let exited = match deadline {
                None => shared.exited_rx.recv().ok(),
                Some(deadline) => shared.exited_rx.recv_deadline(deadline).ok(),
            };
            let Some(index) = exited else { break };
            if let Some(handle) = workers[index].take() {
                let joined = handle.join();
                debug_assert!(joined.is_ok(), "a worker contains every panic of the orders it applies");
            }
        }
        let workers_detached = workers.iter().filter(|handle| handle.is_some()).count();
        if workers_detached == 0 {
            crate::trace::info!("intake drained: every accepted order decided");
            return ShutdownReport::default();
        }
        crate::trace::info!(workers_detached, "intake shutdown deadline passed");
        let unapplied = shared.take_back_queued();
        // Relaxed: a report (see `Shared::applying`); pairs with nothing.
        let undecided = shared
            .applying
            .iter()
            .map(|order| order.load(Ordering::Relaxed))
            .filter(|&id| id != 0)
            .map(OrderId)
            .collect();
        ShutdownReport { unapplied, undecided, workers_detached }
    }
}

impl<A> Drop for Intake<A> {
    fn drop(&mut self) {
        if !self.is_shut_down() {
            drop(self.shutdown_until(None));
        }
    }
}

impl Shared {
    /// Closes the intake: no submission is accepted from now on.
    /// Idempotent.
    pub(super) fn close(&self) {
        let nobody_inside = self.gate.close();
        // Wake every submitter blocked waiting for room.
        drop(self.closing_tx.lock().take());
        if nobody_inside {
            self.stop_workers();
        }
    }

    /// Takes every queued order back, deciding each as unapplied. For a
    /// shutdown whose deadline passed.
    fn take_back_queued(&self) -> Vec<UnappliedOrder> {
        // Submitters that were mid-submission at close time may still queue
        // an order; give them a moment (they are not blocked: the closing
        // signal woke them).
        for _ in 0..SUBMITTERS_YIELDS_MAX {
            if self.gate.is_empty() {
                break;
            }
            std::thread::yield_now();
        }
        let mut unapplied = Vec::new();
        // Bounded: every queued order holds an in-flight permit, and no
        // submitter can queue more once the gate is empty.
        for _ in 0..self.max_in_flight {
            let Ok(job) = self.queue_rx.try_recv() else { break };
            unapplied.push(take_back(self, job));
        }
        unapplied
    }
}

fn take_back(shared: &Shared, job: Job) -> UnappliedOrder {
    let id = job.id;
    shared.counters.unapplied();
    let command = job.decide(shared, Err(IntakeError::Unapplied));
    UnappliedOrder { id, command }
}
