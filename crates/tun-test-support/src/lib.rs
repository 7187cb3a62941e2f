//! What the tests of every crate of the workspace share, written once. It depends on no crate of the
//! workspace, so that any of them (down to `tun-sys`) can take it as a dev-dependency without a cycle; what
//! drives the `tun` facade (the tunnel harness, the relay loop, devices made inside a namespace) is in
//! `tun-test-harness`, for the tests of `tun` and above.
//!
//! - [`NetNs`]: a network namespace made for one test (or one `xtask` run), removed when it drops whatever
//!   happens; commands and threads run inside it.
//! - [`topology`]: the names and addresses of the two-namespace tunnel the data-path tests, the benchmark
//!   and the demo build.
//! - [`ipconfig`]: what `ip -j addr` / `ip -j route` say, the reference the configuration tests check against.
//! - [`wait_until`]: polling for a condition, bounded in time.
//! - [`packets`]: IP packets built and checked with etherparse, every one by [`packets::flow::packet`].
//! - [`proc`]: the threads (by name) and descriptors of a process, from /proc.
//! - [`process`]: a program a test runs, killed if the test fails and stopped with SIGTERM when it is done.
//! - [`stream`]: deterministic pseudo-random test data and the SHA-256 of what crossed.
//! - [`signal`], [`sockopt`], [`netns::open_named`], [`netns::unshare`], [`retry_eintr`], and `setns` in
//!   [`NetNs::run_in`]: the system calls that tests, examples and `xtask` make and the library does not, on
//!   nix's safe API (`unsafe` stays in tun-sys alone).
//!
//! Nothing here touches the host's own interfaces, routes or firewall.

mod io;
pub mod ipconfig;
pub mod netns;
pub mod packets;
pub mod proc;
pub mod process;
pub mod signal;
pub mod sockopt;
pub mod stream;
pub mod topology;
mod wait;

pub use io::retry_eintr;
pub use netns::{IpBatch, Link, NetNs, delete_namespace, flaps, run};
pub use wait::wait_until;
