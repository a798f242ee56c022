//! The public handle: [`Journal`] (append, wait, read, snapshot, close),
//! [`Receipt`] and [`JournalStats`].
//!
//! Owns: the append path (validate, claim, wait for room, fill, wake the
//! writer) and the life of the writer thread.
//!
//! Must never: take a lock on the append path, acknowledge a `Sync` append
//! before it is durable, or return from [`Journal::close`] with a claimed
//! record neither durable nor failed.

use super::error::{AppendError, DurabilityError, Failure};
use super::ring::ClaimError;
use super::shared::Shared;
use super::waitlist::wait_for_slot;
use super::writer::Writer;
use super::{Durability, JournalOptions};
use crate::sync::{Arc, Mutex, Ordering};
use std::fmt;
use std::fs::File;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A durable, segmented, checksummed log of opaque records, appended by
/// many threads at once and group-committed by one writer thread.
///
/// Open one with [`Journal::open`], which recovers what is on disk first.
/// See the [module documentation](super) for the guarantees.
///
/// ```
/// use stockroom::journal::{Durability, Journal, JournalOptions};
///
/// let dir = std::env::temp_dir().join(format!("stockroom-doc-journal-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let (journal, _report) = Journal::open(&dir, JournalOptions::new(Durability::Sync))?.finish()?;
/// let seq = journal.append_acknowledged(b"hold 3 of sku 7")?; // returns once on disk
/// assert_eq!(seq, 1);
/// assert!(journal.durable_seq() >= 1);
/// journal.close()?;
///
/// let mut recovery = Journal::open(&dir, JournalOptions::new(Durability::Sync))?;
/// let record = recovery.next_record()?.expect("the record survived");
/// assert_eq!((record.seq, record.payload), (1, &b"hold 3 of sku 7"[..]));
/// # drop(recovery); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Journal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A record's place in the journal, returned by [`Journal::append`]: poll
/// it or wait on it for the record's durability.
///
/// It borrows the journal; a handle that must outlive the borrow (a
/// ticket, a future) keeps the sequence number and an `Arc<Journal>` and
/// asks [`Journal::wait_durable`] / [`Journal::is_durable`].
#[derive(Clone, Copy)]
#[must_use = "a receipt says when the record is durable"]
pub struct Receipt<'a> {
    seq: u64,
    journal: &'a Journal,
}

impl Receipt<'_> {
    /// The record's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// True once the record is durable (under the journal's mode: synced
    /// for `Sync` and `Batched`, written to the OS for `Off`); an error if
    /// it never will be. Takes no lock and never waits.
    pub fn is_durable(&self) -> Result<bool, DurabilityError> {
        self.journal.is_durable(self.seq)
    }

    /// Blocks until the record is durable; its sequence number.
    pub fn wait(&self) -> Result<u64, DurabilityError> {
        self.journal.wait_durable(self.seq).map(|()| self.seq)
    }

    /// Blocks until the record is durable (`Ok(true)`) or `timeout` passes
    /// (`Ok(false)`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, DurabilityError> {
        self.journal.wait_durable_until(self.seq, Instant::now().checked_add(timeout))
    }
}

impl fmt::Debug for Receipt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt").field("seq", &self.seq).finish()
    }
}

/// A moment's view of the journal's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// The next sequence number an append gets.
    pub next_seq: u64,
    /// Every record up to this one is durable.
    pub durable_seq: u64,
    /// Syncs (`fdatasync`) done.
    pub syncs: u64,
    /// Frames written.
    pub frames: u64,
    /// Records written.
    pub records: u64,
    /// Frame bytes written (headers and records; segment headers excluded).
    pub bytes: u64,
    /// Segments created since open.
    pub segments_created: u64,
    /// `Batched`: the longest time a written record waited for its sync,
    /// from the writer taking it to the sync returning: the measured loss
    /// window.
    pub loss_window_max: Duration,
}

impl Journal {
    /// Starts the writer thread over a recovered journal.
    pub(crate) fn start(shared: Shared, file: File, segment_len: u64) -> std::io::Result<Journal> {
        let shared = Arc::new(shared);
        let writer = Writer::new(Arc::clone(&shared), file, segment_len);
        #[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
        let handle = {
            let handle = std::thread::Builder::new().name("stockroom-journal".into()).spawn(move || writer.run())?;
            *shared.writer_thread.lock() = Some(handle.thread().clone());
            // The writer may have parked before its handle was stored; wake it
            // once, so that every later wake-up finds the handle in place.
            handle.thread().unpark();
            handle
        };
        // Under a checker the writer registers its own (checker) handle;
        // the models drive the protocols directly rather than a whole
        // journal (see `loom.rs`).
        #[cfg(any(stockroom_loom, stockroom_shuttle))]
        let handle = {
            let registered = Arc::clone(&shared);
            std::thread::Builder::new().name("stockroom-journal".into()).spawn(move || {
                *registered.writer_thread.lock() = Some(crate::sync::thread::current());
                writer.run()
            })?
        };
        Ok(Journal { shared, writer: Mutex::new(Some(handle)) })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &JournalOptions {
        &self.shared.options
    }

    /// Appends `payload`; returns at once with its [`Receipt`] (whatever the
    /// mode), after waiting only if the ring is full.
    ///
    /// Takes no lock: one fetch-add claims the sequence number, the payload
    /// is copied into the ring, and the writer is woken if it sleeps.
    pub fn append(&self, payload: &[u8]) -> Result<Receipt<'_>, AppendError> {
        self.check_len(payload)?;
        let seq = self.shared.ring.claim().map_err(|error| self.claim_error(error))?;
        wait_for_slot(&self.shared.ring, &self.shared.space_waiters, seq);
        self.fill(seq, payload);
        Ok(Receipt { seq, journal: self })
    }

