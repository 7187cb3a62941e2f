//! Properties of `handle_gro` over segments of generated flows: coalescing rebuilds exactly the
//! super-packets the segments came from, keeps apart what the rules keep apart, and loses nothing.

#[path = "support/strategies.rs"]
mod strategies;
mod support;

use proptest::prelude::*;
use support::batch::{canonical, coalesce, unpack};
use support::packets::{self, Flags, Flow, HdrLen, Seg};
use tun_offload::{FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, VirtioNetHdr};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One burst of a flow: the payload the sender wrote and how the kernel segmented it.
#[derive(Clone, Debug)]
struct Burst {
    flow: Flow,
    seg: Seg,
    data: Vec<u8>,
    gso: u16,
}

impl Burst {
    fn segments(&self) -> Vec<Vec<u8>> {
        packets::segments(&self.flow, self.seg, &self.data, self.gso, false)
    }

    fn count(&self) -> usize {
        self.data.len().div_ceil(usize::from(self.gso)).max(1)
    }

    /// What coalescing segments `a..b` must give, as written to the device: one segment alone is itself
    /// with a zero header; several are a super-packet of their payload with the first one's sequence
    /// number and IPv4 ID, PSH only if it includes the burst's last segment.
    fn run_wire(&self, a: usize, b: usize) -> Vec<u8> {
        let g = usize::from(self.gso);
        if b - a == 1 {
            let mut w = VirtioNetHdr::default().to_bytes().to_vec();
            w.extend_from_slice(&self.segments()[a]);
            return w;
        }
        let mut flags = self.seg.flags;
        if b != self.count() {
            flags.psh = false;
            flags.fin = false;
        }
        let seg = Seg {
            seq: self.seg.seq.wrapping_add((a * g) as u32),
            ip_id: self.seg.ip_id.wrapping_add(a as u16),
            flags,
        };
        let data = &self.data[a * g..(b * g).min(self.data.len())];
        packets::super_packet(&self.flow, seg, data, self.gso, HdrLen::Exact, false)
    }
}

/// A burst of `flow` whose super-packet carries PSH (as the kernel's always do) and at most
/// `max_segments` segments.
fn burst_of(flow: Flow, max_segments: usize) -> impl Strategy<Value = Burst> {
    let sizes = strategies::sizes(&flow, max_segments);
    let udp = flow.udp;
    let ece = any::<bool>().prop_map(move |e| e && !udp);
    (
        Just(flow),
        sizes,
        any::<u32>(),
        any::<u16>(),
        any::<u32>(),
        ece,
    )
        .prop_map(|(flow, (len, gso), seq, ip_id, salt, ece)| Burst {
            flow,
            seg: Seg {
                seq,
                ip_id,
                // ECE-marked bursts coalesce like any other (the mark is on every segment).
                flags: Flags {
                    ece,
                    ..Flags::ACK_PSH
                },
            },
            data: packets::payload(len, salt),
            gso,
        })
}

/// UDP GRO may stop at the 64 datagrams older kernels accept; TCP bursts are bounded by size only.
fn max_segments(flow: &Flow) -> usize {
    if flow.udp { 64 } else { 160 }
}

fn any_burst() -> impl Strategy<Value = Burst> {
    strategies::flow().prop_flat_map(|f| {
        let m = max_segments(&f);
        burst_of(f, m)
    })
}

/// Merges per-flow packet lists into one batch, keeping each list's order, choosing the next list by
/// `picks`.
fn interleave(lists: Vec<Vec<Vec<u8>>>, picks: &[usize]) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> =
        lists.into_iter().map(Into::into).collect();
    let mut out = Vec::new();
    let mut owner = Vec::new();
    let mut picks = picks.iter().cycle();
    while queues.iter().any(|q| !q.is_empty()) {
        let live: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let i = live[picks.next().copied().unwrap_or(0) % live.len()];
        out.push(queues[i].pop_front().expect("live queue"));
        owner.push(i);
    }
    (out, owner)
}

/// The same packet with 4 bytes of IPv4 options (NOPs) or an 8-byte IPv6 hop-by-hop header (PadN) after
/// the fixed header; the L4 checksum stays valid (the pseudo-header does not cover either).
fn with_ip_options(pkt: &[u8]) -> Vec<u8> {
    let mut p = pkt.to_vec();
    if p[0] >> 4 == 4 {
        p.splice(20..20, [1, 1, 1, 0]);
        p[0] = 0x46;
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        fix_ipv4_header_checksum(&mut p);
    } else {
        let next = p[6];
        p.splice(40..40, [next, 0, 1, 4, 0, 0, 0, 0]);
        p[6] = 0;
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
    }
    p
}

