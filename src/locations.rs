//! Locations: where a SKU's stock is, as a query.
//!
//! Owns: [`Ledger::available_by_location`] and the lookup of the
//! locations a SKU's lots are at (for an unsplit order that tries one
//! location at a time).
//!
//! Must never: change anything. Allocation by location is the request's
//! business (`Locations`, `split`), decided inside the SKU's change.

use crate::clock::Timestamp;
use crate::ids::{LocationId, SkuId};
use crate::ledger::{Ledger, QueryError};
use crate::policy::Eligibility;
use crate::quantity::Quantity;
use std::time::Duration;

/// Units an allocation could draw at one location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LocationStock {
    /// The location (`None`: lots received without one).
    pub location: Option<LocationId>,
    /// Units available there to a draw with the query's shelf life.
    pub available: Quantity,
    /// Units there on expired lots (or expiring within the shelf life),
    /// not yet written off: never sellable.
    pub unsellable: Quantity,
}

impl Ledger {
    /// Units an allocation with `min_shelf_life` could draw right now, per
    /// location, by location id (lots without a location last). Reads one
    /// version of the SKU, O(its lots).
    pub fn available_by_location(
        &self,
        sku: SkuId,
        min_shelf_life: Duration,
    ) -> Result<Vec<LocationStock>, QueryError> {
        let moment = self.moment();
        let (mut stock, _) = self.read(sku, &moment, |view| {
            let eligibility = Eligibility::at(moment.now(), min_shelf_life);
            let mut stock: Vec<LocationStock> = Vec::new();
            for arrival in 0..view.head.lots {
                let facts = view.facts(arrival);
                let available = view.counts(arrival)?.available;
                let at = match stock.iter().position(|entry| entry.location == facts.location) {
                    Some(at) => at,
                    None => {
                        stock.push(LocationStock {
                            location: facts.location,
                            available: Quantity::ZERO,
                            unsellable: Quantity::ZERO,
                        });
                        stock.len() - 1
                    }
                };
                let entry = &mut stock[at];
                if eligibility.admits(facts.expires_at) {
                    entry.available = entry.available.plus(available);
                } else {
                    entry.unsellable = entry.unsellable.plus(available);
                }
            }
            Ok(stock)
        })?;
        stock.sort_by_key(|entry| entry.location.map_or((true, 0), |at| (false, at.0)));
        Ok(stock)
    }

    /// The locations `sku`'s lots are at (none if it is not defined).
    pub(crate) fn lot_locations(&self, sku: SkuId) -> Vec<Option<LocationId>> {
        let moment = crate::clock::Moment::fixed(Timestamp(0));
        let read = self.read(sku, &moment, |view| {
            let mut locations: Vec<Option<LocationId>> = Vec::new();
            for arrival in 0..view.head.lots {
                let location = view.facts(arrival).location;
                if !locations.contains(&location) {
                    locations.push(location);
                }
            }
            Ok(locations)
        });
        read.map(|(locations, _)| locations).unwrap_or_default()
    }
}
