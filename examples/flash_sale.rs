//! Flash sale: many buyer threads hammer one SKU with `Ledger::take`.
//!
//! Shows the cheapest path the engine has (an immediate sale, no hold) under
//! the worst contention there is: every thread on the same SKU, far more
//! buyers than units, most attempts refused once the stock is gone. Proves,
//! at the end of the run, that nothing was oversold (sold never exceeds the
//! units, and the snapshot's `committed` equals what the buyers counted),
//! that no sale was duplicated (every `Sale` names its own SKU version, and
//! the per-thread sales add up to the snapshot), that no buyer was refused
//! while stock remained, and that `Ledger::audit` is clean. Reports the
//! throughput and an HDR histogram of per-attempt latency.
//!
//! ```text
//! cargo run --release --example flash_sale -- [--threads N] [--units N] [--attempts N] [--json]
//! ```
//!
//! Exits with status 1 (and the failed invariants on stderr) if any check
//! fails.

mod common;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::process::exit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stockroom::{AllocateError, AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};

const SKU: SkuId = SkuId(1);

struct Config {
    threads: usize,
    units: u64,
    attempts: u64,
    json: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("flash_sale: {problem}");
    eprintln!("usage: flash_sale [--threads N] [--units N] [--attempts N] [--json]");
    exit(2)
}

