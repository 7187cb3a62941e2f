//! Splitting what one `read()` of an `IFF_VNET_HDR` TUN device returns into ordinary IP packets.
//!
//! A read holds a [`VirtioNetHdr`] and one IP packet. With `GSO_NONE` the packet passes through (its
//! checksum finished when `NEEDS_CSUM` asks for it); with `GSO_TCPV4`, `GSO_TCPV6` or `GSO_UDP_L4` it is a
//! super-packet of up to 64 KB that is cut into segments of `gso_size` payload bytes, each with its own
//! headers and full checksums.
//!
//! Two ways in:
//! - [`gso_split`] splits the whole read into the caller's buffers at once, or fails without writing
//!   anything when they are too few or too small.
//! - [`SplitState`] splits it in batches: created once from the read (validating it), then
//!   [`next_batch`](SplitState::next_batch) or [`next_segment`](SplitState::next_segment) hand out the
//!   segments that fit, and the rest stay for the next call. The state is a small `Copy` value holding no
//!   borrow, so a device can keep its read buffer and the state side by side between calls;
//!   [`Segmenter`] is the same with the read borrowed, for callers that split in one scope.
//!
//! Each segment gets its own headers: IPv4 total length, identification (counting up from the first) and
//! header checksum, or IPv6 payload length; TCP sequence number (advancing by `gso_size`), with FIN and PSH
//! only on the last segment; UDP length; and a full transport checksum over the pseudo-header. With
//! `GSO_ECN` (the device negotiated `TUN_F_TSO_ECN`) CWR stays on the first segment only, as a TSO_ECN
//! device would do it; without that bit CWR is copied like every other flag, because an accurate-ECN
//! sender uses it as part of a counter and the kernel only sets `GSO_ECN` for classic ECN.
//!
//! Nothing from the kernel is trusted: `hdr_len` is ignored (the header length comes from the headers
//! themselves), and every length and offset is checked before it is used. Malformed input is an
//! [`OffloadError`], never a panic and never a silently wrong packet.
//!
//! ```
//! use tun_offload::{gso_split, VirtioNetHdr};
//! # fn packet() -> Vec<u8> {
//! #     let mut p = vec![0u8; 28];
//! #     p[0] = 0x45; p[3] = 28; p[8] = 64; p[9] = 17; p[24] = 0; p[25] = 8;
//! #     p
//! # }
//! // A plain (GSO_NONE) packet passes through.
//! let mut read = vec![0u8; VirtioNetHdr::LEN];
//! read.extend_from_slice(&packet());
//! let mut bufs = vec![vec![0u8; 1500]; 4];
//! let mut sizes = [0usize; 4];
//! let n = gso_split(&mut read, &mut bufs, &mut sizes, 0)?;
//! assert_eq!((n, sizes[0]), (1, 28));
//! # Ok::<(), tun_offload::OffloadError>(())
//! ```

