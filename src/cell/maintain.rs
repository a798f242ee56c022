//! Time's changes: holds that lapse at their deadline, lots that expire,
//! and the deadline bookkeeping that finds them without a scan.
//!
//! Owns: [`check`] (does anything lapse at this instant, before an
//! operation decides?), [`Bookkeeping`] (what a look at the deadline index
//! found: holds to lapse, the index and floors to write next),
//! [`apply`] (draft those writes), [`expire`] (the explicit sweep of
//! `expire_due`, lots included) and the per-version memo.
//!
//! Must never: let an operation decide on a state in which a hold whose
//! deadline has passed still counts as held, nor publish a version that
//! changes nothing a reader can see. Lapses are a change of their own (a
//! sweep version) published before the operation that noticed them.
//! Bookkeeping that changes nothing visible (consuming index entries of
//! holds that already ended, raising the floor) rides along with the next
//! change of the SKU, whatever it is; until then a per-version memo in the
//! cell saves a refusal or a read from redoing the same look.

use super::deadlines::{DeadlineIndex, Entry};
use super::effect::Target;
use super::head::DEADLINES;
use super::plan::give;
use super::read::{HoldData, hold_at, holds};
use super::slots::{Main, NEVER};
use super::view::{Draft, Stale, View};
use crate::clock::Timestamp;
use crate::ids::LotId;
use crate::outcome::{Lapsed, Line, Lines, Swept};
use crate::sync::{Arc, Ordering};

/// What a look at the deadline bookkeeping found at one version.
#[derive(Debug, Default)]
pub(crate) struct Bookkeeping {
    /// Holds whose deadline passed, by seq.
    pub(crate) lapsed: Vec<HoldData>,
    /// The index to install.
    pub(crate) index: Option<Arc<DeadlineIndex>>,
    /// The floor to write.
    pub(crate) due: Option<u128>,
    /// The fresh floor to write.
    pub(crate) fresh: Option<u128>,
    /// No live hold has a deadline any more.
    pub(crate) clear: bool,
}

/// What an operation must do about time before it decides.
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    /// Holds lapsed: publish this sweep first.
    pub(crate) sweep: Option<Swept>,
    pub(crate) bookkeeping: Bookkeeping,
}

/// Looks for holds lapsed at `now` (`None`: the SKU has no deadline, so
/// the clock was not read).
pub(crate) fn check(view: &View, now: Option<Timestamp>) -> Result<Option<Maintenance>, Stale> {
    let Some(now) = now.filter(|_| view.head.has(DEADLINES)) else { return Ok(None) };
    if view.due()? > u128::from(now.as_millis()) {
        return Ok(None);
    }
    let version = view.version();
    if let Some(extra) = view.extra() {
        // Relaxed: a memo keyed by version; a stale value is ignored.
        let memo = extra.memo.load(Ordering::Relaxed);
        if (memo >> 64) as u64 == version && now.as_millis() < memo as u64 {
            return Ok(None);
        }
    }
    let bookkeeping = look(view, now)?;
    if bookkeeping.lapsed.is_empty() {
        if let Some(extra) = view.extra() {
            // A floor past every u64 instant memoizes as u64::MAX: an
            // operation at the end of time looks again, which is harmless.
            let floor = bookkeeping.due.unwrap_or(NEVER).min(u128::from(u64::MAX)) as u64;
            // Relaxed: see above; the memo is only ever a shortcut.
            extra.memo.store(u128::from(version) << 64 | u128::from(floor), Ordering::Relaxed);
        }
        return Ok(Some(Maintenance { sweep: None, bookkeeping }));
    }
    let sweep = Swept::new(view.cell.sku, now, lapsed_records(view, &bookkeeping.lapsed), Vec::new(), version + 1);
    Ok(Some(Maintenance { sweep: Some(sweep), bookkeeping }))
}

