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
use crate::cell::desc::Registry;
use crate::cell::ops::{EndRefusal, HoldSpec, HoldTerms};
use crate::cell::read::{Lookup, find, materialize};
use crate::cell::slots::Marks;
use crate::cell::{Ctx, Demand, Landed, SkuCell, Transition};
use crate::clock::{Clock, Floor, Moment, SystemClock, Timestamp};
use crate::command::{AllocateRequest, Command, Outcome};
use crate::error::{
    AdjustError, AllocateError, CommandError, CommitError, DefineError, ExpireError, ExtendError, LocationsProblem,
    ReceiveError, ReleaseError, ThresholdError,
};
#[cfg(doc)]
use crate::events::Delivery;
use crate::events::hub::EventHub;
use crate::events::{Change, Event, Notice, Subscription};
use crate::idempotency::{Claimed, IdempotencyKey, KeyStore, KeyWindow};
use crate::ids::{LOCATION_MAX, LotId, OrderId, ReservationId, SkuId};
use crate::keyed_error::KeyedError;
use crate::lot::{AdjustmentReason, NewLot};
use crate::low_stock::LowStock;
use crate::metrics::{CommandKind, Tallied};
use crate::orders::OrderBook;
use crate::outcome::{
    Adjusted, Allocation, Committed, ExpiryReport, Extended, Keyed, LowStockSet, Received, Released, Sale, SkuDefined,
    Swept,
};
use crate::policy::{AllocationPolicy, Eligibility, LOCATIONS_MAX, Locations};
use crate::quantity::Quantity;
use crate::reservation::Reservation;
use crate::sku_table::{InsertError, SkuTable};
use crate::snapshot::Snapshot;
use crate::sync::Arc;
use crate::trace;
use std::time::Duration;

/// A query named something that does not exist (or no longer does).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
    /// The ledger never made this order, or has forgotten it (see
    /// [`ORDERS_KEPT`](crate::ORDERS_KEPT)).
    #[error("{order} is not known")]
    UnknownOrder {
        /// The order.
        order: OrderId,
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

pub use crate::events::SUBSCRIPTION_CAPACITY_MAX;

/// Subscribing to events was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
    write_off: bool,
}

/// A [`LedgerBuilder`] setting out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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

    /// Whether [`Ledger::expire_due`] (and the [`Reaper`](crate::Reaper))
    /// also writes off expired lots: every unit still on hand in a lot past
    /// its expiry leaves the books (reason
    /// [`AdjustmentReason::Expiry`]), holds on it re-sourced or shorted as
    /// for a shrink. Default off: the host writes off with
    /// [`Ledger::write_off_expired`]. Either way, expired units are never
    /// sold, and snapshots count them as expired, not available.
    pub fn write_off_expired(mut self, write_off: bool) -> LedgerBuilder {
        self.write_off = write_off;
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
        Ok(Ledger {
            skus: SkuTable::new(),
            clock: self.clock,
            floor: Floor::default(),
            hold_max: self.hold_max,
            events,
            keys,
            registry: Registry::new(),
            orders: OrderBook::new(),
            metrics: crate::metrics::Metrics::new(),
            write_off: self.write_off,
            #[cfg(feature = "journal")]
            journal: None,
            #[cfg(all(test, stockroom_loom))]
            test_sink: None,
        })
    }
}

/// The inventory engine: every SKU, its lots and its reservations.
///
/// `Ledger` is `Send + Sync`; share it by `Arc` or by reference. Every
/// command is linearizable: it takes effect at one instant (the
/// compare-and-swap that moves the SKU to its next version) between its
/// call and its return. Queries read one version and never block a
/// command.
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
    skus: SkuTable<Entry>,
    clock: Arc<dyn Clock>,
    /// The latest instant an operation used: readings below it are clamped
    /// (time never runs backwards; see [`crate::clock`]).
    floor: Floor,
    hold_max: Duration,
    /// The outbox, when events are on.
    events: Option<EventHub<Event>>,
    /// Idempotency keys and the first outcome of each.
    keys: KeyStore<Command, Result<Outcome, CommandError>>,
    /// Every thread's change descriptor for this ledger.
    registry: Arc<Registry>,
    /// Orders: their parts and phases.
    orders: OrderBook,
    /// Whether `expire_due` writes off expired lots.
    write_off: bool,
    pub(crate) metrics: crate::metrics::Metrics,
    /// Where every change is recorded, when the ledger keeps a journal
    /// (`durable.rs`).
    #[cfg(feature = "journal")]
    journal: Option<crate::durable::LedgerJournal>,
    /// A sink the loom models record changes in instead of a journal.
    #[cfg(all(test, stockroom_loom))]
    pub(crate) test_sink: Option<std::sync::Arc<dyn crate::cell::record::ChangeSink + Send>>,
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

