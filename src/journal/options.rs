//! The host's choices: durability mode and the journal's bounds.
//!
//! Owns: [`Durability`] and [`JournalOptions`], with their defaults and the
//! checks that keep them consistent.
//!
//! Must never: let a bound be zero or unbounded.

use super::error::OpenError;
use super::format::{FRAME_BODY_MAX, RECORD_BYTES_LIMIT};
use std::time::Duration;

/// When an append is acknowledged, and when it is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Acknowledged only once on disk (`fdatasync`). Group commit: one sync
    /// covers every record that arrived while the previous sync ran.
    Sync,
    /// Acknowledged at once; the writer syncs at least every `max_delay`
    /// while it has unsynced records. A record taken by the writer at `t`
    /// is on disk by `t + max_delay + one sync`; a crash may lose what was
    /// acknowledged in that window ([`JournalStats::loss_window_max`]
    /// reports the longest one seen).
    ///
    /// [`JournalStats::loss_window_max`]: super::JournalStats::loss_window_max
    Batched {
        /// The longest the writer waits before syncing unsynced records.
        max_delay: Duration,
    },
    /// Acknowledged at once and written to the operating system, never
    /// synced by the journal (except at [`close`](super::Journal::close)
    /// and at segment rollover): survives the process crashing, not the
    /// machine.
    Off,
}

/// The journal's settings.
///
/// ```
/// use stockroom::journal::{Durability, JournalOptions};
/// use std::time::Duration;
///
/// let options = JournalOptions::new(Durability::Batched { max_delay: Duration::from_millis(5) })
///     .segment_bytes_max(64 << 20)
///     .ring_capacity(4096);
/// assert_eq!(options.durability(), Durability::Batched { max_delay: Duration::from_millis(5) });
/// ```
#[derive(Clone, Debug)]
pub struct JournalOptions {
    pub(crate) durability: Durability,
    pub(crate) segment_bytes_max: u64,
    pub(crate) ring_capacity: usize,
    pub(crate) batch_bytes_max: usize,
    pub(crate) record_bytes_max: usize,
    pub(crate) gather_max: Duration,
    pub(crate) snapshots_kept: usize,
}

impl JournalOptions {
    /// The defaults for `durability`: 64 MiB segments, a ring of 16,384
    /// records, frames of up to 1 MiB, records of up to 1 MiB, no gather
    /// window, two snapshots kept.
    pub fn new(durability: Durability) -> JournalOptions {
        JournalOptions {
            durability,
            segment_bytes_max: 64 << 20,
            ring_capacity: 1 << 14,
            batch_bytes_max: 1 << 20,
            record_bytes_max: 1 << 20,
            gather_max: Duration::ZERO,
            snapshots_kept: 2,
        }
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// A segment is closed and a new one begun at the first frame boundary
    /// past this many bytes.
    pub fn segment_bytes_max(mut self, bytes: u64) -> JournalOptions {
        self.segment_bytes_max = bytes;
        self
    }

    /// Records appended but not yet taken by the writer, at most (rounded
    /// up to a power of two); an append past it waits (back-pressure).
    pub fn ring_capacity(mut self, records: usize) -> JournalOptions {
        self.ring_capacity = records.max(2).checked_next_power_of_two().unwrap_or(usize::MAX);
        self
    }

    /// Bytes one frame (one gather of the writer, one write) holds at most;
    /// a record larger than this gets a frame of its own.
    pub fn batch_bytes_max(mut self, bytes: usize) -> JournalOptions {
        self.batch_bytes_max = bytes;
        self
    }

    /// The largest payload an append accepts.
    pub fn record_bytes_max(mut self, bytes: usize) -> JournalOptions {
        self.record_bytes_max = bytes;
        self
    }

    /// `Sync` only: after a group commit acknowledged `n` records, the
    /// writer waits up to this long (yielding) for about `n` records
    /// before its next sync, so that the callers it just woke join it
    /// rather than the sync after. Zero (the default) syncs whatever is
    /// there. On the shared machine the benches ran on, a 200 µs window
    /// raised the records per sync a little (15.5 against 11.5 to 14 with
    /// 16 callers) but its throughput was better in two runs and worse in
    /// two: not shown to pay, so off until measured on a quiet machine
    /// (`benches/journal.rs`, `STOCKROOM_BENCH_GATHER_US`).
    pub fn gather_max(mut self, window: Duration) -> JournalOptions {
        self.gather_max = window;
        self
    }

    /// Snapshots kept on disk (the newest and the ones before it, as
    /// fallbacks); segments are deleted once the oldest kept snapshot
    /// covers them.
    pub fn snapshots_kept(mut self, count: usize) -> JournalOptions {
        self.snapshots_kept = count;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), OpenError> {
        if self.segment_bytes_max < 4096 {
            return Err(OpenError::Options("segment_bytes_max below 4096"));
        }
        if self.ring_capacity < 2 || self.ring_capacity > 1 << 24 {
            return Err(OpenError::Options("ring_capacity outside 2..=2^24"));
        }
        if self.batch_bytes_max == 0 || self.batch_bytes_max > FRAME_BODY_MAX {
            return Err(OpenError::Options("batch_bytes_max outside 1..=2^24-1"));
        }
        if self.record_bytes_max > RECORD_BYTES_LIMIT {
            return Err(OpenError::Options("record_bytes_max above 2^24-5"));
        }
        if self.gather_max > Duration::from_secs(1) {
            return Err(OpenError::Options("gather_max above one second"));
        }
        if let Durability::Batched { max_delay } = self.durability {
            if max_delay.is_zero() || max_delay > Duration::from_secs(60) {
                return Err(OpenError::Options("Batched max_delay outside (0, 60 s]"));
            }
        }
        if self.snapshots_kept == 0 || self.snapshots_kept > 16 {
            return Err(OpenError::Options("snapshots_kept outside 1..=16"));
        }
        Ok(())
    }
}
