//! A slow, obviously-correct reference ledger, written from
//! `docs/semantics.md` alone (not from `src/`), for the model-based
//! proptest, the fuzzer, the shuttle schedules and the linearizability
//! checker to compare the real [`stockroom::Ledger`] against.
//!
//! Everything sits behind one `Mutex`; lots are kept in arrival order and
//! re-sorted by policy on every use; counters are plain `u64`/`i64`; time is
//! whatever instant the caller passes (the clock reading the real ledger
//! would take). Every operation on a defined SKU first runs the sweep rule
//! (lapsed holds end, one version) exactly as the page says; `peek` is the
//! only read that does not. Idempotency keys (`execute_keyed`) are a map
//! from key to its record plus a queue of records in the order they were
//! made, exactly as the page's "Idempotency keys" section says. It uses only
//! `stockroom`'s public types and `std`, so other crates can include it with
//! `#[path = "../../tests/common/reference.rs"] mod reference;`.
#![allow(dead_code, unreachable_pub)]

#[path = "reference_shop.rs"]
mod shop;
#[path = "reference_stock.rs"]
mod stock;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stockroom::{
    AdjustError, Adjusted, AdjustmentReason, AllocateError, AllocateRequest, Allocation, AllocationPolicy, Command,
    CommandError, CommitError, Committed, DefineError, ExpireError, ExpiryReport, ExtendError, Extended, FillMode,
    IdempotencyKey, KeyWindow, Keyed, KeyedError, Lapsed, LedgerBuilder, Line, LocationId, LotAttribute, LotAttributes,
    LotId, LotQuantities, LotSnapshot, LowStock, LowStockSet, NewLot, OrderAllocation, OrderError, OrderId,
    OrderRequest, Outcome, Quantity, QueryError, ReceiveError, Received, ReleaseError, Released, Reservation,
    ReservationId, Sale, Shortfall, SkuDefined, SkuId, SnapshotData, Swept, ThresholdError, Timestamp,
};
use stockroom::{Kit, KitComponent, LocationStock, Locations, OrderStatus, ReturnSource};

/// The largest quantity, as a plain number.
const MAX: u64 = Quantity::MAX.get();

/// A lot's (or a SKU's) counters from plain numbers the reference has
/// already bounded.
fn quantities(received: u64, adjusted: i64, available: u64, held: u64, committed: u64) -> LotQuantities {
    let mut quantities = LotQuantities::default();
    quantities.received = q(received);
    quantities.adjusted = adjusted;
    quantities.available = q(available);
    quantities.held = q(held);
    quantities.committed = q(committed);
    quantities
}

/// Turns a plain number the reference has already bounded into a `Quantity`.
fn q(value: u64) -> Quantity {
    Quantity::new(value).expect("reference counters never exceed Quantity::MAX")
}

/// Checks a raw quantity from a command: `Err(true)` for zero, `Err(false)`
/// for too large.
fn check(raw: u64) -> Result<u64, bool> {
    if raw == 0 {
        Err(true)
    } else if raw > MAX {
        Err(false)
    } else {
        Ok(raw)
    }
}

/// A duration in whole milliseconds, saturating (the page's "in ms").
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `at + duration` in milliseconds, saturating at the end of time.
fn later(at: Timestamp, duration: Duration) -> Timestamp {
    Timestamp::from_millis(at.as_millis().saturating_add(millis(duration)))
}

#[derive(Clone, Debug)]
struct RefLot {
    id: LotId,
    /// 0, 1, 2, … in the order the SKU received its lots.
    arrival: usize,
    received_at: Timestamp,
    expires_at: Option<Timestamp>,
    attributes: Option<LotAttributes>,
    location: Option<LocationId>,
    received: u64,
    adjusted: i64,
    available: u64,
    held: u64,
    committed: u64,
    /// Units written off because the lot expired.
    written_off: u64,
    /// Units that came back into this lot (returns).
    returned: u64,
    /// Units that left this lot and came back (into it or a new lot): a
    /// return may bring back at most `committed - came_back`.
    came_back: u64,
}

impl RefLot {
    /// Its counters at instant `at` (`None`: nothing counted as expired):
    /// a lot past its expiry shows its free units as expired, not
    /// available.
    fn quantities(&self, at: Option<Timestamp>) -> LotQuantities {
        let mut quantities = quantities(self.received, self.adjusted, self.available, self.held, self.committed);
        quantities.written_off = q(self.written_off);
        quantities.returned = q(self.returned);
        if at.is_some_and(|at| self.expires_at.is_some_and(|expiry| expiry <= at)) {
            quantities.expired = quantities.available;
            quantities.available = Quantity::ZERO;
        }
        quantities
    }

    /// Eligible at `now` with `shelf_life`: no expiry, or expiry strictly
    /// after `now + shelf_life` (milliseconds, saturating).
    fn eligible(&self, now: Timestamp, shelf_life: Duration) -> bool {
        match self.expires_at {
            None => true,
            Some(expiry) => expiry > later(now, shelf_life),
        }
    }

    fn snapshot(&self, at: Option<Timestamp>) -> LotSnapshot {
        let attributes = self.attributes.clone().map(Arc::new);
        let quantities = self.quantities(at);
        let mut snapshot = LotSnapshot::new(self.id, self.received_at, self.expires_at, attributes, quantities);
        snapshot.location = self.location;
        snapshot
    }
}

#[derive(Clone, Debug)]
struct RefHold {
    /// `(lot id, units)`, in the order they were drawn; never zero.
    lines: Vec<(LotId, u64)>,
    granted: u64,
    shorted: u64,
    /// Units a backorder still waits for (0: whole, or not a backorder).
    backordered: u64,
    /// The minimum shelf life of the units a waiting backorder may draw.
    shelf_life: Duration,
    /// When it lapses; `None` holds until ended.
    deadline: Option<Timestamp>,
    /// Its allocation instant plus the ledger's `hold_max`: the latest an
    /// extension may move the deadline to.
    latest: Timestamp,
    /// The host's tag (0: none).
    tag: u64,
    /// The order it is a part of (0: none).
    order: u64,
}

impl RefHold {
    fn public_lines(&self) -> Vec<Line> {
        self.lines.iter().map(|&(lot, units)| Line { lot, quantity: q(units) }).collect()
    }

    fn held(&self) -> u64 {
        self.lines.iter().map(|&(_, units)| units).sum()
    }

    /// Lapsed at `now`: it has a deadline, and the deadline is not after `now`.
    fn lapsed(&self, now: Timestamp) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= now)
    }

    /// Adds `units` of `lot`: merged into its line on that lot, else appended.
    fn add(&mut self, lot: LotId, units: u64) {
        match self.lines.iter_mut().find(|(line_lot, _)| *line_lot == lot) {
            Some(line) => line.1 += units,
            None => self.lines.push((lot, units)),
        }
    }

    fn public(&self, id: ReservationId) -> Reservation {
        let mut reservation =
            Reservation::new(id, self.public_lines(), q(self.granted), q(self.shorted), self.deadline);
        reservation.tag = self.tag;
        reservation.backordered = q(self.backordered);
        reservation
    }
}

