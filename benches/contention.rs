//! The contention tier: stockroom against the engines a team would write
//! instead, on the four workloads of the design brief.
//!
//! Every (workload, thread count) runs in a fresh child process: the bench
//! re-executes itself with `STOCKROOM_BENCH_CHILD=<workload>,<threads>`
//! and the parent collects the child's table and summary row. So threads
//! of one workload never tax the next one (arc-swap's debt lists, the
//! allocator's per-thread caches and arenas, a SKU table grown by an
//! earlier workload): inside a child, every run spawns the same number of
//! worker threads, so the most threads alive at once is the same from the
//! first run to the last.
//!
//! Inside a child, every contender gets a short timed run, interleaved
//! (A B C … A B C …) for several rounds, because this machine is shared and
//! its throughput drifts in phases; each round's ratio to a baseline is
//! taken within the round and the median of those ratios is reported.
//! Every run checks its invariants afterwards: a contender that oversold
//! fails the bench, it does not post a result.
//!
//! The baseline the targets name is issue 13's per-SKU mutex, "mutex per
//! SKU (DashMap + clock)" (`common/baseline.rs`): a `DashMap<SkuId,
//! parking_lot::Mutex<SkuState>>`, lots in FEFO order, the wall clock read
//! once per allocating operation to skip expired lots, holds in a
//! `HashMap`. A `DashMap` rather than a read-only `HashMap` because SKUs
//! are defined while the engine runs, as stockroom's are; the cost of a
//! static read-only map is shown on its own by the "HashMap lookup + CAS
//! counter" floor. The earlier, cheaper mutex (a `Vec` indexed by SKU, no
//! clock, no hold table) stays as the reference row "mutex per SKU (Vec,
//! no clock)" so nothing is hidden.
//!
//! Settings (environment): `STOCKROOM_BENCH_ROUNDS` (default 5),
//! `STOCKROOM_BENCH_MS` per run (default 300), `STOCKROOM_BENCH_THREADS`
//! (default `1,2,16`); a plain argument filters workloads by name
//! (`shrink` selects the shrink-under-a-seller scenario, which runs after
//! the workloads otherwise).

#[path = "common/baseline.rs"]
mod baseline;

use baseline::MutexLedger;
use dashmap::DashMap;
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Clock, Ledger, LotId, NewLot, SkuId, SystemClock, Timestamp,
};

// ---------------------------------------------------------------- harness

/// A per-thread xorshift64* generator: cheap, and identical for every
/// contender of a round.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// One engine set up for one workload.
trait Engine: Send + Sync {
    /// One request; true if it was granted.
    fn op(&self, rng: &mut Rng) -> bool;
    /// Work that runs beside the requests for the whole run (the chaos
    /// adjuster); returns when `stop` is set.
    fn background(&self, _stop: &AtomicBool) {}
    /// The invariants after the run, given how many requests were granted.
    fn check(&self, granted: u64) -> Result<(), String>;
}

/// One request in this many is timed for the latency histogram.
const LATENCY_SAMPLE: u64 = 32;

struct Run {
    ops_per_sec: f64,
    latency: Histogram<u64>,
}

fn run(engine: Arc<dyn Engine>, threads: usize, duration: Duration) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (engine, stop, start) = (engine.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
                let mut latency = Histogram::<u64>::new(3).expect("histogram");
                let (mut ops, mut granted) = (0u64, 0u64);
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    // Time one request in LATENCY_SAMPLE: reading the clock
                    // around every request would cost more than the
                    // cheapest contenders' requests themselves.
                    for _ in 1..LATENCY_SAMPLE {
                        granted += u64::from(engine.op(&mut rng));
                    }
                    let began = Instant::now();
                    granted += u64::from(engine.op(&mut rng));
                    // `record` grows the auto-resizing histogram; `saturating_record`
                    // would clamp every latency above its initial 2 µs range.
                    latency.record(began.elapsed().as_nanos() as u64).expect("auto-resizing histogram");
                    ops += LATENCY_SAMPLE;
                }
                (ops, granted, latency)
            })
        })
        .collect();
    let chaos = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || engine.background(&stop))
    };
    start.wait();
    let began = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    let (mut ops, mut granted) = (0u64, 0u64);
    for worker in workers {
        let (o, g, l) = worker.join().expect("worker");
        ops += o;
        granted += g;
        latency.add(l).expect("same bounds");
    }
    let elapsed = began.elapsed();
    chaos.join().expect("chaos");
    if let Err(broken) = engine.check(granted) {
        panic!("invariant broken after the run: {broken}");
    }
    Run { ops_per_sec: ops as f64 / elapsed.as_secs_f64(), latency }
}

/// Chooses SKUs for the catalog workloads.
struct Picker {
    zipf_cdf: Vec<f64>,
}

impl Picker {
    fn new(skus: usize) -> Picker {
        let weights: Vec<f64> = (1..=skus).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let zipf_cdf = weights.iter().map(|w| {
            acc += w / total;
            acc
        });
        Picker { zipf_cdf: zipf_cdf.collect() }
    }

