//! [`PacketBatch`]: the buffers of a read/write cycle, kept ready between cycles.

use std::fmt;

use tun_offload::VirtioNetHdr;

use crate::device::Tun;
use crate::error::{Error, Result};
use tun_offload::MAX_PACKET;

/// Growths of the buffers one [`PacketBatch::read_from`] may do before it gives up and returns the
/// [`Error::BufferTooSmall`]: a read needs at most one (every segment of a split fits the buffer the first one
/// needed), the rest is margin.
const MAX_GROWTHS_PER_READ: u32 = 4;

/// A batch of packet buffers for [`Tun::read_packets`] and [`Tun::write_packets`], reused from one cycle to
/// the next: read a batch from one device, look at or change its packets, write it to another.
///
/// It does for the caller what both calls need around them: buffers with room for the virtio-net header in
/// front of each packet and capacity for the largest packet, growing the buffers (without reallocating) when
/// a packet does not fit ([`Error::BufferTooSmall`] loses nothing, the packet is read again), cutting each
/// buffer to its packet before the write and making it whole again afterwards. All memory is allocated by the
/// constructor: once warm, a cycle allocates nothing.
///
/// ```no_run
/// use tun::{Builder, PacketBatch};
///
/// let a = Builder::new().name("tuna").offload(true).build()?;
/// let b = Builder::new().name("tunb").offload(true).build()?;
/// let mut batch = PacketBatch::for_device(&a);
/// loop {
///     batch.read_from(&a)?;
///     for packet in batch.packets() {
///         println!("{} bytes, IP version {}", packet.len(), packet[0] >> 4);
///     }
///     batch.write_to(&b)?;
/// }
/// # Ok::<(), tun::Error>(())
/// ```
pub struct PacketBatch {
    /// Each `offset + segment` long (`offset + MAX_PACKET` of capacity) between cycles.
    bufs: Vec<Vec<u8>>,
    /// `sizes[i]` is the length of the packet at `bufs[i][offset..]`, for `i < len`.
    sizes: Vec<usize>,
    /// Packets held: the first `len` buffers.
    len: usize,
    offset: usize,
    /// The longest packet the buffers take without growing.
    segment: usize,
    grown: u64,
}

impl fmt::Debug for PacketBatch {
    /// The shape of the batch, not the megabytes of its buffers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBatch")
            .field("buffers", &self.bufs.len())
            .field("len", &self.len)
            .field("offset", &self.offset)
            .field("segment", &self.segment)
            .field("grown", &self.grown)
            .finish()
    }
}

impl PacketBatch {
    /// The largest `offset` [`new`](Self::new) accepts: room for any header a tunnel puts in front of a packet,
    /// far less than the packet itself.
    pub const MAX_OFFSET: usize = 4096;

    /// A batch of `count` buffers, each holding a packet of up to `segment` bytes at `offset` (grown on
    /// demand up to 65535, the largest IP packet; larger values are clamped to it) and with the capacity of
    /// `offset + 65535` bytes, so that growing for a larger packet never reallocates.
    ///
    /// `offset` is the room in front of each packet: at least 10 for a device with a virtio-net header (see
    /// [`Tun::has_vnet_hdr`]), or [`write_to`](Self::write_to) fails; more if the caller has its own header
    /// to put there. Allocates `count * (offset + 65535)` bytes, once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `count` is 0 or `offset` exceeds [`MAX_OFFSET`](Self::MAX_OFFSET).
    ///
    /// ```
    /// use tun::PacketBatch;
    ///
    /// let batch = PacketBatch::new(128, 10, 1500)?;
    /// assert!(batch.is_empty());
    /// assert_eq!(batch.offset(), 10);
    /// assert!(PacketBatch::new(0, 10, 1500).is_err());
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn new(count: usize, offset: usize, segment: usize) -> Result<Self> {
        if count == 0 {
            return Err(Error::InvalidArgument(
                "a packet batch needs at least one buffer",
            ));
        }
        if offset > Self::MAX_OFFSET {
            return Err(Error::InvalidArgument(
                "packet batch offset larger than PacketBatch::MAX_OFFSET",
            ));
        }
        Ok(Self::with_shape(count, offset, segment))
    }

    /// [`new`](Self::new) for arguments already checked.
    fn with_shape(count: usize, offset: usize, segment: usize) -> Self {
        let segment = segment.min(MAX_PACKET);
        let bufs = (0..count)
            .map(|_| {
                let mut buf = Vec::with_capacity(offset + MAX_PACKET);
                buf.resize(offset + segment, 0);
                buf
            })
            .collect();
        Self {
            bufs,
            sizes: vec![0; count],
            len: 0,
            offset,
            segment,
            grown: 0,
        }
    }

