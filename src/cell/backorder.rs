//! Backorders: reservations accepted while stock is short, that wait for
//! the rest of their units in arrival order.
//!
//! Owns: how a backorder is accepted ([`accept`]), how waiting backorders
//! are filled by the change that brings units in ([`fill_waiting`]), and
//! how one leaves the queue when it ends ([`forget`]).
//!
//! Must never: let a new request take units a waiting backorder could use.
//! That holds by construction: every change that puts units back into a
//! lot (a receipt, a growth, a release, a lapse, a partial commit's rest,
//! a return) fills the waiting backorders, oldest first, in the same change
//! — before the change is published, so before anyone else can see those
//! units. A backorder takes only units eligible for it (its minimum shelf
//! life), so a younger backorder may take units an older one cannot use.
//!
//! A backorder is a reservation whose first slot is a `Head` (it holds no
//! line of its own); its lines follow through the extension words, one
//! appended per lot per fill. The queue (seq, head slot, units still
//! wanted) lives in the SKU's structure, bounded by [`BACKORDERS_MAX`], so
//! every change to it publishes a new structure: backorders are a slow
//! path, and while any waits the head's `BACKORDERS` flag keeps the fast
//! paths off.

use super::effect::Target;
use super::head::BACKORDERS;
use super::plan::{Planned, draw, walk};
use super::slots::{Ext, Fill, Main, NO_SLOT};
use super::structure::{BACKORDERS_MAX, Waiting};
use super::view::{Draft, Stale};
use crate::ids::ReservationId;
use crate::outcome::{Line, Lines};
use crate::policy::Eligibility;
use crate::quantity::Quantity;
use std::time::Duration;

/// What one fill did to one waiting backorder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Filled {
    pub(crate) reservation: ReservationId,
    /// The units this fill drew, per lot.
    pub(crate) drawn: Lines,
    /// Units it still waits for (zero: it is whole, and left the queue).
    pub(crate) outstanding: Quantity,
}

/// Drafts a new backorder of `wanted` units that gets `planned` now (what
/// the SKU has for it, possibly nothing) and waits for the rest: a `Head`
/// slot, a line slot per planned lot, a queue entry. Answers the head slot,
/// or `None` if the queue is full.
pub(crate) fn accept(
    draft: &mut Draft,
    owner: u32,
    planned: &Planned,
    outstanding: Quantity,
    fill: Fill,
    min_shelf_life: Duration,
) -> Result<Option<u32>, Stale> {
    debug_assert!(!outstanding.is_zero(), "a backorder waits for something");
    if draft.structure_now()?.backorders.len() >= BACKORDERS_MAX {
        return Ok(None);
    }
    draw(draft, planned)?;
    let first = chain(draft, owner, planned, fill);
    let head = draft.claim(owner, Fill { next: first, ..fill });
    draft.effect(Target::Slot(head), Main::Head { part: fill.terms.marks.order != 0 }.payload());
    let seq = draft.view.version() + 1;
    let min_shelf_life = u64::try_from(min_shelf_life.as_millis()).unwrap_or(u64::MAX);
    let structure = draft.structure_mut()?;
    // Arrival order is seq order: this change's seq is above every queued one.
    debug_assert!(structure.backorders.last().is_none_or(|last| last.seq < seq));
    std::sync::Arc::make_mut(&mut structure.backorders).push(Waiting { seq, slot: head, outstanding, min_shelf_life });
    draft.flags |= BACKORDERS;
    Ok(Some(head))
}

/// Takes backorder `seq` out of the queue (it ended: released, lapsed, or
/// its SKU's structure says so).
pub(crate) fn forget(draft: &mut Draft, seq: u64) -> Result<(), Stale> {
    let structure = draft.structure_mut()?;
    let queue = std::sync::Arc::make_mut(&mut structure.backorders);
    queue.retain(|waiting| waiting.seq != seq);
    if queue.is_empty() {
        draft.flags &= !BACKORDERS;
    }
    Ok(())
}

/// Fills the waiting backorders from the units the draft leaves available,
/// oldest first, each with what is eligible for it (see the module docs).
/// `now` reads the operation's clock (only if a lot or a backorder's shelf
/// life needs it).
pub(crate) fn fill_waiting(
    draft: &mut Draft,
    owner: u32,
    now: &dyn Fn() -> crate::clock::Timestamp,
) -> Result<Vec<Filled>, Stale> {
    let queue = std::sync::Arc::clone(&draft.structure_now()?.backorders);
    let mut filled = Vec::new();
    let mut left: Vec<Waiting> = Vec::with_capacity(queue.len());
    for waiting in queue.iter() {
        let eligibility = Eligibility::at(now(), Duration::from_millis(waiting.min_shelf_life));
        let (planned, outstanding) = walk(draft, None, eligibility, waiting.outstanding, None)?;
        if planned.is_empty() {
            left.push(*waiting);
            continue;
        }
        draw(draft, &planned)?;
        let first = chain(
            draft,
            owner,
            &planned,
            Fill { deadline: super::slots::NEVER, next: NO_SLOT, terms: Default::default() },
        );
        let (last, mut ext) = chain_end(draft, waiting.slot)?;
        ext.next = first;
        draft.effect(Target::SlotExt(last), ext.payload());
        let units = planned.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.1));
        draft.totals.0 -= units.get() as i64;
        draft.totals.1 += units.get() as i64;
        filled.push(Filled {
            reservation: ReservationId::located(draft.view.cell.sku, waiting.seq, waiting.slot),
            drawn: planned.iter().map(|&(lot, quantity)| Line { lot: draft.facts(lot).id, quantity }).collect(),
            outstanding,
        });
        if !outstanding.is_zero() {
            left.push(Waiting { outstanding, ..*waiting });
        }
    }
    if !filled.is_empty() {
        let empty = left.is_empty();
        draft.structure_mut()?.backorders = std::sync::Arc::new(left);
        if empty {
            draft.flags &= !BACKORDERS;
        }
    }
    Ok(filled)
}

/// Claims one `Line` slot per planned lot, chained in order; answers the
/// first ([`NO_SLOT`] for none).
fn chain(draft: &mut Draft, owner: u32, planned: &Planned, fill: Fill) -> u32 {
    let mut next = NO_SLOT;
    for &(lot, quantity) in planned.iter().rev() {
        let slot = draft.claim(owner, Fill { next, ..fill });
        draft.effect(Target::Slot(slot), Main::Line { lot, quantity }.payload());
        next = slot;
    }
    next
}

/// The last slot of the chain that starts at `head`, and its extension
/// word as this draft leaves it.
fn chain_end(draft: &Draft, head: u32) -> Result<(u32, Ext), Stale> {
    let slots = draft.view.slots().expect("a backorder has slots");
    let mut at = head;
    for _ in 0..=super::head::LOTS_MAX {
        let ext = match draft.pending(Target::SlotExt(at)) {
            Some(payload) => Ext::from_payload(payload),
            None => draft.view.ext(slots.get(at).expect("a chain names installed slots"))?,
        };
        if ext.next == NO_SLOT {
            return Ok((at, ext));
        }
        at = ext.next;
    }
    unreachable!("a backorder's chain does not end")
}
