//! The endpoint's shared state: the configuration, the peers and their tunnels, the routing table and the
//! UDP socket, and the two configuration-protocol operations on them.
//!
//! The data path reads an immutable [`Routing`] snapshot (one `Arc` clone per batch) and locks one peer at
//! a time, once per run of packets to or from it. A `set` builds a new snapshot beside the old one and swaps
//! it in; peers that stay keep their `Arc<Peer>`, their tunnel and sessions.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boringtun::noise::Tunn;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::x25519;
use parking_lot::{Mutex, RwLock};

use crate::allowed_ips::AllowedIps;
use crate::config::{DeviceConfig, PeerConfig, endpoints};
use crate::counters::Counters;
use crate::key::Key;
use crate::uapi::{DeviceInfo, PeerInfo, SetRequest, UapiError};
use crate::udp::Udp;

/// Handshake initiations per second before cookies are required. Each initiation passes the limiter twice
/// (once to find its peer, once inside the tunnel), so this is twice boringtun's own device's 100.
const HANDSHAKE_RATE_LIMIT: u64 = 200;

/// Our static key pair and the cookie state of the interface, which all peers share.
pub(crate) struct Identity {
    pub(crate) secret: x25519::StaticSecret,
    pub(crate) public: x25519::PublicKey,
    pub(crate) rate_limiter: Arc<RateLimiter>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &Key(self.public.to_bytes()))
            .finish_non_exhaustive()
    }
}

impl Identity {
    fn new(private: Key) -> Self {
        let secret = x25519::StaticSecret::from(private.0);
        let public = x25519::PublicKey::from(&secret);
        Self {
            rate_limiter: Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT)),
            secret,
            public,
        }
    }
}

/// One peer at run time.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Its public key.
    pub(crate) public_key: Key,
    /// Our 24-bit index for it: the receiver index of its messages to us, shifted right by 8.
    pub(crate) index: u32,
    /// Its tunnel and live state, locked per batch.
    pub(crate) state: Mutex<PeerState>,
}

/// What the data path changes about a peer.
pub(crate) struct PeerState {
    /// The protocol state; `None` while we have no private key.
    pub(crate) tunn: Option<Tunn>,
    /// Where its datagrams go: configured, then wherever it was last authenticated from (roaming).
    pub(crate) endpoint: Option<SocketAddr>,
    /// The settings `tunn` was built with; a change rebuilds it.
    built_with: (Option<Key>, u16),
    /// Datagram bytes received from it (authenticated ones).
    pub(crate) rx_bytes: u64,
    /// Datagram bytes sent to it.
    pub(crate) tx_bytes: u64,
    /// When the last handshake completed, as boringtun last reported it.
    last_handshake: Option<SystemTime>,
}

impl std::fmt::Debug for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerState")
            .field("endpoint", &self.endpoint)
            .field("rx_bytes", &self.rx_bytes)
            .field("tx_bytes", &self.tx_bytes)
            .finish_non_exhaustive()
    }
}

impl PeerState {
    /// When the last handshake completed, as a wall-clock time (boringtun counts time since it).
    pub(crate) fn last_handshake(&mut self) -> Option<SystemTime> {
        if let Some(since) = self.tunn.as_ref().and_then(Tunn::time_since_last_handshake) {
            // Rounded to the millisecond so that repeated reports of one handshake agree.
            let at = SystemTime::now() - since;
            let ms = at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            self.last_handshake = Some(UNIX_EPOCH + Duration::from_millis(ms as u64));
        }
        self.last_handshake
    }
}

/// An immutable view of the peers for the data path.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// Our keys, when we have a private key.
    pub(crate) identity: Option<Arc<Identity>>,
    /// The peers in configuration order.
    pub(crate) peers: Vec<Arc<Peer>>,
    /// Peer position by our index for it.
    pub(crate) by_index: HashMap<u32, usize>,
    /// Peer position by public key.
    pub(crate) by_key: HashMap<[u8; 32], usize>,
    /// Peer position by allowed IP.
    pub(crate) table: AllowedIps<usize>,
}

