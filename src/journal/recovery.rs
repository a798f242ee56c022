//! Opening a journal: choose the newest valid snapshot, walk the chain of
//! segments after it verifying every frame, hand each record to the host,
//! truncate a torn tail, and start the writer where the chain ends.
//!
//! Owns: [`Recovery`], [`Record`], [`RecoveryReport`] and the rules that
//! decide which files recovery reads.
//!
//! Must never: yield a record that failed a check, skip one, yield one
//! twice, or truncate anything but a torn tail of the last segment. A
//! damaged snapshot is never loaded: recovery falls back to the next older
//! valid one (and reports the refused one), and fails if the journal no
//! longer holds what that older snapshot needs.

use super::error::{Damage, DamageKind, OpenError};
use super::files::{create_segment, list, sync_dir};
use super::format::get_varint;
use super::log::Journal;
use super::options::JournalOptions;
use super::scan::{ScanError, SegmentScan, Step, TornTail};
use super::shared::Shared;
use super::snapshot::{SnapshotImage, load_snapshot};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// One record: its sequence number and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The sequence number (consecutive from 1 across the journal).
    pub seq: u64,
    /// The bytes appended.
    pub payload: &'a [u8],
}

/// What a recovery found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The covered sequence of the snapshot loaded, if any.
    pub snapshot_seq: Option<u64>,
    /// Newer snapshots refused (damaged), newest first, with where.
    pub refused_snapshots: Vec<Damage>,
    /// Records handed out by [`Recovery::next_record`] (after the snapshot).
    pub replayed: u64,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    /// The torn tail truncated, if the last write was cut short.
    pub torn: Option<TornTail>,
    /// Segments read.
    pub segments_read: usize,
}

/// A journal being recovered: read the snapshot, then every record after
/// it, then [`finish`](Recovery::finish) to get the [`Journal`].
///
/// Every record handed out passed its checks. Damage stops the recovery
/// with a [`Damage`] (file and byte offset); nothing is written to disk
/// until [`finish`](Recovery::finish).
pub struct Recovery {
    dir: PathBuf,
    options: JournalOptions,
    snapshot: Option<SnapshotImage>,
    refused_snapshots: Vec<Damage>,
    /// Every segment in the directory (first sequence, path).
    segments: Vec<(u64, PathBuf)>,
    /// Index into `segments` of the first one the chain reads.
    chain_start: usize,
    /// Index into `segments` of the one being read.
    current: usize,
    scan: Option<SegmentScan>,
    /// Records up to this one are covered by the snapshot: checked, not
    /// handed out.
    skip_through: u64,
    /// The next record in the current frame: byte offset and sequence.
    frame_at: usize,
    frame_seq: u64,
    frame_end: u64,
    /// The sequence the chain needs next.
    next_seq: u64,
    torn: Option<TornTail>,
    done: bool,
    replayed: u64,
    segments_read: usize,
}

impl Journal {
    /// Opens (creating if need be) the journal in `dir` and starts its
    /// recovery. Nothing is written until [`Recovery::finish`].
    pub fn open(dir: impl AsRef<Path>, options: JournalOptions) -> Result<Recovery, OpenError> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let listing = list(&dir).map_err(io(&dir))?;
        for temporary in &listing.temporaries {
            fs::remove_file(temporary).map_err(io(temporary))?;
        }
        let mut refused_snapshots = Vec::new();
        let mut snapshot = None;
        // Newest first; bounded by the snapshots present.
        for (seq, path) in listing.snapshots.iter().rev() {
            match load_snapshot(path, *seq) {
                Ok(image) => {
                    snapshot = Some(image);
                    break;
                }
                Err(ScanError::Damaged(damage)) => refused_snapshots.push(damage),
                Err(ScanError::Io(path, source)) => return Err(OpenError::Io { path, source }),
            }
        }
        if snapshot.is_none() {
            if let Some(damage) = refused_snapshots.first() {
                return Err(OpenError::Damaged(damage.clone()));
            }
        }
        let start = snapshot.as_ref().map_or(1, |image| image.seq() + 1);
        let segments = listing.segments;
        // The chain starts at the last segment whose first record is at or
        // before `start`.
        let chain_start = match segments.iter().rposition(|(first, _)| *first <= start) {
            Some(index) => index,
            None if segments.is_empty() => 0,
            None => {
                let (found, file) = segments[0].clone();
                return Err(OpenError::Damaged(Damage {
                    file,
                    offset: 0,
                    kind: DamageKind::Gap { expected: start, found },
                }));
            }
        };
        let next_seq = segments.get(chain_start).map_or(start, |(first, _)| *first);
        let done = segments.is_empty();
        Ok(Recovery {
            dir,
            options,
            snapshot,
            refused_snapshots,
            segments,
            chain_start,
            current: chain_start,
            scan: None,
            skip_through: start - 1,
            frame_at: 0,
            frame_seq: 0,
            frame_end: 0,
            next_seq,
            torn: None,
            done,
            replayed: 0,
            segments_read: 0,
        })
    }
}

