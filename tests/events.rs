//! Events: every published version of a SKU (command or sweep) reaches a
//! subscriber that keeps up exactly once, in per-SKU version order,
//! gap-free from version 0, with a global sequence number that increases;
//! threshold notices fire exactly once per crossing; a slow subscriber is
//! told exactly how many events it missed and never holds a command up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Change, Delivery, Event, Ledger, LotId, LowStock, ManualClock,
    NewLot, Notice, OrderLine, OrderRequest, Quantity, SUBSCRIPTION_CAPACITY_MAX, SkuId, SubscribeError, Subscription,
    Timestamp,
};

const SKU: SkuId = SkuId(1);

fn qty(units: u64) -> Quantity {
    Quantity::new(units).expect("small")
}

fn evented() -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let ledger = Ledger::builder().clock(clock.clone()).events(true).build().expect("valid settings");
    (ledger, clock)
}

/// Everything delivered so far; panics on a lag notice.
fn drain(events: &Subscription<Event>) -> Vec<Event> {
    events
        .try_iter()
        .map(|delivery| match delivery {
            Delivery::Event(event) => event,
            Delivery::Lagged { missed } => panic!("a subscriber that keeps up lagged by {missed}"),
        })
        .collect()
}

fn notices(events: &[Event]) -> Vec<(u64, Notice)> {
    events.iter().flat_map(|e| e.notices.iter().map(move |n| (e.version, n.clone()))).collect()
}

#[test]
fn subscribing_needs_events_on_and_a_sane_capacity() {
    assert_eq!(Ledger::new().subscribe(8).err(), Some(SubscribeError::EventsOff));
    let (ledger, _clock) = evented();
    assert_eq!(
        ledger.subscribe(0).err(),
        Some(SubscribeError::Capacity { capacity: 0, max: SUBSCRIPTION_CAPACITY_MAX })
    );
    assert!(ledger.subscribe(SUBSCRIPTION_CAPACITY_MAX + 1).is_err());
    assert!(ledger.subscribe(1).is_ok());
}

#[test]
fn every_version_is_one_event_including_sweeps_and_order_rollbacks() {
    let (ledger, clock) = evented();
    let events = ledger.subscribe(1_024).expect("subscribe");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
    ledger.define_sku(SkuId(2), AllocationPolicy::Fifo).expect("define");
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive");
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 4).hold_for(Duration::from_secs(1))).expect("hold");
    ledger.extend(hold.reservation, Duration::from_secs(1)).expect("extend");
    clock.set(Timestamp(2_000));
    ledger.take(&AllocateRequest::new(SKU, 1)).expect("sweep, then sale");
    // SKU 2 is empty: the SKU 1 part is held, then rolled back.
    let order = OrderRequest::new(vec![OrderLine::new(SKU, 1), OrderLine::new(SkuId(2), 1)]);
    assert!(ledger.allocate_order(&order).is_err());
    ledger.adjust(SKU, LotId(1), -1, AdjustmentReason::Damage).expect("adjust");
    ledger.set_low_stock(SKU, Some(3)).expect("threshold");

    let received = drain(&events);
    let sku_1: Vec<(u64, &Change)> = received.iter().filter(|e| e.sku == SKU).map(|e| (e.version, &e.change)).collect();
    let kinds: Vec<&str> = sku_1
        .iter()
        .map(|(_, change)| match change {
            Change::Defined(_) => "defined",
            Change::Received(_) => "received",
            Change::Allocated(_) => "allocated",
            Change::Extended(_) => "extended",
            Change::Swept(_) => "swept",
            Change::Sold(_) => "sold",
            Change::Released(_) => "released",
            Change::Adjusted(_) => "adjusted",
            Change::LowStockSet(_) => "low stock set",
            Change::Committed(_) => "committed",
            Change::Pinned(_) => "pinned",
            Change::Returned(_) => "returned",
            _ => "a change this test does not know",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "defined",
            "received",
            "allocated",
            "extended",
            "swept",
            "sold",
            "allocated",
            "released",
            "adjusted",
            "low stock set"
        ]
    );
    let versions: Vec<u64> = sku_1.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (0..10).collect::<Vec<_>>(), "gap-free, in order, from 0");
    assert_eq!(versions.last().copied(), Some(ledger.snapshot(SKU).expect("defined").version()));
    let Change::Swept(swept) = sku_1[4].1 else { unreachable!() };
    assert_eq!(swept.lapsed[0].reservation, hold.reservation);
    let seqs: Vec<u64> = received.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "global sequence increases: {seqs:?}");
}

