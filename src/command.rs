//! Commands as plain data: what a host can log, replay, send over a channel
//! or fuzz, and hand to [`Ledger::execute`](crate::Ledger::execute).
//!
//! Owns: the request types ([`AllocateRequest`]) and the [`Command`] /
//! [`Outcome`] enums that wrap every command and its result.
//!
//! Must never: validate or execute. Requests carry raw numbers exactly as a
//! caller or a wire sent them; the ledger validates every one before it
//! touches state.
//!
//! Every type here is `#[non_exhaustive]`: build requests with their
//! constructors and builder methods, never a struct literal, so a field
//! added later is not a breaking change. Every type prints (`Display`) as
//! one human-readable line for logs, stable within a minor version; the
//! wire format is serde's, not this.

use crate::clock::Timestamp;
use crate::display::{Count, List, Span};
use crate::ids::{LocationId, LotId, OrderId, ReservationId, SkuId};
use crate::kits::{KitComponent, KitDefined};
use crate::lot::{AdjustmentReason, LotDetails, NewLot};
use crate::low_stock::LowStock;
use crate::orders::{OrderCommitted, OrderExtended, OrderReleased};
use crate::outcome::total;
use crate::outcome::{
    Adjusted, Allocation, Committed, ExpiryReport, Extended, LowStockSet, OrderAllocation, Received, Released, Sale,
    SkuDefined,
};
use crate::policy::{AllocationPolicy, FillMode, Locations};
use crate::returns::{ReturnRequest, Returned};
use core::fmt;
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
#[non_exhaustive]
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
    /// The host's tag for the reservation (its order or customer id),
    /// carried on the reservation's queries and events; 0 for none.
    #[cfg_attr(feature = "serde", serde(default))]
    pub tag: u64,
    /// Accept the request as a backorder when stock is short: it holds what
    /// there is and waits for the rest, filled in arrival order as stock
    /// comes in ([`Allocation::backordered`](crate::Allocation::backordered)).
    /// Overrides `fill`; refused by `take`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub backorder: bool,
    /// Which locations the units may come from, in what order.
    #[cfg_attr(feature = "serde", serde(default))]
    pub locations: Locations,
    /// Whether the units may come from more than one location (by default
    /// they come from one: the first, in rank order, that covers the whole
    /// request).
    #[cfg_attr(feature = "serde", serde(default))]
    pub split: bool,
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
            tag: 0,
            backorder: false,
            locations: Locations::Any,
            split: false,
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

    /// Accepts the request as a backorder when stock is short (see
    /// [`backorder`](Self::backorder)).
    pub fn backordered(mut self) -> AllocateRequest {
        self.backorder = true;
        self
    }

    /// Draws only from lots at these locations.
    pub fn only(mut self, locations: Vec<LocationId>) -> AllocateRequest {
        self.locations = Locations::Only(locations);
        self
    }

    /// Draws from lots at these locations first, in this order.
    pub fn ranked(mut self, locations: Vec<LocationId>) -> AllocateRequest {
        self.locations = Locations::Ranked(locations);
        self
    }

    /// Lets the units come from more than one location.
    pub fn split(mut self, split: bool) -> AllocateRequest {
        self.split = split;
        self
    }

    /// Tags the reservation with the host's id for it (0: none).
    pub fn tag(mut self, tag: u64) -> AllocateRequest {
        self.tag = tag;
        self
    }
}

