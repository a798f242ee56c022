//! Perishables (FEFO) stress: the DESIGN.md workload, bounded for a debug
//! build.
//!
//! 2,000 pallets of 1,000 lb (100,000 units of hundredths of a pound) with
//! staggered expiries, a few already expired, received in an order unrelated
//! to their expiry. Four order threads allocate orders of 1,500 lb (FEFO,
//! fill-or-kill, so every order spans pallets), keep dozens open, and
//! commit or release them at random; some stay open to the end. A chaos
//! thread meanwhile adjusts the oldest pallets (front of FEFO order, from a
//! snapshot) by up to ±30 lb, continuously, for a bounded number of rounds,
//! shrinking pallets that orders hold and collecting what the engine
//! reports for each affected order (units re-sourced from other pallets,
//! units shorted).
//!
//! Proves: zero oversold units (per lot, held + committed never exceeds
//! received + adjusted, in snapshots taken mid-run and at the end); a clean
//! audit; every order accounted for (each allocation ends exactly once in
//! committed or released, or is still live in the snapshot, and its granted
//! units are traced through its outcome plus the units reported shorted
//! against it; every re-sourced line is on another, unexpired pallet); units conserved, from the snapshot and independently from
//! the threads' own tallies; and every allocation's lines in FEFO order,
//! none from an expired pallet.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use stockroom::{
    AdjustError, AdjustmentReason, AllocateError, AllocateRequest, AllocationPolicy, Clock, Ledger, Line, LotId,
    ManualClock, NewLot, ReservationId, SkuId, Snapshot, Timestamp,
};

const SKU: SkuId = SkuId(7);
const PALLETS: u64 = 2_000;
const EXPIRED: u64 = 10;
const PALLET: u64 = 100_000; // 1,000 lb in hundredths of a pound
const ORDER: u64 = 150_000; // 1,500 lb
const SWING: u64 = 3_000; // ±30 lb
const ORDER_THREADS: u64 = 4;
const ORDERS_PER_THREAD: u64 = 1_500;
const OPEN_PER_THREAD: usize = 40;
const LEFT_OPEN_PER_THREAD: usize = 5;
const CHAOS_LOTS: usize = 4;
const CHAOS_MIN_ROUNDS: u64 = 1_000;
const CHAOS_MAX_ROUNDS: u64 = 50_000;
const T0: u64 = 1_700_000_000_000;
const HALF_HOUR: u64 = 1_800_000;

fn sum(lines: &[Line]) -> u64 {
    lines.iter().map(|line| line.quantity.get()).sum()
}

/// Per lot: held + committed never exceeds received + adjusted, and the
/// lot conserves its units (free units of an expired lot count as expired,
/// not available).
fn assert_no_oversold_lot(snapshot: &Snapshot) {
    for lot in snapshot.lots() {
        let q = lot.quantities;
        let inflow = i128::from(q.received.get()) + i128::from(q.adjusted);
        let out = i128::from(q.held.get()) + i128::from(q.committed.get());
        assert!(out <= inflow, "{} oversold at version {}: {q:?}", lot.id, snapshot.version());
        let free = i128::from(q.available.get()) + i128::from(q.expired.get());
        assert_eq!(inflow, out + free, "{} does not conserve units: {q:?}", lot.id);
    }
}

#[derive(Debug)]
enum End {
    Committed { committed: u64, returned: u64 },
    Released { returned: u64 },
    Open,
}

#[derive(Debug)]
struct Order {
    id: ReservationId,
    granted: u64,
    end: End,
}

fn end(ledger: &Ledger, order: &mut Order, commit: bool) {
    // A filled order must still be live until its own thread ends it.
    let lost = |error: &dyn std::fmt::Display| -> ! { panic!("filled order {} lost: {error}", order.id) };
    order.end = if commit {
        let done = ledger.commit(order.id, None).unwrap_or_else(|e| lost(&e));
        End::Committed { committed: sum(&done.committed), returned: sum(&done.returned) }
    } else {
        End::Released { returned: sum(&ledger.release(order.id).unwrap_or_else(|e| lost(&e)).lines) }
    };
}

#[derive(Default)]
struct Chaos {
    rounds: u64,
    applied: u64,
    net_delta: i64,
    out_of_range: u64,
    /// Units shorted (not re-sourced), per reservation.
    shortfalls: HashMap<ReservationId, u64>,
    shortfall_units: u64,
    /// Holds that lost units to a shrink, and units moved to other lots.
    displaced: u64,
    resourced_units: u64,
}

