//! Time never runs backwards for a ledger: a clock that steps back is
//! clamped to the latest instant the ledger already used, and the step is
//! reported in the metrics (issue 14, item 5).

mod common;

use common::manual_ledger;
use std::time::Duration;
use stockroom::{AllocateRequest, AllocationPolicy, LotId, NewLot, SkuId, Timestamp};

const SKU: SkuId = SkuId(1);

#[test]
fn a_lot_reported_expired_stays_expired_when_the_clock_steps_back() {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 5).expires_at(Timestamp(2_000))).expect("receive");
    clock.set(Timestamp(2_000));
    let report = ledger.expire_due(ledger.now()).expect("sweep");
    assert_eq!(report.swept[0].expired_lots, [LotId(1)]);

    clock.set(Timestamp(1_500));
    assert_eq!(ledger.now(), Timestamp(2_000), "clamped to the latest instant used");
    let refused = ledger.take(&AllocateRequest::new(SKU, 1)).expect_err("expired stock is not sellable");
    assert!(refused.is_insufficient(), "{refused}");
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().expired.get(), 5);
    let metrics = ledger.metrics();
    assert!(metrics.clock_clamped >= 1);
    assert_eq!(metrics.clock_step_back_max_ms, 500);

    // The clock catches up and passes the floor: readings follow it again.
    clock.set(Timestamp(2_600));
    assert_eq!(ledger.now(), Timestamp(2_600));
    assert_eq!(ledger.metrics().clock_step_back_max_ms, 500, "no new step");
}

/// The ledger used instant 1,100 (a hold's deadline) without sweeping the
/// hold; the clock then steps back to 1,050. Following the clock would
/// make the hold live again and let it commit; clamped, it stays lapsed.
#[test]
fn a_lapsed_hold_stays_lapsed_when_the_clock_steps_back() {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 5)).expect("receive");
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 2).hold_for(Duration::from_millis(100))).expect("held");
    clock.set(Timestamp(1_100));
    assert_eq!(ledger.now(), Timestamp(1_100), "the ledger used its deadline's instant");
    clock.set(Timestamp(1_050));
    let refused = ledger.commit(hold.reservation, None).expect_err("lapsed at 1,100, not live again at 1,050");
    assert!(matches!(refused, stockroom::CommitError::Expired { .. }), "{refused:?}");
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!((totals.available.get(), totals.held.get(), totals.committed.get()), (5, 0, 0));
}

#[test]
fn a_ledger_whose_clock_never_steps_back_reports_no_clamp() {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive");
    for _ in 0..10 {
        clock.advance(Duration::from_millis(7));
        ledger.allocate(&AllocateRequest::new(SKU, 1).hold_for(Duration::from_secs(1))).expect("held");
    }
    let metrics = ledger.metrics();
    assert_eq!((metrics.clock_clamped, metrics.clock_step_back_max_ms), (0, 0));
}
