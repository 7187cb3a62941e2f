//! One test per splitting rule.

use super::*;
use crate::test_packets::{ACK, PSH, Spec, checksums_valid, payload};
use crate::virtio::{FLAG_NEEDS_CSUM, GSO_UDP};

const FIN: u8 = 0x01;
const CWR: u8 = 0x80;

/// Splits `read` into fresh 2 KB buffers and returns the packets.
fn split(read: &[u8]) -> Vec<Vec<u8>> {
    let mut read = read.to_vec();
    let mut bufs = vec![vec![0u8; 2048]; 128];
    let mut sizes = vec![0usize; 128];
    let n = gso_split(&mut read, &mut bufs, &mut sizes, 0).expect("valid read");
    bufs.iter()
        .zip(&sizes)
        .take(n)
        .map(|(b, &s)| b[..s].to_vec())
        .collect()
}

fn u16_at(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(p[at..at + 4].try_into().unwrap())
}

fn error_of(read: &[u8]) -> OffloadError {
    SplitState::new(read).expect_err("the read must be rejected")
}

fn with_hdr(read: &[u8], f: impl FnOnce(&mut VirtioNetHdr)) -> Vec<u8> {
    let mut read = read.to_vec();
    let mut hdr = VirtioNetHdr::decode(&read).unwrap();
    f(&mut hdr);
    hdr.encode(&mut read).unwrap();
    read
}

fn plain_read(packet: &[u8], hdr: VirtioNetHdr) -> Vec<u8> {
    let mut read = hdr.to_bytes().to_vec();
    read.extend_from_slice(packet);
    read
}

#[test]
fn gso_none_without_needs_csum_passes_through_unchanged() {
    let packet = Spec::tcp4(7, 100).build();
    let out = split(&plain_read(&packet, VirtioNetHdr::default()));
    assert_eq!(out, vec![packet]);
}

#[test]
fn gso_none_with_needs_csum_finishes_the_checksum_from_the_seed() {
    let spec = Spec {
        flags: ACK | PSH,
        ..Spec::tcp4(7, 101)
    };
    let want = spec.build();
    let read = spec.super_read(1448);
    // A kernel-style CHECKSUM_PARTIAL packet: the field holds the seed, gso_type none.
    let read = with_hdr(&read, |h| {
        h.gso_type = GSO_NONE;
        h.gso_size = 0;
    });
    assert_ne!(&read[10..], &want[..]);
    assert_eq!(split(&read), vec![want]);
}

#[test]
fn gso_none_checksum_field_beyond_the_packet_is_an_error() {
    let packet = Spec::udp4(4).build();
    let hdr = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        csum_start: 20,
        csum_offset: 11,
        ..Default::default()
    };
    assert!(matches!(
        error_of(&plain_read(&packet, hdr)),
        OffloadError::Malformed(_)
    ));
}

#[test]
fn read_shorter_than_the_virtio_header_is_an_error() {
    assert!(matches!(
        error_of(&[0u8; 9]),
        OffloadError::TooShort {
            need: 10,
            have: 9,
            ..
        }
    ));
}

#[test]
fn read_without_a_packet_is_an_error() {
    assert!(matches!(
        error_of(&[0u8; 10]),
        OffloadError::TooShort { .. }
    ));
}

#[test]
fn tcpv4_segments_carry_the_gso_size_payload_and_a_smaller_last() {
    let out = split(&Spec::tcp4(1000, 3 * 1448 + 100).super_read(1448));
    let lens: Vec<usize> = out.iter().map(|p| p.len() - 40).collect();
    assert_eq!(lens, [1448, 1448, 1448, 100]);
}

#[test]
fn tcpv4_segment_total_length_is_rewritten() {
    for p in split(&Spec::tcp4(0, 3000).super_read(1448)) {
        assert_eq!(usize::from(u16_at(&p, 2)), p.len());
    }
}

