//! The intake's counters and its time-to-outcome histogram.
//!
//! Owns: [`IntakeStats`] and [`Percentiles`] (what a host reads), and the
//! lock-free counters and log-scale histogram behind them.
//!
//! Must never: block or allocate when recording, or be used to decide
//! anything. Statistics are observations: every counter is `Relaxed` and
//! publishes nothing. An order is counted as accepted just after its job is
//! queued, so a fast worker may count it decided first; a snapshot reports
//! `accepted` as at least `decided`, which is the truth (every decided
//! order was accepted).
//!
//! # The histogram
//!
//! Durations in nanoseconds go into fixed buckets: one per value below 8,
//! then 8 buckets per power of two (the top 3 significant bits of the
//! value), so every bucket is at most 12.5 % wide relative to its lower
//! bound. Recording is one `fetch_add` on a bucket and one `fetch_max`.
//! A percentile walks the buckets and reports the upper bound of the
//! bucket it lands in (clamped to the largest value recorded): it may
//! overstate by up to 12.5 %, never understate.

use crate::sync::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two, as bits: 8 buckets, 12.5 % wide.
const SUB_BITS: u32 = 3;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Exact buckets for 0..8, then 8 for each exponent 3..=63.
const BUCKETS: usize = SUB_BUCKETS + (64 - SUB_BITS as usize) * SUB_BUCKETS;
const _: () = assert!(BUCKETS == 496);

/// Which bucket `value` is counted in.
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let sub = (value >> (exponent - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    let index = (exponent - SUB_BITS + 1) as usize * SUB_BUCKETS + sub;
    debug_assert!(index < BUCKETS);
    index
}

/// The largest value counted in bucket `index`.
fn bucket_max(index: usize) -> u64 {
    debug_assert!(index < BUCKETS);
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let exponent = (index / SUB_BUCKETS) as u32 + SUB_BITS - 1;
    let sub = (index % SUB_BUCKETS) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    // The lower bound is (8 + sub) * width; the top bucket ends at u64::MAX.
    ((SUB_BUCKETS as u64 + sub) * width).saturating_add(width - 1)
}

/// A lock-free histogram of durations (see the module docs).
pub(super) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max_nanos: AtomicU64,
}

impl Histogram {
    pub(super) fn new() -> Histogram {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), max_nanos: AtomicU64::new(0) }
    }

    pub(super) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: a statistic; pairs with nothing, publishes nothing.
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        // Relaxed: a statistic; pairs with nothing, publishes nothing.
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// p50, p99 and p99.9 of what has been recorded so far. Concurrent
    /// recordings may or may not be included; the count is the sum of the
    /// buckets read, so the percentiles are consistent with it.
    pub(super) fn percentiles(&self) -> Percentiles {
        // Relaxed: a statistic; pairs with nothing (see `record`).
        let counts: Vec<u64> = self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect();
        // Relaxed: a statistic; pairs with nothing (see `record`).
        let max_nanos = self.max_nanos.load(Ordering::Relaxed);
        let count: u64 = counts.iter().sum();
        let at = |per_mille: u64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            // The smallest value at least `per_mille`/1000 of the samples
            // are at or below: rank ceil(count * q), at least 1.
            let rank = (u128::from(count) * u128::from(per_mille)).div_ceil(1000).max(1);
            let mut seen = 0u128;
            for (index, &n) in counts.iter().enumerate() {
                seen += u128::from(n);
                if seen >= rank {
                    return Duration::from_nanos(bucket_max(index).min(max_nanos));
                }
            }
            Duration::from_nanos(max_nanos)
        };
        Percentiles { count, p50: at(500), p99: at(990), p999: at(999), max: Duration::from_nanos(max_nanos) }
    }
}

/// Percentiles of the time from an order's acceptance to its decision.
///
/// From a log-scale histogram: each percentile is the upper bound of the
/// bucket it falls in, at most 12.5 % above the true value, never below.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// How many orders were measured.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// The largest time measured (exact).
    pub max: Duration,
}

/// A point-in-time view of an [`Intake`](super::Intake), from
/// [`Intake::stats`](super::Intake::stats).
///
/// Each field is read separately while orders flow, so fields may be a
/// moment apart; `decided <= accepted` always holds, and at a quiescent
/// point `accepted == decided + in_flight`.
///
/// ```
/// use stockroom::intake::Intake;
/// use stockroom::{AllocateRequest, Command, Ledger, SkuId};
/// use std::sync::Arc;
///
/// let intake = Intake::builder().capacity(8).workers(1).build(Arc::new(Ledger::new()))?;
/// // SKU 1 is not defined: the order is accepted, then refused by the ledger.
/// intake.submit(Command::Take(AllocateRequest::new(SkuId(1), 1)))?.wait();
/// let stats = intake.stats();
/// assert_eq!((stats.accepted, stats.decided, stats.shed), (1, 1, 0));
/// assert_eq!(stats.time_to_outcome.count, 1);
/// assert!(stats.time_to_outcome.p50 <= stats.time_to_outcome.max);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntakeStats {
    /// Orders waiting in the queue for a worker.
    pub queue_depth: usize,
    /// The queue's capacity.
    pub queue_capacity: usize,
    /// Orders holding an in-flight permit: accepted and not yet decided
    /// (queued or being applied), plus submitters that hold a permit and
    /// are waiting for room in the queue.
    pub in_flight: usize,
    /// The limit on `in_flight`.
    pub max_in_flight: usize,
    /// Worker threads alive (the pool's size unless it is shutting down).
    pub workers: usize,
    /// Orders accepted (queued, with a ticket) since the intake started.
    pub accepted: u64,
    /// Orders refused at once because the intake was full
    /// ([`SubmitError::Full`](super::SubmitError::Full)).
    pub shed: u64,
    /// Orders refused because the intake stayed full for a submitter's
    /// whole timeout ([`SubmitError::Timeout`](super::SubmitError::Timeout)).
    pub timed_out: u64,
    /// Accepted orders that have their decision, of any kind.
    pub decided: u64,
    /// Of `decided`: orders whose application panicked.
    pub panicked: u64,
    /// Of `decided`: orders a shutdown took back unapplied at its deadline.
    pub unapplied: u64,
    /// Time from acceptance to decision, over every decided order.
    pub time_to_outcome: Percentiles,
}

