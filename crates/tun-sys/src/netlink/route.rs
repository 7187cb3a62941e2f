//! Routes over rtnetlink: `RTM_NEWROUTE`, `RTM_DELROUTE` and `RTM_GETROUTE` requests, and the
//! `RTM_NEWROUTE` / `RTM_DELROUTE` messages the kernel answers with.
//!
//! A route message is an `rtmsg` (family, destination prefix length, table, protocol, scope, type) and
//! attributes: `RTA_DST` (absent for a default route), `RTA_OIF` (the outgoing interface), `RTA_PRIORITY`
//! (the metric) and `RTA_TABLE` (the table id, which `rtm_table` holds only up to 255). The requests built
//! here are the ones a TUN device needs: unicast routes of the main table out of one interface, without a
//! gateway, as `ip route add PREFIX dev NAME [metric N]` makes them.

use std::net::IpAddr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::wire::{
    Attributes, Frame, MalformedMessage, begin_request, family_of, finish_request, push_attribute,
    push_ip_attribute,
};

/// `RTM_NEWROUTE`: add a route (and the kernel's report of one).
pub(crate) const RTM_NEWROUTE: u16 = libc::RTM_NEWROUTE;
/// `RTM_DELROUTE`: remove a route.
pub(crate) const RTM_DELROUTE: u16 = libc::RTM_DELROUTE;
/// `RTM_GETROUTE`: ask for routes (with `NLM_F_DUMP`: all of them).
pub(crate) const RTM_GETROUTE: u16 = libc::RTM_GETROUTE;
/// `RTA_DST`: the destination prefix address.
pub(crate) const RTA_DST: u16 = 1;
/// `RTA_OIF`: the outgoing interface index (`u32`).
pub(crate) const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`: the next hop.
pub(crate) const RTA_GATEWAY: u16 = 5;
/// `RTA_PRIORITY`: the metric (`u32`).
pub(crate) const RTA_PRIORITY: u16 = 6;
/// `RTA_TABLE`: the table id (`u32`).
pub(crate) const RTA_TABLE: u16 = 15;
/// `RT_TABLE_MAIN`: the table `ip route` shows and changes by default.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RTN_UNICAST`: a route to a gateway or a directly connected network.
pub(crate) const RTN_UNICAST: u8 = 1;
/// `RTPROT_BOOT`: the protocol `ip route add` gives routes it adds.
pub(crate) const RTPROT_BOOT: u8 = 3;
/// `RT_SCOPE_UNIVERSE`: a route beyond this host (every IPv6 route has it).
pub(crate) const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_LINK`: a destination directly on the link, as an IPv4 route without a gateway is.
pub(crate) const RT_SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_NOWHERE`: in a delete request, "any scope".
pub(crate) const RT_SCOPE_NOWHERE: u8 = 255;

/// `struct rtmsg`: the fixed part of every route message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct RtMsg {
    /// `rtm_family`: `AF_INET` or `AF_INET6` (`AF_UNSPEC` in a dump request for both).
    pub family: u8,
    /// `rtm_dst_len`: the destination prefix length.
    pub dst_len: u8,
    /// `rtm_src_len`: the source prefix length (policy routing; 0 here).
    pub src_len: u8,
    /// `rtm_tos`.
    pub tos: u8,
    /// `rtm_table`: the table id, or `RT_TABLE_UNSPEC` when only `RTA_TABLE` holds it.
    pub table: u8,
    /// `rtm_protocol`: who added the route (`RTPROT_*`).
    pub protocol: u8,
    /// `rtm_scope`: `RT_SCOPE_*`.
    pub scope: u8,
    /// `rtm_type`: `RTN_*`.
    pub kind: u8,
    /// `rtm_flags`: `RTM_F_*`.
    pub flags: u32,
}

/// A route of the main table out of one interface, to add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The outgoing interface index.
    pub index: u32,
    /// The destination network address (no bits set past `prefix_len`).
    pub dest: IpAddr,
    /// The destination prefix length; 0 is a default route.
    pub prefix_len: u8,
    /// The metric; `None` adds with the kernel's default (0 for IPv4, 1024 for IPv6) and removes the route
    /// whatever its metric.
    pub metric: Option<u32>,
}

