//! Loom models of the SKU table: insertions racing lookups, a cuckoo move,
//! a growth, iteration, and each other.
//!
//! What this file proves, on tiny tables (4-slot buckets in two pairs, 8
//! then 16 slots, 2-entry chunks, under the fixed seed sequence every
//! checker build uses), for every interleaving (no preemption bound;
//! loom's partial-order reduction prunes only equivalent ones), except the
//! cuckoo-move model, whose insertion makes enough atomic operations that
//! it runs with `LOOM_MAX_PREEMPTIONS` (at least 2: about 105,000
//! interleavings in some 10 s; unbounded ran past 25 minutes):
//!
//! - a lookup finds every SKU whose insertion returned before the lookup
//!   began (ordered by a release/acquire flag, or by the table's length),
//!   with its own value, while another thread's insertion moves an entry
//!   to its alternate bucket or builds and switches to a new generation;
//! - a lookup racing the insertion of its SKU finds nothing or the whole
//!   entry (the arena cell's publication is a checker atomic: a word or a
//!   length that led a reader to an unpublished cell would panic);
//! - iteration racing an insertion visits the earlier SKUs once each, in
//!   definition order;
//! - two insertions of one SKU: exactly one wins, the other gets its value
//!   back, and the table holds the winner's.
//!
//! Under `stockroom_loom` the index words, `current`, `len` and the
//! write-once cells' flags are loom atomics and the writer lock is loom's,
//! so loom schedules every one of those loads and stores. The writer reads
//! index words with a read-modify-write that changes nothing, under loom
//! only (see `Index::pair_at`): loom's partial-order reduction would
//! otherwise miss a reader's load racing the writer's later store to the
//! same word. The models fail if the word store, `current`'s or `len`'s is
//! made relaxed, if a move overwrites before it copies, if lookups read
//! the alternate bucket before the primary, or if they never read the
//! alternate (checked by hand, one mutation at a time). The moved SKU
//! sits outside its home pair, so its lookup's first load misses it and
//! the bucket scans are what is checked.
//!
//! Run (release, debug assertions on, own target dir):
//!
//! ```text
//! RUSTFLAGS="--cfg stockroom_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release --target-dir target/loom --lib sku_table::loom -- --nocapture
//! ```

use super::hash::{Seed, Seeds};
use super::table::{InsertError, SkuTable};
use crate::ids::SkuId;
use crate::sync::{Arc, AtomicBool, Ordering};
use loom::thread;

/// What every model stores for an id: a function of it, so a wrong entry
/// shows.
fn value_of(id: u64) -> u64 {
    !id ^ 0x5A5A
}

/// The cuckoo-move model's least preemption bound (see the model).
const PREEMPTIONS_MOVE: usize = 2;

/// How many preemptions per execution a model asks loom to explore.
#[derive(Clone, Copy, Debug)]
enum Preemptions {
    /// Every interleaving (loom's partial-order reduction still prunes
    /// equivalent ones): for models small enough to afford it.
    Unbounded,
    /// `LOOM_MAX_PREEMPTIONS` (2 if unset), raised to at least this.
    AtLeast(usize),
}

