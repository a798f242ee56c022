//! The append ring: a bounded multi-producer, single-consumer slot ring in
//! which a record's position is its sequence number (Vyukov's bounded
//! queue, with the sequence claimed by fetch-add and the writer as the one
//! consumer).
//!
//! Owns: the claim counter (`tail`, with the closed flag), the writer's
//! position (`head`), and the slots that carry payloads from the appending
//! threads to the writer.
//!
//! Must never: give one sequence number to two records, lose a claimed
//! one, let a producer overwrite a slot the writer has not taken, or make
//! a producer wait for another producer. Producers wait only for the
//! writer, and only when the ring is full (back-pressure).
//!
//! # Protocol
//!
//! A producer claims sequence `s` by incrementing `tail` (one fetch-add: no
//! retry, no lock). Slot `s & mask` is free for `s` when its stamp equals
//! `s`; the producer copies its payload in and stores `s + 1` (filled).
//! The writer takes sequences in order: when slot `s & mask` has stamp
//! `s + 1` it copies the payload out and stores `s + capacity` (free for
//! the producer one lap later), then advances `head`. A claimed sequence
//! whose producer is between its claim and its fill holds the writer at
//! that sequence (and so every later acknowledgement) for those few
//! instructions: the one wait the design keeps, in exchange for producers
//! knowing their sequence number at once.
//!
//! Closing sets bit 63 of `tail` with a fetch-or. Every claim is ordered
//! against it in `tail`'s modification order: a claim before it got a
//! sequence below the final `tail`, which the writer drains; a claim after
//! it sees the flag and owns nothing.
//!
//! The payload bytes sit in a `Mutex<Vec<u8>>` per slot that is never
//! contended: the stamp protocol hands the slot to exactly one side at a
//! time, so every lock is a `try_lock` asserted to succeed. It is the safe
//! spelling of a cell handed over by an atomic, not a lock anyone waits on.
//!
//! # Orderings
//!
//! 1. `tail` is only ever read-modify-written (fetch-add, fetch-or, and the
//!    compare-and-swap of [`Ring::try_claim`]): uniqueness of sequence
//!    numbers and the closed flag need only its modification order, so all
//!    are Relaxed. Nothing is published through `tail`.
//! 2. A slot's stamp carries the payload. The producer's store of `s + 1`
//!    is Release, pairing with the writer's Acquire load that sees it: the
//!    bytes written (and the mutex released) before it are visible to the
//!    writer. The writer's store of `s + capacity` is Release, pairing with
//!    the next-lap producer's Acquire load: the writer's reads of the old
//!    bytes (and its unlock) happen before the producer's overwrite.
//!    Relaxed on either side would let one side touch the bytes while the
//!    other still does (the asserting `try_lock` would fire).
//! 3. `head` is stored Release by the writer after the stamps it frees and
//!    loaded Acquire by [`Ring::try_claim`] and by the space waiters' check:
//!    seeing `head >= h` then implies seeing every slot below `h` freed.
//!    A stale `head` only makes `try_claim` answer "full" early.
//! 4. `final_tail` is stored Release by the one close that set the flag
//!    (refused claims keep counting up `tail`'s low bits, so only that
//!    close's answer is the final tail) and loaded Acquire; nothing but the
//!    value itself is published through it.

use super::format::SEQ_MAX;
use crate::sync::{AtomicU64, Mutex, Ordering};
use crossbeam::utils::CachePadded;

/// Bytes a slot's buffer keeps between records (larger buffers are freed
/// once taken): the ring's memory between bursts is at most
/// `capacity * SLOT_BYTES_KEPT`.
const SLOT_BYTES_KEPT: usize = 1024;

/// Bytes a slot's buffer gets at least when it grows: a small record (a
/// hold, a commit) fits whatever record the slot held on its last lap,
/// instead of growing it by the byte a longer varint adds.
const SLOT_BYTES_MIN: usize = 64;
const _: () = assert!(SLOT_BYTES_MIN <= SLOT_BYTES_KEPT, "a slot keeps what it is given");

/// `tail`'s closed flag: no sequence is claimed once it is set.
const CLOSED: u64 = 1 << 63;

/// Why a claim got no sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimError {
    /// The ring is closed (shut down or failed).
    Closed,
    /// Every slot is in use ([`Ring::try_claim`] only).
    Full,
}

struct Slot {
    /// `s`: free for sequence `s`; `s + 1`: holds sequence `s`.
    stamp: AtomicU64,
    /// The payload; handed over by `stamp`, never contended.
    bytes: Mutex<Vec<u8>>,
}

/// The ring (see the module docs).
pub(crate) struct Ring {
    /// Each on its own cache line: the producer filling `s + 1` and the
    /// writer taking `s` do not pass a line back and forth.
    slots: Box<[CachePadded<Slot>]>,
    mask: u64,
    /// The next sequence to claim, with [`CLOSED`].
    tail: AtomicU64,
    /// The next sequence the writer takes; written by the writer only.
    head: AtomicU64,
    /// `tail` when it was closed ([`NOT_CLOSED`] before).
    final_tail: AtomicU64,
}

