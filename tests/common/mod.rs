//! Shared test support: the reference ledger and small constructors.
#![allow(dead_code, unreachable_pub)]

pub mod reference;

use std::sync::Arc;
use std::time::Duration;
use stockroom::{Ledger, ManualClock, Timestamp};

/// A ledger on a manual clock that reads `start` until moved, and the clock.
pub fn manual_ledger(start: u64) -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(start)));
    (Ledger::with_clock(clock.clone()), clock)
}

/// Like [`manual_ledger`], with holds limited to `hold_max`.
pub fn manual_ledger_with_hold_max(start: u64, hold_max: Duration) -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(start)));
    let ledger = Ledger::builder().clock(clock.clone()).hold_max(hold_max).build().expect("a non-zero hold_max");
    (ledger, clock)
}
