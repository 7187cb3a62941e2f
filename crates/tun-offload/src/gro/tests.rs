//! One test per coalescing rule.

use super::*;
use crate::VirtioNetHdr;
use crate::test_packets::{ACK, PSH, Spec, checksums_valid, pseudo, reference_sum};
use crate::virtio::{FLAG_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};

const OFF: usize = 12;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

/// A batch as a read leaves it: `OFF` bytes of room, then each packet, then room for a maximal merge.
fn bufs_of(packets: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<usize>) {
    let bufs = packets
        .iter()
        .map(|p| {
            let mut buf = vec![0xee; OFF + p.len().max(65535)];
            buf[OFF..OFF + p.len()].copy_from_slice(p);
            buf
        })
        .collect();
    (bufs, packets.iter().map(Vec::len).collect())
}

/// Plans `bufs` with `options` and returns the plan.
fn plan_of(bufs: &mut [Vec<u8>], sizes: &[usize], options: GroOptions) -> GroPlan {
    let mut table = GroTable::new();
    let mut plan = GroPlan::new();
    handle_gro(bufs, sizes, OFF, &mut table, options, &mut plan).unwrap();
    assert!(table.is_empty());
    plan
}

/// Each frame of `plan` as written: its virtio header and its packet.
fn written(bufs: &[Vec<u8>], plan: &GroPlan) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    let mut scratch = [0u8; FRAME_HEAD_MAX];
    plan.frames()
        .iter()
        .map(|frame| {
            let [head, rest] = frame.encode(&bufs[frame.buf], OFF, &mut scratch).unwrap();
            let mut packet = head[VirtioNetHdr::LEN..].to_vec();
            packet.extend_from_slice(rest);
            (VirtioNetHdr::decode(head).unwrap(), packet)
        })
        .collect()
}

fn options(udp: bool) -> GroOptions {
    GroOptions { tcp: true, udp }
}

/// Runs one batch and returns what would be written: each virtio header with its packet.
fn gro(packets: &[Vec<u8>], udp_gro: bool) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    let (mut bufs, sizes) = bufs_of(packets);
    let plan = plan_of(&mut bufs, &sizes, options(udp_gro));
    let out = written(&bufs, &plan);
    // Planning never changes a packet: each is still where it was, byte for byte.
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(&bufs[i][OFF..OFF + p.len()], &p[..], "packet {i} changed");
    }
    out
}