/// One line of a multi-line order: units of one SKU, fill-or-kill.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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

    /// Overrides the SKU's allocation policy for this line.
    pub fn policy(mut self, policy: AllocationPolicy) -> OrderLine {
        self.policy = Some(policy);
        self
    }

    /// Sets the minimum remaining shelf life of the lots drawn.
    pub fn min_shelf_life(mut self, shelf_life: Duration) -> OrderLine {
        self.min_shelf_life = shelf_life;
        self
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
#[non_exhaustive]
pub struct OrderRequest {
    /// The lines; several of one SKU count as their combined demand.
    pub lines: Vec<OrderLine>,
    /// Every reservation of the order lapses after this long; `None` holds
    /// until ended.
    #[cfg_attr(feature = "serde", serde(default))]
    pub hold_for: Option<Duration>,
    /// The host's tag for the order (its order or customer id), carried on
    /// the order and every part; 0 for none.
    #[cfg_attr(feature = "serde", serde(default))]
    pub tag: u64,
    /// Which locations the units may come from, in what order.
    #[cfg_attr(feature = "serde", serde(default))]
    pub locations: Locations,
    /// Whether the order may be served from more than one location (by
    /// default every part comes from one location: the first, in rank
    /// order, that covers every line).
    #[cfg_attr(feature = "serde", serde(default))]
    pub split: bool,
}

impl OrderRequest {
    /// The most lines one order may have.
    pub const LINES_MAX: usize = 256;

    /// An order of `lines`, held until ended.
    pub fn new(lines: Vec<OrderLine>) -> OrderRequest {
        OrderRequest { lines, hold_for: None, tag: 0, locations: Locations::Any, split: false }
    }

    /// Serves the order from these locations only (see [`Locations`]).
    pub fn locations(mut self, locations: Locations) -> OrderRequest {
        self.locations = locations;
        self
    }

    /// Lets the order be served from more than one location.
    pub fn split(mut self, split: bool) -> OrderRequest {
        self.split = split;
        self
    }

    /// Tags the order and its parts with the host's id for it (0: none).
    pub fn tag(mut self, tag: u64) -> OrderRequest {
        self.tag = tag;
        self
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
#[non_exhaustive]
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
    /// [`Ledger::set_low_stock_rule`](crate::Ledger::set_low_stock_rule).
    SetLowStock {
        /// The SKU.
        sku: SkuId,
        /// The rule; `None` clears it.
        rule: Option<LowStock>,
    },
    /// [`Ledger::commit_order`](crate::Ledger::commit_order).
    CommitOrder {
        /// The order.
        order: OrderId,
    },
    /// [`Ledger::release_order`](crate::Ledger::release_order).
    ReleaseOrder {
        /// The order.
        order: OrderId,
    },
    /// [`Ledger::extend_order`](crate::Ledger::extend_order).
    ExtendOrder {
        /// The order.
        order: OrderId,
        /// How much later its parts' deadline moves.
        by: Duration,
    },
    /// [`Ledger::define_kit`](crate::Ledger::define_kit).
    DefineKit {
        /// The kit.
        kit: SkuId,
        /// Its components.
        components: Vec<KitComponent>,
    },
    /// [`Ledger::return_units`](crate::Ledger::return_units).
    Return(ReturnRequest),
}

impl Command {
    /// The one SKU the command is about (a kit's id for a kit's
    /// definition); `None` for an order's commands (an order may span
    /// SKUs) and for a sweep of every SKU.
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
            Command::DefineKit { kit, .. } => Some(*kit),
            Command::Return(request) => Some(request.sku),
            Command::AllocateOrder(_)
            | Command::ExpireDue { .. }
            | Command::CommitOrder { .. }
            | Command::ReleaseOrder { .. }
            | Command::ExtendOrder { .. } => None,
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
                ("tag", a.tag == b.tag),
                ("backorder", a.backorder == b.backorder),
                ("locations", a.locations == b.locations),
                ("split", a.split == b.split),
            ])
        }
        let named = match (self, other) {
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
                ("lot.location", l.location == m.location),
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
                first(&[("lines", a.lines == b.lines), ("hold_for", a.hold_for == b.hold_for), ("tag", a.tag == b.tag)])
            }
            (Command::CommitOrder { order: a }, Command::CommitOrder { order: b })
            | (Command::ReleaseOrder { order: a }, Command::ReleaseOrder { order: b }) => first(&[("order", a == b)]),
            (Command::ExtendOrder { order: a, by: p }, Command::ExtendOrder { order: b, by: q }) => {
                first(&[("order", a == b), ("by", p == q)])
            }
            (Command::DefineKit { kit: a, components: p }, Command::DefineKit { kit: b, components: q }) => {
                first(&[("kit", a == b), ("components", p == q)])
            }
            (Command::Extend { reservation: a, by: p }, Command::Extend { reservation: b, by: q }) => {
                first(&[("reservation", a == b), ("by", p == q)])
            }
            (Command::ExpireDue { now: a }, Command::ExpireDue { now: b }) => first(&[("now", a == b)]),
            (Command::Return(a), Command::Return(b)) => first(&[
                ("sku", a.sku == b.sku),
                ("lot", a.lot == b.lot),
                ("quantity", a.quantity == b.quantity),
                ("reason", a.reason == b.reason),
                ("into", a.into == b.into),
                ("source", a.source == b.source),
            ]),
            (Command::SetLowStock { sku: a, rule: p }, Command::SetLowStock { sku: b, rule: q }) => {
                first(&[("sku", a == b), ("rule", p == q)])
            }
            _ => Some("command"),
        };
        // A field not named above still makes the commands differ.
        named.or_else(|| (self != other).then_some("command"))
    }
}