fn parse_args() -> Config {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut config = Config { threads: 2 * cores, units: 10_000, attempts: 1_000_000, json: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| common::number(&mut args, flag, usage);
        match arg.as_str() {
            "--threads" => config.threads = number("--threads") as usize,
            "--units" => config.units = number("--units"),
            "--attempts" => config.attempts = number("--attempts"),
            "--json" => config.json = true,
            "-h" | "--help" => usage("a flash sale against one SKU"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if config.threads == 0 || config.units == 0 {
        usage("--threads and --units must be at least 1");
    }
    config
}

/// What one buyer thread saw.
struct Buyer {
    sold: u64,
    refused: u64,
    contended: u64,
    errors: u64,
    unexpected: Vec<String>,
    /// The SKU version each of this buyer's sales produced.
    versions: Vec<u64>,
    latency: Histogram<u64>,
}

fn latency_histogram() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn buyer(ledger: &Ledger, attempts: u64, progress: &AtomicU64) -> Buyer {
    let request = AllocateRequest::new(SKU, 1);
    let mut me = Buyer {
        sold: 0,
        refused: 0,
        contended: 0,
        errors: 0,
        unexpected: Vec::new(),
        versions: Vec::new(),
        latency: latency_histogram(),
    };
    let mut unreported = 0u64;
    for _ in 0..attempts {
        let start = Instant::now();
        let outcome = ledger.take(&request);
        let nanos = start.elapsed().as_nanos();
        me.latency.saturating_record(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
        match outcome {
            Ok(sale) => {
                if sale.quantity().get() != 1 || sale.lines.len() != 1 {
                    me.unexpected.push(format!("a 1-unit take returned {sale:?}"));
                }
                me.sold += sale.quantity().get();
                me.versions.push(sale.version);
            }
            Err(AllocateError::Insufficient { .. }) => me.refused += 1,
            Err(AllocateError::Contended { .. }) => me.contended += 1,
            Err(error) => {
                me.errors += 1;
                me.unexpected.push(format!("take failed: {error}"));
            }
        }
        unreported += 1;
        if unreported == 1024 {
            progress.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
        }
    }
    progress.fetch_add(unreported, Ordering::Relaxed);
    me
}

fn main() {
    let config = parse_args();
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define the SKU");
    ledger.receive(SKU, NewLot::new(LotId(1), config.units)).expect("receive the stock");
    let version_before = ledger.snapshot(SKU).expect("snapshot").version();

    let progress = Arc::new(AtomicU64::new(0));
    let bar = if config.json {
        ProgressBar::with_draw_target(Some(config.attempts), ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(config.attempts)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {human_pos}/{human_len} attempts {msg}")
            .expect("valid progress template"),
    );

    let started = Instant::now();
    let buyers: Vec<_> = (0..config.threads)
        .map(|index| {
            let ledger = Arc::clone(&ledger);
            let progress = Arc::clone(&progress);
            // Split the attempts evenly; the first threads take the remainder.
            let share = config.attempts / config.threads as u64
                + u64::from((index as u64) < config.attempts % config.threads as u64);
            std::thread::spawn(move || buyer(&ledger, share, &progress))
        })
        .collect();
    while !buyers.iter().all(|handle| handle.is_finished()) {
        bar.set_position(progress.load(Ordering::Relaxed));
        let sold = ledger.snapshot(SKU).map(|s| s.totals().committed.get()).unwrap_or(0);
        bar.set_message(format!("sold {sold}/{}", config.units));
        std::thread::sleep(Duration::from_millis(50));
    }
    let results: Vec<Buyer> = buyers.into_iter().map(|handle| handle.join().expect("buyer thread panicked")).collect();
    let elapsed = started.elapsed();
    bar.set_position(progress.load(Ordering::Relaxed));
    bar.finish_and_clear();

    // Tally what the buyers saw.
    let mut latency = latency_histogram();
    let (mut sold, mut refused, mut contended, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut versions = Vec::new();
    let mut failures = Vec::new();
    for result in &results {
        sold += result.sold;
        refused += result.refused;
        contended += result.contended;
        errors += result.errors;
        versions.extend_from_slice(&result.versions);
        failures.extend(result.unexpected.iter().cloned());
        latency.add(&result.latency).expect("same histogram bounds");
    }

    // Check every invariant against the ledger's own view.
    let snapshot = ledger.snapshot(SKU).expect("snapshot");
    let totals = snapshot.totals();
    let committed = totals.committed.get();
    let oversold = sold.saturating_sub(config.units).max(committed.saturating_sub(config.units));
    if oversold > 0 {
        failures.push(format!("oversold: {sold} sold, snapshot committed {committed}, only {} units", config.units));
    }
    if committed != sold {
        failures.push(format!("the buyers counted {sold} sales, the snapshot says {committed} committed"));
    }
    versions.sort_unstable();
    let distinct = {
        let mut unique = versions.clone();
        unique.dedup();
        unique.len() as u64
    };
    let duplicates = versions.len() as u64 - distinct;
    if duplicates > 0 {
        failures.push(format!("{duplicates} sales share a SKU version with another sale"));
    }
    if versions.len() as u64 != sold {
        failures.push(format!("{} sale outcomes for {sold} units sold", versions.len()));
    }
    // Every successful take is exactly one new version, and nothing else ran.
    if snapshot.version() != version_before + sold {
        failures.push(format!(
            "snapshot version {} after {sold} sales from version {version_before}: a sale landed twice or not at all",
            snapshot.version()
        ));
    }
    if versions.first().is_some_and(|&v| v <= version_before)
        || versions.last().is_some_and(|&v| v > snapshot.version())
    {
        failures.push("a sale names a version outside the run".to_string());
    }
    if sold + refused + contended + errors != config.attempts {
        failures.push(format!("{} outcomes for {} attempts", sold + refused + contended + errors, config.attempts));
    }
    if refused > 0 && sold != config.units {
        failures
            .push(format!("{refused} buyers were refused as sold out, yet only {sold} of {} units sold", config.units));
    }
    if totals.available.get() + committed != config.units || totals.held.get() != 0 {
        failures.push(format!("units not conserved: {totals:?}"));
    }
    let audit = ledger.audit();
    if !audit.is_clean() {
        failures.push(format!("audit found {} violations: {:?}", audit.violations.len(), audit.violations));
    }

    let seconds = elapsed.as_secs_f64();
    let throughput = config.attempts as f64 / seconds;
    let quantile = |q: f64| latency.value_at_quantile(q);
    if config.json {
        let summary = serde_json::json!({
            "threads": config.threads,
            "units": config.units,
            "attempts": config.attempts,
            "sold": sold,
            "refused": refused,
            "contended": contended,
            "oversold": oversold,
            "duplicate_sales": duplicates,
            "snapshot_committed": committed,
            "snapshot_version": snapshot.version(),
            "audit_clean": audit.is_clean(),
            "elapsed_s": seconds,
            "throughput_attempts_per_s": throughput,
            "latency_ns": {
                "p50": quantile(0.50),
                "p99": quantile(0.99),
                "p99_9": quantile(0.999),
                "max": latency.max(),
                "mean": latency.mean(),
            },
            "ok": failures.is_empty(),
            "failures": failures,
        });
        println!("{summary}");
    } else {
        println!(
            "flash sale: {} threads, {} units of 1 SKU, {} attempts of 1 unit",
            config.threads, config.units, config.attempts
        );
        println!("  sold              {sold}");
        println!("  refused           {refused} (sold out)");
        if contended > 0 {
            println!("  contended         {contended} (gave up after the CAS retry bound)");
        }
        println!("  oversold          {oversold}   (snapshot committed {committed} of {} units)", config.units);
        println!("  duplicate sales   {duplicates}   ({} distinct sale versions)", distinct);
        println!("  audit             {}", if audit.is_clean() { "clean" } else { "VIOLATIONS" });
        println!("  elapsed           {:.3} s", seconds);
        println!("  throughput        {:.0} attempts/s", throughput);
        println!(
            "  latency (ns)      p50 {}  p99 {}  p99.9 {}  max {}",
            quantile(0.50),
            quantile(0.99),
            quantile(0.999),
            latency.max()
        );
    }
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("INVARIANT FAILED: {failure}");
        }
        exit(1);
    }
}
