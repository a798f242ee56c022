//! The inbox: a queue between the publishers and the dispatcher that never
//! holds more than a fixed number of items. The hub has two: published
//! events, and the identities of the events shed when the first was full.
//!
//! Owns: the queue and the claim count that bounds it.
//!
//! Must never: block or wait (every operation is lock-free: a claim is one
//! read-modify-write, the queue is crossbeam's `SegQueue`), or hold more
//! than its `items_max`: a push that finds it full hands the item back
//! (the publisher sheds it, or falls back to marking it) and changes
//! nothing.
//!
//! # The bound
//!
//! A push claims a place first (`fetch_add` on `claimed`) and pushes only
//! if fewer than `items_max` places were claimed before it; a drain gives
//! back the places of the items it popped, after popping them. Every
//! item in the queue therefore holds a claim for its whole stay, and
//! successful claims outstanding never exceed `items_max`: the queue
//! never holds more, whatever the number of threads pushing. A refused
//! push holds its claim for the two instructions between its `fetch_add`
//! and its `fetch_sub`, so a push may be refused while the queue is a few
//! places short of full (at most one place per publisher being refused at
//! that instant), never admitted past it.
//!
//! # Orderings
//!
//! `claimed` is Relaxed everywhere: it publishes nothing (each item
//! reaches the dispatcher through the queue, whose push and pop order the
//! item's contents), and the counting argument above needs only that the
//! claims and the give-backs are read-modify-writes of one location, which
//! are totally ordered whatever their ordering. A give-back follows the
//! pops it pays for, and each pop follows its push (the queue orders
//! them), which follows its claim: so a give-back never precedes the claim
//! it returns, which the drain asserts.

use crate::sync::{AtomicUsize, Ordering, SegQueue};

/// Claims in flight beyond `items_max` are one per thread being refused
/// at that instant; far more means the count is corrupt (or about to
/// wrap), which is a bug to stop at.
const CLAIMS_SANE_MAX: usize = usize::MAX / 2;

/// A bounded multi-producer queue (see the module docs).
pub(crate) struct Inbox<T> {
    queue: SegQueue<T>,
    /// Places claimed: items in the queue, plus pushes about to push or
    /// about to give up.
    claimed: AtomicUsize,
    /// The bound.
    items_max: usize,
}

impl<T> Inbox<T> {
    /// An empty inbox that holds at most `items_max` items (at least 1).
    pub(crate) fn new(items_max: usize) -> Self {
        assert!(items_max >= 1, "an inbox that holds nothing");
        Self { queue: SegQueue::new(), claimed: AtomicUsize::new(0), items_max }
    }

    /// Queues `item`, or hands it back if the inbox is full. Lock-free,
    /// never waits.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        // Relaxed: a count that publishes nothing (# Orderings).
        let claimed = self.claimed.fetch_add(1, Ordering::Relaxed);
        assert!(claimed < CLAIMS_SANE_MAX, "inbox claims corrupt: {claimed}");
        if claimed >= self.items_max {
            // Relaxed: gives back the claim just taken (# Orderings).
            self.claimed.fetch_sub(1, Ordering::Relaxed);
            return Err(item);
        }
        self.queue.push(item);
        Ok(())
    }

    /// Pops up to `items_max` items, oldest first, handing each to
    /// `take`; then gives their places back. Returns how many it popped.
    pub(crate) fn drain(&self, items_max: usize, mut take: impl FnMut(T)) -> usize {
        let mut popped = 0;
        while popped < items_max {
            let Some(item) = self.queue.pop() else {
                break;
            };
            popped += 1;
            take(item);
        }
        if popped > 0 {
            // Relaxed: gives back the places of items already popped
            // (# Orderings).
            let claimed = self.claimed.fetch_sub(popped, Ordering::Relaxed);
            assert!(claimed >= popped, "gave back {popped} places of {claimed} claimed");
        }
        popped
    }

    /// True if no item is queued now. Reads the queue itself (its tail
    /// index), not the claims: the hub's re-check argument relies on that.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events queued now.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The bound this inbox enforces.
    pub(crate) fn items_max(&self) -> usize {
        self.items_max
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::thread;

    #[test]
    fn a_full_inbox_hands_the_event_back_and_a_drain_makes_room() {
        let inbox = Inbox::new(3);
        for item in 0..3 {
            assert_eq!(inbox.push(item), Ok(()));
        }
        assert_eq!(inbox.push(3), Err(3), "full: handed back");
        assert_eq!(inbox.len(), 3);
        let mut taken = Vec::new();
        assert_eq!(inbox.drain(2, |item| taken.push(item)), 2);
        assert_eq!(taken, [0, 1]);
        assert_eq!(inbox.push(4), Ok(()));
        assert_eq!(inbox.push(5), Ok(()));
        assert_eq!(inbox.push(6), Err(6));
        assert_eq!(inbox.drain(10, |item| taken.push(item)), 3);
        assert_eq!(taken, [0, 1, 2, 4, 5]);
        assert!(inbox.is_empty());
        assert_eq!(inbox.drain(10, |_| unreachable!("empty")), 0);
    }

    /// Many threads pushing at once into a small inbox nobody drains:
    /// exactly `items_max` pushes succeed, whatever the interleaving.
    #[test]
    fn racing_pushes_never_admit_more_than_the_bound() {
        const THREADS: usize = 8;
        const PUSHES: usize = 1_000;
        for items_max in [1, 7, 64] {
            let inbox = Arc::new(Inbox::new(items_max));
            let start = Arc::new(Barrier::new(THREADS));
            let admitted: usize = (0..THREADS)
                .map(|_| {
                    let (inbox, start) = (Arc::clone(&inbox), Arc::clone(&start));
                    thread::spawn(move || {
                        start.wait();
                        (0..PUSHES).filter(|&item| inbox.push(item).is_ok()).count()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|pusher| pusher.join().expect("pusher"))
                .sum();
            assert_eq!(admitted, items_max);
            assert_eq!(inbox.len(), items_max);
        }
    }
}
