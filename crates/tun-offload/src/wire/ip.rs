//! The IP header: one checked view for both versions, with the version's layout as data.

use super::{bytes, read_u8, read_u16, read_u32, write_u16};
use crate::{OffloadError, checksum};

/// The IP version of a packet, and where each version keeps the fields the engine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4: 20..60-byte header, 4-byte addresses.
    V4,
    /// IPv6: 40-byte fixed header, 16-byte addresses.
    V6,
}

impl IpVersion {
    /// Length of the fixed part of the header.
    pub const fn fixed_header_len(self) -> usize {
        match self {
            Self::V4 => 20,
            Self::V6 => 40,
        }
    }

    /// Length of one address.
    pub const fn addr_len(self) -> usize {
        match self {
            Self::V4 => 4,
            Self::V6 => 16,
        }
    }

    /// Offset of the source address; the destination follows it.
    pub const fn src_offset(self) -> usize {
        match self {
            Self::V4 => 12,
            Self::V6 => 8,
        }
    }

    /// Offset of the protocol (IPv4) or next-header (IPv6) byte.
    const fn protocol_offset(self) -> usize {
        match self {
            Self::V4 => 9,
            Self::V6 => 6,
        }
    }

    /// Offset of the 16-bit length field: total length (IPv4), payload length (IPv6).
    const fn length_offset(self) -> usize {
        match self {
            Self::V4 => 2,
            Self::V6 => 4,
        }
    }

    /// Bytes of header the length field leaves out: none for IPv4's total length, 40 for IPv6's payload
    /// length.
    const fn length_excludes(self) -> usize {
        match self {
            Self::V4 => 0,
            Self::V6 => 40,
        }
    }

    /// Offset of the IPv4 total length field.
    const IPV4_TOTAL_LEN: usize = 2;
    /// Offset of the IPv4 identification field.
    const IPV4_IDENT: usize = 4;
    /// Offset of the IPv4 header checksum.
    const IPV4_CHECKSUM: usize = 10;
}

/// The IPv6 Fragment extension header's next-header value.
const IPV6_FRAGMENT: u8 = 44;

/// A checked view of the IP header at the start of `buf` (the whole packet or at least its header).
///
/// [`new_checked`](Self::new_checked) validates the version nibble and that the header (for IPv4 including
/// its options, for IPv6 the fixed 40 bytes) lies within `buf`. It does not compare the length field with
/// the buffer: [`total_len`](Self::total_len) reports it for the caller to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<T> {
    buf: T,
    version: IpVersion,
    header_len: usize,
}

impl<T: AsRef<[u8]>> IpPacket<T> {
    /// Validates the header at the start of `buf`.
    pub fn new_checked(buf: T) -> Result<Self, OffloadError> {
        let b = buf.as_ref();
        let Some(&first) = b.first() else {
            return Err(OffloadError::TooShort {
                what: "IP header",
                need: 1,
                have: 0,
            });
        };
        let (version, header_len) = match first >> 4 {
            4 => (IpVersion::V4, usize::from(first & 0x0f) * 4),
            6 => (IpVersion::V6, 40),
            _ => return Err(OffloadError::Malformed("IP version is neither 4 nor 6")),
        };
        if header_len < version.fixed_header_len() {
            return Err(OffloadError::Malformed("IPv4 header length (IHL) below 5"));
        }
        if b.len() < header_len {
            return Err(OffloadError::TooShort {
                what: "IP header",
                need: header_len,
                have: b.len(),
            });
        }
        Ok(Self {
            buf,
            version,
            header_len,
        })
    }

    /// A view of a header that [`new_checked`](Self::new_checked) validated before, from the `version` and
    /// `header_len` it found: later steps read and rewrite the fields by name without validating the same
    /// header again. The accessors still never panic; on bytes that are not that header they read what is
    /// there (zero past the end of `buf`).
    pub(crate) fn new_unchecked(buf: T, version: IpVersion, header_len: usize) -> Self {
        Self {
            buf,
            version,
            header_len,
        }
    }

    /// The buffer the view reads.
    pub(crate) fn into_inner(self) -> T {
        self.buf
    }

    /// The IP version.
    pub fn version(&self) -> IpVersion {
        self.version
    }

    /// Length of the header: IHL x 4 for IPv4, 40 for IPv6 (extension headers are payload here).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The IPv4 protocol or the IPv6 next-header field.
    pub fn protocol(&self) -> u8 {
        read_u8(self.buf.as_ref(), self.version.protocol_offset())
    }

    /// The source address (4 or 16 bytes).
    pub fn src(&self) -> &[u8] {
        let at = self.version.src_offset();
        bytes(self.buf.as_ref(), at, at + self.version.addr_len())
    }

