//! Time: instants, and the injectable clock the ledger reads them from.
//!
//! Owns: [`Timestamp`], the [`Clock`] trait, the [`SystemClock`] used by
//! default and the [`ManualClock`] tests and simulations drive by hand.
//!
//! Must never: be read more than once per command. A command reads the
//! clock once, before it touches state, and decides everything (expired
//! lots, deadlines) against that one instant, so a replay with the same
//! clock readings gives the same outcome.

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

/// The one clock reading of one operation, taken lazily: a sold-out
/// refusal of a SKU without deadlines never reads the clock; retries of the
/// same operation reuse the reading.
#[derive(Debug)]
pub(crate) struct Moment<'a> {
    clock: Option<&'a dyn Clock>,
    now: std::cell::Cell<Option<Timestamp>>,
}

impl<'a> Moment<'a> {
    /// Reads `clock` on first use.
    pub(crate) fn of(clock: &'a dyn Clock) -> Moment<'a> {
        Moment { clock: Some(clock), now: std::cell::Cell::new(None) }
    }

    /// Always `now`.
    pub(crate) fn fixed(now: Timestamp) -> Moment<'static> {
        Moment { clock: None, now: std::cell::Cell::new(Some(now)) }
    }

    pub(crate) fn now(&self) -> Timestamp {
        if let Some(now) = self.now.get() {
            return now;
        }
        let now = self.clock.map_or(Timestamp(0), |clock| clock.now());
        self.now.set(Some(now));
        now
    }
}