impl RouteSpec {
    /// The `rtmsg` of a unicast route of the main table to this destination.
    fn fixed(&self, protocol: u8, scope: u8) -> RtMsg {
        RtMsg {
            family: family_of(self.dest),
            dst_len: self.prefix_len,
            src_len: 0,
            tos: 0,
            table: RT_TABLE_MAIN as u8,
            protocol,
            scope,
            kind: RTN_UNICAST,
            flags: 0,
        }
    }

    fn push_attributes(&self, out: &mut Vec<u8>) {
        push_ip_attribute(out, RTA_DST, self.dest);
        push_attribute(out, RTA_OIF, &[&self.index.to_ne_bytes()]);
        if let Some(metric) = self.metric {
            push_attribute(out, RTA_PRIORITY, &[&metric.to_ne_bytes()]);
        }
    }
}

/// Encodes an `RTM_NEWROUTE` request that fails with `EEXIST` when the same route exists.
pub(crate) fn encode_new_route(out: &mut Vec<u8>, seq: u32, spec: &RouteSpec) {
    // What `ip route add ... dev X` picks: link scope for IPv4 without a gateway; IPv6 has no scopes.
    let scope = if spec.dest.is_ipv4() {
        RT_SCOPE_LINK
    } else {
        RT_SCOPE_UNIVERSE
    };
    let create = (libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    let fixed = spec.fixed(RTPROT_BOOT, scope);
    begin_request(out, RTM_NEWROUTE, create, seq, fixed.as_bytes());
    spec.push_attributes(out);
    finish_request(out);
}

/// Encodes an `RTM_DELROUTE` request for the route to `spec.dest/prefix_len` out of `spec.index` in the
/// main table (with `spec.metric` when given); the kernel answers `ESRCH` when there is none.
pub(crate) fn encode_del_route(out: &mut Vec<u8>, seq: u32, spec: &RouteSpec) {
    // Any protocol and scope: the route may have been added by someone else.
    let fixed = spec.fixed(0, RT_SCOPE_NOWHERE);
    begin_request(
        out,
        RTM_DELROUTE,
        libc::NLM_F_ACK as u16,
        seq,
        fixed.as_bytes(),
    );
    spec.push_attributes(out);
    finish_request(out);
}

/// A route message: the `rtmsg` and the attributes this crate's users need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMessage {
    /// Sequence number: the request's for a reply, 0 for a notification.
    pub seq: u32,
    /// `AF_INET` or `AF_INET6` (other families carry no address this crate reads).
    pub family: u8,
    /// The destination prefix length.
    pub dst_len: u8,
    /// The table id: `RTA_TABLE` when present, else `rtm_table`.
    pub table: u32,
    /// `RTPROT_*`.
    pub protocol: u8,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// `RTN_*`.
    pub kind: u8,
    /// `RTA_DST`, absent for a default route.
    pub dest: Option<IpAddr>,
    /// `RTA_OIF`, when present (a multipath route has its interfaces in `RTA_MULTIPATH` instead).
    pub oif: Option<u32>,
    /// `RTA_GATEWAY`, when present.
    pub gateway: Option<IpAddr>,
    /// `RTA_PRIORITY` (the metric), when present.
    pub priority: Option<u32>,
}

impl RouteMessage {
    /// The destination network: `RTA_DST`, or the unspecified address of the family for a default route;
    /// `None` for families other than IPv4 and IPv6.
    #[must_use]
    pub fn destination(&self) -> Option<IpAddr> {
        self.dest.or(match i32::from(self.family) {
            libc::AF_INET => Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            libc::AF_INET6 => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
            _ => None,
        })
    }

