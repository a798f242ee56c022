//! Commands as plain data: what a host can log, replay, send over a channel
//! or fuzz, and hand to [`Ledger::execute`](crate::Ledger::execute).
//!
//! Owns: the request types ([`AllocateRequest`]) and the [`Command`] /
//! [`Outcome`] enums that wrap every command and its result.
//!
//! Must never: validate or execute. Requests carry raw numbers exactly as a
//! caller or a wire sent them; the ledger validates every one before it
//! touches state.

use crate::clock::Timestamp;
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, NewLot};
use crate::outcome::{
    Adjusted, Allocation, Committed, ExpiryReport, Extended, LowStockSet, OrderAllocation, Received, Released, Sale,
    SkuDefined,
};
use crate::policy::{AllocationPolicy, FillMode};
use std::time::Duration;

/// A request for units of one SKU, for [`Ledger::allocate`](crate::Ledger::allocate)
/// (hold them) or [`Ledger::take`](crate::Ledger::take) (sell them now).
///
/// ```
/// use stockroom::{AllocateRequest, FillMode, SkuId};
/// use std::time::Duration;
///
/// let request = AllocateRequest::new(SkuId(1), 1_500)
///     .fill(FillMode::Partial)
///     .min_shelf_life(Duration::from_secs(3 * 86_400));
/// assert_eq!(request.quantity, 1_500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AllocateRequest {
    /// The SKU.
    pub sku: SkuId,
    /// Units wanted; validated (non-zero, at most [`Quantity::MAX`](crate::Quantity::MAX)).
    pub quantity: u64,
    /// All or nothing (the default), or as much as there is.
    pub fill: FillMode,
    /// Overrides the SKU's policy for this request (a slower path: the lots
    /// are sorted for the request).
    pub policy: Option<AllocationPolicy>,
    /// Skip lots that expire within this long after the allocation instant.
    pub min_shelf_life: Duration,
    /// Hold for at most this long: past it the reservation lapses and its
    /// units return (validated: non-zero, at most the ledger's maximum).
    /// `None` holds until committed or released. Ignored by `take`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub hold_for: Option<Duration>,
    /// Only if the SKU is still at this snapshot version (for callers who
    /// decided on a snapshot); otherwise
    /// [`VersionMismatch`](crate::AllocateError::VersionMismatch).
    #[cfg_attr(feature = "serde", serde(default))]
    pub expected_version: Option<u64>,
}

impl AllocateRequest {
    /// `quantity` units of `sku`, fill-or-kill, by the SKU's policy, any
    /// unexpired lot.
    pub fn new(sku: SkuId, quantity: u64) -> AllocateRequest {
        AllocateRequest {
            sku,
            quantity,
            fill: FillMode::FillOrKill,
            policy: None,
            min_shelf_life: Duration::ZERO,
            hold_for: None,
            expected_version: None,
        }
    }

    /// Sets the fill mode.
    pub fn fill(mut self, fill: FillMode) -> AllocateRequest {
        self.fill = fill;
        self
    }

    /// Overrides the SKU's allocation policy for this request.
    pub fn policy(mut self, policy: AllocationPolicy) -> AllocateRequest {
        self.policy = Some(policy);
        self
    }

    /// Sets the minimum remaining shelf life of the lots drawn.
    pub fn min_shelf_life(mut self, shelf_life: Duration) -> AllocateRequest {
        self.min_shelf_life = shelf_life;
        self
    }

    /// Holds the units for at most `duration`, then lets them lapse.
    pub fn hold_for(mut self, duration: Duration) -> AllocateRequest {
        self.hold_for = Some(duration);
        self
    }

    /// Applies only if the SKU is still at `version`.
    pub fn if_version(mut self, version: u64) -> AllocateRequest {
        self.expected_version = Some(version);
        self
    }
}

/// One line of a multi-line order: units of one SKU, fill-or-kill.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderLine {
    /// The SKU.
    pub sku: SkuId,
    /// Units wanted; validated like [`AllocateRequest::quantity`].
    pub quantity: u64,
    /// Overrides the SKU's policy for this line.
    #[cfg_attr(feature = "serde", serde(default))]
    pub policy: Option<AllocationPolicy>,
    /// Skip lots that expire within this long after the allocation instant.
    #[cfg_attr(feature = "serde", serde(default))]
    pub min_shelf_life: Duration,
}