/// The outcome of any [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
    /// From [`Command::CommitOrder`].
    OrderCommitted(OrderCommitted),
    /// From [`Command::ReleaseOrder`].
    OrderReleased(OrderReleased),
    /// From [`Command::ExtendOrder`].
    OrderExtended(OrderExtended),
    /// From [`Command::DefineKit`].
    KitDefined(KitDefined),
    /// From [`Command::Return`].
    Returned(Returned),
}

/// The modifiers a request or an order line prints after `N of sku:S`,
/// each only when it differs from the default.
fn modifiers(f: &mut fmt::Formatter<'_>, policy: Option<AllocationPolicy>, min_shelf_life: Duration) -> fmt::Result {
    if let Some(policy) = policy {
        write!(f, ", by {policy}")?;
    }
    if !min_shelf_life.is_zero() {
        write!(f, ", min shelf life {}", Span(min_shelf_life))?;
    }
    Ok(())
}

/// A kit's components: `2 components (1 of sku:1; 2 of sku:2)`.
struct Components<'a>(&'a [KitComponent]);

impl fmt::Display for Components<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// One component: `2 of sku:2`.
        struct Component<'a>(&'a KitComponent);
        impl fmt::Display for Component<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} of {}", self.0.quantity, self.0.sku)
            }
        }
        let components: Vec<Component<'_>> = self.0.iter().map(Component).collect();
        write!(f, "{} ({})", Count(components.len(), "component", "components"), List(&components, "; "))
    }
}

/// One part of an order's outcome, briefly.
enum Part<'a> {
    Committed(&'a Committed),
    Released(&'a Released),
    Extended(&'a Extended),
}

impl fmt::Display for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Committed(part) => write!(f, "{} committed {}", part.reservation, total(&part.committed)),
            Part::Released(part) => write!(f, "{} returned {}", part.reservation, total(&part.lines)),
            Part::Extended(part) => write!(f, "{} now lapses at {}", part.reservation, part.deadline),
        }
    }
}

/// An order's parts: `2 parts: res:1/3 committed 2, res:2/5 committed 1`.
struct Parts<'a, 'p>(&'a [Part<'p>]);

impl fmt::Display for Parts<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", Count(self.0.len(), "part", "parts"), List(self.0, ", "))
    }
}

impl fmt::Display for AllocateRequest {
    /// `1500 of sku:1`, then what differs from the defaults in field
    /// order: `, partial`, `, by FIFO`, `, min shelf life 3d`,
    /// `, held for 15min`, `, if at version 4`, `, tag 42`,
    /// `, backordered`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.quantity, self.sku)?;
        if self.fill != FillMode::default() {
            write!(f, ", {}", self.fill)?;
        }
        modifiers(f, self.policy, self.min_shelf_life)?;
        if let Some(hold_for) = self.hold_for {
            write!(f, ", held for {}", Span(hold_for))?;
        }
        if let Some(version) = self.expected_version {
            write!(f, ", if at version {version}")?;
        }
        if self.tag != 0 {
            write!(f, ", tag {}", self.tag)?;
        }
        if self.backorder {
            f.write_str(", backordered")?;
        }
        Ok(())
    }
}

impl fmt::Display for OrderLine {
    /// `2 of sku:1`, then `, by FIFO` and `, min shelf life 3d` when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.quantity, self.sku)?;
        modifiers(f, self.policy, self.min_shelf_life)
    }
}

