//! The writer thread: takes records from the ring in sequence order, frames
//! each gather, appends it to the current segment, syncs as the durability
//! mode says, publishes the durable watermark and wakes whom it satisfied.
//!
//! Owns: the open segment file, rollover, group commit, the `Batched`
//! deadline and the failure path.
//!
//! Must never: publish a sequence durable before the sync that covered it
//! returned; write a record out of sequence order; sync per record while
//! more records are waiting (one sync covers everything gathered since the
//! previous one); leave a claimed record's producer or waiter hanging after
//! a failure (it keeps draining the ring, discarding, until the close).
//!
//! # Group commit
//!
//! In `Sync` mode a pass is: gather every filled record (up to
//! `batch_bytes_max`) into one frame, write it, `fdatasync`, publish, wake.
//! Records appended while the sync runs wait in the ring and form the next
//! frame. Callers woken by a sync append again a few microseconds later,
//! usually after the writer has gathered; a host may set `gather_max` to
//! make the writer wait (yielding the processor) for as many records as
//! the last sync acknowledged, so that they join the next sync instead of
//! the one after. Off by default: measured, it was not shown to pay.
//!
//! Rollover happens between frames: when the current segment has reached
//! `segment_bytes_max`, it is synced, the new segment is created durably
//! (see `files::create_segment`), and the frame goes there.

use super::error::Failure;
use super::files::create_segment;
use super::format::FrameBuilder;
use super::options::Durability;
use super::shared::Shared;
use super::waitlist::Pending;
use crate::sync::thread;
use crate::sync::{Arc, Ordering};
use std::fs::File;
use std::io::{self, Write};
use std::time::Instant;

/// Faults a test can inject into the writer's I/O: fail the n-th write or
/// sync (counting from 1; 0: never).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) fail_write_at: crate::sync::AtomicU64,
    pub(crate) fail_sync_at: crate::sync::AtomicU64,
    pub(crate) writes: crate::sync::AtomicU64,
    pub(crate) syncs: crate::sync::AtomicU64,
}

/// The writer's state; lives on its thread.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    file: File,
    segment_len: u64,
    /// The next sequence to take from the ring.
    next: u64,
    /// The last sequence written to the file.
    written: u64,
    /// The last sequence synced (and published in `Sync`/`Batched`).
    synced: u64,
    buf: Vec<u8>,
    durable_pending: Pending,
    space_pending: Pending,
    /// When the oldest written-but-unsynced frame was taken (`Batched`).
    unsynced_since: Option<Instant>,
    /// Records the last sync acknowledged: what the gather window waits for.
    last_group: u64,
}

impl Writer {
    /// A writer appending to `file` (`segment_len` bytes long), whose next
    /// record is the ring's first sequence.
    pub(crate) fn new(shared: Arc<Shared>, file: File, segment_len: u64) -> Writer {
        let next = shared.ring.head();
        Writer {
            shared,
            file,
            segment_len,
            next,
            written: next - 1,
            synced: next - 1,
            buf: Vec::new(),
            durable_pending: Pending::default(),
            space_pending: Pending::default(),
            unsynced_since: None,
            last_group: 0,
        }
    }

    /// The writer thread's body: returns once the journal is closed and
    /// every claimed record is written, synced, or failed.
    pub(crate) fn run(mut self) {
        if let Err(failure) = self.serve() {
            self.fail(failure);
        }
    }

    fn serve(&mut self) -> Result<(), Failure> {
        // Bounded by the close: every pass takes records, syncs, or sleeps
        // until a producer or the closer wakes it.
        loop {
            if self.shared.ring.is_filled(self.next) {
                self.gather_window();
                self.write_frame()?;
                match self.shared.options.durability {
                    Durability::Sync => self.sync()?,
                    Durability::Off => self.publish(self.written),
                    Durability::Batched { max_delay } => {
                        let since = *self.unsynced_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= max_delay {
                            self.sync()?;
                        }
                    }
                }
                continue;
            }
            if let Some(final_tail) = self.shared.final_tail() {
                if self.next == final_tail {
                    // Drained: the last sync, whatever the mode.
                    self.sync()?;
                    return Ok(());
                }
                // A producer between its claim and its fill: a few
                // instructions away.
                thread::yield_now();
                continue;
            }
            let deadline = match (self.shared.options.durability, self.unsynced_since) {
                (Durability::Batched { max_delay }, Some(since)) => {
                    let deadline = since + max_delay;
                    if Instant::now() >= deadline {
                        self.sync()?;
                        continue;
                    }
                    Some(deadline)
                }
                _ => None,
            };
            self.shared.park_writer(self.next, deadline);
        }
    }

    /// `Sync` only: waits (yielding, up to `gather_max`) until about as many
    /// records are filled as the last sync acknowledged.
    fn gather_window(&self) {
        let window = self.shared.options.gather_max;
        if self.shared.options.durability != Durability::Sync || window.is_zero() || self.last_group < 2 {
            return;
        }
        let started = Instant::now();
        // Bounded by `gather_max`.
        while self.filled_run(self.last_group) < self.last_group && started.elapsed() < window {
            if self.shared.final_tail().is_some() {
                return;
            }
            thread::yield_now();
        }
    }

    /// Filled records from `next` on, counting up to `limit`.
    fn filled_run(&self, limit: u64) -> u64 {
        let mut count = 0;
        while count < limit && self.shared.ring.is_filled(self.next + count) {
            count += 1;
        }
        count
    }

