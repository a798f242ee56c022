//! The key store's unit tests: the contract of `KeyStore::run` point by
//! point, retry storms, panics, the window and the bound.
//!
//! Orderings in these tests: the tally counters (`applied`, `finals`,
//! `waited`, `first_done`, ...) are `Relaxed`. Each is read only after
//! the writer is ordered before the read by something else: a thread
//! join, or the attempt cell's lock through which the store hands an
//! outcome from the applying thread to the one that waited. The one
//! exception is the spinning barrier, commented where it is.

use super::*;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::AtomicUsize;

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).expect("a valid test key")
}

fn at(millis: u64) -> Timestamp {
    Timestamp::from_millis(millis)
}

fn store(window_ms: u64, keys_max: usize) -> KeyStore<u32, Result<u64, String>> {
    KeyStore::new(KeyWindow { window: Duration::from_millis(window_ms), keys_max })
}

fn always(_: &Result<u64, String>) -> bool {
    true
}

/// Runs `command` under `key` at `now`, applying `Ok(value)`; counts
/// applications in `applied`.
fn run_ok(
    store: &KeyStore<u32, Result<u64, String>>,
    key: &IdempotencyKey,
    command: u32,
    now: u64,
    value: u64,
    applied: &AtomicUsize,
) -> Claimed<u32, Result<u64, String>> {
    store.run(
        key,
        &command,
        at(now),
        || {
            applied.fetch_add(1, Ordering::Relaxed);
            Ok(value)
        },
        always,
    )
}

#[test]
fn keys_are_validated() {
    assert_eq!(IdempotencyKey::new(""), Err(KeyError::Empty));
    assert_eq!(IdempotencyKey::new("k".repeat(KEY_LEN_MAX + 1)), Err(KeyError::TooLong { len: KEY_LEN_MAX + 1 }));
    let longest = "é".repeat(KEY_LEN_MAX / 2); // 2 bytes each: exactly the maximum
    assert_eq!(IdempotencyKey::new(longest.clone()).map(|k| k.as_str().len()), Ok(KEY_LEN_MAX));
    assert!(IdempotencyKey::new(format!("{longest}x")).is_err());
    let k = key("order-1");
    assert_eq!(
        (k.as_str(), k.to_string(), format!("{k:?}")),
        ("order-1", "order-1".into(), "IdempotencyKey(\"order-1\")".into())
    );
    assert_eq!(String::from(k.clone()), "order-1");
    assert_eq!(IdempotencyKey::try_from("order-1".to_owned()), Ok(k));
    assert_eq!(KeyWindow::default(), KeyWindow { window: Duration::from_secs(86_400), keys_max: 1_000_000 });
}

#[cfg(feature = "serde")]
#[test]
fn keys_deserialize_validated() {
    let k: IdempotencyKey = serde_json::from_str("\"order-1\"").expect("a valid key");
    assert_eq!(k, key("order-1"));
    assert_eq!(serde_json::to_string(&k).expect("serializes"), "\"order-1\"");
    assert!(serde_json::from_str::<IdempotencyKey>("\"\"").is_err());
    let long = format!("\"{}\"", "k".repeat(KEY_LEN_MAX + 1));
    assert!(serde_json::from_str::<IdempotencyKey>(&long).is_err());
    let error = KeyError::TooLong { len: 200 };
    assert_eq!(serde_json::from_str::<KeyError>(&serde_json::to_string(&error).expect("serializes")).ok(), Some(error));
}

#[test]
fn same_key_equal_command_replays_without_applying() {
    let store = store(1_000, 10);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    assert_eq!(run_ok(&store, &k, 1, 0, 7, &applied), Claimed::Applied(Ok(7)));
    assert_eq!(run_ok(&store, &k, 1, 10, 8, &applied), Claimed::Replayed(Ok(7)));
    assert_eq!(run_ok(&store, &k, 1, 999, 9, &applied), Claimed::Replayed(Ok(7)));
    assert_eq!(applied.load(Ordering::Relaxed), 1);
    assert_eq!(store.len(), 1);
}

