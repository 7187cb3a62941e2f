//! Traffic through a user-space forwarder, for the data-path tests.
//!
//! [`Tunnel`] builds the topology of a VPN without the crypto: namespace A with `tunA`, namespace B with
//! `tunB`, and two library threads forwarding `tunA -> tunB` and `tunB -> tunA` with
//! [`Tun::read_packets`] / [`Tun::write_packets`]. Whatever A sends to B's address crosses them. Then
//! [`tcp_transfer`] and [`udp_gso_transfer`] push a deterministic pseudo-random stream from A to B and
//! report the SHA-256 of what was sent and of what arrived.

use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tun::{AsyncTun, Builder, Error, PacketBatch, Tun};

use crate::NetNs;

/// Device name in namespace A.
pub const DEV_A: &str = "tunA";
/// Device name in namespace B.
pub const DEV_B: &str = "tunB";
/// A's IPv4 address (exists only inside the test's namespace).
pub const A4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// B's IPv4 address.
pub const B4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// A's IPv6 address.
pub const A6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
/// B's IPv6 address.
pub const B6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

/// B's address of the given IP version.
pub fn b_addr(v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(B6) } else { IpAddr::V4(B4) }
}

/// A port not used by any other transfer of this process (tests of one binary run in parallel, but each
/// has its own namespaces; distinct ports keep failures easy to tell apart in captures).
fn next_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(40_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What one forwarding direction saw.
#[derive(Debug, Default, Clone)]
pub struct DirectionStats {
    /// Packets returned by `read_packets` (MTU-sized, after splitting).
    pub packets: u64,
    /// Calls of `read_packets` that returned packets.
    pub reads: u64,
    /// Calls that returned more than one packet.
    pub multi_packet_reads: u64,
    /// Times a buffer was too small (after which it was grown and the packet read again).
    pub buffer_too_small: u64,
    /// Errors of `read_packets` other than `Closed` and `BufferTooSmall`.
    pub read_errors: Vec<String>,
    /// Errors of `write_packets`.
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
}

/// Bounded: a device that fails every call is given up after this many errors in a row.
const MAX_CONSECUTIVE_ERRORS: u32 = 1000;

impl DirectionStats {
    /// Records the result of one read into `packets`: `Some(n)` packets to write, or `None` (nothing to
    /// write: an error was recorded, or the device is closed and `closed` is set).
    fn after_read(
        &mut self,
        read: Result<usize, Error>,
        packets: &PacketBatch,
        errors: &mut u32,
    ) -> Option<usize> {
        self.buffer_too_small = packets.grown();
        match read {
            Ok(n) => {
                self.reads += 1;
                self.packets += n as u64;
                if n > 1 {
                    self.multi_packet_reads += 1;
                }
                Some(n)
            }
            Err(Error::Closed) => {
                *errors = MAX_CONSECUTIVE_ERRORS;
                None
            }
            Err(e) => {
                self.read_errors.push(e.to_string());
                *errors += 1;
                None
            }
        }
    }

    /// Records the result of one write; false when the device is closed and forwarding ends.
    fn after_write(&mut self, written: Result<usize, Error>, errors: &mut u32) -> bool {
        match written {
            Ok(_) => *errors = 0,
            Err(Error::Closed) => return false,
            Err(e) => {
                self.write_errors.push(e.to_string());
                *errors += 1;
            }
        }
        true
    }
}

/// Forwards `from -> to` through a [`PacketBatch`] until `from` is closed; `batch` buffers per read.
fn forward(from: &Tun, to: &Tun, batch: usize) -> DirectionStats {
    let mut stats = DirectionStats::default();
    let mut packets = PacketBatch::for_device_with_count(from, batch);
    let mut errors = 0;
    while errors < MAX_CONSECUTIVE_ERRORS {
        let read = packets.read_from(from);
        if stats.after_read(read, &packets, &mut errors).is_some()
            && !stats.after_write(packets.write_to(to), &mut errors)
        {
            break;
        }
    }
    stats
}

/// [`forward`] on an async device: the same loop, awaiting instead of blocking.
async fn forward_async(from: &AsyncTun, to: &AsyncTun) -> DirectionStats {
    let mut stats = DirectionStats::default();
    let mut packets = PacketBatch::for_device(from.get_ref());
    let mut errors = 0;
    while errors < MAX_CONSECUTIVE_ERRORS {
        let read = packets.read_from_async(from).await;
        if stats.after_read(read, &packets, &mut errors).is_some()
            && !stats.after_write(packets.write_to_async(to).await, &mut errors)
        {
            break;
        }
    }
    stats
}

/// How a [`Tunnel`] forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarder {
    /// One blocking thread per direction, `Some(n)` buffers per read (`None`: the device's `batch_size()`).
    Threads(Option<usize>),
    /// One task per direction on a tokio runtime with [`AsyncTun`]: the multi-thread runtime (two workers)
    /// when `true`, else the current-thread one.
    Tokio {
        /// Multi-thread runtime rather than current-thread.
        multi_thread: bool,
    },
    /// Multi-queue devices of this many queues, queue `i` of A forwarded to queue `i` of B and back by a
    /// blocking thread per queue and direction (the device's `batch_size()` buffers per read).
    Queues(usize),
}

