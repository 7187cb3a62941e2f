//! `cargo xtask bench`: TCP bulk throughput through each forwarder, side by side in one run.
//!
//! For every test (TCP v4/v6, 1 and 4 streams) the seven forwarders run one after the other, and the whole
//! sequence repeats `--rounds` times (starting with a different forwarder each round); each cell of the
//! table is the round with the median throughput. Traffic comes from iperf3 (Debian's package).

use std::fmt::Write as _;
use std::time::Duration;

use crate::netns::{clean_up_on_signal, ensure_installed, require_root, sweep_stale_namespaces};
use crate::procstat::{CpuTime, CpuUse, SyscallCounts, ticks_per_second};
use crate::traffic::{IperfClient, IperfServer, TcpTest};
use crate::tunnel::{Binaries, Forwarder, Pair, Tunnel};

/// Name of the forwarding thread of direction A -> B in every forwarder.
const A_TO_B_THREAD: &str = "fwd a->b";

/// The four TCP tests of the full benchmark.
pub(crate) const TESTS: [TcpTest; 4] = [
    TcpTest {
        v6: false,
        streams: 1,
    },
    TcpTest {
        v6: false,
        streams: 4,
    },
    TcpTest {
        v6: true,
        streams: 1,
    },
    TcpTest {
        v6: true,
        streams: 4,
    },
];

/// How long and how often to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Seconds of each measurement.
    pub(crate) seconds: u32,
    /// Seconds of warm-up before each measurement (left out of the result).
    pub(crate) omit: u32,
    /// Times the whole sequence runs.
    pub(crate) rounds: u32,
}

/// One measurement of one forwarder in one test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Receiver throughput, Gbit/s.
    pub(crate) gbits: f64,
    /// Forwarder CPU, % of one core.
    pub(crate) cpu: CpuUse,
    /// Packets (MTU-sized) per read(2) in direction A -> B (`None` for async forwarders, whose directions
    /// share threads).
    pub(crate) per_read: Option<f64>,
    /// Packets per write(2) in direction A -> B.
    pub(crate) per_write: Option<f64>,
}

/// Runs one forwarder through one test.
pub(crate) fn measure(
    bins: &Binaries,
    pair: &Pair,
    kind: Forwarder,
    test: TcpTest,
    plan: Plan,
) -> Result<Sample, String> {
    measure_with(bins, pair, kind, test, plan, &|| {})
}

/// [`measure`], calling `gate` once the forwarder and the iperf3 server are up, just before the traffic
/// starts (where [`together`](crate::together) lines up two measurements).
pub(crate) fn measure_with(
    bins: &Binaries,
    pair: &Pair,
    kind: Forwarder,
    test: TcpTest,
    plan: Plan,
    gate: &dyn Fn(),
) -> Result<Sample, String> {
    let ticks = ticks_per_second();
    let tunnel = Tunnel::start(bins, kind, pair)?;
    let pid = tunnel.pid();
    let per_direction = !kind.is_async();
    let io_start = if per_direction {
        Some(SyscallCounts::of_thread(pid, A_TO_B_THREAD)?)
    } else {
        None
    };
    let cpus = pair.pinning.as_ref().map(|p| p.traffic.as_str());
    let server = IperfServer::start(&pair.b, cpus)?;
    gate();
    let client = IperfClient::start(&pair.a, &server, test, plan.seconds, plan.omit, cpus)?;
    std::thread::sleep(Duration::from_secs(u64::from(plan.omit)));
    let cpu_start = CpuTime::read(pid)?;
    let finished = client.finish();
    let cpu_end = CpuTime::read(pid)?;
    let io = match &io_start {
        Some(start) => Some(SyscallCounts::of_thread(pid, A_TO_B_THREAD)?.since(start)),
        None => None,
    };
    let report = tunnel.stop()?;
    let gbits = finished?;
    let packets = report.a_to_b.get("packets") as f64;
    let ratio = |calls: u64| {
        if calls == 0 {
            0.0
        } else {
            packets / calls as f64
        }
    };
    Ok(Sample {
        gbits,
        cpu: cpu_start.until(&cpu_end, ticks),
        per_read: io.as_ref().map(|io| ratio(io.reads)),
        per_write: io.as_ref().map(|io| ratio(io.writes)),
    })
}

