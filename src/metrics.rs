//! Metrics: counters and gauges a host exports (Prometheus, `StatsD`, logs).
//!
//! Owns: the ledger's command counters (striped, see below), the probe each
//! public command opens at its top and closes at its bottom, and
//! [`MetricsSnapshot`], what [`Ledger::metrics`](crate::Ledger::metrics)
//! returns: commands by kind and outcome, refusals by reason, holds live,
//! lapses met, keyed replays, and the intake's sheds and queue depth when
//! the host adds them ([`MetricsSnapshot::with_intake`]).
//!
//! Must never: put one shared cache line under every thread on the hot
//! path, decide anything, or cost a command more than a few instructions.
//!
//! # Striping
//!
//! Counters live in [`STRIPES`] cache-padded stripes. A thread picks its
//! stripe once (a thread-local index handed out round-robin) and only
//! ever adds to that one, so two threads share a stripe's lines only when
//! more than [`STRIPES`] threads count at once. A snapshot sums the stripes:
//! each counter is exact once the commands it counts have returned; a
//! snapshot taken meanwhile may count a command in one counter and not yet
//! in another (it is a moment's reading, not a linearizable one).
//!
//! # Orderings
//!
//! Every counter is a `Relaxed` read-modify-write of its own: a statistic
//! that publishes nothing and that no decision reads. They are `std`
//! atomics in every build (`crate::sync::StatCounter`), invisible to the
//! checkers, like `unique_id`: counting adds no interleavings to a model.

use crate::error::{
    AdjustError, AllocateError, CommitError, DefineError, ExpireError, ExtendError, OrderError, ReceiveError,
    ReleaseError, ThresholdError,
};
use crate::intake::IntakeStats;
use crate::keyed_error::KeyedError;
use crate::outcome::{ExpiryReport, Keyed, OrderAllocation};
use crate::sync::StatCounter;
use crossbeam::utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::Ordering;

/// Counter stripes per ledger (a power of two).
pub(crate) const STRIPES: usize = 16;
const _: () = assert!(STRIPES.is_power_of_two());

/// The kinds of command counted, in [`MetricsSnapshot::commands`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandKind {
    /// [`Ledger::define_sku`](crate::Ledger::define_sku).
    DefineSku,
    /// [`Ledger::receive`](crate::Ledger::receive).
    Receive,
    /// [`Ledger::allocate`](crate::Ledger::allocate).
    Allocate,
    /// [`Ledger::take`](crate::Ledger::take).
    Take,
    /// [`Ledger::allocate_order`](crate::Ledger::allocate_order).
    AllocateOrder,
    /// [`Ledger::release`](crate::Ledger::release).
    Release,
    /// [`Ledger::commit`](crate::Ledger::commit).
    Commit,
    /// [`Ledger::extend`](crate::Ledger::extend).
    Extend,
    /// [`Ledger::adjust`](crate::Ledger::adjust) and
    /// [`adjust_if_version`](crate::Ledger::adjust_if_version).
    Adjust,
    /// [`Ledger::set_low_stock`](crate::Ledger::set_low_stock).
    SetLowStock,
    /// [`Ledger::expire_due`](crate::Ledger::expire_due) and
    /// [`expire_due_in`](crate::Ledger::expire_due_in) (the reaper's sweeps).
    ExpireDue,
    /// [`Ledger::execute_keyed`](crate::Ledger::execute_keyed): counted once
    /// per call; the command it applies (not a replay) is counted under its
    /// own kind too.
    Keyed,
}

impl CommandKind {
    /// Every kind, in counter order.
    pub const ALL: [CommandKind; KINDS] = [
        CommandKind::DefineSku,
        CommandKind::Receive,
        CommandKind::Allocate,
        CommandKind::Take,
        CommandKind::AllocateOrder,
        CommandKind::Release,
        CommandKind::Commit,
        CommandKind::Extend,
        CommandKind::Adjust,
        CommandKind::SetLowStock,
        CommandKind::ExpireDue,
        CommandKind::Keyed,
    ];

