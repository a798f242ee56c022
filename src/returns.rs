//! Returns and restock: units that left the building come back.
//!
//! Owns: [`ReturnRequest`] (what comes back, from which lot, into where,
//! why, linked to what), [`Returned`] (what the ledger did),
//! [`ReturnError`], and [`Ledger::return_units`].
//!
//! Must never: let more come back than left. Units come back into the lot
//! they left (if it still exists and has not expired) or into a new lot
//! made for them; either way the lot they left records them as come back,
//! and a return of more than that lot's committed units not yet come back
//! is refused. What comes back is counted as `returned` in the lot it goes
//! into, so conservation stays exact: `received + adjusted + returned =
//! available + expired + held + committed + written_off`. The check is per
//! lot, not per reservation: a reservation's committed lines are not kept
//! after it ends (that memory would grow with every sale); the link to the
//! reservation or order is checked for what the ledger still knows (the
//! reservation was issued and is no longer held; the order committed and
//! has a part on the SKU) and carried on the outcome and its event.
//!
//! Units that come back are sellable at once, and like any units that come
//! in they fill waiting backorders first.

use crate::cell::{Landed, ReturnDone, ReturnRefusal};
use crate::clock::Timestamp;
use crate::events::Change;
use crate::ids::{LotId, OrderId, ReservationId, SkuId};
use crate::ledger::{Ledger, QueryError};
use crate::lot::NewLot;
use crate::orders::OrderState;
use crate::quantity::Quantity;
use core::fmt;

/// Why units came back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReturnReason {
    /// A customer sent them back.
    #[default]
    Returned,
    /// They never left after all (a cancelled shipment put back on the
    /// shelf).
    Restocked,
    /// Anything else.
    Other,
}

/// What the units are linked to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReturnSource {
    /// Nothing said.
    #[default]
    Unlinked,
    /// The reservation they left with (of the same SKU; it must have
    /// ended).
    Reservation(ReservationId),
    /// The order they left with (it must have committed, with a part on
    /// the same SKU).
    Order(OrderId),
}

/// Where the units go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReturnInto {
    /// Back into the lot they left (refused if it has expired).
    #[default]
    Original,
    /// Into a new lot made for them (its id, expiry and location from
    /// this `NewLot`; its `quantity` must equal the return's).
    NewLot(NewLot),
}

/// Units coming back into a SKU ([`Ledger::return_units`]).
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, ReturnRequest, SkuId};
///
/// let ledger = Ledger::new();
/// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
/// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
/// let sale = ledger.take(&AllocateRequest::new(SkuId(1), 3))?;
/// let back = ledger.return_units(&ReturnRequest::new(SkuId(1), LotId(1), 2))?;
/// assert_eq!(back.quantity.get(), 2);
/// assert_eq!(ledger.snapshot(SkuId(1))?.totals().available.get(), 9);
/// // Only one more unit of lot 1 left the building.
/// assert!(ledger.return_units(&ReturnRequest::new(SkuId(1), LotId(1), 2)).is_err());
/// # let _ = sale;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ReturnRequest {
    /// The SKU.
    pub sku: SkuId,
    /// The lot the units left from.
    pub lot: LotId,
    /// Units coming back (at least one, at most [`Quantity::MAX`]).
    pub quantity: u64,
    /// Why.
    #[cfg_attr(feature = "serde", serde(default))]
    pub reason: ReturnReason,
    /// Where they go.
    #[cfg_attr(feature = "serde", serde(default))]
    pub into: ReturnInto,
    /// What they left with.
    #[cfg_attr(feature = "serde", serde(default))]
    pub source: ReturnSource,
}

impl ReturnRequest {
    /// `quantity` units of lot `lot` coming back into it, returned by a
    /// customer, linked to nothing.
    pub fn new(sku: SkuId, lot: LotId, quantity: u64) -> ReturnRequest {
        ReturnRequest {
            sku,
            lot,
            quantity,
            reason: ReturnReason::Returned,
            into: ReturnInto::Original,
            source: ReturnSource::Unlinked,
        }
    }

