//! Forwards packets between two TUN devices in two network namespaces: the data path of a VPN without the
//! encryption.
//!
//! ```text
//! forward --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB [--no-offload] [--batch N] [--passthrough]
//!         [--async] [--queues N] [--address-a|--address-b|--route-a|--route-b ADDRESS/PREFIX]...
//! ```
//!
//! Creates `tunA` inside the existing namespace NS1 and `tunB` inside NS2 (each opened from a thread that
//! joined its namespace; the fds then work from any thread), and forwards A -> B and B -> A, one thread per
//! direction. With addresses or routes for a device, the library brings it up with them before any packet
//! flows, for example
//!
//! ```text
//! forward --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB \
//!     --address-a 10.77.0.1/32 --route-a 10.77.0.2/32 --address-b 10.77.0.2/32 --route-b 10.77.0.1/32
//! ```
//!
//! - Default: the library with offloads. `read_packets` splits each TSO/USO super-packet from the kernel into
//!   MTU-sized packets (what a VPN encrypts one by one), `write_packets` coalesces them again (GRO).
//! - `--no-offload`: one packet per read and per write.
//! - `--batch N`: buffers per `read_packets` call (default: the device's `batch_size()`).
//! - `--async`: the same data path on a tokio runtime (two worker threads), one task per direction, with
//!   [`tun::AsyncTun`] and `PacketBatch::read_from_async` / `write_to_async`.
//! - `--passthrough`: no library data path at all: each raw frame (virtio-net header + super-packet) is written
//!   unchanged to the other device. The ceiling of any TUN data path, for comparison.
//! - `--queues N`: multi-queue devices with N queues each (the first built, the others from
//!   [`Tun::open_queue`]), queue i of A forwarded to queue i of B and back by a thread per queue and direction.
//!   The kernel steers each flow to one queue by its hash, so several flows spread over the threads: on a
//!   host with a core per queue that multiplies what one core forwards. One flow stays on one queue, and on
//!   a host with fewer cores than threads it gains nothing. Not with `--async` or `--passthrough`.
//!
//! On SIGINT or SIGTERM it prints, per direction, `a->b: packets N bytes N reads N super-packets N errors N`
//! (packets are MTU-sized; reads are calls that returned packets; super-packets are reads that returned more
//! than one) and exits 0.

#[path = "common/forward_cli.rs"]
pub mod cli;
#[path = "common/forward_stats.rs"]
pub mod stats;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::ExitCode;
use std::sync::Arc;

use tun::{AsyncTun, Builder, PacketBatch, Tun};
use tun_offload::VirtioNetHdr;
use tun_offload::virtio::{GSO_NONE, GSO_TCPV4, GSO_TCPV6};
use tun_test_support::signal::SignalSet;

use cli::{DeviceConfig, ForwardArgs, USAGE, UsageError};
use stats::Counters;

/// The largest IP packet (and TSO/USO super-packet) a TUN device hands over.
const MAX_PACKET: usize = 65_535;
/// Consecutive failures after which a direction stops (a device that is gone fails every call).
const MAX_CONSECUTIVE_ERRORS: u32 = 1000;

/// Runs `open` on a thread that joined the network namespace `netns`: what it creates lives there.
fn in_netns<T: Send>(
    netns: &str,
    open: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    let ns = tun_test_support::netns::open_named(netns)
        .map_err(|e| format!("open network namespace {netns}: {e}"))?;
    tun_sys::netns::run_in(&ns, open)
        .map_err(|e| format!("enter network namespace {netns}: {e}"))?
}

/// Stops a direction after too many failures in a row; otherwise logs the first few and counts them all.
#[derive(Debug, Default)]
struct ErrorBudget {
    consecutive: u32,
}

impl ErrorBudget {
    fn failed(&mut self, what: &str, error: &dyn fmt::Display, counters: &Counters) -> bool {
        counters.record_error();
        self.consecutive += 1;
        if self.consecutive <= 3 {
            eprintln!("forward: {what}: {error}");
        }
        self.consecutive < MAX_CONSECUTIVE_ERRORS
    }
}

/// What a direction does after a read or a write.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Write the packets read.
    Write,
    /// Read again.
    Read,
    /// Stop: the device is gone, or too many failures in a row.
    Stop,
}

impl ErrorBudget {
    /// Counts a read of `packets` (its result `read`) and says what comes next.
    fn after_read(
        &mut self,
        read: tun::Result<usize>,
        packets: &PacketBatch,
        counters: &Counters,
    ) -> Next {
        match read {
            Ok(n) => {
                counters.record_read(n, packets.bytes());
                Next::Write
            }
            Err(e) if e.is_fatal() => {
                eprintln!("forward: read: {}", e.report());
                Next::Stop
            }
            Err(e) if self.failed("read", &e.report(), counters) => Next::Read,
            Err(_) => Next::Stop,
        }
    }

