//! Cursor decoding: arbitrary text, and arbitrary payloads carrying a valid MAC (so the checks
//! after the MAC are reached). The first byte picks which.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => actlog::fuzzing::cursor_signed_payload(rest),
        _ => actlog::fuzzing::cursor_text(data),
    }
});
