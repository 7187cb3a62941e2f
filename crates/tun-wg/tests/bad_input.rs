//! Whatever reaches the port is dropped and counted, and the tunnel keeps working: random bytes, truncated
//! messages, a handshake from an unknown key, a replayed data packet, a valid peer sending from outside its
//! allowed IPs. And a configuration-protocol `set` with an error answers its errno and changes nothing.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use support::*;
use tun_test_support::packets::udp4_packet;
use tun_test_support::stream::PseudoRandom;

/// A peer played by the test with boringtun, over a plain UDP socket in namespace B.
struct TestPeer {
    tunn: Tunn,
    socket: UdpSocket,
    to: SocketAddr,
}

impl TestPeer {
    fn new(ns: &NetNs, secret: [u8; 32], their_public: [u8; 32], to: SocketAddr) -> TestPeer {
        let socket = ns.run_in(|| UdpSocket::bind("0.0.0.0:0")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let tunn = Tunn::new(
            StaticSecret::from(secret),
            PublicKey::from(their_public),
            None,
            None,
            7,
            None,
        );
        TestPeer { tunn, socket, to }
    }

    /// Encrypts `packet` (starting a handshake first if needed); returns the datagram sent.
    fn send(&mut self, packet: &[u8]) -> Vec<u8> {
        let mut dst = vec![0u8; packet.len() + 256];
        let datagram = match self.tunn.encapsulate(packet, &mut dst) {
            TunnResult::WriteToNetwork(d) => d.to_vec(),
            other => panic!("encapsulate: {}", describe(&other)),
        };
        self.socket.send_to(&datagram, self.to).unwrap();
        datagram
    }

    /// Completes a handshake: the initiation went out with the first `send`; takes the response, answers
    /// with what the tunnel has queued.
    fn complete_handshake(&mut self) {
        let mut buf = vec![0u8; 2048];
        let mut dst = vec![0u8; 2048];
        let (n, _) = self
            .socket
            .recv_from(&mut buf)
            .expect("a handshake response");
        let mut out = Vec::new();
        if let TunnResult::WriteToNetwork(d) = self.tunn.decapsulate(None, &buf[..n], &mut dst) {
            out.push(d.to_vec());
        }
        while let TunnResult::WriteToNetwork(d) = self.tunn.decapsulate(None, &[], &mut dst) {
            out.push(d.to_vec());
        }
        for d in out {
            self.socket.send_to(&d, self.to).unwrap();
        }
    }
}

fn describe(r: &TunnResult<'_>) -> String {
    match r {
        TunnResult::Done => "done".into(),
        TunnResult::Err(e) => format!("{e:?}"),
        TunnResult::WriteToNetwork(_) => "to network".into(),
        TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => "to tunnel".into(),
    }
}

fn random_key(seed: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    PseudoRandom::new(seed).fill(&mut k);
    k
}

#[test]
#[ignore = "privileged: creates network namespaces, a veth pair and TUN devices"]
fn bad_datagrams_are_dropped_and_counted_and_the_tunnel_keeps_working() {
    let under = Underlay::new();
    let (ka, _kb, a, _b) = peered_pair(&under, 49);
    let target: SocketAddr = format!("{UNDER_A}:51820").parse().unwrap();
    let junk = under.b.run_in(|| UdpSocket::bind("0.0.0.0:0")).unwrap();

    // Random bytes of every length, some dressed as each message type at its exact length.
    let mut rng = PseudoRandom::new(99);
    for i in 0..400usize {
        let len = [0, 1, 3, 4, 31, 32, 64, 92, 148, 200, 1400][i % 11];
        let mut d = vec![0u8; len];
        rng.fill(&mut d);
        if len >= 4 && i % 2 == 0 {
            d[..4].copy_from_slice(&[(i % 4 + 1) as u8, 0, 0, 0]);
        }
        junk.send_to(&d, target).unwrap();
    }
    // A handshake from a key A does not know (its MAC is right: it is meant for A), then the same
    // handshake cut short.
    let mut stranger = TestPeer::new(&under.b, random_key(1), ka.public_bytes(), target);
    let init = stranger.send(&udp4_packet(
        "10.49.0.7:1".parse().unwrap(),
        "10.49.0.1:9".parse().unwrap(),
        b"x",
    ));
    assert_eq!(init.len(), 148, "a handshake initiation");
    junk.send_to(&init[..100], target).unwrap();

    // A valid peer C, allowed 10.49.0.3 only.
    let c_secret = random_key(2);
    let c_public = PublicKey::from(&StaticSecret::from(c_secret));
    let c_hex: String = c_public
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let answer =
        a.uapi(format!("set=1\npublic_key={c_hex}\nallowed_ip=10.49.0.3/32\n\n").as_bytes());
    assert_eq!(answer, "errno=0\n\n");
    let written_before = a.counters()["tun_packets_written"];
    let mut c = TestPeer::new(&under.b, c_secret, ka.public_bytes(), target);
    let allowed = udp4_packet(
        "10.49.0.3:1".parse().unwrap(),
        "10.49.0.1:9".parse().unwrap(),
        b"hello",
    );
    c.send(&allowed);
    c.complete_handshake();
    assert!(
        wait_until(PATIENCE, || a.counters()["tun_packets_written"]
            > written_before),
        "C's first packet, queued during the handshake, is delivered"
    );
    let data = c.send(&allowed);
    let spoofed = udp4_packet(
        "10.49.0.99:1".parse().unwrap(),
        "10.49.0.1:9".parse().unwrap(),
        b"spoof",
    );
    c.send(&spoofed);
    // The same data packet again, from another port: a replay, and no reason to move C's endpoint.
    junk.send_to(&data, target).unwrap();

    let wait_for = |name: &str, at_least: u64| {
        assert!(
            wait_until(PATIENCE, || a.counters()[name] >= at_least),
            "{name} >= {at_least}: {:?}",
            a.counters()
        );
    };
    wait_for("dropped_replay", 1);
    wait_for("dropped_source_not_allowed", 1);
    wait_for("dropped_unknown_peer", 2);
    // The 37 empty datagrams among the 400 are malformed too (346 of the others are).
    wait_for("dropped_malformed", 383);
    wait_for("dropped_bad_mac", 5);
    // Every datagram was looked at, the empty ones included.
    wait_for("udp_datagrams_received", 400);
    assert_ne!(
        a.peer(&c_hex)["endpoint"],
        junk.local_addr().unwrap().to_string(),
        "a replay does not move the endpoint"
    );

    // Still alive, still carrying traffic both ways.
    assert!(ping(&under.a, "10.49.0.2"));
    assert!(ping(&under.b, "10.49.0.1"));
    assert!(a.output().contains("up"), "{}", a.output());
}

#[test]
#[ignore = "privileged: creates a network namespace and a TUN device"]
fn a_set_with_an_error_answers_its_errno_and_changes_nothing() {
    let ns = NetNs::tagged("wgu");
    let a = Endpoint::start(&ns, &lone_config(50), true);
    let before = a.get();
    let peer = Keys::generate().public_hex();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"set=1\nprivate_key=zz\n\n".to_vec(), "errno=-22\n\n"),
        (b"set=1\nlisten_port=1234\nbogus_key=1\n\n".to_vec(), "errno=-22\n\n"),
        (
            format!("set=1\nlisten_port=1234\npublic_key={peer}\nallowed_ip=10.9.0.0/16\nendpoint=nowhere\n\n").into_bytes(),
            "errno=-22\n\n",
        ),
        (b"set=1\nlisten_port=1234\nno equals sign\n\n".to_vec(), "errno=-71\n\n"),
        (
            [b"set=1\nlisten_port=1234\nprivate_key=".as_slice(), &vec![b'a'; 100_000], b"\n\n"].concat(),
            "errno=-5\n\n",
        ),
    ];
    for (request, want) in &cases {
        assert_eq!(
            &a.uapi(request),
            want,
            "{}",
            String::from_utf8_lossy(&request[..request.len().min(80)])
        );
    }
    // A request cut off before its empty line.
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(a.socket_path()).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(b"set=1\nlisten_port=1234").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "errno=-71\n\n");
    }
    assert_eq!(a.get(), before, "nothing of a refused set was applied");
    // A good one still works.
    assert_eq!(a.uapi(b"set=1\nlisten_port=51999\n\n"), "errno=0\n\n");
    assert!(
        a.get()
            .contains(&("listen_port".to_owned(), "51999".to_owned()))
    );
}