/// The whole endpoint.
#[derive(Debug)]
pub(crate) struct Device {
    /// The TUN device.
    pub(crate) tun: tun::Tun,
    /// The configuration; its lock also serialises configuration-protocol operations.
    config: Mutex<DeviceConfig>,
    routing: RwLock<Arc<Routing>>,
    udp: RwLock<Arc<Udp>>,
    next_index: AtomicU32,
    /// The device's MTU, refreshed by the timer thread: plaintext is padded up to it, never past it.
    pub(crate) mtu: AtomicU32,
    /// Everything counted.
    pub(crate) counters: Counters,
    /// Set when the endpoint shuts down: the threads stop.
    pub(crate) stopping: AtomicBool,
}

impl Device {
    /// The endpoint on `tun` with nothing configured yet, its socket on `listen_port`.
    pub(crate) fn new(tun: tun::Tun, listen_port: u16) -> std::io::Result<Device> {
        let udp = Udp::bind(listen_port, 0)?;
        let mtu = tun.mtu().unwrap_or(crate::conf_file::DEFAULT_MTU);
        Ok(Device {
            tun,
            // The port bound, not the 0 that asked for any: a `set` of the port shown must find it unchanged
            // rather than bind it a second time.
            config: Mutex::new(DeviceConfig {
                listen_port: udp.port(),
                ..DeviceConfig::default()
            }),
            routing: RwLock::new(Arc::new(Routing::default())),
            udp: RwLock::new(Arc::new(udp)),
            next_index: AtomicU32::new(random_u32() & PEER_INDEX_MASK),
            mtu: AtomicU32::new(mtu),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
        })
    }

    /// The current peers (one `Arc` clone; no lock held afterwards).
    pub(crate) fn routing(&self) -> Arc<Routing> {
        self.routing.read().clone()
    }

    /// The current socket.
    pub(crate) fn udp(&self) -> Arc<Udp> {
        self.udp.read().clone()
    }

    /// Applies a `set=1` transaction whole, or nothing of it.
    pub(crate) fn set(&self, req: &SetRequest) -> Result<(), UapiError> {
        let mut config = self.config.lock();
        let mut draft = config.clone();
        draft.apply(req);
        // The only step that can fail comes first: a new socket for a new port (or mark).
        let udp = self.udp();
        let new_udp = if draft.listen_port != config.listen_port {
            let bound = Udp::bind(draft.listen_port, draft.fwmark).map_err(|e| {
                UapiError::port_in_use(format!("listen_port {}: {e}", draft.listen_port))
            })?;
            Some(Arc::new(bound))
        } else {
            if draft.fwmark != config.fwmark {
                udp.set_fwmark(draft.fwmark)
                    .map_err(|e| UapiError::port_in_use(format!("fwmark: {e}")))?;
            }
            None
        };
        let old = self.routing();
        let identity_changed = draft.private_key != config.private_key;
        let identity = match (identity_changed, draft.private_key) {
            (_, None) => None,
            (false, Some(_)) => old.identity.clone(),
            (true, Some(key)) => Some(Arc::new(Identity::new(key))),
        };
        let mut routing = Routing {
            identity,
            ..Routing::default()
        };
        // The indexes of the peers that stay: a new peer must not get one of them (the counter wraps).
        let mut taken: HashSet<u32> = draft
            .peers
            .iter()
            .filter_map(|p| old.by_key.get(&p.public_key.0))
            .map(|&at| old.peers[at].index)
            .collect();
        for (position, peer_config) in draft.peers.iter().enumerate() {
            let peer = match old.by_key.get(&peer_config.public_key.0) {
                Some(&at) => old.peers[at].clone(),
                None => Arc::new(Peer {
                    public_key: peer_config.public_key,
                    index: fresh_index(&self.next_index, &mut taken),
                    state: Mutex::new(PeerState {
                        tunn: None,
                        endpoint: None,
                        built_with: (None, 0),
                        rx_bytes: 0,
                        tx_bytes: 0,
                        last_handshake: None,
                    }),
                }),
            };
            refresh_tunnel(
                &peer,
                peer_config,
                routing.identity.as_deref(),
                identity_changed,
            );
            routing.by_index.insert(peer.index, position);
            routing.by_key.insert(peer.public_key.0, position);
            routing.peers.push(peer);
        }
        routing.table = draft
            .peers
            .iter()
            .enumerate()
            .flat_map(|(position, p)| p.allowed_ips.iter().map(move |&cidr| (cidr, position)))
            .collect();
        for (key, endpoint) in endpoints(req) {
            if let Some(&at) = routing.by_key.get(&key.0) {
                routing.peers[at].state.lock().endpoint = Some(endpoint);
            }
        }
        if let Some(new_udp) = new_udp {
            draft.listen_port = new_udp.port();
            *self.udp.write() = new_udp;
        }
        *self.routing.write() = Arc::new(routing);
        *config = draft;
        Ok(())
    }

