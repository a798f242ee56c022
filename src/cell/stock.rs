//! What the physical world and the host's settings change: receipts,
//! adjustments (with the reservations a shrink displaces), low-stock
//! thresholds, and the explicit sweep.
//!
//! Owns: how these commands read the settled view, what they refuse, and
//! the effects they draft: a new lot's facts and structure, a lot's net
//! and available units, displaced lines and their re-sourcing.
//!
//! Must never: refuse reality. A shrink below what holds on the lot is
//! applied: the newest reservations on the lot lose units first, each loss
//! moved to other lots by the SKU's policy where they have units, and only
//! the rest shorted; the outcome says which.
//!
//! A shrink that displaces holds finds them by reading every live
//! reservation of the SKU (O(n) reads for n live holds, then O(h log h) to
//! order the h on the lot, newest first); so does computing the lot's held
//! units for the outcome, since units held are derived from the slots, not
//! stored per lot (see [`super::lots`]).

use super::effect::{LotInit, Target};
use super::head::LOTS_MAX;
use super::lots::{Counts, LotExt, LotFacts};
use super::maintain::expire;
use super::ops::claim_lines;
use super::plan::{advance, draw, give, walk};
use super::read::{HoldData, HoldLine, holds};
use super::slots::{Ext, Fill, NEVER, NO_SLOT, Terms};
use super::tree::Tree;
use super::view::{Draft, Stale, View};
use super::{Ctx, Landed, SkuCell, Step};
use crate::clock::Timestamp;
use crate::error::{AdjustError, ReceiveError, ThresholdError};
use crate::ids::LotId;
use crate::lot::{AdjustmentReason, LotQuantities, NewLot};
use crate::low_stock::LowStock;
use crate::outcome::{Adjusted, Line, Lines, LowStockSet, Received, Shortfall, Swept};
use crate::policy::Eligibility;
use crate::quantity::Quantity;
use crate::sync::Arc;
use std::time::Duration;

/// The arrival index of lot `id`, if the SKU has it (O(log n)).
pub(crate) fn find_lot(view: &View, id: LotId) -> Result<Option<u32>, Stale> {
    let structure = view.structure()?;
    let lots = view.head.lots;
    let at = structure.by_id.partition_point(lots, |arrival| view.facts(arrival).id < id);
    Ok(structure.by_id.iter_from(lots, at).next().filter(|&arrival| view.facts(arrival).id == id))
}

/// A lot's counters as the public API shows them (no instant: nothing
/// counted as expired).
fn quantities(facts: &LotFacts, counts: Counts, held: Quantity, ext: LotExt) -> LotQuantities {
    super::LotData { arrival: 0, facts: *facts, counts, held, attributes: None, ext }.quantities(None)
}

