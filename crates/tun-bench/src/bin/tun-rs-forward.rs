//! The benchmark's peer: a two-namespace forwarder built on tun-rs 2.8.16's offload API.
//!
//! Same command line and output as `tun-forward`:
//! `tun-rs-forward --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB [--no-offload] [--batch N] [--async]`.
//! Each direction is one thread running tun-rs's own loop: `recv_multiple` (one read, split into
//! MTU-sized packets) then `send_multiple` with a reused `GROTable` (coalesce, then one write per packet).
//! With `--async`, the same loop on tun-rs's tokio `AsyncDevice`, one task per direction on a multi-thread
//! runtime of two workers (as the library's async forwarder runs).
//! On SIGINT or SIGTERM it prints the counters of both directions and exits 0.

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use tun_bench::cli::ForwardArgs;
use tun_bench::relay::{Direction, MAX_ERRORS_IN_A_ROW};
use tun_bench::setup::{block_termination, in_netns, report_on_signal, runtime, spawn_threads};
use tun_bench::stats::Counters;
use tun_offload::MAX_PACKET;
use tun_rs::{
    AsyncDevice, DeviceBuilder, GROTable, IDEAL_BATCH_SIZE, SyncDevice, VIRTIO_NET_HDR_LEN,
};

fn open(netns: &str, name: &str, offload: bool) -> Result<SyncDevice, String> {
    in_netns(netns, || {
        DeviceBuilder::new()
            .name(name)
            .offload(offload)
            .enable(false)
            .build_sync()
            .map_err(|e| format!("create {name} in {netns}: {e}"))
    })
}

/// The buffers of one direction, shaped as tun-rs's offload API wants them.
struct Buffers {
    offset: usize,
    segment: usize,
    /// Where a super-packet is read before it is split.
    original: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    gro: GROTable,
}

impl Buffers {
    fn new(offload: bool, mtu: usize, batch: usize) -> Self {
        // With offloads, send_multiple writes the virtio header in front of each packet, and coalescing needs
        // room for a 64 KiB packet plus twice the header in the first buffer of each flow.
        let offset = if offload { VIRTIO_NET_HDR_LEN } else { 0 };
        let segment = offset + mtu;
        Self {
            offset,
            segment,
            original: vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            bufs: (0..batch)
                .map(|_| {
                    let mut b = Vec::with_capacity(2 * offset + MAX_PACKET);
                    b.resize(segment, 0);
                    b
                })
                .collect(),
            sizes: vec![0usize; batch],
            gro: GROTable::new(),
        }
    }

    /// Settles a receive through `direction`: `Some(n)` packets to send, their buffers cut to them.
    fn received(
        &mut self,
        direction: &mut Direction<&Counters>,
        n: io::Result<usize>,
    ) -> Option<usize> {
        let n = direction.read(n, |&n| (n, self.sizes[..n].iter().sum()))?;
        for (buf, &size) in self.bufs.iter_mut().zip(&self.sizes[..n]) {
            buf.truncate(self.offset + size);
        }
        Some(n)
    }

    /// Settles a send of the first `n` buffers through `direction` and makes them whole again.
    fn sent(&mut self, direction: &mut Direction<&Counters>, n: usize, sent: io::Result<()>) {
        direction.wrote(sent);
        for buf in &mut self.bufs[..n] {
            buf.resize(self.segment, 0);
        }
    }
}

/// One direction: read from `from`, write to `to`, until the process exits or `to`/`from` fail for good.
fn forward(from: &SyncDevice, to: &SyncDevice, offload: bool, batch: usize, counters: &Counters) {
    let mut b = Buffers::new(offload, from.mtu().map_or(1500, usize::from), batch);
    let mut direction = Direction::new(counters);
    while direction.going_on() {
        let n = if offload {
            from.recv_multiple(&mut b.original, &mut b.bufs, &mut b.sizes, b.offset)
        } else {
            from.recv(&mut b.bufs[0][..]).map(|len| {
                b.sizes[0] = len;
                1
            })
        };
        let Some(n) = b.received(&mut direction, n) else {
            continue;
        };
        let sent = if offload {
            to.send_multiple(&mut b.gro, &mut b.bufs[..n], b.offset)
                .map(drop)
        } else {
            to.send(&b.bufs[0][..b.sizes[0]]).map(drop)
        };
        b.sent(&mut direction, n, sent);
    }
    eprintln!("tun-rs-forward: giving up after {MAX_ERRORS_IN_A_ROW} consecutive errors");
}

