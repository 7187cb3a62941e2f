//! The results of a run and the table that shows them: the median of each cell, the ratios between the
//! forwarders of one run, and the targets.

use std::fmt::Write as _;

use crate::measure::Sample;
use crate::traffic::TcpTest;
use crate::tunnel::Forwarder;

/// What a table has a row for: a forwarder, or a WireGuard implementation.
pub(crate) trait Row: Copy + PartialEq {
    /// How the table names it.
    fn label(self) -> &'static str;
}

impl Row for Forwarder {
    fn label(self) -> &'static str {
        Forwarder::label(self)
    }
}

/// One measurement of a row: what the tables take the median and the ratios of.
pub(crate) trait Measurement: Copy {
    /// The throughput, in Gbit/s.
    fn gbits(&self) -> f64;
}

impl Measurement for Sample {
    fn gbits(&self) -> f64 {
        self.gbits
    }
}

/// Results of a run: samples per test and row (a forwarder, or another kind of implementation), and the
/// cells that failed.
#[derive(Debug)]
pub(crate) struct Results<K = Forwarder, S = Sample> {
    /// The rows measured, in the order of the table.
    pub(crate) kinds: Vec<K>,
    /// (test, row, round, sample).
    samples: Vec<(TcpTest, K, usize, S)>,
    failures: Vec<String>,
}