#[cfg(test)]
impl Sample {
    /// A sample of `gbits` with fixed CPU and per-call figures, for tests of the tables.
    pub(crate) fn of_gbits(gbits: f64) -> Self {
        Sample {
            gbits,
            cpu: CpuUse {
                user: 10.0,
                system: 50.0,
            },
            per_read: Some(40.0),
            per_write: Some(40.0),
        }
    }
}

/// Results of a run: samples per test and forwarder, and the cells that failed.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// The forwarders measured, in the order of the table.
    forwarders: Vec<Forwarder>,
    /// (test, forwarder, round, sample).
    samples: Vec<(TcpTest, Forwarder, usize, Sample)>,
    failures: Vec<String>,
}

impl Results {
    /// No results yet, for a table of `forwarders` (in that order).
    pub(crate) fn new(forwarders: &[Forwarder]) -> Self {
        Self {
            forwarders: forwarders.to_vec(),
            ..Self::default()
        }
    }

    /// Records one measurement; `run` pairs it with the other forwarders' measurements of the same run (a
    /// round of back-to-back runs, or one run side by side).
    pub(crate) fn record(&mut self, test: TcpTest, kind: Forwarder, run: usize, sample: Sample) {
        self.samples.push((test, kind, run, sample));
    }

    /// Records a measurement that failed.
    pub(crate) fn fail(&mut self, test: TcpTest, kind: Forwarder, why: &str) {
        eprintln!("\n  failed: {why}");
        self.failures
            .push(format!("{} / {}: {why}", test.label(), kind.label()));
    }

