//! Idempotency keys: a command retried with the same key is applied at most
//! once within a window, and every retry gets the first outcome back.
//!
//! Owns: [`IdempotencyKey`] (validated, 1..=[`KEY_LEN_MAX`] bytes) and its
//! [`KeyError`], the [`KeyWindow`] that bounds what is remembered, and the
//! `pub(crate)` engine `KeyStore`, which the ledger wraps around any command
//! that carries a key. The store is generic over the command `C` and the
//! recorded result `R`, so it knows nothing of the ledger.
//!
//! Must never: apply a keyed command twice while its key is remembered, turn
//! a recorded refusal into a success, change what is recorded for a key
//! when a different command arrives with it, leave a key in flight after its
//! attempt ended (returned or panicked), or make a command wait on another
//! key. Un-keyed commands never come here.
//!
//! # Contract of `KeyStore::run`
//!
//! `run(key, command, now, apply, is_final)`:
//!
//! 1. **Replay.** The key is recorded with a final result for an equal
//!    command: `Replayed(that result)`, and `apply` is not called. A final
//!    *error* is recorded like a success: retrying a refused command with
//!    the same key is refused again, never granted.
//! 2. **Conflict.** The key is recorded with a different command:
//!    `Conflict(the first command)`; nothing is applied and nothing recorded
//!    changes. If the different command is still in flight, this call waits
//!    for that attempt like a duplicate does: when it records its result,
//!    `Conflict`; when it frees the key (transient, or a panic), this call
//!    claims the key afresh. (Answering at once would let the caller see the
//!    SKU without the first command's effect after being told its key was
//!    taken: not linearizable.)
//! 3. **Racing duplicates.** Of several equal commands with one key running
//!    at once, exactly one claims the key and calls `apply`; the others wait
//!    for that attempt and return `Replayed` with its result. If the result
//!    is transient (`is_final` is false) it is not recorded and the key is
//!    freed: the waiters go back to claiming, and one of them applies.
//! 4. **Panics.** If `apply` (or `is_final`, or a clone) panics, a drop
//!    guard frees the key, the waiters go back to claiming, and the panic
//!    propagates to the caller.
//! 5. **Window.** A recorded key is remembered while `now < recorded_at +
//!    window` (both instants are the `now`s passed in; a clock that goes
//!    backwards only remembers longer). Past that it is absent: the next
//!    command with the key, any command, claims it afresh. Forgetting never
//!    removes a key in flight, nor a newer entry recorded for the same key
//!    after the one being forgotten (entries carry an identity, checked
//!    before removal).
//! 6. **Room.** The table holds at most `keys_max` entries (recorded, in
//!    flight, or expired and not yet swept; racing claims of new keys can
//!    pass the bound by none: the count is taken by `fetch_add` before the
//!    insert). A claim of a new key when it is full first forgets up to
//!    [`FULL_SWEEP_MAX`] expired entries from the front of the record
//!    order; if it is still full, the call returns `Full` and applies
//!    nothing. A key inside its window is never forgotten to make room:
//!    that would let a retry of it apply twice.
//!
//! `Applied(r)` means this call ran `apply`, which returned `r` (recorded if
//! final).
//!
//! # Waiting, and who waits
//!
//! A duplicate of an in-flight command waits for that attempt, because it
//! must return that attempt's outcome: there is nothing correct it could
//! return sooner. So does a different command with the same key: whether it
//! conflicts or claims depends on how that attempt ends. It waits on the attempt itself (a small shared cell), not
//! on the map, spinning with the facade's `Backoff` (crossbeam's: spin, then
//! yield the thread; a plain yield under loom and shuttle). The wait is
//! bounded by the in-flight attempt, which ends when `apply` returns or
//! panics (the ledger's commands are themselves bounded: a compare-and-swap
//! loop of at most `ATTEMPTS_MAX` tries). A waiter that sees the attempt end
//! transiently claims again; every such round is one completed attempt, so
//! the system as a whole progresses. There is no count bound on top: on
//! reaching one, a waiter could neither apply (a second application) nor
//! replay (there is no result yet), and the store has no "busy" answer.
//! (So `apply` must not run its own key again: it would wait on itself.)
//!
//! Commands with other keys never wait on each other: the only shared
//! locks are the key table's shard locks (dashmap), held for one map
//! operation (a lookup, a claim, a record, a removal; never across `apply`),
//! and the record-order queue's mutex, taken once per recorded result for
//! O(1) work (one push, at most one eviction, at most [`SWEEP_MAX`] expired
//! entries). Both are on the keyed path only; a command without a key
//! touches neither.
//!
//! # Memory
//!
//! The table holds at most `keys_max` entries, recorded or in flight. The
//! record-order queue holds one item per entry recorded and not yet
//! forgotten, plus items whose entry was replaced after its window (they
//! count until they reach the front, and they are expired, so the sweep
//! drops them on reaching them). A claim racing a refused one at the bound
//! may be refused too (the refused claim's count is undone just after);
//! its retry finds the room. What a key remembers is packed by the
//! command type's [`Pack`]: the table keeps the packed form (the ledger's is
//! one heap block of postcard bytes holding the command and its result,
//! about 20 bytes for a one-unit sale), and unpacks it to replay, to
//! compare a retry, or to image the store. Per recorded key, on a 64-bit
//! target:
//!
//! - the table slot, `size_of::<(IdempotencyKey, Slot<C, R>)>()`: the
//!   key's 16 bytes, the packed record's size and 24 more (56 for the
//!   ledger's), plus dashmap's per-bucket byte and growth slack (tables
//!   grow by doubling, so up to about twice that);
//! - the key's text, one shared allocation: 16 + its length (at most 128)
//!   bytes, plus whatever heap memory the packed record owns;
//! - one queue item, 32 bytes (`VecDeque` growth: up to twice that).
//!
//! For the ledger, with 36-character keys and a one-unit take, that
//! measures 223 bytes per key (`cargo bench --bench memory`; it was 608
//! while the slot held the `Command` and `Result` inline, 272 bytes of
//! enums sized for their largest variants). An in-flight entry also holds
//! an `Arc`'d attempt cell (two counters, a lock and an `R`) until the
//! attempt ends and its waiters have left. Expired entries are swept from
//! the queue's front, a few per record, so under steady traffic they do not
//! linger.
//!
//! # Orderings
//!
//! Every decision about a key (claim, replay, conflict, record, free,
//! evict) is one operation under that key's shard lock, so the operations
//! on one key are totally ordered and each sees the effects of the previous
//! ones: the lock's release/acquire provides the ordering, no atomic does.
//! A waiter reads the attempt's outcome under the attempt cell's lock, which
//! the applying thread takes to publish it. The one atomic, the entry-id
//! counter, needs only uniqueness: `Relaxed` (see [`KeyStore::next_entry`]).

