//! Orders: several reservations, one per SKU, that commit, release and
//! extend as one unit.
//!
//! Owns: the `OrderBook` (every order the ledger made, finished ones for
//! a bounded while), and the order commands on [`Ledger`](crate::Ledger)
//! ([`allocate_order`](crate::Ledger::allocate_order),
//! [`commit_order`](crate::Ledger::commit_order),
//! [`release_order`](crate::Ledger::release_order),
//! [`extend_order`](crate::Ledger::extend_order), [`order`](crate::Ledger::order)).
//!
//! Must never: change stock except through the parts' own SKU changes, or
//! leave an order half done. Each part is an ordinary reservation marked
//! with its order: only its order's commands end or extend it (a command
//! on the reservation alone is refused with `OrderPart`), so within the
//! order's own phase (see `record`) nobody else can end a part — except
//! time and the physical world:
//!
//! - **Time.** A commit first *pins* every part that has a deadline: one
//!   change per part that takes its deadline away (`Change::Pinned`), so
//!   no lapse can take it from then on. A part that already lapsed (or
//!   lost units to a shrink, or is a backorder still waiting) stops the
//!   commit: the parts pinned so far get their deadline back (another
//!   `Pinned` change each; a deadline that has passed meanwhile lapses at
//!   the next look, as it would have), the order is live again, and the
//!   error names the part. Once every part is pinned, each is committed.
//! - **The physical world.** A shrink is never refused: one that lands on
//!   a pinned part after its pin is applied as on any hold (re-sourced,
//!   else shorted), and the part's commit then commits what it holds.
//!
//! What a concurrent observer can see: orders are not a cross-SKU atomic
//! snapshot. Each part's changes are ordinary changes of its SKU, in that
//! SKU's order; between the first and the last of an order's changes an
//! observer may see some parts pinned or committed and others not yet.
//! [`Ledger::order`](crate::Ledger::order) says `Busy` meanwhile. The order's outcome is all or
//! nothing: either every part commits, or none does and the error says
//! which part stopped it. Allocation is all or nothing the same way
//! (parts made so far are released if a later SKU cannot cover its lines);
//! a competing request may be refused for units a failing order held for
//! that moment.

#[cfg(all(test, stockroom_loom))]
mod loom;
mod ops;
pub(crate) mod record;
mod types;

pub use types::{
    OrderChangeError, OrderCommitted, OrderExtended, OrderReleased, OrderState, OrderStatus, PartFailure, PartState,
    PartStatus,
};

use crate::ids::OrderId;
use crate::sync::{Arc, AtomicU64, KeyedMap, Ordering, SegQueue};
use record::{OrderRecord, Phase};

/// How many orders the ledger keeps before it forgets finished ones
/// (committed, released, or every part ended), oldest first. Live orders
/// are never forgotten.
pub const ORDERS_KEPT: usize = 1 << 16;

/// Orders looked at per new order to forget finished ones: bounds the work
/// one allocation does.
const FORGET_PER_ORDER: usize = 2;

/// Every order the ledger made (see the module docs).
pub(crate) struct OrderBook {
    records: KeyedMap<OrderId, Arc<OrderRecord>>,
    /// The last id handed out.
    last: AtomicU64,
    /// Ids in the order they were made, for forgetting the oldest.
    made: SegQueue<OrderId>,
}

impl core::fmt::Debug for OrderBook {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OrderBook").field("orders", &self.records.len()).finish()
    }
}

impl OrderBook {
    pub(crate) fn new() -> OrderBook {
        OrderBook { records: KeyedMap::new(), last: AtomicU64::new(0), made: SegQueue::new() }
    }

    /// A new order id (never 0, never reused).
    pub(crate) fn next_id(&self) -> OrderId {
        // Relaxed: ids need only be unique; the record is published by the
        // map's own lock.
        let id = self.last.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(id < u64::MAX, "2^64 orders: a counter about to wrap is a bug to stop at");
        OrderId(id)
    }

    pub(crate) fn insert(&self, record: OrderRecord) {
        let id = record.id;
        let record = Arc::new(record);
        self.records.entry(id, |_| unreachable!("order ids are unique"), || (Some(record), ()));
        self.made.push(id);
    }

    pub(crate) fn get(&self, id: OrderId) -> Option<Arc<OrderRecord>> {
        self.records.update(&id, |record| Arc::clone(record))
    }

