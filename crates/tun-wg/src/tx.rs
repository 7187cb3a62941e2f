//! TUN -> UDP: one `read_packets` (a super-packet split into MTU-sized packets), each packet encrypted for
//! the peer whose allowed IPs hold its destination, and one GSO `sendmsg` per run of equal-sized datagrams
//! to one endpoint.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use boringtun::noise::TunnResult;

use crate::allowed_ips::packet_addr;
use crate::counters::Counters;
use crate::device::{Device, Routing};
use crate::udp::{MAX_GSO_BYTES, Udp};

/// Room in front of each packet read: none is needed.
const READ_OFFSET: usize = 0;

/// The largest IP packet a read hands over.
const MAX_PACKET: usize = 65_535;

/// The WireGuard data message's overhead: 16 bytes of header, 16 of tag.
const OVERHEAD: usize = 32;

/// boringtun's `encapsulate` wants at least this much room (a handshake initiation) whatever the packet.
const MIN_DST: usize = 148;

/// Packets one pass gathers without offloads before it encrypts and sends them: every read is one packet
/// then, and gathering those the device already holds lets their datagrams leave in one GSO send instead of
/// one `sendmsg` each (1.2-1.8 times the throughput, one stream). With offloads a read is a whole
/// super-packet already, and a non-blocking read after it mostly finds nothing: measured, no gain and a
/// little more CPU per byte, so a pass there is one read.
const GATHER: usize = 64;

/// The buffer datagrams are encrypted into: a batch's worth at MTU 1500 and more; when full, what it holds
/// is sent and it starts over.
const OUT_BYTES: usize = 512 * 1024;

/// Datagrams back to back in the output buffer for one endpoint, all `segment` bytes but maybe the last.
#[derive(Debug, Clone, Copy)]
struct Run {
    to: SocketAddr,
    start: usize,
    end: usize,
    segment: usize,
    /// A shorter datagram ended it.
    closed: bool,
}

/// The sending side's buffers, allocated once.
struct Sender {
    out: Vec<u8>,
    used: usize,
    runs: Vec<Run>,
}

impl Sender {
    fn new() -> Self {
        Self {
            out: vec![0; OUT_BYTES],
            used: 0,
            runs: Vec::with_capacity(256),
        }
    }

    /// Room for one more encryption of a `len`-byte packet, or `None` when what the buffer holds must be
    /// sent first.
    fn room(&mut self, len: usize) -> Option<&mut [u8]> {
        let need = (len + OVERHEAD).max(MIN_DST);
        (self.out.len() - self.used >= need).then(|| &mut self.out[self.used..])
    }

    /// Records the datagram of `len` bytes just written at `used`.
    fn push(&mut self, to: SocketAddr, len: usize, max_segments: usize) {
        let start = self.used;
        self.used += len;
        if let Some(run) = self.runs.last_mut() {
            let count = (run.end - run.start) / run.segment;
            if run.to == to
                && !run.closed
                && run.end == start
                && len <= run.segment
                && count < max_segments
                && run.end - run.start + len <= MAX_GSO_BYTES
            {
                run.end += len;
                run.closed = len < run.segment;
                return;
            }
        }
        self.runs.push(Run {
            to,
            start,
            end: start + len,
            segment: len,
            closed: false,
        });
    }

    /// Sends every run and empties the buffer.
    fn flush(&mut self, device: &Device, udp: &Udp) {
        for run in &self.runs {
            let failed = udp.send(run.to, &self.out[run.start..run.end], run.segment);
            count_sent(device, run, failed);
        }
        self.runs.clear();
        self.used = 0;
    }
}

/// Counts the datagrams of `run` sent, and the `failed` sends.
fn count_sent(device: &Device, run: &Run, failed: usize) {
    let c = &device.counters;
    let datagrams = (run.end - run.start).div_ceil(run.segment);
    Counters::add(
        &c.udp_datagrams_sent,
        (datagrams - failed.min(datagrams)) as u64,
    );
    Counters::add(&c.udp_send_errors, failed as u64);
    if datagrams > 1 {
        Counters::add(&c.udp_gso_sends, 1);
    }
}

