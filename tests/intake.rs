//! The intake: bounded ingestion over the ledger.
//!
//! Proves, through the public API only, that the intake's memory is
//! bounded by its capacities however hard it is flooded; that back-pressure
//! really blocks a producer (it returns only after a worker made room) and
//! that a shutdown wakes it with its command; that shed, timed-out and
//! shut-out commands come back intact; that the in-flight limit bites on
//! its own; that every accepted order gets exactly one outcome across a
//! shutdown racing the producers, and that a shutdown with a deadline
//! accounts for every undecided order; that a panicking order is contained
//! and the pool keeps its size (all workers still apply orders at once);
//! and that tickets can be polled and waited on.
//!
//! Correctness never depends on timing: executors are held shut by gates
//! the test opens, and every wait is bounded by `GUARD`, a deadlock guard
//! far longer than any test needs. The tests run one at a time (`serial`),
//! because the flood test measures the process's live heap.

use crossbeam::channel::{Receiver, Sender, bounded};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};
use stockroom::intake::{Apply, Intake, IntakeError, IntakeStats, OrderId, SubmitError, Ticket, WaitError};
use stockroom::{
    AllocateError, AllocateRequest, AllocationPolicy, Command, CommandError, FillMode, Ledger, LotAttributes, LotId,
    NewLot, Outcome, SkuId, Timestamp,
};

/// The deadlock guard: no wait in these tests comes near it.
const GUARD: Duration = Duration::from_secs(20);
const SKU: SkuId = SkuId(1);
/// Orders for this SKU make `Panicky` panic.
const PANIC_SKU: SkuId = SkuId(666);
/// Orders for this SKU make `Panicky` wait for every worker to hold one.
const RENDEZVOUS_SKU: SkuId = SkuId(777);
const DELIBERATE: &str = "intake test: a deliberate panic";

