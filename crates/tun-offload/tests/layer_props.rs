//! The L2 (TAP) framing: an Ethernet frame is split and coalesced as its IP packet is, the Ethernet header
//! (tags included) copied in front of every frame; bad frames are errors of their own or pass alone.

#[path = "support/strategies.rs"]
mod strategies;
mod support;

use proptest::prelude::*;
use support::batch::{coalesce_with, coalesce_with_layer};
use support::packets::{self, Flags, Flow, HdrLen, Seg};
use tun_offload::virtio::{FLAG_NEEDS_CSUM, GSO_NONE};
use tun_offload::{
    GroOptions, GroPlan, GroTable, Layer, MAX_PACKET, OffloadError, SplitState, VirtioNetHdr,
    gso_split_with_layer, handle_gro_with_layer,
};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const BOTH: GroOptions = GroOptions {
    tcp: true,
    udp: true,
};

/// Splits `read` of a device of `layer` into 64 buffers of `len` bytes.
fn split(read: &[u8], layer: Layer, len: usize) -> Result<Vec<Vec<u8>>, OffloadError> {
    let mut read = read.to_vec();
    let mut bufs = vec![vec![0u8; len]; 64];
    let mut sizes = vec![0usize; 64];
    let n = gso_split_with_layer(&mut read, layer, &mut bufs, &mut sizes, 0)?;
    Ok(bufs
        .into_iter()
        .zip(sizes)
        .take(n)
        .map(|(mut b, s)| {
            b.truncate(s);
            b
        })
        .collect())
}

proptest! {
    #![proptest_config(config(96))]

    /// A TAP super-frame splits into the TUN super-packet's segments, each with the super-frame's Ethernet
    /// header (and its tags) in front.
    #[test]
    fn an_l2_split_is_the_l3_split_with_the_ethernet_header_in_front(
        (flow, (len, gso), hdr_len) in strategies::flow().prop_flat_map(|f| {
            let s = strategies::sizes(&f, 60);
            (Just(f), s, strategies::hdr_len())
        }),
        seq in any::<u32>(),
        tags in 0usize..3,
        salt in any::<u32>(),
    ) {
        let data = packets::payload(len, salt);
        let seg = Seg { seq, ip_id: 7, flags: Flags::ACK_PSH };
        let read = packets::super_packet(&flow, seg, &data, gso, hdr_len, false);
        let link = packets::link_header(tags, &read[VirtioNetHdr::LEN..]);
        let framed = packets::framed_read(&read, &link).expect("a super-packet has a header and a packet");
        let l3 = split(&read, Layer::L3, MAX_PACKET).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let l2 = split(&framed, Layer::L2, MAX_PACKET + link.len())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(l2.len(), l3.len());
        for (frame, packet) in l2.iter().zip(&l3) {
            prop_assert_eq!(&frame[..link.len()], &link[..]);
            prop_assert_eq!(&frame[link.len()..], &packet[..]);
        }
    }

    /// A TAP batch coalesces as the TUN batch of its packets: the same frames, each the Ethernet header in
    /// front of the TUN frame's packet, with `csum_start` and `hdr_len` counting from the frame's start.
    #[test]
    fn l2_coalescing_is_l3_coalescing_with_the_ethernet_header_in_front(
        flows in prop::collection::vec(strategies::flow(), 1..4),
        counts in prop::collection::vec(1usize..12, 4),
        gso in prop_oneof![Just(1448u16), Just(1232), 100u16..1400],
        tags in 0usize..3,
        interleave in any::<bool>(),
    ) {
        let mut bursts: Vec<Vec<Vec<u8>>> = flows
            .iter()
            .zip(&counts)
            .enumerate()
            .map(|(i, (flow, &count))| {
                let gso = gso.min(flow.max_payload() as u16);
                packets::burst(flow, count, gso, i as u32)
            })
            .collect();
        let mut pkts = Vec::new();
        while bursts.iter().any(|b| !b.is_empty()) {
            for burst in bursts.iter_mut().filter(|b| !b.is_empty()) {
                let take = if interleave { 1 } else { burst.len() };
                pkts.extend(burst.drain(..take));
            }
        }
        let links: Vec<Vec<u8>> = pkts.iter().map(|p| packets::link_header(tags, p)).collect();
        let frames: Vec<Vec<u8>> = pkts.iter().zip(&links).map(|(p, l)| [&l[..], p].concat()).collect();
        let offset = VirtioNetHdr::LEN;
        let l3 = coalesce_with(&pkts, offset, &mut GroTable::new(), BOTH)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let l2 = coalesce_with_layer(&frames, offset, &mut GroTable::new(), BOTH, Layer::L2)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(l3.len() < pkts.len() || pkts.len() == flows.len(), "something coalesced");
        prop_assert_eq!(l2.len(), l3.len());
        for ((buf2, wire2), (buf3, wire3)) in l2.iter().zip(&l3) {
            prop_assert_eq!(buf2, buf3);
            prop_assert_eq!(wire2, &packets::framed_wire(wire3, &links[*buf3]));
        }
    }
}

