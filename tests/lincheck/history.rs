//! Recording concurrent histories: every operation gets a call ticket taken
//! right before it is invoked and a return ticket taken right after it
//! returns, both from one global sequentially consistent counter. So if
//! operation A's return ticket is smaller than B's call ticket, A really
//! returned before B was called: the real-time order the checker must
//! respect is never stronger than the one that happened.
//!
//! Also: splitting a history into independent parts (per SKU: by locality
//! of linearizability, a history is linearizable iff each object's
//! sub-history is), and printing one as a timeline for a violation report.

use super::checker::Operation;
use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The global ticket counter and the operations recorded so far.
pub(crate) struct Recorder<O, R> {
    ticket: AtomicU64,
    operations: Mutex<Vec<Operation<O, R>>>,
}

impl<O, R> Default for Recorder<O, R> {
    fn default() -> Self {
        Recorder { ticket: AtomicU64::new(0), operations: Mutex::new(Vec::new()) }
    }
}

impl<O, R> Recorder<O, R> {
    /// Runs `run(&op)` as `client`, recording its call and return tickets
    /// and its result. The lock on the log is taken outside the window.
    pub(crate) fn record<T>(&self, client: usize, op: O, run: impl FnOnce(&O) -> (R, T)) -> T {
        let call = self.ticket.fetch_add(1, Ordering::SeqCst);
        let (out, extra) = run(&op);
        let ret = self.ticket.fetch_add(1, Ordering::SeqCst);
        self.operations.lock().unwrap().push(Operation { client, call, ret, op, out });
        extra
    }

    /// The recorded history, in call order.
    pub(crate) fn into_history(self) -> Vec<Operation<O, R>> {
        let mut history = self.operations.into_inner().unwrap();
        history.sort_by_key(|operation| operation.call);
        history
    }
}

/// Splits a history by `key` (e.g. the SKU an operation touches), keeping
/// call order within each part.
pub(crate) fn partition<O, R, K: Ord>(
    history: Vec<Operation<O, R>>,
    key: impl Fn(&O) -> K,
) -> BTreeMap<K, Vec<Operation<O, R>>> {
    let mut parts: BTreeMap<K, Vec<Operation<O, R>>> = BTreeMap::new();
    for operation in history {
        parts.entry(key(&operation.op)).or_default().push(operation);
    }
    parts
}

/// Pairs of operations whose intervals overlap: how concurrent a history
/// really was.
pub(crate) fn overlapping_pairs<O, R>(history: &[Operation<O, R>]) -> usize {
    let mut pairs = 0;
    for (i, a) in history.iter().enumerate() {
        for b in &history[i + 1..] {
            if a.call < b.ret && b.call < a.ret {
                pairs += 1;
            }
        }
    }
    pairs
}

/// The history as a timeline, one operation a line, in call order, with
/// the part of a linearization the checker found (position in it, or `-`).
pub(crate) fn render<O: Debug, R: Debug>(history: &[Operation<O, R>], linearized: &[usize]) -> String {
    let mut position = vec![None; history.len()];
    for (at, &i) in linearized.iter().enumerate() {
        position[i] = Some(at);
    }
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&i| history[i].call);
    let mut text = String::new();
    for i in order {
        let operation = &history[i];
        let at = position[i].map_or_else(|| "-".to_string(), |at| at.to_string());
        let _ = writeln!(
            text,
            "  #{i:<3} client {} [{:>4} .. {:>4}] lin@{at:<3} {:?}\n        -> {:?}",
            operation.client, operation.call, operation.ret, operation.op, operation.out
        );
    }
    text
}
