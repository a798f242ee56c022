//! A SKU's lot catalog: the fixed facts of every lot it ever received, and
//! the order its policy draws them in.
//!
//! Owns: lot facts in arrival order (a lot's arrival index never changes,
//! so reservations name lots by it), the policy order, its inverse, the
//! id index and the sparse attribute table.
//!
//! Must never: hold counters. A catalog changes only when a lot is
//! received, and is shared by `Arc` between every snapshot version in
//! between.

use crate::clock::Timestamp;
use crate::ids::LotId;
use crate::lot::LotAttributes;
use crate::policy::{AllocationPolicy, LotFacts};
use std::sync::Arc;

/// The fixed facts of one lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LotMeta {
    pub(crate) id: LotId,
    pub(crate) received_at: Timestamp,
    pub(crate) expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    /// Arrival order: index `i` is the `i`-th lot received.
    metas: Vec<LotMeta>,
    /// Policy order: arrival indices, first drawn first.
    order: Vec<u32>,
    /// Inverse of `order`: `position[arrival]` is its place in `order`.
    position: Vec<u32>,
    /// `(id, arrival)`, sorted by id.
    by_id: Vec<(LotId, u32)>,
    /// `(arrival, attributes)`, sorted by arrival; only lots that have any.
    attributes: Vec<(u32, Arc<LotAttributes>)>,
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

    pub(crate) fn position(&self, arrival: u32) -> u32 {
        self.position[arrival as usize]
    }

    pub(crate) fn find(&self, id: LotId) -> Option<u32> {
        let at = self.by_id.binary_search_by_key(&id, |entry| entry.0).ok()?;
        Some(self.by_id[at].1)
    }

    pub(crate) fn attributes(&self, arrival: u32) -> Option<&Arc<LotAttributes>> {
        let at = self.attributes.binary_search_by_key(&arrival, |entry| entry.0).ok()?;
        Some(&self.attributes[at].1)
    }

    pub(crate) fn facts(&self, arrival: u32) -> LotFacts {
        let meta = self.meta(arrival);
        LotFacts { received_at: meta.received_at, expires_at: meta.expires_at, arrival }
    }

    /// Arrival indices in the order `policy` draws them, for a request that
    /// overrides the SKU's own policy (O(n log n): the slow path).
    pub(crate) fn order_for(&self, policy: AllocationPolicy) -> Vec<u32> {
        let mut order: Vec<u32> = self.order.clone();
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
        let mut next = Catalog {
            metas: with_room(&self.metas),
            order: with_room(&self.order),
            position: with_room(&self.position),
            by_id: with_room(&self.by_id),
            attributes: if attributes.is_some() { with_room(&self.attributes) } else { self.attributes.clone() },
        };
        next.metas.push(meta);
        let key = policy.sort_key(&next.facts(arrival));
        let place = next.order.partition_point(|&other| policy.sort_key(&next.facts(other)) < key);
        next.order.insert(place, arrival);
        next.position.push(0);
        for (pos, &lot) in next.order.iter().enumerate().skip(place) {
            next.position[lot as usize] = pos as u32;
        }
        let at = next.by_id.partition_point(|entry| entry.0 < meta.id);
        next.by_id.insert(at, (meta.id, arrival));
        if let Some(attributes) = attributes {
            next.attributes.push((arrival, Arc::new(attributes)));
        }
        (next, place as u32)
    }
}

/// A copy of `values` with room for exactly one more: catalogs live as
/// long as their SKU, so they carry no growth slack.
fn with_room<T: Clone>(values: &[T]) -> Vec<T> {
    let mut copy = Vec::with_capacity(values.len() + 1);
    copy.extend_from_slice(values);
    copy
}
