//! Randomized schedules beyond loom's reach: shuttle drives 3 to 8 threads
//! through the ledger's whole command API (its queries, and keyed commands
//! through `execute_keyed`) and checks, at the end of every schedule, that
//! nothing was oversold, lost, invented, ended twice or applied twice for
//! one idempotency key.
//!
//! What this file proves, for each schedule shuttle tries (no more: shuttle
//! samples schedules, it does not enumerate them like the loom models in
//! `src/cell/loom.rs`, which in exchange only afford two threads):
//!
//! - **Linearizability, checked against the reference ledger** (scenarios
//!   on one SKU at a fixed clock: `flash_sale`, `lifecycle`,
//!   `perishables_lite`, `mixed_commands`, `resourcing`, and the retry
//!   storms over the commands their keyed calls applied, as a replay or a
//!   `KeyReused` runs nothing): the successful commands of each SKU carry
//!   versions that are unique and exactly `setup + 1 ..= final` (no gap, no
//!   duplicate), increasing in each thread's program order; replayed in
//!   version order through the
//!   independent reference ledger (`tests/common/reference.rs`), each gives
//!   exactly the outcome the real ledger gave (lines, lots, FEFO order,
//!   shortfalls and re-sourced lines, deadlines, versions), and the final
//!   snapshots are equal. Every refusal is one the reference also gives at
//!   some version the refused command could have linearized at (between
//!   the thread's neighbouring successes on that SKU).
//! - **Exact invariants where a replay cannot be built**: when the clock
//!   moves concurrently (`commit_vs_expiry`: which instant each command
//!   read is not recorded, and sweeps publish versions no outcome reports)
//!   and when one command spans SKUs (`orders_vs_lines`: a failed order's
//!   rolled-back parts publish versions no outcome reports). There every
//!   reported version is unique and in program order, the unreported ones
//!   are accounted for (exactly two per rolled-back order part; at least
//!   one and at most one per hold lapsed inside another operation's
//!   sweep), and every reservation's life is checked end to end (see the
//!   scenarios' doc comments).
//! - **Idempotency** (`retry_storm`, `retry_storm_full`): no key is ever
//!   applied twice; with room for every key, exactly one call per key
//!   applies its command and every other answer is that result marked
//!   `replay` (or `KeyReused` naming the field that differs); with room for
//!   2 of the 4 keys, a key is applied at most once and the others are
//!   refused `KeysFull` (nothing applied), and the applications account
//!   exactly for the versions published and the units held and committed.
//! - **The invariants**: a clean `audit()` (conservation per lot, held
//!   against holds, totals) and, per lot, `held + committed <= received +
//!   adjusted`.
//! - **Each scenario's exact counts** (see their doc comments).
//!
//! The scenarios: `flash_sale` (takes racing for the last units),
//! `lifecycle` (ending each reservation exactly once), `perishables_lite`
//! (FEFO allocations racing spoilage adjustments), `mixed_commands` (random
//! commands of every kind, and torn-snapshot readers), `commit_vs_expiry`
//! (commits, releases and extensions racing a moving clock, the sweeps it
//! causes and `expire_due`), `orders_vs_lines` (2-SKU orders and their
//! rollbacks racing single-line allocations and sales), `resourcing`
//! (holds re-sourced or shorted by shrinks racing them, and a conditional
//! adjustment), and `retry_storm` and `retry_storm_full` (the same
//! keyed commands sent by every thread at once, a key reused with another
//! command, a sold-out take whose refusal sticks; room for every key, or
//! for 2 of the 4, so a full table races the claims).
//!
//! Under the crate's `stockroom_shuttle` cfg every atomic is shuttle's (the
//! manual clock's included) and the snapshot cell is a shuttle mutex around
//! the `Arc` (see `src/sync.rs`), so every load, every compare-and-swap and
//! every clock reading or move is a point where shuttle may switch threads;
//! the CAS backoff is a yield. The idempotency key table is one shuttle
//! mutex around a `HashMap` and the attempt cells and record queue are
//! shuttle mutexes, so each claim, replay, record, free and eviction is a
//! scheduling point too, and a duplicate waiting on an attempt yields.
//! Each scenario runs under shuttle's random scheduler (what
//! `shuttle::check_random` runs) and its PCT scheduler at depth 3 (what
//! `shuttle::check_pct` runs), each for `STOCKROOM_SHUTTLE_ITERATIONS`
//! schedules (default 10,000). Shuttle
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
    AdjustError, AdjustmentReason, AllocateError, AllocateRequest, Allocation, AllocationPolicy, Clock, Command,
    CommandError, CommitError, Committed, ExtendError, Extended, FillMode, IdempotencyKey, KeyWindow, Keyed,
    KeyedError, Lapsed, Ledger, LedgerBuilder, Line, LotId, ManualClock, NewLot, OrderError, OrderLine, OrderRequest,
    Outcome, ReleaseError, Released, ReservationId, Shortfall, SkuId, Timestamp,
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
scenario!(commit_vs_expiry);
scenario!(orders_vs_lines);
scenario!(resourcing);
scenario!(retry_storm);
scenario!(retry_storm_full);

// ---------------------------------------------------------------------------
// Histories and the checks every scenario ends with
// ---------------------------------------------------------------------------

/// A racing thread: given its steps so far, its next command (`None` when
/// it is done).
type Racer = Box<dyn FnMut(&[Step]) -> Option<Command> + Send>;

/// One command a thread ran, what it got, and the ledger clock's readings
/// just before the call and just after it returned (the command read its
/// one instant between the two).
#[derive(Clone, Debug)]
struct Step {
    command: Command,
    result: Result<Outcome, CommandError>,
    before: Timestamp,
    after: Timestamp,
}

/// A fresh ledger on a manual clock reading [`NOW`], with `setup` applied
/// (each command must succeed).
fn ledger_with(setup: &[Command]) -> Arc<Ledger> {
    ledger_on(&Arc::new(ManualClock::new(Timestamp(NOW))), LedgerBuilder::HOLD_MAX_DEFAULT, setup)
}

/// A fresh ledger reading `clock`, holding reservations for at most
/// `hold_max`, with `setup` applied (each command must succeed).
fn ledger_on(clock: &Arc<ManualClock>, hold_max: Duration, setup: &[Command]) -> Arc<Ledger> {
    let ledger = Ledger::builder().clock(clock.clone()).hold_max(hold_max).build().expect("a valid hold maximum");
    for command in setup {
        ledger.execute(command).unwrap_or_else(|error| panic!("setup {command:?}: {error}"));
    }
    Arc::new(ledger)
}

/// Runs each thread's commands on its own shuttle thread, in order, and
/// returns every thread's steps. A thread may compute a command from its
/// earlier steps (`next` gets them), or return `None` when done.
fn run_threads(ledger: &Arc<Ledger>, threads: Vec<Racer>) -> Vec<Vec<Step>> {
    run_posting(ledger, threads, None)
}

