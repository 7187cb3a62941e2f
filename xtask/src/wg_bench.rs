//! The WireGuard table of `cargo xtask bench` (alone: `cargo xtask bench --wireguard`) and its short
//! version in `cargo xtask demo`: userspace WireGuard endpoints X <-> X, iperf3 TCP through the tunnel.
//!
//! ```text
//!   namespace A                                                     namespace B
//!   10.77.0.1 -> wgA [endpoint X] -> veth 10.78.0.1 ~ 10.78.0.2 -> [endpoint X] wgB -> 10.77.0.2
//! ```
//!
//! The same two namespaces and veth underlay for every implementation: tun-wg, tun-wg `--no-offload`,
//! wireguard-go (the newest build: `WIREGUARD_GO=path`, else `../shared/tools/wireguard-go` beside the
//! workspace), Debian's wireguard-go, and boringtun-cli 0.7.1 (`cargo install`ed into the target directory).
//! Each measurement starts both endpoints afresh, waits for a ping through the tunnel (the handshake is
//! done), then runs iperf3. Never pinned: users do not pin, and the two endpoints, iperf3 and the kernel
//! share the cores as the scheduler sees fit. Rounds are interleaved and ratios taken within a round, as in
//! the forwarder table; the CPU column is both endpoints' processes together.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tun_test_support::signal::Signal;

use crate::bench::pick;
use crate::measure::{Plan, TESTS, in_rounds};
use crate::netns::run as output_of;
use crate::netns::{
    Spawned, clean_up_on_signal, ensure_installed, require_root, sweep_stale_namespaces, wait_until,
};
use crate::procstat::{CpuTime, CpuUse, ticks_per_second};
use crate::traffic::{IperfClient, IperfServer, TcpTest};
use crate::tunnel::{Pair, target_dir};
use tun_test_support::topology::{A4, A6, B4, B6};

/// Underlay (veth) addresses of A and B: the endpoints' UDP goes between these.
const UNDER_A: &str = "10.78.0.1";
/// See [`UNDER_A`].
const UNDER_B: &str = "10.78.0.2";
/// The UDP port of both endpoints (each in its own namespace).
const PORT: u16 = 51820;
/// The tunnel's MTU, wg-quick's default.
const MTU: u32 = 1420;
/// The boringtun-cli release compared.
const BORINGTUN_VERSION: &str = "0.7.1";
/// How long an endpoint may take to come up, and the tunnel to carry its first ping.
const PATIENCE: Duration = Duration::from_secs(15);

/// The implementations compared, in the order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Implementation {
    /// This project's endpoint, TUN offloads and UDP GSO/GRO.
    TunWg,
    /// The same without TUN offloads: one packet per TUN read and write.
    TunWgNoOffload,
    /// The newest wireguard-go (TUN offloads, UDP GSO/GRO): the one to beat.
    WireguardGo,
    /// Debian's wireguard-go (0.0.20220316, before offloads).
    DebianWireguardGo,
    /// boringtun-cli 0.7.1.
    Boringtun,
}

impl Implementation {
    /// Every implementation, in the order of the table.
    pub(crate) const ALL: [Self; 5] = [
        Self::TunWg,
        Self::TunWgNoOffload,
        Self::WireguardGo,
        Self::DebianWireguardGo,
        Self::Boringtun,
    ];

    /// How the table names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::TunWg => "(1) tun-wg",
            Self::TunWgNoOffload => "(2) tun-wg --no-offload",
            Self::WireguardGo => "(3) wireguard-go",
            Self::DebianWireguardGo => "(4) wireguard-go, Debian",
            Self::Boringtun => "(5) boringtun-cli 0.7.1",
        }
    }

    fn is_tun_wg(self) -> bool {
        matches!(self, Self::TunWg | Self::TunWgNoOffload)
    }
}

/// The program of each implementation, or why there is none.
#[derive(Debug)]
pub(crate) struct Programs {
    tun_wg: PathBuf,
    wireguard_go: Result<PathBuf, String>,
    debian_wireguard_go: Result<PathBuf, String>,
    boringtun: Result<PathBuf, String>,
}