/// [`forward`] on tun-rs's async device.
async fn forward_async(
    from: &AsyncDevice,
    to: &AsyncDevice,
    offload: bool,
    batch: usize,
    counters: &Counters,
) {
    let mut b = Buffers::new(offload, from.mtu().map_or(1500, usize::from), batch);
    let mut direction = Direction::new(counters);
    while direction.going_on() {
        let n = if offload {
            from.recv_multiple(&mut b.original, &mut b.bufs, &mut b.sizes, b.offset)
                .await
        } else {
            from.recv(&mut b.bufs[0][..]).await.map(|len| {
                b.sizes[0] = len;
                1
            })
        };
        let Some(n) = b.received(&mut direction, n) else {
            continue;
        };
        let sent = if offload {
            to.send_multiple(&mut b.gro, &mut b.bufs[..n], b.offset)
                .await
                .map(drop)
        } else {
            to.send(&b.bufs[0][..b.sizes[0]]).await.map(drop)
        };
        b.sent(&mut direction, n, sent);
    }
    eprintln!("tun-rs-forward: giving up after {MAX_ERRORS_IN_A_ROW} consecutive errors");
}

/// Both directions as tasks on a new multi-thread runtime of two workers, which runs until dropped.
fn start_async(
    a: SyncDevice,
    b: SyncDevice,
    offload: bool,
    batch: usize,
    counters: [Arc<Counters>; 2],
) -> Result<tokio::runtime::Runtime, String> {
    let runtime = runtime()?;
    let (a, b) = {
        let _inside = runtime.enter();
        let wrap = |dev| {
            AsyncDevice::new(dev)
                .map(Arc::new)
                .map_err(|e| format!("AsyncDevice: {e}"))
        };
        (wrap(a)?, wrap(b)?)
    };
    let [a_to_b, b_to_a] = counters;
    for (from, to, counters) in [(Arc::clone(&a), Arc::clone(&b), a_to_b), (b, a, b_to_a)] {
        runtime.spawn(async move { forward_async(&from, &to, offload, batch, &counters).await });
    }
    Ok(runtime)
}

fn run() -> Result<(), String> {
    let args = ForwardArgs::parse(std::env::args().skip(1)).map_err(|e| e.to_string())?;
    if args.passthrough {
        return Err("--passthrough is `tun-forward`'s ceiling, not a tun-rs data path".into());
    }
    if args.queues != 1 {
        return Err("--queues is `tun-forward`'s; this peer forwards one queue per device".into());
    }
    if args.layer != tun::Layer::L3 {
        return Err("--layer l2 is `tun-forward`'s; this peer forwards TUN devices".into());
    }
    if !args.config_a.is_empty() || !args.config_b.is_empty() {
        return Err("tun-rs-forward configures no addresses or routes: use `ip`".into());
    }
    let signals = block_termination()?;
    let a = open(&args.netns_a, &args.name_a, args.offload)?;
    let b = open(&args.netns_b, &args.name_b, args.offload)?;
    let batch = if args.offload {
        args.batch.unwrap_or(IDEAL_BATCH_SIZE)
    } else {
        1
    };
    let counters = [
        Arc::new(Counters::new("tun-rs-forward")),
        Arc::new(Counters::new("tun-rs-forward")),
    ];
    // Kept until the end: the async forwarder's tasks run on it.
    let mut _runtime = None;
    if args.async_io {
        _runtime = Some(start_async(a, b, args.offload, batch, counters.clone())?);
    } else {
        let (a, b) = (Arc::new(a), Arc::new(b));
        let offload = args.offload;
        let bodies: Vec<Box<dyn FnOnce() + Send>> = [(Arc::clone(&a), b.clone()), (b, a)]
            .into_iter()
            .zip(counters.iter().cloned())
            .map(|((from, to), counters)| {
                Box::new(move || forward(&from, &to, offload, batch, &counters))
                    as Box<dyn FnOnce() + Send>
            })
            .collect();
        spawn_threads(bodies)?;
    }
    report_on_signal("tun-rs-forward", &signals, &counters)
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
