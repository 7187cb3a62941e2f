//! The write path: coalescing (GRO) with offloads, then one `writev()` per planned frame, errors reported
//! per packet. Nothing is remembered between calls: the caller is told what was written.

use std::io::IoSlice;
use std::sync::atomic::Ordering;

use tun_offload::wire::{ETHERNET_HEADER_LEN, IpPacket, MAX_LINK_HEADER_LEN};
use tun_offload::{
    FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, Layer, OffloadError, VirtioNetHdr,
};
use tun_sys::{Interest, Offloads};

use crate::device::Tun;
use crate::error::{BatchError, Error, PacketError, Result};
use crate::patience::Patience;

/// Write-side state, guarded by the write lock: the GRO table and the plan of a batch, reused so that a
/// batch allocates nothing once warm. Both are scratch space for one call; nothing in them outlives it.
#[derive(Debug)]
pub(crate) struct Writer {
    table: GroTable,
    plan: GroPlan,
}

/// How a device's writes go: the virtio-net header in front of each packet (10 bytes or none), and whether and
/// what to coalesce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteSettings {
    pub(crate) hdr_len: usize,
    /// IP packets or Ethernet frames.
    pub(crate) layer: Layer,
    /// `None`: every packet is written on its own.
    pub(crate) gro: Option<GroOptions>,
}

/// How far one write of a batch got, kept by its caller for the length of the write: the blocking and `try_`
/// calls start at 0 and report the packets a full queue left ([`Error::Batch`]); the async call keeps it
/// across its attempts and goes on where the last one stopped.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Frames of the batch's plan written (or failed) so far.
    pub(crate) frames_done: usize,
    /// A full queue half-way is [`Error::WouldBlock`] (to go on later) rather than a report.
    pub(crate) resume: bool,
    /// The settings of the first attempt, which every later one keeps: `frames_done` counts frames of the
    /// plan they made, and coalescing switched on or off meanwhile ([`Tun::set_gro`]) would plan others.
    settings: Option<WriteSettings>,
    /// The packets of the frames done that failed: an async write that waits for room after a failure
    /// reports them when it is done.
    failed: Vec<PacketError>,
}

impl Progress {
    /// A write that reports where a full queue stopped it.
    pub(crate) fn report() -> Progress {
        Progress {
            frames_done: 0,
            resume: false,
            settings: None,
            failed: Vec::new(),
        }
    }

    /// A write that waits and goes on where a full queue stopped it.
    #[cfg(any(feature = "tokio", test))]
    pub(crate) fn resume() -> Progress {
        Progress {
            frames_done: 0,
            resume: true,
            settings: None,
            failed: Vec::new(),
        }
    }
}

impl Writer {
    pub(crate) fn new(offload: bool) -> Self {
        let capacity = if offload {
            crate::offload::BATCH_SIZE
        } else {
            1
        };
        Self {
            table: GroTable::with_capacity(capacity),
            plan: GroPlan::with_capacity(capacity),
        }
    }