impl<K: Row, S: Measurement> Results<K, S> {
    /// No results yet, for a table of `kinds` (in that order).
    pub(crate) fn new(kinds: &[K]) -> Self {
        Self {
            kinds: kinds.to_vec(),
            samples: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Records one measurement; `run` pairs it with the other rows' measurements of the same run (a round of
    /// back-to-back runs, or one run side by side).
    pub(crate) fn record(&mut self, test: TcpTest, kind: K, run: usize, sample: S) {
        self.samples.push((test, kind, run, sample));
    }

    /// Records a measurement that failed.
    pub(crate) fn fail(&mut self, test: TcpTest, kind: K, why: &str) {
        eprintln!("\n  failed: {why}");
        self.failures
            .push(format!("{} / {}: {why}", test.label(), kind.label()));
    }

    /// Whether any measurement failed.
    pub(crate) fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    /// The measurements that failed, each as `test / row: why`.
    pub(crate) fn failures(&self) -> &[String] {
        &self.failures
    }

    fn cell(&self, test: TcpTest, kind: K) -> Vec<S> {
        self.samples
            .iter()
            .filter(|(t, k, _, _)| *t == test && *k == kind)
            .map(|(_, _, _, s)| *s)
            .collect()
    }

    /// Throughput of `ours` over `other`, taken within each round (where the two ran back to back, so that
    /// slow changes of the machine's load cancel out), then the median over the rounds.
    fn paired_ratio(&self, test: TcpTest, ours: K, other: K) -> Option<f64> {
        let ratios = self.paired_ratios(test, ours, other);
        ratios.get(ratios.len().checked_sub(1)? / 2).copied()
    }

    /// The throughput ratios of [`paired_ratio`](Self::paired_ratio), one per round in which both ran,
    /// sorted.
    fn paired_ratios(&self, test: TcpTest, ours: K, other: K) -> Vec<f64> {
        self.paired(test, ours, other, S::gbits)
    }

    /// `figure(ours) / figure(other)` within each round in which both ran, sorted.
    pub(crate) fn paired(
        &self,
        test: TcpTest,
        ours: K,
        other: K,
        figure: fn(&S) -> f64,
    ) -> Vec<f64> {
        let find = |kind: K, round: usize| {
            self.samples
                .iter()
                .find(|(t, k, r, _)| *t == test && *k == kind && *r == round)
                .map(|(_, _, _, s)| figure(s))
        };
        let mut ratios: Vec<f64> = self
            .samples
            .iter()
            .filter(|(t, k, _, _)| *t == test && *k == ours)
            .filter_map(|(_, _, round, s)| {
                let theirs = find(other, *round).filter(|v| *v > 0.0)?;
                Some(figure(s) / theirs)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The sample with the median throughput, and the spread (max - min) / median of the throughput.
    pub(crate) fn median(&self, test: TcpTest, kind: K) -> Option<(S, f64)> {
        let mut cell = self.cell(test, kind);
        cell.sort_by(|a, b| a.gbits().total_cmp(&b.gbits()));
        let median = *cell.get(cell.len().checked_sub(1)? / 2)?;
        let spread = match (cell.first(), cell.last()) {
            (Some(lo), Some(hi)) if median.gbits() > 0.0 => {
                (hi.gbits() - lo.gbits()) / median.gbits()
            }
            _ => 0.0,
        };
        Some((median, spread))
    }
}

impl Default for Results<Forwarder> {
    fn default() -> Self {
        Self::new(&[])
    }
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
        out.push_str(&test_heading(test, rounds));
        for &kind in &results.kinds {
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
                        spread_cell(rounds, spread),
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
        let paired = [
            (Forwarder::OffloadQueues2, Forwarder::Offload, "(7)/(1)"),
            (Forwarder::Offload, Forwarder::Baseline, "(1)/(8)"),
        ];
        for (ours, other, name) in paired {
            if let Some(line) = round_ratios(results, test, ours, other, name) {
                out.push_str(&line);
            }
        }
        if let Some(line) = l2_targets(results, test) {
            out.push_str(&line);
        }
    }
    out
}

/// The line that heads a test's rows: one run, or the median of several rounds.
pub(crate) fn test_heading(test: TcpTest, rounds: u32) -> String {
    if rounds == 1 {
        format!("{} (one run)\n", test.label())
    } else {
        format!("{} (median of {rounds} rounds)\n", test.label())
    }
}

/// The spread column: (max - min) / median in per cent, or `-` for a single run.
pub(crate) fn spread_cell(rounds: u32, spread: f64) -> String {
    if rounds == 1 {
        "-".to_owned()
    } else {
        format!("{:.0}%", spread * 100.0)
    }
}

/// `ours` against `other`, every round's ratio beside the median: two queues against one (on a host with
/// fewer free cores than forwarding threads they cannot scale, and must not cost), or this build against a
/// baseline build. On a busy small host the spread says as much as the median.
fn round_ratios(
    results: &Results,
    test: TcpTest,
    ours: Forwarder,
    other: Forwarder,
    name: &str,
) -> Option<String> {
    let ratios = results.paired_ratios(test, ours, other);
    let median = ratios.get(ratios.len().checked_sub(1)? / 2)?;
    let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    Some(format!(
        "  {name} = {median:.3} (per round, sorted: {})\n",
        rounds.join(" ")
    ))
}

/// TAP with offloads against TUN with offloads and against TAP without, with their targets, and the TAP
/// passthrough's gain over TAP without offloads: each figure whose two forwarders ran.
fn l2_targets(results: &Results, test: TcpTest) -> Option<String> {
    let ratio = |ours, other| results.paired_ratio(test, ours, other);
    let mut parts = Vec::new();
    if let Some(r) = ratio(Forwarder::L2Offload, Forwarder::Offload) {
        parts.push(format!(
            "(9)/(1) = {r:.3} [target >= {L2_VS_L3:.2}: {}]",
            mark(r >= L2_VS_L3)
        ));
    }
    if let Some(r) = ratio(Forwarder::L2Offload, Forwarder::L2Plain) {
        parts.push(format!(
            "(9)/(10) = {r:.3} [target >= {L2_VS_PLAIN:.2}: {}]",
            mark(r >= L2_VS_PLAIN)
        ));
    }
    if let Some(r) = ratio(Forwarder::L2Offload, Forwarder::L2Passthrough) {
        parts.push(format!("(9)/(11) = {r:.3}"));
    }
    // The passthrough does no work in user space: its gain over (10) bounds what any TAP forwarder gains.
    if let Some(r) = ratio(Forwarder::L2Passthrough, Forwarder::L2Plain) {
        parts.push(format!(
            "(11)/(10) = {r:.3} (the most a TAP forwarder gains here)"
        ));
    }
    one_line(parts)
}

/// Throughput TAP with offloads keeps of TUN with offloads.
const L2_VS_L3: f64 = 0.95;
/// Throughput TAP with offloads gains over TAP without.
const L2_VS_PLAIN: f64 = 3.0;

/// Median user CPU per Gbit/s of `kind` in `test`.
fn user_per_gbit(results: &Results, test: TcpTest, kind: Forwarder) -> Option<f64> {
    results
        .median(test, kind)
        .filter(|(s, _)| s.gbits > 0.0)
        .map(|(s, _)| s.cpu.user / s.gbits)
}

/// The offload forwarder against the ceiling and the peer, with its targets: each figure whose forwarders
/// ran.
fn blocking_targets(results: &Results, test: TcpTest) -> Option<String> {
    let ratio = |other| results.paired_ratio(test, Forwarder::Offload, other);
    let t = targets(test);
    let mut parts = Vec::new();
    if let Some(r) = ratio(Forwarder::Passthrough) {
        parts.push(format!(
            "(1)/(3) = {r:.3} [target >= {:.2}: {}]",
            t.vs_passthrough,
            mark(r >= t.vs_passthrough)
        ));
    }
    if let Some(r) = ratio(Forwarder::TunRs) {
        parts.push(format!(
            "(1)/(4) = {r:.3} [target >= {:.2}: {}]",
            t.vs_tun_rs,
            mark(r >= t.vs_tun_rs)
        ));
    }
    // Beside what it is compared with: its own CPU alone is in its row.
    if !parts.is_empty()
        && let Some(user) = user_per_gbit(results, test, Forwarder::Offload)
    {
        parts.push(format!(
            "(1) user%/Gbit {user:.2} [<= {USER_CPU_PER_GBIT_TARGET}: {}]",
            mark(user <= USER_CPU_PER_GBIT_TARGET)
        ));
    }
    one_line(parts)
}

/// The async forwarder against the blocking one and tun-rs's async device, with its targets: each figure
/// whose forwarders ran.
fn async_targets(results: &Results, test: TcpTest) -> Option<String> {
    let ratio = |other| results.paired_ratio(test, Forwarder::Async, other);
    let mut parts = Vec::new();
    if let Some(r) = ratio(Forwarder::Offload) {
        parts.push(format!(
            "(5)/(1) = {r:.3} [target >= {ASYNC_VS_BLOCKING:.2}: {}]",
            mark(r >= ASYNC_VS_BLOCKING)
        ));
        if let (Some(ours), Some(blocking)) = (
            user_per_gbit(results, test, Forwarder::Async),
            user_per_gbit(results, test, Forwarder::Offload),
        ) {
            let cpu = ours / blocking;
            parts.push(format!(
                "(5)/(1) user%/Gbit {cpu:.2} [<= {ASYNC_CPU_VS_BLOCKING}: {}]",
                mark(cpu <= ASYNC_CPU_VS_BLOCKING)
            ));
        }
    }
    if let Some(r) = ratio(Forwarder::TunRsAsync) {
        parts.push(format!(
            "(5)/(6) = {r:.3} [target >= 1.00: {}]",
            mark(r >= 1.0)
        ));
    }
    one_line(parts)
}

/// The figures of one line of targets, indented; none when no figure could be taken.
fn one_line(parts: Vec<String>) -> Option<String> {
    (!parts.is_empty()).then(|| format!("  {}\n", parts.join("   ")))
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
(1)/(3), (1)/(4), (5)/(1), (5)/(6), (7)/(1), (1)/(8): throughput ratios within each round (the forwarders of a
round run back to back, or at the same time with --together), median over the rounds. (8) is another build of
tun-forward, named by TUN_FORWARD_BASELINE. (7) spreads flows over 2 queues per device, a thread per queue and
direction: it scales with cores to spare (one per queue), and a single stream stays on one queue.
(9), (10), (11): (1), (2), (3) on TAP devices (`--layer l2`), Ethernet frames passed as they are; (9)/(1),
(9)/(10), (9)/(11), (11)/(10) as above.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::TESTS;

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
    fn a_baseline_build_is_compared_round_by_round() {
        let test = TESTS[0];
        let mut results = Results::new(&[Forwarder::Offload, Forwarder::Baseline]);
        for (run, ours, base) in [(0, 5.0, 4.0), (1, 3.0, 3.0), (2, 6.0, 5.0)] {
            results.record(test, Forwarder::Offload, run, Sample::of_gbits(ours));
            results.record(test, Forwarder::Baseline, run, Sample::of_gbits(base));
        }
        let text = table(&results, &[test], 3);
        assert!(
            text.contains("(1)/(8) = 1.200 (per round, sorted: 1.00 1.20 1.25)"),
            "{text}"
        );
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
    fn a_comparison_with_the_ceiling_alone_is_shown_without_the_peer() {
        let test = TESTS[0];
        let mut results = Results::new(&[Forwarder::Offload, Forwarder::Passthrough]);
        results.record(test, Forwarder::Offload, 0, Sample::of_gbits(9.0));
        results.record(test, Forwarder::Passthrough, 0, Sample::of_gbits(10.0));
        let text = table(&results, &[test], 1);
        assert!(
            text.contains("(1)/(3) = 0.900 [target >= 0.95: MISSED]"),
            "{text}"
        );
        assert!(!text.contains("(1)/(4)"), "(4) did not run: {text}");
    }

    #[test]
    fn the_tap_line_shows_each_ratio_whose_forwarders_ran() {
        let test = TESTS[0];
        let mut results = Results::new(&[
            Forwarder::L2Offload,
            Forwarder::L2Plain,
            Forwarder::L2Passthrough,
        ]);
        for (kind, gbits) in [
            (Forwarder::L2Offload, 10.0),
            (Forwarder::L2Plain, 4.0),
            (Forwarder::L2Passthrough, 10.4),
        ] {
            results.record(test, kind, 0, Sample::of_gbits(gbits));
        }
        let text = table(&results, &[test], 1);
        assert!(
            text.contains(
                "(9)/(10) = 2.500 [target >= 3.00: MISSED]   (9)/(11) = 0.962   (11)/(10) = 2.600"
            ),
            "{text}"
        );
        assert!(!text.contains("(9)/(1)"), "(1) did not run: {text}");
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
}
