//! The bytes on disk: frames, segment headers and snapshot headers, laid
//! out by hand (little-endian, fixed offsets) so that they never change
//! with a serializer's version.
//!
//! Owns: the layouts, their constants, encoding and the checks that need
//! no file (checksums, record parsing). Pure functions; no I/O.
//!
//! Must never: accept a layout it does not know. A format version it was
//! not written for is refused, never guessed at.
//!
//! # A frame: the unit the writer appends (and a replicated log could carry)
//!
//! One frame holds one or more records with consecutive sequence numbers:
//! everything the writer took from the ring in one gather (up to
//! [`FRAME_BODY_MAX`] bytes). Its header is 16 bytes:
//!
//! | bytes  | field                                                              |
//! |--------|--------------------------------------------------------------------|
//! | 0..4   | crc32c of bytes 4..16 followed by the body                         |
//! | 4..7   | body length in bytes (24 bits, at most [`FRAME_BODY_MAX`])          |
//! | 7      | format version ([`FORMAT_VERSION`])                                |
//! | 8..16  | sequence number of the frame's first record (at least 1)           |
//!
//! The body is the records, each a LEB128 length (1 byte below 128) and the
//! payload; the records' sequence numbers are the header's plus their index.
//! So a record costs its payload plus one byte, and a frame 16 bytes more:
//! a frame is self-describing (its sequence, its version, its checksum) and
//! can be shipped alone.
//!
//! # A segment: a file of frames
//!
//! `{first_seq:020}.seg`, starting with a 24-byte header: the magic
//! [`SEGMENT_MAGIC`], the format version (u32), the first sequence number
//! (u64, equal to the name's) and a crc32c of the 20 bytes before it.
//!
//! # A snapshot file
//!
//! `snapshot-{seq:020}.snap`: a 32-byte header (the magic
//! [`SNAPSHOT_MAGIC`], the format version (u32), a crc32c (u32) of every
//! other header byte and the body, the covered sequence number (u64) and
//! the body length (u64)), then the body: the caller's opaque bytes.

/// The only format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Bytes in a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 16;

/// Largest frame body: what the header's 24-bit length can say.
pub(crate) const FRAME_BODY_MAX: usize = (1 << 24) - 1;

/// Largest payload one record may carry: a frame must hold it with its
/// length prefix (at most 4 bytes at this size).
pub(crate) const RECORD_BYTES_LIMIT: usize = FRAME_BODY_MAX - 4;

/// First bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"stockjnl";

/// Bytes in a segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 24;

/// First bytes of every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"stocksnp";

/// Bytes in a snapshot header.
pub(crate) const SNAPSHOT_HEADER_LEN: usize = 32;

/// Largest sequence number: the ring keeps two flag bits above it, and a
/// journal that got here (4.6 * 10^18 records) is a bug to stop at.
pub(crate) const SEQ_MAX: u64 = (1 << 62) - 1;

/// Bytes the LEB128 length of a `len`-byte payload takes.
pub(crate) fn varint_len(len: usize) -> usize {
    let mut bytes = 1;
    let mut rest = len >> 7;
    while rest != 0 {
        bytes += 1;
        rest >>= 7;
    }
    bytes
}

