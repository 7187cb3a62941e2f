//! Coalescing packets before they are written to an `IFF_VNET_HDR` TUN device (GRO in user space).
//!
//! [`handle_gro`] takes a batch of IP packets and merges consecutive TCP segments, and (when asked) UDP
//! datagrams, of the same flow into super-packets that the kernel accepts as GSO packets: one write and one
//! trip through the stack for many packets. Everything else passes through unchanged.
//!
//! The rules are wireguard-go's (its `tun` package), made as strict as the kernel's own GRO where the two
//! differ (IPv6 flow label, TCP window, ECE, IPv4 header checksum), with PSH kept on prepends:
//! - Candidates are IPv4 without options and not fragmented, with a valid header checksum and a total
//!   length equal to the buffer, or IPv6 with TCP/UDP directly after the fixed header and a payload length
//!   equal to the buffer; never longer than 65535 bytes; with a non-empty payload. TCP segments carry ACK,
//!   optionally PSH and ECE, and nothing else (SYN, FIN, RST, URG and CWR packets pass through, as the
//!   kernel's GRO flushes them). TCP and UDP each only when asked (see [`GroOptions`]); UDP without a
//!   checksum (0) passes through.
//! - A flow is TCP (addresses, ports, acknowledgment number, IP version) or UDP (addresses, ports, IP
//!   version).
//! - The IP headers must agree: IPv4 TOS, TTL, DF and reserved bits; IPv6 traffic class, flow label and hop
//!   limit (see [`IpPacket::agrees_with`](crate::wire::IpPacket::agrees_with)). TCP headers must have the
//!   same length, the same options byte for byte, the same AE/reserved bits, the same flags apart from
//!   PSH (so ECE-marked segments merge only with ECE-marked ones), and the same window: the merged packet
//!   carries one header, and the kernel's GRO likewise refuses to merge what would lose a window update.
//! - TCP: a segment appends when its sequence number is the end of a held packet, and prepends when its end
//!   is the start of one. Nothing appends after a PSH segment, a PSH segment never prepends, and the merged
//!   packet carries PSH whenever its last segment did. All segments have the first's size except a smaller
//!   last one; nothing follows a smaller segment.
//! - UDP: a datagram only joins the newest held packet of its flow (datagrams are never reordered), at most
//!   [`UDP_MAX_SEGMENTS`] of them, with the same size except a smaller last one. A UDP packet written on
//!   its own ends its flow's held packet; a fragment (IPv4 or IPv6), whose flow cannot be told, ends every
//!   UDP flow between its two addresses.
//! - Both packets' transport checksums must verify; a packet that fails is written on its own, unchanged.
//! - The merged packet fits in 65535 bytes and in the capacity of its `Vec`: coalescing never reallocates,
//!   so give each buffer a capacity of `offset` plus [`MAX_PACKET`](crate::MAX_PACKET) to let merges
//!   reach the limit.
//!
//! A merged packet gets a virtio-net header with `NEEDS_CSUM`, its GSO type, `gso_size`, `hdr_len`,
//! `csum_start` and `csum_offset`, and its transport checksum field holds the pseudo-header seed (folded,
//! not inverted) over the new length, so the kernel finishes the checksum. Every other packet gets a zero
//! header.
//!
//! ```
//! use tun_offload::{GroTable, MAX_PACKET, VirtioNetHdr, handle_gro};
//! # fn ping() -> Vec<u8> {
//! #     vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0]
//! # }
//! const OFFSET: usize = VirtioNetHdr::LEN;
//! let mut bufs: Vec<Vec<u8>> = (0..2)
//!     .map(|_| {
//!         let mut buf = Vec::with_capacity(OFFSET + MAX_PACKET);
//!         buf.resize(OFFSET, 0);
//!         buf.extend_from_slice(&ping());
//!         buf
//!     })
//!     .collect();
//! let mut table = GroTable::new();
//! let mut to_write = Vec::new();
//! handle_gro(&mut bufs, OFFSET, &mut table, true, &mut to_write)?;
//! // ICMP is never coalesced: both packets are written, each with a zero header.
//! assert_eq!(to_write, [0, 1]);
//! assert_eq!(VirtioNetHdr::decode(&bufs[0])?, VirtioNetHdr::default());
//! # Ok::<(), tun_offload::OffloadError>(())
//! ```

mod candidate;
mod flow_key;
mod hasher;
mod table;
mod tcp;
mod udp;

