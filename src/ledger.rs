//! The ledger: the SKU table, the commands, the queries, the reservation
//! lifecycle around them, and the events each change emits.
//!
//! Owns: [`Ledger`] and [`LedgerBuilder`], input validation for every
//! command, the mapping from a command to the SKU cell transition that
//! carries it out, multi-line orders (one cell change per SKU, rolled back
//! on failure), and turning every published version into an [`Event`].
//!
//! Must never: change stock itself, or touch state before a command's input
//! is validated. Validation runs first, in the precedence order of each
//! error enum (input, then lookups, then stock); a refused command changed
//! nothing of its own (a sweep of lapsed holds that ran first is time's
//! change, published as its own version). Stock moves only inside
//! [`SkuCell`] transitions.

use crate::audit::{AuditReport, audit_sku};
use crate::cell::{Demand, HoldLookup, HoldTerms, Landed, SkuCell, SkuState};
use crate::clock::{Clock, Moment, SystemClock, Timestamp};
use crate::command::{AllocateRequest, Command, OrderRequest, Outcome};
use crate::error::{
    AdjustError, AllocateError, CommandError, CommitError, DefineError, ExpireError, ExtendError, KeyedError,
    OrderError, ReceiveError, ReleaseError, ThresholdError,
};
#[cfg(doc)]
use crate::events::Delivery;
use crate::events::hub::EventHub;
use crate::events::{Change, Event, Notice, Subscription};
use crate::guard::HoldGuard;
use crate::idempotency::{Claimed, IdempotencyKey, KeyStore, KeyWindow};
use crate::ids::{LotId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, NewLot};
use crate::outcome::{
    Adjusted, Allocation, Committed, ExpiryReport, Extended, Keyed, LowStockSet, OrderAllocation, Received, Released,
    Sale, SkuDefined, Swept,
};
use crate::policy::{AllocationPolicy, Eligibility, FillMode};
use crate::quantity::Quantity;
use crate::reservation::Reservation;
use crate::sku_table::SkuTable;
use crate::snapshot::Snapshot;
use crate::sync::Arc;
use std::collections::BTreeMap;
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
    /// The reservation's deadline had passed: it lapsed (this very query
    /// found it so and returned its units).
    #[error("{id} lapsed at its deadline {deadline}")]
    Expired {
        /// The reservation.
        id: ReservationId,
        /// The deadline it missed.
        deadline: Timestamp,
    },
    /// Lapsed holds kept being swept by others for 2^16 rounds; nothing
    /// was read.
    #[error("{sku}: gave up after {attempts} contended attempts")]
    Contended {
        /// The SKU.
        sku: SkuId,
        /// How many times the read was retried.
        attempts: u32,
    },
}

/// The largest channel a subscriber may ask for.
pub const SUBSCRIPTION_CAPACITY_MAX: usize = 1 << 20;

/// Subscribing to events was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SubscribeError {
    /// The ledger was built without events ([`LedgerBuilder::events`]).
    #[error("this ledger was built without events")]
    EventsOff,
    /// A channel capacity of zero or above [`SUBSCRIPTION_CAPACITY_MAX`].
    #[error("capacity {capacity} is outside 1..={max}")]
    Capacity {
        /// The rejected capacity.
        capacity: usize,
        /// The largest allowed.
        max: usize,
    },
}

/// Settings for a [`Ledger`], checked by [`LedgerBuilder::build`].
///
/// ```
/// use stockroom::{Ledger, ManualClock, Timestamp};
/// use std::{sync::Arc, time::Duration};
///
/// let ledger = Ledger::builder()
///     .clock(Arc::new(ManualClock::new(Timestamp::from_millis(0))))
///     .hold_max(Duration::from_secs(30 * 60))
///     .events(true)
///     .build()?;
/// assert_eq!(ledger.hold_max(), Duration::from_secs(30 * 60));
/// # Ok::<(), stockroom::LedgerBuildError>(())
/// ```
#[derive(Debug)]
pub struct LedgerBuilder {
    clock: Arc<dyn Clock>,
    hold_max: Duration,
    events: bool,
    keys: KeyWindow,
}

/// A [`LedgerBuilder`] setting out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LedgerBuildError {
    /// A maximum hold duration of zero: no hold could have a deadline.
    #[error("the maximum hold duration must be longer than zero")]
    ZeroHoldMax,
    /// An idempotency window of zero time or zero keys: no key would be
    /// remembered past its own command.
    #[error("the idempotency window must be longer than zero and hold at least one key")]
    EmptyKeyWindow,
}

impl LedgerBuilder {
    /// The default maximum hold duration (and extension limit): one day.
    pub const HOLD_MAX_DEFAULT: Duration = Duration::from_secs(24 * 60 * 60);

