//! The monitor thread: rtnetlink in the device's namespace, following the device when it moves.
//!
//! The thread owns the device's [`DeviceHandle`] (to ask where the device lives, `TUNGETDEVNETNS`, and what
//! it is called, `TUNGETIFF`: a duplicate of the TUN fd, or the owner's open queues) and one route socket.
//! The socket reports only the links of the namespace the thread was in when it created it, so the thread
//! first enters the device's namespace. Its life is two phases:
//!
//! - *resolving*: a new socket is subscribed and an `RTM_GETLINK` by name was sent; the reply gives the
//!   device's index in this namespace (it may change on a move) and its state;
//! - *tracking*: notifications for that index are turned into events. `RTM_DELLINK` for it means the device
//!   left this namespace (or was deleted): the thread follows it by going back to resolving, in the
//!   namespace the device handle now reports.
//!
//! Both phases block only in one `poll` on the socket and the cancel eventfd, so a stop request is seen at
//! once. The kernel moves a device and answers `TUNGETDEVNETNS` both under the RTNL lock, so by the time the
//! thread has read the `RTM_DELLINK` of a move, the ioctl already reports the new namespace: no retry timer
//! is needed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, mpsc};

use tun_sys::netlink::{self, Message, Messages, RECV_BUFFER_LEN, RecvError, RouteSocket};
use tun_sys::wait::{self, EventFd, Interest, Wait};

use crate::receiver::Queue;
use crate::tracker::LinkTracker;
use crate::{DeviceHandle, MonitorError};

/// Lookups in a row that may find the device missing from the namespace its fd reports. Each failed lookup
/// means the device moved again in between, so this bounds a device moved back and forth without pause.
const MAX_FAILED_LOOKUPS: u32 = 64;

/// Datagrams read per wake-up before the thread looks at its stop request again.
const DRAIN_BATCH: usize = 64;

/// Receive queue asked for each route socket: room for a burst of notifications (each about 1.5 KiB of
/// datagram, more in kernel accounting) before `ENOBUFS`.
const SOCKET_RECV_BUFFER: u32 = 1 << 20;

/// Where the monitor thread is in following the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the reply (sequence `seq`) to a lookup by name on a new socket.
    Resolving { seq: u32 },
    /// Watching the link `index`; `seq` is the last state request sent (a resync after an overrun).
    Tracking { index: u32, seq: u32 },
}

/// What a message from the kernel said, copied out of the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    Link {
        index: u32,
        seq: u32,
        running: bool,
        mtu: Option<u32>,
    },
    Removed {
        index: u32,
    },
    Error {
        errno: i32,
        seq: u32,
    },
    /// The kernel says messages were lost.
    Overrun,
}

/// Whether the thread goes on after handling something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Keep reading this socket.
    Continue,
    /// The socket was replaced (the device was followed): stop reading the old one.
    Switched,
    /// Stop the monitor.
    Stop,
}

/// The state of the monitor thread.
pub(crate) struct Worker {
    tun: Box<dyn DeviceHandle>,
    device: String,
    cancel: Arc<EventFd>,
    queue: Arc<Queue>,
    /// Present until the first link state was read (or starting failed).
    started: Option<mpsc::SyncSender<Result<(), MonitorError>>>,
    tracker: LinkTracker,
    socket: Option<RouteSocket>,
    phase: Phase,
    seq: u32,
    failed_lookups: u32,
}

impl Worker {
    /// A thread's state before it starts: it will report its first link state (or failure) on `started`.
    pub(crate) fn new(
        tun: Box<dyn DeviceHandle>,
        device: String,
        cancel: Arc<EventFd>,
        queue: Arc<Queue>,
        started: mpsc::SyncSender<Result<(), MonitorError>>,
    ) -> Self {
        Self {
            tun,
            device,
            cancel,
            queue,
            started: Some(started),
            tracker: LinkTracker::default(),
            socket: None,
            phase: Phase::Resolving { seq: 0 },
            seq: 0,
            failed_lookups: 0,
        }
    }

