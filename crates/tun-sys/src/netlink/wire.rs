//! Netlink message formats as zerocopy structs, and length-checked iteration over a received buffer.
//!
//! A datagram from the kernel is a sequence of messages, each a 16-byte `nlmsghdr` whose `nlmsg_len`
//! counts the header and payload, padded to 4 bytes (`NLMSG_ALIGN`) before the next one. A link message's
//! payload is an `ifinfomsg` followed by attributes, each a 4-byte `rtattr` whose `rta_len` counts itself
//! and its value, also padded to 4 bytes (`RTA_ALIGN`). Every length is checked against the bytes actually
//! present before anything is read, so a hostile or truncated buffer yields an error value.

use crate::flags::IfFlags;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::addr::{AddressMessage, RTM_DELADDR, RTM_NEWADDR};
use super::route::{RTM_DELROUTE, RTM_NEWROUTE, RouteMessage};

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
/// `RTM_NEWLINK`: a link was created or changed (also the reply to `RTM_GETLINK`).
pub(crate) const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
/// `RTM_DELLINK`: a link was deleted or left this network namespace.
pub(crate) const RTM_DELLINK: u16 = libc::RTM_DELLINK;
/// `RTM_GETLINK`: ask for a link's state.
pub(crate) const RTM_GETLINK: u16 = libc::RTM_GETLINK;
/// `IFLA_IFNAME`: the interface name attribute (NUL-terminated string).
pub(crate) const IFLA_IFNAME: u16 = 3;
/// `IFLA_MTU`: the MTU attribute (`u32`).
pub(crate) const IFLA_MTU: u16 = 4;

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

/// `struct ifinfomsg`: the fixed part of every link message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct IfInfoMsg {
    /// `ifi_family`: `AF_UNSPEC`.
    pub family: u8,
    /// Padding.
    pub pad: u8,
    /// `ifi_type`: the ARP hardware type (`ARPHRD_NONE` = 0xfffe for TUN).
    pub ty: u16,
    /// `ifi_index`: the interface index (0 in a request means "look up by name").
    pub index: i32,
    /// `ifi_flags`: `IFF_*` flags.
    pub flags: u32,
    /// `ifi_change`: which flags changed; 0 for changes that are not flags (an MTU change, seen on 6.18).
    pub change: u32,
}

/// `struct rtattr`: the header of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct RtAttr {
    /// `rta_len`: bytes of this header and the value, without padding.
    pub len: u16,
    /// `rta_type`: `IFLA_*` for link messages.
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

/// A link message: the `ifinfomsg` and the attributes this crate's users need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkMessage<'a> {
    /// Sequence number: the request's for a reply, 0 for a notification.
    pub seq: u32,
    /// The interface index.
    pub index: u32,
    /// `ifi_flags`.
    pub flags: IfFlags,
    /// `ifi_change`: which flags changed.
    pub change: IfFlags,
    /// `IFLA_MTU`, when present.
    pub mtu: Option<u32>,
    /// `IFLA_IFNAME` without its terminating NUL, when present.
    pub name: Option<&'a [u8]>,
    /// All attributes, for callers that need others.
    pub attributes: &'a [u8],
}

/// `IFLA_LINKINFO`: nested attributes naming the link's kind and its kind-specific data.
pub(crate) const IFLA_LINKINFO: u16 = 18;
/// `IFLA_INFO_KIND` (inside `IFLA_LINKINFO`): the driver's kind, `"tun"` for TUN and TAP devices.
const IFLA_INFO_KIND: u16 = 1;
/// `IFLA_INFO_DATA` (inside `IFLA_LINKINFO`): the kind's own nested attributes.
const IFLA_INFO_DATA: u16 = 2;
/// `IFLA_TUN_*` (inside `IFLA_INFO_DATA` of a `tun` link): one byte each.
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PI: u16 = 4;
const IFLA_TUN_VNET_HDR: u16 = 5;
const IFLA_TUN_MULTI_QUEUE: u16 = 7;

