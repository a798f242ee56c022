//! Tickets: the handle an accepted order's submitter keeps, and the
//! one-shot slot behind it that a worker fills exactly once.
//!
//! Owns: [`Ticket`], [`OrderId`], [`Decision`] and the slot.
//!
//! Must never: be decided twice, or let a waiter sleep through its
//! decision.
//!
//! # The waiting mechanism
//!
//! A slot is a [`OnceLock`] holding the decision, plus a
//! `parking_lot::Mutex<()>` and `Condvar` used for nothing but blocking
//! waits. Polling ([`Ticket::try_outcome`], [`Ticket::is_decided`]) reads
//! the `OnceLock` and takes no lock. Deciding sets the `OnceLock`, then
//! takes and drops the mutex and notifies: a waiter checks the slot while
//! holding the mutex and sleeps by releasing it atomically, so it either
//! sees the decision or is already asleep when the notification comes.
//! The mutex guards no data, is per ticket, and is never held by the
//! ledger or on the submit path; an uncontended lock and a notify with no
//! waiter cost a few atomic operations per order.
//!
//! With the `async` feature a ticket is also a [`Future`](core::future::Future):
//! a poll that finds no decision registers its waker in the slot's
//! [`WakerSet`](crate::waker::WakerSet) and looks again; deciding wakes the
//! set after setting the cell (the hand-off protocol of `src/waker.rs`,
//! checked by its loom models; the blocking hand-off by
//! `src/intake/loom.rs`).
//!
//! Every primitive here comes from the crate's facade (`crate::sync`), so
//! the loom models see them.

use super::error::{IntakeError, WaitError};
use crate::command::Outcome;
use crate::sync::{Arc, Condvar, Mutex, OnceLock};
use core::fmt;
use std::time::{Duration, Instant};

/// What an accepted order came to: the ledger's [`Outcome`], or why there
/// is none.
pub type Decision = Result<Outcome, IntakeError>;

/// An accepted order's number, unique within its intake.
///
/// Numbers are assigned in admission order starting at 1; a submission that
/// is refused after admission (the queue was full) may use up a number, so
/// they are unique but not dense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct OrderId(pub u64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order:{}", self.0)
    }
}

/// The one-shot slot an order's decision is written to.
pub(super) struct Slot {
    id: OrderId,
    decision: OnceLock<Decision>,
    /// Guards no data: held only to sleep on `decided` without missing it.
    sleepers: Mutex<()>,
    decided: Condvar,
    /// The wakers of the tasks awaiting the ticket.
    #[cfg(feature = "async")]
    wakers: crate::waker::WakerSet,
}

impl Slot {
    pub(super) fn new(id: OrderId) -> Arc<Slot> {
        Arc::new(Slot {
            id,
            decision: OnceLock::new(),
            sleepers: Mutex::new(()),
            decided: Condvar::new(),
            #[cfg(feature = "async")]
            wakers: crate::waker::WakerSet::new(),
        })
    }

    /// Records the order's decision and wakes every waiter. Called exactly
    /// once per accepted order, by whoever removed its job from the queue.
    pub(super) fn decide(&self, decision: Decision) {
        let first = self.decision.set(decision).is_ok();
        debug_assert!(first, "{} was decided twice", self.id);
        // Taking the mutex orders this notification after any waiter's
        // check-then-sleep (see the module docs).
        drop(self.sleepers.lock());
        self.decided.notify_all();
        // After the cell is set (the hand-off protocol, `src/waker.rs`).
        #[cfg(feature = "async")]
        self.wakers.wake_all();
    }
}

/// The handle to one accepted order: wait on it (blocking, with or without
/// a timeout) or poll it for the order's [`Decision`].
///
/// Cheap to clone (one `Arc`); every clone sees the same decision. Dropping
/// every ticket of an order does not cancel it: the order is still applied
/// (fire and forget).
///
/// # Waiting
///
/// Polling ([`try_outcome`](Ticket::try_outcome), [`is_decided`](Ticket::is_decided))
/// reads a one-shot cell ([`OnceLock`]) and takes no lock. A blocking wait
/// sleeps on a per-ticket `parking_lot` mutex and condition variable that
/// guard no data: the worker that decides the order sets the cell, takes
/// and drops the mutex, and notifies, so a waiter either sees the decision
/// or is already asleep when the notification comes. That mutex is the
/// waiting mechanism and nothing else: the ledger and the submit path take
/// no lock.
///
/// ```
/// use stockroom::intake::Intake;
/// use stockroom::{AllocateRequest, AllocationPolicy, Command, Ledger, LotId, NewLot, Outcome, SkuId};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let ledger = Arc::new(Ledger::new());
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
/// let intake = Intake::builder().workers(1).build(Arc::clone(&ledger))?;
///
/// let ticket = intake.submit(Command::Take(AllocateRequest::new(SkuId(1), 3)))?;
/// match ticket.wait_timeout(Duration::from_secs(10))? {
///     Ok(Outcome::Sold(sale)) => assert_eq!(sale.quantity().get(), 3),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert!(ticket.is_decided() && ticket.try_outcome().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Ticket {
    slot: Arc<Slot>,
}