    /// The thread's body: runs until stopped, or until the device is gone or a fatal error.
    pub(crate) fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUFFER_LEN];
        let mut notices = Vec::new();
        if self.follow() != Flow::Stop {
            while self.step(&mut buf, &mut notices) == Flow::Continue {}
        }
        self.queue.close();
        // If starting failed before any error could be sent, dropping the sender tells spawn.
        drop(self.started.take());
    }

    /// Waits for the socket or a stop request, then handles what the socket holds (up to
    /// [`DRAIN_BATCH`] datagrams, so that a stop request is seen even during a flood of notifications).
    fn step(&mut self, buf: &mut [u8], notices: &mut Vec<Notice>) -> Flow {
        let Some(socket) = self.socket.as_ref() else {
            return Flow::Stop;
        };
        match wait::wait(socket.as_fd(), Interest::Read, &self.cancel, None) {
            Ok(Wait::Cancelled) => return Flow::Stop,
            Ok(Wait::Ready | Wait::TimedOut) => {}
            Err(e) => return self.fail("poll", e),
        }
        for _ in 0..DRAIN_BATCH {
            let Some(socket) = self.socket.as_ref() else {
                return Flow::Stop;
            };
            let received = socket.recv(buf);
            let flow = match received {
                Ok(len) => {
                    let bytes = buf.get(..len).unwrap_or_default();
                    let malformed = decode(bytes, notices);
                    let mut flow = self.handle_all(notices);
                    if let Some(source) = malformed
                        && flow == Flow::Continue
                    {
                        self.queue.errors().store(MonitorError::Malformed {
                            device: self.device.clone(),
                            source,
                        });
                        flow = self.resync();
                    }
                    flow
                }
                Err(RecvError::WouldBlock) => return Flow::Continue,
                // Notifications were lost (the queue overran, or a datagram did not fit): the state is read
                // again instead of guessed. Not an error for the user.
                Err(RecvError::Overrun | RecvError::Truncated { .. }) => self.resync(),
                Err(RecvError::Io(e)) => self.fail("netlink receive", e),
            };
            match flow {
                Flow::Continue => {}
                // The new socket is read after the next wait.
                Flow::Switched => return Flow::Continue,
                Flow::Stop => return Flow::Stop,
            }
        }
        // More may be pending: the next wait returns at once, unless a stop request came first.
        Flow::Continue
    }

    fn handle_all(&mut self, notices: &[Notice]) -> Flow {
        for notice in notices {
            let flow = self.handle(*notice);
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    fn handle(&mut self, notice: Notice) -> Flow {
        match (self.phase, notice) {
            (
                Phase::Resolving { seq },
                Notice::Link {
                    index,
                    seq: reply,
                    running,
                    mtu,
                },
            ) if reply == seq => {
                self.phase = Phase::Tracking { index, seq };
                self.failed_lookups = 0;
                self.report(running, mtu);
                if let Some(started) = self.started.take() {
                    // spawn may have given up waiting; then there is nobody to tell.
                    let _ = started.send(Ok(()));
                }
                Flow::Continue
            }
            (Phase::Resolving { seq }, Notice::Error { errno, seq: reply }) if reply == seq => {
                if errno == libc::ENODEV {
                    // The device moved again between finding its namespace and asking for it there.
                    self.failed_lookups += 1;
                    if self.failed_lookups >= MAX_FAILED_LOOKUPS {
                        return self.stop_with(MonitorError::Lost {
                            device: self.device.clone(),
                            attempts: self.failed_lookups,
                        });
                    }
                    self.follow()
                } else {
                    self.fail("RTM_GETLINK", io::Error::from_raw_os_error(errno))
                }
            }
            (
                Phase::Tracking { index, .. },
                Notice::Link {
                    index: link,
                    running,
                    mtu,
                    ..
                },
            ) if link == index => {
                self.report(running, mtu);
                Flow::Continue
            }
            (Phase::Tracking { index, .. }, Notice::Removed { index: link }) if link == index => {
                self.follow()
            }
            (Phase::Tracking { seq, .. }, Notice::Error { errno, seq: reply })
                if reply == seq && errno != 0 =>
            {
                if errno == libc::ENODEV {
                    // A resync found the index gone: the RTM_DELLINK was among the lost notifications.
                    self.follow()
                } else {
                    self.fail("RTM_GETLINK", io::Error::from_raw_os_error(errno))
                }
            }
            (_, Notice::Overrun) => self.resync(),
            // Other links, replies to older requests, and notifications that arrive on a new socket before
            // the lookup's reply (which reflects them).
            _ => Flow::Continue,
        }
    }

    fn report(&mut self, running: bool, mtu: Option<u32>) {
        for event in self.tracker.observe(running, mtu) {
            self.queue.push(event);
        }
    }

    /// Finds the device's namespace, subscribes there with a new socket and asks for the device by name.
    fn follow(&mut self) -> Flow {
        let ns = match self.tun.netns() {
            Ok(ns) => Some(ns),
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) && self.started.is_none() => {
                // The device was deleted while the fd was open (or its last queue closed): nothing is left to
                // follow.
                for event in self.tracker.gone() {
                    self.queue.push(event);
                }
                return Flow::Stop;
            }
            Err(e) if self.started.is_some() && can_stay_here(&e) => {
                // Without CAP_NET_ADMIN over the device's namespace (an unprivileged user attached to a
                // persistent device, say) the ioctl is refused; at the start the device is where the fd was
                // opened, in the common case the spawning thread's namespace, which this thread inherited.
                // Only following a later move needs the ioctl.
                None
            }
            Err(e) => return self.fail("TUNGETDEVNETNS", e),
        };
        if let Some(ns) = ns
            && let Err(flow) = self.enter(&ns)
        {
            return flow;
        }
        let socket = match RouteSocket::open_link_monitor() {
            Ok(socket) => socket,
            Err(e) => return self.fail("netlink socket", e),
        };
        if let Err(e) = socket.set_recv_buffer_size(SOCKET_RECV_BUFFER) {
            return self.fail("SO_RCVBUF", e);
        }
        // Asked after subscribing: a rename or move after this point arrives as a notification.
        let name = match self.tun.name() {
            Ok(name) => name,
            Err(e) => return self.fail("TUNGETIFF", e),
        };
        self.device = name.to_string_lossy();
        let seq = self.next_seq();
        if let Err(e) = socket.request_link_by_name(name.bytes(), seq) {
            return self.fail("RTM_GETLINK", e);
        }
        self.socket = Some(socket);
        self.phase = Phase::Resolving { seq };
        Flow::Switched
    }

    /// Moves this thread into `ns` unless it is there already (then no privilege beyond the socket's is
    /// needed).
    fn enter(&mut self, ns: &OwnedFd) -> Result<(), Flow> {
        let here =
            tun_sys::netns::current().map_err(|e| self.fail("open of the current netns", e))?;
        let same = tun_sys::netns::same(here.as_fd(), ns.as_fd())
            .map_err(|e| self.fail("stat of a netns", e))?;
        if !same {
            tun_sys::netns::enter(ns.as_fd()).map_err(|e| self.fail("setns", e))?;
        }
        Ok(())
    }

    /// Reads the state again after notifications were lost or garbled.
    fn resync(&mut self) -> Flow {
        let seq = self.next_seq();
        let Some(socket) = self.socket.as_ref() else {
            return Flow::Stop;
        };
        let sent = match self.phase {
            Phase::Tracking { index, .. } => {
                self.phase = Phase::Tracking { index, seq };
                socket.request_link(index, seq)
            }
            Phase::Resolving { .. } => match self.tun.name() {
                Ok(name) => {
                    self.phase = Phase::Resolving { seq };
                    socket.request_link_by_name(name.bytes(), seq)
                }
                Err(e) => return self.fail("TUNGETIFF", e),
            },
        };
        match sent {
            Ok(()) => Flow::Continue,
            Err(e) => self.fail("RTM_GETLINK", e),
        }
    }

    /// Sequence numbers of requests; never 0, which notifications carry.
    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn fail(&mut self, operation: &'static str, source: io::Error) -> Flow {
        let error = MonitorError::Io {
            operation,
            device: self.device.clone(),
            source,
        };
        self.stop_with(error)
    }

    /// Hands a fatal error to whoever waits for it (spawn while starting, the device's reader afterwards).
    fn stop_with(&mut self, error: MonitorError) -> Flow {
        match self.started.take() {
            Some(started) => {
                if let Err(mpsc::SendError(Err(error))) = started.send(Err(error)) {
                    // spawn gave up waiting; keep the error for take_error.
                    self.queue.errors().store(error);
                }
            }
            None => self.queue.errors().store(error),
        }
        Flow::Stop
    }
}

