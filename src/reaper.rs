//! The reaper: a background thread that sweeps lapsed reservations and
//! expired lots a bounded slice of the catalog at a time.
//!
//! Owns: [`Reaper`], [`ReaperConfig`], [`ReaperStats`], [`ReaperError`].
//!
//! Must never: be needed for correctness, or do unbounded work in one
//! tick. Deadlines are exact without it (every operation on a SKU sweeps
//! that SKU's lapsed reservations first); the reaper returns units of SKUs
//! nobody touches, and reports lots as they expire. Each tick sweeps at
//! most [`ReaperConfig::skus_per_tick`] SKUs, each one change of that SKU.
//! It uses the ledger's public API like any host would.

use crate::error::{ErrorKind, questions};
use crate::ids::SkuId;
use crate::ledger::Ledger;
use crate::sync::Arc;
use crossbeam::channel::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the reaper wakes and how much it does per wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ReaperConfig {
    /// Time between ticks (at least 1 ms).
    pub tick: Duration,
    /// SKUs swept per tick (at least 1): the bound on one tick's work. A
    /// full pass over `n` SKUs takes `ceil(n / skus_per_tick)` ticks.
    pub skus_per_tick: usize,
}

impl Default for ReaperConfig {
    fn default() -> ReaperConfig {
        ReaperConfig { tick: Duration::from_millis(100), skus_per_tick: 1_024 }
    }
}

impl ReaperConfig {
    /// Sets the time between ticks.
    pub fn tick(mut self, tick: Duration) -> ReaperConfig {
        self.tick = tick;
        self
    }

    /// Sets how many SKUs one tick sweeps.
    pub fn skus_per_tick(mut self, skus_per_tick: usize) -> ReaperConfig {
        self.skus_per_tick = skus_per_tick;
        self
    }
}

/// A [`ReaperConfig`] out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReaperError {
    /// A tick shorter than a millisecond.
    #[error("the reaper's tick must be at least 1 ms, not {tick:?}")]
    TickTooShort {
        /// The rejected tick.
        tick: Duration,
    },
    /// Zero SKUs per tick: the reaper would never sweep anything.
    #[error("the reaper must sweep at least one SKU per tick")]
    ZeroSkusPerTick,
    /// The operating system refused to start the thread.
    #[error("the reaper thread could not start: {reason}")]
    Spawn {
        /// What the operating system said.
        reason: String,
    },
}

impl ReaperError {
    /// What kind of refusal this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReaperError::TickTooShort { .. } | ReaperError::ZeroSkusPerTick => ErrorKind::Invalid,
            ReaperError::Spawn { .. } => ErrorKind::System,
        }
    }
}

questions!(@transient ReaperError);

/// What a reaper did over its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ReaperStats {
    /// Ticks run.
    pub ticks: u64,
    /// SKU sweeps attempted (at most `ticks * skus_per_tick`).
    pub skus_visited: u64,
    /// Reservations it found lapsed and ended.
    pub lapsed: u64,
    /// Lots it reported expired.
    pub expired_lots: u64,
}

/// A running reaper. [`stop`](Reaper::stop) it to get its stats; dropping
/// it stops it too.
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, ManualClock, NewLot, Reaper, ReaperConfig, SkuId, Timestamp};
/// use std::{sync::Arc, time::{Duration, Instant}};
///
/// let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
/// let ledger = Arc::new(Ledger::with_clock(clock.clone()));
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 5))?;
/// ledger.allocate(&AllocateRequest::new(SkuId(1), 2).hold_for(Duration::from_secs(60)))?;
/// clock.advance(Duration::from_secs(60)); // the hold lapses; nobody touches the SKU
///
/// let reaper = Reaper::start(Arc::clone(&ledger), ReaperConfig::default().tick(Duration::from_millis(5)).skus_per_tick(64))?;
/// // The audit sweeps nothing: it sees the hold until the reaper ends it.
/// let waited = Instant::now();
/// while ledger.audit().reservations > 0 && waited.elapsed() < Duration::from_secs(30) {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// let stats = reaper.stop();
/// assert_eq!((stats.lapsed, ledger.audit().reservations), (1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Reaper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<ReaperStats>>,
}

impl Reaper {
    /// Starts a reaper thread over `ledger`.
    pub fn start(ledger: Arc<Ledger>, config: ReaperConfig) -> Result<Reaper, ReaperError> {
        if config.tick < Duration::from_millis(1) {
            return Err(ReaperError::TickTooShort { tick: config.tick });
        }
        if config.skus_per_tick == 0 {
            return Err(ReaperError::ZeroSkusPerTick);
        }
        let (stop, stopped) = channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("stockroom-reaper".into())
            .spawn(move || {
                let mut stats = ReaperStats::default();
                let mut pass: Vec<SkuId> = Vec::new();
                let mut next = 0;
                loop {
                    match stopped.recv_timeout(config.tick) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return stats,
                    }
                    if next >= pass.len() {
                        // A new pass over the catalog: SKUs defined since
                        // the last one join it.
                        pass = ledger.skus();
                        pass.sort_unstable();
                        next = 0;
                    }
                    let slice = &pass[next..pass.len().min(next + config.skus_per_tick)];
                    next += slice.len();
                    stats.ticks += 1;
                    stats.skus_visited += slice.len() as u64;
                    // The clock is read by the ledger just before; `now` is
                    // never later than it.
                    if let Ok(report) = ledger.expire_due_in(slice, ledger.now()) {
                        stats.lapsed += report.lapsed().count() as u64;
                        crate::trace::debug!(skus = slice.len(), lapsed = report.lapsed().count(), "reaper tick");
                        stats.expired_lots += report.swept.iter().map(|s| s.expired_lots.len() as u64).sum::<u64>();
                    }
                }
            })
            .map_err(|error| ReaperError::Spawn { reason: error.to_string() })?;
        Ok(Reaper { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the reaper (after its current tick) and returns its stats.
    pub fn stop(mut self) -> ReaperStats {
        self.shut_down()
    }

    fn shut_down(&mut self) -> ReaperStats {
        drop(self.stop.take());
        self.thread.take().and_then(|thread| thread.join().ok()).unwrap_or_default()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::kind::tests::check;
    use ErrorKind::{Invalid, System};

    #[test]
    fn reaper_errors() {
        check(
            &[
                (ReaperError::TickTooShort { tick: Duration::ZERO }, Invalid),
                (ReaperError::ZeroSkusPerTick, Invalid),
                (ReaperError::Spawn { reason: "no threads".to_owned() }, System),
            ],
            |e| match e {
                ReaperError::TickTooShort { .. } => "TickTooShort",
                ReaperError::ZeroSkusPerTick => "ZeroSkusPerTick",
                ReaperError::Spawn { .. } => "Spawn",
            },
            &["TickTooShort", "ZeroSkusPerTick", "Spawn"],
        );
    }

    #[test]
    fn a_config_is_built_from_its_default() {
        let config = ReaperConfig::default().tick(Duration::from_millis(5)).skus_per_tick(64);
        assert_eq!((config.tick, config.skus_per_tick), (Duration::from_millis(5), 64));
        assert_eq!(ReaperConfig::default().tick, Duration::from_millis(100));
    }
}
