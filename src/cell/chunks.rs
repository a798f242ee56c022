//! A growable array whose elements never move: lots and reservation slots
//! live in one.
//!
//! Owns: [`Chunks`], index arithmetic of its chunk layout ([`locate`]),
//! and chunk installation.
//!
//! Must never: move or free an element while the array lives. Threads read
//! elements by index without any lock or reference count, while another
//! thread may be installing a later chunk; an element, once reachable,
//! stays at its address.
//!
//! # Layout
//!
//! Index `i` lives in octave `o` (chunks of `8 << o` elements, eight
//! chunks per octave), so capacity grows by at most an eighth at a time:
//! after `n` elements at most `n / 8` are slack, where doubling would leave
//! up to `n`. Octave `o` starts at `64 * (2^o - 1)`; index to chunk and
//! offset is a leading-zeros count and two shifts. The directory of an
//! octave (its eight chunk cells) is installed when the octave is first
//! reached, so an array that never grows past its first chunk costs one
//! small allocation.
//!
//! Chunks are installed in [`OnceLock`]s: the first thread to need a chunk
//! allocates it, a racing thread drops its own copy and uses the winner's.
//! Installation is a growth path (once per chunk), never the steady path.

use crate::sync::OnceLock;

/// Octaves in the directory: capacity `64 * (2^OCTAVES - 1)`, past any
/// `u32` index.
const OCTAVES: usize = 27;
/// Chunks per octave.
const PER_OCTAVE: usize = 8;

/// The largest index an array can hold.
pub(crate) const INDEX_MAX: u32 = u32::MAX - 1;

/// Where index `index` lives: (octave, chunk within the octave, offset,
/// chunk length).
#[inline]
pub(crate) fn locate(index: u32) -> (usize, usize, usize, usize) {
    let shifted = u64::from(index) + 64;
    let octave = (63 - shifted.leading_zeros()) as usize - 6;
    let within = shifted - (64 << octave);
    let chunk_len = 8usize << octave;
    let chunk = (within >> (octave + 3)) as usize;
    let offset = (within & (chunk_len as u64 - 1)) as usize;
    (octave, chunk, offset, chunk_len)
}

type Chunk<T> = OnceLock<Box<[T]>>;

/// A growable array of `T` whose elements never move (see the module
/// docs). `T: Default` builds the elements of a new chunk.
pub(crate) struct Chunks<T> {
    octaves: Box<[OnceLock<Directory<T>>]>,
}

/// The chunk cells of one octave.
type Directory<T> = Box<[Chunk<T>; PER_OCTAVE]>;

impl<T: Default> Chunks<T> {
    pub(crate) fn new() -> Chunks<T> {
        Chunks { octaves: (0..OCTAVES).map(|_| OnceLock::new()).collect() }
    }

    /// The element at `index`, if its chunk is installed.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        let (octave, chunk, offset, _) = locate(index);
        self.octaves[octave].get()?[chunk].get().map(|elements| &elements[offset])
    }

    /// The element at `index`, installing its chunk if needed.
    pub(crate) fn ensure(&self, index: u32) -> &T {
        assert!(index <= INDEX_MAX, "index {index} past the array's maximum");
        let (octave, chunk, offset, len) = locate(index);
        let directory = self.octaves[octave].get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        let elements = directory[chunk].get_or_init(|| (0..len).map(|_| T::default()).collect());
        &elements[offset]
    }

    /// Elements that can be reached without installing anything.
    pub(crate) fn capacity(&self) -> u32 {
        let mut capacity = 0u64;
        for octave in self.octaves.iter() {
            let Some(directory) = octave.get() else { break };
            for chunk in directory.iter() {
                match chunk.get() {
                    Some(elements) => capacity += elements.len() as u64,
                    None => return u32::try_from(capacity).unwrap_or(u32::MAX),
                }
            }
        }
        u32::try_from(capacity).unwrap_or(u32::MAX)
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn indices_map_to_distinct_places_and_octaves_grow_by_an_eighth() {
        let mut seen = std::collections::HashSet::new();
        let mut previous = (0, 0);
        for index in 0..100_000u32 {
            let (octave, chunk, offset, len) = locate(index);
            assert!(offset < len && chunk < PER_OCTAVE);
            assert_eq!(len, 8 << octave);
            assert!(seen.insert((octave, chunk, offset)), "{index} shares a place");
            assert!((octave, chunk) >= previous, "chunks are filled in order");
            previous = (octave, chunk);
        }
        assert_eq!(locate(0), (0, 0, 0, 8));
        assert_eq!(locate(63), (0, 7, 7, 8));
        assert_eq!(locate(64), (1, 0, 0, 16));
        let (octave, ..) = locate(INDEX_MAX);
        assert!(octave < OCTAVES);
    }

    #[test]
    fn elements_stay_put_while_the_array_grows() {
        use crate::sync::{AtomicU64, Ordering::Relaxed};
        let chunks: Chunks<AtomicU64> = Chunks::new();
        assert!(chunks.get(0).is_none());
        let first: *const _ = chunks.ensure(0);
        chunks.ensure(0).store(7, Relaxed);
        for index in 1..5_000 {
            chunks.ensure(index).store(u64::from(index), Relaxed);
        }
        assert_eq!(first, chunks.get(0).unwrap() as *const _);
        assert_eq!(chunks.get(0).unwrap().load(Relaxed), 7);
        assert_eq!(chunks.get(4_999).unwrap().load(Relaxed), 4_999);
        let capacity = chunks.capacity();
        assert!((5_000..=5_000 + 5_000 / 8 + 64).contains(&capacity), "slack is at most an eighth: {capacity}");
        assert!(chunks.get(capacity - 1).is_some() && chunks.get(capacity).is_none());
    }
}
