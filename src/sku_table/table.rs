//! [`SkuTable`]: the generic table, its lookups, its one write path and
//! its rebuilds (see the parent module for the design and its orderings).
//!
//! Owns: the generations (each an index and its handles to the arena's
//! chunks; which one readers use, and every one built so far), the
//! published length, the writer lock.
//!
//! Must never: write shared memory on a lookup, wait on a lookup, or free
//! anything a lookup may be reading before the table itself is dropped.

use super::arena::{Chunks, Entry};
use super::hash::Seeds;
#[cfg(all(test, not(stockroom_shuttle)))]
use super::index::Spot;
use super::index::{Index, SLOT_BITS_MAX, SLOT_BITS_MIN};
use crate::ids::SkuId;
use crate::sync::{AtomicUsize, Mutex, OnceLock, Ordering};
use core::fmt;

/// The most SKUs one table holds: 2^28 (268,435,456), about 8 GiB of table
/// alone, a thousand times the largest catalogs the design brief names.
/// Under a checker 2^10.
pub const LEN_MAX: usize = if cfg!(any(stockroom_loom, stockroom_shuttle)) { 1 << 10 } else { 1 << 28 };

/// Rebuilds at the same size under a fresh seed, over the table's life.
/// An insertion that finds no room while the table is at most half full
/// means colliding ids (chance or chosen ones), and a fresh seed scatters
/// them; after this many, a table that keeps failing grows instead.
const RESEEDS_MAX: usize = 8;

/// Every generation a table can build: the first, one per doubling up to
/// the largest size, and the reseeds.
const GENERATIONS_MAX: usize = 1 + (SLOT_BITS_MAX - SLOT_BITS_MIN) as usize + RESEEDS_MAX;

// The largest generation takes LEN_MAX entries at 31/32 full, with a word
// to spare; positions fit a u32.
const _: () = assert!(LEN_MAX <= (1 << SLOT_BITS_MAX) - (1 << SLOT_BITS_MAX) / 32);
const _: () = assert!(LEN_MAX < u32::MAX as usize);

/// One generation: an index, and handles to the arena chunks of every
/// position it can hold.
struct Generation<V> {
    index: Index,
    chunks: Chunks<V>,
}

impl<V> Generation<V> {
    /// A generation around `index`, reaching every chunk `earlier` does.
    fn new(index: Index, earlier: Option<&Generation<V>>) -> Generation<V> {
        let chunks = Chunks::new(index.holds_max(), earlier.map(|earlier| &earlier.chunks));
        Generation { index, chunks }
    }

    /// The entry at a position a word of this generation (or the length,
    /// read before this generation was loaded) led to.
    #[inline]
    fn entry(&self, position: u32) -> &Entry<V> {
        self.chunks.get(position).expect("an entry is published before any word or length names it")
    }
}

/// An insertion the table refused; hands the value back. Variants in
/// precedence order: a SKU already in a full table is `AlreadyDefined`.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError<V> {
    /// The SKU is already in the table; its value there is untouched.
    AlreadyDefined(V),
    /// The table holds [`LEN_MAX`] SKUs (or, a case no test has reached,
    /// its index found no room within its bounded rebuilds).
    Full(V),
}

impl<V> InsertError<V> {
    /// The value that was not inserted.
    pub fn into_value(self) -> V {
        match self {
            InsertError::AlreadyDefined(value) | InsertError::Full(value) => value,
        }
    }

    /// True for [`InsertError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, InsertError::Full(_))
    }
}

/// How lookups fare in the current generation: what the hash does with the
/// ids the table was given. Taken at a quiescent point (it reads every
/// entry).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeStats {
    /// SKUs in the table.
    pub len: usize,
    /// Slots in the current generation.
    pub capacity: usize,
    /// Generations built so far (doublings and reseeds, plus the first).
    pub generations: usize,
    /// Of those, rebuilds at the same size under a fresh seed.
    pub reseeds: usize,
    /// SKUs in their alternate bucket: a lookup of one reads two buckets
    /// (every other lookup of a present SKU reads one).
    pub in_alternate: usize,
    /// SKUs in their home pair of slots in their primary bucket: a lookup
    /// of one loads 8 bytes of index before it reads the arena.
    pub at_home: usize,
    /// Buckets a lookup of a present SKU reads, on average (1 to 2).
    pub buckets_mean: f64,
    /// Words of another SKU whose tag matched, per lookup of a present
    /// SKU, on average: each costs one arena read.
    pub false_matches_mean: f64,
    /// Buckets a lookup of an absent SKU reads, on average: one, plus the
    /// alternate when the primary is full.
    pub miss_buckets_mean: f64,
}

/// The writer's state, under the writer lock. The writer keeps its own
/// copy of the current generation and the length, and only ever stores
/// the shared ones: it has no reason to load what it alone writes (and a
/// load of its own between a reader's load and its store would hide that
/// race from loom, which tracks one last access per atomic).
struct Writer {
    seeds: Seeds,
    reseeds: usize,
    /// The current generation (what `current` holds).
    generation: usize,
    /// The length (what `len` holds).
    len: usize,
}

