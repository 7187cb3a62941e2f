//! One rtnetlink question answered synchronously: what kind of TUN device a link is.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use super::{Message, Messages, RECV_BUFFER_LEN, RecvError, RouteSocket, TunLinkInfo};
use crate::wait::{EventFd, Interest, Wait};

/// How long the kernel gets to answer (it answers in microseconds; this only bounds a wedged system).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The TUN settings of the link called `name` in the calling thread's network namespace: `Ok(None)` when it
/// is not a TUN/TAP link or the kernel does not report them (before Linux 4.15); `ENODEV` when there is no
/// such link.
pub fn tun_link_info(name: &[u8]) -> io::Result<Option<TunLinkInfo>> {
    const SEQ: u32 = 1;
    let socket = RouteSocket::open(0)?;
    socket.request_link_by_name(name, SEQ)?;
    let never = EventFd::new()?;
    let mut buf = vec![0u8; RECV_BUFFER_LEN];
    // Bounded: each round either times out (an error) or reads a datagram; only replies to SEQ end it, and
    // a socket subscribed to no group receives nothing else.
    for _ in 0..64 {
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(RecvError::WouldBlock) => {
                match crate::wait::wait(
                    socket.as_fd(),
                    Interest::Read,
                    &never,
                    Some(REPLY_TIMEOUT),
                )? {
                    Wait::Ready => continue,
                    Wait::TimedOut | Wait::Cancelled => {
                        return Err(io::Error::from(io::ErrorKind::TimedOut));
                    }
                }
            }
            Err(e) => return Err(io::Error::other(e)),
        };
        for message in Messages::new(buf.get(..len).unwrap_or_default()) {
            match message.map_err(io::Error::other)? {
                Message::NewLink(link) if link.seq == SEQ => {
                    return link.tun_info().map_err(io::Error::other);
                }
                Message::Error { errno, seq } if seq == SEQ && errno != 0 => {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                _ => {}
            }
        }
    }
    Err(io::Error::other("no reply to RTM_GETLINK"))
}
