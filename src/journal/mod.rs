//! The journal: a durable, segmented, checksummed log of opaque records,
//! appended by many threads, group-committed by one writer thread,
//! recovered after a crash, and read as a lossless change feed.
//!
//! Owns: the storage layer under the ledger's durability: records and
//! their frames on disk (`format.rs`), segments and snapshots as files
//! (`files.rs`, `snapshot.rs`), the append path (`ring.rs`, `waitlist.rs`,
//! `log.rs`), the writer thread (`writer.rs`), recovery (`recovery.rs`,
//! `scan.rs`) and the feed (`reader.rs`).
//!
//! Must never: acknowledge a `Sync` append before it is on disk; let an
//! append take a lock or wait for another appender; skip, repeat or
//! reorder a record; accept a damaged file silently (it is refused with the
//! file and byte offset) or refuse a torn tail (it is truncated and
//! reported). What a record means is not its business: payloads are bytes.
//!
//! # Shape
//!
//! ```text
//!  appenders ──fetch-add seq──► ring (bounded slots) ──► writer thread
//!   (no lock)    copy payload       back-pressure          │ gather → one frame
//!                                                          │ write → fdatasync
//!  Receipt::wait ◄── unpark (only those it covered) ◄──────┘ publish durable_seq
//! ```
//!
//! - [`Journal::open`] recovers the directory and returns a [`Recovery`]:
//!   the newest valid [`SnapshotImage`], then every verified [`Record`]
//!   after it, then [`Recovery::finish`] gives the [`Journal`] and a
//!   [`RecoveryReport`] (a torn tail truncated, damaged snapshots refused).
//! - [`Journal::append`] returns a [`Receipt`] at once (poll it, wait on it,
//!   or, with feature `async`, await [`Journal::durable`]);
//!   [`Journal::append_acknowledged`] returns when the [`Durability`] mode
//!   acknowledges: `Sync` on disk, `Batched` and `Off` at once.
//! - [`Journal::reader`] is the change feed: a [`Reader`] from any
//!   position, resumable from [`Reader::position`].
//! - [`Journal::snapshot_writer`] / [`Journal::write_snapshot`] store the
//!   host's image ([`SnapshotInfo`]) and delete what it covers;
//!   [`Journal::retain_from`] keeps segments a feed still needs.
//! - Errors: [`AppendError`], [`DurabilityError`] ([`Failure`]),
//!   [`OpenError`] ([`Damage`], [`DamageKind`]), [`ReadError`],
//!   [`SnapshotError`]; a truncated tail is a [`TornTail`] ([`TornReason`]).
//!
//! # Ordering guarantees (what the ledger can build on)
//!
//! 1. **Sequence numbers are dense and unique**: 1, 2, 3, … across the
//!    journal's life, with no gap and no repeat, and they survive restarts
//!    (the next append after recovery continues the chain).
//! 2. **Program order**: appends by one thread get increasing sequence
//!    numbers (the claim is a fetch-add on one counter, so appends that do
//!    not overlap in time are numbered in real-time order, whichever
//!    threads make them).
//! 3. **Prefix durability**: the durable watermark only grows, and
//!    "sequence `n` is durable" means every sequence up to `n` is durable.
//!    So an acknowledged record never depends on an unacknowledged one
//!    *with a smaller sequence number*; recovery returns exactly a prefix of
//!    the appended records (never one with a hole before it).
//! 4. **Failure is final**: after a failed write or sync every appended
//!    record above [`Failure::durable_through`] fails its waiters, and
//!    every later append is refused; what is durable is that prefix (and
//!    possibly more, which recovery finds; those records were never
//!    acknowledged).
//!
//! For the ledger: two changes of one SKU published by different threads
//! (versions `v` and `v + 1`) may reach `append` in either order, so
//! sequence order is not version order. Durability of the later
//! *sequence* covers the earlier one (3), so the rule "acknowledge a change
//! once the watermark reaches the larger of its own sequence and its
//! predecessor version's" makes every acknowledged change's history
//! durable; replay must then apply each SKU's records in version order
//! (hold back `v + 1` until `v`), and drop a tail record whose predecessor
//! version is missing (it was never acknowledged).
//!
//! # Durability modes
//!
//! - `Sync`: one `fdatasync` covers everything appended while the previous
//!   one ran (group commit); no caller syncs for itself.
//! - `Batched { max_delay }`: acknowledged at once; the writer writes each
//!   gather and syncs once the oldest unsynced one is `max_delay` old. Loss
//!   window: from the writer taking a record to the next sync returning, at
//!   most `max_delay` plus one sync (measured: [`JournalStats::loss_window_max`]).
//! - `Off`: written to the OS, never synced by the journal (survives the
//!   process, not the machine); acknowledged at once.
//!
//! # Bounds
//!
//! The ring holds `ring_capacity` records (then appends wait, or
//! [`Journal::try_append`] answers [`AppendError::Full`]); a frame holds at
//! most `batch_bytes_max` bytes (a larger record gets a frame of its own, up
//! to `record_bytes_max`, at most 16 MiB); a segment ends at the first frame
//! past `segment_bytes_max`; a `Sync` gather waits at most `gather_max` (none
//! by default).

#[cfg(feature = "async")]
pub(crate) mod acknowledged;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod format;
pub(crate) mod log;
#[cfg(all(test, stockroom_loom))]
mod loom;
pub(crate) mod options;
pub(crate) mod reader;
pub(crate) mod recovery;
pub(crate) mod ring;
pub(crate) mod scan;
pub(crate) mod shared;
pub(crate) mod snapshot;
pub(crate) mod waitlist;
pub(crate) mod writer;

#[cfg(feature = "async")]
pub use acknowledged::Durable;
pub use error::{AppendError, Damage, DamageKind, DurabilityError, Failure, OpenError, ReadError, SnapshotError};
pub use log::{Journal, JournalStats, Receipt};
pub use options::{Durability, JournalOptions};
pub use reader::Reader;
pub use recovery::{Record, Recovery, RecoveryReport};
pub use scan::{TornReason, TornTail};
pub use snapshot::{SnapshotImage, SnapshotInfo, SnapshotWriter};

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests;
