//! The monitor against real TUN devices, each test in network namespaces it creates and removes.
//!
//! The device is created in a fresh namespace from a helper thread that entered it, while the test thread
//! (and so `Monitor::spawn`) stays in the host namespace: the monitor must find the device's namespace
//! itself. Links are changed with `ip -n NS ...`; nothing outside the test's namespaces is touched.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{NetnsExt, REPORT_WITHIN, netns};
use tun_events::{Event, Events, MAX_PENDING, Monitor, RecvTimeoutError};
use tun_test_support::{flaps, wait_until};

fn expect_event(events: &Events, expected: Event) {
    match events.recv_timeout(REPORT_WITHIN) {
        Ok(event) => assert_eq!(event, expected),
        Err(e) => panic!("waiting for {expected:?}: {e}"),
    }
}

fn expect_quiet(events: &Events) {
    assert_eq!(
        events.recv_timeout(Duration::from_millis(200)),
        Err(RecvTimeoutError::Timeout)
    );
}

/// How long `stop` took.
fn stop_timed(monitor: &Monitor) -> Duration {
    let started = Instant::now();
    monitor.stop();
    started.elapsed()
}

/// Stopping wakes and joins the monitor thread within 100 ms.
fn assert_prompt(stop_took: Duration) {
    assert!(
        stop_took < Duration::from_millis(100),
        "stop took {stop_took:?}"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn up_mtu_down_are_reported_in_order_and_only_once() {
    let ns = netns("order");
    let tun = ns.create_tun("evt0");
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let events = monitor.events();
    expect_quiet(&events);
    ns.ip(&["link", "set", "evt0", "up"]);
    expect_event(&events, Event::Running);
    ns.ip(&["link", "set", "evt0", "mtu", "1400"]);
    expect_event(&events, Event::MtuUpdate(1400));
    // Setting what is already set produces no event.
    ns.ip(&["link", "set", "evt0", "mtu", "1400"]);
    ns.ip(&["link", "set", "evt0", "up"]);
    ns.ip(&["link", "set", "evt0", "down"]);
    expect_event(&events, Event::NotRunning);
    expect_quiet(&events);
    assert!(monitor.take_error().is_none());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_running_before_spawn_is_reported_up_at_once() {
    let ns = netns("early");
    let tun = ns.create_tun("evt0");
    ns.ip(&["link", "set", "evt0", "up"]);
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    assert_eq!(monitor.events().try_recv(), Ok(Event::Running));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_is_followed_into_a_second_and_a_third_namespace() {
    let first = netns("from");
    let second = netns("to");
    let third = netns("then");
    let tun = first.create_tun("evt0");
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let events = monitor.events();
    first.ip(&["link", "set", "evt0", "up"]);
    expect_event(&events, Event::Running);

    // Moving closes the link in the old namespace.
    first.ip(&["link", "set", "dev", "evt0", "netns", second.name()]);
    expect_event(&events, Event::NotRunning);
    second.ip(&["link", "set", "evt0", "up"]);
    expect_event(&events, Event::Running);
    second.ip(&["link", "set", "evt0", "mtu", "1300"]);
    expect_event(&events, Event::MtuUpdate(1300));
    second.ip(&["link", "set", "evt0", "down"]);
    expect_event(&events, Event::NotRunning);

    second.ip(&["link", "set", "dev", "evt0", "netns", third.name()]);
    third.ip(&["link", "set", "evt0", "mtu", "1280"]);
    expect_event(&events, Event::MtuUpdate(1280));
    third.ip(&["link", "set", "evt0", "up"]);
    expect_event(&events, Event::Running);
    third.ip(&["link", "set", "evt0", "down"]);
    expect_event(&events, Event::NotRunning);
    assert!(monitor.take_error().is_none());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_renamed_and_moved_with_a_new_index_is_still_followed() {
    let first = netns("idx");
    let second = netns("idx2");
    let tun = first.create_tun("evt0");
    // In fresh namespaces `lo` is index 1 and the next link index 2: another TUN device takes the device's
    // index in the second namespace, so the move must give the device a new one.
    let _filler = second.create_tun("filler");
    let old_index = first.index_of("evt0");
    assert_eq!(old_index, second.index_of("filler"));
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let events = monitor.events();
    first.ip(&["link", "set", "evt0", "name", "evt-renamed"]);
    first.ip(&["link", "set", "dev", "evt-renamed", "netns", second.name()]);
    assert_ne!(second.index_of("evt-renamed"), old_index);
    second.ip(&["link", "set", "evt-renamed", "up"]);
    expect_event(&events, Event::Running);
    second.ip(&["link", "set", "evt-renamed", "mtu", "1450"]);
    expect_event(&events, Event::MtuUpdate(1450));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn deleting_the_device_reports_down_and_stops_the_monitor() {
    let ns = netns("del");
    let tun = ns.create_tun("evt0");
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let events = monitor.events();
    ns.ip(&["link", "set", "evt0", "up"]);
    expect_event(&events, Event::Running);
    ns.ip(&["link", "del", "evt0"]);
    expect_event(&events, Event::NotRunning);
    assert_eq!(
        events.recv_timeout(REPORT_WITHIN),
        Err(RecvTimeoutError::Disconnected)
    );
    assert!(monitor.is_stopped());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn unread_flaps_stay_bounded_and_a_late_reader_sees_the_final_state() {
    let ns = netns("flap");
    let tun = ns.create_tun("evt0");
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let events = monitor.events();

    let mut batch = flaps("evt0", 1000);
    // End up, then change the MTU as a marker that everything before it was seen.
    batch.push_str("link set evt0 up\nlink set evt0 mtu 1234\n");
    let mut ip = ns.spawn_ip_batch(&batch);
    let mut most_pending = 0;
    let succeeded = ip.finish_sampling(Duration::from_secs(60), || {
        most_pending = most_pending.max(events.pending());
    });
    assert!(succeeded);
    assert!(most_pending <= MAX_PENDING, "{most_pending} events pending");

    // The late reader: read until the marker; the link events it sees alternate from the initial down state
    // and end up.
    let mut read = Vec::new();
    loop {
        match events.recv_timeout(REPORT_WITHIN) {
            Ok(Event::MtuUpdate(1234)) => break,
            Ok(event) => read.push(event),
            Err(e) => panic!("marker not reported ({e}); read so far: {read:?}"),
        }
        assert!(read.len() <= 4000, "more events than changes");
    }
    assert_eq!(read.last(), Some(&Event::Running), "{read:?}");
    for (i, event) in read.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Event::Running
        } else {
            Event::NotRunning
        };
        assert_eq!(*event, expected, "event {i} of {read:?}");
    }
    assert!(monitor.take_error().is_none());

    assert_prompt(stop_timed(&monitor));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn stop_joins_promptly_and_disconnects_receivers_after_pending_events() {
    let ns = netns("stop");
    let tun = ns.create_tun("evt0");
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let events = monitor.events();
    ns.ip(&["link", "set", "evt0", "up"]);
    // Wait until the event is queued without taking it.
    assert!(
        wait_until(REPORT_WITHIN, || events.pending() > 0),
        "Up not queued"
    );
    let blocked = {
        let events = events.clone();
        std::thread::spawn(move || {
            // Takes the pending Up, then blocks until stop disconnects it.
            let first = events.recv();
            (first, events.recv())
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert_prompt(stop_timed(&monitor));
    assert_eq!(
        blocked.join().expect("reader"),
        (Some(Event::Running), None)
    );
    assert!(monitor.is_stopped());
    monitor.stop();
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn stop_during_a_flood_of_notifications_is_prompt() {
    let ns = netns("flood");
    let tun = ns.create_tun("evt0");
    let monitor = Monitor::spawn(tun.as_fd()).expect("spawn");
    let mut ip = ns.spawn_ip_batch(&flaps("evt0", 5000));
    // Let the flood start: the monitor has notifications to read on every wake-up.
    let events = monitor.events();
    assert!(events.recv_timeout(REPORT_WITHIN).is_ok());
    let took = stop_timed(&monitor);
    let still_flooding = ip.running();
    drop(ip);
    eprintln!("stop during a flood took {took:?} (flood still running: {still_flooding})");
    assert_prompt(took);
}
