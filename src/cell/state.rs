//! One SKU's immutable, versioned state, and the pure transitions between
//! versions.
//!
//! Owns: [`SkuState`] and every rule of stock: how an allocation draws lots
//! by policy, what a release, commit, sale, receipt or adjustment does to
//! each lot's counters and to the reservations held against them.
//!
//! Must never: touch shared memory. Every transition takes `&self` and
//! returns a new state with `version + 1` (or a refusal, leaving nothing
//! behind); [`SkuCell`](super::SkuCell) publishes it by compare-and-swap.
//! Keeping the rules pure is what lets one CAS make a multi-lot change
//! atomic, and lets the model checker and the proptests drive them.
//!
//! # Invariants (checked by `audit`)
//!
//! - per lot, `received + adjusted = available + held + committed`;
//! - per lot, `held` is the sum of the hold lines on it;
//! - `totals` is the sum of the lots;
//! - every hold's lines sum to `granted - shorted`, each line non-zero;
//! - every lot before `cursor` in policy order has nothing available;
//! - every counter is at most `inflow` (receipts plus positive
//!   adjustments), itself at most [`Quantity::MAX`].

use super::catalog::{Catalog, LotMeta};
use super::hold::{Hold, HoldLine, HoldLines};
use crate::clock::{Clock, Timestamp};
use crate::error::{AdjustError, AllocateError, CommitError, ReceiveError, ReleaseError};
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, LotQuantities, NewLot};
use crate::outcome::{Adjusted, Allocation, Committed, Line, Received, Released, Sale, Shortfall};
use crate::overlay::{PatchMap, PatchVec};
use crate::policy::{AllocationPolicy, Eligibility, FillMode};
use crate::quantity::Quantity;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

/// A validated allocation request. It reads the ledger's clock at most
/// once, and only when a plan needs to know which lots have expired: a
/// sold-out refusal never reads it.
#[derive(Debug)]
pub(crate) struct Demand<'a> {
    pub(crate) quantity: Quantity,
    pub(crate) fill: FillMode,
    pub(crate) policy: Option<AllocationPolicy>,
    pub(crate) min_shelf_life: Duration,
    pub(crate) clock: &'a dyn Clock,
    /// The one clock reading, once taken; retries of the same command
    /// reuse it.
    pub(crate) now: Cell<Option<Timestamp>>,
}

impl Demand<'_> {
    fn eligibility(&self) -> Eligibility {
        let now = self.now.get().unwrap_or_else(|| {
            let now = self.clock.now();
            self.now.set(Some(now));
            now
        });
        Eligibility::at(now, self.min_shelf_life)
    }
}

/// Why a reservation id names no live hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HoldLookup {
    /// The SKU never issued it.
    Unknown,
    /// It was issued and has ended.
    Ended,
}

#[derive(Clone, Debug)]
pub(crate) struct SkuState {
    pub(crate) sku: SkuId,
    pub(crate) version: u64,
    pub(crate) policy: AllocationPolicy,
    pub(crate) catalog: Arc<Catalog>,
    /// Counters by arrival index.
    pub(crate) lots: PatchVec<LotQuantities>,
    /// Live holds by reservation sequence number.
    pub(crate) holds: PatchMap<u64, Hold>,
    /// The sequence number the next allocation gets.
    pub(crate) next_seq: u64,
    /// Every lot before this place in policy order has nothing available.
    pub(crate) cursor: u32,
    /// Sum of the lots' counters.
    pub(crate) totals: LotQuantities,
    /// Receipts plus positive adjustments: the bound on every counter.
    pub(crate) inflow: Quantity,
}

/// What a draw does with the units it takes from `available`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Draw {
    Hold,
    Sell,
}

impl SkuState {
    /// The empty SKU, version 0.
    pub(crate) fn defined(sku: SkuId, policy: AllocationPolicy) -> SkuState {
        SkuState {
            sku,
            version: 0,
            policy,
            catalog: Arc::new(Catalog::default()),
            lots: PatchVec::from_vec(Vec::new()),
            holds: PatchMap::default(),
            next_seq: 1,
            cursor: 0,
            totals: LotQuantities::default(),
            inflow: Quantity::ZERO,
        }
    }

    pub(crate) fn hold(&self, seq: u64) -> Result<&Hold, HoldLookup> {
        match self.holds.get(&seq) {
            Some(hold) => Ok(hold),
            None if seq == 0 || seq >= self.next_seq => Err(HoldLookup::Unknown),
            None => Err(HoldLookup::Ended),
        }
    }