#[cfg(all(test, stockroom_loom))]
mod loom;
mod pack;

pub(crate) use pack::Pack;

use crate::clock::Timestamp;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Backoff, KeyedMap, Mutex, Ordering};
use core::fmt;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::time::Duration;

/// The longest [`IdempotencyKey`], in bytes (UTF-8).
pub const KEY_LEN_MAX: usize = 128;

/// Expired entries forgotten from the front of the record-order queue per
/// recorded result, at most: keeps each record O(1) while the sweep keeps up
/// (every record adds one entry and may forget up to this many).
const SWEEP_MAX: usize = 8;
const _: () = assert!(SWEEP_MAX >= 1, "the sweep must be able to keep up with records");

/// Expired entries a claim that finds the store full forgets, at most,
/// before it refuses (`Claimed::Full`): the store stays full only if fewer
/// than this many of its oldest entries have expired.
const FULL_SWEEP_MAX: usize = 1_024;

/// A caller-chosen key naming one logical command, so that retries of it
/// are recognised: 1 to [`KEY_LEN_MAX`] bytes of UTF-8.
///
/// Cloning is cheap (the text is shared).
///
/// ```
/// use stockroom::{IdempotencyKey, KEY_LEN_MAX, KeyError};
///
/// let key = IdempotencyKey::new("order-8841/attempt")?;
/// assert_eq!(key.as_str(), "order-8841/attempt");
/// assert_eq!(IdempotencyKey::new(""), Err(KeyError::Empty));
/// assert!(IdempotencyKey::new("k".repeat(KEY_LEN_MAX + 1)).is_err());
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct IdempotencyKey(Arc<str>);

