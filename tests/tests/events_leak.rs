//! Monitored devices leave no threads or fds behind. Alone in its test binary, so no other test's threads or
//! fds are counted.

use std::time::{Duration, Instant};

use tun::Builder;
use tun_system_tests::{
    NetNs, NetNsTun, assert_back_to, fd_count, settled_thread_count, thread_count, wait_until,
};

/// Opens the monitored device `name` `count` times, closing every other one explicitly and dropping the
/// rest, and returns how long that took.
fn open_close_cycles(ns: &NetNs, name: &str, count: usize) -> Duration {
    let started = Instant::now();
    for i in 0..count {
        let tun = ns.tun(Builder::new().name(name)).unwrap();
        assert!(tun.is_monitored());
        if i % 2 == 0 {
            tun.close().unwrap();
        }
        drop(tun);
    }
    started.elapsed()
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn thousand_monitored_open_close_cycles_return_threads_and_fds_to_the_start() {
    let ns = NetNs::new();
    // One warm-up cycle, so one-time allocations (thread-local state, lazily opened files) are not counted.
    drop(ns.tun(Builder::new().name("te-leak0")).unwrap());
    let (fds, threads) = (fd_count(), settled_thread_count());

    // Full cycles: the kernel creates and (taking about 30 ms of RCU grace periods here) removes the device.
    eprintln!(
        "100 monitored create/close cycles took {:?}",
        open_close_cycles(&ns, "te-leak0", 100)
    );
    assert_back_to("after 100 create/close cycles", fds, threads);

    // Cycles on a persistent device: each one a new monitored queue and a close, without the kernel's removal
    // cost, so a thousand fit in the test budget.
    drop(
        ns.tun(Builder::new().name("te-leak1").persist(true))
            .unwrap(),
    );
    eprintln!(
        "1000 monitored attach/close cycles took {:?}",
        open_close_cycles(&ns, "te-leak1", 1000)
    );
    ns.ip(&["link", "del", "te-leak1"]);
    assert_back_to("after 1000 attach/close cycles", fds, threads);

    // Unmonitored devices run no monitor thread at all: while one is open, only its own fds are added.
    let quiet = ns
        .tun(Builder::new().name("te-leak2").monitor(false))
        .unwrap();
    let quiet_fds = fd_count();
    assert!(
        wait_until(Duration::from_secs(5), || thread_count() == threads),
        "threads {threads} -> {} with an unmonitored device open",
        thread_count()
    );
    let monitored = ns.tun(Builder::new().name("te-leak3")).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || thread_count() == threads + 1),
        "threads {threads} -> {} with a monitored device open: one monitor thread expected",
        thread_count()
    );
    drop(monitored);
    drop(quiet);
    assert!(quiet_fds > fds);
    assert_back_to("after the unmonitored device", fds, threads);
}
