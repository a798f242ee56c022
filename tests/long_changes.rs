//! A long change lands while other threads keep changing its SKU: a
//! shrink that displaces thousands of holds computes for milliseconds,
//! and a seller landing a sale every ~100 ns would win every race against
//! it. The SKU's quiet window (see `src/cell/quiet.rs`) gives the long
//! change its turn; without it the shrink below is refused as contended
//! after `ATTEMPTS_MAX` lost races (minutes), never applied.
//!
//! No timing is asserted, only an order of events counted in sales: the
//! shrink must land while the seller is still selling (the seller gives up
//! after [`SALES_MAX`] sales, some seconds; without the quiet window the
//! shrink lands only after that, when nobody competes), every hold must be
//! re-sourced, and the books must balance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use stockroom::{AdjustmentReason, AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};

const SKU: SkuId = SkuId(1);
const HOLDS: u64 = 16_384;
/// Sales after which the seller stops on its own.
const SALES_MAX: u64 = 20_000_000;

#[test]
fn a_shrink_displacing_thousands_of_holds_lands_while_a_seller_sells() {
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SKU, NewLot::new(LotId(0), HOLDS)).expect("the lot the shrink empties");
    ledger.receive(SKU, NewLot::new(LotId(1), 1 << 30)).expect("the lot that takes the holds");
    let holds: Vec<_> =
        (0..HOLDS).map(|_| ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("stocked").reservation).collect();

    let landed = Arc::new(AtomicBool::new(false));
    let sold = Arc::new(AtomicU64::new(0));
    let seller = {
        let (ledger, landed, sold) = (ledger.clone(), landed.clone(), sold.clone());
        std::thread::spawn(move || {
            // Relaxed: the flag orders nothing (the joins do); `sold` is
            // read after the join.
            while !landed.load(Ordering::Relaxed) && sold.load(Ordering::Relaxed) < SALES_MAX {
                ledger.take(&AllocateRequest::new(SKU, 1)).expect("lot 1 has plenty");
                sold.fetch_add(1, Ordering::Relaxed);
            }
            // Whether the seller stopped because the shrink landed.
            landed.load(Ordering::Relaxed)
        })
    };
    // Let the seller get going before the shrink starts.
    while sold.load(Ordering::Relaxed) < 1_000 {
        std::thread::yield_now();
    }
    let adjusted = ledger.adjust(SKU, LotId(0), -(HOLDS as i64), AdjustmentReason::Damage);
    landed.store(true, Ordering::Relaxed);
    let stopped_for_the_shrink = seller.join().expect("seller");

    let adjusted = adjusted.expect("the shrink is applied, not refused as contended");
    let sold_by_then = sold.load(Ordering::Relaxed);
    assert!(stopped_for_the_shrink, "the shrink landed only after the seller gave up ({SALES_MAX} sales)");
    assert_eq!(adjusted.shortfalls.len() as u64, HOLDS, "every hold on lot 0 was displaced");
    assert!(adjusted.shortfalls.iter().all(|shortfall| shortfall.shorted.is_zero()), "lot 1 covered them all");
    assert!(sold_by_then >= 1_000, "the seller sold while the shrink ran");
    for id in holds {
        let reservation = ledger.reservation(id).expect("live");
        assert_eq!(
            reservation.lines.iter().map(|line| (line.lot, line.quantity.get())).collect::<Vec<_>>(),
            [(LotId(1), 1)]
        );
    }
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!(totals.held.get(), HOLDS);
    assert_eq!(totals.committed.get(), sold.load(Ordering::Relaxed));
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit().violations);
}