    /// A batch fitted to `tun`: [`Tun::batch_size`] buffers; see
    /// [`for_device_with_count`](Self::for_device_with_count).
    pub fn for_device(tun: &Tun) -> Self {
        Self::for_device_with_count(tun, tun.batch_size())
    }

    /// A batch of `count` buffers (at least 1) fitted to reads from `tun`.
    ///
    /// The offset is 10 whatever the device, room for the virtio-net header, so that the batch can be written
    /// to a device with or without one. With a virtio-net header the buffers are sized for the device's MTU
    /// (1500 when it cannot be read): that is how large the packets split from a super-packet are. Without
    /// one a read returns one packet, so the batch has one buffer, 65535 bytes after the offset, which lets
    /// [`Tun::read_packets`] read straight into it without a copy.
    pub fn for_device_with_count(tun: &Tun, count: usize) -> Self {
        let (count, segment) = if tun.has_vnet_hdr() {
            let mtu = tun
                .mtu()
                .ok()
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(1500);
            (count.max(1), mtu)
        } else {
            (1, MAX_PACKET)
        };
        let offset = VirtioNetHdr::LEN;
        Self::with_shape(count, offset, segment)
    }

    /// Reads packets from `tun` with one [`Tun::read_packets`] call (blocking until there are some) and
    /// returns how many the batch now holds. Packets held before are discarded.
    ///
    /// A packet longer than the buffers ([`Error::BufferTooSmall`], after an MTU increase, say) is not lost:
    /// the buffers grow to fit it, within the capacity reserved up front, and the read is repeated. A few
    /// growths at most per call; [`grown`](Self::grown) counts them.
    ///
    /// # Errors
    /// Those of [`Tun::read_packets`]; the batch is then empty.
    pub fn read_from(&mut self, tun: &Tun) -> Result<usize> {
        self.read_with(|bufs, sizes, offset| tun.read_packets(bufs, sizes, offset))
    }

    /// [`read_from`](Self::read_from) with the read as a function: the device, or a stand-in in tests.
    fn read_with(
        &mut self,
        mut read: impl FnMut(&mut [Vec<u8>], &mut [usize], usize) -> Result<usize>,
    ) -> Result<usize> {
        self.len = 0;
        let mut growths = 0;
        loop {
            let result = read(&mut self.bufs, &mut self.sizes, self.offset);
            if let Some(done) = self.settle_read(result, &mut growths) {
                return done;
            }
        }
    }

