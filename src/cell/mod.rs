//! The SKU cell: one SKU's current version, and the one compare-and-swap
//! loop through which every change to its stock goes.
//!
//! Owns: [`SkuCell`], its retry policy ([`ATTEMPTS_MAX`], backoff), and the
//! fast path of immediate sales through a version's sales word.
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
//!
//! The sales word (`SkuState::sales`, see [`sales`]) lets an immediate sale
//! of the first lot skip publishing a version: one compare-and-swap on the
//! current version's word counts it, and the sale's version is the
//! version's own plus its place among the word's sales. What a published
//! version `S` stands for is `S` with its word's sales folded in. Every
//! change that replaces `S` (a step, a sweep, a fold after a refusal)
//! computes from the tally it read, then *seals* the word (a `fetch_or`)
//! before its swap, and swaps only if the sealed tally is the one it
//! computed from. All of these are SeqCst, in one total order with the
//! swaps. So a sale that got into the word precedes the seal, which
//! precedes the swap away from `S`: the sale took effect while `S` was
//! current, and the change that replaces `S` counts it. A sale after the
//! seal fails and takes the slow path. A reader that finds the word open
//! read `S` while it was current; one that finds it sealed reads the final
//! tally, which `S` stood for from the seal to its replacement (after the
//! reader's load: see `settle`). Sales only ever remove
//! units, so the sold-out hint, which they do not touch, can lag them only
//! towards "not sold out": the fold published after a refusal raises it.

mod catalog;
mod counters;
mod hold;
#[cfg(all(test, stockroom_loom))]
pub(crate) mod loom;
mod sales;
mod state;

#[cfg(test)]
pub(crate) use counters::Counts; // the audit's tests corrupt counters with it
pub(crate) use hold::Hold;
pub(crate) use state::{Demand, HoldLookup, HoldTerms, SkuState};

