//! The journal end to end inside the crate: appends, acknowledgements,
//! rollover, recovery, snapshots and compaction, the change feed, and
//! injected write and sync failures (which need the writer's test hooks).

use super::*;
use crate::sync::Ordering;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("stockroom-journal-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &Path, options: JournalOptions) -> (Journal, RecoveryReport) {
    Journal::open(dir, options).unwrap().finish().unwrap()
}

/// Records as `(seq, payload)`.
type Records = Vec<(u64, Vec<u8>)>;

/// Every record after the snapshot, and the report.
fn replay(dir: &Path, options: JournalOptions) -> (Option<u64>, Records, Journal, RecoveryReport) {
    let mut recovery = Journal::open(dir, options).unwrap();
    let snapshot = recovery.snapshot().map(SnapshotImage::seq);
    let mut records = Vec::new();
    while let Some(record) = recovery.next_record().unwrap() {
        records.push((record.seq, record.payload.to_vec()));
    }
    let (journal, report) = recovery.finish().unwrap();
    (snapshot, records, journal, report)
}

fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 40) as usize)).into_bytes()
}

fn sync_options() -> JournalOptions {
    JournalOptions::new(Durability::Sync)
}

#[test]
fn records_come_back_in_order_across_segments_and_restarts() {
    let dir = TempDir::new("roundtrip");
    let options = sync_options().segment_bytes_max(4096);
    let (journal, report) = open(&dir.0, options.clone());
    assert_eq!(report.next_seq, 1);
    for i in 1..=300 {
        assert_eq!(journal.append_acknowledged(&payload(i)).unwrap(), i);
    }
    assert!(journal.stats().segments_created >= 2, "4 KiB segments roll over");
    assert_eq!(journal.close(), Ok(300));
    drop(journal);

    let (snapshot, records, journal, report) = replay(&dir.0, options.clone());
    assert_eq!(snapshot, None);
    assert_eq!(records.len(), 300);
    for (i, (seq, bytes)) in records.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(*bytes, payload(*seq));
    }
    assert_eq!((report.next_seq, report.torn.clone()), (301, None));
    // The chain continues after a restart.
    assert_eq!(journal.append_acknowledged(b"after").unwrap(), 301);
    drop(journal);
    let (_, records, _, _) = replay(&dir.0, options);
    assert_eq!(records.last().unwrap(), &(301, b"after".to_vec()));
}

#[test]
fn many_threads_get_dense_unique_sequences_in_program_order() {
    let dir = TempDir::new("threads");
    let (journal, _) = open(&dir.0, sync_options().ring_capacity(64));
    let journal = Arc::new(journal);
    let threads = 8u64;
    let per_thread = 200u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                let mut last = 0;
                for i in 0..per_thread {
                    let seq = journal.append_acknowledged(&[t as u8, (i >> 8) as u8, i as u8]).unwrap();
                    assert!(seq > last, "one thread's appends are in program order");
                    assert!(journal.durable_seq() >= seq, "acknowledged means durable");
                    last = seq;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = journal.stats();
    assert_eq!(stats.records, threads * per_thread);
    assert!(stats.syncs < stats.records, "group commit: {} syncs for {} records", stats.syncs, stats.records);
    Arc::try_unwrap(journal).unwrap().close().unwrap();
    let (_, records, _, _) = replay(&dir.0, sync_options());
    let mut next = vec![0u64; threads as usize];
    for (i, (seq, bytes)) in records.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "dense");
        let (t, n) = (bytes[0] as usize, (u64::from(bytes[1]) << 8) | u64::from(bytes[2]));
        assert_eq!(n, next[t], "thread {t}'s records in its order, each once");
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == per_thread));
}

#[test]
fn receipts_can_be_polled_and_waited_later() {
    let dir = TempDir::new("receipts");
    let (journal, _) = open(&dir.0, JournalOptions::new(Durability::Batched { max_delay: Duration::from_millis(20) }));
    let receipts: Vec<u64> = (0..10).map(|i| journal.append(&[i]).unwrap().seq()).collect();
    assert_eq!(receipts, (1..=10).collect::<Vec<_>>());
    // Batched: acknowledged at once, durable within max_delay (plus a sync).
    journal.wait_durable(10).unwrap();
    assert!(journal.is_durable(10).unwrap());
    assert_eq!(
        journal.is_durable(11),
        Err(DurabilityError::NotAppended { seq: 11, next: 11 }),
        "a sequence not yet given is refused, not waited for"
    );
    let window = journal.stats().loss_window_max;
    assert!(window >= Duration::from_millis(20) && window < Duration::from_secs(5), "loss window {window:?}");
}

