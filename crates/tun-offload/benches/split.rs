//! Throughput of `gso_split` on 64 KB super-packets as the kernel hands them over (TCPv4 and TCPv6 with
//! timestamps, UDP over IPv4 and IPv6). Bytes counted: the super-packet's IP bytes.
//! `cargo bench -p tun-offload --bench split`

#[path = "../tests/support/mod.rs"]
mod support;

use divan::{Bencher, black_box, counter::BytesCount};
use support::packets::{self, Flow, HdrLen, Seg};
use tun_offload::gso_split;

fn main() {
    divan::main();
}

/// (name, IPv6, UDP, gso_size): the segment sizes seen on a 1500-byte MTU.
const CASES: [(&str, bool, bool, u16); 4] = [
    ("tcp4", false, false, 1448),
    ("tcp6", true, false, 1428),
    ("udp4", false, true, 1472),
    ("udp6", true, true, 1452),
];

fn super_packet(v6: bool, udp: bool, gso: u16) -> Vec<u8> {
    let flow = Flow::simple(v6, udp);
    let data = packets::payload(flow.max_payload(), 1);
    let seg = Seg::FIRST;
    packets::super_packet(&flow, seg, &data, gso, HdrLen::Exact, false)
}

#[divan::bench(args = CASES.map(|c| c.0))]
fn gso_split_64k(bencher: Bencher, name: &str) {
    let (_, v6, udp, gso) = CASES
        .into_iter()
        .find(|c| c.0 == name)
        .expect("a listed case");
    let mut read = super_packet(v6, udp, gso);
    let mut bufs = vec![vec![0u8; 1600]; 64];
    let mut sizes = [0usize; 64];
    bencher
        .counter(BytesCount::new(read.len() - 10))
        .bench_local(|| {
            gso_split(black_box(&mut read), &mut bufs, &mut sizes, 10)
                .expect("a valid super-packet")
        });
}
