//! One generation of the SKU table's index: bucketized cuckoo hashing
//! whose entries only ever move one way, so that readers need no lock, no
//! retry and no shared write.
//!
//! Owns: [`Index`]: an array of buckets of [`BUCKET_SLOTS`] 32-bit words,
//! each word naming one arena position (plus one; zero is an empty slot)
//! and carrying high bits of its key's hash as a tag. A bucket is 32
//! bytes, stored as four 8-byte atomics holding two words each. A key has
//! two buckets, *primary* and *alternate*, and a preferred pair of slots
//! within a bucket, its *home pair*, all taken from its hash under the
//! generation's seed. A lookup first loads the key's home pair in its
//! primary and picks, without a branch, the word whose tag matches: most
//! keys sit there (one of the two slots was empty when they came: 83% at
//! 10,000 SKUs, 60% at 1,000,000), and then one load and one arena read
//! find them.
//! Otherwise it loads the primary whole (four loads), compares all eight
//! tags at once, and asks the arena only about the words whose tag
//! matches (almost always just the key's own); only if the primary is full
//! does it do the same with the alternate. At most two buckets, nine
//! loads, whatever the ids and however full the table, and no loop whose
//! length depends on where the key sits.
//!
//! Must never: empty a slot, or move an entry from its alternate bucket.
//! The reader's whole argument rests on three rules the writer keeps:
//!
//! 1. **A slot never empties**: a new word goes into an empty slot (the
//!    first from its home pair on); a filled slot is only ever
//!    overwritten, by a store of its whole 8-byte pair, so a reader sees
//!    each word whole.
//! 2. **A key goes to its alternate only when its primary is full**, either
//!    placed there directly or moved there by a later insertion that needed
//!    its slot. With rule 1, a primary bucket with an empty slot proves the
//!    key is not in its alternate either: a lookup that meets one stops.
//! 3. **Moves go from primary to alternate only, and copy before they
//!    overwrite**: the entry is written into its alternate (release), then
//!    its old slot is overwritten (release) with the entry that needs it.
//!    A reader loads the primary first: if it saw the overwrite, its
//!    acquire load makes the earlier copy visible when it loads the
//!    alternate; if not, it found the entry where it was. Either way an
//!    entry present when the lookup began is found. (An entry momentarily
//!    in both buckets names the same position, so either find is right.)
//!
//! The order of the loads within a bucket does not matter: every word
//! that was in the bucket when the lookup began is still there or
//! overwritten by another (rule 1), and a word filled while the lookup
//! runs is a concurrent insertion, found whole or not at all.
//!
//! Insertions that find both buckets full search a cuckoo path of at most
//! [`MOVES_MAX`] moves (every bucket on it distinct, every moved entry in
//! its primary), and carry it out from its empty end backwards, so rule 3
//! holds at every step. Bucketized cuckoo hashing with 8-slot buckets and
//! 3-move paths fills past 99% before an insertion fails (simulated: 0.991
//! at 2^20 slots); the table rebuilds at 31/32 full, well before.
//!
//! A generation, once readers can see it, is only ever filled further by
//! the writer; when it is full the table builds the next generation beside
//! it and switches readers over. Readers that loaded the old one finish in
//! it: it stays valid and is freed with the table (see the table's
//! `# Memory`).

use super::hash::Seed;
use crate::sync::{AtomicU64, Ordering};

/// Slots per bucket: eight 4-byte words, 32 bytes, aligned so that a
/// bucket never straddles two cache lines. Under a checker 4 (two pairs,
/// so a key can sit outside its home pair), so that a handful of
/// insertions fills buckets, moves entries and rebuilds.
pub(crate) const BUCKET_SLOTS: usize = if cfg!(any(stockroom_loom, stockroom_shuttle)) { 4 } else { 8 };
const BUCKET_SLOT_BITS: u32 = BUCKET_SLOTS.trailing_zeros();
/// The 8-byte atomics of a bucket, two words each.
const PAIRS: usize = BUCKET_SLOTS / 2;

/// The most moves one insertion makes to free a slot. Three (with 8-slot
/// buckets) fill 99% of the slots before an insertion fails; a search
/// visits at most 8 + 64 + 512 entries.
pub(crate) const MOVES_MAX: usize = 3;

/// `log2` of the smallest generation's slot count (64 slots in 8 buckets;
/// under a checker 8 slots in 2 buckets).
pub(crate) const SLOT_BITS_MIN: u32 = if cfg!(any(stockroom_loom, stockroom_shuttle)) { 3 } else { 6 };

