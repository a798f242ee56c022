//! Randomized schedules beyond loom's reach: shuttle drives 4 to 8 threads
//! through the ledger's whole command API (and its queries) and checks, at
//! the end of every schedule, that nothing was oversold, lost, invented or
//! ended twice.
//!
//! What this file proves, for each schedule shuttle tries (no more: shuttle
//! samples schedules, it does not enumerate them like the loom models in
//! `src/cell/loom.rs`, which in exchange only afford two threads):
//!
//! - **Linearizability, checked against the reference ledger**: the
//!   successful commands of each SKU carry versions that are unique and
//!   exactly `setup + 1 ..= final` (no gap, no duplicate), increasing in
//!   each thread's program order; replayed in version order through the
//!   independent reference ledger (`tests/common/reference.rs`), each gives
//!   exactly the outcome the real ledger gave (lines, lots, FEFO order,
//!   shortfalls, versions), and the final snapshots are equal. Every refusal
//!   is one the reference also gives at some version the refused command
//!   could have linearized at (between the thread's neighbouring successes
//!   on that SKU).
//! - **The invariants**: a clean `audit()` (conservation per lot, held
//!   against holds, totals) and, per lot, `held + committed <= received +
//!   adjusted`.
//! - **Each scenario's exact counts** (see their doc comments).
//!
//! Under the crate's `stockroom_shuttle` cfg every atomic is shuttle's and
//! the snapshot cell is a shuttle mutex around the `Arc` (see `src/sync.rs`),
//! so every load and every compare-and-swap is a point where shuttle may
//! switch threads; the CAS backoff is a yield. Each scenario runs under
//! shuttle's random scheduler (what `shuttle::check_random` runs) and its
//! PCT scheduler at depth 3 (what `shuttle::check_pct` runs), each for
//! `STOCKROOM_SHUTTLE_ITERATIONS` schedules (default 10,000). Shuttle
//! models every atomic ordering as SeqCst, so weak-memory reorderings are
//! not what this file checks (the loom models are); what it checks is the
//! logic built on the cell's sequentially consistent contract, with many
//! more threads and commands than loom can enumerate.
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_shuttle" CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/shuttle --test shuttle -- --nocapture
//! ```
//!
//! A failure prints shuttle's failing schedule, then the command that
//! replays exactly that schedule (`STOCKROOM_SHUTTLE_REPLAY`, handed to
//! shuttle's replay scheduler, as `shuttle::replay` does). Without the cfg
//! this file compiles to an empty test crate.
#![cfg(stockroom_shuttle)]

mod common;

use common::reference::ReferenceLedger;
use shuttle::rand::{Rng, thread_rng};
use shuttle::scheduler::{PctScheduler, RandomScheduler, ReplayScheduler};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockroom::{
    AdjustmentReason, AllocateError, AllocateRequest, AllocationPolicy, Command, CommandError, CommitError, FillMode,
    Ledger, LotId, ManualClock, NewLot, Outcome, ReleaseError, ReservationId, SkuId, Timestamp,
};

/// Schedules per scenario and scheduler when `STOCKROOM_SHUTTLE_ITERATIONS`
/// is not set.
const ITERATIONS_DEFAULT: usize = 10_000;

/// PCT's bug depth: schedules are sampled to hit any bug that needs up to
/// `depth - 1` badly placed preemptions with a guaranteed probability.
const PCT_DEPTH: usize = 3;

/// `<test name>:<schedule>` replays that one schedule instead of exploring.
const REPLAY_VAR: &str = "STOCKROOM_SHUTTLE_REPLAY";

/// The instant the ledger's manual clock reads throughout.
const NOW: u64 = 10;

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// Which of shuttle's randomized schedulers explores the scenario.
#[derive(Clone, Copy, Debug)]
enum Scheduler {
    /// A uniformly random runnable thread at every scheduling point.
    Random,
    /// Probabilistic concurrency testing, depth [`PCT_DEPTH`].
    Pct,
}

fn iterations() -> usize {
    match std::env::var("STOCKROOM_SHUTTLE_ITERATIONS") {
        Ok(value) => value.trim().parse().expect("STOCKROOM_SHUTTLE_ITERATIONS: a number of schedules"),
        Err(_) => ITERATIONS_DEFAULT,
    }
}

