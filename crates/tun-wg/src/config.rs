//! The device's configuration as the configuration protocol sees it, and how a transaction changes it.
//!
//! A transaction is applied to a copy; the copy replaces the configuration only when everything in it
//! worked (see [`crate::device::Device::set`]), so a refused transaction changes nothing.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::cidr::Cidr;
use crate::conf_file::FileConfig;
use crate::key::Key;
use crate::uapi::{PeerUpdate, SetRequest};

/// The configuration of the device: what `get=1` reports besides the live state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DeviceConfig {
    /// Our private key; without one no handshake can happen.
    pub(crate) private_key: Option<Key>,
    /// The UDP port bound (a `set` of 0 asks for any and records the one bound).
    pub(crate) listen_port: u16,
    /// SO_MARK of the UDP socket (0: none).
    pub(crate) fwmark: u32,
    /// The peers in the order they were added.
    pub(crate) peers: Vec<PeerConfig>,
}

/// One peer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerConfig {
    /// Its public key: its identity.
    pub(crate) public_key: Key,
    /// The preshared key mixed into its handshakes.
    pub(crate) preshared_key: Option<Key>,
    /// Persistent keepalive in seconds (0: off).
    pub(crate) persistent_keepalive: u16,
    /// Its allowed IPs, each owned by this peer alone.
    pub(crate) allowed_ips: Vec<Cidr>,
}

impl PeerConfig {
    fn new(public_key: Key) -> Self {
        Self {
            public_key,
            preshared_key: None,
            persistent_keepalive: 0,
            allowed_ips: Vec::new(),
        }
    }
}

impl DeviceConfig {
    /// Our public key, if we have a private key.
    pub(crate) fn public_key(&self) -> Option<Key> {
        self.private_key.map(|k| k.public_key())
    }

    /// Applies a parsed transaction, as wireguard-go would apply it line by line.
    ///
    /// Endpoints are live state, not configuration: [`crate::device::Device::set`] sets them.
    pub(crate) fn apply(&mut self, req: &SetRequest) {
        if let Some(key) = req.private_key {
            self.private_key = key;
            // A peer with our own public key cannot be talked to; wireguard-go drops it.
            if let Some(public) = self.public_key() {
                self.peers.retain(|p| p.public_key != public);
            }
        }
        if let Some(port) = req.listen_port {
            self.listen_port = port;
        }
        if let Some(mark) = req.fwmark {
            self.fwmark = mark;
        }
        if req.replace_peers {
            self.peers.clear();
        }
        let mut edit = PeerEdit::new(std::mem::take(&mut self.peers), self.public_key());
        for update in &req.peers {
            edit.apply(update);
        }
        self.peers = edit.finish();
    }
}

/// The peers while a transaction changes them, indexed so that each line costs the same however many peers
/// and prefixes there are: peers by key, prefixes by owner. A removed peer leaves an empty slot and a prefix
/// taken from a peer stays in its list until [`finish`](Self::finish) drops both.
struct PeerEdit {
    peers: Vec<Option<PeerConfig>>,
    by_key: HashMap<Key, usize>,
    owner: HashMap<Cidr, usize>,
    our_public_key: Option<Key>,
}

impl PeerEdit {
    fn new(peers: Vec<PeerConfig>, our_public_key: Option<Key>) -> Self {
        let mut edit = Self {
            by_key: HashMap::with_capacity(peers.len()),
            owner: HashMap::new(),
            peers: Vec::with_capacity(peers.len()),
            our_public_key,
        };
        for (at, peer) in peers.into_iter().enumerate() {
            edit.by_key.insert(peer.public_key, at);
            edit.owner
                .extend(peer.allowed_ips.iter().map(|&cidr| (cidr, at)));
            edit.peers.push(Some(peer));
        }
        edit
    }

    /// Applies what the transaction says about one peer, as wireguard-go would apply its lines.
    fn apply(&mut self, update: &PeerUpdate) {
        if Some(update.public_key) == self.our_public_key {
            return;
        }
        let existing = self.by_key.get(&update.public_key).copied();
        if update.remove {
            if let Some(at) = existing {
                self.remove(at);
            }
            return;
        }
        let at = match existing {
            Some(at) => at,
            None if update.update_only => return,
            None => {
                self.peers.push(Some(PeerConfig::new(update.public_key)));
                self.by_key.insert(update.public_key, self.peers.len() - 1);
                self.peers.len() - 1
            }
        };
        let Some(peer) = self.peers[at].as_mut() else {
            return;
        };
        if let Some(psk) = update.preshared_key {
            peer.preshared_key = psk;
        }
        if let Some(seconds) = update.persistent_keepalive {
            peer.persistent_keepalive = seconds;
        }
        if update.replace_allowed_ips {
            for cidr in peer.allowed_ips.drain(..) {
                if self.owner.get(&cidr) == Some(&at) {
                    self.owner.remove(&cidr);
                }
            }
        }
        for &cidr in &update.allowed_ips {
            // Gives `cidr` to this peer, taking it from any other: one owner per prefix.
            if self.owner.insert(cidr, at) != Some(at) {
                peer.allowed_ips.push(cidr);
            }
        }
    }

