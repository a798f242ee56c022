//! What a successful command reports.
//!
//! Owns: one outcome type per command, and [`Line`], the "this many units
//! of this lot" every outcome speaks in.
//!
//! Must never: report something that did not happen. Every outcome names
//! the SKU version its change produced: the version an observer will see in
//! the SKU's snapshot once the change is visible.
//!
//! Every outcome is `#[non_exhaustive]` (later versions may report more);
//! each has a `new` taking its fields in declaration order, for tests,
//! reference models and stand-ins for a ledger. A field added after its
//! `new` was written starts at its neutral value there (zero, none) and is
//! set by assignment; each `new` names those it leaves out. Every outcome prints (`Display`) as one
//! human-readable line for logs, stable within a minor version, ending in
//! the version it produced: `(version 3)`.

use crate::clock::Timestamp;
use crate::display::{Count, List};
use crate::ids::{LotId, OrderId, ReservationId, SkuId};
use crate::lot::{AdjustmentReason, LotQuantities};
use crate::low_stock::LowStock;
use crate::quantity::Quantity;
use core::fmt;
use smallvec::SmallVec;

/// Units of one lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Line {
    /// The lot.
    pub lot: LotId,
    /// How many of its units.
    pub quantity: Quantity,
}

/// The lines of an outcome or a reservation, in the order the policy drew
/// the lots: up to two inline (most draws take one or two lots), so an
/// outcome costs no heap allocation; more spill to the heap.
///
/// It derefs to `[Line]`, compares with a `Vec<Line>` or an array, and
/// (with `serde`) is a plain sequence on the wire.
///
/// ```
/// use stockroom::{Line, Lines, LotId, Quantity};
/// let lines: Lines = [Line { lot: LotId(1), quantity: Quantity::new(3)? }].into_iter().collect();
/// assert_eq!(lines.len(), 1);
/// assert_eq!(lines[0].lot, LotId(1));
/// # Ok::<(), stockroom::QuantityTooLarge>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Lines(SmallVec<[Line; 2]>);

impl Lines {
    /// One line.
    pub(crate) fn one(line: Line) -> Lines {
        let mut lines = Lines::default();
        lines.push(line);
        lines
    }

    /// Appends a line.
    pub(crate) fn push(&mut self, line: Line) {
        self.0.push(line);
    }

    /// The lines as a `Vec`.
    pub fn to_vec(&self) -> Vec<Line> {
        self.0.to_vec()
    }
}

impl core::ops::Deref for Lines {
    type Target = [Line];

    fn deref(&self) -> &[Line] {
        &self.0
    }
}

impl core::fmt::Debug for Lines {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl FromIterator<Line> for Lines {
    fn from_iter<I: IntoIterator<Item = Line>>(iter: I) -> Lines {
        Lines(iter.into_iter().collect())
    }
}

impl IntoIterator for Lines {
    type Item = Line;
    type IntoIter = smallvec::IntoIter<[Line; 2]>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Lines {
    type Item = &'a Line;
    type IntoIter = core::slice::Iter<'a, Line>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<Line>> for Lines {
    fn from(lines: Vec<Line>) -> Lines {
        Lines(SmallVec::from_vec(lines))
    }
}

impl PartialEq<Vec<Line>> for Lines {
    fn eq(&self, other: &Vec<Line>) -> bool {
        self.0[..] == other[..]
    }
}

impl<const N: usize> PartialEq<[Line; N]> for Lines {
    fn eq(&self, other: &[Line; N]) -> bool {
        self.0[..] == other[..]
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Lines {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Lines {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Lines, D::Error> {
        Vec::<Line>::deserialize(deserializer).map(Lines::from)
    }
}

/// Sum of the lines' quantities.
pub(crate) fn total(lines: &[Line]) -> Quantity {
    lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity))
}

/// A SKU was defined at version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SkuDefined {
    /// The SKU.
    pub sku: SkuId,
    /// Always 0: the empty SKU.
    pub version: u64,
}

/// A lot was received.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Received {
    /// The SKU.
    pub sku: SkuId,
    /// The lot.
    pub lot: LotId,
    /// When it was received (the ledger's clock if the request left it out).
    pub received_at: Timestamp,
    /// The SKU version this receipt produced.
    pub version: u64,
}

/// Units are held for a new reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Allocation {
    /// The new reservation.
    pub reservation: ReservationId,
    /// What it holds, in the order the policy drew the lots.
    pub lines: Lines,
    /// When it lapses if neither committed nor released; `None` holds until
    /// ended.
    #[cfg_attr(feature = "serde", serde(default))]
    pub deadline: Option<Timestamp>,
    /// The SKU version this allocation produced; its lines are what the
    /// policy chooses from the version before it.
    pub version: u64,
    /// The host's tag ([`AllocateRequest::tag`](crate::AllocateRequest::tag)); 0 for none.
    #[cfg_attr(feature = "serde", serde(default))]
    pub tag: u64,
    /// Units a backorder waits for beyond `lines` (zero for a hold that got
    /// everything): they come as stock arrives, oldest backorder first.
    #[cfg_attr(feature = "serde", serde(default))]
    pub backordered: Quantity,
}

