//! A landed change as the journal records it, and how recovery applies one
//! to a SKU's image: physical redo, word by word.
//!
//! Owns: [`Change`] (every word a change wrote at its version, the lots it
//! added, the structure it installed, the slots it filled before publishing
//! them, the head it left; its lists borrowed from the cell when it is
//! recorded, owned when it is read back: [`ChangeRecord`]), [`ChangeSink`]
//! (where the cell hands records in each SKU's version order) and
//! [`SkuImage::apply`].
//!
//! Must never: re-run a command. A record is what the change *did*, not
//! what it was asked: applying it needs no clock, no policy and no other
//! SKU, so recovery reaches exactly the state the change published, with
//! the same versions, slots and deadlines, whatever the instant of the
//! recovery. Two words are not recorded because recovery rebuilds them:
//! the deadline index and its `fresh` floor, and the totals word (see the
//! `image` module).
//!
//! Order: the cell hands a SKU's records to the sink in version order
//! (see [`super::SkuCell::journal_in_order`]), so a journal that keeps a
//! prefix of its appends keeps, per SKU, a prefix of the versions.

// Recovery (applying records) is built only with the journal.
#![cfg_attr(not(feature = "journal"), allow(dead_code))]

use super::effect::{Effect, LotInit, Target};
use super::head::{self, Head};
use super::image::{SkuImage, StructureImage, WordImage};
use super::slots::{Ext, Fill};
use super::structure::Structure;
use crate::clock::Timestamp;
use crate::ids::{LocationId, LotId, SkuId};
use crate::lot::LotAttributes;
use crate::quantity::Quantity;
use std::borrow::Cow;

#[cfg(feature = "serde")]
mod codec;

/// Where a cell hands the record of each change it lands (see the module
/// docs).
pub(crate) trait ChangeSink: Sync {
    /// Takes the record of one landed change; called once per version, in
    /// each SKU's version order.
    fn append(&self, record: &Change<'_>);
}

/// A change as read back from the journal: its lists owned.
pub(crate) type ChangeRecord = Change<'static>;

/// One landed change of one SKU (see the module docs); its bytes in the
/// journal are laid out by the `codec` module. The effects and fills are
/// borrowed when the cell records a change (a fast path's record allocates
/// nothing), owned when a record is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change<'a> {
    pub(crate) sku: SkuId,
    pub(crate) version: u64,
    /// The instant the change used, if it read one (recovery's clock floor
    /// starts past every one).
    pub(crate) instant: Option<Timestamp>,
    cursor: u32,
    lots: u32,
    flags: u8,
    /// Word effects, in the order the change wrote them.
    effects: Cow<'a, [Effect]>,
    lot_inits: Vec<LotInitRecord>,
    structure: Option<StructureImage>,
    fills: Cow<'a, [FillRecord]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct LotInitRecord {
    arrival: u32,
    id: LotId,
    received_at: Timestamp,
    expires_at: Option<Timestamp>,
    received: Quantity,
    location: Option<LocationId>,
    attributes: Option<LotAttributes>,
    word: [u64; 2],
}

/// A slot the change filled privately before publishing its hold: the
/// slot, the version its words were stamped with (the main word's when
/// claimed), the deadline payload, the next line and the terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FillRecord {
    index: u32,
    version: u64,
    deadline: u128,
    next: u32,
    granted: Quantity,
    latest: u64,
    tag: u64,
    order: u64,
}

impl FillRecord {
    /// The record of slot `index` filled at `version` with `fill`.
    pub(crate) fn of(&(index, version, fill): &(u32, u64, Fill)) -> FillRecord {
        FillRecord {
            index,
            version,
            deadline: fill.deadline,
            next: fill.next,
            granted: fill.terms.granted,
            latest: fill.terms.latest,
            tag: fill.terms.marks.tag,
            order: fill.terms.marks.order,
        }
    }
}

fn split(payload: u128) -> [u64; 2] {
    [payload as u64, (payload >> 64) as u64]
}

fn join(words: [u64; 2]) -> u128 {
    u128::from(words[1]) << 64 | u128::from(words[0])
}

