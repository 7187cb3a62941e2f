//! Bench-only tools for `cargo xtask bench` and `cargo xtask demo`, and the plumbing the forwarders share.
//!
//! - `tun-forward`: the library's two-namespace forwarder, in every mode the benchmark measures (offloads or
//!   not, blocking or async, several queues, and the raw pass-through ceiling).
//! - `tun-rs-forward`: the same forwarder built on tun-rs 2.8.16 (`recv_multiple` / `send_multiple` with its
//!   `GROTable`), so that every benchmark run puts the library next to the best-known Rust peer.
//! - `stream-check`: a TCP sender of a deterministic pseudo-random stream and a receiver, each printing the
//!   SHA-256 of what it sent or received, to prove that data crossed a tunnel intact.
//! - For both forwarders: the command line ([`cli`]), the counters they print ([`stats`]), the raw
//!   pass-through ceiling ([`passthrough`]), and how they set up namespaces, threads and the tokio runtime the
//!   benchmark expects ([`setup`]).
//! - [`relay`]: the forwarding loop and its error policy, the tunnel harness's own, which `tun-forward` runs
//!   and whose error budget the pass-through and the peer share.

pub use tun_test_support::relay;

pub mod cli;
pub mod passthrough;
pub mod setup;
pub mod stats;
pub mod stream;
