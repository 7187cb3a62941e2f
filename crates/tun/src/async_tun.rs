//! [`AsyncTun`]: a [`Tun`] driven by tokio's reactor instead of blocking threads.
//!
//! The I/O itself stays the non-blocking calls every runtime can use ([`Tun::try_read_packets`],
//! [`Tun::try_write_packets`]); this module only waits for readiness between them. The TUN fd is never
//! registered with tokio's reactor: `close()` retires it in place (the number then refers to `/dev/null`),
//! which no registration may outlive. Instead each direction has an epoll instance of its own that holds the
//! TUN fd (for `EPOLLIN`, or `EPOLLOUT`) and the close eventfd, and that epoll fd is what the reactor waits
//! on ([`tun_sys::reactor::AsyncEpoll`]): it is readable when the device has a packet or room, has an error
//! condition (a deleted device reports only that), or is closed. Retiring the TUN fd drops it from the epolls
//! and changes nothing the reactor holds; and as the epolls hold no reference to the device's file, closing
//! still removes the device.

use std::os::fd::AsFd;

use tokio::io::unix::AsyncFdReadyGuard;
use tun_sys::epoll::Epoll;
use tun_sys::reactor::{AsyncEpoll, RegisterError};

use crate::device::Tun;
use crate::error::{DeviceName, Error, Result};
use crate::patience::Patience;
use crate::write::Progress;

/// A TUN device (one queue of it) for async code on tokio, with the same offload path as [`Tun`].
///
/// `AsyncTun` is `Send + Sync` and its futures are `Send`: one task may read while another writes (share it
/// with an `Arc`, or borrow it in both halves of a `join!`). It works on the current-thread and the
/// multi-thread runtime.
///
/// ```no_run
/// use tun::{AsyncTun, Builder, PacketBatch};
///
/// # async fn run() -> tun::Result<()> {
/// let tun: AsyncTun = Builder::new().name("tun%d").offload(true).build_async()?;
/// tun.get_ref().set_up(true)?;
/// let mut batch = PacketBatch::for_device(tun.get_ref());
/// loop {
///     let n = batch.read_from_async(&tun).await?;
///     println!("{n} packet(s), {} bytes", batch.bytes());
///     batch.write_to_async(&tun).await?; // echo them back, coalesced
/// }
/// # }
/// ```
///
/// # Cancellation
/// - A dropped [`read_packets`](Self::read_packets) or [`recv`](Self::recv) future loses no packet: packets
///   are only taken from the device inside the call that returns them, and the segments of a split
///   super-packet that were not handed out wait in the device for the next read.
/// - A dropped [`write_packets`](Self::write_packets) future has written either nothing or, when it was
///   waiting for room in the kernel's queue (rare: a TUN device's queue is unlimited unless lowered), the
///   writes of its batch before that point; the rest of that batch is not written. No packet is written
///   twice. A dropped [`send`](Self::send) future has written its packet or not at all.
///
/// # Closing
/// [`close`](Self::close) (or [`Tun::close`] through [`get_ref`](Self::get_ref)) from any task or thread wakes
/// every pending future, which returns [`Error::Closed`], as does every later call; a write that had written
/// part of its batch before it waited returns [`Error::Batch`] instead: what it wrote, the frame it tried
/// failed as `Closed`, the rest unwritten, as the blocking write reports it. A device deleted from
/// outside (`ip link del`) ends pending and later reads with the error the blocking calls get (`EBADFD`, see
/// [`Error::is_fatal`]).
#[derive(Debug)]
pub struct AsyncTun {
    tun: Tun,
    /// The epoll fd waited on for reads: the TUN fd for `EPOLLIN`, and the close eventfd.
    readable: AsyncEpoll,
    /// The epoll fd waited on for writes: the TUN fd for `EPOLLOUT`, and the close eventfd. Apart from
    /// `readable` so that each direction wakes for its own events only: the fd is nearly always writable, and
    /// a read waiting on `EPOLLOUT` too would wake at every change of the write space to find nothing.
    writable: AsyncEpoll,
}