    /// Writes the batch `bufs[i][offset..offset + sizes[i]]` as `settings` say (those of the first attempt
    /// when `progress` goes on from one), each planned frame with one
    /// call of `write_frame` (a `writev` of its slices), skipping the frames `progress` says were done by an
    /// earlier call with the same batch and counting those it does; see [`Tun::write_packets`]. Returns how
    /// many frames were written, earlier calls' included.
    pub(crate) fn write_batch<B: AsMut<[u8]>>(
        &mut self,
        bufs: &mut [B],
        sizes: &[usize],
        offset: usize,
        settings: &WriteSettings,
        progress: &mut Progress,
        mut write_frame: impl FnMut(&[IoSlice<'_>]) -> Result<usize>,
    ) -> Result<usize> {
        if sizes.len() < bufs.len() {
            return Err(Error::InvalidArgument(
                "sizes has fewer entries than there are buffers",
            ));
        }
        let settings = *progress.settings.get_or_insert(*settings);
        let Writer { table, plan } = self;
        match settings.gro {
            Some(options) => tun_offload::handle_gro_with_layer(
                bufs,
                sizes,
                offset,
                settings.layer,
                table,
                options,
                plan,
            )
            .map_err(Error::from_offload)?,
            None => plan.each_alone(&sizes[..bufs.len()]),
        }
        let Progress {
            frames_done,
            resume,
            failed,
            ..
        } = progress;
        let mut scratch = [0u8; FRAME_HEAD_MAX];
        // Of the frames earlier calls for this batch did, those not written are the failures they kept.
        let mut written: usize = plan
            .frames()
            .iter()
            .take(*frames_done)
            .map(tun_offload::Frame::segments)
            .sum::<usize>()
            .saturating_sub(failed.len());
        for (k, frame) in plan.frames().iter().enumerate().skip(*frames_done) {
            let result = bufs
                .get_mut(frame.buf)
                .ok_or(Error::InvalidArgument(
                    "a planned frame lies outside the batch",
                ))
                .and_then(|buf| {
                    frame
                        .encode(buf.as_mut(), offset, &mut scratch)
                        .map_err(Error::from_offload)
                })
                .and_then(|[head, rest]| {
                    let head = &head[VirtioNetHdr::LEN - settings.hdr_len..];
                    let merged = frame.segments() > 1;
                    let packet = if merged {
                        &head[settings.hdr_len..]
                    } else {
                        rest
                    };
                    check_packet(settings.layer, packet, frame.len)?;
                    write_frame(&[IoSlice::new(head), IoSlice::new(rest)])
                        .map_err(|e| explain_gso_failure(e, merged))
                });
            match result {
                Ok(_) => written += frame.segments(),
                // Nothing to report yet: the caller offers the same batch again (or waits, if async).
                Err(Error::WouldBlock) if *resume || failed.is_empty() && written == 0 => {
                    return Err(Error::WouldBlock);
                }
                Err(Error::WouldBlock) => {
                    return Err(stopped(plan, k, written, std::mem::take(failed)));
                }
                Err(error) => {
                    let fatal = error.is_fatal();
                    fail_frame(plan, k, error, failed);
                    if fatal {
                        return Err(stopped(plan, k + 1, written, std::mem::take(failed)));
                    }
                }
            }
            *frames_done = k + 1;
        }
        if failed.is_empty() {
            Ok(*frames_done)
        } else {
            Err(batch_result(written, std::mem::take(failed), Vec::new()))
        }
    }
}

/// Records a failure for every packet frame `k` carries: the error itself for the first, the same error
/// again for the others.
fn fail_frame(plan: &GroPlan, k: usize, error: Error, failed: &mut Vec<PacketError>) {
    let mut members = plan.members(k);
    let Some(first) = members.next() else { return };
    for index in members {
        failed.push(PacketError {
            index,
            error: error.same_again(),
        });
    }
    failed.push(PacketError {
        index: first,
        error,
    });
    // In the batch's order, except that a failure of the device (which stops the batch, so it is the last
    // frame's) comes last, where BatchError::unwritten's documentation sends the reader to learn why.
    failed.sort_by_key(|p| (p.error.is_fatal(), p.index));
}

/// The error of a batch the device stopped before frame `k`: the packets of frames `k..` are not written.
fn stopped(plan: &GroPlan, k: usize, written: usize, failed: Vec<PacketError>) -> Error {
    let unwritten = (0..plan.packet_count())
        .filter(|&i| plan.frame_of(i).is_some_and(|f| f >= k))
        .collect();
    batch_result(written, failed, unwritten)
}

/// The error of a batch with failures or packets left: a lone failure as itself (nothing else to report),
/// else a [`BatchError`].
fn batch_result(written: usize, mut failed: Vec<PacketError>, unwritten: Vec<usize>) -> Error {
    // Nothing was written and there is one reason: that reason is the whole story (a closed device, or the
    // only packet of the batch refused).
    let alone =
        written == 0 && failed.len() == 1 && (unwritten.is_empty() || failed[0].error.is_fatal());
    if alone && let Some(only) = failed.pop() {
        return only.error;
    }
    Error::Batch(BatchError {
        written,
        failed,
        unwritten,
    })
}

impl Tun {
    /// Writes the packets `bufs[i][offset..offset + sizes[i]]` (what [`read_packets`](Self::read_packets)
    /// fills in, so a forwarder passes the same arrays back) and returns how many writes the kernel got.
    ///
    /// With offloads, packets of one TCP flow (and of one UDP flow when USO is on) are coalesced into
    /// super-packets of up to 64 KiB, each one write: the count is then below the number of packets. A merged
    /// packet is built in its first packet's buffer, in the bytes after that packet (which the call may use:
    /// give buffers `offset + 65535` bytes, as a read batch has, to let merges reach the limit). The packets
    /// themselves are never changed, and nothing is remembered between calls.
    ///
    /// A packet the kernel refuses does not stop the others: the result is then [`Error::Batch`] listing each
    /// failed packet by index. A closed device gives [`Error::Closed`].
    ///
    /// ```no_run
    /// let tun = tun::Builder::new().name("tun%d").offload(true).build()?;
    /// # let packet: &[u8] = &[];
    /// let mut buf = vec![0u8; 65535];
    /// buf[..packet.len()].copy_from_slice(packet); // an IPv4 or IPv6 packet
    /// match tun.write_packets(&mut [buf], &[packet.len()], 0) {
    ///     Ok(writes) => println!("written with {writes} write(s)"),
    ///     Err(e) if e.is_transient() => println!("try again later: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once closed; [`Error::InvalidArgument`] when `sizes` is shorter than `bufs`; for a
    /// single failure, that failure ([`Error::InvalidPacket`] for a packet refused before the write,
    /// [`Error::BufferTooSmall`] for a size past its buffer's end, [`Error::Io`] for one the kernel refused);
    /// for several, or one after others were written, [`Error::Batch`] with the packets written and each
    /// failure by index.
    pub fn write_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &[usize],
        offset: usize,
    ) -> Result<usize> {
        self.write_packets_within(
            bufs,
            sizes,
            offset,
            Patience::Forever,
            &mut Progress::report(),
        )
    }

    /// [`write_packets`](Self::write_packets) that never waits. When the kernel's queue is full before
    /// anything was written it returns [`Error::WouldBlock`]: offer the same packets again once the fd is
    /// writable (`POLLOUT`). When the queue fills half-way it returns [`Error::Batch`] whose
    /// [`unwritten`](BatchError::unwritten) lists the packets left: offer those again. Either way each packet
    /// is written exactly once. (A TUN device's queue is rarely full: its send buffer is unlimited unless
    /// lowered.)
    ///
    /// # Errors
    /// As [`write_packets`](Self::write_packets), and [`Error::WouldBlock`].
    pub fn try_write_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &[usize],
        offset: usize,
    ) -> Result<usize> {
        self.write_packets_within(
            bufs,
            sizes,
            offset,
            Patience::Never,
            &mut Progress::report(),
        )
    }