#[test]
fn same_key_different_command_conflicts_and_changes_nothing() {
    let store = store(1_000, 10);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    assert_eq!(run_ok(&store, &k, 1, 0, 7, &applied), Claimed::Applied(Ok(7)));
    assert_eq!(run_ok(&store, &k, 2, 1, 8, &applied), Claimed::Conflict(1));
    assert_eq!(run_ok(&store, &k, 1, 2, 9, &applied), Claimed::Replayed(Ok(7)));
    assert_eq!(applied.load(Ordering::Relaxed), 1);
    // Other keys are independent.
    assert_eq!(run_ok(&store, &key("b"), 2, 3, 10, &applied), Claimed::Applied(Ok(10)));
}

#[test]
fn different_command_waits_for_the_one_in_flight_then_conflicts() {
    let store = store(1_000, 10);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    let started = std::sync::Barrier::new(2);
    let first_done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            store.run(
                &k,
                &1,
                at(0),
                || {
                    started.wait();
                    // Give the other command time to arrive while this
                    // one is in flight.
                    std::thread::sleep(Duration::from_millis(50));
                    // Relaxed: read after the join below, or after the
                    // attempt's lock hands the outcome over.
                    first_done.store(true, Ordering::Relaxed);
                    Ok(7)
                },
                always,
            )
        });
        started.wait();
        // The first is in flight: a different command waits for it, and
        // conflicts only once the first has taken effect.
        assert_eq!(run_ok(&store, &k, 2, 0, 8, &applied), Claimed::Conflict(1));
        assert!(first_done.load(Ordering::Relaxed), "answered before the first command took effect");
        assert_eq!(first.join().expect("first"), Claimed::Applied(Ok(7)));
    });
    assert_eq!(applied.load(Ordering::Relaxed), 0);
    assert_eq!(run_ok(&store, &k, 1, 1, 9, &applied), Claimed::Replayed(Ok(7)));
}

#[test]
fn different_command_claims_the_key_when_the_one_in_flight_frees_it() {
    let store = store(1_000, 10);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    let started = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            store.run(
                &k,
                &1,
                at(0),
                || {
                    started.wait();
                    std::thread::sleep(Duration::from_millis(50));
                    Err("contended".to_owned())
                },
                |result: &Result<u64, String>| result.is_ok(),
            )
        });
        started.wait();
        assert_eq!(run_ok(&store, &k, 2, 0, 8, &applied), Claimed::Applied(Ok(8)));
        assert_eq!(first.join().expect("first"), Claimed::Applied(Err("contended".to_owned())));
    });
    assert_eq!(run_ok(&store, &k, 1, 1, 9, &applied), Claimed::Conflict(2));
}

#[test]
fn final_error_sticks() {
    let store = store(1_000, 10);
    let k = key("a");
    let refused = store.run(&k, &1, at(0), || Err("insufficient".to_owned()), always);
    assert_eq!(refused, Claimed::Applied(Err("insufficient".to_owned())));
    // Stock arrived since; the retry is still the refusal, not a sale.
    let retry = store.run(&k, &1, at(5), || Ok(1), always);
    assert_eq!(retry, Claimed::Replayed(Err("insufficient".to_owned())));
}

#[test]
fn transient_result_frees_the_key() {
    let store = store(1_000, 10);
    let k = key("a");
    let is_final = |r: &Result<u64, String>| r.as_ref().err().is_none_or(|e| e != "contended");
    let first = store.run(&k, &1, at(0), || Err("contended".to_owned()), is_final);
    assert_eq!(first, Claimed::Applied(Err("contended".to_owned())));
    assert_eq!(store.len(), 0, "a transient result is not remembered");
    // A retry applies, even as a different command: the key was freed.
    assert_eq!(store.run(&k, &2, at(1), || Ok(3), is_final), Claimed::Applied(Ok(3)));
    assert_eq!(store.run(&k, &2, at(2), || Ok(4), is_final), Claimed::Replayed(Ok(3)));
}

