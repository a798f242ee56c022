//! Loom models of the journal's lock-free protocols: the append ring's
//! hand-over (claim, fill, take, reuse a slot one lap later), waking the
//! writer, and waking a durability waiter. Every interleaving of these
//! tiny scenarios (within the preemption bound) must deliver every record
//! once, intact and in sequence order, and must never leave a thread
//! parked with nobody left to wake it (loom reports that as a deadlock).
//!
//! What these models cannot check: the waitlist's own fence
//! (waitlist.rs # Orderings). Under a checker the arrival queue is a mutex
//! around a `VecDeque` (see `crate::sync`), and the mutex alone orders a
//! registration against the writer's drain; only the real, lock-free
//! queue needs the fence. The writer's wake-up fences (shared.rs
//! # Orderings 3) are checked: removing either makes
//! `two_producers_hand_their_records_to_a_sleeping_writer` deadlock.

use super::options::{Durability, JournalOptions};
use super::ring::Ring;
use super::shared::Shared;
use super::waitlist::{Pending, WaitList, wait_for_slot};
use crate::sync::thread;
use crate::sync::{Arc, AtomicU64, Ordering};
use loom::thread as loom_thread;

fn shared() -> Arc<Shared> {
    let options = JournalOptions::new(Durability::Sync).ring_capacity(2);
    Arc::new(Shared::new(std::path::PathBuf::from("/nonexistent"), options, 1, vec![1]))
}

/// The writer's side of the hand-over: takes `count` records in order,
/// parking when the next is not filled, as the writer thread does.
fn drain(shared: &Shared, count: u64) -> Vec<Vec<u8>> {
    let mut pending = Pending::default();
    let mut taken = Vec::new();
    let mut next = 1;
    while next <= count {
        if shared.ring.is_filled(next) {
            taken.push(shared.ring.take(next, <[u8]>::to_vec));
            next += 1;
            shared.ring.advance(next);
            shared.space_waiters.wake(&mut pending, next);
        } else {
            shared.park_writer(next, None);
        }
    }
    taken
}

#[test]
fn two_producers_hand_their_records_to_a_sleeping_writer() {
    loom::model(|| {
        let shared = shared();
        *shared.writer_thread.lock() = Some(thread::current());
        let producers: Vec<_> = (0..2u8)
            .map(|id| {
                let shared = Arc::clone(&shared);
                loom_thread::spawn(move || {
                    let seq = shared.ring.claim().unwrap();
                    wait_for_slot(&shared.ring, &shared.space_waiters, seq);
                    shared.ring.fill(seq, &[id, seq as u8]);
                    shared.nudge_writer();
                })
            })
            .collect();
        let taken = drain(&shared, 2);
        for producer in producers {
            producer.join().unwrap();
        }
        // Each record once, intact, at the sequence its producer claimed.
        for (index, record) in taken.iter().enumerate() {
            assert_eq!(record[1], index as u8 + 1);
        }
        assert_ne!(taken[0][0], taken[1][0]);
    });
}

#[test]
fn a_full_ring_makes_the_third_producer_wait_for_its_slot() {
    loom::model(|| {
        let shared = shared();
        *shared.writer_thread.lock() = Some(thread::current());
        let producer = {
            let shared = Arc::clone(&shared);
            loom_thread::spawn(move || {
                // Three records through a ring of two: the third reuses the
                // first one's slot once the writer has taken it.
                for i in 0..3u8 {
                    let seq = shared.ring.claim().unwrap();
                    wait_for_slot(&shared.ring, &shared.space_waiters, seq);
                    shared.ring.fill(seq, &[i]);
                    shared.nudge_writer();
                }
            })
        };
        let taken = drain(&shared, 3);
        producer.join().unwrap();
        assert_eq!(taken, vec![vec![0], vec![1], vec![2]]);
    });
}

#[test]
fn a_durability_waiter_is_woken_by_the_watermark_it_needs() {
    loom::model(|| {
        let list = Arc::new(WaitList::new());
        let durable = Arc::new(AtomicU64::new(0));
        let waiter = {
            let list = Arc::clone(&list);
            let durable = Arc::clone(&durable);
            loom_thread::spawn(move || {
                // Acquire: pairs with the writer's Release store below.
                list.wait(2, None, || (durable.load(Ordering::Acquire) >= 2).then_some(()))
            })
        };
        let mut pending = Pending::default();
        for watermark in 1..=2 {
            // Release: as the writer publishes `durable`.
            durable.store(watermark, Ordering::Release);
            list.wake(&mut pending, watermark);
        }
        assert_eq!(waiter.join().unwrap(), Some(()));
    });
}

#[test]
fn claims_racing_a_close_are_drained_or_refused() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(4, 1));
        let producer = {
            let ring = Arc::clone(&ring);
            loom_thread::spawn(move || match ring.claim() {
                Ok(seq) => {
                    ring.fill(seq, b"x");
                    true
                }
                Err(_) => false,
            })
        };
        ring.close();
        let final_tail = ring.final_tail().expect("this thread closed it");
        let claimed = producer.join().unwrap();
        // A claim before the close is below the final tail (and filled); a
        // claim after it owns nothing.
        assert_eq!(final_tail, if claimed { 2 } else { 1 });
        if claimed {
            assert!(ring.is_filled(1));
        }
    });
}
