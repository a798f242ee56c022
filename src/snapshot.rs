//! Snapshots: one SKU's state at one version, for readers.
//!
//! Owns: [`Snapshot`] (a cheap handle on a copy of one version) and
//! [`SnapshotData`] (the same contents as plain, serializable data).
//!
//! Must never: block a writer or change. A snapshot is read from the SKU's
//! words at one version (see the cell's `read` module) and copied out; it
//! shares nothing a writer touches.

use crate::cell::{HoldData, LotData, SkuData};
use crate::clock::Timestamp;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{LotQuantities, LotSnapshot};
use crate::outcome::{Line, Lines};
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
    data: Arc<SkuData>,
    totals: LotQuantities,
}

/// A lot's counters as the public API shows them at instant `at` (see
/// [`LotData::quantities`]).
pub(crate) fn quantities(lot: &LotData, at: Option<Timestamp>) -> LotQuantities {
    lot.quantities(at)
}

impl Snapshot {
    pub(crate) fn new(data: SkuData) -> Snapshot {
        let mut totals = LotQuantities::default();
        for lot in &data.lots {
            totals.add(&quantities(lot, data.at));
        }
        Snapshot { data: Arc::new(data), totals }
    }

    /// The SKU.
    pub fn sku(&self) -> SkuId {
        self.data.sku
    }

    /// The version: 0 when defined, one more for every change since.
    pub fn version(&self) -> u64 {
        self.data.version
    }

    /// The SKU's allocation policy.
    pub fn policy(&self) -> AllocationPolicy {
        self.data.policy
    }

    /// The sum of every lot's counters.
    pub fn totals(&self) -> LotQuantities {
        self.totals
    }

    /// Number of lots ever received.
    pub fn lot_count(&self) -> usize {
        self.data.lots.len()
    }

    /// Number of live reservations.
    pub fn reservation_count(&self) -> usize {
        self.data.holds.len()
    }

    /// Lots in the order the SKU's policy draws them.
    pub fn lots(&self) -> impl Iterator<Item = LotSnapshot> + '_ {
        self.data.lots.iter().map(|lot| lot_snapshot(lot, self.data.at))
    }

    /// One lot, by id.
    pub fn lot(&self, id: LotId) -> Option<LotSnapshot> {
        self.data.lots.iter().find(|lot| lot.facts.id == id).map(|lot| lot_snapshot(lot, self.data.at))
    }

    /// Live reservations, oldest first.
    pub fn reservations(&self) -> impl Iterator<Item = Reservation> + '_ {
        self.data.holds.iter().map(|hold| reservation(&self.data, hold))
    }

    /// One live reservation, by id; `None` if it is not live in this
    /// version (or names another SKU).
    pub fn reservation(&self, id: ReservationId) -> Option<Reservation> {
        if id.sku != self.data.sku {
            return None;
        }
        self.data.holds.iter().find(|hold| hold.seq == id.seq).map(|hold| reservation(&self.data, hold))
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
}

fn lot_snapshot(lot: &LotData, at: Option<Timestamp>) -> LotSnapshot {
    LotSnapshot {
        id: lot.facts.id,
        received_at: lot.facts.received_at,
        expires_at: lot.facts.expires_at,
        attributes: lot.attributes.clone(),
        location: lot.facts.location,
        quantities: quantities(lot, at),
    }
}

/// A hold's lines as the public API shows them (see
/// [`merged`](crate::cell::maintain::merged)).
pub(crate) fn public_lines(data: &SkuData, hold: &HoldData) -> Lines {
    crate::cell::maintain::merged(hold)
        .into_iter()
        .map(|(arrival, quantity)| Line { lot: data.lot(arrival).expect("a hold's lot exists").facts.id, quantity })
        .collect()
}

pub(crate) fn reservation(data: &SkuData, hold: &HoldData) -> Reservation {
    reservation_with(hold.id(data.sku), public_lines(data, hold), hold)
}

/// One live hold as a [`Reservation`], read straight from a view: O(its
/// lines), where materializing the SKU would read every hold.
pub(crate) fn reservation_in(view: &crate::cell::view::View, hold: &HoldData) -> Reservation {
    reservation_with(hold.id(view.cell.sku), crate::cell::maintain::public_lines(view, hold), hold)
}

fn reservation_with(id: crate::ids::ReservationId, lines: Lines, hold: &HoldData) -> Reservation {
    Reservation {
        id,
        lines,
        granted: hold.granted,
        shorted: hold.granted.minus(hold.held()).minus(hold.outstanding),
        backordered: hold.outstanding,
        deadline: hold.deadline,
        tag: hold.marks.tag,
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
