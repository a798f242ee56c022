//! A SKU's lot catalog: the fixed facts of every lot it ever received, and
//! the order its policy draws them in.
//!
//! Owns: lot facts in arrival order (a lot's arrival index never changes,
//! so reservations name lots by it), the policy order, the id index and
//! the sparse attribute table.
//!
//! Must never: hold counters. A catalog changes only when a lot is
//! received, and is shared by `Arc` between every snapshot version in
//! between.

use crate::clock::Timestamp;
use crate::ids::LotId;
use crate::lot::LotAttributes;
use crate::policy::{AllocationPolicy, LotFacts};
use crate::quantity::{PackedQuantity, Quantity};
use std::sync::Arc;

/// The fixed facts of one lot: 32 bytes (the expiry's presence rides in a
/// flag beside the six-byte receipt instead of an `Option`'s eight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LotMeta {
    pub(crate) id: LotId,
    pub(crate) received_at: Timestamp,
    expiry: Timestamp,
    received: PackedQuantity,
    expires: bool,
}

const _: () = assert!(std::mem::size_of::<LotMeta>() == 32);

impl LotMeta {
    pub(crate) fn new(id: LotId, received_at: Timestamp, expires_at: Option<Timestamp>, received: Quantity) -> LotMeta {
        LotMeta {
            id,
            received_at,
            expiry: expires_at.unwrap_or_default(),
            received: PackedQuantity::new(received),
            expires: expires_at.is_some(),
        }
    }

    pub(crate) fn expires_at(&self) -> Option<Timestamp> {
        self.expires.then_some(self.expiry)
    }

    /// Units the lot was received with.
    pub(crate) fn received(&self) -> Quantity {
        self.received.get()
    }
}

/// Every per-lot table is exactly sized (catalogs live as long as their
/// SKU, so growth slack would be kept forever): per lot, 32 bytes of facts
/// and 4 + 4 of order and index.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    /// Arrival order: index `i` is the `i`-th lot received.
    metas: Box<[LotMeta]>,
    /// Policy order: arrival indices, first drawn first. Sorted by the
    /// SKU policy's `sort_key`, which is unique per lot (it ends with the
    /// arrival index), so a lot's place is found by binary search.
    order: Box<[u32]>,
    /// Arrival indices sorted by lot id.
    by_id: Box<[u32]>,
    /// `(arrival, attributes)`, sorted by arrival; only lots that have any.
    attributes: Box<[(u32, Arc<LotAttributes>)]>,
}

impl Catalog {
    pub(crate) fn len(&self) -> usize {
        self.metas.len()
    }

    pub(crate) fn meta(&self, arrival: u32) -> &LotMeta {
        &self.metas[arrival as usize]
    }

    /// Arrival indices in policy order.
    pub(crate) fn order(&self) -> &[u32] {
        &self.order
    }

    /// The place of lot `arrival` in the order of `policy`, the SKU's own
    /// (O(log n): the order is sorted by the policy's unique key).
    pub(crate) fn position(&self, policy: AllocationPolicy, arrival: u32) -> u32 {
        let key = policy.sort_key(&self.facts(arrival));
        let place = self.order.partition_point(|&other| policy.sort_key(&self.facts(other)) < key);
        debug_assert_eq!(self.order.get(place), Some(&arrival), "the order is sorted by this policy");
        place as u32
    }

    pub(crate) fn find(&self, id: LotId) -> Option<u32> {
        let at = self.by_id.binary_search_by_key(&id, |&arrival| self.meta(arrival).id).ok()?;
        Some(self.by_id[at])
    }

    pub(crate) fn attributes(&self, arrival: u32) -> Option<&Arc<LotAttributes>> {
        let at = self.attributes.binary_search_by_key(&arrival, |entry| entry.0).ok()?;
        Some(&self.attributes[at].1)
    }

    pub(crate) fn facts(&self, arrival: u32) -> LotFacts {
        facts(&self.metas, arrival)
    }

    /// Arrival indices in the order `policy` draws them, for a request that
    /// overrides the SKU's own policy (O(n log n): the slow path).
    pub(crate) fn order_for(&self, policy: AllocationPolicy) -> Vec<u32> {
        let mut order = self.order.to_vec();
        order.sort_by_key(|&arrival| policy.sort_key(&self.facts(arrival)));
        order
    }

    /// A copy with one more lot, placed by `policy`; returns the copy and
    /// the new lot's place in the policy order. The caller has checked the
    /// id is new.
    pub(crate) fn with_lot(
        &self,
        policy: AllocationPolicy,
        meta: LotMeta,
        attributes: Option<LotAttributes>,
    ) -> (Catalog, u32) {
        debug_assert!(self.find(meta.id).is_none());
        let arrival = u32::try_from(self.metas.len()).expect("lot count fits u32");
        let mut metas = with_room(&self.metas);
        metas.push(meta);
        let metas = metas.into_boxed_slice();
        let key = |other: u32| policy.sort_key(&facts(&metas, other));
        let place = self.order.partition_point(|&other| key(other) < key(arrival));
        let mut order = with_room(&self.order);
        order.insert(place, arrival);
        let mut by_id = with_room(&self.by_id);
        by_id.insert(self.by_id.partition_point(|&other| metas[other as usize].id < meta.id), arrival);
        let attributes = match attributes {
            Some(attributes) => {
                let mut all = with_room(&self.attributes);
                all.push((arrival, Arc::new(attributes)));
                all.into_boxed_slice()
            }
            None => self.attributes.clone(),
        };
        let next = Catalog { metas, order: order.into_boxed_slice(), by_id: by_id.into_boxed_slice(), attributes };
        (next, place as u32)
    }
}

fn facts(metas: &[LotMeta], arrival: u32) -> LotFacts {
    let meta = &metas[arrival as usize];
    LotFacts { received_at: meta.received_at, expires_at: meta.expires_at(), arrival }
}

/// A copy of `values` with room for exactly one more: catalogs live as
/// long as their SKU, so they carry no growth slack.
fn with_room<T: Clone>(values: &[T]) -> Vec<T> {
    let mut copy = Vec::with_capacity(values.len() + 1);
    copy.extend_from_slice(values);
    copy
}