impl fmt::Display for OrderRequest {
    /// `2 lines (2 of sku:1; 1 of sku:2)`, then `, held for 15min` and
    /// `, tag 42` when set; past eight lines, `… and N more`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.lines.len();
        write!(f, "{count} line{} ({})", if count == 1 { "" } else { "s" }, List(&self.lines, "; "))?;
        if let Some(hold_for) = self.hold_for {
            write!(f, ", held for {}", Span(hold_for))?;
        }
        if self.tag != 0 {
            write!(f, ", tag {}", self.tag)?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    /// A verb, then the command's arguments: `define sku:1 by FEFO`,
    /// `receive lot:7 of 100 into sku:1` (then the lot's details, as
    /// [`NewLot`] prints them), `allocate 5 of sku:1`,
    /// `take 5 of sku:1`, `release res:1/3`, `commit res:1/3` (or
    /// `commit 2 of res:1/3`), `adjust lot:7 of sku:1 by -30 (spoilage)`,
    /// `allocate an order of 2 lines (…)`, `extend res:1/3 by 1min`,
    /// `expire due at 1000ms`, `set the low-stock threshold of sku:1 to 10`
    /// (or `clear the low-stock threshold of sku:1`), `commit order:7`,
    /// `release order:7`, `extend order:7 by 1min`, `define kit sku:9 as
    /// 2 components (1 of sku:1; 2 of sku:2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::DefineSku { sku, policy } => write!(f, "define {sku} by {policy}"),
            Command::Receive { sku, lot } => {
                write!(f, "receive {} of {} into {sku}{}", lot.id, lot.quantity, LotDetails(lot))
            }
            Command::Allocate(request) => write!(f, "allocate {request}"),
            Command::Take(request) => write!(f, "take {request}"),
            Command::Release { reservation } => write!(f, "release {reservation}"),
            Command::Commit { reservation, quantity: None } => write!(f, "commit {reservation}"),
            Command::Commit { reservation, quantity: Some(quantity) } => {
                write!(f, "commit {quantity} of {reservation}")
            }
            Command::Adjust { sku, lot, delta, reason, expected_version } => {
                write!(f, "adjust {lot} of {sku} by {delta:+} ({reason})")?;
                match expected_version {
                    Some(version) => write!(f, ", if at version {version}"),
                    None => Ok(()),
                }
            }
            Command::AllocateOrder(order) => write!(f, "allocate an order of {order}"),
            Command::Extend { reservation, by } => write!(f, "extend {reservation} by {}", Span(*by)),
            Command::ExpireDue { now } => write!(f, "expire due at {now}"),
            Command::SetLowStock { sku, rule: Some(rule) } => write!(f, "set low stock of {sku} to {rule}"),
            Command::SetLowStock { sku, rule: None } => write!(f, "clear the low-stock rule of {sku}"),
            Command::CommitOrder { order } => write!(f, "commit {order}"),
            Command::ReleaseOrder { order } => write!(f, "release {order}"),
            Command::ExtendOrder { order, by } => write!(f, "extend {order} by {}", Span(*by)),
            Command::DefineKit { kit, components } => write!(f, "define kit {kit} as {}", Components(components)),
            Command::Return(request) => write!(f, "return {request}"),
        }
    }
}

