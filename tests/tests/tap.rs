//! TAP devices (`Layer::L2`): Ethernet frames through the same calls, the layer learnt from an fd, the MAC
//! address. Privileged: each test makes its own namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, ArpPacket, Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder,
    SlicedPacket, TransportSlice,
};
use tun::{Builder, Error, Layer, PacketBatch, Tun};
use tun_sys::{IfName, TunFlags};
use tun_system_tests::{NetNs, NetNsTun};

/// The device's own MAC address (locally administered).
const TAP_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x78, 0x00, 0x01];
/// The MAC address of the host the test plays in user space.
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x78, 0x00, 0x02];
const TAP4: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const TAP6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0, 0, 0, 0, 0, 0, 2);

/// What the user-space peer answered.
#[derive(Debug, Default)]
struct Answered {
    arp: AtomicUsize,
    ndp: AtomicUsize,
    echo4: AtomicUsize,
    echo6: AtomicUsize,
}

/// The peer's answer to `frame`, if it is one of the questions it answers: an ARP request or an NDP
/// neighbour solicitation for its address, or an echo request (v4 or v6) to it.
fn answer(frame: &[u8], answered: &Answered) -> Option<Vec<u8>> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &packet.link else {
        return None;
    };
    let asker = eth.source();
    let mut out = Vec::new();
    match (&packet.net, &packet.transport) {
        (Some(NetSlice::Arp(arp)), _) => {
            let arp = arp.to_packet().try_eth_ipv4().ok()?;
            if arp.operation != ArpOperation::REQUEST || arp.target_ipv4 != PEER4.octets() {
                return None;
            }
            let reply = ArpPacket::from(ArpEthIpv4Packet {
                operation: ArpOperation::REPLY,
                sender_mac: PEER_MAC,
                sender_ipv4: PEER4.octets(),
                target_mac: arp.sender_mac,
                target_ipv4: arp.sender_ipv4,
            });
            PacketBuilder::ethernet2(PEER_MAC, asker)
                .arp(reply)
                .write(&mut out)
                .ok()?;
            answered.arp.fetch_add(1, Ordering::Relaxed);
        }
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) => {
            let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
                return None;
            };
            if ip.header().destination() != PEER4.octets() {
                return None;
            }
            PacketBuilder::ethernet2(PEER_MAC, asker)
                .ipv4(PEER4.octets(), ip.header().source(), 64)
                .icmpv4_echo_reply(echo.id, echo.seq)
                .write(&mut out, icmp.payload())
                .ok()?;
            answered.echo4.fetch_add(1, Ordering::Relaxed);
        }
        (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
            let source = ip.header().source();
            match icmp.icmp_type() {
                Icmpv6Type::NeighborSolicitation => {
                    let target = icmp.payload().get(..16)?;
                    if target != PEER6.octets() {
                        return None;
                    }
                    // Target address, then the target link-layer address option (type 2, 8 bytes).
                    let mut body = PEER6.octets().to_vec();
                    body.extend_from_slice(&[2, 1]);
                    body.extend_from_slice(&PEER_MAC);
                    // Solicited and override, as an answer to a solicitation for an address of ours.
                    let advert = Icmpv6Type::Unknown {
                        type_u8: 136,
                        code_u8: 0,
                        bytes5to8: [0x60, 0, 0, 0],
                    };
                    PacketBuilder::ethernet2(PEER_MAC, asker)
                        .ipv6(PEER6.octets(), source, 255)
                        .icmpv6(advert)
                        .write(&mut out, &body)
                        .ok()?;
                    answered.ndp.fetch_add(1, Ordering::Relaxed);
                }
                Icmpv6Type::EchoRequest(echo) => {
                    if ip.header().destination() != PEER6.octets() {
                        return None;
                    }
                    PacketBuilder::ethernet2(PEER_MAC, asker)
                        .ipv6(PEER6.octets(), source, 64)
                        .icmpv6_echo_reply(echo.id, echo.seq)
                        .write(&mut out, icmp.payload())
                        .ok()?;
                    answered.echo6.fetch_add(1, Ordering::Relaxed);
                }
                _ => return None,
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Answers what the peer answers, from `tap`'s frames, until `tap` is closed; frames it does not answer
/// (router solicitations, MLD reports) are left unanswered.
fn serve_peer(tap: &Tun, answered: &Answered) {
    let mut batch = PacketBatch::for_device(tap);
    let mut replies: Vec<Vec<u8>> = Vec::new();
    while batch.read_from(tap).is_ok() {
        replies.clear();
        replies.extend(batch.packets().filter_map(|frame| answer(frame, answered)));
        for reply in &replies {
            if let Err(e) = tap.send(reply) {
                panic!("reply of {} bytes refused: {e}", reply.len());
            }
        }
    }
}

/// Pings the peer from the namespace (3 echoes, 10 s at most) while [`serve_peer`] plays it on `tap`.
fn ping_through(ns: &NetNs, tap: &Tun) -> Answered {
    let answered = Answered::default();
    std::thread::scope(|s| {
        let peer = s.spawn(|| serve_peer(tap, &answered));
        let ping = |peer: IpAddr| {
            let peer = peer.to_string();
            ns.exec("ping", &["-c", "3", "-i", "0.2", "-w", "10", &peer])
        };
        let v4 = ping(PEER4.into());
        let v6 = ping(PEER6.into());
        tap.close().unwrap();
        peer.join().unwrap();
        v4.unwrap_or_else(|e| panic!("ping {PEER4}: {e}"));
        v6.unwrap_or_else(|e| panic!("ping {PEER6}: {e}"));
    });
    answered
}

fn tap_builder(name: &str) -> Builder {
    Builder::new()
        .name(name)
        .layer(Layer::L2)
        .mac_address(TAP_MAC)
        .address(TAP4.into(), 24)
        .address(TAP6.into(), 64)
        .up(true)
}

#[test]
#[ignore = "privileged: creates a TAP device in a network namespace"]
fn arp_and_ndp_answered_from_user_space_let_ping_through_v4_and_v6() {
    let ns = NetNs::new();
    let tap = ns.tun(tap_builder("tapping0")).unwrap();
    assert_eq!(tap.layer(), Layer::L2);
    assert_eq!(tap.mac_address().unwrap(), TAP_MAC);
    let answered = ping_through(&ns, &tap);
    assert!(answered.arp.load(Ordering::Relaxed) >= 1, "{answered:?}");
    assert!(answered.ndp.load(Ordering::Relaxed) >= 1, "{answered:?}");
    assert!(answered.echo4.load(Ordering::Relaxed) >= 3, "{answered:?}");
    assert!(answered.echo6.load(Ordering::Relaxed) >= 3, "{answered:?}");
}

#[test]
#[ignore = "privileged: creates a TAP device in a network namespace"]
fn with_offloads_a_tap_device_still_pings_v4_and_v6() {
    let ns = NetNs::new();
    let tap = ns.tun(tap_builder("tapping1").offload(true)).unwrap();
    assert!(tap.has_vnet_hdr());
    let answered = ping_through(&ns, &tap);
    assert!(answered.echo4.load(Ordering::Relaxed) >= 3, "{answered:?}");
    assert!(answered.echo6.load(Ordering::Relaxed) >= 3, "{answered:?}");
}

/// A `/dev/net/tun` fd attached to `name` in `ns` with exactly `flags`.
fn raw_fd(ns: &NetNs, name: &str, flags: TunFlags) -> OwnedFd {
    ns.run_in(|| {
        let fd = tun_sys::tun::open_clone_device(true).unwrap();
        tun_sys::tun::set_iff_exact(fd.as_fd(), IfName::new(name).unwrap(), flags).unwrap();
        fd
    })
}

/// `aa:bb:cc:dd:ee:ff`, as `ip` prints a MAC address.
fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

#[test]
#[ignore = "privileged: creates TAP devices in a network namespace"]
fn from_fd_of_a_tap_fd_is_l2_and_its_mac_address_is_set_and_read_back() {
    let ns = NetNs::new();
    let fd = raw_fd(&ns, "tapfd0", TunFlags::TAP | TunFlags::NO_PI);
    let tap = ns.run_in(|| Tun::from_fd(fd)).unwrap();
    assert_eq!(tap.layer(), Layer::L2);
    let link = ns.link("tapfd0").unwrap();
    assert_eq!(mac_text(tap.mac_address().unwrap()), link.address);
    tap.set_mac_address(TAP_MAC).unwrap();
    assert_eq!(ns.link("tapfd0").unwrap().address, mac_text(TAP_MAC));
    assert_eq!(tap.mac_address().unwrap(), TAP_MAC);
    // Taken while up, as a TAP device allows.
    tap.set_up(true).unwrap();
    tap.set_mac_address(PEER_MAC).unwrap();
    assert_eq!(ns.link("tapfd0").unwrap().address, mac_text(PEER_MAC));
    // A multicast address is the kernel's to refuse.
    let err = tap.set_mac_address([0x01, 0, 0x5e, 0, 0, 1]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

/// `err` refuses a build whose layer disagrees with the device's (`device_is_l2`).
fn assert_layer_mismatch(err: &Error, device_is_l2: bool) {
    assert!(
        matches!(
            err,
            Error::SettingsMismatch { setting: "layer", device, asked, .. }
                if *device == device_is_l2 && *asked != device_is_l2
        ),
        "{err:?}"
    );
}

#[test]
#[ignore = "privileged: creates TUN and TAP devices in a network namespace"]
fn a_layer_that_disagrees_with_the_device_is_refused() {
    let ns = NetNs::new();
    // An fd of the other layer.
    let tap_fd = raw_fd(&ns, "tapmis0", TunFlags::TAP | TunFlags::NO_PI);
    let err = ns
        .run_in(|| Builder::new().layer(Layer::L3).build_from_fd(tap_fd))
        .unwrap_err();
    assert_layer_mismatch(&err, true);
    let tun_fd = raw_fd(&ns, "tunmis0", TunFlags::TUN | TunFlags::NO_PI);
    let err = ns
        .run_in(|| Builder::new().layer(Layer::L2).build_from_fd(tun_fd))
        .unwrap_err();
    assert_layer_mismatch(&err, false);
    // A device of the other layer by name.
    let tap = ns
        .tun(
            Builder::new()
                .name("tapmis1")
                .layer(Layer::L2)
                .persist(true),
        )
        .unwrap();
    let err = ns
        .tun(Builder::new().name("tapmis1").layer(Layer::L3))
        .unwrap_err();
    assert_layer_mismatch(&err, true);
    drop(tap);
    let again = ns
        .tun_reattach(
            Builder::new()
                .name("tapmis1")
                .layer(Layer::L2)
                .persist(false),
        )
        .unwrap();
    assert_eq!(again.layer(), Layer::L2);
    drop(again);
    // Packet information stays refused on TAP too.
    let pi_fd = raw_fd(&ns, "tappi0", TunFlags::TAP);
    let err = ns.run_in(|| Tun::from_fd(pi_fd)).unwrap_err();
    assert!(matches!(err, Error::UnsupportedDevice { .. }), "{err:?}");
    // An L3 device has no MAC address.
    let tun = ns.tun(Builder::new().name("tunmac0")).unwrap();
    assert!(matches!(tun.mac_address(), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        tun.set_mac_address(TAP_MAC),
        Err(Error::InvalidArgument(_))
    ));
    assert!(ns.link("tunmac0").unwrap().address.is_empty());
}

#[test]
#[ignore = "privileged: creates a multi-queue TAP device in a network namespace"]
fn a_tap_device_opens_more_queues_and_writes_short_frames_are_refused() {
    let ns = NetNs::new();
    let tap = ns
        .tun(
            Builder::new()
                .name("tapmq0")
                .layer(Layer::L2)
                .multi_queue(true)
                .up(true),
        )
        .unwrap();
    let second = tap.open_queue().unwrap();
    assert_eq!(second.layer(), Layer::L2);
    assert_eq!(ns.attached_queues("tapmq0"), 2);
    // Shorter than an Ethernet header: refused before the kernel, the rest of the batch written.
    let frame = {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(PEER_MAC, [0xff; 6])
            .arp(ArpPacket::from(ArpEthIpv4Packet {
                operation: ArpOperation::REQUEST,
                sender_mac: PEER_MAC,
                sender_ipv4: PEER4.octets(),
                target_mac: [0; 6],
                target_ipv4: TAP4.octets(),
            }))
            .write(&mut out)
            .unwrap();
        out
    };
    let mut bufs = vec![frame.clone(), vec![0xff; 13], frame.clone()];
    let sizes = [frame.len(), 13, frame.len()];
    match second.write_packets(&mut bufs, &sizes, 0).unwrap_err() {
        Error::Batch(batch) => {
            assert_eq!(batch.written, 2, "{batch:?}");
            assert_eq!(batch.failed.len(), 1, "{batch:?}");
            assert_eq!(batch.failed[0].index, 1, "{batch:?}");
            assert!(matches!(batch.failed[0].error, Error::InvalidPacket(_)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "privileged: creates a persistent TAP device in a network namespace"]
fn events_mtu_addresses_persist_exclusive_async_and_try_calls_work_on_tap() {
    use std::time::Duration;

    let ns = NetNs::new();
    // Nothing of IPv6 on it, so that the device is silent unless the test speaks.
    let builder = || {
        Builder::new()
            .name("tapall0")
            .layer(Layer::L2)
            .offload(true)
            .multi_queue(true)
            .mtu(1400)
            .owner(0)
            .group(0)
    };
    let tap = ns.tun(builder().exclusive(true).persist(true)).unwrap();
    let err = ns.tun(builder().exclusive(true)).unwrap_err();
    assert!(matches!(err, Error::DeviceExists { .. }), "{err:?}");
    let _ = ns.exec("sysctl", &["-qw", "net.ipv6.conf.tapall0.disable_ipv6=1"]);
    assert_eq!(tap.mtu().unwrap(), 1400);
    tap.set_mtu(9000).unwrap();
    assert_eq!(ns.link("tapall0").unwrap().mtu, 9000);
    assert!(matches!(
        tap.set_mtu(65522),
        Err(Error::InvalidMtu { mtu: 65522 })
    ));
    let events = tap.events();
    tap.set_up(true).unwrap();
    // The MTU change may be reported first.
    let running = (0..10)
        .any(|_| events.recv_timeout(Duration::from_secs(5)).ok() == Some(tun::Event::Running));
    assert!(running, "no Running event");
    tap.add_address(TAP4.into(), 24).unwrap();
    tap.add_route(Ipv4Addr::new(10, 79, 0, 0).into(), 16)
        .unwrap();
    assert!(
        tap.addresses()
            .unwrap()
            .iter()
            .any(|a| a.addr == IpAddr::from(TAP4))
    );
    assert!(ns.has_route("tapall0", "10.79.0.0/16"));
    // Silent: a non-blocking read has nothing.
    let mut bufs = vec![vec![0u8; 65535]; tap.batch_size()];
    let mut sizes = vec![0usize; bufs.len()];
    assert!(matches!(
        tap.try_read_packets(&mut bufs, &mut sizes, 0),
        Err(Error::WouldBlock)
    ));

    // Async: the kernel's ARP request for a neighbour is read as a frame, and an answer written back.
    let runtime = tun_system_tests::runtime(false);
    let tap = {
        let _inside = runtime.enter();
        tun::AsyncTun::new(tap).unwrap()
    };
    let pinger = ns
        .command("ping")
        .args(["-c", "1", "-w", "3", &PEER4.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let answered = Answered::default();
    runtime.block_on(async {
        let mut frame = vec![0u8; 65535];
        let asked = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let n = tap.recv(&mut frame).await.unwrap();
                if let Some(reply) = answer(&frame[..n], &answered) {
                    return reply;
                }
            }
        })
        .await
        .expect("an ARP request within 5 s");
        tap.send(&asked).await.unwrap();
    });
    assert_eq!(answered.arp.load(Ordering::Relaxed), 1);
    let mut pinger = pinger;
    let _ = pinger.wait();
    let neighbours = ns.ip(&["neigh", "show", "dev", "tapall0"]);
    assert!(
        neighbours.contains(&mac_text(PEER_MAC)),
        "the answer was not taken: {neighbours}"
    );

    // Persistent: the device outlives its fd, and a build without persistence takes it back.
    tap.into_inner().close().unwrap();
    assert!(ns.has_link("tapall0"));
    let again = ns.tun_reattach(builder().persist(false)).unwrap();
    assert_eq!(again.layer(), Layer::L2);
    again.close().unwrap();
    assert!(tun_system_tests::wait_until(Duration::from_secs(5), || !ns.has_link("tapall0")));
}

#[test]
#[ignore = "privileged: creates two TAP devices and a bridge in a network namespace"]
fn a_batch_for_a_tap_device_holds_a_tagged_frame_at_the_largest_mtu() {
    for offload in [false, true] {
        // A batch made for the device, and one made without it.
        a_tagged_frame_at_the_largest_mtu_is_read_whole(offload, |tap| {
            PacketBatch::for_device(tap)
        });
        a_tagged_frame_at_the_largest_mtu_is_read_whole(offload, |_| {
            PacketBatch::new(4, 0).unwrap()
        });
    }
}

/// A TAP device's MTU goes up to 65521 (its 14-byte Ethernet header counts against 65535), and a VLAN tag
/// comes on top: a packet at the MTU in a tagged frame is 65539 bytes. Written into one TAP device, the
/// bridge forwards it out of the other, where it is read.
fn a_tagged_frame_at_the_largest_mtu_is_read_whole(
    offload: bool,
    batch_for: fn(&Tun) -> PacketBatch,
) {
    const MTU: usize = 65521;
    let ns = NetNs::new();
    let tap = |name: &str| {
        ns.tun(
            Builder::new()
                .name(name)
                .layer(Layer::L2)
                .mtu(MTU as u32)
                .offload(offload)
                .up(true),
        )
        .unwrap()
    };
    let (into, out_of) = (tap("tapbig0"), tap("tapbig1"));
    ns.ip(&["link", "add", "brbig0", "type", "bridge"]);
    for port in ["tapbig0", "tapbig1"] {
        ns.ip(&["link", "set", port, "master", "brbig0"]);
    }
    ns.ip(&["link", "set", "brbig0", "up"]);
    let mut frame = Vec::with_capacity(MTU + 18);
    frame.extend_from_slice(&[0x02, 0, 0, 0x79, 0, 2]);
    frame.extend_from_slice(&PEER_MAC);
    frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    let packet = etherparse::PacketBuilder::ipv4([10, 79, 0, 1], [10, 79, 0, 2], 64).udp(1000, 9);
    let payload = vec![0x5a; MTU - 28];
    frame.extend_from_slice(&[0x08, 0x00]);
    packet.write(&mut frame, &payload).unwrap();
    assert_eq!(frame.len(), MTU + 18);
    let mut batch = batch_for(&out_of);
    let mut longest = 0;
    // Bounded: the bridge floods each frame written (the destination is unknown to it); other frames (the
    // kernel's own IPv6 chatter) come in between.
    for _ in 0..50 {
        into.send(&frame).unwrap();
        let read = batch.read_from(&out_of);
        assert!(read.is_ok(), "offload {offload}: {read:?}");
        longest = longest.max(batch.packets().map(<[u8]>::len).max().unwrap_or(0));
        if longest == frame.len() {
            break;
        }
    }
    assert_eq!(
        longest,
        frame.len(),
        "offload {offload}: the tagged frame at the MTU came through"
    );
}
