//! The table of packets held for coalescing within one batch.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::candidate::Candidate;
use super::flow_key::FlowKey;
use super::hasher::FlowHasher;
use crate::wire::{IpPacket, LinkHeader, Transport};

/// The packets held for coalescing while [`handle_gro`](crate::handle_gro) walks a batch.
///
/// Empty between calls; it only keeps its memory, so that a warmed-up table makes a call allocation-free.
/// One table per writer: it is `Send` but not meant to be shared between concurrent batches.
#[derive(Debug, Default)]
pub struct GroTable {
    /// Each flow's newest held item.
    flows: HashMap<FlowKey, usize, BuildHasherDefault<FlowHasher>>,
    /// Held items in arrival order; each links to the previous item of its flow.
    items: Vec<Item>,
    /// The flow inserted last and its newest item, the same entry as in `flows`: a batch is mostly one
    /// flow, and comparing one key is cheaper than hashing and probing.
    last: Option<(FlowKey, usize)>,
    /// On [`Layer::L2`](crate::Layer::L2), each frame's link header (`None`: not IP), found once per batch;
    /// empty otherwise. Kept here only for its memory.
    pub(super) links: Vec<Option<LinkHeader>>,
}

impl GroTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table with room for `packets` packets of distinct flows before it allocates.
    pub fn with_capacity(packets: usize) -> Self {
        Self {
            flows: HashMap::with_capacity_and_hasher(packets, BuildHasherDefault::default()),
            items: Vec::with_capacity(packets),
            last: None,
            links: Vec::with_capacity(packets),
        }
    }

    /// True when nothing is held: always after [`handle_gro`](super::handle_gro).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many packets of distinct flows fit before the table allocates.
    pub fn capacity(&self) -> usize {
        self.items.capacity().min(self.flows.capacity())
    }

    pub(super) fn clear(&mut self) {
        self.flows.clear();
        self.items.clear();
        self.last = None;
        self.links.clear();
    }

    pub(super) fn items(&self) -> &[Item] {
        &self.items
    }

    /// The newest item of a flow.
    pub(super) fn newest(&self, key: &FlowKey) -> Option<usize> {
        match &self.last {
            Some((last, index)) if last == key => Some(*index),
            _ => self.flows.get(key).copied(),
        }
    }

    pub(super) fn item(&self, index: usize) -> Option<Item> {
        self.items.get(index).copied()
    }

    pub(super) fn item_mut(&mut self, index: usize) -> Option<&mut Item> {
        self.items.get_mut(index)
    }

    /// Stops the UDP flow of the packet `ip` views (any unfragmented packet with a UDP header, candidate or
    /// not) from growing its newest held packet: later datagrams start a new one, so none overtakes it.
    ///
    /// A fragment ends every UDP flow between its two addresses: only the first fragment of a datagram
    /// carries the ports, so the flow it belongs to cannot be told.
    pub(super) fn end_udp_flow(&mut self, ip: &IpPacket<&[u8]>) {
        if ip.is_fragment() {
            let between = FlowKey::new(ip.version(), Transport::Udp, ip.addrs(), &[0; 4], 0);
            let Self {
                flows, items, last, ..
            } = self;
            for item in items
                .iter()
                .filter(|item| item.key.same_udp_addresses(&between))
            {
                flows.remove(&item.key);
            }
            if last.is_some_and(|(key, _)| key.same_udp_addresses(&between)) {
                *last = None;
            }
        } else if let Some(key) = FlowKey::of_udp(ip) {
            self.flows.remove(&key);
            if self.last.is_some_and(|(last, _)| last == key) {
                self.last = None;
            }
        }
    }

    /// Holds the packet in `bufs[buf]`, written as frame `frame`, as its flow's newest item.
    pub(super) fn insert(&mut self, buf: usize, frame: usize, c: &Candidate, csum: Csum) {
        let index = self.items.len();
        let prev = self.flows.insert(c.key, index);
        self.last = Some((c.key, index));
        self.items.push(Item {
            key: c.key,
            buf,
            prev,
            iph_len: c.iph_len,
            l4h_len: c.l4h_len,
            gso_size: c.payload_len,
            payload_len: c.payload_len,
            seq: c.seq,
            frame,
            segments: 1,
            psh: c.psh,
            csum,
        });
    }
}

/// Whether a held packet's transport checksum has been verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Csum {
    Unchecked,
    Valid,
    /// Never merged with; written on its own.
    Invalid,
}

/// A held packet, possibly already merged from several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Item {
    pub(super) key: FlowKey,
    /// Index in `bufs` of the merged packet's first segment, whose buffer holds the merged packet (its
    /// headers become the merged packet's).
    pub(super) buf: usize,
    /// The frame of the plan that writes it.
    pub(super) frame: usize,
    /// The flow's previous (older) item.
    pub(super) prev: Option<usize>,
    pub(super) iph_len: usize,
    pub(super) l4h_len: usize,
    /// Payload bytes of every segment but a possibly smaller last one.
    pub(super) gso_size: usize,
    /// Payload bytes of all segments together.
    pub(super) payload_len: usize,
    /// TCP sequence number of the first segment.
    pub(super) seq: u32,
    pub(super) segments: usize,
    /// The last segment carries PSH.
    pub(super) psh: bool,
    pub(super) csum: Csum,
}

impl Item {
    /// Length of the (merged) IP packet.
    pub(super) fn len(&self) -> usize {
        self.iph_len + self.l4h_len + self.payload_len
    }

    /// True when the last segment is smaller than the others: nothing may follow it.
    pub(super) fn ends_short(&self) -> bool {
        !self.payload_len.is_multiple_of(self.gso_size.max(1))
    }
}