#[test]
fn ipv4_ids_count_up_from_the_first_and_wrap() {
    let spec = Spec {
        ident: 0xfffe,
        ..Spec::tcp4(0, 4 * 1000)
    };
    let ids: Vec<u16> = split(&spec.super_read(1000))
        .iter()
        .map(|p| u16_at(p, 4))
        .collect();
    assert_eq!(ids, [0xfffe, 0xffff, 0, 1]);
}

#[test]
fn every_segment_checksum_verifies() {
    for spec in [
        Spec::tcp4(5, 5000),
        Spec::tcp6(5, 5000),
        Spec::udp4(5000),
        Spec::udp6(5000),
    ] {
        for p in split(&spec.super_read(1300)) {
            assert!(checksums_valid(&p), "{spec:?}");
        }
    }
}

#[test]
fn tcp_sequence_numbers_advance_by_gso_size_and_wrap() {
    let first = u32::MAX - 1000;
    let seqs: Vec<u32> = split(&Spec::tcp4(first, 3000).super_read(1000))
        .iter()
        .map(|p| u32_at(p, 24))
        .collect();
    assert_eq!(
        seqs,
        [first, first.wrapping_add(1000), first.wrapping_add(2000)]
    );
}

#[test]
fn fin_and_psh_only_on_the_last_segment() {
    let spec = Spec {
        flags: ACK | PSH | FIN,
        ..Spec::tcp4(0, 3000)
    };
    let flags: Vec<u8> = split(&spec.super_read(1000))
        .iter()
        .map(|p| p[33])
        .collect();
    assert_eq!(flags, [ACK, ACK, ACK | PSH | FIN]);
}

#[test]
fn cwr_only_on_the_first_segment_when_gso_ecn_is_set() {
    let spec = Spec {
        flags: ACK | PSH | CWR,
        ..Spec::tcp4(0, 3000)
    };
    let read = with_hdr(&spec.super_read(1000), |h| h.gso_type |= GSO_ECN);
    let flags: Vec<u8> = split(&read).iter().map(|p| p[33]).collect();
    assert_eq!(flags, [ACK | CWR, ACK, ACK | PSH]);
}

#[test]
fn cwr_is_left_alone_without_gso_ecn() {
    // Without the ECN bit the sender owns the flag (accurate ECN counts with it): every segment keeps it.
    let spec = Spec {
        flags: ACK | CWR,
        ..Spec::tcp4(0, 3000)
    };
    let flags: Vec<u8> = split(&spec.super_read(1000))
        .iter()
        .map(|p| p[33])
        .collect();
    assert_eq!(flags, [ACK | CWR; 3]);
}

#[test]
fn segment_payloads_concatenate_to_the_original() {
    for spec in [
        Spec::tcp4(9, 7777),
        Spec::tcp6(9, 7777),
        Spec::udp4(7777),
        Spec::udp6(7777),
    ] {
        let hl = spec.iph_len() + spec.l4h_len();
        let joined: Vec<u8> = split(&spec.super_read(1200))
            .iter()
            .flat_map(|p| p[hl..].to_vec())
            .collect();
        assert_eq!(joined, spec.payload);
    }
}

#[test]
fn tcpv6_payload_length_is_rewritten() {
    for p in split(&Spec::tcp6(0, 3000).super_read(1428)) {
        assert_eq!(usize::from(u16_at(&p, 4)), p.len() - 40);
    }
}

#[test]
fn udp_length_is_rewritten_per_datagram_for_v4_and_v6() {
    for spec in [Spec::udp4(2500), Spec::udp6(2500)] {
        let out = split(&spec.super_read(1000));
        assert_eq!(out.len(), 3);
        for p in out {
            let l4 = spec.iph_len();
            assert_eq!(usize::from(u16_at(&p, l4 + 4)), p.len() - l4);
        }
    }
}

