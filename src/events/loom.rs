//! Loom models of the event hub's dispatch protocol.
//!
//! What this file proves: for every interleaving loom explores (within the
//! preemption bound) of a few threads publishing, pumping, subscribing and
//! unsubscribing, the combining protocol of [`EventHub`] (push onto the
//! inbox or shed at its budget, try to take the dispatcher flag, drain,
//! release, re-check) delivers every event exactly once, in version order
//! per SKU, with strictly increasing sequence numbers, and strands nothing:
//! once every `publish` call has returned, every event is already in the
//! subscribers' channels, before any subscriber pumps, and every shed has
//! been acted on (the gap it left skipped and counted). A final pump then
//! finds nothing left to do. With an inbox of one event, the shedding
//! models check that whichever event is shed, every subscriber is told
//! exactly how many versions it missed, before the next event of the SKU.
//!
//! Under `stockroom_loom` the inbox is a loom mutex around a `VecDeque`
//! and the dispatcher state's mutex is loom's (see `crate::sync`), so loom
//! schedules every push, pop, re-check and flag operation. What is checked
//! is the protocol's logic over a linearizable queue: the re-check, the
//! reorder buffer, the adoption of new subscribers, the removal of dropped
//! ones. The store-buffering argument for the fences (module docs of
//! `hub`, # Orderings, point 1) is about crossbeam's `SegQueue` itself,
//! which the stand-in replaces with a mutex that orders more than it does;
//! loom does not check that part. The shed marks and the inbox's claim
//! count are loom atomics, so their half of the argument (a shed marked
//! while another thread holds the flag is seen by its re-check) is
//! explored; loom 0.7 models a SeqCst fence as a global happens-before
//! edge, stronger than the C++ fence, so what is checked is the protocol's
//! logic, and the fence argument itself stays the one written in `hub.rs`.
//! No model depends on the wall clock: the hubs wait for gaps forever,
//! except the shedding models' (`tight`), whose zero wait expires a gap in
//! a slot that shed at the end of the turn that sees it, whatever the time. The channels are crossbeam's: each
//! `try_send` / `try_recv` is one step loom does not split, and no model
//! ever blocks on one.
//!
//! Bounds: the two three-publisher models run at `LOOM_MAX_PREEMPTIONS`
//! (2 in CI: about 4,000 and 6,000 interleavings, about a second each);
//! the other three at least 3 (about 3,900 to 5,800 each, under a second).
//! At 3 preemptions the three-publisher models explore about 67,000 and
//! 124,000 (10 to 15 s); at 4 all five pass too (the shedding one about
//! 1.95 million interleavings in 3.5 minutes). The shedding models fail if
//! the re-check ignores the shed log or the shed total (checked by
//! removing each); the unit tests in `tests.rs` fail if the reorder buffer
//! ignores the marks or the outlets hold back a skip's notice.
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/loom --lib events::loom -- --nocapture
//! ```

use super::budget::{Budget, INBOX_EVENTS_MAX, REORDER_EVENTS_MAX, SHED_LOG_MAX};
use super::hub::EventHub;
use super::probe::{Probe, probe};
use super::{Delivery, TryRecvError};
use crate::cell::loom::{Preemptions, check};
use crate::ids::SkuId;
use crate::sync::Arc;
use loom::thread;
use std::time::Duration;

/// A hub with the shipped counts that never gives up waiting for a gap.
fn patient() -> EventHub<Probe> {
    EventHub::with_budget(Budget::new(INBOX_EVENTS_MAX, SHED_LOG_MAX, REORDER_EVENTS_MAX, Duration::MAX))
}

