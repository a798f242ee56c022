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
//!   (deadlines, orders, extensions, sweeps, conditional commands) and v3
//!   inputs (v2 plus keyed commands: replays, reused keys, keys forgotten
//!   by time and by count).
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
/// exercises every kind of step, v1 and v2 (so a change to the decoder that
/// silently stops producing some command shows up here, not as lost
/// coverage).
#[test]
fn ops_corpus_covers_every_step_kind() {
    use fuzz_lib::Step;
    use stockroom::Command;
    const KINDS: [&str; 18] = [
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
    ];
    let mut seen = [false; KINDS.len()];
    for path in corpus("ops") {
        for step in fuzz_lib::decode_commands(&std::fs::read(&path).expect("read")) {
            let kind = match step {
                Step::Exec(Command::DefineSku { .. }) => 0,
                Step::Exec(Command::Receive { .. }) => 1,
                Step::Exec(Command::Allocate(request)) if request.hold_for.is_some() => 3,
                Step::Exec(Command::Allocate(_)) => 2,
                Step::Exec(Command::Take(_)) => 4,
                Step::Exec(Command::Release { .. }) => 5,
                Step::Exec(Command::Commit { .. }) => 6,
                Step::Exec(Command::Adjust { .. }) => 7,
                Step::Advance(_) => 8,
                Step::Set(_) => 9,
                Step::Exec(Command::AllocateOrder(_)) => 10,
                Step::Exec(Command::Extend { .. }) => 11,
                Step::Exec(Command::ExpireDue { .. }) => 12,
                Step::Exec(Command::SetLowStock { .. }) => 13,
                Step::Conditional(..) => 14,
                Step::Query(_) => 15,
                Step::Keyed { step: Some(_), .. } => 16,
                Step::Keyed { step: None, .. } => 17,
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
