//! How a blocking read waits: a sparse flow (each packet arriving to an empty queue, as a TCP stream's ACKs
//! do) costs one `read()` per packet, not a failed `read()` and then the wait and the read.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use tun::Builder;
use tun_system_tests::{NetNs, addressed};

/// `read(2)`-family calls (`syscr` in `/proc/thread-self/io`) made so far by the calling thread.
fn reads_by_this_thread() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscr:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscr in /proc/thread-self/io")
}

fn sparse_packets_cost_one_read_each(offload: bool) {
    const PACKETS: u64 = 20;
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(offload).monitor(false), "trw0");
    tun.set_up(true).unwrap();
    let peer = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 9);
    let sender = std::thread::spawn(move || {
        for i in 0..PACKETS {
            // Each datagram finds the reader asleep on an empty queue.
            std::thread::sleep(Duration::from_millis(15));
            sock.send_to(&i.to_be_bytes(), peer).unwrap();
        }
    });
    let mut bufs = vec![vec![0u8; 65535 + 10]; tun.batch_size()];
    let mut sizes = vec![0usize; bufs.len()];
    let mut udp = 0;
    let before = reads_by_this_thread();
    let mut first = true;
    let mut reads_from_the_second = 0;
    while udp < PACKETS {
        let n = tun.read_packets(&mut bufs, &mut sizes, 10).unwrap();
        if first {
            // The first read found the queue empty on its own: count from the second packet on.
            reads_from_the_second = reads_by_this_thread();
            first = false;
        }
        udp += bufs[..n]
            .iter()
            .zip(&sizes)
            .filter(|(b, s)| **s >= 28 && b[10 + 9] == 17)
            .count() as u64;
    }
    let after = reads_by_this_thread();
    sender.join().unwrap();
    assert!(after > before, "the reads were counted");
    // Other packets (IPv6 router solicitations, say) may come too; each costs a read as well, so allow a few.
    let per_packet = (after - reads_from_the_second) as f64 / (PACKETS - 1) as f64;
    assert!(
        per_packet < 1.5,
        "{per_packet:.2} reads per sparse packet (two would mean a failed read before every wait)"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn sparse_packets_cost_one_read_each_with_offloads() {
    sparse_packets_cost_one_read_each(true);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn sparse_packets_cost_one_read_each_without_offloads() {
    sparse_packets_cost_one_read_each(false);
}
