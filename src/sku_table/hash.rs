//! The SKU table's hash: a seeded mix of a `u64` SKU id.
//!
//! Owns: [`Seed`] (two random words, drawn afresh for every index
//! generation), [`Seeds`] (where they come from), and the one function from
//! a SKU id to the 64 bits an index generation places it by.
//!
//! Must never: depend on how hosts choose ids. Ids are host-chosen
//! integers: dense (`0, 1, 2, …`), shifted (`i << 32`), multiples of a
//! power of two, or whatever a client of the host can make it define. A
//! multiplicative hash whose low bits pick the bucket (the old table's
//! `id * φ` inside a `HashMap`) puts every `i << 32` in one bucket; here
//! every output bit depends on every input bit.
//!
//! The function is `mix13((id ^ xor) * mul)`: an xor and a multiply by an
//! odd number, both drawn at random per generation, then Stafford's "Mix13"
//! variant of the MurmurHash3 64-bit finalizer (the one splitmix64 uses):
//! two xor-shift-multiply rounds and a final xor-shift. Every step is a
//! bijection of `u64`, so under one seed distinct ids never share a hash,
//! and Mix13 avalanches (flipping any input bit flips each output bit with
//! probability close to 1/2). It costs three multiplies, against SipHash's
//! dozens of operations. It is not a keyed pseudo-random function like
//! SipHash: its defence against chosen ids is that the seed is random and
//! never leaves the table, and behind that the index's rule that an
//! insertion finding no room at low load rebuilds under a fresh seed
//! (see `index`), which scatters whatever collided.

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
use std::hash::BuildHasher;

/// The random words of one index generation's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seed {
    xor: u64,
    /// Always odd, so multiplying by it is a bijection.
    mul: u64,
}

impl Seed {
    /// A seed from two words (the multiplier is forced odd).
    pub(crate) fn new(xor: u64, mul: u64) -> Seed {
        Seed { xor, mul: mul | 1 }
    }

    /// The 64-bit hash of `id` under this seed.
    #[inline]
    pub(crate) fn hash(self, id: u64) -> u64 {
        mix13((id ^ self.xor).wrapping_mul(self.mul))
    }
}

/// Stafford's Mix13: a bijection of `u64` with full avalanche.
#[inline]
fn mix13(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Where a table's seeds come from.
#[derive(Debug)]
pub(crate) enum Seeds {
    /// Fresh random words for every seed, from `std`'s `RandomState` (the
    /// per-process random keys `HashMap` uses, stepped per call).
    Random,
    /// A fixed sequence (splitmix64 from a start word): what the loom and
    /// shuttle builds use, because a checker replays executions and needs
    /// them deterministic, and what tests use to build collisions on
    /// purpose.
    Sequence(u64),
}

impl Seeds {
    /// The seeds a new table uses: random in normal builds, a fixed
    /// sequence under a checker.
    pub(crate) fn for_new_table() -> Seeds {
        if cfg!(any(stockroom_loom, stockroom_shuttle)) {
            Seeds::Sequence(0x5EED_5EED_5EED_5EED)
        } else {
            Seeds::Random
        }
    }

    /// The next seed.
    pub(crate) fn next_seed(&mut self) -> Seed {
        match self {
            Seeds::Random => random_seed(),
            Seeds::Sequence(state) => {
                let xor = splitmix64(state);
                let mul = splitmix64(state);
                Seed::new(xor, mul)
            }
        }
    }
}

#[cfg(not(any(stockroom_loom, stockroom_shuttle)))]
fn random_seed() -> Seed {
    let random = std::collections::hash_map::RandomState::new();
    Seed::new(random.hash_one(0_u64), random.hash_one(1_u64))
}

/// Under a checker the table never asks for random seeds (see
/// [`Seeds::for_new_table`]); this keeps the builds alike.
#[cfg(any(stockroom_loom, stockroom_shuttle))]
fn random_seed() -> Seed {
    Seeds::Sequence(0x5EED_5EED_5EED_5EED).next_seed()
}

/// One step of splitmix64.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix13(*state)
}

/// The inverse of [`Seed::hash`]: the id that hashes to `hash` under
/// `seed`. Tests use it to choose ids that collide under a known seed
/// (what an attacker who learned the seed could do).
#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
pub(crate) fn unhash(seed: Seed, hash: u64) -> u64 {
    /// The inverse of `x ^ (x >> shift)`.
    fn unshift(y: u64, shift: u32) -> u64 {
        let mut x = y;
        for _ in 0..64 / shift + 1 {
            x = y ^ (x >> shift);
        }
        x
    }
    /// The multiplicative inverse of an odd number modulo 2^64 (Newton).
    fn inverse(odd: u64) -> u64 {
        let mut inv = odd;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2_u64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        inv
    }
    let x = unshift(hash, 31);
    let x = unshift(x.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
    let x = unshift(x.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30);
    x.wrapping_mul(inverse(seed.mul)) ^ seed.xor
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn unhash_inverts_hash() {
        let seed = Seeds::Sequence(7).next_seed();
        for id in [0, 1, 2, 1 << 32, u64::MAX, 0xDEAD_BEEF_F00D] {
            assert_eq!(unhash(seed, seed.hash(id)), id);
        }
    }

    #[test]
    fn seeds_differ() {
        let mut random = Seeds::Random;
        let (a, b) = (random.next_seed(), random.next_seed());
        assert_ne!(a, b, "two random seeds in a row");
        let mut sequence = Seeds::Sequence(1);
        assert_ne!(sequence.next_seed(), sequence.next_seed());
        assert_eq!(Seeds::Sequence(1).next_seed(), Seeds::Sequence(1).next_seed(), "a sequence replays");
    }

    /// Flipping one input bit flips each output bit about half the time.
    #[test]
    fn one_bit_of_input_moves_every_bit_of_output() {
        let seed = Seeds::Sequence(3).next_seed();
        let samples = 2_000_u64;
        for input_bit in 0..64 {
            let mut flips = [0_u32; 64];
            for i in 0..samples {
                let id = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let delta = seed.hash(id) ^ seed.hash(id ^ (1 << input_bit));
                for (output_bit, count) in flips.iter_mut().enumerate() {
                    *count += u32::from(delta >> output_bit & 1 == 1);
                }
            }
            for (output_bit, &count) in flips.iter().enumerate() {
                let rate = f64::from(count) / samples as f64;
                // Binomial(2000, 1/2): 0.40..0.60 is more than 8 standard
                // deviations either side.
                assert!((0.40..=0.60).contains(&rate), "input bit {input_bit} -> output bit {output_bit}: {rate:.3}");
            }
        }
    }
}
