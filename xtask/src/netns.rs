//! Network namespaces and child processes that are cleaned up whatever happens.
//!
//! Every namespace and child process is recorded in one registry. Normal exits and errors clean up through
//! the `Drop` guards below; Ctrl-C (SIGINT), SIGTERM and SIGHUP are taken by a watcher thread that kills the
//! recorded children, deletes the recorded namespaces and exits. Namespaces left behind by a run that was
//! killed outright (SIGKILL) are swept by the next run.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
pub(crate) use tun_test_support::{delete_namespace, run, wait_until};

use tun_test_support::signal::{Signal, SignalSet};

/// Prefix of every namespace this tool creates; the creating process's pid follows it.
const PREFIX: &str = "xtask-";

#[derive(Default)]
struct Registry {
    namespaces: Vec<String>,
    pids: Vec<u32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    namespaces: Vec::new(),
    pids: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Blocks the termination signals in this thread (and so in every thread spawned later) and starts the
/// watcher that cleans up and exits when one arrives. Call it first, before any namespace or process exists.
pub(crate) fn clean_up_on_signal() -> Result<(), String> {
    let signals = SignalSet::termination();
    signals
        .block_in_thread()
        .map_err(|e| format!("block signals: {e}"))?;
    std::thread::Builder::new()
        .name("signal watcher".into())
        .spawn(move || {
            let signal = signals
                .wait()
                .map_or_else(|e| e.to_string(), |s| format!("{s:?}"));
            eprintln!("\nxtask: {signal}: stopping, cleaning up namespaces and processes");
            clean_up_everything();
            std::process::exit(130);
        })
        .map_err(|e| format!("spawn the signal watcher: {e}"))?;
    Ok(())
}

/// Kills every recorded child and deletes every recorded namespace. Holds the registry lock throughout, so
/// that no new namespace or child can appear half-way.
fn clean_up_everything() {
    let mut registry = registry();
    for pid in registry.pids.drain(..) {
        let _ = tun_test_support::signal::send(pid, Signal::Kill);
    }
    for name in registry.namespaces.drain(..) {
        delete_namespace(&name);
    }
}

/// Deletes namespaces of earlier runs whose process no longer exists (a run killed with SIGKILL cannot
/// clean up after itself).
pub(crate) fn sweep_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            delete_namespace(name);
        }
    }
}

/// A network namespace created for this run, recorded for the signal watcher and deleted on drop.
#[derive(Debug)]
pub(crate) struct NetNs(tun_test_support::NetNs);

impl NetNs {
    /// Creates `xtask-<pid>-<role>` with its loopback up.
    pub(crate) fn create(role: &str) -> Result<Self, String> {
        let name = format!("{PREFIX}{}-{role}", std::process::id());
        // Recorded under the lock, so that the watcher never misses a namespace that exists.
        let mut registry = registry();
        let ns = tun_test_support::NetNs::create(name.clone())?;
        registry.namespaces.push(name);
        Ok(Self(ns))
    }
}

impl std::ops::Deref for NetNs {
    type Target = tun_test_support::NetNs;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // The namespace itself is deleted right after, when the inner guard drops.
        registry().namespaces.retain(|n| n != self.0.name());
    }
}

/// A child process killed (SIGKILL) and reaped on drop unless it has already exited.
#[derive(Debug)]
pub(crate) struct Spawned {
    child: Child,
    what: String,
}

impl Spawned {
    /// Spawns `cmd` and records it for the signal watcher.
    pub(crate) fn spawn(cmd: &mut Command, what: &str) -> Result<Self, String> {
        let mut registry = registry();
        let child = cmd.spawn().map_err(|e| format!("start {what}: {e}"))?;
        registry.pids.push(child.id());
        Ok(Self {
            child,
            what: what.to_owned(),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (and then how).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the process.
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), String> {
        tun_test_support::signal::send(self.pid(), signal)
            .map_err(|e| format!("signal {}: {e}", self.what))
    }

    /// Waits up to `timeout` for the process to exit, then returns its status and whatever it wrote to
    /// the pipes it was given. After the timeout it is killed and that is an error.
    pub(crate) fn wait_output(
        mut self,
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, String, String), String> {
        // Drain the pipes on helper threads so that a chatty child never blocks on a full pipe.
        let stdout = self.child.stdout.take().map(drain);
        let stderr = self.child.stderr.take().map(drain);
        let mut status = None;
        wait_until(timeout, || {
            status = self.exited();
            status.is_some()
        });
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(format!("{} did not finish within {timeout:?}", self.what));
        };
        let join = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Ok((status, join(stdout), join(stderr)))
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut bytes = Vec::new();
        if pipe.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = self.child.id();
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        registry().pids.retain(|p| *p != pid);
    }
}

/// Fails unless the process may create namespaces and TUN devices.
pub(crate) fn require_root(what: &str) -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_NET_ADMIN: u64 = 1 << 12;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    if eff & CAP_NET_ADMIN != 0 && eff & CAP_SYS_ADMIN != 0 {
        Ok(())
    } else {
        Err(format!(
            "{what} creates network namespaces and TUN devices: run it as root (needs CAP_NET_ADMIN and CAP_SYS_ADMIN)"
        ))
    }
}

/// Makes sure `program` is installed, installing Debian's `package` with apt-get if it is missing.
pub(crate) fn ensure_installed(program: &str, package: &str) -> Result<(), String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Ok(());
    }
    eprintln!("xtask: {program} is missing; installing the Debian package {package}");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}
