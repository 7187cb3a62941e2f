//! IP packets built and checked with etherparse, so that no test writes header bytes by hand.

use std::net::SocketAddrV4;

/// An IPv4 UDP packet from `src` to `dst` carrying `payload`, with correct checksums.
pub fn udp4_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .udp(src.port(), dst.port());
    let mut packet = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut packet, payload)
        .expect("writing into a Vec cannot fail");
    packet
}

/// An IPv4 TCP segment (ACK set, acknowledging 1, window 502) from `src` to `dst` with sequence number
/// `seq`, carrying `payload`, with correct checksums.
pub fn tcp4_segment(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, payload: &[u8]) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp(src.port(), dst.port(), seq, 502)
        .ack(1);
    let mut packet = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut packet, payload)
        .expect("writing into a Vec cannot fail");
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
    }
}
