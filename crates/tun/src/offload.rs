//! Offload negotiation with the kernel (TUNSETOFFLOAD) and the batch size that follows from it.

use std::io;
use std::os::fd::BorrowedFd;

use tun_sys::Offloads;

/// Packets per batch with offloads: one 64 KiB TSO super-packet of 1448-byte segments splits into 46, so 128
/// leaves room for small-MSS flows and UDP trains, as wireguard-go's `IdealBatchSize`.
pub(crate) const BATCH_SIZE: usize = 128;

/// Asks for checksum offload, TSO and USO; falls back to checksum offload and TSO where the kernel refuses USO
/// (before Linux 6.2, `EINVAL`). Returns what was accepted.
pub(crate) fn negotiate(fd: BorrowedFd<'_>) -> io::Result<Offloads> {
    let tcp = Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6;
    // The kernel accepts USO4 and USO6 only together and only with CSUM.
    let all = tcp | Offloads::USO4 | Offloads::USO6;
    match tun_sys::tun::set_offload(fd, all) {
        Ok(()) => Ok(all),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tun_sys::tun::set_offload(fd, tcp).map(|()| tcp)
        }
        Err(e) => Err(e),
    }
}