/// What the kernel does with a NEEDS_CSUM packet: sum from csum_start (seed included) and store the result.
fn finished(hdr: &VirtioNetHdr, packet: &[u8]) -> Vec<u8> {
    let mut p = packet.to_vec();
    if hdr.needs_csum() {
        let start = usize::from(hdr.csum_start);
        let at = start + usize::from(hdr.csum_offset);
        let c = !reference_sum(&p[start..], 0);
        p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Segments of one TCP stream: `sizes[i]` payload bytes each, in sequence.
fn stream(base: &Spec, sizes: &[usize]) -> Vec<Spec> {
    let mut seq = base.seq;
    sizes
        .iter()
        .map(|&len| {
            let spec = Spec {
                seq,
                payload: crate::test_packets::payload(seq as usize, len),
                ..base.clone()
            };
            seq = seq.wrapping_add(len as u32);
            spec
        })
        .collect()
}

/// The single packet that `specs` (consecutive segments) merge into.
fn merged(specs: &[Spec]) -> Vec<u8> {
    let mut spec = specs[0].clone();
    spec.payload = specs.iter().flat_map(|s| s.payload.clone()).collect();
    spec.flags = specs[0].flags & !PSH | specs.last().unwrap().flags & PSH;
    spec.build()
}

fn build(specs: &[Spec]) -> Vec<Vec<u8>> {
    specs.iter().map(Spec::build).collect()
}

/// Asserts the batch comes out as the original packets, each alone with a zero header.
fn assert_untouched(packets: &[Vec<u8>], udp_gro: bool) {
    let out = gro(packets, udp_gro);
    let want: Vec<(VirtioNetHdr, Vec<u8>)> = packets
        .iter()
        .map(|p| (VirtioNetHdr::default(), p.clone()))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn tcpv4_in_order_segments_append_into_one_packet() {
    let specs = stream(&Spec::tcp4(1000, 0), &[1448, 1448, 1448]);
    let out = gro(&build(&specs), false);
    assert_eq!(out.len(), 1);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}

#[test]
fn tcpv4_merged_packet_gets_a_gso_header() {
    let specs = stream(&Spec::tcp4(1000, 0), &[1448, 1448]);
    let (hdr, _) = &gro(&build(&specs), false)[0];
    let want = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 40,
        gso_size: 1448,
        csum_start: 20,
        csum_offset: 16,
    };
    assert_eq!(*hdr, want);
}

#[test]
fn tcpv6_merged_packet_gets_a_gso_header_and_payload_length() {
    let base = Spec {
        options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        ..Spec::tcp6(5, 0)
    };
    let specs = stream(&base, &[1428, 1428, 1000]);
    let out = gro(&build(&specs), false);
    let (hdr, packet) = &out[0];
    let want = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: GSO_TCPV6,
        hdr_len: 72,
        gso_size: 1428,
        csum_start: 40,
        csum_offset: 16,
    };
    assert_eq!(*hdr, want);
    assert_eq!(
        usize::from(u16::from_be_bytes([packet[4], packet[5]])),
        packet.len() - 40
    );
    assert_eq!(finished(hdr, packet), merged(&specs));
}

#[test]
fn merged_checksum_field_holds_the_folded_uninverted_pseudo_header_seed() {
    for base in [
        Spec::tcp4(0, 0),
        Spec::tcp6(0, 0),
        Spec::udp4(0),
        Spec::udp6(0),
    ] {
        let specs = stream(&base, &[1000, 1000, 500]);
        let out = gro(&build(&specs), true);
        let (hdr, packet) = &out[0];
        assert_eq!(out.len(), 1, "{base:?}");
        let at = usize::from(hdr.csum_start + hdr.csum_offset);
        let field = u16::from_be_bytes([packet[at], packet[at + 1]]);
        // The pseudo-header over the merged packet's addresses, protocol and *new* L4 length, folded.
        let want = reference_sum(&[], pseudo(packet));
        assert_eq!(field, want, "{base:?}");
        assert_ne!(field, !want);
        assert!(checksums_valid(&finished(hdr, packet)));
    }
}

#[test]
fn ipv4_total_length_and_header_checksum_are_rewritten() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    let (_, packet) = &gro(&build(&specs), false)[0];
    assert_eq!(
        usize::from(u16::from_be_bytes([packet[2], packet[3]])),
        packet.len()
    );
    assert_eq!(reference_sum(&packet[..20], 0), 0xffff);
}

#[test]
fn tcp_segment_before_the_held_packet_prepends() {
    let specs = stream(&Spec::tcp4(7, 0), &[1000, 1000, 1000]);
    let packets = build(&[specs[1].clone(), specs[2].clone(), specs[0].clone()]);
    let out = gro(&packets, false);
    assert_eq!(out.len(), 1);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}

#[test]
fn prepend_builds_the_merged_packet_in_the_segments_buffer_in_the_held_packets_frame() {
    let specs = stream(&Spec::tcp4(7, 0), &[1000, 1000]);
    let (mut bufs, sizes) = bufs_of(&build(&[specs[1].clone(), specs[0].clone()]));
    let plan = plan_of(&mut bufs, &sizes, options(false));
    assert_eq!(plan.frames().len(), 1);
    assert_eq!(plan.frames()[0].buf, 1);
    assert_eq!((plan.frame_of(0), plan.frame_of(1)), (Some(0), Some(0)));
    let out = written(&bufs, &plan);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}

#[test]
fn psh_segment_may_be_appended_last_and_the_merged_packet_carries_psh() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000, 1000]);
    specs[2].flags = ACK | PSH;
    let out = gro(&build(&specs), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1[33], ACK | PSH);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}

#[test]
fn nothing_appends_after_a_psh_segment() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    specs[0].flags = ACK | PSH;
    assert_untouched(&build(&specs), false);
}

#[test]
fn psh_segment_never_prepends() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    specs[0].flags = ACK | PSH;
    let packets = build(&[specs[1].clone(), specs[0].clone()]);
    assert_untouched(&packets, false);
}

#[test]
fn prepend_in_front_of_a_psh_segment_keeps_psh() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    specs[1].flags = ACK | PSH;
    let out = gro(&build(&[specs[1].clone(), specs[0].clone()]), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1[33], ACK | PSH);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}

#[test]
fn different_ack_numbers_are_different_flows() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    specs[1].ack += 1;
    assert_untouched(&build(&specs), false);
}

