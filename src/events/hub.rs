//! The event hub: a publish/subscribe fan-out that turns per-SKU streams
//! published out of order into ordered, sequenced deliveries, within a
//! fixed memory budget, without ever making a publisher wait. The
//! dispatch is flat combining (Hendler, Incze, Shavit and Tzafrir, 2010)
//! reduced to a try-lock: whoever holds the dispatcher flag drains
//! everybody's events; nobody waits for it.
//!
//! Owns: [`EventHub`] and what its subscriptions share with it (the
//! inbox, the shed marks, the queue of joining subscribers, the dispatcher
//! flag, the dispatcher's state behind its mutex), and the pump loop that
//! takes turns at dispatching.
//!
//! Must never: make [`EventHub::publish`] wait for a subscriber, for a
//! dispatcher or for another publisher; hold more than its [`Budget`]
//! whatever the number of publishing threads; deliver a SKU's versions out
//! of order, twice, or with a gap it does not report; panic on any event
//! or capacity.
//!
//! # Contract
//!
//! The ledger calls [`EventHub::publish`] once per published version, after
//! the compare-and-swap that installed it. Every SKU's stream starts at
//! version 0 (`define_sku` publishes it) and has no gaps, but two versions
//! of one SKU may reach `publish` in either order: the thread whose swap
//! landed first can be preempted before it publishes.
//!
//! 1. **Per-SKU order.** A subscriber receives each SKU's events in
//!    strictly increasing version order, gap-free from the first one it
//!    receives for that SKU, except across a [`Delivery::Lagged`] that
//!    counts the missing versions. The dispatcher parks events ahead of
//!    their SKU's expected version until the gap fills (`reorder.rs`). A
//!    shed event's version comes as its identity and takes its place like
//!    an event, going out as a count of one missed version. A gap the
//!    dispatcher stops waiting for (the reorder budget is full, or a shed
//!    whose identity was lost may be the missing version) is skipped and
//!    counted. Short of that, no gap is skipped: a publisher stalled
//!    between its swap and its publish delays its SKU's later events
//!    (never a command, and never another SKU's events), and loses
//!    nothing. A version that arrives after its gap was skipped is dropped
//!    as late (never delivered out of order, and not counted twice).
//!    Versions below the expected one that no skip explains (duplicates),
//!    a second copy of a parked version and version `u64::MAX` are
//!    rejected: dropped, tallied, never delivered.
//! 2. **Global sequence.** The dispatcher stamps every event it releases
//!    with [`Sequenced::set_seq`]: 1, 2, 3, ... in release order, so `seq`
//!    strictly increases across everything one subscriber receives (with
//!    holes where events were released to others or missed).
//! 3. **Bounded memory, whatever the number of publishers.** The inbox
//!    holds at most `inbox_events_max` events: a publisher that finds it
//!    full sheds its event instead of queueing it: drops it and queues its
//!    identity (16 bytes) in the shed log, which holds at most
//!    `shed_log_max`; past that it marks the SKU's slot in a fixed table
//!    (`shed.rs`). The reorder buffer parks at most `reorder_events_max`.
//!    Each subscription's channel holds at most its capacity plus one lag
//!    notice, allocated as events arrive. See `budget.rs` for the whole
//!    budget.
//! 4. **Exact loss counts.** Every release and every skip happens at one
//!    point of the dispatch order, and every subscription that had joined
//!    by then gets the event, or counts it as missed (its channel was
//!    full), or counts the skipped or lost versions. The count goes out as
//!    `Lagged { missed }` before the next event that fits the channel, and,
//!    for skipped or lost versions, at once if the channel has room (a
//!    shed can be the last change of its SKU for a long time, a sold-out
//!    for instance). A shed whose identity was logged is counted where its
//!    version falls, even as its SKU's latest version. One whose identity
//!    was lost too (the shed log was full) is counted when its gap is
//!    skipped, once its SKU's next version reaches the dispatcher; as its
//!    SKU's latest version it is not yet a gap, and is counted once the SKU
//!    changes again. So for a subscription present from the start, received
//!    events plus the `missed` counts equal the versions published, once
//!    the hub is dropped (which releases everything and sends each
//!    subscription its last count), provided no shed identity was lost or
//!    every SKU changed after its last lost one.
//! 5. **Slow subscribers never block publishing.** An event that finds a
//!    subscription's channel full is dropped for that subscriber alone and
//!    counted (point 4). A dropped [`Subscription`] is removed at the next
//!    release.
//! 6. **Nothing stranded.** An event is dispatched by the `publish` that
//!    pushed it or by a concurrent one: the dispatcher re-checks the inbox,
//!    the shed log and the shed total after giving up the flag (see
//!    # Orderings), so an event or an identity pushed, or a shed marked,
//!    while another thread held the flag is never left behind by that
//!    race. One call takes at most [`DISPATCH_BATCH_MAX`] inbox events and
//!    as many shed identities (plus the parked successors each one
//!    releases: amortized, every version is parked and released once);
//!    what a call leaves is dispatched by the next `publish` or by any
//!    subscriber's `recv`, `try_recv`, `recv_timeout` or `try_iter`, which
//!    pump the hub the same way whenever their own channel is empty (and
//!    take a turn even with nothing queued while a stream waits at a gap
//!    the clock may expire, so that an idle subscriber's pumps do it). A
//!    blocked `recv` pumps again at least every
//!    [`PUMP_INTERVAL_MAX`](super::budget::PUMP_INTERVAL_MAX). When the hub
//!    is dropped, everything queued is dispatched, every parked version
//!    released (its gap skipped and counted) and every subscription sent
//!    its last count; subscribers then drain what they were sent and see
//!    `Disconnected`.
//! 7. **Concurrency.** Subscribing, dropping a subscription and publishing
//!    may all race. `publish` takes no lock that another thread could hold:
//!    the inbox's and the shed log's claims and the shed marks are single
//!    read-modify-writes, the
//!    dispatcher flag is a try-lock (a publisher that finds it taken
//!    returns), the dispatcher's state sits behind a mutex that only the
//!    flag holder ever locks (so it is never contended), and a new
//!    subscriber joins through a lock-free queue the dispatcher adopts from
//!    before each released item. One residual wait is crossbeam's, not
//!    ours: `SegQueue::pop` (and `push`, at a block boundary) snoozes while
//!    a concurrent `push` sits between claiming its slot and writing it, a
//!    window of a few instructions with no lock in it.
//!
//! # Orderings
//!
//! Four things are ordered here.
//!
//! 1. *The work against the flag (store buffering).* A publisher does
//!    `push(e)` (into the inbox, or its identity into the shed log) or
//!    `mark(sku)`, then `fence(SeqCst); load(flag)`; a dispatcher ending
//!    its turn does `store(flag, false); fence(SeqCst);` then reads both
//!    queues (`is_empty`) and the shed total. The two sequentially
//!    consistent fences are totally ordered. If the publisher's comes
//!    first, the dispatcher's reads see the push (the queue's tail index at
//!    or after it) or the shed total's bump: it takes
//!    another turn, or finds the flag re-taken by a newer dispatcher, to
//!    which the same argument applies. If the dispatcher's fence comes
//!    first, the publisher's flag load reads that `false` or a later value:
//!    it takes the turn itself, or the flag was re-taken by a newer
//!    dispatcher, to which the argument applies (a compare-and-swap that
//!    fails after the load saw `false` read the `true` of such a newer
//!    dispatcher: it always reads the latest value). The flag load and the
//!    total's read may be Relaxed: the fence-to-fence rule of the C++/Rust
//!    model orders any atomic access after one fence against one before
//!    the other. So the last dispatcher to release the flag finds no work
//!    left, or leaves some only because its budget is spent (point 6 of the
//!    contract). With Acquire/Release alone both sides may read stale
//!    values (the publisher sees `true`, the dispatcher sees no work) and
//!    `e` waits for the next publish. For the queues the argument needs only
//!    that `push` writes the queue's tail index and `is_empty` reads it:
//!    true of crossbeam's `SegQueue`; the checkers' stand-in
//!    (`crate::sync`) is a mutex, which orders even more.
//! 2. *One turn against the next.* The flag is taken by compare-and-swap
//!    (false to true), Acquire on success, which pairs with the Release
//!    store that ended the previous turn, so a new dispatcher sees the
//!    dispatcher's state as the previous one left it (the uncontended mutex
//!    around that state orders it too; the flag does not rely on it). A
//!    compare-and-swap rather than a swap: a failed attempt writes nothing
//!    (no store to the shared line while someone dispatches), and loom 0.7
//!    lets another thread's store slip between the read and the write of a
//!    swap (tokio-rs/loom#254), which made it report strandings this
//!    protocol cannot produce.
//! 3. *`waiting`* (a stream waits at a gap the clock may expire, as the
//!    last turn left it) is Relaxed: a hint that lets an idle subscriber's
//!    pump take a turn to expire gaps. A stale `false` costs that pump's turn (the next one
//!    takes it); a stale `true` costs one empty turn.
//! 4. *Tallies* (`subscribers`) are Relaxed counters that no decision is
//!    ordered against. The inbox, the shed marks and the outlets argue
//!    their own orderings in their files.

