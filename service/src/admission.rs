//! Admission control for `POST /orders`: while the service is behind, a
//! share of new orders is refused at once (429 + `Retry-After`), so that
//! the orders it does accept are answered quickly and the excess is told
//! so fast.
//!
//! Owns: [`Admission`] (the decision: three atomic operations per order),
//! the probe task that feeds it, [`Controller`] (the rule) and
//! [`AdmitError`].
//!
//! Must never: wait to decide, refuse while the runtime keeps up (no
//! order is shed while the last probe's lag is under half the target), or
//! outlive the service (the probe ends when the [`Admission`] it reports
//! to is dropped).
//!
//! # Where the latency accrues, and the signal
//!
//! Flooding the service with twice the orders it can serve leaves the
//! intake's queue nearly empty: a worker applies an order in a few
//! microseconds. What runs out is the CPU the HTTP path needs (parsing,
//! the order book, the event feed), shared with every other process on
//! the machine. Requests then wait as ready connection tasks in the
//! runtime's run queues, before any handler runs, and behind those in the
//! clients' own backlogs: no queue length the service can read measures
//! that wait. So the signal is a queueing *delay*, as in CoDel (Nichols
//! and Jacobson, "Controlling Queue Delay", 2012): shed by how long work
//! waits, not by how much of it there is.
//!
//! Every [`PROBE_INTERVAL`] a probe task yields once to the runtime and
//! times how long the runtime takes to poll it again: the wait of any
//! ready task, a connection with a new request among them. While no
//! order arrives (and nothing is shed) the probe backs off to
//! [`PROBE_IDLE_INTERVAL_MAX`]; the first order wakes it.
//!
//! # The rule
//!
//! A proportional-integral controller after PIE (RFC 8033, "Proportional
//! Integral Controller Enhanced"), with the runtime's lag for PIE's queue
//! delay: at each probe the share of orders to shed moves by
//! [`GAIN_INTEGRAL_PER_MS`] per millisecond the lag is above (or below)
//! [`Config::shed_lag_target`](crate::Config::shed_lag_target), plus
//! [`GAIN_PROPORTIONAL_PER_MS`] per millisecond it grew (or fell) since
//! the previous probe, within 0 and [`SHARE_MAX`]. The integral part
//! settles the lag at the target whatever the overload; the proportional
//! part reacts to a sudden flood within a few probes. A single slow probe
//! (the operating system preempting a runtime thread for a few
//! milliseconds, which a shared machine does at any load) moves the share
//! a little and it decays again; and while the last lag is under half the
//! target nothing is shed at all (PIE's burst allowance).
//!
//! The share is applied without randomness: each order adds the share to
//! an accumulator and is shed when that crosses a whole unit, so a share
//! of 0.3 sheds 3 orders in every 10, evenly spread. A refused order
//! costs the HTTP parse and a short problem body, a fraction of an
//! accepted one, so shedding frees the CPU the accepted orders need.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often the probe measures the runtime's lag (plus the lag itself)
/// while orders arrive.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// The longest the probe sleeps while no order arrives (its interval
/// doubles per idle probe up to this); the first order after an idle
/// spell wakes it at once.
pub const PROBE_IDLE_INTERVAL_MAX: Duration = Duration::from_millis(100);
/// The shed share's change per probe, per millisecond of lag above the
/// target (negative below it): PIE's alpha.
pub const GAIN_INTEGRAL_PER_MS: f64 = 0.01;
/// The shed share's change per probe, per millisecond the lag grew since
/// the previous probe (negative when it fell): PIE's beta.
pub const GAIN_PROPORTIONAL_PER_MS: f64 = 0.02;
/// The largest share of orders shed: even a service far behind accepts
/// one order in a hundred, so it keeps being measured doing real work.
pub const SHARE_MAX: f64 = 0.99;
/// A share as a fixed-point fraction of this (the accumulator's unit).
const SHARE_ONE: u64 = 1 << 16;

const _: () = assert!(SHARE_MAX > 0.0 && SHARE_MAX < 1.0);
const _: () = assert!(GAIN_INTEGRAL_PER_MS > 0.0 && GAIN_PROPORTIONAL_PER_MS >= 0.0);

/// An order was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmitError {
    /// The service is behind: the runtime's scheduling lag is above its
    /// target, and this order fell in the share being shed. Transient:
    /// retry after the `Retry-After` the 429 carries.
    Behind {
        /// The lag the last probe measured.
        lag: Duration,
    },
}

impl AdmitError {
    /// Always true: the service catches up by refusing.
    pub fn is_transient(&self) -> bool {
        true
    }
}

/// The rule (see the module docs). Plain data, driven by the probe alone.
#[derive(Clone, Debug)]
pub struct Controller {
    target: Duration,
    /// The share of orders to shed, 0 to [`SHARE_MAX`].
    share: f64,
    lag_previous: Duration,
}

