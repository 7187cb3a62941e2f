//! What the tests of every crate of the workspace share, written once.
//!
//! - [`NetNs`]: a network namespace made for one test (or one `xtask` run), removed when it drops whatever
//!   happens; commands and threads run inside it.
//! - [`ipconfig`]: what `ip -j addr` / `ip -j route` say, the reference the configuration tests check against.
//! - [`wait_until`]: polling for a condition, bounded in time.
//! - [`packets`]: IP packets built and checked with etherparse.
//! - [`tunnel`] (feature `device`): two namespaces joined by a forwarder through the library, the topology
//!   of a VPN without the crypto.
//!
//! Nothing here touches the host's own interfaces, routes or firewall.

pub mod ipconfig;
mod netns;
pub mod packets;
mod wait;

#[cfg(feature = "device")]
mod device;
#[cfg(feature = "device")]
pub mod tunnel;

pub use netns::{IpBatch, Link, NetNs, delete_namespace, flaps, run};
pub use wait::wait_until;

#[cfg(feature = "device")]
pub use device::runtime;
