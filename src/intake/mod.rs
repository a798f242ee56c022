//! Bounded order ingestion over the ledger: accept fast, decide in the
//! background, shed load instead of falling over.
//!
//! The shape of the order services stockroom replaces, in-process: a host
//! answers "202 Accepted" with a [`Ticket`] as soon as an order is queued,
//! a pool of worker threads applies the orders to the ledger, and when the
//! intake is full the host either waits (back-pressure, [`Intake::submit`])
//! or answers "429 Too Many Requests" with the order handed back
//! ([`Intake::try_submit`], [`SubmitError::Full`]).
//!
//! Owns: the bounded queue, the in-flight limit, the worker pool, tickets,
//! shutdown and the intake's statistics.
//!
//! Must never: reach into the ledger's internals (it applies commands
//! through [`Apply`], which for the [`Ledger`] is [`Ledger::execute`], or
//! [`Ledger::execute_keyed`] for an order submitted with a key, like any
//! host); lose an order (every accepted order gets exactly one
//! [`Decision`], across panics and shutdowns); hold more than its
//! capacities (at most `capacity` orders queued, and `max_in_flight`
//! holding a permit plus, for an instant, one per worker whose permit is
//! back and whose ticket is being filled; so memory is bounded however
//! hard it is flooded); or take a lock on the submit/decide path (the queue and the
//! in-flight limit are crossbeam channels; see [`Ticket`] for the one
//! per-ticket mutex, which only blocking waiters sleep on).
//!
//! ```
//! use stockroom::intake::{Intake, SubmitError};
//! use stockroom::{AllocateRequest, AllocationPolicy, Command, Ledger, LotId, NewLot, Outcome, SkuId};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let ledger = Arc::new(Ledger::new());
//! ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
//! ledger.receive(SkuId(1), NewLot::new(LotId(1), 100))?;
//!
//! let intake = Intake::builder().capacity(64).workers(2).build(Arc::clone(&ledger))?;
//! let mut tickets = Vec::new();
//! for _ in 0..10 {
//!     match intake.try_submit(Command::Take(AllocateRequest::new(SkuId(1), 1))) {
//!         Ok(ticket) => tickets.push(ticket),            // 202 Accepted
//!         Err(SubmitError::Full(_order)) => { /* 429: hand the order back */ }
//!         Err(other) => return Err(other.into()),
//!     }
//! }
//! let report = intake.shutdown(); // stops accepting, drains, joins the workers
//! assert!(report.is_complete());
//! for ticket in &tickets {
//!     assert!(matches!(ticket.try_outcome(), Some(Ok(Outcome::Sold(_)))));
//! }
//! assert_eq!(ledger.snapshot(SkuId(1))?.totals().committed.get(), tickets.len() as u64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Admission
//!
//! A submission takes an in-flight permit (a send on a bounded channel of
//! `()`, returned by the worker that decides the order), then queues its
//! job (a send on the bounded job channel). Either send may find its
//! channel full: [`try_submit`](Intake::try_submit) sheds the order,
//! [`submit`](Intake::submit) blocks on the channel (and on the shutdown
//! signal) until there is room, [`submit_timeout`](Intake::submit_timeout)
//! until a deadline.
//!
//! # Shutdown and its orderings
//!
//! Shutdown must not stop the workers while a submitter that got in before
//! it might still queue a job. The gate (`gate.rs`) is one atomic word: a
//! closed bit and the count of submitters inside `admit`, each step one
//! read-modify-write of it. A submitter that entered while the gate was
//! open may queue; the closer, if nobody was inside, or else the last
//! submitter out of the closed gate, drops the stop signal's sender (a
//! loom model checks that nobody queues after it, and that somebody
//! drops it). Workers that see the signal disconnect drain the queue
//! (which can only shrink by then) and exit. A blocked submitter is woken
//! by a second signal dropped as shutdown begins and answers
//! [`SubmitError::ShutDown`].
//!
//! # Faults
//!
//! A worker applies each order inside [`std::panic::catch_unwind`]: a
//! panic becomes that order's [`IntakeError::Panicked`], the worker goes on
//! to the next order, and the pool keeps its size. The ledger needs no
//! repair afterwards: a command publishes its change whole, with one
//! compare-and-swap, or not at all (see [`Apply`]).

