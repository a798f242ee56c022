//! One SKU's immutable, versioned state, and the pure transitions between
//! versions.
//!
//! Owns: [`SkuState`] and every rule of stock: how an allocation draws lots
//! by policy, what a release, commit, sale, receipt or adjustment does to
//! each lot's counters and to the reservations held against them.
//!
//! Must never: touch shared memory, but for the sales word it carries (see
//! [`SalesWord`]), which only the cell touches. Every transition takes
//! `&self` and returns a new state with `version + 1` (or a refusal,
//! leaving nothing behind); [`SkuCell`](super::SkuCell) publishes it by
//! compare-and-swap. Folding a word's sales in adds one version per sale.
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
use super::counters::{Counts, LotCounters};
use super::hold::{Deadline, Hold, HoldLine, HoldLines};
use super::sales::{SalesWord, Tally};
use crate::clock::{Moment, Timestamp};
use crate::error::{AdjustError, AllocateError, CommitError, ExtendError, ReceiveError, ReleaseError};
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, LotQuantities, NewLot};
use crate::outcome::{
    Adjusted, Allocation, Committed, Extended, Lapsed, Line, LowStockSet, Received, Released, Sale, Shortfall, Swept,
};
use crate::overlay::{PatchMap, PatchVec};
use crate::policy::{AllocationPolicy, Eligibility, FillMode};
use crate::quantity::Quantity;
use std::sync::Arc;
use std::time::Duration;

/// A validated request for units of one SKU. It reads the operation's
/// clock at most once, and only when a plan needs to know which lots have
/// expired: a sold-out refusal never reads it.
#[derive(Debug)]
pub(crate) struct Demand<'a> {
    pub(crate) quantity: Quantity,
    pub(crate) fill: FillMode,
    pub(crate) policy: Option<AllocationPolicy>,
    pub(crate) min_shelf_life: Duration,
    pub(crate) moment: &'a Moment<'a>,
}

impl Demand<'_> {
    fn eligibility(&self) -> Eligibility {
        Eligibility::at(self.moment.now(), self.min_shelf_life)
    }
}

