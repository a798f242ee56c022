//! Descriptors: the record of a change that other threads can read and
//! finish, and the per-ledger registry that hands one to each thread.
//!
//! Owns: [`Descriptor`] (one change's effects, readable under a sequence
//! lock), [`Published`] (a consistent copy of one), [`Registry`] (every
//! descriptor of one ledger, by index) and the thread-local lookup of the
//! calling thread's own descriptor.
//!
//! Must never: be written by anyone but its owner thread, or be rewritten
//! while the change it describes may still be unapplied. An owner writes
//! its descriptor, installs it in a SKU's head by compare-and-swap, applies
//! the effects, and only then may start its next change (which rewrites
//! the descriptor). So a descriptor found rewritten means its earlier
//! change is fully applied; one found intact can be applied again by
//! anyone (effects are idempotent).
//!
//! # Orderings
//!
//! A sequence lock with one writer. The owner bumps `generation` to odd
//! (`Relaxed`), issues a `Release` fence, writes every field (`Relaxed`),
//! and bumps `generation` to even (`Release`). A reader loads `generation` (`Acquire`),
//! reads the fields (`Relaxed`), issues an `Acquire` fence and loads `generation`
//! again (`Relaxed`): if any field it read was written after the owner's
//! fence, the two fences synchronize and the second load sees the odd (or
//! a later) `generation`, so a torn copy is always detected. The head's
//! compare-and-swap (`AcqRel`) that installs a descriptor comes after its
//! final `generation` store, so a thread that loads the head (`Acquire`) and then
//! the descriptor reads the complete record or a later rewrite.
//!
//! Registry indices are handed out under a lock (a thread's first change
//! on a ledger, and thread exit): a rare admin path, documented as such.

use super::chunks::Chunks;
use super::effect::{Big, Effect};
use super::head::DESCRIPTORS_MAX;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, SnapshotCell, Weak, fence, thread_local, unique_id};
use std::cell::{Cell, RefCell};

/// Effects a descriptor holds inline; a larger change goes in a [`Big`].
pub(crate) const INLINE_MAX: usize = 8;

/// `len` bit saying the change is in `big`.
const BIG: u64 = 1 << 63;

/// One thread's change record (see the module docs).
pub(crate) struct Descriptor {
    generation: AtomicU64,
    cell: AtomicU64,
    version: AtomicU64,
    len: AtomicU64,
    words: [AtomicU64; 2 * INLINE_MAX],
    big: SnapshotCell<Big>,
}

impl Default for Descriptor {
    fn default() -> Descriptor {
        Descriptor {
            generation: AtomicU64::new(0),
            cell: AtomicU64::new(0),
            version: AtomicU64::new(0),
            len: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
            big: SnapshotCell::new(Arc::new(Big::default())),
        }
    }
}

/// A consistent copy of a descriptor's change. The inline copy stays on
/// the stack: boxing it would allocate on the helping path.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Published {
    Inline(smallvec::SmallVec<[Effect; INLINE_MAX]>),
    Big(Arc<Big>),
}

impl Descriptor {
    /// Records change `version` of cell `cell`: `effects` inline when they
    /// fit and nothing else is needed, else in `big` (which then carries
    /// every effect). Only the owner thread calls this.
    pub(crate) fn write(&self, cell: u64, version: u64, effects: impl Iterator<Item = Effect>, big: Option<Arc<Big>>) {
        // Relaxed: only this thread writes `generation`.
        let generation = self.generation.load(Ordering::Relaxed);
        debug_assert!(generation % 2 == 0, "a descriptor is written by its owner only");
        // Relaxed, then the fence: see the module's `# Orderings`.
        self.generation.store(generation + 1, Ordering::Relaxed);
        // Release: pairs with the reader's Acquire fence, so a reader that
        // read any field below also sees the odd `generation`.
        fence(Ordering::Release);
        // Relaxed (fields): ordered by the fence above and the store below.
        self.cell.store(cell, Ordering::Relaxed);
        self.version.store(version, Ordering::Relaxed);
        match big {
            Some(big) => {
                self.big.store(big);
                self.len.store(BIG, Ordering::Relaxed);
            }
            None => {
                let mut len = 0;
                for effect in effects {
                    assert!(len < INLINE_MAX, "a change of more than {INLINE_MAX} effects must go in a Big");
                    let [first, second] = effect.encode();
                    self.words[2 * len].store(first, Ordering::Relaxed);
                    self.words[2 * len + 1].store(second, Ordering::Relaxed);
                    len += 1;
                }
                self.len.store(len as u64, Ordering::Relaxed);
            }
        }
        // Release: pairs with the reader's first (Acquire) load of `generation`.
        self.generation.store(generation + 2, Ordering::Release);
    }

