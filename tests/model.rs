//! Model-based test: the real `Ledger` (on a `ManualClock`) and the
//! independent reference ledger (`tests/common/reference.rs`, written from
//! `docs/semantics.md`) run the same random sequences of commands — all seven
//! kinds, valid and invalid, with the clock moving (and sometimes jumping
//! back) between them — and must agree on every outcome and every error, on
//! every SKU's snapshot after every step, on reservation and availability
//! queries, and the real ledger's audit must stay clean throughout.
//!
//! Cases: `STOCKROOM_MODEL_CASES` (default 10,000) sequences of up to 100
//! commands over 3 SKUs, 6 lot ids and reservation seqs 0..=7, so commands
//! keep hitting live state.

mod common;

use common::manual_ledger;
use common::reference::ReferenceLedger;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError};
use std::time::Duration;
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Clock, Command, FillMode, LotAttributes, LotId, NewLot,
    Quantity, ReservationId, SkuId, Timestamp,
};

const MAX: u64 = Quantity::MAX.get();
const SKUS: [SkuId; 3] = [SkuId(1), SkuId(2), SkuId(3)];
const SHELF_LIVES: [Duration; 3] = [Duration::ZERO, Duration::from_millis(40), Duration::MAX];

/// One step of a run: a command, or a move of the clock.
#[derive(Clone, Debug)]
enum Step {
    Run(Command),
    /// Moves the clock forward by this many milliseconds.
    Advance(u64),
    /// Sets the clock (possibly backwards, possibly to the end of time).
    SetClock(u64),
}

fn cases() -> u32 {
    match std::env::var("STOCKROOM_MODEL_CASES") {
        Ok(value) => value.trim().parse().expect("STOCKROOM_MODEL_CASES must be a whole number"),
        Err(_) => 10_000,
    }
}

/// SKUs 1 and 2 are usually defined; 3 often is not.
fn sku() -> impl Strategy<Value = SkuId> {
    prop_oneof![4 => Just(SkuId(1)), 4 => Just(SkuId(2)), 1 => Just(SkuId(3))]
}

fn lot_id() -> impl Strategy<Value = LotId> {
    (0u64..6).prop_map(LotId)
}

fn policy() -> impl Strategy<Value = AllocationPolicy> {
    prop_oneof![Just(AllocationPolicy::Fefo), Just(AllocationPolicy::Fifo)]
}

/// Mostly small quantities; sometimes zero, or at and past the maximum.
fn quantity() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 1u64..=20,
        2 => 21u64..=200,
        1 => Just(0u64),
        1 => prop::sample::select(vec![MAX / 2, MAX - 1, MAX, MAX + 1, u64::MAX]),
    ]
}

fn delta() -> impl Strategy<Value = i64> {
    let max = MAX as i64;
    prop_oneof![
        10 => -20i64..=20,
        2 => -200i64..=200,
        1 => prop::sample::select(vec![i64::MIN, i64::MAX, max, -max, max + 1, -max - 1, max / 2]),
    ]
}

/// Coarse instants, so that lots often tie on expiry or receipt.
fn instant() -> impl Strategy<Value = Timestamp> {
    (0u64..=20).prop_map(|t| Timestamp::from_millis(t * 20))
}

fn expiry() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        3 => Just(None),
        4 => instant().prop_map(Some),
        1 => Just(Some(Timestamp::from_millis(u64::MAX))),
    ]
}

fn attributes() -> impl Strategy<Value = Option<LotAttributes>> {
    prop_oneof![
        3 => Just(None),
        1 => (0u8..3).prop_map(|n| Some(LotAttributes {
            supplier: Some(format!("supplier-{n}")),
            location: (n > 0).then(|| format!("bin-{n}")),
        })),
    ]
}

fn new_lot() -> impl Strategy<Value = NewLot> {
    let quantity = prop_oneof![6 => 1u64..=60, 1 => quantity()];
    (lot_id(), quantity, prop::option::weighted(0.4, instant()), expiry(), attributes()).prop_map(
        |(id, quantity, received_at, expires_at, attributes)| NewLot {
            id,
            quantity,
            received_at,
            expires_at,
            attributes,
        },
    )
}

fn shelf_life() -> impl Strategy<Value = Duration> {
    prop_oneof![
        6 => Just(Duration::ZERO),
        3 => (0u64..100).prop_map(Duration::from_millis),
        1 => (0u64..100_000).prop_map(Duration::from_micros),
        1 => Just(Duration::MAX),
    ]
}

fn request() -> impl Strategy<Value = AllocateRequest> {
    let fill = prop_oneof![Just(FillMode::FillOrKill), Just(FillMode::Partial)];
    (sku(), quantity(), fill, prop::option::weighted(0.3, policy()), shelf_life()).prop_map(
        |(sku, quantity, fill, policy, min_shelf_life)| AllocateRequest { sku, quantity, fill, policy, min_shelf_life },
    )
}

fn reservation() -> impl Strategy<Value = ReservationId> {
    let seq = prop_oneof![1 => Just(0u64), 10 => 1u64..=2, 3 => 3u64..=4, 1 => 5u64..=7];
    (sku(), seq).prop_map(|(sku, seq)| ReservationId { sku, seq })
}

