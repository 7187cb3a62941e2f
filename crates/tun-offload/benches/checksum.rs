//! Throughput of the Internet checksum over the sizes a TUN device sees, from a bare TCP header to a
//! full 64 KB super-packet. `cargo bench -p tun-offload --bench checksum`; divan reports bytes per second.

use divan::{Bencher, black_box, counter::BytesCount};
use tun_offload::checksum;

fn main() {
    divan::main();
}

const SIZES: [usize; 8] = [64, 128, 256, 512, 1500, 4096, 16384, 65535];

/// Deterministic, non-uniform bytes so that every carry path of the adder is taken.
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The folded sum alone: the inner loop of every split and coalesce.
#[divan::bench(args = SIZES)]
fn fold_of_sum(bencher: Bencher, len: usize) {
    let buf = data(len);
    bencher
        .counter(BytesCount::new(len))
        .bench(|| checksum::checksum(black_box(&buf), 0));
}

/// A full TCP-style checksum: pseudo-header seed plus the segment, inverted as stored in a header.
#[divan::bench(args = SIZES)]
fn finish_with_pseudo_header(bencher: Bencher, len: usize) {
    let buf = data(len);
    bencher.counter(BytesCount::new(len)).bench(|| {
        let len32 = u32::try_from(black_box(&buf).len()).unwrap_or(u32::MAX);
        let seed = checksum::pseudo_header_sum(&[10, 0, 0, 1], &[10, 0, 0, 2], 6, len32);
        checksum::finish(black_box(&buf), seed)
    });
}

/// Copying while summing, as the split does for each segment's payload: bytes copied per second.
#[divan::bench(args = SIZES)]
fn copy_and_sum(bencher: Bencher, len: usize) {
    let src = data(len);
    let mut dst = vec![0u8; len];
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| checksum::copy_and_sum(black_box(&mut dst), black_box(&src), 0));
}

/// A plain copy of the same sizes, the floor `copy_and_sum` is measured against.
#[divan::bench(args = SIZES)]
fn copy_only(bencher: Bencher, len: usize) {
    let src = data(len);
    let mut dst = vec![0u8; len];
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| black_box(&mut dst).copy_from_slice(black_box(&src)));
}