use super::budget::{Budget, DISPATCH_BATCH_MAX, SUBSCRIPTION_CAPACITY_MAX};
use super::dispatch::Dispatcher;
use super::inbox::Inbox;
use super::link::Link;
use super::outlet::Outlet;
use super::sequenced::Sequenced;
use super::shed::{Shed, ShedMarks};
use super::subscription::{Pump, Subscription};
use crate::ids::SkuId;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering, SegQueue, Weak, fence};
use crossbeam::channel;
use std::fmt;

#[cfg(doc)]
use super::subscription::Delivery;

/// The delivery engine (see the module docs).
pub(crate) struct EventHub<E: Sequenced> {
    shared: Arc<Shared<E>>,
}

/// What the hub and its subscriptions share. Subscriptions hold it weakly:
/// dropping the hub drops this (after a final dispatch), which drops every
/// channel's sender and so disconnects the subscriptions.
struct Shared<E: Sequenced> {
    /// Published events not yet taken by a dispatcher, within the budget.
    inbox: Inbox<E>,
    /// Identities of the events publishers shed, within the budget.
    shed_log: Inbox<Shed>,
    /// Where publishers mark the events they shed when the shed log is
    /// full too.
    marks: ShedMarks,
    /// New subscribers' outlets, adopted by the dispatcher before each
    /// item it releases.
    joining: SegQueue<Outlet<E>>,
    /// The dispatcher flag: true while one thread is dispatching.
    dispatching: AtomicBool,
    /// True if, when the last turn ended, a stream waited at a gap that the
    /// clock may expire.
    waiting: AtomicBool,
    /// The dispatcher's state. Locked only by the holder of `dispatching`
    /// (and by the final dispatch in `drop`, which is exclusive), so the
    /// lock is never contended: it is how safe Rust spells "owned by the
    /// flag holder".
    dispatcher: Mutex<Dispatcher<E>>,
    /// Live `Subscription` handles.
    subscribers: AtomicUsize,
}