    fn zipf(&self, rng: &mut Rng) -> usize {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        self.zipf_cdf.partition_point(|&c| c < u).min(self.zipf_cdf.len() - 1)
    }
}

// ---------------------------------------------------------------- baselines

/// Lots of one SKU as a team would keep them: expiry order, units left.
#[derive(Clone)]
struct PlainLots {
    lots: Vec<(u64, u64)>,
    sold: u64,
}

impl PlainLots {
    fn new(lots: usize, units: u64) -> PlainLots {
        PlainLots { lots: (0..lots as u64).map(|i| (1_000_000 + i, units)).collect(), sold: 0 }
    }

    /// FEFO, fill-or-kill, scanning from the oldest lot.
    fn allocate(&mut self, mut want: u64) -> Option<Vec<(usize, u64)>> {
        let total: u64 = self.lots.iter().map(|l| l.1).sum();
        if total < want {
            return None;
        }
        let mut lines = Vec::new();
        for (i, lot) in self.lots.iter_mut().enumerate() {
            let take = lot.1.min(want);
            if take > 0 {
                lot.1 -= take;
                want -= take;
                lines.push((i, take));
            }
            if want == 0 {
                break;
            }
        }
        Some(lines)
    }

    fn sell(&mut self, want: u64) -> bool {
        let sold = self.allocate(want).is_some();
        self.sold += u64::from(sold) * want;
        sold
    }

    fn give_back(&mut self, lines: &[(usize, u64)]) {
        for &(i, units) in lines {
            self.lots[i].1 += units;
        }
    }

    fn units(&self) -> u64 {
        self.lots.iter().map(|l| l.1).sum()
    }
}

/// One unit off a lone counter by compare-and-swap, unless it is empty.
fn take_one(counter: &AtomicU64) -> bool {
    // Relaxed: a lone counter orders nothing else.
    let mut current = counter.load(Ordering::Relaxed);
    while current > 0 {
        match counter.compare_exchange_weak(current, current - 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => current = actual,
        }
    }
    false
}

struct CasCounters {
    stock: Vec<AtomicU64>,
    initial: u64,
}

impl CasCounters {
    fn new(skus: usize, units: u64) -> CasCounters {
        CasCounters { stock: (0..skus).map(|_| AtomicU64::new(units)).collect(), initial: units }
    }

    fn take(&self, sku: usize) -> bool {
        take_one(&self.stock[sku])
    }

    fn check(&self, granted: u64) -> Result<(), String> {
        let left: u64 = self.stock.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let sold = self.initial * self.stock.len() as u64 - left;
        (sold == granted).then_some(()).ok_or(format!("cas counter sold {sold}, granted {granted}"))
    }
}

fn check_plain<'a>(all: impl Iterator<Item = &'a PlainLots>, initial: u64, granted: u64) -> Result<(), String> {
    let (mut sold, mut units) = (0, 0);
    for lots in all {
        sold += lots.sold;
        units += lots.units();
    }
    if sold + units != initial || sold != granted {
        return Err(format!("plain lots: sold {sold} + left {units} != {initial}, granted {granted}"));
    }
    Ok(())
}

// ---------------------------------------------------------------- workloads

#[derive(Clone, Copy, PartialEq)]
enum Spread {
    One,
    Uniform,
    Zipf,
}

struct Market {
    skus: usize,
    spread: Spread,
    picker: Arc<Picker>,
}

impl Market {
    fn pick(&self, rng: &mut Rng) -> usize {
        match self.spread {
            Spread::One => 0,
            Spread::Uniform => (rng.next() % self.skus as u64) as usize,
            Spread::Zipf => self.picker.zipf(rng),
        }
    }
}

fn stocked_ledger(skus: usize, lots: usize, units: u64) -> Ledger {
    let ledger = Ledger::new();
    for sku in 0..skus as u64 {
        ledger.define_sku(SkuId(sku), AllocationPolicy::Fefo).expect("fresh");
        for lot in 0..lots as u64 {
            let lot = NewLot::new(LotId(lot), units).expires_at(Timestamp::from_millis(u64::MAX / 2 + lot));
            ledger.receive(SkuId(sku), lot).expect("receive");
        }
    }
    ledger
}

fn check_ledger(ledger: &Ledger, units_sold: u64) -> Result<(), String> {
    let audit = ledger.audit();
    if !audit.is_clean() {
        return Err(format!("audit: {:?}", audit.violations));
    }
    let committed: u64 =
        ledger.skus().into_iter().map(|s| ledger.snapshot(s).expect("sku").totals().committed.get()).sum();
    (committed == units_sold).then_some(()).ok_or(format!("ledger committed {committed}, granted {units_sold}"))
}

struct StockroomSale {
    ledger: Ledger,
    market: Market,
}

