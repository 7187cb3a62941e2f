//! Link monitoring for TUN devices.
//!
//! A [`Monitor`] watches one device with rtnetlink from inside the device's own network namespace and
//! reports [`Event`]s through an [`Events`] receiver:
//!
//! - [`Event::Running`] when the link becomes running (`IFF_RUNNING`), [`Event::NotRunning`] when it stops running
//!   after having been up, [`Event::MtuUpdate`] when its MTU changes. Only changes are reported: no `NotRunning`
//!   before the first `Running`, no repeats.
//! - When the device is moved to another namespace (`ip link set dev X netns Y`), the monitor follows it:
//!   it asks the TUN fd (or the [`DeviceHandle`] it was given) where the device now lives
//!   (`TUNGETDEVNETNS`), subscribes there and reads the state again, all driven by the kernel's
//!   notifications, never by polling.
//! - The monitor never waits for the reader. Pending events are kept in a small queue that folds old link
//!   flaps and stale MTU values, so a slow or absent reader costs a bounded amount of memory and still sees
//!   the newest state.
//! - Dropping (or [`Monitor::stop`]ping) the monitor wakes its thread through an eventfd and joins it.
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! # fn device() -> std::os::fd::OwnedFd { unimplemented!() }
//! let tun_fd = device();
//! let monitor = tun_events::Monitor::spawn(tun_fd.as_fd())?;
//! for event in monitor.events().iter() {
//!     println!("{event}");
//! }
//! # Ok::<(), tun_events::MonitorError>(())
//! ```

mod error;
mod error_slot;
mod event;
mod handle;
mod monitor;
mod receiver;
mod tracker;
mod worker;

pub use error::MonitorError;
pub use event::Event;
pub use handle::DeviceHandle;
pub use monitor::Monitor;
pub use receiver::{
    Events, Iter, MAX_PENDING, MAX_PENDING_TRANSITIONS, Recv, RecvTimeoutError, TryRecvError,
};
