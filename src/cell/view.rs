//! Reading one version of a SKU, and drafting the change that follows it.
//!
//! Owns: [`View`] (reads of the SKU's words at the version its head showed,
//! each checked not to be newer), [`Stale`] (a read found a newer word: the
//! view must be taken again), and [`Draft`] (the change being computed:
//! lot counts as the change leaves them, the other effects, the new head
//! fields, the slots it claimed).
//!
//! Must never: let a decision rest on words of two versions. A view is
//! taken after the head's last change is applied, so every word is at its
//! state at the head's version or later; a word found later makes the read
//! [`Stale`], and the change is computed again from a new view.

use super::deadlines::DeadlineIndex;
use super::effect::{Effect, LotInit, Target};
use super::head::Head;
use super::lots::{Counts, LotExt, LotFacts};
use super::slots::{Ext, Fill, Main, NEVER, Slot, Slots, Terms, deadline_of};
use super::structure::Structure;
use super::word::Stamped;
use super::{Extra, SkuCell};
use crate::policy::{AllocationPolicy, Eligibility};
use crate::quantity::Quantity;
use crate::sync::{Arc, Ordering, fence};
use smallvec::SmallVec;
use std::cell::OnceCell;

/// A read found a word written after the view's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stale;

/// The SKU at one version (see the module docs).
pub(crate) struct View<'a> {
    pub(crate) cell: &'a SkuCell,
    pub(crate) head: Head,
    /// The head as loaded: what the change's compare-and-swap expects.
    pub(crate) raw: u128,
    structure: OnceCell<Arc<Structure>>,
}

impl<'a> View<'a> {
    pub(crate) fn new(cell: &'a SkuCell, raw: u128) -> View<'a> {
        View { cell, head: Head::unpack(raw), raw, structure: OnceCell::new() }
    }

    pub(crate) fn version(&self) -> u64 {
        self.head.version
    }

    pub(crate) fn policy(&self) -> AllocationPolicy {
        self.cell.policy
    }

    fn checked(&self, word: Stamped) -> Result<Stamped, Stale> {
        if word.version > self.head.version { Err(Stale) } else { Ok(word) }
    }

    /// Lot `arrival`'s counter word as read (below the head's lot count).
    #[inline]
    pub(crate) fn lot_word(&self, arrival: u32) -> Result<Stamped, Stale> {
        debug_assert!(arrival < self.head.lots);
        self.checked(self.cell.lots.get(arrival).word.load())
    }

    /// Lot `arrival`'s counts (it must be below the head's lot count).
    #[inline]
    pub(crate) fn counts(&self, arrival: u32) -> Result<Counts, Stale> {
        debug_assert!(arrival < self.head.lots);
        let word = self.checked(self.cell.lots.get(arrival).word.load())?;
        Ok(Counts::from_payload(word.payload))
    }

    pub(crate) fn facts(&self, arrival: u32) -> LotFacts {
        self.cell.lots.get(arrival).facts()
    }

    /// Units that left lot `arrival` and came back (zero if none ever did).
    pub(crate) fn came_back(&self, arrival: u32) -> Result<Quantity, Stale> {
        let Some(word) = self.extra().and_then(|extra| extra.lot_back.get(arrival)) else {
            return Ok(Quantity::ZERO);
        };
        Ok(Quantity::new(self.checked(word.load())?.payload as u64).unwrap_or(Quantity::MAX))
    }

    /// Lot `arrival`'s extension word (zero if it never had one).
    pub(crate) fn lot_ext(&self, arrival: u32) -> Result<LotExt, Stale> {
        let Some(word) = self.extra().and_then(|extra| extra.lot_ext.get(arrival)) else {
            return Ok(LotExt::default());
        };
        Ok(LotExt::from_payload(self.checked(word.load())?.payload))
    }

    pub(crate) fn expires_at(&self, arrival: u32) -> Option<crate::clock::Timestamp> {
        self.cell.lots.get(arrival).expires_at()
    }

    /// The policy key of lot `arrival` under `policy`.
    pub(crate) fn key(&self, policy: AllocationPolicy, arrival: u32) -> (bool, u64, u64, u32) {
        let facts = self.facts(arrival);
        policy.sort_key(&crate::policy::LotFacts {
            received_at: facts.received_at,
            expires_at: facts.expires_at,
            arrival,
        })
    }

    /// The structure as of this version.
    pub(crate) fn structure(&self) -> Result<&Arc<Structure>, Stale> {
        let structure = self.structure.get_or_init(|| self.cell.structure.load_full());
        if structure.since > self.head.version { Err(Stale) } else { Ok(structure) }
    }

    pub(crate) fn slots(&self) -> Option<&'a Slots> {
        self.cell.slots.get().map(|slots| &**slots)
    }

