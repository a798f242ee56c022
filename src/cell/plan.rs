//! Allocation planning: which lots a request draws from, and where the
//! cursor goes when units leave or come back.
//!
//! Owns: [`Demand`] (a validated request), the walk over lots in policy
//! order ([`plan`]), drawing planned lines ([`draw`]), returning units
//! ([`give`]), the eligible total ([`eligible_total`]) and the cursor rule.
//!
//! Must never: choose lots any other way than the policy does. A plan is
//! exactly the policy's draw from the drafted state: lots in the policy's
//! order (the SKU's, or the request's), ineligible ones skipped (expired,
//! or expiring within the requested shelf life), each drained before the
//! next is touched.
//!
//! # The cursor
//!
//! Every lot before the cursor in the SKU's policy order has no unit
//! available, and if the cursor's lot has none, no lot has any. So a
//! request whose units the cursor's lot can cover, when that lot is
//! eligible, is the policy's whole draw: one lot, no search (the hot
//! path); a sold-out SKU is one load; a walk starts at the cursor and
//! never visits the emptied lots before it. A draw that empties the
//! cursor's lot moves the cursor to the next lot with units (or leaves it,
//! if there is none); units coming back to a lot before the cursor (or to
//! a SKU with none left) move the cursor there.

use super::view::{Draft, Stale};
use crate::clock::{Moment, Timestamp};
use crate::error::AllocateError;
use crate::ids::LocationId;
use crate::policy::{AllocationPolicy, Eligibility, FillMode, Locations};
use crate::quantity::Quantity;
use smallvec::SmallVec;
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
    /// Where the units may come from (validated: bounded, no repeats).
    pub(crate) locations: &'a Locations,
    /// Whether the units may come from more than one location.
    pub(crate) split: bool,
    /// Only lots at exactly this location (an unsplit order trying one
    /// location for all its parts).
    pub(crate) exact: Option<Option<LocationId>>,
    pub(crate) moment: &'a Moment<'a>,
}

impl Demand<'_> {
    #[inline]
    pub(crate) fn eligibility(&self) -> Eligibility {
        Eligibility::at(self.moment.now(), self.min_shelf_life)
    }

    /// Whether a lot expiring at `expires_at` may serve this demand. A lot
    /// without an expiry always may, and asks nothing of the clock: a
    /// sale of non-perishable stock never reads it.
    #[inline]
    pub(crate) fn admits(&self, expires_at: Option<Timestamp>) -> bool {
        expires_at.is_none() || self.eligibility().admits(expires_at)
    }
}

/// Planned lines: `(arrival, quantity)`, in the order drawn. Most draws
/// are one or two lots: no heap.
pub(crate) type Planned = SmallVec<[(u32, Quantity); 2]>;

/// The lines `demand` gets from the drafted state, or the refusal.
pub(crate) fn plan(draft: &Draft, demand: &Demand) -> Result<Result<Planned, AllocateError>, Stale> {
    let view = draft.view;
    let sku = view.cell.sku;
    let refuse = |available| AllocateError::Insufficient { sku, requested: demand.quantity, available };
    if draft.lot_count == 0 {
        return Ok(Err(refuse(Quantity::ZERO)));
    }
    let cursor = draft.cursor;
    let at_cursor = draft.counts(cursor)?.available;
    if at_cursor.is_zero() {
        // Sold out: every lot is empty (the cursor rule); no clock read.
        return Ok(Err(refuse(Quantity::ZERO)));
    }
    let own = demand.policy.is_none_or(|policy| policy == view.policy());
    let anywhere = matches!(demand.locations, Locations::Any) && demand.exact.is_none();
    if own && anywhere && at_cursor >= demand.quantity && demand.admits(view.expires_at(cursor)) {
        let mut lines = Planned::new();
        lines.push((cursor, demand.quantity));
        return Ok(Ok(lines));
    }
    let (lines, remaining) = scoped_walk(draft, demand)?;
    let granted = demand.quantity.minus(remaining);
    if granted.is_zero() || (!remaining.is_zero() && demand.fill == FillMode::FillOrKill) {
        // The walk visited every eligible lot: `granted` is all of them.
        return Ok(Err(refuse(granted)));
    }
    Ok(Ok(lines))
}

