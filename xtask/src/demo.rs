//! `cargo xtask demo`: a short tour of the data path, with an end-to-end integrity check.

use crate::bench::{print_pinning, run_all};
use crate::measure::{Plan, TESTS};
use crate::netns::{clean_up_on_signal, ensure_installed, require_root, sweep_stale_namespaces};
use crate::results::{LEGEND, table};
use crate::traffic::checked_transfer;
use crate::tunnel::{Binaries, Forwarder, Pair, Tunnel};

/// Bytes sent through the tunnel, per IP version, for the integrity check.
const CHECKED_BYTES: u64 = 256 * 1024 * 1024;

const INTRO: &str = "\
What this shows
---------------
Two network namespaces, A and B, each get a TUN device (tunA, tunB). A user-space forwarder process
reads packets from tunA and writes them to tunB, and the other way round: the data path of a VPN without
the encryption. Whatever A sends to B's address (10.77.0.2 / fd77::2) crosses that process.

With offloads on, the kernel hands the forwarder 64 KiB TCP super-packets; the library splits each into
MTU-sized packets (as a VPN must, to encrypt them one by one) and coalesces them again before writing (GRO),
so the kernel sees few, large packets on both sides. Four forwarders are measured one after the other:
  (1) this library with offloads      (2) this library without offloads (one packet per system call)
  (3) passthrough: each raw super-packet written unchanged, the ceiling of any TUN data path
  (4) tun-rs 2.8.16 with offloads, the best-known Rust peer
Then 256 MiB go through (1) over IPv4 and over IPv6, hashed with SHA-256 at both ends.
";

/// `cargo xtask demo`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("demo takes no options (got {extra})"));
    }
    require_root("cargo xtask demo")?;
    clean_up_on_signal()?;
    sweep_stale_namespaces();
    ensure_installed("iperf3", "iperf3")?;
    let bins = Binaries::build()?;
    println!("{INTRO}");
    // Unpinned, as users run it (`cargo xtask bench` measures both ways).
    let pair = Pair::create(false)?;
    print_pinning(&pair);
    // IPv4 with 1 and 4 streams: the first two tests of the full benchmark.
    let tests = &TESTS[..2];
    let plan = Plan {
        seconds: 2,
        omit: 0,
        rounds: 1,
    };
    println!(
        "Throughput, 2 s per forwarder and test (`cargo xtask bench` measures longer, with repeats):\n"
    );
    let results = run_all(&bins, &pair, tests, &Forwarder::ALL, plan);
    println!("{}", table(&results, tests, plan.rounds));
    println!("{LEGEND}\n");

    println!(
        "Integrity: {} MiB per IP version through (1), SHA-256 at both ends",
        CHECKED_BYTES >> 20
    );
    let tunnel = Tunnel::start(&bins, Forwarder::Offload, &pair)?;
    let mut checks = Vec::new();
    for v6 in [false, true] {
        let version = if v6 { "IPv6" } else { "IPv4" };
        let started = std::time::Instant::now();
        let outcome = checked_transfer(&bins, &pair, v6, CHECKED_BYTES);
        match &outcome {
            Ok(digest) => println!(
                "  {version}: identical at both ends, sha256 {digest} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => println!("  {version}: FAILED: {e}"),
        }
        checks.push(outcome);
    }
    let report = tunnel.stop()?;
    println!(
        "  the forwarder split {} super-packets into {} packets on the way A -> B",
        report.a_to_b.get("super-packets"),
        report.a_to_b.get("packets")
    );
    if let Some(Err(e)) = checks.into_iter().find(Result::is_err) {
        return Err(format!("integrity check failed: {e}"));
    }
    if results.failed() {
        return Err("some throughput measurements failed (see above)".into());
    }
    println!(
        "\nDone: namespaces and processes are cleaned up. `cargo xtask bench` runs the full comparison."
    );
    Ok(())
}