/// Failing schedules are printed (shuttle's default, made explicit: the
/// harness's replay instructions rely on it).
fn config() -> shuttle::Config {
    let mut config = shuttle::Config::new();
    config.failure_persistence = shuttle::FailurePersistence::Print;
    // Shuttle treats every ordering as SeqCst (see the file docs); its
    // warning would only repeat that once per test.
    config.silence_warnings = true;
    config
}

/// Runs `scenario` under `scheduler` for [`iterations`] schedules and
/// prints how many ran and how long it took. If a schedule fails, shuttle
/// prints it (its panic hook, `FailurePersistence::Print`); this adds the
/// exact command that replays it, then fails the test with the original
/// panic.
///
/// With `STOCKROOM_SHUTTLE_REPLAY=<test>:<schedule>` set, the test named
/// `<test>` replays that schedule once instead (what `shuttle::replay`
/// does, with this file's config), and every other test skips.
fn explore(test: &str, scheduler: Scheduler, scenario: fn()) {
    if let Ok(replay) = std::env::var(REPLAY_VAR) {
        let (target, schedule) = replay
            .trim()
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{REPLAY_VAR} must be `<test name>:<schedule>`, got {replay:?}"));
        if target != test {
            eprintln!("shuttle {test}: skipped ({REPLAY_VAR} replays {target})");
            return;
        }
        eprintln!("shuttle {test}: replaying the given schedule");
        let schedule = ReplayScheduler::new_from_encoded(schedule.trim().trim_matches('"'));
        shuttle::Runner::new(schedule, config()).run(scenario);
        eprintln!("shuttle {test}: the schedule passed");
        return;
    }

    let iterations = iterations();
    let config = config();
    let started = Instant::now();
    let explored = catch_unwind(AssertUnwindSafe(|| match scheduler {
        Scheduler::Random => shuttle::Runner::new(RandomScheduler::new(iterations), config).run(scenario),
        Scheduler::Pct => shuttle::Runner::new(PctScheduler::new(PCT_DEPTH, iterations), config).run(scenario),
    }));
    match explored {
        Ok(explored) => {
            eprintln!("shuttle {test}: {explored} schedules ({scheduler:?}) in {:.2?}", started.elapsed());
            assert_eq!(explored, iterations, "{test}: shuttle ran fewer schedules than asked");
        }
        Err(panic) => {
            eprintln!(
                "\nshuttle {test}: a {scheduler:?} schedule failed (after {:.2?}). To replay exactly that schedule, \
                 put the `failing schedule` string printed above (without its quotes) after `{test}:` and run:\n\n  \
                 {REPLAY_VAR}='{test}:<failing schedule>' RUSTFLAGS=\"--cfg stockroom_shuttle\" \
                 CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true cargo test --release --target-dir target/shuttle \
                 --test shuttle -- --exact {test} --nocapture\n",
                started.elapsed()
            );
            resume_unwind(panic);
        }
    }
}

/// One test per scheduler for a scenario function: `<scenario>::random`
/// and `<scenario>::pct`.
macro_rules! scenario {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn random() {
                super::explore(concat!(stringify!($scenario), "::random"), super::Scheduler::Random, super::$scenario);
            }

            #[test]
            fn pct() {
                super::explore(concat!(stringify!($scenario), "::pct"), super::Scheduler::Pct, super::$scenario);
            }
        }
    };
}

scenario!(flash_sale);
scenario!(lifecycle);
scenario!(perishables_lite);
scenario!(mixed_commands);

// ---------------------------------------------------------------------------
// Histories and the checks every scenario ends with
// ---------------------------------------------------------------------------

/// A racing thread: given its steps so far, its next command (`None` when
/// it is done).
type Racer = Box<dyn FnMut(&[Step]) -> Option<Command> + Send>;

/// One command a thread ran, and what it got.
#[derive(Clone, Debug)]
struct Step {
    command: Command,
    result: Result<Outcome, CommandError>,
}

/// A fresh ledger on a manual clock reading [`NOW`], with `setup` applied
/// (each command must succeed).
fn ledger_with(setup: &[Command]) -> Arc<Ledger> {
    let ledger = Ledger::with_clock(Arc::new(ManualClock::new(Timestamp(NOW))));
    for command in setup {
        ledger.execute(command).unwrap_or_else(|error| panic!("setup {command:?}: {error}"));
    }
    Arc::new(ledger)
}

