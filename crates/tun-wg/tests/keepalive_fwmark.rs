//! Persistent keepalive (a peer that sends nothing still makes itself known, and keeps sending while idle)
//! and fwmark (the UDP socket's mark reaches the underlay's policy routing).

mod support;

use std::time::Duration;
use support::*;

/// `rx_bytes` that `endpoint` has from `peer` (0 before the first authenticated datagram).
fn rx_bytes(endpoint: &Endpoint, peer: &Keys) -> u64 {
    endpoint
        .peer(&peer.public_hex())
        .get("rx_bytes")
        .map_or(0, |v| v.parse().unwrap())
}

/// A with B's endpoint, B without A's: only A can start a handshake.
fn one_sided_pair(
    under: &Underlay,
    net: u8,
    keepalive: Option<u16>,
) -> (Keys, Keys, Endpoint, Endpoint) {
    let (ka, kb) = (Keys::generate(), Keys::generate());
    let mut a_conf = config(
        &ka,
        51820,
        &[&format!("10.{net}.0.1/24")],
        &[(
            &kb,
            Some(&format!("{UNDER_B}:51821")),
            &[&format!("10.{net}.0.2/32")],
        )],
    );
    if let Some(seconds) = keepalive {
        a_conf += &format!("PersistentKeepalive = {seconds}\n");
    }
    let b_conf = config(
        &kb,
        51821,
        &[&format!("10.{net}.0.2/24")],
        &[(&ka, None, &[&format!("10.{net}.0.1/32")])],
    );
    let a = Endpoint::start(&under.a, &a_conf, true);
    let b = Endpoint::start(&under.b, &b_conf, true);
    (ka, kb, a, b)
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn persistent_keepalive_reaches_a_peer_that_does_not_know_us() {
    let under = Underlay::new();
    let (ka, kb, a, b) = one_sided_pair(&under, 49, Some(1));
    assert_eq!(
        a.peer(&kb.public_hex())["persistent_keepalive_interval"],
        "1"
    );

    // No traffic at all: A's keepalive starts the handshake, so B learns where A is.
    let learned = wait_until(Duration::from_secs(10), || {
        b.peer(&ka.public_hex())
            .get("endpoint")
            .is_some_and(|e| e == &format!("{UNDER_A}:51820"))
    });
    assert!(learned, "B learned A's endpoint from its keepalive");
    assert_ne!(
        b.peer(&ka.public_hex())["last_handshake_time_sec"],
        "0",
        "the keepalive brought a handshake"
    );
    assert!(
        ping(&under.b, "10.49.0.1"),
        "B reaches A, which it had no address for"
    );

    // Idle again: a keepalive (32 bytes) every second keeps arriving at B.
    let before = rx_bytes(&b, &ka);
    std::thread::sleep(Duration::from_millis(3500));
    let grown = rx_bytes(&b, &ka) - before;
    assert!(
        grown >= 2 * 32,
        "at least two keepalives in 3.5 idle seconds, got {grown} bytes"
    );

    // Turned off over the configuration socket: the idle link goes quiet.
    under
        .a
        .exec(
            "wg",
            &[
                "set",
                &a.name,
                "peer",
                &kb.public,
                "persistent-keepalive",
                "off",
            ],
        )
        .expect("wg set persistent-keepalive off");
    assert_eq!(
        a.peer(&kb.public_hex())["persistent_keepalive_interval"],
        "0",
        "get reports a keepalive that is off as 0, as wireguard-go does"
    );
    assert!(ping(&under.a, "10.49.0.2"), "the tunnel still works");
    // Past the ping's own traffic, then a window shorter than the protocol's passive keepalive (10 s).
    std::thread::sleep(Duration::from_millis(500));
    let before = rx_bytes(&b, &ka);
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(rx_bytes(&b, &ka), before, "no keepalives once it is off");
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn without_keepalive_an_idle_peer_stays_unknown() {
    // The control of the test above: the same pair without PersistentKeepalive never shakes hands by itself.
    let under = Underlay::new();
    let (ka, _kb, _a, b) = one_sided_pair(&under, 50, None);
    std::thread::sleep(Duration::from_secs(3));
    let seen = b.peer(&ka.public_hex());
    assert!(
        !seen.contains_key("endpoint"),
        "B learned an endpoint with no traffic: {seen:?}"
    );
    assert!(
        !ping_within(&under.b, "10.50.0.1", 2, 2),
        "B cannot reach A before A ever sent"
    );
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn fwmark_reaches_the_underlay_routing() {
    let under = Underlay::new();
    let (_ka, _kb, a, _b) = peered_pair(&under, 51);
    // Policy routing in A's namespace: datagrams marked 0x51 go nowhere.
    under
        .a
        .ip(&["rule", "add", "fwmark", "0x51", "lookup", "51"]);
    under.a.ip(&[
        "route",
        "add",
        "blackhole",
        &format!("{UNDER_B}/32"),
        "table",
        "51",
    ]);

    under
        .a
        .exec("wg", &["set", &a.name, "fwmark", "0x51"])
        .expect("wg set fwmark");
    let fwmark = a
        .get()
        .into_iter()
        .find(|(k, _)| k == "fwmark")
        .map(|(_, v)| v);
    assert_eq!(fwmark.as_deref(), Some("81"), "get reports the mark");
    let shown = under
        .a
        .exec("wg", &["show", &a.name, "fwmark"])
        .expect("wg show fwmark");
    assert_eq!(shown.trim(), "0x51");
    assert!(
        !ping_within(&under.a, "10.51.0.2", 2, 2),
        "marked datagrams follow the rule into the blackhole"
    );
    let counters = a.counters();
    assert!(
        counters.get("udp_send_errors").copied().unwrap_or(0) > 0,
        "the refused sends are counted: {counters:?}"
    );

    under
        .a
        .exec("wg", &["set", &a.name, "fwmark", "0"])
        .expect("wg set fwmark 0");
    assert!(
        !a.get().iter().any(|(k, _)| k == "fwmark"),
        "get leaves out a mark of 0"
    );
    assert!(
        ping(&under.a, "10.51.0.2"),
        "unmarked, the tunnel works again"
    );
}