impl Allocation {
    /// Units held.
    pub fn quantity(&self) -> Quantity {
        total(&self.lines)
    }
}

/// Units were sold outright (allocated and committed in one step).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Sale {
    /// The SKU.
    pub sku: SkuId,
    /// What left the building, in the order the policy drew the lots.
    pub lines: Lines,
    /// The SKU version this sale produced.
    pub version: u64,
}

impl Sale {
    /// Units sold.
    pub fn quantity(&self) -> Quantity {
        total(&self.lines)
    }
}

/// A reservation was released; its units are available again.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Released {
    /// The reservation, now ended.
    pub reservation: ReservationId,
    /// What returned to the lots.
    pub lines: Lines,
    /// The SKU version this release produced.
    pub version: u64,
}

/// A reservation was committed; its units left the building.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Committed {
    /// The reservation, now ended.
    pub reservation: ReservationId,
    /// What left the building.
    pub committed: Lines,
    /// What was held but not committed, returned to the lots.
    pub returned: Lines,
    /// The SKU version this commit produced.
    pub version: u64,
}

/// What became of one reservation whose units a shrinking adjustment took.
///
/// The engine first moves the lost units to other eligible lots of the SKU,
/// by the SKU's policy ([`resourced`](Shortfall::resourced)); only what no
/// other lot can cover is taken from the reservation for good
/// ([`shorted`](Shortfall::shorted)). `quantity = total(resourced) + shorted`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Shortfall {
    /// The reservation.
    pub reservation: ReservationId,
    /// Units it lost on the adjusted lot.
    pub quantity: Quantity,
    /// Units it now holds on other lots instead, in the order the policy drew
    /// them (lots not yet expired at the adjustment's instant).
    pub resourced: Lines,
    /// Units it no longer holds at all: the part no other lot could cover.
    pub shorted: Quantity,
}

/// A lot was adjusted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Adjusted {
    /// The SKU.
    pub sku: SkuId,
    /// The lot.
    pub lot: LotId,
    /// The change applied.
    pub delta: i64,
    /// Why.
    pub reason: AdjustmentReason,
    /// The lot's counters after the change.
    pub quantities: LotQuantities,
    /// Reservations that held units the shrink took, newest reservation
    /// first (the most recent order loses units before older ones), each
    /// with what was re-sourced and what was shorted. Empty when the lot's
    /// available units covered the shrink.
    pub shortfalls: Vec<Shortfall>,
    /// The SKU version this adjustment produced.
    pub version: u64,
}

/// A reservation's deadline moved later.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Extended {
    /// The reservation.
    pub reservation: ReservationId,
    /// Its new deadline.
    pub deadline: Timestamp,
    /// The SKU version this extension produced.
    pub version: u64,
}

/// An order's commit pinned one of its parts (took its deadline away, so
/// that no lapse can take it while the order commits), or unpinned it
/// (gave its deadline back) because another part stopped the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Pinned {
    /// The part.
    pub reservation: ReservationId,
    /// Its order.
    pub order: OrderId,
    /// Its deadline now: `None` while pinned, its own again once unpinned.
    pub deadline: Option<Timestamp>,
    /// The SKU version this change produced.
    pub version: u64,
}