/// Runs each thread's commands on its own shuttle thread, in order, and
/// returns every thread's steps. A thread may compute a command from its
/// earlier steps (`next` gets them), or return `None` when done.
fn run_threads(ledger: &Arc<Ledger>, threads: Vec<Racer>) -> Vec<Vec<Step>> {
    let handles: Vec<_> = threads
        .into_iter()
        .map(|mut next| {
            let ledger = Arc::clone(ledger);
            shuttle::thread::spawn(move || {
                let mut steps = Vec::new();
                while let Some(command) = next(&steps) {
                    let result = ledger.execute(&command);
                    steps.push(Step { command, result });
                }
                steps
            })
        })
        .collect();
    handles.into_iter().map(|handle| handle.join().expect("a racer panicked")).collect()
}

/// A thread running a fixed list of commands.
fn script(commands: Vec<Command>) -> Racer {
    let mut commands = commands.into_iter();
    Box::new(move |_| commands.next())
}

/// The version an outcome published.
fn version_of(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::SkuDefined(o) => o.version,
        Outcome::Received(o) => o.version,
        Outcome::Allocated(o) => o.version,
        Outcome::Sold(o) => o.version,
        Outcome::Released(o) => o.version,
        Outcome::Committed(o) => o.version,
        Outcome::Adjusted(o) => o.version,
    }
}

/// A refused command, and the versions it could have linearized at.
struct Refusal<'a> {
    thread: usize,
    step: &'a Step,
    error: &'a CommandError,
    /// At or after the thread's previous success on the SKU.
    from: u64,
    /// Before the thread's next success on the SKU.
    to: u64,
    explained: bool,
}

/// The checks every scenario ends with (see the file docs): versions
/// unique, gap-free and in program order per SKU; every success replayed
/// in version order through the reference ledger gives the same outcome;
/// every refusal is one the reference gives at a version it could have
/// linearized at; equal final snapshots; a clean audit; no lot oversold.
fn check_history(ledger: &Ledger, setup: &[Command], threads: &[Vec<Step>]) {
    let reference = ReferenceLedger::new();
    let now = Timestamp(NOW);
    for command in setup {
        reference.execute(command, now).unwrap_or_else(|error| panic!("reference setup {command:?}: {error}"));
    }
    let skus = reference.skus();
    let start: BTreeMap<SkuId, u64> =
        skus.iter().map(|&sku| (sku, reference.snapshot(sku).expect("defined in setup").version)).collect();
    let end: BTreeMap<SkuId, u64> =
        skus.iter().map(|&sku| (sku, ledger.snapshot(sku).expect("defined in setup").version())).collect();

    // Versions: unique per SKU, increasing in each thread's program order.
    let mut published: BTreeMap<(SkuId, u64), (usize, &Step)> = BTreeMap::new();
    let mut refusals = Vec::new();
    for (thread, steps) in threads.iter().enumerate() {
        for (index, step) in steps.iter().enumerate() {
            let sku = step.command.sku();
            let successes_on_sku = |range: &mut dyn Iterator<Item = &Step>| -> Vec<u64> {
                range
                    .filter(|other| other.command.sku() == sku)
                    .filter_map(|other| other.result.as_ref().ok().map(version_of))
                    .collect()
            };
            match &step.result {
                Ok(outcome) => {
                    let version = version_of(outcome);
                    if let Some((other, first)) = published.insert((sku, version), (thread, step)) {
                        panic!(
                            "{sku} version {version} published twice: thread {other} {first:?} and thread {thread} {step:?}"
                        );
                    }
                    let earlier = successes_on_sku(&mut steps[..index].iter());
                    if let Some(&last) = earlier.last() {
                        assert!(last < version, "thread {thread}: {sku} version {version} after its own {last}");
                    }
                }
                Err(error) => {
                    let from = successes_on_sku(&mut steps[..index].iter()).last().copied().unwrap_or(start[&sku]);
                    let to =
                        successes_on_sku(&mut steps[index + 1..].iter()).first().map_or(end[&sku], |next| next - 1);
                    refusals.push(Refusal { thread, step, error, from, to, explained: false });
                }
            }
        }
    }
    for &sku in &skus {
        let versions: Vec<u64> = published.range((sku, 0)..=(sku, u64::MAX)).map(|(&(_, v), _)| v).collect();
        let expected: Vec<u64> = (start[&sku] + 1..=end[&sku]).collect();
        assert_eq!(versions, expected, "{sku}: the successes' versions are not exactly the versions published");
    }

    // Replay in version order; explain each refusal at some version of its
    // window. A trial that succeeds changes the reference, which is then
    // rebuilt up to the version being tried; `may_succeed` spares most of
    // those trials.
    let mut reference = reference;
    for &sku in &skus {
        for version in start[&sku]..=end[&sku] {
            for refusal in refusals.iter_mut().filter(|r| !r.explained && r.step.command.sku() == sku) {
                if !(refusal.from..=refusal.to).contains(&version) || may_succeed(&reference, &refusal.step.command) {
                    continue;
                }
                match reference.execute(&refusal.step.command, now) {
                    Err(error) => refusal.explained = error == *refusal.error,
                    Ok(_) => reference = rebuild(setup, &published, sku, start[&sku], version),
                }
            }
            if version < end[&sku] {
                let (thread, step) = published[&(sku, version + 1)];
                let expected = reference.execute(&step.command, now);
                assert_eq!(
                    step.result,
                    expected,
                    "{sku} version {}: thread {thread} ran {:?}; the reference replaying in version order disagrees",
                    version + 1,
                    step.command
                );
            }
        }
        let data = ledger.snapshot(sku).expect("defined").to_data();
        assert_eq!(Some(data), reference.snapshot(sku), "{sku}: final state differs from the reference's");
    }
    if let Some(refusal) = refusals.iter().find(|r| !r.explained) {
        panic!(
            "thread {} was refused {:?} for {:?}, which the reference gives at none of versions {}..={}",
            refusal.thread, refusal.error, refusal.step.command, refusal.from, refusal.to
        );
    }

    assert_sound(ledger);
}

