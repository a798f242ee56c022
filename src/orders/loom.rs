//! Loom models of the shop features' races, on a whole ledger: an order's
//! commit racing the lapse of its parts, a kit racing a sale of one of its
//! components, a backorder's fill racing a new request for the units that
//! fill it, and the expiry write-off racing a hold.
//!
//! Must never: check anything a sequential test could; each model has two
//! threads whose interleavings decide the outcome, and asserts what every
//! interleaving must keep.

use crate::cell::loom::{Preemptions, check};
use crate::clock::{ManualClock, Timestamp};
use crate::command::{AllocateRequest, OrderLine, OrderRequest};
use crate::error::AllocateError;
use crate::ids::{LotId, SkuId};
use crate::kits::KitComponent;
use crate::ledger::Ledger;
use crate::lot::NewLot;
use crate::orders::{OrderChangeError, PartFailure};
use crate::policy::AllocationPolicy;
use crate::sync::Arc;
use loom::thread;
use std::time::Duration;

const MILK: SkuId = SkuId(1);
const BREAD: SkuId = SkuId(2);
const BOX: SkuId = SkuId(10);

/// A ledger on a manual clock at 0 with `skus` defined (FEFO), each
/// stocked with `(lot, units, expiry)`.
fn shop(skus: &[(SkuId, &[(u64, u64, Option<u64>)])]) -> (Arc<Ledger>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let ledger = Ledger::with_clock(clock.clone());
    for &(sku, lots) in skus {
        ledger.define_sku(sku, AllocationPolicy::Fefo).expect("fresh SKU");
        for &(id, units, expiry) in lots {
            let mut lot = NewLot::new(LotId(id), units).received_at(Timestamp(0));
            if let Some(expiry) = expiry {
                lot = lot.expires_at(Timestamp(expiry));
            }
            ledger.receive(sku, lot).expect("setup receipt");
        }
    }
    (Arc::new(ledger), clock)
}

fn totals(ledger: &Ledger, sku: SkuId) -> (u64, u64, u64) {
    let totals = ledger.snapshot(sku).expect("defined").totals();
    (totals.available.get(), totals.held.get(), totals.committed.get())
}

#[test]
fn an_order_commit_racing_the_lapse_of_its_parts_is_all_or_nothing() {
    check("order_commit_races_lapse", Preemptions::AtLeast(1), || {
        let (ledger, clock) = shop(&[(MILK, &[(1, 2, None)]), (BREAD, &[(1, 2, None)])]);
        let order = ledger
            .allocate_order(
                &OrderRequest::new(vec![OrderLine::new(MILK, 1), OrderLine::new(BREAD, 1)])
                    .hold_for(Duration::from_millis(10)),
            )
            .expect("stocked")
            .order;
        let committer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.commit_order(order))
        };
        let sweeper = {
            let ledger = Arc::clone(&ledger);
            // The deadline passes and a read of one part's SKU lapses it
            // (every operation on a SKU sweeps first).
            thread::spawn(move || {
                clock.set(Timestamp(10));
                ledger.snapshot(MILK).expect("defined")
            })
        };
        let committed = committer.join().expect("committer");
        sweeper.join().expect("sweeper");
        let (milk, bread) = (totals(&ledger, MILK), totals(&ledger, BREAD));
        match committed {
            Ok(done) => {
                assert_eq!(done.parts.len(), 2);
                assert_eq!((milk, bread), ((1, 0, 1), (1, 0, 1)), "both parts committed");
            }
            Err(OrderChangeError::Part { failure: PartFailure::Lapsed { .. } | PartFailure::Ended, .. }) => {
                assert_eq!((milk, bread), ((2, 0, 0), (2, 0, 0)), "neither part committed, every unit back")
            }
            Err(other) => panic!("{other}"),
        }
        assert!(ledger.audit().is_clean(), "{:?}", ledger.audit());
    });
}

#[test]
fn a_kit_racing_a_sale_of_its_component_takes_all_or_nothing() {
    check("kit_races_component_sale", Preemptions::AtLeast(1), || {
        let (ledger, _) = shop(&[(MILK, &[(1, 1, None)]), (BREAD, &[(1, 1, None)])]);
        ledger.define_kit(BOX, &[KitComponent::new(MILK, 1), KitComponent::new(BREAD, 1)]).expect("kit");
        let kit = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate_order(&OrderRequest::new(vec![OrderLine::new(BOX, 1)])))
        };
        let sale = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.take(&AllocateRequest::new(BREAD, 1)))
        };
        let (kit, sale) = (kit.join().expect("kit"), sale.join().expect("sale"));
        assert!(kit.is_ok() != sale.is_ok(), "exactly one gets the last bread: {kit:?} {sale:?}");
        let (milk, bread) = (totals(&ledger, MILK), totals(&ledger, BREAD));
        if kit.is_ok() {
            assert_eq!((milk, bread), ((0, 1, 0), (0, 1, 0)), "the kit holds one of each");
        } else {
            assert_eq!((milk, bread), ((1, 0, 0), (0, 0, 1)), "the kit held nothing; the sale took the bread");
        }
        assert_eq!(ledger.kit(BOX).expect("kit").available.get(), 0);
        assert!(ledger.audit().is_clean(), "{:?}", ledger.audit());
    });
}

#[test]
fn a_backorder_is_filled_before_a_request_racing_the_receipt() {
    check("backorder_fill_races_request", Preemptions::AtLeast(2), || {
        let (ledger, _) = shop(&[(MILK, &[])]);
        let waiting = ledger.allocate(&AllocateRequest::new(MILK, 2).backordered()).expect("accepted").reservation;
        let receipt = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.receive(MILK, NewLot::new(LotId(1), 2).received_at(Timestamp(0))))
        };
        let buyer = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.take(&AllocateRequest::new(MILK, 1)))
        };
        receipt.join().expect("receipt").expect("received");
        let bought = buyer.join().expect("buyer");
        assert!(
            matches!(bought, Err(AllocateError::Insufficient { .. })),
            "the receipt's units go to the waiting backorder first, whatever the order: {bought:?}"
        );
        let reservation = ledger.reservation(waiting).expect("live");
        assert_eq!((reservation.held().get(), reservation.backordered.get()), (2, 0));
        assert_eq!(totals(&ledger, MILK), (0, 2, 0));
        assert!(ledger.audit().is_clean(), "{:?}", ledger.audit());
    });
}

#[test]
fn a_hold_racing_the_expiry_write_off_never_draws_expired_units() {
    check("write_off_races_hold", Preemptions::AtLeast(2), || {
        let (ledger, clock) = shop(&[(MILK, &[(1, 2, Some(10)), (2, 2, None)])]);
        clock.set(Timestamp(10));
        let sweeper = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.write_off_expired(Timestamp(10)).expect("not in the future"))
        };
        let holder = {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || ledger.allocate(&AllocateRequest::new(MILK, 1)))
        };
        sweeper.join().expect("sweeper");
        let hold = holder.join().expect("holder").expect("lot 2 has units");
        assert!(hold.lines.iter().all(|line| line.lot == LotId(2)), "drew from the expired lot: {hold:?}");
        let totals = ledger.snapshot(MILK).expect("defined").totals();
        assert_eq!((totals.available.get(), totals.held.get(), totals.written_off.get()), (1, 1, 2));
        assert!(ledger.audit().is_clean(), "{:?}", ledger.audit());
    });
}
