//! What a running process costs, read from /proc: CPU time of the process, and read/write system calls
//! per thread (each forwarder direction runs in its own named thread).

use std::process::Command;
use std::time::Instant;

/// CPU time a process has used so far, in clock ticks, and when that was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTime {
    user: u64,
    system: u64,
    at: Instant,
}

/// CPU use between two [`CpuTime`] readings, in percent of one core.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUse {
    /// User time, % of one core.
    pub(crate) user: f64,
    /// System (kernel) time, % of one core.
    pub(crate) system: f64,
}

impl CpuUse {
    /// User plus system time.
    pub(crate) fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// Clock ticks per second of /proc's time fields (USER_HZ).
pub(crate) fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

impl CpuTime {
    /// Reads utime and stime of `pid` from /proc/PID/stat.
    pub(crate) fn read(pid: u32) -> Result<Self, String> {
        let path = format!("/proc/{pid}/stat");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let (user, system) =
            parse_stat_times(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
        Ok(Self {
            user,
            system,
            at: Instant::now(),
        })
    }

    /// CPU use from `self` to the later reading `end`.
    pub(crate) fn until(&self, end: &Self, ticks_per_second: f64) -> CpuUse {
        let wall = end.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 {
            return CpuUse::default();
        }
        let pct = |a: u64, b: u64| b.saturating_sub(a) as f64 / ticks_per_second / wall * 100.0;
        CpuUse {
            user: pct(self.user, end.user),
            system: pct(self.system, end.system),
        }
    }
}

/// utime and stime (fields 14 and 15) of a /proc/PID/stat line. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name come field 3 (state) onwards: utime is field 14, the 12th from here.
    let user = fields.nth(11)?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((user, system))
}

/// Read and write system calls a thread has made so far (/proc/PID/task/TID/io).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SyscallCounts {
    /// read(2)-family calls.
    pub(crate) reads: u64,
    /// write(2)-family calls.
    pub(crate) writes: u64,
}

impl SyscallCounts {
    /// Counts of the threads of `pid` named `thread` (their comm), summed with those of its siblings named
    /// `thread` followed by a space and a suffix (`fwd a->b q1`: the same direction on another queue).
    pub(crate) fn of_thread(pid: u32, thread: &str) -> Result<Self, String> {
        let threads =
            tun_test_support::proc::threads(pid).map_err(|e| format!("/proc/{pid}/task: {e}"))?;
        let mut total = None::<Self>;
        for task in threads {
            let sibling = task
                .name
                .strip_prefix(thread)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
            if sibling {
                let io_path = task.dir.join("io");
                let io = std::fs::read_to_string(&io_path)
                    .map_err(|e| format!("{}: {e}", io_path.display()))?;
                let counts = parse_io(&io)
                    .ok_or_else(|| format!("{}: unexpected format", io_path.display()))?;
                let sum = total.get_or_insert_default();
                sum.reads += counts.reads;
                sum.writes += counts.writes;
            }
        }
        total.ok_or_else(|| format!("process {pid} has no thread named {thread:?}"))
    }

    /// Calls made since the earlier reading `start`.
    pub(crate) fn since(&self, start: &Self) -> Self {
        Self {
            reads: self.reads.saturating_sub(start.reads),
            writes: self.writes.saturating_sub(start.writes),
        }
    }
}

fn parse_io(io: &str) -> Option<SyscallCounts> {
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(SyscallCounts {
        reads: field("syscr:")?,
        writes: field("syscw:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_fields_14_and_15_even_with_odd_names() {
        let line =
            "1234 (fwd (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 777 333 0 0 20 0 3 0 5 0 0";
        assert_eq!(parse_stat_times(line), Some((777, 333)));
    }

    #[test]
    fn io_counts_come_from_syscr_and_syscw() {
        let io = "rchar: 1\nwchar: 2\nsyscr: 30\nsyscw: 40\nread_bytes: 0\n";
        assert_eq!(
            parse_io(io),
            Some(SyscallCounts {
                reads: 30,
                writes: 40
            })
        );
        assert_eq!(parse_io("rchar: 1\n"), None);
    }

    #[test]
    fn a_directions_counts_sum_its_threads_on_every_queue_and_no_other() {
        use std::io::Read;
        use std::sync::{Arc, Barrier};

        // Each thread makes its reads, then stays until the counts were taken: a thread that is gone from
        // /proc counts for nothing.
        let made = Arc::new(Barrier::new(4));
        let counted = Arc::new(Barrier::new(4));
        let threads: Vec<_> = [("tst a->b", 10), ("tst a->b q1", 20), ("tst a->bx", 1000)]
            .into_iter()
            .map(|(name, reads)| {
                let (made, counted) = (Arc::clone(&made), Arc::clone(&counted));
                std::thread::Builder::new()
                    .name(name.to_owned())
                    .spawn(move || {
                        let mut zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
                        let mut byte = [0u8; 1];
                        for _ in 0..reads {
                            zero.read_exact(&mut byte).expect("read /dev/zero");
                        }
                        made.wait();
                        counted.wait();
                    })
                    .expect("spawn")
            })
            .collect();
        made.wait();
        let counts = SyscallCounts::of_thread(std::process::id(), "tst a->b");
        let missing = SyscallCounts::of_thread(std::process::id(), "tst b->a");
        counted.wait();
        for thread in threads {
            thread.join().expect("join");
        }
        // 10 + 20 reads of the direction's two queues, not the 1000 of `tst a->bx`.
        let reads = counts.expect("threads named tst a->b").reads;
        assert!((30..1000).contains(&reads), "{reads} reads");
        assert!(missing.is_err());
    }

    #[test]
    fn this_process_can_be_measured() {
        let start = CpuTime::read(std::process::id()).expect("own stat");
        let end = CpuTime::read(std::process::id()).expect("own stat");
        let used = start.until(&end, ticks_per_second());
        assert!(used.total() >= 0.0);
    }
}
