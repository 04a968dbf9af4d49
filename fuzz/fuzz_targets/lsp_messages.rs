//! See ../README.md and `checks::lsp_messages`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::lsp_messages(data) {
        panic!("{e}");
    }
});