/// A reservation that lapsed: its deadline passed before it was committed or
/// released, and its units returned to their lots.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Lapsed {
    /// The reservation.
    pub reservation: ReservationId,
    /// The deadline it missed.
    pub deadline: Timestamp,
    /// The units that returned, per lot.
    pub lines: Lines,
}

/// One sweep of one SKU: the reservations that lapsed and the lots whose
/// expiry passed since the last sweep that looked at lots.
///
/// A sweep is a change of its own (one version): time's change, not a
/// caller's. Any operation on a SKU sweeps the SKU's lapsed reservations
/// first; [`Ledger::expire_due`](crate::Ledger::expire_due) also reports lots.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Swept {
    /// The SKU.
    pub sku: SkuId,
    /// The instant the sweep ran at.
    pub at: Timestamp,
    /// Lapsed reservations, oldest reservation first.
    pub lapsed: Vec<Lapsed>,
    /// Lots whose expiry passed (at or before `at`) since they were last
    /// looked at, in the SKU's policy order. Their units are never
    /// sellable; a sweep that writes off
    /// ([`LedgerBuilder::write_off_expired`](crate::LedgerBuilder::write_off_expired),
    /// [`Ledger::write_off_expired`](crate::Ledger::write_off_expired))
    /// takes them off the books.
    pub expired_lots: Vec<LotId>,
    /// Expired lots this sweep wrote off (reason
    /// [`AdjustmentReason::Expiry`]): every unit still on hand, held ones
    /// included, in the SKU's policy order.
    #[cfg_attr(feature = "serde", serde(default))]
    pub written_off: Vec<Line>,
    /// What became of reservations that held units of a lot written off:
    /// moved to other lots by the SKU's policy where they have units,
    /// shorted for the rest (as for a shrink).
    #[cfg_attr(feature = "serde", serde(default))]
    pub shortfalls: Vec<Shortfall>,
    /// The SKU version this sweep produced.
    pub version: u64,
}

/// What [`Ledger::expire_due`](crate::Ledger::expire_due) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ExpiryReport {
    /// One sweep per SKU that had something lapsed or expired, by SKU id.
    pub swept: Vec<Swept>,
}

impl ExpiryReport {
    /// Every reservation that lapsed, across SKUs.
    pub fn lapsed(&self) -> impl Iterator<Item = &Lapsed> + '_ {
        self.swept.iter().flat_map(|swept| swept.lapsed.iter())
    }
}

/// A multi-line order was held: one reservation per SKU, holding the
/// combined demand of that SKU's lines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OrderAllocation {
    /// The order: commit, release and extend it as one
    /// ([`Ledger::commit_order`](crate::Ledger::commit_order), …).
    pub order: OrderId,
    /// One allocation per SKU (the order's parts), by SKU id.
    pub allocations: Vec<Allocation>,
}

impl OrderAllocation {
    /// The reservations, by SKU id.
    pub fn reservations(&self) -> impl Iterator<Item = ReservationId> + '_ {
        self.allocations.iter().map(|allocation| allocation.reservation)
    }
}

/// A SKU's low-stock rule was set (or cleared).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LowStockSet {
    /// The SKU.
    pub sku: SkuId,
    /// The rule now in force; `None`: cleared.
    pub rule: Option<LowStock>,
    /// The SKU version this change produced.
    pub version: u64,
}

/// The answer to a keyed command
/// ([`Ledger::execute_keyed`](crate::Ledger::execute_keyed)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Keyed<T> {
    /// The outcome: this call's, or the first call's for a replay.
    pub outcome: T,
    /// True when the command was not applied by this call: the key had
    /// already applied it (or a racing duplicate just did), and this is that
    /// first outcome, unchanged.
    pub replay: bool,
}

impl SkuDefined {
    /// The outcome with every field, in declaration order.
    pub fn new(sku: SkuId, version: u64) -> SkuDefined {
        SkuDefined { sku, version }
    }
}

impl Received {
    /// The outcome with every field, in declaration order.
    pub fn new(sku: SkuId, lot: LotId, received_at: Timestamp, version: u64) -> Received {
        Received { sku, lot, received_at, version }
    }
}