    pub(crate) fn extra(&self) -> Option<&'a Extra> {
        self.cell.extra.get().map(|extra| &**extra)
    }

    /// A slot's main word.
    pub(crate) fn main(&self, slot: &Slot) -> Result<(u64, Main), Stale> {
        let word = self.checked(slot.main.load())?;
        Ok((word.version, Main::from_payload(word.payload)))
    }

    /// A live hold's terms, read between two loads of its first slot's
    /// main word: `seen` is the first (as [`main_word`](Self::main_word)
    /// gave it); a change of the word since (the slot ended and was claimed
    /// again) is stale.
    pub(crate) fn terms(&self, slot: &Slot, seen: Stamped) -> Result<Terms, Stale> {
        let terms = slot.terms_raw();
        // Acquire: pairs with the Release fence in `Slot::fill`: if the
        // loads above saw a refill, the reload below sees its claim.
        fence(Ordering::Acquire);
        if slot.main.load() == seen { Ok(terms) } else { Err(Stale) }
    }

    /// A slot's main word, as stamped (stale if written after the view).
    pub(crate) fn main_word(&self, slot: &Slot) -> Result<Stamped, Stale> {
        self.checked(slot.main.load())
    }

    pub(crate) fn ext(&self, slot: &Slot) -> Result<Ext, Stale> {
        Ok(Ext::from_payload(self.checked(slot.ext.load())?.payload))
    }

    /// A slot's deadline.
    pub(crate) fn deadline(&self, slot: &Slot) -> Result<Option<crate::clock::Timestamp>, Stale> {
        Ok(deadline_of(self.checked(slot.deadline.load())?.payload))
    }

    /// The cell's deadline floor: no live hold lapses before it ([`NEVER`]:
    /// none has a deadline).
    pub(crate) fn due(&self) -> Result<u128, Stale> {
        Ok(self.checked(self.cell.due.load())?.payload)
    }

    /// The earliest deadline the index does not know ([`NEVER`]: none).
    pub(crate) fn fresh(&self) -> Result<u128, Stale> {
        match self.extra() {
            Some(extra) => Ok(self.checked(extra.fresh.load())?.payload),
            None => Ok(NEVER),
        }
    }

    /// The deadline index (empty if none was ever built).
    pub(crate) fn index(&self) -> Option<Arc<DeadlineIndex>> {
        self.extra().map(|extra| extra.index.load_full())
    }

    /// Receipts plus growth adjustments so far.
    pub(crate) fn inflow(&self) -> Result<Quantity, Stale> {
        let word = self.checked(self.cell.inflow.load())?;
        Ok(Quantity::new(word.payload as u64).unwrap_or(Quantity::MAX))
    }

    /// `(available, held)` totals, when the cell keeps them.
    pub(crate) fn totals(&self) -> Result<Option<(Quantity, Quantity)>, Stale> {
        match self.extra().filter(|_| self.cell.totals_on) {
            Some(extra) => {
                let counts = Counts::from_payload(self.checked(extra.totals.load())?.payload);
                Ok(Some((counts.available, counts.net)))
            }
            None => Ok(None),
        }
    }
}

/// A slot a change claimed while being computed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claimed {
    pub(crate) index: u32,
    /// The slot's main-word version when claimed.
    pub(crate) version: u64,
}

/// A change being computed from a [`View`] (see the module docs).
pub(crate) struct Draft<'v, 'a> {
    pub(crate) view: &'v View<'a>,
    /// Lots this change writes: `(arrival, counts after)`.
    lots: SmallVec<[(u32, Counts); 4]>,
    effects: SmallVec<[Effect; 8]>,
    pub(crate) lot_inits: Vec<LotInit>,
    pub(crate) structure: Option<Arc<Structure>>,
    pub(crate) index: Option<Arc<DeadlineIndex>>,
    pub(crate) cursor: u32,
    pub(crate) lot_count: u32,
    pub(crate) flags: u8,
    /// Slots claimed by this change's owner (kept across attempts).
    claimed: &'v mut ClaimPool,
    /// How many of the claimed slots this attempt has used.
    used: usize,
    /// What this attempt filled its claimed slots with: `(slot, stamp,
    /// fill)`, for the journal's record of the change.
    fills: SmallVec<[(u32, u64, Fill); 2]>,
    /// Change in (available, held) totals.
    pub(crate) totals: (i64, i64),
    /// Whether this change put units back into a lot (waiting backorders
    /// get them first).
    pub(crate) gave: bool,
    /// Where each target's effect and each lot's counts are, once a change
    /// has more than [`LINEAR_MAX`] of them (a long shrink, a FEFO draw
    /// over many lots): lookups stay O(1), not O(n) each.
    positions: Option<Box<Positions>>,
}

