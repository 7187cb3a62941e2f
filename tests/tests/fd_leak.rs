//! Creating and closing devices leaks nothing. Alone in its test binary, so no other test's fds are counted.

use tun::Builder;
use tun_system_tests::{NetNs, NetNsTun, assert_back_to, fd_count, settled_thread_count};

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn two_hundred_create_close_cycles_leave_the_fd_count_unchanged() {
    let ns = NetNs::new();
    for offload in [false, true] {
        // One warm-up cycle, so one-time allocations (thread-local state, lazily opened files) are not counted.
        ns.tun(Builder::new().name("tt-leak0").offload(offload))
            .unwrap()
            .close()
            .unwrap();
        let (fds, threads) = (fd_count(), settled_thread_count());
        for i in 0..200 {
            let tun = ns
                .tun(Builder::new().name("tt-leak0").offload(offload))
                .unwrap();
            if i % 2 == 0 {
                tun.close().unwrap();
            }
            drop(tun);
        }
        assert_back_to(
            &format!("after 200 cycles (offload {offload})"),
            fds,
            threads,
        );
    }
}
