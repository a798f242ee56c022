//! The reservation lifecycle on one SKU: immediate sales, holds, commits,
//! releases and extensions, each one change through the cell's protocol.
//!
//! Owns: how each of these commands reads the settled view, what it
//! refuses, and the effects and outcome it drafts; [`HoldTerms`].
//!
//! Must never: publish a change whose refusal was already decided, or
//! allocate on the steady path: a sale or a hold that one lot covers, a
//! commit, a release. Planned lines and outcome lines live inline; the
//! only heap touched is the first slot table of a SKU and its first
//! deadline bookkeeping.

use super::backorder::accept;
use super::effect::Target;
use super::head::DEADLINES;
use super::maintain::{end_hold, merged, public_lines};
use super::plan::{Demand, Planned, draw, plan, walk};
use super::read::{HoldData, Lookup, find};
use super::slots::{Fill, Main, Marks, NO_SLOT, Terms, deadline_payload};
use super::structure::BACKORDERS_MAX;
use super::view::{Draft, Stale};
use super::{Ctx, Landed, SkuCell, Step};
use crate::clock::Timestamp;
use crate::error::{AllocateError, ExtendError};
use crate::ids::OrderId;
use crate::ids::ReservationId;
use crate::outcome::{Allocation, Committed, Extended, Line, Lines, Pinned, Released, Sale, Swept};
use crate::quantity::Quantity;
use std::time::Duration;

/// A validated hold duration: the hold lapses `duration` after its
/// allocation instant and may be extended to at most `max` after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HoldTerms {
    pub(crate) duration: Duration,
    pub(crate) max: Duration,
}

/// How a hold is made besides its demands.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HoldSpec {
    /// Its deadline terms (`None`: held until ended).
    pub(crate) terms: Option<HoldTerms>,
    /// Only at this SKU version.
    pub(crate) expected: Option<u64>,
    pub(crate) marks: Marks,
    /// The one demand may wait for units it cannot have now.
    pub(crate) backorder: bool,
}

/// Why a commit or a release found nothing to end, or refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndRefusal {
    Unknown,
    Ended,
    /// This very call's sweep lapsed it.
    Expired(Timestamp),
    ExceedsHeld {
        requested: Quantity,
        held: Quantity,
    },
    /// The reservation is a part of this order: only the order ends it.
    OrderPart(u64),
    /// A backorder still waiting for this many units (it cannot commit).
    Waiting(Quantity),
    /// A shrink took units from it that no other lot could cover.
    Shorted {
        held: Quantity,
        granted: Quantity,
    },
    Contended(u32),
}

/// The deadline of `seq` if one of `swept` lapsed it.
fn lapsed_in(swept: &[Swept], seq: u64) -> Option<Timestamp> {
    swept.iter().flat_map(|sweep| sweep.lapsed.iter()).find(|lapsed| lapsed.reservation.seq == seq).map(|l| l.deadline)
}

fn lines_of(draft: &Draft, planned: &[(u32, Quantity)]) -> Lines {
    planned.iter().map(|&(arrival, quantity)| Line { lot: draft.facts(arrival).id, quantity }).collect()
}

fn version_check(draft: &Draft, expected: Option<u64>) -> Result<(), AllocateError> {
    match expected {
        Some(expected) if expected != draft.view.version() => {
            Err(AllocateError::VersionMismatch { sku: draft.view.cell.sku, expected, current: draft.view.version() })
        }
        _ => Ok(()),
    }
}

/// The live hold `id` names, or why not (after this call's own sweeps),
/// for a command of `order` (0: a command on the reservation itself, which
/// may not end or move an order's part).
fn live(draft: &Draft, id: ReservationId, order: u64, swept: &[Swept]) -> Result<Result<HoldData, EndRefusal>, Stale> {
    if let Some(deadline) = lapsed_in(swept, id.seq) {
        return Ok(Err(EndRefusal::Expired(deadline)));
    }
    let hold = match find(draft.view, id)? {
        Ok(hold) => hold,
        Err(Lookup::Unknown) => return Ok(Err(EndRefusal::Unknown)),
        Err(Lookup::Ended) => return Ok(Err(EndRefusal::Ended)),
    };
    Ok(match hold.marks.order {
        part if part == order => Ok(hold),
        part if order == 0 => Err(EndRefusal::OrderPart(part)),
        // Another order's reservation, or none's: not this order's part.
        _ => Err(EndRefusal::Unknown),
    })
}

