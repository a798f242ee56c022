//! Snapshot files: the host's opaque image of its whole state as of a
//! sequence number, written atomically, loaded at recovery, and the
//! compaction it allows (older snapshots and covered segments deleted).
//!
//! Owns: [`SnapshotWriter`] (stream the image, then `finish`),
//! [`SnapshotImage`] (what recovery loaded), [`SnapshotInfo`], and
//! compaction.
//!
//! Must never: make a snapshot visible before its covered records are
//! durable (it would outlive records whose callers were told they failed);
//! make a half-written snapshot visible (temporary file, sync, rename, sync
//! the directory); delete a segment that the oldest kept snapshot does not
//! cover, the segment being appended to, or one a change feed retains.
//!
//! What the image contains and how it is made consistent without stopping
//! writers is the host's: the journal stores bytes. The host must make the
//! image reflect exactly the records up to its sequence number.

use super::error::{Damage, DamageKind, SnapshotError};
use super::files::{list, snapshot_name, sync_dir};
use super::format::{SNAPSHOT_HEADER_LEN, parse_snapshot_header, snapshot_crc, snapshot_header};
use super::log::Journal;
use super::scan::ScanError;
use super::shared::Shared;
use crate::sync::Ordering;
use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A snapshot loaded by recovery: the host's image and the sequence number
/// it covers (every record up to it is in the image; replay the rest).
#[derive(Clone, PartialEq, Eq)]
pub struct SnapshotImage {
    seq: u64,
    bytes: Vec<u8>,
    path: PathBuf,
}

impl SnapshotImage {
    /// The last sequence number the image covers.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The image, as the host wrote it (checksum verified).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for SnapshotImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotImage").field("seq", &self.seq).field("bytes", &self.bytes.len()).finish()
    }
}

/// A written snapshot, and what its compaction deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// The covered sequence number.
    pub seq: u64,
    /// The file.
    pub path: PathBuf,
    /// Image bytes.
    pub bytes: u64,
    /// Older snapshots deleted (beyond `snapshots_kept`).
    pub snapshots_deleted: usize,
    /// Segments deleted (covered by the oldest kept snapshot).
    pub segments_deleted: usize,
}

/// Loads and checks the snapshot at `path`, named for `named_seq`.
pub(crate) fn load_snapshot(path: &Path, named_seq: u64) -> Result<SnapshotImage, ScanError> {
    let damage = |offset: u64, kind| ScanError::Damaged(Damage { file: path.to_path_buf(), offset, kind });
    let mut bytes = fs::read(path).map_err(|error| ScanError::Io(path.to_path_buf(), error))?;
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(damage(0, DamageKind::Truncated));
    }
    let header: [u8; SNAPSHOT_HEADER_LEN] = bytes[..SNAPSHOT_HEADER_LEN].try_into().expect("checked length");
    let parsed = match parse_snapshot_header(&header) {
        Ok(parsed) => parsed,
        Err(None) => return Err(damage(0, DamageKind::NotAJournalFile)),
        Err(Some(version)) => return Err(damage(8, DamageKind::UnknownVersion(version))),
    };
    let found = (bytes.len() - SNAPSHOT_HEADER_LEN) as u64;
    if parsed.body_len != found {
        return Err(damage(24, DamageKind::SnapshotLength { declared: parsed.body_len, found }));
    }
    let body_crc = crc32c::crc32c(&bytes[SNAPSHOT_HEADER_LEN..]);
    if snapshot_crc(&header, body_crc, parsed.body_len) != parsed.crc {
        return Err(damage(0, DamageKind::Checksum));
    }
    if parsed.seq != named_seq {
        return Err(damage(16, DamageKind::NameMismatch { named: named_seq, header: parsed.seq }));
    }
    bytes.drain(..SNAPSHOT_HEADER_LEN);
    Ok(SnapshotImage { seq: parsed.seq, bytes, path: path.to_path_buf() })
}

/// A snapshot being written: write the image into it (it is an
/// [`io::Write`]), then [`finish`](SnapshotWriter::finish). Dropped
/// unfinished, it leaves a temporary file that the next open removes.
pub struct SnapshotWriter<'a> {
    journal: &'a Journal,
    seq: u64,
    temporary: PathBuf,
    file: BufWriter<File>,
    body_crc: u32,
    body_len: u64,
}