/// `log2` of the largest generation's slot count. A word keeps
/// `32 - slot_bits` bits of tag, so at most 29 leaves 3.
pub(crate) const SLOT_BITS_MAX: u32 = if cfg!(any(stockroom_loom, stockroom_shuttle)) { 11 } else { 29 };

const _: () = assert!(BUCKET_SLOTS.is_power_of_two() && BUCKET_SLOTS >= 2 && BUCKET_SLOTS <= 32);
// At least two buckets, so the bucket shift below is less than 64.
const _: () = assert!(SLOT_BITS_MIN > BUCKET_SLOT_BITS);
const _: () = assert!(SLOT_BITS_MIN <= SLOT_BITS_MAX && SLOT_BITS_MAX <= 29);

/// A bucket: one 32-byte group of slots; slot `2k` is the low half of
/// pair `k`, slot `2k + 1` the high half.
#[cfg_attr(not(any(stockroom_loom, stockroom_shuttle)), repr(align(32)))]
struct Bucket {
    pairs: [AtomicU64; PAIRS],
}

/// What reading one bucket found.
enum Scan<R> {
    /// The probe accepted a word.
    Found(R),
    /// An empty slot, and no word the probe accepted: the key is not in
    /// this bucket, nor (for a primary) in its alternate (rules 1 and 2).
    Open,
    /// Every slot full, none accepted.
    Full,
}

/// Where a new word goes: `steps[0]`; each `steps[k - 1]`'s word first
/// moves to `steps[k]`, and the last step is an empty slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placement {
    steps: [(usize, usize); MOVES_MAX + 1],
    len: usize,
}

impl Placement {
    fn empty() -> Placement {
        Placement { steps: [(0, 0); MOVES_MAX + 1], len: 0 }
    }

    fn single(bucket: usize, slot: usize) -> Placement {
        let mut placement = Placement::empty();
        placement.push(bucket, slot);
        placement
    }

    fn push(&mut self, bucket: usize, slot: usize) {
        assert!(self.len <= MOVES_MAX, "a path of at most MOVES_MAX moves");
        self.steps[self.len] = (bucket, slot);
        self.len += 1;
    }

    fn pop(&mut self) {
        self.len -= 1;
    }

    fn visits(&self, bucket: usize) -> bool {
        self.steps[..self.len].iter().any(|&(on_path, _)| on_path == bucket)
    }
}

/// Where a key sits in a generation, for probe statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spot {
    /// In its alternate bucket: a lookup of it reads two buckets.
    pub(crate) alternate: bool,
    /// In its home pair in its primary: a lookup of it loads one pair.
    pub(crate) at_home: bool,
    /// Other words in the buckets a lookup of it reads whose tag matches
    /// its own: each costs an arena read before the key's own word.
    pub(crate) false_matches: usize,
}

/// One generation of the index (see the module docs).
pub(crate) struct Index {
    seed: Seed,
    /// `log2` of the bucket count, at least 1.
    bucket_bits: u32,
    /// The low bits of a word: the arena position plus one (zero: an
    /// empty slot). The other bits are the tag: the same bits of the key's
    /// hash, which no bucket choice uses.
    position_mask: u32,
    buckets: Box<[Bucket]>,
}

impl Index {
    /// An empty generation of `2^slot_bits` slots hashing under `seed`.
    pub(crate) fn new(seed: Seed, slot_bits: u32) -> Index {
        assert!((SLOT_BITS_MIN..=SLOT_BITS_MAX).contains(&slot_bits), "slot bits {slot_bits} out of range");
        let bucket_bits = slot_bits - BUCKET_SLOT_BITS;
        let buckets =
            (0..1_usize << bucket_bits).map(|_| Bucket { pairs: std::array::from_fn(|_| AtomicU64::new(0)) }).collect();
        Index { seed, bucket_bits, position_mask: (1 << slot_bits) - 1, buckets }
    }

    /// A generation of `2^slot_bits` slots holding positions `0..entries`,
    /// whose keys `key_at` gives; `None` if one found no room within
    /// [`MOVES_MAX`] moves (the caller tries another seed or size). Built
    /// before any reader can see it.
    pub(crate) fn build(seed: Seed, slot_bits: u32, entries: u32, key_at: impl Fn(u32) -> u64) -> Option<Index> {
        let index = Index::new(seed, slot_bits);
        if entries as usize > index.holds_max() {
            return None;
        }
        let hash_at = |position| index.hash(key_at(position));
        for position in 0..entries {
            let hash = hash_at(position);
            let placement = index.plan(hash, &hash_at)?;
            index.apply(&placement, index.word(hash, position));
        }
        Some(index)
    }

