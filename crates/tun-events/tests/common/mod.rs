//! Test helpers shared by the privileged monitor tests, on the workspace's test support.

#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

pub use tun_test_support::NetNs;

use tun_sys::{IfName, TunFlags};

/// How long a change may take to be reported (generous for a loaded 2-core machine).
pub const REPORT_WITHIN: Duration = Duration::from_secs(2);

/// A fresh namespace for one test, `tev-TAG-PID-N`, removed when dropped.
pub fn netns(tag: &str) -> NetNs {
    NetNs::tagged(&format!("tev-{tag}"))
}

/// What the monitor tests do in a namespace beyond what [`NetNs`] offers.
pub trait NetnsExt {
    /// Creates the TUN device `name` inside this namespace and returns its fd.
    fn create_tun(&self, name: &str) -> OwnedFd;
}

impl NetnsExt for NetNs {
    fn create_tun(&self, name: &str) -> OwnedFd {
        let name = IfName::new(name).expect("name");
        self.run_in(|| {
            let fd = tun_sys::tun::open_clone_device(false)?;
            tun_sys::tun::set_iff(fd.as_fd(), name, TunFlags::empty())?;
            Ok::<_, std::io::Error>(fd)
        })
        .expect("create TUN")
    }
}
