//! # stockroom
//!
//! An embeddable, in-process inventory engine. Many threads ask it, at
//! memory speed, whether an order may have its units and from which lots;
//! it never oversells, never loses a unit, and takes no lock to answer.
//!
//! ## The problem
//!
//! The obvious engine puts a mutex around each SKU's lots:
//!
//! ```
//! use std::sync::Mutex;
//!
//! struct Sku { lots: Mutex<Vec<(u64 /* expiry */, u64 /* units */)>> }
//!
//! impl Sku {
//!     fn allocate(&self, mut want: u64) -> Option<Vec<(usize, u64)>> {
//!         let mut lots = self.lots.lock().unwrap(); // every buyer queues here
//!         let total: u64 = lots.iter().map(|l| l.1).sum();
//!         if total < want { return None; }
//!         let mut lines = Vec::new();
//!         for (i, lot) in lots.iter_mut().enumerate() {
//!             let take = lot.1.min(want);
//!             if take > 0 { lot.1 -= take; want -= take; lines.push((i, take)); }
//!             if want == 0 { break; }
//!         }
//!         Some(lines)
//!     }
//! }
//! # let sku = Sku { lots: Mutex::new(vec![(1, 5), (2, 5)]) };
//! # assert_eq!(sku.allocate(7), Some(vec![(0, 5), (1, 2)]));
//! ```
//!
//! It is correct, and a thread preempted while holding the lock stalls
//! every buyer of that SKU; readers wait behind writers; a dashboard that
//! wants a consistent view must take the lock too.
//!
//! ## What stockroom does instead
//!
//! Each SKU is an immutable, versioned [`Snapshot`]: lots in policy order,
//! live reservations, totals. A command loads the current version, derives
//! the next one off to the side, and publishes it with one
//! compare-and-swap; if another command got there first it retries from
//! the new version. A refusal (sold out) costs one load. An immediate
//! sale that the first lot can cover (with events off) is cheaper still:
//! one compare-and-swap on a counter inside the current version, folded
//! into the next version that replaces it; it still gets a version of its
//! own. Readers take a snapshot and never block anyone.
//!
//! ```
//! use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId};
//! use std::sync::Arc;
//!
//! let ledger = Arc::new(Ledger::new());
//! let tickets = SkuId(42);
//! ledger.define_sku(tickets, AllocationPolicy::Fifo).unwrap();
//! ledger.receive(tickets, NewLot::new(LotId(1), 100)).unwrap();
//!
//! let buyers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let ledger = Arc::clone(&ledger);
//!         std::thread::spawn(move || {
//!             (0..50).filter(|_| ledger.take(&AllocateRequest::new(tickets, 1)).is_ok()).count()
//!         })
//!     })
//!     .collect();
//! let sold: usize = buyers.into_iter().map(|b| b.join().unwrap()).sum();
//! assert_eq!(sold, 100); // 200 attempts, 100 units: never one more
//! assert!(ledger.audit().is_clean());
//! ```
//!
//! ## Index
//!
//! - The engine: [`Ledger`] (settings: [`LedgerBuilder`],
//!   [`LedgerBuildError`]); its queries return a [`Snapshot`] (or
//!   [`SnapshotData`]), a [`Reservation`], or an [`AuditReport`] of
//!   [`Violation`]s.
//! - Commands: [`Ledger::define_sku`], [`Ledger::receive`] ([`NewLot`]),
//!   [`Ledger::allocate`] and [`Ledger::take`] ([`AllocateRequest`],
//!   [`AllocationPolicy`], [`FillMode`]), [`Ledger::release`],
//!   [`Ledger::commit`], [`Ledger::adjust`] ([`AdjustmentReason`]); as data,
//!   [`Command`] through [`Ledger::execute`].
//! - The reservation lifecycle: deadlines
//!   ([`AllocateRequest::hold_for`], [`Ledger::extend`],
//!   [`Ledger::expire_due`], a background [`Reaper`] with
//!   [`ReaperConfig`]); multi-line orders ([`Ledger::allocate_order`],
//!   [`OrderRequest`], [`OrderLine`]); conditional commands
//!   ([`AllocateRequest::if_version`], [`Ledger::adjust_if_version`]); a
//!   scoped [`HoldGuard`] ([`Ledger::allocate_guarded`]); idempotency
//!   ([`Ledger::execute_keyed`], [`IdempotencyKey`], [`KeyWindow`],
//!   [`Keyed`]); low-stock thresholds ([`Ledger::set_low_stock`]).
//! - Events: [`Ledger::subscribe`] gives a [`Subscription`] of
//!   [`Delivery`]s: each an [`Event`] ([`Change`], [`Notice`]) or a
//!   [`Delivery::Lagged`] count.
//! - Outcomes: [`SkuDefined`], [`Received`], [`Allocation`], [`Sale`],
//!   [`Released`], [`Committed`], [`Adjusted`] ([`Shortfall`]),
//!   [`OrderAllocation`], [`Extended`], [`ExpiryReport`] ([`Swept`],
//!   [`Lapsed`]), [`LowStockSet`], all in [`Line`]s; as data, [`Outcome`].
//! - Errors, one enum per command, variants in precedence order, each with
//!   `kind()` (an [`ErrorKind`]) and `is_transient()`, `is_insufficient()`,
//!   `is_not_found()`, `is_ended()`, `is_conflict()`, `is_invalid()`:
//!   [`DefineError`], [`ReceiveError`], [`AllocateError`],
//!   [`ReleaseError`], [`CommitError`], [`AdjustError`], [`ExtendError`],
//!   [`ExpireError`], [`OrderError`], [`ThresholdError`], [`KeyedError`],
//!   [`QueryError`]; as data, [`CommandError`]. A wrapper's cause is its
//!   `source()`. Also [`SubscribeError`], [`KeyError`], [`ReaperError`],
//!   and the receive errors [`RecvError`], [`TryRecvError`],
//!   [`RecvTimeoutError`].
//! - Values: [`SkuId`], [`LotId`], [`ReservationId`], [`Quantity`] ([`QuantityTooLarge`]),
//!   [`LotQuantities`], [`LotSnapshot`], [`LotAttributes`] ([`LotAttribute`]), [`Timestamp`].
//!   Public enums and growing structs are `#[non_exhaustive]`: requests
//!   have constructors and builder methods, outcomes a `new`; commands,
//!   requests, policies and outcomes print as one line (`Display`).
//! - Time: the [`Clock`] trait, [`SystemClock`], [`ManualClock`].
//! - Ingestion: [`intake`], a bounded queue and worker pool over the
//!   ledger with back-pressure, load shedding, tickets and shutdown
//!   ([`intake::Intake`]).
//!
//! ## Guarantees
//!
//! No overselling; conservation per lot; linearizable commands (per SKU:
//! a multi-line order across SKUs is all-or-nothing in its outcome, not one
//! atomic step, see [`Ledger::allocate_order`]); an allocation's lines are
//! exactly its policy's choice from the version it replaced; a reservation
//! ends exactly once (committed, released or lapsed); a keyed command
//! applies at most once per key; allocate, take, release, commit, extend and
//! adjust are lock-free (keyed commands also take the key table's shard
//! lock for single map operations); bad input gets a typed error and
//! changes nothing. [`Ledger::audit`] checks the state-based ones at any
//! time.
//!
//! ## Features
//!
//! - `serde` (default): `Serialize`/`Deserialize` for commands, outcomes,
//!   errors and snapshot data.
//!
//! Two cfgs, not features and outside semver, swap the primitives in the
//! crate's one facade module for model checking: `stockroom_loom` (loom's
//! exhaustive interleavings; the models sit beside the code they check) and
//! `stockroom_shuttle` (shuttle's randomized and PCT schedules over the
//! whole API, `tests/shuttle.rs`).

