//! [`Tun`]: one queue of a TUN device: its setup, its queues, its offload switches and events, and its lifetime
//! (close and drop). Configuration is in `config.rs`, packets in `read.rs` and `write.rs`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tun_offload::Layer;
use tun_sys::io::RetirableFd;
use tun_sys::{EventFd, IfName, Offloads, TunFlags};

use crate::error::{Error, Result};
use crate::queue_fds::QueueFds;
use crate::read::Reader;
use crate::write::Writer;

/// A TUN device (one queue of it), ready for packet I/O.
///
/// `Tun` is `Send + Sync`: share it (`Arc<Tun>` or scoped threads) so one thread reads while another writes;
/// reads and writes each take their own lock. A read blocks until a packet arrives or the device is closed.
/// [`close`](Self::close) from any thread wakes a blocked reader, which then gets [`Error::Closed`], as does
/// every later call.
///
/// A device built with [`Builder::multi_queue`](crate::Builder::multi_queue) can have more queues:
/// [`open_queue`](Self::open_queue) gives another `Tun` of the same device, and the kernel spreads the flows
/// over them by flow hash, so that each queue can be served by its own thread (and core).
///
/// ```no_run
/// use tun::Builder;
///
/// let tun = Builder::new().name("tun%d").offload(true).build()?;
/// tun.set_up(true)?;
/// let mut batch = tun::PacketBatch::for_device(&tun);
/// let n = batch.read_from(&tun)?;
/// println!("{}: {n} packet(s)", tun.name());
/// # Ok::<(), tun::Error>(())
/// ```
#[derive(Debug)]
pub struct Tun {
    /// The queue's fd, lent (weakly) to the device's [`QueueFds`] for its link monitor. `None` only after
    /// [`IntoRawFd::into_raw_fd`] took it, which consumes the `Tun`.
    fd: Option<Arc<RetirableFd>>,
    /// What this queue shares with the other queues of its device.
    device: Arc<Device>,
    /// Whether this library attached the queue itself (builder, [`open_queue`](Self::open_queue)) rather
    /// than being handed its fd: where the kernel cannot tell whether another descriptor shares the queue,
    /// only such a queue is detached on close.
    attached_here: bool,
    /// Held by [`open_queue`](Self::open_queue) while it attaches a queue through this fd: `close()` waits
    /// for it before releasing the fd.
    attaching: Mutex<()>,
    /// The name at creation, for error messages (copied from the device for the data path).
    pub(crate) label: IfName,
    /// IP packets or Ethernet frames (from the kernel's flags, copied from the device for the data path).
    pub(crate) layer: Layer,
    /// Whether each packet is preceded by a virtio-net header (IFF_VNET_HDR, as the kernel reports it).
    pub(crate) vnet_hdr: bool,
    /// What TUNSETOFFLOAD accepted (empty without offloads).
    pub(crate) offloads: Offloads,
    /// Runtime switches: coalesce on write at all / also UDP.
    pub(crate) gro: AtomicBool,
    pub(crate) udp_gro: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// Signalled (and left signalled) by `close()`: wakes every blocked wait.
    pub(crate) cancel: EventFd,
    pub(crate) reader: Mutex<Reader>,
    pub(crate) writer: Mutex<Writer>,
}

/// The part of a device its queues share: settings read back from the kernel, the control socket, the one
/// link monitor and the open queues.
#[derive(Debug)]
struct Device {
    /// The name at creation.
    label: IfName,
    /// The name last reported by the kernel, for [`Tun::name`] once no queue can ask.
    name: Mutex<IfName>,
    /// The flags TUNGETIFF reported once the device was set up: the truth about the virtio-net header and
    /// multi-queue, whatever a builder asked for.
    flags: TunFlags,
    /// TUN or TAP, from `flags`.
    layer: Layer,
    offloads: Offloads,
    /// Datagram socket for the SIOC* ioctls, in the namespace the device was last seen in.
    ctl: Mutex<Control>,
    /// The link monitor (`None` when unmonitored); stopped when the last queue closes. It holds no descriptor
    /// of the device: it asks [`queue_fds`](Self::queue_fds), so that all 256 queues the kernel allows are the
    /// user's, and closing a queue leaves nothing of it attached.
    monitor: Option<tun_events::Monitor>,
    /// The open queues' fds, through which the monitor follows the device.
    queue_fds: Arc<QueueFds>,
    /// Queues of this device not closed yet, a queue being opened included. Once it is 0 the monitor is
    /// stopped and no queue is added any more: counting and that decision are one step under the lock, so a
    /// queue opened while the last one closes either has a running monitor or is refused.
    open_queues: Mutex<usize>,
}