/// Entries a draft searches linearly before it indexes them.
const LINEAR_MAX: usize = 16;

/// A big draft's index (see [`Draft::positions`]).
#[derive(Debug, Default)]
struct Positions {
    effects: std::collections::HashMap<Target, usize>,
    lots: std::collections::HashMap<u32, usize>,
}

/// The slots a change's owner claimed, reused across its attempts and
/// given back unused when it is done.
#[derive(Debug, Default)]
pub(crate) struct ClaimPool {
    pub(crate) slots: SmallVec<[Claimed; 2]>,
}

impl ClaimPool {
    /// A change that is not the call's last (a sweep it published first)
    /// landed with the first `used` slots: they are published, so they
    /// leave the pool; the call's later attempts claim from what is left.
    pub(crate) fn landed(&mut self, used: usize) {
        self.slots.drain(..used);
    }

    /// Gives back every slot not published (those after the first
    /// `published`).
    pub(crate) fn release(&mut self, cell: &SkuCell, owner: u32, published: usize) {
        if let Some(slots) = cell.slots.get() {
            for claimed in self.slots.drain(..).skip(published) {
                slots.unclaim(claimed.index, claimed.version, owner);
            }
        }
        self.slots.clear();
    }
}

impl<'v, 'a> Draft<'v, 'a> {
    pub(crate) fn new(view: &'v View<'a>, claimed: &'v mut ClaimPool) -> Draft<'v, 'a> {
        Draft {
            view,
            lots: SmallVec::new(),
            effects: SmallVec::new(),
            lot_inits: Vec::new(),
            structure: None,
            index: None,
            cursor: view.head.cursor,
            lot_count: view.head.lots,
            flags: view.head.flags,
            claimed,
            used: 0,
            fills: SmallVec::new(),
            totals: (0, 0),
            gave: false,
            positions: None,
        }
    }

    /// Lot `arrival`'s counts as this change has left them so far (a lot
    /// this change receives included).
    pub(crate) fn counts(&self, arrival: u32) -> Result<Counts, Stale> {
        if let Some(at) = self.lot_position(arrival) {
            return Ok(self.lots[at].1);
        }
        match self.lot_inits.iter().find(|init| init.arrival == arrival) {
            Some(init) => Ok(Counts::from_payload(init.payload)),
            None => self.view.counts(arrival),
        }
    }

    pub(crate) fn set_counts(&mut self, arrival: u32, counts: Counts) {
        if let Some(init) = self.lot_inits.iter_mut().find(|init| init.arrival == arrival) {
            // A lot this change receives starts at these counts.
            init.payload = counts.payload();
            return;
        }
        match self.lot_position(arrival) {
            Some(at) => self.lots[at].1 = counts,
            None => {
                self.lots.push((arrival, counts));
                self.index_if_big();
                if let Some(positions) = &mut self.positions {
                    positions.lots.insert(arrival, self.lots.len() - 1);
                }
            }
        }
    }

    fn lot_position(&self, arrival: u32) -> Option<usize> {
        match &self.positions {
            Some(positions) => positions.lots.get(&arrival).copied(),
            None => self.lots.iter().position(|(at, _)| *at == arrival),
        }
    }

    fn effect_position(&self, target: Target) -> Option<usize> {
        match &self.positions {
            Some(positions) => positions.effects.get(&target).copied(),
            None => self.effects.iter().position(|effect| effect.target == target),
        }
    }

    /// Builds the index once the draft outgrows linear search.
    fn index_if_big(&mut self) {
        if self.positions.is_none() && self.lots.len() + self.effects.len() > LINEAR_MAX {
            let mut positions = Box::<Positions>::default();
            positions.lots.extend(self.lots.iter().enumerate().map(|(at, &(arrival, _))| (arrival, at)));
            positions.effects.extend(self.effects.iter().enumerate().map(|(at, effect)| (effect.target, at)));
            self.positions = Some(positions);
        }
    }

    /// Units that left lot `arrival` and came back, as this change leaves
    /// it.
    pub(crate) fn came_back(&self, arrival: u32) -> Result<Quantity, Stale> {
        match self.pending(Target::LotBack(arrival)) {
            Some(payload) => Ok(Quantity::new(payload as u64).unwrap_or(Quantity::MAX)),
            None if self.lot_inits.iter().any(|init| init.arrival == arrival) => Ok(Quantity::ZERO),
            None => self.view.came_back(arrival),
        }
    }

    /// The SKU's inflow as this change leaves it.
    pub(crate) fn inflow(&self) -> Result<Quantity, Stale> {
        match self.pending(Target::Inflow) {
            Some(payload) => Ok(Quantity::new(payload as u64).unwrap_or(Quantity::MAX)),
            None => self.view.inflow(),
        }
    }

