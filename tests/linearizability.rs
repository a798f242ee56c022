//! Guarantee 3, linearizability: every command on a real `Ledger` takes
//! effect atomically at one instant between its call and its return.
//!
//! Each history: 2–3 SKUs (FEFO and FIFO, a few lots with and without
//! expiry, some already expired or too close to expiry, sometimes live
//! reservations, with and without deadlines) are defined and stocked
//! sequentially at `SETUP`; then the clock moves to `NOW` (10 s later, before
//! any deadline) and stays there, and 4 threads, started together, run 6–10 random commands
//! each — allocate (with and without `hold_for`), take, release, commit,
//! extend, adjust, receive, set_low_stock, single-SKU `allocate_order`s,
//! snapshot reads, and allocations, sales and adjustments conditional on the
//! version of a snapshot the same thread read earlier; valid and invalid,
//! ending and extending reservation ids other threads were granted — and
//! finally every SKU's snapshot is read. Keyed commands (`execute_keyed`)
//! are mixed in: 2–3 keyed commands are planned per history (a key, a
//! command on one SKU, and a different command on the same SKU); every
//! thread sends the first at once as its first call (racing duplicates:
//! exactly one may run, the others must be replays of it), mostly with the
//! planned command and sometimes with the different one, and later calls
//! send a planned one now and then. Keys are remembered for the default
//! day, so nothing is forgotten within a history; the sequential model is
//! the reference's `execute_keyed`, `KeyReused` answers included. (The
//! store used to answer `KeyReused` at once while the key's first command
//! was still running, possibly before it took effect: about 5–8 of 1,000
//! histories had a thread see `KeyReused`, return, and then see the SKU
//! without the first command's change. A different command now waits for
//! the attempt in flight, and `check_reused` additionally checks each such
//! answer against the call that claimed the key.) No hold lapses within a history
//! (holds last at least a second; sub-millisecond ones are never made), so
//! sweeps play no part. (They could not be checked this way: an operation's
//! own sweep is published as a version of its own before the operation's,
//! so a concurrent reader can see the swept state without the operation —
//! time's change, by the ledger's docs — which no sequential order that
//! runs the sweep as part of the operation explains.) Every call and return is stamped from one global
//! counter; the history is split per SKU (every operation touches one SKU —
//! multi-SKU orders are not one linearizable operation across SKUs, see
//! `Ledger::allocate_order`, so only single-SKU ones are recorded — and
//! linearizability is local) and each part must be explained by some
//! real-time-respecting sequential order under which the independent
//! reference ledger (`tests/common/reference.rs`, written from
//! `docs/semantics.md`) returns exactly what each thread saw: the same
//! outcomes (reservation ids, lines, deadlines, versions), the same typed
//! errors, the same snapshots. The witness order is then replayed
//! independently.
//!
//! Checked to bite: with `SkuCell::update`'s compare-and-swap made
//! unconditional (publishing a version derived from a stale one), a run of
//! 1,000 histories reports ~350–410 of its ~3,100 per-SKU histories: two
//! allocations granted the same reservation id at the same version, a
//! reservation both released and committed, a sale undone by a concurrent
//! receipt — while `audit()` stays clean on every one of them.
//!
//! `STOCKROOM_LIN_HISTORIES` (default 1,000) histories per run;
//! `STOCKROOM_LIN_SEED` fixes the workload's seed (printed on failure).

mod common;
mod lincheck;

