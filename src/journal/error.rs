//! The journal's errors: one enum per operation, variants in precedence
//! order, each saying whether a retry could help.
//!
//! Owns: [`Damage`] (where a file is damaged and how), [`Failure`] (what a
//! failed write or sync left durable), and the operation errors.
//!
//! Must never: lose the file and offset of a damage, or the last durable
//! sequence of a failure.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What is wrong at a place in a journal file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// A frame or header fails its checksum, and it is not a torn tail (it
    /// is followed by more data, or its bytes are not those of a cut-short
    /// write).
    Checksum,
    /// Written by a format version this build does not read.
    UnknownVersion(u32),
    /// A frame's sequence number is not the one after its predecessor's
    /// (`found > expected`: records are missing; `found < expected`: a
    /// record is repeated).
    Gap {
        /// The sequence number the chain needed.
        expected: u64,
        /// The one the frame (or segment) carries.
        found: u64,
    },
    /// A frame that checks out but whose records do not parse: written by
    /// something else than this journal.
    Malformed,
    /// A segment other than the last ends in the middle of a frame, or a
    /// frame's length runs past the end of a segment that has a successor.
    Truncated,
    /// Not a journal file: wrong magic number.
    NotAJournalFile,
    /// A segment whose name and header disagree on its first sequence.
    NameMismatch {
        /// The sequence in the file name.
        named: u64,
        /// The sequence in the header.
        header: u64,
    },
    /// A snapshot whose length is not what its header says.
    SnapshotLength {
        /// Body bytes the header declares.
        declared: u64,
        /// Body bytes the file has.
        found: u64,
    },
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DamageKind::Checksum => write!(f, "checksum mismatch"),
            DamageKind::UnknownVersion(version) => write!(f, "unknown format version {version}"),
            DamageKind::Gap { expected, found } => write!(f, "expected sequence {expected}, found {found}"),
            DamageKind::Malformed => write!(f, "malformed records in a frame that checks out"),
            DamageKind::Truncated => write!(f, "cut short before its end"),
            DamageKind::NotAJournalFile => write!(f, "not a journal file"),
            DamageKind::NameMismatch { named, header } => {
                write!(f, "named for sequence {named} but its header says {header}")
            }
            DamageKind::SnapshotLength { declared, found } => {
                write!(f, "snapshot body of {found} bytes, header says {declared}")
            }
        }
    }
}

/// A damaged file, refused: which file, at which byte offset, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: byte {offset}: {kind}", file = file.display())]
pub struct Damage {
    /// The file.
    pub file: PathBuf,
    /// The byte offset where the damaged frame or header starts.
    pub offset: u64,
    /// What is wrong there.
    pub kind: DamageKind,
}

/// What a failed write or sync left behind: every record up to
/// `durable_through` is durable; every later one is not acknowledged and
/// never will be by this journal (reopen it to recover what reached disk).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("journal failed ({kind:?}: {message}); durable through sequence {durable_through}")]
pub struct Failure {
    /// The last sequence number known durable (0: none).
    pub durable_through: u64,
    /// The I/O error's kind (`StorageFull` for a full disk).
    pub kind: io::ErrorKind,
    /// The I/O error's message, and what was being done.
    pub message: String,
}

/// Why an append was refused. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The payload is larger than the journal's `record_bytes_max`.
    #[error("record of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A write or sync failed; the journal accepts nothing more.
    #[error(transparent)]
    Failed(Failure),
    /// The journal is closed.
    #[error("the journal is closed")]
    Closed,
    /// Every slot of the ring is in use ([`try_append`] only; [`append`]
    /// waits instead).
    ///
    /// [`try_append`]: super::Journal::try_append
    /// [`append`]: super::Journal::append
    #[error("the journal's ring is full")]
    Full,
}

impl AppendError {
    /// True if the same append may succeed later ([`AppendError::Full`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, AppendError::Full)
    }
}

/// Why a record will not become durable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurabilityError {
    /// A write or sync failed before the record was durable.
    #[error(transparent)]
    Failed(Failure),
    /// No record with this sequence number was appended.
    #[error("sequence {seq} was never appended (next is {next})")]
    NotAppended {
        /// The sequence asked about.
        seq: u64,
        /// The next sequence number the journal will give.
        next: u64,
    },
}

impl DurabilityError {
    /// Always false: a failed journal stays failed; reopen it.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// Why [`Journal::open`](super::Journal::open) (or a recovery step) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The options are inconsistent.
    #[error("invalid journal options: {0}")]
    Options(&'static str),
    /// A file is damaged: refused with where.
    #[error(transparent)]
    Damaged(Damage),
    /// An I/O error on a file or directory.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl OpenError {
    /// True for I/O errors that may pass (interrupted, timed out, busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, OpenError::Io { source, .. } if matches!(source.kind(), io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

/// Why a change-feed read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The position was deleted: a snapshot covers it and its segment is
    /// gone. Resume from a snapshot at or after `first_available - 1`.
    #[error("sequence {requested} was compacted away; the journal starts at {first_available}")]
    Compacted {
        /// The position asked for.
        requested: u64,
        /// The first sequence the journal still holds.
        first_available: u64,
    },
    /// The position is beyond the next sequence the journal will give.
    #[error("sequence {requested} is beyond the journal's next sequence {next}")]
    Beyond {
        /// The position asked for.
        requested: u64,
        /// The next sequence number the journal will give.
        next: u64,
    },
    /// A file is damaged.
    #[error(transparent)]
    Damaged(Damage),
    /// An I/O error.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Why a snapshot was not written. Nothing changed on disk (a temporary
/// file may be left, and is removed at the next open).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The snapshot would cover records that were never appended.
    #[error("snapshot at {seq} covers records never appended (next sequence {next})")]
    Ahead {
        /// The covered sequence asked for.
        seq: u64,
        /// The journal's next sequence.
        next: u64,
    },
    /// The journal failed before the covered records were durable: a
    /// snapshot must not outlive records that were never acknowledged.
    #[error(transparent)]
    Failed(Failure),
    /// An I/O error.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}
