//! Loom models of the SKU cell, driven through the ledger's commands.
//!
//! What this file proves: for every interleaving loom explores (within each
//! model's preemption bound) of two threads running ledger commands against
//! one SKU, the compare-and-swap loop in [`SkuCell::update`](super::SkuCell::update)
//! and the sales word beside it ([`SkuCell::take_fast`](super::SkuCell::take_fast))
//! never oversells, never loses or invents a unit, ends a reservation at most
//! once, draws FEFO from the version it replaces, and publishes whole
//! versions only: a reader never sees a torn version, nor one older than a
//! write that was acknowledged before the read began.
//!
//! Every model ends with `audit().is_clean()` (conservation per lot, held
//! against holds, totals against lots, the cursor), an explicit per-lot
//! "held + committed <= received + adjusted", and exact assertions on what
//! each racer got: which one won, what the loser was told, and the final
//! counters.
//!
//! Under `stockroom_loom` the snapshot cell is a loom mutex around the `Arc`
//! (see `crate::sync`), so loom schedules every load and every swap; the
//! backoff is a yield. What is checked is the logic built on the cell's
//! sequentially consistent load / compare-and-swap contract, not arc-swap's
//! own implementation of it. Ledgers are tiny (one SKU, one to four lots,
//! two threads and the main thread), which makes most models affordable
//! with no preemption bound at all: every interleaving, up to loom's
//! partial-order reduction. The one that is not runs with at least 3.
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/loom --lib loom -- --nocapture --test-threads=1
//! ```

use crate::audit::audit_sku;
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::command::AllocateRequest;
use crate::command::{OrderLine, OrderRequest};
use crate::error::{AdjustError, AllocateError, CommitError, OrderError, ReleaseError};
use crate::ids::{LotId, ReservationId, SkuId};
use crate::ledger::{Ledger, QueryError};
use crate::lot::{AdjustmentReason, LotQuantities, NewLot};
use crate::outcome::{Line, Shortfall};
use crate::policy::{AllocationPolicy, FillMode};
use crate::quantity::Quantity;
use crate::sync::{Arc, AtomicU64, Ordering};
use loom::thread;

/// The one SKU every model uses.
const SKU: SkuId = SkuId(7);

/// Preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
const PREEMPTIONS_DEFAULT: usize = 2;

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

fn quantity(units: u64) -> Quantity {
    Quantity::new(units).expect("a small test quantity")
}

fn line(lot: u64, units: u64) -> Line {
    Line { lot: LotId(lot), quantity: quantity(units) }
}

/// A ledger on the system clock with `SKU` defined under `policy` and the
/// given `(lot id, units)` received in order. Receipt instants are explicit
/// (the lot id), so no decision depends on the wall clock.
fn ledger_with(policy: AllocationPolicy, lots: &[(u64, u64)]) -> Arc<Ledger> {
    let ledger = Ledger::new();
    ledger.define_sku(SKU, policy).expect("fresh SKU");
    for &(id, units) in lots {
        ledger.receive(SKU, NewLot::new(LotId(id), units).received_at(Timestamp(id))).expect("setup receipt");
    }
    Arc::new(ledger)
}

fn request(units: u64) -> AllocateRequest {
    AllocateRequest::new(SKU, units)
}

/// A shortfall no other lot could cover.
fn shorted(reservation: ReservationId, units: u64) -> Shortfall {
    Shortfall { reservation, quantity: quantity(units), resourced: Vec::new(), shorted: quantity(units) }
}

fn lot(ledger: &Ledger, id: u64) -> LotQuantities {
    ledger.snapshot(SKU).expect("SKU defined").lot(LotId(id)).expect("lot received").quantities
}

fn version(ledger: &Ledger) -> u64 {
    ledger.snapshot(SKU).expect("SKU defined").version()
}

/// The invariants every model ends with: a clean audit, and no lot with
/// more units held or sold than it ever had.
fn assert_sound(ledger: &Ledger) {
    let report = ledger.audit();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
    for lot in ledger.snapshot(SKU).expect("SKU defined").lots() {
        let q = lot.quantities;
        let stock = i128::from(q.received.get()) + i128::from(q.adjusted);
        let out = i128::from(q.held.get()) + i128::from(q.committed.get());
        assert!(out <= stock, "{}: oversold: {q:?}", lot.id);
    }
}