impl Engine for StockroomSale {
    fn op(&self, rng: &mut Rng) -> bool {
        let sku = SkuId(self.market.pick(rng) as u64);
        self.ledger.take(&AllocateRequest::new(sku, 1)).is_ok()
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        check_ledger(&self.ledger, granted)
    }
}

struct CasSale {
    counters: CasCounters,
    market: Market,
}

impl Engine for CasSale {
    fn op(&self, rng: &mut Rng) -> bool {
        self.counters.take(self.market.pick(rng))
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        self.counters.check(granted)
    }
}

/// The floor for a lookup-then-decide engine: a read-only `HashMap` from
/// SKU to its `AtomicU64` counter (no lots, no reservations), so a refusal
/// is exactly "the lookup plus an uncontended atomic load".
struct LookupCas {
    counters: HashMap<SkuId, AtomicU64>,
    market: Market,
    initial: u64,
}

impl Engine for LookupCas {
    fn op(&self, rng: &mut Rng) -> bool {
        take_one(&self.counters[&SkuId(self.market.pick(rng) as u64)])
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        let left: u64 = self.counters.values().map(|c| c.load(Ordering::Relaxed)).sum();
        let sold = self.initial - left;
        (sold == granted).then_some(()).ok_or(format!("lookup + CAS sold {sold}, granted {granted}"))
    }
}

struct MutexPerSku {
    skus: Vec<parking_lot::Mutex<PlainLots>>,
    market: Market,
    initial: u64,
}

impl Engine for MutexPerSku {
    fn op(&self, rng: &mut Rng) -> bool {
        self.skus[self.market.pick(rng)].lock().sell(1)
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        let guards: Vec<_> = self.skus.iter().map(|m| m.lock().clone()).collect();
        check_plain(guards.iter(), self.initial, granted)
    }
}

struct GlobalMutex {
    map: std::sync::Mutex<HashMap<usize, PlainLots>>,
    market: Market,
    initial: u64,
}

impl Engine for GlobalMutex {
    fn op(&self, rng: &mut Rng) -> bool {
        let sku = self.market.pick(rng);
        self.map.lock().expect("unpoisoned").get_mut(&sku).expect("sku").sell(1)
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        let map = self.map.lock().expect("unpoisoned");
        check_plain(map.values(), self.initial, granted)
    }
}

struct DashSale {
    map: DashMap<usize, PlainLots>,
    market: Market,
    initial: u64,
}

impl Engine for DashSale {
    fn op(&self, rng: &mut Rng) -> bool {
        let sku = self.market.pick(rng);
        self.map.get_mut(&sku).expect("sku").sell(1)
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        let all: Vec<PlainLots> = self.map.iter().map(|e| e.value().clone()).collect();
        check_plain(all.iter(), self.initial, granted)
    }
}

// ---------------------------------------------------------------- issue 13's mutex

/// The baseline the targets name (see the module doc).
const ISSUE_MUTEX: &str = "mutex per SKU (DashMap + clock)";
/// The earlier, cheaper mutex, kept as a reference row.
const VEC_MUTEX: &str = "mutex per SKU (Vec, no clock)";

fn wall_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The issue's mutex, stocked like [`stocked_ledger`].
fn stocked_mutex(skus: usize, lots: usize, units: u64) -> MutexLedger {
    let ledger = MutexLedger::new(wall_clock());
    for sku in 0..skus as u64 {
        ledger.define_sku(SkuId(sku)).expect("fresh");
        for lot in 0..lots as u64 {
            let expiry = Timestamp::from_millis(u64::MAX / 2 + lot);
            ledger.receive(SkuId(sku), LotId(lot), units, Some(expiry)).expect("receive");
        }
    }
    ledger
}

fn check_mutex(ledger: &MutexLedger, units_sold: u64) -> Result<(), String> {
    let committed = ledger.audit()?;
    (committed == units_sold).then_some(()).ok_or(format!("mutex committed {committed}, granted {units_sold}"))
}

struct IssueMutexSale {
    ledger: MutexLedger,
    market: Market,
    /// Units sold during setup.
    offset: u64,
}

impl Engine for IssueMutexSale {
    fn op(&self, rng: &mut Rng) -> bool {
        self.ledger.take(SkuId(self.market.pick(rng) as u64), 1).is_ok()
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        check_mutex(&self.ledger, granted + self.offset)
    }
}

struct IssueMutexPerishables {
    ledger: MutexLedger,
}

impl Engine for IssueMutexPerishables {
    fn op(&self, _rng: &mut Rng) -> bool {
        match self.ledger.allocate(SkuId(0), ORDER_UNITS, None) {
            Ok((hold, _)) => self.ledger.release(hold).is_ok(),
            Err(_) => false,
        }
    }
    fn background(&self, stop: &AtomicBool) {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let lot = LotId(PALLETS as u64 / 2 + round % CHAOS_LOTS);
            let delta = if (round / CHAOS_LOTS) % 2 == 0 { -CHAOS_UNITS } else { CHAOS_UNITS };
            let _ = self.ledger.adjust(SkuId(0), lot, delta);
            round += 1;
            std::thread::sleep(CHAOS_PAUSE);
        }
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        self.ledger.audit()?;
        let held = self.ledger.with(SkuId(0), |state| state.hold_count()).expect("sku");
        (held == 0).then_some(()).ok_or(format!("{held} holds left"))
    }
}