/// What rtnetlink says of a TUN or TAP link (`IFLA_INFO_DATA` of kind `tun`, Linux 4.15 and later): unlike
/// TUNGETIFF, whose `IFF_NO_PI` bit means "no socket filter", it tells whether packets carry packet
/// information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunLinkInfo {
    /// A layer-3 TUN device (`IFF_TUN`), not a TAP device.
    pub tun: bool,
    /// Packets carry the 4-byte packet information header (no `IFF_NO_PI`).
    pub packet_info: bool,
    /// Packets carry a virtio-net header (`IFF_VNET_HDR`).
    pub vnet_hdr: bool,
    /// The device is multi-queue (`IFF_MULTI_QUEUE`).
    pub multi_queue: bool,
}

impl<'a> LinkMessage<'a> {
    /// Whether `IFF_RUNNING` is set: the link is up and operational.
    #[must_use]
    pub const fn is_running(&self) -> bool {
        self.flags.contains(IfFlags::RUNNING)
    }

    /// Whether `IFF_UP` is set: the link is administratively up.
    #[must_use]
    pub const fn is_up(&self) -> bool {
        self.flags.contains(IfFlags::UP)
    }

    /// The TUN settings in this message's `IFLA_LINKINFO`: `Ok(None)` when it has none or the link is not of
    /// kind `tun` (a TAP device is of kind `tun` too, with `tun == false`).
    pub fn tun_info(&self) -> Result<Option<TunLinkInfo>, MalformedMessage> {
        let Some(link_info) = find(self.attributes, IFLA_LINKINFO)? else {
            return Ok(None);
        };
        let kind = find(link_info.value, IFLA_INFO_KIND)?.map(|a| a.c_string());
        let Some(data) = find(link_info.value, IFLA_INFO_DATA)? else {
            return Ok(None);
        };
        if kind != Some(b"tun".as_slice()) {
            return Ok(None);
        }
        let byte = |ty| -> Result<bool, MalformedMessage> {
            Ok(find(data.value, ty)?.and_then(|a| a.value.first().copied()) == Some(1))
        };
        let ty = find(data.value, IFLA_TUN_TYPE)?.and_then(|a| a.value.first().copied());
        Ok(Some(TunLinkInfo {
            tun: ty == Some(libc::IFF_TUN as u8),
            packet_info: byte(IFLA_TUN_PI)?,
            vnet_hdr: byte(IFLA_TUN_VNET_HDR)?,
            multi_queue: byte(IFLA_TUN_MULTI_QUEUE)?,
        }))
    }

    fn parse(header: &NlMsgHdr, payload: &'a [u8]) -> Result<LinkMessage<'a>, MalformedMessage> {
        let (info, attributes) = split_fixed::<IfInfoMsg>(header, payload)?;
        let mut link = LinkMessage {
            seq: header.seq,
            index: info.index.cast_unsigned(),
            flags: IfFlags::from_bits_retain(info.flags),
            change: IfFlags::from_bits_retain(info.change),
            mtu: None,
            name: None,
            attributes,
        };
        for attribute in Attributes::new(attributes) {
            let attribute = attribute?;
            match attribute.ty {
                IFLA_MTU => link.mtu = Some(attribute.u32()?),
                IFLA_IFNAME => link.name = Some(attribute.c_string()),
                _ => {}
            }
        }
        Ok(link)
    }
}

/// Splits a message's payload into its fixed part `T` (`ifinfomsg`, `ifaddrmsg`, `rtmsg`) and the
/// attributes that follow it at the next 4-byte boundary.
pub(crate) fn split_fixed<'a, T: FromBytes>(
    header: &NlMsgHdr,
    payload: &'a [u8],
) -> Result<(T, &'a [u8]), MalformedMessage> {
    let (fixed, _) =
        T::read_from_prefix(payload).map_err(|_| MalformedMessage::PayloadTooShort {
            ty: header.ty,
            len: payload.len(),
            needed: size_of::<T>(),
        })?;
    // Within the payload once read_from_prefix succeeded, when T's size is a multiple of 4 (all three are).
    let start = nlmsg_align(size_of::<T>()).unwrap_or(usize::MAX);
    Ok((fixed, payload.get(start..).unwrap_or_default()))
}