#[test]
fn threshold_notices_fire_once_per_crossing() {
    let (ledger, clock) = evented();
    let events = ledger.subscribe(1_024).expect("subscribe");
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define");
    ledger.set_low_stock(SKU, Some(3)).expect("threshold");
    ledger.receive(SKU, NewLot::new(LotId(1), 5).expires_at(Timestamp(10_000))).expect("receive"); // v2: back in stock
    ledger.take(&AllocateRequest::new(SKU, 1)).expect("5 -> 4"); // v3: nothing
    ledger.take(&AllocateRequest::new(SKU, 1)).expect("4 -> 3"); // v4: low stock
    ledger.take(&AllocateRequest::new(SKU, 1)).expect("3 -> 2"); // v5: nothing, already below
    ledger.adjust(SKU, LotId(1), 5, AdjustmentReason::Recount).expect("2 -> 7"); // v6: rearmed
    let hold = ledger.allocate(&AllocateRequest::new(SKU, 7)).expect("7 -> 0"); // v7: low stock and sold out
    ledger.release(hold.reservation).expect("0 -> 7"); // v8: back in stock
    clock.set(Timestamp(10_000));
    let report = ledger.expire_due(Timestamp(10_000)).expect("sweep"); // v9: lot 1 expired
    assert_eq!(report.swept[0].expired_lots, [LotId(1)]);
    assert!(ledger.expire_due(Timestamp(10_000)).expect("sweep").swept.is_empty(), "reported once");
    ledger.receive(SKU, NewLot::new(LotId(2), 1).expires_at(Timestamp(9_000))).expect("v10: already past");
    clock.set(Timestamp(20_000));
    assert!(ledger.expire_due(Timestamp(20_000)).expect("sweep").swept.is_empty(), "lot 2 was told at receipt");
    assert_eq!(
        notices(&drain(&events)),
        [
            (2, Notice::BackInStock { available: qty(5) }),
            (4, Notice::LowStock { available: qty(3), threshold: qty(3) }),
            (7, Notice::LowStock { available: qty(0), threshold: qty(3) }),
            (7, Notice::SoldOut),
            (8, Notice::BackInStock { available: qty(7) }),
            (9, Notice::LotExpired { lot: LotId(1) }),
            (10, Notice::LotExpired { lot: LotId(2) }),
        ]
    );
}

#[test]
fn a_slow_subscriber_is_told_exactly_what_it_missed_and_holds_nothing_up() {
    let (ledger, _clock) = evented();
    let slow = ledger.subscribe(2).expect("subscribe");
    let keeping_up = ledger.subscribe(1 << 16).expect("subscribe");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
    ledger.receive(SKU, NewLot::new(LotId(1), 100_000)).expect("receive");
    // 10,000 sales with nobody reading the slow subscriber's channel.
    for _ in 0..10_000 {
        ledger.take(&AllocateRequest::new(SKU, 1)).expect("sale");
    }
    let first: Vec<Delivery<Event>> = slow.try_iter().collect();
    assert!(matches!(&first[..], [Delivery::Event(a), Delivery::Event(b)] if (a.version, b.version) == (0, 1)));
    ledger.take(&AllocateRequest::new(SKU, 1)).expect("one more sale");
    let next: Vec<Delivery<Event>> = slow.try_iter().collect();
    match &next[..] {
        [Delivery::Lagged { missed }, Delivery::Event(event)] => {
            assert_eq!(*missed, 10_000, "versions 2..=10001 were dropped");
            assert_eq!(event.version, 10_002);
        }
        other => panic!("expected a lag notice then the event: {other:?}"),
    }
    assert_eq!(drain(&keeping_up).len(), 10_003, "the subscriber that kept up got every version");
}