use crate::checksum;
use crate::virtio::{GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use crate::wire::{
    ETHERNET_HEADER_LEN, IpPacket, IpVersion, Layer, LinkHeader, TcpHeader, Transport, UdpHeader,
    tcp_flags,
};
use crate::{OffloadError, VirtioNetHdr};

/// Splits one read of an `IFF_VNET_HDR` device into IP packets at `bufs[i][offset..offset + sizes[i]]` and
/// returns how many it wrote.
///
/// `read` is exactly what `read()` returned: the virtio-net header, then one IP packet; it is left unchanged
/// (it is taken as `&mut` so that the device's read buffer is passed as it is held). All or nothing:
/// when the packet has more segments than `bufs` and `sizes` have room for, this returns
/// [`OffloadError::TooFewBuffers`], and when a buffer is too small for its segment
/// [`OffloadError::BufferTooSmall`] (naming the buffer), in both cases before writing anything, so the
/// caller can retry with more or larger buffers or split in batches with [`SplitState`].
///
/// # Errors
/// Everything [`SplitState::new`] rejects, plus the two above.
pub fn gso_split<B: AsMut<[u8]>>(
    read: &mut [u8],
    bufs: &mut [B],
    sizes: &mut [usize],
    offset: usize,
) -> Result<usize, OffloadError> {
    gso_split_with_layer(read, Layer::L3, bufs, sizes, offset)
}

/// [`gso_split`] of a read of a device of `layer`: on [`Layer::L2`] the read holds an Ethernet frame, and
/// each segment is a frame with the super-frame's Ethernet header (tags included) in front.
///
/// # Errors
/// As [`gso_split`], and what [`SplitState::with_layer`] rejects.
pub fn gso_split_with_layer<B: AsMut<[u8]>>(
    read: &mut [u8],
    layer: Layer,
    bufs: &mut [B],
    sizes: &mut [usize],
    offset: usize,
) -> Result<usize, OffloadError> {
    let mut state = SplitState::with_layer(read, layer)?;
    let slots = bufs.len().min(sizes.len());
    let segments = state.remaining();
    if segments > slots {
        return Err(OffloadError::TooFewBuffers {
            segments,
            buffers: slots,
        });
    }
    for (index, buf) in bufs.iter_mut().take(segments).enumerate() {
        let need = offset.saturating_add(state.segment_len(state.next + index));
        let have = buf.as_mut().len();
        if have < need {
            return Err(OffloadError::BufferTooSmall { index, need, have });
        }
    }
    state.next_batch(read, bufs, sizes, offset)
}

/// Where a split stands: what the read holds (parsed and validated once) and which segment comes next.
///
/// A plain `Copy` value with no borrow: keep it beside the read buffer and pass that buffer, unchanged, to
/// every call. A call that finds `read` of a different length than at creation fails with
/// [`OffloadError::InvalidArgument`]; the headers are not validated again, so a read of the same length
/// refilled in between is cut by the offsets and lengths validated at creation, whatever its bytes say.
///
/// ```
/// use tun_offload::{SplitState, VirtioNetHdr};
/// # let mut read = vec![0u8; VirtioNetHdr::LEN];
/// # read.extend_from_slice(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
/// let mut state = SplitState::new(&read)?;
/// let mut buf = [0u8; 1500];
/// while let Some(len) = state.next_segment(&read, &mut buf)? {
///     // buf[..len] is one IP packet
///     # assert_eq!(len, 20);
/// }
/// assert!(state.is_done());
/// # Ok::<(), tun_offload::OffloadError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitState {
    read_len: usize,
    /// Bytes of link header copied in front of each segment: a super-frame's Ethernet header on L2, 0
    /// otherwise (a whole frame is copied with its header).
    link_len: usize,
    plan: Plan,
    segments: usize,
    next: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// One packet copied through; `Some((start, field))` finishes a partial checksum summed from `start`
    /// and stored at `field` (both offsets in the IP packet).
    Whole { csum: Option<(usize, usize)> },
    /// A super-packet cut into segments.
    Segments(Segments),
}

/// Everything a segment's headers need, derived once from the super-packet: where its headers are (as
/// validated, so that writing a segment reads them by name without validating them again), how its payload
/// is cut, and the sums its checksums start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segments {
    version: IpVersion,
    /// The IP header's own length (IPv6: the fixed header, without extension headers).
    ip_header_len: usize,
    transport: Transport,
    /// Offset of the transport header (the IP header length, extension headers included).
    l4_start: usize,
    /// IP plus transport header length: `l4_start` plus the transport header's length.
    header_len: usize,
    /// Payload bytes after the headers, all segments together.
    payload_len: usize,
    gso_size: usize,
    /// How many segments the payload is cut into (at least one, for a packet without payload).
    count: usize,
    /// Clear CWR on every segment but the first (`GSO_ECN`).
    ecn: bool,
    first_ident: u16,
    first_seq: u32,
    tcp_flags: u8,
    /// Pseudo-header sum of the addresses and protocol; each segment adds its own length.
    addr_sum: u64,
    /// Sums of the IPv4 header and of the transport header without the fields that change per segment, so
    /// a segment's checksums take a few additions instead of passes over its headers.
    ip_fixed_sum: u64,
    l4_fixed_sum: u64,
}

