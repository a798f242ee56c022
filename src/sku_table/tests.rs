//! Unit tests of the SKU table: the map's contract (insert, lookup,
//! duplicates, full, length, iteration), growth at every boundary, values
//! that never move, the hash on every id pattern against a check that
//! fails on the old hash, the reseed defence against colliding ids, a
//! proptest against `std`'s `HashMap`, and lookups racing insertions on
//! real threads (the loom models check the same race exhaustively on tiny
//! tables: `loom.rs`).

use super::arena::Entry;
use super::hash::{Seed, Seeds, unhash};
use super::index::{BUCKET_SLOTS, MOVES_MAX};
use super::table::{InsertError, LEN_MAX, SkuTable};
use crate::ids::SkuId;
use crate::sync::OnceLock;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The value every test stores for `id`: a function of the id, so a wrong
/// entry or a torn one shows.
fn value_of(id: u64) -> [u64; 2] {
    [!id, id.rotate_left(29) ^ 0xA5A5]
}

fn sku(id: u64) -> SkuId {
    SkuId(id)
}

/// Distinct pseudo-random ids (splitmix64 of `i`, a bijection).
fn random_id(i: u64) -> u64 {
    let x = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The multiplicative inverse of the golden-ratio constant modulo 2^64.
fn inverse_of_phi() -> u64 {
    let phi = 0x9E37_79B9_7F4A_7C15_u64;
    let mut inv = phi;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2_u64.wrapping_sub(phi.wrapping_mul(inv)));
    }
    assert_eq!(inv.wrapping_mul(phi), 1);
    inv
}

