//! Typed errors, one enum per command family, and the [`ErrorKind`] every
//! error of the crate answers to.
//!
//! Owns: every way a command can be refused; which kind of refusal each one
//! is ([`ErrorKind`], in `kind.rs`: the mapping of every public error type
//! of the crate, and its tests); and the questions a caller asks of any
//! error (`kind()`, `is_transient()`, `is_insufficient()`, …) without
//! matching on variants.
//!
//! Must never: describe a half-applied change, or import anything above
//! the values it names (ids, quantities, instants, lots). A command that
//! returns an error changed nothing. Variants are listed in precedence
//! order: when several apply, the first one listed is reported (input
//! checks first, then lookups, then stock), so the same bad command always
//! gets the same error. Each variant carries what was rejected (a
//! too-long string by its length, never its text).
//!
//! A wrapper ([`CommandError`], [`OrderError::Line`], and
//! [`KeyedError`](crate::KeyedError) beside the idempotency store) says in
//! its message only what it adds, and hands its cause out as
//! [`source()`](std::error::Error::source): print the chain (or match on
//! [`kind()`](AllocateError::kind), which a wrapper takes from its cause)
//! to see why.

pub(crate) mod kind;

pub use kind::ErrorKind;
pub(crate) use kind::questions;

use crate::clock::Timestamp;
use crate::ids::{LocationId, LotId, OrderId, ReservationId, SkuId};
use crate::lot::{AttributeTooLong, LotAttribute};
use crate::quantity::Quantity;
use std::time::Duration;

/// Defining a SKU was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum DefineError {
    /// The SKU (or a kit with its id) is already defined.
    #[error("{sku} is already defined")]
    AlreadyDefined {
        /// The SKU.
        sku: SkuId,
    },
    /// The catalog holds the most SKUs and kits a ledger may have.
    #[error("{sku}: the catalog is full ({max} SKUs and kits)")]
    CatalogFull {
        /// The SKU.
        sku: SkuId,
        /// The most SKUs and kits a ledger may have.
        max: usize,
    },
}

