//! The code behind stockroom's fuzz targets, shared by the `cargo fuzz`
//! targets (`fuzz_targets/`) and the stable-toolchain corpus replay
//! (`tests/fuzz_replay.rs`, which includes this file by `#[path]`, since the
//! main crate must not depend on the fuzz crate).
//!
//! - [`decode_commands`] maps arbitrary bytes to a short script of
//!   [`Step`]s over a tiny id space (3 SKUs, 5 lots, and reservations
//!   named by a [`Pick`] among the ones the script was granted), so that
//!   almost every command hits real state; quantities include 0,
//!   `Quantity::MAX` and values past it, and the clock moves (forwards and
//!   backwards) between commands. Four formats: an input whose first byte
//!   is in [`V2_MARKERS`] is a *v2* script, which also has holds with
//!   deadlines and expected versions, multi-line orders, extensions,
//!   `expire_due`, low-stock thresholds, conditional commands against the
//!   current version and query steps; one whose first byte is in
//!   [`V3_MARKERS`] is a *v3* script: v2's steps plus keyed commands
//!   (`execute_keyed` with one of [`KEYS`] idempotency keys, often repeating
//!   the key's last command); one whose first byte is in [`V4_MARKERS`] is
//!   a *v4* script: v3's steps with a reservation field that picks among
//!   every id granted so far ([`Pick::Recent`], [`Pick::Oldest`]) or names
//!   one never issued or not live ([`Pick::Other`]); any other input is a
//!   *v1* script, decoded exactly as before v2 existed. v1–v3 inputs
//!   consume the same bytes as they always did, and their reservation
//!   field "seq k" is read as [`Pick::Nth`], the k-th reservation granted
//!   on the SKU: what seq k named when those corpora were made (seqs were
//!   1, 2, 3, … per SKU then; now a seq is the version its allocation
//!   produced). So every kept corpus still means what it meant.
//!   `fuzz/README.md` has the byte format.
//! - [`run_differential`] runs such a script on the real `Ledger` and on the
//!   reference model (`tests/common/reference.rs`), comparing every outcome,
//!   the touched SKUs' snapshots through the sweeping queries (with their
//!   versions: a refusal leaves only its sweep, a success one more, a
//!   replay or a reused key nothing), and the audit after every step. Both
//!   ledgers remember keys as [`KEY_WINDOW`] says (briefly, and fewer than
//!   [`KEYS`]), so keys are forgotten by time and by count.
//! - [`run_decoders`] feeds the bytes to every public deserializer a host
//!   would load, round-trips whatever decodes, and executes decoded
//!   commands and orders on the ledger and the reference model side by
//!   side.
//!
//! Every check panics on failure (that is what libFuzzer and the replay test
//! report); nothing here returns an error.

// Also compiled as a module of the replay test, which uses only part of it.
#![allow(unreachable_pub, dead_code, missing_docs)]

#[allow(dead_code, unreachable_pub, unused_imports, unused_mut, clippy::all)]
#[path = "../../tests/common/reference.rs"]
mod reference;

use reference::{ReferenceLedger, touched};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use stockroom::{
    AdjustmentReason, AllocateRequest, AllocationPolicy, Clock, Command, CommandError, FillMode, IdempotencyKey,
    KeyWindow, Keyed, KeyedError, Ledger, LedgerBuilder, LotAttributes, LotId, LowStock, LowStockBasis, ManualClock,
    NewLot, OrderLine, OrderRequest, Outcome, Quantity, ReservationId, SkuId, SnapshotData, Timestamp,
};

/// At most this many steps are decoded from one input, so that one input
/// stays fast to run.
pub const MAX_STEPS: usize = 256;

/// The SKUs a script can name: 1 and 2 are defined before the script runs
/// (FEFO and FIFO), 3 only if the script defines it.
pub const SKUS: [SkuId; 3] = [SkuId(1), SkuId(2), SkuId(3)];

/// A first byte that makes an input a v2 script (absent from every first
/// byte of the v1 corpus).
pub const V2_MARKERS: std::ops::RangeInclusive<u8> = 0xE6..=0xF0;

/// A first byte that makes an input a v3 script: v2 plus keyed commands
/// (absent from every first byte of the v1 and v2 corpus).
pub const V3_MARKERS: std::ops::RangeInclusive<u8> = 0xD0..=0xDF;