/// An iterator over the messages of one received buffer.
///
/// It yields `Err` once for the first malformed message and then ends, so a caller's loop always
/// terminates; it never reads past the buffer and never panics.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    walk: Walk<'a>,
}

impl<'a> Messages<'a> {
    /// Iterates over the messages in `buf` (the bytes one `recv` returned).
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self {
            walk: Walk::new(buf),
        }
    }
}

/// The message at `walk`'s offset: its header and payload, checked against the buffer, and the offset that
/// follows it.
fn split_message<'a>(walk: &Walk<'a>) -> Result<(NlMsgHdr, &'a [u8], usize), MalformedMessage> {
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
    Ok((header, payload, next))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, MalformedMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        // `next` is always past `offset` (a message is at least 16 bytes), so the walk advances.
        self.walk.step(|walk| {
            let (header, payload, next) = split_message(walk)?;
            Ok((parse_message(&header, payload)?, next))
        })
    }
}

impl std::iter::FusedIterator for Messages<'_> {}

fn parse_message<'a>(
    header: &NlMsgHdr,
    payload: &'a [u8],
) -> Result<Message<'a>, MalformedMessage> {
    Ok(match header.ty {
        RTM_NEWLINK => Message::NewLink(LinkMessage::parse(header, payload)?),
        RTM_DELLINK => Message::DelLink(LinkMessage::parse(header, payload)?),
        RTM_NEWADDR => Message::NewAddress(AddressMessage::parse(header, payload)?),
        RTM_DELADDR => Message::DelAddress(AddressMessage::parse(header, payload)?),
        RTM_NEWROUTE => Message::NewRoute(RouteMessage::parse(header, payload)?),
        RTM_DELROUTE => Message::DelRoute(RouteMessage::parse(header, payload)?),
        NLMSG_ERROR => {
            // `struct nlmsgerr` starts with the negated errno; the request it answers follows.
            let (error, _) = split_fixed::<i32>(header, payload)?;
            Message::Error {
                errno: error.checked_neg().unwrap_or(i32::MAX),
                seq: header.seq,
            }
        }
        NLMSG_DONE => Message::Done { seq: header.seq },
        NLMSG_OVERRUN => Message::Overrun,
        ty => Message::Other { ty },
    })
}

