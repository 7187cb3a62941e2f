//! One measurement: a forwarder through one TCP test, its throughput, CPU and system calls per packet.

use std::time::Duration;

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
/// starts (where `cargo xtask bench --together` lines up two measurements).
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

/// Back to back: in every round and test, each of `kinds` once, each round starting with the next, so that
/// none keeps the advantage of going first; `each(test, kind, round)` measures one. Shows the progress on
/// stderr.
pub(crate) fn in_rounds<K: Copy>(
    kinds: &[K],
    tests: &[TcpTest],
    rounds: u32,
    label: fn(K) -> &'static str,
    mut each: impl FnMut(TcpTest, K, usize),
) {
    let total = rounds as usize * tests.len() * kinds.len();
    let mut done = 0;
    for round in 0..rounds as usize {
        for &test in tests {
            for i in 0..kinds.len() {
                let kind = kinds[(i + round) % kinds.len()];
                done += 1;
                eprint!(
                    "\r  [{done}/{total}] round {} {:<18} {:<26}",
                    round + 1,
                    test.label(),
                    label(kind)
                );
                each(test, kind, round);
            }
        }
    }
    eprintln!("\r{:<80}", "");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_starts_with_the_next_kind() {
        let mut order = Vec::new();
        in_rounds(
            &['a', 'b', 'c'],
            &TESTS[..1],
            3,
            |_| "x",
            |_, kind, round| {
                order.push((round, kind));
            },
        );
        assert_eq!(
            order,
            [
                (0, 'a'),
                (0, 'b'),
                (0, 'c'),
                (1, 'b'),
                (1, 'c'),
                (1, 'a'),
                (2, 'c'),
                (2, 'a'),
                (2, 'b'),
            ]
        );
    }
}
