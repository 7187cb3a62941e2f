//! Links over rtnetlink: `RTM_GETLINK` requests, and the `RTM_NEWLINK` / `RTM_DELLINK` messages the kernel
//! answers and notifies with.
//!
//! A link message is an `ifinfomsg` (type, interface index, `IFF_*` flags and which of them changed) and
//! attributes: `IFLA_IFNAME`, `IFLA_MTU`, `IFLA_GSO_MAX_SEGS` / `IFLA_GSO_MAX_SIZE`, and `IFLA_LINKINFO`,
//! whose nested `IFLA_INFO_DATA` holds a TUN device's own settings (`IFLA_TUN_*`). A request with an index
//! and some of these attributes changes them (`RTM_NEWLINK` on an existing link, as `ip link set` sends).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::wire::{
    Attributes, Frame, MalformedMessage, begin_request, find, finish_request, push_attribute,
};
use crate::flags::IfFlags;

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
/// `IFLA_GSO_MAX_SEGS`: the most segments of one GSO packet the stack hands the link (`u32`).
pub(crate) const IFLA_GSO_MAX_SEGS: u16 = libc::IFLA_GSO_MAX_SEGS;
/// `IFLA_GSO_MAX_SIZE`: the most bytes of one GSO packet the stack hands the link (`u32`).
pub(crate) const IFLA_GSO_MAX_SIZE: u16 = libc::IFLA_GSO_MAX_SIZE;
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

impl IfInfoMsg {
    /// The fixed part of a request about the link `index` (0: the one the request names), changing no flags.
    fn of_link(index: i32) -> Self {
        Self {
            family: libc::AF_UNSPEC as u8,
            pad: 0,
            ty: 0,
            index,
            flags: 0,
            change: 0,
        }
    }
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
    /// `IFLA_GSO_MAX_SEGS`, when present: the most segments of a super-packet the link is handed.
    pub gso_max_segments: Option<u32>,
    /// `IFLA_GSO_MAX_SIZE`, when present: the most bytes of a super-packet the link is handed.
    pub gso_max_size: Option<u32>,
    /// All attributes, for callers that need others.
    pub attributes: &'a [u8],
}

/// How large a super-packet (GSO packet) the stack hands a link: at most `max_segments` segments and
/// `max_size` bytes (`IFLA_GSO_MAX_SEGS`, `IFLA_GSO_MAX_SIZE`; `ip -d link` shows them as `gso_max_segs`
/// and `gso_max_size`). A TCP sender sizes its super-packets to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GsoLimits {
    /// The most segments of one super-packet.
    pub max_segments: u32,
    /// The most bytes of one super-packet, headers included.
    pub max_size: u32,
}

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

    /// Reads a link message (`RTM_NEWLINK`, `RTM_DELLINK`) out of its frame.
    pub(crate) fn parse(frame: &Frame<'a>) -> Result<LinkMessage<'a>, MalformedMessage> {
        let (info, attributes) = frame.split_fixed::<IfInfoMsg>()?;
        let mut link = LinkMessage {
            seq: frame.header.seq,
            index: info.index.cast_unsigned(),
            flags: IfFlags::from_bits_retain(info.flags),
            change: IfFlags::from_bits_retain(info.change),
            mtu: None,
            name: None,
            gso_max_segments: None,
            gso_max_size: None,
            attributes,
        };
        for attribute in Attributes::new(attributes) {
            let attribute = attribute?;
            match attribute.ty {
                IFLA_MTU => link.mtu = Some(attribute.u32()?),
                IFLA_IFNAME => link.name = Some(attribute.c_string()),
                IFLA_GSO_MAX_SEGS => link.gso_max_segments = Some(attribute.u32()?),
                IFLA_GSO_MAX_SIZE => link.gso_max_size = Some(attribute.u32()?),
                _ => {}
            }
        }
        Ok(link)
    }
}

