//! The ledger as a [`Model`] for the checker: operations are stockroom
//! [`Command`]s (plain, or keyed: `execute_keyed`) and snapshot reads of one
//! SKU, results are compared exactly (replay flags and reused-key fields
//! included),
//! (outcomes with reservation ids, lines and versions; typed errors;
//! snapshot data), and the sequential behaviour is delegated to a
//! [`SequentialSpec`] — the reference ledger written from
//! `docs/semantics.md`, or (to tell a sequential disagreement from a
//! concurrency bug) a fresh real ledger run one command at a time.
//!
//! Every operation carries the instant it ran at (the ledger's clock is
//! fixed within a phase of a history, so this is exact): the sequential
//! spec runs each command, and sweeps each snapshot read, at that instant.
//!
//! A spec is a mutable object that cannot be cloned, so a model state is
//! the log of the operations that changed it so far (by operation index): a
//! command that succeeded, a keyed command that ran (its result, success or
//! refusal, is now recorded for its key; a replay or a reused key changes
//! nothing), and a refusal or snapshot read that moved the SKU's version (it
//! changed nothing of its own, but swept the holds lapsed by its instant
//! first; the spec's non-sweeping version read tells). A history keeps each
//! key to commands on one SKU, so splitting it per SKU keeps every key's
//! operations together.
//! Equal logs are equal states, which is all the checker's memoization
//! needs. The spec objects themselves live in a small cache keyed by log:
//! stepping a state reuses its spec if cached and rebuilds it by replaying
//! the log into a fresh spec otherwise.

use super::checker::Model;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use stockroom::{Command, CommandError, IdempotencyKey, Keyed, KeyedError, Outcome, SkuId, SnapshotData, Timestamp};

/// A sequential ledger the recorded results are compared against.
pub(crate) trait SequentialSpec {
    /// A ledger with nothing defined.
    fn fresh() -> Self;
    /// Runs one command at `now`.
    fn execute(&self, command: &Command, now: Timestamp) -> Result<Outcome, CommandError>;
    /// Runs one command with an idempotency key at `now`.
    fn execute_keyed(
        &self,
        key: &IdempotencyKey,
        command: &Command,
        now: Timestamp,
    ) -> Result<Keyed<Outcome>, KeyedError>;
    /// The SKU's state at `now` (lapsed holds swept first, as
    /// `Ledger::snapshot` does), if defined.
    fn snapshot(&self, sku: SkuId, now: Timestamp) -> Option<SnapshotData>;
    /// The SKU's version as it stands, without sweeping, if defined.
    fn version(&self, sku: SkuId) -> Option<u64>;
}

/// What a thread did to the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// Ran a command.
    Command(Command),
    /// Ran a command with an idempotency key (a key only ever sent with
    /// commands on one SKU).
    Keyed(IdempotencyKey, Command),
    /// Read a SKU's snapshot.
    Snapshot(SkuId),
}

impl Call {
    /// The SKU the call touches: histories are checked per SKU. Only
    /// single-SKU calls are recorded (an order's lines name one SKU).
    pub(crate) fn sku(&self) -> SkuId {
        match self {
            Call::Command(command) | Call::Keyed(_, command) => command_sku(command),
            Call::Snapshot(sku) => *sku,
        }
    }
}

/// The one SKU a recorded command touches.
fn command_sku(command: &Command) -> SkuId {
    match command {
        Command::AllocateOrder(order) => {
            let sku = order.lines.first().expect("recorded orders have lines").sku;
            assert!(order.lines.iter().all(|line| line.sku == sku), "a recorded order names one SKU");
            sku
        }
        command => command.sku().expect("recorded commands name one SKU"),
    }
}

/// What the call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Return {
    /// A command's outcome or typed error.
    Command(Result<Outcome, CommandError>),
    /// A keyed command's answer.
    Keyed(Result<Keyed<Outcome>, KeyedError>),
    /// A snapshot read (`None`: SKU not defined).
    Snapshot(Option<SnapshotData>),
}

/// A call, the instant it ran at, and its index in the (per-SKU) history
/// being checked.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    /// Index in the history.
    pub(crate) index: u32,
    /// The call.
    pub(crate) call: Call,
    /// The ledger clock's reading while it ran.
    pub(crate) at: Timestamp,
}

struct Context<S> {
    /// Every call of the history and its instant, by operation index.
    calls: Vec<(Call, Timestamp)>,
    /// Live specs by the log they have applied.
    specs: RefCell<HashMap<Rc<[u32]>, S>>,
}

/// A state of the sequential ledger: the operations that changed it so far.
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
    /// The empty ledger, for a history whose operations are `ops` (in
    /// index order).
    pub(crate) fn new<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Self {
        let calls = ops.into_iter().map(|op| (op.call.clone(), op.at)).collect();
        let context = Context { calls, specs: RefCell::new(HashMap::new()) };
        LedgerModel { context: Rc::new(context), log: Rc::from(Vec::new()) }
    }

    /// The spec for this state: cached, or rebuilt by replaying the log.
    fn take_spec(&self) -> S {
        if let Some(spec) = self.context.specs.borrow_mut().remove(&self.log) {
            return spec;
        }
        let spec = S::fresh();
        for &index in self.log.iter() {
            // (A logged refusal or read only swept: its result is not kept.)
            match &self.context.calls[index as usize] {
                (Call::Command(command), at) => drop(spec.execute(command, *at)),
                (Call::Keyed(key, command), at) => drop(spec.execute_keyed(key, command, *at)),
                (Call::Snapshot(sku), at) => drop(spec.snapshot(*sku, *at)),
            }
        }
        spec
    }

    /// This state with `op` logged.
    fn then(&self, op: &Op) -> Self {
        let log: Rc<[u32]> = self.log.iter().copied().chain([op.index]).collect();
        LedgerModel { context: Rc::clone(&self.context), log }
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
        let version = spec.version(op.call.sku());
        let (changed, ret) = match &op.call {
            Call::Snapshot(sku) => (false, Return::Snapshot(spec.snapshot(*sku, op.at))),
            Call::Command(command) => {
                let result = spec.execute(command, op.at);
                (result.is_ok(), Return::Command(result))
            }
            Call::Keyed(key, command) => {
                let result = spec.execute_keyed(key, command, op.at);
                // It ran (and its result is now recorded for the key) unless
                // it was a replay or a reused key.
                let ran =
                    matches!(result, Ok(Keyed { replay: false, .. }) | Err(KeyedError::Refused { replay: false, .. }));
                (ran, Return::Keyed(result))
            }
        };
        let swept = spec.version(op.call.sku()) != version;
        let next = if changed || swept { self.then(op) } else { self.clone() };
        self.put_spec(Rc::clone(&next.log), spec);
        (next, ret)
    }
}
