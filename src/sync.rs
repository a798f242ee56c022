//! The std/loom/shuttle facade: every atomic, `Arc`, the snapshot cell and
//! the backoff used by the crate come from here.
//!
//! Owns: the choice between three sets of primitives, made once, on the
//! crate's own cfgs (plain `cfg(loom)` would switch dependencies that react
//! to it too):
//!
//! - neither cfg (every normal build): `std` atomics, arc-swap's cell and
//!   crossbeam's backoff: what ships;
//! - `stockroom_loom`: loom's atomics and a loom-visible cell, so the loom
//!   models (`src/*/loom.rs`) check every interleaving of tiny scenarios;
//! - `stockroom_shuttle`: shuttle's atomics and a shuttle-visible cell, so
//!   the randomized schedulers of `tests/shuttle.rs` (random and PCT) drive
//!   4 to 8 threads through the ledger's whole API, beyond loom's reach.
//!
//! The two checking cfgs exclude each other: setting both is a compile
//! error.
//!
//! Must never: contain inventory logic, or be bypassed. No other module
//! names `std::sync::atomic`, `std::sync::OnceLock`, `arc_swap`,
//! `crossbeam::utils::Backoff` or `crossbeam::queue::SegQueue` directly, so
//! the loom and shuttle builds check the same code that ships.
//!
//! # The snapshot cell
//!
//! [`SnapshotCell`] holds an `Arc<T>` that is replaced whole by
//! compare-and-swap. In normal builds it is an [`arc_swap::ArcSwap`], whose
//! operations are all sequentially consistent. arc-swap is neither loom- nor
//! shuttle-aware, so under `stockroom_loom` it is a loom mutex around the
//! `Arc`, and under `stockroom_shuttle` a shuttle mutex around it: the same
//! sequentially consistent load / compare-and-swap contract, visible to the
//! checker (every load and every swap is a scheduling point). The stand-ins
//! use a lock; the real cell does not.
//!
//! # The queue and the mutex
//!
//! [`SegQueue`] is crossbeam's unbounded lock-free queue in normal builds;
//! [`Mutex`] (and its [`Condvar`], which only blocking waits sleep on) is
//! `parking_lot`'s. Neither is loom- or shuttle-aware, so under
//! a checker the queue is a checker mutex around a `VecDeque` (push, pop,
//! `is_empty` and `len` each one critical section: linearizable, like the
//! real queue, and every call a scheduling point) and the mutex is the
//! checker's own. The queue's stand-in takes a lock; the real queue does
//! not. [`Mutex::lock`] never reports poisoning: a panic under a lock is a
//! bug the checker already reports, and the data is taken as it is.
//!
//! # The wide atomic and the once cell
//!
//! [`AtomicU128`] is `portable-atomic`'s 16-byte atomic in normal builds:
//! one `lock cmpxchg16b` on x86_64 (found at run time on every x86_64 CPU
//! since 2006), `ldxp`/`stxp` or `casp` on aarch64, so the SKU cell's
//! versioned words stay lock-free there; on a target without a 16-byte
//! compare-and-swap it falls back to a lock, which [`wide_is_lock_free`]
//! reports. Neither loom nor shuttle models 16-byte atomics, so under a
//! checker it is a checker mutex around a `u128`: every load, store and
//! compare-and-swap one critical section, sequentially consistent like the
//! real one, and a scheduling point. [`OnceLock`] is `std`'s in normal
//! builds (the tables grow by installing chunks in once cells); under a
//! checker it is `std`'s cell with a checker flag beside it, stored after
//! the value is in and loaded before it is read, so the checker sees the
//! ordering `std`'s cell provides.
//!
//! # The keyed map
//!
//! [`KeyedMap`] is a concurrent hash map whose every operation runs under
//! one shard's lock for the length of that operation only (the closures it
//! takes must not call back into the same map). In normal builds it is a
//! [`dashmap::DashMap`] (`SipHash`, so caller-chosen keys cannot steer
//! collisions). It is not loom- or shuttle-aware, so under a checker the
//! map is one [`Mutex`] around a `std` `HashMap`: each map operation is one
//! scheduling point, as atomic as a shard-locked one. It is for keyed,
//! off-hot-path state (the idempotency store); the stock path takes no lock.
//!
//! # The write-once cell
//!
//! [`OnceLock`] is `std`'s write-once cell in normal builds: `set` once,
//! then `get` is one acquire load that returns a reference living as long
//! as the cell (the SKU table's arena and index generations are built from
//! them). `std`'s cell is not loom- or shuttle-aware, so under a checker
//! it is `std`'s cell plus a checker `AtomicBool` that says "published":
//! `set` stores the value, then the flag (release); `get` reads the flag
//! (acquire) and only then the value. The checker thereby sees the
//! publication as one release store and every `get` as one acquire load,
//! and explores the interleavings in which a reader does not yet see a
//! value that is already written. The stand-in supports one setter at a
//! time (the table sets its cells under its writer lock); `std`'s own cell
//! takes no lock.

