//! Fuzz target: handle_gro on batches of fuzzed TCP/UDP packets of a few flows and raw bytes.
//! The checks live in `tests/support/fuzz.rs`, shared with the stable replay test `tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| support::fuzz::check_handle_gro(data));
