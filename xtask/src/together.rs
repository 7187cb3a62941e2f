//! `cargo xtask bench --together`: each forwarder runs at the same time as the first one, each with its own
//! namespaces and iperf3 pair, and the ratio of their throughputs is taken within that run.
//!
//! Back-to-back runs on this kind of machine see the host's speed change between them (the same
//! single-threaded work takes 1.6x longer from one second to the next), and that lands in the ratios. Two
//! forwarders running at once see the same host; with both pipelines competing for the same CPUs, the one
//! that costs less CPU per byte (its own, iperf3's and the kernel's on its behalf) carries more. What this
//! measures is that cost, not latency: a forwarder that is cheaper per byte but slower to react shows as
//! cheaper here. The scheduler shares the CPUs per thread, so it compares forwarders with as many busy
//! threads: the multi-queue one, with twice as many, takes a larger share.

use std::cell::Cell;
use std::sync::Barrier;

use crate::measure::{Plan, measure_with};
use crate::results::Results;
use crate::traffic::TcpTest;
use crate::tunnel::{Binaries, Forwarder, Pair};

/// Printed above the table.
pub(crate) const HEADER: &str = "Together: each forwarder ran at the same time as the first one (its own \
namespaces and iperf3; not pinned), the two swapping namespaces every round.";

/// Printed under the legend.
pub(crate) const LEGEND: &str = "\
Together: Gbit/s and CPU % are each forwarder's share while another one ran beside it, so about half of
what it carries alone, and the first forwarder's row mixes its runs beside each of the others (hence its
spread); the ratios are taken between the two forwarders of the same run. The scheduler
shares the CPUs per thread, so only forwarders with as many busy threads compare fairly: (7) has twice
as many as (1) and takes a larger share.";

/// Runs `forwarders[0]` beside each of the others, in every test of `tests`, `plan.rounds` times.
pub(crate) fn run_all(
    bins: &Binaries,
    pairs: &[Pair; 2],
    tests: &[TcpTest],
    forwarders: &[Forwarder],
    plan: Plan,
) -> Results {
    let mut results = Results::new(forwarders);
    let Some((&first, others)) = forwarders.split_first() else {
        return results;
    };
    schedule(
        first,
        others,
        pairs,
        tests,
        plan.rounds,
        Forwarder::label,
        |pair, kind, test, ready| measure_with(bins, pair, kind, test, plan, ready),
        |test, kind, run, outcome| match outcome {
            Ok(sample) => results.record(test, kind, run, sample),
            Err(e) => results.fail(test, kind, &e),
        },
    );
    results
}

/// Two at once, in order: in every round and test, `first` beside each of `others`, the two in `places`
/// that swap every round, so that neither keeps an advantage one place might have (the order of creation,
/// the port of its iperf3). `measure(place, kind, test, ready)` measures one side, calling `ready` right
/// before its traffic starts (where the two wait for each other); `record(test, kind, run, outcome)` takes
/// each side's outcome, `run` numbering the pairs. Shows the progress on stderr.
#[allow(clippy::too_many_arguments)]
pub(crate) fn schedule<K: Copy + Send, P: Sync, S: Send>(
    first: K,
    others: &[K],
    places: &[P; 2],
    tests: &[TcpTest],
    rounds: u32,
    label: fn(K) -> &'static str,
    measure: impl Fn(&P, K, TcpTest, &dyn Fn()) -> Result<S, String> + Sync,
    mut record: impl FnMut(TcpTest, K, usize, Result<S, String>),
) {
    let total = rounds as usize * tests.len() * others.len();
    let mut done = 0;
    for round in 0..rounds as usize {
        for &test in tests {
            for (i, &other) in others.iter().enumerate() {
                done += 1;
                eprint!(
                    "\r  [{done}/{total}] round {} {:<18} {} beside {:<26}",
                    round + 1,
                    test.label(),
                    label(first),
                    label(other)
                );
                let (here, there) = if round % 2 == 1 {
                    (&places[1], &places[0])
                } else {
                    (&places[0], &places[1])
                };
                let outcomes = at_once([(here, first), (there, other)], |(place, kind), ready| {
                    measure(place, kind, test, ready)
                });
                for (kind, outcome) in [first, other].into_iter().zip(outcomes) {
                    record(test, kind, round * others.len() + i, outcome);
                }
            }
        }
    }
    eprintln!("\r{:<110}", "");
}

