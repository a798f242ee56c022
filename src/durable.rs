//! A ledger kept in a journal: every change it lands is recorded, a
//! checkpoint stores its image, and [`LedgerBuilder::open`] rebuilds it
//! after a crash from the newest checkpoint and the records after it.
//!
//! Owns: the ledger's records ([`JournalRecord`]: a SKU defined, a SKU
//! change as physical redo, a kit, an order made or finished, an
//! idempotency key recorded) and their encoding; the ledger's journal
//! ([`LedgerJournal`], the cell's [`ChangeSink`]); [`Ledger::acknowledge`],
//! [`Ledger::checkpoint`], [`LedgerBuilder::open`] and their errors.
//!
//! Must never: acknowledge a change that is not on disk (in `Sync` mode),
//! apply a record twice or out of its SKU's order in recovery, or recover
//! silently from a damaged file (the storage layer refuses it with where).
//!
//! # What is recorded, and when
//!
//! - A SKU change: by the cell, right after its compare-and-swap, in the
//!   SKU's version order (`cell::record`). Reads that sweep lapsed holds
//!   publish changes too, and are recorded like any other.
//! - A SKU defined, a kit defined, an order made: right after the catalog
//!   or the order book took it, so any change that needs it is recorded
//!   after it. An order finished (committed or released): after its last
//!   part's change.
//! - An idempotency key: that its command started, before the command's
//!   changes; its result, after them.
//!
//! # Acknowledgement
//!
//! Commands return as soon as their changes are in memory and appended.
//! [`Ledger::acknowledge`] is the durability point: it returns once
//! everything appended before it is durable as the journal's mode says
//! (`Sync`: on disk, one `fdatasync` covering every caller waiting at the
//! time; `Batched`/`Off`: at once). A host answers its client after
//! `acknowledge` returns `Ok`; an `Err` (a failed write or sync, a full
//! disk) means the change may be lost and must not be acknowledged.
//!
//! Because a SKU's records are appended in version order and the journal
//! keeps a prefix of its appends, recovery finds, per SKU, a prefix of its
//! versions: every acknowledged change and its history. A record whose
//! predecessor version is missing (the crash came between them) was
//! never acknowledged; recovery drops it and says so.
//!
//! # The intake
//!
//! An order accepted by the intake is in memory until a worker applies it.
//! Its ticket says when it is durable: over a ledger kept in a `Sync`
//! journal, a worker applies the orders queued together, makes them
//! durable with one group commit (`Apply::make_durable`), and only then
//! decides their tickets, so a decided ticket is a durable order (a failed
//! sync decides them `IntakeError::Undurable`). In the other modes, once
//! the ticket has its outcome and an `acknowledge()` that began after that
//! returned `Ok`. An order still queued when the process dies is lost, and
//! its ticket never said otherwise; submitted with an idempotency key
//! (`Intake::submit_keyed`), its retry is applied at most once. (Recording
//! orders at admission, so the queue survives a crash, is not done.)
//!
//! # Known limits
//!
//! - A keyed command records its key twice: that it started (before any of
//!   its changes) and its result (after them). If the process dies in
//!   between, recovery cannot tell whether the command applied: the key
//!   then answers [`CommandError::OutcomeLost`] to a retry, never a second
//!   application (`Recovered::outcomes_lost` counts them).
//! - An order whose parts are recorded but whose own record is not (a
//!   crash in between) was never acknowledged: recovery releases its parts
//!   (no order command could end them), and says how many.
//! - A refused order uses up an order id that is not recorded: after a
//!   recovery, ids go on after the last order made or the last checkpoint,
//!   so a refused order's id (never shown to anyone) may be handed out
//!   again.
//! - The fast paths record what they land too (`SkuCell::record_fast`):
//!   a sale, a hold or an end that the cursor's lot covers costs the same
//!   steps with a journal as without, plus its record.

use crate::cell::image::SkuImage;
use crate::cell::record::{Applied, Change, ChangeRecord, ChangeSink};
use crate::clock::Timestamp;
use crate::command::{Command, Outcome};
use crate::error::CommandError;
use crate::idempotency::{IdempotencyKey, KeyRecord};
use crate::ids::{OrderId, SkuId};
use crate::image::{ImageError, LedgerImage, RestoreError};
use crate::journal::{
    AppendError, Durability, DurabilityError, Journal, JournalOptions, OpenError, RecoveryReport, SnapshotError,
    SnapshotInfo,
};
use crate::kits::KitComponent;
use crate::ledger::{Ledger, LedgerBuilder};
use crate::orders::OrderImage;
use crate::policy::AllocationPolicy;
use crate::sync::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The first byte of every record and checkpoint this build writes. 1:
/// SKU changes as serde derived them; 2: as `cell::record`'s codec lays
/// them out (a record or checkpoint of another format is refused).
const FORMAT: u8 = 2;

