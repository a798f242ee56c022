//! Perishables: FEFO allocation across pallets while a chaos monkey changes
//! the oldest pallets' weight.
//!
//! 2,000 pallets of 1,000 lb (base unit: hundredths of a pound, so 100,000
//! units a pallet) with staggered expiries, a few of them already expired,
//! received in an order unrelated to their expiry. Several order threads
//! each keep dozens of orders of 1,500 lb open at once (hundreds of live
//! reservations in all): every order is an `allocate`, FEFO, fill-or-kill,
//! that spans pallets; open orders are then committed or released at
//! random. Meanwhile a chaos thread reads a snapshot, takes the oldest
//! pallets (the front of FEFO order) and adjusts each by up to ±30 lb
//! every 150 ms (`--chaos-ms 0`: continuously), shrinking pallets that
//! orders hold, so that the engine has to short reservations and say so.
//!
//! Shows FEFO order on the first lots touched, and proves at the end:
//!
//! - zero oversold units: per pallet, `held + committed <= received +
//!   adjusted`, in every snapshot the chaos thread took and in the final one;
//! - a clean audit;
//! - every order accounted for: filled = committed + released + still held,
//!   each order's granted units traced through its outcome and the
//!   shortfalls the chaos thread was told about, and the still-held orders
//!   exactly the snapshot's live reservations;
//! - units conserved, from the snapshot and from the threads' own tallies;
//! - every allocation's lines in FEFO order, none from an expired pallet.
//!
//! Exits with status 1 (the failed checks on stderr) if any check fails.
//!
//! ```text
//! cargo run --release --example perishables -- [--chaos-ms N] [--orders N] [--order-threads N] [--json]
//! ```
//!
//! The ledger runs on a `ManualClock` frozen at one instant, so which
//! pallets count as expired is the same on every run.
//!
//! While the orders run, a progress line goes to stderr at most once a
//! second (orders placed, chaos ticks, units available); none with
//! `--json`.

mod common;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::exit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stockroom::{
    AdjustError, AdjustmentReason, AllocateError, AllocateRequest, AllocationPolicy, Clock, CommitError, Ledger, Line,
    LotId, ManualClock, NewLot, ReleaseError, ReservationId, SkuId, Timestamp,
};

const SKU: SkuId = SkuId(7);
/// Base units per pound: quantities are hundredths of a pound.
const PER_LB: u64 = 100;
/// The frozen "now" of the run.
const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const HALF_HOUR: u64 = HOUR / 2;
/// The least time between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

struct Config {
    pallets: u64,
    pallet_lb: u64,
    expired: u64,
    order_lb: u64,
    orders: u64,
    order_threads: u64,
    open: usize,
    leave_held: usize,
    pace_us: u64,
    chaos_ms: u64,
    chaos_lots: usize,
    chaos_lb: u64,
    seed: u64,
    json: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("perishables: {problem}");
    eprintln!(
        "usage: perishables [--pallets N] [--pallet-lb N] [--expired N] [--order-lb N] [--orders N] \
         [--order-threads N] [--open N] [--leave-held N] [--pace-us N] [--chaos-ms N] [--chaos-lots N] \
         [--chaos-lb N] [--seed N] [--json]"
    );
    exit(2)
}