impl Recovery {
    /// The snapshot recovery starts from, if any: load it before replaying.
    pub fn snapshot(&self) -> Option<&SnapshotImage> {
        self.snapshot.as_ref()
    }

    /// Snapshots refused so far (damaged, newer than the one loaded).
    pub fn refused_snapshots(&self) -> &[Damage] {
        &self.refused_snapshots
    }

    /// The next record after the snapshot, verified; `None` at the end of
    /// the journal (a torn tail ends it too, and is reported by
    /// [`finish`](Recovery::finish)).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, OpenError> {
        // Bounded by the records and frames on disk: each pass consumes a
        // record, a frame or a segment.
        loop {
            if self.frame_seq < self.frame_end {
                let scan = self.scan.as_ref().expect("a frame is read from a segment");
                let (len, prefix) = get_varint(scan.body(), self.frame_at).expect("the frame was checked");
                let start = self.frame_at + prefix;
                self.frame_at = start + len;
                let seq = self.frame_seq;
                self.frame_seq += 1;
                if seq <= self.skip_through {
                    continue;
                }
                self.replayed += 1;
                let payload = &self.scan.as_ref().expect("checked above").body()[start..start + len];
                return Ok(Some(Record { seq, payload }));
            }
            if self.done {
                return Ok(None);
            }
            self.advance().map_err(open_error)?;
        }
    }

    /// Reads the next frame, or moves to the next segment.
    fn advance(&mut self) -> Result<(), ScanError> {
        let is_last = self.current + 1 == self.segments.len();
        if self.scan.is_none() {
            let (first, path) = &self.segments[self.current];
            self.segments_read += 1;
            match SegmentScan::open(path, *first, self.next_seq, is_last)? {
                Ok(scan) => self.scan = Some(scan),
                Err(torn) => {
                    self.torn = Some(torn);
                    self.done = true;
                    return Ok(());
                }
            }
        }
        let scan = self.scan.as_mut().expect("opened above");
        match scan.next_frame()? {
            Step::Frame { first_seq, records } => {
                self.frame_at = 0;
                self.frame_seq = first_seq;
                self.frame_end = first_seq + records;
                self.next_seq = scan.expected();
            }
            Step::End if is_last => self.done = true,
            Step::End => {
                self.scan = None;
                self.current += 1;
            }
            Step::Torn(torn) => {
                self.torn = Some(torn);
                self.done = true;
            }
        }
        Ok(())
    }

    /// Verifies whatever was not read yet, truncates a torn tail, and
    /// starts the journal for appending after the last record.
    pub fn finish(mut self) -> Result<(Journal, RecoveryReport), OpenError> {
        // Bounded by the records on disk.
        while self.next_record()?.is_some() {}
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        if let Some(torn) = &self.torn {
            if torn.offset == 0 {
                fs::remove_file(&torn.file).map_err(io(&torn.file))?;
                self.segments.retain(|(_, path)| *path != torn.file);
                sync_dir(&self.dir).map_err(io(&self.dir))?;
            } else {
                let file = OpenOptions::new().write(true).open(&torn.file).map_err(io(&torn.file))?;
                file.set_len(torn.offset).map_err(io(&torn.file))?;
                file.sync_all().map_err(io(&torn.file))?;
            }
        }
        let start = self.skip_through + 1;
        // A journal that ends before its snapshot (its tail was lost, and the
        // snapshot covers it) continues in a new segment at the snapshot's
        // next sequence, so that no sequence number is given twice.
        let next_seq = self.next_seq.max(start);
        let reuse_last = self.segments.len() > self.chain_start && self.next_seq >= start;
        let (file, segment_len) = if reuse_last {
            let path = &self.segments.last().expect("non-empty").1;
            let file = OpenOptions::new().append(true).open(path).map_err(io(path))?;
            let len = file.metadata().map_err(io(path))?.len();
            (file, len)
        } else {
            let file = create_segment(&self.dir, next_seq).map_err(io(&self.dir))?;
            let path = self.dir.join(super::files::segment_name(next_seq));
            self.segments.push((next_seq, path));
            (file, super::format::SEGMENT_HEADER_LEN as u64)
        };
        let report = RecoveryReport {
            snapshot_seq: self.snapshot.as_ref().map(SnapshotImage::seq),
            refused_snapshots: self.refused_snapshots,
            replayed: self.replayed,
            next_seq,
            torn: self.torn,
            segments_read: self.segments_read,
        };
        let firsts = self.segments.iter().map(|(first, _)| *first).collect();
        let shared = Shared::new(self.dir.clone(), self.options, next_seq, firsts);
        let journal = Journal::start(shared, file, segment_len).map_err(io(&self.dir))?;
        Ok((journal, report))
    }
}

fn open_error(error: ScanError) -> OpenError {
    match error {
        ScanError::Damaged(damage) => OpenError::Damaged(damage),
        ScanError::Io(path, source) => OpenError::Io { path, source },
    }
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("dir", &self.dir)
            .field("snapshot_seq", &self.snapshot.as_ref().map(SnapshotImage::seq))
            .field("next_seq", &self.next_seq)
            .field("replayed", &self.replayed)
            .finish()
    }
}