/// A string was refused as an [`IdempotencyKey`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    #[error("an idempotency key must not be empty")]
    Empty,
    /// The key is longer than [`KEY_LEN_MAX`] bytes. Carries the length,
    /// not the text: a refused key may be arbitrarily large, and errors get
    /// logged.
    #[error("an idempotency key of {len} bytes is longer than the {max} allowed", max = KEY_LEN_MAX)]
    TooLong {
        /// The refused key's length in bytes.
        len: usize,
    },
}

impl IdempotencyKey {
    /// Checks `key`'s length: 1 to [`KEY_LEN_MAX`] bytes.
    pub fn new(key: impl Into<String>) -> Result<IdempotencyKey, KeyError> {
        let key = key.into();
        match key.len() {
            0 => Err(KeyError::Empty),
            len if len > KEY_LEN_MAX => Err(KeyError::TooLong { len }),
            _ => Ok(IdempotencyKey(Arc::from(key))),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = KeyError;

    fn try_from(key: String) -> Result<IdempotencyKey, KeyError> {
        IdempotencyKey::new(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.as_str().to_owned()
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdempotencyKey").field(&self.as_str()).finish()
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long, and how many, idempotency keys are remembered.
///
/// The caller validates it; the store accepts any value without panicking
/// (a zero `window` or `keys_max` remembers nothing past its own record).
///
/// ```
/// use stockroom::KeyWindow;
///
/// let window = KeyWindow::default();
/// assert_eq!(window.window, std::time::Duration::from_secs(24 * 60 * 60));
/// assert_eq!(window.keys_max, 1_000_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeyWindow {
    /// A recorded key is forgotten this long after it was recorded.
    pub window: Duration,
    /// At most this many keys are remembered at once. A key is never
    /// forgotten inside its window: when this many are remembered and none
    /// has expired, a keyed command with a new key is refused
    /// ([`KeyedError::KeysFull`](crate::KeyedError::KeysFull)) and nothing
    /// is applied. At least 1 (the ledger's builder refuses 0).
    pub keys_max: usize,
}

impl KeyWindow {
    /// 24 hours.
    pub const WINDOW_DEFAULT: Duration = Duration::from_secs(24 * 60 * 60);
    /// One million keys.
    pub const KEYS_MAX_DEFAULT: usize = 1_000_000;
}

impl Default for KeyWindow {
    fn default() -> KeyWindow {
        KeyWindow { window: KeyWindow::WINDOW_DEFAULT, keys_max: KeyWindow::KEYS_MAX_DEFAULT }
    }
}

/// What [`KeyStore::run`] did with a keyed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Claimed<C, R> {
    /// This call ran `apply`; its result was recorded (if final).
    Applied(R),
    /// The key already had a final result for an equal command (or a racing
    /// duplicate just produced one): that result, unchanged.
    Replayed(R),
    /// The key is recorded (or in flight) with a different command: the
    /// first command, so the caller can name what differs.
    Conflict(C),
    /// The key is new and `keys_max` keys are remembered, none of them past
    /// its window: nothing was applied.
    Full,
}

/// One attempt at a key's command, shared with the duplicates waiting for
/// it. Its outcome is set once, by the claimer (or its drop guard).
struct Attempt<R> {
    outcome: Mutex<AttemptState<R>>,
    /// The wakers of the async duplicates awaiting this attempt.
    #[cfg(feature = "async")]
    wakers: crate::waker::WakerSet,
}

impl<R> Attempt<R> {
    fn new() -> Self {
        Attempt {
            outcome: Mutex::new(AttemptState::Running),
            #[cfg(feature = "async")]
            wakers: crate::waker::WakerSet::new(),
        }
    }

    /// Ends the attempt with `state` and wakes its async waiters (after
    /// the state is set: the hand-off of `src/waker.rs`).
    fn end(&self, state: AttemptState<R>) {
        *self.outcome.lock() = state;
        #[cfg(feature = "async")]
        self.wakers.wake_all();
    }
}

enum AttemptState<R> {
    /// `apply` has not returned.
    Running,
    /// `apply` returned a final result, now recorded: replay it.
    Final(R),
    /// `apply` returned a transient result or panicked; the key is free:
    /// claim again.
    Freed,
}

/// A key's entry in the table, its command (and result) packed by
/// [`Pack`]. `entry` is the entry's identity, unique for the store's
/// lifetime: eviction and the claimer's own record or release act only on
/// the entry they know.
enum Slot<C: Pack<R>, R> {
    InFlight { command: C::Packed, attempt: Arc<Attempt<R>>, entry: u64 },
    Recorded { record: C::Record, recorded_at: Timestamp, entry: u64 },
}

/// An item of the record-order queue: the entry recorded for `key` at
/// `recorded_at`, forgotten when it reaches the front past its window or
/// past `keys_max` (unless `key` has a different entry by then).
struct RecordedItem {
    key: IdempotencyKey,
    entry: u64,
    recorded_at: Timestamp,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<RecordedItem>() == 32, "the memory bound in the module docs counts 32 bytes per item");

/// What one claim found.
enum Claim<C, R> {
    /// The key is ours: apply, then record or free entry `entry`.
    Mine {
        entry: u64,
        attempt: Arc<Attempt<R>>,
    },
    /// A command is in flight: wait for this attempt. `differs` is that
    /// command when it is not ours: once the attempt records a result, ours
    /// conflicts with it (and if the attempt frees the key, we claim again).
    Wait {
        attempt: Arc<Attempt<R>>,
        differs: Option<C>,
    },
    Replayed(R),
    Conflict(C),
    /// The key is new and the store holds `keys_max` entries.
    Full,
}

/// What one turn of a keyed call came to.
enum Turn<C, R> {
    /// The call's answer.
    Done(Claimed<C, R>),
    /// Another call's attempt is in flight: wait for it (`differs` as in
    /// [`Claim::Wait`]).
    Wait { attempt: Arc<Attempt<R>>, differs: Option<C> },
}

/// The idempotency key store: remembers, per key, the first command and its
/// final result for [`KeyWindow::window`], at most [`KeyWindow::keys_max`]
/// keys. See the module docs for the contract.
pub(crate) struct KeyStore<C: Pack<R>, R> {
    window: KeyWindow,
    slots: KeyedMap<IdempotencyKey, Slot<C, R>>,
    /// Recorded entries, oldest first. Only the record path locks it.
    order: Mutex<VecDeque<RecordedItem>>,
    entries: AtomicU64,
    /// Entries in `slots` (recorded, past their window and not yet swept,
    /// or in flight), counted as they are inserted and removed: at most
    /// `keys_max`.
    held: AtomicUsize,
}

impl<C: Pack<R>, R> fmt::Debug for KeyStore<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore").field("window", &self.window).field("len", &self.len()).finish()
    }
}

/// True if an entry recorded at `recorded_at` is forgotten at `now`.
fn expired(recorded_at: Timestamp, window: Duration, now: Timestamp) -> bool {
    now >= recorded_at.saturating_add(window)
}

impl<C: Pack<R>, R> KeyStore<C, R> {
    /// An empty store remembering keys for `window`.
    pub(crate) fn new(window: KeyWindow) -> Self {
        KeyStore {
            window,
            slots: KeyedMap::new(),
            order: Mutex::new(VecDeque::new()),
            entries: AtomicU64::new(0),
            held: AtomicUsize::new(0),
        }
    }