    pub(crate) fn public_lines(&self, lines: &[HoldLine]) -> Vec<Line> {
        lines.iter().map(|line| Line { lot: self.catalog.meta(line.lot).id, quantity: line.quantity }).collect()
    }

    /// The SKU's own policy order from the first place that can hold an
    /// eligible unit: past the cursor (nothing available before it) and,
    /// under FEFO, past every lot that expires too soon. FEFO sorts by
    /// expiry, so those lots are a prefix of its order, found by binary
    /// search: a front of expired lots costs O(log n), not a scan.
    fn candidates(&self, eligibility: Eligibility) -> &[u32] {
        let order = self.catalog.order();
        let from = match self.policy {
            AllocationPolicy::Fefo => order
                .partition_point(|&arrival| !eligibility.admits(self.catalog.meta(arrival).expires_at))
                .max(self.cursor as usize),
            AllocationPolicy::Fifo => self.cursor as usize,
        };
        &order[from..]
    }

    /// Units an allocation with `eligibility` could draw now.
    pub(crate) fn eligible(&self, eligibility: Eligibility) -> Quantity {
        self.candidates(eligibility)
            .iter()
            .filter(|&&arrival| eligibility.admits(self.catalog.meta(arrival).expires_at))
            .fold(Quantity::ZERO, |sum, &arrival| sum.plus(self.lots.get(arrival).available))
    }

    /// The lines `demand` gets from this version: lots in policy order,
    /// eligible ones only, each drained before the next is touched.
    fn plan(&self, demand: &Demand) -> Result<HoldLines, AllocateError> {
        let refuse = |available| AllocateError::Insufficient { sku: self.sku, requested: demand.quantity, available };
        if self.totals.available.is_zero() {
            return Err(refuse(Quantity::ZERO)); // sold out: no scan, no allocation
        }
        let eligibility = demand.eligibility();
        let mut lines = HoldLines::new();
        let mut remaining = demand.quantity;
        let mut draw_from = |arrival: u32| {
            let available = self.lots.get(arrival).available;
            if !available.is_zero() && eligibility.admits(self.catalog.meta(arrival).expires_at) {
                let quantity = available.min(remaining);
                lines.push(HoldLine { lot: arrival, quantity });
                remaining = remaining.minus(quantity);
            }
            remaining.is_zero()
        };
        match demand.policy {
            Some(policy) if policy != self.policy => {
                let _ = self.catalog.order_for(policy).into_iter().any(&mut draw_from);
            }
            _ => {
                let _ = self.candidates(eligibility).iter().any(|&arrival| draw_from(arrival));
            }
        }
        let granted = demand.quantity.minus(remaining);
        let short = !remaining.is_zero() && demand.fill == FillMode::FillOrKill;
        if granted.is_zero() || short {
            // A full scan ran, so `granted` is every eligible unit.
            return Err(refuse(granted));
        }
        Ok(lines)
    }

    /// The next version: same contents, `version + 1`.
    fn successor(&self) -> SkuState {
        let mut next = self.clone();
        next.version += 1;
        next
    }

    /// Folds overlays that grew past their limits; call last.
    fn seal(mut self) -> SkuState {
        self.lots.compact_if_large();
        self.holds.compact_if_large();
        self
    }

    fn update_lot(&mut self, arrival: u32, change: impl FnOnce(&mut LotQuantities)) {
        let mut lot = self.lots.get(arrival);
        change(&mut lot);
        self.lots.set(arrival, lot);
    }

    fn draw(&mut self, lines: &[HoldLine], draw: Draw) {
        for line in lines {
            let quantity = line.quantity;
            self.update_lot(line.lot, |lot| {
                lot.available = lot.available.minus(quantity);
                match draw {
                    Draw::Hold => lot.held = lot.held.plus(quantity),
                    Draw::Sell => lot.committed = lot.committed.plus(quantity),
                }
            });
            self.totals.available = self.totals.available.minus(quantity);
            match draw {
                Draw::Hold => self.totals.held = self.totals.held.plus(quantity),
                Draw::Sell => self.totals.committed = self.totals.committed.plus(quantity),
            }
        }
        self.advance_cursor();
    }

