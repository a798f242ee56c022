//! The journal's benches, in one process, on one disk (the system temp
//! directory unless `STOCKROOM_BENCH_DIR` says otherwise):
//!
//! - `group`: durable throughput of `Sync` group commit (with and without
//!   its gather window) against two baselines that fsync each change: a
//!   mutex around one file (write, fdatasync), and the same without the
//!   mutex (concurrent `O_APPEND` writes and fdatasyncs, which the file
//!   system may batch); 16 and 256 concurrent callers each waiting for its
//!   acknowledgement; interleaved rounds (A B C D, A B C D, …), the median
//!   of the per-round ratios; p50/p99 acknowledgement latency; bytes per
//!   record.
//! - `batched`: what an append costs the caller in `Batched` and `Off`
//!   modes (ns per append, one thread), and the measured loss window.
//! - `recovery`: open + verify + replay of 10 million 16-byte records.
//! - `encoding`: a hold (Allocate + its outcome) and a commit (Commit + its
//!   outcome) as postcard, bincode and a hand-laid layout: bytes, and ns to
//!   encode and decode.
//!
//! - `ledger`: the ledger kept in a journal. One thread's hold + commit
//!   (ns per lifecycle) without a journal, and with one in `Off` and
//!   `Batched` mode (interleaved rounds, median of the ratios), and the
//!   bytes the journal wrote per lifecycle; 16 threads each selling one
//!   unit and calling `acknowledge()` in `Sync` mode (acknowledged sales
//!   per second, fsyncs); reopening a ledger of
//!   `STOCKROOM_BENCH_LEDGER_CHANGES` changes (default 1,000,000) with no
//!   checkpoint: time, and changes per second.
//!
//! Settings (environment): `STOCKROOM_BENCH_ROUNDS` (default 5),
//! `STOCKROOM_BENCH_GATHER_US` (the gather windows compared, default
//! `0,200`), `STOCKROOM_BENCH_BASELINES=0` (skip the baselines: the
//! journal's variants only),
//! `STOCKROOM_BENCH_MS` per run (default 1000), `STOCKROOM_BENCH_CALLERS`
//! (default `16,256`), `STOCKROOM_BENCH_RECOVERY_RECORDS` (default
//! 10,000,000); a plain argument selects sections by name.

