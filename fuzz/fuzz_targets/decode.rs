//! Every public deserializer a host would load, on arbitrary bytes: bad
//! input is an `Err`, never a panic; what decodes round-trips, and decoded
//! commands and orders execute on the ledger and the reference model alike
//! without breaking an invariant (see `stockroom_fuzz::run_decoders`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stockroom_fuzz::run_decoders(data));
