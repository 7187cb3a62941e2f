//! One direction of a forwarder: the loop that moves packets from one device to another through a
//! [`PacketBatch`], and the one policy for its errors, written once for the benchmark's `tun-forward` (in
//! `tun-bench`) and the [`Tunnel`](crate::tunnel::Tunnel) harness. The `tun` crate's `forward` example spells
//! out the same loop and policy on its own, as a program a user copies.
//!
//! The loop is what a VPN would copy, with its encryption between the read and the write:
//!
//! ```text
//! while direction.going_on() {
//!     let read = packets.read_from(from);
//!     if direction.read(read, |&n| (n, packets.bytes())).is_some() {
//!         direction.wrote(packets.write_to(to));
//!     }
//! }
//! ```
//!
//! A [`Direction`] decides what an error means: a closed device ends the loop quietly, an error after which
//! the device is unusable ([`Error::is_fatal`]) is recorded and ends it at once, any other is recorded and
//! the loop goes on, giving up after [`MAX_ERRORS_IN_A_ROW`] failures without a successful write between them.
//! What is recorded is up to a [`Tally`]: the harness keeps every error for the test to check, the
//! benchmark's forwarders count them and print the first few. Loops that move packets by other calls (the
//! harness's raw and one-packet modes, the benchmark's pass-through) keep their own loop and settle each call
//! through a [`Direction`] too.

use std::fmt;
use std::io;

use tun::{AsyncTun, Error, PacketBatch, Tun};

/// Failures in a row (no successful write between them) after which a direction gives up: a device that
/// fails every call would otherwise spin for ever.
pub const MAX_ERRORS_IN_A_ROW: u32 = 1000;

/// Which call of a direction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Reading from the device packets come from.
    Read,
    /// Writing to the device they go to.
    Write,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::Read => "read",
            Call::Write => "write",
        })
    }
}

/// What one direction records: the packets it read and the calls that failed.
pub trait Tally {
    /// A read returned `packets` packets of `bytes` bytes in all.
    fn read(&mut self, packets: usize, bytes: usize);

    /// `call` failed with `error` (never because the device was closed), the `in_a_row`-th failure since
    /// the last successful write.
    fn failed(&mut self, call: Call, error: &dyn fmt::Display, in_a_row: u32);
}

/// What a [`Direction`] needs to know of an error: whether it ends the direction, and how to say it.
pub trait Failure {
    /// The device was closed: the direction's normal end, not a failure.
    fn is_closed(&self) -> bool;

    /// The device is unusable from now on: recorded, and the direction ends at once.
    fn is_fatal(&self) -> bool;

    /// The error with its causes, for a log line or a test's message.
    fn describe(&self) -> impl fmt::Display + '_;
}

impl Failure for Error {
    fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }

    fn is_fatal(&self) -> bool {
        Error::is_fatal(self)
    }

    fn describe(&self) -> impl fmt::Display + '_ {
        self.report()
    }
}

/// An `io::Error` is closed or fatal when it carries a library [`Error`] that is (what `io::Read` and
/// `io::Write` on a `Tun` return). Any other, such as one of a raw fd, counts against the budget only.
impl Failure for io::Error {
    fn is_closed(&self) -> bool {
        library_error(self).is_some_and(Failure::is_closed)
    }

    fn is_fatal(&self) -> bool {
        library_error(self).is_some_and(Error::is_fatal)
    }

    fn describe(&self) -> impl fmt::Display + '_ {
        self
    }
}

/// The library error an `io::Error` was made from, if it was.
fn library_error(error: &io::Error) -> Option<&Error> {
    error.get_ref()?.downcast_ref::<Error>()
}

/// One direction of a forwarder while it runs: its [`Tally`] and its failures in a row.
#[derive(Debug)]
pub struct Direction<T> {
    tally: T,
    errors_in_a_row: u32,
}

impl<T: Tally> Direction<T> {
    /// A direction that has seen nothing yet, recording into `tally`.
    pub fn new(tally: T) -> Direction<T> {
        Direction {
            tally,
            errors_in_a_row: 0,
        }
    }

