//! Loom models of the intake's ticket hand-off: a worker deciding an order
//! races the tickets' waiters, blocking and polling. The submit, shed and
//! drain paths run over crossbeam channels and std threads, which loom
//! cannot see; their races are covered by `tests/intake.rs` (shed vs
//! drain under many producers, every accepted order decided exactly once).
//!
//! Must never: model a protocol other than `Slot::decide` and
//! `Ticket::wait` as the intake runs them: the slot and ticket here are
//! the intake's own.

use super::error::IntakeError;
use super::ticket::{OrderId, Ticket};
use crate::cell::loom::{Preemptions, check};
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
