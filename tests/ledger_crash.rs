//! The ledger's crash test: a child process opens a ledger kept in a
//! journal (`Sync`), and several threads sell, hold and commit or release,
//! hold with a short deadline and let it lapse, write units off with an
//! adjustment, and send keyed sales, calling `acknowledge()` after each
//! and reporting it on a pipe only once it returned; one thread writes
//! checkpoints meanwhile. The parent kills the child with SIGKILL at a
//! random instant, reopens the ledger and checks, every round:
//!
//! - it opens (no damage, every record applies) and its audit is clean;
//! - no acknowledged unit is lost: the units sold and committed are at
//!   least every acknowledged sale and commit, in this round and every
//!   round before, and at most that plus what could have been done and not
//!   yet reported (one operation per thread per round); the units written
//!   off likewise;
//! - units are conserved: available + held + committed = received +
//!   adjusted;
//! - a hold whose deadline passed during the outage has lapsed at the
//!   first look after the restart, as if the process had stayed up;
//! - the last acknowledged keyed sale of each thread replays (its key was
//!   recorded), and applies nothing.
//!
//! The test binary is its own child (see `tests/journal_crash.rs`).
//! Rounds: 100 by default (CI); `STOCKROOM_LEDGER_CRASH_ROUNDS=1000` for
//! the long run; `STOCKROOM_LEDGER_CRASH_SEED` replays one.
#![cfg(feature = "journal")]

#[path = "common/crash.rs"]
mod crash;

use crash::Kill;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockroom::journal::{Durability, JournalOptions};
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Command, IdempotencyKey, Ledger, LotId, NewLot, SkuId,
};

const CHILD_ENV: &str = "STOCKROOM_LEDGER_CRASH_CHILD";
const ROUND_ENV: &str = "STOCKROOM_LEDGER_CRASH_ROUND";
const THREADS: u64 = 3;
const RECEIVED: u64 = 100_000_000;
/// A child that is never killed stops by itself after this long.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(20);
/// The deadline of the holds left to lapse, and their units (no other
/// hold has as many).
const LAPSING_HOLD: Duration = Duration::from_millis(30);
const LAPSING_UNITS: u64 = 5;
/// The kinds of operation the child's threads take turns at.
const OPERATIONS: u64 = 6;

fn options() -> JournalOptions {
    // Small segments so that kills and checkpoints land around rollovers.
    JournalOptions::new(Durability::Sync).segment_bytes_max(64 << 10)
}

fn key(round: u32, thread: u64, counter: u64) -> IdempotencyKey {
    IdempotencyKey::new(format!("r{round}-t{thread}-{counter}")).unwrap()
}

/// The child's workload; returns at once when not running as the child.
#[test]
fn ledger_crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let round: u32 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let (ledger, _) = Ledger::builder().open(&dir, options()).unwrap();
    if ledger.snapshot(SkuId(1)).is_err() {
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), RECEIVED)).unwrap();
        ledger.acknowledge().unwrap();
    }
    let ledger = Arc::new(ledger);
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    out.lock().unwrap().write_all(b"READY\n").unwrap();
    let started = Instant::now();
    let checkpoints = {
        let ledger = Arc::clone(&ledger);
        std::thread::spawn(move || {
            while started.elapsed() < CHILD_LIFETIME_MAX {
                std::thread::sleep(Duration::from_millis(20));
                ledger.checkpoint().unwrap();
            }
        })
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (ledger, out) = (Arc::clone(&ledger), Arc::clone(&out));
            std::thread::spawn(move || {
                let mut counter = 0u64;
                // Bounded by the child's lifetime (it is killed long before).
                while started.elapsed() < CHILD_LIFETIME_MAX {
                    let line = match counter % OPERATIONS {
                        0 => {
                            ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
                            "SOLD 1".to_owned()
                        }
                        1 => {
                            let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 2)).unwrap();
                            ledger.commit(held.reservation, None).unwrap();
                            "SOLD 2".to_owned()
                        }
                        2 => {
                            let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 3)).unwrap();
                            ledger.release(held.reservation).unwrap();
                            "NOTHING".to_owned()
                        }
                        3 => {
                            let take = Command::Take(AllocateRequest::new(SkuId(1), 1));
                            ledger.execute_keyed(&key(round, thread, counter), &take).unwrap();
                            format!("KEYED {thread} {counter}")
                        }
                        4 => {
                            // Left to lapse: after a restart too.
                            let lapsing = AllocateRequest::new(SkuId(1), LAPSING_UNITS).hold_for(LAPSING_HOLD);
                            ledger.allocate(&lapsing).unwrap();
                            "NOTHING".to_owned()
                        }
                        _ => {
                            ledger.adjust(SkuId(1), LotId(1), -1, AdjustmentReason::Damage).unwrap();
                            "WRITTEN_OFF 1".to_owned()
                        }
                    };
                    ledger.acknowledge().unwrap();
                    // Reported only once acknowledged.
                    out.lock().unwrap().write_all(format!("ACK {line}\n").as_bytes()).unwrap();
                    counter += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    checkpoints.join().unwrap();
}