#[test]
fn try_append_reports_a_full_ring_and_append_waits_instead() {
    let dir = TempDir::new("full");
    let options = JournalOptions::new(Durability::Off).ring_capacity(2);
    let (journal, _) = open(&dir.0, options);
    // The writer drains quickly; hammer try_append until it sees Full once
    // (bounded), and check that append never fails meanwhile.
    let mut full = 0;
    for i in 0..20_000u32 {
        match journal.try_append(&i.to_le_bytes()) {
            Ok(_) => {}
            Err(AppendError::Full) => full += 1,
            Err(other) => panic!("{other}"),
        }
        let _ = journal.append(&i.to_le_bytes()).unwrap();
    }
    assert!(AppendError::Full.is_transient());
    journal.close().unwrap();
    let (_, records, _, _) = replay(&dir.0, JournalOptions::new(Durability::Off));
    assert_eq!(records.len() as u64, 40_000 - full);
}

#[test]
fn oversized_records_are_refused_and_change_nothing() {
    let dir = TempDir::new("oversized");
    let (journal, _) = open(&dir.0, sync_options().record_bytes_max(100));
    assert_eq!(journal.append(&[0; 101]).unwrap_err(), AppendError::TooLarge { len: 101, max: 100 });
    assert_eq!(journal.next_seq(), 1);
    assert_eq!(journal.append_acknowledged(&[0; 100]).unwrap(), 1);
}

#[test]
fn a_failed_sync_fails_its_waiters_and_every_later_append() {
    let dir = TempDir::new("failsync");
    let (journal, _) = open(&dir.0, sync_options());
    assert_eq!(journal.append_acknowledged(b"one").unwrap(), 1);
    journal.shared().faults.fail_sync_at.store(2, Ordering::Relaxed);
    let error = journal.append_acknowledged(b"two").unwrap_err();
    let AppendError::Failed(failure) = error else { panic!("{error:?}") };
    assert_eq!(failure.durable_through, 1, "the failure says what is durable");
    assert!(failure.message.contains("fdatasync"));
    assert!(matches!(journal.append(b"three"), Err(AppendError::Failed(_))), "refused after a failure");
    assert_eq!(journal.is_durable(1), Ok(true));
    assert!(matches!(journal.is_durable(2), Err(DurabilityError::Failed(_))));
    assert_eq!(journal.close().unwrap_err().durable_through, 1);
}

#[test]
fn a_failed_write_fails_a_whole_group_of_waiters() {
    let dir = TempDir::new("failwrite");
    let (journal, _) = open(&dir.0, sync_options());
    let journal = Arc::new(journal);
    journal.shared().faults.fail_write_at.store(1, Ordering::Relaxed);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || journal.append_acknowledged(&[i]))
        })
        .collect();
    for handle in handles {
        match handle.join().unwrap() {
            Err(AppendError::Failed(failure)) => {
                assert_eq!((failure.durable_through, failure.kind), (0, std::io::ErrorKind::StorageFull));
            }
            other => panic!("an append acknowledged through a failed write: {other:?}"),
        }
    }
    assert_eq!(journal.durable_seq(), 0);
}

#[test]
fn snapshots_cover_records_and_compaction_keeps_what_recovery_needs() {
    let dir = TempDir::new("snapshots");
    let options = sync_options().segment_bytes_max(4096).snapshots_kept(2);
    let (journal, _) = open(&dir.0, options.clone());
    let mut infos = Vec::new();
    for i in 1..=600u64 {
        journal.append_acknowledged(&payload(i)).unwrap();
        if i % 200 == 0 {
            infos.push(journal.write_snapshot(i, format!("state through {i}").as_bytes()).unwrap());
        }
    }
    assert_eq!(infos[2].snapshots_deleted, 1, "the third snapshot retires the first");
    assert!(infos.iter().map(|info| info.segments_deleted).sum::<usize>() > 0, "covered segments go");
    assert!(matches!(journal.write_snapshot(601, b""), Err(SnapshotError::Ahead { seq: 601, next: 601 })));
    journal.close().unwrap();
    drop(journal);

    let mut recovery = Journal::open(&dir.0, options.clone()).unwrap();
    let image = recovery.snapshot().unwrap();
    assert_eq!((image.seq(), image.bytes()), (600, &b"state through 600"[..]));
    assert!(recovery.next_record().unwrap().is_none(), "the snapshot covers every record");
    let (journal, report) = recovery.finish().unwrap();
    assert_eq!(report.next_seq, 601);
    assert_eq!(journal.append_acknowledged(b"next").unwrap(), 601);
    drop(journal);

    // Damage the newest snapshot: recovery falls back to the older one and
    // replays from there, reporting the refusal.
    let newest = dir.0.join(files::snapshot_name(600));
    let mut bytes = fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&newest, bytes).unwrap();
    let (snapshot, records, _, report) = replay(&dir.0, options);
    assert_eq!(snapshot, Some(400));
    assert_eq!(records.first().unwrap().0, 401);
    assert_eq!(records.last().unwrap().0, 601);
    assert_eq!(report.refused_snapshots.len(), 1);
    assert_eq!(report.refused_snapshots[0].file, newest);
}

