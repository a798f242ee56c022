//! The reservation lifecycle, command by command (`docs/semantics.md`,
//! "Time, deadlines and sweeps" onwards): deadlines that are exact on read,
//! the sweep a lapsed hold triggers, `expire_due`, extensions up to the
//! maximum, conditional commands, multi-line orders (all-or-nothing, what
//! an observer sees while one runs), re-sourcing is in `tests/commands.rs`,
//! the hold guard, the reaper, and commit racing expiry on real threads.
//!
//! Each test states the exact values the contract gives; the model-based
//! proptest (`tests/model.rs`) then checks the same rules on random
//! sequences against the reference ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use stockroom::{
    AdjustError, AdjustmentReason, AllocateError, AllocateRequest, AllocationPolicy, CommitError, ExpireError,
    ExtendError, FillMode, Ledger, LedgerBuildError, LotId, ManualClock, NewLot, OrderError, OrderLine, OrderRequest,
    Quantity, QueryError, Reaper, ReaperConfig, ReaperError, ReleaseError, ReservationId, SkuId, Timestamp,
};

const SKU: SkuId = SkuId(1);
const OTHER: SkuId = SkuId(2);
const HOLD_MAX: Duration = Duration::from_secs(600);

fn qty(units: u64) -> Quantity {
    Quantity::new(units).expect("test quantities are in range")
}

fn res(seq: u64) -> ReservationId {
    ReservationId::new(SKU, seq)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A ledger at t = 0 on a manual clock, `HOLD_MAX` of 10 minutes, SKU 1
/// (FIFO) with lot 1 of 10 units and SKU 2 (FIFO) with lot 1 of 5 units.
fn ledger() -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let ledger = Ledger::builder().clock(clock.clone()).hold_max(HOLD_MAX).build().expect("valid settings");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define 1");
    ledger.define_sku(OTHER, AllocationPolicy::Fifo).expect("define 2");
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("lot 1 of SKU 1");
    ledger.receive(OTHER, NewLot::new(LotId(1), 5)).expect("lot 1 of SKU 2");
    (ledger, clock)
}

fn hold(ledger: &Ledger, units: u64, seconds: u64) -> ReservationId {
    ledger.allocate(&AllocateRequest::new(SKU, units).hold_for(secs(seconds))).expect("hold").reservation
}

fn version(ledger: &Ledger, sku: SkuId) -> u64 {
    ledger.snapshot(sku).expect("defined").version()
}

// ---------------------------------------------------------------- deadlines

#[test]
fn a_hold_counts_until_its_deadline_and_not_at_it() {
    let (ledger, clock) = ledger();
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 4).hold_for(secs(60))).expect("hold");
    assert_eq!(allocation.deadline, Some(Timestamp(60_000)));
    clock.set(Timestamp(59_999));
    assert_eq!(ledger.available(SKU, Duration::ZERO), Ok(qty(6)));
    assert_eq!(ledger.reservation(allocation.reservation).map(|r| r.deadline), Ok(Some(Timestamp(60_000))));
    let before = version(&ledger, SKU);
    clock.set(Timestamp(60_000));
    // Exact on read: the query that finds it lapsed sweeps it (one version).
    assert_eq!(
        ledger.reservation(allocation.reservation),
        Err(QueryError::Expired { id: allocation.reservation, deadline: Timestamp(60_000) })
    );
    assert_eq!(version(&ledger, SKU), before + 1, "the sweep is one version");
    assert_eq!(ledger.available(SKU, Duration::ZERO), Ok(qty(10)));
    assert_eq!(ledger.reservation(allocation.reservation), Err(QueryError::Ended { id: allocation.reservation }));
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_lapsed_hold_cannot_be_committed_released_or_extended() {
    let (ledger, clock) = ledger();
    let (a, b, c) = (hold(&ledger, 1, 10), hold(&ledger, 1, 10), hold(&ledger, 1, 10));
    clock.set(Timestamp(10_000));
    let deadline = Timestamp(10_000);
    // The first call sweeps all three (one version) and reports its own.
    assert_eq!(ledger.commit(a, None), Err(CommitError::Expired { id: a, deadline }));
    // Later calls find them ended, like any ended reservation.
    assert_eq!(ledger.release(b), Err(ReleaseError::Ended { id: b }));
    assert_eq!(ledger.extend(c, secs(1)), Err(ExtendError::Ended { id: c }));
    assert_eq!(ledger.commit(a, None), Err(CommitError::Ended { id: a }));
    let snapshot = ledger.snapshot(SKU).expect("defined");
    assert_eq!((snapshot.totals().held, snapshot.totals().available), (qty(0), qty(10)));
    assert_eq!(snapshot.version(), 5, "defined 0, received 1, held 2 to 4, one sweep 5");
}

