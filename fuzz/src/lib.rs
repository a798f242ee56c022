//! The code behind stockroom's fuzz targets, shared by the `cargo fuzz`
//! targets (`fuzz_targets/`) and the stable-toolchain corpus replay
//! (`tests/fuzz_replay.rs`, which includes this file by `#[path]`, since the
//! main crate must not depend on the fuzz crate).
//!
//! - [`decode_commands`] maps arbitrary bytes to a short script of
//!   [`Step`]s over a tiny id space (3 SKUs, 5 lots, reservation seqs
//!   0..=5), so that almost every command hits real state; quantities include
//!   0, `Quantity::MAX` and values past it, and the clock moves (forwards and
//!   backwards) between commands.
//! - [`run_differential`] runs such a script on the real `Ledger` and on the
//!   reference model (`tests/common/reference.rs`), comparing every outcome,
//!   every snapshot, and the audit after every step.
//! - [`run_decoders`] feeds the bytes to every public deserializer a host
//!   would load, round-trips whatever decodes, and executes decoded
//!   commands.
//!
//! Every check panics on failure (that is what libFuzzer and the replay test
//! report); nothing here returns an error.

// Also compiled as a module of the replay test, which uses only part of it.
#![allow(unreachable_pub, dead_code, missing_docs)]

#[allow(dead_code, unreachable_pub, unused_imports, unused_mut, clippy::all)]
#[path = "../../tests/common/reference.rs"]
mod reference;

use reference::ReferenceLedger;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Clock, Command, CommandError, FillMode, Ledger, LotAttributes,
    LotId, ManualClock, NewLot, Outcome, Quantity, ReservationId, SkuId, SnapshotData, Timestamp,
};

/// At most this many steps are decoded from one input, so that one input
/// stays fast to run.
pub const MAX_STEPS: usize = 256;

/// The SKUs a script can name: 1 and 2 are defined before the script runs
/// (FEFO and FIFO), 3 only if the script defines it.
pub const SKUS: [SkuId; 3] = [SkuId(1), SkuId(2), SkuId(3)];

/// One step of a fuzzed script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run a command on both ledgers at the current instant.
    Exec(Command),
    /// Move the clock forward (saturating).
    Advance(u64),
    /// Set the clock to an instant (possibly backwards: expiry decisions
    /// must follow the clock, never crash).
    Set(u64),
}