#![warn(unreachable_pub, missing_docs, missing_debug_implementations)]

// The layers, lowest first. A module uses the ones in its own layer or
// below, never one above (doc links excepted); `grep -n "use crate::" src`
// checks it.
//
// 1. `sync`: the std/loom/shuttle facade; `trace` (logging macros) and
//    `waker` (wake-up hand-off) beside it.
// 2. Values, plain data: `quantity`, `ids`, `clock`, `policy`, `lot`,
//    `outcome`, `reservation`, `command`, `error` (and its `kind`),
//    `display`.
// 3. The SKU cell: `cell`.
// 4. Beside the cell: `sku_table`, `snapshot`, `audit`.
// 5. The ledger and what it owns: `events`, `idempotency`, `keyed_error`
//    (it names an idempotency key), `metrics`, `ledger`, `guard`, `orders`,
//    `kits`, `error_kinds` (the kinds of this layer's errors whose modules
//    do not map them themselves).
// 6. Around the ledger, on its public API: `reaper`, `intake`, `journal`.
//
// Still against the rule, to fix where the types live: `command` and
// `error` name values defined in layer 5 (`orders::{OrderCommitted,
// OrderReleased, OrderExtended, OrderChangeError}`, plain data in
// `orders/types.rs`; `kits::{KitComponent, KitDefined, KitError}`, beside
// the kit book in `kits.rs`): they belong in layer 2. `metrics` (used by
// `ledger`) imports `intake::IntakeStats`. `kits` and `ledger`, `orders`
// and `ledger` import each other.
mod audit;
mod cell;
mod clock;
mod command;
mod display;
#[cfg(feature = "journal")]
mod durable;
mod error;
mod error_kinds;
mod events;
mod guard;
mod idempotency;
mod ids;
mod image;
pub mod intake;
#[cfg(feature = "journal")]
pub mod journal;
mod keyed_error;
mod keyed_pack;
mod kits;
mod ledger;
mod locations;
mod lot;
mod low_stock;
mod metrics;
pub mod orders;
mod outcome;
mod policy;
mod quantity;
mod reaper;
mod reservation;
mod returns;
mod sku_table;
mod snapshot;
mod stock;
mod sync;
mod trace;
#[cfg(any(feature = "async", all(test, stockroom_loom)))]
mod waker;

