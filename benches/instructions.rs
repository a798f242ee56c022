//! The instruction-count harness: one scenario, set up, warmed up, then
//! exactly `n` iterations of one operation on one thread, so that
//! `valgrind --tool=callgrind` can count the instructions of those `n`
//! iterations (`scripts/instructions.sh` runs every scenario at `n` and
//! `2n` and reports `(I(2n) - I(n)) / n`: setup and warm-up cancel).
//!
//! Every scenario exists for stockroom (`stockroom/<name>`) and for the
//! per-SKU mutex baseline of issue 13 (`mutex/<name>`, see
//! `common/baseline.rs`), driven through the same small [`Engine`] trait
//! with the same clock, so the two columns differ only in the engine.
//!
//! Modes:
//! - `instructions <scenario> <n>`: the run callgrind counts. Only the
//!   call of `measured` is meant to be counted
//!   (`--collect-atstart=no --toggle-collect='*measured*'`). On x86_64
//!   the binary also asks callgrind to start instrumenting just before
//!   that call and to stop just after it (valgrind client requests, no-ops
//!   natively), so with `--instr-atstart=no` a large setup runs at
//!   valgrind's uninstrumented speed instead of ~50× slower than native.
//! - `instructions --allocs <scenario> <n>`: heap allocations and bytes
//!   allocated per iteration, counted by this binary's global allocator
//!   while `measured` runs (deterministic; no valgrind needed). Counting
//!   is off in the other modes: there the allocator adds one load and
//!   one branch per call.
//! - `instructions --ns <scenario-a> <scenario-b> [chunk] [rounds]`:
//!   wall time of both, set up side by side and run interleaved in
//!   chunks (A B A B …); prints the median ns per iteration of each and
//!   the median of the per-round ratios b / a.
//! - `instructions --list`: every scenario: name, the `n` the script
//!   uses, `quick` or `full`, and what one iteration does.
//!
//! Must never: time or count anything but the `n` iterations, or let a
//! scenario drift (every stationary scenario keeps its live holds, lots
//! and SKUs constant from one iteration to the next, and says how many
//! live holds it keeps: after the warm-up and after the measured
//! iterations the run checks that count and audits the engine, and exits
//! non-zero if either is off; the growth scenarios say what window they
//! measure).

#[path = "common/baseline.rs"]
mod baseline;

use baseline::{HoldId, MutexLedger};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use stockroom::{AllocateRequest, AllocationPolicy, Clock, Ledger, LotId, ManualClock, NewLot, ReservationId, SkuId};
use stockroom::{SystemClock, Timestamp};

// ---------------------------------------------------------------- allocator

/// Counts allocations while `COUNTING` is set; defers to the system
/// allocator unchanged.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn count(calls: &AtomicU64, bytes: usize) {
    // Relaxed: single counters read after the measured loop on the same
    // thread; no other memory is published through them.
    if COUNTING.load(Ordering::Relaxed) {
        calls.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call defers to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS, layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS, layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    /// A reallocation is counted apart, with its new size in bytes.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(&REALLOCS, new_size);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------- callgrind

/// Callgrind's client requests (`valgrind/callgrind.h`).
const CALLGRIND_START_INSTRUMENTATION: u64 = 0x4354_0004;
const CALLGRIND_STOP_INSTRUMENTATION: u64 = 0x4354_0005;

/// Sends a valgrind client request with no arguments; natively, and under
/// any other tool, it does nothing.
#[cfg(target_arch = "x86_64")]
fn client_request(request: u64) {
    let args: [u64; 6] = [request, 0, 0, 0, 0, 0];
    // SAFETY: valgrind's "special instruction" sequence for amd64
    // (`VALGRIND_DO_CLIENT_REQUEST_EXPR`): four rotations of rdi adding
    // up to 128 bits (rdi ends unchanged; declared clobbered anyway) and
    // `xchg rbx, rbx` (no effect). Natively that is all it does; valgrind
    // recognises it and reads `args` through rax, writing its answer to
    // rdx (declared as an output).
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0u64 => _,
            out("rdi") _,
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: u64) {}

// ---------------------------------------------------------------- engines

/// What a scenario does to an engine; both engines panic on a refusal a
/// scenario does not expect (a scenario that drifted into refusals would
/// measure refusals).
trait Engine: Send + Sync + 'static {
    type Hold: Copy + Send;
    fn new(clock: Arc<dyn Clock>) -> Self;
    fn define(&self, sku: u64);
    fn receive(&self, sku: u64, lot: u64, units: u64, expires_at: Option<Timestamp>);
    fn hold(&self, sku: u64, units: u64, hold_for: Option<Duration>) -> Self::Hold;
    fn commit(&self, hold: Self::Hold);
    fn release(&self, hold: Self::Hold);
    fn take(&self, sku: u64, units: u64);
    /// Live holds on SKU 0 (lapsed ones swept first where the engine does).
    fn live_holds(&self) -> u64;
    /// Conservation and the engine's own invariants.
    fn audit(&self) -> Result<(), String>;
}

