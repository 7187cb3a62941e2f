//! `AsyncTun` on tokio against real devices, each test in namespaces it creates: echo with and without
//! offloads on both runtime flavours, close waking pending futures, cancelled reads losing nothing, a reader
//! and a writer task on one device (the 100 MiB TCP transfers through async devices are in `forward.rs`).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tun::{AsyncTun, Builder, Error, Event, PacketBatch};
use tun_system_tests::{
    NetNs, NetNsTun, addressed, local_addr, runtime, udp4_packet, write_framed_async,
};

/// The peer address the tests' datagrams are sent to: routed through the device (10.77.0.0/24).
const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 7);

/// Bounds every wait of these tests.
const WITHIN: Duration = Duration::from_secs(20);

/// The payload of datagram `i`: its number, then filler up to `len` bytes.
fn payload(i: u32, len: usize) -> Vec<u8> {
    let mut p = vec![(i % 251) as u8; len.max(4)];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p
}

/// The datagram's number, if `packet` is IPv4 UDP to `PEER` from anything.
fn number_of(packet: &[u8]) -> Option<u32> {
    let sliced = etherparse::SlicedPacket::from_ip(packet).ok()?;
    let Some(etherparse::TransportSlice::Udp(udp)) = &sliced.transport else {
        return None;
    };
    if udp.destination_port() != PEER.port() {
        return None;
    }
    let bytes = udp.payload().get(..4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// The reply to a UDP packet to `PEER`: the same payload from `PEER` back to its sender.
fn echo_of(packet: &[u8]) -> Option<Vec<u8>> {
    let sliced = etherparse::SlicedPacket::from_ip(packet).ok()?;
    let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Udp(udp))) =
        (&sliced.net, &sliced.transport)
    else {
        return None;
    };
    let from = SocketAddrV4::new(ip.header().source_addr(), udp.source_port());
    Some(udp4_packet(PEER, from, udp.payload()))
}

/// Sends `count` datagrams of `len` bytes from `sock` to `PEER` and returns the numbers of the echoes that
/// came back (the socket's read timeout bounds the wait).
fn send_and_collect(sock: &UdpSocket, count: u32, len: usize) -> BTreeSet<u32> {
    let mut echoed = BTreeSet::new();
    let mut buf = vec![0u8; 65536];
    for i in 0..count {
        sock.send_to(&payload(i, len), PEER).unwrap();
        // Keep at most a few in flight: the device's queue is short without a reader yet.
        if i % 8 == 7 || i + 1 == count {
            while echoed.len() < (i + 1) as usize {
                match tun_system_tests::retry_eintr(|| sock.recv(&mut buf)) {
                    Ok(n) => {
                        let number = u32::from_be_bytes(buf[..4].try_into().unwrap());
                        assert_eq!(buf[..n], payload(number, len), "echo of {number}");
                        echoed.insert(number);
                    }
                    Err(e) => panic!("echo {} of {count} missing: {e}", echoed.len()),
                }
            }
        }
    }
    echoed
}

/// Echoes every datagram to `PEER` back through `tun` until it is closed: batches of packets in, replies
/// out as one batch. Returns how many it echoed.
async fn echo_batches(tun: &AsyncTun) -> u64 {
    let mut batch = PacketBatch::for_device(tun.get_ref());
    let mut replies: Vec<Vec<u8>> = Vec::new();
    let mut echoed = 0;
    loop {
        match batch.read_from_async(tun).await {
            Ok(_) => {}
            Err(Error::Closed) => return echoed,
            Err(e) => panic!("read: {e}"),
        }
        replies.clear();
        for packet in batch.packets() {
            if let Some(reply) = echo_of(packet) {
                let mut buf = vec![0u8; 10];
                buf.extend_from_slice(&reply);
                replies.push(buf);
            }
        }
        echoed += replies.len() as u64;
        if !replies.is_empty() {
            match write_framed_async(tun, &mut replies, 10).await {
                Ok(n) => assert_eq!(n, replies.len()),
                Err(Error::Closed) => return echoed,
                Err(e) => panic!("write: {e}"),
            }
        }
    }
}

