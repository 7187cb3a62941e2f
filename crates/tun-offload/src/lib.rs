//! The pure-Rust offload engine for Linux TUN devices with `IFF_VNET_HDR`.
//!
//! Everything the kernel's TUN offloads ask of user space, without syscalls, without `unsafe`, and without
//! panicking on any input:
//! - [`VirtioNetHdr`]: the 10-byte virtio-net header in front of every packet ([`virtio`] has its flags
//!   and GSO types).
//! - [`checksum`]: the Internet checksum and pseudo-header sums.
//! - Reading: [`gso_split`] (all at once) or [`SplitState`] / [`Segmenter`] (in batches, losing nothing
//!   when the caller has fewer buffers than segments) turn one read of the device — a plain packet or a
//!   TSO/USO super-packet — into ordinary IP packets with correct headers and checksums.
//! - Writing: [`handle_gro`] (or [`handle_gro_with`] to switch TCP and UDP separately) with a reusable
//!   [`GroTable`] coalesces TCP and UDP packets of a batch into super-packets the kernel accepts, each with
//!   its virtio-net header.
//! - [`wire`]: the checked IPv4/IPv6/TCP/UDP header views the rest is built on.
//!
//! ```
//! use tun_offload::{gso_split, handle_gro, GroTable, VirtioNetHdr, MAX_PACKET};
//! # let mut read = vec![0u8; VirtioNetHdr::LEN];
//! # read.extend_from_slice(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
//! // Read path: one read() of the device into packets.
//! let mut bufs = vec![vec![0u8; 1600]; 64];
//! let mut sizes = vec![0usize; 64];
//! let n = gso_split(&mut read, &mut bufs, &mut sizes, 0)?;
//!
//! // Write path: packets (each after room for the virtio-net header) into as few writes as possible.
//! let offset = VirtioNetHdr::LEN;
//! let mut out: Vec<Vec<u8>> = (0..n)
//!     .map(|i| {
//!         let mut buf = Vec::with_capacity(offset + MAX_PACKET);
//!         buf.resize(offset, 0);
//!         buf.extend_from_slice(&bufs[i][..sizes[i]]);
//!         buf
//!     })
//!     .collect();
//! let mut table = GroTable::new();
//! let mut to_write = Vec::new();
//! handle_gro(&mut out, offset, &mut table, true, &mut to_write)?;
//! for &i in &to_write {
//!     let _frame = &out[i][offset - VirtioNetHdr::LEN..]; // write(fd, frame)
//! }
//! # Ok::<(), tun_offload::OffloadError>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod checksum;
mod error;
mod gro;
mod invariant;
mod split;
pub mod virtio;
pub mod wire;

#[cfg(test)]
mod test_packets;

/// The largest IP packet, and so the largest packet or super-packet one `read()` of a TUN device returns
/// or one `write()` takes after its virtio-net header: 65535 bytes, as IPv4's total length and IPv6's
/// payload length are 16-bit fields (BIG TCP, which goes beyond them, is refused on TUN devices).
///
/// Size a read buffer `VirtioNetHdr::LEN + MAX_PACKET`, and give each buffer passed to [`handle_gro`] a
/// capacity of `offset + MAX_PACKET` so that merges can reach the limit; coalesced packets never exceed it.
pub const MAX_PACKET: usize = 65535;

pub use error::OffloadError;
pub use gro::{
    GroOptions, GroTable, PLAN_MAX_SEGMENTS, UDP_MAX_SEGMENTS, handle_gro, handle_gro_with,
    plan_gro,
};
pub use split::{Segmenter, SplitState, gso_split};
pub use virtio::VirtioNetHdr;