    /// Keys currently held: recorded (including any past their window and
    /// not yet swept: they are never replayed) and in flight.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The bounds it keeps.
    pub(crate) fn window(&self) -> KeyWindow {
        self.window
    }
}

impl<C: Pack<R> + Eq, R: Clone> KeyStore<C, R> {
    /// Runs `apply` at most once per key within the window; see the module
    /// docs for the contract. `now` is the command's instant (read once by
    /// the caller). `is_final(&r)` is false for transient results (a
    /// `Contended` refusal, say): those are not recorded and free the key so
    /// a later retry may apply.
    pub(crate) fn run(
        &self,
        key: &IdempotencyKey,
        command: &C,
        now: Timestamp,
        apply: impl FnOnce() -> R,
        is_final: impl Fn(&R) -> bool,
    ) -> Claimed<C, R> {
        let backoff = Backoff::new();
        let mut apply = Some(apply);
        // Each turn either returns or follows an attempt (by another call)
        // that ended transiently: see "Waiting, and who waits".
        loop {
            let (attempt, differs) = match self.turn(key, command, now, &mut apply, &is_final) {
                Turn::Done(claimed) => return claimed,
                Turn::Wait { attempt, differs } => (attempt, differs),
            };
            // Waiting on the attempt, not the map: the key's shard stays free
            // for other keys.
            loop {
                match &*attempt.outcome.lock() {
                    AttemptState::Running => {}
                    AttemptState::Final(result) => {
                        return match differs {
                            None => Claimed::Replayed(result.clone()),
                            Some(first) => Claimed::Conflict(first),
                        };
                    }
                    AttemptState::Freed => break,
                }
                backoff.snooze();
            }
        }
    }

