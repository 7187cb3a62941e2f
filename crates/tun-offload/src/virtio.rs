//! `struct virtio_net_hdr`: the 10-byte header that precedes every packet on an `IFF_VNET_HDR` TUN device.

use crate::OffloadError;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum field holds the pseudo-header seed; finish it from
/// `csum_start` to the end of the packet and store it at `csum_start + csum_offset`.
pub const FLAG_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum has been verified.
pub const FLAG_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_NONE`: not a super-packet.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: an IPv4 TCP super-packet (TSO).
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation offload (UFO), obsolete and refused.
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`: an IPv6 TCP super-packet (TSO).
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: a UDP super-packet (USO), IPv4 or IPv6 as the packet says.
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: or'ed onto a TCP type when the segments must honour CWR.
pub const GSO_ECN: u8 = 0x80;

/// The virtio-net header as plain values; [`decode`](Self::decode) and [`encode`](Self::encode) handle the
/// little-endian wire form.
///
/// ```
/// use tun_offload::VirtioNetHdr;
/// let hdr = VirtioNetHdr { flags: 1, gso_type: 1, hdr_len: 52, gso_size: 1448, csum_start: 20, csum_offset: 16 };
/// let mut wire = [0u8; VirtioNetHdr::LEN];
/// hdr.encode(&mut wire)?;
/// assert_eq!(VirtioNetHdr::decode(&wire)?, hdr);
/// # Ok::<(), tun_offload::OffloadError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VirtioNetHdr {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// One of the `GSO_*` types, possibly with [`GSO_ECN`] or'ed in.
    pub gso_type: u8,
    /// Length of the IP plus L4 headers, as the sender claims it (never trusted on input).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Offset of the L4 header from the start of the IP packet.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Size of the header on the wire.
    pub const LEN: usize = 10;

    /// Reads a header from the first [`LEN`](Self::LEN) bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, OffloadError> {
        let Some(b) = bytes.first_chunk::<{ Self::LEN }>() else {
            return Err(OffloadError::TooShort {
                what: "virtio-net header",
                need: Self::LEN,
                have: bytes.len(),
            });
        };
        Ok(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16::from_le_bytes([b[2], b[3]]),
            gso_size: u16::from_le_bytes([b[4], b[5]]),
            csum_start: u16::from_le_bytes([b[6], b[7]]),
            csum_offset: u16::from_le_bytes([b[8], b[9]]),
        })
    }

    /// Writes the header into the first [`LEN`](Self::LEN) bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), OffloadError> {
        let have = out.len();
        let Some(b) = out.first_chunk_mut::<{ Self::LEN }>() else {
            return Err(OffloadError::TooShort {
                what: "virtio-net header buffer",
                need: Self::LEN,
                have,
            });
        };
        *b = self.to_bytes();
        Ok(())
    }

    /// The header's wire form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let [h0, h1] = self.hdr_len.to_le_bytes();
        let [g0, g1] = self.gso_size.to_le_bytes();
        let [s0, s1] = self.csum_start.to_le_bytes();
        let [o0, o1] = self.csum_offset.to_le_bytes();
        [self.flags, self.gso_type, h0, h1, g0, g1, s0, s1, o0, o1]
    }

    /// True when [`FLAG_NEEDS_CSUM`] is set.
    pub fn needs_csum(&self) -> bool {
        self.flags & FLAG_NEEDS_CSUM != 0
    }

    /// The GSO type without the [`GSO_ECN`] bit.
    pub fn gso_kind(&self) -> u8 {
        self.gso_type & !GSO_ECN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reads_little_endian_fields_seen_on_tcpv4_bulk() {
        // flags 1, gso_type 1, hdr_len 52, gso_size 1448, csum_start 20, csum_offset 16.
        let wire = [1, 1, 52, 0, 0xa8, 0x05, 20, 0, 16, 0];
        let hdr = VirtioNetHdr::decode(&wire).unwrap();
        assert_eq!(
            hdr,
            VirtioNetHdr {
                flags: 1,
                gso_type: 1,
                hdr_len: 52,
                gso_size: 1448,
                csum_start: 20,
                csum_offset: 16
            }
        );
    }

    #[test]
    fn decode_of_nine_bytes_is_an_error() {
        assert!(matches!(
            VirtioNetHdr::decode(&[0; 9]),
            Err(OffloadError::TooShort {
                need: 10,
                have: 9,
                ..
            })
        ));
    }

    #[test]
    fn encode_into_nine_bytes_is_an_error() {
        let mut out = [0u8; 9];
        assert!(VirtioNetHdr::default().encode(&mut out).is_err());
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let hdr = VirtioNetHdr {
            flags: 3,
            gso_type: 0x84,
            hdr_len: 0xabcd,
            gso_size: 1,
            csum_start: 2,
            csum_offset: 3,
        };
        let mut out = [0u8; 12];
        hdr.encode(&mut out).unwrap();
        assert_eq!(VirtioNetHdr::decode(&out).unwrap(), hdr);
        assert_eq!(hdr.gso_kind(), GSO_TCPV6);
    }
}
