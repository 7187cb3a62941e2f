//! The data path allocates nothing once warm: read (and split), write (and coalesce) reuse the device's
//! buffers, GRO table and index list. Alone in its binary, because the allocation counter replaces the global
//! allocator (it counts per thread).

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tun::{AsyncTun, Builder, PacketBatch};
use tun_system_tests::traffic::{A4, B4};
use tun_system_tests::{NetNs, NetNsTun, retry_eintr, runtime, with_deadline};

/// How a forwarding cycle handles its buffers.
#[derive(Debug, Clone, Copy)]
enum Cycle {
    /// `read_packets` / `write_packets` on the caller's buffers, the same arrays passed from one to the other.
    Manual,
    /// Through a [`PacketBatch`].
    Batch,
    /// Through a [`PacketBatch`] on [`AsyncTun`]s, on a current-thread tokio runtime driven by the measuring
    /// thread (so that the runtime's own work is counted too).
    Async,
}

/// Forwards `rounds` batches from `ta` to `tb` after `warmup` batches, while a sender in `a` keeps `ta` busy;
/// returns the allocations counted over the measured batches and the most packets one read returned.
fn measured_forwarding(offload: bool, gso: Option<u16>, cycle: Cycle) -> (u64, usize) {
    let a = NetNs::new();
    let b = NetNs::new();
    let ta = a
        .tun(Builder::new().name("ta").offload(offload).monitor(false))
        .unwrap();
    let tb = b
        .tun(Builder::new().name("tb").offload(offload).monitor(false))
        .unwrap();
    a.address(&ta, A4.into(), 24);
    b.address(&tb, B4.into(), 24);
    let rt = runtime(false);
    let (ta, tb) = rt.block_on(async { (AsyncTun::new(ta).unwrap(), AsyncTun::new(tb).unwrap()) });
    let (ata, atb) = (&ta, &tb);
    let (ta, tb) = (ta.get_ref(), tb.get_ref());
    let receiver = b.run_in(|| UdpSocket::bind(SocketAddrV4::new(B4, 6000)).unwrap());
    receiver
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sender = a.run_in(|| UdpSocket::bind(SocketAddrV4::new(A4, 0)).unwrap());
    let burst = match gso {
        Some(size) => {
            tun_test_support::sockopt::set_udp_segment(&sender, size).unwrap();
            vec![7u8; usize::from(size) * 20]
        }
        None => vec![7u8; 1200],
    };
    let stop = AtomicBool::new(false);
    let offset = if offload { 10 } else { 0 };
    let full = offset + 65535;
    let (warmup, rounds) = (50, 500);
    std::thread::scope(|s| {
        s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                // The device's queue may be full; a dropped burst is fine, the reader only needs traffic.
                let _ = sender.send_to(&burst, SocketAddrV4::new(B4, 6000));
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        s.spawn(|| {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let _ = retry_eintr(|| receiver.recv_from(&mut buf));
            }
        });
        let result = with_deadline(ta, Duration::from_secs(30), || {
            let mut bufs: Vec<Vec<u8>> = (0..ta.batch_size()).map(|_| vec![0u8; full]).collect();
            let mut sizes = vec![0usize; bufs.len()];
            let mut batch = PacketBatch::for_device(ta);
            let (mut allocations, mut most) = (0u64, 0usize);
            for round in 0..warmup + rounds {
                let mut n = 0;
                let info = allocation_counter::measure(|| match cycle {
                    Cycle::Manual => {
                        n = ta.read_packets(&mut bufs, &mut sizes, offset).unwrap();
                        tb.write_packets(&mut bufs[..n], &sizes[..n], offset)
                            .unwrap();
                    }
                    Cycle::Batch => {
                        n = batch.read_from(ta).unwrap();
                        batch.write_to(tb).unwrap();
                    }
                    Cycle::Async => rt.block_on(async {
                        n = batch.read_from_async(ata).await.unwrap();
                        batch.write_to_async(atb).await.unwrap();
                    }),
                });
                if round >= warmup {
                    allocations += info.count_total;
                }
                most = most.max(n);
            }
            (allocations, most)
        });
        stop.store(true, Ordering::Relaxed);
        result
    })
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn warm_offload_data_path_with_split_and_coalescing_allocates_nothing() {
    let (allocations, most) = measured_forwarding(true, Some(1200), Cycle::Manual);
    assert_eq!(allocations, 0);
    // The measured batches did split super-packets (and coalesce them again on write).
    assert!(most > 1, "at most {most} packet(s) per read");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn warm_packet_batch_cycle_with_split_and_coalescing_allocates_nothing() {
    let (allocations, most) = measured_forwarding(true, Some(1200), Cycle::Batch);
    assert_eq!(allocations, 0);
    assert!(most > 1, "at most {most} packet(s) per read");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn warm_async_packet_batch_cycle_with_split_and_coalescing_allocates_nothing() {
    let (allocations, most) = measured_forwarding(true, Some(1200), Cycle::Async);
    assert_eq!(allocations, 0);
    assert!(most > 1, "at most {most} packet(s) per read");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn warm_plain_data_path_allocates_nothing() {
    let (allocations, _) = measured_forwarding(false, None, Cycle::Manual);
    assert_eq!(allocations, 0);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn warm_plain_packet_batch_cycle_allocates_nothing() {
    let (allocations, _) = measured_forwarding(false, None, Cycle::Batch);
    assert_eq!(allocations, 0);
}
