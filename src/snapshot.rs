//! Snapshots: one SKU's state at one version, for readers.
//!
//! Owns: [`Snapshot`] (a cheap handle on a published version) and
//! [`SnapshotData`] (the same contents as plain, serializable data).
//!
//! Must never: block a writer or change. A snapshot is an `Arc` on a version
//! that will never be modified; holding it keeps that version alive and
//! nothing else.

use crate::cell::SkuState;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{LotQuantities, LotSnapshot};
use crate::policy::AllocationPolicy;
use crate::reservation::Reservation;
use crate::sync::Arc;

/// One SKU at one version: its lots in policy order, its live reservations
/// and its totals. Cloning is one reference-count increment.
///
/// ```
/// use stockroom::{AllocationPolicy, Ledger, LotId, NewLot, SkuId};
///
/// let ledger = Ledger::new();
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fefo).unwrap();
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
/// let snapshot = ledger.snapshot(SkuId(1)).unwrap();
/// assert_eq!(snapshot.version(), 1);
/// assert_eq!(snapshot.totals().available.get(), 10);
/// ```
#[derive(Clone)]
pub struct Snapshot {
    state: Arc<SkuState>,
}

impl Snapshot {
    pub(crate) fn new(state: Arc<SkuState>) -> Snapshot {
        Snapshot { state }
    }

    /// The SKU.
    pub fn sku(&self) -> SkuId {
        self.state.sku
    }

    /// The version: 0 when defined, one more for every change since.
    pub fn version(&self) -> u64 {
        self.state.version
    }

    /// The SKU's allocation policy.
    pub fn policy(&self) -> AllocationPolicy {
        self.state.policy
    }

    /// The sum of every lot's counters.
    pub fn totals(&self) -> LotQuantities {
        self.state.totals
    }

    /// Number of lots ever received.
    pub fn lot_count(&self) -> usize {
        self.state.catalog.len()
    }

    /// Number of live reservations.
    pub fn reservation_count(&self) -> usize {
        self.state.holds.len()
    }

    /// Lots in the order the SKU's policy draws them.
    pub fn lots(&self) -> impl Iterator<Item = LotSnapshot> + '_ {
        self.state.catalog.order().iter().map(|&arrival| self.lot_at(arrival))
    }

    /// One lot, by id.
    pub fn lot(&self, id: LotId) -> Option<LotSnapshot> {
        self.state.catalog.find(id).map(|arrival| self.lot_at(arrival))
    }

    fn lot_at(&self, arrival: u32) -> LotSnapshot {
        let catalog = &self.state.catalog;
        let meta = catalog.meta(arrival);
        LotSnapshot {
            id: meta.id,
            received_at: meta.received_at,
            expires_at: meta.expires_at(),
            attributes: catalog.attributes(arrival).cloned(),
            quantities: self.state.quantities(arrival),
        }
    }

    /// Live reservations, oldest first.
    pub fn reservations(&self) -> impl Iterator<Item = Reservation> + '_ {
        self.state.holds.iter().map(|(&seq, hold)| self.reservation_at(seq, hold))
    }

    /// One live reservation, by id; `None` if it is not live in this
    /// version (or names another SKU).
    pub fn reservation(&self, id: ReservationId) -> Option<Reservation> {
        if id.sku != self.state.sku {
            return None;
        }
        let hold = self.state.holds.get(&id.seq)?;
        Some(self.reservation_at(id.seq, hold))
    }

    pub(crate) fn reservation_at(&self, seq: u64, hold: &crate::cell::Hold) -> Reservation {
        Reservation {
            id: ReservationId { sku: self.state.sku, seq },
            lines: self.state.public_lines(&hold.lines),
            granted: hold.granted,
            shorted: hold.shorted,
            deadline: hold.deadline.map(|deadline| deadline.at),
        }
    }

    /// The same contents as plain data (for serialization, diffing, tests).
    pub fn to_data(&self) -> SnapshotData {
        SnapshotData {
            sku: self.sku(),
            version: self.version(),
            policy: self.policy(),
            lots: self.lots().collect(),
            reservations: self.reservations().collect(),
            totals: self.totals(),
        }
    }

    pub(crate) fn state(&self) -> &SkuState {
        &self.state
    }
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Snapshot")
            .field("sku", &self.sku())
            .field("version", &self.version())
            .field("totals", &self.totals())
            .field("lots", &self.lot_count())
            .field("reservations", &self.reservation_count())
            .finish()
    }
}

/// A snapshot's contents as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotData {
    /// The SKU.
    pub sku: SkuId,
    /// The version.
    pub version: u64,
    /// The allocation policy.
    pub policy: AllocationPolicy,
    /// Lots in policy order.
    pub lots: Vec<LotSnapshot>,
    /// Live reservations, oldest first.
    pub reservations: Vec<Reservation>,
    /// The sum of every lot's counters.
    pub totals: LotQuantities,
}
