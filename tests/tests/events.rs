//! Link events through the facade: `Tun::events()` on real devices in namespaces the tests create.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tun::{Builder, Error, Event, Events, RecvTimeoutError, TryRecvError};
use tun_system_tests::{NetNs, NetNsTun, flaps, wait_until};

/// How long a change may take to be reported (generous for a loaded 2-core machine).
const REPORT_WITHIN: Duration = Duration::from_secs(2);

fn expect(events: &Events, expected: Event) {
    match events.recv_timeout(REPORT_WITHIN) {
        Ok(event) => assert_eq!(event, expected),
        Err(e) => panic!("waiting for {expected:?}: {e}"),
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn ip_link_up_mtu_down_give_up_mtu_update_down_in_order() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("te-order0")).unwrap();
    assert!(tun.is_monitored());
    let events = tun.events();
    ns.ip(&["link", "set", "te-order0", "up"]);
    expect(&events, Event::Running);
    ns.ip(&["link", "set", "te-order0", "mtu", "1400"]);
    expect(&events, Event::MtuUpdate(1400));
    ns.ip(&["link", "set", "te-order0", "down"]);
    expect(&events, Event::NotRunning);
    assert_eq!(
        events.recv_timeout(Duration::from_millis(200)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn events_follow_the_device_into_other_namespaces() {
    let first = NetNs::new();
    let second = NetNs::new();
    let third = NetNs::new();
    let tun = first.tun(Builder::new().name("te-move0")).unwrap();
    let events = tun.events();

    first.ip(&["link", "set", "dev", "te-move0", "netns", second.name()]);
    let started = Instant::now();
    second.ip(&["link", "set", "te-move0", "up"]);
    expect(&events, Event::Running);
    second.ip(&["link", "set", "te-move0", "mtu", "1300"]);
    expect(&events, Event::MtuUpdate(1300));
    second.ip(&["link", "set", "te-move0", "down"]);
    expect(&events, Event::NotRunning);

    second.ip(&["link", "set", "dev", "te-move0", "netns", third.name()]);
    third.ip(&["link", "set", "te-move0", "up"]);
    expect(&events, Event::Running);
    third.ip(&["link", "set", "te-move0", "mtu", "1280"]);
    expect(&events, Event::MtuUpdate(1280));
    eprintln!(
        "events across two moves reported in {:?}",
        started.elapsed()
    );
    // A monitor error would be returned by the next read; there is none (and no packet: the read is closed).
    tun.close().unwrap();
    let mut bufs = [vec![0u8; 2048]];
    assert!(matches!(
        tun.read_packets(&mut bufs, &mut [0], 0),
        Err(Error::Closed)
    ));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn unread_flaps_never_block_and_a_late_reader_sees_the_final_state() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("te-flap0")).unwrap();
    let events = tun.events();
    let mut batch = flaps("te-flap0", 1000);
    batch.push_str("link set te-flap0 up\nlink set te-flap0 mtu 1234\n");
    let mut ip = ns.spawn_ip_batch(&batch);
    let mut most_pending = 0;
    let succeeded = ip.finish_sampling(Duration::from_secs(60), || {
        most_pending = most_pending.max(events.pending());
    });
    assert!(succeeded);
    assert!(
        most_pending <= tun::MAX_PENDING_EVENTS,
        "{most_pending} pending"
    );

    // Read late, up to the MTU change that ended the batch.
    let mut read = Vec::new();
    loop {
        match events.recv_timeout(REPORT_WITHIN) {
            Ok(Event::MtuUpdate(1234)) => break,
            Ok(event) => read.push(event),
            Err(e) => panic!("final MTU not reported ({e}); read {read:?}"),
        }
        assert!(read.len() <= 4000, "more events than changes");
    }
    assert_eq!(read.last(), Some(&Event::Running), "{read:?}");
    let closed_at = Instant::now();
    tun.close().unwrap();
    let took = closed_at.elapsed();
    eprintln!(
        "2000 unread flaps: at most {most_pending} pending, late reader got {read:?}; close took {took:?}"
    );
    // Includes the kernel's removal of the device; the monitor's own part is bounded in the test below.
    assert!(took < Duration::from_secs(1), "close took {took:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn close_stops_the_monitor_within_100ms_while_a_reader_is_blocked() {
    let ns = NetNs::new();
    // Persistent, so that close() is only our part (waking, joining, releasing the queue): removing a device
    // costs the kernel about 30 ms of RCU grace periods here, more on a loaded machine.
    let tun = Arc::new(
        ns.tun(Builder::new().name("te-close0").persist(true))
            .unwrap(),
    );
    let events = tun.events();
    let reader = {
        let tun = Arc::clone(&tun);
        std::thread::spawn(move || {
            let mut bufs = [vec![0u8; 2048]];
            tun.read_packets(&mut bufs, &mut [0], 0)
        })
    };
    let listener = std::thread::spawn(move || events.recv());
    // Let both block.
    std::thread::sleep(Duration::from_millis(100));
    let closed_at = Instant::now();
    tun.close().unwrap();
    let took = closed_at.elapsed();
    eprintln!("close with a blocked reader and a blocked event listener took {took:?}");
    assert!(took < Duration::from_millis(100), "close took {took:?}");
    assert!(matches!(reader.join().unwrap(), Err(Error::Closed)));
    assert_eq!(listener.join().unwrap(), None);
    assert_eq!(tun.events().try_recv(), Err(TryRecvError::Disconnected));
    ns.ip(&["link", "del", "te-close0"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn dropping_the_device_disconnects_its_events() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("te-drop0")).unwrap();
    let events = tun.events();
    ns.ip(&["link", "set", "te-drop0", "up"]);
    expect(&events, Event::Running);
    let dropped_at = Instant::now();
    drop(tun);
    let took = dropped_at.elapsed();
    // Includes the kernel's removal of the device.
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    assert_eq!(events.try_recv(), Err(TryRecvError::Disconnected));
    // The device goes with its only fd: the monitor holds none of its own (a child process being forked by
    // another test at that moment holds the fd until it executes its program, hence the wait).
    assert!(
        wait_until(Duration::from_secs(5), || ns.link("te-drop0").is_none()),
        "the device outlived its fd"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn unmonitored_device_gives_a_receiver_that_is_closed_at_once() {
    let ns = NetNs::new();
    let tun = ns
        .tun(Builder::new().name("te-quiet0").monitor(false))
        .unwrap();
    assert!(!tun.is_monitored());
    let events = tun.events();
    assert_eq!(events.try_recv(), Err(TryRecvError::Disconnected));
    let started = Instant::now();
    assert_eq!(events.recv(), None);
    assert!(started.elapsed() < Duration::from_secs(1));
    ns.ip(&["link", "set", "te-quiet0", "up"]);
    assert_eq!(events.pending(), 0);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn two_receivers_each_see_every_event() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("te-two0")).unwrap();
    let first = tun.events();
    let second = tun.events();
    let third = second.clone();
    ns.ip(&["link", "set", "te-two0", "up"]);
    ns.ip(&["link", "set", "te-two0", "mtu", "1400"]);
    for events in [&first, &second, &third] {
        expect(events, Event::Running);
        expect(events, Event::MtuUpdate(1400));
    }
}
