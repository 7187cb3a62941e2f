//! [`Tun`]: one queue of a TUN device, its configuration and its lifetime (close and drop).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tun_sys::{EventFd, IfFlags, IfName, Offloads};

use crate::error::{Error, Result};
use crate::read::Reader;
use crate::write::Writer;

/// A TUN device (one queue of it), ready for packet I/O.
///
/// `Tun` is `Send + Sync`: share it (`Arc<Tun>` or scoped threads) so one thread reads while another writes;
/// reads and writes each take their own lock. A read blocks until a packet arrives or the device is closed.
/// [`close`](Self::close) from any thread wakes a blocked reader, which then gets [`Error::Closed`], as does
/// every later call.
#[derive(Debug)]
pub struct Tun {
    /// `None` only after [`IntoRawFd::into_raw_fd`] took it, which consumes the `Tun`.
    fd: Option<OwnedFd>,
    /// The name at creation, for error messages (the kernel's current name comes from TUNGETIFF).
    pub(crate) label: IfName,
    /// Datagram socket in the device's namespace for the SIOC* ioctls (replaced when the device moves).
    ctl: Mutex<OwnedFd>,
    /// Whether each packet is preceded by a virtio-net header (IFF_VNET_HDR).
    pub(crate) vnet_hdr: bool,
    /// What TUNSETOFFLOAD accepted (empty without offloads).
    pub(crate) offloads: Offloads,
    /// Runtime switches: coalesce on write at all / also UDP.
    pub(crate) gro: AtomicBool,
    pub(crate) udp_gro: AtomicBool,
    /// The link monitor (`None` when unmonitored); stopped by `close()`.
    monitor: Option<tun_events::Monitor>,
    pub(crate) closed: AtomicBool,
    /// Signalled (and left signalled) by `close()`: wakes every blocked wait.
    pub(crate) cancel: EventFd,
    pub(crate) reader: Mutex<Reader>,
    pub(crate) writer: Mutex<Writer>,
}

/// What [`Tun::setup`] needs besides the fd; filled by the builder or from an existing fd.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) name: IfName,
    pub(crate) offload: bool,
    pub(crate) mtu: Option<u32>,
    pub(crate) owner: Option<libc::uid_t>,
    pub(crate) group: Option<libc::gid_t>,
    pub(crate) monitor: bool,
}

impl Tun {
    /// A new device with default settings and the given name (or template such as `tun%d`).
    pub fn new(name: &str) -> Result<Tun> {
        crate::Builder::new().name(name).build()
    }

    /// Configures a freshly attached TUN fd. On error the fd is dropped, which removes a non-persistent device;
    /// persistence is the builder's last step, after addresses and routes, for the same reason.
    pub(crate) fn setup(fd: OwnedFd, setup: Setup) -> Result<Tun> {
        let name = setup.name;
        let dev = fd.as_fd();
        if let Some(uid) = setup.owner {
            tun_sys::tun::set_owner(dev, uid).map_err(|e| Error::io("TUNSETOWNER", name, e))?;
        }
        if let Some(gid) = setup.group {
            tun_sys::tun::set_group(dev, gid).map_err(|e| Error::io("TUNSETGROUP", name, e))?;
        }
        let offloads = if setup.offload {
            // The header size is device-wide: a persistent device may have been left with another one.
            tun_sys::tun::set_vnet_hdr_size(dev, tun_offload::VirtioNetHdr::LEN)
                .map_err(|e| Error::io("TUNSETVNETHDRSZ", name, e))?;
            crate::offload::negotiate(dev).map_err(|e| Error::io("TUNSETOFFLOAD", name, e))?
        } else {
            // The offload mask is device-wide and outlives fds: clear what an earlier user may have left.
            tun_sys::tun::set_offload(dev, Offloads::empty())
                .map_err(|e| Error::io("TUNSETOFFLOAD", name, e))?;
            Offloads::empty()
        };
        let ctl = control_socket_for(dev).map_err(|e| Error::io("socket", name, e))?;
        if let Some(mtu) = setup.mtu {
            tun_sys::iface::set_mtu(ctl.as_fd(), name, mtu)
                .map_err(|e| Error::io("SIOCSIFMTU", name, e))?;
        }
        let monitor = if setup.monitor {
            Some(tun_events::Monitor::spawn(dev)?)
        } else {
            None
        };
        let cancel = EventFd::new().map_err(|e| Error::io("eventfd", name, e))?;
        Ok(Tun {
            fd: Some(fd),
            label: name,
            ctl: Mutex::new(ctl),
            vnet_hdr: setup.offload,
            offloads,
            gro: AtomicBool::new(true),
            udp_gro: AtomicBool::new(true),
            monitor,
            closed: AtomicBool::new(false),
            cancel,
            reader: Mutex::new(Reader::new(setup.offload)),
            writer: Mutex::new(Writer::new(setup.offload)),
        })
    }

