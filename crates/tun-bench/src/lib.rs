//! Bench-only tools for `cargo xtask bench` and `cargo xtask demo`.
//!
//! - `tun-rs-forward`: the same two-namespace forwarder as the `tun` crate's `forward` example, built on
//!   tun-rs 2.8.16 (`recv_multiple` / `send_multiple` with its `GROTable`), so that every benchmark run puts
//!   the library next to the best-known Rust peer.
//! - `stream-check`: a TCP sender of a deterministic pseudo-random stream and a receiver, each printing the
//!   SHA-256 of what it sent or received, to prove that data crossed a tunnel intact.

// The command line and the counters are the `forward` example's own, so both forwarders parse and report
// alike; the example lives in the `tun` crate, which must not depend on this bench-only crate.
#[path = "../../tun/examples/common/forward_cli.rs"]
pub mod cli;
#[path = "../../tun/examples/common/forward_stats.rs"]
pub mod stats;
pub mod stream;
