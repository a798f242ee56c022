//! The SKU table against the maps a team would use instead, in one
//! process: lookup cost per id pattern and key distribution, lookups of
//! one hot SKU from two threads, insertion cost at 1k and 1M SKUs, bytes
//! per SKU, probe lengths; and instruction counts under callgrind.
//!
//! Contenders: the table (`SkuTable`), `std`'s `HashMap` (SipHash), the
//! previous implementation (64 shards, each an immutable `HashMap` with a
//! multiplicative hasher swapped whole through arc-swap; copied here as
//! it was), and `DashMap` (shard read-write locks, SipHash). The value is
//! 16 bytes, the size of the ledger's `SkuCell`.
//!
//! Timed sections run each contender in turn, round after round (A B C D
//! A B C D …), because this machine is shared and its speed drifts; each
//! round's ratio to `std`'s `HashMap` is taken within the round and the
//! median of those ratios is reported. Instruction counts (`callgrind`)
//! are deterministic and need no rounds.
//!
//! ```text
//! cargo bench --bench sku_table                      # every timed section, memory, probes
//! cargo bench --bench sku_table -- lookup            # one section: lookup, hot, insert, memory, probes
//! cargo bench --bench sku_table -- callgrind         # instruction counts (needs valgrind)
//! ```
//!
//! Settings (environment): `STOCKROOM_BENCH_ROUNDS` (default 7).

use arc_swap::ArcSwap;
use dashmap::DashMap;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use stockroom::SkuId;
use stockroom::bench_internals::SkuTable;

// ---------------------------------------------------------------- memory

/// Counts live heap bytes; defers to the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a statistic, read on this thread between phases.
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Relaxed: as above.
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    // Relaxed: see `Counting`.
    LIVE.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------- ids and values

/// What every contender stores: 16 bytes, like the ledger's `SkuCell`.
#[derive(Clone, Copy)]
struct Value([u64; 2]);

fn value_of(id: u64) -> Value {
    Value([id ^ 0x5A5A, id.rotate_left(7)])
}

/// A xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// splitmix64 of `i`: distinct pseudo-random ids.
fn random_id(i: u64) -> u64 {
    let x = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mix13(x)
}

fn mix13(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The inverse of `mix13`: ids an attacker who knows the table's mixing
/// function (but not its seed) would choose to collide.
fn unmix13(y: u64) -> u64 {
    fn unshift(y: u64, shift: u32) -> u64 {
        let mut x = y;
        for _ in 0..64 / shift + 1 {
            x = y ^ (x >> shift);
        }
        x
    }
    fn inverse(odd: u64) -> u64 {
        let mut inv = odd;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2_u64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        inv
    }
    let x = unshift(y, 31);
    let x = unshift(x.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
    unshift(x.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30)
}

fn phi_inverse() -> u64 {
    let phi = 0x9E37_79B9_7F4A_7C15_u64;
    let mut inv = phi;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2_u64.wrapping_sub(phi.wrapping_mul(inv)));
    }
    inv
}

/// The id patterns measured: name and the `i`-th id.
fn pattern(name: &str) -> fn(u64) -> u64 {
    match name {
        "dense" => |i| i,
        "i << 32" => |i| i << 32,
        "i << 16" => |i| i << 16,
        "i * 1000" => |i| i * 1000,
        "random" => random_id,
        "i * φ⁻¹" => |i| i.wrapping_mul(phi_inverse()),
        "unseeded preimages" => |i| unmix13(i << 40),
        _ => panic!("unknown pattern {name}"),
    }
}

const LOOKUP_PATTERNS: [&str; 3] = ["dense", "i << 32", "random"];
const PROBE_PATTERNS: [&str; 7] =
    ["dense", "i << 32", "i << 16", "i * 1000", "random", "i * φ⁻¹", "unseeded preimages"];