#[test]
fn split_segments_parse_with_etherparse() {
    let spec = Spec::tcp4(77, 4000);
    for p in split(&spec.super_read(1448)) {
        let parsed = etherparse::SlicedPacket::from_ip(&p).expect("parses");
        let Some(etherparse::NetSlice::Ipv4(ip)) = parsed.net else {
            panic!("not IPv4")
        };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = parsed.transport else {
            panic!("not TCP")
        };
        let want = tcp
            .to_header()
            .calc_checksum_ipv4(&ip.header().to_header(), tcp.payload())
            .unwrap();
        assert_eq!(tcp.checksum(), want);
        assert_eq!(
            ip.header().to_header().calc_header_checksum(),
            ip.header().header_checksum()
        );
    }
}

#[test]
fn udp_checksum_that_computes_to_zero_is_sent_as_all_ones() {
    // Choose the last two payload bytes so that the datagram's sum is 0xffff, i.e. a computed checksum 0.
    let mut spec = Spec::udp4(10);
    spec.payload[8] = 0;
    spec.payload[9] = 0;
    let packet = spec.build();
    let csum = u16_at(&packet, 26);
    // build() stored !sum with the last word zero; adding that value as the last word makes the sum 0xffff.
    spec.payload[8..10].copy_from_slice(&csum.to_be_bytes());
    let out = split(&spec.super_read(1000));
    assert_eq!(u16_at(&out[0], 26), 0xffff);
    assert!(checksums_valid(&out[0]));
}

#[test]
fn hdr_len_from_the_kernel_is_not_trusted() {
    let spec = Spec::tcp4(0, 3000);
    let want = split(&spec.super_read(1000));
    for bogus in [0u16, 1, 40 + 1000, u16::MAX] {
        assert_eq!(
            split(&with_hdr(&spec.super_read(1000), |h| h.hdr_len = bogus)),
            want
        );
    }
}

#[test]
fn tcp_options_are_copied_into_every_segment() {
    let spec = Spec {
        options: vec![1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8],
        ..Spec::tcp4(0, 3000)
    };
    for p in split(&spec.super_read(1000)) {
        assert_eq!(&p[40..52], &spec.options[..]);
        assert!(checksums_valid(&p));
    }
}