use crate::clock::Moment;
use crate::ids::SkuId;
use crate::outcome::{Sale, Swept};
use crate::sync::{Arc, AtomicU64, Backoff, Ordering, SnapshotCell};
use sales::Tally;

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

    /// The SKU this cell holds.
    pub(crate) fn sku(&self) -> SkuId {
        self.state.load().sku
    }

    /// The current version as it stands, sales of its word folded in: for
    /// the audit and the SKU list, which sweep nothing.
    pub(crate) fn settled(&self) -> Arc<SkuState> {
        settle(self.state.load_full()).0
    }

    /// An immediate sale of `demand` through the current version's sales
    /// word: one compare-and-swap, no new version. `None` sends it down
    /// the slow path ([`update`](Self::update)): the first lot cannot cover
    /// it, a hold is due to lapse, the word is sealed, or another rule of
    /// [`SkuState::fast_lot`] applies.
    pub(crate) fn take_fast(&self, demand: &Demand) -> Option<Sale> {
        let current = self.state.load();
        let (first, available) = current.fast_lot(demand)?;
        let before = current.sales.add(demand.quantity, available)?;
        Some(current.fast_sale(first, demand.quantity, before))
    }

    /// Applies `step` to the current version and publishes its result by
    /// compare-and-swap, retrying from the new current version on conflict.
    ///
    /// The current version is taken with the sales of its word folded in,
    /// and the word is sealed before the swap; if a sale slipped in between
    /// (the sealed tally differs), the step runs again on the new tally.
    ///
    /// Lapsed holds go first: while the loaded version has a hold whose
    /// deadline passed at `moment`, a sweep returning their units is
    /// published (a version of its own) before `step` sees the SKU, so no
    /// step ever counts a lapsed hold as held. `step` gets the holds this
    /// call swept (to tell "it lapsed" from "it ended"). `landed` hears of
    /// every version this call published, in order: sweeps and the step's.
    ///
    /// `step` is pure: a refusal returns at once with nothing published by
    /// it (a sold-out SKU costs one load; a version with sales in its word
    /// is replaced by the same version with them folded in, which changes
    /// no count). After [`ATTEMPTS_MAX`] lost races the change is refused
    /// with `contended(attempts)`.
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
            let loaded = self.state.load();
            let current: &Arc<SkuState> = &loaded;
            let (tally, folded) = fold(current);
            let base = folded.as_ref().unwrap_or(current);
            if base.has_lapsed(moment) {
                self.try_sweep(current, tally, base, moment, &mut swept, landed);
                continue;
            }
            let (next, result) = match step(base, &swept) {
                Ok(stepped) => stepped,
                Err(error) => {
                    // Best effort, so the sold-out hint learns of sales
                    // that emptied the SKU and later sales find an open word.
                    if let Some(folded) = folded {
                        self.replace(current, tally, folded);
                    }
                    return Err(error);
                }
            };
            debug_assert_eq!(next.version, base.version + 1, "a change is exactly one version");
            if let Some(next) = self.replace(current, tally, next) {
                landed(base, &next, Landed::Step(&result));
                return Ok(result);
            }
            backoff.snooze();
        }
        Err(contended(ATTEMPTS_MAX))
    }

    /// Replaces `current` by `next`, which was computed from `current`
    /// with `tally` folded in: seals `current`'s word, and swaps only if
    /// the sealed tally is `tally` (no sale slipped in since). Returns the
    /// published version; `None` if a sale slipped in or another version
    /// landed first.
    fn replace(&self, current: &Arc<SkuState>, tally: Tally, next: SkuState) -> Option<Arc<SkuState>> {
        if current.sales.seal() != tally {
            return None;
        }
        let next = Arc::new(next);
        self.publish(current, &next).then_some(next)
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
            let loaded = self.state.load_full();
            let (current, tally) = settle(Arc::clone(&loaded));
            if !current.has_lapsed(moment) {
                return Some(current);
            }
            self.try_sweep(&loaded, tally, &current, moment, swept, landed);
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
            let loaded = self.state.load();
            let current: &Arc<SkuState> = &loaded;
            let (tally, folded) = fold(current);
            let base = folded.as_ref().unwrap_or(current);
            let (next, swept) = base.sweep(moment.now(), lots)?;
            if let Some(next) = self.replace(current, tally, next) {
                landed(base, &next, Landed::Swept(&swept));
                return Some(swept);
            }
            backoff.snooze();
        }
        None
    }

    /// One attempt at sweeping the lapsed holds of `base`, which is what
    /// `current` stands for with `tally` folded in.
    fn try_sweep<R>(
        &self,
        current: &Arc<SkuState>,
        tally: Tally,
        base: &SkuState,
        moment: &Moment,
        swept: &mut Vec<Swept>,
        landed: &mut dyn FnMut(&SkuState, &SkuState, Landed<'_, R>),
    ) {
        let Some((next, sweep)) = base.sweep(moment.now(), false) else { return };
        if let Some(next) = self.replace(current, tally, next) {
            landed(base, &next, Landed::Swept(&sweep));
            swept.push(sweep);
        }
    }
}

/// What the loaded `current` stands for: itself, or with the sales of its
/// word folded in; and the tally folded. Linearizable either way: `current`
/// was current when loaded, so if the word is open at the read it still is,
/// and if it is sealed, the sealed tally is what `current` stood for from
/// the seal until the swap that replaced it, an interval that overlaps this
/// call (the swap came after the load, the seal before the read).
fn settle(current: Arc<SkuState>) -> (Arc<SkuState>, Tally) {
    let (tally, folded) = fold(&current);
    (folded.map_or(current, Arc::new), tally)
}

/// The tally in `current`'s word, and `current` with it folded in; `None`
/// when no sale went through the word (`current` stands for itself).
fn fold(current: &SkuState) -> (Tally, Option<SkuState>) {
    let (tally, _) = current.sales.read();
    (tally, (!tally.is_empty()).then(|| current.with_sales(tally)))
}

/// A version one call published: a sweep of lapsed holds, or the call's
/// own change with its result.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Landed<'a, R> {
    Swept(&'a Swept),
    Step(&'a R),
}
