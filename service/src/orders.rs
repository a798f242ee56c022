//! The order book: the service's one module that knows how an HTTP order
//! maps onto the ledger. Four verbs — [`OrderBook::place`],
//! [`OrderBook::status`], [`OrderBook::commit`], [`OrderBook::cancel`] —
//! and nothing else outside this file names a reservation.
//!
//! Owns: idempotency keys (one order per key: a retry with the same body
//! gets the same order, a different body is refused), the orders placed
//! through the intake, and their lifecycle (queued → held → committed /
//! released / lapsed, or refused).
//!
//! Must never: submit one key's order twice, hold more than
//! [`OrderBook::orders_max`] orders in memory (the oldest are forgotten,
//! their keys with them), or block a request on anything but its own
//! order's lock (for the few microseconds a commit or a release takes).
//!
//! # Across a restart (`--data`)
//!
//! With a journal, every order goes to the intake under its
//! Idempotency-Key ([`Intake::try_submit_keyed`]): the ledger records the
//! key with the order's outcome, and the intake's worker decides the
//! ticket only once that record is on disk. The book itself lives in
//! memory, so a restart forgets the service's order ids; a client that
//! retries with its key is given a new id for the *same* ledger order (the
//! key's recorded outcome, replayed), never a second order. A key reused
//! with another body across a restart is refused when the order is
//! decided (status `refused`), not with a synchronous 409. An order the
//! intake accepted but a worker never applied before a crash is not in the
//! journal: the client's retry places it.
//!
//! # The ledger's orders
//!
//! An order is placed as one [`Command::AllocateOrder`] through the intake;
//! the ledger answers with its own order ([`OrderAllocation::order`]), one
//! part per SKU, all or nothing. Commit and cancel are the ledger's
//! [`Ledger::commit_order`] and [`Ledger::release_order`]: all or nothing
//! across the order's SKUs (a part that lapsed stops the commit, and the
//! order is reported lapsed).

use crate::executor::Executor;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stockroom::intake::{Intake, IntakeError, SubmitError, Ticket};
use stockroom::{
    Command, CommandError, IdempotencyKey, Ledger, OrderAllocation, OrderChangeError, OrderId, OrderLine, OrderRequest,
    OrderState, Outcome, PartFailure, SkuId, Timestamp,
};

/// Shards of the key table (a power of two); an order's id carries its
/// shard in its low bits, so a key and its order share one lock.
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// How often a commit or release that meets contention is retried.
const CONTENDED_RETRIES_MAX: usize = 16;

/// One line of an order as the client sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The SKU.
    pub sku: u64,
    /// Units wanted (1 or more).
    pub quantity: u64,
}

/// An order as the client sends it (`POST /orders`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    /// The lines, 1 to [`OrderRequest::LINES_MAX`].
    pub lines: Vec<LineRequest>,
    /// How long the units are held before they lapse; the service's
    /// default when absent.
    #[serde(default)]
    pub hold_seconds: Option<u64>,
}

/// An order's state as `GET /orders/{id}` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderStatus {
    /// The order's id.
    pub id: u64,
    /// `queued`, `held`, `committed`, `released`, `lapsed` or `refused`;
    /// `ended` for an order replayed after a restart whose parts had
    /// ended and which the ledger no longer remembers.
    pub status: &'static str,
    /// The lines as requested.
    pub lines: Vec<LineRequest>,
    /// When the hold lapses (milliseconds since the epoch), while held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Why the ledger refused it, for `refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an order was not placed.
#[derive(Debug)]
pub enum PlaceError {
    /// The key was used for a different order.
    KeyReused,
    /// The intake is full: retry later.
    Shed,
    /// The service is draining.
    Draining,
    /// The key is not a valid idempotency key (the caller validates it
    /// first; this is the book refusing rather than trusting it).
    InvalidKey,
}