impl Device {
    /// Counts a queue about to be opened; [`Error::Closed`] once the device's last queue was closed.
    fn queue_opening(&self) -> Result<()> {
        let mut open = self.open_queues.lock();
        if *open == 0 {
            return Err(Error::Closed);
        }
        *open += 1;
        Ok(())
    }

    /// One queue fewer; stops the monitor when it was the last, as the device may go away now.
    fn queue_closed(&self) {
        let last = {
            let mut open = self.open_queues.lock();
            *open = open.saturating_sub(1);
            *open == 0
        };
        if last && let Some(monitor) = &self.monitor {
            // Wakes and joins the monitor thread.
            monitor.stop();
        }
    }
}

/// What [`Tun::setup`] needs besides the fd; filled by the builder or from an existing fd.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) name: IfName,
    /// What the kernel's flags say the device is.
    pub(crate) layer: Layer,
    /// The Ethernet address to set (L2 only; the builder checked).
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) mtu: Option<u32>,
    pub(crate) owner: Option<libc::uid_t>,
    pub(crate) group: Option<libc::gid_t>,
    pub(crate) monitor: bool,
    /// Whether the builder attached the queue itself (not [`build_from_fd`](crate::Builder::build_from_fd)).
    pub(crate) attached_here: bool,
}

impl Tun {
    /// Configures a freshly attached TUN fd whose kernel flags are `flags` (TUNGETIFF), then runs `finish`
    /// (the builder's addresses, routes, link state and persistence) on the new `Tun`. On error the fd is
    /// dropped (a multi-queue device's queue detached first, as [`close`](Self::close) does), which removes
    /// a non-persistent device; persistence is the builder's last step, after addresses and routes, for the
    /// same reason. An existing device gets back the MTU and MAC address it had.
    pub(crate) fn setup(
        fd: OwnedFd,
        flags: TunFlags,
        setup: Setup,
        finish: impl FnOnce(&Tun) -> Result<()>,
    ) -> Result<Tun> {
        let attached_here = setup.attached_here;
        let fd = Arc::new(RetirableFd::new(fd));
        // Listed before the monitor starts: it asks the queue where the device lives.
        let queue_fds = Arc::new(QueueFds::default());
        queue_fds.add(&fd);
        let (device, previous) = match Self::configure(fd.as_fd(), flags, setup, &queue_fds) {
            Ok(configured) => configured,
            Err(e) => {
                queue_fds.remove(&fd);
                detach_before_release(fd.as_fd(), flags, attached_here);
                return Err(e);
            }
        };
        let tun = Tun::queue(fd, device, attached_here, true, true)?;
        if let Err(e) = finish(&tun) {
            let _ = tun.with_ctl("restore", |sock, name| {
                previous.restore(sock, name);
                Ok(())
            });
            return Err(e);
        }
        Ok(tun)
    }