    /// Ends `quantity` held units on a lot: `committed` of them leave, the
    /// rest become available again.
    fn unhold(&mut self, arrival: u32, quantity: Quantity, committed: Quantity) {
        let returned = quantity.minus(committed);
        self.update_lot(arrival, |lot| {
            lot.held = lot.held.minus(quantity);
            lot.committed = lot.committed.plus(committed);
            lot.available = lot.available.plus(returned);
        });
        self.totals.held = self.totals.held.minus(quantity);
        self.totals.committed = self.totals.committed.plus(committed);
        self.totals.available = self.totals.available.plus(returned);
        if !returned.is_zero() {
            self.cursor = self.cursor.min(self.catalog.position(arrival));
        }
    }

    fn advance_cursor(&mut self) {
        let order = self.catalog.order();
        while let Some(&arrival) = order.get(self.cursor as usize) {
            if !self.lots.get(arrival).available.is_zero() {
                break;
            }
            self.cursor += 1;
        }
    }

    pub(crate) fn receive(
        &self,
        lot: &NewLot,
        quantity: Quantity,
        now: Timestamp,
    ) -> Result<(SkuState, Received), ReceiveError> {
        if self.catalog.find(lot.id).is_some() {
            return Err(ReceiveError::DuplicateLot { sku: self.sku, lot: lot.id });
        }
        let inflow = self
            .inflow
            .checked_add(quantity)
            .ok_or(ReceiveError::Overflow { sku: self.sku, quantity: quantity.get() })?;
        let received_at = lot.received_at.unwrap_or(now);
        let meta = LotMeta { id: lot.id, received_at, expires_at: lot.expires_at };
        let (catalog, place) = self.catalog.with_lot(self.policy, meta, lot.attributes.clone());
        let mut next = self.successor();
        next.catalog = Arc::new(catalog);
        next.lots.push(LotQuantities { received: quantity, available: quantity, ..LotQuantities::default() });
        next.inflow = inflow;
        next.totals.received = next.totals.received.plus(quantity);
        next.totals.available = next.totals.available.plus(quantity);
        // Lots at or after `place` moved one place back; the new lot has
        // units, so the cursor may not pass it.
        if place <= next.cursor {
            next.cursor = place;
        }
        let received = Received { sku: self.sku, lot: lot.id, received_at, version: next.version };
        Ok((next.seal(), received))
    }

