//! How a packet becomes a coalescing candidate: the checks that keep it apart, and the facts the rules
//! need, read once.

use super::GroOptions;
use super::flow_key::FlowKey;
use crate::MAX_PACKET;
use crate::wire::{IpPacket, TcpHeader, Transport, UdpHeader, tcp_flags};

/// A packet that may be coalesced, with the facts the rules need, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub(super) key: FlowKey,
    pub(super) iph_len: usize,
    pub(super) l4h_len: usize,
    pub(super) payload_len: usize,
    pub(super) seq: u32,
    pub(super) psh: bool,
}

impl Candidate {
    /// Length of the IP packet (its buffer's size, as the IP length field says).
    pub(super) fn len(&self) -> usize {
        self.iph_len + self.l4h_len + self.payload_len
    }

    /// The packet `ip` views as a coalescing candidate, or `None` when it must be written on its own.
    #[inline]
    pub(super) fn parse(ip: IpPacket<&[u8]>, options: GroOptions) -> Option<Self> {
        let packet = ip.into_inner();
        if packet.len() > MAX_PACKET {
            return None;
        }
        let version = ip.version();
        // IPv4 options and IPv6 extension headers are not coalesced; the header must be the fixed one.
        if ip.header_len() != version.fixed_header_len() || ip.total_len() != packet.len() {
            return None;
        }
        if ip.is_fragment() || !ip.header_checksum_valid() {
            return None;
        }
        let transport = Transport::from_protocol(ip.protocol())?;
        let iph_len = ip.header_len();
        let l4 = packet.get(iph_len..)?;
        let (l4h_len, ports, ack, seq, psh) = match transport {
            Transport::Tcp => {
                if !options.tcp {
                    return None;
                }
                let tcp = TcpHeader::new_checked(l4).ok()?;
                let flags = tcp.flags();
                // ACK, optionally PSH and ECE; anything else (SYN, FIN, RST, URG, CWR) is not coalesced.
                if flags & !(tcp_flags::PSH | tcp_flags::ECE) != tcp_flags::ACK {
                    return None;
                }
                (
                    tcp.header_len(),
                    tcp.ports(),
                    tcp.ack(),
                    tcp.seq(),
                    flags & tcp_flags::PSH != 0,
                )
            }
            Transport::Udp => {
                if !options.udp {
                    return None;
                }
                let udp = UdpHeader::new_checked(l4).ok()?;
                if usize::from(udp.length()) != l4.len() {
                    return None;
                }
                // IPv4 UDP without a checksum cannot be verified, and merging would add one: keep it apart.
                if udp.checksum() == 0 {
                    return None;
                }
                (UdpHeader::<&[u8]>::LEN, udp.ports(), 0, 0, false)
            }
        };
        let payload_len = l4.len().checked_sub(l4h_len).filter(|&n| n > 0)?;
        // From here on the packet is read through views built from these values, never validated again.
        Some(Self {
            key: FlowKey::new(version, transport, ip.addrs(), &ports, ack),
            iph_len,
            l4h_len,
            payload_len,
            seq,
            psh,
        })
    }
}
