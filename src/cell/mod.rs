//! The SKU cell: one SKU's current version, and the one compare-and-swap
//! loop through which every change to its stock goes.
//!
//! Owns: [`SkuCell`] and its retry policy ([`ATTEMPTS_MAX`], backoff).
//!
//! Must never: block, or publish a state that was not derived from the
//! state it replaces. A change is computed from a loaded version, off to
//! the side, and installed only if that version is still current; a thread
//! that stalls anywhere in the loop holds nothing the others need.
//!
//! # Orderings
//!
//! The cell is a [`SnapshotCell`] (arc-swap), whose load and
//! compare-and-swap are sequentially consistent. A successful swap
//! publishes the whole new version (lots, holds, totals) at once: any
//! thread that loads the new `Arc` sees everything written into it before
//! the swap, and a version is never modified after it is published. The
//! swap succeeds only if the cell still holds the exact `Arc` the change was
//! derived from, so two changes derived from one version cannot both land
//! (no lost update), and an allocation's lines are the policy's choice from
//! the version it replaced.
//!
//! The sold-out hint (`SkuCell::sold_out`) lets a refusal skip loading the
//! version: `hint` packs `version << 1 | sold_out` and only ever grows
//! (`fetch_max`), all SeqCst, so its operations and the cell's
//! compare-and-swaps fall in one total order. Every swap that publishes a
//! version `v` which is *not* sold out (units available, or a hold with a
//! deadline that could lapse and return units) first raises the hint to
//! `v << 1` (before the swap); every swap that publishes a sold-out version
//! `v` raises it to `v << 1 | 1` after the swap. So a hint read as
//! "sold out at `v`" means: version `v` was published sold out, and no swap
//! of a later version that is not sold out preceded the read (its
//! pre-raise, `>= (v + 1) << 1`, would precede it and outrank `v << 1 | 1`);
//! the version current at the read is `v` or a later sold-out one. A stale
//! hint can only say "not sold out" (the slow path then decides), never the
//! reverse.

mod catalog;
mod counters;
mod hold;
#[cfg(all(test, stockroom_loom))]
pub(crate) mod loom;
mod state;

#[cfg(test)]
pub(crate) use counters::Counts; // the audit's tests corrupt counters with it
pub(crate) use hold::Hold;
pub(crate) use state::{Demand, HoldLookup, HoldTerms, SkuState};

use crate::clock::Moment;
use crate::outcome::Swept;
use crate::sync::{Arc, AtomicU64, Backoff, Ordering, SnapshotCell, SnapshotGuard};

/// Attempts at one change before it is refused as contended. Every failed
/// attempt means another change landed, so the ledger as a whole made
/// progress; the bound keeps one unlucky caller from spinning forever.
pub(crate) const ATTEMPTS_MAX: u32 = 1 << 16;

/// One SKU's versioned state.
pub(crate) struct SkuCell {
    state: SnapshotCell<SkuState>,
    /// `version << 1 | sold_out` of a published version; only grows (see
    /// the module's `# Orderings`). Beside `state`: the swaps that move it
    /// already own this cache line.
    hint: AtomicU64,
}

/// The hint for `state`: its version, and whether it is sold out.
fn hint_of(state: &SkuState) -> u64 {
    state.version << 1 | u64::from(state.is_sold_out())
}

impl SkuCell {
    pub(crate) fn new(state: SkuState) -> SkuCell {
        let hint = AtomicU64::new(hint_of(&state));
        SkuCell { state: SnapshotCell::new(Arc::new(state)), hint }
    }

    /// True only if a sold-out version is current (or was, at some instant
    /// during this call): no unit available and no hold that could lapse.
    /// One atomic load; a `false` may be stale, a `true` never is.
    pub(crate) fn sold_out(&self) -> bool {
        // SeqCst: one total order with the raises in `publish` and the
        // cell's swaps (see `# Orderings`).
        self.hint.load(Ordering::SeqCst) & 1 == 1
    }

    /// Installs `next` if `current` is still the cell's version, keeping the
    /// sold-out hint sound around the swap.
    fn publish(&self, current: &Arc<SkuState>, next: &Arc<SkuState>) -> bool {
        let hint = hint_of(next);
        let sold_out = hint & 1 == 1;
        // SeqCst: this raise precedes the swap below in the total order, so
        // no reader sees an older "sold out" once `next` may be current.
        if !sold_out && self.hint.load(Ordering::SeqCst) < hint {
            self.hint.fetch_max(hint, Ordering::SeqCst);
        }
        if self.state.compare_and_swap(current, Arc::clone(next)).is_err() {
            return false;
        }
        if sold_out {
            // SeqCst: after the swap that made the sold-out `next` current;
            // a later version's pre-raise outranks it.
            self.hint.fetch_max(hint, Ordering::SeqCst);
        }
        true
    }

