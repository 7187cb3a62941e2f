//! UDP -> TUN: one receive of a GRO batch, each datagram authenticated and decrypted by its peer's tunnel,
//! its inner source checked against that peer's allowed IPs, and one `write_packets` of the batch.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, Tunn, TunnResult};
use parking_lot::MutexGuard;

use crate::counters::Counters;
use crate::device::{Device, PeerState, Routing};
use crate::udp::Udp;
use tun::PacketBatch;

/// A GRO batch is at most 64 datagrams of at most 64 KiB in all; twice that leaves no doubt.
const RECV_BYTES: usize = 2 * 65_536;

/// Message type of a cookie reply: the one answer that authenticates nobody.
const COOKIE_REPLY: u8 = 3;

/// The receiving side's buffers and the peer it holds locked, allocated once.
struct Receiver<'r> {
    routing: &'r Routing,
    udp: &'r Udp,
    device: &'r Device,
    batch: &'r mut PacketBatch,
    /// Replies and flushed packets are built here, apart from the batch.
    scratch: &'r mut [u8],
    /// The peer of the last datagram, still locked: a GRO batch usually comes from one peer.
    locked: Option<(usize, MutexGuard<'r, PeerState>)>,
}

impl<'r> Receiver<'r> {
    /// Finds the peer of one datagram: by receiver index, or for a handshake initiation by the static key
    /// it carries (after its MAC proved it is meant for us).
    fn peer_of(&mut self, datagram: &[u8], from: SocketAddr) -> Option<usize> {
        let c = &self.device.counters;
        let packet = match Tunn::parse_incoming_packet(datagram) {
            Ok(p) => p,
            Err(_) => {
                Counters::add(&c.dropped_malformed, 1);
                return None;
            }
        };
        let found = match packet {
            Packet::HandshakeInit(ref init) => {
                let Some(identity) = self.routing.identity.as_deref() else {
                    Counters::add(&c.dropped_unknown_peer, 1);
                    return None;
                };
                match identity
                    .rate_limiter
                    .verify_packet(Some(from.ip()), datagram, self.scratch)
                {
                    Ok(_) => {}
                    Err(TunnResult::WriteToNetwork(cookie)) => {
                        let len = cookie.len();
                        self.send(from, len);
                        Counters::add(&c.cookie_replies_sent, 1);
                        return None;
                    }
                    Err(_) => {
                        Counters::add(&c.dropped_bad_mac, 1);
                        return None;
                    }
                }
                parse_handshake_anon(&identity.secret, &identity.public, init)
                    .ok()
                    .and_then(|half| self.routing.by_key.get(&half.peer_static_public).copied())
            }
            Packet::HandshakeResponse(p) => {
                self.routing.by_index.get(&(p.receiver_idx >> 8)).copied()
            }
            Packet::PacketCookieReply(p) => {
                self.routing.by_index.get(&(p.receiver_idx >> 8)).copied()
            }
            Packet::PacketData(p) => self.routing.by_index.get(&(p.receiver_idx >> 8)).copied(),
        };
        if found.is_none() {
            Counters::add(&c.dropped_unknown_peer, 1);
        }
        found
    }

    /// Sends `len` bytes of `scratch` to `to`.
    fn send(&self, to: SocketAddr, len: usize) {
        let c = &self.device.counters;
        let failed = self.udp.send(to, &self.scratch[..len], len);
        Counters::add(&c.udp_datagrams_sent, 1 - failed as u64);
        Counters::add(&c.udp_send_errors, failed as u64);
    }

    /// Keeps the decrypted packet of `len` bytes in the batch when its inner `source` is among the allowed IPs
    /// of the peer `at` it came from; drops and counts it otherwise.
    fn keep_if_allowed(&mut self, len: usize, source: IpAddr, at: usize) {
        if self.routing.table.lookup(source) == Some(&at) {
            let _ = self.batch.commit(len);
        } else {
            Counters::add(&self.device.counters.dropped_source_not_allowed, 1);
        }
    }