/// `len` indices into `skus` SKUs: uniform, or Zipf (s = 1) over a
/// shuffled rank order, so the hot SKUs are not the first ids.
fn stream(skus: usize, len: usize, zipf: bool, seed: u64) -> Vec<usize> {
    let mut rng = Rng(seed | 1);
    if !zipf {
        return (0..len).map(|_| (rng.next() % skus as u64) as usize).collect();
    }
    let weights: Vec<f64> = (1..=skus).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let cdf: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    let mut rank_to_sku: Vec<usize> = (0..skus).collect();
    for i in (1..skus).rev() {
        rank_to_sku.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    (0..len)
        .map(|_| {
            let u = (rng.next() >> 11) as f64 / (1_u64 << 53) as f64;
            rank_to_sku[cdf.partition_point(|&c| c < u).min(skus - 1)]
        })
        .collect()
}

// ---------------------------------------------------------------- the previous implementation

/// The old table's hasher: one multiply (Fibonacci hashing).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type OldShard = HashMap<SkuId, Arc<Value>, BuildHasherDefault<IdHasher>>;

/// `src/sku_table.rs` before this change, generic over the value.
struct OldTable {
    shards: Box<[ArcSwap<OldShard>]>,
}

impl OldTable {
    const SHARDS: usize = 64;

    fn new() -> OldTable {
        OldTable { shards: (0..Self::SHARDS).map(|_| ArcSwap::new(Arc::new(OldShard::default()))).collect() }
    }

    /// The final state of `ids` inserted one by one, built directly (one
    /// by one takes minutes at 1M: each insertion copies its shard).
    fn bulk(ids: &[u64]) -> OldTable {
        let mut shards: Vec<OldShard> = (0..Self::SHARDS).map(|_| OldShard::default()).collect();
        for &id in ids {
            shards[Self::shard_of(SkuId(id))].insert(SkuId(id), Arc::new(value_of(id)));
        }
        OldTable { shards: shards.into_iter().map(|shard| ArcSwap::new(Arc::new(shard))).collect() }
    }

    fn shard_of(sku: SkuId) -> usize {
        (sku.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::SHARDS.trailing_zeros())) as usize
    }

    fn with<R>(&self, sku: SkuId, f: impl FnOnce(&Value) -> R) -> Option<R> {
        let shard = self.shards[Self::shard_of(sku)].load();
        shard.get(&sku).map(|value| f(value))
    }

    fn insert(&self, sku: SkuId, value: Value) -> bool {
        let value = Arc::new(value);
        let shard = &self.shards[Self::shard_of(sku)];
        loop {
            let current = shard.load_full();
            if current.contains_key(&sku) {
                return false;
            }
            let mut next = OldShard::clone(&current);
            next.insert(sku, Arc::clone(&value));
            let previous = shard.compare_and_swap(&current, Arc::new(next));
            if Arc::ptr_eq(&previous, &current) {
                return true;
            }
        }
    }
}

// ---------------------------------------------------------------- the measured loops

/// A contender, built over a set of ids.
enum Contender {
    Table(Box<SkuTable<Value>>),
    Std(HashMap<u64, Value>),
    Old(OldTable),
    Dash(DashMap<u64, Value>),
}

const CONTENDERS: [&str; 4] = ["SkuTable", "std HashMap", "previous table", "DashMap"];

impl Contender {
    fn build(name: &str, ids: &[u64]) -> Contender {
        match name {
            "SkuTable" => {
                let table = SkuTable::new();
                for &id in ids {
                    table.insert(SkuId(id), value_of(id)).map_err(|_| ()).expect("distinct ids");
                }
                Contender::Table(Box::new(table))
            }
            "std HashMap" => Contender::Std(ids.iter().map(|&id| (id, value_of(id))).collect()),
            "previous table" => Contender::Old(OldTable::bulk(ids)),
            "DashMap" => Contender::Dash(ids.iter().map(|&id| (id, value_of(id))).collect()),
            _ => panic!("unknown contender {name}"),
        }
    }

