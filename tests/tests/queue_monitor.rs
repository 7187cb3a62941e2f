//! A queue opened from a monitored device shares the device's link monitor and starts no thread of its own.
//! Alone in its test binary, so no other test's threads are counted.

use std::time::Duration;

use tun::{Builder, Tun};
use tun_system_tests::{
    NetNs, NetNsTun, settled_thread_count, thread_count, threads_named, wait_until,
};

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn open_queue_shares_the_monitor_and_starts_no_thread() {
    let ns = NetNs::new();
    let first = ns
        .tun(Builder::new().name("tt-mqmon").multi_queue(true))
        .unwrap();
    first.set_udp_gro(false);
    let threads = settled_thread_count();
    assert_eq!(threads_named("tun-events"), 1);
    let more: Vec<Tun> = (0..3).map(|_| first.open_queue().unwrap()).collect();
    assert_eq!(threads_named("tun-events"), 1);
    // Not one more thread of any name; the count may still fall while a thread from before is reaped.
    assert!(
        thread_count() <= threads,
        "threads {threads} -> {} after opening three queues",
        thread_count()
    );
    assert!(more.iter().all(Tun::is_monitored));
    // The switches as the queue it was opened from had them, then its own.
    assert!(more.iter().all(|q| q.gro() && !q.udp_gro()));
    more[0].set_gro(false);
    assert!(first.gro() && !more[0].gro());
    // One monitor for the device: its events reach a receiver taken from any queue.
    let events = more[2].events();
    ns.ip(&["link", "set", "tt-mqmon", "up"]);
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::Running)
    );
    // The monitor runs until the last queue is closed, whichever that is, and follows the device through the
    // queues still open: here into another namespace, through the last one.
    first.close().unwrap();
    more[0].close().unwrap();
    more[1].close().unwrap();
    assert!(ns.link("tt-mqmon").is_some());
    let elsewhere = NetNs::new();
    ns.ip(&["link", "set", "tt-mqmon", "netns", elsewhere.name()]);
    // A move takes the link down.
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::NotRunning)
    );
    elsewhere.ip(&["link", "set", "tt-mqmon", "mtu", "1300"]);
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::MtuUpdate(1300))
    );
    more[2].close().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || elsewhere
            .link("tt-mqmon")
            .is_none()),
        "the device outlived its last queue"
    );
}
