//! Per-direction counters of a forwarder, printed in one line each when it stops.
//!
//! The line format is shared by every forwarder the benchmark runs, and `cargo xtask bench` parses it:
//! `a->b: packets N bytes N reads N super-packets N errors N`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one direction, updated by its forwarding thread and read by the thread that prints them.
#[derive(Debug, Default)]
pub struct Counters {
    packets: AtomicU64,
    bytes: AtomicU64,
    reads: AtomicU64,
    super_packets: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
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

/// Consecutive failures after which a direction stops (a device that is gone fails every call).
pub const MAX_CONSECUTIVE_ERRORS: u32 = 1000;

/// Stops a direction after [`MAX_CONSECUTIVE_ERRORS`] failures in a row; logs the first few, counts them all.
#[derive(Debug, Default)]
pub struct ErrorBudget {
    consecutive: u32,
}

impl ErrorBudget {
    /// Records a failed `what` (with `error`, logged by `who` while the streak is short); whether the
    /// direction goes on.
    pub fn failed(
        &mut self,
        who: &str,
        what: &str,
        error: &dyn fmt::Display,
        counters: &Counters,
    ) -> bool {
        counters.record_error();
        self.consecutive += 1;
        if self.consecutive <= 3 {
            eprintln!("{who}: {what}: {error}");
        }
        self.consecutive < MAX_CONSECUTIVE_ERRORS
    }

    /// Stops the direction at once (its device is gone).
    pub fn give_up(&mut self) {
        self.consecutive = MAX_CONSECUTIVE_ERRORS;
    }

    /// Records a call that succeeded: the streak of failures is over.
    pub fn succeeded(&mut self) {
        self.consecutive = 0;
    }

    /// Whether the direction goes on (fewer than [`MAX_CONSECUTIVE_ERRORS`] failures in a row).
    #[must_use]
    pub fn going_on(&self) -> bool {
        self.consecutive < MAX_CONSECUTIVE_ERRORS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_of_several_packets_counts_one_super_packet() {
        let counters = Counters::default();
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
        let counters = Counters::default();
        let mut budget = ErrorBudget::default();
        for _ in 1..MAX_CONSECUTIVE_ERRORS {
            assert!(budget.failed("test", "read", &"EIO", &counters));
        }
        budget.succeeded();
        assert!(budget.going_on());
        for _ in 1..MAX_CONSECUTIVE_ERRORS {
            assert!(budget.failed("test", "read", &"EIO", &counters));
        }
        assert!(!budget.failed("test", "read", &"EIO", &counters));
        assert!(!budget.going_on());
        assert_eq!(
            counters.snapshot().errors,
            u64::from(2 * MAX_CONSECUTIVE_ERRORS - 1)
        );
    }
}
