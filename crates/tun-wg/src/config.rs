//! The device's configuration as the configuration protocol sees it, and how a transaction changes it.
//!
//! A transaction is applied to a copy; the copy replaces the configuration only when everything in it
//! worked (see [`crate::device::Device::set`]), so a refused transaction changes nothing.

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
    /// The UDP port asked for (0: any).
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
        for update in &req.peers {
            self.apply_peer(update);
        }
    }

    fn apply_peer(&mut self, update: &PeerUpdate) {
        if Some(update.public_key) == self.public_key() {
            return;
        }
        let existing = self
            .peers
            .iter()
            .position(|p| p.public_key == update.public_key);
        if update.remove {
            if let Some(at) = existing {
                self.peers.remove(at);
            }
            return;
        }
        let at = match existing {
            Some(at) => at,
            None if update.update_only => return,
            None => {
                self.peers.push(PeerConfig::new(update.public_key));
                self.peers.len() - 1
            }
        };
        let peer = &mut self.peers[at];
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
            self.give_allowed_ip(at, cidr);
        }
    }

    /// Gives `cidr` to the peer at `at`, taking it from any other: one owner per prefix.
    fn give_allowed_ip(&mut self, at: usize, cidr: Cidr) {
        for (i, peer) in self.peers.iter_mut().enumerate() {
            if i != at {
                peer.allowed_ips.retain(|&c| c != cidr);
            }
        }
        let ips = &mut self.peers[at].allowed_ips;
        if !ips.contains(&cidr) {
            ips.push(cidr);
        }
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
