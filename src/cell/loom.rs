//! Loom models of the SKU cell (being rewritten for the in-place write
//! path), and the model runner every loom module shares.

/// Preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
const PREEMPTIONS_DEFAULT: usize = 2;

/// Atomic steps one execution may take before loom calls it a spin.
const BRANCHES_MAX: usize = 20_000;

/// How many preemptions per execution a model asks loom to explore.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Preemptions {
    /// Every interleaving: no bound at all (loom's partial-order reduction
    /// still prunes equivalent ones). For models small enough to afford it.
    Unbounded,
    /// `LOOM_MAX_PREEMPTIONS` (2 if unset), raised to at least this.
    AtLeast(usize),
}

/// Runs `model` under loom and returns how many interleavings (executions)
/// it explored; prints that count, the bound and the wall time.
pub(crate) fn check<F>(name: &str, preemptions: Preemptions, model: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    // The counter lives outside the model, so it is std's, not loom's: loom
    // objects may only be created inside an execution.
    use std::sync::atomic::AtomicUsize;
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    // Whole-ledger models (an order over two SKUs, then an audit) take more
    // atomic steps per execution than loom's default of 1,000 allows; a
    // spin would still be caught, only later.
    builder.max_branches = BRANCHES_MAX;
    builder.preemption_bound = match preemptions {
        Preemptions::Unbounded => None,
        Preemptions::AtLeast(min) => Some(builder.preemption_bound.unwrap_or(PREEMPTIONS_DEFAULT).max(min)),
    };
    let counter = std::sync::Arc::clone(&executions);
    let started = std::time::Instant::now();
    builder.check(move || {
        // Relaxed: a plain tally, read after `check` returns on this thread.
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    let explored = executions.load(std::sync::atomic::Ordering::Relaxed);
    let bound = builder.preemption_bound.map_or_else(|| "unbounded".to_owned(), |bound| format!("<= {bound}"));
    eprintln!("loom model {name}: {explored} interleavings (preemptions {bound}) in {:.2?}", started.elapsed());
    assert!(explored > 1, "{name}: the model never branched, so it checked nothing concurrent");
    explored
}

use crate::clock::{ManualClock, Timestamp};
use crate::command::AllocateRequest;
use crate::error::{AllocateError, CommitError, ReleaseError};
use crate::ids::{LotId, ReservationId, SkuId};
use crate::ledger::Ledger;
use crate::lot::{AdjustmentReason, NewLot};
use crate::policy::AllocationPolicy;
use crate::sync::Arc;
use loom::thread;
use std::time::Duration;

/// The one SKU every model uses.
const SKU: SkuId = SkuId(7);

/// A ledger on a manual clock at 0 with `SKU` defined under `policy` and
/// the given `(lot id, units, expiry)` received in order (receipt instant:
/// the lot id, so no decision depends on the clock).
fn ledger_with(policy: AllocationPolicy, lots: &[(u64, u64, Option<u64>)]) -> (Arc<Ledger>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let ledger = Ledger::with_clock(clock.clone());
    ledger.define_sku(SKU, policy).expect("fresh SKU");
    for &(id, units, expiry) in lots {
        let mut lot = NewLot::new(LotId(id), units).received_at(Timestamp(id));
        if let Some(expiry) = expiry {
            lot = lot.expires_at(Timestamp(expiry));
        }
        ledger.receive(SKU, lot).expect("setup receipt");
    }
    (Arc::new(ledger), clock)
}

/// Audit clean, and the SKU's totals add up to what came in.
fn assert_sound(ledger: &Ledger, received: u64) {
    let audit = ledger.audit();
    assert!(audit.is_clean(), "{:?}", audit.violations);
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    let accounted = totals.available.get() + totals.held.get() + totals.committed.get();
    assert_eq!(accounted as i64, received as i64 + totals.adjusted, "units appeared or vanished: {totals:?}");
}

#[test]
fn takes_of_the_last_unit_sell_it_once() {
    check("takes_of_the_last_unit_sell_it_once", Preemptions::Unbounded, || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fefo, &[(1, 1, None)]);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.take(&AllocateRequest::new(SKU, 1)))
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|racer| racer.join().expect("racer")).collect();
        let sold: Vec<_> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(sold.len(), 1, "exactly one sale: {results:?}");
        assert_eq!(sold[0].version, 2);
        assert!(results.iter().any(|result| matches!(result, Err(AllocateError::Insufficient { .. }))));
        assert_eq!(ledger.snapshot(SKU).expect("defined").totals().committed.get(), 1);
        assert_sound(&ledger, 1);
    });
}