#[test]
fn tcpv6_behind_a_hop_by_hop_header_splits() {
    let spec = Spec::tcp6(0, 2000);
    let plain = spec.build();
    // Insert an 8-byte hop-by-hop header (PadN) between the fixed header and TCP.
    let mut packet = plain[..40].to_vec();
    packet[6] = 0;
    packet.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    packet.extend_from_slice(&plain[40..]);
    let l4_len = (packet.len() - 48) as u32;
    let payload_len = (packet.len() - 40) as u16;
    packet[4..6].copy_from_slice(&payload_len.to_be_bytes());
    let seed = crate::checksum::fold(crate::checksum::pseudo_header_sum(
        &packet[8..24],
        &packet[24..40],
        6,
        l4_len,
    ));
    packet[48 + 16..48 + 18].copy_from_slice(&seed.to_be_bytes());
    let hdr = VirtioNetHdr {
        flags: 1,
        gso_type: GSO_TCPV6,
        hdr_len: 0,
        gso_size: 1000,
        csum_start: 48,
        csum_offset: 16,
    };
    let out = split(&plain_read(&packet, hdr));
    assert_eq!(out.len(), 2);
    for p in out {
        assert_eq!(&p[40..48], &[6, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(usize::from(u16_at(&p, 4)), p.len() - 40);
        let sum =
            crate::checksum::pseudo_header_sum(&p[8..24], &p[24..40], 6, (p.len() - 48) as u32);
        assert_eq!(crate::checksum::checksum(&p[48..], sum), 0xffff);
    }
}

#[test]
fn segments_land_at_the_offset() {
    let mut read = Spec::udp4(2000).super_read(1000);
    let mut bufs = vec![vec![0xaau8; 1100]; 2];
    let mut sizes = [0usize; 2];
    assert_eq!(gso_split(&mut read, &mut bufs, &mut sizes, 12).unwrap(), 2);
    assert_eq!(&bufs[0][..12], &[0xaa; 12]);
    assert_eq!(bufs[0][12], 0x45);
    assert_eq!(sizes, [1028, 1028]);
}

#[test]
fn gso_type_must_match_the_ip_version() {
    let v6_as_v4 = with_hdr(&Spec::tcp6(0, 3000).super_read(1000), |h| {
        h.gso_type = GSO_TCPV4
    });
    let v4_as_v6 = with_hdr(&Spec::tcp4(0, 3000).super_read(1000), |h| {
        h.gso_type = GSO_TCPV6
    });
    assert!(matches!(error_of(&v6_as_v4), OffloadError::Malformed(_)));
    assert!(matches!(error_of(&v4_as_v6), OffloadError::Malformed(_)));
}

#[test]
fn udp_l4_serves_both_ip_versions() {
    assert_eq!(split(&Spec::udp4(3000).super_read(1000)).len(), 3);
    assert_eq!(split(&Spec::udp6(3000).super_read(1000)).len(), 3);
}

#[test]
fn gso_type_must_match_the_transport_protocol() {
    let tcp_as_udp = with_hdr(&Spec::tcp4(0, 3000).super_read(1000), |h| {
        h.gso_type = GSO_UDP_L4;
        h.csum_offset = 6;
    });
    assert!(matches!(error_of(&tcp_as_udp), OffloadError::Malformed(_)));
}

#[test]
fn gso_size_zero_is_an_error() {
    assert!(matches!(
        error_of(&Spec::tcp4(0, 3000).super_read(0)),
        OffloadError::Malformed(_)
    ));
}

#[test]
fn csum_start_must_be_the_transport_header_offset() {
    let read = with_hdr(&Spec::tcp4(0, 3000).super_read(1000), |h| h.csum_start = 24);
    assert!(matches!(error_of(&read), OffloadError::Malformed(_)));
}

#[test]
fn csum_offset_must_be_the_transport_checksum_field() {
    let read = with_hdr(&Spec::udp4(3000).super_read(1000), |h| h.csum_offset = 16);
    assert!(matches!(error_of(&read), OffloadError::Malformed(_)));
}

#[test]
fn ip_length_disagreeing_with_the_read_is_an_error() {
    let mut read = Spec::tcp4(0, 3000).super_read(1000);
    read.push(0);
    assert!(matches!(error_of(&read), OffloadError::Malformed(_)));
    let mut read = Spec::tcp6(0, 3000).super_read(1000);
    read.pop();
    assert!(matches!(error_of(&read), OffloadError::Malformed(_)));
}

#[test]
fn udp_length_disagreeing_with_the_packet_is_an_error() {
    let mut read = Spec::udp4(3000).super_read(1000);
    read[10 + 24] ^= 1;
    assert!(matches!(error_of(&read), OffloadError::Malformed(_)));
}

#[test]
fn truncated_tcp_header_is_an_error() {
    let spec = Spec {
        options: vec![1; 20],
        payload: Vec::new(),
        ..Spec::tcp4(0, 0)
    };
    let mut read = spec.super_read(1000);
    read.truncate(10 + 20 + 30);
    read[10 + 3] = 50;
    let ip_csum = !crate::test_packets::reference_sum(
        &{
            let mut h = read[10..30].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        },
        0,
    );
    read[20..22].copy_from_slice(&ip_csum.to_be_bytes());
    assert!(matches!(error_of(&read), OffloadError::TooShort { .. }));
}

#[test]
fn ipv4_fragment_super_packet_is_an_error() {
    let spec = Spec {
        df: false,
        ..Spec::tcp4(0, 3000)
    };
    let mut read = spec.super_read(1000);
    read[10 + 6] = 0x20;
    assert!(matches!(error_of(&read), OffloadError::Malformed(_)));
}

#[test]
fn ufo_unknown_types_and_ecn_on_udp_are_unsupported() {
    let base = Spec::udp4(3000).super_read(1000);
    for gso_type in [GSO_UDP, 2, 6, 0x7f, GSO_UDP_L4 | GSO_ECN, GSO_ECN] {
        let read = with_hdr(&base, |h| h.gso_type = gso_type);
        assert_eq!(error_of(&read), OffloadError::UnsupportedGsoType(gso_type));
    }
}

#[test]
fn too_few_buffers_is_an_error_that_writes_nothing() {
    let mut read = Spec::tcp4(0, 10 * 100).super_read(100);
    let mut bufs = vec![vec![0u8; 200]; 9];
    let mut sizes = [0usize; 9];
    let err = gso_split(&mut read, &mut bufs, &mut sizes, 0).unwrap_err();
    assert_eq!(
        err,
        OffloadError::TooFewBuffers {
            segments: 10,
            buffers: 9
        }
    );
    assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0)));
}

