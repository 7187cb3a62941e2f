//! Fast Linux TUN devices.
//!
//! A [`Tun`] is one queue of a Linux TUN device (or, with [`Builder::layer`]`(`[`Layer::L2`]`)`, a TAP
//! device, whose packets are Ethernet frames): create it with a [`Builder`], move IP packets with
//! [`Tun::read_packets`] / [`Tun::write_packets`] (batches) or `std::io::Read` / `Write` (one packet per
//! call), and [`close`](Tun::close) it from any thread.
//!
//! ```no_run
//! use tun::Builder;
//!
//! let tun = Builder::new().name("tun%d").mtu(1420).build()?;
//! tun.set_up(true)?;
//! let mut bufs = vec![vec![0u8; 65535]; tun.batch_size()];
//! let mut sizes = vec![0usize; bufs.len()];
//! let n = tun.read_packets(&mut bufs, &mut sizes, 0)?;
//! println!("{}: {n} packet(s), the first {} bytes", tun.name(), sizes[0]);
//! tun.close()?;
//! # Ok::<(), tun::Error>(())
//! ```
//!
//! # Configuration
//!
//! [`Builder::address`], [`Builder::route`] and [`Builder::up`] bring a new device up with its addresses and
//! routes (a failure fails the build and removes the device); [`Tun::add_address`], [`Tun::add_route`],
//! [`Tun::addresses`], [`Tun::routes`], [`Tun::set_up`] and their siblings change and read them later. All of it
//! goes over rtnetlink, each request acknowledged, in the network namespace the device lives in now.
//!
//! # Offloads and batches
//!
//! With [`Builder::offload`]`(true)` the kernel hands over TCP and UDP super-packets of up to 64 KiB and takes
//! them back: [`Tun::read_packets`] splits each into MTU-sized packets (up to [`Tun::batch_size`] per call;
//! the rest wait for the next call, nothing is dropped), and [`Tun::write_packets`] coalesces the packets of
//! a batch again before writing. Both take the same arrays: packet `i` is `bufs[i][offset..offset +
//! sizes[i]]`, so a forwarder passes what a read filled in straight to the write, and a merged packet is built
//! in the room after its first packet. [`PacketBatch`] holds the buffers of such a cycle, allocated once.
//!
//! ```no_run
//! use tun::{Builder, PacketBatch, Tun};
//!
//! /// Forwards everything from `from` to `to` until either is closed: a VPN's data path without the crypto.
//! fn forward(from: &Tun, to: &Tun) -> tun::Result<()> {
//!     let mut batch = PacketBatch::for_device(from);
//!     loop {
//!         batch.read_from(from)?;
//!         match batch.write_to(to) {
//!             Err(e) if e.is_fatal() => return Err(e),
//!             Err(e) => eprintln!("some packets were refused: {e}"),
//!             Ok(_) => {}
//!         }
//!     }
//! }
//!
//! let a = Builder::new().name("tuna").offload(true).build()?;
//! let b = Builder::new().name("tunb").offload(true).build()?;
//! std::thread::scope(|s| {
//!     s.spawn(|| forward(&a, &b));
//!     s.spawn(|| forward(&b, &a));
//! });
//! # Ok::<(), tun::Error>(())
//! ```
//!
//! # Async
//!
//! With the `tokio` feature, `AsyncTun` (from `Builder::build_async` or `AsyncTun::new`) drives the same
//! data path from tasks: its `read_packets` / `write_packets` / `recv` / `send` await readiness on tokio's
//! reactor instead of blocking a thread, and [`PacketBatch`] has `read_from_async` / `write_to_async`. Any other
//! runtime can build on [`Tun::try_read_packets`] and [`Tun::try_write_packets`], which never wait
//! ([`Error::WouldBlock`]), and on the fd ([`AsFd`](std::os::fd::AsFd)), best through an epoll instance of its
//! own, as `AsyncTun` does: [`Tun::close`] retires the fd in place, which a reactor's registration of the fd
//! must not outlive. [`Events::recv_async`] waits for link events on any executor.
//!
//! # Threads and closing
//!
//! A [`Tun`] is `Send + Sync`. Reads and writes take separate locks, so one thread can block in a read while
//! another writes. [`Tun::close`] from any thread wakes a blocked reader at once (it gets [`Error::Closed`]),
//! stops the link monitor, and removes a non-persistent interface; dropping the `Tun` does the same.
//!
//! # Queues
//!
//! A device built with [`Builder::multi_queue`]`(true)` gets more queues from [`Tun::open_queue`]: each is a
//! `Tun` of its own (fd, buffers, locks) sharing the device's settings and link monitor, and the kernel
//! steers each flow to one of them by its hash. Serve each queue from its own thread, on a host with a core
//! for each; the device goes when its last queue is closed.

#[cfg(feature = "tokio")]
mod async_tun;
mod batch;
mod builder;
mod config;
mod device;
mod error;
mod io_impls;
mod offload;
mod patience;
mod queue_fds;
mod read;
mod write;

#[cfg(feature = "tokio")]
pub use async_tun::AsyncTun;
pub use batch::PacketBatch;
pub use builder::Builder;
pub use config::{DeviceAddress, DeviceRoute};
pub use device::Tun;
pub use error::{BatchError, DeviceName, Error, PacketError, Result};
pub use tun_events::{
    Event, Events, Iter as EventsIter, MAX_PENDING as MAX_PENDING_EVENTS, MonitorError,
    Recv as RecvEvent, RecvTimeoutError, TryRecvError,
};
pub use tun_offload::{Layer, OffloadError};
pub use tun_sys::netlink::GsoLimits;
pub use tun_sys::{NameError, Offloads};

/// The README's examples, compiled as doctests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