// ---------------------------------------------------------------------------
// A counting allocator: the live heap and its peak, for the flood test.

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn count_alloc(size: usize) {
    // Relaxed: a statistic read by the (single) measuring test.
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    // Relaxed: as above.
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: defers to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Relaxed: a statistic.
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` (or `realloc`) above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: our caller's contract: `ptr` is ours, with `layout`.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            // Relaxed: a statistic.
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            count_alloc(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------
// Helpers.

/// One test at a time (see the file's docs).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    quiet_deliberate_panics();
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps the deliberate panics of `Panicky` out of the test output; every
/// other panic is reported as usual.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message =
                payload.downcast_ref::<&str>().copied().or(payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|message| message.starts_with(DELIBERATE)) {
                report(info);
            }
        }));
    });
}

fn stocked(units: u64) -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::new());
    ledger.define_sku(SKU, AllocationPolicy::Fifo).unwrap();
    ledger.receive(SKU, NewLot::new(LotId(1), units)).unwrap();
    ledger
}

fn take(units: u64) -> Command {
    Command::Take(AllocateRequest::new(SKU, units))
}

/// Commands with every field set, to check they come back exactly.
fn elaborate_commands() -> Vec<Command> {
    vec![
        Command::Take(
            AllocateRequest::new(SKU, 7)
                .fill(FillMode::Partial)
                .policy(AllocationPolicy::Fefo)
                .min_shelf_life(Duration::from_secs(86_400)),
        ),
        Command::Receive {
            sku: SKU,
            lot: NewLot::new(LotId(99), 1_234)
                .expires_at(Timestamp::from_millis(1_700_000_000_000))
                .attributes(LotAttributes::default().supplier("acme")),
        },
        Command::Allocate(AllocateRequest::new(SkuId(5), 3)),
    ]
}

/// Polls `condition` until it holds; panics after `GUARD`.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !condition() {
        assert!(Instant::now() < deadline, "deadlock guard: {what} did not happen within {GUARD:?}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn wait(ticket: &Ticket) -> &Result<Outcome, IntakeError> {
    ticket.wait_timeout(GUARD).unwrap_or_else(|_| panic!("deadlock guard: {} was not decided", ticket.id()))
}

/// Applies nothing until the test opens the gate (drops its sender).
struct Gated {
    ledger: Arc<Ledger>,
    gate: Receiver<()>,
    entered: AtomicUsize,
}

impl Gated {
    fn new(ledger: Arc<Ledger>) -> (Arc<Gated>, Sender<()>) {
        let (open, gate) = bounded(0);
        (Arc::new(Gated { ledger, gate, entered: AtomicUsize::new(0) }), open)
    }

    fn entered(&self) -> usize {
        // SeqCst: read by the test to learn that a worker holds an order.
        self.entered.load(Ordering::SeqCst)
    }
}

impl Apply for Gated {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        // SeqCst: see `entered`.
        self.entered.fetch_add(1, Ordering::SeqCst);
        // Returns at once when the gate's sender is dropped; the timeout is
        // only a deadlock guard.
        let _ = self.gate.recv_timeout(GUARD);
        self.ledger.execute(command)
    }
}

/// Panics on `PANIC_SKU`; meets every other worker on `RENDEZVOUS_SKU`.
struct Panicky {
    ledger: Arc<Ledger>,
    workers: usize,
    arrived: AtomicUsize,
    all_met: AtomicBool,
}

impl Apply for Panicky {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        match command.sku() {
            Some(PANIC_SKU) => panic!("{DELIBERATE} while applying {command:?}"),
            Some(RENDEZVOUS_SKU) => {
                // SeqCst: a rendezvous counter, read by the other workers' loops.
                self.arrived.fetch_add(1, Ordering::SeqCst);
                let deadline = Instant::now() + GUARD;
                // SeqCst: see above.
                while self.arrived.load(Ordering::SeqCst) < self.workers && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
                // SeqCst: see above.
                if self.arrived.load(Ordering::SeqCst) >= self.workers {
                    // SeqCst: read by the test after every ticket is decided.
                    self.all_met.store(true, Ordering::SeqCst);
                }
                self.ledger.execute(&take(1))
            }
            _ => self.ledger.execute(command),
        }
    }
}

fn assert_quiescent(stats: &IntakeStats) {
    assert_eq!(stats.accepted, stats.decided, "{stats:?}");
    assert_eq!((stats.in_flight, stats.queue_depth), (0, 0), "{stats:?}");
    assert_eq!(stats.time_to_outcome.count, stats.decided, "{stats:?}");
    let p = stats.time_to_outcome;
    assert!(p.p50 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max, "{p:?}");
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn shed_and_timed_out_commands_come_back_intact() {
    let _serial = serial();
    let (gated, open) = Gated::new(stocked(100));
    // The in-flight limit is far away: the queue is what fills.
    let intake = Intake::builder().capacity(2).max_in_flight(100).workers(1).build(Arc::clone(&gated)).unwrap();

    let held = intake.submit(take(1)).unwrap();
    eventually("the worker holds the first order", || gated.entered() == 1);
    let queued = [intake.try_submit(take(1)).unwrap(), intake.try_submit(take(1)).unwrap()];
    assert_eq!(intake.stats().queue_depth, 2);

    for command in elaborate_commands() {
        match intake.try_submit(command.clone()) {
            Err(SubmitError::Full(back)) => assert_eq!(*back, command),
            other => panic!("expected Full, got {other:?}"),
        }
        let refused = intake.submit_timeout(command.clone(), Duration::from_millis(5)).unwrap_err();
        assert!(refused.is_timeout() && refused.is_transient(), "{refused:?}");
        assert_eq!(refused.command(), &command);
        assert_eq!(refused.into_inner(), command);
    }
    let stats = intake.stats();
    assert_eq!((stats.accepted, stats.shed, stats.timed_out), (3, 3, 3), "{stats:?}");
    assert_eq!((stats.queue_depth, stats.in_flight), (2, 3), "{stats:?}");

    drop(open);
    for ticket in [&held].into_iter().chain(&queued) {
        assert!(matches!(wait(ticket), Ok(Outcome::Sold(_))), "{ticket:?}");
    }
    assert!(intake.shutdown().is_complete());
    for command in elaborate_commands() {
        let refused = intake.try_submit(command.clone()).unwrap_err();
        assert!(refused.is_shut_down() && !refused.is_transient(), "{refused:?}");
        assert_eq!(refused.into_inner(), command);
        assert_eq!(intake.submit(command.clone()).unwrap_err(), SubmitError::ShutDown(Box::new(command)));
    }
    assert_quiescent(&intake.stats());
}

#[test]
fn back_pressure_blocks_the_producer_until_a_worker_makes_room() {
    let _serial = serial();
    let ledger = stocked(100);
    let (gated, open) = Gated::new(Arc::clone(&ledger));
    // The in-flight limit is far away: the queue is what fills.
    let intake =
        Arc::new(Intake::builder().capacity(2).max_in_flight(100).workers(1).build(Arc::clone(&gated)).unwrap());
    let mut tickets = vec![intake.submit(take(1)).unwrap()];
    eventually("the worker holds the first order", || gated.entered() == 1);
    tickets.extend([intake.submit(take(1)).unwrap(), intake.submit(take(1)).unwrap()]);

    let returned = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (intake, returned) = (Arc::clone(&intake), Arc::clone(&returned));
        thread::spawn(move || {
            let mut mine = Vec::new();
            let mut first_return = None;
            for _ in 0..5 {
                mine.push(intake.submit(take(1)).unwrap());
                first_return.get_or_insert_with(Instant::now);
                // SeqCst: read by the test thread.
                returned.fetch_add(1, Ordering::SeqCst);
            }
            (mine, first_return.unwrap())
        })
    };
    // However long we hold the gate, the producer stays blocked and the
    // queue stays at its capacity.
    thread::sleep(Duration::from_millis(100));
    // SeqCst: see the producer.
    assert_eq!(returned.load(Ordering::SeqCst), 0, "the producer got past a full queue");
    // The producer holds an in-flight permit while it waits, but its order
    // is not accepted.
    let stats = intake.stats();
    assert_eq!((stats.queue_depth, stats.in_flight, stats.accepted), (2, 4, 3), "{stats:?}");

    let opened_at = Instant::now();
    drop(open);
    let (mine, first_return) = producer.join().unwrap();
    assert!(first_return >= opened_at, "the producer returned before any room was made");
    tickets.extend(mine);
    assert!(intake.shutdown().is_complete());
    for ticket in &tickets {
        assert!(matches!(ticket.try_outcome(), Some(Ok(Outcome::Sold(_)))), "{ticket:?}");
    }
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 8);
    assert_quiescent(&intake.stats());
}

#[test]
fn the_in_flight_limit_sheds_and_blocks_on_its_own() {
    let _serial = serial();
    let (gated, open) = Gated::new(stocked(100));
    let intake = Arc::new(Intake::builder().capacity(8).max_in_flight(2).workers(1).build(Arc::clone(&gated)).unwrap());
    let mut tickets = vec![intake.submit(take(1)).unwrap()];
    eventually("the worker holds the first order", || gated.entered() == 1);
    tickets.push(intake.submit(take(1)).unwrap());
    let stats = intake.stats();
    assert_eq!((stats.queue_depth, stats.in_flight), (1, 2), "the queue has room: {stats:?}");

    assert_eq!(intake.try_submit(take(2)).unwrap_err(), SubmitError::Full(Box::new(take(2))));
    assert_eq!(
        intake.submit_timeout(take(3), Duration::from_millis(5)).unwrap_err(),
        SubmitError::Timeout(Box::new(take(3)))
    );
    let blocked = {
        let intake = Arc::clone(&intake);
        thread::spawn(move || intake.submit(take(1)))
    };
    thread::sleep(Duration::from_millis(50));
    assert!(!blocked.is_finished(), "a submitter got past the in-flight limit");
    assert_eq!(intake.stats().in_flight, 2);

    drop(open);
    tickets.push(blocked.join().unwrap().unwrap());
    for ticket in &tickets {
        assert!(wait(ticket).is_ok(), "{ticket:?}");
    }
    assert!(intake.shutdown().is_complete());
    let stats = intake.stats();
    assert_eq!((stats.accepted, stats.shed, stats.timed_out), (3, 1, 1), "{stats:?}");
    assert_quiescent(&stats);
}

#[test]
fn shutdown_wakes_a_blocked_submitter_with_its_command() {
    let _serial = serial();
    let (gated, open) = Gated::new(stocked(100));
    let intake = Arc::new(Intake::builder().capacity(1).workers(1).build(Arc::clone(&gated)).unwrap());
    let held = intake.submit(take(1)).unwrap();
    eventually("the worker holds the first order", || gated.entered() == 1);
    let queued = intake.submit(take(1)).unwrap();

    let command = elaborate_commands().remove(1);
    let blocked = {
        let (intake, command) = (Arc::clone(&intake), command.clone());
        thread::spawn(move || intake.submit(command))
    };
    thread::sleep(Duration::from_millis(20)); // let it block (if it has not, it is refused all the same)
    let shutdown = {
        let intake = Arc::clone(&intake);
        thread::spawn(move || intake.shutdown())
    };
    // The gate is still shut: the submitter cannot have found room.
    assert_eq!(blocked.join().unwrap().unwrap_err(), SubmitError::ShutDown(Box::new(command)));
    assert!(intake.is_shut_down());
    assert_eq!(intake.try_submit(take(1)).unwrap_err(), SubmitError::ShutDown(Box::new(take(1))));

    drop(open);
    assert!(shutdown.join().unwrap().is_complete());
    assert!(matches!(held.try_outcome(), Some(Ok(Outcome::Sold(_)))));
    assert!(matches!(queued.try_outcome(), Some(Ok(Outcome::Sold(_)))));
    let stats = intake.stats();
    assert_eq!((stats.accepted, stats.workers), (2, 0), "{stats:?}");
    assert_quiescent(&stats);
}

#[test]
fn every_accepted_order_gets_exactly_one_outcome_across_shutdown() {
    let _serial = serial();
    const UNITS: u64 = 500;
    const PRODUCERS: usize = 4;
    const ATTEMPTS: usize = 2_000;
    let ledger = stocked(UNITS);
    let intake = Arc::new(Intake::builder().capacity(16).workers(2).build(Arc::clone(&ledger)).unwrap());
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let intake = Arc::clone(&intake);
            thread::spawn(move || {
                let mut tickets = Vec::new();
                let (mut shed, mut timed_out, mut shut_out) = (0u64, 0u64, 0u64);
                for attempt in 0..ATTEMPTS {
                    let command = take(1 + (attempt % 3) as u64);
                    let submitted = match (producer + attempt) % 3 {
                        0 => intake.submit(command.clone()),
                        1 => intake.submit_timeout(command.clone(), Duration::from_micros(200)),
                        _ => intake.try_submit(command.clone()),
                    };
                    match submitted {
                        Ok(ticket) => tickets.push(ticket),
                        Err(SubmitError::Full(back)) => (shed += 1, assert_eq!(*back, command)).0,
                        Err(SubmitError::Timeout(back)) => (timed_out += 1, assert_eq!(*back, command)).0,
                        Err(SubmitError::ShutDown(back)) => (shut_out += 1, assert_eq!(*back, command)).0,
                        Err(other) => panic!("no other refusal is possible here: {other}"),
                    }
                }
                (tickets, shed, timed_out, shut_out)
            })
        })
        .collect();
    eventually("a good part of the orders is accepted", || intake.stats().accepted >= 1_000);
    let report = intake.shutdown();
    assert!(report.is_complete(), "{report:?}");

    let (mut tickets, mut shed, mut timed_out, mut shut_out) = (Vec::new(), 0, 0, 0);
    for producer in producers {
        let (mine, s, t, o) = producer.join().unwrap();
        tickets.extend(mine);
        (shed, timed_out, shut_out) = (shed + s, timed_out + t, shut_out + o);
    }
    assert!(shut_out > 0, "the shutdown raced the producers");
    assert_eq!(tickets.len() as u64 + shed + timed_out + shut_out, (PRODUCERS * ATTEMPTS) as u64);

    // Shutdown returned: every accepted order already has its outcome.
    let (mut sold, mut sold_out) = (0u64, 0u64);
    let mut ids = HashSet::new();
    for ticket in &tickets {
        assert!(ids.insert(ticket.id()), "{} issued twice", ticket.id());
        match ticket.try_outcome() {
            Some(Ok(Outcome::Sold(sale))) => sold += sale.quantity().get(),
            Some(Err(IntakeError::Refused(CommandError::Allocate(AllocateError::Insufficient { .. })))) => {
                sold_out += 1
            }
            other => panic!("{}: {other:?}", ticket.id()),
        }
    }
    assert!(sold_out > 0, "more orders than units were accepted");
    assert!(sold <= UNITS, "oversold: {sold} of {UNITS}");
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), sold);
    assert!(ledger.audit().is_clean());

    let stats = intake.stats();
    assert_eq!(stats.accepted, tickets.len() as u64, "{stats:?}");
    assert_eq!((stats.shed, stats.timed_out, stats.workers), (shed, timed_out, 0), "{stats:?}");
    assert_quiescent(&stats);
}

#[test]
fn a_shutdown_deadline_reports_every_undecided_order() {
    let _serial = serial();
    let (gated, open) = Gated::new(stocked(100));
    let intake = Intake::builder().capacity(8).workers(2).build(Arc::clone(&gated)).unwrap();
    let commands: Vec<Command> = (1..=6).map(take).collect();
    let tickets: Vec<Ticket> = commands.iter().map(|command| intake.submit(command.clone()).unwrap()).collect();
    eventually("both workers hold an order", || gated.entered() == 2);

    let report = intake.shutdown_timeout(Duration::from_millis(50));
    assert!(!report.is_complete());
    assert_eq!(report.workers_detached, 2);
    let mut undecided = report.undecided.clone();
    undecided.sort();
    assert_eq!(undecided, [tickets[0].id(), tickets[1].id()], "the queue is FIFO: workers hold the first two");
    let unapplied: Vec<(OrderId, &Command)> = report.unapplied.iter().map(|order| (order.id, &order.command)).collect();
    let expected: Vec<(OrderId, &Command)> = tickets[2..].iter().map(Ticket::id).zip(&commands[2..]).collect();
    assert_eq!(unapplied, expected);
    for ticket in &tickets[2..] {
        assert_eq!(ticket.try_outcome(), Some(&Err(IntakeError::Unapplied)));
    }
    assert!(tickets[..2].iter().all(|ticket| !ticket.is_decided()));
    assert_eq!(intake.submit(take(1)).unwrap_err(), SubmitError::ShutDown(Box::new(take(1))));
    let stats = intake.stats();
    assert_eq!((stats.accepted, stats.decided, stats.unapplied, stats.in_flight), (6, 4, 4, 2), "{stats:?}");

    // The detached workers finish what they hold, and then exit.
    drop(open);
    for ticket in &tickets[..2] {
        assert!(matches!(wait(ticket), Ok(Outcome::Sold(_))), "{ticket:?}");
    }
    eventually("the detached workers exit", || intake.stats().workers == 0);
    assert!(intake.shutdown().is_complete(), "a second shutdown joins the late workers");
    assert_quiescent(&intake.stats());
}

#[test]
fn a_panicking_order_is_contained_and_the_pool_keeps_its_size() {
    let _serial = serial();
    const WORKERS: usize = 3;
    let ledger = stocked(1_000);
    let panicky = Arc::new(Panicky {
        ledger: Arc::clone(&ledger),
        workers: WORKERS,
        arrived: AtomicUsize::new(0),
        all_met: AtomicBool::new(false),
    });
    let intake = Intake::builder().capacity(64).workers(WORKERS).build(Arc::clone(&panicky)).unwrap();
    let tickets: Vec<(bool, Ticket)> = (0..40)
        .map(|n| {
            let boom = n % 2 == 0;
            let command = if boom { Command::Take(AllocateRequest::new(PANIC_SKU, 1)) } else { take(1) };
            (boom, intake.submit(command).unwrap())
        })
        .collect();
    for (boom, ticket) in &tickets {
        match (boom, wait(ticket)) {
            (true, Err(IntakeError::Panicked(panicked))) => {
                assert!(panicked.message().starts_with(DELIBERATE), "{panicked}")
            }
            (false, Ok(Outcome::Sold(_))) => {}
            (_, other) => panic!("{}: {other:?}", ticket.id()),
        }
    }
    let stats = intake.stats();
    assert_eq!((stats.panicked, stats.workers), (20, WORKERS as u64 as usize), "{stats:?}");

    // All the workers are alive *and* working: they hold an order each at once.
    let met: Vec<Ticket> =
        (0..WORKERS).map(|_| intake.submit(Command::Take(AllocateRequest::new(RENDEZVOUS_SKU, 1))).unwrap()).collect();
    for ticket in &met {
        assert!(wait(ticket).is_ok(), "{ticket:?}");
    }
    // SeqCst: see `Panicky`.
    assert!(panicky.all_met.load(Ordering::SeqCst), "fewer than {WORKERS} workers applied orders at once");

    assert!(intake.shutdown().is_complete());
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 20 + WORKERS as u64);
    assert!(ledger.audit().is_clean());
    assert_quiescent(&intake.stats());
}

#[test]
fn memory_stays_bounded_by_the_capacities_under_a_flood() {
    let _serial = serial();
    const CAPACITY: usize = 64;
    const MAX_IN_FLIGHT: usize = 80;
    /// Generous per-order cost (a queued job, its ticket's slot and its
    /// outcome are a few hundred bytes), plus slack for the threads.
    const PER_ORDER_BYTES: usize = 1_024;
    const SLACK_BYTES: usize = 256 * 1024;
    const BOUND_BYTES: usize = MAX_IN_FLIGHT * PER_ORDER_BYTES + SLACK_BYTES;
    const SHEDDERS: usize = 2;
    const SHED_ATTEMPTS: usize = 20_000;
    const PATIENT: usize = 2;
    const PATIENT_ORDERS: usize = 10_000;

    let ledger = stocked(1_000);
    let intake = Arc::new(
        Intake::builder()
            .capacity(CAPACITY)
            .max_in_flight(MAX_IN_FLIGHT)
            .workers(2)
            .build(Arc::clone(&ledger))
            .unwrap(),
    );
    let done = Arc::new(AtomicBool::new(false));
    // Relaxed: the allocator's statistics, read by this thread only.
    let baseline = LIVE.load(Ordering::Relaxed);
    // Relaxed: as above.
    PEAK.store(baseline, Ordering::Relaxed);

    let watcher = {
        let (intake, done) = (Arc::clone(&intake), Arc::clone(&done));
        thread::spawn(move || {
            let mut samples = 0u64;
            // SeqCst: set by the test thread when the producers are done.
            while !done.load(Ordering::SeqCst) && samples < 1_000_000 {
                let stats = intake.stats();
                assert!(stats.queue_depth <= CAPACITY, "{stats:?}");
                assert!(stats.in_flight <= MAX_IN_FLIGHT, "{stats:?}");
                samples += 1;
                thread::yield_now();
            }
            samples
        })
    };
    // Fire and forget: every ticket is dropped at once, as a host that
    // answers 202 and never looks back would.
    let shedders = (0..SHEDDERS).map(|_| {
        let intake = Arc::clone(&intake);
        thread::spawn(move || (0..SHED_ATTEMPTS).filter(|_| intake.try_submit(take(1)).is_ok()).count())
    });
    let patient = (0..PATIENT).map(|_| {
        let intake = Arc::clone(&intake);
        thread::spawn(move || (0..PATIENT_ORDERS).filter(|_| intake.submit(take(1)).is_ok()).count())
    });
    let producers: Vec<_> = shedders.chain(patient).collect();
    let accepted: usize = producers.into_iter().map(|producer| producer.join().unwrap()).sum();
    // SeqCst: see the watcher.
    done.store(true, Ordering::SeqCst);
    assert!(watcher.join().unwrap() > 0);
    assert!(intake.shutdown().is_complete());

    // Relaxed: see `baseline`.
    let grown = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    let stats = intake.stats();
    assert_eq!(stats.accepted, accepted as u64);
    assert!(accepted >= PATIENT * PATIENT_ORDERS && stats.shed > 0, "{stats:?}");
    assert!(
        grown <= BOUND_BYTES,
        "the heap grew by {grown} bytes for {accepted} accepted orders (bound {BOUND_BYTES}): {stats:?}"
    );
    eprintln!(
        "flood: {accepted} accepted, {} shed, heap grew by at most {grown} bytes (bound {BOUND_BYTES})",
        stats.shed
    );
    // The bound means something: keeping every accepted order would not fit.
    let kept_bytes = accepted * std::mem::size_of::<Command>();
    assert!(kept_bytes > BOUND_BYTES, "flood too small to tell: {kept_bytes} bytes of commands");
    assert!(ledger.audit().is_clean());
    assert_quiescent(&stats);
}

#[test]
fn tickets_can_be_polled_and_waited_on() {
    let _serial = serial();
    let (gated, open) = Gated::new(stocked(100));
    let intake = Intake::builder().capacity(4).workers(1).build(Arc::clone(&gated)).unwrap();
    let ticket = intake.submit(take(3)).unwrap();
    assert_eq!(ticket.id(), OrderId(1));
    assert_eq!(ticket.id().to_string(), "order:1");
    assert!(!ticket.is_decided() && ticket.try_outcome().is_none());
    assert_eq!(ticket.wait_timeout(Duration::from_millis(10)), Err(WaitError::Timeout));

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let ticket = ticket.clone();
            thread::spawn(move || ticket.wait().clone())
        })
        .collect();
    drop(open);
    let decision = wait(&ticket).clone();
    match &decision {
        Ok(Outcome::Sold(sale)) => assert_eq!(sale.quantity().get(), 3),
        other => panic!("{other:?}"),
    }
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap(), decision);
    }
    assert!(ticket.is_decided() && ticket.try_outcome() == Some(&decision));

    // A refusal is the ledger's own typed error.
    let refused = intake.submit(Command::Take(AllocateRequest::new(SkuId(404), 1))).unwrap();
    let error = wait(&refused).as_ref().unwrap_err();
    assert!(error.is_refused() && !error.is_panicked() && !error.is_unapplied());
    assert!(matches!(error.command_error(), Some(CommandError::Allocate(AllocateError::UnknownSku { .. }))));
    drop(intake); // dropping shuts down and drains
}

#[test]
fn dropping_an_intake_drains_every_accepted_order() {
    let _serial = serial();
    let ledger = stocked(1_000);
    let intake = Intake::builder().capacity(8).workers(2).build(Arc::clone(&ledger)).unwrap();
    let tickets: Vec<Ticket> = (0..200).map(|_| intake.submit(take(1)).unwrap()).collect();
    drop(intake);
    assert!(tickets.iter().all(|ticket| matches!(ticket.try_outcome(), Some(Ok(Outcome::Sold(_))))));
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 200);
}

#[test]
fn out_of_range_settings_are_typed_errors_and_start_nothing() {
    use stockroom::intake::BuildError;
    let _serial = serial();
    let ledger = || Arc::new(Ledger::new());
    assert!(matches!(Intake::builder().capacity(0).build(ledger()), Err(BuildError::Capacity { capacity: 0 })));
    let too_many = Intake::<Arc<Ledger>>::CAPACITY_MAX + 1;
    assert!(matches!(
        Intake::builder().capacity(too_many).build(ledger()),
        Err(BuildError::Capacity { capacity }) if capacity == too_many
    ));
    assert!(matches!(Intake::builder().workers(0).build(ledger()), Err(BuildError::Workers { workers: 0 })));
    assert!(matches!(
        Intake::builder().max_in_flight(0).build(ledger()),
        Err(BuildError::InFlight { max_in_flight: 0 })
    ));
    // Precedence: the capacity is reported before the workers.
    assert!(matches!(Intake::builder().capacity(0).workers(0).build(ledger()), Err(BuildError::Capacity { .. })));
}

// ---------------------------------------------------------------------------
// Keyed orders: at most once per key, whoever submits it how often.

fn key(name: &str) -> stockroom::IdempotencyKey {
    stockroom::IdempotencyKey::new(name).unwrap()
}

#[test]
fn a_keyed_order_submitted_from_many_threads_is_applied_once_and_every_ticket_gets_its_outcome() {
    let _serial = serial();
    let ledger = stocked(1_000);
    let intake = Arc::new(Intake::builder().capacity(256).workers(4).build(Arc::clone(&ledger)).unwrap());
    let submitters: Vec<_> = (0..4)
        .map(|_| {
            let intake = Arc::clone(&intake);
            thread::spawn(move || {
                (0..50)
                    .map(|round| intake.submit_keyed(key(&format!("order-{round}")), take(3)).unwrap())
                    .collect::<Vec<Ticket>>()
            })
        })
        .collect();
    let tickets: Vec<Vec<Ticket>> = submitters.into_iter().map(|submitter| submitter.join().unwrap()).collect();
    for round in 0..50 {
        let first = wait(&tickets[0][round]).clone();
        assert!(matches!(first, Ok(Outcome::Sold(_))), "order-{round}: {first:?}");
        for ticket in &tickets[1..] {
            assert_eq!(wait(&ticket[round]), &first, "order-{round}: a retry gets the first outcome");
        }
    }
    // 50 keys, 3 units each: once per key, not once per submission.
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 150);
}

#[test]
fn a_keyed_refusal_is_replayed_and_a_reused_key_is_refused_by_its_key() {
    let _serial = serial();
    let ledger = stocked(5);
    let intake = Intake::builder().workers(1).build(Arc::clone(&ledger)).unwrap();
    let too_many = wait(&intake.submit_keyed(key("big"), take(6)).unwrap()).clone();
    assert!(matches!(too_many, Err(IntakeError::Refused(_))), "{too_many:?}");
    ledger.receive(SKU, NewLot::new(LotId(2), 10)).unwrap();
    // The refusal is what the key recorded: a retry is refused again even
    // though the stock would now cover it.
    assert_eq!(wait(&intake.try_submit_keyed(key("big"), take(6)).unwrap()), &too_many);
    let sold = wait(&intake.submit_keyed(key("small"), take(2)).unwrap()).clone();
    assert!(matches!(sold, Ok(Outcome::Sold(_))));
    let reused = wait(&intake.submit_keyed(key("small"), take(4)).unwrap()).clone();
    assert!(
        matches!(&reused, Err(IntakeError::Key(stockroom::KeyedError::KeyReused { .. }))),
        "a key reused for another command: {reused:?}"
    );
    assert_eq!(reused.unwrap_err().command_error(), None);
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 2);
}

#[test]
fn an_executor_that_keeps_no_keys_refuses_keyed_orders_and_applies_nothing() {
    let _serial = serial();
    let ledger = stocked(10);
    let (gated, open) = Gated::new(Arc::clone(&ledger));
    drop(open);
    let intake = Intake::builder().workers(1).build(gated).unwrap();
    assert_eq!(wait(&intake.submit_keyed(key("k"), take(1)).unwrap()), &Err(IntakeError::KeysUnsupported));
    assert!(matches!(wait(&intake.submit(take(1)).unwrap()), Ok(Outcome::Sold(_))));
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 1);
}

/// An empty directory for one test's journal, named for it.
#[cfg(feature = "journal")]
fn fresh_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stockroom-intake-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The ledger kept in a `Sync` journal in `dir` (recovered if it has one).
#[cfg(feature = "journal")]
fn open_sync(dir: &std::path::Path) -> Ledger {
    use stockroom::journal::{Durability, JournalOptions};
    Ledger::builder().open(dir, JournalOptions::new(Durability::Sync)).unwrap().0
}

#[cfg(feature = "journal")]
#[test]
fn a_keyed_order_retried_after_a_restart_replays_from_the_journal() {
    let _serial = serial();
    let dir = fresh_dir("keyed");
    let open = || open_sync(&dir);
    let first = {
        let ledger = Arc::new(open());
        ledger.define_sku(SKU, AllocationPolicy::Fifo).unwrap();
        ledger.receive(SKU, NewLot::new(LotId(1), 10)).unwrap();
        let intake = Intake::builder().workers(1).build(Arc::clone(&ledger)).unwrap();
        let outcome = wait(&intake.submit_keyed(key("checkout-1"), take(4)).unwrap()).clone();
        ledger.acknowledge().unwrap();
        outcome
    };
    assert!(matches!(first, Ok(Outcome::Sold(_))));
    let ledger = Arc::new(open());
    let intake = Intake::builder().workers(1).build(Arc::clone(&ledger)).unwrap();
    assert_eq!(wait(&intake.submit_keyed(key("checkout-1"), take(4)).unwrap()), &first);
    assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 4);
    drop((intake, ledger));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Durable batches: an executor that batches for durability decides no
// ticket before its batch was made durable.

/// Counts `make_durable` calls, fails them on demand, and holds the worker
/// at the gate until the test opens it.
struct Durable {
    gated: Arc<Gated>,
    calls: AtomicUsize,
    fail: AtomicBool,
}

impl Apply for Durable {
    fn apply(&self, command: &Command) -> Result<Outcome, CommandError> {
        self.gated.apply(command)
    }

    fn batches_for_durability(&self) -> bool {
        true
    }

    fn make_durable(&self) -> Result<(), String> {
        // SeqCst: read by the test after the tickets it waits on.
        self.calls.fetch_add(1, Ordering::SeqCst);
        // SeqCst: set by the test before it opens the gate.
        if self.fail.load(Ordering::SeqCst) { Err("the disk is full".to_owned()) } else { Ok(()) }
    }
}

#[test]
fn a_batch_is_made_durable_once_before_any_of_its_tickets_is_decided() {
    let _serial = serial();
    for fail in [false, true] {
        let ledger = stocked(1_000);
        let (gated, open) = Gated::new(Arc::clone(&ledger));
        let durable = Arc::new(Durable { gated, calls: AtomicUsize::new(0), fail: AtomicBool::new(fail) });
        let intake = Intake::builder().capacity(512).workers(1).build(Arc::clone(&durable)).unwrap();
        let first = intake.submit(take(1)).unwrap();
        eventually("the worker holds the first order", || durable.gated.entered() == 1);
        let rest: Vec<Ticket> = (0..99).map(|_| intake.submit(take(1)).unwrap()).collect();
        drop(open);
        for ticket in std::iter::once(&first).chain(&rest) {
            match (fail, wait(ticket)) {
                (false, Ok(Outcome::Sold(_))) => {}
                (true, Err(IntakeError::Undurable { reason })) => assert_eq!(reason, "the disk is full"),
                (_, other) => panic!("fail {fail}: {other:?}"),
            }
        }
        // The 99 were queued while the worker held the first: it takes
        // them into the first's batch (at most 256), and makes the hundred
        // durable with one call, not one per order.
        // SeqCst: see `make_durable`.
        assert_eq!(durable.calls.load(Ordering::SeqCst), 1, "fail {fail}");
        // Applied either way: the batch was applied, only not made durable.
        assert_eq!(ledger.snapshot(SKU).unwrap().totals().committed.get(), 100);
    }
}

#[cfg(feature = "journal")]
#[test]
fn over_a_sync_journal_a_decided_ticket_is_a_durable_one() {
    let _serial = serial();
    let dir = fresh_dir("durable");
    let ledger = Arc::new(open_sync(&dir));
    ledger.define_sku(SKU, AllocationPolicy::Fifo).unwrap();
    ledger.receive(SKU, NewLot::new(LotId(1), 1_000)).unwrap();
    ledger.acknowledge().unwrap();
    let journal = ledger.journal().unwrap();
    let syncs_before = journal.stats().syncs;
    let intake = Intake::builder().capacity(1_024).workers(2).build(Arc::clone(&ledger)).unwrap();
    let tickets: Vec<Ticket> =
        (0..500).map(|i| intake.submit_keyed(key(&format!("durable-{i}")), take(1)).unwrap()).collect();
    for ticket in &tickets {
        assert!(matches!(wait(ticket), Ok(Outcome::Sold(_))));
    }
    // Nobody called `acknowledge`: the workers made each batch durable
    // before deciding it, so the last decision covers every record.
    assert_eq!(journal.durable_seq(), journal.next_seq() - 1);
    let syncs = journal.stats().syncs - syncs_before;
    assert!(syncs < 250, "{syncs} syncs for 500 orders: not batched");
    drop((intake, ledger));
    let _ = std::fs::remove_dir_all(&dir);
}
