//! The steady path: a sale or a hold that the cursor's lot covers, a full
//! commit and a release of a one-line hold, each computed straight from
//! the settled view into at most two effects, without a draft.
//!
//! Owns: [`SkuCell::take_fast`], [`SkuCell::hold_fast`],
//! [`SkuCell::end_fast`], and the conditions under which they apply. A
//! change they land is handed to the journal, when the ledger keeps one,
//! as the general path's would be ([`SkuCell::record_fast`]: the same
//! effects and fill, in version order).
//!
//! Must never: decide anything the general path ([`super::ops`]) would
//! decide differently. Each function either lands exactly the change the
//! general path would (same effects, same outcome, same version), refuses
//! exactly as it would (a sold-out SKU), or answers `None` and leaves the
//! call to it: when a hold could lapse (the sweep comes first), events are
//! on (their totals and notices), the request names a version or another
//! policy, the cursor's lot cannot cover the request alone or is not
//! eligible, the draw would empty the lot while others exist (the cursor
//! moves), or the hold has more than one line or lost units to a shrink.
//! The equivalence is checked by the general tests, the model proptest
//! and the linearizability histories, which all run through here.
//!
//! # Retries
//!
//! A word newer than the settled view (another change landed since the
//! settle) is a reason to settle and look again, at once, within the
//! attempt bound: never a reason to leave for the general path. Leaving
//! made the loser of a benign race pay the general path's cost, race the
//! fast paths from there (which it loses: its attempt is longer), and,
//! after a few lost attempts, yield its core, so that with more threads
//! than cores one operation in a few hundred waited out other threads'
//! time slices (lifecycle, 16 threads on 2 cores: p99.9 2.3 ms, 16× the
//! per-SKU mutex's). A lost compare-and-swap backs off by spinning
//! ([`RaceBackoff`]: about 2 µs, doubling to 4 µs, timed by the clock),
//! never by yielding: the race was lost to a change that landed, so there
//! is no one to wait for. The back-off is what makes the hot SKU fast:
//! the winner's next changes land while its cache lines are still its
//! own, instead of both threads paying a line transfer per attempt
//! (lifecycle on one SKU, 2 threads: 0.48x the per-SKU mutex with a
//! bounded spin of a few dozen hints, ~1.5x with this one; see
//! BENCHMARKS.md, "Fast-path retries").

use super::effect::{Effect, Target};
use super::head::{BACKORDERS, DEADLINES, Head, QUIET};
use super::lots::Counts;
use super::ops::{EndRefusal, HoldTerms};
use super::plan::Demand;
use super::slots::{Fill, Main, Marks, NEVER, NO_SLOT, Terms};
use super::view::{Stale, View};
use super::word::Stamped;
use super::{Ctx, SkuCell};
use crate::error::AllocateError;
use crate::ids::ReservationId;
use crate::outcome::{Allocation, Line, Lines, Sale};
use crate::quantity::Quantity;
use crate::sync::RaceBackoff;

/// Attempts a fast path makes before it leaves the call to the general
/// path (a lost race means another change landed; the general path has
/// its own bound).
const FAST_ATTEMPTS_MAX: u32 = 8;

/// What [`SkuCell::cursor_draw`] found on a settled view.
enum CursorDraw {
    /// The cursor's lot covers the demand alone: the draw.
    Draw(Draw),
    /// Every lot is empty: the refusal the general path would give.
    SoldOut(AllocateError),
    /// Not a fast-path draw: leave the call to the general path.
    General,
}

/// What a draw from the cursor's lot would be: its arrival index, its
/// word as read, its counts after the draw.
struct Draw {
    lot: u32,
    read: Stamped,
    after: Counts,
}

impl SkuCell {
    /// Whether the fast paths may run at all on this view.
    #[inline]
    fn fast_allowed(&self, view: &View) -> bool {
        !self.totals_on && !view.head.has(DEADLINES | BACKORDERS | QUIET)
    }

    /// The next head after `view`'s, with this thread's descriptor.
    #[inline]
    fn next_head(view: &View, ctx: &Ctx) -> Head {
        Head { version: view.version() + 1, desc: ctx.desc.0, ..view.head }
    }