use crate::MAX_PACKET;
use crate::checksum;
use crate::invariant::Invariant;
use crate::virtio::{FLAG_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use crate::wire::{IpPacket, IpVersion, TcpHeader, Transport, UdpHeader, tcp_flags};
use crate::{OffloadError, VirtioNetHdr};
use candidate::Candidate;
pub use table::GroTable;
use table::{Csum, Item};

/// The most datagrams merged into one UDP packet: the kernel's `UDP_MAX_SEGMENTS` before Linux 6.9 (128
/// after), so that older kernels accept every coalesced packet.
pub const UDP_MAX_SEGMENTS: usize = 64;

/// The most segments [`plan_gro`] merges into one packet, so that writing it (its first packet, then one slice
/// per payload that follows) takes at most 1024 slices, the most one `writev` accepts on Linux (`UIO_MAXIOV`).
/// Only segments below 64 bytes of payload ever reach it: 65535 bytes run out first.
pub const PLAN_MAX_SEGMENTS: usize = 1023;

/// Coalesces the packets at `bufs[i][offset..]` and lists in `to_write` (cleared first) the indices of the
/// buffers to write, in order. Each of those holds, at `bufs[idx][offset - 10..]`, a virtio-net header and a
/// packet, possibly merged from several.
///
/// A `Vec`'s length marks its packet's end; merging grows a `Vec` only within its capacity. A prepend may
/// swap two `Vec`s within `bufs` (the merged packet takes the earlier slot); every `Vec` stays in `bufs`.
/// Buffers not listed in `to_write` were merged into others. `table` is empty on return and keeps its
/// memory for the next call: once warmed up, a call allocates nothing.
///
/// # Errors
/// Checked before anything is touched: [`OffloadError::InvalidArgument`] when `offset` is below
/// [`VirtioNetHdr::LEN`], and [`OffloadError::BufferTooSmall`] when a buffer is shorter than `offset`.
/// Packets themselves never cause an error: whatever cannot be coalesced is written unchanged.
pub fn handle_gro(
    bufs: &mut [Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    udp_gro: bool,
    to_write: &mut Vec<usize>,
) -> Result<(), OffloadError> {
    handle_gro_with(
        bufs,
        offset,
        table,
        GroOptions {
            tcp: true,
            udp: udp_gro,
        },
        to_write,
    )
}

/// Which protocols [`handle_gro_with`] coalesces; packets of a protocol left out pass through unchanged.
///
/// A writer keeps these as runtime switches: UDP coalescing needs USO on the device, and some kernels
/// refused GSO writes whose last segment is short, so users need to be able to turn either off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroOptions {
    /// Coalesce TCP segments.
    pub tcp: bool,
    /// Coalesce UDP datagrams (only when the device accepted USO).
    pub udp: bool,
}

/// [`handle_gro`] with TCP and UDP coalescing each switched on or off.
///
/// # Errors
/// As [`handle_gro`].
pub fn handle_gro_with(
    bufs: &mut [Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
    to_write: &mut Vec<usize>,
) -> Result<(), OffloadError> {
    // A merged packet is built in its first buffer as it grows (while the payload just verified is still in
    // cache), so it may only grow as far as that `Vec`'s capacity.
    plan(bufs, offset, table, options, to_write, InPlace)?;
    table.clear();
    Ok(())
}

/// Coalesces like [`handle_gro_with`] without moving payloads, for buffers of any type: a merged packet is
/// written with one `writev` of its first packet (header included) and the payloads that follow it,
/// [`GroTable::merged_payloads`].
///
/// `to_write` (cleared first) lists the buffers to write, in order. Each listed buffer holds a virtio-net
/// header at `bufs[i][offset - 10..offset]` and a packet; for a merged packet those are the headers of the
/// whole merged packet (lengths, checksums, PSH) followed by the first segment's payload only. A prepend
/// may swap two buffers within `bufs` (the merged packet keeps the earlier slot). A buffer's length marks
/// its packet's end. Merged packets are limited to 65535 bytes and [`PLAN_MAX_SEGMENTS`] segments, not by
/// the buffers' sizes.
///
/// The plan stays in `table` until its next use; once warmed up, a call allocates nothing.
///
/// ```
/// use tun_offload::{GroOptions, GroTable, VirtioNetHdr, plan_gro};
/// # fn segment(seq: u32) -> Vec<u8> {
/// #     let mut p = vec![0u8; 10 + 40 + 100];
/// #     let ip = &mut p[10..];
/// #     ip[..20].copy_from_slice(&[0x45, 0, 0, 140, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
/// #     let c = !tun_offload::checksum::checksum(&ip[..20], 0);
/// #     ip[10..12].copy_from_slice(&c.to_be_bytes());
/// #     ip[20..24].copy_from_slice(&[0x9c, 0x40, 1, 0xbb]);
/// #     ip[24..28].copy_from_slice(&seq.to_be_bytes());
/// #     ip[32] = 0x50;
/// #     ip[33] = 0x10;
/// #     ip[34] = 1;
/// #     let pseudo = tun_offload::checksum::pseudo_header_sum(&ip[12..16], &ip[16..20], 6, 120);
/// #     let c = tun_offload::checksum::finish(&ip[20..], pseudo);
/// #     ip[36..38].copy_from_slice(&c.to_be_bytes());
/// #     p
/// # }
/// const OFFSET: usize = VirtioNetHdr::LEN;
/// // Two TCP segments in sequence, in buffers with no room to grow.
/// let mut first = segment(1000);
/// let mut second = segment(1100);
/// let mut bufs: Vec<&mut [u8]> = vec![&mut first, &mut second];
/// let mut table = GroTable::new();
/// let mut to_write = Vec::new();
/// let options = GroOptions { tcp: true, udp: false };
/// plan_gro(&mut bufs, OFFSET, &mut table, options, &mut to_write)?;
/// assert_eq!(to_write, [0]);
/// let tail: Vec<&[u8]> = table.merged_payloads(&bufs, 0, OFFSET).collect();
/// assert_eq!(tail, [&bufs[1][OFFSET + 40..]]);
/// assert_eq!(VirtioNetHdr::decode(&bufs[0][..])?.gso_size, 100);
/// # Ok::<(), tun_offload::OffloadError>(())
/// ```
///
/// # Errors
/// As [`handle_gro`].
pub fn plan_gro<B: AsMut<[u8]>>(
    bufs: &mut [B],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
    to_write: &mut Vec<usize>,
) -> Result<(), OffloadError> {
    plan(bufs, offset, table, options, to_write, Linked)
}

/// The batch walk shared by both ways of coalescing; `merge` says where merged payloads go.
fn plan<B: AsMut<[u8]>, M: Merge<B>>(
    bufs: &mut [B],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
    to_write: &mut Vec<usize>,
    merge: M,
) -> Result<(), OffloadError> {
    table.start(bufs.len());
    to_write.clear();
    if offset < VirtioNetHdr::LEN {
        return Err(OffloadError::InvalidArgument(
            "offset leaves no room for the virtio-net header",
        ));
    }
    if let Some((index, have)) = bufs
        .iter_mut()
        .map(|buf| buf.as_mut().len())
        .enumerate()
        .find(|&(_, len)| len < offset)
    {
        return Err(OffloadError::BufferTooSmall {
            index,
            need: offset,
            have,
        });
    }
    let batch = Batch { offset, merge };
    for index in 0..bufs.len() {
        let packet = packet_at(bufs, index, offset);
        let outcome = match Candidate::parse(packet, options) {
            Some(c) if c.key.transport == Transport::Tcp => {
                tcp::coalesce(bufs, &batch, table, index, &c)
            }
            Some(c) => udp::coalesce(bufs, &batch, table, index, &c),
            None => {
                if options.udp {
                    // A datagram written on its own keeps its place in its flow: no later datagram
                    // may join a packet written before it.
                    table.end_udp_flow(packet);
                }
                Outcome::Alone
            }
        };
        match outcome {
            Outcome::Alone => {
                write_virtio_header(bufs.get_mut(index), offset, &VirtioNetHdr::default());
                to_write.push(index);
            }
            Outcome::Held => to_write.push(index),
            Outcome::Merged => {}
        }
    }
    for item in table.items() {
        let buf = bufs.get_mut(item.buf);
        let hdr = match buf {
            Some(buf) if item.segments > 1 => {
                let packet = buf
                    .as_mut()
                    .get_mut(offset..)
                    .invariant("every buffer was checked to hold `offset` bytes")
                    .unwrap_or_default();
                finish_merged(packet, item)
            }
            _ => VirtioNetHdr::default(),
        };
        write_virtio_header(bufs.get_mut(item.buf), offset, &hdr);
    }
    Ok(())
}

/// What the coalescing functions need to know of the batch besides its buffers.
struct Batch<M> {
    offset: usize,
    merge: M,
}

/// Where the payload of a segment goes when it joins a held packet.
trait Merge<B> {
    /// How long a merged packet whose first segment is in `buf` may grow.
    fn room(&self, buf: &B, offset: usize) -> usize;

    /// The most segments one merged packet may have.
    fn max_segments(&self) -> usize;

    /// Called for each payload that joins the packet in `bufs[dst]`: after it, or in front of it just before
    /// the two buffers swap places.
    fn append(&self, bufs: &mut [B], offset: usize, dst: usize, src: usize, headers_len: usize);
}

/// [`handle_gro`]'s way: the merged packet is built in its first `Vec` as segments join, while the payload
/// just verified is still in cache, so it may only grow as far as that `Vec`'s capacity.
struct InPlace;

impl Merge<Vec<u8>> for InPlace {
    fn room(&self, buf: &Vec<u8>, offset: usize) -> usize {
        buf.capacity().saturating_sub(offset)
    }

    fn max_segments(&self) -> usize {
        usize::MAX
    }

    fn append(
        &self,
        bufs: &mut [Vec<u8>],
        offset: usize,
        dst: usize,
        src: usize,
        headers_len: usize,
    ) {
        append_payload(bufs, offset, dst, src, headers_len);
    }
}

/// [`plan_gro`]'s way: payloads stay where they are, linked in the table.
struct Linked;

impl<B> Merge<B> for Linked {
    fn room(&self, _: &B, _: usize) -> usize {
        MAX_PACKET
    }

    fn max_segments(&self) -> usize {
        PLAN_MAX_SEGMENTS
    }

    fn append(&self, _: &mut [B], _: usize, _: usize, _: usize, _: usize) {}
}

/// What became of one packet of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Not coalesced and never will be in this batch: written unchanged with a zero header.
    Alone,
    /// Held in the table: written (possibly with others merged into it) once the batch is done.
    Held,
    /// Merged into a held packet: not written on its own.
    Merged,
}

fn write_virtio_header<B: AsMut<[u8]>>(buf: Option<&mut B>, offset: usize, hdr: &VirtioNetHdr) {
    if let Some(slot) = buf
        .and_then(|buf| buf.as_mut().get_mut(offset - VirtioNetHdr::LEN..offset))
        .invariant("an index of the batch, whose buffers were checked to hold `offset` bytes")
    {
        let _ = hdr
            .encode(slot)
            .invariant("the slot is exactly the header's length");
    }
}

/// Rewrites the headers of a merged packet's first segment (`packet`, that segment only) for the whole
/// merged packet and returns its virtio-net header.
fn finish_merged(packet: &mut [u8], item: &Item) -> VirtioNetHdr {
    let len = item.len();
    let l4_len = len - item.iph_len;
    let transport = item.key.transport;
    let seed = match IpPacket::new_checked(&mut *packet).invariant("a candidate's IP header") {
        Some(mut ip) => {
            ip.set_total_len(len);
            ip.fill_header_checksum();
            // The folded, not inverted, pseudo-header sum over the new length: the kernel adds the rest.
            checksum::fold(ip.pseudo_header_sum(transport.protocol(), l4_len))
        }
        None => 0,
    };
    let l4 = packet
        .get_mut(item.iph_len..)
        .invariant("a candidate's transport header follows its IP header")
        .unwrap_or_default();
    match transport {
        Transport::Tcp => {
            if let Some(mut tcp) =
                TcpHeader::new_checked(&mut *l4).invariant("a candidate's TCP header")
            {
                if item.psh {
                    tcp.set_flags(tcp.flags() | tcp_flags::PSH);
                }
                tcp.set_checksum(seed);
            }
        }
        Transport::Udp => {
            if let Some(mut udp) =
                UdpHeader::new_checked(&mut *l4).invariant("a candidate's UDP header")
            {
                udp.set_length(l4_len as u16);
                udp.set_checksum(seed);
            }
        }
    }
    let gso_type = match (transport, item.key.version) {
        (Transport::Tcp, IpVersion::V4) => GSO_TCPV4,
        (Transport::Tcp, IpVersion::V6) => GSO_TCPV6,
        (Transport::Udp, _) => GSO_UDP_L4,
    };
    VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type,
        hdr_len: (item.iph_len + item.l4h_len) as u16,
        gso_size: item.gso_size as u16,
        csum_start: item.iph_len as u16,
        csum_offset: transport.checksum_offset() as u16,
    }
}

