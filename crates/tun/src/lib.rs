//! Fast Linux TUN devices.
//!
//! A [`Tun`] is one queue of a Linux TUN device: create it with a [`Builder`], move IP packets with
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
//! println!("{}: {n} packet(s), the first {} bytes", tun.name()?, sizes[0]);
//! tun.close()?;
//! # Ok::<(), tun::Error>(())
//! ```

mod builder;
mod device;
mod error;
mod io_impls;
mod offload;
mod read;
mod write;

pub use builder::Builder;
pub use device::Tun;
pub use error::{BatchError, Error, PacketError, Result};
pub use tun_events::{
    Event, Events, MAX_PENDING as MAX_PENDING_EVENTS, MonitorError, RecvTimeoutError, TryRecvError,
};
pub use tun_offload::OffloadError;
pub use tun_sys::{NameError, Offloads};
pub use write::PacketBuf;

/// The README's examples, compiled as doctests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