    fn remove(&mut self, at: usize) {
        let Some(peer) = self.peers[at].take() else {
            return;
        };
        self.by_key.remove(&peer.public_key);
        for cidr in &peer.allowed_ips {
            if self.owner.get(cidr) == Some(&at) {
                self.owner.remove(cidr);
            }
        }
    }

    /// The peers in order, each with the prefixes it still owns: a prefix taken away and given back comes
    /// where it was given last.
    fn finish(self) -> Vec<PeerConfig> {
        let mut listed = HashSet::with_capacity(self.owner.len());
        self.peers
            .into_iter()
            .enumerate()
            .filter_map(|(at, peer)| {
                let mut peer = peer?;
                let mut kept: Vec<Cidr> = (peer.allowed_ips.iter().rev())
                    .filter(|&&cidr| self.owner.get(&cidr) == Some(&at) && listed.insert(cidr))
                    .copied()
                    .collect();
                kept.reverse();
                peer.allowed_ips = kept;
                Some(peer)
            })
            .collect()
    }
}

/// The transaction that sets up what a configuration file says (endpoints included).
pub(crate) fn request_from_file(file: &FileConfig) -> SetRequest {
    SetRequest {
        private_key: file.private_key.map(Some),
        listen_port: file.listen_port,
        fwmark: None,
        replace_peers: true,
        peers: file
            .peers
            .iter()
            .map(|p| PeerUpdate {
                preshared_key: p.preshared_key.map(Some),
                endpoint: p.endpoint,
                persistent_keepalive: p.persistent_keepalive,
                replace_allowed_ips: true,
                allowed_ips: p.allowed_ips.clone(),
                ..PeerUpdate::new(p.public_key)
            })
            .collect(),
    }
}

