//! Damage at rest: truncate and corrupt journal files (segments and
//! snapshots) at random offsets, then recover. Each case must end one of
//! two ways, and nothing acknowledged may be lost silently:
//!
//! - refused, with the damaged file and a byte offset at or before the
//!   damage, and the directory left exactly as it was; or
//! - recovered: every record handed out is one that was appended, in
//!   order, and every acknowledged record is there, except that a
//!   truncation of the last segment loses the records after the cut
//!   (reported as a torn tail, and only the frame the cut falls in and
//!   what follows), and a damaged newest snapshot is refused (reported)
//!   and the older one plus more of the journal is used instead.
//!
//! `STOCKROOM_FAULT_CASES` sets the number of random cases (300 by
//! default); `STOCKROOM_FAULT_SEED` replays a run.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use stockroom::journal::{DamageKind, Durability, Journal, JournalOptions, OpenError};

const RECORDS: u64 = 2_000;
const FRAME_HEADER: u64 = 16;
const SEGMENT_HEADER: u64 = 24;

fn options() -> JournalOptions {
    JournalOptions::new(Durability::Sync).segment_bytes_max(8 << 10).snapshots_kept(2)
}

/// Non-zero bytes, a length that varies with the sequence number.
fn payload(seq: u64) -> Vec<u8> {
    (0..8 + seq % 40).map(|j| ((seq * 31 + j * 7) % 255 + 1) as u8).collect()
}

/// Builds the pristine journal: snapshots at 800 and 1500, records to
/// 2000, several segments (the ones the older snapshot covers deleted).
fn build(dir: &Path) {
    let (journal, _) = Journal::open(dir, options()).unwrap().finish().unwrap();
    for seq in 1..=RECORDS {
        assert_eq!(journal.append_acknowledged(&payload(seq)).unwrap(), seq);
        if seq == 800 || seq == 1500 {
            journal.write_snapshot(seq, format!("image through {seq}").as_bytes()).unwrap();
        }
    }
    journal.close().unwrap();
}

/// The frames of a pristine segment: `(start offset, end offset, first seq, records)`.
fn frames(bytes: &[u8]) -> Vec<(u64, u64, u64, u64)> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER as usize;
    while at < bytes.len() {
        let word = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let len = (word & 0x00ff_ffff) as usize;
        let first = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        let body = &bytes[at + 16..at + 16 + len];
        let mut records = 0;
        let mut i = 0;
        while i < body.len() {
            let mut value = 0usize;
            let mut shift = 0;
            loop {
                let byte = body[i];
                i += 1;
                value |= usize::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            i += value;
            records += 1;
        }
        out.push((at as u64, (at + 16 + len) as u64, first, records));
        at += 16 + len;
    }
    out
}

/// Every file's bytes, by name.
fn snapshot_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.file_name().into_string().unwrap(), fs::read(entry.path()).unwrap())
        })
        .collect()
}