#[test]
fn window_expiry_by_time() {
    let store = store(100, 10);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    assert_eq!(run_ok(&store, &k, 1, 1_000, 7, &applied), Claimed::Applied(Ok(7)));
    assert_eq!(run_ok(&store, &k, 1, 1_099, 8, &applied), Claimed::Replayed(Ok(7)));
    assert_eq!(run_ok(&store, &k, 2, 1_099, 8, &applied), Claimed::Conflict(1));
    // At recorded_at + window the key is forgotten: reusable by any command.
    assert_eq!(run_ok(&store, &k, 2, 1_100, 9, &applied), Claimed::Applied(Ok(9)));
    assert_eq!(run_ok(&store, &k, 2, 1_101, 10, &applied), Claimed::Replayed(Ok(9)));
    // A clock that goes backwards only remembers longer.
    assert_eq!(run_ok(&store, &k, 2, 0, 11, &applied), Claimed::Replayed(Ok(9)));
    assert_eq!(applied.load(Ordering::Relaxed), 2);
}

#[test]
fn expired_entries_are_swept_from_memory() {
    let store = store(100, 1_000);
    let applied = AtomicUsize::new(0);
    for i in 0..50 {
        run_ok(&store, &key(&format!("old-{i}")), 1, 0, i, &applied);
    }
    assert_eq!(store.len(), 50);
    // Each record past the window forgets up to SWEEP_MAX expired ones.
    for i in 0..10 {
        run_ok(&store, &key(&format!("new-{i}")), 1, 200, i, &applied);
    }
    assert_eq!(store.len(), 10, "all 50 expired entries were swept, none of the fresh ones");
    assert!(store.order.lock().iter().all(|item| item.recorded_at == at(200)));
}

#[test]
fn reclaimed_key_survives_its_old_queue_item() {
    // The key's first entry expires and the key is recorded again; the
    // old queue item must not remove the new entry when it is swept.
    let store = store(100, 2);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    assert_eq!(run_ok(&store, &k, 1, 0, 7, &applied), Claimed::Applied(Ok(7)));
    assert_eq!(run_ok(&store, &k, 2, 150, 8, &applied), Claimed::Applied(Ok(8)));
    // Sweep (by time) and evict (by count) both reached the old item by now.
    assert_eq!(run_ok(&store, &key("b"), 1, 151, 9, &applied), Claimed::Applied(Ok(9)));
    assert_eq!(run_ok(&store, &k, 2, 152, 10, &applied), Claimed::Replayed(Ok(8)));
    assert_eq!(applied.load(Ordering::Relaxed), 3);
    assert_eq!(store.len(), 2);
}

#[test]
fn a_full_store_refuses_new_keys_and_never_forgets_one_inside_its_window() {
    let store = store(1_000, 3);
    let applied = AtomicUsize::new(0);
    for i in 0..3u64 {
        assert_eq!(run_ok(&store, &key(&format!("k{i}")), 1, i, i, &applied), Claimed::Applied(Ok(i)));
    }
    // Full: a new key is refused and nothing is applied or remembered.
    assert_eq!(run_ok(&store, &key("k3"), 1, 10, 3, &applied), Claimed::Full);
    assert_eq!((store.len(), applied.load(Ordering::Relaxed)), (3, 3));
    // Every remembered key still replays, the oldest included.
    for i in 0..3u64 {
        assert_eq!(run_ok(&store, &key(&format!("k{i}")), 1, 999, 99, &applied), Claimed::Replayed(Ok(i)));
    }
    // Once the oldest key's window passes (recorded at 0, window 1,000),
    // a new key takes its place; the others still replay.
    assert_eq!(run_ok(&store, &key("k3"), 1, 1_000, 3, &applied), Claimed::Applied(Ok(3)));
    assert_eq!(run_ok(&store, &key("k1"), 1, 1_000, 99, &applied), Claimed::Replayed(Ok(1)));
    assert_eq!(run_ok(&store, &key("k0"), 2, 1_000, 50, &applied), Claimed::Full, "k0 forgotten, no room for it");
    assert_eq!(store.len(), 3);
    assert_eq!(applied.load(Ordering::Relaxed), 4);
}

