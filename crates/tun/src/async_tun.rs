//! [`AsyncTun`]: a [`Tun`] driven by tokio's reactor instead of blocking threads.
//!
//! The I/O itself stays the non-blocking calls every runtime can use ([`Tun::try_read_packets`],
//! [`Tun::try_write_packets`]); this module only waits for readiness between them, through
//! [`tokio::io::unix::AsyncFd`]. Closing is the same eventfd that wakes blocked threads, registered with the
//! reactor too, so `close()` from anywhere wakes every pending future.

use std::future::{Future, poll_fn};
use std::os::fd::OwnedFd;
use std::pin::pin;
use std::task::Poll;

use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

use crate::device::Tun;
use crate::error::{Error, Result};
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
/// every pending future, which returns [`Error::Closed`], as does every later call.
#[derive(Debug)]
pub struct AsyncTun {
    io: AsyncFd<Tun>,
    /// A duplicate of the device's cancel eventfd, registered with the reactor: readable once closed.
    closed: AsyncFd<OwnedFd>,
}

impl AsyncTun {
    /// Registers `tun` with the tokio runtime this is called in.
    ///
    /// # Errors
    /// [`Error::NoAsyncRuntime`] outside a tokio runtime (the device is closed then); [`Error::Io`] when the
    /// reactor refuses the fd.
    ///
    /// # Panics
    /// Inside a runtime built without IO (`enable_io` / `enable_all`), as tokio itself does.
    pub fn new(tun: Tun) -> Result<AsyncTun> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoAsyncRuntime);
        }
        let cancel = tun
            .cancel_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("dup of the cancel eventfd", tun.label, e))?;
        let label = tun.label;
        // tokio deprecated its safe registration because an fd that is closed and reused while registered
        // would make the reactor deregister someone else's fd. Neither fd here can be: the eventfd is owned by
        // the AsyncFd, and the device's fd number stays allocated until the `Tun` is dropped, which the
        // AsyncFd does only after deregistering it (`close()` points the number at /dev/null but never frees
        // it). So the contract of `register_with_interest` holds, without `unsafe` in this crate.
        #[allow(deprecated)]
        let closed = AsyncFd::with_interest(cancel, Interest::READABLE)
            .map_err(|e| Error::io("epoll registration", label, e))?;
        #[allow(deprecated)]
        let io = AsyncFd::with_interest(tun, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| Error::io("epoll registration", label, e))?;
        Ok(AsyncTun { io, closed })
    }

    /// The device, for everything that does not wait: name, MTU, offloads, events, configuration.
    pub fn get_ref(&self) -> &Tun {
        self.io.get_ref()
    }

    /// Gives the device back, unregistered from the reactor (for blocking use, or another runtime).
    pub fn into_inner(self) -> Tun {
        self.io.into_inner()
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
        self.drive(Interest::READABLE, Tun::has_pending_read, |tun| {
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
        // with the next frame (planning the unchanged packets again gives the same frames).
        let mut progress = Progress::resume();
        self.drive(
            Interest::WRITABLE,
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
            Interest::WRITABLE,
            |_| true,
            |tun| tun.write_one(packet, Patience::Never),
        )
        .await
    }

    /// Calls the non-blocking `op` until it does not report [`Error::WouldBlock`], waiting for `interest` on
    /// the fd in between.
    ///
    /// The reactor's readiness says whether the fd can have anything: once a call found it empty and no new
    /// edge came since, a system call would only say `EAGAIN`, so the wait comes first (a sparse flow, such as
    /// a TCP stream's ACKs, saves one system call per packet). `op` still goes first when `without_fd` says
    /// it has work that needs no fd (packets split from an earlier read; writes, whose queue is rarely full).
    async fn drive<T>(
        &self,
        interest: Interest,
        without_fd: impl Fn(&Tun) -> bool,
        mut op: impl FnMut(&Tun) -> Result<T>,
    ) -> Result<T> {
        let tun = self.get_ref();
        let mut readiness = None;
        if !without_fd(tun) {
            readiness = self.ready(interest).await?;
        }
        loop {
            match op(tun) {
                Err(Error::WouldBlock) => {
                    // The readiness the last wait reported was used up: wait for the next edge.
                    if let Some(mut guard) = readiness.take() {
                        AsyncFdReadyGuard::clear_ready(&mut guard);
                    }
                    readiness = self.ready(interest).await?;
                }
                other => return other,
            }
        }
    }

    /// Waits until the fd is ready for `interest` (`Some` guard) or the device is closed (`None`, and the next
    /// call reports [`Error::Closed`]).
    async fn ready(&self, interest: Interest) -> Result<Option<AsyncFdReadyGuard<'_, Tun>>> {
        let mut ready = pin!(self.io.ready(interest));
        // Readiness is usually known already: decided without looking at the close signal.
        if let Poll::Ready(guard) = poll_once(ready.as_mut()).await {
            return self.checked(guard).map(Some);
        }
        let mut closed = pin!(self.closed.readable());
        poll_fn(|cx| {
            if closed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(None));
            }
            ready
                .as_mut()
                .poll(cx)
                .map(|guard| self.checked(guard).map(Some))
        })
        .await
    }

    fn checked<'a>(
        &self,
        guard: std::io::Result<AsyncFdReadyGuard<'a, Tun>>,
    ) -> Result<AsyncFdReadyGuard<'a, Tun>> {
        guard.map_err(|e| Error::io("epoll wait", self.get_ref().label, e))
    }
}

/// Polls `future` once: its output if it is ready at once.
async fn poll_once<F: Future + Unpin>(mut future: F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut future).poll(cx))).await
}

impl crate::Builder {
    /// [`build`](crate::Builder::build), then [`AsyncTun::new`]: the device, ready for async I/O on the tokio
    /// runtime this is called in.
    ///
    /// # Errors
    /// [`Error::NoAsyncRuntime`] outside a tokio runtime (checked first: no device is created), then those
    /// of [`build`](crate::Builder::build).
    pub fn build_async(self) -> Result<AsyncTun> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoAsyncRuntime);
        }
        AsyncTun::new(self.build()?)
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
}