    /// Sets why they came back.
    pub fn reason(mut self, reason: ReturnReason) -> ReturnRequest {
        self.reason = reason;
        self
    }

    /// Puts them into a new lot instead of the one they left.
    pub fn into_new_lot(mut self, lot: NewLot) -> ReturnRequest {
        self.into = ReturnInto::NewLot(lot);
        self
    }

    /// Links them to the reservation or order they left with.
    pub fn from(mut self, source: ReturnSource) -> ReturnRequest {
        self.source = source;
        self
    }
}

impl fmt::Display for ReturnRequest {
    /// `2 of lot:1 of sku:1`, then what differs from the defaults:
    /// `, restocked`, `, into new lot:9`, `, from res:1/3` or `, from
    /// order:7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} of {}", self.quantity, self.lot, self.sku)?;
        match self.reason {
            ReturnReason::Returned => {}
            ReturnReason::Restocked => f.write_str(", restocked")?,
            ReturnReason::Other => f.write_str(", other reason")?,
        }
        if let ReturnInto::NewLot(lot) = &self.into {
            write!(f, ", into new {}", lot.id)?;
        }
        match self.source {
            ReturnSource::Unlinked => Ok(()),
            ReturnSource::Reservation(id) => write!(f, ", from {id}"),
            ReturnSource::Order(order) => write!(f, ", from {order}"),
        }
    }
}

/// Units came back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Returned {
    /// The SKU.
    pub sku: SkuId,
    /// The lot they left from.
    pub from_lot: LotId,
    /// The lot they went into (the same, or the new one).
    pub into_lot: LotId,
    /// Units that came back.
    pub quantity: Quantity,
    /// Why.
    pub reason: ReturnReason,
    /// What they left with.
    pub source: ReturnSource,
    /// The SKU version this return produced.
    pub version: u64,
}

impl fmt::Display for Returned {
    /// `3 of lot:1 of sku:1 came back into lot:1 (version 7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} of {} came back into {} (version {})",
            self.quantity, self.from_lot, self.sku, self.into_lot, self.version
        )
    }
}

