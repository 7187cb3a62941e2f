//! Single-packet `std::io::Read` and `Write`, for `Tun` and `&Tun`.

use std::io;

use crate::device::Tun;

/// Reads one packet per call. With offloads on, the packets of a super-packet come out one per call, none lost.
/// A buffer too small for the next packet is `InvalidInput`, and the packet stays for the next call. An empty
/// buffer reads nothing and returns `Ok(0)` at once, as readers of an empty buffer do (after `close()` it is
/// `BrokenPipe`, as every call then).
impl io::Read for &Tun {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            self.check_open()?;
            return Ok(0);
        }
        Ok(self.recv(buf)?)
    }
}

/// Writes one packet per call (with a zero virtio-net header when offloads are on). An empty buffer writes
/// nothing (and after `close()` is `BrokenPipe`, as every call then).
impl io::Write for &Tun {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            self.check_open()?;
            return Ok(0);
        }
        Ok(self.send(buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for Tun {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl io::Write for Tun {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
