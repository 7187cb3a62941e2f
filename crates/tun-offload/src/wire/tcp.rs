//! The TCP header.

use super::{bytes, read_array, read_u8, read_u16, read_u32, write_u8, write_u16, write_u32};
use crate::{OffloadError, checksum};

/// TCP flag bits (the byte at offset 13).
pub mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push: deliver the data now.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is valid.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

const SEQ: usize = 4;
const ACK: usize = 8;
const DATA_OFFSET: usize = 12;
const FLAGS: usize = 13;
const WINDOW: usize = 14;
const CHECKSUM: usize = 16;

/// A checked view of a TCP header at the start of `buf` (the L4 part of a packet).
///
/// [`new_checked`](Self::new_checked) validates the data offset (20..=60 bytes) against `buf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader<T> {
    buf: T,
    header_len: usize,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    /// Validates the TCP header at the start of `buf`.
    pub fn new_checked(buf: T) -> Result<Self, OffloadError> {
        let b = buf.as_ref();
        if b.len() < 20 {
            return Err(OffloadError::TooShort {
                what: "TCP header",
                need: 20,
                have: b.len(),
            });
        }
        let header_len = usize::from(read_u8(b, DATA_OFFSET) >> 4) * 4;
        if header_len < 20 {
            return Err(OffloadError::Malformed("TCP data offset below 5"));
        }
        if b.len() < header_len {
            return Err(OffloadError::TooShort {
                what: "TCP header",
                need: header_len,
                have: b.len(),
            });
        }
        Ok(Self { buf, header_len })
    }

    /// A view of a header that [`new_checked`](Self::new_checked) validated before, from the `header_len`
    /// it found (see [`IpPacket::new_unchecked`](super::IpPacket::new_unchecked)).
    pub(crate) fn new_unchecked(buf: T, header_len: usize) -> Self {
        Self { buf, header_len }
    }

    /// Header length from the data offset, options included (20..=60).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Source and destination port, as the 4 bytes on the wire.
    pub fn ports(&self) -> [u8; 4] {
        read_array(self.buf.as_ref(), 0)
    }

    /// The sequence number.
    pub fn seq(&self) -> u32 {
        read_u32(self.buf.as_ref(), SEQ)
    }

    /// The acknowledgment number.
    pub fn ack(&self) -> u32 {
        read_u32(self.buf.as_ref(), ACK)
    }

    /// The flag bits (see [`tcp_flags`]).
    pub fn flags(&self) -> u8 {
        read_u8(self.buf.as_ref(), FLAGS)
    }

    /// The receive window (unscaled).
    pub fn window(&self) -> u16 {
        read_u16(self.buf.as_ref(), WINDOW)
    }

    /// The byte holding the data offset, the reserved bits and the AE (accurate ECN) bit.
    pub fn data_offset_byte(&self) -> u8 {
        read_u8(self.buf.as_ref(), DATA_OFFSET)
    }

    /// The options (`header_len - 20` bytes).
    pub fn options(&self) -> &[u8] {
        bytes(self.buf.as_ref(), 20, self.header_len)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buf.as_ref(), CHECKSUM)
    }

    /// The unfolded sum of the header without the fields a segmenter changes per segment: the sequence
    /// number, the data offset and flags word, and the checksum. Add those back with
    /// [`checksum::add`](crate::checksum::add) to get the header's sum without summing it again.
    pub fn sum_without_seq_flags_and_checksum(&self) -> u64 {
        let h = self.buf.as_ref();
        let acc = checksum::sum(bytes(h, 0, SEQ), 0);
        let acc = checksum::sum(bytes(h, ACK, DATA_OFFSET), acc);
        let acc = checksum::sum(bytes(h, WINDOW, CHECKSUM), acc);
        checksum::sum(bytes(h, CHECKSUM + 2, self.header_len), acc)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpHeader<T> {
    /// Sets the sequence number.
    pub fn set_seq(&mut self, seq: u32) {
        write_u32(self.buf.as_mut(), SEQ, seq);
    }

    /// Sets the flag bits.
    pub fn set_flags(&mut self, flags: u8) {
        write_u8(self.buf.as_mut(), FLAGS, flags);
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
    fn sum_without_per_segment_fields_plus_those_fields_is_the_header_sum() {
        let mut h = [0u8; 32];
        for (i, b) in h.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(53).wrapping_add(7);
        }
        h[12] = 0x81; // data offset 8 (32 bytes) and the AE bit
        let tcp = TcpHeader::new_checked(&h[..]).unwrap();
        let fixed = tcp.sum_without_seq_flags_and_checksum();
        let variable = u64::from(tcp.seq() >> 16)
            + u64::from(tcp.seq() & 0xffff)
            + (u64::from(tcp.data_offset_byte()) << 8 | u64::from(tcp.flags()))
            + u64::from(tcp.checksum());
        assert_eq!(
            checksum::fold(checksum::add(fixed, variable)),
            checksum::checksum(&h, 0)
        );
    }

    #[test]
    fn data_offset_below_five_is_malformed() {
        let mut h = [0u8; 20];
        h[12] = 0x40;
        assert!(matches!(
            TcpHeader::new_checked(&h[..]),
            Err(OffloadError::Malformed(_))
        ));
    }

    #[test]
    fn options_past_the_buffer_are_too_short() {
        let mut h = [0u8; 40];
        h[12] = 0xf0;
        assert!(matches!(
            TcpHeader::new_checked(&h[..]),
            Err(OffloadError::TooShort { need: 60, .. })
        ));
    }

    #[test]
    fn fields_read_and_write_at_their_offsets() {
        let mut h = [0u8; 32];
        h[12] = 0x80;
        h[20] = 1;
        let mut tcp = TcpHeader::new_checked(&mut h[..]).unwrap();
        tcp.set_seq(0x0102_0304);
        tcp.set_flags(tcp_flags::ACK | tcp_flags::PSH);
        tcp.set_checksum(0xbeef);
        assert_eq!(tcp.header_len(), 32);
        assert_eq!(tcp.seq(), 0x0102_0304);
        assert_eq!(tcp.flags(), 0x18);
        assert_eq!(tcp.checksum(), 0xbeef);
        assert_eq!(tcp.options().len(), 12);
        assert_eq!(&h[4..8], &[1, 2, 3, 4]);
        assert_eq!(&h[16..18], &[0xbe, 0xef]);
    }
}
