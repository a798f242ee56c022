//! Units coming back into a SKU, as one change of its cell.
//!
//! Owns: [`SkuCell::return_units`]: the per-lot bound (no more comes back
//! than left the lot and has not come back), the lot the units go into,
//! and the counters it moves.
//!
//! Must never: make units out of nothing. The lot they left gains `q`
//! come-back units (its came-back word); the lot they go into gains `q`
//! net, available and returned units (the original lot, or a new lot made
//! with no receipt of its own); the SKU's inflow (the bound on every
//! counter) grows by `q` too, so a SKU that sells and takes back forever
//! is refused (`Overflow`) before a counter could pass the maximum.
//! Finding how many units left a lot reads
//! every live hold (units held are derived; O(holds)): returns are rare.

use super::effect::Target;
use super::lots::LotExt;
use super::plan::give;
use super::read::holds;
use super::stock::{add_lot, find_lot, held_on};
use super::view::{Draft, Stale};
use super::{Ctx, Landed, SkuCell, Step};
use crate::clock::Timestamp;
use crate::error::ReceiveError;
use crate::ids::LotId;
use crate::lot::NewLot;
use crate::quantity::Quantity;
use crate::sync::Arc;

/// A return as the cell did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReturnDone {
    pub(crate) into_lot: LotId,
    pub(crate) version: u64,
}

/// Why the cell refused a return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReturnRefusal {
    UnknownLot,
    Expired(Timestamp),
    MoreThanLeft(Quantity),
    NewLot(ReceiveError),
    Contended(u32),
}

impl SkuCell {
    /// `quantity` units that left lot `from` come back, into it (`into`
    /// `None`, refused if it has expired at the operation's instant) or
    /// into a new lot made from `into`.
    pub(crate) fn return_units(
        &self,
        ctx: &Ctx,
        from: LotId,
        quantity: Quantity,
        into: Option<&NewLot>,
        landed: &mut dyn FnMut(Landed<'_, ReturnDone>),
    ) -> Result<ReturnDone, ReturnRefusal> {
        let attributes = into.and_then(|lot| lot.attributes.clone()).map(Arc::new);
        self.change(
            ctx,
            landed,
            |draft, _| {
                let view = draft.view;
                let Some(arrival) = find_lot(view, from)? else {
                    return Ok(Step::Refuse(ReturnRefusal::UnknownLot));
                };
                let left = left_and_not_back(draft, arrival)?;
                if quantity > left {
                    return Ok(Step::Refuse(ReturnRefusal::MoreThanLeft(left)));
                }
                let back = draft.came_back(arrival)?.plus(quantity);
                draft.effect(Target::LotBack(arrival), u128::from(back.get()));
                let into_lot = match into {
                    None => {
                        if let Some(expiry) = view.facts(arrival).expires_at {
                            if expiry <= ctx.moment.now() {
                                return Ok(Step::Refuse(ReturnRefusal::Expired(expiry)));
                            }
                        }
                        let Some(inflow) = draft.inflow()?.checked_add(quantity) else {
                            let quantity = quantity.get();
                            return Ok(Step::Refuse(ReturnRefusal::NewLot(ReceiveError::Overflow {
                                sku: self.sku,
                                quantity,
                            })));
                        };
                        draft.effect(Target::Inflow, u128::from(inflow.get()));
                        put_back(draft, arrival, quantity)?;
                        from
                    }
                    Some(lot) => {
                        let facts = match add_lot(draft, ctx, lot, Quantity::ZERO, quantity, attributes.clone())? {
                            Ok(facts) => facts,
                            Err(refusal) => return Ok(Step::Refuse(ReturnRefusal::NewLot(refusal))),
                        };
                        let arrival = draft.lot_count - 1;
                        let ext = LotExt { returned: quantity, ..draft.lot_ext(arrival)? };
                        draft.set_lot_ext(arrival, ext);
                        facts.id
                    }
                };
                Ok(Step::Change(ReturnDone { into_lot, version: view.version() + 1 }))
            },
            ReturnRefusal::Contended,
        )
    }
}

/// Units that left lot `arrival` (committed) and have not come back.
fn left_and_not_back(draft: &Draft, arrival: u32) -> Result<Quantity, Stale> {
    let counts = draft.counts(arrival)?;
    let held = held_on(&holds(draft.view)?, arrival);
    let committed = counts.net.minus(counts.available).minus(held);
    Ok(committed.minus(draft.came_back(arrival)?.min(committed)))
}

/// `quantity` units back into lot `arrival`: net, available and returned.
fn put_back(draft: &mut Draft, arrival: u32, quantity: Quantity) -> Result<(), Stale> {
    let mut counts = draft.counts(arrival)?;
    counts.net = counts.net.plus(quantity);
    draft.set_counts(arrival, counts);
    give(draft, arrival, quantity)?;
    draft.totals.0 += quantity.get() as i64;
    let ext = draft.lot_ext(arrival)?;
    draft.set_lot_ext(arrival, LotExt { returned: ext.returned.plus(quantity), ..ext });
    Ok(())
}
