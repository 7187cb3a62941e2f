//! [`Builder`]: the settings of a new device, checked before any system call.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

use tun_sys::{IfName, TunFlags};

use crate::config::{DeviceAddress, DeviceRoute, Plan};
use crate::device::{Setup, Tun};
use crate::error::{Error, Result};

/// Settings for creating (or attaching to) a TUN device.
///
/// ```no_run
/// let tun = tun::Builder::new().name("tun%d").mtu(1420).offload(true).build()?;
/// println!("{} is up to {} packets per batch", tun.name()?, tun.batch_size());
/// # Ok::<(), tun::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    mtu: Option<u32>,
    offload: bool,
    multi_queue: bool,
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
            monitor: true,
            ..Self::default()
        }
    }

    /// The interface name, or a kernel template such as `tun%d` (the kernel picks the number). At most 15
    /// bytes, not `.` or `..`, no `/`, `:`, NUL or whitespace: anything else fails [`build`](Self::build)
    /// with [`Error::InvalidName`] before any system call.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The MTU to set once the device exists.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Turns the kernel's TUN offloads on (virtio-net header, checksum offload, TSO and, where the kernel has
    /// it, USO): reads may then return up to [`Tun::batch_size`] packets split from one super-packet, and
    /// writes coalesce packets into super-packets.
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// Opens the device with `IFF_MULTI_QUEUE`: further [`Tun`]s built with the same name and this flag are
    /// further queues of the same interface.
    pub fn multi_queue(mut self, on: bool) -> Self {
        self.multi_queue = on;
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

    /// Whether to watch the link for up/down/MTU events (on by default).
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

    /// Creates the device (or attaches to it if it exists with matching flags) in the calling thread's
    /// network namespace, then applies the link state, addresses and routes. If any of that fails the build
    /// fails, and a device it created is removed again.
    pub fn build(self) -> Result<Tun> {
        let name = match &self.name {
            None => IfName::empty(),
            Some(name) => IfName::new(name).map_err(|reason| Error::InvalidName {
                name: name.clone(),
                reason,
            })?,
        };
        self.config.check()?;
        let mut flags = TunFlags::empty();
        if self.offload {
            flags |= TunFlags::VNET_HDR;
        }
        if self.multi_queue {
            flags |= TunFlags::MULTI_QUEUE;
        }
        let fd = tun_sys::tun::open_clone_device(true)
            .map_err(|e| Error::io("open", "/dev/net/tun", e))?;
        let name = tun_sys::tun::set_iff(fd.as_fd(), name, flags).map_err(|source| {
            let shown = self
                .name
                .clone()
                .unwrap_or_else(|| "(kernel-chosen)".into());
            match source.raw_os_error() {
                Some(libc::EBUSY) => Error::DeviceBusy {
                    name: shown,
                    source,
                },
                // EINVAL for a name that exists: a TAP device, or a TUN device of the other queue kind.
                Some(libc::EINVAL) if interface_exists(name) => Error::DeviceBusy {
                    name: shown,
                    source,
                },
                _ => Error::io("TUNSETIFF", shown, source),
            }
        })?;
        let tun = Tun::setup(
            fd,
            Setup {
                name,
                offload: self.offload,
                mtu: self.mtu,
                owner: self.owner,
                group: self.group,
                monitor: self.monitor,
            },
        )?;
        // On failure `tun` drops, which removes a device that is not persistent.
        self.config.apply(&tun)?;
        // Last, so that a failure above leaves no persistent device behind.
        if let Some(persist) = self.persist {
            tun_sys::tun::set_persist(tun.fd(), persist)
                .map_err(|e| Error::io("TUNSETPERSIST", name, e))?;
        }
        Ok(tun)
    }

    /// Same as [`build`](Self::build).
    pub fn create(self) -> Result<Tun> {
        self.build()
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
    /// counterpart of wireguard-go's `CreateTUNFromFile`). Offloads are negotiated if the device was opened
    /// with `IFF_VNET_HDR`, and explicitly turned off otherwise. The fd is switched to non-blocking mode.
    pub fn from_fd(fd: OwnedFd) -> Result<Tun> {
        Self::from_fd_with(fd, true)
    }

    /// Like [`from_fd`](Self::from_fd) without link monitoring (wireguard-go's `CreateUnmonitoredTUNFromFD`).
    pub fn from_fd_unmonitored(fd: OwnedFd) -> Result<Tun> {
        Self::from_fd_with(fd, false)
    }

    fn from_fd_with(fd: OwnedFd, monitor: bool) -> Result<Tun> {
        let (name, flags) =
            tun_sys::tun::get_iff(fd.as_fd()).map_err(|e| Error::io("TUNGETIFF", "fd", e))?;
        tun_sys::io::set_nonblocking(fd.as_fd(), true)
            .map_err(|e| Error::io("fcntl(O_NONBLOCK)", name, e))?;
        let setup = Setup {
            name,
            offload: flags.contains(TunFlags::VNET_HDR),
            mtu: None,
            owner: None,
            group: None,
            monitor,
        };
        Tun::setup(fd, setup)
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
