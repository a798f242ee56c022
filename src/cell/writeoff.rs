//! Expired stock written off: the sweep that takes every unit still on
//! hand in an expired lot off the books.
//!
//! Owns: [`write_off`], what it takes and from whom.
//!
//! Must never: leave an expired unit sellable or held without saying so.
//! An expired lot's units are never drawn (eligibility), and a snapshot
//! counts its free units as expired, not available; a write-off then moves
//! every unit still on the lot — free or held — to `written_off` (the lot's
//! extension word), as a shrink with reason `Expiry` would: holds on the
//! lot lose those units, newest first, each loss moved to unexpired lots by
//! the SKU's policy where they have units and shorted for the rest.
//! Conservation stays exact: `received + adjusted + returned = available +
//! held + committed + written_off` per lot.
//!
//! Which lots it looks at: under FEFO the expired lots are a prefix of the
//! policy order (lots without an expiry sort last), so it stops at the
//! first lot still good; under FIFO it reads every lot (O(lots)). Lots with
//! nothing on hand cost a read and are skipped. Finding the holds on the
//! lots it writes off reads every live hold once (O(holds)), and only when
//! some expired lot has units out of its free count.

use super::lots::Counts;
use super::read::HoldData;
use super::stock::{held_on, shrink};
use super::view::{Draft, Stale};
use crate::clock::Timestamp;
use crate::outcome::{Line, Shortfall};
use crate::policy::AllocationPolicy;

/// Writes off every expired lot's units at `now`: the lines written off
/// (lot, units), in policy order, and what happened to the holds on them.
/// `live` reads every live hold the draft has not ended (called at most
/// once).
pub(crate) fn write_off(
    draft: &mut Draft,
    owner: u32,
    now: Timestamp,
    live: &mut dyn FnMut(&Draft) -> Result<Vec<HoldData>, Stale>,
) -> Result<(Vec<Line>, Vec<Shortfall>), Stale> {
    let view = draft.view;
    let lots = draft.lot_count;
    let fefo = view.policy() == AllocationPolicy::Fefo;
    let order: Vec<u32> = draft.structure_now()?.order.iter_from(lots, 0).collect();
    let mut expired: Vec<(u32, Counts)> = Vec::new();
    for arrival in order {
        let facts = draft.facts(arrival);
        match facts.expires_at {
            Some(expiry) if expiry <= now => {}
            // FEFO: the rest of the order expires later (or never).
            _ if fefo => break,
            _ => continue,
        }
        let counts = draft.counts(arrival)?;
        // Nothing free and nothing out of the free count: nothing on hand.
        if !counts.available.is_zero() || counts.net > counts.available {
            expired.push((arrival, counts));
        }
    }
    let mut written = Vec::new();
    let mut shortfalls = Vec::new();
    if expired.is_empty() {
        return Ok((written, shortfalls));
    }
    let mut holds =
        if expired.iter().any(|(_, counts)| counts.net > counts.available) { live(draft)? } else { Vec::new() };
    for (arrival, counts) in expired {
        let on_hand = counts.available.plus(held_on(&holds, arrival));
        if on_hand.is_zero() {
            continue;
        }
        shrink(draft, owner, &mut holds, arrival, on_hand, &|| now, &mut shortfalls)?;
        let mut ext = draft.lot_ext(arrival)?;
        ext.written_off = ext.written_off.plus(on_hand);
        draft.set_lot_ext(arrival, ext);
        written.push(Line { lot: draft.facts(arrival).id, quantity: on_hand });
    }
    Ok((written, shortfalls))
}
