//! The decrypted side's batch and its one write to the TUN device.
//!
//! Every TUN write of the endpoint goes through [`TunBatch::write`]: the facade's batch write API is the
//! one place this module adapts to. Today `Tun::write_packets(bufs, offset)` takes each buffer cut to its
//! packet; a `Vec<u8>` with capacity for `offset + 65535` bytes is coalesced in place. The buffers are
//! therefore kept at their packet's length between batches, and [`TunBatch::slot`] lengthens one only as
//! far as the next datagram needs (zeroing a few bytes, never 64 KiB).

use tun::Tun;

/// Room in front of each packet: the virtio-net header the facade writes there with offloads.
pub(crate) const OFFSET: usize = 10;

/// The largest IP packet.
pub(crate) const MAX_PACKET: usize = 65_535;

/// Buffers for one batch of decrypted packets, allocated once.
#[derive(Debug)]
pub(crate) struct TunBatch {
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    len: usize,
}

impl TunBatch {
    /// `count` buffers, each with the capacity the in-place coalescing wants.
    pub(crate) fn new(count: usize) -> Self {
        Self {
            bufs: (0..count)
                .map(|_| Vec::with_capacity(OFFSET + MAX_PACKET))
                .collect(),
            sizes: vec![0; count],
            len: 0,
        }
    }

    /// Whether every buffer holds a packet.
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    /// Packets in the batch.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The next free buffer, at least `need` bytes long after the offset (at most [`MAX_PACKET`]).
    /// Call [`push`](Self::push) to keep what was put there; otherwise it is reused.
    pub(crate) fn slot(&mut self, need: usize) -> &mut [u8] {
        let buf = &mut self.bufs[self.len];
        let need = OFFSET + need.min(MAX_PACKET);
        if buf.len() < need {
            // Within the capacity reserved in `new`: no allocation.
            buf.resize(need, 0);
        }
        &mut buf[OFFSET..]
    }

    /// Keeps the packet of `size` bytes that was written into the last [`slot`](Self::slot).
    pub(crate) fn push(&mut self, size: usize) {
        self.sizes[self.len] = size;
        self.len += 1;
    }

    /// Writes the batch to the device and empties it: one `write_packets`, which coalesces what it can.
    pub(crate) fn write(&mut self, tun: &Tun) -> tun::Result<usize> {
        let n = std::mem::take(&mut self.len);
        if n == 0 {
            return Ok(0);
        }
        for (buf, &size) in self.bufs.iter_mut().zip(&self.sizes).take(n) {
            buf.truncate(OFFSET + size);
        }
        tun.write_packets(&mut self.bufs[..n], OFFSET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_grow_within_their_capacity_and_are_reused_until_pushed() {
        let mut batch = TunBatch::new(2);
        let cap = batch.bufs[0].capacity();
        assert!(batch.slot(1500).len() >= 1500);
        assert!(
            batch.slot(100).len() >= 1500,
            "an unpushed slot is the same buffer"
        );
        batch.push(100);
        assert_eq!(batch.len(), 1);
        assert!(batch.slot(70_000).len() == MAX_PACKET);
        batch.push(60);
        assert!(batch.is_full());
        assert_eq!(batch.bufs[0].capacity(), cap);
        assert_eq!(batch.bufs[1].capacity(), cap);
    }
}
