//! The ceiling of any TUN data path: each raw frame (virtio-net header + super-packet) read from one device
//! is written unchanged to the other, with no library data path at all (`tun-forward --passthrough`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;

use tun_offload::virtio::{GSO_NONE, GSO_TCPV4, GSO_TCPV6};
use tun_offload::{MAX_PACKET, VirtioNetHdr};

use crate::relay::Direction;
use crate::stats::Counters;

/// A device's fd for blocking raw reads and writes: a duplicate (the same open file, so the same queue),
/// switched to blocking mode, as a [`File`].
pub fn raw_file(device: BorrowedFd<'_>) -> Result<File, String> {
    tun_sys::io::set_nonblocking(device, false)
        .map_err(|e| format!("make the fd blocking: {e}"))?;
    let fd = device
        .try_clone_to_owned()
        .map_err(|e| format!("duplicate the fd: {e}"))?;
    Ok(File::from(fd))
}

/// MTU-sized packets in one raw frame (virtio-net header + packet), and their IP bytes, for the counters.
#[must_use]
pub fn frame_packets(frame: &[u8]) -> (usize, usize) {
    let Some(packet) = frame.get(VirtioNetHdr::LEN..) else {
        return (0, 0);
    };
    let ip_bytes = packet.len();
    let Ok(hdr) = VirtioNetHdr::decode(frame) else {
        return (1, ip_bytes);
    };
    let gso_size = usize::from(hdr.gso_size);
    if hdr.gso_kind() == GSO_NONE || gso_size == 0 {
        return (1, ip_bytes);
    }
    // Headers: IP up to csum_start, then TCP (data offset) or UDP (8 bytes).
    let l4 = usize::from(hdr.csum_start);
    let l4_len = if matches!(hdr.gso_kind(), GSO_TCPV4 | GSO_TCPV6) {
        packet.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4)
    } else {
        8
    };
    let payload = packet.len().saturating_sub(l4 + l4_len);
    let segments = payload.div_ceil(gso_size).max(1);
    // Every segment repeats the headers.
    (segments, payload + segments * (l4 + l4_len))
}

/// One direction of the passthrough: read a frame from `from`, write it unchanged to `to` (both from
/// [`raw_file`]), until the process exits or the devices fail for good (the relay's error budget).
pub fn passthrough(mut from: impl Read, mut to: impl Write, counters: &Counters) {
    let mut frame = vec![0u8; VirtioNetHdr::LEN + MAX_PACKET];
    let mut direction = Direction::new(counters);
    while direction.going_on() {
        let read = match from.read(&mut frame) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => read,
        };
        let Some(len) = direction.read(read, |&len| frame_packets(&frame[..len])) else {
            continue;
        };
        // A TUN device takes a frame whole or not at all: a short count would be a kernel fault.
        direction.wrote(to.write(&frame[..len]).and_then(|n| {
            if n == len {
                Ok(n)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("{n} of {len} bytes written"),
                ))
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_frame_is_one_packet_of_its_ip_bytes() {
        let mut frame = vec![0u8; VirtioNetHdr::LEN];
        frame.extend_from_slice(&[0x45; 60]);
        assert_eq!(frame_packets(&frame), (1, 60));
        assert_eq!(frame_packets(&frame[..4]), (0, 0));
    }

    #[test]
    fn a_tso_frame_counts_its_segments_each_with_the_headers() {
        let hdr = VirtioNetHdr {
            flags: 1,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut frame = hdr.to_bytes().to_vec();
        let mut packet = vec![0u8; 40 + 2500];
        packet[20 + 12] = 5 << 4; // TCP data offset: 20 bytes
        frame.extend_from_slice(&packet);
        // 2500 bytes of payload in segments of 1000: three segments, each with 40 bytes of headers.
        assert_eq!(frame_packets(&frame), (3, 2500 + 3 * 40));
    }
}
