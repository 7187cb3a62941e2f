//! [`PacketBatch`]: the buffers of a read/write cycle, kept ready between cycles.

use std::fmt;

use crate::device::Tun;
use crate::error::{Error, Result};
use crate::read::largest_packet;
use tun_offload::Layer;

/// A batch of packet buffers for [`Tun::read_packets`] and [`Tun::write_packets`], reused from one cycle to
/// the next: read a batch from one device, look at or change its packets, write it to another.
///
/// Each buffer holds the largest packet after the offset, so no read ever finds it too small, and a write may
/// build a merged packet in it: 65535 bytes, and on a TAP device ([`Layer::L2`](crate::Layer::L2)) the
/// Ethernet header with two VLAN tags in front ([`for_device`](Self::for_device) sizes them for its device;
/// [`new`](Self::new), not knowing the device, for either). All memory is allocated by the constructor; a
/// cycle only passes the same buffers and sizes from the read to the write, and allocates nothing.
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
    /// Each `offset` + the largest packet of the device (`for_device`) or of any device (`new`) long.
    bufs: Vec<Vec<u8>>,
    /// `sizes[i]` is the length of the packet at `bufs[i][offset..]`, for `i < len`.
    sizes: Vec<usize>,
    /// Packets held: the first `len` buffers.
    len: usize,
    offset: usize,
}

impl fmt::Debug for PacketBatch {
    /// The shape of the batch, not the megabytes of its buffers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBatch")
            .field("buffers", &self.bufs.len())
            .field("len", &self.len)
            .field("offset", &self.offset)
            .finish()
    }
}

impl PacketBatch {
    /// The largest `offset` [`new`](Self::new) accepts: room for any header a tunnel puts in front of a packet,
    /// far less than the packet itself.
    pub const MAX_OFFSET: usize = 4096;

    /// A batch of `count` buffers, each holding a packet of up to 65535 bytes at `offset` (the room in front
    /// of each packet, for a header of the caller's own), or an Ethernet frame with two VLAN tags around it
    /// (65557 bytes): a batch that does not know its device reads from any without a frame it cannot hold
    /// waiting for ever. Allocates `count * (offset + 65557)` bytes, once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `count` is 0 or `offset` exceeds [`MAX_OFFSET`](Self::MAX_OFFSET).
    ///
    /// ```
    /// use tun::PacketBatch;
    ///
    /// let batch = PacketBatch::new(128, 16)?;
    /// assert!(batch.is_empty());
    /// assert_eq!(batch.offset(), 16);
    /// assert!(PacketBatch::new(0, 0).is_err());
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn new(count: usize, offset: usize) -> Result<Self> {
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
        Ok(Self {
            bufs: vec![vec![0; offset + largest_packet(Layer::L2)]; count],
            sizes: vec![0; count],
            len: 0,
            offset,
        })
    }

    /// A batch fitted to `tun`: [`Tun::batch_size`] buffers; see
    /// [`for_device_with_count`](Self::for_device_with_count).
    pub fn for_device(tun: &Tun) -> Self {
        Self::for_device_with_count(tun, tun.batch_size())
    }

    /// A batch of `count` buffers (at least 1) for reads from `tun`, with no room in front of the packets.
    /// Without a virtio-net header a read returns one packet, so the batch has one buffer. On a TAP device
    /// each buffer holds 65535 bytes and the longest Ethernet header with its VLAN tags
    /// ([`MAX_LINK_HEADER_LEN`](tun_offload::wire::MAX_LINK_HEADER_LEN)).
    pub fn for_device_with_count(tun: &Tun, count: usize) -> Self {
        let count = if tun.has_vnet_hdr() { count.max(1) } else { 1 };
        Self {
            bufs: vec![vec![0; largest_packet(tun.layer())]; count],
            sizes: vec![0; count],
            len: 0,
            offset: 0,
        }
    }