/// A first byte that makes an input a v4 script: v3 with reservations
/// picked among the ids granted so far (absent from every first byte of
/// the v1, v2 and v3 corpus).
pub const V4_MARKERS: std::ops::RangeInclusive<u8> = 0xC0..=0xCF;

/// How many idempotency keys a v3 script uses.
pub const KEYS: usize = 4;

/// How long and how many idempotency keys the differential ledgers
/// remember: briefly (a few clock moves), and fewer than [`KEYS`].
pub const KEY_WINDOW: KeyWindow = KeyWindow { window: Duration::from_millis(300), keys_max: 2 };

/// The v2 opcodes of the steps that run one command (no clock moves, no
/// queries): what a keyed step's command is decoded from.
const COMMAND_OPS: [u8; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14];

/// The longest hold the differential ledgers allow: short, so that holds
/// lapse within a script's clock moves (v1 scripts have no deadlines, so
/// it changes nothing for them).
pub const HOLD_MAX: Duration = Duration::from_millis(300);

/// A reservation a step names, resolved when the step runs from the ids
/// the script was granted so far (allocations and order parts, in the
/// order they were granted; see [`Pick::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// v1–v3: the `n`-th (from 1) reservation granted on the SKU; `n = 0`
    /// is seq 0. Not granted yet: seq `u64::MAX` (`UnknownReservation`,
    /// as a seq not yet issued was).
    Nth(SkuId, u8),
    /// v4: the `n`-th most recently granted id (0: the newest), wrapping.
    Recent(u8),
    /// v4: the `n`-th granted id from the oldest (0: the first), wrapping.
    Oldest(u8),
    /// v4: an id of the SKU, by [`Other`].
    Other(SkuId, Other),
}

/// The ids [`Pick::Other`] names: never issued, or not (or no longer) live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Other {
    /// Seq 0: never issued.
    Zero,
    /// The SKU's version once lapsed holds are swept: the latest change
    /// (a live hold, an ended one, or no hold at all).
    Current,
    /// One past that version: not issued yet.
    Next,
    /// Seq `u64::MAX`: not issued yet.
    Max,
}

impl Pick {
    /// The id this pick names now: `granted` is every id granted so far,
    /// oldest first, and `version` the SKU's version once lapsed holds are
    /// swept (`None`: undefined). A `Recent` or `Oldest` pick with nothing
    /// granted yet names seq 0 of SKU 1.
    pub fn resolve(self, granted: &[ReservationId], version: impl Fn(SkuId) -> Option<u64>) -> ReservationId {
        let count = granted.len();
        match self {
            Pick::Nth(sku, 0) => ReservationId::new(sku, 0),
            Pick::Nth(sku, nth) => granted
                .iter()
                .filter(|id| id.sku == sku)
                .nth(usize::from(nth) - 1)
                .copied()
                .unwrap_or(ReservationId::new(sku, u64::MAX)),
            Pick::Recent(_) | Pick::Oldest(_) if count == 0 => ReservationId::new(SKUS[0], 0),
            Pick::Recent(back) => granted[count - 1 - usize::from(back) % count],
            Pick::Oldest(index) => granted[usize::from(index) % count],
            Pick::Other(sku, other) => {
                let current = version(sku).unwrap_or(0);
                ReservationId::new(
                    sku,
                    match other {
                        Other::Zero => 0,
                        Other::Current => current,
                        Other::Next => current.saturating_add(1),
                        Other::Max => u64::MAX,
                    },
                )
            }
        }
    }
}

/// What a reservation step does to the reservation it picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// `release`.
    Release,
    /// `commit` of this many units (`None`: all).
    Commit(Option<u64>),
    /// `extend` by this span.
    Extend(Duration),
}

