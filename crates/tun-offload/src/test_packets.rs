//! Packets for the unit tests, described field by field as a [`Spec`] and built by the integration tests'
//! builders (`tests/support/packets.rs`), so that every test packet's bytes come from one place; plus the
//! plain reference checksum (not the optimised one under test) the unit tests judge output by.

use crate::support::packets::{self, Flags, Flow, HdrLen, Seg};
use crate::support::reference;

pub(crate) const ACK: u8 = 0x10;
pub(crate) const PSH: u8 = 0x08;

/// A TCP or UDP packet over IPv4 or IPv6, described field by field.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) v6: bool,
    pub(crate) udp: bool,
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: u8,
    pub(crate) window: u16,
    pub(crate) options: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) ttl: u8,
    pub(crate) tos: u8,
    pub(crate) ident: u16,
    pub(crate) df: bool,
    pub(crate) flow_label: u32,
    pub(crate) src_last: u8,
}

impl Spec {
    pub(crate) fn tcp4(seq: u32, payload_len: usize) -> Self {
        Self {
            v6: false,
            udp: false,
            src_port: 40000,
            dst_port: 443,
            seq,
            ack: 0x1000,
            flags: ACK,
            window: 0xffff,
            options: Vec::new(),
            payload: payload(seq as usize, payload_len),
            ttl: 64,
            tos: 0,
            ident: 0x1234,
            df: true,
            flow_label: 0,
            src_last: 1,
        }
    }

    pub(crate) fn tcp6(seq: u32, payload_len: usize) -> Self {
        Self {
            v6: true,
            ..Self::tcp4(seq, payload_len)
        }
    }

    pub(crate) fn udp4(payload_len: usize) -> Self {
        Self {
            udp: true,
            ..Self::tcp4(0, payload_len)
        }
    }

    pub(crate) fn udp6(payload_len: usize) -> Self {
        Self {
            udp: true,
            v6: true,
            ..Self::tcp4(0, payload_len)
        }
    }

    pub(crate) fn iph_len(&self) -> usize {
        self.flow().ip_header_len()
    }

    pub(crate) fn l4h_len(&self) -> usize {
        self.flow().l4_header_len()
    }

    /// The packet, with valid IPv4 header and transport checksums.
    pub(crate) fn build(&self) -> Vec<u8> {
        packets::packet(&self.flow(), self.seg(), &self.payload)
    }

    /// A kernel-style super-packet read: virtio header (NEEDS_CSUM, exact `hdr_len`, no ECN) then the packet
    /// with this spec's payload, its L4 checksum field seeded with the pseudo-header sum as
    /// CHECKSUM_PARTIAL.
    pub(crate) fn super_read(&self, gso_size: u16) -> Vec<u8> {
        packets::super_packet(
            &self.flow(),
            self.seg(),
            &self.payload,
            gso_size,
            HdrLen::Exact,
            false,
        )
    }

    /// The fields that stay the same on every packet of this spec's flow. The destination is always
    /// 10.0.0.2 or fd00::2; the source ends in `src_last`.
    fn flow(&self) -> Flow {
        let mut flow = Flow {
            sport: self.src_port,
            dport: self.dst_port,
            tos: self.tos,
            ttl: self.ttl,
            df: self.df,
            flow_label: self.flow_label,
            ack: self.ack,
            window: self.window,
            options: self.options.clone(),
            ..Flow::simple(self.v6, self.udp)
        };
        let last = if self.v6 { 15 } else { 3 };
        flow.src[last] = self.src_last;
        flow
    }

    /// The fields that change from packet to packet.
    fn seg(&self) -> Seg {
        Seg {
            seq: self.seq,
            ip_id: self.ident,
            flags: Flags::from_bits(self.flags),
        }
    }
}

/// Deterministic payload bytes that depend on their position in the stream.
pub(crate) fn payload(start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// The RFC 1071 sum of `data` on top of `initial`, folded, computed the slow and obvious way.
pub(crate) fn reference_sum(data: &[u8], initial: u32) -> u16 {
    reference::fold(u64::from(initial) + reference::sum(data))
}

/// The unfolded pseudo-header sum of an IPv4 or IPv6 packet carrying TCP or UDP.
pub(crate) fn pseudo(p: &[u8]) -> u32 {
    let (addrs, proto, l4_len) = if p[0] >> 4 == 6 {
        (&p[8..40], p[6], p.len() - 40)
    } else {
        let ihl = usize::from(p[0] & 0xf) * 4;
        (&p[12..20], p[9], p.len() - ihl)
    };
    u32::from(reference_sum(addrs, 0)) + u32::from(proto) + l4_len as u32
}

/// True when the packet's IPv4 header checksum (if any) and transport checksum verify.
pub(crate) fn checksums_valid(p: &[u8]) -> bool {
    let iph_len = if p[0] >> 4 == 6 {
        40
    } else {
        usize::from(p[0] & 0xf) * 4
    };
    let ip_ok = p[0] >> 4 == 6 || reference_sum(&p[..iph_len], 0) == 0xffff;
    ip_ok && reference_sum(&p[iph_len..], pseudo(p)) == 0xffff
}