    /// [`run`](Self::run) for async callers: a duplicate whose first
    /// attempt is still in flight awaits it (its task is woken when the
    /// attempt ends) instead of spinning. The contract is `run`'s; `apply`
    /// itself is synchronous (the ledger's commands are), so a claimer
    /// runs it within one poll.
    #[cfg(feature = "async")]
    pub(crate) async fn run_async(
        &self,
        key: &IdempotencyKey,
        command: &C,
        now: Timestamp,
        apply: impl FnOnce() -> R,
        is_final: impl Fn(&R) -> bool,
    ) -> Claimed<C, R> {
        let mut apply = Some(apply);
        // Each turn either returns or follows an attempt (by another call)
        // that ended transiently, as in `run`.
        loop {
            let (attempt, differs) = match self.turn(key, command, now, &mut apply, &is_final) {
                Turn::Done(claimed) => return claimed,
                Turn::Wait { attempt, differs } => (attempt, differs),
            };
            if let Some(result) = (AttemptEnd { attempt: &attempt }).await {
                return match differs {
                    None => Claimed::Replayed(result),
                    Some(first) => Claimed::Conflict(first),
                };
            }
        }
    }

    /// One turn of `run` and `run_async`: claims the key and, if it is
    /// ours, applies the command (taking `apply`: a turn that applies
    /// returns, so it is taken at most once) and records a final result;
    /// otherwise says what the key holds or which attempt to wait for.
    fn turn(
        &self,
        key: &IdempotencyKey,
        command: &C,
        now: Timestamp,
        apply: &mut Option<impl FnOnce() -> R>,
        is_final: &impl Fn(&R) -> bool,
    ) -> Turn<C, R> {
        Turn::Done(match self.claim_or_sweep(key, command, now) {
            Claim::Replayed(result) => Claimed::Replayed(result),
            Claim::Conflict(first) => Claimed::Conflict(first),
            Claim::Full => Claimed::Full,
            Claim::Mine { entry, attempt } => {
                let guard = InFlightGuard { store: self, key, entry, attempt, recorded: false };
                let result = apply.take().expect("a turn that applies ends the call")();
                if is_final(&result) {
                    guard.record(command, &result, now);
                }
                // A transient result: the guard's drop frees the key.
                Claimed::Applied(result)
            }
            Claim::Wait { attempt, differs } => return Turn::Wait { attempt, differs },
        })
    }

    /// [`claim`](Self::claim); if the store is full, forgets up to
    /// [`FULL_SWEEP_MAX`] expired entries and claims once more.
    fn claim_or_sweep(&self, key: &IdempotencyKey, command: &C, now: Timestamp) -> Claim<C, R> {
        match self.claim(key, command, now) {
            Claim::Full => {
                self.forget_expired(now, FULL_SWEEP_MAX);
                self.claim(key, command, now)
            }
            claim => claim,
        }
    }

    /// One atomic look at `key` (under its shard lock): claims it if absent
    /// (and the store has room) or expired, else says what is there.
    fn claim(&self, key: &IdempotencyKey, command: &C, now: Timestamp) -> Claim<C, R> {
        // Packed before the shard lock (a new key is the common case): the
        // lock is held for the map operation only.
        let packed = core::cell::Cell::new(Some(command.pack()));
        let fresh = || {
            let entry = self.next_entry();
            let attempt = Arc::new(Attempt::new());
            let command = packed.take().unwrap_or_else(|| command.pack());
            let slot = Slot::InFlight { command, attempt: Arc::clone(&attempt), entry };
            (slot, Claim::Mine { entry, attempt })
        };
        self.slots.entry(
            key.clone(),
            |slot| match slot {
                Slot::Recorded { recorded_at, .. } if expired(*recorded_at, self.window.window, now) => {
                    // Forgotten: any command may take the key. Its queue item
                    // stays and, by identity, will not remove this entry.
                    let (fresh_slot, claim) = fresh();
                    *slot = fresh_slot;
                    claim
                }
                Slot::Recorded { record, .. } => {
                    let first = C::record_command(record);
                    if first == *command { Claim::Replayed(C::record_result(record)) } else { Claim::Conflict(first) }
                }
                Slot::InFlight { command: first, attempt, .. } => {
                    // A different command waits too: answering "conflict"
                    // before the first command has taken effect would let
                    // its caller observe the SKU without that effect after
                    // being told the key was used (not linearizable).
                    let first = C::unpack(first);
                    let differs = (first != *command).then_some(first);
                    Claim::Wait { attempt: Arc::clone(attempt), differs }
                }
            },
            || {
                // Relaxed: a capacity count. Its increments and decrements
                // each go with an insertion or removal made under a shard
                // lock; the count only decides room, and a race between two
                // claims for the last place lets one through, which
                // `fetch_add` decides.
                if self.held.fetch_add(1, Ordering::Relaxed) >= self.window.keys_max {
                    // Relaxed: undoes the increment above.
                    self.held.fetch_sub(1, Ordering::Relaxed);
                    return (None, Claim::Full);
                }
                let (slot, claim) = fresh();
                (Some(slot), claim)
            },
        )
    }

