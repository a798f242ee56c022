//! One order as the ledger keeps it: its parts and the state machine that
//! lets exactly one command at a time act on it.
//!
//! Owns: [`OrderRecord`] and its [`Phase`] word.
//!
//! Must never: let two commands act on one order at once, or move an order
//! out of a final phase. Every command claims the order by one
//! compare-and-swap from [`Phase::Live`] to its own working phase
//! (committing, releasing, extending) and leaves it by a store: back to
//! `Live` (it stopped and undid what it did) or on to a final phase
//! (`Committed`, `Released`). A second command meanwhile finds the order
//! busy and is told so; nothing waits.
//!
//! # Orderings
//!
//! The claim is `AcqRel` and the leave a `Release` store; loads are
//! `Acquire`. What a command did to the parts (changes of their SKUs) is
//! published by those SKUs' own protocol; the phase word only orders one
//! command after the previous one on the same order.

use crate::clock::Timestamp;
use crate::ids::{OrderId, ReservationId};
use crate::sync::{AtomicU8, Ordering};

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Live = 0,
    Committing = 1,
    Releasing = 2,
    Extending = 3,
    Committed = 4,
    Released = 5,
}

impl Phase {
    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Live,
            1 => Phase::Committing,
            2 => Phase::Releasing,
            3 => Phase::Extending,
            4 => Phase::Committed,
            5 => Phase::Released,
            other => unreachable!("order phase {other} was never stored"),
        }
    }

    /// Whether a command is acting on the order now.
    pub(crate) fn is_busy(self) -> bool {
        matches!(self, Phase::Committing | Phase::Releasing | Phase::Extending)
    }
}

/// An order: its id, tag, parts (one reservation per SKU, by SKU id) and
/// phase.
#[derive(Debug)]
pub(crate) struct OrderRecord {
    pub(crate) id: OrderId,
    pub(crate) tag: u64,
    pub(crate) parts: Box<[ReservationId]>,
    /// The parts' deadline when made (`None`: held until ended).
    pub(crate) deadline: Option<Timestamp>,
    phase: AtomicU8,
}

impl OrderRecord {
    pub(crate) fn new(id: OrderId, tag: u64, parts: Box<[ReservationId]>, deadline: Option<Timestamp>) -> OrderRecord {
        OrderRecord { id, tag, parts, deadline, phase: AtomicU8::new(Phase::Live as u8) }
    }

    /// An order as an image recorded it, in `phase` (a final phase or
    /// `Live`: an image never holds a command's working phase).
    pub(crate) fn restored(
        id: OrderId,
        tag: u64,
        parts: Box<[ReservationId]>,
        deadline: Option<Timestamp>,
        phase: Phase,
    ) -> OrderRecord {
        debug_assert!(!phase.is_busy());
        OrderRecord { id, tag, parts, deadline, phase: AtomicU8::new(phase as u8) }
    }

    pub(crate) fn phase(&self) -> Phase {
        // Acquire: pairs with `leave`'s Release (what the last command did
        // is visible to whoever sees its phase).
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Claims the order for `working` from `Live`; the phase found if not.
    pub(crate) fn claim(&self, working: Phase) -> Result<(), Phase> {
        debug_assert!(working.is_busy());
        // AcqRel: the claim orders this command after the previous one
        // (its Release in `leave`); Acquire on failure, as `phase` does.
        self.phase
            .compare_exchange(Phase::Live as u8, working as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Phase::from_u8)
    }

    /// Leaves the working phase for `next` (`Live`, or a final phase).
    pub(crate) fn leave(&self, next: Phase) {
        debug_assert!(!next.is_busy());
        // Release: pairs with the Acquire of the next claim or read.
        let was = Phase::from_u8(self.phase.swap(next as u8, Ordering::AcqRel));
        assert!(was.is_busy(), "{}: left phase {was:?} without claiming it", self.id);
    }
}
