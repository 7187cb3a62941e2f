//! Coalescing packets before they are written to an `IFF_VNET_HDR` TUN device (GRO in user space).
//!
//! [`handle_gro`] takes a batch of IP packets and plans to merge consecutive TCP segments, and (when asked) UDP
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
//! - The merged packet fits in 65535 bytes and in its first segment's buffer: the other segments' payloads
//!   are copied into the room after that segment's packet, so give each buffer `offset` plus
//!   [`MAX_PACKET`](crate::MAX_PACKET) bytes to let merges reach the limit.
//!
//! A merged packet is written with a virtio-net header with `NEEDS_CSUM`, its GSO type, `gso_size`,
//! `hdr_len`, `csum_start` and `csum_offset`, and its transport checksum field holds the pseudo-header seed
//! (folded, not inverted) over the new length, so the kernel finishes the checksum; those headers are made
//! when the frame is written ([`Frame::encode`]), never in the caller's packet. Every other packet is written
//! with a zero header. [`handle_gro`] has an example.

mod candidate;
mod flow_key;
mod hasher;
mod plan;
mod table;
mod tcp;
mod udp;

use crate::MAX_PACKET;
use crate::OffloadError;
use crate::checksum;
use crate::invariant::Invariant;
use crate::wire::{IpPacket, Layer, LinkHeader, Transport};
use candidate::Candidate;
use flow_key::FlowKey;
use plan::Merged;
pub use plan::{FRAME_HEAD_MAX, Frame, GroPlan};
pub use table::GroTable;
use table::{Csum, Item};

/// The most datagrams merged into one UDP packet: the kernel's `UDP_MAX_SEGMENTS` before Linux 6.9 (128
/// after), so that older kernels accept every coalesced packet.
pub const UDP_MAX_SEGMENTS: usize = 64;

/// Coalesces the batch of packets `bufs[i][offset..offset + sizes[i]]` and plans its writes in `plan`:
/// the frames to write, in order, each one packet as it is or several merged into one super-packet, and the
/// frame that carries each packet. Write frame `k` as the two slices
/// [`Frame::encode`] gives (a virtio-net header, then the packet).
///
/// A merged packet is built in its first segment's buffer: the other segments' payloads are copied into that
/// buffer's room after its packet (the bytes from `offset + sizes[i]` to the buffer's end, which the caller
/// gives up), so a merge only grows as far as that room. Give each buffer `offset +`
/// [`MAX_PACKET`](crate::MAX_PACKET) bytes to let merges reach the limit, as a read batch has. The packets
/// themselves are never changed: the merged packet's headers are made at write time, by
/// [`Frame::encode`], so a frame left unwritten leaves every packet it carries as it was.
///
/// A packet whose size does not fit its buffer, or that is not a candidate, is planned alone (writing it
/// then says what is wrong with it). `table` is empty on return and keeps its memory, as does `plan`: once
/// warmed up, a call allocates nothing.
///
/// ```
/// use tun_offload::{FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, MAX_PACKET, VirtioNetHdr, handle_gro};
/// # fn ping() -> Vec<u8> {
/// #     vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0]
/// # }
/// const OFFSET: usize = VirtioNetHdr::LEN;
/// let mut bufs = vec![vec![0u8; OFFSET + MAX_PACKET]; 2];
/// let mut sizes = [0; 2];
/// for (buf, size) in bufs.iter_mut().zip(&mut sizes) {
///     let packet = ping();
///     buf[OFFSET..OFFSET + packet.len()].copy_from_slice(&packet);
///     *size = packet.len();
/// }
/// let (mut table, mut plan) = (GroTable::new(), GroPlan::new());
/// let options = GroOptions { tcp: true, udp: true };
/// handle_gro(&mut bufs, &sizes, OFFSET, &mut table, options, &mut plan)?;
/// // ICMP is never coalesced: both packets are written, each with a zero header.
/// assert_eq!(plan.frames().len(), 2);
/// let mut scratch = [0u8; FRAME_HEAD_MAX];
/// let [hdr, packet] = plan.frames()[0].encode(&bufs[0], OFFSET, &mut scratch)?;
/// assert_eq!(VirtioNetHdr::decode(hdr)?, VirtioNetHdr::default());
/// assert_eq!(packet, ping());
/// # Ok::<(), tun_offload::OffloadError>(())
/// ```
///
/// # Errors
/// Checked before anything is touched: [`OffloadError::InvalidArgument`] when `sizes` is shorter than
/// `bufs`. Packets never cause an error: whatever cannot be coalesced is planned alone.
pub fn handle_gro<B: AsMut<[u8]>>(
    bufs: &mut [B],
    sizes: &[usize],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
    plan: &mut GroPlan,
) -> Result<(), OffloadError> {
    handle_gro_with_layer(bufs, sizes, offset, Layer::L3, table, options, plan)
}