impl Engine for Ledger {
    type Hold = ReservationId;

    fn new(clock: Arc<dyn Clock>) -> Ledger {
        Ledger::with_clock(clock)
    }
    fn define(&self, sku: u64) {
        black_box(self.define_sku(SkuId(sku), AllocationPolicy::Fefo).expect("fresh SKU"));
    }
    fn receive(&self, sku: u64, lot: u64, units: u64, expires_at: Option<Timestamp>) {
        let mut new = NewLot::new(LotId(lot), units);
        new.expires_at = expires_at;
        black_box(Ledger::receive(self, SkuId(sku), new).expect("receive"));
    }
    fn hold(&self, sku: u64, units: u64, hold_for: Option<Duration>) -> ReservationId {
        let mut request = AllocateRequest::new(SkuId(sku), units);
        request.hold_for = hold_for;
        self.allocate(&request).expect("stocked").reservation
    }
    fn commit(&self, hold: ReservationId) {
        black_box(Ledger::commit(self, hold, None).expect("live hold"));
    }
    fn release(&self, hold: ReservationId) {
        black_box(Ledger::release(self, hold).expect("live hold"));
    }
    fn take(&self, sku: u64, units: u64) {
        black_box(Ledger::take(self, &AllocateRequest::new(SkuId(sku), units)).expect("stocked"));
    }
    fn live_holds(&self) -> u64 {
        self.snapshot(SkuId(0)).map_or(0, |snapshot| snapshot.reservation_count() as u64)
    }
    fn audit(&self) -> Result<(), String> {
        let report = Ledger::audit(self);
        report.is_clean().then_some(()).ok_or(format!("audit: {:?}", report.violations))
    }
}

impl Engine for MutexLedger {
    type Hold = HoldId;

    fn new(clock: Arc<dyn Clock>) -> MutexLedger {
        MutexLedger::new(clock)
    }
    fn define(&self, sku: u64) {
        self.define_sku(SkuId(sku)).expect("fresh SKU");
    }
    fn receive(&self, sku: u64, lot: u64, units: u64, expires_at: Option<Timestamp>) {
        MutexLedger::receive(self, SkuId(sku), LotId(lot), units, expires_at).expect("receive");
    }
    fn hold(&self, sku: u64, units: u64, hold_for: Option<Duration>) -> HoldId {
        self.allocate(SkuId(sku), units, hold_for).expect("stocked").0
    }
    fn commit(&self, hold: HoldId) {
        black_box(MutexLedger::commit(self, hold).expect("live hold"));
    }
    fn release(&self, hold: HoldId) {
        black_box(MutexLedger::release(self, hold).expect("live hold"));
    }
    fn take(&self, sku: u64, units: u64) {
        black_box(MutexLedger::take(self, SkuId(sku), units).expect("stocked"));
    }
    fn live_holds(&self) -> u64 {
        self.with(SkuId(0), |state| state.hold_count() as u64).unwrap_or(0)
    }
    fn audit(&self) -> Result<(), String> {
        MutexLedger::audit(self).map(|_| ())
    }
}

// ---------------------------------------------------------------- scenarios

/// One iteration of a scenario, its state captured.
type Step = Box<dyn FnMut()>;

/// A scenario set up: its iteration, and the check run after the measured
/// iterations (outside what is counted or timed) that the engine's state
/// is sound and the scenario did not drift.
struct Prepared {
    step: Step,
    check: Box<dyn Fn() -> Result<(), String>>,
}

