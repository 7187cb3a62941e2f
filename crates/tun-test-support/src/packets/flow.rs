//! One builder for every test packet: IPv4/IPv6 TCP and UDP packets of a [`Flow`], every header field
//! chosen by the caller, with correct checksums (written by etherparse).

use etherparse::{
    IpDscp, IpEcn, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader, UdpHeader,
};

/// Everything that identifies a flow and stays the same on every packet of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// IPv6 rather than IPv4.
    pub v6: bool,
    /// UDP rather than TCP.
    pub udp: bool,
    /// IPv4 uses the first four bytes.
    pub src: [u8; 16],
    /// IPv4 uses the first four bytes.
    pub dst: [u8; 16],
    /// L4 source port.
    pub sport: u16,
    /// L4 destination port.
    pub dport: u16,
    /// IPv4 TOS or IPv6 traffic class (DSCP and ECN).
    pub tos: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 don't-fragment bit.
    pub df: bool,
    /// IPv6 flow label (20 bits).
    pub flow_label: u32,
    /// TCP acknowledgment number.
    pub ack: u32,
    /// TCP window.
    pub window: u16,
    /// TCP options, a multiple of 4 bytes, at most 40.
    pub options: Vec<u8>,
}

impl Flow {
    /// A plain TCP or UDP flow between two fixed hosts.
    pub fn simple(v6: bool, udp: bool) -> Self {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if v6 {
            src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            dst = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        } else {
            src[..4].copy_from_slice(&[10, 0, 0, 1]);
            dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        }
        Self {
            v6,
            udp,
            src,
            dst,
            sport: 40000,
            dport: 5201,
            tos: 0,
            ttl: 64,
            df: true,
            flow_label: 0,
            ack: 1,
            window: 502,
            options: timestamps(1, 2),
        }
    }

    /// Bytes of IP header (no options or extension headers are ever built).
    pub fn ip_header_len(&self) -> usize {
        if self.v6 { 40 } else { 20 }
    }

    /// Bytes of L4 header.
    pub fn l4_header_len(&self) -> usize {
        if self.udp { 8 } else { 20 + self.options.len() }
    }

    /// IP plus L4 header bytes.
    pub fn header_len(&self) -> usize {
        self.ip_header_len() + self.l4_header_len()
    }

    /// The largest payload of a packet of this flow no longer than 65535 bytes in all: the kernel's
    /// super-packets never are (gso_max_size, BIG TCP refused on TUN), and coalescing stops there too.
    pub fn max_payload(&self) -> usize {
        usize::from(u16::MAX) - self.header_len()
    }

    /// Offset of the L4 checksum field from the start of the L4 header.
    pub fn csum_offset(&self) -> usize {
        if self.udp { 6 } else { 16 }
    }
}

/// A TCP timestamp option padded to 12 bytes (NOP, NOP, kind 8), as Linux sends on bulk flows.
pub fn timestamps(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o
}

/// TCP flag bits of one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// FIN.
    pub fin: bool,
    /// SYN.
    pub syn: bool,
    /// RST.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
    /// ACK.
    pub ack: bool,
    /// URG.
    pub urg: bool,
    /// ECE (ECN echo).
    pub ece: bool,
    /// CWR (congestion window reduced).
    pub cwr: bool,
}

impl Flags {
    /// ACK alone: a data segment in the middle of a burst.
    pub const ACK: Self = Self {
        fin: false,
        syn: false,
        rst: false,
        psh: false,
        ack: true,
        urg: false,
        ece: false,
        cwr: false,
    };
    /// ACK|PSH: the last segment of a burst (and every super-packet).
    pub const ACK_PSH: Self = Self {
        psh: true,
        ..Self::ACK
    };

    /// The flags from the TCP header's flag byte (bits 0..8: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    pub fn from_bits(bits: u8) -> Self {
        Self {
            fin: bits & 0x01 != 0,
            syn: bits & 0x02 != 0,
            rst: bits & 0x04 != 0,
            psh: bits & 0x08 != 0,
            ack: bits & 0x10 != 0,
            urg: bits & 0x20 != 0,
            ece: bits & 0x40 != 0,
            cwr: bits & 0x80 != 0,
        }
    }
}

/// The fields that change from packet to packet of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// TCP sequence number.
    pub seq: u32,
    /// IPv4 identification.
    pub ip_id: u16,
    /// TCP flags.
    pub flags: Flags,
}

impl Seg {
    /// The first packet of a burst the kernel sends: sequence number and IPv4 ID 1, ACK|PSH (as every
    /// super-packet carries).
    pub const FIRST: Self = Self {
        seq: 1,
        ip_id: 1,
        flags: Flags::ACK_PSH,
    };
}