impl OrderLine {
    /// `quantity` units of `sku`, by the SKU's policy, any unexpired lot.
    pub fn new(sku: SkuId, quantity: u64) -> OrderLine {
        OrderLine { sku, quantity, policy: None, min_shelf_life: Duration::ZERO }
    }
}

/// A multi-line order for [`Ledger::allocate_order`](crate::Ledger::allocate_order):
/// every line is held, or none is.
///
/// ```
/// use stockroom::{OrderLine, OrderRequest, SkuId};
/// use std::time::Duration;
///
/// let order = OrderRequest::new(vec![OrderLine::new(SkuId(1), 2), OrderLine::new(SkuId(2), 1)])
///     .hold_for(Duration::from_secs(15 * 60));
/// assert_eq!(order.lines.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderRequest {
    /// The lines; several of one SKU count as their combined demand.
    pub lines: Vec<OrderLine>,
    /// Every reservation of the order lapses after this long; `None` holds
    /// until ended.
    #[cfg_attr(feature = "serde", serde(default))]
    pub hold_for: Option<Duration>,
}

impl OrderRequest {
    /// The most lines one order may have.
    pub const LINES_MAX: usize = 256;

    /// An order of `lines`, held until ended.
    pub fn new(lines: Vec<OrderLine>) -> OrderRequest {
        OrderRequest { lines, hold_for: None }
    }

    /// Lets every reservation of the order lapse after `duration`.
    pub fn hold_for(mut self, duration: Duration) -> OrderRequest {
        self.hold_for = Some(duration);
        self
    }
}

/// Every command the ledger accepts, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Command {
    /// [`Ledger::define_sku`](crate::Ledger::define_sku).
    DefineSku {
        /// The SKU.
        sku: SkuId,
        /// Its allocation policy.
        policy: AllocationPolicy,
    },
    /// [`Ledger::receive`](crate::Ledger::receive).
    Receive {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: NewLot,
    },
    /// [`Ledger::allocate`](crate::Ledger::allocate).
    Allocate(AllocateRequest),
    /// [`Ledger::take`](crate::Ledger::take).
    Take(AllocateRequest),
    /// [`Ledger::release`](crate::Ledger::release).
    Release {
        /// The reservation.
        reservation: ReservationId,
    },
    /// [`Ledger::commit`](crate::Ledger::commit).
    Commit {
        /// The reservation.
        reservation: ReservationId,
        /// Units to commit; `None` commits everything held.
        quantity: Option<u64>,
    },
    /// [`Ledger::adjust`](crate::Ledger::adjust).
    Adjust {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The signed change in units.
        delta: i64,
        /// Why.
        reason: AdjustmentReason,
        /// Only if the SKU is still at this version.
        #[cfg_attr(feature = "serde", serde(default))]
        expected_version: Option<u64>,
    },
    /// [`Ledger::allocate_order`](crate::Ledger::allocate_order).
    AllocateOrder(OrderRequest),
    /// [`Ledger::extend`](crate::Ledger::extend).
    Extend {
        /// The reservation.
        reservation: ReservationId,
        /// How much later its deadline moves.
        by: Duration,
    },
    /// [`Ledger::expire_due`](crate::Ledger::expire_due).
    ExpireDue {
        /// The instant to sweep at (not later than the ledger's clock).
        now: Timestamp,
    },
    /// [`Ledger::set_low_stock`](crate::Ledger::set_low_stock).
    SetLowStock {
        /// The SKU.
        sku: SkuId,
        /// The threshold; `None` clears it.
        threshold: Option<u64>,
    },
}

impl Command {
    /// The one SKU the command is about; `None` for an order (which may
    /// span SKUs) and for a sweep of every SKU.
    pub fn sku(&self) -> Option<SkuId> {
        match self {
            Command::DefineSku { sku, .. }
            | Command::Receive { sku, .. }
            | Command::Adjust { sku, .. }
            | Command::SetLowStock { sku, .. } => Some(*sku),
            Command::Allocate(request) | Command::Take(request) => Some(request.sku),
            Command::Release { reservation }
            | Command::Commit { reservation, .. }
            | Command::Extend { reservation, .. } => Some(reservation.sku),
            Command::AllocateOrder(_) | Command::ExpireDue { .. } => None,
        }
    }

