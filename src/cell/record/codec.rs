//! A [`ChangeRecord`]'s bytes in the journal, laid out by hand: every SKU
//! change is one, so their size is the journal's size (a one-line hold
//! on a small lot takes 25 bytes and its commit 12, with a one-byte SKU id
//! and version).
//!
//! Owns: `Serialize` and `Deserialize` for [`Change`], the record's shape
//! byte, how a word's 80-bit payload is cut into pieces, and
//! [`Change::encode_into`], the journal's direct writer of the same bytes.
//!
//! Must never: lose a bit, or guess. Every field and every payload bit is
//! written (the cuts cover all 80 bits, whatever the word's layout), so
//! any record reads back equal; a record naming an unknown effect kind, an
//! index on a word that has none, a piece wider than its cut, the `QUIET`
//! flag (never recorded) or a section marked present but empty is
//! refused. A change in a word's layout can cost bytes, never correctness.
//!
//! # Layout
//!
//! The record is a serde tuple whose elements its shape byte decides.
//! Postcard (the journal's encoding) writes a tuple as its elements one
//! after the other, every integer but a `u8` as a LEB128 varint (one byte
//! below 128), a `u8` as one byte:
//!
//! | element | present |
//! |---|---|
//! | sku, version (u64) | always |
//! | shape (u8): the head's flags in bits 0..4; bits 4, 5, 6, 7 say an instant, lot inits, a structure, fills follow | always |
//! | cursor, lots (u32) | always |
//! | the instant, in ms (u64) | shape bit 4 |
//! | effect count (u32), then per effect `index << 4 \| kind` (u64) and its payload's pieces (u64 each) | always |
//! | the lot inits, a postcard sequence | shape bit 5 |
//! | the structure | shape bit 6 |
//! | fill count (u32), then per fill: slot index (u32); age: the record's version minus the fill's (u64, wrapping); the deadline's [`DEADLINE`] pieces; next line + 1 (u32, wrapping: `u32::MAX`, no next line, takes a byte); granted, latest, tag, order (u64) | shape bit 7 |
//!
//! # Pieces
//!
//! A payload is cut where its word's fields are, each piece a varint, so
//! a piece is as short as its field's value ([`cut`]): two 40-bit
//! quantities ([`COUNTERS`]), a quantity, a 32-bit index and 8 bits of
//! state ([`LINE`]), or a deadline in ms and the bit above it that says
//! "none" ([`DEADLINE`]). The packed two-word form the descriptors use
//! would put the kind in the top bits and take 9 to 10 bytes per word.
//!
//! The layout is versioned by the record's format byte
//! (`crate::durable`'s `FORMAT`): change it, and bump that.
//!
//! # Two writers, one layout
//!
//! `Serialize` is the reference: the layout above, element by element,
//! through serde. The journal records every change through
//! [`Change::encode_into`] instead, which writes the same bytes straight
//! into a buffer (serde's per-element calls and postcard's per-byte
//! flavor were most of a recorded change's cost). Every round trip in the
//! tests checks that the two agree, byte for byte.

use super::{Change, ChangeRecord, FillRecord, LotInitRecord};
use crate::cell::effect::{Effect, Target};
use crate::cell::head;
use crate::cell::image::StructureImage;
use crate::cell::word::{PAYLOAD_BITS, field};
use crate::clock::Timestamp;
use crate::ids::SkuId;
use crate::quantity::Quantity;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// Shape bits above the head's flags: what follows the fixed fields.
const INSTANT: u8 = 1 << 4;
const LOT_INITS: u8 = 1 << 5;
const STRUCTURE: u8 = 1 << 6;
const FILLS: u8 = 1 << 7;
/// The head's flags (bits 0..4 of the shape byte).
const FLAGS: u8 = INSTANT - 1;
const _: () = assert!(
    (head::DEADLINES | head::BACKORDERS | head::QUIET | head::DISARMED) & !FLAGS == 0,
    "the head's flags fit below the shape's section bits"
);