#[test]
fn a_key_in_flight_takes_a_place_and_a_freed_one_gives_it_back() {
    let store = store(1_000_000, 2);
    let applied = AtomicUsize::new(0);
    let k = key("in-flight");
    let outcome = store.run(
        &k,
        &1,
        at(0),
        || {
            // One place left while `k` is in flight.
            assert_eq!(run_ok(&store, &key("other-0"), 1, 0, 0, &applied), Claimed::Applied(Ok(0)));
            assert_eq!(run_ok(&store, &key("other-1"), 1, 0, 1, &applied), Claimed::Full);
            assert_eq!(store.len(), 2, "one recorded, one in flight");
            Err("busy".to_owned())
        },
        |result| result.is_ok(),
    );
    assert_eq!(outcome, Claimed::Applied(Err("busy".to_owned())));
    // The transient attempt freed its place.
    assert_eq!(store.len(), 1);
    assert_eq!(run_ok(&store, &key("other-1"), 1, 1, 1, &applied), Claimed::Applied(Ok(1)));
    assert_eq!(run_ok(&store, &k, 1, 1, 7, &applied), Claimed::Full);
}

#[test]
fn a_zero_window_remembers_nothing_and_zero_keys_refuse_every_key() {
    let forgetful = store(0, 10);
    let applied = AtomicUsize::new(0);
    let k = key("a");
    assert_eq!(run_ok(&forgetful, &k, 1, 5, 1, &applied), Claimed::Applied(Ok(1)));
    assert_eq!(run_ok(&forgetful, &k, 1, 5, 2, &applied), Claimed::Applied(Ok(2)));
    assert!(forgetful.len() <= 1);
    let no_room = store(1_000, 0);
    assert_eq!(run_ok(&no_room, &k, 1, 5, 1, &applied), Claimed::Full);
    assert_eq!((no_room.len(), applied.load(Ordering::Relaxed)), (0, 2));
}

#[test]
fn panic_in_apply_frees_the_key() {
    let store = store(1_000, 10);
    let k = key("a");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.run(&k, &1, at(0), || -> Result<u64, String> { panic!("apply failed") }, always)
    }));
    assert!(panicked.is_err(), "the panic propagates");
    assert_eq!(store.len(), 0, "the key is not left in flight");
    assert_eq!(store.run(&k, &1, at(1), || Ok(2), always), Claimed::Applied(Ok(2)));
}

#[test]
fn waiters_claim_again_after_a_panic() {
    let store = store(1_000, 10);
    let k = key("a");
    let applied = AtomicUsize::new(0);
    let waiter_ran = AtomicUsize::new(0);
    let waited = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.run(
                &k,
                &1,
                at(0),
                || -> Result<u64, String> {
                    let waiter = scope.spawn(|| {
                        waiter_ran.fetch_add(1, Ordering::Relaxed);
                        run_ok(&store, &k, 1, 0, 5, &applied)
                    });
                    // Give the waiter time to find the key in flight.
                    while waiter_ran.load(Ordering::Relaxed) == 0 {
                        std::thread::yield_now();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    // Checked outside: a failed assert here would be caught as the panic.
                    waited.store(!waiter.is_finished(), Ordering::Relaxed);
                    panic!("apply failed");
                },
                always,
            )
        }));
        assert!(panicked.is_err());
    });
    assert!(waited.load(Ordering::Relaxed), "the duplicate waited for the in-flight attempt");
    assert_eq!(applied.load(Ordering::Relaxed), 1, "the waiter claimed after the panic and applied");
    assert_eq!(store.run(&k, &1, at(1), || Ok(9), always), Claimed::Replayed(Ok(5)));
}

/// A command whose packing yields the thread (a legal, if slow, `C`):
/// it widens any window a store leaves between looking at a key and
/// claiming it, so the storm below finds a non-atomic claim.
#[derive(Debug, PartialEq, Eq)]
struct YieldingCommand(usize);

impl<R: Clone> Pack<R> for YieldingCommand {
    type Packed = usize;
    type Record = (usize, R);

    fn pack(&self) -> usize {
        std::thread::yield_now();
        self.0
    }

    fn unpack(packed: &usize) -> Self {
        std::thread::yield_now();
        YieldingCommand(*packed)
    }

