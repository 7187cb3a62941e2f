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
/// when it is moved with `ip link set dev X netns Y`). Needs CAP_NET_ADMIN in that namespace. `ENOTTY`, with
/// no ioctl made, when `fd` is not a file of `/dev/net/tun`.
pub fn get_dev_netns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // The answer is taken for a new descriptor, which only the TUN driver's is: another file's ioctl could
    // answer this request number with the number of a descriptor someone else owns.
    if !is_tun_file(fd)? {
        return Err(io::Error::from_raw_os_error(libc::ENOTTY));
    }
    let raw = ioctl_value(fd, libc::TUNGETDEVNETNS, 0)?;
    // SAFETY: `fd` is a file of the TUN driver (checked above), whose TUNGETDEVNETNS returns on success a new
    // descriptor (opened O_CLOEXEC) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The device number of `/dev/net/tun`: the misc major 10 and the TUN driver's fixed minor, `TUN_MINOR`.
const TUN_DEVICE_NUMBER: (libc::c_uint, libc::c_uint) = (10, 200);

/// Whether `fd` is an open file of `/dev/net/tun` (under whatever path the node was opened): a character
/// device whose number is the TUN driver's, which is what the kernel dispatches its ioctls to.
fn is_tun_file(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let stat = crate::io::stat(fd)?;
    Ok(stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && (libc::major(stat.st_rdev), libc::minor(stat.st_rdev)) == TUN_DEVICE_NUMBER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, IntoRawFd};

    /// Runs `f` on a thread of its own on which every `ioctl(_, request, _)` returns 0 without reaching any
    /// driver (a seccomp filter answering `SECCOMP_RET_ERRNO` with errno 0): a file whose driver answers
    /// `request` with descriptor number 0. `None` where seccomp filters cannot be installed.
    #[cfg(target_endian = "little")]
    fn with_ioctl_answering_zero<T: Send>(
        request: libc::Ioctl,
        f: impl FnOnce() -> T + Send,
    ) -> Option<T> {
        let statement = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump_unless = |k: u32, skip: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: skip,
            k,
        };
        let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let ret = libc::BPF_RET | libc::BPF_K;
        // seccomp_data: the syscall number at 0, args[1] (the request, low half first) at 24.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut filter = [
                        statement(load, 0),
                        jump_unless(libc::SYS_ioctl as u32, 3),
                        statement(load, 24),
                        jump_unless(request as u32, 1),
                        statement(ret, libc::SECCOMP_RET_ERRNO),
                        statement(ret, libc::SECCOMP_RET_ALLOW),
                    ];
                    let program = libc::sock_fprog {
                        len: filter.len() as u16,
                        filter: filter.as_mut_ptr(),
                    };
                    // SAFETY: prctl with integer arguments only; no_new_privs is per thread and this thread
                    // ends with the scope.
                    let no_new_privs =
                        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                    // SAFETY: `program` points to `filter`, a valid BPF program of `len` instructions that lives
                    // across the call (the kernel copies it); the filter applies to this thread only.
                    let installed = unsafe {
                        libc::prctl(
                            libc::PR_SET_SECCOMP,
                            libc::SECCOMP_MODE_FILTER,
                            &raw const program,
                        )
                    };
                    (no_new_privs == 0 && installed == 0).then(f)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn a_file_that_is_no_tun_device_never_hands_over_a_descriptor() {
        let (read_end, _write_end) = std::io::pipe().unwrap();
        let Some(answer) =
            with_ioctl_answering_zero(libc::TUNGETDEVNETNS, || get_dev_netns(read_end.as_fd()))
        else {
            eprintln!("seccomp filters are refused here: nothing to check");
            return;
        };
        match answer {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOTTY), "{e}"),
            // Given up unclosed: the descriptor belongs to someone else.
            Ok(fd) => panic!("took ownership of descriptor {}", fd.into_raw_fd()),
        }
    }

    #[test]
    fn a_tun_file_is_recognised_and_a_pipe_is_not() {
        let (read_end, _write_end) = std::io::pipe().unwrap();
        assert!(!is_tun_file(read_end.as_fd()).unwrap());
        match open_clone_device(true) {
            Ok(tun) => assert!(is_tun_file(tun.as_fd()).unwrap()),
            Err(e) => eprintln!("no /dev/net/tun here ({e}): only the pipe was checked"),
        }
    }
}