/// Drafts a new lot from `lot`: `received` units received, `net` on the
/// books (all of them available; more than `received` only for a lot made
/// by a return). The refusal when the id is taken, the SKU's inflow would
/// pass the maximum, or the SKU has the most lots.
pub(crate) fn add_lot(
    draft: &mut Draft,
    ctx: &Ctx,
    lot: &NewLot,
    received: Quantity,
    net: Quantity,
    attributes: Option<Arc<crate::lot::LotAttributes>>,
) -> Result<Result<LotFacts, ReceiveError>, Stale> {
    let view = draft.view;
    let sku = view.cell.sku;
    let lots = draft.lot_count;
    if find_lot(view, lot.id)?.is_some() || draft.lot_inits.iter().any(|init| init.facts.id == lot.id) {
        return Ok(Err(ReceiveError::DuplicateLot { sku, lot: lot.id }));
    }
    let Some(inflow) = draft.inflow()?.checked_add(net) else {
        return Ok(Err(ReceiveError::Overflow { sku, quantity: net.get() }));
    };
    if lots >= LOTS_MAX {
        return Ok(Err(ReceiveError::TooManyLots { sku, max: LOTS_MAX }));
    }
    let facts = LotFacts {
        id: lot.id,
        received_at: lot.received_at.unwrap_or_else(|| ctx.moment.now()),
        expires_at: lot.expires_at,
        received,
        has_attributes: attributes.is_some(),
        location: lot.location,
    };
    let arrival = lots;
    let policy = view.policy();
    let key = |at: u32| {
        let facts = if at == arrival { facts } else { view.facts(at) };
        policy.sort_key(&crate::policy::LotFacts {
            received_at: facts.received_at,
            expires_at: facts.expires_at,
            arrival: at,
        })
    };
    let id_of = |at: u32| if at == arrival { facts.id } else { view.facts(at).id };
    let structure = draft.structure_now()?;
    let order = structure.order.with(lots, key);
    let by_id = structure.by_id.with(lots, id_of);
    if !matches!((&order, &by_id), (Tree::Identity, Tree::Identity)) {
        let next = draft.structure_mut()?;
        next.order = order;
        next.by_id = by_id;
    }
    // The new lot's table slot exists before anyone can see it.
    view.cell.lots.ensure(arrival);
    let counts = Counts { available: net, net };
    draft.lot_inits.push(LotInit { arrival, facts, payload: counts.payload(), attributes });
    let none_left = lots == 0 || draft.counts(draft.cursor)?.available.is_zero();
    if none_left || key(arrival) < key(draft.cursor) {
        draft.cursor = arrival;
    }
    draft.lot_count = lots + 1;
    draft.gave = true;
    draft.effect(Target::Inflow, u128::from(inflow.get()));
    draft.totals.0 += net.get() as i64;
    Ok(Ok(facts))
}

