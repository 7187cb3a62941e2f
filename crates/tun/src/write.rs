//! The write path: one `write()` per packet, errors reported per packet.

use std::io::{self, IoSlice};

use tun_offload::VirtioNetHdr;
use tun_sys::Interest;

use crate::device::Tun;
use crate::error::{BatchError, Error, PacketError, Result};

/// Write-side state, guarded by the write lock.
#[derive(Debug, Default)]
pub(crate) struct Writer {}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {}
    }
}

impl Tun {
    /// Writes the packets `bufs[i][offset..]`; returns how many were written (all of them on `Ok`).
    ///
    /// With a virtio-net header on the fd (see [`has_vnet_hdr`](Self::has_vnet_hdr)) `offset` must be at least
    /// 10: the header is written into `bufs[i][offset - 10..offset]`. A packet the kernel refuses does not stop
    /// the others: the result is then [`Error::Batch`] listing each failure by index, with the count written.
    /// A closed device gives [`Error::Closed`].
    pub fn write_packets<B: AsMut<[u8]>>(&self, bufs: &mut [B], offset: usize) -> Result<usize> {
        let hdr_len = if self.vnet_hdr { VirtioNetHdr::LEN } else { 0 };
        let Some(frame_start) = offset.checked_sub(hdr_len) else {
            return Err(Error::InvalidArgument(
                "offset leaves no room for the 10-byte virtio-net header",
            ));
        };
        let _writer = self.writer.lock();
        self.check_open()?;
        let mut written = 0;
        let mut failed = Vec::new();
        for (index, buf) in bufs.iter_mut().enumerate() {
            let buf = buf.as_mut();
            let result = match buf.get_mut(frame_start..) {
                Some(frame) if frame.len() > hdr_len => {
                    frame[..hdr_len].fill(0);
                    self.write_frame(&[IoSlice::new(frame)])
                }
                _ => Err(Error::InvalidArgument(
                    "empty packet (buffer not longer than offset)",
                )),
            };
            match result {
                Ok(_) => written += 1,
                Err(error) => {
                    let stop = error.is_fatal();
                    failed.push(PacketError { index, error });
                    if stop {
                        let not_attempted = bufs.len() - index - 1;
                        return Err(batch_result(written, failed, not_attempted));
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(written)
        } else {
            Err(batch_result(written, failed, 0))
        }
    }

    /// One `writev()` of one packet (its header first when there is one), waiting while the queue is full.
    pub(crate) fn write_frame(&self, frame: &[IoSlice<'_>]) -> Result<usize> {
        loop {
            self.check_open()?;
            match tun_sys::io::writev(self.fd(), frame) {
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(Interest::Write)?,
                Err(e) => return Err(Error::io("write", self.label, e)),
            }
        }
    }

    /// One packet for `io::Write`: sent with a zero virtio-net header when the fd has one.
    pub(crate) fn write_one(&self, packet: &[u8]) -> Result<usize> {
        let _writer = self.writer.lock();
        self.check_open()?;
        let zero = [0u8; VirtioNetHdr::LEN];
        let hdr: &[u8] = if self.vnet_hdr { &zero } else { &[] };
        let written = self.write_frame(&[IoSlice::new(hdr), IoSlice::new(packet)])?;
        Ok(written.saturating_sub(hdr.len()))
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