impl SkuCell {
    /// Sells units outright: allocate and commit in one change.
    pub(crate) fn take(
        &self,
        ctx: &Ctx,
        demand: &Demand,
        expected: Option<u64>,
        landed: &mut dyn FnMut(Landed<'_, Sale>),
    ) -> Result<Sale, AllocateError> {
        let sku = self.sku;
        if expected.is_none() {
            if let Some(sale) = self.take_fast(ctx, demand) {
                return sale;
            }
        }
        self.change(
            ctx,
            landed,
            |draft, _| {
                if let Err(error) = version_check(draft, expected) {
                    return Ok(Step::Refuse(error));
                }
                let planned = match plan(draft, demand)? {
                    Ok(planned) => planned,
                    Err(error) => return Ok(Step::Refuse(error)),
                };
                draw(draft, &planned)?;
                let units: u64 = planned.iter().map(|line| line.1.get()).sum();
                draft.totals.0 -= units as i64;
                Ok(Step::Change(Sale { sku, lines: lines_of(draft, &planned), version: draft.view.version() + 1 }))
            },
            |attempts| AllocateError::Contended { sku, attempts },
        )
    }

    /// Holds units for one new reservation: every demand in turn, each
    /// planned on what the ones before it left (several lines of one SKU
    /// are their combined demand). All or nothing: a refusal names the
    /// index of the demand that could not be met — unless the one demand
    /// may wait as a backorder ([`HoldSpec::backorder`]).
    pub(crate) fn hold(
        &self,
        ctx: &Ctx,
        demands: &[Demand],
        spec: HoldSpec,
        landed: &mut dyn FnMut(Landed<'_, Allocation>),
    ) -> Result<Allocation, (usize, AllocateError)> {
        let sku = self.sku;
        let owner = ctx.desc.0;
        let HoldSpec { terms, expected, marks, backorder } = spec;
        debug_assert!(!backorder || demands.len() == 1, "a backorder is one demand");
        if let ([demand], None, false) = (demands, expected, backorder) {
            if let Some(allocation) = self.hold_fast(ctx, demand, terms, marks) {
                return allocation.map_err(|error| (0, error));
            }
        }
        let now = terms.map(|_| ctx.moment.now());
        self.change(
            ctx,
            landed,
            |draft, _| {
                if let Err(error) = version_check(draft, expected) {
                    return Ok(Step::Refuse((0, error)));
                }
                let (deadline, latest) = match (terms, now) {
                    (Some(terms), Some(now)) => {
                        (Some(now.saturating_add(terms.duration)), now.saturating_add(terms.max))
                    }
                    _ => (None, Timestamp(0)),
                };
                // A backorder names no location: it draws from any, by the
                // policy, whether it then waits or not.
                let mut walked = None;
                if let ([demand], true) = (demands, backorder) {
                    let (planned, outstanding) =
                        walk(draft, demand.policy, demand.eligibility(), demand.quantity, None)?;
                    if outstanding.is_zero() {
                        walked = Some(planned);
                    } else {
                        let fill = Fill {
                            deadline: deadline_payload(deadline),
                            next: NO_SLOT,
                            terms: Terms { granted: demand.quantity, latest: latest.as_millis(), marks },
                        };
                        let Some(head) = accept(draft, owner, &planned, outstanding, fill, demand.min_shelf_life)?
                        else {
                            return Ok(Step::Refuse((
                                0,
                                AllocateError::BackorderQueueFull { sku, max: BACKORDERS_MAX },
                            )));
                        };
                        if let Some(deadline) = deadline {
                            note_deadline(draft, deadline)?;
                        }
                        let got = demand.quantity.minus(outstanding);
                        draft.totals.0 -= got.get() as i64;
                        draft.totals.1 += got.get() as i64;
                        let version = draft.view.version() + 1;
                        return Ok(Step::Change(Allocation {
                            reservation: ReservationId::located(sku, version, head),
                            lines: lines_of(draft, &planned),
                            deadline,
                            version,
                            tag: marks.tag,
                            backordered: outstanding,
                        }));
                    }
                }
                let mut lines = Planned::new();
                for (index, demand) in demands.iter().enumerate() {
                    let planned = match walked.take() {
                        Some(walked) => walked,
                        None => match plan(draft, demand)? {
                            Ok(planned) => planned,
                            Err(error) => return Ok(Step::Refuse((index, error))),
                        },
                    };
                    draw(draft, &planned)?;
                    for (arrival, quantity) in planned {
                        match lines.iter_mut().find(|line| line.0 == arrival) {
                            Some(line) => line.1 = line.1.plus(quantity),
                            None => lines.push((arrival, quantity)),
                        }
                    }
                }
                let granted = lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.1));
                let version = draft.view.version() + 1;
                let fill = Fill {
                    deadline: deadline_payload(deadline),
                    next: NO_SLOT,
                    terms: Terms { granted, latest: latest.as_millis(), marks },
                };
                let primary = claim_lines(draft, owner, &lines, fill);
                if let Some(deadline) = deadline {
                    note_deadline(draft, deadline)?;
                }
                draft.totals.0 -= granted.get() as i64;
                draft.totals.1 += granted.get() as i64;
                Ok(Step::Change(Allocation {
                    reservation: ReservationId::located(sku, version, primary),
                    lines: lines_of(draft, &lines),
                    deadline,
                    version,
                    tag: marks.tag,
                    backordered: Quantity::ZERO,
                }))
            },
            |attempts| (0, AllocateError::Contended { sku, attempts }),
        )
    }