/// Appends `value` as LEB128.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    // At most 10 iterations for a 64-bit value.
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a LEB128 length at `bytes[at..]`: the value and the bytes it took,
/// or `None` if it runs past the slice or past 4 bytes (no record is that
/// large, see [`RECORD_BYTES_LIMIT`]).
pub(crate) fn get_varint(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for i in 0..4 {
        let byte = *bytes.get(at + i)?;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A frame being built: header space first, records appended, then
/// [`FrameBuilder::seal`] fills the header in.
#[derive(Debug)]
pub(crate) struct FrameBuilder {
    start: usize,
    first_seq: u64,
    records: u64,
}

impl FrameBuilder {
    /// Starts a frame at the end of `out`, whose first record is `first_seq`.
    pub(crate) fn begin(out: &mut Vec<u8>, first_seq: u64) -> FrameBuilder {
        assert!((1..=SEQ_MAX).contains(&first_seq), "sequence {first_seq} out of range");
        let start = out.len();
        out.resize(start + FRAME_HEADER_LEN, 0);
        FrameBuilder { start, first_seq, records: 0 }
    }

    /// Body bytes so far.
    pub(crate) fn body_len(&self, out: &[u8]) -> usize {
        out.len() - self.start - FRAME_HEADER_LEN
    }

    /// Records so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// True if a `len`-byte payload still fits the frame's body.
    pub(crate) fn fits(&self, out: &[u8], len: usize) -> bool {
        self.body_len(out) + varint_len(len) + len <= FRAME_BODY_MAX
    }

    /// Appends one record (the caller checked [`fits`](Self::fits)).
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, payload: &[u8]) {
        debug_assert!(self.fits(out, payload.len()));
        put_varint(out, payload.len());
        out.extend_from_slice(payload);
        self.records += 1;
    }

    /// Fills the header in; returns the sequence number of the last record.
    pub(crate) fn seal(self, out: &mut [u8]) -> u64 {
        assert!(self.records > 0, "a frame holds at least one record");
        let body_len = self.body_len(out);
        assert!(body_len <= FRAME_BODY_MAX);
        let header = &mut out[self.start..self.start + FRAME_HEADER_LEN];
        header[4..8].copy_from_slice(&(body_len as u32 | (u32::from(FORMAT_VERSION) << 24)).to_le_bytes());
        header[8..16].copy_from_slice(&self.first_seq.to_le_bytes());
        let crc = crc32c::crc32c(&out[self.start + 4..]);
        out[self.start..self.start + 4].copy_from_slice(&crc.to_le_bytes());
        self.first_seq + self.records - 1
    }
}

/// A frame header as read from disk, before any check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The stored checksum.
    pub(crate) crc: u32,
    /// Declared body length.
    pub(crate) body_len: usize,
    /// Declared format version.
    pub(crate) version: u8,
    /// Declared first sequence number.
    pub(crate) first_seq: u64,
}

impl FrameHeader {
    /// Reads the 16 header bytes.
    pub(crate) fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
        let word = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        FrameHeader {
            crc: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            body_len: (word & 0x00ff_ffff) as usize,
            version: (word >> 24) as u8,
            first_seq: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        }
    }

    /// True if `body` (exactly `body_len` bytes) matches the checksum.
    pub(crate) fn checks(&self, header: &[u8; FRAME_HEADER_LEN], body: &[u8]) -> bool {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header[4..]), body);
        crc == self.crc
    }

    /// For a frame whose declared length runs past the end of the file:
    /// true if the bytes present, read with some shorter length ending on a
    /// record boundary, form a frame that checks out. Then the length field
    /// is what was damaged (a torn write never rewrites a header), and the
    /// frame must be refused rather than truncated as torn.
    pub(crate) fn shorter_frame_checks(&self, header: &[u8; FRAME_HEADER_LEN], present: &[u8]) -> bool {
        let mut candidate = *header;
        let mut body_crc = 0u32;
        let mut at = 0usize;
        // Bounded by the records in `present` (each step consumes at least a byte).
        while let Some((len, prefix)) = get_varint(present, at) {
            let end = at + prefix + len;
            if end > present.len() {
                return false;
            }
            body_crc = crc32c::crc32c_append(body_crc, &present[at..end]);
            at = end;
            let word = at as u32 | (u32::from(self.version) << 24);
            candidate[4..8].copy_from_slice(&word.to_le_bytes());
            let crc = crc32c::crc32c_combine(crc32c::crc32c(&candidate[4..]), body_crc, at);
            if crc == self.crc {
                return true;
            }
        }
        false
    }
}

/// The number of records in a frame body, or `None` if the body is not a
/// whole number of well-formed records (or has none).
pub(crate) fn count_records(body: &[u8]) -> Option<u64> {
    let mut at = 0usize;
    let mut count = 0u64;
    // Bounded by the body's length: each record takes at least one byte.
    while at < body.len() {
        let (len, prefix) = get_varint(body, at)?;
        at = at.checked_add(prefix + len)?;
        if at > body.len() {
            return None;
        }
        count += 1;
    }
    (count > 0).then_some(count)
}

