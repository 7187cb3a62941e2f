//! Packet builders: IPv4/IPv6 TCP and UDP packets with correct checksums (written by etherparse), and
//! super-packets exactly as the kernel hands them to an `IFF_VNET_HDR` TUN reader.

use etherparse::{
    IpDscp, IpEcn, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader, UdpHeader,
};
use tun_offload::virtio::{FLAG_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use tun_offload::{MAX_PACKET, VirtioNetHdr};

use super::reference;

/// Everything that identifies a flow and stays the same on every packet of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    pub(crate) v6: bool,
    pub(crate) udp: bool,
    /// IPv4 uses the first four bytes.
    pub(crate) src: [u8; 16],
    /// IPv4 uses the first four bytes.
    pub(crate) dst: [u8; 16],
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    /// IPv4 TOS or IPv6 traffic class (DSCP and ECN).
    pub(crate) tos: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub(crate) ttl: u8,
    /// IPv4 don't-fragment bit.
    pub(crate) df: bool,
    /// IPv6 flow label (20 bits).
    pub(crate) flow_label: u32,
    /// TCP acknowledgment number.
    pub(crate) ack: u32,
    pub(crate) window: u16,
    /// TCP options, a multiple of 4 bytes, at most 40.
    pub(crate) options: Vec<u8>,
}

impl Flow {
    /// A plain TCP or UDP flow between two fixed hosts.
    pub(crate) fn simple(v6: bool, udp: bool) -> Self {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if v6 {
            src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            dst = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        } else {
            src[..4].copy_from_slice(&[10, 0, 0, 1]);
            dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        }
        Self {
            v6,
            udp,
            src,
            dst,
            sport: 40000,
            dport: 5201,
            tos: 0,
            ttl: 64,
            df: true,
            flow_label: 0,
            ack: 1,
            window: 502,
            options: timestamps(1, 2),
        }
    }

    /// Bytes of IP header (no options or extension headers are ever built).
    pub(crate) fn ip_header_len(&self) -> usize {
        if self.v6 { 40 } else { 20 }
    }

    /// Bytes of L4 header.
    pub(crate) fn l4_header_len(&self) -> usize {
        if self.udp { 8 } else { 20 + self.options.len() }
    }

    /// IP plus L4 header bytes.
    pub(crate) fn header_len(&self) -> usize {
        self.ip_header_len() + self.l4_header_len()
    }

    /// The largest payload of a packet of this flow no longer than 65535 bytes in all: the kernel's
    /// super-packets never are (gso_max_size, BIG TCP refused on TUN), and coalescing stops there too.
    pub(crate) fn max_payload(&self) -> usize {
        MAX_PACKET - self.header_len()
    }

    /// The GSO type the kernel gives a super-packet of this flow.
    pub(crate) fn gso_type(&self) -> u8 {
        match (self.udp, self.v6) {
            (true, _) => GSO_UDP_L4,
            (false, false) => GSO_TCPV4,
            (false, true) => GSO_TCPV6,
        }
    }

    /// Offset of the L4 checksum field from the start of the L4 header.
    pub(crate) fn csum_offset(&self) -> usize {
        if self.udp { 6 } else { 16 }
    }
}

/// A TCP timestamp option padded to 12 bytes (NOP, NOP, kind 8), as Linux sends on bulk flows.
pub(crate) fn timestamps(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o
}

/// TCP flag bits of one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) fin: bool,
    pub(crate) syn: bool,
    pub(crate) rst: bool,
    pub(crate) psh: bool,
    pub(crate) ack: bool,
    pub(crate) urg: bool,
    pub(crate) ece: bool,
    pub(crate) cwr: bool,
}

impl Flags {
    /// ACK alone: a data segment in the middle of a burst.
    pub(crate) const ACK: Self = Self {
        fin: false,
        syn: false,
        rst: false,
        psh: false,
        ack: true,
        urg: false,
        ece: false,
        cwr: false,
    };
    /// ACK|PSH: the last segment of a burst (and every super-packet).
    pub(crate) const ACK_PSH: Self = Self {
        psh: true,
        ..Self::ACK
    };

