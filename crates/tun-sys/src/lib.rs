//! The raw Linux interface for TUN devices.
//!
//! Thin typed wrappers, one per ioctl or socket call: `/dev/net/tun` (TUNSETIFF, TUNGETIFF, TUNSETOFFLOAD,
//! ...), the SIOC* interface ioctls, the rtnetlink socket, network namespaces, a blocking wait that
//! another thread can cancel, and the epoll instances an async device waits on (registered with tokio's
//! reactor with feature `tokio`). This is the only crate of the workspace that contains `unsafe`; every block
//! carries a `// SAFETY:` comment.
//!
//! # What it decides
//!
//! Policy belongs to the crates above: offload masks, batch sizes, what an event means, how long to wait
//! for a device, whether to try a failed call again. What this crate holds beyond one call per wrapper is
//! what its calls cannot be made safely or usefully without:
//!
//! - One thread: [`netns::run_in`] runs a closure on a scoped thread that enters the namespace and is
//!   joined before it returns, because namespace membership is per thread and the caller's own thread must
//!   not change namespace (if switching back failed, it would stay in the wrong one). Nothing else here
//!   starts a thread.
//! - One timeout: the acknowledged rtnetlink requests and dumps
//!   ([`RouteSocket::add_address`](netlink::RouteSocket::add_address) and its siblings) wait at most 5 s
//!   for the kernel's answer. The kernel answers a `NETLINK_ROUTE` request while it is being sent, so the
//!   bound only keeps something unforeseen from blocking the caller forever; it is not a knob. Every other
//!   wait is [`wait::wait`] with the caller's timeout, or none.
//! - Retries of `EINTR` only (in [`wait::wait`] and the route socket's receive), and skipping what is no
//!   answer: datagrams from anyone but the kernel, replies to earlier requests.
//! - The choices `ip` makes in the requests [`netlink::addr`] and [`netlink::route`] build: IPv6 addresses
//!   without duplicate address detection (`IFA_F_NODAD`, so that they can be bound to on return), routes in
//!   the main table with `ip route add`'s protocol and scope.

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
