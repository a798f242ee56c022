//! Differential fuzzing of the ledger against the reference model: bytes
//! decode to a script of commands and clock moves over a tiny id space
//! (see `stockroom_fuzz::decode_commands`; a first byte in `V2_MARKERS`
//! selects the v2 script with the reservation lifecycle: deadlines,
//! orders, extensions, `expire_due`, conditional commands, queries); every
//! outcome, every touched snapshot (through the sweeping queries) and the
//! audit must agree with the model at every step.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stockroom_fuzz::run_differential(data));