/// A return was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReturnError {
    /// Zero units, or more than [`Quantity::MAX`].
    #[error("{sku}: a return of {quantity} units is out of range")]
    InvalidQuantity {
        /// The SKU.
        sku: SkuId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// A new lot whose quantity is not the return's.
    #[error("{sku}: the new lot says {lot_quantity} units, the return {quantity}")]
    LotQuantityMismatch {
        /// The SKU.
        sku: SkuId,
        /// The new lot's quantity.
        lot_quantity: u64,
        /// The return's quantity.
        quantity: u64,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The SKU has no such lot.
    #[error("{sku} has no {lot}")]
    UnknownLot {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// The link names something the return cannot have left with: a
    /// reservation of another SKU, never issued, or still held; an order
    /// unknown, not committed, or without a part on the SKU.
    #[error("{sku}: the units cannot have left with {link:?}")]
    InvalidSource {
        /// The SKU.
        sku: SkuId,
        /// The link given.
        link: ReturnSource,
    },
    /// The lot they left has expired: return them into a new lot.
    #[error("{lot} of {sku} expired at {expired_at}: return into a new lot")]
    LotExpired {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// When it expired.
        expired_at: Timestamp,
    },
    /// More would come back than left that lot and has not come back yet.
    #[error("{lot} of {sku}: {quantity} cannot come back, only {left} left and did not come back")]
    MoreThanLeft {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// Units asked to come back.
        quantity: Quantity,
        /// Units that left the lot and have not come back.
        left: Quantity,
    },
    /// The new lot could not be made (its id is taken, the SKU has the most
    /// lots, or its inflow would pass the maximum).
    #[error("{sku}: the new lot was refused: {cause}")]
    NewLot {
        /// The SKU.
        sku: SkuId,
        /// Why.
        #[source]
        cause: crate::error::ReceiveError,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{sku}: gave up after {attempts} contended attempts")]
    Contended {
        /// The SKU.
        sku: SkuId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

crate::error::questions!(@transient ReturnError);

impl ReturnError {
    /// What kind of refusal this is (see [`ErrorKind`](crate::ErrorKind)):
    /// more than left is [`Insufficient`](crate::ErrorKind::Insufficient),
    /// an expired lot [`Ended`](crate::ErrorKind::Ended), a link the
    /// ledger cannot match a [`Conflict`](crate::ErrorKind::Conflict).
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind::{Conflict, Ended, Insufficient, Invalid, NotFound, Transient};
        match self {
            ReturnError::InvalidQuantity { .. } | ReturnError::LotQuantityMismatch { .. } => Invalid,
            ReturnError::UnknownSku { .. } | ReturnError::UnknownLot { .. } => NotFound,
            ReturnError::InvalidSource { .. } => Conflict,
            ReturnError::LotExpired { .. } => Ended,
            ReturnError::MoreThanLeft { .. } => Insufficient,
            ReturnError::NewLot { cause, .. } => cause.kind(),
            ReturnError::Contended { .. } => Transient,
        }
    }
}

impl Ledger {
    /// Units that left the building come back: into the lot they left (if
    /// it still exists and has not expired) or into a new lot
    /// ([`ReturnRequest::into_new_lot`]), counted as `returned` there, and
    /// filling waiting backorders first like any units that come in.
    ///
    /// # Errors
    ///
    /// [`ReturnError`], nothing changed: more than the lot has committed
    /// and not yet had back, an unknown SKU or lot, an expired original
    /// lot, a link to a reservation or order that did not leave with these
    /// units, or bad input (zero or too many units, a bad new lot).
    pub fn return_units(&self, request: &ReturnRequest) -> Result<Returned, ReturnError> {
        let sku = request.sku;
        let quantity = Quantity::new(request.quantity)
            .ok()
            .filter(|quantity| !quantity.is_zero())
            .ok_or(ReturnError::InvalidQuantity { sku, quantity: request.quantity })?;
        if let ReturnInto::NewLot(lot) = &request.into {
            if lot.quantity != request.quantity {
                return Err(ReturnError::LotQuantityMismatch {
                    sku,
                    lot_quantity: lot.quantity,
                    quantity: request.quantity,
                });
            }
            lot.validate().map_err(|too_long| ReturnError::NewLot {
                sku,
                cause: crate::error::ReceiveError::attribute_too_long(sku, lot.id, too_long),
            })?;
            // Validated as a receipt is: a location past the range refused.
            if let Some(location) = lot.location.filter(|location| location.0 > crate::ids::LOCATION_MAX) {
                let max = crate::ids::LOCATION_MAX;
                let cause = crate::error::ReceiveError::LocationOutOfRange { sku, lot: lot.id, location, max };
                return Err(ReturnError::NewLot { sku, cause });
            }
        }
        self.check_source(sku, request.source)?;
        let moment = self.moment();
        let into = match &request.into {
            ReturnInto::Original => None,
            ReturnInto::NewLot(lot) => Some(lot),
        };
        let returned = |done: &ReturnDone| Returned {
            sku,
            from_lot: request.lot,
            into_lot: done.into_lot,
            quantity,
            reason: request.reason,
            source: request.source,
            version: done.version,
        };
        self.on(sku, &moment, Err(ReturnError::UnknownSku { sku }), |cell, ctx| {
            let mut landed = |landed: Landed<'_, ReturnDone>| match landed {
                Landed::Swept(swept, transition) => self.emit(sku, &transition, || Change::Swept(swept.clone()), None),
                Landed::Step(done, transition) => {
                    self.emit(sku, &transition, || Change::Returned(returned(done)), None)
                }
            };
            let done = cell.return_units(ctx, request.lot, quantity, into, &mut landed);
            done.map(|done| returned(&done)).map_err(|refusal| refused(request, quantity, refusal))
        })
    }

    /// Checks what the ledger still knows of the return's link.
    fn check_source(&self, sku: SkuId, source: ReturnSource) -> Result<(), ReturnError> {
        let invalid = Err(ReturnError::InvalidSource { sku, link: source });
        match source {
            ReturnSource::Unlinked => Ok(()),
            ReturnSource::Reservation(id) if id.sku != sku => invalid,
            ReturnSource::Reservation(id) => match self.reservation(id) {
                Err(QueryError::Ended { .. } | QueryError::Expired { .. }) => Ok(()),
                _ => invalid,
            },
            ReturnSource::Order(order) => match self.order(order) {
                Ok(status)
                    if status.state == OrderState::Committed
                        && status.parts.iter().any(|part| part.reservation.sku == sku) =>
                {
                    Ok(())
                }
                _ => invalid,
            },
        }
    }
}

/// The typed error for a refusal of the cell.
fn refused(request: &ReturnRequest, quantity: Quantity, refusal: ReturnRefusal) -> ReturnError {
    let (sku, lot) = (request.sku, request.lot);
    match refusal {
        ReturnRefusal::UnknownLot => ReturnError::UnknownLot { sku, lot },
        ReturnRefusal::Expired(expired_at) => ReturnError::LotExpired { sku, lot, expired_at },
        ReturnRefusal::MoreThanLeft(left) => ReturnError::MoreThanLeft { sku, lot, quantity, left },
        ReturnRefusal::NewLot(cause) => ReturnError::NewLot { sku, cause },
        ReturnRefusal::Contended(attempts) => ReturnError::Contended { sku, attempts },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind::{Conflict, Ended, Insufficient, Invalid, NotFound, Transient};
    use crate::error::ReceiveError;
    use crate::error::kind::tests::check;

    #[test]
    fn every_return_error_has_its_kind() {
        let (sku, lot) = (SkuId(1), LotId(2));
        let q = |units| Quantity::new(units).expect("small");
        check(
            &[
                (ReturnError::InvalidQuantity { sku, quantity: 0 }, Invalid),
                (ReturnError::LotQuantityMismatch { sku, lot_quantity: 3, quantity: 2 }, Invalid),
                (ReturnError::UnknownSku { sku }, NotFound),
                (ReturnError::UnknownLot { sku, lot }, NotFound),
                (ReturnError::InvalidSource { sku, link: ReturnSource::Order(OrderId(7)) }, Conflict),
                (ReturnError::LotExpired { sku, lot, expired_at: Timestamp(5) }, Ended),
                (ReturnError::MoreThanLeft { sku, lot, quantity: q(3), left: q(1) }, Insufficient),
                (ReturnError::NewLot { sku, cause: ReceiveError::DuplicateLot { sku, lot } }, Conflict),
                (ReturnError::Contended { sku, attempts: 9 }, Transient),
            ],
            |e| match e {
                ReturnError::InvalidQuantity { .. } => "InvalidQuantity",
                ReturnError::LotQuantityMismatch { .. } => "LotQuantityMismatch",
                ReturnError::UnknownSku { .. } => "UnknownSku",
                ReturnError::UnknownLot { .. } => "UnknownLot",
                ReturnError::InvalidSource { .. } => "InvalidSource",
                ReturnError::LotExpired { .. } => "LotExpired",
                ReturnError::MoreThanLeft { .. } => "MoreThanLeft",
                ReturnError::NewLot { .. } => "NewLot",
                ReturnError::Contended { .. } => "Contended",
            },
            &[
                "InvalidQuantity",
                "LotQuantityMismatch",
                "UnknownSku",
                "UnknownLot",
                "InvalidSource",
                "LotExpired",
                "MoreThanLeft",
                "NewLot",
                "Contended",
            ],
        );
    }
}