/// Race: two fill-or-kill allocations of 2 for the last 3 units of a lot.
///
/// Asserts: exactly one is granted, with the lot's 2 units at version 2;
/// the other is refused `Insufficient { requested: 2, available: 1 }`
/// (what remained after the winner); the lot ends 1 available, 2 held.
#[test]
fn allocations_race_for_the_last_units() {
    check("allocations_race_for_the_last_units", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 3)]);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.allocate(&request(2)))
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|racer| racer.join().unwrap()).collect();

        let winners: Vec<_> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "exactly one racer gets the units: {results:?}");
        let winner = winners[0];
        assert_eq!(winner.lines, [line(1, 2)]);
        assert_eq!(winner.version, 2);
        let loser = results.iter().find_map(|result| result.as_ref().err()).expect("one refusal");
        assert_eq!(*loser, AllocateError::Insufficient { sku: SKU, requested: quantity(2), available: quantity(1) });

        let lot = lot(&ledger, 1);
        assert_eq!((lot.available.get(), lot.held.get(), lot.committed.get()), (1, 2, 0));
        assert_eq!(ledger.reservation(winner.reservation).expect("live").held(), quantity(2));
        assert_eq!(version(&ledger), 2);
        assert_sound(&ledger);
    });
}

/// Race: an allocation of 4 against a spoilage adjustment of -3 on the
/// same 5-unit lot.
///
/// Asserts: the shrink is always applied (adjusted -3, 2 on hand). Either
/// the allocation landed first, got 4 units, and the adjustment reports a
/// shortfall of exactly 2 naming that reservation (which keeps 2, shorted
/// 2); or the shrink landed first and the allocation was refused with
/// `Insufficient { available: 2 }`. Never oversold.
#[test]
fn allocation_races_a_shrinking_adjustment() {
    check("allocation_races_a_shrinking_adjustment", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 5)]);
        let allocator = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&request(4)))
        };
        let adjuster = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.adjust(SKU, LotId(1), -3, AdjustmentReason::Spoilage))
        };
        let allocation = allocator.join().unwrap();
        let adjusted = adjuster.join().unwrap().expect("reality is never refused");

        let after = lot(&ledger, 1);
        assert_eq!(after.adjusted, -3);
        assert_eq!(after.on_hand(), 2);
        assert_eq!(adjusted.quantities, after);
        match allocation {
            Ok(allocation) => {
                assert_eq!((allocation.version, adjusted.version), (2, 3));
                assert_eq!(allocation.lines, [line(1, 4)]);
                assert_eq!(adjusted.shortfalls, [shorted(allocation.reservation, 2)]);
                let reservation = ledger.reservation(allocation.reservation).expect("still live");
                assert_eq!((reservation.granted, reservation.shorted), (quantity(4), quantity(2)));
                assert_eq!(reservation.lines, [line(1, 2)]);
                assert_eq!((after.available.get(), after.held.get()), (0, 2));
            }
            Err(refusal) => {
                assert_eq!(adjusted.version, 2);
                assert!(adjusted.shortfalls.is_empty());
                assert_eq!(
                    refusal,
                    AllocateError::Insufficient { sku: SKU, requested: quantity(4), available: quantity(2) }
                );
                assert_eq!((after.available.get(), after.held.get()), (2, 0));
            }
        }
        assert_eq!(version(&ledger), 3 - u64::from(adjusted.version == 2));
        assert_sound(&ledger);
    });
}

/// Race: a release and a commit of the same reservation (2 of a lot's 3).
///
/// Asserts: exactly one ends it and the other gets `Ended`; a winning
/// release returns both units (3 available, none committed), a winning
/// commit ships both (2 committed, 1 available); the reservation is gone.
#[test]
fn release_races_commit_on_one_reservation() {
    check("release_races_commit_on_one_reservation", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 3)]);
        let id = ledger.allocate(&request(2)).expect("setup hold").reservation;
        let releaser = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.release(id))
        };
        let committer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.commit(id, None))
        };
        let released = releaser.join().unwrap();
        let committed = committer.join().unwrap();

        let after = lot(&ledger, 1);
        match (released, committed) {
            (Ok(released), Err(refusal)) => {
                assert_eq!(released.lines, [line(1, 2)]);
                assert_eq!(released.version, 3);
                assert_eq!(refusal, CommitError::Ended { id });
                assert_eq!((after.available.get(), after.held.get(), after.committed.get()), (3, 0, 0));
            }
            (Err(refusal), Ok(committed)) => {
                assert_eq!(committed.committed, [line(1, 2)]);
                assert!(committed.returned.is_empty());
                assert_eq!(committed.version, 3);
                assert_eq!(refusal, ReleaseError::Ended { id });
                assert_eq!((after.available.get(), after.held.get(), after.committed.get()), (1, 0, 2));
            }
            (released, committed) => panic!("not exactly one winner: {released:?} / {committed:?}"),
        }
        assert_eq!(ledger.reservation(id), Err(QueryError::Ended { id }));
        assert_eq!(version(&ledger), 3);
        assert_sound(&ledger);
    });
}

