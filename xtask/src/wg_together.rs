//! `cargo xtask bench --wireguard --together`: the first implementation runs at the same time as each of the
//! others, each pair of endpoints in namespaces of its own with its own iperf3, and the ratio of their
//! throughputs is taken within that run.
//!
//! Back to back, two implementations meet different moments of a host whose speed changes from one second to
//! the next. At once, they meet the same host and compete for its two CPUs: the one that costs less CPU per
//! byte (its own, and iperf3's and the kernel's on its behalf) carries more. Each carries about half of
//! what it carries alone.

use crate::measure::Plan;
use crate::together::schedule;
use crate::traffic::TcpTest;
use crate::wg_bench::{Bed, Implementation, Programs, Results, available, measure_with};

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
    let available = available(programs, kinds, &mut results);
    let Some((&first, others)) = available.split_first() else {
        return results;
    };
    schedule(
        first,
        others,
        beds,
        tests,
        plan.rounds,
        Implementation::label,
        |bed, kind, test, ready| measure_with(bed, programs, kind, test, plan, ready),
        |test, kind, run, outcome| match outcome {
            Ok(sample) => results.record(test, kind, run, sample),
            Err(e) => results.fail(test, kind, &e),
        },
    );
    results
}
