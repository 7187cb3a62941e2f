//! The `forward` example as a user runs it: built by cargo from this source tree and started in namespace A
//! (`ip netns exec`) with its device B in namespace B, it brings both devices up with the addresses of its
//! command line, carries TCP over IPv4 and IPv6 between the namespaces, and on SIGTERM prints what each
//! direction forwarded, exits 0 and leaves no device behind. With offloads and without.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use tun_system_tests::examples::{Running, example};
use tun_system_tests::traffic::{pseudo_random, sha256_hex};
use tun_system_tests::{NetNs, wait_until};
use tun_test_support::stream::tcp_send;

const TIMEOUT: Duration = Duration::from_secs(20);

/// The addresses (with their prefixes) of device A and device B: each prefix routes to its device.
const A: [&str; 2] = ["10.77.0.1/24", "fd77::1/64"];
const B: [&str; 2] = ["10.77.0.2/24", "fd77::2/64"];
/// The routes each prefix adds to its device, which the test waits for.
const PREFIXES: [&str; 2] = ["10.77.0.0/24", "fd77::/64"];

/// 4 MiB from A to B over TCP to `to`, checked by length and SHA-256 at B.
fn tcp_a_to_b(a: &NetNs, b: &NetNs, to: IpAddr, port: u16) {
    let data = pseudo_random(4 << 20, u64::from(port));
    let addr = SocketAddr::new(to, port);
    let got = tcp_send(a, b, addr, &data, TIMEOUT).unwrap_or_else(|e| panic!("{addr}: {e}"));
    assert_eq!(got.bytes, data.len() as u64, "{to}: bytes received");
    assert_eq!(got.sha256, sha256_hex(&data), "{to}: not what was sent");
}

/// `packets` and `errors` of `direction` in the example's summary (`a->b: N packets, N errors`).
fn counts(summary: &str, direction: &str) -> (u64, u64) {
    let line = summary
        .lines()
        .find_map(|l| l.strip_prefix(direction)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {direction} line in {summary:?}"));
    let number = |word: Option<&str>| word.and_then(|w| w.parse().ok());
    let mut words = line.split([' ', ',']).filter(|w| !w.is_empty());
    let packets = number(words.next()).filter(|_| words.next() == Some("packets"));
    let errors = number(words.next()).filter(|_| words.next() == Some("errors"));
    packets
        .zip(errors)
        .unwrap_or_else(|| panic!("bad {direction} line {line:?}"))
}

/// Starts the example in namespace A with `mode`, device B in namespace B, and waits until both devices are
/// up with their addresses.
fn start(a: &NetNs, b: &NetNs, mode: &[&str]) -> Running {
    let mut cmd = a.command(&example("forward").to_string_lossy());
    cmd.args(["--name-a", "tunA", "--address-a", A[0], "--address-a", A[1]])
        .args(["--netns-b", b.name(), "--name-b", "tunB"])
        .args(["--address-b", B[0], "--address-b", B[1]])
        .args(mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // `ip netns exec` enters the namespace and then execs the program, so the child's pid is the example's.
    let mut running = Running(cmd.spawn().expect("start the forward example"));
    let configured = wait_until(TIMEOUT, || {
        let exited = running.0.try_wait().expect("wait").is_some();
        exited
            || PREFIXES
                .iter()
                .all(|p| a.has_route("tunA", p) && b.has_route("tunB", p))
    });
    assert!(
        configured && running.0.try_wait().expect("wait").is_none(),
        "the example did not bring its devices up with their addresses"
    );
    running
}

/// Stops the example with SIGTERM and returns what it printed on stdout and (unless the test took it) on
/// stderr, once it has exited with status 0.
fn stop(running: Running) -> (String, String) {
    let (status, summary, stderr) = running.terminate(TIMEOUT);
    assert!(status.success(), "exit {status}: {summary}{stderr}");
    (summary, stderr)
}

fn forward_carries_tcp_both_ways_and_stops_on_sigterm(mode: &[&str]) {
    let a = NetNs::tagged("tfw-a");
    let b = NetNs::tagged("tfw-b");
    let running = start(&a, &b, mode);

    for (to, port) in [(B[0], 46_001), (B[1], 46_002)] {
        let to: IpAddr = to
            .split_once('/')
            .and_then(|(ip, _)| ip.parse().ok())
            .expect("address");
        tcp_a_to_b(&a, &b, to, port);
    }

    let (summary, stderr) = stop(running);
    let (a_to_b, a_to_b_errors) = counts(&summary, "a->b");
    let (b_to_a, b_to_a_errors) = counts(&summary, "b->a");
    // 8 MiB in MTU-sized packets one way, their acknowledgements the other.
    assert!(a_to_b > 8 * 1024 * 1024 / 1500, "{summary}");
    assert!(b_to_a > 0, "{summary}");
    assert_eq!((a_to_b_errors, b_to_a_errors), (0, 0), "{summary}{stderr}");
    assert!(
        wait_until(TIMEOUT, || !a.has_link("tunA") && !b.has_link("tunB")),
        "devices left behind"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn forward_with_offloads_carries_tcp_both_ways_and_stops_on_sigterm() {
    forward_carries_tcp_both_ways_and_stops_on_sigterm(&[]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn forward_without_offloads_carries_tcp_both_ways_and_stops_on_sigterm() {
    forward_carries_tcp_both_ways_and_stops_on_sigterm(&["--no-offload"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_deleted_device_ends_its_direction_at_its_first_error() {
    let a = NetNs::tagged("tfw-a");
    let b = NetNs::tagged("tfw-b");
    let mut running = start(&a, &b, &[]);
    let stderr = running.0.stderr.take().expect("stderr");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    b.ip(&["link", "del", "tunB"]);
    // B -> A reads from the deleted device: its first error is fatal and ends the direction (a passing one
    // would be tried again, 1000 times).
    let reported = wait_until(TIMEOUT, || {
        lines
            .try_iter()
            .any(|line| line.starts_with("forward: b->a: "))
    });
    let (summary, _) = stop(running);
    reader.join().expect("stderr reader");
    assert!(reported, "no error reported for b->a: {summary}");
    assert_eq!(counts(&summary, "b->a").1, 1, "{summary}");
}
