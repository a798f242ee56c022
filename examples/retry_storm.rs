//! Retry storm: every order sent several times at once with one
//! idempotency key.
//!
//! A flaky network and impatient clients: each of `--orders` one-unit
//! purchases (an `allocate` then a `commit`, each its own keyed command)
//! is sent by every one of `--copies` threads, all racing each other with
//! the same keys, against one SKU of `--units` units (fewer than the
//! orders, so some purchases are refused and the refusals must stick too).
//! Every thread walks the orders in the same order, meeting the others every
//! 64 orders, so the copies of one order really do arrive together.
//!
//! Checks on the way out: for every key, exactly one copy applied and every
//! other copy got the same outcome marked as a replay (or the same refusal);
//! duplicates (a key applied more than once) are 0; units sold equal the
//! orders whose commit applied, never more than the units (oversold 0); the
//! snapshot agrees; `Ledger::audit` is clean; and the keyed commands sent
//! (every answer a thread got: each copy's allocate, and its commit when
//! the allocate held a unit) are exactly the ones applied plus the
//! replays, and exactly `orders × copies` allocates plus `copies` commits
//! per order that got a unit. Text and `--json` print that one count.
//!
//! ```text
//! cargo run --release --example retry_storm -- [--orders N] [--copies N] [--units N] [--json]
//! ```
//!
//! Exits with status 1 (and the failed checks on stderr) if any check fails.

mod common;

use std::collections::HashMap;
use std::process::exit;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;
use stockroom::{
    AllocateRequest, AllocationPolicy, Command, CommandError, IdempotencyKey, Keyed, KeyedError, Ledger, LotId, NewLot,
    Outcome, SkuId,
};

const SKU: SkuId = SkuId(1);

struct Config {
    orders: u64,
    copies: usize,
    units: u64,
    json: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("retry_storm: {problem}");
    eprintln!("usage: retry_storm [--orders N] [--copies N] [--units N] [--json]");
    exit(2)
}