/// A `GSO_NONE` read of `frame` with no checksum to finish.
fn plain_read(frame: &[u8]) -> Vec<u8> {
    [&VirtioNetHdr::default().to_bytes()[..], frame].concat()
}

/// A TCP/IPv4 super-frame of 3000 payload bytes (gso 1000) behind `link`.
fn super_frame(link: &[u8]) -> (Vec<u8>, VirtioNetHdr) {
    super_frame_of(false, link)
}

/// [`super_frame`] over IPv6 with `v6`.
fn super_frame_of(v6: bool, link: &[u8]) -> (Vec<u8>, VirtioNetHdr) {
    let flow = Flow::simple(v6, false);
    let read = packets::super_packet(
        &flow,
        Seg::FIRST,
        &packets::payload(3000, 1),
        1000,
        HdrLen::Exact,
        false,
    );
    let framed = packets::framed_read(&read, link).unwrap();
    let hdr = VirtioNetHdr::decode(&framed).unwrap();
    (framed, hdr)
}

#[test]
fn a_frame_shorter_than_an_ethernet_header_is_too_short() {
    for len in 1..14 {
        let err = SplitState::with_layer(&plain_read(&[0xaa; 13][..len]), Layer::L2).unwrap_err();
        assert!(
            matches!(err, OffloadError::TooShort { need: 14, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn frames_that_are_not_ip_pass_through_whole() {
    // ARP, and an IPv4 EtherType over bytes that are no IP packet: without GSO nothing is parsed.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0x5a; 28]);
    let mut junk = arp.clone();
    junk[12..14].copy_from_slice(&[0x08, 0x00]);
    for frame in [arp, junk] {
        let out = split(&plain_read(&frame), Layer::L2, 1600).unwrap();
        assert_eq!(out, vec![frame]);
    }
}

#[test]
fn a_vlan_tag_with_nothing_after_it_is_too_short_for_a_super_frame() {
    let (framed, _) = super_frame(&packets::link_header(0, &[0x45]));
    // The EtherType turned into a VLAN TPID, and the frame cut right after the tag's first two bytes.
    let mut cut = framed[..VirtioNetHdr::LEN + 16].to_vec();
    cut[VirtioNetHdr::LEN + 12..VirtioNetHdr::LEN + 14].copy_from_slice(&[0x81, 0x00]);
    let err = SplitState::with_layer(&cut, Layer::L2).unwrap_err();
    assert!(matches!(err, OffloadError::TooShort { .. }), "{err:?}");
    // Without GSO the kernel would hand it over as it is, and so do we.
    let whole = plain_read(&cut[VirtioNetHdr::LEN..]);
    assert_eq!(
        split(&whole, Layer::L2, 64).unwrap(),
        vec![cut[VirtioNetHdr::LEN..].to_vec()]
    );
}

#[test]
fn an_ipv4_ethertype_over_an_ipv6_super_packet_is_malformed() {
    let (framed, _) = super_frame_of(true, &packets::link_header(1, &[0x45]));
    let err = SplitState::with_layer(&framed, Layer::L2).unwrap_err();
    assert!(matches!(err, OffloadError::Malformed(_)), "{err:?}");
}

#[test]
fn a_csum_start_inside_the_ethernet_header_is_malformed() {
    let link = packets::link_header(0, &[0x45]);
    let (framed, hdr) = super_frame(&link);
    for csum_start in [0, 6, 13] {
        let mut bad = framed.clone();
        VirtioNetHdr { csum_start, ..hdr }.encode(&mut bad).unwrap();
        let err = SplitState::with_layer(&bad, Layer::L2).unwrap_err();
        assert!(
            matches!(err, OffloadError::Malformed(_)),
            "{csum_start}: {err:?}"
        );
    }
    // The same for a checksum to finish without GSO.
    let mut plain = framed.clone();
    VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: GSO_NONE,
        gso_size: 0,
        hdr_len: 0,
        csum_start: 10,
        csum_offset: 16,
    }
    .encode(&mut plain)
    .unwrap();
    let err = SplitState::with_layer(&plain, Layer::L2).unwrap_err();
    assert!(matches!(err, OffloadError::Malformed(_)), "{err:?}");
}

/// Coalesces `frames` on L2 and returns, per frame written, the packets of the batch it carries.
fn plan_of(frames: &[Vec<u8>]) -> Vec<Vec<usize>> {
    let mut bufs: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut b = f.clone();
            b.resize(MAX_PACKET + 64, 0);
            b
        })
        .collect();
    let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
    let mut plan = GroPlan::new();
    handle_gro_with_layer(
        &mut bufs,
        &sizes,
        0,
        Layer::L2,
        &mut GroTable::new(),
        BOTH,
        &mut plan,
    )
    .unwrap();
    (0..plan.frames().len())
        .map(|k| plan.members(k).collect())
        .collect()
}

#[test]
fn bad_frames_pass_alone_and_the_rest_of_the_batch_coalesces() {
    let flow = Flow::simple(false, false);
    let segs = packets::burst(&flow, 4, 1000, 3);
    let link = packets::link_header(1, &segs[0]);
    let good = |i: usize| [&link[..], &segs[i][..]].concat();
    // The IPv4 EtherType of `link` over an IPv6 packet.
    let v6 = packets::burst(&Flow::simple(true, false), 1, 1000, 3);
    let v6_behind_v4 = [&link[..], &v6[0][..]].concat();
    let vlan_cut = {
        let mut f = link[..16].to_vec();
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f
    };
    let frames = vec![
        good(0),
        vec![0xaa; 9],
        good(1),
        vlan_cut,
        good(2),
        v6_behind_v4,
        good(3),
    ];
    assert_eq!(
        plan_of(&frames),
        vec![vec![0, 2, 4, 6], vec![1], vec![3], vec![5]]
    );
}

#[test]
fn frames_of_one_flow_with_other_ethernet_headers_are_not_merged() {
    let flow = Flow::simple(false, false);
    let segs = packets::burst(&flow, 4, 1000, 3);
    let link = packets::link_header(0, &segs[0]);
    let mut other_vlan = packets::link_header(1, &segs[0]);
    other_vlan[15] = 0x42;
    let mut other_host = link.clone();
    other_host[5] = 0xcc;
    let frames = vec![
        [&link[..], &segs[0][..]].concat(),
        [&other_vlan[..], &segs[1][..]].concat(),
        [&link[..], &segs[1][..]].concat(),
        [&other_host[..], &segs[2][..]].concat(),
        [&link[..], &segs[2][..]].concat(),
    ];
    assert_eq!(plan_of(&frames), vec![vec![0, 2, 4], vec![1], vec![3]]);
}
