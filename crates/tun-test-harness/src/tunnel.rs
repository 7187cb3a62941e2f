//! A VPN without the crypto, for the data-path tests.
//!
//! [`Tunnel`] builds namespace A with `tunA` and namespace B with `tunB`, and forwards `tunA -> tunB` and
//! `tunB -> tunA` through the library: whatever A sends to B's address crosses it twice per direction. How
//! it forwards is a [`Forwarder`]: through a [`PacketBatch`] in the loop of [`relay`] (blocking threads, tokio
//! tasks, one thread per queue), or through the raw calls a [`PacketBatch`] is built on (`read_packets` /
//! `write_packets` with caller-owned buffers, and `io::Read` / `io::Write` one packet per call), so that
//! those stay covered too. Every mode settles its calls through a [`relay::Direction`]: one error policy, and
//! [`DirectionStats`] records what it saw.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::thread::JoinHandle;

use tun::{AsyncTun, Builder, PacketBatch, Tun};
use tun_test_support::NetNs;
pub use tun_test_support::topology::{A4, A6, B4, B6, DEV_A, DEV_B, a_addr, b_addr};

use crate::NetNsTun;
use crate::relay::{self, Call, Direction, Tally};

/// What one forwarding direction saw.
#[derive(Debug, Default, Clone)]
pub struct DirectionStats {
    /// Packets read (MTU-sized, after splitting) and handed to the other device.
    pub packets: u64,
    /// Reads that returned packets.
    pub reads: u64,
    /// Reads that returned more than one packet.
    pub multi_packet_reads: u64,
    /// The most packets one read returned: above 1 only when a super-packet was split.
    pub max_per_read: usize,
    /// Errors of reads other than the device being closed.
    pub read_errors: Vec<String>,
    /// Errors of writes other than the device being closed.
    pub write_errors: Vec<String>,
}

impl DirectionStats {
    /// Panics, listing them, when any read or write of this direction failed.
    #[track_caller]
    pub fn assert_no_errors(&self) {
        assert!(
            self.write_errors.is_empty(),
            "write errors: {:?}",
            self.write_errors
        );
        assert!(
            self.read_errors.is_empty(),
            "read errors: {:?}",
            self.read_errors
        );
    }

    /// Adds what another thread of the same direction saw.
    fn absorb(&mut self, other: DirectionStats) {
        self.packets += other.packets;
        self.reads += other.reads;
        self.multi_packet_reads += other.multi_packet_reads;
        self.max_per_read = self.max_per_read.max(other.max_per_read);
        self.read_errors.extend(other.read_errors);
        self.write_errors.extend(other.write_errors);
    }
}

/// What both directions of a [`Tunnel`] saw, once it stopped.
#[derive(Debug, Default, Clone)]
pub struct TunnelStats {
    /// Direction A -> B.
    pub a_to_b: DirectionStats,
    /// Direction B -> A.
    pub b_to_a: DirectionStats,
    /// Packets forwarded A -> B by each queue pair.
    pub a_to_b_per_queue: Vec<u64>,
}

/// How a [`Tunnel`] forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarder {
    /// A [`PacketBatch`] on one blocking thread per direction, `Some(n)` buffers per read (`None`: the
    /// device's `batch_size()`).
    Threads(Option<usize>),
    /// A [`PacketBatch`] on one task per direction on a tokio runtime with [`AsyncTun`]: the multi-thread
    /// runtime (two workers) when `true`, else the current-thread one.
    Tokio {
        /// Multi-thread runtime rather than current-thread.
        multi_thread: bool,
    },
    /// Multi-queue devices of this many queues, queue `i` of A forwarded to queue `i` of B and back by a
    /// blocking thread per queue and direction (the device's `batch_size()` buffers per read).
    Queues(usize),
    /// `read_packets` / `write_packets` with this many caller-owned buffers per read, one blocking thread per
    /// direction: the raw batch calls, without a [`PacketBatch`].
    RawBatch(usize),
    /// `std::io::Read` / `Write`, one packet per call, one blocking thread per direction.
    OnePacket,
}

/// What the harness records of a direction: every error, for the test to check.
impl Tally for DirectionStats {
    fn read(&mut self, packets: usize, _bytes: usize) {
        self.reads += 1;
        self.packets += packets as u64;
        self.max_per_read = self.max_per_read.max(packets);
        if packets > 1 {
            self.multi_packet_reads += 1;
        }
    }

    fn failed(&mut self, call: Call, error: &dyn std::fmt::Display, _in_a_row: u32) {
        let errors = match call {
            Call::Read => &mut self.read_errors,
            Call::Write => &mut self.write_errors,
        };
        errors.push(error.to_string());
    }
}

/// Forwards `from -> to` through a [`PacketBatch`] of `batch` buffers until a device is closed.
fn forward(from: &Tun, to: &Tun, batch: usize) -> DirectionStats {
    let mut packets = PacketBatch::for_device_with_count(from, batch);
    relay::forward(from, to, &mut packets, DirectionStats::default())
}