#[cfg(all(stockroom_loom, stockroom_shuttle))]
compile_error!("`stockroom_loom` and `stockroom_shuttle` are exclusive: set at most one of the two cfgs");

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
/// Snapshots are immutable data shared by `std`'s `Arc` in every build:
/// loom's `Arc` would only add leak tracking (shuttle has none of its own),
/// and arc-swap needs `std`'s. `Weak` goes with it (the event hub's
/// subscriptions hold the hub weakly).
pub(crate) use std::sync::{Arc, Weak};

#[cfg(stockroom_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

pub(crate) use cell::SnapshotCell;
pub(crate) use mutex::{Condvar, Mutex};
pub(crate) use once::OnceLock;
pub(crate) use queue::SegQueue;
pub(crate) use wide::AtomicU128;

/// The 16-byte atomic is a hardware compare-and-swap where the crate is
/// built and tested (it falls back to a lock on targets without one; see
/// the module docs).
#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle)), any(target_arch = "x86_64", target_arch = "aarch64")))]
#[test]
fn the_wide_atomic_is_lock_free_on_x86_64_and_aarch64() {
    assert!(portable_atomic::AtomicU128::is_lock_free());
}

/// A statistics counter (the metrics' stripes): `std`'s atomic in every
/// build. It orders nothing and no decision reads it, so a checker need not
/// see it, and counting adds no interleavings to a model (like
/// [`unique_id`]'s counter).
pub(crate) use std::sync::atomic::AtomicU64 as StatCounter;

/// A number no other call in this process returns: ids that tell ledgers
/// and SKU cells apart in thread-local tables (an address could be reused
/// after a drop). A `std` atomic in every build: it orders nothing and a
/// checker need not see it, only uniqueness matters.
pub(crate) fn unique_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness matters; nothing is published through it.
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(id < u64::MAX, "unique ids ran out");
    id
}

#[cfg(stockroom_loom)]
pub(crate) use loom::thread_local;
#[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
pub(crate) use shuttle::thread_local;
/// `thread_local!` of the build's primitives: `std`'s, loom's or shuttle's
/// (a checker runs its threads as its own, with their own locals).
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) use std::thread_local;

/// `std`'s once cell.
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod once {
    pub(crate) use std::sync::OnceLock;
}

/// A once cell a checker can see through (see the module docs): `std`'s
/// cell holds the value, and a checker flag, stored `Release` once the value
/// is in and loaded `Acquire` before it is read, carries the ordering the
/// checker must see (it cannot see `std`'s). A value is handed out only
/// after the flag says so; the initializing closures create checker objects
/// but never yield, so `std`'s cell never blocks a checker thread.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
mod once {
    use super::{AtomicBool, Ordering};

    pub(crate) struct OnceLock<T> {
        value: std::sync::OnceLock<T>,
        ready: AtomicBool,
    }

