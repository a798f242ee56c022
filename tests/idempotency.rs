//! Idempotency keys through the ledger (`Ledger::execute_keyed`): a retry
//! returns the first outcome marked as a replay and changes nothing; a
//! reused key with another command is a typed error naming the field; a
//! final refusal sticks to its key; racing duplicates apply once; keys are
//! forgotten by time and by count.

use std::sync::{Arc, Barrier};
use std::time::Duration;
use stockroom::{
    AllocateError, AllocateRequest, AllocationPolicy, Command, CommandError, IdempotencyKey, KeyWindow, KeyedError,
    Ledger, LedgerBuildError, LotId, ManualClock, NewLot, Outcome, ReservationId, SkuId, Timestamp,
};

const SKU: SkuId = SkuId(1);

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).expect("a short key")
}

fn ledger_with(window: KeyWindow) -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(0)));
    let ledger = Ledger::builder().clock(clock.clone()).key_window(window).build().expect("valid settings");
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define");
    ledger.receive(SKU, NewLot::new(LotId(1), 10)).expect("receive");
    (ledger, clock)
}

fn ledger() -> (Ledger, Arc<ManualClock>) {
    ledger_with(KeyWindow::default())
}

fn version(ledger: &Ledger) -> u64 {
    ledger.snapshot(SKU).expect("defined").version()
}

fn take(units: u64) -> Command {
    Command::Take(AllocateRequest::new(SKU, units))
}

#[test]
fn a_retry_replays_the_first_outcome_and_changes_nothing() {
    let (ledger, _clock) = ledger();
    let allocate = Command::Allocate(AllocateRequest::new(SKU, 4));
    let first = ledger.execute_keyed(&key("a"), &allocate).expect("applies");
    assert!(!first.replay);
    let after_first = version(&ledger);
    for _ in 0..3 {
        let retry = ledger.execute_keyed(&key("a"), &allocate).expect("replays");
        assert!(retry.replay);
        assert_eq!(retry.outcome, first.outcome, "the same reservation, not a new one");
    }
    assert_eq!(version(&ledger), after_first, "a replay changes nothing");
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().held.get(), 4);
}

#[test]
fn a_key_reused_for_another_command_is_refused_naming_what_differs() {
    let (ledger, _clock) = ledger();
    ledger.execute_keyed(&key("k"), &take(2)).expect("applies");
    let before = version(&ledger);
    let reused = |command: &Command| match ledger.execute_keyed(&key("k"), command) {
        Err(KeyedError::KeyReused { key, field }) => {
            assert_eq!(key.as_str(), "k");
            field
        }
        other => panic!("expected KeyReused, got {other:?}"),
    };
    assert_eq!(reused(&take(3)), "quantity");
    assert_eq!(reused(&Command::Take(AllocateRequest::new(SkuId(2), 2))), "sku");
    assert_eq!(reused(&Command::Take(AllocateRequest::new(SKU, 2).if_version(1))), "expected_version");
    assert_eq!(reused(&Command::Allocate(AllocateRequest::new(SKU, 2))), "command");
    assert_eq!(reused(&Command::Release { reservation: ReservationId::new(SKU, 1) }), "command");
    assert_eq!(version(&ledger), before, "nothing applied");
}

#[test]
fn a_final_refusal_sticks_to_its_key_and_a_transient_one_would_not() {
    let (ledger, _clock) = ledger();
    let too_many = take(11);
    let refused = ledger.execute_keyed(&key("r"), &too_many);
    let expected = CommandError::Allocate(AllocateError::Insufficient {
        sku: SKU,
        requested: 11.try_into().expect("small"),
        available: 10.try_into().expect("small"),
    });
    assert_eq!(refused, Err(KeyedError::Refused { error: expected.clone(), replay: false }));
    ledger.receive(SKU, NewLot::new(LotId(2), 5)).expect("restock: now 15 would cover it");
    assert_eq!(
        ledger.execute_keyed(&key("r"), &too_many),
        Err(KeyedError::Refused { error: expected, replay: true }),
        "the retry is refused again, never granted"
    );
    assert!(ledger.execute_keyed(&key("fresh"), &too_many).is_ok(), "a new key is a new decision");
    let transient = KeyedError::Refused {
        error: CommandError::Allocate(AllocateError::Contended { sku: SKU, attempts: 1 }),
        replay: false,
    };
    assert!(transient.is_transient());
}