/// True when the packet's transport checksum verifies over the pseudo-header and the whole L4 part.
fn l4_checksum_valid(packet: &[u8], iph_len: usize, transport: Transport) -> bool {
    let Some(ip) = IpPacket::new_checked(packet).invariant("a candidate's IP header") else {
        return false;
    };
    let l4 = packet
        .get(iph_len..)
        .invariant("a candidate's transport header follows its IP header")
        .unwrap_or_default();
    let seed = ip.pseudo_header_sum(transport.protocol(), l4.len());
    checksum::checksum(l4, seed) == 0xffff
}

/// Whether the held packet of table item `at` has a valid transport checksum: verified the first time it is
/// asked, and remembered in the item so that it is summed at most once per batch.
fn held_checksum_valid<B: AsMut<[u8]>>(
    bufs: &mut [B],
    offset: usize,
    table: &mut GroTable,
    at: usize,
) -> bool {
    let Some(held) = table.item_mut(at) else {
        return false;
    };
    match held.csum {
        Csum::Valid => true,
        Csum::Invalid => false,
        Csum::Unchecked => {
            let valid = l4_checksum_valid(
                packet_at(bufs, held.buf, offset),
                held.iph_len,
                held.key.transport,
            );
            held.csum = if valid { Csum::Valid } else { Csum::Invalid };
            valid
        }
    }
}

