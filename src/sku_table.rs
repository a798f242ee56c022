//! The SKU table: SKU id to the SKU's value (the ledger's cell), read
//! without locks and without writing anything shared.
//!
//! Owns: [`table::SkuTable`], a concurrent insert-only map from
//! [`SkuId`](crate::ids::SkuId) to any `V`, and its parts: the seeded hash
//! (`hash`), the append-only arena of entries (`arena`), one generation of
//! the index (`index`).
//!
//! Must never: write shared memory on a lookup (no lock word, no reference
//! count, no epoch or hazard slot), make a lookup wait for an insertion,
//! move a value, or free anything a lookup may still read before the table
//! itself is dropped. Why it matters: with `DashMap` every lookup of one
//! hot SKU writes the same shard-lock word from every thread, and with the
//! old table (64 shards, each an immutable `HashMap` swapped whole) every
//! lookup went through arc-swap's debt slots and every definition copied
//! its shard (2.1 ms per definition at 1M SKUs).
//!
//! # Design
//!
//! - **Values live in an arena** and never move: entry `i` is the `i`-th
//!   SKU defined, in a chunk of 256 write-once cells allocated once and
//!   freed with the table. So a `&V` is valid for as long as the borrow of
//!   the table, with nothing counted, and `iter` visits SKUs in definition
//!   order.
//! - **The index maps a hash to an arena position**: 4-byte words (position
//!   plus one, and a tag of hash bits) in buckets of 8 (32 bytes),
//!   bucketized cuckoo hashing in which entries only move from their
//!   primary bucket to their alternate, copying before overwriting. A
//!   lookup loads the key's home pair of slots (8 bytes) and finds most
//!   keys there; otherwise it compares a whole bucket's tags at once, and
//!   reads at most two buckets. It never retries (the argument is in
//!   `index`).
//! - **Growth builds a new generation beside the old one**: when the
//!   current generation is 31/32 full, the writer builds one twice the size
//!   under a fresh seed from the arena, then makes it current. Each
//!   generation carries its own handles to the arena's chunks, so a word
//!   leads to its entry in two steps. A reader still in the old generation
//!   finishes there: it holds every entry published before the switch, and
//!   the entry being inserted is not yet acknowledged. Old generations are
//!   never freed while the table lives (freeing them safely would need
//!   readers to announce themselves: the shared write this table exists to
//!   avoid); they cost as much again as the current one.
//! - **Insertions take one lock** (the rare admin path). Each is O(1)
//!   amortized: a cuckoo search bounded at 584 entries looked at, and a
//!   rebuild of `n` entries every time `n` doubles.
//!
//! # Orderings
//!
//! One writer at a time (the writer lock); readers only load. Every
//! publication is a release store after the data it publishes, read with
//! an acquire load:
//!
//! - a chunk's handle, then the arena entry in it (both `OnceLock::set`),
//!   then the index word naming it (`Index::apply`, release;
//!   `Index::find` and `Index::scan`, acquire);
//! - a moved entry's copy, then the overwrite of the slot it left (both
//!   release, in that order; a reader that sees the overwrite sees the
//!   copy);
//! - a new generation's words, its handles and its arena entry, then the
//!   generation's cell (`OnceLock::set`), then `current` (release;
//!   `generation()`, acquire);
//! - all of the above, then `len` (release; `len()` and `iter()`, acquire,
//!   and `iter()` loads the generation after the length).
//!
//! The writer keeps its own copies of `current` and `len` and reads index
//! words relaxed: the writer lock orders every earlier writer's stores
//! before it.
//!
//! # Memory
//!
//! Per SKU beyond the value: the arena entry's id (8 bytes) and write-once
//! state (4, padded to 8 for an 8-aligned value), and the index: 4 bytes a
//! slot, at 48% to 97% full, twice over for the retained generations,
//! 8.2 to 16.5 bytes; chunk handles and the one partly filled chunk add
//! under a byte from 10,000 SKUs on. Measured (`benches/sku_table.rs`,
//! 16-byte value): 30.3 bytes at 10,000 SKUs, 24.6 at 1,000,000, and 25.4
//! to 32.5 anywhere from 10,000 to 1,000,000 (35.4 at 1,000).

mod arena;
mod hash;
mod index;
pub(crate) mod table;

#[cfg(all(test, stockroom_loom))]
mod loom;
#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests;

pub(crate) use table::{InsertError, SkuTable};
