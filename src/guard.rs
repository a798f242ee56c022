//! Reservations scoped to a value: released on drop unless committed.
//!
//! Owns: [`HoldGuard`] (borrows the ledger, returned by
//! [`Ledger::allocate_guarded`]) and [`OwnedHoldGuard`] (owns an
//! `Arc<Ledger>`, so it can move into a task or another thread; returned by
//! [`Ledger::allocate_owned`]), and the two constructors, as an inherent
//! `impl Ledger` block here: the guard depends on the ledger, never the
//! other way round.
//!
//! Must never: end a reservation twice, or leave one held after the guard
//! is gone without the caller having said so (committed, released, or
//! kept). A guard is a caller of the ledger's public commands like any
//! other: its drop is an ordinary release.

use crate::command::AllocateRequest;
use crate::error::{AllocateError, CommitError, ReleaseError};
use crate::ids::ReservationId;
use crate::ledger::Ledger;
use crate::outcome::{Allocation, Committed, Released};
use crate::sync::Arc;
use core::ops::Deref;

impl Ledger {
    /// [`allocate`](Self::allocate), returning a guard that releases the
    /// reservation when dropped unless committed, released or kept.
    pub fn allocate_guarded(&self, request: &AllocateRequest) -> Result<HoldGuard<'_>, AllocateError> {
        self.allocate(request).map(|allocation| HoldGuard { core: Core::new(self, allocation) })
    }

    /// [`allocate_guarded`](Self::allocate_guarded) for a ledger shared by
    /// `Arc`: the guard holds a clone of the `Arc`, so it is `'static` and
    /// can move into a spawned task or thread (an async handler that holds
    /// stock while it awaits a payment, say).
    ///
    /// ```
    /// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};
    /// use std::sync::Arc;
    ///
    /// let ledger = Arc::new(Ledger::new());
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 5))?;
    /// let guard = ledger.allocate_owned(&AllocateRequest::new(SkuId(1), 2))?;
    /// let worker = std::thread::spawn(move || {
    ///     let mut guard = guard; // moved: the guard owns its ledger handle
    ///     guard.commit(None).map(|committed| committed.committed.to_vec().iter().map(|line| line.quantity.get()).sum::<u64>())
    /// });
    /// assert_eq!(worker.join().unwrap()?, 2);
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().committed.get(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocate_owned(self: &Arc<Self>, request: &AllocateRequest) -> Result<OwnedHoldGuard, AllocateError> {
        self.allocate(request).map(|allocation| OwnedHoldGuard { core: Core::new(Arc::clone(self), allocation) })
    }
}

/// What both guards do, over any handle on the ledger.
#[derive(Debug)]
struct Core<L: Deref<Target = Ledger>> {
    ledger: L,
    allocation: Allocation,
    /// Whether dropping the guard still has a reservation to release.
    armed: bool,
}

impl<L: Deref<Target = Ledger>> Core<L> {
    fn new(ledger: L, allocation: Allocation) -> Self {
        Core { ledger, allocation, armed: true }
    }

    fn reservation(&self) -> ReservationId {
        self.allocation.reservation
    }

    fn commit(&mut self, quantity: Option<u64>) -> Result<Committed, CommitError> {
        let result = self.ledger.commit(self.reservation(), quantity);
        self.armed = matches!(
            result,
            Err(CommitError::ZeroQuantity { .. }
                | CommitError::QuantityTooLarge { .. }
                | CommitError::ExceedsHeld { .. }
                | CommitError::Contended { .. })
        );
        result
    }

    fn release(&mut self) -> Result<Released, ReleaseError> {
        let result = self.ledger.release(self.reservation());
        self.armed = matches!(result, Err(ReleaseError::Contended { .. }));
        result
    }

    fn keep(&mut self) -> Allocation {
        self.armed = false;
        self.allocation.clone()
    }
}

impl<L: Deref<Target = Ledger>> Drop for Core<L> {
    fn drop(&mut self) {
        if self.armed {
            // Retries while contended; a reservation that already ended
            // (lapsed, or ended by id elsewhere) has nothing to return.
            self.ledger.roll_back(self.reservation(), 0);
        }
    }
}

