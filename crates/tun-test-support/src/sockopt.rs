//! Socket options that the standard library does not expose.

use std::io;
use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, setsockopt, sockopt::UdpGsoSegment};

/// Sets UDP_SEGMENT (UDP GSO) on a UDP socket: every later send of more than `segment_size` bytes is
/// cut by the kernel into datagrams of `segment_size` bytes (the last may be shorter), handed down as one
/// super-packet. Zero turns it off. Needs Linux >= 4.18.
///
/// ```no_run
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// tun_test_support::sockopt::set_udp_segment(&socket, 1200)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_udp_segment(socket: &impl AsFd, segment_size: u16) -> io::Result<()> {
    setsockopt(socket, UdpGsoSegment, &i32::from(segment_size)).map_err(io::Error::from)
}

/// Reads back the UDP_SEGMENT size of a UDP socket (0 when off).
pub fn udp_segment(socket: &impl AsFd) -> io::Result<u16> {
    let value = getsockopt(socket, UdpGsoSegment).map_err(io::Error::from)?;
    u16::try_from(value).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("UDP_SEGMENT {value} out of range"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_segment_reads_back_what_was_set() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        set_udp_segment(&socket, 1200).expect("set");
        assert_eq!(udp_segment(&socket).expect("get"), 1200);
        set_udp_segment(&socket, 0).expect("clear");
        assert_eq!(udp_segment(&socket).expect("get"), 0);
    }

    #[test]
    fn udp_segment_on_a_tcp_socket_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(set_udp_segment(&listener, 1200).is_err());
    }
}
