//! The deadline index: which holds lapse first, without scanning them all.
//!
//! Owns: [`DeadlineIndex`] (an immutable sorted run of `(deadline, slot,
//! seq)` entries and how far sweeps have consumed it) and [`Entry`].
//!
//! Must never: be written by a hold, a commit or a release. Keeping an
//! index exact on every hold would cost every hold a write; instead the
//! index is rebuilt lazily and only sweeps replace it:
//!
//! - A hold with a deadline is *fresh* until the next rebuild: it lowers
//!   the cell's `fresh` word (the earliest fresh deadline) and its `due`
//!   word (the floor every operation checks) only when its deadline is
//!   earlier than theirs — with equal hold durations, never after the
//!   first.
//! - An entry whose hold ended (or whose deadline moved: an extension makes
//!   the hold fresh again) is dropped when a sweep reaches it: the slot's
//!   version or deadline no longer matches.
//! - A sweep at `now` consumes entries from the front while they are due;
//!   if a fresh hold may be due (`fresh <= now`), it rebuilds the index
//!   from every live hold with a deadline instead (O(h log h) for `h`
//!   such holds, once per "fresh" period: with holds of duration `d`,
//!   about once per `d`, so O(log h) amortized per hold).
//!
//! So committing the hold with the earliest deadline costs what committing
//! any hold costs, and the first operation after a lapse pops entries.

use crate::sync::Arc;

/// One indexed hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) deadline: u64,
    /// The reservation's seq (its first line's activation version).
    pub(crate) seq: u64,
    pub(crate) slot: u32,
}

/// A sorted run of entries, of which the first `start` are consumed.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeadlineIndex {
    entries: Arc<[Entry]>,
    start: usize,
}

impl DeadlineIndex {
    /// An index of `entries` (any order).
    pub(crate) fn build(mut entries: Vec<Entry>) -> DeadlineIndex {
        entries.sort_unstable();
        DeadlineIndex { entries: entries.into(), start: 0 }
    }

    /// The entries not yet consumed, earliest deadline first.
    pub(crate) fn pending(&self) -> &[Entry] {
        &self.entries[self.start..]
    }

    /// The earliest pending deadline.
    pub(crate) fn front(&self) -> Option<u64> {
        self.pending().first().map(|entry| entry.deadline)
    }

    /// This index with its first `count` pending entries consumed (shares
    /// the run).
    pub(crate) fn consumed(&self, count: usize) -> DeadlineIndex {
        DeadlineIndex { entries: Arc::clone(&self.entries), start: (self.start + count).min(self.entries.len()) }
    }
}

#[cfg(all(test, not(stockroom_loom), not(stockroom_shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_earliest_first_and_consuming_shares_the_run() {
        let entry = |deadline, seq| Entry { deadline, seq, slot: seq as u32 };
        let index = DeadlineIndex::build(vec![entry(30, 1), entry(10, 2), entry(20, 3), entry(10, 0)]);
        assert_eq!(index.front(), Some(10));
        assert_eq!(index.pending().iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 2, 3, 1]);
        let later = index.consumed(3);
        assert_eq!(later.front(), Some(30));
        assert!(Arc::ptr_eq(&later.entries, &index.entries));
        assert_eq!(later.consumed(5).front(), None);
    }
}
