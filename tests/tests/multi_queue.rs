//! Multi-queue devices: `Tun::open_queue` adds queues the kernel spreads flows over, none of them loses a
//! datagram, a TCP stream crosses a forwarder with several queues per device intact, closing one queue leaves
//! the others working (and closing a `Tun` of a duplicate fd leaves the original working), a monitored device
//! opens all 256 queues, `open_queue` racing `close` gives a whole queue or none, and a queue attached with
//! other settings than the device's is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tun::{Builder, Error, Offloads, Tun};
use tun_system_tests::traffic::{Forwarder, Tunnel, hundred_mib, tcp_transfer};
use tun_system_tests::{
    NetNs, NetNsTun, addressed, local_addr, retry_eintr, wait_until, with_deadline,
};

/// Destination of the test flows: routed through the device, owned by nobody.
const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Flows (destination ports) per round, and datagrams per flow.
const FLOWS: u16 = 64;
const PER_FLOW: u16 = 8;
/// First destination port of the flows.
const BASE_PORT: u16 = 20_000;

/// The flow (destination port offset) and sequence number of a test datagram read from a device.
fn flow_and_seq(packet: &[u8]) -> Option<(u16, u16)> {
    let sliced = etherparse::SlicedPacket::from_ip(packet).ok()?;
    let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport else {
        return None;
    };
    let flow = udp.destination_port().checked_sub(BASE_PORT)?;
    let seq = udp.payload().get(..2)?;
    (flow < FLOWS).then(|| (flow, u16::from_be_bytes([seq[0], seq[1]])))
}