    /// The name of the first field in which `other` differs from `self`
    /// (`"command"` when they are different commands); `None` when equal.
    /// Idempotency uses it to say what a reused key changed.
    pub fn first_difference(&self, other: &Command) -> Option<&'static str> {
        fn first(fields: &[(&'static str, bool)]) -> Option<&'static str> {
            fields.iter().find(|(_, same)| !same).map(|(name, _)| *name)
        }
        fn request(a: &AllocateRequest, b: &AllocateRequest) -> Option<&'static str> {
            first(&[
                ("sku", a.sku == b.sku),
                ("quantity", a.quantity == b.quantity),
                ("fill", a.fill == b.fill),
                ("policy", a.policy == b.policy),
                ("min_shelf_life", a.min_shelf_life == b.min_shelf_life),
                ("hold_for", a.hold_for == b.hold_for),
                ("expected_version", a.expected_version == b.expected_version),
            ])
        }
        match (self, other) {
            (Command::DefineSku { sku: a, policy: p }, Command::DefineSku { sku: b, policy: q }) => {
                first(&[("sku", a == b), ("policy", p == q)])
            }
            (Command::Receive { sku: a, lot: l }, Command::Receive { sku: b, lot: m }) => first(&[
                ("sku", a == b),
                ("lot.id", l.id == m.id),
                ("lot.quantity", l.quantity == m.quantity),
                ("lot.received_at", l.received_at == m.received_at),
                ("lot.expires_at", l.expires_at == m.expires_at),
                ("lot.attributes", l.attributes == m.attributes),
            ]),
            (Command::Allocate(a), Command::Allocate(b)) | (Command::Take(a), Command::Take(b)) => request(a, b),
            (Command::Release { reservation: a }, Command::Release { reservation: b }) => {
                first(&[("reservation", a == b)])
            }
            (Command::Commit { reservation: a, quantity: p }, Command::Commit { reservation: b, quantity: q }) => {
                first(&[("reservation", a == b), ("quantity", p == q)])
            }
            (
                Command::Adjust { sku: a, lot: l, delta: d, reason: r, expected_version: v },
                Command::Adjust { sku: b, lot: m, delta: e, reason: s, expected_version: w },
            ) => first(&[
                ("sku", a == b),
                ("lot", l == m),
                ("delta", d == e),
                ("reason", r == s),
                ("expected_version", v == w),
            ]),
            (Command::AllocateOrder(a), Command::AllocateOrder(b)) => {
                first(&[("lines", a.lines == b.lines), ("hold_for", a.hold_for == b.hold_for)])
            }
            (Command::Extend { reservation: a, by: p }, Command::Extend { reservation: b, by: q }) => {
                first(&[("reservation", a == b), ("by", p == q)])
            }
            (Command::ExpireDue { now: a }, Command::ExpireDue { now: b }) => first(&[("now", a == b)]),
            (Command::SetLowStock { sku: a, threshold: p }, Command::SetLowStock { sku: b, threshold: q }) => {
                first(&[("sku", a == b), ("threshold", p == q)])
            }
            _ => Some("command"),
        }
    }
}

/// The outcome of any [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// From [`Command::DefineSku`].
    SkuDefined(SkuDefined),
    /// From [`Command::Receive`].
    Received(Received),
    /// From [`Command::Allocate`].
    Allocated(Allocation),
    /// From [`Command::Take`].
    Sold(Sale),
    /// From [`Command::Release`].
    Released(Released),
    /// From [`Command::Commit`].
    Committed(Committed),
    /// From [`Command::Adjust`].
    Adjusted(Adjusted),
    /// From [`Command::AllocateOrder`].
    OrderAllocated(OrderAllocation),
    /// From [`Command::Extend`].
    Extended(Extended),
    /// From [`Command::ExpireDue`].
    Expired(ExpiryReport),
    /// From [`Command::SetLowStock`].
    LowStockSet(LowStockSet),
}