/// Reads bytes, yielding 0 once they run out (so every prefix decodes).
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        for b in &mut raw {
            *b = self.byte();
        }
        u64::from_le_bytes(raw)
    }

    fn sku(&mut self) -> SkuId {
        SKUS[usize::from(self.byte()) % SKUS.len()]
    }

    fn lot(&mut self) -> LotId {
        LotId(u64::from(self.byte() % 5))
    }

    fn reservation(&mut self) -> ReservationId {
        let sku = self.sku();
        ReservationId { sku, seq: u64::from(self.byte() % 6) }
    }

    fn policy(&mut self) -> AllocationPolicy {
        if self.byte() & 1 == 0 { AllocationPolicy::Fefo } else { AllocationPolicy::Fifo }
    }

    /// A raw quantity: mostly small, sometimes at or past the bounds.
    fn quantity(&mut self) -> u64 {
        const EDGES: [u64; 8] = [
            Quantity::MAX.get(),
            Quantity::MAX.get() - 1,
            Quantity::MAX.get() + 1,
            u64::MAX,
            1 << 47,
            (1 << 47) + 1,
            i64::MAX as u64,
            1_000_000,
        ];
        let tag = self.byte();
        match tag >> 5 {
            0..=3 => u64::from(tag & 31),
            4 => EDGES[usize::from(tag & 7)],
            5 => u64::from(self.u16()),
            6 => self.u64(),
            _ => u64::from(tag & 31) * 100,
        }
    }

    fn optional_quantity(&mut self) -> Option<u64> {
        if self.byte() & 1 == 0 { None } else { Some(self.quantity()) }
    }

    /// A signed delta: the sign, then a magnitude (clamped into `i64`).
    fn delta(&mut self) -> i64 {
        let negative = self.byte() & 1 == 1;
        let magnitude = self.quantity();
        match (negative, i64::try_from(magnitude)) {
            (false, Ok(m)) => m,
            (true, Ok(m)) => -m,
            (false, Err(_)) => i64::MAX,
            (true, Err(_)) => i64::MIN,
        }
    }

    /// An instant or a span in milliseconds: mostly small (the clock starts
    /// at 0), sometimes the end of time.
    fn millis(&mut self) -> u64 {
        let tag = self.byte();
        match tag {
            0..=199 => u64::from(tag) * 5,
            200..=249 => u64::from(tag - 200),
            250 => u64::MAX,
            251 => u64::MAX - 1,
            252 => 86_400_000,
            253 => i64::MAX as u64,
            _ => u64::from(self.u16()),
        }
    }

    fn optional_instant(&mut self) -> Option<Timestamp> {
        if self.byte() & 1 == 0 { None } else { Some(Timestamp(self.millis())) }
    }

    fn shelf_life(&mut self) -> Duration {
        match self.byte() % 8 {
            0..=3 => Duration::ZERO,
            4 => Duration::from_millis(self.millis()),
            5 => Duration::from_micros(u64::from(self.byte()) * 700),
            6 => Duration::MAX,
            _ => Duration::from_secs(u64::MAX / 1000),
        }
    }

    fn attributes(&mut self) -> Option<LotAttributes> {
        match self.byte() % 4 {
            0 | 1 => None,
            2 => Some(LotAttributes::default()),
            _ => Some(LotAttributes { supplier: Some("acme".into()), location: Some("A-1-3".into()) }),
        }
    }

    fn request(&mut self) -> AllocateRequest {
        let sku = self.sku();
        let quantity = self.quantity();
        let fill = if self.byte() & 1 == 0 { FillMode::FillOrKill } else { FillMode::Partial };
        let policy = match self.byte() % 3 {
            0 => None,
            1 => Some(AllocationPolicy::Fefo),
            _ => Some(AllocationPolicy::Fifo),
        };
        let min_shelf_life = self.shelf_life();
        AllocateRequest { sku, quantity, fill, policy, min_shelf_life }
    }

    fn reason(&mut self) -> AdjustmentReason {
        use AdjustmentReason::*;
        [Receipt, Spoilage, Recount, Damage, Recalibration, Expiry, Other][usize::from(self.byte() % 7)]
    }

    fn step(&mut self) -> Step {
        match self.byte() % 10 {
            0 => Step::Exec(Command::DefineSku { sku: self.sku(), policy: self.policy() }),
            1 => {
                let sku = self.sku();
                let id = self.lot();
                let quantity = self.quantity();
                let received_at = self.optional_instant();
                let expires_at = self.optional_instant();
                let attributes = self.attributes();
                Step::Exec(Command::Receive { sku, lot: NewLot { id, quantity, received_at, expires_at, attributes } })
            }
            2 | 3 => Step::Exec(Command::Allocate(self.request())),
            4 => Step::Exec(Command::Take(self.request())),
            5 => Step::Exec(Command::Release { reservation: self.reservation() }),
            6 => {
                let reservation = self.reservation();
                Step::Exec(Command::Commit { reservation, quantity: self.optional_quantity() })
            }
            7 => {
                let sku = self.sku();
                let lot = self.lot();
                let delta = self.delta();
                Step::Exec(Command::Adjust { sku, lot, delta, reason: self.reason() })
            }
            8 => Step::Advance(self.millis()),
            _ => Step::Set(self.millis()),
        }
    }
}

