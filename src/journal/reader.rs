//! The change feed: read durable records from any position, across
//! segments, waiting for more with a timeout; resume after a restart from
//! the position stored.
//!
//! Owns: [`Reader`].
//!
//! Must never: return a record that is not durable (a crash could take it
//! back, and an outbox would have published something that never
//! happened), skip one, return one twice, or return one that failed its
//! checks.
//!
//! A reader reads the segment files with its own file handles and verifies
//! every frame as recovery does. It reads a frame only once the durable
//! watermark has reached the frame's first record: the writer writes a
//! whole frame before the sync that makes any of it durable, so such a
//! frame is complete in the file.

use super::error::{Damage, DamageKind, ReadError};
use super::files::segment_name;
use super::format::get_varint;
use super::log::Journal;
use super::recovery::Record;
use super::scan::{ScanError, SegmentScan, Step};
use super::shared::Shared;
use crate::sync::Arc;
use std::io;
use std::time::{Duration, Instant};

/// A change-feed cursor over a [`Journal`] (see the module docs).
///
/// ```
/// use stockroom::journal::{Durability, Journal, JournalOptions};
/// use std::time::Duration;
///
/// let dir = std::env::temp_dir().join(format!("stockroom-doc-reader-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let (journal, _) = Journal::open(&dir, JournalOptions::new(Durability::Sync))?.finish()?;
/// let mut feed = journal.reader(1)?;
/// journal.append_acknowledged(b"first")?;
/// let record = feed.next_timeout(Duration::from_secs(5))?.expect("durable, so readable");
/// assert_eq!((record.seq, record.payload), (1, &b"first"[..]));
/// assert_eq!(feed.position(), 2); // store this; resume with journal.reader(2)
/// assert!(feed.try_next()?.is_none());
/// # drop(feed); drop(journal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reader {
    shared: Arc<Shared>,
    /// The next sequence to return.
    position: u64,
    scan: Option<SegmentScan>,
    frame_at: usize,
    frame_seq: u64,
    frame_end: u64,
}

impl Journal {
    /// A change-feed reader whose first record is `from` (1 for the
    /// beginning; a stored [`Reader::position`] to resume).
    pub fn reader(&self, from: u64) -> Result<Reader, ReadError> {
        let from = from.max(1);
        let next = self.next_seq();
        if from > next {
            return Err(ReadError::Beyond { requested: from, next });
        }
        let first_available = self.shared().segments.lock().first().copied().unwrap_or(next);
        if from < first_available {
            return Err(ReadError::Compacted { requested: from, first_available });
        }
        Ok(Reader {
            shared: Arc::clone(self.shared()),
            position: from,
            scan: None,
            frame_at: 0,
            frame_seq: 0,
            frame_end: 0,
        })
    }
}

impl Reader {
    /// The next sequence number this reader returns: the position to store
    /// for resuming.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next durable record, or `None` if there is none yet. Never
    /// waits for the writer.
    pub fn try_next(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        if self.ready()? { Ok(Some(self.take())) } else { Ok(None) }
    }

    /// The next durable record, waiting up to `timeout` for one.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record<'_>>, ReadError> {
        let deadline = Instant::now().checked_add(timeout);
        // Bounded by the deadline: each pass follows a wake-up by the writer.
        loop {
            if self.ready()? {
                return Ok(Some(self.take()));
            }
            let shared = Arc::clone(&self.shared);
            let position = self.position;
            let woke = shared.durable_waiters.wait(position, deadline, || {
                (shared.durable() >= position || shared.failure().is_some()).then_some(())
            });
            if woke.is_none() || (shared.durable() < position && shared.failure().is_some()) {
                return Ok(None);
            }
        }
    }

    /// Moves to the next record to return; false if none is durable yet.
    fn ready(&mut self) -> Result<bool, ReadError> {
        // Bounded by the records between the segment's start and the
        // position (each pass consumes a record or a frame), and by the
        // segments (each pass at a segment's end moves to the next).
        loop {
            while self.frame_seq < self.frame_end {
                if self.frame_seq >= self.position {
                    return Ok(true);
                }
                self.skip_record();
            }
            if self.shared.durable() < self.position {
                return Ok(false);
            }
            if self.scan.is_none() {
                self.scan = Some(self.open_segment(self.position)?);
            }
            let scan = self.scan.as_mut().expect("opened above");
            let path = scan.path().to_path_buf();
            scan.refresh_len().map_err(|source| ReadError::Io { path: path.clone(), source })?;
            if scan.at_end() {
                // Durable records past this segment's end are in the next
                // one, which rollover named after its first record.
                let next = scan.expected();
                let ended = Damage { file: path, offset: scan.offset(), kind: DamageKind::Truncated };
                let following = self.open_segment(next)?;
                if following.expected() != next {
                    return Err(ReadError::Damaged(ended));
                }
                self.scan = Some(following);
                continue;
            }
            match scan.next_frame() {
                Ok(Step::Frame { first_seq, records }) => {
                    self.frame_at = 0;
                    self.frame_seq = first_seq;
                    self.frame_end = first_seq + records;
                }
                Ok(Step::End) => {}
                Ok(Step::Torn(torn)) => unreachable!("a reader never reads a segment as the last: {torn:?}"),
                Err(ScanError::Damaged(damage)) => return Err(ReadError::Damaged(damage)),
                Err(ScanError::Io(path, source)) => return Err(ReadError::Io { path, source }),
            }
        }
    }

    fn skip_record(&mut self) {
        let body = self.scan.as_ref().expect("a frame is read from a segment").body();
        let (len, prefix) = get_varint(body, self.frame_at).expect("the frame was checked");
        self.frame_at += prefix + len;
        self.frame_seq += 1;
    }

    /// The record at the cursor (after `ready` said there is one).
    fn take(&mut self) -> Record<'_> {
        let seq = self.frame_seq;
        let at = self.frame_at;
        self.skip_record();
        self.position = seq + 1;
        let body = self.scan.as_ref().expect("a frame is read from a segment").body();
        let (len, prefix) = get_varint(body, at).expect("the frame was checked");
        Record { seq, payload: &body[at + prefix..at + prefix + len] }
    }

    /// Opens the segment holding sequence `seq`, positioned at its start.
    fn open_segment(&self, seq: u64) -> Result<SegmentScan, ReadError> {
        let (first, first_available) = {
            let segments = self.shared.segments.lock();
            let first_available = segments.first().copied().unwrap_or(seq);
            (segments.iter().rev().find(|first| **first <= seq).copied(), first_available)
        };
        let compacted = ReadError::Compacted { requested: seq, first_available };
        let Some(first) = first else { return Err(compacted) };
        let path = self.shared.dir.join(segment_name(first));
        match SegmentScan::open(&path, first, first, false) {
            Ok(Ok(scan)) => Ok(scan),
            Ok(Err(torn)) => unreachable!("a reader never reads a segment as the last: {torn:?}"),
            Err(ScanError::Io(_, source)) if source.kind() == io::ErrorKind::NotFound => Err(compacted),
            Err(ScanError::Io(path, source)) => Err(ReadError::Io { path, source }),
            Err(ScanError::Damaged(damage)) => Err(ReadError::Damaged(damage)),
        }
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("position", &self.position).finish()
    }
}
