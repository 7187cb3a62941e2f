//! The data path allocates nothing once warmed up: `handle_gro` with a table that has seen a batch as
//! large, and `gso_split` always. Counted per thread by a counting global allocator in this test binary.

mod support;

use support::batch::buffers;
use support::packets::{self, Flags, Flow, HdrLen, Seg};
use tun_offload::{
    GroOptions, GroPlan, GroTable, Layer, VirtioNetHdr, gso_split, handle_gro,
    handle_gro_with_layer,
};

const OFFSET: usize = VirtioNetHdr::LEN;

/// Batches that take every path: one TCP flow (appends), the same reversed (prepends), TCP and UDP
/// flows of both versions interleaved, and packets that pass through.
fn batches() -> Vec<Vec<Vec<u8>>> {
    let one = packets::burst(&Flow::simple(false, false), 64, 1448, 1);
    let mut reversed = packets::burst(&Flow::simple(true, false), 40, 1000, 2);
    reversed.reverse();
    let lists: Vec<Vec<Vec<u8>>> = (0..8u16)
        .map(|i| {
            let mut flow = Flow::simple(i & 1 == 1, i & 2 == 2);
            flow.sport += i;
            packets::burst(&flow, 8, 1200, u32::from(i))
        })
        .collect();
    let mut mixed: Vec<Vec<u8>> = (0..8)
        .flat_map(|k| lists.iter().map(move |l| l[k].clone()))
        .collect();
    let mut syn = Flow::simple(false, false);
    syn.sport = 1;
    mixed.push(packets::packet(
        &syn,
        Seg {
            seq: 1,
            ip_id: 1,
            flags: Flags {
                syn: true,
                ..Flags::ACK
            },
        },
        &[],
    ));
    vec![one, reversed, mixed]
}

#[test]
fn a_warmed_up_gro_table_coalesces_without_allocating() {
    let options = GroOptions {
        tcp: true,
        udp: true,
    };
    for batch in batches() {
        let mut table = GroTable::new();
        let mut plan = GroPlan::new();
        let (mut bufs, sizes) = buffers(&batch, OFFSET);
        handle_gro(&mut bufs, &sizes, OFFSET, &mut table, options, &mut plan).expect("valid batch");
        let warm = plan.frames().to_vec();
        let info = allocation_counter::measure(|| {
            handle_gro(&mut bufs, &sizes, OFFSET, &mut table, options, &mut plan)
                .expect("valid batch");
        });
        assert_eq!(plan.frames(), warm, "same batch, same result");
        assert!(plan.frames().len() < batch.len(), "the batch coalesced");
        assert_eq!(
            info.count_total, 0,
            "handle_gro allocated {} times once warmed up",
            info.count_total
        );
    }
}

#[test]
fn a_warmed_up_gro_table_coalesces_ethernet_frames_without_allocating() {
    let options = GroOptions {
        tcp: true,
        udp: true,
    };
    for batch in batches() {
        let frames: Vec<Vec<u8>> = batch
            .iter()
            .map(|p| [&packets::link_header(1, p)[..], p].concat())
            .collect();
        let mut table = GroTable::new();
        let mut plan = GroPlan::new();
        let (mut bufs, sizes) = buffers(&frames, OFFSET);
        let mut run = |table: &mut GroTable, plan: &mut GroPlan| {
            handle_gro_with_layer(&mut bufs, &sizes, OFFSET, Layer::L2, table, options, plan)
                .expect("valid batch");
        };
        run(&mut table, &mut plan);
        let warm = plan.frames().to_vec();
        let info = allocation_counter::measure(|| run(&mut table, &mut plan));
        assert_eq!(plan.frames(), warm, "same batch, same result");
        assert!(plan.frames().len() < batch.len(), "the batch coalesced");
        assert_eq!(
            info.count_total, 0,
            "handle_gro_with_layer allocated {} times once warmed up",
            info.count_total
        );
    }
}

#[test]
fn splitting_never_allocates() {
    for (v6, udp) in [(false, false), (true, false), (false, true), (true, true)] {
        let flow = Flow::simple(v6, udp);
        let data = packets::payload(flow.max_payload(), 3);
        let seg = Seg::FIRST;
        let mut read = packets::super_packet(&flow, seg, &data, 1400, HdrLen::Exact, false);
        let mut bufs = vec![vec![0u8; 1600]; 64];
        let mut sizes = [0usize; 64];
        let mut n = 0;
        let info = allocation_counter::measure(|| {
            n = gso_split(&mut read, &mut bufs, &mut sizes, OFFSET).expect("a valid super-packet");
        });
        assert_eq!(n, data.len().div_ceil(1400));
        assert_eq!(
            info.count_total, 0,
            "gso_split allocated {} times",
            info.count_total
        );
    }
}
