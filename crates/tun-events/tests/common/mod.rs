//! Test helpers shared by the privileged tests: network namespaces that clean up after themselves.

#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

impl Netns {
    /// Starts `ip -n NAME -batch` over `commands` (one `ip` command a line) without waiting for it.
    pub fn spawn_batch(&self, commands: &str) -> IpBatch {
        let path = std::env::temp_dir().join(format!("{}.batch", self.name));
        std::fs::write(&path, commands).expect("write batch");
        let child = Command::new("ip")
            .args(["-n", &self.name, "-batch"])
            .arg(&path)
            .spawn()
            .expect("spawn ip");
        IpBatch { child, path }
    }
}

/// A running `ip -batch`: killed if still running and its command file removed when dropped.
pub struct IpBatch {
    /// The `ip` process.
    pub child: Child,
    path: PathBuf,
}

impl Drop for IpBatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `count` pairs of `link set LINK up` / `link set LINK down`, as `ip -batch` commands.
pub fn flaps(link: &str, count: usize) -> String {
    format!("link set {link} up\nlink set {link} down\n").repeat(count)
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
