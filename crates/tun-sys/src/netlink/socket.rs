//! The `NETLINK_ROUTE` socket: open, subscribe to link notifications, ask for one link, receive; and
//! acknowledged requests and dumps for interface addresses and routes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use zerocopy::{FromZeros, Immutable, IntoBytes};

use super::addr::{
    AddressMessage, AddressSpec, IfAddrMsg, RTM_GETADDR, encode_del_address, encode_new_address,
};
use super::link::{
    GsoLimits, IFLA_GSO_MAX_SEGS, IFLA_GSO_MAX_SIZE, TunLinkInfo, encode_getlink, encode_set_link,
};
use super::message::{Message, Messages};
use super::route::{
    RTM_GETROUTE, RouteMessage, RouteSpec, RtMsg, encode_del_route, encode_new_route,
};
use super::wire::encode_dump;
use crate::sys::cvt;

/// How long a request waits for the kernel's answer: the one timeout of this crate. rtnetlink handles a
/// request within the `sendto` that carries it and queues the answer (or a dump's first part) before that
/// returns, so this only bounds a wait that something unforeseen would otherwise make endless; it is no
/// setting for callers to tune.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A receive buffer this large holds any datagram the kernel sends on a route socket: it sizes them to
/// at most 32 KiB (and a single link message on 6.18 is about 1.5 KiB).
pub const RECV_BUFFER_LEN: usize = 64 * 1024;

/// Why [`RouteSocket::recv`] returned no datagram.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// Nothing to read yet (the socket is non-blocking): wait for readability.
    #[error("no netlink datagram pending")]
    WouldBlock,
    /// `ENOBUFS`: the socket's receive queue overflowed and notifications were lost. The socket stays
    /// usable; the state must be read again (`RTM_GETLINK`) because some changes were missed.
    #[error("netlink receive queue overran; notifications were lost")]
    Overrun,
    /// A datagram larger than the buffer arrived; its tail was discarded, so it must be treated as lost.
    #[error("netlink datagram of {len} bytes did not fit the {capacity}-byte buffer")]
    Truncated {
        /// The datagram's real length.
        len: usize,
        /// The buffer's length.
        capacity: usize,
    },
    /// Any other receive error.
    #[error("netlink receive failed")]
    Io(#[source] io::Error),
}

impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::WouldBlock => io::ErrorKind::WouldBlock.into(),
            RecvError::Overrun => io::Error::from_raw_os_error(libc::ENOBUFS),
            RecvError::Truncated { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            RecvError::Io(e) => e,
        }
    }
}

/// A non-blocking, close-on-exec `NETLINK_ROUTE` socket, bound (and so subscribed) at creation.
///
/// The socket belongs to the network namespace of the thread that created it for its whole life: it
/// reports the links of that namespace only, and it keeps the namespace alive.
///
/// The calls that wait for the kernel's answer ([`add_address`](Self::add_address) and its siblings, and
/// [`tun_link_info`](Self::tun_link_info)) wait at most 5 s, then return `TimedOut`.
#[derive(Debug)]
pub struct RouteSocket {
    fd: OwnedFd,
    /// Sequence numbers of the requests this socket makes itself (addresses and routes).
    seq: AtomicU32,
}

impl RouteSocket {
    /// Opens a route socket subscribed to `RTMGRP_LINK` (link creation, changes, deletion) in the calling
    /// thread's network namespace.
    pub fn open_link_monitor() -> io::Result<Self> {
        Self::open(libc::RTMGRP_LINK.cast_unsigned())
    }