/// The two devices of a [`Tunnel`], blocking or async.
#[derive(Debug)]
enum Devices {
    Blocking(Arc<Tun>, Arc<Tun>),
    Async(Arc<AsyncTun>, Arc<AsyncTun>),
    /// Every queue of A and of B, in pairs; the first pair are the queues the devices were built with.
    Queues(Vec<(Arc<Tun>, Arc<Tun>)>),
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

impl DirectionStats {
    /// Adds what another thread of the same direction saw.
    fn absorb(&mut self, other: DirectionStats) {
        self.packets += other.packets;
        self.reads += other.reads;
        self.multi_packet_reads += other.multi_packet_reads;
        self.buffer_too_small += other.buffer_too_small;
        self.read_errors.extend(other.read_errors);
        self.write_errors.extend(other.write_errors);
    }
}

impl Tunnel {
    /// Creates both namespaces and devices (offloads on or off), addresses them (IPv4 and IPv6, host
    /// routes to the peer through the device), then starts forwarding with `batch` buffers per read
    /// (`None`: the device's `batch_size()`) on two threads.
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
            Forwarder::Threads(batch) => {
                let (tun_a, tun_b) = (Arc::new(tun_a), Arc::new(tun_b));
                let mut threads = Vec::new();
                for (name, from, to) in [
                    ("fwd a->b", Arc::clone(&tun_a), Arc::clone(&tun_b)),
                    ("fwd b->a", Arc::clone(&tun_b), Arc::clone(&tun_a)),
                ] {
                    let batch = batch.unwrap_or_else(|| from.batch_size());
                    let handle = std::thread::Builder::new()
                        .name(name.into())
                        .spawn(move || forward(&from, &to, batch))
                        .expect("spawn a forwarding thread");
                    threads.push(handle);
                }
                (Devices::Blocking(tun_a, tun_b), Workers::Threads(threads))
            }
            Forwarder::Queues(_) => {
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
                let mut threads = Vec::new();
                for (i, (qa, qb)) in pairs.iter().enumerate() {
                    for (name, from, to) in [
                        (format!("fwd{i} a->b"), qa, qb),
                        (format!("fwd{i} b->a"), qb, qa),
                    ] {
                        let (from, to) = (Arc::clone(from), Arc::clone(to));
                        let handle = std::thread::Builder::new()
                            .name(name)
                            .spawn(move || forward(&from, &to, from.batch_size()))
                            .expect("spawn a forwarding thread");
                        threads.push(handle);
                    }
                }
                (Devices::Queues(pairs), Workers::Threads(threads))
            }
            Forwarder::Tokio { multi_thread } => {
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
                            let b_to_a =
                                tokio::spawn(async move { forward_async(&from_b, &from_a).await });
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
            Devices::Blocking(a, _) => a,
            Devices::Async(a, _) => a.get_ref(),
            Devices::Queues(pairs) => &pairs[0].0,
        }
    }