/// The endpoints a transaction sets, last one per peer wins.
pub(crate) fn endpoints(req: &SetRequest) -> impl Iterator<Item = (Key, SocketAddr)> + '_ {
    req.peers
        .iter()
        .filter(|p| !p.remove)
        .filter_map(|p| p.endpoint.map(|e| (p.public_key, e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn peer(n: u8) -> PeerUpdate {
        PeerUpdate::new(key(n))
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn an_allowed_ip_has_one_owner() {
        let mut c = DeviceConfig::default();
        c.apply(&SetRequest {
            peers: vec![
                PeerUpdate {
                    allowed_ips: vec![cidr("10.0.0.0/24"), cidr("10.0.1.0/24")],
                    ..peer(1)
                },
                PeerUpdate {
                    allowed_ips: vec![cidr("10.0.1.0/24")],
                    ..peer(2)
                },
            ],
            ..SetRequest::default()
        });
        assert_eq!(c.peers[0].allowed_ips, vec![cidr("10.0.0.0/24")]);
        assert_eq!(c.peers[1].allowed_ips, vec![cidr("10.0.1.0/24")]);
    }

    #[test]
    fn remove_update_only_and_replace_peers() {
        let mut c = DeviceConfig::default();
        c.apply(&SetRequest {
            peers: vec![peer(1), peer(2)],
            ..SetRequest::default()
        });
        c.apply(&SetRequest {
            peers: vec![
                PeerUpdate {
                    remove: true,
                    ..peer(1)
                },
                PeerUpdate {
                    update_only: true,
                    ..peer(3)
                },
                PeerUpdate {
                    update_only: true,
                    persistent_keepalive: Some(5),
                    ..peer(2)
                },
            ],
            ..SetRequest::default()
        });
        assert_eq!(c.peers.len(), 1);
        assert_eq!(
            (c.peers[0].public_key, c.peers[0].persistent_keepalive),
            (key(2), 5)
        );
        c.apply(&SetRequest {
            replace_peers: true,
            peers: vec![peer(4)],
            ..SetRequest::default()
        });
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].public_key, key(4));
    }

    #[test]
    fn our_own_public_key_is_never_a_peer() {
        let private = key(7);
        let mut c = DeviceConfig::default();
        c.apply(&SetRequest {
            peers: vec![peer(1)],
            ..SetRequest::default()
        });
        c.apply(&SetRequest {
            private_key: Some(Some(private)),
            peers: vec![PeerUpdate::new(private.public_key())],
            ..SetRequest::default()
        });
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].public_key, key(1));
    }

    /// Peer `n` of a large configuration: a key and the host address of its own.
    fn numbered_peer(n: u32) -> PeerUpdate {
        let mut key = [1u8; 32];
        key[..4].copy_from_slice(&n.to_be_bytes());
        PeerUpdate {
            allowed_ips: vec![
                Cidr::new(std::net::Ipv4Addr::from(0x0a00_0000 + n).into(), 32).unwrap(),
            ],
            ..PeerUpdate::new(Key(key))
        }
    }

    #[test]
    fn a_large_configuration_applies_in_linear_time() {
        // 30 000 peers with an address each, then one more peer taking 30 000 prefixes: looking each peer
        // and each prefix up by a scan of the whole configuration took minutes; by index, a moment.
        let n = 30_000u32;
        let started = std::time::Instant::now();
        let mut c = DeviceConfig::default();
        c.apply(&SetRequest {
            peers: (0..n).map(numbered_peer).collect(),
            ..SetRequest::default()
        });
        let taker = PeerUpdate {
            allowed_ips: (0..n).flat_map(|i| numbered_peer(i).allowed_ips).collect(),
            ..peer(0xee)
        };
        c.apply(&SetRequest {
            peers: vec![taker],
            ..SetRequest::default()
        });
        let took = started.elapsed();
        assert_eq!(c.peers.len(), n as usize + 1);
        assert!(
            c.peers[..n as usize]
                .iter()
                .all(|p| p.allowed_ips.is_empty())
        );
        assert_eq!(c.peers[n as usize].allowed_ips.len(), n as usize);
        assert!(
            took < std::time::Duration::from_secs(10),
            "applying {n} peers and moving their prefixes took {took:?}"
        );
    }

    /// The rules applied as they read, one scan of the configuration per line: what [`PeerEdit`] must agree
    /// with.
    fn apply_by_scanning(c: &mut DeviceConfig, req: &SetRequest) {
        if let Some(key) = req.private_key {
            c.private_key = key;
            if let Some(public) = c.public_key() {
                c.peers.retain(|p| p.public_key != public);
            }
        }
        if req.replace_peers {
            c.peers.clear();
        }
        for update in &req.peers {
            if Some(update.public_key) == c.public_key() {
                continue;
            }
            let existing = c
                .peers
                .iter()
                .position(|p| p.public_key == update.public_key);
            if update.remove {
                if let Some(at) = existing {
                    c.peers.remove(at);
                }
                continue;
            }
            let at = match existing {
                Some(at) => at,
                None if update.update_only => continue,
                None => {
                    c.peers.push(PeerConfig::new(update.public_key));
                    c.peers.len() - 1
                }
            };
            let peer = &mut c.peers[at];
            if let Some(psk) = update.preshared_key {
                peer.preshared_key = psk;
            }
            if let Some(seconds) = update.persistent_keepalive {
                peer.persistent_keepalive = seconds;
            }
            if update.replace_allowed_ips {
                peer.allowed_ips.clear();
            }
            for &cidr in &update.allowed_ips {
                for (i, other) in c.peers.iter_mut().enumerate() {
                    if i != at {
                        other.allowed_ips.retain(|&x| x != cidr);
                    }
                }
                if !c.peers[at].allowed_ips.contains(&cidr) {
                    c.peers[at].allowed_ips.push(cidr);
                }
            }
        }
    }

    fn small_update() -> impl Strategy<Value = PeerUpdate> {
        (
            0u8..4,
            (any::<bool>(), any::<bool>(), any::<bool>()),
            proptest::option::of(0u16..3),
            proptest::collection::vec(0u8..6, 0..5),
        )
            .prop_map(|(k, (remove, update_only, replace), ka, ips)| PeerUpdate {
                remove,
                update_only,
                persistent_keepalive: ka,
                replace_allowed_ips: replace,
                allowed_ips: ips
                    .into_iter()
                    .map(|i| cidr(&format!("10.0.{i}.0/24")))
                    .collect(),
                ..PeerUpdate::new(small_key(k))
            })
    }

    /// Peer keys of a small space; one is the public key of the private key `key(1)`.
    fn small_key(k: u8) -> Key {
        if k == 3 { key(1).public_key() } else { key(k) }
    }

    fn small_request() -> impl Strategy<Value = SetRequest> {
        (
            proptest::option::of(proptest::option::of(1u8..3)),
            any::<bool>(),
            proptest::collection::vec(small_update(), 0..8),
        )
            .prop_map(|(private, replace_peers, peers)| SetRequest {
                // Now and then our public key is a peer's key (see `small_key`).
                private_key: private.map(|k| k.map(key)),
                replace_peers,
                peers,
                ..SetRequest::default()
            })
    }

    proptest! {
        #[test]
        fn indexed_application_agrees_with_a_scan(
            requests in proptest::collection::vec(small_request(), 1..5),
        ) {
            let mut indexed = DeviceConfig::default();
            let mut scanned = DeviceConfig::default();
            for req in &requests {
                indexed.apply(req);
                apply_by_scanning(&mut scanned, req);
                prop_assert_eq!(&indexed, &scanned);
            }
        }
    }

    #[test]
    fn replace_allowed_ips_keeps_only_the_new_ones() {
        let mut c = DeviceConfig::default();
        c.apply(&SetRequest {
            peers: vec![PeerUpdate {
                allowed_ips: vec![cidr("10.0.0.0/24")],
                ..peer(1)
            }],
            ..SetRequest::default()
        });
        c.apply(&SetRequest {
            peers: vec![PeerUpdate {
                replace_allowed_ips: true,
                allowed_ips: vec![cidr("10.9.0.0/24")],
                ..peer(1)
            }],
            ..SetRequest::default()
        });
        assert_eq!(c.peers[0].allowed_ips, vec![cidr("10.9.0.0/24")]);
    }
}