#[test]
fn different_ports_or_addresses_are_different_flows() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    for change in [
        (|s: &mut Spec| s.src_port += 1) as fn(&mut Spec),
        |s| s.dst_port += 1,
        |s| s.src_last += 1,
    ] {
        let mut second = specs[1].clone();
        change(&mut second);
        assert_untouched(&build(&[specs[0].clone(), second]), false);
    }
}

#[test]
fn ipv4_tos_ttl_and_df_must_agree() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    for change in [
        (|s: &mut Spec| s.tos = 4) as fn(&mut Spec),
        |s| s.tos = 1,
        |s| s.ttl = 63,
        |s| s.df = false,
    ] {
        let mut second = specs[1].clone();
        change(&mut second);
        assert_untouched(&build(&[specs[0].clone(), second]), false);
    }
}

#[test]
fn ipv4_identification_may_differ() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    specs[1].ident = 0x9999;
    assert_eq!(gro(&build(&specs), false).len(), 1);
}

#[test]
fn ipv6_traffic_class_hop_limit_and_flow_label_must_agree() {
    let specs = stream(&Spec::tcp6(0, 0), &[1000, 1000]);
    for change in [
        (|s: &mut Spec| s.tos = 4) as fn(&mut Spec),
        |s| s.ttl = 1,
        |s| s.flow_label = 0x12345,
    ] {
        let mut second = specs[1].clone();
        change(&mut second);
        assert_untouched(&build(&[specs[0].clone(), second]), false);
    }
}

#[test]
fn tcp_options_must_be_equal_byte_for_byte() {
    let base = Spec {
        options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        ..Spec::tcp4(0, 0)
    };
    let specs = stream(&base, &[1000, 1000]);
    let mut second = specs[1].clone();
    second.options[7] = 2;
    assert_untouched(&build(&[specs[0].clone(), second]), false);
}

#[test]
fn tcp_windows_must_be_equal() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    let second = Spec {
        window: 0xfffe,
        ..specs[1].clone()
    };
    assert_untouched(&build(&[specs[0].clone(), second]), false);
}

#[test]
fn tcp_header_lengths_must_be_equal() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    let mut second = specs[1].clone();
    second.options = vec![1, 1, 1, 1];
    assert_untouched(&build(&[specs[0].clone(), second]), false);
}

#[test]
fn only_ack_with_optional_psh_or_ece_is_a_candidate() {
    for flags in [
        SYN | ACK,
        FIN | ACK,
        RST | ACK,
        URG | ACK,
        CWR | ACK,
        0,
        PSH,
    ] {
        let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
        specs[0].flags = flags;
        specs[1].flags = flags;
        assert_untouched(&build(&specs), false);
    }
}

#[test]
fn ece_segments_merge_only_with_ece_segments() {
    let mut specs = stream(&Spec::tcp4(0, 0), &[1000, 1000, 1000]);
    for s in &mut specs {
        s.flags = ACK | ECE;
    }
    let out = gro(&build(&specs), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1[33], ACK | ECE);
    specs[1].flags = ACK;
    assert_eq!(gro(&build(&specs), false).len(), 3);
}

#[test]
fn segments_without_payload_are_not_candidates() {
    let specs = stream(&Spec::tcp4(0, 0), &[0, 0]);
    assert_untouched(&build(&specs), false);
}

#[test]
fn nothing_follows_a_smaller_segment() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 500, 500]);
    let out = gro(&build(&specs), false);
    assert_eq!(out.len(), 2);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs[..2]));
    assert_eq!(out[1].1, specs[2].build());
}

#[test]
fn a_larger_segment_never_follows_a_smaller_one() {
    let specs = stream(&Spec::tcp4(0, 0), &[500, 1000]);
    assert_untouched(&build(&specs), false);
}

#[test]
fn larger_segment_prepends_to_a_single_smaller_one_and_sets_gso_size() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 500]);
    let out = gro(&build(&[specs[1].clone(), specs[0].clone()]), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.gso_size, 1000);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}

#[test]
fn larger_segment_never_prepends_to_several() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 500, 500]);
    let out = gro(
        &build(&[specs[1].clone(), specs[2].clone(), specs[0].clone()]),
        false,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0.gso_size, 500);
    assert_eq!(out[1].1, specs[0].build());
}

