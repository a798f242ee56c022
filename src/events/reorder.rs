//! The reorder buffer: per-SKU streams that reach the dispatcher out of
//! order, released in version order, within a fixed number of parked
//! events.
//!
//! The idea is a transport protocol's reassembly queue (TCP's out-of-order
//! queue) with a bounded window: each SKU's stream expects its next
//! version; an event ahead of it is parked until the gap before it fills;
//! a gap that cannot be waited for any more is skipped, and the number of
//! versions skipped goes out in order, like a lost segment that is
//! reported instead of retransmitted.
//!
//! A version the inbox shed reaches the buffer as its identity alone, a
//! *lost* version (`shed.rs`): it takes its place in its stream like an
//! event (parked if it is ahead) and is released as a skip of one version,
//! so subscribers are told of it exactly where they would have received
//! it, even when it is its SKU's latest version.
//!
//! Owns: the streams (per SKU: the next version expected, how many of its
//! versions are parked, its open gap), the parked events and lost
//! versions, the open gaps in the order they opened, and the tallies of
//! what was dropped.
//!
//! Must never: release a SKU's versions out of order or twice, skip a gap
//! without saying how many versions it skipped, hold more than
//! `events_max` parked events, or skip a gap that no shed and no budget
//! explains (the clock alone never loses an event). It holds no atomics
//! and takes no lock: the dispatcher that owns it is the only thread that
//! touches it.
//!
//! # When a gap is skipped
//!
//! A gap (a stream's expected version missing while later ones are
//! parked) usually means a publisher is between its swap and its publish
//! and the missing event (or its lost identity) is moments away. It is
//! skipped instead of waited for when:
//!
//! 1. its SKU's slot counted a shed since the stream last skipped for that
//!    reason (`shed.rs`): a shed whose identity did not fit the shed log
//!    may be the missing version, which will then never come;
//! 2. parking one more event would exceed `events_max`: the oldest gap
//!    goes (each skip releases at least one parked event);
//! 3. its SKU's slot has counted a shed at some point and the gap has been
//!    open for `gap_wait_max` when a turn looks ([`expire`]): the marks
//!    could not tell (when 1 acts once per new shed in the slot, and that
//!    skip may have gone to an earlier gap that was only late), so a gap
//!    that may have been shed is not waited for without end. In a slot
//!    that never shed, a gap waits until it fills or when 2 takes it.
//!
//! A skipped version that arrives afterwards is *late*: dropped, never
//! delivered out of order, and not counted again (the skip counted it).
//!
//! [`expire`]: Reorder::expire

use super::sequenced::Sequenced;
use crate::ids::SkuId;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// What the buffer holds for one version of a stream.
#[derive(Debug)]
enum Slot<E> {
    /// The version's event.
    Event(E),
    /// The version was shed: only its identity came.
    Lost,
}

/// What the reorder buffer releases, in the order subscribers must see it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ready<E> {
    /// The next event of its SKU.
    Event(E),
    /// `versions` versions of `sku` will not be delivered: the stream
    /// jumped over them.
    Skipped {
        /// The SKU.
        sku: SkuId,
        /// How many versions were skipped (at least 1).
        versions: u64,
    },
}

/// What the reorder buffer dropped or skipped, since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReorderTally {
    /// Events that break the publishing contract, dropped: a version below
    /// the expected one that no skip explains (a duplicate), a second copy
    /// of a parked version, version `u64::MAX`.
    pub(crate) rejected: u64,
    /// Events that arrived after their version was skipped, dropped.
    pub(crate) late: u64,
    /// Versions skipped over at a gap (in [`Ready::Skipped`]).
    pub(crate) skipped: u64,
    /// Lost versions released in their place (in [`Ready::Skipped`]).
    pub(crate) lost: u64,
    /// Gaps skipped because their slot counted a shed.
    pub(crate) gaps_shed: u64,
    /// Gaps skipped because the buffer was full.
    pub(crate) gaps_evicted: u64,
    /// Gaps skipped because they were open for `gap_wait_max` in a slot
    /// that shed.
    pub(crate) gaps_expired: u64,
}