/// Records of one SKU held back until their predecessor arrives, at most:
/// more means the journal is not a prefix of what was appended.
const HELD_BACK_MAX: usize = 1 << 20;

/// One journal record (see the module docs); encoded with postcard after
/// the [`FORMAT`] byte.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum JournalRecord {
    Defined {
        sku: SkuId,
        policy: AllocationPolicy,
    },
    Change(ChangeRecord),
    Kit {
        kit: SkuId,
        components: Vec<KitComponent>,
    },
    Order(OrderImage),
    OrderFinished {
        order: OrderId,
        committed: bool,
    },
    Key(KeyRecord<Command, Result<Outcome, CommandError>>),
    /// A keyed command about to run (before any of its changes).
    KeyIntent {
        key: IdempotencyKey,
        command: Command,
        at: Timestamp,
    },
    /// A keyed command that ran to a transient result: nothing applied,
    /// the key is free again.
    KeyFreed {
        key: IdempotencyKey,
    },
}

/// A record by reference, encoded exactly as [`JournalRecord`] (same
/// variants, same order): recording a change copies nothing but bytes.
/// (The sink writes a change's bytes directly, [`CHANGE_TAG`] and
/// `Change::encode_into`; debug builds check them against `Change`'s.)
#[derive(serde::Serialize)]
enum RecordRef<'a> {
    Defined { sku: SkuId, policy: AllocationPolicy },
    Change(&'a Change<'a>),
    Kit { kit: SkuId, components: &'a [KitComponent] },
    Order(&'a OrderImage),
    OrderFinished { order: OrderId, committed: bool },
    Key(&'a KeyRecord<Command, Result<Outcome, CommandError>>),
    KeyIntent { key: &'a IdempotencyKey, command: &'a Command, at: Timestamp },
    KeyFreed { key: &'a IdempotencyKey },
}

fn encode(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = vec![FORMAT];
    // Encoding plain data into a vector cannot fail.
    bytes.extend(postcard::to_allocvec(value).expect("records encode"));
    bytes
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT, body)) => postcard::from_bytes(body).map_err(|error| error.to_string()),
        Some((&format, _)) => Err(format!("format {format}, this build reads {FORMAT}")),
        None => Err("an empty record".to_owned()),
    }
}

/// A ledger's journal: the storage layer, and the first append it lost.
pub(crate) struct LedgerJournal {
    journal: Journal,
    lost: Mutex<Option<AppendError>>,
}

/// Postcard's tag of [`RecordRef::Change`] (and [`JournalRecord::Change`]):
/// its variant index, a one-byte varint. The sink writes it by hand.
const CHANGE_TAG: u8 = 1;

impl ChangeSink for LedgerJournal {
    /// Writes the bytes `RecordRef::Change(record)` encodes to, without
    /// serde: the format byte, the tag, and the record's direct writer.
    fn append(&self, record: &Change<'_>) {
        self.append_encoded(|buffer| {
            let start = buffer.len();
            buffer.push(CHANGE_TAG);
            record.encode_into(buffer);
            debug_assert_eq!(
                &buffer[start..],
                &postcard::to_allocvec(&RecordRef::Change(record)).expect("records encode")[..],
                "the direct writer and serde agree"
            );
        });
    }
}

impl LedgerJournal {
    fn record(&self, record: &RecordRef) {
        self.append_encoded(|buffer| {
            // Encoding plain data into a vector cannot fail.
            *buffer = postcard::to_extend(record, std::mem::take(buffer)).expect("records encode");
        });
    }

    /// Appends the record `encode` writes after the format byte.
    fn append_encoded(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        thread_local! {
            /// This thread's encoding buffer, reused: recording a change
            /// allocates nothing once it has grown to the largest record.
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let appended = BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            buffer.clear();
            buffer.push(FORMAT);
            encode(&mut buffer);
            self.journal.append(&buffer).map(|_| ())
        });
        if let Err(error) = appended {
            self.lost.lock().get_or_insert(error);
        }
    }
}

