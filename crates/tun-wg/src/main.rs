//! `tun-wg`: a userspace WireGuard endpoint on the `tun` facade.
//!
//! `tun-wg [-f|--foreground] [--no-offload] [--config FILE] INTERFACE` creates the TUN device INTERFACE in
//! the current network namespace, serves WireGuard's configuration protocol on
//! `/var/run/wireguard/INTERFACE.sock` (so `wg` configures and shows it as it would wireguard-go), and
//! applies a wg-quick-style FILE at start. SIGINT/SIGTERM remove the socket and the device; SIGUSR1 prints
//! the counters.
//!
//! Threads: one per direction (TUN -> UDP in [`tx`], UDP -> TUN in [`rx`]), each blocking in its one
//! batched system call, one for the protocol timers ([`timers`]), one for the configuration socket (and one
//! per client it serves), and the main thread waiting for signals.

mod allowed_ips;
mod cidr;
mod cli;
mod conf_file;
mod config;
mod counters;
mod device;
mod heap;
mod key;
mod rx;
#[cfg(test)]
mod strategies;
mod timers;
mod tx;
mod uapi;
mod uapi_server;
mod udp;

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use nix::sys::signal::{SigSet, Signal};

use crate::conf_file::{DEFAULT_MTU, FileConfig};
use crate::device::Device;

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tun-wg: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tun-wg: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The signals the main thread takes: blocked in every thread, waited for here.
fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1] {
        set.add(s);
    }
    set
}

fn run(options: &cli::Options) -> Result<(), String> {
    let file = match &options.config {
        Some(path) => conf_file::load(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    // Blocked before any thread starts, so that every thread inherits the mask and only sigwait takes them.
    let signals = signals();
    signals
        .thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;

    let name = &options.interface;
    let tun = tun::Builder::new()
        .name(name.clone())
        .mtu(file.mtu.unwrap_or(DEFAULT_MTU))
        .offload(!options.no_offload)
        .build()
        .map_err(|e| format!("creating {name}: {}", e.report()))?;
    let name = tun.name();
    configure_interface(&tun, &file)?;
    let device = Arc::new(
        Device::new(tun, file.listen_port.unwrap_or(0))
            .map_err(|e| format!("binding UDP port {}: {e}", file.listen_port.unwrap_or(0)))?,
    );
    device
        .set(&config::request_from_file(&file))
        .map_err(|e| format!("applying the configuration: {}", e.message))?;
    if !device.tun.offloads().is_empty() {
        limit_super_packets(&device);
    }
    let (listener, socket) =
        uapi_server::listen(&name).map_err(|e| format!("configuration socket: {e}"))?;

    let spawn = |what: &str, f: fn(&Device)| {
        let device = device.clone();
        std::thread::Builder::new()
            .name(format!("tun-wg-{what}"))
            .spawn(move || f(&device))
            .map_err(|e| format!("starting the {what} thread: {e}"))
    };
    spawn("tx", tx::run)?;
    spawn("rx", rx::run)?;
    spawn("timers", timers::run)?;
    {
        let device = device.clone();
        std::thread::Builder::new()
            .name("tun-wg-uapi".into())
            .spawn(move || uapi_server::serve(&device, &listener))
            .map_err(|e| format!("starting the configuration thread: {e}"))?;
    }
    println!(
        "tun-wg: {name} up (offloads: {:?}), UDP port {}, configuration socket {}",
        device.tun.offloads(),
        device.udp().port(),
        socket.display()
    );

    loop {
        match signals.wait() {
            Ok(Signal::SIGUSR1) => println!(
                "tun-wg: {name} counters:\n  heap_allocations: {}\n{}",
                heap::allocations(),
                device.counters
            ),
            Ok(_) => break,
            Err(e) => return Err(format!("waiting for signals: {e}")),
        }
    }
    device.stopping.store(true, Ordering::Relaxed);
    let _ = std::fs::remove_file(&socket);
    let closed = device.tun.close();
    println!(
        "tun-wg: {name} stopped; {} dropped in all; counters:\n  heap_allocations: {}\n{}",
        device.counters.dropped(),
        heap::allocations(),
        device.counters
    );
    // The worker threads block in system calls that end with the process; nothing of theirs is pending.
    closed.map_err(|e| format!("removing {name}: {}", e.report()))
}

/// Sizes the super-packets the device is handed to what one GSO send carries encrypted
/// ([`tx::super_packet_segments`]). A kernel that refuses only costs a second send now and then: say so
/// and go on.
fn limit_super_packets(device: &Device) {
    let tun = &device.tun;
    let segments = match tun.mtu() {
        Ok(mtu) => tx::super_packet_segments(mtu as usize, device.udp().max_segments()),
        Err(e) => {
            println!(
                "tun-wg: {}: super-packets not limited: {}",
                tun.name(),
                e.report()
            );
            return;
        }
    };
    if let Err(e) = tun.set_gso_max_segments(segments) {
        println!(
            "tun-wg: {}: super-packets not limited to {segments} segments: {}",
            tun.name(),
            e.report()
        );
    }
}

/// Addresses, link up, then routes for the peers' allowed IPs (a default route is left alone: it would
/// take the host's, and the tunnel's own datagrams with it).
fn configure_interface(tun: &tun::Tun, file: &FileConfig) -> Result<(), String> {
    let name = tun.name();
    for &(addr, len) in &file.addresses {
        tun.add_address(addr, len)
            .map_err(|e| format!("{name}: address {addr}/{len}: {}", e.report()))?;
    }
    tun.set_up(true)
        .map_err(|e| format!("{name}: link up: {}", e.report()))?;
    let local: Vec<(IpAddr, u8)> = file.addresses.clone();
    for peer in &file.peers {
        for cidr in &peer.allowed_ips {
            if cidr.len() == 0 {
                println!(
                    "tun-wg: {name}: no route added for {cidr}: it would take the host's default route"
                );
                continue;
            }
            // The kernel made the route of an address's own subnet already.
            let covered = local
                .iter()
                .any(|&(a, l)| crate::cidr::Cidr::new(a, l).is_some_and(|own| own == *cidr));
            if covered {
                continue;
            }
            tun.add_route(cidr.addr(), cidr.len())
                .map_err(|e| format!("{name}: route {cidr}: {}", e.report()))?;
        }
    }
    Ok(())
}