    /// Removes the entry `item` recorded, if it is still that entry (never
    /// one in flight, never a newer entry for the same key).
    fn forget(&self, item: &RecordedItem) {
        let removed = self
            .slots
            .remove_if(&item.key, |slot| matches!(slot, Slot::Recorded { entry, .. } if *entry == item.entry));
        if removed {
            // Relaxed: the capacity count (see `claim`).
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Forgets up to `max` expired entries from the front of the record
    /// order (the queue lock, then the removals: never nested).
    fn forget_expired(&self, now: Timestamp, max: usize) {
        let mut forgotten = Vec::new();
        self.pop_expired(&mut self.order.lock(), now, max, &mut forgotten);
        for item in &forgotten {
            self.forget(item);
        }
    }

    /// Moves up to `max` items past their window at `now` from the front of
    /// the record order into `into`, stopping at the first one inside it.
    fn pop_expired(
        &self,
        order: &mut VecDeque<RecordedItem>,
        now: Timestamp,
        max: usize,
        into: &mut impl Extend<RecordedItem>,
    ) {
        for _ in 0..max {
            match order.front() {
                Some(front) if expired(front.recorded_at, self.window.window, now) => into.extend(order.pop_front()),
                _ => break,
            }
        }
    }

    /// A fresh entry identity.
    fn next_entry(&self) -> u64 {
        // Relaxed: only uniqueness matters, and read-modify-writes of one
        // atomic are totally ordered whatever the ordering. 2^64 claims do
        // not happen.
        self.entries.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends a recorded entry to the record-order queue and forgets what
    /// fell out of the window at its front: O(1) under the queue lock,
    /// removals after it (never nesting the queue lock with a shard lock).
    /// Nothing is forgotten by count: a full store refuses new keys.
    fn remember(&self, item: RecordedItem, now: Timestamp) {
        let mut forgotten: SmallVec<[RecordedItem; SWEEP_MAX]> = SmallVec::new();
        {
            let mut order = self.order.lock();
            order.push_back(item);
            self.pop_expired(&mut order, now, SWEEP_MAX, &mut forgotten);
        }
        for item in &forgotten {
            self.forget(item);
        }
    }
}

/// One recorded key, as a ledger image keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct KeyRecord<C, R> {
    pub(crate) key: IdempotencyKey,
    pub(crate) command: C,
    pub(crate) result: R,
    pub(crate) recorded_at: Timestamp,
}

/// Why [`KeyStore::restore`] refused its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestoreKeysError {
    /// More records than `keys_max`: which would mean forgetting keys
    /// inside their window.
    TooMany { records: usize, keys_max: usize },
    /// Two records of one key.
    Duplicate,
}

impl<C: Pack<R> + Eq, R: Clone> KeyStore<C, R> {
    /// Every key recorded and still inside its window at `now`, in record
    /// order (in-flight keys are not: their commands have not answered).
    /// The queue lock, then each key's shard lock: never nested.
    pub(crate) fn recorded(&self, now: Timestamp) -> Vec<KeyRecord<C, R>> {
        let items: Vec<(IdempotencyKey, u64)> = self
            .order
            .lock()
            .iter()
            .filter(|item| !expired(item.recorded_at, self.window.window, now))
            .map(|item| (item.key.clone(), item.entry))
            .collect();
        let mut records = Vec::with_capacity(items.len());
        for (key, entry) in items {
            let found = self.slots.update(&key, |slot| match slot {
                Slot::Recorded { record, recorded_at, entry: e } if *e == entry => {
                    Some((C::record_command(record), C::record_result(record), *recorded_at))
                }
                _ => None,
            });
            if let Some(Some((command, result, recorded_at))) = found {
                records.push(KeyRecord { key, command, result, recorded_at });
            }
        }
        records
    }

