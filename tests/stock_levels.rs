//! `Ledger::stock` against `Ledger::snapshot`: after every command of a
//! random script, on a ledger with events on (held read from the SKU's
//! totals word) and one without (held summed from the holds), the stock
//! levels must report the snapshot's version, totals (available, expired,
//! held, committed) and, lot by lot in the same order, the same available
//! and expired units and `held + committed` as `held_or_committed`.

use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Ledger, LotId, ManualClock, NewLot, ReservationId, SkuId,
    Timestamp,
};

const SKU: SkuId = SkuId(1);

#[derive(Clone, Debug)]
enum Op {
    Receive { lot: u64, units: u64, expires: Option<u64> },
    Take(u64),
    Hold { units: u64, ms: Option<u64> },
    Release(prop::sample::Index),
    Commit(prop::sample::Index),
    Adjust { lot: u64, delta: i64 },
    Advance(u64),
    WriteOff,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..6, 1u64..9, prop::option::of(1u64..200)).prop_map(|(lot, units, expires)| Op::Receive { lot, units, expires }),
        2 => (1u64..4).prop_map(Op::Take),
        3 => (1u64..4, prop::option::of(1u64..60)).prop_map(|(units, ms)| Op::Hold { units, ms }),
        2 => any::<prop::sample::Index>().prop_map(Op::Release),
        2 => any::<prop::sample::Index>().prop_map(Op::Commit),
        2 => (0u64..6, -3i64..4).prop_map(|(lot, delta)| Op::Adjust { lot, delta }),
        2 => (1u64..40).prop_map(Op::Advance),
        1 => Just(Op::WriteOff),
    ]
}

fn run(events: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let ledger = Ledger::builder().clock(clock.clone()).events(events).build().expect("valid settings");
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define");
    let mut holds: Vec<ReservationId> = Vec::new();
    for op in ops {
        // Refusals are part of the script: only the levels are checked.
        match op {
            Op::Receive { lot, units, expires } => {
                let mut new = NewLot::new(LotId(*lot), *units);
                if let Some(at) = expires {
                    new = new.expires_at(Timestamp(*at));
                }
                let _ = ledger.receive(SKU, new);
            }
            Op::Take(units) => drop(ledger.take(&AllocateRequest::new(SKU, *units))),
            Op::Hold { units, ms } => {
                let request = AllocateRequest::new(SKU, *units);
                let request = match ms {
                    Some(ms) => request.hold_for(Duration::from_millis(*ms)),
                    None => request,
                };
                if let Ok(hold) = ledger.allocate(&request) {
                    holds.push(hold.reservation);
                }
            }
            Op::Release(pick) if !holds.is_empty() => drop(ledger.release(holds.remove(pick.index(holds.len())))),
            Op::Commit(pick) if !holds.is_empty() => drop(ledger.commit(holds.remove(pick.index(holds.len())), None)),
            Op::Release(_) | Op::Commit(_) => {}
            Op::Adjust { lot, delta } => drop(ledger.adjust(SKU, LotId(*lot), *delta, AdjustmentReason::Recount)),
            Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            Op::WriteOff => drop(ledger.write_off_expired(ledger.now())),
        }
        // The snapshot sweeps first; the stock read then finds nothing to
        // sweep and reads the same version.
        let snapshot = ledger.snapshot(SKU).expect("defined");
        let stock = ledger.stock(SKU).expect("defined");
        let totals = snapshot.totals();
        prop_assert_eq!(stock.version, snapshot.version());
        prop_assert_eq!(
            (stock.available, stock.expired, stock.held, stock.committed),
            (totals.available, totals.expired, totals.held, totals.committed),
            "totals at v{} (events {})",
            snapshot.version(),
            events
        );
        let lots: Vec<_> = snapshot.lots().collect();
        prop_assert_eq!(stock.lots.len(), lots.len());
        for (level, lot) in stock.lots.iter().zip(lots) {
            let q = lot.quantities;
            prop_assert_eq!(level.lot, lot.id);
            prop_assert_eq!(level.expires_at, lot.expires_at);
            prop_assert_eq!(level.location, lot.location);
            prop_assert_eq!((level.available, level.expired), (q.available, q.expired), "{:?}", lot.id);
            prop_assert_eq!(level.held_or_committed.get(), q.held.get() + q.committed.get(), "{:?}", lot.id);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn stock_levels_agree_with_the_snapshot(ops in prop::collection::vec(op(), 1..60)) {
        run(true, &ops)?;
        run(false, &ops)?;
    }
}

#[test]
fn an_unknown_sku_has_no_stock() {
    assert!(Ledger::new().stock(SKU).is_err_and(|error| error.is_not_found()));
}