    /// Opens a route socket subscribed to the multicast `groups` bitmask (`RTMGRP_*`; 0 for none).
    pub fn open(groups: u32) -> io::Result<Self> {
        // SAFETY: socket takes plain integers and returns a new descriptor or -1.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        let raw = cvt(raw)?;
        // SAFETY: `raw` is a descriptor socket just returned and nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let address = netlink_address(groups);
        // SAFETY: `address` is a valid sockaddr_nl and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&address).cast(),
                sockaddr_nl_len(),
            )
        };
        cvt(rc)?;
        Ok(Self {
            fd,
            seq: AtomicU32::new(1),
        })
    }

    /// Asks the kernel for the state of the link with interface index `index`. The reply is an
    /// `RTM_NEWLINK` with sequence number `seq`, or an `NLMSG_ERROR` (`ENODEV` when no such link exists in
    /// this socket's namespace).
    pub fn request_link(&self, index: u32, seq: u32) -> io::Result<()> {
        let index = i32::try_from(index).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface index {index} out of range"),
            )
        })?;
        let mut request = Vec::with_capacity(32);
        encode_getlink(&mut request, seq, index, None);
        self.send(&request)
    }

    /// Asks the kernel for the state of the link named `name` (bytes without NUL); replies as for
    /// [`RouteSocket::request_link`].
    pub fn request_link_by_name(&self, name: &[u8], seq: u32) -> io::Result<()> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name must be 1 to 15 bytes without NUL",
            ));
        }
        let mut request = Vec::with_capacity(48);
        encode_getlink(&mut request, seq, 0, Some(name));
        self.send(&request)
    }

    fn send(&self, request: &[u8]) -> io::Result<()> {
        let kernel = netlink_address(0);
        // SAFETY: `request` is valid for its length; `kernel` is a valid sockaddr_nl of the given size.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                std::ptr::from_ref(&kernel).cast(),
                sockaddr_nl_len(),
            )
        };
        match usize::try_from(sent) {
            Ok(n) if n == request.len() => Ok(()),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("netlink request sent {n} of {} bytes", request.len()),
            )),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }

    /// Receives one datagram from the kernel into `buf` without blocking and returns its length.
    ///
    /// Datagrams from anyone but the kernel (port id 0) are discarded. Use a buffer of
    /// [`RECV_BUFFER_LEN`] bytes; a datagram that does not fit is reported as [`RecvError::Truncated`].
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        loop {
            // SAFETY: sockaddr_nl is plain integers, so all-zero is a valid value.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut from_len = sockaddr_nl_len();
            // SAFETY: `buf` is valid for writes of its length; `from` and `from_len` are valid places for the
            // sender's address. MSG_TRUNC makes the call return the datagram's real length.
            let received = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                    std::ptr::from_mut(&mut from).cast(),
                    &mut from_len,
                )
            };
            let Ok(len) = usize::try_from(received) else {
                let error = io::Error::last_os_error();
                return Err(match error.raw_os_error() {
                    Some(libc::EAGAIN) => RecvError::WouldBlock,
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => RecvError::Overrun,
                    _ => RecvError::Io(error),
                });
            };
            if from.nl_pid != 0 {
                // Only the kernel speaks for the links; anything else is noise (or forged).
                continue;
            }
            if len > buf.len() {
                return Err(RecvError::Truncated {
                    len,
                    capacity: buf.len(),
                });
            }
            return Ok(len);
        }
    }

    /// Adds an address to an interface and waits for the kernel's answer: `EEXIST` when the interface has
    /// it already. An IPv6 address skips duplicate address detection, so it can be bound to on return.
    pub fn add_address(&self, spec: &AddressSpec) -> io::Result<()> {
        self.acknowledged(|out, seq| encode_new_address(out, seq, spec))
    }

    /// Removes an address from an interface and waits for the kernel's answer: `EADDRNOTAVAIL` when the
    /// interface has no such address with that prefix length.
    pub fn remove_address(&self, spec: &AddressSpec) -> io::Result<()> {
        self.acknowledged(|out, seq| encode_del_address(out, seq, spec))
    }

    /// Every IPv4 and IPv6 address of the interface with index `index`.
    pub fn addresses(&self, index: u32) -> io::Result<Vec<AddressMessage>> {
        self.dump::<IfAddrMsg, _>(RTM_GETADDR, |message| match message {
            Message::NewAddress(address) if address.index == index => Some(address),
            _ => None,
        })
    }

    /// Adds a route and waits for the kernel's answer: `EEXIST` when the same route exists.
    pub fn add_route(&self, spec: &RouteSpec) -> io::Result<()> {
        self.acknowledged(|out, seq| encode_new_route(out, seq, spec))
    }

    /// Removes a route and waits for the kernel's answer: `ESRCH` when there is no such route.
    pub fn remove_route(&self, spec: &RouteSpec) -> io::Result<()> {
        self.acknowledged(|out, seq| encode_del_route(out, seq, spec))
    }

    /// Every IPv4 and IPv6 route of every table of this socket's namespace.
    pub fn routes(&self) -> io::Result<Vec<RouteMessage>> {
        self.dump::<RtMsg, _>(RTM_GETROUTE, |message| match message {
            Message::NewRoute(route) => Some(route),
            _ => None,
        })
    }

    /// The TUN settings of the link called `name` (bytes without NUL) in this socket's namespace, from
    /// `RTM_GETLINK`: `Ok(None)` when it is not a TUN/TAP link or the kernel does not report them (before
    /// Linux 4.15); `ENODEV` when there is no such link.
    pub fn tun_link_info(&self, name: &[u8]) -> io::Result<Option<TunLinkInfo>> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.request_link_by_name(name, seq)?;
        self.replies(seq, |message| match message {
            Message::NewLink(link) => Some(link.tun_info().map_err(io::Error::other)),
            Message::Error { errno, .. } if errno != 0 => {
                Some(Err(io::Error::from_raw_os_error(errno)))
            }
            _ => None,
        })?
    }

    /// The GSO limits of the link with index `index`: the most segments and the most bytes of one
    /// super-packet the stack hands it (`IFLA_GSO_MAX_SEGS`, `IFLA_GSO_MAX_SIZE`; `ENODEV` when there is no
    /// such link in this socket's namespace; `EOPNOTSUPP` from a kernel that reports neither).
    pub fn gso_limits(&self, index: u32) -> io::Result<GsoLimits> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.request_link(index, seq)?;
        self.replies(seq, |message| match message {
            Message::NewLink(link) => Some(match (link.gso_max_segments, link.gso_max_size) {
                (Some(max_segments), Some(max_size)) => Ok(GsoLimits {
                    max_segments,
                    max_size,
                }),
                _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
            }),
            Message::Error { errno, .. } if errno != 0 => {
                Some(Err(io::Error::from_raw_os_error(errno)))
            }
            _ => None,
        })?
    }

    /// Changes the GSO limits of the link with index `index` (each one given), like `ip link set dev NAME
    /// gso_max_segs N gso_max_size M`, and waits for the kernel's answer: `EINVAL` past what the device can
    /// take (for TUN and TAP, 65535 segments and 65536 bytes).
    pub fn set_gso_limits(
        &self,
        index: u32,
        max_segments: Option<u32>,
        max_size: Option<u32>,
    ) -> io::Result<()> {
        let index = i32::try_from(index).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface index {index} out of range"),
            )
        })?;
        let settings: Vec<(u16, u32)> = [
            max_segments.map(|n| (IFLA_GSO_MAX_SEGS, n)),
            max_size.map(|n| (IFLA_GSO_MAX_SIZE, n)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.acknowledged(|out, seq| encode_set_link(out, seq, index, &settings))
    }

    /// Sends the request `encode` writes (with `NLM_F_ACK`) and waits for the acknowledgement: `Ok` for
    /// error 0, the kernel's errno otherwise.
    fn acknowledged(&self, encode: impl FnOnce(&mut Vec<u8>, u32)) -> io::Result<()> {
        let seq = self.request(encode)?;
        let errno = self.replies(seq, |message| match message {
            Message::Error { errno, .. } => Some(errno),
            _ => None,
        })?;
        errno_result(errno)
    }

    /// Sends the dump request `ty` (its fixed part `F` all zero) and collects what `pick` keeps of the reply's
    /// messages until `NLMSG_DONE`; an `NLMSG_ERROR` in the reply is returned as the kernel's errno.
    fn dump<F: FromZeros + IntoBytes + Immutable, T>(
        &self,
        ty: u16,
        mut pick: impl FnMut(Message<'_>) -> Option<T>,
    ) -> io::Result<Vec<T>> {
        let seq = self.request(|out, seq| encode_dump::<F>(out, seq, ty))?;
        let mut found = Vec::new();
        let errno = self.replies(seq, |message| match message {
            Message::Done { .. } => Some(0),
            Message::Error { errno, .. } => Some(errno),
            message => {
                found.extend(pick(message));
                None
            }
        })?;
        errno_result(errno).map(|()| found)
    }

    /// Sends the request `encode` writes under the socket's next sequence number, and returns that number.
    fn request(&self, encode: impl FnOnce(&mut Vec<u8>, u32)) -> io::Result<u32> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut request = Vec::with_capacity(96);
        encode(&mut request, seq);
        self.send(&request)?;
        Ok(seq)
    }

    /// Receives datagrams (waiting at most [`REPLY_TIMEOUT`] in all) and hands every message answering
    /// request `seq` to `each` until it returns `Some`, and returns that. Messages of other requests (an
    /// answer that came too late for an earlier call) are skipped. A malformed datagram is `InvalidData`.
    fn replies<T>(
        &self,
        seq: u32,
        mut each: impl FnMut(Message<'_>) -> Option<T>,
    ) -> io::Result<T> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut buf = vec![0u8; RECV_BUFFER_LEN];
        loop {
            let len = match self.recv(&mut buf) {
                Ok(len) => len,
                Err(RecvError::WouldBlock) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no netlink reply within 5 s",
                        ));
                    }
                    let mut fds = [libc::pollfd {
                        fd: self.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    match crate::wait::poll(&mut fds, Some(remaining)) {
                        Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                        _ => continue,
                    }
                }
                Err(e) => return Err(e.into()),
            };
            for message in Messages::new(buf.get(..len).unwrap_or_default()) {
                let message = message.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if message.seq() == Some(seq)
                    && let Some(answer) = each(message)
                {
                    return Ok(answer);
                }
            }
        }
    }

    /// Sets the receive queue size (`SO_RCVBUF`; the kernel doubles it and caps it at `rmem_max`), so that
    /// bursts of notifications are less likely to overrun.
    pub fn set_recv_buffer_size(&self, bytes: u32) -> io::Result<()> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        crate::sys::setsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, value)
    }
}

