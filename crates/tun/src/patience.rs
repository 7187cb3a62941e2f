//! How long a packet call may wait for the fd, and the one loop that retries a non-blocking system call
//! (`EINTR`, `EAGAIN`) within that patience, for reads and writes alike.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use tun_sys::{Interest, Wait};

use crate::device::Tun;
use crate::error::{Error, Result};

/// How long a call may wait for the fd to become ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Until it is ready or the device is closed (the blocking calls).
    Forever,
    /// Until then; after it, [`Error::TimedOut`].
    Until(Instant),
    /// Not at all: [`Error::WouldBlock`] instead (the `try_` calls and async).
    Never,
}

impl Tun {
    /// Runs the non-blocking system call `call` on the fd until it does not report `WouldBlock`, waiting
    /// (cancellably, by `close()`) for `interest` as `patience` allows. `EINTR` is retried; other errors are an
    /// [`Error::Io`] naming `op`.
    pub(crate) fn retry_io<T>(
        &self,
        op: &'static str,
        interest: Interest,
        patience: Patience,
        mut call: impl FnMut(BorrowedFd<'_>) -> io::Result<T>,
    ) -> Result<T> {
        loop {
            self.check_open()?;
            match call(self.fd()) {
                Ok(value) => return Ok(value),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(interest, patience)?,
                Err(e) => return Err(Error::io(op, self.label, e)),
            }
        }
    }

    /// Blocks until the fd is ready for `interest`, the device is closed ([`Error::Closed`]) or `patience`
    /// runs out ([`Error::WouldBlock`] or [`Error::TimedOut`]).
    pub(crate) fn wait(&self, interest: Interest, patience: Patience) -> Result<()> {
        let timeout = match patience {
            Patience::Forever => None,
            Patience::Never => return Err(Error::WouldBlock),
            Patience::Until(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
        };
        match tun_sys::wait::wait(self.fd(), interest, &self.cancel, timeout) {
            Ok(Wait::Cancelled) => Err(Error::Closed),
            Ok(Wait::Ready) => Ok(()),
            Ok(Wait::TimedOut) => match patience {
                Patience::Until(_) => Err(Error::TimedOut),
                Patience::Forever | Patience::Never => Ok(()),
            },
            Err(e) => Err(Error::io("poll", self.label, e)),
        }
    }
}