impl Allocation {
    /// The outcome with these fields, in declaration order; `tag` starts
    /// at 0 and `backordered` at zero.
    pub fn new(
        reservation: ReservationId,
        lines: impl Into<Lines>,
        deadline: Option<Timestamp>,
        version: u64,
    ) -> Allocation {
        Allocation { reservation, lines: lines.into(), deadline, version, tag: 0, backordered: Quantity::ZERO }
    }
}

impl Sale {
    /// The outcome with every field, in declaration order.
    pub fn new(sku: SkuId, lines: impl Into<Lines>, version: u64) -> Sale {
        Sale { sku, lines: lines.into(), version }
    }
}

impl Released {
    /// The outcome with every field, in declaration order.
    pub fn new(reservation: ReservationId, lines: impl Into<Lines>, version: u64) -> Released {
        Released { reservation, lines: lines.into(), version }
    }
}

impl Committed {
    /// The outcome with every field, in declaration order.
    pub fn new(
        reservation: ReservationId,
        committed: impl Into<Lines>,
        returned: impl Into<Lines>,
        version: u64,
    ) -> Committed {
        Committed { reservation, committed: committed.into(), returned: returned.into(), version }
    }
}

impl Shortfall {
    /// The report with every field, in declaration order.
    pub fn new(
        reservation: ReservationId,
        quantity: Quantity,
        resourced: impl Into<Lines>,
        shorted: Quantity,
    ) -> Shortfall {
        Shortfall { reservation, quantity, resourced: resourced.into(), shorted }
    }
}

impl Adjusted {
    /// The outcome with every field, in declaration order.
    pub fn new(
        sku: SkuId,
        lot: LotId,
        delta: i64,
        reason: AdjustmentReason,
        quantities: LotQuantities,
        shortfalls: Vec<Shortfall>,
        version: u64,
    ) -> Adjusted {
        Adjusted { sku, lot, delta, reason, quantities, shortfalls, version }
    }
}

impl Extended {
    /// The outcome with every field, in declaration order.
    pub fn new(reservation: ReservationId, deadline: Timestamp, version: u64) -> Extended {
        Extended { reservation, deadline, version }
    }
}

impl Pinned {
    /// The change with every field, in declaration order.
    pub fn new(reservation: ReservationId, order: OrderId, deadline: Option<Timestamp>, version: u64) -> Pinned {
        Pinned { reservation, order, deadline, version }
    }
}

impl Lapsed {
    /// The report with every field, in declaration order.
    pub fn new(reservation: ReservationId, deadline: Timestamp, lines: impl Into<Lines>) -> Lapsed {
        Lapsed { reservation, deadline, lines: lines.into() }
    }
}

impl Swept {
    /// The report with every field, in declaration order.
    /// (`written_off` and `shortfalls` start empty.)
    pub fn new(sku: SkuId, at: Timestamp, lapsed: Vec<Lapsed>, expired_lots: Vec<LotId>, version: u64) -> Swept {
        Swept { sku, at, lapsed, expired_lots, written_off: Vec::new(), shortfalls: Vec::new(), version }
    }
}

impl ExpiryReport {
    /// The outcome with every field, in declaration order.
    pub fn new(swept: Vec<Swept>) -> ExpiryReport {
        ExpiryReport { swept }
    }
}

impl OrderAllocation {
    /// The outcome with every field, in declaration order.
    pub fn new(order: OrderId, allocations: Vec<Allocation>) -> OrderAllocation {
        OrderAllocation { order, allocations }
    }
}

impl LowStockSet {
    /// The outcome with every field, in declaration order.
    pub fn new(sku: SkuId, rule: Option<LowStock>, version: u64) -> LowStockSet {
        LowStockSet { sku, rule, version }
    }
}

impl<T> Keyed<T> {
    /// The answer with every field, in declaration order.
    pub fn new(outcome: T, replay: bool) -> Keyed<T> {
        Keyed { outcome, replay }
    }
}

impl fmt::Display for Line {
    /// `10 of lot:1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.quantity, self.lot)
    }
}

impl fmt::Display for Lines {
    /// `10 of lot:1, 5 of lot:2` (past eight lines, `… and N more`), or
    /// `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() { f.write_str("nothing") } else { List(&self.0, ", ").fmt(f) }
    }
}

impl fmt::Display for SkuDefined {
    /// `sku:1 defined (version 0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} defined (version {})", self.sku, self.version)
    }
}

