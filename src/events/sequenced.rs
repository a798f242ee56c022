//! What the hub needs from an event: the SKU and version it reports, and
//! a place for the sequence number the dispatcher stamps on it.
//!
//! Owns: the [`Sequenced`] trait and its implementation for [`Event`].
//!
//! Must never: let the hub read or change anything else in an event.

use super::event::Event;
use crate::ids::SkuId;

/// What the hub needs from an event.
pub(crate) trait Sequenced: Clone + Send + 'static {
    /// The SKU whose change this event reports.
    fn sku(&self) -> SkuId;
    /// The SKU version the change published (0 for the definition).
    fn version(&self) -> u64;
    /// Stamps the global sequence number the hub assigned at dispatch.
    fn set_seq(&mut self, seq: u64);
}

impl Sequenced for Event {
    fn sku(&self) -> SkuId {
        self.sku
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}
