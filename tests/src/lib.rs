//! Shared harness of the whole-system privileged tests.
//!
//! Each test makes its own [`NetNs`] (removed again when it drops, whatever happens), creates its devices
//! inside it with [`NetNs::run_in`], configures them through the library (addresses, routes, up) or with
//! [`NetNs::ip`] for what the library does not do, and checks what the kernel says with [`NetNs::link`]. Nothing here touches the host's own interfaces, routes or firewall.

pub mod ipconfig;
pub mod traffic;

use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tun::Tun;

/// A network namespace created for one test (`ip netns add tuntest-PID-N`), deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    fd: OwnedFd,
}

impl NetNs {
    /// Creates a fresh namespace with a name unique to this process and call, with `lo` up.
    pub fn new() -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tuntest-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name]).unwrap_or_else(|e| panic!("ip netns add {name}: {e}"));
        // From here on Drop removes it, even if opening it fails.
        let fd = match tun_sys::netns::open_named(&name) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = run("ip", &["netns", "del", &name]);
                panic!("open namespace {name}: {e}");
            }
        };
        let ns = NetNs { name, fd };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, for `setns`.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Runs `f` on a fresh thread that entered this namespace: devices and sockets it creates live here.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        tun_sys::netns::run_in(&self.fd, f)
            .unwrap_or_else(|e| panic!("enter namespace {}: {e}", self.name))
    }

    /// Builds a TUN device inside this namespace.
    pub fn tun(&self, builder: tun::Builder) -> Result<Tun, tun::Error> {
        self.run_in(|| builder.build())
    }

    /// Attaches to a device whose previous fd was just closed, retrying while the kernel still calls it busy
    /// (at most 5 s). A closed fd can outlive `close()` briefly: a child that another test thread is forking
    /// inherits every fd of the process and holds them until it execs.
    pub fn tun_reattach(&self, builder: tun::Builder) -> Result<Tun, tun::Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.tun(builder.clone()) {
                Err(tun::Error::DeviceBusy { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    /// `ip -n NAME ARGS...`; panics with ip's message when it fails. Returns its standard output.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {}: {e}", self.name, args.join(" ")))
    }

    /// `ip -n NAME ARGS...`, its standard output or its error message.
    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `program ARGS...` inside the namespace (`ip netns exec`); its standard output or error.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Every link of the namespace, from `ip -j link`.
    pub fn links(&self) -> Vec<Link> {
        let out = self.ip(&["-j", "link", "show"]);
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j link: {e}: {out}"));
        value
            .as_array()
            .map(|links| links.iter().filter_map(Link::from_json).collect())
            .unwrap_or_default()
    }

    /// The link named `name`, if it exists.
    pub fn link(&self, name: &str) -> Option<Link> {
        self.links().into_iter().find(|l| l.name == name)
    }

    /// Packets the kernel received on `dev` (`ip -s` `rx packets`). On a TUN device each write counts once,
    /// so a coalesced super-packet is one packet here.
    pub fn rx_packets(&self, dev: &str) -> u64 {
        let out = self.ip(&["-j", "-s", "link", "show", "dev", dev]);
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j -s link: {e}: {out}"));
        value
            .pointer("/0/stats64/rx/packets")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("no rx packets for {dev} in {out}"))
    }

    /// Brings `tun` up with `addr/prefix_len` and IPv6 off, so the only traffic on it is the test's own.
    pub fn address(&self, tun: &Tun, addr: std::net::IpAddr, prefix_len: u8) {
        let dev = tun.name();
        // IPv6 router and neighbour solicitations would otherwise show up among the packets a test reads.
        let _ = self.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")],
        );
        tun.add_address(addr, prefix_len)
            .unwrap_or_else(|e| panic!("address {addr}/{prefix_len} on {dev}: {e}"));
        tun.set_up(true)
            .unwrap_or_else(|e| panic!("bring {dev} up: {e}"));
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("warning: ip netns del {}: {e}", self.name);
        }
    }
}

/// One interface as `ip -j link` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `ifname`.
    pub name: String,
    /// `ifindex`.
    pub index: u32,
    /// `mtu`.
    pub mtu: u32,
    /// `flags` (`UP`, `LOWER_UP`, `POINTOPOINT`, ...).
    pub flags: Vec<String>,
    /// `operstate` (`UP`, `DOWN`, `UNKNOWN`).
    pub operstate: String,
    /// `txqlen`.
    pub txqlen: u32,
}

