//! The per-SKU mutex baseline of issue 13, written plainly, as a team
//! would write it instead of stockroom: a `DashMap<SkuId,
//! parking_lot::Mutex<SkuState>>`, each SKU's lots in FEFO order, expiry
//! checked against the clock read once per allocating operation, and live
//! holds in a `HashMap<u64, Hold>` (with a `BTreeSet` of deadlines, so a
//! lapsed hold returns its units at the next allocating operation).
//!
//! Owns: the baseline's state and its operations. Must never: be tuned
//! beyond what a plain version would do (no cursor over sold-out lots, no
//! custom hasher): it is the yardstick, not a competitor to optimise.
//!
//! The clock is the same `Arc<dyn Clock>` stockroom takes, so both read
//! wall time (or the same manual clock) the same way.

// Each bench uses the part of the baseline its workloads need.
#![allow(dead_code)]

use dashmap::DashMap;
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use stockroom::{Clock, LotId, SkuId, Timestamp};

/// Lines of a hold or sale: (arrival index of the lot, units). Two inline,
/// so a one- or two-lot order allocates nothing.
pub(crate) type Lines = SmallVec<[(u32, u64); 2]>;

/// A hold's id: its SKU and the SKU-local sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HoldId {
    /// The SKU.
    pub(crate) sku: SkuId,
    /// 1, 2, 3, … per SKU.
    pub(crate) seq: u64,
}

/// Why the baseline said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No such SKU (or it is already defined, for `define_sku`).
    Sku,
    /// No such lot (or a duplicate lot id, for `receive`).
    Lot,
    /// Not enough unexpired units.
    Insufficient,
    /// No such live hold.
    Hold,
    /// The hold's deadline had passed; its units went back.
    Lapsed,
}

/// One lot's counters: `received + adjusted = available + held + committed`.
#[derive(Clone, Debug)]
pub(crate) struct Lot {
    /// The lot id.
    pub(crate) id: LotId,
    /// When it expires, if ever.
    pub(crate) expires_at: Option<Timestamp>,
    /// When it was received (the clock at receipt).
    pub(crate) received_at: Timestamp,
    /// Units received.
    pub(crate) received: u64,
    /// Net units adjustments added (negative: removed).
    pub(crate) adjusted: i64,
    /// Units free to allocate.
    pub(crate) available: u64,
    /// Units held by live holds.
    pub(crate) held: u64,
    /// Units sold.
    pub(crate) committed: u64,
}

struct Hold {
    lines: Lines,
    deadline: Option<Timestamp>,
}

/// One SKU behind its mutex.
#[derive(Default)]
pub(crate) struct SkuState {
    /// Arrival order; lines name lots by index here.
    lots: Vec<Lot>,
    /// Arrival indices in FEFO order (earliest expiry first, then arrival).
    fefo: Vec<u32>,
    /// Lot id to arrival index.
    by_id: HashMap<LotId, u32>,
    holds: HashMap<u64, Hold>,
    deadlines: BTreeSet<(Timestamp, u64)>,
    next_seq: u64,
}

impl SkuState {
    /// FEFO, fill-or-kill: the lines that would cover `want`, or `None`.
    fn plan(&self, now: Timestamp, mut want: u64) -> Option<Lines> {
        let mut lines = Lines::new();
        for &index in &self.fefo {
            let lot = &self.lots[index as usize];
            if lot.available == 0 || lot.expires_at.is_some_and(|expiry| expiry <= now) {
                continue;
            }
            let take = lot.available.min(want);
            lines.push((index, take));
            want -= take;
            if want == 0 {
                return Some(lines);
            }
        }
        None
    }

    /// Returns every hold whose deadline is at or before `now`.
    fn sweep(&mut self, now: Timestamp) {
        while let Some(&(deadline, seq)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(hold) = self.holds.remove(&seq) {
                self.give_back(&hold.lines);
            }
        }
    }

    fn give_back(&mut self, lines: &Lines) {
        for &(index, units) in lines {
            let lot = &mut self.lots[index as usize];
            lot.held -= units;
            lot.available += units;
        }
    }

    fn end(&mut self, seq: u64, now: impl FnOnce() -> Timestamp) -> Result<Lines, Refused> {
        let hold = self.holds.remove(&seq).ok_or(Refused::Hold)?;
        if let Some(deadline) = hold.deadline {
            self.deadlines.remove(&(deadline, seq));
            if deadline <= now() {
                self.give_back(&hold.lines);
                return Err(Refused::Lapsed);
            }
        }
        Ok(hold.lines)
    }

    /// The lots, in arrival order.
    pub(crate) fn lots(&self) -> &[Lot] {
        &self.lots
    }

    /// Live holds.
    pub(crate) fn hold_count(&self) -> usize {
        self.holds.len()
    }
}

/// The baseline ledger.
pub(crate) struct MutexLedger {
    skus: DashMap<SkuId, Mutex<SkuState>>,
    clock: Arc<dyn Clock>,
}

