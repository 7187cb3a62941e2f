//! Properties of `gso_split` over generated kernel-style super-packets: the output is exactly the
//! segmentation the kernel would have done, every packet parses and checks out, nothing is lost.

#[path = "support/strategies.rs"]
mod strategies;
mod support;

use proptest::prelude::*;
use support::oracle::parse_checked;
use support::packets::{self, Flags, Flow, HdrLen, Seg};
use tun_offload::{OffloadError, Segmenter, SplitState, VirtioNetHdr, gso_split};

/// Splits `read` into buffers that fit each segment exactly (plus `offset`) and returns the packets.
fn split_exact(
    read: &[u8],
    seg_lens: &[usize],
    offset: usize,
) -> Result<Vec<Vec<u8>>, OffloadError> {
    let mut read = read.to_vec();
    let mut bufs: Vec<Vec<u8>> = seg_lens.iter().map(|&l| vec![0xa5; offset + l]).collect();
    let mut sizes = vec![0usize; bufs.len()];
    let n = gso_split(&mut read, &mut bufs, &mut sizes, offset)?;
    Ok(bufs
        .iter()
        .zip(&sizes)
        .take(n)
        .map(|(b, &s)| b[offset..offset + s].to_vec())
        .collect())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(160))]

    /// TSO/USO split: the segments equal, byte for byte, the packets the kernel itself would have put on
    /// the wire (IDs, sequence numbers, FIN/PSH on the last only, CWR on the first only under GSO_ECN,
    /// lengths, full checksums), whatever
    /// `hdr_len` says; each parses and verifies on its own, and the payloads concatenate to the original.
    #[test]
    fn split_yields_the_kernel_segmentation(
        (flow, (len, gso), hdr_len) in strategies::flow().prop_flat_map(|f| {
            let s = strategies::sizes(&f, 200);
            (Just(f), s, strategies::hdr_len())
        }),
        seq in any::<u32>(),
        ip_id in any::<u16>(),
        (fin, ece, ecn) in any::<(bool, bool, bool)>(),
        offset in VirtioNetHdr::LEN..80,
        salt in any::<u32>(),
    ) {
        let data = packets::payload(len, salt);
        // With GSO_ECN the super-packet carries CWR, which only the first segment keeps; ECE is copied.
        let tcp = !flow.udp;
        let (ecn, ece) = (ecn && tcp, ece && tcp);
        let flags = Flags { fin: fin && tcp, ece, cwr: ecn, ..Flags::ACK_PSH };
        let seg = Seg { seq, ip_id, flags };
        let read = packets::super_packet(&flow, seg, &data, gso, hdr_len, ecn);
        let want = packets::segments(&flow, seg, &data, gso, ecn);
        let lens: Vec<usize> = want.iter().map(Vec::len).collect();
        let got = split_exact(&read, &lens, offset).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.len(), want.len());
        let mut joined = Vec::with_capacity(len);
        for (i, pkt) in got.iter().enumerate() {
            let p = parse_checked(pkt).map_err(|e| TestCaseError::fail(format!("segment {i}: {e}")))?;
            let last = i + 1 == got.len();
            if !flow.udp {
                prop_assert_eq!(p.seq, seq.wrapping_add((i * usize::from(gso)) as u32));
                prop_assert_eq!(p.flags.psh, last, "PSH only on the last segment");
                prop_assert_eq!(p.flags.fin, fin && last, "FIN only on the last segment");
                prop_assert_eq!(p.flags.cwr, ecn && i == 0, "CWR only on the first segment");
                prop_assert_eq!(p.flags.ece, ece, "ECE on every segment");
            }
            if !flow.v6 {
                prop_assert_eq!(p.ip_id, ip_id.wrapping_add(i as u16));
            }
            prop_assert!(p.payload.len() == usize::from(gso) || last, "only the last segment is short");
            joined.extend_from_slice(&p.payload);
            prop_assert!(pkt == &want[i], "segment {} differs from the kernel's", i);
        }
        prop_assert!(joined == data, "payloads concatenate to the original");
    }

    /// GSO_NONE with NEEDS_CSUM (how the kernel hands over every ordinary TCP or UDP packet once
    /// TUN_F_CSUM is on): the seed is finished in place and the packet is otherwise unchanged.
    #[test]
    fn gso_none_with_needs_csum_is_finished_in_place(
        flow in strategies::flow(),
        len in 0usize..2000,
        seq in any::<u32>(),
        salt in any::<u32>(),
        offset in VirtioNetHdr::LEN..40,
    ) {
        let data = packets::payload(len, salt);
        let seg = Seg { seq, ip_id: 7, flags: Flags::ACK_PSH };
        let mut read = packets::super_packet(&flow, seg, &data, 1448, HdrLen::Exact, false);
        read[1] = tun_offload::virtio::GSO_NONE;
        let mut want = packets::packet(&flow, seg, &data);
        // A checksum computing to zero is stored as 0xffff, as the kernel does (CSUM_MANGLED_0);
        // etherparse keeps TCP's as 0, which is equivalent.
        let at = flow.ip_header_len() + flow.csum_offset();
        if want[at..at + 2] == [0, 0] {
            want[at..at + 2].fill(0xff);
        }
        let got = split_exact(&read, &[want.len()], offset).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.len(), 1);
        prop_assert!(got[0] == want, "finished packet equals the one with a full checksum");
    }

    /// GSO_NONE without NEEDS_CSUM: the packet is copied as it is, checksum and all, even a wrong one.
    #[test]
    fn gso_none_without_needs_csum_passes_through_unchanged(
        flow in strategies::flow(),
        len in 0usize..2000,
        salt in any::<u32>(),
        corrupt in any::<bool>(),
    ) {
        let data = packets::payload(len, salt);
        let mut pkt = packets::packet(&flow, Seg { seq: 1, ip_id: 1, flags: Flags::ACK }, &data);
        if corrupt {
            let at = flow.ip_header_len() + flow.csum_offset();
            pkt[at] ^= 0x55;
        }
        let mut read = VirtioNetHdr::default().to_bytes().to_vec();
        read.extend_from_slice(&pkt);
        let got = split_exact(&read, &[pkt.len()], VirtioNetHdr::LEN).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, vec![pkt]);
    }

    /// Truncating a super-packet anywhere (the IP lengths then claim more than there is) is an error,
    /// never a panic and never a short packet.
    #[test]
    fn truncated_super_packet_is_an_error(
        flow in strategies::flow(),
        len in 1usize..6000,
        cut_frac in 0.0f64..1.0,
    ) {
        let data = packets::payload(len, 3);
        let seg = Seg { seq: 9, ip_id: 9, flags: Flags::ACK_PSH };
        let read = packets::super_packet(&flow, seg, &data, 1000, HdrLen::Exact, false);
        let cut = (read.len() as f64 * cut_frac) as usize;
        let lens = vec![65535usize; len.div_ceil(1000)];
        prop_assert!(split_exact(&read[..cut], &lens, VirtioNetHdr::LEN).is_err());
    }

    /// Any single corrupted byte of the virtio header or the IP/L4 headers yields either an error or
    /// packets that are well formed (lengths right, checksums valid); never a panic.
    #[test]
    fn corrupted_headers_give_an_error_or_well_formed_packets(
        flow in strategies::flow(),
        len in 1usize..5000,
        gso in 1u16..2000,
        at_frac in 0.0f64..1.0,
        value in any::<u8>(),
    ) {
        let data = packets::payload(len, 5);
        let seg = Seg { seq: 1, ip_id: 1, flags: Flags::ACK_PSH };
        let mut read = packets::super_packet(&flow, seg, &data, gso, HdrLen::Exact, false);
        let at = ((VirtioNetHdr::LEN + flow.header_len()) as f64 * at_frac) as usize;
        read[at] = value;
        let hdr = VirtioNetHdr::decode(&read).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let lens = vec![65535usize + 64; len.div_ceil(usize::from(gso)).max(1) + 1];
        if let Ok(pkts) = split_exact(&read, &lens, VirtioNetHdr::LEN) {
            // With NEEDS_CSUM and a segmenting GSO type, every output carries a full, valid checksum.
            if hdr.needs_csum() && hdr.gso_kind() != tun_offload::virtio::GSO_NONE {
                for (i, p) in pkts.iter().enumerate() {
                    parse_checked(p).map_err(|e| TestCaseError::fail(format!("segment {i} after corrupting byte {at}: {e}")))?;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(96))]

    /// The resumable split hands out the segments in batches of whatever buffers the caller has (fewer
    /// than the segments, some too small for the next segment): retrying with what is left loses,
    /// duplicates and reorders nothing, and the concatenation is exactly the one-shot split.
    #[test]
    fn resumable_split_with_few_and_small_buffers_loses_nothing(
        (flow, (len, gso)) in strategies::flow().prop_flat_map(|f| {
            let s = strategies::sizes(&f, 120);
            (Just(f), s)
        }),
        batches in proptest::collection::vec((1usize..6, proptest::collection::vec(0usize..3000, 6)), 1..20),
        offset in 0usize..40,
    ) {
        let data = packets::payload(len, 11);
        let seg = Seg { seq: 77, ip_id: 65530, flags: Flags::ACK_PSH };
        let read = packets::super_packet(&flow, seg, &data, gso, HdrLen::Exact, false);
        let want = packets::segments(&flow, seg, &data, gso, false);
        let mut state = SplitState::new(&read).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(state.segments(), want.len());
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut plan = batches.iter().cycle();
        let mut calls = 0;
        while !state.is_done() {
            calls += 1;
            prop_assert!(calls < 10 * want.len() + 10, "split makes no progress");
            let (count, lens) = plan.next().expect("cycle never ends");
            // Buffer sizes are arbitrary (often too small); every third call leads with one that is big
            // enough, so that the split always makes progress.
            let mut bufs: Vec<Vec<u8>> = lens[..*count].iter().map(|&l| vec![0u8; offset + l]).collect();
            if calls % 3 == 0 {
                bufs.insert(0, vec![0u8; offset + 65535]);
            }
            let mut sizes = vec![0usize; bufs.len()];
            let before = state;
            match state.next_batch(&read, &mut bufs, &mut sizes, offset) {
                Ok(n) => {
                    prop_assert!(n >= 1 && n <= bufs.len());
                    prop_assert_eq!(state.remaining(), before.remaining() - n);
                    for i in 0..n {
                        got.push(bufs[i][offset..offset + sizes[i]].to_vec());
                    }
                }
                Err(OffloadError::BufferTooSmall { index: 0, need, have }) => {
                    prop_assert_eq!(state, before, "a refused batch leaves the state unchanged");
                    prop_assert_eq!(have, bufs[0].len());
                    prop_assert_eq!(Some(need - offset), state.next_len());
                }
                Err(e) => return Err(TestCaseError::fail(format!("unexpected {e:?}"))),
            }
        }
        prop_assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            prop_assert!(g == w, "segment {} differs", i);
        }
        let mut bufs = vec![vec![0u8; 16]];
        prop_assert_eq!(state.next_batch(&read, &mut bufs, &mut [0], 0).ok(), Some(0), "done: nothing more");
    }

    /// One segment at a time through a borrowed `Segmenter` gives the same packets as `gso_split`.
    #[test]
    fn segment_by_segment_equals_one_shot(
        (flow, (len, gso)) in strategies::flow().prop_flat_map(|f| {
            let s = strategies::sizes(&f, 60);
            (Just(f), s)
        }),
    ) {
        let data = packets::payload(len, 12);
        let seg = Seg { seq: 1, ip_id: 2, flags: Flags::ACK_PSH };
        let read = packets::super_packet(&flow, seg, &data, gso, HdrLen::Exact, false);
        let want = packets::segments(&flow, seg, &data, gso, false);
        let mut s = Segmenter::new(&read).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut out = vec![0u8; 65535];
        let mut got = Vec::new();
        while let Some(n) = s.next_segment(&mut out).map_err(|e| TestCaseError::fail(e.to_string()))? {
            got.push(out[..n].to_vec());
        }
        prop_assert!(got == want);
        prop_assert!(s.is_done());
    }
}

