//! Helpers shared by the tests that run this package's examples: network namespaces that clean up after
//! themselves, the path of an example binary of this very build, and a child that is killed if the test fails.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A network namespace made by `ip netns add` and deleted when dropped, whatever happens in the test.
pub struct Netns(pub String);

impl Netns {
    /// A fresh namespace named `<tag>-<pid>-<n>`: tests of one binary run in parallel, so each gets a number
    /// of its own.
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{tag}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        Self(name)
    }

    /// Runs `ip -n <this namespace> args...` and asserts it succeeds.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Whether an interface of that name exists in this namespace.
    pub fn has_link(&self, name: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.0, "link", "show", "dev", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Whether `dev` has a route to exactly `prefix` (`ip route show dev DEV PREFIX` lists one).
    pub fn has_route(&self, dev: &str, prefix: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.0])
            // Without -6, `ip route show` lists IPv4 routes only.
            .arg(if prefix.contains(':') { "-6" } else { "-4" })
            .args(["route", "show", "dev", dev, prefix])
            .output()
            .is_ok_and(|out| out.status.success() && !out.stdout.is_empty())
    }

    /// Runs `f` on a thread inside this namespace (sockets it creates live here).
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd = tun_sys::netns::open_named(&self.0).expect("open the namespace");
        tun_sys::netns::run_in(&fd, f).expect("enter the namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `ip args...` and asserts it succeeds, showing its stderr otherwise.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `target/<profile>/examples/<name>`, beside the `deps/` directory holding this test binary.
///
/// `cargo test -p tun` builds the package's examples there, so this is the example of this very build.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    profile_dir.join("examples").join(name)
}

/// A running example, killed if the test fails before it exits on its own.
pub struct Running(pub Child);

impl Running {
    /// The exit status once the child has exited, or `None` if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Whether `cond` holds within `within`, checked every 10 ms.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
