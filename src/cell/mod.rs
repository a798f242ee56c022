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
pub(crate) use state::{Demand, HoldLookup, SkuState};

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

    /// The current version, owned.
    pub(crate) fn load_full(&self) -> Arc<SkuState> {
        self.state.load_full()
    }

    /// Applies `step` to the current version and publishes its result by
    /// compare-and-swap, retrying from the new current version on conflict.
    ///
    /// `step` is pure: a refusal returns at once with nothing published and
    /// no swap attempted (a sold-out SKU costs one load). After
    /// [`ATTEMPTS_MAX`] lost races the change is refused with
    /// `contended(attempts)`.
    pub(crate) fn update<R, E>(
        &self,
        mut step: impl FnMut(&SkuState) -> Result<(SkuState, R), E>,
        contended: impl FnOnce(u32) -> E,
    ) -> Result<R, E> {
        let backoff = Backoff::new();
        for _ in 0..ATTEMPTS_MAX {
            let current = self.state.load();
            let (next, result) = step(&current)?;
            debug_assert_eq!(next.version, current.version + 1, "a change is exactly one version");
            if self.state.compare_and_swap(&current, Arc::new(next)).is_ok() {
                return Ok(result);
            }
            backoff.snooze();
        }
        Err(contended(ATTEMPTS_MAX))
    }
}
