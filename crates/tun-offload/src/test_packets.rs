//! Hand-built packets for the unit tests, with checksums from a plain reference implementation (not the
//! optimised one under test).

use crate::VirtioNetHdr;
use crate::virtio::{FLAG_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};

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
        if self.v6 { 40 } else { 20 }
    }

    pub(crate) fn l4h_len(&self) -> usize {
        if self.udp { 8 } else { 20 + self.options.len() }
    }

    /// The packet, with valid IPv4 header and transport checksums.
    pub(crate) fn build(&self) -> Vec<u8> {
        let l4_len = self.l4h_len() + self.payload.len();
        let total = self.iph_len() + l4_len;
        let mut p = vec![0u8; total];
        let (src, dst) = self.addrs();
        let proto = if self.udp { 17 } else { 6 };
        if self.v6 {
            let first = (6u32 << 28) | (u32::from(self.tos) << 20) | (self.flow_label & 0xfffff);
            p[0..4].copy_from_slice(&first.to_be_bytes());
            p[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            p[6] = proto;
            p[7] = self.ttl;
            p[8..24].copy_from_slice(&src);
            p[24..40].copy_from_slice(&dst);
        } else {
            p[0] = 0x45;
            p[1] = self.tos;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[4..6].copy_from_slice(&self.ident.to_be_bytes());
            p[6] = if self.df { 0x40 } else { 0 };
            p[8] = self.ttl;
            p[9] = proto;
            p[12..16].copy_from_slice(&src[..4]);
            p[16..20].copy_from_slice(&dst[..4]);
            let c = !reference_sum(&p[..20], 0);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let l4 = self.iph_len();
        p[l4..l4 + 2].copy_from_slice(&self.src_port.to_be_bytes());
        p[l4 + 2..l4 + 4].copy_from_slice(&self.dst_port.to_be_bytes());
        let payload_at = l4 + self.l4h_len();
        if self.udp {
            p[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        } else {
            p[l4 + 4..l4 + 8].copy_from_slice(&self.seq.to_be_bytes());
            p[l4 + 8..l4 + 12].copy_from_slice(&self.ack.to_be_bytes());
            p[l4 + 12] = ((self.l4h_len() / 4) as u8) << 4;
            p[l4 + 13] = self.flags;
            p[l4 + 14..l4 + 16].copy_from_slice(&self.window.to_be_bytes());
            p[l4 + 20..payload_at].copy_from_slice(&self.options);
        }
        p[payload_at..].copy_from_slice(&self.payload);
        let at = l4 + if self.udp { 6 } else { 16 };
        let mut c = !reference_sum(&p[l4..], pseudo(&p));
        if self.udp && c == 0 {
            c = 0xffff;
        }
        p[at..at + 2].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn addrs(&self) -> ([u8; 16], [u8; 16]) {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if self.v6 {
            src[0] = 0xfd;
            dst[0] = 0xfd;
            src[15] = self.src_last;
            dst[15] = 2;
        } else {
            src[..4].copy_from_slice(&[10, 0, 0, self.src_last]);
            dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        }
        (src, dst)
    }

    /// A kernel-style super-packet read: virtio header then the packet with this spec's payload, seeded
    /// with the pseudo-header sum as CHECKSUM_PARTIAL, and PSH set as the kernel does.
    pub(crate) fn super_read(&self, gso_size: u16) -> Vec<u8> {
        let mut packet = self.build();
        let csum_start = self.iph_len();
        let csum_offset = if self.udp { 6 } else { 16 };
        let seed = reference_fold(u64::from(pseudo(&packet)));
        let at = csum_start + csum_offset;
        packet[at..at + 2].copy_from_slice(&seed.to_be_bytes());
        let gso_type = match (self.udp, self.v6) {
            (true, _) => GSO_UDP_L4,
            (false, false) => GSO_TCPV4,
            (false, true) => GSO_TCPV6,
        };
        let hdr = VirtioNetHdr {
            flags: FLAG_NEEDS_CSUM,
            gso_type,
            hdr_len: (csum_start + self.l4h_len()) as u16,
            gso_size,
            csum_start: csum_start as u16,
            csum_offset: csum_offset as u16,
        };
        let mut read = hdr.to_bytes().to_vec();
        read.extend_from_slice(&packet);
        read
    }
}

/// Deterministic payload bytes that depend on their position in the stream.
pub(crate) fn payload(start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// The RFC 1071 sum, folded, computed the slow and obvious way.
pub(crate) fn reference_sum(data: &[u8], initial: u32) -> u16 {
    let mut acc = u64::from(initial);
    for pair in data.chunks(2) {
        acc += u64::from(pair[0]) << 8 | u64::from(pair.get(1).copied().unwrap_or(0));
    }
    reference_fold(acc as u32 as u64 + (acc >> 32))
}

fn reference_fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
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
