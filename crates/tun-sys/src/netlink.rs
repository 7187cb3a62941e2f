//! rtnetlink: the kernel's link notifications and link queries, interface addresses and routes.
//!
//! [`RouteSocket`] is a `NETLINK_ROUTE` socket (close-on-exec, non-blocking) subscribed to the link group;
//! it sends `RTM_GETLINK` requests and receives datagrams into a caller's buffer. [`Messages`] walks such a
//! buffer one message at a time, checking every length and alignment before reading, and yields a typed
//! [`Message`] or a [`MalformedMessage`] error after which it stops: a malformed buffer never panics and
//! never loops. [`addr`] and [`route`] build the requests that add and remove interface addresses and
//! routes and parse the kernel's reports of them; [`RouteSocket::add_address`] and its siblings send such a
//! request and wait for its acknowledgement (or dump), so every error the kernel reports is returned.
//!
//! The files are layered as smoltcp's `wire/` is: `wire.rs` frames messages and attributes (headers,
//! lengths, alignment, acknowledgements and error reports, request encoding) and knows no message type;
//! `link.rs`, [`addr`] and [`route`] each read and build one family of messages on top of it; `message.rs`
//! dispatches a framed message to its family by type; `socket.rs` sends and receives.
//!
//! ```no_run
//! use tun_sys::netlink::{Message, Messages, RecvError, RouteSocket};
//!
//! let socket = RouteSocket::open_link_monitor()?;
//! socket.request_link(1, 1)?;
//! let mut buf = vec![0u8; tun_sys::netlink::RECV_BUFFER_LEN];
//! match socket.recv(&mut buf) {
//!     Ok(len) => {
//!         for message in Messages::new(&buf[..len]) {
//!             if let Ok(Message::NewLink(link)) = message {
//!                 println!("{} mtu {:?} running {}", link.index, link.mtu, link.is_running());
//!             }
//!         }
//!     }
//!     Err(RecvError::WouldBlock) => { /* wait for readability first */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod addr;
mod link;
mod message;
pub mod route;
mod socket;
mod wire;

#[cfg(test)]
mod captures;

pub use link::{GsoLimits, LinkMessage, TunLinkInfo};
pub use message::{Message, Messages};
pub use socket::{RECV_BUFFER_LEN, RecvError, RouteSocket};
pub use wire::{Attribute, Attributes, MalformedMessage};
