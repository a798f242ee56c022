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
//! names `std::sync::atomic`, `arc_swap`, `crossbeam::utils::Backoff` or
//! `crossbeam::queue::SegQueue` directly, so the loom and shuttle builds
//! check the same code that ships.
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
//! [`Mutex`] is `parking_lot`'s. Neither is loom- or shuttle-aware, so under
//! a checker the queue is a checker mutex around a `VecDeque` (push, pop,
//! `is_empty` and `len` each one critical section: linearizable, like the
//! real queue, and every call a scheduling point) and the mutex is the
//! checker's own. The queue's stand-in takes a lock; the real queue does
//! not. [`Mutex::lock`] never reports poisoning: a panic under a lock is a
//! bug the checker already reports, and the data is taken as it is.
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

#[cfg(all(stockroom_loom, stockroom_shuttle))]
compile_error!("`stockroom_loom` and `stockroom_shuttle` are exclusive: set at most one of the two cfgs");

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
/// Snapshots are immutable data shared by `std`'s `Arc` in every build:
/// loom's `Arc` would only add leak tracking (shuttle has none of its own),
/// and arc-swap needs `std`'s. `Weak` goes with it (the event hub's
/// subscriptions hold the hub weakly).
pub(crate) use std::sync::{Arc, Weak};

#[cfg(stockroom_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

pub(crate) use cell::SnapshotCell;
pub(crate) use mutex::Mutex;
pub(crate) use queue::SegQueue;

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
mod cell {
    use super::Arc;
    use arc_swap::ArcSwap;

    /// A read guard: derefs to the `Arc<T>` that was current at load time.
    pub(crate) type SnapshotGuard<T> = arc_swap::Guard<Arc<T>>;

    /// An atomically replaceable `Arc<T>` (see the module docs).
    pub(crate) struct SnapshotCell<T> {
        current: ArcSwap<T>,
    }

    impl<T> SnapshotCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self { current: ArcSwap::new(value) }
        }

        /// Loads the current value without touching its reference count.
        pub(crate) fn load(&self) -> SnapshotGuard<T> {
            self.current.load()
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

    /// Under a checker the guard is simply an owned `Arc`.
    pub(crate) type SnapshotGuard<T> = Arc<T>;

    /// Checker-visible stand-in for `ArcSwap` (see the module docs).
    pub(crate) struct SnapshotCell<T> {
        current: CheckedMutex<Arc<T>>,
    }

    impl<T> SnapshotCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self { current: CheckedMutex::new(value) }
        }

        pub(crate) fn load(&self) -> SnapshotGuard<T> {
            Arc::clone(&self.current.lock().unwrap())
        }

        pub(crate) fn load_full(&self) -> Arc<T> {
            self.load()
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

    pub(crate) fn snooze(&self) {
        yield_now();
    }
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
        /// one, else inserts the value `vacant` makes. Returns the closure's
        /// answer.
        pub(crate) fn entry<T>(
            &self,
            key: K,
            occupied: impl FnOnce(&mut V) -> T,
            vacant: impl FnOnce() -> (V, T),
        ) -> T {
            match self.map.entry(key) {
                Entry::Occupied(mut entry) => occupied(entry.get_mut()),
                Entry::Vacant(entry) => {
                    let (value, answer) = vacant();
                    entry.insert(value);
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
            vacant: impl FnOnce() -> (V, T),
        ) -> T {
            match self.map.lock().entry(key) {
                Entry::Occupied(mut entry) => occupied(entry.get_mut()),
                Entry::Vacant(entry) => {
                    let (value, answer) = vacant();
                    entry.insert(value);
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
    }
}
