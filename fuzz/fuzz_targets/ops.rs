//! Differential fuzzing of the ledger against the reference model: bytes
//! decode to a script of commands and clock moves over a tiny id space
//! (see `stockroom_fuzz::decode_commands`); every outcome, every snapshot
//! and the audit must agree with the model at every step.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stockroom_fuzz::run_differential(data));
