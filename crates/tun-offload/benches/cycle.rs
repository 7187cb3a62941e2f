//! One forwarding cycle in user space, as a TUN-to-TUN forwarder runs it: `gso_split` a 64 KB TCPv4
//! super-packet into the buffers of a write batch, then `handle_gro` them back into one super-packet. The
//! buffers are what `PacketBatch` allocates (64 of them, each with capacity for a 64 KB packet), so the
//! figure is the user-space cost of one read and one write of the forwarder, cache effects included.
//! Bytes counted: the super-packet's IP bytes. `cargo bench -p tun-offload --bench cycle`

#[path = "../tests/support/mod.rs"]
mod support;

use divan::{Bencher, black_box, counter::BytesCount};
use support::packets::{self, Flow, HdrLen, Seg};
use tun_offload::{
    FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, MAX_PACKET, VirtioNetHdr, gso_split, handle_gro,
};

fn main() {
    divan::main();
}

const BATCH: usize = 64;
const OFFSET: usize = VirtioNetHdr::LEN;

#[divan::bench]
fn split_then_coalesce_64k(bencher: Bencher) {
    let flow = Flow::simple(false, false);
    let data = packets::payload(flow.max_payload(), 1);
    let mut read = packets::super_packet(&flow, Seg::FIRST, &data, 1448, HdrLen::Exact, false);
    let mut bufs = vec![vec![0u8; OFFSET + MAX_PACKET]; BATCH];
    let mut sizes = [0usize; BATCH];
    let mut table = GroTable::new();
    let mut plan = GroPlan::with_capacity(BATCH);
    let options = GroOptions {
        tcp: true,
        udp: true,
    };
    let mut scratch = [0u8; FRAME_HEAD_MAX];
    bencher
        .counter(BytesCount::new(read.len() - OFFSET))
        .bench_local(|| {
            let n = gso_split(black_box(&mut read), &mut bufs, &mut sizes, OFFSET)
                .expect("a valid super-packet");
            handle_gro(
                &mut bufs[..n],
                &sizes,
                OFFSET,
                &mut table,
                options,
                &mut plan,
            )
            .expect("a valid batch");
            assert_eq!(
                plan.frames().len(),
                1,
                "the segments coalesce into one packet again"
            );
            let frame = plan.frames()[0];
            let [head, rest] = frame
                .encode(&bufs[frame.buf], OFFSET, &mut scratch)
                .expect("the packet within its buffer");
            black_box(head).len() + black_box(rest).len()
        });
}