/// The deadline bookkeeping at `now` (see [`super::deadlines`]).
fn look(view: &View, now: Timestamp) -> Result<Bookkeeping, Stale> {
    let instant = now;
    let now = now.as_millis();
    let fresh = view.fresh()?;
    let index = view.index().unwrap_or_default();
    let mut bookkeeping = Bookkeeping::default();
    let remaining = if fresh <= u128::from(now) {
        // A hold the index does not know may be due: rebuild from every
        // live hold with a deadline.
        let mut entries = Vec::new();
        for hold in holds(view)? {
            match hold.deadline {
                Some(deadline) if deadline <= instant => bookkeeping.lapsed.push(hold),
                Some(deadline) => {
                    entries.push(Entry { deadline: deadline.as_millis(), seq: hold.seq, slot: hold.slot })
                }
                None => {}
            }
        }
        bookkeeping.fresh = Some(NEVER);
        DeadlineIndex::build(entries)
    } else {
        let mut consumed = 0;
        for entry in index.pending() {
            if entry.deadline > now {
                break;
            }
            consumed += 1;
            if let Some(hold) = hold_at(view, entry.slot)? {
                if hold.seq == entry.seq && hold.deadline == Some(Timestamp(entry.deadline)) {
                    bookkeeping.lapsed.push(hold);
                }
            }
        }
        index.consumed(consumed)
    };
    let fresh_after = bookkeeping.fresh.unwrap_or(fresh);
    let due = remaining.front().map_or(NEVER, u128::from).min(fresh_after);
    bookkeeping.clear = due == NEVER;
    bookkeeping.due = Some(due);
    bookkeeping.index = Some(Arc::new(remaining));
    bookkeeping.lapsed.sort_unstable_by_key(|hold| hold.seq);
    Ok(bookkeeping)
}

/// Drafts the bookkeeping's writes: lapsed holds end and give their units
/// back; the index and floors are replaced.
pub(crate) fn apply(draft: &mut Draft, bookkeeping: Option<&Bookkeeping>) -> Result<(), Stale> {
    let Some(bookkeeping) = bookkeeping else { return Ok(()) };
    for hold in &bookkeeping.lapsed {
        end_hold(draft, hold, &merged(hold))?;
    }
    if let Some(index) = &bookkeeping.index {
        draft.index = Some(Arc::clone(index));
    }
    if let Some(due) = bookkeeping.due {
        draft.effect(Target::Due, due);
    }
    if let Some(fresh) = bookkeeping.fresh {
        draft.effect(Target::Fresh, fresh);
    }
    if bookkeeping.clear {
        draft.flags &= !DEADLINES;
    }
    Ok(())
}

/// Drafts the end of `hold`: every line's slot is freed, and `returned`
/// units go back to each lot (`(arrival, units)`; the rest of what the hold
/// had left the building).
pub(crate) fn end_hold(
    draft: &mut Draft,
    hold: &HoldData,
    returned: &[(u32, crate::quantity::Quantity)],
) -> Result<(), Stale> {
    if hold.lines.first().is_none_or(|line| line.slot != hold.slot) {
        // A backorder's head slot, which holds no line of its own.
        draft.effect(Target::Slot(hold.slot), Main::Free.payload());
    }
    for line in &hold.lines {
        draft.effect(Target::Slot(line.slot), Main::Free.payload());
    }
    if draft.structure_now()?.waiting(hold.seq).is_some() {
        super::backorder::forget(draft, hold.seq)?;
    }
    for &(lot, back) in returned {
        give(draft, lot, back)?;
        draft.totals.0 += back.get() as i64;
    }
    draft.totals.1 -= hold.held().get() as i64;
    Ok(())
}

/// The public lines of a hold: merged per lot in order of first
/// appearance (a shrink's re-sourcing may add a second line on a lot),
/// empty ones left out.
pub(crate) fn public_lines(view: &View, hold: &HoldData) -> Lines {
    merged(hold).into_iter().map(|(lot, quantity)| Line { lot: view.facts(lot).id, quantity }).collect()
}

