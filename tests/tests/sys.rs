//! The raw layer (`tun-sys`) against the real kernel: the TUN ioctls and namespace helpers.

use std::os::fd::AsFd;

use tun_sys::{IfName, Offloads, TunFlags, netns};
use tun_system_tests::NetNs;

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn tun_ioctls_round_trip_through_the_kernel() {
    let ns = NetNs::new();
    let _fd = ns.run_in(|| {
        let fd = tun_sys::tun::open_clone_device(true).unwrap();
        let features = tun_sys::tun::get_features(fd.as_fd()).unwrap();
        let wanted = TunFlags::TUN | TunFlags::NO_PI | TunFlags::VNET_HDR | TunFlags::MULTI_QUEUE;
        assert!(features.contains(wanted), "{features:?}");

        let name = tun_sys::tun::set_iff(
            fd.as_fd(),
            IfName::new("tsys%d").unwrap(),
            TunFlags::VNET_HDR,
        )
        .unwrap();
        assert_eq!(name.as_str(), "tsys0");
        let (got, flags) = tun_sys::tun::get_iff(fd.as_fd()).unwrap();
        assert_eq!(got, name);
        assert!(
            flags.contains(TunFlags::TUN | TunFlags::NO_PI | TunFlags::VNET_HDR),
            "{flags:?}"
        );
        assert!(!flags.contains(TunFlags::PERSIST));

        assert_eq!(tun_sys::tun::get_vnet_hdr_size(fd.as_fd()).unwrap(), 10);
        tun_sys::tun::set_vnet_hdr_size(fd.as_fd(), 12).unwrap();
        assert_eq!(tun_sys::tun::get_vnet_hdr_size(fd.as_fd()).unwrap(), 12);
        tun_sys::tun::set_vnet_hdr_size(fd.as_fd(), 10).unwrap();

        // USO4 alone is refused; with USO6 and CSUM it is accepted (Linux >= 6.2).
        let alone =
            tun_sys::tun::set_offload(fd.as_fd(), Offloads::CSUM | Offloads::USO4).unwrap_err();
        assert_eq!(alone.raw_os_error(), Some(libc::EINVAL));
        tun_sys::tun::set_offload(fd.as_fd(), Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6)
            .unwrap();
        tun_sys::tun::set_offload(fd.as_fd(), Offloads::empty()).unwrap();

        tun_sys::tun::set_persist(fd.as_fd(), true).unwrap();
        assert!(
            tun_sys::tun::get_iff(fd.as_fd())
                .unwrap()
                .1
                .contains(TunFlags::PERSIST)
        );
        tun_sys::tun::set_persist(fd.as_fd(), false).unwrap();

        let sock = tun_sys::iface::control_socket().unwrap();
        let index = tun_sys::iface::index(sock.as_fd(), name).unwrap();
        assert!(index > 1);
        tun_sys::iface::set_mtu(sock.as_fd(), name, 1234).unwrap();
        assert_eq!(tun_sys::iface::mtu(sock.as_fd(), name).unwrap(), 1234);
        let flags = tun_sys::iface::flags(sock.as_fd(), name).unwrap();
        tun_sys::iface::set_flags(sock.as_fd(), name, flags | tun_sys::IfFlags::UP).unwrap();
        assert!(
            tun_sys::iface::flags(sock.as_fd(), name)
                .unwrap()
                .contains(tun_sys::IfFlags::UP)
        );
        fd
    });
    let link = ns.link("tsys0").unwrap();
    assert_eq!(link.mtu, 1234);
    assert!(link.is_up());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_netns_is_the_namespace_it_was_created_in_and_follows_a_move() {
    let first = NetNs::new();
    let second = NetNs::new();
    let fd = first.run_in(|| {
        let fd = tun_sys::tun::open_clone_device(true).unwrap();
        tun_sys::tun::set_iff(
            fd.as_fd(),
            IfName::new("tsys-ns0").unwrap(),
            TunFlags::empty(),
        )
        .unwrap();
        fd
    });
    let ns = tun_sys::tun::get_dev_netns(fd.as_fd()).unwrap();
    assert!(netns::same(ns.as_fd(), first.fd().as_fd()).unwrap());
    assert!(!netns::same(ns.as_fd(), netns::current().unwrap().as_fd()).unwrap());
    first.ip(&["link", "set", "dev", "tsys-ns0", "netns", second.name()]);
    let moved = tun_sys::tun::get_dev_netns(fd.as_fd()).unwrap();
    assert!(netns::same(moved.as_fd(), second.fd().as_fd()).unwrap());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn entering_and_unsharing_change_only_the_calling_thread() {
    let ns = NetNs::new();
    let here = netns::current().unwrap();
    let inside = ns.run_in(|| netns::current().unwrap());
    assert!(netns::same(inside.as_fd(), ns.fd().as_fd()).unwrap());
    // The test thread itself never moved.
    assert!(netns::same(netns::current().unwrap().as_fd(), here.as_fd()).unwrap());
    let fresh = std::thread::spawn(|| {
        tun_test_support::netns::unshare().unwrap();
        let fresh = netns::current().unwrap();
        // A new namespace has only lo, and it is down.
        let sock = tun_sys::iface::control_socket().unwrap();
        let lo = tun_sys::iface::flags(sock.as_fd(), IfName::new("lo").unwrap()).unwrap();
        assert!(!lo.contains(tun_sys::IfFlags::UP));
        fresh
    })
    .join()
    .unwrap();
    assert!(!netns::same(fresh.as_fd(), here.as_fd()).unwrap());
    assert!(netns::same(netns::current().unwrap().as_fd(), here.as_fd()).unwrap());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn open_named_finds_ip_netns_namespaces() {
    let ns = NetNs::new();
    let opened = tun_test_support::netns::open_named(ns.name()).unwrap();
    assert!(netns::same(opened.as_fd(), ns.fd().as_fd()).unwrap());
    let missing = tun_test_support::netns::open_named("tuntest-does-not-exist").unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn name_check_accepts_exactly_the_bytes_the_kernel_accepts() {
    use zerocopy::FromBytes;
    let ns = NetNs::new();
    ns.run_in(|| {
        for byte in 1..=255u8 {
            let bytes = [b't', b'n', byte, b'x'];
            let ours = IfName::from_bytes(&bytes).is_ok();
            // The kernel's verdict on the same bytes, past our check.
            let mut raw = [0u8; 16];
            raw[..4].copy_from_slice(&bytes);
            let unchecked = IfName::read_from_bytes(&raw).unwrap();
            let fd = tun_sys::tun::open_clone_device(true).unwrap();
            let theirs = match tun_sys::tun::set_iff(fd.as_fd(), unchecked, TunFlags::empty()) {
                Ok(_) => true,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => false,
                Err(e) => panic!("byte {byte:#04x}: {e}"),
            };
            // `%` alone is a template the kernel refuses for another reason (no `d` after it).
            if byte != b'%' {
                assert_eq!(
                    ours, theirs,
                    "byte {byte:#04x}: ours {ours}, kernel {theirs}"
                );
            }
        }
    });
}