/// One SKU's stream.
#[derive(Debug)]
struct Stream {
    /// The next version to release.
    expected: u64,
    /// Versions of this SKU parked (all above `expected`).
    parked: usize,
    /// The open gap, while `parked > 0`: its key in `Reorder::gaps`.
    gap: Option<u64>,
    /// Versions skipped that have not arrived late yet: how a version
    /// below `expected` is told from a duplicate. (Skipped versions that
    /// were shed never arrive, so this can stay above 0.)
    skipped_unseen: u64,
    /// The shed marks of this SKU's slot when the stream last skipped a gap
    /// for a shed (or 0).
    marks_seen: u64,
}

impl Stream {
    const NEW: Stream = Stream { expected: 0, parked: 0, gap: None, skipped_unseen: 0, marks_seen: 0 };
}

/// The reorder buffer (see the module docs).
pub(crate) struct Reorder<E> {
    streams: HashMap<SkuId, Stream>,
    parked: BTreeMap<(SkuId, u64), Slot<E>>,
    /// Open gaps by the order they opened: key, then SKU and when.
    gaps: BTreeMap<u64, (SkuId, Instant)>,
    /// Gaps opened so far: the next gap's key.
    gaps_opened: u64,
    events_max: usize,
    gap_wait_max: Duration,
    tally: ReorderTally,
}

/// `counter += by`, stopping at a wrap (it would be a bug).
fn bump(counter: &mut u64, by: u64) {
    *counter = counter.checked_add(by).expect("a reorder tally about to wrap");
}

impl<E: Sequenced> Reorder<E> {
    /// An empty buffer that parks at most `events_max` events (at least 1)
    /// and waits at most `gap_wait_max` for a gap.
    pub(crate) fn new(events_max: usize, gap_wait_max: Duration) -> Self {
        assert!(events_max >= 1, "a reorder buffer that parks nothing");
        Self {
            streams: HashMap::new(),
            parked: BTreeMap::new(),
            gaps: BTreeMap::new(),
            gaps_opened: 0,
            events_max,
            gap_wait_max,
            tally: ReorderTally::default(),
        }
    }

    /// Starts `sku`'s stream at version `next`, if nothing of it arrived
    /// yet (a SKU restored at `next - 1`: its versions before are not
    /// coming).
    pub(crate) fn start_stream(&mut self, sku: SkuId, next: u64) {
        self.streams.entry(sku).or_insert(Stream { expected: next, ..Stream::NEW });
    }

    /// Takes one event: releases it (and the parked successors it frees)
    /// to `out` if it is its SKU's expected version, parks it if it is
    /// ahead, drops it otherwise. `marks` gives a SKU's shed marks as the
    /// dispatcher last read them (`shed.rs`).
    pub(crate) fn accept(&mut self, event: E, marks: &impl Fn(SkuId) -> u64, out: &mut impl FnMut(Ready<E>)) {
        self.take(event.sku(), event.version(), Slot::Event(event), marks, out);
    }

    /// Takes a lost version (its event was shed): like [`accept`](Self::accept),
    /// and released as a skip of one version.
    pub(crate) fn accept_lost(
        &mut self,
        sku: SkuId,
        version: u64,
        marks: &impl Fn(SkuId) -> u64,
        out: &mut impl FnMut(Ready<E>),
    ) {
        self.take(sku, version, Slot::Lost, marks, out);
    }

    /// What `accept` and `accept_lost` do with a version of a stream.
    fn take(
        &mut self,
        sku: SkuId,
        version: u64,
        slot: Slot<E>,
        marks: &impl Fn(SkuId) -> u64,
        out: &mut impl FnMut(Ready<E>),
    ) {
        if version == u64::MAX {
            bump(&mut self.tally.rejected, 1);
            return;
        }
        let stream = self.streams.entry(sku).or_insert(Stream::NEW);
        if version < stream.expected {
            if stream.skipped_unseen > 0 {
                stream.skipped_unseen -= 1;
                bump(&mut self.tally.late, 1);
            } else {
                bump(&mut self.tally.rejected, 1);
            }
            return;
        }
        if version == stream.expected {
            stream.expected = version + 1; // version < u64::MAX: checked above
            let waiting = stream.parked > 0;
            match slot {
                Slot::Event(event) => out(Ready::Event(event)),
                Slot::Lost => {
                    bump(&mut self.tally.lost, 1);
                    out(Ready::Skipped { sku, versions: 1 });
                }
            }
            if waiting {
                self.release(sku, out);
            }
            return;
        }
        match self.parked.entry((sku, version)) {
            Entry::Occupied(_) => {
                bump(&mut self.tally.rejected, 1);
                return;
            }
            Entry::Vacant(place) => {
                place.insert(slot);
            }
        }
        stream.parked += 1;
        if stream.gap.is_none() {
            stream.gap = Some(self.gaps_opened);
            self.gaps.insert(self.gaps_opened, (sku, Instant::now()));
            bump(&mut self.gaps_opened, 1);
        }
        let marks_now = marks(sku);
        if marks_now > stream.marks_seen {
            // When 1 of the module docs.
            stream.marks_seen = marks_now;
            bump(&mut self.tally.gaps_shed, 1);
            self.skip_gap(sku, out);
        }
        if self.parked.len() > self.events_max {
            // When 2: one over, and one skip releases at least one event.
            let (_, &(oldest, _)) = self.gaps.first_key_value().expect("parked events have an open gap");
            bump(&mut self.tally.gaps_evicted, 1);
            self.skip_gap(oldest, out);
        }
        assert!(self.parked.len() <= self.events_max, "{} parked, budget {}", self.parked.len(), self.events_max);
    }

