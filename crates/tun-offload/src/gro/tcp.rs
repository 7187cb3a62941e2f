//! TCP coalescing: which held packet a segment may join, and at which end.

use super::candidate::Candidate;
use super::table::{Csum, GroTable, Item};
use super::{
    Batch, GroPlan, held_checksum_valid, ip_headers_agree, l4_checksum_valid, two_packets,
};
use crate::invariant::Invariant;
use crate::wire::{TcpHeader, same_bytes, tcp_flags};

/// Where a segment joins a held packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// After its last segment.
    Append,
    /// Before its first segment.
    Prepend,
}

/// Tries the flow's held packets, newest first, and merges the segment `index` into the first that takes
/// it; otherwise holds it as a new item in a frame of its own (or plans it alone when its checksum is bad).
pub(super) fn coalesce<B: AsMut<[u8]>>(
    bufs: &mut [B],
    batch: &Batch<'_>,
    table: &mut GroTable,
    plan: &mut GroPlan,
    index: usize,
    c: &Candidate,
) {
    let mut packet_valid = None;
    let mut cursor = table.newest(&c.key);
    while let Some(at) = cursor {
        let Some(item) = table.item(at) else { break };
        cursor = item.prev;
        if item.csum == Csum::Invalid {
            continue;
        }
        let Some(join) = two_packets(bufs, batch, index, c, &item)
            .and_then(|(packet, held)| can_join(packet, held, c, &item))
        else {
            continue;
        };
        // The merged packet is built in the buffer of its first segment: the item's on append, the
        // segment's on prepend.
        let front = match join {
            Join::Append => item.buf,
            Join::Prepend => index,
        };
        if !batch.fits(bufs, front, item.len() + c.payload_len) {
            continue;
        }
        if !held_checksum_valid(bufs, batch, table, at) {
            continue;
        }
        let valid = *packet_valid.get_or_insert_with(|| {
            batch
                .ip_packet(bufs, index)
                .is_some_and(|packet| l4_checksum_valid(packet, &c.key, c.iph_len))
        });
        if !valid {
            plan.push(index, batch.link_len(index) + c.len());
            return;
        }
        let headers_len = item.iph_len + item.l4h_len;
        let copied = match join {
            Join::Append => batch.append(bufs, item.buf, item.len(), index, c.len(), headers_len),
            // The merged packet keeps the item's frame, already in line to be written, now built in the
            // segment's buffer.
            Join::Prepend => batch.append(bufs, index, c.len(), item.buf, item.len(), headers_len),
        };
        // The merge is recorded only once its bytes are in place.
        let Some(held) = table.item_mut(at).filter(|_| copied) else {
            continue;
        };
        plan.assign(index, item.frame);
        match join {
            Join::Append => held.psh = c.psh,
            Join::Prepend => {
                held.buf = index;
                held.seq = c.seq;
                held.gso_size = held.gso_size.max(c.payload_len);
            }
        }
        held.payload_len += c.payload_len;
        held.segments += 1;
        return;
    }
    let frame = plan.push(index, batch.link_len(index) + c.len());
    table.insert(index, frame, c, Csum::Unchecked);
}

fn can_join(packet: &[u8], held: &[u8], c: &Candidate, item: &Item) -> Option<Join> {
    if c.l4h_len != item.l4h_len || !ip_headers_agree(packet, c, held, item) {
        return None;
    }
    let why = "a candidate's TCP header follows its IP header";
    let tcp = TcpHeader::new_unchecked(packet.get(c.iph_len..).invariant(why)?, c.l4h_len);
    let held_tcp = TcpHeader::new_unchecked(held.get(item.iph_len..).invariant(why)?, item.l4h_len);
    if tcp.data_offset_byte() != held_tcp.data_offset_byte()
        || tcp.flags() & !tcp_flags::PSH != held_tcp.flags() & !tcp_flags::PSH
        || tcp.window() != held_tcp.window()
        || !same_bytes(tcp.options(), held_tcp.options())
    {
        return None;
    }
    if c.seq == item.seq.wrapping_add(item.payload_len as u32) {
        // Nothing follows PSH, a smaller segment, or comes larger than the segments before it.
        if item.psh || item.ends_short() || c.payload_len > item.gso_size {
            return None;
        }
        return Some(Join::Append);
    }
    if c.seq.wrapping_add(c.payload_len as u32) == item.seq {
        // PSH only ever ends a merged packet. A larger segment in front is fine when the held packet is one
        // segment (it becomes the smaller last); in front of several it would leave smaller ones behind.
        if c.psh
            || c.payload_len < item.gso_size
            || (c.payload_len > item.gso_size && item.segments > 1)
        {
            return None;
        }
        return Some(Join::Prepend);
    }
    None
}
