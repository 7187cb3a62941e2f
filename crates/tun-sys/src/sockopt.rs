//! Socket options that the standard library does not expose, as typed calls.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets UDP_SEGMENT (UDP GSO) on a UDP socket: every later send of more than `segment_size` bytes is
/// cut by the kernel into datagrams of `segment_size` bytes (the last may be shorter), handed down as one
/// super-packet. Zero turns it off. Needs Linux >= 4.18.
///
/// ```no_run
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// tun_sys::sockopt::set_udp_segment(&socket, 1200)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_udp_segment(socket: &impl AsFd, segment_size: u16) -> io::Result<()> {
    crate::sys::setsockopt_int(
        socket.as_fd(),
        libc::SOL_UDP,
        libc::UDP_SEGMENT,
        libc::c_int::from(segment_size),
    )
}

/// Reads back the UDP_SEGMENT size of a UDP socket (0 when off).
pub fn udp_segment(socket: &impl AsFd) -> io::Result<u16> {
    let mut value: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option length"))?;
    // SAFETY: the fd is borrowed from a live socket; `value` and `len` are valid places the kernel
    // writes at most `len` bytes to.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            std::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    crate::sys::cvt(rc)?;
    u16::try_from(value).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("UDP_SEGMENT value {value} out of range"),
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
