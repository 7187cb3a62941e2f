//! Traffic through the tunnel: iperf3 TCP bulk transfers, and the SHA-256-checked stream of the demo.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::cpus::pinned;
use crate::netns::{NetNs, Spawned, wait_until};
use crate::tunnel::{Binaries, Pair};
use tun_test_support::topology::b_addr;

/// First TCP port of the iperf3 servers; each measurement gets the next one.
const IPERF_FIRST_PORT: u16 = 5201;
/// The TCP port of the stream-check receiver.
const CHECK_PORT: u16 = 5301;

/// One TCP bulk test: IP version and parallel streams, from A to B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpTest {
    /// IPv6 instead of IPv4.
    pub(crate) v6: bool,
    /// Parallel TCP connections.
    pub(crate) streams: u32,
}

impl TcpTest {
    /// Short name for the table.
    pub(crate) fn label(self) -> String {
        let plural = if self.streams == 1 { "" } else { "s" };
        format!(
            "TCP {}, {} stream{plural}",
            if self.v6 { "v6" } else { "v4" },
            self.streams
        )
    }

    fn server_addr(self) -> IpAddr {
        b_addr(self.v6)
    }
}

/// A one-off iperf3 server in namespace B (`-1`: it serves one test, then exits), on a port of its own,
/// so that a test never meets a server still busy with the previous one.
#[derive(Debug)]
pub(crate) struct IperfServer {
    _process: Spawned,
    port: String,
}