/// A hub whose inbox holds one event and whose shed log holds one
/// identity: a second publish sheds unless the first was dispatched
/// already, and a third may lose its identity too (the marks' path). Its
/// gap wait is zero: a gap in a slot that shed, which the marks could not
/// explain, is expired at the end of the turn that sees it, which the
/// clock does within `GAP_WAIT_MAX` in production. (Deterministic: every
/// gap opened before the instant the turn reads, so the comparison always
/// expires it; no model depends on how long anything took.)
fn tight() -> EventHub<Probe> {
    EventHub::with_budget(Budget::new(1, 1, 4, Duration::ZERO))
}

/// The events of `deliveries`, as `(sku, version, seq)`; panics on a lag
/// notice (no model fills a channel).
fn events(deliveries: &[Delivery<Probe>]) -> Vec<(u64, u64, u64)> {
    deliveries
        .iter()
        .map(|delivery| match delivery {
            Delivery::Event(Probe { sku: SkuId(sku), version, seq }) => (*sku, *version, *seq),
            Delivery::Lagged { missed } => panic!("no channel fills in these models, yet {missed} were missed"),
        })
        .collect()
}

/// Asserts that `got` is exactly `expected` (as `(sku, version)` sets),
/// each SKU's versions consecutive from its first one, and seq strictly
/// increasing.
fn assert_stream(got: &[(u64, u64, u64)], expected: &[(u64, u64)]) {
    let mut pairs: Vec<(u64, u64)> = got.iter().map(|&(sku, version, _)| (sku, version)).collect();
    for window in got.windows(2) {
        assert!(window[0].2 < window[1].2, "seq must increase: {got:?}");
    }
    let mut skus: Vec<u64> = got.iter().map(|&(sku, _, _)| sku).collect();
    skus.sort_unstable();
    skus.dedup();
    for sku in skus {
        let versions: Vec<u64> = got.iter().filter(|event| event.0 == sku).map(|event| event.1).collect();
        assert!(versions.windows(2).all(|pair| pair[1] == pair[0] + 1), "SKU {sku} out of order: {got:?}");
    }
    pairs.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(pairs, expected, "every event exactly once: {got:?}");
}

