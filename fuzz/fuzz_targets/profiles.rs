//! Each profile's request parsing (Space Invoices query string and JSON query, Sequence,
//! subscription platform query string and create body, Velt body): never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| actlog::fuzzing::profiles(data));
