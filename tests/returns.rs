//! Returns and restock: units that left come back into their lot or a new
//! one, never more than left, with conservation intact, an event, and
//! waiting backorders served first.

mod common;

use common::manual_ledger;
use stockroom::{
    AllocateRequest, AllocationPolicy, Change, Command, Delivery, Ledger, LotId, NewLot, OrderLine, OrderRequest,
    Outcome, Quantity, ReturnError, ReturnReason, ReturnRequest, ReturnSource, SkuId, Timestamp,
};

const SKU: SkuId = SkuId(1);

fn q(units: u64) -> Quantity {
    Quantity::new(units).expect("in range")
}

/// SKU 1, FIFO, lot 1: 10 units expiring at 5,000 ms; the clock at 1,000.
fn stocked() -> (Ledger, std::sync::Arc<stockroom::ManualClock>) {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 10).expires_at(Timestamp(5_000))).expect("lot 1");
    (ledger, clock)
}

/// received + adjusted + returned = available + expired + held + committed
/// + written off, per SKU and per lot, and the audit is clean.
fn conserved(ledger: &Ledger, sku: SkuId) {
    let snapshot = ledger.snapshot(sku).expect("defined");
    let mut quantities: Vec<_> = snapshot.lots().map(|lot| lot.quantities).collect();
    quantities.push(snapshot.totals());
    for totals in quantities {
        let left = i128::from(totals.received.get()) + i128::from(totals.adjusted) + i128::from(totals.returned.get());
        let right = i128::from(
            totals.available.get()
                + totals.expired.get()
                + totals.held.get()
                + totals.committed.get()
                + totals.written_off.get(),
        );
        assert_eq!(left, right, "conservation: {totals:?}");
    }
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}

#[test]
fn units_come_back_into_their_lot_and_no_more_than_left() {
    let (ledger, _) = stocked();
    ledger.take(&AllocateRequest::new(SKU, 4)).expect("sale");
    let back = ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 3)).expect("3 of 4 come back");
    assert_eq!(
        (back.from_lot, back.into_lot, back.quantity, back.reason),
        (LotId(1), LotId(1), q(3), ReturnReason::Returned)
    );
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!((totals.available, totals.committed, totals.returned), (q(9), q(4), q(3)));
    conserved(&ledger, SKU);

    // One unit left and has not come back: two are refused, nothing changes.
    let version = ledger.snapshot(SKU).expect("defined").version();
    assert_eq!(
        ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 2)),
        Err(ReturnError::MoreThanLeft { sku: SKU, lot: LotId(1), quantity: q(2), left: q(1) })
    );
    assert_eq!(ledger.snapshot(SKU).expect("defined").version(), version, "a refusal changes nothing");
    ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 1)).expect("the last one");
    assert!(ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 1)).expect_err("none left").is_insufficient());
    // Units sold again may come back again.
    ledger.take(&AllocateRequest::new(SKU, 2)).expect("sale");
    ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 2)).expect("the second sale comes back");
    conserved(&ledger, SKU);
}

#[test]
fn held_units_have_not_left() {
    let (ledger, _) = stocked();
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 5)).expect("hold");
    assert!(matches!(
        ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 1)),
        Err(ReturnError::MoreThanLeft { left, .. }) if left == q(0)
    ));
    ledger.commit(hold.reservation, Some(2)).expect("2 of 5 leave");
    ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 2)).expect("the 2 committed");
    assert!(ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 1)).is_err(), "the other 3 are still held");
    conserved(&ledger, SKU);
}

#[test]
fn an_expired_lot_takes_nothing_back_but_a_new_lot_does() {
    let (ledger, clock) = stocked();
    ledger.take(&AllocateRequest::new(SKU, 6)).expect("sale");
    clock.set(Timestamp(5_000));
    assert_eq!(
        ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 2)),
        Err(ReturnError::LotExpired { sku: SKU, lot: LotId(1), expired_at: Timestamp(5_000) })
    );
    let request = ReturnRequest::new(SKU, LotId(1), 2)
        .reason(ReturnReason::Restocked)
        .into_new_lot(NewLot::new(LotId(7), 2).expires_at(Timestamp(90_000)));
    let back = ledger.return_units(&request).expect("into a new lot");
    assert_eq!((back.into_lot, back.reason), (LotId(7), ReturnReason::Restocked));
    let snapshot = ledger.snapshot(SKU).expect("defined");
    let lot = snapshot.lots().find(|lot| lot.id == LotId(7)).expect("the new lot");
    assert_eq!((lot.quantities.received, lot.quantities.returned, lot.quantities.available), (q(0), q(2), q(2)));
    // The new lot is sellable; the bound is still the original lot's.
    assert_eq!(ledger.take(&AllocateRequest::new(SKU, 2)).expect("sale").lines[0].lot, LotId(7));
    let four_more = ReturnRequest::new(SKU, LotId(1), 5).into_new_lot(NewLot::new(LotId(8), 5));
    assert!(matches!(ledger.return_units(&four_more), Err(ReturnError::MoreThanLeft { left, .. }) if left == q(4)));
    // A new lot's id may not be taken already.
    let taken = ReturnRequest::new(SKU, LotId(1), 1).into_new_lot(NewLot::new(LotId(7), 1));
    assert!(matches!(ledger.return_units(&taken), Err(ReturnError::NewLot { .. })));
    conserved(&ledger, SKU);
}

