//! Flash-sale stress: many threads on one SKU of 10,000 units.
//!
//! Proves, under real contention (8 threads on one SKU, far more attempts
//! than units), that `take` sells exactly the stock, never a unit more, each
//! sale once (every sale names its own SKU version); and that the
//! allocate-then-commit/release shape never oversells either: every
//! reservation is issued once, ends exactly once even when four threads race
//! to end it, the threads' own tallies match the snapshot, and the stock is
//! conserved down to the last unit. The audit is clean throughout (a
//! watcher audits while the buyers run) and at the end.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use stockroom::{
    AllocateError, AllocateRequest, AllocationPolicy, CommitError, Ledger, LotId, NewLot, ReleaseError, ReservationId,
    SkuId,
};

const SKU: SkuId = SkuId(1);
const UNITS: u64 = 10_000;
const THREADS: usize = 8;

fn stocked_ledger() -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fifo).unwrap();
    // Two lots, so sales cross a lot boundary too.
    ledger.receive(SKU, NewLot::new(LotId(1), UNITS / 2)).unwrap();
    ledger.receive(SKU, NewLot::new(LotId(2), UNITS - UNITS / 2)).unwrap();
    ledger
}

/// Audits and checks the totals over and over until `done`; returns how
/// many rounds it ran.
fn spawn_watcher(ledger: &Arc<Ledger>, done: &Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let (ledger, done) = (Arc::clone(ledger), Arc::clone(done));
    std::thread::spawn(move || {
        let mut rounds = 0;
        while !done.load(Ordering::Acquire) && rounds < 10_000 {
            let snapshot = ledger.snapshot(SKU).unwrap();
            let t = snapshot.totals();
            assert!(t.held.get() + t.committed.get() <= UNITS, "oversold mid-run: {t:?}");
            assert_eq!(t.available.get() + t.held.get() + t.committed.get(), UNITS, "units not conserved: {t:?}");
            let audit = ledger.audit();
            assert!(audit.is_clean(), "audit mid-run: {:?}", audit.violations);
            rounds += 1;
            std::thread::yield_now();
        }
        rounds
    })
}

#[test]
fn takes_sell_exactly_the_stock_and_never_more() {
    const ATTEMPTS_PER_THREAD: u64 = 25_000; // 200,000 attempts for 10,000 units
    let ledger = stocked_ledger();
    let version_before = ledger.snapshot(SKU).unwrap().version();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = spawn_watcher(&ledger, &done);
    let start = Arc::new(Barrier::new(THREADS));
    let buyers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (ledger, start) = (Arc::clone(&ledger), Arc::clone(&start));
            std::thread::spawn(move || {
                let request = AllocateRequest::new(SKU, 1);
                let (mut versions, mut refused) = (Vec::new(), 0u64);
                start.wait();
                for _ in 0..ATTEMPTS_PER_THREAD {
                    match ledger.take(&request) {
                        Ok(sale) => {
                            assert_eq!(sale.quantity().get(), 1);
                            versions.push(sale.version);
                        }
                        Err(AllocateError::Insufficient { available, .. }) => {
                            assert_eq!(available.get(), 0);
                            refused += 1;
                        }
                        Err(error) => panic!("unexpected refusal: {error}"),
                    }
                }
                (versions, refused)
            })
        })
        .collect();
    let mut versions = Vec::new();
    let mut refused = 0;
    for buyer in buyers {
        let (mine, theirs_refused) = buyer.join().unwrap();
        versions.extend(mine);
        refused += theirs_refused;
    }
    done.store(true, Ordering::Release);
    watcher.join().unwrap();

    let sold = versions.len() as u64;
    assert_eq!(sold, UNITS, "exactly the stock is sold");
    assert_eq!(sold + refused, ATTEMPTS_PER_THREAD * THREADS as u64, "every attempt has one outcome");
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len() as u64, sold, "no two sales share a version: no duplicate sale");
    assert_eq!(versions, (version_before + 1..=version_before + UNITS).collect::<Vec<_>>());

    let snapshot = ledger.snapshot(SKU).unwrap();
    let totals = snapshot.totals();
    assert_eq!(totals.committed.get(), UNITS);
    assert_eq!(totals.available.get(), 0);
    assert_eq!(totals.held.get(), 0);
    assert_eq!(snapshot.version(), version_before + UNITS);
    for lot in snapshot.lots() {
        assert_eq!(lot.quantities.committed, lot.quantities.received, "{} sold exactly", lot.id);
    }
    let audit = ledger.audit();
    assert!(audit.is_clean(), "{:?}", audit.violations);
}

#[derive(Default)]
struct Tally {
    /// Each allocation's seq and the version it produced.
    seqs: Vec<(u64, u64)>,
    /// The versions the commits and releases produced.
    versions: Vec<u64>,
    granted: u64,
    committed: u64,
    released: u64,
    open: Vec<ReservationId>,
}

