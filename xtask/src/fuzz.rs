//! `cargo xtask fuzz [--time S] [--runs N] [TARGET...]`: runs tun-offload's cargo-fuzz targets one after
//! the other with the nightly toolchain, installing cargo-fuzz first if it is missing, and prints how many
//! inputs each target executed and how many per second.
//!
//! Each target runs for S seconds (default 60), or, with `--runs N`, until it has executed N inputs
//! (`--runs 10000000` for a deep run); given both, whichever comes first ends it.
//!
//! The targets are built without AddressSanitizer (safe Rust throughout, so it would only slow the search)
//! but with debug assertions and overflow checks, so that a broken invariant is a crash. Comparison tracing
//! is switched off for the build (`--no-trace-compares`) and back on for tun-offload alone by a per-package
//! profile in `fuzz/Cargo.toml`: the checks around the engine (etherparse, the reference checksum, the
//! packet builders) only judge its output, and tracing their every loop comparison cost more than the
//! engine itself. The fuzzer runs with glibc's malloc told to keep freed memory (`GLIBC_TUNABLES`), as
//! each input allocates and frees up to a few megabytes and returning them to the kernel every time made
//! page faults a fifth of each run.
//!
//! New inputs go to a scratch corpus under `fuzz/target/` (ignored by git), seeded from the committed
//! corpus in `fuzz/corpus/<target>/`, so a run never changes the repository. To keep what a run found,
//! merge the two into a fresh directory with libFuzzer's `-merge=1` (it keeps the smallest inputs that
//! cover every feature), put that in place of the committed corpus, which the stable test
//! `tests/fuzz_corpus.rs` replays, and commit it. From `crates/tun-offload/fuzz`, after a run:
//! `mkdir /tmp/min && target/x86_64-unknown-linux-gnu/release/TARGET -merge=1 /tmp/min corpus/TARGET
//! target/corpus/TARGET`, then replace `corpus/TARGET` with `/tmp/min`. (`cargo fuzz cmin` minimizes one
//! directory in place; given the scratch corpus as an extra directory, it merges into that one instead.)
//! A crash leaves its input in `fuzz/artifacts/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const TARGETS: [&str; 3] = ["decode", "gso_split", "handle_gro"];
const DEFAULT_SECONDS: u64 = 60;

/// cargo fuzz's build options, for `build` and `run` alike (see the module documentation).
const BUILD_FLAGS: [&str; 3] = ["--sanitizer", "none", "--no-trace-compares"];

/// Keeps freed memory in the process: no mmap for large blocks, no trimming of the heap.
const MALLOC_TUNABLES: &str = "glibc.malloc.mmap_threshold=4294967296:\
glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=67108864";

/// When a target's run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    seconds: Option<u64>,
    runs: Option<u64>,
}

impl Limits {
    /// libFuzzer's flags for these limits.
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(s) = self.seconds {
            flags.push(format!("-max_total_time={s}"));
        }
        if let Some(n) = self.runs {
            flags.push(format!("-runs={n}"));
        }
        flags
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let (limits, targets) = parse_args(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?;
    let crate_dir = root.join("crates/tun-offload");
    ensure_cargo_fuzz()?;
    let mut summary = Vec::new();
    for target in &targets {
        let (execs, seconds) = run_target(&crate_dir, target, limits)?;
        summary.push(format!(
            "{target:<12} {execs:>12} execs in {seconds:.0} s ({:.0} /s)",
            execs as f64 / seconds.max(1.0)
        ));
    }
    println!("\nfuzz summary:");
    for line in summary {
        println!("  {line}");
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(Limits, Vec<String>), String> {
    let mut seconds = None;
    let mut runs = None;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => {
                let v = it.next().ok_or("--time needs a number of seconds")?;
                seconds = Some(
                    v.parse()
                        .map_err(|_| format!("--time: `{v}` is not a number of seconds"))?,
                );
            }
            "--runs" => {
                let v = it.next().ok_or("--runs needs a number of inputs")?;
                runs = Some(
                    v.parse()
                        .map_err(|_| format!("--runs: `{v}` is not a number of inputs"))?,
                );
            }
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => {
                return Err(format!(
                    "fuzz: unknown argument `{other}` (targets: {})",
                    TARGETS.join(", ")
                ));
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    if seconds.is_none() && runs.is_none() {
        seconds = Some(DEFAULT_SECONDS);
    }
    Ok((Limits { seconds, runs }, targets))
}

/// cargo-fuzz is a cargo subcommand installed per user; install it from crates.io when absent.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask fuzz: installing cargo-fuzz");
    let status = Command::new("cargo")
        .args(["+nightly", "install", "--locked", "cargo-fuzz"])
        .status()
        .map_err(|e| format!("cargo install cargo-fuzz: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo install cargo-fuzz failed: {status}"))
    }
}

/// Runs one target and returns its executed-input count, read from libFuzzer's final statistics, and
/// the seconds the run took.
fn run_target(crate_dir: &Path, target: &str, limits: Limits) -> Result<(u64, f64), String> {
    let seeds = crate_dir.join("fuzz/corpus").join(target);
    let scratch: PathBuf = crate_dir.join("fuzz/target/corpus").join(target);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    // Built first, so that the run's clock counts fuzzing only; the run must use the same flags, or cargo
    // fuzz would build again.
    let build = Command::new("cargo")
        .current_dir(crate_dir)
        .args(["+nightly", "fuzz", "build"])
        .args(BUILD_FLAGS)
        .arg(target)
        .status()
        .map_err(|e| format!("cargo fuzz build {target}: {e}"))?;
    if !build.success() {
        return Err(format!("cargo fuzz build {target} failed: {build}"));
    }
    eprintln!("xtask fuzz: {target} ({})", limits.flags().join(" "));
    let started = Instant::now();
    let mut child = Command::new("cargo")
        .current_dir(crate_dir)
        .args(["+nightly", "fuzz", "run"])
        .args(BUILD_FLAGS)
        .arg(target)
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .args(limits.flags())
        .arg("-print_final_stats=1")
        .env("GLIBC_TUNABLES", MALLOC_TUNABLES)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    let mut execs = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                execs = n.trim().parse().ok();
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "fuzz target `{target}` failed after {:.0} s ({status}); the input is in {}",
            started.elapsed().as_secs_f64(),
            crate_dir.join("fuzz/artifacts").join(target).display()
        ));
    }
    let seconds = started.elapsed().as_secs_f64();
    execs
        .map(|n| (n, seconds))
        .ok_or_else(|| format!("fuzz target `{target}` printed no execution count"))
}