/// One record of a ledger's journal as a change feed reads it
/// ([`FeedRecord::decode`] on a [`Record`](crate::journal::Record)'s
/// payload from [`Ledger::journal`]'s reader): what changed, in the order
/// it was recorded, each SKU's versions in order and gap-free. A SKU
/// change names the version it produced; read the SKU (or its events) for
/// what it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedRecord {
    /// A SKU was defined (its version 0).
    SkuDefined {
        /// The SKU.
        sku: SkuId,
        /// Its allocation policy.
        policy: AllocationPolicy,
    },
    /// A SKU changed: a command, or a sweep of lapsed holds.
    SkuChanged {
        /// The SKU.
        sku: SkuId,
        /// The version the change produced.
        version: u64,
        /// The instant the change used, if it read one.
        at: Option<Timestamp>,
    },
    /// A kit was defined.
    KitDefined {
        /// The kit.
        kit: SkuId,
        /// Its components.
        components: Vec<KitComponent>,
    },
    /// An order was made (its parts' changes come before it).
    OrderMade {
        /// The order.
        order: OrderId,
    },
    /// An order was committed or released.
    OrderFinished {
        /// The order.
        order: OrderId,
        /// True if committed, false if released.
        committed: bool,
    },
    /// A keyed command started (its changes, and then its result, follow).
    KeyStarted {
        /// The key.
        key: crate::idempotency::IdempotencyKey,
    },
    /// A keyed command ended in a transient refusal: nothing applied, the
    /// key is free.
    KeyFreed {
        /// The key.
        key: crate::idempotency::IdempotencyKey,
    },
    /// A keyed command's result was recorded under its key.
    KeyRecorded {
        /// The key.
        key: crate::idempotency::IdempotencyKey,
        /// The command's result.
        result: Result<Outcome, CommandError>,
    },
}

impl FeedRecord {
    /// Reads one journal record's payload, or says why it cannot.
    pub fn decode(payload: &[u8]) -> Result<FeedRecord, String> {
        Ok(match decode::<JournalRecord>(payload)? {
            JournalRecord::Defined { sku, policy } => FeedRecord::SkuDefined { sku, policy },
            JournalRecord::Change(change) => {
                FeedRecord::SkuChanged { sku: change.sku, version: change.version, at: change.instant }
            }
            JournalRecord::Kit { kit, components } => FeedRecord::KitDefined { kit, components },
            JournalRecord::Order(order) => FeedRecord::OrderMade { order: order.id() },
            JournalRecord::OrderFinished { order, committed } => FeedRecord::OrderFinished { order, committed },
            JournalRecord::Key(key) => FeedRecord::KeyRecorded { key: key.key, result: key.result },
            JournalRecord::KeyIntent { key, .. } => FeedRecord::KeyStarted { key },
            JournalRecord::KeyFreed { key } => FeedRecord::KeyFreed { key },
        })
    }
}

/// Why [`Ledger::acknowledge`] could not say the ledger's changes are
/// durable: they may be lost; do not acknowledge them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcknowledgeError {
    /// The ledger keeps no journal ([`LedgerBuilder::open`] makes one that
    /// does).
    #[error("this ledger keeps no journal")]
    NoJournal,
    /// A record could not be appended (a failed journal, a record past the
    /// size limit): a change is not in the journal.
    #[error("a change could not be recorded: {0}")]
    Lost(AppendError),
    /// The journal failed before the changes were durable.
    #[error(transparent)]
    Durability(#[from] DurabilityError),
}

/// Why [`Ledger::checkpoint`] wrote no checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The ledger keeps no journal.
    #[error("this ledger keeps no journal")]
    NoJournal,
    /// The image could not be taken.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The storage layer refused it.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Why [`LedgerBuilder::open`] built no ledger. Nothing was changed on disk
