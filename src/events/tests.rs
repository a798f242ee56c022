//! The hub's behaviour through its crate-internal API, on real threads:
//! ordering, sequencing, lag counts, subscription churn, pumping by
//! receivers, the final dispatch, and the memory budget (shedding at the
//! inbox, skipping gaps in the reorder buffer, exact counts throughout).
//! The pieces have their own unit tests (`inbox.rs`, `shed.rs`,
//! `reorder.rs`, `outlet.rs`); the races are in the loom models
//! (`loom.rs`).

use super::budget::{Budget, DISPATCH_BATCH_MAX, INBOX_EVENTS_MAX, REORDER_EVENTS_MAX, SHED_LOG_MAX};
use super::hub::EventHub;
use super::probe::{Probe, probe};
use super::{Delivery, RecvError, RecvTimeoutError, Subscription, TryRecvError};
use crate::ids::SkuId;
use crate::sync::{Arc, AtomicBool, Ordering};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

/// A hub with the shipped counts that never gives up waiting for a gap:
/// these tests park events on purpose, and what they see must not depend
/// on how fast the machine runs them.
fn patient() -> EventHub<Probe> {
    EventHub::with_budget(Budget::new(INBOX_EVENTS_MAX, SHED_LOG_MAX, REORDER_EVENTS_MAX, FOREVER))
}

const FOREVER: Duration = Duration::MAX;

/// `(sku, version, seq)` of an event delivery; `None` for a lag notice.
fn triple(delivery: &Delivery<Probe>) -> Option<(u64, u64, u64)> {
    match delivery {
        Delivery::Event(event) => Some((event.sku.0, event.version, event.seq)),
        Delivery::Lagged { .. } => None,
    }
}

/// Everything the subscription can get now, pumping until nothing more
/// arrives (bounded).
fn drain(subscription: &Subscription<Probe>) -> Vec<Delivery<Probe>> {
    let mut got = Vec::new();
    for _ in 0..10_000 {
        match subscription.try_recv() {
            Ok(delivery) => got.push(delivery),
            Err(_) => break,
        }
    }
    got
}

fn events(subscription: &Subscription<Probe>) -> Vec<(u64, u64, u64)> {
    drain(subscription).iter().map(|delivery| triple(delivery).expect("no lag expected in this test")).collect()
}

#[test]
fn out_of_order_publishes_are_delivered_in_version_order() {
    let hub = patient();
    let subscription = hub.subscribe(16);
    hub.publish(probe(1, 2));
    hub.publish(probe(1, 1));
    hub.publish(probe(2, 1));
    assert_eq!(events(&subscription), [], "versions ahead of 0 are parked, not delivered");
    hub.publish(probe(1, 0));
    assert_eq!(events(&subscription), [(1, 0, 1), (1, 1, 2), (1, 2, 3)], "0 releases 1 and 2, in order");
    hub.publish(probe(2, 0));
    hub.publish(probe(1, 3));
    assert_eq!(events(&subscription), [(2, 0, 4), (2, 1, 5), (1, 3, 6)]);
    assert_eq!(hub.tally().rejected, 0);
}

#[test]
fn seq_follows_dispatch_order_across_skus() {
    let hub = patient();
    let subscription = hub.subscribe(16);
    for (sku, version) in [(5, 0), (3, 0), (5, 1), (9, 0), (3, 1), (5, 2)] {
        hub.publish(probe(sku, version));
    }
    assert_eq!(
        events(&subscription),
        [(5, 0, 1), (3, 0, 2), (5, 1, 3), (9, 0, 4), (3, 1, 5), (5, 2, 6)],
        "in-order publishes are dispatched as published, seq 1, 2, 3, ..."
    );
}

