//! Interface addresses over rtnetlink: `RTM_NEWADDR`, `RTM_DELADDR` and `RTM_GETADDR` requests, and the
//! `RTM_NEWADDR` / `RTM_DELADDR` messages the kernel answers with.
//!
//! An address message is an `ifaddrmsg` (family, prefix length, flags, scope, interface index) and
//! attributes. `IFA_LOCAL` is the interface's own address and `IFA_ADDRESS` the other end of a
//! point-to-point link; without a peer the kernel reports both equal for IPv4 and only `IFA_ADDRESS` for
//! IPv6. Requests carry `IFA_LOCAL` always and `IFA_ADDRESS` (the peer, or the local address again) when
//! adding, as `ip addr add` does.

use std::net::IpAddr;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::wire::{
    Attributes, Frame, MalformedMessage, begin_request, family_of, finish_request, push_attribute,
    push_ip_attribute,
};

/// `RTM_NEWADDR`: add an address (and the kernel's report of one).
pub(crate) const RTM_NEWADDR: u16 = libc::RTM_NEWADDR;
/// `RTM_DELADDR`: remove an address.
pub(crate) const RTM_DELADDR: u16 = libc::RTM_DELADDR;
/// `RTM_GETADDR`: ask for addresses (with `NLM_F_DUMP`: all of them).
pub(crate) const RTM_GETADDR: u16 = libc::RTM_GETADDR;
/// `IFA_ADDRESS`: the prefix address (the peer on a point-to-point link).
pub(crate) const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`: the interface's own address.
pub(crate) const IFA_LOCAL: u16 = 2;
/// `IFA_FLAGS`: all 32 flag bits (`ifa_flags` in the fixed part holds only the low 8).
pub(crate) const IFA_FLAGS: u16 = 8;
/// `IFA_F_NODAD`: no duplicate address detection; an IPv6 address is usable at once.
pub(crate) const IFA_F_NODAD: u32 = 0x02;
/// `IFA_F_TENTATIVE`: duplicate address detection has not finished; sockets cannot bind to it yet.
pub(crate) const IFA_F_TENTATIVE: u32 = 0x40;

/// `struct ifaddrmsg`: the fixed part of every address message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct IfAddrMsg {
    /// `ifa_family`: `AF_INET` or `AF_INET6` (`AF_UNSPEC` in a dump request for both).
    pub family: u8,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `ifa_flags`: the low 8 bits of the `IFA_F_*` flags.
    pub flags: u8,
    /// `ifa_scope`: `RT_SCOPE_*`.
    pub scope: u8,
    /// `ifa_index`: the interface index.
    pub index: u32,
}

/// An address to add to or remove from an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSpec {
    /// The interface index.
    pub index: u32,
    /// The interface's own address.
    pub local: IpAddr,
    /// The other end of a point-to-point link, if any; the prefix length then applies to it.
    pub peer: Option<IpAddr>,
    /// The prefix length.
    pub prefix_len: u8,
}

impl AddressSpec {
    fn fixed(&self, flags: u8) -> IfAddrMsg {
        IfAddrMsg {
            family: family_of(self.local),
            prefix_len: self.prefix_len,
            flags,
            scope: 0,
            index: self.index,
        }
    }

    /// `IFA_LOCAL`, and `IFA_ADDRESS`: the peer, or the local address again.
    fn push_attributes(&self, out: &mut Vec<u8>) {
        push_ip_attribute(out, IFA_LOCAL, self.local);
        push_ip_attribute(out, IFA_ADDRESS, self.peer.unwrap_or(self.local));
    }
}

/// Encodes an `RTM_NEWADDR` request that fails with `EEXIST` when the address is there already. IPv6
/// addresses skip duplicate address detection (`IFA_F_NODAD`), so they can be bound to as soon as the
/// kernel acknowledges.
pub(crate) fn encode_new_address(out: &mut Vec<u8>, seq: u32, spec: &AddressSpec) {
    let flags = if spec.local.is_ipv6() { IFA_F_NODAD } else { 0 };
    let create = (libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    // IFA_F_NODAD fits the 8-bit field; IFA_FLAGS repeats it for kernels that read only the attribute.
    begin_request(
        out,
        RTM_NEWADDR,
        create,
        seq,
        spec.fixed(flags as u8).as_bytes(),
    );
    spec.push_attributes(out);
    if flags != 0 {
        push_attribute(out, IFA_FLAGS, &[&flags.to_ne_bytes()]);
    }
    finish_request(out);
}

/// Encodes an `RTM_DELADDR` request for the address `spec.local` with `spec.prefix_len` (and `spec.peer`, which
/// must be the address's peer if it has one); the kernel answers `EADDRNOTAVAIL` when the interface has no
/// such address.
pub(crate) fn encode_del_address(out: &mut Vec<u8>, seq: u32, spec: &AddressSpec) {
    // Without IFA_ADDRESS the IPv4 code would ignore the prefix length and remove any address with this
    // IFA_LOCAL; with it, it also wants the peer's network to match.
    begin_request(
        out,
        RTM_DELADDR,
        libc::NLM_F_ACK as u16,
        seq,
        spec.fixed(0).as_bytes(),
    );
    spec.push_attributes(out);
    finish_request(out);
}

/// An address message: the `ifaddrmsg` and the attributes this crate's users need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressMessage {
    /// Sequence number: the request's for a reply, 0 for a notification.
    pub seq: u32,
    /// `AF_INET` or `AF_INET6` (other families carry no address this crate reads).
    pub family: u8,
    /// The prefix length.
    pub prefix_len: u8,
    /// The `IFA_F_*` flags: `IFA_FLAGS` when present, else the 8-bit `ifa_flags`.
    pub flags: u32,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// The interface index.
    pub index: u32,
    /// `IFA_LOCAL`, when present.
    pub local: Option<IpAddr>,
    /// `IFA_ADDRESS`, when present.
    pub address: Option<IpAddr>,
}

impl AddressMessage {
    /// The interface's own address: `IFA_LOCAL`, or `IFA_ADDRESS` when only that is present (IPv6 without a
    /// peer).
    #[must_use]
    pub fn own_address(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }

    /// The point-to-point peer: `IFA_ADDRESS` when it differs from `IFA_LOCAL`.
    #[must_use]
    pub fn peer(&self) -> Option<IpAddr> {
        match (self.local, self.address) {
            (Some(local), Some(address)) if local != address => Some(address),
            _ => None,
        }
    }

    /// Whether duplicate address detection is still pending (`IFA_F_TENTATIVE`).
    #[must_use]
    pub const fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }

    /// Reads an address message (`RTM_NEWADDR`, `RTM_DELADDR`) out of its frame.
    pub(crate) fn parse(frame: &Frame<'_>) -> Result<AddressMessage, MalformedMessage> {
        let (fixed, attributes) = frame.split_fixed::<IfAddrMsg>()?;
        let mut message = AddressMessage {
            seq: frame.header.seq,
            family: fixed.family,
            prefix_len: fixed.prefix_len,
            flags: u32::from(fixed.flags),
            scope: fixed.scope,
            index: fixed.index,
            local: None,
            address: None,
        };
        for attribute in Attributes::new(attributes) {
            let attribute = attribute?;
            match attribute.ty {
                IFA_LOCAL => message.local = attribute.ip(fixed.family)?,
                IFA_ADDRESS => message.address = attribute.ip(fixed.family)?,
                IFA_FLAGS => message.flags = attribute.u32()?,
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

    const V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

    #[test]
    fn new_ipv4_address_request_is_exact() {
        let mut out = Vec::new();
        let spec = AddressSpec {
            index: 7,
            local: Ipv4Addr::new(10, 1, 2, 3).into(),
            peer: None,
            prefix_len: 24,
        };
        encode_new_address(&mut out, 0x0102_0304, &spec);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[32 + 8, 0, 0, 0][..],            // nlmsg_len 40
            &20u16.to_ne_bytes(),              // RTM_NEWADDR
            &0x0605u16.to_ne_bytes(),          // REQUEST | ACK | EXCL | CREATE
            &0x0102_0304u32.to_ne_bytes(),     // seq
            &[0, 0, 0, 0],                     // pid
            &[2, 24, 0, 0], &7u32.to_ne_bytes(), // AF_INET /24, no flags, scope 0, index 7
            &8u16.to_ne_bytes(), &2u16.to_ne_bytes(), &[10, 1, 2, 3], // IFA_LOCAL
            &8u16.to_ne_bytes(), &1u16.to_ne_bytes(), &[10, 1, 2, 3], // IFA_ADDRESS = local
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn new_ipv6_address_request_skips_duplicate_address_detection() {
        let mut out = Vec::new();
        let spec = AddressSpec {
            index: 3,
            local: V6.into(),
            peer: None,
            prefix_len: 64,
        };
        encode_new_address(&mut out, 1, &spec);
        // 16 header + 8 ifaddrmsg + 2 * 20 address attributes + 8 IFA_FLAGS.
        assert_eq!(out.len(), 72);
        assert_eq!(&out[16..24], &[10, 64, 2, 0, 3, 0, 0, 0]);
        let attributes: Vec<_> = Attributes::new(&out[24..]).map(Result::unwrap).collect();
        assert_eq!(attributes.len(), 3);
        assert_eq!(attributes[0].ty, IFA_LOCAL);
        assert_eq!(attributes[0].value, &V6.octets()[..]);
        assert_eq!(attributes[1].ty, IFA_ADDRESS);
        assert_eq!(attributes[2].ty, IFA_FLAGS);
        assert_eq!(attributes[2].u32().unwrap(), IFA_F_NODAD);
    }

    #[test]
    fn peer_goes_into_ifa_address() {
        let mut out = Vec::new();
        let spec = AddressSpec {
            index: 3,
            local: Ipv4Addr::new(10, 0, 0, 1).into(),
            peer: Some(Ipv4Addr::new(10, 0, 0, 2).into()),
            prefix_len: 32,
        };
        encode_new_address(&mut out, 1, &spec);
        let attributes: Vec<_> = Attributes::new(&out[24..]).map(Result::unwrap).collect();
        assert_eq!(
            (attributes[0].ty, attributes[0].value),
            (IFA_LOCAL, &[10, 0, 0, 1][..])
        );
        assert_eq!(
            (attributes[1].ty, attributes[1].value),
            (IFA_ADDRESS, &[10, 0, 0, 2][..])
        );
    }

    #[test]
    fn delete_request_names_the_address_and_its_peer() {
        let mut out = Vec::new();
        let spec = AddressSpec {
            index: 9,
            local: Ipv4Addr::new(192, 0, 2, 1).into(),
            peer: Some(Ipv4Addr::new(192, 0, 2, 2).into()),
            prefix_len: 32,
        };
        encode_del_address(&mut out, 5, &spec);
        assert_eq!(out.len(), 40);
        assert_eq!(u16::from_ne_bytes([out[4], out[5]]), RTM_DELADDR);
        assert_eq!(u16::from_ne_bytes([out[6], out[7]]), 0x0005); // REQUEST | ACK
        assert_eq!(&out[16..24], &[2, 32, 0, 0, 9, 0, 0, 0]);
        assert_eq!(&out[24..32], &[8, 0, 2, 0, 192, 0, 2, 1]); // IFA_LOCAL
        assert_eq!(&out[32..], &[8, 0, 1, 0, 192, 0, 2, 2]); // IFA_ADDRESS: the peer
    }

    #[test]
    fn dump_request_is_a_bare_ifaddrmsg_with_dump_flags() {
        let mut out = Vec::new();
        crate::netlink::wire::encode_dump::<IfAddrMsg>(&mut out, 11, RTM_GETADDR);
        assert_eq!(out.len(), 24);
        assert_eq!(u16::from_ne_bytes([out[4], out[5]]), RTM_GETADDR);
        assert_eq!(u16::from_ne_bytes([out[6], out[7]]), 0x0301); // REQUEST | ROOT | MATCH
        assert_eq!(&out[16..], &[0; 8]);
    }

    /// An `RTM_NEWADDR` as the kernel sends it for `10.9.0.1/24` on index 4 (as in a dump reply, seq 3),
    /// with `IFA_LABEL` and `IFA_CACHEINFO` that the parser skips.
    #[rustfmt::skip]
    fn ipv4_reply() -> Vec<u8> {
        [
            &[80, 0, 0, 0][..], &20u16.to_ne_bytes(), &2u16.to_ne_bytes(), &3u32.to_ne_bytes(), &[0; 4],
            &[2, 24, 0x80, 0], &4u32.to_ne_bytes(),
            &[8, 0, 1, 0, 10, 9, 0, 1],                  // IFA_ADDRESS
            &[8, 0, 2, 0, 10, 9, 0, 1],                  // IFA_LOCAL
            &[9, 0, 3, 0], b"tun0\0", &[0, 0, 0],        // IFA_LABEL
            &[8, 0, 8, 0], &0x80u32.to_ne_bytes(),       // IFA_FLAGS: PERMANENT
            &[20, 0, 6, 0], &[0xff; 16],                 // IFA_CACHEINFO
        ]
        .concat()
    }

    fn only_address(buf: &[u8]) -> AddressMessage {
        let messages: Vec<_> = Messages::new(buf).collect();
        match messages[..] {
            [Ok(Message::NewAddress(a) | Message::DelAddress(a))] => a,
            ref other => panic!("not one address message: {other:?}"),
        }
    }

    #[test]
    fn ipv4_reply_gives_local_address_prefix_and_index() {
        let buf = ipv4_reply();
        let address = only_address(&buf);
        assert_eq!(address.seq, 3);
        assert_eq!(address.index, 4);
        assert_eq!(address.prefix_len, 24);
        assert_eq!(
            address.own_address(),
            Some(Ipv4Addr::new(10, 9, 0, 1).into())
        );
        assert_eq!(address.peer(), None);
        assert_eq!(address.flags, 0x80);
        assert!(!address.is_tentative());
    }

    #[test]
    fn ipv6_reply_without_ifa_local_takes_ifa_address() {
        #[rustfmt::skip]
        let buf: Vec<u8> = [
            &[52, 0, 0, 0][..], &20u16.to_ne_bytes(), &0u16.to_ne_bytes(), &0u32.to_ne_bytes(), &[0; 4],
            &[10, 64, 0x40, 0], &4u32.to_ne_bytes(),
            &[20, 0, 1, 0], &V6.octets(),                // IFA_ADDRESS
            &[8, 0, 8, 0], &0x40u32.to_ne_bytes(),       // IFA_FLAGS: TENTATIVE
        ]
        .concat();
        let address = only_address(&buf);
        assert_eq!(address.own_address(), Some(V6.into()));
        assert_eq!(address.peer(), None);
        assert!(address.is_tentative());
    }

    #[test]
    fn reply_with_differing_local_and_address_has_a_peer() {
        let mut buf = ipv4_reply();
        buf[31] = 2; // IFA_ADDRESS 10.9.0.2
        let address = only_address(&buf);
        assert_eq!(
            address.own_address(),
            Some(Ipv4Addr::new(10, 9, 0, 1).into())
        );
        assert_eq!(address.peer(), Some(Ipv4Addr::new(10, 9, 0, 2).into()));
    }

    #[test]
    fn ipv4_address_attribute_of_wrong_size_is_an_error() {
        let mut buf = ipv4_reply();
        buf[24] = 7; // IFA_ADDRESS claims 3 value bytes
        assert_eq!(
            Messages::new(&buf).next(),
            Some(Err(MalformedMessage::BadAttributeValue {
                ty: IFA_ADDRESS,
                len: 3,
                expected: 4
            }))
        );
    }

    #[test]
    fn address_message_shorter_than_ifaddrmsg_is_an_error() {
        let buf: Vec<u8> = [
            &[20, 0, 0, 0][..],
            &20u16.to_ne_bytes(),
            &[0; 10],
            &[2, 24, 0, 0],
        ]
        .concat();
        assert_eq!(
            Messages::new(&buf).next(),
            Some(Err(MalformedMessage::PayloadTooShort {
                ty: RTM_NEWADDR,
                len: 4,
                needed: 8
            }))
        );
    }

    #[test]
    fn captured_ipv4_address_is_local_with_its_prefix_and_no_peer() {
        let address = only_address(&crate::netlink::captures::address_ipv4());
        assert_eq!((address.seq, address.index), (5, 2));
        assert_eq!(
            address.own_address(),
            Some(Ipv4Addr::new(10, 9, 0, 1).into())
        );
        assert_eq!(address.prefix_len, 24);
        assert_eq!(address.peer(), None);
        assert!(!address.is_tentative());
    }

    #[test]
    fn captured_ipv6_nodad_address_has_only_ifa_address_and_is_not_tentative() {
        let address = only_address(&crate::netlink::captures::address_ipv6());
        assert_eq!(address.local, None);
        assert_eq!(
            address.own_address(),
            Some("fd00::1".parse::<Ipv6Addr>().unwrap().into())
        );
        assert_eq!(address.prefix_len, 64);
        assert_eq!(address.flags & IFA_F_NODAD, IFA_F_NODAD);
        assert!(!address.is_tentative());
    }

    #[test]
    fn every_prefix_of_an_address_reply_parses_without_panic() {
        let buf = ipv4_reply();
        for end in 0..=buf.len() {
            assert!(Messages::new(&buf[..end]).take(100).count() <= 1);
        }
    }
}
