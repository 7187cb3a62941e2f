//! Fuzz target: gso_split on raw bytes and on (mutated) kernel-style super-packets.
//! The checks live in `tests/support/fuzz.rs`, shared with the stable replay test `tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| support::fuzz::check_gso_split(data));