use hdrhistogram::Histogram;
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use stockroom::journal::{Durability, Journal, JournalOptions};
use stockroom::{
    AllocateRequest, Allocation, Command, Committed, Line, Lines, LotId, Outcome, Quantity, ReservationId, SkuId,
    Timestamp,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn bench_dir(tag: &str) -> PathBuf {
    let base = std::env::var_os("STOCKROOM_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("stockroom-bench-journal-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// A 16-byte payload: about what one ledger change will take.
fn payload(thread: usize, i: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(thread as u64).to_le_bytes());
    bytes[8..].copy_from_slice(&i.to_le_bytes());
    bytes
}

// ---------------------------------------------------------------- group commit

/// Something that makes a change durable before returning.
trait Durable: Send + Sync {
    fn append(&self, payload: &[u8]);
}

impl Durable for Journal {
    fn append(&self, payload: &[u8]) {
        self.append_acknowledged(payload).unwrap();
    }
}

/// The baseline: each change written and fdatasync'ed by its caller, under
/// a mutex (the file is one), in the journal's own frame format.
struct FsyncEach {
    file: Mutex<(File, u64)>,
}

impl FsyncEach {
    fn new(dir: &Path) -> FsyncEach {
        let file = OpenOptions::new().create(true).append(true).open(dir.join("baseline.log")).unwrap();
        FsyncEach { file: Mutex::new((file, 1)) }
    }
}

impl Durable for FsyncEach {
    fn append(&self, payload: &[u8]) {
        let mut frame = Vec::with_capacity(64);
        let mut guard = self.file.lock().unwrap();
        let seq = guard.1;
        // The journal's frame layout for one record: 16-byte header, a
        // one-byte length, the payload.
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&((payload.len() as u32 + 1) | (1 << 24)).to_le_bytes());
        frame.extend_from_slice(&seq.to_le_bytes());
        frame.push(payload.len() as u8);
        frame.extend_from_slice(payload);
        let crc = crc32c::crc32c(&frame[4..]);
        frame[..4].copy_from_slice(&crc.to_le_bytes());
        guard.0.write_all(&frame).unwrap();
        guard.0.sync_data().unwrap();
        guard.1 += 1;
    }
}

/// The second baseline: every caller writes its change (one `write` on an
/// `O_APPEND` file, atomic) and fdatasyncs, with no lock: concurrent syncs
/// may then share the file system's own journal commit (ext4's jbd2 batches
/// the syncs of different threads).
struct FsyncEachUnlocked {
    file: File,
}

impl FsyncEachUnlocked {
    fn new(dir: &Path) -> FsyncEachUnlocked {
        FsyncEachUnlocked {
            file: OpenOptions::new().create(true).append(true).open(dir.join("baseline-unlocked.log")).unwrap(),
        }
    }
}

impl Durable for FsyncEachUnlocked {
    fn append(&self, payload: &[u8]) {
        let mut frame = [0u8; 64];
        frame[16] = payload.len() as u8;
        frame[17..17 + payload.len()].copy_from_slice(payload);
        let len = 17 + payload.len();
        let crc = crc32c::crc32c(&frame[4..len]);
        frame[..4].copy_from_slice(&crc.to_le_bytes());
        (&self.file).write_all(&frame[..len]).unwrap();
        self.file.sync_data().unwrap();
    }
}

struct Run {
    acks_per_sec: f64,
    latency: Histogram<u64>,
}

fn run_callers(target: Arc<dyn Durable>, callers: usize, duration: Duration) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(callers + 1));
    let workers: Vec<_> = (0..callers)
        .map(|thread| {
            let target = Arc::clone(&target);
            let stop = Arc::clone(&stop);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
                let mut i = 0u64;
                start.wait();
                // Bounded by the run's duration.
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    target.append(&payload(thread, i));
                    latency.saturating_record(began.elapsed().as_nanos() as u64);
                    i += 1;
                }
                latency
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for worker in workers {
        latency.add(worker.join().unwrap()).unwrap();
    }
    let elapsed = began.elapsed();
    Run { acks_per_sec: latency.len() as f64 / elapsed.as_secs_f64(), latency }
}

