//! `log` tree keys (record, id and index keys, suffixes, escaped strings): decoders never panic,
//! and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| actlog::fuzzing::keys(data));
