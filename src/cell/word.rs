//! Versioned words: the unit of in-place state in a SKU cell.
//!
//! Owns: [`VWord`], a 16-byte atomic word holding `version (48 bits) |
//! payload (80 bits)`, and the one rule by which a change writes it:
//! [`VWord::set_at`] writes a payload at version `v` only if the word's
//! version is older than `v`.
//!
//! Must never: let a write at version `v` land on a word whose version is
//! `v` or later, or move a word's version backwards. That rule is what
//! makes applying a change idempotent and safe to do late: every change to
//! a SKU gets the next version (the cell's head serializes them), every
//! word a change writes is stamped with that version, and a thread that
//! helps apply change `v` long after it landed (a "late helper") finds each
//! of its words at version `v` or later and leaves it alone. Without the
//! stamp, a late helper could write a value back over a later change: the
//! ABA problem that versioned words remove by construction (48 bits of
//! version do not wrap: [`VERSION_MAX`] is asserted by the cell).
//!
//! Writers that are not changes (a thread claiming a free slot it will
//! fill privately) keep the version as it is and replace the payload by a
//! full-word compare-and-swap ([`VWord::replace`]).
//!
//! # Orderings
//!
//! Loads are `Acquire`, writes are `AcqRel` compare-and-swaps (`Release`
//! on success publishes what the writer did before: a change's descriptor
//! and a slot's privately written fields; `Acquire` on the loaded value
//! lets a loser see the winner's). The cell's module docs argue why a
//! reader that saw head version `v` reads every word at its state-`v`
//! value or later.

use crate::sync::{AtomicU128, Ordering};

/// Bits of payload in a word.
pub(crate) const PAYLOAD_BITS: u32 = 80;
/// The largest payload.
pub(crate) const PAYLOAD_MAX: u128 = (1 << PAYLOAD_BITS) - 1;
/// The largest version a word (and so a SKU) can carry: 2^48 - 1 changes.
pub(crate) const VERSION_MAX: u64 = (1 << 48) - 1;

/// One word's contents: the version of the change that last wrote it and
/// its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamped {
    pub(crate) version: u64,
    pub(crate) payload: u128,
}

impl Stamped {
    #[inline]
    fn pack(self) -> u128 {
        assert!(self.version <= VERSION_MAX, "version {} past the 48-bit maximum", self.version);
        debug_assert!(self.payload <= PAYLOAD_MAX, "payload wider than 80 bits");
        u128::from(self.version) << PAYLOAD_BITS | self.payload
    }

    #[inline]
    fn unpack(word: u128) -> Stamped {
        // The shift leaves 48 bits: they fit a u64.
        Stamped { version: (word >> PAYLOAD_BITS) as u64, payload: word & PAYLOAD_MAX }
    }
}

/// A 16-byte atomic word: `version | payload` (see the module docs).
#[derive(Debug)]
pub(crate) struct VWord(AtomicU128);

impl VWord {
    pub(crate) fn new(version: u64, payload: u128) -> VWord {
        VWord(AtomicU128::new(Stamped { version, payload }.pack()))
    }

    #[inline]
    pub(crate) fn load(&self) -> Stamped {
        // Acquire: pairs with the Release of the compare-and-swap (or
        // store) that wrote the value read, so what its writer did before
        // (a descriptor, a slot's fields) is visible here.
        Stamped::unpack(self.0.load(Ordering::Acquire))
    }