/// How many segments a super-packet the device is handed may have so that its datagrams leave in one GSO
/// send: as many datagrams of a full `mtu`-sized packet as one send carries (45 at MTU 1420), and no more
/// than the socket's GSO takes. Larger super-packets need two sends at one end and two GRO receives and more
/// TUN writes at the other.
pub(crate) fn super_packet_segments(mtu: usize, max_udp_segments: usize) -> u32 {
    let fit = MAX_GSO_BYTES / (mtu + OVERHEAD);
    u32::try_from(fit.min(max_udp_segments).max(1)).unwrap_or(u32::MAX)
}

/// WireGuard pads plaintext to a multiple of 16 (never past the MTU): it hides lengths a little, and makes
/// the packets of a flow encrypt to equal sizes, which is what lets GSO carry them in one send.
fn padded(len: usize, mtu: usize) -> usize {
    if len >= mtu {
        len
    } else {
        len.next_multiple_of(16).min(mtu)
    }
}

/// The sending direction's state: the packets read last, the peer each goes to, and the encrypted
/// datagrams waiting to be sent. The loop ([`run`]) drives it: how it waits for the device and the socket
/// is the loop's alone.
struct Tx {
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    targets: Vec<Option<usize>>,
    sender: Sender,
    /// No offloads: a read is one packet, and what else the device holds is gathered after it.
    gather: bool,
}

impl Tx {
    fn new(tun: &tun::Tun) -> Self {
        let gather = tun.batch_size() == 1;
        let batch = if gather { GATHER } else { tun.batch_size() };
        Self {
            bufs: (0..batch)
                .map(|_| vec![0u8; READ_OFFSET + MAX_PACKET + 16])
                .collect(),
            sizes: vec![0usize; batch],
            targets: vec![None; batch],
            sender: Sender::new(),
            gather,
        }
    }

    /// After a read of `n` packets: whatever else the device holds, without waiting (no offloads only);
    /// counts them and returns how many there are now.
    fn gather_more(&mut self, tun: &tun::Tun, mut n: usize) -> usize {
        let batch = self.bufs.len();
        // An error here comes again at the next read.
        while self.gather && n < batch {
            match tun.try_read_packets(&mut self.bufs[n..], &mut self.sizes[n..], READ_OFFSET) {
                Ok(more) => n += more,
                Err(_) => break,
            }
        }
        n
    }

    /// Finds the peer of each of the `n` packets read.
    fn route(&mut self, device: &Device, routing: &Routing, n: usize) {
        Counters::add(&device.counters.tun_packets_read, n as u64);
        for i in 0..n {
            let packet = &self.bufs[i][READ_OFFSET..READ_OFFSET + self.sizes[i]];
            self.targets[i] =
                packet_addr(packet, false).and_then(|dst| routing.table.lookup(dst).copied());
        }
    }

    /// Encrypts packets `from..n` into the output buffer, one peer lock per run of packets to one peer.
    /// Returns `Some(k)` when the buffer is full before packet `k`: send what it holds, then go on from `k`.
    fn encrypt(
        &mut self,
        device: &Device,
        routing: &Routing,
        udp: &Udp,
        n: usize,
        from: usize,
    ) -> Option<usize> {
        let c = &device.counters;
        let mtu = device.mtu.load(Ordering::Relaxed) as usize;
        let max_segments = udp.max_segments();
        let (bufs, sizes, targets, sender) =
            (&mut self.bufs, &self.sizes, &self.targets, &mut self.sender);
        let mut i = from;
        while i < n {
            let Some(at) = targets[i] else {
                Counters::add(&c.dropped_no_peer_for_destination, 1);
                i += 1;
                continue;
            };
            let end = (i..n).find(|&j| targets[j] != Some(at)).unwrap_or(n);
            let mut state = routing.peers[at].state.lock();
            let endpoint = state.endpoint;
            let (Some(to), Some(_)) = (endpoint, state.tunn.as_ref()) else {
                Counters::add(&c.dropped_no_endpoint, (end - i) as u64);
                i = end;
                continue;
            };
            for k in i..end {
                let len = sizes[k];
                let padded_len = padded(len, mtu).min(bufs[k].len() - READ_OFFSET);
                bufs[k][READ_OFFSET + len..READ_OFFSET + padded_len].fill(0);
                let plain = &bufs[k][READ_OFFSET..READ_OFFSET + padded_len];
                let Some(dst) = sender.room(padded_len) else {
                    return Some(k);
                };
                let tunn = state.tunn.as_mut().expect("checked above");
                match tunn.encapsulate(plain, dst) {
                    TunnResult::WriteToNetwork(datagram) => {
                        let sent = datagram.len();
                        state.tx_bytes += sent as u64;
                        sender.push(to, sent, max_segments);
                    }
                    // Queued in the tunnel until the handshake in progress completes.
                    TunnResult::Done => {}
                    _ => Counters::add(&c.dropped_other, 1),
                }
            }
            drop(state);
            i = end;
        }
        None
    }
}

