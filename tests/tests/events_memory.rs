//! Link event receivers leave no memory behind: a `recv_async` future given up (a timeout that passed, a
//! `select!` that took another branch) takes its task's waker with it, and a receiver dropped while the link
//! is quiet is forgotten. Alone in its binary, because the allocation counter replaces the global allocator
//! (it counts per thread).

use std::sync::Arc;
use std::time::Duration;

use tun::{Builder, Events};
use tun_system_tests::{NetNs, NetNsTun, runtime};

/// How many waits are given up in the measured round.
const ABANDONED: i64 = 2000;

/// Gives up `count` waits for an event on `events`, each in a task of its own on a current-thread runtime
/// (so that every task is allocated and freed on the measuring thread) that waits 1 ms; returns the bytes
/// still allocated afterwards.
fn bytes_left_by_abandoned_waits(
    rt: &tokio::runtime::Runtime,
    events: &Arc<Events>,
    count: i64,
) -> i64 {
    let info = allocation_counter::measure(|| {
        rt.block_on(async {
            for _ in 0..count {
                let events = Arc::clone(events);
                let waited = tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_millis(1), events.recv_async()).await
                });
                assert!(waited.await.expect("the task").is_err(), "an event came");
            }
        });
    });
    info.bytes_current
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn abandoned_async_event_waits_leave_no_memory_behind() {
    let ns = NetNs::new();
    // The link stays down and unchanged: no event comes to free what the waits left.
    let tun = ns.tun(Builder::new().name("te-mem0")).unwrap();
    let events = Arc::new(tun.events());
    let rt = runtime(false);
    // A warm-up round, so that the runtime's and the timer's one-time allocations are not counted.
    bytes_left_by_abandoned_waits(&rt, &events, 100);
    let left = bytes_left_by_abandoned_waits(&rt, &events, ABANDONED);
    eprintln!(
        "{ABANDONED} abandoned waits left {left} bytes ({} per wait)",
        left / ABANDONED
    );
    // Each wait left its whole task (a few hundred bytes) when the wakers were kept; a few bytes per wait
    // would still be a leak.
    assert!(left < ABANDONED, "{left} bytes left by {ABANDONED} waits");
    assert_eq!(events.pending(), 0);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn receivers_made_and_dropped_while_the_link_is_quiet_leave_no_memory_behind() {
    const RECEIVERS: i64 = 2000;
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("te-mem1")).unwrap();
    let kept = tun.events();
    let left = allocation_counter::measure(|| {
        for _ in 0..RECEIVERS {
            drop(tun.events());
            drop(kept.clone());
        }
    })
    .bytes_current;
    eprintln!("{RECEIVERS} receivers made and dropped left {left} bytes");
    // One dropped receiver may wait to be forgotten until the next one is made.
    assert!(left < 1024, "{left} bytes left by {RECEIVERS} receivers");
}
