//! Backorders: a request accepted while stock is short holds what there
//! is, waits for the rest in arrival order, and is filled by the change that
//! brings units in, before any other request can take them.

mod common;

use common::manual_ledger;
use std::time::Duration;
use stockroom::{
    AllocateError, AllocateRequest, AllocationPolicy, Change, CommitError, Delivery, Ledger, LotId, NewLot, Notice,
    Quantity, SkuId,
};

const SKU: SkuId = SkuId(1);

fn q(units: u64) -> Quantity {
    Quantity::new(units).expect("in range")
}

fn stocked(units: u64) -> Ledger {
    let (ledger, _) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    if units > 0 {
        ledger.receive(SKU, NewLot::new(LotId(1), units)).expect("receipt");
    }
    ledger
}

#[test]
fn a_short_request_holds_what_there_is_and_waits_for_the_rest() {
    let ledger = stocked(3);
    let backorder = ledger.allocate(&AllocateRequest::new(SKU, 5).backordered()).expect("accepted");
    assert_eq!(backorder.quantity(), q(3));
    assert_eq!(backorder.backordered, q(2));
    let reservation = ledger.reservation(backorder.reservation).expect("live");
    assert_eq!((reservation.held(), reservation.backordered, reservation.shorted), (q(3), q(2), q(0)));
    assert_eq!(
        ledger.commit(backorder.reservation, None),
        Err(CommitError::Waiting { id: backorder.reservation, outstanding: q(2) })
    );
    // A plain request finds nothing: the waiting backorder had it all.
    assert!(matches!(ledger.take(&AllocateRequest::new(SKU, 1)), Err(AllocateError::Insufficient { .. })));

    ledger.receive(SKU, NewLot::new(LotId(2), 4)).expect("receipt");
    let reservation = ledger.reservation(backorder.reservation).expect("live");
    assert_eq!((reservation.held(), reservation.backordered), (q(5), q(0)));
    assert_eq!(ledger.snapshot(SKU).expect("snapshot").totals().available, q(2), "the rest of the receipt");
    let committed = ledger.commit(backorder.reservation, None).expect("whole now");
    assert_eq!(committed.committed.iter().map(|line| line.quantity.get()).sum::<u64>(), 5);
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_preorder_of_a_sku_without_stock_waits_for_its_first_receipt() {
    let ledger = stocked(0);
    let preorder = ledger.allocate(&AllocateRequest::new(SKU, 2).backordered()).expect("accepted");
    assert_eq!((preorder.quantity(), preorder.backordered), (q(0), q(2)));
    ledger.receive(SKU, NewLot::new(LotId(7), 10)).expect("receipt");
    assert_eq!(ledger.reservation(preorder.reservation).expect("live").held(), q(2));
    ledger.release(preorder.reservation).expect("released");
    assert_eq!(ledger.snapshot(SKU).expect("snapshot").totals().available, q(10));
    assert!(ledger.audit().is_clean());
}

#[test]
fn backorders_fill_oldest_first_from_every_change_that_gives_units_back() {
    let ledger = stocked(2);
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("all of it");
    let first = ledger.allocate(&AllocateRequest::new(SKU, 3).backordered()).expect("waits");
    let second = ledger.allocate(&AllocateRequest::new(SKU, 1).backordered()).expect("waits");
    assert_eq!((first.backordered, second.backordered), (q(3), q(1)));
    // A release gives 2 back: both go to the oldest backorder.
    ledger.release(hold.reservation).expect("released");
    assert_eq!(ledger.reservation(first.reservation).expect("live").backordered, q(1));
    assert_eq!(ledger.reservation(second.reservation).expect("live").backordered, q(1));
    // A growth of 2: one to each, in order.
    ledger.adjust(SKU, LotId(1), 2, stockroom::AdjustmentReason::Recount).expect("growth");
    assert_eq!(ledger.reservation(first.reservation).expect("live").backordered, q(0));
    assert_eq!(ledger.reservation(second.reservation).expect("live").backordered, q(0));
    assert_eq!(ledger.snapshot(SKU).expect("snapshot").totals().available, q(0));
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_backorder_lapses_at_its_deadline_and_leaves_the_queue() {
    let (ledger, clock) = manual_ledger(1_000);
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(1), 1)).expect("receipt");
    let waiting =
        ledger.allocate(&AllocateRequest::new(SKU, 4).backordered().hold_for(Duration::from_secs(60))).expect("waits");
    clock.advance(Duration::from_secs(61));
    // The lapse returns the one unit it had; nothing waits any more, so a
    // receipt stays available.
    ledger.receive(SKU, NewLot::new(LotId(2), 5)).expect("receipt");
    assert!(ledger.reservation(waiting.reservation).is_err());
    assert_eq!(ledger.snapshot(SKU).expect("snapshot").totals().available, q(6));
    assert!(ledger.audit().is_clean());
}

#[test]
fn the_queue_is_bounded_and_take_cannot_wait() {
    let ledger = stocked(0);
    assert_eq!(
        ledger.take(&AllocateRequest::new(SKU, 1).backordered()),
        Err(AllocateError::BackorderOnTake { sku: SKU })
    );
    let mut accepted = 0;
    let refusal = loop {
        match ledger.allocate(&AllocateRequest::new(SKU, 1).backordered()) {
            Ok(_) => accepted += 1,
            Err(error) => break error,
        }
        assert!(accepted <= 100_000, "the queue has a bound");
    };
    assert!(matches!(refusal, AllocateError::BackorderQueueFull { sku: SKU, max } if max == accepted));
    let before = ledger.snapshot(SKU).expect("snapshot").version();
    assert!(ledger.allocate(&AllocateRequest::new(SKU, 1).backordered()).is_err());
    assert_eq!(ledger.snapshot(SKU).expect("snapshot").version(), before, "a refusal changes nothing");
    // One receipt fills them all, oldest first.
    ledger.receive(SKU, NewLot::new(LotId(1), accepted as u64)).expect("receipt");
    let snapshot = ledger.snapshot(SKU).expect("snapshot");
    assert_eq!(snapshot.totals().held.get(), accepted as u64);
    assert!(snapshot.reservations().all(|reservation| reservation.backordered.is_zero()));
    assert!(ledger.audit().is_clean());
}

#[test]
fn fills_are_told_as_notices_of_the_change_that_brought_the_units() {
    let ledger = Ledger::builder().events(true).build().expect("valid");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    let events = ledger.subscribe(64).expect("subscribe");
    let waiting = ledger.allocate(&AllocateRequest::new(SKU, 3).backordered()).expect("waits");
    ledger.receive(SKU, NewLot::new(LotId(1), 2)).expect("receipt");
    ledger.receive(SKU, NewLot::new(LotId(2), 2)).expect("receipt");
    let mut fills = Vec::new();
    for _ in 0..1_000 {
        match events.recv_timeout(Duration::from_secs(5)) {
            Ok(Delivery::Event(event)) => {
                for notice in &event.notices {
                    if let (Change::Received(_), Notice::BackorderFilled { reservation, outstanding, .. }) =
                        (&event.change, notice)
                    {
                        fills.push((*reservation, outstanding.get()));
                    }
                }
                if event.version == 3 {
                    break;
                }
            }
            Ok(_) => {}
            Err(error) => panic!("the events stopped: {error:?}"),
        }
    }
    assert_eq!(fills, [(waiting.reservation, 1), (waiting.reservation, 0)]);
}