    /// Whether any measurement failed.
    pub(crate) fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    fn cell(&self, test: TcpTest, kind: Forwarder) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|(t, k, _, _)| *t == test && *k == kind)
            .map(|(_, _, _, s)| *s)
            .collect()
    }

    /// Throughput of `ours` over `other`, taken within each round (where the two ran back to back, so that
    /// slow changes of the machine's load cancel out), then the median over the rounds.
    fn paired_ratio(&self, test: TcpTest, ours: Forwarder, other: Forwarder) -> Option<f64> {
        let ratios = self.paired_ratios(test, ours, other);
        ratios.get(ratios.len().checked_sub(1)? / 2).copied()
    }

    /// The ratios of [`paired_ratio`](Self::paired_ratio), one per round in which both ran, sorted.
    fn paired_ratios(&self, test: TcpTest, ours: Forwarder, other: Forwarder) -> Vec<f64> {
        let find = |kind: Forwarder, round: usize| {
            self.samples
                .iter()
                .find(|(t, k, r, _)| *t == test && *k == kind && *r == round)
                .map(|(_, _, _, s)| s.gbits)
        };
        let mut ratios: Vec<f64> = self
            .samples
            .iter()
            .filter(|(t, k, _, _)| *t == test && *k == ours)
            .filter_map(|(_, _, round, s)| {
                let theirs = find(other, *round).filter(|g| *g > 0.0)?;
                Some(s.gbits / theirs)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The sample with the median throughput, and the spread (max - min) / median of the throughput.
    fn median(&self, test: TcpTest, kind: Forwarder) -> Option<(Sample, f64)> {
        let mut cell = self.cell(test, kind);
        cell.sort_by(|a, b| a.gbits.total_cmp(&b.gbits));
        let median = *cell.get(cell.len().checked_sub(1)? / 2)?;
        let spread = match (cell.first(), cell.last()) {
            (Some(lo), Some(hi)) if median.gbits > 0.0 => (hi.gbits - lo.gbits) / median.gbits,
            _ => 0.0,
        };
        Some((median, spread))
    }
}

/// Measures every forwarder in every test of `tests`, interleaved, `plan.rounds` times.
pub(crate) fn run_all(
    bins: &Binaries,
    pair: &Pair,
    tests: &[TcpTest],
    forwarders: &[Forwarder],
    plan: Plan,
) -> Results {
    let mut results = Results::new(forwarders);
    let total = plan.rounds as usize * tests.len() * forwarders.len();
    let mut done = 0;
    for round in 0..plan.rounds as usize {
        for &test in tests {
            for i in 0..forwarders.len() {
                let kind = forwarders[(i + round) % forwarders.len()];
                done += 1;
                eprint!(
                    "\r  [{done}/{total}] round {} {:<18} {:<22}",
                    round + 1,
                    test.label(),
                    kind.label()
                );
                match measure(bins, pair, kind, test, plan) {
                    Ok(sample) => results.record(test, kind, round, sample),
                    Err(e) => results.fail(test, kind, &e),
                }
            }
        }
    }
    eprintln!("\r{:<78}", "");
    results
}

/// Targets of the offload forwarder, side by side with the others.
struct Targets {
    vs_passthrough: f64,
    vs_tun_rs: f64,
}

fn targets(test: TcpTest) -> Targets {
    if test.streams == 1 {
        Targets {
            vs_passthrough: 0.95,
            vs_tun_rs: 1.05,
        }
    } else {
        Targets {
            vs_passthrough: 0.85,
            vs_tun_rs: 1.15,
        }
    }
}

/// Forwarder user CPU per Gbit/s that the offload forwarder must stay under.
const USER_CPU_PER_GBIT_TARGET: f64 = 3.0;

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// The table of medians, with the ratios and targets of each test.
pub(crate) fn table(results: &Results, tests: &[TcpTest], rounds: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>7} {:>7} {:>6} {:>7} {:>10} {:>9} {:>10}",
        "forwarder", "Gbit/s", "spread", "CPU %", "user %", "user%/Gbit", "pkts/read", "pkts/write"
    );
    for &test in tests {
        if rounds == 1 {
            let _ = writeln!(out, "{} (one run)", test.label());
        } else {
            let _ = writeln!(out, "{} (median of {rounds} rounds)", test.label());
        }
        for &kind in &results.forwarders {
            match results.median(test, kind) {
                Some((s, spread)) => {
                    let per_gbit = if s.gbits > 0.0 {
                        s.cpu.user / s.gbits
                    } else {
                        0.0
                    };
                    let per_call =
                        |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
                    let _ = writeln!(
                        out,
                        "  {:<24} {:>7.2} {:>7} {:>6.0} {:>7.1} {:>10.2} {:>9} {:>10}",
                        kind.label(),
                        s.gbits,
                        if rounds == 1 {
                            "-".to_owned()
                        } else {
                            format!("{:.0}%", spread * 100.0)
                        },
                        s.cpu.total(),
                        s.cpu.user,
                        per_gbit,
                        per_call(s.per_read),
                        per_call(s.per_write)
                    );
                }
                None => {
                    let _ = writeln!(out, "  {:<24} {:>7}", kind.label(), "failed");
                }
            }
        }
        if let Some(line) = blocking_targets(results, test) {
            out.push_str(&line);
        }
        if let Some(line) = async_targets(results, test) {
            out.push_str(&line);
        }
        if let Some(line) = queues_ratio(results, test) {
            out.push_str(&line);
        }
    }
    out
}

/// Two queues against one, every round's ratio beside the median: on a host with fewer free cores than
/// forwarding threads they cannot scale, and must not cost; on a busy small host the spread says as much.
fn queues_ratio(results: &Results, test: TcpTest) -> Option<String> {
    let ratios = results.paired_ratios(test, Forwarder::OffloadQueues2, Forwarder::Offload);
    let median = ratios.get(ratios.len().checked_sub(1)? / 2)?;
    let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    Some(format!(
        "  (7)/(1) = {median:.3} (per round, sorted: {})\n",
        rounds.join(" ")
    ))
}