fn restore(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// What recovery gave: the snapshot's sequence and the records after it.
struct Recovered {
    snapshot: Option<u64>,
    records: Vec<(u64, Vec<u8>)>,
    torn: Option<(PathBuf, u64)>,
    refused_snapshots: Vec<PathBuf>,
}

fn recover(dir: &Path) -> Result<Recovered, OpenError> {
    let mut recovery = Journal::open(dir, options())?;
    let snapshot = recovery.snapshot().map(|image| image.seq());
    if let Some(image) = recovery.snapshot() {
        assert_eq!(image.bytes(), format!("image through {}", image.seq()).as_bytes(), "snapshot image intact");
    }
    let mut records = Vec::new();
    while let Some(record) = recovery.next_record()? {
        records.push((record.seq, record.payload.to_vec()));
    }
    let (journal, report) = recovery.finish()?;
    // The journal goes on after whatever recovery truncated.
    let next = journal.append_acknowledged(b"after recovery").unwrap();
    assert_eq!(next, report.next_seq);
    journal.close().unwrap();
    Ok(Recovered {
        snapshot,
        records,
        torn: report.torn.map(|torn| (torn.file, torn.offset)),
        refused_snapshots: report.refused_snapshots.into_iter().map(|damage| damage.file).collect(),
    })
}

enum Fault {
    Truncate { file: String, at: u64 },
    Flip { file: String, at: u64, mask: u8 },
}

struct Pristine {
    files: BTreeMap<String, Vec<u8>>,
    segments: Vec<String>,
}

impl Pristine {
    fn is_segment(&self, name: &str) -> bool {
        name.ends_with(".seg")
    }

    fn last_segment(&self) -> &str {
        self.segments.last().unwrap()
    }

    /// The sequence after which the newest snapshot leaves replay to the
    /// journal.
    fn newest_snapshot(&self) -> u64 {
        1500
    }

    /// True if recovery reads this segment: the chain starts at the last
    /// segment whose first record is at or before the newest snapshot's
    /// next sequence.
    fn needed(&self, name: &str) -> bool {
        let first = |name: &str| name.trim_end_matches(".seg").parse::<u64>().unwrap();
        let start = self.segments.iter().rposition(|s| first(s) <= self.newest_snapshot() + 1).unwrap();
        self.segments.iter().position(|s| s == name).unwrap() >= start
    }
}

/// Checks one case's outcome against the rules in the module docs.
fn check(pristine: &Pristine, dir: &Path, fault: &Fault, outcome: Result<Recovered, OpenError>) {
    let (name, at) = match fault {
        Fault::Truncate { file, at } | Fault::Flip { file, at, .. } => (file.as_str(), *at),
    };
    let damaged = dir.join(name);
    let recovered = match outcome {
        Err(OpenError::Damaged(damage)) => {
            let next_segment =
                pristine.segments.iter().position(|s| s == name).and_then(|i| pristine.segments.get(i + 1));
            let gap_at_next = matches!(damage.kind, DamageKind::Gap { .. })
                && next_segment.is_some_and(|next| damage.file == dir.join(next) && damage.offset == 0);
            assert!(
                damage.file == damaged || gap_at_next,
                "damage to {name} at {at} refused naming another place: {damage}"
            );
            if damage.file == damaged {
                assert!(damage.offset <= at, "refused at {} past the damage at {at}: {damage}", damage.offset);
            }
            return;
        }
        Err(other) => panic!("damage to {name} at {at} gave {other}"),
        Ok(recovered) => recovered,
    };
    // Recovered: whatever was handed out is what was appended, in order.
    let start = recovered.snapshot.map_or(1, |seq| seq + 1);
    for (i, (seq, bytes)) in recovered.records.iter().enumerate() {
        assert_eq!(*seq, start + i as u64, "dense after the snapshot");
        assert_eq!(*bytes, payload(*seq), "record {seq} intact");
    }
    let end = start + recovered.records.len() as u64; // first sequence not recovered
    match fault {
        Fault::Flip { file, .. } if !pristine.is_segment(file) => {
            // A damaged snapshot: the newest is refused and the older one
            // used, or the older one (not read) is damaged.
            if recovered.snapshot != Some(pristine.newest_snapshot()) {
                assert_eq!(recovered.refused_snapshots, vec![damaged.clone()], "refusal reported");
            }
            assert_eq!(end, RECORDS + 1, "nothing acknowledged lost");
        }
        Fault::Truncate { file, .. } if !pristine.is_segment(file) => {
            assert_eq!(end, RECORDS + 1, "nothing acknowledged lost");
        }
        Fault::Flip { file, at, .. } => {
            // Recovered despite a flipped segment byte: only when recovery
            // did not need that segment (the newest snapshot covers it).
            assert!(!pristine.needed(file), "a flip in segment {file} at {at} went unnoticed (recovered to {end})");
            assert_eq!(end, RECORDS + 1, "nothing acknowledged lost");
        }
        Fault::Truncate { file, at } if file != pristine.last_segment() => {
            assert!(!pristine.needed(file), "a truncation of {file} (not the last segment) at {at} went unnoticed");
            assert_eq!(end, RECORDS + 1, "nothing acknowledged lost");
        }
        Fault::Truncate { file, at } => {
            // The last segment cut at `at`: every frame that ends at or
            // before the cut must be there; nothing after it may be.
            let frames = frames(&pristine.files[file.as_str()]);
            let segment_first: u64 = file.trim_end_matches(".seg").parse().unwrap();
            let kept = frames.iter().filter(|frame| frame.1 <= *at).map(|frame| frame.2 + frame.3).max();
            let floor = if *at < SEGMENT_HEADER { segment_first } else { kept.unwrap_or(segment_first) };
            assert_eq!(end, floor.max(start), "records up to the cut kept, none after");
            let boundary = *at == SEGMENT_HEADER || frames.iter().any(|frame| frame.1 == *at);
            match &recovered.torn {
                None => assert!(boundary, "a cut at {at} inside a frame must be reported as torn"),
                Some((torn_file, offset)) => {
                    assert!(!boundary, "a cut on a frame boundary is a clean end");
                    assert_eq!(torn_file, &damaged);
                    assert!(*offset <= *at);
                }
            }
        }
    }
}

fn run_case(pristine: &Pristine, dir: &Path, fault: Fault) {
    restore(dir, &pristine.files);
    match &fault {
        Fault::Truncate { file, at } => {
            let f = fs::OpenOptions::new().write(true).open(dir.join(file)).unwrap();
            f.set_len(*at).unwrap();
        }
        Fault::Flip { file, at, mask } => {
            let path = dir.join(file);
            let mut bytes = fs::read(&path).unwrap();
            bytes[*at as usize] ^= mask;
            fs::write(&path, bytes).unwrap();
        }
    }
    let before = snapshot_of(dir);
    let outcome = recover(dir);
    if outcome.is_err() {
        assert_eq!(snapshot_of(dir), before, "a refused recovery changes nothing on disk");
    }
    check(pristine, dir, &fault, outcome);
}

fn pristine(dir: &Path) -> Pristine {
    build(dir);
    let files = snapshot_of(dir);
    let segments: Vec<String> = files.keys().filter(|name| name.ends_with(".seg")).cloned().collect();
    assert!(segments.len() >= 3, "several segments: {segments:?}");
    assert_eq!(files.keys().filter(|name| name.ends_with(".snap")).count(), 2);
    Pristine { files, segments }
}

#[test]
fn random_truncations_and_corruptions_are_refused_or_truncated_never_skipped() {
    let cases: u32 = std::env::var("STOCKROOM_FAULT_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300);
    let seed: u64 = std::env::var("STOCKROOM_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("journal fault test: {cases} cases, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let base = std::env::temp_dir().join(format!("stockroom-faults-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let pristine = pristine(&base.join("pristine"));
    let dir = base.join("case");
    let names: Vec<&String> = pristine.files.keys().collect();
    for _ in 0..cases {
        // Half the cases hit the last segment, where torn tails live.
        let name = if rng.gen_bool(0.5) {
            pristine.last_segment().to_string()
        } else {
            names[rng.gen_range(0..names.len())].clone()
        };
        let len = pristine.files[&name].len() as u64;
        let fault = if rng.gen_bool(0.5) {
            Fault::Truncate { file: name, at: rng.gen_range(0..len) }
        } else {
            Fault::Flip { file: name, at: rng.gen_range(0..len), mask: rng.gen_range(1..=255) }
        };
        run_case(&pristine, &dir, fault);
    }
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn every_byte_of_the_last_frame_and_headers_is_guarded() {
    let base = std::env::temp_dir().join(format!("stockroom-faults-exhaustive-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let pristine = pristine(&base.join("pristine"));
    let dir = base.join("case");
    let last = pristine.last_segment().to_string();
    let bytes = &pristine.files[&last];
    let (start, end, _, _) = *frames(bytes).last().unwrap();
    // Every byte of the segment header and of the last frame (where a
    // damaged length could pass for a torn write), flipped; every cut.
    for at in (0..SEGMENT_HEADER).chain(start..end) {
        run_case(&pristine, &dir, Fault::Flip { file: last.clone(), at, mask: 0x01 });
        run_case(&pristine, &dir, Fault::Flip { file: last.clone(), at, mask: 0x80 });
        run_case(&pristine, &dir, Fault::Truncate { file: last.clone(), at });
    }
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn unknown_versions_gaps_and_missing_segments_are_refused_with_where() {
    let base = std::env::temp_dir().join(format!("stockroom-faults-kinds-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let pristine = pristine(&base.join("pristine"));
    let dir = base.join("case");
    let last = pristine.last_segment().to_string();
    let (start, _, _, _) = frames(&pristine.files[&last])[1];

    // A frame written by a later format version (checksum and all).
    restore(&dir, &pristine.files);
    let path = dir.join(&last);
    let mut bytes = fs::read(&path).unwrap();
    bytes[start as usize + 7] = 2;
    fs::write(&path, &bytes).unwrap();
    let error = Journal::open(&dir, options()).unwrap().finish().unwrap_err();
    let OpenError::Damaged(damage) = error else { panic!("{error}") };
    assert_eq!((damage.file, damage.offset, damage.kind), (path.clone(), start, DamageKind::UnknownVersion(2)));

    // A segment missing from the middle of the chain.
    restore(&dir, &pristine.files);
    let middle = &pristine.segments[pristine.segments.len() - 2];
    fs::remove_file(dir.join(middle)).unwrap();
    let error = Journal::open(&dir, options()).and_then(|recovery| recovery.finish().map(drop)).unwrap_err();
    let OpenError::Damaged(damage) = error else { panic!("{error}") };
    assert!(matches!(damage.kind, DamageKind::Gap { .. }), "{damage}");

    // Both snapshots damaged: nothing to start from, refused.
    restore(&dir, &pristine.files);
    for name in pristine.files.keys().filter(|name| name.ends_with(".snap")) {
        let path = dir.join(name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[40] ^= 0x10;
        fs::write(&path, bytes).unwrap();
    }
    let error = Journal::open(&dir, options()).unwrap_err();
    let OpenError::Damaged(damage) = error else { panic!("{error}") };
    assert_eq!((damage.offset, damage.kind), (0, DamageKind::Checksum));
    assert!(damage.file.to_string_lossy().ends_with(".snap"));
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_zero_filled_tail_is_torn_not_damage() {
    let base = std::env::temp_dir().join(format!("stockroom-faults-zero-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let pristine = pristine(&base.join("pristine"));
    let dir = base.join("case");
    restore(&dir, &pristine.files);
    let last = dir.join(pristine.last_segment());
    let mut bytes = fs::read(&last).unwrap();
    let len = bytes.len() as u64;
    // Space allocated by the file system whose data never landed.
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&last, bytes).unwrap();
    let recovered = recover(&dir).unwrap();
    assert_eq!(recovered.torn, Some((last.clone(), len)));
    assert_eq!(recovered.records.last().unwrap().0, RECORDS);
    assert_eq!(FRAME_HEADER, 16);
    fs::remove_dir_all(&base).unwrap();
}

/// Unmounts on drop, so that a failing test leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_full_disk_fails_the_append_that_needed_it_and_keeps_what_was_acknowledged() {
    // A real full disk: a 256 KiB tmpfs. Needs root and permission to
    // mount; where there is none the test says so and checks nothing.
    let point = std::env::temp_dir().join(format!("stockroom-full-disk-{}", std::process::id()));
    fs::create_dir_all(&point).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&point)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        let _ = fs::remove_dir_all(&point);
        println!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let mount = Mount(point);
    let dir = mount.0.join("journal");
    let options = JournalOptions::new(Durability::Sync).segment_bytes_max(64 << 10);
    let (journal, _) = Journal::open(&dir, options.clone()).unwrap().finish().unwrap();
    let mut acknowledged = 0u64;
    let failure = loop {
        // Bounded: 256 KiB fill up within a few thousand 100-byte records.
        assert!(acknowledged < 10_000, "the disk never filled");
        match journal.append_acknowledged(&[0xab; 100]) {
            Ok(seq) => {
                assert_eq!(seq, acknowledged + 1);
                acknowledged = seq;
            }
            Err(stockroom::journal::AppendError::Failed(failure)) => break failure,
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(failure.kind, std::io::ErrorKind::StorageFull, "{failure}");
    assert_eq!(failure.durable_through, acknowledged, "the failure states what is durable");
    assert!(matches!(journal.append(b"more"), Err(stockroom::journal::AppendError::Failed(_))));
    assert_eq!(journal.close().unwrap_err(), failure);
    drop(journal);
    // Recover: every acknowledged record is there.
    let mut recovery = Journal::open(&dir, options).unwrap();
    let mut count = 0;
    while let Some(record) = recovery.next_record().unwrap() {
        assert_eq!(record.payload, &[0xab; 100][..]);
        count += 1;
    }
    assert!(count >= acknowledged, "{count} recovered, {acknowledged} acknowledged");
    println!("full disk: {acknowledged} acknowledged, then {failure}; {count} recovered");
}