impl Controller {
    /// A controller holding the lag near `target` (not zero).
    pub fn new(target: Duration) -> Controller {
        assert!(!target.is_zero(), "a zero target is admission control off, not a controller");
        Controller { target, share: 0.0, lag_previous: Duration::ZERO }
    }

    /// Takes one probe's `lag`; returns the share of new orders to shed
    /// until the next probe (0 while the lag is under half the target).
    pub fn observe(&mut self, lag: Duration) -> f64 {
        let ms = |duration: Duration| duration.as_secs_f64() * 1_000.0;
        let error = ms(lag) - ms(self.target);
        let growth = ms(lag) - ms(self.lag_previous);
        self.share =
            (self.share + GAIN_INTEGRAL_PER_MS * error + GAIN_PROPORTIONAL_PER_MS * growth).clamp(0.0, SHARE_MAX);
        self.lag_previous = lag;
        if lag < self.target / 2 { 0.0 } else { self.share }
    }
}

/// The admission decision the handlers read, and what `/metrics` reports.
#[derive(Debug, Default)]
pub struct Admission {
    /// The share of orders to shed, in 1/`SHARE_ONE`; set by the probe.
    share: AtomicU64,
    /// Each order adds `share`; one whose addition crosses a multiple of
    /// `SHARE_ONE` is shed.
    accumulator: AtomicU64,
    /// The last probe's lag, nanoseconds.
    lag_nanos: AtomicU64,
    /// Orders refused as behind.
    pub shed: AtomicU64,
    /// Probes taken.
    pub probes: AtomicU64,
    /// Set by an order, cleared by the probe: whether any arrived since
    /// the last probe.
    busy: AtomicBool,
    /// Wakes an idle probe when an order arrives.
    wake: Arc<Notify>,
}

impl Admission {
    /// Admission with no probe: admits everything (`--shed-lag-target-us 0`).
    pub fn open() -> Arc<Admission> {
        Arc::new(Admission::default())
    }

    /// Admission fed by a probe on the current runtime, ruled by
    /// `controller`. The probe ends once the returned `Arc` (and its
    /// clones) are dropped.
    pub fn probed(controller: Controller) -> Arc<Admission> {
        let admission = Arc::new(Admission::default());
        tokio::spawn(probe(Arc::downgrade(&admission), Arc::clone(&admission.wake), controller));
        admission
    }

    /// Admits one order, or refuses it because the service is behind.
    pub fn admit(&self) -> Result<(), AdmitError> {
        // Relaxed: a hint for the probe's pace; the swap elects the one
        // order that wakes an idle probe (Notify keeps the permit if the
        // probe is not waiting yet).
        if !self.busy.load(Ordering::Relaxed) && !self.busy.swap(true, Ordering::Relaxed) {
            self.wake.notify_one();
        }
        // Relaxed: a hint the probe refreshes every PROBE_INTERVAL; the
        // order's own data travels through the intake's channels, not here.
        let share = self.share.load(Ordering::Relaxed);
        if share == 0 {
            return Ok(());
        }
        // Relaxed: only the RMW's atomicity matters (each order one
        // distinct step of the accumulator); pairs with nothing.
        let before = self.accumulator.fetch_add(share, Ordering::Relaxed);
        // u64 wraps at a multiple of SHARE_ONE, so the remainder is exact.
        if before % SHARE_ONE + share < SHARE_ONE {
            return Ok(());
        }
        // Relaxed: a statistic; pairs with nothing.
        self.shed.fetch_add(1, Ordering::Relaxed);
        Err(AdmitError::Behind { lag: self.lag() })
    }

    /// The last probe's lag.
    pub fn lag(&self) -> Duration {
        // Relaxed: a statistic; pairs with nothing (see `record`).
        Duration::from_nanos(self.lag_nanos.load(Ordering::Relaxed))
    }

    /// The share of new orders being shed, 0 to [`SHARE_MAX`].
    pub fn share(&self) -> f64 {
        // Relaxed: a statistic; pairs with nothing (see `admit`).
        self.share.load(Ordering::Relaxed) as f64 / SHARE_ONE as f64
    }

    /// Sheds `share` of new orders from now on, as if a probe had found
    /// the service behind: a drill for the shedding path (a real probe, if
    /// one runs, overwrites it at its next measurement).
    pub fn drill(&self, share: f64) {
        self.record(Duration::ZERO, share);
    }

    fn record(&self, lag: Duration, share: f64) {
        let nanos = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: a statistic; pairs with nothing.
        self.lag_nanos.store(nanos, Ordering::Relaxed);
        let fixed = (share.clamp(0.0, SHARE_MAX) * SHARE_ONE as f64) as u64;
        debug_assert!(fixed < SHARE_ONE);
        // Relaxed: a hint read by `admit`; publishes no other data.
        self.share.store(fixed, Ordering::Relaxed);
        // Relaxed: a statistic; pairs with nothing.
        self.probes.fetch_add(1, Ordering::Relaxed);
    }
}