mod apply;
mod error;
mod gate;
#[cfg(all(test, stockroom_loom))]
mod loom;
mod shutdown;
mod stats;
mod ticket;
mod worker;

pub use apply::Apply;
pub use error::{BuildError, IntakeError, Panicked, SubmitError, WaitError};
pub use shutdown::{ShutdownReport, UnappliedOrder};
pub use stats::{IntakeStats, Percentiles};
pub use ticket::{Decision, OrderId, Ticket};

use crate::command::Command;
use crate::idempotency::IdempotencyKey;
use crate::ledger::Ledger;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Ordering};
use core::fmt;
use crossbeam::channel::{Receiver, Select, Sender, TrySendError, bounded};
use gate::Gate;
use parking_lot::Mutex;
use stats::Counters;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ticket::Slot;
use worker::Job;

/// A signal channel's message: there is none; the signal is the sender
/// being dropped.
enum Never {}

/// What submitters, workers and shutdown share. Not generic: the executor
/// is passed to the workers separately.
struct Shared {
    queue_tx: Sender<Job>,
    queue_rx: Receiver<Job>,
    queue_capacity: usize,
    /// One `()` per admitted, undecided order (see `IntakeStats::in_flight`).
    permits_tx: Sender<()>,
    permits_rx: Receiver<()>,
    max_in_flight: usize,
    /// Closed by the first shutdown; counts the submitters inside `admit`.
    gate: Gate,
    /// Disconnects as shutdown begins: wakes blocked submitters.
    closing_rx: Receiver<Never>,
    /// Locked only to drop the sender, by shutdown (an admin path).
    closing_tx: Mutex<Option<Sender<Never>>>,
    /// Disconnects once no submitter can queue a job: workers drain and exit.
    stopping_rx: Receiver<Never>,
    /// Locked only to drop the sender, by shutdown or by the last
    /// submitter out after it (an admin path).
    stopping_tx: Mutex<Option<Sender<Never>>>,
    /// Each worker sends its index here as its thread ends.
    exited_tx: Sender<usize>,
    exited_rx: Receiver<usize>,
    next_id: AtomicU64,
    workers_alive: AtomicUsize,
    /// Per worker, the order it is applying (0: none); read only by a
    /// shutdown whose deadline passed, to report what is still undecided.
    applying: Box<[AtomicU64]>,
    counters: Counters,
}

/// How long a submitter is willing to wait for room.
#[derive(Clone, Copy)]
enum Patience {
    /// Not at all: shed.
    None,
    /// Until the deadline, or for ever.
    Until(Option<Instant>),
}

/// Why a send did not happen; carries the message back.
enum Refusal<T> {
    Full(T),
    Timeout(T),
    Closing(T),
}

impl<T> Refusal<T> {
    /// The kind of refusal, and the message it carried.
    fn split(self) -> (Refusal<()>, T) {
        match self {
            Refusal::Full(message) => (Refusal::Full(()), message),
            Refusal::Timeout(message) => (Refusal::Timeout(()), message),
            Refusal::Closing(message) => (Refusal::Closing(()), message),
        }
    }

    /// The submitter's error for this refusal, counted in the statistics.
    fn counted(self, shared: &Shared, command: Command) -> SubmitError {
        match self {
            Refusal::Full(_) => {
                shared.counters.shed();
                crate::trace::debug!(queue_depth = shared.queue_rx.len(), "intake shed an order");
                SubmitError::Full(Box::new(command))
            }
            Refusal::Timeout(_) => {
                shared.counters.timed_out();
                crate::trace::debug!("intake submission timed out");
                SubmitError::Timeout(Box::new(command))
            }
            Refusal::Closing(_) => SubmitError::ShutDown(Box::new(command)),
        }
    }
}

