//! Reading one segment frame by frame, checking everything: the header,
//! every frame's version, checksum, record layout and sequence number, and
//! telling a torn tail from damage.
//!
//! Owns: [`SegmentScan`] and the torn-tail rules. Recovery walks the chain
//! of segments with it; the change feed reads with it too.
//!
//! Must never: skip a frame, or call damage a torn tail. A torn tail can
//! only be the end of the last segment: the bytes of the write a crash
//! interrupted. It is one of:
//!
//! - fewer bytes left than a frame header (the write was cut in its header);
//! - a header whose length runs past the end of the file, when the bytes
//!   present do not form a valid frame with any shorter length (a damaged
//!   length field is refused instead: see
//!   `FrameHeader::shorter_frame_checks`);
//! - nothing but zero bytes to the end of the file (space the file system
//!   allocated but whose data never landed);
//! - a frame that fails its checksum, contains a whole 512-byte sector of
//!   zeros (a sector that never landed) and is followed by nothing but
//!   zeros.
//!
//! Anything else that fails a check is refused with the file and the byte
//! offset where its frame (or header) starts.

use super::error::{Damage, DamageKind};
use super::format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, FrameHeader, SEGMENT_HEADER_LEN, SegmentHeader, count_records,
    parse_segment_header,
};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Sector size the torn-write rule assumes: the unit a disk writes whole.
const SECTOR: u64 = 512;

/// How a scan failed.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// Damage, refused.
    Damaged(Damage),
    /// Reading failed.
    Io(PathBuf, io::Error),
}

/// The cut-short end of the last segment, to be truncated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub file: PathBuf,
    /// Where the torn bytes start: the file is truncated to this length
    /// (to nothing if the segment header itself is torn).
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    /// Why these bytes are a torn write.
    pub reason: TornReason,
}

/// The shape of a torn tail (see the module docs of the scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TornReason {
    /// Fewer bytes than a frame (or segment) header.
    ShortHeader,
    /// A frame cut short before its declared end.
    ShortFrame,
    /// Only zero bytes from here to the end.
    ZeroFill,
    /// A frame with a zero sector that fails its checksum, at the end.
    ZeroSector,
}

/// What the next step of a scan found.
#[derive(Debug)]
pub(crate) enum Step {
    /// A frame that passed every check: its records are in
    /// [`SegmentScan::body`].
    Frame {
        /// The sequence number of its first record.
        first_seq: u64,
        /// Its record count.
        records: u64,
    },
    /// The clean end of the segment.
    End,
    /// A torn tail (last segment only): nothing after it is read.
    Torn(TornTail),
}

/// A segment being read (see the module docs).
pub(crate) struct SegmentScan {
    path: PathBuf,
    reader: BufReader<File>,
    len: u64,
    offset: u64,
    is_last: bool,
    expected: u64,
    header: [u8; FRAME_HEADER_LEN],
    body: Vec<u8>,
}

impl SegmentScan {
    /// Opens segment `path`, named for `named_first`, checks its header and
    /// that it starts at `expected` (the sequence the chain needs next).
    /// `is_last`: its end may be torn. A torn segment header comes back as
    /// `Ok(Err(torn))`.
    pub(crate) fn open(
        path: &Path,
        named_first: u64,
        expected: u64,
        is_last: bool,
    ) -> Result<Result<SegmentScan, TornTail>, ScanError> {
        let io = |error| ScanError::Io(path.to_path_buf(), error);
        let damage = |kind| ScanError::Damaged(Damage { file: path.to_path_buf(), offset: 0, kind });
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let torn = |reason| TornTail { file: path.to_path_buf(), offset: 0, bytes: len, reason };
        if len < SEGMENT_HEADER_LEN as u64 {
            return if is_last { Ok(Err(torn(TornReason::ShortHeader))) } else { Err(damage(DamageKind::Truncated)) };
        }
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        reader.read_exact(&mut header).map_err(io)?;
        if header[0..8] != super::format::SEGMENT_MAGIC && header.iter().any(|&b| b != 0) {
            return Err(damage(DamageKind::NotAJournalFile));
        }
        let first = match parse_segment_header(&header) {
            SegmentHeader::Valid(first) => first,
            SegmentHeader::Zero if is_last && rest_is_zero(&mut reader).map_err(io)? => {
                return Ok(Err(torn(TornReason::ZeroFill)));
            }
            SegmentHeader::Zero | SegmentHeader::Damaged => return Err(damage(DamageKind::Checksum)),
            SegmentHeader::UnknownVersion(version) => return Err(damage(DamageKind::UnknownVersion(version))),
        };
        if first != named_first {
            return Err(damage(DamageKind::NameMismatch { named: named_first, header: first }));
        }
        if first != expected {
            return Err(damage(DamageKind::Gap { expected, found: first }));
        }
        Ok(Ok(SegmentScan {
            path: path.to_path_buf(),
            reader,
            len,
            offset: SEGMENT_HEADER_LEN as u64,
            is_last,
            expected,
            header: [0; FRAME_HEADER_LEN],
            body: Vec::new(),
        }))
    }

