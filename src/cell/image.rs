//! One SKU cell as plain data, and back: what a ledger image holds per SKU.
//!
//! Owns: [`SkuImage`] (every word of one settled version as it is stored:
//! version stamps and payloads, the lots' facts, the slots' terms, the
//! structure as sequences), [`SkuCell::image`] (reads it) and
//! [`SkuCell::from_image`] (checks it, then builds a cell from it).
//!
//! Must never: build a cell from an image it has not checked, or change the
//! cell it reads. An image is the cell's own words, so a restored cell is
//! the same SKU to every later change: the same version, the same slots
//! (an id the engine handed out before the image finds its hold after the
//! restore, in one step, because the id carries its slot and the slot its
//! seq), the same deadlines, backorders, threshold and armed state. What
//! the code assumes of those words (a state it knows, a chain of lines
//! that ends, a lot that exists, no stamp past the version) is checked
//! before anything is built; a bad image is refused with [`ImageError`],
//! never a panic later. Whether the counts add up is the audit's to say
//! (the ledger audits what it restored).
//!
//! Two things are rebuilt rather than copied: a slot a thread had claimed
//! for a hold it had not published is free (that hold does not exist at
//! this version), and the deadline index starts empty with every live
//! deadline "fresh" (see [`super::deadlines`]): the first sweep that needs
//! it rebuilds it.

use super::head::{self, Head, LOTS_MAX};
use super::lots::{Counts, LotFacts};
use super::read::LINES_MAX;
use super::slots::{Ext, Main, Marks, NEVER, NO_SLOT, Slot, Slots, Terms};
use super::structure::{BACKORDERS_MAX, Structure, Waiting};
use super::tree::Tree;
use super::view::{Stale, View};
use super::word::{PAYLOAD_MAX, Stamped, VERSION_MAX};
use super::{ATTEMPTS_MAX, Extra, SkuCell};
use crate::clock::Timestamp;
use crate::ids::{LOCATION_MAX, LocationId, LotId, SkuId};
use crate::lot::LotAttributes;
use crate::low_stock::LowStock;
use crate::policy::AllocationPolicy;
use crate::quantity::Quantity;
use crate::sync::{Arc, AtomicU64, AtomicU128, Backoff};

/// A versioned word as stored: its version, and its payload's low 64 and
/// high bits (kept as two numbers so every encoding carries them, JSON
/// included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct WordImage(u64, u64, u64);

impl WordImage {
    pub(super) fn new(version: u64, payload: u128) -> WordImage {
        WordImage(version, payload as u64, (payload >> 64) as u64)
    }

    fn version(self) -> u64 {
        self.0
    }

    /// The payload; high bits past a payload's width make it one no word
    /// holds (the check refuses it).
    fn payload(self) -> u128 {
        u128::from(self.2) << 64 | u128::from(self.1)
    }
}

impl From<Stamped> for WordImage {
    fn from(word: Stamped) -> WordImage {
        WordImage::new(word.version, word.payload)
    }
}