#[test]
fn holds_racing_for_the_last_units_get_distinct_ids_and_never_oversell() {
    check("holds_racing_for_the_last_units", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 3, None)]);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || {
                    let hold = ledger.allocate(&AllocateRequest::new(SKU, 2))?;
                    ledger.commit(hold.reservation, None).map(|_| hold).map_err(|error| panic!("{error}"))
                })
            })
            .collect();
        let results: Vec<Result<_, AllocateError>> =
            racers.into_iter().map(|racer| racer.join().expect("racer")).collect();
        assert_eq!(
            results.iter().filter(|result| result.is_ok()).count(),
            1,
            "3 units hold one order of 2: {results:?}"
        );
        let totals = ledger.snapshot(SKU).expect("defined").totals();
        assert_eq!((totals.available.get(), totals.held.get(), totals.committed.get()), (1, 0, 2));
        assert_sound(&ledger, 3);
    });
}

#[test]
fn a_commit_racing_a_release_of_the_same_hold_ends_it_once() {
    check("commit_races_release", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 5, None)]);
        let hold = ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("stocked").reservation;
        let committer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.commit(hold, None))
        };
        let releaser = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.release(hold))
        };
        let (committed, released) = (committer.join().expect("committer"), releaser.join().expect("releaser"));
        let totals = ledger.snapshot(SKU).expect("defined").totals();
        match (&committed, &released) {
            (Ok(_), Err(ReleaseError::Ended { .. })) => {
                assert_eq!((totals.available.get(), totals.committed.get()), (3, 2))
            }
            (Err(CommitError::Ended { .. }), Ok(_)) => {
                assert_eq!((totals.available.get(), totals.committed.get()), (5, 0))
            }
            other => panic!("a hold must end exactly once: {other:?}"),
        }
        assert_eq!(totals.held.get(), 0);
        assert_sound(&ledger, 5);
    });
}

#[test]
fn a_commit_racing_the_lapse_of_its_hold_ends_it_once() {
    check("commit_races_lapse", Preemptions::AtLeast(2), || {
        let (ledger, clock) = ledger_with(AllocationPolicy::Fifo, &[(1, 4, None)]);
        let hold = ledger
            .allocate(&AllocateRequest::new(SKU, 3).hold_for(Duration::from_millis(10)))
            .expect("stocked")
            .reservation;
        let committer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.commit(hold, None))
        };
        let sweeper = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                clock.set(Timestamp(10));
                ledger.snapshot(SKU).expect("defined")
            })
        };
        let committed = committer.join().expect("committer");
        let seen = sweeper.join().expect("sweeper");
        let totals = ledger.snapshot(SKU).expect("defined").totals();
        match committed {
            Ok(_) => assert_eq!((totals.available.get(), totals.committed.get()), (1, 3), "committed in time"),
            Err(CommitError::Expired { .. } | CommitError::Ended { .. }) => {
                assert_eq!((totals.available.get(), totals.committed.get()), (4, 0), "lapsed: every unit back")
            }
            Err(other) => panic!("{other}"),
        }
        assert_eq!(totals.held.get(), 0);
        assert_eq!(seen.totals().held.get(), 0, "a snapshot at the deadline never counts the hold as held");
        assert_sound(&ledger, 4);
    });
}

#[test]
fn an_old_id_never_ends_the_hold_that_reuses_its_slot() {
    check("old_id_vs_slot_reuse", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 2, None)]);
        let old = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("stocked").reservation;
        let reuser = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                let released = ledger.release(old);
                let new = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("a unit is free").reservation;
                (released, new)
            })
        };
        let stale = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.commit(old, None))
        };
        let (released, new) = reuser.join().expect("reuser");
        let stale = stale.join().expect("stale");
        assert_ne!(new.seq, old.seq);
        // The old id ended once, by one of the two; the new hold is live.
        assert!(released.is_ok() != stale.is_ok(), "the old hold ends exactly once: {released:?} {stale:?}");
        let snapshot = ledger.snapshot(SKU).expect("defined");
        assert!(snapshot.reservation(new).is_some(), "the new hold is untouched by the old id");
        assert!(snapshot.reservation(old).is_none());
        assert_eq!(snapshot.totals().held.get(), 1);
        assert_sound(&ledger, 2);
    });
}