    /// The device-wide part of [`setup`](Self::setup): owner, group, offloads, MTU, MAC address and the
    /// link monitor, which follows the device through `queue_fds`. Also returns the MTU and MAC address the
    /// device had, for a build that fails later; a failure here puts them back itself.
    fn configure(
        dev: BorrowedFd<'_>,
        flags: TunFlags,
        setup: Setup,
        queue_fds: &Arc<QueueFds>,
    ) -> Result<(Arc<Device>, PreviousLink)> {
        let name = setup.name;
        let layer = setup.layer;
        if let Some(uid) = setup.owner {
            tun_sys::tun::set_owner(dev, uid).map_err(|e| Error::io("TUNSETOWNER", name, e))?;
        }
        if let Some(gid) = setup.group {
            tun_sys::tun::set_group(dev, gid).map_err(|e| Error::io("TUNSETGROUP", name, e))?;
        }
        // Both settings below are device-wide; a queue attaching to a device with the same flags sets them to
        // what they already are.
        let offloads = if flags.contains(TunFlags::VNET_HDR) {
            // A persistent device may have been left with another header size.
            tun_sys::tun::set_vnet_hdr_size(dev, tun_offload::VirtioNetHdr::LEN)
                .map_err(|e| Error::io("TUNSETVNETHDRSZ", name, e))?;
            crate::offload::negotiate(dev).map_err(|e| Error::io("TUNSETOFFLOAD", name, e))?
        } else {
            // The offload mask outlives fds: clear what an earlier user may have left, or the kernel hands
            // over super-packets with nothing to say where their segments end.
            tun_sys::tun::set_offload(dev, Offloads::empty())
                .map_err(|e| Error::io("TUNSETOFFLOAD", name, e))?;
            Offloads::empty()
        };
        let ctl = Control::in_netns_of(dev).map_err(|e| Error::io("socket", name, e))?;
        let mut previous = PreviousLink::default();
        let monitor = previous
            .set(ctl.socket.as_fd(), name, setup.mtu, setup.mac)
            .and_then(|()| {
                setup
                    .monitor
                    .then(|| tun_events::Monitor::spawn_with(Arc::clone(queue_fds)))
                    .transpose()
                    .map_err(Error::from)
            });
        let monitor = match monitor {
            Ok(monitor) => monitor,
            Err(e) => {
                previous.restore(ctl.socket.as_fd(), name);
                return Err(e);
            }
        };
        let device = Arc::new(Device {
            label: name,
            name: Mutex::new(name),
            flags,
            layer,
            offloads,
            ctl: Mutex::new(ctl),
            monitor,
            queue_fds: Arc::clone(queue_fds),
            open_queues: Mutex::new(1),
        });
        Ok((device, previous))
    }

    /// A `Tun` for one queue `fd` of `device`, counted among its open queues and listed in its
    /// [`QueueFds`] by the caller.
    fn queue(
        fd: Arc<RetirableFd>,
        device: Arc<Device>,
        attached_here: bool,
        gro: bool,
        udp_gro: bool,
    ) -> Result<Tun> {
        let name = device.label;
        let cancel = match EventFd::new() {
            Ok(cancel) => cancel,
            Err(e) => {
                device.queue_fds.remove(&fd);
                detach_before_release(fd.as_fd(), device.flags, attached_here);
                device.queue_closed();
                return Err(Error::io("eventfd", name, e));
            }
        };
        let vnet_hdr = device.flags.contains(TunFlags::VNET_HDR);
        Ok(Tun {
            fd: Some(fd),
            attached_here,
            attaching: Mutex::new(()),
            label: name,
            layer: device.layer,
            vnet_hdr,
            offloads: device.offloads,
            gro: AtomicBool::new(gro),
            udp_gro: AtomicBool::new(udp_gro),
            closed: AtomicBool::new(false),
            cancel,
            reader: Mutex::new(Reader::new(vnet_hdr, device.layer)),
            writer: Mutex::new(Writer::new(vnet_hdr)),
            device,
        })
    }