    /// The draw of `demand` from the cursor's lot, if it is the policy's
    /// whole draw and leaves the cursor where it is (see [`CursorDraw`]).
    /// `Err(Stale)`: the lot's word is newer than `view`, another change
    /// landed; settle and look again.
    #[inline]
    fn cursor_draw(&self, view: &View, demand: &Demand) -> Result<CursorDraw, Stale> {
        let head = view.head;
        if head.lots == 0
            || demand.policy.is_some_and(|policy| policy != self.policy)
            || !matches!(demand.locations, crate::policy::Locations::Any)
            || demand.exact.is_some()
        {
            return Ok(CursorDraw::General);
        }
        let lot = head.cursor;
        let read = view.lot_word(lot)?;
        let counts = Counts::from_payload(read.payload);
        if counts.available.is_zero() {
            // The cursor's lot is empty: so is every lot (sold out).
            let requested = demand.quantity;
            return Ok(CursorDraw::SoldOut(AllocateError::Insufficient {
                sku: self.sku,
                requested,
                available: Quantity::ZERO,
            }));
        }
        let Some(left) = counts.available.checked_sub(demand.quantity) else { return Ok(CursorDraw::General) };
        if (left.is_zero() && head.lots > 1) || !demand.admits(view.expires_at(lot)) {
            return Ok(CursorDraw::General);
        }
        Ok(CursorDraw::Draw(Draw { lot, read, after: Counts { available: left, ..counts } }))
    }

    /// An immediate sale the cursor's lot covers (see the module docs).
    pub(crate) fn take_fast(&self, ctx: &Ctx, demand: &Demand) -> Option<Result<Sale, AllocateError>> {
        let mut backoff = RaceBackoff::default();
        for _ in 0..FAST_ATTEMPTS_MAX {
            let view = self.settle(ctx.registry);
            if !self.fast_allowed(&view) {
                return None;
            }
            let draw = match self.cursor_draw(&view, demand) {
                Ok(CursorDraw::Draw(draw)) => draw,
                Ok(CursorDraw::SoldOut(refusal)) => return Some(Err(refusal)),
                Ok(CursorDraw::General) => return None,
                Err(Stale) => continue,
            };
            let payload = draw.after.payload();
            let head = Self::next_head(&view, ctx);
            let effect = Effect::new(Target::Lot(draw.lot), payload);
            if self.install(ctx, &view, head, core::iter::once(effect), None) {
                self.lots.get(draw.lot).word.set_from(draw.read, head.version, payload);
                self.finished(head.version);
                self.record_fast(ctx, head, &[effect], None);
                let line = Line { lot: view.facts(draw.lot).id, quantity: demand.quantity };
                return Some(Ok(Sale { sku: self.sku, lines: Lines::one(line), version: head.version }));
            }
            backoff.lost();
        }
        None
    }

    /// A hold without a deadline that the cursor's lot covers (see the
    /// module docs).
    pub(crate) fn hold_fast(
        &self,
        ctx: &Ctx,
        demand: &Demand,
        terms: Option<HoldTerms>,
        marks: Marks,
    ) -> Option<Result<Allocation, AllocateError>> {
        if terms.is_some() {
            return None;
        }
        let mut backoff = RaceBackoff::default();
        let mut claimed: Option<(u32, u64)> = None;
        let slots = self.slots.get_or_init(Default::default);
        let owner = ctx.desc.0;
        for _ in 0..FAST_ATTEMPTS_MAX {
            let view = self.settle(ctx.registry);
            if !self.fast_allowed(&view) {
                break;
            }
            let draw = match self.cursor_draw(&view, demand) {
                Ok(CursorDraw::Draw(draw)) => draw,
                Ok(CursorDraw::SoldOut(refusal)) => {
                    if let Some((index, version)) = claimed {
                        slots.unclaim(index, version, owner);
                    }
                    return Some(Err(refusal));
                }
                Ok(CursorDraw::General) => break,
                Err(Stale) => continue,
            };
            let (index, version) = *claimed.get_or_insert_with(|| slots.claim(owner));
            let slot = slots.get(index).expect("a claimed slot is installed");
            let terms = Terms { granted: demand.quantity, latest: 0, marks };
            let fill = Fill { deadline: NEVER, next: NO_SLOT, terms };
            slot.fill(version, fill);
            let lot_payload = draw.after.payload();
            let live = Main::Live { lot: draw.lot, quantity: demand.quantity, part: marks.order != 0 }.payload();
            let effects = [Effect::new(Target::Lot(draw.lot), lot_payload), Effect::new(Target::Slot(index), live)];
            let head = Self::next_head(&view, ctx);
            if self.install(ctx, &view, head, effects.into_iter(), None) {
                self.lots.get(draw.lot).word.set_from(draw.read, head.version, lot_payload);
                let reserved = Stamped { version, payload: Main::Reserved { owner }.payload() };
                slot.main.set_from(reserved, head.version, live);
                self.finished(head.version);
                self.record_fast(ctx, head, &effects, Some((index, version, fill)));
                let line = Line { lot: view.facts(draw.lot).id, quantity: demand.quantity };
                return Some(Ok(Allocation {
                    reservation: ReservationId::located(self.sku, head.version, index),
                    lines: Lines::one(line),
                    deadline: None,
                    version: head.version,
                    tag: marks.tag,
                    backordered: Quantity::ZERO,
                }));
            }
            backoff.lost();
        }
        if let Some((index, version)) = claimed {
            slots.unclaim(index, version, owner);
        }
        None
    }

