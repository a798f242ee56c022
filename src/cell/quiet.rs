//! Quiet: how a long change gets its turn on a SKU other threads keep
//! changing.
//!
//! Owns: [`Quiet`] (one call's record of its lost attempts and of the
//! quiet head it set), [`SkuCell::settle_to_write`] (the settle every
//! writer of the general path uses) and [`SkuCell::wait_out_quiet`], and
//! the bounds of both ([`LONG_NANOS`], [`QUIET_MAX_NANOS`]).
//!
//! Must never: be needed for correctness, or hold anyone longer than
//! [`QUIET_MAX_NANOS`]. Every change still lands by one compare-and-swap
//! of the head from the exact head it computed on; the [`QUIET`] flag only
//! decides who tries.
//!
//! # Why
//!
//! A change recomputes from scratch when another lands first. A short
//! change (a sale, ~100 ns) always wins that race against a long one (a
//! shrink displacing 64k holds, ~70 ms), so without help a long change on a
//! SKU that keeps selling never lands: it is starved, not refused.
//!
//! # How
//!
//! A change that lost an attempt which itself took longer than
//! [`LONG_NANOS`] asks the SKU to be quiet: it stores how long it expects
//! to need (four times its last attempt, at most [`QUIET_MAX_NANOS`]) in
//! the cell's `quiet_until` word and sets [`QUIET`] in the head by
//! compare-and-swap, keeping the version (retried on each newer head, up
//! to `QUIET_SET_ATTEMPTS_MAX` times: a seller lands every few hundred
//! nanoseconds, so one try would almost always meet a moved head). If the
//! window it announced runs out before it lands (a lost attempt that ended
//! early, at a stale word, under-measures a whole one), the attempt that
//! lost measured the whole window, so the next window is four times longer.
//! Its next attempt computes on that
//! quiet head; its publish clears the flag with the change ([`Draft::head`]
//! never carries it on). Every other writer that settles on a quiet head it
//! did not set waits, without spinning hot, until the head moves (the long
//! change landed) or the announced time has passed; then it clears the
//! flag itself and goes on. So a long change waits for at most
//! [`ATTEMPTS_MAX`](super::ATTEMPTS_MAX) short races plus one quiet
//! window, and a short change waits for at most one window: a stalled or
//! dead owner costs the others [`QUIET_MAX_NANOS`], never more. Readers
//! that only read never wait (a quiet head is a settled head); a read that
//! must first publish a sweep waits as a writer does.
//!
//! The fast paths (`super::fast`) do not run on a quiet head; they leave
//! the call to the general path, which waits.
//!
//! Under a checker (`stockroom_loom`, `stockroom_shuttle`) no time passes:
//! every lost attempt counts as long, and a waiter clears
//! a foreign quiet after [`CHECKER_WAIT_ROUNDS`] yields, so the models see
//! both the owner landing and a waiter giving up.
//!
//! [`Draft::head`]: super::view::Draft::head

use super::head::{Head, QUIET};
use super::view::View;
use super::{Registry, SkuCell};
use crate::sync::{Backoff, Ordering, monotonic_nanos, pause};

/// An attempt that took longer than this (from its settle to its lost
/// compare-and-swap) is long: 100 µs, some thousand short changes.
pub(crate) const LONG_NANOS: u64 = 100_000;
/// The longest a quiet window may be announced for, and the longest any
/// writer waits on one: 1 s.
pub(crate) const QUIET_MAX_NANOS: u64 = 1_000_000_000;
/// The shortest window announced (a long attempt's next one may take
/// longer than the one that lost).
const QUIET_MIN_NANOS: u64 = 200_000;
/// Tries at setting the flag, each on the head as it is then.
const QUIET_SET_ATTEMPTS_MAX: u32 = 1_024;
/// Under a checker, yields a waiter makes before it clears a foreign quiet.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
pub(crate) const CHECKER_WAIT_ROUNDS: u32 = 2;

/// One change's record of its attempts (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Quiet {
    /// When the attempt now running began (its settle), once a first
    /// attempt was lost: the first attempt reads no clock.
    began: Option<u64>,
    /// How long the last lost attempt took, if it was long.
    long: Option<u64>,
    /// The quiet head this change set, while it may still be in force.
    mine: Option<u128>,
}

