//! Judging output packets: parse with etherparse, check every length and checksum with the independent
//! reference sum, and read the fields the properties compare.

use etherparse::{NetHeaders, PacketHeaders, PayloadSlice, TransportHeader};
use tun_offload::VirtioNetHdr;
use tun_offload::virtio::{FLAG_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};

use super::packets::Flags;
use super::reference;

/// The fields of a packet that passed [`parse_checked`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) v6: bool,
    pub(crate) udp: bool,
    pub(crate) src: Vec<u8>,
    pub(crate) dst: Vec<u8>,
    pub(crate) tos: u8,
    pub(crate) ttl: u8,
    pub(crate) df: bool,
    pub(crate) ip_id: u16,
    pub(crate) flow_label: u32,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: Flags,
    pub(crate) options: Vec<u8>,
    pub(crate) ip_header_len: usize,
    pub(crate) l4_header_len: usize,
    pub(crate) payload: Vec<u8>,
}

/// True when an IPv4 or IPv6 packet names TCP right after its fixed header: such a packet is never one
/// that [`parse_checked`] finds to be UDP, which a caller can tell without parsing.
pub(crate) fn names_tcp(pkt: &[u8]) -> bool {
    let protocol_at = match pkt.first().map(|b| b >> 4) {
        Some(4) => 9,
        Some(6) => 6,
        _ => return false,
    };
    pkt.get(protocol_at) == Some(&6)
}

/// Parses one IP packet carrying TCP or UDP and checks that it is fit to hand to a network stack: lengths
/// agree with the buffer, the IPv4 header checksum is right, the L4 checksum is complete and valid (UDP:
/// not the "no checksum" zero).
pub(crate) fn parse_checked(pkt: &[u8]) -> Result<Parsed, String> {
    parse(pkt, true)
}

/// [`parse_checked`] without copying the payload out (`payload` is left empty): every check is made.
pub(crate) fn check_headers_and_sums(pkt: &[u8]) -> Result<Parsed, String> {
    parse(pkt, false)
}

fn parse(pkt: &[u8], copy_payload: bool) -> Result<Parsed, String> {
    let h = PacketHeaders::from_ip_slice(pkt)
        .map_err(|e| format!("etherparse rejects the packet: {e}"))?;
    let (v6, src, dst, tos, ttl, df, ip_id, flow_label, ip_header_len, proto) = match &h.net {
        Some(NetHeaders::Ipv4(ip, ext)) => {
            if !ext.is_empty() {
                return Err("IPv4 extension headers".into());
            }
            if usize::from(ip.total_len) != pkt.len() {
                return Err(format!(
                    "IPv4 total length {} but packet is {} bytes",
                    ip.total_len,
                    pkt.len()
                ));
            }
            // Over the raw header bytes: etherparse's own header drops the reserved flag bit.
            let header_sum = reference::fold(reference::sum(&pkt[..ip.header_len()]));
            if header_sum != 0xffff {
                return Err(format!(
                    "IPv4 header checksum {:#06x} does not verify (sum {header_sum:#06x})",
                    ip.header_checksum
                ));
            }
            if ip.more_fragments || ip.fragment_offset.value() != 0 {
                return Err("IPv4 fragment".into());
            }
            let tos = ip.dscp.value() << 2 | ip.ecn.value();
            let len = ip.header_len();
            (
                false,
                ip.source.to_vec(),
                ip.destination.to_vec(),
                tos,
                ip.time_to_live,
                ip.dont_fragment,
                ip.identification,
                0,
                len,
                ip.protocol.0,
            )
        }
        Some(NetHeaders::Ipv6(ip, ext)) => {
            // Extension headers (hop-by-hop, routing, destination options) may precede the transport
            // header; the pseudo-header names the transport protocol at their end.
            let proto = ext
                .next_header(ip.next_header)
                .map_err(|e| format!("IPv6 extension headers: {e}"))?;
            if usize::from(ip.payload_length) + 40 != pkt.len() {
                return Err(format!(
                    "IPv6 payload length {} but packet is {} bytes",
                    ip.payload_length,
                    pkt.len()
                ));
            }
            (
                true,
                ip.source.to_vec(),
                ip.destination.to_vec(),
                ip.traffic_class,
                ip.hop_limit,
                false,
                0,
                ip.flow_label.value(),
                40 + ext.header_len(),
                proto.0,
            )
        }
        _ => return Err("not an IP packet".into()),
    };
    let l4 = &pkt[ip_header_len..];
    if !reference::l4_valid(&src, &dst, proto, l4) {
        return Err(format!(
            "L4 checksum of a {}-byte segment does not verify",
            l4.len()
        ));
    }
    let mut p = Parsed {
        v6,
        udp: false,
        src,
        dst,
        tos,
        ttl,
        df,
        ip_id,
        flow_label,
        sport: 0,
        dport: 0,
        seq: 0,
        ack: 0,
        flags: Flags::default(),
        options: Vec::new(),
        ip_header_len,
        l4_header_len: 0,
        payload: Vec::new(),
    };
    match (&h.transport, &h.payload) {
        (Some(TransportHeader::Tcp(t)), PayloadSlice::Tcp(data)) => {
            p.sport = t.source_port;
            p.dport = t.destination_port;
            p.seq = t.sequence_number;
            p.ack = t.acknowledgment_number;
            p.flags = Flags {
                fin: t.fin,
                syn: t.syn,
                rst: t.rst,
                psh: t.psh,
                ack: t.ack,
                urg: t.urg,
                ece: t.ece,
                cwr: t.cwr,
            };
            p.options = t.options.as_slice().to_vec();
            p.l4_header_len = t.header_len();
            if copy_payload {
                p.payload = data.to_vec();
            }
        }
        (Some(TransportHeader::Udp(u)), PayloadSlice::Udp(data)) => {
            if usize::from(u.length) != l4.len() {
                return Err(format!(
                    "UDP length {} but segment is {} bytes",
                    u.length,
                    l4.len()
                ));
            }
            if u.checksum == 0 {
                return Err("UDP checksum left at zero (\"no checksum\")".into());
            }
            p.udp = true;
            p.sport = u.source_port;
            p.dport = u.destination_port;
            p.l4_header_len = 8;
            if copy_payload {
                p.payload = data.to_vec();
            }
        }
        _ => return Err("neither TCP nor UDP".into()),
    }
    Ok(p)
}

