//! [`Builder`]: the settings of a new device, checked before any system call.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

use tun_offload::Layer;
use tun_sys::{IfName, TunFlags};

use crate::config::{DeviceAddress, DeviceRoute, Plan};
use crate::device::{Setup, Tun, in_device_netns};
use crate::error::{Error, Result};

/// Settings for creating (or attaching to) a TUN device, or a TAP device with [`layer`](Builder::layer).
///
/// ```no_run
/// let tun = tun::Builder::new().name("tun%d").mtu(1420).offload(true).build()?;
/// println!("{} is up to {} packets per batch", tun.name(), tun.batch_size());
/// # Ok::<(), tun::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    name: Option<String>,
    mtu: Option<u32>,
    /// `None`: L3 for a new device; whatever the fd is for [`build_from_fd`](Self::build_from_fd).
    layer: Option<Layer>,
    mac: Option<[u8; 6]>,
    offload: bool,
    multi_queue: bool,
    exclusive: bool,
    persist: Option<bool>,
    owner: Option<libc::uid_t>,
    group: Option<libc::gid_t>,
    monitor: bool,
    /// Link state, addresses and routes applied once the device exists.
    config: Plan,
}

impl Builder {
    /// Default settings: a kernel-chosen name (`tunN`), the kernel's MTU, no offloads, one queue, not
    /// persistent, link monitoring on.
    pub fn new() -> Self {
        Self {
            name: None,
            mtu: None,
            layer: None,
            mac: None,
            offload: false,
            multi_queue: false,
            exclusive: false,
            persist: None,
            owner: None,
            group: None,
            monitor: true,
            config: Plan::default(),
        }
    }

    /// The interface name, or a kernel template such as `tun%d` (the kernel picks the number). At most 15
    /// bytes, not `.` or `..`, no `/`, `:`, NUL or white space as the kernel counts it (also 0x0B and 0xA0,
    /// so no `à`), and a template has one `%`, followed by `d`: anything else fails
    /// [`build`](Self::build) with [`Error::InvalidName`] before any system call.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The MTU to set once the device exists: 68 to 65535, on a TAP device to 65521 (IPv6 needs 1280 or
    /// more); anything else fails [`build`](Self::build) with [`Error::InvalidMtu`] before any system call.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// What the device carries: IP packets ([`Layer::L3`], a TUN device, the default) or Ethernet frames
    /// ([`Layer::L2`], a TAP device). On L2 every packet the reads, writes, [`PacketBatch`](crate::PacketBatch)
    /// and the io traits carry is a whole Ethernet frame (VLAN tags pass through untouched), and offloads
    /// split and coalesce frames as they do IP packets.
    ///
    /// A build that attaches to an existing device of the other layer, or a
    /// [`build_from_fd`](Self::build_from_fd) with an fd of the other layer, fails with
    /// [`Error::SettingsMismatch`] (setting `"layer"`, the values saying whether each is L2). Unset, a new
    /// device is L3 and an fd is taken as it is.
    ///
    /// ```no_run
    /// use tun::{Builder, Layer};
    ///
    /// let tap = Builder::new().name("tap%d").layer(Layer::L2).mac_address([0x02, 0, 0, 0, 0, 1]).build()?;
    /// assert_eq!(tap.layer(), Layer::L2);
    /// assert_eq!(tap.mac_address()?, [0x02, 0, 0, 0, 0, 1]);
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn layer(mut self, layer: Layer) -> Self {
        self.layer = Some(layer);
        self
    }

    /// The Ethernet address to give an L2 device once it exists (the kernel picks a random one otherwise).
    /// On an L3 device [`build`](Self::build) fails with [`Error::InvalidArgument`] before any system call.
    pub fn mac_address(mut self, mac: [u8; 6]) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Turns the kernel's TUN offloads on (virtio-net header, checksum offload, TSO and, where the kernel has
    /// it, USO): reads may then return up to [`Tun::batch_size`] packets split from one super-packet, and
    /// writes coalesce packets into super-packets.
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// Opens the device with `IFF_MULTI_QUEUE`, so that [`Tun::open_queue`] can add queues to it (the way to
    /// get more). A build with the name of an existing multi-queue device attaches a queue to it too, and is
    /// refused with [`Error::SettingsMismatch`] unless its [`offload`](Self::offload) setting is the device's.
    pub fn multi_queue(mut self, on: bool) -> Self {
        self.multi_queue = on;
        self
    }

    /// Fails with [`Error::DeviceExists`] when an interface of this name exists (`IFF_TUN_EXCL`), instead of
    /// attaching to it: the device is then surely a new one, with this builder's settings. Off by default.
    pub fn exclusive(mut self, on: bool) -> Self {
        self.exclusive = on;
        self
    }