#[test]
fn smaller_segment_never_prepends() {
    let specs = stream(&Spec::tcp4(0, 0), &[500, 1000]);
    assert_untouched(&build(&[specs[1].clone(), specs[0].clone()]), false);
}

#[test]
fn a_segment_joins_an_older_held_packet_of_its_flow() {
    // A gap holds the fourth segment apart; the second then finds the first (older) held packet.
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000, 1000, 1000]);
    let packets = build(&[specs[0].clone(), specs[3].clone(), specs[1].clone()]);
    let out = gro(&packets, false);
    assert_eq!(out.len(), 2);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs[..2]));
    assert_eq!(out[1], (VirtioNetHdr::default(), packets[1].clone()));
}

#[test]
fn ipv4_with_options_is_not_a_candidate() {
    let mut packets = build(&stream(&Spec::tcp4(0, 0), &[1000, 1000]));
    for p in &mut packets {
        // Insert a 4-byte NOP option list into the IP header, fix IHL, length and checksum.
        let mut q = p[..20].to_vec();
        q.extend_from_slice(&[1, 1, 1, 0]);
        q.extend_from_slice(&p[20..]);
        q[0] = 0x46;
        let len = q.len() as u16;
        q[2..4].copy_from_slice(&len.to_be_bytes());
        q[10..12].copy_from_slice(&[0, 0]);
        let c = !reference_sum(&q[..24], 0);
        q[10..12].copy_from_slice(&c.to_be_bytes());
        *p = q;
    }
    assert_untouched(&packets, false);
}

#[test]
fn ipv4_fragments_are_not_candidates() {
    for (flag_byte, offset_byte) in [(0x20u8, 0u8), (0x00, 1)] {
        let mut packets = build(&stream(
            &Spec {
                df: false,
                ..Spec::tcp4(0, 0)
            },
            &[1000, 1000],
        ));
        for p in &mut packets {
            p[6] = flag_byte;
            p[7] = offset_byte;
            p[10..12].copy_from_slice(&[0, 0]);
            let c = !reference_sum(&p[..20], 0);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        assert_untouched(&packets, false);
    }
}

#[test]
fn ipv6_with_extension_headers_is_not_a_candidate() {
    let mut packets = build(&stream(&Spec::tcp6(0, 0), &[1000, 1000]));
    for p in &mut packets {
        let mut q = p[..40].to_vec();
        q[6] = 60;
        q.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        q.extend_from_slice(&p[40..]);
        let payload_len = (q.len() - 40) as u16;
        q[4..6].copy_from_slice(&payload_len.to_be_bytes());
        *p = q;
    }
    assert_untouched(&packets, false);
}

#[test]
fn packet_over_65535_bytes_is_not_a_candidate() {
    // IPv6 can describe 40 + 65535 bytes; such a packet is never coalesced.
    let big = stream(&Spec::udp6(0), &[65535 - 8]);
    let small = Spec {
        payload: crate::test_packets::payload(0, 100),
        ..big[0].clone()
    };
    let packets = build(&[big[0].clone(), small]);
    assert_eq!(packets[0].len(), 65575);
    assert_untouched(&packets, true);
}

#[test]
fn ip_length_field_must_match_the_buffer() {
    let mut packets = build(&stream(&Spec::tcp6(0, 0), &[1000, 1000]));
    for p in &mut packets {
        p.push(0);
    }
    assert_untouched(&packets, false);
}

#[test]
fn ipv4_bad_header_checksum_is_not_a_candidate() {
    let mut packets = build(&stream(&Spec::tcp4(0, 0), &[1000, 1000]));
    packets[1][11] ^= 1;
    assert_untouched(&packets, false);
}

#[test]
fn packet_with_a_bad_transport_checksum_is_written_alone_unchanged() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000, 1000]);
    let mut packets = build(&specs);
    packets[2][100] ^= 0xff;
    let out = gro(&packets, false);
    assert_eq!(out.len(), 2);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs[..2]));
    assert_eq!(out[1], (VirtioNetHdr::default(), packets[2].clone()));
}

#[test]
fn held_packet_with_a_bad_transport_checksum_is_never_merged_with() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000, 1000]);
    let mut packets = build(&specs);
    packets[0][100] ^= 0xff;
    let out = gro(&packets, false);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], (VirtioNetHdr::default(), packets[0].clone()));
    assert_eq!(finished(&out[1].0, &out[1].1), merged(&specs[1..]));
}