    /// A stable lower-case name (`"take"`, `"allocate_order"`, ...), for
    /// labels.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::DefineSku => "define_sku",
            CommandKind::Receive => "receive",
            CommandKind::Allocate => "allocate",
            CommandKind::Take => "take",
            CommandKind::AllocateOrder => "allocate_order",
            CommandKind::Release => "release",
            CommandKind::Commit => "commit",
            CommandKind::Extend => "extend",
            CommandKind::Adjust => "adjust",
            CommandKind::SetLowStock => "set_low_stock",
            CommandKind::ExpireDue => "expire_due",
            CommandKind::Keyed => "keyed",
        }
    }
}

const KINDS: usize = 12;

/// Why a command was refused, coarsely: one label per family of error
/// variants, the same for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Bad input refused before any stock was looked at (zero or too
    /// large a quantity, a hold too short or too long, an empty order).
    Invalid,
    /// An unknown SKU, lot or reservation.
    Unknown,
    /// Not enough eligible stock.
    Insufficient,
    /// The reservation had already ended.
    Ended,
    /// The reservation had lapsed (the call that met it returned its units).
    Expired,
    /// A conditional command found another version.
    VersionMismatch,
    /// Contention outlasted the command's attempts (transient).
    Contended,
    /// An idempotency key sent again with a different command.
    KeyReused,
    /// Anything else (already defined, duplicate lot, beyond a maximum...).
    Other,
}

impl RefusalReason {
    /// Every reason, in counter order.
    pub const ALL: [RefusalReason; REASONS] = [
        RefusalReason::Invalid,
        RefusalReason::Unknown,
        RefusalReason::Insufficient,
        RefusalReason::Ended,
        RefusalReason::Expired,
        RefusalReason::VersionMismatch,
        RefusalReason::Contended,
        RefusalReason::KeyReused,
        RefusalReason::Other,
    ];

    /// A stable lower-case name, for labels.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::Invalid => "invalid",
            RefusalReason::Unknown => "unknown",
            RefusalReason::Insufficient => "insufficient",
            RefusalReason::Ended => "ended",
            RefusalReason::Expired => "expired",
            RefusalReason::VersionMismatch => "version_mismatch",
            RefusalReason::Contended => "contended",
            RefusalReason::KeyReused => "key_reused",
            RefusalReason::Other => "other",
        }
    }
}

const REASONS: usize = 9;

/// Counter layout inside a stripe.
const OK: usize = 0;
const REFUSED: usize = OK + KINDS;
const REASON: usize = REFUSED + KINDS;
const LAPSES: usize = REASON + REASONS;
const REPLAYS: usize = LAPSES + 1;
const COUNTERS: usize = REPLAYS + 1;

/// One thread group's counters.
struct Stripe {
    counters: [StatCounter; COUNTERS],
}

/// The ledger's counters (see the module docs).
pub(crate) struct Metrics {
    stripes: Box<[CachePadded<Stripe>]>,
}

impl core::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Metrics").field("stripes", &self.stripes.len()).finish()
    }
}

std::thread_local! {
    /// This thread's stripe, `usize::MAX` until it first counts.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe index, assigned round-robin on first use.
#[inline]
fn my_stripe() -> usize {
    STRIPE.with(|stripe| {
        let index = stripe.get();
        if index != usize::MAX {
            return index;
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        // Relaxed: only spreads threads over stripes; orders nothing.
        let index = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        stripe.set(index);
        index
    })
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Zeroed counters.
    pub(crate) fn new() -> Self {
        let stripes = (0..STRIPES)
            .map(|_| CachePadded::new(Stripe { counters: core::array::from_fn(|_| StatCounter::new(0)) }))
            .collect();
        Metrics { stripes }
    }

    #[inline]
    fn add(&self, counter: usize, by: u64) {
        // Relaxed: a statistic (# Orderings).
        self.stripes[my_stripe()].counters[counter].fetch_add(by, Ordering::Relaxed);
    }

    /// Opens a command's probe: counts it when closed (by
    /// [`Tallied::tallied`]) or, if the command returned early (bad input),
    /// when dropped.
    #[inline]
    pub(crate) fn probe(&self, kind: CommandKind, span: crate::trace::Entered) -> Probe<'_> {
        Probe { metrics: self, kind, armed: true, _span: span }
    }

    fn sum(&self, counter: usize) -> u64 {
        // Relaxed: a statistic (# Orderings).
        self.stripes.iter().map(|stripe| stripe.counters[counter].load(Ordering::Relaxed)).sum()
    }

    /// The counters now, summed over the stripes; the gauges the ledger
    /// reads are filled in by the caller.
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let commands = CommandKind::ALL
            .iter()
            .enumerate()
            .map(|(index, &kind)| CommandCounts { kind, ok: self.sum(OK + index), refused: self.sum(REFUSED + index) })
            .collect();
        let refusals = RefusalReason::ALL
            .iter()
            .enumerate()
            .map(|(index, &reason)| RefusalCount { reason, count: self.sum(REASON + index) })
            .collect();
        MetricsSnapshot {
            commands,
            refusals,
            lapses: self.sum(LAPSES),
            keyed_replays: self.sum(REPLAYS),
            ..MetricsSnapshot::default()
        }
    }
}