    /// The flags from the TCP header's flag byte (bits 0..8: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    pub(crate) fn from_bits(bits: u8) -> Self {
        Self {
            fin: bits & 0x01 != 0,
            syn: bits & 0x02 != 0,
            rst: bits & 0x04 != 0,
            psh: bits & 0x08 != 0,
            ack: bits & 0x10 != 0,
            urg: bits & 0x20 != 0,
            ece: bits & 0x40 != 0,
            cwr: bits & 0x80 != 0,
        }
    }
}

/// The fields that change from packet to packet of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seg {
    pub(crate) seq: u32,
    pub(crate) ip_id: u16,
    pub(crate) flags: Flags,
}

impl Seg {
    /// The first packet of a burst the kernel sends: sequence number and IPv4 ID 1, ACK|PSH (as every
    /// super-packet carries).
    pub(crate) const FIRST: Self = Self {
        seq: 1,
        ip_id: 1,
        flags: Flags::ACK_PSH,
    };
}

/// `count` in-order segments of `gso` payload bytes each of `flow`, starting at [`Seg::FIRST`], the last
/// with PSH: one burst as a device's write path sees it.
pub(crate) fn burst(flow: &Flow, count: usize, gso: u16, salt: u32) -> Vec<Vec<u8>> {
    let data = payload(count * usize::from(gso), salt);
    segments(flow, Seg::FIRST, &data, gso, false)
}

/// One IP packet of `flow` with correct IPv4 header and L4 checksums, written by etherparse.
///
/// Panics if the payload does not fit one IP packet: the generators never ask for that.
pub(crate) fn packet(flow: &Flow, seg: Seg, payload: &[u8]) -> Vec<u8> {
    build(flow, seg, payload, L4Checksum::Complete)
}

/// What [`build`] puts in the L4 checksum field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum L4Checksum {
    /// The complete checksum over pseudo-header, header and payload.
    Complete,
    /// Zero, for a caller that overwrites the field (summing a 64 KB payload only to overwrite the
    /// result was most of the cost of a fuzzed super-packet).
    Zero,
}

fn build(flow: &Flow, seg: Seg, payload: &[u8], l4_checksum: L4Checksum) -> Vec<u8> {
    let l4_len = flow.l4_header_len() + payload.len();
    let mut out = Vec::with_capacity(flow.ip_header_len() + l4_len);
    let proto = if flow.udp {
        IpNumber::UDP
    } else {
        IpNumber::TCP
    };
    let mut ip4 = None;
    let mut ip6 = None;
    if flow.v6 {
        let h = Ipv6Header {
            traffic_class: flow.tos,
            flow_label: Ipv6FlowLabel::try_new(flow.flow_label & 0xf_ffff).expect("20-bit label"),
            payload_length: u16::try_from(l4_len).expect("IPv6 payload fits"),
            next_header: proto,
            hop_limit: flow.ttl,
            source: flow.src,
            destination: flow.dst,
        };
        h.write(&mut out).expect("write to a Vec");
        ip6 = Some(h);
    } else {
        let mut h = Ipv4Header::new(
            u16::try_from(l4_len).expect("IPv4 payload fits"),
            flow.ttl,
            proto,
            flow.src[..4].try_into().expect("4 bytes"),
            flow.dst[..4].try_into().expect("4 bytes"),
        )
        .expect("IPv4 payload fits");
        h.dscp = IpDscp::try_new(flow.tos >> 2).expect("6 bits");
        h.ecn = IpEcn::try_new(flow.tos & 3).expect("2 bits");
        h.identification = seg.ip_id;
        h.dont_fragment = flow.df;
        h.header_checksum = h.calc_header_checksum();
        h.write(&mut out).expect("write to a Vec");
        ip4 = Some(h);
    }
    if flow.udp {
        let u = match (&ip4, &ip6, l4_checksum) {
            (_, _, L4Checksum::Zero) => {
                UdpHeader::without_ipv4_checksum(flow.sport, flow.dport, payload.len())
            }
            (Some(h), _, _) => UdpHeader::with_ipv4_checksum(flow.sport, flow.dport, h, payload),
            (_, Some(h), _) => UdpHeader::with_ipv6_checksum(flow.sport, flow.dport, h, payload),
            _ => unreachable!("one IP header is always built"),
        }
        .expect("UDP length fits");
        u.write(&mut out).expect("write to a Vec");
    } else {
        let mut t = TcpHeader::new(flow.sport, flow.dport, seg.seq, flow.window);
        t.acknowledgment_number = flow.ack;
        let f = seg.flags;
        (t.fin, t.syn, t.rst, t.psh, t.ack, t.urg, t.ece, t.cwr) =
            (f.fin, f.syn, f.rst, f.psh, f.ack, f.urg, f.ece, f.cwr);
        t.set_options_raw(&flow.options)
            .expect("options are a multiple of 4, at most 40 bytes");
        t.checksum = match (&ip4, &ip6, l4_checksum) {
            (_, _, L4Checksum::Zero) => 0,
            (Some(h), _, _) => t.calc_checksum_ipv4(h, payload).expect("TCP length fits"),
            (_, Some(h), _) => t.calc_checksum_ipv6(h, payload).expect("TCP length fits"),
            _ => unreachable!("one IP header is always built"),
        };
        t.write(&mut out).expect("write to a Vec");
    }
    out.extend_from_slice(payload);
    out
}