struct IssueMutexLifecycle {
    ledger: MutexLedger,
    committed: AtomicU64,
}

impl Engine for IssueMutexLifecycle {
    fn op(&self, rng: &mut Rng) -> bool {
        let Ok((hold, _)) = self.ledger.allocate(SkuId(0), 1, None) else { return false };
        if rng.next() % 2 == 0 {
            // Relaxed: a tally read after the threads are joined.
            self.committed.fetch_add(1, Ordering::Relaxed);
            self.ledger.commit(hold).is_ok()
        } else {
            self.ledger.release(hold).is_ok()
        }
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        check_mutex(&self.ledger, self.committed.load(Ordering::Relaxed))?;
        let held = self.ledger.with(SkuId(0), |state| state.hold_count()).expect("sku");
        (held == 0).then_some(()).ok_or(format!("{held} holds left"))
    }
}

type Factory = Box<dyn Fn() -> Arc<dyn Engine>>;

fn sale_contenders(skus: usize, spread: Spread, units: u64, picker: &Arc<Picker>) -> Vec<(&'static str, Factory)> {
    let market = {
        let picker = picker.clone();
        move || Market { skus, spread, picker: picker.clone() }
    };
    let initial = units * skus as u64;
    let m = market.clone();
    let stockroom: Factory = Box::new(move || {
        let ledger = stocked_ledger(skus, 1, units.max(1));
        if units == 0 {
            for sku in 0..skus as u64 {
                ledger.take(&AllocateRequest::new(SkuId(sku), 1)).expect("sell the one unit");
            }
        }
        let already_sold = if units == 0 { skus as u64 } else { 0 };
        Arc::new(SoldOffset { inner: StockroomSale { ledger, market: m() }, offset: already_sold })
    });
    let m = market.clone();
    let issue: Factory = Box::new(move || {
        let ledger = stocked_mutex(skus, 1, units.max(1));
        if units == 0 {
            for sku in 0..skus as u64 {
                ledger.take(SkuId(sku), 1).expect("sell the one unit");
            }
        }
        let offset = if units == 0 { skus as u64 } else { 0 };
        Arc::new(IssueMutexSale { ledger, market: m(), offset })
    });
    let m = market.clone();
    let cas: Factory = Box::new(move || Arc::new(CasSale { counters: CasCounters::new(skus, units), market: m() }));
    let m = market.clone();
    let mutex: Factory = Box::new(move || {
        let skus = (0..skus).map(|_| parking_lot::Mutex::new(PlainLots::new(1, units))).collect();
        Arc::new(MutexPerSku { skus, market: m(), initial })
    });
    let m = market.clone();
    let global: Factory = Box::new(move || {
        let map = (0..skus).map(|s| (s, PlainLots::new(1, units))).collect();
        Arc::new(GlobalMutex { map: std::sync::Mutex::new(map), market: m(), initial })
    });
    let m = market.clone();
    let dash: Factory = Box::new(move || {
        let map = (0..skus).map(|s| (s, PlainLots::new(1, units))).collect();
        Arc::new(DashSale { map, market: m(), initial })
    });
    let m = market;
    let lookup: Factory = Box::new(move || {
        let counters = (0..skus as u64).map(|s| (SkuId(s), AtomicU64::new(units))).collect();
        Arc::new(LookupCas { counters, market: m(), initial })
    });
    vec![
        ("stockroom", stockroom),
        (ISSUE_MUTEX, issue),
        (VEC_MUTEX, mutex),
        ("atomic CAS counter", cas),
        ("HashMap lookup + CAS counter", lookup),
        ("std Mutex<HashMap>", global),
        ("DashMap", dash),
    ]
}

/// Adds units sold during setup to the granted count (the sold-out
/// workload sells its one unit before the run).
struct SoldOffset<E> {
    inner: E,
    offset: u64,
}

impl<E: Engine> Engine for SoldOffset<E> {
    fn op(&self, rng: &mut Rng) -> bool {
        self.inner.op(rng)
    }
    fn check(&self, granted: u64) -> Result<(), String> {
        self.inner.check(granted + self.offset)
    }
}

// Perishables: 2,000 pallets of 1,000 lb in hundredths of a pound, the
// first 1,000 already sold, orders of 1,500 lb held then released, and a
// chaos thread moving the oldest live pallets by ±30 lb all along.
const PALLETS: usize = 2_000;
const PALLET_UNITS: u64 = 100_000;
const ORDER_UNITS: u64 = 150_000;
const CHAOS_UNITS: i64 = 3_000;
const CHAOS_LOTS: u64 = 8;
const CHAOS_PAUSE: Duration = Duration::from_micros(50);

struct StockroomPerishables {
    ledger: Ledger,
}

