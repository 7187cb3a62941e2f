//! The benchmark's peer: a two-namespace forwarder built on tun-rs 2.8.16's offload API.
//!
//! Same command line and output as the `tun` crate's `forward` example:
//! `tun-rs-forward --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB [--no-offload] [--batch N]`.
//! Each direction is one thread running tun-rs's own loop: `recv_multiple` (one read, split into
//! MTU-sized packets) then `send_multiple` with a reused `GROTable` (coalesce, then one write per packet).
//! On SIGINT or SIGTERM it prints the counters of both directions and exits 0.

use std::process::ExitCode;
use std::sync::Arc;

use tun_bench::cli::ForwardArgs;
use tun_bench::stats::Counters;
use tun_rs::{DeviceBuilder, GROTable, IDEAL_BATCH_SIZE, SyncDevice, VIRTIO_NET_HDR_LEN};
use tun_sys::signal::SignalSet;

/// Room for the largest IPv4/IPv6 packet: segments are MTU-sized, but a GSO_NONE packet or a coalesced one
/// may be as large as this.
const MAX_PACKET: usize = 65_535;
/// Consecutive failures after which a direction gives up (a deleted device fails every call).
const MAX_CONSECUTIVE_ERRORS: u32 = 1000;

fn open(netns: &str, name: &str, offload: bool) -> Result<SyncDevice, String> {
    let ns = tun_sys::netns::open_named(netns).map_err(|e| format!("open netns {netns}: {e}"))?;
    tun_sys::netns::run_in(&ns, || {
        DeviceBuilder::new()
            .name(name)
            .offload(offload)
            .enable(false)
            .build_sync()
    })
    .map_err(|e| format!("enter netns {netns}: {e}"))?
    .map_err(|e| format!("create {name} in {netns}: {e}"))
}

/// One direction: read from `from`, write to `to`, until the process exits or `to`/`from` fail for good.
fn forward(from: &SyncDevice, to: &SyncDevice, offload: bool, batch: usize, counters: &Counters) {
    // With offloads, send_multiple writes the virtio header in front of each packet, and coalescing needs
    // room for a 64 KiB packet plus twice the header in the first buffer of each flow.
    let offset = if offload { VIRTIO_NET_HDR_LEN } else { 0 };
    let segment = offset + from.mtu().map_or(1500, usize::from);
    let mut original = vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET];
    let mut bufs: Vec<Vec<u8>> = (0..batch)
        .map(|_| {
            let mut b = Vec::with_capacity(2 * offset + MAX_PACKET);
            b.resize(segment, 0);
            b
        })
        .collect();
    let mut sizes = vec![0usize; batch];
    let mut gro = GROTable::new();
    let mut consecutive_errors = 0;
    while consecutive_errors < MAX_CONSECUTIVE_ERRORS {
        let n = if offload {
            from.recv_multiple(&mut original, &mut bufs, &mut sizes, offset)
        } else {
            from.recv(&mut bufs[0][..]).map(|len| {
                sizes[0] = len;
                1
            })
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                counters.record_error();
                consecutive_errors += 1;
                eprintln!("tun-rs-forward: receive: {e}");
                continue;
            }
        };
        counters.record_read(n, sizes[..n].iter().sum());
        for (buf, &size) in bufs.iter_mut().zip(&sizes[..n]) {
            buf.truncate(offset + size);
        }
        let sent = if offload {
            to.send_multiple(&mut gro, &mut bufs[..n], offset).map(drop)
        } else {
            to.send(&bufs[0][..sizes[0]]).map(drop)
        };
        match sent {
            Ok(()) => consecutive_errors = 0,
            Err(e) => {
                counters.record_error();
                consecutive_errors += 1;
                eprintln!("tun-rs-forward: send: {e}");
            }
        }
        for buf in &mut bufs[..n] {
            buf.resize(segment, 0);
        }
    }
    eprintln!("tun-rs-forward: giving up after {MAX_CONSECUTIVE_ERRORS} consecutive errors");
}

fn run() -> Result<(), String> {
    let args = ForwardArgs::parse(std::env::args().skip(1)).map_err(|e| e.to_string())?;
    if args.passthrough {
        return Err(
            "--passthrough is the `forward` example's ceiling, not a tun-rs data path".into(),
        );
    }
    if !args.config_a.is_empty() || !args.config_b.is_empty() {
        return Err("tun-rs-forward configures no addresses or routes: use `ip`".into());
    }
    let signals = SignalSet::termination();
    signals
        .block_in_thread()
        .map_err(|e| format!("block signals: {e}"))?;
    let a = Arc::new(open(&args.netns_a, &args.name_a, args.offload)?);
    let b = Arc::new(open(&args.netns_b, &args.name_b, args.offload)?);
    let batch = if args.offload {
        args.batch.unwrap_or(IDEAL_BATCH_SIZE)
    } else {
        1
    };
    let a_to_b = Arc::new(Counters::default());
    let b_to_a = Arc::new(Counters::default());
    for (name, from, to, counters) in [
        (
            "fwd a->b",
            Arc::clone(&a),
            Arc::clone(&b),
            Arc::clone(&a_to_b),
        ),
        (
            "fwd b->a",
            Arc::clone(&b),
            Arc::clone(&a),
            Arc::clone(&b_to_a),
        ),
    ] {
        let offload = args.offload;
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || forward(&from, &to, offload, batch, &counters))
            .map_err(|e| format!("spawn {name}: {e}"))?;
    }
    let signal = signals
        .wait()
        .map_err(|e| format!("wait for a signal: {e}"))?;
    eprintln!("tun-rs-forward: stopping on {signal:?}");
    println!("a->b: {}", a_to_b.snapshot());
    println!("b->a: {}", b_to_a.snapshot());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tun-rs-forward: {msg}");
            ExitCode::FAILURE
        }
    }
}