/// [`forward`] on async devices, with the device's `batch_size()` buffers.
async fn forward_async(from: &AsyncTun, to: &AsyncTun) -> DirectionStats {
    let mut packets = PacketBatch::for_device(from.get_ref());
    relay::forward_async(from, to, &mut packets, DirectionStats::default()).await
}

/// Forwards `from -> to` with `read_packets` / `write_packets` on `batch` buffers of the caller's own.
fn forward_raw(from: &Tun, to: &Tun, batch: usize) -> DirectionStats {
    let mut bufs: Vec<Vec<u8>> = vec![vec![0u8; 65535]; batch.max(1)];
    let mut sizes = vec![0usize; bufs.len()];
    let mut direction = Direction::new(DirectionStats::default());
    while direction.going_on() {
        let read = from.read_packets(&mut bufs, &mut sizes, 0);
        let Some(n) = direction.read(read, |&n| (n, sizes[..n].iter().sum())) else {
            continue;
        };
        direction.wrote(to.write_packets(&mut bufs[..n], &sizes[..n], 0));
    }
    direction.into_tally()
}

/// Forwards `from -> to` with `io::Read` / `io::Write`, one packet per call.
fn forward_one_packet(from: &Tun, to: &Tun) -> DirectionStats {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 65535];
    let mut direction = Direction::new(DirectionStats::default());
    while direction.going_on() {
        let read = (&*from).read(&mut buf);
        if let Some(len) = direction.read(read, |&len| (1, len)) {
            direction.wrote((&*to).write(&buf[..len]));
        }
    }
    direction.into_tally()
}

/// The devices of a [`Tunnel`], blocking or async.
#[derive(Debug)]
enum Devices {
    /// Every queue of A and of B, in pairs; the first pair are the devices as they were built (the only pair
    /// unless the forwarder is [`Forwarder::Queues`]).
    Blocking(Vec<(Arc<Tun>, Arc<Tun>)>),
    Async(Arc<AsyncTun>, Arc<AsyncTun>),
}

/// What forwards between the devices of a [`Tunnel`].
#[derive(Debug)]
enum Workers {
    /// One thread per direction (a to b, then b to a), for each pair of queues.
    Threads(Vec<JoinHandle<DirectionStats>>),
    /// A thread running the runtime of both tasks.
    Runtime(JoinHandle<TunnelStats>),
    Stopped,
}

/// Namespaces A and B, their devices, and the forwarders between them.
#[derive(Debug)]
pub struct Tunnel {
    /// Namespace A (the sender's).
    pub a: NetNs,
    /// Namespace B (the receiver's).
    pub b: NetNs,
    devices: Devices,
    workers: Workers,
}

impl Tunnel {
    /// Creates both namespaces and devices (offloads on or off), addresses them (IPv4 and IPv6, host
    /// routes to the peer through the device), then starts forwarding through a [`PacketBatch`] with
    /// `batch` buffers per read (`None`: the device's `batch_size()`) on two threads.
    pub fn new(offload: bool, batch: Option<usize>) -> Tunnel {
        Self::with_forwarder(offload, Forwarder::Threads(batch))
    }

    /// [`new`](Self::new) with the forwarder chosen.
    pub fn with_forwarder(offload: bool, forwarder: Forwarder) -> Tunnel {
        let a = NetNs::new();
        let b = NetNs::new();
        let queues = match forwarder {
            Forwarder::Queues(n) => n,
            _ => 1,
        };
        // Up, with a local address and host routes to the peer through the device, for both IP versions.
        let build =
            |ns: &NetNs, name: &str, local: (Ipv4Addr, Ipv6Addr), peer: (Ipv4Addr, Ipv6Addr)| {
                let builder = Builder::new()
                    .name(name)
                    .offload(offload)
                    .multi_queue(queues > 1)
                    .monitor(false)
                    .up(true)
                    .address(local.0.into(), 32)
                    .address(local.1.into(), 128)
                    .route(peer.0.into(), 32)
                    .route(peer.1.into(), 128);
                ns.tun(builder)
                    .unwrap_or_else(|e| panic!("create {name}: {e}"))
            };
        let tun_a = build(&a, DEV_A, (A4, A6), (B4, B6));
        let tun_b = build(&b, DEV_B, (B4, B6), (A4, A6));
        let (devices, workers) = match forwarder {
            Forwarder::Tokio { multi_thread } => tokio_forwarders(tun_a, tun_b, multi_thread),
            Forwarder::Threads(_)
            | Forwarder::Queues(_)
            | Forwarder::RawBatch(_)
            | Forwarder::OnePacket => {
                let mut pairs = vec![(Arc::new(tun_a), Arc::new(tun_b))];
                for _ in 1..queues {
                    let open = |tun: &Tun| {
                        Arc::new(
                            tun.open_queue()
                                .unwrap_or_else(|e| panic!("open a queue: {e}")),
                        )
                    };
                    let more = (open(&pairs[0].0), open(&pairs[0].1));
                    pairs.push(more);
                }
                let threads = thread_forwarders(&pairs, forwarder);
                (Devices::Blocking(pairs), Workers::Threads(threads))
            }
        };
        Tunnel {
            a,
            b,
            devices,
            workers,
        }
    }

