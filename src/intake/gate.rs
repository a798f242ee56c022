//! The intake's admission gate: whether a submitter may still queue a
//! job, and who stops the workers once nobody can.
//!
//! Owns: [`Gate`] (one word: a `CLOSED` bit and the count of submitters
//! inside) and its protocol.
//!
//! Must never: let a submitter queue a job after the workers were told to
//! stop (they drain the queue once and exit: a job queued later would
//! never be decided), or leave the workers running after the intake closed
//! with nobody left to stop them.
//!
//! # The protocol
//!
//! Every step is one read-modify-write of the same word, so the steps of
//! all parties fall in one order (the word's modification order) and each
//! sees the effect of every step before it:
//!
//! - a submitter [`enter`](Gate::enter)s (adds one) and may queue only if
//!   the word it replaced had no `CLOSED` bit;
//! - it [`leave`](Gate::leave)s (subtracts one) once its sends are done;
//!   if the word it replaced was `CLOSED | 1`, it was the last one out of
//!   a closed gate, and stops the workers;
//! - shutdown [`close`](Gate::close)s (sets `CLOSED`); if the word it
//!   replaced counted nobody inside, it stops the workers.
//!
//! Exactly one party sees the gate closed and empty, and no submitter that
//! entered after the close queues anything. (An earlier version kept the
//! flag and the count in two words, each side writing one and reading the
//! other: a submitter that left as the last one, then read `closed` after
//! a close that had seen a newer submitter inside, stopped the workers
//! while that newer one still queued. The loom model
//! `a_closing_gate_stops_the_workers_after_every_queued_job` found it.)
//!
//! Orderings: a decrement is AcqRel, the close's RMW and the empty check
//! Acquire, so whoever stops the workers comes after every send a
//! submitter made before leaving (the decrements form one release
//! sequence); the increment needs only its atomicity.

use crate::sync::{AtomicUsize, Ordering};

/// The bit that says the gate is closed; the bits below count submitters.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The gate (see the module docs).
pub(super) struct Gate {
    word: AtomicUsize,
}

impl Gate {
    pub(super) fn new() -> Gate {
        Gate { word: AtomicUsize::new(0) }
    }

    /// A submitter comes in; true if the gate was open, so it may queue.
    /// It must [`leave`](Gate::leave) either way, once its sends are done.
    pub(super) fn enter(&self) -> bool {
        // Relaxed: only the RMW's atomicity matters (the word's single
        // modification order decides open or closed); nothing is read
        // through it.
        let before = self.word.fetch_add(1, Ordering::Relaxed);
        assert!(before & !CLOSED < CLOSED - 1, "the intake's submitter count would reach the closed bit");
        before & CLOSED == 0
    }

    /// A submitter leaves; true if it was the last one out of a closed
    /// gate: it stops the workers.
    pub(super) fn leave(&self) -> bool {
        // AcqRel: Release puts this submitter's sends before whoever stops
        // the workers (the Acquire in `close`, `is_empty` or the last
        // leaver's decrement); Acquire, so that the last one out comes
        // after every earlier leaver's sends.
        self.word.fetch_sub(1, Ordering::AcqRel) == CLOSED | 1
    }

    /// Whether the gate is closed (a hint for anyone but a submitter,
    /// which learns it from [`enter`](Gate::enter)).
    pub(super) fn is_closed(&self) -> bool {
        // Relaxed: a hint; decisions are taken by the RMWs.
        self.word.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// Closes the gate; true if no submitter was inside: the closer stops
    /// the workers (otherwise the last one out does). Idempotent: a second
    /// close answers false.
    pub(super) fn close(&self) -> bool {
        // Acquire: pairs with the leavers' Release (their sends come before
        // a stop decided here).
        self.word.fetch_or(CLOSED, Ordering::Acquire) == 0
    }

    /// Whether no submitter is inside.
    pub(super) fn is_empty(&self) -> bool {
        // Acquire: pairs with `leave`'s Release: every send made before the
        // count reached 0 is seen.
        self.word.load(Ordering::Acquire) & !CLOSED == 0
    }
}
