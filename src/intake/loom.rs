//! Loom models of the intake: the ticket hand-off (a worker deciding an
//! order races the tickets' waiters, blocking and polling), and the
//! admission gate (submitters racing a shutdown: nobody queues after the
//! workers were told to stop, and somebody tells them). The channels the
//! jobs travel on are crossbeam's, which loom cannot see: here a queued job
//! is a counter, and the rest of the submit, shed and drain paths is
//! covered by `tests/intake.rs` (shed vs drain under many producers, every
//! accepted order decided exactly once).
//!
//! Must never: model a protocol other than `Slot::decide`,
//! `Ticket::wait` and the `Gate` as the intake runs them: the slot, ticket
//! and gate here are the intake's own.

use super::error::IntakeError;
use super::gate::Gate;
use super::ticket::{OrderId, Ticket};
use crate::cell::loom::{Preemptions, check};
use crate::sync::{Arc, AtomicUsize, Ordering};
use loom::thread;

#[test]
fn a_blocking_waiter_never_misses_the_decision() {
    check("ticket_wait_races_decide", Preemptions::Unbounded, || {
        let (ticket, slot) = Ticket::for_model(OrderId(1));
        let waiter = {
            let ticket = ticket.clone();
            thread::spawn(move || matches!(ticket.wait(), Err(IntakeError::Unapplied)))
        };
        let poller = {
            let ticket = ticket.clone();
            // A poll sees nothing or the whole decision, never a torn one.
            thread::spawn(move || ticket.try_outcome().is_none_or(|d| matches!(d, Err(IntakeError::Unapplied))))
        };
        slot.decide(Err(IntakeError::Unapplied));
        assert!(waiter.join().expect("waiter"), "the waiter woke with the decision");
        assert!(poller.join().expect("poller"));
        assert!(ticket.is_decided());
    });
}

#[test]
fn two_waiters_both_wake() {
    check("ticket_two_waiters", Preemptions::AtLeast(2), || {
        let (ticket, slot) = Ticket::for_model(OrderId(2));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let ticket = ticket.clone();
                thread::spawn(move || matches!(ticket.wait(), Err(IntakeError::Unapplied)))
            })
            .collect();
        slot.decide(Err(IntakeError::Unapplied));
        for waiter in waiters {
            assert!(waiter.join().expect("waiter"), "every waiter woke with the decision");
        }
    });
}

/// Two submitters race a shutdown through the gate, as `admit`, `Entry`
/// and `Shared::close` use it. Whoever the gate says must stop the
/// workers notes how many jobs were queued then; at the end, every job was
/// queued before the first stop (workers drain once after it), and at
/// least one party stopped them. The two-word gate this replaced fails it
/// (a submitter that left last before a close read `closed` after it and
/// stopped the workers while a newer submitter queued), and so does a
/// `leave` that reads the closed bit apart from its decrement.
#[test]
fn a_closing_gate_stops_the_workers_after_every_queued_job() {
    check("intake_gate_submit_vs_close", Preemptions::Unbounded, || {
        let gate = Arc::new(Gate::new());
        let queued = Arc::new(AtomicUsize::new(0));
        // The jobs queued when the first stop was decided (usize::MAX: no
        // stop yet), and how many stops there were.
        let queued_at_stop = Arc::new(AtomicUsize::new(usize::MAX));
        let stops = Arc::new(AtomicUsize::new(0));
        let stop = {
            let (queued, queued_at_stop, stops) =
                (Arc::clone(&queued), Arc::clone(&queued_at_stop), Arc::clone(&stops));
            move || {
                // SeqCst: the model's own bookkeeping (loom models it as
                // AcqRel; the gate's RMW chain already orders it after
                // every queued job the stopper must see).
                queued_at_stop.fetch_min(queued.load(Ordering::SeqCst), Ordering::SeqCst);
                // SeqCst: as above.
                stops.fetch_add(1, Ordering::SeqCst);
            }
        };
        let submitters: Vec<_> = (0..2)
            .map(|_| {
                let (gate, queued, stop) = (Arc::clone(&gate), Arc::clone(&queued), stop.clone());
                thread::spawn(move || {
                    if gate.enter() {
                        // SeqCst: the model's bookkeeping (a send on the queue).
                        queued.fetch_add(1, Ordering::SeqCst);
                    }
                    if gate.leave() {
                        stop();
                    }
                })
            })
            .collect();
        if gate.close() {
            stop();
        }
        for submitter in submitters {
            submitter.join().expect("submitter");
        }
        // SeqCst: read after every thread joined.
        let (queued, queued_at_stop) = (queued.load(Ordering::SeqCst), queued_at_stop.load(Ordering::SeqCst));
        // SeqCst: as above.
        assert!(stops.load(Ordering::SeqCst) >= 1, "nobody stopped the workers");
        assert_eq!(queued, queued_at_stop, "a job was queued after the workers were told to stop");
    });
}
