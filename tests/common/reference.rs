//! A slow, obviously-correct reference ledger, written from
//! `docs/semantics.md` alone (not from `src/`), for the model-based
//! proptest, the fuzzer and the linearizability checker to compare the real
//! [`stockroom::Ledger`] against.
//!
//! Everything sits behind one `Mutex`; lots are kept in arrival order and
//! re-sorted by policy on every use; counters are plain `u64`/`i64`. It uses
//! only `stockroom`'s public types and `std`, so other crates can include it
//! with `#[path = "../../tests/common/reference.rs"] mod reference;`.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stockroom::{
    AdjustError, Adjusted, AdjustmentReason, AllocateError, AllocateRequest, Allocation, AllocationPolicy, Command,
    CommandError, CommitError, Committed, DefineError, FillMode, Line, LotAttributes, LotId, LotQuantities,
    LotSnapshot, NewLot, Outcome, Quantity, QueryError, ReceiveError, Received, ReleaseError, Released, Reservation,
    ReservationId, Sale, Shortfall, SkuDefined, SkuId, SnapshotData, Timestamp,
};

/// The largest quantity, as a plain number.
const MAX: u64 = Quantity::MAX.get();

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

#[derive(Clone, Debug)]
struct RefLot {
    id: LotId,
    /// 0, 1, 2, … in the order the SKU received its lots.
    arrival: usize,
    received_at: Timestamp,
    expires_at: Option<Timestamp>,
    attributes: Option<LotAttributes>,
    received: u64,
    adjusted: i64,
    available: u64,
    held: u64,
    committed: u64,
}

impl RefLot {
    fn quantities(&self) -> LotQuantities {
        LotQuantities {
            received: q(self.received),
            adjusted: self.adjusted,
            available: q(self.available),
            held: q(self.held),
            committed: q(self.committed),
        }
    }

    /// Eligible at `now` with `shelf_life`: no expiry, or expiry strictly
    /// after `now + shelf_life` (milliseconds, saturating).
    fn eligible(&self, now: Timestamp, shelf_life: Duration) -> bool {
        let shelf_millis = u64::try_from(shelf_life.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now.as_millis().saturating_add(shelf_millis);
        match self.expires_at {
            None => true,
            Some(expiry) => expiry.as_millis() > cutoff,
        }
    }

    fn snapshot(&self) -> LotSnapshot {
        LotSnapshot {
            id: self.id,
            received_at: self.received_at,
            expires_at: self.expires_at,
            attributes: self.attributes.clone().map(Arc::new),
            quantities: self.quantities(),
        }
    }
}

#[derive(Clone, Debug)]
struct RefHold {
    /// `(lot id, units)`, in the order the policy drew them; never zero.
    lines: Vec<(LotId, u64)>,
    granted: u64,
    shorted: u64,
}

impl RefHold {
    fn public_lines(&self) -> Vec<Line> {
        self.lines.iter().map(|&(lot, units)| Line { lot, quantity: q(units) }).collect()
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
    /// How many reservations this SKU has issued (seqs 1..=issued).
    issued: u64,
    /// Receipts plus positive adjustments.
    inflow: u64,
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
            }
        });
        indices
    }

    fn index_of(&self, lot: LotId) -> Option<usize> {
        self.lots.iter().position(|l| l.id == lot)
    }

    fn data(&self) -> SnapshotData {
        let lots: Vec<LotSnapshot> = self.order(self.policy).into_iter().map(|i| self.lots[i].snapshot()).collect();
        let mut totals = (0u64, 0i64, 0u64, 0u64, 0u64);
        for lot in &self.lots {
            totals.0 += lot.received;
            totals.1 += lot.adjusted;
            totals.2 += lot.available;
            totals.3 += lot.held;
            totals.4 += lot.committed;
        }
        let reservations = self
            .holds
            .iter()
            .map(|(&seq, hold)| Reservation {
                id: ReservationId { sku: self.sku, seq },
                lines: hold.public_lines(),
                granted: q(hold.granted),
                shorted: q(hold.shorted),
            })
            .collect();
        SnapshotData {
            sku: self.sku,
            version: self.version,
            policy: self.policy,
            lots,
            reservations,
            totals: LotQuantities {
                received: q(totals.0),
                adjusted: totals.1,
                available: q(totals.2),
                held: q(totals.3),
                committed: q(totals.4),
            },
        }
    }

    /// The policy walk: `(lot index, units)` in walk order, and the units
    /// still wanted after it.
    fn walk(&self, request: &AllocateRequest, wanted: u64, now: Timestamp) -> (Vec<(usize, u64)>, u64) {
        let mut remaining = wanted;
        let mut plan = Vec::new();
        for i in self.order(request.policy.unwrap_or(self.policy)) {
            let lot = &self.lots[i];
            if remaining == 0 {
                break;
            }
            if lot.available == 0 || !lot.eligible(now, request.min_shelf_life) {
                continue;
            }
            let units = lot.available.min(remaining);
            plan.push((i, units));
            remaining -= units;
        }
        (plan, remaining)
    }

    /// Checks which of a reservation's seq is live: `Ok(())`, or
    /// `Err(true)` for never issued, `Err(false)` for ended.
    fn lookup(&self, seq: u64) -> Result<(), bool> {
        if seq == 0 || seq > self.issued {
            Err(true)
        } else if self.holds.contains_key(&seq) {
            Ok(())
        } else {
            Err(false)
        }
    }
}

