//! What a coalesced batch comes to: the frames to write, in order, and which frame carries each packet.

use crate::virtio::{FLAG_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use crate::wire::{
    IpPacket, IpVersion, MAX_LINK_HEADER_LEN, TcpHeader, Transport, UdpHeader, tcp_flags,
};
use crate::{OffloadError, VirtioNetHdr, checksum};

/// The longest virtio-net header and packet headers [`Frame::encode`] puts in front of a merged packet's
/// payload: the header, an Ethernet header with two VLAN tags (on L2), an IPv6 header (40 bytes; IPv4
/// candidates have no options) and a TCP header with the most options (60).
pub const FRAME_HEAD_MAX: usize = VirtioNetHdr::LEN + MAX_LINK_HEADER_LEN + 40 + 60;

/// The writes [`handle_gro`](super::handle_gro) planned for a batch, in order, and for each packet of the
/// batch the write that carries it. Kept by the writer and reused: once warm, planning allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct GroPlan {
    frames: Vec<Frame>,
    frame_of: Vec<usize>,
}

impl GroPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty plan with room for a batch of `packets` packets before it allocates.
    pub fn with_capacity(packets: usize) -> Self {
        Self {
            frames: Vec::with_capacity(packets),
            frame_of: Vec::with_capacity(packets),
        }
    }

    /// The frames to write, in order: each one packet of the batch, or several merged into one.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The index in [`frames`](Self::frames) of the frame that carries packet `packet` of the batch.
    pub fn frame_of(&self, packet: usize) -> Option<usize> {
        self.frame_of.get(packet).copied()
    }

    /// The packets of the batch that frame `frame` carries, in the batch's order.
    pub fn members(&self, frame: usize) -> impl Iterator<Item = usize> + '_ {
        self.frame_of
            .iter()
            .enumerate()
            .filter(move |&(_, &f)| f == frame)
            .map(|(packet, _)| packet)
    }

    /// How many packets the planned batch had.
    pub fn packet_count(&self) -> usize {
        self.frame_of.len()
    }

    /// Plans a batch of packets of `sizes` bytes written each on its own, in order: a batch written without
    /// coalescing.
    pub fn each_alone(&mut self, sizes: &[usize]) {
        self.start(sizes.len());
        for (packet, &len) in sizes.iter().enumerate() {
            self.push(packet, len);
        }
    }

    /// Starts a plan for `packets` packets, none assigned.
    pub(super) fn start(&mut self, packets: usize) {
        self.frames.clear();
        self.frame_of.clear();
        self.frame_of.resize(packets, usize::MAX);
    }

    /// A new frame for packet `packet`, alone so far; returns its index.
    pub(super) fn push(&mut self, packet: usize, len: usize) -> usize {
        let frame = self.frames.len();
        self.frames.push(Frame {
            buf: packet,
            len,
            merged: None,
        });
        if let Some(slot) = self.frame_of.get_mut(packet) {
            *slot = frame;
        }
        frame
    }

    /// Packet `packet` travels in frame `frame`.
    pub(super) fn assign(&mut self, packet: usize, frame: usize) {
        if let Some(slot) = self.frame_of.get_mut(packet) {
            *slot = frame;
        }
    }

    pub(super) fn frame_mut(&mut self, frame: usize) -> Option<&mut Frame> {
        self.frames.get_mut(frame)
    }
}

/// One write: the packet at `bufs[buf][offset..offset + len]`, which for a merged packet is the first
/// segment's packet followed by the other segments' payloads (in that buffer's room after the first packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The buffer of the batch that holds the frame's packet.
    pub buf: usize,
    /// The packet's length: the whole merged packet for a merged frame.
    pub len: usize,
    /// What the merged packet's headers must say; `None` for a packet written as it is.
    pub(super) merged: Option<Merged>,
}

/// The shape of a merged packet, from which its headers are rewritten at write time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Merged {
    /// The link header in front of the IP packet, copied as it is (0 on L3).
    pub(super) link_len: usize,
    pub(super) version: IpVersion,
    pub(super) transport: Transport,
    pub(super) iph_len: usize,
    pub(super) l4h_len: usize,
    /// Payload bytes of every segment but a possibly smaller last one.
    pub(super) gso_size: usize,
    pub(super) segments: usize,
    /// The last segment carried PSH (TCP).
    pub(super) psh: bool,
}

/// The virtio-net header of a packet written as it is.
const PLAIN_HEADER: [u8; VirtioNetHdr::LEN] = [0; VirtioNetHdr::LEN];

impl Frame {
    /// How many packets of the batch the frame carries.
    pub fn segments(&self) -> usize {
        self.merged.map_or(1, |m| m.segments)
    }

