//! Helpers of the whole-system privileged tests, on the workspace's test support.
//!
//! Each test makes its own [`NetNs`] (removed again when it drops, whatever happens), creates its devices
//! inside it with [`NetNs::tun`], configures them through the library (addresses, routes, up) or with
//! [`NetNs::ip`] for what the library does not do, and checks what the kernel says with [`NetNs::link`].
//! Traffic through a forwarder uses [`traffic::Tunnel`]; the `tun` crate's examples run as programs through
//! [`examples`]. Nothing here touches the host's own interfaces, routes or firewall.

pub mod examples;
pub mod traffic;

use std::sync::mpsc;
use std::time::Duration;

use tun::Tun;

pub use tun_test_support::packets::{
    is_udp4_to_port, sizes_after, tcp4_segment, udp4_checksum_ok, udp4_packet, with_room,
};
pub use tun_test_support::proc::{fd_count, settled_thread_count, thread_count};
pub use tun_test_support::retry_eintr;
pub use tun_test_support::{Link, NetNs, flaps, ipconfig, runtime, wait_until};

/// Threads of this process whose name is `name`.
pub fn threads_named(name: &str) -> usize {
    tun_test_support::proc::thread_names(std::process::id())
        .iter()
        .filter(|n| *n == name)
        .count()
}

/// Asserts that the process's fd and thread counts return to `fds` and `threads`, waiting (at most 5 s) for
/// that: a joined thread may linger in /proc/self/task for a moment while the kernel reaps it. `what` names
/// the moment in the failure message.
pub fn assert_back_to(what: &str, fds: usize, threads: usize) {
    let settled = wait_until(Duration::from_secs(5), || {
        fd_count() == fds && thread_count() == threads
    });
    assert!(
        settled,
        "{what}: threads {threads} -> {}, fds {fds} -> {}",
        thread_count(),
        fd_count()
    );
}

/// Runs `f` with a watchdog that closes `tun` if `f` has not returned within `timeout`, so a read that would
/// block forever ends with `Error::Closed` instead of hanging the test run.
pub fn with_deadline<T>(tun: &Tun, timeout: Duration, f: impl FnOnce() -> T) -> T {
    let (done, finished) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if finished.recv_timeout(timeout).is_err() {
                let _ = tun.close();
            }
        });
        let result = f();
        let _ = done.send(());
        result
    })
}

/// Reads packets from `tun` until one satisfies `wanted` (at most 1000 packets, at most `timeout`); returns it.
/// `None` when none came in time.
pub fn read_until(
    tun: &Tun,
    timeout: Duration,
    mut wanted: impl FnMut(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    with_deadline(tun, timeout, || {
        let batch = tun.batch_size();
        let mut bufs = vec![vec![0u8; 65535]; batch];
        let mut sizes = vec![0usize; batch];
        for _ in 0..1000 {
            let n = tun.read_packets(&mut bufs, &mut sizes, 0).ok()?;
            for (buf, &size) in bufs.iter().zip(&sizes).take(n) {
                if wanted(&buf[..size]) {
                    return Some(buf[..size].to_vec());
                }
            }
        }
        None
    })
}

/// A device `name` (built by `builder`) up with 10.77.0.1/24 in `ns`, and a UDP socket bound to
/// 10.77.0.1 (any port) there, reads timing out after 10 s.
pub fn addressed(ns: &NetNs, builder: tun::Builder, name: &str) -> (Tun, std::net::UdpSocket) {
    let tun = ns.tun(builder.name(name)).unwrap();
    ns.address(&tun, std::net::Ipv4Addr::new(10, 77, 0, 1).into(), 24);
    let local = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(10, 77, 0, 1), 0);
    let sock = ns.run_in(|| std::net::UdpSocket::bind(local).unwrap());
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (tun, sock)
}

/// The IPv4 address `sock` is bound to.
pub fn local_addr(sock: &std::net::UdpSocket) -> std::net::SocketAddrV4 {
    match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    }
}

/// [`Tun::write_packets`] of buffers that each end with their packet (made with [`with_room`]).
pub fn write_framed<B: AsMut<[u8]> + AsRef<[u8]>>(
    tun: &Tun,
    bufs: &mut [B],
    offset: usize,
) -> tun::Result<usize> {
    let sizes = sizes_after(bufs, offset);
    tun.write_packets(bufs, &sizes, offset)
}

/// [`AsyncTun::write_packets`](tun::AsyncTun::write_packets) of buffers that each end with their packet.
pub async fn write_framed_async<B: AsMut<[u8]> + AsRef<[u8]>>(
    tun: &tun::AsyncTun,
    bufs: &mut [B],
    offset: usize,
) -> tun::Result<usize> {
    let sizes = sizes_after(bufs, offset);
    tun.write_packets(bufs, &sizes, offset).await
}
