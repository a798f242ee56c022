//! What the appending threads, the writer thread, readers and the snapshot
//! writer share: the ring, the durable watermark, the failure, the waiters,
//! the list of live segments and the statistics.
//!
//! Owns: [`Shared`] and the two small protocols around it: waking the
//! writer, and answering "is sequence `s` durable?".
//!
//! Must never: report a sequence durable before the sync that covered it
//! returned, or report a failure without the last durable sequence.
//!
//! # Orderings
//!
//! 1. `durable` is stored Release by the writer after the sync (or, in
//!    `Off`, the write) that covered it, and loaded Acquire by everyone who
//!    acts on it (a waiter returning, a reader opening the file there):
//!    what the writer did before is visible to them.
//! 2. `failed` is stored Release after the writer's last `durable` store
//!    and the failure's details, and loaded Acquire before re-reading
//!    `durable`: whoever sees the failure sees its final watermark.
//! 3. Waking the writer is the store-buffering shape: a producer does
//!    `stamp.store; fence(SeqCst); load(writer_sleeping)`, the writer does
//!    `store(writer_sleeping, true); fence(SeqCst); load(stamp)`. The fences
//!    are totally ordered: either the producer sees the writer asleep and
//!    unparks it, or the writer sees the stamp and does not sleep. The
//!    flag's own loads and stores can then be Relaxed; the swap that
//!    elects one waker among many producers is Relaxed too (an extra or a
//!    missed duplicate unpark is harmless once one happens).
//! 4. A close records the ring's final tail (ring.rs # Orderings 4), then
//!    wakes the writer the same way as 3.
//! 5. Statistics are Relaxed counters: nothing is decided on them.

use super::error::{DurabilityError, Failure};
use super::options::JournalOptions;
use super::ring::Ring;
use super::waitlist::WaitList;
use crate::sync::thread::{self, Thread};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering, fence};
use std::path::PathBuf;
use std::time::Instant;

/// Counters the writer keeps for [`JournalStats`](super::JournalStats).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) syncs: AtomicU64,
    pub(crate) frames: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) loss_window_max_nanos: AtomicU64,
    pub(crate) segments_created: AtomicU64,
}

/// The journal's shared state (see the module docs).
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) options: JournalOptions,
    pub(crate) ring: Ring,
    /// Every sequence up to this one is durable (0: none).
    pub(crate) durable: AtomicU64,
    pub(crate) failed: AtomicBool,
    pub(crate) failure: Mutex<Option<Failure>>,
    pub(crate) durable_waiters: WaitList,
    pub(crate) space_waiters: WaitList,
    pub(crate) writer_sleeping: AtomicBool,
    pub(crate) writer_thread: Mutex<Option<Thread>>,
    /// First sequence numbers of the live segments, ascending; the last is
    /// the one being appended to. An admin-path lock (rollover, snapshot
    /// compaction, a reader changing segment), never taken by an append.
    pub(crate) segments: Mutex<Vec<u64>>,
    /// Segments holding records at or after this sequence are kept even
    /// when a snapshot covers them (a change feed still reading them).
    pub(crate) retain_from: AtomicU64,
    pub(crate) counters: Counters,
    /// I/O failures a test injects into the writer.
    #[cfg(test)]
    pub(crate) faults: super::writer::Faults,
}

impl Shared {
    pub(crate) fn new(dir: PathBuf, options: JournalOptions, next_seq: u64, segments: Vec<u64>) -> Shared {
        let ring = Ring::new(options.ring_capacity, next_seq);
        Shared {
            dir,
            options,
            ring,
            durable: AtomicU64::new(next_seq - 1),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            durable_waiters: WaitList::new(),
            space_waiters: WaitList::new(),
            writer_sleeping: AtomicBool::new(false),
            writer_thread: Mutex::new(None),
            segments: Mutex::new(segments),
            retain_from: AtomicU64::new(u64::MAX),
            counters: Counters::default(),
            #[cfg(test)]
            faults: super::writer::Faults::default(),
        }
    }

    /// The last durable sequence (0: none).
    pub(crate) fn durable(&self) -> u64 {
        // Acquire: pairs with the writer's Release store (# Orderings 1).
        self.durable.load(Ordering::Acquire)
    }

    /// The failure, if the journal failed.
    pub(crate) fn failure(&self) -> Option<Failure> {
        // Acquire: pairs with the writer's Release store (# Orderings 2).
        if self.failed.load(Ordering::Acquire) { self.failure.lock().clone() } else { None }
    }

    /// `Some(Ok)` once `seq` is durable, `Some(Err)` if it never will be,
    /// `None` while it may still be.
    pub(crate) fn durability(&self, seq: u64) -> Option<Result<(), DurabilityError>> {
        if self.durable() >= seq {
            return Some(Ok(()));
        }
        // Acquire: pairs with the writer's Release store (# Orderings 2).
        if self.failed.load(Ordering::Acquire) {
            // The watermark is final once the failure is visible.
            if self.durable() >= seq {
                return Some(Ok(()));
            }
            let failure = self.failure.lock().clone().expect("a failed journal records its failure");
            return Some(Err(DurabilityError::Failed(failure)));
        }
        None
    }

    /// Wakes the writer if it sleeps; called after filling a slot or
    /// setting `final_tail` (# Orderings 3, 4).
    pub(crate) fn nudge_writer(&self) {
        // SeqCst: pairs with the writer's fence before it sleeps (# Orderings 3).
        fence(Ordering::SeqCst);
        // Relaxed: the fence orders it; the swap elects one waker (# Orderings 3).
        if self.writer_sleeping.load(Ordering::Relaxed) && self.writer_sleeping.swap(false, Ordering::Relaxed) {
            if let Some(writer) = self.writer_thread.lock().as_ref() {
                writer.unpark();
            }
        }
    }

    /// The writer thread parks until a producer fills sequence `next`, a
    /// close, or `deadline` (# Orderings 3).
    pub(crate) fn park_writer(&self, next: u64, deadline: Option<Instant>) {
        // Relaxed: ordered by the fence (# Orderings 3).
        self.writer_sleeping.store(true, Ordering::Relaxed);
        // SeqCst: pairs with the producer's fence in `nudge_writer` (# Orderings 3).
        fence(Ordering::SeqCst);
        if !self.ring.is_filled(next) && self.final_tail().is_none() {
            match deadline {
                None => thread::park(),
                Some(deadline) => thread::park_timeout(deadline.saturating_duration_since(Instant::now())),
            }
        }
        // Relaxed: the next park's fence orders it again.
        self.writer_sleeping.store(false, Ordering::Relaxed);
    }

    /// The ring's final tail, once a close recorded it.
    pub(crate) fn final_tail(&self) -> Option<u64> {
        self.ring.final_tail()
    }
}