impl SplitState {
    /// Parses and validates one read: the virtio-net header and the IP packet after it.
    ///
    /// # Errors
    /// [`OffloadError::TooShort`] for a read without a header or without a packet;
    /// [`OffloadError::UnsupportedGsoType`] for UFO, unknown types, or the ECN bit on a non-TCP type;
    /// [`OffloadError::Malformed`] for a super-packet whose IP version does not match its GSO type, whose
    /// lengths disagree with the read, whose `csum_start`/`csum_offset` do not point at its transport
    /// checksum, whose transport header is cut short, or whose `gso_size` is 0; and for a `GSO_NONE`
    /// packet whose checksum field lies beyond it.
    pub fn new(read: &[u8]) -> Result<Self, OffloadError> {
        Self::with_layer(read, Layer::L3)
    }

    /// Parses and validates one read of a device of `layer`. On [`Layer::L2`] the read holds an Ethernet
    /// frame: `csum_start` counts from its start, a frame without GSO passes through whole (ARP and any other
    /// EtherType included, its checksum finished when asked), and a super-frame is split into frames that
    /// each carry its Ethernet header.
    ///
    /// # Errors
    /// As [`new`](Self::new), and on L2 [`OffloadError::TooShort`] for a frame shorter than an Ethernet header
    /// or a VLAN tag without an EtherType after it; [`OffloadError::Malformed`] for a checksum or super-frame
    /// whose `csum_start` points into the Ethernet header, and for a super-frame that is not IP or whose
    /// EtherType disagrees with its IP version.
    pub fn with_layer(read: &[u8], layer: Layer) -> Result<Self, OffloadError> {
        let mut hdr = VirtioNetHdr::decode(read)?;
        let frame = read.get(VirtioNetHdr::LEN..).unwrap_or_default();
        if layer == Layer::L2 {
            if frame.len() < ETHERNET_HEADER_LEN {
                return Err(OffloadError::TooShort {
                    what: "Ethernet frame after the virtio-net header",
                    need: ETHERNET_HEADER_LEN,
                    have: frame.len(),
                });
            }
            if hdr.needs_csum() && usize::from(hdr.csum_start) < ETHERNET_HEADER_LEN {
                return Err(OffloadError::Malformed(
                    "csum_start points into the Ethernet header",
                ));
            }
        }
        // A super-frame is split as the IP packet after its link header, which is copied in front of each
        // segment; the virtio-net header's offsets then count from the IP packet. A frame without GSO is
        // copied whole, whatever it carries.
        let link = if hdr.gso_kind() == GSO_NONE {
            LinkHeader::parse(Layer::L3, frame)?
        } else {
            LinkHeader::parse(layer, frame)?
        };
        hdr.csum_start =
            hdr.csum_start
                .checked_sub(link.len as u16)
                .ok_or(OffloadError::Malformed(
                    "csum_start points into the Ethernet header",
                ))?;
        let Some(packet) = frame.get(link.len..).filter(|packet| !packet.is_empty()) else {
            return Err(OffloadError::TooShort {
                what: "IP packet after the virtio-net header",
                need: 1,
                have: 0,
            });
        };
        // The ECN bit only qualifies TCP types; the IP version comes from the type for TCP and from the
        // packet for USO.
        let ecn = hdr.gso_type & GSO_ECN != 0;
        let layout = match (hdr.gso_kind(), ecn) {
            (GSO_NONE, false) => None,
            (GSO_TCPV4, _) => Some((Some(IpVersion::V4), Transport::Tcp)),
            (GSO_TCPV6, _) => Some((Some(IpVersion::V6), Transport::Tcp)),
            (GSO_UDP_L4, false) => Some((None, Transport::Udp)),
            _ => return Err(OffloadError::UnsupportedGsoType(hdr.gso_type)),
        };
        let plan = match layout {
            None => Plan::Whole {
                csum: whole_packet_csum(&hdr, packet.len())?,
            },
            Some((version, transport)) => {
                let segments = Segments::new(&hdr, packet, version, transport)?;
                link.check_version(segments.version)?;
                Plan::Segments(segments)
            }
        };
        let segments = match plan {
            Plan::Whole { .. } => 1,
            Plan::Segments(s) => s.count,
        };
        Ok(Self {
            read_len: read.len(),
            link_len: link.len,
            plan,
            segments,
            next: 0,
        })
    }