/// The check for a scenario that keeps `live` holds on SKU 0.
fn keeps<E: Engine>(engine: &Arc<E>, live: u64) -> Box<dyn Fn() -> Result<(), String>> {
    let engine = engine.clone();
    Box::new(move || {
        engine.audit()?;
        let held = engine.live_holds();
        (held == live).then_some(()).ok_or(format!("{held} live holds, the scenario keeps {live}"))
    })
}

/// Iterations run before the measured ones (stationary scenarios).
const WARMUP: u64 = 1_000;

/// Far in the future: lots that never expire during a run but still have
/// an expiry, so FEFO and the expiry check do their work.
const LATE: u64 = u64::MAX / 4;

/// Units in a lot no scenario exhausts.
const PLENTY: u64 = 1 << 39;

fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// One SKU (id 0) with `lots` lots of `units`, expiring in arrival order.
fn stocked<E: Engine>(clock: Arc<dyn Clock>, lots: u64, units: u64) -> Arc<E> {
    let engine = E::new(clock);
    engine.define(0);
    for lot in 0..lots {
        engine.receive(0, lot, units, Some(Timestamp::from_millis(LATE + lot)));
    }
    Arc::new(engine)
}

fn take_1<E: Engine>() -> Prepared {
    let engine = stocked::<E>(system(), 1, PLENTY);
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.take(0, 1)) }
}

fn hold_commit<E: Engine>() -> Prepared {
    let engine = stocked::<E>(system(), 1, PLENTY);
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.commit(engine.hold(0, 1, None))) }
}

/// A ledger kept in a journal in `mode`, in a fresh directory that is
/// removed when the scenario's step is dropped.
#[cfg(feature = "journal")]
fn journaled(mode: stockroom::journal::Durability) -> (Arc<Ledger>, TempDir) {
    use stockroom::journal::JournalOptions;
    let dir = TempDir(std::env::temp_dir().join(format!("stockroom-instructions-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let (ledger, _) = Ledger::builder().open(&dir.0, JournalOptions::new(mode)).expect("open the journal");
    Engine::define(&ledger, 0);
    Engine::receive(&ledger, 0, 0, PLENTY, Some(Timestamp::from_millis(LATE)));
    (Arc::new(ledger), dir)
}

/// `Batched` as the journal bench's `ledger` section runs it.
#[cfg(feature = "journal")]
const BATCHED: stockroom::journal::Durability =
    stockroom::journal::Durability::Batched { max_delay: Duration::from_millis(5) };

/// A directory removed on drop.
#[cfg(feature = "journal")]
struct TempDir(std::path::PathBuf);

#[cfg(feature = "journal")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `hold_commit` on a ledger kept in a `Batched` journal: what recording
/// a change adds (the appending thread's share; the writer thread's work
/// is not counted).
#[cfg(feature = "journal")]
fn hold_commit_batched() -> Prepared {
    let (engine, dir) = journaled(BATCHED);
    let check = keeps(&engine, 0);
    let step = Box::new(move || {
        let _ = &dir;
        Engine::commit(&*engine, Engine::hold(&*engine, 0, 1, None));
    });
    Prepared { step, check }
}

/// `hold_release` on a ledger kept in a `Batched` journal.
#[cfg(feature = "journal")]
fn hold_release_batched() -> Prepared {
    let (engine, dir) = journaled(BATCHED);
    let check = keeps(&engine, 0);
    let step = Box::new(move || {
        let _ = &dir;
        Engine::release(&*engine, Engine::hold(&*engine, 0, 1, None));
    });
    Prepared { step, check }
}

fn hold_release<E: Engine>() -> Prepared {
    let engine = stocked::<E>(system(), 1, PLENTY);
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.release(engine.hold(0, 1, None))) }
}

fn hold_release_live<E: Engine, const LIVE: u64>() -> Prepared {
    let engine = stocked::<E>(system(), 1, PLENTY);
    for _ in 0..LIVE {
        engine.hold(0, 1, None);
    }
    Prepared { check: keeps(&engine, LIVE), step: Box::new(move || engine.release(engine.hold(0, 1, None))) }
}

/// `LIVE` holds with a one-hour deadline; each iteration commits the
/// oldest (the earliest deadline) and holds one more at the back.
fn commit_earliest<E: Engine, const LIVE: u64>() -> Prepared {
    const HOUR: Duration = Duration::from_secs(3_600);
    let engine = stocked::<E>(system(), 1, PLENTY);
    let mut holds: VecDeque<E::Hold> = (0..LIVE).map(|_| engine.hold(0, 1, Some(HOUR))).collect();
    let check = keeps(&engine, LIVE);
    let step = Box::new(move || {
        engine.commit(holds.pop_front().expect("LIVE > 0"));
        holds.push_back(engine.hold(0, 1, Some(HOUR)));
    });
    Prepared { step, check }
}

/// A manual clock; `LIVE` holds whose deadlines are 1, 2, … `LIVE` ms
/// away. Each iteration moves the clock 1 ms (exactly one hold lapses)
/// and runs the first operation after it: a hold with a deadline `LIVE`
/// ms away, so `LIVE` holds stay live.
fn first_op_after_lapse<E: Engine, const LIVE: u64>() -> Prepared {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1 << 40)));
    let engine = stocked::<E>(clock.clone(), 1, PLENTY);
    for ms in 1..=LIVE {
        engine.hold(0, 1, Some(Duration::from_millis(ms)));
    }
    let check = keeps(&engine, LIVE);
    let step = Box::new(move || {
        clock.advance(Duration::from_millis(1));
        black_box(engine.hold(0, 1, Some(Duration::from_millis(LIVE))));
    });
    Prepared { step, check }
}