#[test]
fn a_snapshot_waits_for_the_records_it_covers() {
    let dir = TempDir::new("snapshotwait");
    let (journal, _) = open(&dir.0, JournalOptions::new(Durability::Batched { max_delay: Duration::from_millis(30) }));
    let seq = journal.append(b"not yet synced").unwrap().seq();
    let info = journal.write_snapshot(seq, b"image").unwrap();
    assert!(journal.durable_seq() >= seq, "the snapshot became visible only after its records were durable");
    assert_eq!(info.seq, seq);
}

#[test]
fn the_feed_reads_durable_records_across_segments_and_resumes() {
    let dir = TempDir::new("feed");
    let options = sync_options().segment_bytes_max(4096);
    let (journal, _) = open(&dir.0, options.clone());
    let journal = Arc::new(journal);
    let writer = {
        let journal = Arc::clone(&journal);
        std::thread::spawn(move || {
            for i in 1..=500u64 {
                journal.append_acknowledged(&payload(i)).unwrap();
            }
        })
    };
    let mut feed = journal.reader(1).unwrap();
    let mut seen = 0u64;
    // Bounded: 500 records, each within the timeout.
    while seen < 250 {
        let record = feed.next_timeout(Duration::from_secs(10)).unwrap().expect("the writer keeps appending");
        assert!(record.seq <= journal.durable_seq(), "only durable records");
        assert_eq!(record.seq, seen + 1);
        assert_eq!(record.payload, payload(record.seq));
        seen = record.seq;
    }
    let stored = feed.position();
    drop(feed);
    writer.join().unwrap();
    Arc::try_unwrap(journal).unwrap().close().unwrap();

    // Restart, resume from the stored position.
    let (journal, _) = open(&dir.0, options);
    let mut feed = journal.reader(stored).unwrap();
    // Bounded by the 500 records.
    while let Some(record) = feed.try_next().unwrap() {
        assert_eq!(record.seq, seen + 1);
        seen = record.seq;
    }
    assert_eq!(seen, 500);
    assert!(feed.next_timeout(Duration::from_millis(20)).unwrap().is_none());
    assert!(matches!(journal.reader(502), Err(ReadError::Beyond { requested: 502, next: 501 })));
}

#[test]
fn the_feed_refuses_compacted_positions_unless_retained() {
    let dir = TempDir::new("retain");
    let options = sync_options().segment_bytes_max(4096).snapshots_kept(1);
    let (journal, _) = open(&dir.0, options);
    journal.retain_from(100);
    for i in 1..=400u64 {
        journal.append_acknowledged(&payload(i)).unwrap();
    }
    journal.write_snapshot(400, b"image").unwrap();
    let mut feed = journal.reader(100).expect("retained");
    assert_eq!(feed.try_next().unwrap().unwrap().seq, 100);
    assert!(matches!(journal.reader(1), Err(ReadError::Compacted { requested: 1, .. })));
    journal.retain_from(u64::MAX);
    journal.write_snapshot(400, b"image").unwrap();
    assert!(matches!(journal.reader(100), Err(ReadError::Compacted { requested: 100, .. })));
}

#[test]
fn a_torn_tail_is_truncated_reported_and_appended_after() {
    let dir = TempDir::new("torn");
    let (journal, _) = open(&dir.0, sync_options());
    for i in 1..=5u64 {
        journal.append_acknowledged(&payload(i)).unwrap();
    }
    journal.close().unwrap();
    drop(journal);
    let segment = dir.0.join(files::segment_name(1));
    let len = fs::metadata(&segment).unwrap().len();
    // A crash in the middle of the sixth record's write.
    let mut frame = Vec::new();
    let mut builder = format::FrameBuilder::begin(&mut frame, 6);
    builder.push(&mut frame, b"never acknowledged");
    builder.seal(&mut frame);
    let mut bytes = fs::read(&segment).unwrap();
    bytes.extend_from_slice(&frame[..frame.len() - 3]);
    fs::write(&segment, &bytes).unwrap();

    let (_, records, journal, report) = replay(&dir.0, sync_options());
    assert_eq!(records.len(), 5);
    let torn = report.torn.expect("reported");
    assert_eq!((torn.offset, torn.bytes, torn.reason), (len, frame.len() as u64 - 3, TornReason::ShortFrame));
    assert_eq!(fs::metadata(&segment).unwrap().len(), len, "truncated");
    assert_eq!(journal.append_acknowledged(b"six").unwrap(), 6);
}

#[test]
fn bad_options_are_refused() {
    let dir = TempDir::new("options");
    let bad = [
        sync_options().segment_bytes_max(10),
        sync_options().batch_bytes_max(0),
        sync_options().record_bytes_max(1 << 25),
        sync_options().snapshots_kept(0),
        JournalOptions::new(Durability::Batched { max_delay: Duration::ZERO }),
    ];
    for options in bad {
        assert!(matches!(Journal::open(&dir.0, options), Err(OpenError::Options(_))));
    }
}