/// Why a commit or cancel did not apply.
#[derive(Debug, PartialEq, Eq)]
pub enum ActError {
    /// No such order (or it was forgotten).
    Unknown,
    /// The order is in a state the verb does not apply to.
    WrongState(&'static str),
}

/// The outcome of a place: the order (new, or the key's earlier one).
#[derive(Debug)]
pub struct Placed {
    /// The order.
    pub id: u64,
    /// True when the key already had this order.
    pub duplicate: bool,
    /// The intake's ticket, to await the decision.
    pub ticket: Ticket,
}

#[derive(Debug)]
enum State {
    Queued,
    Held {
        order: OrderId,
        deadline: Option<Timestamp>,
    },
    Committed,
    Released,
    Lapsed,
    /// Replayed after a restart, and the ledger no longer remembers the
    /// order: its parts ended (committed, released or lapsed) before.
    Ended,
    Refused(String),
}

#[derive(Debug)]
struct Order {
    id: u64,
    request: PlaceRequest,
    ticket: Ticket,
    state: Mutex<State>,
}

#[derive(Default)]
struct Shard {
    by_key: HashMap<String, u64>,
    orders: HashMap<u64, (String, Arc<Order>)>,
    /// Ids in placement order, for forgetting the oldest.
    placed: VecDeque<u64>,
}

/// Counts of orders by what became of them, for `/metrics` and `/audit`.
#[derive(Debug, Default)]
pub struct OrderCounts {
    /// Orders accepted into the intake.
    pub accepted: AtomicU64,
    /// Duplicates answered with the key's order.
    pub duplicates: AtomicU64,
    /// Keys reused with a different body.
    pub key_conflicts: AtomicU64,
    /// Orders shed (intake full).
    pub shed: AtomicU64,
    /// Orders the ledger refused.
    pub refused: AtomicU64,
    /// Orders whose units were held.
    pub held: AtomicU64,
    /// Orders committed.
    pub committed: AtomicU64,
    /// Orders cancelled.
    pub released: AtomicU64,
}

/// The order book (see the module docs).
pub struct OrderBook {
    ledger: Arc<Ledger>,
    intake: Intake<Executor>,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    next: AtomicU64,
    orders_max_per_shard: usize,
    hold_default: Duration,
    /// Orders go to the ledger under their keys, and may be replays of
    /// orders placed before a restart (the ledger keeps a journal).
    durable: bool,
    /// What became of the orders.
    pub counts: OrderCounts,
}

impl std::fmt::Debug for OrderBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderBook").field("intake", &self.intake).finish_non_exhaustive()
    }
}

impl OrderBook {
    /// An order book over `intake` (applying to `ledger`), remembering at
    /// most about `orders_max` orders. When the ledger keeps a journal,
    /// orders are placed under their keys (see the module docs).
    pub fn new(ledger: Arc<Ledger>, intake: Intake<Executor>, orders_max: usize, hold_default: Duration) -> Self {
        OrderBook {
            durable: ledger.journal().is_some(),
            ledger,
            intake,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            next: AtomicU64::new(1),
            orders_max_per_shard: orders_max.div_ceil(SHARDS).max(1),
            hold_default,
            counts: OrderCounts::default(),
        }
    }

    /// The most orders remembered.
    pub fn orders_max(&self) -> usize {
        self.orders_max_per_shard * SHARDS
    }

    /// The intake the orders go through.
    pub fn intake(&self) -> &Intake<Executor> {
        &self.intake
    }

    fn shard_of_key(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) & (SHARDS - 1)
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A panic under this lock leaves maps that are still consistent
        // (each update is one insert or remove).
        self.shards[shard].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an order was placed under `key` and is still remembered: a
    /// retry of it is answered with that order, never shed.
    pub fn knows(&self, key: &str) -> bool {
        self.lock(self.shard_of_key(key)).by_key.contains_key(key)
    }