#[test]
#[ignore = "privileged: creates a network namespace and a TUN device"]
fn a_slow_client_does_not_hold_up_the_others() {
    use std::io::{Read, Write};
    use std::time::Instant;
    let ns = NetNs::tagged("wgs");
    let a = Endpoint::start(&ns, &lone_config(51), true);
    // A client that takes its time: a byte every 220 ms, never silent long enough to be timed out, 6 s in
    // all for one request.
    let mut slow = std::os::unix::net::UnixStream::connect(a.socket_path()).unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    slow.write_all(b"set=1\n").unwrap();
    let trickle = std::thread::spawn(move || {
        for &b in b"fwmark=0000000000000000007\n\n" {
            std::thread::sleep(Duration::from_millis(220));
            slow.write_all(&[b]).unwrap();
        }
        let mut answer = String::new();
        let mut buf = [0u8; 64];
        while !answer.ends_with("\n\n") {
            match slow.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        answer
    });
    let started = Instant::now();
    let answer = a.uapi(b"get=1\n\n");
    let took = started.elapsed();
    assert!(answer.ends_with("errno=0\n\n"), "{answer}");
    assert_eq!(trickle.join().unwrap(), "errno=0\n\n");
    assert!(
        took < Duration::from_secs(3),
        "a get waited {took:?} behind a slow client"
    );
    assert!(a.get().contains(&("fwmark".to_owned(), "7".to_owned())));
}

#[test]
#[ignore = "privileged: creates a network namespace and a TUN device"]
fn setting_the_port_already_bound_changes_nothing() {
    // Started without a ListenPort: the kernel picks one. `wg showconf` reports it and `wg setconf` of
    // that output sets it again; the socket holding it must not have to be bound a second time.
    let ns = NetNs::tagged("wgp");
    let file = lone_config(52).replace("ListenPort = 51820\n", "");
    let a = Endpoint::start(&ns, &file, true);
    let port = a
        .get()
        .into_iter()
        .find_map(|(k, v)| (k == "listen_port").then_some(v))
        .expect("a listen_port is reported");
    assert_eq!(
        a.uapi(format!("set=1\nlisten_port={port}\n\n").as_bytes()),
        "errno=0\n\n"
    );
    assert!(a.get().contains(&("listen_port".to_owned(), port)));
}