fn parse_args() -> Config {
    let mut config = Config { orders: 20_000, copies: 4, units: 15_000, json: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| common::number(&mut args, flag, usage);
        match arg.as_str() {
            "--orders" => config.orders = number("--orders"),
            "--copies" => config.copies = number("--copies") as usize,
            "--units" => config.units = number("--units"),
            "--json" => config.json = true,
            "--help" | "-h" => usage("retry every order concurrently with one idempotency key"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if config.orders == 0 || config.copies < 2 || config.units == 0 {
        usage("--orders and --units must be at least 1, --copies at least 2");
    }
    config
}

/// What one copy of one order's command got back.
type Answer = Result<Keyed<Outcome>, KeyedError>;

/// Whether the answer says this copy applied the command (not a replay).
fn applied(answer: &Answer) -> bool {
    match answer {
        Ok(keyed) => !keyed.replay,
        Err(KeyedError::Refused { replay, .. }) => !replay,
        Err(_) => false,
    }
}

/// The answer with its replay mark removed, to compare copies.
fn unmarked(answer: &Answer) -> Result<&Outcome, &CommandError> {
    match answer {
        Ok(keyed) => Ok(&keyed.outcome),
        Err(KeyedError::Refused { error, .. }) => Err(error),
        Err(other) => panic!("no copy reuses a key for another command: {other}"),
    }
}

fn key(kind: &str, order: u64) -> IdempotencyKey {
    IdempotencyKey::new(format!("{kind}-{order}")).expect("short keys")
}

/// Orders between two meetings of the client threads: keeps the copies of
/// one order arriving together instead of one thread running far ahead.
const LOCKSTEP: u64 = 64;

/// One thread's run: every order, allocate then commit, each keyed.
fn client(ledger: &Ledger, orders: u64, lockstep: &Barrier) -> Vec<(Answer, Option<Answer>)> {
    (0..orders)
        .map(|order| {
            if order % LOCKSTEP == 0 {
                lockstep.wait();
            }
            let allocate = Command::Allocate(AllocateRequest::new(SKU, 1));
            let held = ledger.execute_keyed(&key("allocate", order), &allocate);
            let reservation = match &held {
                Ok(Keyed { outcome: Outcome::Allocated(allocation), .. }) => Some(allocation.reservation),
                _ => None,
            };
            let committed = reservation.map(|reservation| {
                ledger.execute_keyed(&key("commit", order), &Command::Commit { reservation, quantity: None })
            });
            (held, committed)
        })
        .collect()
}

fn main() {
    let config = parse_args();
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("fresh ledger");
    ledger.receive(SKU, NewLot::new(LotId(1), config.units)).expect("units in range");

    let started = Instant::now();
    let lockstep = Barrier::new(config.copies);
    let runs: Vec<Vec<(Answer, Option<Answer>)>> = thread::scope(|scope| {
        let clients: Vec<_> =
            (0..config.copies).map(|_| scope.spawn(|| client(&ledger, config.orders, &lockstep))).collect();
        clients.into_iter().map(|client| client.join().expect("a client thread panicked")).collect()
    });
    let elapsed = started.elapsed();

    let mut failures = Vec::new();
    let (mut duplicates, mut replays, mut sold, mut refused) = (0u64, 0u64, 0u64, 0u64);
    // Tallied two ways, which must agree: every answer a thread got is one
    // keyed command sent, and each was either applied or a replay.
    let sends: u64 = runs.iter().flatten().map(|(_, committed)| 1 + u64::from(committed.is_some())).sum();
    let (mut applied_total, mut held_orders) = (0u64, 0u64);
    let mut reservations = HashMap::new();
    for order in 0..config.orders as usize {
        let copies: Vec<&(Answer, Option<Answer>)> = runs.iter().map(|run| &run[order]).collect();
        // The allocation: one copy applied, the rest replayed its answer.
        let applied_allocations = copies.iter().filter(|(held, _)| applied(held)).count() as u64;
        applied_total += applied_allocations;
        duplicates += applied_allocations.saturating_sub(1);
        replays += copies.len() as u64 - applied_allocations;
        if applied_allocations != 1 {
            failures.push(format!("order {order}: allocate applied {applied_allocations} times"));
        }
        let first = unmarked(&copies[0].0);
        if copies.iter().any(|(held, _)| unmarked(held) != first) {
            failures.push(format!("order {order}: copies of one allocate got different answers"));
        }
        match first {
            Ok(Outcome::Allocated(allocation)) => {
                held_orders += 1;
                if reservations.insert(allocation.reservation, order).is_some() {
                    failures.push(format!("order {order}: {} issued twice", allocation.reservation));
                }
            }
            Ok(other) => failures.push(format!("order {order}: allocate answered {other:?}")),
            Err(_) => refused += 1,
        }
        // The commit, for orders that got a unit.
        let commits: Vec<&Answer> = copies.iter().filter_map(|(_, committed)| committed.as_ref()).collect();
        if commits.is_empty() {
            continue;
        }
        let applied_commits = commits.iter().filter(|answer| applied(answer)).count() as u64;
        applied_total += applied_commits;
        duplicates += applied_commits.saturating_sub(1);
        replays += commits.len() as u64 - applied_commits;
        let first = unmarked(commits[0]);
        if applied_commits != 1 || commits.iter().any(|answer| unmarked(answer) != first) {
            failures.push(format!("order {order}: commit applied {applied_commits} times or answers differ"));
        }
        match first {
            Ok(Outcome::Committed(committed)) => {
                sold += committed.committed.iter().map(|l| l.quantity.get()).sum::<u64>()
            }
            other => failures.push(format!("order {order}: commit answered {other:?}")),
        }
    }

    let snapshot = ledger.snapshot(SKU).expect("defined");
    let totals = snapshot.totals();
    let oversold = sold.saturating_sub(config.units);
    if totals.committed.get() != sold {
        failures.push(format!("snapshot committed {} but clients saw {sold} sold", totals.committed));
    }
    if totals.held.get() != 0 {
        failures.push(format!("{} units still held: an applied allocation was never committed", totals.held));
    }
    if sold != config.units.min(config.orders) {
        failures.push(format!("sold {sold}, expected {}", config.units.min(config.orders)));
    }
    let audit = ledger.audit();
    if !audit.is_clean() {
        failures.push(format!("audit: {:?}", audit.violations));
    }
    if duplicates > 0 {
        failures.push(format!("{duplicates} duplicate applications"));
    }
    if sends != applied_total + replays {
        failures.push(format!("{sends} keyed commands sent, but {applied_total} applied + {replays} replays"));
    }
    let sends_expected = (config.orders + held_orders) * config.copies as u64;
    if sends != sends_expected {
        failures.push(format!(
            "{sends} keyed commands sent, not {} copies of {} allocates and {held_orders} commits",
            config.copies, config.orders
        ));
    }
    if config.json {
        println!(
            "{{\"orders\":{},\"copies\":{},\"units\":{},\"sends\":{sends},\"sold\":{sold},\"refused\":{refused},\
             \"replays\":{replays},\"duplicates\":{duplicates},\"oversold\":{oversold},\"audit_clean\":{},\
             \"elapsed_s\":{:.3}}}",
            config.orders,
            config.copies,
            config.units,
            audit.is_clean(),
            elapsed.as_secs_f64()
        );
    } else {
        println!(
            "retry storm: {} orders of 1 unit, each sent by {} threads at once with one key per command, {} units",
            config.orders, config.copies, config.units
        );
        println!("  keyed commands sent {sends}");
        println!("  sold              {sold}");
        println!("  refused           {refused} (sold out; every copy got the same refusal)");
        println!("  replays           {replays} (copies answered with the first outcome)");
        println!("  duplicates        {duplicates}");
        println!("  oversold          {oversold}");
        println!("  audit             {}", if audit.is_clean() { "clean" } else { "VIOLATED" });
        println!("  elapsed           {:.3} s", elapsed.as_secs_f64());
    }
    if !failures.is_empty() {
        for failure in failures.iter().take(20) {
            eprintln!("retry_storm: FAILED: {failure}");
        }
        exit(1);
    }
}