impl AsFd for RouteSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for RouteSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// `Ok` for the errno 0 of an acknowledgement or a finished dump, the kernel's error otherwise.
fn errno_result(errno: i32) -> io::Result<()> {
    if errno == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(errno))
    }
}

fn netlink_address(groups: u32) -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain integers, so all-zero is a valid value.
    let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    address.nl_pid = 0;
    address.nl_groups = groups;
    address
}

fn sockaddr_nl_len() -> libc::socklen_t {
    socklen(size_of::<libc::sockaddr_nl>())
}

fn socklen(len: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(len).unwrap_or(libc::socklen_t::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{Message, Messages};

    /// Waits (bounded) for a datagram on the non-blocking socket.
    fn recv_within(socket: &RouteSocket, buf: &mut [u8]) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match socket.recv(buf) {
                Ok(len) => return len,
                Err(RecvError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    #[test]
    fn loopback_is_reported_by_index_with_its_name() {
        // Every network namespace has `lo` at index 1; an unprivileged socket may query it.
        let socket = RouteSocket::open(0).expect("open");
        socket.request_link(1, 77).expect("request");
        let mut buf = vec![0; RECV_BUFFER_LEN];
        let len = recv_within(&socket, &mut buf);
        let messages: Vec<_> = Messages::new(&buf[..len]).collect();
        assert!(
            matches!(messages[..], [Ok(Message::NewLink(l))] if l.index == 1 && l.seq == 77 && l.name == Some(&b"lo"[..])),
            "{messages:?}"
        );
    }

    #[test]
    fn lookup_by_name_finds_loopback() {
        let socket = RouteSocket::open(0).expect("open");
        socket.request_link_by_name(b"lo", 5).expect("request");
        let mut buf = vec![0; RECV_BUFFER_LEN];
        let len = recv_within(&socket, &mut buf);
        assert!(matches!(
            Messages::new(&buf[..len]).next(),
            Some(Ok(Message::NewLink(l))) if l.index == 1
        ));
    }

    #[test]
    fn missing_index_is_answered_with_enodev() {
        let socket = RouteSocket::open(0).expect("open");
        socket.request_link(0x7fff_fff0, 3).expect("request");
        let mut buf = vec![0; RECV_BUFFER_LEN];
        let len = recv_within(&socket, &mut buf);
        assert_eq!(
            Messages::new(&buf[..len]).next(),
            Some(Ok(Message::Error {
                errno: libc::ENODEV,
                seq: 3
            }))
        );
    }

    #[test]
    fn loopback_addresses_include_127_0_0_1_slash_8() {
        let socket = RouteSocket::open(0).expect("open");
        let addresses = socket.addresses(1).expect("dump");
        assert!(
            addresses.iter().any(
                |a| a.own_address() == Some(std::net::Ipv4Addr::LOCALHOST.into())
                    && a.prefix_len == 8
            ),
            "{addresses:?}"
        );
        assert!(addresses.iter().all(|a| a.index == 1));
    }

    #[test]
    fn route_dump_holds_the_local_route_to_127_0_0_1() {
        let socket = RouteSocket::open(0).expect("open");
        let routes = socket.routes().expect("dump");
        assert!(
            routes.iter().any(
                |r| r.destination() == Some(std::net::Ipv4Addr::LOCALHOST.into())
                    && r.dst_len == 32
                    && r.oif == Some(1)
            ),
            "{routes:?}"
        );
    }

    #[test]
    fn refused_request_returns_the_kernels_errno() {
        // No interface has this index: ENODEV as root, EPERM without CAP_NET_ADMIN; either way an error.
        let socket = RouteSocket::open(0).expect("open");
        let spec = crate::netlink::addr::AddressSpec {
            index: 0x7fff_fff0,
            local: std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            peer: None,
            prefix_len: 24,
        };
        let error = socket.add_address(&spec).unwrap_err();
        assert!(
            matches!(error.raw_os_error(), Some(libc::ENODEV | libc::EPERM)),
            "{error}"
        );
    }

    #[test]
    fn empty_socket_would_block_instead_of_waiting() {
        let socket = RouteSocket::open(0).expect("open");
        let mut buf = vec![0; 64];
        assert!(matches!(socket.recv(&mut buf), Err(RecvError::WouldBlock)));
    }

    #[test]
    fn datagram_larger_than_buffer_is_reported_truncated() {
        let socket = RouteSocket::open(0).expect("open");
        socket.request_link(1, 1).expect("request");
        let mut small = vec![0; 64];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let result = loop {
            match socket.recv(&mut small) {
                Err(RecvError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other,
            }
        };
        assert!(
            matches!(result, Err(RecvError::Truncated { len, capacity: 64 }) if len > 64),
            "{result:?}"
        );
    }

    #[test]
    fn names_that_cannot_be_interfaces_are_refused_before_sending() {
        let socket = RouteSocket::open(0).expect("open");
        for name in [&b""[..], b"sixteen-bytes-xx", b"a\0b"] {
            assert_eq!(
                socket.request_link_by_name(name, 1).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn overrun_converts_to_enobufs() {
        let error: io::Error = RecvError::Overrun.into();
        assert_eq!(error.raw_os_error(), Some(libc::ENOBUFS));
    }
}