impl MutexLedger {
    /// An empty ledger reading `clock`.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> MutexLedger {
        MutexLedger { skus: DashMap::new(), clock }
    }

    /// Defines an empty SKU.
    pub(crate) fn define_sku(&self, sku: SkuId) -> Result<(), Refused> {
        match self.skus.entry(sku) {
            dashmap::Entry::Occupied(_) => Err(Refused::Sku),
            dashmap::Entry::Vacant(slot) => {
                slot.insert(Mutex::new(SkuState::default()));
                Ok(())
            }
        }
    }

    /// Receives a lot, placing it in FEFO order.
    pub(crate) fn receive(
        &self,
        sku: SkuId,
        id: LotId,
        units: u64,
        expires_at: Option<Timestamp>,
    ) -> Result<(), Refused> {
        let received_at = self.clock.now();
        let cell = self.skus.get(&sku).ok_or(Refused::Sku)?;
        let mut state = cell.lock();
        let arrival = u32::try_from(state.lots.len()).map_err(|_| Refused::Lot)?;
        match state.by_id.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => return Err(Refused::Lot),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(arrival),
        };
        let lot =
            Lot { id, expires_at, received_at, received: units, adjusted: 0, available: units, held: 0, committed: 0 };
        state.lots.push(lot);
        let key = |lot: &Lot, arrival: u32| (lot.expires_at.is_none(), lot.expires_at, arrival);
        let place = state.fefo.partition_point(|&other| {
            key(&state.lots[other as usize], other) < key(&state.lots[arrival as usize], arrival)
        });
        state.fefo.insert(place, arrival);
        Ok(())
    }

    /// Holds `units`, FEFO, for at most `hold_for` (or until ended).
    pub(crate) fn allocate(
        &self,
        sku: SkuId,
        units: u64,
        hold_for: Option<Duration>,
    ) -> Result<(HoldId, Lines), Refused> {
        let now = self.clock.now();
        let cell = self.skus.get(&sku).ok_or(Refused::Sku)?;
        let mut state = cell.lock();
        state.sweep(now);
        let lines = state.plan(now, units).ok_or(Refused::Insufficient)?;
        for &(index, take) in &lines {
            let lot = &mut state.lots[index as usize];
            lot.available -= take;
            lot.held += take;
        }
        state.next_seq += 1;
        let seq = state.next_seq;
        let deadline = hold_for.map(|d| now.saturating_add(d));
        if let Some(deadline) = deadline {
            state.deadlines.insert((deadline, seq));
        }
        state.holds.insert(seq, Hold { lines: lines.clone(), deadline });
        Ok((HoldId { sku, seq }, lines))
    }

    /// Sells `units` outright, FEFO.
    pub(crate) fn take(&self, sku: SkuId, units: u64) -> Result<Lines, Refused> {
        let now = self.clock.now();
        let cell = self.skus.get(&sku).ok_or(Refused::Sku)?;
        let mut state = cell.lock();
        state.sweep(now);
        let lines = state.plan(now, units).ok_or(Refused::Insufficient)?;
        for &(index, take) in &lines {
            let lot = &mut state.lots[index as usize];
            lot.available -= take;
            lot.committed += take;
        }
        Ok(lines)
    }

    /// Ends a hold: its units leave the building.
    pub(crate) fn commit(&self, id: HoldId) -> Result<Lines, Refused> {
        let cell = self.skus.get(&id.sku).ok_or(Refused::Sku)?;
        let mut state = cell.lock();
        let lines = state.end(id.seq, || self.clock.now())?;
        for &(index, units) in &lines {
            let lot = &mut state.lots[index as usize];
            lot.held -= units;
            lot.committed += units;
        }
        Ok(lines)
    }

    /// Ends a hold: its units are available again.
    pub(crate) fn release(&self, id: HoldId) -> Result<Lines, Refused> {
        let cell = self.skus.get(&id.sku).ok_or(Refused::Sku)?;
        let mut state = cell.lock();
        let lines = state.end(id.seq, || self.clock.now())?;
        state.give_back(&lines);
        Ok(lines)
    }

    /// Adds `delta` units to a lot (a shrink takes at most its available
    /// units: a plain version does not displace holds); returns the delta
    /// applied.
    pub(crate) fn adjust(&self, sku: SkuId, id: LotId, delta: i64) -> Result<i64, Refused> {
        let cell = self.skus.get(&sku).ok_or(Refused::Sku)?;
        let mut state = cell.lock();
        let arrival = *state.by_id.get(&id).ok_or(Refused::Lot)?;
        let lot = &mut state.lots[arrival as usize];
        let applied = if delta >= 0 { delta } else { -(lot.available.min(delta.unsigned_abs()) as i64) };
        lot.available = lot.available.checked_add_signed(applied).ok_or(Refused::Lot)?;
        lot.adjusted += applied;
        Ok(applied)
    }

    /// Runs `f` on one SKU's state under its lock (for checks after a run).
    pub(crate) fn with<R>(&self, sku: SkuId, f: impl FnOnce(&SkuState) -> R) -> Option<R> {
        self.skus.get(&sku).map(|cell| f(&cell.lock()))
    }

    /// Every SKU id.
    pub(crate) fn skus(&self) -> Vec<SkuId> {
        self.skus.iter().map(|entry| *entry.key()).collect()
    }

    /// Checks conservation on every lot; returns units committed in all.
    pub(crate) fn audit(&self) -> Result<u64, String> {
        let mut committed = 0;
        for entry in self.skus.iter() {
            let state = entry.value().lock();
            let held: u64 = state.holds.values().flat_map(|h| h.lines.iter()).map(|&(_, units)| units).sum();
            if held != state.lots.iter().map(|lot| lot.held).sum::<u64>() {
                return Err(format!("{:?}: holds and lots disagree on units held", entry.key()));
            }
            for lot in &state.lots {
                let inflow = lot.received as i64 + lot.adjusted;
                if inflow != (lot.available + lot.held + lot.committed) as i64 {
                    return Err(format!("{:?} {:?}: conservation broken", entry.key(), lot.id));
                }
                committed += lot.committed;
            }
        }
        Ok(committed)
    }
}