impl Engine for StockroomPerishables {
    fn op(&self, _rng: &mut Rng) -> bool {
        match self.ledger.allocate(&AllocateRequest::new(SkuId(0), ORDER_UNITS)) {
            Ok(hold) => self.ledger.release(hold.reservation).is_ok(),
            Err(_) => false,
        }
    }
    fn background(&self, stop: &AtomicBool) {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let lot = LotId(PALLETS as u64 / 2 + round % CHAOS_LOTS);
            let delta = if (round / CHAOS_LOTS) % 2 == 0 { -CHAOS_UNITS } else { CHAOS_UNITS };
            let _ = self.ledger.adjust(SkuId(0), lot, delta, AdjustmentReason::Recalibration);
            round += 1;
            std::thread::sleep(CHAOS_PAUSE);
        }
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        let audit = self.ledger.audit();
        let snapshot = self.ledger.snapshot(SkuId(0)).expect("sku");
        if !audit.is_clean() || snapshot.totals().held.get() != 0 {
            return Err(format!("audit {:?}, held {}", audit.violations, snapshot.totals().held));
        }
        Ok(())
    }
}

struct MutexPerishables {
    lots: parking_lot::Mutex<PlainLots>,
    initial: u64,
    /// Net units the chaos thread actually added (a shrink of a lot that a
    /// hold has emptied takes less than asked).
    chaos_net: AtomicI64,
}

impl Engine for MutexPerishables {
    fn op(&self, _rng: &mut Rng) -> bool {
        let lines = self.lots.lock().allocate(ORDER_UNITS);
        match lines {
            Some(lines) => {
                self.lots.lock().give_back(&lines);
                true
            }
            None => false,
        }
    }
    fn background(&self, stop: &AtomicBool) {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let lot = PALLETS / 2 + (round % CHAOS_LOTS) as usize;
            let grow = (round / CHAOS_LOTS) % 2 == 1;
            {
                let mut lots = self.lots.lock();
                let units = &mut lots.lots[lot].1;
                let before = *units;
                *units = if grow { *units + CHAOS_UNITS as u64 } else { units.saturating_sub(CHAOS_UNITS as u64) };
                // Relaxed: read after the chaos thread is joined.
                self.chaos_net.fetch_add(*units as i64 - before as i64, Ordering::Relaxed);
            }
            round += 1;
            std::thread::sleep(CHAOS_PAUSE);
        }
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        let units = self.lots.lock().units() as i64;
        let expected = self.initial as i64 + self.chaos_net.load(Ordering::Relaxed);
        (units == expected)
            .then_some(())
            .ok_or(format!("mutex perishables hold {units} units, expected {expected} after chaos"))
    }
}

fn perishables_contenders() -> Vec<(&'static str, Factory)> {
    let stockroom: Factory = Box::new(|| {
        let ledger = stocked_ledger(1, PALLETS, PALLET_UNITS);
        let first_half = PALLETS as u64 / 2 * PALLET_UNITS;
        ledger.take(&AllocateRequest::new(SkuId(0), first_half)).expect("sell the older half");
        Arc::new(StockroomPerishables { ledger })
    });
    let mutex: Factory = Box::new(|| {
        let mut lots = PlainLots::new(PALLETS, PALLET_UNITS);
        lots.allocate(PALLETS as u64 / 2 * PALLET_UNITS).expect("sell the older half");
        let initial = lots.units();
        Arc::new(MutexPerishables { lots: parking_lot::Mutex::new(lots), initial, chaos_net: AtomicI64::new(0) })
    });
    let issue: Factory = Box::new(|| {
        let ledger = stocked_mutex(1, PALLETS, PALLET_UNITS);
        ledger.take(SkuId(0), PALLETS as u64 / 2 * PALLET_UNITS).expect("sell the older half");
        Arc::new(IssueMutexPerishables { ledger })
    });
    vec![("stockroom", stockroom), (ISSUE_MUTEX, issue), (VEC_MUTEX, mutex)]
}

// Lifecycle: hold one unit, then commit or release it.
struct StockroomLifecycle {
    ledger: Ledger,
    committed: AtomicU64,
}

impl Engine for StockroomLifecycle {
    fn op(&self, rng: &mut Rng) -> bool {
        let Ok(hold) = self.ledger.allocate(&AllocateRequest::new(SkuId(0), 1)) else { return false };
        if rng.next() % 2 == 0 {
            self.committed.fetch_add(1, Ordering::Relaxed);
            self.ledger.commit(hold.reservation, None).is_ok()
        } else {
            self.ledger.release(hold.reservation).is_ok()
        }
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        check_ledger(&self.ledger, self.committed.load(Ordering::Relaxed))?;
        let held = self.ledger.snapshot(SkuId(0)).expect("sku").totals().held.get();
        (held == 0).then_some(()).ok_or(format!("{held} units still held"))
    }
}

/// Lots, live holds by id, and the last hold id issued.
type LifecycleState = (PlainLots, HashMap<u64, Vec<(usize, u64)>>, u64);

