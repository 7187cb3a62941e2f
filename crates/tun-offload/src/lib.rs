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
//! - Writing: [`handle_gro`] with a reusable [`GroTable`] and [`GroPlan`] plans a batch of packets as few
//!   writes as possible: TCP and UDP packets of a flow are merged into super-packets the kernel accepts,
//!   and each [`Frame`] of the plan encodes as its virtio-net header and packet.
//! - [`wire`]: the checked Ethernet/IPv4/IPv6/TCP/UDP header views the rest is built on.
//! - TAP devices ([`Layer::L2`]): [`SplitState::with_layer`], [`gso_split_with_layer`] and
//!   [`handle_gro_with_layer`] take Ethernet frames. The engine is the same: it works on the IP packet after
//!   the frame's link header, which is copied in front of every segment and once in front of a merged packet
//!   (frames merge only when their link headers are the same bytes); the virtio-net header's `csum_start`
//!   and `hdr_len` count from the frame's start. Frames that are not IP pass through whole.
//!
//! The two paths take the same arrays: packet `i` is `bufs[i][offset..offset + sizes[i]]`, so a program that
//! forwards packets passes what a read filled in straight to the write.
//!
//! ```
//! use tun_offload::{FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, MAX_PACKET, VirtioNetHdr, gso_split, handle_gro};
//! # let mut read = vec![0u8; VirtioNetHdr::LEN];
//! # read.extend_from_slice(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
//! // Read path: one read() of the device into packets.
//! let mut bufs = vec![vec![0u8; MAX_PACKET]; 64];
//! let mut sizes = vec![0usize; 64];
//! let n = gso_split(&mut read, &mut bufs, &mut sizes, 0)?;
//!
//! // Write path: the same packets as few writes as possible (the room after each packet takes merges).
//! let (mut table, mut plan) = (GroTable::new(), GroPlan::new());
//! let options = GroOptions { tcp: true, udp: true };
//! handle_gro(&mut bufs[..n], &sizes, 0, &mut table, options, &mut plan)?;
//! let mut scratch = [0u8; FRAME_HEAD_MAX];
//! for frame in plan.frames() {
//!     let [_hdr, _packet] = frame.encode(&bufs[frame.buf], 0, &mut scratch)?; // writev(fd, [hdr, packet])
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
/// Size a read buffer `VirtioNetHdr::LEN + MAX_PACKET`, and give each buffer passed to [`handle_gro`]
/// `offset + MAX_PACKET` bytes so that merges can reach the limit; coalesced packets never exceed it.
pub const MAX_PACKET: usize = 65535;

pub use error::OffloadError;
pub use gro::{
    FRAME_HEAD_MAX, Frame, GroOptions, GroPlan, GroTable, UDP_MAX_SEGMENTS, handle_gro,
    handle_gro_with_layer,
};
pub use split::{Segmenter, SplitState, gso_split, gso_split_with_layer};
pub use virtio::VirtioNetHdr;
pub use wire::Layer;

// The unit tests build their packets with the integration tests' builders, which name this crate by its
// published name.
#[cfg(test)]
extern crate self as tun_offload;
#[cfg(test)]
#[path = "../tests/support"]
#[allow(dead_code)] // The unit tests use only part of the builders.
mod support {
    pub(crate) mod packets;
    pub(crate) mod reference;
}