/// `gso_split` with fewer buffers than segments writes nothing and says how many it needs.
#[test]
fn one_shot_split_with_too_few_buffers_is_an_error() {
    let flow = Flow::simple(false, false);
    let seg = Seg::FIRST;
    let mut read = packets::super_packet(
        &flow,
        seg,
        &packets::payload(10 * 1448, 1),
        1448,
        HdrLen::Exact,
        false,
    );
    let mut bufs = vec![vec![0u8; 2000]; 9];
    let mut sizes = vec![0usize; 9];
    let err =
        gso_split(&mut read, &mut bufs, &mut sizes, 0).expect_err("9 buffers for 10 segments");
    assert!(
        matches!(
            err,
            OffloadError::TooFewBuffers {
                segments: 10,
                buffers: 9
            }
        ),
        "{err:?}"
    );
    assert!(
        bufs.iter().all(|b| b.iter().all(|&x| x == 0)),
        "nothing written"
    );
}

/// The buffer for segment `k` one byte short of what it must hold: a `BufferTooSmall` naming it.
#[test]
fn segment_buffer_one_byte_short_is_buffer_too_small() {
    for (v6, udp) in [(false, false), (true, false), (false, true), (true, true)] {
        let flow = Flow::simple(v6, udp);
        let data = packets::payload(10_000, 1);
        let seg = Seg::FIRST;
        let read = packets::super_packet(&flow, seg, &data, 1448, HdrLen::Exact, false);
        let want = packets::segments(&flow, seg, &data, 1448, false);
        for k in [0, 3, want.len() - 1] {
            let mut lens: Vec<usize> = want.iter().map(Vec::len).collect();
            lens[k] -= 1;
            let err = split_exact(&read, &lens, 12).expect_err("a short buffer must be reported");
            assert!(
                matches!(err, OffloadError::BufferTooSmall { index, .. } if index == k),
                "{v6}/{udp}: buffer {k} short gave {err:?}"
            );
        }
    }
}

