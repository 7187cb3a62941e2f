//! UDP coalescing: a datagram joins only the newest held packet of its flow, so datagrams keep their order.

use super::candidate::Candidate;
use super::table::{Csum, GroTable};
use super::{
    Batch, Merge, Outcome, UDP_MAX_SEGMENTS, held_checksum_valid, ip_headers_agree,
    l4_checksum_valid, packet_at, two_packets,
};
use crate::wire::Transport;

/// Appends the datagram in `bufs[index]` to its flow's newest held packet when the rules allow, and
/// otherwise holds it as the flow's new newest item (even with a bad checksum, so that no later datagram
/// can be merged in front of it).
pub(super) fn coalesce<B: AsMut<[u8]>, M: Merge<B>>(
    bufs: &mut [B],
    batch: &Batch<M>,
    table: &mut GroTable,
    index: usize,
    c: &Candidate,
) -> Outcome {
    let offset = batch.offset;
    let mut csum = Csum::Unchecked;
    if let Some(at) = table.newest(&c.key)
        && let Some(item) = table.item(at)
        && item.csum != Csum::Invalid
        && !item.ends_short()
        && c.payload_len <= item.gso_size
        && item.segments < UDP_MAX_SEGMENTS
        && two_packets(bufs, index, item.buf, offset)
            .is_some_and(|(packet, held)| ip_headers_agree(packet, held))
        && batch.fits(
            bufs,
            item.buf,
            item.len() + c.payload_len,
            item.segments + 1,
        )
        && held_checksum_valid(bufs, offset, table, at)
    {
        if !l4_checksum_valid(packet_at(bufs, index, offset), c.iph_len, Transport::Udp) {
            csum = Csum::Invalid;
        } else if let Some(held) = table.item_mut(at) {
            let after = held.last_buf;
            held.last_buf = index;
            held.payload_len += c.payload_len;
            held.segments += 1;
            let headers_len = held.iph_len + held.l4h_len;
            table.link_after(after, index, headers_len);
            batch.append(bufs, item.buf, index, headers_len);
            return Outcome::Merged;
        }
    }
    table.insert(index, c, csum);
    Outcome::Held
}
