//! What a remembered idempotency key costs in heap memory (issue 14: it was
//! ~600 bytes when the key store kept the `Command` and `Result` enums
//! inline; packed, about 200). A counting global allocator tracks the bytes
//! this test's thread holds (allocated minus freed, as requested of the
//! allocator) across 10,000 keyed one-unit takes with fresh 36-character
//! keys, like the service's UUIDs. A byte count is deterministic, so this
//! is a test, not a timing: it fails if the store goes back to keeping
//! commands and results at their enums' full size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use stockroom::{AllocateRequest, AllocationPolicy, Command, IdempotencyKey, Ledger, LotId, NewLot, SkuId};

struct Counting;

thread_local! {
    /// Bytes held by this thread's allocations while counting is on;
    /// `None`: off.
    static HELD: Cell<Option<i64>> = const { Cell::new(None) };
}

fn held(by: i64) {
    // `try_with`: the allocator may run while the thread-local is torn down.
    let _ = HELD.try_with(|held| {
        if let Some(bytes) = held.get() {
            held.set(Some(bytes + by));
        }
    });
}

/// An allocation's size as a byte delta (sizes are far below `i64::MAX`).
fn size(bytes: usize) -> i64 {
    i64::try_from(bytes).expect("an allocation fits in i64")
}

// SAFETY: defers to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        held(size(layout.size()));
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        held(-size(layout.size()));
        // SAFETY: `ptr` came from `alloc` (or `realloc`) with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        held(size(new_size) - size(layout.size()));
        // SAFETY: the caller's contract, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYS: u64 = 10_000;

/// Bytes per remembered key, from the heap this thread holds after the
/// keyed takes against before them.
#[test]
fn a_remembered_key_costs_at_most_256_bytes_of_heap() {
    let ledger = Ledger::new();
    ledger.define_sku(SkuId(1), AllocationPolicy::Fefo).expect("define");
    ledger.receive(SkuId(1), NewLot::new(LotId(1), 1_000_000)).expect("receive");
    let take = Command::Take(AllocateRequest::new(SkuId(1), 1));
    // Warm-up: this thread's descriptor and metrics stripe, a first key.
    let warm = IdempotencyKey::new("warm-up").expect("valid");
    ledger.execute_keyed(&warm, &take).expect("stocked");

    HELD.with(|held| held.set(Some(0)));
    for i in 0..KEYS {
        let key = IdempotencyKey::new(format!("{i:08x}-0000-4000-8000-000000000000")).expect("valid");
        ledger.execute_keyed(&key, &take).expect("stocked");
    }
    let bytes = HELD.with(|held| held.replace(None)).expect("counting was on");

    let per_key = bytes as f64 / KEYS as f64;
    // Every key is remembered (a replay proves the store kept them all).
    let first = IdempotencyKey::new(format!("{:08x}-0000-4000-8000-000000000000", 0)).expect("valid");
    assert!(ledger.execute_keyed(&first, &take).expect("replays").replay);
    assert!(per_key > 64.0, "{per_key:.1} bytes per key: the store cannot hold a key's text in less");
    assert!(per_key <= 256.0, "a remembered key holds {per_key:.1} bytes of heap (the bound is 256)");
}