/// unless the journal was recovered (a torn tail truncated).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerOpenError {
    /// The journal could not be opened or recovered (a damaged file, with
    /// where; an I/O error).
    #[error(transparent)]
    Journal(#[from] OpenError),
    /// The checkpoint's image could not be read.
    #[error("the checkpoint covering record {seq} cannot be read: {reason}")]
    Checkpoint {
        /// The sequence the checkpoint covers.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be read or applied.
    #[error("journal record {seq} cannot be applied: {reason}")]
    Record {
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The recovered state was refused.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

/// What [`LedgerBuilder::open`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// The storage layer's report (checkpoint loaded, torn tail, segments).
    pub journal: RecoveryReport,
    /// SKU changes applied after the checkpoint.
    pub changes: u64,
    /// SKU changes already in the checkpoint (recorded while it was taken).
    pub covered: u64,
    /// SKU changes dropped because a version before them is missing: the
    /// crash came between them, and none of them was acknowledged.
    pub dropped: u64,
    /// Holds made as parts of an order whose own record was lost (the
    /// crash came between the parts and the order; it was never
    /// acknowledged): released, since no order command could end them.
    pub orphan_parts_released: u64,
    /// Idempotency keys whose command had started and recorded no result
    /// (the crash came in between): each now answers
    /// [`CommandError::OutcomeLost`] to a retry.
    pub outcomes_lost: u64,
}

impl LedgerBuilder {
    /// Opens the ledger kept in the journal at `dir` (creating an empty one
    /// if there is none): loads the newest valid checkpoint, applies every
    /// record after it, and returns the ledger, which records every change
    /// from then on, with what recovery found. The builder's settings
    /// apply (they are not in the journal). A hold whose deadline passed
    /// while the process was down lapses at the first look, as if it had
    /// stayed up.
    ///
    /// ```
    /// use stockroom::journal::{Durability, JournalOptions};
    /// use stockroom::{AllocationPolicy, Ledger, LotId, NewLot, SkuId};
    ///
    /// let dir = std::env::temp_dir().join(format!("stockroom-doc-open-{}", std::process::id()));
    /// let options = JournalOptions::new(Durability::Sync);
    /// {
    ///     let (ledger, _) = Ledger::builder().open(&dir, options.clone())?;
    ///     ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    ///     ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    ///     ledger.acknowledge()?; // on disk
    /// }
    /// let (ledger, recovered) = Ledger::builder().open(&dir, options)?;
    /// assert_eq!(recovered.changes, 1);
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().available.get(), 10);
    /// # drop(ledger);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, dir: impl AsRef<Path>, options: JournalOptions) -> Result<(Ledger, Recovered), LedgerOpenError> {
        let mut recovery = Journal::open(dir, options)?;
        let image = match recovery.snapshot() {
            Some(snapshot) => decode::<LedgerImage>(snapshot.bytes())
                .map_err(|reason| LedgerOpenError::Checkpoint { seq: snapshot.seq(), reason })?,
            None => LedgerImage::empty(),
        };
        let mut replay = Replay::new(image);
        while let Some(record) = recovery.next_record()? {
            let seq = record.seq;
            let fail = |reason: String| LedgerOpenError::Record { seq, reason };
            let decoded: JournalRecord = decode(record.payload).map_err(fail)?;
            replay.apply(decoded).map_err(|reason| fail(reason.to_owned()))?;
        }
        let (journal, report) = recovery.finish()?;
        let (image, mut recovered) = replay.finish(report);
        let mut ledger = self.restore(image)?;
        ledger.attach_journal(LedgerJournal { journal, lost: Mutex::new(None) });
        recovered.orphan_parts_released = ledger.release_orphan_parts();
        Ok((ledger, recovered))
    }
}

impl Ledger {
    /// Waits until every change appended to the journal so far (this
    /// thread's included) is durable as the journal's mode says: in `Sync`
    /// mode on disk, one sync covering every caller waiting at the time; in
    /// `Batched` and `Off` at once. Returns the sequence number covered. An
    /// error means changes may be lost: do not acknowledge them to anyone.
    pub fn acknowledge(&self) -> Result<u64, AcknowledgeError> {
        let (through, wait) = self.acknowledge_target()?;
        if let Some(journal) = wait {
            journal.wait_durable(through)?;
        }
        Ok(through)
    }