/// Median user CPU per Gbit/s of `kind` in `test`.
fn user_per_gbit(results: &Results, test: TcpTest, kind: Forwarder) -> Option<f64> {
    results
        .median(test, kind)
        .filter(|(s, _)| s.gbits > 0.0)
        .map(|(s, _)| s.cpu.user / s.gbits)
}

/// The offload forwarder against the ceiling and the peer, with its targets.
fn blocking_targets(results: &Results, test: TcpTest) -> Option<String> {
    let ratio = |other| results.paired_ratio(test, Forwarder::Offload, other);
    let vs_ceiling = ratio(Forwarder::Passthrough)?;
    let vs_peer = ratio(Forwarder::TunRs)?;
    let t = targets(test);
    let user = user_per_gbit(results, test, Forwarder::Offload)?;
    Some(format!(
        "  (1)/(3) = {vs_ceiling:.3} [target >= {:.2}: {}]   (1)/(4) = {vs_peer:.3} [target >= {:.2}: {}]   (1) user%/Gbit {user:.2} [<= {USER_CPU_PER_GBIT_TARGET}: {}]\n",
        t.vs_passthrough,
        mark(vs_ceiling >= t.vs_passthrough),
        t.vs_tun_rs,
        mark(vs_peer >= t.vs_tun_rs),
        mark(user <= USER_CPU_PER_GBIT_TARGET),
    ))
}

/// The async forwarder against the blocking one and tun-rs's async device, with its targets.
fn async_targets(results: &Results, test: TcpTest) -> Option<String> {
    let ratio = |other| results.paired_ratio(test, Forwarder::Async, other);
    let vs_blocking = ratio(Forwarder::Offload)?;
    let vs_peer = ratio(Forwarder::TunRsAsync)?;
    let cpu = user_per_gbit(results, test, Forwarder::Async)?
        / user_per_gbit(results, test, Forwarder::Offload)?;
    Some(format!(
        "  (5)/(1) = {vs_blocking:.3} [target >= {ASYNC_VS_BLOCKING:.2}: {}]   (5)/(6) = {vs_peer:.3} [target >= 1.00: {}]   (5)/(1) user%/Gbit {cpu:.2} [<= {ASYNC_CPU_VS_BLOCKING}: {}]\n",
        mark(vs_blocking >= ASYNC_VS_BLOCKING),
        mark(vs_peer >= 1.0),
        mark(cpu <= ASYNC_CPU_VS_BLOCKING),
    ))
}

/// Throughput the async forwarder keeps of the blocking one.
const ASYNC_VS_BLOCKING: f64 = 0.95;
/// User CPU per Gbit/s the async forwarder may spend, relative to the blocking one.
const ASYNC_CPU_VS_BLOCKING: f64 = 1.15;

/// What the columns mean, printed under the table.
pub(crate) const LEGEND: &str = "\
Gbit/s: iperf3 receiver throughput from namespace A to B through tunA -> forwarder -> tunB.
spread: (max - min) / median over the rounds. CPU %: the forwarder process (user + system) in % of one
core; system time includes the kernel's delivery of each written packet into namespace B's stack.
pkts/read, pkts/write: MTU-sized packets per read(2) / write(2) system call of the A -> B thread (async
forwarders: '-', their two directions share the runtime's threads).
(1)/(3), (1)/(4), (5)/(1), (5)/(6), (7)/(1): throughput ratios within each round (the forwarders of a round
run back to back), median over the rounds. (7) spreads flows over 2 queues per device, a thread per queue and
direction: it scales with cores to spare (one per queue), and a single stream stays on one queue.";

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    plan: Plan,
    /// Pin the forwarder and the traffic to CPUs of their own (`--no-pin` turns it off).
    pin: bool,
    /// The forwarders to compare (`--only 1,4`), by their number in the table.
    forwarders: Vec<Forwarder>,
    /// The tests to run (`--tests 1,3`), by their place in [`TESTS`].
    tests: Vec<TcpTest>,
    /// Run each forwarder at the same time as the first one instead of one after the other (`--together`).
    together: bool,
}