impl Ticket {
    pub(super) fn new(slot: Arc<Slot>) -> Ticket {
        Ticket { slot }
    }

    /// The order's number.
    pub fn id(&self) -> OrderId {
        self.slot.id
    }

    /// True once the order has its decision. Takes no lock.
    pub fn is_decided(&self) -> bool {
        self.slot.decision.get().is_some()
    }

    /// The order's decision if it has one, without waiting. Takes no lock.
    pub fn try_outcome(&self) -> Option<&Decision> {
        self.slot.decision.get()
    }

    /// Blocks until the order is decided.
    ///
    /// Every accepted order is decided (applied by a worker, or taken back
    /// by a shutdown whose deadline passed), so this returns once a worker
    /// gets to the order; prefer [`wait_timeout`](Ticket::wait_timeout)
    /// when the executor could block.
    pub fn wait(&self) -> &Decision {
        match self.wait_until(None) {
            Ok(decision) => decision,
            Err(WaitError::Timeout) => unreachable!("a wait without a deadline never times out"),
        }
    }

    /// Blocks until the order is decided or `timeout` passes.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<&Decision, WaitError> {
        // A timeout too large to add to now is no timeout at all.
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// Blocks until the order is decided or `deadline` passes.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<&Decision, WaitError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<&Decision, WaitError> {
        if let Some(decision) = self.slot.decision.get() {
            return Ok(decision);
        }
        let mut sleepers = self.slot.sleepers.lock();
        // Bounded by the deadline; without one, by the order being decided
        // (each iteration past the first follows a wake-up, and spurious
        // wake-ups are rare).
        loop {
            if let Some(decision) = self.slot.decision.get() {
                return Ok(decision);
            }
            match deadline {
                None => sleepers = self.slot.decided.wait(sleepers),
                Some(deadline) => {
                    let (relocked, timed_out) = self.slot.decided.wait_until(sleepers, deadline);
                    if timed_out {
                        return self.slot.decision.get().ok_or(WaitError::Timeout);
                    }
                    sleepers = relocked;
                }
            }
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket").field("id", &self.slot.id).field("decision", &self.slot.decision.get()).finish()
    }
}

/// With the `async` feature, awaiting a ticket yields the order's
/// [`Decision`] (a clone: every clone of the ticket sees the same one).
/// Runtime-agnostic: the worker that decides the order wakes the task.
///
/// ```
/// # #[cfg(feature = "async")] {
/// use stockroom::intake::Intake;
/// use stockroom::{AllocateRequest, AllocationPolicy, Command, Ledger, LotId, NewLot, Outcome, SkuId};
/// use std::sync::Arc;
///
/// let ledger = Arc::new(Ledger::new());
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
/// let intake = Intake::builder().workers(1).build(Arc::clone(&ledger)).unwrap();
/// let ticket = intake.submit(Command::Take(AllocateRequest::new(SkuId(1), 3))).unwrap();
/// // Any executor will do; a minimal one, to keep the example dependency-free:
/// let decision = stockroom_block_on(ticket);
/// assert!(matches!(decision, Ok(Outcome::Sold(_))));
/// # fn stockroom_block_on<F: std::future::Future>(future: F) -> F::Output {
/// #     struct Unpark(std::thread::Thread);
/// #     impl std::task::Wake for Unpark { fn wake(self: Arc<Self>) { self.0.unpark() } }
/// #     let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
/// #     let mut context = std::task::Context::from_waker(&waker);
/// #     let mut future = std::pin::pin!(future);
/// #     loop {
/// #         if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) { return output; }
/// #         std::thread::park();
/// #     }
/// # }
/// # }
/// ```
#[cfg(feature = "async")]
impl core::future::Future for Ticket {
    type Output = Decision;

    fn poll(self: core::pin::Pin<&mut Self>, context: &mut core::task::Context<'_>) -> core::task::Poll<Decision> {
        if let Some(decision) = self.slot.decision.get() {
            return core::task::Poll::Ready(decision.clone());
        }
        self.slot.wakers.register(context.waker());
        // The second look of the hand-off protocol (`src/waker.rs`).
        match self.slot.decision.get() {
            Some(decision) => core::task::Poll::Ready(decision.clone()),
            None => core::task::Poll::Pending,
        }
    }
}

/// The loom models drive a slot directly.
#[cfg(all(test, stockroom_loom))]
impl Ticket {
    pub(super) fn for_model(id: OrderId) -> (Ticket, Arc<Slot>) {
        let slot = Slot::new(id);
        (Ticket::new(Arc::clone(&slot)), slot)
    }
}
