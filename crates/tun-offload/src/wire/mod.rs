//! Checked views of the Ethernet, IPv4, IPv6, TCP and UDP headers that the offload engine reads and rewrites.
//!
//! As in smoltcp's `wire`, each view is built with `new_checked`, which validates the lengths once; after
//! that its accessors cannot panic and never read past the header they describe. The differences between
//! IPv4 and IPv6, and between TCP and UDP, are data ([`IpVersion`], [`Transport`]) consulted by one set of
//! functions, not copies of them.
//!
//! ```
//! use tun_offload::wire::{IpPacket, IpVersion, TcpHeader};
//! # let mut packet = vec![0u8; 40];
//! # packet[0] = 0x45; packet[3] = 40; packet[9] = 6; packet[32] = 0x50;
//! let ip = IpPacket::new_checked(&packet[..])?;
//! assert_eq!(ip.version(), IpVersion::V4);
//! let tcp = TcpHeader::new_checked(&packet[ip.header_len()..])?;
//! assert_eq!(tcp.header_len(), 20);
//! # Ok::<(), tun_offload::OffloadError>(())
//! ```

mod ethernet;
mod ip;
mod tcp;
mod udp;

pub use ethernet::{ETHERNET_HEADER_LEN, Layer, LinkHeader, MAX_LINK_HEADER_LEN};
pub use ip::{IpPacket, IpVersion};
pub use tcp::{TcpHeader, tcp_flags};
pub use udp::UdpHeader;

/// The transport protocols the engine segments and coalesces, with the facts that differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (protocol 6).
    Tcp,
    /// UDP (protocol 17).
    Udp,
}

impl Transport {
    /// The IP protocol number (IPv4 protocol, IPv6 next header).
    pub const fn protocol(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }

    /// Offset of the checksum field from the start of the L4 header (`csum_offset` in the virtio header).
    pub const fn checksum_offset(self) -> usize {
        match self {
            Self::Tcp => 16,
            Self::Udp => 6,
        }
    }

    /// The shortest header of this protocol.
    pub const fn min_header_len(self) -> usize {
        match self {
            Self::Tcp => 20,
            Self::Udp => 8,
        }
    }

    /// The transport for an IP protocol number, if it is TCP or UDP.
    pub const fn from_protocol(protocol: u8) -> Option<Self> {
        match protocol {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            _ => None,
        }
    }
}

/// Byte equality of two short header fields (TCP options: at most 40 bytes), compared a word at a time in
/// line: a call to `memcmp` for a dozen bytes costs more than the comparison, once per coalesced packet.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    a_words
        .iter()
        .zip(b_words)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_tail.iter().zip(b_tail).all(|(x, y)| x == y)
}

/// Reads the big-endian `u16` at `at`; a caller that validated the length never sees the `0` fallback.
#[inline]
pub(crate) fn read_u16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..)
        .and_then(<[u8]>::first_chunk::<2>)
        .map_or(0, |b| u16::from_be_bytes(*b))
}

/// Reads the big-endian `u32` at `at`; a caller that validated the length never sees the `0` fallback.
#[inline]
pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |b| u32::from_be_bytes(*b))
}

/// Reads the `N` bytes at `at`; a caller that validated the length never sees the zero fallback.
#[inline]
pub(crate) fn read_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..)
        .and_then(<[u8]>::first_chunk::<N>)
        .copied()
        .unwrap_or([0; N])
}

/// Reads the byte at `at`; a caller that validated the length never sees the `0` fallback.
#[inline]
pub(crate) fn read_u8(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

/// Writes `value` big-endian at `at`, if the buffer reaches that far (validated by the caller).
#[inline]
pub(crate) fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    if let Some(b) = buf.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<2>) {
        *b = value.to_be_bytes();
    }
}

/// Writes `value` big-endian at `at`, if the buffer reaches that far (validated by the caller).
#[inline]
pub(crate) fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    if let Some(b) = buf.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<4>) {
        *b = value.to_be_bytes();
    }
}

/// Writes the byte at `at`, if the buffer reaches that far (validated by the caller).
#[inline]
pub(crate) fn write_u8(buf: &mut [u8], at: usize, value: u8) {
    if let Some(b) = buf.get_mut(at) {
        *b = value;
    }
}

/// `buf[range]` or an empty slice: for ranges the caller validated.
#[inline]
pub(crate) fn bytes(buf: &[u8], start: usize, end: usize) -> &[u8] {
    buf.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality_for_every_length_and_differing_byte() {
        let a: Vec<u8> = (0..41u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..=a.len() {
            assert!(same_bytes(&a[..len], &a[..len]), "len {len}");
            for at in 0..len {
                let mut b = a[..len].to_vec();
                b[at] ^= 0x10;
                assert!(!same_bytes(&a[..len], &b), "len {len}, byte {at}");
            }
            if len > 0 {
                assert!(!same_bytes(&a[..len], &a[..len - 1]), "len {len}");
            }
        }
    }
}