/// Receiving a lot was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReceiveError {
    /// A lot of zero units.
    #[error("{lot} of {sku}: a lot must have at least one unit")]
    ZeroQuantity {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// More units than [`Quantity::MAX`].
    #[error("{lot} of {sku}: quantity {quantity} exceeds the maximum")]
    QuantityTooLarge {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// A lot attribute longer than its stated maximum (for the supplier,
    /// [`LotAttributes::SUPPLIER_LEN_MAX`](crate::LotAttributes::SUPPLIER_LEN_MAX)).
    /// Carries the length, not the text.
    #[error("{lot} of {sku}: a {field} of {len} bytes is longer than the {max} allowed")]
    AttributeTooLong {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// Which attribute.
        field: LotAttribute,
        /// Its length in bytes (UTF-8).
        len: usize,
        /// The most bytes it may have.
        max: usize,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The SKU already has a lot with this id.
    #[error("{sku} already has {lot}")]
    DuplicateLot {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// The SKU's total received would exceed [`Quantity::MAX`].
    #[error("{sku}: receiving {quantity} more would exceed the maximum total")]
    Overflow {
        /// The SKU.
        sku: SkuId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// The SKU already has the most lots one SKU may have.
    #[error("{sku} already has the maximum of {max} lots")]
    TooManyLots {
        /// The SKU.
        sku: SkuId,
        /// The most lots a SKU may have.
        max: u32,
    },
    /// A location id past [`LOCATION_MAX`](crate::LOCATION_MAX).
    #[error("{lot} of {sku}: location {location} is past the largest, {max}")]
    LocationOutOfRange {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The rejected location.
        location: LocationId,
        /// The largest allowed.
        max: u32,
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

impl ReceiveError {
    /// The refusal of lot `lot` of `sku` for an attribute past its maximum.
    pub(crate) fn attribute_too_long(sku: SkuId, lot: LotId, too_long: AttributeTooLong) -> ReceiveError {
        let AttributeTooLong { field, len, max } = too_long;
        ReceiveError::AttributeTooLong { sku, lot, field, len, max }
    }
}

/// An allocation (or an immediate sale) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum AllocateError {
    /// A request for zero units.
    #[error("{sku}: an allocation must ask for at least one unit")]
    ZeroQuantity {
        /// The SKU.
        sku: SkuId,
    },
    /// A request for more than [`Quantity::MAX`] units.
    #[error("{sku}: quantity {quantity} exceeds the maximum")]
    QuantityTooLarge {
        /// The SKU.
        sku: SkuId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// A hold duration under one millisecond, the clock's resolution
    /// (leave it unset to hold until ended).
    #[error("{sku}: a hold duration must be at least one millisecond")]
    ZeroHold {
        /// The SKU.
        sku: SkuId,
    },
    /// A hold duration longer than the ledger's maximum.
    #[error("{sku}: holding for {requested:?} exceeds the maximum of {max:?}")]
    HoldTooLong {
        /// The SKU.
        sku: SkuId,
        /// The rejected duration.
        requested: Duration,
        /// The ledger's maximum hold duration.
        max: Duration,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The request was conditional on a version the SKU no longer has.
    #[error("{sku}: expected version {expected}, the SKU is at {current}")]
    VersionMismatch {
        /// The SKU.
        sku: SkuId,
        /// The version the caller decided on.
        expected: u64,
        /// The version the request met.
        current: u64,
    },
    /// The eligible lots hold fewer units than a fill-or-kill request asked
    /// for (or none at all, for a partial request).
    #[error("{sku}: {requested} requested, {available} available")]
    Insufficient {
        /// The SKU.
        sku: SkuId,
        /// Units asked for.
        requested: Quantity,
        /// Units the policy could have allocated at that instant.
        available: Quantity,
    },
    /// The request's locations are not a valid list.
    #[error("{sku}: invalid locations: {problem}")]
    InvalidLocations {
        /// The SKU.
        sku: SkuId,
        /// What is wrong with them.
        problem: LocationsProblem,
    },
    /// A backorder restricted to locations: backorders are filled from any
    /// location, by the SKU's policy.
    #[error("{sku}: a backorder cannot be restricted to locations")]
    BackorderWithLocations {
        /// The SKU.
        sku: SkuId,
    },
    /// The SKU is a kit: kits are allocated as orders of their components
    /// ([`Ledger::allocate_order`](crate::Ledger::allocate_order)).
    #[error("{sku} is a kit: allocate it with an order")]
    Kit {
        /// The kit.
        sku: SkuId,
    },
    /// The SKU already has the most backorders it keeps waiting.
    #[error("{sku}: {max} backorders are already waiting")]
    BackorderQueueFull {
        /// The SKU.
        sku: SkuId,
        /// The most backorders one SKU keeps waiting.
        max: usize,
    },
    /// A backorder was asked of an immediate sale (`take`), which holds
    /// nothing to wait with.
    #[error("{sku}: an immediate sale cannot be a backorder")]
    BackorderOnTake {
        /// The SKU.
        sku: SkuId,
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

/// What is wrong with a request's list of locations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum LocationsProblem {
    /// More than [`LOCATIONS_MAX`](crate::LOCATIONS_MAX) locations.
    #[error("{count} locations, at most {max}")]
    TooMany {
        /// Locations given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// `Locations::Only` with no location: nothing could serve it.
    #[error("no location to draw from")]
    Empty,
    /// A location named twice.
    #[error("{location} is named twice")]
    Repeated {
        /// The location.
        location: LocationId,
    },
    /// A location past [`LOCATION_MAX`](crate::LOCATION_MAX).
    #[error("{location} is past the largest, {max}")]
    OutOfRange {
        /// The location.
        location: LocationId,
        /// The largest allowed.
        max: u32,
    },
}

/// Releasing a reservation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ReleaseError {
    /// The reservation's SKU is not defined.
    #[error("{} is not defined", id.sku)]
    UnknownSku {
        /// The reservation.
        id: ReservationId,
    },
    /// The SKU never issued this reservation.
    #[error("{id} was never issued")]
    UnknownReservation {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation already ended (committed, released or expired).
    #[error("{id} has already ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation's deadline had passed: it lapsed (this very call
    /// returned its units) and can no longer be ended any other way.
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
    },
    /// The reservation is a part of an order: it commits, releases and
    /// extends with its order, not alone.
    #[error("{id} is a part of {order}: end it through its order")]
    OrderPart {
        /// The reservation.
        id: ReservationId,
        /// Its order.
        order: OrderId,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{id}: gave up after {attempts} contended attempts")]
    Contended {
        /// The reservation.
        id: ReservationId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// Committing a reservation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CommitError {
    /// An explicit commit of zero units (commit everything with `None`).
    #[error("{id}: an explicit commit must be of at least one unit")]
    ZeroQuantity {
        /// The reservation.
        id: ReservationId,
    },
    /// More than [`Quantity::MAX`] units.
    #[error("{id}: quantity {quantity} exceeds the maximum")]
    QuantityTooLarge {
        /// The reservation.
        id: ReservationId,
        /// The rejected quantity.
        quantity: u64,
    },
    /// The reservation's SKU is not defined.
    #[error("{} is not defined", id.sku)]
    UnknownSku {
        /// The reservation.
        id: ReservationId,
    },
    /// The SKU never issued this reservation.
    #[error("{id} was never issued")]
    UnknownReservation {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation already ended (committed, released or expired).
    #[error("{id} has already ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation's deadline had passed: it lapsed (this very call
    /// returned its units) and can no longer be ended any other way.
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
    },
    /// A backorder still waiting for units: it commits once whole (or
    /// release it).
    #[error("{id} is a backorder still waiting for {outstanding} units")]
    Waiting {
        /// The reservation.
        id: ReservationId,
        /// Units it still waits for.
        outstanding: Quantity,
    },
    /// More units than the reservation holds.
    #[error("{id}: commit of {requested} exceeds the {held} held")]
    ExceedsHeld {
        /// The reservation.
        id: ReservationId,
        /// Units asked to commit.
        requested: Quantity,
        /// Units the reservation holds.
        held: Quantity,
    },
    /// The reservation is a part of an order: it commits, releases and
    /// extends with its order, not alone.
    #[error("{id} is a part of {order}: end it through its order")]
    OrderPart {
        /// The reservation.
        id: ReservationId,
        /// Its order.
        order: OrderId,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{id}: gave up after {attempts} contended attempts")]
    Contended {
        /// The reservation.
        id: ReservationId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// An adjustment was refused. Reality is never refused: a shrink below what
/// reservations hold is applied. Only impossible input is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum AdjustError {
    /// A delta of zero.
    #[error("{lot} of {sku}: an adjustment must change something")]
    ZeroDelta {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
    },
    /// A delta larger in size than [`Quantity::MAX`].
    #[error("{lot} of {sku}: delta {delta} exceeds the maximum")]
    DeltaTooLarge {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// The rejected delta.
        delta: i64,
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
    /// The adjustment was conditional on a version the SKU no longer has.
    #[error("{sku}: expected version {expected}, the SKU is at {current}")]
    VersionMismatch {
        /// The SKU.
        sku: SkuId,
        /// The version the caller decided on.
        expected: u64,
        /// The version the adjustment met.
        current: u64,
    },
    /// The lot would hold fewer than zero units, or more than the maximum.
    #[error("{lot} of {sku}: {on_hand} on hand cannot change by {delta}")]
    OutOfRange {
        /// The SKU.
        sku: SkuId,
        /// The lot.
        lot: LotId,
        /// Units on hand before the adjustment.
        on_hand: Quantity,
        /// The rejected delta.
        delta: i64,
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

/// Extending a reservation's deadline was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ExtendError {
    /// An extension by less than one millisecond, the clock's resolution.
    #[error("{id}: an extension must be at least one millisecond")]
    ZeroDuration {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation's SKU is not defined.
    #[error("{} is not defined", id.sku)]
    UnknownSku {
        /// The reservation.
        id: ReservationId,
    },
    /// The SKU never issued this reservation.
    #[error("{id} was never issued")]
    UnknownReservation {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation already ended.
    #[error("{id} has already ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
    /// The deadline had already passed: the reservation lapsed.
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
    },
    /// The reservation has no deadline to extend: it holds until ended.
    #[error("{id} has no deadline")]
    NoDeadline {
        /// The reservation.
        id: ReservationId,
    },
    /// The new deadline would pass the latest this reservation may have
    /// (its allocation instant plus the ledger's maximum hold duration).
    #[error("{id}: deadline {requested} is past the latest allowed, {latest}")]
    BeyondMaximum {
        /// The reservation.
        id: ReservationId,
        /// The deadline asked for.
        requested: Timestamp,
        /// The latest deadline it may have.
        latest: Timestamp,
    },
    /// The reservation is a part of an order: it commits, releases and
    /// extends with its order, not alone.
    #[error("{id} is a part of {order}: end it through its order")]
    OrderPart {
        /// The reservation.
        id: ReservationId,
        /// Its order.
        order: OrderId,
    },
    /// Too many concurrent changes to the SKU; nothing changed.
    #[error("{id}: gave up after {attempts} contended attempts")]
    Contended {
        /// The reservation.
        id: ReservationId,
        /// How many times the change was retried.
        attempts: u32,
    },
}

/// A sweep of lapsed reservations was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ExpireError {
    /// The instant is later than the ledger's clock: sweeping at it would
    /// end reservations before their deadlines.
    #[error("cannot sweep at {now}: the ledger's clock reads {clock}")]
    InFuture {
        /// The instant asked for.
        now: Timestamp,
        /// The ledger clock's reading.
        clock: Timestamp,
    },
}

/// A multi-line order was refused; no line of it is held.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum OrderError {
    /// An order without lines.
    #[error("an order must have at least one line")]
    Empty,
    /// More lines than [`OrderRequest::LINES_MAX`](crate::OrderRequest::LINES_MAX).
    #[error("{lines} lines exceed the maximum of {max}")]
    TooManyLines {
        /// Lines in the order.
        lines: usize,
        /// The maximum.
        max: usize,
    },
    /// A hold duration under one millisecond (leave it unset to hold until
    /// ended).
    #[error("an order's hold duration must be at least one millisecond")]
    ZeroHold,
    /// A hold duration longer than the ledger's maximum.
    #[error("holding for {requested:?} exceeds the maximum of {max:?}")]
    HoldTooLong {
        /// The rejected duration.
        requested: Duration,
        /// The ledger's maximum hold duration.
        max: Duration,
    },
    /// One line was refused (its index in the request, and why). Input
    /// errors of every line are found before any stock is touched; a stock
    /// refusal names the first line its SKU could not cover.
    #[error("order line {index} was refused")]
    Line {
        /// The line's index in the request.
        index: usize,
        /// Why it was refused (also the error's
        /// [`source()`](std::error::Error::source)).
        #[source]
        error: AllocateError,
    },
}

/// Setting a low-stock threshold was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ThresholdError {
    /// A low-stock threshold or margin larger than [`Quantity::MAX`].
    #[error("{sku}: threshold or margin {threshold} exceeds the maximum")]
    TooLarge {
        /// The SKU.
        sku: SkuId,
        /// The rejected threshold.
        threshold: u64,
    },
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
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

/// The error of any [`Command`](crate::Command) run through
/// [`Ledger::execute`](crate::Ledger::execute): the command's own error,
/// as the [`source()`](std::error::Error::source), behind a message that
/// names the command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CommandError {
    /// From [`Command::DefineSku`](crate::Command::DefineSku).
    #[error("defining a SKU was refused")]
    Define(#[from] DefineError),
    /// From [`Command::Receive`](crate::Command::Receive).
    #[error("receiving a lot was refused")]
    Receive(#[from] ReceiveError),
    /// From [`Command::Allocate`](crate::Command::Allocate) or
    /// [`Command::Take`](crate::Command::Take).
    #[error("the allocation (or sale) was refused")]
    Allocate(#[from] AllocateError),
    /// From [`Command::Release`](crate::Command::Release).
    #[error("the release was refused")]
    Release(#[from] ReleaseError),
    /// From [`Command::Commit`](crate::Command::Commit).
    #[error("the commit was refused")]
    Commit(#[from] CommitError),
    /// From [`Command::Adjust`](crate::Command::Adjust).
    #[error("the adjustment was refused")]
    Adjust(#[from] AdjustError),
    /// From [`Command::Extend`](crate::Command::Extend).
    #[error("the extension was refused")]
    Extend(#[from] ExtendError),
    /// From [`Command::ExpireDue`](crate::Command::ExpireDue).
    #[error("the sweep was refused")]
    Expire(#[from] ExpireError),
    /// From [`Command::AllocateOrder`](crate::Command::AllocateOrder).
    #[error("the order was refused")]
    Order(#[from] OrderError),
    /// From [`Command::SetLowStock`](crate::Command::SetLowStock).
    #[error("setting the low-stock threshold was refused")]
    Threshold(#[from] ThresholdError),
    /// From [`Command::CommitOrder`](crate::Command::CommitOrder),
    /// [`Command::ReleaseOrder`](crate::Command::ReleaseOrder) or
    /// [`Command::ExtendOrder`](crate::Command::ExtendOrder).
    #[error("the order's commit, release or extension was refused")]
    OrderChange(#[from] crate::orders::OrderChangeError),
    /// From [`Command::DefineKit`](crate::Command::DefineKit).
    #[error("defining a kit was refused")]
    Kit(#[from] crate::kits::KitError),
    /// From [`Command::Return`](crate::Command::Return).
    #[error("the return was refused")]
    Return(#[from] crate::returns::ReturnError),
    /// Recorded by a recovery for an idempotency key whose command had
    /// started when the process died and whose result was never recorded:
    /// the command may have been applied. A retry with the key gets this
    /// refusal (never a second application); look at the stock, then use
    /// a new key if it was not.
    #[error(
        "the keyed command was under way when the process stopped: it may have been applied, and its outcome was lost"
    )]
    OutcomeLost,
}
