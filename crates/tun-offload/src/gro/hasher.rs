//! The hasher of the flow table: a few multiplies per flow key instead of SipHash's rounds.

use std::hash::Hasher;

/// A fast hash for flow keys (FxHash's multiply-rotate over 64-bit words). Not collision-resistant, which is
/// acceptable here: a table lives for one batch, so colliding flows cost at most a batch-sized scan.
#[derive(Debug, Default)]
pub(super) struct FlowHasher(u64);

impl FlowHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FlowHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let (words, rest) = bytes.as_chunks::<8>();
        for word in words {
            self.mix(u64::from_le_bytes(*word));
        }
        for &byte in rest {
            self.mix(u64::from(byte));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
        // Multiplication leaves the low bits weakest, and the table picks buckets by them: fold the high
        // half in.
        self.0 ^= self.0 >> 29;
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
