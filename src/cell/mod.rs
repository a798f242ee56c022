//! The SKU cell: one SKU's state, kept in place, and the protocol by which
//! every change to it lands exactly once, in order, without a lock.
//!
//! Owns: [`SkuCell`] and the change protocol (`change`: settle, compute,
//! publish, apply); the state lives in the submodules: the head
//! ([`head`]), versioned words ([`word`]), lots ([`lots`]), reservation
//! slots ([`slots`]), the rarely changing structure ([`structure`],
//! [`tree`]), the deadline index ([`deadlines`]), descriptors
//! ([`desc`]) and effects ([`effect`]); planning in [`plan`], the commands
//! in [`ops`], [`stock`] and [`maintain`], the reads in [`read`].
//!
//! Must never: block, allocate on the steady path of a hold, a sale, a
//! commit or a release, or let a change land on a state it was not
//! computed from. The only CAS loop on stock lives here.
//!
//! # Design
//!
//! A SKU is not a value replaced per change: its lots' counters,
//! reservation slots and deadline bookkeeping are words updated in place,
//! each stamped with the version of the change that last wrote it
//! ([`word::VWord`]). What keeps those words consistent is the **head**,
//! one 16-byte word every change compare-and-swaps exactly once:
//!
//! 1. *Settle.* Load the head: `(version v, descriptor D, cursor, lots,
//!    flags)`. If change `v` may not be fully applied (the `applied` hint is
//!    behind), read `D` and apply its effects (every effect is "set word W
//!    to P at version v", skipped if W is already at `v` or later), so the
//!    state is exactly state `v`.
//! 2. *Compute.* Read the words the change needs; a word stamped later
//!    than `v` means another change landed meanwhile: start over. The
//!    change is computed off to the side into the caller's descriptor
//!    (its effects), with the head fields it will leave; slots for new
//!    holds are claimed and filled privately.
//! 3. *Publish.* Compare-and-swap the head from what was loaded to
//!    `(v + 1, D', …)`. This is the change's **linearization point**. A lost
//!    race goes back to 1 (bounded: [`ATTEMPTS_MAX`]).
//! 4. *Apply.* Write the effects, then raise `applied` to `v + 1`. Anyone
//!    who settles before that (step 1) applies them too: a thread stalled
//!    between 3 and 4 stops nobody. A refusal (sold out, unknown id) is
//!    linearized at its settle and writes nothing.
//!
//! A sale of the cursor's lot is one effect (the lot's word); a hold is two
//! (the lot's word, the slot's main word); a full commit is one (the
//! slot); a release two. So the steady path is the head's
//! compare-and-swap plus one or two more, and no allocation: descriptors
//! are per thread, slots are reused in place, outcomes carry their lines
//! inline. Structural changes (a lot out of order, a threshold, a rebuilt
//! deadline index) install new immutable structure as an effect.
//!
//! # Orderings
//!
//! - The head: loads `Acquire`, compare-and-swaps `AcqRel`. A successful
//!   swap's `Release` publishes the descriptor written before it (and the
//!   slots filled privately before it); the `Acquire` of whoever loads the
//!   new head makes them visible.
//! - Effects: `AcqRel` compare-and-swaps on versioned words, `Acquire`
//!   loads ([`word`]). `applied` is a hint: stored `Release` after a
//!   change's effects are all written, loaded `Acquire`; a reader that sees
//!   `applied >= v` therefore sees every effect of change `v`. A stale
//!   (lower) value only sends a reader to the descriptor, which is safe.
//! - Why a settled reader reads state `v`: every effect of a change `u <=
//!   v` was written before change `u + 1` could be published (its owner
//!   settled first: it saw `applied >= u`, or read `u`'s words or
//!   descriptor, each an `Acquire` of the writes), so it happens-before the
//!   head load that saw `v`; by coherence the reader sees each word at its
//!   state-`v` value or later, and "later" shows as a version above `v`.
//! - Descriptors are sequence-locked ([`desc`]).
//!
//! # Reclamation
//!
//! Nothing on the steady path is freed: lots and slots live in chunks that
//! never move ([`chunks`]) and are reused in place; descriptors belong to
//! threads and are reused by them; a reader that meets a reused descriptor
//! or slot sees it by its version and starts over. Immutable structures
//! (the structure, the deadline index) are held by `Arc` and replaced by
//! compare-and-swap of the `Arc`; an old one lives while anyone holds it.
//! So no cost here grows with the number of threads that ever existed.