    /// Keeps the interface after the last fd closes (`true`), or makes an existing persistent device
    /// non-persistent again (`false`). Unset: left as it is.
    pub fn persist(mut self, on: bool) -> Self {
        self.persist = Some(on);
        self
    }

    /// The user allowed to attach to the device later (set before persist, as the kernel wants).
    pub fn owner(mut self, uid: libc::uid_t) -> Self {
        self.owner = Some(uid);
        self
    }

    /// The group allowed to attach to the device later (set before persist).
    pub fn group(mut self, gid: libc::gid_t) -> Self {
        self.group = Some(gid);
        self
    }

    /// Whether to watch the link for running/not-running/MTU events (on by default).
    pub fn monitor(mut self, on: bool) -> Self {
        self.monitor = on;
        self
    }

    /// An address for the device (repeatable, IPv4 and IPv6), added as by [`Tun::add_address`] once the
    /// device exists: IPv6 ones are usable at once. Bad ones fail [`build`](Self::build) with
    /// [`Error::InvalidAddress`] before any system call.
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    ///
    /// let tun = tun::Builder::new()
    ///     .name("tun%d")
    ///     .address(Ipv4Addr::new(10, 8, 0, 1).into(), 24)
    ///     .address("fd00:8::1".parse::<std::net::Ipv6Addr>().unwrap().into(), 64)
    ///     .up(true)
    ///     .build()?;
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn address(mut self, addr: IpAddr, prefix_len: u8) -> Self {
        self.config.addresses.push(DeviceAddress {
            addr,
            prefix_len,
            peer: None,
        });
        self
    }

    /// An address with a point-to-point peer (repeatable), added as by [`Tun::add_peer_address`].
    pub fn peer_address(mut self, addr: IpAddr, peer: IpAddr, prefix_len: u8) -> Self {
        self.config.addresses.push(DeviceAddress {
            addr,
            prefix_len,
            peer: Some(peer),
        });
        self
    }

    /// A route through the device (repeatable), added as by [`Tun::add_route`] after the addresses. IPv4
    /// routes need the device [`up`](Self::up).
    pub fn route(mut self, dest: IpAddr, prefix_len: u8) -> Self {
        self.config.routes.push(DeviceRoute {
            dest,
            prefix_len,
            metric: None,
        });
        self
    }

    /// Brings the device up (`true`) or down once it exists, before addresses and routes are added. Unset:
    /// left as it is (a new device is down).
    pub fn up(mut self, on: bool) -> Self {
        self.config.up = Some(on);
        self
    }

    /// Creates the device (or attaches a queue to it if it exists with matching flags, unless
    /// [`exclusive`](Self::exclusive)) in the calling thread's network namespace, then applies the link
    /// state, addresses and routes. If any of that fails the build fails: a device it created is removed
    /// again, and an existing one loses the addresses and routes the build added and gets its link state,
    /// MTU and MAC address back (what it had before stays).
    ///
    /// # Errors
    ///
    /// Before any system call: [`Error::InvalidName`], [`Error::InvalidMtu`], [`Error::InvalidAddress`],
    /// [`Error::InvalidArgument`] (a MAC address for an L3 device). From the kernel: [`Error::DeviceBusy`]
    /// (the name is held by another fd, or is not a TUN or TAP device), [`Error::DeviceExists`] (with
    /// `exclusive(true)`), [`Error::SettingsMismatch`] (a device of that name has another layer, or other
    /// offload or multi-queue settings), [`Error::Io`] for a failed ioctl (opening `/dev/net/tun` without
    /// CAP_NET_ADMIN, say, or a refused MAC address), [`Error::Monitor`] when the link monitor cannot start.
    pub fn build(self) -> Result<Tun> {
        if let Some(mtu) = self.mtu {
            crate::config::check_mtu(mtu, self.layer.unwrap_or_default())?;
        }
        let name = match &self.name {
            None => IfName::empty(),
            Some(name) => IfName::new(name).map_err(|reason| Error::InvalidName {
                name: name.clone(),
                reason,
            })?,
        };
        self.config.check()?;
        let layer = self.layer.unwrap_or_default();
        self.check_mac(layer)?;
        let mut flags = TunFlags::empty();
        if layer == Layer::L2 {
            flags |= TunFlags::TAP;
        }
        if self.offload {
            flags |= TunFlags::VNET_HDR;
        }
        if self.multi_queue {
            flags |= TunFlags::MULTI_QUEUE;
        }
        if self.exclusive {
            flags |= TunFlags::TUN_EXCL;
        }
        let fd = tun_sys::tun::open_clone_device(true)
            .map_err(|e| Error::io("open", "/dev/net/tun", e))?;
        let name = tun_sys::tun::set_iff(fd.as_fd(), name, flags).map_err(|source| {
            let shown = self
                .name
                .clone()
                .unwrap_or_else(|| "(kernel-chosen)".into());
            match source.raw_os_error() {
                // IFF_TUN_EXCL: EBUSY means exactly "exists".
                Some(libc::EBUSY) if self.exclusive => Error::DeviceExists {
                    name: shown,
                    source,
                },
                Some(libc::EBUSY) => Error::DeviceBusy {
                    name: shown,
                    source,
                },
                // EINVAL for a name that exists: a device of the other layer or queue kind.
                Some(libc::EINVAL) if interface_exists(name) => {
                    match tun_sys::netlink::RouteSocket::open(0)
                        .and_then(|socket| socket.tun_link_info(name.bytes()))
                    {
                        Ok(Some(info)) if info.tun != (layer == Layer::L3) => {
                            Error::SettingsMismatch {
                                name: shown,
                                setting: "layer",
                                device: !info.tun,
                                asked: layer == Layer::L2,
                            }
                        }
                        Ok(Some(info)) if info.multi_queue != self.multi_queue => {
                            Error::SettingsMismatch {
                                name: shown,
                                setting: "multi_queue",
                                device: info.multi_queue,
                                asked: self.multi_queue,
                            }
                        }
                        _ => Error::DeviceBusy {
                            name: shown,
                            source,
                        },
                    }
                }
                _ => Error::io("TUNSETIFF", shown, source),
            }
        })?;
        // Attaching to a multi-queue device that has queues leaves its flags as they are, whatever this queue
        // asked for: what the kernel kept is the truth, and a queue that differs is refused before it changes
        // anything device-wide.
        let (_, kept) =
            tun_sys::tun::get_iff(fd.as_fd()).map_err(|e| Error::io("TUNGETIFF", name, e))?;
        let flags = flags.difference(TunFlags::TUN_EXCL);
        for (setting, bit) in [
            ("offload", TunFlags::VNET_HDR),
            ("multi_queue", TunFlags::MULTI_QUEUE),
        ] {
            if kept.contains(bit) != flags.contains(bit) {
                // The queue is attached by now: detach it, so that no packet of the device's is lost to it.
                crate::device::detach_before_release(fd.as_fd(), kept, true);
                return Err(Error::SettingsMismatch {
                    name: name.to_string_lossy(),
                    setting,
                    device: kept.contains(bit),
                    asked: flags.contains(bit),
                });
            }
        }
        Tun::setup(fd, kept, self.setup(name, layer, true), |tun| {
            self.finish(tun)
        })
    }