/// How the kernel fills `hdr_len`, which the splitter must not trust.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HdrLen {
    /// IP plus L4 header, as on the local output path.
    Exact,
    /// The whole first segment, as seen on the forward path.
    FirstSegment,
    /// Any value at all.
    Bogus(u16),
}

/// A super-packet of `flow` as one `read()` of an `IFF_VNET_HDR` device returns it: the virtio header
/// (NEEDS_CSUM, csum_start/offset, gso_type, gso_size), then one IP packet whose lengths cover the whole
/// payload, whose IPv4 header checksum is valid and whose L4 checksum field holds the folded, not
/// inverted, pseudo-header sum over the full L4 length.
pub(crate) fn super_packet(
    flow: &Flow,
    seg: Seg,
    payload: &[u8],
    gso_size: u16,
    hdr_len: HdrLen,
    ecn: bool,
) -> Vec<u8> {
    // The L4 checksum field is overwritten with the seed below.
    let ip = build(flow, seg, payload, L4Checksum::Zero);
    let iph = flow.ip_header_len();
    let hdr = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: flow.gso_type() | if ecn { GSO_ECN } else { 0 },
        hdr_len: match hdr_len {
            HdrLen::Exact => flow.header_len() as u16,
            HdrLen::FirstSegment => {
                (flow.header_len() + payload.len().min(usize::from(gso_size))) as u16
            }
            HdrLen::Bogus(v) => v,
        },
        gso_size,
        csum_start: iph as u16,
        csum_offset: flow.csum_offset() as u16,
    };
    let mut out = hdr.to_bytes().to_vec();
    out.extend_from_slice(&ip);
    let seed = seed_for(flow, ip.len() - iph);
    let at = VirtioNetHdr::LEN + iph + flow.csum_offset();
    out[at..at + 2].copy_from_slice(&seed.to_be_bytes());
    out
}

/// The CHECKSUM_PARTIAL seed of `flow` for an L4 length: the folded, not inverted, pseudo-header sum.
pub(crate) fn seed_for(flow: &Flow, l4_len: usize) -> u16 {
    let alen = if flow.v6 { 16 } else { 4 };
    let proto = if flow.udp { 17 } else { 6 };
    reference::fold(reference::pseudo_header(
        &flow.src[..alen],
        &flow.dst[..alen],
        proto,
        l4_len as u32,
    ))
}