    /// Places `request` under `key` (validated by the caller): the key's
    /// existing order if the body is the same, a new order through the
    /// intake otherwise.
    pub fn place(&self, key: &str, request: PlaceRequest) -> Result<Placed, PlaceError> {
        let shard_index = self.shard_of_key(key);
        let mut shard = self.lock(shard_index);
        if let Some(&id) = shard.by_key.get(key) {
            let (_, order) = &shard.orders[&id];
            if order.request != request {
                self.counts.key_conflicts.fetch_add(1, Ordering::Relaxed);
                return Err(PlaceError::KeyReused);
            }
            self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(Placed { id, duplicate: true, ticket: order.ticket.clone() });
        }
        let hold = request.hold_seconds.map_or(self.hold_default, Duration::from_secs);
        let lines = request.lines.iter().map(|line| OrderLine::new(SkuId(line.sku), line.quantity)).collect();
        let mut order_request = OrderRequest::new(lines);
        order_request.hold_for = Some(hold);
        // Submitted under the shard lock: a duplicate racing this one waits
        // here for a few hundred nanoseconds and then finds the order.
        let command = Command::AllocateOrder(order_request);
        let submitted = if self.durable {
            let key = IdempotencyKey::new(key).map_err(|_| PlaceError::InvalidKey)?;
            self.intake.try_submit_keyed(key, command)
        } else {
            self.intake.try_submit(command)
        };
        let ticket = match submitted {
            Ok(ticket) => ticket,
            Err(SubmitError::Full(_) | SubmitError::Timeout(_)) => {
                self.counts.shed.fetch_add(1, Ordering::Relaxed);
                return Err(PlaceError::Shed);
            }
            Err(_) => return Err(PlaceError::Draining),
        };
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        assert!(sequence < u64::MAX >> SHARD_BITS, "order ids ran out");
        let id = (sequence << SHARD_BITS) | shard_index as u64;
        let order = Arc::new(Order { id, request, ticket: ticket.clone(), state: Mutex::new(State::Queued) });
        shard.by_key.insert(key.to_owned(), id);
        shard.orders.insert(id, (key.to_owned(), order));
        shard.placed.push_back(id);
        // Bounded: at most one over the cap, forgotten here.
        while shard.placed.len() > self.orders_max_per_shard {
            if let Some(old) = shard.placed.pop_front() {
                if let Some((old_key, _)) = shard.orders.remove(&old) {
                    shard.by_key.remove(&old_key);
                }
            }
        }
        self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Placed { id, duplicate: false, ticket })
    }

    fn find(&self, id: u64) -> Option<Arc<Order>> {
        let shard = (id & (SHARDS as u64 - 1)) as usize;
        self.lock(shard).orders.get(&id).map(|(_, order)| Arc::clone(order))
    }

    /// Moves a queued order on once the intake decided it.
    fn settle(&self, order: &Order, state: &mut State) {
        if !matches!(state, State::Queued) {
            return;
        }
        let Some(decision) = order.ticket.try_outcome() else { return };
        *state = match decision {
            Ok(Outcome::OrderAllocated(OrderAllocation { order, allocations, .. })) => {
                self.counts.held.fetch_add(1, Ordering::Relaxed);
                let held = State::Held {
                    order: *order,
                    deadline: allocations.iter().filter_map(|allocation| allocation.deadline).min(),
                };
                if self.durable { self.as_the_ledger_has_it(*order, held) } else { held }
            }
            Ok(other) => State::Refused(format!("unexpected outcome {other:?}")),
            Err(IntakeError::Refused(error)) => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                State::Refused(reason_of(error))
            }
            Err(error) => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                State::Refused(error.to_string())
            }
        };
    }

    /// A held order as the ledger has it now: with a journal, the outcome
    /// may be a replay of an order placed before a restart, and committed
    /// or released since. (One read of the order, O(its parts' SKUs'
    /// holds), once per order: only with a journal.)
    fn as_the_ledger_has_it(&self, order: OrderId, held: State) -> State {
        match self.ledger.order(order) {
            Ok(status) => match status.state {
                OrderState::Committed => State::Committed,
                OrderState::Released => State::Released,
                OrderState::Broken => State::Lapsed,
                _ => held,
            },
            Err(_) => State::Ended,
        }
    }

    /// True if a held order's hold lapsed: by the ledger's clock, which
    /// lapses a hold exactly at its deadline (no query: reading a
    /// reservation costs O(the SKU's holds)). A part ended by an adjustment
    /// that shorted it shows at commit time.
    fn lapsed(&self, deadline: Option<Timestamp>) -> bool {
        deadline.is_some_and(|deadline| self.ledger.now() >= deadline)
    }

    /// The order's state now, or `None` if unknown.
    pub fn status(&self, id: u64) -> Option<OrderStatus> {
        let order = self.find(id)?;
        let mut state = order.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.settle(&order, &mut state);
        if let State::Held { deadline, .. } = &*state {
            if self.lapsed(*deadline) {
                *state = State::Lapsed;
            }
        }
        Some(describe(&order, &state))
    }

    /// Commits every part of a held order, or none (the ledger's
    /// [`Ledger::commit_order`]).
    pub fn commit(&self, id: u64) -> Result<OrderStatus, ActError> {
        let order = self.find(id).ok_or(ActError::Unknown)?;
        let mut state = order.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.settle(&order, &mut state);
        let State::Held { order: ledger_order, deadline } = &*state else {
            return Err(ActError::WrongState(name_of(&state)));
        };
        if self.lapsed(*deadline) {
            *state = State::Lapsed;
            return Err(ActError::WrongState("lapsed"));
        }
        match retry(|| self.ledger.commit_order(*ledger_order), OrderChangeError::is_transient) {
            Ok(_) => {
                self.counts.committed.fetch_add(1, Ordering::Relaxed);
                *state = State::Committed;
                Ok(describe(&order, &state))
            }
            Err(OrderChangeError::Part { failure: PartFailure::Lapsed { .. } | PartFailure::Ended, .. }) => {
                *state = State::Lapsed;
                Err(ActError::WrongState("lapsed"))
            }
            // Ended by an earlier call: across a restart, the book's state
            // can trail the ledger's.
            Err(OrderChangeError::Ended { state: OrderState::Committed, .. }) => {
                *state = State::Committed;
                Ok(describe(&order, &state))
            }
            Err(OrderChangeError::Ended { state: OrderState::Released, .. }) => {
                *state = State::Released;
                Err(ActError::WrongState("released"))
            }
            Err(_) => Err(ActError::WrongState("held")),
        }
    }

    /// Releases every part of a held order (the ledger's
    /// [`Ledger::release_order`]).
    pub fn cancel(&self, id: u64) -> Result<OrderStatus, ActError> {
        let order = self.find(id).ok_or(ActError::Unknown)?;
        let mut state = order.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.settle(&order, &mut state);
        let State::Held { order: ledger_order, .. } = &*state else {
            return Err(ActError::WrongState(name_of(&state)));
        };
        match retry(|| self.ledger.release_order(*ledger_order), OrderChangeError::is_transient) {
            Ok(released) if !released.parts.is_empty() => {
                self.counts.released.fetch_add(1, Ordering::Relaxed);
                *state = State::Released;
            }
            // Ended by an earlier call (the book trails the ledger across a
            // restart).
            Err(OrderChangeError::Ended { state: OrderState::Released, .. }) => *state = State::Released,
            Err(OrderChangeError::Ended { state: OrderState::Committed, .. }) => {
                *state = State::Committed;
                return Err(ActError::WrongState("committed"));
            }
            _ => *state = State::Lapsed,
        }
        Ok(describe(&order, &state))
    }

    /// Orders remembered now, by state (settling queued ones): for
    /// `/audit`.
    pub fn tally(&self) -> HashMap<&'static str, u64> {
        let mut tally = HashMap::new();
        for shard in 0..SHARDS {
            let orders: Vec<_> = self.lock(shard).orders.values().map(|(_, order)| Arc::clone(order)).collect();
            for order in orders {
                let mut state = order.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                self.settle(&order, &mut state);
                *tally.entry(name_of(&state)).or_insert(0) += 1;
            }
        }
        tally
    }
}