/// Decodes bytes into a script of at most [`MAX_STEPS`] steps. Every byte
/// string decodes; missing bytes read as zero.
pub fn decode_commands(data: &[u8]) -> Vec<Step> {
    let mut bytes = Bytes { data };
    let mut steps = Vec::new();
    while !bytes.is_empty() && steps.len() < MAX_STEPS {
        steps.push(bytes.step());
    }
    steps
}

/// The commands every script starts from: SKU 1 (FEFO) and SKU 2 (FIFO)
/// defined, SKU 3 not.
pub fn prelude() -> Vec<Command> {
    vec![
        Command::DefineSku { sku: SKUS[0], policy: AllocationPolicy::Fefo },
        Command::DefineSku { sku: SKUS[1], policy: AllocationPolicy::Fifo },
    ]
}

/// The real ledger and the reference model side by side.
struct Pair {
    clock: Arc<ManualClock>,
    ledger: Ledger,
    reference: ReferenceLedger,
}

impl Pair {
    fn new() -> Pair {
        let clock = Arc::new(ManualClock::new(Timestamp(0)));
        let ledger = Ledger::with_clock(clock.clone());
        Pair { clock, ledger, reference: ReferenceLedger::new() }
    }

    fn data(&self, sku: SkuId) -> Option<SnapshotData> {
        self.ledger.snapshot(sku).ok().map(|snapshot| snapshot.to_data())
    }

    /// Runs one command on both, checks they agree on the outcome and on
    /// the SKU it touched, that a refusal changed nothing, and that the
    /// audit is clean.
    fn exec(&mut self, step: usize, command: &Command) -> Result<Outcome, CommandError> {
        let now = self.clock.now();
        let sku = command.sku();
        let before = self.data(sku);
        let real = self.ledger.execute(command);
        let model = self.reference.execute(command, now);
        assert_eq!(real, model, "step {step}: outcome differs from the reference at {now:?} for {command:?}");
        let after = self.data(sku);
        if real.is_err() {
            assert_eq!(before, after, "step {step}: refused {command:?} changed the SKU");
        } else {
            let version = after.as_ref().map(|data| data.version);
            let expected = before.as_ref().map_or(Some(0), |data| Some(data.version + 1));
            assert_eq!(version, expected, "step {step}: {command:?} is not exactly one version");
        }
        assert_eq!(after, self.reference.snapshot(sku), "step {step}: snapshot of {sku:?} differs after {command:?}");
        let audit = self.ledger.audit();
        assert!(audit.is_clean(), "step {step}: audit after {command:?}: {audit:?}");
        real
    }

    /// Every SKU's snapshot, and the set of SKUs, must agree.
    fn compare_all(&self) {
        let mut real = self.ledger.skus();
        let mut model = self.reference.skus();
        real.sort();
        model.sort();
        assert_eq!(real, model, "the ledgers define different SKUs");
        for sku in real {
            assert_eq!(self.data(sku), self.reference.snapshot(sku), "final snapshot of {sku:?} differs");
        }
        let audit = self.ledger.audit();
        assert!(audit.is_clean(), "final audit: {audit:?}");
    }
}

/// Runs a decoded script on the real ledger and the reference model and
/// panics at the first disagreement or broken invariant.
pub fn run_differential(data: &[u8]) {
    run_script(&decode_commands(data));
}

/// Runs a script (after the [`prelude`]) on both ledgers.
pub fn run_script(steps: &[Step]) {
    let mut pair = Pair::new();
    for command in prelude() {
        pair.exec(0, &command).expect("the prelude succeeds");
    }
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Exec(command) => {
                let _ = pair.exec(index + 1, command);
            }
            Step::Advance(millis) => pair.clock.advance(Duration::from_millis(*millis)),
            Step::Set(millis) => pair.clock.set(Timestamp(*millis)),
        }
    }
    pair.compare_all();
}

