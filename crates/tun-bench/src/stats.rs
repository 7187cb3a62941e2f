//! Per-direction counters of a forwarder, printed in one line each when it stops.
//!
//! The line format is shared by every forwarder the benchmark runs, and `cargo xtask bench` parses it:
//! `a->b: packets N bytes N reads N super-packets N errors N`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tun_test_harness::relay::{Call, Tally};

/// Counters of one direction, updated by its forwarding thread and read by the thread that prints them.
#[derive(Debug)]
pub struct Counters {
    /// The forwarder, as its error lines name it.
    who: &'static str,
    packets: AtomicU64,
    bytes: AtomicU64,
    reads: AtomicU64,
    super_packets: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    /// Counters at zero, for forwarder `who` (the name its error lines start with).
    #[must_use]
    pub fn new(who: &'static str) -> Counters {
        Counters {
            who,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            super_packets: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Records one receive call that returned `packets` packets of `bytes` bytes in total.
    pub fn record_read(&self, packets: usize, bytes: usize) {
        let packets = u64::try_from(packets).unwrap_or(u64::MAX);
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
        if packets > 1 {
            self.super_packets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a failed receive or send.
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy for printing (each counter is read once).
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            super_packets: self.super_packets.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// What a forwarder's direction records through the shared relay: its counters, and on stderr the first
/// few errors of each streak (a device that fails every call would otherwise flood it).
impl Tally for &Counters {
    fn read(&mut self, packets: usize, bytes: usize) {
        self.record_read(packets, bytes);
    }

    fn failed(&mut self, call: Call, error: &dyn fmt::Display, in_a_row: u32) {
        self.record_error();
        if in_a_row <= 3 {
            eprintln!("{}: {call}: {error}", self.who);
        }
    }
}

/// The values of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Packets forwarded (MTU-sized, after splitting).
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Receive calls that returned packets.
    pub reads: u64,
    /// Receive calls that returned more than one packet (a split super-packet).
    pub super_packets: u64,
    /// Failed receive or send calls.
    pub errors: u64,
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "packets {} bytes {} reads {} super-packets {} errors {}",
            self.packets, self.bytes, self.reads, self.super_packets, self.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_of_several_packets_counts_one_super_packet() {
        let counters = Counters::new("test");
        counters.record_read(1, 100);
        counters.record_read(40, 60_000);
        counters.record_error();
        let s = counters.snapshot();
        assert_eq!(
            (s.packets, s.bytes, s.reads, s.super_packets, s.errors),
            (41, 60_100, 2, 1, 1)
        );
        assert_eq!(
            s.to_string(),
            "packets 41 bytes 60100 reads 2 super-packets 1 errors 1"
        );
    }

    #[test]
    fn a_streak_of_failures_stops_a_direction_and_a_success_ends_the_streak() {
        use tun_test_harness::relay::{Direction, MAX_ERRORS_IN_A_ROW};

        let counters = Counters::new("test");
        let mut direction = Direction::new(&counters);
        let failed = || Err::<(), _>(std::io::Error::from_raw_os_error(5)); // EIO
        for _ in 1..MAX_ERRORS_IN_A_ROW {
            direction.wrote(failed());
            assert!(direction.going_on());
        }
        direction.wrote(Ok::<_, std::io::Error>(()));
        assert!(direction.going_on());
        for _ in 1..MAX_ERRORS_IN_A_ROW {
            direction.wrote(failed());
            assert!(direction.going_on());
        }
        direction.wrote(failed());
        assert!(!direction.going_on());
        assert_eq!(
            counters.snapshot().errors,
            u64::from(2 * MAX_ERRORS_IN_A_ROW - 1)
        );
    }
}
