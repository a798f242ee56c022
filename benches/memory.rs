//! Memory per lot, per one-lot SKU and per live reservation (without and
//! with a deadline), measured with a counting global allocator: live heap
//! bytes after building a state, minus live heap bytes of the same ledger
//! one size smaller, divided by the difference in size. Old snapshot
//! versions are freed as soon as no reader holds them, so what is counted
//! is the current state only. Targets from issue 13.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;
use stockroom::{AllocateRequest, AllocationPolicy, Command, IdempotencyKey, Ledger, LotId, NewLot, SkuId, Timestamp};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn ledger_with_lots(lots: u64) -> Ledger {
    let ledger = Ledger::new();
    ledger.define_sku(SkuId(1), AllocationPolicy::Fefo).expect("fresh");
    for lot in 0..lots {
        let expiry = Timestamp::from_millis(1 << 60 | lot);
        ledger.receive(SkuId(1), NewLot::new(LotId(lot), 100_000).expires_at(expiry)).expect("receive");
    }
    ledger
}

fn per_unit(small: impl FnOnce() -> Ledger, large: impl FnOnce() -> Ledger, units: isize) -> f64 {
    let before = live();
    let a = small();
    let small_bytes = live() - before;
    let before = live();
    let b = large();
    let large_bytes = live() - before;
    drop((a, b));
    (large_bytes - small_bytes) as f64 / units as f64
}

fn main() {
    let lot = per_unit(|| ledger_with_lots(1), || ledger_with_lots(2_001), 2_000);

    let sku = per_unit(
        Ledger::new,
        || {
            let ledger = Ledger::new();
            for sku in 0..10_000 {
                ledger.define_sku(SkuId(sku), AllocationPolicy::Fefo).expect("fresh");
                ledger.receive(SkuId(sku), NewLot::new(LotId(1), 10)).expect("receive");
            }
            ledger
        },
        10_000,
    );

    let holds = |request: AllocateRequest| {
        per_unit(
            || ledger_with_lots(1),
            move || {
                let ledger = ledger_with_lots(1);
                for _ in 0..10_000 {
                    ledger.allocate(&request).expect("stocked");
                }
                ledger
            },
            10_000,
        )
    };
    let hold = holds(AllocateRequest::new(SkuId(1), 1));
    let deadline_hold = holds(AllocateRequest::new(SkuId(1), 1).hold_for(Duration::from_secs(3_600)));

    // A keyed one-unit hold per key: keys like the service's (a UUID's
    // 36 characters); the bytes a remembered key costs, its outcome
    // included.
    let keyed = |command: fn(u64) -> Command| {
        per_unit(
            || ledger_with_lots(1),
            move || {
                let ledger = ledger_with_lots(1);
                for i in 0..10_000u64 {
                    let key = IdempotencyKey::new(format!("{i:08x}-0000-4000-8000-000000000000")).expect("valid");
                    ledger.execute_keyed(&key, &command(i)).expect("stocked");
                }
                ledger
            },
            10_000,
        )
    };
    let key_take = keyed(|_| Command::Take(AllocateRequest::new(SkuId(1), 1)));
    let key_hold = keyed(|_| Command::Allocate(AllocateRequest::new(SkuId(1), 1)));

    println!("| what | bytes | target |");
    println!("|---|---:|---:|");
    println!("| per lot (2,000-lot SKU) | {lot:.1} | 64 |");
    println!("| per SKU with one lot (10,000 SKUs) | {sku:.1} | 256 |");
    println!("| per live single-line reservation (10,000 on one SKU) | {hold:.1} | 96 |");
    println!("| per live single-line reservation with a deadline (10,000 on one SKU) | {deadline_hold:.1} | - |");
    println!(
        "| per remembered idempotency key, keyed one-unit take (36-character keys) | {key_take:.1} | 64 (issue 14) |"
    );
    println!("| per remembered idempotency key, keyed one-unit hold, hold included | {key_hold:.1} | - |");
}
