//! Replays the committed fuzz corpora on the stable toolchain, through the
//! exact functions the `cargo fuzz` targets call (`fuzz/src/lib.rs`,
//! included by path: the main crate must not depend on the fuzz crate), so
//! CI checks every input the fuzzer ever kept without nightly or libFuzzer.
//!
//! - `fuzz/corpus/ops/*`: `run_differential` (the `ops` target): the real
//!   ledger against the reference model, outcome by outcome, snapshot by
//!   snapshot, with a clean audit after every step.
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

/// The decoder maps every byte string to a script, and the committed seeds
/// exercise every kind of step (so a change to the decoder that silently
/// stops producing some command shows up here, not as lost coverage).
#[test]
fn ops_seeds_cover_every_step_kind() {
    use stockroom::Command;
    let mut seen = [false; 9];
    for path in corpus("ops") {
        for step in fuzz_lib::decode_commands(&std::fs::read(&path).expect("read")) {
            let kind = match step {
                fuzz_lib::Step::Exec(Command::DefineSku { .. }) => 0,
                fuzz_lib::Step::Exec(Command::Receive { .. }) => 1,
                fuzz_lib::Step::Exec(Command::Allocate(_)) => 2,
                fuzz_lib::Step::Exec(Command::Take(_)) => 3,
                fuzz_lib::Step::Exec(Command::Release { .. }) => 4,
                fuzz_lib::Step::Exec(Command::Commit { .. }) => 5,
                fuzz_lib::Step::Exec(Command::Adjust { .. }) => 6,
                fuzz_lib::Step::Advance(_) => 7,
                fuzz_lib::Step::Set(_) => 8,
            };
            seen[kind] = true;
        }
    }
    assert_eq!(seen, [true; 9], "some step kind is never exercised by the ops corpus");
    assert!(fuzz_lib::decode_commands(&[]).is_empty());
    assert_eq!(fuzz_lib::decode_commands(&[0xff; 100_000]).len(), fuzz_lib::MAX_STEPS);
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
