//! Running a batch through `handle_gro` and taking the result apart again.

use tun_offload::wire::MAX_LINK_HEADER_LEN;
use tun_offload::{
    FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, Layer, MAX_PACKET, OffloadError, VirtioNetHdr,
    gso_split, handle_gro_with_layer,
};

use super::oracle::parse_coalesced;

/// A write batch as a read leaves it: `offset` bytes of headroom, then the packet, then room to grow to a
/// full 64 KB packet; and the packets' sizes.
pub(crate) fn buffers(pkts: &[Vec<u8>], offset: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    buffers_with_room(pkts, offset, MAX_PACKET)
}

/// [`buffers`] of `room` bytes after the offset (or the packet's length, when longer).
fn buffers_with_room(pkts: &[Vec<u8>], offset: usize, room: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    let bufs = pkts
        .iter()
        .map(|p| {
            let mut b = vec![0u8; offset + p.len().max(room)];
            b[offset..offset + p.len()].copy_from_slice(p);
            b
        })
        .collect();
    (bufs, pkts.iter().map(Vec::len).collect())
}

/// What `handle_gro` plans to write: for each frame, the buffer that holds it and its bytes as written
/// (virtio header + packet).
pub(crate) fn coalesce(
    pkts: &[Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    udp_gro: bool,
) -> Result<Vec<(usize, Vec<u8>)>, OffloadError> {
    let options = GroOptions {
        tcp: true,
        udp: udp_gro,
    };
    coalesce_with(pkts, offset, table, options)
}

/// [`coalesce`] with TCP and UDP coalescing each on or off.
pub(crate) fn coalesce_with(
    pkts: &[Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
) -> Result<Vec<(usize, Vec<u8>)>, OffloadError> {
    coalesce_with_layer(pkts, offset, table, options, Layer::L3)
}

/// [`coalesce_with`] of packets of a device of `layer`: on L2, Ethernet frames, in buffers with room for a
/// full 64 KB IP packet after the longest link header.
pub(crate) fn coalesce_with_layer(
    pkts: &[Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
    layer: Layer,
) -> Result<Vec<(usize, Vec<u8>)>, OffloadError> {
    let room = match layer {
        Layer::L3 => MAX_PACKET,
        _ => MAX_PACKET + MAX_LINK_HEADER_LEN,
    };
    let (mut bufs, sizes) = buffers_with_room(pkts, offset, room);
    let mut plan = GroPlan::new();
    handle_gro_with_layer(&mut bufs, &sizes, offset, layer, table, options, &mut plan)?;
    // Planning never changes a packet: a frame left unwritten leaves its packets as they were.
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(
            &bufs[i][offset..offset + p.len()],
            &p[..],
            "packet {i} changed"
        );
    }
    // Every packet is carried by exactly one frame.
    for i in 0..pkts.len() {
        let frame = plan.frame_of(i).expect("every packet has a frame");
        assert!(plan.members(frame).any(|m| m == i));
    }
    let mut scratch = [0u8; FRAME_HEAD_MAX];
    plan.frames()
        .iter()
        .map(|frame| {
            let [head, rest] = frame.encode(&bufs[frame.buf], offset, &mut scratch)?;
            let mut wire = head.to_vec();
            wire.extend_from_slice(rest);
            Ok((frame.buf, wire))
        })
        .collect()
}

/// Takes one written packet (virtio header + IP packet) apart into the packets it stands for: a packet
/// with a zero header is itself; a coalesced one is checked by [`parse_coalesced`] and split with
/// `gso_split`, as the kernel would segment it on its way out.
pub(crate) fn unpack(wire: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let hdr = VirtioNetHdr::decode(wire).map_err(|e| e.to_string())?;
    if hdr == VirtioNetHdr::default() {
        return Ok(vec![wire[VirtioNetHdr::LEN..].to_vec()]);
    }
    if wire.len() - VirtioNetHdr::LEN > MAX_PACKET {
        return Err(format!(
            "coalesced packet of {} bytes",
            wire.len() - VirtioNetHdr::LEN
        ));
    }
    let (hdr, p) = parse_coalesced(wire)?;
    let payload = p.payload.len();
    let count = payload.div_ceil(usize::from(hdr.gso_size)).max(1);
    let mut bufs = vec![vec![0u8; usize::from(hdr.hdr_len) + usize::from(hdr.gso_size)]; count];
    let mut sizes = vec![0usize; count];
    let mut read = wire.to_vec();
    let n =
        gso_split(&mut read, &mut bufs, &mut sizes, 0).map_err(|e| format!("re-splitting: {e}"))?;
    if n != count {
        return Err(format!("re-split into {n} packets, expected {count}"));
    }
    Ok(bufs
        .into_iter()
        .zip(sizes)
        .map(|(mut b, s)| {
            b.truncate(s);
            b
        })
        .collect())
}

/// A packet's bytes with the fields coalescing may legitimately change zeroed: the IPv4 ID and header
/// checksum (a merged packet carries one ID; splitting numbers them anew).
pub(crate) fn canonical(pkt: &[u8]) -> Vec<u8> {
    let mut c = pkt.to_vec();
    if c.len() >= 20 && c[0] >> 4 == 4 {
        c[4..6].fill(0);
        c[10..12].fill(0);
    }
    c
}