    /// Appends `payload` if the ring has room now; never waits.
    pub fn try_append(&self, payload: &[u8]) -> Result<Receipt<'_>, AppendError> {
        self.check_len(payload)?;
        let seq = self.shared.ring.try_claim().map_err(|error| self.claim_error(error))?;
        debug_assert!(self.shared.ring.is_free(seq));
        self.fill(seq, payload);
        Ok(Receipt { seq, journal: self })
    }

    /// Appends `payload` and returns its sequence number once the mode
    /// acknowledges it: `Sync` once it is on disk, `Batched` and `Off` at
    /// once.
    pub fn append_acknowledged(&self, payload: &[u8]) -> Result<u64, AppendError> {
        let receipt = self.append(payload)?;
        if self.shared.options.durability == Durability::Sync {
            match receipt.wait() {
                Ok(_) => {}
                Err(DurabilityError::Failed(failure)) => return Err(AppendError::Failed(failure)),
                Err(error @ DurabilityError::NotAppended { .. }) => unreachable!("a receipt's record: {error}"),
            }
        }
        Ok(receipt.seq)
    }

    fn check_len(&self, payload: &[u8]) -> Result<(), AppendError> {
        let max = self.shared.options.record_bytes_max;
        if payload.len() > max {
            return Err(AppendError::TooLarge { len: payload.len(), max });
        }
        Ok(())
    }

    fn claim_error(&self, error: ClaimError) -> AppendError {
        match (error, self.shared.failure()) {
            (ClaimError::Full, _) => AppendError::Full,
            (ClaimError::Closed, Some(failure)) => AppendError::Failed(failure),
            (ClaimError::Closed, None) => AppendError::Closed,
        }
    }

    fn fill(&self, seq: u64, payload: &[u8]) {
        self.shared.ring.fill(seq, payload);
        self.shared.nudge_writer();
    }

    /// True once record `seq` is durable; an error if it never will be (or
    /// was never appended). Takes no lock and never waits.
    pub fn is_durable(&self, seq: u64) -> Result<bool, DurabilityError> {
        self.check_appended(seq)?;
        self.shared.durability(seq).transpose().map(|done| done.is_some())
    }

    /// Blocks until record `seq` is durable.
    pub fn wait_durable(&self, seq: u64) -> Result<(), DurabilityError> {
        self.wait_durable_until(seq, None).map(|durable| debug_assert!(durable))
    }

    /// Blocks until record `seq` is durable (`Ok(true)`) or `deadline`
    /// passes (`Ok(false)`).
    pub(crate) fn wait_durable_until(&self, seq: u64, deadline: Option<Instant>) -> Result<bool, DurabilityError> {
        self.check_appended(seq)?;
        match self.shared.durable_waiters.wait(seq, deadline, || self.shared.durability(seq)) {
            Some(result) => result.map(|()| true),
            None => Ok(false),
        }
    }

    fn check_appended(&self, seq: u64) -> Result<(), DurabilityError> {
        let next = self.shared.ring.tail();
        if seq == 0 || seq >= next {
            return Err(DurabilityError::NotAppended { seq, next });
        }
        Ok(())
    }

    /// Every record up to this sequence number is durable (0: none).
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable()
    }

    /// The sequence number the next append gets (as of now).
    pub fn next_seq(&self) -> u64 {
        self.shared.ring.tail()
    }

    /// The failure, if a write or sync failed.
    pub fn failure(&self) -> Option<Failure> {
        self.shared.failure()
    }

    /// Keeps every segment holding records at or after `seq`, even once a
    /// snapshot covers them: a change feed that will resume from `seq`
    /// still finds them. `u64::MAX` (the default) keeps nothing extra.
    pub fn retain_from(&self, seq: u64) {
        // Relaxed: read by the snapshot's compaction, on the admin path;
        // a compaction racing this call may use the old floor.
        self.shared.retain_from.store(seq, Ordering::Relaxed);
    }

    /// The counters.
    pub fn stats(&self) -> JournalStats {
        let counters = &self.shared.counters;
        // Relaxed: statistics (shared.rs # Orderings 5).
        let load = |counter: &crate::sync::AtomicU64| counter.load(Ordering::Relaxed);
        JournalStats {
            next_seq: self.next_seq(),
            durable_seq: self.durable_seq(),
            syncs: load(&counters.syncs),
            frames: load(&counters.frames),
            records: load(&counters.records),
            bytes: load(&counters.bytes),
            segments_created: load(&counters.segments_created),
            loss_window_max: Duration::from_nanos(load(&counters.loss_window_max_nanos)),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting appends, writes and syncs every record already
    /// appended, and stops the writer. Returns the last durable sequence,
    /// or the failure that stopped the journal. Idempotent; dropping the
    /// journal does the same.
    pub fn close(&self) -> Result<u64, Failure> {
        self.shared.ring.close();
        self.shared.nudge_writer();
        if let Some(handle) = self.writer.lock().take() {
            // A panic on the writer thread is a bug; surface it (unless this
            // thread is already unwinding).
            if let Err(panic) = handle.join() {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
        match self.shared.failure() {
            Some(failure) => Err(failure),
            None => Ok(self.durable_seq()),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.shared.dir)
            .field("durability", &self.shared.options.durability)
            .field("next_seq", &self.next_seq())
            .field("durable_seq", &self.durable_seq())
            .finish()
    }
}
