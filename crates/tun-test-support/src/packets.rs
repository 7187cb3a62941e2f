//! IP packets built and checked with etherparse, so that no test writes header bytes by hand. Every packet
//! is built by [`flow::packet`]; the functions here are its shorthands for the socket tests.

pub mod flow;

use std::net::{SocketAddrV4, SocketAddrV6};

use flow::{Flags, Flow, Seg};

/// An IPv4 UDP packet from `src` to `dst` carrying `payload`, with correct checksums.
pub fn udp4_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let flow = Flow {
        udp: true,
        ..v4_flow(src, dst)
    };
    flow::packet(&flow, socket_seg(0), payload)
}

/// An IPv6 UDP packet from `src` to `dst` carrying `payload` (hop limit 64), with a correct checksum.
pub fn udp6_packet(src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Vec<u8> {
    let flow = Flow {
        v6: true,
        udp: true,
        src: src.ip().octets(),
        dst: dst.ip().octets(),
        ..socket_flow(src.port(), dst.port())
    };
    flow::packet(&flow, socket_seg(0), payload)
}

/// An IPv4 TCP segment (ACK set, acknowledging 1, window 502) from `src` to `dst` with sequence number
/// `seq`, carrying `payload`, with correct checksums.
pub fn tcp4_segment(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, payload: &[u8]) -> Vec<u8> {
    flow::packet(&v4_flow(src, dst), socket_seg(seq), payload)
}

/// An IPv4 TCP flow from `src` to `dst`.
fn v4_flow(src: SocketAddrV4, dst: SocketAddrV4) -> Flow {
    let mut flow = socket_flow(src.port(), dst.port());
    flow.src[..4].copy_from_slice(&src.ip().octets());
    flow.dst[..4].copy_from_slice(&dst.ip().octets());
    flow
}

/// The flow the shorthands build on: TTL 64, no TCP options, ACK 1, window 502, IPv4 ID 0 and DF (as
/// etherparse's default IPv4 header has them).
fn socket_flow(sport: u16, dport: u16) -> Flow {
    Flow {
        sport,
        dport,
        options: Vec::new(),
        ..Flow::simple(false, false)
    }
}

/// A segment with sequence number `seq`, IPv4 ID 0 and ACK alone.
fn socket_seg(seq: u32) -> Seg {
    Seg {
        seq,
        ip_id: 0,
        flags: Flags::ACK,
    }
}

/// `packet` (IPv4 TCP or UDP, as built here) with its L4 checksum field holding the folded, not inverted,
/// pseudo-header sum instead of the checksum: what a sender that leaves the checksum to the device hands
/// over (CHECKSUM_PARTIAL), as in the super-packets a TSO read returns. Panics on any other packet.
pub fn with_partial_checksum(mut packet: Vec<u8>) -> Vec<u8> {
    let (ip, _) = etherparse::Ipv4Header::from_slice(&packet).expect("an IPv4 packet");
    let field = match ip.protocol {
        etherparse::IpNumber::TCP => 16,
        etherparse::IpNumber::UDP => 6,
        other => panic!("not TCP or UDP: {other:?}"),
    };
    let l4_len = packet.len() - ip.header_len();
    let words = ip.source.chunks(2).chain(ip.destination.chunks(2));
    let mut sum = words
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>()
        + u32::from(ip.protocol.0)
        + u32::try_from(l4_len).expect("an IP packet is shorter than 4 GiB");
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let at = ip.header_len() + field;
    packet[at..at + 2].copy_from_slice(&(sum as u16).to_be_bytes());
    packet
}

/// `packet` behind `room` zero bytes: a buffer for `write_packets` with that offset.
pub fn with_room(room: usize, packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; room];
    buf.extend_from_slice(packet);
    buf
}

/// The sizes of the packets of `bufs`, each the rest of its buffer after `offset`: what `write_packets`
/// takes beside buffers made with [`with_room`].
pub fn sizes_after<B: AsRef<[u8]>>(bufs: &[B], offset: usize) -> Vec<usize> {
    bufs.iter()
        .map(|b| b.as_ref().len().saturating_sub(offset))
        .collect()
}

/// True when `packet` is IPv4 UDP to destination port `port`.
pub fn is_udp4_to_port(packet: &[u8], port: u16) -> bool {
    match etherparse::SlicedPacket::from_ip(packet) {
        Ok(sliced) => matches!(
            (&sliced.net, &sliced.transport),
            (Some(etherparse::NetSlice::Ipv4(_)), Some(etherparse::TransportSlice::Udp(udp)))
                if udp.destination_port() == port
        ),
        Err(_) => false,
    }
}

