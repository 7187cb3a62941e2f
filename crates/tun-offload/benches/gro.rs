//! Throughput of `handle_gro` on a batch of 64 MTU-sized packets, as a device's write path sees them:
//! one TCP flow, and 8 TCP and UDP flows over IPv4 and IPv6 interleaved, each frame of the plan encoded as
//! it would be written. Bytes counted: the IP bytes of the batch. Planning leaves the packets as they are,
//! so every run takes the same warm buffers. Also the passthrough case, 64 TCP segments that cannot be
//! coalesced (each its own flow).
//! `cargo bench -p tun-offload --bench gro`

#[path = "../tests/support/mod.rs"]
mod support;

use divan::{Bencher, black_box, counter::BytesCount};
use support::batch::buffers;
use support::packets::{self, Flow};
use tun_offload::{FRAME_HEAD_MAX, GroOptions, GroPlan, GroTable, VirtioNetHdr, handle_gro};

fn main() {
    divan::main();
}

const BATCH: usize = 64;

/// Times `handle_gro` and the encoding of its frames over `batch`; `outputs` is how many packets the batch
/// must give, checked once up front so that the benchmark measures coalescing, not a fallback.
fn run(bencher: Bencher, batch: &[Vec<u8>], outputs: usize) {
    const OFFSET: usize = VirtioNetHdr::LEN;
    let options = GroOptions {
        tcp: true,
        udp: true,
    };
    let bytes: usize = batch.iter().map(Vec::len).sum();
    let mut table = GroTable::new();
    let mut plan = GroPlan::with_capacity(BATCH);
    let (mut bufs, sizes) = buffers(batch, OFFSET);
    handle_gro(&mut bufs, &sizes, OFFSET, &mut table, options, &mut plan).expect("valid batch");
    assert_eq!(
        plan.frames().len(),
        outputs,
        "the batch coalesces as intended"
    );
    let mut scratch = [0u8; FRAME_HEAD_MAX];
    bencher.counter(BytesCount::new(bytes)).bench_local(|| {
        handle_gro(
            black_box(&mut bufs),
            &sizes,
            OFFSET,
            &mut table,
            options,
            &mut plan,
        )
        .expect("valid batch");
        let mut written = 0;
        for frame in plan.frames() {
            let [head, rest] = frame
                .encode(&bufs[frame.buf], OFFSET, &mut scratch)
                .expect("packets within their buffers");
            written += black_box(head).len() + black_box(rest).len();
        }
        written
    });
}

/// 64 segments of one TCPv4 flow: coalesced into as few 64 KB packets as fit (45 + 19 segments).
// One batch (64 buffers of 64 KB) per sample keeps the prepared inputs small.
#[divan::bench(sample_size = 1, sample_count = 500)]
fn one_tcp4_flow(bencher: Bencher) {
    let batch = packets::burst(&Flow::simple(false, false), BATCH, 1448, 1);
    run(bencher, &batch, 2);
}

/// 8 flows (TCP and UDP, IPv4 and IPv6, different ports) of 8 segments each, round-robin interleaved.
#[divan::bench(sample_size = 1, sample_count = 500)]
fn eight_mixed_flows(bencher: Bencher) {
    let lists: Vec<Vec<Vec<u8>>> = (0..8u16)
        .map(|i| {
            let mut flow = Flow::simple(i & 1 == 1, i & 2 == 2);
            flow.sport += i;
            let gso = if flow.udp { 1400 } else { 1380 };
            packets::burst(&flow, BATCH / 8, gso, u32::from(i))
        })
        .collect();
    let batch: Vec<Vec<u8>> = (0..BATCH / 8)
        .flat_map(|k| lists.iter().map(move |l| l[k].clone()))
        .collect();
    run(bencher, &batch, 8);
}

/// 64 TCPv4 segments of 64 different flows: nothing merges, every packet is checked and written alone.
#[divan::bench(sample_size = 1, sample_count = 500)]
fn sixty_four_flows_nothing_merges(bencher: Bencher) {
    let batch: Vec<Vec<u8>> = (0..BATCH as u16)
        .map(|i| {
            let mut flow = Flow::simple(false, false);
            flow.sport += i;
            packets::burst(&flow, 1, 1448, u32::from(i)).remove(0)
        })
        .collect();
    run(bencher, &batch, BATCH);
}
