//! Ledger images (`Ledger::image`, `LedgerBuilder::restore`) beyond the
//! model proptest (which restores mid-run and keeps comparing with the
//! reference):
//!
//! - a restored ledger with events on emits the same events for the same
//!   commands as the original (its totals word is rebuilt, not copied);
//! - a damaged image never panics the restore: every numeric field of a
//!   real image's JSON is replaced by random values, and the restore either
//!   refuses it with a typed error or returns a ledger whose audit is clean
//!   and which keeps serving commands;
//! - the named refusals (format, keys past the bound, a duplicate SKU);
//! - images taken while writers run restore to sound ledgers.

mod common;

use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use stockroom::{
    AllocateRequest, AllocationPolicy, Clock, Command, Delivery, IdempotencyKey, KeyWindow, Ledger, LedgerImage, LotId,
    ManualClock, NewLot, OrderLine, OrderRequest, RestoreError, SkuId, Timestamp,
};

/// A ledger with a bit of everything: lots with expiries and attributes,
/// live holds with and without deadlines, a partial commit, a backorder, an
/// order, a kit, a threshold, keyed commands.
fn busy_ledger(events: bool) -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let ledger = Ledger::builder().clock(clock.clone()).events(events).build().expect("valid settings");
    for sku in 1..=3 {
        ledger.define_sku(SkuId(sku), AllocationPolicy::Fefo).unwrap();
    }
    ledger.receive(SkuId(1), NewLot::new(LotId(1), 10).expires_at(Timestamp::from_millis(90_000))).unwrap();
    ledger.receive(SkuId(1), NewLot::new(LotId(2), 5).expires_at(Timestamp::from_millis(50_000))).unwrap();
    ledger.receive(SkuId(2), NewLot::new(LotId(7), 8)).unwrap();
    ledger.set_low_stock(SkuId(1), Some(4)).unwrap();
    let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 7).hold_for(Duration::from_secs(30))).unwrap();
    ledger.allocate(&AllocateRequest::new(SkuId(1), 2)).unwrap();
    ledger.commit(held.reservation, Some(3)).unwrap();
    ledger.allocate(&AllocateRequest::new(SkuId(1), 1).hold_for(Duration::from_secs(30))).unwrap();
    ledger.allocate(&AllocateRequest::new(SkuId(3), 4).backordered()).unwrap();
    let order = OrderRequest::new(vec![OrderLine::new(SkuId(1), 1), OrderLine::new(SkuId(2), 2)]);
    ledger.allocate_order(&order).unwrap();
    let key = IdempotencyKey::new("take-1").unwrap();
    let take = Command::Take(AllocateRequest::new(SkuId(2), 1));
    ledger.execute_keyed(&key, &take).unwrap();
    (ledger, clock)
}

fn restore_with_clock(image: LedgerImage, clock: &Arc<ManualClock>, events: bool) -> Result<Ledger, RestoreError> {
    Ledger::builder().clock(clock.clone()).events(events).restore(image)
}

#[test]
fn a_restored_ledger_emits_the_events_the_original_would() {
    let (original, clock) = busy_ledger(true);
    let restored = restore_with_clock(original.image().unwrap(), &clock, true).unwrap();
    let subscriptions = [original.subscribe(64).unwrap(), restored.subscribe(64).unwrap()];
    for ledger in [&original, &restored] {
        ledger.take(&AllocateRequest::new(SkuId(1), 2)).unwrap();
        ledger.receive(SkuId(3), NewLot::new(LotId(1), 6)).unwrap();
        ledger.take(&AllocateRequest::new(SkuId(2), 3)).unwrap();
    }
    let events = subscriptions.map(|subscription| {
        let mut events = Vec::new();
        while let Ok(delivery) = subscription.recv_timeout(Duration::from_millis(500)) {
            match delivery {
                Delivery::Event(event) => events.push((event.sku, event.version, event.change, event.notices)),
                other => panic!("no lag expected: {other:?}"),
            }
        }
        events
    });
    assert_eq!(events[0].len(), 3, "{:?}", events[0]);
    assert_eq!(events[0], events[1]);
}

#[test]
fn a_keyed_command_replays_after_a_restore() {
    let (original, clock) = busy_ledger(false);
    let restored = restore_with_clock(original.image().unwrap(), &clock, false).unwrap();
    let key = IdempotencyKey::new("take-1").unwrap();
    let replay = restored.execute_keyed(&key, &Command::Take(AllocateRequest::new(SkuId(2), 1))).unwrap();
    assert!(replay.replay, "the key was remembered across the restore");
    let versions = |ledger: &Ledger| ledger.snapshot(SkuId(2)).unwrap().version();
    assert_eq!(versions(&restored), versions(&original), "a replay applies nothing");
}