/// `sizes` shorter than `bufs` or an offset below the virtio header length are argument errors.
#[test]
fn mismatched_arguments_are_errors() {
    let flow = Flow::simple(false, false);
    let seg = Seg::FIRST;
    let read = packets::super_packet(
        &flow,
        seg,
        &packets::payload(3000, 1),
        1448,
        HdrLen::Exact,
        false,
    );
    let mut bufs = vec![vec![0u8; 2000]; 3];
    let mut sizes = vec![0usize; 2];
    assert!(gso_split(&mut read.clone(), &mut bufs, &mut sizes, 10).is_err());
}

/// The kind of version mismatch the kernel never produces but a broken sender could: TCPV4 on an IPv6
/// packet, TCPV6 on an IPv4 packet, gso_size 0, csum_start past the end. All errors.
#[test]
fn inconsistent_virtio_headers_are_errors() {
    for v6 in [false, true] {
        let flow = Flow::simple(v6, false);
        let seg = Seg::FIRST;
        let good = packets::super_packet(
            &flow,
            seg,
            &packets::payload(4000, 1),
            1448,
            HdrLen::Exact,
            false,
        );
        let lens = [4000usize; 4];
        assert!(split_exact(&good, &lens, 10).is_ok());
        let mut wrong_version = good.clone();
        wrong_version[1] = if v6 {
            tun_offload::virtio::GSO_TCPV4
        } else {
            tun_offload::virtio::GSO_TCPV6
        };
        assert!(
            split_exact(&wrong_version, &lens, 10).is_err(),
            "v6={v6}: gso_type/version mismatch"
        );
        let mut zero_gso = good.clone();
        zero_gso[4..6].fill(0);
        assert!(
            split_exact(&zero_gso, &lens, 10).is_err(),
            "v6={v6}: gso_size 0"
        );
        let mut far_start = good.clone();
        far_start[6..8].copy_from_slice(&60000u16.to_le_bytes());
        assert!(
            split_exact(&far_start, &lens, 10).is_err(),
            "v6={v6}: csum_start past the end"
        );
        let mut far_offset = good.clone();
        far_offset[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(
            split_exact(&far_offset, &lens, 10).is_err(),
            "v6={v6}: csum_offset past the end"
        );
        let mut ufo = good;
        ufo[1] = tun_offload::virtio::GSO_UDP;
        assert!(
            split_exact(&ufo, &lens, 10).is_err(),
            "v6={v6}: UFO is refused"
        );
    }
}

/// A payload for `flow` whose TCP or UDP checksum computes to zero: its last two bytes complete the sum.
fn payload_with_zero_checksum(flow: &Flow, len: usize) -> Vec<u8> {
    let mut data = packets::payload(len, 21);
    data[len - 2..].fill(0);
    let seg = Seg {
        seq: 0,
        ip_id: 0,
        flags: Flags::ACK,
    };
    let pkt = packets::packet(flow, seg, &data);
    let iph = flow.ip_header_len();
    let mut l4 = pkt[iph..].to_vec();
    let at = flow.csum_offset();
    l4[at..at + 2].fill(0);
    let alen = if flow.v6 { 16 } else { 4 };
    let proto = if flow.udp { 17 } else { 6 };
    let pseudo = support::reference::pseudo_header(
        &flow.src[..alen],
        &flow.dst[..alen],
        proto,
        l4.len() as u32,
    );
    let partial = support::reference::fold(pseudo + support::reference::sum(&l4));
    data[len - 2..].copy_from_slice(&(0xffff - partial).to_be_bytes());
    data
}

/// A TCP checksum that finishes to zero in a GSO_NONE packet is stored as 0xffff, as the kernel's
/// skb_checksum_help does (the two are the same to TCP).
#[test]
fn tcp_checksum_finishing_to_zero_is_stored_as_all_ones() {
    for v6 in [false, true] {
        let flow = Flow::simple(v6, false);
        let data = payload_with_zero_checksum(&flow, 1000);
        let seg = Seg {
            seq: 0,
            ip_id: 0,
            flags: Flags::ACK,
        };
        let mut read = packets::super_packet(&flow, seg, &data, 1448, HdrLen::Exact, false);
        read[1] = tun_offload::virtio::GSO_NONE;
        let len = read.len() - VirtioNetHdr::LEN;
        let got = split_exact(&read, &[len], 0).expect("a valid packet");
        let at = flow.ip_header_len() + 16;
        assert_eq!(got[0][at..at + 2], [0xff, 0xff], "v6={v6}");
        parse_checked(&got[0]).expect("a valid checksum");
    }
}

/// A UDP checksum that computes to zero is sent as 0xffff (zero means "no checksum", and IPv6 forbids
/// it), both when a GSO_NONE packet's checksum is finished and when a USO segment's is computed, as the
/// kernel does (CSUM_MANGLED_0).
#[test]
fn udp_checksum_computing_to_zero_is_sent_as_all_ones() {
    for v6 in [false, true] {
        let flow = Flow::simple(v6, true);
        let data = payload_with_zero_checksum(&flow, 1000);
        let seg = Seg {
            seq: 0,
            ip_id: 3,
            flags: Flags::ACK,
        };
        let want = packets::packet(&flow, seg, &data);
        let at = flow.ip_header_len() + 6;
        assert_eq!(
            want[at..at + 2],
            [0xff, 0xff],
            "the reference packet carries 0xffff"
        );

        let mut read = packets::super_packet(&flow, seg, &data, 1448, HdrLen::Exact, false);
        read[1] = tun_offload::virtio::GSO_NONE;
        let got = split_exact(&read, &[want.len()], 0).expect("a valid packet");
        assert_eq!(
            got[0][at..at + 2],
            [0xff, 0xff],
            "v6={v6}: GSO_NONE finished to 0xffff"
        );

        // The same datagram as the first segment of a USO super-packet.
        let mut two = data.clone();
        two.extend_from_slice(&packets::payload(500, 4));
        let read = packets::super_packet(&flow, seg, &two, 1000, HdrLen::Exact, false);
        let got = split_exact(&read, &[want.len(), 600], 0).expect("a valid super-packet");
        assert_eq!(got[0], want, "v6={v6}: USO segment with checksum 0xffff");
    }
}

/// `packet` with an 8-byte IPv6 hop-by-hop header (PadN) after the fixed header; the transport checksum
/// is unchanged, as the pseudo-header does not cover extension headers.
fn with_hop_by_hop(packet: &[u8]) -> Vec<u8> {
    let mut p = packet.to_vec();
    let next = p[6];
    p.splice(40..40, [next, 0, 1, 4, 0, 0, 0, 0]);
    p[6] = 0;
    let len = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&len.to_be_bytes());
    p
}