    /// Reads packets from `tun` with one [`Tun::read_packets`] call (blocking until there are some) and
    /// returns how many the batch now holds. Packets held before are discarded.
    ///
    /// # Errors
    /// Those of [`Tun::read_packets`]; the batch is then empty.
    pub fn read_from(&mut self, tun: &Tun) -> Result<usize> {
        self.len = 0;
        let n = tun.read_packets(&mut self.bufs, &mut self.sizes, self.offset)?;
        self.len = n.min(self.bufs.len());
        Ok(self.len)
    }

    /// Writes the packets held to `tun` with [`Tun::write_packets`] (which coalesces them with offloads) and
    /// returns how many writes that took. Afterwards, written or not, the batch is empty and ready for the
    /// next [`read_from`](Self::read_from). An empty batch writes nothing: `Ok(0)`.
    ///
    /// # Errors
    /// Those of [`Tun::write_packets`], unchanged: [`Error::Batch`] names the packets by their index in this
    /// batch.
    pub fn write_to(&mut self, tun: &Tun) -> Result<usize> {
        let n = std::mem::take(&mut self.len);
        if n == 0 {
            return Ok(0);
        }
        tun.write_packets(&mut self.bufs[..n], &self.sizes[..n], self.offset)
    }

    /// [`read_from`](Self::read_from) on an [`AsyncTun`](crate::AsyncTun): waits for packets without
    /// blocking the thread. Dropping the future loses no packet.
    ///
    /// # Errors
    /// Those of [`AsyncTun::read_packets`](crate::AsyncTun::read_packets); the batch is then empty.
    #[cfg(feature = "tokio")]
    pub async fn read_from_async(&mut self, tun: &crate::AsyncTun) -> Result<usize> {
        self.len = 0;
        let n = tun
            .read_packets(&mut self.bufs, &mut self.sizes, self.offset)
            .await?;
        self.len = n.min(self.bufs.len());
        Ok(self.len)
    }

    /// [`write_to`](Self::write_to) on an [`AsyncTun`](crate::AsyncTun): waits without blocking the thread
    /// while the kernel's queue is full. Afterwards the batch is empty, written or not, also when the future
    /// is dropped (see [`AsyncTun`](crate::AsyncTun) on what a dropped write has written).
    ///
    /// # Errors
    /// Those of [`AsyncTun::write_packets`](crate::AsyncTun::write_packets).
    #[cfg(feature = "tokio")]
    pub async fn write_to_async(&mut self, tun: &crate::AsyncTun) -> Result<usize> {
        let n = std::mem::take(&mut self.len);
        if n == 0 {
            return Ok(0);
        }
        tun.write_packets(&mut self.bufs[..n], &self.sizes[..n], self.offset)
            .await
    }

    /// Appends a copy of `packet` to the batch, to build a batch for a write.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when every buffer holds a packet already; [`Error::BufferTooSmall`] for a
    /// packet longer than a buffer holds.
    pub fn push(&mut self, packet: &[u8]) -> Result<()> {
        let index = self.len;
        let Some(buf) = self.unfilled_mut() else {
            return Err(Error::InvalidArgument("the packet batch is full"));
        };
        let have = buf.len();
        let Some(slot) = buf.get_mut(..packet.len()) else {
            return Err(Error::BufferTooSmall {
                index,
                need: packet.len(),
                have,
            });
        };
        slot.copy_from_slice(packet);
        self.commit(packet.len())
    }

    /// The next free buffer (the largest packet after the offset), to build a packet in place, such as decrypting
    /// into it; [`commit`](Self::commit) keeps it. `None` when every buffer holds a packet.
    ///
    /// ```
    /// let mut batch = tun::PacketBatch::new(2, 0)?;
    /// let buf = batch.unfilled_mut().unwrap();
    /// buf[..3].copy_from_slice(&[0x45, 0, 0]);
    /// batch.commit(3)?;
    /// assert_eq!(batch.packet(0), Some(&[0x45, 0, 0][..]));
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn unfilled_mut(&mut self) -> Option<&mut [u8]> {
        let offset = self.offset;
        self.bufs.get_mut(self.len)?.get_mut(offset..)
    }