/// [`run_threads`], and each reservation an allocation or an order grants
/// is posted on `board` as soon as the call returns it (for the
/// [`blind`] racers).
fn run_posting(ledger: &Arc<Ledger>, threads: Vec<Racer>, board: Option<&Board>) -> Vec<Vec<Step>> {
    let handles: Vec<_> = threads
        .into_iter()
        .map(|mut next| {
            let ledger = Arc::clone(ledger);
            let board = board.cloned();
            shuttle::thread::spawn(move || {
                let mut steps = Vec::new();
                while let Some(command) = next(&steps) {
                    let before = ledger.now();
                    let result = ledger.execute(&command);
                    let after = ledger.now();
                    if let (Some(board), Ok(outcome)) = (&board, &result) {
                        board.post(outcome);
                    }
                    steps.push(Step { command, result, before, after });
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

/// The reservations granted so far in one schedule, per SKU in the order
/// the calls that granted them returned.
///
/// A reservation's seq is the SKU version its allocation produced, so a
/// racer cannot name "the second reservation" by a constant seq (as it
/// could when seqs were 1, 2, 3, …): it names the second one posted here.
/// One shuttle mutex: posting and reading are scheduling points.
#[derive(Clone, Default)]
struct Board(Arc<shuttle::sync::Mutex<Vec<ReservationId>>>);

impl Board {
    /// Posts the reservations `outcome` granted, if any.
    fn post(&self, outcome: &Outcome) {
        let granted: Vec<ReservationId> = match outcome {
            Outcome::Allocated(hold) => vec![hold.reservation],
            Outcome::OrderAllocated(placed) => placed.allocations.iter().map(|part| part.reservation).collect(),
            _ => return,
        };
        self.0.lock().expect("no racer panics holding the board").extend(granted);
    }

    /// The `nth` (from 1) reservation granted on `sku` so far; if fewer
    /// were, an id no version reaches (`UnknownReservation`, as a seq not
    /// yet issued was).
    fn nth(&self, sku: SkuId, nth: usize) -> ReservationId {
        let posted = self.0.lock().expect("no racer panics holding the board");
        let on_sku = posted.iter().filter(|id| id.sku == sku);
        on_sku.copied().nth(nth - 1).unwrap_or(ReservationId::new(sku, u64::MAX))
    }
}

/// What a [`blind`] racer does to the reservation it names.
#[derive(Clone, Copy, Debug)]
enum Blind {
    Release,
    Commit(Option<u64>),
    Extend(u64),
}

/// A thread ending and extending reservations it was not granted: each
/// `(nth, what)` names, when the thread gets to it, the `nth` reservation
/// of `sku` posted on `board` (see [`Board::nth`]), so it races the holder
/// and the other racers, or the allocation itself.
fn blind(board: &Board, sku: SkuId, commands: Vec<(usize, Blind)>) -> Racer {
    let board = board.clone();
    let mut commands = commands.into_iter();
    Box::new(move |_| {
        let (nth, what) = commands.next()?;
        let reservation = board.nth(sku, nth);
        Some(match what {
            Blind::Release => Command::Release { reservation },
            Blind::Commit(quantity) => Command::Commit { reservation, quantity },
            Blind::Extend(millis) => Command::Extend { reservation, by: Duration::from_millis(millis) },
        })
    })
}

/// A racing thread of keyed commands: given its answers so far, its next
/// key and command (`None` when it is done).
type KeyedRacer = Box<dyn FnMut(&[KeyedStep]) -> Option<(&'static str, Command)> + Send>;

/// One keyed command a thread sent, and the answer it got.
#[derive(Clone, Debug)]
struct KeyedStep {
    key: IdempotencyKey,
    command: Command,
    answer: Result<Keyed<Outcome>, KeyedError>,
}

impl KeyedStep {
    /// The command's result, replayed or not (`None` for `KeyReused`: no
    /// result, the command was not run).
    fn result(&self) -> Option<Result<&Outcome, &CommandError>> {
        match &self.answer {
            Ok(keyed) => Some(Ok(&keyed.outcome)),
            Err(KeyedError::Refused { error, .. }) => Some(Err(error)),
            Err(KeyedError::KeyReused { .. } | KeyedError::KeysFull { .. }) => None,
            Err(other) => panic!("no keyed step expects {other:?}"),
        }
    }

    /// True if this call applied the command (ran it: `replay == false`,
    /// success or refusal).
    fn applied(&self) -> bool {
        matches!(&self.answer, Ok(Keyed { replay: false, .. }) | Err(KeyedError::Refused { replay: false, .. }))
    }
}

/// A fresh ledger on a manual clock reading [`NOW`], remembering at most
/// `keys_max` idempotency keys (for the default window: none lapses at a
/// fixed clock), with `setup` applied un-keyed (each command must succeed).
fn keyed_ledger_with(keys_max: usize, setup: &[Command]) -> Arc<Ledger> {
    let ledger = Ledger::builder()
        .clock(Arc::new(ManualClock::new(Timestamp(NOW))))
        .key_window(KeyWindow { window: KeyWindow::WINDOW_DEFAULT, keys_max })
        .build()
        .expect("a valid key window");
    for command in setup {
        ledger.execute(command).unwrap_or_else(|error| panic!("setup {command:?}: {error}"));
    }
    Arc::new(ledger)
}

/// Runs each thread's keyed commands on its own shuttle thread, in order,
/// through [`Ledger::execute_keyed`], and returns every thread's answers.
fn run_keyed_threads(ledger: &Arc<Ledger>, threads: Vec<KeyedRacer>) -> Vec<Vec<KeyedStep>> {
    let handles: Vec<_> = threads
        .into_iter()
        .map(|mut next| {
            let ledger = Arc::clone(ledger);
            shuttle::thread::spawn(move || {
                let mut steps = Vec::new();
                while let Some((key, command)) = next(&steps) {
                    let key = IdempotencyKey::new(key).expect("a valid key");
                    let answer = ledger.execute_keyed(&key, &command);
                    steps.push(KeyedStep { key, command, answer });
                }
                steps
            })
        })
        .collect();
    handles.into_iter().map(|handle| handle.join().expect("a racer panicked")).collect()
}

/// Each thread's applied commands (not replays, not `KeyReused`), in its
/// program order, as the steps [`check_history`] replays: an application
/// ran exactly like `Ledger::execute` at the fixed clock.
fn applied_steps(threads: &[Vec<KeyedStep>]) -> Vec<Vec<Step>> {
    let now = Timestamp(NOW);
    threads
        .iter()
        .map(|steps| {
            steps
                .iter()
                .filter(|step| step.applied())
                .map(|step| Step {
                    command: step.command.clone(),
                    result: step.result().expect("applied").cloned().map_err(CommandError::clone),
                    before: now,
                    after: now,
                })
                .collect()
        })
        .collect()
}

/// Every (SKU, version) an outcome reports having published: one for a
/// single-SKU command, one per SKU part of an order (allocated or
/// released), one per sweep of an
/// `expire_due` report.
fn versions_of(outcome: &Outcome) -> Vec<(SkuId, u64)> {
    match outcome {
        Outcome::SkuDefined(o) => vec![(o.sku, o.version)],
        Outcome::Received(o) => vec![(o.sku, o.version)],
        Outcome::Allocated(o) => vec![(o.reservation.sku, o.version)],
        Outcome::Sold(o) => vec![(o.sku, o.version)],
        Outcome::Released(o) => vec![(o.reservation.sku, o.version)],
        Outcome::Committed(o) => vec![(o.reservation.sku, o.version)],
        Outcome::Adjusted(o) => vec![(o.sku, o.version)],
        Outcome::Extended(o) => vec![(o.reservation.sku, o.version)],
        Outcome::LowStockSet(o) => vec![(o.sku, o.version)],
        Outcome::OrderAllocated(o) => o.allocations.iter().map(|a| (a.reservation.sku, a.version)).collect(),
        Outcome::OrderReleased(o) => o.parts.iter().map(|p| (p.reservation.sku, p.version)).collect(),
        Outcome::Expired(o) => o.swept.iter().map(|swept| (swept.sku, swept.version)).collect(),
        other => panic!("no versions known for {other:?}"),
    }
}

/// The version a single-SKU command's outcome published.
fn version_of(outcome: &Outcome) -> u64 {
    match versions_of(outcome)[..] {
        [(_, version)] => version,
        _ => panic!("not a single-SKU outcome: {outcome:?}"),
    }
}

/// Every version the steps' outcomes report, and who published it.
type Published<'a> = BTreeMap<(SkuId, u64), (usize, &'a Step)>;

/// The versions every success reports, checked unique per SKU and
/// increasing, per SKU, in each thread's program order.
fn published_versions(threads: &[Vec<Step>]) -> Published<'_> {
    let mut published: Published<'_> = BTreeMap::new();
    for (thread, steps) in threads.iter().enumerate() {
        let mut last: BTreeMap<SkuId, u64> = BTreeMap::new();
        for step in steps {
            let Ok(outcome) = &step.result else { continue };
            for (sku, version) in versions_of(outcome) {
                if let Some((other, first)) = published.insert((sku, version), (thread, step)) {
                    panic!(
                        "{sku} version {version} published twice: thread {other} {first:?} and thread {thread} {step:?}"
                    );
                }
                if let Some(earlier) = last.insert(sku, version) {
                    assert!(earlier < version, "thread {thread}: {sku} version {version} after its own {earlier}");
                }
            }
        }
    }
    published
}

/// How many of `sku`'s versions in `published` lie in `start + 1 ..= end`,
/// checking that none lies outside.
fn reported_between(published: &Published<'_>, sku: SkuId, start: u64, end: u64) -> u64 {
    let versions: Vec<u64> = published.range((sku, 0)..=(sku, u64::MAX)).map(|(&(_, version), _)| version).collect();
    assert!(
        versions.iter().all(|version| (start + 1..=end).contains(version)),
        "{sku}: {versions:?} vs {start}..{end}"
    );
    versions.len() as u64
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

/// The one SKU a command of a replayable scenario is about.
fn single_sku(command: &Command) -> SkuId {
    command.sku().unwrap_or_else(|| panic!("the reference replay takes single-SKU commands only: {command:?}"))
}

/// The checks every replayable scenario (one clock reading, single-SKU
/// commands) ends with (see the file docs): versions unique, gap-free and
/// in program order per SKU; every success replayed in version order
/// through the reference ledger gives the same outcome; every refusal is
/// one the reference gives at a version it could have linearized at; equal
/// final snapshots; a clean audit; no lot oversold.
fn check_history(ledger: &Ledger, setup: &[Command], threads: &[Vec<Step>]) {
    let reference = ReferenceLedger::new();
    let now = Timestamp(NOW);
    for command in setup {
        reference.execute(command, now).unwrap_or_else(|error| panic!("reference setup {command:?}: {error}"));
    }
    let skus = reference.skus();
    let start: BTreeMap<SkuId, u64> =
        skus.iter().map(|&sku| (sku, reference.peek(sku).expect("defined in setup").version)).collect();
    let end: BTreeMap<SkuId, u64> =
        skus.iter().map(|&sku| (sku, ledger.snapshot(sku).expect("defined in setup").version())).collect();

    // Versions: unique per SKU, increasing in each thread's program order.
    let published = published_versions(threads);
    let mut refusals = Vec::new();
    for (thread, steps) in threads.iter().enumerate() {
        for (index, step) in steps.iter().enumerate() {
            let sku = single_sku(&step.command);
            let Err(error) = &step.result else { continue };
            let on_sku = |other: &Step| match &other.result {
                Ok(outcome) if single_sku(&other.command) == sku => Some(version_of(outcome)),
                _ => None,
            };
            let from = steps[..index].iter().rev().find_map(on_sku).unwrap_or(start[&sku]);
            let to = steps[index + 1..].iter().find_map(on_sku).map_or(end[&sku], |next| next - 1);
            refusals.push(Refusal { thread, step, error, from, to, explained: false });
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
            for refusal in refusals.iter_mut().filter(|r| !r.explained && single_sku(&r.step.command) == sku) {
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
        assert_eq!(Some(data), reference.snapshot(sku, now), "{sku}: final state differs from the reference's");
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
fn rebuild(setup: &[Command], published: &Published<'_>, sku: SkuId, start: u64, version: u64) -> ReferenceLedger {
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
            let hold_valid = matches!(command, Command::Take(_))
                || request.hold_for.is_none_or(|hold| !hold.is_zero() && hold <= LedgerBuilder::HOLD_MAX_DEFAULT);
            let available = reference.available(request.sku, now, request.min_shelf_life).map_or(0, |q| q.get());
            let enough = match request.fill {
                FillMode::FillOrKill => request.quantity > 0 && available >= request.quantity,
                FillMode::Partial => request.quantity > 0 && available > 0,
                other => panic!("no schedule sends {other:?}"),
            };
            hold_valid && request.expected_version.is_none() && enough
        }
        Command::Release { reservation } => reference.reservation(*reservation, now).is_ok(),
        Command::Commit { reservation, quantity } => reference
            .reservation(*reservation, now)
            .is_ok_and(|live| quantity.is_none_or(|units| units > 0 && units <= live.held().get())),
        Command::Adjust { sku, lot, delta, expected_version: None, .. } => reference.peek(*sku).is_some_and(|data| {
            data.lots.iter().any(|known| {
                known.id == *lot
                    && *delta != 0
                    && ((1..=1_000).contains(delta) || delta.unsigned_abs() <= known.quantities.on_hand())
            })
        }),
        _ => false,
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

/// A fill-or-kill allocation of `units` held for `millis` ms.
fn allocate_for(sku: SkuId, units: u64, millis: u64) -> Command {
    Command::Allocate(AllocateRequest::new(sku, units).hold_for(Duration::from_millis(millis)))
}

fn take(request: AllocateRequest) -> Command {
    Command::Take(request)
}

fn adjust(sku: SkuId, lot: u64, delta: i64, reason: AdjustmentReason) -> Command {
    Command::Adjust { sku, lot: LotId(lot), delta, reason, expected_version: None }
}

/// A 2-or-more-line order of `(sku, units)` lines, held until ended.
fn order(lines: &[(SkuId, u64)]) -> OrderRequest {
    OrderRequest::new(lines.iter().map(|&(sku, units)| OrderLine::new(sku, units)).collect())
}

fn all_steps(threads: &[Vec<Step>]) -> impl Iterator<Item = &Step> {
    threads.iter().flatten()
}

/// Units in `lines`.
fn units(lines: &[Line]) -> u64 {
    lines.iter().map(|line| line.quantity.get()).sum()
}

/// Units per lot in `lines` (zero lines left out).
fn per_lot<'a>(lines: impl IntoIterator<Item = &'a Line>) -> BTreeMap<LotId, u64> {
    let mut lots = BTreeMap::new();
    for line in lines {
        if !line.quantity.is_zero() {
            *lots.entry(line.lot).or_default() += line.quantity.get();
        }
    }
    lots
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
    // The expired lot's units are all still there, counted as expired (never
    // available), and none was sold.
    let expired = lot(3);
    assert_eq!(
        (expired.available.get(), expired.expired.get(), expired.committed.get()),
        (0, 4, 0),
        "the expired lot was sold from"
    );
}

/// Race: 3 allocators each hold 2 of a FIFO SKU's 8 units (two 4-unit
/// lots) and then end their own reservation (commit all, release, commit
/// 1), while 3 racers try to end the first, second and third reservation
/// granted (see [`blind`]) themselves, each in its own order and with its
/// own mix of release, full commit and partial commit.
///
/// Asserts: every allocation is granted (three distinct seqs, each the
/// version its allocation produced, the first 3 — the first change after
/// the setup's versions 0-2 — and none past 8, the sixth change); every
/// reservation ends exactly once (exactly one successful release or commit
/// per id; every other attempt is `Ended`, or `UnknownReservation` when it
/// ran before the id was posted); nothing stays held; no unit is lost:
/// available + committed == 8 and committed == the sum of every commit's
/// committed lines; plus the common checks.
fn lifecycle() {
    const SKU: SkuId = SkuId(2);
    let setup = [define(SKU, AllocationPolicy::Fifo), receive(SKU, 1, 4, None), receive(SKU, 2, 4, None)];
    let ledger = ledger_with(&setup);
    let board = Board::default();
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
    threads.push(blind(&board, SKU, vec![(1, Blind::Release), (2, Blind::Commit(None)), (3, Blind::Release)]));
    threads.push(blind(&board, SKU, vec![(3, Blind::Commit(Some(1))), (2, Blind::Release), (1, Blind::Commit(None))]));
    threads.push(blind(&board, SKU, vec![(2, Blind::Release), (1, Blind::Commit(Some(2))), (3, Blind::Commit(None))]));
    let threads = run_posting(&ledger, threads, Some(&board));
    check_history(&ledger, &setup, &threads);

    let mut issued = BTreeSet::new();
    let mut ends: BTreeMap<u64, usize> = BTreeMap::new();
    let mut committed = 0;
    for step in all_steps(&threads) {
        match (&step.command, &step.result) {
            (Command::Allocate(_), Ok(Outcome::Allocated(hold))) => {
                assert_eq!(hold.reservation.seq, hold.version, "a seq is the version its allocation produced");
                assert!(issued.insert(hold.reservation.seq), "{} issued twice", hold.reservation);
            }
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
    // The setup is versions 0-2; nothing but an allocation can succeed
    // first, so the first seq is 3; the holds and their ends are the only
    // changes (3 + 3), so every seq is at most 8.
    assert_eq!(issued.len(), 3, "three holds granted: {issued:?}");
    assert_eq!(issued.first(), Some(&3), "the first change after the setup is an allocation");
    assert!(issued.iter().all(|seq| (3..=8).contains(seq)), "{issued:?}");
    let once: BTreeMap<u64, usize> = issued.iter().map(|&seq| (seq, 1)).collect();
    assert_eq!(ends, once, "a reservation did not end exactly once");
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
/// accounted: each shortfall's `quantity` is what it re-sourced plus what
/// it shorted, per reservation the shortfalls' `shorted` add up to its
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
                    let resourced = units(&shortfall.resourced);
                    assert_eq!(shortfall.quantity.get(), resourced + shortfall.shorted.get(), "{shortfall:?}");
                    *shorted.entry(shortfall.reservation).or_default() += shortfall.shorted.get();
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
/// override), releases and commits (all or 1) of the first or second
/// reservation granted on the SKU (posted on a [`Board`]; not granted yet,
/// an unknown id), so they race the holders and each other, and adjustments of
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
    let board = Board::default();
    let mut threads: Vec<Racer> = Vec::new();
    for writer in 0..WRITERS {
        let mut received = 0;
        let board = board.clone();
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
                4 => Command::Release { reservation: board.nth(sku, thread_rng().gen_range(1..=2)) },
                5 => Command::Commit {
                    reservation: board.nth(sku, thread_rng().gen_range(1..=2)),
                    quantity: [None, Some(1)][thread_rng().gen_range(0..2)],
                },
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
    let threads = run_posting(&ledger, threads, Some(&board));
    reader.join().expect("the reader saw a torn snapshot");
    check_history(&ledger, &setup, &threads);
}

/// How a reservation of `commit_vs_expiry` was seen to end.
#[derive(Debug)]
enum Ending<'a> {
    Committed(&'a Step, &'a Committed),
    Released(&'a Step, &'a Released),
    /// A commit, release or extension refused `Expired`: its own sweep
    /// lapsed the hold (at this deadline).
    Expired(&'a Step, Timestamp),
    /// Listed by an `expire_due` report swept at this instant.
    Reaped(Timestamp, &'a Lapsed),
}

/// Everything `commit_vs_expiry` saw happen to one reservation.
#[derive(Debug, Default)]
struct Life<'a> {
    /// The allocation, and its hold duration.
    allocated: Option<(&'a Step, &'a Allocation, Duration)>,
    /// Successful extensions, and by how much each asked.
    extended: Vec<(&'a Step, &'a Extended, Duration)>,
    endings: Vec<Ending<'a>>,
    /// A commit, release or extension was refused `Ended`.
    refused_ended: bool,
    /// Extensions refused `BeyondMaximum`: requested, latest, by.
    beyond: Vec<(Timestamp, Timestamp, Duration)>,
}

/// What a refused commit, release or extension says of its reservation.
enum Refused {
    Unknown,
    Ended,
    Expired(Timestamp),
}

fn lifecycle_refusal(error: &CommandError) -> Option<(ReservationId, Refused)> {
    use CommandError::{Commit, Extend, Release};
    Some(match error {
        Commit(CommitError::UnknownReservation { id })
        | Release(ReleaseError::UnknownReservation { id })
        | Extend(ExtendError::UnknownReservation { id }) => (*id, Refused::Unknown),
        Commit(CommitError::Ended { id }) | Release(ReleaseError::Ended { id }) | Extend(ExtendError::Ended { id }) => {
            (*id, Refused::Ended)
        }
        Commit(CommitError::Expired { id, deadline })
        | Release(ReleaseError::Expired { id, deadline })
        | Extend(ExtendError::Expired { id, deadline }) => (*id, Refused::Expired(*deadline)),
        _ => return None,
    })
}

/// Race: reservations with deadlines against a moving clock, with a 20 ms
/// hold maximum. A ticker moves the manual clock from 10 to 28 ms in nine
/// 2 ms steps (0, 8 or 24 yields apart, drawn per schedule: a clock racing
/// ahead of the commands or moving with them) while, on SKU 20 (FIFO, two
/// 4-unit lots): three holders each hold units with a deadline (2 for 5 ms,
/// 2 for 10 ms, 3 for 15 ms) and then end their own hold (commit all;
/// extend by 10 ms, then commit 1; release); a racer extends the first
/// hold granted on SKU 20 by 5 ms, releases the second and commits the
/// third, blindly (see [`blind`]); a buyer holds 3 for 20 ms
/// and then takes up to 2. On SKU 21 (one 2-unit lot), which nobody else
/// touches: a late payer holds 1 unit for 4 ms and commits it once the
/// clock reads an instant drawn from 12 to 26 ms, racing a reaper that runs
/// `expire_due` at the clock's reading once it reads 16 ms, and again at 24
/// ms. At the end, one more sweep of both SKUs at the final reading
/// (`expire_due_in`: the same sweep, without `expire_due`'s walk over every
/// shard of the SKU table, 64 scheduling points).
///
/// Which instant each command read is not recorded (only the clock's
/// readings just before and after the call), and sweeps inside other
/// operations publish versions no outcome reports, so there is no replay.
/// Asserts instead, per reservation:
/// - its deadline: the allocation's is its instant plus the hold duration
///   (within the readings around the call); each successful extension, in
///   version order, moves the previous deadline by exactly its `by`, found
///   the previous deadline not yet passed (later than the reading before
///   the call) and stays within the allocation instant plus the maximum; a
///   `BeyondMaximum` names that latest and a deadline the hold really had.
/// - it ends at most once, in exactly one way among: `Committed`,
///   `Released`, an `Expired` refusal of commit, release or extension (that
///   call's own sweep lapsed it), a `Lapsed` entry of an `expire_due`
///   report, or none of those (another operation's sweep lapsed it). A
///   commit or release that succeeded found its hold before the deadline
///   the hold had at that version (later than the reading before the
///   call), after every extension of it. Every lapse names the hold's final
///   deadline, passed by the reading after the call (or by the report's
///   instant); a hold that vanished unseen had a deadline at or before the
///   final reading; a hold still live at the end is exactly its allocation
///   with its final deadline, later than the final reading (no lapsed hold
///   survives the final sweep); an `Ended` refusal names a hold that is
///   gone at the end.
/// - units: a commit's committed plus returned lines, a release's lines and
///   a lapse's lines are exactly the allocation's, per lot (no unit both
///   committed and returned); per SKU the final totals are exact: committed
///   = the commits' committed lines + the sales, held = the live holds, and
///   available + held + committed = received.
/// - versions, per SKU: every reported version (outcomes, and the sweeps
///   in reports; the final sweep's is the last) is unique and in program
///   order; the unreported ones are sweeps inside other operations: at
///   least one if any hold lapsed that way (`Expired` refusals and unseen
///   lapses), none otherwise, never more than such holds.
///
/// Plus the audit and the per-lot oversell check.
fn commit_vs_expiry() {
    const MAIN: SkuId = SkuId(20);
    const LATE: SkuId = SkuId(21);
    const HOLD_MAX: Duration = Duration::from_millis(20);
    const TICK: Duration = Duration::from_millis(2);
    let stock = BTreeMap::from([(MAIN, 8), (LATE, 2)]);
    let setup = [
        define(MAIN, AllocationPolicy::Fifo),
        define(LATE, AllocationPolicy::Fifo),
        receive(MAIN, 1, 4, None),
        receive(MAIN, 2, 4, None),
        receive(LATE, 1, 2, None),
    ];
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let ledger = ledger_on(&clock, HOLD_MAX, &setup);
    let start: BTreeMap<SkuId, u64> =
        stock.keys().map(|&sku| (sku, ledger.snapshot(sku).expect("defined").version())).collect();
    // Spins (a yield is a scheduling point) until the ticker got the clock
    // to `instant`.
    let wait_for = |clock: Arc<ManualClock>| {
        move |instant: u64| {
            while clock.now().0 < instant {
                shuttle::thread::yield_now();
            }
            clock.now()
        }
    };
    let (payer_waits, reaper_waits) = (wait_for(Arc::clone(&clock)), wait_for(Arc::clone(&clock)));
    let board = Board::default();
    let threads: Vec<Racer> = vec![
        Box::new(|steps: &[Step]| match steps {
            [] => Some(allocate_for(MAIN, 2, 5)),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                Some(Command::Commit { reservation: hold.reservation, quantity: None })
            }
            _ => None,
        }),
        Box::new(|steps: &[Step]| match steps {
            [] => Some(allocate_for(MAIN, 2, 10)),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                Some(Command::Extend { reservation: hold.reservation, by: Duration::from_millis(10) })
            }
            [Step { result: Ok(Outcome::Allocated(hold)), .. }, _] => {
                Some(Command::Commit { reservation: hold.reservation, quantity: Some(1) })
            }
            _ => None,
        }),
        Box::new(|steps: &[Step]| match steps {
            [] => Some(allocate_for(MAIN, 3, 15)),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                Some(Command::Release { reservation: hold.reservation })
            }
            _ => None,
        }),
        blind(&board, MAIN, vec![(1, Blind::Extend(5)), (2, Blind::Release), (3, Blind::Commit(None))]),
        script(vec![allocate_for(MAIN, 3, 20), take(AllocateRequest::new(MAIN, 2).fill(FillMode::Partial))]),
        Box::new(move |steps: &[Step]| match steps {
            [] => Some(allocate_for(LATE, 1, 4)),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                payer_waits(thread_rng().gen_range(6..=13) * 2);
                Some(Command::Commit { reservation: hold.reservation, quantity: None })
            }
            _ => None,
        }),
        Box::new(move |steps: &[Step]| {
            let due = [16, 24].get(steps.len())?;
            Some(Command::ExpireDue { now: reaper_waits(*due) })
        }),
    ];
    let ticker = {
        let clock = Arc::clone(&clock);
        shuttle::thread::spawn(move || {
            // How far apart the ticks are (a yield is a scheduling point).
            let yields = [0, 8, 24][thread_rng().gen_range(0..3)];
            for _ in 0..9 {
                for _ in 0..yields {
                    shuttle::thread::yield_now();
                }
                clock.advance(TICK);
            }
        })
    };
    let threads = run_posting(&ledger, threads, Some(&board));
    ticker.join().expect("the ticker panicked");
    let final_now = ledger.now();
    let final_sweep = ledger.expire_due_in(&[MAIN, LATE], final_now).expect("the clock's own reading");
    let snapshots: BTreeMap<SkuId, _> =
        stock.keys().map(|&sku| (sku, ledger.snapshot(sku).expect("defined"))).collect();

    let mut lives: BTreeMap<ReservationId, Life<'_>> = BTreeMap::new();
    let mut committed: BTreeMap<SkuId, u64> = BTreeMap::new();
    for step in all_steps(&threads) {
        match (&step.command, &step.result) {
            (Command::Allocate(request), Ok(Outcome::Allocated(hold))) => {
                let hold_for = request.hold_for.expect("every hold here has a deadline");
                let life = lives.entry(hold.reservation).or_default();
                assert!(life.allocated.replace((step, hold, hold_for)).is_none(), "{} issued twice", hold.reservation);
            }
            (
                Command::Allocate(_) | Command::Take(_),
                Err(CommandError::Allocate(AllocateError::Insufficient { .. })),
            ) => {}
            (Command::Take(_), Ok(Outcome::Sold(sale))) => {
                *committed.entry(sale.sku).or_default() += sale.quantity().get();
            }
            (Command::Extend { by, .. }, Ok(Outcome::Extended(extended))) => {
                lives.entry(extended.reservation).or_default().extended.push((step, extended, *by));
            }
            (_, Ok(Outcome::Committed(done))) => {
                *committed.entry(done.reservation.sku).or_default() += units(&done.committed);
                lives.entry(done.reservation).or_default().endings.push(Ending::Committed(step, done));
            }
            (_, Ok(Outcome::Released(released))) => {
                lives.entry(released.reservation).or_default().endings.push(Ending::Released(step, released));
            }
            (Command::ExpireDue { now }, Ok(Outcome::Expired(report))) => {
                for swept in &report.swept {
                    assert_eq!(swept.at, *now, "{report:?}");
                    assert!(swept.expired_lots.is_empty() && !swept.lapsed.is_empty(), "{report:?}");
                }
                assert!(report.swept.windows(2).all(|pair| pair[0].sku < pair[1].sku), "{report:?}");
                for lapsed in report.lapsed() {
                    lives.entry(lapsed.reservation).or_default().endings.push(Ending::Reaped(*now, lapsed));
                }
            }
            (
                Command::Extend { by, .. },
                Err(CommandError::Extend(ExtendError::BeyondMaximum { id, requested, latest })),
            ) => lives.entry(*id).or_default().beyond.push((*requested, *latest, *by)),
            (command, Err(error)) => match lifecycle_refusal(error) {
                Some((id, Refused::Expired(deadline))) => {
                    lives.entry(id).or_default().endings.push(Ending::Expired(step, deadline));
                }
                Some((id, Refused::Ended)) => lives.entry(id).or_default().refused_ended = true,
                Some((_, Refused::Unknown)) => {}
                None => panic!("unexpected refusal of {command:?}: {error:?}"),
            },
            (command, result) => panic!("unexpected {command:?} -> {result:?}"),
        }
    }
    for swept in &final_sweep.swept {
        assert_eq!((swept.at, swept.version), (final_now, snapshots[&swept.sku].version()), "{final_sweep:?}");
    }
    for lapsed in final_sweep.lapsed() {
        lives.entry(lapsed.reservation).or_default().endings.push(Ending::Reaped(final_now, lapsed));
    }

    let mut held: BTreeMap<SkuId, u64> = BTreeMap::new();
    // Per SKU: holds lapsed by a sweep inside another operation.
    let mut lapsed_inside: BTreeMap<SkuId, u64> = BTreeMap::new();
    for (&id, life) in &lives {
        let Some((allocated, allocation, hold_for)) = life.allocated else {
            panic!("{id} was never issued, yet: {life:?}")
        };
        let hold_ms = u64::try_from(hold_for.as_millis()).expect("short");
        let mut deadline = allocation.deadline.expect("held with a deadline");
        assert!(
            (allocated.before.0 + hold_ms..=allocated.after.0 + hold_ms).contains(&deadline.0),
            "{allocation:?}: held for {hold_for:?} between {} and {}",
            allocated.before,
            allocated.after
        );
        let latest = Timestamp(deadline.0 - hold_ms).saturating_add(HOLD_MAX);
        // The deadline from each version on: the allocation's, then each
        // extension's in version order.
        let mut extensions: Vec<_> = life.extended.iter().collect();
        extensions.sort_by_key(|(_, extended, _)| extended.version);
        let mut deadlines = vec![(allocation.version, deadline)];
        for (step, extended, by) in extensions {
            assert!(deadline > step.before, "{id} extended after its deadline {deadline}: {step:?}");
            assert_eq!(extended.deadline, deadline.saturating_add(*by), "{id}: {extended:?} from {deadline}");
            assert!(extended.deadline <= latest, "{id}: {extended:?} past the latest {latest}");
            deadline = extended.deadline;
            deadlines.push((extended.version, deadline));
        }
        // The deadline a commit or release at `version` met: the last one,
        // as it can only come after every extension.
        let changed = deadlines.last().expect("the allocation's").0;
        let deadline_at = |version: u64| {
            assert!(version > changed, "{id} changed at version {changed} after it ended at {version}");
            deadline
        };
        for &(requested, refused_latest, by) in &life.beyond {
            assert_eq!(refused_latest, latest, "{id}: the latest deadline is the allocation instant + the maximum");
            assert!(requested > latest, "{id}: {requested} is not beyond {latest}");
            let from = requested.0 - u64::try_from(by.as_millis()).expect("short");
            assert!(deadlines.iter().any(|&(_, had)| had.0 == from), "{id} never had the deadline {from}ms");
        }

        assert!(life.endings.len() <= 1, "{id} ended more than once: {:?}", life.endings);
        let granted = per_lot(&allocation.lines);
        match (life.endings.first(), snapshots[&id.sku].reservation(id)) {
            (Some(ending), Some(live)) => panic!("{id} ended ({ending:?}) yet is live: {live:?}"),
            (None, Some(live)) => {
                assert!(!life.refused_ended, "{id} refused as ended, yet live: {live:?}");
                assert_eq!(live.lines, allocation.lines, "{id}");
                assert_eq!(live.deadline, Some(deadline), "{id}");
                assert!(deadline > final_now, "{id} survived the final sweep at {final_now}: {live:?}");
                *held.entry(id.sku).or_default() += units(&live.lines);
            }
            (None, None) => {
                assert!(deadline <= final_now, "{id} vanished before its deadline {deadline} (final {final_now})");
                *lapsed_inside.entry(id.sku).or_default() += 1;
            }
            (Some(Ending::Committed(step, done)), None) => {
                let deadline = deadline_at(done.version);
                assert!(deadline > step.before, "{id} committed at or after its deadline {deadline}: {step:?}");
                assert_eq!(per_lot(done.committed.iter().chain(&done.returned)), granted, "{id}: {done:?}");
            }
            (Some(Ending::Released(step, released)), None) => {
                let deadline = deadline_at(released.version);
                assert!(deadline > step.before, "{id} released at or after its deadline {deadline}: {step:?}");
                assert_eq!(per_lot(&released.lines), granted, "{id}: {released:?}");
            }
            (Some(Ending::Expired(step, lapsed_at)), None) => {
                assert_eq!(*lapsed_at, deadline, "{id}: lapsed at another deadline than its last: {step:?}");
                assert!(deadline <= step.after, "{id} lapsed before its deadline {deadline}: {step:?}");
                *lapsed_inside.entry(id.sku).or_default() += 1;
            }
            (Some(Ending::Reaped(at, lapsed)), None) => {
                assert_eq!(lapsed.deadline, deadline, "{id}: lapsed at another deadline than its last");
                assert!(deadline <= *at, "{id} swept at {at} before its deadline {deadline}");
                assert_eq!(per_lot(&lapsed.lines), granted, "{id}: {lapsed:?}");
            }
        }
    }

    let published = published_versions(&threads);
    for (&sku, &received) in &stock {
        let snapshot = &snapshots[&sku];
        assert!(snapshot.reservations().all(|live| lives.contains_key(&live.id)), "{sku}: a hold nobody was granted");
        let totals = snapshot.totals();
        let (held, committed) = (held.get(&sku).copied().unwrap_or(0), committed.get(&sku).copied().unwrap_or(0));
        assert_eq!(totals.held.get(), held, "{sku}: held is not the live holds");
        assert_eq!(totals.committed.get(), committed, "{sku}: committed is not the commits and the sales");
        assert_eq!(totals.available.get() + held + committed, received, "{sku}: a unit was lost");

        let (start, end) = (start[&sku], snapshot.version());
        let final_sweeps = final_sweep.swept.iter().filter(|swept| swept.sku == sku).count() as u64;
        let unreported = end - start - reported_between(&published, sku, start, end) - final_sweeps;
        let lapsed_inside = lapsed_inside.get(&sku).copied().unwrap_or(0);
        assert!(
            (unreported == 0) == (lapsed_inside == 0) && unreported <= lapsed_inside,
            "{sku}: {unreported} versions no outcome reports, {lapsed_inside} holds lapsed by sweeps inside \
             other operations"
        );
    }
    assert_sound(&ledger);
}

/// Race: 2-SKU orders against single lines on the same SKUs: SKU 40 (FIFO,
/// two lots of 3) and SKU 41 (FEFO, 3 units expiring at 100 and 2 at 200),
/// 10 units of demand on each. Orders: [40×2, 41×2] then [41×1, 40×1]
/// held for 500 ms; [40×3, 41×2], then releasing it (the whole order: a
/// part alone is refused `OrderPart`) if granted; [40×1, 41×1, 40×1] (two
/// lines of one SKU). Single lines: hold
/// 41×2, then commit it; take up to 41×2, then hold 40×2.
///
/// An order refused on SKU 41 first held and then rolled back its SKU 40
/// part: two versions and one reservation seq of SKU 40 that no outcome
/// reports. Asserts: every granted order has one allocation per SKU, by
/// SKU id, each holding its SKU's combined demand with the order's deadline
/// (now + 500 ms exactly, or none); every refused order is `Line { index,
/// Insufficient }` naming that line's SKU and quantity, and less available;
/// per SKU, the reported versions are unique and in program order, and
/// with 2 per rolled-back part they are exactly `setup + 1 ..= final`
/// (versions gap-free); each granted seq is the version its allocation
/// reported, after the setup; at the end the live holds are
/// exactly the granted ones not ended, each as granted (so no failed order
/// left anything held), releases return exactly what was granted, and per
/// SKU held = the live holds, committed = the commits + the sale, and
/// available + held + committed = received (no unit leaked); a clean
/// audit, no lot oversold.
fn orders_vs_lines() {
    const LOW: SkuId = SkuId(40);
    const HIGH: SkuId = SkuId(41);
    let setup = [
        define(LOW, AllocationPolicy::Fifo),
        define(HIGH, AllocationPolicy::Fefo),
        receive(LOW, 1, 3, None),
        receive(LOW, 2, 3, None),
        receive(HIGH, 1, 3, Some(100)),
        receive(HIGH, 2, 2, Some(200)),
    ];
    let stock = BTreeMap::from([(LOW, 6), (HIGH, 5)]);
    let ledger = ledger_with(&setup);
    let start: BTreeMap<SkuId, u64> =
        stock.keys().map(|&sku| (sku, ledger.snapshot(sku).expect("defined").version())).collect();
    let threads: Vec<Racer> = vec![
        script(vec![
            Command::AllocateOrder(order(&[(LOW, 2), (HIGH, 2)])),
            Command::AllocateOrder(order(&[(HIGH, 1), (LOW, 1)]).hold_for(Duration::from_millis(500))),
        ]),
        Box::new(|steps: &[Step]| match steps {
            [] => Some(Command::AllocateOrder(order(&[(LOW, 3), (HIGH, 2)]))),
            [Step { result: Ok(Outcome::OrderAllocated(placed)), .. }] => {
                Some(Command::ReleaseOrder { order: placed.order })
            }
            _ => None,
        }),
        script(vec![Command::AllocateOrder(order(&[(LOW, 1), (HIGH, 1), (LOW, 1)]))]),
        Box::new(|steps: &[Step]| match steps {
            [] => Some(allocate(AllocateRequest::new(HIGH, 2))),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                Some(Command::Commit { reservation: hold.reservation, quantity: None })
            }
            _ => None,
        }),
        script(vec![
            take(AllocateRequest::new(HIGH, 2).fill(FillMode::Partial)),
            allocate(AllocateRequest::new(LOW, 2)),
        ]),
    ];
    let threads = run_threads(&ledger, threads);

    let mut granted: BTreeMap<ReservationId, &Allocation> = BTreeMap::new();
    let mut ended: BTreeMap<ReservationId, BTreeMap<LotId, u64>> = BTreeMap::new();
    let mut rolled_back: BTreeMap<SkuId, u64> = BTreeMap::new();
    let mut committed: BTreeMap<SkuId, u64> = BTreeMap::new();
    for step in all_steps(&threads) {
        match (&step.command, &step.result) {
            (Command::AllocateOrder(request), Ok(Outcome::OrderAllocated(placed))) => {
                let mut demand: BTreeMap<SkuId, u64> = BTreeMap::new();
                for line in &request.lines {
                    *demand.entry(line.sku).or_default() += line.quantity;
                }
                let parts: Vec<(SkuId, u64)> =
                    placed.allocations.iter().map(|part| (part.reservation.sku, part.quantity().get())).collect();
                assert_eq!(parts, demand.into_iter().collect::<Vec<_>>(), "{request:?} -> {placed:?}");
                let deadline = request.hold_for.map(|hold| Timestamp(NOW).saturating_add(hold));
                for part in &placed.allocations {
                    assert_eq!(part.deadline, deadline, "{request:?} -> {placed:?}");
                    assert!(granted.insert(part.reservation, part).is_none(), "{} issued twice", part.reservation);
                }
            }
            (
                Command::AllocateOrder(request),
                Err(CommandError::Order(OrderError::Line {
                    index,
                    error: AllocateError::Insufficient { sku, requested, available },
                })),
            ) => {
                let line = &request.lines[*index];
                assert_eq!((*sku, requested.get()), (line.sku, line.quantity), "{request:?}: line {index}");
                assert!(available < requested, "{request:?}: line {index} refused with enough available");
                let held_first: BTreeSet<SkuId> =
                    request.lines.iter().map(|other| other.sku).filter(|&other| other < line.sku).collect();
                for sku in held_first {
                    *rolled_back.entry(sku).or_default() += 1;
                }
            }
            (Command::Allocate(_), Ok(Outcome::Allocated(hold))) => {
                assert!(granted.insert(hold.reservation, hold).is_none(), "{} issued twice", hold.reservation);
            }
            (Command::Take(_), Ok(Outcome::Sold(sale))) => {
                *committed.entry(sale.sku).or_default() += sale.quantity().get();
            }
            (
                Command::Allocate(_) | Command::Take(_),
                Err(CommandError::Allocate(AllocateError::Insufficient { .. })),
            ) => {}
            (_, Ok(Outcome::Committed(done))) => {
                assert!(done.returned.is_empty(), "a full commit returned units: {done:?}");
                *committed.entry(done.reservation.sku).or_default() += units(&done.committed);
                assert!(ended.insert(done.reservation, per_lot(&done.committed)).is_none(), "{done:?}");
            }
            (_, Ok(Outcome::Released(released))) => {
                assert!(ended.insert(released.reservation, per_lot(&released.lines)).is_none(), "{released:?}");
            }
            (Command::ReleaseOrder { .. }, Ok(Outcome::OrderReleased(released))) => {
                // Its parts have no deadline: none can have lapsed.
                assert!(released.already_ended.is_empty(), "{released:?}");
                for part in &released.parts {
                    assert!(ended.insert(part.reservation, per_lot(&part.lines)).is_none(), "{released:?}");
                }
            }
            (command, result) => panic!("unexpected {command:?} -> {result:?}"),
        }
    }
    for (id, lines) in &ended {
        let allocation = granted.get(id).unwrap_or_else(|| panic!("{id} ended but was never granted"));
        assert_eq!(*lines, per_lot(&allocation.lines), "{id} ended with other units than it was granted");
    }

    let published = published_versions(&threads);
    for (&sku, &received) in &stock {
        let snapshot = ledger.snapshot(sku).expect("defined");
        let parts_rolled_back = rolled_back.get(&sku).copied().unwrap_or(0);
        let reported = reported_between(&published, sku, start[&sku], snapshot.version());
        assert_eq!(
            snapshot.version() - start[&sku],
            reported + 2 * parts_rolled_back,
            "{sku}: {reported} reported versions and {parts_rolled_back} rolled-back parts (hold + release each) \
             do not account for every version"
        );
        // A seq is the version its allocation produced: one of this SKU's
        // reported versions, so unique (checked above) and past the setup.
        for (id, allocation) in granted.iter().filter(|(id, _)| id.sku == sku) {
            assert_eq!(id.seq, allocation.version, "{id}: a seq is the version its allocation produced");
            assert!((start[&sku] + 1..=snapshot.version()).contains(&id.seq), "{id}: outside this run's versions");
        }

        let live: BTreeSet<ReservationId> = snapshot.reservations().map(|reservation| reservation.id).collect();
        let expected: BTreeSet<ReservationId> =
            granted.keys().filter(|id| id.sku == sku && !ended.contains_key(id)).copied().collect();
        assert_eq!(live, expected, "{sku}: the live holds are not the granted ones not ended");
        let mut held = 0;
        for reservation in snapshot.reservations() {
            let allocation = granted[&reservation.id];
            assert_eq!(reservation.lines, allocation.lines, "{}", reservation.id);
            assert_eq!((reservation.shorted.get(), reservation.deadline), (0, allocation.deadline));
            held += reservation.held().get();
        }
        let totals = snapshot.totals();
        assert_eq!(totals.held.get(), held, "{sku}: held is not the live holds");
        assert_eq!(totals.committed.get(), committed.get(&sku).copied().unwrap_or(0), "{sku}: committed");
        assert_eq!(totals.available.get() + held + totals.committed.get(), received, "{sku}: a unit leaked");
    }
    assert_sound(&ledger);
}

/// Race: holds on a FEFO SKU of 4 lots (lot 1: 4 units expiring at 100,
/// lot 2: 4 at 150, lot 3: 4 at 300, lot 4: 3 without expiry) while two
/// chaos threads shrink every lot. Holders: 6 units, then commit 1; 4
/// units held for 1 s; up to 3 units, then release. Chaos: lot 1 -3
/// (spoilage), then lot 2 -2 (recount) only if nothing changed since
/// (`expected_version` = the first adjustment's version); lot 3 -3
/// (damage), then lot 4 -2 (damage). No shrink can exceed what its lot has
/// on hand (one unit at most is committed).
///
/// Asserts: every unconditional adjustment is applied, the conditional one
/// applied or refused `VersionMismatch`; every shortfall has `quantity =
/// total(resourced) + shorted`, re-sources only onto lots other than the
/// adjusted one (non-zero lines, each lot once), and one adjustment's
/// shortfalls take at most its delta; per reservation, a commit or release
/// comes after every shortfall naming it and ends exactly its granted units
/// minus the `shorted` of those shortfalls; a live reservation's `shorted`
/// is the sum of its shortfalls' `shorted`, and it holds `granted -
/// shorted`; per lot, `held` is the live holds' lines; plus the common
/// checks (the reference replay pins every line, every re-sourced line and
/// every shortfall, and explains the conditional refusal and any commit
/// refused because a shorted hold held nothing).
fn resourcing() {
    const SKU: SkuId = SkuId(30);
    let setup = [
        define(SKU, AllocationPolicy::Fefo),
        receive(SKU, 1, 4, Some(100)),
        receive(SKU, 2, 4, Some(150)),
        receive(SKU, 3, 4, Some(300)),
        receive(SKU, 4, 3, None),
    ];
    let ledger = ledger_with(&setup);
    let threads: Vec<Racer> = vec![
        Box::new(|steps: &[Step]| match steps {
            [] => Some(allocate(AllocateRequest::new(SKU, 6))),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                Some(Command::Commit { reservation: hold.reservation, quantity: Some(1) })
            }
            _ => None,
        }),
        script(vec![allocate_for(SKU, 4, 1_000)]),
        Box::new(|steps: &[Step]| match steps {
            [] => Some(allocate(AllocateRequest::new(SKU, 3).fill(FillMode::Partial))),
            [Step { result: Ok(Outcome::Allocated(hold)), .. }] => {
                Some(Command::Release { reservation: hold.reservation })
            }
            _ => None,
        }),
        Box::new(|steps: &[Step]| match steps {
            [] => Some(adjust(SKU, 1, -3, AdjustmentReason::Spoilage)),
            [Step { result: Ok(Outcome::Adjusted(first)), .. }] => Some(Command::Adjust {
                sku: SKU,
                lot: LotId(2),
                delta: -2,
                reason: AdjustmentReason::Recount,
                expected_version: Some(first.version),
            }),
            _ => None,
        }),
        script(vec![adjust(SKU, 3, -3, AdjustmentReason::Damage), adjust(SKU, 4, -2, AdjustmentReason::Damage)]),
    ];
    let threads = run_threads(&ledger, threads);
    check_history(&ledger, &setup, &threads);

    let mut granted: BTreeMap<ReservationId, &Allocation> = BTreeMap::new();
    let mut shortfalls: BTreeMap<ReservationId, Vec<(u64, &Shortfall)>> = BTreeMap::new();
    let mut endings: Vec<(ReservationId, u64, u64)> = Vec::new();
    for step in all_steps(&threads) {
        match (&step.command, &step.result) {
            (Command::Allocate(_), Ok(Outcome::Allocated(hold))) => {
                granted.insert(hold.reservation, hold);
            }
            (Command::Allocate(_), Err(CommandError::Allocate(AllocateError::Insufficient { .. }))) => {}
            (Command::Adjust { .. }, Ok(Outcome::Adjusted(adjusted))) => {
                let mut taken = 0;
                for shortfall in &adjusted.shortfalls {
                    let resourced = &shortfall.resourced;
                    assert_eq!(shortfall.quantity.get(), units(resourced) + shortfall.shorted.get(), "{shortfall:?}");
                    assert!(
                        resourced.iter().all(|line| line.lot != adjusted.lot && !line.quantity.is_zero()),
                        "re-sourced onto the adjusted lot, or nothing: {adjusted:?}"
                    );
                    assert_eq!(per_lot(resourced).len(), resourced.len(), "a lot re-sourced twice: {adjusted:?}");
                    taken += shortfall.quantity.get();
                    shortfalls.entry(shortfall.reservation).or_default().push((adjusted.version, shortfall));
                }
                assert!(taken <= adjusted.delta.unsigned_abs(), "took more than the shrink: {adjusted:?}");
            }
            (
                Command::Adjust { expected_version: Some(_), .. },
                Err(CommandError::Adjust(AdjustError::VersionMismatch { .. })),
            )
            | (Command::Commit { .. }, Err(CommandError::Commit(CommitError::ExceedsHeld { .. }))) => {}
            (_, Ok(Outcome::Committed(done))) => {
                endings.push((done.reservation, done.version, units(&done.committed) + units(&done.returned)));
            }
            (_, Ok(Outcome::Released(released))) => {
                endings.push((released.reservation, released.version, units(&released.lines)));
            }
            (command, result) => panic!("unexpected {command:?} -> {result:?} (reality is never refused)"),
        }
    }
    let shorted = |id: &ReservationId| -> u64 {
        shortfalls.get(id).map_or(0, |all| all.iter().map(|(_, shortfall)| shortfall.shorted.get()).sum())
    };
    let snapshot = ledger.snapshot(SKU).expect("defined");
    for (id, version, ended_units) in &endings {
        let named = shortfalls.get(id).map_or(&[][..], Vec::as_slice);
        assert!(named.iter().all(|(at, _)| at < version), "{id} ended at {version}, shorted after: {named:?}");
        let granted_units = granted[id].quantity().get();
        assert_eq!(*ended_units, granted_units - shorted(id), "{id}: granted {granted_units}, shortfalls {named:?}");
        assert!(snapshot.reservation(*id).is_none(), "{id} ended yet live");
    }
    for live in snapshot.reservations() {
        let allocation = granted[&live.id];
        assert_eq!(live.granted, allocation.quantity(), "{}", live.id);
        assert_eq!(live.shorted.get(), shorted(&live.id), "{}: {:?}", live.id, shortfalls.get(&live.id));
        assert_eq!(live.held().get(), live.granted.get() - live.shorted.get(), "{live:?}");
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
}

/// The distinct keys of the retry storms.
const STORM_KEYS: [&str; 4] = ["a-1", "c-1", "s-1", "t-1"];

/// Race: [`storm`] with every key remembered (`keys_max` 1,000,000: the 4
/// keys never fill the table, so none is ever forgotten).
fn retry_storm() {
    storm(KeyWindow::KEYS_MAX_DEFAULT);
}

/// Race: [`storm`] with `keys_max` 2: two keys are remembered (in flight,
/// then recorded) and never forgotten inside the window; a claim of a third
/// key while both places are taken is refused `KeysFull` and applies
/// nothing, so no key is ever applied twice (the eviction this replaced let
/// a late copy of a forgotten key apply again).
fn retry_storm_full() {
    storm(2);
}

/// One retry-storm thread's keyed commands, on a SKU of 2 units: allocate 1
/// (key `a-1`); commit in full the reservation its own `a-1` answer names
/// (`c-1`; skipped if that answer holds nothing); take 1 (`t-1`); take 1
/// (`s-1`, sold out by then). The reusing thread then sends `t-1` with a
/// take of 2 and `a-1` with a take of 1.
fn storm_thread(sku: SkuId, reuses: bool) -> KeyedRacer {
    let mut stage = 0;
    Box::new(move |steps: &[KeyedStep]| {
        loop {
            stage += 1;
            return Some(match stage {
                1 => ("a-1", allocate(AllocateRequest::new(sku, 1))),
                3 => ("t-1", take(AllocateRequest::new(sku, 1))),
                2 => match &steps[0].answer {
                    Ok(Keyed { outcome: Outcome::Allocated(hold), .. }) => {
                        ("c-1", Command::Commit { reservation: hold.reservation, quantity: None })
                    }
                    _ => continue,
                },
                4 => ("s-1", take(AllocateRequest::new(sku, 1))),
                5 if reuses => ("t-1", take(AllocateRequest::new(sku, 2))),
                6 if reuses => ("a-1", take(AllocateRequest::new(sku, 1))),
                _ => return None,
            });
        }
    })
}

/// The field a `KeyReused` for `key` must name: the storm sends each key
/// with commands differing in that field only.
fn reused_field(key: &str) -> &'static str {
    match key {
        "a-1" => "command",
        "t-1" => "quantity",
        "c-1" => "reservation",
        _ => panic!("{key} is only ever sent with one command"),
    }
}

/// Race: 3 threads send the same keyed commands (see [`storm_thread`]; the
/// third also reuses `t-1` and `a-1` with different commands) through
/// `execute_keyed` to a FIFO SKU of 2 units (two 1-unit lots), on a ledger
/// remembering at most `keys_max` keys at a fixed clock. Only allocations
/// and takes change what is available (no releases, no deadlines), so it
/// never grows. Every thread's `s-1` follows its own `a-1` and `t-1`
/// answers: two successes consumed two distinct units, a refusal saw none
/// left, and a `KeyReused` came after the reusing thread's own `s-1` saw
/// none left; so every `s-1` finds the SKU sold out, whatever is forgotten.
///
/// Asserts, per key: at most one answer applied the command (`replay ==
/// false`, a success or a refusal), and exactly one when `keys_max` covers
/// the 4 keys; every other answer either replays, unchanged, the result of
/// the application (so with every key remembered, all answers for a key
/// agree modulo the replay flag), or is `KeyReused` naming that key and the
/// first field in which it differs from the applied command (`command` for
/// `a-1`, `quantity` for `t-1`, `reservation` for `c-1`; never for `s-1`),
/// or, only when the table has no room for every key, `KeysFull` naming
/// the key and the bound. Every answer is an allocation or sale of exactly
/// 1 unit, a full commit of 1 unit, or an `Insufficient` refusal with
/// nothing available (every `s-1`, every refused allocation or take). The
/// applications account for the SKU exactly: the applied successes are
/// exactly the versions published (`final - setup` of them, one each;
/// replays, `KeyReused`, `KeysFull` and refusals publish none); `a-1`
/// grants at most one hold, committed by at most one applied commit; units
/// committed equal the applied sales plus the applied commits (1 unit
/// each); the live holds are exactly the applied allocations not committed
/// (held = their count); available + held + committed = 2. With every key
/// remembered, exactly 4 answers for `a-1` and `t-1` and 3 for `c-1` and
/// `s-1`, 3 versions, 1 hold, 1 sale, 1 commit,
/// nothing available. Plus the
/// common checks on the applied commands alone (replays and `KeyReused` ran
/// nothing), each thread's in its program order: versions gap-free and in
/// program order, replayed in version order through the reference ledger
/// with the same outcomes, every applied refusal explained, equal final
/// snapshots, a clean audit.
fn storm(keys_max: usize) {
    const SKU: SkuId = SkuId(50);
    const STOCK: u64 = 2;
    let remembers_all = keys_max >= STORM_KEYS.len();
    let setup = [define(SKU, AllocationPolicy::Fifo), receive(SKU, 1, 1, None), receive(SKU, 2, 1, None)];
    let ledger = keyed_ledger_with(keys_max, &setup);
    let start = ledger.snapshot(SKU).expect("defined").version();
    let threads =
        run_keyed_threads(&ledger, vec![storm_thread(SKU, false), storm_thread(SKU, false), storm_thread(SKU, true)]);

    let mut by_key: BTreeMap<&str, Vec<&KeyedStep>> = BTreeMap::new();
    for step in threads.iter().flatten() {
        by_key.entry(step.key.as_str()).or_default().push(step);
    }
    assert_eq!(by_key.keys().copied().collect::<Vec<_>>(), STORM_KEYS, "keys sent");
    for (&key, answers) in &by_key {
        let applications: Vec<&KeyedStep> = answers.iter().copied().filter(|step| step.applied()).collect();
        // Never twice, whatever the room: a key inside its window is never
        // forgotten.
        assert!(applications.len() <= 1, "{key} applied more than once: {answers:#?}");
        if remembers_all {
            assert_eq!(applications.len(), 1, "{key} applied other than once, every key remembered: {answers:#?}");
            let sent = match key {
                "a-1" | "t-1" => 4,
                _ => 3,
            };
            assert_eq!(answers.len(), sent, "{key}: {answers:#?}");
        }
        for step in answers {
            match &step.answer {
                _ if step.applied() => {}
                Err(KeyedError::KeysFull { key: named, keys_max: max }) => {
                    assert!(!remembers_all, "refused for room with room for every key: {step:?}");
                    assert_eq!((named.as_str(), *max), (key, keys_max), "{step:?}");
                }
                Err(KeyedError::KeyReused { key: named, field }) => {
                    assert_eq!(named.as_str(), key, "{step:?}");
                    assert_eq!(field, reused_field(key), "{step:?}");
                    assert!(
                        applications.iter().any(|first| {
                            first.command != step.command
                                && first.command.first_difference(&step.command) == Some(field)
                        }),
                        "{step:?} names no applied command's difference: {applications:#?}"
                    );
                }
                _ => assert!(
                    applications.iter().any(|first| first.command == step.command && first.result() == step.result()),
                    "the replay {step:?} is no application's result: {applications:#?}"
                ),
            }
        }
    }

    let mut granted: BTreeSet<ReservationId> = BTreeSet::new();
    let mut committed: BTreeSet<ReservationId> = BTreeSet::new();
    let (mut sold, mut applied_successes) = (0, 0);
    for step in threads.iter().flatten() {
        match (step.key.as_str(), &step.command, step.result()) {
            ("s-1", _, Some(Ok(outcome))) => panic!("s-1 sold after its own sender saw the SKU sold out: {outcome:?}"),
            (
                _,
                Command::Allocate(_) | Command::Take(_),
                Some(Err(CommandError::Allocate(AllocateError::Insufficient { available, .. }))),
            ) => assert!(available.is_zero(), "refused while units were left: {step:?}"),
            (_, Command::Allocate(_), Some(Ok(Outcome::Allocated(hold)))) => {
                assert_eq!(hold.quantity().get(), 1, "{step:?}")
            }
            (_, Command::Take(request), Some(Ok(Outcome::Sold(sale)))) => {
                assert_eq!((request.quantity, sale.quantity().get()), (1, 1), "{step:?}")
            }
            (_, Command::Commit { .. }, Some(Ok(Outcome::Committed(done)))) => {
                assert_eq!((units(&done.committed), units(&done.returned)), (1, 0), "{step:?}")
            }
            // KeyReused and KeysFull: checked above.
            (_, _, None) => {}
            _ => panic!("unexpected answer: {step:?}"),
        }
        if !step.applied() {
            continue;
        }
        match step.result() {
            Some(Ok(Outcome::Allocated(hold))) => assert!(granted.insert(hold.reservation), "{step:?}: issued twice"),
            Some(Ok(Outcome::Sold(_))) => sold += 1,
            Some(Ok(Outcome::Committed(done))) => {
                assert!(committed.insert(done.reservation), "{step:?}: committed twice")
            }
            _ => {}
        }
        applied_successes += u64::from(matches!(step.result(), Some(Ok(_))));
    }

    assert!(granted.len() <= 1, "a-1 granted more than one hold: {granted:?}");
    let snapshot = ledger.snapshot(SKU).expect("defined");
    let totals = snapshot.totals();
    assert_eq!(snapshot.version() - start, applied_successes, "one version per applied success, and no other");
    assert_eq!(totals.committed.get(), sold + committed.len() as u64, "committed: {sold} sales and {committed:?}");
    assert!(committed.is_subset(&granted), "committed {committed:?} of granted {granted:?}");
    let live: BTreeSet<ReservationId> = snapshot.reservations().map(|reservation| reservation.id).collect();
    let expected: BTreeSet<ReservationId> = granted.difference(&committed).copied().collect();
    assert_eq!(live, expected, "the live holds are not the applied allocations not committed");
    assert_eq!(totals.held.get(), live.len() as u64, "held: {live:?}");
    assert_eq!(totals.available.get() + totals.held.get() + totals.committed.get(), STOCK, "a unit leaked: {totals:?}");
    if remembers_all {
        let counts = (snapshot.version() - start, sold, granted.len(), committed.len(), totals.available.get());
        assert_eq!(counts, (3, 1, 1, 1, 0), "(versions, sales, holds, commits, available) with every key remembered");
    }
    check_history(&ledger, &setup, &applied_steps(&threads));
}