/// A command in progress (see [`Metrics::probe`]).
#[must_use = "a probe counts its command when it is closed"]
pub(crate) struct Probe<'m> {
    metrics: &'m Metrics,
    kind: CommandKind,
    armed: bool,
    _span: crate::trace::Entered,
}

impl Probe<'_> {
    fn refused(&mut self, reason: RefusalReason) {
        self.armed = false;
        self.metrics.add(REFUSED + self.kind as usize, 1);
        self.metrics.add(REASON + reason as usize, 1);
        if reason == RefusalReason::Expired {
            self.metrics.add(LAPSES, 1);
        }
        crate::trace::debug!(command = self.kind.name(), refused = reason.name());
    }

    fn ok(&mut self, lapses: u64, replay: bool) {
        self.armed = false;
        self.metrics.add(OK + self.kind as usize, 1);
        if lapses > 0 {
            self.metrics.add(LAPSES, lapses);
        }
        if replay {
            self.metrics.add(REPLAYS, 1);
        }
        crate::trace::debug!(command = self.kind.name(), ok = true, lapses, replay);
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if self.armed {
            // The command returned before its bottom line: bad input.
            self.refused(RefusalReason::Invalid);
        }
    }
}

/// What an outcome adds to the counters beyond "ok".
pub(crate) trait Counted {
    /// Reservations this outcome found lapsed.
    fn lapses(&self) -> u64 {
        0
    }
    /// True for a keyed replay.
    fn replay(&self) -> bool {
        false
    }
}

/// An error's reason label.
pub(crate) trait Reason {
    /// The family of the error.
    fn reason(&self) -> RefusalReason;
}

