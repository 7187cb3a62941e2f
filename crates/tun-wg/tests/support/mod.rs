//! What the privileged tests of tun-wg share: endpoints running as processes in network namespaces joined
//! by a veth underlay, keys from `wg`, the configuration protocol, counters, pings and hashed transfers.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tun_test_support::stream::{pseudo_random, sha256_hex, tcp_send};
pub use tun_test_support::{NetNs, wait_until};

/// The tun-wg binary under test.
pub const TUN_WG: &str = env!("CARGO_BIN_EXE_tun-wg");

/// How long anything that should be quick may take on a busy 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A name unique to this process and call, `PREFIX` + pid + counter, within IFNAMSIZ.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// A key pair from `wg genkey` / `wg pubkey` (base64).
#[derive(Debug, Clone)]
pub struct Keys {
    pub private: String,
    pub public: String,
}

impl Keys {
    pub fn generate() -> Keys {
        let private = run_with_input("wg", &["genkey"], "");
        let public = run_with_input("wg", &["pubkey"], &private);
        Keys {
            private: private.trim().to_owned(),
            public: public.trim().to_owned(),
        }
    }

    /// The private key's 32 bytes.
    pub fn private_bytes(&self) -> [u8; 32] {
        decode_base64_key(&self.private)
    }

    /// The public key's 32 bytes.
    pub fn public_bytes(&self) -> [u8; 32] {
        decode_base64_key(&self.public)
    }