/// `final_tail` before the close.
const NOT_CLOSED: u64 = u64::MAX;

impl Ring {
    /// A ring of `capacity` slots (a power of two, at least 2) whose first
    /// sequence number is `first`.
    pub(crate) fn new(capacity: usize, first: u64) -> Ring {
        assert!(capacity.is_power_of_two() && capacity >= 2, "ring capacity {capacity}");
        assert!((1..=SEQ_MAX).contains(&first), "first sequence {first}");
        let cap = capacity as u64;
        let slots = (0..cap)
            .map(|index| {
                // The first sequence at or after `first` that maps to this slot.
                let offset = index.wrapping_sub(first) & (cap - 1);
                CachePadded::new(Slot { stamp: AtomicU64::new(first + offset), bytes: Mutex::new(Vec::new()) })
            })
            .collect();
        Ring {
            slots,
            mask: cap - 1,
            tail: AtomicU64::new(first),
            head: AtomicU64::new(first),
            final_tail: AtomicU64::new(NOT_CLOSED),
        }
    }

    /// Slots in the ring.
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    fn slot(&self, seq: u64) -> &Slot {
        &self.slots[(seq & self.mask) as usize]
    }

    /// Claims the next sequence number; never waits. The caller must then
    /// [`fill`](Ring::fill) it (waiting for its slot if the ring is full).
    pub(crate) fn claim(&self) -> Result<u64, ClaimError> {
        // Relaxed: see # Orderings 1.
        let tail = self.tail.fetch_add(1, Ordering::Relaxed);
        if tail & CLOSED != 0 {
            return Err(ClaimError::Closed);
        }
        assert!(tail <= SEQ_MAX, "journal sequence numbers exhausted at {tail}");
        Ok(tail)
    }

    /// Claims the next sequence number only if its slot is free now.
    pub(crate) fn try_claim(&self) -> Result<u64, ClaimError> {
        // Relaxed: see # Orderings 1.
        let mut tail = self.tail.load(Ordering::Relaxed);
        // Lock-free: a failed compare-and-swap means another producer
        // claimed (or the ring closed); bounded in practice by the number
        // of producers racing, and by the ring filling up.
        loop {
            if tail & CLOSED != 0 {
                return Err(ClaimError::Closed);
            }
            assert!(tail <= SEQ_MAX, "journal sequence numbers exhausted at {tail}");
            // Acquire: pairs with the writer's Release store of `head` (# Orderings 3).
            if tail - self.head.load(Ordering::Acquire) >= self.capacity() {
                return Err(ClaimError::Full);
            }
            // Relaxed: see # Orderings 1.
            match self.tail.compare_exchange_weak(tail, tail + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(tail),
                Err(current) => tail = current,
            }
        }
    }

    /// True if the slot of claimed sequence `seq` is free for it.
    pub(crate) fn is_free(&self, seq: u64) -> bool {
        // Acquire: pairs with the writer's Release store that freed it (# Orderings 2).
        self.slot(seq).stamp.load(Ordering::Acquire) == seq
    }

    /// Copies `payload` into the slot of claimed sequence `seq`, which must
    /// be [free](Ring::is_free).
    pub(crate) fn fill(&self, seq: u64, payload: &[u8]) {
        let slot = self.slot(seq);
        // Acquire: pairs with the writer's Release store that freed it (# Orderings 2).
        assert_eq!(slot.stamp.load(Ordering::Acquire), seq, "slot not free for {seq}");
        {
            let mut bytes = slot.bytes.try_lock().expect("a free slot belongs to its producer");
            bytes.clear();
            if bytes.capacity() < payload.len() {
                bytes.reserve_exact(payload.len().max(SLOT_BYTES_MIN));
            }
            bytes.extend_from_slice(payload);
        }
        // Release: pairs with the writer's Acquire load in `take` (# Orderings 2).
        slot.stamp.store(seq + 1, Ordering::Release);
    }

    /// True if sequence `seq` (the writer's next) is filled.
    pub(crate) fn is_filled(&self, seq: u64) -> bool {
        // Acquire: pairs with the producer's Release store in `fill` (# Orderings 2).
        self.slot(seq).stamp.load(Ordering::Acquire) == seq + 1
    }

    /// The writer takes filled sequence `seq`: `f` reads the payload, then
    /// the slot is freed for `seq + capacity`. Does not move `head`
    /// ([`advance`](Ring::advance) does, once per gather).
    pub(crate) fn take<T>(&self, seq: u64, f: impl FnOnce(&[u8]) -> T) -> T {
        let slot = self.slot(seq);
        assert!(self.is_filled(seq), "sequence {seq} taken before it was filled");
        let answer = {
            let mut bytes = slot.bytes.try_lock().expect("a filled slot belongs to the writer");
            let answer = f(&bytes);
            // A slot keeps its buffer for the next lap, unless a large record
            // grew it: then it lets it go, so the ring holds at most
            // `SLOT_BYTES_KEPT` per slot between records.
            if bytes.capacity() > SLOT_BYTES_KEPT {
                *bytes = Vec::new();
            }
            answer
        };
        // Release: pairs with the next-lap producer's Acquire load (# Orderings 2).
        slot.stamp.store(seq + self.capacity(), Ordering::Release);
        answer
    }

