//! Addresses, routes and link state configured through the library, checked against what the kernel reports
//! (`ip -j addr`, `ip -j route`, `ip -j link`) and against the traffic the routes send into the device.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use tun::{Builder, DeviceAddress, DeviceRoute, Error, GsoLimits, Tun};
use tun_system_tests::{NetNs, NetNsTun, read_until, wait_until};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    Ipv4Addr::new(a, b, c, d).into()
}

fn v6(text: &str) -> IpAddr {
    text.parse::<Ipv6Addr>().unwrap().into()
}

/// The library's view of the device's addresses and `ip`'s, as sets: they must agree.
fn both_address_views(
    ns: &NetNs,
    tun: &Tun,
    dev: &str,
) -> (BTreeSet<DeviceAddress>, BTreeSet<DeviceAddress>) {
    let ours = tun.addresses().unwrap().into_iter().collect();
    let theirs = ns
        .addresses(dev)
        .into_iter()
        .map(|a| DeviceAddress {
            addr: a.addr,
            prefix_len: a.prefix_len,
            peer: a.peer,
        })
        .collect();
    (ours, theirs)
}

/// `ip`'s routes through `dev` as (destination, prefix length).
fn ip_routes(ns: &NetNs, dev: &str) -> BTreeSet<(IpAddr, u8)> {
    ns.routes(dev)
        .into_iter()
        .map(|r| (r.dest, r.prefix_len))
        .collect()
}