#[test]
fn each_kind_of_command_reports_expired_when_its_own_sweep_lapsed_the_hold() {
    let (ledger, clock) = ledger();
    let (a, b) = (hold(&ledger, 1, 10), hold(&ledger, 1, 20));
    clock.set(Timestamp(10_000));
    assert_eq!(ledger.release(a), Err(ReleaseError::Expired { id: a, deadline: Timestamp(10_000) }));
    clock.set(Timestamp(25_000));
    assert_eq!(ledger.extend(b, secs(1)), Err(ExtendError::Expired { id: b, deadline: Timestamp(20_000) }));
}

#[test]
fn an_allocation_draws_units_of_lapsed_holds_without_any_sweep_having_run() {
    let (ledger, clock) = ledger();
    hold(&ledger, 10, 5);
    assert!(matches!(ledger.allocate(&AllocateRequest::new(SKU, 1)), Err(AllocateError::Insufficient { .. })));
    clock.set(Timestamp(5_000));
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 10)).expect("the lapsed units");
    assert_eq!(allocation.version, 4, "sweep at 3, allocation at 4");
}

#[test]
fn hold_durations_are_validated_before_the_sku_is_looked_up() {
    let (ledger, _clock) = ledger();
    let zero = AllocateRequest::new(SkuId(99), 1).hold_for(Duration::ZERO);
    assert_eq!(ledger.allocate(&zero), Err(AllocateError::ZeroHold { sku: SkuId(99) }));
    let long = AllocateRequest::new(SKU, 1).hold_for(HOLD_MAX + Duration::from_millis(1));
    assert_eq!(
        ledger.allocate(&long),
        Err(AllocateError::HoldTooLong { sku: SKU, requested: HOLD_MAX + Duration::from_millis(1), max: HOLD_MAX })
    );
    let zero_units = AllocateRequest::new(SKU, 0).hold_for(Duration::ZERO);
    assert_eq!(ledger.allocate(&zero_units), Err(AllocateError::ZeroQuantity { sku: SKU }), "quantity first");
    // Deadlines are whole milliseconds: a shorter hold would lapse at once.
    let sub_ms = AllocateRequest::new(SKU, 1).hold_for(Duration::from_micros(999));
    assert_eq!(ledger.allocate(&sub_ms), Err(AllocateError::ZeroHold { sku: SKU }));
    let held = ledger.allocate(&AllocateRequest::new(SKU, 1).hold_for(Duration::from_micros(1_500))).expect("1 ms");
    assert_eq!(held.deadline, Some(Timestamp(1)), "truncated to whole milliseconds");
    assert_eq!(
        ledger.extend(held.reservation, Duration::from_micros(999)),
        Err(ExtendError::ZeroDuration { id: held.reservation })
    );
    ledger.release(held.reservation).expect("release");
    // `take` holds nothing: its hold_for is not looked at.
    assert!(ledger.take(&long).is_ok());
    assert_eq!(version(&ledger, SKU), 4, "received 1, held 2, released 3, sold 4");
    assert_eq!(Ledger::builder().hold_max(Duration::ZERO).build().err(), Some(LedgerBuildError::ZeroHoldMax));
}

// ---------------------------------------------------------------- expire_due

