//! Intake burst: a flash-sale spike through the intake.
//!
//! Producer threads fire a burst of one-unit orders, ten times the
//! intake's queue capacity, as fast as they can with
//! `Intake::try_submit`, the way an HTTP front end answers "202 Accepted"
//! or "429 Too Many Requests". Workers apply the accepted orders to one SKU
//! of a shared `Ledger`, each after a simulated service time (a payment
//! authorisation, say), so the queue fills and the rest of the burst is
//! shed. Then the intake is shut down, which drains every accepted order.
//!
//! Checks on the way out: every shed order came back intact; every accepted
//! order has exactly one outcome (a sale, or sold out); nothing was
//! oversold (sales never exceed the units, and the snapshot's `committed`
//! equals what the tickets say was sold); the intake's counters agree with
//! the producers'; and `Ledger::audit` is clean. Prints accepted, shed,
//! sold, oversold and the time-to-outcome percentiles.
//!
//! ```text
//! cargo run --release --example intake_burst -- [--capacity N] [--workers N] [--producers N]
//!     [--units N] [--work-us N] [--json]
//! ```
//!
//! Exits with status 1 (and the failed checks on stderr) if any check fails.

mod common;

use std::process::exit;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use stockroom::intake::{Apply, Intake, IntakeError, IntakeStats, SubmitError, Ticket};
use stockroom::{
    AllocateError, AllocateRequest, AllocationPolicy, Command, CommandError, Ledger, LotId, NewLot, Outcome, SkuId,
};

const SKU: SkuId = SkuId(1);
/// The burst is this many times the queue's capacity.
const BURST_FACTOR: usize = 10;

struct Config {
    capacity: usize,
    workers: usize,
    producers: usize,
    units: u64,
    work_us: u64,
    json: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("intake_burst: {problem}");
    eprintln!("usage: intake_burst [--capacity N] [--workers N] [--producers N] [--units N] [--work-us N] [--json]");
    exit(2)
}

