//! The event hub's memory, counted: a global allocator that tallies live
//! heap bytes (and their peak) around a ledger with events on.
//!
//! One test, so nothing else in this binary allocates while it measures:
//!
//! - subscribing allocates (almost) nothing up front, even at
//!   `SUBSCRIPTION_CAPACITY_MAX` (the hub before issue 14 preallocated
//!   160 MiB for that);
//! - 8 threads selling on one SKU (more threads than this machine's
//!   cores), with no subscriber and then with one that never reads, grow
//!   the live heap by at most the hub's budget: 8,192 inbox events plus
//!   4,096 parked ones plus the subscription's 1,024 (and its lag
//!   notice), each at most 256 bytes (a one-line sale event is 152 bytes
//!   inline, a queue slot's state word, and its line on the heap; a
//!   B-tree entry adds its key and node slack), plus 16,384 shed
//!   identities of at most 32 bytes (16, and the slot's state word), plus
//!   1 MiB for the rest (the dispatcher's maps, queue blocks, the threads'
//!   own buffers). The hub before issue 14 grew without bound here (its
//!   inbox held every event the single dispatcher had not reached).
//! - whatever the hub shed, the idle subscriber is told: what it received
//!   plus what it was told it missed is every sale, once the ledger is
//!   dropped (which releases everything and sends the last notice). One
//!   more sale after the others (with the hub drained first) tells of a
//!   shed whose identity did not fit the shed log, if there was one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use stockroom::{
    AllocateRequest, AllocationPolicy, Delivery, Ledger, LotId, NewLot, Quantity, SUBSCRIPTION_CAPACITY_MAX, SkuId,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: tallies; the peak is a maximum over the counter's own
        // modification order, which any ordering gives.
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Relaxed: a tally (see `alloc`).
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const THREADS: u64 = 8;
const SALES_PER_THREAD: u64 = 25_000;
const IDLE_CAPACITY: usize = 1_024;
const EVENT_BYTES_MAX: isize = 256;
const HUB_EVENTS_MAX: isize = 8_192 + 4_096;
const SHED_LOG_BYTES_MAX: isize = 16_384 * 32;
const SLACK_BYTES: isize = 1 << 20;

fn live() -> isize {
    // Relaxed: a tally read between phases on this thread.
    LIVE.load(Ordering::Relaxed)
}

/// Runs `f` and returns its peak live-heap growth over the live heap
/// before it.
fn peak_growth(f: impl FnOnce()) -> isize {
    let before = live();
    // Relaxed: only this thread resets it, between phases.
    PEAK.store(before, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - before
}

fn stocked_ledger() -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::builder().events(true).build().expect("valid settings"));
    ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).expect("fresh");
    ledger.receive(SkuId(1), NewLot::new(LotId(1), Quantity::MAX.get())).expect("receive");
    ledger
}

fn sell_from_many_threads(ledger: &Arc<Ledger>) {
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..SALES_PER_THREAD {
                    ledger.take(&AllocateRequest::new(SkuId(1), 1)).expect("2^40 - 1 units do not sell out");
                }
            });
        }
    });
}

#[test]
fn hub_memory_stays_within_its_budget_whatever_the_publishers() {
    // Subscribing at the largest capacity allocates the subscription's
    // bookkeeping, not its channel.
    let ledger = stocked_ledger();
    let before = live();
    let subscription = ledger.subscribe(SUBSCRIPTION_CAPACITY_MAX).expect("subscribe");
    let subscribed = live() - before;
    assert!(subscribed < 4 << 10, "subscribing allocated {subscribed} bytes up front");
    drop(subscription);

    let budget = HUB_EVENTS_MAX * EVENT_BYTES_MAX + SHED_LOG_BYTES_MAX + SLACK_BYTES;
    let none = peak_growth(|| sell_from_many_threads(&ledger));
    eprintln!("no subscriber: peak live heap +{none} bytes (bound {budget})");
    assert!(none <= budget, "no subscriber: the live heap grew by {none} bytes, over the hub's budget {budget}");
    drop(ledger);

    let ledger = stocked_ledger();
    let idle = ledger.subscribe(IDLE_CAPACITY).expect("subscribe");
    let budget = budget + (IDLE_CAPACITY as isize + 1) * EVENT_BYTES_MAX;
    let with_idle = peak_growth(|| sell_from_many_threads(&ledger));
    eprintln!("idle subscriber: peak live heap +{with_idle} bytes (bound {budget})");
    assert!(with_idle <= budget, "idle subscriber: the live heap grew by {with_idle} bytes, over {budget}");
    let (mut received, mut missed) = (0u64, 0u64);
    let mut count = |delivery| match delivery {
        Delivery::Event(_) => received += 1,
        Delivery::Lagged { missed: count } => missed += count,
    };
    // Drain what the hub holds (each receive pumps one batch; bounded).
    let mut deliveries = 0;
    for _ in 0..1_000_000 {
        let before = deliveries;
        idle.try_iter().for_each(|delivery| {
            deliveries += 1;
            count(delivery)
        });
        if deliveries == before {
            break;
        }
    }
    ledger.take(&AllocateRequest::new(SkuId(1), 1)).expect("one more sale");
    drop(ledger);
    idle.try_iter().for_each(&mut count);
    assert_eq!(received + missed, THREADS * SALES_PER_THREAD + 1, "every sale received or counted");
}
