//! What /proc says of a process's threads and descriptors: the leak tests count them, the example tests and
//! `xtask` find threads by name.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One thread of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Its directory, `/proc/PID/task/TID`.
    pub dir: PathBuf,
    /// Its name (`comm`, at most 15 bytes).
    pub name: String,
}

/// The threads of process `pid`. A thread that ends while they are listed is left out.
pub fn threads(pid: u32) -> io::Result<Vec<Thread>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    Ok(tasks
        .flatten()
        .filter_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            Some(Thread {
                name: comm.trim_end().to_owned(),
                dir: task.path(),
            })
        })
        .collect())
}

/// The names of the threads of process `pid`, sorted; none when it cannot be read.
pub fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = threads(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|thread| thread.name)
        .collect();
    names.sort();
    names
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Threads of this process once the count holds still: a thread that was just joined can linger in
/// /proc/self/task for a moment while the kernel reaps it, and a baseline taken then would count it.
/// Waits at most 2 s.
pub fn settled_thread_count() -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = thread_count();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = thread_count();
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    // The directory handle read_dir holds is one of the entries; it is not the process's own.
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(1))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_thread_is_listed_with_its_directory_while_it_runs() {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (ready, running) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("proc-test-x".into())
            .spawn(move || {
                ready.send(()).unwrap();
                let _ = stopped.recv();
            })
            .unwrap();
        running.recv().unwrap();
        let names = thread_names(std::process::id());
        assert_eq!(
            names.iter().filter(|n| *n == "proc-test-x").count(),
            1,
            "{names:?}"
        );
        assert!(names.is_sorted());
        let listed = threads(std::process::id()).unwrap();
        let dir = &listed.iter().find(|t| t.name == "proc-test-x").unwrap().dir;
        assert!(dir.join("stat").exists(), "{}", dir.display());
        drop(stop);
        thread.join().unwrap();
        assert!(threads(u32::MAX).is_err());
    }
}