    /// The public key in hex, as the configuration protocol writes it.
    pub fn public_hex(&self) -> String {
        self.public_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn decode_base64_key(text: &str) -> [u8; 32] {
    let hex = run_with_input("sh", &["-c", "base64 -d | od -An -tx1 -v"], text);
    let bytes: Vec<u8> = hex
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    bytes.try_into().expect("a key is 32 bytes")
}

fn run_with_input(program: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (is wireguard-tools installed?)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Two namespaces joined by a veth pair: `a` has 192.168.241.1 and fd24::1, `b` .2 and ::2.
pub struct Underlay {
    pub a: NetNs,
    pub b: NetNs,
    pub veth_a: String,
    pub veth_b: String,
}

pub const UNDER_A: &str = "192.168.241.1";
pub const UNDER_B: &str = "192.168.241.2";

impl Underlay {
    pub fn new() -> Underlay {
        let a = NetNs::tagged("wga");
        let b = NetNs::tagged("wgb");
        let (veth_a, veth_b) = link(&a, &b, UNDER_A, UNDER_B, "fd24::1", "fd24::2");
        Underlay {
            a,
            b,
            veth_a,
            veth_b,
        }
    }
}

/// A veth pair between two namespaces with an IPv4 /24 and an IPv6 /64 address at each end; its names.
pub fn link(a: &NetNs, b: &NetNs, a4: &str, b4: &str, a6: &str, b6: &str) -> (String, String) {
    let (va, vb) = (unique("va"), unique("vb"));
    tun_test_support::run(Command::new("ip").args([
        "link",
        "add",
        &va,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        &vb,
        "netns",
        b.name(),
    ]))
    .expect("ip link add type veth");
    for (ns, dev, v4, v6) in [(a, &va, a4, a6), (b, &vb, b4, b6)] {
        ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev]);
        ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    (va, vb)
}

/// A running `tun-wg` in a namespace; stopped with SIGTERM when dropped.
pub struct Endpoint {
    pub name: String,
    pub ns: String,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
}

impl Endpoint {
    /// Starts `tun-wg [--no-offload] --config FILE NAME` in `ns` and waits for its configuration socket.
    pub fn start(ns: &NetNs, config: &str, offload: bool) -> Endpoint {
        let name = unique("wg");
        let path = std::env::temp_dir().join(format!("{name}.conf"));
        std::fs::write(&path, config).unwrap();
        let mut cmd = ns.command(TUN_WG);
        if !offload {
            cmd.arg("--no-offload");
        }
        cmd.args(["-f", "--config"]).arg(&path).arg(&name);
        let endpoint = Self::spawn(cmd, &name, ns);
        let _ = std::fs::remove_file(&path);
        endpoint
    }

    /// Starts any command that serves `name`'s configuration socket, and collects its output.
    pub fn spawn(mut cmd: Command, name: &str, ns: &NetNs) -> Endpoint {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the endpoint");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let mut endpoint = Endpoint {
            name: name.to_owned(),
            ns: ns.name().to_owned(),
            child: Some(child),
            output,
        };
        let up = wait_until(PATIENCE, || {
            endpoint.exited().is_some() || UnixStream::connect(endpoint.socket_path()).is_ok()
        });
        assert!(
            up && endpoint.exited().is_none(),
            "{name} did not start:\n{}",
            endpoint.output()
        );
        endpoint
    }

    pub fn socket_path(&self) -> String {
        format!("/var/run/wireguard/{}.sock", self.name)
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// One configuration-protocol exchange: `request` as is, the answer up to its empty line.
    pub fn uapi(&self, request: &[u8]) -> String {
        let mut s = UnixStream::connect(self.socket_path()).expect("connect to the socket");
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(request).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.ends_with(b"\n\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8(answer).unwrap()
    }

    /// `get=1`: every line but the errno, as `(key, value)`s; asserts errno=0.
    pub fn get(&self) -> Vec<(String, String)> {
        let answer = self.uapi(b"get=1\n\n");
        assert!(answer.ends_with("errno=0\n\n"), "get failed: {answer}");
        answer
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("errno="))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// The `get` values of the peer `public_hex`.
    pub fn peer(&self, public_hex: &str) -> HashMap<String, String> {
        let mut found = HashMap::new();
        let mut inside = false;
        for (k, v) in self.get() {
            if k == "public_key" {
                inside = v == public_hex;
            } else if inside {
                found.insert(k, v);
            }
        }
        found
    }

    /// The counters printed on SIGUSR1.
    pub fn counters(&self) -> HashMap<String, u64> {
        let before = self.output().matches(" counters:").count();
        kill(self.pid(), Signal::SIGUSR1).unwrap();
        assert!(
            wait_until(PATIENCE, || {
                let out = self.output();
                // The block is complete once its last counter is there.
                out.matches(" counters:").count() > before
                    && out
                        .rsplit(" counters:")
                        .next()
                        .is_some_and(|b| b.contains("tun_read_errors:"))
            }),
            "no counters printed:\n{}",
            self.output()
        );
        let out = self.output();
        let block = out.rsplit(" counters:").next().unwrap();
        block
            .lines()
            .filter_map(|l| {
                let (k, v) = l.trim().split_once(": ")?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    /// SIGTERM and the exit status (bounded; SIGKILL after [`PATIENCE`]).
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = kill(pid, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// `ping` from `ns` to `addr`: true if a reply came (at most 3 tries, each bounded).
pub fn ping(ns: &NetNs, addr: &str) -> bool {
    ping_within(ns, addr, 3, 10)
}

/// `ping` from `ns` to `addr` with at most `tries` requests and `seconds` in all: true if a reply came. Short
/// bounds suit checks that expect no answer.
pub fn ping_within(ns: &NetNs, addr: &str, tries: u32, seconds: u32) -> bool {
    let wait = seconds.clamp(1, 3).to_string();
    ns.command("ping")
        .args([
            "-c",
            &tries.to_string(),
            "-i",
            "0.2",
            "-w",
            &seconds.to_string(),
            "-W",
            &wait,
            addr,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends `len` pseudo-random bytes over TCP from `from` to `to_addr` (listening in `to`); asserts that
/// what arrived has the SHA-256 of what was sent.
pub fn tcp_transfer(from: &NetNs, to: &NetNs, to_addr: IpAddr, port: u16, len: usize, seed: u64) {
    let data = pseudo_random(len, seed);
    let addr = SocketAddr::new(to_addr, port);
    let start = Instant::now();
    let got = tcp_send(from, to, addr, &data, PATIENCE).unwrap_or_else(|e| panic!("{addr}: {e}"));
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} MiB to {addr} in {secs:.2} s ({:.0} Mbit/s)",
        len >> 20,
        len as f64 * 8.0 / secs / 1e6
    );
    assert_eq!(got.bytes, len as u64, "bytes received");
    assert_eq!(got.sha256, sha256_hex(&data), "SHA-256 of what arrived");
}

/// Two tun-wg endpoints with offloads peered across `under`: A at 10.`net`.0.1/24 listening on 51820 in
/// namespace a, B at 10.`net`.0.2/24 on 51821 in namespace b, each knowing the other's underlay address.
/// Returns their keys and endpoints once a ping from A went through.
pub fn peered_pair(under: &Underlay, net: u8) -> (Keys, Keys, Endpoint, Endpoint) {
    peered_pair_with(under, net, true)
}

/// [`peered_pair`] with TUN offloads on or off (`--no-offload`) at both ends.
pub fn peered_pair_with(
    under: &Underlay,
    net: u8,
    offload: bool,
) -> (Keys, Keys, Endpoint, Endpoint) {
    let (ka, kb) = (Keys::generate(), Keys::generate());
    let inner = |host: u8| format!("10.{net}.0.{host}");
    let a = Endpoint::start(
        &under.a,
        &config(
            &ka,
            51820,
            &[&format!("{}/24", inner(1))],
            &[(
                &kb,
                Some(&format!("{UNDER_B}:51821")),
                &[&format!("{}/32", inner(2))],
            )],
        ),
        offload,
    );
    let b = Endpoint::start(
        &under.b,
        &config(
            &kb,
            51821,
            &[&format!("{}/24", inner(2))],
            &[(
                &ka,
                Some(&format!("{UNDER_A}:51820")),
                &[&format!("{}/32", inner(1))],
            )],
        ),
        offload,
    );
    assert!(ping(&under.a, &inner(2)), "ping from A to B");
    (ka, kb, a, b)
}

/// The configuration of an endpoint alone at 10.`net`.0.1/24 on port 51820, with one peer (no endpoint)
/// allowed 10.`net`.0.2/32: for tests of the endpoint itself, where nothing need reach the peer.
pub fn lone_config(net: u8) -> String {
    config(
        &Keys::generate(),
        51820,
        &[&format!("10.{net}.0.1/24")],
        &[(&Keys::generate(), None, &[&format!("10.{net}.0.2/32")])],
    )
}

/// A wg-quick file for one end: its key, port and addresses, and each peer's key, endpoint and allowed IPs.
pub fn config(
    me: &Keys,
    port: u16,
    addresses: &[&str],
    peers: &[(&Keys, Option<&str>, &[&str])],
) -> String {
    let mut s = format!(
        "[Interface]\nPrivateKey = {}\nListenPort = {port}\nAddress = {}\n",
        me.private,
        addresses.join(", ")
    );
    for (keys, endpoint, allowed) in peers {
        s += &format!(
            "\n[Peer]\nPublicKey = {}\nAllowedIPs = {}\n",
            keys.public,
            allowed.join(", ")
        );
        if let Some(e) = endpoint {
            s += &format!("Endpoint = {e}\n");
        }
    }
    s
}

/// wireguard-go (Debian's package) serving `name` in `ns`, configured with `wg setconf` and `ip`.
pub fn wireguard_go(
    ns: &NetNs,
    me: &Keys,
    port: u16,
    addresses: &[&str],
    peer: &Keys,
    endpoint: Option<&str>,
    allowed: &[&str],
) -> Endpoint {
    let name = unique("wgo");
    let mut cmd = ns.command("wireguard-go");
    // Debian's wireguard-go refuses to run on Linux without this: the kernel module is preferred there.
    cmd.env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
        .args(["-f", &name]);
    let endpoint_process = Endpoint::spawn(cmd, &name, ns);
    let mut conf = format!(
        "[Interface]\nPrivateKey = {}\nListenPort = {port}\n\n[Peer]\nPublicKey = {}\nAllowedIPs = {}\n",
        me.private,
        peer.public,
        allowed.join(", ")
    );
    if let Some(e) = endpoint {
        conf += &format!("Endpoint = {e}\n");
    }
    let path = std::env::temp_dir().join(format!("{name}.conf"));
    std::fs::write(&path, conf).unwrap();
    ns.exec("wg", &["setconf", &name, path.to_str().unwrap()])
        .expect("wg setconf");
    let _ = std::fs::remove_file(&path);
    for a in addresses {
        ns.ip(&["addr", "add", a, "dev", &name]);
    }
    ns.ip(&["link", "set", &name, "up"]);
    endpoint_process
}
