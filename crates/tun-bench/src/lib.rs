//! Bench-only tools for `cargo xtask bench` and `cargo xtask demo`, and the plumbing the forwarders share.
//!
//! - `tun-rs-forward` (feature `peer`): the same two-namespace forwarder as the `tun` crate's `forward`
//!   example, built on tun-rs 2.8.16 (`recv_multiple` / `send_multiple` with its `GROTable`), so that every
//!   benchmark run puts the library next to the best-known Rust peer.
//! - `stream-check`: a TCP sender of a deterministic pseudo-random stream and a receiver, each printing the
//!   SHA-256 of what it sent or received, to prove that data crossed a tunnel intact.
//! - For both forwarders (the example uses this crate as a dev-dependency): the command line ([`cli`]), the
//!   counters they print ([`stats`]), the raw pass-through ceiling ([`passthrough`]), and how they set up
//!   namespaces, threads and the tokio runtime the benchmark expects ([`setup`]).

pub mod cli;
pub mod passthrough;
pub mod setup;
pub mod stats;
pub mod stream;