/// Elements the decoder reserves room for up front, at most: a damaged
/// count makes it read until the bytes end, not allocate.
const PREALLOCATED_MAX: usize = 64;

/// One piece of a payload: `bits` bits from `shift`. An index piece is
/// written plus one (wrapping), so `u32::MAX` (none) takes one byte.
#[derive(Clone, Copy, Debug)]
struct Piece {
    shift: u32,
    bits: u32,
    index: bool,
}

impl Piece {
    const fn plain(shift: u32, bits: u32) -> Piece {
        Piece { shift, bits, index: false }
    }

    const fn mask(self) -> u64 {
        u64::MAX >> (64 - self.bits)
    }

    fn put(self, payload: u128) -> u64 {
        let value = field(payload, self.shift, self.bits);
        if self.index { value.wrapping_add(1) & self.mask() } else { value }
    }

    /// The bits `wire` stands for, in place; `None` if it is wider than
    /// the piece.
    fn take(self, wire: u64) -> Option<u128> {
        if wire > self.mask() {
            return None;
        }
        let value = if self.index { wire.wrapping_sub(1) & self.mask() } else { wire };
        Some(u128::from(value) << self.shift)
    }
}

/// A word of two 40-bit quantities: a lot's counters (available, net), its
/// extension and came-back words, the totals; the inflow (one quantity).
const COUNTERS: &[Piece] = &[Piece::plain(0, 40), Piece::plain(40, 40)];
/// A slot's main or extension word: a quantity, a lot or next-line index
/// (none is `u32::MAX`), the state and marks.
const LINE: &[Piece] = &[Piece::plain(0, 40), Piece { shift: 40, bits: 32, index: true }, Piece::plain(72, 8)];
/// A deadline word: the instant in ms, and the bit that says none.
const DEADLINE: &[Piece] = &[Piece::plain(0, 64), Piece::plain(64, 16)];

/// Where the payload of `target`'s word is cut.
fn cut(target: Target) -> &'static [Piece] {
    match target {
        Target::Lot(_) | Target::LotExt(_) | Target::LotBack(_) | Target::Totals | Target::Inflow => COUNTERS,
        Target::Slot(_) | Target::SlotExt(_) => LINE,
        Target::SlotDeadline(_) | Target::Due | Target::Fresh => DEADLINE,
    }
}

/// The record's shape byte (see the module docs).
fn shape(record: &Change<'_>) -> u8 {
    assert!(record.flags & !FLAGS == 0, "head flags {:#x} past the shape's bits", record.flags);
    let section = |present: bool, bit: u8| if present { bit } else { 0 };
    record.flags
        | section(record.instant.is_some(), INSTANT)
        | section(!record.lot_inits.is_empty(), LOT_INITS)
        | section(record.structure.is_some(), STRUCTURE)
        | section(!record.fills.is_empty(), FILLS)
}