#[test]
fn merged_packet_never_exceeds_65535_bytes() {
    let specs = stream(&Spec::tcp4(0, 0), &[1460; 50]);
    let out = gro(&build(&specs), false);
    assert!(out.iter().all(|(_, p)| p.len() <= 65535));
    // 44 segments of 1460 fit (64280 + 40 bytes); the 45th would not.
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1.len(), 40 + 44 * 1460);
}

#[test]
fn merging_grows_a_packet_only_within_its_buffer() {
    let specs = stream(&Spec::tcp4(0, 0), &[1000, 1000, 1000]);
    let packets = build(&specs);
    let mut bufs: Vec<Vec<u8>> = packets
        .iter()
        .map(|p| {
            let mut buf = vec![0u8; OFF + 2040];
            buf[OFF..OFF + p.len()].copy_from_slice(p);
            buf
        })
        .collect();
    let sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
    let plan = plan_of(&mut bufs, &sizes, options(false));
    // The first two fit in 2040 bytes; the third would not and is held apart.
    let fronts: Vec<usize> = plan.frames().iter().map(|f| f.buf).collect();
    assert_eq!(fronts, [0, 2]);
    assert!(bufs.iter().all(|b| b.len() == OFF + 2040));
    let out = written(&bufs, &plan);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs[..2]));
    assert_eq!(plan.members(0).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(plan.members(1).collect::<Vec<_>>(), [2]);
}

#[test]
fn tcp_is_passed_through_when_tcp_coalescing_is_off() {
    let tcp = build(&stream(&Spec::tcp4(0, 0), &[1000, 1000]));
    let udp = stream(&Spec::udp4(0), &[1000, 1000]);
    let mut packets = tcp.clone();
    packets.extend(build(&udp));
    let (mut bufs, sizes) = bufs_of(&packets);
    let plan = plan_of(
        &mut bufs,
        &sizes,
        GroOptions {
            tcp: false,
            udp: true,
        },
    );
    let out = written(&bufs, &plan);
    assert_eq!(out.len(), 3);
    for (i, want) in tcp.iter().enumerate() {
        assert_eq!(out[i], (VirtioNetHdr::default(), want.clone()));
    }
    assert_eq!(finished(&out[2].0, &out[2].1), merged(&udp));
}

#[test]
fn udp_is_passed_through_when_udp_gro_is_off() {
    assert_untouched(&build(&stream(&Spec::udp4(0), &[1000, 1000])), false);
}

#[test]
fn udp_datagrams_of_a_flow_append_with_a_gso_header() {
    for (base, gso_type, csum_start) in [
        (Spec::udp4(0), GSO_UDP_L4, 20),
        (Spec::udp6(0), GSO_UDP_L4, 40),
    ] {
        let specs = stream(&base, &[1200, 1200, 700]);
        let out = gro(&build(&specs), true);
        assert_eq!(out.len(), 1);
        let want = VirtioNetHdr {
            flags: FLAG_NEEDS_CSUM,
            gso_type,
            hdr_len: csum_start + 8,
            gso_size: 1200,
            csum_start,
            csum_offset: 6,
        };
        assert_eq!(out[0].0, want);
        let p = &out[0].1;
        let l4 = usize::from(csum_start);
        assert_eq!(
            usize::from(u16::from_be_bytes([p[l4 + 4], p[l4 + 5]])),
            p.len() - l4
        );
        assert_eq!(finished(&out[0].0, p), merged(&specs));
    }
}

#[test]
fn udp_datagram_is_only_compared_with_the_newest_held_packet() {
    let specs = stream(&Spec::udp4(0), &[1000, 1000, 1000]);
    let mut second = specs[1].clone();
    second.ttl = 9;
    // The third agrees with the first, but the second (apart) is newer: joining the first would reorder.
    let packets = build(&[specs[0].clone(), second.clone(), specs[2].clone()]);
    assert_untouched(&packets, true);
}

