//! A SKU's structure: what changes only when lots arrive or settings move —
//! the policy order of its lots, its lots by id, its low-stock threshold,
//! how far its lots have been checked for expiry, and the backorders
//! waiting for stock.
//!
//! Owns: [`Structure`], immutable and shared by `Arc`, replaced whole (by
//! a change's effect) when a lot arrives out of order or a setting changes.
//!
//! Must never: change on the hot path. Most SKUs never leave the shared
//! [`Structure::initial`]: lots received in policy order and by increasing
//! id keep both orders identities, so a receipt in order replaces nothing.
//! A reader that finds a structure installed after the version it reads at
//! ([`since`](Structure::since)) retries: structures are rare, so that is
//! rare too.

use super::tree::Tree;
use crate::clock::Timestamp;
use crate::low_stock::LowStock;
use crate::quantity::Quantity;
use crate::sync::Arc;

/// The rarely changing part of a SKU (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct Structure {
    /// The version of the change that installed it (0: the initial one).
    pub(crate) since: u64,
    /// Arrival indices in the SKU policy's order.
    pub(crate) order: Tree,
    /// Arrival indices by lot id.
    pub(crate) by_id: Tree,
    /// The low-stock rule, validated (threshold and margin at most
    /// [`Quantity::MAX`]).
    pub(crate) low_stock: Option<LowStock>,
    /// Lots expiring at or before this instant have been reported.
    pub(crate) lots_checked_until: Option<Timestamp>,
    /// Backorders still waiting for units, in arrival (= seq) order; at most
    /// [`BACKORDERS_MAX`].
    pub(crate) backorders: Arc<Vec<Waiting>>,
}

/// The most backorders one SKU keeps waiting; one more is refused.
pub(crate) const BACKORDERS_MAX: usize = 1_024;

/// A backorder waiting for units (see [`super::backorder`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// The reservation's seq.
    pub(crate) seq: u64,
    /// Its first slot (a `Head`).
    pub(crate) slot: u32,
    /// Units it still waits for (never zero: a filled backorder leaves).
    pub(crate) outstanding: Quantity,
    /// The shelf life its units must have left when they are drawn (ms).
    pub(crate) min_shelf_life: u64,
}

impl Structure {
    /// The structure every SKU starts with, shared by all of them.
    pub(crate) fn initial() -> Arc<Structure> {
        // A process-wide constant: `std`'s once cell in every build (it
        // holds no checker object, so a checker need not see it).
        static INITIAL: std::sync::OnceLock<Arc<Structure>> = std::sync::OnceLock::new();
        Arc::clone(INITIAL.get_or_init(|| Arc::new(Structure::default())))
    }

    /// The backorder `seq`, if it is still waiting.
    pub(crate) fn waiting(&self, seq: u64) -> Option<&Waiting> {
        let at = self.backorders.binary_search_by_key(&seq, |waiting| waiting.seq).ok()?;
        Some(&self.backorders[at])
    }

    /// A copy to modify, installed at `version`.
    pub(crate) fn successor(&self, version: u64) -> Structure {
        Structure { since: version, ..self.clone() }
    }
}