    /// Remembers `records` (oldest first) as if each had been recorded at
    /// its instant: for a store no command has used yet. Refuses, keeping
    /// nothing, more records than `keys_max` or a key twice.
    pub(crate) fn restore(&self, records: Vec<KeyRecord<C, R>>) -> Result<(), RestoreKeysError> {
        let keys_max = self.window.keys_max;
        if records.len() > keys_max {
            return Err(RestoreKeysError::TooMany { records: records.len(), keys_max });
        }
        let mut seen = std::collections::HashSet::with_capacity(records.len());
        if !records.iter().all(|record| seen.insert(record.key.clone())) {
            return Err(RestoreKeysError::Duplicate);
        }
        let mut order = self.order.lock();
        for KeyRecord { key, command, result, recorded_at } in records {
            let entry = self.next_entry();
            let slot = Slot::Recorded { record: command.pack_record(&result), recorded_at, entry };
            self.slots.entry(key.clone(), |_| unreachable!("keys were checked unique"), || (Some(slot), ()));
            // Relaxed: the capacity count (see `claim`); the store is not
            // shared yet.
            self.held.fetch_add(1, Ordering::Relaxed);
            order.push_back(RecordedItem { key, entry, recorded_at });
        }
        Ok(())
    }
}

/// Awaits the end of an attempt: `Some(result)` if it recorded a final
/// result, `None` if it freed the key (claim again).
#[cfg(feature = "async")]
struct AttemptEnd<'a, R> {
    attempt: &'a Attempt<R>,
}

#[cfg(feature = "async")]
impl<R: Clone> AttemptEnd<'_, R> {
    /// The attempt's end, if it has ended.
    fn ended(&self) -> Option<Option<R>> {
        match &*self.attempt.outcome.lock() {
            AttemptState::Running => None,
            AttemptState::Final(result) => Some(Some(result.clone())),
            AttemptState::Freed => Some(None),
        }
    }
}

#[cfg(feature = "async")]
impl<R: Clone> core::future::Future for AttemptEnd<'_, R> {
    type Output = Option<R>;

    fn poll(self: core::pin::Pin<&mut Self>, context: &mut core::task::Context<'_>) -> core::task::Poll<Option<R>> {
        if let Some(end) = self.ended() {
            return core::task::Poll::Ready(end);
        }
        self.attempt.wakers.register(context.waker());
        // The second look of the hand-off (`src/waker.rs`); the state is
        // set under the lock this look takes, before the wake.
        match self.ended() {
            Some(end) => core::task::Poll::Ready(end),
            None => core::task::Poll::Pending,
        }
    }
}