    impl<T> Default for OnceLock<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T: core::fmt::Debug> core::fmt::Debug for OnceLock<T> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_tuple("OnceLock").field(&self.get()).finish()
        }
    }

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> Self {
            Self { value: std::sync::OnceLock::new(), ready: AtomicBool::new(false) }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            // Acquire: pairs with the Release store below.
            if self.ready.load(Ordering::Acquire) { self.value.get() } else { None }
        }

        pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
            let mut mine = false;
            let value = self.value.get_or_init(|| {
                mine = true;
                init()
            });
            if mine {
                // Release: publishes the value to the checker (pairs with
                // the Acquire loads here and in `get`).
                self.ready.store(true, Ordering::Release);
            } else {
                // Another thread put the value in: wait for its flag, the
                // ordering the checker can see (a checker thread yields).
                // Acquire: pairs with the Release store above.
                while !self.ready.load(Ordering::Acquire) {
                    super::yield_now();
                }
            }
            value
        }

        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            let result = self.value.set(value);
            if result.is_ok() {
                // Release: see `get_or_init`.
                self.ready.store(true, Ordering::Release);
            }
            result
        }
    }
}

/// `portable-atomic`'s 16-byte atomic (see the module docs).
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod wide {
    pub(crate) use portable_atomic::AtomicU128;
}

/// Checker-visible stand-in for the 16-byte atomic (see the module docs):
/// every operation is one critical section of a checker mutex, so the
/// orderings passed in are all at least as strong as asked.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
mod wide {
    use super::{CheckedMutex, Ordering};

    #[derive(Debug)]
    pub(crate) struct AtomicU128 {
        value: CheckedMutex<u128>,
    }

    impl AtomicU128 {
        pub(crate) fn new(value: u128) -> Self {
            Self { value: CheckedMutex::new(value) }
        }

        pub(crate) fn load(&self, _: Ordering) -> u128 {
            *self.value.lock().unwrap()
        }

        pub(crate) fn store(&self, value: u128, _: Ordering) {
            *self.value.lock().unwrap() = value;
        }

        pub(crate) fn compare_exchange(
            &self,
            current: u128,
            new: u128,
            _: Ordering,
            _: Ordering,
        ) -> Result<u128, u128> {
            let mut value = self.value.lock().unwrap();
            if *value == current {
                *value = new;
                Ok(current)
            } else {
                Err(*value)
            }
        }
    }
}

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod cell {
    use super::Arc;
    use arc_swap::ArcSwap;

    /// An atomically replaceable `Arc<T>` (see the module docs).
    pub(crate) struct SnapshotCell<T> {
        current: ArcSwap<T>,
    }

    impl<T> SnapshotCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self { current: ArcSwap::new(value) }
        }

        /// Loads the current value as an owned `Arc`.
        pub(crate) fn load_full(&self) -> Arc<T> {
            self.current.load_full()
        }

        /// Installs `new` if the cell still holds `expected` (by pointer).
        /// On failure hands `new` back so the caller can reuse or drop it.
        pub(crate) fn compare_and_swap(&self, expected: &Arc<T>, new: Arc<T>) -> Result<(), Arc<T>> {
            let previous = self.current.compare_and_swap(expected, Arc::clone(&new));
            if Arc::ptr_eq(&previous, expected) { Ok(()) } else { Err(new) }
        }

        /// Installs `new` whatever the cell holds.
        pub(crate) fn store(&self, new: Arc<T>) {
            self.current.store(new);
        }
    }
}

/// The checkers' primitives: loom's or shuttle's mutex and yield, whichever
/// cfg is set; everything built on them below is shared.
#[cfg(stockroom_loom)]
use loom::{sync::Mutex as CheckedMutex, thread::yield_now};
#[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
use shuttle::{sync::Mutex as CheckedMutex, thread::yield_now};

#[cfg(any(stockroom_loom, stockroom_shuttle))]
mod cell {
    use super::{Arc, CheckedMutex};

    /// Checker-visible stand-in for `ArcSwap` (see the module docs).
    pub(crate) struct SnapshotCell<T> {
        current: CheckedMutex<Arc<T>>,
    }

    impl<T> SnapshotCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self { current: CheckedMutex::new(value) }
        }

        pub(crate) fn load_full(&self) -> Arc<T> {
            Arc::clone(&self.current.lock().unwrap())
        }

        pub(crate) fn compare_and_swap(&self, expected: &Arc<T>, new: Arc<T>) -> Result<(), Arc<T>> {
            let mut current = self.current.lock().unwrap();
            if Arc::ptr_eq(&current, expected) {
                *current = new;
                Ok(())
            } else {
                Err(new)
            }
        }

        pub(crate) fn store(&self, new: Arc<T>) {
            *self.current.lock().unwrap() = new;
        }
    }
}