impl Programs {
    /// Builds tun-wg (release) and finds the others; boringtun-cli is installed into the target directory
    /// when `install` says so (minutes of compiling), else used only if an earlier run installed it.
    fn find(install: bool) -> Result<Self, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("xtask: building tun-wg (release)...");
        output_of(
            Command::new(&cargo)
                .args(["build", "--release", "--quiet", "-p", "tun-wg"])
                .stderr(Stdio::inherit()),
        )?;
        let target = target_dir(&cargo)?;
        let tun_wg = target.join("release").join("tun-wg");
        if !tun_wg.is_file() {
            return Err(format!("{} was not built", tun_wg.display()));
        }
        let debian_wireguard_go = ensure_installed("wireguard-go", "wireguard-go")
            .map(|()| PathBuf::from("wireguard-go"));
        Ok(Self {
            tun_wg,
            wireguard_go: newest_wireguard_go(),
            debian_wireguard_go,
            boringtun: boringtun(&cargo, &target, install),
        })
    }

    pub(crate) fn of(&self, kind: Implementation) -> Result<&Path, &str> {
        let found = match kind {
            Implementation::TunWg | Implementation::TunWgNoOffload => return Ok(&self.tun_wg),
            Implementation::WireguardGo => &self.wireguard_go,
            Implementation::DebianWireguardGo => &self.debian_wireguard_go,
            Implementation::Boringtun => &self.boringtun,
        };
        found.as_deref().map_err(String::as_str)
    }
}

/// `WIREGUARD_GO`, else `../shared/tools/wireguard-go` beside the workspace.
fn newest_wireguard_go() -> Result<PathBuf, String> {
    let path = match std::env::var_os("WIREGUARD_GO") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/wireguard-go"),
    };
    if path.is_file() {
        Ok(path.canonicalize().unwrap_or(path))
    } else {
        Err(format!(
            "{} not found (WIREGUARD_GO=path names a build)",
            path.display()
        ))
    }
}

/// boringtun-cli in `TARGET/boringtun-cli/bin`, installed there by `cargo install` when `install`.
fn boringtun(cargo: &str, target: &Path, install: bool) -> Result<PathBuf, String> {
    let root = target.join("boringtun-cli");
    let program = root.join("bin").join("boringtun-cli");
    if program.is_file() {
        return Ok(program);
    }
    if !install {
        return Err("not installed (`cargo xtask bench --wireguard` installs it)".into());
    }
    eprintln!(
        "xtask: installing boringtun-cli {BORINGTUN_VERSION} into {} (a few minutes)...",
        root.display()
    );
    output_of(
        Command::new(cargo)
            .args([
                "install",
                "--quiet",
                "--locked",
                "boringtun-cli",
                "--version",
                BORINGTUN_VERSION,
                "--root",
            ])
            .arg(&root)
            .stderr(Stdio::inherit()),
    )
    .map_err(|e| format!("cargo install boringtun-cli: {e}"))?;
    Ok(program)
}

/// `PROGRAM --version`'s version word (`v0.0.20250522`, `0.7.1`), or `?`.
fn version_of(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find(|w| {
                    w.trim_start_matches('v')
                        .starts_with(|c: char| c.is_ascii_digit())
                })
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

/// One end of the tunnel: its namespace's addresses and keys.
#[derive(Debug, Clone)]
struct Side {
    /// Interface name; the configuration socket `/var/run/wireguard/NAME.sock` is shared by all
    /// namespaces, so the two sides (and concurrent runs) need names of their own.
    name: String,
    private_key: String,
    peer_public_key: String,
    inner4: std::net::Ipv4Addr,
    inner6: std::net::Ipv6Addr,
    peer_inner4: std::net::Ipv4Addr,
    peer_inner6: std::net::Ipv6Addr,
    peer_underlay: &'static str,
}

impl Side {
    /// The configuration in `wg setconf`'s format, and with `tun_wg` the `[Interface]` lines tun-wg's
    /// `--config` also takes (addresses, MTU).
    fn config(&self, tun_wg: bool) -> String {
        let mut text = format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {PORT}\n",
            self.private_key
        );
        if tun_wg {
            let _ = writeln!(
                text,
                "Address = {}/24, {}/64\nMTU = {MTU}",
                self.inner4, self.inner6
            );
        }
        let _ = write!(
            text,
            "\n[Peer]\nPublicKey = {}\nEndpoint = {}:{PORT}\nAllowedIPs = {}/32, {}/128\n",
            self.peer_public_key, self.peer_underlay, self.peer_inner4, self.peer_inner6
        );
        text
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.name))
    }
}

/// A key pair from `wg genkey | wg pubkey`.
fn key_pair() -> Result<(String, String), String> {
    let private = output_of(Command::new("wg").arg("genkey"))?
        .trim()
        .to_owned();
    let public = output_of(
        Command::new("sh")
            .args(["-c", "printf '%s\\n' \"$1\" | wg pubkey", "sh"])
            .arg(&private),
    )?
    .trim()
    .to_owned();
    Ok((private, public))
}

