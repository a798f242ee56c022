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

mod catalog;
mod hold;
#[cfg(all(test, stockroom_loom))]
pub(crate) mod loom;
mod state;

pub(crate) use hold::Hold;
pub(crate) use state::{Demand, HoldLookup, HoldTerms, SkuState};

use crate::clock::Moment;
use crate::outcome::Swept;
use crate::sync::{Arc, Backoff, SnapshotCell, SnapshotGuard};

/// Attempts at one change before it is refused as contended. Every failed
/// attempt means another change landed, so the ledger as a whole made
/// progress; the bound keeps one unlucky caller from spinning forever.
pub(crate) const ATTEMPTS_MAX: u32 = 1 << 16;

/// One SKU's versioned state.
pub(crate) struct SkuCell {
    state: SnapshotCell<SkuState>,
}

impl SkuCell {
    pub(crate) fn new(state: SkuState) -> SkuCell {
        SkuCell { state: SnapshotCell::new(Arc::new(state)) }
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
            if self.state.compare_and_swap(&current, Arc::clone(&next)).is_ok() {
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
            if self.state.compare_and_swap(&current, Arc::clone(&next)).is_ok() {
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
        if self.state.compare_and_swap(current, Arc::clone(&next)).is_ok() {
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