/// Race: a writer selling 1 unit twice (publishing versions 2 and 3, and
/// acknowledging each by storing its version once the call returned)
/// against a reader taking two snapshots.
///
/// Asserts: every snapshot the reader loads is whole (its totals are
/// exactly those of its version: `committed = version - 1`,
/// `available = 3 - committed`, and the version passes the audit) and is
/// never older than the last acknowledged write the reader saw before
/// loading; the reader's versions never go backwards.
#[test]
fn snapshot_is_never_torn_nor_older_than_an_acknowledged_write() {
    check("snapshot_is_never_torn_nor_older_than_an_acknowledged_write", Preemptions::AtLeast(3), || {
        const SALES: u64 = 3;
        const READS: usize = 3;
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, SALES)]);
        let acknowledged = Arc::new(AtomicU64::new(1));
        let writer = {
            let ledger = Arc::clone(&ledger);
            let acknowledged = Arc::clone(&acknowledged);
            thread::spawn(move || {
                for expected in 2..=SALES + 1 {
                    let sale = ledger.take(&request(1)).expect("stock for both sales");
                    assert_eq!(sale.version, expected);
                    // Release: the acknowledgement is sent after the sale returned.
                    acknowledged.store(sale.version, Ordering::Release);
                }
            })
        };
        let reader = {
            let ledger = Arc::clone(&ledger);
            let acknowledged = Arc::clone(&acknowledged);
            thread::spawn(move || {
                let mut last_seen = 0;
                for _ in 0..READS {
                    // Acquire: pairs with the writer's Release.
                    let floor = acknowledged.load(Ordering::Acquire);
                    let snapshot = ledger.snapshot(SKU).expect("SKU defined");
                    let version = snapshot.version();
                    assert!(version >= floor, "read version {version} after version {floor} was acknowledged");
                    assert!(version >= last_seen, "versions went backwards: {last_seen} then {version}");
                    last_seen = version;
                    let totals = snapshot.totals();
                    assert_eq!(totals.committed.get(), version - 1, "torn at version {version}: {totals:?}");
                    assert_eq!(totals.available.get(), SALES - totals.committed.get(), "torn: {totals:?}");
                    let mut report = crate::audit::AuditReport::default();
                    audit_sku(snapshot.state(), &mut report);
                    assert!(report.is_clean(), "version {version}: {:?}", report.violations);
                }
            })
        };
        writer.join().unwrap();
        reader.join().unwrap();

        assert_eq!(version(&ledger), SALES + 1);
        assert_eq!(lot(&ledger, 1).committed.get(), SALES);
        assert_sound(&ledger);
    });
}

/// Race: two FEFO allocations of 3 across lots 1 (expires at 10), 2
/// (at 20) and 3 (at 30), 2 units each, received out of expiry order,
/// beside a 5-unit lot 9 that expired at 0 (the clock, a loom-backed
/// `ManualClock`, reads 0).
///
/// Asserts: both are granted; the one that published version 5 holds
/// exactly FEFO's choice from version 4 (lot 1: 2, lot 2: 1) and the one
/// at version 6 FEFO's choice from version 5 (lot 2: 1, lot 3: 2); per lot
/// the lines add up to the lot's `held` (no unit allocated twice); the
/// expired lot is untouched.
#[test]
fn fefo_allocations_race_across_the_same_lots() {
    check("fefo_allocations_race_across_the_same_lots", Preemptions::Unbounded, || {
        let ledger = Ledger::with_clock(Arc::new(ManualClock::new(Timestamp(0))));
        ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("fresh SKU");
        for (id, expires) in [(3, 30), (9, 0), (1, 10), (2, 20)] {
            let units = if id == 9 { 5 } else { 2 };
            let new_lot = NewLot::new(LotId(id), units).received_at(Timestamp(0)).expires_at(Timestamp(expires));
            ledger.receive(SKU, new_lot).expect("setup receipt");
        }
        let ledger = Arc::new(ledger);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.allocate(&request(3)).expect("6 eligible units for 2 x 3"))
            })
            .collect();
        let mut allocations: Vec<_> = racers.into_iter().map(|racer| racer.join().unwrap()).collect();
        allocations.sort_by_key(|allocation| allocation.version);

        assert_eq!(allocations[0].version, 5);
        assert_eq!(allocations[0].lines, [line(1, 2), line(2, 1)]);
        assert_eq!(allocations[1].version, 6);
        assert_eq!(allocations[1].lines, [line(2, 1), line(3, 2)]);
        for id in [1, 2, 3] {
            let drawn: u64 = allocations
                .iter()
                .flat_map(|allocation| &allocation.lines)
                .filter(|line| line.lot == LotId(id))
                .map(|line| line.quantity.get())
                .sum();
            let lot = lot(&ledger, id);
            assert_eq!((drawn, lot.held.get(), lot.available.get()), (2, 2, 0), "lot {id}");
        }
        let expired = lot(&ledger, 9);
        assert_eq!((expired.available.get(), expired.held.get()), (5, 0));
        assert_sound(&ledger);
    });
}