/// What a failed read means: `true` when the direction stops (the device is closed or gone).
fn read_failed(device: &Device, e: &tun::Error) -> bool {
    match e {
        tun::Error::Closed => true,
        e if e.is_fatal() => {
            if !device.stopping.load(Ordering::Relaxed) {
                eprintln!("tun-wg: reading the TUN device: {e}");
            }
            true
        }
        _ => {
            Counters::add(&device.counters.tun_read_errors, 1);
            false
        }
    }
}

/// Runs the TUN -> UDP direction until the device is closed.
pub(crate) fn run(device: &Device) {
    let tun = &device.tun;
    let mut tx = Tx::new(tun);
    loop {
        let n = match tun.read_packets(&mut tx.bufs, &mut tx.sizes, READ_OFFSET) {
            Ok(n) => tx.gather_more(tun, n),
            Err(e) if read_failed(device, &e) => return,
            Err(_) => continue,
        };
        let routing = device.routing();
        let udp = device.udp();
        tx.route(device, &routing, n);
        let mut from = 0;
        while let Some(next) = tx.encrypt(device, &routing, &udp, n, from) {
            tx.sender.flush(device, &udp);
            from = next;
        }
        tx.sender.flush(device, &udp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rounds_to_16_within_the_mtu() {
        assert_eq!(padded(1, 1420), 16);
        assert_eq!(padded(16, 1420), 16);
        assert_eq!(padded(1410, 1420), 1420);
        assert_eq!(padded(1420, 1420), 1420);
        assert_eq!(padded(1500, 1420), 1500);
        assert_eq!(padded(0, 1420), 0);
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn a_super_packet_fits_one_gso_send_once_encrypted() {
        // 45 datagrams of 1452 bytes are 65340, 46 would be 66792: past 65507.
        assert_eq!(super_packet_segments(1420, 64), 45);
        // Small MTUs: the socket's GSO limit binds; without GSO, one segment; a huge MTU still one.
        assert_eq!(super_packet_segments(576, 64), 64);
        assert_eq!(super_packet_segments(1420, 1), 1);
        assert_eq!(super_packet_segments(65535, 64), 1);
    }

    #[test]
    fn equal_datagrams_to_one_endpoint_share_a_run_and_a_shorter_one_ends_it() {
        let mut s = Sender::new();
        for len in [1452, 1452, 1452, 700, 1452] {
            s.push(addr(1), len, 64);
        }
        s.push(addr(2), 1452, 64);
        let shape: Vec<(usize, usize, u16)> = s
            .runs
            .iter()
            .map(|r| (r.end - r.start, r.segment, r.to.port()))
            .collect();
        assert_eq!(
            shape,
            [(3 * 1452 + 700, 1452, 1), (1452, 1452, 1), (1452, 1452, 2)]
        );
    }

    #[test]
    fn a_full_buffer_asks_for_a_send_before_more() {
        let mut s = Sender::new();
        assert!(s.room(1420).is_some());
        s.used = OUT_BYTES - 1000;
        assert!(s.room(1420).is_none(), "1452 bytes do not fit in 1000");
        assert!(s.room(900).is_some(), "932 bytes do");
        s.used = OUT_BYTES - 100;
        assert!(
            s.room(1).is_none(),
            "encapsulate wants 148 bytes whatever the packet"
        );
    }

    #[test]
    fn a_run_stays_within_the_segment_count_and_64_kib() {
        let mut s = Sender::new();
        for _ in 0..50 {
            s.push(addr(1), 1452, 64);
        }
        assert_eq!(s.runs.len(), 2);
        assert!(s.runs.iter().all(|r| r.end - r.start <= MAX_GSO_BYTES));
        let mut s = Sender::new();
        for _ in 0..5 {
            s.push(addr(1), 100, 1);
        }
        assert_eq!(s.runs.len(), 5, "without GSO every datagram is a run");
    }
}
