//! The quick tier: single-thread costs of the hot paths, tracked with
#![allow(missing_docs)] // criterion_group! generates undocumented items
//! criterion to catch regressions. Contention lives in `contention.rs`.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use stockroom::{AdjustmentReason, AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId, Timestamp};

fn stocked(lots: u64, units_per_lot: u64) -> Ledger {
    let ledger = Ledger::new();
    ledger.define_sku(SkuId(1), AllocationPolicy::Fefo).expect("fresh SKU");
    for lot in 0..lots {
        let expiry = Timestamp::from_millis(u64::MAX / 2 + lot);
        ledger.receive(SkuId(1), NewLot::new(LotId(lot), units_per_lot).expires_at(expiry)).expect("receive");
    }
    ledger
}

fn hot_paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("quick");
    let one = AllocateRequest::new(SkuId(1), 1);

    let ledger = stocked(1, 1 << 39);
    group.bench_function("take_1_unit", |b| b.iter(|| black_box(ledger.take(&one)).is_ok()));

    let ledger = stocked(1, 1 << 39);
    group.bench_function("allocate_then_release", |b| {
        b.iter(|| {
            let hold = ledger.allocate(&one).expect("stocked");
            black_box(ledger.release(hold.reservation)).is_ok()
        })
    });

    let ledger = stocked(1, 1 << 39);
    group.bench_function("allocate_then_commit", |b| {
        b.iter(|| {
            let hold = ledger.allocate(&one).expect("stocked");
            black_box(ledger.commit(hold.reservation, None)).is_ok()
        })
    });

    let ledger = stocked(1, 1);
    ledger.take(&one).expect("the one unit");
    group.bench_function("refuse_sold_out", |b| b.iter(|| black_box(ledger.take(&one)).is_err()));

    let ledger = stocked(1, 1 << 39);
    group.bench_function("snapshot", |b| b.iter(|| black_box(ledger.snapshot(SkuId(1)).map(|s| s.version()))));

    let ledger = stocked(2_000, 100_000);
    let order = AllocateRequest::new(SkuId(1), 150_000);
    group.bench_function("fefo_2000_lots_allocate_release", |b| {
        b.iter(|| {
            let hold = ledger.allocate(&order).expect("stocked");
            black_box(ledger.release(hold.reservation)).is_ok()
        })
    });
    group.bench_function("fefo_2000_lots_adjust", |b| {
        let mut sign = 1;
        b.iter(|| {
            sign = -sign;
            black_box(ledger.adjust(SkuId(1), LotId(0), sign * 3_000, AdjustmentReason::Recalibration)).is_ok()
        })
    });

    group.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
