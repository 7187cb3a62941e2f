//! tun-wg against tun-wg across a veth underlay: handshake, pings over both inner families, 32 MiB of TCP
//! each way with SHA-256 checked at both ends, `wg show`, and a clean stop.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::*;

fn pair_carries_traffic(offload: bool) {
    let under = Underlay::new();
    let (ka, kb) = (Keys::generate(), Keys::generate());
    let a_conf = config(
        &ka,
        51820,
        &["10.44.0.1/24", "fd44::1/64"],
        &[(
            &kb,
            Some("[fd24::2]:51821"),
            &["10.44.0.2/32", "fd44::2/128"],
        )],
    );
    let b_conf = config(
        &kb,
        51821,
        &["10.44.0.2/24", "fd44::2/64"],
        &[(
            &ka,
            Some("[fd24::1]:51820"),
            &["10.44.0.1/32", "fd44::1/128", "0.0.0.0/0"],
        )],
    );
    let mut a = Endpoint::start(&under.a, &a_conf, offload);
    let mut b = Endpoint::start(&under.b, &b_conf, offload);
    assert!(
        wait_until(PATIENCE, || b
            .output()
            .contains("no route added for 0.0.0.0/0")),
        "the skipped default route is said: {}",
        b.output()
    );

    assert!(ping(&under.a, "10.44.0.2"), "ping over IPv4 from A");
    assert!(ping(&under.b, "fd44::1"), "ping over IPv6 from B");
    assert!(ping(&under.a, "fd44::2"), "ping over IPv6 from A");

    tcp_transfer(
        &under.a,
        &under.b,
        "10.44.0.2".parse().unwrap(),
        5001,
        32 << 20,
        1,
    );
    tcp_transfer(
        &under.b,
        &under.a,
        "fd44::1".parse().unwrap(),
        5002,
        32 << 20,
        2,
    );

    // The configuration protocol reports the handshake as a Unix time, and what crossed.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let peer = a.peer(&kb.public_hex());
    let handshake: u64 = peer["last_handshake_time_sec"].parse().unwrap();
    assert!(
        handshake + 120 >= now && handshake <= now + 1,
        "last handshake {handshake}, now {now}"
    );
    assert!(peer["rx_bytes"].parse::<u64>().unwrap() > 32 << 20);
    assert!(peer["tx_bytes"].parse::<u64>().unwrap() > 32 << 20);
    // The underlay is IPv6 here: each endpoint is where the other was heard from.
    assert_eq!(peer["endpoint"], "[fd24::2]:51821");
    assert_eq!(b.peer(&ka.public_hex())["endpoint"], "[fd24::1]:51820");

    // `wg show` reads it as it reads wireguard-go.
    let show = under.a.exec("wg", &["show", &a.name]).expect("wg show");
    assert!(show.contains(&format!("peer: {}", kb.public)), "{show}");
    assert!(show.contains("latest handshake:"), "{show}");
    assert!(
        show.contains("transfer:") && show.contains("MiB received"),
        "{show}"
    );
    let dump = under
        .a
        .exec("wg", &["show", &a.name, "latest-handshakes"])
        .unwrap();
    let shown: u64 = dump.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(shown, handshake, "wg show latest-handshakes");

    let counters = a.counters();
    assert_eq!(counters["dropped_bad_auth"], 0);
    assert_eq!(counters["dropped_replay"], 0);
    // With offloads a read is a super-packet; without them the packets a bulk transfer queues are gathered
    // by non-blocking reads. Either way their datagrams leave in GSO sends.
    assert!(counters["udp_gso_sends"] > 0, "GSO was used: {counters:?}");

    // SIGTERM: exit 0, the socket and the device gone.
    let socket = a.socket_path();
    let name = a.name.clone();
    assert!(a.stop().success(), "exit status:\n{}", a.output());
    assert!(!std::path::Path::new(&socket).exists(), "{socket} removed");
    assert!(!under.a.has_link(&name), "{name} removed");
    assert!(b.stop().success());
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn tun_wg_pair_with_offloads() {
    pair_carries_traffic(true);
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn tun_wg_pair_without_offloads() {
    pair_carries_traffic(false);
}