    /// The async form of [`acknowledge`](Ledger::acknowledge) (feature
    /// `async`): covers every change appended before this call, and
    /// resolves once they are durable, parking no thread meanwhile (the
    /// journal's writer wakes the task when its group commit covers them).
    ///
    /// ```
    /// use stockroom::journal::{Durability, JournalOptions};
    /// use stockroom::{AllocationPolicy, Ledger, LotId, NewLot, SkuId};
    ///
    /// # let dir = std::env::temp_dir().join(format!("stockroom-doc-acknowledged-{}", std::process::id()));
    /// let (ledger, _) = Ledger::builder().open(&dir, JournalOptions::new(Durability::Sync))?;
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let through = runtime.block_on(ledger.acknowledged())?;
    /// assert!(ledger.journal().unwrap().durable_seq() >= through);
    /// # drop(ledger);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "async")]
    pub fn acknowledged(&self) -> impl core::future::Future<Output = Result<u64, AcknowledgeError>> + Send + '_ {
        let target = self.acknowledge_target();
        async move {
            let (through, wait) = target?;
            if let Some(journal) = wait {
                journal.durable(through).await?;
            }
            Ok(through)
        }
    }

    /// What an acknowledgement covers: every record appended so far, and
    /// the journal to wait on when its mode makes the caller wait (`Sync`).
    fn acknowledge_target(&self) -> Result<(u64, Option<&Journal>), AcknowledgeError> {
        let durable = self.ledger_journal().ok_or(AcknowledgeError::NoJournal)?;
        if let Some(lost) = durable.lost.lock().clone() {
            return Err(AcknowledgeError::Lost(lost));
        }
        let journal = &durable.journal;
        let through = journal.next_seq() - 1;
        if let Some(failure) = journal.failure() {
            if failure.durable_through < through {
                return Err(DurabilityError::Failed(failure).into());
            }
        }
        let wait = through > 0 && journal.options().durability() == Durability::Sync;
        Ok((through, wait.then_some(journal)))
    }

    /// Writes a checkpoint: the ledger's image, covering every record
    /// appended before it began (records appended while it is taken may be
    /// in it too; recovery tells them by their versions). The storage layer
    /// then deletes the segments its retained checkpoints cover. Writers
    /// are not stopped.
    pub fn checkpoint(&self) -> Result<SnapshotInfo, CheckpointError> {
        let durable = self.ledger_journal().ok_or(CheckpointError::NoJournal)?;
        let covered = durable.journal.next_seq() - 1;
        let image = self.image()?;
        Ok(durable.journal.write_snapshot(covered, &encode(&image))?)
    }

    /// The journal the ledger records its changes in, if it keeps one:
    /// read it from any position with [`Journal::reader`] and decode each
    /// record with [`FeedRecord::decode`]: a lossless change feed that
    /// resumes from the position a consumer stored (segments a checkpoint
    /// covers are deleted unless [`Journal::retain_from`] keeps them).
    pub fn journal(&self) -> Option<&Journal> {
        self.ledger_journal().map(|durable| &durable.journal)
    }

    /// Releases every live hold marked as a part of an order the order
    /// book does not have (see [`Recovered::orphan_parts_released`]);
    /// returns how many. Run once, after recovery, before the ledger is
    /// shared.
    fn release_orphan_parts(&self) -> u64 {
        let mut orphans = Vec::new();
        self.catalog().for_each(|_, entry| {
            let crate::ledger::Entry::Sku(cell) = entry else { return };
            let Some(data) = cell.read_settled(self.registry()) else { return };
            for hold in &data.holds {
                let order = hold.marks.order;
                if order != 0 && self.orders().get(OrderId(order)).is_none() {
                    orphans.push((hold.id(data.sku), order));
                }
            }
        });
        let mut released = 0;
        for (part, order) in orphans {
            if self.release_as(part, order).is_ok() {
                released += 1;
            }
        }
        released
    }

    /// Records that `sku` was defined (after the catalog took it).
    pub(crate) fn record_defined(&self, sku: SkuId, policy: AllocationPolicy) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::Defined { sku, policy });
        }
    }

    /// Records that kit `kit` was defined.
    pub(crate) fn record_kit(&self, kit: SkuId, components: &[KitComponent]) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::Kit { kit, components });
        }
    }

    /// Records an order just made.
    pub(crate) fn record_order(&self, order: &OrderImage) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::Order(order));
        }
    }

    /// Records that an order was committed or released.
    pub(crate) fn record_order_finished(&self, order: OrderId, committed: bool) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::OrderFinished { order, committed });
        }
    }

    /// Records that a keyed command is about to run: appended before any
    /// of its changes, so a journal that has one of them has this too.
    pub(crate) fn record_key_intent(&self, key: &IdempotencyKey, command: &Command, at: Timestamp) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::KeyIntent { key, command, at });
        }
    }

    /// Records that a keyed command ended transiently (nothing applied).
    pub(crate) fn record_key_freed(&self, key: &IdempotencyKey) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::KeyFreed { key });
        }
    }

    /// Records a keyed command's final result.
    pub(crate) fn record_key(&self, key: &KeyRecord<Command, Result<Outcome, CommandError>>) {
        if let Some(durable) = self.ledger_journal() {
            durable.record(&RecordRef::Key(key));
        }
    }
}

