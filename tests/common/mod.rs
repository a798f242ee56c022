//! Shared test support: the reference ledger and small constructors.
#![allow(dead_code, unreachable_pub)]

pub mod reference;

use std::sync::Arc;
use stockroom::{Ledger, ManualClock, Timestamp};

/// A ledger on a manual clock that reads `start` until moved, and the clock.
pub fn manual_ledger(start: u64) -> (Ledger, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(start)));
    (Ledger::with_clock(clock.clone()), clock)
}
