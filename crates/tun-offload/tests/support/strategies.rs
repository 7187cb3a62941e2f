//! proptest strategies for flows and super-packets (only the proptest-based tests include this file).
// Each test binary uses a different part of these strategies.
#![allow(dead_code)]

use proptest::prelude::*;

use crate::support::packets::{Flow, HdrLen, timestamps};

/// TCP options of every shape the engine must carry unchanged: none, timestamps, and arbitrary bytes
/// of any allowed length (the engine copies options, it does not interpret them).
pub(crate) fn tcp_options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| timestamps(a, b)),
        (1usize..=10).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
    ]
}

/// Any TCP or UDP flow over IPv4 or IPv6.
pub(crate) fn flow() -> impl Strategy<Value = Flow> {
    (any::<bool>(), any::<bool>()).prop_flat_map(|(v6, udp)| flow_of(v6, udp))
}

/// A flow of the given IP version and protocol, everything else arbitrary.
pub(crate) fn flow_of(v6: bool, udp: bool) -> impl Strategy<Value = Flow> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<(u16, u16)>(),
        any::<(u8, u8, bool)>(),
        0u32..(1 << 20),
        any::<(u32, u16)>(),
        tcp_options(),
    )
        .prop_map(
            move |(
                mut src,
                mut dst,
                (sport, dport),
                (tos, ttl, df),
                flow_label,
                (ack, window),
                options,
            )| {
                if !v6 {
                    src[4..].fill(0);
                    dst[4..].fill(0);
                }
                Flow {
                    v6,
                    udp,
                    src,
                    dst,
                    sport,
                    dport,
                    tos,
                    ttl,
                    df: df && !v6,
                    flow_label: if v6 { flow_label } else { 0 },
                    ack: if udp { 0 } else { ack },
                    window: if udp { 0 } else { window },
                    options: if udp { Vec::new() } else { options },
                }
            },
        )
}

/// A payload length and a segment size for `flow`: realistic MSS values and arbitrary ones, with at
/// most about `max_segments` segments so that debug builds stay quick.
pub(crate) fn sizes(
    flow: &Flow,
    max_segments: usize,
) -> impl Strategy<Value = (usize, u16)> + use<> {
    let max = flow.max_payload();
    (
        1usize..=max,
        prop_oneof![
            Just(1448u16),
            Just(1428),
            Just(1232),
            Just(536),
            1u16..=u16::MAX
        ],
    )
        .prop_map(move |(len, gso)| {
            let floor = len.div_ceil(max_segments);
            let gso = usize::from(gso).clamp(floor.max(1), max);
            (len, gso as u16)
        })
}

/// Every way the kernel fills `hdr_len`.
pub(crate) fn hdr_len() -> impl Strategy<Value = HdrLen> {
    prop_oneof![
        Just(HdrLen::Exact),
        Just(HdrLen::FirstSegment),
        any::<u16>().prop_map(HdrLen::Bogus)
    ]
}
