//! Loom models of the idempotency key store's claim / wait / record
//! protocol.
//!
//! What this file proves: for every interleaving loom explores (within the
//! preemption bound) of two threads running one key through
//! [`KeyStore::run`](super::KeyStore::run), an equal command is applied
//! exactly once per final result and every caller gets that result, a
//! transient result frees the key for the other caller, and a different
//! command is refused with the first one while nothing of it is applied;
//! and eviction racing a record removes only the entries it means to (never
//! one in flight, never a newer entry for the same key).
//!
//! Under `stockroom_loom` the key table is one loom mutex around a
//! `HashMap`, the attempt cells and the record-order queue are loom mutexes,
//! the entry-id counter is a loom atomic and the waiters' backoff is a
//! yield (see `crate::sync`), so loom schedules every map operation, every
//! look at an attempt and every record. What is checked is the protocol
//! built on a map whose operations are atomic per key, not dashmap's own
//! shard locking. The models are small enough (two threads, one or two
//! keys) to run with no preemption bound at all: every interleaving, up to
//! loom's partial-order reduction, whatever `LOOM_MAX_PREEMPTIONS` says.
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/loom-keys --lib idempotency::loom -- --nocapture
//! ```

use super::{Claimed, IdempotencyKey, KeyStore, KeyWindow};
use crate::cell::loom::{Preemptions, check};
use crate::clock::Timestamp;
use crate::sync::{Arc, AtomicU64, Ordering};
use loom::thread;
use std::time::Duration;

type Store = KeyStore<u32, u64>;

fn store() -> Arc<Store> {
    Arc::new(KeyStore::new(KeyWindow::default()))
}

fn key() -> IdempotencyKey {
    IdempotencyKey::new("order-1").expect("a valid key")
}

/// Runs `command` under the model's key; `apply` counts in `applied` and
/// returns the count before it (0 for the first application).
fn run(store: &Store, command: u32, applied: &AtomicU64, is_final: impl Fn(&u64) -> bool) -> Claimed<u32, u64> {
    store.run(
        &key(),
        &command,
        Timestamp::from_millis(0),
        // Relaxed: the count is read after the threads are joined.
        || applied.fetch_add(1, Ordering::Relaxed),
        is_final,
    )
}

/// Race: two equal commands with one key, final results.
///
/// Asserts: exactly one application; one caller `Applied(0)`, the other
/// `Replayed(0)`; the key is recorded and a third call replays it.
#[test]
fn duplicates_race_one_applies() {
    check("duplicates_race_one_applies", Preemptions::Unbounded, || {
        let store = store();
        let applied = Arc::new(AtomicU64::new(0));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (store, applied) = (Arc::clone(&store), Arc::clone(&applied));
                thread::spawn(move || run(&store, 1, &applied, |_| true))
            })
            .collect();
        let mut outcomes: Vec<_> = racers.into_iter().map(|racer| racer.join().expect("no panic")).collect();
        outcomes.sort_by_key(|outcome| matches!(outcome, Claimed::Replayed(_)));
        assert_eq!(outcomes, [Claimed::Applied(0), Claimed::Replayed(0)]);
        assert_eq!(applied.load(Ordering::Relaxed), 1);
        assert_eq!(run(&store, 1, &applied, |_| true), Claimed::Replayed(0));
        assert_eq!(store.len(), 1);
    });
}

/// Race: two equal commands with one key; the first application is
/// transient (`is_final` is false for result 0), every later one final.
///
/// Asserts: both callers apply, whichever order they claim in (the one
/// that waited on the transient attempt claims again): `Applied(0)` and
/// `Applied(1)`; then the key replays 1.
#[test]
fn transient_result_lets_the_duplicate_apply() {
    check("transient_result_lets_the_duplicate_apply", Preemptions::Unbounded, || {
        let store = store();
        let applied = Arc::new(AtomicU64::new(0));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (store, applied) = (Arc::clone(&store), Arc::clone(&applied));
                thread::spawn(move || run(&store, 1, &applied, |&n| n > 0))
            })
            .collect();
        let mut outcomes: Vec<_> = racers.into_iter().map(|racer| racer.join().expect("no panic")).collect();
        outcomes.sort_by_key(|outcome| match outcome {
            Claimed::Applied(n) | Claimed::Replayed(n) => *n,
            Claimed::Conflict(_) | Claimed::Full => u64::MAX,
        });
        assert_eq!(outcomes, [Claimed::Applied(0), Claimed::Applied(1)]);
        assert_eq!(applied.load(Ordering::Relaxed), 2);
        assert_eq!(run(&store, 1, &applied, |&n| n > 0), Claimed::Replayed(1));
        assert_eq!(store.len(), 1);
    });
}

