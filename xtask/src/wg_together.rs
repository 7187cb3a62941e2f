//! `cargo xtask bench --wireguard --together`: the first implementation runs at the same time as each of the
//! others, each pair of endpoints in namespaces of its own with its own iperf3, and the ratio of their
//! throughputs is taken within that run.
//!
//! Back to back, two implementations meet different moments of a host whose speed changes from one second to
//! the next. At once, they meet the same host and compete for its two CPUs: the one that costs less CPU per
//! byte (its own, and iperf3's and the kernel's on its behalf) carries more. Each carries about half of
//! what it carries alone.

use crate::measure::Plan;
use crate::together::at_once;
use crate::traffic::TcpTest;
use crate::wg_bench::{Bed, Implementation, Programs, Results, Sample, measure_with};

/// Printed above the table.
pub(crate) const HEADER: &str = "Together: the first implementation ran at the same time as each of the \
others (each pair of endpoints in namespaces of its own, with its own iperf3), the two swapping namespaces \
every round.";

/// Printed under the legend.
pub(crate) const LEGEND: &str = "\
Together: Gbit/s and CPU are each implementation's share while the other ran beside it, about half of what
it carries alone; the first one's row mixes its runs beside each of the others. Ratios are taken between the
two of the same run.";

/// Runs `kinds[0]` beside each of the others, in every test of `tests`, `plan.rounds` times.
pub(crate) fn run_all(
    beds: &[Bed; 2],
    programs: &Programs,
    tests: &[TcpTest],
    kinds: &[Implementation],
    plan: Plan,
) -> Results {
    let mut results = Results::new(kinds);
    let mut available = Vec::new();
    for &kind in kinds {
        match programs.of(kind) {
            Ok(_) => available.push(kind),
            Err(why) => results.unavailable(kind, why),
        }
    }
    let Some((&first, others)) = available.split_first() else {
        return results;
    };
    let total = plan.rounds as usize * tests.len() * others.len();
    let mut done = 0;
    for round in 0..plan.rounds as usize {
        for &test in tests {
            for (i, &other) in others.iter().enumerate() {
                done += 1;
                eprint!(
                    "\r  [{done}/{total}] round {} {:<18} {} beside {:<26}",
                    round + 1,
                    test.label(),
                    first.label(),
                    other.label()
                );
                // Which implementation gets which bed alternates, so that neither keeps an advantage one
                // bed might have.
                let (first_bed, other_bed) = if round % 2 == 0 {
                    (&beds[0], &beds[1])
                } else {
                    (&beds[1], &beds[0])
                };
                let run = round * others.len() + i;
                let [a, b] = side_by_side(
                    programs,
                    [(first_bed, first), (other_bed, other)],
                    test,
                    plan,
                );
                for (kind, outcome) in [(first, a), (other, b)] {
                    match outcome {
                        Ok(sample) => results.record(test, kind, run, sample),
                        Err(e) => results.fail(test, kind, &e),
                    }
                }
            }
        }
    }
    eprintln!("\r{:<110}", "");
    results
}

/// Measures two implementations at once, their traffic starting together once both tunnels are up.
fn side_by_side(
    programs: &Programs,
    runs: [(&Bed, Implementation); 2],
    test: TcpTest,
    plan: Plan,
) -> [Result<Sample, String>; 2] {
    at_once(runs, |(bed, kind), ready| {
        measure_with(bed, programs, kind, test, plan, ready)
    })
}