#[test]
fn a_hold_racing_a_receipt_that_sorts_first_draws_by_the_order_it_met() {
    check("hold_races_out_of_order_receipt", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fefo, &[(1, 1, Some(100))]);
        let receiver = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                ledger.receive(SKU, NewLot::new(LotId(2), 1).received_at(Timestamp(2)).expires_at(Timestamp(50)))
            })
        };
        let holder = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&AllocateRequest::new(SKU, 1)))
        };
        let received = receiver.join().expect("receiver").expect("a new lot");
        let hold = holder.join().expect("holder").expect("a unit");
        // FEFO: after the receipt, lot 2 (expiring first) goes first.
        let expected = if hold.version > received.version { LotId(2) } else { LotId(1) };
        assert_eq!(hold.lines[0].lot, expected, "the draw is the policy's at the version it replaced");
        assert_sound(&ledger, 2);
    });
}

#[test]
fn a_hold_racing_a_shrink_of_its_lot_is_resourced_or_never_sees_the_units() {
    check("hold_races_displacing_shrink", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 2, None), (2, 2, None)]);
        let holder = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("4 units"))
        };
        let shrinker = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.adjust(SKU, LotId(1), -2, AdjustmentReason::Damage).expect("on hand"))
        };
        let hold = holder.join().expect("holder");
        let adjusted = shrinker.join().expect("shrinker");
        let reservation = ledger.reservation(hold.reservation).expect("live");
        assert_eq!(reservation.held().get(), 2, "re-sourced, not shorted: lot 2 had the units");
        if hold.version < adjusted.version {
            assert_eq!(adjusted.shortfalls.len(), 1, "the shrink found the hold on lot 1 and moved it");
            assert_eq!(reservation.lines.iter().map(|line| line.lot).collect::<Vec<_>>(), [LotId(2)]);
        } else {
            assert!(adjusted.shortfalls.is_empty(), "the shrink took only unheld units");
            assert_eq!(hold.lines[0].lot, LotId(2), "lot 1 was gone when the hold drew");
        }
        assert_sound(&ledger, 4);
    });
}

#[test]
fn a_snapshot_is_one_version_whole_while_writers_land_and_help() {
    check("snapshot_vs_writers", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 3, None)]);
        let writer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                let hold = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("stocked");
                ledger.take(&AllocateRequest::new(SKU, 1)).expect("stocked");
                ledger.commit(hold.reservation, None).expect("live");
            })
        };
        let snapshot = ledger.snapshot(SKU).expect("defined");
        writer.join().expect("writer");
        // Each version has one state: versions 1..=4 after receipt, hold,
        // sale, commit.
        let totals = snapshot.totals();
        let state = (totals.available.get(), totals.held.get(), totals.committed.get(), snapshot.reservation_count());
        let expected = match snapshot.version() {
            1 => (3, 0, 0, 0),
            2 => (2, 1, 0, 1),
            3 => (1, 1, 1, 1),
            4 => (1, 0, 2, 0),
            version => panic!("version {version} never existed"),
        };
        assert_eq!(state, expected, "a torn snapshot at version {}", snapshot.version());
        assert_sound(&ledger, 3);
    });
}

#[test]
fn a_reader_on_the_old_structure_reads_its_own_version() {
    check("reader_vs_structure_swap", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fefo, &[(1, 1, Some(100))]);
        let receiver = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                ledger.receive(SKU, NewLot::new(LotId(2), 2).received_at(Timestamp(2)).expires_at(Timestamp(50)))
            })
        };
        let snapshot = ledger.snapshot(SKU).expect("defined");
        receiver.join().expect("receiver").expect("new lot");
        let lots: Vec<LotId> = snapshot.lots().map(|lot| lot.id).collect();
        match snapshot.version() {
            1 => assert_eq!(lots, [LotId(1)]),
            2 => assert_eq!(lots, [LotId(2), LotId(1)], "the new structure orders lot 2 first"),
            version => panic!("version {version} never existed"),
        }
        assert_sound(&ledger, 3);
    });
}

