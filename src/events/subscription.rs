//! The subscriber's side: [`Subscription`], the receiving end of one
//! subscription, and the [`Delivery`] items it yields.
//!
//! Owns: the receiving half of the subscription's channel, its weak handle
//! on the hub (through [`Pump`], so the public type does not name the
//! hub's event bound), and the `closed` flag it sets when dropped.
//!
//! Must never: keep the hub alive (the handle is weak: dropping the ledger
//! disconnects its subscriptions), or wait without a bound between two
//! pumps.
//!
//! # Orderings
//!
//! The `closed` flag is Relaxed, as in `outlet.rs`: nothing is published
//! through it.

use super::budget::{PUMP_INTERVAL_MAX, PUMP_INTERVAL_MIN};
use super::error::{RecvError, RecvTimeoutError, TryRecvError};
use super::link::Link;
use crate::sync::{Arc, Weak};
use crossbeam::channel::{self, Receiver, RecvTimeoutError as ChannelTimeout};
use std::fmt;
use std::time::{Duration, Instant};

/// One item a [`Subscription`] receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery<E> {
    /// An event, in order for its SKU and stamped with the hub's global
    /// sequence number.
    Event(E),
    /// This many events were missed since what the subscription received
    /// last: its channel was full, or the hub shed them to stay within its
    /// memory budget. The next event of a SKU that lost events may
    /// therefore skip versions.
    Lagged {
        /// How many events were missed, exactly.
        missed: u64,
    },
}

/// What a subscription needs from its hub, without naming the event bound
/// in the public type.
pub(crate) trait Pump: Send + Sync {
    /// Dispatches up to a batch of inbox events, if no one else is; when
    /// the inbox is empty, still takes one turn if a stream waits at a gap
    /// (so an idle subscriber's pumps age it).
    fn pump(&self);
    /// A subscription handle was dropped.
    fn unsubscribed(&self);
}

/// The receiving end of an event subscription: a channel the hub
/// dispatches into, bounded by the subscription's capacity and allocated
/// as events arrive.
///
/// Every receive first takes what is ready; when nothing is, it also
/// dispatches pending events itself (the hub has no thread of its own), so
/// events never stay undelivered because publishers went quiet.
///
/// Per SKU, events arrive in strictly increasing version order with no
/// gaps, except after a [`Delivery::Lagged`]: that many events were missed,
/// because the channel was full or because the hub shed them to stay
/// within its memory budget. Every event carries the
/// hub's global sequence number, which strictly increases across
/// everything one subscription receives.
///
/// Dropping the subscription unsubscribes. When the hub is dropped, the
/// subscription yields what was sent to it and then reports
/// `Disconnected`.
pub struct Subscription<E> {
    pub(super) receiver: Receiver<Delivery<E>>,
    hub: Weak<dyn Pump>,
    pub(super) closed: Arc<Link>,
}

impl<E> Subscription<E> {
    /// The receiving end for `receiver`, pumping `hub` while it is alive;
    /// `closed` is shared with the subscription's outlet.
    pub(crate) fn new(receiver: Receiver<Delivery<E>>, hub: Weak<dyn Pump>, closed: Arc<Link>) -> Self {
        Self { receiver, hub, closed }
    }

    /// Blocks until a delivery is ready, or the hub is gone and everything
    /// it sent has been received.
    ///
    /// While it waits it dispatches pending events itself, at least every
    /// 16 ms. Like any blocking receive it may wait forever if nothing is
    /// ever published; each wait is bounded.
    pub fn recv(&self) -> Result<Delivery<E>, RecvError> {
        let mut interval = PUMP_INTERVAL_MIN;
        loop {
            match self.try_recv() {
                Ok(delivery) => return Ok(delivery),
                Err(TryRecvError::Disconnected) => return Err(RecvError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            match self.receiver.recv_timeout(interval) {
                Ok(delivery) => return Ok(delivery),
                Err(ChannelTimeout::Disconnected) => return Err(RecvError::Disconnected),
                Err(ChannelTimeout::Timeout) => interval = (interval * 2).min(PUMP_INTERVAL_MAX),
            }
        }
    }

    /// Returns a delivery if one is ready now (after dispatching pending
    /// events if none was); never blocks.
    pub fn try_recv(&self) -> Result<Delivery<E>, TryRecvError> {
        match self.receiver.try_recv() {
            Ok(delivery) => return Ok(delivery),
            Err(channel::TryRecvError::Disconnected) => return Err(TryRecvError::Disconnected),
            Err(channel::TryRecvError::Empty) => {}
        }
        self.pump();
        self.receiver.try_recv().map_err(|error| match error {
            channel::TryRecvError::Empty => TryRecvError::Empty,
            channel::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery<E>, RecvTimeoutError> {
        let started = Instant::now();
        let mut interval = PUMP_INTERVAL_MIN;
        loop {
            match self.try_recv() {
                Ok(delivery) => return Ok(delivery),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
            match self.receiver.recv_timeout(interval.min(left)) {
                Ok(delivery) => return Ok(delivery),
                Err(ChannelTimeout::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(ChannelTimeout::Timeout) => interval = (interval * 2).min(PUMP_INTERVAL_MAX),
            }
        }
    }

    /// An iterator over the deliveries ready now, after one dispatch of
    /// pending events; it never blocks and ends when the channel is empty.
    pub fn try_iter(&self) -> impl Iterator<Item = Delivery<E>> + '_ {
        self.pump();
        self.receiver.try_iter()
    }

    /// Deliveries buffered in the channel now (not counting events still
    /// waiting to be dispatched).
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// True when no delivery is buffered in the channel now.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// Dispatches pending events if the hub still exists.
    fn pump(&self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.pump();
        }
    }
}

impl<E> Drop for Subscription<E> {
    fn drop(&mut self) {
        self.closed.close();
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribed();
        }
    }
}

impl<E> fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("buffered", &self.receiver.len())
            .field("hub_alive", &(self.hub.strong_count() > 0))
            .finish_non_exhaustive()
    }
}

/// Only the loom models look at the channel without dispatching.
#[cfg(all(test, stockroom_loom))]
impl<E> Subscription<E> {
    /// What is buffered in the channel, without dispatching anything.
    pub(crate) fn buffered(&self) -> Vec<Delivery<E>> {
        self.receiver.try_iter().collect()
    }
}