#[derive(Debug, Default)]
struct State {
    skus: BTreeMap<SkuId, RefSku>,
}

/// The reference ledger: the semantics page, executed as literally as
/// possible.
#[derive(Debug, Default)]
pub struct ReferenceLedger {
    state: Mutex<State>,
}

impl ReferenceLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        ReferenceLedger { state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one command at instant `now` (the clock reading the real
    /// ledger would use).
    pub fn execute(&self, command: &Command, now: Timestamp) -> Result<Outcome, CommandError> {
        let mut state = self.lock();
        Ok(match command {
            Command::DefineSku { sku, policy } => Outcome::SkuDefined(define(&mut state, *sku, *policy)?),
            Command::Receive { sku, lot } => Outcome::Received(receive(&mut state, *sku, lot, now)?),
            Command::Allocate(request) => Outcome::Allocated(allocate(&mut state, request, now)?),
            Command::Take(request) => Outcome::Sold(take(&mut state, request, now)?),
            Command::Release { reservation } => Outcome::Released(release(&mut state, *reservation)?),
            Command::Commit { reservation, quantity } => {
                Outcome::Committed(commit(&mut state, *reservation, *quantity)?)
            }
            Command::Adjust { sku, lot, delta, reason } => {
                Outcome::Adjusted(adjust(&mut state, *sku, *lot, *delta, *reason)?)
            }
        })
    }

    /// The SKU's current state, or `None` if it is not defined.
    pub fn snapshot(&self, sku: SkuId) -> Option<SnapshotData> {
        self.lock().skus.get(&sku).map(RefSku::data)
    }

    /// Every defined SKU, sorted.
    pub fn skus(&self) -> Vec<SkuId> {
        self.lock().skus.keys().copied().collect()
    }

    /// What `Ledger::reservation` should answer.
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, QueryError> {
        let state = self.lock();
        let sku = state.skus.get(&id.sku).ok_or(QueryError::UnknownSku { sku: id.sku })?;
        match sku.lookup(id.seq) {
            Err(true) => Err(QueryError::UnknownReservation { id }),
            Err(false) => Err(QueryError::Ended { id }),
            Ok(()) => {
                let hold = &sku.holds[&id.seq];
                Ok(Reservation { id, lines: hold.public_lines(), granted: q(hold.granted), shorted: q(hold.shorted) })
            }
        }
    }

    /// What `Ledger::available` should answer at `now`: every available
    /// unit of an eligible lot.
    pub fn available(&self, sku: SkuId, now: Timestamp, min_shelf_life: Duration) -> Result<Quantity, QueryError> {
        let state = self.lock();
        let sku = state.skus.get(&sku).ok_or(QueryError::UnknownSku { sku })?;
        Ok(q(sku.lots.iter().filter(|lot| lot.eligible(now, min_shelf_life)).map(|lot| lot.available).sum()))
    }
}

fn define(state: &mut State, sku: SkuId, policy: AllocationPolicy) -> Result<SkuDefined, DefineError> {
    if state.skus.contains_key(&sku) {
        return Err(DefineError::AlreadyDefined { sku });
    }
    let fresh = RefSku { sku, version: 0, policy, lots: Vec::new(), holds: BTreeMap::new(), issued: 0, inflow: 0 };
    state.skus.insert(sku, fresh);
    Ok(SkuDefined { sku, version: 0 })
}

fn receive(state: &mut State, sku: SkuId, lot: &NewLot, now: Timestamp) -> Result<Received, ReceiveError> {
    let units = check(lot.quantity).map_err(|zero| {
        if zero {
            ReceiveError::ZeroQuantity { sku, lot: lot.id }
        } else {
            ReceiveError::QuantityTooLarge { sku, lot: lot.id, quantity: lot.quantity }
        }
    })?;
    let entry = state.skus.get_mut(&sku).ok_or(ReceiveError::UnknownSku { sku })?;
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
        received: units,
        adjusted: 0,
        available: units,
        held: 0,
        committed: 0,
    });
    entry.version += 1;
    Ok(Received { sku, lot: lot.id, received_at, version: entry.version })
}