    /// Reads time from `clock` (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> LedgerBuilder {
        self.clock = clock;
        self
    }

    /// The longest a reservation may be held, counted from its allocation:
    /// the limit on a hold duration and on every extension of it (default
    /// [`HOLD_MAX_DEFAULT`](Self::HOLD_MAX_DEFAULT)).
    pub fn hold_max(mut self, hold_max: Duration) -> LedgerBuilder {
        self.hold_max = hold_max;
        self
    }

    /// Whether every change emits an [`Event`] to subscribers (default
    /// off: a ledger nobody listens to pays nothing for events).
    pub fn events(mut self, events: bool) -> LedgerBuilder {
        self.events = events;
        self
    }

    /// How long and how many idempotency keys are remembered (default
    /// [`KeyWindow::default`]: 24 hours, a million keys). Memory for keys
    /// is bounded by `keys_max` (see [`Ledger::execute_keyed`]).
    pub fn key_window(mut self, keys: KeyWindow) -> LedgerBuilder {
        self.keys = keys;
        self
    }

    /// The ledger.
    pub fn build(self) -> Result<Ledger, LedgerBuildError> {
        if self.hold_max.is_zero() {
            return Err(LedgerBuildError::ZeroHoldMax);
        }
        if self.keys.window.is_zero() || self.keys.keys_max == 0 {
            return Err(LedgerBuildError::EmptyKeyWindow);
        }
        let events = self.events.then(EventHub::new);
        let keys = KeyStore::new(self.keys);
        Ok(Ledger { skus: SkuTable::new(), clock: self.clock, hold_max: self.hold_max, events, keys })
    }
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
    hold_max: Duration,
    /// The outbox, when events are on.
    events: Option<EventHub<Event>>,
    /// Idempotency keys and the first outcome of each.
    keys: KeyStore<Command, Result<Outcome, CommandError>>,
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

/// The clock's resolution: hold durations and extensions shorter than this
/// are refused (a deadline is a whole number of milliseconds).
const MILLISECOND: Duration = Duration::from_millis(1);

/// The refusal of a sold-out SKU, exactly as the plan would give it.
fn sold_out(sku: SkuId, requested: Quantity) -> AllocateError {
    AllocateError::Insufficient { sku, requested, available: Quantity::ZERO }
}

/// The deadline of `seq` if one of `swept` lapsed it.
fn lapsed_in(swept: &[Swept], seq: u64) -> Option<Timestamp> {
    swept.iter().flat_map(|sweep| sweep.lapsed.iter()).find(|lapsed| lapsed.reservation.seq == seq).map(|l| l.deadline)
}

impl Ledger {
    /// An empty ledger on the system clock, with the default settings.
    pub fn new() -> Ledger {
        Ledger::with_clock(Arc::new(SystemClock))
    }