    /// Reads a route message (`RTM_NEWROUTE`, `RTM_DELROUTE`) out of its frame.
    pub(crate) fn parse(frame: &Frame<'_>) -> Result<RouteMessage, MalformedMessage> {
        let (fixed, attributes) = frame.split_fixed::<RtMsg>()?;
        let mut message = RouteMessage {
            seq: frame.header.seq,
            family: fixed.family,
            dst_len: fixed.dst_len,
            table: u32::from(fixed.table),
            protocol: fixed.protocol,
            scope: fixed.scope,
            kind: fixed.kind,
            dest: None,
            oif: None,
            gateway: None,
            priority: None,
        };
        for attribute in Attributes::new(attributes) {
            let attribute = attribute?;
            match attribute.ty {
                RTA_DST => message.dest = attribute.ip(fixed.family)?,
                RTA_GATEWAY => message.gateway = attribute.ip(fixed.family)?,
                RTA_OIF => message.oif = Some(attribute.u32()?),
                RTA_PRIORITY => message.priority = Some(attribute.u32()?),
                RTA_TABLE => message.table = attribute.u32()?,
                _ => {}
            }
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{Message, Messages};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// 10.20.0.0/16 out of interface 5.
    fn ten_twenty(metric: Option<u32>) -> RouteSpec {
        RouteSpec {
            index: 5,
            dest: Ipv4Addr::new(10, 20, 0, 0).into(),
            prefix_len: 16,
            metric,
        }
    }

    #[test]
    fn new_ipv4_route_request_is_exact() {
        let mut out = Vec::new();
        encode_new_route(&mut out, 7, &ten_twenty(Some(50)));
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[52, 0, 0, 0][..],
            &24u16.to_ne_bytes(),              // RTM_NEWROUTE
            &0x0605u16.to_ne_bytes(),          // REQUEST | ACK | EXCL | CREATE
            &7u32.to_ne_bytes(), &[0; 4],
            &[2, 16, 0, 0, 254, 3, 253, 1], &[0; 4], // AF_INET /16, main, boot, link scope, unicast
            &[8, 0, 1, 0, 10, 20, 0, 0],       // RTA_DST
            &[8, 0, 4, 0], &5u32.to_ne_bytes(), // RTA_OIF
            &[8, 0, 6, 0], &50u32.to_ne_bytes(), // RTA_PRIORITY
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn new_ipv6_route_without_metric_has_universe_scope_and_no_priority() {
        let mut out = Vec::new();
        let dest = Ipv6Addr::new(0xfd00, 0xbeef, 0, 0, 0, 0, 0, 0);
        let spec = RouteSpec {
            index: 2,
            dest: dest.into(),
            prefix_len: 32,
            metric: None,
        };
        encode_new_route(&mut out, 1, &spec);
        assert_eq!(out.len(), 16 + 12 + 20 + 8);
        assert_eq!(&out[16..24], &[10, 32, 0, 0, 254, 3, 0, 1]);
        let attributes: Vec<_> = Attributes::new(&out[28..]).map(Result::unwrap).collect();
        assert_eq!(
            (attributes[0].ty, attributes[0].value),
            (RTA_DST, &dest.octets()[..])
        );
        assert_eq!(
            (attributes[1].ty, attributes[1].u32().unwrap()),
            (RTA_OIF, 2)
        );
        assert_eq!(attributes.len(), 2);
    }

    #[test]
    fn delete_request_matches_any_protocol_and_scope() {
        let mut out = Vec::new();
        encode_del_route(&mut out, 2, &ten_twenty(None));
        assert_eq!(u16::from_ne_bytes([out[4], out[5]]), RTM_DELROUTE);
        assert_eq!(u16::from_ne_bytes([out[6], out[7]]), 0x0005);
        assert_eq!(&out[16..24], &[2, 16, 0, 0, 254, 0, 255, 1]);
        assert_eq!(out.len(), 16 + 12 + 8 + 8);
    }

    #[test]
    fn dump_request_is_a_zero_rtmsg_with_dump_flags() {
        let mut out = Vec::new();
        crate::netlink::wire::encode_dump::<RtMsg>(&mut out, 4, RTM_GETROUTE);
        assert_eq!(out.len(), 28);
        assert_eq!(u16::from_ne_bytes([out[4], out[5]]), RTM_GETROUTE);
        assert_eq!(u16::from_ne_bytes([out[6], out[7]]), 0x0301);
        assert_eq!(&out[16..], &[0; 12]);
    }

    /// An `RTM_NEWROUTE` as the kernel sends it in a dump for `fd00::/64 dev (4) metric 256` (seq 6), with
    /// `RTA_TABLE` and `RTA_PREF` that carry what the parser needs and skips.
    #[rustfmt::skip]
    fn ipv6_reply() -> Vec<u8> {
        [
            &[80, 0, 0, 0][..], &24u16.to_ne_bytes(), &2u16.to_ne_bytes(), &6u32.to_ne_bytes(), &[0; 4],
            &[10, 64, 0, 0, 254, 2, 0, 1], &[0; 4],
            &[8, 0, 15, 0], &254u32.to_ne_bytes(),                               // RTA_TABLE
            &[20, 0, 1, 0], &Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0).octets(), // RTA_DST
            &[8, 0, 6, 0], &256u32.to_ne_bytes(),                                // RTA_PRIORITY
            &[8, 0, 4, 0], &4u32.to_ne_bytes(),                                  // RTA_OIF
            &[5, 0, 20, 0, 0, 0, 0, 0],                                          // RTA_PREF
        ]
        .concat()
    }

    fn only_route(buf: &[u8]) -> RouteMessage {
        let messages: Vec<_> = Messages::new(buf).collect();
        match messages[..] {
            [Ok(Message::NewRoute(r) | Message::DelRoute(r))] => r,
            ref other => panic!("not one route message: {other:?}"),
        }
    }

    #[test]
    fn ipv6_reply_gives_destination_interface_metric_and_table() {
        let route = only_route(&ipv6_reply());
        assert_eq!(route.seq, 6);
        assert_eq!(
            route.destination(),
            Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0).into())
        );
        assert_eq!(route.dst_len, 64);
        assert_eq!(route.oif, Some(4));
        assert_eq!(route.priority, Some(256));
        assert_eq!(route.table, RT_TABLE_MAIN);
        assert_eq!(route.gateway, None);
    }

