//! The tunnel under test: namespaces A and B, a forwarder process that owns tunA (in A) and tunB (in B),
//! and the addresses and routes that send A's traffic for B through tunA -> forwarder -> tunB.
//!
//! ```text
//!   namespace A                          host                         namespace B
//!   10.77.0.1, fd77::1 --> tunA --> [ forwarder: a->b ] --> tunB --> 10.77.0.2, fd77::2
//!                          tunA <-- [ forwarder: b->a ] <-- tunB
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tun_test_support::signal::Signal;
use tun_test_support::topology::{A4, A6, B4, B6, DEV_A, DEV_B};

use crate::cpus::{Pinning, pinned};
use crate::netns::{NetNs, Spawned, run, wait_until};

/// Release builds of the programs the tunnel runs (all of them `tun-bench` binaries).
#[derive(Debug)]
pub(crate) struct Binaries {
    /// The library's forwarder (`tun-forward`).
    tun_forward: PathBuf,
    /// The tun-rs peer (`tun-rs-forward`).
    tun_rs: PathBuf,
    /// The checked TCP stream (`stream-check`).
    pub(crate) stream_check: PathBuf,
    /// Another build of `tun-forward` to compare against (`TUN_FORWARD_BASELINE=path`), run as forwarder 8.
    baseline: Option<PathBuf>,
}

impl Binaries {
    /// Builds the forwarders and helpers in release mode and finds them.
    pub(crate) fn build() -> Result<Self, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("xtask: building the forwarders (release)...");
        run(Command::new(&cargo)
            .args(["build", "--release", "--quiet", "-p", "tun-bench", "--bins"])
            .stderr(Stdio::inherit()))?;
        let release = target_dir(&cargo)?.join("release");
        let found = |path: PathBuf| {
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{} was not built", path.display()))
            }
        };
        Ok(Self {
            tun_forward: found(release.join("tun-forward"))?,
            tun_rs: found(release.join("tun-rs-forward"))?,
            stream_check: found(release.join("stream-check"))?,
            baseline: std::env::var_os("TUN_FORWARD_BASELINE")
                .map(PathBuf::from)
                .map(found)
                .transpose()?,
        })
    }
}

/// The target directory cargo builds into (honours CARGO_TARGET_DIR and cargo config).
pub(crate) fn target_dir(cargo: &str) -> Result<PathBuf, String> {
    let out = run(Command::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let json = out;
    let key = "\"target_directory\":\"";
    let start = json
        .find(key)
        .ok_or("cargo metadata: no target_directory")?
        + key.len();
    let end = json[start..]
        .find('"')
        .ok_or("cargo metadata: bad target_directory")?
        + start;
    Ok(PathBuf::from(json[start..end].replace("\\\\", "\\")))
}

/// The forwarders the benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarder {
    /// The library with offloads: split on read, GRO on write, batches of 128.
    Offload,
    /// The library without offloads: one packet per read and per write.
    Plain,
    /// Each raw frame (virtio header + super-packet) written unchanged: the ceiling of any TUN data path.
    Passthrough,
    /// tun-rs 2.8.16 with offloads (recv_multiple / send_multiple with its GROTable).
    TunRs,
    /// The library with offloads on tokio (`AsyncTun`), one task per direction.
    Async,
    /// tun-rs 2.8.16's tokio `AsyncDevice` with offloads, one task per direction.
    TunRsAsync,
    /// The library with offloads on multi-queue devices of 2 queues, a thread per queue and direction.
    OffloadQueues2,
    /// Another build of the library's forwarder with offloads (`TUN_FORWARD_BASELINE=path`), to compare two
    /// versions side by side (`--together --only 1,8`); never in the default set.
    Baseline,
    /// The library with offloads on TAP devices (`--layer l2`): Ethernet frames split and coalesced.
    L2Offload,
    /// The library without offloads on TAP devices: one frame per read and per write.
    L2Plain,
    /// Raw frames written unchanged between TAP devices: the ceiling of any TAP data path.
    L2Passthrough,
}

impl Forwarder {
    /// Every forwarder, in the order of the table.
    pub(crate) const ALL: [Self; 10] = [
        Self::Offload,
        Self::Plain,
        Self::Passthrough,
        Self::TunRs,
        Self::Async,
        Self::TunRsAsync,
        Self::OffloadQueues2,
        Self::L2Offload,
        Self::L2Plain,
        Self::L2Passthrough,
    ];

    /// Every forwarder `--only` can name: [`ALL`](Self::ALL) and the baseline build.
    pub(crate) const PICKABLE: [Self; 11] = [
        Self::Offload,
        Self::Plain,
        Self::Passthrough,
        Self::TunRs,
        Self::Async,
        Self::TunRsAsync,
        Self::OffloadQueues2,
        Self::Baseline,
        Self::L2Offload,
        Self::L2Plain,
        Self::L2Passthrough,
    ];

