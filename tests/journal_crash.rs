//! The crash test: a child process appends to a journal in `Sync` mode from
//! several threads and reports every acknowledged record on a pipe before
//! acknowledging it; the parent kills the child with SIGKILL at a random
//! instant, recovers the journal, and checks that every record the child
//! acknowledged, in this round and every round before, is present exactly
//! once, where it was acknowledged, with each thread's records in its
//! program order. Then the next child continues the same journal.
//!
//! The test binary is its own child: with `STOCKROOM_CRASH_CHILD` set, the
//! `crash_child` test runs the workload instead of returning.
//!
//! Rounds: 100 by default (CI); `STOCKROOM_CRASH_ROUNDS=1000` for the long
//! run. `STOCKROOM_CRASH_SEED` replays a run (the seed is printed).

#[path = "common/crash.rs"]
mod crash;

use crash::Kill;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockroom::journal::{Durability, Journal, JournalOptions};

const CHILD_ENV: &str = "STOCKROOM_CRASH_CHILD";
const ROUND_ENV: &str = "STOCKROOM_CRASH_ROUND";
const THREADS: u32 = 4;
/// A child that is never killed stops by itself after this long.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(20);

fn options() -> JournalOptions {
    // Small segments so that kills also land around rollovers.
    JournalOptions::new(Durability::Sync).segment_bytes_max(64 << 10)
}

/// A record's payload: who wrote it, and a length that varies with it.
fn payload(round: u32, thread: u32, counter: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&round.to_le_bytes());
    bytes.extend_from_slice(&thread.to_le_bytes());
    bytes.extend_from_slice(&counter.to_le_bytes());
    let pad = (counter.wrapping_mul(7919) % 48) as u8;
    bytes.extend((0..pad).map(|i| i.wrapping_mul(31) ^ 0xa5 | 1));
    bytes
}

fn decode(bytes: &[u8]) -> (u32, u32, u64) {
    assert!(bytes.len() >= 16, "a payload of {} bytes", bytes.len());
    let round = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let thread = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    let counter = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert_eq!(bytes, payload(round, thread, counter), "payload intact");
    (round, thread, counter)
}

/// The child's workload; returns at once when not running as the child.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let round: u32 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let mut recovery = Journal::open(&dir, options()).unwrap();
    // Bounded by the records on disk.
    while recovery.next_record().unwrap().is_some() {}
    let (journal, _) = recovery.finish().unwrap();
    let journal = Arc::new(journal);
    let acks = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    acks.lock().unwrap().write_all(b"READY\n").unwrap();
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let journal = Arc::clone(&journal);
            let acks = Arc::clone(&acks);
            std::thread::spawn(move || {
                let mut counter = 0u64;
                // Bounded by the child's lifetime (it is killed long before).
                while started.elapsed() < CHILD_LIFETIME_MAX {
                    let seq = journal.append_acknowledged(&payload(round, thread, counter)).unwrap();
                    // Reported before the "caller" (this loop) moves on.
                    let line = format!("ACK {seq} {round} {thread} {counter}\n");
                    acks.lock().unwrap().write_all(line.as_bytes()).unwrap();
                    counter += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// What the parent knows was acknowledged: (round, thread, counter) → seq.
type Acked = HashMap<(u32, u32, u64), u64>;

fn run_child(dir: &Path, round: u32, kill: Kill) -> Vec<(u64, u32, u32, u64)> {
    let env = [(CHILD_ENV, dir.display().to_string()), (ROUND_ENV, round.to_string())];
    crash::run_child("crash_child", &env, kill, Vec::new(), |acks, fields| {
        if let [seq, round, thread, counter] = fields {
            if let (Ok(seq), Ok(round), Ok(thread), Ok(counter)) =
                (seq.parse(), round.parse(), thread.parse(), counter.parse())
            {
                acks.push((seq, round, thread, counter));
            }
        }
    })
}

/// Recovers the journal and checks it against everything acknowledged.
/// Returns the number of records.
fn verify(dir: &Path, acked: &Acked) -> u64 {
    let mut recovery = Journal::open(dir, options()).unwrap_or_else(|error| panic!("recovery refused: {error}"));
    assert!(recovery.snapshot().is_none());
    let mut found: HashMap<(u32, u32, u64), u64> = HashMap::new();
    let mut last_counter: HashMap<(u32, u32), u64> = HashMap::new();
    let mut expected_seq = 1;
    // Bounded by the records on disk.
    while let Some(record) = recovery.next_record().unwrap_or_else(|error| panic!("recovery refused: {error}")) {
        assert_eq!(record.seq, expected_seq, "dense sequence numbers");
        expected_seq += 1;
        let key = decode(record.payload);
        assert!(found.insert(key, record.seq).is_none(), "{key:?} present twice");
        let (round, thread, counter) = key;
        let previous = last_counter.insert((round, thread), counter);
        assert_eq!(
            previous.map_or(0, |c| c + 1),
            counter,
            "thread {thread} of round {round} in program order, no hole"
        );
    }
    let (journal, _report) = recovery.finish().unwrap();
    journal.close().unwrap();
    for (key, seq) in acked {
        assert_eq!(found.get(key), Some(seq), "acknowledged {key:?} at {seq} lost or moved");
    }
    expected_seq - 1
}

#[test]
fn sigkill_at_random_instants_loses_nothing_acknowledged() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let rounds: u32 = std::env::var("STOCKROOM_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(100);
    let seed: u64 = std::env::var("STOCKROOM_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("journal crash test: {rounds} rounds, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = std::env::temp_dir().join(format!("stockroom-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut acked = Acked::new();
    let mut acked_total = 0usize;
    let mut killed_with_acks = 0u32;
    let mut records = 0;
    for round in 0..rounds {
        // Random instants: one round in five anywhere from the spawn on
        // (start-up, recovery, the truncation of a torn tail, appending),
        // the others while the child appends.
        let kill = if rng.gen_bool(0.2) {
            Kill::AfterSpawn(Duration::from_micros(rng.gen_range(0..40_000)))
        } else {
            Kill::AfterReady(Duration::from_micros(rng.gen_range(0..40_000)))
        };
        let acks = run_child(&dir, round, kill);
        if !acks.is_empty() {
            killed_with_acks += 1;
        }
        acked_total += acks.len();
        for (seq, round, thread, counter) in acks {
            assert!(acked.insert((round, thread, counter), seq).is_none(), "acknowledged twice");
        }
        records = verify(&dir, &acked);
        assert!(records as usize >= acked.len());
    }
    let elapsed = started.elapsed();
    println!(
        "journal crash test: {rounds} rounds in {:.1} s; {killed_with_acks} rounds killed mid-append; \
         {acked_total} acknowledged records, all present exactly once; {records} records on disk",
        elapsed.as_secs_f64()
    );
    assert!(killed_with_acks >= rounds / 2, "most kills must land while the child appends");
    std::fs::remove_dir_all(&dir).unwrap();
}