#[derive(Clone, Debug)]
struct RefSku {
    sku: SkuId,
    version: u64,
    policy: AllocationPolicy,
    /// In arrival order.
    lots: Vec<RefLot>,
    /// Live holds by seq.
    holds: BTreeMap<u64, RefHold>,
    /// Receipts plus positive adjustments.
    inflow: u64,
    /// The low-stock threshold.
    low_stock: Option<LowStock>,
    /// The latest instant `expire_due` reported expired lots up to.
    lots_checked_until: Option<Timestamp>,
}

/// Why a reservation is not live: never issued, ended earlier, or lapsed by
/// the sweep of the very operation asking.
enum NotLive {
    Unknown,
    Ended,
    Expired(Timestamp),
}

impl RefSku {
    /// Indices into `lots`, sorted by `policy`'s key.
    fn order(&self, policy: AllocationPolicy) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..self.lots.len()).collect();
        indices.sort_by_key(|&i| {
            let lot = &self.lots[i];
            match policy {
                // Lots without an expiry come after every lot with one.
                AllocationPolicy::Fefo => {
                    let expiry = lot.expires_at.map_or(u128::from(u64::MAX) + 1, |e| u128::from(e.as_millis()));
                    (expiry, lot.received_at.as_millis(), lot.arrival)
                }
                AllocationPolicy::Fifo => (u128::from(lot.received_at.as_millis()), 0, lot.arrival),
                other => unimplemented!("the reference knows FEFO and FIFO, not {other:?}"),
            }
        });
        indices
    }

    fn index_of(&self, lot: LotId) -> Option<usize> {
        self.lots.iter().position(|l| l.id == lot)
    }

    /// The SKU as a snapshot read at `at` shows it.
    fn data(&self, at: Option<Timestamp>) -> SnapshotData {
        let lots: Vec<LotSnapshot> = self.order(self.policy).into_iter().map(|i| self.lots[i].snapshot(at)).collect();
        let mut totals = LotQuantities::default();
        for lot in &self.lots {
            let lot = lot.quantities(at);
            totals.received = q(totals.received.get() + lot.received.get());
            totals.adjusted += lot.adjusted;
            totals.available = q(totals.available.get() + lot.available.get());
            totals.expired = q(totals.expired.get() + lot.expired.get());
            totals.held = q(totals.held.get() + lot.held.get());
            totals.committed = q(totals.committed.get() + lot.committed.get());
            totals.written_off = q(totals.written_off.get() + lot.written_off.get());
            totals.returned = q(totals.returned.get() + lot.returned.get());
        }
        let reservations =
            self.holds.iter().map(|(&seq, hold)| hold.public(ReservationId::new(self.sku, seq))).collect();
        SnapshotData { sku: self.sku, version: self.version, policy: self.policy, lots, reservations, totals }
    }

    /// A policy walk over `available` (units per lot index, so that an
    /// order can walk what its earlier lines left): `(lot index, units)` in
    /// walk order, and the units still wanted after it. `skip` is a lot the
    /// walk may not draw from.
    fn walk(
        &self,
        available: &[u64],
        policy: AllocationPolicy,
        shelf_life: Duration,
        wanted: u64,
        now: Timestamp,
        skip: Option<usize>,
    ) -> (Vec<(usize, u64)>, u64) {
        let mut remaining = wanted;
        let mut plan = Vec::new();
        for i in self.order(policy) {
            if remaining == 0 {
                break;
            }
            if Some(i) == skip || available[i] == 0 || !self.lots[i].eligible(now, shelf_life) {
                continue;
            }
            let units = available[i].min(remaining);
            plan.push((i, units));
            remaining -= units;
        }
        (plan, remaining)
    }

    fn available_now(&self) -> Vec<u64> {
        self.lots.iter().map(|lot| lot.available).collect()
    }

    /// Whether a sweep at `now` would have anything to do.
    fn has_lapsed(&self, now: Timestamp) -> bool {
        self.holds.values().any(|hold| hold.lapsed(now))
    }

    /// The sweep: every hold lapsed at `now` ends (its lines return to
    /// available), in seq order; with `lots`, also the newly expired lots
    /// (`expire_due`). One version if there was anything; `None` otherwise.
    fn sweep(&mut self, now: Timestamp, lots: bool) -> Option<Swept> {
        self.sweep_with(now, lots, false, now)
    }

    /// [`sweep`](Self::sweep), and with `write_off` every expired lot's
    /// units on hand (free and held) written off after the lapses, in
    /// policy order, holds on them losing units as for a shrink (the page:
    /// "re-sourcing or shorting holds on the lot as a shrink does").
    ///
    /// Units the lapses gave back fill waiting backorders in the same
    /// version, eligibility read at `clock` (the operation's clock reading:
    /// `expire_due(at)` sweeps at the host's `at`, but is an operation at
    /// the clock's instant).
    fn sweep_with(&mut self, now: Timestamp, lots: bool, write_off: bool, clock: Timestamp) -> Option<Swept> {
        let lapsed_seqs: Vec<u64> =
            self.holds.iter().filter(|(_, hold)| hold.lapsed(now)).map(|(&seq, _)| seq).collect();
        let mut lapsed = Vec::new();
        let mut gave = false;
        for seq in lapsed_seqs {
            let hold = self.holds.remove(&seq).expect("listed above");
            for &(lot_id, units) in &hold.lines {
                let i = self.index_of(lot_id).expect("a hold line names a lot of its SKU");
                self.lots[i].held -= units;
                self.lots[i].available += units;
            }
            gave |= !hold.lines.is_empty();
            let deadline = hold.deadline.expect("only holds with a deadline lapse");
            lapsed.push(Lapsed::new(ReservationId::new(self.sku, seq), deadline, hold.public_lines()));
        }
        let mut expired_lots = Vec::new();
        if lots {
            for i in self.order(self.policy) {
                let lot = &self.lots[i];
                let Some(expiry) = lot.expires_at else { continue };
                if expiry <= now && self.lots_checked_until.is_none_or(|checked| expiry > checked) {
                    expired_lots.push(lot.id);
                }
            }
        }
        let mut written_off = Vec::new();
        let mut shortfalls = Vec::new();
        if write_off {
            for i in self.order(self.policy) {
                if self.lots[i].expires_at.is_none_or(|expiry| expiry > now) {
                    continue;
                }
                let on_hand = self.lots[i].available + self.lots[i].held;
                if on_hand == 0 {
                    continue;
                }
                self.lots[i].available = 0;
                let held = self.lots[i].held;
                shortfalls.extend(self.displace(i, held, now));
                self.lots[i].written_off += on_hand;
                written_off.push(Line { lot: self.lots[i].id, quantity: q(on_hand) });
            }
        }
        if lapsed.is_empty() && expired_lots.is_empty() && written_off.is_empty() {
            return None;
        }
        if !expired_lots.is_empty() {
            self.lots_checked_until = Some(self.lots_checked_until.map_or(now, |checked| checked.max(now)));
        }
        if gave {
            self.fill_waiting(clock);
        }
        self.version += 1;
        let mut swept = Swept::new(self.sku, now, lapsed, expired_lots, self.version);
        swept.written_off = written_off;
        swept.shortfalls = shortfalls;
        Some(swept)
    }

    /// Takes `rest` held units of lot `i` from the holds with a line on
    /// it, highest seq first, each loss re-sourced (the SKU's policy order,
    /// skipping lot `i`, empty lots and lots not eligible at `now` with
    /// shelf life 0) before the next hold is visited; the rest shorted.
    fn displace(&mut self, i: usize, mut rest: u64, now: Timestamp) -> Vec<Shortfall> {
        let lot = self.lots[i].id;
        let mut shortfalls = Vec::new();
        let seqs: Vec<u64> = self.holds.keys().rev().copied().collect();
        for seq in seqs {
            if rest == 0 {
                break;
            }
            let hold = self.holds.get_mut(&seq).expect("listed above");
            let Some(at) = hold.lines.iter().position(|&(line_lot, _)| line_lot == lot) else {
                continue;
            };
            let taken = hold.lines[at].1.min(rest);
            hold.lines[at].1 -= taken;
            if hold.lines[at].1 == 0 {
                hold.lines.remove(at);
            }
            rest -= taken;
            self.lots[i].held -= taken;
            let (plan, uncovered) = self.walk(&self.available_now(), self.policy, Duration::ZERO, taken, now, Some(i));
            let mut resourced = Vec::new();
            for &(j, units) in &plan {
                self.lots[j].available -= units;
                self.lots[j].held += units;
                let lot_id = self.lots[j].id;
                self.holds.get_mut(&seq).expect("listed above").add(lot_id, units);
                resourced.push(Line { lot: lot_id, quantity: q(units) });
            }
            self.holds.get_mut(&seq).expect("listed above").shorted += uncovered;
            shortfalls.push(Shortfall::new(ReservationId::new(self.sku, seq), q(taken), resourced, q(uncovered)));
        }
        assert_eq!(rest, 0, "reference: the holds on a lot add up to its held units");
        shortfalls
    }

    /// The state of reservation `seq` after a sweep that reported `swept`.
    fn lookup(&self, seq: u64, swept: &Option<Swept>) -> Result<&RefHold, NotLive> {
        // Seqs are versions: one past the SKU's version was never issued;
        // any other that names no live hold has ended (or was never a hold).
        if seq == 0 || seq > self.version {
            return Err(NotLive::Unknown);
        }
        if let Some(hold) = self.holds.get(&seq) {
            return Ok(hold);
        }
        let own = swept.iter().flat_map(|swept| &swept.lapsed).find(|lapsed| lapsed.reservation.seq == seq);
        Err(own.map_or(NotLive::Ended, |lapsed| NotLive::Expired(lapsed.deadline)))
    }

    /// Ends hold `seq`: each line commits `min(line, remaining)` and returns
    /// the rest. `(committed, returned)`, non-zero parts in line order.
    fn end(&mut self, seq: u64, mut remaining: u64) -> (Vec<Line>, Vec<Line>) {
        let hold = self.holds.remove(&seq).expect("the caller found the hold");
        let mut committed = Vec::new();
        let mut returned = Vec::new();
        for &(lot_id, units) in &hold.lines {
            let leaving = units.min(remaining);
            remaining -= leaving;
            let staying = units - leaving;
            let i = self.index_of(lot_id).expect("a hold line names a lot of its SKU");
            let lot = &mut self.lots[i];
            lot.held -= units;
            lot.committed += leaving;
            lot.available += staying;
            if leaving > 0 {
                committed.push(Line { lot: lot_id, quantity: q(leaving) });
            }
            if staying > 0 {
                returned.push(Line { lot: lot_id, quantity: q(staying) });
            }
        }
        (committed, returned)
    }
}

