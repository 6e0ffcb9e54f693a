//! Stored record values: decoding damaged bytes never panics or over-allocates, and whatever
//! decodes survives encode/decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| actlog::fuzzing::record(data));