#[test]
fn buffer_too_small_names_the_buffer_and_writes_nothing() {
    let mut read = Spec::tcp4(0, 3 * 100).super_read(100);
    let mut bufs = vec![vec![0u8; 200], vec![0u8; 200], vec![0u8; 139]];
    let mut sizes = [0usize; 3];
    let err = gso_split(&mut read, &mut bufs, &mut sizes, 0).unwrap_err();
    assert_eq!(
        err,
        OffloadError::BufferTooSmall {
            index: 2,
            need: 140,
            have: 139
        }
    );
    assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0)));
}

#[test]
fn split_state_hands_out_the_remaining_segments_on_later_calls() {
    let read = Spec::tcp4(0, 7 * 500).super_read(500);
    let all = split(&read);
    let mut state = SplitState::new(&read).unwrap();
    assert_eq!(state.segments(), 7);
    let mut got = Vec::new();
    while !state.is_done() {
        let mut bufs = vec![vec![0u8; 600]; 2];
        let mut sizes = [0usize; 2];
        let n = state.next_batch(&read, &mut bufs, &mut sizes, 0).unwrap();
        got.extend(bufs.iter().zip(sizes).take(n).map(|(b, s)| b[..s].to_vec()));
    }
    assert_eq!(got, all);
    assert_eq!(state.next_batch(&read, &mut [[0u8; 1]], &mut [0], 0), Ok(0));
}

#[test]
fn next_segment_hands_out_one_packet_at_a_time() {
    let read = Spec::udp6(2500).super_read(1000);
    let all = split(&read);
    let mut state = SplitState::new(&read).unwrap();
    let mut buf = [0u8; 1100];
    let mut got = Vec::new();
    while let Some(len) = state.next_segment(&read, &mut buf).unwrap() {
        got.push(buf[..len].to_vec());
    }
    assert_eq!(got, all);
}

#[test]
fn buffer_too_small_during_a_resumed_split_loses_nothing() {
    let read = Spec::tcp4(0, 3 * 1000).super_read(1000);
    let all = split(&read);
    let mut state = SplitState::new(&read).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(
        state.next_segment(&read, &mut small),
        Err(OffloadError::BufferTooSmall {
            index: 0,
            need: 1040,
            have: 100
        })
    );
    assert_eq!(state.remaining(), 3);
    assert_eq!(state.next_len(), Some(1040));
    let mut big = vec![0u8; 1040];
    let len = state.next_segment(&read, &mut big).unwrap().unwrap();
    assert_eq!(big[..len], all[0][..]);
}

#[test]
fn next_batch_stops_before_a_buffer_too_small_and_returns_what_it_wrote() {
    let read = Spec::tcp4(0, 3 * 1000).super_read(1000);
    let all = split(&read);
    let mut state = SplitState::new(&read).unwrap();
    let mut bufs = vec![vec![0u8; 1040], vec![0u8; 10], vec![0u8; 1040]];
    let mut sizes = [0usize; 3];
    assert_eq!(state.next_batch(&read, &mut bufs, &mut sizes, 0), Ok(1));
    assert_eq!(bufs[0], all[0]);
    assert_eq!(
        state.next_batch(&read, &mut bufs[1..], &mut sizes[1..], 0),
        Err(OffloadError::BufferTooSmall {
            index: 0,
            need: 1040,
            have: 10
        })
    );
    assert_eq!(
        state.next_batch(&read, &mut bufs[2..], &mut sizes[2..], 0),
        Ok(1)
    );
    assert_eq!(bufs[2], all[1]);
}

