//! The events outbox: every published change to a SKU, delivered to
//! subscribers in order per SKU.
//!
//! Owns: the delivery engine ([`hub`]) and its loom models.
//!
//! Must never: decide what an event says, or hold up a command. The ledger
//! builds the events; this module only orders and delivers them, and
//! publishing never waits for a subscriber or another publisher.
//!
//! # Orderings
//!
//! All of them are argued in [`hub`], the one file with atomics.

// Allowed until the ledger publishes into the hub and the crate root
// re-exports `Subscription`, `Delivery` and the receive errors: until then
// the engine has no caller outside its tests, and its `pub` items are not
// yet reachable from the crate root.
#[allow(dead_code, unreachable_pub)]
pub(crate) mod hub;
#[cfg(all(test, stockroom_loom))]
mod loom;