impl Serialize for Change<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shape = shape(self);
        let pieces: usize = self.effects.iter().map(|effect| cut(effect.target).len()).sum();
        let fills = if self.fills.is_empty() { 0 } else { 1 + self.fills.len() * (7 + DEADLINE.len()) };
        let len = 6
            + usize::from(self.instant.is_some())
            + self.effects.len()
            + pieces
            + usize::from(!self.lot_inits.is_empty())
            + usize::from(self.structure.is_some())
            + fills;
        let mut tuple = serializer.serialize_tuple(len)?;
        tuple.serialize_element(&self.sku.0)?;
        tuple.serialize_element(&self.version)?;
        tuple.serialize_element(&shape)?;
        tuple.serialize_element(&self.cursor)?;
        tuple.serialize_element(&self.lots)?;
        if let Some(instant) = self.instant {
            tuple.serialize_element(&instant.0)?;
        }
        tuple.serialize_element(&(self.effects.len() as u32))?;
        for effect in self.effects.iter() {
            let (kind, at) = effect.target.encode();
            tuple.serialize_element(&(u64::from(at) << 4 | kind))?;
            for piece in cut(effect.target) {
                tuple.serialize_element(&piece.put(effect.payload))?;
            }
        }
        if !self.lot_inits.is_empty() {
            tuple.serialize_element(&self.lot_inits)?;
        }
        if let Some(structure) = &self.structure {
            tuple.serialize_element(structure)?;
        }
        if !self.fills.is_empty() {
            tuple.serialize_element(&(self.fills.len() as u32))?;
            for fill in self.fills.iter() {
                tuple.serialize_element(&fill.index)?;
                tuple.serialize_element(&self.version.wrapping_sub(fill.version))?;
                for piece in DEADLINE {
                    tuple.serialize_element(&piece.put(fill.deadline))?;
                }
                tuple.serialize_element(&fill.next.wrapping_add(1))?;
                tuple.serialize_element(&fill.granted.get())?;
                tuple.serialize_element(&fill.latest)?;
                tuple.serialize_element(&fill.tag)?;
                tuple.serialize_element(&fill.order)?;
            }
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for ChangeRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ChangeRecord, D::Error> {
        // The shape byte says how many elements there are: the length
        // here is only a bound (postcard writes none).
        deserializer.deserialize_tuple(usize::MAX, RecordVisitor)
    }
}

struct RecordVisitor;

/// Appends `value` as postcard writes every integer wider than a `u8`: a
/// LEB128 varint, seven bits a byte, the lowest first.
#[cfg(feature = "journal")]
fn varint(out: &mut Vec<u8>, value: u64) {
    let mut rest = value;
    // At most 10 rounds: each takes 7 of the 64 bits.
    while rest >= 0x80 {
        out.push(rest as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends `value`'s postcard encoding (the rare sections: lot inits, a
/// structure).
#[cfg(feature = "journal")]
fn postcard_into(out: &mut Vec<u8>, value: &impl Serialize) {
    // Encoding plain data into a vector cannot fail.
    *out = postcard::to_extend(value, std::mem::take(out)).expect("plain data encodes");
}

#[cfg(feature = "journal")]
impl Change<'_> {
    /// Appends the record's bytes to `out`: exactly what its `Serialize`
    /// writes through postcard (see the module docs), element by element
    /// in the same order.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        varint(out, self.sku.0);
        varint(out, self.version);
        out.push(shape(self));
        varint(out, u64::from(self.cursor));
        varint(out, u64::from(self.lots));
        if let Some(instant) = self.instant {
            varint(out, instant.0);
        }
        varint(out, u64::from(self.effects.len() as u32));
        for effect in self.effects.iter() {
            let (kind, at) = effect.target.encode();
            varint(out, u64::from(at) << 4 | kind);
            for piece in cut(effect.target) {
                varint(out, piece.put(effect.payload));
            }
        }
        if !self.lot_inits.is_empty() {
            postcard_into(out, &self.lot_inits);
        }
        if let Some(structure) = &self.structure {
            postcard_into(out, structure);
        }
        if !self.fills.is_empty() {
            varint(out, u64::from(self.fills.len() as u32));
            for fill in self.fills.iter() {
                varint(out, u64::from(fill.index));
                varint(out, self.version.wrapping_sub(fill.version));
                for piece in DEADLINE {
                    varint(out, piece.put(fill.deadline));
                }
                varint(out, u64::from(fill.next.wrapping_add(1)));
                varint(out, fill.granted.get());
                varint(out, fill.latest);
                varint(out, fill.tag);
                varint(out, fill.order);
            }
        }
    }
}

/// The next element of the record, which its shape says is there.
fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?.ok_or_else(|| A::Error::custom("a change record cut short"))
}

