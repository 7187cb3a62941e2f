//! The read path: one `read()` per packet (or super-packet), handed out into the caller's buffers.

use std::ops::Range;
use std::time::{Duration, Instant};

use tun_offload::wire::MAX_LINK_HEADER_LEN;
use tun_offload::{Layer, MAX_PACKET, SplitState, VirtioNetHdr};
use tun_sys::Interest;

use crate::device::Tun;
use crate::error::{Error, Result};
use crate::patience::Patience;

/// A wait shorter than this returned at once: the fd was not idle.
const SLEPT: Duration = Duration::from_micros(5);

/// Read-side state, guarded by the read lock: the buffer one `read()` lands in and what of it is still owed to
/// the caller.
pub(crate) struct Reader {
    /// Room for one virtio-net header (when the device has it) and the largest packet (with its Ethernet
    /// header on L2). Allocated once.
    buf: Vec<u8>,
    layer: Layer,
    pending: Pending,
    /// The fd had nothing at the last read: the next blocking read waits for it first instead of trying a
    /// `read()` that most likely fails (a sparse flow, such as the ACKs of a TCP stream, sleeps before every
    /// packet, and this saves one system call per packet).
    idle: bool,
}

impl std::fmt::Debug for Reader {
    /// The state, not the 64 KiB buffer.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("buf_len", &self.buf.len())
            .field("pending", &self.pending)
            .finish()
    }
}

/// What of `Reader::buf` has not been handed out yet.
#[derive(Debug)]
enum Pending {
    Nothing,
    /// Without a virtio-net header: one packet at these bytes (the caller's buffer was too small, say).
    Packet(Range<usize>),
    /// With a virtio-net header: the first `len` bytes are a read being split, `state` says how far.
    Split {
        len: usize,
        state: SplitState,
    },
}

impl Reader {
    pub(crate) fn new(vnet_hdr: bool, layer: Layer) -> Self {
        let hdr = if vnet_hdr { VirtioNetHdr::LEN } else { 0 };
        Self {
            buf: vec![0; hdr + largest_packet(layer)],
            layer,
            pending: Pending::Nothing,
            idle: false,
        }
    }

    /// Takes in a `read()` of `len` bytes into `buf`. With a virtio-net header the read is validated and
    /// becomes a split; a read the offload engine refuses is dropped and reported (it cannot be handed out).
    fn accept(&mut self, len: usize, vnet_hdr: bool) -> Result<()> {
        if !vnet_hdr {
            if len > 0 {
                self.pending = Pending::Packet(0..len);
            }
            return Ok(());
        }
        let state =
            SplitState::with_layer(&self.buf[..len], self.layer).map_err(Error::from_offload)?;
        self.pending = Pending::Split { len, state };
        Ok(())
    }

    /// Hands pending packets out into `bufs`: `Ok(None)` when nothing is pending, `Ok(Some(n))` for `n >= 1`
    /// packets, or [`Error::BufferTooSmall`] with everything kept for the next call.
    fn deliver<B: AsMut<[u8]>>(
        &mut self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<Option<usize>> {
        match &mut self.pending {
            Pending::Nothing => Ok(None),
            Pending::Packet(range) => {
                let packet = &self.buf[range.clone()];
                let dst = bufs[0].as_mut();
                let need = offset.saturating_add(packet.len());
                let have = dst.len();
                let Some(dst) = dst.get_mut(offset..need) else {
                    return Err(Error::BufferTooSmall {
                        index: 0,
                        need,
                        have,
                    });
                };
                dst.copy_from_slice(packet);
                sizes[0] = packet.len();
                self.pending = Pending::Nothing;
                Ok(Some(1))
            }
            Pending::Split { len, state } => {
                let count = state
                    .next_batch(&self.buf[..*len], bufs, sizes, offset)
                    .map_err(Error::from_offload);
                if state.is_done()
                    || count.is_err() && !matches!(count, Err(Error::BufferTooSmall { .. }))
                {
                    // Finished, or the engine cannot go on with this read: it is dropped, with the error.
                    self.pending = Pending::Nothing;
                }
                match count? {
                    0 => Ok(None),
                    n => Ok(Some(n)),
                }
            }
        }
    }
}

impl Tun {
    /// Reads packets into `bufs`, each at `bufs[i][offset..]`, its length in `sizes[i]`; returns how many
    /// (at least 1, at most [`batch_size`](Self::batch_size)).
    ///
    /// A packet is an IP packet, or on an L2 device an Ethernet frame ([`Tun::layer`]). Blocks until a packet
    /// arrives or the device is closed ([`Error::Closed`]). With offloads on, one super-packet from the kernel
    /// (on L2 a super-frame) becomes several packets; if `bufs` is shorter than that, the rest are
    /// returned by the next call. A buffer too small for its packet is [`Error::BufferTooSmall`] and loses
    /// nothing: the packet waits for the next call.
    ///
    /// ```no_run
    /// let tun = tun::Builder::new().name("tun%d").offload(true).build()?;
    /// let mut bufs = vec![vec![0u8; 65535]; tun.batch_size()];
    /// let mut sizes = vec![0usize; bufs.len()];
    /// let n = tun.read_packets(&mut bufs, &mut sizes, 0)?;
    /// for (buf, &len) in bufs.iter().zip(&sizes).take(n) {
    ///     println!("IPv{} packet of {len} bytes", buf[0] >> 4);
    /// }
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for no buffers or `sizes` shorter than `bufs`; [`Error::BufferTooSmall`]
    /// (nothing lost); [`Error::Closed`] once closed; [`Error::InvalidPacket`] for a super-packet the kernel
    /// handed over that cannot be split (dropped; the next call goes on); [`Error::Io`] when `read` fails
    /// (`EBADFD` once the device is deleted).
    pub fn read_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<usize> {
        self.read_packets_within(bufs, sizes, offset, Patience::Forever)
    }

