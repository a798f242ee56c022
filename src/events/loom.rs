//! Loom models of the event hub's dispatch protocol.
//!
//! What this file proves: for every interleaving loom explores (within the
//! preemption bound) of a few threads publishing, pumping, subscribing and
//! unsubscribing, the combining protocol of [`EventHub`] (push onto the
//! inbox, try to take the dispatcher flag, drain, release, re-check)
//! delivers every event exactly once, in version order per SKU, with
//! strictly increasing sequence numbers, and strands nothing: once every
//! `publish` call has returned, every event is already in the subscribers'
//! channels, before any subscriber pumps. A final pump then finds nothing
//! left to do.
//!
//! Under `stockroom_loom` the inbox is a loom mutex around a `VecDeque`
//! and the dispatcher state's mutex is loom's (see `crate::sync`), so loom
//! schedules every push, pop, re-check and flag operation. What is checked
//! is the protocol's logic over a linearizable queue: the re-check, the
//! reorder buffer, the adoption of new subscribers, the removal of dropped
//! ones. The store-buffering argument for the fences (module docs of
//! `hub`, # Orderings, point 1) is about crossbeam's `SegQueue` itself,
//! which the stand-in replaces with a mutex that orders more than it does;
//! loom does not check that part. The channels are crossbeam's: each
//! `try_send` / `try_recv` is one step loom does not split, and no model
//! ever blocks on one.
//!
//! Bounds: the three-publisher model runs at `LOOM_MAX_PREEMPTIONS` (2 in
//! CI: about 2,400 interleavings, under a second); the two smaller ones at
//! least 3 (about 1,300 and 3,700, a few seconds). At 4 preemptions all
//! three pass too (about 275,000 interleavings for the first, a minute).
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/loom-events --lib events::loom -- --nocapture
//! ```

use super::hub::probe::{Probe, probe};
use super::hub::{Delivery, EventHub, TryRecvError};
use crate::cell::loom::{Preemptions, check};
use crate::ids::SkuId;
use crate::sync::Arc;
use loom::thread;

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
        let hub = Arc::new(EventHub::new());
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
        assert_eq!(hub.rejected(), 0);
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
        let hub = Arc::new(EventHub::new());
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
        let hub = Arc::new(EventHub::new());
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