    /// Skips every open gap whose SKU's slot counted a shed since its
    /// stream last skipped for one (when 1 of the module docs). Called when
    /// the dispatcher's view of the marks moved.
    pub(crate) fn skip_shed_gaps(&mut self, marks: &impl Fn(SkuId) -> u64, out: &mut impl FnMut(Ready<E>)) {
        let suspects: Vec<SkuId> = self
            .gaps
            .values()
            .map(|&(sku, _)| sku)
            .filter(|sku| self.streams.get(sku).is_some_and(|stream| marks(*sku) > stream.marks_seen))
            .collect();
        for sku in suspects {
            let Some(stream) = self.streams.get_mut(&sku) else {
                continue;
            };
            stream.marks_seen = marks(sku);
            if stream.parked > 0 {
                bump(&mut self.tally.gaps_shed, 1);
                self.skip_gap(sku, out);
            }
        }
    }

    /// Skips every gap open for `gap_wait_max` or longer at `now` whose
    /// SKU's slot has counted a shed, oldest first (when 3 of the module
    /// docs). Stops at the first gap that is not due: gaps are kept in the
    /// order they opened.
    pub(crate) fn expire(&mut self, now: Instant, marks: &impl Fn(SkuId) -> u64, out: &mut impl FnMut(Ready<E>)) {
        // Passed over: the last due gap whose slot never shed.
        let mut passed: Option<u64> = None;
        // Bounded: each iteration passes over one gap (`passed` only moves
        // forward) or skips one, which releases at least one parked event.
        for _ in 0..=(self.parked.len() + self.gaps.len()) {
            let next = match passed {
                None => self.gaps.iter().next(),
                Some(serial) => self.gaps.range(serial + 1..).next(),
            };
            let Some((&serial, &(sku, opened))) = next else {
                return;
            };
            if opened > now || now.saturating_duration_since(opened) < self.gap_wait_max {
                return;
            }
            if marks(sku) == 0 {
                passed = Some(serial);
                continue;
            }
            bump(&mut self.tally.gaps_expired, 1);
            self.skip_gap(sku, out);
        }
    }

    /// Skips every gap and releases every parked version (the hub is going
    /// away: nothing more will fill them).
    pub(crate) fn flush(&mut self, out: &mut impl FnMut(Ready<E>)) {
        // Bounded: every skip releases at least one parked event.
        for _ in 0..=self.parked.len() {
            let Some((_, &(sku, _))) = self.gaps.first_key_value() else {
                return;
            };
            self.skip_gap(sku, out);
        }
        assert!(self.parked.is_empty() && self.gaps.is_empty(), "flush left events parked");
    }