struct MutexLifecycle {
    state: parking_lot::Mutex<LifecycleState>,
}

impl Engine for MutexLifecycle {
    fn op(&self, rng: &mut Rng) -> bool {
        let id = {
            let mut state = self.state.lock();
            let Some(lines) = state.0.allocate(1) else { return false };
            state.2 += 1;
            let id = state.2;
            state.1.insert(id, lines);
            id
        };
        let mut state = self.state.lock();
        let lines = state.1.remove(&id).expect("live hold");
        if rng.next() % 2 == 0 {
            state.0.sold += 1;
        } else {
            state.0.give_back(&lines);
        }
        true
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        let state = self.state.lock();
        check_plain(std::iter::once(&state.0), 1 << 39, state.0.sold)?;
        state.1.is_empty().then_some(()).ok_or("holds left".into())
    }
}

struct DashLifecycle {
    lots: DashMap<usize, PlainLots>,
    holds: DashMap<u64, Vec<(usize, u64)>>,
    next: AtomicU64,
}

impl Engine for DashLifecycle {
    fn op(&self, rng: &mut Rng) -> bool {
        let Some(lines) = self.lots.get_mut(&0).expect("sku").allocate(1) else { return false };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.holds.insert(id, lines);
        let (_, lines) = self.holds.remove(&id).expect("live hold");
        let mut lots = self.lots.get_mut(&0).expect("sku");
        if rng.next() % 2 == 0 {
            lots.sold += 1;
        } else {
            lots.give_back(&lines);
        }
        true
    }
    fn check(&self, _granted: u64) -> Result<(), String> {
        let lots = self.lots.get(&0).expect("sku").clone();
        check_plain(std::iter::once(&lots), 1 << 39, lots.sold)?;
        self.holds.is_empty().then_some(()).ok_or("holds left".into())
    }
}

fn lifecycle_contenders() -> Vec<(&'static str, Factory)> {
    let stockroom: Factory = Box::new(|| {
        Arc::new(StockroomLifecycle { ledger: stocked_ledger(1, 1, 1 << 39), committed: AtomicU64::new(0) })
    });
    let mutex: Factory = Box::new(|| {
        Arc::new(MutexLifecycle { state: parking_lot::Mutex::new((PlainLots::new(1, 1 << 39), HashMap::new(), 0)) })
    });
    let dash: Factory = Box::new(|| {
        let lots = DashMap::new();
        lots.insert(0, PlainLots::new(1, 1 << 39));
        Arc::new(DashLifecycle { lots, holds: DashMap::new(), next: AtomicU64::new(0) })
    });
    let issue: Factory = Box::new(|| {
        Arc::new(IssueMutexLifecycle { ledger: stocked_mutex(1, 1, 1 << 39), committed: AtomicU64::new(0) })
    });
    vec![("stockroom", stockroom), (ISSUE_MUTEX, issue), (VEC_MUTEX, mutex), ("DashMap", dash)]
}

// ---------------------------------------------------------------- shrink

// A shrink that displaces every hold on a lot: `holds` holds of 1 unit on
// lot 0 (first in FEFO order), lot 1 with plenty; the adjustment takes all
// of lot 0, so every hold is re-sourced to lot 1, while a seller thread
// takes 1 unit at a time from the same SKU.
const SHRINK_HOLDS: [u64; 2] = [16_384, 65_536];
/// How long the seller sells before the shrink starts (its rate alone).
const SELLER_ALONE: Duration = Duration::from_millis(300);
/// How long the shrink may run while the seller sells; past it the
/// seller stops and the shrink is reported as not completing under it.
const SHRINK_WAIT_MAX: Duration = Duration::from_secs(30);

struct ShrinkRow {
    holds: u64,
    seller: bool,
    shrink: Duration,
    completed_while_selling: bool,
    sales_per_sec_alone: f64,
    sales_per_sec_during: f64,
}

fn shrink_ledger(holds: u64) -> Arc<Ledger> {
    let ledger = Ledger::new();
    ledger.define_sku(SkuId(0), AllocationPolicy::Fefo).expect("fresh");
    let early = NewLot::new(LotId(0), holds).expires_at(Timestamp::from_millis(u64::MAX / 2));
    ledger.receive(SkuId(0), early).expect("receive");
    let late = NewLot::new(LotId(1), 1 << 39).expires_at(Timestamp::from_millis(u64::MAX / 2 + 1));
    ledger.receive(SkuId(0), late).expect("receive");
    for _ in 0..holds {
        let hold = ledger.allocate(&AllocateRequest::new(SkuId(0), 1)).expect("stocked");
        assert_eq!(hold.lines[0].lot, LotId(0), "every hold starts on the early lot");
    }
    Arc::new(ledger)
}