/// A payload from its pieces as `cut` lays them out.
fn payload<'de, A: SeqAccess<'de>>(seq: &mut A, cut: &[Piece]) -> Result<u128, A::Error> {
    let mut payload = 0;
    for &piece in cut {
        payload |= piece.take(next(seq)?).ok_or_else(|| A::Error::custom("a payload piece wider than its cut"))?;
    }
    Ok(payload)
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = ChangeRecord;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a SKU change record")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChangeRecord, A::Error> {
        let sku = SkuId(next(&mut seq)?);
        let version: u64 = next(&mut seq)?;
        let shape: u8 = next(&mut seq)?;
        let (cursor, lots) = (next(&mut seq)?, next(&mut seq)?);
        let instant = if shape & INSTANT != 0 { Some(Timestamp(next(&mut seq)?)) } else { None };
        let count: u32 = next(&mut seq)?;
        // Bounded by `count`; each effect takes bytes, so damaged bytes end
        // the loop with an error before it is long.
        let mut effects = Vec::with_capacity((count as usize).min(PREALLOCATED_MAX));
        for _ in 0..count {
            let kind_at: u64 = next(&mut seq)?;
            let at = u32::try_from(kind_at >> 4).map_err(|_| A::Error::custom("an effect index past 32 bits"))?;
            let target =
                Target::try_decode(kind_at & 0xF, at).ok_or_else(|| A::Error::custom("an effect no change writes"))?;
            effects.push(Effect::new(target, payload(&mut seq, cut(target))?));
        }
        let present = |bit: u8| shape & bit != 0;
        let lot_inits: Vec<LotInitRecord> = if present(LOT_INITS) { next(&mut seq)? } else { Vec::new() };
        let structure: Option<StructureImage> = if present(STRUCTURE) { Some(next(&mut seq)?) } else { None };
        let mut fills = Vec::new();
        if present(FILLS) {
            let count: u32 = next(&mut seq)?;
            // Bounded by `count`, as the effects are.
            fills.reserve((count as usize).min(PREALLOCATED_MAX));
            for _ in 0..count {
                let index = next(&mut seq)?;
                let age: u64 = next(&mut seq)?;
                let deadline = payload(&mut seq, DEADLINE)?;
                let next_plus_one: u32 = next(&mut seq)?;
                let granted = Quantity::new(next(&mut seq)?).map_err(A::Error::custom)?;
                let (latest, tag, order) = (next(&mut seq)?, next(&mut seq)?, next(&mut seq)?);
                let (version, line) = (version.wrapping_sub(age), next_plus_one.wrapping_sub(1));
                fills.push(FillRecord { index, version, deadline, next: line, granted, latest, tag, order });
            }
        }
        if (present(LOT_INITS) && lot_inits.is_empty()) || (present(FILLS) && fills.is_empty()) {
            return Err(A::Error::custom("a change record section marked present but empty"));
        }
        if present(head::QUIET) {
            return Err(A::Error::custom("a change record with the quiet flag, which is never recorded"));
        }
        let flags = shape & FLAGS;
        let (effects, fills) = (Cow::Owned(effects), Cow::Owned(fills));
        Ok(ChangeRecord { sku, version, instant, cursor, lots, flags, effects, lot_inits, structure, fills })
    }
}

// Every cut covers the whole payload, once.
const _: () = {
    let cuts = [COUNTERS, LINE, DEADLINE];
    let mut at = 0;
    while at < cuts.len() {
        let (cut, mut covered, mut i) = (cuts[at], 0, 0);
        while i < cut.len() {
            assert!(cut[i].shift == covered && cut[i].bits >= 1 && cut[i].bits <= 64, "cuts are contiguous");
            covered += cut[i].bits;
            i += 1;
        }
        assert!(covered == PAYLOAD_BITS, "a cut covers the 80 payload bits");
        at += 1;
    }
};