#[test]
fn fefo_orders_under_chaos_never_oversell_and_account_for_every_unit() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    let ledger = Arc::new(Ledger::with_clock(clock.clone()));
    ledger.define_sku(SKU, AllocationPolicy::Fefo).unwrap();
    let mut rng = StdRng::seed_from_u64(2_000);
    let mut ranks: Vec<u64> = (0..PALLETS).collect();
    ranks.shuffle(&mut rng);
    let mut expiry = HashMap::new();
    for (index, &rank) in ranks.iter().enumerate() {
        let id = LotId(index as u64 + 1);
        let expires =
            if rank < EXPIRED { T0 - (EXPIRED - rank) * HALF_HOUR } else { T0 + (rank - EXPIRED + 1) * HALF_HOUR };
        let expires = Timestamp::from_millis(expires);
        ledger.receive(SKU, NewLot::new(id, PALLET).expires_at(expires)).unwrap();
        expiry.insert(id, expires);
    }
    let expiry = Arc::new(expiry);
    let received_total = PALLETS * PALLET;

    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(ORDER_THREADS as usize + 1));
    let chaos = {
        let (ledger, done, start, expiry) =
            (Arc::clone(&ledger), Arc::clone(&done), Arc::clone(&start), Arc::clone(&expiry));
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(30);
            let mut chaos = Chaos::default();
            start.wait();
            while chaos.rounds < CHAOS_MAX_ROUNDS && (chaos.rounds < CHAOS_MIN_ROUNDS || !done.load(Ordering::Acquire))
            {
                chaos.rounds += 1;
                let snapshot = ledger.snapshot(SKU).unwrap();
                if chaos.rounds % 50 == 0 {
                    assert_no_oversold_lot(&snapshot);
                }
                let now = ledger.now();
                let targets: Vec<(LotId, u64)> = snapshot
                    .lots()
                    .filter(|lot| lot.quantities.on_hand() > 0 && lot.expires_at.is_none_or(|e| e > now))
                    .take(CHAOS_LOTS)
                    .map(|lot| (lot.id, lot.quantities.on_hand()))
                    .collect();
                for (lot, on_hand) in targets {
                    let size = rng.gen_range(1..=SWING);
                    let delta = if rng.gen_bool(0.5) { size as i64 } else { -(size.min(on_hand) as i64) };
                    let reason = if delta > 0 { AdjustmentReason::Recalibration } else { AdjustmentReason::Spoilage };
                    match ledger.adjust(SKU, lot, delta, reason) {
                        Ok(adjusted) => {
                            chaos.applied += 1;
                            chaos.net_delta += adjusted.delta;
                            let lost: u64 = adjusted.shortfalls.iter().map(|s| s.quantity.get()).sum();
                            assert!(lost <= delta.unsigned_abs() && (delta < 0 || lost == 0), "{adjusted:?}");
                            let q = adjusted.quantities;
                            assert!(
                                i128::from(q.held.get()) + i128::from(q.committed.get())
                                    <= i128::from(q.received.get()) + i128::from(q.adjusted),
                                "{lot} oversold after adjust: {q:?}"
                            );
                            for shortfall in &adjusted.shortfalls {
                                assert!(!shortfall.quantity.is_zero());
                                let resourced: u64 = shortfall.resourced.iter().map(|l| l.quantity.get()).sum();
                                assert_eq!(
                                    resourced + shortfall.shorted.get(),
                                    shortfall.quantity.get(),
                                    "{shortfall:?}"
                                );
                                assert!(shortfall.resourced.iter().all(|l| l.lot != lot), "re-sourced from {lot}");
                                assert!(
                                    shortfall.resourced.iter().all(|l| expiry[&l.lot] > now),
                                    "re-sourced from an expired pallet: {shortfall:?}"
                                );
                                *chaos.shortfalls.entry(shortfall.reservation).or_default() += shortfall.shorted.get();
                                chaos.shortfall_units += shortfall.shorted.get();
                                chaos.resourced_units += resourced;
                                chaos.displaced += 1;
                            }
                        }
                        // The pallet shrank since the snapshot (an order
                        // committed it): a too-large shrink is refused.
                        Err(AdjustError::OutOfRange { .. }) => chaos.out_of_range += 1,
                        Err(error) => panic!("adjust of {lot} by {delta}: {error}"),
                    }
                }
            }
            chaos
        })
    };

    let threads: Vec<_> = (0..ORDER_THREADS)
        .map(|index| {
            let (ledger, clock, expiry, start) =
                (Arc::clone(&ledger), Arc::clone(&clock), Arc::clone(&expiry), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(index);
                let (mut orders, mut open, mut refused) = (Vec::new(), Vec::new(), 0u64);
                let request = AllocateRequest::new(SKU, ORDER);
                start.wait();
                for _ in 0..ORDERS_PER_THREAD {
                    let now = clock.now();
                    match ledger.allocate(&request) {
                        Ok(allocation) => {
                            assert_eq!(allocation.quantity().get(), ORDER, "fill-or-kill");
                            assert_eq!(
                                allocation.reservation.seq, allocation.version,
                                "a reservation's seq is the version its allocation produced"
                            );
                            assert!(allocation.lines.len() >= 2, "1,500 lb spans pallets");
                            let expiries: Vec<Timestamp> = allocation.lines.iter().map(|l| expiry[&l.lot]).collect();
                            assert!(
                                expiries.windows(2).all(|pair| pair[0] <= pair[1]),
                                "{}: lines not in FEFO order: {:?}",
                                allocation.reservation,
                                allocation.lines
                            );
                            assert!(
                                expiries.iter().all(|&e| e > now),
                                "{}: drew expired stock",
                                allocation.reservation
                            );
                            open.push(Order { id: allocation.reservation, granted: ORDER, end: End::Open });
                        }
                        Err(AllocateError::Insufficient { available, .. }) => {
                            assert!(available.get() < ORDER);
                            refused += 1;
                        }
                        Err(error) => panic!("allocate: {error}"),
                    }
                    if open.len() > OPEN_PER_THREAD {
                        let mut order = open.swap_remove(rng.gen_range(0..open.len()));
                        end(&ledger, &mut order, rng.gen_bool(0.5));
                        orders.push(order);
                    }
                }
                while open.len() > LEFT_OPEN_PER_THREAD {
                    let mut order = open.pop().unwrap();
                    end(&ledger, &mut order, rng.gen_bool(0.5));
                    orders.push(order);
                }
                orders.append(&mut open);
                (orders, refused)
            })
        })
        .collect();
    let mut orders = Vec::new();
    let mut refused = 0;
    for thread in threads {
        let (mine, my_refused) = thread.join().unwrap();
        orders.extend(mine);
        refused += my_refused;
    }
    done.store(true, Ordering::Release);
    let chaos = chaos.join().unwrap();

    // Every order accounted for.
    let snapshot = ledger.snapshot(SKU).unwrap();
    assert_no_oversold_lot(&snapshot);
    assert_eq!(orders.len() as u64 + refused, ORDER_THREADS * ORDERS_PER_THREAD, "every order has one outcome");
    let ids: HashSet<ReservationId> = orders.iter().map(|o| o.id).collect();
    assert_eq!(ids.len(), orders.len(), "no reservation issued twice");
    assert!(chaos.shortfalls.keys().all(|id| ids.contains(id)), "a shortfall names an unknown reservation");
    let (mut granted, mut committed, mut returned) = (0u64, 0u64, 0u64);
    let (mut n_committed, mut n_released, mut n_open) = (0u64, 0u64, 0u64);
    let mut still_open = HashSet::new();
    for order in &orders {
        granted += order.granted;
        let shorted = chaos.shortfalls.get(&order.id).copied().unwrap_or(0);
        let accounted = match order.end {
            End::Committed { committed: c, returned: r } => {
                n_committed += 1;
                committed += c;
                returned += r;
                assert!(snapshot.reservation(order.id).is_none(), "{} committed yet live", order.id);
                c + r
            }
            End::Released { returned: r } => {
                n_released += 1;
                returned += r;
                assert!(snapshot.reservation(order.id).is_none(), "{} released yet live", order.id);
                r
            }
            End::Open => {
                n_open += 1;
                still_open.insert(order.id);
                let live = snapshot.reservation(order.id).unwrap_or_else(|| panic!("{} open but not live", order.id));
                assert_eq!(live.shorted.get(), shorted, "{}: shortfalls reported vs recorded", order.id);
                assert_eq!(live.granted.get(), order.granted);
                live.held().get()
            }
        };
        assert_eq!(accounted + shorted, order.granted, "{}: granted units not accounted for", order.id);
    }
    assert_eq!(orders.len() as u64, n_committed + n_released + n_open);
    let live: HashSet<ReservationId> = snapshot.reservations().map(|r| r.id).collect();
    assert_eq!(live, still_open, "the live reservations are exactly the orders still open");

    // Units conserved: from the snapshot, and from the threads' tallies.
    let totals = snapshot.totals();
    assert_eq!(
        i128::from(totals.received.get()) + i128::from(totals.adjusted),
        i128::from(totals.available.get() + totals.expired.get() + totals.held.get() + totals.committed.get())
    );
    let held_tally = granted - committed - returned - chaos.shortfall_units;
    assert_eq!(totals.received.get(), received_total);
    assert_eq!(totals.adjusted, chaos.net_delta, "adjustments: snapshot vs chaos tally");
    assert_eq!(totals.committed.get(), committed, "committed: snapshot vs order tallies");
    assert_eq!(totals.held.get(), held_tally, "held: snapshot vs order and chaos tallies");
    assert_eq!(
        i128::from(received_total) + i128::from(chaos.net_delta),
        i128::from(totals.available.get() + totals.expired.get()) + i128::from(held_tally) + i128::from(committed),
        "received + adjusted == available + expired + held + committed"
    );

    let audit = ledger.audit();
    assert!(audit.is_clean(), "{:?}", audit.violations);
    assert_eq!(audit.lots as u64, PALLETS);
    assert!(chaos.applied > 0 && chaos.rounds >= CHAOS_MIN_ROUNDS);
    assert!(chaos.displaced > 0, "the chaos thread never shrank a held pallet: nothing was tested");
    eprintln!(
        "perishables stress: {} orders filled ({n_committed} committed, {n_released} released, {n_open} open), \
         {refused} refused; chaos {} rounds, {} adjustments (net {}), {} out of range, {} holds displaced: {} units \
         re-sourced, {} shorted",
        orders.len(),
        chaos.rounds,
        chaos.applied,
        chaos.net_delta,
        chaos.out_of_range,
        chaos.displaced,
        chaos.resourced_units,
        chaos.shortfall_units
    );
}