/// Race: releasing a reservation that holds 2 of a lot's 3 units against
/// a partial allocation of 2 (1 unit is free when both start).
///
/// Asserts: both always succeed and the release returns the hold's 2
/// units. Either the allocation lands first and gets the free unit
/// (version 3, then the release at 4: 2 available, 1 held), or the release
/// lands first and the allocation gets 2 (versions 3 then 4: 1 available,
/// 2 held); either way `available + held` stays 3: no unit lost or doubled.
#[test]
fn release_races_allocate() {
    check("release_races_allocate", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 3)]);
        let first = ledger.allocate(&request(2)).expect("setup hold").reservation;
        let releaser = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.release(first))
        };
        let allocator = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&request(2).fill(FillMode::Partial)))
        };
        let released = releaser.join().unwrap().expect("the hold is live");
        let allocation = allocator.join().unwrap().expect("at least 1 unit is always free");

        assert_eq!(released.lines, [line(1, 2)]);
        assert_eq!(allocation.reservation, ReservationId { sku: SKU, seq: 2 });
        let after = lot(&ledger, 1);
        assert_eq!(after.available.get() + after.held.get(), 3, "a unit was lost or doubled: {after:?}");
        if allocation.version == 3 {
            assert_eq!(released.version, 4);
            assert_eq!(allocation.lines, [line(1, 1)]);
            assert_eq!((after.available.get(), after.held.get()), (2, 1));
        } else {
            assert_eq!((released.version, allocation.version), (3, 4));
            assert_eq!(allocation.lines, [line(1, 2)]);
            assert_eq!((after.available.get(), after.held.get()), (1, 2));
        }
        assert_eq!(ledger.reservation(first), Err(QueryError::Ended { id: first }));
        assert_sound(&ledger);
    });
}

/// Race: two buyers each trying two sales of 1 from a lot of 1: one sale
/// takes the last unit, the other three meet a sold-out SKU.
///
/// Asserts: exactly one of the four sales succeeds (version 2); every
/// other is `Insufficient { requested: 1, available: 0 }` and publishes
/// nothing (the version stays 2); the lot ends 1 committed, 0 available.
#[test]
fn takes_race_when_sold_out() {
    check("takes_race_when_sold_out", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 1)]);
        let buyers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || [ledger.take(&request(1)), ledger.take(&request(1))])
            })
            .collect();
        let results: Vec<_> = buyers.into_iter().flat_map(|buyer| buyer.join().unwrap()).collect();

        let sales: Vec<_> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(sales.len(), 1, "exactly one sale of the last unit: {results:?}");
        assert_eq!(sales[0].lines, [line(1, 1)]);
        assert_eq!(sales[0].version, 2);
        let sold_out = AllocateError::Insufficient { sku: SKU, requested: quantity(1), available: Quantity::ZERO };
        for refusal in results.iter().filter_map(|result| result.as_ref().err()) {
            assert_eq!(*refusal, sold_out);
        }
        let after = lot(&ledger, 1);
        assert_eq!((after.available.get(), after.committed.get()), (0, 1));
        assert_eq!(version(&ledger), 2, "a refusal published a version");
        assert_sound(&ledger);
    });
}