/// A reference ledger after `setup` and `sku`'s successes up to `version`.
fn rebuild(
    setup: &[Command],
    published: &BTreeMap<(SkuId, u64), (usize, &Step)>,
    sku: SkuId,
    start: u64,
    version: u64,
) -> ReferenceLedger {
    let reference = ReferenceLedger::new();
    let now = Timestamp(NOW);
    for command in setup {
        reference.execute(command, now).expect("setup replayed once already");
    }
    for v in start + 1..=version {
        reference.execute(&published[&(sku, v)].1.command, now).expect("replayed once already");
    }
    reference
}

/// True only if `command` is sure to succeed against `reference`'s current
/// state (so trying it there cannot explain a refusal). Conservative: when
/// unsure, false, and the trial decides.
fn may_succeed(reference: &ReferenceLedger, command: &Command) -> bool {
    let now = Timestamp(NOW);
    match command {
        Command::Allocate(request) | Command::Take(request) => {
            let available = reference.available(request.sku, now, request.min_shelf_life).map_or(0, |q| q.get());
            match request.fill {
                FillMode::FillOrKill => request.quantity > 0 && available >= request.quantity,
                FillMode::Partial => request.quantity > 0 && available > 0,
            }
        }
        Command::Release { reservation } => reference.reservation(*reservation).is_ok(),
        Command::Commit { reservation, quantity } => reference
            .reservation(*reservation)
            .is_ok_and(|live| quantity.is_none_or(|units| units > 0 && units <= live.held().get())),
        Command::Adjust { sku, lot, delta, .. } => reference.snapshot(*sku).is_some_and(|data| {
            data.lots.iter().any(|known| {
                known.id == *lot
                    && *delta != 0
                    && ((1..=1_000).contains(delta) || delta.unsigned_abs() <= known.quantities.on_hand())
            })
        }),
        Command::Receive { .. } | Command::DefineSku { .. } => false,
    }
}

/// A clean audit, and no lot with more held or sold than it ever had.
fn assert_sound(ledger: &Ledger) {
    let report = ledger.audit();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
    for sku in ledger.skus() {
        for lot in ledger.snapshot(sku).expect("listed").lots() {
            let q = lot.quantities;
            let stock = i128::from(q.received.get()) + i128::from(q.adjusted);
            let out = i128::from(q.held.get()) + i128::from(q.committed.get());
            assert!(out <= stock, "{sku} {}: oversold: {q:?}", lot.id);
        }
    }
}