    /// Handles one datagram from `from`.
    fn datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        let Some(at) = self.peer_of(datagram, from) else {
            return;
        };
        let kind = datagram[0];
        let device = self.device;
        let routing = self.routing;
        let c = &device.counters;
        // The batch and the locked peer are separate fields: borrow them apart.
        let mut reply: Option<usize> = None;
        {
            let Some(dst) = self.batch.unfilled_mut() else {
                Counters::add(&c.dropped_other, 1);
                return;
            };
            let state = match &mut self.locked {
                Some((held, guard)) if *held == at => &mut **guard,
                _ => {
                    self.locked = None;
                    self.locked = Some((at, routing.peers[at].state.lock()));
                    &mut self.locked.as_mut().expect("locked above").1
                }
            };
            let Some(tunn) = state.tunn.as_mut() else {
                Counters::add(&c.dropped_no_session, 1);
                return;
            };
            match tunn.decapsulate(Some(from.ip()), datagram, dst) {
                TunnResult::WriteToTunnelV4(packet, source) => {
                    let (len, source) = (packet.len(), IpAddr::from(source));
                    authenticated(state, from, datagram.len());
                    self.keep_if_allowed(len, source, at);
                }
                TunnResult::WriteToTunnelV6(packet, source) => {
                    let (len, source) = (packet.len(), IpAddr::from(source));
                    authenticated(state, from, datagram.len());
                    self.keep_if_allowed(len, source, at);
                }
                TunnResult::WriteToNetwork(answer) => {
                    let len = answer.len();
                    self.scratch[..len].copy_from_slice(answer);
                    if answer[0] != COOKIE_REPLY {
                        // A valid handshake message: the peer is where it came from.
                        authenticated(state, from, datagram.len());
                        Counters::add(&c.handshakes, 1);
                    } else {
                        Counters::add(&c.cookie_replies_sent, 1);
                    }
                    state.tx_bytes += len as u64;
                    reply = Some(len);
                }
                TunnResult::Done => {
                    // A keepalive, or a cookie reply taken in: only the first proves the peer is there.
                    if kind != COOKIE_REPLY {
                        authenticated(state, from, datagram.len());
                    }
                }
                TunnResult::Err(e) => Counters::add(error_counter(c, &e), 1),
            }
        }
        if let Some(len) = reply {
            self.send(from, len);
            self.flush_queued(at, from);
        }
    }

    /// Sends what the tunnel queued while its handshake ran (boringtun hands it out one call at a time).
    fn flush_queued(&mut self, at: usize, to: SocketAddr) {
        for _ in 0..1024 {
            let len = {
                let scratch_ptr: &mut [u8] = &mut *self.scratch;
                let (_, guard) = self
                    .locked
                    .get_or_insert_with(|| (at, self.routing.peers[at].state.lock()));
                let Some(tunn) = guard.tunn.as_mut() else {
                    return;
                };
                match tunn.decapsulate(None, &[], scratch_ptr) {
                    TunnResult::WriteToNetwork(packet) => {
                        let len = packet.len();
                        guard.tx_bytes += len as u64;
                        len
                    }
                    _ => return,
                }
            };
            self.send(to, len);
        }
    }
}

/// The peer proved itself from `from`: roam there, count the bytes.
fn authenticated(state: &mut PeerState, from: SocketAddr, bytes: usize) {
    state.rx_bytes += bytes as u64;
    if state.endpoint != Some(from) {
        state.endpoint = Some(from);
    }
}

/// Which counter a refused message goes to.
fn error_counter<'c>(c: &'c Counters, e: &WireGuardError) -> &'c std::sync::atomic::AtomicU64 {
    match e {
        WireGuardError::DuplicateCounter | WireGuardError::InvalidCounter => &c.dropped_replay,
        WireGuardError::InvalidAeadTag
        | WireGuardError::InvalidMac
        | WireGuardError::WrongKey
        | WireGuardError::InvalidTai64nTimestamp
        | WireGuardError::WrongTai64nTimestamp => &c.dropped_bad_auth,
        WireGuardError::NoCurrentSession
        | WireGuardError::WrongIndex
        | WireGuardError::UnexpectedPacket => &c.dropped_no_session,
        WireGuardError::IncorrectPacketLength
        | WireGuardError::InvalidPacket
        | WireGuardError::WrongPacketType => &c.dropped_malformed,
        WireGuardError::UnderLoad => &c.cookie_replies_sent,
        _ => &c.dropped_other,
    }
}