/// True when `packet` is IPv4 UDP and its UDP checksum verifies (a partial checksum left by checksum offload
/// does not).
pub fn udp4_checksum_ok(packet: &[u8]) -> bool {
    let Ok((ip, rest)) = etherparse::Ipv4Header::from_slice(packet) else {
        return false;
    };
    let Ok((udp, payload)) = etherparse::UdpHeader::from_slice(rest) else {
        return false;
    };
    let payload = payload
        .get(..usize::from(udp.length).saturating_sub(8))
        .unwrap_or(payload);
    udp.calc_checksum_ipv4(&ip, payload)
        .is_ok_and(|sum| sum == udp.checksum)
}

/// True when `packet` is IPv4 TCP and its TCP checksum verifies (a partial checksum does not).
pub fn tcp4_checksum_ok(packet: &[u8]) -> bool {
    let Ok((ip, rest)) = etherparse::Ipv4Header::from_slice(packet) else {
        return false;
    };
    let Ok((tcp, payload)) = etherparse::TcpHeader::from_slice(rest) else {
        return false;
    };
    tcp.calc_checksum_ipv4(&ip, payload)
        .is_ok_and(|sum| sum == tcp.checksum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn built_udp_packets_verify_and_are_found_by_port() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 2), 2000);
        let packet = udp4_packet(a, b, b"payload");
        assert!(udp4_checksum_ok(&packet));
        assert!(is_udp4_to_port(&packet, 2000));
        assert!(!is_udp4_to_port(&packet, 1000));
        let mut broken = packet.clone();
        *broken.last_mut().unwrap() ^= 1;
        assert!(!udp4_checksum_ok(&broken));
    }

    #[test]
    fn udp6_packets_carry_their_addresses_ports_and_payload() {
        let a = SocketAddrV6::new("fd01::1".parse().unwrap(), 1000, 0, 0);
        let b = SocketAddrV6::new("fd01::2".parse().unwrap(), 2000, 0, 0);
        let packet = udp6_packet(a, b, b"payload");
        let sliced = etherparse::SlicedPacket::from_ip(&packet).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = sliced.net else {
            panic!("not IPv6")
        };
        assert_eq!(
            (ip.header().source_addr(), ip.header().destination_addr()),
            (*a.ip(), *b.ip())
        );
        let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport else {
            panic!("not UDP")
        };
        assert_eq!((udp.source_port(), udp.destination_port()), (1000, 2000));
        assert_eq!(udp.payload(), b"payload");
    }

    #[test]
    fn tcp_segments_carry_their_sequence_number() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 2), 2000);
        let packet = tcp4_segment(a, b, 4242, &[7; 10]);
        let sliced = etherparse::SlicedPacket::from_ip(&packet).unwrap();
        let Some(etherparse::TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("not TCP")
        };
        assert_eq!(tcp.sequence_number(), 4242);
        assert_eq!(tcp.payload(), &[7; 10]);
        assert!(tcp4_checksum_ok(&packet));
        let mut broken = packet.clone();
        *broken.last_mut().unwrap() ^= 1;
        assert!(!tcp4_checksum_ok(&broken));
    }

    /// The one's complement sum of `data` as 16-bit big-endian words (an odd last byte padded with zero).
    fn sum(data: &[u8]) -> u32 {
        data.chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum()
    }

    #[test]
    fn a_partial_checksum_completes_to_the_full_one_over_the_l4_bytes() {
        // What the device does with CHECKSUM_PARTIAL: sum the L4 header (seed in the checksum field) and
        // payload, and store the inverted result. That must be the checksum the packet had.
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 2), 2000);
        for (packet, field) in [
            (tcp4_segment(a, b, 7, &[0x5a; 333]), 20 + 16),
            (udp4_packet(a, b, &[0xa5; 100]), 20 + 6),
        ] {
            let partial = with_partial_checksum(packet.clone());
            assert_eq!(partial[..field], packet[..field]);
            assert_eq!(partial[field + 2..], packet[field + 2..]);
            let mut total = sum(&partial[20..]);
            while total > 0xffff {
                total = (total & 0xffff) + (total >> 16);
            }
            assert_eq!(
                !(total as u16),
                u16::from_be_bytes([packet[field], packet[field + 1]])
            );
            assert!(!tcp4_checksum_ok(&partial) && !udp4_checksum_ok(&partial));
        }
    }
}
