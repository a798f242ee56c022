//! Zero heap allocations on the steady path (issue 13, target 2): a hold
//! the cursor's lot covers, its commit, its release, and an immediate sale
//! allocate nothing once the ledger is warm. A counting global allocator
//! counts every allocation this test's thread makes while the measured
//! loop runs; a count is deterministic, so this is a test, not a timing.
//!
//! Warm means: the SKU is defined and stocked, the calling thread has its
//! descriptor, and the slot table has grown to the live holds the loop
//! keeps (a first hold on a fresh chunk allocates the chunk, once).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;
use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};

struct Counting;

thread_local! {
    /// Allocations by this thread while counting is on; `None`: off.
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn count_one() {
    // `try_with`: the allocator may run while the thread-local is torn down.
    let _ = COUNT.try_with(|count| {
        if let Some(n) = count.get() {
            count.set(Some(n + 1));
        }
    });
}

// SAFETY: defers to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` (or `realloc`) with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations (and reallocations) made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|count| count.set(Some(0)));
    f();
    COUNT.with(|count| count.replace(None)).expect("counting was on")
}

const SKU: SkuId = SkuId(1);
const ROUNDS: u64 = 10_000;

fn warm_ledger(live_holds: u64) -> (Ledger, Vec<stockroom::ReservationId>) {
    let ledger = Ledger::new();
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define");
    ledger.receive(SKU, NewLot::new(LotId(1), 10_000_000)).expect("receive");
    let kept =
        (0..live_holds).map(|_| ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("hold").reservation).collect();
    // Warm-up: this thread's descriptor, the slot table's first chunks.
    for _ in 0..64 {
        let hold = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("hold");
        ledger.release(hold.reservation).expect("release");
        ledger.take(&AllocateRequest::new(SKU, 1)).expect("sale");
    }
    (ledger, kept)
}

#[test]
fn hold_then_commit_allocates_nothing() {
    let (ledger, _kept) = warm_ledger(100);
    let counted = allocations(|| {
        for _ in 0..ROUNDS {
            let hold = ledger.allocate(&AllocateRequest::new(SKU, 1)).expect("hold");
            ledger.commit(hold.reservation, None).expect("commit");
        }
    });
    assert_eq!(counted, 0, "{counted} allocations in {ROUNDS} hold + commit");
    assert!(ledger.audit().is_clean());
}

#[test]
fn hold_then_release_allocates_nothing() {
    let (ledger, _kept) = warm_ledger(100);
    let counted = allocations(|| {
        for _ in 0..ROUNDS {
            let hold = ledger.allocate(&AllocateRequest::new(SKU, 2)).expect("hold");
            ledger.release(hold.reservation).expect("release");
        }
    });
    assert_eq!(counted, 0, "{counted} allocations in {ROUNDS} hold + release");
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_sale_allocates_nothing() {
    let (ledger, _kept) = warm_ledger(0);
    let counted = allocations(|| {
        for _ in 0..ROUNDS {
            ledger.take(&AllocateRequest::new(SKU, 1)).expect("sale");
        }
    });
    assert_eq!(counted, 0, "{counted} allocations in {ROUNDS} sales");
    assert!(ledger.audit().is_clean());
}

#[test]
fn a_hold_with_a_deadline_and_its_commit_allocate_nothing() {
    let (ledger, _kept) = warm_ledger(100);
    let request = AllocateRequest::new(SKU, 1).hold_for(Duration::from_secs(600));
    for _ in 0..64 {
        let hold = ledger.allocate(&request).expect("hold");
        ledger.commit(hold.reservation, None).expect("commit");
    }
    let counted = allocations(|| {
        for _ in 0..ROUNDS {
            let hold = ledger.allocate(&request).expect("hold");
            ledger.commit(hold.reservation, None).expect("commit");
        }
    });
    assert_eq!(counted, 0, "{counted} allocations in {ROUNDS} deadline holds + commits");
    assert!(ledger.audit().is_clean());
}

#[test]
fn the_counter_sees_an_allocation() {
    let counted = allocations(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(counted, 1, "the counting allocator counts this thread's allocations");
}
