//! Throughput of `handle_gro` on a batch of 64 MTU-sized packets, as a device's write path sees them:
//! one TCP flow, and 8 TCP and UDP flows over IPv4 and IPv6 interleaved. Bytes counted: the IP bytes of
//! the batch. The batch is rebuilt outside the timed part before every run.
//! `cargo bench -p tun-offload --bench gro`

#[path = "../tests/support/mod.rs"]
mod support;

use divan::{Bencher, black_box, counter::BytesCount};
use support::batch::buffers;
use support::packets::{self, Flags, Flow, Seg};
use tun_offload::{GroTable, VirtioNetHdr, handle_gro};

fn main() {
    divan::main();
}

const BATCH: usize = 64;

/// `count` in-order segments of `flow`, the last with PSH.
fn segments(flow: &Flow, count: usize, gso: u16, salt: u32) -> Vec<Vec<u8>> {
    let data = packets::payload(count * usize::from(gso), salt);
    let seg = Seg {
        seq: 1000,
        ip_id: 1,
        flags: Flags::ACK_PSH,
    };
    packets::segments(flow, seg, &data, gso, false)
}

fn run(bencher: Bencher, batch: &[Vec<u8>]) {
    let bytes: usize = batch.iter().map(Vec::len).sum();
    let bufs = buffers(batch, VirtioNetHdr::LEN);
    let mut table = GroTable::new();
    let mut to_write = Vec::with_capacity(BATCH);
    bencher
        .counter(BytesCount::new(bytes))
        .with_inputs(|| bufs.clone())
        .bench_local_refs(|bufs| {
            to_write.clear();
            handle_gro(
                black_box(bufs),
                VirtioNetHdr::LEN,
                &mut table,
                true,
                &mut to_write,
            )
            .expect("valid batch");
            to_write.len()
        });
}

/// 64 segments of one TCPv4 flow: coalesced into as few 64 KB packets as fit.
#[divan::bench]
fn one_tcp4_flow(bencher: Bencher) {
    run(
        bencher,
        &segments(&Flow::simple(false, false), BATCH, 1448, 1),
    );
}

/// 8 flows (TCP and UDP, IPv4 and IPv6, different ports) of 8 segments each, round-robin interleaved.
#[divan::bench]
fn eight_mixed_flows(bencher: Bencher) {
    let lists: Vec<Vec<Vec<u8>>> = (0..8u16)
        .map(|i| {
            let mut flow = Flow::simple(i & 1 == 1, i & 2 == 2);
            flow.sport += i;
            let gso = if flow.udp { 1400 } else { 1380 };
            segments(&flow, BATCH / 8, gso, u32::from(i))
        })
        .collect();
    let batch: Vec<Vec<u8>> = (0..BATCH / 8)
        .flat_map(|k| lists.iter().map(move |l| l[k].clone()))
        .collect();
    run(bencher, &batch);
}
