//! Waker hand-off: how a future that found nothing ready is woken by the
//! thread that makes it ready, without either side missing the other.
//!
//! Owns: [`WakerSet`], the wakers of the tasks waiting on one condition (a
//! ticket's decision, a subscription's channel, a keyed attempt's end),
//! and the protocol both sides follow:
//!
//! - a waiter checks the condition; if it does not hold, it
//!   [`register`](WakerSet::register)s its waker, then checks the condition
//!   again, and only then returns `Pending`;
//! - the thread that makes the condition hold calls
//!   [`wake_all`](WakerSet::wake_all) after making it hold.
//!
//! Must never: lose a wake-up (a waiter returns `Pending` while the
//! condition holds and no wake is on its way), hold more than
//! [`WAKERS_MAX`] wakers, or call a waker under its lock (a waker may run
//! arbitrary code, and poll the same set again).
//!
//! # Orderings
//!
//! Registering stores `armed = true` under the lock and then runs a
//! `SeqCst` fence before the waiter's second check; waking runs a `SeqCst`
//! fence after the condition's write and then loads `armed`. The two
//! fences are totally ordered (store buffering, as in the event hub): if
//! the waker's fence comes first, the waiter's second check, after its own
//! fence, sees the condition's write; if the waiter's comes first, the
//! waker's load of `armed` sees `true` (or a later `false` stored by
//! another `wake_all` that took the same wakers and woke them). `armed`
//! itself is `Relaxed` on both sides: the fences order it. A `wake_all`
//! that finds `armed` false takes no lock: a condition nobody awaits costs
//! its setter one fence and one load. The lock orders the wakers
//! themselves. The loom models (`src/waker/loom.rs`) check the hand-off.

#[cfg(all(test, stockroom_loom))]
mod loom;

use crate::sync::{AtomicBool, Mutex, Ordering, fence};
use core::task::Waker;
use smallvec::SmallVec;

/// The most wakers one set holds. A set is awaited by the clones of one
/// ticket, or one subscription, or the duplicates of one keyed command; a
/// registration that finds it full wakes every waker it holds (they poll
/// again and re-register), so the bound costs spurious wake-ups, never a
/// lost one.
pub(crate) const WAKERS_MAX: usize = 64;

/// The wakers of the tasks waiting on one condition (see the module docs).
pub(crate) struct WakerSet {
    wakers: Mutex<SmallVec<[Waker; 1]>>,
    /// True while `wakers` may hold a waker (# Orderings).
    armed: AtomicBool,
}

impl core::fmt::Debug for WakerSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Relaxed: a debugging glance.
        f.debug_struct("WakerSet").field("armed", &self.armed.load(Ordering::Relaxed)).finish()
    }
}

impl Default for WakerSet {
    fn default() -> Self {
        Self::new()
    }
}

impl WakerSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        WakerSet { wakers: Mutex::new(SmallVec::new()), armed: AtomicBool::new(false) }
    }

    /// Adds `waker` (unless a waker that wakes the same task is already
    /// in), then fences: the caller must check its condition again after
    /// this returns, before it returns `Pending`.
    pub(crate) fn register(&self, waker: &Waker) {
        let overflow = {
            let mut wakers = self.wakers.lock();
            let overflow = if wakers.iter().any(|known| known.will_wake(waker)) {
                SmallVec::new()
            } else if wakers.len() >= WAKERS_MAX {
                let overflow = core::mem::take(&mut *wakers);
                wakers.push(waker.clone());
                overflow
            } else {
                wakers.push(waker.clone());
                SmallVec::new()
            };
            // Relaxed: the fence below orders it (# Orderings).
            self.armed.store(true, Ordering::Relaxed);
            overflow
        };
        // SeqCst: pairs with the fence in `wake_all`; orders the store of
        // `armed` before the caller's second check (# Orderings).
        fence(Ordering::SeqCst);
        for waker in overflow {
            waker.wake();
        }
    }

    /// Wakes (and forgets) every registered waker. Call it after making
    /// the condition hold.
    pub(crate) fn wake_all(&self) {
        // SeqCst: pairs with the fence in `register`; orders the
        // condition's write before the load of `armed` (# Orderings).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence (# Orderings).
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let wakers = {
            let mut wakers = self.wakers.lock();
            // Relaxed: under the lock, which orders it against `register`.
            self.armed.store(false, Ordering::Relaxed);
            core::mem::take(&mut *wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }
}
