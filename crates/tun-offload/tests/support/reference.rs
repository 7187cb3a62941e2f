//! An independent, deliberately simple Internet checksum (RFC 1071, 16 bits at a time) to judge the
//! engine's output by something other than its own arithmetic.

/// The unfolded sum of `data` as big-endian 16-bit words, an odd last byte padded with zero.
pub(crate) fn sum(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|p| u64::from(p[0]) << 8 | u64::from(p.get(1).copied().unwrap_or(0)))
        .sum()
}

/// Folds a sum to 16 bits with end-around carry (not inverted).
pub(crate) fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The unfolded TCP/UDP pseudo-header sum.
pub(crate) fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, l4_len: u32) -> u64 {
    sum(src) + sum(dst) + u64::from(proto) + u64::from(l4_len >> 16) + u64::from(l4_len & 0xffff)
}

/// True when the L4 segment `l4` (header with its checksum field, plus payload) checks out against the
/// pseudo-header of `src`/`dst`/`proto`: the complete sum folds to 0xffff.
pub(crate) fn l4_valid(src: &[u8], dst: &[u8], proto: u8, l4: &[u8]) -> bool {
    fold(pseudo_header(src, dst, proto, l4.len() as u32) + sum(l4)) == 0xffff
}