    /// [`read_packets`](Self::read_packets) that never waits: packets split from an earlier read are handed
    /// out without a system call; otherwise one non-blocking `read()`, and [`Error::WouldBlock`] when the
    /// kernel has nothing. Wait for readiness on the fd ([`AsFd`](std::os::fd::AsFd), `POLLIN`) with any
    /// event loop, then call it again.
    ///
    /// A thread blocked in [`read_packets`](Self::read_packets) on the same `Tun` holds the read side until it
    /// returns; this call then waits for it.
    pub fn try_read_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<usize> {
        self.read_packets_within(bufs, sizes, offset, Patience::Never)
    }

    /// [`read_packets`](Self::read_packets) that waits at most `timeout` for a packet: [`Error::TimedOut`]
    /// when none came (a transient error; nothing is lost).
    pub fn read_packets_timeout<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
        timeout: Duration,
    ) -> Result<usize> {
        // A timeout too large for an Instant is as good as none.
        let patience = Instant::now()
            .checked_add(timeout)
            .map_or(Patience::Forever, Patience::Until);
        self.read_packets_within(bufs, sizes, offset, patience)
    }

    /// Reads one packet into `buf` and returns its length, blocking until there is one. With offloads on,
    /// the packets split from a super-packet come out one per call, none lost.
    ///
    /// # Errors
    /// Those of [`read_packets`](Self::read_packets); a buffer too small for the packet is
    /// [`Error::BufferTooSmall`], and the packet stays for the next call.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let mut size = [0usize];
        self.read_packets(&mut [buf], &mut size, 0)?;
        Ok(size[0])
    }

    fn read_packets_within<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
        patience: Patience,
    ) -> Result<usize> {
        check_read_args(bufs.len(), sizes.len())?;
        let mut reader = self.reader.lock();
        loop {
            self.check_open()?;
            if let Some(count) = reader.deliver(bufs, sizes, offset)? {
                return Ok(count);
            }
            if !self.vnet_hdr
                && let Some(room) = bufs[0].as_mut().get_mut(offset..)
                && room.len() >= largest_packet(reader.layer)
            {
                // The caller's buffer holds any packet: read straight into it, no copy. (A shorter one
                // would have the kernel cut a longer packet to its length without a word.)
                let len = self.read_once(room, patience, &mut reader.idle)?;
                if len > 0 {
                    sizes[0] = len;
                    return Ok(1);
                }
                continue;
            }
            let reader = &mut *reader;
            let len = self.read_once(&mut reader.buf, patience, &mut reader.idle)?;
            reader.accept(len, self.vnet_hdr)?;
        }
    }

    /// True when packets split from an earlier read wait to be handed out: a read returns them without the fd.
    #[cfg(feature = "tokio")]
    pub(crate) fn has_pending_read(&self) -> bool {
        !matches!(self.reader.lock().pending, Pending::Nothing)
    }

    /// One `read()`, waiting (cancellably) as `patience` allows while the fd has nothing. `idle` says
    /// whether the fd had nothing last time: then it waits before reading, and it is updated for next time.
    pub(crate) fn read_once(
        &self,
        buf: &mut [u8],
        patience: Patience,
        idle: &mut bool,
    ) -> Result<usize> {
        if *idle && patience != Patience::Never {
            let started = Instant::now();
            self.wait(Interest::Read, patience)?;
            // Ready at once: packets come faster than they are read, so reads go first again.
            *idle = started.elapsed() >= SLEPT;
        }
        let mut empty = false;
        let len = self.retry_io("read", Interest::Read, patience, |fd| {
            let read = tun_sys::io::read(fd, buf);
            empty |= matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            read
        })?;
        *idle |= empty;
        Ok(len)
    }
}

/// The longest packet a read of a device of `layer` hands over: an IP packet of 65535 bytes, on L2 with the
/// longest Ethernet header in front (a TAP device's MTU leaves room for an untagged header only, and VLAN
/// tags come on top).
pub(crate) fn largest_packet(layer: Layer) -> usize {
    match layer {
        Layer::L2 => MAX_PACKET + MAX_LINK_HEADER_LEN,
        _ => MAX_PACKET,
    }
}

