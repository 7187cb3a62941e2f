//! What both forwarders do alike around their data path: open devices inside a named namespace, name their
//! threads as the benchmark looks for them, build the same tokio runtime, and wait for the stop signal.

use std::sync::Arc;

use tun_test_support::signal::SignalSet;

use crate::stats::Counters;

/// Runs `open` on a thread that joined the network namespace `netns` (as `ip netns` names it): what it
/// creates lives there, and its fds then work from any thread.
pub fn in_netns<T: Send>(
    netns: &str,
    open: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    let ns = tun_test_support::netns::open_named(netns)
        .map_err(|e| format!("open network namespace {netns}: {e}"))?;
    tun_sys::netns::run_in(&ns, open)
        .map_err(|e| format!("enter network namespace {netns}: {e}"))?
}

/// The name of forwarding thread `index`: `fwd a->b`, `fwd b->a` for the first pair of queues (the names
/// `cargo xtask bench` measures), then `fwd a->b q1`, `fwd b->a q1`, ... for the others.
#[must_use]
pub fn thread_name(index: usize) -> String {
    let direction = ["fwd a->b", "fwd b->a"][index % 2];
    match index / 2 {
        0 => direction.to_owned(),
        queue => format!("{direction} q{queue}"),
    }
}

/// Spawns the forwarding threads, `bodies` in pairs (a to b, then b to a) of each pair of queues, each
/// named by [`thread_name`]. They run until the process exits.
pub fn spawn_threads(bodies: Vec<Box<dyn FnOnce() + Send>>) -> Result<(), String> {
    for (i, body) in bodies.into_iter().enumerate() {
        let name = thread_name(i);
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(body)
            .map_err(|e| format!("spawn {name}: {e}"))?;
    }
    Ok(())
}

/// The runtime of an async forwarder: multi-thread with two workers (as many threads as the blocking
/// forwarder has), named `fwd tokio`, I/O only. Its tasks run until it is dropped.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fwd tokio")
        .enable_io()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Call it before any thread exists, so that every
/// thread inherits the mask and the signal waits for [`report_on_signal`] instead of killing the process.
pub fn block_termination() -> Result<SignalSet, String> {
    let signals = SignalSet::termination();
    signals
        .block_in_thread()
        .map_err(|e| format!("block signals: {e}"))?;
    Ok(signals)
}

/// Waits for one of `signals`, then prints both directions' counters in the line format the benchmark
/// parses (`a->b: packets N bytes N ...`), as `who`.
pub fn report_on_signal(
    who: &str,
    signals: &SignalSet,
    counters: &[Arc<Counters>; 2],
) -> Result<(), String> {
    let signal = signals
        .wait()
        .map_err(|e| format!("wait for a signal: {e}"))?;
    eprintln!("{who}: stopping on {signal:?}");
    println!("a->b: {}", counters[0].snapshot());
    println!("b->a: {}", counters[1].snapshot());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_queue_pair_keeps_the_plain_names_the_benchmark_measures() {
        let names: Vec<String> = (0..4).map(thread_name).collect();
        assert_eq!(
            names,
            ["fwd a->b", "fwd b->a", "fwd a->b q1", "fwd b->a q1"]
        );
    }
}
