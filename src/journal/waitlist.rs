//! Waiting for the writer: a thread that needs a watermark (durable
//! sequence, ring head) to reach a value registers itself and parks (a
//! task registers its waker and returns `Pending`); the writer, after
//! moving the watermark, wakes exactly the waiters it satisfied.
//!
//! Owns: [`WaitList`] (the lock-free arrival queue) and [`Pending`] (the
//! writer's own, sorted, view of who waits for what).
//!
//! Must never: let a waiter sleep through the move that satisfies it, or
//! wake every waiter for every move (a group commit of 256 callers wakes
//! those 256, not the ones that came after its gather).
//!
//! # Orderings
//!
//! A waiter does `push(me); fence(SeqCst); load(watermark)`; the writer
//! does `store(watermark); fence(SeqCst); drain(arrivals)`. The two
//! sequentially consistent fences are totally ordered. If the waiter's
//! comes first, the writer's drain sees the registration and unparks it
//! once the watermark satisfies it (an unpark before the park leaves the
//! token, so the park returns at once). If the writer's comes first, the
//! waiter's load sees the new watermark and it does not park. With
//! Acquire/Release alone both could read stale values (the store-buffering
//! shape) and the waiter would sleep through its wake-up. The watermark
//! loads and stores themselves are Acquire/Release (in the writer), which
//! the fences do not replace: they carry the data the watermark stands for.

use super::ring::Ring;
use crate::sync::thread::{self, Thread};
use crate::sync::{Ordering, SegQueue, fence};
use std::collections::BinaryHeap;
use std::time::Instant;

/// One registration: wake `wake` once the watermark reaches `target`.
struct Waiter {
    target: u64,
    wake: Wake,
}

/// Who a registration wakes: a parked thread, or a task awaiting the
/// watermark (`super::acknowledged`).
enum Wake {
    Thread(Thread),
    #[cfg(feature = "async")]
    Task(core::task::Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Thread(thread) => thread.unpark(),
            #[cfg(feature = "async")]
            Wake::Task(waker) => waker.wake(),
        }
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    /// Reversed: the max-heap then yields the smallest target first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.target.cmp(&self.target)
    }
}

/// Registrations not yet seen by the writer (see the module docs).
pub(crate) struct WaitList {
    arrivals: SegQueue<Waiter>,
}

/// The writer's registrations, smallest target first. Bounded by the
/// number of waits outstanding: each wait registers once, and each
/// registration leaves when its target is reached (or at a wake-all).
#[derive(Default)]
pub(crate) struct Pending {
    heap: BinaryHeap<Waiter>,
}

impl WaitList {
    pub(crate) fn new() -> WaitList {
        WaitList { arrivals: SegQueue::new() }
    }

    /// Blocks until `ready` answers `Some`, or until `deadline` passes
    /// (then `None`). `ready` must become `Some` once the watermark this
    /// list is woken for reaches `target` (or on a wake-all).
    pub(crate) fn wait<T>(
        &self,
        target: u64,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        if let Some(answer) = ready() {
            return Some(answer);
        }
        self.arrivals.push(Waiter { target, wake: Wake::Thread(thread::current()) });
        // SeqCst: pairs with the writer's fence in `wake` (# Orderings).
        fence(Ordering::SeqCst);
        // Bounded by the deadline, or by the writer's wake-up (each pass
        // after the first follows an unpark or a rare spurious return).
        loop {
            if let Some(answer) = ready() {
                return Some(answer);
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return ready();
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// Registers `waker` to be woken once the watermark reaches `target`
    /// (or at a wake-all), for a future that found its answer not ready.
    /// The caller then checks again (the waiter's half of # Orderings)
    /// and returns `Pending` only if the answer is still not ready. A
    /// future polled again registers again: each registration leaves when
    /// its target is reached, so they are bounded by the polls.
    #[cfg(feature = "async")]
    pub(crate) fn register(&self, target: u64, waker: core::task::Waker) {
        self.arrivals.push(Waiter { target, wake: Wake::Task(waker) });
        // SeqCst: pairs with the writer's fence in `wake` (# Orderings).
        fence(Ordering::SeqCst);
    }

    /// The writer, after storing a new `watermark`: unparks every waiter
    /// whose target it reaches.
    pub(crate) fn wake(&self, pending: &mut Pending, watermark: u64) {
        // SeqCst: pairs with the waiter's fence in `wait` (# Orderings).
        fence(Ordering::SeqCst);
        self.adopt(pending);
        // Bounded by the registrations pending.
        while pending.heap.peek().is_some_and(|waiter| waiter.target <= watermark) {
            let waiter = pending.heap.pop().expect("peeked");
            waiter.wake.wake();
        }
    }

    /// The writer, after a change every waiter must see (a failure, a
    /// close): unparks them all.
    pub(crate) fn wake_all(&self, pending: &mut Pending) {
        // SeqCst: pairs with the waiter's fence in `wait` (# Orderings).
        fence(Ordering::SeqCst);
        self.adopt(pending);
        for waiter in pending.heap.drain() {
            waiter.wake.wake();
        }
    }

    fn adopt(&self, pending: &mut Pending) {
        // Bounded: registrations pushed while this drains are at most one
        // per waiting thread beyond what it saw at the start.
        while let Some(waiter) = self.arrivals.pop() {
            pending.heap.push(waiter);
        }
    }
}

/// Waits for room for claimed sequence `seq` in `ring` (back-pressure).
/// Spins briefly, then parks on `space` until the writer frees the slot.
pub(crate) fn wait_for_slot(ring: &Ring, space: &WaitList, seq: u64) {
    if ring.is_free(seq) {
        return;
    }
    // A short spin: a full ring usually drains within microseconds.
    for _ in 0..64 {
        thread::yield_now();
        if ring.is_free(seq) {
            return;
        }
    }
    // The slot frees once the writer's head passes `seq - capacity`.
    let target = seq - ring.capacity() + 1;
    space.wait(target, None, || ring.is_free(seq).then_some(()));
}