/// Encodes an `RTM_GETLINK` request for one link, by index or (with index 0) by name, into `out`.
///
/// `name` must not contain NUL; the request carries it NUL-terminated.
pub(crate) fn encode_getlink(out: &mut Vec<u8>, seq: u32, index: i32, name: Option<&[u8]>) {
    let info = IfInfoMsg::of_link(index);
    begin_request(out, RTM_GETLINK, 0, seq, info.as_bytes());
    if let Some(name) = name {
        push_attribute(out, IFLA_IFNAME, &[name, &[0]]);
    }
    finish_request(out);
}

/// Encodes an `RTM_NEWLINK` request that changes the existing link `index`: each `(attribute, value)` of
/// `settings` (`u32` attributes such as [`IFLA_GSO_MAX_SEGS`]), acknowledged.
pub(crate) fn encode_set_link(out: &mut Vec<u8>, seq: u32, index: i32, settings: &[(u16, u32)]) {
    let info = IfInfoMsg::of_link(index);
    begin_request(
        out,
        RTM_NEWLINK,
        libc::NLM_F_ACK as u16,
        seq,
        info.as_bytes(),
    );
    for &(attribute, value) in settings {
        push_attribute(out, attribute, &[&value.to_ne_bytes()]);
    }
    finish_request(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::captures;
    use crate::netlink::wire::{Attribute, NlMsgHdr, message};
    use crate::netlink::{Message, Messages};

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

    /// An `RTM_NEWLINK` frame with `payload`, as the kernel answers.
    fn newlink(payload: &[u8]) -> Frame<'_> {
        Frame {
            header: NlMsgHdr {
                len: 0,
                ty: RTM_NEWLINK,
                flags: 0,
                seq: 1,
                pid: 0,
            },
            payload,
        }
    }

    fn tun_info_of(payload: &[u8]) -> Option<TunLinkInfo> {
        LinkMessage::parse(&newlink(payload))
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
        Messages::new(buf).take(buf.len() / 16 + 2).collect()
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
    fn malformed_attribute_makes_the_link_message_an_error() {
        let mut payload = link_payload(3, 0, &[(IFLA_MTU, &1400u32.to_ne_bytes())]);
        let attr_start = size_of::<IfInfoMsg>();
        payload[attr_start..attr_start + 2].copy_from_slice(&40u16.to_ne_bytes());
        assert!(matches!(
            collect(&message(RTM_NEWLINK, &payload))[..],
            [Err(MalformedMessage::BadAttribute { len: 40, .. })]
        ));
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
    fn gso_limits_are_read_from_their_attributes() {
        let payload = link_payload(
            5,
            0,
            &[
                (IFLA_GSO_MAX_SEGS, &45u32.to_ne_bytes()),
                (IFLA_GSO_MAX_SIZE, &65536u32.to_ne_bytes()),
            ],
        );
        let link = LinkMessage::parse(&newlink(&payload)).unwrap();
        assert_eq!(link.gso_max_segments, Some(45));
        assert_eq!(link.gso_max_size, Some(65536));
        let short = link_payload(5, 0, &[(IFLA_GSO_MAX_SEGS, &[1, 2])]);
        assert!(
            LinkMessage::parse(&newlink(&short)).is_err(),
            "a truncated value is malformed"
        );
    }

    #[test]
    fn set_link_request_names_the_link_and_carries_each_setting_acknowledged() {
        let mut out = Vec::new();
        encode_set_link(
            &mut out,
            7,
            12,
            &[(IFLA_GSO_MAX_SEGS, 45), (IFLA_GSO_MAX_SIZE, 60000)],
        );
        // 16 header + 16 ifinfomsg + two attributes of 4 + 4.
        assert_eq!(out.len(), 48);
        let (header, rest) = NlMsgHdr::read_from_prefix(&out).unwrap();
        assert_eq!(header.len, 48);
        assert_eq!(header.ty, RTM_NEWLINK);
        assert_eq!(header.flags, (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16);
        assert_eq!(header.seq, 7);
        let link = LinkMessage::parse(&Frame {
            header,
            payload: rest,
        })
        .unwrap();
        assert_eq!(link.index, 12);
        assert_eq!(link.gso_max_segments, Some(45));
        assert_eq!(link.gso_max_size, Some(60000));
        assert_eq!(link.mtu, None);
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
}