    /// How the table names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Offload => "(1) tun, offload",
            Self::Plain => "(2) tun, no offload",
            Self::Passthrough => "(3) passthrough",
            Self::TunRs => "(4) tun-rs 2.8.16",
            Self::Async => "(5) tun, async",
            Self::TunRsAsync => "(6) tun-rs 2.8.16 async",
            Self::OffloadQueues2 => "(7) tun, offload, 2 q",
            Self::Baseline => "(8) tun, offload, baseline",
            Self::L2Offload => "(9) tun L2, offload",
            Self::L2Plain => "(10) tun L2, no offload",
            Self::L2Passthrough => "(11) L2 passthrough",
        }
    }

    /// Whether it forwards with tasks on a runtime rather than one thread per direction.
    pub(crate) fn is_async(self) -> bool {
        matches!(self, Self::Async | Self::TunRsAsync)
    }

    /// Whether it is the tun-rs peer, which configures nothing itself (its links are set up with `ip`).
    pub(crate) fn is_peer(self) -> bool {
        matches!(self, Self::TunRs | Self::TunRsAsync)
    }

    fn command(self, bins: &Binaries, a: &NetNs, b: &NetNs, cpu: Option<&str>) -> Command {
        let program = match self {
            _ if self.is_peer() => &bins.tun_rs,
            // Forwarder 8 is refused while parsing the options unless TUN_FORWARD_BASELINE names it.
            Self::Baseline => bins.baseline.as_ref().unwrap_or(&bins.tun_forward),
            _ => &bins.tun_forward,
        };
        let (program, pin) = pinned(cpu, &program.to_string_lossy());
        let mut cmd = Command::new(program);
        cmd.args(pin);
        cmd.args([
            "--netns-a",
            a.name(),
            "--name-a",
            DEV_A,
            "--netns-b",
            b.name(),
            "--name-b",
            DEV_B,
        ]);
        if !self.is_peer() {
            // Our forwarder brings its devices up with their addresses and routes through the library.
            for (side, local4, peer4, local6, peer6) in
                [("a", A4, B4, A6, B6), ("b", B4, A4, B6, A6)]
            {
                cmd.args([
                    format!("--address-{side}"),
                    format!("{local4}/32"),
                    format!("--address-{side}"),
                    format!("{local6}/128"),
                    format!("--route-{side}"),
                    format!("{peer4}/32"),
                    format!("--route-{side}"),
                    format!("{peer6}/128"),
                ]);
            }
        }
        match self {
            Self::Plain => {
                cmd.arg("--no-offload");
            }
            Self::Passthrough => {
                cmd.arg("--passthrough");
            }
            Self::Async | Self::TunRsAsync => {
                cmd.arg("--async");
            }
            Self::OffloadQueues2 => {
                cmd.args(["--queues", "2"]);
            }
            // The same addresses and host routes: on Ethernet each side resolves the other's address (ARP,
            // NDP) through the forwarder, which passes frames as they are.
            Self::L2Offload => {
                cmd.args(["--layer", "l2"]);
            }
            Self::L2Plain => {
                cmd.args(["--layer", "l2", "--no-offload"]);
            }
            Self::L2Passthrough => {
                cmd.args(["--layer", "l2", "--passthrough"]);
            }
            Self::Offload | Self::TunRs | Self::Baseline => {}
        }
        cmd
    }
}

/// Counters a forwarder printed for one direction when it stopped.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirectionReport {
    fields: BTreeMap<String, u64>,
}

impl DirectionReport {
    /// A counter by name (`packets`, `bytes`, `reads`, `super-packets`, `errors`, ...), 0 if absent.
    pub(crate) fn get(&self, name: &str) -> u64 {
        self.fields.get(name).copied().unwrap_or(0)
    }
}

/// What a forwarder printed on exit: one report per direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct ForwarderReport {
    /// Direction A -> B (the bulk data of the benchmark).
    pub(crate) a_to_b: DirectionReport,
    /// Direction B -> A (acknowledgements).
    pub(crate) b_to_a: DirectionReport,
}

/// Parses lines such as `a->b: packets 10 bytes 15000 reads 1 super-packets 1 errors 0`.
pub(crate) fn parse_report(text: &str) -> Result<ForwarderReport, String> {
    let mut report = ForwarderReport::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((direction, rest)) = line.split_once(':') else {
            continue;
        };
        let target = match direction.trim() {
            "a->b" => &mut report.a_to_b,
            "b->a" => &mut report.b_to_a,
            _ => continue,
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        for pair in words.chunks(2) {
            if let [name, value] = pair {
                let value = value
                    .parse()
                    .map_err(|_| format!("bad counter in forwarder output: {line}"))?;
                target.fields.insert((*name).to_owned(), value);
            }
        }
        seen += 1;
    }
    if seen == 2 {
        Ok(report)
    } else {
        Err(format!("forwarder printed no counters:\n{text}"))
    }
}