impl SkuCell {
    /// Receives a new lot.
    pub(crate) fn receive(
        &self,
        ctx: &Ctx,
        lot: &NewLot,
        quantity: Quantity,
        landed: &mut dyn FnMut(Landed<'_, Received>),
    ) -> Result<Received, ReceiveError> {
        let sku = self.sku;
        let attributes = lot.attributes.clone().map(Arc::new);
        self.change(
            ctx,
            landed,
            |draft, _| {
                let view = draft.view;
                let facts = match add_lot(draft, ctx, lot, quantity, quantity, attributes.clone())? {
                    Ok(facts) => facts,
                    Err(refusal) => return Ok(Step::Refuse(refusal)),
                };
                Ok(Step::Change(Received {
                    sku,
                    lot: lot.id,
                    received_at: facts.received_at,
                    version: view.version() + 1,
                }))
            },
            |attempts| ReceiveError::Contended { sku, attempts },
        )
    }

    /// Applies a change the physical world made to a lot (see the module
    /// docs).
    pub(crate) fn adjust(
        &self,
        ctx: &Ctx,
        lot: LotId,
        delta: i64,
        reason: AdjustmentReason,
        expected: Option<u64>,
        landed: &mut dyn FnMut(Landed<'_, Adjusted>),
    ) -> Result<Adjusted, AdjustError> {
        let sku = self.sku;
        let owner = ctx.desc.0;
        self.change(
            ctx,
            landed,
            |draft, _| {
                let view = draft.view;
                let Some(arrival) = find_lot(view, lot)? else {
                    return Ok(Step::Refuse(AdjustError::UnknownLot { sku, lot }));
                };
                if let Some(expected) = expected.filter(|&expected| expected != view.version()) {
                    return Ok(Step::Refuse(AdjustError::VersionMismatch { sku, expected, current: view.version() }));
                }
                let facts = view.facts(arrival);
                let before = view.counts(arrival)?;
                // The caller checked |delta| <= Quantity::MAX.
                let size = Quantity::new(delta.unsigned_abs()).expect("checked by the ledger");
                let mut live = holds(view)?;
                let held = held_on(&live, arrival);
                let out_of_range = || AdjustError::OutOfRange { sku, lot, on_hand: before.available.plus(held), delta };
                let mut shortfalls = Vec::new();
                let mut held_after = held;
                if delta > 0 {
                    let Some(inflow) = view.inflow()?.checked_add(size) else {
                        return Ok(Step::Refuse(out_of_range()));
                    };
                    draft.effect(Target::Inflow, u128::from(inflow.get()));
                    let mut counts = draft.counts(arrival)?;
                    counts.net = counts.net.plus(size);
                    draft.set_counts(arrival, counts);
                    give(draft, arrival, size)?;
                    draft.totals.0 += size.get() as i64;
                } else {
                    if size > before.available.plus(held) {
                        return Ok(Step::Refuse(out_of_range()));
                    }
                    let now = || ctx.moment.now();
                    held_after = shrink(draft, owner, &mut live, arrival, size, &now, &mut shortfalls)?;
                }
                let after = draft.counts(arrival)?;
                // Re-sourced units are now held on other lots; this lot's
                // held units fell by what was taken from its holds.
                Ok(Step::Change(Adjusted {
                    sku,
                    lot,
                    delta,
                    reason,
                    quantities: quantities(&facts, after, held_after, draft.lot_ext(arrival)?),
                    shortfalls,
                    version: view.version() + 1,
                }))
            },
            |attempts| AdjustError::Contended { sku, attempts },
        )
    }

    /// Sets or clears the low-stock rule (validated by the caller).
    pub(crate) fn set_low_stock(
        &self,
        ctx: &Ctx,
        rule: Option<LowStock>,
        landed: &mut dyn FnMut(Landed<'_, LowStockSet>),
    ) -> Result<LowStockSet, ThresholdError> {
        let sku = self.sku;
        self.change(
            ctx,
            landed,
            |draft, _| {
                draft.structure_mut()?.low_stock = rule;
                Ok(Step::Change(LowStockSet { sku, rule, version: draft.view.version() + 1 }))
            },
            |attempts| ThresholdError::Contended { sku, attempts },
        )
    }

    /// The explicit sweep at `now`: lapsed holds and, with `lots`, lots
    /// newly past their expiry, in one version; `None` when there is
    /// nothing to report or after [`super::ATTEMPTS_MAX`] lost races.
    pub(crate) fn sweep(
        &self,
        ctx: &Ctx,
        now: Timestamp,
        lots: bool,
        write_off: bool,
        landed: &mut dyn FnMut(Landed<'_, Swept>),
    ) -> Option<Swept> {
        let owner = ctx.desc.0;
        self.sweep_only(ctx, landed, |draft| expire(draft, owner, now, lots, write_off)).ok()
    }
}

/// Takes `size` units off lot `arrival` (at most what it has on hand):
/// first from its available units, then from the holds on it (see
/// [`displace`]), and moves the cursor on. `live` is every live hold as
/// this change leaves it so far, and is kept so: a caller that shrinks
/// several lots in one change (the write-off) passes the same list on.
/// `now` reads the clock (only if holds lose units: re-sourcing skips
/// expired lots). Answers the units the lot still holds for reservations.
pub(crate) fn shrink(
    draft: &mut Draft,
    owner: u32,
    live: &mut [HoldData],
    arrival: u32,
    size: Quantity,
    now: &dyn Fn() -> Timestamp,
    shortfalls: &mut Vec<Shortfall>,
) -> Result<Quantity, Stale> {
    let before = draft.counts(arrival)?;
    let held = held_on(live, arrival);
    debug_assert!(size <= before.available.plus(held), "a shrink takes at most what is on hand");
    let from_available = before.available.min(size);
    let from_holds = size.minus(from_available);
    draft
        .set_counts(arrival, Counts { available: before.available.minus(from_available), net: before.net.minus(size) });
    draft.totals.0 -= from_available.get() as i64;
    if !from_holds.is_zero() {
        displace(draft, owner, live, arrival, from_holds, now(), shortfalls)?;
    }
    advance(draft)?;
    Ok(held.minus(from_holds))
}

/// Units held on lot `arrival` by live reservations (reads every hold).
pub(crate) fn held_on(holds: &[HoldData], arrival: u32) -> Quantity {
    holds
        .iter()
        .flat_map(|hold| hold.lines.iter())
        .filter(|line| line.lot == arrival)
        .fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity))
}

/// A slot's extension word as this change leaves it so far: the draft's
/// pending write if it made one, else the word as read.
fn ext_now(draft: &Draft, slot: u32) -> Result<Ext, Stale> {
    match draft.pending(Target::SlotExt(slot)) {
        Some(payload) => Ok(Ext::from_payload(payload)),
        None => draft.view.ext(draft.view.slots().expect("a hold has slots").get(slot).expect("installed")),
    }
}

/// Takes `shortage` units of lot `arrival` from the holds on it, newest
/// reservation first, moving each loss to other eligible lots by the
/// SKU's policy where they have units; what no lot covers is shorted.
/// Each hold in `live` it touches is updated to what the change leaves:
/// its lines on the lot lose what was taken, and re-sourced units are new
/// lines at its end (a later displacement in the same change chains after
/// them, not after the line the hold ended with when it was read).
fn displace(
    draft: &mut Draft,
    owner: u32,
    live: &mut [HoldData],
    arrival: u32,
    mut shortage: Quantity,
    now: Timestamp,
    out: &mut Vec<Shortfall>,
) -> Result<(), Stale> {
    let sku = draft.view.cell.sku;
    let mut holders: Vec<usize> = (0..live.len())
        .filter(|&at| live[at].lines.iter().any(|line| line.lot == arrival && !line.quantity.is_zero()))
        .collect();
    holders.sort_unstable_by_key(|&at| core::cmp::Reverse(live[at].seq));
    let eligibility = Eligibility::at(now, Duration::ZERO);
    for at in holders {
        if shortage.is_zero() {
            break;
        }
        let hold = &mut live[at];
        // Take from the hold's lines on the lot, first line first.
        let mut lost = Quantity::ZERO;
        let on_lot = hold
            .lines
            .iter()
            .filter(|line| line.lot == arrival)
            .fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity));
        let emptied = on_lot <= shortage;
        for line in hold.lines.iter_mut().filter(|line| line.lot == arrival) {
            let taken = line.quantity.min(shortage.minus(lost));
            if taken.is_zero() && (!emptied || line.removed) {
                continue;
            }
            let mut ext = ext_now(draft, line.slot)?;
            ext.taken = ext.taken.plus(taken);
            // The lot's line reached zero: it is removed (units re-sourced
            // onto the lot later make a new line at the end).
            ext.removed |= emptied;
            draft.effect(Target::SlotExt(line.slot), ext.payload());
            line.quantity = line.quantity.minus(taken);
            line.removed |= emptied;
            lost = lost.plus(taken);
        }
        let (moved, _) = walk(draft, None, eligibility, lost, Some(arrival))?;
        draw(draft, &moved)?;
        let resourced_units = moved.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.1));
        if !moved.is_empty() {
            // New line slots, chained after the hold's last line.
            let last = hold.lines.last().expect("a hold has lines").slot;
            let fill = Fill { deadline: NEVER, next: NO_SLOT, terms: Terms::default() };
            let first = claim_lines(draft, owner, &moved, fill);
            // `claim_lines` made the first new line `Live`: it is a line of
            // this hold, so redraft it as `Line`.
            let (lot, quantity) = moved[0];
            draft.effect(Target::Slot(first), super::slots::Main::Line { lot, quantity }.payload());
            let mut ext = ext_now(draft, last)?;
            ext.next = first;
            draft.effect(Target::SlotExt(last), ext.payload());
            let mut slot = first;
            for &(lot, quantity) in &moved {
                hold.lines.push(HoldLine { slot, lot, quantity, removed: false });
                slot = ext_now(draft, slot)?.next;
            }
            draft.totals.0 -= resourced_units.get() as i64;
        }
        let short = lost.minus(resourced_units);
        draft.totals.1 -= short.get() as i64;
        let view = draft.view;
        let resourced: Lines =
            moved.iter().map(|&(lot, quantity)| Line { lot: view.facts(lot).id, quantity }).collect();
        out.push(Shortfall { reservation: hold.id(sku), quantity: lost, resourced, shorted: short });
        shortage = shortage.minus(lost);
    }
    debug_assert!(shortage.is_zero(), "a lot held more than its holds add up to");
    Ok(())
}