/// One step of a fuzzed script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run a command on both ledgers at the current instant.
    Exec(Command),
    /// Release, commit or extend the reservation the pick names when the
    /// step runs (extensions: v2 and later).
    Lifecycle(Pick, Lifecycle),
    /// Run a command whose `expected_version` is set, just before it runs,
    /// to the version its SKU is at once lapsed holds are swept, plus the
    /// offset (0: current; -1: stale; 1: ahead). v2 only.
    Conditional(Command, i8),
    /// Compare `reservation(id)` for the id the pick names (asked first:
    /// it may be the query that finds the hold lapsed), then that SKU's
    /// availability and snapshot. v2 and later.
    Query(Pick),
    /// Move the clock forward (saturating).
    Advance(u64),
    /// Set the clock to an instant; one before the clock's reading leaves
    /// it where it is (a ledger's time never runs backwards).
    Set(u64),
    /// Send a command with idempotency key `key` (below [`KEYS`]): the
    /// command of `step` (an `Exec`, `Lifecycle` or `Conditional`, resolved
    /// as those are), or with `None` the last command sent with that key
    /// (nothing, if none was). v3 and later.
    Keyed { key: usize, step: Option<Box<Step>> },
}

/// Reads bytes, yielding 0 once they run out (so every prefix decodes).
struct Bytes<'a> {
    data: &'a [u8],
    /// Whether this is a v2 (or v3) script.
    v2: bool,
    /// Whether this is a v3 (or v4) script.
    v3: bool,
    /// Whether this is a v4 script.
    v4: bool,
    /// The clock the steps decoded so far leave (the runner's starts at
    /// 0), so `expire_due` instants can be decoded relative to it.
    clock: u64,
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

    /// v1–v3: a *sku*, then `n = b % 6`: [`Pick::Nth`]. v4: tag `t`:
    /// 0–191 → [`Pick::Recent`] `t % 16`; 192–223 → [`Pick::Oldest`]
    /// `t - 192`; 224–255 → a *sku*, then [`Pick::Other`] by `t % 4`
    /// (seq 0, the current version, the next one, `u64::MAX`).
    fn reservation(&mut self) -> Pick {
        if !self.v4 {
            let sku = self.sku();
            return Pick::Nth(sku, self.byte() % 6);
        }
        let tag = self.byte();
        match tag {
            0..=191 => Pick::Recent(tag % 16),
            192..=223 => Pick::Oldest(tag - 192),
            _ => {
                let sku = self.sku();
                Pick::Other(sku, [Other::Zero, Other::Current, Other::Next, Other::Max][usize::from(tag % 4)])
            }
        }
    }

    fn policy(&mut self) -> AllocationPolicy {
        if self.byte() & 1 == 0 { AllocationPolicy::Fefo } else { AllocationPolicy::Fifo }
    }

    /// A raw quantity: mostly small, sometimes at or past the bounds.
    fn quantity(&mut self) -> u64 {
        /// Half the maximum, rounded up: one fits, two overflow a SKU's
        /// inflow (2 × `HALF` = `MAX` + 1). These edges were 2^47 and
        /// 2^47 + 1 while the maximum was 2^48 - 1: the same meaning.
        const HALF: u64 = Quantity::MAX.get() / 2 + 1;
        const EDGES: [u64; 8] = [
            Quantity::MAX.get(),
            Quantity::MAX.get() - 1,
            Quantity::MAX.get() + 1,
            u64::MAX,
            HALF,
            HALF + 1,
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
            _ => Some(LotAttributes::default().supplier("acme")),
        }
    }

    fn optional_policy(&mut self) -> Option<AllocationPolicy> {
        match self.byte() % 3 {
            0 => None,
            1 => Some(AllocationPolicy::Fefo),
            _ => Some(AllocationPolicy::Fifo),
        }
    }

    /// v1: no hold duration, no expected version; v2 reads both after the
    /// v1 fields.
    fn request(&mut self) -> AllocateRequest {
        let sku = self.sku();
        let quantity = self.quantity();
        let fill = if self.byte() & 1 == 0 { FillMode::FillOrKill } else { FillMode::Partial };
        let policy = self.optional_policy();
        let min_shelf_life = self.shelf_life();
        let mut request = AllocateRequest::new(sku, quantity).fill(fill).min_shelf_life(min_shelf_life);
        request.policy = policy;
        if self.v2 {
            request.hold_for = self.hold_for();
            request.expected_version = self.expected_version();
        }
        request
    }

    /// A hold duration: often none, mostly short, sometimes zero,
    /// sub-millisecond, at or past [`HOLD_MAX`], or huge.
    fn hold_for(&mut self) -> Option<Duration> {
        let tag = self.byte();
        match tag {
            0..=99 => None,
            100..=199 => Some(Duration::from_millis(u64::from(tag - 100) * 3 + 1)),
            200 => Some(Duration::ZERO),
            201 => Some(Duration::from_micros(500)),
            202 => Some(HOLD_MAX),
            203 => Some(HOLD_MAX + Duration::from_nanos(1)),
            204 => Some(Duration::MAX),
            _ => Some(Duration::from_millis(self.millis())),
        }
    }

    /// A literal expected version: mostly none (the current version comes
    /// from [`Step::Conditional`]).
    fn expected_version(&mut self) -> Option<u64> {
        let tag = self.byte();
        match tag {
            0..=223 => None,
            255 => Some(u64::MAX),
            _ => Some(u64::from(tag - 224)),
        }
    }

    /// A span to extend a deadline by.
    fn extension(&mut self) -> Duration {
        match self.byte() % 8 {
            0 => Duration::ZERO,
            1 => Duration::from_micros(500),
            2 => Duration::MAX,
            _ => Duration::from_millis(self.millis()),
        }
    }

    /// A multi-line order: 1–4 lines usually; rarely none, or one past
    /// the maximum.
    fn order(&mut self) -> OrderRequest {
        let tag = self.byte();
        let count = match tag {
            0..=249 => usize::from(tag % 4) + 1,
            250..=252 => 0,
            _ => OrderRequest::LINES_MAX + 1,
        };
        let lines = (0..count.min(4))
            .map(|_| {
                let sku = self.sku();
                let quantity = self.quantity();
                let policy = self.optional_policy();
                let min_shelf_life = self.shelf_life();
                let mut line = OrderLine::new(sku, quantity).min_shelf_life(min_shelf_life);
                line.policy = policy;
                line
            })
            .collect::<Vec<_>>();
        let lines = if count > 4 { vec![OrderLine::new(SKUS[0], 1); count] } else { lines };
        let mut order = OrderRequest::new(lines);
        order.hold_for = self.hold_for();
        order
    }

    /// An instant for `expire_due`: usually the clock, or before it, or
    /// (refused) after it, or any instant.
    fn sweep_instant(&mut self) -> Timestamp {
        let tag = self.byte();
        Timestamp(match tag {
            0..=127 => self.clock,
            128..=191 => self.clock.saturating_sub(u64::from(tag - 128) * 5),
            192..=223 => self.clock.saturating_add(u64::from(tag - 191)),
            _ => self.millis(),
        })
    }

    fn threshold(&mut self) -> Option<LowStock> {
        let shape = self.byte();
        if shape & 1 == 0 {
            return None;
        }
        let basis = if shape & 2 == 0 { LowStockBasis::Available } else { LowStockBasis::OnHand };
        let margin = if shape & 4 == 0 { 0 } else { self.quantity() };
        Some(LowStock::new(self.quantity()).rearm_margin(margin).basis(basis))
    }

    fn adjust(&mut self) -> Command {
        let sku = self.sku();
        let lot = self.lot();
        let delta = self.delta();
        let reason = self.reason();
        let expected_version = if self.v2 { self.expected_version() } else { None };
        Command::Adjust { sku, lot, delta, reason, expected_version }
    }

    fn reason(&mut self) -> AdjustmentReason {
        use AdjustmentReason::*;
        [Receipt, Spoilage, Recount, Damage, Recalibration, Expiry, Other][usize::from(self.byte() % 7)]
    }

    fn receive(&mut self) -> Command {
        let sku = self.sku();
        let id = self.lot();
        let quantity = self.quantity();
        let received_at = self.optional_instant();
        let expires_at = self.optional_instant();
        let attributes = self.attributes();
        let mut lot = NewLot::new(id, quantity);
        (lot.received_at, lot.expires_at, lot.attributes) = (received_at, expires_at, attributes);
        Command::Receive { sku, lot }
    }

    fn step(&mut self) -> Step {
        let step = if self.v3 {
            // v4 steps are v3's; only the reservation field differs.
            self.step_v3()
        } else if self.v2 {
            let op = self.byte();
            self.step_v2(op)
        } else {
            self.step_v1()
        };
        match step {
            Step::Advance(millis) => self.clock = self.clock.saturating_add(millis),
            Step::Set(millis) => self.clock = millis,
            _ => {}
        }
        step
    }

    /// The v1 step table, unchanged.
    fn step_v1(&mut self) -> Step {
        let op = self.byte() % 10;
        self.step_base(op)
    }

    /// The ten steps every format has, by opcode 0–9 (v2 and v3 requests
    /// and adjustments read more bytes than v1's: see `request`, `adjust`).
    fn step_base(&mut self, op: u8) -> Step {
        match op {
            0 => Step::Exec(Command::DefineSku { sku: self.sku(), policy: self.policy() }),
            1 => Step::Exec(self.receive()),
            2 | 3 => Step::Exec(Command::Allocate(self.request())),
            4 => Step::Exec(Command::Take(self.request())),
            5 => Step::Lifecycle(self.reservation(), Lifecycle::Release),
            6 => {
                let pick = self.reservation();
                Step::Lifecycle(pick, Lifecycle::Commit(self.optional_quantity()))
            }
            7 => Step::Exec(self.adjust()),
            8 => Step::Advance(self.millis()),
            _ => Step::Set(self.millis()),
        }
    }

    /// The v2 step table: v1's ten (with v2 requests and adjustments) and
    /// the lifecycle commands, by opcode `op % 16`.
    fn step_v2(&mut self, op: u8) -> Step {
        match op % 16 {
            base @ 0..=9 => self.step_base(base),
            10 => Step::Exec(Command::AllocateOrder(self.order())),
            11 => {
                let pick = self.reservation();
                Step::Lifecycle(pick, Lifecycle::Extend(self.extension()))
            }
            12 => Step::Exec(Command::ExpireDue { now: self.sweep_instant() }),
            13 => {
                let sku = self.sku();
                Step::Exec(Command::SetLowStock { sku, rule: self.threshold() })
            }
            14 => {
                let tag = self.byte();
                let command = match tag % 3 {
                    0 => Command::Allocate(self.request()),
                    1 => Command::Take(self.request()),
                    _ => self.adjust(),
                };
                Step::Conditional(command, [0, 0, -1, 1][usize::from(tag >> 6)])
            }
            _ => Step::Query(self.reservation()),
        }
    }

    /// The v3 step table, by opcode `op % 20`: 0–15 are v2's, 16–19 a keyed
    /// command. A keyed step's next byte `k` names the key (`k % 4`) and,
    /// if `k & 0b1100` is 0, is followed by a command (an opcode byte
    /// `c`, v2 opcode `COMMAND_OPS[c % 13]`, and that step's fields);
    /// otherwise the key's last command is sent again.
    fn step_v3(&mut self) -> Step {
        let op = self.byte() % 20;
        if op < 16 {
            return self.step_v2(op);
        }
        let tag = self.byte();
        let key = usize::from(tag) % KEYS;
        let step = if tag & 0b1100 == 0 {
            let op = COMMAND_OPS[usize::from(self.byte()) % COMMAND_OPS.len()];
            Some(Box::new(self.step_v2(op)))
        } else {
            None
        };
        Step::Keyed { key, step }
    }
}

