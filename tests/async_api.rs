//! The `async` feature on a real runtime (tokio): a subscription as a
//! stream, an intake ticket as a future, keyed duplicates awaited, an owned
//! hold guard moved into a task. Each test fails if a wake-up is lost (the
//! awaits are bounded by a timeout) or if an answer is wrong.
#![cfg(feature = "async")]

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use stockroom::intake::Intake;
use stockroom::{
    AllocateRequest, AllocationPolicy, Change, Command, Delivery, IdempotencyKey, Ledger, LotId, NewLot, Outcome, SkuId,
};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(20);

fn stocked(events: bool, units: u64) -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::builder().events(events).build().unwrap());
    ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
    ledger.receive(SkuId(1), NewLot::new(LotId(1), units)).unwrap();
    ledger
}

/// A stream awaiting with nothing ready is woken by sales made later on
/// other threads, and sees every one of them in version order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_woken_by_later_changes() {
    let ledger = stocked(true, 1_000);
    let mut events = ledger.subscribe(4_096).unwrap();
    // Subscribed after the SKU was defined (version 0) and received into
    // (version 1): the first event is the first sale's.
    let mut last_version = 1;
    const SALES: u64 = 200;
    let seller = {
        let ledger = Arc::clone(&ledger);
        std::thread::spawn(move || {
            for _ in 0..SALES {
                std::thread::sleep(Duration::from_micros(200));
                ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
            }
        })
    };
    let mut sold = 0;
    while sold < SALES {
        match timeout(PATIENCE, events.next()).await.expect("a lost wake-up: no event in time") {
            Some(Delivery::Event(event)) => {
                assert!(matches!(event.change, Change::Sold(_)));
                assert_eq!(event.version, last_version + 1, "in order, no gaps");
                last_version = event.version;
                sold += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    seller.join().unwrap();
    drop(ledger);
    assert!(timeout(PATIENCE, events.next()).await.unwrap().is_none(), "ends with the ledger");
}

/// Tickets awaited on the runtime while workers decide them: every one
/// resolves, with the same decision a blocking wait sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_are_futures() {
    let ledger = stocked(false, 50);
    let intake = Intake::builder().workers(2).capacity(256).build(Arc::clone(&ledger)).unwrap();
    let tickets: Vec<_> =
        (0..100).map(|_| intake.submit(Command::Take(AllocateRequest::new(SkuId(1), 1))).unwrap()).collect();
    let mut sold = 0;
    for ticket in tickets {
        let blocking = ticket.clone();
        let decision = timeout(PATIENCE, ticket).await.expect("a ticket never woke its task");
        assert_eq!(&decision, blocking.wait());
        sold += usize::from(matches!(decision, Ok(Outcome::Sold(_))));
    }
    assert_eq!(sold, 50);
    assert!(intake.shutdown().is_complete());
}

/// A retry storm of async keyed calls: one applies, the rest replay it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_duplicates_are_awaited() {
    let ledger = stocked(false, 10_000);
    let mut calls = Vec::new();
    for order in 0..200 {
        let key = IdempotencyKey::new(format!("order-{order}")).unwrap();
        for _ in 0..4 {
            let (ledger, key) = (Arc::clone(&ledger), key.clone());
            calls.push(tokio::spawn(async move {
                ledger.execute_keyed_async(&key, &Command::Take(AllocateRequest::new(SkuId(1), 2))).await
            }));
        }
    }
    let mut applied = 0;
    for call in calls {
        let keyed = timeout(PATIENCE, call).await.unwrap().unwrap().unwrap();
        applied += usize::from(!keyed.replay);
    }
    assert_eq!(applied, 200);
    assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), 400);
    assert!(ledger.metrics().keyed_replays >= 600);
}

/// An owned guard held across an await in a spawned task; a task that
/// gives up (dropped guard) releases its units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_guard_moves_into_a_task() {
    let ledger = stocked(false, 10);
    let guard = ledger.allocate_owned(&AllocateRequest::new(SkuId(1), 4)).unwrap();
    let paid = tokio::spawn(async move {
        let mut guard = guard;
        tokio::time::sleep(Duration::from_millis(5)).await; // "payment"
        guard.commit(None).unwrap().committed.to_vec().iter().map(|line| line.quantity.get()).sum::<u64>()
    });
    assert_eq!(paid.await.unwrap(), 4);
    let abandoned = ledger.allocate_owned(&AllocateRequest::new(SkuId(1), 3)).unwrap();
    tokio::spawn(async move {
        let _guard = abandoned;
        tokio::time::sleep(Duration::from_millis(5)).await;
    })
    .await
    .unwrap();
    let totals = ledger.snapshot(SkuId(1)).unwrap().totals();
    assert_eq!((totals.committed.get(), totals.held.get(), totals.available.get()), (4, 0, 6));
}

/// Awaiting durability parks no thread: a hundred tasks on one runtime
/// thread each sell and await `acknowledged()`; they share a few group
/// commits. A blocking wait would hold the only thread through each
/// task's own fsync (a hundred syncs), so the count of syncs tells.
#[cfg(feature = "journal")]
#[tokio::test(flavor = "current_thread")]
async fn awaiting_durability_parks_no_thread_and_tasks_share_group_commits() {
    use stockroom::journal::{Durability, JournalOptions};
    const TASKS: u64 = 100;
    let dir = std::env::temp_dir().join(format!("stockroom-async-acknowledged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ledger, _) = Ledger::builder().open(&dir, JournalOptions::new(Durability::Sync)).unwrap();
    let ledger = Arc::new(ledger);
    ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
    ledger.receive(SkuId(1), NewLot::new(LotId(1), 1_000)).unwrap();
    timeout(PATIENCE, ledger.acknowledged()).await.unwrap().unwrap();
    let syncs_before = ledger.journal().unwrap().stats().syncs;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
                let through = ledger.acknowledged().await.unwrap();
                assert!(ledger.journal().unwrap().durable_seq() >= through, "resolved before durable");
            })
        })
        .collect();
    for task in tasks {
        timeout(PATIENCE, task).await.expect("woken within the patience").unwrap();
    }
    let syncs = ledger.journal().unwrap().stats().syncs - syncs_before;
    assert!(syncs <= TASKS / 4, "{syncs} syncs for {TASKS} tasks: the waits did not overlap");
    assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), TASKS);
    // No journal: a typed error, at once.
    let plain = Ledger::new();
    assert_eq!(plain.acknowledged().await, Err(stockroom::AcknowledgeError::NoJournal));
    drop(ledger);
    let _ = std::fs::remove_dir_all(&dir);
}
