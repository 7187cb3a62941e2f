//! The data path under abuse: malformed packets written to a device are refused one by one without
//! hurting the rest of the batch or later traffic, and an MTU change in the middle of a transfer does not
//! stop it.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use tun::Error;
use tun_system_tests::traffic::{
    A4, B4, DEV_A, DEV_B, Tunnel, hundred_mib, sha256_hex, tcp_transfer,
};
use tun_system_tests::{retry_eintr, udp4_packet, with_room, write_framed};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Room for the virtio-net header in front of each packet.
const OFFSET: usize = 10;

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn garbage_truncated_and_oversized_packets_are_refused_and_the_device_keeps_working() {
    let tunnel = Tunnel::new(true, None);
    let port = 47_001;
    let socket = tunnel
        .b
        .run_in(|| UdpSocket::bind(SocketAddr::from((B4, port))))
        .expect("bind in B");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let good = udp4_packet(
        SocketAddrV4::new(A4, 40_000),
        SocketAddrV4::new(B4, port),
        b"still here",
    );
    // Not IP at all: version nibble 15.
    let garbage = vec![0xff; 100];
    // A valid IPv4 header whose total length promises more than the buffer holds.
    let mut truncated = good.clone();
    truncated.truncate(24);
    // Longer than any IP packet can be.
    let mut oversized = udp4_packet(
        SocketAddrV4::new(A4, 40_000),
        SocketAddrV4::new(B4, port),
        &[7; 1000],
    );
    oversized.resize(70_000, 0);
    let mut batch = vec![
        with_room(OFFSET, &garbage),
        with_room(OFFSET, &good),
        with_room(OFFSET, &truncated),
        with_room(OFFSET, &oversized),
    ];
    match write_framed(tunnel.tun_b(), &mut batch, OFFSET) {
        Err(Error::Batch(batch)) => {
            assert_eq!(batch.written, 1, "{batch:?}");
            let failed: Vec<usize> = batch.failed.iter().map(|p| p.index).collect();
            assert_eq!(failed, [0, 2, 3], "{batch:?}");
        }
        other => panic!("expected a batch error for packets 0, 2 and 3, got {other:?}"),
    }
    let mut buf = [0u8; 64];
    let n = retry_eintr(|| socket.recv(&mut buf)).expect("the good packet of the batch arrives");
    assert_eq!(&buf[..n], b"still here");
    // Each bad packet alone is an error too, and the device carries traffic afterwards.
    for bad in [&garbage, &truncated, &oversized] {
        let mut one = [with_room(OFFSET, bad)];
        assert!(
            write_framed(tunnel.tun_b(), &mut one, OFFSET).is_err(),
            "{} bytes accepted",
            bad.len()
        );
    }
    let (data, _) = hundred_mib();
    let data = &data[..8 << 20];
    let received =
        tcp_transfer(&tunnel, false, data, TIMEOUT).expect("traffic after the bad packets");
    assert_eq!(received.sha256, sha256_hex(data));
    let stats = tunnel.stop();
    assert!(
        stats.a_to_b.write_errors.is_empty(),
        "{:?}",
        stats.a_to_b.write_errors
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn mtu_changes_while_traffic_flows_do_not_stop_it() {
    let tunnel = Tunnel::new(true, None);
    let (data, _) = hundred_mib();
    let data = &data[..64 << 20];
    let expected = sha256_hex(data);
    let changes = std::thread::scope(|scope| {
        let transfer = scope.spawn(|| tcp_transfer(&tunnel, false, data, TIMEOUT));
        // Lower, raise above the original and restore, on both ends, over and over while the transfer runs
        // (bounded: at most 400 changes).
        let mut changes = 0;
        while !transfer.is_finished() && changes < 400 {
            let mtu = ["1280", "1400", "9000", "1500"][changes % 4];
            tunnel.a.ip(&["link", "set", "dev", DEV_A, "mtu", mtu]);
            tunnel.b.ip(&["link", "set", "dev", DEV_B, "mtu", mtu]);
            changes += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        let received = transfer
            .join()
            .expect("the transfer thread")
            .expect("transfer across MTU changes");
        assert_eq!(received.bytes, data.len() as u64);
        assert_eq!(received.sha256, expected);
        changes
    });
    eprintln!("{changes} MTU changes during the transfer");
    assert!(changes >= 1, "the transfer ended before any MTU change");
    tunnel.a.ip(&["link", "set", "dev", DEV_A, "mtu", "1500"]);
    assert_eq!(tunnel.a.link(DEV_A).map(|l| l.mtu), Some(1500));
    let stats = tunnel.stop();
    assert!(
        stats.a_to_b.read_errors.is_empty(),
        "{:?}",
        stats.a_to_b.read_errors
    );
}