    /// Past [`ORDERS_KEPT`], looks at the oldest few orders and forgets
    /// those `finished` says are done; the others go to the back.
    pub(crate) fn forget_finished(&self, finished: impl Fn(&OrderRecord) -> bool) {
        for _ in 0..FORGET_PER_ORDER {
            if self.records.len() <= ORDERS_KEPT {
                return;
            }
            let Some(id) = self.made.pop() else { return };
            let forgotten = self.records.remove_if(&id, |record| !record.phase().is_busy() && finished(record));
            if !forgotten {
                self.made.push(id);
            }
        }
    }
}

/// One order as a ledger image keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct OrderImage {
    id: OrderId,
    tag: u64,
    parts: Vec<crate::ids::ReservationId>,
    deadline: Option<crate::clock::Timestamp>,
    /// `None`: live; `Some(true)`: committed; `Some(false)`: released.
    finished: Option<bool>,
}

/// The order book as a ledger image keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct OrderBookImage {
    /// The last id handed out.
    last: u64,
    /// Every order kept, by id.
    orders: Vec<OrderImage>,
}

impl OrderImage {
    /// The order's id.
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn id(&self) -> OrderId {
        self.id
    }

    /// A live order as made.
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn new(
        id: OrderId,
        tag: u64,
        parts: &[crate::ids::ReservationId],
        deadline: Option<crate::clock::Timestamp>,
    ) -> OrderImage {
        OrderImage { id, tag, parts: parts.to_vec(), deadline, finished: None }
    }
}

impl OrderBookImage {
    /// Orders in the image.
    pub(crate) fn len(&self) -> usize {
        self.orders.len()
    }

    /// Adds an order just made (a journal record), unless the image has it.
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn made(&mut self, order: OrderImage) {
        self.last = self.last.max(order.id.0);
        if let Err(at) = self.orders.binary_search_by_key(&order.id, |kept| kept.id) {
            self.orders.insert(at, order);
        }
    }

    /// Marks an order finished (a journal record), if the image has it.
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn finished(&mut self, id: OrderId, committed: bool) {
        if let Ok(at) = self.orders.binary_search_by_key(&id, |kept| kept.id) {
            self.orders[at].finished = Some(committed);
        }
    }
}

impl OrderBook {
    /// Every order kept, by id. An order a command is working on is
    /// recorded as live: an image is taken between commands (see
    /// [`Ledger::image`](crate::Ledger::image)).
    pub(crate) fn image(&self) -> OrderBookImage {
        let mut orders = Vec::new();
        self.records.for_each(|_, record| {
            let finished = match record.phase() {
                Phase::Committed => Some(true),
                Phase::Released => Some(false),
                _ => None,
            };
            orders.push(OrderImage {
                id: record.id,
                tag: record.tag,
                parts: record.parts.to_vec(),
                deadline: record.deadline,
                finished,
            });
        });
        orders.sort_unstable_by_key(|order| order.id);
        // Relaxed: a count read between commands; ids only need be unique.
        let last = self.last.load(Ordering::Relaxed);
        OrderBookImage { last, orders }
    }

    /// A book holding `image`'s orders, or what is wrong with it.
    pub(crate) fn restored(image: &OrderBookImage) -> Result<OrderBook, &'static str> {
        let book = OrderBook::new();
        let ids_ok = image.orders.windows(2).all(|pair| pair[0].id < pair[1].id);
        let last_ok = image.orders.last().is_none_or(|order| order.id.0 <= image.last) && image.last < u64::MAX;
        if !ids_ok || !last_ok || image.orders.first().is_some_and(|order| order.id.0 == 0) {
            return Err("order ids out of order, zero, or past the last one handed out");
        }
        if image.orders.iter().any(|order| order.parts.iter().any(|part| part.seq == 0)) {
            return Err("an order part with seq 0");
        }
        // Relaxed: the book is not shared yet.
        book.last.store(image.last, Ordering::Relaxed);
        for order in &image.orders {
            let phase = match order.finished {
                None => Phase::Live,
                Some(true) => Phase::Committed,
                Some(false) => Phase::Released,
            };
            let parts = order.parts.clone().into_boxed_slice();
            book.insert(OrderRecord::restored(order.id, order.tag, parts, order.deadline, phase));
        }
        Ok(book)
    }
}

impl OrderRecord {
    /// Whether the order reached a final phase.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self.phase(), Phase::Committed | Phase::Released)
    }
}