/// Race: versions 0 and 1 of SKU 1 published by two threads (so in either
/// order), and version 0 of SKU 2 by a third.
///
/// Asserts: once the three `publish` calls have returned, the inbox is
/// empty and the subscriber's channel holds exactly the three events
/// (before it pumps): SKU 1's in version order, seq 1, 2, 3 in channel
/// order. A final pump finds nothing more.
#[test]
fn two_versions_of_one_sku_race_another_sku() {
    check("two_versions_of_one_sku_race_another_sku", Preemptions::AtLeast(2), || {
        let hub = Arc::new(patient());
        let subscription = hub.subscribe(4);
        let publishers: Vec<_> = [(1, 0), (1, 1), (2, 0)]
            .into_iter()
            .map(|(sku, version)| {
                let hub = Arc::clone(&hub);
                thread::spawn(move || hub.publish(probe(sku, version)))
            })
            .collect();
        for publisher in publishers {
            publisher.join().unwrap();
        }

        assert_eq!(hub.pending(), 0, "an event was stranded in the inbox");
        let got = events(&subscription.buffered());
        assert_stream(&got, &[(1, 0), (1, 1), (2, 0)]);
        assert_eq!(got.iter().map(|event| event.2).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(subscription.try_recv(), Err(TryRecvError::Empty), "the final pump finds nothing");
        assert_eq!(hub.tally().rejected, 0);
    });
}

/// Race: versions 0 and 1 of one SKU published by two threads while the
/// subscriber receives (and so pumps) on the main thread.
///
/// Asserts: what the subscriber received during the race, followed by
/// what its channel holds after both publishes returned, is exactly
/// versions 0 then 1, seq 1 then 2; nothing is left in the inbox.
#[test]
fn publishers_race_a_pumping_subscriber() {
    check("publishers_race_a_pumping_subscriber", Preemptions::AtLeast(3), || {
        let hub = Arc::new(patient());
        let subscription = hub.subscribe(4);
        let publishers: Vec<_> = [1, 0]
            .into_iter()
            .map(|version| {
                let hub = Arc::clone(&hub);
                thread::spawn(move || hub.publish(probe(1, version)))
            })
            .collect();
        let mut received: Vec<Delivery<Probe>> = subscription.try_recv().into_iter().collect();
        for publisher in publishers {
            publisher.join().unwrap();
        }

        assert_eq!(hub.pending(), 0, "an event was stranded in the inbox");
        received.extend(subscription.buffered());
        assert_eq!(events(&received), [(1, 0, 1), (1, 1, 2)]);
    });
}

/// Race: one thread publishes versions 0 then 1 of a SKU while another
/// subscribes and a third drops an existing subscription.
///
/// Asserts: the subscription held throughout gets both events in order;
/// the late one gets a suffix of the stream (nothing, version 1, or both),
/// in order, with the same seq numbers; after one more publish the
/// dropped subscription's outlet is gone and exactly two remain.
#[test]
fn subscribe_and_unsubscribe_race_publish() {
    check("subscribe_and_unsubscribe_race_publish", Preemptions::AtLeast(3), || {
        let hub = Arc::new(patient());
        let kept = hub.subscribe(4);
        let gone = hub.subscribe(4);
        let publisher = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || {
                hub.publish(probe(1, 0));
                hub.publish(probe(1, 1));
            })
        };
        let subscriber = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || hub.subscribe(4))
        };
        let dropper = thread::spawn(move || drop(gone));
        publisher.join().unwrap();
        let late = subscriber.join().unwrap();
        dropper.join().unwrap();

        assert_eq!(hub.pending(), 0, "an event was stranded in the inbox");
        assert_eq!(hub.subscribers(), 2);
        assert_eq!(events(&kept.buffered()), [(1, 0, 1), (1, 1, 2)]);
        let late_got = events(&late.buffered());
        let suffixes: [&[(u64, u64, u64)]; 3] = [&[], &[(1, 1, 2)], &[(1, 0, 1), (1, 1, 2)]];
        assert!(suffixes.contains(&late_got.as_slice()), "late subscriber got {late_got:?}");

        hub.publish(probe(1, 2));
        assert_eq!(hub.outlets(), 2, "the dropped subscription's outlet is gone");
        assert_eq!(events(&late.buffered()), [(1, 2, 3)]);
    });
}

/// The events of `deliveries` as `(sku, version, seq)`, and the sum of its
/// lag notices. Asserts that seq strictly increases, that within one SKU
/// versions strictly increase, and that a gap comes only after a notice
/// (a notice precedes the next event of any SKU). `from_start`: the
/// subscription existed before anything was published, so each SKU's
/// first event must be version 0 (or follow a notice); a later one may
/// start anywhere.
fn events_and_missed(deliveries: &[Delivery<Probe>], from_start: bool) -> (Vec<(u64, u64, u64)>, u64) {
    let mut events = Vec::new();
    let mut missed = 0;
    let mut notice_pending = false;
    let mut last: Vec<(u64, u64)> = Vec::new();
    for delivery in deliveries {
        match delivery {
            Delivery::Lagged { missed: count } => {
                assert!(*count > 0, "an empty lag notice");
                missed += count;
                notice_pending = true;
            }
            Delivery::Event(Probe { sku: SkuId(sku), version, seq }) => {
                let previous = last.iter().find(|(of, _)| of == sku).map(|&(_, version)| version);
                let expected = match previous {
                    Some(version) => version + 1,
                    None if from_start => 0,
                    None => *version,
                };
                assert!(*version >= expected, "SKU {sku} went back: {deliveries:?}");
                assert!(*version == expected || notice_pending, "a gap with no notice: {deliveries:?}");
                notice_pending = false;
                last.retain(|(of, _)| of != sku);
                last.push((*sku, *version));
                events.push((*sku, *version, *seq));
            }
        }
    }
    for window in events.windows(2) {
        assert!(window[0].2 < window[1].2, "seq must increase: {deliveries:?}");
    }
    (events, missed)
}