impl Quiet {
    /// The attempt now running lost its race (or read a stale word).
    pub(crate) fn lost(&mut self) {
        let now = monotonic_nanos();
        let took = self.began.map(|began| now.saturating_sub(began));
        if took.is_some_and(|took| took > LONG_NANOS) || cfg!(any(stockroom_loom, stockroom_shuttle)) {
            self.long = Some(took.unwrap_or(0));
        }
        self.mine = None;
        self.began = Some(now);
    }

    /// Whether this change should ask for quiet before its next attempt.
    fn wants(&self) -> bool {
        self.long.is_some() && self.mine.is_none()
    }
}

impl SkuCell {
    /// [`settle`](Self::settle) for a writer of the general path: waits
    /// out another change's quiet (bounded), and asks for quiet itself if
    /// its last lost attempt was long (see the module docs).
    pub(crate) fn settle_to_write(&self, registry: &Registry, quiet: &mut Quiet) -> View<'_> {
        let view = self.settle(registry);
        if quiet.began.is_some() {
            quiet.began = Some(monotonic_nanos());
        }
        if view.head.has(QUIET) && quiet.mine != Some(view.raw) {
            self.wait_out_quiet(&view);
            return self.settle(registry);
        }
        if !quiet.wants() || view.head.has(QUIET) {
            return view;
        }
        let expected = quiet.long.unwrap_or(0).saturating_mul(4).clamp(QUIET_MIN_NANOS, QUIET_MAX_NANOS);
        // Relaxed: published by the head compare-and-swap below (Release);
        // a waiter reads it after its Acquire load of the quiet head.
        self.quiet_until().store(monotonic_nanos().saturating_add(expected), Ordering::Relaxed);
        // Short changes land every few hundred nanoseconds: the flag is
        // set by retrying on each newer head, not once and given up.
        let mut view = view;
        for _ in 0..QUIET_SET_ATTEMPTS_MAX {
            if view.head.has(QUIET) {
                // Another long change got there first: its turn.
                self.wait_out_quiet(&view);
                return self.settle(registry);
            }
            let quiet_head = Head { flags: view.head.flags | QUIET, ..view.head }.pack();
            if self.swap_head(view.raw, quiet_head) {
                quiet.mine = Some(quiet_head);
                return View::new(self, quiet_head);
            }
            view = self.settle(registry);
        }
        // Every try met a newer head: compute on the last (and ask again if
        // that attempt is lost too).
        view
    }

    /// A change is over (landed, refused or out of attempts): if the quiet
    /// head it set still stands (it was refused on it), it clears it, so
    /// nobody waits for a change that will not come.
    pub(crate) fn end_quiet(&self, quiet: &Quiet) {
        if let Some(mine) = quiet.mine {
            let cleared = Head { flags: Head::unpack(mine).flags & !QUIET, ..Head::unpack(mine) }.pack();
            // Lost: the change landed (its head has no quiet flag) or a
            // waiter cleared it first.
            let _ = self.swap_head(mine, cleared);
        }
    }

    /// Waits while `view`'s quiet head stands, at most until its announced
    /// end (and never past [`QUIET_MAX_NANOS`]); then clears the flag if
    /// the head still has it, so a stalled owner holds nobody longer.
    pub(crate) fn wait_out_quiet(&self, view: &View) {
        debug_assert!(view.head.has(QUIET));
        let backoff = Backoff::new();
        let start = monotonic_nanos();
        // Relaxed: see `settle_to_write`; a stale value only shortens or
        // lengthens the wait within its hard bound.
        let until = self.quiet_until().load(Ordering::Relaxed).min(start.saturating_add(QUIET_MAX_NANOS));
        let mut rounds: u32 = 0;
        loop {
            if self.head_raw() != view.raw {
                return;
            }
            let expired = monotonic_nanos() >= until;
            #[cfg(any(stockroom_loom, stockroom_shuttle))]
            let expired = expired || rounds >= CHECKER_WAIT_ROUNDS;
            if expired {
                let cleared = Head { flags: view.head.flags & !QUIET, ..view.head }.pack();
                // Lost: the head moved meanwhile, which is all we waited for.
                let _ = self.swap_head(view.raw, cleared);
                return;
            }
            rounds = rounds.saturating_add(1);
            pause(&backoff);
        }
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;
    use crate::clock::{Moment, Timestamp};
    use crate::command::AllocateRequest;
    use crate::ids::{LotId, SkuId};
    use crate::ledger::Ledger;
    use crate::lot::NewLot;
    use crate::policy::AllocationPolicy;

    const SKU: SkuId = SkuId(1);

    fn ledger() -> Ledger {
        let ledger = Ledger::new();
        ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
        ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive");
        ledger
    }

    /// A change record whose last lost attempt was long.
    fn after_a_long_loss() -> Quiet {
        Quiet { began: None, long: Some(LONG_NANOS + 1), mine: None }
    }

    /// Runs `f` on the SKU's cell right after a change that lost a long
    /// attempt asked for quiet and got it: `f` gets the cell, the quiet
    /// view and the change's record.
    fn quiet_set(ledger: &Ledger, f: impl FnOnce(&SkuCell, &Registry, &View, &mut Quiet)) {
        let moment = Moment::fixed(Timestamp(0));
        ledger.on(SKU, &moment, (), |cell, ctx| {
            let mut quiet = after_a_long_loss();
            let view = cell.settle_to_write(ctx.registry, &mut quiet);
            assert!(view.head.has(QUIET), "asked and got it");
            f(cell, ctx.registry, &view, &mut quiet);
        });
    }

    fn head_of(ledger: &Ledger) -> Head {
        let moment = Moment::fixed(Timestamp(0));
        ledger.on(SKU, &moment, None, |cell, _| Some(Head::unpack(cell.head_raw()))).expect("defined")
    }

    #[test]
    fn a_long_loser_sets_quiet_on_the_same_version_and_a_landing_change_ends_it() {
        let ledger = ledger();
        let before = head_of(&ledger);
        quiet_set(&ledger, |cell, registry, view, quiet| {
            assert_eq!(quiet.mine, Some(view.raw));
            assert_eq!(Head { flags: before.flags, ..view.head }, before, "only the flag moved");
            // Its own quiet head: it does not wait for itself.
            assert_eq!(cell.settle_to_write(registry, quiet).raw, view.raw);
        });
        // Another writer (this thread's next call is not the owner) waits
        // out the window, clears it and lands; the head carries no flag on.
        ledger.take(&AllocateRequest::new(SKU, 1)).expect("stocked");
        let after = head_of(&ledger);
        assert!(!after.has(QUIET));
        assert_eq!(after.version, before.version + 1);
    }

    #[test]
    fn an_owner_refused_on_its_quiet_head_clears_it() {
        let ledger = ledger();
        quiet_set(&ledger, |cell, _, _, quiet| cell.end_quiet(quiet));
        assert!(!head_of(&ledger).has(QUIET));
    }

    #[test]
    fn a_change_computed_on_a_quiet_head_publishes_without_the_flag() {
        let ledger = ledger();
        quiet_set(&ledger, |cell, _, view, quiet| {
            let mut claimed = super::super::ClaimPool::default();
            let draft = super::super::Draft::new(view, &mut claimed);
            assert!(!draft.head(1).has(QUIET));
            cell.end_quiet(quiet);
        });
    }

    #[test]
    fn a_waiter_on_a_stalled_owner_gives_up_within_the_window() {
        let ledger = ledger();
        quiet_set(&ledger, |cell, _, view, _| {
            // The owner never comes back: the waiter's wait ends at the
            // announced window and it clears the flag.
            let until = cell.quiet_until().load(Ordering::Relaxed);
            assert!(until <= monotonic_nanos() + QUIET_MAX_NANOS);
            cell.wait_out_quiet(view);
            assert!(monotonic_nanos() >= until, "it waited the window out");
            assert!(!Head::unpack(cell.head_raw()).has(QUIET), "and cleared it");
        });
    }
}