#[derive(Debug)]
struct State {
    skus: BTreeMap<SkuId, RefSku>,
    hold_max: Duration,
    keys: Keys,
    /// The last order id handed out (ids count from 1, one per order that
    /// passed validation, refused for stock or not).
    last_order: u64,
    /// `last_order` when the journal was last checkpointed.
    checkpoint_last_order: u64,
    /// Every order made, by id.
    orders: BTreeMap<u64, shop::RefOrder>,
    /// Every kit defined, and its components in the order given.
    kits: BTreeMap<SkuId, Vec<KitComponent>>,
    /// Whether `expire_due` also writes off expired lots (the builder's
    /// `write_off_expired`).
    write_off: bool,
}

/// Drops from the front of the record order per record, at most (the
/// store's bound; it binds only when more than that many records at the
/// front have expired, which a clock that never goes back and a `keys_max`
/// under 8 never produce).
const KEY_SWEEP_MAX: usize = 8;

/// Expired records a new key that finds no room drops from the front of
/// the order before it is refused (the store's bound).
const KEYS_FULL_SWEEP_MAX: usize = 1_024;

/// A key's record: the first command and its final result, when it was
/// recorded, and which record it is (a key recorded again after its window
/// is a new record).
#[derive(Debug)]
struct KeyRecord {
    command: Command,
    result: Result<Outcome, CommandError>,
    recorded_at: Timestamp,
    number: u64,
}

/// The idempotency keys.
#[derive(Debug)]
struct Keys {
    window: KeyWindow,
    /// Each key's current record (possibly past its window: then it is not
    /// remembered, only not yet dropped).
    records: HashMap<IdempotencyKey, KeyRecord>,
    /// Every record not yet dropped from the order, oldest first: its key,
    /// its number and when it was recorded. A record replaced since (its key
    /// was recorded again) keeps its place until it reaches the front.
    order: VecDeque<(IdempotencyKey, u64, Timestamp)>,
    /// Records made so far (the next record's number).
    made: u64,
}

impl Keys {
    /// Past its window at `now`: `now >= recorded_at + window` (ms,
    /// saturating).
    fn expired(&self, recorded_at: Timestamp, now: Timestamp) -> bool {
        now >= later(recorded_at, self.window.window)
    }

    /// The key's record, if remembered at `now`.
    fn remembered(&self, key: &IdempotencyKey, now: Timestamp) -> Option<&KeyRecord> {
        self.records.get(key).filter(|record| !self.expired(record.recorded_at, now))
    }

    /// Forgets `key`'s record if it is still record `number`.
    fn drop_record(&mut self, key: &IdempotencyKey, number: u64) {
        if self.records.get(key).is_some_and(|record| record.number == number) {
            self.records.remove(key);
        }
    }

    /// Whether `key` may be taken at `now`: it has a record (expired: it is
    /// replaced in place), or fewer than `keys_max` records are kept once
    /// up to [`KEYS_FULL_SWEEP_MAX`] expired ones are dropped from the front
    /// of the order. A record inside its window is never dropped for room.
    fn has_room(&mut self, key: &IdempotencyKey, now: Timestamp) -> bool {
        if self.records.contains_key(key) {
            return true;
        }
        if self.records.len() >= self.window.keys_max {
            self.drop_expired(now, KEYS_FULL_SWEEP_MAX);
        }
        self.records.len() < self.window.keys_max
    }

    /// Drops up to `max` expired records from the front of the order.
    fn drop_expired(&mut self, now: Timestamp, max: usize) {
        for _ in 0..max {
            match self.order.front() {
                Some(&(_, _, recorded_at)) if self.expired(recorded_at, now) => {
                    let (key, number, _) = self.order.pop_front().expect("a front");
                    self.drop_record(&key, number);
                }
                _ => break,
            }
        }
    }