fn reason() -> impl Strategy<Value = AdjustmentReason> {
    prop::sample::select(vec![
        AdjustmentReason::Receipt,
        AdjustmentReason::Spoilage,
        AdjustmentReason::Recount,
        AdjustmentReason::Damage,
        AdjustmentReason::Recalibration,
        AdjustmentReason::Expiry,
        AdjustmentReason::Other,
    ])
}

fn define() -> impl Strategy<Value = Step> {
    (sku(), policy()).prop_map(|(sku, policy)| Step::Run(Command::DefineSku { sku, policy }))
}

/// Boxed (here and per branch) so that value trees move as pointers: the
/// unboxed union's trees are large and copying them dominated a debug run.
fn step() -> BoxedStrategy<Step> {
    let commit_quantity = prop_oneof![3 => Just(None), 4 => quantity().prop_map(Some)];
    prop_oneof![
        1 => define().boxed(),
        5 => (sku(), new_lot()).prop_map(|(sku, lot)| Step::Run(Command::Receive { sku, lot })).boxed(),
        5 => request().prop_map(|request| Step::Run(Command::Allocate(request))).boxed(),
        2 => request().prop_map(|request| Step::Run(Command::Take(request))).boxed(),
        3 => reservation().prop_map(|reservation| Step::Run(Command::Release { reservation })).boxed(),
        4 => (reservation(), commit_quantity)
            .prop_map(|(reservation, quantity)| Step::Run(Command::Commit { reservation, quantity }))
            .boxed(),
        4 => (sku(), lot_id(), delta(), reason())
            .prop_map(|(sku, lot, delta, reason)| Step::Run(Command::Adjust { sku, lot, delta, reason }))
            .boxed(),
        3 => (1u64..=60).prop_map(Step::Advance).boxed(),
        1 => prop_oneof![9 => 0u64..=400, 1 => Just(u64::MAX - 10)].prop_map(Step::SetClock).boxed(),
    ]
    .boxed()
}

/// SKUs 1 and 2 defined first (so most commands meet a real SKU), SKU 3
/// sometimes, then random steps: at most 100 in all.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    (policy(), policy(), prop::option::of(policy()), prop::collection::vec(step(), 1..=97)).prop_map(
        |(first, second, third, body)| {
            let define = |sku, policy| Step::Run(Command::DefineSku { sku: SkuId(sku), policy });
            let mut steps = vec![define(1, first), define(2, second)];
            steps.extend(third.map(|policy| define(3, policy)));
            steps.extend(body);
            steps
        },
    )
}

/// Runs `steps` against both ledgers, checking agreement after each.
fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let (ledger, clock) = manual_ledger(0);
    let reference = ReferenceLedger::new();
    for (index, step) in steps.iter().enumerate() {
        let command = match step {
            Step::Advance(millis) => {
                clock.advance(Duration::from_millis(*millis));
                continue;
            }
            Step::SetClock(millis) => {
                clock.set(Timestamp::from_millis(*millis));
                continue;
            }
            Step::Run(command) => command,
        };
        let now = clock.now();
        let actual = ledger.execute(command);
        let expected = reference.execute(command, now);
        prop_assert_eq!(
            &actual,
            &expected,
            "step {}: outcome of {:?} at {} differs (left: ledger, right: reference)",
            index,
            command,
            now
        );
        check_state(&ledger, &reference, command, now, index)?;
    }
    Ok(())
}

/// After step `index` (which ran `command` at `now`): every snapshot, the
/// touched SKU's reservation and availability queries, and the audit.
fn check_state(
    ledger: &stockroom::Ledger,
    reference: &ReferenceLedger,
    command: &Command,
    now: Timestamp,
    index: usize,
) -> Result<(), TestCaseError> {
    if let Command::DefineSku { .. } = command {
        // Only a definition changes the set (and listing it walks every shard).
        let mut defined = ledger.skus();
        defined.sort();
        prop_assert_eq!(defined, reference.skus(), "step {}: defined SKUs differ after {:?}", index, command);
    }
    for sku in SKUS {
        let actual = ledger.snapshot(sku).ok().map(|snapshot| snapshot.to_data());
        let expected = reference.snapshot(sku);
        prop_assert_eq!(
            actual,
            expected,
            "step {}: snapshot of {} differs after {:?} at {} (left: ledger, right: reference)",
            index,
            sku,
            command,
            now
        );
    }
    let sku = command.sku();
    for seq in 0..=7 {
        let id = ReservationId { sku, seq };
        prop_assert_eq!(
            ledger.reservation(id),
            reference.reservation(id),
            "step {}: query of {} differs after {:?}",
            index,
            id,
            command
        );
    }
    for shelf_life in SHELF_LIVES {
        prop_assert_eq!(
            ledger.available(sku, shelf_life),
            reference.available(sku, now, shelf_life),
            "step {}: available({}, {:?}) differs after {:?} at {}",
            index,
            sku,
            shelf_life,
            command,
            now
        );
    }
    let audit = ledger.audit();
    prop_assert!(audit.is_clean(), "step {}: audit found {:?} after {:?}", index, audit.violations, command);
    Ok(())
}

proptest! {
    // XorShift: ChaCha costs a third of the run in a debug build.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ledger_agrees_with_reference_on_every_outcome_snapshot_and_query(steps in steps()) {
        run(&steps)?;
    }
}
