//! Replays the committed fuzz corpora on the stable toolchain, through the
//! exact functions the `cargo fuzz` targets call (`fuzz/src/lib.rs`,
//! included by path: the main crate must not depend on the fuzz crate), so
//! CI checks every input the fuzzer ever kept without nightly or libFuzzer.
//!
//! - `fuzz/corpus/ops/*`: `run_differential` (the `ops` target): the real
//!   ledger against the reference model, outcome by outcome, snapshot by
//!   snapshot (through the sweeping queries, versions included), with a
//!   clean audit after every step; v1 inputs (the corpus from before the
//!   reservation lifecycle, decoded as they always were), v2 inputs
//!   (deadlines, orders, extensions, sweeps, conditional commands), v3
//!   inputs (v2 plus keyed commands: replays, reused keys, keys forgotten
//!   by time and by count) and v4 inputs (v3 naming reservations among the
//!   ids the script was granted). A v1–v3 reservation "seq k" is the k-th
//!   reservation granted on its SKU, what it named when those inputs were
//!   kept.
//! - `fuzz/corpus/decode/*`: `run_decoders` (the `decode` target): every
//!   public deserializer, round trips, and execution of what decodes.
//!
//! A missing or empty corpus directory fails the test: a replay of nothing
//! proves nothing.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_lib;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("corpus {} is missing: {error}", dir.display()));
    let mut files: Vec<PathBuf> =
        entries.map(|entry| entry.expect("read corpus entry").path()).filter(|path| path.is_file()).collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty: a replay of nothing proves nothing", dir.display());
    files
}

/// Runs every file of `target`'s corpus through `run`, and fails listing
/// every input that panicked (each one's message is printed as it fails).
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let files = corpus(target);
    let mut replayed = 0;
    let mut failures = Vec::new();
    for path in &files {
        let data = match std::fs::read(path) {
            Ok(data) => data,
            // A running fuzzer may replace a file it has just reduced.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => panic!("read {}: {error}", path.display()),
        };
        replayed += 1;
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(replayed > 0, "no {target} input could be read");
    assert!(failures.is_empty(), "{} of {replayed} {target} inputs failed:\n{}", failures.len(), failures.join("\n"));
    replayed
}

#[test]
fn ops_corpus_replays_against_the_reference_model() {
    let replayed = replay("ops", fuzz_lib::run_differential);
    println!("replayed {replayed} ops inputs");
}

#[test]
fn decode_corpus_replays_through_every_deserializer() {
    let replayed = replay("decode", fuzz_lib::run_decoders);
    println!("replayed {replayed} decode inputs");
}

/// The decoder maps every byte string to a script, and the committed corpus
/// exercises every kind of step and every kind of reservation pick, in
/// every format (so a change to the decoder that silently stops producing
/// some command shows up here, not as lost coverage).
#[test]
fn ops_corpus_covers_every_step_kind() {
    use fuzz_lib::{Lifecycle, Other, Pick, Step};
    use stockroom::Command;
    const KINDS: [&str; 27] = [
        "define",
        "receive",
        "allocate",
        "allocate with a deadline",
        "take",
        "release",
        "commit",
        "adjust",
        "advance",
        "set clock",
        "order",
        "extend",
        "expire_due",
        "set_low_stock",
        "conditional",
        "query",
        "keyed command",
        "keyed repeat of the key's last command",
        "v4 script",
        "reservation: the nth granted on a SKU (v1-v3)",
        "reservation: seq 0 (v1-v3)",
        "reservation: a recent one (v4)",
        "reservation: from the oldest (v4)",
        "reservation: seq 0 (v4)",
        "reservation: the current version (v4)",
        "reservation: the next version (v4)",
        "reservation: u64::MAX (v4)",
    ];
    let mut seen = [false; KINDS.len()];
    for path in corpus("ops") {
        let data = std::fs::read(&path).expect("read");
        if data.first().is_some_and(|first| fuzz_lib::V4_MARKERS.contains(first)) {
            seen[18] = true;
        }
        let steps = fuzz_lib::decode_commands(&data);
        let inner = steps.iter().map(|step| match step {
            Step::Keyed { step: Some(inner), .. } => inner.as_ref(),
            step => step,
        });
        for step in inner {
            let pick = match step {
                Step::Lifecycle(pick, _) | Step::Query(pick) => Some(*pick),
                _ => None,
            };
            if let Some(pick) = pick {
                seen[match pick {
                    Pick::Nth(_, 0) => 20,
                    Pick::Nth(..) => 19,
                    Pick::Recent(_) => 21,
                    Pick::Oldest(_) => 22,
                    Pick::Other(_, Other::Zero) => 23,
                    Pick::Other(_, Other::Current) => 24,
                    Pick::Other(_, Other::Next) => 25,
                    Pick::Other(_, Other::Max) => 26,
                }] = true;
            }
        }
        for step in steps {
            let kind = match step {
                Step::Exec(Command::DefineSku { .. }) => 0,
                Step::Exec(Command::Receive { .. }) => 1,
                Step::Exec(Command::Allocate(request)) if request.hold_for.is_some() => 3,
                Step::Exec(Command::Allocate(_)) => 2,
                Step::Exec(Command::Take(_)) => 4,
                Step::Lifecycle(_, Lifecycle::Release) => 5,
                Step::Lifecycle(_, Lifecycle::Commit(_)) => 6,
                Step::Exec(Command::Adjust { .. }) => 7,
                Step::Advance(_) => 8,
                Step::Set(_) => 9,
                Step::Exec(Command::AllocateOrder(_)) => 10,
                Step::Lifecycle(_, Lifecycle::Extend(_)) => 11,
                Step::Exec(Command::ExpireDue { .. }) => 12,
                Step::Exec(Command::SetLowStock { .. }) => 13,
                Step::Conditional(..) => 14,
                Step::Query(_) => 15,
                Step::Keyed { step: Some(_), .. } => 16,
                Step::Keyed { step: None, .. } => 17,
                Step::Exec(other) => panic!("the decoder made {other:?}, which no step kind names"),
            };
            seen[kind] = true;
        }
    }
    let missing: Vec<&str> = KINDS.iter().zip(seen).filter(|(_, seen)| !seen).map(|(kind, _)| *kind).collect();
    assert!(missing.is_empty(), "never exercised by the ops corpus: {missing:?}");
    assert!(fuzz_lib::decode_commands(&[]).is_empty());
    assert_eq!(fuzz_lib::decode_commands(&[0xff; 100_000]).len(), fuzz_lib::MAX_STEPS);
    assert_eq!(fuzz_lib::decode_commands(&[0xe6; 100_000]).len(), fuzz_lib::MAX_STEPS);
    assert_eq!(fuzz_lib::decode_commands(&[0xd0; 100_000]).len(), fuzz_lib::MAX_STEPS);
    assert_eq!(fuzz_lib::decode_commands(&[0xc0; 100_000]).len(), fuzz_lib::MAX_STEPS);
}