/// Appends the payload of `bufs[src]` (after `headers_len`) to `bufs[dst]`, within `dst`'s capacity (which
/// the plan checked).
fn append_payload(bufs: &mut [Vec<u8>], offset: usize, dst: usize, src: usize, headers_len: usize) {
    if let Some([dst, src]) = bufs
        .get_disjoint_mut([dst, src])
        .invariant("a packet joins another buffer's packet")
        && let Some(payload) = src
            .get(offset + headers_len..)
            .invariant("a candidate's payload follows its headers")
    {
        dst.extend_from_slice(payload);
    }
}

/// The IP headers of two packets agree (see [`IpPacket::agrees_with`]).
fn ip_headers_agree(a: &[u8], b: &[u8]) -> bool {
    let a = IpPacket::new_checked(a).invariant("a candidate's IP header");
    let b = IpPacket::new_checked(b).invariant("a held packet's IP header");
    match (a, b) {
        (Some(a), Some(b)) => a.agrees_with(&b),
        _ => false,
    }
}

/// The packet at `bufs[index][offset..]` of an index of the batch (an empty slice only if that broke).
fn packet_at<B: AsMut<[u8]>>(bufs: &mut [B], index: usize, offset: usize) -> &[u8] {
    bufs.get_mut(index)
        .and_then(|buf| buf.as_mut().get(offset..))
        .invariant("an index of the batch, whose buffers were checked to hold `offset` bytes")
        .unwrap_or_default()
}