    /// `tunB`, in B.
    pub fn tun_b(&self) -> &Tun {
        match &self.devices {
            Devices::Blocking(_, b) => b,
            Devices::Async(_, b) => b.get_ref(),
            Devices::Queues(pairs) => &pairs[0].1,
        }
    }

    /// Closes both devices (which wakes the forwarders) and returns what they saw.
    pub fn stop(mut self) -> TunnelStats {
        self.close_and_join()
    }

    fn close_and_join(&mut self) -> TunnelStats {
        let _ = self.tun_a().close();
        let _ = self.tun_b().close();
        if let Devices::Queues(pairs) = &self.devices {
            for (qa, qb) in pairs {
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

/// `len` bytes of a splitmix64 stream from `seed`: no period a dropped, duplicated or reordered block
/// could hide in.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut data = vec![0u8; len.next_multiple_of(8)];
    for chunk in data.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    data.truncate(len);
    data
}

/// 100 MiB of test data and its SHA-256, generated once per test process and shared by its tests.
pub fn hundred_mib() -> &'static (Vec<u8>, String) {
    static DATA: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    DATA.get_or_init(|| {
        let data = pseudo_random(100 << 20, 0x7e57_da7a);
        let digest = sha256_hex(&data);
        (data, digest)
    })
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What arrived at the receiving end of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes received.
    pub bytes: u64,
    /// Their SHA-256.
    pub sha256: String,
}

/// Sends `data` over TCP from A to B (IPv4 or IPv6) and returns what B received. Every socket call is
/// bounded by `timeout`.
pub fn tcp_transfer(
    tunnel: &Tunnel,
    v6: bool,
    data: &'static [u8],
    timeout: Duration,
) -> Result<Received, String> {
    let addr = SocketAddr::new(b_addr(v6), next_port());
    let listener = tunnel
        .b
        .run_in(|| TcpListener::bind(addr))
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let receiver = std::thread::spawn(move || -> Result<Received, String> {
        let (mut stream, _) =
            crate::retry_eintr(|| listener.accept()).map_err(|e| format!("accept: {e}"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut bytes = 0u64;
        loop {
            match crate::retry_eintr(|| stream.read(&mut buf)) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    bytes += n as u64;
                }
                Err(e) => return Err(format!("receive after {bytes} bytes: {e}")),
            }
        }
        Ok(Received {
            bytes,
            sha256: hex(&hasher.finalize()),
        })
    });
    let sent = (|| -> Result<(), String> {
        let mut stream = tunnel
            .a
            .run_in(|| TcpStream::connect_timeout(&addr, timeout))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        for chunk in data.chunks(256 * 1024) {
            stream.write_all(chunk).map_err(|e| format!("send: {e}"))?;
        }
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))
    })();
    if let Err(e) = sent {
        // Unblock the receiver (if it accepted nothing, connect to it so that accept returns).
        let _ = tunnel
            .b
            .run_in(|| TcpStream::connect_timeout(&addr, Duration::from_secs(1)));
        let _ = receiver.join();
        return Err(e);
    }
    receiver
        .join()
        .map_err(|_| "the receiver panicked".to_owned())?
}

/// The outcome of a [`udp_gso_transfer`].
#[derive(Debug, Clone)]
pub struct UdpTransfer {
    /// What arrived, in sequence order.
    pub received: Received,
    /// Datagrams that arrived ahead of a missing one (each means a datagram was lost on the way).
    pub gaps: u64,
    /// Datagrams the sender sent again after a loss or a timeout.
    pub resent: u64,
    /// Datagrams the sender sent in all.
    pub sent: u64,
}

/// Settings of a [`udp_gso_transfer`].
#[derive(Debug, Clone, Copy)]
pub struct UdpSettings {
    /// Bytes per datagram on the wire (an 8-byte sequence number, then data).
    pub datagram: usize,
    /// Datagrams per `send` (handed to the kernel as one UDP_SEGMENT super-packet).
    pub per_send: usize,
    /// Datagrams in flight at most (go-back-N window).
    pub window: u64,
    /// Overall deadline of the transfer.
    pub timeout: Duration,
}

