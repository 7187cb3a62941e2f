//! Network configuration of a [`Tun`]: index, MTU, link state (up, running), queue length, GSO limits,
//! addresses and routes, in the network namespace the device lives in now (also after it was moved).
//!
//! Link settings use the SIOC* ioctls on the device's control socket, checked against the device's namespace
//! on every call. GSO limits, addresses and routes go over rtnetlink, each request acknowledged by the kernel and its
//! error returned; every call opens its own netlink socket in the device's current namespace (found with
//! TUNGETDEVNETNS): configuration is rare, and a socket made for the call can never be left behind in a
//! namespace the device has since left. Bad input is refused with [`Error::InvalidAddress`] or
//! [`Error::InvalidMtu`] before any system call.

use std::net::IpAddr;

use tun_offload::Layer;
use tun_sys::IfFlags;
use tun_sys::netlink::addr::AddressSpec;
use tun_sys::netlink::route::{RT_TABLE_MAIN, RouteSpec};
use tun_sys::netlink::{GsoLimits, RouteSocket};

use crate::device::{Tun, in_netns};
use crate::error::{Error, Result};

/// One address of a device, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceAddress {
    /// The device's own address.
    pub addr: IpAddr,
    /// The prefix length (of the peer's network when there is a peer).
    pub prefix_len: u8,
    /// The other end of a point-to-point link, when the address was added with one.
    pub peer: Option<IpAddr>,
}

/// One route of the main table that leaves through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceRoute {
    /// The destination network address.
    pub dest: IpAddr,
    /// The destination prefix length (0: a default route).
    pub prefix_len: u8,
    /// The route's metric (lower wins), when the kernel reports one.
    pub metric: Option<u32>,
}

/// The configuration a [`Builder`](crate::Builder) applies once the device exists: link state first (IPv4
/// routes need the device up), then addresses, then routes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub(crate) up: Option<bool>,
    pub(crate) addresses: Vec<DeviceAddress>,
    pub(crate) routes: Vec<DeviceRoute>,
}

impl Plan {
    /// Refuses what can never be applied, before any system call.
    pub(crate) fn check(&self) -> Result<()> {
        for address in &self.addresses {
            check_address(address)?;
        }
        for route in &self.routes {
            check_route(route.dest, route.prefix_len)?;
        }
        Ok(())
    }

    /// Applies the plan to `tun`. The first failure is returned, the rest is not attempted, and what was
    /// applied before it is undone (best effort), so that a failed build leaves an existing device as it
    /// found it: an address or route it had already, refused as `EEXIST`, stays.
    pub(crate) fn apply(&self, tun: &Tun) -> Result<()> {
        let mut done = Applied::default();
        let result = self.apply_recording(tun, &mut done);
        if result.is_err() {
            done.undo(tun);
        }
        result
    }

    fn apply_recording(&self, tun: &Tun, done: &mut Applied) -> Result<()> {
        if let Some(up) = self.up {
            let was_up = tun.is_up()?;
            if was_up != up {
                tun.set_up(up)?;
                done.was_up = Some(was_up);
            }
        }
        if self.addresses.is_empty() && self.routes.is_empty() {
            return Ok(());
        }
        let netlink = tun.netlink()?;
        for address in &self.addresses {
            tun.add_address_with(&netlink, address)?;
            done.addresses.push(*address);
        }
        for route in &self.routes {
            netlink.add_route(route)?;
            done.routes.push(*route);
        }
        Ok(())
    }
}

/// What [`Plan::apply`] changed so far, to be undone when a later step fails.
#[derive(Debug, Default)]
struct Applied {
    /// The link state before the plan changed it.
    was_up: Option<bool>,
    addresses: Vec<DeviceAddress>,
    routes: Vec<DeviceRoute>,
}