/// Race: receiving a 2-unit lot that sorts first under FIFO (received at
/// 0) into a SKU whose first lot (received at 5) is sold out and whose
/// second (received at 6) has 1 unit, against a partial allocation of 2.
///
/// Asserts: both always succeed. Either the allocation lands first and
/// gets lot 6's last unit (version 4, the receipt 5), or the receipt lands
/// first, moving the allocator's cursor back over the new lot, and the
/// allocation gets exactly the new lot's 2 units (versions 4 then 5); the
/// audit's cursor check finds no skipped stock.
#[test]
fn receive_races_allocate() {
    check("receive_races_allocate", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fifo, &[(5, 2), (6, 1)]);
        assert_eq!(ledger.take(&request(2)).expect("setup sale").lines, [line(5, 2)]);
        let receiver = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.receive(SKU, NewLot::new(LotId(1), 2).received_at(Timestamp(0))))
        };
        let allocator = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&request(2).fill(FillMode::Partial)))
        };
        let received = receiver.join().unwrap().expect("a new lot id");
        let allocation = allocator.join().unwrap().expect("at least 1 unit is always free");

        let (new_lot, old_lot) = (lot(&ledger, 1), lot(&ledger, 6));
        if allocation.version == 5 {
            assert_eq!(received.version, 4);
            assert_eq!(allocation.lines, [line(1, 2)]);
            assert_eq!((new_lot.available.get(), new_lot.held.get()), (0, 2));
            assert_eq!((old_lot.available.get(), old_lot.held.get()), (1, 0));
        } else {
            assert_eq!((allocation.version, received.version), (4, 5));
            assert_eq!(allocation.lines, [line(6, 1)]);
            assert_eq!((new_lot.available.get(), new_lot.held.get()), (2, 0));
            assert_eq!((old_lot.available.get(), old_lot.held.get()), (0, 1));
        }
        assert_eq!(lot(&ledger, 5).committed.get(), 2);
        assert_eq!(version(&ledger), 5);
        assert_sound(&ledger);
    });
}

/// Race: two shrinking adjustments (-3 damage, -2 spoilage) on one 5-unit
/// lot of which a reservation holds 3.
///
/// Asserts: both apply (versions 3 and 4 in some order), the lot ends
/// empty with `adjusted = -5`; a shrink takes available units before held
/// ones, so the shortfalls are exactly (-3 first) 1 then 2, or (-2 first)
/// none then 3, all naming the reservation; the reservation stays live,
/// granted 3, shorted 3, holding nothing.
#[test]
fn adjustments_race_on_one_lot() {
    check("adjustments_race_on_one_lot", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 5)]);
        let held = ledger.allocate(&request(3)).expect("setup hold").reservation;
        let adjusters: Vec<_> = [(-3, AdjustmentReason::Damage), (-2, AdjustmentReason::Spoilage)]
            .into_iter()
            .map(|(delta, reason)| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.adjust(SKU, LotId(1), delta, reason))
            })
            .collect();
        let mut results: Vec<_> = adjusters.into_iter().map(|adjuster| adjuster.join().unwrap()).collect();
        let minus_two = results.pop().unwrap().expect("on hand covers both shrinks");
        let minus_three = results.pop().unwrap().expect("on hand covers both shrinks");

        let short = |units| shorted(held, units);
        if minus_three.version == 3 {
            assert_eq!(minus_two.version, 4);
            assert_eq!(minus_three.shortfalls, [short(1)]);
            assert_eq!(minus_two.shortfalls, [short(2)]);
        } else {
            assert_eq!((minus_two.version, minus_three.version), (3, 4));
            assert!(minus_two.shortfalls.is_empty());
            assert_eq!(minus_three.shortfalls, [short(3)]);
        }
        let after = lot(&ledger, 1);
        assert_eq!(after.adjusted, -5);
        assert_eq!((after.available.get(), after.held.get(), after.committed.get()), (0, 0, 0));
        let reservation = ledger.reservation(held).expect("shorted, not ended");
        assert_eq!((reservation.granted, reservation.shorted), (quantity(3), quantity(3)));
        assert!(reservation.lines.is_empty());
        assert_sound(&ledger);
    });
}