impl fmt::Display for Outcome {
    /// The outcome's own line (see each outcome type); for an order's
    /// commands, `order:7 committed 2 parts: res:1/3 committed 2, res:2/5
    /// committed 1` (`released`, with `; 1 part had already ended` when one
    /// had; `extended`, each part `now lapses at …`); for a kit, `kit sku:9
    /// defined as 2 components (1 of sku:1; 2 of sku:2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::SkuDefined(outcome) => outcome.fmt(f),
            Outcome::Received(outcome) => outcome.fmt(f),
            Outcome::Allocated(outcome) => outcome.fmt(f),
            Outcome::Sold(outcome) => outcome.fmt(f),
            Outcome::Released(outcome) => outcome.fmt(f),
            Outcome::Committed(outcome) => outcome.fmt(f),
            Outcome::Adjusted(outcome) => outcome.fmt(f),
            Outcome::OrderAllocated(outcome) => outcome.fmt(f),
            Outcome::Extended(outcome) => outcome.fmt(f),
            Outcome::Expired(outcome) => outcome.fmt(f),
            Outcome::LowStockSet(outcome) => outcome.fmt(f),
            Outcome::OrderCommitted(outcome) => {
                let parts: Vec<Part<'_>> = outcome.parts.iter().map(Part::Committed).collect();
                write!(f, "{} committed {}", outcome.order, Parts(&parts))
            }
            Outcome::OrderReleased(outcome) => {
                let parts: Vec<Part<'_>> = outcome.parts.iter().map(Part::Released).collect();
                write!(f, "{} released {}", outcome.order, Parts(&parts))?;
                match outcome.already_ended.len() {
                    0 => Ok(()),
                    ended => write!(f, "; {} had already ended", Count(ended, "part", "parts")),
                }
            }
            Outcome::OrderExtended(outcome) => {
                let parts: Vec<Part<'_>> = outcome.parts.iter().map(Part::Extended).collect();
                write!(f, "{} extended {}", outcome.order, Parts(&parts))
            }
            Outcome::KitDefined(outcome) => {
                write!(f, "kit {} defined as {}", outcome.kit, Components(&outcome.components))
            }
            Outcome::Returned(outcome) => outcome.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lot::LotAttributes;

    const SKU: SkuId = SkuId(1);

    /// One sample of every command, named by a `match` without a wildcard
    /// (a new command fails to compile here until it has a line), with the
    /// line it prints.
    fn samples() -> Vec<(Command, &'static str)> {
        let id = ReservationId::new(SKU, 3);
        let order =
            OrderRequest::new(vec![OrderLine::new(SKU, 2), OrderLine::new(SkuId(2), 1).policy(AllocationPolicy::Fifo)])
                .hold_for(Duration::from_secs(15 * 60));
        let lot = NewLot::new(LotId(7), 100)
            .received_at(Timestamp(5))
            .expires_at(Timestamp(900))
            .attributes(LotAttributes::default().supplier("Acme \"Dairy\"\nLtd"));
        vec![
            (Command::DefineSku { sku: SKU, policy: AllocationPolicy::Fefo }, "define sku:1 by FEFO"),
            (
                Command::Receive { sku: SKU, lot },
                r#"receive lot:7 of 100 into sku:1, received at 5ms, expires at 900ms, supplier "Acme \"Dairy\"\nLtd""#,
            ),
            (Command::Allocate(AllocateRequest::new(SKU, 5)), "allocate 5 of sku:1"),
            (
                Command::Take(
                    AllocateRequest::new(SKU, 1_500)
                        .fill(FillMode::Partial)
                        .policy(AllocationPolicy::Fifo)
                        .min_shelf_life(Duration::from_secs(3 * 86_400))
                        .hold_for(Duration::from_secs(60))
                        .if_version(4),
                ),
                "take 1500 of sku:1, partial, by FIFO, min shelf life 3d, held for 1min, if at version 4",
            ),
            (Command::Release { reservation: id }, "release res:1/3"),
            (Command::Commit { reservation: id, quantity: Some(2) }, "commit 2 of res:1/3"),
            (
                Command::Adjust {
                    sku: SKU,
                    lot: LotId(7),
                    delta: -30,
                    reason: AdjustmentReason::Spoilage,
                    expected_version: Some(9),
                },
                "adjust lot:7 of sku:1 by -30 (spoilage), if at version 9",
            ),
            (
                Command::AllocateOrder(order),
                "allocate an order of 2 lines (2 of sku:1; 1 of sku:2, by FIFO), held for 15min",
            ),
            (Command::Extend { reservation: id, by: Duration::from_secs(60) }, "extend res:1/3 by 1min"),
            (Command::ExpireDue { now: Timestamp(1_000) }, "expire due at 1000ms"),
            (
                Command::SetLowStock { sku: SKU, rule: Some(LowStock::new(10)) },
                "set low stock of sku:1 to at or below 10 available",
            ),
            (Command::CommitOrder { order: OrderId(7) }, "commit order:7"),
            (Command::ReleaseOrder { order: OrderId(7) }, "release order:7"),
            (Command::ExtendOrder { order: OrderId(7), by: Duration::from_secs(120) }, "extend order:7 by 2min"),
            (
                Command::DefineKit {
                    kit: SkuId(9),
                    components: vec![KitComponent::new(SKU, 1), KitComponent::new(SkuId(2), 2)],
                },
                "define kit sku:9 as 2 components (1 of sku:1; 2 of sku:2)",
            ),
            (
                Command::Return(
                    ReturnRequest::new(SKU, LotId(7), 2)
                        .reason(crate::returns::ReturnReason::Restocked)
                        .into_new_lot(NewLot::new(LotId(9), 2))
                        .from(crate::returns::ReturnSource::Reservation(id)),
                ),
                "return 2 of lot:7 of sku:1, restocked, into new lot:9, from res:1/3",
            ),
        ]
    }