/// Closes a command's probe with its result: the one line at the bottom
/// of each public command.
pub(crate) trait Tallied: Sized {
    /// Counts `self` on `probe` and hands it back unchanged.
    fn tallied(self, probe: Probe<'_>) -> Self;
}

impl<T: Counted, E: Reason> Tallied for Result<T, E> {
    #[inline]
    fn tallied(self, mut probe: Probe<'_>) -> Self {
        match &self {
            Ok(outcome) => probe.ok(outcome.lapses(), outcome.replay()),
            Err(error) => probe.refused(error.reason()),
        }
        self
    }
}

macro_rules! plain_outcomes {
    ($($outcome:ty),* $(,)?) => {
        $(impl Counted for $outcome {})*
    };
}

plain_outcomes!(
    crate::outcome::SkuDefined,
    crate::outcome::Received,
    crate::outcome::Allocation,
    crate::outcome::Sale,
    crate::outcome::Released,
    crate::outcome::Committed,
    crate::outcome::Extended,
    crate::outcome::Adjusted,
    crate::outcome::LowStockSet,
    OrderAllocation,
);

impl Counted for ExpiryReport {
    fn lapses(&self) -> u64 {
        self.lapsed().count() as u64
    }
}

impl<T> Counted for Keyed<T> {
    fn replay(&self) -> bool {
        self.replay
    }
}

impl Reason for DefineError {
    fn reason(&self) -> RefusalReason {
        RefusalReason::Other
    }
}

impl Reason for ReceiveError {
    fn reason(&self) -> RefusalReason {
        match self {
            ReceiveError::ZeroQuantity { .. } | ReceiveError::QuantityTooLarge { .. } => RefusalReason::Invalid,
            ReceiveError::UnknownSku { .. } => RefusalReason::Unknown,
            ReceiveError::Contended { .. } => RefusalReason::Contended,
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for AllocateError {
    fn reason(&self) -> RefusalReason {
        match self {
            AllocateError::ZeroQuantity { .. }
            | AllocateError::QuantityTooLarge { .. }
            | AllocateError::ZeroHold { .. }
            | AllocateError::HoldTooLong { .. } => RefusalReason::Invalid,
            AllocateError::UnknownSku { .. } => RefusalReason::Unknown,
            AllocateError::VersionMismatch { .. } => RefusalReason::VersionMismatch,
            AllocateError::Insufficient { .. } => RefusalReason::Insufficient,
            AllocateError::Contended { .. } => RefusalReason::Contended,
            #[allow(unreachable_patterns)]
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for ReleaseError {
    fn reason(&self) -> RefusalReason {
        match self {
            ReleaseError::UnknownSku { .. } | ReleaseError::UnknownReservation { .. } => RefusalReason::Unknown,
            ReleaseError::Ended { .. } => RefusalReason::Ended,
            ReleaseError::Expired { .. } => RefusalReason::Expired,
            ReleaseError::Contended { .. } => RefusalReason::Contended,
            #[allow(unreachable_patterns)]
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for CommitError {
    fn reason(&self) -> RefusalReason {
        match self {
            CommitError::ZeroQuantity { .. } | CommitError::QuantityTooLarge { .. } => RefusalReason::Invalid,
            CommitError::UnknownSku { .. } | CommitError::UnknownReservation { .. } => RefusalReason::Unknown,
            CommitError::Ended { .. } => RefusalReason::Ended,
            CommitError::Expired { .. } => RefusalReason::Expired,
            CommitError::Contended { .. } => RefusalReason::Contended,
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for AdjustError {
    fn reason(&self) -> RefusalReason {
        match self {
            AdjustError::ZeroDelta { .. } | AdjustError::DeltaTooLarge { .. } => RefusalReason::Invalid,
            AdjustError::UnknownSku { .. } | AdjustError::UnknownLot { .. } => RefusalReason::Unknown,
            AdjustError::VersionMismatch { .. } => RefusalReason::VersionMismatch,
            AdjustError::Contended { .. } => RefusalReason::Contended,
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for ExtendError {
    fn reason(&self) -> RefusalReason {
        match self {
            ExtendError::ZeroDuration { .. } => RefusalReason::Invalid,
            ExtendError::UnknownSku { .. } | ExtendError::UnknownReservation { .. } => RefusalReason::Unknown,
            ExtendError::Ended { .. } => RefusalReason::Ended,
            ExtendError::Expired { .. } => RefusalReason::Expired,
            ExtendError::Contended { .. } => RefusalReason::Contended,
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for ExpireError {
    fn reason(&self) -> RefusalReason {
        RefusalReason::Invalid
    }
}

impl Reason for OrderError {
    fn reason(&self) -> RefusalReason {
        match self {
            OrderError::Line { error, .. } => error.reason(),
            _ => RefusalReason::Invalid,
        }
    }
}

impl Reason for ThresholdError {
    fn reason(&self) -> RefusalReason {
        match self {
            ThresholdError::TooLarge { .. } => RefusalReason::Invalid,
            ThresholdError::UnknownSku { .. } => RefusalReason::Unknown,
            ThresholdError::Contended { .. } => RefusalReason::Contended,
            #[allow(unreachable_patterns)]
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for KeyedError {
    fn reason(&self) -> RefusalReason {
        match self {
            KeyedError::KeyReused { .. } => RefusalReason::KeyReused,
            KeyedError::Refused { error, .. } => crate::error::CommandError::reason(error),
            #[allow(unreachable_patterns)]
            _ => RefusalReason::Other,
        }
    }
}

impl Reason for crate::error::CommandError {
    fn reason(&self) -> RefusalReason {
        use crate::error::CommandError as E;
        match self {
            E::Define(error) => error.reason(),
            E::Receive(error) => error.reason(),
            E::Allocate(error) => error.reason(),
            E::Release(error) => error.reason(),
            E::Commit(error) => error.reason(),
            E::Adjust(error) => error.reason(),
            E::Extend(error) => error.reason(),
            E::Expire(error) => error.reason(),
            E::Order(error) => error.reason(),
            E::Threshold(error) => error.reason(),
            #[allow(unreachable_patterns)]
            _ => RefusalReason::Other,
        }
    }
}

/// One command kind's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandCounts {
    /// The command.
    pub kind: CommandKind,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that were refused (every reason, bad input included).
    pub refused: u64,
}

/// How many refusals had one reason, across commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusalCount {
    /// The reason.
    pub reason: RefusalReason,
    /// Refusals with it.
    pub count: u64,
}

/// A moment's reading of a ledger's counters and gauges, for a host to
/// export. Counters only grow; gauges are read when the snapshot is taken.
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, CommandKind, Ledger, LotId, NewLot, RefusalReason, SkuId};
///
/// let ledger = Ledger::new();
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 1))?;
/// ledger.take(&AllocateRequest::new(SkuId(1), 1))?;
/// assert!(ledger.take(&AllocateRequest::new(SkuId(1), 1)).is_err()); // sold out
/// let _hold = ledger.allocate(&AllocateRequest::new(SkuId(1), 0)); // bad input
///
/// let metrics = ledger.metrics();
/// assert_eq!((metrics.command(CommandKind::Take).ok, metrics.command(CommandKind::Take).refused), (1, 1));
/// assert_eq!(metrics.refusals(RefusalReason::Insufficient), 1);
/// assert_eq!(metrics.refusals(RefusalReason::Invalid), 1);
/// assert_eq!((metrics.skus, metrics.holds_live, metrics.journal_lag), (1, 0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Per command kind, in [`CommandKind::ALL`] order: calls that
    /// succeeded and calls refused.
    pub commands: Vec<CommandCounts>,
    /// Refusals by reason, in [`RefusalReason::ALL`] order.
    pub refusals: Vec<RefusalCount>,
    /// Holds that lapsed, as met by the calls that found them: sweeps
    /// ([`Ledger::expire_due`](crate::Ledger::expire_due), the reaper) and
    /// commits, releases and extends refused as `Expired`. A hold swept in
    /// passing by another command on its SKU shows in `holds_live` going
    /// down, not here.
    pub lapses: u64,
    /// Keyed commands answered by replaying a first outcome.
    pub keyed_replays: u64,
    /// Gauge: SKUs defined.
    pub skus: u64,
    /// Gauge: live reservations across the catalog (read SKU by SKU, each
    /// from one consistent version; lapsed holds not counted).
    pub holds_live: u64,
    /// Gauge: units held by them.
    pub units_held: u64,
    /// Counter: orders the intake shed (0 unless added by
    /// [`with_intake`](Self::with_intake)).
    pub sheds: u64,
    /// Gauge: orders waiting in the intake's queue (0 unless added by
    /// [`with_intake`](Self::with_intake)).
    pub intake_queue_depth: u64,
    /// Gauge: orders accepted by the intake and not yet decided (0 unless
    /// added by [`with_intake`](Self::with_intake)).
    pub intake_in_flight: u64,
    /// Gauge: acknowledged changes not yet durable in the journal. Always 0
    /// until the journal lands (nothing is journaled, so nothing lags); the
    /// field is here so exporters need not change then.
    pub journal_lag: u64,
    /// Counter: clock readings clamped because the clock had stepped back
    /// below an instant the ledger already used (see [`Ledger::now`](crate::Ledger::now):
    /// readings of two threads a clock tick apart count too).
    pub clock_clamped: u64,
    /// The largest step back of the ledger's clock seen so far, in
    /// milliseconds (0 if it never stepped back).
    pub clock_step_back_max_ms: u64,
}

impl MetricsSnapshot {
    /// The counts of one command kind.
    pub fn command(&self, kind: CommandKind) -> CommandCounts {
        self.commands.iter().copied().find(|counts| counts.kind == kind).unwrap_or(CommandCounts {
            kind,
            ok: 0,
            refused: 0,
        })
    }

    /// Refusals with `reason`.
    pub fn refusals(&self, reason: RefusalReason) -> u64 {
        self.refusals.iter().find(|count| count.reason == reason).map_or(0, |count| count.count)
    }

    /// Adds an intake's sheds, queue depth and in-flight count.
    pub fn with_intake(mut self, stats: &IntakeStats) -> MetricsSnapshot {
        self.sheds = stats.shed;
        self.intake_queue_depth = stats.queue_depth as u64;
        self.intake_in_flight = stats.in_flight as u64;
        self
    }
}

impl crate::ledger::Ledger {
    /// The ledger's counters and gauges now (see [`MetricsSnapshot`]).
    ///
    /// The counters cost each command a few instructions (one striped,
    /// uncontended add); the gauges are read here, SKU by SKU, each from one
    /// consistent version, so a call costs O(SKUs + live holds): a scrape's
    /// price, not a command's.
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut snapshot = self.metrics.snapshot();
        (snapshot.clock_clamped, snapshot.clock_step_back_max_ms) = self.clock_steps_back();
        for sku in self.skus() {
            if let Ok(version) = self.snapshot(sku) {
                snapshot.skus += 1;
                snapshot.holds_live += version.reservation_count() as u64;
                snapshot.units_held += version.totals().held.get();
            }
        }
        snapshot
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;
    use crate::{AllocateRequest, AllocationPolicy, Ledger, LotId, ManualClock, NewLot, SkuId, Timestamp};
    use std::sync::Arc;
    use std::time::Duration;

    /// Many threads counting at once: every command counted exactly once,
    /// whichever stripe it landed in.
    #[test]
    fn striped_counts_add_up_across_threads() {
        let ledger = Arc::new(Ledger::new());
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 1_000)).unwrap();
        let threads: Vec<_> = (0..STRIPES + 3)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || {
                    (0..100).filter(|_| ledger.take(&AllocateRequest::new(SkuId(1), 1)).is_ok()).count() as u64
                })
            })
            .collect();
        let sold: u64 = threads.into_iter().map(|thread| thread.join().unwrap()).sum();
        let metrics = ledger.metrics();
        let take = metrics.command(CommandKind::Take);
        assert_eq!(sold, 1_000);
        assert_eq!((take.ok, take.refused), (sold, (STRIPES as u64 + 3) * 100 - sold));
        assert_eq!(metrics.refusals(RefusalReason::Insufficient), take.refused);
    }

    /// Holds live, lapses met and the reasons of a mixed sequence.
    #[test]
    fn gauges_and_lapses() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
        let ledger = Ledger::with_clock(clock.clone());
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
        let short = AllocateRequest::new(SkuId(1), 2).hold_for(Duration::from_secs(1));
        let a = ledger.allocate(&short).unwrap();
        let b = ledger.allocate(&short).unwrap();
        let _c = ledger.allocate(&AllocateRequest::new(SkuId(1), 3)).unwrap();
        let metrics = ledger.metrics();
        assert_eq!((metrics.holds_live, metrics.units_held), (3, 7));
        clock.advance(Duration::from_secs(2));
        assert!(ledger.commit(a.reservation, None).is_err());
        let report = ledger.expire_due(ledger.now()).unwrap();
        let lapsed_by_sweep = report.lapsed().count() as u64;
        let metrics = ledger.metrics();
        assert_eq!(metrics.lapses, 1 + lapsed_by_sweep);
        assert_eq!(metrics.holds_live, 1);
        assert!(ledger.release(b.reservation).is_err());
        assert_eq!(ledger.metrics().refusals(RefusalReason::Ended), 1, "b was swept: its release meets an ended hold");
        assert_eq!(ledger.metrics().command(CommandKind::ExpireDue).ok, 1);
    }
}
