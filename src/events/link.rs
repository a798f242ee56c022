//! The link between a subscription and its outlet: the `closed` flag the
//! subscription sets when dropped, and (with the `async` feature) the
//! wakers of the task awaiting the subscription as a stream.
//!
//! Owns: [`Link`].
//!
//! Must never: make the dispatcher wait. Waking is the hand-off of
//! `src/waker.rs` (a fence and a load when no task waits); without the
//! `async` feature [`Link::wake`] is empty.
//!
//! # Orderings
//!
//! The `closed` flag is Relaxed: nothing is published through it (see
//! `outlet.rs`). The wakers argue theirs in `src/waker.rs`.

use crate::sync::{AtomicBool, Ordering};

/// What a subscription and its outlet share (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Link {
    closed: AtomicBool,
    #[cfg(feature = "async")]
    pub(crate) wakers: crate::waker::WakerSet,
}

impl Link {
    /// An open link.
    pub(crate) fn new() -> Self {
        Link {
            closed: AtomicBool::new(false),
            #[cfg(feature = "async")]
            wakers: crate::waker::WakerSet::new(),
        }
    }

    /// The subscription is gone.
    pub(crate) fn close(&self) {
        // Relaxed: nothing is published through the flag (# Orderings).
        self.closed.store(true, Ordering::Relaxed);
    }

    /// True once the subscription is gone.
    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: nothing is published through the flag (# Orderings).
        self.closed.load(Ordering::Relaxed)
    }

    /// Clears the flag (a test reuses an outlet).
    #[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
    pub(crate) fn reopen(&self) {
        // Relaxed: as above.
        self.closed.store(false, Ordering::Relaxed);
    }

    /// Wakes a task awaiting the subscription: called by the outlet after
    /// each delivery it sends and when it goes (the channel disconnects).
    #[inline]
    pub(crate) fn wake(&self) {
        #[cfg(feature = "async")]
        self.wakers.wake_all();
    }
}
