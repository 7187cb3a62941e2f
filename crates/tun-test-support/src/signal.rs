//! Termination signals handled synchronously: block them, then wait for one in an ordinary thread.
//!
//! A program that must print a summary or clean up on Ctrl-C blocks SIGINT and SIGTERM in its main thread
//! before it spawns any other thread (threads inherit the mask), then calls [`SignalSet::wait`] from one
//! thread. No signal handler runs, so the code that reacts to the signal is ordinary Rust with no
//! async-signal-safety rules. Child processes started with `std::process::Command` start with an empty
//! mask (the standard library resets it), so they still die of these signals as usual.
//!
//! ```no_run
//! use tun_test_support::signal::SignalSet;
//!
//! let set = SignalSet::termination();
//! set.block_in_thread()?;
//! // ... spawn worker threads here: they inherit the blocked mask ...
//! let signal = set.wait()?;
//! eprintln!("stopping on {signal:?}");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;

use nix::sys::signal::{SigSet, Signal as Raw};

/// A signal this module can wait for or send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: the polite request to stop.
    Terminate,
    /// SIGHUP: the controlling terminal went away.
    Hangup,
    /// SIGKILL: cannot be caught; only for [`send`].
    Kill,
}

impl Signal {
    /// The signals [`SignalSet`] can hold, with their kernel names.
    const ALL: [(Signal, Raw); 4] = [
        (Signal::Interrupt, Raw::SIGINT),
        (Signal::Terminate, Raw::SIGTERM),
        (Signal::Hangup, Raw::SIGHUP),
        (Signal::Kill, Raw::SIGKILL),
    ];

    fn raw(self) -> Raw {
        Self::ALL
            .iter()
            .find_map(|&(signal, raw)| (signal == self).then_some(raw))
            .unwrap_or(Raw::SIGKILL)
    }

    fn from_raw(raw: Raw) -> Option<Self> {
        Self::ALL
            .iter()
            .find_map(|&(signal, r)| (r == raw).then_some(signal))
    }
}

/// A set of signals to block and wait for.
#[derive(Clone, Copy)]
pub struct SignalSet {
    set: SigSet,
}

impl std::fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<Signal> = Signal::ALL
            .iter()
            .map(|&(signal, _)| signal)
            .filter(|s| self.contains(*s))
            .collect();
        f.debug_struct("SignalSet")
            .field("signals", &members)
            .finish()
    }
}

impl SignalSet {
    /// The signals that ask a program to stop: SIGINT, SIGTERM and SIGHUP.
    #[must_use]
    pub fn termination() -> Self {
        let mut set = SigSet::empty();
        for signal in [Signal::Interrupt, Signal::Terminate, Signal::Hangup] {
            set.add(signal.raw());
        }
        Self { set }
    }

    /// Whether `signal` is in the set.
    #[must_use]
    pub fn contains(&self, signal: Signal) -> bool {
        self.set.contains(signal.raw())
    }

    /// Blocks the set in the calling thread (and so in every thread it spawns afterwards), so that these
    /// signals stay pending until [`SignalSet::wait`] takes them.
    pub fn block_in_thread(&self) -> io::Result<()> {
        self.set.thread_block().map_err(io::Error::from)
    }

    /// Waits until one of the signals of the set is pending and takes it. The set must be blocked in every
    /// thread of the process (see [`SignalSet::block_in_thread`]), otherwise the default action may kill
    /// the process first.
    pub fn wait(&self) -> io::Result<Signal> {
        let raw = self.set.wait().map_err(io::Error::from)?;
        Signal::from_raw(raw).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sigwait returned {raw}"),
            )
        })
    }
}

/// Sends `signal` to the process `pid` (kill(2)). Only positive pids are accepted: process groups and
/// "every process" (0, -1, negative values) are refused so that a wrong value cannot hit other programs.
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {pid}")))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal.raw()).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_set_holds_int_term_hup_but_not_kill() {
        let set = SignalSet::termination();
        assert!(set.contains(Signal::Interrupt));
        assert!(set.contains(Signal::Terminate));
        assert!(set.contains(Signal::Hangup));
        assert!(!set.contains(Signal::Kill));
    }

    #[test]
    fn wait_returns_a_signal_sent_to_the_own_process() {
        // The test harness runs other threads that do not block the set, so a process-directed signal
        // could land there and kill the process; raise() directs it at this one thread instead.
        let handle = std::thread::spawn(|| {
            let set = SignalSet::termination();
            set.block_in_thread().expect("block");
            // The calling thread blocks SIGHUP, so it stays pending until wait takes it.
            nix::sys::signal::raise(Raw::SIGHUP).expect("raise");
            set.wait().expect("wait")
        });
        assert_eq!(handle.join().expect("join"), Signal::Hangup);
    }

    #[test]
    fn send_refuses_pid_zero() {
        let err = send(0, Signal::Terminate).expect_err("pid 0 must be refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn every_signal_maps_to_its_own_kernel_signal_and_back() {
        for (signal, raw) in Signal::ALL {
            assert_eq!(signal.raw(), raw);
            assert_eq!(Signal::from_raw(raw), Some(signal));
        }
    }
}