pub(crate) mod backorder;
pub(crate) mod chunks;
pub(crate) mod deadlines;
pub(crate) mod desc;
pub(crate) mod effect;
pub(crate) mod fast;
pub(crate) mod head;
pub(crate) mod image;
#[cfg(all(test, stockroom_loom))]
pub(crate) mod loom;
pub(crate) mod lots;
pub(crate) mod maintain;
pub(crate) mod ops;
pub(crate) mod plan;
pub(crate) mod quiet;
pub(crate) mod read;
pub(crate) mod record;
pub(crate) mod returns;
pub(crate) mod slots;
pub(crate) mod stock;
pub(crate) mod structure;
pub(crate) mod tree;
pub(crate) mod view;
pub(crate) mod word;
pub(crate) mod writeoff;

pub(crate) use plan::Demand;
pub(crate) use read::{HoldData, LotData, SkuData};
pub(crate) use returns::{ReturnDone, ReturnRefusal};

use crate::clock::{Moment, Timestamp};
use crate::ids::SkuId;
use crate::lot::LotAttributes;
use crate::outcome::Swept;
use crate::policy::AllocationPolicy;
use crate::quantity::Quantity;
use crate::sync::{Arc, AtomicU64, AtomicU128, Backoff, OnceLock, Ordering, SnapshotCell, unique_id};
use deadlines::DeadlineIndex;
use desc::{Descriptor, Published, Registry};
use effect::{Big, Effect, Target};
use head::Head;
use lots::Lots;
use quiet::Quiet;
use slots::{NEVER, Slots};
use smallvec::SmallVec;
use structure::Structure;
use view::{ClaimPool, Draft, Stale, View};
use word::{VERSION_MAX, VWord, put};

/// Attempts at one change before it is refused as contended. Every failed
/// attempt means another change landed, so the SKU as a whole made
/// progress; the bound keeps one unlucky caller from spinning forever.
/// Between attempts the general path backs off with `snooze` (spins, then
/// yields its core): its attempts are long, and with more threads than
/// cores, spinning instead made the perishables workload (FEFO holds over
/// many lots, 16 threads on 2 cores) 20% slower with twice the p99.9. The
/// fast paths spin only (see `fast`'s "Retries").
pub(crate) const ATTEMPTS_MAX: u32 = 1 << 16;

/// What a command needs besides the cell: the ledger's descriptors, this
/// thread's own one, and the operation's clock reading.
pub(crate) struct Ctx<'a> {
    pub(crate) registry: &'a Registry,
    /// `1 +` this thread's registry index, and its descriptor.
    pub(crate) desc: (u32, &'a Descriptor),
    pub(crate) moment: &'a Moment<'a>,
    /// Where landed changes are recorded, when the ledger keeps a journal:
    /// by `publish` for the general path, by [`SkuCell::record_fast`] for
    /// the fast paths.
    pub(crate) journal: Option<&'a dyn record::ChangeSink>,
}

/// Parts of a cell only some SKUs need, allocated on first use.
pub(crate) struct Extra {
    /// The earliest deadline among holds the index does not hold.
    pub(crate) fresh: VWord,
    pub(crate) index: SnapshotCell<DeadlineIndex>,
    /// `(available, held)` totals, kept when events are on.
    pub(crate) totals: VWord,
    /// What the deadline bookkeeping found at one version (a memo: see
    /// [`maintain`]).
    pub(crate) memo: AtomicU128,
    /// Lot attributes, by arrival index.
    pub(crate) attributes: chunks::Chunks<OnceLock<Arc<LotAttributes>>>,
    /// Lots' extension words ([`lots::LotExt`]), by arrival index.
    pub(crate) lot_ext: chunks::Chunks<VWord>,
    /// Lots' came-back words (units that left and came back), by arrival
    /// index.
    pub(crate) lot_back: chunks::Chunks<VWord>,
    /// When the quiet window a long change asked for ends, in
    /// [`monotonic_nanos`](crate::sync::monotonic_nanos) (see [`quiet`]).
    /// A hint: two long changes asking at once may overwrite each other's
    /// end, and every wait is bounded by `quiet::QUIET_MAX_NANOS` anyway.
    pub(crate) quiet_until: AtomicU64,
}

