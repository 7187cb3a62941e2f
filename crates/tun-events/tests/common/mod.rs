//! Test helpers shared by the privileged tests: network namespaces that clean up after themselves.

#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tun_sys::{IfName, TunFlags};

/// How long a change may take to be reported (generous for a loaded 2-core machine).
pub const REPORT_WITHIN: Duration = Duration::from_secs(2);

/// A network namespace made by `ip netns add` and deleted when dropped, whatever happens in the test.
pub struct Netns {
    /// The name `ip netns` knows it by.
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tev-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]);
        Self { name }
    }

    /// Runs `ip -n NAME ARGS...` and asserts it succeeded.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// The interface index of `link` in this namespace, from `ip -o link show`.
    pub fn index_of(&self, link: &str) -> u32 {
        let output = Command::new("ip")
            .args(["-n", &self.name, "-o", "link", "show", "dev", link])
            .output()
            .expect("spawn ip");
        assert!(output.status.success(), "ip link show {link}");
        let text = String::from_utf8_lossy(&output.stdout);
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .expect("index")
    }

    /// Creates the TUN device `name` inside this namespace and returns its fd.
    pub fn create_tun(&self, name: &str) -> OwnedFd {
        let ns = tun_sys::netns::open_named(&self.name).expect("open netns");
        let name = IfName::new(name).expect("name");
        tun_sys::netns::run_in(&ns, || {
            let fd = tun_sys::tun::open_clone_device(false)?;
            tun_sys::tun::set_iff(fd.as_fd(), name, TunFlags::empty())?;
            Ok::<_, std::io::Error>(fd)
        })
        .expect("enter netns")
        .expect("create TUN")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("spawn command");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