/// Echoes one packet at a time with `recv` / `send`.
async fn echo_single(tun: &AsyncTun) -> u64 {
    let mut buf = vec![0u8; 65535];
    let mut echoed = 0;
    loop {
        let n = match tun.recv(&mut buf).await {
            Ok(n) => n,
            Err(Error::Closed) => return echoed,
            Err(e) => panic!("recv: {e}"),
        };
        if let Some(reply) = echo_of(&buf[..n]) {
            assert_eq!(tun.send(&reply).await.expect("send"), reply.len());
            echoed += 1;
        }
    }
}

/// A device up with 10.77.0.1/24 and a socket on it, echo on an `AsyncTun` on the chosen runtime.
fn echo(offload: bool, multi_thread: bool, single: bool) {
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(offload), "tae0");
    tun.set_up(true).unwrap();
    let rt = runtime(multi_thread);
    let tun = Arc::new(rt.block_on(async { AsyncTun::new(tun) }).unwrap());
    let task = {
        let tun = Arc::clone(&tun);
        rt.spawn(async move {
            if single {
                echo_single(&tun).await
            } else {
                echo_batches(&tun).await
            }
        })
    };
    let runner = std::thread::spawn(move || rt.block_on(task));
    let echoed = send_and_collect(&sock, 200, 1200);
    tun.close().unwrap();
    let count = runner.join().unwrap().unwrap();
    assert_eq!(echoed, (0..200).collect());
    assert_eq!(count, 200);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_echo_with_offloads_on_the_current_thread_runtime() {
    echo(true, false, false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_echo_with_offloads_on_the_multi_thread_runtime() {
    echo(true, true, false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn udp_echo_without_offloads_on_both_runtimes() {
    echo(false, false, false);
    echo(false, true, false);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn single_packet_recv_and_send_echo_with_and_without_offloads() {
    echo(true, true, true);
    echo(false, false, true);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn close_wakes_pending_reads_and_later_calls_are_closed() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tac0").offload(true)).unwrap();
    let rt = runtime(true);
    let tun = Arc::new(rt.block_on(async { AsyncTun::new(tun) }).unwrap());
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let tun = Arc::clone(&tun);
            rt.spawn(async move {
                let mut buf = vec![0u8; 65535];
                tun.recv(&mut buf).await
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert!(readers.iter().all(|r| !r.is_finished()));
    let closed_at = Instant::now();
    // From a plain thread, as a signal handler's thread would.
    let closer = Arc::clone(&tun);
    std::thread::spawn(move || closer.close().unwrap())
        .join()
        .unwrap();
    for reader in readers {
        let result = rt.block_on(async { tokio::time::timeout(WITHIN, reader).await });
        assert!(matches!(result, Ok(Ok(Err(Error::Closed)))), "{result:?}");
    }
    eprintln!("close woke the readers in {:?}", closed_at.elapsed());
    // The epoll instances the AsyncTun still holds keep nothing of the device: it goes as close() releases it.
    assert!(
        tun_system_tests::wait_until(WITHIN, || !ns.has_link("tac0")),
        "tac0 outlives close()"
    );
    rt.block_on(async {
        let mut bufs = vec![vec![0u8; 1500]];
        assert!(matches!(
            tun.read_packets(&mut bufs, &mut [0], 0).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            write_framed_async(&tun, &mut bufs, 10).await,
            Err(Error::Closed)
        ));
        assert!(matches!(tun.send(&[0x45; 20]).await, Err(Error::Closed)));
    });
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn dropped_reads_lose_no_segment_of_a_super_packet() {
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(true), "tax0");
    tun.set_up(true).unwrap();
    // Each send is one UDP_SEGMENT super-packet of 8 datagrams, read one packet at a time: most of a split
    // waits in the device across reads, while other read futures are dropped before they got a packet.
    const PER_SEND: u32 = 8;
    const SENDS: u32 = 40;
    const LEN: usize = 1000;
    tun_test_support::sockopt::set_udp_segment(&sock, LEN as u16).unwrap();
    let rt = runtime(false);
    let tun = rt.block_on(async { AsyncTun::new(tun) }).unwrap();
    // Sent a little at a time, so that reads find the device empty as often as not.
    let sender = std::thread::spawn(move || {
        for s in 0..SENDS {
            let data: Vec<u8> = (0..PER_SEND)
                .flat_map(|k| payload(s * PER_SEND + k, LEN))
                .collect();
            sock.send_to(&data, PEER).unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
    });
    let expected = SENDS * PER_SEND;
    let (got, cancelled) = rt.block_on(async {
        let mut got = Vec::new();
        let mut cancelled = 0u32;
        let deadline = Instant::now() + WITHIN;
        let mut bufs = [vec![0u8; 65535]];
        let mut sizes = [0usize];
        let mut attempt = 0u32;
        while got.len() < expected as usize && Instant::now() < deadline {
            // Reads are dropped after a single poll or after a millisecond, whether or not a packet came.
            attempt += 1;
            let read = tun.read_packets(&mut bufs, &mut sizes, 0);
            let packet = if attempt.is_multiple_of(2) {
                tokio::select! {
                    biased;
                    read = read => Some(read),
                    () = std::future::ready(()) => None,
                }
            } else {
                tokio::time::timeout(Duration::from_millis(1), read)
                    .await
                    .ok()
            };
            match packet {
                Some(Ok(1)) => got.extend(number_of(&bufs[0][..sizes[0]])),
                Some(other) => panic!("read: {other:?}"),
                None => {
                    cancelled += 1;
                    tokio::task::yield_now().await;
                }
            }
        }
        (got, cancelled)
    });
    sender.join().unwrap();
    assert_eq!(
        got,
        (0..expected).collect::<Vec<_>>(),
        "in order, none lost"
    );
    assert!(cancelled > 0);
    eprintln!("{expected} datagrams read with {cancelled} reads dropped on the way");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_reader_task_and_a_writer_task_share_one_device() {
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(true), "taw0");
    tun.set_up(true).unwrap();
    let to_socket = local_addr(&sock);
    let rt = runtime(true);
    let tun = Arc::new(rt.block_on(async { AsyncTun::new(tun) }).unwrap());
    const COUNT: u32 = 300;
    let reader = {
        let tun = Arc::clone(&tun);
        rt.spawn(async move {
            let mut seen = BTreeSet::new();
            let mut batch = PacketBatch::for_device(tun.get_ref());
            while seen.len() < COUNT as usize {
                batch.read_from_async(&tun).await.expect("read");
                seen.extend(batch.packets().filter_map(number_of));
            }
            seen
        })
    };
    let writer = {
        let tun = Arc::clone(&tun);
        rt.spawn(async move {
            for i in 0..COUNT {
                let mut packet = vec![0u8; 10];
                packet.extend(udp4_packet(PEER, to_socket, &payload(i, 200)));
                write_framed_async(&tun, &mut [packet], 10)
                    .await
                    .expect("write");
                // Paced, so that the socket's receive buffer (about 200 KiB) never overflows while the
                // test thread is descheduled on a busy machine.
                if i.is_multiple_of(16) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    // Send while the writer writes: both directions run at once.
    let sender = {
        let sock = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            for i in 0..COUNT {
                sock.send_to(&payload(i, 300), PEER).unwrap();
                if i % 32 == 31 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let mut received = BTreeSet::new();
    let mut buf = [0u8; 2048];
    while received.len() < COUNT as usize {
        let n = tun_system_tests::retry_eintr(|| sock.recv(&mut buf)).expect("a written datagram");
        received.insert(u32::from_be_bytes(buf[..4].try_into().unwrap()));
        assert_eq!(n, 200);
    }
    sender.join().unwrap();
    let seen = rt.block_on(async { tokio::time::timeout(WITHIN, reader).await });
    rt.block_on(writer).unwrap();
    assert_eq!(seen.unwrap().unwrap(), (0..COUNT).collect());
    assert_eq!(received, (0..COUNT).collect());
    tun.close().unwrap();
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn async_refuses_bad_input_as_the_blocking_calls_do() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tab0").offload(true)).unwrap();
    let rt = runtime(false);
    rt.block_on(async {
        let tun = AsyncTun::new(tun).unwrap();
        let mut empty: [Vec<u8>; 0] = [];
        assert!(matches!(
            tun.read_packets(&mut empty, &mut [], 0).await,
            Err(Error::InvalidArgument(_))
        ));
        // Fewer sizes than buffers.
        let mut short = [vec![0x45u8; 28]];
        assert!(matches!(
            tun.write_packets(&mut short, &[], 0).await,
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            tun.send(&[0xff; 40]).await,
            Err(Error::InvalidPacket(_))
        ));
        let blocking = tun.get_ref();
        assert!(matches!(
            blocking.try_write_packets(&mut short, &[], 0),
            Err(Error::InvalidArgument(_))
        ));
        // Nothing to read: the non-blocking call says so rather than waiting.
        assert!(matches!(
            blocking.try_read_packets(&mut [vec![0u8; 1500]], &mut [0], 0),
            Err(Error::WouldBlock)
        ));
        let started = Instant::now();
        assert!(matches!(
            blocking.read_packets_timeout(
                &mut [vec![0u8; 1500]],
                &mut [0],
                0,
                Duration::from_millis(50)
            ),
            Err(Error::TimedOut)
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));
    });
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn link_events_arrive_through_recv_async() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tav0")).unwrap();
    let events = tun.events();
    let rt = runtime(false);
    let waiting = rt.spawn(async move {
        let first = events.recv_async().await;
        (first, events.recv_async().await)
    });
    std::thread::sleep(Duration::from_millis(50));
    tun.set_up(true).unwrap();
    tun.set_mtu(1400).unwrap();
    let got = rt.block_on(async { tokio::time::timeout(WITHIN, waiting).await });
    assert_eq!(
        got.unwrap().unwrap(),
        (Some(Event::Running), Some(Event::MtuUpdate(1400)))
    );
}

/// Bounds the wait for an async call that must end; past it the test fails instead of hanging.
const WATCHDOG: Duration = Duration::from_secs(10);

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn packets_queued_before_the_device_turns_async_are_read_without_a_new_one() {
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(true), "taq0");
    for i in 0..3 {
        sock.send_to(&payload(i, 100), PEER).unwrap();
    }
    let rt = runtime(false);
    rt.block_on(async {
        let tun = AsyncTun::new(tun).unwrap();
        let mut seen = BTreeSet::new();
        let mut buf = vec![0u8; 65535];
        // The first read waits for readiness before reading: the queued packets must count as ready.
        let read = tokio::time::timeout(WATCHDOG, async {
            while seen.len() < 3 {
                let n = tun.recv(&mut buf).await.expect("read");
                seen.extend(number_of(&buf[..n]));
            }
        });
        read.await.expect("the queued datagrams are read");
        assert_eq!(seen, (0..3).collect());
    });
}

/// A device deleted from outside (`ip link del`) reports only an error condition on its fd. A read that
/// waits when it happens, and every read after it, end with the error the blocking read gets.
fn deleting_the_device_ends_async_reads(multi_thread: bool, name: &str) {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name(name).offload(true)).unwrap();
    let rt = runtime(multi_thread);
    rt.block_on(async {
        let tun = Arc::new(AsyncTun::new(tun).unwrap());
        let pending = {
            let tun = Arc::clone(&tun);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                tun.recv(&mut buf).await
            })
        };
        // Time for the read to reach its wait; the device is down, so nothing comes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!pending.is_finished(), "{:?}", pending.await);
        let deleted_at = Instant::now();
        ns.ip(&["link", "del", name]);
        let ended = tokio::time::timeout(WATCHDOG, pending)
            .await
            .expect("the pending read ends once the device is deleted")
            .unwrap();
        eprintln!(
            "the pending read ended {:?} after the deletion",
            deleted_at.elapsed()
        );
        assert_deleted(ended);
        let mut buf = vec![0u8; 65535];
        let fresh = tokio::time::timeout(WATCHDOG, tun.recv(&mut buf))
            .await
            .expect("a read after the deletion ends");
        assert_deleted(fresh);
        let mut bufs = vec![vec![0u8; 65535]; 4];
        let batch = tokio::time::timeout(WATCHDOG, tun.read_packets(&mut bufs, &mut [0; 4], 0))
            .await
            .expect("a batch read after the deletion ends");
        assert_deleted(batch);
        // As the non-blocking call says.
        assert_deleted(tun.get_ref().try_read_packets(&mut bufs, &mut [0; 4], 0));
        tun.close().unwrap();
    });
}

/// The read ended with the error of a deleted device (`EBADFD`).
fn assert_deleted(read: tun::Result<usize>) {
    match read {
        Err(e) if e.raw_os_error() == Some(libc::EBADFD) && e.is_fatal() => {}
        other => panic!("expected EBADFD, got {other:?}"),
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn deleting_the_device_ends_async_reads_on_the_current_thread_runtime() {
    deleting_the_device_ends_async_reads(false, "tad0");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn deleting_the_device_ends_async_reads_on_the_multi_thread_runtime() {
    deleting_the_device_ends_async_reads(true, "tad1");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_runtime_without_io_is_an_error_and_leaves_no_device() {
    let ns = NetNs::new();
    let no_io = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    };
    let built = ns
        .run_in(|| no_io().block_on(async { Builder::new().name("tan0").build_async().map(drop) }));
    assert!(matches!(built, Err(Error::AsyncIoDisabled)), "{built:?}");
    assert!(!ns.has_link("tan0"));
    // A device made first and handed over is closed on the way out.
    let tun = ns.tun(Builder::new().name("tan1")).unwrap();
    assert!(ns.has_link("tan1"));
    let made = no_io().block_on(async { AsyncTun::new(tun).map(drop) });
    assert!(matches!(made, Err(Error::AsyncIoDisabled)), "{made:?}");
    assert!(
        tun_system_tests::wait_until(WITHIN, || !ns.has_link("tan1")),
        "tan1 is left"
    );
    let message = Error::AsyncIoDisabled.to_string();
    assert!(message.contains("enable_io"), "{message}");
}

/// CPU time this thread has used so far, in clock ticks (`/proc/thread-self/stat`: utime + stime).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name (which is in parentheses and may hold spaces): utime is the 12th.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after_name
        .split(' ')
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    fields.iter().sum()
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_pending_read_on_an_idle_device_does_not_spin() {
    // A read that found nothing must wait for something new: not wake again at once because the device was
    // ready before, nor because its fd is writable (it always is).
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(true), "tai0");
    let rt = runtime(false);
    let tun = Arc::new(rt.block_on(async { AsyncTun::new(tun) }).unwrap());
    let (done, measured) = std::sync::mpsc::channel();
    let runner = {
        let tun = Arc::clone(&tun);
        std::thread::spawn(move || {
            rt.block_on(async {
                let mut buf = vec![0u8; 65535];
                // One packet read first, so that the idle read below starts from a ready device and finds it
                // empty.
                sock.send_to(&payload(0, 100), PEER).unwrap();
                loop {
                    let n = tun.recv(&mut buf).await.expect("the datagram");
                    if number_of(&buf[..n]).is_some() {
                        break;
                    }
                }
                let (started, ticks) = (Instant::now(), thread_cpu_ticks());
                let read =
                    tokio::time::timeout(Duration::from_millis(500), tun.recv(&mut buf)).await;
                assert!(read.is_err(), "nothing to read: {read:?}");
                done.send((thread_cpu_ticks() - ticks, started.elapsed()))
                    .unwrap();
            });
        })
    };
    // A read spinning without ever yielding would hold its timeout off: closing ends it.
    let Ok((cpu, wall)) = measured.recv_timeout(WATCHDOG) else {
        tun.close().unwrap();
        let _ = runner.join();
        panic!("the idle read did not end within {WATCHDOG:?}");
    };
    runner.join().unwrap();
    // Clock ticks are 10 ms: waiting costs one or two at most, spinning about one per 10 ms of waiting.
    assert!(cpu <= 10, "{cpu} ticks of CPU in {wall:?} of waiting");
}

/// A reader and a writer task busy with traffic, then `close()` from another task or a plain thread: both end
/// with `Closed`, and everything can be dropped (the device is gone).
fn close_under_load(multi_thread: bool, from_thread: bool, name: &str) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let ns = NetNs::new();
    let (tun, sock) = addressed(&ns, Builder::new().offload(true), name);
    let to_socket = local_addr(&sock);
    let rt = runtime(multi_thread);
    let tun = Arc::new(rt.block_on(async { AsyncTun::new(tun) }).unwrap());
    let (read, written) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (tun, read) = (Arc::clone(&tun), Arc::clone(&read));
        rt.spawn(async move {
            let mut batch = PacketBatch::for_device(tun.get_ref());
            loop {
                match batch.read_from_async(&tun).await {
                    Ok(n) => read.fetch_add(n as u64, Ordering::Relaxed),
                    Err(e) => return e,
                };
            }
        })
    };
    let writer = {
        let (tun, written) = (Arc::clone(&tun), Arc::clone(&written));
        rt.spawn(async move {
            let mut i = 0u32;
            loop {
                let packet = udp4_packet(PEER, to_socket, &payload(i, 200));
                let size = packet.len();
                match tun.write_packets(&mut [packet], &[size], 0).await {
                    Ok(n) => written.fetch_add(n as u64, Ordering::Relaxed),
                    Err(e) => return e,
                };
                i = i.wrapping_add(1);
                // Other tasks get their turn on the current-thread runtime.
                tokio::task::yield_now().await;
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sock, stop) = (sock.try_clone().unwrap(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let deadline = Instant::now() + WITHIN;
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                // The device's queue may be full for a moment: a lost datagram is fine, traffic is all it takes.
                let _ = sock.send_to(&payload(i, 300), PEER);
                i = i.wrapping_add(1);
                if i.is_multiple_of(32) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    // The runtime runs its tasks while this thread waits for traffic.
    let handle = rt.handle().clone();
    let runner = {
        let (rt, reader, writer) = (rt, reader, writer);
        std::thread::spawn(move || {
            let ended = rt.block_on(async {
                tokio::time::timeout(WITHIN, async { (reader.await, writer.await) }).await
            });
            (rt, ended)
        })
    };
    let busy = tun_system_tests::wait_until(WITHIN, || {
        read.load(Ordering::Relaxed) >= 200 && written.load(Ordering::Relaxed) >= 200
    });
    assert!(busy, "read {read:?}, written {written:?}");
    let closed_at = Instant::now();
    if from_thread {
        let closer = Arc::clone(&tun);
        std::thread::spawn(move || closer.close().unwrap())
            .join()
            .unwrap();
    } else {
        // A task of the same runtime, while the reader and the writer run on it.
        let closer = Arc::clone(&tun);
        let (done, closed) = std::sync::mpsc::channel();
        handle.spawn(async move { done.send(closer.close()) });
        let result = closed.recv_timeout(WITHIN).expect("close returns");
        result.unwrap();
    }
    let (rt, ended) = runner.join().unwrap();
    let (reader, writer) = ended.expect("both tasks end after close");
    eprintln!(
        "{} packets read, {} written; both ended {:?} after close",
        read.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed),
        closed_at.elapsed()
    );
    assert!(matches!(reader, Ok(Error::Closed)), "reader: {reader:?}");
    assert!(matches!(writer, Ok(Error::Closed)), "writer: {writer:?}");
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    drop(sock);
    let tun = Arc::into_inner(tun).expect("the tasks let go of the device");
    drop(tun);
    drop(rt);
    assert!(
        tun_system_tests::wait_until(WITHIN, || !ns.has_link(name)),
        "{name} is left"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn close_under_load_ends_both_tasks_on_the_current_thread_runtime() {
    close_under_load(false, true, "tal0");
    close_under_load(false, false, "tal1");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn close_under_load_ends_both_tasks_on_the_multi_thread_runtime() {
    close_under_load(true, true, "tal2");
    close_under_load(true, false, "tal3");
}