#[test]
fn expire_due_returns_lapsed_units_of_every_sku_and_reports_each_expired_lot_once() {
    let (ledger, clock) = ledger();
    ledger.receive(SKU, NewLot::new(LotId(2), 3).expires_at(Timestamp(30_000))).expect("lot 2, expires at 30 s");
    let a = hold(&ledger, 2, 10);
    let b = ledger.allocate(&AllocateRequest::new(OTHER, 1).hold_for(secs(20))).expect("hold on 2").reservation;
    let kept = hold(&ledger, 1, 100);
    clock.set(Timestamp(40_000));
    assert_eq!(
        ledger.expire_due(Timestamp(40_001)),
        Err(ExpireError::InFuture { now: Timestamp(40_001), clock: Timestamp(40_000) })
    );
    let report = ledger.expire_due(Timestamp(40_000)).expect("sweep");
    let lapsed: Vec<ReservationId> = report.lapsed().map(|l| l.reservation).collect();
    assert_eq!(lapsed, [a, b]);
    assert_eq!(report.swept[0].expired_lots, [LotId(2)]);
    assert!(report.swept[1].expired_lots.is_empty());
    assert!(ledger.reservation(kept).is_ok());
    // Nothing left to do: no versions.
    let versions = (version(&ledger, SKU), version(&ledger, OTHER));
    assert!(ledger.expire_due(Timestamp(40_000)).expect("sweep").swept.is_empty());
    assert_eq!((version(&ledger, SKU), version(&ledger, OTHER)), versions);
    assert!(ledger.audit().is_clean());
}

// ---------------------------------------------------------------- extend

#[test]
fn extend_moves_the_deadline_up_to_the_maximum_and_refuses_bad_input() {
    let (ledger, clock) = ledger();
    let a = hold(&ledger, 1, 60);
    clock.set(Timestamp(30_000));
    let extended = ledger.extend(a, secs(120)).expect("extend");
    assert_eq!(extended.deadline, Timestamp(180_000));
    clock.set(Timestamp(100_000));
    assert!(ledger.reservation(a).is_ok(), "the old deadline passed, the new one did not");
    // Latest = allocation instant (0) + 600 s.
    let before = version(&ledger, SKU);
    assert_eq!(
        ledger.extend(a, secs(421)),
        Err(ExtendError::BeyondMaximum { id: a, requested: Timestamp(601_000), latest: Timestamp(600_000) })
    );
    assert_eq!(ledger.extend(a, Duration::ZERO), Err(ExtendError::ZeroDuration { id: a }));
    assert_eq!(version(&ledger, SKU), before, "refusals change nothing");
    assert_eq!(ledger.extend(a, secs(420)).map(|e| e.deadline), Ok(Timestamp(600_000)));
    let open = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("no deadline").reservation;
    assert_eq!(ledger.extend(open, secs(1)), Err(ExtendError::NoDeadline { id: open }));
    assert_eq!(ledger.extend(res(99), secs(1)), Err(ExtendError::UnknownReservation { id: res(99) }));
    let lost = ReservationId::new(SkuId(9), 1);
    assert_eq!(ledger.extend(lost, secs(1)), Err(ExtendError::UnknownSku { id: lost }));
}

// ---------------------------------------------------------------- conditional

#[test]
fn conditional_commands_apply_only_to_the_version_they_name() {
    let (ledger, _clock) = ledger();
    let seen = version(&ledger, SKU);
    let stale = AllocateRequest::new(SKU, 1).if_version(seen + 1);
    assert_eq!(
        ledger.allocate(&stale),
        Err(AllocateError::VersionMismatch { sku: SKU, expected: seen + 1, current: seen })
    );
    assert_eq!(
        ledger.take(&stale),
        Err(AllocateError::VersionMismatch { sku: SKU, expected: seen + 1, current: seen })
    );
    let allocation = ledger.allocate(&AllocateRequest::new(SKU, 1).if_version(seen)).expect("current version");
    assert_eq!(allocation.version, seen + 1);
    assert_eq!(
        ledger.adjust_if_version(SKU, LotId(1), -1, AdjustmentReason::Recount, seen),
        Err(AdjustError::VersionMismatch { sku: SKU, expected: seen, current: seen + 1 })
    );
    assert_eq!(
        ledger.adjust_if_version(SKU, LotId(7), -1, AdjustmentReason::Recount, seen),
        Err(AdjustError::UnknownLot { sku: SKU, lot: LotId(7) }),
        "lookups come before the version check"
    );
    assert!(ledger.adjust_if_version(SKU, LotId(1), -1, AdjustmentReason::Recount, seen + 1).is_ok());
    // Stock checks come after the version check.
    let huge = AllocateRequest::new(SKU, 1_000).if_version(0);
    assert!(matches!(ledger.allocate(&huge), Err(AllocateError::VersionMismatch { .. })));
}