    /// Counts a write's result and says what comes next.
    fn after_write(&mut self, written: tun::Result<usize>, counters: &Counters) -> Next {
        match written {
            Ok(_) => {
                self.consecutive = 0;
                Next::Read
            }
            Err(e) if e.is_fatal() => {
                eprintln!("forward: write: {}", e.report());
                Next::Stop
            }
            Err(e) if self.failed("write", &e.report(), counters) => Next::Read,
            Err(_) => Next::Stop,
        }
    }
}

/// One direction through the library: `read_packets` from `from`, `write_packets` to `to`, through a
/// [`PacketBatch`]. With offloads: batches of MTU-sized packets split from super-packets, coalesced again on
/// write. Without: one packet per read and per write, read straight into a buffer that fits any packet.
fn forward(from: &Tun, to: &Tun, batch: usize, counters: &Counters) {
    let mut packets = PacketBatch::for_device_with_count(from, batch);
    let mut budget = ErrorBudget::default();
    loop {
        let next = match budget.after_read(packets.read_from(from), &packets, counters) {
            Next::Write => budget.after_write(packets.write_to(to), counters),
            other => other,
        };
        if next == Next::Stop {
            return;
        }
    }
}

/// [`forward`] as a task on an async runtime: the same loop, awaiting instead of blocking.
async fn forward_async(from: &AsyncTun, to: &AsyncTun, batch: usize, counters: &Counters) {
    let mut packets = PacketBatch::for_device_with_count(from.get_ref(), batch);
    let mut budget = ErrorBudget::default();
    loop {
        let read = packets.read_from_async(from).await;
        let next = match budget.after_read(read, &packets, counters) {
            Next::Write => budget.after_write(packets.write_to_async(to).await, counters),
            other => other,
        };
        if next == Next::Stop {
            return;
        }
    }
}

/// Starts both directions as tasks on a new multi-thread tokio runtime (two workers, as many threads as the
/// blocking forwarder has), which is returned: it runs until dropped.
fn start_async(
    a: Tun,
    b: Tun,
    batch: Option<usize>,
    counters: &[Arc<Counters>; 2],
) -> Result<tokio::runtime::Runtime, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fwd tokio")
        .enable_io()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let (a, b) = {
        let _inside = runtime.enter();
        let wrap = |tun| AsyncTun::new(tun).map_err(|e| format!("AsyncTun: {e}"));
        (wrap(a)?, wrap(b)?)
    };
    for ((from, to), counters) in directions(a, b).into_iter().zip(counters.iter().cloned()) {
        let batch = batch.unwrap_or_else(|| from.get_ref().batch_size());
        runtime.spawn(async move { forward_async(&from, &to, batch, &counters).await });
    }
    Ok(runtime)
}

/// MTU-sized packets in one raw frame (virtio-net header + packet), and their IP bytes, for the counters.
fn frame_packets(frame: &[u8]) -> (usize, usize) {
    let Some(packet) = frame.get(VirtioNetHdr::LEN..) else {
        return (0, 0);
    };
    let ip_bytes = packet.len();
    let Ok(hdr) = VirtioNetHdr::decode(frame) else {
        return (1, ip_bytes);
    };
    let gso_size = usize::from(hdr.gso_size);
    if hdr.gso_kind() == GSO_NONE || gso_size == 0 {
        return (1, ip_bytes);
    }
    // Headers: IP up to csum_start, then TCP (data offset) or UDP (8 bytes).
    let l4 = usize::from(hdr.csum_start);
    let l4_len = if matches!(hdr.gso_kind(), GSO_TCPV4 | GSO_TCPV6) {
        packet.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4)
    } else {
        8
    };
    let payload = packet.len().saturating_sub(l4 + l4_len);
    let segments = payload.div_ceil(gso_size).max(1);
    // Every segment repeats the headers.
    (segments, payload + segments * (l4 + l4_len))
}

/// One direction of the passthrough: read a frame, write it unchanged.
fn passthrough(from: BorrowedFd<'_>, to: BorrowedFd<'_>, counters: &Counters) {
    let mut frame = vec![0u8; VirtioNetHdr::LEN + MAX_PACKET];
    let mut budget = ErrorBudget::default();
    loop {
        let len = match tun_sys::io::read(from, &mut frame) {
            Ok(len) => len,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if budget.failed("read", &e, counters) {
                    continue;
                }
                return;
            }
        };
        let (packets, bytes) = frame_packets(&frame[..len]);
        counters.record_read(packets, bytes);
        match tun_sys::io::write(to, &frame[..len]) {
            Ok(_) => budget.consecutive = 0,
            Err(e) => {
                if !budget.failed("write", &e, counters) {
                    return;
                }
            }
        }
    }
}

/// The two devices of a run, used through the library or raw.
enum Devices {
    Library(Tun, Tun),
    Raw(Tun, Tun),
}