    /// Versions (events and lost ones) parked now.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn parked(&self) -> usize {
        self.parked.len()
    }

    /// True while some stream waits at a gap.
    pub(crate) fn has_gaps(&self) -> bool {
        !self.gaps.is_empty()
    }

    /// What was dropped or skipped so far.
    #[cfg(all(test, not(stockroom_shuttle)))]
    pub(crate) fn tally(&self) -> ReorderTally {
        self.tally
    }

    /// Jumps `sku`'s stream to its lowest parked version, telling `out` how
    /// many versions it skipped, and releases what follows. The stream
    /// must have parked versions.
    fn skip_gap(&mut self, sku: SkuId, out: &mut impl FnMut(Ready<E>)) {
        let stream = self.streams.get_mut(&sku).expect("a gap belongs to a known stream");
        let (&(_, lowest), _) = self
            .parked
            .range((sku, stream.expected)..=(sku, u64::MAX))
            .next()
            .expect("a stream with a gap has parked events");
        let versions = lowest - stream.expected; // parked versions are above `expected`
        assert!(versions > 0, "a gap of nothing before {sku}:{lowest}");
        bump(&mut stream.skipped_unseen, versions);
        bump(&mut self.tally.skipped, versions);
        stream.expected = lowest;
        out(Ready::Skipped { sku, versions });
        self.release(sku, out);
    }

    /// Releases `sku`'s parked events from its expected version on, while
    /// they are consecutive; closes its gap, and opens a new one if events
    /// stay parked behind another missing version.
    fn release(&mut self, sku: SkuId, out: &mut impl FnMut(Ready<E>)) {
        let Self { streams, parked, gaps, gaps_opened, tally, .. } = self;
        let stream = streams.get_mut(&sku).expect("released streams are known");
        // Consecutive lost versions go out as one skip.
        let mut lost = 0;
        // Bounded: every iteration but the last releases a parked version.
        for _ in 0..=stream.parked {
            let Some(slot) = parked.remove(&(sku, stream.expected)) else {
                break;
            };
            stream.parked -= 1;
            // Parked versions are below u64::MAX (rejected before parking).
            stream.expected += 1;
            match slot {
                Slot::Lost => lost += 1,
                Slot::Event(event) => {
                    if lost > 0 {
                        bump(&mut tally.lost, lost);
                        out(Ready::Skipped { sku, versions: lost });
                        lost = 0;
                    }
                    out(Ready::Event(event));
                }
            }
        }
        if lost > 0 {
            bump(&mut tally.lost, lost);
            out(Ready::Skipped { sku, versions: lost });
        }
        if let Some(gap) = stream.gap.take() {
            gaps.remove(&gap);
        }
        if stream.parked > 0 {
            stream.gap = Some(*gaps_opened);
            gaps.insert(*gaps_opened, (sku, Instant::now()));
            bump(gaps_opened, 1);
        }
    }
}

#[cfg(all(test, not(any(stockroom_loom, stockroom_shuttle))))]
mod tests {
    use super::*;
    use crate::events::probe::{Probe, probe};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;

    /// What came out, as `(sku, version)` for events and `(sku, -n)` for a
    /// skip of n versions.
    fn run(reorder: &mut Reorder<Probe>, events: &[(u64, u64)], marks: u64) -> Vec<(u64, i64)> {
        let mut got = Vec::new();
        for &(sku, version) in events {
            reorder.accept(probe(sku, version), &|_| marks, &mut |ready| got.push(shown(ready)));
        }
        got
    }

    fn shown(ready: Ready<Probe>) -> (u64, i64) {
        match ready {
            Ready::Event(event) => (event.sku.0, event.version as i64),
            Ready::Skipped { sku, versions } => (sku.0, -(versions as i64)),
        }
    }

    fn reorder(events_max: usize, gap_wait_max: Duration) -> Reorder<Probe> {
        Reorder::new(events_max, gap_wait_max)
    }

    const FOREVER: Duration = Duration::MAX;

    #[test]
    fn in_order_events_pass_straight_through() {
        let mut buffer = reorder(4, FOREVER);
        assert_eq!(run(&mut buffer, &[(1, 0), (2, 0), (1, 1), (1, 2)], 0), [(1, 0), (2, 0), (1, 1), (1, 2)]);
        assert_eq!((buffer.parked(), buffer.has_gaps()), (0, false));
        assert_eq!(buffer.tally(), ReorderTally::default());
    }

    #[test]
    fn events_ahead_wait_for_the_gap_and_leave_in_version_order() {
        let mut buffer = reorder(8, FOREVER);
        assert_eq!(run(&mut buffer, &[(1, 2), (1, 1), (2, 1)], 0), []);
        assert_eq!((buffer.parked(), buffer.has_gaps()), (3, true));
        assert_eq!(run(&mut buffer, &[(1, 0)], 0), [(1, 0), (1, 1), (1, 2)]);
        assert_eq!(run(&mut buffer, &[(1, 4), (2, 0)], 0), [(2, 0), (2, 1)]);
        assert_eq!(run(&mut buffer, &[(1, 3)], 0), [(1, 3), (1, 4)]);
        assert_eq!((buffer.parked(), buffer.has_gaps()), (0, false));
        assert_eq!(buffer.tally(), ReorderTally::default());
    }