/// What the catalog keeps under a SKU id: a SKU's cell, or a kit's
/// components (one id space, so a SKU and a kit can never share an id).
pub(crate) enum Entry {
    Sku(SkuCell),
    Kit(Arc<[(SkuId, Quantity)]>),
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
            floor: Floor::default(),
            hold_max: LedgerBuilder::HOLD_MAX_DEFAULT,
            events: None,
            keys: KeyStore::new(KeyWindow::default()),
            registry: Registry::new(),
            orders: OrderBook::new(),
            write_off: false,
            metrics: crate::metrics::Metrics::new(),
            #[cfg(feature = "journal")]
            journal: None,
            #[cfg(all(test, stockroom_loom))]
            test_sink: None,
        }
    }

    /// Settings beyond the clock: the maximum hold duration, events.
    pub fn builder() -> LedgerBuilder {
        LedgerBuilder {
            clock: Arc::new(SystemClock),
            hold_max: LedgerBuilder::HOLD_MAX_DEFAULT,
            events: false,
            keys: KeyWindow::default(),
            write_off: false,
        }
    }

    /// The ledger's current instant: its clock's reading, or the latest
    /// instant an operation already used if the clock stepped back (see
    /// [`MetricsSnapshot::clock_clamped`](crate::MetricsSnapshot::clock_clamped)).
    pub fn now(&self) -> Timestamp {
        self.floor.clamp(self.clock.now())
    }

    /// Readings of the clock clamped to the floor so far, and the largest
    /// step back (ms).
    pub(crate) fn clock_steps_back(&self) -> (u64, u64) {
        self.floor.steps_back()
    }

    /// The longest a reservation may be held, from its allocation.
    pub fn hold_max(&self) -> Duration {
        self.hold_max
    }

    pub(crate) fn moment(&self) -> Moment<'_> {
        Moment::of(&*self.clock, &self.floor)
    }

    pub(crate) fn orders(&self) -> &OrderBook {
        &self.orders
    }

    /// Replaces the order book (a restore, before the ledger is shared).
    pub(crate) fn replace_orders(&mut self, orders: OrderBook) {
        self.orders = orders;
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn keys(&self) -> &KeyStore<Command, Result<Outcome, CommandError>> {
        &self.keys
    }

    pub(crate) fn floor(&self) -> &Floor {
        &self.floor
    }

    /// Records every change from now on in `journal` (a ledger being
    /// opened, before it is shared).
    #[cfg(feature = "journal")]
    pub(crate) fn attach_journal(&mut self, journal: crate::durable::LedgerJournal) {
        self.journal = Some(journal);
    }

    #[cfg(feature = "journal")]
    pub(crate) fn ledger_journal(&self) -> Option<&crate::durable::LedgerJournal> {
        self.journal.as_ref()
    }

    /// Where the cells record their changes, if anywhere.
    fn change_sink(&self) -> Option<&dyn crate::cell::record::ChangeSink> {
        #[cfg(feature = "journal")]
        if let Some(journal) = &self.journal {
            return Some(journal);
        }
        #[cfg(all(test, stockroom_loom))]
        if let Some(sink) = &self.test_sink {
            return Some(&**sink);
        }
        None
    }

    /// Whether events are on (cells keep their totals word).
    pub(crate) fn events_on(&self) -> bool {
        self.events.is_some()
    }

    /// Tells the events hub (if any) that `sku` was restored at `version`:
    /// its next event is `version + 1`.
    pub(crate) fn restored_at(&self, sku: SkuId, version: u64) {
        if let Some(hub) = &self.events {
            hub.start_stream(sku, version + 1);
        }
    }

    /// The catalog: SKUs' cells and kits' components.
    pub(crate) fn catalog(&self) -> &SkuTable<Entry> {
        &self.skus
    }

    /// An unknown SKU that is a kit is refused as a kit.
    fn kit_refusal(&self, error: AllocateError) -> AllocateError {
        match error {
            AllocateError::UnknownSku { sku } if self.kit_parts(sku).is_some() => AllocateError::Kit { sku },
            error => error,
        }
    }

    /// Whether `sku` is a defined SKU (not a kit).
    pub(crate) fn is_defined(&self, sku: SkuId) -> bool {
        self.skus.with(sku, |entry| matches!(entry, Entry::Sku(_))).unwrap_or(false)
    }

    /// Runs `f` on `sku`'s cell with this thread's context, or returns
    /// `unknown` if the SKU is not defined: the one lookup every command
    /// and query goes through.
    pub(crate) fn on<R>(&self, sku: SkuId, moment: &Moment, unknown: R, f: impl FnOnce(&SkuCell, &Ctx) -> R) -> R {
        let (index, desc) = self.registry.mine();
        let ctx = Ctx { registry: &self.registry, desc: (index, desc), moment, journal: self.change_sink() };
        match self.skus.get(sku) {
            Some(Entry::Sku(cell)) => f(cell, &ctx),
            _ => unknown,
        }
    }

    /// Publishes the event of one version (nothing when events are off).
    pub(crate) fn emit(
        &self,
        sku: SkuId,
        transition: &Transition,
        change: impl FnOnce() -> Change,
        expiry: Option<Timestamp>,
    ) {
        let Some(hub) = &self.events else { return };
        let change = change();
        let notices = notices(transition, &change, expiry);
        hub.publish(Event { seq: 0, sku, version: transition.version, change, notices });
    }

    /// A new subscriber to every change from now on, through a channel of
    /// up to `capacity` events (allocated as events arrive, not up front).
    ///
    /// Per SKU, events arrive in version order, gap-free from the first one
    /// received. A subscriber that falls `capacity` events behind is never
    /// waited for: further events are dropped for it and counted, and
    /// before its next event it receives [`Delivery::Lagged`] with the exact
    /// number it missed (catch up from a [`snapshot`](Self::snapshot)).
    /// The same happens to every subscriber when changes outrun delivery
    /// and the hub sheds events to stay within its fixed memory budget.
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

    /// The `landed` hook for a command whose result becomes a [`Change`]
    /// by `to_change`; `expiry` is a received lot's (for its notice).
    pub(crate) fn on_landed<'s, R: 's>(
        &'s self,
        sku: SkuId,
        to_change: fn(&R) -> Change,
        expiry: Option<Timestamp>,
    ) -> impl FnMut(Landed<'_, R>) + 's {
        move |landed| match landed {
            Landed::Swept(swept, transition) => self.emit(sku, &transition, || Change::Swept(swept.clone()), None),
            Landed::Step(result, transition) => self.emit(sku, &transition, || to_change(result), expiry),
        }
    }

    /// Defines a SKU, empty, at version 0, with its allocation policy.
    pub fn define_sku(&self, sku: SkuId, policy: AllocationPolicy) -> Result<SkuDefined, DefineError> {
        let probe = self.metrics.probe(CommandKind::DefineSku, trace::command_span!("define_sku", sku = sku.0));
        let defined = SkuDefined { sku, version: 0 };
        match self.skus.insert(sku, Entry::Sku(SkuCell::new(sku, policy, self.events.is_some()))) {
            Ok(()) => self.defined(sku, policy),
            Err(InsertError::AlreadyDefined(_)) => return Err(DefineError::AlreadyDefined { sku }).tallied(probe),
            Err(InsertError::Full(_)) => {
                return Err(DefineError::CatalogFull { sku, max: crate::sku_table::table::LEN_MAX }).tallied(probe);
            }
        }
        let transition = Transition::default();
        self.emit(sku, &transition, || Change::Defined(defined.clone()), None);
        Ok(defined).tallied(probe)
    }

    /// After the catalog took `sku`: records its definition, then lets its
    /// changes be recorded (each waits for the one before it).
    fn defined(&self, sku: SkuId, policy: AllocationPolicy) {
        if self.change_sink().is_some() {
            #[cfg(feature = "journal")]
            self.record_defined(sku, policy);
            if let Some(Entry::Sku(cell)) = self.skus.get(sku) {
                cell.journaled_through(0);
            }
        }
        let _ = policy;
    }

    /// Receives a new lot into a SKU.
    pub fn receive(&self, sku: SkuId, lot: NewLot) -> Result<Received, ReceiveError> {
        let probe = self.metrics.probe(CommandKind::Receive, trace::command_span!("receive", sku = sku.0));
        let quantity = validate(lot.quantity).map_err(|invalid| match invalid {
            Invalid::Zero => ReceiveError::ZeroQuantity { sku, lot: lot.id },
            Invalid::TooLarge => ReceiveError::QuantityTooLarge { sku, lot: lot.id, quantity: lot.quantity },
        })?;
        lot.validate().map_err(|too_long| ReceiveError::attribute_too_long(sku, lot.id, too_long))?;
        if let Some(location) = lot.location.filter(|location| location.0 > LOCATION_MAX) {
            return Err(ReceiveError::LocationOutOfRange { sku, lot: lot.id, location, max: LOCATION_MAX });
        }
        let moment = self.moment();
        self.on(sku, &moment, Err(ReceiveError::UnknownSku { sku }), |cell, ctx| {
            let mut landed =
                self.on_landed(sku, |received: &Received| Change::Received(received.clone()), lot.expires_at);
            cell.receive(ctx, &lot, quantity, &mut landed)
        })
        .tallied(probe)
    }

    /// A validated hold duration.
    pub(crate) fn hold_terms(&self, hold_for: Option<Duration>) -> Result<Option<HoldTerms>, Option<Duration>> {
        match hold_for {
            None => Ok(None),
            // Deadlines are whole milliseconds: a shorter hold would lapse
            // at the instant it is made.
            Some(duration) if duration < MILLISECOND => Err(None),
            Some(duration) if duration > self.hold_max => Err(Some(duration)),
            Some(duration) => Ok(Some(HoldTerms { duration, max: self.hold_max })),
        }
    }

    pub(crate) fn demand<'m>(
        &self,
        request: &'m AllocateRequest,
        moment: &'m Moment<'m>,
    ) -> Result<Demand<'m>, AllocateError> {
        let sku = request.sku;
        let quantity = validate(request.quantity).map_err(|invalid| match invalid {
            Invalid::Zero => AllocateError::ZeroQuantity { sku },
            Invalid::TooLarge => AllocateError::QuantityTooLarge { sku, quantity: request.quantity },
        })?;
        check_locations(sku, &request.locations)?;
        if request.backorder && request.locations != Locations::Any {
            return Err(AllocateError::BackorderWithLocations { sku });
        }
        Ok(Demand {
            quantity,
            fill: request.fill,
            policy: request.policy,
            min_shelf_life: request.min_shelf_life,
            locations: &request.locations,
            split: request.split,
            exact: None,
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
        let probe = self.metrics.probe(CommandKind::Allocate, trace::command_span!("allocate", sku = request.sku.0));
        let sku = request.sku;
        let moment = self.moment();
        let demand = self.demand(request, &moment)?;
        let terms = self.hold_terms(request.hold_for).map_err(|rejected| match rejected {
            None => AllocateError::ZeroHold { sku },
            Some(requested) => AllocateError::HoldTooLong { sku, requested, max: self.hold_max },
        })?;
        self.on(sku, &moment, Err(AllocateError::UnknownSku { sku }), |cell, ctx| {
            let mut landed = self.on_landed(sku, |allocation: &Allocation| Change::Allocated(allocation.clone()), None);
            let spec = HoldSpec {
                terms,
                expected: request.expected_version,
                marks: Marks { tag: request.tag, order: 0 },
                backorder: request.backorder,
            };
            cell.hold(ctx, &[demand], spec, &mut landed).map_err(|(_, error)| error)
        })
        .map_err(|error| self.kit_refusal(error))
        .tallied(probe)
    }

    /// Sells units outright: allocates and commits in one step, keeping no
    /// reservation. The cheapest path the engine has. (`hold_for` does not
    /// apply: nothing is held.)
    ///
    /// A sale that the first lot in policy order covers changes one word
    /// of that lot beside the SKU's head: no new version is built, nothing
    /// is allocated. A sale of a sold-out SKU reads the head and that word.
    pub fn take(&self, request: &AllocateRequest) -> Result<Sale, AllocateError> {
        let probe = self.metrics.probe(CommandKind::Take, trace::command_span!("take", sku = request.sku.0));
        let sku = request.sku;
        if request.backorder {
            return Err(AllocateError::BackorderOnTake { sku }).tallied(probe);
        }
        let moment = self.moment();
        let demand = self.demand(request, &moment)?;
        self.on(sku, &moment, Err(AllocateError::UnknownSku { sku }), |cell, ctx| {
            let mut landed = self.on_landed(sku, |sale: &Sale| Change::Sold(sale.clone()), None);
            cell.take(ctx, &demand, request.expected_version, &mut landed)
        })
        .map_err(|error| self.kit_refusal(error))
        .tallied(probe)
    }

    /// Ends a reservation; its units become available again. A waiting
    /// backorder leaves its queue (with what it got so far).
    pub fn release(&self, id: ReservationId) -> Result<Released, ReleaseError> {
        self.release_as(id, 0)
    }

    /// [`release`](Self::release) on behalf of `order` (0: the caller
    /// itself, who may not release an order's part).
    pub(crate) fn release_as(&self, id: ReservationId, order: u64) -> Result<Released, ReleaseError> {
        let probe = self.metrics.probe(CommandKind::Release, trace::command_span!("release", sku = id.sku.0));
        let moment = self.moment();
        self.on(id.sku, &moment, Err(ReleaseError::UnknownSku { id }), |cell, ctx| {
            let mut landed = self.on_landed(id.sku, |released: &Released| Change::Released(released.clone()), None);
            cell.release(ctx, id, order, &mut landed).map_err(|refusal| match refusal {
                EndRefusal::Unknown => ReleaseError::UnknownReservation { id },
                EndRefusal::Ended
                | EndRefusal::ExceedsHeld { .. }
                | EndRefusal::Waiting(_)
                | EndRefusal::Shorted { .. } => ReleaseError::Ended { id },
                EndRefusal::Expired(deadline) => ReleaseError::Expired { id, deadline },
                EndRefusal::OrderPart(order) => ReleaseError::OrderPart { id, order: OrderId(order) },
                EndRefusal::Contended(attempts) => ReleaseError::Contended { id, attempts },
            })
        })
        .tallied(probe)
    }

    /// Ends a reservation; `quantity` of its units (all of them for `None`)
    /// leave the building and the rest become available again. A
    /// reservation past its deadline cannot be committed: the call that
    /// finds it lapsed gets [`CommitError::Expired`] (and returns its
    /// units); later calls get [`CommitError::Ended`]. Commit racing expiry:
    /// exactly one wins.
    pub fn commit(&self, id: ReservationId, quantity: Option<u64>) -> Result<Committed, CommitError> {
        self.commit_as(id, 0, quantity)
    }

    /// [`commit`](Self::commit) on behalf of `order` (0: the caller
    /// itself, who may not commit an order's part).
    pub(crate) fn commit_as(
        &self,
        id: ReservationId,
        order: u64,
        quantity: Option<u64>,
    ) -> Result<Committed, CommitError> {
        let probe = self.metrics.probe(CommandKind::Commit, trace::command_span!("commit", sku = id.sku.0));
        let quantity = match quantity.map(validate) {
            None => None,
            Some(Ok(quantity)) => Some(quantity),
            Some(Err(Invalid::Zero)) => return Err(CommitError::ZeroQuantity { id }),
            Some(Err(Invalid::TooLarge)) => {
                return Err(CommitError::QuantityTooLarge { id, quantity: quantity.unwrap_or_default() });
            }
        };
        let moment = self.moment();
        self.on(id.sku, &moment, Err(CommitError::UnknownSku { id }), |cell, ctx| {
            let mut landed = self.on_landed(id.sku, |committed: &Committed| Change::Committed(committed.clone()), None);
            cell.commit(ctx, id, order, quantity, &mut landed).map_err(|refusal| match refusal {
                EndRefusal::Unknown => CommitError::UnknownReservation { id },
                EndRefusal::Ended => CommitError::Ended { id },
                EndRefusal::Expired(deadline) => CommitError::Expired { id, deadline },
                EndRefusal::ExceedsHeld { requested, held } => CommitError::ExceedsHeld { id, requested, held },
                EndRefusal::Waiting(outstanding) => CommitError::Waiting { id, outstanding },
                EndRefusal::Shorted { .. } => unreachable!("only a pin refuses a shorted part"),
                EndRefusal::OrderPart(order) => CommitError::OrderPart { id, order: OrderId(order) },
                EndRefusal::Contended(attempts) => CommitError::Contended { id, attempts },
            })
        })
        .tallied(probe)
    }

    /// Moves a live reservation's deadline `by` later (a checkout waiting
    /// on payment), up to its allocation instant plus
    /// [`hold_max`](Self::hold_max). Only before the deadline: a lapsed
    /// reservation is [`ExtendError::Expired`].
    pub fn extend(&self, id: ReservationId, by: Duration) -> Result<Extended, ExtendError> {
        self.extend_as(id, 0, by)
    }

    /// [`extend`](Self::extend) on behalf of `order` (0: the caller
    /// itself, who may not extend an order's part).
    pub(crate) fn extend_as(&self, id: ReservationId, order: u64, by: Duration) -> Result<Extended, ExtendError> {
        let probe = self.metrics.probe(CommandKind::Extend, trace::command_span!("extend", sku = id.sku.0));
        if by < MILLISECOND {
            return Err(ExtendError::ZeroDuration { id });
        }
        let moment = self.moment();
        self.on(id.sku, &moment, Err(ExtendError::UnknownSku { id }), |cell, ctx| {
            let mut landed = self.on_landed(id.sku, |extended: &Extended| Change::Extended(extended.clone()), None);
            cell.extend(ctx, id, order, by, &mut landed)
        })
        .tallied(probe)
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
        let probe = self.metrics.probe(CommandKind::Adjust, trace::command_span!("adjust", sku = sku.0, delta));
        if delta == 0 {
            return Err(AdjustError::ZeroDelta { sku, lot });
        }
        if delta.unsigned_abs() > Quantity::MAX.get() {
            return Err(AdjustError::DeltaTooLarge { sku, lot, delta });
        }
        let moment = self.moment();
        self.on(sku, &moment, Err(AdjustError::UnknownSku { sku }), |cell, ctx| {
            let mut landed = self.on_landed(sku, |adjusted: &Adjusted| Change::Adjusted(adjusted.clone()), None);
            cell.adjust(ctx, lot, delta, reason, expected_version, &mut landed)
        })
        .tallied(probe)
    }

    /// Sets (or with `None` clears) a SKU's low-stock threshold on
    /// available units, re-armed as soon as stock is above it again:
    /// `set_low_stock_rule(sku, threshold.map(LowStock::new))`.
    pub fn set_low_stock(&self, sku: SkuId, threshold: Option<u64>) -> Result<LowStockSet, ThresholdError> {
        self.set_low_stock_rule(sku, threshold.map(LowStock::new))
    }

    /// Sets (or with `None` clears) a SKU's low-stock rule. With events on,
    /// a [`Notice::LowStock`] fires on the version that takes the stock the
    /// rule counts (available units, or on hand: see [`LowStockBasis`](crate::LowStockBasis)) to
    /// or below its threshold while the rule is armed; it re-arms only on a
    /// version that leaves stock above threshold + margin. Setting a rule
    /// fires nothing; a new rule starts armed when stock is above its
    /// threshold, and setting the rule already in force leaves its arming
    /// as it is.
    ///
    /// # Errors
    ///
    /// [`ThresholdError::TooLarge`] for a threshold or margin above
    /// [`Quantity::MAX`] (nothing changes); `UnknownSku`; `Contended`.
    pub fn set_low_stock_rule(&self, sku: SkuId, rule: Option<LowStock>) -> Result<LowStockSet, ThresholdError> {
        let probe = self.metrics.probe(CommandKind::SetLowStock, trace::command_span!("set_low_stock", sku = sku.0));
        if let Some(rule) = rule {
            for value in [rule.threshold, rule.margin] {
                if Quantity::new(value).is_err() {
                    return Err(ThresholdError::TooLarge { sku, threshold: value }).tallied(probe);
                }
            }
        }
        let moment = self.moment();
        self.on(sku, &moment, Err(ThresholdError::UnknownSku { sku }), |cell, ctx| {
            let mut landed = self.on_landed(sku, |set: &LowStockSet| Change::LowStockSet(set.clone()), None);
            cell.set_low_stock(ctx, rule, &mut landed)
        })
        .tallied(probe)
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
        self.sweep_skus(skus, now, self.write_off)
    }

    /// Writes off every expired lot of every SKU at `now` (see
    /// [`LedgerBuilder::write_off_expired`]), sweeping lapsed reservations
    /// too: one version per SKU that had anything to do. `now` may not be
    /// later than the ledger's clock.
    pub fn write_off_expired(&self, now: Timestamp) -> Result<ExpiryReport, ExpireError> {
        let mut skus = self.skus();
        skus.sort_unstable();
        self.sweep_skus(&skus, now, true)
    }

    /// The sweep of `expire_due_in`, writing off expired lots or not.
    fn sweep_skus(&self, skus: &[SkuId], now: Timestamp, write_off: bool) -> Result<ExpiryReport, ExpireError> {
        let probe = self.metrics.probe(CommandKind::ExpireDue, trace::command_span!("expire_due", skus = skus.len()));
        let clock = self.now();
        if now > clock {
            return Err(ExpireError::InFuture { now, clock }).tallied(probe);
        }
        // Lapses and expiry are judged at the host's `now`; the operation
        // itself happens at the clock's instant, so what it draws (units a
        // lapse gave back, filling a waiting backorder) is judged there: a
        // lot expired by now is never drawn, whatever `now` says.
        let moment = Moment::fixed(clock);
        let mut report = ExpiryReport::default();
        for &sku in skus {
            let swept = self.on(sku, &moment, None, |cell, ctx| {
                let mut landed = self.on_landed(sku, |swept: &Swept| Change::Swept(swept.clone()), None);
                cell.sweep(ctx, now, true, write_off, &mut landed)
            });
            report.swept.extend(swept);
        }
        Ok(report).tallied(probe)
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
            Command::SetLowStock { sku, rule } => Outcome::LowStockSet(self.set_low_stock_rule(*sku, *rule)?),
            Command::CommitOrder { order } => Outcome::OrderCommitted(self.commit_order(*order)?),
            Command::ReleaseOrder { order } => Outcome::OrderReleased(self.release_order(*order)?),
            Command::ExtendOrder { order, by } => Outcome::OrderExtended(self.extend_order(*order, *by)?),
            Command::DefineKit { kit, components } => Outcome::KitDefined(self.define_kit(*kit, components)?),
            Command::Return(request) => Outcome::Returned(self.return_units(request)?),
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
        let probe = self.metrics.probe(CommandKind::Keyed, trace::command_span!("execute_keyed", key = key.as_str()));
        let now = self.now();
        let is_final = |result: &Result<Outcome, CommandError>| !matches!(result, Err(error) if error.is_transient());
        let apply = || {
            #[cfg(feature = "journal")]
            self.record_key_intent(key, command, now);
            self.execute(command)
        };
        let (result, replay) = match self.keys.run(key, command, now, apply, is_final) {
            Claimed::Applied(result) => {
                self.key_recorded(key, command, &result, now, is_final(&result));
                (result, false)
            }
            Claimed::Replayed(result) => (result, true),
            Claimed::Conflict(first) => {
                let field = first.first_difference(command).unwrap_or("command").to_owned();
                return Err(KeyedError::KeyReused { key: key.clone(), field }).tallied(probe);
            }
            Claimed::Full => {
                return Err(KeyedError::KeysFull { key: key.clone(), keys_max: self.keys.window().keys_max })
                    .tallied(probe);
            }
        };
        match result {
            Ok(outcome) => Ok(Keyed { outcome, replay }),
            Err(error) => Err(KeyedError::Refused { error, replay }),
        }
        .tallied(probe)
    }

    /// After a keyed command ran: records its key and result in the
    /// journal, if it has one and the result was final (so recorded).
    pub(crate) fn key_recorded(
        &self,
        key: &IdempotencyKey,
        command: &Command,
        result: &Result<Outcome, CommandError>,
        now: Timestamp,
        recorded: bool,
    ) {
        #[cfg(feature = "journal")]
        if self.journal.is_some() {
            if recorded {
                let record = crate::idempotency::KeyRecord {
                    key: key.clone(),
                    command: command.clone(),
                    result: result.clone(),
                    recorded_at: now,
                };
                self.record_key(&record);
            } else {
                self.record_key_freed(key);
            }
        }
        let _ = (key, command, result, now, recorded);
    }

    /// The key store, for the async keyed path (`idempotency.rs`).
    #[cfg(feature = "async")]
    pub(crate) fn key_store(&self) -> &KeyStore<Command, Result<Outcome, CommandError>> {
        &self.keys
    }

    /// Reads `sku` once no hold in it has lapsed at the ledger's clock
    /// (sweeping first if one has: the sweeps this call published come
    /// back too). Never blocks a command.
    pub(crate) fn read<R>(
        &self,
        sku: SkuId,
        moment: &Moment,
        read: impl FnMut(&crate::cell::view::View) -> Result<R, crate::cell::view::Stale>,
    ) -> Result<(R, Vec<Swept>), QueryError> {
        self.on(sku, moment, Err(QueryError::UnknownSku { sku }), |cell, ctx| {
            let mut swept = Vec::new();
            let mut landed = self.on_landed(sku, |_: &()| unreachable!("queries publish only sweeps"), None);
            match cell.query(ctx, &mut landed, &mut swept, read) {
                Some(result) => Ok((result, swept)),
                None => Err(QueryError::Contended { sku, attempts: crate::cell::ATTEMPTS_MAX }),
            }
        })
    }

    /// The SKU's current version (reservations past their deadline already
    /// swept: a snapshot never counts a lapsed hold as held). Never blocks
    /// a command.
    pub fn snapshot(&self, sku: SkuId) -> Result<Snapshot, QueryError> {
        let moment = self.moment();
        let (mut data, _) = self.read(sku, &moment, materialize)?;
        // Lots past their expiry count as expired, by the snapshot's clock
        // reading (the one its sweep used, if it had to sweep).
        data.at = Some(moment.now());
        Ok(Snapshot::new(data))
    }

    /// Units an allocation with `min_shelf_life` could draw right now (lots
    /// expired by the ledger's clock, or expiring too soon, left out; units
    /// of lapsed reservations counted in).
    ///
    /// For a kit: whole kits its components could make (see
    /// [`kit`](Self::kit); the shelf life is not applied to components).
    pub fn available(&self, sku: SkuId, min_shelf_life: Duration) -> Result<Quantity, QueryError> {
        if self.kit_parts(sku).is_some() {
            return self.kit(sku).map(|kit| kit.available);
        }
        let moment = self.moment();
        self.read(sku, &moment, |view| {
            let eligibility = Eligibility::at(moment.now(), min_shelf_life);
            let mut claims = crate::cell::view::ClaimPool::default();
            let draft = crate::cell::view::Draft::new(view, &mut claims);
            crate::cell::plan::eligible_total(&draft, eligibility)
        })
        .map(|(available, _)| available)
    }

    /// A live reservation.
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, QueryError> {
        let moment = self.moment();
        let (found, swept) = self.read(id.sku, &moment, |view| {
            let found = find(view, id)?;
            Ok(match found {
                Ok(hold) => Ok(crate::snapshot::reservation_in(view, &hold)),
                Err(lookup) => Err(lookup),
            })
        })?;
        if let Some(deadline) = lapsed_in(&swept, id.seq) {
            return Err(QueryError::Expired { id, deadline });
        }
        found.map_err(|lookup| match lookup {
            Lookup::Unknown => QueryError::UnknownReservation { id },
            Lookup::Ended => QueryError::Ended { id },
        })
    }

    /// Every defined SKU, in no particular order.
    pub fn skus(&self) -> Vec<SkuId> {
        let mut skus = Vec::with_capacity(self.skus.len());
        self.skus.for_each(|sku, entry| {
            if let Entry::Sku(_) = entry {
                skus.push(sku);
            }
        });
        skus
    }

    /// Checks every invariant of every SKU, each against one consistent
    /// version of that SKU. Run it at a quiescent point to check
    /// conservation of the whole ledger; concurrently, each SKU is still
    /// checked against a real version. (It sweeps nothing: a lapsed hold
    /// not yet swept is still a sound hold.)
    pub fn audit(&self) -> AuditReport {
        let mut report = AuditReport::default();
        self.skus.for_each(|_, entry| {
            if let Entry::Sku(cell) = entry {
                if let Some(data) = cell.read_settled(&self.registry) {
                    audit_sku(&data, &mut report);
                }
            }
        });
        report
    }
}

/// A request's locations, checked: at most [`LOCATIONS_MAX`], none
/// repeated or past [`LOCATION_MAX`], `Only` not empty.
pub(crate) fn check_locations(sku: SkuId, locations: &Locations) -> Result<(), AllocateError> {
    let listed = locations.listed();
    let invalid = |problem| Err(AllocateError::InvalidLocations { sku, problem });
    if listed.len() > LOCATIONS_MAX {
        return invalid(LocationsProblem::TooMany { count: listed.len(), max: LOCATIONS_MAX });
    }
    if matches!(locations, Locations::Only(list) if list.is_empty()) {
        return invalid(LocationsProblem::Empty);
    }
    for (at, &location) in listed.iter().enumerate() {
        if location.0 > LOCATION_MAX {
            return invalid(LocationsProblem::OutOfRange { location, max: LOCATION_MAX });
        }
        if listed[..at].contains(&location) {
            return invalid(LocationsProblem::Repeated { location });
        }
    }
    Ok(())
}

/// The deadline of `seq` if one of `swept` lapsed it.
fn lapsed_in(swept: &[Swept], seq: u64) -> Option<Timestamp> {
    swept.iter().flat_map(|sweep| sweep.lapsed.iter()).find(|lapsed| lapsed.reservation.seq == seq).map(|l| l.deadline)
}

/// The threshold notices a version's change crossed.
fn notices(transition: &Transition, change: &Change, received_expiry: Option<Timestamp>) -> Vec<Notice> {
    let mut notices = Vec::new();
    if let Some((stock, threshold)) = transition.low_stock {
        notices.push(Notice::LowStock { available: stock, threshold });
    }
    if let Some((was, now)) = transition.available {
        if !was.is_zero() && now.is_zero() {
            notices.push(Notice::SoldOut);
        }
        if was.is_zero() && !now.is_zero() {
            notices.push(Notice::BackInStock { available: now });
        }
    }
    match change {
        Change::Swept(swept) => notices.extend(swept.expired_lots.iter().map(|&lot| Notice::LotExpired { lot })),
        Change::Received(received) => {
            if let (Some(expiry), Some(checked)) = (received_expiry, transition.checked_before) {
                if expiry <= checked {
                    notices.push(Notice::LotExpired { lot: received.lot });
                }
            }
        }
        _ => {}
    }
    notices.extend(transition.filled.iter().map(|filled| Notice::BackorderFilled {
        reservation: filled.reservation,
        drawn: filled.drawn.clone(),
        outstanding: filled.outstanding,
    }));
    notices
}