    pub(crate) fn allocate(&self, demand: &Demand) -> Result<(SkuState, Allocation), AllocateError> {
        let lines = self.plan(demand)?;
        let mut next = self.successor();
        next.draw(&lines, Draw::Hold);
        let seq = next.next_seq;
        next.next_seq += 1;
        let granted = lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity));
        let allocation = Allocation {
            reservation: ReservationId { sku: self.sku, seq },
            lines: self.public_lines(&lines),
            version: next.version,
        };
        next.holds.insert(seq, Hold { lines, granted, shorted: Quantity::ZERO });
        Ok((next.seal(), allocation))
    }

    pub(crate) fn take(&self, demand: &Demand) -> Result<(SkuState, Sale), AllocateError> {
        let lines = self.plan(demand)?;
        let mut next = self.successor();
        next.draw(&lines, Draw::Sell);
        let sale = Sale { sku: self.sku, lines: self.public_lines(&lines), version: next.version };
        Ok((next.seal(), sale))
    }

    pub(crate) fn release(&self, seq: u64) -> Result<(SkuState, Released), ReleaseError> {
        let id = ReservationId { sku: self.sku, seq };
        let hold = self.hold(seq).map_err(|lookup| match lookup {
            HoldLookup::Unknown => ReleaseError::UnknownReservation { id },
            HoldLookup::Ended => ReleaseError::Ended { id },
        })?;
        let mut next = self.successor();
        for line in &hold.lines {
            next.unhold(line.lot, line.quantity, Quantity::ZERO);
        }
        next.holds.remove(&seq);
        let released = Released { reservation: id, lines: self.public_lines(&hold.lines), version: next.version };
        Ok((next.seal(), released))
    }

    pub(crate) fn commit(&self, seq: u64, quantity: Option<Quantity>) -> Result<(SkuState, Committed), CommitError> {
        let id = ReservationId { sku: self.sku, seq };
        let hold = self.hold(seq).map_err(|lookup| match lookup {
            HoldLookup::Unknown => CommitError::UnknownReservation { id },
            HoldLookup::Ended => CommitError::Ended { id },
        })?;
        let held = hold.held();
        let mut remaining = quantity.unwrap_or(held);
        if remaining > held {
            return Err(CommitError::ExceedsHeld { id, requested: remaining, held });
        }
        let mut next = self.successor();
        let (mut committed, mut returned) = (Vec::new(), Vec::new());
        for line in &hold.lines {
            let leaving = line.quantity.min(remaining);
            remaining = remaining.minus(leaving);
            next.unhold(line.lot, line.quantity, leaving);
            let lot = self.catalog.meta(line.lot).id;
            if !leaving.is_zero() {
                committed.push(Line { lot, quantity: leaving });
            }
            if leaving < line.quantity {
                returned.push(Line { lot, quantity: line.quantity.minus(leaving) });
            }
        }
        next.holds.remove(&seq);
        let outcome = Committed { reservation: id, committed, returned, version: next.version };
        Ok((next.seal(), outcome))
    }

    pub(crate) fn adjust(
        &self,
        lot_id: LotId,
        delta: i64,
        reason: AdjustmentReason,
    ) -> Result<(SkuState, Adjusted), AdjustError> {
        let arrival = self.catalog.find(lot_id).ok_or(AdjustError::UnknownLot { sku: self.sku, lot: lot_id })?;
        let before = self.lots.get(arrival);
        let out_of_range = || AdjustError::OutOfRange {
            sku: self.sku,
            lot: lot_id,
            on_hand: Quantity::new(before.on_hand()).unwrap_or(Quantity::MAX),
            delta,
        };
        // The caller checked |delta| <= Quantity::MAX.
        let size = Quantity::new(delta.unsigned_abs()).map_err(|_| out_of_range())?;
        let mut next = self.successor();
        let mut shortfalls = Vec::new();
        if delta > 0 {
            next.inflow = self.inflow.checked_add(size).ok_or_else(out_of_range)?;
            next.update_lot(arrival, |lot| lot.available = lot.available.plus(size));
            next.totals.available = next.totals.available.plus(size);
            next.cursor = next.cursor.min(self.catalog.position(arrival));
        } else {
            if size.get() > before.on_hand() {
                return Err(out_of_range());
            }
            // A shrink takes unheld units first; only the rest is taken
            // from reservations, newest first.
            let from_available = before.available.min(size);
            let from_holds = size.minus(from_available);
            next.update_lot(arrival, |lot| {
                lot.available = lot.available.minus(from_available);
                lot.held = lot.held.minus(from_holds);
            });
            next.totals.available = next.totals.available.minus(from_available);
            next.totals.held = next.totals.held.minus(from_holds);
            next.short_holds(arrival, from_holds, &mut shortfalls);
            next.advance_cursor();
        }
        next.update_lot(arrival, |lot| lot.adjusted += delta);
        next.totals.adjusted += delta;
        let adjusted = Adjusted {
            sku: self.sku,
            lot: lot_id,
            delta,
            reason,
            quantities: next.lots.get(arrival),
            shortfalls,
            version: next.version,
        };
        Ok((next.seal(), adjusted))
    }

    /// Takes `shortage` units of lot `arrival` from the holds on it, newest
    /// reservation first. The lot's counters are already adjusted.
    fn short_holds(&mut self, arrival: u32, mut shortage: Quantity, shortfalls: &mut Vec<Shortfall>) {
        if shortage.is_zero() {
            return;
        }
        let holders: Vec<u64> = self
            .holds
            .iter()
            .filter(|(_, hold)| hold.lines.iter().any(|line| line.lot == arrival))
            .map(|(&seq, _)| seq)
            .collect();
        for seq in holders.into_iter().rev() {
            let Some(mut hold) = self.holds.get(&seq).cloned() else { continue };
            let Some(at) = hold.lines.iter().position(|line| line.lot == arrival) else { continue };
            let taken = hold.lines[at].quantity.min(shortage);
            hold.lines[at].quantity = hold.lines[at].quantity.minus(taken);
            if hold.lines[at].quantity.is_zero() {
                hold.lines.remove(at);
            }
            hold.shorted = hold.shorted.plus(taken);
            self.holds.insert(seq, hold);
            shortfalls.push(Shortfall { reservation: ReservationId { sku: self.sku, seq }, quantity: taken });
            shortage = shortage.minus(taken);
            if shortage.is_zero() {
                return;
            }
        }
        debug_assert!(shortage.is_zero(), "a lot held more than its holds add up to");
    }
}
