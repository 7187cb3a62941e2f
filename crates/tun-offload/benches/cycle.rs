//! One forwarding cycle in user space, as a TUN-to-TUN forwarder runs it: `gso_split` a 64 KB TCPv4
//! super-packet into the buffers of a write batch, then `handle_gro` them back into one super-packet. The
//! buffers are what `PacketBatch` allocates (64 of them, each with capacity for a 64 KB packet), so the
//! figure is the user-space cost of one read and one write of the forwarder, cache effects included.
//! Bytes counted: the super-packet's IP bytes. `cargo bench -p tun-offload --bench cycle`

#[path = "../tests/support/mod.rs"]
mod support;

use divan::{Bencher, black_box, counter::BytesCount};
use support::packets::{self, Flow, HdrLen, Seg};
use tun_offload::{GroTable, MAX_PACKET, VirtioNetHdr, gso_split, handle_gro};

fn main() {
    divan::main();
}

const BATCH: usize = 64;
const OFFSET: usize = VirtioNetHdr::LEN;
/// The buffers' length between cycles: a 1500-byte MTU.
const SEGMENT: usize = 1500;

#[divan::bench]
fn split_then_coalesce_64k(bencher: Bencher) {
    let flow = Flow::simple(false, false);
    let data = packets::payload(flow.max_payload(), 1);
    let mut read = packets::super_packet(&flow, Seg::FIRST, &data, 1448, HdrLen::Exact, false);
    let mut bufs: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| {
            let mut b = Vec::with_capacity(OFFSET + MAX_PACKET);
            b.resize(OFFSET + SEGMENT, 0);
            b
        })
        .collect();
    let mut sizes = [0usize; BATCH];
    let mut table = GroTable::new();
    let mut to_write = Vec::with_capacity(BATCH);
    bencher
        .counter(BytesCount::new(read.len() - OFFSET))
        .bench_local(|| {
            let n = gso_split(black_box(&mut read), &mut bufs, &mut sizes, OFFSET)
                .expect("a valid super-packet");
            for (buf, &size) in bufs.iter_mut().zip(&sizes).take(n) {
                buf.truncate(OFFSET + size);
            }
            handle_gro(&mut bufs[..n], OFFSET, &mut table, true, &mut to_write)
                .expect("a valid batch");
            assert_eq!(
                to_write.len(),
                1,
                "the segments coalesce into one packet again"
            );
            for buf in &mut bufs {
                buf.resize(OFFSET + SEGMENT, 0);
            }
            n
        });
}
