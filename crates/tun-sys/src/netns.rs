//! Network namespaces: the current one, enter (per thread), compare, and run code inside one.
//!
//! Namespace membership is per thread. A TUN device is created in the namespace of the thread that opened
//! `/dev/net/tun`, and a socket lives in the namespace of the thread that created it; afterwards either works
//! from any thread.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::sys::cvt;

/// The calling thread's current network namespace.
pub fn current() -> io::Result<OwnedFd> {
    crate::io::open(
        c"/proc/thread-self/ns/net",
        libc::O_RDONLY | libc::O_CLOEXEC,
    )
}

/// Moves the calling thread into the network namespace `ns` (`setns(ns, CLONE_NEWNET)`).
pub fn enter(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns takes no pointers; `ns` is live for the borrow.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

/// What tells one namespace from another: the (device, inode) of its file, the same for every fd of it and
/// never shared with another namespace while either is open.
pub type NsId = (u64, u64);

/// The identity of the namespace `ns`.
pub fn id(ns: BorrowedFd<'_>) -> io::Result<NsId> {
    crate::io::file_id(ns)
}

/// True when `a` and `b` are the same namespace.
pub fn same(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(id(a)? == id(b)?)
}

/// Runs `f` on a new thread that first entered `ns`, and returns its result. The calling thread's own
/// namespace never changes.
///
/// The thread is scoped: it ends before `run_in` returns, and it is the only one this crate starts. A thread
/// of its own, instead of entering `ns` and back on the caller's, is what makes "never changes" hold even when
/// entering back would fail.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let ns: std::os::fd::OwnedFd = std::fs::File::open("/run/netns/blue")?.into();
/// let sock = tun_sys::netns::run_in(&ns, tun_sys::iface::control_socket)??;
/// # let _ = sock; Ok(()) }
/// ```
pub fn run_in<T: Send>(ns: &OwnedFd, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(std::os::fd::AsFd::as_fd(ns))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn current_namespace_is_the_same_as_itself() {
        let a = current().unwrap();
        let b = current().unwrap();
        assert!(same(a.as_fd(), b.as_fd()).unwrap());
    }

    #[test]
    fn run_in_runs_the_closure_inside_or_not_at_all() {
        // Entering a namespace needs CAP_SYS_ADMIN even for one's own: with it the closure runs and its result
        // comes back; without it the error comes back and the closure never runs outside the namespace.
        let ns = current().unwrap();
        let ran = std::sync::atomic::AtomicBool::new(false);
        match run_in(&ns, || {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            42
        }) {
            Ok(value) => assert_eq!(value, 42),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
            }
        }
    }
}