fn shrink(holds: u64, seller: bool) -> ShrinkRow {
    let ledger = shrink_ledger(holds);
    let stop = Arc::new(AtomicBool::new(false));
    let sold = Arc::new(AtomicU64::new(0));
    let selling = seller.then(|| {
        let (ledger, stop, sold) = (ledger.clone(), stop.clone(), sold.clone());
        std::thread::spawn(move || {
            // Relaxed: `stop` orders nothing; `sold` is read as a rate and,
            // exactly, after the join.
            while !stop.load(Ordering::Relaxed) {
                if ledger.take(&AllocateRequest::new(SkuId(0), 1)).is_ok() {
                    sold.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    let sales_per_sec_alone = if seller {
        let before = sold.load(Ordering::Relaxed);
        std::thread::sleep(SELLER_ALONE);
        (sold.load(Ordering::Relaxed) - before) as f64 / SELLER_ALONE.as_secs_f64()
    } else {
        0.0
    };
    let sold_before = sold.load(Ordering::Relaxed);
    let began = Instant::now();
    let shrinker = {
        let ledger = ledger.clone();
        let delta = -i64::try_from(holds).expect("small");
        std::thread::spawn(move || ledger.adjust(SkuId(0), LotId(0), delta, AdjustmentReason::Damage))
    };
    while !shrinker.is_finished() && began.elapsed() < SHRINK_WAIT_MAX {
        std::thread::sleep(Duration::from_micros(200));
    }
    let completed_while_selling = shrinker.is_finished();
    let during = began.elapsed();
    let sold_during = sold.load(Ordering::Relaxed) - sold_before;
    stop.store(true, Ordering::Relaxed);
    if let Some(selling) = selling {
        selling.join().expect("seller");
    }
    let adjusted = shrinker.join().expect("shrinker").expect("a shrink is never refused");
    let shrink = if completed_while_selling { during } else { began.elapsed() };
    assert_eq!(adjusted.shortfalls.len() as u64, holds, "every hold on the lot is displaced");
    assert!(adjusted.shortfalls.iter().all(|s| s.shorted.is_zero()), "lot 1 covers every displaced hold");
    let audit = ledger.audit();
    assert!(audit.is_clean(), "audit: {:?}", audit.violations);
    let totals = ledger.snapshot(SkuId(0)).expect("sku").totals();
    assert_eq!(totals.held.get(), holds, "the holds survive the shrink");
    assert_eq!(totals.committed.get(), sold.load(Ordering::Relaxed), "sales counted");
    ShrinkRow {
        holds,
        seller,
        shrink,
        completed_while_selling,
        sales_per_sec_alone,
        sales_per_sec_during: sold_during as f64 / during.as_secs_f64(),
    }
}

fn shrink_table() {
    println!("### shrink displacing every hold on a lot, with and without a concurrent seller\n");
    println!(
        "| displaced holds | seller | shrink ms | completed while the seller sold | seller sales/s alone | seller sales/s during the shrink | during ÷ alone |"
    );
    println!("|---:|---|---:|---|---:|---:|---:|");
    for holds in SHRINK_HOLDS {
        for seller in [false, true] {
            let row = shrink(holds, seller);
            let ratio = if row.seller {
                format!("{:.2}", row.sales_per_sec_during / row.sales_per_sec_alone)
            } else {
                "-".into()
            };
            println!(
                "| {} | {} | {:.1} | {} | {} | {} | {ratio} |",
                row.holds,
                if row.seller { "1 thread" } else { "none" },
                row.shrink.as_secs_f64() * 1e3,
                if !row.seller {
                    "-"
                } else if row.completed_while_selling {
                    "yes"
                } else {
                    "no (seller stopped)"
                },
                if row.seller { format!("{:.0}", row.sales_per_sec_alone) } else { "-".into() },
                if row.seller { format!("{:.0}", row.sales_per_sec_during) } else { "-".into() },
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------- report

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The environment variable naming the one job a child process runs.
const CHILD: &str = "STOCKROOM_BENCH_CHILD";
/// The prefix of a child's summary line, which the parent collects.
const SUMMARY: &str = "SUMMARY\t";

type Workload = (&'static str, Box<dyn Fn() -> Vec<(&'static str, Factory)>>);

fn workloads() -> Vec<Workload> {
    let picker = Arc::new(Picker::new(10_000));
    let sale = move |skus: usize, spread: Spread, units: u64| -> Box<dyn Fn() -> Vec<(&'static str, Factory)>> {
        let picker = picker.clone();
        Box::new(move || sale_contenders(skus, spread, units, &picker))
    };
    vec![
        ("flash sale, selling (1 SKU, take 1)", sale(1, Spread::One, 1 << 39)),
        ("flash sale, sold out (1 SKU, take 1)", sale(1, Spread::One, 0)),
        ("catalog, uniform (10,000 SKUs, take 1)", sale(10_000, Spread::Uniform, 1 << 39)),
        ("catalog, Zipf s=1 (10,000 SKUs, take 1)", sale(10_000, Spread::Zipf, 1 << 39)),
        ("perishables with chaos (2,000 lots, hold 1,500 lb then release)", Box::new(perishables_contenders)),
        ("lifecycle (hold 1, then commit or release)", Box::new(lifecycle_contenders)),
    ]
}

/// One (workload, thread count): the interleaved rounds, the table, and
/// one summary line for the parent.
fn table(name: &str, contenders: &[(&'static str, Factory)], threads: usize, rounds: usize, duration: Duration) {
    let mut throughput = vec![Vec::new(); contenders.len()];
    let mut latency: Vec<Histogram<u64>> = contenders.iter().map(|_| Histogram::new(3).expect("histogram")).collect();
    for _ in 0..rounds {
        for (i, (_, factory)) in contenders.iter().enumerate() {
            let result = run(factory(), threads, duration);
            throughput[i].push(result.ops_per_sec);
            latency[i].add(result.latency).expect("same bounds");
        }
    }
    let ratio = |i: usize, b: usize| {
        let mut ratios: Vec<f64> =
            throughput[i].iter().zip(&throughput[b]).map(|(ours, theirs)| ours / theirs).collect();
        median(&mut ratios)
    };
    let index = |engine: &str| contenders.iter().position(|c| c.0 == engine);
    let issue = index(ISSUE_MUTEX).expect("every workload has the issue's mutex");
    let p999 = |i: usize| latency[i].value_at_quantile(0.999) as f64;
    println!("### {name}, {threads} thread(s)\n");
    let baselines: Vec<&str> = contenders.iter().skip(1).map(|c| c.0).collect();
    print!("| engine | Mops/s (median) | p50 ns | p99 ns | p99.9 ns | p99.9 ÷ {ISSUE_MUTEX}'s |");
    for b in &baselines {
        print!(" × {b} |");
    }
    println!();
    println!("|---|---:|---:|---:|---:|---:|{}", "---:|".repeat(baselines.len()));
    for (i, (engine, _)) in contenders.iter().enumerate() {
        let h = &latency[i];
        print!(
            "| {engine} | {:.2} | {} | {} | {} | {:.3} |",
            median(&mut throughput[i].clone()) / 1e6,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            p999(i) / p999(issue),
        );
        for b in 1..contenders.len() {
            print!(" {:.2} |", ratio(i, b));
        }
        println!();
    }
    println!();
    let or_dash = |engine: &str| index(engine).map_or("-".to_string(), |b| format!("{:.2}", ratio(0, b)));
    println!(
        "{SUMMARY}{name}\t{threads}\t{:.2}\t{}\t{:.3}\t{}",
        ratio(0, issue),
        or_dash("DashMap"),
        p999(0) / p999(issue),
        or_dash(VEC_MUTEX),
    );
}

/// Runs one job in this process (we are the child).
fn child(job: &str, rounds: usize, duration: Duration) {
    if job == "shrink" {
        shrink_table();
        return;
    }
    let (index, threads) = job.split_once(',').expect("<workload>,<threads>");
    let (index, threads): (usize, usize) = (index.parse().expect("index"), threads.parse().expect("threads"));
    let workloads = workloads();
    let (name, contenders) = &workloads[index];
    table(name, &contenders(), threads, rounds, duration);
}

/// Runs `job` in a fresh process; relays its table, returns its summary lines.
fn spawn_child(job: &str) -> Vec<String> {
    let exe = std::env::current_exe().expect("own path");
    let output = Command::new(exe).env(CHILD, job).output().expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut summaries = Vec::new();
    for line in stdout.lines() {
        match line.strip_prefix(SUMMARY) {
            Some(summary) => summaries.push(summary.to_string()),
            None => println!("{line}"),
        }
    }
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        panic!("child {job} failed ({}): see above", output.status);
    }
    summaries
}

fn main() {
    let rounds: usize = env_or("STOCKROOM_BENCH_ROUNDS", 5);
    let duration = Duration::from_millis(env_or("STOCKROOM_BENCH_MS", 300));
    if let Ok(job) = std::env::var(CHILD) {
        child(&job, rounds, duration);
        return;
    }
    let threads: Vec<usize> = env_or("STOCKROOM_BENCH_THREADS", "1,2,16".to_string())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let selected = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));

    println!("rounds {rounds}, {} ms per run, threads {threads:?}, one process per table\n", duration.as_millis());
    let mut summaries = Vec::new();
    for (index, (name, _)) in workloads().iter().enumerate() {
        if !selected(name) {
            continue;
        }
        for &t in &threads {
            summaries.extend(spawn_child(&format!("{index},{t}")));
        }
    }
    if selected("shrink") {
        spawn_child("shrink");
    }
    if summaries.is_empty() {
        return;
    }
    println!("### summary: stockroom against the baselines (median ratios of throughput; p99.9 ratio)\n");
    println!("| workload | threads | × {ISSUE_MUTEX} | × DashMap | p99.9 ÷ {ISSUE_MUTEX}'s | × {VEC_MUTEX} |");
    println!("|---|---:|---:|---:|---:|---:|");
    for summary in summaries {
        println!("| {} |", summary.replace('\t', " | "));
    }
}
