//! `cargo xtask bench`: TCP bulk throughput through each forwarder, side by side in one run.
//!
//! For every test (TCP v4/v6, 1 and 4 streams) the forwarders (on TUN devices, and the library's on TAP
//! devices too) run one after the other, and the whole sequence repeats `--rounds` times (starting with a
//! different forwarder each round); each cell of the table is the round with the median throughput. Traffic comes from iperf3 (Debian's package).
//! `--together` runs them two at a time instead ([`together`](crate::together)).

use crate::measure::{Plan, TESTS, in_rounds, measure};
use crate::netns::{clean_up_on_signal, ensure_installed, require_root, sweep_stale_namespaces};
use crate::results::{LEGEND, Results, table};
use crate::traffic::TcpTest;
use crate::tunnel::{Binaries, Forwarder, Pair};

/// Measures every forwarder in every test of `tests`, interleaved, `plan.rounds` times.
pub(crate) fn run_all(
    bins: &Binaries,
    pair: &Pair,
    tests: &[TcpTest],
    forwarders: &[Forwarder],
    plan: Plan,
) -> Results {
    let mut results = Results::new(forwarders);
    in_rounds(
        forwarders,
        tests,
        plan.rounds,
        Forwarder::label,
        |test, kind, round| match measure(bins, pair, kind, test, plan) {
            Ok(sample) => results.record(test, kind, round, sample),
            Err(e) => results.fail(test, kind, &e),
        },
    );
    results
}

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
                options.forwarders = pick(flag, value, &Forwarder::PICKABLE)?;
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
    if options.forwarders.contains(&Forwarder::Baseline)
        && std::env::var_os("TUN_FORWARD_BASELINE").is_none()
    {
        return Err(
            "--only 8 (the baseline build) needs TUN_FORWARD_BASELINE=path/to/tun-forward".into(),
        );
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
            results.failures().join("\n  ")
        ));
    }
    wireguard
}

#[cfg(test)]
mod tests {
    use super::*;

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