/// A segment header for a segment whose first record is `first_seq`.
pub(crate) fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&u32::from(FORMAT_VERSION).to_le_bytes());
    header[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What a segment header says, or what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegmentHeader {
    /// A valid header: the segment's first sequence number.
    Valid(u64),
    /// Every byte is zero (a file created whose header never landed).
    Zero,
    /// Not a segment header (wrong magic or checksum).
    Damaged,
    /// A segment header of a format version this build does not read.
    UnknownVersion(u32),
}

/// Checks a segment header.
pub(crate) fn parse_segment_header(header: &[u8; SEGMENT_HEADER_LEN]) -> SegmentHeader {
    if header.iter().all(|&b| b == 0) {
        return SegmentHeader::Zero;
    }
    let crc = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
    if header[0..8] != SEGMENT_MAGIC || crc32c::crc32c(&header[..20]) != crc {
        return SegmentHeader::Damaged;
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != u32::from(FORMAT_VERSION) {
        return SegmentHeader::UnknownVersion(version);
    }
    SegmentHeader::Valid(u64::from_le_bytes(header[12..20].try_into().expect("8 bytes")))
}

/// The snapshot header for `body` bytes with checksum state `body_crc`
/// (crc32c of the body), covering records up to `seq`.
pub(crate) fn snapshot_header(seq: u64, body_len: u64, body_crc: u32) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut header = [0u8; SNAPSHOT_HEADER_LEN];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&u32::from(FORMAT_VERSION).to_le_bytes());
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header[24..32].copy_from_slice(&body_len.to_le_bytes());
    let crc = snapshot_crc(&header, body_crc, body_len);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The checksum a snapshot header stores: over header bytes 0..12 and
/// 16..32, then the body (given as its own crc and length).
pub(crate) fn snapshot_crc(header: &[u8; SNAPSHOT_HEADER_LEN], body_crc: u32, body_len: u64) -> u32 {
    let head = crc32c::crc32c_append(crc32c::crc32c(&header[0..12]), &header[16..32]);
    let body_len = usize::try_from(body_len).expect("a snapshot body fits in memory");
    crc32c::crc32c_combine(head, body_crc, body_len)
}

/// What a snapshot header says (before the body is checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotHeader {
    /// The stored checksum.
    pub(crate) crc: u32,
    /// The covered sequence number.
    pub(crate) seq: u64,
    /// The body length.
    pub(crate) body_len: u64,
}

