//! What the tests of the `tun` facade and of the crates above it share: everything of the workspace's test
//! support that drives a device. The rest (namespaces, polling, packets, the tunnel's topology) is in
//! `tun-test-support`, which depends on no crate of the workspace.
//!
//! - [`NetNsTun`]: devices built and addressed inside a [`NetNs`](tun_test_support::NetNs).
//! - [`runtime`]: the tokio runtimes of the async tests.
//! - [`relay`]: one direction of a forwarder, the loop through a `PacketBatch` and the one policy for its
//!   errors, shared by the tunnel harness and the benchmark's `tun-forward`.
//! - [`tunnel`]: two namespaces joined by a forwarder through the library, the topology of a VPN without the
//!   crypto.
//!
//! Nothing here touches the host's own interfaces, routes or firewall.

mod device;
pub mod relay;
pub mod tunnel;

pub use device::{NetNsTun, runtime};
