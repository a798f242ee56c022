//! Persistent overlays: an immutable shared base plus a small sorted patch,
//! so that a new snapshot version costs O(√n), not O(n).
//!
//! Owns: [`PatchVec`] (positional, for lot counters) and [`PatchMap`]
//! (keyed, for reservations), and the compaction rule they share.
//!
//! Must never: share mutable state. Cloning an overlay clones one `Arc`
//! (the base) and the patch; the base is never written after it is built.
//! Only one reference count is touched per clone, so threads deriving new
//! versions of one SKU contend on one cache line, not on one per chunk.
//!
//! # Cost
//!
//! With `n` entries in the base, the patch is folded into a new base once
//! it holds more than `max(8, √n)` entries. A clone copies at most that
//! many patch entries; a fold copies `n`, once per `√n` changes at most.
//! Either way, O(√n) entries per change, amortized.

use std::sync::Arc;

const PATCH_MIN: usize = 8;

/// Whether a patch of `patch_len` entries over a base of `base_len` has
/// outgrown `max(PATCH_MIN, √base_len)` (squared: no square root on every
/// change).
fn outgrown(patch_len: usize, base_len: usize) -> bool {
    patch_len > PATCH_MIN && patch_len.saturating_mul(patch_len) > base_len
}

/// A vector of `Copy` values with cheap versioned updates.
#[derive(Clone, Debug)]
pub(crate) struct PatchVec<T> {
    base: Arc<[T]>,
    /// Overridden positions, sorted by position, each at most once.
    patch: Vec<(u32, T)>,
}

impl<T: Copy> PatchVec<T> {
    pub(crate) fn from_vec(values: Vec<T>) -> PatchVec<T> {
        assert!(u32::try_from(values.len()).is_ok(), "positions are u32");
        PatchVec { base: values.into(), patch: Vec::new() }
    }

    /// The value at `index`. Panics past the end: callers index only
    /// positions they got from the same SKU's catalog.
    pub(crate) fn get(&self, index: u32) -> T {
        match self.patch.binary_search_by_key(&index, |entry| entry.0) {
            Ok(at) => self.patch[at].1,
            Err(_) => self.base[index as usize],
        }
    }

    pub(crate) fn set(&mut self, index: u32, value: T) {
        assert!((index as usize) < self.base.len(), "set past the end");
        match self.patch.binary_search_by_key(&index, |entry| entry.0) {
            Ok(at) => self.patch[at].1 = value,
            Err(at) => self.patch.insert(at, (index, value)),
        }
    }

    /// Appends a value (a rare operation: it folds the patch).
    pub(crate) fn push(&mut self, value: T) {
        let mut values = self.to_vec();
        values.push(value);
        *self = PatchVec::from_vec(values);
    }

    pub(crate) fn to_vec(&self) -> Vec<T> {
        let mut values = self.base.to_vec();
        for &(index, value) in &self.patch {
            values[index as usize] = value;
        }
        values
    }

    /// Folds the patch into a new base when it has grown past its limit.
    pub(crate) fn compact_if_large(&mut self) {
        if outgrown(self.patch.len(), self.base.len()) {
            *self = PatchVec::from_vec(self.to_vec());
        }
    }
}

/// An ordered map with cheap versioned updates.
#[derive(Clone, Debug)]
pub(crate) struct PatchMap<K, V> {
    /// Sorted by key, keys unique; `None` while empty, so that cloning a
    /// map that never grew a base (most SKUs' holds) touches no shared
    /// reference count.
    base: Option<Arc<[(K, V)]>>,
    /// Sorted by key, keys unique; `None` removes the base entry.
    patch: Vec<(K, Option<V>)>,
    len: usize,
}

impl<K: Ord + Copy, V: Clone> Default for PatchMap<K, V> {
    fn default() -> Self {
        PatchMap { base: None, patch: Vec::new(), len: 0 }
    }
}