use common::reference::ReferenceLedger;
use lincheck::checker::{Operation, Verdict, check, replays};
use lincheck::history::{Recorder, overlapping_pairs, partition, render};
use lincheck::ledger::{Call, LedgerModel, Op, Return, SequentialSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stockroom::{
    AdjustError, AdjustmentReason, AllocateError, AllocateRequest, AllocationPolicy, Clock, Command, CommandError,
    CommitError, ExtendError, FillMode, IdempotencyKey, Keyed, KeyedError, Ledger, LotId, LowStock, ManualClock,
    NewLot, OrderError, OrderId, OrderLine, OrderRequest, Outcome, Quantity, ReceiveError, ReleaseError, ReservationId,
    SkuId, SnapshotData, ThresholdError, Timestamp,
};

/// The instant every command of a history's concurrent phase runs at.
const NOW: Timestamp = Timestamp::from_millis(1_000_000);
/// The instant the sequential setup runs at: holds it makes for less than
/// 10 s have lapsed at `NOW`.
const SETUP: Timestamp = Timestamp::from_millis(NOW.0 - 10_000);
const THREADS: usize = 4;
/// The client number of the sequential setup and final reads.
const MAIN: usize = THREADS;
const SKUS: [(SkuId, AllocationPolicy); 3] =
    [(SkuId(1), AllocationPolicy::Fefo), (SkuId(2), AllocationPolicy::Fifo), (SkuId(3), AllocationPolicy::Fefo)];
const UNKNOWN_SKU: SkuId = SkuId(9);
const MAX: u64 = Quantity::MAX.get();
/// Model steps per SKU history before the check gives up as unknown.
const BUDGET: u64 = 200_000;
const REASONS: [AdjustmentReason; 4] =
    [AdjustmentReason::Spoilage, AdjustmentReason::Recount, AdjustmentReason::Damage, AdjustmentReason::Receipt];

impl SequentialSpec for ReferenceLedger {
    fn fresh() -> Self {
        ReferenceLedger::new()
    }

    fn execute(&self, command: &Command, now: Timestamp) -> Result<Outcome, CommandError> {
        anonymous(ReferenceLedger::execute(self, command, now))
    }

    fn execute_keyed(
        &self,
        key: &IdempotencyKey,
        command: &Command,
        now: Timestamp,
    ) -> Result<Keyed<Outcome>, KeyedError> {
        anonymous_keyed_result(ReferenceLedger::execute_keyed(self, key, command, now))
    }

    fn snapshot(&self, sku: SkuId, now: Timestamp) -> Option<SnapshotData> {
        ReferenceLedger::snapshot(self, sku, now)
    }

    fn version(&self, sku: SkuId) -> Option<u64> {
        self.peek(sku).map(|data| data.version)
    }
}

/// The real ledger run one command at a time, its clock set to each
/// operation's instant: a violation against it too is a concurrency bug,
/// not a disagreement with the reference.
struct RealSpec {
    ledger: Ledger,
    clock: Arc<ManualClock>,
}

impl SequentialSpec for RealSpec {
    fn fresh() -> Self {
        let clock = Arc::new(ManualClock::new(SETUP));
        RealSpec { ledger: Ledger::with_clock(clock.clone()), clock }
    }

    fn execute(&self, command: &Command, now: Timestamp) -> Result<Outcome, CommandError> {
        self.clock.set(now);
        anonymous(self.ledger.execute(command))
    }

    fn execute_keyed(
        &self,
        key: &IdempotencyKey,
        command: &Command,
        now: Timestamp,
    ) -> Result<Keyed<Outcome>, KeyedError> {
        self.clock.set(now);
        anonymous_keyed_result(self.ledger.execute_keyed(key, command))
    }

    fn snapshot(&self, sku: SkuId, now: Timestamp) -> Option<SnapshotData> {
        self.clock.set(now);
        self.ledger.snapshot(sku).ok().map(|snapshot| snapshot.to_data())
    }

    /// A snapshot read at `SETUP`, before any deadline (every hold lasts at
    /// least a second from `SETUP` or later), sweeps nothing.
    fn version(&self, sku: SkuId) -> Option<u64> {
        self.clock.set(SETUP);
        self.ledger.snapshot(sku).ok().map(|snapshot| snapshot.version())
    }
}

/// An outcome with its order id erased: ids count across the whole
/// ledger, while each history is checked against a fresh model of its one
/// SKU (so the n-th order of a SKU's history need not be order n).
fn anonymous(result: Result<Outcome, CommandError>) -> Result<Outcome, CommandError> {
    let none = OrderId(0);
    match result {
        Ok(Outcome::OrderAllocated(mut allocation)) => {
            allocation.order = none;
            Ok(Outcome::OrderAllocated(allocation))
        }
        Err(CommandError::Release(ReleaseError::OrderPart { id, .. })) => {
            Err(CommandError::Release(ReleaseError::OrderPart { id, order: none }))
        }
        Err(CommandError::Commit(CommitError::OrderPart { id, .. })) => {
            Err(CommandError::Commit(CommitError::OrderPart { id, order: none }))
        }
        Err(CommandError::Extend(ExtendError::OrderPart { id, .. })) => {
            Err(CommandError::Extend(ExtendError::OrderPart { id, order: none }))
        }
        other => other,
    }
}

fn anonymous_keyed(keyed: Keyed<Outcome>) -> Keyed<Outcome> {
    Keyed::new(anonymous(Ok(keyed.outcome)).expect("an outcome stays one"), keyed.replay)
}

fn anonymous_keyed_result(result: Result<Keyed<Outcome>, KeyedError>) -> Result<Keyed<Outcome>, KeyedError> {
    match result {
        Ok(keyed) => Ok(anonymous_keyed(keyed)),
        Err(KeyedError::Refused { error, replay }) => {
            Err(KeyedError::Refused { error: anonymous(Err(error)).expect_err("a refusal stays one"), replay })
        }
        Err(other) => Err(other),
    }
}

fn run(ledger: &Ledger, call: &Call) -> Return {
    match call {
        Call::Command(command) => Return::Command(anonymous(ledger.execute(command))),
        Call::Keyed(key, command) => Return::Keyed(anonymous_keyed_result(ledger.execute_keyed(key, command))),
        Call::Snapshot(sku) => Return::Snapshot(ledger.snapshot(*sku).ok().map(|snapshot| snapshot.to_data())),
    }
}

/// A refusal for contention changed nothing and is outside the sequential
/// contract: such operations are dropped from the history (and counted). A
/// keyed one is not recorded for its key either (and only its own caller
/// sees it: racing duplicates claim the key again).
fn contended(ret: &Return) -> bool {
    if let Return::Keyed(answer) = ret {
        return matches!(answer, Err(error) if error.is_transient());
    }
    matches!(
        ret,
        Return::Command(Err(CommandError::Receive(ReceiveError::Contended { .. })
            | CommandError::Allocate(AllocateError::Contended { .. })
            | CommandError::Release(ReleaseError::Contended { .. })
            | CommandError::Commit(CommitError::Contended { .. })
            | CommandError::Adjust(AdjustError::Contended { .. })
            | CommandError::Extend(ExtendError::Contended { .. })
            | CommandError::Threshold(ThresholdError::Contended { .. })
            | CommandError::Order(OrderError::Line { error: AllocateError::Contended { .. }, .. })))
    )
}

/// A number from the environment, decimal or `0x` hex.
fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

// ---------------------------------------------------------------------------
// The workload.

fn expiry(rng: &mut StdRng) -> Option<Timestamp> {
    match rng.gen_range(0..6) {
        0 | 1 => None,
        2 => Some(NOW),                                // expired
        3 => Some(Timestamp::from_millis(NOW.0 + 50)), // too close for a 100 ms shelf life
        _ => Some(Timestamp::from_millis(NOW.0 + rng.gen_range(1..4) * 1_000)),
    }
}

fn new_lot(rng: &mut StdRng, id: u64, quantity: u64) -> NewLot {
    let mut lot = NewLot::new(LotId(id), quantity);
    lot.received_at = rng.gen_bool(0.7).then(|| Timestamp::from_millis(NOW.0 - rng.gen_range(0..3) * 1_000));
    lot.expires_at = expiry(rng);
    lot
}

/// A hold duration: usually none; else a deadline 1–20 s after `NOW`, or
/// refused (zero, past the day's maximum).
fn hold_for(rng: &mut StdRng) -> Option<Duration> {
    match rng.gen_range(0..20) {
        0..10 => None,
        10 => Some(Duration::ZERO),
        11 => Some(Duration::from_secs(2 * 86_400)),
        12..16 => Some(Duration::from_secs(rng.gen_range(1..=3))),
        _ => Some(Duration::from_secs(rng.gen_range(5..=20))),
    }
}

fn request(rng: &mut StdRng, sku: SkuId) -> AllocateRequest {
    let quantity = match rng.gen_range(0..40) {
        0 => 0,
        1 => MAX + 1,
        _ => rng.gen_range(1..=6),
    };
    let mut request = AllocateRequest::new(sku, quantity);
    if rng.gen_bool(0.3) {
        request = request.fill(FillMode::Partial);
    }
    if rng.gen_bool(0.2) {
        request = request.policy(if rng.gen_bool(0.5) { AllocationPolicy::Fefo } else { AllocationPolicy::Fifo });
    }
    if rng.gen_bool(0.2) {
        request = request.min_shelf_life(Duration::from_millis(100));
    }
    request.hold_for = hold_for(rng);
    request
}

/// A request, perhaps conditional on a version (drawn first).
fn conditional(rng: &mut StdRng, seen: &Seen, sku: SkuId) -> AllocateRequest {
    let expected_version = expected(rng, seen, sku);
    let mut request = request(rng, sku);
    request.expected_version = expected_version;
    request
}

/// A single-SKU order: 1–3 lines (rarely an invalid one), maybe a deadline.
fn order(rng: &mut StdRng, sku: SkuId) -> OrderRequest {
    let lines = (0..rng.gen_range(1..=3))
        .map(|_| {
            let quantity = if rng.gen_bool(0.05) { 0 } else { rng.gen_range(1..=4) };
            let mut line = OrderLine::new(sku, quantity);
            if rng.gen_bool(0.2) {
                line.policy = Some(AllocationPolicy::Fifo);
            }
            if rng.gen_bool(0.2) {
                line.min_shelf_life = Duration::from_millis(100);
            }
            line
        })
        .collect();
    let mut order = OrderRequest::new(lines);
    order.hold_for = hold_for(rng);
    order
}

/// A reservation id to end: usually one some thread was granted.
fn reservation(rng: &mut StdRng, pool: &Mutex<Vec<ReservationId>>, sku: SkuId) -> ReservationId {
    let granted = pool.lock().unwrap();
    if !granted.is_empty() && rng.gen_bool(0.8) {
        granted[rng.gen_range(0..granted.len())]
    } else {
        ReservationId::new(sku, rng.gen_range(0..=8))
    }
}

/// What one thread read: each SKU's version in its latest snapshot, for
/// its conditional commands.
type Seen = HashMap<SkuId, u64>;

/// An expected version: often the one this thread last saw of the SKU (if
/// it read one), sometimes a literal guess, else none.
fn expected(rng: &mut StdRng, seen: &Seen, sku: SkuId) -> Option<u64> {
    match (seen.get(&sku), rng.gen_range(0..10)) {
        (_, 0) => Some(rng.gen_range(0..6)),
        (Some(&version), 1..6) => Some(version),
        _ => None,
    }
}

fn random_call(
    rng: &mut StdRng,
    skus: &[SkuId],
    pool: &Mutex<Vec<ReservationId>>,
    seen: &Seen,
    thread: usize,
    step: usize,
) -> Call {
    let sku = if rng.gen_bool(0.04) { UNKNOWN_SKU } else { skus[rng.gen_range(0..skus.len())] };
    match rng.gen_range(0..110) {
        roll @ 0..95 => Call::Command(command_on(rng, sku, roll, pool, seen, thread, step)),
        _ => Call::Snapshot(sku),
    }
}

/// The command `roll` (below 95) picks, on `sku`.
fn command_on(
    rng: &mut StdRng,
    sku: SkuId,
    roll: u32,
    pool: &Mutex<Vec<ReservationId>>,
    seen: &Seen,
    thread: usize,
    step: usize,
) -> Command {
    match roll {
        0..22 => Command::Allocate(conditional(rng, seen, sku)),
        22..32 => Command::Take(conditional(rng, seen, sku)),
        32..44 => Command::Release { reservation: reservation(rng, pool, sku) },
        44..56 => Command::Commit {
            reservation: reservation(rng, pool, sku),
            quantity: match rng.gen_range(0..20) {
                0 => Some(0),
                1 => Some(MAX + 1),
                2..11 => None,
                _ => Some(rng.gen_range(1..=4)),
            },
        },
        56..68 => Command::Adjust {
            sku,
            lot: LotId(rng.gen_range(1..=4)),
            delta: match rng.gen_range(0..30) {
                0 => 0,
                1 => i64::MIN,
                2 => -100,
                _ => rng.gen_range(-4..=3),
            },
            reason: REASONS[rng.gen_range(0..REASONS.len())],
            expected_version: expected(rng, seen, sku),
        },
        68..76 => {
            // A fresh lot id, or one that may exist already.
            let id = if rng.gen_bool(0.2) { rng.gen_range(1..=3) } else { (10 + 10 * thread + step) as u64 };
            let quantity = if rng.gen_bool(0.05) { 0 } else { rng.gen_range(1..=6) };
            Command::Receive { sku, lot: new_lot(rng, id, quantity) }
        }
        76..84 => Command::AllocateOrder(order(rng, sku)),
        84..92 => Command::Extend {
            reservation: reservation(rng, pool, sku),
            by: match rng.gen_range(0..10) {
                0 => Duration::ZERO,
                1 => Duration::from_secs(86_400),
                _ => Duration::from_secs(rng.gen_range(1..=5)),
            },
        },
        92..95 => Command::SetLowStock { sku, rule: rng.gen_bool(0.7).then(|| LowStock::new(rng.gen_range(0..10))) },
        _ => unreachable!("rolls are below 95"),
    }
}

/// The reservations a call's result granted.
fn granted(ret: &Return) -> Vec<ReservationId> {
    let outcome = match ret {
        Return::Command(Ok(outcome)) | Return::Keyed(Ok(Keyed { outcome, replay: false, .. })) => outcome,
        _ => return Vec::new(),
    };
    match outcome {
        Outcome::Allocated(allocation) => vec![allocation.reservation],
        Outcome::OrderAllocated(order) => order.reservations().collect(),
        _ => Vec::new(),
    }
}

/// A keyed command the threads of a history share: its key (named after
/// the SKU: a key is only ever sent with commands on one SKU), the command
/// they mostly send with it, and a different one on the same SKU they
/// sometimes send instead (`KeyReused`, unless it got there first).
struct Planned {
    key: IdempotencyKey,
    command: Command,
    other: Command,
}

/// 2–3 keyed commands for a history's threads, drawn like their own
/// commands (before any snapshot read: conditional ones carry a literal
/// version, if any). The other command is drawn until it names the same
/// SKU (ending a reservation from the pool may name another).
fn plan_keyed(rng: &mut StdRng, skus: &[SkuId], pool: &Mutex<Vec<ReservationId>>) -> Vec<Planned> {
    let draw = |rng: &mut StdRng, sku: SkuId, step: usize| {
        let roll = rng.gen_range(0..95);
        command_on(rng, sku, roll, pool, &Seen::new(), THREADS, step)
    };
    (0..rng.gen_range(2..=3))
        .map(|index| {
            let sku = if rng.gen_bool(0.04) { UNKNOWN_SKU } else { skus[rng.gen_range(0..skus.len())] };
            let command = draw(rng, sku, index);
            let sku = Call::Command(command.clone()).sku();
            let other = (0..100)
                .map(|attempt| draw(rng, sku, index + 5 + attempt))
                .find(|other| Call::Command(other.clone()).sku() == sku)
                .unwrap_or(Command::SetLowStock { sku, rule: Some(LowStock::new(99)) });
            let key = IdempotencyKey::new(format!("{sku}/key-{index}")).expect("a short key");
            Planned { key, command, other }
        })
        .collect()
}

/// A keyed call of planned command `planned`: mostly its command, else its
/// other one.
fn keyed_call(rng: &mut StdRng, planned: &Planned) -> Call {
    let command = if rng.gen_bool(0.85) { &planned.command } else { &planned.other };
    Call::Keyed(planned.key.clone(), command.clone())
}

/// A recorded call and the instant the ledger's clock read while it ran.
type Timed = (Call, Timestamp);
type History = Vec<Operation<Timed, Return>>;

/// Waits, busily, until every worker is ready: a barrier that sleeps
/// would wake them one by one, and they would barely overlap.
fn start_together(ready: &AtomicUsize) {
    ready.fetch_add(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) < THREADS {
        // Yield rather than spin: on a busy machine the last worker may be
        // waiting for the very core a spinner holds.
        std::thread::yield_now();
    }
}

/// Records one history against a fresh ledger.
fn record_history(seed: u64) -> (History, Ledger) {
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = Arc::new(ManualClock::new(SETUP));
    let ledger = Ledger::with_clock(clock.clone());
    let recorder: Recorder<Timed, Return> = Recorder::default();
    let pool: Mutex<Vec<ReservationId>> = Mutex::new(Vec::new());
    let mut skus: Vec<SkuId> = SKUS.iter().map(|&(sku, _)| sku).collect();
    skus.truncate(rng.gen_range(2..=3));
    let record = |client: usize, call: Call| {
        recorder.record(client, (call, clock.now()), |(call, _)| {
            let out = run(&ledger, call);
            let granted = granted(&out);
            (out, granted)
        })
    };

    // The sequential setup at `SETUP`, recorded too (its results are checked).
    for &(sku, policy) in &SKUS[..skus.len()] {
        record(MAIN, Call::Command(Command::DefineSku { sku, policy }));
        for lot in 1..=rng.gen_range(2..=3) {
            let quantity = rng.gen_range(2..=8);
            record(MAIN, Call::Command(Command::Receive { sku, lot: new_lot(&mut rng, lot, quantity) }));
        }
    }
    for &sku in &skus {
        for _ in 0..rng.gen_range(0..=2) {
            let mut request = AllocateRequest::new(sku, rng.gen_range(1..=3));
            // Deadlines 11–20 s after `SETUP`: still live at `NOW`.
            request.hold_for = rng.gen_bool(0.5).then(|| Duration::from_secs(rng.gen_range(11..=20)));
            pool.lock().unwrap().extend(record(MAIN, Call::Command(Command::Allocate(request))));
        }
    }

    // The concurrent phase, at `NOW`.
    clock.set(NOW);
    let ready = AtomicUsize::new(0);
    let planned = plan_keyed(&mut rng, &skus, &pool);
    let seeds: Vec<u64> = (0..THREADS).map(|_| rng.r#gen()).collect();
    std::thread::scope(|scope| {
        for (thread, &seed) in seeds.iter().enumerate() {
            let (ledger, recorder, pool, ready, skus, planned) = (&ledger, &recorder, &pool, &ready, &skus, &planned);
            scope.spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed);
                let steps = rng.gen_range(6..=10);
                let mut seen = Seen::new();
                start_together(ready);
                for step in 0..steps {
                    // Every thread sends the first planned key first, at
                    // once: racing duplicates (and the odd different
                    // command). Later, planned keys now and then.
                    let call = if step == 0 {
                        keyed_call(&mut rng, &planned[0])
                    } else if rng.gen_bool(0.15) {
                        let which = rng.gen_range(0..planned.len());
                        keyed_call(&mut rng, &planned[which])
                    } else {
                        random_call(&mut rng, skus, pool, &seen, thread, step)
                    };
                    // Sometimes yield inside the recorded window: the
                    // interval widens, other threads' operations land inside
                    // it, and the checker has more orders to choose from.
                    let pause = rng.gen_bool(0.15);
                    let (granted, version) = recorder.record(thread, (call, NOW), |(call, _)| {
                        if pause {
                            std::thread::yield_now();
                        }
                        let out = run(ledger, call);
                        let version = match (call, &out) {
                            (Call::Snapshot(sku), Return::Snapshot(Some(data))) => Some((*sku, data.version)),
                            _ => None,
                        };
                        let granted = granted(&out);
                        (out, (granted, version))
                    });
                    pool.lock().unwrap().extend(granted);
                    seen.extend(version);
                    if rng.gen_bool(0.25) {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });

    // Final reads, after every thread returned.
    for &sku in &skus {
        record(MAIN, Call::Snapshot(sku));
    }
    (recorder.into_history(), ledger)
}

// ---------------------------------------------------------------------------
// Checking.

#[derive(Default)]
struct Stats {
    histories: u64,
    parts: u64,
    operations: u64,
    overlapping: u64,
    contended: u64,
    max_steps: u64,
    total_steps: u64,
    unknown: u64,
    violations: u64,
    /// Keyed calls: that ran, that were replays, that got `KeyReused`.
    keyed_ran: u64,
    keyed_replays: u64,
    keyed_reused: u64,
    /// Replays whose call overlapped the call that ran (racing duplicates).
    keyed_racing_replays: u64,
    reports: Vec<String>,
}

/// A keyed call's answer: `Some(true)` if the command ran (this call
/// claimed the key), `Some(false)` for a replay, `None` for `KeyReused`
/// (or not a keyed call).
fn keyed_ran(ret: &Return) -> Option<bool> {
    match ret {
        Return::Keyed(Ok(Keyed { replay, .. }) | Err(KeyedError::Refused { replay, .. })) => Some(!replay),
        _ => None,
    }
}

/// Checks the `KeyReused` answers of a history on top of the
/// linearizability search (which checks them too, against the reference):
/// some call with the same key and a different command claimed the key (it
/// ran) and was called before this one returned, and `field` names the
/// first field in which they differ. (No key is forgotten within a
/// history.)
fn check_reused(history: &History, stats: &mut Stats) -> Vec<String> {
    let mut problems = Vec::new();
    let reused =
        history.iter().filter(|operation| matches!(operation.out, Return::Keyed(Err(KeyedError::KeyReused { .. }))));
    let rest = history;
    for operation in reused {
        stats.keyed_reused += 1;
        let (Call::Keyed(key, command), Return::Keyed(Err(KeyedError::KeyReused { key: answered, field }))) =
            (&operation.op.0, &operation.out)
        else {
            unreachable!("partitioned on KeyReused")
        };
        let claimed = rest.iter().any(|first| match (&first.op.0, keyed_ran(&first.out)) {
            (Call::Keyed(first_key, first_command), Some(true)) => {
                first_key == key
                    && first.call < operation.ret
                    && first_command.first_difference(command) == Some(field.as_str())
            }
            _ => false,
        });
        if answered != key || !claimed {
            problems.push(format!(
                "KeyReused answered to client {} [{} .. {}] for {key} with {command:?} (field {field:?}), but no call \
                 with that key and a command differing first in that field claimed the key before it returned",
                operation.client, operation.call, operation.ret
            ));
        }
    }
    problems
}

/// Checks one SKU's history against the sequential `S`.
fn check_part<S: SequentialSpec>(part: &[Operation<Op, Return>]) -> (Verdict, bool) {
    let model: LedgerModel<S> = LedgerModel::new(part.iter().map(|operation| &operation.op));
    let verdict = check(&model, part, BUDGET);
    let replayed = match &verdict {
        Verdict::Linearizable { order, .. } => {
            let fresh: LedgerModel<S> = LedgerModel::new(part.iter().map(|operation| &operation.op));
            replays(&fresh, part, order)
        }
        _ => false,
    };
    (verdict, replayed)
}

fn check_history(seed: u64, history: History, stats: &mut Stats) {
    stats.histories += 1;
    let reused_problems = check_reused(&history, stats);
    if !reused_problems.is_empty() {
        stats.violations += reused_problems.len() as u64;
        for problem in reused_problems {
            if stats.reports.len() < 3 {
                stats.reports.push(format!("history seed {seed:#x}: {problem}"));
            }
        }
    }
    for operation in &history {
        match keyed_ran(&operation.out) {
            Some(true) => stats.keyed_ran += 1,
            Some(false) => {
                stats.keyed_replays += 1;
                let racing = history.iter().any(|first| {
                    first.op.0 == operation.op.0
                        && keyed_ran(&first.out) == Some(true)
                        && first.call < operation.ret
                        && operation.call < first.ret
                });
                stats.keyed_racing_replays += u64::from(racing);
            }
            None => {}
        }
    }
    let before = history.len();
    let history: History = history.into_iter().filter(|operation| !contended(&operation.out)).collect();
    stats.contended += (before - history.len()) as u64;
    for (sku, part) in partition(history, |(call, _)| call.sku()) {
        let part: Vec<Operation<Op, Return>> = part
            .into_iter()
            .enumerate()
            .map(|(index, operation)| Operation {
                client: operation.client,
                call: operation.call,
                ret: operation.ret,
                op: Op { index: index as u32, call: operation.op.0, at: operation.op.1 },
                out: operation.out,
            })
            .collect();
        stats.parts += 1;
        stats.operations += part.len() as u64;
        stats.overlapping += overlapping_pairs(&part) as u64;
        let (verdict, replayed) = check_part::<ReferenceLedger>(&part);
        stats.max_steps = stats.max_steps.max(verdict.steps());
        stats.total_steps += verdict.steps();
        let problem = match &verdict {
            Verdict::Linearizable { .. } if replayed => continue,
            Verdict::Linearizable { order, .. } => {
                stats.violations += 1;
                format!("the witness does not replay (a checker bug)\n{}", render(&part, order))
            }
            Verdict::Unknown { steps } => {
                stats.unknown += 1;
                format!("UNKNOWN: over the budget of {steps} model steps\n{}", render(&part, &[]))
            }
            Verdict::Violation { longest, .. } => {
                stats.violations += 1;
                // Is it a concurrency bug, or the real ledger disagreeing
                // with the reference even one command at a time?
                let own = match check_part::<RealSpec>(&part).0 {
                    Verdict::Linearizable { .. } => {
                        "linearizable against the real ledger run sequentially: a sequential disagreement \
                         with the reference"
                    }
                    Verdict::Violation { .. } => "not linearizable against the real ledger run sequentially either",
                    Verdict::Unknown { .. } => "unknown against the real ledger run sequentially",
                };
                format!(
                    "NOT LINEARIZABLE ({own}); longest linearizable prefix: {} of {} operations\n{}",
                    longest.len(),
                    part.len(),
                    render(&part, longest)
                )
            }
        };
        if stats.reports.len() < 3 {
            stats.reports.push(format!("history seed {seed:#x}, {sku}: {problem}"));
        }
    }
}

#[test]
fn concurrent_histories_are_linearizable_against_the_reference() {
    let histories = env_u64("STOCKROOM_LIN_HISTORIES").unwrap_or(1_000);
    let seed = env_u64("STOCKROOM_LIN_SEED").unwrap_or_else(|| rand::thread_rng().r#gen());
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut unclean = 0;
    for round in 0..histories {
        let history_seed = seed.wrapping_add(round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (history, ledger) = record_history(history_seed);
        if !ledger.audit().is_clean() {
            unclean += 1;
        }
        check_history(history_seed, history, &mut stats);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "linearizability: seed {seed:#x}: {} histories ({} SKU parts, {} operations, {} overlapping pairs, {} \
         contended dropped; keyed: {} ran, {} replays ({} racing the call that ran), {} KeyReused) in {elapsed:.2?}; \
         model steps max {} / total {}; {} unknown, {} violations, {} unclean audits",
        stats.histories,
        stats.parts,
        stats.operations,
        stats.overlapping,
        stats.contended,
        stats.keyed_ran,
        stats.keyed_replays,
        stats.keyed_racing_replays,
        stats.keyed_reused,
        stats.max_steps,
        stats.total_steps,
        stats.unknown,
        stats.violations,
        unclean,
    );
    for report in &stats.reports {
        eprintln!("{report}");
    }
    assert!(stats.overlapping > 0, "the threads never overlapped: nothing concurrent was checked");
    assert!(stats.keyed_racing_replays > 0, "no replay raced the call that ran: racing duplicates went unchecked");
    assert_eq!(
        (stats.violations, stats.unknown, unclean),
        (0, 0, 0),
        "violations, unknown (over budget) histories, unclean audits (seed {seed:#x}; reports above)"
    );
}

/// The checker on the real ledger catches a history no sequential order
/// explains: two allocations claiming the same reservation id and version
/// (what a lost update would produce).
#[test]
fn a_forged_lost_update_is_caught() {
    // Two sequential allocations of the same SKU after the setup...
    let sku = SkuId(1);
    let ledger = Ledger::with_clock(Arc::new(ManualClock::new(NOW)));
    let recorder: Recorder<Timed, Return> = Recorder::default();
    let calls = [
        Call::Command(Command::DefineSku { sku, policy: AllocationPolicy::Fifo }),
        Call::Command(Command::Receive { sku, lot: NewLot::new(LotId(1), 10) }),
        Call::Command(Command::Allocate(AllocateRequest::new(sku, 2))),
        Call::Command(Command::Allocate(AllocateRequest::new(sku, 3))),
    ];
    for call in calls {
        recorder.record(0, (call, NOW), |(call, _)| (run(&ledger, call), ()));
    }
    let mut forged = recorder.into_history();
    // ... and as recorded they are fine,
    let mut stats = Stats::default();
    check_history(1, forged.clone(), &mut stats);
    assert_eq!((stats.violations, stats.unknown), (0, 0), "{:?}", stats.reports);
    // but if the second had been derived from the same version as the first
    // (overlapping it, same reservation id and version), no order explains it.
    let Return::Command(Ok(Outcome::Allocated(first))) = forged[2].out.clone() else { panic!("allocation refused") };
    let Return::Command(Ok(Outcome::Allocated(second))) = &mut forged[3].out else { panic!("allocation refused") };
    second.reservation = first.reservation;
    second.version = first.version;
    forged[3].call = forged[2].call;
    check_history(2, forged, &mut stats);
    assert_eq!(stats.violations, 1, "{:?}", stats.reports);
    assert!(stats.reports[0].contains("NOT LINEARIZABLE"), "{:?}", stats.reports);
}
