//! [`QueueFds`]: the descriptors of a device's open queues, through which its link monitor asks where the
//! device lives and what it is called, so that the monitor holds no queue of its own.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tun_sys::IfName;
use tun_sys::io::RetirableFd;

/// The open queues' descriptors of one device. A queue is added once attached and removed before its
/// descriptor is released (or given away); the monitor uses a descriptor only under the lock, so it never
/// sees a released one, and never keeps one after a queue is gone.
#[derive(Debug, Default)]
pub(crate) struct QueueFds {
    /// Weak, so that a queue's descriptor is never kept open by this list, only borrowed under its lock.
    fds: Mutex<Vec<Weak<RetirableFd>>>,
}

impl QueueFds {
    /// Adds the descriptor of a newly attached queue.
    pub(crate) fn add(&self, fd: &Arc<RetirableFd>) {
        self.fds.lock().push(Arc::downgrade(fd));
    }

    /// Removes a queue's descriptor: once this returns, the monitor no longer uses it.
    pub(crate) fn remove(&self, fd: &Arc<RetirableFd>) {
        let gone = Arc::downgrade(fd);
        self.fds
            .lock()
            .retain(|kept| !kept.ptr_eq(&gone) && kept.strong_count() > 0);
    }

    /// Runs `query` on the descriptor of one open queue, under the lock. `EBADFD`, as for a deleted device,
    /// when no queue is open.
    fn with_any<T>(&self, query: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
        let fds = self.fds.lock();
        let Some(fd) = fds.iter().find_map(Weak::upgrade) else {
            return Err(io::Error::from_raw_os_error(libc::EBADFD));
        };
        let answer = query(fd.as_fd());
        // Dropped under the lock: no strong reference outlives it, so a removed queue's owner holds the only one.
        drop(fd);
        drop(fds);
        answer
    }
}

impl tun_events::DeviceHandle for QueueFds {
    fn netns(&self) -> io::Result<OwnedFd> {
        self.with_any(tun_sys::tun::get_dev_netns)
    }

    fn name(&self) -> io::Result<IfName> {
        self.with_any(|fd| tun_sys::tun::get_iff(fd).map(|(name, _)| name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tun_events::DeviceHandle;

    fn null() -> Arc<RetirableFd> {
        Arc::new(RetirableFd::new(OwnedFd::from(
            std::fs::File::open("/dev/null").expect("open /dev/null"),
        )))
    }

    #[test]
    fn without_an_open_queue_the_device_answers_as_a_deleted_one() {
        let fds = QueueFds::default();
        assert_eq!(fds.name().unwrap_err().raw_os_error(), Some(libc::EBADFD));
        let queue = null();
        fds.add(&queue);
        // /dev/null is no TUN fd: the ioctl itself is refused, which shows that it was made.
        assert_eq!(fds.name().unwrap_err().raw_os_error(), Some(libc::ENOTTY));
        fds.remove(&queue);
        assert_eq!(fds.netns().unwrap_err().raw_os_error(), Some(libc::EBADFD));
    }

    #[test]
    fn removing_one_queue_keeps_the_others_and_holds_no_descriptor() {
        let fds = QueueFds::default();
        let (first, second) = (null(), null());
        fds.add(&first);
        fds.add(&second);
        fds.remove(&first);
        assert_eq!(fds.fds.lock().len(), 1);
        assert_eq!(Arc::strong_count(&first), 1);
        assert!(Arc::try_unwrap(first).is_ok());
        drop(second);
        // A queue dropped without removal is not used (and is pruned at the next removal).
        assert_eq!(fds.name().unwrap_err().raw_os_error(), Some(libc::EBADFD));
    }
}