fn fix_ipv4_header_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0xf) * 4;
    p[10..12].fill(0);
    let c = !support::reference::fold(support::reference::sum(&p[..ihl]));
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

proptest! {
    #![proptest_config(config(128))]

    /// Splitting a super-packet and coalescing its segments gives back the super-packet, byte for byte:
    /// same headers (first segment's sequence number and IPv4 ID, PSH), same payload, the pseudo-header
    /// seed in the checksum field and a virtio header with NEEDS_CSUM, gso_type, gso_size, csum_start,
    /// csum_offset and hdr_len as the kernel wants them.
    #[test]
    fn coalescing_the_segments_rebuilds_the_super_packet(burst in any_burst(), offset in VirtioNetHdr::LEN..64) {
        let out = coalesce(&burst.segments(), offset, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(out.len(), 1, "one packet per flow");
        let want = burst.run_wire(0, burst.count());
        prop_assert!(out[0].1 == want, "coalesced packet differs from the super-packet: got {:?}, want {:?}",
            VirtioNetHdr::decode(&out[0].1), VirtioNetHdr::decode(&want));
    }

    /// Segments of distinct flows (ports, addresses, versions, protocols, ACK numbers), interleaved in
    /// any way that keeps each flow's order, coalesce into exactly one packet per flow.
    #[test]
    fn interleaved_flows_each_rebuild_their_super_packet(
        bursts in proptest::collection::vec(any_burst(), 1..5),
        picks in proptest::collection::vec(any::<usize>(), 1..64),
    ) {
        let mut bursts = bursts;
        for (i, b) in bursts.iter_mut().enumerate() {
            b.flow.sport = 1000 + i as u16;
        }
        let (batch, _) = interleave(bursts.iter().map(Burst::segments).collect(), &picks);
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = sorted(out.into_iter().map(|(_, w)| w).collect());
        let want = sorted(bursts.iter().map(|b| b.run_wire(0, b.count())).collect());
        prop_assert_eq!(got.len(), want.len());
        prop_assert!(got == want, "each flow rebuilds its own super-packet");
    }

    /// A stream of one flow cut into consecutive bursts that differ in exactly one field the rules
    /// compare (TTL/hop limit, TOS/traffic class, DF, TCP options, ACK number, and, as this engine also
    /// compares them, the IPv6 flow label, the TCP window and the ECE flag): each burst comes back
    /// on its own, however they are interleaved. Control: with no difference, the in-order stream
    /// coalesces into one packet.
    #[test]
    fn bursts_differing_in_a_compared_field_are_kept_apart(
        flow in strategies::flow(),
        field in 0usize..8,
        groups in 2usize..4,
        per_group in 1usize..8,
        gso in 200u16..1500,
        differ in any::<bool>(),
        seq in any::<u32>(),
        picks in proptest::collection::vec(any::<usize>(), 1..64),
    ) {
        let g = usize::from(gso);
        let per_group = per_group.min((65535 - 100) / (groups * g)).max(1);
        let mut bursts = Vec::new();
        for k in 0..groups {
            let mut f = flow.clone();
            if differ {
                let k8 = k as u8;
                match (field, f.udp, f.v6) {
                    (0, ..) => f.ttl = f.ttl.wrapping_add(k8),
                    (1, ..) => f.tos = f.tos.wrapping_add(k8),
                    (2, _, false) if k < 2 => f.df ^= k == 1,
                    (3, false, _) => f.options = packets::timestamps(u32::from(k8), 0),
                    (4, false, _) => f.ack = f.ack.wrapping_add(u32::from(k8)),
                    (5, _, true) => f.flow_label = (f.flow_label + u32::from(k8)) & 0xf_ffff,
                    (6, false, _) => f.window = f.window.wrapping_add(u16::from(k8)),
                    (7, false, _) => {}
                    _ => f.ttl = f.ttl.wrapping_add(k8),
                }
            }
            if field == 3 && !f.udp && !differ {
                f.options = packets::timestamps(0, 0);
            }
            let last = k + 1 == groups;
            let ece = differ && field == 7 && !f.udp && k % 2 == 1;
            let flags = if last { Flags::ACK_PSH } else { Flags::ACK };
            bursts.push(Burst {
                flow: f,
                seg: Seg {
                    seq: seq.wrapping_add((k * per_group * g) as u32),
                    ip_id: (k * per_group) as u16,
                    flags: Flags { ece, ..flags },
                },
                data: packets::payload(per_group * g, k as u32),
                gso,
            });
        }
        let groups = if differ && field == 2 && !flow.v6 { 2.min(groups) } else { groups };
        bursts.truncate(groups);
        let lists: Vec<Vec<Vec<u8>>> = bursts.iter().map(Burst::segments).collect();
        if !differ {
            let batch: Vec<Vec<u8>> = lists.concat();
            let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(out.len(), 1, "an in-order stream with nothing differing is one packet");
            return Ok(());
        }
        let (batch, owner) = interleave(lists, &picks);
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = sorted(out.into_iter().map(|(_, w)| w).collect());
        let want = if flow.udp {
            // UDP is only ever compared with the newest item of its 4-tuple: every run of one burst's
            // datagrams in the batch is a packet of its own.
            let mut want = Vec::new();
            let mut next = vec![0usize; bursts.len()];
            let mut i = 0;
            while i < owner.len() {
                let k = owner[i];
                let mut j = i;
                while j < owner.len() && owner[j] == k {
                    j += 1;
                }
                want.push(bursts[k].run_wire(next[k], next[k] + (j - i)));
                next[k] += j - i;
                i = j;
            }
            sorted(want)
        } else {
            sorted(bursts.iter().map(|b| b.run_wire(0, b.count())).collect())
        };
        prop_assert_eq!(got.len(), want.len());
        prop_assert!(got == want, "bursts differing in field {} are coalesced each on their own", field);
    }

    /// Any order of the segments of a few flows: nothing is lost, duplicated or altered (splitting the
    /// output again gives back the input packets, IPv4 IDs aside), every coalesced packet is well formed,
    /// and no packet exceeds 65535 bytes.
    #[test]
    fn any_order_loses_and_alters_nothing(
        bursts in proptest::collection::vec(any_burst(), 1..4),
        shuffle in proptest::collection::vec(any::<u32>(), 0..400),
    ) {
        let mut bursts = bursts;
        for (i, b) in bursts.iter_mut().enumerate() {
            b.flow.sport = 2000 + i as u16;
        }
        let mut batch: Vec<Vec<u8>> = bursts.iter().flat_map(Burst::segments).collect();
        for (i, r) in shuffle.iter().enumerate() {
            let (a, b) = (i % batch.len(), *r as usize % batch.len());
            batch.swap(a, b);
        }
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(out.len() <= batch.len());
        let mut seen = std::collections::HashSet::new();
        let mut back = Vec::new();
        for (idx, wire) in &out {
            prop_assert!(seen.insert(*idx), "buffer {} written twice", idx);
            back.extend(unpack(wire).map_err(|e| TestCaseError::fail(format!("buffer {idx}: {e}")))?);
        }
        let back = sorted(back.iter().map(|p| canonical(p)).collect());
        let want = sorted(batch.iter().map(|p| canonical(p)).collect());
        prop_assert!(back == want, "output splits back into exactly the input packets");
    }

    /// Segments arriving last-first still coalesce into the super-packet: each earlier segment prepends,
    /// the merged packet keeps the PSH of its last segment and takes the first segment's IPv4 ID.
    #[test]
    fn reversed_segments_prepend_back_into_the_super_packet(burst in any_burst().prop_filter("TCP", |b| !b.flow.udp)) {
        let mut batch = burst.segments();
        batch.reverse();
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(out.len(), 1);
        let want = burst.run_wire(0, burst.count());
        prop_assert!(out[0].1 == want, "got {:?}, want {:?}", VirtioNetHdr::decode(&out[0].1), VirtioNetHdr::decode(&want));
    }

    /// One segment that is not a candidate (SYN, FIN, RST, URG or CWR, no ACK, a bad L4 or IPv4 header
    /// checksum, IPv4 options, an IPv6 extension header, an IPv4 fragment) or that cannot join its
    /// neighbours (ECE on it alone) is written alone and unchanged with a zero header; the segments
    /// before it coalesce into one packet and those after it into another.
    #[test]
    fn a_non_candidate_segment_splits_the_burst_and_passes_unchanged(
        burst in any_burst().prop_filter("three segments or more", |b| b.count() >= 3),
        pos_frac in 0.0f64..1.0,
        spoil in 0usize..11,
    ) {
        let n = burst.count();
        let k = ((n as f64 * pos_frac) as usize).min(n - 1);
        let mut batch = burst.segments();
        let flip_last_byte = |mut p: Vec<u8>| {
            // A bit flip in the payload (or, for a zero-length payload, in the checksum itself).
            let last = p.len() - 1;
            p[last] ^= 0x40;
            p
        };
        let spoiled = match (spoil, burst.flow.udp, burst.flow.v6) {
            (8, ..) | (9, _, true) => with_ip_options(&batch[k]),
            (9, _, false) => {
                let mut p = batch[k].clone();
                p[6] |= 0x20; // more fragments
                fix_ipv4_header_checksum(&mut p);
                p
            }
            (10, _, false) => {
                let mut p = batch[k].clone();
                p[10] ^= 0x01;
                p
            }
            (1..=7, false, _) => {
                let mut flags = burst.seg.flags;
                flags.psh &= k == n - 1;
                match spoil {
                    1 => flags.fin = true,
                    2 => flags.syn = true,
                    3 => flags.rst = true,
                    4 => flags.urg = true,
                    5 => flags.ece = !flags.ece,
                    6 => flags.cwr = true,
                    _ => flags.ack = false,
                }
                let g = usize::from(burst.gso);
                let seg = Seg {
                    seq: burst.seg.seq.wrapping_add((k * g) as u32),
                    ip_id: burst.seg.ip_id.wrapping_add(k as u16),
                    flags,
                };
                packets::packet(&burst.flow, seg, &burst.data[k * g..((k + 1) * g).min(burst.data.len())])
            }
            _ => flip_last_byte(batch[k].clone()),
        };
        batch[k] = spoiled.clone();
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut alone = VirtioNetHdr::default().to_bytes().to_vec();
        alone.extend_from_slice(&spoiled);
        if burst.flow.udp && spoil == 9 && !burst.flow.v6 {
            // An IPv4 fragment has no flow the engine can read (only the first one carries the ports),
            // so the datagrams after it may join the packet before it: only require that it is written
            // alone, unchanged, and that nothing is lost or altered.
            prop_assert!(out.iter().any(|(_, w)| *w == alone), "the non-candidate is written alone");
            let mut back = Vec::new();
            for (_, w) in &out {
                back.extend(unpack(w).map_err(TestCaseError::fail)?);
            }
            let back = sorted(back.iter().map(|p| canonical(p)).collect());
            prop_assert!(back == sorted(batch.iter().map(|p| canonical(p)).collect()));
            return Ok(());
        }
        let mut want = Vec::new();
        if k > 0 {
            want.push(burst.run_wire(0, k));
        }
        want.push(alone);
        if k + 1 < n {
            want.push(burst.run_wire(k + 1, n));
        }
        let got = sorted(out.into_iter().map(|(_, w)| w).collect());
        prop_assert_eq!(got.len(), want.len());
        prop_assert!(got == sorted(want));
    }

    /// With UDP GRO off, UDP packets are written one by one, unchanged, with zero headers.
    #[test]
    fn udp_gro_off_writes_udp_unchanged(burst in any_burst().prop_filter("UDP", |b| b.flow.udp)) {
        let batch = burst.segments();
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), false)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = sorted(out.into_iter().map(|(_, w)| w).collect());
        let want = sorted(batch.iter().map(|p| {
            let mut w = VirtioNetHdr::default().to_bytes().to_vec();
            w.extend_from_slice(p);
            w
        }).collect());
        prop_assert!(got == want);
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// A long in-order stream of full-size segments coalesces into as few packets as fit in 65535 bytes
    /// each, in order, none larger.
    #[test]
    fn long_streams_are_cut_at_65535_bytes(
        flow in strategies::flow().prop_filter("TCP", |f| !f.udp),
        gso in 500u16..1500,
        total_segments in 50usize..120,
        seq in any::<u32>(),
    ) {
        let g = usize::from(gso);
        let burst = Burst {
            flow: flow.clone(),
            seg: Seg { seq, ip_id: 0, flags: Flags::ACK },
            data: packets::payload(total_segments * g, 1),
            gso,
        };
        let batch = burst.segments();
        let out = coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let per_packet = flow.max_payload() / g;
        prop_assert_eq!(out.len(), total_segments.div_ceil(per_packet));
        let got = sorted(out.into_iter().map(|(_, w)| w).collect());
        let want = sorted((0..total_segments).step_by(per_packet)
            .map(|a| burst.run_wire(a, (a + per_packet).min(total_segments))).collect());
        prop_assert!(got == want);
    }

    /// The table is left empty and reusable: a batch gives the same result through a table that has
    /// already coalesced other batches as through a fresh one.
    #[test]
    fn a_reused_table_gives_the_same_result(first in any_burst(), second in any_burst()) {
        let mut table = GroTable::new();
        let _ = coalesce(&first.segments(), VirtioNetHdr::LEN, &mut table, true);
        let reused = coalesce(&second.segments(), VirtioNetHdr::LEN, &mut table, true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let fresh = coalesce(&second.segments(), VirtioNetHdr::LEN, &mut GroTable::new(), true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(reused, fresh);
    }
}

/// Coalescing grows a packet only within its buffer: with room for exactly `m` segments per buffer, a
/// burst comes back in packets of `m` segments; with no spare room at all, nothing merges and every
/// packet is written unchanged.
#[test]
fn merges_stop_at_the_end_of_the_buffer() {
    for (v6, udp) in [(false, false), (true, false), (false, true), (true, true)] {
        let flow = Flow::simple(v6, udp);
        let gso = 1000u16;
        let n = 10;
        let burst = Burst {
            flow: flow.clone(),
            seg: Seg {
                seq: 5,
                ip_id: 5,
                flags: Flags::ACK_PSH,
            },
            data: packets::payload(n * usize::from(gso), 9),
            gso,
        };
        let batch = burst.segments();
        for m in [1usize, 3, 4] {
            let room = VirtioNetHdr::LEN + flow.header_len() + m * usize::from(gso);
            let mut bufs: Vec<Vec<u8>> = batch
                .iter()
                .map(|p| {
                    let mut b = vec![0u8; room];
                    b[VirtioNetHdr::LEN..VirtioNetHdr::LEN + p.len()].copy_from_slice(p);
                    b
                })
                .collect();
            let sizes: Vec<usize> = batch.iter().map(Vec::len).collect();
            let mut plan = GroPlan::new();
            let options = GroOptions {
                tcp: true,
                udp: true,
            };
            tun_offload::handle_gro(
                &mut bufs,
                &sizes,
                VirtioNetHdr::LEN,
                &mut GroTable::new(),
                options,
                &mut plan,
            )
            .expect("valid batch");
            let mut scratch = [0u8; FRAME_HEAD_MAX];
            let got = sorted(
                plan.frames()
                    .iter()
                    .map(|f| {
                        let [head, rest] = f
                            .encode(&bufs[f.buf], VirtioNetHdr::LEN, &mut scratch)
                            .expect("packet within its buffer");
                        [head, rest].concat()
                    })
                    .collect(),
            );
            let want = sorted(
                (0..n)
                    .step_by(m)
                    .map(|a| burst.run_wire(a, (a + m).min(n)))
                    .collect(),
            );
            assert_eq!(got.len(), want.len(), "v6={v6} udp={udp} m={m}");
            assert!(
                got == want,
                "v6={v6} udp={udp} m={m}: packets of {m} segments"
            );
            assert!(bufs.iter().all(|b| b.len() == room), "no buffer grew");
        }
    }
}

/// A UDP datagram that is written on its own (here an empty one) keeps its place in its flow: the
/// datagrams after it are never merged into a packet written before it.
#[test]
fn a_udp_datagram_written_alone_is_not_overtaken() {
    for v6 in [false, true] {
        let flow = Flow::simple(v6, true);
        let seg = |ip_id| Seg {
            seq: 0,
            ip_id,
            flags: Flags::ACK,
        };
        let data: Vec<Vec<u8>> = (0..4).map(|i| packets::payload(1000, i)).collect();
        let pkt = |i: usize| packets::packet(&flow, seg(i as u16), &data[i]);
        let empty = packets::packet(&flow, seg(9), &[]);
        let batch = vec![pkt(0), pkt(1), empty.clone(), pkt(2), pkt(3)];
        let out =
            coalesce(&batch, VirtioNetHdr::LEN, &mut GroTable::new(), true).expect("valid batch");
        let order: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            order,
            [0, 2, 3],
            "v6={v6}: datagrams 0+1, the empty one, then 2+3"
        );
        let mut alone = VirtioNetHdr::default().to_bytes().to_vec();
        alone.extend_from_slice(&empty);
        assert_eq!(out[1].1, alone);
        let joined = |a: usize| [data[a].clone(), data[a + 1].clone()].concat();
        let first = packets::super_packet(&flow, seg(0), &joined(0), 1000, HdrLen::Exact, false);
        let second = packets::super_packet(&flow, seg(2), &joined(2), 1000, HdrLen::Exact, false);
        assert_eq!(out[0].1, first);
        assert_eq!(out[2].1, second);
    }
}