    /// Looks up every id of `keys`; the sum of what it read.
    fn lookups(&self, keys: &[u64]) -> u64 {
        match self {
            Contender::Table(table) => lookups_table(table, keys),
            Contender::Std(map) => lookups_std(map, keys),
            Contender::Old(table) => lookups_old(table, keys),
            Contender::Dash(map) => lookups_dash(map, keys),
        }
    }
}

#[inline(never)]
fn lookups_table(table: &SkuTable<Value>, keys: &[u64]) -> u64 {
    keys.iter().fold(0, |sum, &id| sum.wrapping_add(table.with(SkuId(id), |value| value.0[0]).unwrap_or(1)))
}

#[inline(never)]
fn lookups_std(map: &HashMap<u64, Value>, keys: &[u64]) -> u64 {
    keys.iter().fold(0, |sum, id| sum.wrapping_add(map.get(id).map_or(1, |value| value.0[0])))
}

#[inline(never)]
fn lookups_old(table: &OldTable, keys: &[u64]) -> u64 {
    keys.iter().fold(0, |sum, &id| sum.wrapping_add(table.with(SkuId(id), |value| value.0[0]).unwrap_or(1)))
}

#[inline(never)]
fn lookups_dash(map: &DashMap<u64, Value>, keys: &[u64]) -> u64 {
    keys.iter().fold(0, |sum, id| sum.wrapping_add(map.get(id).map_or(1, |value| value.0[0])))
}

#[inline(never)]
fn inserts_table(table: &SkuTable<Value>, ids: &[u64]) -> usize {
    ids.iter().filter(|&&id| table.insert(SkuId(id), value_of(id)).is_ok()).count()
}

#[inline(never)]
fn inserts_old(table: &OldTable, ids: &[u64]) -> usize {
    ids.iter().filter(|&&id| table.insert(SkuId(id), value_of(id))).count()
}

#[inline(never)]
fn inserts_std(map: &mut HashMap<u64, Value>, ids: &[u64]) -> usize {
    ids.iter().filter(|&&id| map.insert(id, value_of(id)).is_none()).count()
}

// ---------------------------------------------------------------- harness

