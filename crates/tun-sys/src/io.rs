//! Plain I/O on borrowed descriptors: open, read, write, writev, retiring a [`RetirableFd`] in place, and
//! telling whether other descriptors of the process share an fd's open file.
//!
//! These are single non-blocking calls: on a non-blocking fd they return `WouldBlock` instead of waiting.
//! Waiting is [`crate::wait`]'s job.

use std::ffi::CStr;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{cvt, cvt_size};

/// `open(path, flags)`; `flags` should include `O_CLOEXEC`.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a NUL-terminated string valid for the call; no mode is needed without O_CREAT.
    let raw = cvt(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: `open` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `read(fd, buf)`: one call, the number of bytes read.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call; `fd` is live for the borrow.
    cvt_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(fd, buf)`: one call, the number of bytes written.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call; `fd` is live for the borrow.
    cvt_size(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// `writev(fd, bufs)`: one call gathering `bufs` (on a TUN fd: one packet), the number of bytes written.
pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = libc::c_int::try_from(bufs.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` (guaranteed by std on Unix) and each slice is
    // valid for reads for the call; `count` is the array's length; `fd` is live for the borrow.
    cvt_size(unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), count) })
}

/// An owned descriptor whose open file [`retire`] and [`replace`] may swap in place, behind the borrows
/// handed out of it.
///
/// Swapping the file behind a descriptor number closes the old file as far as every holder of the number is
/// concerned, so only the owner may do it, and only where every borrower was told it can happen: a
/// registration with a reactor (tokio's `AsyncFd`, for one) must refer to the same open file for as long as
/// it lasts. A plain [`OwnedFd`] or a [`BorrowedFd`] promises that to whoever holds it, which is why
/// [`retire`] and [`replace`] take only this type: its borrows may come to refer to `/dev/null` (or whatever
/// [`replace`] put there) while they last, and they never dangle or refer to an unrelated file.
#[derive(Debug)]
pub struct RetirableFd(OwnedFd);

impl RetirableFd {
    /// Takes ownership of `fd`; its file may be swapped from now on.
    pub fn new(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// The descriptor, to own it plainly again (whatever file it refers to by now).
    pub fn into_owned(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for RetirableFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for RetirableFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Replaces what `fd` refers to with `/dev/null`, atomically and without freeing the descriptor number.
///
/// The open file behind `fd` (a TUN queue, say) is released as if closed, but the number stays allocated
/// until its owner drops it. That lets a `close(&self)` tear a device down while `BorrowedFd`s handed out
/// earlier stay valid (they now refer to `/dev/null`), instead of dangling or, worse, being reused by an
/// unrelated file.
///
/// Only a [`RetirableFd`] can be retired, not any descriptor one can borrow: the file behind an epoll that
/// tokio's reactor waits on, say, must stay the same.
///
/// ```compile_fail,E0308
/// use std::os::fd::AsFd;
/// let epoll = tun_sys::epoll::Epoll::new()?;
/// tun_sys::io::retire(epoll.as_fd())?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn retire(fd: &RetirableFd) -> io::Result<()> {
    let null = open(c"/dev/null", libc::O_RDWR | libc::O_CLOEXEC)?;
    replace(fd, null.as_fd())
}

/// Makes `fd` refer to what `with` refers to (`dup3(with, fd, O_CLOEXEC)`): the file `fd` referred to is
/// released as if closed, atomically, and the number stays allocated. Needs no new descriptor, so it works
/// even when the process is out of them (where [`retire`] cannot open `/dev/null`).
///
/// ```compile_fail,E0308
/// use std::os::fd::AsFd;
/// let epoll = tun_sys::epoll::Epoll::new()?;
/// let null = std::fs::File::open("/dev/null")?;
/// tun_sys::io::replace(epoll.as_fd(), null.as_fd())?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn replace(fd: &RetirableFd, with: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both descriptors are live for the call; dup3 atomically closes the file `fd` referred to and makes
    // the number refer to `with`'s file instead. Ownership of the number itself does not change, and swapping
    // its file is what a `RetirableFd` tells everyone it borrows to that it may do.
    cvt(unsafe { libc::dup3(with.as_raw_fd(), fd.as_raw_fd(), libc::O_CLOEXEC) })?;
    Ok(())
}

/// `fcntl(F_SETFL)`: switches `O_NONBLOCK` on or off for the open file (shared by all its descriptors).
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's status flags.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let wanted = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        // SAFETY: F_SETFL takes an int argument by value.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, wanted) })?;
    }
    Ok(())
}

/// `kcmp`'s comparison of two descriptors' open file descriptions (`<linux/kcmp.h>`; not in libc for Linux).
const KCMP_FILE: libc::c_int = 0;