/// Recovery's state: the image being brought forward record by record.
struct Replay {
    image: LedgerImage,
    /// Where each SKU's image is in `image.skus`.
    skus: HashMap<SkuId, usize>,
    /// Records ahead of their SKU's image, by SKU and version.
    held_back: HashMap<SkuId, BTreeMap<u64, ChangeRecord>>,
    /// Keyed commands that started and have no recorded result yet.
    started: HashMap<IdempotencyKey, (Command, Timestamp)>,
    /// SKU changes applied, and found already in the checkpoint.
    changes: u64,
    covered: u64,
}

impl Replay {
    fn new(image: LedgerImage) -> Replay {
        let skus = image.skus.iter().enumerate().map(|(at, sku)| (sku.sku, at)).collect();
        Replay { image, skus, held_back: HashMap::new(), started: HashMap::new(), changes: 0, covered: 0 }
    }

    fn raise_floor(&mut self, instant: Option<Timestamp>) {
        if let Some(instant) = instant {
            self.image.taken_at = self.image.taken_at.max(instant);
        }
    }

    fn apply(&mut self, record: JournalRecord) -> Result<(), &'static str> {
        match record {
            JournalRecord::Defined { sku, policy } => {
                let taken = self.image.kits.iter().any(|(kit, _)| *kit == sku);
                if !taken && !self.skus.contains_key(&sku) {
                    self.skus.insert(sku, self.image.skus.len());
                    self.image.skus.push(SkuImage::empty(sku, policy));
                }
            }
            JournalRecord::Change(record) => {
                self.raise_floor(record.instant);
                let sku = record.sku;
                let at = *self.skus.get(&sku).ok_or("a change of a SKU never defined")?;
                match self.image.skus[at].apply(&record)? {
                    Applied::Done => self.changes += 1,
                    Applied::Covered => self.covered += 1,
                    Applied::Ahead => {
                        let held = self.held_back.entry(sku).or_default();
                        if held.len() >= HELD_BACK_MAX {
                            return Err("too many records ahead of their SKU: not a prefix of the appends");
                        }
                        held.insert(record.version, record);
                        return Ok(());
                    }
                }
                // The records this one was the gap before.
                while let Some(next) = self.held_back.get_mut(&sku).and_then(|held| held.pop_first()) {
                    let (version, record) = next;
                    match self.image.skus[at].apply(&record)? {
                        Applied::Done => self.changes += 1,
                        Applied::Covered => self.covered += 1,
                        Applied::Ahead => {
                            self.held_back.entry(sku).or_default().insert(version, record);
                            break;
                        }
                    }
                }
            }
            JournalRecord::Kit { kit, components } => {
                let taken = self.skus.contains_key(&kit) || self.image.kits.iter().any(|(id, _)| *id == kit);
                if !taken {
                    self.image.kits.push((kit, components));
                }
            }
            JournalRecord::Order(order) => self.image.orders.made(order),
            JournalRecord::OrderFinished { order, committed } => self.image.orders.finished(order, committed),
            JournalRecord::Key(key) => {
                self.raise_floor(Some(key.recorded_at));
                self.started.remove(&key.key);
                self.image.keys.retain(|kept| kept.key != key.key);
                self.image.keys.push(key);
            }
            JournalRecord::KeyIntent { key, command, at } => {
                self.raise_floor(Some(at));
                self.started.insert(key, (command, at));
            }
            JournalRecord::KeyFreed { key } => {
                self.started.remove(&key);
            }
        }
        Ok(())
    }

    /// The image brought forward, and what recovery did (with `journal`,
    /// the storage layer's report).
    fn finish(mut self, journal: RecoveryReport) -> (LedgerImage, Recovered) {
        let dropped = self.held_back.values().map(|held| held.len() as u64).sum();
        // A keyed command that started and recorded no result may have been
        // applied: its key answers `OutcomeLost`, never a second application.
        let outcomes_lost = self.started.len() as u64;
        let mut started: Vec<_> = self.started.into_iter().collect();
        started.sort_unstable_by_key(|(_, (_, at))| *at);
        for (key, (command, recorded_at)) in started {
            self.image.keys.retain(|kept| kept.key != key);
            self.image.keys.push(KeyRecord { key, command, result: Err(CommandError::OutcomeLost), recorded_at });
        }
        self.image.skus.sort_unstable_by_key(|image| image.sku);
        self.image.kits.sort_unstable_by_key(|&(kit, _)| kit);
        let recovered = Recovered {
            journal,
            changes: self.changes,
            covered: self.covered,
            dropped,
            orphan_parts_released: 0,
            outcomes_lost,
        };
        (self.image, recovered)
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use crate::command::{OrderLine, OrderRequest};

    /// Every record of the journal at `from` but those `skip` picks, into a
    /// new journal at `to`: a crash that lost exactly those.
    fn copy_without(from: &Path, to: &Path, skip: impl Fn(&JournalRecord) -> bool) -> usize {
        let mut recovery = Journal::open(from, JournalOptions::new(Durability::Off)).unwrap();
        let (copy, _) = Journal::open(to, JournalOptions::new(Durability::Off)).unwrap().finish().unwrap();
        let mut skipped = 0;
        while let Some(record) = recovery.next_record().unwrap() {
            if skip(&decode::<JournalRecord>(record.payload).unwrap()) {
                skipped += 1;
            } else {
                let _ = copy.append(record.payload).unwrap();
            }
        }
        skipped
    }

    /// A keyed command whose result record was lost (the crash came after
    /// its changes): its retry is refused `OutcomeLost`, never applied
    /// again.
    #[test]
    fn a_keyed_command_whose_result_was_lost_is_never_applied_twice() {
        use crate::idempotency::IdempotencyKey;
        use crate::keyed_error::KeyedError;
        let base = std::env::temp_dir().join(format!("stockroom-durable-lost-{}", std::process::id()));
        let (whole, cut) = (base.join("whole"), base.join("cut"));
        let _ = std::fs::remove_dir_all(&base);
        let key = IdempotencyKey::new("sale-9").unwrap();
        let take = Command::Take(AllocateRequest::new(SkuId(1), 2));
        {
            let (ledger, _) = Ledger::builder().open(&whole, JournalOptions::new(Durability::Off)).unwrap();
            ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
            ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
            ledger.execute_keyed(&key, &take).unwrap();
        }
        let skipped = copy_without(&whole, &cut, |record| matches!(record, JournalRecord::Key(_)));
        assert_eq!(skipped, 1);
        let (ledger, recovered) = Ledger::builder().open(&cut, JournalOptions::new(Durability::Off)).unwrap();
        assert_eq!(recovered.outcomes_lost, 1, "{recovered:?}");
        match ledger.execute_keyed(&key, &take) {
            Err(KeyedError::Refused { error: CommandError::OutcomeLost, replay: true }) => {}
            other => panic!("expected OutcomeLost, replayed: {other:?}"),
        }
        assert_eq!(ledger.snapshot(SkuId(1)).unwrap().totals().committed.get(), 2, "sold once, not twice");
        drop(ledger);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A journal whose order record was lost after its parts' records (the
    /// crash came between them): recovery releases the parts.
    #[test]
    fn parts_of_an_order_whose_record_was_lost_are_released() {
        let base = std::env::temp_dir().join(format!("stockroom-durable-orphans-{}", std::process::id()));
        let (whole, cut) = (base.join("whole"), base.join("cut"));
        let _ = std::fs::remove_dir_all(&base);
        {
            let (ledger, _) = Ledger::builder().open(&whole, JournalOptions::new(Durability::Off)).unwrap();
            for sku in [1, 2] {
                ledger.define_sku(SkuId(sku), AllocationPolicy::Fifo).unwrap();
                ledger.receive(SkuId(sku), NewLot::new(LotId(1), 10)).unwrap();
            }
            let order = OrderRequest::new(vec![OrderLine::new(SkuId(1), 2), OrderLine::new(SkuId(2), 3)]);
            ledger.allocate_order(&order).unwrap();
        }
        let dropped = copy_without(&whole, &cut, |record| matches!(record, JournalRecord::Order(_)));
        assert_eq!(dropped, 1);
        let (ledger, recovered) = Ledger::builder().open(&cut, JournalOptions::new(Durability::Off)).unwrap();
        assert_eq!(recovered.orphan_parts_released, 2, "{recovered:?}");
        for sku in [1, 2] {
            let snapshot = ledger.snapshot(SkuId(sku)).unwrap();
            assert_eq!((snapshot.reservation_count(), snapshot.totals().available.get()), (0, 10));
        }
        assert!(ledger.audit().is_clean());
        drop(ledger);
        let _ = std::fs::remove_dir_all(&base);
    }

    use super::*;
    use crate::command::AllocateRequest;
    use crate::ids::LotId;
    use crate::lot::NewLot;

    /// The bytes of a hold and its commit, pinned: a one-line hold on a
    /// one-lot SKU (10 units, none held), then its commit. A change to the
    /// layout fails here: bump [`FORMAT`] and pin the new bytes. The two
    /// must stay at most 64 bytes (the journal's target per hold + commit).
    /// A closed journal (`Off`, in a fresh directory named for `test`)
    /// holding a SKU's definition, a receipt of 10 units, a one-unit hold
    /// and its commit: the directory, and the ledger over it.
    fn hold_and_commit(test: &str) -> (std::path::PathBuf, Ledger) {
        let dir = std::env::temp_dir().join(format!("stockroom-durable-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (ledger, _) = Ledger::builder().open(&dir, JournalOptions::new(Durability::Off)).unwrap();
        ledger.define_sku(SkuId(1), AllocationPolicy::Fifo).unwrap();
        ledger.receive(SkuId(1), NewLot::new(LotId(1), 10)).unwrap();
        let held = ledger.allocate(&AllocateRequest::new(SkuId(1), 1)).unwrap();
        ledger.commit(held.reservation, None).unwrap();
        ledger.journal().unwrap().close().unwrap();
        (dir, ledger)
    }

    #[test]
    fn a_hold_and_its_commit_encode_to_the_pinned_bytes() {
        let (dir, ledger) = hold_and_commit("pinned");
        let journal = ledger.journal().unwrap();
        let mut reader = journal.reader(3).unwrap();
        let hold = reader.try_next().unwrap().unwrap().payload.to_vec();
        let commit = reader.try_next().unwrap().unwrap().payload.to_vec();
        #[rustfmt::skip]
        let pinned_hold = [
            2, 1, 1, 2, 0x80, 0, 1, // format, a change, sku 1, version 2, shape (fills), cursor, lots
            2, 0x01, 9, 10, // two effects: lot 0's counters (9 available, 10 net)
            0x02, 1, 1, 0x60, // slot 0's main word: 1 unit of lot 0 (index + 1), live
            1, 0, 2, 0, 1, 0, 1, 0, 0, 0, // one fill: slot 0, age 2, no deadline, no next, 1 granted
        ];
        let pinned_commit = [2, 1, 1, 3, 0, 0, 1, 1, 0x02, 0, 1, 0]; // slot 0 free
        assert_eq!((hold.as_slice(), commit.as_slice()), (&pinned_hold[..], &pinned_commit[..]));
        assert!(hold.len() + commit.len() <= 64, "{} + {} bytes", hold.len(), commit.len());
        let old = [&[1][..], &hold[1..]].concat();
        assert_eq!(decode::<JournalRecord>(&old).unwrap_err(), format!("format 1, this build reads {FORMAT}"));
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_record_reads_back_as_written_and_the_reused_buffer_encodes_the_same_bytes() {
        let (dir, ledger) = hold_and_commit("unit");
        let journal = ledger.journal().unwrap();
        let mut reader = journal.reader(1).unwrap();
        let mut sizes = Vec::new();
        while let Some(record) = reader.try_next().unwrap() {
            let decoded: JournalRecord = decode(record.payload).unwrap();
            let again = match &decoded {
                JournalRecord::Change(change) => encode(&RecordRef::Change(change)),
                JournalRecord::Defined { sku, policy } => encode(&RecordRef::Defined { sku: *sku, policy: *policy }),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(again, record.payload, "the buffer and a fresh vector encode alike");
            sizes.push(record.payload.len());
        }
        assert_eq!(sizes.len(), 4, "defined, received, held, committed: {sizes:?}");
        println!("record payload bytes (defined, received, held, committed): {sizes:?}");
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