/// The shared front half of allocate and take: validation and the walk.
fn plan(state: &mut State, request: &AllocateRequest, now: Timestamp) -> Result<Vec<(usize, u64)>, AllocateError> {
    let sku = request.sku;
    let wanted = check(request.quantity).map_err(|zero| {
        if zero {
            AllocateError::ZeroQuantity { sku }
        } else {
            AllocateError::QuantityTooLarge { sku, quantity: request.quantity }
        }
    })?;
    let entry = state.skus.get(&sku).ok_or(AllocateError::UnknownSku { sku })?;
    let (plan, remaining) = entry.walk(request, wanted, now);
    let taken: u64 = plan.iter().map(|&(_, units)| units).sum();
    let short = remaining > 0 && request.fill == FillMode::FillOrKill;
    if short || taken == 0 {
        return Err(AllocateError::Insufficient { sku, requested: q(wanted), available: q(taken) });
    }
    Ok(plan)
}

fn allocate(state: &mut State, request: &AllocateRequest, now: Timestamp) -> Result<Allocation, AllocateError> {
    let plan = plan(state, request, now)?;
    let entry = state.skus.get_mut(&request.sku).expect("plan checked the SKU");
    let mut lines = Vec::new();
    for &(i, units) in &plan {
        let lot = &mut entry.lots[i];
        lot.available -= units;
        lot.held += units;
        lines.push((lot.id, units));
    }
    entry.issued += 1;
    let seq = entry.issued;
    let granted = lines.iter().map(|&(_, units)| units).sum();
    let hold = RefHold { lines, granted, shorted: 0 };
    let public = hold.public_lines();
    entry.holds.insert(seq, hold);
    entry.version += 1;
    Ok(Allocation { reservation: ReservationId { sku: request.sku, seq }, lines: public, version: entry.version })
}

fn take(state: &mut State, request: &AllocateRequest, now: Timestamp) -> Result<Sale, AllocateError> {
    let plan = plan(state, request, now)?;
    let entry = state.skus.get_mut(&request.sku).expect("plan checked the SKU");
    let mut lines = Vec::new();
    for &(i, units) in &plan {
        let lot = &mut entry.lots[i];
        lot.available -= units;
        lot.committed += units;
        lines.push(Line { lot: lot.id, quantity: q(units) });
    }
    entry.version += 1;
    Ok(Sale { sku: request.sku, lines, version: entry.version })
}