    /// The hash of `id` under this generation's seed.
    #[inline]
    pub(crate) fn hash(&self, id: u64) -> u64 {
        self.seed.hash(id)
    }

    /// `log2` of the slot count.
    pub(crate) fn slot_bits(&self) -> u32 {
        self.bucket_bits + BUCKET_SLOT_BITS
    }

    /// The slot count.
    pub(crate) fn capacity(&self) -> usize {
        1 << self.slot_bits()
    }

    /// The most entries this generation takes: 31/32 of its slots (and
    /// always fewer than its slots, so a position plus one fits the word).
    pub(crate) fn holds_max(&self) -> usize {
        self.capacity() - (self.capacity() / 32).max(1)
    }

    #[inline]
    fn primary(&self, hash: u64) -> usize {
        (hash >> (64 - self.bucket_bits)) as usize
    }

    #[inline]
    fn alternate(&self, hash: u64) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    /// The tag bits of a word: the hash's, with the top bit always set, so
    /// that every filled word has it and an empty one (zero) never does.
    /// The pair of slots a key prefers within a bucket: the hash bits just
    /// above the alternate's, below the tag's.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.bucket_bits) as usize & (PAIRS - 1)
    }

    #[inline]
    fn tag(&self, hash: u64) -> u32 {
        (hash as u32 | 1 << 31) & !self.position_mask
    }

    /// The word naming `position` for a key of hash `hash`.
    pub(crate) fn word(&self, hash: u64, position: u32) -> u32 {
        assert!(position < self.position_mask, "position {position} does not fit a word of this generation");
        self.tag(hash) | (position + 1)
    }

    /// Finds a key of hash `hash`: `probe` is asked about every arena
    /// position whose word carries the key's tag and answers `Some` if the
    /// entry there is the key. Reads at most two buckets; writes nothing.
    #[inline]
    pub(crate) fn find<R>(&self, hash: u64, mut probe: impl FnMut(u32) -> Option<R>) -> Option<R> {
        let (tag, primary) = (self.tag(hash), self.primary(hash));
        // Most keys sit in their home pair: one load, and the word whose
        // tag matches picked without a branch. A miss here proves nothing;
        // the scans below decide.
        // Acquire: as in `scan`.
        let pair = self.buckets[primary].pairs[self.home(hash)].load(Ordering::Acquire);
        let (low, high) = (pair as u32, (pair >> 32) as u32);
        let word = if low & !self.position_mask == tag { low } else { high };
        if word & !self.position_mask == tag {
            if let Some(found) = probe((word & self.position_mask) - 1) {
                return Some(found);
            }
        }
        self.find_beyond_home(hash, probe)
    }

    /// The rest of `find`, out of line: with the scans outside it, the
    /// home-pair path keeps its few values in registers.
    #[inline(never)]
    fn find_beyond_home<R>(&self, hash: u64, mut probe: impl FnMut(u32) -> Option<R>) -> Option<R> {
        let tag = self.tag(hash);
        match self.scan(self.primary(hash), tag, &mut probe) {
            Scan::Found(found) => Some(found),
            // Rules 1 and 2: a primary with an empty slot never sent this
            // key to its alternate.
            Scan::Open => None,
            Scan::Full => match self.scan(self.alternate(hash), tag, &mut probe) {
                Scan::Found(found) => Some(found),
                Scan::Open | Scan::Full => None,
            },
        }
    }

    /// Reads `bucket` whole (one load per pair) and asks `probe` about
    /// each word whose tag is `tag`. Branch-free up to the candidates: the
    /// tags of both words of a pair are compared at once (SWAR: a lane of
    /// `x` is zero exactly when its word carries the tag; adding
    /// `0x7FFF_FFFF` to a lane's low 31 bits carries into its top bit
    /// unless they are all zero, and never into the next lane).
    #[inline(always)]
    fn scan<R>(&self, bucket: usize, tag: u32, probe: &mut impl FnMut(u32) -> Option<R>) -> Scan<R> {
        const LOW: u64 = 0x7FFF_FFFF_7FFF_FFFF;
        const HIGH: u64 = 0x8000_0000_8000_0000;
        let (tags, tag_bits) = (u64::from(tag) * 0x1_0000_0001, u64::from(!self.position_mask) * 0x1_0000_0001);
        let mut pairs = [0_u64; PAIRS];
        // Bit `31 - k` set: slot `2k` carries the tag; bit `63 - k`: slot `2k + 1`.
        let mut matches = 0_u64;
        // Every filled word has its top bit set (see `tag`): still HIGH at
        // the end means every slot is full.
        let mut filled = HIGH;
        for (k, (pair, word_pair)) in self.buckets[bucket].pairs.iter().zip(&mut pairs).enumerate() {
            // Acquire: pairs with the release store that wrote either word
            // (`store_word`), so the arena entry it names, and any copy
            // made before it overwrote a slot, are visible here.
            *word_pair = pair.load(Ordering::Acquire);
            filled &= *word_pair;
            let x = (*word_pair ^ tags) & tag_bits;
            matches |= (!(((x & LOW) + LOW) | x) & HIGH) >> k;
        }
        // One pass per matching word: at most BUCKET_SLOTS, almost always
        // one (the key's) or none. The words are the ones loaded above:
        // loading a slot again could see a later overwrite.
        while matches != 0 {
            let bit = 63 - matches.leading_zeros();
            matches &= !(1 << bit);
            let (k, half) = if bit >= 32 { (63 - bit, 1) } else { (31 - bit, 0) };
            let word = (pairs[k as usize] >> (32 * half)) as u32;
            if let Some(found) = probe((word & self.position_mask) - 1) {
                return Scan::Found(found);
            }
        }
        if filled == HIGH { Scan::Full } else { Scan::Open }
    }

    /// The writer's view of a slot: every word in this generation was
    /// stored by a writer that held the table's writer lock (or, before
    /// publication, by this thread), so the lock orders them before us.
    fn word_at(&self, bucket: usize, slot: usize) -> u32 {
        (self.pair_at(bucket, slot / 2) >> (32 * (slot % 2))) as u32
    }

    /// The writer's view of a pair of slots (see `word_at`).
    #[cfg(not(stockroom_loom))]
    fn pair_at(&self, bucket: usize, pair: usize) -> u64 {
        // Relaxed: the writer lock's acquire already ordered every store
        // to this pair before this load (see `word_at`).
        self.buckets[bucket].pairs[pair].load(Ordering::Relaxed)
    }

    /// Under loom the writer reads a word with a read-modify-write that
    /// changes nothing: loom's partial-order reduction keeps one last
    /// access per atomic and does not count a load as racing a load, so a
    /// plain load by the writer between a reader's load and the writer's
    /// store to the same word would hide that race, and loom would never
    /// run the store first. The value read is the same (the lock orders
    /// every earlier store before it); an RMW continues the release
    /// sequence of the store it reads, so readers synchronize as before.
    #[cfg(stockroom_loom)]
    fn pair_at(&self, bucket: usize, pair: usize) -> u64 {
        // Relaxed: as the load above; the RMW is only there for loom.
        self.buckets[bucket].pairs[pair].fetch_or(0, Ordering::Relaxed)
    }

    /// Writes `word` into one slot (writer only): the whole pair is stored
    /// at once, its other word unchanged.
    fn store_word(&self, bucket: usize, slot: usize, word: u32) {
        let shift = 32 * (slot % 2);
        let pair = self.pair_at(bucket, slot / 2) & !(u64::from(u32::MAX) << shift) | u64::from(word) << shift;
        // Release: pairs with the acquire load in `scan`: whoever reads the
        // word sees what was written before it (see `apply`).
        self.buckets[bucket].pairs[slot / 2].store(pair, Ordering::Release);
    }

    /// The first empty slot of `bucket` from home pair `home` on, wrapping
    /// round.
    fn first_empty(&self, bucket: usize, home: usize) -> Option<usize> {
        (0..BUCKET_SLOTS).map(|step| (2 * home + step) % BUCKET_SLOTS).find(|&slot| self.word_at(bucket, slot) == 0)
    }

    /// Where a new key of hash `hash` can go (writer only): the first empty
    /// slot of its primary, else of its alternate, else the head of a
    /// cuckoo path of at most [`MOVES_MAX`] moves out of either. `hash_at`
    /// gives the hash, under this generation's seed, of the key at an arena
    /// position. `None`: no room within the bound.
    pub(crate) fn plan(&self, hash: u64, hash_at: &impl Fn(u32) -> u64) -> Option<Placement> {
        let (primary, alternate, home) = (self.primary(hash), self.alternate(hash), self.home(hash));
        if let Some(slot) = self.first_empty(primary, home) {
            return Some(Placement::single(primary, slot));
        }
        if let Some(slot) = self.first_empty(alternate, home) {
            return Some(Placement::single(alternate, slot));
        }
        let starts = [primary, alternate];
        let starts = if primary == alternate { &starts[..1] } else { &starts[..] };
        starts.iter().find_map(|&start| {
            let mut path = Placement::empty();
            self.search(start, MOVES_MAX, &mut path, hash_at).then_some(path)
        })
    }

    /// Extends `path` through the full `bucket` to an empty slot within
    /// `moves` moves: tries every entry of the bucket that sits in its
    /// primary and whose alternate is not on the path yet, first for an
    /// empty slot right there, then (if `moves` allows) recursively.
    fn search(&self, bucket: usize, moves: usize, path: &mut Placement, hash_at: &impl Fn(u32) -> u64) -> bool {
        // The alternates and home pairs of this bucket's movable entries
        // (rule 3: only an entry in its primary moves; one whose alternate
        // is this bucket or already on the path cannot).
        let mut movable = [None; BUCKET_SLOTS];
        for (slot, alternate) in movable.iter_mut().enumerate() {
            let position = (self.word_at(bucket, slot) & self.position_mask) - 1;
            let hash = hash_at(position);
            let to = self.alternate(hash);
            if self.primary(hash) == bucket && to != bucket && !path.visits(to) {
                *alternate = Some((to, self.home(hash)));
            }
        }
        for (slot, &to) in movable.iter().enumerate() {
            if let Some((to, home)) = to {
                if let Some(free) = self.first_empty(to, home) {
                    path.push(bucket, slot);
                    path.push(to, free);
                    return true;
                }
            }
        }
        if moves == 1 {
            return false;
        }
        for (slot, &to) in movable.iter().enumerate() {
            if let Some((to, _)) = to {
                path.push(bucket, slot);
                if self.search(to, moves - 1, path, hash_at) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }

    /// Carries out `placement` for `word` (writer only): each moved entry
    /// is copied into its next slot before the slot it leaves is
    /// overwritten, from the empty end of the path backwards (rule 3).
    pub(crate) fn apply(&self, placement: &Placement, word: u32) {
        let steps = &placement.steps[..placement.len];
        let &(bucket, slot) = steps.last().expect("a placement has at least one step");
        assert_eq!(self.word_at(bucket, slot), 0, "a placement ends in an empty slot");
        for pair in steps.windows(2).rev() {
            let ((from_bucket, from_slot), (to_bucket, to_slot)) = (pair[0], pair[1]);
            let moved = self.word_at(from_bucket, from_slot);
            // A release store: publishes the copy before the slot it leaves
            // is overwritten by the next store, so a reader that sees that
            // overwrite (acquire, in `scan`) also sees this copy.
            self.store_word(to_bucket, to_slot, moved);
        }
        let (bucket, slot) = steps[0];
        // A release store: whoever reads this word (acquire, in `scan`)
        // sees the arena entry it names (written before) and the moves
        // above.
        self.store_word(bucket, slot, word);
    }

    /// Where the key of hash `hash` at arena position `position` sits
    /// (writer or quiescent use: statistics and tests).
    pub(crate) fn spot(&self, hash: u64, position: u32) -> Option<Spot> {
        let (wanted, tag) = (self.word(hash, position), self.tag(hash));
        // Whether the bucket holds the key, and its other words with the tag.
        let look = |bucket: usize| {
            let words = (0..BUCKET_SLOTS).map(|slot| self.word_at(bucket, slot));
            let tagged = words.filter(|&word| word != 0 && word & !self.position_mask == tag);
            tagged
                .fold((false, 0), |(has, others), word| if word == wanted { (true, others) } else { (has, others + 1) })
        };
        let (in_primary, primary_false) = look(self.primary(hash));
        if in_primary {
            let home = 2 * self.home(hash);
            let at_home = [home, home + 1].iter().any(|&slot| self.word_at(self.primary(hash), slot) == wanted);
            return Some(Spot { alternate: false, at_home, false_matches: primary_false });
        }
        let (in_alternate, alternate_false) = look(self.alternate(hash));
        in_alternate.then_some(Spot { alternate: true, at_home: false, false_matches: primary_false + alternate_false })
    }

    /// Full buckets in this generation: a miss whose primary is one reads
    /// its alternate too.
    pub(crate) fn full_buckets(&self) -> usize {
        (0..self.buckets.len()).filter(|&bucket| self.first_empty(bucket, 0).is_none()).count()
    }

    /// The bucket count.
    pub(crate) fn buckets(&self) -> usize {
        self.buckets.len()
    }
}
