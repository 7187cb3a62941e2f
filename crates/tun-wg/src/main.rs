//! `tun-wg`: a userspace WireGuard endpoint on the `tun` facade.
//!
//! `tun-wg [-f|--foreground] [--no-offload] [--config FILE] INTERFACE`. This first version reads and checks
//! the command line and the configuration file; the data path follows.
// The parsers are used by the data path, which is not here yet.
#![allow(dead_code)]

mod cidr;
mod cli;
mod conf_file;
mod config;
mod key;
mod uapi;

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tun-wg: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if let Some(Err(e)) = options.config.as_deref().map(conf_file::load) {
        eprintln!("tun-wg: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("tun-wg: the data path is not built yet");
    ExitCode::FAILURE
}