/// A reservation pick names what the format says, against the ids granted
/// so far: the v1–v3 "seq k" is the k-th granted on its SKU (or, not
/// granted yet, an id never issued), the v4 picks wrap around every id
/// granted, and the other ids are seq 0, the SKU's version, one past it and
/// `u64::MAX`.
#[test]
fn reservation_picks_name_the_granted_ids() {
    use fuzz_lib::{Other, Pick};
    use stockroom::{ReservationId, SkuId};
    let (one, two) = (SkuId(1), SkuId(2));
    let granted = [ReservationId::new(one, 3), ReservationId::new(two, 2), ReservationId::new(one, 5)];
    let version = |sku: SkuId| (sku == one).then_some(7);
    let pick = |pick: Pick| pick.resolve(&granted, version);
    assert_eq!(pick(Pick::Nth(one, 0)), ReservationId::new(one, 0));
    assert_eq!(pick(Pick::Nth(one, 1)), ReservationId::new(one, 3));
    assert_eq!(pick(Pick::Nth(one, 2)), ReservationId::new(one, 5));
    assert_eq!(pick(Pick::Nth(two, 1)), ReservationId::new(two, 2));
    assert_eq!(pick(Pick::Nth(one, 3)), ReservationId::new(one, u64::MAX), "not granted yet");
    assert_eq!(pick(Pick::Recent(0)), ReservationId::new(one, 5));
    assert_eq!(pick(Pick::Recent(2)), ReservationId::new(one, 3));
    assert_eq!(pick(Pick::Recent(4)), ReservationId::new(two, 2), "wraps");
    assert_eq!(pick(Pick::Oldest(0)), ReservationId::new(one, 3));
    assert_eq!(pick(Pick::Oldest(5)), ReservationId::new(one, 5), "wraps");
    assert_eq!(pick(Pick::Other(one, Other::Zero)), ReservationId::new(one, 0));
    assert_eq!(pick(Pick::Other(one, Other::Current)), ReservationId::new(one, 7));
    assert_eq!(pick(Pick::Other(one, Other::Next)), ReservationId::new(one, 8));
    assert_eq!(pick(Pick::Other(two, Other::Next)), ReservationId::new(two, 1), "undefined: version 0");
    assert_eq!(pick(Pick::Other(one, Other::Max)), ReservationId::new(one, u64::MAX));
    assert_eq!(Pick::Recent(3).resolve(&[], version), ReservationId::new(one, 0), "nothing granted yet");
    // The bytes: v1 and v4 reservation fields.
    let release = |data: &[u8]| fuzz_lib::decode_commands(data).into_iter().next();
    use fuzz_lib::{Lifecycle, Step};
    assert_eq!(release(&[5, 1, 8]), Some(Step::Lifecycle(Pick::Nth(two, 2), Lifecycle::Release)));
    assert_eq!(release(&[0xc0, 5, 17]), Some(Step::Lifecycle(Pick::Recent(1), Lifecycle::Release)));
    assert_eq!(release(&[0xc0, 5, 200]), Some(Step::Lifecycle(Pick::Oldest(8), Lifecycle::Release)));
    assert_eq!(
        release(&[0xc0, 5, 225, 2]),
        Some(Step::Lifecycle(Pick::Other(SkuId(3), Other::Current), Lifecycle::Release))
    );
}

/// The hand-written JSON seeds named `seed_cmd_*` are real commands (a typo
/// in a seed would otherwise only test the error path).
#[test]
fn decode_command_seeds_decode() {
    for path in corpus("decode") {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if name.starts_with("seed_cmd_") {
            let data = std::fs::read(&path).expect("read");
            let decoded = serde_json::from_slice::<stockroom::Command>(&data);
            assert!(decoded.is_ok(), "{name} does not decode as a Command: {decoded:?}");
        }
    }
}
