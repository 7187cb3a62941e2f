//! The raw Linux interface for TUN devices.
//!
//! Thin typed wrappers, one per ioctl or socket call: `/dev/net/tun` (TUNSETIFF, TUNGETIFF, TUNSETOFFLOAD,
//! ...), the SIOC* interface ioctls, the rtnetlink socket, network namespaces, a blocking wait that
//! another thread can cancel, and the epoll instances an async device waits on (registered with tokio's
//! reactor with feature `tokio`). This is the only crate of the workspace that contains `unsafe`; every block
//! carries a `// SAFETY:` comment.

pub mod epoll;
pub mod flags;
pub mod iface;
pub mod ifreq;
pub mod io;
pub mod netlink;
pub mod netns;
#[cfg(feature = "tokio")]
pub mod reactor;
mod sys;
pub mod tun;
pub mod wait;

pub use flags::{IfFlags, Offloads, TunFlags};
pub use ifreq::{IfName, NameError};
pub use wait::{EventFd, Interest, Wait};
