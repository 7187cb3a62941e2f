//! Network namespaces made for one test or one run, deleted when dropped whatever happens.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A network namespace made by `ip netns add`, with its loopback up, deleted by `ip netns del` on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    fd: OwnedFd,
}

impl NetNs {
    /// A fresh namespace `tuntest-PID-N`; panics when it cannot be made.
    pub fn new() -> NetNs {
        Self::tagged("tuntest")
    }

    /// A fresh namespace `TAG-PID-N`: tests of one binary run in parallel, so each gets a number of its own.
    /// Panics when it cannot be made.
    pub fn tagged(tag: &str) -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{tag}-{}-{n}", std::process::id());
        Self::create(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Makes the namespace `name` and brings its loopback up; an error names the step that failed.
    pub fn create(name: String) -> Result<NetNs, String> {
        run(Command::new("ip").args(["netns", "add", &name]))
            .map_err(|e| format!("ip netns add {name}: {e}"))?;
        // From here on the namespace exists: remove it again on every failure.
        let fd = match open_named(&name) {
            Ok(fd) => fd,
            Err(e) => {
                delete_namespace(&name);
                return Err(format!("open namespace {name}: {e}"));
            }
        };
        let ns = NetNs { name, fd };
        ns.try_ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, for `setns`.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Runs `f` on a fresh thread that entered this namespace: devices and sockets it creates live here.
    /// The calling thread's own namespace never changes: the thread is scoped and ends before this returns.
    /// Panics when the namespace cannot be entered, and with `f`'s panic if it panics.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let entered = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(&self.fd, nix::sched::CloneFlags::CLONE_NEWNET)?;
                    Ok::<_, nix::Error>(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        entered.unwrap_or_else(|e| panic!("enter namespace {}: {e}", self.name))
    }

    /// `ip -n NAME ARGS...`; panics with ip's message when it fails. Returns its standard output.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {}: {e}", self.name, args.join(" ")))
    }

    /// `ip -n NAME ARGS...`, its standard output or its error message.
    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Runs a batch of `ip` commands (one per line) inside the namespace with a single process.
    pub fn ip_batch(&self, lines: &[String]) -> Result<(), String> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ip -batch: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(lines.join("\n").as_bytes())
                .map_err(|e| format!("ip -batch: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("ip -batch: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip -n {} -batch failed: {}\n{}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim(),
                lines.join("\n")
            ))
        }
    }

    /// Starts `ip -n NAME -batch` over `commands` (one `ip` command a line) without waiting for it.
    pub fn spawn_ip_batch(&self, commands: &str) -> IpBatch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{}-{n}.batch", self.name));
        std::fs::write(&path, commands).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let child = Command::new("ip")
            .args(["-n", &self.name, "-batch"])
            .arg(&path)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn ip -batch: {e}"));
        IpBatch { child, path }
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program ARGS...` inside the namespace; its standard output or error.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, String> {
        run(self.command(program).args(args))
    }

    /// Every link of the namespace, from `ip -j link`.
    pub fn links(&self) -> Vec<Link> {
        let out = self.ip(&["-j", "link", "show"]);
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j link: {e}: {out}"));
        value
            .as_array()
            .map(|links| links.iter().filter_map(Link::from_json).collect())
            .unwrap_or_default()
    }

    /// The link named `name`, if it exists.
    pub fn link(&self, name: &str) -> Option<Link> {
        self.links().into_iter().find(|l| l.name == name)
    }

    /// Whether an interface named `dev` exists in this namespace.
    pub fn has_link(&self, dev: &str) -> bool {
        self.try_ip(&["link", "show", "dev", dev]).is_ok()
    }

    /// How many queues of the TUN device `dev` the kernel steers packets to: its transmit queues in the
    /// namespace's sysfs, one per attached queue (the kernel never shows fewer than one). Panics when `dev`
    /// does not exist.
    pub fn attached_queues(&self, dev: &str) -> usize {
        let listing = self
            .exec("ls", &[&format!("/sys/class/net/{dev}/queues")])
            .unwrap_or_else(|e| panic!("queues of {dev} in {}: {e}", self.name));
        listing.lines().filter(|l| l.starts_with("tx-")).count()
    }

    /// The interface index of `dev`; panics when there is no such interface.
    pub fn index_of(&self, dev: &str) -> u32 {
        self.link(dev)
            .unwrap_or_else(|| panic!("no link {dev} in {}", self.name))
            .index
    }

    /// Whether `dev` has a route to exactly `prefix` (`ip route show dev DEV PREFIX` lists one).
    pub fn has_route(&self, dev: &str, prefix: &str) -> bool {
        // Without -6, `ip route show` lists IPv4 routes only.
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        self.try_ip(&[family, "route", "show", "dev", dev, prefix])
            .is_ok_and(|out| !out.trim().is_empty())
    }

    /// Packets the kernel received on `dev` (`ip -s` `rx packets`). On a TUN device each write counts once,
    /// so a coalesced super-packet is one packet here.
    pub fn rx_packets(&self, dev: &str) -> u64 {
        let out = self.ip(&["-j", "-s", "link", "show", "dev", dev]);
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j -s link: {e}: {out}"));
        value
            .pointer("/0/stats64/rx/packets")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("no rx packets for {dev} in {out}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The inode of the network namespace the calling thread is in.
    fn current_namespace() -> u64 {
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
    }

    #[test]
    #[ignore = "privileged: run by cargo xtask test as root"]
    fn run_in_runs_inside_the_namespace_and_leaves_the_caller_where_it_was() {
        let before = current_namespace();
        let ns = NetNs::new();
        let file = std::fs::File::from(ns.fd().try_clone().unwrap());
        let inside = ns.run_in(current_namespace);
        assert_eq!(inside, file.metadata().unwrap().ino());
        assert_ne!(inside, before);
        assert_eq!(current_namespace(), before);
    }

    #[test]
    fn named_namespace_with_slash_is_refused() {
        for bad in ["a/b", "", ".", ".."] {
            assert_eq!(
                open_named(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// A running `ip -batch`: killed if still running, and its command file removed, when dropped.
#[derive(Debug)]
pub struct IpBatch {
    child: Child,
    path: PathBuf,
}

impl IpBatch {
    /// Whether `ip` is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait for ip").is_none()
    }

    /// Calls `sample` every millisecond until `ip` exits (panics after `timeout`); whether it succeeded.
    pub fn finish_sampling(&mut self, timeout: Duration, mut sample: impl FnMut()) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            sample();
            if let Some(status) = self.child.try_wait().expect("wait for ip") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "ip -batch did not finish in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for IpBatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `count` pairs of `link set LINK up` / `link set LINK down`, as `ip -batch` commands.
pub fn flaps(link: &str, count: usize) -> String {
    format!("link set {link} up\nlink set {link} down\n").repeat(count)
}

/// Where `ip netns add NAME` bind-mounts its namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Opens the namespace named `name` as `ip netns` knows it (`/run/netns/NAME`), for `setns` (or
/// `tun_sys::netns::run_in`).
pub fn open_named(name: &str) -> io::Result<OwnedFd> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid network namespace name",
        ));
    }
    // std opens with O_CLOEXEC.
    Ok(std::fs::File::open(Path::new(NETNS_RUN_DIR).join(name))?.into())
}

/// Moves the calling thread into a new, empty network namespace (`unshare(CLONE_NEWNET)`).
pub fn unshare() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Deletes the namespace `name`, retrying briefly: one whose processes were just killed can still be busy.
pub fn delete_namespace(name: &str) {
    for _ in 0..20 {
        let deleted = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if deleted || !std::path::Path::new("/run/netns").join(name).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("warning: could not delete network namespace {name}");
}

/// One interface as `ip -j link` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `ifname`.
    pub name: String,
    /// `ifindex`.
    pub index: u32,
    /// `mtu`.
    pub mtu: u32,
    /// `flags` (`UP`, `LOWER_UP`, `POINTOPOINT`, ...).
    pub flags: Vec<String>,
    /// `operstate` (`UP`, `DOWN`, `UNKNOWN`).
    pub operstate: String,
    /// `txqlen`.
    pub txqlen: u32,
    /// `address`: the link-layer address as `ip` prints it (`aa:bb:cc:dd:ee:ff` for Ethernet; empty when the
    /// link has none, as a TUN device).
    pub address: String,
}

impl Link {
    fn from_json(v: &serde_json::Value) -> Option<Link> {
        let text = |key: &str| v.get(key).and_then(|s| s.as_str()).map(str::to_owned);
        let number = |key: &str| v.get(key)?.as_u64().and_then(|n| u32::try_from(n).ok());
        Some(Link {
            name: text("ifname")?,
            index: number("ifindex")?,
            mtu: number("mtu")?,
            flags: v
                .get("flags")
                .and_then(|f| f.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            operstate: text("operstate").unwrap_or_default(),
            txqlen: number("txqlen").unwrap_or_default(),
            address: text("address").unwrap_or_default(),
        })
    }

    /// True when the interface is administratively up.
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

/// Runs `cmd` to completion with no standard input; its standard output, or an error with its standard
/// error.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