/// Race: versions 0, 1 and 2 of one SKU published by three threads into
/// an inbox that holds one event and a shed log that holds one identity,
/// so any of them may be shed (logged, or unlogged and marked), while the
/// dispatcher may be any of the publishers.
///
/// Asserts: once the three `publish` calls have returned, nothing is in
/// the inbox or the shed log, every mark has been acted on and nothing is
/// parked (a shed of version 0 left the later ones waiting at a gap: it
/// was skipped, by whoever saw the shed). After one more version,
/// published alone, the subscriber's channel (read without pumping)
/// accounts for all four versions: received plus missed is 4, in order,
/// any gap after a notice, the last version received.
#[test]
fn sheds_race_the_dispatch_and_are_counted_exactly() {
    check("sheds_race_the_dispatch_and_are_counted_exactly", Preemptions::AtLeast(2), || {
        let hub = Arc::new(tight());
        let subscription = hub.subscribe(8);
        let publishers: Vec<_> = [0, 1, 2]
            .into_iter()
            .map(|version| {
                let hub = Arc::clone(&hub);
                thread::spawn(move || hub.publish(probe(1, version)))
            })
            .collect();
        for publisher in publishers {
            publisher.join().unwrap();
        }

        assert_eq!(hub.pending(), 0, "an event or a shed identity was stranded");
        assert!(!hub.shed_unabsorbed(), "a shed was stranded: no turn acted on its mark");
        assert_eq!(hub.parked(), 0, "a gap left by a shed is still waited for");
        hub.publish(probe(1, 3));
        let (events, missed) = events_and_missed(&subscription.buffered(), true);
        assert_eq!(
            events.len() as u64 + missed,
            4,
            "{events:?}, {missed} missed; {:?}, {} parked, {} unlogged",
            hub.tally(),
            hub.parked(),
            hub.shed_unlogged()
        );
        assert_eq!(events.last().map(|&(sku, version, _)| (sku, version)), Some((1, 3)));
        assert_eq!(hub.tally().rejected, 0);
    });
}

/// Race: one thread publishes versions 0, 1, 2 of a SKU into an inbox
/// that holds one event while another subscribes and the main thread's
/// subscription pumps.
///
/// Asserts: the subscription held throughout accounts for all three
/// versions (received plus missed, after a fourth version published alone
/// reveals a trailing shed), in order; the late subscriber's deliveries
/// are in order with any gap after a notice, and it received or was told
/// of the last version; nothing is stranded.
#[test]
fn a_subscriber_joins_while_events_are_shed() {
    check("a_subscriber_joins_while_events_are_shed", Preemptions::AtLeast(3), || {
        let hub = Arc::new(tight());
        let kept = hub.subscribe(8);
        let publisher = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || {
                for version in 0..3 {
                    hub.publish(probe(1, version));
                }
            })
        };
        let subscriber = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || hub.subscribe(8))
        };
        let mut received: Vec<Delivery<Probe>> = kept.try_recv().into_iter().collect();
        publisher.join().unwrap();
        let late = subscriber.join().unwrap();

        assert_eq!(hub.pending(), 0, "an event was stranded in the inbox");
        assert!(!hub.shed_unabsorbed(), "a shed was stranded");
        hub.publish(probe(1, 3));
        received.extend(kept.buffered());
        let (events, missed) = events_and_missed(&received, true);
        assert_eq!(events.len() as u64 + missed, 4, "{received:?}");
        assert_eq!(events.last().map(|&(sku, version, _)| (sku, version)), Some((1, 3)));
        let late_got = late.buffered();
        let (late_events, _) = events_and_missed(&late_got, false);
        assert_eq!(late_events.last().map(|&(_, version, _)| version), Some(3), "{late_got:?}");
    });
}