#[test]
fn a_different_read_buffer_is_refused() {
    let read = Spec::tcp4(0, 3000).super_read(1000);
    let mut state = SplitState::new(&read).unwrap();
    let mut buf = [0u8; 2000];
    assert!(matches!(
        state.next_segment(&read[..100], &mut buf),
        Err(OffloadError::InvalidArgument(_))
    ));
}

#[test]
fn a_read_refilled_with_other_bytes_is_split_by_the_layout_validated_at_the_start() {
    // The state keeps no borrow, so nothing stops a caller from refilling the read between calls. The
    // segments then follow the offsets and lengths validated when the state was made, whatever the new
    // bytes say (here: neither an IP nor a TCP header), and nothing panics.
    let read = Spec::tcp4(0, 3000).super_read(1000);
    let mut state = SplitState::new(&read).unwrap();
    let mut refilled = read.clone();
    refilled[VirtioNetHdr::LEN..].fill(0);
    let mut buf = [0u8; 2000];
    for expected in [1040, 1040, 1040] {
        assert_eq!(state.next_segment(&refilled, &mut buf), Ok(Some(expected)));
        assert_eq!(usize::from(u16_at(&buf, 2)), expected, "IPv4 total length");
    }
    assert!(state.is_done());
}

#[test]
fn next_batch_without_buffers_is_an_error_while_segments_remain() {
    let read = Spec::tcp4(0, 3000).super_read(1000);
    let mut state = SplitState::new(&read).unwrap();
    let mut bufs: [Vec<u8>; 0] = [];
    assert!(matches!(
        state.next_batch(&read, &mut bufs, &mut [], 0),
        Err(OffloadError::InvalidArgument(_))
    ));
}

#[test]
fn segmenter_splits_a_borrowed_read_like_split_state() {
    let read = Spec::tcp6(0, 5000).super_read(1428);
    let all = split(&read);
    let mut segmenter = Segmenter::new(&read).unwrap();
    let mut bufs = vec![vec![0u8; 1500]; 3];
    let mut sizes = [0usize; 3];
    let mut got = Vec::new();
    while !segmenter.is_done() {
        let n = segmenter.next_batch(&mut bufs, &mut sizes, 0).unwrap();
        got.extend(bufs.iter().zip(sizes).take(n).map(|(b, s)| b[..s].to_vec()));
    }
    assert_eq!(got, all);
}

#[test]
fn every_cut_short_read_is_refused_and_no_corruption_panics() {
    let read = Spec::tcp4(0, 600).super_read(100);
    let mut bufs = vec![vec![0u8; 256]; 8];
    let mut sizes = [0usize; 8];
    // A cut-short read disagrees with its own length fields: it is refused, never split into packets.
    for len in 0..read.len() {
        let mut r = read[..len].to_vec();
        let result = gso_split(&mut r, &mut bufs, &mut sizes, 3);
        assert!(result.is_err(), "prefix of {len} bytes: {result:?}");
    }
    assert_eq!(
        gso_split(&mut read.clone(), &mut bufs, &mut sizes, 3),
        Ok(6)
    );
    for at in 0..read.len().min(120) {
        for bits in [0x01u8, 0x10, 0x80, 0xff] {
            let mut r = read.clone();
            r[at] ^= bits;
            let _ = gso_split(&mut r, &mut bufs, &mut sizes, 3);
        }
    }
    let payload_only = payload(0, 3);
    let _ = gso_split(&mut payload_only.clone(), &mut bufs, &mut sizes, 0);
}