    /// Keeps the first `size` bytes of [`unfilled_mut`](Self::unfilled_mut) as the batch's next packet.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the batch is full; [`Error::BufferTooSmall`] for more than the buffer
    /// holds.
    pub fn commit(&mut self, size: usize) -> Result<()> {
        let index = self.len;
        let Some(buf) = self.bufs.get(index) else {
            return Err(Error::InvalidArgument("the packet batch is full"));
        };
        // A size near usize::MAX must be refused, not wrap around past the check.
        let need = self.offset.saturating_add(size);
        if need > buf.len() {
            return Err(Error::BufferTooSmall {
                index,
                need,
                have: buf.len(),
            });
        }
        self.sizes[index] = size;
        self.len += 1;
        Ok(())
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// How many packets the batch can hold.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// True when every buffer holds a packet.
    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th packet held (the IP packet, or Ethernet frame on L2, without the room in front of it), or
    /// `None` past the last.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_batch_is_empty_with_room_for_the_largest_packet_after_the_offset() {
        let batch = PacketBatch::new(3, 16).unwrap();
        assert!(batch.is_empty());
        assert_eq!((batch.len(), batch.bytes(), batch.capacity()), (0, 0, 3));
        assert_eq!(batch.packets().count(), 0);
        assert_eq!(batch.packet(0), None);
        assert_eq!(batch.offset(), 16);
        // 65535 bytes, and room for a TAP device's Ethernet header with two VLAN tags.
        assert!(batch.bufs.iter().all(|b| b.len() == 16 + 65535 + 22));
    }

    #[test]
    fn zero_buffers_and_a_huge_offset_are_errors_not_panics() {
        assert!(matches!(
            PacketBatch::new(0, 10),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            PacketBatch::new(1, usize::MAX),
            Err(Error::InvalidArgument(_))
        ));
        assert!(PacketBatch::new(1, PacketBatch::MAX_OFFSET).is_ok());
    }

    #[test]
    fn pushed_packets_are_seen_through_the_accessors_without_the_room_in_front() {
        let mut batch = PacketBatch::new(4, 10).unwrap();
        for i in 0..3u8 {
            batch.push(&[i; 100]).unwrap();
        }
        assert_eq!((batch.len(), batch.bytes()), (3, 300));
        assert_eq!(batch.packet(1), Some(&[1u8; 100][..]));
        assert_eq!(batch.packet(3), None);
        let firsts: Vec<u8> = batch.packets().map(|p| p[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
        batch.packet_mut(2).unwrap()[0] = 0x45;
        assert_eq!(batch.packet(2).unwrap()[0], 0x45);
        assert_eq!(batch.packet_mut(3), None);
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.packet(0), None);
    }

    #[test]
    fn a_push_past_the_last_buffer_or_the_largest_packet_is_refused() {
        let mut batch = PacketBatch::new(1, 10).unwrap();
        assert!(matches!(
            batch.push(&vec![0; 65558]),
            Err(Error::BufferTooSmall { index: 0, .. })
        ));
        batch.push(&vec![7; 65557]).unwrap();
        assert!(matches!(batch.push(&[1]), Err(Error::InvalidArgument(_))));
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_packet_built_in_place_is_kept_by_commit_and_only_then() {
        let mut batch = PacketBatch::new(2, 4).unwrap();
        let buf = batch.unfilled_mut().unwrap();
        assert_eq!(buf.len(), 65557);
        buf[..2].copy_from_slice(&[9, 9]);
        assert!(batch.is_empty(), "not kept before commit");
        assert!(matches!(
            batch.commit(65558),
            Err(Error::BufferTooSmall { index: 0, .. })
        ));
        batch.commit(2).unwrap();
        assert_eq!(batch.packet(0), Some(&[9u8, 9][..]));
    }

    #[test]
    fn a_commit_of_a_size_near_usize_max_is_refused_not_a_panic() {
        let mut batch = PacketBatch::new(2, 4).unwrap();
        for size in [usize::MAX, usize::MAX - 3] {
            assert!(
                matches!(
                    batch.commit(size),
                    Err(Error::BufferTooSmall { index: 0, .. })
                ),
                "{size}"
            );
        }
        assert!(batch.is_empty());
        assert_eq!(batch.packets().count(), 0);
    }
}
