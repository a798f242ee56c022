//! The ledger as a [`Model`] for the checker: operations are stockroom
//! [`Command`]s and snapshot reads of one SKU, results are compared exactly
//! (outcomes with reservation ids, lines and versions; typed errors;
//! snapshot data), and the sequential behaviour is delegated to a
//! [`SequentialSpec`] — the reference ledger written from
//! `docs/semantics.md`, or (to tell a sequential disagreement from a
//! concurrency bug) a fresh real ledger run one command at a time.
//!
//! A spec is a mutable object that cannot be cloned, so a model state is
//! the log of the commands that succeeded so far (by operation index; a
//! refused command changes nothing, a snapshot read neither). Equal logs
//! are equal states, which is all the checker's memoization needs. The
//! spec objects themselves live in a small cache keyed by log: stepping a
//! state reuses its spec if cached (a refusal leaves it valid, a success
//! moves it to the longer log) and rebuilds it by replaying the log into a
//! fresh spec otherwise.

use super::checker::Model;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use stockroom::{Command, CommandError, Outcome, SkuId, SnapshotData, Timestamp};

/// A sequential ledger the recorded results are compared against.
pub(crate) trait SequentialSpec {
    /// A ledger with nothing defined.
    fn fresh(now: Timestamp) -> Self;
    /// Runs one command at `now`.
    fn execute(&self, command: &Command, now: Timestamp) -> Result<Outcome, CommandError>;
    /// The SKU's state, if defined.
    fn snapshot(&self, sku: SkuId) -> Option<SnapshotData>;
}

/// What a thread did to the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// Ran a command.
    Command(Command),
    /// Read a SKU's snapshot.
    Snapshot(SkuId),
}

impl Call {
    /// The SKU the call touches: histories are checked per SKU.
    pub(crate) fn sku(&self) -> SkuId {
        match self {
            Call::Command(command) => command.sku(),
            Call::Snapshot(sku) => *sku,
        }
    }
}

/// What the call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Return {
    /// A command's outcome or typed error.
    Command(Result<Outcome, CommandError>),
    /// A snapshot read (`None`: SKU not defined).
    Snapshot(Option<SnapshotData>),
}

/// A call and its index in the (per-SKU) history being checked.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    /// Index in the history.
    pub(crate) index: u32,
    /// The call.
    pub(crate) call: Call,
}

struct Context<S> {
    now: Timestamp,
    /// Every command of the history, by operation index.
    commands: Vec<Option<Command>>,
    /// Live specs by the log they have applied.
    specs: RefCell<HashMap<Rc<[u32]>, S>>,
}

/// A state of the sequential ledger: the commands that succeeded so far.
pub(crate) struct LedgerModel<S> {
    context: Rc<Context<S>>,
    log: Rc<[u32]>,
}

impl<S> Clone for LedgerModel<S> {
    fn clone(&self) -> Self {
        LedgerModel { context: Rc::clone(&self.context), log: Rc::clone(&self.log) }
    }
}

impl<S> PartialEq for LedgerModel<S> {
    fn eq(&self, other: &Self) -> bool {
        self.log == other.log
    }
}

impl<S> Eq for LedgerModel<S> {}

impl<S> Hash for LedgerModel<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.log.hash(state);
    }
}

/// Specs cached per check; past this the cache is emptied.
const CACHED_SPECS: usize = 128;

impl<S: SequentialSpec> LedgerModel<S> {
    /// The empty ledger, for a history whose operations are `calls` (in
    /// index order), all run at instant `now`.
    pub(crate) fn new<'a>(now: Timestamp, calls: impl IntoIterator<Item = &'a Call>) -> Self {
        let commands = calls
            .into_iter()
            .map(|call| match call {
                Call::Command(command) => Some(command.clone()),
                Call::Snapshot(_) => None,
            })
            .collect();
        let context = Context { now, commands, specs: RefCell::new(HashMap::new()) };
        LedgerModel { context: Rc::new(context), log: Rc::from(Vec::new()) }
    }

    /// The spec for this state: cached, or rebuilt by replaying the log.
    fn take_spec(&self) -> S {
        if let Some(spec) = self.context.specs.borrow_mut().remove(&self.log) {
            return spec;
        }
        let spec = S::fresh(self.context.now);
        for &index in self.log.iter() {
            let command = self.context.commands[index as usize].as_ref().expect("only commands are logged");
            let replayed = spec.execute(command, self.context.now);
            assert!(replayed.is_ok(), "the spec is not deterministic: {command:?} -> {replayed:?} on replay");
        }
        spec
    }

    fn put_spec(&self, log: Rc<[u32]>, spec: S) {
        let mut specs = self.context.specs.borrow_mut();
        if specs.len() >= CACHED_SPECS {
            specs.clear();
        }
        specs.insert(log, spec);
    }
}

impl<S: SequentialSpec> Model for LedgerModel<S> {
    type Op = Op;
    type Ret = Return;

    fn step(&self, op: &Op) -> (Self, Return) {
        let spec = self.take_spec();
        match &op.call {
            Call::Snapshot(sku) => {
                let data = spec.snapshot(*sku);
                self.put_spec(Rc::clone(&self.log), spec);
                (self.clone(), Return::Snapshot(data))
            }
            Call::Command(command) => {
                let result = spec.execute(command, self.context.now);
                if result.is_ok() {
                    let log: Rc<[u32]> = self.log.iter().copied().chain([op.index]).collect();
                    self.put_spec(Rc::clone(&log), spec);
                    (LedgerModel { context: Rc::clone(&self.context), log }, Return::Command(result))
                } else {
                    self.put_spec(Rc::clone(&self.log), spec);
                    (self.clone(), Return::Command(result))
                }
            }
        }
    }
}