/// Whether a failed `TUNGETDEVNETNS` leaves the monitor where it is instead of failing: refused for lack
/// of privilege (`EPERM`), or unknown to a kernel older than 5.2 (`EINVAL`, `ENOTTY`).
fn can_stay_here(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EPERM | libc::EINVAL | libc::ENOTTY)
    )
}

/// Copies what matters out of one datagram into `notices`; returns the parse error that ended it, if any
/// (the messages before it are still in `notices`).
fn decode(bytes: &[u8], notices: &mut Vec<Notice>) -> Option<netlink::MalformedMessage> {
    notices.clear();
    for message in Messages::new(bytes) {
        match message {
            Ok(Message::NewLink(link)) => notices.push(Notice::Link {
                index: link.index,
                seq: link.seq,
                running: link.is_running(),
                mtu: link.mtu,
            }),
            Ok(Message::DelLink(link)) => notices.push(Notice::Removed { index: link.index }),
            Ok(Message::Error { errno, seq }) => notices.push(Notice::Error { errno, seq }),
            Ok(Message::Overrun) => notices.push(Notice::Overrun),
            Ok(
                Message::Done { .. }
                | Message::Other { .. }
                | Message::NewAddress(_)
                | Message::DelAddress(_)
                | Message::NewRoute(_)
                | Message::DelRoute(_),
            ) => {}
            Err(e) => return Some(e),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Events};

    /// A worker whose fd is `/dev/null`: enough for the message handling, which only needs the fd to
    /// follow the device (not exercised here).
    fn worker(phase: Phase) -> (Worker, Events) {
        let queue = Queue::new();
        let events = queue.subscribe();
        let worker = Worker {
            tun: Box::new(OwnedFd::from(
                std::fs::File::open("/dev/null").expect("open /dev/null"),
            )),
            device: "test0".into(),
            cancel: Arc::new(EventFd::new().expect("eventfd")),
            queue,
            started: None,
            tracker: LinkTracker::default(),
            socket: None,
            phase,
            seq: 0,
            failed_lookups: 0,
        };
        (worker, events)
    }

    fn link(index: u32, seq: u32, running: bool, mtu: u32) -> Notice {
        Notice::Link {
            index,
            seq,
            running,
            mtu: Some(mtu),
        }
    }

    fn drain(events: &Events) -> Vec<Event> {
        std::iter::from_fn(|| events.try_recv().ok())
            .take(10)
            .collect()
    }

    #[test]
    fn lookup_reply_starts_tracking_its_index_and_reports_its_state() {
        let (mut worker, events) = worker(Phase::Resolving { seq: 3 });
        // Earlier lookups found the device gone (it moved on): a reply starts the count again.
        worker.failed_lookups = MAX_FAILED_LOOKUPS - 1;
        assert_eq!(worker.handle(link(7, 3, true, 1500)), Flow::Continue);
        assert_eq!(worker.phase, Phase::Tracking { index: 7, seq: 3 });
        assert_eq!(drain(&events), vec![Event::Running]);
        assert_eq!(worker.failed_lookups, 0);
    }

    #[test]
    fn a_device_gone_at_every_lookup_stops_the_monitor_as_lost() {
        let (mut worker, _events) = worker(Phase::Resolving { seq: 3 });
        worker.failed_lookups = MAX_FAILED_LOOKUPS - 1;
        let gone = Notice::Error {
            errno: libc::ENODEV,
            seq: 3,
        };
        assert_eq!(worker.handle(gone), Flow::Stop);
        assert!(
            matches!(
                worker.queue.errors().take(),
                Some(MonitorError::Lost {
                    attempts: MAX_FAILED_LOOKUPS,
                    ..
                })
            ),
            "the lookups' budget ends the monitor"
        );
    }

    #[test]
    fn refused_lookup_stops_the_monitor_with_the_errno_and_a_stale_one_does_not() {
        let (mut worker, _events) = worker(Phase::Resolving { seq: 3 });
        let stale = Notice::Error {
            errno: libc::EPERM,
            seq: 2,
        };
        assert_eq!(worker.handle(stale), Flow::Continue);
        assert!(worker.queue.errors().take().is_none());
        let refused = Notice::Error {
            errno: libc::EPERM,
            seq: 3,
        };
        assert_eq!(worker.handle(refused), Flow::Stop);
        let error = worker.queue.errors().take().expect("error stored");
        assert_eq!(
            error.io_error().and_then(io::Error::raw_os_error),
            Some(libc::EPERM)
        );
    }

    #[test]
    fn notifications_before_the_lookup_reply_are_ignored() {
        let (mut worker, events) = worker(Phase::Resolving { seq: 3 });
        assert_eq!(worker.handle(link(7, 0, true, 1500)), Flow::Continue);
        assert_eq!(worker.handle(Notice::Removed { index: 7 }), Flow::Continue);
        assert_eq!(worker.phase, Phase::Resolving { seq: 3 });
        assert!(drain(&events).is_empty());
    }

    #[test]
    fn tracking_reports_changes_of_its_own_link_only() {
        let (mut worker, events) = worker(Phase::Tracking { index: 7, seq: 1 });
        worker.handle(link(7, 0, false, 1500));
        worker.handle(link(8, 0, true, 9000));
        worker.handle(link(7, 0, true, 1500));
        worker.handle(link(7, 0, true, 1400));
        worker.handle(link(7, 0, false, 1400));
        assert_eq!(
            drain(&events),
            vec![Event::Running, Event::MtuUpdate(1400), Event::NotRunning]
        );
    }

    #[test]
    fn removal_of_another_link_and_answers_to_old_requests_are_ignored() {
        let (mut worker, events) = worker(Phase::Tracking { index: 7, seq: 5 });
        assert_eq!(worker.handle(Notice::Removed { index: 8 }), Flow::Continue);
        let stale = Notice::Error {
            errno: libc::ENODEV,
            seq: 4,
        };
        assert_eq!(worker.handle(stale), Flow::Continue);
        let ack = Notice::Error { errno: 0, seq: 5 };
        assert_eq!(worker.handle(ack), Flow::Continue);
        assert_eq!(worker.phase, Phase::Tracking { index: 7, seq: 5 });
        assert!(drain(&events).is_empty());
        assert!(worker.queue.errors().take().is_none());
    }

    #[test]
    fn refused_state_request_stops_the_monitor_with_the_errno() {
        let (mut worker, _events) = worker(Phase::Tracking { index: 7, seq: 5 });
        let refused = Notice::Error {
            errno: libc::EPERM,
            seq: 5,
        };
        assert_eq!(worker.handle(refused), Flow::Stop);
        let error = worker.queue.errors().take().expect("error stored");
        assert_eq!(
            error.io_error().and_then(io::Error::raw_os_error),
            Some(libc::EPERM)
        );
        assert!(error.is_fatal());
    }

    #[test]
    fn request_sequence_numbers_skip_zero() {
        let (mut worker, _events) = worker(Phase::Resolving { seq: 0 });
        worker.seq = u32::MAX;
        assert_eq!(worker.next_seq(), 1);
        assert_eq!(worker.next_seq(), 2);
    }
}
