//! The data path end to end: bulk transfers from namespace A to namespace B through tunA -> library
//! forwarder -> tunB arrive byte-identical (SHA-256 at both ends), with offloads (TCP, UDP GSO) and without.

use std::time::{Duration, Instant};

use tun_system_tests::traffic::{
    Forwarder, Tunnel, UdpSettings, hundred_mib, tcp_transfer, udp_gso_transfer,
};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Sends 100 MiB over TCP through a tunnel and checks both digests and the forwarder's record.
fn tcp_through(offload: bool, v6: bool) {
    tcp_through_with(Forwarder::Threads(None), offload, v6);
}

/// [`tcp_through`] with the forwarder chosen.
fn tcp_through_with(forwarder: Forwarder, offload: bool, v6: bool) {
    let (data, digest) = hundred_mib();
    let tunnel = Tunnel::with_forwarder(offload, forwarder);
    let started = Instant::now();
    let received = tcp_transfer(&tunnel, v6, data, TIMEOUT).expect("transfer");
    let elapsed = started.elapsed();
    let stats = tunnel.stop();
    eprintln!("100 MiB in {elapsed:?}; a->b {:?}", stats.a_to_b);
    assert_eq!(received.bytes, data.len() as u64);
    assert_eq!(&received.sha256, digest);
    stats.a_to_b.assert_no_errors();
    stats.b_to_a.assert_no_errors();
    // A batch fitted to its device holds every packet read from it: the MTU did not change, so the buffers
    // never had to grow.
    if offload {
        // The kernel handed over TSO super-packets, and the library split them.
        assert!(stats.a_to_b.multi_packet_reads > 0, "{:?}", stats.a_to_b);
    } else {
        assert_eq!(stats.a_to_b.multi_packet_reads, 0, "{:?}", stats.a_to_b);
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_v4_with_offloads_arrives_sha256_identical() {
    tcp_through(true, false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_v6_with_offloads_arrives_sha256_identical() {
    tcp_through(true, true);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_v4_without_offloads_arrives_sha256_identical() {
    tcp_through(false, false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_v4_through_async_devices_on_the_multi_thread_runtime_arrives_sha256_identical() {
    tcp_through_with(Forwarder::Tokio { multi_thread: true }, true, false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_v6_through_async_devices_on_one_thread_arrives_sha256_identical() {
    tcp_through_with(
        Forwarder::Tokio {
            multi_thread: false,
        },
        true,
        true,
    );
}

/// Sends 100 MiB in UDP datagrams with UDP_SEGMENT through a tunnel with offloads.
fn udp_gso_through(v6: bool) {
    let (data, digest) = hundred_mib();
    let tunnel = Tunnel::new(true, None);
    let started = Instant::now();
    let transfer = udp_gso_transfer(&tunnel, v6, data, UdpSettings::default()).expect("transfer");
    let elapsed = started.elapsed();
    let stats = tunnel.stop();
    eprintln!(
        "100 MiB in {elapsed:?}: sent {} datagrams ({} again), {} gaps; a->b {:?}",
        transfer.sent, transfer.resent, transfer.gaps, stats.a_to_b
    );
    assert_eq!(transfer.received.bytes, data.len() as u64);
    assert_eq!(&transfer.received.sha256, digest);
    assert!(
        stats.a_to_b.write_errors.is_empty(),
        "{:?}",
        stats.a_to_b.write_errors
    );
    // The kernel handed over USO super-packets (16 datagrams per send), and the library split them.
    assert!(stats.a_to_b.multi_packet_reads > 0, "{:?}", stats.a_to_b);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_gso_v4_with_offloads_arrives_sha256_identical() {
    udp_gso_through(false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_gso_v6_with_offloads_arrives_sha256_identical() {
    udp_gso_through(true);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn one_buffer_per_read_still_delivers_every_segment_of_gso_super_packets() {
    // bufs.len() == 1: every 16-datagram super-packet needs 16 reads; the device must hand out the rest of
    // a split super-packet on the next calls instead of dropping it. The window (32 datagrams in flight)
    // fits the receiving socket's buffer, so no datagram may go missing anywhere: a gap means a drop.
    let (data, _) = hundred_mib();
    let data = &data[..16 << 20];
    let tunnel = Tunnel::new(true, Some(1));
    let settings = UdpSettings {
        window: 32,
        ..UdpSettings::default()
    };
    let transfer = udp_gso_transfer(&tunnel, false, data, settings).expect("transfer");
    let stats = tunnel.stop();
    eprintln!(
        "sent {} datagrams ({} again), {} gaps; a->b {:?}",
        transfer.sent, transfer.resent, transfer.gaps, stats.a_to_b
    );
    assert_eq!(transfer.received.bytes, data.len() as u64);
    assert_eq!(
        transfer.received.sha256,
        tun_system_tests::traffic::sha256_hex(data)
    );
    assert_eq!(transfer.gaps, 0, "datagrams were dropped on the way");
    assert_eq!(
        stats.a_to_b.multi_packet_reads, 0,
        "a one-buffer batch returned several packets"
    );
    stats.a_to_b.assert_no_errors();
}