#[test]
fn concurrent_changes_reach_a_subscriber_in_per_sku_version_order() {
    let (ledger, _clock) = evented();
    let events = ledger.subscribe(1 << 18).expect("subscribe");
    let skus = [SkuId(1), SkuId(2), SkuId(3)];
    for sku in skus {
        ledger.define_sku(sku, AllocationPolicy::Fifo).expect("define");
        ledger.receive(sku, NewLot::new(LotId(1), 1_000)).expect("receive");
    }
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let ledger = &ledger;
            scope.spawn(move || {
                for i in 0..2_000u64 {
                    let sku = skus[((thread + i) % 3) as usize];
                    match i % 4 {
                        0 => {
                            let _ = ledger.take(&AllocateRequest::new(sku, 1));
                        }
                        1 => {
                            if let Ok(hold) = ledger.allocate(&AllocateRequest::new(sku, 2)) {
                                let _ = ledger.release(hold.reservation);
                            }
                        }
                        2 => {
                            let _ = ledger.adjust(sku, LotId(1), 1, AdjustmentReason::Recount);
                        }
                        _ => {
                            let _ = ledger.snapshot(sku);
                        }
                    }
                }
            });
        }
    });
    let final_versions: Vec<u64> = skus.iter().map(|&sku| ledger.snapshot(sku).expect("defined").version()).collect();
    let expected_events: u64 = final_versions.iter().map(|version| version + 1).sum();
    // Every `publish` has returned, but one pump dispatches one batch: what
    // the last one left (a dispatcher descheduled on a loaded machine can
    // leave more) comes with the next pumps. Bounded.
    let mut received = Vec::new();
    for _ in 0..10_000 {
        if received.len() as u64 >= expected_events {
            break;
        }
        received.extend(drain(&events));
    }
    let mut by_sku: BTreeMap<SkuId, Vec<u64>> = BTreeMap::new();
    let mut last_seq = 0;
    for event in received {
        assert!(event.seq > last_seq);
        last_seq = event.seq;
        by_sku.entry(event.sku).or_default().push(event.version);
    }
    for (sku, final_version) in skus.into_iter().zip(final_versions) {
        assert_eq!(by_sku[&sku], (0..=final_version).collect::<Vec<_>>(), "{sku}: every version once, in order");
    }
    assert!(events.try_iter().next().is_none(), "nothing more");
}

mod mirrored {
    //! A property: over random command sequences (clock moving, holds
    //! lapsing, sweeps), the events a subscriber that keeps up receives
    //! are exactly the ledger's versions: per SKU gap-free from 0 to the
    //! final version; the event of each successful command's version
    //! carries that command's outcome; and `SoldOut` / `BackInStock`
    //! alternate per SKU (once per crossing), the last one agreeing with
    //! whether the SKU ends with units available.

    use super::*;
    use proptest::prelude::*;
    use stockroom::{Command, Outcome, ReservationId};

    const SKUS: [SkuId; 2] = [SkuId(1), SkuId(2)];

    #[derive(Clone, Debug)]
    enum Op {
        Run(Command),
        /// Release one of the reservations the script's allocations were
        /// given (by index, wrapping), so that releases hit live holds.
        Release(Pick),
        /// Commit all of one, picked the same way.
        Commit(Pick),
        Advance(u64),
        ExpireDue,
        Snapshot(SkuId),
    }

    fn sku() -> impl Strategy<Value = SkuId> {
        prop::sample::select(SKUS.to_vec())
    }

    /// A reservation to name. Seqs are the versions the allocations
    /// produced, so an id is picked from the ones the script was given, or,
    /// for the refusal paths, built from a small seq (mostly a version of
    /// some other change, or one not reached yet).
    #[derive(Clone, Debug)]
    enum Pick {
        Issued(prop::sample::Index),
        Literal(ReservationId),
    }

    impl Pick {
        /// The id this pick names, given the ids issued so far (in order).
        fn resolve(&self, issued: &[ReservationId]) -> ReservationId {
            match self {
                Pick::Issued(index) if !issued.is_empty() => *index.get(issued),
                Pick::Issued(_) => ReservationId::new(SKUS[0], 1),
                Pick::Literal(id) => *id,
            }
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        let reservation = || {
            prop_oneof![
                4 => any::<prop::sample::Index>().prop_map(Pick::Issued),
                1 => (sku(), 0u64..12).prop_map(|(sku, seq)| Pick::Literal(ReservationId::new(sku, seq))),
            ]
        };
        prop_oneof![
            2 => (sku(), 0u64..6, 1u64..8).prop_map(|(sku, lot, units)| Op::Run(Command::Receive {
                sku,
                lot: NewLot::new(LotId(lot), units),
            })),
            3 => (sku(), 1u64..4).prop_map(|(sku, units)| Op::Run(Command::Take(AllocateRequest::new(sku, units)))),
            3 => (sku(), 1u64..4, prop::option::of(1u64..40)).prop_map(|(sku, units, hold)| {
                let request = AllocateRequest::new(sku, units);
                let request = match hold {
                    Some(ms) => request.hold_for(Duration::from_millis(ms)),
                    None => request,
                };
                Op::Run(Command::Allocate(request))
            }),
            2 => reservation().prop_map(Op::Release),
            2 => reservation().prop_map(Op::Commit),
            2 => (sku(), 0u64..6, -4i64..4).prop_map(|(sku, lot, delta)| Op::Run(Command::Adjust {
                sku,
                lot: LotId(lot),
                delta,
                reason: AdjustmentReason::Recount,
                expected_version: None,
            })),
            1 => (sku(), prop::option::of(0u64..6))
                .prop_map(|(sku, threshold)| Op::Run(Command::SetLowStock { sku, rule: threshold.map(LowStock::new) })),
            2 => (1u64..30).prop_map(Op::Advance),
            1 => Just(Op::ExpireDue),
            1 => sku().prop_map(Op::Snapshot),
        ]
    }