    /// The segment's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next frame must start with.
    pub(crate) fn expected(&self) -> u64 {
        self.expected
    }

    /// The byte offset of the next frame.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The body of the frame the last [`Step::Frame`] returned.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Re-reads the file's length (the change feed reads a segment the
    /// writer is still appending to).
    pub(crate) fn refresh_len(&mut self) -> io::Result<()> {
        self.len = self.reader.get_ref().metadata()?.len();
        Ok(())
    }

    /// True if no byte is left after the current offset (as of the length
    /// last read).
    pub(crate) fn at_end(&self) -> bool {
        self.offset >= self.len
    }

    /// Reads and checks the next frame.
    pub(crate) fn next_frame(&mut self) -> Result<Step, ScanError> {
        let offset = self.offset;
        let remaining = self.len - offset;
        if remaining == 0 {
            return Ok(Step::End);
        }
        let path = self.path.clone();
        let io = |error| ScanError::Io(path.clone(), error);
        let damage = |kind| ScanError::Damaged(Damage { file: self.path.clone(), offset, kind });
        if remaining < FRAME_HEADER_LEN as u64 {
            return if self.is_last {
                Ok(self.torn(TornReason::ShortHeader))
            } else {
                Err(damage(DamageKind::Truncated))
            };
        }
        self.reader.read_exact(&mut self.header).map_err(io)?;
        let header = FrameHeader::parse(&self.header);
        if self.header.iter().all(|&b| b == 0) {
            if self.is_last && rest_is_zero(&mut self.reader).map_err(io)? {
                return Ok(self.torn(TornReason::ZeroFill));
            }
            return Err(damage(DamageKind::Checksum));
        }
        if header.version != FORMAT_VERSION {
            return Err(damage(DamageKind::UnknownVersion(u32::from(header.version))));
        }
        let end = offset + (FRAME_HEADER_LEN + header.body_len) as u64;
        if end > self.len {
            if !self.is_last {
                return Err(damage(DamageKind::Truncated));
            }
            let mut present = Vec::new();
            (&mut self.reader).take(self.len - offset).read_to_end(&mut present).map_err(io)?;
            if header.shorter_frame_checks(&self.header, &present) {
                return Err(damage(DamageKind::Checksum));
            }
            return Ok(self.torn(TornReason::ShortFrame));
        }
        self.body.resize(header.body_len, 0);
        self.reader.read_exact(&mut self.body).map_err(io)?;
        if !header.checks(&self.header, &self.body) {
            if self.is_last && has_zero_sector(offset + FRAME_HEADER_LEN as u64, &self.body) {
                let end_is_zero = rest_is_zero(&mut self.reader).map_err(io)?;
                if end_is_zero {
                    return Ok(self.torn(TornReason::ZeroSector));
                }
            }
            return Err(damage(DamageKind::Checksum));
        }
        let Some(records) = count_records(&self.body) else {
            return Err(damage(DamageKind::Malformed));
        };
        if header.first_seq != self.expected {
            return Err(damage(DamageKind::Gap { expected: self.expected, found: header.first_seq }));
        }
        self.offset = end;
        self.expected += records;
        Ok(Step::Frame { first_seq: header.first_seq, records })
    }

    fn torn(&self, reason: TornReason) -> Step {
        Step::Torn(TornTail { file: self.path.clone(), offset: self.offset, bytes: self.len - self.offset, reason })
    }
}

/// True if every byte from the reader's position to the end is zero.
fn rest_is_zero(reader: &mut BufReader<File>) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    // Bounded by the file's length.
    loop {
        let read = reader.read(&mut chunk)?;
        if read == 0 {
            return Ok(true);
        }
        if chunk[..read].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// True if `body`, which starts at file offset `at`, contains a whole
/// [`SECTOR`]-aligned sector of zeros.
fn has_zero_sector(at: u64, body: &[u8]) -> bool {
    let first = at.div_ceil(SECTOR) * SECTOR;
    let mut start = (first - at) as usize;
    // Bounded by the body's length.
    while start + SECTOR as usize <= body.len() {
        if body[start..start + SECTOR as usize].iter().all(|&b| b == 0) {
            return true;
        }
        start += SECTOR as usize;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_sector_is_found_only_when_whole_and_aligned() {
        let mut body = vec![1u8; 2048];
        assert!(!has_zero_sector(0, &body));
        body[100..612].fill(0);
        assert!(!has_zero_sector(0, &body), "512 zeros astride two sectors");
        assert!(has_zero_sector(412, &body), "the same zeros, placed on a sector of the file");
        body[512..1024].fill(0);
        assert!(has_zero_sector(0, &body));
    }
}
