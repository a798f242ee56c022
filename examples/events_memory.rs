//! The event hub's memory under more publishing threads than cores: N
//! threads selling one unit at a time (each sale a published version, so an
//! event) for a fixed time, with no subscriber, with one that never reads,
//! or with one that reads everything; the peak growth of the live heap
//! (a counting global allocator: deterministic for a given schedule, and
//! blind to allocator slack) and of the resident set (`VmHWM` against the
//! resident set before the sellers start), and how many events the
//! subscriber got or was told it missed.
//!
//! Run it on two cores to reproduce issue 14's setting (`--json` prints
//! the summary as one JSON object; `--help` lists the flags):
//!
//! ```text
//! taskset -c 0,1 cargo run --release --example events_memory -- --threads 8 --millis 3000 --subscriber none
//! ```
//!
//! While the sellers run, a progress line goes to stderr once a second
//! (elapsed time, resident set growth; formatted without allocating, so the
//! live-heap count is unchanged); none with `--json`.

#[path = "common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use stockroom::{AllocateRequest, AllocationPolicy, Delivery, Ledger, LotId, NewLot, Quantity, SkuId, TryRecvError};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a tally; the peak is a maximum over the counter's own
        // modification order, which any ordering gives.
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Relaxed: a tally (see `alloc`).
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subscriber {
    /// Nobody subscribes.
    None,
    /// One subscription of `--capacity`, never read until the sellers stop.
    Idle,
    /// One subscription of `--capacity`, read by a thread as fast as it can.
    Reading,
}

struct Config {
    /// False: the same sales on a ledger without events (the baseline the
    /// hub's memory is measured against).
    events: bool,
    threads: u64,
    millis: u64,
    /// Each seller stops after this many sales (0: no limit), or when
    /// `millis` is up, whichever first: a fixed amount of work for
    /// instruction counts under callgrind.
    sales: u64,
    /// Print the summary as one JSON object instead.
    json: bool,
    skus: u64,
    capacity: u64,
    subscriber: Subscriber,
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}");
    eprintln!(
        "usage: events_memory [--threads N] [--millis N] [--skus N] [--capacity N] [--subscriber none|idle|reading] \
         [--no-events] [--sales N] [--json]"
    );
    std::process::exit(2);
}