fn parse_args() -> Config {
    let mut c = Config {
        pallets: 2_000,
        pallet_lb: 1_000,
        expired: 20,
        order_lb: 1_500,
        orders: 2_400,
        order_threads: 4,
        open: 80,
        leave_held: 5,
        pace_us: 4_000,
        chaos_ms: 150,
        chaos_lots: 8,
        chaos_lb: 30,
        seed: 42,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| common::number(&mut args, flag, usage);
        match arg.as_str() {
            "--pallets" => c.pallets = number("--pallets"),
            "--pallet-lb" => c.pallet_lb = number("--pallet-lb"),
            "--expired" => c.expired = number("--expired"),
            "--order-lb" => c.order_lb = number("--order-lb"),
            "--orders" => c.orders = number("--orders"),
            "--order-threads" => c.order_threads = number("--order-threads"),
            "--open" => c.open = number("--open") as usize,
            "--leave-held" => c.leave_held = number("--leave-held") as usize,
            "--pace-us" => c.pace_us = number("--pace-us"),
            "--chaos-ms" => c.chaos_ms = number("--chaos-ms"),
            "--chaos-lots" => c.chaos_lots = number("--chaos-lots") as usize,
            "--chaos-lb" => c.chaos_lb = number("--chaos-lb"),
            "--seed" => c.seed = number("--seed"),
            "--json" => c.json = true,
            "-h" | "--help" => usage("FEFO orders against pallets a chaos thread keeps adjusting"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if c.pallets == 0 || c.pallet_lb == 0 || c.order_lb == 0 || c.order_threads == 0 || c.chaos_lb == 0 {
        usage("--pallets, --pallet-lb, --order-lb, --order-threads and --chaos-lb must be at least 1");
    }
    if c.expired > c.pallets {
        usage("--expired cannot exceed --pallets");
    }
    c
}

fn lb(units: u64) -> String {
    format!("{}.{:02}", units / PER_LB, units % PER_LB)
}

fn lb_signed(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "+" };
    format!("{sign}{}", lb(units.unsigned_abs()))
}

/// An expiry as an offset from the frozen now, e.g. `+2h30m` or `-1h00m`.
fn offset(expiry: Timestamp) -> String {
    let delta = i128::from(expiry.as_millis()) - i128::from(T0);
    let minutes = delta.unsigned_abs() / 60_000;
    format!("{}{}h{:02}m", if delta < 0 { "-" } else { "+" }, minutes / 60, minutes % 60)
}

fn sum(lines: &[Line]) -> u64 {
    lines.iter().map(|line| line.quantity.get()).sum()
}

/// How a filled order ended.
#[derive(Debug)]
enum End {
    Committed { committed: u64, returned: u64 },
    Released { returned: u64 },
    StillHeld,
}

/// One filled order, as its thread saw it.
#[derive(Debug)]
struct Order {
    id: ReservationId,
    granted: u64,
    lines: Vec<Line>,
    end: End,
}

#[derive(Default)]
struct OrderThread {
    orders: Vec<Order>,
    refused: u64,
    contended: u64,
    failures: Vec<String>,
}

/// Tries of one command before its contended refusal counts as a failure.
const TRIES_MAX: u32 = 1_000;

/// Runs `command`, again while it is refused as contended (the CAS retry
/// bound ran out: nothing changed, another thread made progress), which is
/// exactly what `is_transient()` says; at most [`TRIES_MAX`] times, then
/// its last refusal is the answer.
fn retrying<T, E>(
    contended: &mut u64,
    mut command: impl FnMut() -> Result<T, E>,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut tries = 1;
    loop {
        match command() {
            Err(error) if transient(&error) && tries < TRIES_MAX => *contended += 1,
            other => return other,
        }
        tries += 1;
    }
}

fn end_order(ledger: &Ledger, order: &mut Order, commit: bool, me: &mut OrderThread) {
    let OrderThread { contended, failures, .. } = me;
    if commit {
        match retrying(contended, || ledger.commit(order.id, None), |e| matches!(e, CommitError::Contended { .. })) {
            Ok(done) => order.end = End::Committed { committed: sum(&done.committed), returned: sum(&done.returned) },
            Err(error) => failures.push(format!("commit of {} failed: {error}", order.id)),
        }
    } else {
        match retrying(contended, || ledger.release(order.id), |e| matches!(e, ReleaseError::Contended { .. })) {
            Ok(done) => order.end = End::Released { returned: sum(&done.lines) },
            Err(error) => failures.push(format!("release of {} failed: {error}", order.id)),
        }
    }
}

fn order_thread(
    ledger: &Ledger,
    clock: &ManualClock,
    expiry: &HashMap<LotId, Timestamp>,
    config: &Config,
    orders: u64,
    seed: u64,
    placed: &AtomicU64,
) -> OrderThread {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut me = OrderThread::default();
    let mut open: Vec<Order> = Vec::new();
    let request = AllocateRequest::new(SKU, config.order_lb * PER_LB);
    for _ in 0..orders {
        let now = clock.now();
        match retrying(
            &mut me.contended,
            || ledger.allocate(&request),
            |e| matches!(e, AllocateError::Contended { .. }),
        ) {
            Ok(allocation) => {
                // FEFO: lines in non-decreasing expiry, none expired.
                let expiries: Vec<Timestamp> = allocation.lines.iter().map(|line| expiry[&line.lot]).collect();
                if expiries.windows(2).any(|pair| pair[0] > pair[1]) {
                    me.failures.push(format!("{} lines not in FEFO order: {:?}", allocation.reservation, expiries));
                }
                if let Some(line) = allocation.lines.iter().find(|line| expiry[&line.lot] <= now) {
                    me.failures.push(format!("{} drew from expired {}", allocation.reservation, line.lot));
                }
                open.push(Order {
                    id: allocation.reservation,
                    granted: allocation.quantity().get(),
                    lines: allocation.lines.to_vec(),
                    end: End::StillHeld,
                });
            }
            Err(AllocateError::Insufficient { requested, available, .. }) if available < requested => me.refused += 1,
            Err(error) => me.failures.push(format!("allocate failed: {error}")),
        }
        if open.len() > config.open {
            let mut order = open.swap_remove(rng.gen_range(0..open.len()));
            end_order(ledger, &mut order, rng.gen_bool(0.6), &mut me);
            me.orders.push(order);
        }
        // Relaxed: a progress tally; the join orders the results.
        placed.fetch_add(1, Ordering::Relaxed);
        if config.pace_us > 0 {
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..=2 * config.pace_us)));
        }
    }
    open.shuffle(&mut rng);
    while open.len() > config.leave_held {
        let mut order = open.pop().expect("non-empty");
        end_order(ledger, &mut order, rng.gen_bool(0.6), &mut me);
        me.orders.push(order);
    }
    me.orders.append(&mut open);
    me
}