    /// Whether the loop goes on: no device was closed or became unusable, and fewer than
    /// [`MAX_ERRORS_IN_A_ROW`] calls failed since the last successful write.
    pub fn going_on(&self) -> bool {
        self.errors_in_a_row < MAX_ERRORS_IN_A_ROW
    }

    /// Settles a read: what it returned, tallied as the packets and bytes `size` finds in it, or `None`
    /// when it failed (recorded as [`failed`](Self::failed) says).
    pub fn read<V, E: Failure>(
        &mut self,
        read: Result<V, E>,
        size: impl FnOnce(&V) -> (usize, usize),
    ) -> Option<V> {
        match read {
            Ok(value) => {
                let (packets, bytes) = size(&value);
                self.tally.read(packets, bytes);
                Some(value)
            }
            Err(e) => {
                self.failed(Call::Read, &e);
                None
            }
        }
    }

    /// Settles a write: a success ends a streak of failures, a failure is recorded as
    /// [`failed`](Self::failed) says.
    pub fn wrote<V, E: Failure>(&mut self, written: Result<V, E>) {
        match written {
            Ok(_) => self.errors_in_a_row = 0,
            Err(e) => self.failed(Call::Write, &e),
        }
    }

    /// Records that `call` failed with `error`. A closed device ends the direction unrecorded; any other
    /// error is tallied, and ends the direction when it is fatal or the last the budget allows.
    pub fn failed<E: Failure>(&mut self, call: Call, error: &E) {
        if error.is_closed() {
            self.errors_in_a_row = MAX_ERRORS_IN_A_ROW;
            return;
        }
        self.errors_in_a_row = self.errors_in_a_row.saturating_add(1);
        self.tally
            .failed(call, &error.describe(), self.errors_in_a_row);
        if error.is_fatal() {
            self.errors_in_a_row = MAX_ERRORS_IN_A_ROW;
        }
    }

    /// What was recorded.
    pub fn into_tally(self) -> T {
        self.tally
    }
}

/// Forwards `from -> to` through `packets` until the direction ends (see [`Direction`]), and returns what
/// `tally` recorded. With offloads, each read brings the MTU-sized packets split from a super-packet and
/// each write coalesces them again; without, one packet per read and per write.
pub fn forward<T: Tally>(from: &Tun, to: &Tun, packets: &mut PacketBatch, tally: T) -> T {
    let mut direction = Direction::new(tally);
    while direction.going_on() {
        let read = packets.read_from(from);
        if direction.read(read, |&n| (n, packets.bytes())).is_some() {
            direction.wrote(packets.write_to(to));
        }
    }
    direction.into_tally()
}