/// One IP packet of `flow` with correct IPv4 header and L4 checksums, written by etherparse.
///
/// Panics if the payload does not fit one IP packet: the generators never ask for that.
pub fn packet(flow: &Flow, seg: Seg, payload: &[u8]) -> Vec<u8> {
    build(flow, seg, payload, L4Checksum::Complete)
}

/// [`packet`] with zero in the L4 checksum field, for a caller that overwrites the field (a CHECKSUM_PARTIAL
/// seed): summing a 64 KB payload only to overwrite the result was most of the cost of a fuzzed
/// super-packet.
pub fn packet_without_l4_checksum(flow: &Flow, seg: Seg, payload: &[u8]) -> Vec<u8> {
    build(flow, seg, payload, L4Checksum::Zero)
}

/// What [`build`] puts in the L4 checksum field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum L4Checksum {
    /// The complete checksum over pseudo-header, header and payload.
    Complete,
    /// Zero, for a caller that overwrites the field.
    Zero,
}

fn build(flow: &Flow, seg: Seg, payload: &[u8], l4_checksum: L4Checksum) -> Vec<u8> {
    let l4_len = flow.l4_header_len() + payload.len();
    let mut out = Vec::with_capacity(flow.ip_header_len() + l4_len);
    let proto = if flow.udp {
        IpNumber::UDP
    } else {
        IpNumber::TCP
    };
    let mut ip4 = None;
    let mut ip6 = None;
    if flow.v6 {
        let h = Ipv6Header {
            traffic_class: flow.tos,
            flow_label: Ipv6FlowLabel::try_new(flow.flow_label & 0xf_ffff).expect("20-bit label"),
            payload_length: u16::try_from(l4_len).expect("IPv6 payload fits"),
            next_header: proto,
            hop_limit: flow.ttl,
            source: flow.src,
            destination: flow.dst,
        };
        h.write(&mut out).expect("write to a Vec");
        ip6 = Some(h);
    } else {
        let mut h = Ipv4Header::new(
            u16::try_from(l4_len).expect("IPv4 payload fits"),
            flow.ttl,
            proto,
            flow.src[..4].try_into().expect("4 bytes"),
            flow.dst[..4].try_into().expect("4 bytes"),
        )
        .expect("IPv4 payload fits");
        h.dscp = IpDscp::try_new(flow.tos >> 2).expect("6 bits");
        h.ecn = IpEcn::try_new(flow.tos & 3).expect("2 bits");
        h.identification = seg.ip_id;
        h.dont_fragment = flow.df;
        h.header_checksum = h.calc_header_checksum();
        h.write(&mut out).expect("write to a Vec");
        ip4 = Some(h);
    }
    if flow.udp {
        let u = match (&ip4, &ip6, l4_checksum) {
            (_, _, L4Checksum::Zero) => {
                UdpHeader::without_ipv4_checksum(flow.sport, flow.dport, payload.len())
            }
            (Some(h), _, _) => UdpHeader::with_ipv4_checksum(flow.sport, flow.dport, h, payload),
            (_, Some(h), _) => UdpHeader::with_ipv6_checksum(flow.sport, flow.dport, h, payload),
            _ => unreachable!("one IP header is always built"),
        }
        .expect("UDP length fits");
        u.write(&mut out).expect("write to a Vec");
    } else {
        let mut t = TcpHeader::new(flow.sport, flow.dport, seg.seq, flow.window);
        t.acknowledgment_number = flow.ack;
        let f = seg.flags;
        (t.fin, t.syn, t.rst, t.psh, t.ack, t.urg, t.ece, t.cwr) =
            (f.fin, f.syn, f.rst, f.psh, f.ack, f.urg, f.ece, f.cwr);
        t.set_options_raw(&flow.options)
            .expect("options are a multiple of 4, at most 40 bytes");
        t.checksum = match (&ip4, &ip6, l4_checksum) {
            (_, _, L4Checksum::Zero) => 0,
            (Some(h), _, _) => t.calc_checksum_ipv4(h, payload).expect("TCP length fits"),
            (_, Some(h), _) => t.calc_checksum_ipv6(h, payload).expect("TCP length fits"),
            _ => unreachable!("one IP header is always built"),
        };
        t.write(&mut out).expect("write to a Vec");
    }
    out.extend_from_slice(payload);
    out
}

/// Deterministic payload bytes, different for every `salt`; a longer payload of a salt begins with every
/// shorter one.
pub fn payload(len: usize, salt: u32) -> Vec<u8> {
    let mut x = salt.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}