impl<K: Ord + Copy, V: Clone> PatchMap<K, V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        match self.patch.binary_search_by(|entry| entry.0.cmp(key)) {
            Ok(at) => self.patch[at].1.as_ref(),
            Err(_) => self.base_get(key),
        }
    }

    fn base(&self) -> &[(K, V)] {
        self.base.as_deref().unwrap_or(&[])
    }

    fn base_get(&self, key: &K) -> Option<&V> {
        let base = self.base();
        let at = base.binary_search_by(|entry| entry.0.cmp(key)).ok()?;
        Some(&base[at].1)
    }

    /// Inserts or replaces; returns the previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let previous = self.upsert(key, Some(value));
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let previous = self.get(key)?.clone();
        self.upsert(*key, None);
        self.len -= 1;
        Some(previous)
    }

    fn upsert(&mut self, key: K, value: Option<V>) -> Option<V> {
        match self.patch.binary_search_by(|entry| entry.0.cmp(&key)) {
            Ok(at) => std::mem::replace(&mut self.patch[at].1, value),
            Err(at) => {
                let previous = self.base_get(&key).cloned();
                self.patch.insert(at, (key, value));
                previous
            }
        }
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let mut base = self.base().iter().peekable();
        let mut patch = self.patch.iter().peekable();
        core::iter::from_fn(move || {
            loop {
                let order = match (base.peek(), patch.peek()) {
                    (None, None) => return None,
                    (Some(_), None) => core::cmp::Ordering::Less,
                    (None, Some(_)) => core::cmp::Ordering::Greater,
                    (Some(b), Some(p)) => b.0.cmp(&p.0),
                };
                match order {
                    core::cmp::Ordering::Less => return base.next().map(|(key, value)| (key, value)),
                    // The patch entry shadows the base entry with the same key.
                    core::cmp::Ordering::Equal => drop(base.next()),
                    core::cmp::Ordering::Greater => {}
                }
                let (key, value) = patch.next()?;
                if let Some(value) = value {
                    return Some((key, value));
                }
            }
        })
    }

    /// Folds the patch into a new base when it has grown past its limit.
    pub(crate) fn compact_if_large(&mut self) {
        if outgrown(self.patch.len(), self.base().len()) {
            let entries: Vec<(K, V)> = self.iter().map(|(k, v)| (*k, v.clone())).collect();
            debug_assert_eq!(entries.len(), self.len);
            self.base = (!entries.is_empty()).then(|| entries.into());
            self.patch.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        Compact,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
            Just(Op::Compact),
        ]
    }

    proptest! {
        #[test]
        fn patch_map_matches_btree_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut map = PatchMap::default();
            let mut model = BTreeMap::new();
            let mut versions = Vec::new();
            for op in ops {
                versions.push((map.clone(), model.clone()));
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                    Op::Compact => map.compact_if_large(),
                }
                prop_assert_eq!(map.len(), model.len());
                let entries: Vec<(u8, u32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
                let expected: Vec<(u8, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(entries, expected);
            }
            // Older versions are untouched by later changes.
            for (old, old_model) in versions {
                let entries: Vec<(u8, u32)> = old.iter().map(|(k, v)| (*k, *v)).collect();
                let expected: Vec<(u8, u32)> = old_model.iter().map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(entries, expected);
            }
        }

        #[test]
        fn patch_vec_matches_vec(len in 1usize..300, sets in proptest::collection::vec((any::<u16>(), any::<u32>()), 0..400)) {
            let mut vec = PatchVec::from_vec(vec![0u32; len]);
            let mut model = vec![0u32; len];
            for (i, value) in sets {
                let i = usize::from(i) % len;
                vec.set(i as u32, value);
                model[i] = value;
                vec.compact_if_large();
                prop_assert!(!outgrown(vec.patch.len(), len));
            }
            prop_assert_eq!(vec.to_vec(), model.clone());
            for (i, value) in model.iter().enumerate() {
                prop_assert_eq!(vec.get(i as u32), *value);
            }
        }
    }
}
