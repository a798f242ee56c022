//! Expired stock: never counted as available, written off by the sweep
//! (automatically or on the host's call) with conservation intact.

mod common;

use common::manual_ledger;
use std::time::Duration;
use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, Quantity, SkuId, Timestamp};

const SKU: SkuId = SkuId(1);

fn q(units: u64) -> Quantity {
    Quantity::new(units).expect("in range")
}

/// Lot 1: 10 units expiring at 2,000 ms; lot 2: 10 units expiring at
/// 9,000 ms; FEFO.
fn perishable() -> (Ledger, std::sync::Arc<stockroom::ManualClock>) {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 10).expires_at(Timestamp(2_000))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 10).expires_at(Timestamp(9_000))).expect("lot 2");
    (ledger, clock)
}

fn conserved(ledger: &Ledger) {
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    let left = i128::from(totals.received.get()) + i128::from(totals.adjusted) + i128::from(totals.returned.get());
    let right = i128::from(
        totals.available.get()
            + totals.expired.get()
            + totals.held.get()
            + totals.committed.get()
            + totals.written_off.get(),
    );
    assert_eq!(left, right, "conservation: {totals:?}");
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}

#[test]
fn expired_units_are_counted_apart_and_written_off_on_the_hosts_call() {
    let (ledger, clock) = perishable();
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 4)).expect("from lot 1");
    clock.set(Timestamp(2_000));
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!((totals.available, totals.expired, totals.held), (q(10), q(6), q(4)), "expired apart from available");
    // expire_due reports the lot but, by default, writes nothing off.
    let report = ledger.expire_due(Timestamp(2_000)).expect("sweep");
    assert!(report.swept.iter().all(|swept| swept.written_off.is_empty()));
    conserved(&ledger);

    let report = ledger.write_off_expired(Timestamp(2_000)).expect("write off");
    let swept = &report.swept[0];
    assert_eq!(swept.written_off.iter().map(|line| (line.lot.0, line.quantity.get())).collect::<Vec<_>>(), [(1, 10)]);
    // The hold lost its 4 units of lot 1: re-sourced from lot 2.
    assert_eq!(swept.shortfalls.len(), 1);
    assert_eq!(swept.shortfalls[0].reservation, hold.reservation);
    assert_eq!(swept.shortfalls[0].shorted, q(0));
    let lines = ledger.reservation(hold.reservation).expect("still held").lines;
    assert_eq!(lines.iter().map(|line| (line.lot.0, line.quantity.get())).collect::<Vec<_>>(), [(2, 4)]);
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!((totals.available, totals.expired, totals.written_off), (q(6), q(0), q(10)));
    conserved(&ledger);
    // Nothing left to write off: a second call reports nothing.
    assert!(ledger.write_off_expired(Timestamp(2_000)).expect("again").swept.is_empty());
}

#[test]
fn the_reaper_sweep_writes_off_when_the_ledger_is_built_to() {
    let clock = std::sync::Arc::new(stockroom::ManualClock::new(Timestamp(1_000)));
    let ledger = Ledger::builder().clock(clock.clone()).write_off_expired(true).build().expect("valid");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 3).expires_at(Timestamp(1_500))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 2)).expect("lot 2");
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 5).hold_for(Duration::from_secs(60))).expect("all of it");
    clock.set(Timestamp(1_500));
    let report = ledger.expire_due(Timestamp(1_500)).expect("sweep");
    let swept = &report.swept[0];
    assert_eq!(swept.written_off.iter().map(|line| line.quantity.get()).sum::<u64>(), 3);
    // Nothing unexpired was free: the hold is shorted by 3.
    assert_eq!(swept.shortfalls[0].shorted, q(3));
    assert_eq!(ledger.reservation(hold.reservation).expect("held").held(), q(2));
    conserved(&ledger);
}

/// One write-off, two expired lots under one hold: each lot's loss is
/// re-sourced onto the same good lot, the second chained after the lines
/// the first made. (A write-off once read the holds once and redrafted the
/// hold's chain from the stale read: the first re-sourced line vanished
/// from the hold and its unit showed up as committed.)
#[test]
fn a_hold_on_two_expired_lots_keeps_every_re_sourced_line() {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 2).expires_at(Timestamp(2_000))).expect("lot 1");
    ledger.receive(SKU, NewLot::new(LotId(2), 2).expires_at(Timestamp(2_000))).expect("lot 2");
    ledger.receive(SKU, NewLot::new(LotId(3), 3)).expect("lot 3, never expires");
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 4).hold_for(Duration::from_secs(60))).expect("lots 1 and 2");
    assert_eq!(hold.lines.iter().map(|line| line.lot.0).collect::<Vec<_>>(), [1, 2]);
    clock.set(Timestamp(2_000));

    let report = ledger.write_off_expired(Timestamp(2_000)).expect("write off");
    let swept = &report.swept[0];
    assert_eq!(swept.written_off.iter().map(|line| line.quantity.get()).sum::<u64>(), 4);
    let resourced: u64 = swept.shortfalls.iter().flat_map(|s| s.resourced.iter()).map(|line| line.quantity.get()).sum();
    let shorted: u64 = swept.shortfalls.iter().map(|s| s.shorted.get()).sum();
    assert_eq!((resourced, shorted), (3, 1), "{swept:?}");

    let reservation = ledger.reservation(hold.reservation).expect("still held");
    assert!(reservation.lines.iter().all(|line| line.lot == LotId(3)), "{reservation:?}");
    assert_eq!(reservation.held(), q(3), "every re-sourced unit stays on the hold: {reservation:?}");
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!((totals.available, totals.held, totals.committed, totals.written_off), (q(0), q(3), q(0), q(4)));
    let stock = ledger.stock(SKU).expect("defined");
    assert_eq!((stock.held, stock.committed), (q(3), q(0)));
    conserved(&ledger);
    // Releasing it frees all three units of lot 3.
    ledger.release(hold.reservation).expect("live");
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().available, q(3));
    conserved(&ledger);
}