/// A submitter inside `admit`, counted by the gate (see `gate.rs`).
struct Entry<'a> {
    shared: &'a Shared,
    /// The gate was open when this submitter came in: it may queue.
    open: bool,
}

impl<'a> Entry<'a> {
    fn new(shared: &'a Shared) -> Entry<'a> {
        Entry { shared, open: shared.gate.enter() }
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if self.shared.gate.leave() {
            self.shared.stop_workers();
        }
    }
}

impl Shared {
    /// Sends `message`, waiting for room as `patience` allows, and giving
    /// up if the intake starts shutting down while it waits.
    fn send<T>(&self, channel: &Sender<T>, message: T, patience: Patience) -> Result<(), Refusal<T>> {
        let message = match channel.try_send(message) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(message)) => message,
            // `Shared` holds both ends of every channel it sends on.
            Err(TrySendError::Disconnected(message)) => return Err(Refusal::Closing(message)),
        };
        let deadline = match patience {
            Patience::None => return Err(Refusal::Full(message)),
            Patience::Until(deadline) => deadline,
        };
        let mut select = Select::new();
        let send = select.send(channel);
        let closing = select.recv(&self.closing_rx);
        let operation = match deadline {
            None => select.select(),
            Some(deadline) => match select.select_deadline(deadline) {
                Ok(operation) => operation,
                Err(_) => return Err(Refusal::Timeout(message)),
            },
        };
        if operation.index() == send {
            operation.send(channel, message).map_err(|refused| Refusal::Closing(refused.into_inner()))
        } else {
            debug_assert_eq!(operation.index(), closing);
            let signal: Result<Never, _> = operation.recv(&self.closing_rx);
            debug_assert!(signal.is_err(), "the closing signal carries no message, it disconnects");
            Err(Refusal::Closing(message))
        }
    }

    /// Returns one in-flight permit (the order holding it was decided, or
    /// never queued).
    fn release_permit(&self) {
        let released = self.permits_rx.try_recv();
        debug_assert!(released.is_ok(), "a permit was released that was never taken");
    }

    /// Admits `command` (under `key`, if any): a permit, then a place in
    /// the queue.
    fn admit(&self, command: Command, key: Option<IdempotencyKey>, patience: Patience) -> Result<Ticket, SubmitError> {
        let entry = Entry::new(self);
        if !entry.open {
            return Err(SubmitError::ShutDown(Box::new(command)));
        }
        if let Err(refusal) = self.send(&self.permits_tx, (), patience) {
            return Err(refusal.counted(self, command));
        }
        // Relaxed: only uniqueness is needed, which the RMW gives.
        let id = OrderId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let slot = Slot::new(id);
        let ticket = Ticket::new(Arc::clone(&slot));
        let job = Job { id, command, key, slot, accepted_at: Instant::now() };
        match self.send(&self.queue_tx, job, patience) {
            Ok(()) => {
                self.counters.accept();
                Ok(ticket)
            }
            Err(refusal) => {
                self.release_permit();
                let (refusal, job) = refusal.split();
                Err(refusal.counted(self, job.command))
            }
        }
    }

    /// Drops the stop signal's sender: workers drain the queue and exit.
    /// Idempotent.
    fn stop_workers(&self) {
        drop(self.stopping_tx.lock().take());
    }
}

/// The order intake: a bounded queue of [`Command`]s, drained by a pool of
/// worker threads that apply them to an executor (the [`Ledger`], by
/// default), with back-pressure, load shedding and a [`Ticket`] per
/// accepted order.
///
/// `Intake` is `Send + Sync`: submit from any number of threads, sharing
/// it by reference or `Arc`. Build one with [`Intake::builder`]. Dropping
/// an intake that was never shut down shuts it down, draining every
/// accepted order first.
///
/// See the [module docs](self) for an example.
pub struct Intake<A = Arc<Ledger>> {
    shared: Arc<Shared>,
    executor: Arc<A>,
    /// Join handles by worker index; `None` once joined. Locked only by
    /// shutdown (an admin path).
    workers: Mutex<Vec<Option<JoinHandle<()>>>>,
}