impl Default for UdpSettings {
    fn default() -> Self {
        UdpSettings {
            datagram: 1200,
            per_send: 16,
            window: 64,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Time without acknowledgement after which the sender goes back and sends the window again.
const RESEND_AFTER: Duration = Duration::from_millis(200);

/// Sends `data` from A to B in UDP datagrams, `per_send` of them per `send` with UDP_SEGMENT (GSO), made
/// reliable by go-back-N: the receiver acknowledges the next sequence number it expects over a TCP
/// connection, and the sender sends again from there after a gap or a silence. The receiver hashes the
/// data in sequence order.
pub fn udp_gso_transfer(
    tunnel: &Tunnel,
    v6: bool,
    data: &'static [u8],
    settings: UdpSettings,
) -> Result<UdpTransfer, String> {
    let payload = settings.datagram - 8;
    let total = data.len().div_ceil(payload) as u64;
    let port = next_port();
    let data_addr = SocketAddr::new(b_addr(v6), port);
    let ack_addr = SocketAddr::new(b_addr(v6), port);
    let (socket, acks) = tunnel
        .b
        .run_in(|| {
            Ok::<_, std::io::Error>((UdpSocket::bind(data_addr)?, TcpListener::bind(ack_addr)?))
        })
        .map_err(|e| format!("bind {data_addr}: {e}"))?;
    let deadline = Instant::now() + settings.timeout;
    let outcome = Arc::new(Mutex::new(None));
    let receiver = {
        let outcome = Arc::clone(&outcome);
        std::thread::spawn(move || {
            let result = receive_datagrams(&socket, &acks, total, settings, deadline);
            *outcome
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
        })
    };
    let sent = send_datagrams(tunnel, v6, data, data_addr, total, settings, deadline);
    if sent.is_err() {
        // Let a receiver still waiting in accept() go: a connection that closes at once ends it.
        let _ = tunnel
            .b
            .run_in(|| TcpStream::connect_timeout(&ack_addr, Duration::from_secs(1)));
    }
    let _ = receiver.join();
    let (sent, resent) = sent?;
    let received = outcome
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .ok_or("the receiver stopped without a result")??;
    Ok(UdpTransfer {
        received: received.0,
        gaps: received.1,
        resent,
        sent,
    })
}

/// The sender side: returns (datagrams sent, datagrams sent again).
fn send_datagrams(
    tunnel: &Tunnel,
    v6: bool,
    data: &[u8],
    to: SocketAddr,
    total: u64,
    settings: UdpSettings,
    deadline: Instant,
) -> Result<(u64, u64), String> {
    let payload = settings.datagram - 8;
    let local = SocketAddr::new(if v6 { IpAddr::V6(A6) } else { IpAddr::V4(A4) }, 0);
    let (socket, mut acks) = tunnel
        .a
        .run_in(|| -> std::io::Result<(UdpSocket, TcpStream)> {
            let socket = UdpSocket::bind(local)?;
            socket.connect(to)?;
            let acks = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
            Ok((socket, acks))
        })
        .map_err(|e| format!("connect to {to}: {e}"))?;
    tun_sys::sockopt::set_udp_segment(
        &socket,
        u16::try_from(settings.datagram).unwrap_or(u16::MAX),
    )
    .map_err(|e| format!("UDP_SEGMENT: {e}"))?;
    acks.set_read_timeout(Some(RESEND_AFTER))
        .map_err(|e| e.to_string())?;
    let mut base = 0u64;
    let mut next = 0u64;
    let (mut sent, mut resent, mut highest_sent) = (0u64, 0u64, 0u64);
    let mut went_back_at = None;
    let mut ack_bytes = Vec::with_capacity(64);
    let mut buf = Vec::with_capacity(settings.per_send * settings.datagram);
    while base < total {
        if Instant::now() > deadline {
            return Err(format!(
                "UDP transfer timed out at datagram {base} of {total}"
            ));
        }
        while next < total && next < base + settings.window {
            let count = (settings.per_send as u64)
                .min(total - next)
                .min(base + settings.window - next);
            buf.clear();
            for seq in next..next + count {
                let start = usize::try_from(seq)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(payload);
                let chunk = &data[start..(start + payload).min(data.len())];
                buf.extend_from_slice(&seq.to_le_bytes());
                buf.extend_from_slice(chunk);
            }
            // Only the last datagram of the whole stream may be short, and it is last in its send.
            match crate::retry_eintr(|| socket.send(&buf)) {
                Ok(_) => {}
                // A full queue on the way (ENOBUFS): treat as a loss; go-back-N sends it again.
                // ECONNREFUSED reports the ICMP error of an earlier datagram: a resend that raced the
                // receiver's last acknowledgement reached its socket after it closed. Whether the transfer
                // is complete is for the acknowledgement stream to say, so that is not an error either.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ECONNREFUSED)) => {}
                Err(e) => return Err(format!("send datagrams {next}..{}: {e}", next + count)),
            }
            sent += count;
            if next < highest_sent {
                resent += count.min(highest_sent - next);
            }
            next += count;
            highest_sent = highest_sent.max(next);
        }
        let mut chunk = [0u8; 64];
        match crate::retry_eintr(|| acks.read(&mut chunk)) {
            Ok(0) => {
                return Err(format!(
                    "the receiver hung up at datagram {base} of {total}"
                ));
            }
            Ok(n) => {
                ack_bytes.extend_from_slice(&chunk[..n]);
                let whole = ack_bytes.len() / 8 * 8;
                if whole == 0 {
                    continue;
                }
                let last = &ack_bytes[whole - 8..whole];
                let ack = u64::from_le_bytes(last.try_into().unwrap_or([0; 8]));
                ack_bytes.drain(..whole);
                if ack > base {
                    base = ack;
                    next = next.max(base);
                } else if ack == base && next > base && went_back_at != Some(base) {
                    // The receiver saw a gap: send again from the first missing datagram, once per gap.
                    went_back_at = Some(base);
                    next = base;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Silence: the window (or its acknowledgement) was lost. Send it again.
                next = base;
                went_back_at = None;
            }
            Err(e) => return Err(format!("read acknowledgements: {e}")),
        }
    }
    Ok((sent, resent))
}

/// The receiver side: returns what arrived in order and the number of gaps seen.
fn receive_datagrams(
    socket: &UdpSocket,
    acks: &TcpListener,
    total: u64,
    settings: UdpSettings,
    deadline: Instant,
) -> Result<(Received, u64), String> {
    let (mut ack_stream, _) =
        crate::retry_eintr(|| acks.accept()).map_err(|e| format!("accept: {e}"))?;
    ack_stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let (mut expected, mut bytes, mut gaps) = (0u64, 0u64, 0u64);
    let mut last_gap_ack = None;
    let ack_every = (settings.window / 4).max(1);
    let mut buf = vec![0u8; 65_536];
    let send_ack = |stream: &mut TcpStream, value: u64| {
        stream
            .write_all(&value.to_le_bytes())
            .map_err(|e| format!("send acknowledgement: {e}"))
    };
    while expected < total {
        if Instant::now() > deadline {
            return Err(format!(
                "UDP receiver timed out at datagram {expected} of {total}"
            ));
        }
        let n = match crate::retry_eintr(|| socket.recv(&mut buf)) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // The sender may be waiting for news: repeat where we are.
                send_ack(&mut ack_stream, expected)?;
                continue;
            }
            Err(e) => return Err(format!("receive: {e}")),
        };
        let Some((seq, data)) = buf[..n].split_first_chunk::<8>() else {
            return Err(format!("a {n}-byte datagram is too short"));
        };
        let seq = u64::from_le_bytes(*seq);
        if seq == expected {
            hasher.update(data);
            bytes += data.len() as u64;
            expected += 1;
            if expected % ack_every == 0 || expected == total {
                send_ack(&mut ack_stream, expected)?;
            }
        } else if seq > expected {
            gaps += 1;
            if last_gap_ack != Some(expected) {
                last_gap_ack = Some(expected);
                send_ack(&mut ack_stream, expected)?;
            }
        }
    }
    let _ = ack_stream.shutdown(Shutdown::Both);
    Ok((
        Received {
            bytes,
            sha256: hex(&hasher.finalize()),
        },
        gaps,
    ))
}
