//! Netlink framing: message headers and attributes as zerocopy structs, length-checked iteration over a
//! received buffer, acknowledgements and error reports, and the encoding of requests.
//!
//! A datagram from the kernel is a sequence of messages, each a 16-byte `nlmsghdr` whose `nlmsg_len`
//! counts the header and payload, padded to 4 bytes (`NLMSG_ALIGN`) before the next one. A payload is a
//! fixed structure of its message type followed by attributes, each a 4-byte `rtattr` whose `rta_len`
//! counts itself and its value, also padded to 4 bytes (`RTA_ALIGN`). Every length is checked against the
//! bytes actually present before anything is read, so a hostile or truncated buffer yields an error value.
//!
//! This file knows no message type but the `NLMSG_*` control messages: the link, address and route
//! messages are framed here and read in [`super::link`], [`super::addr`] and [`super::route`], and
//! [`super::message`] tells which is which.

use std::net::IpAddr;

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// `NLMSG_HDRLEN`: bytes of a netlink message header.
pub(crate) const NLMSG_HDRLEN: usize = size_of::<NlMsgHdr>();
/// `NLMSG_NOOP`: a message to skip (as any type this crate does not know; the tests send one).
#[cfg(test)]
pub(crate) const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: an error report, or an acknowledgement when the error is 0.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a multi-part reply.
pub(crate) const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`: data was lost.
pub(crate) const NLMSG_OVERRUN: u16 = 4;

/// The attribute type bits; the two high bits are the `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` flags.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Netlink messages and attributes are padded to this many bytes.
const ALIGN_TO: usize = 4;

/// `NLMSG_ALIGN`: `len` rounded up to the 4-byte boundary, or `None` on overflow.
#[must_use]
pub(crate) const fn nlmsg_align(len: usize) -> Option<usize> {
    match len.checked_add(ALIGN_TO - 1) {
        Some(n) => Some(n & !(ALIGN_TO - 1)),
        None => None,
    }
}

/// `RTA_ALIGN`: attributes use the same 4-byte alignment as messages.
#[must_use]
pub(crate) const fn rta_align(len: usize) -> Option<usize> {
    nlmsg_align(len)
}

/// `struct nlmsghdr`, in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct NlMsgHdr {
    /// `nlmsg_len`: bytes of header and payload, without trailing padding.
    pub len: u32,
    /// `nlmsg_type`: `RTM_*` or `NLMSG_*`.
    pub ty: u16,
    /// `nlmsg_flags`: `NLM_F_*`.
    pub flags: u16,
    /// `nlmsg_seq`: the request's sequence number, echoed in replies; 0 in notifications.
    pub seq: u32,
    /// `nlmsg_pid`: the sender's port id (0 for the kernel in what we receive).
    pub pid: u32,
}

/// `struct rtattr`: the header of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct RtAttr {
    /// `rta_len`: bytes of this header and the value, without padding.
    pub len: u16,
    /// `rta_type`: `IFLA_*`, `IFA_*` or `RTA_*`, by the message it is in.
    pub ty: u16,
}

/// Why a buffer or message could not be parsed. The iterator that returned it ends afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedMessage {
    /// Fewer bytes remain than a message header needs.
    #[error("netlink message header truncated: {available} bytes at offset {offset}, 16 needed")]
    TruncatedHeader {
        /// Offset of the message in the buffer.
        offset: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// `nlmsg_len` is smaller than the header itself (the classic endless-loop trap with 0).
    #[error("netlink message at offset {offset} claims {len} bytes, less than its 16-byte header")]
    LengthTooSmall {
        /// Offset of the message in the buffer.
        offset: usize,
        /// The claimed length.
        len: u32,
    },
    /// `nlmsg_len` reaches past the end of the buffer.
    #[error("netlink message at offset {offset} claims {len} bytes, only {available} present")]
    Truncated {
        /// Offset of the message in the buffer.
        offset: usize,
        /// The claimed length.
        len: u32,
        /// Bytes present from the message's offset to the end of the buffer.
        available: usize,
    },
    /// Bytes follow a message but do not start on the 4-byte boundary where the next message must begin.
    #[error(
        "netlink message at offset {offset} is followed by {trailing} bytes before its 4-byte boundary"
    )]
    Misaligned {
        /// Offset of the message in the buffer.
        offset: usize,
        /// Bytes after the message that fall short of its padding.
        trailing: usize,
    },
    /// The payload is too short for the fixed structure of its type.
    #[error("netlink message of type {ty} has a {len}-byte payload, {needed} needed")]
    PayloadTooShort {
        /// The message type.
        ty: u16,
        /// Bytes of payload present.
        len: usize,
        /// Bytes the fixed part needs.
        needed: usize,
    },
    /// An attribute header is truncated, claims less than 4 bytes, or reaches past its message.
    #[error(
        "attribute at offset {offset} of its message is malformed ({len} bytes claimed, {available} present)"
    )]
    BadAttribute {
        /// Offset of the attribute within the attribute area.
        offset: usize,
        /// The claimed length (0 when even the header is cut off).
        len: u16,
        /// Bytes present from the attribute's offset.
        available: usize,
    },
    /// A known attribute has a value of the wrong size (for example an `IFLA_MTU` that is not 4 bytes).
    #[error("attribute {ty} has a {len}-byte value, {expected} expected")]
    BadAttributeValue {
        /// The attribute type.
        ty: u16,
        /// Bytes of value present.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
}

/// One message of a buffer: its header and its payload (without padding), checked against the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// The message header.
    pub header: NlMsgHdr,
    /// The `nlmsg_len - 16` bytes after the header.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Splits the payload into its fixed part `T` (`ifinfomsg`, `ifaddrmsg`, `rtmsg`, ...) and the
    /// attributes that follow it at the next 4-byte boundary.
    pub(crate) fn split_fixed<T: FromBytes>(&self) -> Result<(T, &'a [u8]), MalformedMessage> {
        let (fixed, _) =
            T::read_from_prefix(self.payload).map_err(|_| MalformedMessage::PayloadTooShort {
                ty: self.header.ty,
                len: self.payload.len(),
                needed: size_of::<T>(),
            })?;
        // Within the payload once read_from_prefix succeeded, when T's size is a multiple of 4 (all are).
        let start = nlmsg_align(size_of::<T>()).unwrap_or(usize::MAX);
        Ok((fixed, self.payload.get(start..).unwrap_or_default()))
    }

    /// The errno of an `NLMSG_ERROR` message: positive for an error, 0 for an acknowledgement.
    pub(crate) fn errno(&self) -> Result<i32, MalformedMessage> {
        // `struct nlmsgerr` starts with the negated errno; the request it answers follows.
        let (error, _) = self.split_fixed::<i32>()?;
        Ok(error.checked_neg().unwrap_or(i32::MAX))
    }
}

/// An iterator over the messages of one received buffer, framed but not parsed.
///
/// It yields `Err` once for the first malformed message and then ends, so a caller's loop always
/// terminates; it never reads past the buffer and never panics.
#[derive(Debug, Clone)]
pub(crate) struct Frames<'a> {
    walk: Walk<'a>,
}

impl<'a> Frames<'a> {
    /// Iterates over the messages in `buf` (the bytes one `recv` returned).
    #[must_use]
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self {
            walk: Walk::new(buf),
        }
    }
}

/// The message at `walk`'s offset, checked against the buffer, and the offset that follows it.
fn split_message<'a>(walk: &Walk<'a>) -> Result<(Frame<'a>, usize), MalformedMessage> {
    let (offset, rest) = (walk.offset, walk.rest());
    let (header, _) =
        NlMsgHdr::read_from_prefix(rest).map_err(|_| MalformedMessage::TruncatedHeader {
            offset,
            available: rest.len(),
        })?;
    let len = header.len as usize;
    if len < NLMSG_HDRLEN {
        return Err(MalformedMessage::LengthTooSmall {
            offset,
            len: header.len,
        });
    }
    let message = rest.get(..len).ok_or(MalformedMessage::Truncated {
        offset,
        len: header.len,
        available: rest.len(),
    })?;
    let payload = message.get(NLMSG_HDRLEN..).unwrap_or_default();
    let next = walk
        .next_offset(len, nlmsg_align(len))
        .ok_or(MalformedMessage::Misaligned {
            offset,
            trailing: rest.len() - len,
        })?;
    Ok((Frame { header, payload }, next))
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, MalformedMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        // `next` is always past `offset` (a message is at least 16 bytes), so the walk advances.
        self.walk.step(split_message)
    }
}

impl std::iter::FusedIterator for Frames<'_> {}

/// The first attribute of type `ty` among `attributes`.
pub(crate) fn find(attributes: &[u8], ty: u16) -> Result<Option<Attribute<'_>>, MalformedMessage> {
    for attribute in Attributes::new(attributes) {
        let attribute = attribute?;
        if attribute.ty == ty {
            return Ok(Some(attribute));
        }
    }
    Ok(None)
}

/// One attribute: its type (flag bits removed) and its value without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// `rta_type` without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
    pub ty: u16,
    /// The value bytes.
    pub value: &'a [u8],
}

impl<'a> Attribute<'a> {
    /// The value as a host-order `u32`, which must be exactly 4 bytes.
    pub fn u32(&self) -> Result<u32, MalformedMessage> {
        u32::read_from_bytes(self.value).map_err(|_| MalformedMessage::BadAttributeValue {
            ty: self.ty,
            len: self.value.len(),
            expected: size_of::<u32>(),
        })
    }

    /// The value as an IP address of `family` (`AF_INET`: 4 bytes, `AF_INET6`: 16, network byte order);
    /// `None` for other families, whose addresses this crate does not read.
    pub fn ip(&self, family: u8) -> Result<Option<IpAddr>, MalformedMessage> {
        let bad = |expected| MalformedMessage::BadAttributeValue {
            ty: self.ty,
            len: self.value.len(),
            expected,
        };
        match i32::from(family) {
            libc::AF_INET => <[u8; 4]>::read_from_bytes(self.value)
                .map(|octets| Some(std::net::Ipv4Addr::from(octets).into()))
                .map_err(|_| bad(4)),
            libc::AF_INET6 => <[u8; 16]>::read_from_bytes(self.value)
                .map(|octets| Some(std::net::Ipv6Addr::from(octets).into()))
                .map_err(|_| bad(16)),
            _ => Ok(None),
        }
    }

    /// The value as a C string: the bytes before the first NUL (all of them if there is none).
    #[must_use]
    pub fn c_string(&self) -> &'a [u8] {
        let end = self
            .value
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(self.value.len());
        self.value.get(..end).unwrap_or_default()
    }
}

/// An iterator over the attributes of one message (or of one nested attribute).
///
/// It yields `Err` once for the first malformed attribute and then ends, so a caller's loop always
/// terminates; it never reads past the buffer and never panics.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    walk: Walk<'a>,
}

impl<'a> Attributes<'a> {
    /// Iterates over the attributes in `buf` (the bytes after a message's fixed part).
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self {
            walk: Walk::new(buf),
        }
    }
}

/// The attribute at `walk`'s offset, checked against the buffer, and the offset that follows it.
fn split_attribute<'a>(walk: &Walk<'a>) -> Result<(Attribute<'a>, usize), MalformedMessage> {
    let (offset, rest) = (walk.offset, walk.rest());
    let bad = |len| MalformedMessage::BadAttribute {
        offset,
        len,
        available: rest.len(),
    };
    let (header, _) = RtAttr::read_from_prefix(rest).map_err(|_| bad(0))?;
    let len = usize::from(header.len);
    if len < size_of::<RtAttr>() {
        return Err(bad(header.len));
    }
    let attribute = rest.get(..len).ok_or_else(|| bad(header.len))?;
    let value = attribute.get(size_of::<RtAttr>()..).unwrap_or_default();
    let next = walk
        .next_offset(len, rta_align(len))
        .ok_or_else(|| bad(header.len))?;
    Ok((
        Attribute {
            ty: header.ty & NLA_TYPE_MASK,
            value,
        },
        next,
    ))
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, MalformedMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        // An attribute is at least 4 bytes, so `next` is past `offset`.
        self.walk.step(split_attribute)
    }
}

impl std::iter::FusedIterator for Attributes<'_> {}

/// A length-checked walk over the length-prefixed, padded records of a buffer (netlink messages, and the
/// attributes inside one): where the next record starts, and whether a malformed one ended the walk.
#[derive(Debug, Clone)]
struct Walk<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Walk<'a> {
    const fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            offset: 0,
            failed: false,
        }
    }

    /// The bytes from the current record on.
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.offset..).unwrap_or_default()
    }

    /// Where the record after the current one starts, given the current one's length (within the buffer)
    /// and that length padded (`None` if padding overflowed). The last record may omit its padding; any
    /// other must be followed by the padding and then the next record: `None` when it is not.
    fn next_offset(&self, len: usize, aligned: Option<usize>) -> Option<usize> {
        let rest = self.buf.len().saturating_sub(self.offset);
        let aligned = aligned.unwrap_or(usize::MAX);
        if rest <= len {
            Some(self.buf.len())
        } else if rest < aligned {
            None
        } else {
            Some(self.offset + aligned)
        }
    }

    /// One step: `None` once the buffer is done or a record was malformed; otherwise the record `split`
    /// finds at the current offset, moving past it, or its error, after which the walk ends.
    fn step<T>(
        &mut self,
        split: impl FnOnce(&Self) -> Result<(T, usize), MalformedMessage>,
    ) -> Option<Result<T, MalformedMessage>> {
        if self.failed || self.offset >= self.buf.len() {
            return None;
        }
        Some(match split(self) {
            Ok((item, next)) => {
                self.offset = next;
                Ok(item)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        })
    }
}

/// Encodes a dump request of type `ty` (`RTM_GETADDR`, `RTM_GETROUTE`) whose fixed part `T` is all zero: every
/// object of every family (`AF_UNSPEC`) and every interface.
pub(crate) fn encode_dump<T: FromZeros + IntoBytes + Immutable>(
    out: &mut Vec<u8>,
    seq: u32,
    ty: u16,
) {
    begin_request(
        out,
        ty,
        libc::NLM_F_DUMP as u16,
        seq,
        T::new_zeroed().as_bytes(),
    );
    finish_request(out);
}

/// Starts a request in `out` (cleared first): a header of type `ty` with `NLM_F_REQUEST | flags` and `seq`,
/// then the fixed part of the message. [`finish_request`] fills in the length.
pub(crate) fn begin_request(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, fixed: &[u8]) {
    out.clear();
    let header = NlMsgHdr {
        len: 0,
        ty,
        flags: libc::NLM_F_REQUEST as u16 | flags,
        seq,
        pid: 0,
    };
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(fixed);
    out.resize(nlmsg_align(out.len()).unwrap_or(out.len()), 0);
}

/// Appends one attribute whose value is the concatenation of `parts`, padded to the 4-byte boundary.
pub(crate) fn push_attribute(out: &mut Vec<u8>, ty: u16, parts: &[&[u8]]) {
    let value_len: usize = parts.iter().map(|part| part.len()).sum();
    let header = RtAttr {
        len: u16::try_from(size_of::<RtAttr>() + value_len).unwrap_or(u16::MAX),
        ty,
    };
    out.extend_from_slice(header.as_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    out.resize(rta_align(out.len()).unwrap_or(out.len()), 0);
}

/// Appends an address attribute: 4 bytes for IPv4, 16 for IPv6, in network byte order, as
/// [`Attribute::ip`] reads it back given the [`family_of`] the address.
pub(crate) fn push_ip_attribute(out: &mut Vec<u8>, ty: u16, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => push_attribute(out, ty, &[&v4.octets()]),
        IpAddr::V6(v6) => push_attribute(out, ty, &[&v6.octets()]),
    }
}

/// The address family byte (`AF_INET` or `AF_INET6`) of `addr`, as the fixed part of a message that
/// carries it names it.
pub(crate) fn family_of(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// Writes the request's final length into its header.
pub(crate) fn finish_request(out: &mut [u8]) {
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    if let Some(field) = out.get_mut(..size_of::<u32>()) {
        field.copy_from_slice(&len.to_ne_bytes());
    }
}

/// One message of type `ty` with sequence number 9 around `payload`, unpadded, as the tests lay them out.
#[cfg(test)]
pub(crate) fn message(ty: u16, payload: &[u8]) -> Vec<u8> {
    let header = NlMsgHdr {
        len: u32::try_from(NLMSG_HDRLEN + payload.len()).unwrap(),
        ty,
        flags: 0,
        seq: 9,
        pid: 0,
    };
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::captures;

    fn frames(buf: &[u8]) -> Vec<Result<Frame<'_>, MalformedMessage>> {
        // Bounded: a correct iterator yields at most one item per 16 bytes plus one error.
        Frames::new(buf)
            .take(buf.len() / NLMSG_HDRLEN + 2)
            .collect()
    }

    fn attributes(buf: &[u8]) -> Vec<Result<Attribute<'_>, MalformedMessage>> {
        // Bounded: a correct iterator yields at most one item per 4 bytes plus one error.
        Attributes::new(buf).take(buf.len() / 4 + 2).collect()
    }

    /// The types and payloads of well-formed frames.
    fn types_and_payloads(buf: &[u8]) -> Vec<(u16, Vec<u8>)> {
        frames(buf)
            .into_iter()
            .map(|frame| {
                let frame = frame.unwrap();
                (frame.header.ty, frame.payload.to_vec())
            })
            .collect()
    }

    #[test]
    fn unpadded_message_length_is_followed_at_the_aligned_offset() {
        // A 17-byte message (one payload byte plus 3 padding bytes), then a DONE.
        let mut buf = message(NLMSG_NOOP, &[0xaa]);
        buf.extend_from_slice(&[0, 0, 0]);
        buf.extend_from_slice(&message(NLMSG_DONE, &[]));
        assert_eq!(
            types_and_payloads(&buf),
            vec![(NLMSG_NOOP, vec![0xaa]), (NLMSG_DONE, vec![])]
        );
    }

    #[test]
    fn frame_carries_header_fields_and_exactly_its_payload() {
        let buf = message(NLMSG_DONE, &[1, 2, 3, 4]);
        let frame = frames(&buf)[0].unwrap();
        assert_eq!((frame.header.seq, frame.header.len), (9, 20));
        assert_eq!(frame.payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn empty_buffer_yields_nothing() {
        assert!(frames(&[]).is_empty());
    }

    #[test]
    fn zero_length_message_is_an_error_and_ends_iteration() {
        let mut buf = message(NLMSG_DONE, &[]);
        buf[..4].copy_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&message(NLMSG_DONE, &[]));
        assert_eq!(
            frames(&buf),
            vec![Err(MalformedMessage::LengthTooSmall { offset: 0, len: 0 })]
        );
    }

    #[test]
    fn length_below_header_size_is_an_error() {
        let mut buf = message(NLMSG_DONE, &[]);
        buf[..4].copy_from_slice(&15u32.to_ne_bytes());
        assert_eq!(
            frames(&buf),
            vec![Err(MalformedMessage::LengthTooSmall { offset: 0, len: 15 })]
        );
    }

    #[test]
    fn header_cut_short_is_an_error() {
        let buf = message(NLMSG_DONE, &[]);
        assert_eq!(
            frames(&buf[..10]),
            vec![Err(MalformedMessage::TruncatedHeader {
                offset: 0,
                available: 10
            })]
        );
    }

    #[test]
    fn trailing_partial_header_after_a_good_message_is_an_error() {
        let mut buf = message(NLMSG_DONE, &[]);
        buf.extend_from_slice(&[1, 2, 3, 4]);
        let frames = frames(&buf);
        assert!(matches!(frames[0], Ok(f) if f.header.ty == NLMSG_DONE));
        assert_eq!(
            frames[1],
            Err(MalformedMessage::TruncatedHeader {
                offset: 16,
                available: 4
            })
        );
        assert_eq!(frames.len(), 2);
    }

    #[test]
    fn length_beyond_buffer_is_truncated_error() {
        let buf = captures::link_up();
        let cut = &buf[..buf.len() - 100];
        assert_eq!(
            frames(cut),
            vec![Err(MalformedMessage::Truncated {
                offset: 0,
                len: u32::try_from(buf.len()).unwrap(),
                available: cut.len()
            })]
        );
    }

    #[test]
    fn oversized_length_field_is_truncated_error() {
        let mut buf = message(NLMSG_DONE, &[0; 8]);
        buf[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(matches!(
            frames(&buf)[..],
            [Err(MalformedMessage::Truncated { len: u32::MAX, .. })]
        ));
    }

    #[test]
    fn bytes_between_message_end_and_its_boundary_are_misaligned() {
        // A 17-byte message followed by only 2 bytes: the next message would start mid-padding.
        let mut buf = message(NLMSG_NOOP, &[0xaa]);
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(
            frames(&buf),
            vec![Err(MalformedMessage::Misaligned {
                offset: 0,
                trailing: 2
            })]
        );
    }

    #[test]
    fn payload_shorter_than_its_fixed_part_is_an_error() {
        let buf = message(NLMSG_NOOP, &[0; 12]);
        assert_eq!(
            frames(&buf)[0].unwrap().split_fixed::<[u32; 4]>(),
            Err(MalformedMessage::PayloadTooShort {
                ty: NLMSG_NOOP,
                len: 12,
                needed: 16
            })
        );
    }

    #[test]
    fn attributes_start_at_the_boundary_after_the_fixed_part() {
        let mut payload = vec![7, 0, 0, 0, 0, 0, 0, 0];
        push_attribute(&mut payload, 3, &[b"x"]);
        let buf = message(NLMSG_NOOP, &payload);
        let (fixed, rest) = frames(&buf)[0].unwrap().split_fixed::<[u8; 8]>().unwrap();
        assert_eq!(fixed, [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(attributes(rest), vec![Ok(Attribute { ty: 3, value: b"x" })]);
    }

    #[test]
    fn error_message_without_errno_is_an_error() {
        let buf = message(NLMSG_ERROR, &[]);
        assert!(matches!(
            frames(&buf)[0].unwrap().errno(),
            Err(MalformedMessage::PayloadTooShort {
                ty: NLMSG_ERROR,
                ..
            })
        ));
    }

    #[test]
    fn error_zero_is_an_acknowledgement() {
        let buf = message(NLMSG_ERROR, &[0; 20]);
        assert_eq!(frames(&buf)[0].unwrap().errno(), Ok(0));
    }

    #[test]
    fn error_report_gives_the_positive_errno() {
        let buf = captures::no_such_device();
        assert_eq!(frames(&buf)[0].unwrap().errno(), Ok(libc::ENODEV));
    }

    #[test]
    fn zero_length_attribute_is_an_error_not_a_loop() {
        assert!(matches!(
            attributes(&[0, 0, 4, 0, 0, 0, 0, 0])[..],
            [Err(MalformedMessage::BadAttribute {
                offset: 0,
                len: 0,
                ..
            })]
        ));
    }

    #[test]
    fn attribute_reaching_past_its_message_is_an_error() {
        let mut buf = Vec::new();
        push_attribute(&mut buf, 4, &[&1400u32.to_ne_bytes()]);
        buf[..2].copy_from_slice(&40u16.to_ne_bytes());
        assert!(matches!(
            attributes(&buf)[..],
            [Err(MalformedMessage::BadAttribute { len: 40, .. })]
        ));
    }

    #[test]
    fn attribute_followed_by_bytes_short_of_its_padding_is_an_error() {
        // A 5-byte attribute value (rta_len 9) followed by 1 byte: its padding needs 3.
        assert!(matches!(
            attributes(&[9, 0, 0x30, 0, 1, 2, 3, 4, 5, 0])[..],
            [Err(MalformedMessage::BadAttribute { len: 9, .. })]
        ));
    }

    #[test]
    fn nested_flag_bits_are_removed_from_attribute_type() {
        let mut buf = Vec::new();
        push_attribute(&mut buf, 4 | 0x8000, &[&1280u32.to_ne_bytes()]);
        let found = find(&buf, 4).unwrap().unwrap();
        assert_eq!(found.u32(), Ok(1280));
    }

    #[test]
    fn value_of_wrong_size_is_an_error() {
        let attribute = Attribute {
            ty: 4,
            value: &[0xdc, 0x05],
        };
        assert_eq!(
            attribute.u32(),
            Err(MalformedMessage::BadAttributeValue {
                ty: 4,
                len: 2,
                expected: 4
            })
        );
    }

    #[test]
    fn c_string_without_nul_is_taken_whole() {
        let attribute = Attribute {
            ty: 3,
            value: b"tun7",
        };
        assert_eq!(attribute.c_string(), b"tun7");
    }

    #[test]
    fn pushed_attribute_is_padded_and_reads_back() {
        let mut out = Vec::new();
        push_attribute(&mut out, 3, &[b"tun12", &[0]]);
        // 4 rtattr + 6 value = 10, padded to 12.
        assert_eq!(out.len(), 12);
        assert_eq!(
            attributes(&out),
            vec![Ok(Attribute {
                ty: 3,
                value: b"tun12\0"
            })]
        );
    }

    #[test]
    fn request_length_counts_header_fixed_part_and_attributes() {
        let mut out = Vec::new();
        begin_request(&mut out, NLMSG_NOOP, 0, 42, &[0; 16]);
        push_attribute(&mut out, 3, &[b"tun12", &[0]]);
        finish_request(&mut out);
        let frame = frames(&out)[0].unwrap();
        assert_eq!(frame.header.len, 44);
        assert_eq!(frame.header.ty, NLMSG_NOOP);
        assert_eq!(frame.header.flags, libc::NLM_F_REQUEST as u16);
        assert_eq!(frame.header.seq, 42);
    }

    #[test]
    fn alignment_rounds_up_to_four_and_reports_overflow() {
        assert_eq!(nlmsg_align(0), Some(0));
        assert_eq!(nlmsg_align(1), Some(4));
        assert_eq!(nlmsg_align(16), Some(16));
        assert_eq!(rta_align(9), Some(12));
        assert_eq!(nlmsg_align(usize::MAX), None);
    }

    #[test]
    fn every_prefix_of_a_real_buffer_frames_without_panic_or_endless_loop() {
        let mut buf = captures::link_up();
        buf.extend_from_slice(&captures::no_such_device());
        for end in 0..=buf.len() {
            let items: Vec<_> = Frames::new(&buf[..end]).take(1000).collect();
            assert!(items.len() <= 2, "prefix {end} gave {} items", items.len());
        }
    }
}