/// Refuses a read into no buffers, or with fewer sizes than buffers.
pub(crate) fn check_read_args(bufs: usize, sizes: usize) -> Result<()> {
    if bufs == 0 {
        return Err(Error::InvalidArgument("bufs is empty"));
    }
    if sizes < bufs {
        return Err(Error::InvalidArgument("sizes is shorter than bufs"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use tun_offload::virtio::{FLAG_NEEDS_CSUM, GSO_TCPV4};
    use tun_test_support::packets::{tcp4_checksum_ok, tcp4_segment, with_partial_checksum};

    /// A read as the kernel hands it over with TSO: virtio-net header, then an IPv4 TCP super-packet
    /// 10.0.0.1:1234 -> 10.0.0.2:80 at sequence number 1000 of `segments` x `mss` payload bytes, whose TCP
    /// checksum field holds the pseudo-header seed.
    fn tso_read(segments: usize, mss: usize) -> Vec<u8> {
        let hdr = VirtioNetHdr {
            flags: FLAG_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: mss as u16,
            csum_start: 20,
            csum_offset: 16,
        };
        let payload: Vec<u8> = (0..segments * mss).map(|i| i as u8).collect();
        let packet = tcp4_segment(
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1234),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            1000,
            &payload,
        );
        let mut read = hdr.to_bytes().to_vec();
        read.extend_from_slice(&with_partial_checksum(packet));
        read
    }

    fn reader_with(read: &[u8]) -> Reader {
        let mut reader = Reader::new(true, Layer::L3);
        reader.buf[..read.len()].copy_from_slice(read);
        reader.accept(read.len(), true).unwrap();
        reader
    }

    #[test]
    fn super_packet_comes_out_one_segment_per_call_with_one_buffer() {
        let mut reader = reader_with(&tso_read(3, 100));
        let mut bufs = [vec![0u8; 1500]];
        let mut sizes = [0usize];
        let mut seqs = Vec::new();
        for _ in 0..3 {
            assert_eq!(reader.deliver(&mut bufs, &mut sizes, 0).unwrap(), Some(1));
            let packet = &bufs[0][..sizes[0]];
            assert_eq!(packet.len(), 140);
            assert!(tcp4_checksum_ok(packet));
            seqs.push(u32::from_be_bytes([
                packet[24], packet[25], packet[26], packet[27],
            ]));
        }
        assert_eq!(seqs, [1000, 1100, 1200]);
        assert_eq!(reader.deliver(&mut bufs, &mut sizes, 0).unwrap(), None);
    }

    #[test]
    fn too_small_buffer_keeps_the_segment_for_the_next_call() {
        let mut reader = reader_with(&tso_read(2, 100));
        let mut sizes = [0usize; 2];
        let err = reader
            .deliver(&mut [vec![0u8; 16 + 139]], &mut sizes, 16)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::BufferTooSmall {
                    index: 0,
                    need: 156,
                    have: 155
                }
            ),
            "{err:?}"
        );
        let mut bufs = [vec![0u8; 16 + 140], vec![0u8; 16 + 140]];
        assert_eq!(reader.deliver(&mut bufs, &mut sizes, 16).unwrap(), Some(2));
        assert_eq!(sizes, [140, 140]);
        assert!(bufs.iter().all(|b| tcp4_checksum_ok(&b[16..])));
    }

    #[test]
    fn plain_packet_that_does_not_fit_stays_until_a_buffer_does() {
        let mut reader = Reader::new(false, Layer::L3);
        reader.buf[..60].fill(0x45);
        reader.accept(60, false).unwrap();
        let mut sizes = [0usize];
        let err = reader.deliver(&mut [[0u8; 59]], &mut sizes, 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BufferTooSmall {
                    need: 60,
                    have: 59,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut big = [[0u8; 64]];
        assert_eq!(reader.deliver(&mut big, &mut sizes, 4).unwrap(), Some(1));
        assert_eq!(sizes[0], 60);
        assert_eq!(reader.deliver(&mut big, &mut sizes, 4).unwrap(), None);
    }

    #[test]
    fn offset_beyond_every_buffer_is_an_error_not_a_panic() {
        let mut reader = reader_with(&tso_read(2, 100));
        let mut sizes = [0usize];
        let err = reader
            .deliver(&mut [vec![0u8; 10]], &mut sizes, usize::MAX)
            .unwrap_err();
        assert!(matches!(err, Error::BufferTooSmall { .. }), "{err:?}");
        // Still all there.
        assert_eq!(
            reader
                .deliver(&mut [vec![0u8; 1500], vec![0u8; 1500]], &mut [0, 0], 0)
                .unwrap(),
            Some(2)
        );
    }

    #[test]
    fn malformed_read_is_an_offload_error_and_leaves_nothing_pending() {
        let mut read = tso_read(2, 100);
        read[VirtioNetHdr::LEN] = 0x65; // IPv6 version nibble under a TCPV4 header
        let mut reader = Reader::new(true, Layer::L3);
        reader.buf[..read.len()].copy_from_slice(&read);
        assert!(matches!(
            reader.accept(read.len(), true),
            Err(Error::InvalidPacket(_))
        ));
        assert_eq!(
            reader.deliver(&mut [vec![0u8; 1500]], &mut [0], 0).unwrap(),
            None
        );
    }
}