/// [`handle_gro`] of a batch for a device of `layer`. On [`Layer::L2`] each packet is an Ethernet frame:
/// frames coalesce as their IP packets do, and only when their Ethernet headers (tags included) are the same
/// bytes; the merged frame carries that header once, and its virtio-net header's `csum_start` and `hdr_len`
/// count from the frame's start. Frames that are not IPv4 or IPv6 (ARP, LLDP, more than two VLAN tags), are
/// shorter than an Ethernet header, or whose EtherType disagrees with their IP version are planned alone,
/// unchanged.
///
/// # Errors
/// As [`handle_gro`].
pub fn handle_gro_with_layer<B: AsMut<[u8]>>(
    bufs: &mut [B],
    sizes: &[usize],
    offset: usize,
    layer: Layer,
    table: &mut GroTable,
    options: GroOptions,
    plan: &mut GroPlan,
) -> Result<(), OffloadError> {
    table.clear();
    plan.start(bufs.len());
    let Some(sizes) = sizes.get(..bufs.len()) else {
        return Err(OffloadError::InvalidArgument(
            "sizes has fewer entries than there are buffers",
        ));
    };
    // The link headers are found once, before the walk: the coalescing steps place each packet by them.
    let mut links = std::mem::take(&mut table.links);
    if layer != Layer::L3 {
        let frames = Batch {
            offset,
            sizes,
            links: &[],
        };
        links.extend((0..sizes.len()).map(|index| {
            frames
                .packet(bufs, index)
                .and_then(|frame| LinkHeader::parse(layer, frame).ok())
        }));
    }
    let result = plan_batch(
        bufs,
        &Batch {
            offset,
            sizes,
            links: &links,
        },
        table,
        options,
        plan,
    );
    links.clear();
    table.links = links;
    result
}

/// The walk of [`handle_gro_with_layer`] over a batch whose link headers are known.
fn plan_batch<B: AsMut<[u8]>>(
    bufs: &mut [B],
    batch: &Batch<'_>,
    table: &mut GroTable,
    options: GroOptions,
    plan: &mut GroPlan,
) -> Result<(), OffloadError> {
    let sizes = batch.sizes;
    for (index, &size) in sizes.iter().enumerate() {
        // Each packet's IP header is validated here, once: the candidate carries what later steps need.
        let ip = batch
            .ip_packet(bufs, index)
            .and_then(|packet| IpPacket::new_checked(packet).ok())
            .filter(|ip| batch.link_agrees(index, ip));
        match ip.and_then(|ip| Candidate::parse(ip, options)) {
            Some(c) if c.key.transport == Transport::Tcp => {
                tcp::coalesce(bufs, batch, table, plan, index, &c);
            }
            Some(c) => udp::coalesce(bufs, batch, table, plan, index, &c),
            None => {
                if options.udp
                    && let Some(ip) = ip
                {
                    // A datagram written on its own keeps its place in its flow: no later datagram
                    // may join a packet written before it.
                    table.end_udp_flow(&ip);
                }
                plan.push(index, size);
            }
        }
    }
    let described = table.items().iter().try_for_each(|item| {
        // Skipping an item would write its frame as the first packet alone and lose the packets merged
        // into it, so a frame missing from the plan is an error, never a fallback.
        let frame = plan
            .frame_mut(item.frame)
            .invariant("each held item's frame was pushed in this batch")
            .ok_or(OffloadError::InvalidArgument(
                "the table holds a packet of a frame the plan lacks",
            ))?;
        let link_len = batch.link_len(item.buf);
        frame.buf = item.buf;
        frame.len = link_len + item.len();
        frame.merged = (item.segments > 1).then_some(Merged {
            link_len,
            version: item.key.version,
            transport: item.key.transport,
            iph_len: item.iph_len,
            l4h_len: item.l4h_len,
            gso_size: item.gso_size,
            segments: item.segments,
            psh: item.psh,
        });
        Ok(())
    });
    table.clear();
    described
}