/// Race: two shrinks (-4 and -3) on a 5-unit lot that can only take one
/// of them.
///
/// Asserts: exactly one applies (version 2); the other is refused
/// `OutOfRange` naming the units left after the first (1 or 2) and
/// changes nothing; the lot ends with exactly the winner's delta.
#[test]
fn adjustments_race_past_what_is_on_hand() {
    check("adjustments_race_past_what_is_on_hand", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fefo, &[(1, 5)]);
        let adjusters: Vec<_> = [-4, -3]
            .into_iter()
            .map(|delta| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || (delta, ledger.adjust(SKU, LotId(1), delta, AdjustmentReason::Recount)))
            })
            .collect();
        let results: Vec<_> = adjusters.into_iter().map(|adjuster| adjuster.join().unwrap()).collect();

        let applied: Vec<_> = results.iter().filter_map(|(_, result)| result.as_ref().ok()).collect();
        assert_eq!(applied.len(), 1, "exactly one shrink fits: {results:?}");
        let winner = applied[0];
        assert_eq!(winner.version, 2);
        let (loser_delta, loser) = results.iter().find(|(_, result)| result.is_err()).expect("one refusal");
        let left = quantity((5 + winner.delta) as u64);
        assert_eq!(
            *loser,
            Err(AdjustError::OutOfRange { sku: SKU, lot: LotId(1), on_hand: left, delta: *loser_delta })
        );
        let after = lot(&ledger, 1);
        assert_eq!(after.adjusted, winner.delta);
        assert_eq!(after.available, left);
        assert_eq!(version(&ledger), 2);
        assert_sound(&ledger);
    });
}

/// Race: a commit of a hold with a deadline at 10 ms against the clock
/// reaching 10 ms and a sweep (`expire_due`) on another thread.
///
/// Asserts: exactly one wins. Either the commit lands (its clock reading
/// was before the deadline): 2 committed, the sweep finds nothing; or the
/// hold lapses first: the commit is refused `Expired` (its own sweep
/// lapsed it) or `Ended` (the other thread's sweep did), nothing is
/// committed, both units are back, and exactly one sweep reports it.
#[test]
fn commit_races_expiry() {
    check("commit_races_expiry", Preemptions::Unbounded, || {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let ledger = Arc::new(Ledger::with_clock(clock.clone()));
        ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh SKU");
        ledger.receive(SKU, NewLot::new(LotId(1), 3)).expect("setup receipt");
        let hold = ledger
            .allocate(&request(2).hold_for(std::time::Duration::from_millis(10)))
            .expect("setup hold")
            .reservation;
        let committer = {
            let (ledger, clock) = (Arc::clone(&ledger), Arc::clone(&clock));
            // The clock only moves forward: if it already reads 10 here, the
            // commit's own reading is at or past the deadline too.
            thread::spawn(move || (clock.now(), ledger.commit(hold, None)))
        };
        let sweeper = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                clock.set(Timestamp(10));
                ledger.expire_due(Timestamp(10)).expect("not in the future")
            })
        };
        let (seen, committed) = committer.join().unwrap();
        let report = sweeper.join().unwrap();
        assert!(seen < Timestamp(10) || committed.is_err(), "committed a hold past its deadline: {committed:?}");
        let lapsed_by_sweeper = report.lapsed().filter(|lapsed| lapsed.reservation == hold).count();
        let after = lot(&ledger, 1);
        match committed {
            Ok(outcome) => {
                assert_eq!(outcome.committed, [line(1, 2)]);
                assert_eq!(lapsed_by_sweeper, 0, "a committed hold also lapsed");
                assert_eq!((after.committed.get(), after.available.get()), (2, 1));
            }
            Err(CommitError::Expired { id, deadline }) => {
                assert_eq!((id, deadline), (hold, Timestamp(10)));
                assert_eq!(lapsed_by_sweeper, 0, "two sweeps lapsed one hold");
                assert_eq!((after.committed.get(), after.available.get()), (0, 3));
            }
            Err(CommitError::Ended { id }) => {
                assert_eq!(id, hold);
                assert_eq!(lapsed_by_sweeper, 1, "ended without a sweep reporting it");
                assert_eq!((after.committed.get(), after.available.get()), (0, 3));
            }
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
        assert_eq!(after.held.get(), 0);
        assert_sound(&ledger);
    });
}