    /// Records `result` for `key` at `now`, then drops expired records at
    /// the front of the order (never any by count: a full table refuses new
    /// keys instead).
    fn record(
        &mut self,
        key: &IdempotencyKey,
        command: &Command,
        result: &Result<Outcome, CommandError>,
        now: Timestamp,
    ) {
        let number = self.made;
        self.made += 1;
        let record = KeyRecord { command: command.clone(), result: result.clone(), recorded_at: now, number };
        self.records.insert(key.clone(), record);
        self.order.push_back((key.clone(), number, now));
        self.drop_expired(now, KEY_SWEEP_MAX);
    }
}

/// The reference ledger: the semantics page, executed as literally as
/// possible.
#[derive(Debug)]
pub struct ReferenceLedger {
    state: Mutex<State>,
}

impl Default for ReferenceLedger {
    fn default() -> Self {
        ReferenceLedger::new()
    }
}

impl ReferenceLedger {
    /// An empty ledger with the default maximum hold duration.
    pub fn new() -> Self {
        ReferenceLedger::with_hold_max(LedgerBuilder::HOLD_MAX_DEFAULT)
    }

    /// An empty ledger whose holds may last at most `hold_max`.
    pub fn with_hold_max(hold_max: Duration) -> Self {
        ReferenceLedger::with_limits(hold_max, KeyWindow::default())
    }

    /// An empty ledger whose holds may last at most `hold_max` and that
    /// remembers idempotency keys as `keys` says.
    pub fn with_limits(hold_max: Duration, keys: KeyWindow) -> Self {
        let keys = Keys { window: keys, records: HashMap::new(), order: VecDeque::new(), made: 0 };
        let state = State {
            skus: BTreeMap::new(),
            hold_max,
            keys,
            last_order: 0,
            checkpoint_last_order: 0,
            orders: BTreeMap::new(),
            kits: BTreeMap::new(),
            write_off: false,
        };
        ReferenceLedger { state: Mutex::new(state) }
    }

    /// This ledger, whose `expire_due` also writes off expired lots (as a
    /// ledger built with `write_off_expired(write_off)`).
    pub fn with_write_off(self, write_off: bool) -> Self {
        self.lock().write_off = write_off;
        self
    }

    /// A checkpoint of the ledger's journal was written: it holds the
    /// order-id counter as it is.
    pub fn checkpointed(&self) {
        let mut state = self.lock();
        state.checkpoint_last_order = state.last_order;
    }