fn rounds() -> usize {
    std::env::var("STOCKROOM_BENCH_ROUNDS").ok().and_then(|rounds| rounds.parse().ok()).unwrap_or(7)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nanoseconds per operation of `run`, which performs `ops` of them.
fn ns_per_op(ops: usize, run: impl FnOnce() -> u64) -> f64 {
    let started = Instant::now();
    black_box(run());
    started.elapsed().as_nanos() as f64 / ops as f64
}

/// Runs every contender once per round, in turn, for `rounds` rounds;
/// prints the median ns per op of each and its median ratio to `std`'s
/// `HashMap` (the second column).
fn report_rounds(label: &str, names: &[&str], mut run: impl FnMut(usize) -> f64) {
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds() {
        for (contender, samples) in per_round.iter_mut().enumerate() {
            samples.push(run(contender));
        }
    }
    let baseline = names.iter().position(|&name| name == "std HashMap");
    let cells: Vec<String> = per_round
        .iter()
        .map(|samples| {
            let ns = median(samples.clone());
            match baseline {
                Some(base) => {
                    let ratio = median(samples.iter().zip(&per_round[base]).map(|(a, b)| a / b).collect());
                    format!("{ns:.1} ({ratio:.2}x)")
                }
                None => format!("{ns:.1}"),
            }
        })
        .collect();
    println!("| {label} | {} |", cells.join(" | "));
}

// ---------------------------------------------------------------- sections

/// Lookups of present SKUs, one thread: 10,000 SKUs (the catalog
/// workload) uniform and Zipf, and 1,000,000 uniform; plus absent SKUs.
fn lookup() {
    println!("\n### Lookup, one thread: ns per lookup (median ratio to std HashMap)\n");
    println!("| SKUs, ids, keys | {} |", CONTENDERS.join(" | "));
    println!("|---|{}", "---:|".repeat(CONTENDERS.len()));
    let lookups = 1_000_000;
    for (skus, zipf_choices) in [(10_000_usize, &[false, true][..]), (1_000_000, &[false][..])] {
        for pattern_name in LOOKUP_PATTERNS {
            let id = pattern(pattern_name);
            let ids: Vec<u64> = (0..skus as u64).map(id).collect();
            let contenders: Vec<Contender> = CONTENDERS.iter().map(|name| Contender::build(name, &ids)).collect();
            for &zipf in zipf_choices {
                let keys: Vec<u64> = stream(skus, lookups, zipf, 42).into_iter().map(|i| ids[i]).collect();
                let label = format!("{skus}, {pattern_name}, {}", if zipf { "Zipf" } else { "uniform" });
                report_rounds(&label, &CONTENDERS, |c| ns_per_op(lookups, || contenders[c].lookups(&keys)));
            }
            if skus == 10_000 && pattern_name == "random" {
                let absent: Vec<u64> = (0..lookups as u64).map(|i| random_id(i + (1 << 40))).collect();
                report_rounds("10000, random, absent SKUs", &CONTENDERS, |c| {
                    ns_per_op(lookups, || contenders[c].lookups(&absent))
                });
            }
        }
    }
}

/// One hot SKU looked up from two threads at once: what a lookup that
/// writes a shared lock word (DashMap) or a debt slot (arc-swap) costs
/// against one that writes nothing.
fn hot() {
    println!("\n### One hot SKU, two threads: ns per lookup per thread (median ratio to std HashMap)\n");
    println!("| SKUs, ids | {} |", CONTENDERS.join(" | "));
    println!("|---|{}", "---:|".repeat(CONTENDERS.len()));
    let ids: Vec<u64> = (0..10_000).map(random_id).collect();
    let contenders: Vec<Arc<Contender>> =
        CONTENDERS.iter().map(|name| Arc::new(Contender::build(name, &ids))).collect();
    let keys: Arc<Vec<u64>> = Arc::new(vec![ids[1234]; 1_000_000]);
    report_rounds("10000, random, one SKU", &CONTENDERS, |c| {
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (contender, keys, start) = (Arc::clone(&contenders[c]), Arc::clone(&keys), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    ns_per_op(keys.len(), || contender.lookups(&keys))
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().expect("reader")).sum::<f64>() / 2.0
    });
}

/// Insertion cost per call, averaged over filling a table from empty
/// (growth included), at 1k and 1M SKUs; the last 1% before 1M; and the
/// slowest single insertion (a growth rebuild).
fn insert() {
    println!("\n### Insert: ns per insertion (median of rounds)\n");
    println!("| SKUs, ids | SkuTable | std HashMap (no concurrency) | previous table |");
    println!("|---|---:|---:|---:|");
    for skus in [1_000_usize, 100_000, 1_000_000] {
        for pattern_name in ["dense", "random"] {
            let ids: Vec<u64> = (0..skus as u64).map(pattern(pattern_name)).collect();
            let mut table_ns = Vec::new();
            let mut std_ns = Vec::new();
            let mut old_ns = Vec::new();
            for _ in 0..rounds() {
                table_ns.push(ns_per_op(skus, || inserts_table(&SkuTable::new(), &ids) as u64));
                std_ns.push(ns_per_op(skus, || inserts_std(&mut HashMap::new(), &ids) as u64));
                // One by one, the previous table copies a shard per
                // insertion: quadratic, so only up to 100k.
                if skus <= 100_000 {
                    old_ns.push(ns_per_op(skus, || inserts_old(&OldTable::new(), &ids) as u64));
                }
            }
            let old =
                if old_ns.is_empty() { "(minutes: not run)".to_owned() } else { format!("{:.0}", median(old_ns)) };
            println!("| {skus}, {pattern_name} | {:.0} | {:.0} | {old} |", median(table_ns), median(std_ns));
        }
    }
    let ids: Vec<u64> = (0..1_000_000).map(random_id).collect();
    let (head, tail) = ids.split_at(990_000);
    let mut tail_ns = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..rounds() {
        let table = SkuTable::new();
        for &id in head {
            let started = Instant::now();
            table.insert(SkuId(id), value_of(id)).map_err(|_| ()).expect("distinct");
            slowest = slowest.max(started.elapsed());
        }
        tail_ns.push(ns_per_op(tail.len(), || inserts_table(&table, tail) as u64));
    }
    println!("\nSkuTable, the last 10,000 of 1,000,000 random ids (95% full): {:.0} ns per insertion", median(tail_ns));
    println!("SkuTable, slowest single insertion up to 990,000 (a rebuild): {slowest:.2?}");
}

/// Live heap bytes per SKU beyond the 16-byte value, from a counting
/// allocator: at 10k and 1M, and the range over sizes in between.
fn memory() {
    println!("\n### Memory: heap bytes per SKU beyond the 16-byte value\n");
    println!("| SKUs | {} |", CONTENDERS.join(" | "));
    println!("|---|{}", "---:|".repeat(CONTENDERS.len()));
    let value = size_of::<Value>() as f64;
    let beyond = |skus: usize, name: &str| {
        let ids: Vec<u64> = (0..skus as u64).map(random_id).collect();
        let before = live();
        let contender = Contender::build(name, &ids);
        let bytes = (live() - before) as f64;
        drop(contender);
        bytes / skus as f64 - value
    };
    for skus in [10_000, 1_000_000] {
        let cells: Vec<String> = CONTENDERS.iter().map(|name| format!("{:.1}", beyond(skus, name))).collect();
        println!("| {skus} | {} |", cells.join(" | "));
    }
    let mut sizes = Vec::new();
    let mut skus = 1_000.0_f64;
    while skus <= 1_000_000.0 {
        sizes.push((skus as usize, beyond(skus as usize, "SkuTable")));
        skus *= 1.25;
    }
    let range = |from: usize| {
        let within = sizes.iter().filter(|&&(skus, _)| skus >= from);
        let min = within.clone().min_by(|a, b| a.1.total_cmp(&b.1)).expect("sizes");
        let max = within.max_by(|a, b| a.1.total_cmp(&b.1)).expect("sizes");
        format!("{:.1} (at {}) to {:.1} (at {})", min.1, min.0, max.1, max.0)
    };
    println!("\nSkuTable over {} sizes from 1,000 to 1,000,000 (x1.25 apart): {}", sizes.len(), range(1_000));
    println!("SkuTable from 10,000 SKUs on: {}", range(10_000));
}

/// Probe statistics of the table for every id pattern.
fn probes() {
    println!("\n### Probe lengths: buckets a lookup reads (8 words, 32 bytes each)\n");
    println!(
        "| SKUs, ids | capacity | in home pair (one load) | in alternate | buckets (hit) | false tag matches (hit) | buckets (miss) | reseeds |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for skus in [10_000_u64, 1_000_000] {
        for pattern_name in PROBE_PATTERNS {
            let table = SkuTable::new();
            for id in (0..skus).map(pattern(pattern_name)) {
                table.insert(SkuId(id), value_of(id)).map_err(|_| ()).expect("distinct ids");
            }
            let stats = table.probe_stats();
            println!(
                "| {skus}, {pattern_name} | {} | {:.1}% | {:.1}% | {:.3} | {:.5} | {:.3} | {} |",
                stats.capacity,
                100.0 * stats.at_home as f64 / skus as f64,
                100.0 * stats.in_alternate as f64 / skus as f64,
                stats.buckets_mean,
                stats.false_matches_mean,
                stats.miss_buckets_mean,
                stats.reseeds
            );
        }
    }
}

// ---------------------------------------------------------------- callgrind

/// Lookups each callgrind child counts.
const CALLGRIND_LOOKUPS: usize = 200_000;

/// Instruction counts per lookup and per insertion, each from its own
/// child process under `valgrind --tool=callgrind`, counting only inside
/// the measured function (`--toggle-collect`).
fn callgrind() {
    let exe = std::env::current_exe().expect("this bench's path");
    let run = |function: &str, args: &[&str]| -> u64 {
        let out = std::env::temp_dir().join(format!("stockroom-callgrind-{}.out", std::process::id()));
        let status = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--toggle-collect=*{function}*"))
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&exe)
            .arg("callgrind-child")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("valgrind (apt-get install -y valgrind)");
        assert!(status.success(), "callgrind child {args:?} failed");
        let report = std::fs::read_to_string(&out).expect("callgrind output");
        let _ = std::fs::remove_file(&out);
        report
            .lines()
            .find_map(|line| line.strip_prefix("totals:").or_else(|| line.strip_prefix("summary:")))
            .and_then(|total| total.split_whitespace().next())
            .and_then(|total| total.parse().ok())
            .expect("a totals line")
    };
    println!("\n### Instructions per lookup (callgrind), 10,000 SKUs, uniform keys\n");
    println!("| ids | {} |", CONTENDERS.join(" | "));
    println!("|---|{}", "---:|".repeat(CONTENDERS.len()));
    for pattern_name in LOOKUP_PATTERNS {
        let cells: Vec<String> = CONTENDERS
            .iter()
            .map(|name| {
                let function = match *name {
                    "SkuTable" => "lookups_table",
                    "std HashMap" => "lookups_std",
                    "previous table" => "lookups_old",
                    _ => "lookups_dash",
                };
                let total = run(function, &["lookup", name, pattern_name]);
                format!("{:.1}", total as f64 / CALLGRIND_LOOKUPS as f64)
            })
            .collect();
        println!("| {pattern_name} | {} |", cells.join(" | "));
    }
    println!("\n### Instructions per insertion (callgrind), from empty, random ids\n");
    println!("| SKUs | SkuTable | previous table |");
    println!("|---|---:|---:|");
    for skus in ["1000", "1000000"] {
        let table = run("inserts_table", &["insert", "SkuTable", skus]) as f64;
        let old = if skus == "1000" {
            format!("{:.0}", run("inserts_old", &["insert", "previous table", skus]) as f64 / 1_000.0)
        } else {
            "(not run)".to_owned()
        };
        println!("| {skus} | {:.0} | {old} |", table / skus.parse::<f64>().expect("a number"));
    }
}

