//! The device with offloads: what the kernel accepted, super-packets split on read (nothing lost even one
//! buffer at a time), coalescing on write, io::Read/Write, and bad packets refused without harm.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use tun::{Builder, Error, Offloads};
use tun_system_tests::traffic::{
    A4, B4, DEV_B, DirectionStats, Forwarder, Tunnel, hundred_mib, sha256_hex, tcp_transfer,
};
use tun_system_tests::{
    NetNs, NetNsTun, addressed, is_udp4_to_port, local_addr, read_until, retry_eintr, tcp4_segment,
    udp4_checksum_ok, udp4_packet, with_room, write_framed,
};

const MIB: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Sends the first `len` bytes of the shared test data over TCP from A to B (IPv6 when `v6`) and asserts
/// that all of them arrived intact.
fn transfer_intact(tunnel: &Tunnel, v6: bool, len: usize) {
    let data = &hundred_mib().0[..len];
    let received = tcp_transfer(tunnel, v6, data, TIMEOUT).expect("transfer");
    assert_eq!(received.bytes, len as u64);
    assert_eq!(
        received.sha256,
        sha256_hex(data),
        "the stream arrived altered"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn offloads_are_reported_on_and_batch_size_follows() {
    let ns = NetNs::new();
    let tun = ns
        .tun(Builder::new().name("tt-ofl0").offload(true))
        .unwrap();
    let tcp = Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6;
    assert!(tun.offloads().contains(tcp), "{:?}", tun.offloads());
    assert!(tun.has_vnet_hdr());
    assert_eq!(tun.batch_size(), 128);
    // Without offloads the device negotiates none and reads one packet at a time.
    let plain = ns.tun(Builder::new().name("tt-ofl1")).unwrap();
    assert!(plain.offloads().is_empty());
    assert_eq!(plain.batch_size(), 1);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn uso_is_on_where_the_kernel_has_it() {
    // USO needs Linux >= 6.2: on such kernels both halves must be on, never one alone.
    let ns = NetNs::new();
    let tun = ns
        .tun(Builder::new().name("tt-uso0").offload(true))
        .unwrap();
    let uso = Offloads::USO4 | Offloads::USO6;
    let has4 = tun.offloads().contains(Offloads::USO4);
    let has6 = tun.offloads().contains(Offloads::USO6);
    assert_eq!(has4, has6, "{:?}", tun.offloads());
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (6, 2) {
        assert!(
            tun.offloads().contains(uso),
            "kernel {release}: {:?}",
            tun.offloads()
        );
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn attaching_without_offloads_turns_a_persistent_devices_offloads_off() {
    let ns = NetNs::new();
    drop(
        ns.tun(Builder::new().name("tt-ofl2").offload(true).persist(true))
            .unwrap(),
    );
    // The offload mask outlives the fd; a plain attach must clear it, or the kernel would hand over
    // super-packets and partial checksums to a reader that cannot take them.
    let tun = ns
        .tun_reattach(Builder::new().name("tt-ofl2").persist(false))
        .unwrap();
    assert!(tun.offloads().is_empty());
    ns.address(&tun, std::net::Ipv4Addr::new(10, 77, 0, 1).into(), 24);
    let sock = ns.run_in(|| UdpSocket::bind("10.77.0.1:0").unwrap());
    sock.send_to(b"checksum me", "10.77.0.2:4000").unwrap();
    let packet = read_until(&tun, Duration::from_secs(10), |p| is_udp4_to_port(p, 4000))
        .expect("packet read");
    // With checksum offload left on, the kernel would hand over a partial checksum (and no header to say so).
    assert!(udp4_checksum_ok(&packet), "{packet:02x?}");
}

fn bulk_tcp_v4(forwarder: Forwarder, len: usize) -> DirectionStats {
    let tunnel = Tunnel::with_forwarder(true, forwarder);
    transfer_intact(&tunnel, false, len);
    let stats = tunnel.stop();
    assert!(stats.a_to_b.write_errors.is_empty(), "{:?}", stats.a_to_b);
    assert!(stats.b_to_a.write_errors.is_empty(), "{:?}", stats.b_to_a);
    stats.a_to_b
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_bulk_through_two_offload_devices_arrives_intact_and_super_packets_are_split() {
    let stats = bulk_tcp_v4(Forwarder::RawBatch(128), 32 * MIB);
    // TSO super-packets came out of the sender's device as several packets per read.
    assert!(stats.max_per_read > 1, "{stats:?}");
    eprintln!(
        "a->b: {stats:?}, {:.1} packets per read",
        stats.packets as f64 / stats.reads as f64
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_gso_segment_limit_bounds_the_packets_of_one_read() {
    let tunnel = Tunnel::with_forwarder(true, Forwarder::RawBatch(128));
    // Before the connection: TCP takes the limits of the route's device when it connects.
    tunnel.tun_a().set_gso_max_segments(8).unwrap();
    transfer_intact(&tunnel, false, 16 * MIB);
    let a_to_b = tunnel.stop().a_to_b;
    // Super-packets still come, each of at most 8 segments (a read is one super-packet).
    assert!((2..=8).contains(&a_to_b.max_per_read), "{a_to_b:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_v6_bulk_through_two_offload_devices_arrives_intact() {
    let tunnel = Tunnel::with_forwarder(true, Forwarder::RawBatch(128));
    transfer_intact(&tunnel, true, 16 * MIB);
    let a_to_b = tunnel.stop().a_to_b;
    assert!(a_to_b.max_per_read > 1, "{a_to_b:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn one_buffer_per_read_loses_nothing_of_a_gso_stream() {
    let stats = bulk_tcp_v4(Forwarder::RawBatch(1), 8 * MIB);
    assert_eq!(stats.max_per_read, 1);
    // Each read brought one MTU-sized packet (at most 1500 bytes on the wire) split from a super-packet,
    // not a whole super-packet: the 8 MiB took at least 8 MiB / 1500 reads.
    assert!(stats.packets >= (8 * MIB / 1500) as u64, "{stats:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn io_read_and_write_with_offloads_carry_a_gso_stream_intact() {
    let stats = bulk_tcp_v4(Forwarder::OnePacket, 8 * MIB);
    assert!(stats.packets > (8 * MIB / 65535) as u64, "{stats:?}");
    // `io::Read` hands over the MTU-sized packets split from each super-packet, one per call, not the
    // super-packet whole: at least 8 MiB / 1500 packets.
    assert!(stats.packets >= (8 * MIB / 1500) as u64, "{stats:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_bulk_without_offloads_arrives_intact() {
    let tunnel = Tunnel::with_forwarder(false, Forwarder::RawBatch(1));
    transfer_intact(&tunnel, false, 8 * MIB);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_gso_datagrams_are_split_and_arrive_whole() {
    let tunnel = Tunnel::with_forwarder(true, Forwarder::RawBatch(128));
    let receiver = tunnel
        .b
        .run_in(|| UdpSocket::bind(SocketAddrV4::new(B4, 5004)).unwrap());
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sender = tunnel
        .a
        .run_in(|| UdpSocket::bind(SocketAddrV4::new(A4, 0)).unwrap());
    tun_test_support::sockopt::set_udp_segment(&sender, 1200).unwrap();
    // One send of 20 datagrams of 1200 bytes: one USO super-packet.
    let payload = &hundred_mib().0[..24_000];
    sender
        .send_to(payload, SocketAddrV4::new(B4, 5004))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        let (n, _) = retry_eintr(|| receiver.recv_from(&mut buf)).unwrap();
        assert_eq!(n, 1200);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, payload);
    let a_to_b = tunnel.stop().a_to_b;
    assert!(a_to_b.max_per_read > 1, "{a_to_b:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn garbage_truncated_and_oversized_writes_are_errors_and_traffic_goes_on() {
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(true), "tt-bad0");
    let me = local_addr(&sock);
    let peer = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 4100);
    let good = udp4_packet(peer, me, b"still here");
    let with_room = |packet: &[u8]| with_room(10, packet);
    let mut oversized = good.clone();
    oversized.resize(70_000, 0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", vec![0xff; 40]),
        ("truncated header", good[..10].to_vec()),
        ("length claims more", good[..good.len() - 4].to_vec()),
        ("oversized", oversized),
        ("empty", Vec::new()),
    ];
    for (what, packet) in &cases {
        let err = write_framed(&tun, &mut [with_room(packet)], 10).unwrap_err();
        assert!(!err.is_fatal(), "{what}: {err:?}");
        let mut one = std::io::Write::write(&mut &tun, packet);
        if packet.is_empty() {
            assert_eq!(one.as_ref().ok(), Some(&0), "{what}");
            one = Err(std::io::ErrorKind::InvalidInput.into());
        }
        assert!(one.is_err(), "{what} via io::Write");
    }
    // All of them in one batch around two good packets: each bad one reported, the good ones written.
    let mut batch: Vec<Vec<u8>> = vec![with_room(&good)];
    batch.extend(cases.iter().map(|(_, p)| with_room(p)));
    batch.push(with_room(&good));
    let err = write_framed(&tun, &mut batch, 10).unwrap_err();
    let Error::Batch(report) = err else {
        panic!("{err:?}")
    };
    assert_eq!(report.written, 2, "{report}");
    assert_eq!(report.failed.len(), cases.len(), "{report}");
    for _ in 0..2 {
        let mut buf = [0u8; 32];
        let (n, _) = retry_eintr(|| sock.recv_from(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"still here");
    }
    // And the device still carries traffic both ways.
    sock.send_to(b"out", peer).unwrap();
    assert!(read_until(&tun, Duration::from_secs(10), |p| is_udp4_to_port(p, 4100)).is_some());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn gro_can_be_switched_off_at_run_time() {
    let tunnel = Tunnel::with_forwarder(true, Forwarder::RawBatch(128));
    tunnel.tun_a().set_gro(false);
    tunnel.tun_b().set_gro(false);
    let before = tunnel.b.rx_packets(DEV_B);
    transfer_intact(&tunnel, false, 8 * MIB);
    // Without coalescing every write to tunB is one packet of at most its 1500-byte MTU, so the 8 MiB took
    // at least 8 MiB / 1500 writes (with GRO on, 64 KB super-packets need far fewer).
    let writes = tunnel.b.rx_packets(DEV_B) - before;
    assert!(
        writes >= (8 * MIB / 1500) as u64,
        "only {writes} writes to {DEV_B}"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_gro_switch_decides_whether_datagrams_of_a_flow_are_merged_on_write() {
    const DATAGRAMS: usize = 16;
    let Some(sink) = UdpSink::new("tt-ugro0") else {
        return;
    };
    // One flow of equal datagrams in buffers with room to merge, written as one batch.
    let writes_for_one_batch = || {
        let (mut bufs, sizes) = sink.batch_with_room(DATAGRAMS);
        sink.writes_to_receive(DATAGRAMS, || {
            sink.tun.write_packets(&mut bufs, &sizes, UdpSink::OFFSET)
        })
    };
    let merged = writes_for_one_batch();
    assert!(merged < DATAGRAMS as u64, "UDP GRO on: {merged} writes");
    sink.tun.set_udp_gro(false);
    let alone = writes_for_one_batch();
    assert_eq!(alone, DATAGRAMS as u64, "UDP GRO off");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn buffers_of_any_type_with_room_are_coalesced() {
    const DATAGRAMS: usize = 16;
    let Some(sink) = UdpSink::new("tt-anybuf0") else {
        return;
    };
    let (mut storage, sizes) = sink.batch_with_room(DATAGRAMS);
    let mut slices: Vec<&mut [u8]> = storage.iter_mut().map(Vec::as_mut_slice).collect();
    let writes = sink.writes_to_receive(DATAGRAMS, || {
        sink.tun.write_packets(&mut slices, &sizes, UdpSink::OFFSET)
    });
    assert_eq!(writes, 1, "slices: one super-packet");
    let (storage, sizes) = sink.batch_with_room(DATAGRAMS);
    let mut boxed: Vec<Box<[u8]>> = storage.into_iter().map(Vec::into_boxed_slice).collect();
    let writes = sink.writes_to_receive(DATAGRAMS, || {
        sink.tun.write_packets(&mut boxed, &sizes, UdpSink::OFFSET)
    });
    assert_eq!(writes, 1, "boxed slices: one super-packet");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_merge_grows_into_the_room_after_its_first_packet_and_no_further() {
    // 1100 in-order segments of 10 bytes: with room for a 64 KiB packet after each they are one write;
    // in buffers that end with their packet nothing can merge, and each is written on its own.
    const SEGMENTS: usize = 1100;
    let ns = NetNs::new();
    let (tun, _sock) = addressed(&ns, Builder::new().offload(true), "tt-room0");
    let segment = |i: usize| {
        let seq = 1 + 10 * i as u32;
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 4000);
        let to = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), 5000);
        tcp4_segment(from, to, seq, &[i as u8; 10])
    };
    let packets: Vec<Vec<u8>> = (0..SEGMENTS).map(segment).collect();
    let sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
    let mut roomy: Vec<Vec<u8>> = packets
        .iter()
        .map(|p| {
            let mut buf = vec![0u8; 65535];
            buf[..p.len()].copy_from_slice(p);
            buf
        })
        .collect();
    let before = ns.rx_packets("tt-room0");
    assert_eq!(tun.write_packets(&mut roomy, &sizes, 0).unwrap(), 1);
    assert_eq!(ns.rx_packets("tt-room0") - before, 1);

    let mut storage = packets.clone();
    let mut tight: Vec<&mut [u8]> = storage.iter_mut().map(Vec::as_mut_slice).collect();
    let before = ns.rx_packets("tt-room0");
    assert_eq!(tun.write_packets(&mut tight, &sizes, 0).unwrap(), SEGMENTS);
    assert_eq!(ns.rx_packets("tt-room0") - before, SEGMENTS as u64);
    assert_eq!(storage, packets, "the packets are never changed");
}

/// A device with offloads at 10.77.0.1/24 in a fresh namespace, a UDP socket bound on it and a peer address
/// on its subnet: datagrams written to the device from `peer` to `me` reach `sock`.
struct UdpSink {
    ns: NetNs,
    tun: tun::Tun,
    sock: UdpSocket,
    me: SocketAddrV4,
    peer: SocketAddrV4,
}

impl UdpSink {
    /// `None` (said on stderr) when the kernel has no USO: UDP is then never coalesced.
    fn new(name: &str) -> Option<Self> {
        let ns = NetNs::new();
        let (tun, sock) = addressed(&ns, Builder::new().offload(true), name);
        if !tun.offloads().contains(Offloads::USO4 | Offloads::USO6) {
            eprintln!("no USO on this kernel: UDP is never coalesced");
            return None;
        }
        let me = local_addr(&sock);
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 9301);
        Some(Self {
            ns,
            tun,
            sock,
            me,
            peer,
        })
    }

    /// Room in front of each packet for the virtio-net header.
    const OFFSET: usize = 10;

    /// Datagram `i` of the flow from `peer` to `me` (1000 bytes of `i`), after `OFFSET` bytes of room and
    /// with no spare capacity.
    fn datagram(&self, i: usize) -> Vec<u8> {
        let mut buf = vec![0u8; Self::OFFSET];
        buf.extend_from_slice(&udp4_packet(self.peer, self.me, &[i as u8; 1000]));
        buf.into_boxed_slice().into_vec()
    }

    /// Datagrams `0..count`, each at `OFFSET` in a buffer with room for a 64 KiB packet, and their sizes.
    fn batch_with_room(&self, count: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
        let mut sizes = Vec::new();
        let bufs = (0..count)
            .map(|i| {
                let mut buf = self.datagram(i);
                sizes.push(buf.len() - Self::OFFSET);
                buf.resize(Self::OFFSET + 65535, 0);
                buf
            })
            .collect();
        (bufs, sizes)
    }

    /// Runs `write` (which must write datagrams `0..count` in order), checks that they all arrive intact and
    /// in order, and returns how many writes reached the device (what the write said it made).
    fn writes_to_receive(&self, count: usize, write: impl FnOnce() -> tun::Result<usize>) -> u64 {
        let name = self.tun.name();
        let before = self.ns.rx_packets(&name);
        let said = write().unwrap();
        let writes = self.ns.rx_packets(&name) - before;
        assert_eq!(said as u64, writes);
        let mut buf = [0u8; 2048];
        for i in 0..count {
            let (n, _) = retry_eintr(|| self.sock.recv_from(&mut buf)).unwrap();
            assert_eq!(&buf[..n], &[i as u8; 1000], "datagram {i}");
        }
        writes
    }
}