impl<E: Sequenced> EventHub<E> {
    /// A hub with no subscribers and nothing published, within the shipped
    /// budget.
    pub(crate) fn new() -> Self {
        Self::with_budget(Budget::DEFAULT)
    }

    /// A hub within `budget`.
    pub(crate) fn with_budget(budget: Budget) -> Self {
        let shared = Shared {
            inbox: Inbox::new(budget.inbox_events_max),
            shed_log: Inbox::new(budget.shed_log_max),
            marks: ShedMarks::new(),
            joining: SegQueue::new(),
            dispatching: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            dispatcher: Mutex::new(Dispatcher::new(&budget)),
            subscribers: AtomicUsize::new(0),
        };
        Self { shared: Arc::new(shared) }
    }

    /// Hands `event` to every subscriber, in order for its SKU.
    ///
    /// Never blocks, never waits for a subscriber, a dispatcher or another
    /// publisher; lock-free. Queues the event in the inbox, or, if the inbox
    /// is full, sheds it: drops it and queues its identity in the shed log
    /// (so subscribers are told of it, in its place), or, if that is full
    /// too, marks its SKU's slot. Then dispatches up to
    /// [`DISPATCH_BATCH_MAX`] inbox events if no other thread is
    /// dispatching (if one is, it will dispatch this event).
    pub(crate) fn publish(&self, event: E) {
        if let Err(event) = self.shared.inbox.push(event) {
            let shed = Shed { sku: event.sku(), version: event.version() };
            drop(event);
            if self.shared.shed_log.push(shed).is_err() {
                self.shared.marks.mark(shed.sku);
            }
        }
        self.shared.pump_up_to(DISPATCH_BATCH_MAX, false);
    }