/// Which protocols [`handle_gro`] coalesces; packets of a protocol left out pass through unchanged.
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

/// The batch's buffers as the coalescing steps see them: where each packet is. The steps work on IP
/// packets; on L2 each sits after its frame's link header, which stays where it is.
struct Batch<'s> {
    offset: usize,
    sizes: &'s [usize],
    /// Each frame's link header on L2 (`None`: not IP, planned alone); empty on L3.
    links: &'s [Option<LinkHeader>],
}

impl Batch<'_> {
    /// Packet (on L2: frame) `index`, `None` when its size does not fit its buffer.
    fn packet<'b, B: AsMut<[u8]>>(&self, bufs: &'b mut [B], index: usize) -> Option<&'b [u8]> {
        let end = self.offset.checked_add(*self.sizes.get(index)?)?;
        bufs.get_mut(index)?.as_mut().get(self.offset..end)
    }

    /// The length of packet `index`'s link header: 0 on L3.
    fn link_len(&self, index: usize) -> usize {
        self.links
            .get(index)
            .copied()
            .flatten()
            .map_or(0, |l| l.len)
    }

    /// Whether packet `index` may be coalesced as `ip` says: always on L3; on L2 when its frame carries IP
    /// of the version its EtherType announces.
    fn link_agrees(&self, index: usize, ip: &IpPacket<&[u8]>) -> bool {
        self.links.is_empty()
            || self
                .links
                .get(index)
                .copied()
                .flatten()
                .is_some_and(|link| link.check_version(ip.version()).is_ok())
    }

    /// Where packet `index`'s IP packet starts in its buffer.
    fn start(&self, index: usize) -> usize {
        self.offset + self.link_len(index)
    }

    /// The IP packet of packet `index`, after its link header; `None` when its size does not fit its buffer.
    fn ip_packet<'b, B: AsMut<[u8]>>(&self, bufs: &'b mut [B], index: usize) -> Option<&'b [u8]> {
        self.packet(bufs, index)?.get(self.link_len(index)..)
    }

    /// The first `len` bytes of buffer `index`'s IP packet: a held (possibly merged) packet.
    fn held<'b, B: AsMut<[u8]>>(
        &self,
        bufs: &'b mut [B],
        index: usize,
        len: usize,
    ) -> Option<&'b [u8]> {
        let start = self.start(index);
        bufs.get_mut(index)
            .and_then(|buf| buf.as_mut().get(start..start + len))
            .invariant("a held packet lies within its buffer")
    }

    /// True when a merged IP packet of `len` bytes may be built in buffer `front`: within 65535 bytes and,
    /// after its link header, the buffer's length.
    fn fits<B: AsMut<[u8]>>(&self, bufs: &mut [B], front: usize, len: usize) -> bool {
        let start = self.start(front);
        len <= MAX_PACKET
            && bufs
                .get_mut(front)
                .is_some_and(|buf| buf.as_mut().len().saturating_sub(start) >= len)
    }

    /// Copies the payload of packet `src` (after `headers_len` bytes, `src_len` bytes in all) into buffer
    /// `dst` right after its `dst_len` bytes of packet, and returns true. [`fits`](Self::fits) checked the
    /// room; the caller records the merge only when the copy was made.
    #[must_use]
    fn append<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        dst: usize,
        dst_len: usize,
        src: usize,
        src_len: usize,
        headers_len: usize,
    ) -> bool {
        let (dst_start, src_start) = (self.start(dst), self.start(src));
        if let Some([dst, src]) = bufs
            .get_disjoint_mut([dst, src])
            .invariant("a packet joins another buffer's packet")
            && let Some(payload) = src
                .as_mut()
                .get(src_start + headers_len..src_start + src_len)
                .invariant("a candidate's payload follows its headers")
            && let Some(room) = dst
                .as_mut()
                .get_mut(dst_start + dst_len..dst_start + dst_len + payload.len())
                .invariant("the merge was checked to fit its buffer")
        {
            room.copy_from_slice(payload);
            return true;
        }
        false
    }
}