/// Decodes bytes into a script of at most [`MAX_STEPS`] steps. Every byte
/// string decodes; missing bytes read as zero.
pub fn decode_commands(data: &[u8]) -> Vec<Step> {
    let (v2, v3, v4, data) = match data.split_first() {
        Some((first, rest)) if V2_MARKERS.contains(first) => (true, false, false, rest),
        Some((first, rest)) if V3_MARKERS.contains(first) => (true, true, false, rest),
        Some((first, rest)) if V4_MARKERS.contains(first) => (true, true, true, rest),
        _ => (false, false, false, data),
    };
    let mut bytes = Bytes { data, v2, v3, v4, clock: 0 };
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

/// The command's `expected_version` field, if it has one.
fn expected_version(command: &mut Command) -> Option<&mut Option<u64>> {
    match command {
        Command::Allocate(request) | Command::Take(request) => Some(&mut request.expected_version),
        Command::Adjust { expected_version, .. } => Some(expected_version),
        _ => None,
    }
}

/// The real ledger and the reference model side by side.
struct Pair {
    clock: Arc<ManualClock>,
    ledger: Ledger,
    reference: ReferenceLedger,
    /// The idempotency keys of keyed steps, and the last command sent with
    /// each.
    keys: Vec<(IdempotencyKey, Option<Command>)>,
    /// Every reservation granted so far (allocations and order parts, a
    /// replay adding nothing), oldest first: what a [`Pick`] names.
    granted: Vec<ReservationId>,
}

impl Pair {
    /// Both ledgers, remembering keys as [`KEY_WINDOW`] says.
    fn new(start: Timestamp, hold_max: Duration) -> Pair {
        let clock = Arc::new(ManualClock::new(start));
        let ledger = Ledger::builder()
            .clock(clock.clone())
            .hold_max(hold_max)
            .key_window(KEY_WINDOW)
            .build()
            .expect("hold_max and the key window are not zero");
        let keys =
            (0..KEYS).map(|key| (IdempotencyKey::new(format!("key-{key}")).expect("a short key"), None)).collect();
        Pair { clock, ledger, reference: ReferenceLedger::with_limits(hold_max, KEY_WINDOW), keys, granted: Vec::new() }
    }

    /// The SKU through the sweeping query.
    fn data(&self, sku: SkuId) -> Option<SnapshotData> {
        self.ledger.snapshot(sku).ok().map(|snapshot| snapshot.to_data())
    }

    /// Compares the SKU through the sweeping queries at the current instant.
    fn compare(&self, step: usize, sku: SkuId, after: &dyn Debug) {
        let now = self.clock.now();
        assert_eq!(
            self.data(sku),
            self.reference.snapshot(sku, now),
            "step {step}: snapshot of {sku:?} differs after {after:?}"
        );
    }

    /// Runs one command on both, checks they agree on the outcome and on
    /// the SKUs it touched, that a refusal left only its sweep's version
    /// and a success one more, and that the audit is clean.
    fn exec(&mut self, step: usize, command: &Command) -> Result<Outcome, CommandError> {
        let now = self.clock.now();
        let before = command.sku().map(|sku| (sku, self.reference.version_at(sku, now)));
        let real = self.ledger.execute(command);
        let model = self.reference.execute(command, now);
        assert_eq!(real, model, "step {step}: outcome differs from the reference at {now:?} for {command:?}");
        if let Ok(outcome) = &real {
            self.grant(outcome);
        }
        self.check_after(step, command, before, real.is_ok());
        real
    }

    /// Adds the reservations `outcome` granted to [`Pair::granted`] (a
    /// replayed outcome's are there already).
    fn grant(&mut self, outcome: &Outcome) {
        let ids: Vec<ReservationId> = match outcome {
            Outcome::Allocated(allocation) => vec![allocation.reservation],
            Outcome::OrderAllocated(placed) => placed.allocations.iter().map(|part| part.reservation).collect(),
            _ => return,
        };
        for id in ids {
            if !self.granted.contains(&id) {
                self.granted.push(id);
            }
        }
    }

    /// The id `pick` names now.
    fn pick(&self, pick: Pick) -> ReservationId {
        let now = self.clock.now();
        pick.resolve(&self.granted, |sku| self.reference.version_at(sku, now))
    }

    /// Runs one command with key number `key` on both, checks they agree
    /// exactly (replay flags, reused-key fields, replayed results), then
    /// checks as [`Pair::exec`] does, a replay or a reused key counting as
    /// a change of nothing.
    fn exec_keyed(&mut self, step: usize, key: usize, command: &Command) -> Result<Keyed<Outcome>, KeyedError> {
        let now = self.clock.now();
        self.keys[key].1 = Some(command.clone());
        let key = &self.keys[key].0;
        let before = command.sku().map(|sku| (sku, self.reference.version_at(sku, now)));
        let real = self.ledger.execute_keyed(key, command);
        let model = self.reference.execute_keyed(key, command, now);
        assert_eq!(
            real, model,
            "step {step}: keyed ({key}) outcome differs from the reference at {now:?} for {command:?}"
        );
        if let Ok(keyed) = &real {
            self.grant(&keyed.outcome);
        }
        let succeeded = matches!(real, Ok(Keyed { replay: false, .. }));
        self.check_after(step, command, before, succeeded);
        real
    }

    /// After `command` ran at the clock's instant: a success (`succeeded`)
    /// left its SKU one version past `before` (the version once lapsed
    /// holds are swept), anything else at `before`; the touched SKUs agree;
    /// the audit is clean.
    fn check_after(&self, step: usize, command: &Command, before: Option<(SkuId, Option<u64>)>, succeeded: bool) {
        let now = self.clock.now();
        if let Some((sku, before)) = before {
            let want = match (succeeded, before) {
                (true, None) => Some(0),
                (true, Some(version)) => Some(version + 1),
                (false, before) => before,
            };
            // A hold made with a sub-millisecond duration has lapsed at once:
            // the snapshot read below sweeps it, one more version.
            let pending = self.reference.version_at(sku, now).zip(self.reference.peek(sku));
            let pending = pending.map_or(0, |(version, data)| version - data.version);
            let want = want.map(|version| version + if succeeded { pending } else { 0 });
            let after = self.data(sku).map(|data| data.version);
            assert_eq!(after, want, "step {step}: {command:?} at {now:?} left the wrong version");
        }
        for sku in touched(command, &self.reference.skus()) {
            self.compare(step, sku, command);
        }
        let audit = self.ledger.audit();
        assert!(audit.is_clean(), "step {step}: audit after {command:?}: {audit:?}");
    }

    /// `reservation(id)` for the id `pick` names first, then the SKU's
    /// availability and snapshot.
    fn query(&self, step: usize, pick: Pick) {
        let id = self.pick(pick);
        let now = self.clock.now();
        assert_eq!(self.ledger.reservation(id), self.reference.reservation(id, now), "step {step}: query of {id:?}");
        for shelf_life in [Duration::ZERO, Duration::from_millis(100)] {
            assert_eq!(
                self.ledger.available(id.sku, shelf_life),
                self.reference.available(id.sku, now, shelf_life),
                "step {step}: available({:?}, {shelf_life:?})",
                id.sku
            );
        }
        self.compare(step, id.sku, &id);
    }

    /// Every SKU's snapshot, and the set of SKUs, must agree.
    fn compare_all(&self) {
        let mut real = self.ledger.skus();
        let mut model = self.reference.skus();
        real.sort();
        model.sort();
        assert_eq!(real, model, "the ledgers define different SKUs");
        for sku in real {
            self.compare(usize::MAX, sku, &"the end");
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
    let mut pair = Pair::new(Timestamp(0), HOLD_MAX);
    for command in prelude() {
        pair.exec(0, &command).expect("the prelude succeeds");
    }
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Exec(_) | Step::Lifecycle(..) | Step::Conditional(..) => {
                let command = pair.resolve(step).expect("a command step");
                let _ = pair.exec(index + 1, &command);
            }
            Step::Keyed { key, step } => {
                let command = match step {
                    Some(step) => pair.resolve(step),
                    None => pair.keys[*key].1.clone(),
                };
                if let Some(command) = command {
                    let _ = pair.exec_keyed(index + 1, *key, &command);
                }
            }
            Step::Query(id) => pair.query(index + 1, *id),
            Step::Advance(millis) => pair.clock.advance(Duration::from_millis(*millis)),
            // A ledger's time never runs backwards (a clock that steps back
            // is clamped to the latest instant used; `tests/clock.rs` checks
            // that): the harness's clock does not step back either, so the
            // instant it hands the reference is the one the ledger uses.
            Step::Set(millis) => pair.clock.set(Timestamp((*millis).max(pair.clock.now().0))),
        }
    }
    pair.compare_all();
}

impl Pair {
    /// The command an `Exec`, `Lifecycle` or `Conditional` step sends now
    /// (`None` for other steps): a picked reservation is resolved from the
    /// ids granted so far; a conditional command's expected version is the
    /// version its SKU is at once lapsed holds are swept, plus the offset.
    fn resolve(&self, step: &Step) -> Option<Command> {
        match step {
            Step::Exec(command) => Some(command.clone()),
            Step::Lifecycle(pick, lifecycle) => {
                let reservation = self.pick(*pick);
                Some(match *lifecycle {
                    Lifecycle::Release => Command::Release { reservation },
                    Lifecycle::Commit(quantity) => Command::Commit { reservation, quantity },
                    Lifecycle::Extend(by) => Command::Extend { reservation, by },
                })
            }
            Step::Conditional(command, offset) => {
                let mut command = command.clone();
                if let Some(sku) = command.sku() {
                    let current = self.reference.version_at(sku, self.clock.now()).unwrap_or(0);
                    if let Some(field) = expected_version(&mut command) {
                        *field = Some(current.saturating_add_signed(i64::from(*offset)));
                    }
                }
                Some(command)
            }
            _ => None,
        }
    }
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

/// Both ledgers (default hold maximum, a day) with `sku` defined and some
/// state on it: two lots (one expiring at 100 ms), a live reservation
/// without a deadline, an ended one, a live one with a deadline at 1,000
/// ms and one whose deadline (60 ms) has passed but that nothing has swept
/// yet, granted in that order (seqs 3, 4, 6 and 7: each the version its
/// allocation produced; version 5 is the commit that ended seq 4). Time is
/// 70 ms.
fn stocked(sku: SkuId) -> Pair {
    let mut pair = Pair::new(Timestamp(50), LedgerBuilder::HOLD_MAX_DEFAULT);
    let setup = [
        Step::Exec(Command::DefineSku { sku, policy: AllocationPolicy::Fefo }),
        Step::Exec(Command::Receive { sku, lot: NewLot::new(LotId(1), 10).expires_at(Timestamp(100)) }),
        Step::Exec(Command::Receive { sku, lot: NewLot::new(LotId(2), 20) }),
        Step::Exec(Command::Allocate(AllocateRequest::new(sku, 12))),
        Step::Exec(Command::Allocate(AllocateRequest::new(sku, 3))),
        // The reservation just granted: the second on this SKU.
        Step::Lifecycle(Pick::Nth(sku, 2), Lifecycle::Commit(None)),
        Step::Exec(Command::Allocate(AllocateRequest::new(sku, 2).hold_for(Duration::from_millis(950)))),
        Step::Exec(Command::Allocate(AllocateRequest::new(sku, 4).hold_for(Duration::from_millis(10)))),
    ];
    for step in &setup {
        let command = pair.resolve(step).expect("a command step");
        pair.exec(0, &command).unwrap_or_else(|error| panic!("setup {command:?}: {error}"));
    }
    assert_eq!(pair.granted.len(), 4, "the setup grants four reservations");
    pair.clock.set(Timestamp(70));
    pair
}

/// Runs a decoded command on both ledgers of `pair` (see [`Pair::exec`]).
fn execute_checked(mut pair: Pair, command: &Command) {
    let _ = pair.exec(1, command);
    pair.compare_all();
}

/// At most this many commands of a decoded `Vec<Command>` are executed.
pub const MAX_DECODED_COMMANDS: usize = 64;

/// Feeds `data` to every public deserializer a host would load. Bad input
/// must be an `Err`, never a panic; what decodes must round-trip; decoded
/// commands, orders, requests and lots are executed on the ledger and the
/// reference model, which must agree, with a clean audit; a decoded command
/// list runs the same way.
pub fn run_decoders(data: &[u8]) {
    if let Some(command) = round_trip::<Command>(data) {
        // On ledgers where the command's SKU has stock and reservations …
        let sku = command.sku().unwrap_or(SKUS[0]);
        execute_checked(stocked(sku), &command);
        // … and on empty ones (unknown SKU, or a first definition).
        execute_checked(Pair::new(Timestamp(0), LedgerBuilder::HOLD_MAX_DEFAULT), &command);
    }
    if let Some(commands) = round_trip::<Vec<Command>>(data) {
        let mut pair = Pair::new(Timestamp(0), LedgerBuilder::HOLD_MAX_DEFAULT);
        for (index, command) in commands.iter().take(MAX_DECODED_COMMANDS).enumerate() {
            let _ = pair.exec(index, command);
        }
        pair.compare_all();
    }
    let _ = round_trip::<SnapshotData>(data);
    let _ = round_trip::<Outcome>(data);
    let _ = round_trip::<CommandError>(data);
    if let Some(request) = round_trip::<AllocateRequest>(data) {
        execute_checked(stocked(request.sku), &Command::Allocate(request.clone()));
        execute_checked(stocked(request.sku), &Command::Take(request));
    }
    if let Some(order) = round_trip::<OrderRequest>(data) {
        // Lines may name any SKU: the first line's is stocked (if any).
        let sku = order.lines.first().map_or(SKUS[0], |line| line.sku);
        execute_checked(stocked(sku), &Command::AllocateOrder(order));
    }
    if let Some(lot) = round_trip::<NewLot>(data) {
        execute_checked(stocked(SKUS[0]), &Command::Receive { sku: SKUS[0], lot });
    }
    if let Some(quantity) = round_trip::<Quantity>(data) {
        assert!(quantity <= Quantity::MAX, "{quantity:?} decoded past the maximum");
    }
}
