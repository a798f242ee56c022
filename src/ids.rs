//! Identifiers: SKUs, lots and reservations.
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

/// A reservation, assigned by the engine: the SKU it holds stock of and a
/// sequence number that SKU issued (1, 2, 3, … in allocation order).
///
/// Because the SKU is part of the id, releasing or committing needs no
/// reservation table: the SKU's snapshot holds its reservations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReservationId {
    /// The SKU whose stock is held.
    pub sku: SkuId,
    /// The SKU-local sequence number, starting at 1.
    pub seq: u64,
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

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "res:{}/{}", self.sku.0, self.seq)
    }
}
