//! Identifiers: SKUs, lots, locations, reservations and orders.
//!
//! Owns: the id newtypes and how they print.
//!
//! Must never: allocate. Ids are `Copy` integers so that the hot path can
//! pass them by value; hosts with string keys intern them.

use core::fmt;

/// A stock-keeping unit, chosen by the host (intern string SKUs to `u64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct SkuId(pub u64);

/// A lot (batch, pallet) of one SKU, chosen by the host; unique within its
/// SKU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct LotId(pub u64);

/// A place stock is kept (a warehouse, a store, a bin), chosen by the
/// host. Lots carry one; requests may restrict or rank them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct LocationId(pub u32);

/// The largest [`LocationId`] a lot may carry (a lot keeps its location in
/// 20 bits).
pub const LOCATION_MAX: u32 = (1 << 20) - 2;

/// An order: several reservations (one per SKU) that commit, release and
/// extend as one. Assigned by the engine, unique within a ledger; an id is
/// never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct OrderId(pub u64);

/// A reservation, assigned by the engine: the SKU it holds stock of, its
/// `seq` (the SKU version whose change made it: unique within the SKU,
/// increasing in allocation order) and where the SKU keeps it.
///
/// Two ids are equal when their SKU and `seq` are: the place is a locator
/// the engine fills in so that ending a reservation finds it in one step.
/// An id built by hand ([`ReservationId::new`]) works too, found by a scan
/// of the SKU's reservations.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReservationId {
    /// The SKU whose stock is held.
    pub sku: SkuId,
    /// The SKU version the allocation produced.
    pub seq: u64,
    /// Where the SKU keeps it (`u32::MAX`: unknown).
    #[cfg_attr(feature = "serde", serde(default = "unknown_slot"))]
    slot: u32,
}

#[cfg(feature = "serde")]
fn unknown_slot() -> u32 {
    ReservationId::SLOT_UNKNOWN
}

impl ReservationId {
    /// The locator of an id whose place is not known.
    pub(crate) const SLOT_UNKNOWN: u32 = u32::MAX;

    /// The reservation `seq` of `sku`, its place unknown (ending it scans
    /// the SKU's reservations: an id the engine handed out is cheaper).
    pub const fn new(sku: SkuId, seq: u64) -> ReservationId {
        ReservationId { sku, seq, slot: ReservationId::SLOT_UNKNOWN }
    }

    /// An id with its place.
    pub(crate) const fn located(sku: SkuId, seq: u64, slot: u32) -> ReservationId {
        ReservationId { sku, seq, slot }
    }

    /// Where the SKU keeps it (`u32::MAX`: unknown).
    pub(crate) const fn slot(&self) -> u32 {
        self.slot
    }
}

impl PartialEq for ReservationId {
    fn eq(&self, other: &ReservationId) -> bool {
        (self.sku, self.seq) == (other.sku, other.seq)
    }
}

impl Eq for ReservationId {}

impl core::hash::Hash for ReservationId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (self.sku, self.seq).hash(state);
    }
}

impl PartialOrd for ReservationId {
    fn partial_cmp(&self, other: &ReservationId) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReservationId {
    fn cmp(&self, other: &ReservationId) -> core::cmp::Ordering {
        (self.sku, self.seq).cmp(&(other.sku, other.seq))
    }
}

impl fmt::Display for SkuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sku:{}", self.0)
    }
}

impl fmt::Display for LotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lot:{}", self.0)
    }
}

impl fmt::Display for LocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loc:{}", self.0)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order:{}", self.0)
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "res:{}/{}", self.sku.0, self.seq)
    }
}