    /// The TUN fd. Present for the whole life of a `Tun`: only `into_raw_fd`, which consumes it, takes it.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            Some(fd) => fd.as_fd(),
            None => unreachable!("the fd is only taken by into_raw_fd, which consumes the Tun"),
        }
    }

    /// The eventfd `close()` signals (and leaves signalled).
    #[cfg(feature = "tokio")]
    pub(crate) fn cancel_fd(&self) -> BorrowedFd<'_> {
        self.cancel.as_fd()
    }

    /// `Err(Error::Closed)` once [`close`](Self::close) has begun.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The interface's current name, as the kernel reports it (TUNGETIFF).
    pub fn name(&self) -> Result<String> {
        Ok(self.current_name()?.to_string_lossy())
    }

    pub(crate) fn current_name(&self) -> Result<IfName> {
        self.check_open()?;
        let (name, _) =
            tun_sys::tun::get_iff(self.fd()).map_err(|e| Error::io("TUNGETIFF", self.label, e))?;
        Ok(name)
    }

    /// The interface index.
    pub fn index(&self) -> Result<u32> {
        self.with_ctl("SIOCGIFINDEX", tun_sys::iface::index)
    }

    /// The interface's MTU.
    pub fn mtu(&self) -> Result<u32> {
        self.with_ctl("SIOCGIFMTU", tun_sys::iface::mtu)
    }

    /// Sets the interface's MTU. Values the kernel refuses (below 68 or above 65535 for TUN) are an
    /// [`Error::Io`] with `EINVAL`.
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        self.with_ctl("SIOCSIFMTU", |sock, name| {
            tun_sys::iface::set_mtu(sock, name, mtu)
        })
    }

    /// Brings the interface administratively up (`true`) or down (`false`), like `ip link set dev X up`.
    pub fn set_up(&self, up: bool) -> Result<()> {
        let flags = self.with_ctl("SIOCGIFFLAGS", tun_sys::iface::flags)?;
        let wanted = if up {
            flags | IfFlags::UP
        } else {
            flags.without(IfFlags::UP)
        };
        self.with_ctl("SIOCSIFFLAGS", |sock, name| {
            tun_sys::iface::set_flags(sock, name, wanted)
        })
    }

    /// Runs the interface ioctl `op` on the device's current name. When the device has been moved to another
    /// network namespace since the control socket was made there (`ENODEV`), makes one in the new namespace
    /// and tries once more.
    pub(crate) fn with_ctl<T>(
        &self,
        op: &'static str,
        call: impl Fn(BorrowedFd<'_>, IfName) -> io::Result<T>,
    ) -> Result<T> {
        let name = self.current_name()?;
        let mut ctl = self.ctl.lock();
        match call(ctl.as_fd(), name) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                *ctl = control_socket_for(self.fd()).map_err(|e| Error::io("socket", name, e))?;
                call(ctl.as_fd(), name).map_err(|e| Error::io(op, name, e))
            }
            result => result.map_err(|e| Error::io(op, name, e)),
        }
    }

    /// The most packets one [`read_packets`](Self::read_packets) can return and the batch size
    /// [`write_packets`](Self::write_packets) works best with: 128 with offloads, 1 without.
    pub fn batch_size(&self) -> usize {
        if self.offloads.is_empty() {
            1
        } else {
            crate::offload::BATCH_SIZE
        }
    }

    /// The offloads the kernel accepted (empty without offloads). With [`Offloads::USO4`] the kernel also hands
    /// over UDP super-packets, and writes may coalesce UDP.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Whether packets carry a virtio-net header on the fd (the device was opened with offloads asked for):
    /// [`write_packets`](Self::write_packets) then needs `offset >= 10`.
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Turns coalescing on write (GRO, TCP and UDP) on or off at run time; on by default with offloads. Off,
    /// every packet is written on its own. Some kernels refuse certain GSO writes (6.6.x with a short last
    /// segment): this is the way out.
    pub fn set_gro(&self, on: bool) {
        self.gro.store(on, Ordering::Relaxed);
    }

    /// Turns coalescing of UDP datagrams on write on or off at run time, leaving TCP coalescing as it is. UDP is
    /// only coalesced when the kernel accepted USO (see [`offloads`](Self::offloads)).
    pub fn set_udp_gro(&self, on: bool) {
        self.udp_gro.store(on, Ordering::Relaxed);
    }

    /// Whether the device was built with link monitoring.
    pub fn is_monitored(&self) -> bool {
        self.monitor.is_some()
    }

    /// A receiver of link events: [`Event::Up`](tun_events::Event::Up), `Down` and `MtuUpdate`, reported
    /// only when they change. The monitor never waits for readers: unread events are folded (at most
    /// [`tun_events::MAX_PENDING`] wait) and the newest state is kept. The receiver disconnects when the device
    /// is closed; for an unmonitored device it is disconnected from the start.
    pub fn events(&self) -> tun_events::Events {
        self.monitor
            .as_ref()
            .map_or_else(tun_events::Events::closed, tun_events::Monitor::events)
    }

    /// The link monitor's error since the last read, if any, as [`Error::Monitor`]: the reads return it.
    pub(crate) fn check_monitor(&self) -> Result<()> {
        let error = self
            .monitor
            .as_ref()
            .and_then(tun_events::Monitor::take_error);
        error.map_or(Ok(()), |e| Err(Error::Monitor(e)))
    }

    /// True once [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the device: wakes any thread blocked in a read or write (it gets [`Error::Closed`]), waits for it
    /// to leave, and releases the queue, which removes a non-persistent interface once its last queue is gone.
    /// Idempotent; every later call on this `Tun` gets [`Error::Closed`].
    ///
    /// The descriptor number stays allocated (pointing at `/dev/null`) until the `Tun` is dropped, so fds
    /// handed out by [`AsFd`] never dangle. The kernel removes the interface once nothing holds the queue any
    /// more: a child process being forked by another thread at that moment holds it until it executes its
    /// program (every fd here is close-on-exec), so reusing the name at once may briefly see
    /// [`Error::DeviceBusy`].
    pub fn close(&self) -> Result<()> {
        let Some(woken) = self.begin_close() else {
            return Ok(());
        };
        // Wait until no read or write is inside a system call on the fd, then release the queue.
        let _reader = self.reader.lock();
        let _writer = self.writer.lock();
        let released = tun_sys::io::retire(self.fd())
            // Out of descriptors for /dev/null: park the number on the control socket instead.
            .or_else(|_| tun_sys::io::replace(self.fd(), self.ctl.lock().as_fd()))
            .map_err(|e| Error::io("close", self.label, e));
        woken.and(released)
    }

    /// The part of closing that does not touch the fd, shared by [`close`](Self::close) and `into_raw_fd`:
    /// marks the device closed, wakes blocked waits and stops background work tied to the device. `None` when
    /// an earlier call already did; otherwise whether waking worked.
    fn begin_close(&self) -> Option<Result<()>> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return None;
        }
        // The eventfd stays signalled, so every later wait returns at once.
        let woken = self
            .cancel
            .signal()
            .map_err(|e| Error::io("eventfd write", self.label, e));
        // Wakes and joins the monitor thread, which also drops its duplicate of the fd.
        if let Some(monitor) = &self.monitor {
            monitor.stop();
        }
        Some(woken)
    }
}