#[cfg(all(test, feature = "journal", not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;
    use crate::cell::slots::NEVER;
    use crate::cell::structure::Structure;
    use crate::ids::{LocationId, LotId};
    use proptest::prelude::*;

    const PAYLOAD_MAX: u128 = (1 << 80) - 1;

    /// Checks that `record` reads back equal, and that the direct writer
    /// writes the bytes serde does.
    fn round_trip(record: &ChangeRecord) -> Vec<u8> {
        let bytes = postcard::to_allocvec(record).unwrap();
        let back: ChangeRecord = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&back, record, "{bytes:02x?}");
        let mut direct = vec![0xAA];
        record.encode_into(&mut direct);
        assert_eq!(&direct[1..], &bytes[..], "the direct writer appends serde's bytes");
        bytes
    }

    fn bare(version: u64) -> ChangeRecord {
        ChangeRecord {
            sku: SkuId(1),
            version,
            instant: None,
            cursor: 0,
            lots: 0,
            flags: 0,
            effects: Cow::Owned(Vec::new()),
            lot_inits: Vec::new(),
            structure: None,
            fills: Cow::Owned(Vec::new()),
        }
    }

    fn targets(at: u32) -> [Target; 10] {
        [
            Target::Lot(at),
            Target::Slot(at),
            Target::SlotDeadline(at),
            Target::SlotExt(at),
            Target::Due,
            Target::Fresh,
            Target::Totals,
            Target::Inflow,
            Target::LotExt(at),
            Target::LotBack(at),
        ]
    }

    fn fill(index: u32, version: u64, deadline: u128, next: u32, edge: u64) -> FillRecord {
        let granted = Quantity::new(edge).unwrap_or(Quantity::MAX);
        FillRecord { index, version, deadline, next, granted, latest: edge, tag: edge, order: edge }
    }

    fn lot(arrival: u32, word: [u64; 2], location: Option<LocationId>) -> LotInitRecord {
        LotInitRecord {
            arrival,
            id: LotId(u64::MAX - u64::from(arrival)),
            received_at: Timestamp(u64::MAX),
            expires_at: Some(Timestamp(0)),
            received: Quantity::MAX,
            location,
            attributes: None,
            word,
        }
    }

    #[test]
    fn every_target_and_edge_payload_round_trips_with_every_section() {
        let payloads = [0, 1, PAYLOAD_MAX, u128::from(u64::MAX), 1 << 64, NEVER, (1 << 40) - 1, 1 << 79, 1 << 72];
        let structure = StructureImage::of(&Structure::initial().successor(7), 2);
        for at in [0, 1, 127, 128, u32::MAX - 1, u32::MAX] {
            for instant in [None, Some(Timestamp(0)), Some(Timestamp(u64::MAX))] {
                let mut record = bare(u64::MAX);
                (record.sku, record.instant, record.cursor, record.lots) = (SkuId(u64::MAX), instant, u32::MAX, 2);
                record.flags = head::DEADLINES | head::BACKORDERS | head::DISARMED;
                for target in targets(at) {
                    record.effects.to_mut().extend(payloads.map(|payload| Effect::new(target, payload)));
                }
                round_trip(&record);
                record.lot_inits = vec![lot(0, [u64::MAX, 0xFFFF], None), lot(1, [0, 0], Some(LocationId(u32::MAX)))];
                record.structure = Some(structure.clone());
                for (version, deadline, next) in [(0, NEVER, u32::MAX), (u64::MAX, PAYLOAD_MAX, 0), (3, 0, at)] {
                    record.fills.to_mut().push(fill(at, version, deadline, next, u64::MAX));
                    record.fills.to_mut().push(fill(0, version, deadline, next, 0));
                }
                round_trip(&record);
            }
        }
    }

    #[test]
    fn a_bare_record_takes_its_fixed_fields_and_an_effect_count() {
        let bytes = round_trip(&bare(1));
        assert_eq!(bytes, [1, 1, 0, 0, 0, 0], "sku, version, shape, cursor, lots, no effects");
    }

    /// A multi-line hold on small lots: every piece is one byte.
    #[test]
    fn small_fields_take_a_byte_each() {
        let mut record = bare(9);
        record.lots = 2;
        for (at, available) in [(0, 3), (1, 40)] {
            record.effects.to_mut().push(Effect::new(Target::Lot(at), available | 50 << 40));
        }
        let line = |lot: u128, quantity: u128, state: u128| quantity | lot << 40 | state << 77;
        let effects = record.effects.to_mut();
        effects.push(Effect::new(Target::Slot(4), line(0, 7, 3)));
        effects.push(Effect::new(Target::SlotExt(4), line(u128::from(u32::MAX), 0, 0)));
        effects.push(Effect::new(Target::Due, NEVER));
        record.fills.to_mut().push(fill(5, 8, NEVER, u32::MAX, 0));
        let bytes = round_trip(&record);
        // 6 fixed, 3 per lot word, 4 per line word, 3 for the deadline;
        // a fill count and 9 per fill.
        assert_eq!(bytes.len(), 6 + 2 * 3 + 2 * 4 + 3 + 1 + 9, "{bytes:02x?}");
    }

    #[test]
    fn bytes_this_layout_never_writes_are_refused() {
        let refused = |bytes: &[u8]| postcard::from_bytes::<ChangeRecord>(bytes).unwrap_err().to_string();
        let header = [1, 2, 0, 0, 0];
        for (effect, why) in [
            (&[1, 0x00, 0, 0][..], "kind 0"),
            (&[1, 0x0B, 0, 0], "kind 11"),
            (&[1, 0x15, 0, 0], "an index on the due word"),
            (&[1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0], "an index past 32 bits"),
            (&[1, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0], "a 41-bit piece of a 40-bit cut"),
            (&[1, 0x02, 0, 0, 0x80, 0x02], "a 9-bit piece of an 8-bit cut"),
            (&[1, 0x01, 0], "cut short"),
        ] {
            let bytes = [&header[..], effect].concat();
            assert!(!refused(&bytes).is_empty(), "{why}");
        }
        for shape in [LOT_INITS, FILLS] {
            let bytes = [&[1, 2, shape, 0, 0, 0][..], &[0]].concat();
            assert!(!refused(&bytes).is_empty(), "an empty section marked present ({shape:#x})");
        }
        assert!(!refused(&[1, 2, head::QUIET, 0, 0, 0]).is_empty(), "the quiet flag");
    }

    fn arbitrary_effect() -> impl Strategy<Value = Effect> {
        (0..10usize, any::<u32>(), 0..=PAYLOAD_MAX)
            .prop_map(|(kind, at, payload)| Effect::new(targets(at)[kind], payload))
    }

    fn arbitrary_fill() -> impl Strategy<Value = FillRecord> {
        let terms = (any::<u64>(), any::<u64>(), any::<u64>(), 0..=Quantity::MAX.get());
        (any::<u32>(), any::<u64>(), 0..=PAYLOAD_MAX, any::<u32>(), terms).prop_map(
            |(index, version, deadline, next, (latest, tag, order, granted))| FillRecord {
                index,
                version,
                deadline,
                next,
                granted: Quantity::new(granted).unwrap(),
                latest,
                tag,
                order,
            },
        )
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            (sku, version, instant) in (any::<u64>(), any::<u64>(), proptest::option::of(any::<u64>())),
            (cursor, lots, flags) in (any::<u32>(), any::<u32>(), (0..=FLAGS).prop_map(|flags| flags & !head::QUIET)),
            effects in proptest::collection::vec(arbitrary_effect(), 0..8),
            fills in proptest::collection::vec(arbitrary_fill(), 0..4),
        ) {
            let mut record = bare(version);
            (record.sku, record.instant, record.cursor, record.lots, record.flags) =
                (SkuId(sku), instant.map(Timestamp), cursor, lots, flags);
            (record.effects, record.fills) = (Cow::Owned(effects), Cow::Owned(fills));
            round_trip(&record);
        }
    }
}