impl fmt::Display for Received {
    /// `lot:7 received into sku:1 at 5ms (version 1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} received into {} at {} (version {})", self.lot, self.sku, self.received_at, self.version)
    }
}

impl fmt::Display for Allocation {
    /// `res:1/3 holds 15: 10 of lot:1, 5 of lot:2; waits for 5 more;
    /// lapses at 900000ms; tag 42 (version 3)`, without what is not there
    /// (nothing waited for, no deadline, tag 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} holds {}: {}", self.reservation, self.quantity(), self.lines)?;
        if !self.backordered.is_zero() {
            write!(f, "; waits for {} more", self.backordered)?;
        }
        if let Some(deadline) = self.deadline {
            write!(f, "; lapses at {deadline}")?;
        }
        if self.tag != 0 {
            write!(f, "; tag {}", self.tag)?;
        }
        write!(f, " (version {})", self.version)
    }
}

impl fmt::Display for Sale {
    /// `sold 12 of sku:1: 10 of lot:1, 2 of lot:2 (version 3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sold {} of {}: {} (version {})", self.quantity(), self.sku, self.lines, self.version)
    }
}

impl fmt::Display for Released {
    /// `res:1/3 released 12: 10 of lot:1, 2 of lot:2 (version 4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} released {}: {} (version {})", self.reservation, total(&self.lines), self.lines, self.version)
    }
}

impl fmt::Display for Committed {
    /// `res:1/3 committed 7: 7 of lot:1; returned 3: 3 of lot:2 (version
    /// 4)`, without the return when everything held was committed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} committed {}: {}", self.reservation, total(&self.committed), self.committed)?;
        if !self.returned.is_empty() {
            write!(f, "; returned {}: {}", total(&self.returned), self.returned)?;
        }
        write!(f, " (version {})", self.version)
    }
}

impl fmt::Display for Shortfall {
    /// `res:1/3 lost 10: 7 re-sourced (7 of lot:2), 3 shorted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lost {}: {} re-sourced ({}), {} shorted",
            self.reservation,
            self.quantity,
            total(&self.resourced),
            self.resourced,
            self.shorted
        )
    }
}

impl fmt::Display for Adjusted {
    /// `lot:7 of sku:1 adjusted by -30 (spoilage): 70 available, 20 held;
    /// 2 reservations displaced, 3 shorted (version 5)`, without the
    /// displaced reservations when the lot's available units covered it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sku, lot, quantities) = (self.sku, self.lot, &self.quantities);
        write!(f, "{lot} of {sku} adjusted by {:+} ({}): ", self.delta, self.reason)?;
        write!(f, "{} available, {} held", quantities.available, quantities.held)?;
        if !self.shortfalls.is_empty() {
            let shorted = self.shortfalls.iter().fold(Quantity::ZERO, |sum, shortfall| sum.plus(shortfall.shorted));
            let displaced = Count(self.shortfalls.len(), "reservation", "reservations");
            write!(f, "; {displaced} displaced, {shorted} shorted")?;
        }
        write!(f, " (version {})", self.version)
    }
}

impl fmt::Display for Extended {
    /// `res:1/3 now lapses at 61000ms (version 5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} now lapses at {} (version {})", self.reservation, self.deadline, self.version)
    }
}

impl fmt::Display for Pinned {
    /// `res:1/3 of order:7 pinned (version 5)` while pinned, `res:1/3 of
    /// order:7 unpinned, lapses at 900000ms (version 6)` once given its
    /// deadline back (or `unpinned` alone, for a part without one).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} ", self.reservation, self.order)?;
        match self.deadline {
            None => f.write_str("pinned")?,
            Some(deadline) => write!(f, "unpinned, lapses at {deadline}")?,
        }
        write!(f, " (version {})", self.version)
    }
}

impl fmt::Display for Lapsed {
    /// `res:1/3 lapsed at 60000ms, returning 5: 5 of lot:1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lapsed at {}, returning {}: {}", self.reservation, self.deadline, total(&self.lines), self.lines)
    }
}