    fn pack_record(&self, result: &R) -> (usize, R) {
        std::thread::yield_now();
        (self.0, result.clone())
    }

    fn record_command(record: &(usize, R)) -> Self {
        std::thread::yield_now();
        YieldingCommand(record.0)
    }

    fn record_result(record: &(usize, R)) -> R {
        record.1.clone()
    }
}

/// 8 threads × 200 keys, every key sent by every thread at once (a
/// spinning barrier before each key); the
/// transient first attempt of every 10th key checks that waiters claim
/// again. Exactly one final application per key, and every thread
/// returns that application's result.
#[test]
fn retry_storm_applies_each_key_once() {
    const THREADS: usize = 8;
    const KEYS: usize = 200;
    let store: KeyStore<YieldingCommand, u64> = KeyStore::new(KeyWindow::default());
    let keys: Vec<IdempotencyKey> = (0..KEYS).map(|i| key(&format!("order-{i}"))).collect();
    let applied: Vec<AtomicUsize> = (0..KEYS).map(|_| AtomicUsize::new(0)).collect();
    let finals: Vec<AtomicUsize> = (0..KEYS).map(|_| AtomicUsize::new(0)).collect();
    let results = StdMutex::new(vec![Vec::new(); KEYS]);
    let arrived = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (store, keys, applied, finals, results, arrived) =
                (&store, &keys, &applied, &finals, &results, &arrived);
            scope.spawn(move || {
                for i in 0..KEYS {
                    // Every thread sends key `i` at once: a spinning barrier,
                    // so the threads leave it together (a blocking one wakes
                    // them one by one, and the first is usually done before
                    // the next arrives).
                    // AcqRel / Acquire: each arrival pairs with the loads
                    // of the others spinning below (a rendezvous only).
                    arrived.fetch_add(1, Ordering::AcqRel);
                    while arrived.load(Ordering::Acquire) < THREADS * (i + 1) {
                        std::thread::yield_now();
                    }
                    // A panic (a failed check in the store) is recorded, not
                    // propagated: a dead thread would leave the others at the
                    // barrier for ever.
                    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        store.run(
                            &keys[i],
                            &YieldingCommand(i),
                            Timestamp::from_millis(i as u64),
                            || {
                                let n = applied[i].fetch_add(1, Ordering::Relaxed);
                                // Every 10th key: the first attempt is transient.
                                (i as u64) * 1_000 + thread as u64 * 10 + u64::from(n > 0 || i % 10 != 0)
                            },
                            |r| r % 10 == 1,
                        )
                    }));
                    let value = match sent {
                        Ok(Claimed::Applied(r)) => {
                            if r % 10 == 1 {
                                finals[i].fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r)
                        }
                        Ok(Claimed::Replayed(r)) => Ok(r),
                        Ok(Claimed::Conflict(c)) => Err(format!("conflict with {c:?}")),
                        Ok(Claimed::Full) => Err("full".to_owned()),
                        Err(_) => Err("panicked".to_owned()),
                    };
                    results.lock().expect("no panics hold it")[i].push(value);
                }
            });
        }
    });
    let results = results.into_inner().expect("no panics hold it");
    for i in 0..KEYS {
        let results: Vec<u64> = match results[i].iter().cloned().collect() {
            Ok(results) => results,
            Err(failure) => panic!("key {i}: {failure}: {:?}", results[i]),
        };
        assert_eq!(finals[i].load(Ordering::Relaxed), 1, "key {i}: final applications");
        let expected_applies = if i % 10 == 0 { 2 } else { 1 };
        assert_eq!(applied[i].load(Ordering::Relaxed), expected_applies, "key {i}: applications");
        let finals_seen: Vec<_> = results.iter().filter(|r| *r % 10 == 1).collect();
        assert!(finals_seen.windows(2).all(|w| w[0] == w[1]), "key {i}: results differ: {results:?}");
        // Only the transient attempt's own caller sees the transient result.
        assert_eq!(results.len() - finals_seen.len(), expected_applies - 1, "key {i}: {results:?}");
    }
    assert_eq!(store.len(), KEYS);
}
