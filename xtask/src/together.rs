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

use crate::measure::{Plan, Sample, measure_with};
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
    schedule(first, others, tests, plan.rounds, Forwarder::label, |run| {
        let [here, there] = run.places(pairs);
        let outcomes = side_by_side(
            bins,
            [(here, run.kinds[0]), (there, run.kinds[1])],
            run.test,
            plan,
        );
        for (kind, outcome) in run.kinds.into_iter().zip(outcomes) {
            match outcome {
                Ok(sample) => results.record(run.test, kind, run.index, sample),
                Err(e) => results.fail(run.test, kind, &e),
            }
        }
    });
    results
}

/// One run of two at once: the test, the first kind and the other, the run's number, and whether the two
/// swap places in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run<K> {
    pub(crate) test: TcpTest,
    pub(crate) kinds: [K; 2],
    pub(crate) index: usize,
    swapped: bool,
}

impl<K> Run<K> {
    /// The places (namespaces) of the first kind and of the other in this run.
    pub(crate) fn places<'p, P>(&self, places: &'p [P; 2]) -> [&'p P; 2] {
        if self.swapped {
            [&places[1], &places[0]]
        } else {
            [&places[0], &places[1]]
        }
    }
}

/// The order of two at once: in every round and test, `first` beside each of `others`, the two swapping
/// places every round, so that neither keeps an advantage one place might have (the order of creation, the
/// port of its iperf3); `each` measures one run. Shows the progress on stderr.
pub(crate) fn schedule<K: Copy>(
    first: K,
    others: &[K],
    tests: &[TcpTest],
    rounds: u32,
    label: fn(K) -> &'static str,
    mut each: impl FnMut(Run<K>),
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
                each(Run {
                    test,
                    kinds: [first, other],
                    index: round * others.len() + i,
                    swapped: round % 2 == 1,
                });
            }
        }
    }
    eprintln!("\r{:<110}", "");
}

/// Measures two forwarders at once, their traffic starting together once both are up.
fn side_by_side(
    bins: &Binaries,
    runs: [(&Pair, Forwarder); 2],
    test: TcpTest,
    plan: Plan,
) -> [Result<Sample, String>; 2] {
    at_once(runs, |(pair, kind), ready| {
        measure_with(bins, pair, kind, test, plan, ready)
    })
}

/// Runs the two measurements of `runs` on threads of their own, `measure` calling the `ready` it is given
/// once its set-up is done, right before its traffic starts: there the two wait for each other, so that
/// their traffic starts together.
pub(crate) fn at_once<R: Send, T: Send>(
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
    use crate::measure::TESTS;
    use crate::results::table;

    #[test]
    fn the_first_runs_beside_each_other_and_the_places_swap_every_round() {
        let mut runs = Vec::new();
        schedule(
            1u8,
            &[2, 3],
            &TESTS[..2],
            2,
            |_| "x",
            |run| {
                runs.push((run.test, run.kinds, run.index, *run.places(&["p", "q"])[0]));
            },
        );
        let expected = [
            (TESTS[0], [1, 2], 0, "p"),
            (TESTS[0], [1, 3], 1, "p"),
            (TESTS[1], [1, 2], 0, "p"),
            (TESTS[1], [1, 3], 1, "p"),
            (TESTS[0], [1, 2], 2, "q"),
            (TESTS[0], [1, 3], 3, "q"),
            (TESTS[1], [1, 2], 2, "q"),
            (TESTS[1], [1, 3], 3, "q"),
        ];
        assert_eq!(runs.len(), expected.len());
        for (got, want) in runs.iter().zip(expected) {
            assert_eq!(
                (got.0.label(), got.1, got.2, got.3),
                (want.0.label(), want.1, want.2, want.3)
            );
        }
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