/// A validated hold duration: the hold lapses `duration` after its
/// allocation instant and may be extended to at most `max` after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HoldTerms {
    pub(crate) duration: Duration,
    pub(crate) max: Duration,
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
    pub(crate) lots: PatchVec<LotCounters>,
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
    /// The earliest deadline of a live hold: a sweep is due once the clock
    /// reaches it. `None` when no live hold has a deadline.
    pub(crate) next_deadline: Option<Timestamp>,
    /// Lots expiring at or before this instant have been reported by a
    /// sweep (or at receipt); `None` before the first sweep looked at lots.
    pub(crate) lots_checked_until: Option<Timestamp>,
    /// The low-stock threshold, if any.
    pub(crate) low_stock: Option<Quantity>,
    /// Immediate sales of the first lot made while this version was
    /// current, not yet folded into a version of their own (see
    /// [`SalesWord`]). What a published state stands for is this state
    /// with them folded in ([`with_sales`](Self::with_sales)).
    pub(crate) sales: SalesWord,
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
            next_deadline: None,
            lots_checked_until: None,
            low_stock: None,
            sales: SalesWord::new(),
        }
    }

    /// No unit available and no hold that could lapse and return units: any
    /// request is refused, whatever the clock says.
    pub(crate) fn is_sold_out(&self) -> bool {
        self.totals.available.is_zero() && self.next_deadline.is_none()
    }

    /// Whether a live hold has lapsed at the operation's instant (reads
    /// the clock only if some hold has a deadline).
    pub(crate) fn has_lapsed(&self, moment: &Moment) -> bool {
        self.next_deadline.is_some_and(|deadline| deadline <= moment.now())
    }

    /// Checks a caller's expected version.
    fn expect_version(&self, expected: Option<u64>) -> Result<(), u64> {
        match expected {
            Some(expected) if expected != self.version => Err(self.version),
            _ => Ok(()),
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
                .partition_point(|&arrival| !eligibility.admits(self.catalog.meta(arrival).expires_at()))
                .max(self.cursor as usize),
            AllocationPolicy::Fifo => self.cursor as usize,
        };
        &order[from..]
    }

    /// Units an allocation with `eligibility` could draw now.
    pub(crate) fn eligible(&self, eligibility: Eligibility) -> Quantity {
        self.candidates(eligibility)
            .iter()
            .filter(|&&arrival| eligibility.admits(self.catalog.meta(arrival).expires_at()))
            .fold(Quantity::ZERO, |sum, &arrival| sum.plus(self.counts(arrival).available))
    }

    /// The lines `demand` gets from this version: lots in policy order,
    /// eligible ones only, each drained before the next is touched.
    fn plan(&self, demand: &Demand) -> Result<HoldLines, AllocateError> {
        let refuse = |available| AllocateError::Insufficient { sku: self.sku, requested: demand.quantity, available };
        if self.totals.available.is_zero() {
            return Err(refuse(Quantity::ZERO)); // sold out: no scan, no allocation
        }
        let eligibility = demand.eligibility();
        let (lines, remaining) = match demand.policy {
            Some(policy) if policy != self.policy => {
                self.walk(self.catalog.order_for(policy), eligibility, demand.quantity, None)
            }
            _ => self.walk(self.candidates(eligibility).iter().copied(), eligibility, demand.quantity, None),
        };
        let granted = demand.quantity.minus(remaining);
        let short = !remaining.is_zero() && demand.fill == FillMode::FillOrKill;
        if granted.is_zero() || short {
            // A full scan ran, so `granted` is every eligible unit.
            return Err(refuse(granted));
        }
        Ok(lines)
    }

    /// Up to `wanted` units from the lots in `order`, eligible ones only,
    /// each drained before the next is touched, never from lot `skip`.
    /// Returns the lines and what is still wanted.
    fn walk(
        &self,
        order: impl IntoIterator<Item = u32>,
        eligibility: Eligibility,
        wanted: Quantity,
        skip: Option<u32>,
    ) -> (HoldLines, Quantity) {
        let mut lines = HoldLines::new();
        let mut remaining = wanted;
        for arrival in order {
            if remaining.is_zero() {
                break;
            }
            let available = self.counts(arrival).available;
            if !available.is_zero()
                && Some(arrival) != skip
                && eligibility.admits(self.catalog.meta(arrival).expires_at())
            {
                let quantity = available.min(remaining);
                lines.push(HoldLine { lot: arrival, quantity });
                remaining = remaining.minus(quantity);
            }
        }
        (lines, remaining)
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

    pub(crate) fn counts(&self, arrival: u32) -> Counts {
        self.lots.get(arrival).unpack()
    }

    /// A lot's counters as the public API shows them.
    pub(crate) fn quantities(&self, arrival: u32) -> LotQuantities {
        let counts = self.counts(arrival);
        let received = self.catalog.meta(arrival).received();
        LotQuantities {
            received,
            // Both at most `Quantity::MAX` < 2^63: the difference fits.
            adjusted: counts.net.get() as i64 - received.get() as i64,
            available: counts.available,
            held: counts.held,
            committed: counts.committed,
        }
    }

    fn update_lot(&mut self, arrival: u32, change: impl FnOnce(&mut Counts)) {
        let mut counts = self.counts(arrival);
        change(&mut counts);
        self.lots.set(arrival, counts.pack());
    }

    /// Moves the cursor back to lot `arrival`, which has units again. Units
    /// usually return to the lot at the cursor or after it: one comparison
    /// of policy keys; only a lot before it is placed by binary search.
    fn rewind_to(&mut self, arrival: u32) {
        let key = |lot: u32| self.policy.sort_key(&self.catalog.facts(lot));
        match self.catalog.order().get(self.cursor as usize) {
            Some(&at_cursor) if key(arrival) >= key(at_cursor) => {}
            _ => self.cursor = self.cursor.min(self.catalog.position(self.policy, arrival)),
        }
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
            self.rewind_to(arrival);
        }
    }

    fn advance_cursor(&mut self) {
        let order = self.catalog.order();
        while let Some(&arrival) = order.get(self.cursor as usize) {
            if !self.counts(arrival).available.is_zero() {
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
        let meta = LotMeta::new(lot.id, received_at, lot.expires_at, quantity);
        let (catalog, place) = self.catalog.with_lot(self.policy, meta, lot.attributes.clone());
        let mut next = self.successor();
        next.catalog = Arc::new(catalog);
        next.lots.push(Counts::received(quantity).pack());
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

    /// Holds units for one new reservation: every demand in turn, each
    /// planned on what the ones before it left (several lines of one SKU
    /// count as their combined demand). All or nothing: a refusal names the
    /// index of the demand that could not be met.
    pub(crate) fn allocate(
        &self,
        demands: &[Demand],
        terms: Option<HoldTerms>,
        expected_version: Option<u64>,
    ) -> Result<(SkuState, Allocation), (usize, AllocateError)> {
        self.expect_version(expected_version).map_err(|current| {
            let expected = expected_version.unwrap_or_default();
            (0, AllocateError::VersionMismatch { sku: self.sku, expected, current })
        })?;
        let Some((first, rest)) = demands.split_first() else {
            return Err((0, AllocateError::ZeroQuantity { sku: self.sku }));
        };
        // The first plan runs on this version: a sold-out refusal costs no copy.
        let lines = self.plan(first).map_err(|error| (0, error))?;
        let mut next = self.successor();
        next.draw(&lines, Draw::Hold);
        let mut hold = Hold { lines, granted: Quantity::ZERO, shorted: Quantity::ZERO, deadline: None };
        for (index, demand) in rest.iter().enumerate() {
            let lines = next.plan(demand).map_err(|error| (index + 1, error))?;
            next.draw(&lines, Draw::Hold);
            for line in lines {
                hold.add(line.lot, line.quantity);
            }
        }
        hold.granted = hold.held();
        if let Some(terms) = terms {
            let now = first.moment.now();
            let deadline = Deadline { at: now.saturating_add(terms.duration), latest: now.saturating_add(terms.max) };
            hold.deadline = Some(deadline);
            next.next_deadline = Some(next.next_deadline.map_or(deadline.at, |at| at.min(deadline.at)));
        }
        let seq = next.next_seq;
        next.next_seq += 1;
        let allocation = Allocation {
            reservation: ReservationId { sku: self.sku, seq },
            lines: self.public_lines(&hold.lines),
            deadline: hold.deadline.map(|deadline| deadline.at),
            version: next.version,
        };
        next.holds.insert(seq, hold);
        Ok((next.seal(), allocation))
    }

    pub(crate) fn take(
        &self,
        demand: &Demand,
        expected_version: Option<u64>,
    ) -> Result<(SkuState, Sale), AllocateError> {
        self.expect_version(expected_version).map_err(|current| AllocateError::VersionMismatch {
            sku: self.sku,
            expected: expected_version.unwrap_or_default(),
            current,
        })?;
        let lines = self.plan(demand)?;
        let mut next = self.successor();
        next.draw(&lines, Draw::Sell);
        let sale = Sale { sku: self.sku, lines: self.public_lines(&lines), version: next.version };
        Ok((next.seal(), sale))
    }

    /// Where an immediate sale of `demand` could go through the sales word
    /// instead of a new version: the first lot in policy order (the one at
    /// the cursor) and its available units, when the policy would draw the
    /// whole demand from it. `None` sends the sale down the slow path: a
    /// policy override, a hold due to lapse, a first lot the demand may not
    /// draw from. Whether the lot has room is the word's to decide.
    pub(crate) fn fast_lot(&self, demand: &Demand) -> Option<(u32, Quantity)> {
        let own_policy = demand.policy.is_none_or(|policy| policy == self.policy);
        if !own_policy || self.has_lapsed(demand.moment) {
            return None;
        }
        let &first = self.catalog.order().get(self.cursor as usize)?;
        // Eligible at the cursor means the FEFO candidates start there too:
        // the lots expiring too soon are a prefix of the order.
        let expires_at = self.catalog.meta(first).expires_at();
        if expires_at.is_some() && !demand.eligibility().admits(expires_at) {
            return None;
        }
        Some((first, self.counts(first).available))
    }

    /// The sale a successful [`SalesWord::add`] made: `quantity` of lot
    /// `first`, the `before.sales + 1`-th sale through this version's word.
    pub(crate) fn fast_sale(&self, first: u32, quantity: Quantity, before: Tally) -> Sale {
        let lines = vec![Line { lot: self.catalog.meta(first).id, quantity }];
        Sale { sku: self.sku, lines, version: self.version + before.sales + 1 }
    }

    /// This version with the sales of its word folded in: `tally.units` of
    /// the lot at the cursor sold, one version per sale. The result has an
    /// open, empty word of its own.
    pub(crate) fn with_sales(&self, tally: Tally) -> SkuState {
        let mut next = self.clone();
        next.version += tally.sales;
        if let (Some(&first), false) = (self.catalog.order().get(self.cursor as usize), tally.units.is_zero()) {
            next.draw(&[HoldLine { lot: first, quantity: tally.units }], Draw::Sell);
        }
        next.seal()
    }

    /// Removes a live hold, keeping `next_deadline` exact (a rescan of the
    /// holds when the earliest deadline leaves).
    fn end_hold(&mut self, seq: u64) -> Option<Hold> {
        let hold = self.holds.remove(&seq)?;
        if hold.deadline.is_some_and(|deadline| Some(deadline.at) == self.next_deadline) {
            self.recompute_next_deadline();
        }
        Some(hold)
    }

    fn recompute_next_deadline(&mut self) {
        self.next_deadline = self.holds.iter().filter_map(|(_, hold)| hold.deadline.map(|deadline| deadline.at)).min();
    }

    /// Ends every hold lapsed at `now`, returning its units; with `lots`,
    /// also reports the lots whose expiry passed since the last look.
    /// `None` when there is nothing to do.
    pub(crate) fn sweep(&self, now: Timestamp, lots: bool) -> Option<(SkuState, Swept)> {
        let lapsed: Vec<u64> = match self.next_deadline {
            Some(deadline) if deadline <= now => {
                self.holds.iter().filter(|(_, hold)| hold.lapsed(now)).map(|(&seq, _)| seq).collect()
            }
            _ => Vec::new(),
        };
        let expired_lots: Vec<LotId> = if lots { self.newly_expired_lots(now).collect() } else { Vec::new() };
        if lapsed.is_empty() && expired_lots.is_empty() {
            return None;
        }
        let mut next = self.successor();
        let mut report = Vec::with_capacity(lapsed.len());
        for seq in lapsed {
            let hold = next.holds.remove(&seq)?;
            for line in &hold.lines {
                next.unhold(line.lot, line.quantity, Quantity::ZERO);
            }
            report.push(Lapsed {
                reservation: ReservationId { sku: self.sku, seq },
                deadline: hold.deadline.map_or(now, |deadline| deadline.at),
                lines: self.public_lines(&hold.lines),
            });
        }
        next.recompute_next_deadline();
        if !expired_lots.is_empty() {
            next.lots_checked_until = Some(self.lots_checked_until.map_or(now, |until| until.max(now)));
        }
        let swept = Swept { sku: self.sku, at: now, lapsed: report, expired_lots, version: next.version };
        Some((next.seal(), swept))
    }

    /// Lots expiring at or before `now` that no sweep has reported yet, in
    /// policy order.
    fn newly_expired_lots(&self, now: Timestamp) -> impl Iterator<Item = LotId> + '_ {
        let checked = self.lots_checked_until;
        self.catalog.order().iter().map(|&arrival| self.catalog.meta(arrival)).filter_map(move |meta| {
            let expiry = meta.expires_at()?;
            let unreported = checked.is_none_or(|until| expiry > until);
            (expiry <= now && unreported).then_some(meta.id)
        })
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
        next.end_hold(seq);
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
        next.end_hold(seq);
        let outcome = Committed { reservation: id, committed, returned, version: next.version };
        Ok((next.seal(), outcome))
    }

    /// Moves a live hold's deadline `by` later, up to its latest.
    pub(crate) fn extend(&self, seq: u64, by: Duration) -> Result<(SkuState, Extended), ExtendError> {
        let id = ReservationId { sku: self.sku, seq };
        let hold = self.hold(seq).map_err(|lookup| match lookup {
            HoldLookup::Unknown => ExtendError::UnknownReservation { id },
            HoldLookup::Ended => ExtendError::Ended { id },
        })?;
        let deadline = hold.deadline.ok_or(ExtendError::NoDeadline { id })?;
        let requested = deadline.at.saturating_add(by);
        if requested > deadline.latest {
            return Err(ExtendError::BeyondMaximum { id, requested, latest: deadline.latest });
        }
        let mut next = self.successor();
        let mut extended = hold.clone();
        extended.deadline = Some(Deadline { at: requested, ..deadline });
        next.holds.insert(seq, extended);
        if next.next_deadline == Some(deadline.at) {
            next.recompute_next_deadline();
        }
        let outcome = Extended { reservation: id, deadline: requested, version: next.version };
        Ok((next.seal(), outcome))
    }

    pub(crate) fn set_low_stock(&self, threshold: Option<Quantity>) -> (SkuState, LowStockSet) {
        let mut next = self.successor();
        next.low_stock = threshold;
        let outcome = LowStockSet { sku: self.sku, threshold, version: next.version };
        (next.seal(), outcome)
    }

    pub(crate) fn adjust(
        &self,
        lot_id: LotId,
        delta: i64,
        reason: AdjustmentReason,
        expected_version: Option<u64>,
        moment: &Moment,
    ) -> Result<(SkuState, Adjusted), AdjustError> {
        let arrival = self.catalog.find(lot_id).ok_or(AdjustError::UnknownLot { sku: self.sku, lot: lot_id })?;
        self.expect_version(expected_version).map_err(|current| AdjustError::VersionMismatch {
            sku: self.sku,
            expected: expected_version.unwrap_or_default(),
            current,
        })?;
        let before = self.quantities(arrival);
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
            next.update_lot(arrival, |lot| {
                lot.available = lot.available.plus(size);
                lot.net = lot.net.plus(size);
            });
            next.totals.available = next.totals.available.plus(size);
            next.rewind_to(arrival);
        } else {
            if size.get() > before.on_hand() {
                return Err(out_of_range());
            }
            // A shrink takes unheld units first; only the rest is taken
            // from reservations, newest first, each re-sourced from other
            // lots where the policy finds units.
            let from_available = before.available.min(size);
            let from_holds = size.minus(from_available);
            next.update_lot(arrival, |lot| {
                lot.available = lot.available.minus(from_available);
                lot.held = lot.held.minus(from_holds);
                lot.net = lot.net.minus(size);
            });
            next.totals.available = next.totals.available.minus(from_available);
            next.totals.held = next.totals.held.minus(from_holds);
            if !from_holds.is_zero() {
                let eligibility = Eligibility::at(moment.now(), Duration::ZERO);
                next.displace(arrival, from_holds, eligibility, &mut shortfalls);
            }
            next.advance_cursor();
        }
        next.totals.adjusted += delta;
        let adjusted = Adjusted {
            sku: self.sku,
            lot: lot_id,
            delta,
            reason,
            quantities: next.quantities(arrival),
            shortfalls,
            version: next.version,
        };
        Ok((next.seal(), adjusted))
    }

    /// Takes `shortage` units of lot `arrival` from the holds on it, newest
    /// reservation first, and moves each loss to other eligible lots by the
    /// SKU's policy; what no lot can cover is shorted. The lot's counters
    /// are already adjusted.
    fn displace(&mut self, arrival: u32, mut shortage: Quantity, eligibility: Eligibility, out: &mut Vec<Shortfall>) {
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
            let (moved, short) =
                self.walk(self.candidates(eligibility).iter().copied(), eligibility, taken, Some(arrival));
            self.draw(&moved, Draw::Hold);
            for line in &moved {
                hold.add(line.lot, line.quantity);
            }
            hold.shorted = hold.shorted.plus(short);
            let resourced = self.public_lines(&moved);
            self.holds.insert(seq, hold);
            out.push(Shortfall {
                reservation: ReservationId { sku: self.sku, seq },
                quantity: taken,
                resourced,
                shorted: short,
            });
            shortage = shortage.minus(taken);
            if shortage.is_zero() {
                return;
            }
        }
        debug_assert!(shortage.is_zero(), "a lot held more than its holds add up to");
    }
}