impl Intake {
    /// A builder with the default capacities (see [`IntakeBuilder`]).
    pub fn builder() -> IntakeBuilder {
        IntakeBuilder::new()
    }
}

impl<A> Intake<A> {
    /// The most orders a queue may hold.
    pub const CAPACITY_MAX: usize = 1 << 20;
    /// The most worker threads an intake may have.
    pub const WORKERS_MAX: usize = 1024;
    /// The highest in-flight limit: a full queue plus every worker busy.
    pub const IN_FLIGHT_MAX: usize = Self::CAPACITY_MAX + Self::WORKERS_MAX;

    /// Submits an order, waiting while the intake is full (back-pressure).
    ///
    /// Returns the order's [`Ticket`] once it is queued, or
    /// [`SubmitError::ShutDown`] (with the command) if the intake is shut
    /// down or starts shutting down while this call waits.
    pub fn submit(&self, command: Command) -> Result<Ticket, SubmitError> {
        self.shared.admit(command, None, Patience::Until(None))
    }

    /// Submits an order, waiting at most `timeout` while the intake is full.
    ///
    /// [`SubmitError::Timeout`] (with the command) if there was no room in
    /// time; [`SubmitError::ShutDown`] as for [`submit`](Intake::submit).
    pub fn submit_timeout(&self, command: Command, timeout: Duration) -> Result<Ticket, SubmitError> {
        // A timeout too large to add to now is no timeout at all.
        self.shared.admit(command, None, Patience::Until(Instant::now().checked_add(timeout)))
    }

    /// Submits an order if there is room right now; otherwise sheds it and
    /// hands it back in [`SubmitError::Full`] (the "429" path).
    ///
    /// ```
    /// use stockroom::intake::{Apply, Intake};
    /// use stockroom::{AllocateRequest, Command, CommandError, Outcome, SkuId};
    /// use std::sync::{Arc, Barrier};
    ///
    /// /// Holds the (only) worker until the test lets it go.
    /// struct Held(Barrier);
    /// impl Apply for Held {
    ///     fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
    ///         self.0.wait();
    ///         stockroom::Ledger::new().execute(command)
    ///     }
    /// }
    ///
    /// let held = Arc::new(Held(Barrier::new(2)));
    /// let intake = Intake::builder().capacity(1).max_in_flight(1).workers(1).build(Arc::clone(&held))?;
    /// let order = || Command::Take(AllocateRequest::new(SkuId(1), 1));
    /// let first = intake.try_submit(order())?;
    /// let shed = intake.try_submit(order()).unwrap_err(); // one order in flight: the limit
    /// assert!(shed.is_full());
    /// assert_eq!(shed.into_inner(), order());
    /// held.0.wait(); // let the worker apply the first order
    /// assert!(first.wait().is_err()); // SKU 1 is not defined in that ledger
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit(&self, command: Command) -> Result<Ticket, SubmitError> {
        self.shared.admit(command, None, Patience::None)
    }

