//! Traffic through a user-space forwarder, for the data-path tests.
//!
//! [`Tunnel`] (from the workspace's test support) builds the topology of a VPN without the crypto:
//! namespace A with `tunA`, namespace B with `tunB`, and the library forwarding between them. Then
//! [`tcp_transfer`] and [`udp_gso_transfer`] push a deterministic pseudo-random stream from A to B and
//! report the SHA-256 of what was sent and of what arrived.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tun_test_support::stream::{StreamHash, tcp_send};
pub use tun_test_support::stream::{Summary as Received, pseudo_random, sha256_hex};

pub use tun_test_harness::tunnel::{
    A4, A6, B4, B6, DEV_A, DEV_B, DirectionStats, Forwarder, Tunnel, TunnelStats, a_addr, b_addr,
};

/// A port not used by any other transfer of this process (tests of one binary run in parallel, but each
/// has its own namespaces; distinct ports keep failures easy to tell apart in captures).
fn next_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(40_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
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

/// Sends `data` over TCP from A to B (IPv4 or IPv6) and returns what B received. Every socket call is
/// bounded by `timeout`.
pub fn tcp_transfer(
    tunnel: &Tunnel,
    v6: bool,
    data: &'static [u8],
    timeout: Duration,
) -> Result<Received, String> {
    let addr = SocketAddr::new(b_addr(v6), next_port());
    tcp_send(&tunnel.a, &tunnel.b, addr, data, timeout)
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
    let local = SocketAddr::new(a_addr(v6), 0);
    let (socket, mut acks) = tunnel
        .a
        .run_in(|| -> std::io::Result<(UdpSocket, TcpStream)> {
            let socket = UdpSocket::bind(local)?;
            socket.connect(to)?;
            let acks = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
            Ok((socket, acks))
        })
        .map_err(|e| format!("connect to {to}: {e}"))?;
    tun_test_support::sockopt::set_udp_segment(
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
    let mut hash = StreamHash::default();
    let (mut expected, mut gaps) = (0u64, 0u64);
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
            hash.update(data);
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
    Ok((hash.finish(), gaps))
}
