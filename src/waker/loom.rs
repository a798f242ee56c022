//! Loom models of the waker hand-off (`WakerSet`, see `src/waker.rs`).
//!
//! What this file proves: for every interleaving of a waiter polling
//! (check, register, check again) against a thread that makes the
//! condition hold and then wakes, the waiter either sees the condition or
//! its waker is woken: never `Pending` with no wake on its way. The
//! condition is a `Relaxed` flag, so the model rests on the fences alone,
//! not on an ordering the condition brings with it (a channel, a once cell).
//! With two waiters, each is woken or sees the condition; with a waiter
//! that polls twice (a spurious wake-up, a second poll with another
//! waker), the last waker registered is the one woken.
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/loom --lib waker::loom -- --nocapture
//! ```

use super::WakerSet;
use crate::cell::loom::{Preemptions, check};
use crate::sync::{Arc, AtomicBool, Ordering};
use core::task::{Poll, Waker};
use loom::thread;
use std::task::Wake;

/// A waker that records that it was woken.
pub(crate) struct Flag(pub(crate) AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        // SeqCst: read by the model's final check after the joins, which
        // order it anyway.
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A flag and a waker that sets it.
pub(crate) fn flag() -> (std::sync::Arc<Flag>, Waker) {
    let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(std::sync::Arc::clone(&flag));
    (flag, waker)
}

/// One poll of a waiter on `ready`, following the protocol.
fn poll(set: &WakerSet, ready: &AtomicBool, waker: &Waker) -> Poll<()> {
    // Relaxed: the model tests the fences alone (module docs).
    if ready.load(Ordering::Relaxed) {
        return Poll::Ready(());
    }
    set.register(waker);
    // Relaxed: as above; the fence in `register` orders it.
    if ready.load(Ordering::Relaxed) { Poll::Ready(()) } else { Poll::Pending }
}

#[test]
fn a_waiter_sees_the_condition_or_is_woken() {
    check("waker: one waiter vs the setter", Preemptions::Unbounded, || {
        let set = Arc::new(WakerSet::new());
        let ready = Arc::new(AtomicBool::new(false));
        let setter = {
            let (set, ready) = (Arc::clone(&set), Arc::clone(&ready));
            thread::spawn(move || {
                // Relaxed: the fences order it (module docs).
                ready.store(true, Ordering::Relaxed);
                set.wake_all();
            })
        };
        let (woken, waker) = flag();
        let polled = poll(&set, &ready, &waker);
        setter.join().unwrap();
        // SeqCst: after the join; see `Flag::wake`.
        assert!(polled.is_ready() || woken.0.load(Ordering::SeqCst), "a lost wake-up");
    });
}

#[test]
fn two_waiters_each_see_the_condition_or_are_woken() {
    check("waker: two waiters vs the setter", Preemptions::AtLeast(3), || {
        let set = Arc::new(WakerSet::new());
        let ready = Arc::new(AtomicBool::new(false));
        let other = {
            let (set, ready) = (Arc::clone(&set), Arc::clone(&ready));
            thread::spawn(move || {
                let (woken, waker) = flag();
                let polled = poll(&set, &ready, &waker);
                (polled, woken)
            })
        };
        let setter = {
            let (set, ready) = (Arc::clone(&set), Arc::clone(&ready));
            thread::spawn(move || {
                // Relaxed: the fences order it (module docs).
                ready.store(true, Ordering::Relaxed);
                set.wake_all();
            })
        };
        let (woken, waker) = flag();
        let polled = poll(&set, &ready, &waker);
        let (other_polled, other_woken) = other.join().unwrap();
        setter.join().unwrap();
        // SeqCst: after the joins; see `Flag::wake`.
        assert!(polled.is_ready() || woken.0.load(Ordering::SeqCst), "a lost wake-up");
        assert!(other_polled.is_ready() || other_woken.0.load(Ordering::SeqCst), "a lost wake-up (other)");
    });
}

#[test]
fn a_second_poll_with_a_new_waker_is_woken() {
    check("waker: re-poll with a new waker vs the setter", Preemptions::Unbounded, || {
        let set = Arc::new(WakerSet::new());
        let ready = Arc::new(AtomicBool::new(false));
        let setter = {
            let (set, ready) = (Arc::clone(&set), Arc::clone(&ready));
            thread::spawn(move || {
                // Relaxed: the fences order it (module docs).
                ready.store(true, Ordering::Relaxed);
                set.wake_all();
            })
        };
        let (_first, first_waker) = flag();
        let first = poll(&set, &ready, &first_waker);
        let (second, second_waker) = flag();
        let polled = if first.is_ready() { first } else { poll(&set, &ready, &second_waker) };
        setter.join().unwrap();
        // SeqCst: after the join; see `Flag::wake`.
        assert!(polled.is_ready() || second.0.load(Ordering::SeqCst), "the last waker was not woken");
    });
}