/// A concurrent, insert-only map from [`SkuId`] to `V`: lookups are
/// lock-free, write nothing shared and read at most two buckets; values
/// never move, so a `&V` lives as long as the borrow of the table.
pub struct SkuTable<V> {
    /// The generation readers use: an index into `generations`.
    current: AtomicUsize,
    /// Every generation built so far; each stays valid until the table is
    /// dropped, because a reader may still be in it.
    generations: [OnceLock<Generation<V>>; GENERATIONS_MAX],
    /// Entries readers can count on: positions `0..len` are published.
    len: AtomicUsize,
    /// [`LEN_MAX`], or less for tests of a full table.
    len_max: usize,
    writer: Mutex<Writer>,
}

impl<V> SkuTable<V> {
    /// An empty table with a random seed (a fixed one under a checker).
    pub fn new() -> SkuTable<V> {
        SkuTable::with_seeds(Seeds::for_new_table(), LEN_MAX)
    }

    /// An empty table whose seeds are the fixed sequence from `start`, and
    /// which holds at most `len_max` SKUs. For tests that build collisions
    /// or fill a table.
    #[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
    pub(crate) fn with_seed_sequence(start: u64, len_max: usize) -> SkuTable<V> {
        SkuTable::with_seeds(Seeds::Sequence(start), len_max)
    }

    fn with_seeds(mut seeds: Seeds, len_max: usize) -> SkuTable<V> {
        assert!(len_max <= LEN_MAX, "len_max {len_max} above LEN_MAX");
        let first = Generation::new(Index::new(seeds.next_seed(), SLOT_BITS_MIN), None);
        let generations: [OnceLock<Generation<V>>; GENERATIONS_MAX] = std::array::from_fn(|_| OnceLock::new());
        assert!(generations[0].set(first).is_ok(), "a fresh cell");
        SkuTable {
            current: AtomicUsize::new(0),
            generations,
            len: AtomicUsize::new(0),
            len_max,
            writer: Mutex::new(Writer { seeds, reseeds: 0, generation: 0, len: 0 }),
        }
    }

    /// The generation readers use now.
    #[inline]
    fn generation(&self) -> &Generation<V> {
        // Acquire: pairs with the release store in `insert` that made this
        // generation current, after setting it.
        let generation = self.current.load(Ordering::Acquire);
        self.generations[generation].get().expect("a generation is set before it becomes current")
    }

    /// The SKU's value, or `None` if it is not defined. Lock-free and
    /// write-free: one 8-byte index load for most SKUs, at most two
    /// buckets of the index, then the entry.
    #[inline]
    pub fn get(&self, sku: SkuId) -> Option<&V> {
        let generation = self.generation();
        let index = &generation.index;
        index.find(index.hash(sku.0), |position| {
            let entry = generation.entry(position);
            (entry.sku == sku).then_some(&entry.value)
        })
    }

    /// Runs `f` on the SKU's value, or returns `None` if it is not defined.
    #[inline]
    pub fn with<R>(&self, sku: SkuId, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.get(sku).map(f)
    }

    /// Defines `sku` with `value`. Takes the writer lock (the rare admin
    /// path; lookups never wait for it). O(1) amortized: a bounded cuckoo
    /// search (at most 584 entries looked at), plus, when the generation is
    /// 31/32 full, a rebuild of every entry into one twice the size.
    pub fn insert(&self, sku: SkuId, value: V) -> Result<(), InsertError<V>> {
        let mut writer = self.writer.lock();
        let (generation, length) = (writer.generation, writer.len);
        let current = self.generations[generation].get().expect("the current generation is set");
        let index = &current.index;
        let hash = index.hash(sku.0);
        if index.find(hash, |position| (current.entry(position).sku == sku).then_some(())).is_some() {
            return Err(InsertError::AlreadyDefined(value));
        }
        if length >= self.len_max {
            return Err(InsertError::Full(value));
        }
        let position = u32::try_from(length).expect("LEN_MAX < u32::MAX");
        let hash_at = |at: u32| index.hash(current.entry(at).sku.0);
        let placement = if length < index.holds_max() { index.plan(hash, &hash_at) } else { None };
        if let Some(placement) = placement {
            current.chunks.push(position, Entry { sku, value });
            index.apply(&placement, index.word(hash, position));
        } else {
            let Some(next) = self.rebuild(&mut writer, current, position, sku) else {
                return Err(InsertError::Full(value));
            };
            let next = Generation::new(next, Some(current));
            next.chunks.push(position, Entry { sku, value });
            writer.generation = generation + 1;
            assert!(self.generations[writer.generation].set(next).is_ok(), "generations are set once, in order");
            // Release: pairs with the acquire in `generation`: a reader
            // that loads the new number finds the generation set, and
            // through it the arena entry pushed above.
            self.current.store(writer.generation, Ordering::Release);
        }
        writer.len = length + 1;
        // Release: pairs with the acquire in `len` and `iter`: every
        // position below the new length is published.
        self.len.store(writer.len, Ordering::Release);
        Ok(())
    }