    /// An empty ledger reading time from `clock`, with the default
    /// settings.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Ledger {
        Ledger {
            skus: SkuTable::new(),
            clock,
            hold_max: LedgerBuilder::HOLD_MAX_DEFAULT,
            events: None,
            keys: KeyStore::new(KeyWindow::default()),
        }
    }

    /// Settings beyond the clock: the maximum hold duration, events.
    pub fn builder() -> LedgerBuilder {
        LedgerBuilder {
            clock: Arc::new(SystemClock),
            hold_max: LedgerBuilder::HOLD_MAX_DEFAULT,
            events: false,
            keys: KeyWindow::default(),
        }
    }

    /// The ledger clock's current instant.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The longest a reservation may be held, from its allocation.
    pub fn hold_max(&self) -> Duration {
        self.hold_max
    }

    fn moment(&self) -> Moment<'_> {
        Moment::of(&*self.clock)
    }

    /// Turns a version this ledger published into an event for
    /// subscribers (nothing when events are off).
    fn emit(&self, before: &SkuState, after: &SkuState, change: impl FnOnce() -> Change) {
        let Some(hub) = &self.events else { return };
        let change = change();
        let notices = notices(before, after, &change);
        hub.publish(Event { seq: 0, sku: after.sku, version: after.version, change, notices });
    }

    /// A new subscriber to every change from now on, through a channel of
    /// `capacity` events.
    ///
    /// Per SKU, events arrive in version order, gap-free from the first one
    /// received. A subscriber that falls `capacity` events behind is never
    /// waited for: further events are dropped for it and counted, and
    /// before its next event it receives [`Delivery::Lagged`] with the exact
    /// number it missed (catch up from a [`snapshot`](Self::snapshot)).
    /// Delivery is done by the threads that publish changes and by
    /// subscribers when they receive; an event published while a publisher
    /// that changed the same SKU earlier has not yet handed its own event
    /// over waits for it (never a command).
    ///
    /// ```
    /// use stockroom::{AllocationPolicy, Change, Delivery, Ledger, LotId, NewLot, Notice, SkuId};
    ///
    /// let ledger = Ledger::builder().events(true).build()?;
    /// let events = ledger.subscribe(1_024)?;
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 5))?;
    /// let received: Vec<_> = events.try_iter().collect();
    /// let Delivery::Event(event) = &received[1] else { panic!("no lag here") };
    /// assert!(matches!(event.change, Change::Received(_)));
    /// assert_eq!((event.version, &event.notices[..]), (1, &[Notice::BackInStock { available: 5.try_into()? }][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, capacity: usize) -> Result<Subscription<Event>, SubscribeError> {
        let hub = self.events.as_ref().ok_or(SubscribeError::EventsOff)?;
        if !(1..=SUBSCRIPTION_CAPACITY_MAX).contains(&capacity) {
            return Err(SubscribeError::Capacity { capacity, max: SUBSCRIPTION_CAPACITY_MAX });
        }
        Ok(hub.subscribe(capacity))
    }

    /// The `landed` hook for a command whose result becomes `Change` by
    /// `to_change`.
    fn on_landed<'s, R: 's>(
        &'s self,
        to_change: fn(&R) -> Change,
    ) -> impl FnMut(&SkuState, &SkuState, Landed<'_, R>) + 's {
        move |before, after, landed| match landed {
            Landed::Swept(swept) => self.emit(before, after, || Change::Swept(swept.clone())),
            Landed::Step(result) => self.emit(before, after, || to_change(result)),
        }
    }

    /// The `landed` hook for sweeps and queries, which publish only sweeps.
    fn on_swept<'s, R: 's>(&'s self) -> impl FnMut(&SkuState, &SkuState, Landed<'_, R>) + 's {
        move |before, after, landed| {
            if let Landed::Swept(swept) = landed {
                self.emit(before, after, || Change::Swept(swept.clone()));
            }
        }
    }

    /// Defines a SKU, empty, at version 0, with its allocation policy.
    pub fn define_sku(&self, sku: SkuId, policy: AllocationPolicy) -> Result<SkuDefined, DefineError> {
        let state = SkuState::defined(sku, policy);
        let defined = SkuDefined { sku, version: 0 };
        if !self.skus.insert(sku, SkuCell::new(state)) {
            return Err(DefineError::AlreadyDefined { sku });
        }
        if self.events.is_some() {
            let empty = SkuState::defined(sku, policy);
            self.emit(&empty, &empty, || Change::Defined(defined.clone()));
        }
        Ok(defined)
    }

    /// Receives a new lot into a SKU.
    pub fn receive(&self, sku: SkuId, lot: NewLot) -> Result<Received, ReceiveError> {
        let quantity = validate(lot.quantity).map_err(|invalid| match invalid {
            Invalid::Zero => ReceiveError::ZeroQuantity { sku, lot: lot.id },
            Invalid::TooLarge => ReceiveError::QuantityTooLarge { sku, lot: lot.id, quantity: lot.quantity },
        })?;
        let moment = self.moment();
        self.skus
            .with(sku, |cell| {
                cell.update(
                    &moment,
                    |state, _| state.receive(&lot, quantity, moment.now()),
                    |attempts| ReceiveError::Contended { sku, attempts },
                    &mut self.on_landed(|received: &Received| Change::Received(received.clone())),
                )
            })
            .unwrap_or(Err(ReceiveError::UnknownSku { sku }))
    }

    /// A validated hold duration.
    fn hold_terms(&self, hold_for: Option<Duration>) -> Result<Option<HoldTerms>, Option<Duration>> {
        match hold_for {
            None => Ok(None),
            // Deadlines are whole milliseconds: a shorter hold would lapse
            // at the instant it is made.
            Some(duration) if duration < MILLISECOND => Err(None),
            Some(duration) if duration > self.hold_max => Err(Some(duration)),
            Some(duration) => Ok(Some(HoldTerms { duration, max: self.hold_max })),
        }
    }

    fn demand<'m>(&self, request: &AllocateRequest, moment: &'m Moment<'m>) -> Result<Demand<'m>, AllocateError> {
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
            moment,
        })
    }

    /// Holds units for a new reservation, drawn by the SKU's policy (or
    /// the request's): fill-or-kill unless the request says partial. With
    /// [`hold_for`](AllocateRequest::hold_for) the reservation lapses at
    /// its deadline; with [`if_version`](AllocateRequest::if_version) it
    /// applies only to that version of the SKU.
    ///
    /// ```
    /// use stockroom::{AllocateRequest, AllocationPolicy, CommitError, Ledger, LotId, ManualClock, NewLot, SkuId, Timestamp};
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    /// let ledger = Ledger::with_clock(clock.clone());
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    ///
    /// let hold = ledger.allocate(&AllocateRequest::new(SkuId(1), 4).hold_for(Duration::from_secs(60)))?;
    /// clock.advance(Duration::from_secs(60));
    /// // Past its deadline the hold is not held, even before any sweep ran.
    /// assert_eq!(ledger.available(SkuId(1), Duration::ZERO)?.get(), 10);
    /// assert!(matches!(ledger.commit(hold.reservation, None), Err(CommitError::Ended { .. } | CommitError::Expired { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocate(&self, request: &AllocateRequest) -> Result<Allocation, AllocateError> {
        let sku = request.sku;
        let moment = self.moment();
        let demand = self.demand(request, &moment)?;
        let terms = self.hold_terms(request.hold_for).map_err(|rejected| match rejected {
            None => AllocateError::ZeroHold { sku },
            Some(requested) => AllocateError::HoldTooLong { sku, requested, max: self.hold_max },
        })?;
        let demands = [demand];
        self.skus
            .with(sku, |cell| {
                if request.expected_version.is_none() && cell.sold_out() {
                    return Err(sold_out(sku, demands[0].quantity));
                }
                cell.update(
                    &moment,
                    |state, _| state.allocate(&demands, terms, request.expected_version).map_err(|(_, error)| error),
                    |attempts| AllocateError::Contended { sku, attempts },
                    &mut self.on_landed(|allocation: &Allocation| Change::Allocated(allocation.clone())),
                )
            })
            .unwrap_or(Err(AllocateError::UnknownSku { sku }))
    }

    /// [`allocate`](Self::allocate), returning a guard that releases the
    /// reservation when dropped unless committed, released or kept.
    pub fn allocate_guarded(&self, request: &AllocateRequest) -> Result<HoldGuard<'_>, AllocateError> {
        self.allocate(request).map(|allocation| HoldGuard::new(self, allocation))
    }

    /// Sells units outright: allocates and commits in one step, keeping no
    /// reservation. The cheapest path the engine has. (`hold_for` does not
    /// apply: nothing is held.)
    ///
    /// With events off and no `if_version`, a sale that the first lot in
    /// policy order can cover is one compare-and-swap on the current
    /// version's sales counter instead of a new published version; its
    /// [`Sale::version`] is still its own, one past the change before it,
    /// and every later snapshot counts it.
    pub fn take(&self, request: &AllocateRequest) -> Result<Sale, AllocateError> {
        let sku = request.sku;
        let moment = self.moment();
        let demand = self.demand(request, &moment)?;
        self.skus
            .with(sku, |cell| {
                // A flash sale is mostly this: one atomic load, no version.
                if request.expected_version.is_none() && cell.sold_out() {
                    return Err(sold_out(sku, demand.quantity));
                }
                // Selling: one compare-and-swap on the version's sales word,
                // unless each change must be published as an event.
                if request.expected_version.is_none() && self.events.is_none() {
                    if let Some(sale) = cell.take_fast(&demand) {
                        return Ok(sale);
                    }
                }
                cell.update(
                    &moment,
                    |state, _| state.take(&demand, request.expected_version),
                    |attempts| AllocateError::Contended { sku, attempts },
                    &mut self.on_landed(|sale: &Sale| Change::Sold(sale.clone())),
                )
            })
            .unwrap_or(Err(AllocateError::UnknownSku { sku }))
    }

    /// Holds every line of a multi-line order, or none of them.
    ///
    /// Lines of one SKU count as their combined demand and become one
    /// reservation; the order gets one reservation per SKU, each taken by
    /// one change of that SKU, SKUs in ascending id order. If a SKU cannot
    /// cover its lines, the reservations already made for earlier SKUs are
    /// released (in reverse order) before the error returns, so no unit
    /// stays held by a refused order.
    ///
    /// What a concurrent observer can see while it runs: each SKU's part is
    /// an ordinary reservation in an ordinary version, so between the first
    /// SKU's change and the last one (or the rollback) an observer may see
    /// some of the order's SKUs held and others not yet; a competing
    /// allocation may be refused for units a failing order holds for that
    /// moment. An observer never sees part of one SKU's lines: per SKU the
    /// order's hold appears whole, and a rolled-back hold disappears whole
    /// (events: `Allocated` then `Released`). Per SKU every change stays
    /// linearizable; the order as a whole is all-or-nothing in its outcome
    /// and in what it leaves held, not a cross-SKU atomic snapshot.
    ///
    /// ```
    /// use stockroom::{AllocationPolicy, Ledger, LotId, NewLot, OrderError, OrderLine, OrderRequest, SkuId};
    ///
    /// let ledger = Ledger::new();
    /// for sku in [SkuId(1), SkuId(2)] {
    ///     ledger.define_sku(sku, AllocationPolicy::Fifo)?;
    ///     ledger.receive(sku, NewLot::new(LotId(1), 3))?;
    /// }
    /// let order = OrderRequest::new(vec![OrderLine::new(SkuId(1), 2), OrderLine::new(SkuId(2), 4)]);
    /// assert!(matches!(ledger.allocate_order(&order), Err(OrderError::Line { index: 1, .. })));
    /// // Nothing stayed held on SKU 1.
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().held.get(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocate_order(&self, order: &OrderRequest) -> Result<OrderAllocation, OrderError> {
        if order.lines.is_empty() {
            return Err(OrderError::Empty);
        }
        if order.lines.len() > OrderRequest::LINES_MAX {
            return Err(OrderError::TooManyLines { lines: order.lines.len(), max: OrderRequest::LINES_MAX });
        }
        let terms = self.hold_terms(order.hold_for).map_err(|rejected| match rejected {
            None => OrderError::ZeroHold,
            Some(requested) => OrderError::HoldTooLong { requested, max: self.hold_max },
        })?;
        let moment = self.moment();
        // Every line's input, then every SKU's existence, before any stock.
        let mut groups: BTreeMap<SkuId, (Vec<usize>, Vec<Demand<'_>>)> = BTreeMap::new();
        for (index, line) in order.lines.iter().enumerate() {
            let request = AllocateRequest {
                policy: line.policy,
                min_shelf_life: line.min_shelf_life,
                ..AllocateRequest::new(line.sku, line.quantity)
            };
            let demand = self.demand(&request, &moment).map_err(|error| OrderError::Line { index, error })?;
            let group = groups.entry(line.sku).or_default();
            group.0.push(index);
            group.1.push(Demand { fill: FillMode::FillOrKill, ..demand });
        }
        for (index, line) in order.lines.iter().enumerate() {
            if self.skus.with(line.sku, |_| ()).is_none() {
                return Err(OrderError::Line { index, error: AllocateError::UnknownSku { sku: line.sku } });
            }
        }
        let mut held: Vec<Allocation> = Vec::with_capacity(groups.len());
        for (&sku, (indices, demands)) in &groups {
            let result = self
                .skus
                .with(sku, |cell| {
                    cell.update(
                        &moment,
                        |state, _| state.allocate(demands, terms, None).map_err(|(at, error)| (indices[at], error)),
                        |attempts| (indices[0], AllocateError::Contended { sku, attempts }),
                        &mut self.on_landed(|allocation: &Allocation| Change::Allocated(allocation.clone())),
                    )
                })
                .unwrap_or(Err((indices[0], AllocateError::UnknownSku { sku })));
            match result {
                Ok(allocation) => held.push(allocation),
                Err((index, error)) => {
                    for allocation in held.iter().rev() {
                        self.roll_back(allocation.reservation);
                    }
                    return Err(OrderError::Line { index, error });
                }
            }
        }
        Ok(OrderAllocation { allocations: held })
    }

    /// Releases a reservation an order made and cannot keep. Retries while
    /// contended: giving up would leave its units held by a refused order,
    /// and every lost round means other changes of the SKU landed. Any
    /// other outcome means the hold already ended (it lapsed, or someone
    /// holding its id ended it), so its units are no longer the order's.
    pub(crate) fn roll_back(&self, id: ReservationId) {
        while let Err(ReleaseError::Contended { .. }) = self.release(id) {}
    }

    /// Ends a reservation; its units become available again.
    pub fn release(&self, id: ReservationId) -> Result<Released, ReleaseError> {
        let moment = self.moment();
        self.skus
            .with(id.sku, |cell| {
                cell.update(
                    &moment,
                    |state, swept| match lapsed_in(swept, id.seq) {
                        Some(deadline) => Err(ReleaseError::Expired { id, deadline }),
                        None => state.release(id.seq),
                    },
                    |attempts| ReleaseError::Contended { id, attempts },
                    &mut self.on_landed(|released: &Released| Change::Released(released.clone())),
                )
            })
            .unwrap_or(Err(ReleaseError::UnknownSku { id }))
    }

    /// Ends a reservation; `quantity` of its units (all of them for `None`)
    /// leave the building and the rest become available again. A
    /// reservation past its deadline cannot be committed: the call that
    /// finds it lapsed gets [`CommitError::Expired`] (and returns its
    /// units); later calls get [`CommitError::Ended`]. Commit racing expiry:
    /// exactly one wins.
    pub fn commit(&self, id: ReservationId, quantity: Option<u64>) -> Result<Committed, CommitError> {
        let quantity = match quantity.map(validate) {
            None => None,
            Some(Ok(quantity)) => Some(quantity),
            Some(Err(Invalid::Zero)) => return Err(CommitError::ZeroQuantity { id }),
            Some(Err(Invalid::TooLarge)) => {
                return Err(CommitError::QuantityTooLarge { id, quantity: quantity.unwrap_or_default() });
            }
        };
        let moment = self.moment();
        self.skus
            .with(id.sku, |cell| {
                cell.update(
                    &moment,
                    |state, swept| match lapsed_in(swept, id.seq) {
                        Some(deadline) => Err(CommitError::Expired { id, deadline }),
                        None => state.commit(id.seq, quantity),
                    },
                    |attempts| CommitError::Contended { id, attempts },
                    &mut self.on_landed(|committed: &Committed| Change::Committed(committed.clone())),
                )
            })
            .unwrap_or(Err(CommitError::UnknownSku { id }))
    }

    /// Moves a live reservation's deadline `by` later (a checkout waiting
    /// on payment), up to its allocation instant plus
    /// [`hold_max`](Self::hold_max). Only before the deadline: a lapsed
    /// reservation is [`ExtendError::Expired`].
    pub fn extend(&self, id: ReservationId, by: Duration) -> Result<Extended, ExtendError> {
        if by < MILLISECOND {
            return Err(ExtendError::ZeroDuration { id });
        }
        let moment = self.moment();
        self.skus
            .with(id.sku, |cell| {
                cell.update(
                    &moment,
                    |state, swept| match lapsed_in(swept, id.seq) {
                        Some(deadline) => Err(ExtendError::Expired { id, deadline }),
                        None => state.extend(id.seq, by),
                    },
                    |attempts| ExtendError::Contended { id, attempts },
                    &mut self.on_landed(|extended: &Extended| Change::Extended(extended.clone())),
                )
            })
            .unwrap_or(Err(ExtendError::UnknownSku { id }))
    }

    /// Applies a change the physical world made to a lot. A shrink below
    /// what reservations hold on the lot is applied: each affected
    /// reservation, newest first, has its loss moved to other lots by the
    /// SKU's policy where they have units, and is shorted only for the
    /// rest; the outcome says which.
    pub fn adjust(
        &self,
        sku: SkuId,
        lot: LotId,
        delta: i64,
        reason: AdjustmentReason,
    ) -> Result<Adjusted, AdjustError> {
        self.adjust_at(sku, lot, delta, reason, None)
    }

    /// [`adjust`](Self::adjust), only if the SKU is still at
    /// `expected_version` (for a caller who decided on a snapshot);
    /// otherwise [`AdjustError::VersionMismatch`] with the current version.
    pub fn adjust_if_version(
        &self,
        sku: SkuId,
        lot: LotId,
        delta: i64,
        reason: AdjustmentReason,
        expected_version: u64,
    ) -> Result<Adjusted, AdjustError> {
        self.adjust_at(sku, lot, delta, reason, Some(expected_version))
    }

    fn adjust_at(
        &self,
        sku: SkuId,
        lot: LotId,
        delta: i64,
        reason: AdjustmentReason,
        expected_version: Option<u64>,
    ) -> Result<Adjusted, AdjustError> {
        if delta == 0 {
            return Err(AdjustError::ZeroDelta { sku, lot });
        }
        if delta.unsigned_abs() > Quantity::MAX.get() {
            return Err(AdjustError::DeltaTooLarge { sku, lot, delta });
        }
        let moment = self.moment();
        self.skus
            .with(sku, |cell| {
                cell.update(
                    &moment,
                    |state, _| state.adjust(lot, delta, reason, expected_version, &moment),
                    |attempts| AdjustError::Contended { sku, attempts },
                    &mut self.on_landed(|adjusted: &Adjusted| Change::Adjusted(adjusted.clone())),
                )
            })
            .unwrap_or(Err(AdjustError::UnknownSku { sku }))
    }

    /// Sets (or with `None` clears) a SKU's low-stock threshold: a
    /// [`Notice::LowStock`] fires when its available units fall from above
    /// the threshold to at or below it.
    pub fn set_low_stock(&self, sku: SkuId, threshold: Option<u64>) -> Result<LowStockSet, ThresholdError> {
        let threshold = match threshold.map(Quantity::new) {
            None => None,
            Some(Ok(threshold)) => Some(threshold),
            Some(Err(_)) => return Err(ThresholdError::TooLarge { sku, threshold: threshold.unwrap_or_default() }),
        };
        let moment = self.moment();
        self.skus
            .with(sku, |cell| {
                cell.update(
                    &moment,
                    |state, _| Ok(state.set_low_stock(threshold)),
                    |attempts| ThresholdError::Contended { sku, attempts },
                    &mut self.on_landed(|set: &LowStockSet| Change::LowStockSet(set.clone())),
                )
            })
            .unwrap_or(Err(ThresholdError::UnknownSku { sku }))
    }

    /// Sweeps every SKU at `now`: reservations whose deadline is at or
    /// before `now` end and return their units, and lots whose expiry
    /// passed since the last such sweep are reported (once each). One
    /// version per SKU that had anything to sweep.
    ///
    /// Deadlines are exact without it (every operation on a SKU sweeps
    /// that SKU's lapsed reservations first); `expire_due` returns the
    /// units of SKUs nobody touches, and reports expired lots. `now` may
    /// not be later than the ledger's clock.
    pub fn expire_due(&self, now: Timestamp) -> Result<ExpiryReport, ExpireError> {
        let mut skus = self.skus();
        skus.sort_unstable();
        self.expire_due_in(&skus, now)
    }

    /// [`expire_due`](Self::expire_due) for the listed SKUs only (SKUs not
    /// defined are skipped): bounded work, for a reaper that walks the
    /// catalog a slice at a time.
    pub fn expire_due_in(&self, skus: &[SkuId], now: Timestamp) -> Result<ExpiryReport, ExpireError> {
        let clock = self.clock.now();
        if now > clock {
            return Err(ExpireError::InFuture { now, clock });
        }
        let mut report = ExpiryReport::default();
        for &sku in skus {
            if let Some(swept) = self.skus.with(sku, |cell| self.sweep_cell(cell, now)) {
                report.swept.extend(swept);
            }
        }
        Ok(report)
    }

    /// Sweeps one SKU at `now`, lots included.
    pub(crate) fn sweep_cell(&self, cell: &SkuCell, now: Timestamp) -> Option<Swept> {
        let moment = Moment::fixed(now);
        cell.sweep(&moment, true, &mut self.on_swept::<()>())
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
            Command::Adjust { sku, lot, delta, reason, expected_version } => {
                Outcome::Adjusted(self.adjust_at(*sku, *lot, *delta, *reason, *expected_version)?)
            }
            Command::AllocateOrder(order) => Outcome::OrderAllocated(self.allocate_order(order)?),
            Command::Extend { reservation, by } => Outcome::Extended(self.extend(*reservation, *by)?),
            Command::ExpireDue { now } => Outcome::Expired(self.expire_due(*now)?),
            Command::SetLowStock { sku, threshold } => Outcome::LowStockSet(self.set_low_stock(*sku, *threshold)?),
        })
    }

    /// Runs `command` at most once for `key`: retries with the same key get
    /// the first outcome back, marked as a replay, and change nothing.
    ///
    /// - The same key with a different command: [`KeyedError::KeyReused`],
    ///   naming the first field that differs; nothing changes.
    /// - A final refusal is remembered like a success: retrying it with the
    ///   same key is refused again ([`KeyedError::Refused`] with `replay`),
    ///   never turned into a success later. A transient one (`Contended`)
    ///   is not remembered, so a retry may apply.
    /// - Duplicates racing each other: exactly one applies; the others wait
    ///   for that attempt and return its outcome. A different command sent
    ///   with a key whose command is still running waits for it too, then
    ///   gets `KeyReused` (or runs, if that attempt was transient). Commands
    ///   with other keys, and commands without a key, never wait.
    /// - Keys are remembered for [`KeyWindow::window`] after their outcome
    ///   (by the ledger's clock) and at most [`KeyWindow::keys_max`] of
    ///   them, the oldest forgotten first; a forgotten key is new again.
    ///   Memory: about `keys_max` entries of a few hundred bytes plus what
    ///   the command and outcome hold (see [`KeyWindow`]).
    ///
    /// Un-keyed commands ([`execute`](Self::execute) and the direct
    /// methods) never touch the key table. Keyed ones take its shard lock
    /// for single map operations, never across the command.
    ///
    /// ```
    /// use stockroom::{AllocateRequest, AllocationPolicy, Command, IdempotencyKey, KeyedError, Ledger, LotId, NewLot, SkuId};
    ///
    /// let ledger = Ledger::new();
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    /// let key = IdempotencyKey::new("checkout-7731")?;
    /// let buy = Command::Take(AllocateRequest::new(SkuId(1), 3));
    ///
    /// let first = ledger.execute_keyed(&key, &buy)?;
    /// let retry = ledger.execute_keyed(&key, &buy)?;
    /// assert!(!first.replay && retry.replay);
    /// assert_eq!(first.outcome, retry.outcome);
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().committed.get(), 3); // once
    ///
    /// let other = Command::Take(AllocateRequest::new(SkuId(1), 4));
    /// assert!(matches!(ledger.execute_keyed(&key, &other), Err(KeyedError::KeyReused { field, .. }) if field == "quantity"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute_keyed(&self, key: &IdempotencyKey, command: &Command) -> Result<Keyed<Outcome>, KeyedError> {
        let now = self.clock.now();
        let is_final = |result: &Result<Outcome, CommandError>| !matches!(result, Err(error) if error.is_transient());
        let (result, replay) = match self.keys.run(key, command, now, || self.execute(command), is_final) {
            Claimed::Applied(result) => (result, false),
            Claimed::Replayed(result) => (result, true),
            Claimed::Conflict(first) => {
                let field = first.first_difference(command).unwrap_or("command").to_owned();
                return Err(KeyedError::KeyReused { key: key.clone(), field });
            }
        };
        match result {
            Ok(outcome) => Ok(Keyed { outcome, replay }),
            Err(error) => Err(KeyedError::Refused { error, replay }),
        }
    }

    /// The SKU's current version with every reservation lapsed by now
    /// swept. Never blocks a command.
    fn current(&self, sku: SkuId, moment: &Moment) -> Result<(Arc<SkuState>, Vec<Swept>), QueryError> {
        self.skus
            .with(sku, |cell| {
                let mut swept = Vec::new();
                let current = cell.current(moment, &mut swept, &mut self.on_swept());
                current
                    .map(|state| (state, swept))
                    .ok_or(QueryError::Contended { sku, attempts: crate::cell::ATTEMPTS_MAX })
            })
            .unwrap_or(Err(QueryError::UnknownSku { sku }))
    }

    /// The SKU's current version (reservations past their deadline already
    /// swept: a snapshot never counts a lapsed hold as held). Never blocks
    /// a command.
    pub fn snapshot(&self, sku: SkuId) -> Result<Snapshot, QueryError> {
        let moment = self.moment();
        self.current(sku, &moment).map(|(state, _)| Snapshot::new(state))
    }

    /// Units an allocation with `min_shelf_life` could draw right now (lots
    /// expired by the ledger's clock, or expiring too soon, left out; units
    /// of lapsed reservations counted in).
    pub fn available(&self, sku: SkuId, min_shelf_life: Duration) -> Result<Quantity, QueryError> {
        let moment = self.moment();
        let (state, _) = self.current(sku, &moment)?;
        Ok(state.eligible(Eligibility::at(moment.now(), min_shelf_life)))
    }

    /// A live reservation.
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, QueryError> {
        let moment = self.moment();
        let (state, swept) = self.current(id.sku, &moment)?;
        if let Some(deadline) = lapsed_in(&swept, id.seq) {
            return Err(QueryError::Expired { id, deadline });
        }
        let snapshot = Snapshot::new(state);
        match snapshot.state().hold(id.seq) {
            Ok(hold) => Ok(snapshot.reservation_at(id.seq, hold)),
            Err(HoldLookup::Unknown) => Err(QueryError::UnknownReservation { id }),
            Err(HoldLookup::Ended) => Err(QueryError::Ended { id }),
        }
    }

    /// Every defined SKU, in no particular order.
    pub fn skus(&self) -> Vec<SkuId> {
        self.skus.cells().iter().map(|cell| cell.sku()).collect()
    }

    /// Checks every invariant of every SKU, each against one consistent
    /// version of that SKU. Run it at a quiescent point to check
    /// conservation of the whole ledger; concurrently, each SKU is still
    /// checked against a real version.
    pub fn audit(&self) -> AuditReport {
        let mut report = AuditReport::default();
        for cell in self.skus.cells() {
            audit_sku(&cell.settled(), &mut report);
        }
        report
    }
}

/// The threshold notices a change from `before` to `after` crossed.
fn notices(before: &SkuState, after: &SkuState, change: &Change) -> Vec<Notice> {
    let mut notices = Vec::new();
    let (was, now) = (before.totals.available, after.totals.available);
    if let (Some(threshold), true) = (after.low_stock, before.low_stock == after.low_stock) {
        if was > threshold && now <= threshold {
            notices.push(Notice::LowStock { available: now, threshold });
        }
    }
    if !was.is_zero() && now.is_zero() {
        notices.push(Notice::SoldOut);
    }
    if was.is_zero() && !now.is_zero() {
        notices.push(Notice::BackInStock { available: now });
    }
    match change {
        Change::Swept(swept) => notices.extend(swept.expired_lots.iter().map(|&lot| Notice::LotExpired { lot })),
        Change::Received(received) => {
            let expires_at =
                after.catalog.find(received.lot).and_then(|arrival| after.catalog.meta(arrival).expires_at());
            if let (Some(expiry), Some(checked)) = (expires_at, before.lots_checked_until) {
                if expiry <= checked {
                    notices.push(Notice::LotExpired { lot: received.lot });
                }
            }
        }
        _ => {}
    }
    notices
}