/// The draw of `demand` within its locations: the lines, and what is still
/// wanted. Without `split`, the lines come from one location: the first
/// (in rank order, then in policy order of its best lot) that covers the
/// whole demand, or else the one with the most units.
fn scoped_walk(draft: &Draft, demand: &Demand) -> Result<(Planned, Quantity), Stale> {
    let eligibility = demand.eligibility();
    let (policy, wanted) = (demand.policy, demand.quantity);
    if let Some(location) = demand.exact {
        return walk_in(draft, policy, eligibility, wanted, None, Some(&|at| at == location));
    }
    let listed = demand.locations.listed();
    let ranked = matches!(demand.locations, Locations::Ranked(_));
    if demand.split {
        if !ranked {
            let within = |at| demand.locations.admits(at);
            let within: Option<&dyn Fn(Option<LocationId>) -> bool> = (!listed.is_empty()).then_some(&within);
            return walk_in(draft, policy, eligibility, wanted, None, within);
        }
        // Each ranked location drained in turn, then the rest.
        let mut lines = Planned::new();
        let mut remaining = wanted;
        for &location in listed {
            let (more, left) = walk_in(draft, policy, eligibility, remaining, None, Some(&|at| at == Some(location)))?;
            lines.extend(more);
            remaining = left;
        }
        let rest = |at: Option<LocationId>| at.is_none_or(|at| !listed.contains(&at));
        let (more, left) = walk_in(draft, policy, eligibility, remaining, None, Some(&rest))?;
        lines.extend(more);
        return Ok((lines, left));
    }
    // Without split: the first ranked location that covers the demand,
    // else the first other location (in policy order of its lots) that
    // does, else the location with the most.
    let mut best: Option<(Planned, Quantity)> = None;
    if ranked {
        for &location in listed {
            let (lines, left) = walk_in(draft, policy, eligibility, wanted, None, Some(&|at| at == Some(location)))?;
            if left.is_zero() {
                return Ok((lines, left));
            }
            if best.as_ref().is_none_or(|(_, most)| left < *most) {
                best = Some((lines, left));
            }
        }
    }
    let admitted = |at: Option<LocationId>| match demand.locations {
        Locations::Ranked(_) => at.is_none_or(|at| !listed.contains(&at)),
        other => other.admits(at),
    };
    // One pass in policy order, each location's lines kept apart.
    let mut per: SmallVec<[(Option<LocationId>, Planned, Quantity); 2]> = SmallVec::new();
    let mut covered = None;
    let mut visit = |arrival: u32| -> Result<bool, Stale> {
        let location = draft.facts(arrival).location;
        if !admitted(location) || !draft.eligible(arrival, eligibility) {
            return Ok(true);
        }
        let available = draft.counts(arrival)?.available;
        if available.is_zero() {
            return Ok(true);
        }
        let at = match per.iter().position(|(at, _, _)| *at == location) {
            Some(at) => at,
            None => {
                per.push((location, Planned::new(), wanted));
                per.len() - 1
            }
        };
        let (_, lines, left) = &mut per[at];
        let quantity = available.min(*left);
        lines.push((arrival, quantity));
        *left = left.minus(quantity);
        if left.is_zero() {
            covered = Some(at);
            return Ok(false);
        }
        Ok(true)
    };
    for_each_candidate(draft, policy, eligibility, &mut visit)?;
    if let Some(at) = covered {
        let (_, lines, left) = per.swap_remove(at);
        return Ok((lines, left));
    }
    for (_, lines, left) in per {
        if best.as_ref().is_none_or(|(_, most)| left < *most) {
            best = Some((lines, left));
        }
    }
    Ok(best.unwrap_or_else(|| (Planned::new(), wanted)))
}

/// Up to `wanted` units from the eligible lots in `policy`'s order (the
/// SKU's when `None`), each drained before the next, never from lot
/// `skip`. Returns the lines and what is still wanted.
pub(crate) fn walk(
    draft: &Draft,
    policy: Option<AllocationPolicy>,
    eligibility: Eligibility,
    wanted: Quantity,
    skip: Option<u32>,
) -> Result<(Planned, Quantity), Stale> {
    walk_in(draft, policy, eligibility, wanted, skip, None)
}

/// [`walk`] over the lots whose location `at` admits.
fn walk_in(
    draft: &Draft,
    policy: Option<AllocationPolicy>,
    eligibility: Eligibility,
    wanted: Quantity,
    skip: Option<u32>,
    at: Option<&dyn Fn(Option<LocationId>) -> bool>,
) -> Result<(Planned, Quantity), Stale> {
    let mut lines = Planned::new();
    let mut remaining = wanted;
    let mut visit = |arrival: u32| -> Result<bool, Stale> {
        if remaining.is_zero() {
            return Ok(false);
        }
        let here = || at.is_none_or(|at| at(draft.facts(arrival).location));
        if Some(arrival) != skip && draft.eligible(arrival, eligibility) && here() {
            let available = draft.counts(arrival)?.available;
            if !available.is_zero() {
                let quantity = available.min(remaining);
                lines.push((arrival, quantity));
                remaining = remaining.minus(quantity);
            }
        }
        Ok(true)
    };
    for_each_candidate(draft, policy, eligibility, &mut visit)?;
    Ok((lines, remaining))
}