    /// The destination address (4 or 16 bytes).
    pub fn dst(&self) -> &[u8] {
        let at = self.version.src_offset() + self.version.addr_len();
        bytes(self.buf.as_ref(), at, at + self.version.addr_len())
    }

    /// Source and destination address, back to back (8 or 32 bytes).
    pub fn addrs(&self) -> &[u8] {
        let at = self.version.src_offset();
        bytes(self.buf.as_ref(), at, at + 2 * self.version.addr_len())
    }

    /// The packet length the header claims: IPv4 total length, or 40 + IPv6 payload length.
    pub fn total_len(&self) -> usize {
        usize::from(read_u16(self.buf.as_ref(), self.version.length_offset()))
            + self.version.length_excludes()
    }

    /// The IPv4 identification (0 for IPv6, which has none in its fixed header).
    pub fn ident(&self) -> u16 {
        match self.version {
            IpVersion::V4 => read_u16(self.buf.as_ref(), IpVersion::IPV4_IDENT),
            IpVersion::V6 => 0,
        }
    }

    /// True for a fragment: IPv4 with more-fragments set or a non-zero fragment offset, IPv6 with a Fragment
    /// extension header (after any hop-by-hop, routing or destination options headers).
    pub fn is_fragment(&self) -> bool {
        match self.version {
            IpVersion::V4 => read_u16(self.buf.as_ref(), 6) & 0x3fff != 0,
            IpVersion::V6 => {
                let b = self.buf.as_ref();
                let mut next = self.protocol();
                let mut at = self.header_len;
                // Each step moves at least 8 bytes and stops at the end of the buffer.
                while matches!(next, 0 | 43 | 60) && b.len() >= at + 8 {
                    next = read_u8(b, at);
                    at += (usize::from(read_u8(b, at + 1)) + 1) * 8;
                }
                next == IPV6_FRAGMENT
            }
        }
    }

    /// The unfolded sum of the IPv4 header without the fields a segmenter changes per segment: total
    /// length, identification and the checksum itself (0 for IPv6, which has no header checksum). See
    /// [`fill_header_checksum_from`](Self::fill_header_checksum_from).
    pub fn sum_without_length_ident_and_checksum(&self) -> u64 {
        match self.version {
            IpVersion::V4 => {
                let h = self.header();
                let acc = checksum::sum(bytes(h, 0, IpVersion::IPV4_TOTAL_LEN), 0);
                let acc = checksum::sum(
                    bytes(h, IpVersion::IPV4_IDENT + 2, IpVersion::IPV4_CHECKSUM),
                    acc,
                );
                checksum::sum(bytes(h, IpVersion::IPV4_CHECKSUM + 2, h.len()), acc)
            }
            IpVersion::V6 => 0,
        }
    }

    /// True when the IPv4 header checksum verifies (always true for IPv6, which has none).
    pub fn header_checksum_valid(&self) -> bool {
        match self.version {
            IpVersion::V4 => checksum::checksum(self.header(), 0) == 0xffff,
            IpVersion::V6 => true,
        }
    }

    /// The header bytes (`header_len` of them).
    pub fn header(&self) -> &[u8] {
        bytes(self.buf.as_ref(), 0, self.header_len)
    }

    /// The unfolded TCP/UDP pseudo-header sum of this packet's addresses for `protocol` and `l4_len`.
    pub fn pseudo_header_sum(&self, protocol: u8, l4_len: usize) -> u64 {
        checksum::pseudo_header_sum(self.src(), self.dst(), protocol, l4_len as u32)
    }

    /// True when the fields that must be equal for two packets to be coalesced are equal.
    ///
    /// IPv4: TOS (including the ECN bits), TTL, and the DF and reserved flag bits. IPv6: the first 32 bits
    /// (version, traffic class and flow label) and the hop limit. The flow label is compared, as the
    /// kernel's own GRO does (it treats a different label as a different flow): a sender that changes its
    /// label (for example after a retransmission timeout re-hashes the flow) asked for a different path,
    /// and merging would hide that from whatever forwards the packet next. Packets of different versions
    /// never agree.
    pub fn agrees_with<U: AsRef<[u8]>>(&self, other: &IpPacket<U>) -> bool {
        let (a, b) = (self.buf.as_ref(), other.buf.as_ref());
        if self.version != other.version {
            return false;
        }
        match self.version {
            IpVersion::V4 => {
                read_u8(a, 1) == read_u8(b, 1)
                    && read_u8(a, 6) >> 5 == read_u8(b, 6) >> 5
                    && read_u8(a, 8) == read_u8(b, 8)
            }
            IpVersion::V6 => read_u32(a, 0) == read_u32(b, 0) && read_u8(a, 7) == read_u8(b, 7),
        }
    }