#[cfg(feature = "async")]
impl crate::ledger::Ledger {
    /// [`execute_keyed`](Self::execute_keyed) for async callers: the same
    /// contract, but a call whose key has an attempt in flight (a racing
    /// duplicate, or a different command under the same key) awaits that
    /// attempt instead of spinning a thread on it; the attempt's end wakes
    /// the task. The command itself runs synchronously inside one poll (it
    /// is bounded and takes no lock that another task could hold).
    ///
    /// ```
    /// use stockroom::{AllocateRequest, AllocationPolicy, Command, IdempotencyKey, Ledger, LotId, NewLot, SkuId};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap().block_on(async {
    /// let ledger = Arc::new(Ledger::new());
    /// ledger.define_sku(SkuId(1), AllocationPolicy::Fifo)?;
    /// ledger.receive(SkuId(1), NewLot::new(LotId(1), 10))?;
    /// let key = IdempotencyKey::new("checkout-7731")?;
    /// let buy = Command::Take(AllocateRequest::new(SkuId(1), 3));
    /// let retries: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let (ledger, key, buy) = (Arc::clone(&ledger), key.clone(), buy.clone());
    ///         tokio::spawn(async move { ledger.execute_keyed_async(&key, &buy).await })
    ///     })
    ///     .collect();
    /// let mut applied = 0;
    /// for retry in retries {
    ///     applied += usize::from(!retry.await??.replay);
    /// }
    /// assert_eq!(applied, 1);
    /// assert_eq!(ledger.snapshot(SkuId(1))?.totals().committed.get(), 3); // once
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// # }).unwrap();
    /// ```
    pub async fn execute_keyed_async(
        &self,
        key: &IdempotencyKey,
        command: &crate::command::Command,
    ) -> Result<crate::outcome::Keyed<crate::command::Outcome>, crate::keyed_error::KeyedError> {
        use crate::error::CommandError;
        use crate::keyed_error::KeyedError;
        use crate::metrics::{CommandKind, Tallied};
        let now = self.now();
        let is_final = |result: &Result<crate::command::Outcome, CommandError>| !matches!(result, Err(error) if error.is_transient());
        let apply = || {
            #[cfg(feature = "journal")]
            self.record_key_intent(key, command, now);
            self.execute(command)
        };
        let claimed = self.key_store().run_async(key, command, now, apply, is_final).await;
        let probe = self.metrics.probe(CommandKind::Keyed, crate::trace::command_span!("execute_keyed_async"));
        let (result, replay) = match claimed {
            Claimed::Applied(result) => {
                self.key_recorded(key, command, &result, now, is_final(&result));
                (result, false)
            }
            Claimed::Replayed(result) => (result, true),
            Claimed::Conflict(first) => {
                let field = first.first_difference(command).unwrap_or("command").to_owned();
                return Err(KeyedError::KeyReused { key: key.clone(), field }).tallied(probe);
            }
            Claimed::Full => {
                return Err(KeyedError::KeysFull { key: key.clone(), keys_max: self.key_store().window().keys_max })
                    .tallied(probe);
            }
        };
        match result {
            Ok(outcome) => Ok(crate::outcome::Keyed { outcome, replay }),
            Err(error) => Err(KeyedError::Refused { error, replay }),
        }
        .tallied(probe)
    }
}

/// The claimer's hold on an in-flight key. Dropped without [`record`]
/// (a transient result, or a panic anywhere between claim and record), it
/// frees the key and tells the waiters to claim again.
///
/// [`record`]: InFlightGuard::record
struct InFlightGuard<'a, C: Pack<R> + Eq, R: Clone> {
    store: &'a KeyStore<C, R>,
    key: &'a IdempotencyKey,
    entry: u64,
    attempt: Arc<Attempt<R>>,
    recorded: bool,
}

impl<C: Pack<R> + Eq, R: Clone> InFlightGuard<'_, C, R> {
    /// Records `result` as the key's final result and hands it to the
    /// waiters.
    fn record(mut self, command: &C, result: &R, now: Timestamp) {
        let entry = self.entry;
        let waiters = result.clone();
        // Packed before the shard lock: the lock is held for the swap only.
        let record = command.pack_record(result);
        let recorded = self.store.slots.update(self.key, |slot| {
            // Ours while in flight: nothing else replaces or removes an
            // in-flight entry.
            let ours = matches!(slot, Slot::InFlight { entry: e, .. } if *e == entry);
            if ours {
                *slot = Slot::Recorded { record, recorded_at: now, entry };
            }
            ours
        });
        debug_assert_eq!(recorded, Some(true), "an in-flight entry was replaced or removed by someone else");
        // From here new arrivals replay from the table; the waiters already
        // holding the attempt replay from it.
        self.attempt.end(AttemptState::Final(waiters));
        self.recorded = true;
        if recorded == Some(true) {
            self.store.remember(RecordedItem { key: self.key.clone(), entry, recorded_at: now }, now);
        }
    }
}

impl<C: Pack<R> + Eq, R: Clone> Drop for InFlightGuard<'_, C, R> {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let entry = self.entry;
        if self.store.slots.remove_if(self.key, |slot| matches!(slot, Slot::InFlight { entry: e, .. } if *e == entry)) {
            // Relaxed: the capacity count (see `KeyStore::claim`).
            self.store.held.fetch_sub(1, Ordering::Relaxed);
        }
        // After the removal, so a waiter that claims again finds the key free.
        self.attempt.end(AttemptState::Freed);
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests;
