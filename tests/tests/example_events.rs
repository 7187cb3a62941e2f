//! The `events` example as a user runs it: one line per link change, exit 0 on SIGTERM. Built by cargo
//! from this source tree, it runs inside a network namespace the test creates and removes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use tun_system_tests::examples::{Running, example};
use tun_system_tests::{NetNs, wait_until};
use tun_test_support::signal::{self, Signal};

const WITHIN: Duration = Duration::from_secs(2);

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn example_prints_each_event_and_exits_zero_on_sigterm() {
    let example = example("events");
    let ns = NetNs::tagged("tex");
    // `ip netns exec` enters the namespace and then execs the program, so the child's pid is the example's.
    let child = ns
        .command(&example.to_string_lossy())
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

    assert!(
        wait_until(Duration::from_secs(10), || ns.has_link("tex0")),
        "the example did not create tex0"
    );
    for (args, line) in [
        (&["link", "set", "tex0", "up"][..], "running"),
        (&["link", "set", "tex0", "mtu", "1400"][..], "mtu 1400"),
        (&["link", "set", "tex0", "down"][..], "not running"),
    ] {
        ns.ip(args);
        assert_eq!(lines.recv_timeout(WITHIN).as_deref(), Ok(line));
    }

    let pid = running.0.id();
    signal::send(pid, Signal::Terminate).expect("send SIGTERM");
    let status = running.wait_exit(WITHIN).expect("the example did not exit");
    assert!(status.success(), "{status}");
    reader.join().expect("reader");
    assert!(lines.try_recv().is_err(), "no line after the last event");
    assert!(!ns.has_link("tex0"), "closing removed the device");
}
