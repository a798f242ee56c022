//! The ledger kept in a journal, case by case (the model proptest and the
//! crash test cover the general case): a hold lapses across a restart at
//! the first look; a checkpoint lets covered segments go and recovery
//! starts from it; a record no build wrote is refused with its sequence
//! number; the change feed reads what the ledger recorded; idempotency keys
//! outlive the process.
#![cfg(feature = "journal")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stockroom::journal::{Durability, Journal, JournalOptions};
use stockroom::{
    AllocateRequest, AllocationPolicy, Command, FeedRecord, IdempotencyKey, Ledger, LedgerOpenError, LotId,
    ManualClock, NewLot, SkuId, Timestamp,
};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("stockroom-ledger-journal-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options() -> JournalOptions {
    JournalOptions::new(Durability::Sync).segment_bytes_max(4 << 10)
}

fn open(dir: &Dir, clock: &Arc<ManualClock>) -> Ledger {
    Ledger::builder().clock(clock.clone()).open(&dir.0, options()).unwrap().0
}

#[test]
fn a_hold_lapses_across_a_restart_at_the_first_look() {
    let dir = Dir::new("lapse");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let held = {
        let ledger = open(&dir, &clock);
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 5)).unwrap();
        let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 2).hold_for(Duration::from_secs(10))).unwrap();
        ledger.acknowledge().unwrap();
        held
    };
    clock.advance(Duration::from_secs(60));
    let ledger = open(&dir, &clock);
    let snapshot = ledger.snapshot(SkuId(1)).unwrap();
    assert_eq!(snapshot.reservation_count(), 0, "lapsed while the process was down");
    assert_eq!(snapshot.totals().available.get(), 5);
    assert!(ledger.commit(held.reservation, None).is_err(), "a lapsed hold cannot be committed");
}

#[test]
fn a_reservation_keeps_its_id_and_deadline_across_a_restart() {
    let dir = Dir::new("ids");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let (held, before) = {
        let ledger = open(&dir, &clock);
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 5)).unwrap();
        let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 2).hold_for(Duration::from_secs(10))).unwrap();
        ledger.acknowledge().unwrap();
        (held, ledger.snapshot(SkuId(1)).unwrap().to_data())
    };
    let ledger = open(&dir, &clock);
    assert_eq!(ledger.snapshot(SkuId(1)).unwrap().to_data(), before, "same lots, reservations, version");
    let committed = ledger.commit(held.reservation, None).unwrap();
    assert_eq!(committed.version, before.version + 1);
}

#[test]
fn a_checkpoint_lets_covered_segments_go_and_recovery_starts_from_it() {
    let dir = Dir::new("checkpoint");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    {
        let ledger = open(&dir, &clock);
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 100_000)).unwrap();
        // Acknowledged in groups: each group commit ends a frame, and
        // segments roll over at frame boundaries, so the takes span
        // several segments however fast they run.
        for i in 0..2_000 {
            ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
            if i % 100 == 99 {
                ledger.acknowledge().unwrap();
            }
        }
        let segments = |dir: &PathBuf| std::fs::read_dir(dir).unwrap().count();
        let before = segments(&dir.0);
        ledger.checkpoint().unwrap();
        assert!(segments(&dir.0) < before, "covered segments deleted ({before} files before)");
        for _ in 0..10 {
            ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
        }
        ledger.acknowledge().unwrap();
    }
    let (ledger, recovered) = Ledger::builder().clock(clock.clone()).open(&dir.0, options()).unwrap();
    assert!(recovered.journal.snapshot_seq.is_some(), "{recovered:?}");
    assert_eq!(recovered.changes, 10, "only the records after the checkpoint were applied: {recovered:?}");
    assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), 2_010);
}

#[test]
fn a_record_no_build_wrote_is_refused_with_its_sequence() {
    let dir = Dir::new("foreign");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    {
        let ledger = open(&dir, &clock);
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.acknowledge().unwrap();
    }
    {
        // A well-framed, checksummed record whose payload is not a ledger's.
        let mut recovery = Journal::open(&dir.0, options()).unwrap();
        while recovery.next_record().unwrap().is_some() {}
        let (journal, _) = recovery.finish().unwrap();
        journal.append_acknowledged(&[1, 200, 7, 7]).unwrap();
        journal.append_acknowledged(&[9]).unwrap();
    }
    match Ledger::builder().clock(clock.clone()).open(&dir.0, options()) {
        Err(LedgerOpenError::Record { seq: 2, reason }) => assert!(!reason.is_empty()),
        other => panic!("expected record 2 refused, got {other:?}"),
    }
}

#[test]
fn the_change_feed_reads_what_the_ledger_recorded_and_resumes() {
    let dir = Dir::new("feed");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let ledger = open(&dir, &clock);
    ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
    ledger.receive(SkuId(1), NewLot::new(LotId(1), 5)).unwrap();
    ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
    ledger.acknowledge().unwrap();
    let journal = ledger.journal().unwrap();
    let mut reader = journal.reader(1).unwrap();
    let mut seen = Vec::new();
    while let Some(record) = reader.try_next().unwrap() {
        seen.push(FeedRecord::decode(record.payload).unwrap());
    }
    assert!(matches!(seen[0], FeedRecord::SkuDefined { sku: SkuId(1), .. }), "{seen:?}");
    assert!(matches!(seen[1], FeedRecord::SkuChanged { sku: SkuId(1), version: 1, .. }), "{seen:?}");
    assert!(matches!(seen[2], FeedRecord::SkuChanged { sku: SkuId(1), version: 2, .. }), "{seen:?}");
    assert_eq!(seen.len(), 3, "defined, received, sold");
    let resume_at = reader.position();
    ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
    ledger.acknowledge().unwrap();
    let mut resumed = journal.reader(resume_at).unwrap();
    let next = resumed.try_next().unwrap().expect("the next change, from the stored position");
    assert!(matches!(FeedRecord::decode(next.payload), Ok(FeedRecord::SkuChanged { version: 3, .. })));
    assert!(resumed.try_next().unwrap().is_none());
}

#[test]
fn a_keyed_command_retried_after_a_restart_replays() {
    let dir = Dir::new("keys");
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let key = IdempotencyKey::new("order-17").unwrap();
    let take = Command::Take(AllocateRequest::new(SkuId(1), 2));
    let first = {
        let ledger = open(&dir, &clock);
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 5)).unwrap();
        let first = ledger.execute_keyed(&key, &take).unwrap();
        ledger.acknowledge().unwrap();
        first
    };
    clock.advance(Duration::from_secs(60));
    let ledger = open(&dir, &clock);
    let retry = ledger.execute_keyed(&key, &take).unwrap();
    assert!(retry.replay && retry.outcome == first.outcome, "replayed, not applied again");
    assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), 2, "sold once");
}