    /// The frame as the two slices one `writev` takes, the virtio-net header first: for a packet written as
    /// it is, a zero header and the packet; for a merged packet, a header with its GSO type and size and
    /// NEEDS_CSUM, followed by the first segment's headers rewritten for the whole packet (lengths, IPv4
    /// header checksum, PSH, the transport checksum field holding the pseudo-header seed), both built in
    /// `scratch`, and then the payloads as they are in the buffer. The buffer itself is never changed, so
    /// a frame that is not written leaves its packets as they were.
    ///
    /// The headers are rewritten through the lengths [`handle_gro`](super::handle_gro) validated, not
    /// validated again: pass the buffer the plan was made over, unchanged since.
    ///
    /// # Errors
    /// [`OffloadError::BufferTooSmall`] when `buf` does not hold `offset + len` bytes (the size given for a
    /// packet was larger than its buffer); [`OffloadError::Malformed`] for a merged frame whose `len` was
    /// changed to less than its headers.
    pub fn encode<'a>(
        &self,
        buf: &'a [u8],
        offset: usize,
        scratch: &'a mut [u8; FRAME_HEAD_MAX],
    ) -> Result<[&'a [u8]; 2], OffloadError> {
        let end = offset.saturating_add(self.len);
        let packet = buf.get(offset..end).ok_or(OffloadError::BufferTooSmall {
            index: self.buf,
            need: end,
            have: buf.len(),
        })?;
        let Some(merged) = self.merged else {
            return Ok([&PLAIN_HEADER, packet]);
        };
        let headers_len = merged.link_len + merged.iph_len + merged.l4h_len;
        let (headers, payload) =
            packet
                .split_at_checked(headers_len)
                .ok_or(OffloadError::Malformed(
                    "merged packet shorter than its headers",
                ))?;
        let head = scratch
            .get_mut(..VirtioNetHdr::LEN + headers_len)
            .ok_or(OffloadError::Malformed("merged packet headers too long"))?;
        let (hdr_slot, headers_slot) = head.split_at_mut(VirtioNetHdr::LEN);
        headers_slot.copy_from_slice(headers);
        // The link header is copied as it is; `headers_len` covers it, so the split cannot fail.
        let (_, ip_headers) = headers_slot.split_at_mut(merged.link_len);
        let mut hdr = rewrite_headers(
            ip_headers,
            self.len.saturating_sub(merged.link_len),
            &merged,
        );
        // The kernel counts the offsets from the start of the frame.
        hdr.csum_start += merged.link_len as u16;
        hdr.hdr_len += merged.link_len as u16;
        hdr.encode(hdr_slot)?;
        Ok([head, payload])
    }
}

/// Rewrites `headers`, a copy of the first segment's IP and transport headers (`iph_len + l4h_len` bytes),
/// for the merged packet of `len` bytes (at least the headers) and returns its virtio-net header.
///
/// The headers were validated when their packet became a candidate; they are rewritten through views built
/// from the lengths found then, not validated again.
fn rewrite_headers(headers: &mut [u8], len: usize, m: &Merged) -> VirtioNetHdr {
    let l4_len = len.saturating_sub(m.iph_len);
    // `headers` is `iph_len + l4h_len` bytes long (Frame::encode cut it so), so this split cannot fail.
    let (ip, l4) = headers.split_at_mut(m.iph_len);
    let mut ip = IpPacket::new_unchecked(ip, m.version, m.iph_len);
    ip.set_total_len(len);
    ip.fill_header_checksum();
    // The folded, not inverted, pseudo-header sum over the new length: the kernel adds the rest.
    let seed = checksum::fold(ip.pseudo_header_sum(m.transport.protocol(), l4_len));
    match m.transport {
        Transport::Tcp => {
            let mut tcp = TcpHeader::new_unchecked(l4, m.l4h_len);
            if m.psh {
                tcp.set_flags(tcp.flags() | tcp_flags::PSH);
            }
            tcp.set_checksum(seed);
        }
        Transport::Udp => {
            let mut udp = UdpHeader::new_unchecked(l4);
            udp.set_length(l4_len as u16);
            udp.set_checksum(seed);
        }
    }
    let gso_type = match (m.transport, m.version) {
        (Transport::Tcp, IpVersion::V4) => GSO_TCPV4,
        (Transport::Tcp, IpVersion::V6) => GSO_TCPV6,
        (Transport::Udp, _) => GSO_UDP_L4,
    };
    VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type,
        hdr_len: (m.iph_len + m.l4h_len) as u16,
        gso_size: m.gso_size as u16,
        csum_start: m.iph_len as u16,
        csum_offset: m.transport.checksum_offset() as u16,
    }
}
