//! What identifies a flow, read straight from a packet as a few native words.

use std::hash::{Hash, Hasher};

use crate::wire::{IpPacket, IpVersion, Transport};

/// What identifies a flow: packets of different flows are never compared.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlowKey {
    pub(super) version: IpVersion,
    pub(super) transport: Transport,
    /// Source then destination address (IPv4 fills the first), then the ports and the TCP acknowledgment
    /// number (0 for UDP: segments with different ones are different TCP flows), as native words so that
    /// hashing and comparing take a few word operations.
    words: [u64; 5],
}

impl FlowKey {
    /// The UDP flow of an unfragmented packet (the caller checked) with a UDP header (IPv4 options and IPv6
    /// extension headers allowed).
    pub(super) fn of_udp(ip: &IpPacket<&[u8]>) -> Option<Self> {
        let (l4_start, protocol) = ip.transport().ok()?;
        if protocol != Transport::Udp.protocol() {
            return None;
        }
        let ports: &[u8; 4] = ip.into_inner().get(l4_start..)?.first_chunk()?;
        Some(Self::new(
            ip.version(),
            Transport::Udp,
            ip.addrs(),
            ports,
            0,
        ))
    }

    /// True when both are UDP flows between the same two addresses (in the same direction), ports aside.
    pub(super) fn same_udp_addresses(&self, other: &Self) -> bool {
        self.transport == Transport::Udp
            && other.transport == Transport::Udp
            && self.version == other.version
            && self.words.first_chunk::<4>() == other.words.first_chunk::<4>()
    }

    pub(super) fn new(
        version: IpVersion,
        transport: Transport,
        addrs: &[u8],
        ports: &[u8; 4],
        ack: u32,
    ) -> Self {
        // Words are read straight from the packet: assembling the key in a byte array first made the
        // later word loads wait on the byte stores (a store-forwarding stall on every packet).
        let (addr_words, _) = addrs.as_chunks::<8>();
        let tail = u64::from(u32::from_ne_bytes(*ports)) | u64::from(ack) << 32;
        let mut words = [0, 0, 0, 0, tail];
        for (word, chunk) in words.iter_mut().take(4).zip(addr_words) {
            *word = u64::from_ne_bytes(*chunk);
        }
        Self {
            version,
            transport,
            words,
        }
    }
}

impl PartialEq for FlowKey {
    /// Word by word without branching: the derived comparison of the array calls `memcmp`, which costs more
    /// than the five comparisons, and it runs for every packet.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let differ = self
            .words
            .iter()
            .zip(&other.words)
            .fold(0, |acc, (a, b)| acc | (a ^ b));
        differ == 0 && self.version == other.version && self.transport == other.transport
    }
}

impl Eq for FlowKey {}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Each word times its own odd constant, summed: the multiplies are independent, so they overlap
        // instead of forming a chain; the hasher's final mix spreads the result over all bits.
        const K: [u64; 5] = [
            0x9e37_79b9_7f4a_7c15,
            0xc2b2_ae3d_27d4_eb4f,
            0x1656_67b1_9e37_79f9,
            0x85eb_ca77_c2b2_ae63,
            0x27d4_eb2f_1656_67c5,
        ];
        let tag = u64::from(self.version == IpVersion::V6) << 1
            | u64::from(self.transport == Transport::Udp);
        let mixed = self
            .words
            .iter()
            .zip(K)
            .fold(tag, |acc, (w, k)| acc.wrapping_add(w.wrapping_mul(k)));
        state.write_u64(mixed);
    }
}