/// The receiving direction's buffers, allocated once. The loop ([`run`]) drives it: how it waits for the
/// socket and the device is the loop's alone.
struct Rx {
    buf: Vec<u8>,
    batch: PacketBatch,
    scratch: Vec<u8>,
}

impl Rx {
    fn new() -> Self {
        Self {
            buf: vec![0u8; RECV_BYTES],
            batch: PacketBatch::new(64, 0).expect("64 buffers, no offset"),
            scratch: vec![0u8; 65_536 + 64],
        }
    }

    /// Decrypts the datagrams of `stride` bytes received in `buf[..len]` from `from`, starting at byte
    /// `start`, into the batch. Returns `Some(next)` when the batch is full: write it, then go on from byte
    /// `next`.
    #[allow(clippy::too_many_arguments)]
    fn decrypt(
        &mut self,
        device: &Device,
        routing: &Routing,
        udp: &Udp,
        len: usize,
        stride: usize,
        from: SocketAddr,
        start: usize,
    ) -> Option<usize> {
        let mut receiver = Receiver {
            routing,
            udp,
            device,
            batch: &mut self.batch,
            scratch: &mut self.scratch,
            locked: None,
        };
        if len == 0 {
            // An empty datagram is one too, and no WireGuard message: counted as malformed.
            receiver.datagram(&[], from);
            return None;
        }
        let mut at = start;
        for datagram in self.buf[start..len].chunks(stride) {
            at += datagram.len();
            receiver.datagram(datagram, from);
            if receiver.batch.is_full() && at < len {
                return Some(at);
            }
        }
        None
    }
}

/// Counts a receive of `len` bytes in datagrams of `stride`.
fn count_received(device: &Device, len: usize, stride: usize) {
    let c = &device.counters;
    // An empty receive is one empty datagram.
    let datagrams = len.div_ceil(stride).max(1);
    Counters::add(&c.udp_datagrams_received, datagrams as u64);
    if datagrams > 1 {
        Counters::add(&c.udp_gro_receives, 1);
    }
}

/// Runs the UDP -> TUN direction until the endpoint stops.
pub(crate) fn run(device: &Device) {
    let mut rx = Rx::new();
    let c = &device.counters;
    while !device.stopping.load(Ordering::Relaxed) {
        let udp = device.udp();
        let (len, stride, from) = match udp.recv(&mut rx.buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => {
                Counters::add(&c.udp_receive_errors, 1);
                continue;
            }
        };
        let routing = device.routing();
        count_received(device, len, stride);
        let mut start = 0;
        while let Some(next) = rx.decrypt(device, &routing, &udp, len, stride, from, start) {
            write(device, &mut rx.batch);
            start = next;
        }
        write(device, &mut rx.batch);
    }
}

/// Writes the batch to the TUN device, counting what happened.
fn write(device: &Device, batch: &mut PacketBatch) {
    if !batch.is_empty() {
        let n = batch.len();
        count_written(device, n, batch.write_to(&device.tun));
    }
}

/// Counts how the write of a batch of `n` packets went.
fn count_written(device: &Device, n: usize, result: tun::Result<usize>) {
    let c = &device.counters;
    match result {
        Ok(_) => Counters::add(&c.tun_packets_written, n as u64),
        Err(tun::Error::Batch(partial)) => {
            Counters::add(&c.tun_packets_written, partial.written as u64);
            Counters::add(&c.tun_write_errors, 1);
        }
        Err(_) => Counters::add(&c.tun_write_errors, 1),
    }
}