/// `parking_lot`'s mutex behind the facade's small API (see the module docs).
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod mutex {
    /// The guard of a locked `Mutex`.
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A mutual-exclusion lock (see the module docs).
    pub(crate) struct Mutex<T> {
        inner: parking_lot::Mutex<T>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self { inner: parking_lot::Mutex::new(value) }
        }

        /// Locks, waiting if another thread holds the lock.
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.inner.lock()
        }

        /// Locks if no other thread holds the lock; never waits.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.inner.try_lock()
        }
    }

    /// A condition variable for [`Mutex`] (`parking_lot`'s).
    #[derive(Default)]
    pub(crate) struct Condvar {
        inner: parking_lot::Condvar,
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self { inner: parking_lot::Condvar::new() }
        }

        /// Releases the lock and sleeps until notified (or spuriously woken);
        /// holds the lock again on return.
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.inner.wait(&mut guard);
            guard
        }

        /// As [`wait`](Self::wait), giving up at `deadline`; true if it
        /// timed out.
        pub(crate) fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: std::time::Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let timed_out = self.inner.wait_until(&mut guard, deadline).timed_out();
            (guard, timed_out)
        }

        pub(crate) fn notify_all(&self) {
            self.inner.notify_all();
        }
    }
}

/// The checker's mutex behind the same API; poisoning is ignored (see the
/// module docs).
#[cfg(any(stockroom_loom, stockroom_shuttle))]
mod mutex {
    use super::CheckedMutex;
    use std::sync::{PoisonError, TryLockError};

    #[cfg(stockroom_loom)]
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    #[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
    pub(crate) type MutexGuard<'a, T> = shuttle::sync::MutexGuard<'a, T>;

    /// Checker-visible stand-in for `parking_lot::Mutex`.
    pub(crate) struct Mutex<T> {
        inner: CheckedMutex<T>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self { inner: CheckedMutex::new(value) }
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.inner.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.inner.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        }
    }

    #[cfg(stockroom_loom)]
    type CheckedCondvar = loom::sync::Condvar;
    #[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
    type CheckedCondvar = shuttle::sync::Condvar;

    /// The checker's condition variable behind the same API. A timed wait
    /// is the checker's own (which may report a time-out at any point:
    /// time is not modelled).
    pub(crate) struct Condvar {
        inner: CheckedCondvar,
    }

    impl Default for Condvar {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self { inner: CheckedCondvar::new() }
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.inner.wait(guard).unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            deadline: std::time::Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let timeout = deadline.saturating_duration_since(std::time::Instant::now());
            let (guard, result) = self.inner.wait_timeout(guard, timeout).unwrap_or_else(PoisonError::into_inner);
            (guard, result.timed_out())
        }

        pub(crate) fn notify_all(&self) {
            self.inner.notify_all();
        }
    }
}

/// crossbeam's lock-free unbounded queue.
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod queue {
    pub(crate) use crossbeam::queue::SegQueue;
}

/// Checker-visible stand-in for crossbeam's `SegQueue` (see the module
/// docs): the same linearizable push / pop / `is_empty` / `len`.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
mod queue {
    use super::Mutex;
    use std::collections::VecDeque;

    /// A FIFO queue; every operation is one critical section.
    pub(crate) struct SegQueue<T> {
        items: Mutex<VecDeque<T>>,
    }

    impl<T> SegQueue<T> {
        pub(crate) fn new() -> Self {
            Self { items: Mutex::new(VecDeque::new()) }
        }

        pub(crate) fn push(&self, value: T) {
            self.items.lock().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().pop_front()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.items.lock().is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().len()
        }
    }
}

/// Exponential backoff between compare-and-swap retries.
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) use crossbeam::utils::Backoff;

/// Under a checker a backoff step is a yield: the scheduler sees the retry
/// and may run the thread whose swap won (or any other) instead of letting
/// the loser spin.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
#[derive(Debug, Default)]
pub(crate) struct Backoff;