/// IPv6 super-packets may carry extension headers before TCP or UDP (csum_start then points past them):
/// every segment carries them too, with the payload length and checksum of its own.
#[test]
fn ipv6_extension_headers_are_carried_into_every_segment() {
    for udp in [false, true] {
        let flow = Flow::simple(true, udp);
        let data = packets::payload(5000, 8);
        let seg = Seg {
            seq: 100,
            ip_id: 0,
            flags: Flags::ACK_PSH,
        };
        let plain = packets::super_packet(&flow, seg, &data, 1400, HdrLen::Exact, false);
        let mut read = plain[..VirtioNetHdr::LEN].to_vec();
        read.extend_from_slice(&with_hop_by_hop(&plain[VirtioNetHdr::LEN..]));
        let csum_start = 40u16 + 8;
        read[6..8].copy_from_slice(&csum_start.to_le_bytes());
        let want: Vec<Vec<u8>> = packets::segments(&flow, seg, &data, 1400, false)
            .iter()
            .map(|p| with_hop_by_hop(p))
            .collect();
        let lens: Vec<usize> = want.iter().map(Vec::len).collect();
        let got = split_exact(&read, &lens, 0).unwrap_or_else(|e| panic!("udp={udp}: {e}"));
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            parse_checked(g).unwrap_or_else(|e| panic!("udp={udp} segment {i}: {e}"));
            assert!(g == w, "udp={udp}: segment {i} differs");
        }
    }
}
