//! The event hub's memory budget: every bound on what the hub holds, as
//! constants, and the [`Budget`] a hub is built with.
//!
//! Owns: how many events the inbox, the reorder buffer and one
//! subscription's channel may hold, how long a gap that may have been shed
//! is waited for, how many shed marks there are, and the dispatch's batch and
//! pump bounds.
//!
//! Must never: allocate, or state a bound the hub does not enforce. Each
//! constant names the file that enforces it.
//!
//! # What the budget adds up to
//!
//! Whatever the number of publishing threads, a hub holds at most:
//!
//! | What | Bound | Beyond it (enforced in) |
//! |---|---|---|
//! | events published, not yet dispatched | [`INBOX_EVENTS_MAX`] | the publisher sheds (`inbox.rs`) |
//! | identities of shed events, not yet dispatched | [`SHED_LOG_MAX`] | the publisher marks a slot (`shed.rs`) |
//! | events parked until their SKU's gap fills | [`REORDER_EVENTS_MAX`] | the oldest gap is skipped (`reorder.rs`) |
//! | one subscription's buffered deliveries | its capacity + 1 | dropped for it and counted (`outlet.rs`) |
//! | shed marks | [`SHED_SLOTS`] counters | (fixed, `shed.rs`) |
//! | per SKU ever published | one stream record, a few words | (grows with the catalog, not the publishers) |
//!
//! A subscription's capacity is at most [`SUBSCRIPTION_CAPACITY_MAX`], and
//! its channel is allocated as events arrive, not up front.
//!
//! An event is `size_of::<Event>()` (152 bytes) plus what its change owns
//! on the heap (the lines of an allocation or a sale, the notices). With
//! the defaults the inbox and the reorder buffer hold at most 12,288
//! events, about 2.5 MiB for one-line sales, and the shed log 16,384
//! identities, under 0.5 MiB; each subscription adds what its capacity
//! lets it buffer, and nothing until events arrive.

use std::time::Duration;

/// Largest channel capacity a subscription may ask for, in events.
///
/// The channel is not allocated up front: it grows in blocks as events
/// arrive, up to the subscription's capacity (plus one slot kept for a lag
/// notice), and shrinks as they are received.
pub const SUBSCRIPTION_CAPACITY_MAX: usize = 1 << 20;

/// Published events the inbox holds at most before publishers shed
/// (`inbox.rs`).
///
/// Large enough to ride out a dispatcher descheduled for a few
/// milliseconds at a million events a second; small enough to be a few
/// megabytes.
pub(crate) const INBOX_EVENTS_MAX: usize = 8_192;

/// Identities (SKU and version, 16 bytes) of shed events the shed log
/// holds at most before a publisher falls back to marking a slot
/// (`shed.rs`). Twice the inbox: while the inbox is full, every publish
/// sheds, so the log fills as fast as the inbox would have.
pub(crate) const SHED_LOG_MAX: usize = 16_384;

/// Versions (events, and identities of shed ones) the reorder buffer parks
/// at most while they wait for an earlier version of their SKU
/// (`reorder.rs`).
pub(crate) const REORDER_EVENTS_MAX: usize = 4_096;

/// Longest a gap in the stream of a SKU whose shed slot has counted a shed
/// (a shed whose identity did not fit the shed log) is waited for before
/// it is skipped and counted as missed (`reorder.rs`): the missing version
/// may have been shed and the marks could not tell. Far longer than a publisher is descheduled between its
/// swap and its publish even on a loaded machine (up to about 200 ms seen
/// with a load of 9 on 2 cores), short enough that a SKU whose event was
/// shed does not fall silent for long. A hub whose shed log never
/// overflowed waits for every gap until it fills or the reorder budget is
/// spent: nothing is lost to the clock.
pub(crate) const GAP_WAIT_MAX: Duration = Duration::from_secs(1);

/// Shed marks: counters of events shed at the inbox, one per slot of SKUs
/// (`shed.rs`). A power of two.
#[cfg(not(stockroom_loom))]
pub(crate) const SHED_SLOTS: usize = 64;

/// Under loom, few enough that two SKUs share a slot in small models, and
/// every mark is one more atomic for the checker.
#[cfg(stockroom_loom)]
pub(crate) const SHED_SLOTS: usize = 2;

/// Inbox events one `publish` (or one subscriber pump) dispatches at most.
/// Large enough that a publisher usually drains what the others pushed
/// while it held the flag; small enough to bound the latency one
/// publisher pays for everybody else's events.
pub(crate) const DISPATCH_BATCH_MAX: usize = 64;

/// First wait of a blocked `recv` between two pumps of the inbox.
pub(crate) const PUMP_INTERVAL_MIN: Duration = Duration::from_millis(1);

/// Longest wait of a blocked `recv` between two pumps of the inbox: the
/// worst extra latency of an event left in the inbox when every publisher
/// went quiet.
pub(crate) const PUMP_INTERVAL_MAX: Duration = Duration::from_millis(16);

const _: () = assert!(SHED_SLOTS.is_power_of_two());
const _: () = assert!(PUMP_INTERVAL_MIN.as_nanos() <= PUMP_INTERVAL_MAX.as_nanos());
// A gap is waited for longer than a blocked receiver waits between pumps,
// so an idle receiver's pumps are what age it.
const _: () = assert!(PUMP_INTERVAL_MAX.as_nanos() < GAP_WAIT_MAX.as_nanos());
// One dispatch batch fits in the inbox: a turn can always take a whole one.
const _: () = assert!(DISPATCH_BATCH_MAX <= INBOX_EVENTS_MAX);
// While the inbox is full every publish sheds: the log keeps at least as
// many identities as the inbox keeps events.
const _: () = assert!(INBOX_EVENTS_MAX <= SHED_LOG_MAX);
// `capacity + 1` (the lag notice's slot) cannot overflow.
const _: () = assert!(SUBSCRIPTION_CAPACITY_MAX < usize::MAX);

/// The bounds one hub enforces. [`Budget::DEFAULT`] everywhere but in
/// tests and loom models, which shrink it to reach the shedding paths with
/// a handful of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Published events the inbox holds at most.
    pub(crate) inbox_events_max: usize,
    /// Identities of shed events the shed log holds at most.
    pub(crate) shed_log_max: usize,
    /// Events the reorder buffer parks at most.
    pub(crate) reorder_events_max: usize,
    /// Longest a gap is waited for once its SKU's shed slot counted a shed.
    pub(crate) gap_wait_max: Duration,
}

impl Budget {
    /// The shipped budget: the constants above.
    pub(crate) const DEFAULT: Budget = Budget {
        inbox_events_max: INBOX_EVENTS_MAX,
        shed_log_max: SHED_LOG_MAX,
        reorder_events_max: REORDER_EVENTS_MAX,
        gap_wait_max: GAP_WAIT_MAX,
    };

    /// A smaller budget (tests and models). Panics unless every count is
    /// between 1 and the shipped one: the budget is crate-internal, so a
    /// bad one is a bug in its caller.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn new(
        inbox_events_max: usize,
        shed_log_max: usize,
        reorder_events_max: usize,
        gap_wait_max: Duration,
    ) -> Budget {
        assert!((1..=INBOX_EVENTS_MAX).contains(&inbox_events_max), "inbox budget {inbox_events_max}");
        assert!((1..=SHED_LOG_MAX).contains(&shed_log_max), "shed log budget {shed_log_max}");
        assert!((1..=REORDER_EVENTS_MAX).contains(&reorder_events_max), "reorder budget {reorder_events_max}");
        Budget { inbox_events_max, shed_log_max, reorder_events_max, gap_wait_max }
    }
}