    /// Ends a live one-line reservation that no shrink touched, found at
    /// its id's slot: committed whole (`commit` is `Some(quantity)`, the
    /// quantity `None` or all the hold has) or released (`commit` is
    /// `None`). Answers the line that ended, or `None` for the general path
    /// (which also gives every refusal: unknown, ended, lapsed, a partial
    /// or too large commit).
    pub(crate) fn end_fast(
        &self,
        ctx: &Ctx,
        id: ReservationId,
        commit: Option<Option<Quantity>>,
    ) -> Option<Result<(Line, u64), EndRefusal>> {
        let slots = self.slots.get()?;
        let slot = slots.get(id.slot())?;
        let mut backoff = RaceBackoff::default();
        for _ in 0..FAST_ATTEMPTS_MAX {
            let view = self.settle(ctx.registry);
            if !self.fast_allowed(&view) {
                return None;
            }
            let main = slot.main.load();
            if main.version > view.version() {
                // The slot moved after the settle: look again.
                continue;
            }
            // An order's part ends through its order (the general path checks).
            let Main::Live { lot, quantity, part: false } = Main::from_payload(main.payload) else { return None };
            let Ok(ext) = view.ext(slot) else {
                // Another change landed since the settle: look again.
                continue;
            };
            if main.version != id.seq || ext.next != NO_SLOT || !ext.taken.is_zero() {
                return None;
            }
            if commit.is_some_and(|asked| asked.is_some_and(|asked| asked != quantity)) {
                return None;
            }
            let mut head = Self::next_head(&view, ctx);
            let free = Main::Free.payload();
            // The change's effects: the first `count` of `effects`.
            let (landed, effects, count) = if commit.is_some() {
                let effect = Effect::new(Target::Slot(id.slot()), free);
                let landed = self.install(ctx, &view, head, core::iter::once(effect), None);
                if landed {
                    slot.main.set_from(main, head.version, free);
                }
                (landed, [effect, effect], 1)
            } else {
                // Units return to the lot; the cursor moves back to it if
                // it comes first in policy order, or if no lot had units.
                let (Ok(read), Ok(cursor)) = (view.lot_word(lot), view.counts(head.cursor)) else {
                    // Another change landed since the settle: look again.
                    continue;
                };
                let mut counts = Counts::from_payload(read.payload);
                let cursor_empty = cursor.available.is_zero();
                counts.available = counts.available.plus(quantity);
                if cursor_empty
                    || (lot != head.cursor && view.key(self.policy, lot) < view.key(self.policy, head.cursor))
                {
                    head.cursor = lot;
                }
                let back = counts.payload();
                let effects = [Effect::new(Target::Slot(id.slot()), free), Effect::new(Target::Lot(lot), back)];
                let landed = self.install(ctx, &view, head, effects.into_iter(), None);
                if landed {
                    slot.main.set_from(main, head.version, free);
                    self.lots.get(lot).word.set_from(read, head.version, back);
                }
                (landed, effects, 2)
            };
            if landed {
                slots.freed(id.slot());
                self.finished(head.version);
                self.record_fast(ctx, head, &effects[..count], None);
                return Some(Ok((Line { lot: view.facts(lot).id, quantity }, head.version)));
            }
            backoff.lost();
        }
        None
    }
}
