//! The dispatch: which message type is read by which parser. [`Messages`] frames a received buffer with
//! [`super::wire`] and hands each message to [`super::link`], [`super::addr`] or [`super::route`] by its
//! type, or reads it as a control message (`NLMSG_ERROR`, `NLMSG_DONE`, `NLMSG_OVERRUN`).

use super::addr::{AddressMessage, RTM_DELADDR, RTM_NEWADDR};
use super::link::{LinkMessage, RTM_DELLINK, RTM_NEWLINK};
use super::route::{RTM_DELROUTE, RTM_NEWROUTE, RouteMessage};
use super::wire::{Frame, Frames, MalformedMessage, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN};

/// One parsed netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `RTM_NEWLINK`: a link changed, or the reply to `RTM_GETLINK`.
    NewLink(LinkMessage<'a>),
    /// `RTM_DELLINK`: a link was deleted or moved out of this namespace.
    DelLink(LinkMessage<'a>),
    /// `RTM_NEWADDR`: an address was added (also each part of the reply to an address dump).
    NewAddress(AddressMessage),
    /// `RTM_DELADDR`: an address was removed.
    DelAddress(AddressMessage),
    /// `RTM_NEWROUTE`: a route was added (also each part of the reply to a route dump).
    NewRoute(RouteMessage),
    /// `RTM_DELROUTE`: a route was removed.
    DelRoute(RouteMessage),
    /// `NLMSG_ERROR`: `errno` is positive for an error, 0 for an acknowledgement.
    Error {
        /// The positive errno (the kernel sends it negated), or 0.
        errno: i32,
        /// Sequence number of the request it answers.
        seq: u32,
    },
    /// `NLMSG_DONE`: the end of a multi-part reply.
    Done {
        /// Sequence number of the request it answers.
        seq: u32,
    },
    /// `NLMSG_OVERRUN`: data was lost.
    Overrun,
    /// Any other type (including `NLMSG_NOOP`): nothing to act on.
    Other {
        /// The message type.
        ty: u16,
    },
}

impl Message<'_> {
    /// The sequence number of a reply message; `None` for those that carry none this crate reads.
    pub(crate) const fn seq(&self) -> Option<u32> {
        match self {
            Message::NewLink(link) | Message::DelLink(link) => Some(link.seq),
            Message::NewAddress(address) | Message::DelAddress(address) => Some(address.seq),
            Message::NewRoute(route) | Message::DelRoute(route) => Some(route.seq),
            Message::Error { seq, .. } | Message::Done { seq } => Some(*seq),
            Message::Overrun | Message::Other { .. } => None,
        }
    }

    /// Reads `frame` with the parser of its type.
    fn parse<'a>(frame: &Frame<'a>) -> Result<Message<'a>, MalformedMessage> {
        let seq = frame.header.seq;
        Ok(match frame.header.ty {
            RTM_NEWLINK => Message::NewLink(LinkMessage::parse(frame)?),
            RTM_DELLINK => Message::DelLink(LinkMessage::parse(frame)?),
            RTM_NEWADDR => Message::NewAddress(AddressMessage::parse(frame)?),
            RTM_DELADDR => Message::DelAddress(AddressMessage::parse(frame)?),
            RTM_NEWROUTE => Message::NewRoute(RouteMessage::parse(frame)?),
            RTM_DELROUTE => Message::DelRoute(RouteMessage::parse(frame)?),
            NLMSG_ERROR => Message::Error {
                errno: frame.errno()?,
                seq,
            },
            NLMSG_DONE => Message::Done { seq },
            NLMSG_OVERRUN => Message::Overrun,
            ty => Message::Other { ty },
        })
    }
}

/// An iterator over the messages of one received buffer.
///
/// It yields `Err` once for the first malformed message (in its framing or in its payload) and then ends,
/// so a caller's loop always terminates; it never reads past the buffer and never panics.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    frames: Frames<'a>,
    failed: bool,
}