    /// The next generation, holding positions `0..position` and `sku` at
    /// `position`: twice the size if the current one is too full (or has
    /// reseeded `RESEEDS_MAX` times), else the same size under a fresh
    /// seed. `None` if no bounded attempt finds room for every entry, or
    /// the generations are used up (neither is reachable below `LEN_MAX`
    /// short of a broken hash).
    fn rebuild(&self, writer: &mut Writer, current: &Generation<V>, position: u32, sku: SkuId) -> Option<Index> {
        let entries = position + 1;
        let key_at = |at: u32| if at == position { sku.0 } else { current.entry(at).sku.0 };
        let mut slot_bits = current.index.slot_bits();
        // Each failed attempt spends a reseed or a doubling, both bounded.
        for _ in 0..=RESEEDS_MAX + (SLOT_BITS_MAX - SLOT_BITS_MIN) as usize {
            let capacity = 1_usize << slot_bits;
            let too_full = entries as usize > capacity - (capacity / 32).max(1) || entries as usize * 2 > capacity;
            if too_full || writer.reseeds == RESEEDS_MAX {
                slot_bits += 1;
                if slot_bits > SLOT_BITS_MAX {
                    return None;
                }
            } else {
                writer.reseeds += 1;
            }
            if let Some(next) = Index::build(writer.seeds.next_seed(), slot_bits, entries, key_at) {
                return Some(next);
            }
        }
        None
    }

    /// SKUs in the table: every insertion that returned before this call.
    pub fn len(&self) -> usize {
        // Acquire: pairs with the release store in `insert`.
        self.len.load(Ordering::Acquire)
    }

    /// True if no SKU is defined.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every SKU and its value, in definition order: each SKU defined
    /// before this call exactly once (later ones are not visited).
    pub fn iter(&self) -> Iter<'_, V> {
        // The length first: a generation loaded after it reaches every
        // position it counts (see `Generation::entry`).
        let end = self.len();
        Iter { generation: self.generation(), next: 0, end }
    }

    /// Runs `f` on every SKU and value, as [`SkuTable::iter`] visits them.
    pub fn for_each(&self, mut f: impl FnMut(SkuId, &V)) {
        for (sku, value) in self.iter() {
            f(sku, value);
        }
    }

    /// Probe statistics of the current generation (see [`ProbeStats`]).
    pub fn probe_stats(&self) -> ProbeStats {
        let writer = self.writer.lock();
        let index = &self.generation().index;
        let (mut in_alternate, mut at_home, mut false_matches) = (0, 0, 0);
        for (position, (sku, _)) in (0_u32..).zip(self.iter()) {
            let spot = index.spot(index.hash(sku.0), position).expect("every entry is in the current generation");
            in_alternate += usize::from(spot.alternate);
            at_home += usize::from(spot.at_home);
            false_matches += spot.false_matches;
        }
        let len = self.len();
        let per_lookup = |count: usize| count as f64 / len.max(1) as f64;
        ProbeStats {
            len,
            capacity: index.capacity(),
            generations: writer.generation + 1,
            reseeds: writer.reseeds,
            in_alternate,
            at_home,
            buckets_mean: 1.0 + per_lookup(in_alternate),
            false_matches_mean: per_lookup(false_matches),
            miss_buckets_mean: 1.0 + index.full_buckets() as f64 / index.buckets() as f64,
        }
    }
}

#[cfg(all(test, not(stockroom_shuttle)))]
impl<V> SkuTable<V> {
    /// Where `sku` sits in the current generation.
    pub(crate) fn spot(&self, sku: SkuId) -> Option<Spot> {
        let index = &self.generation().index;
        let position = self.iter().position(|(at, _)| at == sku)?;
        index.spot(index.hash(sku.0), u32::try_from(position).expect("positions fit a u32"))
    }

    /// Slots in the current generation.
    pub(crate) fn capacity(&self) -> usize {
        self.generation().index.capacity()
    }
}

impl<V> Default for SkuTable<V> {
    fn default() -> Self {
        SkuTable::new()
    }
}

impl<V> fmt::Debug for SkuTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkuTable").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// The SKUs and values of a table in definition order (see
/// [`SkuTable::iter`]).
pub struct Iter<'a, V> {
    generation: &'a Generation<V>,
    next: u32,
    end: usize,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (SkuId, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next as usize == self.end {
            return None;
        }
        let entry = self.generation.entry(self.next);
        self.next += 1;
        Some((entry.sku, &entry.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next as usize;
        (left, Some(left))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<V> fmt::Debug for Iter<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("next", &self.next).field("end", &self.end).finish()
    }
}