    /// Starts `sku`'s stream at version `next` instead of 0: for a SKU
    /// restored at version `next - 1`, before anything about it is
    /// published.
    pub(crate) fn start_stream(&self, sku: SkuId, next: u64) {
        self.shared.dispatcher.lock().start_stream(sku, next);
    }

    /// A new subscriber; it receives every event released after it
    /// subscribed (every event published after this returns, at least), or
    /// is told it missed it.
    ///
    /// `capacity`: how many events its channel buffers before events are
    /// dropped for it and counted ([`Delivery::Lagged`]); the caller
    /// validates `>= 1`. 0 is taken as 1, and anything above
    /// [`SUBSCRIPTION_CAPACITY_MAX`] as that. Nothing is allocated for the
    /// channel until events arrive.
    pub(crate) fn subscribe(&self, capacity: usize) -> Subscription<E> {
        let capacity = capacity.clamp(1, SUBSCRIPTION_CAPACITY_MAX);
        let (sender, receiver) = channel::unbounded();
        let closed = Arc::new(Link::new());
        // Relaxed: a tally for `subscribers()` (# Orderings, point 4).
        self.shared.subscribers.fetch_add(1, Ordering::Relaxed);
        self.shared.joining.push(Outlet::new(sender, capacity, Arc::clone(&closed)));
        let hub: Weak<Shared<E>> = Arc::downgrade(&self.shared);
        Subscription::new(receiver, hub, closed)
    }

    /// How many `Subscription`s are alive.
    pub(crate) fn subscribers(&self) -> usize {
        // Relaxed: a tally (# Orderings, point 4).
        self.shared.subscribers.load(Ordering::Relaxed)
    }

    /// How many published events were shed at the full inbox with their
    /// identity lost too (the shed log was full). Shed events whose
    /// identity was logged are tallied by the reorder buffer, as lost.
    pub(crate) fn shed_unlogged(&self) -> u64 {
        self.shared.marks.total()
    }
}

impl<E: Sequenced> Default for EventHub<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Sequenced> fmt::Debug for EventHub<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHub")
            .field("subscribers", &self.subscribers())
            .field("shed_unlogged", &self.shed_unlogged())
            .finish_non_exhaustive()
    }
}