/// Runs `model` under loom within `preemptions` and checks that it
/// branched at all.
fn check<F>(name: &str, preemptions: Preemptions, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::AtomicUsize;
    // Outside the model, so std's: loom objects live inside executions.
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = match preemptions {
        Preemptions::Unbounded => None,
        Preemptions::AtLeast(min) => Some(builder.preemption_bound.unwrap_or(2).max(min)),
    };
    let bound = builder.preemption_bound.map_or_else(|| "unbounded".to_owned(), |bound| format!("<= {bound}"));
    let started = std::time::Instant::now();
    builder.check(move || {
        // Relaxed: a plain tally, read after `check` returns on this thread.
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    let explored = executions.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("loom model {name}: {explored} interleavings (preemptions {bound}) in {:.2?}", started.elapsed());
    assert!(explored > 1, "{name}: the model never branched, so it checked nothing concurrent");
}

/// The seeds of the first two generations of a checker-build table (the
/// second is the one it grows into, if it neither fails nor reseeds).
fn checker_seeds() -> (Seed, Seed) {
    let Seeds::Sequence(start) = Seeds::for_new_table() else { panic!("checker builds use a fixed sequence") };
    let mut seeds = Seeds::Sequence(start);
    (seeds.next_seed(), seeds.next_seed())
}

/// Where `id` goes in a generation of 4 buckets of 4 slots under `seed`
/// (the index's own bit choice): (primary, alternate, home pair).
fn place_in_sixteen_slots(seed: Seed, id: u64) -> (usize, usize, usize) {
    let hash = seed.hash(id);
    ((hash >> 62) as usize, hash as usize & 3, (hash >> 2) as usize & 1)
}

/// The first id from `from` on whose place in the 16-slot generation (the
/// one a checker-build table grows into first) satisfies `wanted`.
fn find_id(from: u64, wanted: impl Fn((usize, usize, usize)) -> bool) -> u64 {
    let (_, seed) = checker_seeds();
    (from..from + 10_000)
        .find(|&id| wanted(place_in_sixteen_slots(seed, id)))
        .expect("one place out of 32 turns up within a few hundred ids")
}

/// Inserts `ids` in order with their values.
fn insert_all(table: &SkuTable<u64>, ids: &[u64]) {
    for &id in ids {
        table.insert(SkuId(id), value_of(id)).expect("distinct ids, far from full");
    }
}

/// Race: an insertion that must move an entry (its primary and alternate
/// are full, and an entry of its primary, sitting outside its home pair,
/// has room in its own alternate) against a lookup of the entry it moves
/// and of itself.
///
/// Asserts: the moved SKU is always found with its value; the inserted
/// one is found whole or not at all, and always once the inserter's
/// "returned" flag is seen; afterwards the move did happen (the moved SKU
/// sits in its alternate) and every SKU is found.
#[test]
fn lookup_races_a_cuckoo_move() {
    check("lookup_races_a_cuckoo_move", Preemptions::AtLeast(PREEMPTIONS_MOVE), || {
        // In the 16-slot generation (4 buckets of 4): bucket P holds two
        // fillers in the moved SKU's home pair, the moved SKU (so outside
        // it: a lookup's first load misses it and the scans decide) and a
        // third filler; bucket Q holds four; fillers never move (alternate
        // = primary), so the insertion's only path moves the moved SKU to
        // its empty alternate R; the new key K has buckets P and Q.
        let moved = find_id(1, |(primary, alternate, _)| primary != alternate);
        let (_, seed) = checker_seeds();
        let (p, r, home) = place_in_sixteen_slots(seed, moved);
        let q = (0..4).find(|&bucket| bucket != p && bucket != r).expect("4 buckets");
        let mut ids = Vec::new();
        let mut next = |wanted: &dyn Fn((usize, usize, usize)) -> bool| {
            let id = find_id(ids.iter().copied().max().unwrap_or(moved) + 1, wanted);
            ids.push(id);
            id
        };
        let at_home = [
            next(&|(pr, al, h)| pr == p && al == p && h == home),
            next(&|(pr, al, h)| pr == p && al == p && h == home),
        ];
        let last = next(&|(pr, al, _)| pr == p && al == p);
        let in_q: Vec<u64> = (0..4).map(|_| next(&|(pr, al, _)| pr == q && al == q)).collect();
        let key = next(&|(pr, al, _)| pr == p && al == q);
        let setup: Vec<u64> = at_home.into_iter().chain([moved, last]).chain(in_q).collect();

        let table = Arc::new(SkuTable::new());
        insert_all(&table, &setup);
        let spot = table.spot(SkuId(moved)).map(|spot| (spot.alternate, spot.at_home));
        assert_eq!((table.capacity(), spot), (16, Some((false, false))), "setup as planned");

        let returned = Arc::new(AtomicBool::new(false));
        let inserter = {
            let (table, returned) = (Arc::clone(&table), Arc::clone(&returned));
            thread::spawn(move || {
                table.insert(SkuId(key), value_of(key)).expect("room after one move");
                // Release: pairs with the reader's acquire below.
                returned.store(true, Ordering::Release);
            })
        };
        // Acquire: pairs with the inserter's release, so its insert is
        // before this lookup.
        let acknowledged = returned.load(Ordering::Acquire);
        let seen = table.get(SkuId(key)).copied();
        assert_eq!(table.get(SkuId(moved)), Some(&value_of(moved)), "the moved SKU is never missing");
        match seen {
            Some(value) => assert_eq!(value, value_of(key)),
            None => assert!(!acknowledged, "an acknowledged insert is found"),
        }
        inserter.join().unwrap();

        assert_eq!(table.spot(SkuId(moved)).map(|spot| spot.alternate), Some(true), "the model made its move");
        for id in setup.into_iter().chain([key]) {
            assert_eq!(table.get(SkuId(id)), Some(&value_of(id)));
        }
    });
}

/// Race: the insertion that fills the first generation (it grows the
/// table: a new generation, a new seed, every entry rebuilt) against
/// lookups of the earlier SKUs and of itself, and against the length.
///
/// Asserts: every earlier SKU is found with its value, in whichever
/// generation the lookup loaded; the new SKU is found whole or not at all,
/// and always once the length counts it; afterwards the table is in its
/// second generation and holds all four.
#[test]
fn lookup_races_growth() {
    check("lookup_races_growth", Preemptions::Unbounded, || {
        let table = Arc::new(SkuTable::new());
        let earlier: Vec<u64> = (10..17).collect();
        insert_all(&table, &earlier);
        assert_eq!(table.capacity(), 8, "setup: the first generation, full");

        let inserter = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.insert(SkuId(17), value_of(17)).expect("room after growing"))
        };
        let counted = table.len();
        let seen = table.get(SkuId(17)).copied();
        for id in earlier {
            assert_eq!(table.get(SkuId(id)), Some(&value_of(id)), "{id} during growth");
        }
        match seen {
            Some(value) => assert_eq!(value, value_of(17)),
            None => assert_eq!(counted, 7, "a length that counts the insert means it is found"),
        }
        inserter.join().unwrap();

        assert_eq!(table.capacity(), 16, "the model grew the table");
        for id in 10..18 {
            assert_eq!(table.get(SkuId(id)), Some(&value_of(id)));
        }
    });
}