    /// Submits an order under an idempotency key, waiting while the intake
    /// is full, as [`submit`](Intake::submit) does.
    ///
    /// The worker applies it with [`Apply::apply_keyed`]: with the
    /// [`Ledger`], [`Ledger::execute_keyed`], so the order is applied at
    /// most once per key however often it is submitted — across restarts
    /// too, when the ledger keeps a journal. A retry is decided with the
    /// first outcome; a key first used for another command is decided
    /// [`IntakeError::Key`]. The intake itself does not deduplicate: two
    /// submissions of one key are two tickets, decided alike.
    ///
    /// ```
    /// use stockroom::intake::Intake;
    /// use stockroom::{AllocateRequest, AllocationPolicy, Command, IdempotencyKey, Ledger, LotId, NewLot, SkuId};
    /// use std::sync::Arc;
    ///
    /// let ledger = Arc::new(Ledger::new());
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    /// let intake = Intake::builder().workers(1).build(Arc::clone(&ledger))?;
    /// let key = IdempotencyKey::new("order-7")?;
    /// let sale = Command::Take(AllocateRequest::new(SkuId(1), 3));
    /// let first = intake.submit_keyed(key.clone(), sale.clone())?;
    /// let retry = intake.submit_keyed(key, sale)?;
    /// assert_eq!(first.wait(), retry.wait()); // one sale, two answers alike
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().committed.get(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_keyed(&self, key: IdempotencyKey, command: Command) -> Result<Ticket, SubmitError> {
        self.shared.admit(command, Some(key), Patience::Until(None))
    }

    /// Submits an order under an idempotency key if there is room right
    /// now, as [`try_submit`](Intake::try_submit) does; applied as
    /// [`submit_keyed`](Intake::submit_keyed) says.
    pub fn try_submit_keyed(&self, key: IdempotencyKey, command: Command) -> Result<Ticket, SubmitError> {
        self.shared.admit(command, Some(key), Patience::None)
    }

    /// The intake's counters, queue depth, in-flight count, pool size and
    /// time-to-outcome percentiles, now.
    pub fn stats(&self) -> IntakeStats {
        let shared = &*self.shared;
        IntakeStats {
            queue_depth: shared.queue_rx.len(),
            queue_capacity: shared.queue_capacity,
            in_flight: shared.permits_rx.len(),
            max_in_flight: shared.max_in_flight,
            // Relaxed: a statistic; pairs with nothing.
            workers: shared.workers_alive.load(Ordering::Relaxed),
            ..shared.counters.snapshot()
        }
    }

    /// True once a shutdown has begun: every submission is refused.
    pub fn is_shut_down(&self) -> bool {
        self.shared.gate.is_closed()
    }

    /// The executor the workers apply orders to.
    pub fn executor(&self) -> &A {
        &self.executor
    }
}

impl<A> fmt::Debug for Intake<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake").field("shut_down", &self.is_shut_down()).field("stats", &self.stats()).finish()
    }
}

/// Sizes an [`Intake`] and starts its workers.
///
/// Defaults: a queue of 1,024 orders, one worker per available core, and an
/// in-flight limit of the queue's capacity plus the workers (so the limit
/// only bites when set lower).
///
/// ```
/// use stockroom::Ledger;
/// use stockroom::intake::Intake;
/// use std::sync::Arc;
///
/// let intake = Intake::builder()
///     .capacity(4_096)
///     .max_in_flight(2_048)
///     .workers(4)
///     .thread_name("orders")
///     .build(Arc::new(Ledger::new()))?;
/// let stats = intake.stats();
/// assert_eq!((stats.queue_capacity, stats.max_in_flight, stats.workers), (4_096, 2_048, 4));
/// # Ok::<(), stockroom::intake::BuildError>(())
/// ```
#[derive(Clone, Debug)]
pub struct IntakeBuilder {
    capacity: usize,
    workers: usize,
    max_in_flight: Option<usize>,
    thread_name: String,
}

impl Default for IntakeBuilder {
    fn default() -> IntakeBuilder {
        IntakeBuilder::new()
    }
}

impl IntakeBuilder {
    /// The defaults (see the type's docs).
    pub fn new() -> IntakeBuilder {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        IntakeBuilder {
            capacity: 1_024,
            workers: cores.min(Intake::<()>::WORKERS_MAX),
            max_in_flight: None,
            thread_name: "stockroom-intake".to_owned(),
        }
    }

    /// How many orders may wait in the queue: 1 to [`Intake::CAPACITY_MAX`]
    /// (checked by [`build`](IntakeBuilder::build)).
    pub fn capacity(mut self, capacity: usize) -> IntakeBuilder {
        self.capacity = capacity;
        self
    }