/// The probe: every [`PROBE_INTERVAL`] while orders arrive, one yield,
/// timed; while none arrive and nothing is shed, at doubling intervals up
/// to [`PROBE_IDLE_INTERVAL_MAX`], woken at once by the next order.
async fn probe(admission: Weak<Admission>, wake: Arc<Notify>, mut controller: Controller) {
    let mut interval = PROBE_INTERVAL;
    // Bounded by the service's life: ends when the admission is dropped.
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
        }
        let yielded = Instant::now();
        tokio::task::yield_now().await;
        let lag = yielded.elapsed();
        let share = controller.observe(lag);
        let Some(admission) = admission.upgrade() else { return };
        admission.record(lag, share);
        // Relaxed: see `admit`.
        let idle = !admission.busy.swap(false, Ordering::Relaxed) && share == 0.0;
        interval = if idle { (interval * 2).min(PROBE_IDLE_INTERVAL_MAX) } else { PROBE_INTERVAL };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_share_rises_while_behind_and_falls_back() {
        let mut controller = Controller::new(MS);
        for _ in 0..100 {
            assert_eq!(controller.observe(MS / 4), 0.0, "under target: nothing shed");
        }
        let mut share = 0.0;
        for _ in 0..20 {
            let next = controller.observe(10 * MS);
            assert!(next > share || next == SHARE_MAX, "10 ms behind: the share grows ({share} -> {next})");
            share = next;
        }
        assert!(share > 0.5 && share <= SHARE_MAX, "{share}");
        for _ in 0..1_000 {
            assert!(controller.observe(1_000 * MS) <= SHARE_MAX, "bounded however far behind");
        }
        assert_eq!(controller.observe(MS / 4), 0.0, "under half the target: nothing shed at once");
        let held = controller.observe(MS);
        assert!(held > 0.0, "at the target the share holds (integral action): {held}");
        // Bounded: the share falls by GAIN_INTEGRAL_PER_MS * 0.6 per probe.
        let mut probes = 0;
        while controller.observe(MS * 2 / 5) > 0.0 {
            probes += 1;
            assert!(probes < 1_000, "the share falls back to 0 under the target");
        }
    }

    #[test]
    fn a_single_slow_probe_sheds_little() {
        let mut controller = Controller::new(MS);
        controller.observe(MS / 5);
        let spike = controller.observe(4 * MS);
        assert!(spike < 0.15, "one probe of 4 ms at a 1 ms target: {spike}");
        assert_eq!(controller.observe(MS / 5), 0.0);
    }

    #[test]
    fn refusals_follow_the_share_evenly_counted_and_typed() {
        let admission = Admission::open();
        assert_eq!(admission.admit(), Ok(()));
        admission.record(5 * MS, 0.25);
        let verdicts: Vec<bool> = (0..1_000).map(|_| admission.admit().is_ok()).collect();
        assert_eq!(verdicts.iter().filter(|admitted| !**admitted).count(), 250);
        assert!(verdicts.chunks(4).all(|four| four.iter().filter(|admitted| !**admitted).count() == 1), "evenly");
        assert_eq!(admission.shed.load(Ordering::Relaxed), 250);
        admission.record(5 * MS, SHARE_MAX);
        let refused = (0..1_000).map(|_| admission.admit()).find(Result::is_err).unwrap().unwrap_err();
        assert_eq!(refused, AdmitError::Behind { lag: 5 * MS });
        assert!(refused.is_transient());
        assert!((0..1_000).any(|_| admission.admit().is_ok()), "SHARE_MAX lets some through");
        admission.record(MS, 0.0);
        assert!((0..1_000).all(|_| admission.admit().is_ok()));
    }

    /// On the runtime's paused clock (deterministic): an idle probe backs
    /// off to its longest interval, and the next order brings it back to
    /// one probe per `PROBE_INTERVAL` at once.
    #[tokio::test(start_paused = true)]
    async fn an_idle_probe_backs_off_and_the_next_order_wakes_it() {
        let admission = Admission::probed(Controller::new(MS));
        let probes = || admission.probes.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = probes();
        // 1 + 2 + 4 + ... + 64 ms, then 100 ms apiece: about 16 in 1 s,
        // not 1,000.
        assert!((8..=24).contains(&idle), "{idle} probes in an idle second");
        admission.admit().unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(probes() > idle, "the order woke the probe");
        // Busy again: an order per millisecond keeps the probe at its pace.
        let busy_from = probes();
        for _ in 0..100 {
            admission.admit().unwrap();
            tokio::time::sleep(MS).await;
        }
        let busy = probes() - busy_from;
        assert!(busy >= 50, "{busy} probes in 100 busy milliseconds");
    }
}
