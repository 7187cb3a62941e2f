//! Creating, configuring and removing TUN devices, checked against what the kernel reports (`ip -j link`).

use std::os::fd::AsFd;
use std::time::Duration;

use tun::{Builder, Error};
use tun_system_tests::{NetNs, NetNsTun, wait_until};

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_created_by_name_matches_what_the_kernel_reports() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-named0")).unwrap();
    assert_eq!(tun.name(), "tt-named0");
    let link = ns.link("tt-named0").expect("ip link lists the device");
    assert_eq!(tun.index().unwrap(), link.index);
    assert_eq!(tun.mtu().unwrap(), link.mtu);
    assert!(link.flags.iter().any(|f| f == "POINTOPOINT"), "{link:?}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_created_by_template_gets_a_kernel_chosen_name() {
    let ns = NetNs::new();
    let first = ns.tun(Builder::new().name("ttpl%d")).unwrap();
    let second = ns.tun(Builder::new().name("ttpl%d")).unwrap();
    let (a, b) = (first.name(), second.name());
    assert_eq!(a, "ttpl0");
    assert_eq!(b, "ttpl1");
    assert_eq!(ns.link(&a).unwrap().index, first.index().unwrap());
    assert_eq!(ns.link(&b).unwrap().index, second.index().unwrap());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_without_a_name_gets_tun_n() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new()).unwrap();
    let name = tun.name();
    assert!(name.starts_with("tun"), "{name}");
    assert!(ns.link(&name).is_some());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn builder_mtu_is_applied() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-mtu0").mtu(1280)).unwrap();
    assert_eq!(ns.link("tt-mtu0").unwrap().mtu, 1280);
    assert_eq!(tun.mtu().unwrap(), 1280);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn set_mtu_changes_what_the_kernel_reports() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-mtu1")).unwrap();
    tun.set_mtu(1420).unwrap();
    assert_eq!(ns.link("tt-mtu1").unwrap().mtu, 1420);
    assert_eq!(tun.mtu().unwrap(), 1420);
    tun.set_mtu(9000).unwrap();
    assert_eq!(ns.link("tt-mtu1").unwrap().mtu, 9000);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn impossible_mtu_is_an_error_and_leaves_the_mtu_alone() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-mtu2").mtu(1400)).unwrap();
    for bad in [0, 67, 65536, u32::MAX] {
        // Refused before the kernel is asked.
        let err = tun.set_mtu(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidMtu { mtu } if mtu == bad),
            "mtu {bad}: {err:?}"
        );
        assert!(err.to_string().contains(&bad.to_string()), "{err}");
    }
    assert_eq!(ns.link("tt-mtu2").unwrap().mtu, 1400);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn impossible_builder_mtu_fails_the_build_and_leaves_no_device() {
    let ns = NetNs::new();
    let err = ns.tun(Builder::new().name("tt-mtu3").mtu(10)).unwrap_err();
    assert!(matches!(err, Error::InvalidMtu { mtu: 10 }), "{err:?}");
    assert!(ns.link("tt-mtu3").is_none());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn invalid_names_are_refused_before_anything_is_created() {
    let ns = NetNs::new();
    for bad in ["sixteen-bytes-xx", "a/b", "a\0b", "", "..", "a b"] {
        let err = ns.tun(Builder::new().name(bad)).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err:?}");
    }
    assert_eq!(ns.links().len(), 1, "only lo: {:?}", ns.links());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn second_device_with_the_same_name_is_a_clear_error() {
    let ns = NetNs::new();
    let _first = ns.tun(Builder::new().name("tt-dup0")).unwrap();
    let err = ns.tun(Builder::new().name("tt-dup0")).unwrap_err();
    assert!(
        matches!(&err, Error::DeviceBusy { name, .. } if name == "tt-dup0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("tt-dup0"), "{err}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn name_of_a_tap_device_is_a_layer_mismatch_for_an_l3_build_and_attaches_as_l2() {
    let ns = NetNs::new();
    ns.ip(&["tuntap", "add", "dev", "tt-tap0", "mode", "tap"]);
    let err = ns.tun(Builder::new().name("tt-tap0")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SettingsMismatch { name, setting: "layer", device: true, asked: false }
                if name == "tt-tap0"
        ),
        "{err:?}"
    );
    let tap = ns
        .tun(Builder::new().name("tt-tap0").layer(tun::Layer::L2))
        .unwrap();
    assert_eq!(tap.layer(), tun::Layer::L2);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn multi_queue_and_single_queue_do_not_mix() {
    // The kernel refuses both with EINVAL; the error names the setting that differs.
    let ns = NetNs::new();
    let _single = ns.tun(Builder::new().name("tt-mix0")).unwrap();
    let err = ns
        .tun(Builder::new().name("tt-mix0").multi_queue(true))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SettingsMismatch {
                setting: "multi_queue",
                device: false,
                asked: true,
                ..
            }
        ),
        "{err:?}"
    );
    let _multi = ns
        .tun(Builder::new().name("tt-mix1").multi_queue(true))
        .unwrap();
    let err = ns.tun(Builder::new().name("tt-mix1")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SettingsMismatch {
                setting: "multi_queue",
                device: true,
                asked: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("multi_queue on"), "{err}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn dropping_a_device_removes_the_interface() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-drop0")).unwrap();
    assert!(ns.link("tt-drop0").is_some());
    drop(tun);
    assert!(wait_until(Duration::from_secs(2), || ns
        .link("tt-drop0")
        .is_none()));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn closing_a_device_removes_the_interface_and_is_idempotent() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-close0")).unwrap();
    tun.close().unwrap();
    assert!(wait_until(Duration::from_secs(2), || ns
        .link("tt-close0")
        .is_none()));
    tun.close().unwrap();
    assert!(tun.is_closed());
    // The name still answers: the last one the kernel reported.
    assert_eq!(tun.name(), "tt-close0");
    assert!(matches!(tun.mtu(), Err(Error::Closed)));
    assert!(matches!(tun.set_mtu(1400), Err(Error::Closed)));
    // The descriptor number stays valid until drop (it no longer refers to the device).
    assert!(tun.as_fd().try_clone_to_owned().is_ok());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn persistent_device_outlives_its_fd_until_deleted() {
    let ns = NetNs::new();
    let tun = ns
        .tun(Builder::new().name("tt-persist0").persist(true))
        .unwrap();
    let index = tun.index().unwrap();
    drop(tun);
    std::thread::sleep(Duration::from_millis(100));
    let link = ns
        .link("tt-persist0")
        .expect("persistent device still listed");
    assert_eq!(link.index, index);
    // Attaching again works and finds the same device.
    let again = ns.tun_reattach(Builder::new().name("tt-persist0")).unwrap();
    assert_eq!(again.index().unwrap(), index);
    drop(again);
    ns.ip(&["link", "del", "tt-persist0"]);
    assert!(ns.link("tt-persist0").is_none());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn persist_false_makes_a_persistent_device_go_with_its_fd() {
    let ns = NetNs::new();
    drop(
        ns.tun(Builder::new().name("tt-persist1").persist(true))
            .unwrap(),
    );
    let tun = ns
        .tun_reattach(Builder::new().name("tt-persist1").persist(false))
        .unwrap();
    drop(tun);
    assert!(wait_until(Duration::from_secs(2), || ns
        .link("tt-persist1")
        .is_none()));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn a_failed_build_gives_an_existing_device_its_mtu_and_mac_address_back() {
    let ns = NetNs::new();
    let tap = || Builder::new().name("tt-undo0").layer(tun::Layer::L2);
    drop(ns.tun(tap().persist(true)).unwrap());
    let before = ns.link("tt-undo0").expect("persistent device listed");
    // A route through a link that is down is refused (ENETDOWN), after the MTU and MAC address were set.
    let refused_route = tap()
        .mtu(1400)
        .mac_address([2, 0, 0, 0, 0x55, 0x01])
        .route("10.77.0.0".parse().unwrap(), 24);
    assert!(ns.tun_reattach(refused_route).is_err());
    // A multicast MAC address is refused by the kernel (EADDRNOTAVAIL), after the MTU was set.
    let refused_mac = tap().mtu(1300).mac_address([1, 0, 0, 0, 0x55, 0x01]);
    assert!(ns.tun_reattach(refused_mac).is_err());
    let after = ns.link("tt-undo0").expect("persistent device still listed");
    ns.ip(&["link", "del", "tt-undo0"]);
    assert_eq!(after.mtu, before.mtu);
    assert_eq!(after.address, before.address);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn owner_and_group_are_set_on_the_device() {
    let ns = NetNs::new();
    let _tun = ns
        .tun(Builder::new().name("tt-owner0").owner(4321).group(1234))
        .unwrap();
    let out = ns.ip(&["-d", "link", "show", "tt-owner0"]);
    assert!(out.contains("user 4321"), "{out}");
    assert!(out.contains("group 1234"), "{out}");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn set_up_brings_the_link_up_and_down() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-up0")).unwrap();
    assert!(!ns.link("tt-up0").unwrap().is_up());
    tun.set_up(true).unwrap();
    assert!(ns.link("tt-up0").unwrap().is_up());
    tun.set_up(false).unwrap();
    assert!(!ns.link("tt-up0").unwrap().is_up());
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn device_opened_from_an_existing_fd_is_usable_monitored_or_not() {
    let ns = NetNs::new();
    for (i, monitored) in [true, false].into_iter().enumerate() {
        let name = format!("tt-fromfd{i}");
        let fd = ns.run_in(|| {
            let fd = tun_sys::tun::open_clone_device(false).unwrap();
            let ifname = tun_sys::IfName::new(&name).unwrap();
            tun_sys::tun::set_iff(fd.as_fd(), ifname, tun_sys::TunFlags::empty()).unwrap();
            fd
        });
        // Opened from the test's own thread, outside the namespace: the device is still found.
        let tun = if monitored {
            tun::Tun::from_fd(fd)
        } else {
            tun::Builder::new().monitor(false).build_from_fd(fd)
        }
        .unwrap();
        assert_eq!(tun.is_monitored(), monitored);
        assert_eq!(tun.name(), name);
        assert_eq!(tun.index().unwrap(), ns.link(&name).unwrap().index);
        tun.set_mtu(1300).unwrap();
        assert_eq!(ns.link(&name).unwrap().mtu, 1300);
        assert_eq!(tun.batch_size(), 1);
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn into_raw_fd_hands_over_a_live_device() {
    use std::os::fd::IntoRawFd;
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-raw0")).unwrap();
    let raw = tun.into_raw_fd();
    // The Tun is gone but the device is not: the fd was handed over, not closed. (The namespace's removal at the
    // end of the test removes the device; the number itself stays open for the rest of this test process.)
    assert!(raw >= 0);
    std::thread::sleep(Duration::from_millis(50));
    assert!(ns.link("tt-raw0").is_some());
    assert!(std::fs::read_link(format!("/proc/self/fd/{raw}")).is_ok_and(|p| p.ends_with("tun")));
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn mtu_and_index_follow_the_device_into_another_namespace() {
    let first = NetNs::new();
    let second = NetNs::new();
    let tun = first
        .tun(Builder::new().name("tt-move0").monitor(false))
        .unwrap();
    first.ip(&["link", "set", "dev", "tt-move0", "netns", second.name()]);
    assert!(first.link("tt-move0").is_none());
    let link = second
        .link("tt-move0")
        .expect("device in the second namespace");
    assert_eq!(tun.index().unwrap(), link.index);
    tun.set_mtu(1350).unwrap();
    assert_eq!(second.link("tt-move0").unwrap().mtu, 1350);
    assert_eq!(tun.mtu().unwrap(), 1350);
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn fd_of_a_device_with_packet_information_is_refused_tun_or_tap() {
    use tun_sys::TunFlags;
    let ns = NetNs::new();
    for (i, flags) in [TunFlags::TAP, TunFlags::TUN].into_iter().enumerate() {
        let name = format!("tt-badfd{i}");
        let fd = ns.run_in(|| {
            let fd = tun_sys::tun::open_clone_device(false).unwrap();
            let ifname = tun_sys::IfName::new(&name).unwrap();
            tun_sys::tun::set_iff_exact(fd.as_fd(), ifname, flags).unwrap();
            fd
        });
        match tun::Tun::from_fd(fd) {
            Err(tun::Error::UnsupportedDevice { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(reason.contains("packet information"), "{reason}");
            }
            other => panic!("{flags:?}: {other:?}"),
        }
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn renamed_device_reports_its_new_name_also_after_close() {
    let ns = NetNs::new();
    let tun = ns.tun(Builder::new().name("tt-ren0")).unwrap();
    ns.ip(&["link", "set", "dev", "tt-ren0", "name", "tt-ren1"]);
    assert_eq!(tun.name(), "tt-ren1");
    assert_eq!(tun.index().unwrap(), ns.link("tt-ren1").unwrap().index);
    tun.close().unwrap();
    assert_eq!(tun.name(), "tt-ren1");
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn exclusive_build_fails_when_the_name_exists_instead_of_attaching() {
    let ns = NetNs::new();
    let exclusive = Builder::new()
        .name("tt-excl0")
        .multi_queue(true)
        .exclusive(true);
    let first = ns.tun(exclusive.clone()).unwrap();
    // Without the option this would attach a second queue.
    let err = ns.tun(exclusive).unwrap_err();
    assert!(
        matches!(&err, Error::DeviceExists { name, .. } if name == "tt-excl0"),
        "{err:?}"
    );
    assert!(
        ns.tun(Builder::new().name("tt-excl0").multi_queue(true))
            .is_ok()
    );
    drop(first);
}