    /// Lot `arrival`'s extension word as this change leaves it.
    pub(crate) fn lot_ext(&self, arrival: u32) -> Result<LotExt, Stale> {
        match self.pending(Target::LotExt(arrival)) {
            Some(payload) => Ok(LotExt::from_payload(payload)),
            None if self.lot_inits.iter().any(|init| init.arrival == arrival) => Ok(LotExt::default()),
            None => self.view.lot_ext(arrival),
        }
    }

    pub(crate) fn set_lot_ext(&mut self, arrival: u32, ext: LotExt) {
        self.effect(Target::LotExt(arrival), ext.payload());
    }

    /// Lot `arrival`'s facts (a lot this change receives included).
    pub(crate) fn facts(&self, arrival: u32) -> LotFacts {
        match self.lot_inits.iter().find(|init| init.arrival == arrival) {
            Some(init) => init.facts,
            None => self.view.facts(arrival),
        }
    }

    /// The policy key of lot `arrival` under `policy`.
    pub(crate) fn key(&self, policy: AllocationPolicy, arrival: u32) -> (bool, u64, u64, u32) {
        let facts = self.facts(arrival);
        policy.sort_key(&crate::policy::LotFacts {
            received_at: facts.received_at,
            expires_at: facts.expires_at,
            arrival,
        })
    }

    /// Whether lot `arrival` may serve a draw with `eligibility`.
    pub(crate) fn eligible(&self, arrival: u32, eligibility: Eligibility) -> bool {
        eligibility.admits(self.facts(arrival).expires_at)
    }

    pub(crate) fn effect(&mut self, target: Target, payload: u128) {
        match self.effect_position(target) {
            Some(at) => self.effects[at].payload = payload,
            None => {
                self.effects.push(Effect::new(target, payload));
                self.index_if_big();
                if let Some(positions) = &mut self.positions {
                    positions.effects.insert(target, self.effects.len() - 1);
                }
            }
        }
    }

    /// The structure this change leaves, to modify: a copy of the view's,
    /// made on first use.
    pub(crate) fn structure_mut(&mut self) -> Result<&mut Structure, Stale> {
        if self.structure.is_none() {
            let next = self.view.structure()?.successor(self.view.version() + 1);
            self.structure = Some(Arc::new(next));
        }
        Ok(Arc::make_mut(self.structure.as_mut().expect("set above")))
    }

    /// The structure as this change leaves it so far.
    pub(crate) fn structure_now(&self) -> Result<&Structure, Stale> {
        match &self.structure {
            Some(structure) => Ok(structure),
            None => Ok(self.view.structure()?),
        }
    }

    /// The payload this change writes to `target` so far, if any.
    pub(crate) fn pending(&self, target: Target) -> Option<u128> {
        self.effect_position(target).map(|at| self.effects[at].payload)
    }

    /// A slot for this change: one claimed on an earlier attempt if any is
    /// left, else a newly claimed one; filled with `fill`.
    pub(crate) fn claim(&mut self, owner: u32, fill: Fill) -> u32 {
        let slots = self.view.cell.slots.get_or_init(Default::default);
        if self.used == self.claimed.slots.len() {
            let (index, version) = slots.claim(owner);
            self.claimed.slots.push(Claimed { index, version });
        }
        let claimed = self.claimed.slots[self.used];
        self.used += 1;
        slots.get(claimed.index).expect("claimed slots are installed").fill(claimed.version, fill);
        self.fills.push((claimed.index, claimed.version, fill));
        claimed.index
    }

    /// The slots this attempt filled, in order (see [`Draft::fills`]).
    pub(crate) fn fills(&self) -> &[(u32, u64, Fill)] {
        &self.fills
    }

    /// Slots this attempt used (the first `used` of the pool).
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// Every word effect of the change: lots' words first, then the rest.
    pub(crate) fn word_effects(&self) -> impl Iterator<Item = Effect> + Clone + '_ {
        let lots = self.lots.iter().map(|&(arrival, counts)| Effect::new(Target::Lot(arrival), counts.payload()));
        lots.chain(self.effects.iter().copied())
    }

    /// How many word effects the change has.
    pub(crate) fn word_effect_count(&self) -> usize {
        self.lots.len() + self.effects.len()
    }

    /// Whether the change does more than write words: new lots, a new
    /// structure or deadline index.
    pub(crate) fn is_structural(&self) -> bool {
        !self.lot_inits.is_empty() || self.structure.is_some() || self.index.is_some()
    }

    /// The head the change leaves, with descriptor `desc`.
    pub(crate) fn head(&self, desc: u32) -> Head {
        // A change landing ends any quiet window (see `super::quiet`).
        let flags = self.flags & !super::head::QUIET;
        Head { version: self.view.head.version + 1, desc, cursor: self.cursor, lots: self.lot_count, flags }
    }
}