/// Retries `call` while `transient` says its error is (bounded).
fn retry<T, E>(mut call: impl FnMut() -> Result<T, E>, transient: impl Fn(&E) -> bool) -> Result<T, E> {
    let mut result = call();
    for _ in 0..CONTENDED_RETRIES_MAX {
        match &result {
            Err(error) if transient(error) => result = call(),
            _ => break,
        }
    }
    result
}

fn name_of(state: &State) -> &'static str {
    match state {
        State::Queued => "queued",
        State::Held { .. } => "held",
        State::Committed => "committed",
        State::Released => "released",
        State::Lapsed => "lapsed",
        State::Ended => "ended",
        State::Refused(_) => "refused",
    }
}

fn describe(order: &Order, state: &State) -> OrderStatus {
    OrderStatus {
        id: order.id,
        status: name_of(state),
        lines: order.request.lines.clone(),
        deadline_ms: match state {
            State::Held { deadline, .. } => deadline.map(Timestamp::as_millis),
            _ => None,
        },
        reason: match state {
            State::Refused(reason) => Some(reason.clone()),
            _ => None,
        },
    }
}

/// A short reason for a refused order: the command's own refusal (a
/// `CommandError` says only which command it was; its cause is its source).
fn reason_of(error: &CommandError) -> String {
    match error {
        CommandError::Order(stockroom::OrderError::Line { index, error }) => format!("line {index}: {error}"),
        other => {
            let mut root: &(dyn std::error::Error + 'static) = other;
            // A source chain is a few links long (command, order line, cause).
            for _ in 0..8 {
                match root.source() {
                    Some(cause) => root = cause,
                    None => break,
                }
            }
            root.to_string()
        }
    }
}