/// The first attribute of type `ty` among `attributes`.
fn find(attributes: &[u8], ty: u16) -> Result<Option<Attribute<'_>>, MalformedMessage> {
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
    pub fn ip(&self, family: u8) -> Result<Option<std::net::IpAddr>, MalformedMessage> {
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

/// An iterator over the attributes of one message, with the same guarantees as [`Messages`].
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

impl std::iter::FusedIterator for Attributes<'_> {}

/// Encodes an `RTM_GETLINK` request for one link, by index or (with index 0) by name, into `out`.
///
/// `name` must not contain NUL; the request carries it NUL-terminated.
pub(crate) fn encode_getlink(out: &mut Vec<u8>, seq: u32, index: i32, name: Option<&[u8]>) {
    let info = IfInfoMsg {
        family: libc::AF_UNSPEC as u8,
        pad: 0,
        ty: 0,
        index,
        flags: 0,
        change: 0,
    };
    begin_request(out, RTM_GETLINK, 0, seq, info.as_bytes());
    if let Some(name) = name {
        push_attribute(out, IFLA_IFNAME, &[name, &[0]]);
    }
    finish_request(out);
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

/// Appends an address attribute: 4 bytes for IPv4, 16 for IPv6, in network byte order.
pub(crate) fn push_ip_attribute(out: &mut Vec<u8>, ty: u16, addr: std::net::IpAddr) {
    match addr {
        std::net::IpAddr::V4(v4) => push_attribute(out, ty, &[&v4.octets()]),
        std::net::IpAddr::V6(v6) => push_attribute(out, ty, &[&v6.octets()]),
    }
}

/// Writes the request's final length into its header.
pub(crate) fn finish_request(out: &mut [u8]) {
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    if let Some(field) = out.get_mut(..size_of::<u32>()) {
        field.copy_from_slice(&len.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::captures;

    fn message(ty: u16, payload: &[u8]) -> Vec<u8> {
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

    fn link_payload(index: i32, flags: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let info = IfInfoMsg {
            family: 0,
            pad: 0,
            ty: 0xfffe,
            index,
            flags,
            change: 0,
        };
        let mut out = info.as_bytes().to_vec();
        out.extend(nest(attrs));
        out
    }

    /// Attributes laid out as the kernel lays them out (each padded to 4 bytes), also for nesting.
    fn nest(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (ty, value) in attrs {
            push_attribute(&mut out, *ty, &[value]);
        }
        out
    }

    fn tun_link(kind: &[u8], ty: u8, pi: u8, vnet: u8, mq: u8) -> Vec<u8> {
        let data = nest(&[
            (IFLA_TUN_TYPE, &[ty]),
            (IFLA_TUN_PI, &[pi]),
            (IFLA_TUN_VNET_HDR, &[vnet]),
            (6, &[0]),
            (IFLA_TUN_MULTI_QUEUE, &[mq]),
        ]);
        let info = nest(&[(IFLA_INFO_KIND, kind), (IFLA_INFO_DATA | 0x8000, &data)]);
        link_payload(
            5,
            0,
            &[
                (IFLA_MTU, &1500u32.to_ne_bytes()),
                (IFLA_LINKINFO | 0x8000, &info),
            ],
        )
    }

    fn tun_info_of(payload: &[u8]) -> Option<TunLinkInfo> {
        let header = NlMsgHdr {
            len: 0,
            ty: RTM_NEWLINK,
            flags: 0,
            seq: 1,
            pid: 0,
        };
        LinkMessage::parse(&header, payload)
            .unwrap()
            .tun_info()
            .unwrap()
    }

    #[test]
    fn tun_link_info_tells_packet_information_and_queue_kind() {
        let info = tun_info_of(&tun_link(b"tun\0", 1, 1, 0, 1)).unwrap();
        assert_eq!(
            info,
            TunLinkInfo {
                tun: true,
                packet_info: true,
                vnet_hdr: false,
                multi_queue: true
            }
        );
        let tap = tun_info_of(&tun_link(b"tun\0", 2, 0, 1, 0)).unwrap();
        assert!(!tap.tun && !tap.packet_info && tap.vnet_hdr && !tap.multi_queue);
    }

    #[test]
    fn link_of_another_kind_or_without_link_info_has_no_tun_info() {
        assert_eq!(tun_info_of(&tun_link(b"veth\0", 1, 0, 0, 0)), None);
        assert_eq!(
            tun_info_of(&link_payload(5, 0, &[(IFLA_MTU, &[0; 4])])),
            None
        );
    }

    fn collect(buf: &[u8]) -> Vec<Result<Message<'_>, MalformedMessage>> {
        // Bounded: a correct iterator yields at most one item per 16 bytes plus one error.
        Messages::new(buf)
            .take(buf.len() / NLMSG_HDRLEN + 2)
            .collect()
    }

    fn only_link(buf: &[u8]) -> LinkMessage<'_> {
        let messages = collect(buf);
        assert_eq!(messages.len(), 1, "{messages:?}");
        match messages[0] {
            Ok(Message::NewLink(link) | Message::DelLink(link)) => link,
            ref other => panic!("not a link message: {other:?}"),
        }
    }

    #[test]
    fn captured_getlink_reply_gives_index_name_mtu_and_down_state() {
        let buf = captures::getlink_reply();
        let link = only_link(&buf);
        assert!(matches!(collect(&buf)[0], Ok(Message::NewLink(_))));
        assert_eq!(link.seq, 7);
        assert_eq!(link.index, 2);
        assert_eq!(link.name, Some(&b"evcap0"[..]));
        assert_eq!(link.mtu, Some(1500));
        assert!(!link.is_up());
        assert!(!link.is_running());
    }

    #[test]
    fn captured_link_up_notification_is_running_with_flag_change() {
        let buf = captures::link_up();
        let link = only_link(&buf);
        assert_eq!(link.seq, 0);
        assert!(link.is_up());
        assert!(link.is_running());
        assert_eq!(link.change, IfFlags::UP);
    }

    #[test]
    fn captured_mtu_change_carries_new_mtu_and_no_flag_change() {
        let buf = captures::mtu_1400();
        let link = only_link(&buf);
        assert_eq!(link.mtu, Some(1400));
        assert_eq!(link.change, IfFlags::empty());
        assert!(link.is_running());
    }

    #[test]
    fn captured_link_down_notification_is_not_running() {
        let buf = captures::link_down();
        let link = only_link(&buf);
        assert!(!link.is_up());
        assert!(!link.is_running());
        assert_eq!(link.mtu, Some(1400));
    }

    #[test]
    fn captured_namespace_move_is_a_dellink_for_the_index() {
        let buf = captures::moved_away();
        assert!(matches!(collect(&buf)[0], Ok(Message::DelLink(_))));
        let link = only_link(&buf);
        assert_eq!(link.index, 2);
        assert_eq!(link.change.bits(), u32::MAX);
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
    fn unpadded_message_length_is_followed_at_the_aligned_offset() {
        // A 21-byte message (one payload byte plus 3 padding bytes), then a DONE.
        let mut buf = message(NLMSG_NOOP, &[0xaa]);
        buf.extend_from_slice(&[0, 0, 0]);
        buf.extend_from_slice(&message(NLMSG_DONE, &[]));
        assert_eq!(
            collect(&buf),
            vec![
                Ok(Message::Other { ty: NLMSG_NOOP }),
                Ok(Message::Done { seq: 9 })
            ]
        );
    }

    #[test]
    fn empty_buffer_yields_nothing() {
        assert!(collect(&[]).is_empty());
    }

    #[test]
    fn zero_length_message_is_an_error_and_ends_iteration() {
        let mut buf = message(NLMSG_DONE, &[]);
        buf[..4].copy_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&message(NLMSG_DONE, &[]));
        assert_eq!(
            collect(&buf),
            vec![Err(MalformedMessage::LengthTooSmall { offset: 0, len: 0 })]
        );
    }

    #[test]
    fn length_below_header_size_is_an_error() {
        let mut buf = message(NLMSG_DONE, &[]);
        buf[..4].copy_from_slice(&15u32.to_ne_bytes());
        assert_eq!(
            collect(&buf),
            vec![Err(MalformedMessage::LengthTooSmall { offset: 0, len: 15 })]
        );
    }

    #[test]
    fn header_cut_short_is_an_error() {
        let buf = message(NLMSG_DONE, &[]);
        assert_eq!(
            collect(&buf[..10]),
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
        let messages = collect(&buf);
        assert_eq!(messages[0], Ok(Message::Done { seq: 9 }));
        assert_eq!(
            messages[1],
            Err(MalformedMessage::TruncatedHeader {
                offset: 16,
                available: 4
            })
        );
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn length_beyond_buffer_is_truncated_error() {
        let buf = captures::link_up();
        let cut = &buf[..buf.len() - 100];
        assert_eq!(
            collect(cut),
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
            collect(&buf)[..],
            [Err(MalformedMessage::Truncated { len: u32::MAX, .. })]
        ));
    }

    #[test]
    fn bytes_between_message_end_and_its_boundary_are_misaligned() {
        // A 21-byte message followed by only 2 bytes: the next message would start mid-padding.
        let mut buf = message(NLMSG_NOOP, &[0xaa]);
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(
            collect(&buf),
            vec![Err(MalformedMessage::Misaligned {
                offset: 0,
                trailing: 2
            })]
        );
    }

    #[test]
    fn link_message_shorter_than_ifinfomsg_is_an_error() {
        let buf = message(RTM_NEWLINK, &[0; 12]);
        assert_eq!(
            collect(&buf),
            vec![Err(MalformedMessage::PayloadTooShort {
                ty: RTM_NEWLINK,
                len: 12,
                needed: 16
            })]
        );
    }

    #[test]
    fn error_message_without_errno_is_an_error() {
        let buf = message(NLMSG_ERROR, &[]);
        assert!(matches!(
            collect(&buf)[..],
            [Err(MalformedMessage::PayloadTooShort {
                ty: NLMSG_ERROR,
                ..
            })]
        ));
    }

    #[test]
    fn error_zero_is_an_acknowledgement() {
        let buf = message(NLMSG_ERROR, &[0; 20]);
        assert_eq!(collect(&buf), vec![Ok(Message::Error { errno: 0, seq: 9 })]);
    }

    #[test]
    fn mtu_attribute_of_wrong_size_is_an_error() {
        let payload = link_payload(3, 0, &[(IFLA_MTU, &[0xdc, 0x05])]);
        assert_eq!(
            collect(&message(RTM_NEWLINK, &payload)),
            vec![Err(MalformedMessage::BadAttributeValue {
                ty: IFLA_MTU,
                len: 2,
                expected: 4
            })]
        );
    }

    #[test]
    fn zero_length_attribute_is_an_error_not_a_loop() {
        let mut payload = link_payload(3, 0, &[]);
        payload.extend_from_slice(&[0, 0, 4, 0, 0, 0, 0, 0]);
        assert!(matches!(
            collect(&message(RTM_NEWLINK, &payload))[..],
            [Err(MalformedMessage::BadAttribute {
                offset: 0,
                len: 0,
                ..
            })]
        ));
    }

    #[test]
    fn attribute_reaching_past_its_message_is_an_error() {
        let mut payload = link_payload(3, 0, &[(IFLA_MTU, &1400u32.to_ne_bytes())]);
        let attr_start = size_of::<IfInfoMsg>();
        payload[attr_start..attr_start + 2].copy_from_slice(&40u16.to_ne_bytes());
        assert!(matches!(
            collect(&message(RTM_NEWLINK, &payload))[..],
            [Err(MalformedMessage::BadAttribute { len: 40, .. })]
        ));
    }

    #[test]
    fn attribute_followed_by_bytes_short_of_its_padding_is_an_error() {
        // A 5-byte attribute value (rta_len 9) followed by 1 byte: its padding needs 3.
        let mut payload = link_payload(3, 0, &[]);
        payload.extend_from_slice(&[9, 0, 0x30, 0, 1, 2, 3, 4, 5, 0]);
        assert!(matches!(
            collect(&message(RTM_NEWLINK, &payload))[..],
            [Err(MalformedMessage::BadAttribute { len: 9, .. })]
        ));
    }

    #[test]
    fn nested_flag_bits_are_removed_from_attribute_type() {
        let payload = link_payload(3, 0, &[(IFLA_MTU | 0x8000, &1280u32.to_ne_bytes())]);
        let buf = message(RTM_NEWLINK, &payload);
        assert_eq!(only_link(&buf).mtu, Some(1280));
    }

    #[test]
    fn name_without_nul_is_taken_whole() {
        let payload = link_payload(3, 0, &[(IFLA_IFNAME, b"tun7")]);
        assert_eq!(
            only_link(&message(RTM_NEWLINK, &payload)).name,
            Some(&b"tun7"[..])
        );
    }

    #[test]
    fn getlink_request_by_index_has_header_and_ifinfomsg_only() {
        let mut out = Vec::new();
        encode_getlink(&mut out, 42, 5, None);
        assert_eq!(out.len(), 32);
        let (header, rest) = NlMsgHdr::read_from_prefix(&out).unwrap();
        assert_eq!(header.len, 32);
        assert_eq!(header.ty, RTM_GETLINK);
        assert_eq!(header.flags, libc::NLM_F_REQUEST as u16);
        assert_eq!(header.seq, 42);
        let (info, _) = IfInfoMsg::read_from_prefix(rest).unwrap();
        assert_eq!(info.index, 5);
    }

    #[test]
    fn getlink_request_by_name_carries_nul_terminated_padded_name() {
        let mut out = Vec::new();
        encode_getlink(&mut out, 1, 0, Some(b"tun12"));
        // 16 header + 16 ifinfomsg + 4 rtattr + 6 name with NUL = 42, padded to 44.
        assert_eq!(out.len(), 44);
        assert_eq!(u32::from_ne_bytes(out[..4].try_into().unwrap()), 44);
        let attributes: Vec<_> = Attributes::new(&out[32..]).collect();
        assert_eq!(
            attributes,
            vec![Ok(Attribute {
                ty: IFLA_IFNAME,
                value: b"tun12\0"
            })]
        );
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
