//! The SKU table's arena: every entry (SKU id and value) in definition
//! order, each at a position it keeps for the life of the table.
//!
//! Owns: [`Entry`], the chunks entries live in (`CHUNK` write-once cells
//! each, allocated when their first position is written), and [`Chunks`]:
//! one generation's map from a position to its chunk. Position `p` is
//! cell `p % CHUNK` of chunk `p / CHUNK`. Every generation of the index
//! carries its own `Chunks`, sized for the positions it can hold, so a
//! lookup goes from a word to its entry in two steps (chunk, cell) with
//! nothing to compute but a shift and a mask. A chunk is shared, by
//! `Arc`, between the generation current when it was allocated and every
//! later one (the writer copies the handles when it builds a generation;
//! readers never touch the counts).
//!
//! Must never: move, replace or drop an entry while the table lives (a
//! reader may hold a reference to any entry for as long as it holds the
//! table), or be written by two threads at once (every `push` happens
//! under the table's writer lock, at the next position in order).
//!
//! Every cell is a write-once [`OnceLock`]: set once by the writer, then
//! read with one acquire load. A reader reaches a position only through
//! an index word of some generation, or the published length and then the
//! current generation; both are stored (release) after the entry and its
//! chunk are set in that generation, so `get` finds them; `None` there
//! would be a bug. A generation older than a chunk never needs it: no word
//! of that generation names a position in it.

use crate::ids::SkuId;
use crate::sync::{Arc, OnceLock};

/// Positions per chunk (a power of two). Small enough that the one partly
/// filled chunk wastes little (256 cells of a 16-byte value: 8 KiB),
/// large enough that a generation's handles are a small fraction of its
/// index. Under a checker 2, so that a few insertions cross chunks.
pub(crate) const CHUNK: usize = if cfg!(any(stockroom_loom, stockroom_shuttle)) { 2 } else { 256 };
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();

const _: () = assert!(CHUNK.is_power_of_two());

/// One defined SKU: its id and its value.
#[derive(Debug)]
pub(crate) struct Entry<V> {
    /// The SKU.
    pub(crate) sku: SkuId,
    /// What the table holds for it.
    pub(crate) value: V,
}

type Chunk<V> = Arc<[OnceLock<Entry<V>>; CHUNK]>;

/// One generation's handles to the chunks of positions `0..positions`.
pub(crate) struct Chunks<V> {
    handles: Box<[OnceLock<Chunk<V>>]>,
}

impl<V> Chunks<V> {
    /// Handles for positions `0..positions`, holding every chunk `earlier`
    /// holds (the generation this one replaces), so that what was defined
    /// before is reachable from here.
    pub(crate) fn new(positions: usize, earlier: Option<&Chunks<V>>) -> Chunks<V> {
        let handles: Box<[OnceLock<Chunk<V>>]> = (0..positions.div_ceil(CHUNK)).map(|_| OnceLock::new()).collect();
        for (handle, chunk) in handles.iter().zip(earlier.map_or(&[][..], |earlier| &earlier.handles[..])) {
            if let Some(chunk) = chunk.get() {
                assert!(handle.set(Arc::clone(chunk)).is_ok(), "a fresh handle");
            }
        }
        Chunks { handles }
    }

    /// The entry at `position`, if it has been published to this
    /// generation.
    #[inline]
    pub(crate) fn get(&self, position: u32) -> Option<&Entry<V>> {
        let position = position as usize;
        self.handles.get(position >> CHUNK_BITS)?.get()?[position & (CHUNK - 1)].get()
    }

    /// Writes the entry at `position`, which must be the next one
    /// (positions are pushed in order, under the table's writer lock), and
    /// allocates the chunk the position opens.
    ///
    /// Panics if `position` is past this generation's positions or already
    /// written: the table checks both first, so either would be a bug in
    /// the table.
    pub(crate) fn push(&self, position: u32, entry: Entry<V>) {
        let position = position as usize;
        let handle = &self.handles[position >> CHUNK_BITS];
        if handle.get().is_none() {
            let chunk: Chunk<V> = Arc::new(std::array::from_fn(|_| OnceLock::new()));
            assert!(handle.set(chunk).is_ok(), "one writer: the handle was empty");
        }
        let cell = &handle.get().expect("set just above, by this thread")[position & (CHUNK - 1)];
        assert!(cell.set(entry).is_ok(), "arena position {position} written twice");
    }
}