    /// Writes `payload` at `version` unless the word is already at
    /// `version` or later. True if this call wrote it.
    ///
    /// Only the threads applying change `version` race here (every change
    /// before it was applied before it landed, and none after it can land
    /// before it is applied), and they all write the same payload: the
    /// loop ends after at most one lost race per other kind of writer
    /// (a claim swapping a free slot's payload keeps the version; see
    /// [`replace`](Self::replace)).
    pub(crate) fn set_at(&self, version: u64, payload: u128) -> bool {
        let new = Stamped { version, payload }.pack();
        // Acquire: see `load`.
        let mut current = self.0.load(Ordering::Acquire);
        for _ in 0..SET_ATTEMPTS_MAX {
            if Stamped::unpack(current).version >= version {
                return false;
            }
            // AcqRel: Release publishes this change to readers that load
            // the word (see the module's `# Orderings`); Acquire on failure
            // reads the racing writer's value, as `load` does.
            match self.0.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        unreachable!("a versioned word lost {SET_ATTEMPTS_MAX} races to writers of older versions")
    }

    /// [`set_at`](Self::set_at) for a writer that read the word as
    /// `expected` at the state before `version` (a change's owner): one
    /// compare-and-swap from that value, no reload. If it fails, a helper
    /// of the same change got there first, or the word holds something
    /// else; `set_at` then decides.
    #[inline]
    pub(crate) fn set_from(&self, expected: Stamped, version: u64, payload: u128) -> bool {
        let new = Stamped { version, payload }.pack();
        // AcqRel: as in `set_at`.
        match self.0.compare_exchange(expected.pack(), new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(_) => self.set_at(version, payload),
        }
    }

    /// Replaces the whole word if it is still `expected` (version and
    /// payload), keeping the version: for writers that are not changes.
    /// `Err` carries what the word holds instead.
    #[inline]
    pub(crate) fn replace(&self, expected: Stamped, payload: u128) -> Result<(), Stamped> {
        let new = Stamped { version: expected.version, payload }.pack();
        // AcqRel: as in `set_at`.
        self.0
            .compare_exchange(expected.pack(), new, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(Stamped::unpack)
    }

    /// Stores `version | payload` outright: only for a word no other
    /// thread can be writing (a slot this thread claimed and has not yet
    /// published, a word of a lot not yet published).
    #[inline]
    pub(crate) fn store_private(&self, version: u64, payload: u128) {
        // Release: pairs with `load`'s Acquire, as `set_at` does.
        self.0.store(Stamped { version, payload }.pack(), Ordering::Release);
    }
}

/// Rounds of [`VWord::set_at`]: every competitor either writes the same
/// version (then the next round returns) or only swaps the payload of a
/// word no change targets.
const SET_ATTEMPTS_MAX: u32 = 8;

/// Packing helpers for payloads: a field of `bits` bits at `shift`.
pub(crate) const fn field(payload: u128, shift: u32, bits: u32) -> u64 {
    ((payload >> shift) & ((1 << bits) - 1)) as u64
}

/// `value` placed as a field of `bits` bits at `shift` (asserted to fit).
#[inline]
pub(crate) fn put(value: u64, shift: u32, bits: u32) -> u128 {
    assert!(bits == 64 || value < 1 << bits, "{value} does not fit {bits} bits");
    u128::from(value) << shift
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn a_write_lands_only_on_an_older_version() {
        let word = VWord::new(3, 7);
        assert!(!word.set_at(3, 9), "same version: already applied");
        assert!(!word.set_at(2, 9), "older change: a late helper");
        assert_eq!(word.load(), Stamped { version: 3, payload: 7 });
        assert!(word.set_at(4, 9));
        assert_eq!(word.load(), Stamped { version: 4, payload: 9 });
        assert!(!word.set_at(4, 9), "a second helper of the same change");
    }

    #[test]
    fn replace_keeps_the_version_and_checks_the_whole_word() {
        let word = VWord::new(5, 1);
        assert_eq!(word.replace(Stamped { version: 4, payload: 1 }, 2), Err(Stamped { version: 5, payload: 1 }));
        assert_eq!(word.replace(Stamped { version: 5, payload: 1 }, 2), Ok(()));
        assert_eq!(word.load(), Stamped { version: 5, payload: 2 });
    }

    #[test]
    fn fields_round_trip_at_the_edges() {
        let payload = put(PAYLOAD_MAX as u64 & ((1 << 40) - 1), 0, 40) | put((1 << 40) - 1, 40, 40);
        assert_eq!(field(payload, 0, 40), (1 << 40) - 1);
        assert_eq!(field(payload, 40, 40), (1 << 40) - 1);
        let word = VWord::new(VERSION_MAX, PAYLOAD_MAX);
        assert_eq!(word.load(), Stamped { version: VERSION_MAX, payload: PAYLOAD_MAX });
    }

    #[test]
    #[should_panic(expected = "past the 48-bit maximum")]
    fn a_version_past_48_bits_is_a_bug_to_stop_at() {
        let _ = VWord::new(VERSION_MAX + 1, 0);
    }
}
