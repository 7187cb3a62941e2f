//! The UDP header.

use super::{read_array, read_u16, write_u16};
use crate::OffloadError;

const LENGTH: usize = 4;
const CHECKSUM: usize = 6;

/// A checked view of a UDP header at the start of `buf` (the L4 part of a packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeader<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    /// The header is always 8 bytes.
    pub const LEN: usize = 8;

    /// Validates that `buf` holds a UDP header.
    pub fn new_checked(buf: T) -> Result<Self, OffloadError> {
        let have = buf.as_ref().len();
        if have < Self::LEN {
            return Err(OffloadError::TooShort {
                what: "UDP header",
                need: Self::LEN,
                have,
            });
        }
        Ok(Self { buf })
    }

    /// A view of a header that [`new_checked`](Self::new_checked) validated before (see
    /// [`IpPacket::new_unchecked`](super::IpPacket::new_unchecked)).
    pub(crate) fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// Source and destination port, as the 4 bytes on the wire.
    pub fn ports(&self) -> [u8; 4] {
        read_array(self.buf.as_ref(), 0)
    }

    /// The length field (header plus payload).
    pub fn length(&self) -> u16 {
        read_u16(self.buf.as_ref(), LENGTH)
    }

    /// The checksum field (0 means "no checksum" over IPv4).
    pub fn checksum(&self) -> u16 {
        read_u16(self.buf.as_ref(), CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpHeader<T> {
    /// Sets the length field.
    pub fn set_length(&mut self, len: u16) {
        write_u16(self.buf.as_mut(), LENGTH, len);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buf.as_mut(), CHECKSUM, checksum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_bytes_are_too_short() {
        assert!(UdpHeader::new_checked(&[0u8; 7][..]).is_err());
    }

    #[test]
    fn length_and_checksum_at_their_offsets() {
        let mut h = [0u8; 8];
        let mut udp = UdpHeader::new_checked(&mut h[..]).unwrap();
        udp.set_length(0x1234);
        udp.set_checksum(0xabcd);
        assert_eq!(udp.length(), 0x1234);
        assert_eq!(udp.checksum(), 0xabcd);
        assert_eq!(h, [0, 0, 0, 0, 0x12, 0x34, 0xab, 0xcd]);
    }
}