// ---------------------------------------------------------------- orders

fn order(lines: &[(SkuId, u64)]) -> OrderRequest {
    OrderRequest::new(lines.iter().map(|&(sku, units)| OrderLine::new(sku, units)).collect())
}

#[test]
fn an_order_holds_every_line_with_one_reservation_per_sku() {
    let (ledger, _clock) = ledger();
    let placed = ledger.allocate_order(&order(&[(OTHER, 2), (SKU, 3), (SKU, 4)])).expect("fits");
    assert_eq!(placed.allocations.len(), 2);
    // Each SKU is at version 1 (its receipt): each SKU part is version 2,
    // and a part's seq is the version it produced.
    assert_eq!(placed.allocations[0].reservation, res(2), "SKU 1 first, by id");
    assert_eq!(placed.allocations[1].reservation, ReservationId::new(OTHER, 2));
    assert!(placed.allocations.iter().all(|part| part.version == 2), "one version per SKU part");
    assert_eq!(placed.allocations[0].quantity(), qty(7), "lines of one SKU are its combined demand");
    assert_eq!(placed.allocations[1].quantity(), qty(2));
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().held, qty(7));
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_refused_order_leaves_nothing_held() {
    let (ledger, _clock) = ledger();
    // SKU 1 can cover its 7; SKU 2 has 5, not 6: the SKU 1 part is rolled back.
    let refused = ledger.allocate_order(&order(&[(SKU, 3), (OTHER, 6), (SKU, 4)]));
    assert_eq!(
        refused,
        Err(OrderError::Line {
            index: 1,
            error: AllocateError::Insufficient { sku: OTHER, requested: qty(6), available: qty(5) }
        })
    );
    let snapshot = ledger.snapshot(SKU).expect("defined");
    assert_eq!((snapshot.totals().held, snapshot.totals().available), (qty(0), qty(10)));
    assert_eq!(snapshot.version(), 3, "held at 2, released at 3");
    assert_eq!(version(&ledger, OTHER), 1, "the refused SKU saw no change");
    // Combined demand of one SKU: 6 + 5 > 10 names the second line.
    let combined = ledger.allocate_order(&order(&[(SKU, 6), (SKU, 5)]));
    assert_eq!(
        combined,
        Err(OrderError::Line {
            index: 1,
            error: AllocateError::Insufficient { sku: SKU, requested: qty(5), available: qty(4) }
        })
    );
    assert_eq!(version(&ledger, SKU), 3, "one SKU's lines are one change: nothing to roll back");
    assert!(ledger.audit().is_clean());
}

#[test]
fn order_input_is_checked_line_by_line_before_any_stock() {
    let (ledger, _clock) = ledger();
    assert_eq!(ledger.allocate_order(&order(&[])), Err(OrderError::Empty));
    let many = vec![OrderLine::new(SKU, 1); OrderRequest::LINES_MAX + 1];
    assert_eq!(
        ledger.allocate_order(&OrderRequest::new(many)),
        Err(OrderError::TooManyLines { lines: OrderRequest::LINES_MAX + 1, max: OrderRequest::LINES_MAX })
    );
    assert_eq!(ledger.allocate_order(&order(&[(SKU, 1)]).hold_for(Duration::ZERO)), Err(OrderError::ZeroHold));
    // A zero line after an unknown SKU: every line's quantity is checked first.
    assert_eq!(
        ledger.allocate_order(&order(&[(SkuId(9), 1), (SKU, 0)])),
        Err(OrderError::Line { index: 1, error: AllocateError::ZeroQuantity { sku: SKU } })
    );
    assert_eq!(
        ledger.allocate_order(&order(&[(SKU, 1), (SkuId(9), 1)])),
        Err(OrderError::Line { index: 1, error: AllocateError::UnknownSku { sku: SkuId(9) } })
    );
    assert_eq!((version(&ledger, SKU), version(&ledger, OTHER)), (1, 1), "nothing was touched");
}