impl<E: Sequenced> Shared<E> {
    /// Takes dispatcher turns while there is work, the flag is free and
    /// `budget` lasts. Work is an event in the inbox or a shed no turn has
    /// acted on; with `gaps_too`, also (for the first turn only) a stream
    /// waiting at a gap. Every turn spends at least one unit of budget, so
    /// the loop runs at most `budget` times.
    fn pump_up_to(&self, budget: usize, gaps_too: bool) {
        let mut budget = budget;
        let mut gaps_too = gaps_too;
        while budget > 0 {
            // SeqCst: pairs with this same fence in the other threads that
            // pump. Before the first turn it orders our push or shed mark
            // (in `publish`) before the flag load below; after a turn it
            // orders the flag's release before the re-check (# Orderings,
            // point 1).
            fence(Ordering::SeqCst);
            // Relaxed: a hint (# Orderings, point 3).
            let gaps = gaps_too && self.waiting.load(Ordering::Relaxed);
            if self.inbox.is_empty() && self.shed_log.is_empty() && !self.marks.unabsorbed() && !gaps {
                return;
            }
            // Relaxed: test before test-and-set, to spare the flag's cache
            // line a compare-and-swap while someone dispatches; the fence
            // above orders it against that dispatcher's release
            // (# Orderings, point 1).
            if self.dispatching.load(Ordering::Relaxed) {
                return;
            }
            // Acquire on success: pairs with the Release store that ended
            // the previous turn, so its dispatcher state is visible
            // (# Orderings, point 2). Relaxed on failure: a lost race reads
            // nothing through the flag; the winner re-checks for us.
            if self.dispatching.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
                return;
            }
            gaps_too = false;
            let taken = self.turn(budget);
            budget = budget.saturating_sub(taken.max(1));
            // Release: pairs with the Acquire compare-and-swap that starts
            // the next turn (# Orderings, point 2); the fence at the top of
            // the loop then orders this store before the re-check (point 1).
            self.dispatching.store(false, Ordering::Release);
        }
    }

    /// One dispatcher turn, taking at most `budget` inbox events. Returns
    /// how many it took. The caller holds the flag.
    fn turn(&self, budget: usize) -> usize {
        let Some(mut dispatcher) = self.dispatcher.try_lock() else {
            // Only the flag holder locks the state: a contended lock means
            // two threads hold the flag, a bug in the protocol above.
            debug_assert!(false, "the dispatcher state is locked, yet this thread holds the flag");
            return 0;
        };
        let taken = dispatcher.turn(&self.inbox, &self.shed_log, &self.marks, &self.joining, budget);
        // Relaxed: a hint for idle pumps (# Orderings, point 3).
        self.waiting.store(dispatcher.may_expire(), Ordering::Relaxed);
        taken
    }
}

impl<E: Sequenced> Pump for Shared<E> {
    fn pump(&self) {
        self.pump_up_to(DISPATCH_BATCH_MAX, true);
    }

    fn unsubscribed(&self) {
        // Relaxed: a tally (# Orderings, point 4).
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<E: Sequenced> Drop for Shared<E> {
    /// The final dispatch: nothing can publish or pump any more (this is
    /// the last reference), so everything left is released while the
    /// channels are still connected.
    fn drop(&mut self) {
        self.dispatcher.lock().finish(&self.inbox, &self.shed_log, &self.marks, &self.joining);
    }
}

/// What the tests and the loom models look at, or arrange, without
/// pumping.
#[cfg(all(test, not(stockroom_shuttle)))]
impl<E: Sequenced> EventHub<E> {
    /// Events in the inbox and identities in the shed log, not yet taken
    /// by a dispatcher.
    pub(crate) fn pending(&self) -> usize {
        self.shared.inbox.len() + self.shared.shed_log.len()
    }

    /// True if a shed happened that no turn has acted on.
    pub(crate) fn shed_unabsorbed(&self) -> bool {
        self.shared.marks.unabsorbed()
    }

    /// Outlets the dispatcher holds (joined ones) plus those waiting to
    /// join. Only meaningful while no one dispatches.
    pub(crate) fn outlets(&self) -> usize {
        self.shared.dispatcher.lock().outlets() + self.shared.joining.len()
    }

    /// Events parked in the reorder buffer. Only meaningful while no one
    /// dispatches.
    pub(crate) fn parked(&self) -> usize {
        self.shared.dispatcher.lock().parked()
    }

    /// What the reorder buffer dropped or skipped. Only meaningful while no
    /// one dispatches.
    pub(crate) fn tally(&self) -> super::reorder::ReorderTally {
        self.shared.dispatcher.lock().tally()
    }
}

/// What only the unit tests arrange.
#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
impl<E: Sequenced> EventHub<E> {
    /// Holds (or frees) the dispatcher flag as a descheduled dispatcher
    /// would: while it is held, `publish` queues or sheds and returns.
    pub(crate) fn stall_dispatch(&self, stalled: bool) {
        // SeqCst: test setup, ordered against everything.
        self.shared.dispatching.store(stalled, Ordering::SeqCst);
    }

    /// Pumps as a subscriber's receive does.
    pub(crate) fn pump(&self) {
        Pump::pump(&*self.shared);
    }

    /// Queues `event` in the inbox without pumping, as if its publisher
    /// were preempted between its push and its pump. False if the inbox
    /// is full.
    pub(crate) fn push_only(&self, event: E) -> bool {
        self.shared.inbox.push(event).is_ok()
    }
}
