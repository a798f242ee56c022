//! Time: instants, and the injectable clock the ledger reads them from.
//!
//! Owns: [`Timestamp`], the [`Clock`] trait, the [`SystemClock`] used by
//! default and the [`ManualClock`] tests and simulations drive by hand,
//! and the ledger's floor under its clock (`Floor`): the instants a
//! ledger uses never run backwards.
//!
//! Must never: be read more than once per command. A command reads the
//! clock once, before it touches state, and decides everything (expired
//! lots, deadlines) against that one instant, so a replay with the same
//! clock readings gives the same outcome.
//!
//! # Time that never runs backwards
//!
//! A wall clock can step back (NTP, a VM migrated, a host's
//! `ManualClock::set`). If the ledger followed it, a lot it had reported
//! expired would be sellable again and a hold that had lapsed would be
//! live again. So every reading a ledger takes from its clock passes
//! through its floor: the latest instant any of its operations used. A
//! reading below the floor is clamped up to it, and counted (the count and
//! the largest step show in [`MetricsSnapshot`](crate::MetricsSnapshot)).
//! Instants a host passes explicitly (`expire_due(now)`) are the host's
//! and are not clamped.
//!
//! Two threads reading a clock that ticks between their readings may
//! store and see the floor in either order: the later loader is clamped
//! to the other's instant, by the clock's own granularity (a millisecond
//! for [`SystemClock`]). Those clamps are counted too; a real step shows
//! as a large `clock_step_back_max_ms`.

use crate::sync::{AtomicU64, Ordering};
use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant, in milliseconds since the clock's epoch (the Unix epoch for
/// [`SystemClock`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the end of time.
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A source of instants. The ledger reads it once per command.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant. Should not go backwards; if it does, expiry
    /// decisions follow the clock, never crash.
    fn now(&self) -> Timestamp;
}

/// Wall-clock time since the Unix epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        // Seconds and milliseconds apart: no 128-bit arithmetic.
        Timestamp(since_epoch.as_secs().saturating_mul(1_000).saturating_add(u64::from(since_epoch.subsec_millis())))
    }
}

/// A clock that moves only when told to: for tests, simulations and
/// replays.
///
/// ```
/// use stockroom::{Clock, ManualClock, Timestamp};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(Timestamp::from_millis(1_000));
/// clock.advance(Duration::from_millis(500));
/// assert_eq!(clock.now(), Timestamp::from_millis(1_500));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `start` until moved.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { millis: AtomicU64::new(start.0) }
    }

    /// Sets the clock to `instant`.
    pub fn set(&self, instant: Timestamp) {
        // Release: pairs with the Acquire in `now`, so a thread that sees the
        // new instant also sees what the setter did before moving the clock.
        self.millis.store(instant.0, Ordering::Release);
    }

    /// Moves the clock forward by `duration`, saturating at the end of time.
    pub fn advance(&self, duration: Duration) {
        let step = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        // AcqRel: concurrent advances add up; pairs with `now`'s Acquire.
        let _ = self.millis.fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| Some(m.saturating_add(step)));
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new(Timestamp::default())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        // Acquire: pairs with the Release in `set` / `advance`.
        Timestamp(self.millis.load(Ordering::Acquire))
    }
}

/// The latest instant a ledger's operations used, and the steps back its
/// clock took (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Floor {
    latest: AtomicU64,
    clamped: AtomicU64,
    largest_step: AtomicU64,
}

impl Floor {
    /// `reading`, or the floor if the reading is below it; raises the
    /// floor to the reading otherwise.
    pub(crate) fn clamp(&self, reading: Timestamp) -> Timestamp {
        // Acquire: pairs with the AcqRel `fetch_max` of the operation that
        // raised the floor; by coherence on this one word an operation that
        // happens after another never loads a floor below the other's
        // instant.
        let latest = self.latest.load(Ordering::Acquire);
        if reading.0 > latest {
            // AcqRel: pairs with the Acquire load above (and with other
            // raisers); the previous maximum says whether another thread
            // raised it past this reading first.
            let before = self.latest.fetch_max(reading.0, Ordering::AcqRel);
            if before <= reading.0 {
                return reading;
            }
            self.stepped(before - reading.0);
            return Timestamp(before);
        }
        if reading.0 < latest {
            self.stepped(latest - reading.0);
        }
        Timestamp(latest)
    }

    fn stepped(&self, millis: u64) {
        // Relaxed: statistics; nothing is decided on them.
        let clamped = self.clamped.fetch_add(1, Ordering::Relaxed);
        debug_assert!(clamped < u64::MAX, "clamps counted past u64::MAX");
        self.largest_step.fetch_max(millis, Ordering::Relaxed);
    }

    /// Readings clamped so far, and the largest step back (ms).
    pub(crate) fn steps_back(&self) -> (u64, u64) {
        // Relaxed: statistics (see `stepped`).
        (self.clamped.load(Ordering::Relaxed), self.largest_step.load(Ordering::Relaxed))
    }
}

/// The one clock reading of one operation, taken lazily: a sold-out
/// refusal of a SKU without deadlines never reads the clock; retries of the
/// same operation reuse the reading.
#[derive(Debug)]
pub(crate) struct Moment<'a> {
    clock: Option<(&'a dyn Clock, &'a Floor)>,
    now: std::cell::Cell<Option<Timestamp>>,
}

impl<'a> Moment<'a> {
    /// Reads `clock` on first use, clamped by `floor`.
    pub(crate) fn of(clock: &'a dyn Clock, floor: &'a Floor) -> Moment<'a> {
        Moment { clock: Some((clock, floor)), now: std::cell::Cell::new(None) }
    }

    /// Always `now`.
    pub(crate) fn fixed(now: Timestamp) -> Moment<'static> {
        Moment { clock: None, now: std::cell::Cell::new(Some(now)) }
    }

    /// The instant, if the operation has read it.
    pub(crate) fn taken(&self) -> Option<Timestamp> {
        self.now.get()
    }

    pub(crate) fn now(&self) -> Timestamp {
        if let Some(now) = self.now.get() {
            return now;
        }
        let now = self.clock.map_or(Timestamp(0), |(clock, floor)| floor.clamp(clock.now()));
        self.now.set(Some(now));
        now
    }
}
