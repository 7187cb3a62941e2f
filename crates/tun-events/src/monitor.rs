//! [`Monitor`]: the handle of a link monitor. It starts the monitor thread ([`crate::worker`]), hands out
//! receivers of its events, reports its error, and stops and joins it.

use std::os::fd::BorrowedFd;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tun_sys::wait::EventFd;

use crate::receiver::Queue;
use crate::worker::Worker;
use crate::{DeviceHandle, Events, MonitorError};

/// How long [`Monitor::spawn`] waits for the first link state (the kernel answers in microseconds; this
/// only bounds a wedged system).
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// A link monitor for one TUN device, running on its own thread.
///
/// Dropping it (or calling [`Monitor::stop`]) wakes the thread through an eventfd and joins it; that takes
/// well under 100 ms. The monitor holds its [`DeviceHandle`] until then: one made by [`Monitor::spawn`] is a
/// duplicate of the device's fd, so stop it before expecting a non-persistent device to disappear.
#[derive(Debug)]
pub struct Monitor {
    device: String,
    queue: Arc<Queue>,
    cancel: Arc<EventFd>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Monitor {
    /// Starts monitoring the TUN device behind `device` (a `/dev/net/tun` fd after `TUNSETIFF`), through a
    /// duplicate of it that the monitor holds until it stops.
    ///
    /// Returns once the monitor is subscribed in the device's namespace and has read the current state, so
    /// that every change made after this returns is reported. A device that is already running at that
    /// point is reported [`Event::Running`](crate::Event::Running) at once.
    pub fn spawn(device: BorrowedFd<'_>) -> Result<Self, MonitorError> {
        let tun = device
            .try_clone_to_owned()
            .map_err(|source| MonitorError::Io {
                operation: "dup of the TUN fd",
                device: String::new(),
                source,
            })?;
        Self::spawn_with(tun)
    }

    /// Starts monitoring the device `device` answers for, as [`spawn`](Self::spawn) does, but asking `device`
    /// where the device lives and what it is called instead of holding a descriptor of its own.
    pub fn spawn_with(device: impl DeviceHandle) -> Result<Self, MonitorError> {
        let name = device
            .name()
            .map(|name| name.to_string_lossy())
            .map_err(|source| MonitorError::Io {
                operation: "TUNGETIFF",
                device: String::new(),
                source,
            })?;
        let io_error = |operation, source| MonitorError::Io {
            operation,
            device: name.clone(),
            source,
        };
        let cancel = Arc::new(EventFd::new().map_err(|e| io_error("eventfd", e))?);
        let queue = Queue::new();
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let worker = Worker::new(
            Box::new(device),
            name.clone(),
            Arc::clone(&cancel),
            Arc::clone(&queue),
            started_tx,
        );
        let thread = std::thread::Builder::new()
            .name("tun-events".into())
            .spawn(move || worker.run())
            .map_err(|e| io_error("spawn of the monitor thread", e))?;
        let monitor = Self {
            device: name,
            queue,
            cancel,
            thread: Mutex::new(Some(thread)),
        };
        match started_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(monitor),
            Ok(Err(error)) => Err(error),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                monitor.stop();
                Err(monitor
                    .queue
                    .errors()
                    .take()
                    .unwrap_or(MonitorError::StartTimeout {
                        device: monitor.device.clone(),
                        timeout_ms: u64::try_from(START_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                    }))
            }
            // The thread ended without a word: only a panic does that.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                monitor.stop();
                Err(monitor
                    .queue
                    .errors()
                    .take()
                    .unwrap_or(MonitorError::Panicked {
                        device: monitor.device.clone(),
                    }))
            }
        }
    }

    /// A new receiver of this monitor's events: it sees every event from now on (the first receiver also
    /// those from before it), whatever other receivers take.
    #[must_use]
    pub fn events(&self) -> Events {
        self.queue.subscribe()
    }

    /// Takes the error the monitor hit since the last call, if any (the same one
    /// [`Events::take_error`] takes: whoever asks first).
    pub fn take_error(&self) -> Option<MonitorError> {
        self.queue.errors().take()
    }

    /// True once the monitor thread has stopped (after [`Monitor::stop`], a fatal error, or the device's
    /// deletion).
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.queue.is_closed()
    }

    /// Wakes the monitor thread, waits for it to exit and closes the events receivers (pending events can
    /// still be read). Idempotent; safe to call from any thread, also while another is blocked reading the
    /// device.
    pub fn stop(&self) {
        let Some(thread) = self.thread.lock().take() else {
            return;
        };
        if let Err(source) = self.cancel.signal() {
            // Without the wake-up the join below would hang: report and leave the thread detached.
            self.queue.errors().store(MonitorError::Io {
                operation: "eventfd signal",
                device: self.device.clone(),
                source,
            });
            self.queue.close();
            return;
        }
        if thread.join().is_err() {
            self.queue.errors().store(MonitorError::Panicked {
                device: self.device.clone(),
            });
        }
        // The thread closes the queue on its way out; a panicking one may not have.
        self.queue.close();
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}