    /// The ledger was reopened from its journal: refused orders' ids are
    /// not recorded, so ids go on after the last order made or the last
    /// checkpoint, whichever is later (a refused order's id is never
    /// shown).
    pub fn reopened(&self) {
        let mut state = self.lock();
        let made = state.orders.keys().copied().max().unwrap_or(0);
        state.last_order = made.max(state.checkpoint_last_order);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one command at instant `now` (the clock reading the real
    /// ledger would use).
    pub fn execute(&self, command: &Command, now: Timestamp) -> Result<Outcome, CommandError> {
        let mut state = self.lock();
        let state = &mut *state;
        Ok(match command {
            Command::DefineSku { sku, policy } => Outcome::SkuDefined(define(state, *sku, *policy)?),
            Command::Receive { sku, lot } => Outcome::Received(receive(state, *sku, lot, now)?),
            Command::Allocate(request) => Outcome::Allocated(allocate(state, request, now)?),
            Command::Take(request) => Outcome::Sold(take(state, request, now)?),
            Command::Release { reservation } => Outcome::Released(release(state, *reservation, now)?),
            Command::Commit { reservation, quantity } => {
                Outcome::Committed(commit(state, *reservation, *quantity, now)?)
            }
            Command::Adjust { sku, lot, delta, reason, expected_version } => {
                Outcome::Adjusted(adjust(state, *sku, *lot, *delta, *reason, *expected_version, now)?)
            }
            Command::AllocateOrder(order) => Outcome::OrderAllocated(allocate_order(state, order, now)?),
            Command::Extend { reservation, by } => Outcome::Extended(extend(state, *reservation, *by, now)?),
            Command::ExpireDue { now: at } => Outcome::Expired(expire_due(state, *at, now)?),
            Command::SetLowStock { sku, rule } => Outcome::LowStockSet(set_low_stock(state, *sku, *rule, now)?),
            Command::CommitOrder { order } => Outcome::OrderCommitted(shop::commit_order(state, *order, now)?),
            Command::ReleaseOrder { order } => Outcome::OrderReleased(shop::release_order(state, *order, now)?),
            Command::ExtendOrder { order, by } => Outcome::OrderExtended(shop::extend_order(state, *order, *by, now)?),
            Command::DefineKit { kit, components } => Outcome::KitDefined(shop::define_kit(state, *kit, components)?),
            Command::Return(request) => Outcome::Returned(shop::return_units(state, request, now)?),
            other => unimplemented!("the reference does not know {other}"),
        })
    }

    /// Runs `command` with idempotency key `key` at instant `now` (the one
    /// clock reading of the real call): a remembered key replays its record
    /// (equal command) or refuses (different command) and changes nothing;
    /// otherwise the command runs and its result, unless transient, is
    /// recorded.
    pub fn execute_keyed(
        &self,
        key: &IdempotencyKey,
        command: &Command,
        now: Timestamp,
    ) -> Result<Keyed<Outcome>, KeyedError> {
        let remembered = {
            let state = self.lock();
            state.keys.remembered(key, now).map(|record| {
                if record.command == *command {
                    Ok(record.result.clone())
                } else {
                    Err(record.command.first_difference(command).unwrap_or("command").to_owned())
                }
            })
        };
        let (result, replay) = match remembered {
            Some(Ok(result)) => (result, true),
            Some(Err(field)) => return Err(KeyedError::KeyReused { key: key.clone(), field }),
            None => {
                // A new key needs room: forget what expired at the front of
                // the record order, and refuse if there is still none.
                if !self.lock().keys.has_room(key, now) {
                    let keys_max = self.lock().keys.window.keys_max;
                    return Err(KeyedError::KeysFull { key: key.clone(), keys_max });
                }
                // A record past its window is forgotten as the key is taken
                // afresh (its place in the record order stays).
                self.lock().keys.records.remove(key);
                let result = self.execute(command, now);
                if !matches!(&result, Err(error) if error.is_transient()) {
                    self.lock().keys.record(key, command, &result, now);
                }
                (result, false)
            }
        };
        match result {
            Ok(outcome) => Ok(Keyed::new(outcome, replay)),
            Err(error) => Err(KeyedError::Refused { error, replay }),
        }
    }

    /// What `Ledger::write_off_expired(at)` should answer with the clock
    /// reading `clock`: `expire_due` that also writes off expired lots.
    pub fn write_off_expired(&self, at: Timestamp, clock: Timestamp) -> Result<ExpiryReport, ExpireError> {
        sweep_all(&mut self.lock(), at, clock, true)
    }

    /// What `Ledger::order` should answer at `now` (it reads every part,
    /// and each read sweeps the part's SKU).
    pub fn order(&self, order: OrderId, now: Timestamp) -> Result<OrderStatus, QueryError> {
        shop::order_status(&mut self.lock(), order, now)
    }

    /// What `Ledger::kit` should answer at `now`: the components and how
    /// many whole kits their available units make (each read sweeps).
    pub fn kit(&self, kit: SkuId, now: Timestamp) -> Result<Kit, QueryError> {
        shop::kit(&mut self.lock(), kit, now)
    }

    /// Every SKU `command` operates on (swept when it runs), as far as the
    /// reference knows now: [`touched`], with kit lines of an order
    /// standing for their components, and every defined SKU for the order
    /// commands and a return linked to an order (which read the order's
    /// parts).
    pub fn touched_by(&self, command: &Command) -> Vec<SkuId> {
        let state = self.lock();
        let defined: Vec<SkuId> = state.skus.keys().copied().collect();
        match command {
            Command::AllocateOrder(order) => {
                let mut skus: Vec<SkuId> = Vec::new();
                for line in &order.lines {
                    match state.kits.get(&line.sku) {
                        Some(components) => skus.extend(components.iter().map(|component| component.sku)),
                        None => skus.push(line.sku),
                    }
                }
                skus.sort();
                skus.dedup();
                skus
            }
            Command::CommitOrder { .. } | Command::ReleaseOrder { .. } | Command::ExtendOrder { .. } => defined,
            Command::Return(request) if matches!(request.source, ReturnSource::Order(_)) => defined,
            other => touched(other, &defined),
        }
    }

    /// What `Ledger::snapshot` should answer at `now` (it sweeps first), or
    /// `None` if the SKU is not defined.
    pub fn snapshot(&self, sku: SkuId, now: Timestamp) -> Option<SnapshotData> {
        let mut state = self.lock();
        let entry = state.skus.get_mut(&sku)?;
        entry.sweep(now, false);
        Some(entry.data(Some(now)))
    }

    /// The SKU's state as it stands, with no sweep (lapsed holds still
    /// listed), or `None` if it is not defined.
    pub fn peek(&self, sku: SkuId) -> Option<SnapshotData> {
        self.lock().skus.get(&sku).map(|entry| entry.data(None))
    }

    /// The version an operation on `sku` at `now` finds once its own sweep
    /// ran (the current version, plus one if a hold has lapsed by `now`),
    /// without sweeping; `None` if the SKU is not defined. What a caller
    /// reading a snapshot at `now` would pass as an expected version.
    pub fn version_at(&self, sku: SkuId, now: Timestamp) -> Option<u64> {
        let state = self.lock();
        let entry = state.skus.get(&sku)?;
        Some(entry.version + u64::from(entry.has_lapsed(now)))
    }

    /// Every defined SKU, sorted.
    pub fn skus(&self) -> Vec<SkuId> {
        self.lock().skus.keys().copied().collect()
    }

    /// The maximum hold duration.
    pub fn hold_max(&self) -> Duration {
        self.lock().hold_max
    }

    /// What `Ledger::reservation` should answer at `now` (it sweeps first).
    pub fn reservation(&self, id: ReservationId, now: Timestamp) -> Result<Reservation, QueryError> {
        query_reservation(&mut self.lock(), id, now)
    }

    /// What `Ledger::available_by_location` should answer at `now` (it
    /// sweeps first): per location, by id (lots without one last), the
    /// units a draw with `min_shelf_life` could take and the unsellable
    /// rest.
    pub fn available_by_location(
        &self,
        sku: SkuId,
        now: Timestamp,
        min_shelf_life: Duration,
    ) -> Result<Vec<LocationStock>, QueryError> {
        let mut state = self.lock();
        let entry = state.skus.get_mut(&sku).ok_or(QueryError::UnknownSku { sku })?;
        entry.sweep(now, false);
        Ok(entry.by_location(now, min_shelf_life))
    }

    /// What `Ledger::available` should answer at `now` (it sweeps first):
    /// every available unit of a lot eligible with `min_shelf_life`.
    pub fn available(&self, sku: SkuId, now: Timestamp, min_shelf_life: Duration) -> Result<Quantity, QueryError> {
        query_available(&mut self.lock(), sku, now, min_shelf_life)
    }
}

/// `reservation(id)` at `now`: the SKU swept, then the hold read.
fn query_reservation(state: &mut State, id: ReservationId, now: Timestamp) -> Result<Reservation, QueryError> {
    let entry = state.skus.get_mut(&id.sku).ok_or(QueryError::UnknownSku { sku: id.sku })?;
    let swept = entry.sweep(now, false);
    match entry.lookup(id.seq, &swept) {
        Ok(hold) => Ok(hold.public(id)),
        Err(NotLive::Unknown) => Err(QueryError::UnknownReservation { id }),
        Err(NotLive::Ended) => Err(QueryError::Ended { id }),
        Err(NotLive::Expired(deadline)) => Err(QueryError::Expired { id, deadline }),
    }
}

/// `available(sku, shelf)` at `now`: the SKU swept, then every available
/// unit of a lot eligible with `min_shelf_life` (for a kit, `kit(sku)`'s
/// availability, as `Ledger::available` documents).
fn query_available(
    state: &mut State,
    sku: SkuId,
    now: Timestamp,
    min_shelf_life: Duration,
) -> Result<Quantity, QueryError> {
    if state.kits.contains_key(&sku) {
        // A kit: whole kits its components make (no shelf life applied).
        return shop::kit(state, sku, now).map(|kit| kit.available);
    }
    let entry = state.skus.get_mut(&sku).ok_or(QueryError::UnknownSku { sku })?;
    entry.sweep(now, false);
    Ok(q(entry.lots.iter().filter(|lot| lot.eligible(now, min_shelf_life)).map(|lot| lot.available).sum()))
}

fn define(state: &mut State, sku: SkuId, policy: AllocationPolicy) -> Result<SkuDefined, DefineError> {
    // Kit ids share the SKU ids' space.
    if state.skus.contains_key(&sku) || state.kits.contains_key(&sku) {
        return Err(DefineError::AlreadyDefined { sku });
    }
    let fresh = RefSku {
        sku,
        version: 0,
        policy,
        lots: Vec::new(),
        holds: BTreeMap::new(),
        inflow: 0,
        low_stock: None,
        lots_checked_until: None,
    };
    state.skus.insert(sku, fresh);
    Ok(SkuDefined::new(sku, 0))
}

fn receive(state: &mut State, sku: SkuId, lot: &NewLot, now: Timestamp) -> Result<Received, ReceiveError> {
    let units = check(lot.quantity).map_err(|zero| {
        if zero {
            ReceiveError::ZeroQuantity { sku, lot: lot.id }
        } else {
            ReceiveError::QuantityTooLarge { sku, lot: lot.id, quantity: lot.quantity }
        }
    })?;
    // The page: a supplier longer than `LotAttributes::SUPPLIER_LEN_MAX`
    // bytes is refused, after the quantity and before the lookup.
    let supplier = lot.attributes.as_ref().and_then(|attributes| attributes.supplier.as_deref()).map_or(0, str::len);
    if supplier > LotAttributes::SUPPLIER_LEN_MAX {
        let (field, max) = (LotAttribute::Supplier, LotAttributes::SUPPLIER_LEN_MAX);
        return Err(ReceiveError::AttributeTooLong { sku, lot: lot.id, field, len: supplier, max });
    }
    stock::check_lot_location(sku, lot)?;
    let entry = state.skus.get_mut(&sku).ok_or(ReceiveError::UnknownSku { sku })?;
    entry.sweep(now, false);
    if entry.index_of(lot.id).is_some() {
        return Err(ReceiveError::DuplicateLot { sku, lot: lot.id });
    }
    if entry.inflow + units > MAX {
        return Err(ReceiveError::Overflow { sku, quantity: units });
    }
    let received_at = lot.received_at.unwrap_or(now);
    entry.inflow += units;
    entry.lots.push(RefLot {
        id: lot.id,
        arrival: entry.lots.len(),
        received_at,
        expires_at: lot.expires_at,
        attributes: lot.attributes.clone(),
        location: lot.location,
        received: units,
        adjusted: 0,
        available: units,
        held: 0,
        committed: 0,
        written_off: 0,
        returned: 0,
        came_back: 0,
    });
    entry.fill_waiting(now);
    entry.version += 1;
    Ok(Received::new(sku, lot.id, received_at, entry.version))
}

/// A hold duration checked against `hold_max`: `Err(None)` for under one
/// millisecond (deadlines are whole milliseconds), `Err(Some(d))` for too
/// long.
fn hold_for(state: &State, hold_for: Option<Duration>) -> Result<Option<Duration>, Option<Duration>> {
    match hold_for {
        None => Ok(None),
        Some(duration) if duration < Duration::from_millis(1) => Err(None),
        Some(duration) if duration > state.hold_max => Err(Some(duration)),
        Some(duration) => Ok(Some(duration)),
    }
}

/// The shared front half of allocate and take, after the hold checks:
/// `UnknownSku`, the sweep, `VersionMismatch` and the walk: the draw, and
/// the units a backorder still waits for (0 for every other request).
fn plan(
    state: &mut State,
    request: &AllocateRequest,
    now: Timestamp,
) -> Result<(Vec<(usize, u64)>, u64), AllocateError> {
    let sku = request.sku;
    let wanted = check(request.quantity).expect("validated by the caller");
    if state.kits.contains_key(&sku) {
        // A kit has no stock of its own: it is allocated by an order.
        return Err(AllocateError::Kit { sku });
    }
    let entry = state.skus.get_mut(&sku).ok_or(AllocateError::UnknownSku { sku })?;
    entry.sweep(now, false);
    if let Some(expected) = request.expected_version {
        if expected != entry.version {
            return Err(AllocateError::VersionMismatch { sku, expected, current: entry.version });
        }
    }
    let policy = request.policy.unwrap_or(entry.policy);
    if request.backorder {
        // The page: "a request short of stock holds what there is and
        // waits for the rest": every eligible unit, by the request's
        // policy, from any location (a backorder names none).
        let (plan, remaining) = entry.walk(&entry.available_now(), policy, request.min_shelf_life, wanted, now, None);
        if remaining > 0 {
            if !entry.has_backorder_room() {
                return Err(AllocateError::BackorderQueueFull { sku, max: stock::BACKORDERS_MAX });
            }
            return Ok((plan, remaining));
        }
        // Not short: held whole, from the same draw (any location).
        return Ok((plan, 0));
    }
    let scope = stock::Scope { locations: &request.locations, split: request.split, exact: None };
    let (plan, remaining) =
        entry.scoped_walk(&entry.available_now(), policy, request.min_shelf_life, wanted, now, &scope);
    let taken: u64 = plan.iter().map(|&(_, units)| units).sum();
    let short = remaining > 0 && request.fill == FillMode::FillOrKill;
    if short || taken == 0 {
        return Err(AllocateError::Insufficient { sku, requested: q(wanted), available: q(taken) });
    }
    Ok((plan, 0))
}

/// A request's input: its quantity, its locations (`InvalidLocations`,
/// then `BackorderWithLocations`: "backorders are filled from any
/// location").
fn validate_request(request: &AllocateRequest) -> Result<(), AllocateError> {
    let sku = request.sku;
    check(request.quantity).map(|_| ()).map_err(|zero| {
        if zero {
            AllocateError::ZeroQuantity { sku }
        } else {
            AllocateError::QuantityTooLarge { sku, quantity: request.quantity }
        }
    })?;
    stock::check_locations(sku, &request.locations)?;
    if request.backorder && request.locations != Locations::Any {
        return Err(AllocateError::BackorderWithLocations { sku });
    }
    Ok(())
}

/// Adds a hold of `plan` (units per lot index, possibly several entries per
/// lot) to `entry`, as one version: the new allocation.
fn hold(
    entry: &mut RefSku,
    plan: &[(usize, u64)],
    duration: Option<Duration>,
    hold_max: Duration,
    now: Timestamp,
    tag: u64,
    order: u64,
) -> Allocation {
    let mut hold = RefHold {
        tag,
        order,
        lines: Vec::new(),
        granted: 0,
        shorted: 0,
        backordered: 0,
        shelf_life: Duration::ZERO,
        deadline: duration.map(|d| later(now, d)),
        latest: later(now, hold_max),
    };
    for &(i, units) in plan {
        let lot = &mut entry.lots[i];
        lot.available -= units;
        lot.held += units;
        hold.add(lot.id, units);
        hold.granted += units;
    }
    // A reservation's seq is the version its allocation produced.
    entry.version += 1;
    let seq = entry.version;
    let lines = hold.public_lines();
    let deadline = hold.deadline;
    entry.holds.insert(seq, hold);
    let mut allocation = Allocation::new(ReservationId::new(entry.sku, seq), lines, deadline, entry.version);
    allocation.tag = tag;
    allocation
}

fn allocate(state: &mut State, request: &AllocateRequest, now: Timestamp) -> Result<Allocation, AllocateError> {
    let sku = request.sku;
    validate_request(request)?;
    let duration = hold_for(state, request.hold_for).map_err(|rejected| match rejected {
        None => AllocateError::ZeroHold { sku },
        Some(requested) => AllocateError::HoldTooLong { sku, requested, max: state.hold_max },
    })?;
    let (plan, waits) = plan(state, request, now)?;
    let hold_max = state.hold_max;
    let entry = state.skus.get_mut(&sku).expect("plan checked the SKU");
    if waits == 0 {
        return Ok(hold(entry, &plan, duration, hold_max, now, request.tag, 0));
    }
    // A backorder: granted the whole request, holding what there was,
    // waiting (in seq order, its allocation's version) for the rest.
    let mut allocation = hold(entry, &plan, duration, hold_max, now, request.tag, 0);
    let waiting = entry.holds.get_mut(&allocation.reservation.seq).expect("just made");
    waiting.granted += waits;
    waiting.backordered = waits;
    waiting.shelf_life = request.min_shelf_life;
    allocation.backordered = q(waits);
    Ok(allocation)
}

fn take(state: &mut State, request: &AllocateRequest, now: Timestamp) -> Result<Sale, AllocateError> {
    if request.backorder {
        // An immediate sale holds nothing to wait with; refused first.
        return Err(AllocateError::BackorderOnTake { sku: request.sku });
    }
    validate_request(request)?;
    let (plan, _) = plan(state, request, now)?;
    let entry = state.skus.get_mut(&request.sku).expect("plan checked the SKU");
    let mut lines = Vec::new();
    for &(i, units) in &plan {
        let lot = &mut entry.lots[i];
        lot.available -= units;
        lot.committed += units;
        lines.push(Line { lot: lot.id, quantity: q(units) });
    }
    entry.version += 1;
    Ok(Sale::new(request.sku, lines, entry.version))
}

fn release(state: &mut State, id: ReservationId, now: Timestamp) -> Result<Released, ReleaseError> {
    release_as(state, id, 0, now)
}

/// [`release`] on behalf of order `as_order` (0: the caller itself).
fn release_as(state: &mut State, id: ReservationId, as_order: u64, now: Timestamp) -> Result<Released, ReleaseError> {
    let entry = state.skus.get_mut(&id.sku).ok_or(ReleaseError::UnknownSku { id })?;
    let swept = entry.sweep(now, false);
    let lines = match entry.lookup(id.seq, &swept) {
        Ok(hold) if hold.order != as_order => {
            return Err(if as_order == 0 {
                ReleaseError::OrderPart { id, order: OrderId(hold.order) }
            } else {
                ReleaseError::UnknownReservation { id }
            });
        }
        Ok(hold) => hold.public_lines(),
        Err(NotLive::Unknown) => return Err(ReleaseError::UnknownReservation { id }),
        Err(NotLive::Ended) => return Err(ReleaseError::Ended { id }),
        Err(NotLive::Expired(deadline)) => return Err(ReleaseError::Expired { id, deadline }),
    };
    entry.end(id.seq, 0);
    if !lines.is_empty() {
        entry.fill_waiting(now);
    }
    entry.version += 1;
    Ok(Released::new(id, lines, entry.version))
}

fn commit(
    state: &mut State,
    id: ReservationId,
    quantity: Option<u64>,
    now: Timestamp,
) -> Result<Committed, CommitError> {
    commit_as(state, id, quantity, 0, now)
}

/// [`commit`] on behalf of order `as_order` (0: the caller itself).
fn commit_as(
    state: &mut State,
    id: ReservationId,
    quantity: Option<u64>,
    as_order: u64,
    now: Timestamp,
) -> Result<Committed, CommitError> {
    let wanted = match quantity {
        None => None,
        Some(0) => return Err(CommitError::ZeroQuantity { id }),
        Some(raw) if raw > MAX => return Err(CommitError::QuantityTooLarge { id, quantity: raw }),
        Some(raw) => Some(raw),
    };
    let entry = state.skus.get_mut(&id.sku).ok_or(CommitError::UnknownSku { id })?;
    let swept = entry.sweep(now, false);
    let held = match entry.lookup(id.seq, &swept) {
        Ok(hold) if hold.order != as_order => {
            return Err(if as_order == 0 {
                CommitError::OrderPart { id, order: OrderId(hold.order) }
            } else {
                CommitError::UnknownReservation { id }
            });
        }
        Ok(hold) if hold.backordered > 0 => {
            return Err(CommitError::Waiting { id, outstanding: q(hold.backordered) });
        }
        Ok(hold) => hold.held(),
        Err(NotLive::Unknown) => return Err(CommitError::UnknownReservation { id }),
        Err(NotLive::Ended) => return Err(CommitError::Ended { id }),
        Err(NotLive::Expired(deadline)) => return Err(CommitError::Expired { id, deadline }),
    };
    let remaining = wanted.unwrap_or(held);
    if remaining > held {
        return Err(CommitError::ExceedsHeld { id, requested: q(remaining), held: q(held) });
    }
    let (committed, returned) = entry.end(id.seq, remaining);
    if !returned.is_empty() {
        entry.fill_waiting(now);
    }
    entry.version += 1;
    Ok(Committed::new(id, committed, returned, entry.version))
}

fn extend(state: &mut State, id: ReservationId, by: Duration, now: Timestamp) -> Result<Extended, ExtendError> {
    extend_as(state, id, by, 0, now)
}

/// [`extend`] on behalf of order `as_order` (0: the caller itself).
fn extend_as(
    state: &mut State,
    id: ReservationId,
    by: Duration,
    as_order: u64,
    now: Timestamp,
) -> Result<Extended, ExtendError> {
    if by < Duration::from_millis(1) {
        return Err(ExtendError::ZeroDuration { id });
    }
    let entry = state.skus.get_mut(&id.sku).ok_or(ExtendError::UnknownSku { id })?;
    let swept = entry.sweep(now, false);
    let (deadline, latest) = match entry.lookup(id.seq, &swept) {
        Ok(hold) if hold.order != as_order => {
            return Err(if as_order == 0 {
                ExtendError::OrderPart { id, order: OrderId(hold.order) }
            } else {
                ExtendError::UnknownReservation { id }
            });
        }
        Ok(hold) => (hold.deadline, hold.latest),
        Err(NotLive::Unknown) => return Err(ExtendError::UnknownReservation { id }),
        Err(NotLive::Ended) => return Err(ExtendError::Ended { id }),
        Err(NotLive::Expired(deadline)) => return Err(ExtendError::Expired { id, deadline }),
    };
    let deadline = deadline.ok_or(ExtendError::NoDeadline { id })?;
    let requested = later(deadline, by);
    if requested > latest {
        return Err(ExtendError::BeyondMaximum { id, requested, latest });
    }
    entry.holds.get_mut(&id.seq).expect("looked up above").deadline = Some(requested);
    entry.version += 1;
    Ok(Extended::new(id, requested, entry.version))
}

fn adjust(
    state: &mut State,
    sku: SkuId,
    lot: LotId,
    delta: i64,
    reason: AdjustmentReason,
    expected_version: Option<u64>,
    now: Timestamp,
) -> Result<Adjusted, AdjustError> {
    if delta == 0 {
        return Err(AdjustError::ZeroDelta { sku, lot });
    }
    if delta.unsigned_abs() > MAX {
        return Err(AdjustError::DeltaTooLarge { sku, lot, delta });
    }
    let entry = state.skus.get_mut(&sku).ok_or(AdjustError::UnknownSku { sku })?;
    entry.sweep(now, false);
    let i = entry.index_of(lot).ok_or(AdjustError::UnknownLot { sku, lot })?;
    if let Some(expected) = expected_version {
        if expected != entry.version {
            return Err(AdjustError::VersionMismatch { sku, expected, current: entry.version });
        }
    }
    let size = delta.unsigned_abs();
    let on_hand = entry.lots[i].available + entry.lots[i].held;
    let out_of_range = if delta > 0 { entry.inflow + size > MAX } else { size > on_hand };
    if out_of_range {
        return Err(AdjustError::OutOfRange { sku, lot, on_hand: q(on_hand), delta });
    }
    let mut shortfalls = Vec::new();
    if delta > 0 {
        entry.inflow += size;
        entry.lots[i].available += size;
    } else {
        let from_available = entry.lots[i].available.min(size);
        entry.lots[i].available -= from_available;
        // Newest reservation first; each loss re-sourced before the next.
        shortfalls = entry.displace(i, size - from_available, now);
    }
    entry.lots[i].adjusted += delta;
    // The page: "Outcome `quantities` are the adjusted lot's counters
    // after the adjustment and its re-sourcing"; backorders the growth
    // fills in the same version are reported as fills.
    let after = entry.lots[i].quantities(None);
    if delta > 0 {
        entry.fill_waiting(now);
    }
    entry.version += 1;
    Ok(Adjusted::new(sku, lot, delta, reason, after, shortfalls, entry.version))
}

fn set_low_stock(
    state: &mut State,
    sku: SkuId,
    rule: Option<LowStock>,
    now: Timestamp,
) -> Result<LowStockSet, ThresholdError> {
    if let Some(rule) = rule {
        for raw in [rule.threshold, rule.margin] {
            if raw > MAX {
                return Err(ThresholdError::TooLarge { sku, threshold: raw });
            }
        }
    }
    let entry = state.skus.get_mut(&sku).ok_or(ThresholdError::UnknownSku { sku })?;
    entry.sweep(now, false);
    entry.low_stock = rule;
    entry.version += 1;
    Ok(LowStockSet::new(sku, rule, entry.version))
}

fn allocate_order(state: &mut State, order: &OrderRequest, now: Timestamp) -> Result<OrderAllocation, OrderError> {
    if order.lines.is_empty() {
        return Err(OrderError::Empty);
    }
    if order.lines.len() > OrderRequest::LINES_MAX {
        return Err(OrderError::TooManyLines { lines: order.lines.len(), max: OrderRequest::LINES_MAX });
    }
    let duration = hold_for(state, order.hold_for).map_err(|rejected| match rejected {
        None => OrderError::ZeroHold,
        Some(requested) => OrderError::HoldTooLong { requested, max: state.hold_max },
    })?;
    // Every line's kit expanded (a kit of zero, or one whose components
    // would pass the maximum, is refused as the kit's line), then every
    // expanded line's quantity, then every line's SKU.
    let mut expanded: Vec<(usize, SkuId, u64)> = Vec::new();
    for (index, line) in order.lines.iter().enumerate() {
        expanded.extend(shop::kit_lines(state, index, line)?);
    }
    for &(index, sku, quantity) in &expanded {
        // Each line's request carries the order's locations (checked as a
        // request's are) and split.
        let mut request = AllocateRequest::new(sku, quantity).split(order.split);
        request.locations = order.locations.clone();
        validate_request(&request).map_err(|error| OrderError::Line { index, error })?;
    }
    for (index, line) in order.lines.iter().enumerate() {
        if !state.skus.contains_key(&line.sku) && !state.kits.contains_key(&line.sku) {
            return Err(OrderError::Line { index, error: AllocateError::UnknownSku { sku: line.sku } });
        }
    }
    // Expanded lines per SKU (line index and units), SKUs ascending, lines
    // in index order.
    let mut groups: BTreeMap<SkuId, Vec<(usize, u64)>> = BTreeMap::new();
    for &(index, sku, quantity) in &expanded {
        groups.entry(sku).or_default().push((index, quantity));
    }
    state.last_order += 1;
    let order_id = OrderId(state.last_order);
    // The page: "a request is covered from one location unless
    // `split(true)`"; `OrderRequest::split`: "by default every part comes
    // from one location: the first, in rank order, that covers every line".
    // An unsplit order tries each candidate location in turn (see
    // `stock::order_candidates`), each attempt a whole order of its own
    // whose parts are released if it fails; the first attempt's refusal is
    // the answer if none succeeds (silent, as the ledger).
    let skus: Vec<SkuId> = groups.keys().copied().collect();
    let candidates = stock::order_candidates(state, order, &skus);
    let attempts: Vec<Option<Option<LocationId>>> =
        if candidates.is_empty() { vec![None] } else { candidates.into_iter().map(Some).collect() };
    let mut first_refusal = None;
    for exact in attempts {
        let scope = stock::Scope { locations: &order.locations, split: order.split, exact };
        match order_attempt(state, order, &groups, &scope, duration, order_id, now) {
            Ok(made) => {
                let parts = made.iter().map(|allocation| allocation.reservation).collect();
                let deadline = made.first().and_then(|allocation| allocation.deadline);
                state.orders.insert(order_id.0, shop::RefOrder::new(order.tag, parts, deadline));
                return Ok(OrderAllocation::new(order_id, made));
            }
            Err(error) => {
                first_refusal.get_or_insert(error);
            }
        }
    }
    Err(first_refusal.expect("at least one attempt"))
}

/// One attempt at an order's parts within `scope`: per SKU (ascending,
/// after its sweep) one allocation whose lines are planned one after the
/// other, each a fill-or-kill draw on what the previous lines of that SKU
/// left; the first line that is short refuses the attempt, and the SKU
/// parts already made are released, most recent first.
fn order_attempt(
    state: &mut State,
    order: &OrderRequest,
    groups: &BTreeMap<SkuId, Vec<(usize, u64)>>,
    scope: &stock::Scope<'_>,
    duration: Option<Duration>,
    order_id: OrderId,
    now: Timestamp,
) -> Result<Vec<Allocation>, OrderError> {
    let hold_max = state.hold_max;
    let mut made: Vec<Allocation> = Vec::new();
    for (&sku, indices) in groups {
        let entry = state.skus.get_mut(&sku).expect("checked above");
        entry.sweep(now, false);
        let mut available = entry.available_now();
        let mut plan = Vec::new();
        let mut short = None;
        for &(index, quantity) in indices {
            let line = &order.lines[index];
            let policy = line.policy.unwrap_or(entry.policy);
            let (walk, remaining) = entry.scoped_walk(&available, policy, line.min_shelf_life, quantity, now, scope);
            let taken: u64 = walk.iter().map(|&(_, units)| units).sum();
            if remaining > 0 {
                let error = AllocateError::Insufficient { sku, requested: q(quantity), available: q(taken) };
                short = Some(OrderError::Line { index, error });
                break;
            }
            for &(i, units) in &walk {
                available[i] -= units;
            }
            plan.extend(walk);
        }
        if let Some(error) = short {
            // The SKU parts already made are released, most recent first.
            // (A hold made with a deadline of `now` itself, from a sub-millisecond
            // duration, has lapsed already: its release sweeps it instead.)
            for allocation in made.iter().rev() {
                let _ = release_as(state, allocation.reservation, order_id.0, now);
            }
            return Err(error);
        }
        made.push(hold(entry, &plan, duration, hold_max, now, order.tag, order_id.0));
    }
    Ok(made)
}

fn expire_due(state: &mut State, at: Timestamp, clock: Timestamp) -> Result<ExpiryReport, ExpireError> {
    let write_off = state.write_off;
    sweep_all(state, at, clock, write_off)
}

/// `expire_due` (and `write_off_expired`, `write_off` set) at `at` with the
/// clock reading `clock`: every SKU swept in ascending id order.
fn sweep_all(state: &mut State, at: Timestamp, clock: Timestamp, write_off: bool) -> Result<ExpiryReport, ExpireError> {
    if at > clock {
        return Err(ExpireError::InFuture { now: at, clock });
    }
    let swept = state.skus.values_mut().filter_map(|entry| entry.sweep_with(at, true, write_off, clock)).collect();
    Ok(ExpiryReport::new(swept))
}

/// The SKUs a command operates on, each swept first when it runs: every
/// line's SKU of an order (ascending, once each), every `defined` SKU for
/// `expire_due`, else the command's one SKU.
pub fn touched(command: &Command, defined: &[SkuId]) -> Vec<SkuId> {
    match command {
        Command::AllocateOrder(order) => {
            let mut skus: Vec<SkuId> = order.lines.iter().map(|line| line.sku).collect();
            skus.sort();
            skus.dedup();
            skus
        }
        Command::ExpireDue { .. }
        | Command::CommitOrder { .. }
        | Command::ReleaseOrder { .. }
        | Command::ExtendOrder { .. } => defined.to_vec(),
        Command::Return(request) if matches!(request.source, ReturnSource::Order(_)) => defined.to_vec(),
        other => other.sku().into_iter().collect(),
    }
}
