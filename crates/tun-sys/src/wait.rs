//! A blocking wait on a non-blocking fd that another thread can cancel (the counterpart of wireguard-go's
//! `rwcancel`).
//!
//! As in mio, readiness and I/O are separate: [`wait`] only blocks until the fd is ready (or has an error
//! condition) or the [`EventFd`] is signalled; the read or write itself stays a plain non-blocking call that
//! may still return `WouldBlock` (another reader won the race), in which case the caller waits again.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::sys::{cvt, cvt_size};

/// A non-blocking, close-on-exec eventfd used as a sticky "cancelled" signal.
///
/// Once [`signal`](Self::signal)led it stays readable until [`clear`](Self::clear)ed, so every later
/// [`wait`] returns [`Wait::Cancelled`] at once: exactly what a `close()` needs.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new eventfd with counter 0 (`EFD_CLOEXEC | EFD_NONBLOCK`).
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; it returns a new descriptor or -1.
        let raw = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// Makes the eventfd readable, waking every thread blocked in [`wait`] on it.
    pub fn signal(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        match crate::io::write(self.0.as_fd(), &one) {
            Ok(_) => Ok(()),
            // The counter is saturated: it is already readable, which is all a signal means.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Resets the counter to 0 (not readable any more). Returns whether it had been signalled.
    pub fn clear(&self) -> io::Result<bool> {
        let mut value = [0u8; 8];
        match crate::io::read(self.0.as_fd(), &mut value) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// True when signalled and not cleared (checked without blocking): what the tests below observe.
    #[cfg(test)]
    fn is_signalled(&self) -> io::Result<bool> {
        let mut fds = [libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        Ok(poll(&mut fds, Some(Duration::ZERO))? > 0)
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// What the fd is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (`POLLIN`).
    Read,
    /// Writable (`POLLOUT`).
    Write,
}

/// How a [`wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The fd is ready, or has an error condition (`POLLERR`/`POLLHUP`/`POLLNVAL`: a deleted TUN device reports
    /// only that): the next I/O call will return the data or the error.
    Ready,
    /// The [`EventFd`] was signalled.
    Cancelled,
    /// The timeout passed first.
    TimedOut,
}

/// Blocks until `fd` is ready for `interest`, `cancel` is signalled, or `timeout` (if any) passes.
///
/// Cancellation wins over readiness when both hold, so a closed device stops at once. `EINTR` is retried
/// with the remaining time, and so is a timeout longer than one `poll` can wait (`i32` milliseconds, about
/// 24.8 days): it ends at its deadline, not at poll's. A timeout too long for an [`Instant`] is none.
pub fn wait(
    fd: BorrowedFd<'_>,
    interest: Interest,
    cancel: &EventFd,
    timeout: Option<Duration>,
) -> io::Result<Wait> {
    wait_in_slices(fd, interest, cancel, timeout, MAX_POLL)
}

/// The longest one `poll` waits: its timeout is an `int` of milliseconds.
const MAX_POLL: Duration = Duration::from_millis(libc::c_int::MAX as u64);

/// [`wait`], with each `poll` waiting at most `slice`.
fn wait_in_slices(
    fd: BorrowedFd<'_>,
    interest: Interest,
    cancel: &EventFd,
    timeout: Option<Duration>,
    slice: Duration,
) -> io::Result<Wait> {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let mut fds = [
            libc::pollfd {
                fd: fd.as_raw_fd(),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: cancel.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let this_poll = remaining.map_or(slice, |r| r.min(slice));
        match poll(&mut fds, Some(this_poll)) {
            Ok(0) if deadline.is_none_or(|d| Instant::now() < d) => continue,
            Ok(0) => return Ok(Wait::TimedOut),
            Ok(_) => {
                if fds[1].revents != 0 {
                    return Ok(Wait::Cancelled);
                }
                // POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
                return Ok(Wait::Ready);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `poll(fds, timeout)`, `None` meaning forever; the number of fds with events.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let millis = match timeout {
        None => -1,
        // Round up so a short timeout does not become a busy 0 ms poll.
        Some(t) => {
            libc::c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        }
    };
    let count = libc::nfds_t::try_from(fds.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fds` is valid for reads and writes of `count` pollfd structs for the call.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    cvt_size(ret as libc::ssize_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn signalled_eventfd_is_sticky_until_cleared() {
        let ev = EventFd::new().unwrap();
        assert!(!ev.is_signalled().unwrap());
        ev.signal().unwrap();
        ev.signal().unwrap();
        assert!(ev.is_signalled().unwrap());
        assert!(ev.is_signalled().unwrap());
        assert!(ev.clear().unwrap());
        assert!(!ev.is_signalled().unwrap());
        assert!(!ev.clear().unwrap());
    }

    #[test]
    fn wait_on_readable_fd_is_ready() {
        let (r, mut w) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut w, b"x").unwrap();
        let ev = EventFd::new().unwrap();
        assert_eq!(
            wait(r.as_fd(), Interest::Read, &ev, Some(Duration::from_secs(5))).unwrap(),
            Wait::Ready
        );
    }

    #[test]
    fn wait_on_idle_fd_times_out() {
        let (r, _w) = std::io::pipe().unwrap();
        let ev = EventFd::new().unwrap();
        let wait = wait(
            r.as_fd(),
            Interest::Read,
            &ev,
            Some(Duration::from_millis(20)),
        )
        .unwrap();
        assert_eq!(wait, Wait::TimedOut);
    }

    #[test]
    fn a_timeout_longer_than_one_poll_ends_at_its_deadline_not_at_the_polls() {
        let (r, _w) = std::io::pipe().unwrap();
        let ev = EventFd::new().unwrap();
        let start = Instant::now();
        let timeout = Duration::from_millis(120);
        let wait = wait_in_slices(
            r.as_fd(),
            Interest::Read,
            &ev,
            Some(timeout),
            Duration::from_millis(10),
        )
        .unwrap();
        assert_eq!(wait, Wait::TimedOut);
        assert!(
            start.elapsed() >= timeout,
            "timed out after {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn waiting_forever_in_slices_still_wakes_on_cancel() {
        let (r, _w) = std::io::pipe().unwrap();
        let ev = Arc::new(EventFd::new().unwrap());
        let canceller = {
            let ev = Arc::clone(&ev);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(60));
                ev.signal().unwrap();
            })
        };
        let wait = wait_in_slices(
            r.as_fd(),
            Interest::Read,
            &ev,
            None,
            Duration::from_millis(10),
        );
        canceller.join().unwrap();
        assert_eq!(wait.unwrap(), Wait::Cancelled);
    }

    #[test]
    fn a_timeout_too_long_for_an_instant_waits_like_none() {
        let (r, _w) = std::io::pipe().unwrap();
        let ev = EventFd::new().unwrap();
        ev.signal().unwrap();
        assert_eq!(
            wait(r.as_fd(), Interest::Read, &ev, Some(Duration::MAX)).unwrap(),
            Wait::Cancelled
        );
    }

    #[test]
    fn wait_reports_ready_on_error_condition_without_data() {
        // A pipe whose write end is closed reports POLLHUP only, like a deleted TUN device reports POLLERR.
        let (r, w) = std::io::pipe().unwrap();
        drop(w);
        let ev = EventFd::new().unwrap();
        assert_eq!(
            wait(r.as_fd(), Interest::Read, &ev, Some(Duration::from_secs(5))).unwrap(),
            Wait::Ready
        );
    }

    #[test]
    fn cancel_from_another_thread_wakes_a_blocked_wait_within_100ms() {
        let (r, _w) = std::io::pipe().unwrap();
        let ev = Arc::new(EventFd::new().unwrap());
        let waiter = {
            let ev = Arc::clone(&ev);
            std::thread::spawn(move || {
                let result = wait(r.as_fd(), Interest::Read, &ev, None).unwrap();
                (result, Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let signalled_at = Instant::now();
        ev.signal().unwrap();
        let (result, woke_at) = waiter.join().unwrap();
        assert_eq!(result, Wait::Cancelled);
        let latency = woke_at.duration_since(signalled_at);
        assert!(
            latency < Duration::from_millis(100),
            "woke after {latency:?}"
        );
    }

    #[test]
    fn cancellation_wins_over_readiness() {
        let (r, mut w) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut w, b"x").unwrap();
        let ev = EventFd::new().unwrap();
        ev.signal().unwrap();
        assert_eq!(
            wait(r.as_fd(), Interest::Read, &ev, None).unwrap(),
            Wait::Cancelled
        );
    }
}