/// The packets of two distinct buffers, or `None`.
fn two_packets<B: AsMut<[u8]>>(
    bufs: &mut [B],
    a: usize,
    b: usize,
    offset: usize,
) -> Option<(&[u8], &[u8])> {
    let [a, b] = bufs
        .get_disjoint_mut([a, b])
        .invariant("a packet is compared with other buffers' packets")?;
    let why = "buffers were checked to hold `offset` bytes";
    Some((
        a.as_mut().get(offset..).invariant(why)?,
        b.as_mut().get(offset..).invariant(why)?,
    ))
}

impl<M> Batch<M> {
    /// True when a merged packet of `len` bytes and `segments` segments may start in `bufs[index]`.
    fn fits<B>(&self, bufs: &[B], index: usize, len: usize, segments: usize) -> bool
    where
        M: Merge<B>,
    {
        len <= MAX_PACKET
            && segments <= self.merge.max_segments()
            && bufs
                .get(index)
                .is_some_and(|buf| self.merge.room(buf, self.offset) >= len)
    }

    /// Hands the payload of `bufs[src]` to the packet in `bufs[dst]`.
    fn append<B>(&self, bufs: &mut [B], dst: usize, src: usize, headers_len: usize)
    where
        M: Merge<B>,
    {
        self.merge.append(bufs, self.offset, dst, src, headers_len);
    }
}

#[cfg(test)]
mod tests;