    #[test]
    fn duplicates_and_the_last_version_are_rejected() {
        let mut buffer = reorder(8, FOREVER);
        assert_eq!(run(&mut buffer, &[(1, 0), (1, 0), (1, 5), (1, 5), (2, u64::MAX)], 0), [(1, 0)]);
        assert_eq!(buffer.tally(), ReorderTally { rejected: 3, ..ReorderTally::default() });
    }

    #[test]
    fn a_full_buffer_skips_its_oldest_gap_and_says_how_many_versions() {
        let mut buffer = reorder(3, FOREVER);
        // SKU 1 waits at 0 (gap opened first), SKU 2 at 0.
        assert_eq!(run(&mut buffer, &[(1, 3), (2, 2), (1, 4)], 0), []);
        // A fourth parked event: SKU 1's gap (the oldest) is skipped.
        assert_eq!(run(&mut buffer, &[(2, 1)], 0), [(1, -3), (1, 3), (1, 4)]);
        assert_eq!(buffer.parked(), 2);
        // The skipped versions arrive late: dropped, counted once.
        assert_eq!(run(&mut buffer, &[(1, 1), (1, 0), (1, 5)], 0), [(1, 5)]);
        // Late arrivals are counted as long as skips explain them; then a
        // version below the expected one is a duplicate.
        assert_eq!(run(&mut buffer, &[(1, 2), (1, 2)], 0), []);
        let tally = buffer.tally();
        assert_eq!((tally.late, tally.rejected, tally.skipped, tally.gaps_evicted), (3, 1, 3, 1));
        assert_eq!(run(&mut buffer, &[(2, 0)], 0), [(2, 0), (2, 1), (2, 2)]);
    }

    #[test]
    fn a_gap_in_a_slot_that_shed_is_skipped_at_once_and_only_once() {
        let mut buffer = reorder(8, FOREVER);
        // Marks at 1: SKU 1's missing version 0 may have been shed.
        assert_eq!(run(&mut buffer, &[(1, 1)], 1), [(1, -1), (1, 1)]);
        // Same marks: the stream already acted on them, so it waits.
        assert_eq!(run(&mut buffer, &[(1, 3)], 1), []);
        // A new shed in the slot, noticed by the dispatcher's refresh.
        let mut got = Vec::new();
        buffer.skip_shed_gaps(&|_| 2, &mut |ready| got.push(shown(ready)));
        assert_eq!(got, [(1, -1), (1, 3)]);
        assert_eq!(buffer.tally().gaps_shed, 2);
        assert!(!buffer.has_gaps());
    }

    #[test]
    fn gaps_in_slots_that_shed_expire_oldest_first_once_waited_for_long_enough() {
        let mut buffer = reorder(8, Duration::ZERO);
        // Marks as the stream saw them when it parked: no skip at once.
        assert_eq!(run(&mut buffer, &[(1, 2), (2, 1), (3, 4), (3, 6)], 0), []);
        let mut got = Vec::new();
        // SKUs 1 and 3 are in slots that shed since; SKU 2's never did.
        let marks = |sku: SkuId| u64::from(sku != SkuId(2));
        buffer.expire(Instant::now(), &marks, &mut |ready| got.push(shown(ready)));
        // SKU 3's skip leaves 6 parked behind a new gap, with a new clock.
        assert_eq!(got, [(1, -2), (1, 2), (3, -4), (3, 4)]);
        assert_eq!(buffer.tally().gaps_expired, 2);
        assert_eq!(buffer.parked(), 2, "SKU 2 waits: without a shed, the clock loses nothing");

        let mut patient = reorder(8, FOREVER);
        assert_eq!(run(&mut patient, &[(1, 2)], 0), []);
        patient.expire(Instant::now(), &|_| 1, &mut |_| panic!("not due"));
        assert_eq!(patient.parked(), 1);
    }