/// One SKU at one version (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct SkuImage {
    pub(crate) sku: SkuId,
    pub(super) policy: AllocationPolicy,
    pub(super) version: u64,
    pub(super) cursor: u32,
    pub(super) flags: u8,
    pub(super) due: WordImage,
    pub(super) inflow: WordImage,
    pub(super) lots: Vec<LotImage>,
    pub(super) slots: Vec<SlotImage>,
    pub(super) structure: StructureImage,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(super) struct LotImage {
    pub(super) id: LotId,
    pub(super) received_at: Timestamp,
    pub(super) expires_at: Option<Timestamp>,
    pub(super) received: Quantity,
    pub(super) location: Option<LocationId>,
    pub(super) attributes: Option<LotAttributes>,
    pub(super) word: WordImage,
    /// Written off and returned ([`LotExt`]), if the lot ever had either.
    pub(super) ext: Option<WordImage>,
    /// Units that came back, if any ever did.
    pub(super) back: Option<WordImage>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(super) struct SlotImage {
    pub(super) main: WordImage,
    pub(super) deadline: WordImage,
    pub(super) ext: WordImage,
    /// The hold's terms (first slots only; zero otherwise).
    pub(super) granted: Quantity,
    pub(super) latest: u64,
    pub(super) tag: u64,
    pub(super) order: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct StructureImage {
    pub(super) since: u64,
    /// Arrival indices in policy order (`None`: arrival order itself, for
    /// however many lots the SKU has).
    pub(super) order: Option<Vec<u32>>,
    /// Arrival indices by lot id.
    pub(super) by_id: Option<Vec<u32>>,
    pub(super) low_stock: Option<LowStock>,
    pub(super) lots_checked_until: Option<Timestamp>,
    /// `(seq, slot, outstanding, min_shelf_life)`, by seq.
    pub(super) backorders: Vec<(u64, u32, Quantity, u64)>,
}

impl SkuImage {
    /// The version imaged.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// A SKU just defined: version 0, nothing in it.
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn empty(sku: SkuId, policy: AllocationPolicy) -> SkuImage {
        let word = WordImage::new(0, 0);
        SkuImage {
            sku,
            policy,
            version: 0,
            cursor: 0,
            flags: 0,
            due: WordImage::new(0, NEVER),
            inflow: word,
            lots: Vec::new(),
            slots: Vec::new(),
            structure: StructureImage::of(&Structure::default(), 0),
        }
    }
}

/// A tree's entries, `None` for the identity.
fn sequence(tree: &Tree, lots: u32) -> Option<Vec<u32>> {
    match tree {
        Tree::Identity => None,
        Tree::Nodes(_) => Some(tree.iter_from(lots, 0).collect()),
    }
}

impl StructureImage {
    /// `structure` read at a lot count of `lots`.
    pub(super) fn of(structure: &Structure, lots: u32) -> StructureImage {
        StructureImage {
            since: structure.since,
            order: sequence(&structure.order, lots),
            by_id: sequence(&structure.by_id, lots),
            low_stock: structure.low_stock,
            lots_checked_until: structure.lots_checked_until,
            backorders: structure
                .backorders
                .iter()
                .map(|waiting| (waiting.seq, waiting.slot, waiting.outstanding, waiting.min_shelf_life))
                .collect(),
        }
    }
}

/// Why an image could not be read or built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ImageError {
    /// Writers kept moving the SKU for [`ATTEMPTS_MAX`] reads.
    Contended,
    /// The image contradicts what a cell can be: what is wrong.
    Invalid(&'static str),
}

impl SkuCell {
    /// The SKU at its current version as an image; a version that moves
    /// while it is read is read again (bounded by [`ATTEMPTS_MAX`]).
    pub(crate) fn image(&self, registry: &super::desc::Registry) -> Result<SkuImage, ImageError> {
        let backoff = Backoff::new();
        for _ in 0..ATTEMPTS_MAX {
            let view = self.settle(registry);
            match image_at(&view) {
                Ok(image) => return Ok(image),
                Err(Stale) => backoff.snooze(),
            }
        }
        Err(ImageError::Contended)
    }

    /// A cell that reads exactly as the imaged one did, private to the
    /// caller until it publishes it; `totals_on` as for [`SkuCell::new`].
    pub(crate) fn from_image(image: &SkuImage, totals_on: bool) -> Result<SkuCell, ImageError> {
        check(image).map_err(ImageError::Invalid)?;
        let mut cell = SkuCell::new(image.sku, image.policy, totals_on);
        let lots = image.lots.len() as u32;
        let head = Head { version: image.version, desc: 0, cursor: image.cursor, lots, flags: image.flags };
        cell.head = AtomicU128::new(head.pack());
        cell.applied = AtomicU64::new(image.version);
        cell.due.store_private(image.due.version(), image.due.payload());
        cell.inflow.store_private(image.inflow.version(), image.inflow.payload());
        for (arrival, lot) in (0..).zip(&image.lots) {
            let stored = cell.lots.ensure(arrival);
            stored.set_facts(&LotFacts {
                id: lot.id,
                received_at: lot.received_at,
                expires_at: lot.expires_at,
                received: lot.received,
                has_attributes: lot.attributes.is_some(),
                location: lot.location,
            });
            stored.word.store_private(lot.word.version(), lot.word.payload());
            if let Some(attributes) = &lot.attributes {
                let _ = cell.extra().attributes.ensure(arrival).set(Arc::new(attributes.clone()));
            }
            if let Some(word) = lot.ext {
                cell.extra().lot_ext.ensure(arrival).store_private(word.version(), word.payload());
            }
            if let Some(word) = lot.back {
                cell.extra().lot_back.ensure(arrival).store_private(word.version(), word.payload());
            }
        }
        let mut fresh = NEVER;
        if !image.slots.is_empty() {
            let slots = Slots::restored(image.slots.len() as u32);
            for (index, slot) in (0..).zip(&image.slots) {
                let stored = slots.get(index).expect("a restored table installs every slot");
                stored.restore(slot.main.into(), slot.deadline.into(), slot.ext.into(), terms(slot));
                if Main::from_payload(slot.main.payload()).is_first() && slot.deadline.payload() < NEVER {
                    fresh = fresh.min(slot.deadline.payload());
                }
            }
            let _ = cell.slots.set(Box::new(slots));
        }
        if fresh < NEVER {
            // Every live deadline is fresh: the index starts empty.
            cell.extra().fresh.store_private(image.version, fresh);
        }
        if totals_on {
            let (available, held) = totals(image);
            let payload = Counts { available, net: held }.payload();
            cell.extra().totals.store_private(image.version, payload);
        }
        let structure = &image.structure;
        let tree = |entries: &Option<Vec<u32>>| match entries {
            Some(entries) => Tree::from_sorted(entries.clone()),
            None => Tree::Identity,
        };
        let backorders = structure.backorders.iter().map(|&(seq, slot, outstanding, min_shelf_life)| Waiting {
            seq,
            slot,
            outstanding,
            min_shelf_life,
        });
        cell.structure.store(Arc::new(Structure {
            since: structure.since,
            order: tree(&structure.order),
            by_id: tree(&structure.by_id),
            low_stock: structure.low_stock,
            lots_checked_until: structure.lots_checked_until,
            backorders: Arc::new(backorders.collect()),
        }));
        Ok(cell)
    }
}

impl From<WordImage> for Stamped {
    fn from(word: WordImage) -> Stamped {
        Stamped { version: word.version(), payload: word.payload() }
    }
}

fn terms(slot: &SlotImage) -> Terms {
    Terms { granted: slot.granted, latest: slot.latest, marks: Marks { tag: slot.tag, order: slot.order } }
}

/// `(available, held)` over every lot: what the totals word keeps.
fn totals(image: &SkuImage) -> (Quantity, Quantity) {
    let available =
        image.lots.iter().fold(Quantity::ZERO, |sum, lot| sum.plus(Counts::from_payload(lot.word.payload()).available));
    let held = image.slots.iter().fold(Quantity::ZERO, |sum, slot| {
        let ext = Ext::from_payload(slot.ext.payload());
        match Main::from_payload(slot.main.payload()) {
            Main::Live { quantity, .. } | Main::Line { quantity, .. } => sum.plus(quantity.minus(ext.taken)),
            _ => sum,
        }
    });
    (available, held)
}

/// Reads every word of `view`'s version.
fn image_at(view: &View) -> Result<SkuImage, Stale> {
    let cell = view.cell;
    let lots = view.head.lots;
    let extra = view.extra();
    let checked = |word: Stamped| if word.version > view.version() { Err(Stale) } else { Ok(WordImage::from(word)) };
    let mut lot_images = Vec::with_capacity(lots as usize);
    for arrival in 0..lots {
        let facts = view.facts(arrival);
        let optional = |words: Option<&super::chunks::Chunks<super::word::VWord>>| {
            words.and_then(|words| words.get(arrival)).map(|word| checked(word.load())).transpose()
        };
        let attributes = extra
            .and_then(|extra| extra.attributes.get(arrival))
            .and_then(|attributes| attributes.get())
            .map(|attributes| LotAttributes::clone(attributes));
        lot_images.push(LotImage {
            id: facts.id,
            received_at: facts.received_at,
            expires_at: facts.expires_at,
            received: facts.received,
            location: facts.location,
            attributes,
            word: view.lot_word(arrival)?.into(),
            ext: optional(extra.map(|extra: &Extra| &extra.lot_ext))?,
            back: optional(extra.map(|extra: &Extra| &extra.lot_back))?,
        });
    }
    let mut slot_images = Vec::new();
    if let Some(slots) = view.slots() {
        for index in 0..slots.len() {
            slot_images.push(match slots.get(index) {
                Some(slot) => slot_image(view, slot)?,
                // Handed out, not installed yet: its claimer's, never live.
                None => SlotImage::free(0),
            });
        }
    }
    let structure = view.structure()?;
    Ok(SkuImage {
        sku: cell.sku,
        policy: cell.policy,
        version: view.version(),
        cursor: view.head.cursor,
        flags: view.head.flags & !head::QUIET,
        due: checked(cell.due.load())?,
        inflow: checked(cell.inflow.load())?,
        lots: lot_images,
        slots: slot_images,
        structure: StructureImage::of(structure, lots),
    })
}

impl SlotImage {
    pub(super) fn free(version: u64) -> SlotImage {
        let ext = Ext { next: NO_SLOT, taken: Quantity::ZERO, removed: false };
        SlotImage {
            main: WordImage::new(version, Main::Free.payload()),
            deadline: WordImage::new(version, NEVER),
            ext: WordImage::new(version, ext.payload()),
            granted: Quantity::ZERO,
            latest: 0,
            tag: 0,
            order: 0,
        }
    }
}

fn slot_image(view: &View, slot: &Slot) -> Result<SlotImage, Stale> {
    let main = view.main_word(slot)?;
    match Main::from_payload(main.payload) {
        // Claimed for a hold not published at this version: free in it.
        Main::Reserved { .. } | Main::Free => return Ok(SlotImage::free(main.version)),
        Main::Live { .. } | Main::Line { .. } | Main::Head { .. } => {}
    }
    let first = Main::from_payload(main.payload).is_first();
    let terms = if first { view.terms(slot, main)? } else { Terms::default() };
    let checked = |word: Stamped| if word.version > view.version() { Err(Stale) } else { Ok(WordImage::from(word)) };
    Ok(SlotImage {
        main: main.into(),
        deadline: checked(slot.deadline.load())?,
        ext: checked(slot.ext.load())?,
        granted: terms.granted,
        latest: terms.latest,
        tag: terms.marks.tag,
        order: terms.marks.order,
    })
}

/// Everything the cell's code assumes of its words (see the module docs).
fn check(image: &SkuImage) -> Result<(), &'static str> {
    let version = image.version;
    if version > VERSION_MAX {
        return Err("version past 2^48");
    }
    let word = |word: &WordImage| word.version() <= version && word.payload() <= PAYLOAD_MAX;
    let lots = image.lots.len();
    if lots > LOTS_MAX as usize {
        return Err("more lots than a SKU keeps");
    }
    if (image.cursor as usize) > lots.saturating_sub(1) {
        return Err("cursor past the last lot");
    }
    if image.flags & head::QUIET != 0 {
        return Err("a quiet flag");
    }
    if !word(&image.due) || !word(&image.inflow) {
        return Err("a SKU word stamped past the version");
    }
    for lot in &image.lots {
        let extra_ok = lot.ext.iter().chain(&lot.back).all(word);
        if !word(&lot.word) || !extra_ok {
            return Err("a lot word stamped past the version");
        }
        if lot.location.is_some_and(|location| location.0 > LOCATION_MAX) {
            return Err("a lot location past the largest");
        }
        let too_long = lot.attributes.as_ref().and_then(|attributes| attributes.supplier.as_ref());
        if too_long.is_some_and(|supplier| supplier.len() > LotAttributes::SUPPLIER_LEN_MAX) {
            return Err("a lot attribute too long");
        }
    }
    check_slots(image)?;
    check_structure(image)
}

fn check_slots(image: &SkuImage) -> Result<(), &'static str> {
    let slots = &image.slots;
    if slots.len() > super::chunks::INDEX_MAX as usize {
        return Err("more slots than a SKU keeps");
    }
    let lots = image.lots.len() as u32;
    let word = |word: &WordImage| word.version() <= image.version && word.payload() <= PAYLOAD_MAX;
    let mut reached = vec![false; slots.len()];
    // Units held per lot, and in all: each within a quantity (the reads
    // add them up with the engine's in-range arithmetic).
    let mut held_per_lot = vec![0u128; lots as usize];
    let mut held_total = 0u128;
    // A line's units now: its units less what shrinks took, never below 0.
    let line_units = |slot: &SlotImage| -> Result<u128, &'static str> {
        let taken = Ext::from_payload(slot.ext.payload()).taken;
        match Main::decode(slot.main.payload()) {
            Some(Main::Live { lot, quantity, .. } | Main::Line { lot, quantity }) => {
                let units = quantity.checked_sub(taken).ok_or("a line that lost more units than it held")?;
                Ok(u128::from(units.get()) | u128::from(lot) << 64)
            }
            _ => Ok(0),
        }
    };
    for slot in slots {
        if !word(&slot.main) || !word(&slot.deadline) || !word(&slot.ext) {
            return Err("a slot word stamped past the version");
        }
        let main = Main::decode(slot.main.payload()).ok_or("a slot in a state no cell writes")?;
        if let Main::Live { lot, .. } | Main::Line { lot, .. } = main {
            if lot < lots {
                let units = line_units(slot)? & u128::from(u64::MAX);
                held_per_lot[lot as usize] += units;
                held_total += units;
            }
        }
        let first = match main {
            Main::Free => continue,
            Main::Reserved { .. } => return Err("a reserved slot"),
            Main::Live { lot, .. } | Main::Line { lot, .. } if lot >= lots => return Err("a line on no lot"),
            Main::Live { .. } | Main::Head { .. } => true,
            Main::Line { .. } => false,
        };
        if !first {
            continue;
        }
        if slot.main.version() == 0 {
            return Err("a hold made at version 0");
        }
        let mut next = Ext::from_payload(slot.ext.payload()).next;
        let mut lines = usize::from(matches!(main, Main::Live { .. }));
        let mut held = line_units(slot)? & u128::from(u64::MAX);
        while next != NO_SLOT {
            let line = slots.get(next as usize).ok_or("a line chain names no slot")?;
            if !matches!(Main::decode(line.main.payload()), Some(Main::Line { .. })) || reached[next as usize] {
                return Err("a line chain that is not a chain of lines");
            }
            reached[next as usize] = true;
            held += line_units(line)? & u128::from(u64::MAX);
            lines += 1;
            if lines > LINES_MAX {
                return Err("a line chain that does not end");
            }
            next = Ext::from_payload(line.ext.payload()).next;
        }
        let seq = slot.main.version();
        let waiting = image.structure.backorders.iter().find(|waiting| waiting.0 == seq);
        let outstanding = waiting.map_or(0, |waiting| u128::from(waiting.2.get()));
        if held + outstanding > u128::from(slot.granted.get()) {
            return Err("a hold with more units than it was granted");
        }
    }
    let max = u128::from(Quantity::MAX.get());
    if held_total > max || held_per_lot.iter().any(|&held| held > max) {
        return Err("more units held than a quantity holds");
    }
    let available: u128 =
        image.lots.iter().map(|lot| u128::from(Counts::from_payload(lot.word.payload()).available.get())).sum();
    if available > max {
        return Err("more units available than a quantity holds");
    }
    let orphan = slots
        .iter()
        .zip(&reached)
        .any(|(slot, &reached)| matches!(Main::decode(slot.main.payload()), Some(Main::Line { .. })) && !reached);
    if orphan {
        return Err("a line no hold reaches");
    }
    Ok(())
}