    /// Payload length of filled sequence `seq` (the writer's next).
    pub(crate) fn len_of(&self, seq: u64) -> usize {
        debug_assert!(self.is_filled(seq));
        self.slot(seq).bytes.try_lock().expect("a filled slot belongs to the writer").len()
    }

    /// The writer has taken every sequence below `head`.
    pub(crate) fn advance(&self, head: u64) {
        // Release: after the stamps it freed (# Orderings 3).
        self.head.store(head, Ordering::Release);
    }

    /// The next sequence the writer takes.
    pub(crate) fn head(&self) -> u64 {
        // Acquire: pairs with `advance` (# Orderings 3).
        self.head.load(Ordering::Acquire)
    }

    /// The next sequence to be claimed (as of now; the closed flag removed).
    pub(crate) fn tail(&self) -> u64 {
        // Relaxed: a moment's reading, for statistics and assertions.
        self.tail.load(Ordering::Relaxed) & !CLOSED
    }

    /// Closes the ring (idempotent). Afterwards no claim succeeds, and
    /// [`final_tail`](Ring::final_tail) soon tells the first sequence never
    /// claimed: every one below it was claimed and will be filled.
    pub(crate) fn close(&self) {
        // Relaxed: see # Orderings 1.
        let previous = self.tail.fetch_or(CLOSED, Ordering::Relaxed);
        if previous & CLOSED == 0 {
            // Release: pairs with `final_tail`'s Acquire (# Orderings 4).
            self.final_tail.store(previous, Ordering::Release);
        }
    }

    /// The first sequence never claimed, once a close has recorded it
    /// (`None` before, and for the few instructions between the closing
    /// fetch-or and this store: ask again).
    pub(crate) fn final_tail(&self) -> Option<u64> {
        // Acquire: pairs with the closer's Release store (# Orderings 4).
        let tail = self.final_tail.load(Ordering::Acquire);
        (tail != NOT_CLOSED).then_some(tail)
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn sequences_start_where_asked_and_go_round() {
        let ring = Ring::new(4, 10);
        for lap in 0..3u64 {
            for i in 0..4u64 {
                let seq = ring.claim().unwrap();
                assert_eq!(seq, 10 + lap * 4 + i);
                assert!(ring.is_free(seq));
                ring.fill(seq, &seq.to_le_bytes());
            }
            assert_eq!(ring.try_claim(), Err(ClaimError::Full), "four in flight fill a ring of four");
            for i in 0..4u64 {
                let seq = 10 + lap * 4 + i;
                assert!(ring.is_filled(seq));
                assert_eq!(ring.len_of(seq), 8);
                assert_eq!(ring.take(seq, |bytes| u64::from_le_bytes(bytes.try_into().unwrap())), seq);
            }
            ring.advance(10 + (lap + 1) * 4);
        }
    }

    #[test]
    fn a_claim_past_capacity_waits_for_its_slot() {
        let ring = Ring::new(2, 1);
        for seq in 1..=2 {
            assert_eq!(ring.claim(), Ok(seq));
            ring.fill(seq, b"x");
        }
        let third = ring.claim().unwrap();
        assert!(!ring.is_free(third), "slot of 3 still holds 1");
        ring.take(1, |_| ());
        assert!(ring.is_free(third));
        assert!(ring.is_filled(2));
    }

    #[test]
    fn a_large_record_does_not_keep_its_buffer_in_the_ring() {
        let ring = Ring::new(2, 1);
        for (seq, len) in [(1u64, 100usize), (2, 64 << 10)] {
            assert_eq!(ring.claim(), Ok(seq));
            ring.fill(seq, &vec![7; len]);
            assert_eq!(ring.take(seq, <[u8]>::len), len);
        }
        let kept = |seq: u64| ring.slot(seq).bytes.try_lock().unwrap().capacity();
        assert!(kept(1) >= 100, "a small buffer is kept for the next lap");
        assert_eq!(kept(2), 0, "a 64 KiB buffer is let go");
    }

    #[test]
    fn closing_is_final_and_tells_the_last_claim() {
        let ring = Ring::new(8, 1);
        assert_eq!(ring.claim(), Ok(1));
        assert_eq!(ring.final_tail(), None);
        ring.close();
        assert_eq!(ring.final_tail(), Some(2));
        assert_eq!(ring.claim(), Err(ClaimError::Closed));
        assert_eq!(ring.try_claim(), Err(ClaimError::Closed));
        ring.close();
        assert_eq!(ring.final_tail(), Some(2), "refused claims and a second close change nothing");
    }
}