    /// Opens another queue of this device: a `Tun` with the same flags, offloads and batch size, and the GRO
    /// switches as they are now. It shares this device's link monitor (no thread of its own) and
    /// [`events`](Self::events); the device lives until its last queue is closed (unless persistent).
    ///
    /// The kernel steers each flow to one queue by its hash, so the queues of a device are served best by
    /// one thread each, on a host with a core for each.
    ///
    /// ```no_run
    /// let first = tun::Builder::new().name("mq%d").multi_queue(true).offload(true).build()?;
    /// let second = first.open_queue()?;
    /// assert_eq!(second.offloads(), first.offloads());
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotMultiQueue`] when the device was not built with
    /// [`multi_queue(true)`](crate::Builder::multi_queue); [`Error::Closed`] after [`close`](Self::close),
    /// also when `close` runs at the same time on another thread (then either the new queue is whole, its
    /// device's monitor running, or it is refused); [`Error::Io`] when the kernel refuses the new queue
    /// (TUNSETIFF, `E2BIG` at its limit of 256 queues).
    pub fn open_queue(&self) -> Result<Tun> {
        // close() waits for this before releasing the fd the new queue is attached through.
        let _attaching = self.attaching.lock();
        self.check_open()?;
        let device = &self.device;
        if !device.flags.contains(TunFlags::MULTI_QUEUE) {
            return Err(Error::NotMultiQueue {
                name: device.label.to_string_lossy(),
            });
        }
        // Counted before it exists, so that closing the device's other queues meanwhile cannot stop the monitor
        // it will share.
        device.queue_opening()?;
        let attached = self
            .current_name()
            .and_then(|name| attach_queue(self.fd(), name, device.flags));
        let fd = match attached {
            Ok(fd) => Arc::new(RetirableFd::new(fd)),
            Err(e) => {
                device.queue_closed();
                return Err(e);
            }
        };
        device.queue_fds.add(&fd);
        Tun::queue(fd, Arc::clone(device), true, self.gro(), self.udp_gro())
    }

    /// The TUN fd. Present for the whole life of a `Tun`: only `into_raw_fd`, which consumes it, takes it.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.shared_fd().as_fd()
    }

    /// The TUN fd as the device's [`QueueFds`] knows it.
    fn shared_fd(&self) -> &Arc<RetirableFd> {
        match &self.fd {
            Some(fd) => fd,
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

    /// The interface's name. While the queue is open it is asked of the kernel (TUNGETIFF), so that a rename
    /// (`ip link set dev X name Y`, possible while the link is down) shows; after [`close`](Self::close), or
    /// when the kernel cannot answer, it is the last name known, so it always answers.
    pub fn name(&self) -> String {
        self.current_name()
            .unwrap_or_else(|_| *self.device.name.lock())
            .to_string_lossy()
    }

    /// The name the kernel reports now (remembered for [`name`](Self::name) after close).
    pub(crate) fn current_name(&self) -> Result<IfName> {
        self.check_open()?;
        let (name, _) =
            tun_sys::tun::get_iff(self.fd()).map_err(|e| Error::io("TUNGETIFF", self.label, e))?;
        *self.device.name.lock() = name;
        Ok(name)
    }

    /// Runs the interface ioctl `op` on the device, wherever it lives now and whatever it is called there.
    pub(crate) fn with_ctl<T>(
        &self,
        op: &'static str,
        call: impl Fn(BorrowedFd<'_>, IfName) -> io::Result<T>,
    ) -> Result<T> {
        let here = self.locate()?;
        call(here.ctl.socket.as_fd(), here.name).map_err(|e| Error::io(op, here.name, e))
    }

    /// Where the device is now: a control socket in its current namespace (made anew when the device has
    /// moved since the last call) and its current name there. A name alone is not an identity: after a move,
    /// the namespace the device left may have another interface of that name, and the device may have been
    /// renamed to a name that namespace uses; asked in the device's own namespace, its name is its own.
    pub(crate) fn locate(&self) -> Result<Location<'_>> {
        let name = self.current_name()?;
        let netns = device_netns(self.fd());
        let mut ctl = self.device.ctl.lock();
        if let Some(ns) = &netns {
            let id =
                tun_sys::netns::id(ns.as_fd()).map_err(|e| Error::io("fstat (netns)", name, e))?;
            if ctl.netns != Some(id) {
                let socket = in_netns(Some(ns), tun_sys::iface::control_socket)
                    .map_err(|e| Error::io("socket", name, e))?;
                *ctl = Control {
                    socket,
                    netns: Some(id),
                };
            }
        }
        Ok(Location { ctl, name, netns })
    }

    /// What the device carries: IP packets ([`Layer::L3`], a TUN device) or Ethernet frames ([`Layer::L2`],
    /// a TAP device), as the kernel reported when the device was set up.
    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// The device's Ethernet (MAC) address.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] on an L3 device, which has none; [`Error::Closed`] after
    /// [`close`](Self::close); [`Error::Io`] when the kernel cannot answer (`SIOCGIFHWADDR`).
    pub fn mac_address(&self) -> Result<[u8; 6]> {
        self.check_l2()?;
        self.with_ctl("SIOCGIFHWADDR", tun_sys::iface::hw_address)
    }

    /// Sets the device's Ethernet (MAC) address; a TAP device takes it while up.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] on an L3 device; [`Error::Closed`] after [`close`](Self::close);
    /// [`Error::Io`] when the kernel refuses (`SIOCSIFHWADDR`: `EADDRNOTAVAIL` for a multicast or all-zero
    /// address).
    pub fn set_mac_address(&self, mac: [u8; 6]) -> Result<()> {
        self.check_l2()?;
        self.with_ctl("SIOCSIFHWADDR", |sock, name| {
            tun_sys::iface::set_hw_address(sock, name, mac)
        })
    }

    /// [`Error::InvalidArgument`] unless the device carries Ethernet frames.
    fn check_l2(&self) -> Result<()> {
        if self.layer == Layer::L2 {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "a MAC address is for L2 (TAP) devices only",
            ))
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

    /// Whether packets carry a virtio-net header on the fd (the device was opened with offloads asked for).
    /// The library adds and removes it: the packets read and written are plain, at any offset.
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

    /// Whether coalescing on write is on (see [`set_gro`](Self::set_gro)); it takes effect only with offloads.
    pub fn gro(&self) -> bool {
        self.gro.load(Ordering::Relaxed)
    }

    /// Whether UDP coalescing on write is on (see [`set_udp_gro`](Self::set_udp_gro)); it takes effect only
    /// with USO among the [`offloads`](Self::offloads) and [`gro`](Self::gro) on.
    pub fn udp_gro(&self) -> bool {
        self.udp_gro.load(Ordering::Relaxed)
    }

    /// Whether the device was built with link monitoring.
    pub fn is_monitored(&self) -> bool {
        self.device.monitor.is_some()
    }

    /// A receiver of link events: [`Event::Running`](tun_events::Event::Running), `Down` and `MtuUpdate`, reported
    /// only when they change. The monitor never waits for readers: unread events are folded (at most
    /// [`tun_events::MAX_PENDING`] wait) and the newest state is kept. The receiver disconnects when the device
    /// is closed, or when the monitor fails ([`Events::take_error`](tun_events::Events::take_error) says
    /// why; packet I/O goes on); for an unmonitored device it is disconnected from the start. All queues of a
    /// device share its monitor.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let tun = tun::Builder::new().name("tun%d").build()?;
    /// let events = tun.events();
    /// tun.set_up(true)?;
    /// match events.recv_timeout(Duration::from_secs(1)) {
    ///     Ok(tun::Event::Running) => println!("{} is up", tun.name()),
    ///     Ok(other) => println!("{other}"),
    ///     Err(e) => println!("no event: {e}"),
    /// }
    /// # Ok::<(), tun::Error>(())
    /// ```
    pub fn events(&self) -> tun_events::Events {
        self.device
            .monitor
            .as_ref()
            .map_or_else(tun_events::Events::closed, tun_events::Monitor::events)
    }

