//! The ledger: the SKU table, the commands, the queries and the audit.
//!
//! Owns: [`Ledger`], input validation for every command, and the mapping
//! from a command to the SKU cell transition that carries it out.
//!
//! Must never: change stock itself, or touch state before a command's input
//! is validated. Validation runs first, in the precedence order of each
//! error enum (input, then lookups, then stock); a refused command changed
//! nothing. Stock moves only inside [`SkuCell::update`].

use crate::audit::{AuditReport, audit_sku};
use crate::cell::{Demand, HoldLookup, SkuCell, SkuState};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::command::{AllocateRequest, Command, Outcome};
use crate::error::{AdjustError, AllocateError, CommandError, CommitError, DefineError, ReceiveError, ReleaseError};
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, NewLot};
use crate::outcome::{Adjusted, Allocation, Committed, Received, Released, Sale, SkuDefined};
use crate::policy::{AllocationPolicy, Eligibility};
use crate::quantity::Quantity;
use crate::reservation::Reservation;
use crate::sku_table::SkuTable;
use crate::snapshot::Snapshot;
use crate::sync::Arc;
use std::cell::Cell;
use std::time::Duration;

/// A query named something that does not exist (or no longer does).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum QueryError {
    /// The SKU is not defined.
    #[error("{sku} is not defined")]
    UnknownSku {
        /// The SKU.
        sku: SkuId,
    },
    /// The SKU never issued this reservation.
    #[error("{id} was never issued")]
    UnknownReservation {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation has ended.
    #[error("{id} has ended")]
    Ended {
        /// The reservation.
        id: ReservationId,
    },
}

/// The inventory engine: every SKU, its lots and its reservations.
///
/// `Ledger` is `Send + Sync`; share it by `Arc` or by reference. Every
/// command is linearizable: it takes effect at one instant (the
/// compare-and-swap that publishes the SKU's next version) between its
/// call and its return. Queries read a published version and never block
/// a command.
///
/// ```
/// use stockroom::{AllocateRequest, AllocationPolicy, Ledger, LotId, NewLot, SkuId, Timestamp};
///
/// let ledger = Ledger::new();
/// let flour = SkuId(1);
/// ledger.define_sku(flour, AllocationPolicy::Fefo)?;
/// ledger.receive(flour, NewLot::new(LotId(1), 1_000).expires_at(Timestamp::from_millis(u64::MAX / 2)))?;
/// ledger.receive(flour, NewLot::new(LotId(2), 1_000).expires_at(Timestamp::from_millis(u64::MAX / 4)))?;
///
/// // FEFO: lot 2 expires first, so it is drawn first.
/// let hold = ledger.allocate(&AllocateRequest::new(flour, 1_500))?;
/// assert_eq!(hold.lines[0].lot, LotId(2));
/// assert_eq!(hold.lines[0].quantity.get(), 1_000);
/// assert_eq!(hold.lines[1].quantity.get(), 500);
///
/// ledger.commit(hold.reservation, None)?;
/// assert_eq!(ledger.snapshot(flour)?.totals().committed.get(), 1_500);
/// assert!(ledger.audit().is_clean());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ledger {
    skus: SkuTable,
    clock: Arc<dyn Clock>,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger::new()
    }
}

impl core::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ledger").field("skus", &self.skus.len()).field("clock", &self.clock).finish()
    }
}

fn validate(quantity: u64) -> Result<Quantity, Invalid> {
    match Quantity::new(quantity) {
        Ok(quantity) if quantity.is_zero() => Err(Invalid::Zero),
        Ok(quantity) => Ok(quantity),
        Err(_) => Err(Invalid::TooLarge),
    }
}

enum Invalid {
    Zero,
    TooLarge,
}

impl Ledger {
    /// An empty ledger on the system clock.
    pub fn new() -> Ledger {
        Ledger::with_clock(Arc::new(SystemClock))
    }

