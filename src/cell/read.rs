//! Reading a SKU at one version: its holds, a reservation by id, the whole
//! SKU as plain data for a snapshot or the audit.
//!
//! Owns: [`HoldData`] and [`HoldLine`] (a live reservation as read),
//! [`LotData`] and [`SkuData`] (a materialized version), and the reads that
//! produce them ([`hold_at`], [`find`], [`materialize`]).
//!
//! Must never: write. Every read goes through a [`View`], so what it
//! returns is the SKU at the view's version or a [`Stale`] to start over
//! from a newer one.

use super::lots::{Counts, LotExt, LotFacts};
use super::slots::{Main, Marks, NO_SLOT};
use super::view::{Stale, View};
use crate::clock::Timestamp;
use crate::ids::{ReservationId, SkuId};
use crate::lot::{LotAttributes, LotQuantities};
use crate::policy::AllocationPolicy;
use crate::quantity::Quantity;
use crate::sync::Arc;
use smallvec::SmallVec;

/// Lines a hold may have at most: bounds the chain walk (a hold's lines
/// are at most one per lot, and a SKU has at most `LOTS_MAX` lots).
pub(crate) const LINES_MAX: usize = super::head::LOTS_MAX as usize;

/// One line of a live hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HoldLine {
    /// The slot that holds the line.
    pub(crate) slot: u32,
    /// The lot's arrival index.
    pub(crate) lot: u32,
    /// Units held now (the line's units less what shrinks took).
    pub(crate) quantity: Quantity,
    /// Its lot's line in the hold reached zero since (see
    /// [`Ext`](super::slots::Ext)): it keeps no place.
    pub(crate) removed: bool,
}

/// A live reservation as read at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HoldData {
    pub(crate) seq: u64,
    /// Its first line's slot.
    pub(crate) slot: u32,
    pub(crate) lines: SmallVec<[HoldLine; 2]>,
    pub(crate) granted: Quantity,
    pub(crate) deadline: Option<Timestamp>,
    /// The latest the deadline may be extended to (ms).
    pub(crate) latest: u64,
    pub(crate) marks: Marks,
    /// Units a backorder still waits for (zero for every other hold).
    pub(crate) outstanding: Quantity,
}

impl HoldData {
    /// Units held now.
    pub(crate) fn held(&self) -> Quantity {
        self.lines.iter().fold(Quantity::ZERO, |sum, line| sum.plus(line.quantity))
    }

    /// The reservation's id.
    pub(crate) fn id(&self, sku: SkuId) -> ReservationId {
        ReservationId::located(sku, self.seq, self.slot)
    }
}

/// The reservation whose first line is slot `index`, if one is live there
/// at the view's version.
pub(crate) fn hold_at(view: &View, index: u32) -> Result<Option<HoldData>, Stale> {
    let Some(slots) = view.slots() else { return Ok(None) };
    if index >= slots.len() {
        return Ok(None);
    }
    // A slot whose chunk its claimer is still installing cannot be live.
    let Some(slot) = slots.get(index) else { return Ok(None) };
    let word = view.main_word(slot)?;
    let main = Main::from_payload(word.payload);
    if !main.is_first() {
        return Ok(None);
    }
    let deadline = view.deadline(slot)?;
    let terms = view.terms(slot, word)?;
    let mut hold = HoldData {
        seq: word.version,
        slot: index,
        lines: SmallVec::new(),
        granted: terms.granted,
        deadline,
        latest: terms.latest,
        marks: terms.marks,
        outstanding: Quantity::ZERO,
    };
    if let Main::Head { .. } = main {
        if let Some(waiting) = view.structure()?.waiting(word.version) {
            hold.outstanding = waiting.outstanding;
        }
    }
    let ext = view.ext(slot)?;
    if let Main::Live { lot, quantity, .. } = main {
        hold.lines.push(HoldLine { slot: index, lot, quantity: quantity.minus(ext.taken), removed: ext.removed });
    }
    let mut next = ext.next;
    while next != NO_SLOT {
        assert!(hold.lines.len() < LINES_MAX, "a hold's line chain does not end");
        let slot = slots.get(next).expect("a chain names installed slots");
        let (_, main) = view.main(slot)?;
        let Main::Line { lot, quantity } = main else {
            unreachable!("a live hold's chain holds its lines (slot {next}: {main:?})")
        };
        let ext = view.ext(slot)?;
        hold.lines.push(HoldLine { slot: next, lot, quantity: quantity.minus(ext.taken), removed: ext.removed });
        next = ext.next;
    }
    Ok(Some(hold))
}

/// Why an id names no live reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The SKU never issued it (seq 0, or past the SKU's version).
    Unknown,
    /// It was issued (or its seq is a version the SKU went through) and is
    /// not live.
    Ended,
}

/// The live reservation `id` names. An id the engine issued carries its
/// slot: one step, whether the hold is live or ended (a hold never moves
/// slots, and an id names one use of one slot, so a slot that holds
/// another `seq` means this one ended). Only an id built by hand
/// ([`ReservationId::new`]: no slot) is found by a scan of every slot,
/// O(the SKU's slots).
pub(crate) fn find(view: &View, id: ReservationId) -> Result<Result<HoldData, Lookup>, Stale> {
    if id.seq == 0 || id.seq > view.version() {
        return Ok(Err(Lookup::Unknown));
    }
    if let Some(hold) = hold_at(view, id.slot())? {
        if hold.seq == id.seq {
            return Ok(Ok(hold));
        }
    }
    if id.slot() != ReservationId::SLOT_UNKNOWN {
        return Ok(Err(Lookup::Ended));
    }
    let Some(slots) = view.slots() else { return Ok(Err(Lookup::Ended)) };
    for index in 0..slots.len() {
        // A slot whose chunk its claimer is still installing cannot be live.
        let Some(slot) = slots.get(index) else { continue };
        let (version, main) = view.main(slot)?;
        if version == id.seq && main.is_first() {
            return Ok(hold_at(view, index)?.ok_or(Lookup::Ended));
        }
    }
    Ok(Err(Lookup::Ended))
}