    /// True once [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the device: wakes any thread blocked in a read or write (it gets [`Error::Closed`]), waits for it
    /// to leave, and releases the queue, which removes a non-persistent interface once its last queue is gone.
    /// Idempotent; every later call on this `Tun` gets [`Error::Closed`]. The descriptor number stays
    /// allocated (pointing at `/dev/null`) until the `Tun` is dropped, so fds handed out by [`AsFd`] never
    /// dangle.
    ///
    /// A queue of a multi-queue device is detached first, so its flows go to the other queues at once even
    /// while a child being forked still holds the file; not when another descriptor of this process shares
    /// the open file (a `Tun` from [`from_fd`](Self::from_fd) of a duplicate), whose traffic detaching would
    /// stop. docs/ARCHITECTURE.md ("Queues and devices") has the details.
    ///
    /// ```no_run
    /// let tun = std::sync::Arc::new(tun::Builder::new().name("tun%d").build()?);
    /// let reader = std::thread::spawn({
    ///     let tun = tun.clone();
    ///     // Blocks until packets come, or until close() wakes it with Error::Closed.
    ///     move || while tun.recv(&mut [0u8; 65535]).is_ok() {}
    /// });
    /// tun.close()?;
    /// reader.join().unwrap();
    /// # Ok::<(), tun::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when waking blocked threads or releasing the queue failed; the `Tun` is closed all the
    /// same.
    pub fn close(&self) -> Result<()> {
        let Some(woken) = self.begin_close() else {
            return Ok(());
        };
        // Wait until no read, write or open_queue is inside a system call on the fd, then release the queue.
        let _reader = self.reader.lock();
        let _writer = self.writer.lock();
        let _attaching = self.attaching.lock();
        self.device.queue_fds.remove(self.shared_fd());
        detach_before_release(self.fd(), self.device.flags, self.attached_here);
        let released = tun_sys::io::retire(self.shared_fd())
            // Out of descriptors for /dev/null: park the number on the control socket instead.
            .or_else(|_| {
                tun_sys::io::replace(self.shared_fd(), self.device.ctl.lock().socket.as_fd())
            })
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
        self.device.queue_closed();
        Some(woken)
    }
}