/// True when the packet's transport checksum verifies over the pseudo-header and the whole L4 part; the
/// packet's flow and IP header length are those its candidate was parsed with.
fn l4_checksum_valid(packet: &[u8], key: &FlowKey, iph_len: usize) -> bool {
    let Some((ip, l4)) = packet
        .split_at_checked(iph_len)
        .invariant("a candidate's transport header follows its IP header")
    else {
        return false;
    };
    let ip = IpPacket::new_unchecked(ip, key.version, iph_len);
    let seed = ip.pseudo_header_sum(key.transport.protocol(), l4.len());
    checksum::checksum(l4, seed) == 0xffff
}

/// Whether the held packet of table item `at` has a valid transport checksum: verified the first time it is
/// asked, and remembered in the item so that it is summed at most once per batch.
fn held_checksum_valid<B: AsMut<[u8]>>(
    bufs: &mut [B],
    batch: &Batch<'_>,
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
            let valid = batch
                .held(bufs, held.buf, held.len())
                .is_some_and(|packet| l4_checksum_valid(packet, &held.key, held.iph_len));
            held.csum = if valid { Csum::Valid } else { Csum::Invalid };
            valid
        }
    }
}

/// The IP headers of candidate `c`'s packet and of item `item`'s held packet agree (see
/// [`IpPacket::agrees_with`]).
fn ip_headers_agree(packet: &[u8], c: &Candidate, held: &[u8], item: &Item) -> bool {
    let a = IpPacket::new_unchecked(packet, c.key.version, c.iph_len);
    let b = IpPacket::new_unchecked(held, item.key.version, item.iph_len);
    a.agrees_with(&b)
}

/// The IP packet of candidate `c` (packet `index` of the batch) and the held packet of item `item`, from two
/// distinct buffers; `None` when their link headers differ (on L2: frames to other hosts or VLANs never
/// merge).
fn two_packets<'b, B: AsMut<[u8]>>(
    bufs: &'b mut [B],
    batch: &Batch<'_>,
    index: usize,
    c: &Candidate,
    item: &Item,
) -> Option<(&'b [u8], &'b [u8])> {
    let offset = batch.offset;
    let (a_start, b_start) = (batch.start(index), batch.start(item.buf));
    let [a, b] = bufs
        .get_disjoint_mut([index, item.buf])
        .invariant("a packet is compared with other buffers' packets")?;
    let (a, b) = (a.as_mut(), b.as_mut());
    let why = "candidates and held packets lie within their buffers";
    if a.get(offset..a_start).invariant(why)? != b.get(offset..b_start).invariant(why)? {
        return None;
    }
    Some((
        a.get(a_start..a_start + c.len()).invariant(why)?,
        b.get(b_start..b_start + item.len()).invariant(why)?,
    ))
}

#[cfg(test)]
mod tests;