#[test]
fn racing_duplicates_apply_once_and_all_get_its_outcome() {
    for round in 0..50 {
        let (ledger, _clock) = ledger();
        let start = Barrier::new(8);
        let allocate = Command::Allocate(AllocateRequest::new(SKU, 1));
        let answers: Vec<_> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        ledger.execute_keyed(&key("same"), &allocate).expect("one unit of ten")
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("thread")).collect()
        });
        assert_eq!(answers.iter().filter(|a| !a.replay).count(), 1, "round {round}: exactly one applied");
        assert!(answers.iter().all(|a| a.outcome == answers[0].outcome), "round {round}: one outcome for all");
        let Outcome::Allocated(allocation) = &answers[0].outcome else { panic!("an allocation") };
        // The receipt is version 1: the one allocation is version 2, seq 2,
        // and nothing after it made another version.
        assert_eq!((allocation.reservation.seq, allocation.version), (2, 2), "round {round}");
        assert_eq!(version(&ledger), 2, "round {round}: one change applied");
        let snapshot = ledger.snapshot(SKU).expect("defined").to_data();
        let held: Vec<ReservationId> = snapshot.reservations.iter().map(|r| r.id).collect();
        assert_eq!(held, vec![allocation.reservation], "round {round}: one reservation");
        assert_eq!(snapshot.totals.held.get(), 1, "round {round}: held once");
        assert!(ledger.audit().is_clean());
    }
}

#[test]
fn keys_are_forgotten_after_the_window_and_never_before_it() {
    let window = KeyWindow { window: Duration::from_secs(60), keys_max: 2 };
    let (ledger, clock) = ledger_with(window);
    ledger.execute_keyed(&key("t"), &take(1)).expect("applies at 0 s");
    clock.set(Timestamp(59_999));
    assert!(ledger.execute_keyed(&key("t"), &take(1)).expect("remembered").replay);
    clock.set(Timestamp(60_000));
    assert!(!ledger.execute_keyed(&key("t"), &take(1)).expect("forgotten: applies again").replay);
    // Room for 2: "t" (recorded at 60 s) and "u"; "v" is refused, and "t"
    // still replays: a full table never forgets a key inside its window.
    ledger.execute_keyed(&key("u"), &take(1)).expect("applies");
    let full = ledger.execute_keyed(&key("v"), &take(1));
    assert_eq!(full, Err(KeyedError::KeysFull { key: key("v"), keys_max: 2 }));
    assert_eq!(full.unwrap_err().kind(), stockroom::ErrorKind::Limit);
    assert!(ledger.execute_keyed(&key("t"), &take(1)).expect("still remembered").replay);
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().committed.get(), 3, "v applied nothing");
    // Once "t"'s window has passed, "v" takes its place.
    clock.set(Timestamp(120_000));
    assert!(!ledger.execute_keyed(&key("v"), &take(1)).expect("room now").replay);
    assert_eq!(ledger.snapshot(SKU).expect("defined").totals().committed.get(), 4);
    assert_eq!(
        Ledger::builder().key_window(KeyWindow { window: Duration::ZERO, keys_max: 1 }).build().err(),
        Some(LedgerBuildError::EmptyKeyWindow)
    );
    assert_eq!(
        Ledger::builder().key_window(KeyWindow { window: Duration::from_secs(1), keys_max: 0 }).build().err(),
        Some(LedgerBuildError::EmptyKeyWindow)
    );
}

#[cfg(feature = "serde")]
#[test]
fn keys_and_keyed_answers_round_trip_through_serde_and_bad_keys_do_not_deserialize() {
    let parsed: IdempotencyKey = serde_json::from_str(r#""order-1""#).expect("a valid key");
    assert_eq!(parsed, key("order-1"));
    assert!(serde_json::from_str::<IdempotencyKey>(r#""""#).is_err(), "empty");
    let long = format!("\"{}\"", "k".repeat(stockroom::KEY_LEN_MAX + 1));
    assert!(serde_json::from_str::<IdempotencyKey>(&long).is_err(), "too long");
    let (ledger, _clock) = ledger();
    let answer = ledger.execute_keyed(&key("s"), &take(1)).expect("applies");
    let json = serde_json::to_string(&answer).expect("serializes");
    assert_eq!(serde_json::from_str::<stockroom::Keyed<Outcome>>(&json).expect("deserializes"), answer);
}