/// The MTU and MAC address a build found on the device before it set its own: a build that fails after
/// setting them puts them back, so that an existing (persistent) device keeps what it had.
#[derive(Debug, Default)]
struct PreviousLink {
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
}

impl PreviousLink {
    /// Sets the device's MTU and MAC address (those given), remembering what they were.
    fn set(
        &mut self,
        ctl: BorrowedFd<'_>,
        name: IfName,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
    ) -> Result<()> {
        if let Some(mtu) = mtu {
            let old =
                tun_sys::iface::mtu(ctl, name).map_err(|e| Error::io("SIOCGIFMTU", name, e))?;
            tun_sys::iface::set_mtu(ctl, name, mtu)
                .map_err(|e| Error::io("SIOCSIFMTU", name, e))?;
            self.mtu = Some(old);
        }
        if let Some(mac) = mac {
            let old = tun_sys::iface::hw_address(ctl, name)
                .map_err(|e| Error::io("SIOCGIFHWADDR", name, e))?;
            tun_sys::iface::set_hw_address(ctl, name, mac)
                .map_err(|e| Error::io("SIOCSIFHWADDR", name, e))?;
            self.mac = Some(old);
        }
        Ok(())
    }

    /// Puts back what [`set`](Self::set) changed, newest first. Errors are ignored: the build's own error is
    /// the one reported, and a device deleted meanwhile has nothing to put back.
    fn restore(&self, ctl: BorrowedFd<'_>, name: IfName) {
        if let Some(mac) = self.mac {
            let _ = tun_sys::iface::set_hw_address(ctl, name, mac);
        }
        if let Some(mtu) = self.mtu {
            let _ = tun_sys::iface::set_mtu(ctl, name, mtu);
        }
    }
}

/// Runs `make` in the network namespace the device of `dev` lives in now: directly when that is the calling
/// thread's, else on a helper thread that entered it (the caller's namespace never changes). What `make`
/// creates (a socket) stays in that namespace.
pub(crate) fn in_device_netns<T: Send>(
    dev: BorrowedFd<'_>,
    make: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    in_netns(device_netns(dev).as_ref(), make)
}

/// The network namespace the device of `dev` lives in now (TUNGETDEVNETNS). `None` where the kernel will
/// not say: it needs CAP_NET_ADMIN over that namespace (and a 5.2 or later kernel). Then the device is taken
/// to be where it was set up, which is the caller's namespace in the common case, and a process without
/// that right cannot move it.
fn device_netns(dev: BorrowedFd<'_>) -> Option<OwnedFd> {
    tun_sys::tun::get_dev_netns(dev).ok()
}

/// Runs `make` in `ns` (`None`: the calling thread's namespace), on a helper thread when `ns` is another.
pub(crate) fn in_netns<T: Send>(
    ns: Option<&OwnedFd>,
    make: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    use tun_sys::netns;
    let Some(ns) = ns else {
        return make();
    };
    let here = netns::current()?;
    if netns::same(ns.as_fd(), here.as_fd())? {
        make()
    } else {
        netns::run_in(ns, make)?
    }
}

/// A control socket and the namespace it was made in.
#[derive(Debug)]
struct Control {
    socket: OwnedFd,
    /// `None` when the kernel did not say where the device lives (see [`device_netns`]).
    netns: Option<tun_sys::netns::NsId>,
}