#[test]
fn lag_is_counted_exactly_and_precedes_the_next_event() {
    let hub = patient();
    let slow = hub.subscribe(2);
    let fast = hub.subscribe(64);
    for version in 0..5 {
        hub.publish(probe(1, version));
    }
    // Versions 2, 3, 4 found the channel full: dropped for `slow` only.
    assert_eq!(slow.len(), 2);
    assert_eq!(events(&slow), [(1, 0, 1), (1, 1, 2)]);
    assert_eq!(drain(&slow), [], "the notice waits for the next event that fits");
    hub.publish(probe(1, 5));
    assert_eq!(drain(&slow), [Delivery::Lagged { missed: 3 }, Delivery::Event(Probe { seq: 6, ..probe(1, 5) })]);
    assert_eq!(events(&fast).len(), 6, "the fast subscriber lost nothing");

    // Capacity 1: one event buffered, the notice gets the spare slot.
    let single = hub.subscribe(1);
    for version in 6..9 {
        hub.publish(probe(1, version));
    }
    assert_eq!(single.try_recv().map(|delivery| triple(&delivery)), Ok(Some((1, 6, 7))));
    hub.publish(probe(1, 9));
    assert_eq!(single.try_recv(), Ok(Delivery::Lagged { missed: 2 }));
    assert_eq!(single.try_recv().map(|delivery| triple(&delivery)), Ok(Some((1, 9, 10))));
    assert_eq!(single.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn lag_while_the_notice_is_still_buffered_adds_up() {
    let hub = patient();
    let slow = hub.subscribe(2);
    for version in 0..4 {
        hub.publish(probe(1, version)); // 0, 1 in; 2, 3 missed
    }
    assert!(slow.try_recv().is_ok()); // one slot free
    hub.publish(probe(1, 4)); // Lagged{2} + 4 in: 1, Lagged, 4
    hub.publish(probe(1, 5)); // full (3 buffered >= 2): missed
    hub.publish(probe(1, 6)); // still full: missed
    let got = drain(&slow);
    hub.publish(probe(1, 7));
    let after = drain(&slow);
    let mut received = 1 + got.iter().chain(&after).filter(|delivery| triple(delivery).is_some()).count() as u64;
    let missed: u64 = got
        .iter()
        .chain(&after)
        .map(|delivery| match delivery {
            Delivery::Lagged { missed } => *missed,
            Delivery::Event(_) => 0,
        })
        .sum();
    assert_eq!(missed, 4);
    received += missed;
    assert_eq!(received, 8, "every one of the 8 events is received or counted, once");
    assert_eq!(after, [Delivery::Lagged { missed: 2 }, Delivery::Event(Probe { seq: 8, ..probe(1, 7) })]);
}

#[test]
fn dropped_subscriptions_are_removed() {
    let hub = patient();
    let kept = hub.subscribe(8);
    let dropped = hub.subscribe(8);
    let full = hub.subscribe(1);
    assert_eq!(hub.subscribers(), 3);
    hub.publish(probe(1, 0));
    hub.publish(probe(1, 1)); // `full` is now full: missed 1
    assert_eq!(hub.outlets(), 3);
    drop(dropped);
    drop(full);
    assert_eq!(hub.subscribers(), 1, "counted as gone at once");
    hub.publish(probe(1, 2));
    assert_eq!(hub.outlets(), 1, "both outlets went at the next dispatch, the full one too");
    assert_eq!(events(&kept), [(1, 0, 1), (1, 1, 2), (1, 2, 3)]);
}

#[test]
fn a_late_subscriber_gets_what_is_dispatched_after_it_subscribed() {
    let hub = patient();
    let early = hub.subscribe(16);
    hub.publish(probe(1, 0));
    hub.publish(probe(3, 1)); // parked until 3:0
    let late = hub.subscribe(16);
    assert_eq!(hub.subscribers(), 2);
    hub.publish(probe(1, 1));
    hub.publish(probe(3, 0)); // dispatched now, with the parked 3:1
    assert_eq!(events(&late), [(1, 1, 2), (3, 0, 3), (3, 1, 4)]);
    assert_eq!(events(&early), [(1, 0, 1), (1, 1, 2), (3, 0, 3), (3, 1, 4)]);
}

#[test]
fn duplicates_and_out_of_range_versions_are_rejected_not_delivered() {
    let hub = patient();
    let subscription = hub.subscribe(16);
    hub.publish(probe(1, 0));
    hub.publish(probe(1, 0)); // below expected
    hub.publish(probe(1, 5));
    hub.publish(probe(1, 5)); // second copy of a parked version
    hub.publish(probe(2, u64::MAX));
    assert_eq!(hub.tally().rejected, 3);
    assert_eq!(events(&subscription), [(1, 0, 1)]);
}

#[test]
fn receiving_dispatches_events_left_in_the_inbox() {
    let hub = patient();
    let subscription = hub.subscribe(1024);
    // As if their publishers were preempted between push and pump.
    let stranded = 2 * DISPATCH_BATCH_MAX as u64;
    for version in 0..stranded {
        assert!(hub.push_only(probe(1, version)));
    }
    assert!(subscription.is_empty());
    hub.publish(probe(1, stranded));
    assert_eq!(subscription.len(), DISPATCH_BATCH_MAX, "one publish dispatches one batch, no more");
    let got = events(&subscription);
    let expected: Vec<_> = (0..=stranded).map(|version| (1, version, version + 1)).collect();
    assert_eq!(got, expected, "receiving pumped the rest, in order");

    // A blocking receive pumps too, with no publisher left.
    assert!(hub.push_only(probe(1, stranded + 1)));
    let delivery = subscription.recv().expect("the hub is alive");
    assert_eq!(triple(&delivery), Some((1, stranded + 1, stranded + 2)));
    assert!(hub.push_only(probe(1, stranded + 2)));
    let delivery = subscription.recv_timeout(Duration::from_secs(5)).expect("pumped, not timed out");
    assert_eq!(triple(&delivery), Some((1, stranded + 2, stranded + 3)));
}

#[test]
fn receiving_waits_for_an_event_published_later() {
    let hub = Arc::new(patient());
    let subscription = hub.subscribe(4);
    assert_eq!(subscription.recv_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
    let publisher = {
        let hub = Arc::clone(&hub);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            hub.publish(probe(1, 0));
        })
    };
    let delivery = subscription.recv().expect("the hub is alive");
    assert_eq!(triple(&delivery), Some((1, 0, 1)));
    publisher.join().expect("publisher");
}

#[test]
fn dropping_the_hub_dispatches_what_is_left_then_disconnects() {
    let hub = patient();
    let subscription = hub.subscribe(16);
    hub.publish(probe(1, 0));
    assert!(hub.push_only(probe(1, 1))); // never pumped
    hub.publish(probe(2, 1)); // parked: 2:0 never comes
    drop(hub);
    let got = drain(&subscription);
    // The final dispatch takes the inbox, then releases what is parked,
    // its gap skipped and counted.
    assert_eq!(got[..2].iter().map(triple).collect::<Vec<_>>(), [Some((1, 0, 1)), Some((1, 1, 2))]);
    assert_eq!(got[2..], [Delivery::Lagged { missed: 1 }, Delivery::Event(Probe { seq: 3, ..probe(2, 1) })]);
    assert_eq!(subscription.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(subscription.recv(), Err(RecvError::Disconnected));
    assert_eq!(subscription.recv_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
    assert_eq!(subscription.try_iter().count(), 0);
    assert!(!TryRecvError::Disconnected.is_transient() && TryRecvError::Empty.is_transient());
    assert!(!RecvTimeoutError::Disconnected.is_transient() && RecvTimeoutError::Timeout.is_transient());
    assert!(!RecvError::Disconnected.is_transient());
}

#[test]
fn out_of_range_capacities_are_clamped() {
    let hub = patient();
    let zero = hub.subscribe(0);
    let huge = hub.subscribe(usize::MAX);
    hub.publish(probe(1, 0));
    hub.publish(probe(1, 1));
    assert_eq!(zero.len(), 1, "0 is taken as 1");
    assert_eq!(huge.len(), 2);
    assert_eq!(format!("{zero:?}"), "Subscription { buffered: 1, hub_alive: true, .. }");
}

/// Two publishers released together, many times: once both `publish`
/// calls have returned, both events are in the channel, with no pump
/// from the subscriber. A smoke test on real threads: the window in
/// which a missing re-check after the flag's release would strand an
/// event is a few instructions wide, and this test did not hit it when
/// that bug was injected; the loom models in `events::loom` did.
#[test]
fn nothing_is_stranded_when_publishers_stop() {
    for round in 0..2_000 {
        let hub = Arc::new(patient());
        let subscription = hub.subscribe(4);
        let start = Arc::new(std::sync::Barrier::new(2));
        let publishers: Vec<_> = (0..2)
            .map(|sku| {
                let (hub, start) = (Arc::clone(&hub), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    hub.publish(probe(sku, 0));
                })
            })
            .collect();
        for publisher in publishers {
            publisher.join().expect("publisher");
        }
        assert_eq!((hub.pending(), subscription.len()), (0, 2), "round {round}: an event was stranded");
    }
}

/// Per-SKU checks on what one subscription received. Returns the
/// events received and the sum of the lag notices.
fn check_stream(deliveries: &[Delivery<Probe>]) -> (Vec<Probe>, u64) {
    let mut events = Vec::new();
    let mut missed_total = 0;
    let mut notices = 0u64;
    // Per SKU: the last version received and the notices seen by then.
    let mut last: BTreeMap<SkuId, (u64, u64)> = BTreeMap::new();
    let mut seq_last = 0;
    for delivery in deliveries {
        match delivery {
            Delivery::Lagged { missed } => {
                assert!(*missed > 0, "an empty lag notice");
                missed_total += missed;
                notices += 1;
            }
            Delivery::Event(event) => {
                assert!(event.seq > seq_last, "seq went from {seq_last} to {}", event.seq);
                seq_last = event.seq;
                let gap_allowed = |notices_then: u64| notices > notices_then;
                match last.get(&event.sku) {
                    None => assert!(
                        event.version == 0 || gap_allowed(0),
                        "{event:?}: first version received without a lag notice"
                    ),
                    Some(&(version, notices_then)) => {
                        assert!(event.version > version, "{event:?} after version {version}");
                        assert!(
                            event.version == version + 1 || gap_allowed(notices_then),
                            "{event:?}: gap after version {version} without a lag notice"
                        );
                    }
                }
                last.insert(event.sku, (event.version, notices));
                events.push(*event);
            }
        }
    }
    (events, missed_total)
}

#[test]
fn shuffled_concurrent_publishers_with_a_fast_and_a_slow_subscriber() {
    // Fewer events than the inbox and the reorder buffer hold: whatever
    // the order, nothing is shed or skipped, so the fast subscriber gets
    // everything.
    const SKUS: u64 = 16;
    const VERSIONS: u64 = 200;
    const PUBLISHERS: usize = 4;
    let total = SKUS * VERSIONS;
    assert!(total as usize <= REORDER_EVENTS_MAX.min(INBOX_EVENTS_MAX));
    let mut all: Vec<(u64, u64)> = (0..SKUS).flat_map(|sku| (0..VERSIONS).map(move |version| (sku, version))).collect();
    all.shuffle(&mut StdRng::seed_from_u64(0x5eed));

    let hub = Arc::new(patient());
    let fast = hub.subscribe(total as usize + 1);
    let slow = hub.subscribe(4);
    let done = Arc::new(AtomicBool::new(false));

    let fast_reader = thread::spawn(move || {
        let mut got = Vec::new();
        while (got.len() as u64) < total {
            match fast.recv_timeout(Duration::from_secs(20)) {
                Ok(delivery) => got.push(delivery),
                Err(error) => panic!("fast subscriber stuck after {} deliveries: {error}", got.len()),
            }
        }
        (fast, got)
    });
    let slow_reader = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..100_000_000u64 {
                match slow.try_recv() {
                    Ok(delivery) => {
                        got.push(delivery);
                        if got.len() % 8 == 0 {
                            thread::sleep(Duration::from_micros(50));
                        }
                    }
                    // Ordering::SeqCst: test code; set after the publishers joined.
                    Err(TryRecvError::Empty) if done.load(Ordering::SeqCst) => break,
                    Err(TryRecvError::Empty) => thread::yield_now(),
                    Err(TryRecvError::Disconnected) => panic!("the hub is alive"),
                }
            }
            (slow, got)
        })
    };
    let publishers: Vec<_> = all
        .chunks(all.len().div_ceil(PUBLISHERS))
        .map(|share| {
            let hub = Arc::clone(&hub);
            let share = share.to_vec();
            thread::spawn(move || {
                for (sku, version) in share {
                    hub.publish(probe(sku, version));
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().expect("publisher");
    }
    let (fast, fast_got) = fast_reader.join().expect("fast reader");
    done.store(true, Ordering::SeqCst); // SeqCst: test code, pairs with the reader's load.
    let (slow, mut slow_got) = slow_reader.join().expect("slow reader");
    slow_got.extend(drain(&slow));
    // A last event flushes the slow subscriber's pending lag count.
    hub.publish(probe(SKUS, 0));
    slow_got.extend(drain(&slow));
    assert_eq!(hub.tally().rejected, 0);

    // Fast: everything, exactly once, per-SKU consecutive, seq 1..=total.
    let (fast_events, fast_missed) = check_stream(&fast_got);
    assert_eq!(fast_missed, 0, "the fast subscriber never lagged");
    assert_eq!(fast_events.len() as u64, total);
    let seqs: Vec<u64> = fast_events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "every event dispatched once, in seq order");
    for sku in 0..SKUS {
        let versions: Vec<u64> =
            fast_events.iter().filter(|event| event.sku == SkuId(sku)).map(|event| event.version).collect();
        assert_eq!(versions, (0..VERSIONS).collect::<Vec<_>>(), "SKU {sku}");
    }
    assert_eq!(events(&fast), [(SKUS, 0, total + 1)]);

    // Slow: in order per SKU, and received + missed = everything.
    let (slow_events, slow_missed) = check_stream(&slow_got);
    assert_eq!(slow_events.last().map(|event| (event.sku, event.seq)), Some((SkuId(SKUS), total + 1)));
    assert!(slow_missed > 0, "the slow subscriber should have lagged: the test checked nothing");
    assert_eq!(slow_events.len() as u64 + slow_missed, total + 1, "{} received", slow_events.len());
    eprintln!("slow subscriber: {} received, {slow_missed} missed", slow_events.len());
}

proptest! {
    /// Any order of publishes, one thread: everything delivered, per-SKU
    /// consecutive from 0, seq 1..=n.
    #[test]
    fn any_publish_order_is_delivered_in_version_order(
        versions in prop::collection::vec(1u64..6, 1..5),
        seed in any::<u64>(),
    ) {
        let mut all: Vec<(u64, u64)> = versions
            .iter()
            .enumerate()
            .flat_map(|(sku, &count)| (0..count).map(move |version| (sku as u64, version)))
            .collect();
        all.shuffle(&mut StdRng::seed_from_u64(seed));
        let hub = patient();
        let subscription = hub.subscribe(all.len());
        for &(sku, version) in &all {
            hub.publish(probe(sku, version));
        }
        let got = drain(&subscription);
        let (events, missed) = check_stream(&got);
        prop_assert_eq!(missed, 0);
        prop_assert_eq!(events.len(), all.len());
        let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
        prop_assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
        for (sku, &count) in versions.iter().enumerate() {
            let got: Vec<u64> =
                events.iter().filter(|event| event.sku == SkuId(sku as u64)).map(|event| event.version).collect();
            prop_assert_eq!(got, (0..count).collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_full_inbox_sheds_and_every_subscriber_is_told_exactly_even_of_a_skus_last_versions() {
    let hub = EventHub::with_budget(Budget::new(4, 64, 8, FOREVER));
    let first = hub.subscribe(64);
    let second = hub.subscribe(64);
    // The dispatcher is descheduled: publishers queue 4 events, then shed,
    // leaving the identities of the 7 others in the shed log.
    hub.stall_dispatch(true);
    for version in 0..11 {
        hub.publish(probe(1, version));
    }
    assert_eq!((hub.pending(), hub.shed_unlogged()), (11, 0), "4 events and 7 identities");
    hub.stall_dispatch(false);
    // A receiver's pump dispatches the 4, then the 7 lost versions: the
    // SKU's latest versions, told at once, as one notice.
    let got = drain(&first);
    assert_eq!(got[..4].iter().filter_map(triple).collect::<Vec<_>>(), [(1, 0, 1), (1, 1, 2), (1, 2, 3), (1, 3, 4)]);
    assert_eq!(got[4..], [Delivery::Lagged { missed: 7 }]);
    assert_eq!(drain(&second), got, "every subscriber is told the same");
    // The stream goes on from there.
    hub.publish(probe(1, 11));
    assert_eq!(events(&first), [(1, 11, 5)]);
    let tally = hub.tally();
    assert_eq!((tally.lost, tally.skipped, tally.late, tally.rejected), (7, 0, 0, 0));
    assert_eq!(hub.parked(), 0);
}

#[test]
fn a_lost_version_ahead_of_its_stream_waits_in_its_place() {
    let hub = EventHub::with_budget(Budget::new(1, 64, 8, FOREVER));
    let subscription = hub.subscribe(64);
    hub.stall_dispatch(true);
    assert!(hub.push_only(probe(1, 2))); // the inbox holds 2: 0 and 1 come later
    hub.publish(probe(1, 3)); // shed: its identity is logged
    hub.stall_dispatch(false);
    assert_eq!(drain(&subscription), [], "2 and lost 3 wait for 0 and 1");
    assert_eq!(hub.parked(), 2);
    hub.publish(probe(1, 1));
    hub.publish(probe(1, 0));
    let got = drain(&subscription);
    assert_eq!(got[..3].iter().filter_map(triple).collect::<Vec<_>>(), [(1, 0, 1), (1, 1, 2), (1, 2, 3)]);
    assert_eq!(got[3..], [Delivery::Lagged { missed: 1 }]);
}

#[test]
fn when_the_shed_log_is_full_too_the_marks_skip_the_gap_the_shed_left() {
    let hub = EventHub::with_budget(Budget::new(1, 1, 8, FOREVER));
    let subscription = hub.subscribe(8);
    hub.stall_dispatch(true);
    hub.publish(probe(1, 0)); // queued
    hub.publish(probe(1, 1)); // shed, logged
    hub.publish(probe(1, 2)); // shed, unlogged: its slot is marked
    assert_eq!((hub.pending(), hub.shed_unlogged()), (2, 1));
    hub.stall_dispatch(false);
    assert!(hub.shed_unabsorbed());
    let got = drain(&subscription);
    assert_eq!(got, [Delivery::Event(Probe { seq: 1, ..probe(1, 0) }), Delivery::Lagged { missed: 1 }]);
    assert!(!hub.shed_unabsorbed(), "the pump's turn acted on the marks");
    // Version 2 is not known lost until version 3 opens its gap: the slot
    // shed since, so the gap is skipped at once.
    hub.publish(probe(1, 3));
    assert_eq!(
        drain(&subscription),
        [Delivery::Lagged { missed: 1 }, Delivery::Event(Probe { seq: 2, ..probe(1, 3) })]
    );
    let tally = hub.tally();
    assert_eq!((tally.lost, tally.skipped, tally.gaps_shed), (1, 1, 1));
}

#[test]
fn a_full_reorder_buffer_skips_its_oldest_gap_and_the_late_event_is_dropped() {
    let hub = EventHub::with_budget(Budget::new(64, 64, 2, FOREVER));
    let subscription = hub.subscribe(64);
    hub.publish(probe(1, 1)); // SKU 1 waits at 0: the oldest gap
    hub.publish(probe(2, 2)); // SKU 2 waits at 0
    assert_eq!((hub.parked(), drain(&subscription)), (2, vec![]));
    hub.publish(probe(2, 1)); // a third parked event: over budget
    assert_eq!(
        drain(&subscription),
        [Delivery::Lagged { missed: 1 }, Delivery::Event(Probe { seq: 1, ..probe(1, 1) })]
    );
    assert_eq!(hub.parked(), 2);
    hub.publish(probe(1, 0)); // late: skipped already, dropped, not counted again
    hub.publish(probe(2, 0));
    assert_eq!(events(&subscription), [(2, 0, 2), (2, 1, 3), (2, 2, 4)]);
    let tally = hub.tally();
    assert_eq!((tally.gaps_evicted, tally.skipped, tally.late, tally.rejected), (1, 1, 1, 0));
}

#[test]
fn an_idle_subscribers_pump_expires_a_gap_in_a_slot_that_shed() {
    const WAIT: Duration = Duration::from_millis(100);
    let hub = EventHub::with_budget(Budget::new(1, 1, 64, WAIT));
    let subscription = hub.subscribe(8);
    hub.stall_dispatch(true);
    hub.publish(probe(1, 0));
    hub.publish(probe(1, 1)); // shed, logged
    hub.publish(probe(1, 2)); // shed, unlogged
    hub.stall_dispatch(false);
    assert_eq!(drain(&subscription).len(), 2, "0 and the notice of 1");
    hub.publish(probe(1, 3)); // its slot shed: the gap at 2 is skipped at once
    assert_eq!(
        drain(&subscription),
        [Delivery::Lagged { missed: 1 }, Delivery::Event(Probe { seq: 2, ..probe(1, 3) })]
    );
    // A gap the marks cannot explain any more (the shed was acted on):
    // 1:4 never comes, as if its publisher had died.
    hub.publish(probe(1, 5));
    assert_eq!(hub.parked(), 1, "waited for");
    thread::sleep(WAIT + WAIT / 2);
    // No publisher is left: the subscriber's own pump takes the turn.
    assert_eq!(
        drain(&subscription),
        [Delivery::Lagged { missed: 1 }, Delivery::Event(Probe { seq: 3, ..probe(1, 5) })]
    );
    assert_eq!(hub.tally().gaps_expired, 1);
}

#[test]
fn without_an_unlogged_shed_a_gap_is_waited_for_however_long_it_takes() {
    let hub = EventHub::with_budget(Budget::new(1, 64, 64, Duration::ZERO));
    let subscription = hub.subscribe(8);
    hub.stall_dispatch(true);
    hub.publish(probe(2, 0));
    hub.publish(probe(2, 1)); // shed, logged: exact, so no clock for anyone
    hub.stall_dispatch(false);
    assert_eq!(drain(&subscription).len(), 2, "2:0 and the notice of 2:1");
    hub.publish(probe(1, 1)); // waits for 1:0
    thread::sleep(Duration::from_millis(5));
    hub.pump();
    assert_eq!(drain(&subscription), [], "a zero wait, and still waited for");
    hub.publish(probe(1, 0));
    assert_eq!(events(&subscription), [(1, 0, 2), (1, 1, 3)]);
    assert_eq!(hub.tally().gaps_expired, 0);
}

/// Publishers racing into a small budget while the dispatcher is stalled
/// and then while it runs, with a subscriber that keeps up and a slow one:
/// each receives every SKU's versions in order, every gap it sees comes
/// after a lag notice, and once the hub is dropped (which releases
/// everything and sends the last notices) what it received plus what it
/// was told it missed is exactly what was published.
///
/// `shed_log_max`: with a log too small for the stalled phase's sheds,
/// identities are lost and the marks take over; those are revealed only by
/// a later version of their SKU, so the test publishes one more per SKU at
/// the end. With a log that holds them all, it does not need to: the
/// SKUs' latest versions, shed or not, are told exactly.
fn racing_publishers(shed_log_max: usize) {
    const SKUS: u64 = 8;
    const VERSIONS: u64 = 400;
    const PUBLISHERS: usize = 4;
    // Phase 1 (versions below this) runs with the dispatcher stalled, so
    // the inbox fills and sheds.
    const STALLED_BELOW: u64 = 48;
    let unlogged = (SKUS * STALLED_BELOW).saturating_sub(16 + shed_log_max as u64);
    let last_version = if unlogged > 0 { VERSIONS } else { VERSIONS - 1 };
    let total = SKUS * (last_version + 1);
    let hub = Arc::new(EventHub::with_budget(Budget::new(16, shed_log_max, 8, Duration::from_millis(5))));
    let subscribers: Vec<_> = [1 << 16, 4]
        .into_iter()
        .map(|capacity| {
            let subscription = hub.subscribe(capacity);
            thread::spawn(move || {
                let mut got = Vec::new();
                // Bounded: the hub is dropped once the publishers are done.
                for _ in 0..100_000_000u64 {
                    match subscription.recv_timeout(Duration::from_secs(20)) {
                        Ok(delivery) => got.push(delivery),
                        Err(RecvTimeoutError::Disconnected) => return got,
                        Err(RecvTimeoutError::Timeout) => panic!("stuck after {} deliveries", got.len()),
                    }
                    if capacity < 16 && got.len() % 8 == 0 {
                        thread::sleep(Duration::from_micros(50));
                    }
                }
                panic!("never disconnected")
            })
        })
        .collect();
    // Publisher p publishes every SKU's versions v with v % PUBLISHERS ==
    // p, so each SKU's versions arrive from all of them, out of order.
    let halfway = Arc::new(Barrier::new(PUBLISHERS + 1));
    hub.stall_dispatch(true);
    let publishers: Vec<_> = (0..PUBLISHERS as u64)
        .map(|publisher| {
            let (hub, halfway) = (Arc::clone(&hub), Arc::clone(&halfway));
            thread::spawn(move || {
                for version in (publisher..VERSIONS).step_by(PUBLISHERS) {
                    if version == STALLED_BELOW + publisher {
                        halfway.wait(); // stalled phase over
                        halfway.wait(); // dispatcher running
                    }
                    for sku in 0..SKUS {
                        hub.publish(probe(sku, version));
                    }
                }
            })
        })
        .collect();
    halfway.wait();
    let logged = (SKUS * STALLED_BELOW - 16).min(shed_log_max as u64);
    assert_eq!(hub.pending() as u64, 16 + logged, "the stalled inbox and shed log hold their budgets");
    assert_eq!(hub.shed_unlogged(), unlogged);
    hub.stall_dispatch(false);
    halfway.wait();
    for publisher in publishers {
        publisher.join().expect("publisher");
    }
    if unlogged > 0 {
        // Room for the last versions: pump what the publishers left
        // (bounded; the subscribers' threads pump too).
        for _ in 0..1_000_000 {
            if hub.pending() == 0 {
                break;
            }
            hub.pump();
            thread::yield_now();
        }
        assert_eq!(hub.pending(), 0);
        for sku in 0..SKUS {
            hub.publish(probe(sku, VERSIONS)); // reveals each SKU's unlogged trailing sheds
        }
    }
    let tally = hub.tally();
    assert_eq!(tally.rejected, 0);
    // Each logged identity is released as lost, or is late (an eviction
    // skipped it first), or is still parked (the drop releases it).
    assert!(tally.lost > 0, "logged identities were released as lost: {tally:?}");
    assert_eq!(tally.gaps_shed > 0, unlogged > 0, "the marks skip gaps exactly when identities were lost: {tally:?}");
    drop(hub);
    for (subscriber, keeps_up) in subscribers.into_iter().zip([true, false]) {
        let got = subscriber.join().expect("subscriber");
        let (events, missed) = check_stream(&got);
        eprintln!("shed log {shed_log_max}, keeps up {keeps_up}: {} received, {missed} missed", events.len());
        assert_eq!(events.len() as u64 + missed, total, "{} received, {missed} missed", events.len());
        // The one whose channel never fills gets every SKU's last version,
        // or is told it was lost (the slow one may find its channel full
        // then: the hub's last notice counts it).
        if keeps_up && unlogged > 0 {
            for sku in 0..SKUS {
                let last = events.iter().filter(|event| event.sku == SkuId(sku)).map(|event| event.version).max();
                assert_eq!(last, Some(VERSIONS), "SKU {sku}: its last version arrives");
            }
        }
    }
}

#[test]
fn racing_publishers_lose_nothing_uncounted_when_identities_are_lost_too() {
    racing_publishers(16);
}

#[test]
fn racing_publishers_lose_nothing_uncounted_and_the_latest_sheds_are_told() {
    racing_publishers(SHED_LOG_MAX);
}