/// A named id pattern: the `i`-th id.
type Pattern = (&'static str, Box<dyn Fn(u64) -> u64>);

/// Id patterns hosts use, and ones chosen against the hashes the old table
/// used (`id * φ`: its shards took the top bits, the `HashMap` inside each
/// the low bits).
fn patterns() -> Vec<Pattern> {
    let phi_inverse = inverse_of_phi();
    let other_seed = Seeds::Sequence(99).next_seed();
    vec![
        ("dense", Box::new(|i| i)),
        ("i << 32", Box::new(|i| i << 32)),
        ("i << 16", Box::new(|i| i << 16)),
        ("i << 40", Box::new(|i| i << 40)),
        ("i * 1000", Box::new(|i| i * 1000)),
        ("random", Box::new(random_id)),
        // `id * φ` is `i`: every id in the old table's shard 0.
        ("i * φ⁻¹", Box::new(move |i| i.wrapping_mul(phi_inverse))),
        // Every id in one bucket pair under a seed the table does not use.
        ("colliding under another seed", Box::new(move |i| unhash(other_seed, (i + 1) << 32))),
    ]
}

#[test]
fn an_empty_table_finds_nothing() {
    let table = SkuTable::<[u64; 2]>::new();
    assert_eq!(table.len(), 0);
    assert!(table.is_empty());
    assert_eq!(table.get(sku(0)), None);
    assert_eq!(table.with(sku(7), |value| value[0]), None);
    assert_eq!(table.iter().count(), 0);
}

#[test]
fn insert_then_get_with_len() {
    let table = SkuTable::new();
    for id in [5, 0, u64::MAX, 1 << 32, 77] {
        assert_eq!(table.insert(sku(id), value_of(id)), Ok(()));
    }
    assert_eq!(table.len(), 5);
    assert!(!table.is_empty());
    for id in [5, 0, u64::MAX, 1 << 32, 77] {
        assert_eq!(table.get(sku(id)), Some(&value_of(id)));
        assert_eq!(table.with(sku(id), |value| value[1]), Some(value_of(id)[1]));
    }
    for absent in [1, 4, 6, u64::MAX - 1, 2 << 32] {
        assert_eq!(table.get(sku(absent)), None, "{absent} was never inserted");
    }
}

#[test]
fn a_duplicate_is_refused_with_its_value_and_changes_nothing() {
    let table = SkuTable::new();
    table.insert(sku(9), [1, 1]).expect("fresh");
    let refused = table.insert(sku(9), [2, 2]);
    assert_eq!(refused, Err(InsertError::AlreadyDefined([2, 2])));
    assert_eq!(refused.map_err(InsertError::into_value), Err([2, 2]), "the rejected value comes back");
    assert_eq!(table.get(sku(9)), Some(&[1, 1]), "the first value stays");
    assert_eq!(table.len(), 1);
    assert_eq!(table.iter().count(), 1);
}

#[test]
fn a_full_table_refuses_with_its_value_and_changes_nothing() {
    let table = SkuTable::with_seed_sequence(1, 5);
    for id in 0..5 {
        table.insert(sku(id), value_of(id)).expect("room for five");
    }
    let refused = table.insert(sku(100), value_of(100));
    assert!(refused.as_ref().is_err_and(InsertError::is_full), "{refused:?}");
    assert_eq!(refused.map_err(InsertError::into_value), Err(value_of(100)));
    assert_eq!(table.len(), 5);
    assert_eq!(table.get(sku(100)), None);
    // Precedence: a SKU already there is reported as such, full or not.
    assert_eq!(table.insert(sku(3), [0, 0]), Err(InsertError::AlreadyDefined([0, 0])));
    assert_eq!(table.iter().map(|(sku, _)| sku.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

#[test]
fn iteration_visits_every_sku_once_in_definition_order() {
    let table = SkuTable::new();
    let ids: Vec<u64> = (0..3_000).map(random_id).collect();
    for &id in &ids {
        table.insert(sku(id), value_of(id)).expect("distinct ids");
    }
    let visited: Vec<(u64, [u64; 2])> = table.iter().map(|(sku, value)| (sku.0, *value)).collect();
    let expected: Vec<(u64, [u64; 2])> = ids.iter().map(|&id| (id, value_of(id))).collect();
    assert_eq!(visited, expected);
    assert_eq!(table.iter().len(), ids.len());
    let mut via_for_each = Vec::new();
    table.for_each(|sku, value| via_for_each.push((sku.0, *value)));
    assert_eq!(via_for_each, expected);
}

/// Across every generation boundary up to 64k slots: the capacity doubles
/// exactly when an insertion would pass 31/32 full, a new generation
/// appears each time, and every SKU is still found right after.
#[test]
fn growth_boundaries() {
    let table = SkuTable::new();
    let mut capacity = 64;
    let mut generations = 1;
    let mut inserted = 0_u64;
    while capacity <= 1 << 16 {
        let holds_max = capacity - capacity / 32;
        // Up to the last entry this generation takes, then one more.
        for id in inserted..=holds_max as u64 {
            table.insert(sku(id << 32), value_of(id)).expect("fresh");
        }
        inserted = holds_max as u64 + 1;
        let stats = table.probe_stats();
        assert_eq!(stats.len, holds_max + 1);
        assert_eq!(table.capacity(), capacity * 2, "grew on entry {}", holds_max + 1);
        generations += 1;
        assert_eq!(stats.generations, generations, "one generation per doubling");
        assert_eq!(stats.reseeds, 0);
        for id in 0..inserted {
            assert_eq!(table.get(sku(id << 32)), Some(&value_of(id)), "{id} << 32 after growing to {}", capacity * 2);
        }
        assert_eq!(table.get(sku(inserted << 32)), None);
        capacity *= 2;
    }
}

/// A `&V` taken early still points at the same, intact value after the
/// table has grown through many generations.
#[test]
fn values_never_move() {
    let table = SkuTable::new();
    for id in 0..100 {
        table.insert(sku(id), value_of(id)).expect("fresh");
    }
    let early: Vec<*const [u64; 2]> = (0..100).map(|id| std::ptr::from_ref(table.get(sku(id)).expect("in"))).collect();
    for id in 100..100_000 {
        table.insert(sku(id), value_of(id)).expect("fresh");
    }
    for (id, &address) in (0..100).zip(&early) {
        let now = table.get(sku(id)).expect("still in");
        assert_eq!(std::ptr::from_ref(now), address, "the value of {id} moved");
        assert_eq!(*now, value_of(id));
    }
}

/// Throws `ids` into 4,096 bins by the bits the index uses (top bits: the
/// primary bucket; low bits: the alternate) and checks the bins look
/// no worse than uniform random: no bin above the mean of 16 by more than
/// 32 (8 standard deviations), and chi-square no more than 10 standard
/// deviations above its mean (more even than random is fine: `id * φ`
/// spreads dense ids almost perfectly).
fn spreads_evenly(hash: impl Fn(u64) -> u64, ids: impl Iterator<Item = u64>) -> Result<(), String> {
    const BINS: usize = 1 << 12;
    let mut by_top = vec![0_u32; BINS];
    let mut by_low = vec![0_u32; BINS];
    let mut count = 0_usize;
    for id in ids {
        let hash = hash(id);
        by_top[(hash >> 52) as usize] += 1;
        by_low[hash as usize % BINS] += 1;
        count += 1;
    }
    let mean = count as f64 / BINS as f64;
    for (bits, bins) in [("top", &by_top), ("low", &by_low)] {
        let max = *bins.iter().max().expect("bins") as f64;
        let chi_square: f64 = bins.iter().map(|&n| (f64::from(n) - mean).powi(2) / mean).sum();
        let degrees = (BINS - 1) as f64;
        if max > mean + 32.0 || chi_square - degrees > 10.0 * (2.0 * degrees).sqrt() {
            return Err(format!(
                "{bits} bits: fullest bin {max} (mean {mean}), chi-square {chi_square:.0} (df {degrees})"
            ));
        }
    }
    Ok(())
}

#[test]
fn every_id_pattern_hashes_evenly() {
    let seed = Seeds::Random.next_seed();
    for (name, id) in patterns() {
        let ids = (0..1_u64 << 16).map(&id);
        if let Err(skew) = spreads_evenly(|id| seed.hash(id), ids) {
            panic!("{name} under {seed:?}: {skew}");
        }
    }
}

/// The same check fails on the hashes of the old table, for the patterns
/// issue 13 reported (so a pass above means something).
#[test]
fn the_spread_check_fails_the_old_hash() {
    let fibonacci = |id: u64| id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let shifted = spreads_evenly(fibonacci, (0..1 << 16).map(|i| i << 32));
    assert!(shifted.as_ref().is_err_and(|skew| skew.starts_with("low")), "i << 32 under id * φ: {shifted:?}");
    let phi_inverse = inverse_of_phi();
    let chosen = spreads_evenly(fibonacci, (0..1_u64 << 16).map(|i| i.wrapping_mul(phi_inverse)));
    assert!(chosen.as_ref().is_err_and(|skew| skew.starts_with("top")), "i * φ⁻¹ under id * φ: {chosen:?}");
    // And on our own hash under the seed the ids were chosen against.
    let known = Seeds::Sequence(99).next_seed();
    let colliding = spreads_evenly(|id| known.hash(id), (0..1 << 16).map(|i| unhash(known, (i + 1) << 32)));
    assert!(colliding.is_err(), "ids chosen against a known seed collide under it");
}

/// Every pattern, 10,000 and 100,000 SKUs in a random-seeded table: no
/// reseed, no early growth, and lookups as cheap as uniform random ids
/// make them. Measured over these patterns at 61% and 76% full: 82.7-83.9%
/// and 75.0-75.4% of SKUs in their home pair (found with one index load),
/// 1.8-2.7% and 6.4-6.6% in their alternate bucket, a miss reading
/// 1.13-1.15 and 1.34-1.35 buckets; the bounds sit just beyond. A hash
/// that clusters fills buckets: fewer SKUs at home, more alternates,
/// fuller buckets, reseeds or early growth.
#[test]
fn every_id_pattern_probes_like_random_ids() {
    for (len, capacity, at_home_min, in_alternate_max, miss_buckets_max) in
        [(10_000_usize, 1_usize << 14, 0.80, 0.035, 1.19), (100_000, 1 << 17, 0.73, 0.075, 1.40)]
    {
        for (name, id) in patterns() {
            let table = SkuTable::new();
            for i in 0..len as u64 {
                table.insert(sku(id(i)), value_of(i)).expect("distinct ids");
            }
            let stats = table.probe_stats();
            let context = format!("{name}, {len} SKUs: {stats:?}");
            assert_eq!(stats.reseeds, 0, "{context}");
            assert_eq!(stats.capacity, capacity, "{context}");
            assert!(stats.at_home as f64 >= at_home_min * len as f64, "{context}");
            assert!(stats.in_alternate as f64 <= in_alternate_max * len as f64, "{context}");
            assert!((stats.buckets_mean - 1.0 - stats.in_alternate as f64 / len as f64).abs() < 1e-9, "{context}");
            // Tags of 18 and 15 bits: about one false match in 10,000 lookups.
            assert!(stats.false_matches_mean < 0.005, "{context}");
            assert!(stats.miss_buckets_mean <= miss_buckets_max, "{context}");
        }
    }
}

/// Ids chosen to share both buckets under the seed the table starts with
/// (what an attacker who learned it would send): the seventeenth finds no
/// room at 17/64 full, so the table rebuilds under a fresh seed instead of
/// growing, and every id is found.
#[test]
fn colliding_ids_make_the_table_reseed() {
    let start = 0xC0FFEE;
    let first_seed: Seed = Seeds::Sequence(start).next_seed();
    let table = SkuTable::with_seed_sequence(start, LEN_MAX);
    // The first generation has 8 buckets: the top 3 bits of the hash pick
    // the primary (0 for all), the low 3 the alternate (1 for all).
    let ids: Vec<u64> = (1..=40).map(|j| unhash(first_seed, j << 8 | 1)).collect();
    for (i, &id) in ids.iter().enumerate() {
        table.insert(sku(id), value_of(id)).expect("room after a reseed");
        let stats = table.probe_stats();
        let expected_reseeds = usize::from(i >= 2 * BUCKET_SLOTS);
        assert_eq!(stats.reseeds, expected_reseeds, "after {} colliding ids: {stats:?}", i + 1);
        assert_eq!(stats.capacity, 64, "a reseed, not a doubling: {stats:?}");
    }
    for &id in &ids {
        assert_eq!(table.get(sku(id)), Some(&value_of(id)));
    }
}

/// A table under a known seed whose first generation (8 buckets of 8) is
/// laid out so that inserting `key` needs `moves` moves: bucket 0 (the
/// key's primary) and bucket 1 (its alternate) are full; in bucket 0 and
/// in each of buckets 2.. along the chain, slot 0 holds an entry whose
/// alternate is the next bucket and the other slots entries that cannot
/// move (alternate = primary); the last bucket of the chain is empty.
/// Returns the table, the chain's movers in order, and the key.
fn chain_of_moves(moves: usize) -> (SkuTable<[u64; 2]>, Vec<u64>, u64) {
    let start = 0xC4A1;
    let seed = Seeds::Sequence(start).next_seed();
    let table = SkuTable::with_seed_sequence(start, LEN_MAX);
    let mut tag = 0_u64;
    // The id whose hash has this primary (top 3 bits), alternate (low 3)
    // and a tag of its own (bits 8.. of the low word).
    let mut id = |primary: u64, alternate: u64| {
        tag += 1;
        unhash(seed, primary << 61 | tag << 8 | alternate)
    };
    let chain: Vec<u64> = [0].into_iter().chain(2..).take(moves + 1).collect();
    let mut movers = Vec::new();
    for pair in chain.windows(2) {
        let mover = id(pair[0], pair[1]);
        movers.push(mover);
        table.insert(sku(mover), value_of(mover)).expect("room");
        for _ in 1..BUCKET_SLOTS {
            let stuck = id(pair[0], pair[0]);
            table.insert(sku(stuck), value_of(stuck)).expect("room");
        }
    }
    for _ in 0..BUCKET_SLOTS {
        let stuck = id(1, 1);
        table.insert(sku(stuck), value_of(stuck)).expect("room");
    }
    assert_eq!(table.probe_stats().in_alternate, 0, "setup: every entry in its primary");
    (table, movers, id(0, 1))
}

/// Insertions into two full buckets move one, two or three entries along
/// a cuckoo path, each to its alternate, and find every entry afterwards;
/// a path that would need four moves makes the table grow instead.
#[test]
fn cuckoo_paths_of_up_to_three_moves() {
    for moves in 1..=MOVES_MAX {
        let (table, movers, key) = chain_of_moves(moves);
        table.insert(sku(key), value_of(key)).expect("room within MOVES_MAX moves");
        assert_eq!(table.spot(sku(key)).map(|spot| spot.alternate), Some(false), "{moves} moves: key in its primary");
        for &mover in &movers {
            assert_eq!(table.spot(sku(mover)).map(|spot| spot.alternate), Some(true), "{moves} moves: moved");
        }
        let stats = table.probe_stats();
        assert_eq!((stats.capacity, stats.reseeds, stats.in_alternate), (64, 0, moves), "{stats:?}");
        for (id, _) in table.iter() {
            assert_eq!(table.get(id), Some(&value_of(id.0)));
        }
    }
    let (table, _, key) = chain_of_moves(MOVES_MAX + 1);
    table.insert(sku(key), value_of(key)).expect("room after growing");
    assert_eq!(table.capacity(), 128, "no path within MOVES_MAX at 41/64 full: the table grew");
    for (id, _) in table.iter() {
        assert_eq!(table.get(id), Some(&value_of(id.0)));
    }
}

/// The memory the module docs claim: an arena cell costs the value plus
/// 16 bytes (the id, and the write-once state padded to 8), and a bucket
/// is 8 words in 32 bytes.
#[test]
fn entry_overhead_is_sixteen_bytes() {
    assert_eq!(size_of::<OnceLock<Entry<[u64; 2]>>>(), 16 + 16);
    assert_eq!(size_of::<OnceLock<Entry<u64>>>(), 8 + 16);
    assert_eq!(BUCKET_SLOTS * size_of::<u32>(), 32);
}

/// One writer inserts, another races it on the same ids, two readers look
/// up every id whose insertion returned before their lookup began (the
/// table's length says which), across moves and generations.
#[test]
fn lookups_race_insertions_on_threads() {
    const IDS: u64 = 20_000;
    let table = SkuTable::new();
    let done = AtomicBool::new(false);
    let id = |i: u64| random_id(i) & !0xFFFF_FFFF; // high bits only: the i << 32 shape
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| (0..IDS).filter(|&i| table.insert(sku(id(i)), value_of(id(i))).is_ok()).count() as u64)
            })
            .collect();
        for reader in 0..2_u64 {
            let (table, done) = (&table, &done);
            scope.spawn(move || {
                let mut lookups = 0_u64;
                // Relaxed: a stop flag; what is checked is ordered by `len`.
                while !done.load(Ordering::Relaxed) || lookups == 0 {
                    let published = table.len() as u64;
                    // Each writer tries ids in order and only moves on once
                    // an id is in, so id(i) sits at position i: the first
                    // `published` ids are all in.
                    for i in (reader..published).step_by(97) {
                        assert_eq!(table.get(sku(id(i))), Some(&value_of(id(i))), "id {i} of {published}");
                    }
                    if let Some(value) = table.get(sku(id(published + 1))) {
                        assert_eq!(*value, value_of(id(published + 1)), "a racing lookup sees a whole value");
                    }
                    lookups += 1;
                }
            });
        }
        let inserted: u64 = writers.into_iter().map(|writer| writer.join().expect("writer")).sum();
        done.store(true, Ordering::Relaxed);
        assert_eq!(inserted, IDS, "each id inserted exactly once between the two writers");
    });
    let order: Vec<u64> = table.iter().map(|(sku, _)| sku.0).collect();
    assert_eq!(order, (0..IDS).map(id).collect::<Vec<_>>());
}