impl Journal {
    /// Starts a snapshot covering every record up to `seq` (0: none).
    /// Snapshots are written one at a time.
    pub fn snapshot_writer(&self, seq: u64) -> Result<SnapshotWriter<'_>, SnapshotError> {
        let next = self.next_seq();
        if seq >= next {
            return Err(SnapshotError::Ahead { seq, next });
        }
        let temporary = self.dir().join(format!("{}.tmp", snapshot_name(seq)));
        let io = |source| SnapshotError::Io { path: temporary.clone(), source };
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&temporary).map_err(io)?);
        file.write_all(&[0u8; SNAPSHOT_HEADER_LEN]).map_err(io)?;
        Ok(SnapshotWriter { journal: self, seq, temporary, file, body_crc: 0, body_len: 0 })
    }

    /// Writes `image` as the snapshot covering every record up to `seq`;
    /// see [`SnapshotWriter::finish`].
    pub fn write_snapshot(&self, seq: u64, image: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
        let mut writer = self.snapshot_writer(seq)?;
        writer.write_all(image).map_err(|source| SnapshotError::Io { path: writer.temporary.clone(), source })?;
        writer.finish()
    }
}

impl Write for SnapshotWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.body_crc = crc32c::crc32c_append(self.body_crc, &bytes[..written]);
        self.body_len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl SnapshotWriter<'_> {
    /// Waits until every covered record is durable, makes the snapshot
    /// durable and visible (header, sync, rename, sync the directory), then
    /// deletes snapshots beyond `snapshots_kept` and the segments the
    /// oldest kept one covers.
    pub fn finish(mut self) -> Result<SnapshotInfo, SnapshotError> {
        if self.seq > 0 {
            if let Err(error) = self.journal.wait_durable(self.seq) {
                let _ = fs::remove_file(&self.temporary);
                return Err(match error {
                    super::DurabilityError::Failed(failure) => SnapshotError::Failed(failure),
                    other => unreachable!("the covered records were appended: {other}"),
                });
            }
        }
        let header = snapshot_header(self.seq, self.body_len, self.body_crc);
        let temporary = self.temporary.clone();
        let io = |source| SnapshotError::Io { path: temporary.clone(), source };
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.write_all(&header).map_err(io)?;
        let file = self.file.into_inner().map_err(|error| io(error.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        let dir = self.journal.dir().to_path_buf();
        let path = dir.join(snapshot_name(self.seq));
        fs::rename(&self.temporary, &path).map_err(io)?;
        sync_dir(&dir).map_err(|source| SnapshotError::Io { path: dir.clone(), source })?;
        let (snapshots_deleted, segments_deleted) = compact(self.journal.shared())?;
        Ok(SnapshotInfo { seq: self.seq, path, bytes: self.body_len, snapshots_deleted, segments_deleted })
    }
}

impl std::fmt::Debug for SnapshotWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter").field("seq", &self.seq).field("bytes", &self.body_len).finish()
    }
}

/// Deletes snapshots beyond the newest `snapshots_kept`, then every segment
/// whose records the oldest kept snapshot covers (never the last segment,
/// never one holding records at or after the retention floor).
fn compact(shared: &Shared) -> Result<(usize, usize), SnapshotError> {
    let dir = &shared.dir;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    let listing = list(dir).map_err(io(dir))?;
    let kept = shared.options.snapshots_kept;
    let excess = listing.snapshots.len().saturating_sub(kept);
    for (_, path) in &listing.snapshots[..excess] {
        fs::remove_file(path).map_err(io(path))?;
    }
    let Some((oldest_kept, _)) = listing.snapshots.get(excess) else {
        return Ok((excess, 0));
    };
    // Relaxed: an admin-path setting (see `Journal::retain_from`).
    let retain_from = shared.retain_from.load(Ordering::Relaxed);
    let floor = (*oldest_kept).min(retain_from.saturating_sub(1));
    let doomed: Vec<u64> = {
        let mut segments = shared.segments.lock();
        // A segment's last record is its successor's first minus one.
        let count = segments.windows(2).take_while(|pair| pair[1] - 1 <= floor).count();
        segments.drain(..count).collect()
    };
    for first in &doomed {
        let path = dir.join(super::files::segment_name(*first));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(&path)(error)),
        }
    }
    sync_dir(dir).map_err(io(dir))?;
    Ok((excess, doomed.len()))
}
