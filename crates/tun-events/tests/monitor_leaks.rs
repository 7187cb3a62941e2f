//! Thread and fd accounting for monitors. The only test of its binary, so that no other test's threads or
//! fds change the counts while it runs.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::Netns;
use tun_events::Monitor;

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn dropping_monitors_releases_their_threads_and_fds() {
    let ns = Netns::new("leak");
    let tun = ns.create_tun("evt0");
    // One round first, so that lazily created process state (thread-local buffers, ...) exists before counting.
    drop(Monitor::spawn(tun.as_fd()).expect("spawn"));
    let before = (count("/proc/self/task"), count("/proc/self/fd"));
    for _ in 0..1000 {
        drop(Monitor::spawn(tun.as_fd()).expect("spawn"));
    }
    // A joined thread can linger in /proc for a moment while the kernel reaps it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = (count("/proc/self/task"), count("/proc/self/fd"));
        if after == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "threads/fds {before:?} -> {after:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).expect("read /proc").count()
}