impl AsyncTun {
    /// Makes `tun` wait on the tokio runtime this is called in: two epoll instances that hold its fd are
    /// registered with the runtime's reactor (see the module's notes), never the fd itself.
    ///
    /// # Errors
    /// [`Error::NoAsyncRuntime`] outside a tokio runtime, [`Error::AsyncIoDisabled`] in one built without
    /// its IO driver, [`Error::Closed`] for a closed `tun`, [`Error::Io`] when an epoll instance cannot be
    /// made or the reactor refuses it. The device is closed then (a non-persistent device goes away).
    pub fn new(tun: Tun) -> Result<AsyncTun> {
        let label = tun.label;
        Waits::register(label)?.attach(tun)
    }

    /// The device, for everything that does not wait: name, MTU, offloads, events, configuration.
    pub fn get_ref(&self) -> &Tun {
        &self.tun
    }

    /// Gives the device back (for blocking use, or another runtime); the epoll instances it was waited on with
    /// are unregistered from the reactor and closed.
    pub fn into_inner(self) -> Tun {
        self.tun
    }

    /// Closes the device: every pending and later call returns [`Error::Closed`]. See [`Tun::close`].
    ///
    /// # Errors
    /// Those of [`Tun::close`].
    pub fn close(&self) -> Result<()> {
        self.get_ref().close()
    }

    /// Reads packets into `bufs` as [`Tun::read_packets`] does (same arguments, same errors), waiting
    /// without blocking the thread until there are some or the device is closed.
    ///
    /// # Errors
    /// Those of [`Tun::read_packets`].
    pub async fn read_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> Result<usize> {
        self.get_ref().check_open()?;
        crate::read::check_read_args(bufs.len(), sizes.len())?;
        self.drive(&self.readable, Tun::has_pending_read, |tun| {
            tun.try_read_packets(bufs, sizes, offset)
        })
        .await
    }

    /// Writes a batch as [`Tun::write_packets`] does (same arguments, coalescing and errors), waiting without
    /// blocking the thread while the kernel's queue is full. See the type's notes on cancellation.
    ///
    /// # Errors
    /// Those of [`Tun::write_packets`].
    pub async fn write_packets<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        sizes: &[usize],
        offset: usize,
    ) -> Result<usize> {
        // How far the batch got lives in this future: when the queue fills half-way it waits and goes on
        // with the next frame (planning the unchanged packets again, with the coalescing settings the first
        // attempt had, gives the same frames).
        let mut progress = Progress::resume();
        self.drive(
            &self.writable,
            |_| true,
            |tun| tun.write_packets_within(bufs, sizes, offset, Patience::Never, &mut progress),
        )
        .await
    }

    /// Reads one packet into `buf` and returns its length. With offloads on, the packets split from a
    /// super-packet come out one per call, none lost.
    ///
    /// # Errors
    /// Those of [`Tun::read_packets`]; a buffer too small for the packet is [`Error::BufferTooSmall`], and the
    /// packet stays for the next call.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let mut sizes = [0usize];
        self.read_packets(&mut [buf], &mut sizes, 0).await?;
        Ok(sizes[0])
    }

    /// Writes one IP packet (with a zero virtio-net header when the device has one) and returns its length.
    ///
    /// # Errors
    /// [`Error::InvalidPacket`] for what is not one whole IP packet, or the kernel's refusal.
    pub async fn send(&self, packet: &[u8]) -> Result<usize> {
        self.drive(
            &self.writable,
            |_| true,
            |tun| tun.write_one(packet, Patience::Never),
        )
        .await
    }

    /// Calls the non-blocking `op` until it does not report [`Error::WouldBlock`], waiting on `direction`'s
    /// epoll in between. `op` itself reports a closed device ([`Error::Closed`]) or a deleted one (its errno),
    /// both of which make the epoll ready.
    ///
    /// The reactor's readiness says whether the fd can have anything: once a call found it empty and no new
    /// edge came since, a system call would only say `EAGAIN`, so the wait comes first (a sparse flow, such as
    /// a TCP stream's ACKs, saves one system call per packet). `op` still goes first when `without_fd` says
    /// it has work that needs no fd (packets split from an earlier read; writes, whose queue is rarely full).
    async fn drive<T>(
        &self,
        direction: &AsyncEpoll,
        without_fd: impl Fn(&Tun) -> bool,
        mut op: impl FnMut(&Tun) -> Result<T>,
    ) -> Result<T> {
        let tun = &self.tun;
        let mut readiness = None;
        if !without_fd(tun) {
            readiness = Some(self.ready(direction).await?);
        }
        loop {
            match op(tun) {
                Err(Error::WouldBlock) => {
                    // The readiness the last wait reported was used up: wait for the next edge.
                    if let Some(mut guard) = readiness.take() {
                        AsyncFdReadyGuard::clear_ready(&mut guard);
                    }
                    readiness = Some(self.ready(direction).await?);
                }
                other => return other,
            }
        }
    }

    /// Waits until `direction`'s epoll is ready: the device has a packet (or room), an error condition, or
    /// was closed.
    async fn ready<'a>(&self, direction: &'a AsyncEpoll) -> Result<AsyncFdReadyGuard<'a, Epoll>> {
        direction
            .ready()
            .await
            .map_err(|e| Error::io("epoll wait", self.tun.label, e))
    }
}

