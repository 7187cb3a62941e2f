//! Termination signals handled synchronously: block them, then wait for one in an ordinary thread.
//!
//! A program that must print a summary or clean up on Ctrl-C blocks SIGINT and SIGTERM in its main thread
//! before it spawns any other thread (threads inherit the mask), then calls [`SignalSet::wait`] from one
//! thread. No signal handler runs, so the code that reacts to the signal is ordinary Rust with no
//! async-signal-safety rules. Child processes started with `std::process::Command` start with an empty
//! mask (the standard library resets it), so they still die of these signals as usual.
//!
//! ```no_run
//! use tun_sys::signal::SignalSet;
//!
//! let set = SignalSet::termination();
//! set.block_in_thread()?;
//! // ... spawn worker threads here: they inherit the blocked mask ...
//! let signal = set.wait()?;
//! eprintln!("stopping on {signal:?}");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::mem::MaybeUninit;

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
    fn number(self) -> libc::c_int {
        match self {
            Self::Interrupt => libc::SIGINT,
            Self::Terminate => libc::SIGTERM,
            Self::Hangup => libc::SIGHUP,
            Self::Kill => libc::SIGKILL,
        }
    }

    fn from_number(number: libc::c_int) -> Option<Self> {
        match number {
            libc::SIGINT => Some(Self::Interrupt),
            libc::SIGTERM => Some(Self::Terminate),
            libc::SIGHUP => Some(Self::Hangup),
            libc::SIGKILL => Some(Self::Kill),
            _ => None,
        }
    }
}

/// A set of signals (a `sigset_t`) to block and wait for.
#[derive(Clone, Copy)]
pub struct SignalSet {
    set: libc::sigset_t,
}

impl std::fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<Signal> = [Signal::Interrupt, Signal::Terminate, Signal::Hangup]
            .into_iter()
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
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the sigset_t the pointer refers to; it cannot fail for a
        // valid pointer.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: sigemptyset above initialised every byte of the set.
        let set = unsafe { set.assume_init() };
        let mut set = Self { set };
        for signal in [Signal::Interrupt, Signal::Terminate, Signal::Hangup] {
            set.add(signal);
        }
        set
    }

    fn add(&mut self, signal: Signal) {
        // SAFETY: `self.set` is an initialised sigset_t and the signal number is a valid one, so
        // sigaddset cannot fail.
        unsafe { libc::sigaddset(&mut self.set, signal.number()) };
    }

    /// Whether `signal` is in the set.
    #[must_use]
    pub fn contains(&self, signal: Signal) -> bool {
        // SAFETY: `self.set` is an initialised sigset_t; sigismember only reads it.
        unsafe { libc::sigismember(&self.set, signal.number()) == 1 }
    }

    /// Blocks the set in the calling thread (and so in every thread it spawns afterwards), so that these
    /// signals stay pending until [`SignalSet::wait`] takes them.
    pub fn block_in_thread(&self) -> io::Result<()> {
        // SAFETY: `self.set` is an initialised sigset_t; the old mask is not requested (null).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.set, std::ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// Waits until one of the signals of the set is pending and takes it. The set must be blocked in every
    /// thread of the process (see [`SignalSet::block_in_thread`]), otherwise the default action may kill
    /// the process first.
    pub fn wait(&self) -> io::Result<Signal> {
        let mut number: libc::c_int = 0;
        // SAFETY: `self.set` is an initialised sigset_t and `number` a valid place for the result.
        let rc = unsafe { libc::sigwait(&self.set, &mut number) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Signal::from_number(number).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sigwait returned signal {number}"),
            )
        })
    }
}

/// Sends `signal` to the process `pid` (kill(2)). Only positive pids are accepted: process groups and
/// "every process" (0, -1, negative values) are refused so that a wrong value cannot hit other programs.
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {pid}")))?;
    // SAFETY: kill takes plain integers; `pid` is a single positive process id.
    crate::sys::cvt(unsafe { libc::kill(pid, signal.number()) }).map(drop)
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
            raise_hangup();
            set.wait().expect("wait")
        });
        assert_eq!(handle.join().expect("join"), Signal::Hangup);
    }

    fn raise_hangup() {
        // SAFETY: raise sends SIGHUP to the calling thread, which blocks it, so it stays pending.
        let rc = unsafe { libc::raise(libc::SIGHUP) };
        assert_eq!(rc, 0);
    }

    #[test]
    fn send_refuses_pid_zero() {
        let err = send(0, Signal::Terminate).expect_err("pid 0 must be refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