fn check_structure(image: &SkuImage) -> Result<(), &'static str> {
    let structure = &image.structure;
    let lots = image.lots.len();
    if structure.since > image.version {
        return Err("a structure installed past the version");
    }
    let identity: Vec<u32> = (0..lots as u32).collect();
    let (order, by_id) =
        (structure.order.as_deref().unwrap_or(&identity), structure.by_id.as_deref().unwrap_or(&identity));
    let permutation = |entries: &[u32]| {
        let mut seen = vec![false; lots];
        entries.len() == lots
            && entries.iter().all(|&entry| {
                let fresh = seen.get(entry as usize).is_some_and(|seen| !seen);
                if fresh {
                    seen[entry as usize] = true;
                }
                fresh
            })
    };
    if !permutation(order) || !permutation(by_id) {
        return Err("a lot order that is not an order of the lots");
    }
    let key = |arrival: u32| {
        let lot = &image.lots[arrival as usize];
        image.policy.sort_key(&crate::policy::LotFacts {
            received_at: lot.received_at,
            expires_at: lot.expires_at,
            arrival,
        })
    };
    if !order.windows(2).all(|pair| key(pair[0]) < key(pair[1])) {
        return Err("lots out of policy order");
    }
    let id = |arrival: u32| image.lots[arrival as usize].id;
    if !by_id.windows(2).all(|pair| id(pair[0]) < id(pair[1])) {
        return Err("lots out of id order, or two lots with one id");
    }
    if structure.low_stock.is_some_and(|rule| rule.threshold > Quantity::MAX.get() || rule.margin > Quantity::MAX.get())
    {
        return Err("a low-stock rule past the largest quantity");
    }
    let backorders = &structure.backorders;
    if backorders.len() > BACKORDERS_MAX || !backorders.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return Err("backorders out of order, or too many");
    }
    let waiting_head = |&(seq, slot, outstanding, _): &(u64, u32, Quantity, u64)| {
        let head = image.slots.get(slot as usize);
        !outstanding.is_zero()
            && head.is_some_and(|head| {
                head.main.version() == seq && matches!(Main::decode(head.main.payload()), Some(Main::Head { .. }))
            })
    };
    if !backorders.iter().all(waiting_head) {
        return Err("a backorder with no head slot, or waiting for nothing");
    }
    Ok(())
}
