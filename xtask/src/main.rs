//! `cargo xtask`: the project's automation.

mod bench;
mod cpus;
mod demo;
mod fuzz;
mod measure;
mod netns;
mod procstat;
mod results;
mod test;
mod together;
mod traffic;
mod tunnel;
mod wg_bench;
mod wg_together;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo     a short tour: TCP through a TUN forwarder, 7 forwarders side by side, sha256-checked, then
           WireGuard endpoints side by side (root)
  bench    [--time S] [--rounds N] [--no-pin] [--together] [--only 1,5,...] [--tests 1,3]
           forwarders side by side (root); --together runs each beside the first, at the same time;
           then WireGuard endpoints side by side (the full run only)
  bench    --wireguard [--time S] [--rounds N] [--only 1,3,...] [--tests 1,2]
           only the WireGuard table: tun-wg, wireguard-go, boringtun-cli (root)
  test     fmt check, clippy, unit and property tests, then the privileged tests (as root)
  fuzz     [--time S] [TARGET...]  run tun-offload's fuzz targets S seconds each (default 60, nightly)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo xtask CMD --help` is a request for the usage, not an option of CMD.
    if args.get(1).is_some_and(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}