    /// How many worker threads apply orders: 1 to [`Intake::WORKERS_MAX`]
    /// (checked by [`build`](IntakeBuilder::build)).
    pub fn workers(mut self, workers: usize) -> IntakeBuilder {
        self.workers = workers;
        self
    }

    /// How many orders may be accepted and not yet decided (queued, or
    /// being applied) at once: 1 to [`Intake::IN_FLIGHT_MAX`] (checked by
    /// [`build`](IntakeBuilder::build)). Default: capacity + workers.
    pub fn max_in_flight(mut self, max_in_flight: usize) -> IntakeBuilder {
        self.max_in_flight = Some(max_in_flight);
        self
    }

    /// The worker threads' name prefix (`"{prefix}-{index}"`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> IntakeBuilder {
        self.thread_name = prefix.into();
        self
    }

    /// Starts the workers over `executor`; usually an `Arc<Ledger>` the
    /// host keeps a clone of for its queries.
    ///
    /// Fails with a [`BuildError`] naming the first setting out of range
    /// (nothing is started), or if a worker thread cannot be spawned (the
    /// workers already started are then shut down).
    pub fn build<A: Apply + 'static>(self, executor: A) -> Result<Intake<A>, BuildError> {
        if !(1..=Intake::<A>::CAPACITY_MAX).contains(&self.capacity) {
            return Err(BuildError::Capacity { capacity: self.capacity });
        }
        if !(1..=Intake::<A>::WORKERS_MAX).contains(&self.workers) {
            return Err(BuildError::Workers { workers: self.workers });
        }
        let max_in_flight = self.max_in_flight.unwrap_or(self.capacity + self.workers);
        if !(1..=Intake::<A>::IN_FLIGHT_MAX).contains(&max_in_flight) {
            return Err(BuildError::InFlight { max_in_flight });
        }
        let (queue_tx, queue_rx) = bounded(self.capacity);
        let (permits_tx, permits_rx) = bounded(max_in_flight);
        let (closing_tx, closing_rx) = bounded(0);
        let (stopping_tx, stopping_rx) = bounded(0);
        // Each worker sends once, as it ends: never blocks, never grows.
        let (exited_tx, exited_rx) = bounded(self.workers);
        let shared = Arc::new(Shared {
            queue_tx,
            queue_rx,
            queue_capacity: self.capacity,
            permits_tx,
            permits_rx,
            max_in_flight,
            gate: Gate::new(),
            closing_rx,
            closing_tx: Mutex::new(Some(closing_tx)),
            stopping_rx,
            stopping_tx: Mutex::new(Some(stopping_tx)),
            exited_tx,
            exited_rx,
            next_id: AtomicU64::new(1),
            workers_alive: AtomicUsize::new(0),
            applying: (0..self.workers).map(|_| AtomicU64::new(0)).collect(),
            counters: Counters::new(),
        });
        let executor = Arc::new(executor);
        let mut workers = Vec::with_capacity(self.workers);
        for index in 0..self.workers {
            // Relaxed: a statistic; counted before the thread runs, so the
            // pool's size shows from the start. Pairs with nothing.
            shared.workers_alive.fetch_add(1, Ordering::Relaxed);
            let (shared_for_worker, executor_for_worker) = (Arc::clone(&shared), Arc::clone(&executor));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{index}", self.thread_name))
                .spawn(move || worker::run(index, &shared_for_worker, &*executor_for_worker));
            match spawned {
                Ok(handle) => workers.push(Some(handle)),
                Err(error) => {
                    // Relaxed: a statistic; this worker never ran.
                    shared.workers_alive.fetch_sub(1, Ordering::Relaxed);
                    let intake = Intake { shared, executor, workers: Mutex::new(workers) };
                    drop(intake.shutdown());
                    return Err(BuildError::Spawn(error));
                }
            }
        }
        Ok(Intake { shared, executor, workers: Mutex::new(workers) })
    }
}