/// The items of `all` that a comma-separated list of 1-based numbers names (`--only`, `--tests`).
pub(crate) fn pick<T: Copy>(flag: &str, list: &str, all: &[T]) -> Result<Vec<T>, String> {
    list.split(',')
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| all.get(i).copied())
                .ok_or_else(|| format!("{flag}: {n} is not a number from 1 to {}", all.len()))
        })
        .collect()
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        plan: Plan {
            seconds: 5,
            omit: 1,
            rounds: 3,
        },
        pin: true,
        forwarders: Forwarder::ALL.to_vec(),
        tests: TESTS.to_vec(),
        together: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--no-pin" {
            options.pin = false;
            continue;
        }
        if flag == "--together" {
            options.together = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--only" => {
                options.forwarders = pick(flag, value, &Forwarder::ALL)?;
                continue;
            }
            "--tests" => {
                options.tests = pick(flag, value, &TESTS)?;
                continue;
            }
            _ => {}
        }
        let number: u32 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--time" if (1..=60).contains(&number) => options.plan.seconds = number,
            "--rounds" if (1..=20).contains(&number) => options.plan.rounds = number,
            "--time" | "--rounds" => return Err(format!("{flag} {number} is out of range")),
            other => {
                return Err(format!(
                    "unknown option {other} (bench takes --time S, --rounds N, --no-pin, --together, --only 1,2,... and --tests 1,2,...)"
                ));
            }
        }
    }
    if options.together && options.forwarders.len() < 2 {
        return Err(
            "--together needs at least two forwarders (the first runs beside each of the others)"
                .into(),
        );
    }
    Ok(options)
}

/// Says where the forwarder and the traffic run.
pub(crate) fn print_pinning(pair: &Pair) {
    match &pair.pinning {
        Some(p) => println!(
            "Forwarder pinned to CPU {}, iperf3 client and server to CPU {} (taskset).",
            p.forwarder, p.traffic
        ),
        None => println!(
            "Not pinned to CPUs (as users run it; or one CPU, or no taskset): the scheduler places the \
             forwarder and iperf3."
        ),
    }
}

