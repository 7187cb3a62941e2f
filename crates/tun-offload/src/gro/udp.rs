//! UDP coalescing: a datagram joins only the newest held packet of its flow, so datagrams keep their order.

use super::candidate::Candidate;
use super::table::{Csum, GroTable};
use super::{
    Batch, GroPlan, UDP_MAX_SEGMENTS, held_checksum_valid, ip_headers_agree, l4_checksum_valid,
    two_packets,
};

/// Appends the datagram `index` to its flow's newest held packet when the rules allow, and otherwise holds it
/// as the flow's new newest item in a frame of its own (even with a bad checksum, so that no later datagram
/// can be merged in front of it).
pub(super) fn coalesce<B: AsMut<[u8]>>(
    bufs: &mut [B],
    batch: &Batch<'_>,
    table: &mut GroTable,
    plan: &mut GroPlan,
    index: usize,
    c: &Candidate,
) {
    let mut csum = Csum::Unchecked;
    if let Some(at) = table.newest(&c.key)
        && let Some(item) = table.item(at)
        && item.csum != Csum::Invalid
        && !item.ends_short()
        && c.payload_len <= item.gso_size
        && item.segments < UDP_MAX_SEGMENTS
        && two_packets(bufs, batch, index, c, &item)
            .is_some_and(|(packet, held)| ip_headers_agree(packet, c, held, &item))
        && batch.fits(bufs, item.buf, item.len() + c.payload_len)
        && held_checksum_valid(bufs, batch, table, at)
    {
        let valid = batch
            .ip_packet(bufs, index)
            .is_some_and(|packet| l4_checksum_valid(packet, &c.key, c.iph_len));
        if !valid {
            csum = Csum::Invalid;
        } else if batch.append(
            bufs,
            item.buf,
            item.len(),
            index,
            c.len(),
            item.iph_len + item.l4h_len,
        ) && let Some(held) = table.item_mut(at)
        {
            // The merge is recorded only once its bytes are in place.
            held.payload_len += c.payload_len;
            held.segments += 1;
            plan.assign(index, item.frame);
            return;
        }
    }
    let frame = plan.push(index, batch.link_len(index) + c.len());
    table.insert(index, frame, c, csum);
}