fn define(sku: SkuId, policy: AllocationPolicy) -> Command {
    Command::DefineSku { sku, policy }
}

fn receive(sku: SkuId, lot: u64, units: u64, expires_at: Option<u64>) -> Command {
    let mut new_lot = NewLot::new(LotId(lot), units).received_at(Timestamp(lot));
    if let Some(expiry) = expires_at {
        new_lot = new_lot.expires_at(Timestamp(expiry));
    }
    Command::Receive { sku, lot: new_lot }
}

fn allocate(request: AllocateRequest) -> Command {
    Command::Allocate(request)
}

fn take(request: AllocateRequest) -> Command {
    Command::Take(request)
}

fn release(sku: SkuId, seq: u64) -> Command {
    Command::Release { reservation: ReservationId { sku, seq } }
}

fn commit(sku: SkuId, seq: u64, quantity: Option<u64>) -> Command {
    Command::Commit { reservation: ReservationId { sku, seq }, quantity }
}

fn adjust(sku: SkuId, lot: u64, delta: i64, reason: AdjustmentReason) -> Command {
    Command::Adjust { sku, lot: LotId(lot), delta, reason }
}

fn all_steps(threads: &[Vec<Step>]) -> impl Iterator<Item = &Step> {
    threads.iter().flatten()
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// Race: 8 buyers, each making two sales (even buyers 1 unit fill-or-kill,
/// odd buyers up to 2 units partial), 24 units of demand for the 5
/// eligible units of a FEFO SKU spread over two lots (lot 2 expires at
/// 100, lot 1 at 200), beside a 4-unit lot that expired at 5.
///
/// Asserts: units sold == min(stock, demand) == 5 exactly (every request
/// can be filled by any unit, so a refusal only happens once sold out);
/// every refusal is `Insufficient { available: 0 }`; sales publish
/// consecutive versions; the expiring-first lot 2 is sold out before lot 1
/// is touched (FEFO, via the reference replay); the expired lot is
/// untouched; plus the common checks.
fn flash_sale() {
    const SKU: SkuId = SkuId(1);
    const BUYERS: u64 = 8;
    let setup = [
        define(SKU, AllocationPolicy::Fefo),
        receive(SKU, 1, 3, Some(200)),
        receive(SKU, 2, 2, Some(100)),
        receive(SKU, 3, 4, Some(5)),
    ];
    let ledger = ledger_with(&setup);
    let buyers = (0..BUYERS)
        .map(|buyer| {
            let request = if buyer % 2 == 0 {
                AllocateRequest::new(SKU, 1)
            } else {
                AllocateRequest::new(SKU, 2).fill(FillMode::Partial)
            };
            script(vec![take(request.clone()), take(request)])
        })
        .collect();
    let threads = run_threads(&ledger, buyers);
    check_history(&ledger, &setup, &threads);

    let stock = 5;
    let demand: u64 = (0..BUYERS).map(|buyer| 2 * (1 + buyer % 2)).sum();
    let mut sold = 0;
    for step in all_steps(&threads) {
        match &step.result {
            Ok(Outcome::Sold(sale)) => sold += sale.quantity().get(),
            Err(CommandError::Allocate(AllocateError::Insufficient { available, .. })) => {
                assert!(available.is_zero(), "refused while {available} units were left: {step:?}")
            }
            other => panic!("a take got {other:?}"),
        }
    }
    assert_eq!(sold, stock.min(demand), "sold {sold} of {stock} units to {demand} units of demand");
    let snapshot = ledger.snapshot(SKU).expect("defined");
    let lot = |id| snapshot.lot(LotId(id)).expect("received").quantities;
    assert_eq!((lot(1).available.get(), lot(1).committed.get()), (0, 3));
    assert_eq!((lot(2).available.get(), lot(2).committed.get()), (0, 2));
    assert_eq!((lot(3).available.get(), lot(3).committed.get()), (4, 0), "the expired lot was sold from");
}

/// Race: 3 allocators each hold 2 of a FIFO SKU's 8 units (two 4-unit
/// lots) and then end their own reservation (commit all, release, commit
/// 1), while 3 racers try to end reservations 1, 2 and 3 themselves, each
/// in its own order and with its own mix of release, full commit and
/// partial commit.
///
/// Asserts: every allocation is granted (seqs exactly 1, 2, 3); every
/// reservation ends exactly once (exactly one successful release or commit
/// per id; every other attempt is `Ended`, or `UnknownReservation` when it
/// ran before the id was issued); nothing stays held; no unit is lost:
/// available + committed == 8 and committed == the sum of every commit's
/// committed lines; plus the common checks.
fn lifecycle() {
    const SKU: SkuId = SkuId(2);
    let setup = [define(SKU, AllocationPolicy::Fifo), receive(SKU, 1, 4, None), receive(SKU, 2, 4, None)];
    let ledger = ledger_with(&setup);
    let mut threads: Vec<Racer> = Vec::new();
    for allocator in 0..3 {
        threads.push(Box::new(move |steps: &[Step]| match steps {
            [] => Some(allocate(AllocateRequest::new(SKU, 2))),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => Some(match allocator {
                0 => Command::Commit { reservation: hold.reservation, quantity: None },
                1 => Command::Release { reservation: hold.reservation },
                _ => Command::Commit { reservation: hold.reservation, quantity: Some(1) },
            }),
            _ => None,
        }));
    }
    threads.push(script(vec![release(SKU, 1), commit(SKU, 2, None), release(SKU, 3)]));
    threads.push(script(vec![commit(SKU, 3, Some(1)), release(SKU, 2), commit(SKU, 1, None)]));
    threads.push(script(vec![release(SKU, 2), commit(SKU, 1, Some(2)), commit(SKU, 3, None)]));
    let threads = run_threads(&ledger, threads);
    check_history(&ledger, &setup, &threads);

    let mut issued = BTreeSet::new();
    let mut ends: BTreeMap<u64, usize> = BTreeMap::new();
    let mut committed = 0;
    for step in all_steps(&threads) {
        match (&step.command, &step.result) {
            (Command::Allocate(_), Ok(Outcome::Allocated(hold))) => assert!(issued.insert(hold.reservation.seq)),
            (Command::Allocate(_), Err(error)) => panic!("8 units cover 3 holds of 2, yet: {error}"),
            (_, Ok(Outcome::Released(released))) => *ends.entry(released.reservation.seq).or_default() += 1,
            (_, Ok(Outcome::Committed(done))) => {
                *ends.entry(done.reservation.seq).or_default() += 1;
                committed += done.committed.iter().map(|line| line.quantity.get()).sum::<u64>();
            }
            (_, Err(CommandError::Release(ReleaseError::Ended { .. } | ReleaseError::UnknownReservation { .. })))
            | (_, Err(CommandError::Commit(CommitError::Ended { .. } | CommitError::UnknownReservation { .. }))) => {}
            (command, result) => panic!("unexpected {command:?} -> {result:?}"),
        }
    }
    assert_eq!(issued, BTreeSet::from([1, 2, 3]));
    assert_eq!(ends, BTreeMap::from([(1, 1), (2, 1), (3, 1)]), "a reservation did not end exactly once");
    let totals = ledger.snapshot(SKU).expect("defined").totals();
    assert_eq!(ledger.snapshot(SKU).expect("defined").reservation_count(), 0);
    assert_eq!(totals.held.get(), 0);
    assert_eq!(totals.committed.get(), committed);
    assert_eq!(totals.available.get() + totals.committed.get(), 8, "a unit was lost: {totals:?}");
}

/// Race: 3 FEFO allocations spanning lots (7 fill-or-kill; 6 partial; 4
/// fill-or-kill needing 60 ms of shelf life) against 2 chaos threads
/// adjusting the oldest lots (lot 2, expiring at 50: -4 spoilage then +1
/// recount; lot 1, at 100: -3 damage) and writing off a lot that expired at
/// 5, beside lot 3 (at 200) and lot 4 (no expiry), 5 units each.
///
/// Asserts: every adjustment is applied (reality is never refused: no
/// shrink exceeds what is on hand); each allocation's lines run in FEFO
/// order over eligible lots only (never the expired lot, never lot 2 for
/// the shelf-life request); every unit an adjustment took from a hold is
/// accounted: per reservation, the shortfalls naming it add up to its
/// `shorted`, and `held == granted - shorted`; per lot, `held` is the sum of
/// the live holds' lines on it; final adjustments are exact (lot 2: -3,
/// lot 1: -3, the expired lot written off); plus the common checks (the
/// reference replay pins every line and every shortfall).
fn perishables_lite() {
    const SKU: SkuId = SkuId(3);
    let setup = [
        define(SKU, AllocationPolicy::Fefo),
        receive(SKU, 1, 5, Some(100)),
        receive(SKU, 2, 5, Some(50)),
        receive(SKU, 3, 5, Some(200)),
        receive(SKU, 4, 5, None),
        receive(SKU, 9, 6, Some(5)),
    ];
    let ledger = ledger_with(&setup);
    let threads = vec![
        script(vec![allocate(AllocateRequest::new(SKU, 7))]),
        script(vec![allocate(AllocateRequest::new(SKU, 6).fill(FillMode::Partial))]),
        script(vec![allocate(AllocateRequest::new(SKU, 4).min_shelf_life(Duration::from_millis(60)))]),
        script(vec![adjust(SKU, 2, -4, AdjustmentReason::Spoilage), adjust(SKU, 2, 1, AdjustmentReason::Recount)]),
        script(vec![adjust(SKU, 1, -3, AdjustmentReason::Damage), adjust(SKU, 9, -6, AdjustmentReason::Expiry)]),
    ];
    let threads = run_threads(&ledger, threads);
    check_history(&ledger, &setup, &threads);

    // FEFO rank of each lot; the expired lot 9 has none.
    let rank = |lot: LotId| [2, 1, 3, 4].iter().position(|&id| LotId(id) == lot);
    let mut shorted: BTreeMap<ReservationId, u64> = BTreeMap::new();
    let mut holds = Vec::new();
    for step in all_steps(&threads) {
        match (&step.command, &step.result) {
            (Command::Allocate(request), Ok(Outcome::Allocated(hold))) => {
                let ranks: Vec<_> =
                    hold.lines.iter().map(|line| rank(line.lot).expect("drawn from the expired lot")).collect();
                assert!(ranks.windows(2).all(|pair| pair[0] < pair[1]), "not FEFO: {hold:?}");
                if !request.min_shelf_life.is_zero() {
                    assert!(hold.lines.iter().all(|line| line.lot != LotId(2)), "lot 2 expires too soon: {hold:?}");
                }
                holds.push(hold.clone());
            }
            (Command::Allocate(_), Err(CommandError::Allocate(AllocateError::Insufficient { .. }))) => {}
            (Command::Adjust { .. }, Ok(Outcome::Adjusted(adjusted))) => {
                for shortfall in &adjusted.shortfalls {
                    *shorted.entry(shortfall.reservation).or_default() += shortfall.quantity.get();
                }
            }
            (command, result) => panic!("unexpected {command:?} -> {result:?} (reality is never refused)"),
        }
    }
    let snapshot = ledger.snapshot(SKU).expect("defined");
    assert_eq!(snapshot.reservation_count(), holds.len(), "every granted hold is still live");
    for hold in &holds {
        let live = snapshot.reservation(hold.reservation).expect("live");
        let lost = shorted.get(&hold.reservation).copied().unwrap_or(0);
        assert_eq!(live.granted, hold.quantity());
        assert_eq!(live.shorted.get(), lost, "{}: shortfalls reported {lost}, hold says {live:?}", hold.reservation);
        assert_eq!(live.held().get(), live.granted.get() - lost);
    }
    for lot in snapshot.lots() {
        let on_lot: u64 = snapshot
            .reservations()
            .flat_map(|reservation| reservation.lines)
            .filter(|line| line.lot == lot.id)
            .map(|line| line.quantity.get())
            .sum();
        assert_eq!(lot.quantities.held.get(), on_lot, "{}: held is not the holds' lines", lot.id);
    }
    let lot = |id| snapshot.lot(LotId(id)).expect("received").quantities;
    assert_eq!((lot(2).adjusted, lot(1).adjusted, lot(9).adjusted), (-3, -3, -6));
    assert_eq!(lot(9).on_hand(), 0);
}

/// Race: 4 writers each run 3 commands drawn at random (by shuttle's RNG,
/// so the schedule replays them) from every kind: receipts of new lots
/// (ids unique per writer), allocations (twice as likely as the rest) and
/// takes of 1 to 4 units (fill-or-kill or partial, the SKU's policy or an
/// override), releases and commits (all or 1) of reservation seqs 1 and 2
/// (so they race the allocations that issue them), and adjustments of
/// -3 to +3 on the setup lots, over a FEFO and a FIFO SKU; and a reader
/// taking 3 snapshots.
///
/// Asserts: the common checks (versions, reference replay, refusals,
/// audit); every snapshot the reader sees is whole (each lot's
/// `received + adjusted == available + held + committed`, totals are the
/// lots' sums, each lot's `held` is its live holds' lines) and per SKU its
/// versions never go backwards.
fn mixed_commands() {
    const SKUS: [SkuId; 2] = [SkuId(10), SkuId(11)];
    const WRITERS: u64 = 4;
    let setup = [
        define(SKUS[0], AllocationPolicy::Fefo),
        define(SKUS[1], AllocationPolicy::Fifo),
        receive(SKUS[0], 1, 4, Some(100)),
        receive(SKUS[0], 2, 3, Some(50)),
        receive(SKUS[1], 1, 4, None),
        receive(SKUS[1], 2, 3, Some(500)),
    ];
    let ledger = ledger_with(&setup);
    let mut threads: Vec<Racer> = Vec::new();
    for writer in 0..WRITERS {
        let mut received = 0;
        threads.push(Box::new(move |steps: &[Step]| {
            if steps.len() == 3 {
                return None;
            }
            let mut rng = thread_rng();
            let sku = SKUS[rng.gen_range(0..SKUS.len())];
            let mut request = || {
                let mut request = AllocateRequest::new(sku, rng.gen_range(1..=4));
                if rng.gen_bool(0.5) {
                    request = request.fill(FillMode::Partial);
                }
                match rng.gen_range(0..3) {
                    0 => request,
                    1 => request.policy(AllocationPolicy::Fifo),
                    _ => request.policy(AllocationPolicy::Fefo),
                }
            };
            Some(match thread_rng().gen_range(0..7) {
                0 => {
                    received += 1;
                    let expiry = [None, Some(40), Some(150)][thread_rng().gen_range(0..3)];
                    receive(sku, 100 + writer * 10 + received, thread_rng().gen_range(1..=3), expiry)
                }
                1 | 2 => allocate(request()),
                3 => take(request()),
                4 => release(sku, thread_rng().gen_range(1..=2)),
                5 => commit(sku, thread_rng().gen_range(1..=2), [None, Some(1)][thread_rng().gen_range(0..2)]),
                _ => {
                    let delta = [-3, -2, -1, 1, 2, 3][thread_rng().gen_range(0..6)];
                    adjust(sku, thread_rng().gen_range(1..=2), delta, AdjustmentReason::Recount)
                }
            })
        }));
    }
    let reader = {
        let ledger = Arc::clone(&ledger);
        shuttle::thread::spawn(move || {
            let mut last_seen = [0; SKUS.len()];
            for read in 0..3 {
                let which = read % SKUS.len();
                let snapshot = ledger.snapshot(SKUS[which]).expect("defined");
                assert!(snapshot.version() >= last_seen[which], "versions went backwards");
                last_seen[which] = snapshot.version();
                let mut sum = stockroom::LotQuantities::default();
                for lot in snapshot.lots() {
                    let q = lot.quantities;
                    let stock = i128::from(q.received.get()) + i128::from(q.adjusted);
                    let parts = i128::from(q.available.get() + q.held.get() + q.committed.get());
                    assert_eq!(stock, parts, "torn lot {} at version {}", lot.id, snapshot.version());
                    let on_lot: u64 = snapshot
                        .reservations()
                        .flat_map(|reservation| reservation.lines)
                        .filter(|line| line.lot == lot.id)
                        .map(|line| line.quantity.get())
                        .sum();
                    assert_eq!(q.held.get(), on_lot, "torn holds at version {}", snapshot.version());
                    sum.available = sum.available.checked_add(q.available).expect("small");
                    sum.held = sum.held.checked_add(q.held).expect("small");
                    sum.committed = sum.committed.checked_add(q.committed).expect("small");
                }
                let totals = snapshot.totals();
                assert_eq!(
                    (totals.available, totals.held, totals.committed),
                    (sum.available, sum.held, sum.committed),
                    "torn totals at version {}",
                    snapshot.version()
                );
            }
        })
    };
    let threads = run_threads(&ledger, threads);
    reader.join().expect("the reader saw a torn snapshot");
    check_history(&ledger, &setup, &threads);
}
