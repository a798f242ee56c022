//! A reservation scoped to a block: released on drop unless committed.
//!
//! Owns: [`HoldGuard`], returned by
//! [`Ledger::allocate_guarded`](crate::Ledger::allocate_guarded).
//!
//! Must never: end a reservation twice, or leave one held after the guard
//! is gone without the caller having said so (committed, released, or
//! [`keep`](HoldGuard::keep)). A guard is a caller of the ledger's public
//! commands like any other: its drop is an ordinary release.

use crate::error::{CommitError, ReleaseError};
use crate::ids::ReservationId;
use crate::ledger::Ledger;
use crate::outcome::{Allocation, Committed, Released};

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
    ledger: &'a Ledger,
    allocation: Allocation,
    /// Whether dropping the guard still has a reservation to release.
    armed: bool,
}

impl<'a> HoldGuard<'a> {
    pub(crate) fn new(ledger: &'a Ledger, allocation: Allocation) -> HoldGuard<'a> {
        HoldGuard { ledger, allocation, armed: true }
    }

    /// The allocation that made the reservation.
    pub fn allocation(&self) -> &Allocation {
        &self.allocation
    }

    /// The reservation's id.
    pub fn reservation(&self) -> ReservationId {
        self.allocation.reservation
    }

    /// Whether dropping the guard would release the reservation.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Commits the reservation (see [`Ledger::commit`]). The guard stays
    /// armed only if the reservation is still live after the call: after a
    /// refusal of the input (zero, more than held) or a contended attempt.
    pub fn commit(&mut self, quantity: Option<u64>) -> Result<Committed, CommitError> {
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

    /// Releases the reservation now (see [`Ledger::release`]), disarming the
    /// guard unless the attempt was contended.
    pub fn release(&mut self) -> Result<Released, ReleaseError> {
        let result = self.ledger.release(self.reservation());
        self.armed = matches!(result, Err(ReleaseError::Contended { .. }));
        result
    }

    /// Disarms the guard: the reservation outlives it (ended later by id,
    /// or by its deadline).
    pub fn keep(mut self) -> Allocation {
        self.armed = false;
        self.allocation.clone()
    }
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Retries while contended; a reservation that already ended
            // (lapsed, or ended by id elsewhere) has nothing to return.
            self.ledger.roll_back(self.reservation());
        }
    }
}
