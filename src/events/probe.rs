//! A minimal event for the unit tests and the loom models: a SKU, a
//! version and the sequence number the hub stamps.
//!
//! Owns: [`Probe`] and [`probe`].
//!
//! Must never: be built outside tests.

use super::sequenced::Sequenced;
use crate::ids::SkuId;

/// SKU, version and the sequence number the hub stamped (0: none yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) sku: SkuId,
    pub(crate) version: u64,
    pub(crate) seq: u64,
}

/// A probe for `sku` at `version`, not yet sequenced.
pub(crate) fn probe(sku: u64, version: u64) -> Probe {
    Probe { sku: SkuId(sku), version, seq: 0 }
}

impl Sequenced for Probe {
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
