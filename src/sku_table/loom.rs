//! Loom models of the SKU table's one write path, `insert` (what
//! `Ledger::define_sku` calls).
//!
//! What this file proves: two definitions racing in one shard never lose
//! each other. A shard is an immutable map replaced whole by
//! compare-and-swap, so a definition derived from a shard version that
//! another definition already replaced must retry from the new one; and
//! the same SKU defined twice at once is defined exactly once.
//!
//! Run with the command in `crate::cell::loom`.

use super::SkuTable;
use crate::cell::loom::{Preemptions, check};
use crate::cell::{SkuCell, SkuState};
use crate::ids::SkuId;
use crate::policy::AllocationPolicy;
use crate::sync::Arc;
use loom::thread;

/// `Ledger::define_sku`'s write, on a bare table.
fn define(table: &SkuTable, sku: SkuId, policy: AllocationPolicy) -> bool {
    table.insert(sku, SkuCell::new(SkuState::defined(sku, policy)))
}

/// SKU 1 and the next SKU id that lands in the same shard.
fn same_shard_pair(table: &SkuTable) -> (SkuId, SkuId) {
    let first = SkuId(1);
    let second = (2..)
        .map(SkuId)
        .find(|&other| std::ptr::eq(table.shard(first), table.shard(other)))
        .expect("64 shards: a collision within a few hundred ids");
    (first, second)
}

/// Race: defining two different SKUs that hash to the same shard.
///
/// Asserts: both definitions succeed, the table then holds exactly those
/// two SKUs, each found by lookup at version 0 with the policy it was
/// defined with (neither insert overwrote the other's shard copy).
#[test]
fn define_sku_races_define_sku_in_one_shard() {
    check("define_sku_races_define_sku_in_one_shard", Preemptions::Unbounded, || {
        let table = Arc::new(SkuTable::new());
        let (first, second) = same_shard_pair(&table);
        let definers: Vec<_> = [(first, AllocationPolicy::Fefo), (second, AllocationPolicy::Fifo)]
            .into_iter()
            .map(|(sku, policy)| {
                let table = Arc::clone(&table);
                thread::spawn(move || define(&table, sku, policy))
            })
            .collect();
        let defined: Vec<bool> = definers.into_iter().map(|definer| definer.join().unwrap()).collect();

        assert_eq!(defined, [true, true], "two different SKUs are both defined");
        assert_eq!(table.len(), 2);
        for (sku, policy) in [(first, AllocationPolicy::Fefo), (second, AllocationPolicy::Fifo)] {
            let found = table.with(sku, |cell| {
                let state = cell.settled();
                (state.sku, state.version, state.policy)
            });
            assert_eq!(found, Some((sku, 0, policy)), "{sku} lost");
        }
    });
}

/// Race: defining the same SKU twice at once, with different policies.
///
/// Asserts: exactly one definition succeeds; the table holds the SKU once,
/// with the winner's policy.
#[test]
fn define_sku_races_itself() {
    check("define_sku_races_itself", Preemptions::Unbounded, || {
        let table = Arc::new(SkuTable::new());
        let sku = SkuId(1);
        let definers: Vec<_> = [AllocationPolicy::Fefo, AllocationPolicy::Fifo]
            .into_iter()
            .map(|policy| {
                let table = Arc::clone(&table);
                thread::spawn(move || (policy, define(&table, sku, policy)))
            })
            .collect();
        let defined: Vec<_> = definers.into_iter().map(|definer| definer.join().unwrap()).collect();

        let winners: Vec<_> = defined.iter().filter(|(_, won)| *won).map(|&(policy, _)| policy).collect();
        assert_eq!(winners.len(), 1, "defined exactly once: {defined:?}");
        assert_eq!(table.len(), 1);
        assert_eq!(table.with(sku, |cell| cell.settled().policy), Some(winners[0]));
    });
}
