//! The events outbox: every published change to a SKU, delivered to
//! subscribers in order per SKU, within a fixed memory budget.
//!
//! Owns: the event types ([`event`]: [`Event`], [`Change`], [`Notice`]) and
//! the delivery engine, one idea per file:
//!
//! - [`hub`]: [`hub::EventHub`], the publish side and the combining
//!   protocol (the dispatcher flag and the pump loop);
//! - [`inbox`]: the bounded queue between publishers and the dispatcher
//!   (the hub has two: events, and identities of shed events);
//! - [`shed`]: what a publisher leaves when the inbox is full: the shed
//!   event's identity, or a mark when the shed log is full too;
//! - [`dispatch`]: one dispatcher turn and the state only it touches;
//! - [`reorder`]: per-SKU reordering within a bounded number of parked
//!   events, and when a gap is skipped;
//! - [`outlet`]: the dispatcher's end of one subscription and its lag
//!   policy;
//! - [`subscription`]: [`Subscription`] and [`Delivery`], the subscriber's
//!   side; [`error`]: its receive errors; [`link`]: what a subscription
//!   and its outlet share (the `closed` flag, the wakers); `stream` (with
//!   the `async` feature): the subscription as a `Stream`;
//! - [`budget`]: every bound, as constants ([`SUBSCRIPTION_CAPACITY_MAX`]
//!   is defined there, once);
//! - [`sequenced`]: what the hub needs from an event.
//!
//! Must never: decide what an event says, hold up a command, or grow with
//! the number of publishing threads. The ledger builds the events from the
//! versions it publishes; this module only orders and delivers them, and
//! publishing never waits for a subscriber or another publisher.
//!
//! # Orderings
//!
//! Each file with atomics argues its own: [`hub`] (the flag, the fences),
//! [`inbox`] (the claim count), [`shed`] (the marks), [`outlet`] and
//! [`subscription`] (the `closed` flag).

pub(crate) mod budget;
pub(crate) mod dispatch;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod hub;
pub(crate) mod inbox;
pub(crate) mod link;
pub(crate) mod outlet;
pub(crate) mod reorder;
pub(crate) mod sequenced;
pub(crate) mod shed;
#[cfg(feature = "async")]
pub(crate) mod stream;
pub(crate) mod subscription;

#[cfg(all(test, not(stockroom_shuttle)))]
pub(crate) mod probe;

#[cfg(all(test, stockroom_loom))]
mod loom;
#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests;

pub use budget::SUBSCRIPTION_CAPACITY_MAX;
pub use error::{RecvError, RecvTimeoutError, TryRecvError};
pub use event::{Change, Event, Notice};
pub use subscription::{Delivery, Subscription};