fn is_link_local(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

fn has_address(ns: &NetNs, dev: &str, addr: IpAddr, prefix_len: u8) -> bool {
    ns.addresses(dev)
        .iter()
        .any(|a| a.addr == addr && a.prefix_len == prefix_len)
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn builder_addresses_of_both_versions_and_up_are_applied() {
    let ns = NetNs::new();
    let tun = ns
        .tun(
            Builder::new()
                .name("tc-build0")
                .address(v4(10, 60, 0, 1), 24)
                .address(v6("fd60::1"), 64)
                .up(true),
        )
        .unwrap();
    assert!(ns.link("tc-build0").unwrap().is_up());
    assert!(tun.is_up().unwrap());
    let addresses = ns.addresses("tc-build0");
    assert!(
        has_address(&ns, "tc-build0", v4(10, 60, 0, 1), 24),
        "{addresses:?}"
    );
    let ipv6 = addresses
        .iter()
        .find(|a| a.addr == v6("fd60::1"))
        .unwrap_or_else(|| panic!("no fd60::1 in {addresses:?}"));
    assert_eq!(ipv6.prefix_len, 64);
    assert!(
        !ipv6.tentative,
        "duplicate address detection pending: {ipv6:?}"
    );
    // Usable at once: a socket binds to it with no wait.
    ns.run_in(|| UdpSocket::bind("[fd60::1]:0"))
        .expect("bind to the new IPv6 address right after build");
    let (ours, theirs) = both_address_views(&ns, &tun, "tc-build0");
    assert_eq!(ours, theirs);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_left_down_by_the_builder_is_down() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-down0").up(false)).unwrap();
    assert!(!tun.is_up().unwrap());
    assert!(!ns.link("tc-down0").unwrap().is_up());
    tun.set_up(true).unwrap();
    assert!(tun.is_up().unwrap());
    assert!(ns.link("tc-down0").unwrap().is_up());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn addresses_added_and_removed_at_run_time_match_ip() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-addr0").up(true)).unwrap();
    tun.add_address(v4(10, 61, 0, 1), 16).unwrap();
    tun.add_address(v4(10, 62, 0, 1), 32).unwrap();
    tun.add_address(v6("fd61::1"), 64).unwrap();
    for (addr, len) in [
        (v4(10, 61, 0, 1), 16),
        (v4(10, 62, 0, 1), 32),
        (v6("fd61::1"), 64),
    ] {
        assert!(has_address(&ns, "tc-addr0", addr, len), "{addr}/{len}");
        assert!(
            tun.addresses()
                .unwrap()
                .iter()
                .any(|a| (a.addr, a.prefix_len) == (addr, len)),
            "{addr}/{len}"
        );
    }
    let (ours, theirs) = both_address_views(&ns, &tun, "tc-addr0");
    assert_eq!(ours, theirs);

    tun.remove_address(v4(10, 61, 0, 1), 16).unwrap();
    tun.remove_address(v6("fd61::1"), 64).unwrap();
    assert!(!has_address(&ns, "tc-addr0", v4(10, 61, 0, 1), 16));
    assert!(!has_address(&ns, "tc-addr0", v6("fd61::1"), 64));
    assert!(has_address(&ns, "tc-addr0", v4(10, 62, 0, 1), 32));
    let (ours, theirs) = both_address_views(&ns, &tun, "tc-addr0");
    assert_eq!(ours, theirs);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn point_to_point_peer_is_what_ip_shows_as_address() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-peer0").up(true)).unwrap();
    tun.add_peer_address(v4(10, 63, 0, 1), v4(10, 63, 0, 2), 32)
        .unwrap();
    let addresses = ns.addresses("tc-peer0");
    let found = addresses
        .iter()
        .find(|a| a.addr == v4(10, 63, 0, 1))
        .unwrap_or_else(|| panic!("{addresses:?}"));
    assert_eq!(found.peer, Some(v4(10, 63, 0, 2)));
    assert!(tun.addresses().unwrap().contains(&DeviceAddress {
        addr: v4(10, 63, 0, 1),
        prefix_len: 32,
        peer: Some(v4(10, 63, 0, 2)),
    }));
    // The kernel routes the peer through the device.
    assert!(ip_routes(&ns, "tc-peer0").contains(&(v4(10, 63, 0, 2), 32)));
    tun.remove_address(v4(10, 63, 0, 1), 32).unwrap();
    assert!(
        ns.addresses("tc-peer0")
            .iter()
            .all(|a| a.addr != v4(10, 63, 0, 1))
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn duplicate_address_is_eexist_and_absent_one_cannot_be_removed() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-dup0")).unwrap();
    tun.add_address(v4(10, 64, 0, 1), 24).unwrap();
    tun.add_address(v6("fd64::1"), 64).unwrap();
    let again = tun.add_address(v4(10, 64, 0, 1), 24).unwrap_err();
    assert_eq!(again.raw_os_error(), Some(libc::EEXIST), "{again}");
    assert!(
        matches!(
            again,
            Error::Io {
                op: "RTM_NEWADDR",
                ..
            }
        ),
        "{again:?}"
    );
    let again6 = tun.add_address(v6("fd64::1"), 64).unwrap_err();
    assert_eq!(again6.raw_os_error(), Some(libc::EEXIST), "{again6}");

    let absent = tun.remove_address(v4(10, 64, 0, 9), 24).unwrap_err();
    assert_eq!(absent.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{absent}");
    let wrong_prefix = tun.remove_address(v4(10, 64, 0, 1), 16).unwrap_err();
    assert_eq!(
        wrong_prefix.raw_os_error(),
        Some(libc::EADDRNOTAVAIL),
        "{wrong_prefix}"
    );
    let absent6 = tun.remove_address(v6("fd64::9"), 64).unwrap_err();
    assert_eq!(
        absent6.raw_os_error(),
        Some(libc::EADDRNOTAVAIL),
        "{absent6}"
    );
    // The failed calls changed nothing.
    assert!(has_address(&ns, "tc-dup0", v4(10, 64, 0, 1), 24));
    assert_eq!(ns.addresses("tc-dup0").len(), 2);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn impossible_input_is_refused_and_a_refused_build_leaves_no_device() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-bad0").up(true)).unwrap();
    let refused = [
        tun.add_address(v4(10, 65, 0, 1), 33),
        tun.add_address(v6("fd65::1"), 129),
        tun.add_address(v4(224, 0, 0, 1), 24),
        tun.add_address(v6("::"), 64),
        tun.add_route(v4(10, 65, 1, 1), 24),
        tun.add_route(v6("fd65::1"), 64),
        tun.add_route(v4(10, 65, 0, 0), 40),
        tun.add_route(v4(239, 0, 0, 0), 8),
    ];
    for result in refused {
        assert!(
            matches!(result, Err(Error::InvalidAddress { .. })),
            "{result:?}"
        );
    }
    // Nothing refused reached the device: it has at most what the kernel gives it, IPv6 link-local.
    let addresses = ns.addresses("tc-bad0");
    assert!(
        addresses.iter().all(|a| is_link_local(a.addr)),
        "{addresses:?}"
    );
    let routes = ip_routes(&ns, "tc-bad0");
    assert!(
        routes.iter().all(|(dest, _)| is_link_local(*dest)),
        "{routes:?}"
    );

    let bad_build = ns.tun(
        Builder::new()
            .name("tc-bad1")
            .address(v4(10, 65, 0, 1), 24)
            .address(v4(10, 65, 0, 2), 33),
    );
    assert!(
        matches!(bad_build, Err(Error::InvalidAddress { prefix_len: 33, .. })),
        "{bad_build:?}"
    );
    assert!(ns.link("tc-bad1").is_none());

    // Refused by the kernel after the device was made (the second address is a duplicate): the build fails
    // and the device it created is gone again.
    let kernel_refused = ns.tun(
        Builder::new()
            .name("tc-bad2")
            .persist(true)
            .address(v4(10, 66, 0, 1), 24)
            .address(v4(10, 66, 0, 1), 24),
    );
    let error = kernel_refused.unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EEXIST), "{error}");
    assert!(
        wait_until(Duration::from_secs(5), || ns.link("tc-bad2").is_none()),
        "the failed build left tc-bad2 behind"
    );
}

/// A UDP datagram sent inside `ns` to `dest` comes out of `tun`.
fn datagram_comes_out(ns: &NetNs, tun: &Tun, dest: IpAddr) -> bool {
    let target = SocketAddr::new(dest, 4711);
    let sent = ns.run_in(|| {
        let any: SocketAddr = if dest.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .unwrap();
        let sock = UdpSocket::bind(any).unwrap();
        sock.send_to(b"through the route", target)
    });
    sent.unwrap_or_else(|e| panic!("send to {target}: {e}"));
    read_until(tun, Duration::from_secs(5), |packet| {
        let Ok(sliced) = etherparse::SlicedPacket::from_ip(packet) else {
            return false;
        };
        let to: Option<IpAddr> = match &sliced.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => Some(ip.header().destination_addr().into()),
            Some(etherparse::NetSlice::Ipv6(ip)) => Some(ip.header().destination_addr().into()),
            _ => None,
        };
        matches!(&sliced.transport, Some(etherparse::TransportSlice::Udp(udp)) if udp.destination_port() == 4711)
            && to == Some(dest)
    })
    .is_some()
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn routes_of_both_versions_are_listed_used_and_removed() {
    let ns = NetNs::new();
    let tun = ns
        .tun(
            Builder::new()
                .name("tc-route0")
                .address(v4(10, 67, 0, 1), 32)
                .address(v6("fd67::1"), 128)
                .up(true),
        )
        .unwrap();
    let _ = ns.exec("sysctl", &["-qw", "net.ipv6.conf.tc-route0.accept_ra=0"]);
    tun.add_route(v4(10, 68, 0, 0), 16).unwrap();
    tun.add_route(v6("fd68::"), 32).unwrap();
    tun.add_route_with_metric(v4(10, 69, 0, 0), 24, 77).unwrap();

    let listed = ip_routes(&ns, "tc-route0");
    for route in [
        (v4(10, 68, 0, 0), 16),
        (v6("fd68::"), 32),
        (v4(10, 69, 0, 0), 24),
    ] {
        assert!(listed.contains(&route), "{route:?} not in {listed:?}");
    }
    let ours: BTreeSet<(IpAddr, u8)> = tun
        .routes()
        .unwrap()
        .into_iter()
        .map(|r| (r.dest, r.prefix_len))
        .collect();
    assert_eq!(ours, listed);
    let metric = ns
        .routes("tc-route0")
        .into_iter()
        .find(|r| r.dest == v4(10, 69, 0, 0))
        .and_then(|r| r.metric);
    assert_eq!(metric, Some(77));
    assert!(tun.routes().unwrap().contains(&DeviceRoute {
        dest: v4(10, 69, 0, 0),
        prefix_len: 24,
        metric: Some(77),
    }));

    assert!(
        datagram_comes_out(&ns, &tun, v4(10, 68, 3, 4)),
        "no IPv4 datagram through the route"
    );
    assert!(
        datagram_comes_out(&ns, &tun, v6("fd68::5")),
        "no IPv6 datagram through the route"
    );

    let again = tun.add_route(v4(10, 68, 0, 0), 16).unwrap_err();
    assert_eq!(again.raw_os_error(), Some(libc::EEXIST), "{again}");

    tun.remove_route(v4(10, 68, 0, 0), 16).unwrap();
    tun.remove_route(v6("fd68::"), 32).unwrap();
    tun.remove_route_with_metric(v4(10, 69, 0, 0), 24, 77)
        .unwrap();
    let listed = ip_routes(&ns, "tc-route0");
    assert!(!listed.contains(&(v4(10, 68, 0, 0), 16)), "{listed:?}");
    assert!(!listed.contains(&(v6("fd68::"), 32)), "{listed:?}");
    assert!(!listed.contains(&(v4(10, 69, 0, 0), 24)), "{listed:?}");
    let ours: BTreeSet<(IpAddr, u8)> = tun
        .routes()
        .unwrap()
        .into_iter()
        .map(|r| (r.dest, r.prefix_len))
        .collect();
    assert_eq!(ours, listed);

    let absent = tun.remove_route(v4(10, 68, 0, 0), 16).unwrap_err();
    assert_eq!(absent.raw_os_error(), Some(libc::ESRCH), "{absent}");
    let absent6 = tun.remove_route(v6("fd68::"), 32).unwrap_err();
    assert_eq!(absent6.raw_os_error(), Some(libc::ESRCH), "{absent6}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn configuration_follows_the_device_into_another_namespace() {
    let first = NetNs::new();
    let second = NetNs::new();
    let here = tun_sys::netns::current().unwrap();
    let tun = first
        .tun(
            Builder::new()
                .name("tc-move0")
                .address(v4(10, 70, 0, 1), 24),
        )
        .unwrap();
    first.ip(&["link", "set", "dev", "tc-move0", "netns", second.name()]);
    // A move drops the device's addresses and routes; what is set now goes to where the device is.
    tun.set_up(true).unwrap();
    assert!(tun.is_up().unwrap());
    tun.add_address(v4(10, 71, 0, 1), 24).unwrap();
    tun.add_address(v6("fd71::1"), 64).unwrap();
    tun.add_route(v4(10, 72, 0, 0), 16).unwrap();
    assert!(second.link("tc-move0").unwrap().is_up());
    assert!(has_address(&second, "tc-move0", v4(10, 71, 0, 1), 24));
    assert!(has_address(&second, "tc-move0", v6("fd71::1"), 64));
    assert!(ip_routes(&second, "tc-move0").contains(&(v4(10, 72, 0, 0), 16)));
    assert!(first.link("tc-move0").is_none());
    let (ours, theirs) = both_address_views(&second, &tun, "tc-move0");
    assert_eq!(ours, theirs);
    assert!(datagram_comes_out(&second, &tun, v4(10, 72, 1, 1)));
    tun.remove_route(v4(10, 72, 0, 0), 16).unwrap();
    assert!(!ip_routes(&second, "tc-move0").contains(&(v4(10, 72, 0, 0), 16)));
    // The calling thread never left its namespace.
    let now = tun_sys::netns::current().unwrap();
    assert!(
        tun_sys::netns::same(
            std::os::fd::AsFd::as_fd(&here),
            std::os::fd::AsFd::as_fd(&now)
        )
        .unwrap()
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn transmit_queue_length_is_read_and_set() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-txq0")).unwrap();
    assert_eq!(
        tun.tx_queue_len().unwrap(),
        ns.link("tc-txq0").unwrap().txqlen
    );
    tun.set_tx_queue_len(4321).unwrap();
    assert_eq!(ns.link("tc-txq0").unwrap().txqlen, 4321);
    assert_eq!(tun.tx_queue_len().unwrap(), 4321);
}

/// `gso_max_segs` and `gso_max_size` of `dev` as `ip -d -j link` shows them.
fn ip_gso_limits(ns: &NetNs, dev: &str) -> (u32, u32) {
    let json = ns.ip(&["-d", "-j", "link", "show", "dev", dev]);
    let field = |key: &str| -> u32 {
        let start = json
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("no {key} in {json}"))
            + key.len()
            + 3;
        let digits: String = json[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    (field("gso_max_segs"), field("gso_max_size"))
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn gso_limits_are_read_and_set_and_follow_a_moved_device() {
    let first = NetNs::new();
    let second = NetNs::new();
    let tun = first
        .tun(Builder::new().name("tc-gso0").offload(true))
        .unwrap();
    let limits = tun.gso_limits().unwrap();
    assert_eq!(
        (limits.max_segments, limits.max_size),
        ip_gso_limits(&first, "tc-gso0")
    );
    tun.set_gso_max_segments(45).unwrap();
    tun.set_gso_max_size(60000).unwrap();
    assert_eq!(ip_gso_limits(&first, "tc-gso0"), (45, 60000));
    assert_eq!(
        tun.gso_limits().unwrap(),
        GsoLimits {
            max_segments: 45,
            max_size: 60000
        }
    );
    // Refused: 0 before any system call, past what the device takes by the kernel; neither changes anything.
    assert!(matches!(
        tun.set_gso_max_segments(0),
        Err(Error::InvalidArgument(_))
    ));
    let err = tun.set_gso_max_size(1 << 20).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
        "{err:?}"
    );
    assert_eq!(ip_gso_limits(&first, "tc-gso0"), (45, 60000));
    // Moved: the limits go with the device, and a change reaches it where it is now.
    first.ip(&["link", "set", "dev", "tc-gso0", "netns", second.name()]);
    tun.set_gso_max_segments(20).unwrap();
    assert_eq!(ip_gso_limits(&second, "tc-gso0"), (20, 60000));
    assert_eq!(tun.gso_limits().unwrap().max_segments, 20);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn configuration_after_a_move_never_reaches_a_namesake_left_behind() {
    let first = NetNs::new();
    let second = NetNs::new();
    let tun = first.tun(Builder::new().name("tc-name0")).unwrap();
    first.ip(&["link", "set", "dev", "tc-name0", "netns", second.name()]);
    // Where the device used to be, another interface takes its name.
    first.ip(&["tuntap", "add", "dev", "tc-name0", "mode", "tun"]);
    let namesake = first.link("tc-name0").unwrap();

    tun.set_mtu(1300).unwrap();
    tun.set_up(true).unwrap();
    tun.set_tx_queue_len(777).unwrap();
    tun.add_address(v4(10, 73, 0, 1), 24).unwrap();

    let moved = second.link("tc-name0").unwrap();
    assert_eq!((moved.mtu, moved.txqlen, moved.is_up()), (1300, 777, true));
    assert_eq!(
        first.link("tc-name0").unwrap(),
        namesake,
        "the namesake was changed"
    );
    assert!(has_address(&second, "tc-name0", v4(10, 73, 0, 1), 24));
    assert!(first.addresses("tc-name0").is_empty());
    assert_eq!(tun.index().unwrap(), moved.index);
    assert_eq!(tun.mtu().unwrap(), 1300);
    assert!(tun.is_up().unwrap());
    let (ours, theirs) = both_address_views(&second, &tun, "tc-name0");
    assert_eq!(ours, theirs);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn configuration_after_a_move_and_rename_acts_on_the_device_under_its_new_name() {
    let first = NetNs::new();
    let second = NetNs::new();
    // The old namespace has an interface, up, under the name the device will be given in the new one.
    first.ip(&["tuntap", "add", "dev", "tc-other0", "mode", "tun"]);
    first.ip(&["link", "set", "dev", "tc-other0", "up"]);
    let tun = first.tun(Builder::new().name("tc-ren0")).unwrap();
    first.ip(&["link", "set", "dev", "tc-ren0", "netns", second.name()]);
    second.ip(&["link", "set", "dev", "tc-ren0", "name", "tc-other0"]);

    tun.set_up(true).unwrap();
    assert!(second.link("tc-other0").unwrap().is_up());
    tun.set_up(false).unwrap();
    assert!(!second.link("tc-other0").unwrap().is_up());
    assert!(
        first.link("tc-other0").unwrap().is_up(),
        "the old namespace's namesake was downed"
    );
    assert_eq!(tun.name(), "tc-other0");
    assert_eq!(tun.index().unwrap(), second.index_of("tc-other0"));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn failed_build_on_an_existing_device_undoes_only_what_it_did() {
    let ns = NetNs::new();
    ns.ip(&["tuntap", "add", "dev", "tc-undo0", "mode", "tun"]);
    ns.ip(&["addr", "add", "10.74.0.1/24", "dev", "tc-undo0"]);
    ns.ip(&["link", "set", "dev", "tc-undo0", "up"]);
    ns.ip(&["route", "add", "10.75.0.0/16", "dev", "tc-undo0"]);
    // The kernel's own IPv6 link-local address and its route come with the carrier, not with the build.
    let configured = || -> BTreeSet<(IpAddr, u8)> {
        ns.addresses("tc-undo0")
            .into_iter()
            .filter(|a| !is_link_local(a.addr))
            .map(|a| (a.addr, a.prefix_len))
            .collect()
    };
    let routes = || -> BTreeSet<(IpAddr, u8)> {
        ip_routes(&ns, "tc-undo0")
            .into_iter()
            .filter(|(dest, _)| !is_link_local(*dest))
            .collect()
    };
    let before = configured();
    let routes_before = routes();
    assert!(routes_before.contains(&(v4(10, 75, 0, 0), 16)));

    // The third address is the device's own already (EEXIST): the two before it go again, the old one stays.
    let error = ns
        .tun_reattach(
            Builder::new()
                .name("tc-undo0")
                .address(v4(10, 76, 0, 1), 24)
                .address(v6("fd76::1"), 64)
                .address(v4(10, 74, 0, 1), 24),
        )
        .unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EEXIST), "{error}");
    assert_eq!(configured(), before);

    // A route that exists already fails the build after an address and a new route were added: both undone,
    // the existing route kept.
    let error = ns
        .tun_reattach(
            Builder::new()
                .name("tc-undo0")
                .address(v4(10, 77, 0, 1), 24)
                .route(v4(10, 78, 0, 0), 16)
                .route(v4(10, 75, 0, 0), 16),
        )
        .unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EEXIST), "{error}");
    assert_eq!(configured(), before);
    assert_eq!(routes(), routes_before);

    // The link state the build changed is restored too.
    ns.ip(&["link", "set", "dev", "tc-undo0", "down"]);
    let error = ns
        .tun_reattach(
            Builder::new()
                .name("tc-undo0")
                .up(true)
                .address(v4(10, 74, 0, 1), 24),
        )
        .unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EEXIST), "{error}");
    assert!(!ns.link("tc-undo0").expect("the device stays").is_up());
    ns.ip(&["link", "del", "tc-undo0"]);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn an_ipv6_address_on_a_device_below_the_ipv6_mtu_says_so() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-mtu0")).unwrap();
    tun.set_mtu(1000).unwrap();
    let error = tun.add_address(v6("fd79::1"), 64).unwrap_err();
    assert!(
        matches!(error, Error::Ipv6MtuTooSmall { mtu: 1000, .. }),
        "{error:?}"
    );
    assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
    assert!(error.to_string().contains("1280"), "{error}");
    // IPv4 is not held to it, and a big enough MTU lets the IPv6 address in.
    tun.add_address(v4(10, 79, 0, 1), 24).unwrap();
    tun.set_mtu(1280).unwrap();
    tun.add_address(v6("fd79::1"), 64).unwrap();

    let built = ns.tun(
        Builder::new()
            .name("tc-mtu1")
            .mtu(1200)
            .address(v6("fd79:1::1"), 64),
    );
    assert!(
        matches!(built, Err(Error::Ipv6MtuTooSmall { mtu: 1200, .. })),
        "{built:?}"
    );
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn up_is_the_administrative_state_and_running_what_link_events_report() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tc-run0")).unwrap();
    let events = tun.events();
    assert!(!tun.is_up().unwrap() && !tun.is_running().unwrap());
    tun.set_up(true).unwrap();
    assert!(tun.is_up().unwrap());
    assert!(tun.is_running().unwrap(), "up with its queue attached");
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::Running)
    );
    tun.set_up(false).unwrap();
    assert!(!tun.is_up().unwrap() && !tun.is_running().unwrap());
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)),
        Ok(tun::Event::NotRunning)
    );
}
