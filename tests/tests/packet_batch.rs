//! `PacketBatch` on a real device: what a socket sends comes out of `read_from` whole, also after the MTU
//! grew past what it was when the batch was made, and what `write_to` puts back reaches the socket.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tun::{Builder, PacketBatch, Tun};
use tun_system_tests::{NetNs, addressed, is_udp4_to_port, retry_eintr, with_deadline};

const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 4242);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads batches (at most 100, within `TIMEOUT`) until one holds a UDP packet to `PEER`; its index.
fn read_datagram(tun: &Tun, batch: &mut PacketBatch) -> Option<usize> {
    with_deadline(tun, TIMEOUT, || {
        for _ in 0..100 {
            batch.read_from(tun).ok()?;
            if let Some(i) = batch
                .packets()
                .position(|p| is_udp4_to_port(p, PEER.port()))
            {
                return Some(i);
            }
        }
        None
    })
}

/// Turns an IPv4 UDP packet into its reply: addresses and ports swapped, which leaves both checksums valid
/// (a one's-complement sum does not depend on the order of its words).
fn swap_endpoints(packet: &mut [u8]) {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let (src, dst) = packet[12..20].split_at_mut(4);
    src.swap_with_slice(dst);
    let (sport, rest) = packet[ihl..ihl + 4].split_at_mut(2);
    sport.swap_with_slice(rest);
}

/// A datagram of `len` bytes sent from a socket in the device's namespace comes out of a batch whole and, sent
/// back with its endpoints swapped, reaches the socket.
fn echo_through_a_batch(offload: bool, mtu: u32, len: usize) {
    let ns = NetNs::new();
    let builder = Builder::new().offload(offload).monitor(false);
    let (tun, sock) = addressed(&ns, builder, "tt-batch0");
    // Sized for the device as it is now; the MTU grows afterwards.
    let mut batch = PacketBatch::for_device(&tun);
    tun.set_mtu(mtu).unwrap();
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    sock.send_to(&payload, PEER).unwrap();

    let i = read_datagram(&tun, &mut batch).expect("the datagram comes out");
    let packet = batch.packet(i).unwrap();
    assert_eq!(packet.len(), 20 + 8 + len);
    assert_eq!(packet[28..], payload[..]);

    swap_endpoints(batch.packet_mut(i).unwrap());
    let held = batch.len();
    let writes = batch.write_to(&tun).unwrap();
    assert!(
        (1..=held).contains(&writes),
        "{writes} writes for {held} packets"
    );
    assert!(batch.is_empty());
    let mut buf = vec![0u8; len + 1];
    let (n, from) = retry_eintr(|| sock.recv_from(&mut buf)).unwrap();
    assert_eq!(buf[..n], payload[..]);
    assert_eq!(from, SocketAddr::V4(PEER));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn batch_takes_a_packet_longer_than_the_mtu_when_it_was_made() {
    echo_through_a_batch(true, 9000, 8000);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn batch_with_offloads_echoes_a_small_datagram() {
    echo_through_a_batch(true, 1500, 100);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn batch_without_offloads_echoes_a_long_datagram() {
    echo_through_a_batch(false, 9000, 8000);
}
