//! An outlet: the dispatcher's end of one subscription, and the lag
//! policy that keeps its channel within the subscription's capacity.
//!
//! Owns: [`Outlet`]: the sending half of the subscription's channel, its
//! capacity, the count of events missed since the last delivery, and the
//! subscription's `closed` flag.
//!
//! Must never: wait for the subscriber, buffer more than `capacity`
//! events plus one lag notice (plus a last notice when the hub goes),
//! allocate room before events arrive (the
//! channel is crossbeam's unbounded list flavour, which allocates blocks
//! of 31 slots as they fill and frees them as they are read; this file
//! provides the bound), or lose count of what it dropped.
//!
//! # Orderings
//!
//! The `closed` flag is Relaxed: nothing is published through it. A
//! dispatcher that reads it late offers one more event to a channel whose
//! receiver is gone; the send reports the disconnection (or the event is
//! counted as missed by a subscriber that no longer exists), and the outlet
//! goes at the next dispatch.

use super::link::Link;
use super::subscription::Delivery;
use crate::sync::Arc;
use crossbeam::channel::Sender;

/// The dispatcher's end of one subscription (see the module docs).
pub(crate) struct Outlet<E> {
    sender: Sender<Delivery<E>>,
    /// Events the subscriber may have buffered; the channel holds one more
    /// delivery at most, a lag notice.
    capacity: usize,
    /// Events dropped or skipped since the last one delivered.
    missed: u64,
    /// Closed when the `Subscription` is dropped; woken after each send.
    closed: Arc<Link>,
}

impl<E: Clone> Outlet<E> {
    /// An outlet sending into `sender` (an unbounded channel: this outlet
    /// bounds it to `capacity` events, at least 1).
    pub(crate) fn new(sender: Sender<Delivery<E>>, capacity: usize, closed: Arc<Link>) -> Self {
        assert!(capacity >= 1, "a subscription that can hold nothing");
        Self { sender, capacity, missed: 0, closed }
    }

    /// Offers `event` to the subscriber; false if the subscription is gone.
    ///
    /// The lag policy: the event goes in only if fewer than `capacity`
    /// deliveries are buffered, preceded by `Lagged { missed }` when events
    /// were missed since the last one that went in (the channel's one
    /// extra delivery). Otherwise it is dropped and counted. The
    /// dispatcher is the channel's only sender, so the buffered count can
    /// only shrink between the check and the send.
    pub(crate) fn offer(&mut self, event: &E) -> bool {
        if self.is_closed() {
            return false;
        }
        if self.sender.len() >= self.capacity {
            self.count_missed(1);
            return true;
        }
        if self.missed > 0 {
            // Unbounded: a send fails only when the receiver is gone.
            if self.sender.send(Delivery::Lagged { missed: self.missed }).is_err() {
                return false;
            }
            self.missed = 0;
        }
        let sent = self.sender.send(Delivery::Event(event.clone())).is_ok();
        debug_assert!(self.sender.len() <= self.capacity + 1, "an outlet over its capacity");
        self.closed.wake();
        sent
    }

    /// Counts `versions` skipped by the reorder buffer as missed; false if
    /// the subscription is gone.
    ///
    /// The notice goes out at once if the channel has room for it and for
    /// one more event (so an event released right after the skip still
    /// fits as it would have): a skip can be the last thing that happens to
    /// a SKU for a long time (its latest version was shed), and its
    /// subscribers must not have to wait for some other event to learn of
    /// it. Otherwise it waits, like any count, for the next event that
    /// fits.
    pub(crate) fn skipped(&mut self, versions: u64) -> bool {
        if self.is_closed() {
            return false;
        }
        self.count_missed(versions);
        if self.sender.len() + 1 < self.capacity {
            // Unbounded: a send fails only when the receiver is gone.
            if self.sender.send(Delivery::Lagged { missed: self.missed }).is_err() {
                return false;
            }
            self.missed = 0;
            self.closed.wake();
        }
        true
    }

    /// The hub is going away: tells the subscriber what it missed since
    /// its last event, if anything, so that nothing missed goes
    /// unreported. The one delivery beyond the capacity an outlet ever
    /// sends (a last notice, when the channel is full).
    pub(crate) fn close(mut self) {
        if self.missed > 0 && !self.is_closed() {
            // A receiver that is gone has nothing to be told.
            let _ = self.sender.send(Delivery::Lagged { missed: self.missed });
            self.missed = 0;
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.is_closed()
    }

    fn count_missed(&mut self, events: u64) {
        self.missed = self.missed.checked_add(events).expect("a subscriber's missed count about to wrap");
    }
}

impl<E> Drop for Outlet<E> {
    /// The channel disconnects with the sender: a task awaiting the
    /// subscription must look again to see it.
    fn drop(&mut self) {
        self.closed.wake();
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;
    use crossbeam::channel;

    #[test]
    fn the_channel_holds_capacity_events_plus_the_notice() {
        let (sender, receiver) = channel::unbounded();
        let closed = Arc::new(Link::new());
        let mut outlet = Outlet::new(sender, 2, Arc::clone(&closed));
        assert!(outlet.offer(&1) && outlet.offer(&2) && outlet.offer(&3));
        assert!(outlet.skipped(4), "no room for the notice and an event: it waits");
        assert_eq!(receiver.try_iter().take(1).collect::<Vec<_>>(), [Delivery::Event(1)]);
        assert!(outlet.offer(&8));
        assert_eq!(receiver.len(), 3, "one event buffered, the notice and the new event");
        assert_eq!(
            receiver.try_iter().collect::<Vec<_>>(),
            [Delivery::Event(2), Delivery::Lagged { missed: 5 }, Delivery::Event(8)]
        );
        // With room, a skip's notice goes out at once.
        let (sender, roomy_receiver) = channel::unbounded();
        let mut roomy = Outlet::new(sender, 4, Arc::new(Link::new()));
        assert!(roomy.offer(&1) && roomy.skipped(2) && roomy.offer(&4));
        assert_eq!(
            roomy_receiver.try_iter().collect::<Vec<_>>(),
            [Delivery::Event(1), Delivery::Lagged { missed: 2 }, Delivery::Event(4)]
        );
        closed.close();
        assert!(!outlet.offer(&9) && !outlet.skipped(1), "a closed subscription's outlet goes");
        drop(receiver);
        closed.reopen();
        assert!(!outlet.offer(&10), "so does one whose receiver is gone");
    }
}