/// Reads a snapshot header: `Err(Some(v))` for an unknown version,
/// `Err(None)` for a wrong magic.
pub(crate) fn parse_snapshot_header(header: &[u8; SNAPSHOT_HEADER_LEN]) -> Result<SnapshotHeader, Option<u32>> {
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err(None);
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != u32::from(FORMAT_VERSION) {
        return Err(Some(version));
    }
    Ok(SnapshotHeader {
        crc: u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")),
        seq: u64::from_le_bytes(header[16..24].try_into().expect("8 bytes")),
        body_len: u64::from_le_bytes(header[24..32].try_into().expect("8 bytes")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Iterates the records of a checked frame body: `(index, payload)`.
    /// `None` from [`RecordIter::next`] ends the body; a malformed body (a
    /// length running past the end) is reported by [`count_records`] first.
    #[derive(Debug)]
    struct RecordIter<'a> {
        body: &'a [u8],
        at: usize,
    }

    impl<'a> RecordIter<'a> {
        fn new(body: &'a [u8]) -> RecordIter<'a> {
            RecordIter { body, at: 0 }
        }
    }

    impl<'a> Iterator for RecordIter<'a> {
        type Item = &'a [u8];

        fn next(&mut self) -> Option<&'a [u8]> {
            let (len, prefix) = get_varint(self.body, self.at)?;
            let start = self.at + prefix;
            let payload = self.body.get(start..start + len)?;
            self.at = start + len;
            Some(payload)
        }
    }

    fn frame(first_seq: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut builder = FrameBuilder::begin(&mut out, first_seq);
        for payload in payloads {
            assert!(builder.fits(&out, payload.len()));
            builder.push(&mut out, payload);
        }
        builder.seal(&mut out);
        out
    }

    fn split(bytes: &[u8]) -> ([u8; FRAME_HEADER_LEN], &[u8]) {
        (bytes[..FRAME_HEADER_LEN].try_into().unwrap(), &bytes[FRAME_HEADER_LEN..])
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [0usize, 1, 127, 128, 300, 16_383, 16_384, RECORD_BYTES_LIMIT] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(get_varint(&out, 0), Some((value, out.len())));
        }
        assert_eq!(get_varint(&[0x80, 0x80, 0x80, 0x80, 0x01], 0), None, "five bytes is more than a record");
        assert_eq!(get_varint(&[0x80], 0), None, "cut short");
    }

    #[test]
    fn a_frame_costs_sixteen_bytes_and_one_per_record() {
        let bytes = frame(7, &[b"abc", b"", b"0123456789abcdef"]);
        assert_eq!(bytes.len(), FRAME_HEADER_LEN + (1 + 3) + 1 + (1 + 16));
        let (header_bytes, body) = split(&bytes);
        let header = FrameHeader::parse(&header_bytes);
        assert_eq!((header.first_seq, header.version, header.body_len), (7, FORMAT_VERSION, body.len()));
        assert!(header.checks(&header_bytes, body));
        assert_eq!(count_records(body), Some(3));
        let records: Vec<&[u8]> = RecordIter::new(body).collect();
        assert_eq!(records, vec![&b"abc"[..], b"", b"0123456789abcdef"]);
    }

    #[test]
    fn every_single_bit_flip_fails_the_checksum() {
        let bytes = frame(1, &[b"hold", b"commit"]);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let (header_bytes, body) = split(&damaged);
            let header = FrameHeader::parse(&header_bytes);
            let whole = header.body_len == body.len();
            assert!(!(whole && header.checks(&header_bytes, body)), "bit {bit} went unnoticed");
        }
    }

    #[test]
    fn a_damaged_length_is_told_from_a_torn_body() {
        let bytes = frame(3, &[b"first", b"second"]);
        let (mut header_bytes, body) = split(&bytes);
        // Torn: the header is intact and the body cut short.
        let header = FrameHeader::parse(&header_bytes);
        assert!(!header.shorter_frame_checks(&header_bytes, &body[..body.len() - 2]));
        // Damaged: the length says more than was written; the real frame checks out.
        header_bytes[5] ^= 0x10;
        let damaged = FrameHeader::parse(&header_bytes);
        assert!(damaged.body_len > body.len());
        assert!(damaged.shorter_frame_checks(&header_bytes, body));
    }

    #[test]
    fn malformed_bodies_are_not_counted() {
        assert_eq!(count_records(&[]), None, "no records");
        assert_eq!(count_records(&[5, 1, 2]), None, "length past the end");
        assert_eq!(count_records(&[0, 0]), Some(2), "two empty records");
    }

    #[test]
    fn segment_headers_are_checked() {
        let header = segment_header(42);
        assert_eq!(parse_segment_header(&header), SegmentHeader::Valid(42));
        assert_eq!(parse_segment_header(&[0; SEGMENT_HEADER_LEN]), SegmentHeader::Zero);
        for byte in 0..SEGMENT_HEADER_LEN {
            let mut damaged = header;
            damaged[byte] ^= 0x01;
            assert_ne!(parse_segment_header(&damaged), SegmentHeader::Valid(42), "byte {byte}");
        }
    }

    #[test]
    fn snapshot_headers_cover_the_body() {
        let body = b"the whole ledger";
        let header = snapshot_header(9, body.len() as u64, crc32c::crc32c(body));
        let parsed = parse_snapshot_header(&header).unwrap();
        assert_eq!((parsed.seq, parsed.body_len), (9, body.len() as u64));
        assert_eq!(snapshot_crc(&header, crc32c::crc32c(body), parsed.body_len), parsed.crc);
        assert_ne!(snapshot_crc(&header, crc32c::crc32c(b"the whole ledgeR"), parsed.body_len), parsed.crc);
        let mut other = header;
        other[8] = 2;
        assert_eq!(parse_snapshot_header(&other), Err(Some(2)));
    }
}
