//! A Wing–Gong linearizability checker with Lowe's memoization, in the style
//! of Porcupine: it proves a concurrent history linearizable by finding a
//! sequential order of its operations that respects real time (an operation
//! that returned before another was called comes first) and under which a
//! sequential [`Model`] produces every recorded result; or it proves that no
//! such order exists by exhausting the search.
//!
//! The search walks the history's call/return events as a doubly linked
//! list (the "dancing links" of Wing & Gong): at a call it tries to
//! linearize that operation next (the model's result must equal the recorded
//! one); at a return of an operation not yet linearized it backtracks. Every
//! `(set of linearized operations, model state)` pair reached is remembered,
//! and a pair seen before is never explored again (Lowe): two orders that
//! linearize the same operations into the same state have the same future.
//! The search is bounded by a step budget; a history that exhausts it is
//! [`Verdict::Unknown`], never a pass.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: a deterministic state machine.
pub(crate) trait Model: Clone + Eq + Hash {
    /// An operation, as called.
    type Op: Debug;
    /// What an operation returns.
    type Ret: Eq + Debug;
    /// Applies `op` to this state: the next state and the result.
    fn step(&self, op: &Self::Op) -> (Self, Self::Ret);
}

/// One completed operation of a concurrent history.
#[derive(Clone, Debug)]
pub(crate) struct Operation<O, R> {
    /// Which thread (client) ran it; only for reports.
    pub(crate) client: usize,
    /// An instant at or before the call (a global ticket).
    pub(crate) call: u64,
    /// An instant at or after the return; `ret > call`.
    pub(crate) ret: u64,
    /// What was called.
    pub(crate) op: O,
    /// What it returned.
    pub(crate) out: R,
}

/// The result of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Linearizable; `order` is a witness (indices into the history, in
    /// linearization order).
    Linearizable {
        /// The witness order.
        order: Vec<usize>,
        /// Model steps the search took.
        steps: u64,
    },
    /// Not linearizable: the search was exhausted. `longest` is the longest
    /// prefix of a linearization the search found (for the report).
    Violation {
        /// The longest partial linearization found.
        longest: Vec<usize>,
        /// Model steps the search took.
        steps: u64,
    },
    /// The step budget ran out before the search decided.
    Unknown {
        /// Model steps taken (the budget).
        steps: u64,
    },
}

impl Verdict {
    /// Model steps the search took.
    pub(crate) fn steps(&self) -> u64 {
        match self {
            Verdict::Linearizable { steps, .. } | Verdict::Violation { steps, .. } | Verdict::Unknown { steps } => {
                *steps
            }
        }
    }
}

/// A set of operation indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    fn with(&self, i: usize) -> Bits {
        let mut bits = self.clone();
        bits.0[i / 64] |= 1 << (i % 64);
        bits
    }

    fn without(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Where an event list node points when it has no neighbour.
const NIL: usize = usize::MAX;

/// The history's events as a doubly linked list, sorted by instant (calls
/// before returns at equal instants, so touching operations count as
/// concurrent). Node 0 is the head sentinel; node `1 + 2i` is the call of
/// operation `i` and `2 + 2i` its return.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Events {
    fn new<O, R>(history: &[Operation<O, R>]) -> Events {
        let mut nodes: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * history.len());
        for (i, operation) in history.iter().enumerate() {
            assert!(operation.call <= operation.ret, "operation {i} returns before it is called");
            nodes.push((operation.call, false, 1 + 2 * i));
            nodes.push((operation.ret, true, 2 + 2 * i));
        }
        nodes.sort_unstable();
        let size = 1 + 2 * history.len();
        let mut events = Events { next: vec![NIL; size], prev: vec![NIL; size] };
        let mut last = 0;
        for &(_, _, node) in &nodes {
            events.next[last] = node;
            events.prev[node] = last;
            last = node;
        }
        events
    }

    fn first(&self) -> usize {
        self.next[0]
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// Removes operation `i`'s call and return from the list.
    fn lift(&mut self, i: usize) {
        self.unlink(1 + 2 * i);
        self.unlink(2 + 2 * i);
    }

    /// Undoes [`Events::lift`] (nodes relinked in reverse order).
    fn unlift(&mut self, i: usize) {
        self.relink(2 + 2 * i);
        self.relink(1 + 2 * i);
    }
}

/// Checks `history` against the sequential `model` starting in `init`,
/// taking at most `budget` model steps.
pub(crate) fn check<M: Model>(init: &M, history: &[Operation<M::Op, M::Ret>], budget: u64) -> Verdict {
    let mut events = Events::new(history);
    let mut linearized = Bits::new(history.len());
    let mut state = init.clone();
    let mut seen: HashSet<(Bits, M)> = HashSet::new();
    // (operation, state before it) for every operation linearized so far.
    let mut stack: Vec<(usize, M)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut steps = 0u64;
    let mut node = events.first();
    while node != NIL {
        let i = (node - 1) / 2;
        if node % 2 == 1 {
            // A call: try to linearize operation `i` now.
            if steps >= budget {
                return Verdict::Unknown { steps };
            }
            steps += 1;
            let (next, out) = state.step(&history[i].op);
            if out == history[i].out {
                let bits = linearized.with(i);
                if seen.insert((bits.clone(), next.clone())) {
                    stack.push((i, std::mem::replace(&mut state, next)));
                    linearized = bits;
                    events.lift(i);
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|&(j, _)| j).collect();
                    }
                    node = events.first();
                    continue;
                }
            }
            node = events.next[node];
        } else {
            // The return of an operation not linearized yet: everything
            // linearized since must be undone.
            let Some((j, before)) = stack.pop() else {
                return Verdict::Violation { longest, steps };
            };
            state = before;
            linearized.without(j);
            events.unlift(j);
            node = events.next[1 + 2 * j];
        }
    }
    Verdict::Linearizable { order: stack.into_iter().map(|(j, _)| j).collect(), steps }
}

/// True when `order` (indices into `history`) is a permutation of the
/// history that respects real time and under which `init` reproduces every
/// recorded result: an independent check of a witness.
pub(crate) fn replays<M: Model>(init: &M, history: &[Operation<M::Op, M::Ret>], order: &[usize]) -> bool {
    let mut placed = vec![false; history.len()];
    let mut state = init.clone();
    for (at, &i) in order.iter().enumerate() {
        if placed[i] {
            return false;
        }
        placed[i] = true;
        // Every operation placed later must not have returned before `i`
        // was called.
        if order[at + 1..].iter().any(|&later| history[later].ret < history[i].call) {
            return false;
        }
        let (next, out) = state.step(&history[i].op);
        if out != history[i].out {
            return false;
        }
        state = next;
    }
    placed.iter().all(|&p| p)
}