#[test]
fn an_orders_reservations_share_its_deadline() {
    let (ledger, clock) = ledger();
    let placed = ledger.allocate_order(&order(&[(SKU, 1), (OTHER, 1)]).hold_for(secs(30))).expect("placed");
    assert!(placed.allocations.iter().all(|a| a.deadline == Some(Timestamp(30_000))));
    clock.set(Timestamp(30_000));
    let report = ledger.expire_due(Timestamp(30_000)).expect("sweep");
    assert_eq!(report.lapsed().count(), 2);
}

/// What a concurrent observer sees while orders that must fail run: per
/// SKU, either nothing of an order or all of that SKU's part of it, never a
/// part of a part; and when every order has returned, nothing is held.
#[test]
fn an_observer_sees_whole_sku_parts_of_a_running_order_and_nothing_after_a_refusal() {
    let (ledger, _clock) = ledger();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let observer = scope.spawn(|| {
            let mut seen_held = 0u64;
            while !done.load(Ordering::Acquire) {
                let held = ledger.snapshot(SKU).expect("defined").totals().held.get();
                assert!(held == 0 || held == 7, "observed a partial SKU part: {held} held");
                seen_held += u64::from(held == 7);
            }
            seen_held
        });
        for _ in 0..2_000 {
            // 3 + 4 of SKU 1 fit; 6 of SKU 2 never do.
            assert!(ledger.allocate_order(&order(&[(SKU, 3), (OTHER, 6), (SKU, 4)])).is_err());
        }
        done.store(true, Ordering::Release);
        let seen = observer.join().expect("observer");
        println!("observer saw the transient SKU 1 part in {seen} samples");
    });
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().held, qty(0));
    assert_eq!(ledger.snapshot(SKU).expect("defined").version(), 1 + 2 * 2_000);
    assert!(ledger.audit().is_clean());
}

// ---------------------------------------------------------------- guard

#[test]
fn a_guard_releases_on_drop_unless_committed_released_or_kept() {
    let (ledger, _clock) = ledger();
    {
        let _guard = ledger.allocate_guarded(&AllocateRequest::new(SKU, 3)).expect("held");
        assert_eq!(ledger.snapshot(SKU).expect("defined").totals().held, qty(3));
    }
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().held, qty(0));

    let mut guard = ledger.allocate_guarded(&AllocateRequest::new(SKU, 3)).expect("held");
    assert_eq!(
        guard.commit(Some(4)),
        Err(CommitError::ExceedsHeld { id: guard.reservation(), requested: qty(4), held: qty(3) })
    );
    assert!(guard.is_armed(), "a refused commit leaves the reservation live and guarded");
    guard.commit(Some(2)).expect("commit 2");
    assert!(!guard.is_armed());
    drop(guard);
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!((totals.committed, totals.held, totals.available), (qty(2), qty(0), qty(8)));

    let kept = ledger.allocate_guarded(&AllocateRequest::new(SKU, 1)).expect("held").keep();
    assert!(ledger.reservation(kept.reservation).is_ok(), "kept past the guard");
    let mut released = ledger.allocate_guarded(&AllocateRequest::new(SKU, 1)).expect("held");
    released.release().expect("released");
    drop(released);
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().held, qty(1));
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_guard_whose_hold_lapsed_drops_quietly() {
    let (ledger, clock) = ledger();
    let guard = ledger.allocate_guarded(&AllocateRequest::new(SKU, 3).hold_for(secs(1))).expect("held");
    clock.set(Timestamp(1_000));
    drop(guard);
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().available, qty(10));
}

// ---------------------------------------------------------------- reaper