#[derive(Default)]
struct Chaos {
    ticks: u64,
    /// `ticks`, for the progress line.
    ticks_seen: Arc<AtomicU64>,
    applied: u64,
    grew: u64,
    shrank: u64,
    net_delta: i64,
    out_of_range: u64,
    contended: u64,
    /// (reservation, units shorted) for every hold a shrink took units from.
    shortfalls: Vec<(ReservationId, u64)>,
    /// Units moved from a shrunk pallet to other pallets for the holds on it.
    resourced: u64,
    snapshots_checked: u64,
    ghost_lots: Vec<String>,
    failures: Vec<String>,
}

fn chaos_thread(ledger: &Ledger, config: &Config, stop: &AtomicBool, ticks: Arc<AtomicU64>) -> Chaos {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0xC4A0_5EED);
    let mut me = Chaos { ticks_seen: ticks, ..Chaos::default() };
    let max = config.chaos_lb * PER_LB;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let snapshot = ledger.snapshot(SKU).expect("snapshot");
        let now = ledger.now();
        me.snapshots_checked += 1;
        let mut targets = Vec::new();
        for lot in snapshot.lots() {
            let q = lot.quantities;
            let inflow = i128::from(q.received.get()) + i128::from(q.adjusted);
            if i128::from(q.held.get()) + i128::from(q.committed.get()) > inflow && me.ghost_lots.len() < 10 {
                me.ghost_lots.push(format!("v{} {}: {q:?}", snapshot.version(), lot.id));
            }
            if targets.len() < config.chaos_lots && q.on_hand() > 0 && lot.expires_at.is_none_or(|e| e > now) {
                targets.push((lot.id, q.on_hand()));
            }
        }
        if stopping {
            return me;
        }
        me.ticks += 1;
        // Relaxed: a progress tally.
        me.ticks_seen.store(me.ticks, Ordering::Relaxed);
        for (lot, on_hand) in targets {
            let size = rng.gen_range(1..=max);
            let delta = if rng.gen_bool(0.5) { size as i64 } else { -(size.min(on_hand) as i64) };
            let reason = *[
                AdjustmentReason::Spoilage,
                AdjustmentReason::Recalibration,
                AdjustmentReason::Damage,
                AdjustmentReason::Recount,
            ]
            .choose(&mut rng)
            .expect("non-empty");
            let reason = if delta > 0 { AdjustmentReason::Recalibration } else { reason };
            match retrying(
                &mut me.contended,
                || ledger.adjust(SKU, lot, delta, reason),
                |e| matches!(e, AdjustError::Contended { .. }),
            ) {
                Ok(adjusted) => {
                    me.applied += 1;
                    me.net_delta += adjusted.delta;
                    if delta > 0 {
                        me.grew += 1;
                    } else {
                        me.shrank += 1;
                    }
                    let lost: u64 = adjusted.shortfalls.iter().map(|s| s.quantity.get()).sum();
                    if lost > delta.unsigned_abs() || (delta > 0 && lost > 0) {
                        me.failures.push(format!("adjust of {lot} by {delta} took {lost} held units"));
                    }
                    for shortfall in &adjusted.shortfalls {
                        let resourced: u64 = shortfall.resourced.iter().map(|l| l.quantity.get()).sum();
                        if resourced + shortfall.shorted.get() != shortfall.quantity.get() {
                            me.failures.push(format!("adjust of {lot}: {shortfall:?} does not add up"));
                        }
                        me.resourced += resourced;
                        me.shortfalls.push((shortfall.reservation, shortfall.shorted.get()));
                    }
                }
                // The pallet shrank under us since the snapshot: reality
                // already took those units; the request is out of range.
                Err(AdjustError::OutOfRange { .. }) => me.out_of_range += 1,
                Err(error) => me.failures.push(format!("adjust of {lot} by {delta} failed: {error}")),
            }
        }
        if config.chaos_ms > 0 {
            std::thread::sleep(Duration::from_millis(config.chaos_ms));
        } else {
            std::thread::yield_now();
        }
    }
}

