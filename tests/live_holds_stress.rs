//! 200,000 live holds on one SKU (issue 13): two threads hold one unit at
//! a time until 200,000 are live (half of them with deadlines that will
//! not pass), then both threads try to end every one of them — one in
//! order, the other in reverse, each committing even and releasing odd
//! ones — so that most holds are raced for. Afterwards: every hold ended
//! exactly once (one thread's call succeeded, the other was told it had
//! ended), conservation is exact, nothing is held, and `audit()` is clean.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, ReservationId, SkuId};

const SKU: SkuId = SkuId(1);
/// Live holds; `STOCKROOM_LIVE_HOLDS` sets another count (even).
fn holds() -> usize {
    std::env::var("STOCKROOM_LIVE_HOLDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000)
}
const STOCK: u64 = 1_000_000;

/// Ends `id` as its parity says; true if this call ended it.
fn end(ledger: &Ledger, index: usize, id: ReservationId) -> bool {
    if index % 2 == 0 {
        match ledger.commit(id, None) {
            Ok(_) => true,
            Err(error) => {
                assert!(error.is_ended(), "a lost race says the hold ended: {error}");
                false
            }
        }
    } else {
        match ledger.release(id) {
            Ok(_) => true,
            Err(error) => {
                assert!(error.is_ended(), "a lost race says the hold ended: {error}");
                false
            }
        }
    }
}

#[test]
fn two_hundred_thousand_live_holds_each_end_exactly_once() {
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define");
    ledger.receive(SKU, NewLot::new(LotId(1), STOCK / 2)).expect("receive");
    ledger.receive(SKU, NewLot::new(LotId(2), STOCK / 2)).expect("receive");

    let makers: Vec<_> = (0..2)
        .map(|thread| {
            let ledger = Arc::clone(&ledger);
            thread::spawn(move || {
                (0..holds() / 2)
                    .map(|i| {
                        let request = AllocateRequest::new(SKU, 1);
                        let request =
                            if (i + thread) % 2 == 0 { request.hold_for(Duration::from_secs(3_600)) } else { request };
                        ledger.allocate(&request).expect("stock for every hold").reservation
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let ids: Vec<ReservationId> = makers.into_iter().flat_map(|maker| maker.join().expect("maker")).collect();
    eprintln!("made {} holds in {:?}", holds(), started.elapsed());
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!(totals.held.get(), holds() as u64, "every hold live");
    assert_eq!(totals.available.get(), STOCK - holds() as u64);
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit());

    let ids = Arc::new(ids);
    let start = Arc::new(Barrier::new(2));
    let enders: Vec<_> = (0..2)
        .map(|thread| {
            let (ledger, ids, start) = (Arc::clone(&ledger), Arc::clone(&ids), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut ended = vec![false; ids.len()];
                for step in 0..ids.len() {
                    let index = if thread == 0 { step } else { ids.len() - 1 - step };
                    ended[index] = end(&ledger, index, ids[index]);
                }
                ended
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let ended: Vec<Vec<bool>> = enders.into_iter().map(|ender| ender.join().expect("ender")).collect();
    eprintln!("ended them in {:?}", started.elapsed());
    for index in 0..holds() {
        assert!(ended[0][index] ^ ended[1][index], "hold {} ended by exactly one call", ids[index]);
    }
    let committed = holds().div_ceil(2) as u64;
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!(totals.held.get(), 0, "nothing held");
    assert_eq!(totals.committed.get(), committed);
    assert_eq!(totals.available.get(), STOCK - committed, "received = available + committed");
    assert!(ledger.audit().is_clean(), "{:?}", ledger.audit());
}
