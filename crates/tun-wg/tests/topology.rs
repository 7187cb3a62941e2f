//! Roaming (a peer that moves to another address and port is followed) and two peers behind one
//! endpoint (cryptokey routing picks the peer by destination).

mod support;

use support::*;

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn a_peer_that_moves_is_followed() {
    let under = Underlay::new();
    let (ka, kb, a, b) = peered_pair(&under, 47);
    assert_eq!(
        a.peer(&kb.public_hex())["endpoint"],
        format!("{UNDER_B}:51821")
    );

    // B moves: a new port (its socket is bound again) and the IPv6 underlay.
    under
        .b
        .exec(
            "wg",
            &[
                "set",
                &b.name,
                "listen-port",
                "51999",
                "peer",
                &ka.public,
                "endpoint",
                "[fd24::1]:51820",
            ],
        )
        .expect("wg set");
    assert_eq!(
        b.get().iter().find(|(k, _)| k == "listen_port").unwrap().1,
        "51999"
    );
    assert!(
        ping(&under.b, "10.47.0.1"),
        "B reaches A from its new address"
    );
    assert_eq!(
        a.peer(&kb.public_hex())["endpoint"],
        "[fd24::2]:51999",
        "A follows B to where its authenticated packets come from"
    );
    assert!(
        ping(&under.a, "10.47.0.2"),
        "A reaches B at its new address"
    );
}

#[test]
#[ignore = "privileged: creates three network namespaces, two veth pairs and TUN devices"]
fn two_peers_behind_one_endpoint() {
    let under = Underlay::new();
    let c_ns = NetNs::tagged("wgc");
    link(
        &under.a,
        &c_ns,
        "192.168.243.1",
        "192.168.243.3",
        "fd43::1",
        "fd43::3",
    );
    let (ka, kb, kc) = (Keys::generate(), Keys::generate(), Keys::generate());
    let a = Endpoint::start(
        &under.a,
        &config(
            &ka,
            51820,
            &["10.48.0.1/24", "fd48::1/64"],
            &[
                (
                    &kb,
                    Some(&format!("{UNDER_B}:51821")),
                    &["10.48.0.2/32", "fd48::2/128"],
                ),
                (&kc, None, &["10.48.0.3/32", "fd48::3/128", "10.48.3.0/24"]),
            ],
        ),
        true,
    );
    let b = Endpoint::start(
        &under.b,
        &config(
            &kb,
            51821,
            &["10.48.0.2/24", "fd48::2/64"],
            &[(
                &ka,
                Some(&format!("{UNDER_A}:51820")),
                &["10.48.0.0/24", "fd48::/64"],
            )],
        ),
        true,
    );
    let c = Endpoint::start(
        &c_ns,
        &config(
            &kc,
            51822,
            &["10.48.0.3/24", "fd48::3/64"],
            &[(
                &ka,
                Some("192.168.243.1:51820"),
                &["10.48.0.0/24", "fd48::/64"],
            )],
        ),
        false,
    );
    // C's endpoint is unknown to A until C speaks: A learns it from C's handshake.
    assert!(ping(&c_ns, "10.48.0.1"), "C reaches A");
    assert!(ping(&under.a, "10.48.0.2"), "A reaches B");
    assert!(ping(&under.a, "fd48::3"), "A reaches C over IPv6");
    assert!(ping(&under.b, "10.48.0.1"), "B reaches A");
    assert_eq!(a.peer(&kc.public_hex())["endpoint"], "192.168.243.3:51822");
    let show = under
        .a
        .exec("wg", &["show", &a.name, "latest-handshakes"])
        .unwrap();
    assert_eq!(
        show.lines()
            .filter(|l| !l.trim_end().ends_with("\t0"))
            .count(),
        2,
        "a handshake with each peer: {show}"
    );
    // The longest prefix decides: 10.48.3.0/24 is C's, so datagrams there go to C (and only to C), which
    // decrypts them and hands them to its kernel.
    let (b_before, c_before) = (b.counters(), c.counters());
    under.a.run_in(|| {
        let socket = std::net::UdpSocket::bind("10.48.0.1:0").unwrap();
        for _ in 0..3 {
            socket.send_to(b"to C", "10.48.3.7:9").unwrap();
        }
    });
    assert!(wait_until(PATIENCE, || {
        c.counters()["tun_packets_written"] >= c_before["tun_packets_written"] + 3
    }));
    assert_eq!(
        b.counters()["tun_packets_written"],
        b_before["tun_packets_written"]
    );
}
