//! What the tests of every crate of the workspace share, written once.
//!
//! - [`NetNs`]: a network namespace made for one test (or one `xtask` run), removed when it drops whatever
//!   happens; commands and threads run inside it.
//! - [`ipconfig`]: what `ip -j addr` / `ip -j route` say, the reference the configuration tests check against.
//! - [`wait_until`]: polling for a condition, bounded in time.
//! - [`packets`]: IP packets built and checked with etherparse.
//! - [`proc`]: the threads (by name) and descriptors of a process, from /proc.
//! - [`stream`]: deterministic pseudo-random test data and the SHA-256 of what crossed.
//! - [`relay`] (feature `device`): one direction of a forwarder, the loop through a `PacketBatch` and the one
//!   policy for its errors, shared by the tunnel harness and the benchmark's `tun-forward`.
//! - [`tunnel`] (feature `device`): two namespaces joined by a forwarder through the library, the topology
//!   of a VPN without the crypto.
//! - [`signal`], [`sockopt`], [`netns::open_named`], [`netns::unshare`], [`retry_eintr`]: the system calls that
//!   tests, examples and `xtask` make and the library does not, on nix's safe API (`unsafe` stays in
//!   tun-sys alone).
//!
//! Nothing here touches the host's own interfaces, routes or firewall.

mod io;
pub mod ipconfig;
pub mod netns;
pub mod packets;
pub mod proc;
pub mod signal;
pub mod sockopt;
pub mod stream;
mod wait;

#[cfg(feature = "device")]
mod device;
#[cfg(feature = "device")]
pub mod relay;
#[cfg(feature = "device")]
pub mod tunnel;

pub use io::retry_eintr;
pub use netns::{IpBatch, Link, NetNs, delete_namespace, flaps, run};
pub use wait::wait_until;

#[cfg(feature = "device")]
pub use device::runtime;