/// `cargo xtask bench [--time S] [--rounds N] [--no-pin] [--together] [--only 1,2,...] [--tests 1,2,...]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if crate::wg_bench::only_wireguard(args) {
        return crate::wg_bench::run(args);
    }
    let Options {
        plan,
        pin,
        forwarders,
        tests,
        together,
    } = parse_options(args)?;
    require_root("cargo xtask bench")?;
    clean_up_on_signal()?;
    sweep_stale_namespaces();
    ensure_installed("iperf3", "iperf3")?;
    let bins = Binaries::build()?;
    let per_cell = plan.seconds + plan.omit + 1;
    let results = if together {
        // Two runs at once share the CPUs as the scheduler sees fit: never pinned.
        let pairs = [
            Pair::create_named(false, "")?,
            Pair::create_named(false, "2")?,
        ];
        println!("{}", crate::together::HEADER);
        eprintln!(
            "xtask: {} runs of two forwarders at once, ~{per_cell} s each ({} tests x {} forwarders beside {} x {} rounds)",
            tests.len() * (forwarders.len() - 1) * plan.rounds as usize,
            tests.len(),
            forwarders.len() - 1,
            forwarders[0].label(),
            plan.rounds
        );
        crate::together::run_all(&bins, &pairs, &tests, &forwarders, plan)
    } else {
        let pair = Pair::create(pin)?;
        print_pinning(&pair);
        eprintln!(
            "xtask: {} measurements of ~{per_cell} s ({} tests x {} forwarders x {} rounds)",
            tests.len() * forwarders.len() * plan.rounds as usize,
            tests.len(),
            forwarders.len(),
            plan.rounds
        );
        run_all(&bins, &pair, &tests, &forwarders, plan)
    };
    println!("{}", table(&results, &tests, plan.rounds));
    println!("{LEGEND}");
    if together {
        println!("{}", crate::together::LEGEND);
    }
    let wireguard = if crate::wg_bench::in_full_bench(args) {
        crate::wg_bench::after_forwarders(args)
    } else {
        Ok(())
    };
    if results.failed() {
        return Err(format!(
            "some measurements failed:\n  {}",
            results.failures.join("\n  ")
        ));
    }
    wireguard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_round_is_chosen_and_the_spread_is_relative() {
        let test = TESTS[0];
        let mut results = Results::default();
        for g in [9.0, 10.0, 12.0] {
            results.record(test, Forwarder::Offload, 0, Sample::of_gbits(g));
        }
        let (median, spread) = results
            .median(test, Forwarder::Offload)
            .expect("three samples");
        assert!((median.gbits - 10.0).abs() < 1e-9);
        assert!((spread - 0.3).abs() < 1e-9);
        assert!(results.median(test, Forwarder::TunRs).is_none());
    }

    #[test]
    fn the_table_shows_ratios_against_the_ceiling_and_the_peer() {
        let test = TESTS[0];
        let mut results = Results::new(&Forwarder::ALL);
        for (kind, gbits) in [
            (Forwarder::Offload, 9.6),
            (Forwarder::Plain, 2.0),
            (Forwarder::Passthrough, 10.0),
            (Forwarder::TunRs, 8.0),
        ] {
            results.record(test, kind, 0, Sample::of_gbits(gbits));
        }
        let text = table(&results, &[test], 1);
        assert!(
            text.contains("(1)/(3) = 0.960 [target >= 0.95: ok]"),
            "{text}"
        );
        assert!(
            text.contains("(1)/(4) = 1.200 [target >= 1.05: ok]"),
            "{text}"
        );
    }

    #[test]
    fn ratios_pair_the_forwarders_of_each_round() {
        // The machine was slower in round 1: per-round ratios are all near 1, while the ratio of the
        // medians (8.0 / 8.5) would not be.
        let test = TESTS[1];
        let mut results = Results::default();
        for (round, ours, ceiling) in [(0, 10.0, 10.0), (1, 5.0, 5.0), (2, 8.0, 8.5)] {
            results.record(test, Forwarder::Offload, round, Sample::of_gbits(ours));
            results.record(
                test,
                Forwarder::Passthrough,
                round,
                Sample::of_gbits(ceiling),
            );
        }
        let ratio = results.paired_ratio(test, Forwarder::Offload, Forwarder::Passthrough);
        assert_eq!(ratio, Some(1.0));
        assert_eq!(
            results.paired_ratio(test, Forwarder::Offload, Forwarder::TunRs),
            None
        );
    }

    #[test]
    fn plan_options_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let options = parse_options(&args(&["--time", "3", "--rounds", "5"])).expect("valid");
        assert_eq!((options.plan.seconds, options.plan.rounds), (3, 5));
        assert!(options.pin);
        assert_eq!(options.forwarders, Forwarder::ALL);
        assert!(parse_options(&args(&["--time", "0"])).is_err());
        assert!(parse_options(&args(&["--fast"])).is_err());
        let options = parse_options(&args(&["--no-pin", "--only", "1,5,6"])).expect("valid");
        assert!(!options.pin);
        assert_eq!(
            options.forwarders,
            [Forwarder::Offload, Forwarder::Async, Forwarder::TunRsAsync]
        );
        assert!(parse_options(&args(&["--only", "0"])).is_err());
        let options = parse_options(&args(&["--tests", "1,3"])).expect("valid");
        assert_eq!(options.tests, [TESTS[0], TESTS[2]]);
        assert!(parse_options(&args(&["--tests", "5"])).is_err());
        assert!(!options.together);
        let options = parse_options(&args(&["--together", "--only", "1,4"])).expect("valid");
        assert!(options.together);
        assert_eq!(options.forwarders, [Forwarder::Offload, Forwarder::TunRs]);
        assert!(parse_options(&args(&["--together", "--only", "4"])).is_err());
        let options = parse_options(&args(&["--only", "1,7"])).expect("valid");
        assert_eq!(
            options.forwarders,
            [Forwarder::Offload, Forwarder::OffloadQueues2]
        );
        assert!(parse_options(&args(&["--only", "8"])).is_err());
    }
}