    /// Takes in the result of one read into the buffers: `Some` final result, or `None` when the buffers
    /// grew for a packet that did not fit and the read is to be repeated.
    fn settle_read(&mut self, result: Result<usize>, growths: &mut u32) -> Option<Result<usize>> {
        match result {
            Ok(n) => {
                self.len = n.min(self.bufs.len());
                Some(Ok(self.len))
            }
            Err(Error::BufferTooSmall { need, .. })
                if *growths < MAX_GROWTHS_PER_READ && self.grow_to(need) =>
            {
                *growths += 1;
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Grows every buffer to `need` bytes (the next packets are likely as long as this one); false when that
    /// is no growth or beyond the largest packet, which growing cannot help.
    fn grow_to(&mut self, need: usize) -> bool {
        let segment = need.saturating_sub(self.offset);
        if segment <= self.segment || segment > MAX_PACKET {
            return false;
        }
        self.segment = segment;
        for buf in &mut self.bufs {
            buf.resize(self.offset + segment, 0);
        }
        self.grown += 1;
        true
    }

    /// Writes the packets held to `tun` with [`Tun::write_packets`] (which coalesces them with offloads) and
    /// returns how many of them were written (all, on `Ok`). Afterwards, written or not, the batch is empty
    /// and ready for the next [`read_from`](Self::read_from). An empty batch writes nothing: `Ok(0)`.
    ///
    /// # Errors
    /// Those of [`Tun::write_packets`], unchanged: [`Error::Batch`] lists the packets refused by their index in
    /// this batch.
    pub fn write_to(&mut self, tun: &Tun) -> Result<usize> {
        let offset = self.offset;
        self.write_with(
            |packet| tun.write_packets(&mut [packet], offset),
            |bufs| tun.write_packets(bufs, offset),
        )
    }

    /// [`write_to`](Self::write_to) with the write as functions: `one` for a lone packet (`buf[..offset +
    /// size]`), `many` for buffers cut to their packets.
    fn write_with(
        &mut self,
        one: impl FnOnce(&mut [u8]) -> Result<usize>,
        many: impl FnOnce(&mut [Vec<u8>]) -> Result<usize>,
    ) -> Result<usize> {
        match self.take_for_write() {
            Held::Nothing => Ok(0),
            Held::One(stop) => one(&mut self.bufs[0][..stop]),
            Held::Many(n) => {
                let written = many(&mut self.bufs[..n]);
                self.restore_after_write(n);
                written
            }
        }
    }

    /// Empties the batch for a write of what it held, and says how to write it: buffers of several packets
    /// are cut to their packets (undone by [`restore_after_write`](Self::restore_after_write)).
    fn take_for_write(&mut self) -> Held {
        let n = std::mem::take(&mut self.len);
        match n {
            0 => Held::Nothing,
            // Nothing to coalesce: a slice of the buffer is written as it is, so that the buffer needs neither
            // cutting nor restoring (which, for a 64 KiB buffer and a small packet, would mean zeroing 64 KiB).
            1 => Held::One(self.offset + self.sizes[0]),
            _ => {
                for (buf, &size) in self.bufs.iter_mut().zip(&self.sizes[..n]) {
                    buf.truncate(self.offset + size);
                }
                Held::Many(n)
            }
        }
    }

    /// Makes the first `n` buffers whole again after a write from them.
    fn restore_after_write(&mut self, n: usize) {
        // Coalescing moved and grew packets within these buffers (never beyond them).
        let full = self.offset + self.segment;
        for buf in &mut self.bufs[..n] {
            buf.resize(full, 0);
        }
    }

    /// [`read_from`](Self::read_from) on an [`AsyncTun`](crate::AsyncTun): waits for packets without
    /// blocking the thread. Dropping the future loses no packet.
    ///
    /// # Errors
    /// Those of [`AsyncTun::read_packets`](crate::AsyncTun::read_packets); the batch is then empty.
    #[cfg(feature = "tokio")]
    pub async fn read_from_async(&mut self, tun: &crate::AsyncTun) -> Result<usize> {
        self.len = 0;
        let mut growths = 0;
        loop {
            let result = tun
                .read_packets(&mut self.bufs, &mut self.sizes, self.offset)
                .await;
            if let Some(done) = self.settle_read(result, &mut growths) {
                return done;
            }
        }
    }

    /// [`write_to`](Self::write_to) on an [`AsyncTun`](crate::AsyncTun): waits without blocking the thread
    /// while the kernel's queue is full. Afterwards the batch is empty, written or not; if the future is
    /// dropped before it finished, the batch is empty too and its buffers stay usable (see
    /// [`AsyncTun`](crate::AsyncTun) on what a dropped write has written).
    ///
    /// # Errors
    /// Those of [`AsyncTun::write_packets`](crate::AsyncTun::write_packets).
    #[cfg(feature = "tokio")]
    pub async fn write_to_async(&mut self, tun: &crate::AsyncTun) -> Result<usize> {
        let offset = self.offset;
        match self.take_for_write() {
            Held::Nothing => Ok(0),
            Held::One(stop) => {
                tun.write_packets(&mut [&mut self.bufs[0][..stop]], offset)
                    .await
            }
            Held::Many(n) => {
                // Restored also when the future is dropped half-way, so the buffers keep their full length.
                let batch = RestoreOnDrop { batch: self, n };
                let bufs = &mut batch.batch.bufs[..n];
                tun.write_packets(bufs, offset).await
            }
        }
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th packet held (the IP packet, without the room in front of it), or `None` past the last.
    pub fn packet(&self, i: usize) -> Option<&[u8]> {
        let size = *self.sizes[..self.len].get(i)?;
        self.bufs.get(i)?.get(self.offset..self.offset + size)
    }

    /// The `i`-th packet held, to change in place (its length stays), or `None` past the last.
    pub fn packet_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let size = *self.sizes[..self.len].get(i)?;
        let offset = self.offset;
        self.bufs.get_mut(i)?.get_mut(offset..offset + size)
    }

    /// The packets held, in order.
    pub fn packets(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let offset = self.offset;
        self.bufs[..self.len]
            .iter()
            .zip(&self.sizes[..self.len])
            .map(move |(buf, &size)| &buf[offset..offset + size])
    }

    /// The bytes of the packets held, in all.
    pub fn bytes(&self) -> usize {
        self.sizes[..self.len].iter().sum()
    }

    /// Where each packet starts in its buffer: the room left in front of it.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// How many times the buffers grew because a packet did not fit them (see [`read_from`](Self::read_from)).
    pub fn grown(&self) -> u64 {
        self.grown
    }
}

/// What a batch held when it was taken for a write.
enum Held {
    Nothing,
    /// One packet: written from the first buffer's first `usize` bytes.
    One(usize),
    /// This many packets, their buffers cut to them.
    Many(usize),
}

/// Makes a batch's buffers whole again once their write is over, finished or dropped.
#[cfg(feature = "tokio")]
struct RestoreOnDrop<'a> {
    batch: &'a mut PacketBatch,
    n: usize,
}

#[cfg(feature = "tokio")]
impl Drop for RestoreOnDrop<'_> {
    fn drop(&mut self) {
        self.batch.restore_after_write(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `read_packets`: fills the first `n` buffers with packets of `len` bytes (each byte its
    /// buffer's index), or reports the first buffer too small as the device does.
    fn fake_read(
        n: usize,
        len: usize,
    ) -> impl FnMut(&mut [Vec<u8>], &mut [usize], usize) -> Result<usize> {
        move |bufs, sizes, offset| {
            let n = n.min(bufs.len());
            let have = bufs[0].len();
            if have < offset + len {
                return Err(Error::BufferTooSmall {
                    index: 0,
                    need: offset + len,
                    have,
                });
            }
            for (i, (buf, size)) in bufs.iter_mut().zip(sizes.iter_mut()).take(n).enumerate() {
                buf[offset..offset + len].fill(i as u8);
                *size = len;
            }
            Ok(n)
        }
    }

    fn shape(batch: &PacketBatch) -> Vec<(usize, usize)> {
        batch.bufs.iter().map(|b| (b.len(), b.capacity())).collect()
    }

    #[test]
    fn new_batch_is_empty_with_room_to_coalesce_a_full_packet() {
        let batch = PacketBatch::new(3, 10, 1500).unwrap();
        assert!(batch.is_empty());
        assert_eq!(batch.len(), 0);
        assert_eq!(batch.bytes(), 0);
        assert_eq!(batch.packets().count(), 0);
        assert_eq!(batch.packet(0), None);
        assert_eq!(batch.offset(), 10);
        assert_eq!(batch.grown(), 0);
        assert_eq!(shape(&batch), vec![(1510, 10 + 65535); 3]);
    }

    #[test]
    fn zero_buffers_and_a_huge_offset_are_errors_not_panics() {
        assert!(matches!(
            PacketBatch::new(0, 10, 1500),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            PacketBatch::new(1, usize::MAX, 1500),
            Err(Error::InvalidArgument(_))
        ));
        assert!(PacketBatch::new(1, PacketBatch::MAX_OFFSET, 1500).is_ok());
    }

    #[test]
    fn segment_beyond_the_largest_ip_packet_is_clamped() {
        let batch = PacketBatch::new(1, 0, usize::MAX).unwrap();
        assert_eq!(batch.segment, 65535);
        assert_eq!(shape(&batch), [(65535, 65535)]);
    }

    #[test]
    fn read_packets_are_seen_through_the_accessors_without_the_header_room() {
        let mut batch = PacketBatch::new(4, 10, 1500).unwrap();
        assert_eq!(batch.read_with(fake_read(3, 100)).unwrap(), 3);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.bytes(), 300);
        assert_eq!(batch.packet(1), Some(&[1u8; 100][..]));
        assert_eq!(batch.packet(3), None);
        let firsts: Vec<u8> = batch.packets().map(|p| p[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
        batch.packet_mut(2).unwrap()[0] = 0x45;
        assert_eq!(batch.packet(2).unwrap()[0], 0x45);
        assert_eq!(batch.packet_mut(3), None);
    }

    #[test]
    fn too_small_buffers_grow_and_the_packet_is_read_again() {
        let mut batch = PacketBatch::new(2, 10, 1500).unwrap();
        assert_eq!(batch.read_with(fake_read(2, 9000)).unwrap(), 2);
        assert_eq!(batch.packet(1).map(<[u8]>::len), Some(9000));
        assert_eq!(batch.grown(), 1);
        // Every buffer grew, within the capacity reserved up front.
        assert_eq!(shape(&batch), vec![(10 + 9000, 10 + 65535); 2]);
        // Already large enough: no more growth.
        batch.read_with(fake_read(2, 9000)).unwrap();
        assert_eq!(batch.grown(), 1);
    }

    #[test]
    fn growth_beyond_the_largest_packet_is_refused_and_the_error_returned() {
        let mut batch = PacketBatch::new(1, 10, 1500).unwrap();
        let err = batch.read_with(fake_read(1, 70_000)).unwrap_err();
        assert!(matches!(err, Error::BufferTooSmall { .. }), "{err:?}");
        assert_eq!(batch.grown(), 0);
        assert!(batch.is_empty());
    }

    #[test]
    fn read_that_keeps_asking_for_more_gives_up_after_a_few_growths() {
        let mut batch = PacketBatch::new(1, 0, 100).unwrap();
        let mut calls = 0;
        let err = batch
            .read_with(|bufs, _, _| {
                calls += 1;
                Err(Error::BufferTooSmall {
                    index: 0,
                    need: bufs[0].len() + 1,
                    have: bufs[0].len(),
                })
            })
            .unwrap_err();
        assert!(matches!(err, Error::BufferTooSmall { .. }), "{err:?}");
        assert_eq!(calls, MAX_GROWTHS_PER_READ + 1);
        assert_eq!(batch.grown(), u64::from(MAX_GROWTHS_PER_READ));
    }

    #[test]
    fn read_error_leaves_the_batch_empty() {
        let mut batch = PacketBatch::new(2, 10, 1500).unwrap();
        batch.read_with(fake_read(2, 100)).unwrap();
        let err = batch.read_with(|_, _, _| Err(Error::Closed)).unwrap_err();
        assert!(matches!(err, Error::Closed));
        assert!(batch.is_empty());
    }

    #[test]
    fn write_hands_over_each_buffer_cut_to_its_packet() {
        let mut batch = PacketBatch::new(4, 10, 1500).unwrap();
        batch.read_with(fake_read(3, 100)).unwrap();
        let written = batch
            .write_with(
                |_| panic!("three packets are written as a batch"),
                |bufs| {
                    assert_eq!(bufs.len(), 3);
                    assert!(bufs.iter().all(|b| b.len() == 110));
                    assert_eq!(bufs[2][10..], [2u8; 100]);
                    Ok(bufs.len())
                },
            )
            .unwrap();
        assert_eq!(written, 3);
        assert!(batch.is_empty());
    }

    #[test]
    fn lone_packet_is_written_from_a_slice_and_its_buffer_left_whole() {
        // The shape of a batch for a device without a virtio-net header.
        let mut batch = PacketBatch::new(1, 10, 65535).unwrap();
        batch.read_with(fake_read(1, 60)).unwrap();
        let written = batch
            .write_with(
                |buf| {
                    // The room in front, then the packet, and nothing after it.
                    assert_eq!(buf.len(), 10 + 60);
                    assert_eq!(buf[10..], [0u8; 60]);
                    Ok(1)
                },
                |_| panic!("one packet is written on its own"),
            )
            .unwrap();
        assert_eq!(written, 1);
        assert!(batch.is_empty());
        assert_eq!(shape(&batch), [(10 + 65535, 10 + 65535)]);
    }

    #[test]
    fn cycle_with_coalescing_keeps_every_buffer_and_its_capacity() {
        let mut batch = PacketBatch::new(4, 10, 1500).unwrap();
        let before = shape(&batch);
        let pointers: Vec<*const u8> = batch.bufs.iter().map(|b| b.as_ptr()).collect();
        batch.read_with(fake_read(3, 1400)).unwrap();
        batch
            .write_with(
                |_| unreachable!(),
                |bufs| {
                    // As coalescing does: the merged packet grows its buffer and may swap two buffers.
                    bufs[0].extend_from_slice(&[7u8; 2800]);
                    bufs[1].truncate(10);
                    bufs.swap(0, 1);
                    Ok(bufs.len())
                },
            )
            .unwrap();
        assert_eq!(shape(&batch), before);
        let mut after: Vec<*const u8> = batch.bufs.iter().map(|b| b.as_ptr()).collect();
        after.swap(0, 1);
        assert_eq!(after, pointers);
    }

    #[test]
    fn failed_write_still_leaves_the_batch_empty_and_ready() {
        let mut batch = PacketBatch::new(2, 10, 1500).unwrap();
        let before = shape(&batch);
        batch.read_with(fake_read(2, 100)).unwrap();
        let err = batch
            .write_with(|_| unreachable!(), |_| Err(Error::Closed))
            .unwrap_err();
        assert!(matches!(err, Error::Closed));
        assert!(batch.is_empty());
        assert_eq!(shape(&batch), before);
        assert_eq!(
            batch
                .write_with(|_| unreachable!(), |_| unreachable!())
                .unwrap(),
            0
        );
    }

    #[test]
    fn debug_output_shows_the_shape_not_the_buffers() {
        let text = format!("{:?}", PacketBatch::new(128, 10, 1500).unwrap());
        assert!(text.len() < 200, "{text}");
        assert!(text.contains("buffers: 128"), "{text}");
    }
}