    /// The event `change` an `Ok` outcome of one SKU must appear as.
    fn change_of(outcome: &Outcome) -> Option<(SkuId, u64, Change)> {
        Some(match outcome {
            Outcome::Received(o) => (o.sku, o.version, Change::Received(o.clone())),
            Outcome::Sold(o) => (o.sku, o.version, Change::Sold(o.clone())),
            Outcome::Allocated(o) => (o.reservation.sku, o.version, Change::Allocated(o.clone())),
            Outcome::Released(o) => (o.reservation.sku, o.version, Change::Released(o.clone())),
            Outcome::Committed(o) => (o.reservation.sku, o.version, Change::Committed(o.clone())),
            Outcome::Adjusted(o) => (o.sku, o.version, Change::Adjusted(o.clone())),
            Outcome::LowStockSet(o) => (o.sku, o.version, Change::LowStockSet(o.clone())),
            _ => return None,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn events_mirror_every_version(ops in prop::collection::vec(op(), 1..80)) {
            let (ledger, clock) = evented();
            let events = ledger.subscribe(1 << 16).expect("subscribe");
            for sku in SKUS {
                ledger.define_sku(sku, AllocationPolicy::Fifo).expect("define");
            }
            let mut expected = Vec::new();
            let mut issued: Vec<ReservationId> = Vec::new();
            for op in &ops {
                let command = match op {
                    Op::Run(command) => Some(command.clone()),
                    Op::Release(pick) => Some(Command::Release { reservation: pick.resolve(&issued) }),
                    Op::Commit(pick) => Some(Command::Commit { reservation: pick.resolve(&issued), quantity: None }),
                    _ => None,
                };
                match op {
                    Op::Run(_) | Op::Release(_) | Op::Commit(_) => {
                        let command = command.expect("a command op");
                        if let Ok(outcome) = ledger.execute(&command) {
                            if let Outcome::Allocated(allocation) = &outcome {
                                issued.push(allocation.reservation);
                            }
                            expected.extend(change_of(&outcome));
                        }
                    }
                    Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
                    Op::ExpireDue => {
                        let report = ledger.expire_due(ledger.now()).expect("not in the future");
                        expected.extend(report.swept.into_iter().map(|s| (s.sku, s.version, Change::Swept(s))));
                    }
                    Op::Snapshot(sku) => {
                        ledger.snapshot(*sku).expect("defined");
                    }
                }
            }
            // The final snapshots may sweep (a version each): take them first.
            let last: Vec<_> = SKUS.iter().map(|&sku| ledger.snapshot(sku).expect("defined")).collect();
            let received = drain(&events);
            for (sku, last) in SKUS.into_iter().zip(last) {
                let mine: Vec<&Event> = received.iter().filter(|e| e.sku == sku).collect();
                let versions: Vec<u64> = mine.iter().map(|e| e.version).collect();
                let all: Vec<u64> = (0..=last.version()).collect();
                prop_assert_eq!(versions, all, "{}: every version exactly once, in order", sku);
                let mut in_stock = false;
                for event in &mine {
                    for notice in &event.notices {
                        match notice {
                            Notice::SoldOut => {
                                prop_assert!(in_stock, "{}: sold out twice at v{}", sku, event.version);
                                in_stock = false;
                            }
                            Notice::BackInStock { .. } => {
                                prop_assert!(!in_stock, "{}: back in stock twice at v{}", sku, event.version);
                                in_stock = true;
                            }
                            _ => {}
                        }
                    }
                }
                prop_assert_eq!(in_stock, !last.totals().available.is_zero(), "{}: last crossing", sku);
            }
            for (sku, version, change) in expected {
                let event = received.iter().find(|e| e.sku == sku && e.version == version);
                prop_assert_eq!(event.map(|e| &e.change), Some(&change), "{} v{}", sku, version);
            }
        }
    }
}

/// Low-stock rules with hysteresis, against a model: after every command
/// that landed, the model reads the SKU's totals, decides from its own
/// armed flag whether the version must carry `Notice::LowStock`, and the
/// notices received must be exactly those. Holds without deadlines and a
/// still clock keep every command to exactly one version.
mod low_stock_hysteresis {
    use super::*;
    use proptest::prelude::*;
    use stockroom::{LowStockBasis, ReservationId};

    #[test]
    fn a_rule_fires_once_and_rearms_only_above_its_margin() {
        let (ledger, _clock) = evented();
        let events = ledger.subscribe(1_024).expect("subscribe");
        ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
        ledger.receive(SKU, NewLot::new(LotId(1), 20)).expect("v1");
        ledger.set_low_stock_rule(SKU, Some(LowStock::new(10).rearm_margin(5))).expect("v2: armed, 20 > 10");
        ledger.take(&AllocateRequest::new(SKU, 10)).expect("v3: 10, fires");
        // The oscillation that used to fire on every dip: 11, 10, 11, 10.
        for version in 4..8 {
            let delta = if version % 2 == 0 { 1 } else { -1 };
            ledger.adjust(SKU, LotId(1), delta, AdjustmentReason::Recount).expect("oscillate");
        }
        ledger.adjust(SKU, LotId(1), 5, AdjustmentReason::Recount).expect("v8: 15, not above 15");
        ledger.take(&AllocateRequest::new(SKU, 5)).expect("v9: 10, still disarmed");
        ledger.adjust(SKU, LotId(1), 6, AdjustmentReason::Recount).expect("v10: 16, re-armed");
        ledger.take(&AllocateRequest::new(SKU, 7)).expect("v11: 9, fires");
        let low: Vec<(u64, Notice)> =
            notices(&drain(&events)).into_iter().filter(|(_, n)| matches!(n, Notice::LowStock { .. })).collect();
        assert_eq!(
            low,
            [
                (3, Notice::LowStock { available: qty(10), threshold: qty(10) }),
                (11, Notice::LowStock { available: qty(9), threshold: qty(10) }),
            ]
        );
    }

    #[test]
    fn the_rule_in_force_set_again_keeps_its_arming() {
        let (ledger, _clock) = evented();
        let events = ledger.subscribe(1_024).expect("subscribe");
        ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
        ledger.receive(SKU, NewLot::new(LotId(1), 5)).expect("v1");
        let rule = LowStock::new(4).rearm_margin(4);
        ledger.set_low_stock_rule(SKU, Some(rule)).expect("v2: armed, 5 > 4");
        ledger.take(&AllocateRequest::new(SKU, 1)).expect("v3: 4, fires");
        ledger.adjust(SKU, LotId(1), 1, AdjustmentReason::Recount).expect("v4: 5, not above 8");
        ledger.set_low_stock_rule(SKU, Some(rule)).expect("v5: the same rule, still disarmed");
        ledger.take(&AllocateRequest::new(SKU, 1)).expect("v6: 4, no second notice");
        // A different rule starts afresh: armed, since 4 > 3.
        ledger.set_low_stock_rule(SKU, Some(LowStock::new(3))).expect("v7");
        ledger.take(&AllocateRequest::new(SKU, 1)).expect("v8: 3, fires");
        let low: Vec<(u64, Notice)> =
            notices(&drain(&events)).into_iter().filter(|(_, n)| matches!(n, Notice::LowStock { .. })).collect();
        assert_eq!(
            low,
            [
                (3, Notice::LowStock { available: qty(4), threshold: qty(4) }),
                (8, Notice::LowStock { available: qty(3), threshold: qty(3) }),
            ]
        );
    }

    #[test]
    fn on_hand_rules_ignore_holds_and_fire_on_the_commit() {
        let (ledger, _clock) = evented();
        let events = ledger.subscribe(1_024).expect("subscribe");
        ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
        ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("v1");
        let rule = LowStock::new(5).basis(LowStockBasis::OnHand);
        ledger.set_low_stock_rule(SKU, Some(rule)).expect("v2");
        let hold = ledger.allocate(&AllocateRequest::new(SKU, 6)).expect("v3: 4 available, 10 on hand");
        ledger.commit(hold.reservation, None).expect("v4: 4 on hand, fires");
        let low: Vec<(u64, Notice)> =
            notices(&drain(&events)).into_iter().filter(|(_, n)| matches!(n, Notice::LowStock { .. })).collect();
        assert_eq!(low, [(4, Notice::LowStock { available: qty(4), threshold: qty(5) })]);
        assert!(ledger.set_low_stock_rule(SKU, Some(LowStock::new(1).rearm_margin(u64::MAX))).is_err());
        assert!(ledger.set_low_stock_rule(SKU, Some(LowStock::new(Quantity::MAX.get() + 1))).is_err());
        assert_eq!(ledger.snapshot(SKU).expect("defined").version(), 4, "refused rules change nothing");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Receive(u64, u64),
        Take(u64),
        Hold(u64),
        Release(prop::sample::Index),
        Commit(prop::sample::Index),
        Adjust(u64, i64),
        Rule(Option<(u64, u64, bool)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0u64..4, 1u64..8).prop_map(|(lot, units)| Op::Receive(lot, units)),
            3 => (1u64..4).prop_map(Op::Take),
            3 => (1u64..4).prop_map(Op::Hold),
            2 => any::<prop::sample::Index>().prop_map(Op::Release),
            2 => any::<prop::sample::Index>().prop_map(Op::Commit),
            2 => (0u64..4, -3i64..4).prop_map(|(lot, delta)| Op::Adjust(lot, delta)),
            1 => prop::option::of((0u64..12, 0u64..6, any::<bool>())).prop_map(Op::Rule),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn notices_follow_the_armed_model(ops in prop::collection::vec(op(), 1..120)) {
            let (ledger, _clock) = evented();
            let events = ledger.subscribe(1 << 16).expect("subscribe");
            ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
            let mut holds: Vec<ReservationId> = Vec::new();
            let mut rule: Option<LowStock> = None;
            let mut armed = false;
            let mut changed = false;
            let mut expected: Vec<(u64, Notice)> = Vec::new();
            for op in &ops {
                let landed = match op {
                    Op::Receive(lot, units) => ledger.receive(SKU, NewLot::new(LotId(*lot), *units)).is_ok(),
                    Op::Take(units) => ledger.take(&AllocateRequest::new(SKU, *units)).is_ok(),
                    Op::Hold(units) => match ledger.allocate(&AllocateRequest::new(SKU, *units)) {
                        Ok(hold) => { holds.push(hold.reservation); true }
                        Err(_) => false,
                    },
                    Op::Release(pick) | Op::Commit(pick) if !holds.is_empty() => {
                        let reservation = holds.remove(pick.index(holds.len()));
                        match op {
                            Op::Release(_) => ledger.release(reservation).is_ok(),
                            _ => ledger.commit(reservation, None).is_ok(),
                        }
                    }
                    Op::Release(_) | Op::Commit(_) => false,
                    Op::Adjust(lot, delta) => {
                        ledger.adjust(SKU, LotId(*lot), *delta, AdjustmentReason::Recount).is_ok()
                    }
                    Op::Rule(shape) => {
                        let next = shape.map(|(threshold, margin, on_hand)| {
                            let basis = if on_hand { LowStockBasis::OnHand } else { LowStockBasis::Available };
                            LowStock::new(threshold).rearm_margin(margin).basis(basis)
                        });
                        ledger.set_low_stock_rule(SKU, next).expect("a valid rule on a defined SKU");
                        // The rule in force set again keeps its arming.
                        changed = next != rule;
                        rule = next;
                        true
                    }
                };
                if !landed {
                    continue;
                }
                let snapshot = ledger.snapshot(SKU).expect("defined");
                let totals = snapshot.totals();
                let Some(current) = rule else { continue };
                let stock = match current.basis {
                    LowStockBasis::OnHand => totals.available.get() + totals.held.get(),
                    _ => totals.available.get(),
                };
                if matches!(op, Op::Rule(_)) && changed {
                    armed = stock > current.threshold;
                } else if armed && stock <= current.threshold {
                    expected.push((snapshot.version(), Notice::LowStock { available: qty(stock), threshold: qty(current.threshold) }));
                    armed = false;
                } else if !armed && stock > current.threshold + current.margin {
                    armed = true;
                }
            }
            let received: Vec<(u64, Notice)> =
                notices(&drain(&events)).into_iter().filter(|(_, n)| matches!(n, Notice::LowStock { .. })).collect();
            prop_assert_eq!(received, expected);
        }
    }
}