    #[test]
    fn every_command_prints_one_stable_line() {
        let mut named = std::collections::BTreeSet::new();
        for (command, line) in samples() {
            named.insert(match &command {
                Command::DefineSku { .. } => "DefineSku",
                Command::Receive { .. } => "Receive",
                Command::Allocate(_) => "Allocate",
                Command::Take(_) => "Take",
                Command::Release { .. } => "Release",
                Command::Commit { .. } => "Commit",
                Command::Adjust { .. } => "Adjust",
                Command::AllocateOrder(_) => "AllocateOrder",
                Command::Extend { .. } => "Extend",
                Command::ExpireDue { .. } => "ExpireDue",
                Command::SetLowStock { .. } => "SetLowStock",
                Command::CommitOrder { .. } => "CommitOrder",
                Command::ReleaseOrder { .. } => "ReleaseOrder",
                Command::ExtendOrder { .. } => "ExtendOrder",
                Command::DefineKit { .. } => "DefineKit",
                Command::Return(_) => "Return",
            });
            assert_eq!(command.to_string(), line);
            assert!(!line.contains('\n'), "{line:?} is one line");
        }
        assert_eq!(named.len(), 16, "a sample of every command");
        let tagged = OrderRequest::new(vec![OrderLine::new(SKU, 1)]).tag(42);
        assert_eq!(tagged.to_string(), "1 line (1 of sku:1), tag 42");
        let id = ReservationId::new(SKU, 3);
        assert_eq!(Command::Commit { reservation: id, quantity: None }.to_string(), "commit res:1/3");
        assert_eq!(Command::SetLowStock { sku: SKU, rule: None }.to_string(), "clear the low-stock rule of sku:1");
        let grow = Command::Adjust {
            sku: SKU,
            lot: LotId(7),
            delta: 30,
            reason: AdjustmentReason::Recount,
            expected_version: None,
        };
        assert_eq!(grow.to_string(), "adjust lot:7 of sku:1 by +30 (recount)");
        let waiting = AllocateRequest::new(SKU, 5).tag(42).backordered();
        assert_eq!(Command::Allocate(waiting).to_string(), "allocate 5 of sku:1, tag 42, backordered");
    }

    #[test]
    fn long_requests_print_a_bounded_line() {
        let lines: Vec<OrderLine> =
            (0..OrderRequest::LINES_MAX as u64).map(|sku| OrderLine::new(SkuId(sku), 1)).collect();
        let printed = OrderRequest::new(lines).to_string();
        assert!(printed.starts_with("256 lines (1 of sku:0; 1 of sku:1; "), "{printed}");
        assert!(printed.ends_with("1 of sku:7; … and 248 more)"), "{printed}");
        let huge = "x".repeat(1 << 20);
        let lot = NewLot::new(LotId(1), 1).attributes(LotAttributes::default().supplier(huge)).at(LocationId(3));
        assert_eq!(lot.to_string(), "lot:1 of 1, supplier of 1048576 bytes, at loc:3");
        assert_eq!(OrderRequest::new(vec![OrderLine::new(SKU, 1)]).to_string(), "1 line (1 of sku:1)");
    }
}