    #[test]
    fn a_flush_releases_everything_parked_with_its_skips() {
        let mut buffer = reorder(8, FOREVER);
        assert_eq!(run(&mut buffer, &[(1, 1), (1, 3), (2, 5)], 0), []);
        let mut got = Vec::new();
        buffer.flush(&mut |ready| got.push(shown(ready)));
        // Oldest gap first: SKU 1's, then SKU 2's, then the one SKU 1 opened
        // when its first skip left version 3 parked.
        assert_eq!(got, [(1, -1), (1, 1), (2, -5), (2, 5), (1, -1), (1, 3)]);
        assert_eq!((buffer.parked(), buffer.has_gaps()), (0, false));
    }

    #[test]
    fn lost_versions_take_their_place_and_go_out_as_skips() {
        let mut buffer = reorder(8, FOREVER);
        let mut got = Vec::new();
        buffer.accept_lost(SkuId(1), 1, &|_| 0, &mut |ready| got.push(shown(ready)));
        buffer.accept_lost(SkuId(1), 2, &|_| 0, &mut |ready| got.push(shown(ready)));
        assert_eq!(run(&mut buffer, &[(1, 3), (1, 5)], 0), []);
        assert_eq!(buffer.parked(), 4, "lost versions park like events");
        // 0 releases: lost 1 and 2 as one skip, then 3; 5 waits for 4.
        assert_eq!(run(&mut buffer, &[(1, 0)], 0), [(1, 0), (1, -2), (1, 3)]);
        buffer.accept_lost(SkuId(1), 4, &|_| 0, &mut |ready| got.push(shown(ready)));
        assert_eq!(got, [(1, -1), (1, 5)], "a lost expected version goes out at once");
        assert_eq!(buffer.tally(), ReorderTally { lost: 3, ..ReorderTally::default() });
    }

    proptest! {
        /// Any arrival order, each version arriving as its event, as a lost
        /// identity, or not at all; any small budget, shed marks or not:
        /// per SKU, what comes out is strictly increasing and, with the
        /// skips, covers every version from 0 to the last one that arrived
        /// exactly once; every version that arrived is released (as an
        /// event or a skip), late or still parked; nothing is rejected; a
        /// flush empties the buffer.
        #[test]
        fn versions_come_out_in_order_and_skips_account_for_every_gap(
            counts in prop::collection::vec(1u64..12, 1..4),
            fates in prop::collection::vec(0u8..3, 40),
            seed in any::<u64>(),
            events_max in 1usize..6,
            marks in 0u64..2,
        ) {
            let mut all: Vec<(u64, u64)> = counts
                .iter()
                .enumerate()
                .flat_map(|(sku, &count)| (0..count).map(move |version| (sku as u64, version)))
                .collect();
            all.shuffle(&mut StdRng::seed_from_u64(seed));
            // 0: the event arrives; 1: only its identity (shed, logged);
            // 2: nothing (shed, unlogged).
            let arrived: Vec<((u64, u64), u8)> =
                all.iter().zip(fates.iter().cycle()).filter(|(_, fate)| **fate < 2).map(|(v, f)| (*v, *f)).collect();
            let mut buffer = reorder(events_max, FOREVER);
            let mut got = Vec::new();
            for &((sku, version), fate) in &arrived {
                let mut out = |ready| got.push(shown(ready));
                match fate {
                    0 => buffer.accept(probe(sku, version), &|_| marks, &mut out),
                    _ => buffer.accept_lost(SkuId(sku), version, &|_| marks, &mut out),
                }
            }
            prop_assert!(buffer.parked() <= events_max);
            let tally = buffer.tally();
            prop_assert_eq!(tally.rejected, 0);
            let released = got.iter().filter(|(_, version)| *version >= 0).count() as u64;
            prop_assert_eq!(released + tally.lost + tally.late + buffer.parked() as u64, arrived.len() as u64);
            buffer.flush(&mut |ready| got.push(shown(ready)));
            for (sku, _) in counts.iter().enumerate() {
                let mut next = 0i64;
                for &(_, item) in got.iter().filter(|(of, _)| *of == sku as u64) {
                    if item < 0 {
                        next -= item;
                    } else {
                        prop_assert_eq!(item, next, "SKU {} out of order: {:?}", sku, got);
                        next += 1;
                    }
                }
                let last_arrived =
                    arrived.iter().filter(|((of, _), _)| *of == sku as u64).map(|&((_, v), _)| v as i64 + 1).max();
                prop_assert_eq!(next, last_arrived.unwrap_or(0), "SKU {}: covered up to its last arrival", sku);
            }
        }
    }
}