/// Race: iteration against the insertion that grows the table.
///
/// Asserts: iteration visits the seven earlier SKUs once each, in
/// definition order, then at most the new one, each with its value.
#[test]
fn iteration_races_growth() {
    check("iteration_races_growth", Preemptions::Unbounded, || {
        let table = Arc::new(SkuTable::new());
        insert_all(&table, &(20..27).collect::<Vec<_>>());
        assert_eq!(table.capacity(), 8, "setup: the first generation, full");
        let inserter = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.insert(SkuId(27), value_of(27)).expect("room after growing"))
        };
        let visited: Vec<(u64, u64)> = table.iter().map(|(sku, value)| (sku.0, *value)).collect();
        let expected: Vec<(u64, u64)> = (20..28).map(|id| (id, value_of(id))).collect();
        assert!(visited.len() >= 7 && visited[..] == expected[..visited.len()], "{visited:?}");
        inserter.join().unwrap();
    });
}

/// Race: two insertions of one SKU, with different values.
///
/// Asserts: exactly one returns `Ok`; the other gets `AlreadyDefined` with
/// its own value back; the table holds the SKU once, with the winner's.
#[test]
fn insert_races_insert_of_the_same_sku() {
    check("insert_races_insert_of_the_same_sku", Preemptions::Unbounded, || {
        let table = Arc::new(SkuTable::new());
        let racers: Vec<_> = [1_u64, 2]
            .into_iter()
            .map(|value| {
                let table = Arc::clone(&table);
                thread::spawn(move || (value, table.insert(SkuId(7), value)))
            })
            .collect();
        let results: Vec<(u64, Result<(), InsertError<u64>>)> =
            racers.into_iter().map(|racer| racer.join().unwrap()).collect();
        let winners: Vec<u64> = results.iter().filter(|(_, result)| result.is_ok()).map(|&(value, _)| value).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (value, result) in &results {
            if result.is_err() {
                assert_eq!(result, &Err(InsertError::AlreadyDefined(*value)), "the loser gets its value back");
            }
        }
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(SkuId(7)), Some(&winners[0]));
    });
}