/// Race: a two-SKU order (1 of SKU 7, 1 of SKU 8, one unit each) against a
/// single-line allocation of SKU 8's unit.
///
/// Asserts: exactly one of them gets SKU 8's unit. If the order does, it
/// holds both SKUs and the single line is refused; if the single line
/// does, the order is refused naming its SKU 8 line and SKU 7's unit is
/// back (no leak), whatever the interleaving of the rollback.
#[test]
fn order_races_a_single_line() {
    check("order_races_a_single_line", Preemptions::Unbounded, || {
        const SECOND: SkuId = SkuId(8);
        let ledger = ledger_with(AllocationPolicy::Fifo, &[(1, 1)]);
        ledger.define_sku(SECOND, AllocationPolicy::Fifo).expect("fresh SKU");
        ledger.receive(SECOND, NewLot::new(LotId(1), 1).received_at(Timestamp(1))).expect("setup receipt");
        let orderer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                ledger.allocate_order(&OrderRequest::new(vec![OrderLine::new(SKU, 1), OrderLine::new(SECOND, 1)]))
            })
        };
        let single = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&AllocateRequest::new(SECOND, 1)))
        };
        let order = orderer.join().unwrap();
        let single = single.join().unwrap();
        let held = |sku| ledger.snapshot(sku).expect("defined").totals().held.get();
        match (&order, &single) {
            (Ok(order), Err(AllocateError::Insufficient { .. })) => {
                assert_eq!(order.allocations.len(), 2);
                assert_eq!((held(SKU), held(SECOND)), (1, 1));
            }
            (Err(OrderError::Line { index: 1, error: AllocateError::Insufficient { .. } }), Ok(_)) => {
                assert_eq!((held(SKU), held(SECOND)), (0, 1), "the refused order left SKU 7's unit held");
                assert_eq!(lot(&ledger, 1).available.get(), 1);
            }
            other => panic!("not exactly one winner: {other:?}"),
        }
        assert_sound(&ledger);
        let report = ledger.audit();
        assert!(report.is_clean(), "{:?}", report.violations);
    });
}

/// Race: a shrink of a fully held lot (lot 1: 2 units, held) that must
/// re-source from lot 2 (2 available) against an allocation of lot 2's 2.
///
/// Asserts: if the shrink lands first, the hold is re-sourced whole from
/// lot 2 (nothing shorted) and the allocation is refused; if the
/// allocation lands first, the shrink finds nothing to re-source from and
/// shorts the hold by 2. Never both: lot 2's units go to one of them.
#[test]
fn resourcing_races_an_allocation() {
    check("resourcing_races_an_allocation", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fifo, &[(1, 2), (2, 2)]);
        let held = ledger.allocate(&request(2)).expect("setup hold of lot 1").reservation;
        let adjuster = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.adjust(SKU, LotId(1), -2, AdjustmentReason::Damage))
        };
        let allocator = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&request(2)))
        };
        let adjusted = adjuster.join().unwrap().expect("reality is never refused");
        let allocation = allocator.join().unwrap();
        let reservation = ledger.reservation(held).expect("still live");
        match allocation {
            Ok(allocation) => {
                // Only an allocation that landed first leaves nothing to
                // re-source from.
                assert_eq!((allocation.version, adjusted.version), (4, 5), "re-sourcing skipped lot 2");
                assert_eq!(allocation.lines, [line(2, 2)]);
                assert_eq!(adjusted.shortfalls, [shorted(held, 2)]);
                assert_eq!((reservation.shorted.get(), reservation.held().get()), (2, 0));
            }
            Err(refusal) => {
                assert_eq!(
                    refusal,
                    AllocateError::Insufficient { sku: SKU, requested: quantity(2), available: quantity(0) }
                );
                assert_eq!(
                    adjusted.shortfalls,
                    [Shortfall {
                        reservation: held,
                        quantity: quantity(2),
                        resourced: vec![line(2, 2)],
                        shorted: Quantity::ZERO
                    }]
                );
                assert_eq!(reservation.lines, [line(2, 2)]);
                assert_eq!(reservation.shorted.get(), 0);
            }
        }
        assert_sound(&ledger);
    });
}