/// Runs the two measurements of `runs` on threads of their own, `measure` calling the `ready` it is given
/// once its set-up is done, right before its traffic starts: there the two wait for each other, so that
/// their traffic starts together.
fn at_once<R: Send, T: Send>(
    runs: [R; 2],
    measure: impl Fn(R, &dyn Fn()) -> Result<T, String> + Sync,
) -> [Result<T, String>; 2] {
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        let handles = runs.map(|run| {
            let (start, measure) = (&start, &measure);
            scope.spawn(move || {
                let passed = Cell::new(false);
                let outcome = measure(run, &|| {
                    passed.set(true);
                    start.wait();
                });
                // A run that failed before its traffic started still meets the other at the start, so
                // that the other is not left waiting.
                if !passed.get() {
                    start.wait();
                }
                outcome
            })
        });
        handles.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err("the measuring thread panicked".into()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Sample, TESTS};
    use crate::results::table;

    #[test]
    fn the_first_runs_beside_each_other_and_the_places_swap_every_round() {
        let mut runs = Vec::new();
        schedule(
            1u8,
            &[2, 3],
            &["p", "q"],
            &TESTS[..2],
            2,
            |_| "x",
            |place, kind, _, ready| {
                ready();
                Ok((*place, kind))
            },
            |test, kind, run, outcome| {
                let first_test = test.label() == TESTS[0].label();
                runs.push((first_test, kind, run, outcome.unwrap().0));
            },
        );
        let (t1, t2) = (true, false);
        assert_eq!(
            runs,
            [
                (t1, 1, 0, "p"),
                (t1, 2, 0, "q"),
                (t1, 1, 1, "p"),
                (t1, 3, 1, "q"),
                (t2, 1, 0, "p"),
                (t2, 2, 0, "q"),
                (t2, 1, 1, "p"),
                (t2, 3, 1, "q"),
                (t1, 1, 2, "q"),
                (t1, 2, 2, "p"),
                (t1, 1, 3, "q"),
                (t1, 3, 3, "p"),
                (t2, 1, 2, "q"),
                (t2, 2, 2, "p"),
                (t2, 1, 3, "q"),
                (t2, 3, 3, "p"),
            ]
        );
    }

    #[test]
    fn ratios_are_taken_between_the_two_forwarders_of_one_run() {
        // (1) ran twice per round: beside (3), then beside (4); the host was twice as fast in round 2.
        let test = TESTS[0];
        let forwarders = [Forwarder::Offload, Forwarder::Passthrough, Forwarder::TunRs];
        let mut results = Results::new(&forwarders);
        for (run, ours, other, kind) in [
            (0, 4.0, 5.0, Forwarder::Passthrough),
            (1, 5.0, 4.0, Forwarder::TunRs),
            (2, 8.0, 10.0, Forwarder::Passthrough),
            (3, 10.0, 8.0, Forwarder::TunRs),
            (4, 4.2, 5.0, Forwarder::Passthrough),
            (5, 5.5, 5.0, Forwarder::TunRs),
        ] {
            results.record(test, Forwarder::Offload, run, Sample::of_gbits(ours));
            results.record(test, kind, run, Sample::of_gbits(other));
        }
        let text = table(&results, &[test], 3);
        assert!(
            text.contains("(1)/(3) = 0.800 [target >= 0.95: MISSED]"),
            "{text}"
        );
        assert!(
            text.contains("(1)/(4) = 1.250 [target >= 1.05: ok]"),
            "{text}"
        );
    }
}
