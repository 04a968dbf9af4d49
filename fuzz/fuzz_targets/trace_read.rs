//! See ../README.md and `checks::trace_read`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::trace_read(data) {
        panic!("{e}");
    }
});