/// [`forward`] on async devices: the same loop, awaiting instead of blocking.
pub async fn forward_async<T: Tally>(
    from: &AsyncTun,
    to: &AsyncTun,
    packets: &mut PacketBatch,
    tally: T,
) -> T {
    let mut direction = Direction::new(tally);
    while direction.going_on() {
        let read = packets.read_from_async(from).await;
        if direction.read(read, |&n| (n, packets.bytes())).is_some() {
            direction.wrote(packets.write_to_async(to).await);
        }
    }
    direction.into_tally()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call the direction made of its tally.
    #[derive(Debug, Default)]
    struct Log {
        reads: Vec<(usize, usize)>,
        failures: Vec<(Call, String, u32)>,
    }

    impl Tally for Log {
        fn read(&mut self, packets: usize, bytes: usize) {
            self.reads.push((packets, bytes));
        }

        fn failed(&mut self, call: Call, error: &dyn fmt::Display, in_a_row: u32) {
            self.failures.push((call, error.to_string(), in_a_row));
        }
    }

    use nix::errno::Errno;

    /// An error that is neither closed nor fatal, as a write to a device that is down gets.
    fn eio() -> io::Error {
        io::Error::from_raw_os_error(Errno::EIO as i32)
    }

    /// What the library reports of a device that was deleted: fatal.
    fn device_gone() -> Error {
        Error::Io {
            op: "read",
            device: "tunA".into(),
            source: io::Error::from_raw_os_error(Errno::ENODEV as i32),
        }
    }

    #[test]
    fn a_read_is_tallied_as_its_size_says() {
        let mut direction = Direction::new(Log::default());
        assert_eq!(
            direction.read(Ok::<_, Error>(40), |&n| (n, 60_000)),
            Some(40)
        );
        assert!(direction.going_on());
        assert_eq!(direction.into_tally().reads, [(40, 60_000)]);
    }

    #[test]
    fn the_direction_gives_up_after_the_budget_of_failures_in_a_row() {
        let mut direction = Direction::new(Log::default());
        for _ in 1..MAX_ERRORS_IN_A_ROW {
            assert_eq!(direction.read(Err::<usize, _>(eio()), |_| (1, 1)), None);
            assert!(direction.going_on());
        }
        direction.wrote(Err::<(), _>(eio()));
        assert!(!direction.going_on());
        let failures = direction.into_tally().failures;
        assert_eq!(failures.len(), MAX_ERRORS_IN_A_ROW as usize);
        assert_eq!(failures[0].0, Call::Read);
        assert_eq!(failures[0].2, 1);
        let last = failures.last().unwrap();
        assert_eq!((last.0, last.2), (Call::Write, MAX_ERRORS_IN_A_ROW));
    }

    #[test]
    fn a_successful_write_ends_the_streak_and_a_successful_read_does_not() {
        let mut direction = Direction::new(Log::default());
        for _ in 1..MAX_ERRORS_IN_A_ROW {
            direction.wrote(Err::<(), _>(eio()));
        }
        direction.wrote(Ok::<_, io::Error>(()));
        for _ in 1..MAX_ERRORS_IN_A_ROW {
            direction.wrote(Err::<(), _>(eio()));
        }
        assert!(direction.going_on());
        // A read that succeeds between failed writes does not reset the count.
        direction.read(Ok::<_, io::Error>(1), |_| (1, 100));
        direction.wrote(Err::<(), _>(eio()));
        assert!(!direction.going_on());
        let failures = direction.into_tally().failures;
        assert_eq!(failures.len(), 2 * (MAX_ERRORS_IN_A_ROW as usize - 1) + 1);
        assert_eq!(failures[MAX_ERRORS_IN_A_ROW as usize - 1].2, 1);
    }

    #[test]
    fn a_closed_device_ends_the_direction_at_once_unrecorded() {
        for call in [Call::Read, Call::Write] {
            let mut direction = Direction::new(Log::default());
            direction.failed(call, &Error::Closed);
            assert!(!direction.going_on());
            assert!(direction.into_tally().failures.is_empty());
        }
        // As `io::Read` / `io::Write` on a `Tun` report it.
        let mut direction = Direction::new(Log::default());
        direction.wrote(Err::<(), _>(io::Error::from(Error::Closed)));
        assert!(!direction.going_on());
        assert!(direction.into_tally().failures.is_empty());
    }

    #[test]
    fn a_fatal_error_is_recorded_and_ends_the_direction_at_once() {
        let mut direction = Direction::new(Log::default());
        direction.read(Err::<usize, _>(device_gone()), |_| (0, 0));
        assert!(!direction.going_on());
        assert_eq!(direction.into_tally().failures.len(), 1);

        let mut direction = Direction::new(Log::default());
        // As `io::Write` on a `Tun` reports it.
        direction.wrote(Err::<(), _>(io::Error::from(device_gone())));
        assert!(!direction.going_on());
        let failures = direction.into_tally().failures;
        assert_eq!(failures.len(), 1);
        assert_eq!((failures[0].0, failures[0].2), (Call::Write, 1));
    }

    #[test]
    fn an_io_error_of_a_raw_fd_only_counts_against_the_budget() {
        // ENODEV on a raw fd carries no library error: not classified, only counted.
        let mut direction = Direction::new(Log::default());
        let gone = io::Error::from_raw_os_error(Errno::ENODEV as i32);
        direction.read(Err::<usize, _>(gone), |_| (0, 0));
        assert!(direction.going_on());
        assert_eq!(direction.into_tally().failures.len(), 1);
    }
}
