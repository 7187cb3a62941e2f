//! Once warm, the data path allocates nothing per packet or per batch: a bulk transfer through a pair of
//! endpoints leaves their heap allocation counts (printed with the counters) where they were, give or take
//! what the counter printing itself and the timers allocate.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use support::*;

/// Allocations of `endpoint` and the TUN packets it read and wrote so far.
fn allocations_and_packets(endpoint: &Endpoint) -> (u64, u64) {
    let c = endpoint.counters();
    (
        c["heap_allocations"],
        c["tun_packets_read"] + c["tun_packets_written"],
    )
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn a_warm_tunnel_allocates_nothing_per_packet() {
    warm_transfer_allocates_nothing(52, true);
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn a_warm_tunnel_without_offloads_allocates_nothing_per_packet() {
    warm_transfer_allocates_nothing(53, false);
}

fn warm_transfer_allocates_nothing(net: u8, offload: bool) {
    let under = Underlay::new();
    let (_ka, _kb, a, b) = peered_pair_with(&under, net, offload);
    let b_addr = IpAddr::V4(Ipv4Addr::new(10, net, 0, 2));
    // Warm: every buffer, the peers' sessions, the sockets' GSO/GRO state.
    tcp_transfer(&under.a, &under.b, b_addr, 5201, 4 << 20, 1);

    let (a0, b0) = (allocations_and_packets(&a), allocations_and_packets(&b));
    tcp_transfer(&under.a, &under.b, b_addr, 5202, 32 << 20, 2);
    let (a1, b1) = (allocations_and_packets(&a), allocations_and_packets(&b));

    for (side, (alloc0, packets0), (alloc1, packets1)) in [("A", a0, a1), ("B", b0, b1)] {
        let (allocations, packets) = (alloc1 - alloc0, packets1 - packets0);
        eprintln!("{side}: {allocations} allocations over {packets} TUN packets");
        // 32 MiB is ~24,000 packets each way in hundreds of batches: one allocation per batch would be far
        // above this bound, which leaves room for the counters' own printing and a handful of timer events.
        assert!(
            packets > 20_000,
            "{side}: the transfer went through the endpoint ({packets} packets)"
        );
        assert!(
            allocations < 100,
            "{side}: {allocations} allocations while carrying {packets} packets"
        );
    }
}