fn main() {
    let config = Arc::new(parse_args());
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    let ledger = Arc::new(Ledger::with_clock(clock.clone()));
    ledger.define_sku(SKU, AllocationPolicy::Fefo).expect("define the SKU");

    // Pallets: ids 1..=N received in id order; expiries staggered every half
    // hour but assigned to ids at random, so FEFO order is not arrival order.
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut ranks: Vec<u64> = (0..config.pallets).collect();
    ranks.shuffle(&mut rng);
    let mut expiry = HashMap::new();
    let pallet_units = config.pallet_lb * PER_LB;
    for (index, &rank) in ranks.iter().enumerate() {
        let id = LotId(index as u64 + 1);
        let expires = if rank < config.expired {
            T0 - (config.expired - rank) * HALF_HOUR
        } else {
            T0 + (rank - config.expired + 1) * HALF_HOUR
        };
        let expires = Timestamp::from_millis(expires);
        let received = Timestamp::from_millis(T0 - 10 * 24 * HOUR + rng.gen_range(0..HOUR));
        ledger
            .receive(SKU, NewLot::new(id, pallet_units).expires_at(expires).received_at(received))
            .expect("receive a pallet");
        expiry.insert(id, expires);
    }
    let expiry = Arc::new(expiry);
    let received_total = config.pallets * pallet_units;

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicU64::new(0));
    let chaos = {
        let (ledger, config, stop, ticks) =
            (Arc::clone(&ledger), Arc::clone(&config), Arc::clone(&stop), Arc::clone(&ticks));
        std::thread::spawn(move || chaos_thread(&ledger, &config, &stop, ticks))
    };
    let placed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..config.order_threads)
        .map(|index| {
            let (ledger, clock, expiry, config, placed) = (
                Arc::clone(&ledger),
                Arc::clone(&clock),
                Arc::clone(&expiry),
                Arc::clone(&config),
                Arc::clone(&placed),
            );
            let orders = config.orders / config.order_threads + u64::from(index < config.orders % config.order_threads);
            std::thread::spawn(move || {
                let seed = config.seed.wrapping_add(index + 1);
                order_thread(&ledger, &clock, &expiry, &config, orders, seed, &placed)
            })
        })
        .collect();
    // Progress on stderr, at most once a second, until the orders are done
    // (each thread places a bounded number of orders).
    let mut next_line = started + PROGRESS_EVERY;
    while !threads.iter().all(|thread| thread.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if !config.json && Instant::now() >= next_line {
            next_line += PROGRESS_EVERY;
            let available = ledger.snapshot(SKU).map_or(0, |snapshot| snapshot.totals().available.get());
            eprintln!(
                "perishables: {:>5.1} s  orders placed {} of {}  chaos ticks {}  available {} lb",
                started.elapsed().as_secs_f64(),
                // Relaxed: progress tallies.
                placed.load(Ordering::Relaxed),
                config.orders,
                ticks.load(Ordering::Relaxed),
                lb(available)
            );
        }
    }
    let results: Vec<OrderThread> = threads.into_iter().map(|t| t.join().expect("order thread panicked")).collect();
    stop.store(true, Ordering::Release);
    let chaos = chaos.join().expect("chaos thread panicked");
    let elapsed = started.elapsed();

    let mut failures: Vec<String> = chaos.failures.clone();
    failures.extend(chaos.ghost_lots.iter().map(|g| format!("oversold lot seen by the chaos thread: {g}")));
    let mut orders: Vec<&Order> = Vec::new();
    let (mut refused, mut contended) = (0, chaos.contended);
    for result in &results {
        orders.extend(result.orders.iter());
        refused += result.refused;
        contended += result.contended;
        failures.extend(result.failures.iter().cloned());
    }
    orders.sort_by_key(|order| order.id);

    // Tallies of every outcome the threads saw.
    let mut shorted_by: HashMap<ReservationId, u64> = HashMap::new();
    for &(id, quantity) in &chaos.shortfalls {
        *shorted_by.entry(id).or_default() += quantity;
    }
    let shorted_total: u64 = chaos.shortfalls.iter().map(|s| s.1).sum();
    let (mut committed_orders, mut released_orders, mut held_orders) = (0u64, 0u64, 0u64);
    let (mut granted, mut committed, mut returned) = (0u64, 0u64, 0u64);
    let snapshot = ledger.snapshot(SKU).expect("snapshot");
    let live: BTreeMap<ReservationId, _> = snapshot.reservations().map(|r| (r.id, r)).collect();
    let mut still_held = HashSet::new();
    for order in &orders {
        granted += order.granted;
        let shorted = shorted_by.get(&order.id).copied().unwrap_or(0);
        let accounted = match order.end {
            End::Committed { committed: c, returned: r } => {
                committed_orders += 1;
                committed += c;
                returned += r;
                c + r + shorted
            }
            End::Released { returned: r } => {
                released_orders += 1;
                returned += r;
                r + shorted
            }
            End::StillHeld => {
                held_orders += 1;
                still_held.insert(order.id);
                match live.get(&order.id) {
                    Some(reservation) => {
                        if reservation.shorted.get() != shorted {
                            failures.push(format!(
                                "{}: snapshot says {} shorted, the chaos thread was told {shorted}",
                                order.id, reservation.shorted
                            ));
                        }
                        reservation.held().get() + shorted
                    }
                    None => {
                        failures.push(format!("{} is still held by its order but not live in the snapshot", order.id));
                        shorted
                    }
                }
            }
        };
        if accounted != order.granted {
            failures.push(format!("{}: granted {} but accounted for {accounted}", order.id, order.granted));
        }
    }
    let filled = orders.len() as u64;
    if filled != committed_orders + released_orders + held_orders {
        failures.push(format!("{filled} filled != committed + released + still held"));
    }
    let ids: HashSet<ReservationId> = orders.iter().map(|o| o.id).collect();
    if ids.len() != orders.len() {
        failures.push("two filled orders share a reservation id".to_string());
    }
    if let Some(stray) = shorted_by.keys().find(|id| !ids.contains(id)) {
        failures.push(format!("a shortfall names {stray}, which no order was granted"));
    }
    if live.keys().copied().collect::<HashSet<_>>() != still_held {
        failures.push(format!(
            "{} live reservations in the snapshot, {} orders still holding",
            live.len(),
            still_held.len()
        ));
    }
    if filled + refused != config.orders {
        failures.push(format!("{filled} filled + {refused} refused != {} orders placed", config.orders));
    }

    // Units: per lot and in total, from the snapshot and from the tallies.
    let totals = snapshot.totals();
    let mut oversold_units = 0u64;
    for lot in snapshot.lots() {
        let q = lot.quantities;
        let inflow = i128::from(q.received.get()) + i128::from(q.adjusted) + i128::from(q.returned.get())
            - i128::from(q.written_off.get());
        let out = i128::from(q.held.get()) + i128::from(q.committed.get());
        if out > inflow {
            oversold_units += (out - inflow) as u64;
            failures.push(format!("{} oversold: {q:?}", lot.id));
        }
        // Units of a lot past its expiry are counted as expired, not
        // available: received + adjusted + returned - written off =
        // available + expired + held + committed.
        if inflow != out + i128::from(q.available.get()) + i128::from(q.expired.get()) {
            failures.push(format!("{} does not conserve units: {q:?}", lot.id));
        }
    }
    let held_tally = i128::from(granted) - i128::from(committed + returned + shorted_total);
    let available_tally = i128::from(received_total) + i128::from(chaos.net_delta) - held_tally - i128::from(committed);
    let checks = [
        ("received", i128::from(totals.received.get()), i128::from(received_total)),
        ("adjusted", i128::from(totals.adjusted), i128::from(chaos.net_delta)),
        ("committed", i128::from(totals.committed.get()), i128::from(committed)),
        ("held", i128::from(totals.held.get()), held_tally),
        // The tallies cannot tell expired units from available ones.
        ("available + expired", i128::from(totals.available.get()) + i128::from(totals.expired.get()), available_tally),
    ];
    for (name, ledger_says, tallies_say) in checks {
        if ledger_says != tallies_say {
            failures.push(format!("total {name}: snapshot {ledger_says}, the threads' tallies {tallies_say}"));
        }
    }
    let audit = ledger.audit();
    if !audit.is_clean() {
        failures.push(format!("audit found {} violations: {:?}", audit.violations.len(), audit.violations));
    }

    // The first lots touched, in reservation order: FEFO drains the
    // earliest expiry first.
    let mut touched = Vec::new();
    let mut seen = HashSet::new();
    for order in &orders {
        for line in &order.lines {
            if touched.len() < 8 && seen.insert(line.lot) {
                touched.push(line.lot);
            }
        }
    }
    let first = orders.first();

    if config.json {
        let lots_json: Vec<_> = touched
            .iter()
            .map(|lot| serde_json::json!({ "lot": lot.0, "expires_at_ms": expiry[lot].as_millis() }))
            .collect();
        let summary = serde_json::json!({
            "pallets": config.pallets,
            "pallet_units": pallet_units,
            "order_units": config.order_lb * PER_LB,
            "orders_placed": config.orders,
            "orders_filled": filled,
            "orders_refused": refused,
            "orders_committed": committed_orders,
            "orders_released": released_orders,
            "orders_still_held": held_orders,
            "units": {
                "received": totals.received.get(),
                "adjusted": totals.adjusted,
                "available": totals.available.get(),
                "expired": totals.expired.get(),
                "held": totals.held.get(),
                "committed": totals.committed.get(),
            },
            "oversold_units": oversold_units,
            "first_lots_touched": lots_json,
            "chaos": {
                "ticks": chaos.ticks,
                "adjustments_applied": chaos.applied,
                "grew": chaos.grew,
                "shrank": chaos.shrank,
                "net_units": chaos.net_delta,
                "out_of_range": chaos.out_of_range,
                "holds_displaced": chaos.shortfalls.len(),
                "units_resourced": chaos.resourced,
                "reservations_shorted": shorted_by.values().filter(|&&units| units > 0).count(),
                "units_shorted": shorted_total,
                "snapshots_checked": chaos.snapshots_checked,
            },
            "contended_retries": contended,
            "audit_clean": audit.is_clean(),
            "audit": { "skus": audit.skus, "lots": audit.lots, "reservations": audit.reservations },
            "elapsed_s": elapsed.as_secs_f64(),
            "ok": failures.is_empty(),
            "failures": failures,
        });
        println!("{summary}");
    } else {
        println!(
            "perishables: {} pallets x {} lb ({} expired), orders of {} lb from {} threads, chaos every {} ms",
            config.pallets, config.pallet_lb, config.expired, config.order_lb, config.order_threads, config.chaos_ms
        );
        println!(
            "  orders     placed {}  filled {filled}  refused {refused}  -> committed {committed_orders}  \
             released {released_orders}  still held {held_orders}",
            config.orders
        );
        if let Some(order) = first {
            let lines: Vec<String> = order
                .lines
                .iter()
                .map(|line| {
                    format!("{} {} lb (expires {})", line.lot, lb(line.quantity.get()), offset(expiry[&line.lot]))
                })
                .collect();
            println!("  first order {}: {}", order.id, lines.join(" + "));
        }
        println!("  first lots touched (FEFO, expiry relative to now):");
        for lot in &touched {
            println!("    {:<9} expires {}", lot.to_string(), offset(expiry[lot]));
        }
        println!(
            "  chaos      {} ticks, {} adjustments ({} grew, {} shrank, net {} lb), {} out of range",
            chaos.ticks,
            chaos.applied,
            chaos.grew,
            chaos.shrank,
            lb_signed(chaos.net_delta),
            chaos.out_of_range
        );
        println!(
            "  holds displaced by shrinks {}: {} lb re-sourced from other pallets, {} reservations shorted {} lb",
            chaos.shortfalls.len(),
            lb(chaos.resourced),
            shorted_by.values().filter(|&&units| units > 0).count(),
            lb(shorted_total)
        );
        println!(
            "  units (lb) received {}  adjusted {}  available {}  expired {}  held {}  committed {}",
            lb(totals.received.get()),
            lb_signed(totals.adjusted),
            lb(totals.available.get()),
            lb(totals.expired.get()),
            lb(totals.held.get()),
            lb(totals.committed.get())
        );
        println!(
            "  oversold   {oversold_units} units (final snapshot, every lot; {} snapshots checked during the run)",
            chaos.snapshots_checked
        );
        println!(
            "  audit      {} ({} lots, {} live reservations)",
            if audit.is_clean() { "clean" } else { "VIOLATIONS" },
            audit.lots,
            audit.reservations
        );
        if contended > 0 {
            println!("  contended  {contended} retries after the CAS retry bound");
        }
        println!("  elapsed    {:.3} s", elapsed.as_secs_f64());
    }
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("INVARIANT FAILED: {failure}");
        }
        exit(1);
    }
}