    /// What `get=1` reports.
    pub(crate) fn get(&self) -> DeviceInfo {
        let config = self.config.lock();
        let routing = self.routing();
        let peers = config
            .peers
            .iter()
            .filter_map(|pc| {
                let peer = &routing.peers[*routing.by_key.get(&pc.public_key.0)?];
                let mut state = peer.state.lock();
                let last = state.last_handshake().map_or((0, 0), |t| {
                    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                    (d.as_secs(), d.subsec_nanos())
                });
                Some(PeerInfo {
                    public_key: pc.public_key,
                    preshared_key: pc.preshared_key,
                    endpoint: state.endpoint,
                    last_handshake: last,
                    rx_bytes: state.rx_bytes,
                    tx_bytes: state.tx_bytes,
                    persistent_keepalive: pc.persistent_keepalive,
                    allowed_ips: pc.allowed_ips.clone(),
                })
            })
            .collect();
        DeviceInfo {
            private_key: config.private_key,
            listen_port: self.udp().port(),
            fwmark: config.fwmark,
            peers,
        }
    }
}

/// Builds the peer's tunnel anew when it has none, or when what it was built with changed: our key, the
/// preshared key, the keepalive (boringtun takes both only at construction; the sessions go with it, and
/// the next packet starts a handshake).
fn refresh_tunnel(
    peer: &Peer,
    config: &PeerConfig,
    identity: Option<&Identity>,
    identity_changed: bool,
) {
    let mut state = peer.state.lock();
    let wanted = (config.preshared_key, config.persistent_keepalive);
    let Some(identity) = identity else {
        state.tunn = None;
        return;
    };
    if state.tunn.is_some() && state.built_with == wanted && !identity_changed {
        return;
    }
    state.tunn = Some(Tunn::new(
        identity.secret.clone(),
        x25519::PublicKey::from(config.public_key.0),
        config.preshared_key.map(|k| k.0),
        (config.persistent_keepalive != 0).then_some(config.persistent_keepalive),
        peer.index,
        Some(identity.rate_limiter.clone()),
    ));
    state.built_with = wanted;
}

/// The next peer index (24 bits: boringtun keeps the low 8 bits of a receiver index for its sessions) that
/// no peer in `taken` holds, taken too. The counter wraps after 2^24 peers were made; a live peer's index
/// handed out again would send its traffic to the new peer.
fn fresh_index(next: &AtomicU32, taken: &mut HashSet<u32>) -> u32 {
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed) & PEER_INDEX_MASK;
        // At most 2^24 indexes exist and far fewer peers: a free one comes.
        if taken.insert(index) {
            return index;
        }
    }
}

/// The bits of a peer index.
const PEER_INDEX_MASK: u32 = 0x00ff_ffff;

/// A random start for our peer indexes, so that a restarted endpoint does not take stale messages for new.
fn random_u32() -> u32 {
    use std::io::Read;
    let mut bytes = [0u8; 4];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => u32::from_ne_bytes(bytes),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_peer_index_skips_those_still_held() {
        let next = AtomicU32::new(PEER_INDEX_MASK - 1);
        let mut taken: HashSet<u32> = [PEER_INDEX_MASK, 0, 1].into_iter().collect();
        assert_eq!(fresh_index(&next, &mut taken), PEER_INDEX_MASK - 1);
        // Past the top it wraps to 0, which a live peer holds, as it does 1 and the top itself.
        assert_eq!(fresh_index(&next, &mut taken), 2);
        assert_eq!(fresh_index(&next, &mut taken), 3);
        assert!(taken.contains(&2) && taken.contains(&3));
    }
}
