//! Forwards packets between two TUN devices, a thread per direction: the data path of a VPN without the
//! encryption. With offloads (the default) a read splits the kernel's TSO/USO super-packets into the
//! MTU-sized packets a VPN encrypts, and a write coalesces them again (GRO). Each device is made inside the
//! named network namespace (else the program's own) and brought up with its addresses. SIGINT or SIGTERM
//! closes both devices, which ends both directions; each prints `a->b: N packets, N errors`.
//!
//! ```text
//! ip netns add a; ip netns add b
//! cargo run -p tun --example forward -- --netns-a a --name-a tunA --address-a 10.77.0.1/24 \
//!     --netns-b b --name-b tunB --address-b 10.77.0.2/24 [--no-offload]
//! ip netns exec a ping 10.77.0.2
//! ```

use std::fs::File;
use std::net::IpAddr;
use std::process::ExitCode;
use std::thread;

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, Signal};
use tun::{Builder, Error, PacketBatch, Tun};

const USAGE: &str = "usage: forward --name-a NAME [--netns-a NS] [--address-a ADDRESS/PREFIX]... \
                     --name-b NAME [--netns-b NS] [--address-b ADDRESS/PREFIX]... [--no-offload]";

/// Failures in a row, with no successful write between them, after which a direction gives up.
const MAX_ERRORS_IN_A_ROW: u32 = 1000;

/// One device as the command line describes it; `netns: None` is the program's own namespace.
#[derive(Default)]
struct Side {
    name: String,
    netns: Option<String>,
    addresses: Vec<(IpAddr, u8)>,
}

/// Forwards `from` -> `to`, then prints the packets forwarded and the errors met. A closed device ends the
/// direction, and so does an error after which a device is unusable (`is_fatal`: deleted, bad fd); any other
/// is counted, the first few of a streak printed, and the loop goes on until `MAX_ERRORS_IN_A_ROW`.
fn forward(from: &Tun, to: &Tun, direction: &str) {
    let mut packets = PacketBatch::for_device(from); // buffers allocated once, reused by every cycle
    let (mut forwarded, mut errors, mut in_a_row) = (0u64, 0u64, 0u32);
    while in_a_row < MAX_ERRORS_IN_A_ROW {
        let cycle = packets.read_from(from).and_then(|n| {
            // (a VPN encrypts each packet here, in place: `packets.packet_mut(i)`)
            packets.write_to(to).map(|_writes| n)
        });
        match cycle {
            Ok(n) => (forwarded, in_a_row) = (forwarded + n as u64, 0),
            Err(Error::Closed) => break, // the normal end: `close()` on a signal
            Err(e) => {
                (errors, in_a_row) = (errors + 1, in_a_row + 1);
                if in_a_row <= 3 {
                    eprintln!("forward: {direction}: {}", e.report());
                }
                if e.is_fatal() {
                    break;
                }
            }
        }
    }
    println!("{direction}: {forwarded} packets, {errors} errors");
}

/// Creates `side`'s device, up with its addresses, on a thread that joined `side.netns` first: a device is
/// made in its creator's namespace, and its fd then works from any thread.
fn open(side: &Side, offload: bool) -> Result<Tun, String> {
    let create = || {
        if let Some(netns) = &side.netns {
            let ns = File::open(format!("/run/netns/{netns}"));
            let entered = ns.and_then(|ns| Ok(setns(ns, CloneFlags::CLONE_NEWNET)?));
            entered.map_err(|e| format!("network namespace {netns}: {e}"))?;
        }
        let mut builder = Builder::new().name(&side.name).offload(offload).up(true);
        for &(addr, prefix_len) in &side.addresses {
            builder = builder.address(addr, prefix_len);
        }
        builder.build().map_err(|e| e.report().to_string())
    };
    thread::scope(|s| s.spawn(create).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn run(sides: &[Side; 2], offload: bool) -> Result<(), String> {
    // Blocked before any thread exists, so that every thread inherits the mask and the signals wait for
    // `signals.wait()` below instead of killing the process.
    let signals = SigSet::from_iter([Signal::SIGINT, Signal::SIGTERM]);
    signals.thread_block().map_err(|e| e.to_string())?;
    let (a, b) = (open(&sides[0], offload)?, open(&sides[1], offload)?);
    thread::scope(|s| {
        s.spawn(|| forward(&a, &b, "a->b"));
        s.spawn(|| forward(&b, &a, "b->a"));
        let signal = signals.wait().map_err(|e| e.to_string());
        for tun in [&a, &b] {
            // Wakes the calls blocked on it: they return `Error::Closed`, which ends both directions.
            if let Err(e) = tun.close() {
                eprintln!("forward: close: {}", e.report()); // closed all the same
            }
        }
        signal.map(drop) // the scope waits for both directions to end
    })
}

/// The devices (A, B) and the offload setting the arguments ask for.
fn parse(mut args: impl Iterator<Item = String>) -> Result<([Side; 2], bool), String> {
    let (mut a, mut b, mut offload) = (Side::default(), Side::default(), true);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--no-offload" => offload = false,
            "--name-a" => a.name = value()?,
            "--name-b" => b.name = value()?,
            "--netns-a" => a.netns = Some(value()?),
            "--netns-b" => b.netns = Some(value()?),
            "--address-a" => a.addresses.push(cidr(&flag, &value()?)?),
            "--address-b" => b.addresses.push(cidr(&flag, &value()?)?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.name.is_empty() || b.name.is_empty() {
        return Err("--name-a and --name-b are required".into());
    }
    Ok(([a, b], offload))
}

/// `ADDRESS/PREFIX`, such as `10.77.0.1/24` or `fd77::1/64`.
fn cidr(flag: &str, text: &str) -> Result<(IpAddr, u8), String> {
    let parsed = text.split_once('/');
    let parsed = parsed.and_then(|(addr, len)| Some((addr.parse().ok()?, len.parse().ok()?)));
    parsed.ok_or(format!("{flag} wants ADDRESS/PREFIX, got {text}"))
}

fn main() -> ExitCode {
    let parsed = parse(std::env::args().skip(1)).map_err(|e| format!("{e}\n{USAGE}"));
    if let Err(e) = parsed.and_then(|(sides, offload)| run(&sides, offload)) {
        eprintln!("forward: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