fn release(state: &mut State, id: ReservationId) -> Result<Released, ReleaseError> {
    let entry = state.skus.get_mut(&id.sku).ok_or(ReleaseError::UnknownSku { id })?;
    match entry.lookup(id.seq) {
        Err(true) => return Err(ReleaseError::UnknownReservation { id }),
        Err(false) => return Err(ReleaseError::Ended { id }),
        Ok(()) => {}
    }
    let hold = entry.holds.remove(&id.seq).expect("lookup found the hold");
    for &(lot_id, units) in &hold.lines {
        let i = entry.index_of(lot_id).expect("a hold line names a lot of its SKU");
        entry.lots[i].held -= units;
        entry.lots[i].available += units;
    }
    entry.version += 1;
    Ok(Released { reservation: id, lines: hold.public_lines(), version: entry.version })
}

fn commit(state: &mut State, id: ReservationId, quantity: Option<u64>) -> Result<Committed, CommitError> {
    let wanted = match quantity {
        None => None,
        Some(0) => return Err(CommitError::ZeroQuantity { id }),
        Some(raw) if raw > MAX => return Err(CommitError::QuantityTooLarge { id, quantity: raw }),
        Some(raw) => Some(raw),
    };
    let entry = state.skus.get_mut(&id.sku).ok_or(CommitError::UnknownSku { id })?;
    match entry.lookup(id.seq) {
        Err(true) => return Err(CommitError::UnknownReservation { id }),
        Err(false) => return Err(CommitError::Ended { id }),
        Ok(()) => {}
    }
    let held: u64 = entry.holds[&id.seq].lines.iter().map(|&(_, units)| units).sum();
    let mut remaining = wanted.unwrap_or(held);
    if remaining > held {
        return Err(CommitError::ExceedsHeld { id, requested: q(remaining), held: q(held) });
    }
    let hold = entry.holds.remove(&id.seq).expect("lookup found the hold");
    let mut committed = Vec::new();
    let mut returned = Vec::new();
    for &(lot_id, units) in &hold.lines {
        let leaving = units.min(remaining);
        remaining -= leaving;
        let staying = units - leaving;
        let i = entry.index_of(lot_id).expect("a hold line names a lot of its SKU");
        let lot = &mut entry.lots[i];
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
    entry.version += 1;
    Ok(Committed { reservation: id, committed, returned, version: entry.version })
}

fn adjust(
    state: &mut State,
    sku: SkuId,
    lot: LotId,
    delta: i64,
    reason: AdjustmentReason,
) -> Result<Adjusted, AdjustError> {
    if delta == 0 {
        return Err(AdjustError::ZeroDelta { sku, lot });
    }
    if delta.unsigned_abs() > MAX {
        return Err(AdjustError::DeltaTooLarge { sku, lot, delta });
    }
    let entry = state.skus.get_mut(&sku).ok_or(AdjustError::UnknownSku { sku })?;
    let i = entry.index_of(lot).ok_or(AdjustError::UnknownLot { sku, lot })?;
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
        let mut rest = size - from_available;
        // Newest reservation first.
        for (&seq, hold) in entry.holds.iter_mut().rev() {
            if rest == 0 {
                break;
            }
            let Some(at) = hold.lines.iter().position(|&(line_lot, _)| line_lot == lot) else {
                continue;
            };
            let taken = hold.lines[at].1.min(rest);
            hold.lines[at].1 -= taken;
            if hold.lines[at].1 == 0 {
                hold.lines.remove(at);
            }
            hold.shorted += taken;
            rest -= taken;
            entry.lots[i].held -= taken;
            shortfalls.push(Shortfall { reservation: ReservationId { sku, seq }, quantity: q(taken) });
        }
        assert_eq!(rest, 0, "reference: the holds on a lot add up to its held units");
    }
    entry.lots[i].adjusted += delta;
    entry.version += 1;
    Ok(Adjusted { sku, lot, delta, reason, quantities: entry.lots[i].quantities(), shortfalls, version: entry.version })
}