impl IperfServer {
    /// Starts the server and waits until it listens.
    pub(crate) fn start(b: &NetNs, cpus: Option<&str>) -> Result<Self, String> {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let port = (IPERF_FIRST_PORT + NEXT.fetch_add(1, Ordering::Relaxed) % 500).to_string();
        let (program, pin) = pinned(cpus, "iperf3");
        let mut cmd = b.command(&program);
        cmd.args(pin)
            .args(["-s", "-1", "-p", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = Spawned::spawn(&mut cmd, "iperf3 server")?;
        if wait_listening(b, &port) {
            Ok(Self {
                _process: process,
                port,
            })
        } else {
            Err("the iperf3 server did not start listening".into())
        }
    }
}

/// A running iperf3 client in namespace A.
#[derive(Debug)]
pub(crate) struct IperfClient {
    process: Spawned,
    test: TcpTest,
    limit: Duration,
}

impl IperfClient {
    /// Starts `test` for `seconds` after `omit` seconds of warm-up that the result leaves out.
    pub(crate) fn start(
        a: &NetNs,
        server: &IperfServer,
        test: TcpTest,
        seconds: u32,
        omit: u32,
        cpus: Option<&str>,
    ) -> Result<Self, String> {
        let (program, pin) = pinned(cpus, "iperf3");
        let mut cmd = a.command(&program);
        cmd.args(pin)
            .args([
                "-c",
                &test.server_addr().to_string(),
                "-p",
                &server.port,
                "-f",
                "m",
                "--connect-timeout",
                "5000",
            ])
            .args([
                "-t",
                &seconds.to_string(),
                "-O",
                &omit.to_string(),
                "-P",
                &test.streams.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let process = Spawned::spawn(&mut cmd, "iperf3 client")?;
        Ok(Self {
            process,
            test,
            limit: Duration::from_secs(u64::from(seconds + omit) + 20),
        })
    }

    /// Waits for the end of the test (bounded) and returns the receiver's throughput in Gbit/s.
    pub(crate) fn finish(self) -> Result<f64, String> {
        let (status, stdout, stderr) = self.process.wait_output(self.limit)?;
        if !status.success() {
            return Err(format!(
                "iperf3 {} failed ({status}): {}{}",
                self.test.label(),
                stdout.trim(),
                stderr.trim()
            ));
        }
        receiver_gbits(&stdout, self.test.streams > 1)
            .ok_or_else(|| format!("no receiver throughput in iperf3 output:\n{stdout}"))
    }
}

/// The receiver's throughput from iperf3's text summary (`-f m`), in Gbit/s: the `[SUM]` line when
/// several streams ran.
fn receiver_gbits(output: &str, summed: bool) -> Option<f64> {
    let line = output
        .lines()
        .filter(|l| l.trim_end().ends_with("receiver"))
        .find(|l| !summed || l.starts_with("[SUM]"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let unit = words.iter().position(|w| *w == "Mbits/sec")?;
    let mbits: f64 = words.get(unit.checked_sub(1)?)?.parse().ok()?;
    Some(mbits / 1000.0)
}

/// Sends `bytes` of a deterministic stream from A to B over TCP (v4 or v6) and checks that both ends
/// computed the same SHA-256 over the same number of bytes. Returns the digest.
pub(crate) fn checked_transfer(
    bins: &Binaries,
    pair: &Pair,
    v6: bool,
    bytes: u64,
) -> Result<String, String> {
    let program = bins.stream_check.to_string_lossy().into_owned();
    // The receiver listens on B's address, and the sender connects to it there.
    let at = SocketAddr::new(b_addr(v6), CHECK_PORT).to_string();
    let mut receiver_cmd = pair.b.command(&program);
    receiver_cmd
        .args(["recv", "--listen", &at, "--timeout", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let receiver = Spawned::spawn(&mut receiver_cmd, "stream-check receiver")?;
    if !wait_listening(&pair.b, &CHECK_PORT.to_string()) {
        return Err("the stream-check receiver did not start listening".into());
    }
    let mut sender_cmd = pair.a.command(&program);
    sender_cmd
        .args([
            "send",
            "--to",
            &at,
            "--bytes",
            &bytes.to_string(),
            "--seed",
            "2024",
            "--timeout",
            "20",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let sender = Spawned::spawn(&mut sender_cmd, "stream-check sender")?;
    let limit = Duration::from_secs(120);
    let sent = summary(sender.wait_output(limit)?, "sender")?;
    let received = summary(receiver.wait_output(limit)?, "receiver")?;
    if sent != received {
        return Err(format!(
            "data corrupted in the tunnel: sent {sent}, received {received}"
        ));
    }
    let expected = format!("bytes {bytes} ");
    if !sent.starts_with(&expected) {
        return Err(format!("sent the wrong amount: {sent}"));
    }
    Ok(sent.rsplit(' ').next().unwrap_or_default().to_owned())
}

/// Waits until something in `ns` listens on TCP `port`.
fn wait_listening(ns: &NetNs, port: &str) -> bool {
    let filter = format!("sport = :{port}");
    wait_until(Duration::from_secs(10), || {
        ns.command("ss")
            .args(["-Hltn", &filter])
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    })
}

fn summary(
    result: (std::process::ExitStatus, String, String),
    who: &str,
) -> Result<String, String> {
    let (status, stdout, stderr) = result;
    if !status.success() {
        return Err(format!(
            "stream-check {who} failed ({status}): {}",
            stderr.trim()
        ));
    }
    stdout
        .lines()
        .rfind(|l| l.starts_with("bytes "))
        .map(str::to_owned)
        .ok_or_else(|| format!("stream-check {who} printed no summary: {stdout}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str =
        "[  5]   0.00-4.00   sec  7.14 GBytes  15327 Mbits/sec    0             sender
[  5]   0.00-4.00   sec  7.14 GBytes  15328 Mbits/sec                  receiver
";

    #[test]
    fn the_receiver_line_gives_the_throughput() {
        assert_eq!(receiver_gbits(ONE, false), Some(15.328));
    }

    #[test]
    fn with_several_streams_the_sum_line_counts() {
        let many = "[  5]   0.00-4.00   sec  1.00 GBytes  2000 Mbits/sec                  receiver
[SUM]   0.00-4.00   sec  4.00 GBytes  8000 Mbits/sec    0             sender
[SUM]   0.00-4.00   sec  4.00 GBytes  7999 Mbits/sec                  receiver
";
        assert_eq!(receiver_gbits(many, true), Some(7.999));
        assert_eq!(receiver_gbits("iperf3: error", false), None);
    }
}
