//! The dispatcher: what the holder of the hub's dispatcher flag does with
//! one turn, and the state only it touches.
//!
//! Owns: [`Dispatcher`]: the reorder buffer, the dispatcher's view of the
//! shed marks, the outlets of the subscriptions that joined, and the
//! global sequence.
//!
//! Must never: run on two threads at once (the hub's flag sees to that;
//! the state sits behind a mutex only the flag holder locks), wait for a
//! subscriber, or take more than its batch from the inbox in one turn.
//!
//! # A turn
//!
//! 1. If the shed total moved, refresh the view of the marks and skip the
//!    gaps of streams whose slot shed (`reorder.rs`, when 1).
//! 2. Take up to a batch of events from the inbox, then up to a batch of
//!    identities from the shed log (as lost versions), each through the
//!    reorder buffer. Events first: while the inbox is full every publish
//!    sheds, so the log's versions are mostly later than the inbox's.
//! 3. If a stream waits at a gap, skip those in slots that shed that
//!    waited `gap_wait_max` (`reorder.rs`, when 3).
//!
//! 4. Count the skips still held back (below) to the outlets.
//!
//! Everything the reorder buffer releases goes to every outlet in release
//! order: an event is stamped with the next sequence number and offered; a
//! skip is held back until the next event or the end of the turn, so that
//! consecutive skips are counted as one (one lag notice for a run of lost
//! versions), and then counted as missed. New subscribers are adopted
//! before each event and each count of skips, so one whose `subscribe`
//! returned before an item took effect receives it or is told of it.

use super::budget::Budget;
use super::inbox::Inbox;
use super::outlet::Outlet;
#[cfg(all(test, not(stockroom_shuttle)))]
use super::reorder::ReorderTally;
use super::reorder::{Ready, Reorder};
use super::sequenced::Sequenced;
use super::shed::{Shed, ShedMarks, ShedView};
use crate::sync::SegQueue;
use std::time::Instant;

/// The state only the flag holder touches (see the module docs).
pub(crate) struct Dispatcher<E> {
    reorder: Reorder<E>,
    sheds: ShedView,
    fanout: Fanout<E>,
}

/// The outlets and the sequence: where released items go.
struct Fanout<E> {
    /// The last sequence number assigned (0: none yet).
    seq_last: u64,
    /// Versions skipped since the last event went out, not yet counted to
    /// the outlets: consecutive skips (of any SKUs) are counted as one, so
    /// a run of lost versions costs a subscriber one notice, not one each.
    skipped_pending: u64,
    /// One per subscription that has joined and is not yet known gone.
    outlets: Vec<Outlet<E>>,
}

impl<E: Sequenced> Dispatcher<E> {
    /// A dispatcher with nothing parked and no outlet, within `budget`.
    pub(crate) fn new(budget: &Budget) -> Self {
        Self {
            reorder: Reorder::new(budget.reorder_events_max, budget.gap_wait_max),
            sheds: ShedView::new(),
            fanout: Fanout { seq_last: 0, skipped_pending: 0, outlets: Vec::new() },
        }
    }

    /// Starts `sku`'s stream at version `next` (see
    /// [`EventHub::start_stream`](super::hub::EventHub::start_stream)).
    pub(crate) fn start_stream(&mut self, sku: crate::ids::SkuId, next: u64) {
        self.reorder.start_stream(sku, next);
    }

    /// One turn (see the module docs). Returns how many events and shed
    /// identities it took (at most `events_max` of each).
    pub(crate) fn turn(
        &mut self,
        inbox: &Inbox<E>,
        shed_log: &Inbox<Shed>,
        marks: &ShedMarks,
        joining: &SegQueue<Outlet<E>>,
        events_max: usize,
    ) -> usize {
        let Self { reorder, sheds, fanout } = self;
        let mut out = |ready| fanout.emit(ready, joining);
        if sheds.refresh(marks) {
            reorder.skip_shed_gaps(&|sku| sheds.marks(sku), &mut out);
        }
        let taken = inbox.drain(events_max, |event| reorder.accept(event, &|sku| sheds.marks(sku), &mut out));
        let lost = shed_log
            .drain(events_max, |shed| reorder.accept_lost(shed.sku, shed.version, &|sku| sheds.marks(sku), &mut out));
        if reorder.has_gaps() && sheds.any() {
            reorder.expire(Instant::now(), &|sku| sheds.marks(sku), &mut out);
        }
        fanout.flush(joining);
        taken + lost
    }

    /// The last dispatch, when the hub goes: what the inbox holds, then
    /// every parked event, each gap before it skipped (nothing will fill
    /// it now); then every outlet sends what its subscriber missed since
    /// its last event, if anything, and closes.
    pub(crate) fn finish(
        &mut self,
        inbox: &Inbox<E>,
        shed_log: &Inbox<Shed>,
        marks: &ShedMarks,
        joining: &SegQueue<Outlet<E>>,
    ) {
        self.turn(inbox, shed_log, marks, joining, inbox.items_max().max(shed_log.items_max()));
        let Self { reorder, fanout, .. } = self;
        reorder.flush(&mut |ready| fanout.emit(ready, joining));
        fanout.flush(joining);
        for outlet in fanout.outlets.drain(..) {
            outlet.close();
        }
    }

    /// True while some stream waits at a gap that the clock may expire (a
    /// shed happened): what an idle subscriber's pump takes a turn for.
    pub(crate) fn may_expire(&self) -> bool {
        self.reorder.has_gaps() && self.sheds.any()
    }

    /// Outlets of joined subscriptions not yet known gone.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn outlets(&self) -> usize {
        self.fanout.outlets.len()
    }

    /// Events parked in the reorder buffer.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn parked(&self) -> usize {
        self.reorder.parked()
    }

    /// What the reorder buffer dropped or skipped.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn tally(&self) -> ReorderTally {
        self.reorder.tally()
    }
}

impl<E: Sequenced> Fanout<E> {
    /// Hands one released item to every outlet, dropping the outlets of
    /// subscriptions that are gone. A skip is held back and counted with
    /// the skips that follow it, just before the next event or at the end
    /// of the turn ([`flush`](Self::flush)).
    fn emit(&mut self, ready: Ready<E>, joining: &SegQueue<Outlet<E>>) {
        match ready {
            Ready::Skipped { versions, .. } => {
                self.skipped_pending =
                    self.skipped_pending.checked_add(versions).expect("a count of skipped versions about to wrap");
            }
            Ready::Event(mut event) => {
                self.flush(joining);
                self.seq_last = self.seq_last.checked_add(1).expect("the event sequence about to wrap");
                event.set_seq(self.seq_last);
                self.outlets.retain_mut(|outlet| outlet.offer(&event));
            }
        }
    }

    /// Adopts the subscribers that joined, then counts the skips held back
    /// to every outlet (the skips take effect here: a subscriber that
    /// joined before is told of them).
    fn flush(&mut self, joining: &SegQueue<Outlet<E>>) {
        self.adopt(joining);
        let versions = std::mem::take(&mut self.skipped_pending);
        if versions > 0 {
            self.outlets.retain_mut(|outlet| outlet.skipped(versions));
        }
    }

    /// Adopts the subscribers that joined. Bounded by the outlets queued
    /// now (a later push is adopted before the next item).
    fn adopt(&mut self, joining: &SegQueue<Outlet<E>>) {
        for _ in 0..joining.len() {
            match joining.pop() {
                Some(outlet) => self.outlets.push(outlet),
                None => break,
            }
        }
    }
}