#[test]
fn a_hold_that_lapsed_meanwhile_lapses_at_the_first_look() {
    let (original, clock) = busy_ledger(false);
    let image = original.image().unwrap();
    let before = original.snapshot(SkuId(1)).unwrap().reservation_count();
    clock.advance(Duration::from_secs(60));
    let restored = restore_with_clock(image, &clock, false).unwrap();
    assert_eq!(restored.snapshot(SkuId(1)).unwrap().reservation_count(), before - 1, "the 30 s hold lapsed");
    assert!(restored.audit().is_clean());
}

#[test]
fn named_refusals() {
    let (original, clock) = busy_ledger(false);
    let image = original.image().unwrap();
    let mut json = serde_json::to_value(&image).unwrap();
    json["format"] = Value::from(LedgerImage::FORMAT + 1);
    let wrong: LedgerImage = serde_json::from_value(json).unwrap();
    assert!(matches!(restore_with_clock(wrong, &clock, false), Err(RestoreError::UnknownFormat { .. })));

    let few_keys = KeyWindow { window: Duration::from_secs(60), keys_max: 0 };
    let refused = Ledger::builder().clock(clock.clone()).key_window(few_keys).restore(image.clone());
    assert!(matches!(refused, Err(RestoreError::Build(_))), "{refused:?}");
    let one_key = KeyWindow { window: Duration::from_secs(60), keys_max: 1 };
    let second = IdempotencyKey::new("take-2").unwrap();
    original.execute_keyed(&second, &Command::Take(AllocateRequest::new(SkuId(2), 1))).unwrap();
    let refused = Ledger::builder().clock(clock.clone()).key_window(one_key).restore(original.image().unwrap());
    assert!(matches!(refused, Err(RestoreError::TooManyKeys { keys: 2, keys_max: 1 })), "{refused:?}");

    let mut json = serde_json::to_value(&image).unwrap();
    let first = json["skus"][0].clone();
    json["skus"].as_array_mut().unwrap().push(first);
    let twice: LedgerImage = serde_json::from_value(json).unwrap();
    assert!(matches!(restore_with_clock(twice, &clock, false), Err(RestoreError::Catalog { sku: SkuId(1), .. })));
}

/// Every numeric leaf of `value`, as a path of keys and indices.
fn numeric_leaves(value: &Value, path: &mut Vec<Value>, into: &mut Vec<Vec<Value>>) {
    match value {
        Value::Number(_) => into.push(path.clone()),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Value::from(index));
                numeric_leaves(item, path, into);
                path.pop();
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                path.push(Value::from(name.as_str()));
                numeric_leaves(field, path, into);
                path.pop();
            }
        }
        _ => {}
    }
}

fn leaf<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |value, step| match step {
        Value::String(name) => &mut value[name.as_str()],
        index => &mut value[index.as_u64().unwrap() as usize],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Whatever numbers a damaged image holds, restoring it refuses with a
    /// typed error or yields a sound ledger: never a panic.
    #[test]
    fn a_damaged_image_is_refused_or_sound(
        damage in prop::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![
                0u64..=4,
                any::<u64>(),
                Just(u64::MAX),
                (0u32..128).prop_map(|bits| 1u64 << (bits % 64)),
            ]),
            1..=3,
        )
    ) {
        let (original, clock) = busy_ledger(false);
        let mut json = serde_json::to_value(original.image().unwrap()).unwrap();
        let mut leaves = Vec::new();
        numeric_leaves(&json, &mut Vec::new(), &mut leaves);
        for (at, value) in damage {
            *leaf(&mut json, &leaves[at.index(leaves.len())]) = Value::from(value);
        }
        let Ok(image) = serde_json::from_value::<LedgerImage>(json) else { return Ok(()) };
        if let Ok(restored) = restore_with_clock(image, &clock, false) {
            prop_assert!(restored.audit().is_clean());
            for sku in 1..=3 {
                let _ = restored.take(&AllocateRequest::new(SkuId(sku), 1));
                let _ = restored.snapshot(SkuId(sku));
                if let Ok(snapshot) = restored.snapshot(SkuId(sku)) {
                    for reservation in snapshot.reservations() {
                        let _ = restored.release(reservation.id);
                    }
                }
                let _ = restored.receive(SkuId(sku), NewLot::new(LotId(99), 3));
            }
            let _ = restored.expire_due(clock.now());
            prop_assert!(restored.audit().is_clean());
        }
    }
}

#[test]
fn images_taken_while_writers_run_restore_to_sound_ledgers() {
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
    ledger.receive(SkuId(1), NewLot::new(LotId(1), 1_000_000)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (ledger, stop) = (Arc::clone(&ledger), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) && rounds < 1_000_000 {
                    rounds += 1;
                    let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 2)).unwrap();
                    if rounds % 2 == 0 {
                        ledger.commit(held.reservation, None).unwrap();
                    } else {
                        ledger.release(held.reservation).unwrap();
                    }
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let image = ledger.image().expect("two writers do not starve a reader");
        let restored = Ledger::builder().restore(image).expect("a per-SKU consistent image restores");
        let totals = restored.snapshot(SkuId(1)).unwrap().totals();
        assert_eq!(totals.available.get() + totals.held.get() + totals.committed.get(), 1_000_000);
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
}