fn group(rounds: usize, duration: Duration) {
    let callers_list: Vec<usize> = std::env::var("STOCKROOM_BENCH_CALLERS")
        .unwrap_or_else(|_| "16,256".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    // The gather windows compared (µs): the default (none), and 200 µs.
    let gathers: Vec<u64> = std::env::var("STOCKROOM_BENCH_GATHER_US")
        .unwrap_or_else(|_| "0,200".into())
        .split(',')
        .filter_map(|g| g.trim().parse().ok())
        .collect();
    println!("== group: Sync group commit vs fsync per change ({rounds} interleaved rounds of {duration:?})");
    let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for callers in callers_list {
        let dir = bench_dir(&format!("group-{callers}"));
        let mut ratios = vec![Vec::new(); gathers.len()];
        let mut rates = vec![Vec::new(); gathers.len()];
        let mut latency: Vec<_> = gathers.iter().map(|_| histogram()).collect();
        let mut totals = vec![(0u64, 0u64, 0u64); gathers.len()];
        let mut base_rates = Vec::new();
        let mut base_latency = histogram();
        let mut unlocked_ratios = vec![Vec::new(); gathers.len()];
        let mut unlocked_rates = Vec::new();
        let mut unlocked_latency = histogram();
        for round in 0..rounds {
            // A B C A B C: every contender once per round, the same disk.
            let mut round_rates = Vec::new();
            for (variant, gather) in gathers.iter().enumerate() {
                let journal_dir = dir.join(format!("journal-{round}-{gather}"));
                let options = JournalOptions::new(Durability::Sync).gather_max(Duration::from_micros(*gather));
                let (journal, _) = Journal::open(&journal_dir, options).unwrap().finish().unwrap();
                let journal = Arc::new(journal);
                let grouped = run_callers(Arc::clone(&journal) as Arc<dyn Durable>, callers, duration);
                let stats = journal.stats();
                totals[variant].0 += stats.bytes;
                totals[variant].1 += stats.records;
                totals[variant].2 += stats.syncs;
                drop(journal);
                fs::remove_dir_all(&journal_dir).unwrap();
                round_rates.push(grouped.acks_per_sec);
                latency[variant].add(&grouped.latency).unwrap();
            }
            let baseline_dir = dir.join(format!("baseline-{round}"));
            fs::create_dir_all(&baseline_dir).unwrap();
            let (baseline, unlocked) = if env_or("STOCKROOM_BENCH_BASELINES", 1) == 0 {
                // Only the journal's variants, against each other (the
                // ratios printed are then meaningless).
                let none = || Run { acks_per_sec: 1.0, latency: histogram() };
                (none(), none())
            } else {
                (
                    run_callers(Arc::new(FsyncEach::new(&baseline_dir)), callers, duration),
                    run_callers(Arc::new(FsyncEachUnlocked::new(&baseline_dir)), callers, duration),
                )
            };
            fs::remove_dir_all(&baseline_dir).unwrap();
            for (variant, rate) in round_rates.into_iter().enumerate() {
                ratios[variant].push(rate / baseline.acks_per_sec);
                unlocked_ratios[variant].push(rate / unlocked.acks_per_sec);
                rates[variant].push(rate);
            }
            unlocked_rates.push(unlocked.acks_per_sec);
            unlocked_latency.add(&unlocked.latency).unwrap();
            base_rates.push(baseline.acks_per_sec);
            base_latency.add(&baseline.latency).unwrap();
        }
        println!(
            "callers {callers:>3}: fsync each (locked) {:>7.0} acks/s (p50 {:>9.1} µs, p99 {:>9.1} µs); fsync each (unlocked) {:>7.0} acks/s (p50 {:>9.1} µs, p99 {:>9.1} µs)",
            median(&mut base_rates),
            base_latency.value_at_quantile(0.5) as f64 / 1e3,
            base_latency.value_at_quantile(0.99) as f64 / 1e3,
            median(&mut unlocked_rates),
            unlocked_latency.value_at_quantile(0.5) as f64 / 1e3,
            unlocked_latency.value_at_quantile(0.99) as f64 / 1e3,
        );
        for (variant, gather) in gathers.iter().enumerate() {
            let (bytes, records, syncs) = totals[variant];
            println!(
                "  group commit, gather_max {gather:>3} µs: {:>9.0} acks/s (p50 {:>7.1} µs, p99 {:>8.1} µs), median ratio {:.1}x locked (rounds: {}), {:.1}x unlocked (rounds: {}); {:.1} records per sync; {:.2} bytes per 16-byte record",
                median(&mut rates[variant]),
                latency[variant].value_at_quantile(0.5) as f64 / 1e3,
                latency[variant].value_at_quantile(0.99) as f64 / 1e3,
                median(&mut ratios[variant].clone()),
                ratios[variant].iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(" "),
                median(&mut unlocked_ratios[variant].clone()),
                unlocked_ratios[variant].iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(" "),
                records as f64 / syncs.max(1) as f64,
                bytes as f64 / records.max(1) as f64,
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

// ---------------------------------------------------------------- batched

fn batched() {
    println!("== batched: caller-side cost of an append (one thread, 16-byte payloads)");
    let appends = 2_000_000u64;
    for (name, durability) in [
        ("Batched { max_delay: 5 ms }", Durability::Batched { max_delay: Duration::from_millis(5) }),
        ("Off", Durability::Off),
    ] {
        let mut nanos = Vec::new();
        let mut window = Duration::ZERO;
        let mut per_sync = 0.0;
        for round in 0..3 {
            let dir = bench_dir(&format!("batched-{round}"));
            let (journal, _) = Journal::open(&dir, JournalOptions::new(durability)).unwrap().finish().unwrap();
            let began = Instant::now();
            for i in 0..appends {
                black_box(journal.append(&payload(0, i)).unwrap().seq());
            }
            nanos.push(began.elapsed().as_nanos() as f64 / appends as f64);
            journal.close().unwrap();
            let stats = journal.stats();
            window = window.max(stats.loss_window_max);
            per_sync = stats.records as f64 / stats.syncs.max(1) as f64;
            drop(journal);
            fs::remove_dir_all(&dir).unwrap();
        }
        println!(
            "{name:<28}: {:>6.1} ns per append (median of 3 x {appends}); loss window max {:?}; {per_sync:.0} records per sync",
            median(&mut nanos),
            window
        );
    }
}

// ---------------------------------------------------------------- recovery

fn recovery() {
    let total: u64 = env_or("STOCKROOM_BENCH_RECOVERY_RECORDS", 10_000_000);
    println!("== recovery: {total} records of 16 bytes");
    let dir = bench_dir("recovery");
    let options = JournalOptions::new(Durability::Off);
    {
        let (journal, _) = Journal::open(&dir, options.clone()).unwrap().finish().unwrap();
        for i in 0..total {
            let _ = journal.append(&payload(0, i)).unwrap();
        }
        journal.close().unwrap();
    }
    let bytes: u64 = fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().metadata().unwrap().len()).sum();
    for round in 0..3 {
        let began = Instant::now();
        let mut recovery = Journal::open(&dir, options.clone()).unwrap();
        let mut count = 0u64;
        let mut checksum = 0u64;
        while let Some(record) = recovery.next_record().unwrap() {
            count += 1;
            checksum = checksum.wrapping_add(u64::from(record.payload[8]));
        }
        let (journal, report) = recovery.finish().unwrap();
        let elapsed = began.elapsed();
        assert_eq!((count, report.replayed), (total, total));
        black_box(checksum);
        journal.close().unwrap();
        println!(
            "round {round}: {:.2} s: {:.1} M records/s, {:.0} MB/s read and verified ({:.1} MB on disk, {} segments)",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64() / 1e6,
            bytes as f64 / elapsed.as_secs_f64() / 1e6,
            bytes as f64 / 1e6,
            report.segments_read,
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- encoding

/// A hand-laid layout sketch: a tag byte, then LEB128 integers.
mod hand {
    use super::*;

    fn put(out: &mut Vec<u8>, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn get(bytes: &[u8], at: &mut usize) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = bytes[*at];
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }

    /// A hold: tag 1, instant (ms), sku, quantity, hold_for (ms, 0 none),
    /// then the outcome: reservation seq, version, line count, lines.
    /// (Fill mode, policy override, shelf life and expected version would
    /// take a flags byte; the common request has none.)
    pub(super) fn hold(out: &mut Vec<u8>, at: Timestamp, request: &AllocateRequest, outcome: &Allocation) {
        out.push(1);
        put(out, at.0);
        put(out, request.sku.0);
        put(out, request.quantity);
        put(out, request.hold_for.map_or(0, |d| d.as_millis() as u64));
        put(out, outcome.reservation.seq);
        put(out, outcome.version);
        put(out, outcome.lines.len() as u64);
        for line in &outcome.lines {
            put(out, line.lot.0);
            put(out, line.quantity.get());
        }
    }

    /// A commit: tag 2, instant, sku, reservation seq, quantity (0: all),
    /// version, committed lines, returned lines.
    pub(super) fn commit(out: &mut Vec<u8>, at: Timestamp, reservation: ReservationId, outcome: &Committed) {
        out.push(2);
        put(out, at.0);
        put(out, reservation.sku.0);
        put(out, reservation.seq);
        put(out, 0);
        put(out, outcome.version);
        for lines in [&outcome.committed, &outcome.returned] {
            put(out, lines.len() as u64);
            for line in lines {
                put(out, line.lot.0);
                put(out, line.quantity.get());
            }
        }
    }

    /// Decodes either record back to (instant, sku, fields…) sums: enough
    /// to measure a decode that touches every field.
    pub(super) fn decode(bytes: &[u8]) -> u64 {
        let mut at = 1;
        let mut sum = 0u64;
        while at < bytes.len() {
            sum = sum.wrapping_add(get(bytes, &mut at));
        }
        sum
    }
}

fn encoding() {
    println!("== encoding: a hold and a commit, each with its outcome and instant");
    let sku = SkuId(4_711);
    let reservation = ReservationId::new(sku, 1_234);
    let line = Line { lot: LotId(17), quantity: Quantity::new(3).unwrap() };
    let request = AllocateRequest::new(sku, 3).hold_for(Duration::from_secs(900));
    let allocation = Allocation::new(reservation, vec![line], Some(Timestamp(1_767_225_600_000 + 900_000)), 98_765);
    let committed = Committed::new(reservation, vec![line], Lines::default(), 98_766);
    let at = Timestamp(1_767_225_600_000);
    let hold = (at, Command::Allocate(request.clone()), Outcome::Allocated(allocation.clone()));
    let commit = (at, Command::Commit { reservation, quantity: None }, Outcome::Committed(committed.clone()));
    type Rec = (Timestamp, Command, Outcome);
    let iterations = 1_000_000u32;
    let measure = |name: &str, encode: &dyn Fn(&Rec, &mut Vec<u8>), decode: &dyn Fn(&[u8]) -> u64| {
        let mut out = Vec::with_capacity(128);
        let mut sizes = Vec::new();
        let mut nanos = Vec::new();
        for record in [&hold, &commit] {
            out.clear();
            encode(record, &mut out);
            sizes.push(out.len());
            let began = Instant::now();
            for _ in 0..iterations {
                out.clear();
                encode(black_box(record), &mut out);
                black_box(decode(black_box(&out)));
            }
            nanos.push(began.elapsed().as_nanos() as f64 / f64::from(iterations));
        }
        println!(
            "{name:<10}: hold {:>3} B, commit {:>3} B, hold+commit {:>3} B payload ({:>3} B in the journal at one frame per record, ~{} B batched); encode+decode {:>5.0} ns hold, {:>5.0} ns commit",
            sizes[0],
            sizes[1],
            sizes[0] + sizes[1],
            sizes[0] + sizes[1] + 2 * 17,
            sizes[0] + sizes[1] + 2,
            nanos[0],
            nanos[1]
        );
    };
    measure(
        "postcard",
        &|record, out| {
            let bytes = postcard::to_allocvec(record).unwrap();
            out.extend_from_slice(&bytes);
        },
        &|bytes| {
            let record: Rec = postcard::from_bytes(bytes).unwrap();
            record.0.0
        },
    );
    measure("bincode", &|record, out| bincode::serialize_into(&mut *out, record).unwrap(), &|bytes| {
        let record: Rec = bincode::deserialize(bytes).unwrap();
        record.0.0
    });
    measure(
        "hand-laid",
        &|record, out| match record {
            (at, Command::Allocate(request), Outcome::Allocated(allocation)) => {
                hand::hold(out, *at, request, allocation)
            }
            (at, Command::Commit { reservation, .. }, Outcome::Committed(committed)) => {
                hand::commit(out, *at, *reservation, committed)
            }
            _ => unreachable!(),
        },
        &hand::decode,
    );
}

/// `lifecycles` hold + commit pairs on `ledger` (SKU 1), in ns per pair.
fn lifecycles(ledger: &stockroom::Ledger, lifecycles: u64) -> f64 {
    let started = Instant::now();
    for _ in 0..lifecycles {
        let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 1)).unwrap();
        black_box(ledger.commit(held.reservation, None).unwrap());
    }
    started.elapsed().as_nanos() as f64 / lifecycles as f64
}

fn stocked(ledger: &stockroom::Ledger) {
    ledger.define_sku(SkuId(1), stockroom::AllocationPolicy::Fifo).unwrap();
    ledger.receive(SkuId(1), stockroom::NewLot::new(LotId(1), Quantity::MAX.get())).unwrap();
}

fn ledger_section(rounds: usize) {
    use stockroom::Ledger;
    let per_round: u64 = env_or("STOCKROOM_BENCH_LIFECYCLES", 200_000);
    println!("ledger: hold + commit, one thread, {per_round} per run, {rounds} rounds (A B C, ...)");
    let dir = bench_dir("ledger");
    let open = |mode: Durability, tag: &str| {
        let (ledger, _) = Ledger::builder().open(dir.join(tag), JournalOptions::new(mode)).unwrap();
        stocked(&ledger);
        ledger
    };
    let plain = Ledger::new();
    stocked(&plain);
    let off = open(Durability::Off, "off");
    let batched = open(Durability::Batched { max_delay: Duration::from_millis(5) }, "batched");
    let (mut off_ratios, mut batched_ratios, mut figures) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let base = lifecycles(&plain, per_round);
        let with_off = lifecycles(&off, per_round);
        let with_batched = lifecycles(&batched, per_round);
        off_ratios.push(with_off / base);
        batched_ratios.push(with_batched / base);
        figures.push((base, with_off, with_batched));
    }
    for (base, with_off, with_batched) in &figures {
        println!("  no journal {base:.0} ns, Off {with_off:.0} ns, Batched {with_batched:.0} ns");
    }
    let stats = off.journal().unwrap().stats();
    off.acknowledge().unwrap();
    let pairs = per_round * rounds as u64;
    println!(
        "  journal / none: Off {:.2}x, Batched {:.2}x (medians); {:.1} bytes per lifecycle ({} records, {} bytes)",
        median(&mut off_ratios),
        median(&mut batched_ratios),
        stats.bytes as f64 / pairs as f64,
        stats.records,
        stats.bytes
    );
    drop((off, batched));

    let threads = 16;
    let (ledger, _) = Ledger::builder().open(dir.join("sync"), JournalOptions::new(Durability::Sync)).unwrap();
    stocked(&ledger);
    let ledger = Arc::new(ledger);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (ledger, stop) = (Arc::clone(&ledger), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut sold = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
                    ledger.acknowledge().unwrap();
                    sold += 1;
                }
                sold
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let sold: u64 = workers.into_iter().map(|worker| worker.join().unwrap()).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let syncs = ledger.journal().unwrap().stats().syncs;
    println!(
        "  Sync, {threads} threads selling and acknowledging each sale: {:.0} acknowledged sales/s, {:.1} sales per fsync",
        sold as f64 / elapsed,
        sold as f64 / syncs.max(1) as f64
    );
    drop(ledger);

    let changes: u64 = env_or("STOCKROOM_BENCH_LEDGER_CHANGES", 1_000_000);
    let recovery_dir = dir.join("recovery");
    {
        let (ledger, _) = Ledger::builder().open(&recovery_dir, JournalOptions::new(Durability::Off)).unwrap();
        stocked(&ledger);
        for _ in 0..changes {
            ledger.take(&AllocateRequest::new(SkuId(1), 1)).unwrap();
        }
    }
    let started = Instant::now();
    let (ledger, recovered) = Ledger::builder().open(&recovery_dir, JournalOptions::new(Durability::Off)).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), changes);
    println!(
        "  reopen after {changes} changes, no checkpoint: {:.2} s ({:.0} changes/s; {} applied)",
        elapsed.as_secs_f64(),
        recovered.changes as f64 / elapsed.as_secs_f64(),
        recovered.changes
    );
    drop(ledger);
    let _ = fs::remove_dir_all(&dir);
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with('-')).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let rounds: usize = env_or("STOCKROOM_BENCH_ROUNDS", 5);
    let duration = Duration::from_millis(env_or("STOCKROOM_BENCH_MS", 1000));
    if wanted("encoding") {
        encoding();
    }
    if wanted("batched") {
        batched();
    }
    if wanted("group") {
        group(rounds, duration);
    }
    if wanted("recovery") {
        recovery();
    }
    if wanted("ledger") {
        ledger_section(rounds);
    }
}