/// Sends `PER_FLOW` datagrams to each of `FLOWS` ports of `PEER` (flows interleaved) from `sock` while every
/// queue is read on its own thread, until all arrived (at most 10 s); then closes the queues. Returns the
/// queue each flow came out of; panics if a datagram was lost or duplicated, or a flow split over queues.
fn spread(queues: &[Arc<Tun>], sock: &UdpSocket) -> BTreeMap<u16, usize> {
    let total = usize::from(FLOWS) * usize::from(PER_FLOW);
    let arrived = AtomicUsize::new(0);
    let seen: Vec<(usize, u16, u16)> = std::thread::scope(|s| {
        let arrived = &arrived;
        let readers: Vec<_> = queues
            .iter()
            .enumerate()
            .map(|(q, tun)| {
                s.spawn(move || {
                    let mut got = Vec::new();
                    let mut bufs = vec![vec![0u8; 65535]; tun.batch_size()];
                    let mut sizes = vec![0usize; bufs.len()];
                    // Ends when the queue is closed: below, or by the watchdog.
                    with_deadline(tun, Duration::from_secs(20), || {
                        while let Ok(n) = tun.read_packets(&mut bufs, &mut sizes, 0) {
                            for (buf, &len) in bufs.iter().zip(&sizes).take(n) {
                                if let Some((flow, seq)) = flow_and_seq(&buf[..len]) {
                                    got.push((q, flow, seq));
                                    arrived.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    });
                    got
                })
            })
            .collect();
        for seq in 0..PER_FLOW {
            for flow in 0..FLOWS {
                let to = SocketAddrV4::new(PEER, BASE_PORT + flow);
                retry_eintr(|| sock.send_to(&seq.to_be_bytes(), to)).unwrap();
            }
        }
        wait_until(Duration::from_secs(10), || {
            arrived.load(Ordering::Relaxed) >= total
        });
        // A moment for duplicates to show, then the readers end.
        std::thread::sleep(Duration::from_millis(50));
        for tun in queues {
            tun.close().unwrap();
        }
        readers
            .into_iter()
            .flat_map(|r| r.join().expect("a reader panicked"))
            .collect()
    });
    let distinct: BTreeSet<(u16, u16)> = seen.iter().map(|&(_, f, s)| (f, s)).collect();
    assert_eq!(distinct.len(), total, "datagrams lost");
    assert_eq!(seen.len(), total, "datagrams duplicated");
    let mut queue_of = BTreeMap::new();
    for &(q, flow, _) in &seen {
        let first = *queue_of.entry(flow).or_insert(q);
        assert_eq!(first, q, "flow {flow} came out of queues {first} and {q}");
    }
    queue_of
}

/// The queues of the device `name` in `ns`, built with `builder` (multi-queue) and `count - 1` more opened
/// from the first, plus a UDP socket in the namespace, the device addressed and up.
fn queues(ns: &NetNs, builder: Builder, name: &str, count: usize) -> (Vec<Tun>, UdpSocket) {
    let (first, sock) = addressed(ns, builder.multi_queue(true), name);
    let mut all = vec![];
    for _ in 1..count {
        all.push(first.open_queue().expect("open_queue"));
    }
    all.insert(0, first);
    (all, sock)
}

/// Four queues of a fresh device `name`, shareable with reader threads.
fn four(ns: &NetNs, name: &str, offload: bool) -> (Vec<Arc<Tun>>, UdpSocket) {
    let (all, sock) = queues(ns, Builder::new().offload(offload), name, 4);
    (all.into_iter().map(Arc::new).collect(), sock)
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn flows_spread_over_the_queues_and_no_datagram_is_lost() {
    for (i, offload) in [true, false].into_iter().enumerate() {
        let ns = NetNs::new();
        let (queues, sock) = four(&ns, &format!("tt-mq{i}"), offload);
        assert!(queues.iter().all(|q| q.has_vnet_hdr() == offload));
        assert!(queues.iter().all(|q| q.offloads() == queues[0].offloads()));
        assert!(
            queues
                .iter()
                .all(|q| q.batch_size() == queues[0].batch_size())
        );
        let queue_of = spread(&queues, &sock);
        let used: BTreeSet<usize> = queue_of.values().copied().collect();
        // 64 flows hashed over 4 queues: all on one would be a 1 in 2^126 chance.
        assert!(used.len() >= 2, "every flow on queue(s) {used:?}");
    }
}

/// A child process that holds `files` (two at most) as its standard input and output, as a child being forked
/// holds every fd of its parent until it executes its program; killed and reaped on drop.
struct ChildHolding(Child);

impl ChildHolding {
    fn new(files: Vec<OwnedFd>) -> ChildHolding {
        assert!(files.len() <= 2, "a child holds two files here");
        let mut files = files.into_iter();
        let mut command = Command::new("sleep");
        command.arg("60").stderr(Stdio::null());
        command.stdin(files.next().map_or_else(Stdio::null, Stdio::from));
        command.stdout(files.next().map_or_else(Stdio::null, Stdio::from));
        // The files' descriptors here close once the child has its own.
        ChildHolding(command.spawn().expect("spawn sleep"))
    }
}

impl Drop for ChildHolding {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn closing_one_queue_leaves_the_others_working() {
    let ns = NetNs::new();
    // Monitored: the monitor's hold on the device must not keep a closed queue attached, where the datagrams
    // hashed to it would be lost.
    let (mut queues, sock) = four(&ns, "tt-mqcl", true);
    assert!(queues[0].is_monitored());
    assert_eq!(ns.attached_queues("tt-mqcl"), 4);
    // Nor must another process holding a closed queue's file: a child being forked at that moment holds every
    // fd until it executes its program. This one holds the two queues' files for as long as it lives.
    let files = queues
        .iter()
        .take(2)
        .map(|queue| queue.as_fd().try_clone_to_owned().unwrap())
        .collect();
    let child = ChildHolding::new(files);
    for gone in queues.drain(..2) {
        gone.close().unwrap();
    }
    assert_eq!(ns.attached_queues("tt-mqcl"), 2);
    let queue_of = spread(&queues, &sock);
    drop(child);
    assert_eq!(queue_of.len(), usize::from(FLOWS));
    // spread() closed the last two: the device is gone with its last queue.
    assert!(
        wait_until(Duration::from_secs(5), || ns.link("tt-mqcl").is_none()),
        "the device outlived its last queue"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tcp_through_a_multi_queue_forwarder_arrives_sha256_identical() {
    let (data, digest) = hundred_mib();
    let tunnel = Tunnel::with_forwarder(true, Forwarder::Queues(2));
    let received = tcp_transfer(&tunnel, false, data, Duration::from_secs(60)).expect("transfer");
    let stats = tunnel.stop();
    eprintln!(
        "a->b {:?} per queue {:?}",
        stats.a_to_b, stats.a_to_b_per_queue
    );
    assert_eq!(received.bytes, data.len() as u64);
    assert_eq!(&received.sha256, digest);
    stats.a_to_b.assert_no_errors();
    assert_eq!(stats.a_to_b_per_queue.len(), 2);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn queue_with_other_settings_than_the_device_is_refused() {
    let ns = NetNs::new();
    let with = Builder::new()
        .name("tt-mqx0")
        .multi_queue(true)
        .offload(true);
    let without = Builder::new().name("tt-mqx1").multi_queue(true);
    let (q1, sock) = addressed(&ns, with.clone(), "tt-mqx0");
    let plain = ns.tun(without.clone()).unwrap();
    for (builder, device) in [(with.offload(false), true), (without.offload(true), false)] {
        match ns.tun(builder) {
            Err(Error::SettingsMismatch {
                setting: "offload",
                device: d,
                asked,
                ..
            }) => assert_eq!((d, asked), (device, !device)),
            other => panic!("{other:?}"),
        }
    }
    // A queue with the device's settings attaches.
    let q2 = ns
        .tun(
            Builder::new()
                .name("tt-mqx0")
                .multi_queue(true)
                .offload(true),
        )
        .unwrap();
    assert!(q2.has_vnet_hdr());
    assert_eq!(q2.offloads(), q1.offloads());
    assert!(!plain.has_vnet_hdr());
    // The refused build changed nothing device-wide: q1 still gets UDP super-packets where the kernel has USO.
    drop(q2);
    // Neither q2 nor the refused queues stay attached, where datagrams hashed to them would be lost.
    assert_eq!(ns.attached_queues("tt-mqx0"), 1);
    if q1.offloads().contains(Offloads::USO4) {
        tun_test_support::sockopt::set_udp_segment(&sock, 100).unwrap();
        let to = SocketAddrV4::new(PEER, 4000);
        retry_eintr(|| sock.send_to(&[7u8; 400], to)).unwrap();
        let from = local_addr(&sock);
        let mut bufs = vec![vec![0u8; 65535]; q1.batch_size()];
        let mut sizes = vec![0usize; bufs.len()];
        let n = with_deadline(&q1, Duration::from_secs(10), || {
            q1.read_packets(&mut bufs, &mut sizes, 0)
        })
        .unwrap();
        assert_eq!(n, 4, "one USO super-packet of 4 datagrams from {from}");
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn open_queue_on_a_single_queue_device_is_an_error() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-mqsq")).unwrap();
    assert!(matches!(tun.open_queue(), Err(Error::NotMultiQueue { .. })));
    tun.close().unwrap();
    let mq = ns
        .tun(Builder::new().name("tt-mqsq2").multi_queue(true))
        .unwrap();
    mq.close().unwrap();
    assert!(matches!(mq.open_queue(), Err(Error::Closed)));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn dropping_a_tun_of_a_duplicate_fd_leaves_the_original_queue_working() {
    let ns = NetNs::new();
    // One queue: were it detached, the device would have none to steer to, and every datagram would be lost.
    let (queue, sock) = addressed(&ns, Builder::new().multi_queue(true), "tt-mqdup");
    // Room for every datagram of the round in the one queue (500 by default).
    ns.ip(&["link", "set", "tt-mqdup", "txqueuelen", "1024"]);
    for monitored in [true, false] {
        let dup = queue.as_fd().try_clone_to_owned().unwrap();
        let other = Builder::new()
            .monitor(monitored)
            .build_from_fd(dup)
            .unwrap();
        if monitored {
            drop(other);
        } else {
            other.close().unwrap();
        }
        assert_eq!(ns.attached_queues("tt-mqdup"), 1);
    }
    let queue_of = spread(&[Arc::new(queue)], &sock);
    assert_eq!(queue_of.len(), usize::from(FLOWS));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_monitored_device_opens_all_256_queues_and_its_monitor_keeps_reporting() {
    /// The kernel's limit of queues per device (MAX_TAP_QUEUES).
    const MAX_QUEUES: usize = 256;
    let ns = NetNs::new();
    let first = ns
        .tun(Builder::new().name("tt-mq256").multi_queue(true))
        .unwrap();
    assert!(first.is_monitored());
    let events = first.events();
    let more: Vec<Tun> = (2..=MAX_QUEUES)
        .map(|n| {
            first
                .open_queue()
                .unwrap_or_else(|e| panic!("queue {n} of {MAX_QUEUES}: {}", e.report()))
        })
        .collect();
    assert_eq!(ns.attached_queues("tt-mq256"), MAX_QUEUES);
    match first.open_queue() {
        Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::E2BIG)),
        other => panic!("queue {} of {MAX_QUEUES}: {other:?}", MAX_QUEUES + 1),
    }
    ns.ip(&["link", "set", "tt-mq256", "up"]);
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::Running)
    );
    // Closing a queue frees its place.
    more[0].close().unwrap();
    assert_eq!(ns.attached_queues("tt-mq256"), MAX_QUEUES - 1);
    drop(first.open_queue().expect("the place of a closed queue"));
    ns.ip(&["link", "set", "tt-mq256", "mtu", "1300"]);
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::MtuUpdate(1300))
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn open_queue_racing_close_gives_a_whole_queue_or_closed() {
    /// Races run, at most (the time bound below may end them first).
    const RACES: usize = 2000;
    let ns = NetNs::new();
    // Persistent, so that each race attaches a fresh monitored `Tun` without creating the device again.
    let builder = Builder::new().name("tt-mqrace").multi_queue(true);
    drop(ns.tun(builder.clone().persist(true)).unwrap());
    let (mut opened, mut refused) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    for race in 0..RACES {
        if Instant::now() > deadline {
            break;
        }
        // The only queue: closing it stops the device's monitor, unless the new queue was counted first.
        let tun = ns.tun(builder.clone()).unwrap();
        let start = Barrier::new(2);
        let result = std::thread::scope(|s| {
            let opener = s.spawn(|| {
                start.wait();
                tun.open_queue()
            });
            start.wait();
            tun.close().unwrap();
            opener.join().expect("the opener panicked")
        });
        match result {
            Ok(queue) => {
                assert!(
                    !queue.events().is_closed(),
                    "race {race}: a queue whose device monitor has stopped"
                );
                assert!(queue.is_monitored() && !queue.is_closed());
                opened += 1;
            }
            Err(Error::Closed) => refused += 1,
            Err(e) => panic!("race {race}: neither a queue nor Closed: {}", e.report()),
        }
    }
    eprintln!("open_queue racing close: {opened} queue(s) opened, {refused} refused");
    assert!(
        opened + refused >= 500,
        "only {} races run",
        opened + refused
    );
    ns.ip(&["link", "del", "tt-mqrace"]);
}
