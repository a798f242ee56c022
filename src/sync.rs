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
//! names `std::sync::atomic`, `arc_swap` or `crossbeam::utils::Backoff`
//! directly, so the loom and shuttle builds check the same code that ships.
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
//! # The keyed map and the mutex
//!
//! [`KeyedMap`] is a concurrent hash map whose every operation runs under
//! one shard's lock for the length of that operation only (the closures it
//! takes must not call back into the same map). In normal builds it is a
//! [`dashmap::DashMap`] (`SipHash`, so caller-chosen keys cannot steer
//! collisions); [`Mutex`] is `parking_lot`'s. Neither is loom- or
//! shuttle-aware, so under a checker the map is one checker mutex around a
//! `std` `HashMap` and the mutex is the checker's: each map operation is one
//! scheduling point, as atomic as a shard-locked one. Both are for keyed,
//! off-hot-path state (the idempotency store); the stock path takes no lock.

#[cfg(all(stockroom_loom, stockroom_shuttle))]
compile_error!("`stockroom_loom` and `stockroom_shuttle` are exclusive: set at most one of the two cfgs");

/// Snapshots are immutable data shared by `std`'s `Arc` in every build:
/// loom's `Arc` would only add leak tracking (shuttle has none of its own),
/// and arc-swap needs `std`'s.
pub(crate) use std::sync::Arc;
#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(stockroom_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub(crate) use cell::{SnapshotCell, SnapshotGuard};

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

pub(crate) use keyed::{KeyedMap, Mutex};

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
// Used only by the idempotency store, itself unused until the ledger wires
// it in (see `crate::idempotency`); remove with that change.
#[cfg_attr(any(not(test), stockroom_shuttle), allow(dead_code))]
mod keyed {
    use dashmap::DashMap;
    use dashmap::mapref::entry::Entry;
    use std::hash::Hash;

    /// A short-held lock for keyed, off-hot-path state.
    pub(crate) use parking_lot::Mutex;

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

#[cfg(stockroom_loom)]
use loom::sync::MutexGuard as CheckedMutexGuard;
#[cfg(all(stockroom_shuttle, not(stockroom_loom)))]
use shuttle::sync::MutexGuard as CheckedMutexGuard;

#[cfg(any(stockroom_loom, stockroom_shuttle))]
// Used only by the idempotency store, itself unused until the ledger wires
// it in (see `crate::idempotency`); remove with that change.
#[cfg_attr(any(not(test), stockroom_shuttle), allow(dead_code))]
mod keyed {
    use super::{CheckedMutex, CheckedMutexGuard};
    use std::collections::HashMap;
    use std::collections::hash_map::Entry;
    use std::hash::Hash;

    /// Checker-visible stand-in for `parking_lot::Mutex` (no poisoning: a
    /// panic while locked leaves the value as it was left).
    pub(crate) struct Mutex<T> {
        inner: CheckedMutex<T>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self { inner: CheckedMutex::new(value) }
        }

        pub(crate) fn lock(&self) -> CheckedMutexGuard<'_, T> {
            self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

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