    /// The one write path, `progress` carried over from an earlier attempt at the same batch (the async
    /// write goes on where its last attempt stopped); see [`Writer::write_batch`].
    pub(crate) fn write_packets_within<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &[usize],
        offset: usize,
        patience: Patience,
        progress: &mut Progress,
    ) -> Result<usize> {
        // Closed comes first: once closed, no argument makes a call useful. A write that goes on from an
        // earlier attempt has written part of its batch: its next frame meets the closed device, so that it
        // reports what it wrote, as the blocking write does, instead of a bare Closed that says nothing was.
        let resumed = progress.frames_done > 0;
        if !resumed {
            self.check_open()?;
        }
        let uso = Offloads::USO4 | Offloads::USO6;
        let settings = WriteSettings {
            hdr_len: if self.vnet_hdr { VirtioNetHdr::LEN } else { 0 },
            layer: self.layer,
            gro: (!self.offloads.is_empty() && self.gro.load(Ordering::Relaxed)).then(|| {
                GroOptions {
                    tcp: true,
                    udp: self.offloads.contains(uso) && self.udp_gro.load(Ordering::Relaxed),
                }
            }),
        };
        let mut writer = self.writer.lock();
        if !resumed {
            self.check_open()?;
        }
        writer.write_batch(bufs, sizes, offset, &settings, progress, |frame| {
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

    /// Writes one IP packet (on an L2 device: one Ethernet frame) with a zero virtio-net header when the
    /// device has one, and returns its length, waiting while the kernel's queue is full.
    ///
    /// # Errors
    /// [`Error::InvalidPacket`] for what is not one whole IP packet (on L2: shorter than an Ethernet header),
    /// [`Error::Closed`] once closed, or the kernel's refusal.
    pub fn send(&self, packet: &[u8]) -> Result<usize> {
        self.write_one(packet, Patience::Forever)
    }

    /// One packet for `io::Write` and async sends: sent with a zero virtio-net header when the fd has one.
    pub(crate) fn write_one(&self, packet: &[u8], patience: Patience) -> Result<usize> {
        let _writer = self.writer.lock();
        self.check_open()?;
        check_packet(self.layer, packet, packet.len())?;
        let zero = [0u8; VirtioNetHdr::LEN];
        let hdr: &[u8] = if self.vnet_hdr { &zero } else { &[] };
        let written = self.write_frame(&[IoSlice::new(hdr), IoSlice::new(packet)], patience)?;
        Ok(written.saturating_sub(hdr.len()))
    }
}

/// Refuses what is not one whole IP packet (on L2: one Ethernet frame) before it reaches the kernel, which
/// would accept a truncated or oversized packet and drop it silently later. `packet` holds at least the
/// headers; `len` is the length of the whole packet (more than `packet` when it holds only the headers of a
/// merged packet).
///
/// An Ethernet frame is whatever its sender made it (ARP, LLDP, an IP packet padded to 60 bytes): only its
/// length is checked, as the kernel checks it.
fn check_packet(layer: Layer, packet: &[u8], len: usize) -> Result<()> {
    if layer == Layer::L2 {
        if len < ETHERNET_HEADER_LEN {
            return Err(Error::InvalidPacket(OffloadError::TooShort {
                what: "Ethernet frame",
                need: ETHERNET_HEADER_LEN,
                have: len,
            }));
        }
        if len > tun_offload::MAX_PACKET + MAX_LINK_HEADER_LEN {
            return Err(Error::InvalidPacket(OffloadError::Malformed(
                "frame longer than 65535 bytes and an Ethernet header",
            )));
        }
        return Ok(());
    }
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

/// A refused write of a coalesced super-packet says so: some kernels reject GSO writes the offload rules
/// allow, and [`Tun::set_gro`] is the way out.
fn explain_gso_failure(error: Error, coalesced: bool) -> Error {
    match error {
        Error::Io {
            op: "write",
            device,
            source,
        } if coalesced && source.raw_os_error() == Some(libc::EINVAL) => Error::Io {
            op: "write of a coalesced GSO super-packet (Tun::set_gro(false) turns coalescing off)",
            device,
            source,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    #[ignore = "privileged: creates a network namespace and a TUN device"]
    fn a_resumed_write_that_meets_a_closed_device_reports_what_it_wrote() {
        let ns = tun_test_support::NetNs::new();
        let tun = ns
            .run_in(|| {
                crate::Builder::new()
                    .name("tw-close0")
                    .monitor(false)
                    .build()
            })
            .unwrap();
        // An async write that wrote the first of its two packets, then waited for room, and the device
        // was closed meanwhile.
        let mut progress = Progress::resume();
        progress.frames_done = 1;
        tun.close().unwrap();
        let mut bufs = [tagged(1), tagged(2)];
        let err = tun
            .write_packets_within(&mut bufs, &[28, 28], 0, Patience::Never, &mut progress)
            .unwrap_err();
        let Error::Batch(batch) = &err else {
            panic!("a bare error says nothing was written: {err:?}");
        };
        assert_eq!(batch.written, 1);
        assert_eq!(batch.failed.len(), 1);
        assert_eq!(batch.failed[0].index, 1);
        assert!(matches!(batch.failed[0].error, Error::Closed));
        assert!(batch.unwritten.is_empty());
        // A write that has written nothing yet is simply refused.
        let err = tun
            .write_packets_within(
                &mut bufs,
                &[28, 28],
                0,
                Patience::Never,
                &mut Progress::report(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Closed), "{err:?}");
    }

    /// `buf_len` bytes that begin like an IPv4 header whose total length says `total_len`, and nothing else:
    /// what the checks of a packet's version and lengths read, made to disagree with the buffer at will.
    fn ipv4(total_len: u16, buf_len: usize) -> Vec<u8> {
        let mut p = vec![0u8; buf_len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total_len.to_be_bytes());
        p
    }

    /// A 28-byte IPv4 packet told apart by its identification field, in a buffer with room after it.
    fn tagged(id: u8) -> Vec<u8> {
        let mut buf = ipv4(28, 1500);
        buf[5] = id;
        buf
    }

    /// An IPv4 TCP segment 10.0.0.1:1234 -> 10.0.0.2:80 (ACK) at `seq` with `len` payload bytes and valid
    /// checksums, at the start of a 64 KiB buffer.
    fn tcp_segment(seq: u32, len: usize) -> (Vec<u8>, usize) {
        let payload: Vec<u8> = (0..len).map(|i| (seq as usize + i) as u8).collect();
        let packet = tun_test_support::packets::tcp4_segment(
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1234),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            seq,
            &payload,
        );
        let mut buf = vec![0u8; tun_offload::MAX_PACKET];
        buf[..packet.len()].copy_from_slice(&packet);
        (buf, packet.len())
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

    const PLAIN: WriteSettings = WriteSettings {
        hdr_len: 10,
        layer: Layer::L3,
        gro: None,
    };

    const TCP_GRO: WriteSettings = WriteSettings {
        hdr_len: 10,
        layer: Layer::L3,
        gro: Some(GroOptions {
            tcp: true,
            udp: false,
        }),
    };

    /// One `try_write_packets`-like call: never waits, reports a half-written batch.
    fn try_write(
        writer: &mut Writer,
        queue: &mut FakeQueue,
        bufs: &mut [Vec<u8>],
        sizes: &[usize],
        settings: &WriteSettings,
    ) -> Result<usize> {
        writer.write_batch(bufs, sizes, 0, settings, &mut Progress::report(), |f| {
            queue.write(f)
        })
    }

    fn ids(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.iter().map(|f| f[10 + 5]).collect()
    }

    #[test]
    fn a_refilled_batch_after_a_full_queue_writes_every_new_packet_once() {
        let mut writer = Writer::new(true);
        let mut queue = FakeQueue::new(&[1]);
        let mut bufs = vec![tagged(1), tagged(2), tagged(3)];
        let sizes = [28; 3];
        let err = try_write(&mut writer, &mut queue, &mut bufs, &sizes, &PLAIN).unwrap_err();
        let Error::Batch(batch) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (batch.written, batch.unwritten.as_slice()),
            (1, &[1, 2][..])
        );
        assert!(batch.failed.is_empty());
        // The caller refills the same Vec with new packets: each of them is written, once.
        bufs = vec![tagged(11), tagged(12), tagged(13)];
        assert_eq!(
            try_write(&mut writer, &mut queue, &mut bufs, &sizes, &PLAIN).unwrap(),
            3
        );
        assert_eq!(ids(&queue.frames), [1, 11, 12, 13]);
    }

    #[test]
    fn the_packets_left_by_a_full_queue_offered_again_are_written_once_each() {
        let mut writer = Writer::new(true);
        let mut queue = FakeQueue::new(&[2, 4]);
        let mut bufs: Vec<Vec<u8>> = (0..5).map(tagged).collect();
        let mut sizes = vec![28; 5];
        let mut written = Vec::new();
        let mut left: Vec<usize> = (0..5).collect();
        for _ in 0..5 {
            match try_write(&mut writer, &mut queue, &mut bufs, &sizes, &PLAIN) {
                Ok(_) => {
                    written.append(&mut left);
                    break;
                }
                Err(Error::WouldBlock) => {}
                Err(Error::Batch(batch)) => {
                    let (done, rest): (Vec<usize>, Vec<usize>) =
                        (0..left.len()).partition(|i| !batch.unwritten.contains(i));
                    written.extend(done.iter().map(|&i| left[i]));
                    left = rest.iter().map(|&i| left[i]).collect();
                    bufs = rest.iter().map(|&i| bufs[i].clone()).collect();
                    sizes.truncate(bufs.len());
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(written, [0, 1, 2, 3, 4]);
        assert_eq!(ids(&queue.frames), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_coalesced_batch_stopped_by_a_full_queue_names_the_packets_of_the_frames_left() {
        // Two flows interleaved: 0, 2, 4 merge into one frame, 1, 3 into another.
        let a: Vec<(Vec<u8>, usize)> = (0..3u32)
            .map(|k| tcp_segment(1000 + k * 100, 100))
            .collect();
        let b: Vec<(Vec<u8>, usize)> = (0..2u32)
            .map(|k| tcp_segment(90_000 + k * 100, 100))
            .collect();
        let mut b_flow = b.clone();
        for (buf, _) in &mut b_flow {
            // Another source port: another flow (checksum fixed for the changed port).
            buf[20..22].copy_from_slice(&1235u16.to_be_bytes());
            let sum = u16::from_be_bytes([buf[36], buf[37]]).wrapping_sub(1);
            buf[36..38].copy_from_slice(&sum.to_be_bytes());
        }
        let mut bufs = vec![
            a[0].0.clone(),
            b_flow[0].0.clone(),
            a[1].0.clone(),
            b_flow[1].0.clone(),
            a[2].0.clone(),
        ];
        let sizes = [a[0].1; 5];
        let pristine = bufs.clone();
        let mut writer = Writer::new(true);
        let mut whole = FakeQueue::new(&[]);
        let frames =
            try_write(&mut writer, &mut whole, &mut bufs.clone(), &sizes, &TCP_GRO).unwrap();
        assert!(frames < 5, "the batch coalesced into {frames} frames");
        let mut queue = FakeQueue::new(&[1]);
        let err = try_write(&mut writer, &mut queue, &mut bufs, &sizes, &TCP_GRO).unwrap_err();
        let Error::Batch(batch) = err else {
            panic!("{err:?}")
        };
        // The first frame went out; what is left is exactly the packets of the others, untouched.
        let first: Vec<usize> = (0..5).filter(|i| !batch.unwritten.contains(i)).collect();
        assert_eq!(batch.written, first.len());
        assert_eq!(queue.frames, whole.frames[..1]);
        for &i in &batch.unwritten {
            assert_eq!(
                bufs[i][..sizes[i]],
                pristine[i][..sizes[i]],
                "packet {i} changed"
            );
        }
    }

    #[test]
    fn an_async_write_goes_on_with_the_next_frame_after_a_full_queue() {
        let mut writer = Writer::new(true);
        let segments: Vec<(Vec<u8>, usize)> = (0..4u32)
            .map(|k| tcp_segment(1000 + k * 100, 100))
            .chain([tcp_segment(9000, 50)])
            .collect();
        let sizes: Vec<usize> = segments.iter().map(|s| s.1).collect();
        let fresh = || -> Vec<Vec<u8>> { segments.iter().map(|s| s.0.clone()).collect() };
        let mut whole = FakeQueue::new(&[]);
        try_write(&mut writer, &mut whole, &mut fresh(), &sizes, &TCP_GRO).unwrap();
        assert_eq!(whole.frames.len(), 2, "one super-packet and one segment");
        assert_eq!(whole.frames[0].len(), 10 + 40 + 400);
        for full_at in [&[0][..], &[1], &[0, 1, 2]] {
            let mut queue = FakeQueue::new(full_at);
            let mut bufs = fresh();
            let mut progress = Progress::resume();
            let mut would_block = 0;
            let done = loop {
                match writer.write_batch(&mut bufs, &sizes, 0, &TCP_GRO, &mut progress, |f| {
                    queue.write(f)
                }) {
                    Err(Error::WouldBlock) => would_block += 1,
                    other => break other.unwrap(),
                }
                assert!(would_block < 10, "never finished");
            };
            assert_eq!((done, would_block), (2, full_at.len()));
            assert_eq!(queue.frames, whole.frames, "full at {full_at:?}");
        }
    }

    #[test]
    fn an_async_write_goes_on_with_the_frames_it_planned_when_coalescing_is_switched_meanwhile() {
        // Three segments of one flow (one super-packet with coalescing) and a lone one of another length.
        let segments: Vec<(Vec<u8>, usize)> = (0..3u32)
            .map(|k| tcp_segment(1000 + k * 100, 100))
            .chain([tcp_segment(9000, 50)])
            .collect();
        let sizes: Vec<usize> = segments.iter().map(|s| s.1).collect();
        let lone: Vec<u8> = segments[3].0[..sizes[3]].to_vec();
        // Either way round: coalescing switched off, or on, while the write waits for room.
        for (first, then) in [(TCP_GRO, PLAIN), (PLAIN, TCP_GRO)] {
            let mut writer = Writer::new(true);
            let mut bufs: Vec<Vec<u8>> = segments.iter().map(|s| s.0.clone()).collect();
            let mut queue = FakeQueue::new(&[1]);
            let mut progress = Progress::resume();
            let waited = writer.write_batch(&mut bufs, &sizes, 0, &first, &mut progress, |f| {
                queue.write(f)
            });
            assert!(matches!(waited, Err(Error::WouldBlock)), "{waited:?}");
            writer
                .write_batch(&mut bufs, &sizes, 0, &then, &mut progress, |f| {
                    queue.write(f)
                })
                .unwrap();
            // Each segment's payload went out once, in whatever frames: 300 bytes of the flow, then the
            // lone segment as it was.
            let flow_payload: usize = queue.frames[..queue.frames.len() - 1]
                .iter()
                .map(|f| f.len() - 10 - 40)
                .sum();
            assert_eq!(flow_payload, 300, "{:?} then {:?}", first.gro, then.gro);
            assert_eq!(queue.frames.last().unwrap()[10..], lone[..]);
        }
    }

    #[test]
    fn an_async_write_waits_for_room_after_a_packet_failed_as_after_none() {
        let mut writer = Writer::new(true);
        // Packet 0 is refused before its write; packet 2 finds the queue full once.
        let mut bufs = vec![vec![0xff; 40], tagged(1), tagged(2)];
        let sizes = [40, 28, 28];
        let mut queue = FakeQueue::new(&[1]);
        let mut progress = Progress::resume();
        let mut attempt = || {
            writer.write_batch(&mut bufs, &sizes, 0, &PLAIN, &mut progress, |f| {
                queue.write(f)
            })
        };
        let waited = attempt();
        assert!(matches!(waited, Err(Error::WouldBlock)), "{waited:?}");
        let err = attempt().unwrap_err();
        let Error::Batch(batch) = err else {
            panic!("{err:?}")
        };
        assert_eq!((batch.written, batch.unwritten.len()), (2, 0));
        assert!(matches!(
            batch.failed[..],
            [PacketError {
                index: 0,
                error: Error::InvalidPacket(_)
            }]
        ));
        assert_eq!(ids(&queue.frames), [1, 2]);
    }

    #[test]
    fn every_packet_of_a_refused_merged_frame_is_reported() {
        let mut writer = Writer::new(true);
        let segments: Vec<(Vec<u8>, usize)> = (0..3u32)
            .map(|k| tcp_segment(1000 + k * 100, 100))
            .collect();
        let mut bufs: Vec<Vec<u8>> = segments.iter().map(|s| s.0.clone()).collect();
        let sizes = [segments[0].1; 3];
        let err = writer
            .write_batch(
                &mut bufs,
                &sizes,
                0,
                &TCP_GRO,
                &mut Progress::report(),
                |_| {
                    Err(Error::io(
                        "write",
                        "t0",
                        io::Error::from_raw_os_error(libc::EINVAL),
                    ))
                },
            )
            .unwrap_err();
        let Error::Batch(batch) = err else {
            panic!("{err:?}")
        };
        let failed: Vec<usize> = batch.failed.iter().map(|p| p.index).collect();
        assert_eq!(failed, [0, 1, 2]);
        assert!(
            batch
                .failed
                .iter()
                .all(|p| p.error.raw_os_error() == Some(libc::EINVAL))
        );
        assert!(
            batch.failed[0]
                .error
                .to_string()
                .contains("coalesced GSO super-packet")
        );
        assert_eq!(batch.written, 0);
    }

    #[test]
    fn the_failure_of_a_device_that_stopped_the_batch_is_the_last_entry_of_failed() {
        // Packets 0 and 2 merge into the first frame, which the kernel refuses; packet 1, alone, finds the
        // device gone.
        let (first, len) = tcp_segment(1000, 100);
        let (third, _) = tcp_segment(1100, 100);
        let mut bufs = vec![first, tagged(1), third, tagged(3)];
        let sizes = [len, 28, len, 28];
        let mut writer = Writer::new(true);
        let mut calls = 0;
        let err = writer
            .write_batch(
                &mut bufs,
                &sizes,
                0,
                &TCP_GRO,
                &mut Progress::report(),
                |_| {
                    calls += 1;
                    let errno = if calls == 1 {
                        libc::EINVAL
                    } else {
                        libc::ENODEV
                    };
                    Err(Error::io(
                        "write",
                        "t0",
                        io::Error::from_raw_os_error(errno),
                    ))
                },
            )
            .unwrap_err();
        let Error::Batch(batch) = err else {
            panic!("{err:?}")
        };
        assert_eq!(batch.unwritten, [3]);
        let failed: Vec<(usize, Option<i32>)> = batch
            .failed
            .iter()
            .map(|p| (p.index, p.error.raw_os_error()))
            .collect();
        assert_eq!(
            failed,
            [
                (0, Some(libc::EINVAL)),
                (2, Some(libc::EINVAL)),
                (1, Some(libc::ENODEV))
            ]
        );
    }

    #[test]
    fn a_size_past_its_buffer_fails_that_packet_alone() {
        let mut writer = Writer::new(true);
        let mut queue = FakeQueue::new(&[]);
        let mut bufs = vec![tagged(1), tagged(2), tagged(3)];
        let sizes = [28, 4000, 28];
        let err = try_write(&mut writer, &mut queue, &mut bufs, &sizes, &PLAIN).unwrap_err();
        let Error::Batch(batch) = err else {
            panic!("{err:?}")
        };
        assert_eq!(batch.written, 2);
        assert!(matches!(
            batch.failed[..],
            [PacketError {
                index: 1,
                error: Error::BufferTooSmall { .. }
            }]
        ));
        assert_eq!(ids(&queue.frames), [1, 3]);
        let short = try_write(&mut writer, &mut queue, &mut bufs, &[28], &PLAIN);
        assert!(matches!(short, Err(Error::InvalidArgument(_))), "{short:?}");
    }

    #[test]
    fn whole_ipv4_and_ipv6_packets_pass() {
        assert!(check_packet(Layer::L3, &ipv4(28, 28), 28).is_ok());
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert!(check_packet(Layer::L3, &v6, v6.len()).is_ok());
    }

    #[test]
    fn garbage_truncated_and_oversized_packets_are_refused() {
        assert!(matches!(
            check_packet(Layer::L3, &[0xff; 40], 40),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(Layer::L3, &ipv4(28, 28)[..12], 12),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(Layer::L3, &ipv4(100, 60), 60),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(Layer::L3, &ipv4(65535, 70_000), 70_000),
            Err(Error::InvalidPacket(_))
        ));
        assert!(matches!(
            check_packet(Layer::L3, &[], 0),
            Err(Error::InvalidPacket(_))
        ));
        // Headers whose length field covers payloads that follow.
        assert!(check_packet(Layer::L3, &ipv4(3000, 1500), 3000).is_ok());
        assert!(matches!(
            check_packet(Layer::L3, &ipv4(3000, 1500), 2999),
            Err(Error::InvalidPacket(_))
        ));
    }

    #[test]
    fn an_ethernet_frame_needs_only_its_header_and_a_length_the_kernel_takes() {
        let arp = [0xffu8; 42];
        assert!(check_packet(Layer::L2, &arp, arp.len()).is_ok());
        // Any EtherType and contents: what is not IP is the sender's business.
        assert!(check_packet(Layer::L2, &[0u8; 14], 14).is_ok());
        for len in [0, 1, 13] {
            assert!(
                matches!(
                    check_packet(Layer::L2, &arp[..len], len),
                    Err(Error::InvalidPacket(OffloadError::TooShort {
                        need: 14,
                        ..
                    }))
                ),
                "{len}"
            );
        }
        let longest = tun_offload::MAX_PACKET + MAX_LINK_HEADER_LEN;
        assert!(check_packet(Layer::L2, &arp, longest).is_ok());
        assert!(matches!(
            check_packet(Layer::L2, &arp, longest + 1),
            Err(Error::InvalidPacket(_))
        ));
    }

    #[test]
    fn a_plain_packets_refused_write_stays_as_it_was() {
        let einval = || Error::io("write", "t0", io::Error::from_raw_os_error(libc::EINVAL));
        assert!(matches!(
            explain_gso_failure(einval(), false),
            Error::Io { op: "write", .. }
        ));
        let err = explain_gso_failure(einval(), true);
        assert!(err.to_string().contains("set_gro(false)"), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn a_lone_failure_is_reported_as_itself_and_a_closed_device_as_closed() {
        let mut writer = Writer::new(true);
        let mut bufs = vec![tagged(1)];
        let err = writer
            .write_batch(&mut bufs, &[28], 0, &PLAIN, &mut Progress::report(), |_| {
                Err(Error::InvalidArgument("x"))
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument("x")), "{err:?}");
        let mut bufs = vec![tagged(1), tagged(2), tagged(3)];
        let err = writer
            .write_batch(
                &mut bufs,
                &[28; 3],
                0,
                &PLAIN,
                &mut Progress::report(),
                |_| Err(Error::Closed),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Closed), "{err:?}");
    }
}
