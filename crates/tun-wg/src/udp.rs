//! The UDP socket: one dual-stack socket, GSO on send and GRO on receive through quinn-udp.
//!
//! quinn-udp sets `UDP_GRO` when the kernel has it, encodes `UDP_SEGMENT` per `sendmsg`, and, where the
//! kernel or the device refuses GSO (EIO/EINVAL), stops using it ([`Udp::max_segments`] drops to 1). A run
//! that fails as a whole is sent again one datagram per call here, so nothing is lost to the probe.

use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};

/// The socket buffers asked for: a GSO burst is 64 KiB, and a receiver that falls behind for a moment
/// should not drop a whole window of them (the kernel caps the plain options at `net.core.*mem_max`; root
/// gets this size through the FORCE options).
const SOCKET_BUFFER: usize = 8 << 20;

/// How long a receive waits before it looks again at whether the socket was replaced.
const RECV_TIMEOUT: Duration = Duration::from_millis(250);

/// The most bytes one GSO `sendmsg` carries: the UDP payload limit over IPv4.
pub(crate) const MAX_GSO_BYTES: usize = 65_507;

/// A bound UDP socket and what quinn-udp probed about it.
#[derive(Debug)]
pub(crate) struct Udp {
    socket: std::net::UdpSocket,
    state: UdpSocketState,
    port: u16,
    v6: bool,
}

impl Udp {
    /// Binds `port` (0: any) on every address, IPv6 and IPv4 alike where the host has IPv6.
    pub(crate) fn bind(port: u16, fwmark: u32) -> io::Result<Udp> {
        let (socket, v6) = match Self::socket(Domain::IPV6, port) {
            Ok(s) => (s, true),
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                (Self::socket(Domain::IPV4, port)?, false)
            }
            Err(e) => return Err(e),
        };
        let socket: std::net::UdpSocket = socket.into();
        raise_buffers(&socket);
        if fwmark != 0 {
            setsockopt(&socket, sockopt::Mark, &fwmark).map_err(io::Error::from)?;
        }
        let state = UdpSocketState::new((&socket).into())?;
        // quinn-udp makes the socket non-blocking; the data path blocks in its own thread instead, and
        // the timeout lets the receiver notice a socket replaced by a new listen_port.
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(RECV_TIMEOUT))?;
        let port = socket.local_addr()?.port();
        Ok(Udp {
            socket,
            state,
            port,
            v6,
        })
    }

    fn socket(domain: Domain, port: u16) -> io::Result<Socket> {
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        let addr: SocketAddr = if domain == Domain::IPV6 {
            socket.set_only_v6(false)?;
            (Ipv6Addr::UNSPECIFIED, port).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, port).into()
        };
        socket.bind(&addr.into())?;
        Ok(socket)
    }

    /// The port bound.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Sets SO_MARK.
    pub(crate) fn set_fwmark(&self, mark: u32) -> io::Result<()> {
        setsockopt(&self.socket, sockopt::Mark, &mark).map_err(io::Error::from)
    }

    /// How many datagrams one send may carry now (1 once GSO was refused).
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends `contents` to `to`: datagrams of `segment` bytes back to back, the last possibly shorter, in
    /// one `sendmsg` when there are several; if the kernel refuses that, one datagram per call. Returns the
    /// number of `sendmsg` calls that failed.
    pub(crate) fn send(&self, to: SocketAddr, contents: &[u8], segment: usize) -> usize {
        let destination = self.destination(to);
        let several = contents.len() > segment;
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: several.then_some(segment),
            src_ip: None,
        };
        match self.state.try_send((&self.socket).into(), &transmit) {
            Ok(()) => 0,
            Err(_) if several => contents
                .chunks(segment)
                .filter(|d| self.send(to, d, d.len()) != 0)
                .count(),
            Err(_) => 1,
        }
    }

    /// IPv4 peers are reached through the dual-stack socket by their IPv4-mapped address.
    fn destination(&self, to: SocketAddr) -> SocketAddr {
        match to.ip() {
            IpAddr::V4(v4) if self.v6 => SocketAddr::new(v4.to_ipv6_mapped().into(), to.port()),
            _ => to,
        }
    }

    /// Receives one datagram or one GRO batch of them into `buf`; returns the bytes, the size of each
    /// datagram (the last may be shorter) and the sender. Times out after [`RECV_TIMEOUT`]
    /// (`WouldBlock`/`TimedOut`).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, usize, SocketAddr)> {
        let mut meta = [RecvMeta::default()];
        let mut bufs = [IoSliceMut::new(buf)];
        let n = self
            .state
            .recv((&self.socket).into(), &mut bufs, &mut meta)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let m = meta[0];
        let from = SocketAddr::new(m.addr.ip().to_canonical(), m.addr.port());
        Ok((m.len, m.stride.max(1), from))
    }
}

/// Raises both socket buffers to [`SOCKET_BUFFER`]: the FORCE options as root, the plain ones (capped by
/// the sysctls) otherwise. Failure is not fatal: the defaults work, only less well under bursts.
fn raise_buffers(socket: &std::net::UdpSocket) {
    if setsockopt(socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &SOCKET_BUFFER);
    }
    if setsockopt(socket, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(socket, sockopt::SndBuf, &SOCKET_BUFFER);
    }
}
