//! Packet builders: the workspace's one builder of IP packets (`tun_test_support::packets::flow`, re-exported
//! here), and on top of it what needs this crate's virtio-net header: super-packets exactly as the kernel
//! hands them to an `IFF_VNET_HDR` TUN reader, their expected segments, TAP framing.

use tun_offload::VirtioNetHdr;
use tun_offload::virtio::{FLAG_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
// Each includer of this module (unit tests, test binaries, benches, fuzz targets) uses a different part.
#[allow(unused_imports)]
pub(crate) use tun_test_support::packets::flow::{
    Flags, Flow, Seg, packet, packet_without_l4_checksum, payload, timestamps,
};

use super::reference;

/// The GSO type the kernel gives a super-packet of `flow`.
fn gso_type(flow: &Flow) -> u8 {
    match (flow.udp, flow.v6) {
        (true, _) => GSO_UDP_L4,
        (false, false) => GSO_TCPV4,
        (false, true) => GSO_TCPV6,
    }
}

/// `count` in-order segments of `gso` payload bytes each of `flow`, starting at [`Seg::FIRST`], the last
/// with PSH: one burst as a device's write path sees it.
pub(crate) fn burst(flow: &Flow, count: usize, gso: u16, salt: u32) -> Vec<Vec<u8>> {
    let data = payload(count * usize::from(gso), salt);
    segments(flow, Seg::FIRST, &data, gso, false)
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
    let ip = packet_without_l4_checksum(flow, seg, payload);
    let iph = flow.ip_header_len();
    let hdr = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: gso_type(flow) | if ecn { GSO_ECN } else { 0 },
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