impl fmt::Display for Swept {
    /// `sku:1 swept at 60000ms: 2 reservations lapsed, 1 lot expired
    /// (version 6)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lapsed = Count(self.lapsed.len(), "reservation", "reservations");
        let expired = Count(self.expired_lots.len(), "lot", "lots");
        write!(f, "{} swept at {}: {lapsed} lapsed, {expired} expired", self.sku, self.at)?;
        if !self.written_off.is_empty() {
            let units: u64 = self.written_off.iter().map(|line| line.quantity.get()).sum();
            write!(f, ", {units} units written off")?;
        }
        write!(f, " (version {})", self.version)
    }
}

impl fmt::Display for ExpiryReport {
    /// `swept 3 SKUs: 2 reservations lapsed, 1 lot expired`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skus = Count(self.swept.len(), "SKU", "SKUs");
        let lapsed = Count(self.lapsed().count(), "reservation", "reservations");
        let expired = Count(self.swept.iter().map(|swept| swept.expired_lots.len()).sum(), "lot", "lots");
        write!(f, "swept {skus}: {lapsed} lapsed, {expired} expired")
    }
}

impl fmt::Display for OrderAllocation {
    /// `order:7 held as 2 reservations: res:1/3 holds 2, res:2/5 holds 1`
    /// (past eight, `… and N more`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// One reservation of the order, briefly.
        struct Held<'a>(&'a Allocation);
        impl fmt::Display for Held<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} holds {}", self.0.reservation, self.0.quantity())
            }
        }
        let held: Vec<Held<'_>> = self.allocations.iter().map(Held).collect();
        let count = Count(held.len(), "reservation", "reservations");
        write!(f, "{} held as {count}: {}", self.order, List(&held, ", "))
    }
}

impl fmt::Display for LowStockSet {
    /// `low stock of sku:1 set to at or below 10 available (version 6)`,
    /// or `low stock of sku:1 cleared (version 6)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(rule) => write!(f, "low stock of {} set to {rule}", self.sku)?,
            None => write!(f, "low stock of {} cleared", self.sku)?,
        }
        write!(f, " (version {})", self.version)
    }
}

impl<T: fmt::Display> fmt::Display for Keyed<T> {
    /// The outcome's line, then ` (replayed)` for a replay.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.outcome, if self.replay { " (replayed)" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Outcome;
    use crate::kits::{KitComponent, KitDefined};
    use crate::orders::{OrderCommitted, OrderExtended, OrderReleased};

    const SKU: SkuId = SkuId(1);

    fn line(lot: u64, units: u64) -> Line {
        Line { lot: LotId(lot), quantity: Quantity::new(units).expect("small") }
    }

    fn res(seq: u64) -> ReservationId {
        ReservationId::new(SKU, seq)
    }