#[test]
fn bad_input_is_refused_before_anything_is_read() {
    let (ledger, _) = stocked();
    ledger.take(&AllocateRequest::new(SKU, 4)).expect("sale");
    let version = ledger.snapshot(SKU).expect("defined").version();
    let cases = [
        (ReturnRequest::new(SKU, LotId(1), 0), "zero"),
        (ReturnRequest::new(SKU, LotId(1), Quantity::MAX.get() + 1), "too large"),
        (ReturnRequest::new(SKU, LotId(1), 2).into_new_lot(NewLot::new(LotId(9), 3)), "mismatch"),
        (ReturnRequest::new(SKU, LotId(4), 1), "unknown lot"),
        (ReturnRequest::new(SkuId(9), LotId(1), 1), "unknown SKU"),
    ];
    for (request, what) in cases {
        let error = ledger.return_units(&request).expect_err(what);
        assert!(error.is_invalid() || error.is_not_found(), "{what}: {error}");
    }
    assert_eq!(ledger.snapshot(SKU).expect("defined").version(), version);
}

#[test]
fn a_link_must_name_what_the_units_can_have_left_with() {
    let (ledger, _) = stocked();
    let held = ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("hold");
    let sold = ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("hold");
    ledger.commit(sold.reservation, None).expect("commit");
    let link = |source| ReturnRequest::new(SKU, LotId(1), 1).from(source);
    assert!(matches!(
        ledger.return_units(&link(ReturnSource::Reservation(held.reservation))),
        Err(ReturnError::InvalidSource { .. })
    ));
    let back = ledger.return_units(&link(ReturnSource::Reservation(sold.reservation))).expect("ended");
    assert_eq!(back.source, ReturnSource::Reservation(sold.reservation));

    ledger.define_sku(SkuId(2), AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SkuId(2), NewLot::new(LotId(1), 5)).expect("lot");
    let order = ledger
        .allocate_order(&OrderRequest::new(vec![OrderLine::new(SKU, 1), OrderLine::new(SkuId(2), 1)]))
        .expect("order");
    assert!(ledger.return_units(&link(ReturnSource::Order(order.order))).is_err(), "not committed yet");
    ledger.commit_order(order.order).expect("commit");
    ledger.return_units(&link(ReturnSource::Order(order.order))).expect("a committed order with a part on SKU 1");
    let other = ReturnRequest::new(SkuId(2), LotId(1), 1).from(ReturnSource::Reservation(sold.reservation));
    assert!(matches!(ledger.return_units(&other), Err(ReturnError::InvalidSource { .. })), "another SKU's");
    conserved(&ledger, SKU);
    conserved(&ledger, SkuId(2));
}

#[test]
fn returned_units_fill_waiting_backorders_first_and_are_published() {
    let (ledger, _) = manual_ledger_with_events();
    let events = ledger.subscribe(64).expect("events on");
    ledger.take(&AllocateRequest::new(SKU, 10)).expect("sold out");
    let waiting = ledger.allocate(&AllocateRequest::new(SKU, 2).backordered()).expect("backorder");
    assert_eq!(waiting.backordered, q(2));
    ledger.return_units(&ReturnRequest::new(SKU, LotId(1), 3)).expect("3 back");
    let reservation = ledger.reservation(waiting.reservation).expect("live");
    assert_eq!((reservation.held(), reservation.backordered), (q(2), q(0)), "filled by the return");
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().available, q(1));
    let returned = events
        .try_iter()
        .filter_map(|delivery| match delivery {
            Delivery::Event(event) => match event.change {
                Change::Returned(returned) => Some(returned),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].quantity, q(3));
    conserved(&ledger, SKU);
}

fn manual_ledger_with_events() -> (Ledger, std::sync::Arc<stockroom::ManualClock>) {
    let clock = std::sync::Arc::new(stockroom::ManualClock::new(Timestamp(1_000)));
    let ledger = Ledger::builder().clock(clock.clone()).events(true).build().expect("valid");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("lot 1");
    (ledger, clock)
}

#[test]
fn a_return_runs_as_a_command_and_a_keyed_retry_replays() {
    let (ledger, _) = stocked();
    ledger.take(&AllocateRequest::new(SKU, 4)).expect("sale");
    let command = Command::Return(ReturnRequest::new(SKU, LotId(1), 4));
    assert!(matches!(ledger.execute(&command), Ok(Outcome::Returned(_))));
    ledger.take(&AllocateRequest::new(SKU, 4)).expect("sale");
    let key = stockroom::IdempotencyKey::new("return-1").expect("key");
    let first = ledger.execute_keyed(&key, &command).expect("applied");
    let again = ledger.execute_keyed(&key, &command).expect("replayed");
    assert!(again.replay && !first.replay);
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().returned, q(8), "applied once per key");
    conserved(&ledger, SKU);
}