/// Race: two one-unit sales (one of which sells the last unit, publishing a
/// sold-out version and then raising the sold-out hint) against a receipt
/// of one more unit (which raises the hint's version before its swap);
/// refusals go through the sold-out fast path.
///
/// Asserts: once all three have returned, a further purchase succeeds
/// exactly when a unit is left (2 received minus the sales): a late "sold
/// out" raise can never hide the receipt, and a refusal is only ever
/// `Insufficient { available: 0 }`.
#[test]
fn sold_out_hint_is_never_stale() {
    check("sold_out_hint_is_never_stale", Preemptions::AtLeast(3), || {
        let ledger = ledger_with(AllocationPolicy::Fifo, &[(1, 1)]);
        let buyers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.take(&request(1)))
            })
            .collect();
        let receiver = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.receive(SKU, NewLot::new(LotId(2), 1).received_at(Timestamp(2))))
        };
        receiver.join().unwrap().expect("a new lot");
        let refused = AllocateError::Insufficient { sku: SKU, requested: quantity(1), available: Quantity::ZERO };
        let mut sold = 0;
        for buyer in buyers {
            match buyer.join().unwrap() {
                Ok(_) => sold += 1,
                Err(refusal) => assert_eq!(refusal, refused),
            }
        }
        let last = ledger.take(&request(1));
        if sold < 2 {
            assert!(last.is_ok(), "refused with a unit on hand after every change returned: {last:?}");
            sold += 1;
        } else {
            assert_eq!(last, Err(refused));
        }
        assert_eq!(ledger.snapshot(SKU).expect("defined").totals().committed.get(), sold);
        assert_sound(&ledger);
    });
}

/// Race: two immediate sales of 1 (through the version's sales word) on a
/// FIFO SKU with one 4-unit lot, against a shrink of that lot by 2 (a
/// change that seals the word and folds the sales in before it swaps).
///
/// Asserts: every call succeeds (4 units cover any order); the versions
/// handed out are exactly 2, 3 and 4 (each change one version, no two
/// alike, whatever mix of word and swap carried them); the shrink's
/// outcome shows the lot as it was at its version (units sold before it
/// are committed in it, later ones are not); the lot ends with nothing
/// available, 2 committed, net 1 and a clean audit.
#[test]
fn sales_through_the_word_race_a_shrink() {
    check("sales_through_the_word_race_a_shrink", Preemptions::AtLeast(4), || {
        let ledger = ledger_with(AllocationPolicy::Fifo, &[(1, 4)]);
        let buyers: Vec<_> = (0..2)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.take(&request(1)).expect("4 units cover every order"))
            })
            .collect();
        let shrunk = ledger.adjust(SKU, LotId(1), -2, AdjustmentReason::Damage).expect("on hand covers it");
        let sales: Vec<_> = buyers.into_iter().map(|buyer| buyer.join().unwrap()).collect();

        let mut versions: Vec<u64> = sales.iter().map(|sale| sale.version).chain([shrunk.version]).collect();
        versions.sort_unstable();
        assert_eq!(versions, [2, 3, 4], "each change exactly one version: {sales:?} {shrunk:?}");
        let sold_before = sales.iter().filter(|sale| sale.version < shrunk.version).count() as u64;
        assert_eq!(shrunk.quantities.committed.get(), sold_before, "the shrink's version counts the sales before it");
        assert_eq!(shrunk.quantities.available.get(), 4 - 2 - sold_before);
        for sale in &sales {
            assert_eq!(sale.lines, [line(1, 1)]);
        }
        let after = lot(&ledger, 1);
        assert_eq!((after.available.get(), after.committed.get(), after.adjusted), (0, 2, -2));
        assert_eq!(version(&ledger), 4);
        assert_sound(&ledger);
    });
}

/// Race: an immediate sale of 1 from a FIFO SKU whose only lot (received
/// at 5) has 2 units, against the receipt of a lot received at 1, which
/// sorts first and moves the cursor back over itself.
///
/// Asserts: the sale draws from the lot FIFO picks in the version it
/// committed against: lot 5 if its version precedes the receipt's, lot 1
/// if it follows; versions 2 and 3 are handed out once each; audit clean.
#[test]
fn a_sale_through_the_word_races_a_receipt_that_sorts_first() {
    check("a_sale_through_the_word_races_a_receipt_that_sorts_first", Preemptions::Unbounded, || {
        let ledger = ledger_with(AllocationPolicy::Fifo, &[(5, 2)]);
        let buyer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.take(&request(1)).expect("stock"))
        };
        let received = ledger.receive(SKU, NewLot::new(LotId(1), 1).received_at(Timestamp(1))).expect("new lot");
        let sale = buyer.join().unwrap();

        let mut versions = [sale.version, received.version];
        versions.sort_unstable();
        assert_eq!(versions, [2, 3]);
        let expected = if sale.version < received.version { line(5, 1) } else { line(1, 1) };
        assert_eq!(sale.lines, [expected], "FIFO's choice from the version the sale committed against");
        assert_sound(&ledger);
    });
}