/// The two epoll instances of an [`AsyncTun`], registered with the reactor before a device is attached to
/// them, so that a runtime that cannot have them is found out before any device is made.
struct Waits {
    readable: AsyncEpoll,
    writable: AsyncEpoll,
}

impl Waits {
    /// Two empty epoll instances, registered with the current runtime's reactor; `device` names what they are
    /// for in an error.
    fn register(device: impl Into<DeviceName> + Copy) -> Result<Waits> {
        let registered = || {
            let epoll = Epoll::new().map_err(|e| Error::io("epoll_create1", device, e))?;
            AsyncEpoll::register(epoll).map_err(|e| match e {
                RegisterError::NoRuntime => Error::NoAsyncRuntime,
                RegisterError::NoIoDriver => Error::AsyncIoDisabled,
                RegisterError::Io(e) => Error::io("epoll registration", device, e),
            })
        };
        Ok(Waits {
            readable: registered()?,
            writable: registered()?,
        })
    }

    /// Adds `tun`'s fd and close eventfd to the epoll instances. On error `tun` is dropped, which closes it.
    fn attach(self, tun: Tun) -> Result<AsyncTun> {
        // A closed device's fd is /dev/null, which epoll refuses: say what it is instead.
        tun.check_open()?;
        let items = [
            (&self.readable, tun.fd(), tun_sys::Interest::Read),
            (&self.readable, tun.cancel_fd(), tun_sys::Interest::Read),
            (&self.writable, tun.fd(), tun_sys::Interest::Write),
            (&self.writable, tun.cancel_fd(), tun_sys::Interest::Read),
        ];
        for (wait, fd, interest) in items {
            wait.epoll()
                .add(fd.as_fd(), interest)
                .map_err(|e| Error::io("epoll_ctl", tun.label, e))?;
        }
        Ok(AsyncTun {
            tun,
            readable: self.readable,
            writable: self.writable,
        })
    }
}

impl crate::Builder {
    /// [`build`](crate::Builder::build), then [`AsyncTun::new`]: the device, ready for async I/O on the tokio
    /// runtime this is called in.
    ///
    /// # Errors
    /// [`Error::NoAsyncRuntime`] outside a tokio runtime and [`Error::AsyncIoDisabled`] in one built without
    /// its IO driver (both checked first: no device is created), then those of
    /// [`build`](crate::Builder::build) and of [`AsyncTun::new`].
    pub fn build_async(self) -> Result<AsyncTun> {
        let waits = Waits::register("/dev/net/tun")?;
        waits.attach(self.build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_tun_and_its_futures_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>(_: &T) {}
        assert_send_sync::<AsyncTun>();
        // Never polled: only the types are checked.
        let check = |tun: &AsyncTun, bufs: &mut Vec<Vec<u8>>, sizes: &mut Vec<usize>| {
            assert_send(&tun.read_packets(bufs, sizes, 10));
            assert_send(&tun.write_packets(bufs, sizes, 10));
            assert_send(&tun.recv(&mut [0u8; 16]));
            assert_send(&tun.send(&[0u8; 16]));
        };
        let _ = check;
    }

    #[test]
    fn outside_a_runtime_building_is_an_error_not_a_panic() {
        let err = crate::Builder::new().build_async().unwrap_err();
        assert!(matches!(err, Error::NoAsyncRuntime), "{err:?}");
    }

    #[test]
    fn in_a_runtime_without_io_building_is_an_error_found_before_the_device() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // A name no device can have: had the builder got as far as the device, it would say so instead.
        let built =
            rt.block_on(async { crate::Builder::new().name("not a valid name").build_async() });
        assert!(matches!(built, Err(Error::AsyncIoDisabled)), "{built:?}");
    }
}
