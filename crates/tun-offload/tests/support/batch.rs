//! Running a batch through `handle_gro` and taking the result apart again.

use tun_offload::{
    GroOptions, GroTable, MAX_PACKET, OffloadError, VirtioNetHdr, gso_split, handle_gro,
    handle_gro_with, plan_gro,
};

use super::oracle::parse_coalesced;

/// Buffers for a write batch: `offset` bytes of headroom, then the packet, with room to grow to a full
/// 64 KB packet.
pub(crate) fn buffers(pkts: &[Vec<u8>], offset: usize) -> Vec<Vec<u8>> {
    pkts.iter()
        .map(|p| {
            let mut b = Vec::with_capacity(offset + MAX_PACKET);
            b.resize(offset, 0);
            b.extend_from_slice(p);
            b
        })
        .collect()
}

/// What `handle_gro` asked to write: for each index in `to_write`, the buffer index and the bytes from
/// `offset - 10` on (virtio header + packet).
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

/// [`coalesce`] through `handle_gro_with`, TCP and UDP coalescing each on or off.
pub(crate) fn coalesce_with(
    pkts: &[Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    options: GroOptions,
) -> Result<Vec<(usize, Vec<u8>)>, OffloadError> {
    let mut bufs = buffers(pkts, offset);
    let mut to_write = Vec::new();
    if options.tcp {
        handle_gro(&mut bufs, offset, table, options.udp, &mut to_write)?;
    } else {
        handle_gro_with(&mut bufs, offset, table, options, &mut to_write)?;
    }
    let in_place: Vec<(usize, Vec<u8>)> = to_write
        .iter()
        .map(|&i| (i, bufs[i][offset - VirtioNetHdr::LEN..].to_vec()))
        .collect();
    // Every batch is also coalesced without moving payloads, in buffers with no room to grow: written as
    // one packet and the payloads that follow it, it must be the same bytes.
    assert_eq!(
        gathered(pkts, offset, options)?,
        in_place,
        "plan_gro and handle_gro disagree"
    );
    Ok(in_place)
}

/// What `plan_gro` asks to write, each merged packet gathered from its buffers as one `writev` would.
fn gathered(
    pkts: &[Vec<u8>],
    offset: usize,
    options: GroOptions,
) -> Result<Vec<(usize, Vec<u8>)>, OffloadError> {
    let mut bufs: Vec<Box<[u8]>> = pkts
        .iter()
        .map(|p| {
            let mut b = vec![0u8; offset + p.len()];
            b[offset..].copy_from_slice(p);
            b.into_boxed_slice()
        })
        .collect();
    let mut table = GroTable::new();
    let mut to_write = Vec::new();
    plan_gro(&mut bufs, offset, &mut table, options, &mut to_write)?;
    Ok(to_write
        .iter()
        .map(|&i| {
            let mut wire = bufs[i][offset - VirtioNetHdr::LEN..].to_vec();
            for payload in table.merged_payloads(&bufs, i, offset) {
                wire.extend_from_slice(payload);
            }
            (i, wire)
        })
        .collect())
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