/// What one child reported before it died: units sold, units written
/// off, and each thread's last keyed sale.
#[derive(Default)]
struct Reported {
    sold: u64,
    written_off: u64,
    keyed: Vec<Option<u64>>,
}

fn run_child(dir: &Path, round: u32, kill_after: Duration) -> Reported {
    let env = [(CHILD_ENV, dir.display().to_string()), (ROUND_ENV, round.to_string())];
    let reported = Reported { keyed: vec![None; THREADS as usize], ..Reported::default() };
    crash::run_child(
        "ledger_crash_child",
        &env,
        Kill::AfterReady(kill_after),
        reported,
        |reported, fields| match fields {
            ["SOLD", units] => reported.sold += units.parse::<u64>().unwrap_or(0),
            ["WRITTEN_OFF", units] => reported.written_off += units.parse::<u64>().unwrap_or(0),
            ["KEYED", thread, counter] => {
                if let (Ok(thread), Ok(counter)) = (thread.parse::<usize>(), counter.parse()) {
                    reported.sold += 1;
                    reported.keyed[thread] = Some(counter);
                }
            }
            _ => {}
        },
    )
}

#[test]
fn sigkill_at_random_instants_loses_no_acknowledged_change() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let rounds: u32 = std::env::var("STOCKROOM_LEDGER_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(100);
    let seed: u64 =
        std::env::var("STOCKROOM_LEDGER_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
    println!("ledger crash test: {rounds} rounds, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = std::env::temp_dir().join(format!("stockroom-ledger-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut acknowledged, mut written_off, mut dropped, mut changes) = (0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    for round in 0..rounds {
        let reported = run_child(&dir, round, Duration::from_millis(rng.gen_range(20..300)));
        acknowledged += reported.sold;
        written_off += reported.written_off;
        let (ledger, recovered) = Ledger::builder()
            .open(&dir, options())
            .unwrap_or_else(|error| panic!("round {round} (seed {seed}): the ledger did not reopen: {error}"));
        dropped += recovered.dropped;
        changes += recovered.changes;
        assert!(ledger.audit().is_clean(), "round {round} (seed {seed}): {:?}", ledger.audit());
        let Ok(snapshot) = ledger.snapshot(SkuId(1)) else {
            assert_eq!(acknowledged, 0, "round {round}: the SKU's definition was acknowledged");
            continue;
        };
        let totals = snapshot.totals();
        let present = totals.available.get() + totals.held.get() + totals.committed.get();
        assert_eq!(i128::from(present), i128::from(RECEIVED) + i128::from(totals.adjusted), "round {round}: conserved");
        let committed = totals.committed.get();
        // Each thread may have sold (up to 2 units) and died before
        // reporting it, in every round so far.
        let unreported_max = u64::from(round + 1) * THREADS * 2;
        assert!(
            (acknowledged..=acknowledged + unreported_max).contains(&committed),
            "round {round} (seed {seed}): {committed} units committed, {acknowledged} acknowledged"
        );
        assert!(totals.adjusted <= 0, "round {round}: only write-offs");
        let lost = totals.adjusted.unsigned_abs();
        assert!(
            (written_off..=written_off + u64::from(round + 1) * THREADS).contains(&lost),
            "round {round} (seed {seed}): {lost} units written off, {written_off} acknowledged"
        );
        // Every hold with a deadline (the only holds of LAPSING_UNITS) was
        // made before the kill: once that deadline has passed, the first
        // look finds it lapsed (a hold restored without its deadline would
        // stay).
        std::thread::sleep(LAPSING_HOLD);
        let snapshot = ledger.snapshot(SkuId(1)).unwrap();
        let lapsing = snapshot.reservations().filter(|hold| hold.granted.get() == LAPSING_UNITS).count();
        assert_eq!(lapsing, 0, "round {round} (seed {seed}): holds past their deadline");
        let take = Command::Take(AllocateRequest::new(SkuId(1), 1));
        for (thread, counter) in reported.keyed.iter().enumerate() {
            let Some(counter) = counter else { continue };
            let retry = ledger.execute_keyed(&key(round, thread as u64, *counter), &take).unwrap();
            assert!(retry.replay, "round {round}: thread {thread}'s acknowledged key {counter} was forgotten");
        }
        assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), committed, "replays apply nothing");
        drop(ledger);
    }
    println!(
        "{rounds} rounds in {:.1} s: {acknowledged} units sold and {written_off} written off acknowledged, \
         {changes} changes replayed, {dropped} dropped",
        started.elapsed().as_secs_f64()
    );
    assert!(acknowledged > 0, "the children acknowledged nothing: the test tested nothing");
    let _ = std::fs::remove_dir_all(&dir);
}