/// Every live reservation, in slot order.
pub(crate) fn holds(view: &View) -> Result<Vec<HoldData>, Stale> {
    let Some(slots) = view.slots() else { return Ok(Vec::new()) };
    let mut holds = Vec::new();
    for index in 0..slots.len() {
        if let Some(hold) = hold_at(view, index)? {
            holds.push(hold);
        }
    }
    Ok(holds)
}

/// One lot as read.
#[derive(Clone, Debug)]
pub(crate) struct LotData {
    pub(crate) arrival: u32,
    pub(crate) facts: LotFacts,
    pub(crate) counts: Counts,
    /// Units held by live reservations.
    pub(crate) held: Quantity,
    pub(crate) attributes: Option<Arc<LotAttributes>>,
    /// Units written off and returned.
    pub(crate) ext: LotExt,
}

impl LotData {
    /// The lot's counters as the public API shows them at instant `at`
    /// (`None`: no instant, nothing counted as expired). `committed` is
    /// what left: `net - available - held`, never negative in a sound
    /// state; `adjusted` is what `net` has beyond the receipt, the returns
    /// and the write-offs (each at most `Quantity::MAX` < 2^62: it fits).
    pub(crate) fn quantities(&self, at: Option<Timestamp>) -> LotQuantities {
        let expired = at.is_some_and(|at| self.facts.expires_at.is_some_and(|expiry| expiry <= at));
        let (available, expired) =
            if expired { (Quantity::ZERO, self.counts.available) } else { (self.counts.available, Quantity::ZERO) };
        let ext = self.ext;
        LotQuantities {
            received: self.facts.received,
            adjusted: self.counts.net.get() as i64 + ext.written_off.get() as i64
                - ext.returned.get() as i64
                - self.facts.received.get() as i64,
            available,
            expired,
            held: self.held,
            committed: Quantity::new(u64::try_from(self.committed().max(0)).unwrap_or(0)).unwrap_or(Quantity::MAX),
            written_off: ext.written_off,
            returned: ext.returned,
        }
    }

    /// Units that left the building: `net - available - held` (negative
    /// only if the state is broken, which the audit reports).
    pub(crate) fn committed(&self) -> i128 {
        i128::from(self.counts.net.get()) - i128::from(self.counts.available.get()) - i128::from(self.held.get())
    }
}

/// A whole SKU at one version, as plain data.
#[derive(Clone, Debug)]
pub(crate) struct SkuData {
    pub(crate) sku: SkuId,
    pub(crate) version: u64,
    pub(crate) policy: AllocationPolicy,
    /// Lots in policy order.
    pub(crate) lots: Vec<LotData>,
    /// Live reservations, by seq.
    pub(crate) holds: Vec<HoldData>,
    pub(crate) cursor: u32,
    /// Receipts plus growth adjustments.
    pub(crate) inflow: Quantity,
    /// The instant the reader read it at, if it asked (lots past their
    /// expiry at it count as expired, not available).
    pub(crate) at: Option<Timestamp>,
}

impl SkuData {
    /// The lot with arrival index `arrival`.
    pub(crate) fn lot(&self, arrival: u32) -> Option<&LotData> {
        self.lots.iter().find(|lot| lot.arrival == arrival)
    }
}

impl super::SkuCell {
    /// The SKU at its current version, swept of nothing (the audit's
    /// read); `None` after [`super::ATTEMPTS_MAX`] rounds of writers.
    pub(crate) fn read_settled(&self, registry: &super::desc::Registry) -> Option<SkuData> {
        let backoff = crate::sync::Backoff::new();
        for _ in 0..super::ATTEMPTS_MAX {
            match materialize(&self.settle(registry)) {
                Ok(data) => return Some(data),
                Err(Stale) => backoff.snooze(),
            }
        }
        None
    }
}

/// The SKU at the view's version, whole.
pub(crate) fn materialize(view: &View) -> Result<SkuData, Stale> {
    let structure = view.structure()?;
    let count = view.head.lots;
    let mut holds = holds(view)?;
    holds.sort_unstable_by_key(|hold| hold.seq);
    let mut held = vec![Quantity::ZERO; count as usize];
    for line in holds.iter().flat_map(|hold| hold.lines.iter()) {
        let slot = held.get_mut(line.lot as usize).expect("a hold's lot exists");
        *slot = slot.plus(line.quantity);
    }
    let attributes = view.extra().map(|extra| &extra.attributes);
    let mut lots = Vec::with_capacity(count as usize);
    for arrival in structure.order.iter_from(count, 0) {
        let facts = view.facts(arrival);
        let attributes = match (facts.has_attributes, attributes) {
            (true, Some(table)) => table.get(arrival).and_then(|cell| cell.get()).cloned(),
            _ => None,
        };
        let (counts, ext) = (view.counts(arrival)?, view.lot_ext(arrival)?);
        lots.push(LotData { arrival, facts, counts, held: held[arrival as usize], attributes, ext });
    }
    Ok(SkuData {
        sku: view.cell.sku,
        version: view.version(),
        policy: view.policy(),
        lots,
        holds,
        cursor: view.head.cursor,
        inflow: view.inflow()?,
        at: None,
    })
}