/// Calls `visit` on the lots a draw by `policy` may take from, in order,
/// until it returns false: for the SKU's own policy from the cursor (and,
/// under FEFO, past the lots expiring too soon: a prefix of the order,
/// found by binary search); for another policy, every lot sorted for the
/// request (the slow path).
fn for_each_candidate(
    draft: &Draft,
    policy: Option<AllocationPolicy>,
    eligibility: Eligibility,
    visit: &mut dyn FnMut(u32) -> Result<bool, Stale>,
) -> Result<(), Stale> {
    let view = draft.view;
    let own = view.policy();
    let lots = draft.lot_count;
    match policy {
        Some(other) if other != own => {
            let mut order: Vec<u32> = (0..lots).collect();
            order.sort_by_key(|&arrival| draft.key(other, arrival));
            for arrival in order {
                if !visit(arrival)? {
                    break;
                }
            }
        }
        _ => {
            let structure = draft.structure_now()?;
            let cursor_key = draft.key(own, draft.cursor);
            let mut from = structure.order.partition_point(lots, |arrival| draft.key(own, arrival) < cursor_key);
            if own == AllocationPolicy::Fefo {
                let first_eligible =
                    structure.order.partition_point(lots, |arrival| !draft.eligible(arrival, eligibility));
                from = from.max(first_eligible);
            }
            for arrival in structure.order.iter_from(lots, from) {
                if !visit(arrival)? {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Takes the planned lines' units out of `available` and moves the cursor
/// past lots the draw emptied.
pub(crate) fn draw(draft: &mut Draft, lines: &[(u32, Quantity)]) -> Result<(), Stale> {
    for &(arrival, quantity) in lines {
        let mut counts = draft.counts(arrival)?;
        counts.available = counts.available.minus(quantity);
        draft.set_counts(arrival, counts);
    }
    advance(draft)
}

/// Moves the cursor to the first lot with units at or after it (leaves it
/// if there is none: then every lot is empty).
pub(crate) fn advance(draft: &mut Draft) -> Result<(), Stale> {
    if draft.lot_count == 0 || !draft.counts(draft.cursor)?.available.is_zero() {
        return Ok(());
    }
    let view = draft.view;
    let own = view.policy();
    let lots = draft.lot_count;
    let structure = draft.structure_now()?;
    let cursor_key = draft.key(own, draft.cursor);
    let from = structure.order.partition_point(lots, |arrival| draft.key(own, arrival) < cursor_key);
    for arrival in structure.order.iter_from(lots, from) {
        if !draft.counts(arrival)?.available.is_zero() {
            draft.cursor = arrival;
            return Ok(());
        }
    }
    Ok(())
}

/// Puts `quantity` units back into lot `arrival`'s `available` (a release,
/// a lapse, what a commit returns, a growth), moving the cursor back to it
/// if it comes before the cursor or the SKU had none left.
pub(crate) fn give(draft: &mut Draft, arrival: u32, quantity: Quantity) -> Result<(), Stale> {
    if quantity.is_zero() {
        return Ok(());
    }
    let view = draft.view;
    draft.gave = true;
    let none_left = draft.counts(draft.cursor)?.available.is_zero();
    let mut counts = draft.counts(arrival)?;
    counts.available = counts.available.plus(quantity);
    draft.set_counts(arrival, counts);
    if none_left || draft.key(view.policy(), arrival) < draft.key(view.policy(), draft.cursor) {
        draft.cursor = arrival;
    }
    Ok(())
}

/// Units a draw with `eligibility` could take now (by the SKU's policy).
pub(crate) fn eligible_total(draft: &Draft, eligibility: Eligibility) -> Result<Quantity, Stale> {
    if draft.lot_count == 0 || draft.counts(draft.cursor)?.available.is_zero() {
        return Ok(Quantity::ZERO);
    }
    let mut total = Quantity::ZERO;
    let mut visit = |arrival: u32| -> Result<bool, Stale> {
        if draft.eligible(arrival, eligibility) {
            total = total.plus(draft.counts(arrival)?.available);
        }
        Ok(true)
    };
    for_each_candidate(draft, None, eligibility, &mut visit)?;
    Ok(total)
}