/// Whether `fd` and the descriptor numbered `other` of this process refer to the same open file description
/// (`kcmp(getpid(), getpid(), KCMP_FILE, fd, other)`), as a `dup` of `fd` does; `Ok(false)` when `other` is
/// not open (any more).
///
/// # Errors
///
/// The kernel's refusal of the call: `ENOSYS` without `CONFIG_KCMP`, `EPERM` under a seccomp filter or a
/// Yama policy that forbids it.
pub fn same_open_file(fd: BorrowedFd<'_>, other: RawFd) -> io::Result<bool> {
    let pid = libc::pid_t::try_from(std::process::id())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let (Ok(own), Ok(other)) = (
        libc::c_ulong::try_from(fd.as_raw_fd()),
        libc::c_ulong::try_from(other),
    ) else {
        // A negative number is no descriptor.
        return Ok(false);
    };
    // SAFETY: kcmp takes integers only and dereferences no pointer: it compares the kernel's file objects
    // behind two descriptor numbers of this process (EBADF for a number that is not open).
    let ret = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, own, other) };
    match ret {
        0 => Ok(true),
        1.. => Ok(false),
        _ => {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EBADF) {
                Ok(false)
            } else {
                Err(error)
            }
        }
    }
}

/// Whether another descriptor of this process refers to the same open file description as `fd` (a `dup` of
/// it, or the number it was handed over under): every number in `/proc/self/fd` is compared with
/// [`same_open_file`]. Descriptors other processes hold (a child that inherited it) are not seen.
///
/// # Errors
///
/// Those of [`same_open_file`], and of reading `/proc/self/fd` (`ENOENT` without `/proc`).
pub fn shared_in_process(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let own = fd.as_raw_fd();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let name = entry?.file_name();
        let Some(number) = name.to_str().and_then(|n| n.parse::<RawFd>().ok()) else {
            continue;
        };
        // The directory's own descriptor is among the numbers; it is never a match.
        if number != own && same_open_file(fd, number)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `fstat` identity of the file behind `fd`: (device, inode). Two fds of the same namespace share it.
pub(crate) fn file_id(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let stat = stat(fd)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// `fstat(fd)`.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is valid for writes of one `struct stat`, which fstat fills on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the struct is initialised.
    Ok(unsafe { stat.assume_init() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = std::io::pipe().unwrap();
        (OwnedFd::from(r), OwnedFd::from(w))
    }

    #[test]
    fn write_then_read_moves_the_bytes() {
        let (r, w) = pipe();
        assert_eq!(write(w.as_fd(), b"hello").unwrap(), 5);
        let mut buf = [0u8; 16];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn writev_gathers_all_slices_in_order() {
        let (r, w) = pipe();
        let n = writev(
            w.as_fd(),
            &[IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cde")],
        )
        .unwrap();
        assert_eq!(n, 5);
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"abcde");
    }

    #[test]
    fn read_on_empty_nonblocking_pipe_would_block() {
        let (r, _w) = pipe();
        set_nonblocking(r.as_fd(), true).unwrap();
        let err = read(r.as_fd(), &mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_dup_is_the_same_open_file_and_another_open_of_the_path_is_not() {
        let (r, _w) = pipe();
        let dup = r.try_clone().unwrap();
        assert!(same_open_file(r.as_fd(), dup.as_raw_fd()).unwrap());
        let null = open(c"/dev/null", libc::O_RDONLY | libc::O_CLOEXEC).unwrap();
        let other_null = open(c"/dev/null", libc::O_RDONLY | libc::O_CLOEXEC).unwrap();
        assert!(!same_open_file(null.as_fd(), other_null.as_raw_fd()).unwrap());
        assert!(!same_open_file(r.as_fd(), null.as_raw_fd()).unwrap());
        // A number that is not open, or no number at all.
        let closed = other_null.as_raw_fd();
        drop(other_null);
        assert!(!same_open_file(null.as_fd(), closed).unwrap());
        assert!(!same_open_file(null.as_fd(), -1).unwrap());
    }

    #[test]
    fn an_open_file_is_shared_in_the_process_while_a_dup_of_it_lives() {
        let (r, _w) = pipe();
        assert!(!shared_in_process(r.as_fd()).unwrap());
        let dup = r.try_clone().unwrap();
        assert!(shared_in_process(r.as_fd()).unwrap());
        assert!(shared_in_process(dup.as_fd()).unwrap());
        drop(dup);
        assert!(!shared_in_process(r.as_fd()).unwrap());
    }

    #[test]
    fn retired_fd_keeps_its_number_and_reads_end_of_file() {
        let (r, w) = pipe();
        let r = RetirableFd::new(r);
        write(w.as_fd(), b"x").unwrap();
        retire(&r).unwrap();
        // The pipe's read end is gone: the number now refers to /dev/null, which reads as end of file.
        assert_eq!(read(r.as_fd(), &mut [0u8; 4]).unwrap(), 0);
        // And with no reader left, writing to the pipe fails with EPIPE (SIGPIPE is ignored by the test runner).
        let err = write(w.as_fd(), b"y").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }

    #[test]
    fn replaced_fd_refers_to_the_other_file() {
        let (r, w) = pipe();
        let r = RetirableFd::new(r);
        let (r2, w2) = pipe();
        replace(&r, r2.as_fd()).unwrap();
        write(w2.as_fd(), b"z").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'z');
        // The first pipe lost its only reader.
        assert_eq!(
            write(w.as_fd(), b"y").unwrap_err().raw_os_error(),
            Some(libc::EPIPE)
        );
    }
}
