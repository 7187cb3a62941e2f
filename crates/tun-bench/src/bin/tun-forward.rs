//! The benchmark's forwarder: packets between two TUN devices in two network namespaces, through the
//! library, the data path of a VPN without the encryption, in every mode `cargo xtask bench` measures.
//!
//! ```text
//! tun-forward --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB [--no-offload] [--batch N] [--passthrough]
//!             [--async] [--queues N] [--layer l3|l2] [--address-a|--address-b|--route-a|--route-b ADDRESS/PREFIX]...
//! ```
//!
//! Creates `tunA` inside the existing namespace NS1 and `tunB` inside NS2 (each opened from a thread that
//! joined its namespace; the fds then work from any thread), and forwards A -> B and B -> A, one thread per
//! direction. With addresses or routes for a device, the library brings it up with them before any packet
//! flows, for example
//!
//! ```text
//! tun-forward --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB \
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
//! - `--layer l2`: TAP devices instead of TUN ones, every mode above the same with Ethernet frames, passed as
//!   they are: the two namespaces share one Ethernet segment, so ARP and NDP resolve through the forwarder
//!   (give both devices addresses of one subnet). With offloads the library splits super-frames and coalesces
//!   frames as it does IP packets.
//!
//! On SIGINT or SIGTERM it prints, per direction, `a->b: packets N bytes N reads N super-packets N errors N`
//! (packets are MTU-sized; reads are calls that returned packets; super-packets are reads that returned more
//! than one) and exits 0.
//!
//! Each direction runs the tunnel harness's loop ([`relay::forward`] / [`relay::forward_async`]) through a
//! [`PacketBatch`] allocated once, with its error policy: a closed device ends the direction, and so does an
//! error after which a device is unusable (`Error::is_fatal`); any other is counted (the first few of a
//! streak printed) and the loop goes on, giving up after 1000 in a row without a successful write. The same
//! loop, self-contained, is the `tun` crate's `forward` example.

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Arc;

use tun::{AsyncTun, Builder, PacketBatch, Tun};
use tun_bench::cli::{DeviceConfig, ForwardArgs, USAGE, UsageError};
use tun_bench::passthrough::{passthrough, raw_file};
use tun_bench::relay;
use tun_bench::setup::{block_termination, in_netns, report_on_signal, runtime, spawn_threads};
use tun_bench::stats::Counters;

/// One direction through the library: `read_packets` from `from`, `write_packets` to `to`, through a
/// [`PacketBatch`] of `batch` buffers, in the shared loop of [`relay::forward`]. With offloads: batches of
/// MTU-sized packets split from super-packets, coalesced again on write. Without: one packet per read and per
/// write, read straight into a buffer that fits any packet. Ends when a device is gone, or after too many
/// failures in a row.
fn forward(from: &Tun, to: &Tun, batch: usize, counters: &Counters) {
    let mut packets = PacketBatch::for_device_with_count(from, batch);
    relay::forward(from, to, &mut packets, counters);
}

/// [`forward`] as a task on an async runtime: the same loop ([`relay::forward_async`]), awaiting instead of
/// blocking.
async fn forward_async(from: &AsyncTun, to: &AsyncTun, batch: usize, counters: &Counters) {
    let mut packets = PacketBatch::for_device_with_count(from.get_ref(), batch);
    relay::forward_async(from, to, &mut packets, counters).await;
}

/// Builds device `name` of `args`'s layer with `config`'s addresses and routes (and then up), offloads on or
/// off.
fn open_device(
    name: &str,
    config: &DeviceConfig,
    offload: bool,
    args: &ForwardArgs,
) -> Result<Tun, String> {
    let queues = args.queues;
    let mut builder = Builder::new()
        .name(name)
        .layer(args.layer)
        .offload(offload)
        .multi_queue(queues > 1)
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
}

/// Both directions between `a` and `b`: (a, b), then (b, a).
fn directions<T>(a: T, b: T) -> [(Arc<T>, Arc<T>); 2] {
    let (a, b) = (Arc::new(a), Arc::new(b));
    [(Arc::clone(&a), Arc::clone(&b)), (b, a)]
}

/// Starts both directions as tasks on a multi-thread tokio runtime, which is returned: it runs until
/// dropped.
fn start_async(
    a: Tun,
    b: Tun,
    batch: Option<usize>,
    counters: &[Arc<Counters>; 2],
) -> Result<tokio::runtime::Runtime, String> {
    let runtime = runtime()?;
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

/// Starts one thread per direction and pair of queues (`queues` of them). Counters stay per direction,
/// shared by the queues.
fn start_threads(
    a: Tun,
    b: Tun,
    args: &ForwardArgs,
    counters: &[Arc<Counters>; 2],
) -> Result<(), String> {
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
    let bodies = pairs
        .into_iter()
        .flat_map(|(a, b)| directions(a, b).into_iter().zip(counters.iter().cloned()))
        .map(|((from, to), counters)| {
            let batch = args.batch.unwrap_or_else(|| from.batch_size());
            Box::new(move || forward(&from, &to, batch, &counters)) as Box<dyn FnOnce() + Send>
        })
        .collect();
    spawn_threads(bodies)
}

/// Starts the pass-through: raw blocking reads and writes on the devices' fds, no library data path.
fn start_passthrough(a: &Tun, b: &Tun, counters: &[Arc<Counters>; 2]) -> Result<(), String> {
    let (a_in, b_in) = (raw_file(a.as_fd())?, raw_file(b.as_fd())?);
    let (a_out, b_out) = (raw_file(a.as_fd())?, raw_file(b.as_fd())?);
    let bodies: Vec<Box<dyn FnOnce() + Send>> = vec![
        Box::new({
            let counters = Arc::clone(&counters[0]);
            move || passthrough(a_in, b_out, &counters)
        }),
        Box::new({
            let counters = Arc::clone(&counters[1]);
            move || passthrough(b_in, a_out, &counters)
        }),
    ];
    spawn_threads(bodies)
}

fn run(args: &ForwardArgs) -> Result<(), String> {
    if args.queues != 1 && (args.passthrough || args.async_io) {
        return Err(
            "--queues needs the threaded library forwarder (not --passthrough or --async)".into(),
        );
    }
    let signals = block_termination()?;
    // The passthrough needs the virtio-net header; the library negotiates the offloads it would use itself
    // (CSUM|TSO4|TSO6|USO4|USO6, else without USO), so the ceiling sees the same super-packets.
    let offload = args.offload || args.passthrough;
    let a = in_netns(&args.netns_a, || {
        open_device(&args.name_a, &args.config_a, offload, args)
    })?;
    let b = in_netns(&args.netns_b, || {
        open_device(&args.name_b, &args.config_b, offload, args)
    })?;
    let counters = [
        Arc::new(Counters::new("tun-forward")),
        Arc::new(Counters::new("tun-forward")),
    ];
    // Kept until the end: the async forwarder's tasks run on it, the pass-through's fds belong to them.
    let mut _runtime = None;
    let mut _devices = None;
    if args.passthrough {
        start_passthrough(&a, &b, &counters)?;
        _devices = Some((a, b));
    } else if args.async_io {
        _runtime = Some(start_async(a, b, args.batch, &counters)?);
    } else {
        start_threads(a, b, args, &counters)?;
    }
    report_on_signal("tun-forward", &signals, &counters)
}

fn main() -> ExitCode {
    let args = match ForwardArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(UsageError::Help) => {
            println!("tun-forward {}", USAGE.trim_start_matches("usage: "));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tun-forward: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tun-forward: {msg}");
            ExitCode::FAILURE
        }
    }
}