impl core::fmt::Debug for chunks::Chunks<OnceLock<Arc<LotAttributes>>> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks").field("capacity", &self.capacity()).finish()
    }
}

impl core::fmt::Debug for chunks::Chunks<VWord> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks").field("capacity", &self.capacity()).finish()
    }
}

impl core::fmt::Debug for Extra {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Extra").field("fresh", &self.fresh).field("totals", &self.totals).finish_non_exhaustive()
    }
}

impl Extra {
    fn new() -> Extra {
        Extra {
            fresh: VWord::new(0, NEVER),
            index: SnapshotCell::new(Arc::new(DeadlineIndex::default())),
            totals: VWord::new(0, 0),
            memo: AtomicU128::new(0),
            attributes: chunks::Chunks::new(),
            lot_ext: chunks::Chunks::new(),
            lot_back: chunks::Chunks::new(),
            quiet_until: AtomicU64::new(0),
        }
    }
}

/// One SKU (see the module docs).
pub(crate) struct SkuCell {
    head: AtomicU128,
    /// The latest version known fully applied (a hint).
    applied: AtomicU64,
    /// Unique per cell: descriptors name the cell they change.
    id: u64,
    pub(crate) sku: SkuId,
    pub(crate) policy: AllocationPolicy,
    /// Whether changes keep the totals word (events are on).
    totals_on: bool,
    /// A lower bound on the earliest deadline of a live hold.
    due: VWord,
    /// Receipts plus growth adjustments: the bound on every counter.
    inflow: VWord,
    lots: Lots,
    structure: SnapshotCell<Structure>,
    slots: OnceLock<Box<Slots>>,
    extra: OnceLock<Box<Extra>>,
    /// The latest version whose record the journal has ([`JOURNALED_NONE`]:
    /// not even the definition's yet); unused without a journal.
    journaled: AtomicU64,
}

/// [`SkuCell::journaled`] before the SKU's definition is recorded.
pub(crate) const JOURNALED_NONE: u64 = u64::MAX;

/// Fills a small change's record keeps on the stack (more spill to the
/// heap): a hold of up to this many lines.
const RECORD_FILLS_INLINE: usize = 4;

/// How long a change waits for the record of the version before its own
/// to reach the journal (its lander is between its compare-and-swap and
/// its append): past this, the lander is gone, which is a bug to stop at.
const JOURNAL_ORDER_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl core::fmt::Debug for SkuCell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Relaxed: a debug print, nothing is decided on it.
        let head = Head::unpack(self.head.load(Ordering::Relaxed));
        f.debug_struct("SkuCell").field("sku", &self.sku).field("head", &head).finish_non_exhaustive()
    }
}

