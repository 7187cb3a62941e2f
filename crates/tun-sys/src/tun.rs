//! The `/dev/net/tun` ioctls: create or attach a device, and configure it through its fd.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use crate::flags::{Offloads, TunFlags};
use crate::ifreq::{IfName, IfreqFlags};
use crate::sys::{ioctl_ptr, ioctl_value};

/// The clone device every TUN device is created through.
pub(crate) const TUN_DEVICE_PATH: &CStr = c"/dev/net/tun";

/// Opens `/dev/net/tun` with `O_RDWR | O_CLOEXEC`, plus `O_NONBLOCK` when `nonblocking`.
///
/// The device does not exist yet: [`set_iff`] creates or attaches it. The device is created in the network
/// namespace of the calling thread at the time of this call.
pub fn open_clone_device(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC;
    if nonblocking {
        flags |= libc::O_NONBLOCK;
    }
    crate::io::open(TUN_DEVICE_PATH, flags)
}

/// TUNSETIFF: creates the TUN device `name` (or attaches to it when it exists and `flags` match), with
/// `IFF_NO_PI` always added to `flags`, and `IFF_TUN` unless `flags` ask for a TAP device (`IFF_TAP`). An
/// empty name lets the kernel choose; a template such as `tun%d` is filled in. Returns the name the device
/// got.
pub fn set_iff(fd: BorrowedFd<'_>, name: IfName, flags: TunFlags) -> io::Result<IfName> {
    let kind = if flags.contains(TunFlags::TAP) {
        TunFlags::empty()
    } else {
        TunFlags::TUN
    };
    set_iff_raw(fd, name, flags | kind | TunFlags::NO_PI)
}

/// TUNSETIFF with exactly `flags`, nothing added: also devices with packet information (no `IFF_NO_PI`),
/// which the library refuses to drive but which tests and tools make.
#[cfg(feature = "probes")]
pub fn set_iff_exact(fd: BorrowedFd<'_>, name: IfName, flags: TunFlags) -> io::Result<IfName> {
    set_iff_raw(fd, name, flags)
}

fn set_iff_raw(fd: BorrowedFd<'_>, name: IfName, flags: TunFlags) -> io::Result<IfName> {
    let mut req = IfreqFlags::new(name, flags.bits());
    // SAFETY: TUNSETIFF reads and writes back a `struct ifreq`, which `IfreqFlags` is, size for size.
    unsafe { ioctl_ptr(fd, libc::TUNSETIFF, &mut req) }?;
    Ok(req.name)
}

/// TUNSETQUEUE: detaches this queue of a multi-queue device (`attach == false`): the kernel steers no packets
/// to it any more, while the fd keeps the device alive and still answers its ioctls (TUNGETIFF,
/// TUNGETDEVNETNS). `attach == true` puts it back. `EINVAL` on a single-queue device.
pub fn set_queue(fd: BorrowedFd<'_>, attach: bool) -> io::Result<()> {
    let flag = if attach {
        libc::IFF_ATTACH_QUEUE
    } else {
        libc::IFF_DETACH_QUEUE
    };
    // Both flags fit the 16-bit `ifr_flags` (0x200 and 0x400).
    let mut req = IfreqFlags::new(IfName::empty(), flag as u16);
    // SAFETY: TUNSETQUEUE reads a `struct ifreq`, which `IfreqFlags` is, size for size.
    unsafe { ioctl_ptr(fd, libc::TUNSETQUEUE, &mut req) }.map(drop)
}

/// TUNGETIFF: the device's name and flags. (`IFF_NO_PI` and `IFF_NOFILTER` share one bit here.)
pub fn get_iff(fd: BorrowedFd<'_>) -> io::Result<(IfName, TunFlags)> {
    let mut req = IfreqFlags::new(IfName::empty(), 0);
    // SAFETY: TUNGETIFF writes a `struct ifreq`, which `IfreqFlags` is, size for size.
    unsafe { ioctl_ptr(fd, libc::TUNGETIFF, &mut req) }?;
    Ok((req.name, TunFlags::from_bits_retain(req.flags)))
}

/// TUNGETFEATURES: the TUNSETIFF flags this kernel supports.
#[cfg(feature = "probes")]
pub fn get_features(fd: BorrowedFd<'_>) -> io::Result<TunFlags> {
    let mut features: libc::c_uint = 0;
    // SAFETY: TUNGETFEATURES writes one `unsigned int` through its argument.
    unsafe { ioctl_ptr(fd, libc::TUNGETFEATURES, &mut features) }?;
    // The flags all live in the low 16 bits (`ifr_flags` is a short).
    Ok(TunFlags::from_bits_retain((features & 0xffff) as u16))
}

/// TUNSETOFFLOAD: the offloads the kernel may use on packets it hands us (device-wide, survives the fd).
///
/// Unknown or unsupported combinations give `EINVAL` (USO4 and USO6 only together and with CSUM).
pub fn set_offload(fd: BorrowedFd<'_>, offloads: Offloads) -> io::Result<()> {
    ioctl_value(
        fd,
        libc::TUNSETOFFLOAD,
        libc::c_ulong::from(offloads.bits()),
    )
    .map(drop)
}

/// TUNSETPERSIST: keep the device when its last fd closes (`true`), or not.
pub fn set_persist(fd: BorrowedFd<'_>, persist: bool) -> io::Result<()> {
    ioctl_value(fd, libc::TUNSETPERSIST, libc::c_ulong::from(persist)).map(drop)
}

/// TUNSETOWNER: the user allowed to attach to the device (set before persist).
pub fn set_owner(fd: BorrowedFd<'_>, uid: libc::uid_t) -> io::Result<()> {
    ioctl_value(fd, libc::TUNSETOWNER, libc::c_ulong::from(uid)).map(drop)
}

/// TUNSETGROUP: the group allowed to attach to the device (set before persist).
pub fn set_group(fd: BorrowedFd<'_>, gid: libc::gid_t) -> io::Result<()> {
    ioctl_value(fd, libc::TUNSETGROUP, libc::c_ulong::from(gid)).map(drop)
}

/// TUNGETVNETHDRSZ: the size of the virtio-net header before each packet (10 by default).
#[cfg(feature = "probes")]
pub fn get_vnet_hdr_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut size: libc::c_int = 0;
    // SAFETY: TUNGETVNETHDRSZ writes one `int` through its argument.
    unsafe { ioctl_ptr(fd, libc::TUNGETVNETHDRSZ, &mut size) }?;
    usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// TUNSETVNETHDRSZ: sets the virtio-net header size (the kernel accepts 10, 12 and more).
pub fn set_vnet_hdr_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    let mut size =
        libc::c_int::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: TUNSETVNETHDRSZ reads one `int` through its argument.
    unsafe { ioctl_ptr(fd, libc::TUNSETVNETHDRSZ, &mut size) }.map(drop)
}

/// TUNGETDEVNETNS: an fd of the network namespace the device currently lives in (it follows the device
/// when it is moved with `ip link set dev X netns Y`). Needs CAP_NET_ADMIN in that namespace.
pub fn get_dev_netns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let raw = ioctl_value(fd, libc::TUNGETDEVNETNS, 0)?;
    // SAFETY: on success TUNGETDEVNETNS returns a new descriptor (opened O_CLOEXEC) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