/// Generates the methods the two guards share, delegating to `Core`.
macro_rules! guard_methods {
    () => {
        /// The allocation that made the reservation.
        pub fn allocation(&self) -> &Allocation {
            &self.core.allocation
        }

        /// The reservation's id.
        pub fn reservation(&self) -> ReservationId {
            self.core.reservation()
        }

        /// Whether dropping the guard would release the reservation.
        pub fn is_armed(&self) -> bool {
            self.core.armed
        }

        /// Commits the reservation (see [`Ledger::commit`]). The guard stays
        /// armed only if the reservation is still live after the call: after a
        /// refusal of the input (zero, more than held) or a contended attempt.
        pub fn commit(&mut self, quantity: Option<u64>) -> Result<Committed, CommitError> {
            self.core.commit(quantity)
        }

        /// Releases the reservation now (see [`Ledger::release`]), disarming the
        /// guard unless the attempt was contended.
        pub fn release(&mut self) -> Result<Released, ReleaseError> {
            self.core.release()
        }

        /// Disarms the guard: the reservation outlives it (ended later by id,
        /// or by its deadline).
        pub fn keep(mut self) -> Allocation {
            self.core.keep()
        }
    };
}

/// A live reservation that releases itself when dropped, unless it was
/// committed, released or kept first (like a semaphore permit).
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};
///
/// let ledger = Ledger::new();
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 5))?;
/// {
///     let guard = ledger.allocate_guarded(&AllocateRequest::new(SkuId(1), 3))?;
///     assert_eq!(guard.allocation().quantity().get(), 3);
///     // payment failed: the scope ends without a commit
/// }
/// assert_eq!(ledger.snapshot(SkuId(1))?.totals().available.get(), 5);
///
/// let mut guard = ledger.allocate_guarded(&AllocateRequest::new(SkuId(1), 3))?;
/// guard.commit(None)?;
/// drop(guard); // committed: nothing to release
/// assert_eq!(ledger.snapshot(SkuId(1))?.totals().committed.get(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the guard releases the reservation at once"]
#[derive(Debug)]
pub struct HoldGuard<'a> {
    core: Core<&'a Ledger>,
}

impl HoldGuard<'_> {
    guard_methods!();
}

/// [`HoldGuard`] that owns an `Arc<Ledger>`: `Send + 'static`, so it can
/// move into a task. Releases the reservation when dropped unless it was
/// committed, released or kept first. See [`Ledger::allocate_owned`].
#[must_use = "dropping the guard releases the reservation at once"]
#[derive(Debug)]
pub struct OwnedHoldGuard {
    core: Core<Arc<Ledger>>,
}

impl OwnedHoldGuard {
    guard_methods!();

    /// The ledger the reservation is in.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.core.ledger
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use crate::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};
    use std::sync::Arc;

    fn stocked() -> Arc<Ledger> {
        let ledger = Arc::new(Ledger::new());
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
        ledger
    }

    /// An owned guard dropped in another thread releases its units; one
    /// kept leaves them held; neither ends a reservation twice.
    #[test]
    fn an_owned_guard_releases_where_it_is_dropped() {
        let ledger = stocked();
        let guard = ledger.allocate_owned(&AllocateRequest::new(SkuId(1), 4)).unwrap();
        assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().held.get(), 4);
        std::thread::spawn(move || drop(guard)).join().unwrap();
        assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().held.get(), 0);

        let kept = ledger.allocate_owned(&AllocateRequest::new(SkuId(1), 3)).unwrap().keep();
        assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().held.get(), 3);
        ledger.release(kept.reservation).unwrap();

        let mut released = ledger.allocate_owned(&AllocateRequest::new(SkuId(1), 2)).unwrap();
        released.release().unwrap();
        assert!(!released.is_armed());
        drop(released);
        let totals = ledger.snapshot(SkuId(1)).unwrap().totals();
        assert_eq!((totals.available.get(), totals.held.get()), (10, 0));
        assert!(ledger.audit().is_clean());
    }
}