impl Applied {
    /// Reverts the changes, newest first. Errors are ignored: the build's own error is the one reported, and
    /// a step that cannot be undone (the device deleted meanwhile) has nothing left to undo.
    fn undo(self, tun: &Tun) {
        if let Ok(netlink) = tun.netlink() {
            for route in self.routes.iter().rev() {
                let _ = netlink.remove_route(route);
            }
            for address in self.addresses.iter().rev() {
                let _ = netlink.remove_address(address);
            }
        }
        if let Some(was_up) = self.was_up {
            let _ = tun.set_up(was_up);
        }
    }
}

/// Link settings, addresses and routes.
impl Tun {
    /// The interface index.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Io`] when the kernel cannot answer
    /// (`SIOCGIFINDEX`; `ENODEV` once the device is deleted).
    pub fn index(&self) -> Result<u32> {
        self.with_ctl("SIOCGIFINDEX", tun_sys::iface::index)
    }

    /// The interface's MTU.
    ///
    /// # Errors
    ///
    /// As [`index`](Self::index) (`SIOCGIFMTU`).
    pub fn mtu(&self) -> Result<u32> {
        self.with_ctl("SIOCGIFMTU", tun_sys::iface::mtu)
    }

    /// Sets the interface's MTU: 68 to 65535, on a TAP device to 65521 (IPv6 needs 1280 or more on the
    /// link).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidMtu`] outside that range, before any system call; [`Error::Closed`] after
    /// [`close`](Self::close); [`Error::Io`] when the kernel refuses (`SIOCSIFMTU`).
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        check_mtu(mtu, self.layer)?;
        self.with_ctl("SIOCSIFMTU", |sock, name| {
            tun_sys::iface::set_mtu(sock, name, mtu)
        })
    }

    /// Brings the interface administratively up (`true`) or down (`false`), like `ip link set dev X up`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Io`] when the kernel refuses
    /// (`SIOCGIFFLAGS`/`SIOCSIFFLAGS`; `EPERM` without CAP_NET_ADMIN in the device's namespace).
    pub fn set_up(&self, up: bool) -> Result<()> {
        let flags = self.with_ctl("SIOCGIFFLAGS", tun_sys::iface::flags)?;
        let wanted = if up {
            flags | IfFlags::UP
        } else {
            flags.difference(IfFlags::UP)
        };
        self.with_ctl("SIOCSIFFLAGS", |sock, name| {
            tun_sys::iface::set_flags(sock, name, wanted)
        })
    }

    /// Adds `addr/prefix_len` to the device, like `ip addr add`. The kernel adds the route to the prefix
    /// (none for /32 and /128). An IPv6 address skips duplicate address detection: a socket can bind to it as
    /// soon as this returns.
    ///
    /// An address the device has already is an [`Error::Io`] whose
    /// [`raw_os_error`](Error::raw_os_error) is `EEXIST`; a prefix longer than 32 (IPv4) or 128 (IPv6), a
    /// multicast or the unspecified address is [`Error::InvalidAddress`], before any system call.
    ///
    /// ```no_run
    /// use std::net::{Ipv4Addr, Ipv6Addr};
    ///
    /// let tun = tun::Builder::new().name("tun%d").up(true).build()?;
    /// tun.add_address(Ipv4Addr::new(10, 8, 0, 1).into(), 24)?;
    /// tun.add_address("fd00:8::1".parse::<Ipv6Addr>().unwrap().into(), 64)?;
    /// assert!(tun.addresses()?.len() >= 2); // with an IPv6 link-local address on most systems
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn add_address(&self, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let address = DeviceAddress {
            addr,
            prefix_len,
            peer: None,
        };
        check_address(&address)?;
        self.add_address_with(&self.netlink()?, &address)
    }

    /// Adds `addr` with the point-to-point peer `peer/prefix_len`, like `ip addr add ADDR peer PEER/LEN`: the
    /// kernel routes the peer's network (just the peer with /32 or /128) through the device. Refused like
    /// [`add_address`](Self::add_address), and when the two addresses are of different families.
    pub fn add_peer_address(&self, addr: IpAddr, peer: IpAddr, prefix_len: u8) -> Result<()> {
        let address = DeviceAddress {
            addr,
            prefix_len,
            peer: Some(peer),
        };
        check_address(&address)?;
        self.add_address_with(&self.netlink()?, &address)
    }

    /// Removes `addr/prefix_len` from the device, like `ip addr del`. An address the device does not have
    /// (or has with another prefix length) is an [`Error::Io`] (`EADDRNOTAVAIL`).
    pub fn remove_address(&self, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let mut address = DeviceAddress {
            addr,
            prefix_len,
            peer: None,
        };
        check_address(&address)?;
        let netlink = self.netlink()?;
        // The kernel wants an address with a peer named with its peer: look it up.
        address.peer = netlink
            .addresses()?
            .into_iter()
            .find(|a| a.addr == addr && a.prefix_len == prefix_len)
            .and_then(|a| a.peer);
        netlink.remove_address(&address)
    }

    /// The device's IPv4 and IPv6 addresses with their prefix lengths and point-to-point peers, in the
    /// kernel's order (IPv6 link-local addresses the kernel made itself included).
    pub fn addresses(&self) -> Result<Vec<DeviceAddress>> {
        self.netlink()?.addresses()
    }

    /// Routes `dest/prefix_len` through the device in the main table, like `ip route add DEST/LEN dev NAME`
    /// (`0.0.0.0/0` or `::/0` is a default route). IPv4 routes need the device up (`ENETDOWN` otherwise);
    /// an existing route is `EEXIST`. A destination with bits set past its prefix (`10.0.0.1/24`), a prefix
    /// longer than the address or a destination wholly within multicast space is
    /// [`Error::InvalidAddress`], before any system call.
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    ///
    /// let tun = tun::Builder::new().name("tun%d").up(true).build()?;
    /// tun.add_route(Ipv4Addr::new(10, 20, 0, 0).into(), 16)?;
    /// assert!(tun.routes()?.iter().any(|r| r.dest == Ipv4Addr::new(10, 20, 0, 0) && r.prefix_len == 16));
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn add_route(&self, dest: IpAddr, prefix_len: u8) -> Result<()> {
        self.change_route(Change::Add, dest, prefix_len, None)
    }

    /// Like [`add_route`](Self::add_route) with a metric (`ip route add ... metric N`): of two routes to the
    /// same prefix the one with the lower metric is used.
    pub fn add_route_with_metric(&self, dest: IpAddr, prefix_len: u8, metric: u32) -> Result<()> {
        self.change_route(Change::Add, dest, prefix_len, Some(metric))
    }

    /// Removes the route to `dest/prefix_len` through the device from the main table, whatever its metric
    /// (the first one the kernel finds when there are several). No such route is an [`Error::Io`]
    /// (`ESRCH`).
    pub fn remove_route(&self, dest: IpAddr, prefix_len: u8) -> Result<()> {
        self.change_route(Change::Remove, dest, prefix_len, None)
    }

    /// Removes the route to `dest/prefix_len` with exactly this `metric`.
    pub fn remove_route_with_metric(
        &self,
        dest: IpAddr,
        prefix_len: u8,
        metric: u32,
    ) -> Result<()> {
        self.change_route(Change::Remove, dest, prefix_len, Some(metric))
    }

    /// Checks the route before any system call, then adds or removes it in the main table.
    fn change_route(
        &self,
        change: Change,
        dest: IpAddr,
        prefix_len: u8,
        metric: Option<u32>,
    ) -> Result<()> {
        check_route(dest, prefix_len)?;
        let route = DeviceRoute {
            dest,
            prefix_len,
            metric,
        };
        let netlink = self.netlink()?;
        match change {
            Change::Add => netlink.add_route(&route),
            Change::Remove => netlink.remove_route(&route),
        }
    }

    /// The routes of the main table that leave through the device, IPv4 and IPv6, with their metrics: those
    /// added here, by others, and the kernel's own for the device's address prefixes.
    pub fn routes(&self) -> Result<Vec<DeviceRoute>> {
        let netlink = self.netlink()?;
        let found = netlink
            .socket
            .routes()
            .map_err(|e| Error::io("RTM_GETROUTE", netlink.name, e))?;
        Ok(found
            .iter()
            .filter(|r| r.table == RT_TABLE_MAIN && r.oif == Some(netlink.index))
            .filter_map(|r| {
                Some(DeviceRoute {
                    dest: r.destination()?,
                    prefix_len: r.dst_len,
                    metric: r.priority,
                })
            })
            .collect())
    }

    /// Whether the device is administratively up (`IFF_UP`), as [`set_up`](Self::set_up) leaves it.
    pub fn is_up(&self) -> Result<bool> {
        let flags = self.with_ctl("SIOCGIFFLAGS", tun_sys::iface::flags)?;
        Ok(flags.contains(IfFlags::UP))
    }

    /// Whether the device is running (`IFF_RUNNING`): up, with a queue attached. This is the state link
    /// events report ([`Event::Running`](crate::Event::Running), `NotRunning`).
    pub fn is_running(&self) -> Result<bool> {
        let flags = self.with_ctl("SIOCGIFFLAGS", tun_sys::iface::flags)?;
        Ok(flags.contains(IfFlags::RUNNING))
    }

    /// The transmit queue length: packets the kernel queues for the reader before it drops (500 for a new
    /// TUN device).
    pub fn tx_queue_len(&self) -> Result<u32> {
        self.with_ctl("SIOCGIFTXQLEN", tun_sys::iface::tx_queue_len)
    }

    /// Sets the transmit queue length, like `ip link set NAME txqueuelen N`: a longer queue absorbs longer
    /// bursts while the reader is busy, at the cost of latency.
    pub fn set_tx_queue_len(&self, len: u32) -> Result<()> {
        self.with_ctl("SIOCSIFTXQLEN", |sock, name| {
            tun_sys::iface::set_tx_queue_len(sock, name, len)
        })
    }

    /// How large a super-packet the kernel hands this device to send: at most
    /// [`max_segments`](GsoLimits::max_segments) segments and [`max_size`](GsoLimits::max_size) bytes
    /// (`ip -d link`'s `gso_max_segs` and `gso_max_size`; 65535 and 65536 for a new device). With offloads
    /// on, a read returns at most that many packets of one super-packet.
    pub fn gso_limits(&self) -> Result<GsoLimits> {
        let netlink = self.netlink()?;
        netlink
            .socket
            .gso_limits(netlink.index)
            .map_err(|e| Error::io("RTM_GETLINK", netlink.name, e))
    }

    /// Limits the super-packets the kernel hands this device to `segments` segments, like `ip link set dev
    /// NAME gso_max_segs N`. TCP sizes its super-packets to the route's device (a connection that exists
    /// follows at its next route check). A VPN that sends the datagrams of one super-packet in one UDP GSO
    /// send (64 KiB at most) sets it to as many datagrams as fit there, so that no super-packet needs two.
    ///
    /// ```no_run
    /// let tun = tun::Builder::new().name("wg%d").mtu(1420).offload(true).build()?;
    /// // 1420 bytes of packet + 32 of WireGuard's header and tag per datagram, 65507 bytes per UDP send.
    /// tun.set_gso_max_segments(65507 / (1420 + 32))?;
    /// assert_eq!(tun.gso_limits()?.max_segments, 45);
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0, before any system call; [`Error::Io`] (`RTM_NEWLINK`) when the
    /// kernel refuses (`EINVAL` past 65535).
    pub fn set_gso_max_segments(&self, segments: u32) -> Result<()> {
        if segments == 0 {
            return Err(Error::InvalidArgument("a GSO limit of 0 segments"));
        }
        self.set_gso_limits(Some(segments), None)
    }

    /// Limits the super-packets the kernel hands this device to `bytes` bytes (headers included), like
    /// `ip link set dev NAME gso_max_size N`; see [`set_gso_max_segments`](Self::set_gso_max_segments).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for 0, before any system call; [`Error::Io`] (`RTM_NEWLINK`) when the
    /// kernel refuses (`EINVAL` past 65536 for TUN and TAP devices).
    pub fn set_gso_max_size(&self, bytes: u32) -> Result<()> {
        if bytes == 0 {
            return Err(Error::InvalidArgument("a GSO limit of 0 bytes"));
        }
        self.set_gso_limits(None, Some(bytes))
    }

    fn set_gso_limits(&self, segments: Option<u32>, bytes: Option<u32>) -> Result<()> {
        let netlink = self.netlink()?;
        netlink
            .socket
            .set_gso_limits(netlink.index, segments, bytes)
            .map_err(|e| Error::io("RTM_NEWLINK", netlink.name, e))
    }

    /// Adds `address` through `netlink`. The kernel's bare `EINVAL` for an IPv6 address on a device whose MTU
    /// is below IPv6's minimum becomes [`Error::Ipv6MtuTooSmall`], which says so.
    fn add_address_with(&self, netlink: &Netlink, address: &DeviceAddress) -> Result<()> {
        match netlink.add_address(address) {
            Err(Error::Io { source, device, .. })
                if address.addr.is_ipv6() && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                match self.mtu() {
                    Ok(mtu) if mtu < IPV6_MIN_MTU => Err(Error::Ipv6MtuTooSmall {
                        device,
                        mtu,
                        source,
                    }),
                    _ => Err(Error::io("RTM_NEWADDR", device, source)),
                }
            }
            result => result,
        }
    }

    /// A netlink socket in the device's current namespace, with the device's index and name there.
    fn netlink(&self) -> Result<Netlink> {
        let here = self.locate()?;
        let (index, name) = (here.index()?, here.name);
        let socket = in_netns(here.netns.as_ref(), || RouteSocket::open(0))
            .map_err(|e| Error::io("netlink socket", name, e))?;
        Ok(Netlink {
            socket,
            index,
            name,
        })
    }
}

