//! The write path: coalescing (GRO) with offloads, then one `write()` per resulting packet, errors reported
//! per packet.

use std::io::IoSlice;
use std::sync::atomic::Ordering;

use tun_offload::wire::IpPacket;
use tun_offload::{GroOptions, GroTable, OffloadError, VirtioNetHdr};
use tun_sys::{Interest, Offloads};

use crate::device::Tun;
use crate::error::{BatchError, Error, PacketError, Result};
use crate::patience::Patience;

/// Write-side state, guarded by the write lock: the GRO table and the list of buffers to write, both reused
/// so that a batch allocates nothing once warm.
#[derive(Debug)]
pub(crate) struct Writer {
    table: GroTable,
    to_write: Vec<usize>,
    /// A batch that stopped at a full queue ([`Error::WouldBlock`]) with part of it written, and where to go on
    /// when the same batch is offered again: it was coalesced already, and must not be coalesced twice.
    resume: Option<Resume>,
}

/// How a device's writes go: the virtio-net header in front of each packet (10 bytes or none), and whether and
/// what to coalesce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSettings {
    pub(crate) hdr_len: usize,
    /// `None`: every packet is written on its own.
    pub(crate) gro: Option<GroOptions>,
}

/// Where a non-blocking write batch stopped.
#[derive(Debug)]
struct Resume {
    batch: BatchId,
    /// The position in `to_write` of the next packet to write.
    next: usize,
    written: usize,
    failed: Vec<PacketError>,
    /// Whether merged packets are gathered from the buffers the plan in the table links.
    gathered: bool,
}

/// What tells one batch from another while its write is pending: where its buffers are, how many, the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchId {
    addr: usize,
    len: usize,
    offset: usize,
}

impl BatchId {
    fn of<B>(bufs: &[B], offset: usize) -> Self {
        Self {
            addr: bufs.as_ptr() as usize,
            len: bufs.len(),
            offset,
        }
    }
}

impl Writer {
    pub(crate) fn new(offload: bool) -> Self {
        let (table, to_write) = if offload {
            (
                GroTable::with_capacity(crate::offload::BATCH_SIZE),
                Vec::with_capacity(crate::offload::BATCH_SIZE),
            )
        } else {
            (GroTable::new(), Vec::new())
        };
        Self {
            table,
            to_write,
            resume: None,
        }
    }

    /// Forgets a batch left half-written by a non-blocking write whose caller gave up on it: the rest of it is
    /// not written.
    #[cfg(feature = "tokio")]
    pub(crate) fn abandon(&mut self) {
        self.resume = None;
    }