    /// Total number of segments the read splits into (1 for a plain packet).
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Segments not yet handed out.
    pub fn remaining(&self) -> usize {
        self.segments - self.next
    }

    /// True when every segment has been handed out.
    pub fn is_done(&self) -> bool {
        self.next >= self.segments
    }

    /// Length of the next segment, or `None` when done: the buffer size the next call needs (plus the
    /// caller's offset).
    pub fn next_len(&self) -> Option<usize> {
        (!self.is_done()).then(|| self.segment_len(self.next))
    }

    /// Writes as many of the remaining segments as fit into `bufs[i][offset..]`, storing each length in
    /// `sizes[i]`, and returns how many it wrote. The rest stay for the next call.
    ///
    /// It stops at the first buffer too small for its segment: if that is the first buffer, the result is
    /// [`OffloadError::BufferTooSmall`] and the state is unchanged (retry with a larger buffer); otherwise
    /// the segments written so far are returned. Returns `Ok(0)` once done.
    ///
    /// # Errors
    /// [`OffloadError::InvalidArgument`] when `read` is not the read the state was created from (a
    /// different length) or when segments remain but `bufs` or `sizes` is empty;
    /// [`OffloadError::BufferTooSmall`] as above.
    pub fn next_batch<B: AsMut<[u8]>>(
        &mut self,
        read: &[u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<usize, OffloadError> {
        let packet = self.packet(read)?;
        if self.is_done() {
            return Ok(0);
        }
        if bufs.is_empty() || sizes.is_empty() {
            return Err(OffloadError::InvalidArgument("no buffers to split into"));
        }
        let mut written = 0;
        for (buf, size) in bufs.iter_mut().zip(sizes.iter_mut()) {
            if self.is_done() {
                break;
            }
            let buf = buf.as_mut();
            let have = buf.len();
            let result = match buf.get_mut(offset..) {
                Some(out) => self.write_next(packet, out),
                None => Err(OffloadError::BufferTooSmall {
                    index: 0,
                    need: 0,
                    have,
                }),
            };
            match result {
                Ok(len) => {
                    *size = len;
                    written += 1;
                }
                Err(OffloadError::BufferTooSmall { .. }) if written > 0 => break,
                Err(OffloadError::BufferTooSmall { .. }) => {
                    let need = offset.saturating_add(self.segment_len(self.next));
                    return Err(OffloadError::BufferTooSmall {
                        index: 0,
                        need,
                        have,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Writes the next segment to the start of `out` and returns its length, or `None` when done.
    ///
    /// # Errors
    /// [`OffloadError::BufferTooSmall`] (index 0) when `out` cannot hold the segment; the state is unchanged.
    /// [`OffloadError::InvalidArgument`] when `read` is not the read the state was created from.
    pub fn next_segment(
        &mut self,
        read: &[u8],
        out: &mut [u8],
    ) -> Result<Option<usize>, OffloadError> {
        let packet = self.packet(read)?;
        if self.is_done() {
            return Ok(None);
        }
        self.write_next(packet, out).map(Some)
    }

    /// The link header (empty but for an L2 super-frame) and the IP packet of `read`, after checking it is
    /// the read this state describes: of the length the state was made from, so its packet has the length
    /// the state's offsets and counts describe.
    fn packet<'r>(&self, read: &'r [u8]) -> Result<(&'r [u8], &'r [u8]), OffloadError> {
        match read
            .get(VirtioNetHdr::LEN..)
            .and_then(|frame| frame.split_at_checked(self.link_len))
        {
            Some(parts) if read.len() == self.read_len => Ok(parts),
            _ => Err(OffloadError::InvalidArgument(
                "read buffer differs from the one the split started with",
            )),
        }
    }

    /// Length of segment `index` (an IP packet, or a frame with its link header).
    fn segment_len(&self, index: usize) -> usize {
        match self.plan {
            Plan::Whole { .. } => self.read_len.saturating_sub(VirtioNetHdr::LEN),
            Plan::Segments(s) => self.link_len + s.segment_len(index),
        }
    }

    fn write_next(
        &mut self,
        (link, packet): (&[u8], &[u8]),
        out: &mut [u8],
    ) -> Result<usize, OffloadError> {
        let need = self.segment_len(self.next);
        let have = out.len();
        let Some((link_out, out)) = out
            .get_mut(..need)
            .and_then(|out| out.split_at_mut_checked(link.len()))
        else {
            return Err(OffloadError::BufferTooSmall {
                index: 0,
                need,
                have,
            });
        };
        link_out.copy_from_slice(link);
        let written = link.len()
            + match self.plan {
                Plan::Whole { csum } => {
                    let need = packet.len();
                    let have = out.len();
                    let Some(out) = out.get_mut(..need) else {
                        return Err(OffloadError::BufferTooSmall {
                            index: 0,
                            need,
                            have,
                        });
                    };
                    match csum {
                        None => out.copy_from_slice(packet),
                        Some((start, field)) => copy_finishing_checksum(packet, out, start, field),
                    }
                    need
                }
                Plan::Segments(s) => s.write(packet, self.next, out)?,
            };
        self.next += 1;
        Ok(written)
    }
}

/// For `GSO_NONE`: where to finish the checksum, after checking the field lies within the packet.
fn whole_packet_csum(
    hdr: &VirtioNetHdr,
    packet_len: usize,
) -> Result<Option<(usize, usize)>, OffloadError> {
    if !hdr.needs_csum() {
        return Ok(None);
    }
    let start = usize::from(hdr.csum_start);
    let field = start + usize::from(hdr.csum_offset);
    if field + 2 > packet_len {
        return Err(OffloadError::Malformed(
            "csum_start + csum_offset + 2 beyond the packet",
        ));
    }
    Ok(Some((start, field)))
}

/// Copies `packet` to `out` (of equal length) and finishes its CHECKSUM_PARTIAL checksum: the field holds
/// the pseudo-header seed, so the sum from `start` to the end (field included), taken while copying,
/// inverted and stored in the field completes it.
fn copy_finishing_checksum(packet: &[u8], out: &mut [u8], start: usize, field: usize) {
    debug_assert_eq!(
        out.len(),
        packet.len(),
        "write_next sized out to the packet"
    );
    let at = start.min(out.len()).min(packet.len());
    let (head, tail) = out.split_at_mut(at);
    let (packet_head, packet_tail) = packet.split_at(at);
    head.copy_from_slice(packet_head);
    let sum = checksum::copy_and_sum(tail, packet_tail, 0);
    // A computed zero is stored as all ones, as the kernel does (CSUM_MANGLED_0): to UDP zero means "no
    // checksum", which IPv6 forbids; to TCP the two are the same.
    let csum = match !checksum::fold(sum) {
        0 => 0xffff,
        c => c,
    };
    crate::wire::write_u16(out, field, csum);
}

impl Segments {
    /// Validates a super-packet against its virtio header; `version` is the one the GSO type demands.
    fn new(
        hdr: &VirtioNetHdr,
        packet: &[u8],
        version: Option<IpVersion>,
        transport: Transport,
    ) -> Result<Self, OffloadError> {
        if hdr.gso_size == 0 {
            return Err(OffloadError::Malformed("gso_size is 0"));
        }
        let ip = IpPacket::new_checked(packet)?;
        if version.is_some_and(|v| v != ip.version()) {
            return Err(OffloadError::Malformed(
                "IP version does not match the GSO type",
            ));
        }
        if ip.total_len() != packet.len() {
            return Err(OffloadError::Malformed(
                "IP length field disagrees with the packet length",
            ));
        }
        if ip.is_fragment() {
            return Err(OffloadError::Malformed("super-packet is a fragment"));
        }
        let (l4_start, protocol) = ip.transport()?;
        if protocol != transport.protocol() {
            return Err(OffloadError::Malformed(
                "transport protocol does not match the GSO type",
            ));
        }
        if usize::from(hdr.csum_start) != l4_start {
            return Err(OffloadError::Malformed(
                "csum_start is not the transport header offset",
            ));
        }
        if usize::from(hdr.csum_offset) != transport.checksum_offset() {
            return Err(OffloadError::Malformed(
                "csum_offset is not the transport checksum field",
            ));
        }
        let l4 = packet.get(l4_start..).ok_or(OffloadError::TooShort {
            what: "transport header",
            need: l4_start,
            have: packet.len(),
        })?;
        let (l4_header_len, first_seq, tcp_flags, l4_fixed_sum) = match transport {
            Transport::Tcp => {
                let tcp = TcpHeader::new_checked(l4)?;
                let fixed = tcp.sum_without_seq_flags_and_checksum()
                    + (u64::from(tcp.data_offset_byte()) << 8);
                (tcp.header_len(), tcp.seq(), tcp.flags(), fixed)
            }
            Transport::Udp => {
                let udp = UdpHeader::new_checked(l4)?;
                if usize::from(udp.length()) != l4.len() {
                    return Err(OffloadError::Malformed(
                        "UDP length disagrees with the packet length",
                    ));
                }
                (
                    UdpHeader::<&[u8]>::LEN,
                    0,
                    0,
                    checksum::sum(&udp.ports(), 0),
                )
            }
        };
        // The transport views checked that their header lies within `l4`.
        let payload_len = l4.len().saturating_sub(l4_header_len);
        let gso_size = usize::from(hdr.gso_size);
        let addr_sum = checksum::add(
            checksum::sum(ip.addrs(), 0),
            u64::from(transport.protocol()),
        );
        Ok(Self {
            version: ip.version(),
            ip_header_len: ip.header_len(),
            transport,
            l4_start,
            header_len: l4_start + l4_header_len,
            payload_len,
            gso_size,
            count: payload_len.div_ceil(gso_size).max(1),
            ecn: hdr.gso_type & GSO_ECN != 0,
            first_ident: ip.ident(),
            first_seq,
            tcp_flags,
            addr_sum,
            ip_fixed_sum: ip.sum_without_length_ident_and_checksum(),
            l4_fixed_sum,
        })
    }

    /// The payload bytes of segment `index`, as offsets into the payload after the headers.
    fn payload_range(&self, index: usize) -> std::ops::Range<usize> {
        let start = index.saturating_mul(self.gso_size).min(self.payload_len);
        start..(start + self.gso_size).min(self.payload_len)
    }

    /// Length of segment `index` (an IP packet).
    fn segment_len(&self, index: usize) -> usize {
        self.header_len + self.payload_range(index).len()
    }

    /// Writes segment `index` to the start of `out` and returns its length.
    ///
    /// The headers are the super-packet's as [`new`](Self::new) validated them, so they are rewritten
    /// through views built from the offsets it found. A read of the right length whose contents changed
    /// since then gets those offsets too: its segments have the lengths and counts the state describes,
    /// whatever the bytes say.
    fn write(&self, packet: &[u8], index: usize, out: &mut [u8]) -> Result<usize, OffloadError> {
        // SplitState::packet checked the read's length, so the headers and every payload range lie within.
        let (packet_headers, payload) = packet
            .split_at_checked(self.header_len)
            .and_then(|(headers, payloads)| {
                Some((headers, payloads.get(self.payload_range(index))?))
            })
            .ok_or(OffloadError::InvalidArgument(
                "read buffer differs from the one the split started with",
            ))?;
        let seg_len = self.header_len + payload.len();
        let have = out.len();
        let Some(out) = out.get_mut(..seg_len) else {
            return Err(OffloadError::BufferTooSmall {
                index: 0,
                need: seg_len,
                have,
            });
        };
        // `out` is `header_len` plus the payload's length, and `l4_start` lies within `header_len`.
        let (headers, payload_out) = out.split_at_mut(self.header_len);
        headers.copy_from_slice(packet_headers);
        // Each payload byte is read once: copied and summed in the same pass.
        let payload_sum = checksum::copy_and_sum(payload_out, payload, 0);

        let l4_len = seg_len - self.l4_start;
        let (ip_header, l4_header) = headers.split_at_mut(self.l4_start);
        let mut ip = IpPacket::new_unchecked(ip_header, self.version, self.ip_header_len);
        ip.set_total_len(seg_len);
        // IPv4 IDs count up per segment, as the kernel's own segmentation does.
        ip.set_ident(self.first_ident.wrapping_add(index as u16));
        ip.fill_header_checksum_from(self.ip_fixed_sum);
        // The fields set here, summed as the checksum sees them, on top of the rest of the header.
        let variable = match self.transport {
            Transport::Tcp => {
                let seq = self.first_seq.wrapping_add((index * self.gso_size) as u32);
                let mut flags = self.tcp_flags;
                if index + 1 < self.count {
                    flags &= !(tcp_flags::FIN | tcp_flags::PSH);
                }
                if self.ecn && index > 0 {
                    flags &= !tcp_flags::CWR;
                }
                let mut tcp =
                    TcpHeader::new_unchecked(&mut *l4_header, self.header_len - self.l4_start);
                tcp.set_seq(seq);
                tcp.set_flags(flags);
                u64::from(seq >> 16) + u64::from(seq & 0xffff) + u64::from(flags)
            }
            Transport::Udp => {
                UdpHeader::new_unchecked(&mut *l4_header).set_length(l4_len as u16);
                l4_len as u64
            }
        };
        // Pseudo-header (addresses, protocol, length), header and payload.
        let acc = self.addr_sum + (l4_len as u64) + self.l4_fixed_sum + variable;
        let mut csum = !checksum::fold(checksum::add(acc, payload_sum));
        if self.transport == Transport::Udp && csum == 0 {
            // A computed zero is sent as all ones: zero means "no checksum" (RFC 768).
            csum = 0xffff;
        }
        crate::wire::write_u16(l4_header, self.transport.checksum_offset(), csum);
        Ok(seg_len)
    }
}

/// A split of one borrowed read: [`SplitState`] with the read kept alongside.
///
/// ```
/// use tun_offload::{Segmenter, VirtioNetHdr};
/// # let mut read = vec![0u8; VirtioNetHdr::LEN];
/// # read.extend_from_slice(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
/// let mut segmenter = Segmenter::new(&read)?;
/// let mut bufs = vec![vec![0u8; 1600]; 8];
/// let mut sizes = [0usize; 8];
/// while !segmenter.is_done() {
///     let n = segmenter.next_batch(&mut bufs, &mut sizes, 0)?;
///     // hand bufs[..n] on
///     # assert_eq!(n, 1);
/// }
/// # Ok::<(), tun_offload::OffloadError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Segmenter<'a> {
    read: &'a [u8],
    state: SplitState,
}

impl<'a> Segmenter<'a> {
    /// Parses and validates `read` (see [`SplitState::new`]).
    pub fn new(read: &'a [u8]) -> Result<Self, OffloadError> {
        Ok(Self {
            read,
            state: SplitState::new(read)?,
        })
    }

    /// See [`SplitState::next_batch`].
    pub fn next_batch<B: AsMut<[u8]>>(
        &mut self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<usize, OffloadError> {
        self.state.next_batch(self.read, bufs, sizes, offset)
    }

    /// See [`SplitState::next_segment`].
    pub fn next_segment(&mut self, out: &mut [u8]) -> Result<Option<usize>, OffloadError> {
        self.state.next_segment(self.read, out)
    }

    /// True when every segment has been handed out.
    pub fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// Segments not yet handed out.
    pub fn remaining(&self) -> usize {
        self.state.remaining()
    }

    /// The split's state, to keep without the borrow.
    pub fn state(&self) -> SplitState {
        self.state
    }
}

#[cfg(test)]
mod tests;