/// `datagram` (IPv4) turned into a fragment: `first` keeps offset 0 with more-fragments set, otherwise the
/// offset is non-zero (and the payload no longer starts with a UDP header, as on the wire).
fn ipv4_fragment(datagram: &[u8], first: bool) -> Vec<u8> {
    let mut p = datagram.to_vec();
    p[6] = if first { 0x20 } else { 0x00 };
    p[7] = if first { 0 } else { 0xb9 };
    p[10..12].copy_from_slice(&[0, 0]);
    let c = !reference_sum(&p[..20], 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

#[test]
fn an_ipv4_fragment_between_two_datagrams_keeps_the_later_one_behind_it() {
    let specs = stream(&Spec::udp4(0), &[1000, 1000, 1000]);
    for first in [true, false] {
        let built = build(&specs);
        let packets = vec![
            built[0].clone(),
            ipv4_fragment(&built[1], first),
            built[2].clone(),
        ];
        // Joining the third to the first would overtake the fragment, which may be of their flow.
        assert_untouched(&packets, true);
    }
}

#[test]
fn an_ipv6_fragment_between_two_datagrams_keeps_the_later_one_behind_it() {
    let built = build(&stream(&Spec::udp6(0), &[1000, 1000, 1000]));
    let mut fragment = built[1][..40].to_vec();
    fragment[6] = 44;
    fragment.extend_from_slice(&[17, 0, 0x05, 0x41, 0, 0, 0, 7]);
    fragment.extend_from_slice(&built[1][40..]);
    let payload_len = (fragment.len() - 40) as u16;
    fragment[4..6].copy_from_slice(&payload_len.to_be_bytes());
    let packets = vec![built[0].clone(), fragment, built[2].clone()];
    assert_untouched(&packets, true);
}

#[test]
fn a_fragment_between_other_addresses_does_not_end_a_flow() {
    let specs = stream(&Spec::udp4(0), &[1000, 1000]);
    let other = Spec {
        src_last: 9,
        ..Spec::udp4(1000)
    };
    let fragment = ipv4_fragment(&other.build(), false);
    let packets = vec![specs[0].build(), fragment.clone(), specs[1].build()];
    let out = gro(&packets, true);
    assert_eq!(out.len(), 2);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
    assert_eq!(out[1], (VirtioNetHdr::default(), fragment));
}

#[test]
fn nothing_follows_a_smaller_udp_datagram() {
    let specs = stream(&Spec::udp6(0), &[1000, 400, 400]);
    let out = gro(&build(&specs), true);
    assert_eq!(out.len(), 2);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs[..2]));
}

#[test]
fn a_larger_udp_datagram_never_follows_a_smaller_one() {
    assert_untouched(&build(&stream(&Spec::udp4(0), &[400, 1000])), true);
}

#[test]
fn udp_merges_stop_at_udp_max_segments() {
    let specs = stream(&Spec::udp4(0), &[100; UDP_MAX_SEGMENTS + 1]);
    let out = gro(&build(&specs), true);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1.len(), 28 + UDP_MAX_SEGMENTS * 100);
    assert_eq!(out[1].1, specs[UDP_MAX_SEGMENTS].build());
}

#[test]
fn ipv4_udp_without_checksum_is_not_a_candidate() {
    let mut packets = build(&stream(&Spec::udp4(0), &[1000, 1000]));
    for p in &mut packets {
        p[26..28].copy_from_slice(&[0, 0]);
    }
    assert_untouched(&packets, true);
}

#[test]
fn udp_datagram_with_a_bad_checksum_holds_its_place() {
    let specs = stream(&Spec::udp4(0), &[1000, 1000, 1000]);
    let mut packets = build(&specs);
    packets[1][60] ^= 0xff;
    // The third must not join the first: it would overtake the second.
    assert_untouched(&packets, true);
}

#[test]
fn udp_length_must_match_the_packet() {
    let mut packets = build(&stream(&Spec::udp4(0), &[1000, 1000]));
    for p in &mut packets {
        p[25] ^= 1;
    }
    assert_untouched(&packets, true);
}

#[test]
fn tcp_and_udp_of_mixed_flows_keep_their_order() {
    let a = stream(&Spec::tcp4(0, 0), &[1000, 1000]);
    let b = stream(
        &Spec {
            src_port: 1,
            ..Spec::udp6(0)
        },
        &[500, 500],
    );
    let icmp = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0,
    ];
    let packets = vec![
        a[0].build(),
        b[0].build(),
        icmp.clone(),
        a[1].build(),
        b[1].build(),
    ];
    let out = gro(&packets, true);
    assert_eq!(out.len(), 3);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&a));
    assert_eq!(finished(&out[1].0, &out[1].1), merged(&b));
    assert_eq!(out[2], (VirtioNetHdr::default(), icmp));
}

