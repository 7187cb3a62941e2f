//! [`DeviceHandle`]: what the monitor asks about the device it watches, and the plain TUN fd that answers it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tun_sys::IfName;

/// What a [`Monitor`](crate::Monitor) asks about the device it watches: where the device lives now and what
/// it is called. Asked when the monitor starts and each time the device leaves the namespace it was watched
/// in (moved, renamed and moved, or deleted), never on the data path.
///
/// A TUN fd answers both ([`OwnedFd`], which [`Monitor::spawn`](crate::Monitor::spawn) uses). A program that
/// keeps the device's queues itself can answer through any queue still open instead, so that the monitor
/// holds no descriptor of its own: a queue held by the monitor would count against the device's 256, and
/// would keep the device alive.
pub trait DeviceHandle: Send + 'static {
    /// The network namespace the device lives in now (`TUNGETDEVNETNS`).
    ///
    /// # Errors
    ///
    /// `EBADFD` once the device is deleted (or no queue of it is left), which stops the monitor after the
    /// final events; `EPERM` without `CAP_NET_ADMIN` over that namespace, or `EINVAL`/`ENOTTY` on a kernel
    /// before 5.2, which leave a starting monitor in its spawning thread's namespace.
    fn netns(&self) -> io::Result<OwnedFd>;

    /// The device's name now (`TUNGETIFF`).
    ///
    /// # Errors
    ///
    /// As [`netns`](Self::netns): `EBADFD` once the device is deleted.
    fn name(&self) -> io::Result<IfName>;
}

/// A TUN fd (a `/dev/net/tun` fd after `TUNSETIFF`) answers for its device.
impl DeviceHandle for OwnedFd {
    fn netns(&self) -> io::Result<OwnedFd> {
        tun_sys::tun::get_dev_netns(self.as_fd())
    }

    fn name(&self) -> io::Result<IfName> {
        tun_sys::tun::get_iff(self.as_fd()).map(|(name, _)| name)
    }
}

/// A handle shared with its owner answers as the handle does.
impl<T: DeviceHandle + Sync + ?Sized> DeviceHandle for Arc<T> {
    fn netns(&self) -> io::Result<OwnedFd> {
        (**self).netns()
    }

    fn name(&self) -> io::Result<IfName> {
        (**self).name()
    }
}