    /// Takes every filled record (up to `batch_bytes_max`) into one frame and
    /// appends it to the segment, rolling over first if the segment is full.
    fn write_frame(&mut self) -> Result<(), Failure> {
        let ring = &self.shared.ring;
        let batch_max = self.shared.options.batch_bytes_max;
        self.buf.clear();
        let first = self.next;
        let mut frame = FrameBuilder::begin(&mut self.buf, first);
        // Bounded by the ring's capacity and by `batch_bytes_max`.
        while ring.is_filled(self.next) {
            let len = ring.len_of(self.next);
            let fits = frame.fits(&self.buf, len) && frame.body_len(&self.buf) + len < batch_max;
            if frame.records() > 0 && !fits {
                break;
            }
            let buf = &mut self.buf;
            ring.take(self.next, |payload| frame.push(buf, payload));
            self.next += 1;
        }
        let records = frame.records();
        let last = frame.seal(&mut self.buf);
        debug_assert_eq!(last + 1, self.next);
        ring.advance(self.next);
        self.shared.space_waiters.wake(&mut self.space_pending, self.next);
        if self.segment_len >= self.shared.options.segment_bytes_max {
            self.rollover(first)?;
        }
        self.append_to_file()?;
        self.segment_len += self.buf.len() as u64;
        self.written = last;
        let counters = &self.shared.counters;
        // Relaxed: statistics (shared.rs # Orderings 5).
        counters.frames.fetch_add(1, Ordering::Relaxed);
        counters.records.fetch_add(records, Ordering::Relaxed);
        counters.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn append_to_file(&mut self) -> Result<(), Failure> {
        #[cfg(test)]
        {
            let faults = &self.shared.faults;
            let call = faults.writes.fetch_add(1, Ordering::Relaxed) + 1;
            if faults.fail_write_at.load(Ordering::Relaxed) == call {
                return Err(self.failure(io::Error::new(io::ErrorKind::StorageFull, "injected"), "write"));
            }
        }
        let result = self.file.write_all(&self.buf);
        result.map_err(|error| self.failure(error, "write"))
    }

    /// Syncs what was written and publishes it; a no-op if nothing is new.
    fn sync(&mut self) -> Result<(), Failure> {
        if self.written == self.synced {
            return Ok(());
        }
        #[cfg(test)]
        {
            let faults = &self.shared.faults;
            let call = faults.syncs.fetch_add(1, Ordering::Relaxed) + 1;
            if faults.fail_sync_at.load(Ordering::Relaxed) == call {
                return Err(self.failure(io::Error::other("injected"), "fdatasync"));
            }
        }
        let result = self.file.sync_data();
        result.map_err(|error| self.failure(error, "fdatasync"))?;
        // Relaxed: statistics (shared.rs # Orderings 5).
        self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        if let Some(since) = self.unsynced_since.take() {
            let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // Relaxed: statistics (shared.rs # Orderings 5).
            self.shared.counters.loss_window_max_nanos.fetch_max(nanos, Ordering::Relaxed);
        }
        self.last_group = self.written - self.synced;
        self.synced = self.written;
        self.publish(self.synced);
        Ok(())
    }

    /// Publishes `durable` and wakes the waiters it satisfies.
    fn publish(&mut self, durable: u64) {
        // Release: pairs with `Shared::durable`'s Acquire (shared.rs # Orderings 1).
        self.shared.durable.store(durable, Ordering::Release);
        self.shared.durable_waiters.wake(&mut self.durable_pending, durable);
    }

    /// Syncs and closes the current segment, then creates the one starting
    /// at `first` and appends to it from now on.
    fn rollover(&mut self, first: u64) -> Result<(), Failure> {
        self.sync()?;
        let dir = self.shared.dir.clone();
        let file = create_segment(&dir, first).map_err(|error| self.failure(error, "creating a segment"))?;
        self.file = file;
        self.segment_len = super::format::SEGMENT_HEADER_LEN as u64;
        self.shared.segments.lock().push(first);
        // Relaxed: statistics (shared.rs # Orderings 5).
        self.shared.counters.segments_created.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn failure(&self, error: io::Error, doing: &str) -> Failure {
        Failure { durable_through: self.synced, kind: error.kind(), message: format!("{doing}: {error}") }
    }

    /// Records the failure, refuses every later append, fails every waiter
    /// not yet durable, and drains the ring (discarding) until the close so
    /// that no producer waits for room forever.
    fn fail(&mut self, failure: Failure) {
        let shared = Arc::clone(&self.shared);
        *shared.failure.lock() = Some(failure);
        // Release: after the failure's details and the last durable store (shared.rs # Orderings 2).
        shared.failed.store(true, Ordering::Release);
        shared.ring.close();
        shared.durable_waiters.wake_all(&mut self.durable_pending);
        // Bounded by the final tail: every claim below it is filled within
        // a few instructions (or after the room this loop makes); the final
        // tail itself is known a few instructions after the close.
        while shared.ring.final_tail().is_none_or(|final_tail| self.next < final_tail) {
            if shared.ring.is_filled(self.next) {
                shared.ring.take(self.next, |_| ());
                self.next += 1;
                shared.ring.advance(self.next);
                shared.space_waiters.wake(&mut self.space_pending, self.next);
            } else {
                thread::yield_now();
            }
        }
        shared.space_waiters.wake_all(&mut self.space_pending);
        shared.durable_waiters.wake_all(&mut self.durable_pending);
    }
}