    /// `tunA`, in A.
    pub fn tun_a(&self) -> &Tun {
        match &self.devices {
            Devices::Blocking(pairs) => &pairs[0].0,
            Devices::Async(a, _) => a.get_ref(),
        }
    }

    /// `tunB`, in B.
    pub fn tun_b(&self) -> &Tun {
        match &self.devices {
            Devices::Blocking(pairs) => &pairs[0].1,
            Devices::Async(_, b) => b.get_ref(),
        }
    }

    /// Closes both devices (which wakes the forwarders) and returns what they saw.
    pub fn stop(mut self) -> TunnelStats {
        self.close_and_join()
    }

    fn close_and_join(&mut self) -> TunnelStats {
        let _ = self.tun_a().close();
        let _ = self.tun_b().close();
        if let Devices::Blocking(pairs) = &self.devices {
            for (qa, qb) in &pairs[1..] {
                let _ = qa.close();
                let _ = qb.close();
            }
        }
        match std::mem::replace(&mut self.workers, Workers::Stopped) {
            Workers::Threads(threads) => {
                let mut stats = TunnelStats::default();
                let mut threads = threads.into_iter();
                // In pairs: a to b, then b to a, of each pair of queues.
                while let (Some(a_to_b), Some(b_to_a)) = (threads.next(), threads.next()) {
                    let a_to_b = a_to_b.join().expect("a forwarding thread panicked");
                    stats.a_to_b_per_queue.push(a_to_b.packets);
                    stats.a_to_b.absorb(a_to_b);
                    stats
                        .b_to_a
                        .absorb(b_to_a.join().expect("a forwarding thread panicked"));
                }
                stats
            }
            Workers::Runtime(handle) => handle.join().expect("the runtime thread panicked"),
            Workers::Stopped => TunnelStats::default(),
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if !matches!(self.workers, Workers::Stopped) {
            self.close_and_join();
        }
    }
}

/// One blocking thread per direction of each pair of devices (a to b, then b to a), moving packets as
/// `forwarder` says.
fn thread_forwarders(
    pairs: &[(Arc<Tun>, Arc<Tun>)],
    forwarder: Forwarder,
) -> Vec<JoinHandle<DirectionStats>> {
    let mut threads = Vec::new();
    for (i, (qa, qb)) in pairs.iter().enumerate() {
        for (name, from, to) in [
            (format!("fwd{i} a->b"), qa, qb),
            (format!("fwd{i} b->a"), qb, qa),
        ] {
            let (from, to) = (Arc::clone(from), Arc::clone(to));
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || match forwarder {
                    Forwarder::Threads(batch) => {
                        forward(&from, &to, batch.unwrap_or_else(|| from.batch_size()))
                    }
                    Forwarder::RawBatch(batch) => forward_raw(&from, &to, batch),
                    Forwarder::OnePacket => forward_one_packet(&from, &to),
                    Forwarder::Queues(_) | Forwarder::Tokio { .. } => {
                        forward(&from, &to, from.batch_size())
                    }
                })
                .expect("spawn a forwarding thread");
            threads.push(handle);
        }
    }
    threads
}

/// One task per direction on a tokio runtime of its own, run by a thread.
fn tokio_forwarders(tun_a: Tun, tun_b: Tun, multi_thread: bool) -> (Devices, Workers) {
    let runtime = crate::runtime(multi_thread);
    let (tun_a, tun_b) = {
        let _inside = runtime.enter();
        let wrap = |tun| Arc::new(AsyncTun::new(tun).expect("AsyncTun::new"));
        (wrap(tun_a), wrap(tun_b))
    };
    let (from_a, from_b) = (Arc::clone(&tun_a), Arc::clone(&tun_b));
    let handle = std::thread::Builder::new()
        .name("fwd tokio".into())
        .spawn(move || {
            runtime.block_on(async move {
                let a_to_b = tokio::spawn({
                    let (from, to) = (Arc::clone(&from_a), Arc::clone(&from_b));
                    async move { forward_async(&from, &to).await }
                });
                let b_to_a = tokio::spawn(async move { forward_async(&from_b, &from_a).await });
                TunnelStats {
                    a_to_b: a_to_b.await.expect("a->b task"),
                    b_to_a: b_to_a.await.expect("b->a task"),
                    a_to_b_per_queue: Vec::new(),
                }
            })
        })
        .expect("spawn the runtime thread");
    (Devices::Async(tun_a, tun_b), Workers::Runtime(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direction_tallies_its_reads_and_keeps_each_error_under_its_call() {
        let mut stats = DirectionStats::default();
        stats.read(1, 1500);
        stats.read(44, 64_000);
        stats.failed(Call::Read, &"read on tunA: EIO", 1);
        stats.failed(Call::Write, &"write on tunB: ENOBUFS", 2);
        assert_eq!(
            (
                stats.packets,
                stats.reads,
                stats.multi_packet_reads,
                stats.max_per_read
            ),
            (45, 2, 1, 44)
        );
        assert_eq!(stats.read_errors, ["read on tunA: EIO"]);
        assert_eq!(stats.write_errors, ["write on tunB: ENOBUFS"]);
    }
}