fn open_devices(args: &ForwardArgs) -> Result<Devices, String> {
    if args.queues != 1 && (args.passthrough || args.async_io) {
        return Err(
            "--queues needs the threaded library forwarder (not --passthrough or --async)".into(),
        );
    }
    // The passthrough needs the virtio-net header; the library negotiates the offloads it would use itself
    // (CSUM|TSO4|TSO6|USO4|USO6, else without USO), so the ceiling sees the same super-packets.
    let offload = args.offload || args.passthrough;
    let open = |name: &str, config: &DeviceConfig| {
        let mut builder = Builder::new()
            .name(name)
            .offload(offload)
            .multi_queue(args.queues > 1)
            .monitor(false);
        if !config.is_empty() {
            builder = builder.up(true);
        }
        for &(addr, prefix_len) in &config.addresses {
            builder = builder.address(addr, prefix_len);
        }
        for &(dest, prefix_len) in &config.routes {
            builder = builder.route(dest, prefix_len);
        }
        builder
            .build()
            .map_err(|e| format!("create {name}: {}", e.report()))
    };
    let a = in_netns(&args.netns_a, || open(&args.name_a, &args.config_a))?;
    let b = in_netns(&args.netns_b, || open(&args.name_b, &args.config_b))?;
    if args.passthrough {
        // Raw blocking reads and writes on the library's fds: no library data path at all.
        for tun in [&a, &b] {
            tun_sys::io::set_nonblocking(tun.as_fd(), false)
                .map_err(|e| format!("make the fd blocking: {e}"))?;
        }
        return Ok(Devices::Raw(a, b));
    }
    Ok(Devices::Library(a, b))
}

/// Both directions between `a` and `b`: (a, b), then (b, a).
fn directions<T>(a: T, b: T) -> [(Arc<T>, Arc<T>); 2] {
    let (a, b) = (Arc::new(a), Arc::new(b));
    [(Arc::clone(&a), Arc::clone(&b)), (b, a)]
}

/// Starts one thread per direction (per pair of queues with `--queues`). Counters stay per direction, shared
/// by the queues.
fn start_threads(
    devices: Devices,
    args: &ForwardArgs,
    counters: &[Arc<Counters>; 2],
) -> Result<(), String> {
    type Body = Box<dyn FnOnce() + Send>;
    let bodies: Vec<Body> = match devices {
        Devices::Library(a, b) => {
            let mut pairs = Vec::with_capacity(args.queues);
            for _ in 1..args.queues {
                let open = |tun: &Tun| {
                    let name = tun.name();
                    tun.open_queue()
                        .map_err(|e| format!("open a queue of {name}: {}", e.report()))
                };
                pairs.push((open(&a)?, open(&b)?));
            }
            pairs.insert(0, (a, b));
            pairs
                .into_iter()
                .flat_map(|(a, b)| directions(a, b).into_iter().zip(counters.iter().cloned()))
                .map(|((from, to), counters)| {
                    let batch = args.batch.unwrap_or_else(|| from.batch_size());
                    Box::new(move || forward(&from, &to, batch, &counters)) as Body
                })
                .collect()
        }
        Devices::Raw(a, b) => directions(a, b)
            .into_iter()
            .zip(counters.iter().cloned())
            .map(|((from, to), counters)| {
                Box::new(move || passthrough(from.as_fd(), to.as_fd(), &counters)) as Body
            })
            .collect(),
    };
    for (i, body) in bodies.into_iter().enumerate() {
        // The first queue's threads keep the plain names the benchmark looks for; the others add a suffix.
        let direction = ["fwd a->b", "fwd b->a"][i % 2];
        let thread = match i / 2 {
            0 => direction.to_owned(),
            queue => format!("{direction} q{queue}"),
        };
        std::thread::Builder::new()
            .name(thread.clone())
            .spawn(body)
            .map_err(|e| format!("spawn {thread}: {e}"))?;
    }
    Ok(())
}

fn run(args: &ForwardArgs) -> Result<(), String> {
    // Blocked before any thread exists, so that every thread inherits the mask and the signal waits for
    // `wait` below instead of killing the process.
    let signals = SignalSet::termination();
    signals
        .block_in_thread()
        .map_err(|e| format!("block signals: {e}"))?;
    let devices = open_devices(args)?;
    let counters = [Arc::new(Counters::default()), Arc::new(Counters::default())];
    // Kept until the end: the async forwarder's tasks run on it.
    let mut _runtime = None;
    match devices {
        Devices::Library(a, b) if args.async_io => {
            _runtime = Some(start_async(a, b, args.batch, &counters)?);
        }
        devices => start_threads(devices, args, &counters)?,
    }
    let signal = signals
        .wait()
        .map_err(|e| format!("wait for a signal: {e}"))?;
    eprintln!("forward: stopping on {signal:?}");
    println!("a->b: {}", counters[0].snapshot());
    println!("b->a: {}", counters[1].snapshot());
    Ok(())
}

fn main() -> ExitCode {
    let args = match ForwardArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(UsageError::Help) => {
            println!("forward {}", USAGE.trim_start_matches("usage: "));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("forward: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("forward: {msg}");
            ExitCode::FAILURE
        }
    }
}
