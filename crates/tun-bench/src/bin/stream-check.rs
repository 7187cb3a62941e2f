//! A checked TCP stream for the demo.
//!
//! `stream-check recv --listen ADDR:PORT [--timeout S]` prints `listening ADDR:PORT`, accepts one
//! connection and prints `bytes N sha256 HEX` of what it received.
//! `stream-check send --to ADDR:PORT --bytes N [--seed S] [--timeout S]` sends N bytes of a deterministic
//! pseudo-random stream and prints the same line for what it sent.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use tun_bench::stream;

const USAGE: &str = "usage: stream-check recv --listen ADDR:PORT [--timeout S]
       stream-check send --to ADDR:PORT --bytes N [--seed S] [--timeout S]";

struct Options {
    addr: Option<SocketAddr>,
    bytes: Option<u64>,
    seed: u64,
    timeout: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        addr: None,
        bytes: None,
        seed: 1,
        timeout: Duration::from_secs(20),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--listen" | "--to" => options.addr = Some(value.parse().map_err(|_| bad(()))?),
            "--bytes" => options.bytes = Some(value.parse().map_err(|_| bad(()))?),
            "--seed" => options.seed = value.parse().map_err(|_| bad(()))?,
            "--timeout" => {
                options.timeout = Duration::from_secs(value.parse().map_err(|_| bad(()))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn run(args: &[String]) -> Result<(), String> {
    let (mode, rest) = args.split_first().ok_or("missing mode")?;
    let options = parse(rest)?;
    let addr = options.addr.ok_or("an address is required")?;
    let summary = match mode.as_str() {
        "recv" => {
            let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening {addr}")
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string())?;
            drop(out);
            stream::receive(&listener, options.timeout).map_err(|e| format!("receive: {e}"))?
        }
        "send" => {
            let bytes = options.bytes.ok_or("--bytes is required")?;
            stream::send(addr, bytes, options.seed, options.timeout)
                .map_err(|e| format!("send to {addr}: {e}"))?
        }
        other => return Err(format!("unknown mode {other}")),
    };
    println!("{summary}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("stream-check: {msg}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