/// A netlink socket in the namespace the device lives in, and the device's index and name there.
struct Netlink {
    socket: RouteSocket,
    index: u32,
    name: tun_sys::IfName,
}

impl Netlink {
    fn address_spec(&self, address: &DeviceAddress) -> AddressSpec {
        AddressSpec {
            index: self.index,
            local: address.addr,
            peer: address.peer,
            prefix_len: address.prefix_len,
        }
    }

    fn route_spec(&self, route: &DeviceRoute) -> RouteSpec {
        RouteSpec {
            index: self.index,
            dest: route.dest,
            prefix_len: route.prefix_len,
            metric: route.metric,
        }
    }

    fn add_address(&self, address: &DeviceAddress) -> Result<()> {
        self.socket
            .add_address(&self.address_spec(address))
            .map_err(|e| Error::io("RTM_NEWADDR", self.name, e))
    }

    fn remove_address(&self, address: &DeviceAddress) -> Result<()> {
        self.socket
            .remove_address(&self.address_spec(address))
            .map_err(|e| Error::io("RTM_DELADDR", self.name, e))
    }

    fn addresses(&self) -> Result<Vec<DeviceAddress>> {
        let found = self
            .socket
            .addresses(self.index)
            .map_err(|e| Error::io("RTM_GETADDR", self.name, e))?;
        Ok(found
            .iter()
            .filter_map(|a| {
                Some(DeviceAddress {
                    addr: a.own_address()?,
                    prefix_len: a.prefix_len,
                    peer: a.peer(),
                })
            })
            .collect())
    }