/// 20 lots of 1,000 units; hold 1,500 (two lots) and release it.
fn fefo_20_lots<E: Engine>() -> Prepared {
    let engine = stocked::<E>(system(), 20, 1_000);
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.release(engine.hold(0, 1_500, None))) }
}

/// 2,000 lots of 1,000 units, the older 1,000 sold; hold 1,500 and
/// release it.
fn fefo_2000_lots_half_sold<E: Engine>() -> Prepared {
    let engine = stocked::<E>(system(), 2_000, 1_000);
    engine.take(0, 1_000 * 1_000);
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.release(engine.hold(0, 1_500, None))) }
}

/// A per-thread xorshift64* generator, the same for both engines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// 10,000 SKUs of one lot; take 1 from a uniformly chosen one.
fn take_1_catalog<E: Engine>() -> Prepared {
    const SKUS: u64 = 10_000;
    let engine = Arc::new(E::new(system()));
    for sku in 0..SKUS {
        engine.define(sku);
        engine.receive(sku, 0, PLENTY, Some(Timestamp::from_millis(LATE)));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.take(rng.next() % SKUS, 1)) }
}

/// `BASE` SKUs defined; each iteration defines one more (a growth
/// scenario: with `n = BASE / 2` the script measures the calls that take
/// the table from 1.5 × `BASE` to 2 × `BASE`).
fn define_sku<E: Engine, const BASE: u64>() -> Prepared {
    let engine = Arc::new(E::new(system()));
    for sku in 0..BASE {
        engine.define(sku);
    }
    let mut next = BASE;
    let check = keeps(&engine, 0);
    let step = Box::new(move || {
        engine.define(next);
        next += 1;
    });
    Prepared { step, check }
}

/// One SKU with `BASE` lots; each iteration receives one more, expiring
/// after all others (a growth scenario, like `define_sku`).
fn receive<E: Engine, const BASE: u64>() -> Prepared {
    let engine = stocked::<E>(system(), BASE, 1_000);
    let mut next = BASE;
    let check = keeps(&engine, 0);
    let step = Box::new(move || {
        engine.receive(0, next, 1_000, Some(Timestamp::from_millis(LATE + next)));
        next += 1;
    });
    Prepared { step, check }
}

