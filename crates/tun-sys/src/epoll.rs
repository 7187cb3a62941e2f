//! An epoll instance as one fd that stands for several: readable while any fd added to it is ready.
//!
//! Its items are level-triggered, so the epoll fd is readable for as long as one of them is ready for what it
//! was added with or has an error condition (`EPOLLERR` and `EPOLLHUP` are reported whatever was asked). A
//! reactor that waits on the epoll fd thus waits on all its items, without ever knowing them: what happens to
//! an item (its file released, its device deleted) changes nothing the reactor holds. An item holds no
//! reference to its file either: the kernel removes it when the file is released, so adding an fd never keeps
//! what it refers to open.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::cvt;
use crate::wait::Interest;

/// An epoll instance (`EPOLL_CLOEXEC`) whose items are level-triggered.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

impl Epoll {
    /// A new epoll instance with no items.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; it returns a new descriptor or -1.
        let raw = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// Adds `fd`, level-triggered, for `interest` (`EPOLLIN` or `EPOLLOUT`; its error conditions are reported
    /// either way). The item lasts until the file behind `fd` is released or this instance is dropped.
    pub fn add(&self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let events = match interest {
            Interest::Read => libc::EPOLLIN,
            Interest::Write => libc::EPOLLOUT,
        };
        let mut event = libc::epoll_event {
            // The bits are flags: the sign of the C int does not matter.
            events: events.cast_unsigned(),
            // Nobody reads this instance's events: the token is the fd, for a debugger's sake.
            u64: u64::try_from(fd.as_raw_fd()).unwrap_or_default(),
        };
        // SAFETY: both descriptors are live for the call; `event` is a valid epoll_event the kernel only reads.
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &raw mut event,
            )
        })?;
        Ok(())
    }

    /// Whether an item is ready now (checked without blocking): what the tests below observe.
    #[cfg(test)]
    fn is_ready(&self) -> io::Result<bool> {
        let mut fds = [libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        Ok(crate::wait::poll(&mut fds, Some(std::time::Duration::ZERO))? > 0)
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::EventFd;

    #[test]
    fn an_empty_epoll_is_not_ready() {
        assert!(!Epoll::new().unwrap().is_ready().unwrap());
    }

    #[test]
    fn ready_while_an_item_is_ready_for_its_interest() {
        let (r, mut w) = std::io::pipe().unwrap();
        let epoll = Epoll::new().unwrap();
        epoll.add(r.as_fd(), Interest::Read).unwrap();
        assert!(!epoll.is_ready().unwrap());
        std::io::Write::write_all(&mut w, b"x").unwrap();
        // Level-triggered: ready every time it is asked, until the byte is read.
        assert!(epoll.is_ready().unwrap());
        assert!(epoll.is_ready().unwrap());
        assert_eq!(crate::io::read(r.as_fd(), &mut [0u8; 4]).unwrap(), 1);
        assert!(!epoll.is_ready().unwrap());
    }

    #[test]
    fn a_read_interest_ignores_that_the_fd_is_writable() {
        // The write end of an empty pipe is always writable: only a write interest sees that.
        let (_r, w) = std::io::pipe().unwrap();
        let reading = Epoll::new().unwrap();
        reading.add(w.as_fd(), Interest::Read).unwrap();
        assert!(!reading.is_ready().unwrap());
        let writing = Epoll::new().unwrap();
        writing.add(w.as_fd(), Interest::Write).unwrap();
        assert!(writing.is_ready().unwrap());
    }

    #[test]
    fn an_error_condition_is_ready_whatever_the_interest() {
        // A pipe whose read end is gone reports EPOLLERR only, as a deleted TUN device does.
        let (r, w) = std::io::pipe().unwrap();
        let epoll = Epoll::new().unwrap();
        epoll.add(w.as_fd(), Interest::Read).unwrap();
        assert!(!epoll.is_ready().unwrap());
        drop(r);
        assert!(epoll.is_ready().unwrap());
    }

    #[test]
    fn a_signalled_eventfd_makes_every_epoll_holding_it_ready() {
        let cancel = EventFd::new().unwrap();
        let (reading, writing) = (Epoll::new().unwrap(), Epoll::new().unwrap());
        reading.add(cancel.as_fd(), Interest::Read).unwrap();
        writing.add(cancel.as_fd(), Interest::Read).unwrap();
        assert!(!reading.is_ready().unwrap() && !writing.is_ready().unwrap());
        cancel.signal().unwrap();
        assert!(reading.is_ready().unwrap() && writing.is_ready().unwrap());
    }

    #[test]
    fn an_item_does_not_keep_its_file_open() {
        let (r, w) = std::io::pipe().unwrap();
        let r = crate::io::RetirableFd::new(r.into());
        let epoll = Epoll::new().unwrap();
        epoll.add(r.as_fd(), Interest::Read).unwrap();
        // Retiring the only descriptor of the read end releases it although the epoll has it as an item: the
        // writer sees no reader any more.
        crate::io::retire(&r).unwrap();
        let err = crate::io::write(w.as_fd(), b"y").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        assert!(!epoll.is_ready().unwrap());
    }
}