    /// The current version, without touching its reference count.
    pub(crate) fn load(&self) -> SnapshotGuard<SkuState> {
        self.state.load()
    }

    /// Applies `step` to the current version and publishes its result by
    /// compare-and-swap, retrying from the new current version on conflict.
    ///
    /// Lapsed holds go first: while the loaded version has a hold whose
    /// deadline passed at `moment`, a sweep returning their units is
    /// published (a version of its own) before `step` sees the SKU, so no
    /// step ever counts a lapsed hold as held. `step` gets the holds this
    /// call swept (to tell "it lapsed" from "it ended"). `landed` hears of
    /// every version this call published, in order: sweeps and the step's.
    ///
    /// `step` is pure: a refusal returns at once with nothing published by
    /// it (a sold-out SKU costs one load). After [`ATTEMPTS_MAX`] lost races
    /// the change is refused with `contended(attempts)`.
    pub(crate) fn update<R, E>(
        &self,
        moment: &Moment,
        mut step: impl FnMut(&SkuState, &[Swept]) -> Result<(SkuState, R), E>,
        contended: impl FnOnce(u32) -> E,
        landed: &mut dyn FnMut(&SkuState, &SkuState, Landed<'_, R>),
    ) -> Result<R, E> {
        let backoff = Backoff::new();
        let mut swept = Vec::new();
        for _ in 0..ATTEMPTS_MAX {
            let current = self.state.load();
            if current.has_lapsed(moment) {
                self.try_sweep(&current, moment, &mut swept, landed);
                continue;
            }
            let (next, result) = step(&current, &swept)?;
            debug_assert_eq!(next.version, current.version + 1, "a change is exactly one version");
            let next = Arc::new(next);
            if self.publish(&current, &next) {
                landed(&current, &next, Landed::Step(&result));
                return Ok(result);
            }
            backoff.snooze();
        }
        Err(contended(ATTEMPTS_MAX))
    }

    /// The current version with no hold lapsed at `moment`: sweeps first
    /// if one has (queries see expiry exactly, not only after a sweep).
    /// `None` after [`ATTEMPTS_MAX`] lost races.
    pub(crate) fn current(
        &self,
        moment: &Moment,
        swept: &mut Vec<Swept>,
        landed: &mut dyn FnMut(&SkuState, &SkuState, Landed<'_, ()>),
    ) -> Option<Arc<SkuState>> {
        for _ in 0..ATTEMPTS_MAX {
            let current = self.state.load_full();
            if !current.has_lapsed(moment) {
                return Some(current);
            }
            self.try_sweep(&current, moment, swept, landed);
        }
        None
    }

    /// Sweeps at `moment` (lapsed holds, and with `lots` newly expired
    /// lots), retrying on conflict; `None` when there was nothing to sweep,
    /// or after [`ATTEMPTS_MAX`] lost races.
    pub(crate) fn sweep<R>(
        &self,
        moment: &Moment,
        lots: bool,
        landed: &mut dyn FnMut(&SkuState, &SkuState, Landed<'_, R>),
    ) -> Option<Swept> {
        let backoff = Backoff::new();
        for _ in 0..ATTEMPTS_MAX {
            let current = self.state.load();
            let (next, swept) = current.sweep(moment.now(), lots)?;
            let next = Arc::new(next);
            if self.publish(&current, &next) {
                landed(&current, &next, Landed::Swept(&swept));
                return Some(swept);
            }
            backoff.snooze();
        }
        None
    }

    /// One attempt at sweeping the lapsed holds of `current`.
    fn try_sweep<R>(
        &self,
        current: &Arc<SkuState>,
        moment: &Moment,
        swept: &mut Vec<Swept>,
        landed: &mut dyn FnMut(&SkuState, &SkuState, Landed<'_, R>),
    ) {
        let Some((next, sweep)) = current.sweep(moment.now(), false) else { return };
        let next = Arc::new(next);
        if self.publish(current, &next) {
            landed(current, &next, Landed::Swept(&sweep));
            swept.push(sweep);
        }
    }
}

/// A version one call published: a sweep of lapsed holds, or the call's
/// own change with its result.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Landed<'a, R> {
    Swept(&'a Swept),
    Step(&'a R),
}