fn parse_args() -> Config {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut config =
        Config { capacity: 1_024, workers: cores.max(2), producers: 4, units: 0, work_us: 50, json: false };
    let mut units = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| common::number(&mut args, flag, usage);
        match arg.as_str() {
            "--capacity" => config.capacity = number("--capacity") as usize,
            "--workers" => config.workers = number("--workers") as usize,
            "--producers" => config.producers = number("--producers") as usize,
            "--units" => units = Some(number("--units")),
            "--work-us" => config.work_us = number("--work-us"),
            "--json" => config.json = true,
            "-h" | "--help" => usage("a flash-sale burst of 10x the queue capacity through the intake"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if !(1..=Intake::<()>::CAPACITY_MAX).contains(&config.capacity) {
        usage(&format!("--capacity must be within 1..={}", Intake::<()>::CAPACITY_MAX));
    }
    if !(1..=Intake::<()>::WORKERS_MAX).contains(&config.workers) {
        usage(&format!("--workers must be within 1..={}", Intake::<()>::WORKERS_MAX));
    }
    if config.producers == 0 || config.producers > 256 {
        usage("--producers must be within 1..=256");
    }
    // By default there is one unit per two queue slots: the accepted orders
    // outnumber the units, so the sale sells out while the queue drains.
    config.units = units.unwrap_or((config.capacity as u64 / 2).max(1));
    if config.units == 0 {
        usage("--units must be at least 1");
    }
    config
}

/// The ledger behind a simulated per-order service time.
struct Checkout {
    ledger: Arc<Ledger>,
    work: Duration,
}

impl Apply for Checkout {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        if !self.work.is_zero() {
            thread::sleep(self.work);
        }
        self.ledger.execute(command)
    }
}

/// What one producer saw.
struct Producer {
    tickets: Vec<Ticket>,
    shed: u64,
    /// Shed commands that did not come back as sent.
    mangled: u64,
    other: Vec<String>,
}

fn produce(intake: &Intake<Checkout>, orders: usize) -> Producer {
    let order = Command::Take(AllocateRequest::new(SKU, 1));
    let mut me = Producer { tickets: Vec::with_capacity(orders), shed: 0, mangled: 0, other: Vec::new() };
    for _ in 0..orders {
        match intake.try_submit(order.clone()) {
            Ok(ticket) => me.tickets.push(ticket),
            Err(SubmitError::Full(back)) => {
                me.shed += 1;
                if *back != order {
                    me.mangled += 1;
                }
            }
            Err(refused) => me.other.push(format!("submit refused: {refused}")),
        }
    }
    me
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() {
    let config = parse_args();
    let orders = BURST_FACTOR * config.capacity;
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fifo).expect("define the SKU");
    ledger.receive(SKU, NewLot::new(LotId(1), config.units)).expect("receive the stock");
    let checkout = Checkout { ledger: Arc::clone(&ledger), work: Duration::from_micros(config.work_us) };
    let intake = Arc::new(
        Intake::builder()
            .capacity(config.capacity)
            .workers(config.workers)
            .thread_name("checkout")
            .build(checkout)
            .unwrap_or_else(|error| {
                eprintln!("intake_burst: cannot start the workers: {error}");
                exit(1)
            }),
    );

    let started = Instant::now();
    let producers: Vec<_> = (0..config.producers)
        .map(|index| {
            let intake = Arc::clone(&intake);
            // Split the burst evenly; the first producers take the remainder.
            let share = orders / config.producers + usize::from(index < orders % config.producers);
            thread::spawn(move || produce(&intake, share))
        })
        .collect();
    let producers: Vec<Producer> =
        producers.into_iter().map(|producer| producer.join().expect("a producer panicked")).collect();
    let burst = started.elapsed();
    let report = intake.shutdown();
    let elapsed = started.elapsed();

    let mut failures: Vec<String> = Vec::new();
    let (mut accepted, mut shed, mut sold, mut sold_out, mut undecided) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for producer in &producers {
        shed += producer.shed;
        accepted += producer.tickets.len() as u64;
        if producer.mangled > 0 {
            failures.push(format!("{} shed commands came back changed", producer.mangled));
        }
        failures.extend(producer.other.iter().cloned());
        for ticket in &producer.tickets {
            match ticket.try_outcome() {
                None => undecided += 1,
                Some(Ok(Outcome::Sold(sale))) => sold += sale.quantity().get(),
                Some(Err(IntakeError::Refused(CommandError::Allocate(AllocateError::Insufficient { .. })))) => {
                    sold_out += 1
                }
                Some(other) => failures.push(format!("{}: unexpected outcome {other:?}", ticket.id())),
            }
        }
    }
    let committed = ledger.snapshot(SKU).expect("snapshot").totals().committed.get();
    let oversold = committed.saturating_sub(config.units).max(sold.saturating_sub(config.units));
    let audit = ledger.audit();
    let stats: IntakeStats = intake.stats();

    if !report.is_complete() {
        failures.push(format!("shutdown left orders undone: {report:?}"));
    }
    if undecided > 0 {
        failures.push(format!("{undecided} accepted orders have no outcome"));
    }
    if oversold > 0 {
        failures.push(format!("oversold {oversold} units ({committed} committed of {})", config.units));
    }
    if committed != sold {
        failures.push(format!("the snapshot committed {committed} units but the tickets say {sold} were sold"));
    }
    if accepted + shed != orders as u64 {
        failures.push(format!("{accepted} accepted + {shed} shed != {orders} orders"));
    }
    if (stats.accepted, stats.shed, stats.decided) != (accepted, shed, accepted) {
        failures.push(format!("the intake's counters disagree with the producers': {stats:?}"));
    }
    if stats.time_to_outcome.count != accepted {
        failures.push(format!("{} times to outcome for {accepted} accepted orders", stats.time_to_outcome.count));
    }
    if !audit.is_clean() {
        failures.push(format!("audit: {audit:?}"));
    }

    let p = stats.time_to_outcome;
    if config.json {
        let summary = serde_json::json!({
            "orders": orders,
            "producers": config.producers,
            "capacity": config.capacity,
            "workers": config.workers,
            "work_us": config.work_us,
            "units": config.units,
            "accepted": accepted,
            "shed": shed,
            "sold": sold,
            "sold_out": sold_out,
            "oversold": oversold,
            "undecided": undecided,
            "audit_clean": audit.is_clean(),
            "time_to_outcome_ms": {
                "p50": millis(p.p50), "p99": millis(p.p99), "p999": millis(p.p999), "max": millis(p.max),
            },
            "burst_ms": millis(burst),
            "elapsed_ms": millis(elapsed),
            "failures": failures,
        });
        println!("{summary}");
    } else {
        println!(
            "intake burst: {orders} one-unit orders ({BURST_FACTOR}x the queue) from {} producers in {:.1} ms; \
             queue {}, {} workers, {} us per order, {} units",
            config.producers,
            millis(burst),
            config.capacity,
            config.workers,
            config.work_us,
            config.units
        );
        println!("  accepted         {accepted:<7} (202: queued, each with a ticket)");
        println!("  shed             {shed:<7} (429: intake full, every command handed back intact)");
        println!("  sold             {sold:<7} (snapshot committed {committed} of {} units)", config.units);
        println!("  sold out         {sold_out:<7} (accepted, then refused by the ledger: no stock left)");
        println!("  oversold         {oversold}");
        println!("  undecided        {undecided:<7} (accepted orders without an outcome after shutdown)");
        println!("  audit            {}", if audit.is_clean() { "clean" } else { "VIOLATIONS" });
        println!(
            "  time to outcome  p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
            millis(p.p50),
            millis(p.p99),
            millis(p.p999),
            millis(p.max)
        );
        println!("  elapsed          {:.1} ms (burst, then drain and shutdown)", millis(elapsed));
    }
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("intake_burst: FAILED: {failure}");
        }
        exit(1);
    }
}