    /// One sample of every outcome, named by a `match` without a wildcard
    /// (a new outcome fails to compile here until it has a line), with the
    /// line it prints.
    fn samples() -> Vec<(Outcome, &'static str)> {
        let q = |units| Quantity::new(units).expect("small");
        let after = LotQuantities { available: q(70), held: q(20), ..LotQuantities::default() };
        let shortfalls = vec![
            Shortfall::new(res(3), q(10), vec![line(2, 7)], q(3)),
            Shortfall::new(res(4), q(1), Lines::default(), q(1)),
        ];
        let lapsed = Lapsed::new(res(3), Timestamp(60_000), vec![line(1, 5)]);
        let swept = Swept::new(SKU, Timestamp(60_000), vec![lapsed.clone(), lapsed], vec![LotId(4)], 6);
        let held = |seq, units| Allocation::new(ReservationId::new(SkuId(seq), seq), vec![line(1, units)], None, 2);
        vec![
            (Outcome::SkuDefined(SkuDefined::new(SKU, 0)), "sku:1 defined (version 0)"),
            (
                Outcome::Received(Received::new(SKU, LotId(7), Timestamp(5), 1)),
                "lot:7 received into sku:1 at 5ms (version 1)",
            ),
            (
                Outcome::Allocated(Allocation::new(res(3), vec![line(1, 10), line(2, 5)], Some(Timestamp(900_000)), 3)),
                "res:1/3 holds 15: 10 of lot:1, 5 of lot:2; lapses at 900000ms (version 3)",
            ),
            (
                Outcome::Sold(Sale::new(SKU, vec![line(1, 10), line(2, 2)], 3)),
                "sold 12 of sku:1: 10 of lot:1, 2 of lot:2 (version 3)",
            ),
            (
                Outcome::Released(Released::new(res(3), vec![line(1, 10), line(2, 2)], 4)),
                "res:1/3 released 12: 10 of lot:1, 2 of lot:2 (version 4)",
            ),
            (
                Outcome::Committed(Committed::new(res(3), vec![line(1, 7)], vec![line(2, 3)], 4)),
                "res:1/3 committed 7: 7 of lot:1; returned 3: 3 of lot:2 (version 4)",
            ),
            (
                Outcome::Adjusted(Adjusted::new(SKU, LotId(7), -30, AdjustmentReason::Spoilage, after, shortfalls, 5)),
                "lot:7 of sku:1 adjusted by -30 (spoilage): 70 available, 20 held; 2 reservations displaced, 4 shorted \
                 (version 5)",
            ),
            (
                Outcome::OrderAllocated(OrderAllocation::new(OrderId(7), vec![held(1, 2), held(2, 1)])),
                "order:7 held as 2 reservations: res:1/1 holds 2, res:2/2 holds 1",
            ),
            (
                Outcome::Extended(Extended::new(res(3), Timestamp(61_000), 5)),
                "res:1/3 now lapses at 61000ms (version 5)",
            ),
            (
                Outcome::Expired(ExpiryReport::new(vec![
                    swept.clone(),
                    Swept::new(SkuId(2), Timestamp(1), vec![], vec![], 1),
                ])),
                "swept 2 SKUs: 2 reservations lapsed, 1 lot expired",
            ),
            (
                Outcome::LowStockSet(LowStockSet::new(SKU, Some(LowStock::new(10)), 6)),
                "low stock of sku:1 set to at or below 10 available (version 6)",
            ),
            (
                Outcome::OrderCommitted(OrderCommitted {
                    order: OrderId(7),
                    parts: vec![
                        Committed::new(res(3), vec![line(1, 2)], Lines::default(), 4),
                        Committed::new(ReservationId::new(SkuId(2), 5), vec![line(1, 1)], Lines::default(), 6),
                    ],
                }),
                "order:7 committed 2 parts: res:1/3 committed 2, res:2/5 committed 1",
            ),
            (
                Outcome::OrderReleased(OrderReleased {
                    order: OrderId(7),
                    parts: vec![Released::new(res(3), vec![line(1, 2)], 4)],
                    already_ended: vec![ReservationId::new(SkuId(2), 5)],
                }),
                "order:7 released 1 part: res:1/3 returned 2; 1 part had already ended",
            ),
            (
                Outcome::OrderExtended(OrderExtended {
                    order: OrderId(7),
                    parts: vec![Extended::new(res(3), Timestamp(61_000), 5)],
                }),
                "order:7 extended 1 part: res:1/3 now lapses at 61000ms",
            ),
            (
                Outcome::KitDefined(KitDefined { kit: SkuId(9), components: vec![KitComponent::new(SKU, 1)] }),
                "kit sku:9 defined as 1 component (1 of sku:1)",
            ),
            (
                Outcome::Returned(crate::returns::Returned {
                    sku: SKU,
                    from_lot: LotId(1),
                    into_lot: LotId(1),
                    quantity: Quantity::new(3).expect("small"),
                    reason: crate::returns::ReturnReason::Returned,
                    source: crate::returns::ReturnSource::Unlinked,
                    version: 7,
                }),
                "3 of lot:1 of sku:1 came back into lot:1 (version 7)",
            ),
        ]
    }