/// Race: two different commands with one key, final results.
///
/// Asserts: exactly one application; the winner `Applied(0)`, the loser
/// `Conflict(winner's command)`, answered only once the winner's command
/// has taken effect (a loser arriving while it is in flight waits for it);
/// the winner's command stays recorded.
#[test]
fn different_commands_race_one_conflicts() {
    check("different_commands_race_one_conflicts", Preemptions::Unbounded, || {
        let store = store();
        let applied = Arc::new(AtomicU64::new(0));
        let racers: Vec<_> = (1..=2)
            .map(|command| {
                let (store, applied) = (Arc::clone(&store), Arc::clone(&applied));
                thread::spawn(move || {
                    let claimed = run(&store, command, &applied, |_| true);
                    // Relaxed: the attempt's lock orders the winner's apply
                    // before a loser's answer (the property checked here).
                    let seen = applied.load(Ordering::Relaxed);
                    (command, claimed, seen)
                })
            })
            .collect();
        let outcomes: Vec<_> = racers.into_iter().map(|racer| racer.join().expect("no panic")).collect();
        for (_, claimed, seen) in &outcomes {
            if let Claimed::Conflict(_) = claimed {
                assert_eq!(*seen, 1, "told of a conflict before the first command took effect");
            }
        }
        let outcomes: Vec<_> = outcomes.into_iter().map(|(command, claimed, _)| (command, claimed)).collect();
        let winner = match outcomes.as_slice() {
            [(winner, Claimed::Applied(0)), (_, Claimed::Conflict(first))]
            | [(_, Claimed::Conflict(first)), (winner, Claimed::Applied(0))] => {
                assert_eq!(first, winner, "the loser is told the winner's command");
                *winner
            }
            other => panic!("not one winner and one conflict: {other:?}"),
        };
        assert_eq!(applied.load(Ordering::Relaxed), 1);
        assert_eq!(run(&store, winner, &applied, |_| true), Claimed::Replayed(0));
        assert_eq!(store.len(), 1);
    });
}

/// Race: with room for one key, thread 1 reuses key `a`, whose recorded
/// entry has expired (replaced in place: no room needed), while thread 2
/// claims a new key `b` and, finding the table full, forgets the expired
/// entries at the front of the record order (the old entry of `a`, by its
/// queue item) and claims again.
///
/// Asserts: exactly one of them applies and the other is refused `Full`
/// (the table never holds two); the survivor replays its value; the old
/// queue item of `a` never removed the new entry of `a`.
#[test]
fn a_full_table_races_a_reclaim() {
    check("full_table_races_a_reclaim", Preemptions::Unbounded, || {
        let store: Arc<Store> = Arc::new(KeyStore::new(KeyWindow { window: Duration::from_millis(10), keys_max: 1 }));
        let (a, b) = (IdempotencyKey::new("a").expect("valid"), IdempotencyKey::new("b").expect("valid"));
        let t = Timestamp::from_millis;
        assert_eq!(store.run(&a, &1, t(0), || 10, |_| true), Claimed::Applied(10));
        let racers: Vec<_> = [(a.clone(), 2, 20), (b.clone(), 3, 30)]
            .into_iter()
            .map(|(key, command, value)| {
                let store = Arc::clone(&store);
                thread::spawn(move || store.run(&key, &command, t(20), || value, |_| true))
            })
            .collect();
        let outcomes: Vec<_> = racers.into_iter().map(|racer| racer.join().expect("no panic")).collect();
        let (survivor, command, value) = match outcomes.as_slice() {
            [Claimed::Applied(20), Claimed::Full] => (a, 2, 20),
            [Claimed::Full, Claimed::Applied(30)] => (b, 3, 30),
            other => panic!("not one applied and one refused for room: {other:?}"),
        };
        assert_eq!(store.len(), 1);
        assert_eq!(store.run(&survivor, &command, t(21), || 99, |_| true), Claimed::Replayed(value));
    });
}
