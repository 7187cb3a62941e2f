//! The read path: one `read()` per packet (or super-packet), handed out into the caller's buffers.

use std::io;
use std::ops::Range;

use tun_offload::{OffloadError, VirtioNetHdr};
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
    /// Bytes of `buf` holding a packet not yet handed out (the caller's buffer was too small, say).
    pending: Option<Range<usize>>,
    vnet_hdr: bool,
}

impl Reader {
    pub(crate) fn new(vnet_hdr: bool) -> Self {
        let hdr = if vnet_hdr { VirtioNetHdr::LEN } else { 0 };
        Self {
            buf: vec![0; hdr + MAX_PACKET],
            pending: None,
            vnet_hdr,
        }
    }

    /// Takes in a `read()` of `len` bytes into `buf`: checks the virtio-net header and remembers the packet.
    fn accept(&mut self, len: usize) -> Result<()> {
        let start = if self.vnet_hdr {
            let hdr = VirtioNetHdr::decode(&self.buf[..len])?;
            // With offloads off (TUNSETOFFLOAD 0) the kernel hands over complete packets only.
            if hdr.gso_kind() != tun_offload::virtio::GSO_NONE {
                return Err(OffloadError::UnsupportedGsoType(hdr.gso_type).into());
            }
            if hdr.needs_csum() {
                return Err(OffloadError::Malformed(
                    "partial checksum while checksum offload is off",
                )
                .into());
            }
            VirtioNetHdr::LEN
        } else {
            0
        };
        if len > start {
            self.pending = Some(start..len);
        }
        Ok(())
    }

    /// Hands pending packets out into `bufs`: `Ok(None)` when nothing is pending, `Ok(Some(n))` for `n >= 1`
    /// packets, or [`Error::BufferTooSmall`] with the packet kept for the next call.
    fn deliver<B: AsMut<[u8]>>(
        &mut self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<Option<usize>> {
        let Some(range) = self.pending.clone() else {
            return Ok(None);
        };
        let (Some(buf), Some(size)) = (bufs.first_mut(), sizes.first_mut()) else {
            return Ok(Some(0));
        };
        let packet = &self.buf[range];
        let dst = buf.as_mut();
        let need = offset.saturating_add(packet.len());
        let Some(dst) = dst.get_mut(offset..need) else {
            return Err(Error::BufferTooSmall {
                index: 0,
                need,
                have: dst.len(),
            });
        };
        dst.copy_from_slice(packet);
        *size = packet.len();
        self.pending = None;
        Ok(Some(1))
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
            reader.accept(len)?;
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