    #[test]
    fn every_outcome_prints_one_stable_line() {
        let mut named = std::collections::BTreeSet::new();
        for (outcome, line) in samples() {
            named.insert(match &outcome {
                Outcome::SkuDefined(_) => "SkuDefined",
                Outcome::Received(_) => "Received",
                Outcome::Allocated(_) => "Allocated",
                Outcome::Sold(_) => "Sold",
                Outcome::Released(_) => "Released",
                Outcome::Committed(_) => "Committed",
                Outcome::Adjusted(_) => "Adjusted",
                Outcome::OrderAllocated(_) => "OrderAllocated",
                Outcome::Extended(_) => "Extended",
                Outcome::Expired(_) => "Expired",
                Outcome::LowStockSet(_) => "LowStockSet",
                Outcome::OrderCommitted(_) => "OrderCommitted",
                Outcome::OrderReleased(_) => "OrderReleased",
                Outcome::OrderExtended(_) => "OrderExtended",
                Outcome::KitDefined(_) => "KitDefined",
                Outcome::Returned(_) => "Returned",
            });
            assert_eq!(outcome.to_string(), line);
            assert!(!line.contains('\n'), "{line:?} is one line");
            assert_eq!(Keyed::new(outcome.clone(), true).to_string(), format!("{line} (replayed)"));
            assert_eq!(Keyed::new(outcome, false).to_string(), line);
        }
        assert_eq!(named.len(), 16, "a sample of every outcome");
    }

    #[test]
    fn the_parts_of_outcomes_print_too() {
        let q = |units| Quantity::new(units).expect("small");
        assert_eq!(
            Allocation::new(res(3), vec![line(1, 2)], None, 3).to_string(),
            "res:1/3 holds 2: 2 of lot:1 (version 3)"
        );
        assert_eq!(
            Committed::new(res(3), vec![line(1, 2)], Lines::default(), 4).to_string(),
            "res:1/3 committed 2: 2 of lot:1 (version 4)"
        );
        assert_eq!(
            Shortfall::new(res(3), q(10), vec![line(2, 7)], q(3)).to_string(),
            "res:1/3 lost 10: 7 re-sourced (7 of lot:2), 3 shorted"
        );
        assert_eq!(
            Shortfall::new(res(3), q(1), Lines::default(), q(1)).to_string(),
            "res:1/3 lost 1: 0 re-sourced (nothing), 1 shorted"
        );
        assert_eq!(
            Lapsed::new(res(3), Timestamp(60_000), vec![line(1, 5)]).to_string(),
            "res:1/3 lapsed at 60000ms, returning 5: 5 of lot:1"
        );
        assert_eq!(
            Swept::new(SKU, Timestamp(60_000), vec![], vec![LotId(4), LotId(5)], 6).to_string(),
            "sku:1 swept at 60000ms: 0 reservations lapsed, 2 lots expired (version 6)"
        );
        assert_eq!(LowStockSet::new(SKU, None, 7).to_string(), "low stock of sku:1 cleared (version 7)");
        assert_eq!(
            LowStockSet::new(SKU, Some(LowStock::new(3).rearm_margin(2)), 8).to_string(),
            "low stock of sku:1 set to at or below 3 available, re-armed above 5 (version 8)"
        );
        let order = OrderId(7);
        assert_eq!(Pinned::new(res(3), order, None, 5).to_string(), "res:1/3 of order:7 pinned (version 5)");
        assert_eq!(
            Pinned::new(res(3), order, Some(Timestamp(900)), 6).to_string(),
            "res:1/3 of order:7 unpinned, lapses at 900ms (version 6)"
        );
        let mut waiting = Allocation::new(res(3), vec![line(1, 2)], Some(Timestamp(900)), 3);
        (waiting.backordered, waiting.tag) = (q(5), 42);
        assert_eq!(
            waiting.to_string(),
            "res:1/3 holds 2: 2 of lot:1; waits for 5 more; lapses at 900ms; tag 42 (version 3)"
        );
        assert_eq!(ExpiryReport::default().to_string(), "swept 0 SKUs: 0 reservations lapsed, 0 lots expired");
        let many: Lines = (1..=20).map(|lot| line(lot, 1)).collect();
        let sale = Sale::new(SKU, many, 9).to_string();
        assert_eq!(
            sale,
            "sold 20 of sku:1: 1 of lot:1, 1 of lot:2, 1 of lot:3, 1 of lot:4, 1 of lot:5, 1 of lot:6, 1 of lot:7, \
             1 of lot:8, … and 12 more (version 9)"
        );
        let adjusted = LotQuantities { available: q(5), ..LotQuantities::default() };
        assert_eq!(
            Adjusted::new(SKU, LotId(2), 5, AdjustmentReason::Recount, adjusted, vec![], 2).to_string(),
            "lot:2 of sku:1 adjusted by +5 (recount): 5 available, 0 held (version 2)"
        );
    }
}
