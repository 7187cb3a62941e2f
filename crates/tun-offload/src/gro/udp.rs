//! UDP coalescing: a datagram joins only the newest held packet of its flow, so datagrams keep their order.

use super::table::{Candidate, Csum, GroTable};
use super::{
    Outcome, UDP_MAX_SEGMENTS, append_payload, fits, held_checksum_valid, ip_headers_agree,
    l4_checksum_valid, packet_at,
};
use crate::wire::Transport;

/// Appends the datagram in `bufs[index]` to its flow's newest held packet when the rules allow, and
/// otherwise holds it as the flow's new newest item (even with a bad checksum, so that no later datagram
/// can be merged in front of it).
pub(super) fn coalesce(
    bufs: &mut [Vec<u8>],
    offset: usize,
    table: &mut GroTable,
    index: usize,
    c: &Candidate,
) -> Outcome {
    let mut csum = Csum::Unchecked;
    if let Some(at) = table.newest(&c.key)
        && let Some(item) = table.item(at)
        && item.csum != Csum::Invalid
        && !item.ends_short()
        && c.payload_len <= item.gso_size
        && item.segments < UDP_MAX_SEGMENTS
        && ip_headers_agree(
            packet_at(bufs, index, offset),
            packet_at(bufs, item.buf, offset),
        )
        && fits(bufs, item.buf, offset, item.len() + c.payload_len)
        && held_checksum_valid(bufs, offset, table, at)
    {
        if !l4_checksum_valid(packet_at(bufs, index, offset), c.iph_len, Transport::Udp) {
            csum = Csum::Invalid;
        } else if append_payload(bufs, offset, item.buf, index, item.iph_len + item.l4h_len)
            && let Some(held) = table.item_mut(at)
        {
            held.payload_len += c.payload_len;
            held.segments += 1;
            return Outcome::Merged;
        }
    }
    table.insert(index, c, csum);
    Outcome::Held
}