/// The intake's counters.
pub(super) struct Counters {
    pub(super) accepted: AtomicU64,
    pub(super) shed: AtomicU64,
    pub(super) timed_out: AtomicU64,
    pub(super) decided: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) unapplied: AtomicU64,
    pub(super) time_to_outcome: Histogram,
}

impl Counters {
    pub(super) fn new() -> Counters {
        Counters {
            accepted: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            decided: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            unapplied: AtomicU64::new(0),
            time_to_outcome: Histogram::new(),
        }
    }

    /// Counts an order as accepted, once its job is queued.
    pub(super) fn accept(&self) {
        // Relaxed: a statistic; pairs with nothing (`snapshot` clamps to `decided`).
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn shed(&self) {
        // Relaxed: a statistic; pairs with nothing, publishes nothing.
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn timed_out(&self) {
        // Relaxed: a statistic; pairs with nothing, publishes nothing.
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an order as decided, `waited` after its acceptance.
    pub(super) fn decided(&self, waited: Duration) {
        self.time_to_outcome.record(waited);
        // Relaxed: a statistic; pairs with nothing.
        self.decided.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn panicked(&self) {
        // Relaxed: a statistic; pairs with nothing, publishes nothing.
        self.panicked.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn unapplied(&self) {
        // Relaxed: a statistic; pairs with nothing, publishes nothing.
        self.unapplied.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters' part of [`IntakeStats`]; the caller fills in the
    /// queue, in-flight and pool fields.
    pub(super) fn snapshot(&self) -> IntakeStats {
        // Relaxed: a statistic; pairs with nothing.
        let decided = self.decided.load(Ordering::Relaxed);
        IntakeStats {
            // Relaxed: a statistic. Every decided order was accepted, even
            // if its submitter has not counted it yet.
            accepted: self.accepted.load(Ordering::Relaxed).max(decided),
            // Relaxed: a statistic; pairs with nothing.
            shed: self.shed.load(Ordering::Relaxed),
            // Relaxed: a statistic; pairs with nothing.
            timed_out: self.timed_out.load(Ordering::Relaxed),
            decided,
            // Relaxed: a statistic; pairs with nothing.
            panicked: self.panicked.load(Ordering::Relaxed),
            // Relaxed: a statistic; pairs with nothing.
            unapplied: self.unapplied.load(Ordering::Relaxed),
            time_to_outcome: self.time_to_outcome.percentiles(),
            ..IntakeStats::default()
        }
    }
}

#[cfg(all(test, not(stockroom_loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous_max = None;
        for index in 0..BUCKETS {
            let max = bucket_max(index);
            if let Some(previous) = previous_max {
                assert!(max > previous, "bucket {index} ends after bucket {}", index - 1);
                assert_eq!(
                    bucket_of(previous + 1),
                    index,
                    "the value after bucket {} starts bucket {index}",
                    index - 1
                );
            }
            assert_eq!(bucket_of(max), index);
            previous_max = Some(max);
        }
        assert_eq!(previous_max, Some(u64::MAX));
    }

    #[test]
    fn buckets_are_at_most_an_eighth_wide() {
        for value in [8u64, 9, 15, 16, 100, 1_000, 123_456, 10_000_000_000, u64::MAX / 3] {
            let max = bucket_max(bucket_of(value));
            assert!(max >= value && max - value <= value / 8, "{value} -> {max}");
        }
    }

    #[test]
    fn percentiles_from_buckets() {
        let histogram = Histogram::new();
        assert_eq!(histogram.percentiles(), Percentiles::default());
        for micros in 1..=1_000u64 {
            histogram.record(Duration::from_micros(micros));
        }
        let p = histogram.percentiles();
        assert_eq!(p.count, 1_000);
        assert_eq!(p.max, Duration::from_micros(1_000));
        let within = |got: Duration, want_micros: u64| {
            let want = Duration::from_micros(want_micros);
            got >= want && got <= want + want / 8
        };
        assert!(within(p.p50, 500), "{p:?}");
        assert!(within(p.p99, 990), "{p:?}");
        assert!(within(p.p999, 999), "{p:?}");
        assert!(p.p50 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max);
    }
}