impl<'a> Messages<'a> {
    /// Iterates over the messages in `buf` (the bytes one `recv` returned).
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self {
            frames: Frames::new(buf),
            failed: false,
        }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, MalformedMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let message = self.frames.next()?.and_then(|frame| Message::parse(&frame));
        self.failed = message.is_err();
        Some(message)
    }
}

impl std::iter::FusedIterator for Messages<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::captures;
    use crate::netlink::wire::{NLMSG_HDRLEN, NLMSG_NOOP, message};

    fn collect(buf: &[u8]) -> Vec<Result<Message<'_>, MalformedMessage>> {
        // Bounded: a correct iterator yields at most one item per 16 bytes plus one error.
        Messages::new(buf)
            .take(buf.len() / NLMSG_HDRLEN + 2)
            .collect()
    }

    #[test]
    fn several_messages_in_one_buffer_are_all_returned_in_order() {
        let mut buf = captures::link_up();
        buf.extend_from_slice(&captures::mtu_1400());
        buf.extend_from_slice(&message(NLMSG_DONE, &[0, 0, 0, 0]));
        let messages = collect(&buf);
        assert_eq!(messages.len(), 3);
        assert!(matches!(messages[0], Ok(Message::NewLink(l)) if l.mtu == Some(1500)));
        assert!(matches!(messages[1], Ok(Message::NewLink(l)) if l.mtu == Some(1400)));
        assert_eq!(messages[2], Ok(Message::Done { seq: 9 }));
    }

    #[test]
    fn each_type_goes_to_its_parser() {
        let mut buf = captures::moved_away();
        buf.extend_from_slice(&captures::address_ipv4());
        buf.extend_from_slice(&captures::route_kernel_ipv6());
        buf.extend_from_slice(&message(NLMSG_NOOP, &[]));
        buf.extend_from_slice(&message(NLMSG_OVERRUN, &[]));
        let messages = collect(&buf);
        assert!(
            matches!(
                messages[..],
                [
                    Ok(Message::DelLink(_)),
                    Ok(Message::NewAddress(_)),
                    Ok(Message::NewRoute(_)),
                    Ok(Message::Other { ty: NLMSG_NOOP }),
                    Ok(Message::Overrun),
                ]
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn captured_error_reply_gives_positive_errno_and_request_seq() {
        let buf = captures::no_such_device();
        assert_eq!(
            collect(&buf),
            vec![Ok(Message::Error {
                errno: libc::ENODEV,
                seq: 8
            })]
        );
    }

    #[test]
    fn error_zero_is_an_acknowledgement() {
        let buf = message(NLMSG_ERROR, &[0; 20]);
        assert_eq!(collect(&buf), vec![Ok(Message::Error { errno: 0, seq: 9 })]);
    }

    #[test]
    fn malformed_payload_ends_iteration_like_malformed_framing() {
        // A link message too short for its ifinfomsg, then a good DONE that must not be reached.
        let mut buf = message(RTM_NEWLINK, &[0; 12]);
        buf.extend_from_slice(&message(NLMSG_DONE, &[]));
        let messages = collect(&buf);
        assert!(
            matches!(
                messages[..],
                [Err(MalformedMessage::PayloadTooShort {
                    ty: RTM_NEWLINK,
                    ..
                })]
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn every_prefix_of_a_real_buffer_parses_without_panic_or_endless_loop() {
        let mut buf = captures::link_up();
        buf.extend_from_slice(&captures::no_such_device());
        for end in 0..=buf.len() {
            let items: Vec<_> = Messages::new(&buf[..end]).take(1000).collect();
            assert!(items.len() <= 2, "prefix {end} gave {} items", items.len());
        }
    }

    #[test]
    fn corrupting_any_length_byte_never_panics_or_loops() {
        let buf = captures::link_up();
        for position in 0..buf.len() {
            for value in [0u8, 1, 3, 0x7f, 0xff] {
                let mut bad = buf.clone();
                bad[position] = value;
                let items: Vec<_> = Messages::new(&bad).take(1000).collect();
                assert!(items.len() <= bad.len() / NLMSG_HDRLEN + 1);
            }
        }
    }
}