/// A version one call published: a sweep, or the call's own change.
pub(crate) enum Landed<'a, R> {
    Swept(&'a Swept, Transition),
    Step(&'a R, Transition),
}

/// What the events of a published version need to know besides the
/// outcome: available units before and after (when totals are kept), the
/// low-stock notice it fires (the stock the rule counts, and the
/// threshold), the lot-expiry horizon before, and the backorders the
/// change filled.
#[derive(Clone, Debug, Default)]
pub(crate) struct Transition {
    pub(crate) version: u64,
    pub(crate) available: Option<(Quantity, Quantity)>,
    pub(crate) low_stock: Option<(Quantity, Quantity)>,
    pub(crate) checked_before: Option<Timestamp>,
    pub(crate) filled: Vec<backorder::Filled>,
}

/// What a computation step decided.
pub(crate) enum Step<T, E> {
    /// Publish the drafted change; `T` is its outcome.
    Change(T),
    /// Refuse: nothing changes.
    Refuse(E),
}

impl SkuCell {
    pub(crate) fn new(sku: SkuId, policy: AllocationPolicy, totals_on: bool) -> SkuCell {
        let head = Head { version: 0, desc: 0, cursor: 0, lots: 0, flags: 0 };
        let extra = OnceLock::new();
        if totals_on {
            let _ = extra.set(Box::new(Extra::new()));
        }
        SkuCell {
            head: AtomicU128::new(head.pack()),
            applied: AtomicU64::new(0),
            id: unique_id(),
            sku,
            policy,
            totals_on,
            due: VWord::new(0, NEVER),
            inflow: VWord::new(0, 0),
            lots: Lots::default(),
            structure: SnapshotCell::new(Structure::initial()),
            slots: OnceLock::new(),
            extra,
            journaled: AtomicU64::new(JOURNALED_NONE),
        }
    }

    /// Records that the journal has every version up to `version` (the
    /// definition's record, or a restored image's version).
    pub(crate) fn journaled_through(&self, version: u64) {
        // Release: pairs with the Acquire in `journal_in_order`.
        self.journaled.store(version, Ordering::Release);
    }

    /// Runs `append` (the record of change `version`) once the record of
    /// `version - 1` is appended, then lets `version + 1`'s run: a SKU's
    /// records reach the journal in version order. The wait is for a
    /// lander between its compare-and-swap and its own append.
    fn journal_in_order(&self, version: u64, append: impl FnOnce()) {
        let backoff = Backoff::new();
        let mut started = None;
        // Acquire: pairs with the Release store below (or in
        // `journaled_through`) of the previous version's appender.
        while self.journaled.load(Ordering::Acquire) != version - 1 {
            backoff.snooze();
            let started = *started.get_or_insert_with(std::time::Instant::now);
            assert!(
                started.elapsed() < JOURNAL_ORDER_WAIT_MAX,
                "{}: the record of version {} never reached the journal",
                self.sku,
                version - 1
            );
        }
        append();
        // Release: pairs with the Acquire above, in the next version's
        // appender.
        self.journaled.store(version, Ordering::Release);
    }

    /// Hands the record of a change a fast path landed (`effects`, and
    /// the slot it filled, if any) to the journal, if the ledger keeps
    /// one, in version order, as `publish` does for the general path.
    #[inline]
    pub(crate) fn record_fast(&self, ctx: &Ctx, head: Head, effects: &[Effect], fill: Option<(u32, u64, slots::Fill)>) {
        if let Some(sink) = ctx.journal {
            // Borrowed, not copied: recording allocates nothing here.
            let fill = fill.as_ref().map(record::FillRecord::of);
            let record = record::Change::borrowed(self.sku, ctx.moment.taken(), head, effects, fill.as_slice());
            self.journal_in_order(head.version, || sink.append(&record));
        }
    }

    fn extra(&self) -> &Extra {
        self.extra.get_or_init(|| Box::new(Extra::new()))
    }

    fn quiet_until(&self) -> &AtomicU64 {
        &self.extra().quiet_until
    }

    /// The head as it is now, packed (for waiters comparing it to the head
    /// they settled on).
    fn head_raw(&self) -> u128 {
        // Acquire: pairs with the head's AcqRel compare-and-swaps, as in
        // `settle`.
        self.head.load(Ordering::Acquire)
    }

    /// Replaces the head `expected` by `new` of the same version (only the
    /// quiet flag differs; see [`quiet`]). False if the head moved.
    fn swap_head(&self, expected: u128, new: u128) -> bool {
        debug_assert_eq!(Head::unpack(expected).version, Head::unpack(new).version);
        // AcqRel: Release publishes `quiet_until` (stored before) to the
        // waiters that load this head; Acquire as `settle`'s load.
        self.head.compare_exchange(expected, new, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// A view of the SKU with the head's last change fully applied
    /// (step 1 of the protocol).
    pub(crate) fn settle(&self, registry: &Registry) -> View<'_> {
        // Acquire: pairs with the head's AcqRel compare-and-swap (the
        // descriptor and privately filled slots are visible).
        let view = View::new(self, self.head.load(Ordering::Acquire));
        let head = view.head;
        // Acquire: pairs with `applied`'s Release store after the effects.
        if head.desc == 0 || self.applied.load(Ordering::Acquire) >= head.version {
            return view;
        }
        if let Some(published) = registry.get(head.desc).read(self.id, head.version) {
            match &published {
                Published::Inline(effects) => self.apply(head.version, effects.iter().copied(), None),
                Published::Big(big) => self.apply(head.version, big.effects.iter().copied(), Some(big)),
            }
        }
        // Release: pairs with the Acquire above; every effect of this
        // version is written (by us, or by its owner before it moved on).
        self.applied.store(head.version, Ordering::Release);
        view
    }

    /// Writes change `version`'s effects (step 4, or helping).
    fn apply(&self, version: u64, effects: impl IntoIterator<Item = Effect>, big: Option<&Big>) {
        if let Some(big) = big {
            for init in &big.lots {
                let lot = self.lots.ensure(init.arrival);
                lot.set_facts(&init.facts);
                lot.word.set_at(version, init.payload);
                if let Some(attributes) = &init.attributes {
                    let _ = self.extra().attributes.ensure(init.arrival).set(Arc::clone(attributes));
                }
            }
            if let Some((old, new)) = &big.structure {
                // A late helper finds a newer structure and leaves it.
                let _ = self.structure.compare_and_swap(old, Arc::clone(new));
            }
            if let Some((old, new)) = &big.index {
                let _ = self.extra().index.compare_and_swap(old, Arc::clone(new));
            }
        }
        for effect in effects {
            self.word(effect.target).set_at(version, effect.payload);
            if let Target::Slot(index) = effect.target {
                if effect.payload == slots::Main::Free.payload() {
                    // The next claim looks at the slot just freed first.
                    self.slots.get().expect("a slot effect names an installed slot").freed(index);
                }
            }
        }
    }

    /// The versioned word an effect targets.
    fn word(&self, target: Target) -> &VWord {
        match target {
            Target::Lot(arrival) => &self.lots.get(arrival).word,
            Target::Slot(index) | Target::SlotDeadline(index) | Target::SlotExt(index) => {
                let slot = self.slots.get().and_then(|slots| slots.get(index)).expect("effects name installed slots");
                match target {
                    Target::Slot(_) => &slot.main,
                    Target::SlotDeadline(_) => &slot.deadline,
                    _ => &slot.ext,
                }
            }
            Target::Due => &self.due,
            Target::Fresh => &self.extra().fresh,
            Target::Totals => &self.extra().totals,
            Target::Inflow => &self.inflow,
            Target::LotExt(arrival) => self.extra().lot_ext.ensure(arrival),
            Target::LotBack(arrival) => self.extra().lot_back.ensure(arrival),
        }
    }

    /// Runs one change: sweeps of lapsed holds first (each its own
    /// version, heard by `landed`), then `compute` on a settled view,
    /// published by compare-and-swap (see the module docs). `compute` gets
    /// the sweeps this call published, to tell "it lapsed" from "it ended".
    pub(crate) fn change<T, E>(
        &self,
        ctx: &Ctx,
        landed: &mut dyn FnMut(Landed<'_, T>),
        mut compute: impl FnMut(&mut Draft, &[Swept]) -> Result<Step<T, E>, Stale>,
        contended: impl FnOnce(u32) -> E,
    ) -> Result<T, E> {
        let backoff = Backoff::new();
        let mut swept = Vec::new();
        let mut claimed = ClaimPool::default();
        let mut quiet = Quiet::default();
        let mut published = 0;
        let result = 'attempts: {
            for _ in 0..ATTEMPTS_MAX {
                let view = self.settle_to_write(ctx.registry, &mut quiet);
                let now = view.head.has(head::DEADLINES).then(|| ctx.moment.now());
                let Ok(maintenance) = maintain::check(&view, now) else {
                    quiet.lost();
                    backoff.snooze();
                    continue;
                };
                let bookkeeping = maintenance.as_ref().map(|maintenance| &maintenance.bookkeeping);
                if let Some(sweep) = maintenance.as_ref().and_then(|maintenance| maintenance.sweep.clone()) {
                    let attempt = self.publish(ctx, &view, &mut claimed, |draft| {
                        maintain::apply(draft, bookkeeping)?;
                        Ok(Step::<Swept, ()>::Change(sweep))
                    });
                    match attempt {
                        Ok(Some((sweep, transition, used))) => {
                            // A sweep that filled backorders published slots.
                            claimed.landed(used);
                            landed(Landed::Swept(&sweep, transition));
                            swept.push(sweep);
                        }
                        _ => {
                            quiet.lost();
                            backoff.snooze();
                        }
                    }
                    continue;
                }
                let attempt = self.publish(ctx, &view, &mut claimed, |draft| {
                    maintain::apply(draft, bookkeeping)?;
                    compute(draft, &swept)
                });
                match attempt {
                    Ok(Some((outcome, transition, used))) => {
                        published = used;
                        landed(Landed::Step(&outcome, transition));
                        break 'attempts Ok(outcome);
                    }
                    Ok(None) | Err(Publish::Stale) => {
                        quiet.lost();
                        backoff.snooze();
                    }
                    Err(Publish::Refused(error)) => break 'attempts Err(error),
                }
            }
            Err(contended(ATTEMPTS_MAX))
        };
        self.end_quiet(&quiet);
        claimed.release(self, ctx.desc.0, published);
        result
    }

    /// Reads the SKU at its current version, once no hold in it has lapsed
    /// at the operation's instant: sweeps first if one has (each sweep a
    /// version of its own, heard by `landed` and added to `swept`). `None`
    /// after [`ATTEMPTS_MAX`] rounds in which writers kept moving the SKU.
    pub(crate) fn query<R>(
        &self,
        ctx: &Ctx,
        landed: &mut dyn FnMut(Landed<'_, ()>),
        swept: &mut Vec<Swept>,
        mut read: impl FnMut(&View) -> Result<R, Stale>,
    ) -> Option<R> {
        let backoff = Backoff::new();
        let mut claimed = ClaimPool::default();
        let mut result = None;
        for _ in 0..ATTEMPTS_MAX {
            let view = self.settle(ctx.registry);
            let now = view.head.has(head::DEADLINES).then(|| ctx.moment.now());
            let Ok(maintenance) = maintain::check(&view, now) else {
                backoff.snooze();
                continue;
            };
            if let Some(sweep) = maintenance.as_ref().and_then(|maintenance| maintenance.sweep.clone()) {
                if view.head.has(head::QUIET) {
                    // Publishing the sweep is a write: it waits its turn.
                    self.wait_out_quiet(&view);
                    continue;
                }
                let bookkeeping = maintenance.as_ref().map(|maintenance| &maintenance.bookkeeping);
                let attempt = self.publish(ctx, &view, &mut claimed, |draft| {
                    maintain::apply(draft, bookkeeping)?;
                    Ok(Step::<Swept, ()>::Change(sweep))
                });
                match attempt {
                    Ok(Some((sweep, transition, used))) => {
                        claimed.landed(used);
                        landed(Landed::Swept(&sweep, transition));
                        swept.push(sweep);
                    }
                    _ => backoff.snooze(),
                }
                continue;
            }
            match read(&view) {
                Ok(read) => {
                    result = Some(read);
                    break;
                }
                Err(Stale) => backoff.snooze(),
            }
        }
        // Slots a lost sweep attempt claimed and no sweep published.
        claimed.release(self, ctx.desc.0, 0);
        result
    }

    /// Runs one explicit sweep: `compute` drafts it on a settled view, or
    /// says there is nothing to sweep (`Err(())`, also after
    /// [`ATTEMPTS_MAX`] lost races).
    pub(crate) fn sweep_only(
        &self,
        ctx: &Ctx,
        landed: &mut dyn FnMut(Landed<'_, Swept>),
        mut compute: impl FnMut(&mut Draft) -> Result<Option<Swept>, Stale>,
    ) -> Result<Swept, ()> {
        let backoff = Backoff::new();
        let mut claimed = ClaimPool::default();
        let mut quiet = Quiet::default();
        let mut result = Err(());
        for _ in 0..ATTEMPTS_MAX {
            let view = self.settle_to_write(ctx.registry, &mut quiet);
            let attempt = self.publish(ctx, &view, &mut claimed, |draft| {
                Ok(match compute(draft)? {
                    Some(swept) => Step::Change(swept),
                    None => Step::Refuse(()),
                })
            });
            match attempt {
                Ok(Some((swept, transition, used))) => {
                    claimed.landed(used);
                    landed(Landed::Swept(&swept, transition));
                    result = Ok(swept);
                    break;
                }
                Ok(None) | Err(Publish::Stale) => {
                    quiet.lost();
                    backoff.snooze();
                }
                Err(Publish::Refused(())) => break,
            }
        }
        self.end_quiet(&quiet);
        claimed.release(self, ctx.desc.0, 0);
        result
    }

    /// Computes one attempt on `view` and tries to publish it: `Ok(Some)`
    /// landed (with the number of claimed slots it published), `Ok(None)`
    /// lost the race, `Err` refused or stale.
    fn publish<T, E>(
        &self,
        ctx: &Ctx,
        view: &View,
        claimed: &mut ClaimPool,
        compute: impl FnOnce(&mut Draft) -> Result<Step<T, E>, Stale>,
    ) -> Result<Option<(T, Transition, usize)>, Publish<E>> {
        let mut draft = Draft::new(view, claimed);
        let outcome = match compute(&mut draft).map_err(|Stale| Publish::Stale)? {
            Step::Change(outcome) => outcome,
            Step::Refuse(error) => return Err(Publish::Refused(error)),
        };
        let version = view.version() + 1;
        assert!(version <= VERSION_MAX, "{} reached 2^48 changes: a bug to stop at", self.sku);
        let stale = |Stale| Publish::Stale;
        let filled = if draft.gave && draft.flags & head::BACKORDERS != 0 {
            backorder::fill_waiting(&mut draft, ctx.desc.0, &|| ctx.moment.now()).map_err(stale)?
        } else {
            Vec::new()
        };
        let mut transition = if self.totals_on {
            let transition = self.transition(view, &mut draft).map_err(stale)?;
            if let Some((available, held)) = draft_totals(view, &draft).map_err(stale)? {
                draft.effect(Target::Totals, put(available.get(), 0, 40) | put(held.get(), 40, 40));
            }
            transition
        } else {
            Transition { version, ..Transition::default() }
        };
        transition.filled = filled;
        let big = if draft.word_effect_count() > desc::INLINE_MAX || draft.is_structural() {
            let old_structure = match draft.structure {
                Some(_) => Some(Arc::clone(view.structure().map_err(stale)?)),
                None => None,
            };
            let old_index = draft.index.is_some().then(|| self.extra().index.load_full());
            Some(Arc::new(Big {
                effects: draft.word_effects().collect(),
                lots: core::mem::take(&mut draft.lot_inits),
                structure: old_structure.zip(draft.structure.take()),
                index: old_index.zip(draft.index.take()),
            }))
        } else {
            None
        };
        let head = draft.head(ctx.desc.0);
        let landed = match &big {
            Some(big) => self.land(ctx, view, head, big.effects.iter().copied(), Some(big)),
            None => self.land(ctx, view, head, draft.word_effects(), None),
        };
        if let (true, Some(sink)) = (landed, ctx.journal) {
            let instant = ctx.moment.taken();
            match &big {
                Some(big) => {
                    let structure = big.structure.as_ref().map(|(_, new)| &**new);
                    let fills = draft.fills();
                    let record =
                        record::Change::new(self.sku, instant, head, &big.effects, &big.lots, structure, fills);
                    self.journal_in_order(head.version, || sink.append(&record));
                }
                None => {
                    // At most `INLINE_MAX` effects (more take the `big`
                    // way), and a fill per line: on the stack, so a small
                    // change's record allocates nothing.
                    let effects: SmallVec<[Effect; desc::INLINE_MAX]> = draft.word_effects().collect();
                    let fills: SmallVec<[record::FillRecord; RECORD_FILLS_INLINE]> =
                        draft.fills().iter().map(record::FillRecord::of).collect();
                    let record = record::Change::borrowed(self.sku, instant, head, &effects, &fills);
                    self.journal_in_order(head.version, || sink.append(&record));
                }
            }
        }
        Ok(landed.then(|| (outcome, transition, draft.used())))
    }

    /// Steps 3 and 4 of the protocol: records the change in this thread's
    /// descriptor, publishes `head` (the next version) by compare-and-swap
    /// from the head `view` was settled on, and applies the effects. False
    /// if another change landed first (nothing was published).
    pub(crate) fn land<I: Iterator<Item = Effect> + Clone>(
        &self,
        ctx: &Ctx,
        view: &View,
        head: Head,
        effects: I,
        big: Option<&Arc<Big>>,
    ) -> bool {
        if !self.install(ctx, view, head, effects.clone(), big) {
            return false;
        }
        self.apply(head.version, effects, big.map(|big| &**big));
        self.finished(head.version);
        true
    }

    /// Step 3 alone: records the change in this thread's descriptor and
    /// publishes `head` by compare-and-swap. After a true, the caller
    /// applies the effects (it may, knowing what each word held) and calls
    /// [`finished`](Self::finished).
    pub(crate) fn install<I: Iterator<Item = Effect>>(
        &self,
        ctx: &Ctx,
        view: &View,
        head: Head,
        effects: I,
        big: Option<&Arc<Big>>,
    ) -> bool {
        assert!(head.version == view.version() + 1 && head.version <= VERSION_MAX, "a change is the next version");
        ctx.desc.1.write(self.id, head.version, effects, big.cloned());
        // AcqRel: Release publishes the descriptor and privately filled
        // slots (see `# Orderings`); Acquire on failure, as a load would.
        self.head.compare_exchange(view.raw, head.pack(), Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Step 4's end: every effect of `version` is written.
    #[inline]
    pub(crate) fn finished(&self, version: u64) {
        // Release: see `settle`.
        self.applied.store(version, Ordering::Release);
    }

    /// What the events of this change need (see [`Transition`]); decides
    /// the low-stock rule's notice and leaves its armed bit in the draft's
    /// flags, so the head's compare-and-swap publishes it with the change.
    fn transition(&self, view: &View, draft: &mut Draft) -> Result<Transition, Stale> {
        let structure = view.structure()?;
        let rule_before = structure.low_stock;
        let rule_after = draft.structure.as_ref().map_or(rule_before, |next| next.low_stock);
        let totals_after = draft_totals(view, draft)?;
        let available = match totals_after {
            Some((after, _)) => Some((view.totals()?.map_or(Quantity::ZERO, |totals| totals.0), after)),
            None => None,
        };
        let mut low_stock = None;
        let armed = match (rule_after, totals_after) {
            (Some(rule), Some((available, held))) => {
                let stock = rule.stock(available, held);
                if rule_before == rule_after {
                    let decision = rule.decide(!view.head.has(head::DISARMED), stock);
                    if decision.fire {
                        // stock <= threshold <= Quantity::MAX: the rule was validated.
                        let quantity = |n| Quantity::new(n).expect("a validated threshold bounds it");
                        low_stock = Some((quantity(stock), quantity(rule.threshold)));
                    }
                    decision.armed
                } else {
                    rule.armed_at(stock)
                }
            }
            _ => true,
        };
        if armed {
            draft.flags &= !head::DISARMED;
        } else {
            draft.flags |= head::DISARMED;
        }
        Ok(Transition {
            version: view.version() + 1,
            available,
            low_stock,
            checked_before: structure.lots_checked_until,
            filled: Vec::new(),
        })
    }
}

/// Why an attempt did not publish.
enum Publish<E> {
    Stale,
    Refused(E),
}

/// The totals after `draft`, when the cell keeps them.
fn draft_totals(view: &View, draft: &Draft) -> Result<Option<(Quantity, Quantity)>, Stale> {
    let Some((available, held)) = view.totals()? else { return Ok(None) };
    let shift = |quantity: Quantity, delta: i64| {
        let value = i128::from(quantity.get()) + i128::from(delta);
        Quantity::new(u64::try_from(value).expect("totals never go negative")).expect("totals stay within MAX")
    };
    Ok(Some((shift(available, draft.totals.0), shift(held, draft.totals.1))))
}