/// Ids handed out by two racing holds are distinct, whoever claimed which
/// slot first (the claim of a fresh slot races a scan of the table).
#[test]
fn racing_holds_never_share_a_slot() {
    check("racing_holds_share_no_slot", Preemptions::AtLeast(2), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 4, None)]);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("stocked").reservation)
            })
            .collect();
        let ids: Vec<ReservationId> = racers.into_iter().map(|racer| racer.join().expect("racer")).collect();
        assert_ne!(ids[0], ids[1]);
        for id in &ids {
            ledger.release(*id).expect("each hold is its own");
        }
        assert_eq!(ledger.snapshot(SKU).expect("defined").totals().available.get(), 4);
        assert_sound(&ledger, 4);
    });
}

/// A change that lost an attempt asks for quiet (under loom every lost
/// attempt counts as long), and a seller that meets the quiet head
/// waits, then clears it: the shrink and every sale land exactly once,
/// nothing is lost, and the shrink lands on the head it computed on.
/// Catches: a quiet flag a landing change carries on (the seller waits for
/// nobody, the model spins out), a waiter that proceeds on a quiet head
/// without clearing it (the owner's swap succeeds on a moved head: the
/// audit finds the lost sale), and an owner refused on its quiet head that
/// leaves the flag standing.
#[test]
fn a_long_change_gets_quiet_and_a_seller_waits_it_out() {
    check("long_change_quiet", Preemptions::AtLeast(3), || {
        let (ledger, _) = ledger_with(AllocationPolicy::Fifo, &[(1, 2, None), (2, 4, None)]);
        let hold = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("stocked");
        let seller = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || (0..3).filter(|_| ledger.take(&AllocateRequest::new(SKU, 1)).is_ok()).count() as u64)
        };
        let shrinker = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.adjust(SKU, LotId(1), -1, AdjustmentReason::Damage))
        };
        let sold = seller.join().expect("seller");
        let adjusted = shrinker.join().expect("shrinker").expect("one unit of lot 1 is always on hand");
        assert_eq!(sold, 3, "5 units were free for 3 sales and a shrink of 1");
        assert!(adjusted.shortfalls.iter().all(|shortfall| shortfall.shorted.is_zero()));
        assert_eq!(ledger.reservation(hold.reservation).expect("live").held().get(), 1);
        let totals = ledger.snapshot(SKU).expect("defined").totals();
        assert_eq!((totals.committed.get(), totals.held.get(), totals.available.get()), (3, 1, 1));
        assert_sound(&ledger, 6);
    });
}

/// A change sink that keeps the `(sku, version)` of every record, in the
/// order they arrive.
struct Recording(crate::sync::Mutex<Vec<(SkuId, u64)>>);

impl crate::cell::record::ChangeSink for Recording {
    fn append(&self, record: &crate::cell::record::Change<'_>) {
        self.0.lock().push((record.sku, record.version));
    }
}

/// With a journal, each SKU's records reach it in version order, one per
/// version, whichever thread lands which change and whoever is preempted
/// between its compare-and-swap and its append (`SkuCell::journal_in_order`):
/// what makes a journal prefix hold a prefix of every SKU's versions.
/// Checked with the wait removed: the model finds `[1, 2, 4, 3]`.
#[test]
fn journal_records_arrive_in_version_order() {
    check("journal_records_arrive_in_version_order", Preemptions::AtLeast(2), || {
        // std's Arc: the ledger holds the sink as a trait object.
        let sink = std::sync::Arc::new(Recording(crate::sync::Mutex::new(Vec::new())));
        let mut ledger = Ledger::with_clock(Arc::new(ManualClock::new(Timestamp::from_millis(0))));
        ledger.test_sink = Some(sink.clone());
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 4)).unwrap();
        let ledger = Arc::new(ledger);
        let other = {
            let ledger = Arc::clone(&ledger);
            loom::thread::spawn(move || {
                ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
            })
        };
        let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 1)).unwrap();
        ledger.commit(held.reservation, None).unwrap();
        other.join().unwrap();
        let versions: Vec<u64> = sink.0.lock().iter().map(|&(_, version)| version).collect();
        assert_eq!(versions, [1, 2, 3, 4], "records in version order, one per version");
        assert!(ledger.audit().is_clean());
    });
}