    fn add_route(&self, route: &DeviceRoute) -> Result<()> {
        self.socket
            .add_route(&self.route_spec(route))
            .map_err(|e| Error::io("RTM_NEWROUTE", self.name, e))
    }

    fn remove_route(&self, route: &DeviceRoute) -> Result<()> {
        self.socket
            .remove_route(&self.route_spec(route))
            .map_err(|e| Error::io("RTM_DELROUTE", self.name, e))
    }
}

/// The MTUs a TUN device takes (the kernel's bounds: ETH_MIN_MTU to 65535 less the link header).
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// The largest MTU of a TAP device: its Ethernet header counts against the kernel's 65535.
const TAP_MAX_MTU: u32 = 65535 - tun_offload::wire::ETHERNET_HEADER_LEN as u32;

/// [`Error::InvalidMtu`] for an MTU no device of `layer` takes, so that it is refused before any system call.
pub(crate) fn check_mtu(mtu: u32, layer: Layer) -> Result<()> {
    let fits = match layer {
        Layer::L2 => mtu <= TAP_MAX_MTU,
        _ => true,
    };
    if MTU_RANGE.contains(&mtu) && fits {
        Ok(())
    } else {
        Err(Error::InvalidMtu { mtu })
    }
}

/// The least MTU a link must have for IPv6 (RFC 8200): the kernel disables IPv6 on a device below it.
const IPV6_MIN_MTU: u32 = 1280;