#[cfg(any(stockroom_loom, stockroom_shuttle))]
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff
    }

    /// A wait step: a yield (crossbeam's `snooze` spins, then yields).
    pub(crate) fn snooze(&self) {
        yield_now();
    }
}

/// Nanoseconds since the first call in this process, from the monotonic
/// clock: how long a long change's attempt took, and how long a writer
/// waits out its quiet window (see `cell::quiet`). Under a checker no time
/// passes: it is always 0 (the models bound waits by rounds instead).
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) fn monotonic_nanos() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    // 2^64 ns is 584 years of uptime.
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// See the normal build's `monotonic_nanos`.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
pub(crate) fn monotonic_nanos() -> u64 {
    0
}

/// How long a fast path backs off after its first lost race, in
/// nanoseconds; each further lost race doubles it, up to
/// [`RACE_BACKOFF_MAX_NANOS`].
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) const RACE_BACKOFF_FIRST_NANOS: u64 = 2_000;
/// The longest back-off after a lost race: 4 µs.
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) const RACE_BACKOFF_MAX_NANOS: u64 = 4_000;

/// Backs off a fast path that lost a compare-and-swap: spins (never
/// yields) for about [`RACE_BACKOFF_FIRST_NANOS`] `<< n` after its n-th
/// lost race, at most [`RACE_BACKOFF_MAX_NANOS`]. Timed by the clock, not
/// counted in `spin_loop` hints, whose length differs tenfold between CPUs.
/// The winner's next change then lands while its cache lines are still
/// hot, instead of both threads paying a transfer per attempt (lifecycle
/// on one SKU, 2 threads: 0.48x -> ~1.5x the per-SKU mutex; see
/// BENCHMARKS.md). Only the fast paths use it: their attempts are short,
/// so a few microseconds is several of the winner's changes. Under a
/// checker, a yield.
#[derive(Debug, Default)]
pub(crate) struct RaceBackoff {
    lost: u32,
}

impl RaceBackoff {
    /// One more race lost: back off.
    #[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
    pub(crate) fn lost(&mut self) {
        let wait = RACE_BACKOFF_FIRST_NANOS.checked_shl(self.lost).unwrap_or(u64::MAX).min(RACE_BACKOFF_MAX_NANOS);
        self.lost = self.lost.saturating_add(1);
        let until = monotonic_nanos().saturating_add(wait);
        // Bounded by time and by count: each round is at least 8 hints
        // (a nanosecond or more each), so `wait / 8` rounds cover `wait`.
        for _ in 0..RACE_BACKOFF_MAX_NANOS / 8 {
            for _ in 0..8 {
                core::hint::spin_loop();
            }
            if monotonic_nanos() >= until {
                break;
            }
        }
    }

    /// Under a checker: a yield, so the scheduler may run the winner.
    #[cfg(any(stockroom_loom, stockroom_shuttle))]
    pub(crate) fn lost(&mut self) {
        self.lost = self.lost.saturating_add(1);
        yield_now();
    }
}

/// One step of a wait for another thread's long change: a backoff step
/// while the backoff is short, then a 50 µs sleep (the wait may last
/// milliseconds; a waiter must not take the core from the thread it waits
/// for). Under a checker, a yield.
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) fn pause(backoff: &Backoff) {
    if backoff.is_completed() {
        std::thread::sleep(std::time::Duration::from_micros(50));
    } else {
        backoff.snooze();
    }
}

/// See the normal build's `pause`.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
pub(crate) fn pause(_: &Backoff) {
    yield_now();
}