/// Namespaces A and B, created once and reused by every forwarder.
#[derive(Debug)]
pub(crate) struct Pair {
    /// Namespace A: the traffic sender.
    pub(crate) a: NetNs,
    /// Namespace B: the traffic receiver.
    pub(crate) b: NetNs,
    /// CPUs for the forwarder and the traffic, when the machine has enough to separate them.
    pub(crate) pinning: Option<Pinning>,
}

impl Pair {
    /// Creates both namespaces; `pin` pins the forwarder and the traffic to CPUs of their own where the
    /// machine allows it.
    pub(crate) fn create(pin: bool) -> Result<Self, String> {
        Self::create_named(pin, "")
    }

    /// [`create`](Self::create) with `suffix` on the namespaces' names, for a second pair beside the first.
    pub(crate) fn create_named(pin: bool, suffix: &str) -> Result<Self, String> {
        Ok(Self {
            a: NetNs::create(&format!("a{suffix}"))?,
            b: NetNs::create(&format!("b{suffix}"))?,
            pinning: if pin { Pinning::detect() } else { None },
        })
    }
}

/// A running forwarder with both devices up and addressed.
#[derive(Debug)]
pub(crate) struct Tunnel {
    process: Spawned,
    kind: Forwarder,
}

impl Tunnel {
    /// Starts `kind` between the namespaces of `pair` and waits until its devices are up with addresses and
    /// routes (ours configure their own; the peer's are configured here with `ip`).
    pub(crate) fn start(bins: &Binaries, kind: Forwarder, pair: &Pair) -> Result<Self, String> {
        let cpu = pair.pinning.as_ref().map(|p| p.forwarder.as_str());
        let mut cmd = kind.command(bins, &pair.a, &pair.b, cpu);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut process = Spawned::spawn(&mut cmd, kind.label())?;
        let mut exited = None;
        let up = wait_until(Duration::from_secs(10), || {
            exited = process.exited();
            exited.is_some() || (pair.a.has_link(DEV_A) && pair.b.has_link(DEV_B))
        });
        if exited.is_some() || !up {
            let why = match process.wait_output(Duration::from_secs(2)) {
                Ok((status, _, stderr)) => format!("exited ({status}): {}", stderr.trim()),
                Err(e) => e,
            };
            return Err(format!(
                "{} did not create its devices: {why}",
                kind.label()
            ));
        }
        if kind.is_peer() {
            // The peer's forwarder configures nothing itself.
            configure(&pair.a, DEV_A, (A4, A6), (B4, B6))?;
            configure(&pair.b, DEV_B, (B4, B6), (A4, A6))?;
        }
        // The IPv6 route to the peer is the last thing configured, by either.
        let configured = wait_until(Duration::from_secs(10), || {
            pair.a.has_route(DEV_A, &format!("{B6}/128"))
                && pair.b.has_route(DEV_B, &format!("{A6}/128"))
        });
        if !configured {
            return Err(format!("{} did not configure its devices", kind.label()));
        }
        Ok(Self { process, kind })
    }

    /// The forwarder's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Asks the forwarder to stop (SIGTERM) and returns what it printed.
    pub(crate) fn stop(self) -> Result<ForwarderReport, String> {
        self.process.signal(Signal::Terminate)?;
        let label = self.kind.label();
        let (status, stdout, stderr) = self.process.wait_output(Duration::from_secs(10))?;
        if !status.success() {
            return Err(format!("{label} exited with {status}: {}", stderr.trim()));
        }
        parse_report(&stdout).map_err(|e| format!("{label}: {e}"))
    }
}

/// Brings `dev` up with the local addresses and host routes to the peer's addresses through it, for a
/// forwarder that does not do it itself.
fn configure(
    ns: &NetNs,
    dev: &str,
    (local4, local6): (Ipv4Addr, Ipv6Addr),
    (peer4, peer6): (Ipv4Addr, Ipv6Addr),
) -> Result<(), String> {
    ns.ip_batch(&[
        format!("link set dev {dev} up"),
        format!("addr add {local4}/32 dev {dev}"),
        format!("route add {peer4}/32 dev {dev}"),
        format!("addr add {local6}/128 dev {dev} nodad"),
        format!("route add {peer6}/128 dev {dev}"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_of_both_directions_are_parsed() {
        let text = "a->b: packets 41 bytes 60100 reads 2 super-packets 1 errors 0\nb->a: packets 3 bytes 156 reads 3 super-packets 0 errors 0\n";
        let report = parse_report(text).expect("valid report");
        assert_eq!(report.a_to_b.get("packets"), 41);
        assert_eq!(report.a_to_b.get("super-packets"), 1);
        assert_eq!(report.b_to_a.get("bytes"), 156);
        assert_eq!(report.b_to_a.get("missing"), 0);
    }

    #[test]
    fn a_report_without_both_directions_is_an_error() {
        assert!(parse_report("a->b: packets 1 bytes 2\n").is_err());
        assert!(parse_report("a->b: packets x\nb->a: packets 1\n").is_err());
    }
}
