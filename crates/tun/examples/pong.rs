//! Answers pings sent into a TUN device: the smallest useful read-modify-write loop.
//!
//! `cargo run -p tun --example pong -- [NAME]` (as root or with CAP_NET_ADMIN) brings the device up as
//! 10.9.0.1/24; then, from another shell, `ping 10.9.0.2`: every address of the subnet but our own answers.
//! IPv4 echo requests are turned into replies in place (addresses swapped, type 0, checksum fixed) and written
//! back; everything else is counted and ignored. Stops on the first error (for example when the device is
//! deleted).

use std::process::ExitCode;

use tun_offload::checksum;

fn main() -> ExitCode {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pong%d".to_owned());
    match run(&name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.report());
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str) -> Result<(), tun::Error> {
    let address = std::net::Ipv4Addr::new(10, 9, 0, 1);
    let tun = tun::Builder::new()
        .name(name)
        .address(address.into(), 24)
        .up(true)
        .build()?;
    println!(
        "{} is up as {address}/24: ping any other address of its subnet",
        tun.name()
    );
    let mut buf = vec![0u8; 65535];
    let (mut answered, mut ignored) = (0u64, 0u64);
    loop {
        let size = tun.recv(&mut buf)?;
        let packet = &mut buf[..size];
        if echo_to_reply(packet) {
            tun.send(packet)?;
            answered += 1;
            println!(
                "answered echo request {answered} ({} bytes, {ignored} other packets ignored)",
                packet.len()
            );
        } else {
            ignored += 1;
        }
    }
}

/// Turns an IPv4 ICMP echo request into its reply in place; false (packet untouched) for anything else.
fn echo_to_reply(packet: &mut [u8]) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    let is_echo_request = first >> 4 == 4
        && header_len >= 20
        && packet.len() >= header_len + 8
        && packet[9] == 1 // ICMP
        && packet[header_len] == 8; // echo request
    if !is_echo_request {
        return false;
    }
    // Swap source and destination: the reply comes from the address that was pinged.
    let (src, dst) = packet[12..20].split_at_mut(4);
    src.swap_with_slice(dst);
    // The IPv4 header checksum covers the addresses only as a sum, which a swap does not change.
    let icmp = &mut packet[header_len..];
    icmp[0] = 0; // echo reply
    icmp[2..4].fill(0);
    let sum = checksum::finish(icmp, 0);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    true
}