/// What a callgrind child runs: the setup (not counted), then the one
/// measured function.
fn callgrind_child(args: &[String]) {
    match args {
        [what, name, pattern_name] if what == "lookup" => {
            let ids: Vec<u64> = (0..10_000).map(pattern(pattern_name)).collect();
            let contender = Contender::build(name, &ids);
            let keys: Vec<u64> = stream(ids.len(), CALLGRIND_LOOKUPS, false, 7).into_iter().map(|i| ids[i]).collect();
            black_box(contender.lookups(&keys));
        }
        [what, name, skus] if what == "insert" => {
            let ids: Vec<u64> = (0..skus.parse().expect("a count")).map(random_id).collect();
            let inserted = match name.as_str() {
                "SkuTable" => inserts_table(&SkuTable::new(), &ids),
                _ => inserts_old(&OldTable::new(), &ids),
            };
            assert_eq!(inserted, ids.len());
        }
        _ => panic!("callgrind-child: unknown arguments {args:?}"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; keep the plain words.
    let args: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("callgrind-child") {
        return callgrind_child(&args[1..]);
    }
    let wanted = |section: &str| args.is_empty() || args.iter().any(|arg| arg == section);
    let sections: [(&str, fn()); 6] = [
        ("lookup", lookup),
        ("hot", hot),
        ("insert", insert),
        ("memory", memory),
        ("probes", probes),
        ("callgrind", callgrind),
    ];
    for (name, section) in sections {
        // callgrind only when asked for: it needs valgrind and minutes.
        if (name != "callgrind" && wanted(name)) || args.iter().any(|arg| arg == name) {
            section();
        }
    }
}
