//! The checker checked: on hand-written histories of a register and a
//! counter it must accept the linearizable ones (sequential, overlapping
//! with either order valid, a read concurrent with a write) and reject the
//! ones that are not (a stale read after a completed write, a lost update),
//! report an over-budget search as unknown rather than a pass, and every
//! witness it returns must replay and respect real time.

use super::checker::{Model, Operation, Verdict, check, replays};

/// A register holding one integer, initially 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Register(u64);

#[derive(Debug)]
enum RegisterOp {
    Write(u64),
    Read,
}

impl Model for Register {
    type Op = RegisterOp;
    type Ret = Option<u64>;

    fn step(&self, op: &RegisterOp) -> (Register, Option<u64>) {
        match op {
            RegisterOp::Write(value) => (Register(*value), None),
            RegisterOp::Read => (self.clone(), Some(self.0)),
        }
    }
}

/// A counter whose increment returns the new value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Counter(u64);

#[derive(Debug)]
enum CounterOp {
    Increment,
    Get,
}

impl Model for Counter {
    type Op = CounterOp;
    type Ret = u64;

    fn step(&self, op: &CounterOp) -> (Counter, u64) {
        match op {
            CounterOp::Increment => (Counter(self.0 + 1), self.0 + 1),
            CounterOp::Get => (self.clone(), self.0),
        }
    }
}

fn op<O, R>(client: usize, call: u64, ret: u64, op: O, out: R) -> Operation<O, R> {
    Operation { client, call, ret, op, out }
}

const BUDGET: u64 = 100_000;

/// Checks, and for a pass also replays the witness independently.
fn verdict<M: Model>(init: M, history: &[Operation<M::Op, M::Ret>]) -> Verdict {
    let verdict = check(&init, history, BUDGET);
    if let Verdict::Linearizable { order, .. } = &verdict {
        assert!(replays(&init, history, order), "witness {order:?} does not replay");
    }
    verdict
}

fn is_linearizable(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Linearizable { .. })
}

fn is_violation(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Violation { .. })
}

#[test]
fn a_sequential_history_is_linearizable_in_its_own_order() {
    let history = [
        op(0, 0, 1, RegisterOp::Write(1), None),
        op(1, 2, 3, RegisterOp::Read, Some(1)),
        op(0, 4, 5, RegisterOp::Write(2), None),
        op(1, 6, 7, RegisterOp::Read, Some(2)),
    ];
    assert_eq!(verdict(Register(0), &history), Verdict::Linearizable { order: vec![0, 1, 2, 3], steps: 4 });
}

#[test]
fn overlapping_writes_may_be_ordered_either_way() {
    // Two writes overlap; a later read may see either one, as long as a
    // second later read agrees with it.
    for (seen, order_first) in [(1, 1), (2, 0)] {
        let history = [
            op(0, 0, 3, RegisterOp::Write(1), None),
            op(1, 1, 2, RegisterOp::Write(2), None),
            op(2, 4, 5, RegisterOp::Read, Some(seen)),
            op(0, 6, 7, RegisterOp::Read, Some(seen)),
        ];
        let verdict = verdict(Register(0), &history);
        assert!(is_linearizable(&verdict), "read {seen}: {verdict:?}");
        if let Verdict::Linearizable { order, .. } = verdict {
            assert_eq!(order[0], order_first, "the write read last must be linearized last");
        }
    }
    // But two later reads cannot disagree.
    let history = [
        op(0, 0, 3, RegisterOp::Write(1), None),
        op(1, 1, 2, RegisterOp::Write(2), None),
        op(2, 4, 5, RegisterOp::Read, Some(1)),
        op(0, 6, 7, RegisterOp::Read, Some(2)),
    ];
    assert!(is_violation(&verdict(Register(0), &history)));
}

#[test]
fn a_read_concurrent_with_a_write_may_see_old_or_new() {
    for seen in [0, 1] {
        let history = [op(0, 0, 3, RegisterOp::Write(1), None), op(1, 1, 2, RegisterOp::Read, Some(seen))];
        assert!(is_linearizable(&verdict(Register(0), &history)), "read {seen}");
    }
    let history = [op(0, 0, 3, RegisterOp::Write(1), None), op(1, 1, 2, RegisterOp::Read, Some(7))];
    assert!(is_violation(&verdict(Register(0), &history)), "a value never written");
}

#[test]
fn a_stale_read_after_a_completed_write_is_a_violation() {
    let history = [
        op(0, 0, 1, RegisterOp::Write(1), None),
        op(1, 2, 5, RegisterOp::Write(2), None),
        // Called after write(2) returned, still sees 1.
        op(2, 6, 7, RegisterOp::Read, Some(1)),
    ];
    let verdict = verdict(Register(0), &history);
    assert!(is_violation(&verdict), "{verdict:?}");
    // Had the read overlapped write(2), it would have been fine.
    let overlapping = [
        op(0, 0, 1, RegisterOp::Write(1), None),
        op(1, 2, 5, RegisterOp::Write(2), None),
        op(2, 4, 7, RegisterOp::Read, Some(1)),
    ];
    assert!(is_linearizable(&check(&Register(0), &overlapping, BUDGET)));
}

#[test]
fn a_lost_update_is_a_violation() {
    // Two overlapping increments that both return 1: one update was lost.
    let lost = [op(0, 0, 3, CounterOp::Increment, 1), op(1, 1, 2, CounterOp::Increment, 1)];
    assert!(is_violation(&verdict(Counter(0), &lost)));
    // The same increments returning 1 and 2 (in either order) are fine,
    let fine = [op(0, 0, 3, CounterOp::Increment, 2), op(1, 1, 2, CounterOp::Increment, 1)];
    assert!(is_linearizable(&verdict(Counter(0), &fine)));
    // and a read after both that sees only one of them is not.
    let stale =
        [op(0, 0, 3, CounterOp::Increment, 2), op(1, 1, 2, CounterOp::Increment, 1), op(2, 4, 5, CounterOp::Get, 1)];
    assert!(is_violation(&verdict(Counter(0), &stale)));
}

#[test]
fn many_concurrent_increments_are_checked_without_blowing_up() {
    // 24 mutually overlapping increments returning 1..=24 in some order,
    // plus a read of 24 after them: 24! orders, one of which works.
    let mut history: Vec<Operation<CounterOp, u64>> =
        (0..24).map(|i| op(i, i as u64, 100 + i as u64, CounterOp::Increment, 24 - i as u64)).collect();
    history.push(op(0, 200, 201, CounterOp::Get, 24));
    let verdict = verdict(Counter(0), &history);
    assert!(is_linearizable(&verdict), "{verdict:?}");
    // And with one increment result duplicated, exhausting the search.
    history[5].out = history[6].out;
    let verdict = check(&Counter(0), &history, 10_000_000);
    assert!(is_violation(&verdict), "{verdict:?}");
}

#[test]
fn an_over_budget_search_is_unknown_not_a_pass() {
    let history = [op(0, 0, 3, CounterOp::Increment, 2), op(1, 1, 2, CounterOp::Increment, 1)];
    assert_eq!(check(&Counter(0), &history, 1), Verdict::Unknown { steps: 1 });
}

#[test]
fn a_witness_that_breaks_real_time_does_not_replay() {
    let history = [op(0, 0, 1, RegisterOp::Write(1), None), op(1, 2, 3, RegisterOp::Read, Some(0))];
    assert!(!replays(&Register(0), &history, &[1, 0]), "the read was called after the write returned");
    assert!(is_violation(&check(&Register(0), &history, BUDGET)));
}
