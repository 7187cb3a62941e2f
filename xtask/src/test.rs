//! `cargo xtask test`: the one test command.
//!
//! Runs, in order: the format check, clippy with `-D warnings`, every unprivileged test of the workspace
//! (unit, property, integration, doc, fuzz-corpus replay), then the privileged tests (the ones marked
//! `#[ignore = "privileged: ..."]`, which create TUN devices inside network namespaces of their own).
//! Without CAP_NET_ADMIN the privileged step is skipped, loudly, with the reason.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Tallies of `cargo test`'s `test result:` lines over every test binary run.
#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Adds the counts of one line such as `test result: ok. 12 passed; 0 failed; 3 ignored; ...`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Options of `cargo xtask test`.
#[derive(Debug, Default)]
struct Options {
    /// Skip fmt and clippy (for quick local iterations).
    no_lint: bool,
    /// Run only the unprivileged tests even when privileged ones could run.
    unprivileged: bool,
    /// Extra arguments handed to the test binaries (a name filter, for example).
    test_args: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--no-lint" => opts.no_lint = true,
            "--unprivileged" => opts.unprivileged = true,
            "--" => opts.test_args.extend(iter.by_ref().cloned()),
            other => {
                return Err(format!(
                    "test: unknown option `{other}` (options: --no-lint, --unprivileged, -- FILTER)"
                ));
            }
        }
    }
    Ok(opts)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    if !opts.no_lint {
        step("format check", &["fmt", "--all", "--", "--check"])?;
        step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )?;
        // The workspace build unifies the facade's optional `tokio` feature on (the system tests use it):
        // lint the facade as most users build it, without.
        step(
            "clippy (tun without features)",
            &["clippy", "-p", "tun", "--lib", "--", "-D", "warnings"],
        )?;
    }

    let mut unprivileged = Tally::default();
    let mut args: Vec<&str> = vec!["test", "--workspace", "--"];
    args.extend(opts.test_args.iter().map(String::as_str));
    test_step("unprivileged tests", &args, &mut unprivileged)?;

    let mut privileged = Tally::default();
    let skipped_reason = if opts.unprivileged {
        Some("--unprivileged was given".to_string())
    } else {
        privilege_problem()
    };
    match &skipped_reason {
        None => {
            // tun-wg's tests drive `wg`, ping through the tunnel and talk to wireguard-go.
            for (program, package) in [
                ("wg", "wireguard-tools"),
                ("wireguard-go", "wireguard-go"),
                ("ping", "iputils-ping"),
            ] {
                crate::netns::ensure_installed(program, package)?;
            }
            let mut args: Vec<&str> = vec!["test", "--workspace", "--", "--ignored"];
            args.extend(opts.test_args.iter().map(String::as_str));
            test_step(
                "privileged tests (network namespaces, real TUN devices)",
                &args,
                &mut privileged,
            )?;
        }
        Some(reason) => {
            eprintln!();
            eprintln!("{}", "!".repeat(78));
            eprintln!(
                "!! SKIPPED: {} privileged tests were NOT run: {reason}.",
                unprivileged.ignored
            );
            eprintln!(
                "!! They create TUN devices in network namespaces and need root or CAP_NET_ADMIN,"
            );
            eprintln!(
                "!! /dev/net/tun and iproute2's `ip`. Run `sudo cargo xtask test` to run them."
            );
            eprintln!("{}", "!".repeat(78));
            eprintln!();
        }
    }

    // The privileged run executes exactly the tests the unprivileged run ignored.
    let skipped = if skipped_reason.is_some() {
        unprivileged.ignored
    } else {
        0
    };
    let passed = unprivileged.passed + privileged.passed;
    let failed = unprivileged.failed + privileged.failed;
    println!();
    println!("test: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        return Err(format!("{failed} tests failed"));
    }
    Ok(())
}

/// Why the privileged tests cannot run here, or `None` when they can.
fn privilege_problem() -> Option<String> {
    if !has_cap_net_admin() {
        return Some("this process lacks CAP_NET_ADMIN".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun does not exist".into());
    }
    let ip_works = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ip_works {
        return Some("iproute2's `ip` is not installed".into());
    }
    None
}

/// Reads the effective capability set of this process; CAP_NET_ADMIN is bit 12.
fn has_cap_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn banner(name: &str) {
    println!("\n==> {name}");
}

/// Runs a cargo command, failing the whole run if it fails.
fn step(name: &str, args: &[&str]) -> Result<(), String> {
    banner(name);
    let status = cargo()
        .args(args)
        .status()
        .map_err(|e| format!("{name}: cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("{name} failed ({status})"));
    }
    Ok(())
}

/// Runs `cargo test ...`, echoing its output while tallying the results of every test binary.
fn test_step(name: &str, args: &[&str], tally: &mut Tally) -> Result<(), String> {
    banner(name);
    let mut child = cargo()
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: cannot run cargo: {e}"))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            tally.add_line(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("{name}: {e}"))?;
    if !status.success() {
        if tally.failed == 0 {
            // A build failure or a crashed test binary: no `test result` line says it.
            tally.failed += 1;
        }
        println!("\ntest: {} passed, {} failed", tally.passed, tally.failed);
        return Err(format!("{name} failed ({status})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sums_every_result_line() {
        let mut t = Tally::default();
        t.add_line("test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add_line(
            "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 3 tests");
        assert_eq!((t.passed, t.failed, t.ignored), (13, 2, 3));
    }

    #[test]
    fn unknown_option_is_an_error() {
        assert!(parse(&["--bogus".to_string()]).is_err());
        let opts = parse(&["--no-lint".into(), "--".into(), "create".into()]).unwrap();
        assert!(opts.no_lint);
        assert_eq!(opts.test_args, ["create"]);
    }
}
