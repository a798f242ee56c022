//! The std/loom facade: every atomic, `Arc`, the snapshot cell and the
//! backoff used by the crate come from here.
//!
//! Owns: the choice between `std` and `loom` primitives, made once, on the
//! crate's own `stockroom_loom` cfg (plain `cfg(loom)` would switch
//! dependencies that react to it too).
//!
//! Must never: contain inventory logic, or be bypassed. No other module
//! names `std::sync::atomic`, `arc_swap` or `crossbeam::utils::Backoff`
//! directly, so the loom build model-checks the same code that ships.
//!
//! # The snapshot cell
//!
//! [`SnapshotCell`] holds an `Arc<T>` that is replaced whole by
//! compare-and-swap. In normal builds it is an [`arc_swap::ArcSwap`], whose
//! operations are all sequentially consistent. arc-swap is not loom-aware,
//! so under `stockroom_loom` it is a loom mutex around the `Arc`: the same
//! sequentially consistent load / compare-and-swap contract, visible to the
//! model checker. The stand-in uses a lock; the real cell does not.

/// Snapshots are immutable data shared by `std`'s `Arc` in both builds:
/// loom's `Arc` would only add leak tracking, and arc-swap needs `std`'s.
pub(crate) use std::sync::Arc;
#[cfg(not(stockroom_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(stockroom_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub(crate) use cell::{SnapshotCell, SnapshotGuard};

#[cfg(not(stockroom_loom))]
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

#[cfg(stockroom_loom)]
mod cell {
    use super::Arc;
    use loom::sync::Mutex;

    /// Under loom the guard is simply an owned `Arc`.
    pub(crate) type SnapshotGuard<T> = Arc<T>;

    /// Loom-visible stand-in for `ArcSwap` (see the module docs).
    pub(crate) struct SnapshotCell<T> {
        current: Mutex<Arc<T>>,
    }

    impl<T> SnapshotCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self { current: Mutex::new(value) }
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
#[cfg(not(stockroom_loom))]
pub(crate) use crossbeam::utils::Backoff;

/// Under loom a backoff step is a yield, so the model explores the other
/// threads instead of spinning.
#[cfg(stockroom_loom)]
#[derive(Debug, Default)]
pub(crate) struct Backoff;

#[cfg(stockroom_loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff
    }

    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}