#[test]
fn table_is_empty_on_return_and_memory_is_reused() {
    let specs: Vec<Spec> = (0..32)
        .map(|i| Spec {
            src_port: i,
            ..Spec::tcp4(0, 1000)
        })
        .collect();
    let packets = build(&specs);
    let mut table = GroTable::new();
    let mut plan = GroPlan::new();
    let (mut bufs, sizes) = bufs_of(&packets);
    handle_gro(&mut bufs, &sizes, OFF, &mut table, options(true), &mut plan).unwrap();
    let warmed = (table.capacity(), plan.frames().len());
    assert!(warmed.0 >= 32);
    for _ in 0..3 {
        let (mut bufs, sizes) = bufs_of(&packets);
        handle_gro(&mut bufs, &sizes, OFF, &mut table, options(true), &mut plan).unwrap();
        assert!(table.is_empty());
        assert_eq!((table.capacity(), plan.frames().len()), warmed);
    }
}

#[test]
fn the_plan_is_started_anew_for_each_batch() {
    let mut plan = GroPlan::new();
    let mut table = GroTable::new();
    let (mut bufs, sizes) = bufs_of(&build(&stream(&Spec::tcp4(0, 0), &[10; 5])));
    handle_gro(&mut bufs, &sizes, OFF, &mut table, options(true), &mut plan).unwrap();
    let (mut bufs, sizes) = bufs_of(&build(&[Spec::udp4(10)]));
    handle_gro(&mut bufs, &sizes, OFF, &mut table, options(true), &mut plan).unwrap();
    assert_eq!(plan.frames().len(), 1);
    assert_eq!((plan.frame_of(0), plan.frame_of(1)), (Some(0), None));
}

#[test]
fn fewer_sizes_than_buffers_is_an_error() {
    let (mut bufs, _) = bufs_of(&build(&[Spec::tcp4(0, 10)]));
    let err = handle_gro(
        &mut bufs,
        &[],
        OFF,
        &mut GroTable::new(),
        options(true),
        &mut GroPlan::new(),
    )
    .unwrap_err();
    assert!(matches!(err, OffloadError::InvalidArgument(_)));
}

#[test]
fn a_size_past_its_buffer_is_planned_alone_and_refused_when_encoded() {
    let (mut bufs, mut sizes) = bufs_of(&build(&stream(&Spec::tcp4(0, 0), &[100, 100, 100])));
    bufs[1].truncate(OFF + 50);
    let plan = plan_of(&mut bufs, &sizes, options(true));
    assert_eq!(
        plan.frames().len(),
        3,
        "nothing merges across the bad packet"
    );
    let mut scratch = [0u8; FRAME_HEAD_MAX];
    let err = plan.frames()[1]
        .encode(&bufs[1], OFF, &mut scratch)
        .unwrap_err();
    assert!(
        matches!(err, OffloadError::BufferTooSmall { index: 1, .. }),
        "{err:?}"
    );
    // An offset past the end of every buffer: all alone, none panics.
    sizes.iter_mut().for_each(|s| *s = usize::MAX);
    let plan = plan_of(&mut bufs, &sizes, options(true));
    assert_eq!(plan.frames().len(), 3);
}

#[test]
fn empty_and_garbage_packets_pass_through_with_a_zero_header() {
    let packets = vec![Vec::new(), vec![0x45], vec![0x60; 39], vec![0xff; 100]];
    assert_untouched(&packets, true);
}

#[test]
fn every_corruption_of_a_batch_is_handled_without_panic() {
    let packets = build(&stream(&Spec::tcp4(0, 0), &[100, 100, 100]));
    for at in 0..60 {
        for bits in [0x01u8, 0x0f, 0x80, 0xff] {
            let mut corrupt = packets.clone();
            corrupt[1][at] ^= bits;
            let out = gro(&corrupt, true);
            assert!((1..=3).contains(&out.len()));
        }
    }
    for len in 0..packets[1].len() {
        let mut cut = packets.clone();
        cut[1].truncate(len);
        gro(&cut, true);
    }
}

#[test]
fn many_small_segments_merge_into_one_packet_up_to_its_length_limit() {
    let specs = stream(&Spec::tcp4(0, 0), &[10; 2000]);
    let out = gro(&build(&specs), false);
    // 40 bytes of headers and 10 of payload each: 6549 segments would fill 65535 bytes.
    assert_eq!(out.len(), 1);
    assert_eq!(finished(&out[0].0, &out[0].1), merged(&specs));
}
