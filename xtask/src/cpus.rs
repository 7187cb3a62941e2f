//! Which CPUs the forwarder and the traffic generator run on.
//!
//! On a small machine the scheduler moves the forwarder, the iperf3 client and server and the kernel's
//! receive work between the cores at random, and the throughput of two identical runs differs by a quarter.
//! Pinning the forwarder to the last CPU and the traffic to the others (with `taskset`, from util-linux)
//! makes runs repeatable, and matches how a VPN runs its data path: on a core of its own.

use std::process::Command;

/// CPU lists for `taskset -c`: the forwarder's and the traffic's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pinning {
    /// The forwarder's CPU (the last one).
    pub(crate) forwarder: String,
    /// The traffic generator's CPUs (all the others).
    pub(crate) traffic: String,
}

impl Pinning {
    /// The split for a machine with `cpus` CPUs; `None` with fewer than two (nothing to separate).
    pub(crate) fn for_cpus(cpus: usize) -> Option<Self> {
        let last = cpus.checked_sub(1).filter(|l| *l >= 1)?;
        let traffic = if last == 1 {
            "0".to_owned()
        } else {
            format!("0-{}", last - 1)
        };
        Some(Self {
            forwarder: last.to_string(),
            traffic,
        })
    }

    /// The split for this machine, if `taskset` exists and there are at least two CPUs.
    pub(crate) fn detect() -> Option<Self> {
        let has_taskset = Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if has_taskset {
            Self::for_cpus(cpus)
        } else {
            None
        }
    }
}

/// `program` run through `taskset -c cpus` when `cpus` is given.
pub(crate) fn pinned(cpus: Option<&str>, program: &str) -> (String, Vec<String>) {
    match cpus {
        Some(cpus) => (
            "taskset".to_owned(),
            vec!["-c".to_owned(), cpus.to_owned(), program.to_owned()],
        ),
        None => (program.to_owned(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarder_gets_the_last_cpu_and_the_traffic_the_others() {
        assert_eq!(Pinning::for_cpus(1), None);
        let two = Pinning::for_cpus(2).expect("two CPUs");
        assert_eq!((two.forwarder.as_str(), two.traffic.as_str()), ("1", "0"));
        let eight = Pinning::for_cpus(8).expect("eight CPUs");
        assert_eq!(
            (eight.forwarder.as_str(), eight.traffic.as_str()),
            ("7", "0-6")
        );
    }

    #[test]
    fn pinned_prefixes_taskset_only_when_asked() {
        assert_eq!(pinned(None, "iperf3"), ("iperf3".to_owned(), vec![]));
        let (program, args) = pinned(Some("0"), "iperf3");
        assert_eq!(program, "taskset");
        assert_eq!(args, ["-c", "0", "iperf3"]);
    }
}
