//! The `events` example as a user runs it: one line per link change, exit 0 on SIGTERM.
//!
//! `cargo test -p tun` builds the package's examples next to its test binaries (`target/*/examples/`), so the
//! test runs the example binary of this very build, inside a network namespace it creates and removes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tun_sys::signal::{self, Signal};

const WITHIN: Duration = Duration::from_secs(2);

/// A network namespace for this test, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!("tex-{}", std::process::id());
        ip(&["netns", "add", &name]);
        Self(name)
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn has_link(&self, name: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.0, "link", "show", "dev", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `target/<profile>/examples/events`, beside the `deps/` directory holding this test binary.
fn example_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    profile_dir.join("examples").join("events")
}

/// Kills the example if the test fails before it exits on its own.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn example_prints_each_event_and_exits_zero_on_sigterm() {
    let example = example_path();
    assert!(
        example.exists(),
        "{} missing: `cargo test -p tun` builds it",
        example.display()
    );
    let ns = Netns::new();
    // `ip netns exec` enters the namespace and then execs the program, so the child's pid is the example's.
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&example)
        .arg("tex0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn example");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.has_link("tex0") {
        assert!(Instant::now() < deadline, "the example did not create tex0");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (args, line) in [
        (&["link", "set", "tex0", "up"][..], "up"),
        (&["link", "set", "tex0", "mtu", "1400"][..], "mtu 1400"),
        (&["link", "set", "tex0", "down"][..], "down"),
    ] {
        ns.ip(args);
        assert_eq!(lines.recv_timeout(WITHIN).as_deref(), Ok(line));
    }

    let pid = running.0.id();
    signal::send(pid, Signal::Terminate).expect("send SIGTERM");
    let deadline = Instant::now() + WITHIN;
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the example did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    reader.join().expect("reader");
    assert!(lines.try_recv().is_err(), "no line after the last event");
    assert!(!ns.has_link("tex0"), "closing removed the device");
}
