//! The journal directory: file names, listing, creating a segment durably,
//! and syncing the directory itself.
//!
//! Owns: the naming scheme (`{first_seq:020}.seg`,
//! `snapshot-{seq:020}.snap`, `*.tmp`) and the order of the system calls
//! that make a new file survive a crash.
//!
//! Must never: hand out a segment whose header or directory entry is not on
//! disk yet: a record acknowledged in it would vanish with it.

use super::format::segment_header;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A segment's file name.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// A snapshot's file name.
pub(crate) fn snapshot_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.snap")
}

/// What the directory holds, sorted by sequence number.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// `(first_seq, path)` of every segment.
    pub(crate) segments: Vec<(u64, PathBuf)>,
    /// `(seq, path)` of every snapshot.
    pub(crate) snapshots: Vec<(u64, PathBuf)>,
    /// Leftover temporary files (an interrupted snapshot).
    pub(crate) temporaries: Vec<PathBuf>,
}

/// Lists the journal files in `dir`; other files are left alone.
pub(crate) fn list(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") && name.starts_with("snapshot-") {
            listing.temporaries.push(entry.path());
        } else if let Some(seq) = parse_number(name.strip_suffix(".seg")) {
            listing.segments.push((seq, entry.path()));
        } else if let Some(seq) = parse_number(name.strip_prefix("snapshot-").and_then(|n| n.strip_suffix(".snap"))) {
            listing.snapshots.push((seq, entry.path()));
        }
    }
    listing.segments.sort();
    listing.snapshots.sort();
    Ok(listing)
}

fn parse_number(digits: Option<&str>) -> Option<u64> {
    let digits = digits?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Makes `dir`'s entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates the segment whose first record is `first_seq`, durably: the
/// file with its header, synced, then the directory synced. Returns it
/// open for appending.
pub(crate) fn create_segment(dir: &Path, first_seq: u64) -> io::Result<File> {
    let path = dir.join(segment_name(first_seq));
    let mut file = OpenOptions::new().append(true).create_new(true).open(&path)?;
    file.write_all(&segment_header(first_seq))?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn listing_sorts_and_ignores_strangers() {
        let dir = tempdir("listing");
        for name in [segment_name(20), segment_name(3), snapshot_name(7), "notes.txt".into(), "12.seg".into()] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        fs::write(dir.join(format!("{}.tmp", snapshot_name(9))), b"x").unwrap();
        let listing = list(&dir).unwrap();
        assert_eq!(listing.segments.iter().map(|s| s.0).collect::<Vec<_>>(), vec![3, 20]);
        assert_eq!(listing.snapshots.iter().map(|s| s.0).collect::<Vec<_>>(), vec![7]);
        assert_eq!(listing.temporaries.len(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_created_segment_starts_with_its_header_and_is_never_reused() {
        let dir = tempdir("create");
        create_segment(&dir, 5).unwrap();
        assert_eq!(fs::read(dir.join(segment_name(5))).unwrap(), segment_header(5));
        assert_eq!(create_segment(&dir, 5).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        fs::remove_dir_all(dir).unwrap();
    }

    pub(crate) fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stockroom-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