    /// Where the transport header starts and which protocol it is, walking IPv6 extension headers.
    ///
    /// IPv6 hop-by-hop (0), routing (43) and destination-options (60) headers are skipped; a fragment header
    /// (44) or any other header is returned as the protocol found. Every step is bounds-checked.
    pub fn transport(&self) -> Result<(usize, u8), OffloadError> {
        let b = self.buf.as_ref();
        let mut next = self.protocol();
        let mut at = self.header_len;
        if self.version == IpVersion::V6 {
            while matches!(next, 0 | 43 | 60) {
                if b.len() < at + 8 {
                    return Err(OffloadError::TooShort {
                        what: "IPv6 extension header",
                        need: at + 8,
                        have: b.len(),
                    });
                }
                let len = (usize::from(read_u8(b, at + 1)) + 1) * 8;
                next = read_u8(b, at);
                at += len;
            }
        }
        if b.len() < at {
            return Err(OffloadError::TooShort {
                what: "IPv6 extension header",
                need: at,
                have: b.len(),
            });
        }
        Ok((at, next))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IpPacket<T> {
    /// Sets the length field so that it describes a packet of `len` bytes (IPv4 total length, or IPv6 payload
    /// length `len - 40`). Lengths over 65535 are the caller's to prevent; they are truncated.
    pub fn set_total_len(&mut self, len: usize) {
        let field = len.saturating_sub(self.version.length_excludes()) as u16;
        write_u16(self.buf.as_mut(), self.version.length_offset(), field);
    }

    /// Sets the IPv4 identification; does nothing for IPv6.
    pub fn set_ident(&mut self, ident: u16) {
        if self.version == IpVersion::V4 {
            write_u16(self.buf.as_mut(), IpVersion::IPV4_IDENT, ident);
        }
    }

    /// Sets the IPv4 header checksum from [`sum_without_length_ident_and_checksum`] taken from a header
    /// that differs from this one at most in those three fields: two additions instead of a pass over the
    /// header. Does nothing for IPv6.
    ///
    /// [`sum_without_length_ident_and_checksum`]: Self::sum_without_length_ident_and_checksum
    pub fn fill_header_checksum_from(&mut self, sum_without: u64) {
        if self.version == IpVersion::V4 {
            let b = self.buf.as_ref();
            let variable = u64::from(read_u16(b, IpVersion::IPV4_TOTAL_LEN))
                + u64::from(read_u16(b, IpVersion::IPV4_IDENT));
            let sum = !checksum::fold(checksum::add(sum_without, variable));
            write_u16(self.buf.as_mut(), IpVersion::IPV4_CHECKSUM, sum);
        }
    }

    /// Recomputes the IPv4 header checksum; does nothing for IPv6.
    pub fn fill_header_checksum(&mut self) {
        if self.version == IpVersion::V4 {
            write_u16(self.buf.as_mut(), IpVersion::IPV4_CHECKSUM, 0);
            let sum = checksum::finish(self.header(), 0);
            write_u16(self.buf.as_mut(), IpVersion::IPV4_CHECKSUM, sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[1] = 0xb8;
        p[3] = 28;
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p
    }

    #[test]
    fn ipv4_view_reads_fields_at_their_offsets() {
        let p = v4();
        let ip = IpPacket::new_checked(&p[..]).unwrap();
        assert_eq!(ip.version(), IpVersion::V4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.protocol(), 17);
        assert_eq!(ip.src(), [10, 0, 0, 1]);
        assert_eq!(ip.dst(), [10, 0, 0, 2]);
        assert_eq!(ip.total_len(), 28);
        assert!(!ip.is_fragment());
    }

    #[test]
    fn ipv4_header_checksum_fill_then_verify() {
        let mut p = v4();
        let mut ip = IpPacket::new_checked(&mut p[..]).unwrap();
        ip.set_total_len(1000);
        ip.fill_header_checksum();
        assert!(ip.header_checksum_valid());
        assert_eq!(ip.total_len(), 1000);
        p[8] = 63;
        assert!(
            !IpPacket::new_checked(&p[..])
                .unwrap()
                .header_checksum_valid()
        );
    }

    #[test]
    fn header_checksum_from_the_fixed_sum_equals_a_full_recompute() {
        // With options, so the fixed part covers more than the 20-byte header.
        let mut template = vec![0u8; 32];
        template[..20].copy_from_slice(&v4()[..20]);
        template[0] = 0x48;
        template[3] = 32;
        template[20..32].copy_from_slice(&[0x94, 0x04, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let fixed = IpPacket::new_checked(&template[..])
            .unwrap()
            .sum_without_length_ident_and_checksum();
        for (len, ident) in [
            (32usize, 0u16),
            (1500, 0xffff),
            (65535, 0x1234),
            (40, 0x8000),
        ] {
            let mut full = template.clone();
            let mut ip = IpPacket::new_checked(&mut full[..]).unwrap();
            ip.set_total_len(len);
            ip.set_ident(ident);
            ip.fill_header_checksum();
            let mut quick = full.clone();
            quick[10..12].copy_from_slice(&[0xde, 0xad]);
            IpPacket::new_checked(&mut quick[..])
                .unwrap()
                .fill_header_checksum_from(fixed);
            assert_eq!(quick, full, "len {len}, ident {ident:#x}");
            assert!(
                IpPacket::new_checked(&quick[..])
                    .unwrap()
                    .header_checksum_valid()
            );
        }
    }

    #[test]
    fn ipv6_length_field_excludes_the_fixed_header() {
        let mut p = [0u8; 48];
        p[0] = 0x60;
        let mut ip = IpPacket::new_checked(&mut p[..]).unwrap();
        ip.set_total_len(48);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 8);
        assert_eq!(IpPacket::new_checked(&p[..]).unwrap().total_len(), 48);
    }

    #[test]
    fn ihl_below_five_is_malformed() {
        let mut p = v4();
        p[0] = 0x44;
        assert!(matches!(
            IpPacket::new_checked(&p[..]),
            Err(OffloadError::Malformed(_))
        ));
    }

    #[test]
    fn options_beyond_the_buffer_are_too_short() {
        let mut p = v4();
        p[0] = 0x4f;
        assert!(matches!(
            IpPacket::new_checked(&p[..]),
            Err(OffloadError::TooShort { need: 60, .. })
        ));
    }

    #[test]
    fn version_other_than_4_or_6_is_malformed() {
        assert!(IpPacket::new_checked(&[0x55u8; 40][..]).is_err());
        assert!(IpPacket::new_checked(&[][..]).is_err());
    }

    #[test]
    fn mf_or_fragment_offset_marks_an_ipv4_fragment() {
        let mut p = v4();
        p[6] = 0x20;
        assert!(IpPacket::new_checked(&p[..]).unwrap().is_fragment());
        p[6] = 0x40;
        p[7] = 1;
        assert!(IpPacket::new_checked(&p[..]).unwrap().is_fragment());
    }

    #[test]
    fn a_fragment_header_marks_an_ipv6_fragment_also_behind_other_extension_headers() {
        let mut p = [0u8; 40 + 8 + 8 + 8];
        p[0] = 0x60;
        p[6] = 17;
        assert!(!IpPacket::new_checked(&p[..]).unwrap().is_fragment());
        p[6] = IPV6_FRAGMENT;
        p[40] = 17;
        assert!(IpPacket::new_checked(&p[..]).unwrap().is_fragment());
        // Hop-by-hop options, then destination options, then the fragment header.
        p[6] = 0;
        p[40] = 60;
        p[48] = IPV6_FRAGMENT;
        p[56] = 17;
        assert!(IpPacket::new_checked(&p[..]).unwrap().is_fragment());
        // A chain cut short by the end of the buffer is not a fragment (and does not read past it).
        assert!(!IpPacket::new_checked(&p[..44]).unwrap().is_fragment());
    }

    #[test]
    fn ipv6_transport_skips_extension_headers() {
        let mut p = [0u8; 40 + 8 + 16 + 8];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        p[40] = 60; // then destination options
        p[48] = 17; // then UDP
        p[49] = 1; // 16 bytes
        let ip = IpPacket::new_checked(&p[..]).unwrap();
        assert_eq!(ip.transport().unwrap(), (64, 17));
    }

    #[test]
    fn ipv6_extension_header_past_the_end_is_an_error() {
        let mut p = [0u8; 44];
        p[0] = 0x60;
        p[6] = 43;
        assert!(IpPacket::new_checked(&p[..]).unwrap().transport().is_err());
    }

    #[test]
    fn ipv6_flow_label_difference_disagrees() {
        let mut a = vec![0u8; 40];
        a[0] = 0x60;
        let mut b = a.clone();
        assert!(
            IpPacket::new_checked(&a[..])
                .unwrap()
                .agrees_with(&IpPacket::new_checked(&b[..]).unwrap())
        );
        b[3] = 1;
        assert!(
            !IpPacket::new_checked(&a[..])
                .unwrap()
                .agrees_with(&IpPacket::new_checked(&b[..]).unwrap())
        );
        a[3] = 1;
        a[7] = 1;
        assert!(
            !IpPacket::new_checked(&a[..])
                .unwrap()
                .agrees_with(&IpPacket::new_checked(&b[..]).unwrap())
        );
    }
}