    /// Ends a reservation; `quantity` of its units (all for `None`) leave
    /// the building, the rest return to their lots.
    pub(crate) fn commit(
        &self,
        ctx: &Ctx,
        id: ReservationId,
        order: u64,
        quantity: Option<Quantity>,
        landed: &mut dyn FnMut(Landed<'_, Committed>),
    ) -> Result<Committed, EndRefusal> {
        if let Some(ended) = self.end_fast(ctx, id, Some(quantity)) {
            return ended.map(|(line, version)| Committed {
                reservation: id,
                committed: Lines::one(line),
                returned: Lines::default(),
                version,
            });
        }
        self.change(
            ctx,
            landed,
            |draft, swept| {
                let hold = match live(draft, id, order, swept)? {
                    Ok(hold) => hold,
                    Err(refusal) => return Ok(Step::Refuse(refusal)),
                };
                if let Some(waiting) = waiting_for(draft, &hold)? {
                    return Ok(Step::Refuse(EndRefusal::Waiting(waiting)));
                }
                let held = hold.held();
                let requested = quantity.unwrap_or(held);
                if requested > held {
                    return Ok(Step::Refuse(EndRefusal::ExceedsHeld { requested, held }));
                }
                // Each line (merged per lot) commits what is left to
                // commit, in line order; the rest of it returns to the lot.
                let mut remaining = requested;
                let mut back = smallvec::SmallVec::<[(u32, Quantity); 2]>::new();
                let mut committed = Lines::default();
                let mut returned = Lines::default();
                for (arrival, units) in merged(&hold) {
                    let out = units.min(remaining);
                    remaining = remaining.minus(out);
                    back.push((arrival, units.minus(out)));
                    let lot = draft.facts(arrival).id;
                    if !out.is_zero() {
                        committed.push(Line { lot, quantity: out });
                    }
                    if out < units {
                        returned.push(Line { lot, quantity: units.minus(out) });
                    }
                }
                end_hold(draft, &hold, &back)?;
                Ok(Step::Change(Committed {
                    reservation: hold.id(self.sku),
                    committed,
                    returned,
                    version: draft.view.version() + 1,
                }))
            },
            EndRefusal::Contended,
        )
    }

    /// Ends a reservation; its units return to their lots.
    pub(crate) fn release(
        &self,
        ctx: &Ctx,
        id: ReservationId,
        order: u64,
        landed: &mut dyn FnMut(Landed<'_, Released>),
    ) -> Result<Released, EndRefusal> {
        if let Some(ended) = self.end_fast(ctx, id, None) {
            return ended.map(|(line, version)| Released { reservation: id, lines: Lines::one(line), version });
        }
        self.change(
            ctx,
            landed,
            |draft, swept| {
                let hold = match live(draft, id, order, swept)? {
                    Ok(hold) => hold,
                    Err(refusal) => return Ok(Step::Refuse(refusal)),
                };
                let lines = public_lines(draft.view, &hold);
                end_hold(draft, &hold, &merged(&hold))?;
                Ok(Step::Change(Released { reservation: hold.id(self.sku), lines, version: draft.view.version() + 1 }))
            },
            EndRefusal::Contended,
        )
    }

    /// Moves a live hold's deadline `by` later, up to its latest.
    pub(crate) fn extend(
        &self,
        ctx: &Ctx,
        id: ReservationId,
        order: u64,
        by: Duration,
        landed: &mut dyn FnMut(Landed<'_, Extended>),
    ) -> Result<Extended, ExtendError> {
        self.change(
            ctx,
            landed,
            |draft, swept| {
                let hold = match live(draft, id, order, swept)? {
                    Ok(hold) => hold,
                    Err(EndRefusal::OrderPart(part)) => {
                        return Ok(Step::Refuse(ExtendError::OrderPart { id, order: OrderId(part) }));
                    }
                    Err(EndRefusal::Expired(deadline)) => {
                        return Ok(Step::Refuse(ExtendError::Expired { id, deadline }));
                    }
                    Err(EndRefusal::Unknown) => return Ok(Step::Refuse(ExtendError::UnknownReservation { id })),
                    Err(_) => return Ok(Step::Refuse(ExtendError::Ended { id })),
                };
                let Some(deadline) = hold.deadline else {
                    return Ok(Step::Refuse(ExtendError::NoDeadline { id }));
                };
                let requested = deadline.saturating_add(by);
                if requested.as_millis() > hold.latest {
                    let latest = Timestamp(hold.latest);
                    return Ok(Step::Refuse(ExtendError::BeyondMaximum { id, requested, latest }));
                }
                draft.effect(Target::SlotDeadline(hold.slot), deadline_payload(Some(requested)));
                // The index entry now names an old deadline: the hold is
                // fresh again until the next rebuild.
                note_deadline(draft, requested)?;
                Ok(Step::Change(Extended {
                    reservation: hold.id(self.sku),
                    deadline: requested,
                    version: draft.view.version() + 1,
                }))
            },
            |attempts| ExtendError::Contended { id, attempts },
        )
    }
}

impl SkuCell {
    /// Sets the deadline of `order`'s part `id`: `None` pins it (no lapse
    /// can take it while the order commits: a part that lost units to a
    /// shrink, or a backorder still waiting, is refused instead), `Some`
    /// gives a pinned part its deadline back (its latest is not checked: a
    /// pin only ever restores the deadline the part had). Answers the
    /// outcome and the deadline the part had before.
    pub(crate) fn pin(
        &self,
        ctx: &Ctx,
        id: ReservationId,
        order: u64,
        deadline: Option<Timestamp>,
        landed: &mut dyn FnMut(Landed<'_, Pinned>),
    ) -> Result<(Pinned, Option<Timestamp>), EndRefusal> {
        debug_assert!(order != 0, "only an order pins");
        let mut before = None;
        self.change(
            ctx,
            landed,
            |draft, swept| {
                let hold = match live(draft, id, order, swept)? {
                    Ok(hold) => hold,
                    Err(refusal) => return Ok(Step::Refuse(refusal)),
                };
                if deadline.is_none() {
                    if let Some(waiting) = waiting_for(draft, &hold)? {
                        return Ok(Step::Refuse(EndRefusal::Waiting(waiting)));
                    }
                    if hold.held() < hold.granted {
                        return Ok(Step::Refuse(EndRefusal::Shorted { held: hold.held(), granted: hold.granted }));
                    }
                }
                draft.effect(Target::SlotDeadline(hold.slot), deadline_payload(deadline));
                if let Some(deadline) = deadline {
                    note_deadline(draft, deadline)?;
                }
                let pinned = Pinned {
                    reservation: hold.id(self.sku),
                    order: OrderId(order),
                    deadline,
                    version: draft.view.version() + 1,
                };
                before = hold.deadline;
                Ok(Step::Change(pinned))
            },
            EndRefusal::Contended,
        )
        .map(|pinned| (pinned, before))
    }
}

/// Units a backorder still waits for, if `hold` is one that waits.
fn waiting_for(draft: &Draft, hold: &HoldData) -> Result<Option<Quantity>, Stale> {
    let structure = draft.view.structure()?;
    Ok(structure.waiting(hold.seq).map(|waiting| waiting.outstanding))
}

/// Claims and fills one slot per line (the first `Live`, the rest `Line`,
/// chained in order) and drafts their publication; returns the first.
pub(crate) fn claim_lines(draft: &mut Draft, owner: u32, lines: &[(u32, Quantity)], fill: Fill) -> u32 {
    let mut next = NO_SLOT;
    for (at, &(lot, quantity)) in lines.iter().enumerate().rev() {
        let slot = draft.claim(owner, Fill { next, ..fill });
        let part = fill.terms.marks.order != 0;
        let main = if at == 0 { Main::Live { lot, quantity, part } } else { Main::Line { lot, quantity } };
        draft.effect(Target::Slot(slot), main.payload());
        next = slot;
    }
    next
}

/// Records that a live hold has `deadline`, not known to the deadline
/// index: lowers the fresh floor and the due floor if it is earlier, and
/// raises the head's deadline flag.
pub(crate) fn note_deadline(draft: &mut Draft, deadline: Timestamp) -> Result<(), Stale> {
    let deadline = u128::from(deadline.as_millis());
    let fresh = match draft.pending(Target::Fresh) {
        Some(payload) => payload,
        None => draft.view.fresh()?,
    };
    if deadline < fresh {
        draft.effect(Target::Fresh, deadline);
    }
    let due = match draft.pending(Target::Due) {
        Some(payload) => payload,
        None => draft.view.due()?,
    };
    if deadline < due {
        draft.effect(Target::Due, deadline);
    }
    draft.flags |= DEADLINES;
    Ok(())
}
