//! Effects: what one change writes, as data any thread can apply.
//!
//! Owns: [`Effect`] (write this payload into that versioned word),
//! [`Target`] (which word), [`LotInit`] (a received lot's facts and first
//! counters), [`Big`] (a change too large for a descriptor's inline
//! words: many effects, new lots, a new structure or deadline index), and
//! the two-word encoding of an effect.
//!
//! Must never: describe anything but absolute results. An effect says
//! "this word becomes this payload at this change's version", computed by
//! the change's owner from the state before the change; applying it again,
//! late, or from several threads at once writes the same value or nothing
//! (see [`VWord::set_at`](super::word::VWord::set_at)). Deltas would not be
//! idempotent.

use super::deadlines::DeadlineIndex;
use super::lots::LotFacts;
use super::structure::Structure;
use crate::lot::LotAttributes;
use crate::sync::Arc;

/// The versioned word an effect writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// A lot's counter word (available, net), by arrival index.
    Lot(u32),
    /// A slot's main word (state, lot, quantity), by slot index.
    Slot(u32),
    /// A slot's deadline word.
    SlotDeadline(u32),
    /// A slot's extension word (next line, units taken by shrinks).
    SlotExt(u32),
    /// The cell's earliest-deadline floor.
    Due,
    /// The earliest deadline among holds the deadline index does not know.
    Fresh,
    /// The SKU's available and held totals (kept when events are on).
    Totals,
    /// The SKU's receipts plus growth adjustments (and returns into new
    /// lots).
    Inflow,
    /// A lot's extension word (units written off, units returned), by
    /// arrival index.
    LotExt(u32),
    /// A lot's came-back word: units that left it and came back (into it
    /// or into a lot made for them), by arrival index.
    LotBack(u32),
}

impl Target {
    /// The target's kind (1..=10) and index (0 for a word that has none).
    pub(super) fn encode(self) -> (u64, u32) {
        match self {
            Target::Lot(at) => (1, at),
            Target::Slot(at) => (2, at),
            Target::SlotDeadline(at) => (3, at),
            Target::SlotExt(at) => (4, at),
            Target::Due => (5, 0),
            Target::Fresh => (6, 0),
            Target::Totals => (7, 0),
            Target::Inflow => (8, 0),
            Target::LotExt(at) => (9, at),
            Target::LotBack(at) => (10, at),
        }
    }

    fn decode(kind: u64, at: u32) -> Target {
        match kind {
            1 => Target::Lot(at),
            2 => Target::Slot(at),
            3 => Target::SlotDeadline(at),
            4 => Target::SlotExt(at),
            5 => Target::Due,
            6 => Target::Fresh,
            7 => Target::Totals,
            8 => Target::Inflow,
            9 => Target::LotExt(at),
            10 => Target::LotBack(at),
            _ => unreachable!("effect kind {kind} was never encoded"),
        }
    }

    /// [`decode`](Self::decode) for a kind and index read from outside:
    /// `None` if the kind names no target, or if it names a word that has
    /// no index and `at` is not 0 (bytes [`encode`](Self::encode) never
    /// makes).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(super) fn try_decode(kind: u64, at: u32) -> Option<Target> {
        let target = (1..=10).contains(&kind).then(|| Target::decode(kind, at))?;
        (target.encode() == (kind, at)).then_some(target)
    }
}

/// Write `payload` into `target` at the change's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Effect {
    pub(crate) target: Target,
    pub(crate) payload: u128,
}

impl Effect {
    pub(crate) fn new(target: Target, payload: u128) -> Effect {
        Effect { target, payload }
    }

    /// Two words: `kind (4) | payload's top 16 | index (32)`, then the
    /// payload's low 64.
    pub(crate) fn encode(self) -> [u64; 2] {
        let (kind, at) = self.target.encode();
        let high = (self.payload >> 64) as u64;
        debug_assert!(high < 1 << 16, "payloads are 80 bits");
        [kind << 60 | high << 32 | u64::from(at), self.payload as u64]
    }

    pub(crate) fn decode(words: [u64; 2]) -> Effect {
        let kind = words[0] >> 60;
        let high = (words[0] >> 32) & 0xFFFF;
        let payload = u128::from(high) << 64 | u128::from(words[1]);
        Effect { target: Target::decode(kind, words[0] as u32), payload }
    }
}

/// A lot a receipt adds: its facts and its first counter word.
#[derive(Clone, Debug)]
pub(crate) struct LotInit {
    pub(crate) arrival: u32,
    pub(crate) facts: LotFacts,
    pub(crate) payload: u128,
    pub(crate) attributes: Option<Arc<LotAttributes>>,
}

/// A change that does not fit a descriptor's inline words.
#[derive(Debug, Default)]
pub(crate) struct Big {
    pub(crate) effects: Vec<Effect>,
    pub(crate) lots: Vec<LotInit>,
    /// The structure the change replaces, and its replacement.
    pub(crate) structure: Option<(Arc<Structure>, Arc<Structure>)>,
    /// The deadline index the change replaces, and its replacement.
    pub(crate) index: Option<(Arc<DeadlineIndex>, Arc<DeadlineIndex>)>,
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn every_target_and_the_widest_payload_round_trip() {
        let payload = (1u128 << 80) - 1;
        for target in [
            Target::Lot(u32::MAX),
            Target::Slot(7),
            Target::SlotDeadline(0),
            Target::SlotExt(1 << 31),
            Target::Due,
            Target::Fresh,
            Target::Totals,
            Target::Inflow,
        ] {
            for payload in [0, 1, payload, 1 << 64, (1 << 64) - 1] {
                let effect = Effect::new(target, payload);
                assert_eq!(Effect::decode(effect.encode()), effect);
            }
        }
    }
}
