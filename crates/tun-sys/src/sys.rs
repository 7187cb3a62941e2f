//! The few raw-call helpers the typed wrappers share: errno conversion and `ioctl`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `Ok(ret)` for a non-negative return value, the thread's `errno` otherwise.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `Ok(ret)` for a non-negative `ssize_t`, the thread's `errno` otherwise.
pub(crate) fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// `setsockopt(fd, level, name, &value, sizeof(int))` for the options whose value is a C `int`.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option length"))?;
    // SAFETY: `fd` is live for the borrow; `value` is a c_int that lives across the call and `len` is its
    // exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            len,
        )
    })
    .map(drop)
}

/// `ioctl(fd, request, arg)` where the argument is a plain integer passed by value.
pub(crate) fn ioctl_value(
    fd: BorrowedFd<'_>,
    request: libc::Ioctl,
    arg: libc::c_ulong,
) -> io::Result<libc::c_int> {
    // SAFETY: `fd` is a live descriptor for the duration of the borrow; the requests used with this helper take
    // their argument by value, so the kernel dereferences no pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) })
}

/// `ioctl(fd, request, &mut arg)` where the kernel reads and/or writes `*arg`.
///
/// # Safety
/// `request` must be one whose argument is a pointer to a value with exactly `T`'s size and layout.
pub(crate) unsafe fn ioctl_ptr<T>(
    fd: BorrowedFd<'_>,
    request: libc::Ioctl,
    arg: &mut T,
) -> io::Result<libc::c_int> {
    // SAFETY: `arg` is a valid, exclusive pointer to a `T` for the call; the caller guarantees that `request`
    // reads or writes exactly a `T` through it; `fd` is live for the borrow.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request, std::ptr::from_mut(arg)) })
}