    /// [`Error::InvalidArgument`] for a MAC address asked of an L3 device, which has none.
    fn check_mac(&self, layer: Layer) -> Result<()> {
        if self.mac.is_some() && layer == Layer::L3 {
            return Err(Error::InvalidArgument(
                "a MAC address is for L2 (TAP) devices only",
            ));
        }
        Ok(())
    }

    /// Takes over `fd`, a `/dev/net/tun` fd on which TUNSETIFF was already done (for example passed in by a
    /// privileged parent), with this builder's [`monitor`](Self::monitor), [`mtu`](Self::mtu),
    /// [`persist`](Self::persist), [`owner`](Self::owner), [`group`](Self::group) and
    /// [`mac_address`](Self::mac_address) settings; the name, layer (TUN or TAP, from TUNGETIFF), offloads
    /// and multi-queue flag are the device's own. Offloads are negotiated if the device was opened with
    /// `IFF_VNET_HDR`, and explicitly turned off otherwise. The fd is switched to non-blocking mode.
    ///
    /// ```no_run
    /// # fn fd_from_parent() -> std::os::fd::OwnedFd { unimplemented!() }
    /// let tun = tun::Builder::new().monitor(false).build_from_fd(fd_from_parent())?;
    /// assert!(!tun.is_monitored());
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedDevice`] for a device with packet information (opened without `IFF_NO_PI`);
    /// [`Error::SettingsMismatch`] when [`layer`](Self::layer) was set and the device is of the other one;
    /// [`Error::InvalidArgument`] for a [`mac_address`](Self::mac_address) with an L3 device; [`Error::Io`]
    /// when an ioctl fails (TUNGETIFF on an fd that is not a TUN or TAP device).
    pub fn build_from_fd(self, fd: OwnedFd) -> Result<Tun> {
        self.config.check()?;
        let (name, flags) =
            tun_sys::tun::get_iff(fd.as_fd()).map_err(|e| Error::io("TUNGETIFF", "fd", e))?;
        // TUNGETIFF tells TUN from TAP, but its IFF_NO_PI bit means "no socket filter" (IFF_NOFILTER): only
        // rtnetlink tells whether packets carry packet information. Kernels without that (before 4.15) are
        // taken at their word.
        let info = in_device_netns(fd.as_fd(), || {
            tun_sys::netlink::RouteSocket::open(0)?.tun_link_info(name.bytes())
        })
        .ok()
        .flatten();
        let layer = if flags.contains(TunFlags::TAP) {
            Layer::L2
        } else {
            Layer::L3
        };
        let reason = if !flags.intersects(TunFlags::TUN | TunFlags::TAP) {
            Some("neither a TUN nor a TAP device")
        } else if info.is_some_and(|info| info.packet_info) {
            Some("a device with packet information (opened without IFF_NO_PI)")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::UnsupportedDevice {
                name: name.to_string_lossy(),
                reason,
            });
        }
        if let Some(asked) = self.layer
            && asked != layer
        {
            return Err(Error::SettingsMismatch {
                name: name.to_string_lossy(),
                setting: "layer",
                device: layer == Layer::L2,
                asked: asked == Layer::L2,
            });
        }
        self.check_mac(layer)?;
        if let Some(mtu) = self.mtu {
            crate::config::check_mtu(mtu, layer)?;
        }
        tun_sys::io::set_nonblocking(fd.as_fd(), true)
            .map_err(|e| Error::io("fcntl(O_NONBLOCK)", name, e))?;
        Tun::setup(fd, flags, self.setup(name, layer, false), |tun| {
            self.finish(tun)
        })
    }

    /// The settings [`Tun::setup`] applies once the device is attached (by this builder: `attached_here`).
    fn setup(&self, name: IfName, layer: Layer, attached_here: bool) -> Setup {
        Setup {
            name,
            layer,
            mac: self.mac,
            mtu: self.mtu,
            owner: self.owner,
            group: self.group,
            monitor: self.monitor,
            attached_here,
        }
    }

    /// Applies the link state, addresses and routes to the set-up `tun`, then persistence. On failure `tun`
    /// drops, which removes a device that is not persistent.
    fn finish(&self, tun: &Tun) -> Result<()> {
        self.config.apply(tun)?;
        // Last, so that a failure above leaves no persistent device behind.
        if let Some(persist) = self.persist {
            tun_sys::tun::set_persist(tun.fd(), persist)
                .map_err(|e| Error::io("TUNSETPERSIST", tun.label, e))?;
        }
        Ok(())
    }
}

/// The same as [`Builder::new`].
impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// True when an interface called `name` exists in the calling thread's namespace (a template never does).
fn interface_exists(name: IfName) -> bool {
    !name.bytes().is_empty()
        && !name.is_template()
        && tun_sys::iface::control_socket()
            .and_then(|sock| tun_sys::iface::index(sock.as_fd(), name))
            .is_ok()
}

/// Opening a [`Tun`] from a TUN fd made elsewhere (for example passed in by a privileged parent).
impl Tun {
    /// Takes over `fd`, a `/dev/net/tun` fd on which TUNSETIFF was already done, with link monitoring (the
    /// counterpart of wireguard-go's `CreateTUNFromFile`): the same as
    /// [`Builder::new().build_from_fd(fd)`](Builder::build_from_fd), where the other settings are (such as
    /// `monitor(false)`).
    ///
    /// # Errors
    ///
    /// As [`Builder::build_from_fd`]: [`Error::UnsupportedDevice`] for an fd with packet information. A TAP
    /// fd gives an L2 device ([`Tun::layer`]).
    pub fn from_fd(fd: OwnedFd) -> Result<Tun> {
        Builder::new().build_from_fd(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_byte_name_is_refused_before_any_syscall() {
        let err = Builder::new().name("abcdefghijklmnop").build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidName {
                    reason: tun_sys::NameError::TooLong(16),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn impossible_mtus_and_templates_are_refused_before_any_syscall() {
        for mtu in [0, 67, 65536, u32::MAX] {
            let err = Builder::new().mtu(mtu).build().unwrap_err();
            assert!(
                matches!(err, Error::InvalidMtu { mtu: m } if m == mtu),
                "{err:?}"
            );
        }
        for name in ["tun%d%d", "tun%"] {
            let err = Builder::new().name(name).build().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidName {
                        reason: tun_sys::NameError::BadTemplate,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn an_mtu_past_a_tap_devices_maximum_is_refused_before_any_syscall() {
        for mtu in [65522, 65535] {
            let err = Builder::new()
                .layer(Layer::L2)
                .mtu(mtu)
                .build()
                .unwrap_err();
            assert!(
                matches!(err, Error::InvalidMtu { mtu: m } if m == mtu),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_mac_address_for_an_l3_device_is_refused_before_any_syscall() {
        for builder in [Builder::new(), Builder::new().layer(Layer::L3)] {
            let err = builder.mac_address([2, 0, 0, 0, 0, 1]).build().unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        }
    }

    #[test]
    fn names_with_slash_or_nul_are_refused() {
        assert!(matches!(
            Builder::new().name("a/b").build(),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            Builder::new().name("a\0b").build(),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            Builder::new().name("").build(),
            Err(Error::InvalidName { .. })
        ));
    }
}