/// Whether a route is added or removed.
#[derive(Debug, Clone, Copy)]
enum Change {
    Add,
    Remove,
}

fn invalid(addr: IpAddr, prefix_len: u8, reason: &'static str) -> Error {
    Error::InvalidAddress {
        addr,
        prefix_len,
        reason,
    }
}

/// The bits of `addr` as a 128-bit number and the address's width (32 or 128).
fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn check_prefix(addr: IpAddr, prefix_len: u8) -> Result<()> {
    match addr {
        IpAddr::V4(_) if prefix_len > 32 => Err(invalid(
            addr,
            prefix_len,
            "an IPv4 prefix is at most 32 bits long",
        )),
        IpAddr::V6(_) if prefix_len > 128 => Err(invalid(
            addr,
            prefix_len,
            "an IPv6 prefix is at most 128 bits long",
        )),
        _ => Ok(()),
    }
}

/// An interface address: a prefix that fits, not multicast, not unspecified, a peer of the same family.
fn check_address(address: &DeviceAddress) -> Result<()> {
    let DeviceAddress {
        addr,
        prefix_len,
        peer,
    } = *address;
    check_prefix(addr, prefix_len)?;
    for one in std::iter::once(addr).chain(peer) {
        if one.is_unspecified() {
            return Err(invalid(
                one,
                prefix_len,
                "the unspecified address cannot be an interface address",
            ));
        }
        if one.is_multicast() {
            return Err(invalid(
                one,
                prefix_len,
                "a multicast address cannot be an interface address",
            ));
        }
    }
    if peer.is_some_and(|peer| peer.is_ipv4() != addr.is_ipv4()) {
        return Err(invalid(
            addr,
            prefix_len,
            "the peer address is of the other IP version",
        ));
    }
    Ok(())
}

