//! Creates a TUN device, brings it up and prints every packet the kernel routes into it.
//!
//! `cargo run -p tun --example create -- [NAME] [--offload] [--address ADDRESS/PREFIX]... [--count N]` (as
//! root or with CAP_NET_ADMIN). With `--address 10.9.0.1/24`, send traffic to the subnet from another shell
//! (`ping 10.9.0.2`) to see it arrive. Stops after N packets (default: forever).

use std::net::IpAddr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut name = String::from("tun%d");
    let mut offload = false;
    let mut count: Option<u64> = None;
    let mut addresses = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--offload" => offload = true,
            "--count" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => count = Some(n),
                None => return usage("--count needs a number"),
            },
            "--address" => match args.next().as_deref().and_then(parse_cidr) {
                Some(address) => addresses.push(address),
                None => return usage("--address needs ADDRESS/PREFIX"),
            },
            "-h" | "--help" => return usage(""),
            other if other.starts_with('-') => return usage(&format!("unknown option {other}")),
            other => name = other.to_owned(),
        }
    }
    match run(&name, offload, &addresses, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.report());
            ExitCode::FAILURE
        }
    }
}

/// `10.9.0.1/24` or `fd00::1/64`.
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = text.split_once('/')?;
    Some((addr.parse().ok()?, len.parse().ok()?))
}

fn run(
    name: &str,
    offload: bool,
    addresses: &[(IpAddr, u8)],
    count: Option<u64>,
) -> Result<(), tun::Error> {
    let mut builder = tun::Builder::new().name(name).offload(offload).up(true);
    for &(addr, prefix_len) in addresses {
        builder = builder.address(addr, prefix_len);
    }
    let tun = builder.build()?;
    println!(
        "created {} (index {}, mtu {}, offloads {:?}, batch size {})",
        tun.name(),
        tun.index()?,
        tun.mtu()?,
        tun.offloads(),
        tun.batch_size()
    );
    let mut bufs = vec![vec![0u8; 65535]; tun.batch_size()];
    let mut sizes = vec![0usize; bufs.len()];
    let mut seen = 0u64;
    while count.is_none_or(|limit| seen < limit) {
        let n = tun.read_packets(&mut bufs, &mut sizes, 0)?;
        for (buf, &size) in bufs.iter().zip(&sizes).take(n) {
            seen += 1;
            println!(
                "packet {seen}: {size} bytes, IPv{} {:02x?}",
                buf[0] >> 4,
                &buf[..size.min(20)]
            );
        }
    }
    tun.close()
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: create [NAME] [--offload] [--address ADDRESS/PREFIX]... [--count N]");
    if problem.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
