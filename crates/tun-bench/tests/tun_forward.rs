//! `tun-forward` as the benchmark runs it: it creates tunA and tunB in two existing namespaces, brings them up
//! with the addresses and routes given on its command line, carries traffic between them, and on SIGTERM
//! prints its counters per direction (the lines `cargo xtask bench` parses) and exits 0, removing both
//! devices. Checked in each of its modes: offloads, no offloads, async (tokio), several queues and the raw
//! passthrough.
//!
//! Cargo builds the package's binaries for its integration tests (`CARGO_BIN_EXE_tun-forward`), so the test
//! runs the binary of this very build, inside namespaces it creates and removes.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use tun_test_support::process::Running;
use tun_test_support::topology::{A4, B4, DEV_A, DEV_B};
use tun_test_support::{NetNs, stream, wait_until};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A namespace for one side of the forwarder, its loopback up.
fn side(role: &str) -> NetNs {
    NetNs::tagged(&format!("tfw-{role}"))
}

/// One counter of one direction from the forwarder's summary, e.g. `a->b: packets 10 bytes 15000 ...`.
fn counter(summary: &str, direction: &str, name: &str) -> u64 {
    let line = summary
        .lines()
        .find_map(|l| l.strip_prefix(direction).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {direction} line in {summary:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == name)
        .unwrap_or_else(|| panic!("no {name} in {line:?}"));
    words
        .get(at + 1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {name} in {line:?}"))
}

/// Asserts that the forwarder forwards the way `mode` asks: a runtime's workers with `--async`, a thread per
/// queue and direction with `--queues 2`, else one thread per direction.
fn assert_forwarding_threads(pid: u32, mode: &[&str]) {
    let names = tun_test_support::proc::thread_names(pid);
    let has = |name: &str| names.iter().any(|n| n == name);
    let per_direction = has("fwd a->b") && has("fwd b->a");
    let second_queue = has("fwd a->b q1") && has("fwd b->a q1");
    if mode.contains(&"--async") {
        assert!(has("fwd tokio") && !per_direction, "{mode:?}: {names:?}");
    } else if mode.contains(&"--queues") {
        assert!(per_direction && second_queue, "{mode:?}: {names:?}");
    } else {
        assert!(
            per_direction && !second_queue && !has("fwd tokio"),
            "{mode:?}: {names:?}"
        );
    }
}

/// Starts `tun-forward` with device A and B named in their namespaces, then `options` and `mode`, its output
/// collected.
fn start(sides: [(&NetNs, &str); 2], options: &[&str], mode: &[&str]) -> Running {
    let [(a, name_a), (b, name_b)] = sides;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tun-forward"));
    cmd.args([
        "--netns-a",
        a.name(),
        "--name-a",
        name_a,
        "--netns-b",
        b.name(),
        "--name-b",
        name_b,
    ])
    .args(options)
    .args(mode)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    Running(cmd.spawn().expect("start tun-forward"))
}

fn forward_carries_traffic_and_reports_on_sigterm(mode: &[&str]) {
    let a = side("a");
    let b = side("b");
    // The forwarder brings each device up with its address and a route to the other side.
    let running = start(
        [(&a, DEV_A), (&b, DEV_B)],
        &[
            "--address-a",
            &format!("{A4}/32"),
            "--route-a",
            &format!("{B4}/32"),
            "--address-b",
            &format!("{B4}/32"),
            "--route-b",
            &format!("{A4}/32"),
        ],
        mode,
    );
    // The route is the last thing the library configures.
    assert!(
        wait_until(TIMEOUT, || a.has_route(DEV_A, &format!("{B4}/32"))
            && b.has_route(DEV_B, &format!("{A4}/32"))),
        "the devices did not appear configured"
    );

    // 4 MiB over TCP from A to B, through the forwarder.
    const LEN: usize = 4 << 20;
    let (sent, received) = transfer(&a, &b, SocketAddr::from((B4, 46_001)), LEN, 3);
    assert_eq!(received, sent, "what arrived is not what was sent");

    assert_forwarding_threads(running.0.id(), mode);

    let (status, summary, _) = running.terminate(TIMEOUT);
    assert!(status.success(), "exit {status}: {summary}");
    assert!(counter(&summary, "a->b", "bytes") > LEN as u64, "{summary}");
    assert!(counter(&summary, "a->b", "packets") > 0, "{summary}");
    assert!(counter(&summary, "b->a", "packets") > 0, "{summary}");
    assert_eq!(counter(&summary, "a->b", "errors"), 0, "{summary}");
    // super-packets is reported in every mode; only reads with offloads can have them, and only reads
    // into more than one buffer. With offloads the kernel hands the TCP stream over in TSO super-packets.
    let super_packets = counter(&summary, "a->b", "super-packets");
    if mode.contains(&"--no-offload") || mode.contains(&"--batch") {
        assert_eq!(super_packets, 0, "{summary}");
    } else {
        assert!(super_packets > 0, "{mode:?}: {summary}");
    }
    assert!(
        wait_until(TIMEOUT, || !a.has_link(DEV_A) && !b.has_link(DEV_B)),
        "devices left behind"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_with_offloads_carries_traffic_and_reports_on_sigterm() {
    forward_carries_traffic_and_reports_on_sigterm(&[]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_with_one_buffer_per_read_carries_traffic() {
    forward_carries_traffic_and_reports_on_sigterm(&["--batch", "1"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_without_offloads_carries_traffic_and_reports_on_sigterm() {
    forward_carries_traffic_and_reports_on_sigterm(&["--no-offload"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_passthrough_carries_traffic_and_reports_on_sigterm() {
    forward_carries_traffic_and_reports_on_sigterm(&["--passthrough"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_async_carries_traffic_and_reports_on_sigterm() {
    forward_carries_traffic_and_reports_on_sigterm(&["--async"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_async_without_offloads_carries_traffic() {
    forward_carries_traffic_and_reports_on_sigterm(&["--async", "--no-offload"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_with_two_queues_per_device_carries_traffic_and_reports_on_sigterm() {
    forward_carries_traffic_and_reports_on_sigterm(&["--queues", "2"]);
}

#[test]
fn help_lists_every_option_of_the_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_tun-forward"))
        .arg("--help")
        .output()
        .expect("run tun-forward --help");
    assert!(out.status.success(), "{}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.starts_with("tun-forward --netns-a NS1"), "{help}");
    for option in [
        "--netns-a",
        "--name-a",
        "--netns-b",
        "--name-b",
        "--no-offload",
        "--batch N",
        "--passthrough",
        "--async",
        "--queues N",
        "--layer l3|l2",
        "--address-a",
        "--address-b",
        "--route-a",
        "--route-b",
    ] {
        assert!(help.contains(option), "{option} missing from {help}");
    }
}

/// Sends `len` bytes of the stream of `seed` over TCP from namespace `from` to `to` (listening on `addr`
/// there) and returns what was sent and what arrived.
fn transfer(
    from: &NetNs,
    to: &NetNs,
    addr: SocketAddr,
    len: usize,
    seed: u64,
) -> (stream::Summary, stream::Summary) {
    let data = stream::pseudo_random(len, seed);
    let sent = stream::Summary {
        bytes: len as u64,
        sha256: stream::sha256_hex(&data),
    };
    let received = stream::tcp_send(from, to, addr, &data, L2_TIMEOUT)
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    (sent, received)
}

const L2_TIMEOUT: Duration = Duration::from_secs(60);
const A6: &str = "fd77::1";
const B6: &str = "fd77::2";

/// `tun-forward --layer l2` between two TAP devices of one subnet: ARP and NDP resolve through it (each
/// namespace learns the other device's MAC address), and 64 MiB of TCP cross each way at once, checked by
/// SHA-256. With offloads the reads bring super-frames, and the device written to receives fewer frames
/// than were forwarded (coalesced).
fn l2_forward_carries_tcp_both_ways(mode: &[&str]) {
    let a = side("a");
    let b = side("b");
    let running = start(
        [(&a, "tapA"), (&b, "tapB")],
        &[
            "--layer",
            "l2",
            "--address-a",
            &format!("{A4}/24"),
            "--address-a",
            &format!("{A6}/64"),
            "--address-b",
            &format!("{B4}/24"),
            "--address-b",
            &format!("{B6}/64"),
        ],
        mode,
    );
    let configured = |ns: &NetNs, dev: &str, v6: &str| {
        ns.has_route(dev, "10.77.0.0/24")
            && ns
                .try_ip(&["-6", "addr", "show", "dev", dev])
                .is_ok_and(|out| out.contains(v6))
    };
    assert!(
        wait_until(TIMEOUT, || configured(&a, "tapA", A6)
            && configured(&b, "tapB", B6)),
        "the devices did not appear configured"
    );

    const LEN: usize = 64 << 20;
    let (a_to_b, b_to_a) = std::thread::scope(|s| {
        let a_to_b = s.spawn(|| transfer(&a, &b, SocketAddr::from((B4, 46_101)), LEN, 1));
        let b_to_a = s.spawn(|| transfer(&b, &a, SocketAddr::from((A4, 46_102)), LEN, 2));
        (a_to_b.join().unwrap(), b_to_a.join().unwrap())
    });
    for (sent, received) in [a_to_b, b_to_a] {
        assert_eq!(sent.bytes, LEN as u64);
        assert_eq!(received, sent, "what arrived is not what was sent");
    }
    // IPv6: NDP resolves through the forwarder as ARP did.
    a.exec("ping", &["-6", "-c", "1", "-w", "10", B6])
        .expect("ping -6 through the forwarder");
    let b_mac = b.link("tapB").expect("tapB").address;
    let neighbours = a.ip(&["neigh", "show", "dev", "tapA"]);
    for peer in [B4.to_string(), B6.to_string()] {
        assert!(
            neighbours
                .lines()
                .any(|l| l.starts_with(&format!("{peer} ")) && l.contains(&b_mac)),
            "{peer} not resolved to {b_mac}: {neighbours}"
        );
    }
    let frames_into_b = b.rx_packets("tapB");

    let (status, summary, _) = running.terminate(TIMEOUT);
    assert!(status.success(), "exit {status}: {summary}");
    for direction in ["a->b", "b->a"] {
        assert!(
            counter(&summary, direction, "bytes") > LEN as u64,
            "{summary}"
        );
        assert_eq!(counter(&summary, direction, "errors"), 0, "{summary}");
    }
    let forwarded_into_b = counter(&summary, "a->b", "packets");
    if mode.contains(&"--no-offload") {
        assert_eq!(counter(&summary, "a->b", "super-packets"), 0, "{summary}");
    } else {
        for direction in ["a->b", "b->a"] {
            assert!(
                counter(&summary, direction, "super-packets") > 0,
                "{direction} split no super-frame: {summary}"
            );
        }
        // Each write is one received frame: fewer of them than frames forwarded means coalesced frames.
        assert!(
            frames_into_b * 2 < forwarded_into_b,
            "{frames_into_b} frames written for {forwarded_into_b} forwarded: {summary}"
        );
    }
    assert!(
        wait_until(TIMEOUT, || !a.has_link("tapA") && !b.has_link("tapB")),
        "devices left behind"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_layer_l2_with_offloads_splits_and_coalesces_frames_both_ways() {
    l2_forward_carries_tcp_both_ways(&[]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_forward_layer_l2_without_offloads_carries_frames_both_ways() {
    l2_forward_carries_tcp_both_ways(&["--no-offload"]);
}