    #[test]
    fn table_attribute_overrides_the_8_bit_field() {
        let mut buf = ipv6_reply();
        buf[20] = 0; // rtm_table RT_TABLE_UNSPEC
        buf[32..36].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(only_route(&buf).table, 1000);
    }

    #[test]
    fn default_route_without_rta_dst_is_the_unspecified_address() {
        #[rustfmt::skip]
        let buf: Vec<u8> = [
            &[36, 0, 0, 0][..], &24u16.to_ne_bytes(), &0u16.to_ne_bytes(), &0u32.to_ne_bytes(), &[0; 4],
            &[2, 0, 0, 0, 254, 3, 0, 1], &[0; 4],
            &[8, 0, 4, 0], &9u32.to_ne_bytes(),
        ]
        .concat();
        let route = only_route(&buf);
        assert_eq!(route.destination(), Some(Ipv4Addr::UNSPECIFIED.into()));
        assert_eq!(route.dst_len, 0);
        assert_eq!(route.oif, Some(9));
    }

    #[test]
    fn interface_attribute_of_wrong_size_is_an_error() {
        let mut buf = ipv6_reply();
        buf[64] = 6; // RTA_OIF claims 2 value bytes (padding keeps the next attribute aligned)
        assert_eq!(
            Messages::new(&buf).next(),
            Some(Err(MalformedMessage::BadAttributeValue {
                ty: RTA_OIF,
                len: 2,
                expected: 4
            }))
        );
    }

    #[test]
    fn captured_routes_give_destination_prefix_interface_metric_and_table() {
        use crate::netlink::captures;
        let kernel = only_route(&captures::route_kernel_ipv4());
        assert_eq!(
            kernel.destination(),
            Some(Ipv4Addr::new(10, 9, 0, 0).into())
        );
        assert_eq!(
            (kernel.dst_len, kernel.oif, kernel.priority),
            (24, Some(2), None)
        );
        assert_eq!((kernel.table, kernel.scope), (RT_TABLE_MAIN, RT_SCOPE_LINK));
        let added = only_route(&captures::route_metric_ipv4());
        assert_eq!(
            added.destination(),
            Some(Ipv4Addr::new(10, 20, 0, 0).into())
        );
        assert_eq!((added.dst_len, added.priority), (16, Some(50)));
        assert_eq!((added.protocol, added.kind), (RTPROT_BOOT, RTN_UNICAST));
        let ipv6 = only_route(&captures::route_kernel_ipv6());
        assert_eq!(
            ipv6.destination(),
            Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0).into())
        );
        assert_eq!(
            (ipv6.dst_len, ipv6.oif, ipv6.priority),
            (64, Some(2), Some(256))
        );
        assert_eq!(ipv6.seq, 6);
    }

    #[test]
    fn every_prefix_of_a_route_reply_parses_without_panic() {
        let buf = ipv6_reply();
        for end in 0..=buf.len() {
            assert!(Messages::new(&buf[..end]).take(100).count() <= 1);
        }
    }
}