/// A route destination: a prefix that fits, no host bits set past it, not wholly multicast. An unspecified
/// destination is fine: `0.0.0.0/0` is the default route and `0.0.0.0/1` half of the address space.
fn check_route(dest: IpAddr, prefix_len: u8) -> Result<()> {
    check_prefix(dest, prefix_len)?;
    let (value, width) = bits(dest);
    let host_bits = u128::MAX
        .checked_shr(u32::from(prefix_len) + 128 - u32::from(width))
        .unwrap_or(0);
    if value & host_bits != 0 {
        return Err(invalid(
            dest,
            prefix_len,
            "the destination has host bits set past its prefix",
        ));
    }
    // 224.0.0.0/4 and ff00::/8: a prefix at least that long that starts there is multicast only.
    let multicast_prefix = if dest.is_ipv4() { 4 } else { 8 };
    if dest.is_multicast() && prefix_len >= multicast_prefix {
        return Err(invalid(
            dest,
            prefix_len,
            "a multicast destination cannot be routed through a TUN device",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        Ipv4Addr::new(a, b, c, d).into()
    }

    fn v6(text: &str) -> IpAddr {
        text.parse::<Ipv6Addr>().unwrap().into()
    }

    fn address(addr: IpAddr, prefix_len: u8) -> DeviceAddress {
        DeviceAddress {
            addr,
            prefix_len,
            peer: None,
        }
    }

    fn reason(result: Result<()>) -> &'static str {
        match result {
            Err(Error::InvalidAddress { reason, .. }) => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn prefixes_up_to_the_address_width_are_accepted_and_longer_ones_refused() {
        assert!(check_address(&address(v4(10, 0, 0, 1), 32)).is_ok());
        assert!(check_address(&address(v6("fd00::1"), 128)).is_ok());
        assert!(reason(check_address(&address(v4(10, 0, 0, 1), 33))).contains("32 bits"));
        assert!(reason(check_address(&address(v6("fd00::1"), 129))).contains("128 bits"));
        assert!(reason(check_route(v4(10, 0, 0, 0), 33)).contains("32 bits"));
    }

    #[test]
    fn multicast_and_unspecified_interface_addresses_are_refused() {
        assert!(reason(check_address(&address(v4(224, 0, 0, 1), 24))).contains("multicast"));
        assert!(reason(check_address(&address(v6("ff02::1"), 64))).contains("multicast"));
        assert!(reason(check_address(&address(v4(0, 0, 0, 0), 8))).contains("unspecified"));
        assert!(reason(check_address(&address(v6("::"), 64))).contains("unspecified"));
    }

    #[test]
    fn peer_must_be_unicast_and_of_the_same_version() {
        let mut with_peer = address(v4(10, 0, 0, 1), 32);
        with_peer.peer = Some(v4(10, 0, 0, 2));
        assert!(check_address(&with_peer).is_ok());
        with_peer.peer = Some(v6("fd00::2"));
        assert!(reason(check_address(&with_peer)).contains("other IP version"));
        with_peer.peer = Some(v4(239, 1, 1, 1));
        assert!(reason(check_address(&with_peer)).contains("multicast"));
    }

    #[test]
    fn route_with_host_bits_past_its_prefix_is_refused() {
        assert!(reason(check_route(v4(10, 1, 2, 3), 24)).contains("host bits"));
        assert!(reason(check_route(v6("fd00::1"), 64)).contains("host bits"));
        assert!(reason(check_route(v4(0, 0, 0, 1), 0)).contains("host bits"));
        assert!(check_route(v4(10, 1, 2, 0), 24).is_ok());
        assert!(check_route(v4(10, 1, 2, 3), 32).is_ok());
        assert!(check_route(v6("fd00:1::"), 32).is_ok());
        assert!(check_route(v6("fd00::1"), 128).is_ok());
    }

    #[test]
    fn default_and_half_space_routes_are_accepted() {
        assert!(check_route(v4(0, 0, 0, 0), 0).is_ok());
        assert!(check_route(v4(0, 0, 0, 0), 1).is_ok());
        assert!(check_route(v4(128, 0, 0, 0), 1).is_ok());
        assert!(check_route(v6("::"), 0).is_ok());
        assert!(check_route(v6("8000::"), 1).is_ok());
    }

    #[test]
    fn multicast_route_destinations_are_refused() {
        assert!(reason(check_route(v4(224, 0, 0, 0), 4)).contains("multicast"));
        assert!(reason(check_route(v4(239, 1, 2, 0), 24)).contains("multicast"));
        assert!(reason(check_route(v6("ff00::"), 8)).contains("multicast"));
    }

    #[test]
    fn plan_check_refuses_its_first_bad_entry() {
        let plan = Plan {
            up: Some(true),
            addresses: vec![address(v4(10, 0, 0, 1), 24)],
            routes: vec![DeviceRoute {
                dest: v4(10, 9, 0, 1),
                prefix_len: 24,
                metric: None,
            }],
        };
        assert!(reason(plan.check()).contains("host bits"));
    }
}