    /// Writes the batch `bufs[i][offset..]` as `settings` say, each resulting packet with one call of
    /// `write_frame` (a `writev` of its slices); see [`Tun::write_packets`]. `write_frame` reporting
    /// [`Error::WouldBlock`] stops the batch there: the same batch offered again goes on where it stopped.
    pub(crate) fn write_batch<B: PacketBuf>(
        &mut self,
        bufs: &mut [B],
        offset: usize,
        settings: &WriteSettings,
        mut write_frame: impl FnMut(&[IoSlice<'_>]) -> Result<usize>,
    ) -> Result<usize> {
        let hdr_len = settings.hdr_len;
        let Some(frame_start) = offset.checked_sub(hdr_len) else {
            return Err(Error::InvalidArgument(
                "offset leaves no room for the 10-byte virtio-net header",
            ));
        };
        let batch = BatchId::of(bufs, offset);
        let progress = match self.resume.take() {
            Some(saved) if saved.batch == batch => saved,
            _ => Resume {
                batch,
                next: 0,
                written: 0,
                failed: Vec::new(),
                gathered: self.plan(bufs, offset, frame_start, settings.gro)?,
            },
        };
        let Resume {
            next,
            mut written,
            mut failed,
            gathered,
            ..
        } = progress;
        let bufs: &[B] = bufs;
        let merged = gathered.then_some(&self.table);
        for (position, &index) in self.to_write.iter().enumerate().skip(next) {
            match write_planned(bufs, index, frame_start, hdr_len, merged, &mut write_frame) {
                Ok(packets) => written += packets,
                Err(Error::WouldBlock) => {
                    self.resume = Some(Resume {
                        batch,
                        next: position,
                        written,
                        failed,
                        gathered,
                    });
                    return Err(Error::WouldBlock);
                }
                Err(error) => {
                    let stop = error.is_fatal();
                    failed.push(PacketError { index, error });
                    if stop {
                        let not_attempted = self.to_write.len() - position - 1;
                        return Err(batch_result(written, failed, not_attempted));
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(bufs.len())
        } else {
            Err(batch_result(written, failed, 0))
        }
    }

    /// Plans the writes of a new batch into `to_write`: coalesced with `gro`, else one write per buffer.
    /// Returns whether merged packets are to be gathered from the buffers the plan in `table` links (rather
    /// than merged in place).
    fn plan<B: PacketBuf>(
        &mut self,
        bufs: &mut [B],
        offset: usize,
        frame_start: usize,
        gro: Option<GroOptions>,
    ) -> Result<bool> {
        let Writer {
            table, to_write, ..
        } = self;
        to_write.clear();
        // A buffer shorter than the offset is one bad packet, not a bad batch: such a batch is written one by
        // one, so that it is reported alone.
        let options = gro.filter(|_| bufs.iter().all(|buf| buf.as_ref().len() >= offset));
        let Some(options) = options else {
            to_write.extend(0..bufs.len());
            for buf in bufs.iter_mut() {
                if let Some(hdr) = buf.as_mut().get_mut(frame_start..offset) {
                    hdr.fill(0);
                }
            }
            return Ok(false);
        };
        let room = offset + tun_offload::MAX_PACKET;
        match B::as_vecs(bufs).filter(|vecs| vecs.iter().all(|v| v.capacity() >= room)) {
            Some(vecs) => {
                tun_offload::handle_gro_with(vecs, offset, table, options, to_write)?;
                Ok(false)
            }
            None => {
                tun_offload::plan_gro(bufs, offset, table, options, to_write)?;
                Ok(true)
            }
        }
    }
}

/// Writes `bufs[index]` from `frame_start` on (virtio-net header, then packet), followed by the payloads
/// `merged` says were merged into it, with one call of `write_frame`. Returns how many of the caller's packets
/// that was.
fn write_planned<B: AsRef<[u8]>>(
    bufs: &[B],
    index: usize,
    frame_start: usize,
    hdr_len: usize,
    merged: Option<&GroTable>,
    write_frame: &mut impl FnMut(&[IoSlice<'_>]) -> Result<usize>,
) -> Result<usize> {
    let Some(frame) = bufs[index]
        .as_ref()
        .get(frame_start..)
        .filter(|frame| frame.len() > hdr_len)
    else {
        return Err(Error::InvalidArgument(
            "empty packet (buffer not longer than offset)",
        ));
    };
    let mut iov = [IoSlice::new(&[]); GATHER];
    iov[0] = IoSlice::new(frame);
    let mut used = 1;
    let mut spilled: Vec<IoSlice<'_>> = Vec::new();
    let mut len = frame.len() - hdr_len;
    for payload in merged
        .into_iter()
        .flat_map(|table| table.merged_payloads(bufs, index, frame_start + hdr_len))
    {
        len += payload.len();
        if used < GATHER {
            iov[used] = IoSlice::new(payload);
            used += 1;
        } else {
            // More segments than a 64 KiB packet of full-sized ones has (segments under 1 KiB): rare enough
            // to allocate. plan_gro keeps it within one writev (PLAN_MAX_SEGMENTS).
            if spilled.is_empty() {
                spilled.extend_from_slice(&iov);
            }
            spilled.push(IoSlice::new(payload));
        }
    }
    check_packet(&frame[hdr_len..], len)?;
    let slices = if spilled.is_empty() {
        &iov[..used]
    } else {
        &spilled[..]
    };
    write_frame(slices).map_err(|e| explain_gso_failure(e, frame, hdr_len))?;
    Ok(packets_in(frame, hdr_len, len))
}

/// A buffer [`Tun::write_packets`] can write from: `Vec<u8>`, `&mut [u8]`, `Box<[u8]>` or `[u8; N]`. Its
/// length marks the end of its packet.
pub trait PacketBuf: AsRef<[u8]> + AsMut<[u8]> + Sized {
    /// The batch as growable `Vec`s, when it is one (`None` by default): such a batch, when every `Vec` has
    /// room for a 64 KiB packet, is coalesced in place, which writes each merged packet from one contiguous
    /// buffer (measured here about 5 % faster on a saturated core than gathering the segments).
    fn as_vecs(bufs: &mut [Self]) -> Option<&mut [Vec<u8>]> {
        let _ = bufs;
        None
    }
}

impl PacketBuf for Vec<u8> {
    fn as_vecs(bufs: &mut [Self]) -> Option<&mut [Vec<u8>]> {
        Some(bufs)
    }
}

impl PacketBuf for &mut [u8] {}

impl PacketBuf for Box<[u8]> {}

impl<const N: usize> PacketBuf for [u8; N] {}

/// Slices one `writev` takes without spilling into a heap list: a packet and 64 payloads merged behind it
/// (a 64 KiB packet of 1448-byte TCP segments has 45).
const GATHER: usize = 1 + 64;

impl Tun {
    /// Writes the packets `bufs[i][offset..]` (each buffer's length marks its packet's end); returns how many
    /// of the caller's packets were written (all of them on `Ok`).
    ///
    /// With a virtio-net header on the fd (see [`has_vnet_hdr`](Self::has_vnet_hdr)) `offset` must be at least
    /// 10: the header goes into `bufs[i][offset - 10..offset]`. With offloads, packets of one TCP flow (and of
    /// one UDP flow when USO is on) are coalesced into super-packets of up to 64 KiB. `Vec<u8>` buffers with
    /// capacity for `offset + 65535` bytes (as [`PacketBatch`](crate::PacketBatch) makes them) are merged in
    /// place: the first buffer of a merged packet grows and holds it whole. Any other batch is gathered: each
    /// merged packet is written with one `writev` of its first packet and the payloads of the others, straight
    /// from the caller's buffers, so buffers need no spare room. Either way the headers of a merged packet's
    /// first segment are rewritten, and a segment that merges in front of an earlier one may swap places with
    /// it in `bufs`.
    ///
    /// A packet the kernel refuses does not stop the others: the result is then [`Error::Batch`] listing each
    /// failed buffer by index. A closed device gives [`Error::Closed`].
    ///
    /// ```no_run
    /// let tun = tun::Builder::new().name("tun%d").offload(true).build()?;
    /// // Room for the virtio-net header in front of each packet.
    /// let offset = if tun.has_vnet_hdr() { 10 } else { 0 };
    /// # let packet: &[u8] = &[];
    /// let mut buf = vec![0u8; offset];
    /// buf.extend_from_slice(packet); // an IPv4 or IPv6 packet
    /// match tun.write_packets(&mut [buf], offset) {
    ///     Ok(n) => println!("{n} packet(s) written"),
    ///     Err(e) if e.is_transient() => println!("try again later: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once closed; [`Error::InvalidArgument`] for an `offset` below 10 with a virtio-net
    /// header; for a single failure, that failure ([`Error::InvalidPacket`] for a packet refused before the
    /// write, [`Error::Io`] for one the kernel refused); for several, or one after others were written,
    /// [`Error::Batch`] with the caller's packets written and each failure by buffer index.
    pub fn write_packets<B: PacketBuf>(&self, bufs: &mut [B], offset: usize) -> Result<usize> {
        self.write_packets_within(bufs, offset, Patience::Forever)
    }

    /// [`write_packets`](Self::write_packets) that never waits: when the kernel's queue is full it returns
    /// [`Error::WouldBlock`]. Wait for the fd to be writable (`POLLOUT`) with any event loop, then call it
    /// again **with the same batch, unchanged**: the batch was coalesced already and part of it may have been
    /// written, so the call goes on where it stopped and returns the count for the whole batch. A call with
    /// another batch (other buffers, count or offset) drops what was left of the earlier one.
    ///
    /// A TUN device's queue is rarely full (its send buffer is unlimited unless lowered), so this almost
    /// always writes the whole batch at once.
    pub fn try_write_packets<B: PacketBuf>(&self, bufs: &mut [B], offset: usize) -> Result<usize> {
        self.write_packets_within(bufs, offset, Patience::Never)
    }

    fn write_packets_within<B: PacketBuf>(
        &self,
        bufs: &mut [B],
        offset: usize,
        patience: Patience,
    ) -> Result<usize> {
        // Closed comes first: once closed, no argument makes a call useful.
        self.check_open()?;
        let uso = Offloads::USO4 | Offloads::USO6;
        let settings = WriteSettings {
            hdr_len: if self.vnet_hdr { VirtioNetHdr::LEN } else { 0 },
            gro: (!self.offloads.is_empty() && self.gro.load(Ordering::Relaxed)).then(|| {
                GroOptions {
                    tcp: true,
                    udp: self.offloads.contains(uso) && self.udp_gro.load(Ordering::Relaxed),
                }
            }),
        };
        let mut writer = self.writer.lock();
        self.check_open()?;
        writer.write_batch(bufs, offset, &settings, |frame| {
            self.write_frame(frame, patience)
        })
    }

    /// One `writev()` of one packet (its header first when there is one), waiting while the queue is full as
    /// `patience` allows.
    pub(crate) fn write_frame(&self, frame: &[IoSlice<'_>], patience: Patience) -> Result<usize> {
        self.retry_io("write", Interest::Write, patience, |fd| {
            tun_sys::io::writev(fd, frame)
        })
    }

    /// One packet for `io::Write` and async sends: sent with a zero virtio-net header when the fd has one.
    pub(crate) fn write_one(&self, packet: &[u8], patience: Patience) -> Result<usize> {
        let _writer = self.writer.lock();
        self.check_open()?;
        check_packet(packet, packet.len())?;
        let zero = [0u8; VirtioNetHdr::LEN];
        let hdr: &[u8] = if self.vnet_hdr { &zero } else { &[] };
        let written = self.write_frame(&[IoSlice::new(hdr), IoSlice::new(packet)], patience)?;
        Ok(written.saturating_sub(hdr.len()))
    }
}

/// Refuses what is not one whole IP packet before it reaches the kernel, which would accept a truncated or
/// oversized packet and drop it silently later. `packet` holds at least the headers; `len` is the length of
/// the whole packet (more than `packet` when payloads merged into it follow in other buffers).
fn check_packet(packet: &[u8], len: usize) -> Result<()> {
    let ip = IpPacket::new_checked(packet).map_err(Error::InvalidPacket)?;
    if len > tun_offload::MAX_PACKET {
        return Err(Error::InvalidPacket(OffloadError::Malformed(
            "packet longer than 65535 bytes",
        )));
    }
    if ip.total_len() > len {
        return Err(Error::InvalidPacket(OffloadError::TooShort {
            what: "IP packet (its length field claims more)",
            need: ip.total_len(),
            have: len,
        }));
    }
    Ok(())
}

/// The caller's packets in one written frame (virtio-net header when `hdr_len > 0`, then an IP packet of
/// `len` bytes): the segments of a coalesced super-packet, each of which was one packet of the batch, or 1.
fn packets_in(frame: &[u8], hdr_len: usize, len: usize) -> usize {
    let Some(hdr) = VirtioNetHdr::decode(frame)
        .ok()
        .filter(|h| hdr_len > 0 && h.gso_kind() != tun_offload::virtio::GSO_NONE && h.gso_size > 0)
    else {
        return 1;
    };
    len.saturating_sub(usize::from(hdr.hdr_len))
        .div_ceil(usize::from(hdr.gso_size))
        .max(1)
}

/// A refused write of a coalesced super-packet says so: some kernels reject GSO writes the offload rules
/// allow, and [`Tun::set_gro`] is the way out.
fn explain_gso_failure(error: Error, frame: &[u8], hdr_len: usize) -> Error {
    let is_gso = hdr_len > 0
        && VirtioNetHdr::decode(frame).is_ok_and(|h| h.gso_kind() != tun_offload::virtio::GSO_NONE);
    match error {
        Error::Io {
            op: "write",
            device,
            source,
        } if is_gso && source.raw_os_error() == Some(libc::EINVAL) => Error::Io {
            op: "write of a coalesced GSO super-packet (Tun::set_gro(false) turns coalescing off)",
            device,
            source,
        },
        other => other,
    }
}

/// The error of a batch with failures: a lone failure as itself (nothing else to report), else a
/// [`BatchError`].
fn batch_result(written: usize, mut failed: Vec<PacketError>, not_attempted: usize) -> Error {
    // Nothing was written and there is one reason: that reason is the whole story (a closed device, or the
    // only packet of the batch refused).
    let alone =
        written == 0 && failed.len() == 1 && (not_attempted == 0 || failed[0].error.is_fatal());
    if alone && let Some(only) = failed.pop() {
        return only.error;
    }
    Error::Batch(BatchError {
        written,
        failed,
        not_attempted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn ipv4(total_len: u16, buf_len: usize) -> Vec<u8> {
        let mut p = vec![0u8; buf_len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total_len.to_be_bytes());
        p
    }

    /// An IPv4 TCP segment 10.0.0.1:1234 -> 10.0.0.2:80 (ACK) at `seq` with `len` payload bytes and valid
    /// checksums, behind 10 bytes of room, in a buffer of `capacity` bytes.
    fn tcp_segment(seq: u32, len: usize, capacity: usize) -> Vec<u8> {
        use std::net::SocketAddrV4;
        use tun_test_support::packets::{tcp4_segment, with_room};
        let src = SocketAddrV4::new([10, 0, 0, 1].into(), 1234);
        let dst = SocketAddrV4::new([10, 0, 0, 2].into(), 80);
        let payload: Vec<u8> = (0..len).map(|i| (seq as usize + i) as u8).collect();
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(&with_room(10, &tcp4_segment(src, dst, seq, &payload)));
        buf
    }

    /// A stand-in for the device: records each frame written, and reports a full queue on the calls whose
    /// numbers (from 0) are in `full_at`.
    struct FakeQueue {
        frames: Vec<Vec<u8>>,
        calls: usize,
        full_at: Vec<usize>,
    }

    impl FakeQueue {
        fn new(full_at: &[usize]) -> Self {
            Self {
                frames: Vec::new(),
                calls: 0,
                full_at: full_at.to_vec(),
            }
        }

        fn write(&mut self, frame: &[IoSlice<'_>]) -> Result<usize> {
            let call = self.calls;
            self.calls += 1;
            if self.full_at.contains(&call) {
                return Err(Error::WouldBlock);
            }
            let bytes: Vec<u8> = frame.iter().flat_map(|s| s.iter().copied()).collect();
            self.frames.push(bytes);
            Ok(self.frames.last().map_or(0, Vec::len))
        }
    }

    const TCP_GRO: WriteSettings = WriteSettings {
        hdr_len: 10,
        gro: Some(GroOptions {
            tcp: true,
            udp: false,
        }),
    };

    /// Writes `bufs` through a fresh writer until it is done, the queue being full as `full_at` says; the
    /// frames written and the number of `WouldBlock`s.
    fn write_until_done<B: PacketBuf>(
        bufs: &mut [B],
        settings: &WriteSettings,
        full_at: &[usize],
    ) -> (Vec<Vec<u8>>, usize, usize) {
        let mut writer = Writer::new(true);
        let mut queue = FakeQueue::new(full_at);
        let mut would_block = 0;
        loop {
            match writer.write_batch(bufs, 10, settings, |f| queue.write(f)) {
                Ok(n) => return (queue.frames, would_block, n),
                Err(Error::WouldBlock) => would_block += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(would_block < 10, "never finished");
        }
    }

    #[test]
    fn a_batch_stopped_by_a_full_queue_goes_on_where_it_stopped_each_packet_once() {
        let packets = || -> Vec<Vec<u8>> {
            (0..5u8)
                .map(|i| {
                    let mut p = vec![0u8; 10];
                    p.extend(ipv4(28, 28));
                    p[10 + 4] = i; // the IPv4 identification tells them apart
                    p
                })
                .collect()
        };
        let plain = WriteSettings {
            hdr_len: 10,
            gro: None,
        };
        let (whole, _, _) = write_until_done(&mut packets(), &plain, &[]);
        let (resumed, would_block, n) = write_until_done(&mut packets(), &plain, &[2, 3]);
        assert_eq!(would_block, 2);
        assert_eq!(n, 5);
        assert_eq!(resumed, whole);
        let idents: Vec<u8> = resumed.iter().map(|f| f[10 + 4]).collect();
        assert_eq!(idents, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_coalesced_batch_offered_again_is_not_coalesced_twice() {
        // Four segments of one flow become one super-packet; a full queue before it, then after it.
        let segments = |capacity: usize| -> Vec<Vec<u8>> {
            (0..4u32)
                .map(|k| tcp_segment(1000 + k * 100, 100, capacity))
                .chain([tcp_segment(5000, 50, capacity)]) // not in order: written on its own
                .collect()
        };
        for capacity in [0, 10 + tun_offload::MAX_PACKET] {
            // capacity 0: gathered from the buffers; room for 64 KiB: merged in place.
            let (whole, _, _) = write_until_done(&mut segments(capacity), &TCP_GRO, &[]);
            assert_eq!(whole.len(), 2, "one super-packet and one segment");
            assert_eq!(whole[0].len(), 10 + 40 + 400);
            for full_at in [&[0][..], &[1], &[0, 1, 2]] {
                let (resumed, would_block, n) =
                    write_until_done(&mut segments(capacity), &TCP_GRO, full_at);
                assert_eq!(would_block, full_at.len());
                assert_eq!(n, 5);
                assert_eq!(resumed, whole, "capacity {capacity}, full at {full_at:?}");
            }
        }
    }

    #[test]
    fn another_batch_after_a_full_queue_drops_the_rest_of_the_first() {
        let mut writer = Writer::new(true);
        let mut queue = FakeQueue::new(&[1]);
        let mut first: Vec<Vec<u8>> = (0..3).map(|k| tcp_segment(k * 7000, 10, 0)).collect();
        assert!(matches!(
            writer.write_batch(&mut first, 10, &TCP_GRO, |f| queue.write(f)),
            Err(Error::WouldBlock)
        ));
        assert_eq!(queue.frames.len(), 1);
        let mut second = vec![tcp_segment(99_000, 10, 0)];
        assert_eq!(
            writer
                .write_batch(&mut second, 10, &TCP_GRO, |f| queue.write(f))
                .unwrap(),
            1
        );
        assert_eq!(queue.frames.len(), 2);
        assert_eq!(queue.frames[1], second[0]);
    }

    #[test]
    fn whole_ipv4_and_ipv6_packets_pass() {
        assert!(check_packet(&ipv4(28, 28), 28).is_ok());
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert!(check_packet(&v6, v6.len()).is_ok());
    }

    #[test]
    fn garbage_truncated_and_oversized_packets_are_refused() {
        assert!(matches!(
            check_packet(&[0xff; 40], 40),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(&ipv4(28, 28)[..12], 12),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(&ipv4(100, 60), 60),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(&ipv4(65535, 70_000), 70_000),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(check_packet(&[], 0), Err(Error::InvalidPacket(_))));
        // Headers whose length field covers payloads that follow in other buffers.
        assert!(check_packet(&ipv4(3000, 1500), 3000).is_ok());
        assert!(matches!(
            check_packet(&ipv4(3000, 1500), 2999),
            Err(Error::InvalidPacket(_))
        ));
    }

    #[test]
    fn a_super_packet_counts_as_the_packets_merged_into_it() {
        let hdr = VirtioNetHdr {
            flags: 0,
            gso_type: tun_offload::virtio::GSO_TCPV4,
            hdr_len: 40,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut frame = hdr.to_bytes().to_vec();
        frame.resize(10 + 40, 0);
        // Three full segments and a short one.
        assert_eq!(packets_in(&frame, 10, 40 + 3500), 4);
        assert_eq!(packets_in(&frame, 10, 40 + 3000), 3);
        // A packet on its own, with or without a header.
        assert_eq!(packets_in(&[0u8; 60], 10, 50), 1);
        assert_eq!(packets_in(&frame[10..], 0, 40), 1);
    }

    #[test]
    fn refused_gso_write_says_it_was_a_coalesced_packet() {
        let einval = || Error::io("write", "t0", io::Error::from_raw_os_error(libc::EINVAL));
        let mut gso = vec![0u8; 10 + 40];
        gso[1] = tun_offload::virtio::GSO_TCPV4;
        let err = explain_gso_failure(einval(), &gso, 10);
        assert!(
            err.to_string().contains("coalesced GSO super-packet"),
            "{err}"
        );
        assert!(err.to_string().contains("set_gro(false)"), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        // A plain packet's failure stays as it was.
        let plain = vec![0u8; 10 + 40];
        assert!(matches!(
            explain_gso_failure(einval(), &plain, 10),
            Error::Io { op: "write", .. }
        ));
    }

    #[test]
    fn lone_failure_is_reported_as_itself_and_several_as_a_batch() {
        let one = || {
            vec![PacketError {
                index: 0,
                error: Error::InvalidArgument("x"),
            }]
        };
        assert!(matches!(
            batch_result(0, one(), 0),
            Error::InvalidArgument("x")
        ));
        assert!(matches!(
            batch_result(1, one(), 0),
            Error::Batch(BatchError { written: 1, .. })
        ));
        let closed = vec![PacketError {
            index: 0,
            error: Error::Closed,
        }];
        assert!(matches!(batch_result(0, closed, 5), Error::Closed));
    }
}