/// Turns a TUN fd's namespace into a control socket there, so the SIOC* ioctls find the device whatever
/// namespace the calling thread is in later.
fn control_socket_for(dev: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    in_device_netns(dev, tun_sys::iface::control_socket)
}

/// Runs `make` in the network namespace the device of `dev` lives in now: directly when that is the calling
/// thread's, else on a helper thread that entered it (the caller's namespace never changes). What `make`
/// creates (a socket) stays in that namespace.
pub(crate) fn in_device_netns<T: Send>(
    dev: BorrowedFd<'_>,
    make: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    use tun_sys::netns;
    // TUNGETDEVNETNS needs CAP_NET_ADMIN over the device's namespace; without it (or on old kernels) the
    // device is where the fd was opened, which is the caller's namespace in the common case.
    let Ok(ns) = tun_sys::tun::get_dev_netns(dev) else {
        return make();
    };
    let here = netns::current()?;
    if netns::same(ns.as_fd(), here.as_fd())? {
        make()
    } else {
        netns::run_in(&ns, make)?
    }
}

impl Drop for Tun {
    fn drop(&mut self) {
        if self.fd.is_some() {
            // Nothing can report a failure from drop; the fd itself is closed by OwnedFd either way.
            let _ = self.close();
        }
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().as_raw_fd()
    }
}

impl IntoRawFd for Tun {
    /// Gives up the TUN fd without closing it; the `Tun`'s other resources are released.
    fn into_raw_fd(mut self) -> RawFd {
        // Waking can only fail if the eventfd is broken, and no thread can be waiting on a Tun owned by value.
        let _ = self.begin_close();
        match self.fd.take() {
            Some(fd) => fd.into_raw_fd(),
            None => unreachable!("the fd is only taken here, and this consumes the Tun"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tun_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tun>();
    }
}