/// `THREADS` threads, all alive at once, each holding and committing,
/// selling and holding-then-releasing a few times, then exiting; then
/// hold + commit on the main thread.
fn hold_commit_after_threads<E: Engine, const THREADS: usize>() -> Prepared {
    let engine = stocked::<E>(system(), 1, PLENTY);
    let all_alive = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (engine, all_alive) = (engine.clone(), all_alive.clone());
            std::thread::spawn(move || {
                for _ in 0..4 {
                    engine.commit(engine.hold(0, 1, None));
                    engine.release(engine.hold(0, 1, None));
                    engine.take(0, 1);
                }
                all_alive.wait();
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    Prepared { check: keeps(&engine, 0), step: Box::new(move || engine.commit(engine.hold(0, 1, None))) }
}

/// How the script treats a scenario.
#[derive(Clone, Copy, PartialEq)]
enum Tier {
    /// Run by default.
    Quick,
    /// Only with `--full` (large setups).
    Full,
}

struct Scenario {
    name: &'static str,
    /// The `n` the script runs (and `2n`).
    n: u64,
    tier: Tier,
    /// Warm-up iterations before the measured ones.
    warmup: u64,
    about: &'static str,
    stockroom: fn() -> Prepared,
    mutex: fn() -> Prepared,
}

const fn scenario(
    name: &'static str,
    n: u64,
    tier: Tier,
    warmup: u64,
    about: &'static str,
    stockroom: fn() -> Prepared,
    mutex: fn() -> Prepared,
) -> Scenario {
    Scenario { name, n, tier, warmup, about, stockroom, mutex }
}

type L = Ledger;
type M = MutexLedger;
use Tier::{Full, Quick};

/// Iterations the script measures (and twice as many).
const N: u64 = 10_000;
/// For scenarios with 100,000 live holds, whose iterations cost up to
/// ~1 ms each on a write path that copies its holds.
const N_LARGE: u64 = 1_000;
/// Warm-up for those.
const WARMUP_LARGE: u64 = 100;

/// Warm-up for the journaled scenarios: past a lap of the journal's ring
/// (16,384 records by default; two per iteration), so the measured
/// appends reuse its slots' buffers as a long-running ledger's do.
#[cfg(feature = "journal")]
const WARMUP_JOURNAL: u64 = 10_000;

const SCENARIOS: &[Scenario] = &[
    scenario("take_1", N, Quick, WARMUP, "take 1 unit (1 SKU, 1 lot)", take_1::<L>, take_1::<M>),
    scenario("hold_commit", N, Quick, WARMUP, "hold 1 unit, commit it", hold_commit::<L>, hold_commit::<M>),
    scenario("hold_release", N, Quick, WARMUP, "hold 1 unit, release it", hold_release::<L>, hold_release::<M>),
    scenario(
        "hold_release_100k_live",
        N_LARGE,
        Quick,
        WARMUP_LARGE,
        "hold 1 + release, 100,000 other holds live on the SKU",
        hold_release_live::<L, 100_000>,
        hold_release_live::<M, 100_000>,
    ),
    scenario(
        "commit_earliest_1",
        N,
        Quick,
        WARMUP,
        "commit the one deadline hold, hold a new one",
        commit_earliest::<L, 1>,
        commit_earliest::<M, 1>,
    ),
    scenario(
        "commit_earliest_100k",
        N_LARGE,
        Quick,
        WARMUP_LARGE,
        "commit the earliest of 100,000 deadline holds, hold a new one",
        commit_earliest::<L, 100_000>,
        commit_earliest::<M, 100_000>,
    ),
    scenario(
        "lapse_first_op_1",
        N,
        Quick,
        WARMUP,
        "clock +1 ms lapses the one deadline hold; then hold 1 (deadline)",
        first_op_after_lapse::<L, 1>,
        first_op_after_lapse::<M, 1>,
    ),
    scenario(
        "lapse_first_op_100k",
        N_LARGE,
        Quick,
        WARMUP_LARGE,
        "clock +1 ms lapses 1 of 100,000 deadline holds; then hold 1 (deadline)",
        first_op_after_lapse::<L, 100_000>,
        first_op_after_lapse::<M, 100_000>,
    ),
    scenario(
        "fefo_1500_20_lots",
        N,
        Quick,
        WARMUP,
        "FEFO hold 1,500 over 20 lots of 1,000 (2 lines), release",
        fefo_20_lots::<L>,
        fefo_20_lots::<M>,
    ),
    scenario(
        "fefo_1500_2000_lots",
        N,
        Quick,
        WARMUP,
        "FEFO hold 1,500 over 2,000 lots of 1,000, older 1,000 sold, release",
        fefo_2000_lots_half_sold::<L>,
        fefo_2000_lots_half_sold::<M>,
    ),
    scenario(
        "take_1_10k_skus",
        N,
        Quick,
        WARMUP,
        "take 1 from one of 10,000 SKUs (uniform)",
        take_1_catalog::<L>,
        take_1_catalog::<M>,
    ),
    scenario(
        "define_sku_1k",
        500,
        Quick,
        0,
        "define a SKU; 1,000 defined at the start (window 1,500..2,000)",
        define_sku::<L, 1_000>,
        define_sku::<M, 1_000>,
    ),
    scenario(
        "define_sku_100k",
        50_000,
        Full,
        0,
        "define a SKU; 100,000 defined at the start (window 150k..200k)",
        define_sku::<L, 100_000>,
        define_sku::<M, 100_000>,
    ),
    scenario(
        "define_sku_1m",
        500_000,
        Full,
        0,
        "define a SKU; 1,000,000 defined at the start (window 1.5M..2M)",
        define_sku::<L, 1_000_000>,
        define_sku::<M, 1_000_000>,
    ),
    scenario(
        "receive_1k",
        500,
        Quick,
        0,
        "receive a lot into a SKU with 1,000 lots (window 1,500..2,000)",
        receive::<L, 1_000>,
        receive::<M, 1_000>,
    ),
    scenario(
        "receive_10k",
        5_000,
        Full,
        0,
        "receive a lot into a SKU with 10,000 lots (window 15k..20k)",
        receive::<L, 10_000>,
        receive::<M, 10_000>,
    ),
    scenario(
        "receive_100k",
        50_000,
        Full,
        0,
        "receive a lot into a SKU with 100,000 lots (window 150k..200k)",
        receive::<L, 100_000>,
        receive::<M, 100_000>,
    ),
    scenario(
        "hold_commit_after_16_threads",
        N,
        Quick,
        WARMUP,
        "hold 1 + commit after 16 threads lived (all at once) and exited",
        hold_commit_after_threads::<L, 16>,
        hold_commit_after_threads::<M, 16>,
    ),
    scenario(
        "hold_commit_after_64_threads",
        N,
        Quick,
        WARMUP,
        "hold 1 + commit after 64 threads lived (all at once) and exited",
        hold_commit_after_threads::<L, 64>,
        hold_commit_after_threads::<M, 64>,
    ),
    // With `--features journal` only (the mutex column has no journal:
    // it is the plain scenario's).
    #[cfg(feature = "journal")]
    scenario(
        "hold_commit_batched",
        N,
        Quick,
        WARMUP_JOURNAL,
        "hold 1 unit, commit it; the ledger kept in a Batched journal",
        hold_commit_batched,
        hold_commit::<M>,
    ),
    #[cfg(feature = "journal")]
    scenario(
        "hold_release_batched",
        N,
        Quick,
        WARMUP_JOURNAL,
        "hold 1 unit, release it; the ledger kept in a Batched journal",
        hold_release_batched,
        hold_release::<M>,
    ),
];

// ---------------------------------------------------------------- runner

/// The `n` iterations callgrind counts (`--toggle-collect='*measured*'`).
#[inline(never)]
fn measured(step: &mut Step, n: u64) {
    for _ in 0..n {
        step();
    }
}

/// Looks up `engine/name` and sets it up, warm-up done.
fn prepare(full_name: &str) -> Result<Prepared, String> {
    let (engine, name) = full_name.split_once('/').ok_or(format!("{full_name}: expected <engine>/<scenario>"))?;
    let scenario = SCENARIOS.iter().find(|s| s.name == name).ok_or(format!("{name}: no such scenario (see --list)"))?;
    let mut prepared = match engine {
        "stockroom" => (scenario.stockroom)(),
        "mutex" => (scenario.mutex)(),
        other => return Err(format!("{other}: the engine is `stockroom` or `mutex`")),
    };
    for _ in 0..scenario.warmup {
        (prepared.step)();
    }
    (prepared.check)().map_err(|broken| format!("{full_name} after warm-up: {broken}"))?;
    Ok(prepared)
}

fn parse_n(arg: Option<&String>, default: u64) -> Result<u64, String> {
    match arg {
        None => Ok(default),
        Some(text) => match text.parse() {
            Ok(0) | Err(_) => Err(format!("{text}: expected a positive iteration count")),
            Ok(n) => Ok(n),
        },
    }
}

/// The check after the measured iterations.
fn checked(name: &str, prepared: &Prepared) -> Result<(), String> {
    (prepared.check)().map_err(|broken| format!("{name} after the measured iterations: {broken}"))
}

fn allocs(name: &str, n: u64) -> Result<(), String> {
    let mut prepared = prepare(name)?;
    for counter in [&ALLOCS, &REALLOCS, &BYTES] {
        counter.store(0, Ordering::Relaxed);
    }
    // Relaxed: the flag only gates this thread's counting; `measured`
    // runs on this thread.
    COUNTING.store(true, Ordering::Relaxed);
    measured(&mut prepared.step, n);
    COUNTING.store(false, Ordering::Relaxed);
    checked(name, &prepared)?;
    let calls = ALLOCS.load(Ordering::Relaxed);
    let (reallocs, bytes) = (REALLOCS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
    let per = |x: u64| x as f64 / n as f64;
    println!("{name}\tallocs/op {:.3}\treallocs/op {:.3}\tbytes/op {:.1}", per(calls), per(reallocs), per(bytes));
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn ns(a: &str, b: &str, chunk: u64, rounds: usize) -> Result<(), String> {
    let (mut prepared_a, mut prepared_b) = (prepare(a)?, prepare(b)?);
    let (mut ns_a, mut ns_b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let began = Instant::now();
        measured(&mut prepared_a.step, chunk);
        let per_a = began.elapsed().as_nanos() as f64 / chunk as f64;
        let began = Instant::now();
        measured(&mut prepared_b.step, chunk);
        let per_b = began.elapsed().as_nanos() as f64 / chunk as f64;
        ns_a.push(per_a);
        ns_b.push(per_b);
        ratios.push(per_b / per_a);
    }
    checked(a, &prepared_a)?;
    checked(b, &prepared_b)?;
    println!(
        "{a}\t{:.1} ns/op\t{b}\t{:.1} ns/op\tb/a median of {rounds} interleaved rounds {:.3}",
        median(&mut ns_a),
        median(&mut ns_b),
        median(&mut ratios)
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let result = match args.first().map(String::as_str) {
        Some("--list") => {
            for s in SCENARIOS {
                let tier = if s.tier == Tier::Quick { "quick" } else { "full" };
                println!("{}\t{}\t{tier}\t{}", s.name, s.n, s.about);
            }
            Ok(())
        }
        Some("--allocs") => match args.get(1) {
            Some(name) => parse_n(args.get(2), N).and_then(|n| allocs(name, n)),
            None => Err("--allocs <engine>/<scenario> [n]".into()),
        },
        Some("--ns") => match (args.get(1), args.get(2)) {
            (Some(a), Some(b)) => parse_n(args.get(3), N).and_then(|chunk| {
                let rounds = parse_n(args.get(4), 9)? as usize;
                ns(a, b, chunk, rounds)
            }),
            _ => Err("--ns <engine>/<scenario> <engine>/<scenario> [chunk] [rounds]".into()),
        },
        Some(name) => parse_n(args.get(1), N).and_then(|n| {
            let mut prepared = prepare(name)?;
            client_request(CALLGRIND_START_INSTRUMENTATION);
            measured(&mut prepared.step, n);
            client_request(CALLGRIND_STOP_INSTRUMENTATION);
            checked(name, &prepared)?;
            println!("{name}\tn {n}");
            Ok(())
        }),
        // `cargo bench` with no arguments: a quick native pass over every
        // quick scenario's allocations, so the target is exercised.
        None => SCENARIOS.iter().filter(|s| s.tier == Tier::Quick).try_for_each(|s| {
            allocs(&format!("stockroom/{}", s.name), 1_000)?;
            allocs(&format!("mutex/{}", s.name), 1_000)
        }),
    };
    if let Err(message) = result {
        eprintln!("instructions: {message}");
        std::process::exit(2);
    }
}