impl Link {
    fn from_json(v: &serde_json::Value) -> Option<Link> {
        Some(Link {
            name: v.get("ifname")?.as_str()?.to_owned(),
            index: u32::try_from(v.get("ifindex")?.as_u64()?).ok()?,
            mtu: u32::try_from(v.get("mtu")?.as_u64()?).ok()?,
            flags: v
                .get("flags")
                .and_then(|f| f.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            operstate: v
                .get("operstate")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_owned(),
            txqlen: v
                .get("txqlen")
                .and_then(serde_json::Value::as_u64)
                .and_then(|q| u32::try_from(q).ok())
                .unwrap_or_default(),
        })
    }

    /// True when the interface is administratively up.
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

/// Runs a command; its standard output, or a message with its standard error.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    // The directory handle read_dir holds is one of the entries; it is not the process's own.
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(1))
        .unwrap_or(0)
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Asserts that the process's fd and thread counts return to `fds` and `threads`, waiting (at most 5 s) for
/// that: a joined thread may linger in /proc/self/task for a moment while the kernel reaps it. `what` names
/// the moment in the failure message.
pub fn assert_back_to(what: &str, fds: usize, threads: usize) {
    let settled = wait_until(Duration::from_secs(5), || {
        fd_count() == fds && thread_count() == threads
    });
    assert!(
        settled,
        "{what}: threads {threads} -> {}, fds {fds} -> {}",
        thread_count(),
        fd_count()
    );
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f` with a watchdog that closes `tun` if `f` has not returned within `timeout`, so a read that would
/// block forever ends with `Error::Closed` instead of hanging the test run.
pub fn with_deadline<T>(tun: &Tun, timeout: Duration, f: impl FnOnce() -> T) -> T {
    let (done, finished) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if finished.recv_timeout(timeout).is_err() {
                let _ = tun.close();
            }
        });
        let result = f();
        let _ = done.send(());
        result
    })
}

/// Reads packets from `tun` until one satisfies `wanted` (at most 1000 packets, at most `timeout`); returns it.
/// `None` when none came in time.
pub fn read_until(
    tun: &Tun,
    timeout: Duration,
    mut wanted: impl FnMut(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    with_deadline(tun, timeout, || {
        let batch = tun.batch_size();
        let mut bufs = vec![vec![0u8; 65535]; batch];
        let mut sizes = vec![0usize; batch];
        for _ in 0..1000 {
            let n = tun.read_packets(&mut bufs, &mut sizes, 0).ok()?;
            for (buf, &size) in bufs.iter().zip(&sizes).take(n) {
                if wanted(&buf[..size]) {
                    return Some(buf[..size].to_vec());
                }
            }
        }
        None
    })
}

/// True when `packet` is IPv4 UDP to destination port `port`.
pub fn is_udp4_to_port(packet: &[u8], port: u16) -> bool {
    match etherparse::SlicedPacket::from_ip(packet) {
        Ok(sliced) => matches!(
            (&sliced.net, &sliced.transport),
            (Some(etherparse::NetSlice::Ipv4(_)), Some(etherparse::TransportSlice::Udp(udp)))
                if udp.destination_port() == port
        ),
        Err(_) => false,
    }
}

/// An IPv4 UDP packet from `src` to `dst` carrying `payload`, with correct checksums.
pub fn udp4_packet(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .udp(src.port(), dst.port());
    let mut packet = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut packet, payload)
        .expect("writing into a Vec cannot fail");
    packet
}

/// How a [`TunnelPair`] moves packets between its two devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// `read_packets` / `write_packets` with this many buffers per read.
    Batch(usize),
    /// `std::io::Read` / `Write`, one packet per call.
    OnePacket,
}

/// What one direction of a [`TunnelPair`] forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// `read_packets` (or `read`) calls that returned packets.
    pub reads: u64,
    /// Packets read (and handed to the write side).
    pub packets: u64,
    /// The most packets one read returned: above 1 only when a super-packet was split.
    pub max_per_read: usize,
    /// Writes that failed.
    pub write_errors: u64,
}

/// Two namespaces `a` (10.78.0.1/24 on device `ta`) and `b` (10.78.0.2/24 on `tb`), joined by two forwarding
/// threads that read from one device and write to the other: traffic between 10.78.0.1 and 10.78.0.2 crosses
/// the library twice per direction, exactly as through a VPN without the crypto.
#[derive(Debug)]
pub struct TunnelPair {
    /// The namespace of 10.78.0.1.
    pub a: NetNs,
    /// The namespace of 10.78.0.2.
    pub b: NetNs,
    tuns: std::sync::Arc<(Tun, Tun)>,
    threads: Vec<std::thread::JoinHandle<DirectionStats>>,
}

/// The address of the `a` side of a [`TunnelPair`].
pub const PAIR_A: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 78, 0, 1);
/// The address of the `b` side of a [`TunnelPair`].
pub const PAIR_B: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 78, 0, 2);

impl TunnelPair {
    /// Builds both devices (with `offload`) and starts forwarding.
    pub fn new(offload: bool, forwarding: Forwarding) -> TunnelPair {
        let a = NetNs::new();
        let b = NetNs::new();
        let ta = a
            .tun(tun::Builder::new().name("ta").offload(offload))
            .unwrap();
        let tb = b
            .tun(tun::Builder::new().name("tb").offload(offload))
            .unwrap();
        a.address(&ta, PAIR_A.into(), 24);
        b.address(&tb, PAIR_B.into(), 24);
        for (ns, tun, dev, addr) in [(&a, &ta, "ta", "fd78::1"), (&b, &tb, "tb", "fd78::2")] {
            let _ = ns.exec(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")],
            );
            let addr: std::net::Ipv6Addr = addr.parse().unwrap();
            tun.add_address(addr.into(), 64)
                .unwrap_or_else(|e| panic!("address {addr}/64 on {dev}: {e}"));
        }
        let tuns = std::sync::Arc::new((ta, tb));
        let threads = [false, true]
            .into_iter()
            .map(|reverse| {
                let tuns = std::sync::Arc::clone(&tuns);
                std::thread::spawn(move || {
                    let (from, to) = if reverse {
                        (&tuns.1, &tuns.0)
                    } else {
                        (&tuns.0, &tuns.1)
                    };
                    forward(from, to, forwarding)
                })
            })
            .collect();
        TunnelPair {
            a,
            b,
            tuns,
            threads,
        }
    }

    /// The two devices (`ta`, `tb`).
    pub fn tuns(&self) -> (&Tun, &Tun) {
        (&self.tuns.0, &self.tuns.1)
    }

    /// Closes both devices, joins the forwarders and returns what they did (a to b, b to a).
    pub fn stop(mut self) -> (DirectionStats, DirectionStats) {
        self.shutdown()
    }

    fn shutdown(&mut self) -> (DirectionStats, DirectionStats) {
        let _ = self.tuns.0.close();
        let _ = self.tuns.1.close();
        let mut stats = self.threads.drain(..).map(|t| t.join().unwrap_or_default());
        (
            stats.next().unwrap_or_default(),
            stats.next().unwrap_or_default(),
        )
    }
}

impl Drop for TunnelPair {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Forwards until `from` or `to` is closed.
fn forward(from: &Tun, to: &Tun, forwarding: Forwarding) -> DirectionStats {
    let mut stats = DirectionStats::default();
    let offset = tun_offload_header_room(from);
    match forwarding {
        Forwarding::Batch(count) => {
            let full = offset + 65535;
            let mut bufs: Vec<Vec<u8>> = (0..count.max(1)).map(|_| vec![0u8; full]).collect();
            let mut sizes = vec![0usize; bufs.len()];
            loop {
                let n = match from.read_packets(&mut bufs, &mut sizes, offset) {
                    Ok(n) => n,
                    Err(e) if e.is_fatal() => return stats,
                    Err(_) => continue,
                };
                stats.reads += 1;
                stats.packets += n as u64;
                stats.max_per_read = stats.max_per_read.max(n);
                for (buf, &size) in bufs.iter_mut().zip(&sizes).take(n) {
                    buf.truncate(offset + size);
                }
                let result = to.write_packets(&mut bufs[..n], offset);
                for buf in &mut bufs[..n] {
                    buf.resize(full, 0);
                }
                match result {
                    Ok(_) => {}
                    Err(e) if e.is_fatal() => return stats,
                    Err(_) => stats.write_errors += 1,
                }
            }
        }
        Forwarding::OnePacket => {
            use std::io::{Read, Write};
            let mut buf = vec![0u8; 65535];
            loop {
                let n = match (&*from).read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return stats,
                    Err(_) => continue,
                };
                stats.reads += 1;
                stats.packets += 1;
                stats.max_per_read = 1;
                match (&*to).write(&buf[..n]) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return stats,
                    Err(_) => stats.write_errors += 1,
                }
            }
        }
    }
}

/// Room before each packet for the virtio-net header when the device has one.
fn tun_offload_header_room(tun: &Tun) -> usize {
    if tun.has_vnet_hdr() { 10 } else { 0 }
}

pub use tun_sys::io::retry_eintr;

/// A device `name` (built by `builder`) up with 10.77.0.1/24 in `ns`, and a UDP socket bound to
/// 10.77.0.1 (any port) there, reads timing out after 10 s.
pub fn addressed(ns: &NetNs, builder: tun::Builder, name: &str) -> (Tun, std::net::UdpSocket) {
    let tun = ns.tun(builder.name(name)).unwrap();
    ns.address(&tun, std::net::Ipv4Addr::new(10, 77, 0, 1).into(), 24);
    let local = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(10, 77, 0, 1), 0);
    let sock = ns.run_in(|| std::net::UdpSocket::bind(local).unwrap());
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (tun, sock)
}

/// The IPv4 address `sock` is bound to.
pub fn local_addr(sock: &std::net::UdpSocket) -> std::net::SocketAddrV4 {
    match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    }
}

/// The byte at position `i` of the test streams: varied enough that a lost, duplicated or reordered segment
/// shows.
pub fn stream_byte(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (i as u8)
}

/// Sends `len` stream bytes over TCP from `client_ns` to `server` (listening in `server_ns`) and checks every
/// byte that arrives. Returns the bytes received intact; panics on the first wrong byte.
pub fn tcp_transfer(
    client_ns: &NetNs,
    server_ns: &NetNs,
    server: std::net::SocketAddr,
    len: u64,
) -> u64 {
    use std::io::{Read, Write};
    let listener = server_ns.run_in(|| std::net::TcpListener::bind(server).unwrap());
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let (mut conn, _) = retry_eintr(|| listener.accept()).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut pos = 0u64;
            while pos < len {
                let n = retry_eintr(|| conn.read(&mut buf)).unwrap();
                if n == 0 {
                    break;
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(
                        b,
                        stream_byte(pos + k as u64),
                        "byte {} of the stream",
                        pos + k as u64
                    );
                }
                pos += n as u64;
            }
            pos
        });
        let mut conn = client_ns
            .run_in(|| std::net::TcpStream::connect_timeout(&server, Duration::from_secs(10)))
            .unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut chunk = vec![0u8; 1 << 16];
        let mut pos = 0u64;
        while pos < len {
            let n = chunk.len().min((len - pos) as usize);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = stream_byte(pos + k as u64);
            }
            conn.write_all(&chunk[..n]).unwrap();
            pos += n as u64;
        }
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        receiver.join().unwrap()
    })
}

/// True when `packet` is IPv4 UDP and its UDP checksum verifies (a partial checksum left by checksum offload
/// does not).
pub fn udp4_checksum_ok(packet: &[u8]) -> bool {
    let Ok((ip, rest)) = etherparse::Ipv4Header::from_slice(packet) else {
        return false;
    };
    let Ok((udp, payload)) = etherparse::UdpHeader::from_slice(rest) else {
        return false;
    };
    let payload = payload
        .get(..usize::from(udp.length).saturating_sub(8))
        .unwrap_or(payload);
    udp.calc_checksum_ipv4(&ip, payload)
        .is_ok_and(|sum| sum == udp.checksum)
}

/// A tokio runtime for the async tests: current-thread, or multi-thread with two workers (one per core here).
pub fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a tokio runtime")
}
