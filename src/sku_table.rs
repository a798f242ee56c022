//! The SKU table: SKU id to SKU cell, read without locks.
//!
//! Owns: [`SkuTable`], a fixed set of shards, each an immutable hash map
//! replaced whole by compare-and-swap when a SKU is defined.
//!
//! Must never: be written on the hot path. Lookups load a shard (no
//! reference count touched, no lock) and borrow the cell for the length of
//! one command; only `define` copies a shard, and a shard holds about
//! 1/64 of the SKUs. A definition racing another in the same shard retries.
//!
//! Why not `DashMap`: its shards are reader-writer locks, so every lookup
//! of one hot SKU writes the same lock word from every thread. Here a
//! lookup writes nothing shared.

use crate::cell::SkuCell;
use crate::ids::SkuId;
use crate::sync::{Arc, Backoff, SnapshotCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[cfg(all(test, stockroom_loom))]
mod loom;

const SHARDS: usize = 64;
const _: () = assert!(SHARDS.is_power_of_two());

/// SKU ids are host-chosen integers, often dense: one multiply spreads
/// them (Fibonacci hashing).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Shard = HashMap<SkuId, Arc<SkuCell>, BuildHasherDefault<IdHasher>>;

pub(crate) struct SkuTable {
    shards: Box<[SnapshotCell<Shard>]>,
}

impl SkuTable {
    pub(crate) fn new() -> SkuTable {
        SkuTable { shards: (0..SHARDS).map(|_| SnapshotCell::new(Arc::new(Shard::default()))).collect() }
    }

    fn shard(&self, sku: SkuId) -> &SnapshotCell<Shard> {
        let spread = sku.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(spread >> (64 - SHARDS.trailing_zeros())) as usize]
    }

    /// Runs `f` on the SKU's cell, or returns `None` if it is not defined.
    pub(crate) fn with<R>(&self, sku: SkuId, f: impl FnOnce(&SkuCell) -> R) -> Option<R> {
        let shard = self.shard(sku).load();
        shard.get(&sku).map(|cell| f(cell))
    }

    /// Adds a SKU; `false` if it was already there.
    pub(crate) fn insert(&self, sku: SkuId, cell: SkuCell) -> bool {
        let cell = Arc::new(cell);
        let shard = self.shard(sku);
        let backoff = Backoff::new();
        loop {
            let current = shard.load_full();
            if current.contains_key(&sku) {
                return false;
            }
            let mut next = Shard::clone(&current);
            next.insert(sku, Arc::clone(&cell));
            if shard.compare_and_swap(&current, Arc::new(next)).is_ok() {
                return true;
            }
            backoff.snooze();
        }
    }

    /// Every SKU's cell, in no particular order.
    pub(crate) fn cells(&self) -> Vec<Arc<SkuCell>> {
        self.shards.iter().flat_map(|shard| shard.load_full().values().cloned().collect::<Vec<_>>()).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.load().len()).sum()
    }
}