/// One step of the proptest's history.
#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u32),
    Get(u64),
}

/// Ids that collide often (a few small ones, a few shifted ones) and ids
/// from anywhere.
fn an_id() -> impl Strategy<Value = u64> {
    prop_oneof![0_u64..48, (0_u64..48).prop_map(|i| i << 32), any::<u64>()]
}

fn an_op() -> impl Strategy<Value = Op> {
    prop_oneof![(an_id(), any::<u32>()).prop_map(|(id, value)| Op::Insert(id, value)), an_id().prop_map(Op::Get)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any history of insertions and lookups, on a table of any seed and
    /// length limit, answers exactly as `std`'s `HashMap` (with the same
    /// limit) does, and iterates in definition order.
    #[test]
    fn behaves_like_a_hash_map(
        ops in prop::collection::vec(an_op(), 1..400),
        start in any::<u64>(),
        len_max in 1_usize..300,
    ) {
        let table = SkuTable::with_seed_sequence(start, len_max);
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut order: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(id, value) => {
                    let expected = if model.contains_key(&id) {
                        Err(InsertError::AlreadyDefined(value))
                    } else if model.len() == len_max {
                        Err(InsertError::Full(value))
                    } else {
                        model.insert(id, value);
                        order.push(id);
                        Ok(())
                    };
                    prop_assert_eq!(table.insert(sku(id), value), expected);
                }
                Op::Get(id) => prop_assert_eq!(table.get(sku(id)), model.get(&id)),
            }
            prop_assert_eq!(table.len(), model.len());
        }
        let visited: Vec<(u64, u32)> = table.iter().map(|(sku, value)| (sku.0, *value)).collect();
        let expected: Vec<(u64, u32)> = order.iter().map(|id| (*id, model[id])).collect();
        prop_assert_eq!(visited, expected);
        for id in order {
            prop_assert_eq!(table.get(sku(id)), model.get(&id));
        }
    }
}