/// The packets a correct segmentation of [`super_packet`]'s packet yields, built independently: payload
/// chunks of `gso_size`, sequence numbers advancing by the chunk, IPv4 IDs by one (wrapping), FIN and PSH
/// only on the last, CWR only on the first when `ecn`, full checksums.
pub(crate) fn segments(
    flow: &Flow,
    seg: Seg,
    payload: &[u8],
    gso_size: u16,
    ecn: bool,
) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(usize::from(gso_size)).collect()
    };
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut flags = seg.flags;
            if i != last {
                flags.fin = false;
                flags.psh = false;
            }
            if i != 0 && ecn {
                flags.cwr = false;
            }
            let s = Seg {
                seq: seg.seq.wrapping_add((i * usize::from(gso_size)) as u32),
                ip_id: seg.ip_id.wrapping_add(i as u16),
                flags,
            };
            packet(flow, s, chunk)
        })
        .collect()
}

/// How many packets [`segments`] makes of a `payload_len`-byte payload, and the length of the longest (the
/// first), without building them.
pub(crate) fn segments_shape(flow: &Flow, payload_len: usize, gso_size: u16) -> (usize, usize) {
    let gso = usize::from(gso_size);
    (
        payload_len.div_ceil(gso).max(1),
        flow.header_len() + payload_len.min(gso),
    )
}

/// Deterministic payload bytes, different for every `salt`; a longer payload of a salt begins with every
/// shorter one.
pub(crate) fn payload(len: usize, salt: u32) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}

/// An Ethernet header with `tags` VLAN tags (802.1ad outer, 802.1Q inner; more than two pass through as
/// not IP) whose EtherType announces the IP version `packet` starts with: IPv6 for a first nibble of 6,
/// IPv4 otherwise. Locally administered addresses, the same for every packet.
pub(crate) fn link_header(tags: usize, packet: &[u8]) -> Vec<u8> {
    let mut link = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
    for tag in 0..tags {
        let tpid: u16 = if tag + 1 < tags { 0x88a8 } else { 0x8100 };
        link.extend_from_slice(&tpid.to_be_bytes());
        link.extend_from_slice(&[0x00, 0x10 + tag as u8]);
    }
    let v6 = packet.first().is_some_and(|b| b >> 4 == 6);
    let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
    link.extend_from_slice(&ethertype.to_be_bytes());
    link
}

/// `read` (a virtio-net header and an IP packet, as a TUN device hands it over) as a TAP device hands the
/// same over, `link` in front of the packet: `csum_start` and `hdr_len` count from the frame's start.
/// `None` for a read without a header or a packet, or with offsets that would pass 65535.
pub(crate) fn framed_read(read: &[u8], link: &[u8]) -> Option<Vec<u8>> {
    let mut hdr = VirtioNetHdr::decode(read).ok()?;
    let packet = read.get(VirtioNetHdr::LEN..).filter(|p| !p.is_empty())?;
    let shift = u16::try_from(link.len()).ok()?;
    hdr.csum_start = hdr.csum_start.checked_add(shift)?;
    hdr.hdr_len = hdr.hdr_len.checked_add(shift)?;
    Some([&hdr.to_bytes()[..], link, packet].concat())
}

/// `wire` (a virtio-net header and an IP packet, as written to a TUN device) as the same is written to a TAP
/// device with `link` in front: a GSO header's `csum_start` and `hdr_len` count from the frame's start.
pub(crate) fn framed_wire(wire: &[u8], link: &[u8]) -> Vec<u8> {
    let mut hdr = VirtioNetHdr::decode(wire).expect("a written frame has its header");
    if hdr != VirtioNetHdr::default() {
        hdr.csum_start += link.len() as u16;
        hdr.hdr_len += link.len() as u16;
    }
    [&hdr.to_bytes()[..], link, &wire[VirtioNetHdr::LEN..]].concat()
}