/// Both sides of the tunnel, with fresh keys; `tag` tells apart the interfaces of beds that run at once.
fn sides(tag: &str) -> Result<[Side; 2], String> {
    let (a_private, a_public) = key_pair()?;
    let (b_private, b_public) = key_pair()?;
    let id = std::process::id();
    Ok([
        Side {
            name: format!("xwg{id}{tag}a"),
            private_key: a_private,
            peer_public_key: b_public,
            inner4: A4,
            inner6: A6,
            peer_inner4: B4,
            peer_inner6: B6,
            peer_underlay: UNDER_B,
        },
        Side {
            name: format!("xwg{id}{tag}b"),
            private_key: b_private,
            peer_public_key: a_public,
            inner4: B4,
            inner6: B6,
            peer_inner4: A4,
            peer_inner6: A6,
            peer_underlay: UNDER_A,
        },
    ])
}

/// The namespaces, joined by a veth pair, and what every endpoint needs: keys, configuration files and
/// the directory for the endpoints' output (removed on drop).
#[derive(Debug)]
pub(crate) struct Bed {
    pair: Pair,
    sides: [Side; 2],
    dir: PathBuf,
}

impl Bed {
    fn create() -> Result<Self, String> {
        Self::create_tagged("")
    }

    /// A bed whose namespaces, interface names and files carry `tag`, so that two run at once.
    pub(crate) fn create_tagged(tag: &str) -> Result<Self, String> {
        let pair = Pair::create_named(false, &format!("wg{tag}"))?;
        pair.a.try_ip(&[
            "link",
            "add",
            "under",
            "type",
            "veth",
            "peer",
            "name",
            "under",
            "netns",
            pair.b.name(),
        ])?;
        for (ns, addr) in [(&pair.a, UNDER_A), (&pair.b, UNDER_B)] {
            ns.ip_batch(&[
                format!("addr add {addr}/24 dev under"),
                "link set dev under up".to_owned(),
            ])?;
        }
        let dir = std::env::temp_dir().join(format!("xtask-wg-{}{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let bed = Self {
            pair,
            sides: sides(tag)?,
            dir,
        };
        for (side, role) in bed.sides.iter().zip(["a", "b"]) {
            for (tun_wg, kind) in [(true, "tun-wg"), (false, "wg")] {
                let path = bed.dir.join(format!("{role}.{kind}.conf"));
                std::fs::write(&path, side.config(tun_wg))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        Ok(bed)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One running endpoint.
#[derive(Debug)]
struct Endpoint {
    process: Spawned,
    log: PathBuf,
    what: String,
}

impl Endpoint {
    /// Starts `kind` as side `role` ("a" or "b") in `ns` and waits for its configuration socket; the
    /// others than tun-wg are then configured with `wg setconf` and `ip`.
    fn start(
        bed: &Bed,
        programs: &Programs,
        kind: Implementation,
        role: usize,
    ) -> Result<Self, String> {
        let side = &bed.sides[role];
        let ns = if role == 0 { &bed.pair.a } else { &bed.pair.b };
        let tag = ["a", "b"][role];
        let program = programs.of(kind)?.to_string_lossy().into_owned();
        let log = bed.dir.join(format!("{tag}.log"));
        let file = |path: &Path| {
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let mut cmd = ns.command(&program);
        match kind {
            Implementation::TunWg | Implementation::TunWgNoOffload => {
                cmd.arg("--config")
                    .arg(bed.dir.join(format!("{tag}.tun-wg.conf")));
                if kind == Implementation::TunWgNoOffload {
                    cmd.arg("--no-offload");
                }
            }
            Implementation::WireguardGo | Implementation::DebianWireguardGo => {
                // Both refuse to run beside the kernel's module unless told that this is wanted.
                cmd.env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
                    .arg("-f");
            }
            Implementation::Boringtun => {
                cmd.args(["-f", "--disable-drop-privileges", "--log"])
                    .arg(bed.dir.join(format!("{tag}.boringtun.log")));
            }
        }
        cmd.arg(&side.name)
            .stdin(Stdio::null())
            .stdout(file(&log)?)
            .stderr(file(&log)?);
        let what = format!("{} ({tag})", kind.label());
        // A socket left by an endpoint that was killed would pass for this one's.
        let socket = side.socket();
        let _ = std::fs::remove_file(&socket);
        let mut endpoint = Self {
            process: Spawned::spawn(&mut cmd, &what)?,
            log,
            what,
        };
        let mut exited = false;
        let up = wait_until(PATIENCE, || {
            exited = endpoint.process.exited().is_some();
            exited || socket.exists()
        });
        if exited || !up {
            return Err(format!(
                "{} did not start: {}",
                endpoint.what,
                endpoint.output()
            ));
        }
        if !kind.is_tun_wg() {
            let conf = bed.dir.join(format!("{tag}.wg.conf"));
            output_of(ns.command("wg").args(["setconf", &side.name]).arg(&conf))
                .map_err(|e| format!("{}: wg setconf: {e}", endpoint.what))?;
            let dev = &side.name;
            ns.ip_batch(&[
                format!("link set dev {dev} mtu {MTU}"),
                format!("addr add {}/24 dev {dev}", side.inner4),
                format!("addr add {}/64 dev {dev} nodad", side.inner6),
                format!("link set dev {dev} up"),
            ])?;
        }
        Ok(endpoint)
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What it wrote, for an error message.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// SIGTERM, and waits for the exit (it removes its socket and device on the way).
    fn stop(self) -> Result<(), String> {
        let Self { process, log, what } = self;
        process.signal(Signal::Terminate)?;
        let (status, _, _) = process.wait_output(Duration::from_secs(10))?;
        if status.success() || status.code().is_none() {
            Ok(())
        } else {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            Err(format!("{what} exited with {status}: {}", output.trim()))
        }
    }
}

/// Both endpoints of one measurement, up and past their handshake.
#[derive(Debug)]
struct Link {
    a: Endpoint,
    b: Endpoint,
}

impl Link {
    fn start(bed: &Bed, programs: &Programs, kind: Implementation) -> Result<Self, String> {
        let a = Endpoint::start(bed, programs, kind, 0)?;
        let b = Endpoint::start(bed, programs, kind, 1)?;
        // The first ping waits for the handshake; a lost one is sent again.
        let deadline = Instant::now() + PATIENCE;
        let pinged = loop {
            let ok = bed
                .pair
                .a
                .command("ping")
                .args(["-c", "1", "-W", "1", "-q", &B4.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok || Instant::now() >= deadline {
                break ok;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !pinged {
            return Err(format!(
                "{}: no ping through the tunnel within {PATIENCE:?}\nA: {}\nB: {}",
                kind.label(),
                a.output(),
                b.output()
            ));
        }
        Ok(Self { a, b })
    }

    fn stop(self) -> Result<(), String> {
        let a = self.a.stop();
        let b = self.b.stop();
        a.and(b)
    }
}

/// One measurement of one implementation in one test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Receiver throughput, Gbit/s.
    pub(crate) gbits: f64,
    /// The sending endpoint's CPU (A: encrypts), % of one core.
    pub(crate) sender: CpuUse,
    /// The receiving endpoint's CPU (B: decrypts), % of one core.
    pub(crate) receiver: CpuUse,
}

impl Sample {
    /// Both endpoints' CPU, % of one core, per Gbit/s carried.
    fn cpu_per_gbit(&self) -> f64 {
        if self.gbits > 0.0 {
            (self.sender.total() + self.receiver.total()) / self.gbits
        } else {
            0.0
        }
    }
}

fn measure(
    bed: &Bed,
    programs: &Programs,
    kind: Implementation,
    test: TcpTest,
    plan: Plan,
) -> Result<Sample, String> {
    measure_with(bed, programs, kind, test, plan, &|| {})
}

/// [`measure`], calling `ready` once the tunnel is up and the iperf3 server listens, right before the
/// traffic starts (where two measurements at once meet).
pub(crate) fn measure_with(
    bed: &Bed,
    programs: &Programs,
    kind: Implementation,
    test: TcpTest,
    plan: Plan,
    ready: &dyn Fn(),
) -> Result<Sample, String> {
    let ticks = ticks_per_second();
    let link = Link::start(bed, programs, kind)?;
    let server = IperfServer::start(&bed.pair.b, None)?;
    ready();
    let client = IperfClient::start(&bed.pair.a, &server, test, plan.seconds, plan.omit, None)?;
    std::thread::sleep(Duration::from_secs(u64::from(plan.omit)));
    let start = [CpuTime::read(link.a.pid())?, CpuTime::read(link.b.pid())?];
    let finished = client.finish();
    let end = [CpuTime::read(link.a.pid())?, CpuTime::read(link.b.pid())?];
    link.stop()?;
    Ok(Sample {
        gbits: finished?,
        sender: start[0].until(&end[0], ticks),
        receiver: start[1].until(&end[1], ticks),
    })
}

/// Results of a run: samples per test, implementation and round, and what could not run.
#[derive(Debug)]
pub(crate) struct Results {
    measured: crate::results::Results<Implementation, Sample>,
    /// Implementations without a program, and why.
    unavailable: Vec<(Implementation, String)>,
}

impl Results {
    pub(crate) fn new(kinds: &[Implementation]) -> Self {
        Self {
            measured: crate::results::Results::new(kinds),
            unavailable: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, test: TcpTest, kind: Implementation, round: usize, s: Sample) {
        self.measured.record(test, kind, round, s);
    }

    /// A measurement of `kind` in `test` that failed, and why.
    pub(crate) fn fail(&mut self, test: TcpTest, kind: Implementation, why: &str) {
        self.measured.fail(test, kind, why);
    }

    /// `kind` cannot run here (its program is missing), and why.
    pub(crate) fn unavailable(&mut self, kind: Implementation, why: &str) {
        self.unavailable.push((kind, why.to_owned()));
    }
}

impl crate::results::Measurement for Sample {
    fn gbits(&self) -> f64 {
        self.gbits
    }
}

impl crate::results::Row for Implementation {
    fn label(self) -> &'static str {
        Implementation::label(self)
    }
}

/// The median of sorted `values` (the lower one of an even count, as the table's cells).
fn median_of(values: &[f64]) -> Option<f64> {
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// A target on a ratio of (1) to another implementation.
struct Target {
    other: Implementation,
    /// What is compared: throughput, or CPU per Gbit/s.
    cpu: bool,
    /// At least this (throughput), at most this (CPU).
    bound: f64,
}

const TARGETS: [Target; 4] = [
    Target {
        other: Implementation::WireguardGo,
        cpu: false,
        bound: 1.5,
    },
    Target {
        other: Implementation::Boringtun,
        cpu: false,
        bound: 4.0,
    },
    Target {
        other: Implementation::WireguardGo,
        cpu: true,
        bound: 0.6,
    },
    Target {
        other: Implementation::TunWgNoOffload,
        cpu: false,
        bound: 2.0,
    },
];

fn number(kind: Implementation) -> &'static str {
    &kind.label()[..3]
}

/// The ratio lines of one test: each target's median ratio within rounds, its rounds, and the verdict.
fn target_lines(results: &Results, test: TcpTest) -> String {
    let mut out = String::new();
    for t in &TARGETS {
        let figure: fn(&Sample) -> f64 = if t.cpu {
            Sample::cpu_per_gbit
        } else {
            |s| s.gbits
        };
        let ratios = results
            .measured
            .paired(test, Implementation::TunWg, t.other, figure);
        let Some(median) = median_of(&ratios) else {
            continue;
        };
        let (what, sign, ok) = if t.cpu {
            ("CPU/Gbit ", "<=", median <= t.bound)
        } else {
            ("", ">=", median >= t.bound)
        };
        let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        let _ = writeln!(
            out,
            "  {what}(1)/{} = {median:.2} [target {sign} {:.1}: {}] (rounds: {})",
            number(t.other),
            t.bound,
            if ok { "ok" } else { "MISSED" },
            rounds.join(" ")
        );
    }
    out
}

/// The table of medians with the ratios and targets of each test.
pub(crate) fn table(results: &Results, tests: &[TcpTest], rounds: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>7} {:>9} {:>9} {:>10}",
        "WireGuard, X <-> X", "Gbit/s", "spread", "CPU % A", "CPU % B", "CPU%/Gbit"
    );
    for &test in tests {
        out.push_str(&crate::results::test_heading(test, rounds));
        for &kind in &results.measured.kinds {
            if let Some((_, why)) = results.unavailable.iter().find(|(k, _)| *k == kind) {
                let _ = writeln!(out, "  {:<26} skipped: {why}", kind.label());
                continue;
            }
            match results.measured.median(test, kind) {
                Some((s, spread)) => {
                    let _ = writeln!(
                        out,
                        "  {:<26} {:>7.2} {:>7} {:>9.0} {:>9.0} {:>10.1}",
                        kind.label(),
                        s.gbits,
                        crate::results::spread_cell(rounds, spread),
                        s.sender.total(),
                        s.receiver.total(),
                        s.cpu_per_gbit()
                    );
                }
                None => {
                    let _ = writeln!(out, "  {:<26} {:>7}", kind.label(), "failed");
                }
            }
        }
        out.push_str(&target_lines(results, test));
    }
    out
}

/// What the columns mean, printed under the table.
pub(crate) const LEGEND: &str = "\
Gbit/s: iperf3 receiver throughput from A to B through the tunnel (A's endpoint encrypts, B's decrypts);
both endpoints are the same implementation, in namespaces A and B joined by a veth pair, unpinned.
CPU % A, CPU % B: each endpoint process (user + system) in % of one core. CPU%/Gbit: both together per
Gbit/s. Ratios are taken within each round (the implementations of a round run back to back), median over
the rounds.";

/// Measures every available implementation in every test, interleaved, `plan.rounds` times.
fn run_all(
    bed: &Bed,
    programs: &Programs,
    tests: &[TcpTest],
    kinds: &[Implementation],
    plan: Plan,
) -> Results {
    let mut results = Results::new(kinds);
    let available = available(programs, kinds, &mut results);
    in_rounds(
        &available,
        tests,
        plan.rounds,
        Implementation::label,
        |test, kind, round| match measure(bed, programs, kind, test, plan) {
            Ok(sample) => results.record(test, kind, round, sample),
            Err(e) => results.fail(test, kind, &e),
        },
    );
    results
}

/// The implementations of `kinds` whose program is here; the others are noted in `results` with the reason.
pub(crate) fn available(
    programs: &Programs,
    kinds: &[Implementation],
    results: &mut Results,
) -> Vec<Implementation> {
    kinds
        .iter()
        .copied()
        .filter(|&kind| match programs.of(kind) {
            Ok(_) => true,
            Err(why) => {
                results.unavailable(kind, why);
                false
            }
        })
        .collect()
}

/// Says which program each row runs.
fn print_programs(programs: &Programs, kinds: &[Implementation]) {
    for &kind in kinds {
        if let Ok(path) = programs.of(kind) {
            let version = if kind.is_tun_wg() {
                "this workspace, release".to_owned()
            } else {
                version_of(path)
            };
            println!("  {}: {} ({version})", kind.label(), path.display());
        }
    }
}

/// What the WireGuard table was asked for.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    plan: Plan,
    kinds: Vec<Implementation>,
    tests: Vec<TcpTest>,
    /// The first implementation beside each of the others, at the same time (`--together`).
    together: bool,
}

/// Whether `cargo xtask bench ARGS` asks for the WireGuard table alone.
pub(crate) fn only_wireguard(args: &[String]) -> bool {
    args.iter().any(|a| a == "--wireguard")
}

/// Whether `cargo xtask bench ARGS` is the full benchmark, which ends with the WireGuard table: no
/// selection of forwarders or tests, no `--together`.
pub(crate) fn in_full_bench(args: &[String]) -> bool {
    !args.iter().any(|a| {
        matches!(
            a.as_str(),
            "--only" | "--tests" | "--together" | "--wireguard"
        )
    })
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        plan: Plan {
            seconds: 5,
            omit: 1,
            rounds: 5,
        },
        kinds: Implementation::ALL.to_vec(),
        tests: TESTS[..2].to_vec(),
        together: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--wireguard" => continue,
            // Never pinned: the two endpoints and iperf3 share the cores as users run them.
            "--no-pin" => continue,
            "--together" => {
                options.together = true;
                continue;
            }
            _ => {}
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--only" => options.kinds = pick(flag, value, &Implementation::ALL)?,
            "--tests" => options.tests = pick(flag, value, &TESTS)?,
            "--time" | "--rounds" => {
                let number: u32 = value
                    .parse()
                    .map_err(|_| format!("{flag}: not a number: {value}"))?;
                match flag.as_str() {
                    "--time" if (1..=60).contains(&number) => options.plan.seconds = number,
                    "--rounds" if (1..=20).contains(&number) => options.plan.rounds = number,
                    _ => return Err(format!("{flag} {number} is out of range")),
                }
            }
            other => {
                return Err(format!(
                    "unknown option {other} (bench --wireguard takes --time S, --rounds N, --together, --only 1,2,... and --tests 1,2,...)"
                ));
            }
        }
    }
    if options.together && options.kinds.len() < 2 {
        return Err(
            "--together needs at least two implementations (the first runs beside each of the others)"
                .into(),
        );
    }
    Ok(options)
}

/// Measures and prints the table; with `install`, boringtun-cli is installed first if missing.
fn measure_and_print(options: &Options, install: bool) -> Result<(), String> {
    ensure_installed("iperf3", "iperf3")?;
    ensure_installed("wg", "wireguard-tools")?;
    ensure_installed("ping", "iputils-ping")?;
    let programs = Programs::find(install)?;
    let Options {
        plan,
        kinds,
        tests,
        together,
    } = options;
    println!(
        "\nWireGuard endpoints X <-> X across a veth pair, iperf3 through the tunnel, unpinned, {} s per \
         measurement after {} s of warm-up:",
        plan.seconds, plan.omit
    );
    print_programs(&programs, kinds);
    let results = if *together {
        println!("{}", crate::wg_together::HEADER);
        let beds = [Bed::create_tagged("x")?, Bed::create_tagged("y")?];
        crate::wg_together::run_all(&beds, &programs, tests, kinds, *plan)
    } else {
        run_all(&Bed::create()?, &programs, tests, kinds, *plan)
    };
    println!("{}", table(&results, tests, plan.rounds));
    println!("{LEGEND}");
    if *together {
        println!("{}", crate::wg_together::LEGEND);
    }
    if !results.measured.failed() {
        Ok(())
    } else {
        Err(format!(
            "some WireGuard measurements failed:\n  {}",
            results.measured.failures().join("\n  ")
        ))
    }
}

/// `cargo xtask bench --wireguard [--time S] [--rounds N] [--together] [--only 1,2,...] [--tests 1,2,...]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    require_root("cargo xtask bench --wireguard")?;
    clean_up_on_signal()?;
    sweep_stale_namespaces();
    let per_cell = options.plan.seconds + options.plan.omit + 2;
    eprintln!(
        "xtask: up to {} measurements of ~{per_cell} s ({} tests x {} implementations x {} rounds)",
        options.tests.len() * options.kinds.len() * options.plan.rounds as usize,
        options.tests.len(),
        options.kinds.len(),
        options.plan.rounds
    );
    measure_and_print(&options, true)
}

/// The WireGuard table at the end of the full `cargo xtask bench ARGS` (its `--time` and `--rounds`
/// apply), after the forwarder table has set up what both need.
pub(crate) fn after_forwarders(args: &[String]) -> Result<(), String> {
    measure_and_print(&parse_options(args)?, true)
}

/// The demo's short WireGuard table: one run of 2 s per implementation and test, without installing
/// boringtun-cli (its row is skipped, with the reason, when an earlier bench did not install it).
pub(crate) fn demo() -> Result<(), String> {
    println!(
        "WireGuard: the same TCP tests through a WireGuard tunnel between namespaces joined by a veth pair,\n\
         each side's endpoint the same implementation: tun-wg (this workspace's endpoint), tun-wg without\n\
         offloads, wireguard-go (the newest, with offloads, and Debian's) and boringtun-cli."
    );
    let options = Options {
        plan: Plan {
            seconds: 2,
            omit: 1,
            rounds: 1,
        },
        kinds: Implementation::ALL.to_vec(),
        tests: TESTS[..2].to_vec(),
        together: false,
    };
    measure_and_print(&options, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    fn sample(gbits: f64, cpu: f64) -> Sample {
        let half = CpuUse {
            user: cpu / 4.0,
            system: cpu / 4.0,
        };
        Sample {
            gbits,
            sender: half,
            receiver: half,
        }
    }

    #[test]
    fn the_wireguard_table_is_asked_for_alone_or_comes_with_the_full_bench() {
        assert!(only_wireguard(&args(&["--time", "3", "--wireguard"])));
        assert!(!only_wireguard(&args(&["--time", "3"])));
        assert!(in_full_bench(&args(&[
            "--time", "3", "--rounds", "5", "--no-pin"
        ])));
        assert!(!in_full_bench(&args(&["--only", "1,4"])));
        assert!(!in_full_bench(&args(&["--tests", "1"])));
        assert!(!in_full_bench(&args(&["--together"])));
        assert!(!in_full_bench(&args(&["--wireguard"])));
    }

    #[test]
    fn options_pick_implementations_and_tests_with_five_rounds_by_default() {
        let o = parse_options(&args(&["--wireguard"])).expect("valid");
        assert_eq!(o.plan.rounds, 5);
        assert_eq!(o.kinds, Implementation::ALL);
        assert_eq!(o.tests, TESTS[..2]);
        let o = parse_options(&args(&[
            "--wireguard",
            "--only",
            "1,3",
            "--tests",
            "2",
            "--time",
            "4",
        ]))
        .expect("valid");
        assert_eq!(
            o.kinds,
            [Implementation::TunWg, Implementation::WireguardGo]
        );
        assert_eq!(o.tests, [TESTS[1]]);
        assert_eq!(o.plan.seconds, 4);
        assert!(parse_options(&args(&["--wireguard", "--only", "6"])).is_err());
        assert!(!o.together);
        let o =
            parse_options(&args(&["--wireguard", "--together", "--only", "1,3"])).expect("valid");
        assert!(o.together);
        assert_eq!(
            o.kinds,
            [Implementation::TunWg, Implementation::WireguardGo]
        );
        // The first runs beside each of the others: one alone has no one to run beside.
        assert!(parse_options(&args(&["--wireguard", "--together", "--only", "1"])).is_err());
        assert!(parse_options(&args(&["--wireguard", "--rounds", "0"])).is_err());
        assert!(parse_options(&args(&["--wireguard", "--fast"])).is_err());
    }

    #[test]
    fn cpu_per_gbit_is_both_endpoints_over_the_throughput() {
        let s = sample(2.0, 120.0);
        assert!((s.cpu_per_gbit() - 60.0).abs() < 1e-9);
        assert_eq!(sample(0.0, 50.0).cpu_per_gbit(), 0.0);
    }

    #[test]
    fn targets_take_ratios_within_rounds() {
        // Round 1 ran slower for everyone: within each round (1) carries twice wireguard-go, while the
        // medians (4.0 / 2.2) would say less.
        let test = TESTS[0];
        let mut r = Results::new(&Implementation::ALL);
        for (round, ours, theirs) in [(0, 4.0, 2.0), (1, 2.0, 1.0), (2, 4.4, 2.2)] {
            r.record(test, Implementation::TunWg, round, sample(ours, 100.0));
            r.record(
                test,
                Implementation::WireguardGo,
                round,
                sample(theirs, 150.0),
            );
        }
        let text = table(&r, &[test], 3);
        assert!(
            text.contains("  (1)/(3) = 2.00 [target >= 1.5: ok] (rounds: 2.00 2.00 2.00)"),
            "{text}"
        );
        // CPU per Gbit/s: 100/4 against 150/2 = 0.33 in round 0.
        assert!(
            text.contains("  CPU/Gbit (1)/(3) = 0.33 [target <= 0.6: ok]"),
            "{text}"
        );
        // No boringtun-cli samples: no line for that target.
        assert!(!text.contains("(1)/(5)"), "{text}");
    }

    #[test]
    fn a_missed_target_and_a_skipped_row_are_said() {
        let test = TESTS[1];
        let mut r = Results::new(&Implementation::ALL);
        r.record(test, Implementation::TunWg, 0, sample(3.0, 100.0));
        r.record(test, Implementation::TunWgNoOffload, 0, sample(2.0, 100.0));
        r.unavailable
            .push((Implementation::Boringtun, "not installed".into()));
        let text = table(&r, &[test], 1);
        assert!(
            text.contains("(1)/(2) = 1.50 [target >= 2.0: MISSED]"),
            "{text}"
        );
        assert!(text.contains("(5) boringtun-cli 0.7.1"), "{text}");
        assert!(text.contains("skipped: not installed"), "{text}");
        assert!(text.contains("(3) wireguard-go"), "{text}");
    }

    #[test]
    fn configurations_name_the_peer_and_tun_wg_gets_addresses() {
        let side = Side {
            name: "xwg1a".into(),
            private_key: "PRIV".into(),
            peer_public_key: "PUB".into(),
            inner4: A4,
            inner6: A6,
            peer_inner4: B4,
            peer_inner6: B6,
            peer_underlay: UNDER_B,
        };
        let wg = side.config(false);
        assert!(!wg.contains("Address"), "wg setconf refuses Address: {wg}");
        assert!(wg.contains("Endpoint = 10.78.0.2:51820"), "{wg}");
        assert!(
            wg.contains("AllowedIPs = 10.77.0.2/32, fd77::2/128"),
            "{wg}"
        );
        let ours = side.config(true);
        assert!(
            ours.contains("Address = 10.77.0.1/24, fd77::1/64\nMTU = 1420"),
            "{ours}"
        );
        assert_eq!(side.socket(), Path::new("/var/run/wireguard/xwg1a.sock"));
    }
}