    /// The change this descriptor records if it is still change `version`
    /// of cell `cell`; `None` if the owner has moved on (which means that
    /// change is fully applied).
    pub(crate) fn read(&self, cell: u64, version: u64) -> Option<Published> {
        // Acquire: pairs with the owner's final Release store of `generation`.
        let before = self.generation.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        // Relaxed: validated by the fence and the second load below.
        let same = self.cell.load(Ordering::Relaxed) == cell && self.version.load(Ordering::Relaxed) == version;
        let len = self.len.load(Ordering::Relaxed);
        let mut raw = [(0u64, 0u64); INLINE_MAX];
        let mut count = 0;
        let mut big = None;
        if same && len & BIG != 0 {
            big = Some(self.big.load_full());
        } else if same {
            count = (len as usize).min(INLINE_MAX);
            for (at, pair) in raw.iter_mut().enumerate().take(count) {
                *pair = (self.words[2 * at].load(Ordering::Relaxed), self.words[2 * at + 1].load(Ordering::Relaxed));
            }
        }
        // Acquire: pairs with the owner's Release fence (see `write`).
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence above.
        let after = self.generation.load(Ordering::Relaxed);
        if after != before || !same {
            return None;
        }
        // Decoded only once validated: a torn pair is never decoded.
        Some(match big {
            Some(big) => Published::Big(big),
            None => Published::Inline(raw[..count].iter().map(|&(a, b)| Effect::decode([a, b])).collect()),
        })
    }
}

/// Every descriptor of one ledger (see the module docs).
pub(crate) struct Registry {
    id: u64,
    descriptors: Chunks<Descriptor>,
    /// Indices handed out and returned (by exited threads), and the next
    /// fresh one.
    free: Mutex<(Vec<u32>, u32)>,
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        let id = unique_id();
        Arc::new(Registry { id, descriptors: Chunks::new(), free: Mutex::new((Vec::new(), 0)) })
    }

    /// The descriptor at `index` (as a head's `desc` field holds it: 1 +
    /// the index).
    pub(crate) fn get(&self, desc: u32) -> &Descriptor {
        self.descriptors.get(desc - 1).expect("a head names only descriptors that exist")
    }

    /// A descriptor for the calling thread, handed out once per thread and
    /// kept in a thread-local table; returned to the registry when the
    /// thread exits. Returns `(1 + index, descriptor)`.
    pub(crate) fn mine(self: &Arc<Registry>) -> (u32, &Descriptor) {
        // The last registry this thread used: one compare on the steady path.
        let (last, index) = LAST.with(Cell::get);
        if last == self.id {
            if let Some(desc) = self.descriptors.get(index) {
                return (index + 1, desc);
            }
        }
        let index = LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if let Some(entry) = local.entries.iter().find(|entry| entry.registry == self.id) {
                return entry.index;
            }
            let index = self.take_index();
            local.entries.push(LocalEntry { registry: self.id, index, owner: Arc::downgrade(self) });
            index
        });
        let desc = self.descriptors.ensure(index);
        LAST.with(|last| last.set((self.id, index)));
        (index + 1, desc)
    }

    fn take_index(&self) -> u32 {
        let mut free = self.free.lock();
        if let Some(index) = free.0.pop() {
            return index;
        }
        let index = free.1;
        assert!(index < DESCRIPTORS_MAX, "more than {DESCRIPTORS_MAX} threads at once on one ledger");
        free.1 += 1;
        index
    }

    fn give_back(&self, index: u32) {
        self.free.lock().0.push(index);
    }
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry").field("id", &self.id).finish_non_exhaustive()
    }
}

struct LocalEntry {
    registry: u64,
    index: u32,
    owner: Weak<Registry>,
}

#[derive(Default)]
struct Local {
    entries: Vec<LocalEntry>,
}

impl Drop for Local {
    fn drop(&mut self) {
        for entry in self.entries.drain(..) {
            if let Some(registry) = entry.owner.upgrade() {
                registry.give_back(entry.index);
            }
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
    /// `(registry id, index)` of the registry this thread used last (ids
    /// start at 1: 0 matches none). Not `const`: loom's `thread_local!`
    /// takes no `const` initializer.
    #[allow(clippy::missing_const_for_thread_local)]
    static LAST: Cell<(u64, u32)> = Cell::new((0, 0));
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;
    use crate::cell::effect::Target;

    #[test]
    fn a_reader_gets_the_change_it_asks_for_or_nothing() {
        let desc = Descriptor::default();
        let effects = [Effect::new(Target::Lot(3), 42), Effect::new(Target::Slot(1), (1 << 80) - 1)];
        desc.write(9, 5, effects.iter().copied(), None);
        match desc.read(9, 5) {
            Some(Published::Inline(read)) => assert_eq!(&read[..], &effects),
            other => panic!("{other:?}"),
        }
        assert!(desc.read(9, 4).is_none(), "another version");
        assert!(desc.read(8, 5).is_none(), "another cell");
        desc.write(9, 6, core::iter::empty(), Some(Arc::new(Big { effects: effects.to_vec(), ..Big::default() })));
        assert!(desc.read(9, 5).is_none(), "rewritten: the old change is done");
        match desc.read(9, 6) {
            Some(Published::Big(big)) => assert_eq!(big.effects, effects),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_thread_gets_its_own_descriptor_and_gives_it_back_on_exit() {
        let registry = Registry::new();
        let (mine, _) = registry.mine();
        assert_eq!(registry.mine().0, mine, "stable per thread");
        let theirs = {
            let registry = Arc::clone(&registry);
            std::thread::spawn(move || registry.mine().0).join().unwrap()
        };
        assert_ne!(theirs, mine);
        let again = {
            let registry = Arc::clone(&registry);
            std::thread::spawn(move || registry.mine().0).join().unwrap()
        };
        assert_eq!(again, theirs, "an exited thread's descriptor is reused");
    }
}