/// Checks a coalesced packet as the device would receive it (`wire` = virtio header + IP packet): the
/// header says NEEDS_CSUM with the right GSO type, `hdr_len`, `csum_start` and `csum_offset`; the L4
/// checksum field holds exactly the pseudo-header seed; and finishing that seed over the L4 bytes gives a
/// packet that [`parse_checked`] accepts. Returns the header and the finished packet's fields.
pub(crate) fn parse_coalesced(wire: &[u8]) -> Result<(VirtioNetHdr, Parsed), String> {
    let hdr = VirtioNetHdr::decode(wire).map_err(|e| e.to_string())?;
    let mut pkt = wire[VirtioNetHdr::LEN..].to_vec();
    if hdr.flags != FLAG_NEEDS_CSUM {
        return Err(format!(
            "coalesced packet has flags {:#x}, want NEEDS_CSUM",
            hdr.flags
        ));
    }
    let first = *pkt.first().ok_or("empty packet")?;
    let v6 = first >> 4 == 6;
    let iph = if v6 { 40 } else { usize::from(first & 0xf) * 4 };
    let proto = *pkt.get(if v6 { 6 } else { 9 }).ok_or("short IP header")?;
    let (want_type, csum_offset) = match (proto, v6) {
        (6, false) => (GSO_TCPV4, 16),
        (6, true) => (GSO_TCPV6, 16),
        (17, _) => (GSO_UDP_L4, 6),
        _ => return Err(format!("coalesced packet carries protocol {proto}")),
    };
    if hdr.gso_type != want_type {
        return Err(format!("gso_type {:#x}, want {want_type:#x}", hdr.gso_type));
    }
    if usize::from(hdr.csum_start) != iph || usize::from(hdr.csum_offset) != csum_offset {
        return Err(format!(
            "csum_start/offset {}/{}, want {iph}/{csum_offset}",
            hdr.csum_start, hdr.csum_offset
        ));
    }
    let at = iph + csum_offset;
    if pkt.len() < at + 2 {
        return Err("packet shorter than its checksum field".into());
    }
    let (src, dst) = if v6 {
        (&pkt[8..24], &pkt[24..40])
    } else {
        (&pkt[12..16], &pkt[16..20])
    };
    let l4_len = pkt.len() - iph;
    let want_seed = reference::fold(reference::pseudo_header(src, dst, proto, l4_len as u32));
    let seed = u16::from_be_bytes([pkt[at], pkt[at + 1]]);
    if seed != want_seed {
        return Err(format!(
            "checksum seed {seed:#06x}, want pseudo-header sum {want_seed:#06x}"
        ));
    }
    // Finish as the kernel would: sum from csum_start to the end (seed included), store the inverse, and
    // for UDP send a computed zero as all ones (zero means "no checksum").
    let mut finished = !reference::fold(reference::sum(&pkt[iph..]));
    if proto == 17 && finished == 0 {
        finished = 0xffff;
    }
    pkt[at..at + 2].copy_from_slice(&finished.to_be_bytes());
    let p = parse_checked(&pkt)?;
    if usize::from(hdr.hdr_len) != p.ip_header_len + p.l4_header_len {
        return Err(format!(
            "hdr_len {}, want {}",
            hdr.hdr_len,
            p.ip_header_len + p.l4_header_len
        ));
    }
    if hdr.gso_size == 0 {
        return Err("gso_size 0".into());
    }
    Ok((hdr, p))
}