fn parse_args() -> Config {
    let mut config = Config {
        events: true,
        threads: 8,
        millis: 3_000,
        sales: 0,
        json: false,
        skus: 1,
        capacity: 1 << 20,
        subscriber: Subscriber::None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => config.threads = common::number(&mut args, "--threads", usage),
            "--millis" => config.millis = common::number(&mut args, "--millis", usage),
            "--sales" => config.sales = common::number(&mut args, "--sales", usage),
            "--skus" => config.skus = common::number(&mut args, "--skus", usage),
            "--capacity" => config.capacity = common::number(&mut args, "--capacity", usage),
            "--subscriber" => {
                config.subscriber = match args.next().as_deref() {
                    Some("none") => Subscriber::None,
                    Some("idle") => Subscriber::Idle,
                    Some("reading") => Subscriber::Reading,
                    other => usage(&format!("--subscriber: {other:?} is not none, idle or reading")),
                }
            }
            "--no-events" => config.events = false,
            "--json" => config.json = true,
            "-h" | "--help" => usage("the event hub's memory under N publishing threads"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if config.threads == 0 || config.skus == 0 || config.millis == 0 {
        usage("--threads, --skus and --millis must be at least 1");
    }
    if !config.events && config.subscriber != Subscriber::None {
        usage("--no-events has no subscriber");
    }
    config
}

/// A line of `/proc/self/status` (`VmRSS`, `VmHWM`) in bytes; 0 where there
/// is no procfs.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// What a subscriber received and was told it missed.
#[derive(Default)]
struct Tally {
    events: u64,
    missed: u64,
}

impl Tally {
    fn add(&mut self, delivery: Delivery<stockroom::Event>) {
        match delivery {
            Delivery::Event(_) => self.events += 1,
            Delivery::Lagged { missed } => self.missed += missed,
        }
    }
}

fn main() {
    let config = parse_args();
    let ledger = Arc::new(Ledger::builder().events(config.events).build().expect("valid settings"));
    for sku in 0..config.skus {
        ledger.define_sku(SkuId(sku), AllocationPolicy::Fifo).expect("fresh");
        ledger.receive(SkuId(sku), NewLot::new(LotId(1), Quantity::MAX.get())).expect("receive");
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Relaxed: a tally read by this thread alone.
    let before_subscribing = LIVE.load(Ordering::Relaxed);
    let subscription = match config.subscriber {
        Subscriber::None => None,
        Subscriber::Idle | Subscriber::Reading => {
            Some(ledger.subscribe(config.capacity as usize).unwrap_or_else(|error| usage(&error.to_string())))
        }
    };
    let subscribed_bytes = LIVE.load(Ordering::Relaxed) - before_subscribing;
    let (idle, reader) = match (config.subscriber, subscription) {
        (Subscriber::Reading, Some(subscription)) => {
            let stop = Arc::clone(&stop);
            let reader = thread::spawn(move || {
                let mut tally = Tally::default();
                // Relaxed: a stop flag; the join below orders the rest.
                while !stop.load(Ordering::Relaxed) {
                    match subscription.try_recv() {
                        Ok(delivery) => tally.add(delivery),
                        Err(TryRecvError::Empty) => thread::yield_now(),
                        Err(TryRecvError::Disconnected) => break,
                    }
                }
                (subscription, tally)
            });
            (None, Some(reader))
        }
        (_, subscription) => (subscription, None),
    };

    let rss_before = proc_status_bytes("VmRSS");
    // Relaxed: a tally read by this thread alone.
    let live_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(live_before, Ordering::Relaxed);
    let sales = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let sellers: Vec<_> = (0..config.threads)
        .map(|thread| {
            let (ledger, stop, sales) = (Arc::clone(&ledger), Arc::clone(&stop), Arc::clone(&sales));
            let (skus, sales_max) = (config.skus, if config.sales == 0 { u64::MAX } else { config.sales });
            thread::spawn(move || {
                let mut sold = 0u64;
                // Relaxed: a stop flag; the join orders the tallies.
                while sold < sales_max && !stop.load(Ordering::Relaxed) {
                    let sku = SkuId((thread + sold) % skus);
                    ledger
                        .take(&AllocateRequest::new(sku, 1))
                        .expect("a lot of Quantity::MAX (2^40 - 1) units does not sell out");
                    sold += 1;
                }
                sales.fetch_add(sold, Ordering::Relaxed);
            })
        })
        .collect();
    // Sample the resident set while the sellers run (VmHWM is the peak
    // anyway; the samples show whether it shrinks again).
    let mut rss_max = rss_before;
    let mut rss_last = rss_before;
    let mut next_line = started + Duration::from_secs(1);
    while started.elapsed() < Duration::from_millis(config.millis) && !sellers.iter().all(|s| s.is_finished()) {
        thread::sleep(Duration::from_millis(10));
        rss_last = proc_status_bytes("VmRSS");
        rss_max = rss_max.max(rss_last);
        if !config.json && Instant::now() >= next_line {
            next_line += Duration::from_secs(1);
            let growth = rss_last.saturating_sub(rss_before) as f64 / (1024.0 * 1024.0);
            eprintln!(
                "events_memory: {:.1} s of {:.1} s, resident set +{growth:.1} MiB",
                started.elapsed().as_secs_f64(),
                config.millis as f64 / 1_000.0
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for seller in sellers {
        seller.join().expect("seller");
    }
    let elapsed = started.elapsed();
    let live_peak = PEAK.load(Ordering::Relaxed);
    let live_after = LIVE.load(Ordering::Relaxed);
    let hwm = proc_status_bytes("VmHWM");
    let sales = sales.load(Ordering::Relaxed);

    // Accounting: what the subscriber received plus what it was told it
    // missed must be every sale. A shed whose identity did not fit the
    // hub's shed log is told only when its SKU changes again, so: drain
    // what the hub still holds (bounded), make one more sale per SKU, and
    // drop the ledger, which dispatches what is left and sends every
    // subscription its last count before disconnecting it.
    let (mut tally, subscription) = match reader {
        Some(reader) => {
            let (subscription, tally) = reader.join().expect("reader");
            (tally, Some(subscription))
        }
        None => (Tally::default(), idle),
    };
    let mut sales_after = 0;
    if let Some(subscription) = &subscription {
        for _ in 0..1_000_000 {
            let before = tally.events + tally.missed;
            subscription.try_iter().for_each(|delivery| tally.add(delivery));
            if tally.events + tally.missed == before {
                break;
            }
        }
        for sku in 0..config.skus {
            ledger
                .take(&AllocateRequest::new(SkuId(sku), 1))
                .expect("a lot of Quantity::MAX (2^40 - 1) units does not sell out");
            sales_after += 1;
        }
    }
    drop(ledger);
    if let Some(subscription) = &subscription {
        subscription.try_iter().for_each(|delivery| tally.add(delivery));
    }
    let sales_accounted = sales + sales_after;
    let accounted = tally.events + tally.missed;
    let live_peak_growth = live_peak - live_before;
    if config.json {
        let summary = serde_json::json!({
            "threads": config.threads,
            "skus": config.skus,
            "seconds": elapsed.as_secs_f64(),
            "events": config.events,
            "subscriber": format!("{:?}", config.subscriber).to_lowercase(),
            "capacity": config.capacity,
            "sales": sales,
            "live_heap_peak_growth_bytes": live_peak_growth,
            "live_heap_end_growth_bytes": live_after - live_before,
            "rss_peak_growth_bytes": hwm.saturating_sub(rss_before),
            "subscribing_bytes": subscribed_bytes,
            "received": tally.events,
            "missed": tally.missed,
        });
        println!("{summary}");
    } else {
        println!(
            "events_memory: {} threads selling on {} SKU(s) for {:.2} s, events {}, subscriber {:?} (capacity {})",
            config.threads,
            config.skus,
            elapsed.as_secs_f64(),
            if config.events { "on" } else { "off" },
            config.subscriber,
            config.capacity
        );
        println!("  sales (events published)  {sales} ({:.0}/s)", sales as f64 / elapsed.as_secs_f64());
        println!(
            "  live heap                 peak +{}  at the end +{}",
            mib(live_peak_growth as f64),
            mib((live_after - live_before) as f64)
        );
        println!(
            "  resident set              peak (VmHWM) +{}  sampled max +{}  last sample +{}",
            mib(hwm.saturating_sub(rss_before) as f64),
            mib(rss_max.saturating_sub(rss_before) as f64),
            mib(rss_last.saturating_sub(rss_before) as f64)
        );
        if subscription.is_some() {
            println!("  subscribing               +{} live heap, before any event", mib(subscribed_bytes as f64));
            println!(
                "  subscriber                {} events received + {} reported missed = {accounted} ({})",
                tally.events,
                tally.missed,
                if accounted == sales_accounted {
                    "every sale, with one more per SKU at the end"
                } else {
                    "NOT every sale"
                }
            );
        }
    }
    if subscription.is_some() && accounted != sales_accounted {
        eprintln!("events_memory: the subscriber accounted for {accounted} events of {sales_accounted} sales");
        std::process::exit(1);
    }
}
