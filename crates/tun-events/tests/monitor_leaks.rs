//! Thread and fd accounting for monitors. The only test of its binary, so that no other test's threads or
//! fds change the counts while it runs.

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use common::{NetnsExt, netns};
use tun_events::Monitor;
use tun_test_support::proc::{fd_count, settled_thread_count, thread_count};
use tun_test_support::wait_until;

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn dropping_monitors_releases_their_threads_and_fds() {
    let ns = netns("leak");
    let tun = ns.create_tun("evt0");
    // One round first, so that lazily created process state (thread-local buffers, ...) exists before counting.
    drop(Monitor::spawn(tun.as_fd()).expect("spawn"));
    let counts = || (thread_count(), fd_count());
    // The warm-up's thread may still be being reaped: count once the number holds still.
    let before = (settled_thread_count(), fd_count());
    for _ in 0..1000 {
        drop(Monitor::spawn(tun.as_fd()).expect("spawn"));
    }
    // A joined thread can linger in /proc for a moment while the kernel reaps it.
    let settled = wait_until(Duration::from_secs(5), || counts() == before);
    assert!(settled, "threads/fds {before:?} -> {:?}", counts());
}
