//! tun-wg against wireguard-go (Debian's package): the handshake started from either side, pings over
//! both inner families, and TCP with SHA-256 checked.

mod support;

use support::*;

struct Interop {
    under: Underlay,
    ours: Endpoint,
    theirs: Endpoint,
    ours_keys: Keys,
    theirs_keys: Keys,
}

/// tun-wg in A (10.46.0.1), wireguard-go in B (10.46.0.2); each knows the other's endpoint.
fn interop() -> Interop {
    let under = Underlay::new();
    let (ka, kb) = (Keys::generate(), Keys::generate());
    let ours = Endpoint::start(
        &under.a,
        &config(
            &ka,
            51820,
            &["10.46.0.1/24", "fd46::1/64"],
            &[(
                &kb,
                Some(&format!("{UNDER_B}:51821")),
                &["10.46.0.2/32", "fd46::2/128"],
            )],
        ),
        true,
    );
    let theirs = wireguard_go(
        &under.b,
        &kb,
        51821,
        &["10.46.0.2/24", "fd46::2/64"],
        &ka,
        Some(&format!("{UNDER_A}:51820")),
        &["10.46.0.1/32", "fd46::1/128"],
    );
    Interop {
        under,
        ours,
        theirs,
        ours_keys: ka,
        theirs_keys: kb,
    }
}

fn handshake_seen(t: &Interop) {
    let ours = t.ours.peer(&t.theirs_keys.public_hex());
    assert_ne!(
        ours["last_handshake_time_sec"], "0",
        "tun-wg saw a handshake"
    );
    let theirs = t
        .under
        .b
        .exec("wg", &["show", &t.theirs.name, "latest-handshakes"])
        .unwrap();
    assert!(
        theirs.contains(&t.ours_keys.public) && !theirs.trim_end().ends_with("\t0"),
        "wireguard-go saw a handshake: {theirs}"
    );
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair, TUN devices and runs wireguard-go"]
fn tun_wg_initiates_to_wireguard_go() {
    let t = interop();
    assert!(ping(&t.under.a, "10.46.0.2"), "ping from tun-wg over IPv4");
    handshake_seen(&t);
    assert!(ping(&t.under.a, "fd46::2"), "ping from tun-wg over IPv6");
    tcp_transfer(
        &t.under.a,
        &t.under.b,
        "10.46.0.2".parse().unwrap(),
        5101,
        16 << 20,
        3,
    );
    tcp_transfer(
        &t.under.b,
        &t.under.a,
        "fd46::1".parse().unwrap(),
        5102,
        16 << 20,
        4,
    );
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair, TUN devices and runs wireguard-go"]
fn wireguard_go_initiates_to_tun_wg() {
    let t = interop();
    assert!(
        ping(&t.under.b, "10.46.0.1"),
        "ping from wireguard-go over IPv4"
    );
    handshake_seen(&t);
    assert!(
        ping(&t.under.b, "fd46::1"),
        "ping from wireguard-go over IPv6"
    );
    assert!(ping(&t.under.a, "10.46.0.2"), "and back from tun-wg");
}