pub(crate) use keyed::KeyedMap;

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod keyed {
    use dashmap::DashMap;
    use dashmap::mapref::entry::Entry;
    use std::hash::Hash;

    /// A concurrent map; each call holds one shard lock for its own length
    /// (see the module docs).
    pub(crate) struct KeyedMap<K, V> {
        map: DashMap<K, V>,
    }

    impl<K: Eq + Hash, V> KeyedMap<K, V> {
        pub(crate) fn new() -> Self {
            Self { map: DashMap::new() }
        }

        /// Under the key's shard lock: `occupied` on the value if there is
        /// one, else inserts the value `vacant` makes (if it makes one). Returns the closure's
        /// answer.
        pub(crate) fn entry<T>(
            &self,
            key: K,
            occupied: impl FnOnce(&mut V) -> T,
            vacant: impl FnOnce() -> (Option<V>, T),
        ) -> T {
            match self.map.entry(key) {
                Entry::Occupied(mut entry) => occupied(entry.get_mut()),
                Entry::Vacant(entry) => {
                    let (value, answer) = vacant();
                    if let Some(value) = value {
                        entry.insert(value);
                    }
                    answer
                }
            }
        }

        /// Under the key's shard lock: `f` on the value, if there is one.
        pub(crate) fn update<T>(&self, key: &K, f: impl FnOnce(&mut V) -> T) -> Option<T> {
            self.map.get_mut(key).map(|mut value| f(value.value_mut()))
        }

        /// Under the key's shard lock: removes the value if `f` says so.
        /// True if it removed one.
        pub(crate) fn remove_if(&self, key: &K, f: impl FnOnce(&V) -> bool) -> bool {
            self.map.remove_if(key, |_, value| f(value)).is_some()
        }

        /// Entries in the map (locks each shard in turn: a moment's count).
        pub(crate) fn len(&self) -> usize {
            self.map.len()
        }

        /// `f` on every entry, one shard lock at a time (entries inserted or
        /// removed meanwhile may or may not be seen).
        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
            for entry in self.map.iter() {
                f(entry.key(), entry.value());
            }
        }
    }
}

#[cfg(any(stockroom_loom, stockroom_shuttle))]
mod keyed {
    use super::Mutex;
    use std::collections::HashMap;
    use std::collections::hash_map::Entry;
    use std::hash::Hash;

    /// Checker-visible stand-in for the `DashMap` (see the module docs).
    pub(crate) struct KeyedMap<K, V> {
        map: Mutex<HashMap<K, V>>,
    }

    impl<K: Eq + Hash, V> KeyedMap<K, V> {
        pub(crate) fn new() -> Self {
            Self { map: Mutex::new(HashMap::new()) }
        }

        pub(crate) fn entry<T>(
            &self,
            key: K,
            occupied: impl FnOnce(&mut V) -> T,
            vacant: impl FnOnce() -> (Option<V>, T),
        ) -> T {
            match self.map.lock().entry(key) {
                Entry::Occupied(mut entry) => occupied(entry.get_mut()),
                Entry::Vacant(entry) => {
                    let (value, answer) = vacant();
                    if let Some(value) = value {
                        entry.insert(value);
                    }
                    answer
                }
            }
        }

        pub(crate) fn update<T>(&self, key: &K, f: impl FnOnce(&mut V) -> T) -> Option<T> {
            self.map.lock().get_mut(key).map(f)
        }

        pub(crate) fn remove_if(&self, key: &K, f: impl FnOnce(&V) -> bool) -> bool {
            let mut map = self.map.lock();
            if map.get(key).is_some_and(f) { map.remove(key).is_some() } else { false }
        }

        pub(crate) fn len(&self) -> usize {
            self.map.lock().len()
        }

        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
            for (key, value) in self.map.lock().iter() {
                f(key, value);
            }
        }
    }
}

/// Parking for the journal: a thread that waits for the journal's writer
/// (for room in its ring, for its record to be durable) registers its
/// [`thread::Thread`] handle and parks; the writer unparks it. Under loom
/// and shuttle these are the checker's own park/unpark, so a lost wake-up
/// is a deadlock the checker reports. Loom has no `park_timeout`; its
/// stand-in yields, which is what a timed park may always do (return
/// early, spuriously).
#[cfg(feature = "journal")]
pub(crate) mod thread {
    #[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
    pub(crate) use std::thread::{Thread, current, park, park_timeout, yield_now};

    #[cfg(stockroom_loom)]
    pub(crate) use loom::thread::{Thread, current, park, yield_now};

    /// Loom has no timed park: returning early is within `park_timeout`'s
    /// contract, so the stand-in yields.
    #[cfg(stockroom_loom)]
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        yield_now();
    }

    #[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
    pub(crate) use shuttle::thread::{Thread, current, park, park_timeout, yield_now};
}