/// A hold's lines merged per lot, in order of each lot's first line not
/// removed (a line emptied while its lot's line kept units still marks the
/// lot's place: the contract merges re-sourced units into the line already
/// on the lot, and removes a line only when it reaches zero), lots with
/// nothing left out: `(arrival, quantity)`.
pub(crate) fn merged(hold: &HoldData) -> smallvec::SmallVec<[(u32, crate::quantity::Quantity); 2]> {
    let mut merged: smallvec::SmallVec<[(u32, crate::quantity::Quantity); 2]> = smallvec::SmallVec::new();
    for line in hold.lines.iter().filter(|line| !line.removed) {
        match merged.iter_mut().find(|(lot, _)| *lot == line.lot) {
            Some(entry) => entry.1 = entry.1.plus(line.quantity),
            None => merged.push((line.lot, line.quantity)),
        }
    }
    merged.retain(|(_, quantity)| !quantity.is_zero());
    merged
}

fn lapsed_records(view: &View, lapsed: &[HoldData]) -> Vec<Lapsed> {
    lapsed
        .iter()
        .map(|hold| Lapsed {
            reservation: hold.id(view.cell.sku),
            deadline: hold.deadline.expect("a lapsed hold had a deadline"),
            lines: public_lines(view, hold),
        })
        .collect()
}

/// The explicit sweep at `now` (`expire_due`): lapsed holds, with `lots`
/// the lots whose expiry passed since the last such sweep, and with
/// `write_off` every expired lot's units written off (see
/// [`super::writeoff`]), in one version; `None` when there is nothing to
/// report.
pub(crate) fn expire(
    draft: &mut Draft,
    owner: u32,
    now: Timestamp,
    lots: bool,
    write_off: bool,
) -> Result<Option<Swept>, Stale> {
    let view = draft.view;
    let bookkeeping = if view.head.has(DEADLINES) && view.due()? <= u128::from(now.as_millis()) {
        look(view, now)?
    } else {
        Bookkeeping::default()
    };
    let structure = view.structure()?;
    let expired_lots: Vec<LotId> =
        if lots { newly_expired(view, now, structure.lots_checked_until)? } else { Vec::new() };
    apply(draft, Some(&bookkeeping))?;
    let (written_off, shortfalls) = if write_off {
        let lapsed: Vec<u64> = bookkeeping.lapsed.iter().map(|hold| hold.seq).collect();
        let mut live = |_: &Draft| -> Result<Vec<HoldData>, Stale> {
            let mut live = holds(view)?;
            live.retain(|hold| !lapsed.contains(&hold.seq));
            Ok(live)
        };
        super::writeoff::write_off(draft, owner, now, &mut live)?
    } else {
        (Vec::new(), Vec::new())
    };
    if bookkeeping.lapsed.is_empty() && expired_lots.is_empty() && written_off.is_empty() {
        return Ok(None);
    }
    let mut swept =
        Swept::new(view.cell.sku, now, lapsed_records(view, &bookkeeping.lapsed), expired_lots, view.version() + 1);
    swept.written_off = written_off;
    swept.shortfalls = shortfalls;
    if !swept.expired_lots.is_empty() {
        let checked = Some(structure.lots_checked_until.map_or(now, |until| until.max(now)));
        draft.structure_mut()?.lots_checked_until = checked;
    }
    Ok(Some(swept))
}

/// Lots expiring at or before `now`, not yet reported (expiring after
/// `checked`), in policy order.
fn newly_expired(view: &View, now: Timestamp, checked: Option<Timestamp>) -> Result<Vec<LotId>, Stale> {
    let structure = view.structure()?;
    let mut expired = Vec::new();
    for arrival in structure.order.iter_from(view.head.lots, 0) {
        let facts = view.facts(arrival);
        if let Some(expiry) = facts.expires_at {
            if expiry <= now && checked.is_none_or(|until| expiry > until) {
                expired.push(facts.id);
            }
        }
    }
    Ok(expired)
}
