//! The read path: one `read()` per packet (or super-packet), handed out into the caller's buffers.

use std::io;
use std::ops::Range;

use tun_offload::{OffloadError, SplitState, VirtioNetHdr};
use tun_sys::{Interest, Wait};

use crate::device::Tun;
use crate::error::{Error, Result};

/// The largest IP packet a TUN device hands over (also the largest TSO/USO super-packet: BIG TCP is refused).
pub(crate) const MAX_PACKET: usize = 65535;

/// Read-side state, guarded by the read lock: the buffer one `read()` lands in and what of it is still owed to
/// the caller.
#[derive(Debug)]
pub(crate) struct Reader {
    /// Room for one virtio-net header (when the device has it) and the largest packet. Allocated once.
    buf: Vec<u8>,
    pending: Pending,
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
    pub(crate) fn new(vnet_hdr: bool) -> Self {
        let hdr = if vnet_hdr { VirtioNetHdr::LEN } else { 0 };
        Self {
            buf: vec![0; hdr + MAX_PACKET],
            pending: Pending::Nothing,
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
        let state = SplitState::new(&self.buf[..len])?;
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
                    .map_err(|e| match e {
                        OffloadError::BufferTooSmall { index, need, have } => {
                            Error::BufferTooSmall { index, need, have }
                        }
                        other => Error::Offload(other),
                    });
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
    /// Blocks until a packet arrives or the device is closed ([`Error::Closed`]). With offloads on, one
    /// super-packet from the kernel becomes several packets; if `bufs` is shorter than that, the rest are
    /// returned by the next call. A buffer too small for its packet is [`Error::BufferTooSmall`] and loses
    /// nothing: the packet waits for the next call.
    pub fn read_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<usize> {
        if bufs.is_empty() {
            return Err(Error::InvalidArgument("bufs is empty"));
        }
        if sizes.len() < bufs.len() {
            return Err(Error::InvalidArgument("sizes is shorter than bufs"));
        }
        let mut reader = self.reader.lock();
        loop {
            self.check_open()?;
            self.check_monitor()?;
            if let Some(count) = reader.deliver(bufs, sizes, offset)? {
                return Ok(count);
            }
            if !self.vnet_hdr
                && let Some(room) = bufs[0].as_mut().get_mut(offset..)
                && room.len() >= MAX_PACKET
            {
                // The caller's buffer holds any packet: read straight into it, no copy.
                let len = self.read_once(room)?;
                if len > 0 {
                    sizes[0] = len;
                    return Ok(1);
                }
                continue;
            }
            let len = self.read_once(&mut reader.buf)?;
            reader.accept(len, self.vnet_hdr)?;
        }
    }

    /// One `read()`, waiting (cancellably) while the fd has nothing.
    pub(crate) fn read_once(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            self.check_open()?;
            match tun_sys::io::read(self.fd(), buf) {
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(Interest::Read)?,
                Err(e) => return Err(Error::io("read", self.label, e)),
            }
        }
    }

    /// Blocks until the fd is ready for `interest` or the device is closed.
    pub(crate) fn wait(&self, interest: Interest) -> Result<()> {
        match tun_sys::wait::wait(self.fd(), interest, &self.cancel, None) {
            Ok(Wait::Cancelled) => Err(Error::Closed),
            Ok(Wait::Ready | Wait::TimedOut) => Ok(()),
            Err(e) => Err(Error::io("poll", self.label, e)),
        }
    }
}
