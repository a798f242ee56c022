//! The events outbox: every published change to a SKU, delivered to
//! subscribers in order per SKU.
//!
//! Owns: the event types ([`event`]: [`Event`], [`Change`], [`Notice`]),
//! the delivery engine ([`hub`]) and its loom models.
//!
//! Must never: decide what an event says, or hold up a command. The ledger
//! builds the events from the versions it publishes; this module only
//! orders and delivers them, and publishing never waits for a subscriber or
//! another publisher.
//!
//! # Orderings
//!
//! All of them are argued in [`hub`], the one file with atomics.

pub(crate) mod event;
pub(crate) mod hub;
#[cfg(all(test, stockroom_loom))]
mod loom;

pub use event::{Change, Event, Notice};
pub use hub::{Delivery, RecvError, RecvTimeoutError, Subscription, TryRecvError};

impl hub::Sequenced for Event {
    fn sku(&self) -> crate::ids::SkuId {
        self.sku
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}