#[test]
fn allocations_committed_or_released_never_oversell_and_end_exactly_once() {
    const ITERATIONS_PER_THREAD: u64 = 20_000;
    let ledger = stocked_ledger();
    let version_before = ledger.snapshot(SKU).unwrap().version();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = spawn_watcher(&ledger, &done);
    let start = Arc::new(Barrier::new(THREADS));

    // Phase 1: allocate 1-3 units, keep up to 8 open, end a random one.
    let threads: Vec<_> = (0..THREADS)
        .map(|index| {
            let (ledger, start) = (Arc::clone(&ledger), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(index as u64);
                let mut tally = Tally::default();
                start.wait();
                for _ in 0..ITERATIONS_PER_THREAD {
                    let want = rng.gen_range(1..=3);
                    match ledger.allocate(&AllocateRequest::new(SKU, want)) {
                        Ok(allocation) => {
                            assert_eq!(allocation.quantity().get(), want, "fill-or-kill grants all or nothing");
                            tally.seqs.push((allocation.reservation.seq, allocation.version));
                            tally.granted += want;
                            tally.open.push(allocation.reservation);
                        }
                        Err(AllocateError::Insufficient { available, .. }) => assert!(available.get() < want),
                        Err(error) => panic!("unexpected refusal: {error}"),
                    }
                    if tally.open.len() > 8 {
                        let id = tally.open.swap_remove(rng.gen_range(0..tally.open.len()));
                        if rng.gen_bool(0.7) {
                            let done = ledger.commit(id, None).unwrap_or_else(|e| panic!("open {id} lost: {e}"));
                            assert!(done.returned.is_empty());
                            tally.committed += done.committed.iter().map(|l| l.quantity.get()).sum::<u64>();
                            tally.versions.push(done.version);
                        } else {
                            let done = ledger.release(id).unwrap_or_else(|e| panic!("open {id} lost: {e}"));
                            tally.released += done.lines.iter().map(|l| l.quantity.get()).sum::<u64>();
                            tally.versions.push(done.version);
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let tallies: Vec<Tally> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    done.store(true, Ordering::Release);
    watcher.join().unwrap();

    // A reservation's seq is the version its allocation produced ...
    let issued: Vec<(u64, u64)> = tallies.iter().flat_map(|t| t.seqs.iter().copied()).collect();
    assert!(issued.iter().all(|&(seq, version)| seq == version), "a seq is its allocation's version");
    // ... and every change of phase 1 (allocations, commits, releases; no
    // sweeps: no hold has a deadline) produced its own version, gap-free:
    // so no id was issued twice, and nothing else changed the SKU.
    let mut versions: Vec<u64> = issued.iter().map(|&(seq, _)| seq).collect();
    versions.extend(tallies.iter().flat_map(|t| t.versions.iter().copied()));
    versions.sort_unstable();
    let version_after = ledger.snapshot(SKU).unwrap().version();
    assert_eq!(
        versions,
        (version_before + 1..=version_after).collect::<Vec<_>>(),
        "each reservation id issued exactly once, each change its own version"
    );
    let granted: u64 = tallies.iter().map(|t| t.granted).sum();
    let mut committed: u64 = tallies.iter().map(|t| t.committed).sum();
    let released: u64 = tallies.iter().map(|t| t.released).sum();
    let open: Vec<ReservationId> = tallies.iter().flat_map(|t| t.open.iter().copied()).collect();
    let snapshot = ledger.snapshot(SKU).unwrap();
    let totals = snapshot.totals();
    assert_eq!(totals.committed.get(), committed);
    assert_eq!(totals.held.get(), granted - committed - released);
    assert_eq!(snapshot.reservation_count(), open.len(), "every open order is live, and only those");
    assert!(open.iter().all(|&id| snapshot.reservation(id).is_some()));
    assert!(totals.committed.get() + totals.held.get() <= UNITS);

    // Phase 2: four threads race to end every open reservation; each must
    // end exactly once, every other attempt refused as `Ended`.
    let wins: Arc<Vec<AtomicU32>> = Arc::new(open.iter().map(|_| AtomicU32::new(0)).collect());
    let open = Arc::new(open);
    let start = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|racer| {
            let (ledger, open, wins, start) =
                (Arc::clone(&ledger), Arc::clone(&open), Arc::clone(&wins), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut committed = 0u64;
                start.wait();
                for (at, &id) in open.iter().enumerate() {
                    let won = if racer % 2 == 0 {
                        match ledger.commit(id, None) {
                            Ok(done) => {
                                committed += done.committed.iter().map(|l| l.quantity.get()).sum::<u64>();
                                true
                            }
                            Err(CommitError::Ended { .. }) => false,
                            Err(error) => panic!("unexpected: {error}"),
                        }
                    } else {
                        match ledger.release(id) {
                            Ok(_) => true,
                            Err(ReleaseError::Ended { .. }) => false,
                            Err(error) => panic!("unexpected: {error}"),
                        }
                    };
                    if won {
                        wins[at].fetch_add(1, Ordering::AcqRel);
                    }
                }
                committed
            })
        })
        .collect();
    for racer in racers {
        committed += racer.join().unwrap();
    }
    assert!(wins.iter().all(|w| w.load(Ordering::Acquire) == 1), "every reservation ended exactly once");

    let totals = ledger.snapshot(SKU).unwrap().totals();
    assert_eq!(totals.held.get(), 0);
    assert_eq!(totals.committed.get(), committed, "the threads' tallies match the snapshot");
    assert_eq!(totals.available.get() + totals.committed.get(), UNITS);

    // Phase 3: sell what is left; in all, exactly the stock leaves.
    let mut sold = 0;
    while ledger.take(&AllocateRequest::new(SKU, 1)).is_ok() {
        sold += 1;
    }
    assert_eq!(committed + sold, UNITS, "exactly 10,000 units left the building");
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), UNITS);
    let audit = ledger.audit();
    assert!(audit.is_clean(), "{:?}", audit.violations);
}