/// Decodes `data` as `T`; whatever decodes must re-serialize and decode to
/// an equal value.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&value).expect("a decoded value serializes");
    let again: T = serde_json::from_slice(&json).unwrap_or_else(|error| {
        panic!("{value:?} re-serialized as {} does not decode: {error}", String::from_utf8_lossy(&json))
    });
    assert_eq!(value, again, "round trip through {}", String::from_utf8_lossy(&json));
    Some(value)
}

/// A ledger on a manual clock with `sku` defined and some state on it: two
/// lots (one expiring at 100 ms), a live reservation (seq 1) and an ended
/// one (seq 2). Time is 50 ms.
fn stocked(sku: SkuId) -> Ledger {
    let clock = Arc::new(ManualClock::new(Timestamp(50)));
    let ledger = Ledger::with_clock(clock);
    ledger.define_sku(sku, AllocationPolicy::Fefo).expect("define");
    ledger.receive(sku, NewLot::new(LotId(1), 10).expires_at(Timestamp(100))).expect("receive lot 1");
    ledger.receive(sku, NewLot::new(LotId(2), 20)).expect("receive lot 2");
    ledger.allocate(&AllocateRequest::new(sku, 12)).expect("allocate seq 1");
    let ended = ledger.allocate(&AllocateRequest::new(sku, 3)).expect("allocate seq 2");
    ledger.commit(ended.reservation, None).expect("commit seq 2");
    assert!(ledger.audit().is_clean());
    ledger
}

/// Runs a decoded command on a ledger: it must not panic, and must leave
/// the audit clean; a refusal must leave the SKU as it was.
fn execute_checked(ledger: &Ledger, command: &Command) {
    let sku = command.sku();
    let before = ledger.snapshot(sku).ok().map(|snapshot| snapshot.to_data());
    let result = ledger.execute(command);
    let after = ledger.snapshot(sku).ok().map(|snapshot| snapshot.to_data());
    if result.is_err() {
        assert_eq!(before, after, "refused {command:?} changed the SKU");
    }
    let audit = ledger.audit();
    assert!(audit.is_clean(), "audit after {command:?}: {audit:?}");
}

/// At most this many commands of a decoded `Vec<Command>` are executed.
pub const MAX_DECODED_COMMANDS: usize = 64;

/// Feeds `data` to every public deserializer a host would load. Bad input
/// must be an `Err`, never a panic; what decodes must round-trip; decoded
/// commands, requests and lots are executed and must leave the audit clean;
/// a decoded command list runs on the real ledger and the reference model,
/// which must agree.
pub fn run_decoders(data: &[u8]) {
    if let Some(command) = round_trip::<Command>(data) {
        // On a ledger where the command's SKU has stock and reservations …
        execute_checked(&stocked(command.sku()), &command);
        // … and on an empty one (unknown SKU, or a first definition).
        execute_checked(&Ledger::with_clock(Arc::new(ManualClock::default())), &command);
    }
    if let Some(commands) = round_trip::<Vec<Command>>(data) {
        let mut pair = Pair::new();
        for (index, command) in commands.iter().take(MAX_DECODED_COMMANDS).enumerate() {
            let _ = pair.exec(index, command);
        }
        pair.compare_all();
    }
    let _ = round_trip::<SnapshotData>(data);
    let _ = round_trip::<Outcome>(data);
    let _ = round_trip::<CommandError>(data);
    if let Some(request) = round_trip::<AllocateRequest>(data) {
        let ledger = stocked(request.sku);
        execute_checked(&ledger, &Command::Allocate(request.clone()));
        execute_checked(&ledger, &Command::Take(request));
    }
    if let Some(lot) = round_trip::<NewLot>(data) {
        let ledger = stocked(SKUS[0]);
        execute_checked(&ledger, &Command::Receive { sku: SKUS[0], lot });
    }
    if let Some(quantity) = round_trip::<Quantity>(data) {
        assert!(quantity <= Quantity::MAX, "{quantity:?} decoded past the maximum");
    }
}