impl Control {
    /// A control socket in the namespace the device of `dev` lives in now.
    fn in_netns_of(dev: BorrowedFd<'_>) -> io::Result<Control> {
        let ns = device_netns(dev);
        let netns = ns
            .as_ref()
            .map(|ns| tun_sys::netns::id(ns.as_fd()))
            .transpose()?;
        let socket = in_netns(ns.as_ref(), tun_sys::iface::control_socket)?;
        Ok(Control { socket, netns })
    }
}

/// The device as [`Tun::locate`] found it: a control socket in its namespace (locked for the caller), its
/// name there, and the namespace itself when the kernel told it.
#[derive(Debug)]
pub(crate) struct Location<'a> {
    ctl: parking_lot::MutexGuard<'a, Control>,
    pub(crate) name: IfName,
    pub(crate) netns: Option<OwnedFd>,
}

impl Location<'_> {
    /// The device's interface index in its namespace.
    pub(crate) fn index(&self) -> Result<u32> {
        tun_sys::iface::index(self.ctl.socket.as_fd(), self.name)
            .map_err(|e| Error::io("SIOCGIFINDEX", self.name, e))
    }
}

/// A new non-blocking fd attached to the device `dev` belongs to (called `name`), with `flags`. Refused with
/// [`Error::Io`] when the kernel's flags for the new queue are not `flags`.
fn attach_queue(dev: BorrowedFd<'_>, name: IfName, flags: TunFlags) -> Result<OwnedFd> {
    let fd = in_device_netns(dev, || {
        let fd = tun_sys::tun::open_clone_device(true)?;
        tun_sys::tun::set_iff(fd.as_fd(), name, flags)?;
        Ok(fd)
    })
    .map_err(|e| Error::io("TUNSETIFF (new queue)", name, e))?;
    Ok(fd)
}

/// Stops the kernel steering packets to `fd`, a queue of a multi-queue device (by `flags`), before the queue
/// is released. Releasing alone is not enough: the queue stays attached for as long as anything else holds
/// the file (a child process being forked by another thread holds every fd until it executes its program),
/// and the packets the kernel hashes to it meanwhile would be lost.
///
/// Detaching acts on the open file, which every duplicate of `fd` shares: so a queue that another descriptor
/// of this process still refers to (a `Tun` made from a duplicate, say) is left attached, as the program
/// still reads it. Where the kernel cannot compare open files, only a queue this library attached itself
/// (`attached_here`) is detached; one handed over by the program may have been duplicated first. Best
/// effort: the queue may have been detached already or the device deleted, and releasing it follows either
/// way.
pub(crate) fn detach_before_release(fd: BorrowedFd<'_>, flags: TunFlags, attached_here: bool) {
    if !flags.contains(TunFlags::MULTI_QUEUE) {
        return;
    }
    if detaches(tun_sys::io::shared_in_process(fd), attached_here) {
        let _ = tun_sys::tun::set_queue(fd, false);
    }
}

/// Whether a queue is detached before its release, from whether another descriptor of this process shares
/// its open file (`Err` when the kernel cannot tell) and whether this library attached it.
fn detaches(shared_in_process: io::Result<bool>, attached_here: bool) -> bool {
    shared_in_process.map_or(attached_here, |shared| !shared)
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
        let Some(fd) = self.fd.take() else {
            unreachable!("the fd is only taken here, and this consumes the Tun")
        };
        self.device.queue_fds.remove(&fd);
        match Arc::try_unwrap(fd) {
            Ok(fd) => fd.into_owned().into_raw_fd(),
            Err(_) => unreachable!(
                "the queue list lends the fd only under its lock, and lists it no more"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_detached_unless_this_process_still_holds_its_file_elsewhere() {
        assert!(detaches(Ok(false), false));
        assert!(!detaches(Ok(true), true));
        // Where the kernel cannot compare files, only a queue attached here is known to be held by no other.
        let refused = || io::Error::from_raw_os_error(libc::ENOSYS);
        assert!(detaches(Err(refused()), true));
        assert!(!detaches(Err(refused()), false));
    }

    #[test]
    fn tun_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tun>();
    }
}