    /// An empty ledger reading time from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Ledger {
        Ledger { skus: SkuTable::new(), clock }
    }

    /// The ledger clock's current instant.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Defines a SKU, empty, at version 0, with its allocation policy.
    pub fn define_sku(&self, sku: SkuId, policy: AllocationPolicy) -> Result<SkuDefined, DefineError> {
        if self.skus.insert(sku, SkuCell::new(SkuState::defined(sku, policy))) {
            Ok(SkuDefined { sku, version: 0 })
        } else {
            Err(DefineError::AlreadyDefined { sku })
        }
    }

    /// Receives a new lot into a SKU.
    pub fn receive(&self, sku: SkuId, lot: NewLot) -> Result<Received, ReceiveError> {
        let quantity = validate(lot.quantity).map_err(|invalid| match invalid {
            Invalid::Zero => ReceiveError::ZeroQuantity { sku, lot: lot.id },
            Invalid::TooLarge => ReceiveError::QuantityTooLarge { sku, lot: lot.id, quantity: lot.quantity },
        })?;
        let now = self.clock.now();
        self.skus
            .with(sku, |cell| {
                cell.update(
                    |state| state.receive(&lot, quantity, now),
                    |attempts| ReceiveError::Contended { sku, attempts },
                )
            })
            .unwrap_or(Err(ReceiveError::UnknownSku { sku }))
    }

    fn demand(&self, request: &AllocateRequest) -> Result<Demand<'_>, AllocateError> {
        let sku = request.sku;
        let quantity = validate(request.quantity).map_err(|invalid| match invalid {
            Invalid::Zero => AllocateError::ZeroQuantity { sku },
            Invalid::TooLarge => AllocateError::QuantityTooLarge { sku, quantity: request.quantity },
        })?;
        Ok(Demand {
            quantity,
            fill: request.fill,
            policy: request.policy,
            min_shelf_life: request.min_shelf_life,
            clock: &*self.clock,
            now: Cell::new(None),
        })
    }

    /// Holds units for a new reservation, drawn by the SKU's policy (or
    /// the request's): fill-or-kill unless the request says partial.
    pub fn allocate(&self, request: &AllocateRequest) -> Result<Allocation, AllocateError> {
        let sku = request.sku;
        let demand = self.demand(request)?;
        self.skus
            .with(sku, |cell| {
                cell.update(|state| state.allocate(&demand), |attempts| AllocateError::Contended { sku, attempts })
            })
            .unwrap_or(Err(AllocateError::UnknownSku { sku }))
    }

    /// Sells units outright: allocates and commits in one step, keeping no
    /// reservation. The cheapest path the engine has.
    pub fn take(&self, request: &AllocateRequest) -> Result<Sale, AllocateError> {
        let sku = request.sku;
        let demand = self.demand(request)?;
        self.skus
            .with(sku, |cell| {
                cell.update(|state| state.take(&demand), |attempts| AllocateError::Contended { sku, attempts })
            })
            .unwrap_or(Err(AllocateError::UnknownSku { sku }))
    }

    /// Ends a reservation; its units become available again.
    pub fn release(&self, id: ReservationId) -> Result<Released, ReleaseError> {
        self.skus
            .with(id.sku, |cell| {
                cell.update(|state| state.release(id.seq), |attempts| ReleaseError::Contended { id, attempts })
            })
            .unwrap_or(Err(ReleaseError::UnknownSku { id }))
    }

    /// Ends a reservation; `quantity` of its units (all of them for `None`)
    /// leave the building and the rest become available again.
    pub fn commit(&self, id: ReservationId, quantity: Option<u64>) -> Result<Committed, CommitError> {
        let quantity = match quantity.map(validate) {
            None => None,
            Some(Ok(quantity)) => Some(quantity),
            Some(Err(Invalid::Zero)) => return Err(CommitError::ZeroQuantity { id }),
            Some(Err(Invalid::TooLarge)) => {
                return Err(CommitError::QuantityTooLarge { id, quantity: quantity.unwrap_or_default() });
            }
        };
        self.skus
            .with(id.sku, |cell| {
                cell.update(|state| state.commit(id.seq, quantity), |attempts| CommitError::Contended { id, attempts })
            })
            .unwrap_or(Err(CommitError::UnknownSku { id }))
    }

    /// Applies a change the physical world made to a lot. A shrink below
    /// what reservations hold on the lot is applied; the outcome names every
    /// reservation that lost units.
    pub fn adjust(
        &self,
        sku: SkuId,
        lot: LotId,
        delta: i64,
        reason: AdjustmentReason,
    ) -> Result<Adjusted, AdjustError> {
        if delta == 0 {
            return Err(AdjustError::ZeroDelta { sku, lot });
        }
        if delta.unsigned_abs() > Quantity::MAX.get() {
            return Err(AdjustError::DeltaTooLarge { sku, lot, delta });
        }
        self.skus
            .with(sku, |cell| {
                cell.update(
                    |state| state.adjust(lot, delta, reason),
                    |attempts| AdjustError::Contended { sku, attempts },
                )
            })
            .unwrap_or(Err(AdjustError::UnknownSku { sku }))
    }

    /// Runs any command given as data.
    pub fn execute(&self, command: &Command) -> Result<Outcome, CommandError> {
        Ok(match command {
            Command::DefineSku { sku, policy } => Outcome::SkuDefined(self.define_sku(*sku, *policy)?),
            Command::Receive { sku, lot } => Outcome::Received(self.receive(*sku, lot.clone())?),
            Command::Allocate(request) => Outcome::Allocated(self.allocate(request)?),
            Command::Take(request) => Outcome::Sold(self.take(request)?),
            Command::Release { reservation } => Outcome::Released(self.release(*reservation)?),
            Command::Commit { reservation, quantity } => Outcome::Committed(self.commit(*reservation, *quantity)?),
            Command::Adjust { sku, lot, delta, reason } => Outcome::Adjusted(self.adjust(*sku, *lot, *delta, *reason)?),
        })
    }

    /// The SKU's current version. Never blocks a command.
    pub fn snapshot(&self, sku: SkuId) -> Result<Snapshot, QueryError> {
        self.skus.with(sku, |cell| Snapshot::new(cell.load_full())).ok_or(QueryError::UnknownSku { sku })
    }

    /// Units an allocation with `min_shelf_life` could draw right now (lots
    /// expired by the ledger's clock, or expiring too soon, left out).
    pub fn available(&self, sku: SkuId, min_shelf_life: Duration) -> Result<Quantity, QueryError> {
        let eligibility = Eligibility::at(self.clock.now(), min_shelf_life);
        self.skus.with(sku, |cell| cell.load().eligible(eligibility)).ok_or(QueryError::UnknownSku { sku })
    }

    /// A live reservation.
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, QueryError> {
        let snapshot = self.snapshot(id.sku)?;
        match snapshot.state().hold(id.seq) {
            Ok(hold) => Ok(snapshot.reservation_at(id.seq, hold)),
            Err(HoldLookup::Unknown) => Err(QueryError::UnknownReservation { id }),
            Err(HoldLookup::Ended) => Err(QueryError::Ended { id }),
        }
    }

    /// Every defined SKU, in no particular order.
    pub fn skus(&self) -> Vec<SkuId> {
        self.skus.cells().iter().map(|cell| cell.load().sku).collect()
    }

    /// Checks every invariant of every SKU, each against one consistent
    /// version of that SKU. Run it at a quiescent point to check
    /// conservation of the whole ledger; concurrently, each SKU is still
    /// checked against a real version.
    pub fn audit(&self) -> AuditReport {
        let mut report = AuditReport::default();
        for cell in self.skus.cells() {
            audit_sku(&cell.load(), &mut report);
        }
        report
    }
}