impl<'a> Change<'a> {
    /// The record of the change that left `head` on `sku`, borrowing its
    /// `effects` and `fills`: what every path without lot inits or a
    /// structure records (the fast paths, and the general path's small
    /// changes).
    pub(crate) fn borrowed(
        sku: SkuId,
        instant: Option<Timestamp>,
        head: Head,
        effects: &'a [Effect],
        fills: &'a [FillRecord],
    ) -> Change<'a> {
        Change {
            sku,
            version: head.version,
            instant,
            cursor: head.cursor,
            lots: head.lots,
            flags: head.flags & !head::QUIET,
            effects: Cow::Borrowed(effects),
            lot_inits: Vec::new(),
            structure: None,
            fills: Cow::Borrowed(fills),
        }
    }

    /// The record of the change that left `head` on `sku`, borrowing its
    /// `effects`, with everything else it did.
    pub(crate) fn new(
        sku: SkuId,
        instant: Option<Timestamp>,
        head: Head,
        effects: &'a [Effect],
        lot_inits: &[LotInit],
        structure: Option<&Structure>,
        fills: &[(u32, u64, Fill)],
    ) -> Change<'a> {
        Change {
            lot_inits: lot_inits
                .iter()
                .map(|init| LotInitRecord {
                    arrival: init.arrival,
                    id: init.facts.id,
                    received_at: init.facts.received_at,
                    expires_at: init.facts.expires_at,
                    received: init.facts.received,
                    location: init.facts.location,
                    attributes: init.attributes.as_deref().cloned(),
                    word: split(init.payload),
                })
                .collect(),
            structure: structure.map(|structure| StructureImage::of(structure, head.lots)),
            fills: Cow::Owned(fills.iter().map(FillRecord::of).collect()),
            ..Change::borrowed(sku, instant, head, effects, &[])
        }
    }
}

/// What applying a record to an image did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The record was the image's next version: applied.
    Done,
    /// The image already holds this version (a snapshot taken after it).
    Covered,
    /// The record is ahead of the image: its predecessor must come first.
    Ahead,
}

/// The most slots a record may add to an image past its current table:
/// bounds what a damaged record can make recovery allocate.
const SLOTS_GROWTH_MAX: u32 = 1 << 20;

impl SkuImage {
    /// Applies `record` if it is this image's next version (see
    /// [`Applied`]); refuses a record that names what the image does not
    /// have. The result is checked again, whole, when the image is
    /// restored.
    pub(crate) fn apply(&mut self, record: &Change<'_>) -> Result<Applied, &'static str> {
        if record.sku != self.sku {
            return Err("a record of another SKU");
        }
        if record.version <= self.version {
            return Ok(Applied::Covered);
        }
        if record.version > self.version + 1 {
            return Ok(Applied::Ahead);
        }
        let version = record.version;
        for init in &record.lot_inits {
            if init.arrival as usize != self.lots.len() {
                return Err("a lot added out of arrival order");
            }
            self.lots.push(super::image::LotImage {
                id: init.id,
                received_at: init.received_at,
                expires_at: init.expires_at,
                received: init.received,
                location: init.location,
                attributes: init.attributes.clone(),
                word: WordImage::new(version, join(init.word)),
                ext: None,
                back: None,
            });
        }
        for fill in record.fills.iter() {
            let slot = self.slot_mut(fill.index)?;
            let ext = Ext { next: fill.next, taken: Quantity::ZERO, removed: false };
            slot.deadline = WordImage::new(fill.version, fill.deadline);
            slot.ext = WordImage::new(fill.version, ext.payload());
            (slot.granted, slot.latest, slot.tag, slot.order) = (fill.granted, fill.latest, fill.tag, fill.order);
        }
        for effect in record.effects.iter() {
            let word = WordImage::new(version, effect.payload);
            match effect.target {
                Target::Lot(at) => self.lot_mut(at)?.word = word,
                Target::LotExt(at) => self.lot_mut(at)?.ext = Some(word),
                Target::LotBack(at) => self.lot_mut(at)?.back = Some(word),
                Target::Slot(at) => self.slot_mut(at)?.main = word,
                Target::SlotDeadline(at) => self.slot_mut(at)?.deadline = word,
                Target::SlotExt(at) => self.slot_mut(at)?.ext = word,
                Target::Due => self.due = word,
                Target::Inflow => self.inflow = word,
                // Rebuilt on restore (see the module docs).
                Target::Fresh | Target::Totals => {}
            }
        }
        if let Some(structure) = &record.structure {
            self.structure = structure.clone();
        }
        self.version = version;
        (self.cursor, self.flags) = (record.cursor, record.flags);
        if record.lots as usize != self.lots.len() {
            return Err("a head whose lot count is not the lots'");
        }
        Ok(Applied::Done)
    }

    fn lot_mut(&mut self, at: u32) -> Result<&mut super::image::LotImage, &'static str> {
        self.lots.get_mut(at as usize).ok_or("an effect on a lot the SKU does not have")
    }

    fn slot_mut(&mut self, at: u32) -> Result<&mut super::image::SlotImage, &'static str> {
        let len = self.slots.len() as u64;
        if u64::from(at) >= len + u64::from(SLOTS_GROWTH_MAX) {
            return Err("a slot far past the SKU's table");
        }
        while self.slots.len() <= at as usize {
            self.slots.push(super::image::SlotImage::free(0));
        }
        Ok(&mut self.slots[at as usize])
    }
}
