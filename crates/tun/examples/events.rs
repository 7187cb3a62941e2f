//! Watches the link of a new TUN device and prints one line per event as it arrives.
//!
//! ```text
//! cargo run -p tun --example events -- NAME
//! ```
//!
//! Creates the TUN device NAME in the current network namespace (needs root or CAP_NET_ADMIN) and prints
//! `up`, `down` or `mtu 1400` whenever the link changes, for example after `ip link set NAME up` or
//! `ip link set NAME mtu 1400` from another terminal. It follows the device into other namespaces too
//! (`ip link set NAME netns OTHER`). SIGINT (Ctrl-C) or SIGTERM closes the device and exits with status 0.

use std::io::Write;
use std::process::ExitCode;

use nix::sys::signal::{SigSet, Signal};
use tun::Builder;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(name), None) = (args.next(), args.next()) else {
        eprintln!("usage: events NAME");
        return ExitCode::from(2);
    };
    match run(&name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message and each of its causes.
            let mut text = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            eprintln!("events: {text}");
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Blocked before any thread exists (the monitor thread is started by build), so every thread inherits
    // the mask and the signals wait for `signals.wait()` below instead of killing the process.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;

    let tun = Builder::new().name(name).build()?;
    let events = tun.events();
    let printer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for event in &events {
            writeln!(out, "{event}")?;
            out.flush()?;
        }
        Ok(())
    });

    let signal = signals.wait()?;
    eprintln!("events: {signal:?}, closing {}", tun.name());
    // Stops the monitor, which disconnects the receiver and so ends the printer.
    tun.close()?;
    match printer.join() {
        Ok(printed) => printed?,
        Err(_) => return Err("printer thread panicked".into()),
    }
    Ok(())
}