#[test]
fn the_reaper_sweeps_lapsed_holds_a_slice_per_tick_and_stops() {
    let (ledger, clock) = ledger();
    let ledger = Arc::new(ledger);
    for sku in 10..20 {
        ledger.define_sku(SkuId(sku), AllocationPolicy::Fifo).expect("define");
        ledger.receive(SkuId(sku), NewLot::new(LotId(1), 1)).expect("receive");
        ledger.allocate(&AllocateRequest::new(SkuId(sku), 1).hold_for(secs(1))).expect("hold");
    }
    let config = ReaperConfig::default().tick(Duration::from_millis(1)).skus_per_tick(3);
    assert_eq!(Reaper::start(Arc::clone(&ledger), config.skus_per_tick(0)).err(), Some(ReaperError::ZeroSkusPerTick));
    let reaper = Reaper::start(Arc::clone(&ledger), config).expect("start");
    clock.set(Timestamp(1_000));
    // No operation touches SKUs 10..20: only the reaper can return their units.
    let give_up = Instant::now() + Duration::from_secs(30);
    // `audit` reads the stored versions without sweeping: it counts the
    // live holds as they are until the reaper's sweeps land.
    assert_eq!(ledger.audit().reservations, 10);
    while ledger.audit().reservations > 0 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = reaper.stop();
    assert_eq!(stats.lapsed, 10, "{stats:?}");
    assert!(stats.skus_visited <= stats.ticks * 3, "bounded work per tick: {stats:?}");
    assert_eq!(ledger.audit().reservations, 0);
    assert!((10..20).all(|sku| ledger.snapshot(SkuId(sku)).expect("defined").totals().available == qty(1)));
}

// ---------------------------------------------------------------- races

/// Commit racing expiry on real threads: every hold ends exactly once,
/// either committed (before its deadline, by the committer's clock
/// reading) or lapsed; no unit is both, none is lost.
#[test]
fn commit_racing_expiry_ends_each_hold_exactly_once() {
    for round in 0..20 {
        let (ledger, clock) = ledger();
        ledger.receive(SKU, NewLot::new(LotId(2), 1_000)).expect("more stock");
        let holds: Vec<ReservationId> = (0..200).map(|i| hold(&ledger, 1, 1 + (i % 5))).collect();
        let (committed, expired) = std::thread::scope(|scope| {
            let mover = scope.spawn(|| {
                for step in 1..=6u64 {
                    clock.set(Timestamp(step * 1_000));
                    std::thread::yield_now();
                }
            });
            let workers: Vec<_> = holds
                .chunks(100)
                .map(|chunk| {
                    let ledger = &ledger;
                    scope.spawn(move || {
                        let (mut committed, mut expired) = (0u64, 0u64);
                        for &id in chunk {
                            match ledger.commit(id, None) {
                                Ok(outcome) => {
                                    committed += outcome.committed.iter().map(|l| l.quantity.get()).sum::<u64>()
                                }
                                Err(CommitError::Expired { .. } | CommitError::Ended { .. }) => expired += 1,
                                Err(other) => panic!("round {round}: {id}: {other}"),
                            }
                        }
                        (committed, expired)
                    })
                })
                .collect();
            mover.join().expect("mover");
            workers.into_iter().map(|w| w.join().expect("worker")).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        assert_eq!(committed + expired, 200, "round {round}: every hold ended exactly once");
        let totals = ledger.snapshot(SKU).expect("defined").totals();
        assert_eq!(totals.committed.get(), committed, "round {round}");
        assert_eq!(totals.held, qty(0), "round {round}: everything ended");
        assert_eq!(totals.available.get(), 1_010 - committed, "round {round}: lapsed units all returned");
        assert!(ledger.audit().is_clean());
    }
}

#[test]
fn a_partial_fill_allocation_with_a_deadline_lapses_like_any_other() {
    let (ledger, clock) = ledger();
    let request = AllocateRequest::new(SKU, 50).fill(FillMode::Partial).hold_for(secs(1));
    assert_eq!(ledger.allocate(&request).map(|a| a.quantity()), Ok(qty(10)));
    clock.set(Timestamp(1_000));
    assert_eq!(ledger.available(SKU, Duration::ZERO), Ok(qty(10)));
}