pub use audit::{AuditReport, Violation};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use command::{AllocateRequest, Command, OrderLine, OrderRequest, Outcome};
#[cfg(feature = "journal")]
pub use durable::{AcknowledgeError, CheckpointError, FeedRecord, LedgerOpenError, Recovered};
pub use error::{
    AdjustError, AllocateError, CommandError, CommitError, DefineError, ErrorKind, ExpireError, ExtendError,
    LocationsProblem, OrderError, ReceiveError, ReleaseError, ThresholdError,
};
pub use events::{Change, Delivery, Event, Notice, RecvError, RecvTimeoutError, Subscription, TryRecvError};
pub use guard::{HoldGuard, OwnedHoldGuard};
pub use idempotency::{IdempotencyKey, KEY_LEN_MAX, KeyError, KeyWindow};
pub use ids::{LOCATION_MAX, LocationId, LotId, OrderId, ReservationId, SkuId};
pub use image::{ImageError, LedgerImage, RestoreError};
pub use keyed_error::KeyedError;
pub use kits::{KIT_COMPONENTS_MAX, Kit, KitComponent, KitDefined, KitError};
pub use ledger::{Ledger, LedgerBuildError, LedgerBuilder, QueryError, SUBSCRIPTION_CAPACITY_MAX, SubscribeError};
pub use locations::LocationStock;
pub use lot::{AdjustmentReason, LotAttribute, LotAttributes, LotQuantities, LotSnapshot, NewLot};
pub use low_stock::{LowStock, LowStockBasis};
pub use metrics::{CommandCounts, CommandKind, MetricsSnapshot, RefusalCount, RefusalReason};
pub use orders::{
    ORDERS_KEPT, OrderChangeError, OrderCommitted, OrderExtended, OrderReleased, OrderState, OrderStatus, PartFailure,
    PartState, PartStatus,
};
pub use outcome::{
    Adjusted, Allocation, Committed, ExpiryReport, Extended, Keyed, Lapsed, Line, Lines, LowStockSet, OrderAllocation,
    Pinned, Received, Released, Sale, Shortfall, SkuDefined, Swept,
};
pub use policy::{AllocationPolicy, FillMode, LOCATIONS_MAX, Locations};
pub use quantity::{Quantity, QuantityTooLarge};
pub use reaper::{Reaper, ReaperConfig, ReaperError, ReaperStats};
pub use reservation::Reservation;
pub use returns::{ReturnError, ReturnInto, ReturnReason, ReturnRequest, ReturnSource, Returned};
pub use snapshot::{Snapshot, SnapshotData};
pub use stock::{LotLevel, StockLevels};

/// Internals the benches measure directly (`benches/sku_table.rs`). Not
/// part of the API: outside semver, may change or go at any time.
#[doc(hidden)]
pub mod bench_internals {
    pub use crate::sku_table::table::{InsertError, Iter, LEN_MAX, ProbeStats, SkuTable};
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
