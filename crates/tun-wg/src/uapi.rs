//! WireGuard's cross-platform configuration protocol: the text of `set=1` and `get=1` transactions.
//!
//! Pure parsing and writing; [`crate::uapi_server`] moves the text over the UNIX socket and
//! [`crate::config`] applies a parsed transaction. Errors carry the negative errno wireguard-go answers with
//! (`device/uapi.go` and `ipc/uapi_linux.go`): `-EINVAL` for a bad key or value, `-EPROTO` for a line that
//! is not `key=value`, `-EIO` for a line past the length limit, `-EADDRINUSE` when the port cannot be bound.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::cidr::Cidr;
use crate::key::Key;

/// A request the protocol refuses: its errno (negative, as sent) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("errno {errno}: {message}")]
pub(crate) struct UapiError {
    /// The `errno=` value of the answer.
    pub(crate) errno: i32,
    /// What was wrong, for the log.
    pub(crate) message: String,
}

impl UapiError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            errno: -libc::EINVAL,
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self {
            errno: -libc::EPROTO,
            message: message.into(),
        }
    }

    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self {
            errno: -libc::EIO,
            message: message.into(),
        }
    }

    pub(crate) fn port_in_use(message: impl Into<String>) -> Self {
        Self {
            errno: -libc::EADDRINUSE,
            message: message.into(),
        }
    }
}

/// A parsed `set=1` transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SetRequest {
    /// `private_key`: `Some(None)` removes it (the all-zero key).
    pub(crate) private_key: Option<Option<Key>>,
    /// `listen_port`.
    pub(crate) listen_port: Option<u16>,
    /// `fwmark` (0 removes it).
    pub(crate) fwmark: Option<u32>,
    /// `replace_peers=true`: every existing peer goes first.
    pub(crate) replace_peers: bool,
    /// The peers, in the order of their `public_key` lines.
    pub(crate) peers: Vec<PeerUpdate>,
}

/// What a transaction says about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerUpdate {
    /// `public_key`.
    pub(crate) public_key: Key,
    /// `remove=true`.
    pub(crate) remove: bool,
    /// `update_only=true`: change the peer only if it exists.
    pub(crate) update_only: bool,
    /// `preshared_key`: `Some(None)` removes it (the all-zero key).
    pub(crate) preshared_key: Option<Option<Key>>,
    /// `endpoint`.
    pub(crate) endpoint: Option<SocketAddr>,
    /// `persistent_keepalive_interval` in seconds (0 turns it off).
    pub(crate) persistent_keepalive: Option<u16>,
    /// `replace_allowed_ips=true`: the peer's allowed IPs are the ones below, not added to the old ones.
    pub(crate) replace_allowed_ips: bool,
    /// `allowed_ip` lines after the last `replace_allowed_ips` (earlier ones would be replaced anyway).
    pub(crate) allowed_ips: Vec<Cidr>,
}

impl PeerUpdate {
    pub(crate) fn new(public_key: Key) -> Self {
        Self {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

/// What `get=1` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DeviceInfo {
    /// `private_key` (left out when there is none).
    pub(crate) private_key: Option<Key>,
    /// `listen_port` (left out when 0).
    pub(crate) listen_port: u16,
    /// `fwmark` (left out when 0).
    pub(crate) fwmark: u32,
    /// The peers.
    pub(crate) peers: Vec<PeerInfo>,
}

/// What `get=1` reports about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerInfo {
    /// `public_key`.
    pub(crate) public_key: Key,
    /// `preshared_key` (all zeros when none, as wireguard-go writes it).
    pub(crate) preshared_key: Option<Key>,
    /// `endpoint`: where the peer was last heard from, or was configured.
    pub(crate) endpoint: Option<SocketAddr>,
    /// `last_handshake_time_sec` / `_nsec`: a Unix time, zero when there was none.
    pub(crate) last_handshake: (u64, u32),
    /// `rx_bytes`.
    pub(crate) rx_bytes: u64,
    /// `tx_bytes`.
    pub(crate) tx_bytes: u64,
    /// `persistent_keepalive_interval`.
    pub(crate) persistent_keepalive: u16,
    /// `allowed_ip` lines.
    pub(crate) allowed_ips: Vec<Cidr>,
}

fn key_or_zero(value: &str) -> Result<Option<Key>, crate::key::KeyError> {
    Key::from_hex(value).map(|k| (!k.is_zero()).then_some(k))
}

fn flag(key: &str, value: &str) -> Result<(), UapiError> {
    if value == "true" {
        Ok(())
    } else {
        Err(UapiError::invalid(format!("{key}: `{value}` is not true")))
    }
}

/// Parses the lines of a `set=1` transaction (after `set=1`, without the empty line that ends it).
pub(crate) fn parse_set<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<SetRequest, UapiError> {
    let mut req = SetRequest::default();
    for line in lines {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| UapiError::protocol(format!("`{line}` is not key=value")))?;
        if key == "public_key" {
            let key =
                Key::from_hex(value).map_err(|e| UapiError::invalid(format!("public_key: {e}")))?;
            req.peers.push(PeerUpdate::new(key));
            continue;
        }
        let bad = |e: &dyn std::fmt::Display| UapiError::invalid(format!("{key}: {e}"));
        let Some(peer) = req.peers.last_mut() else {
            match key {
                "private_key" => req.private_key = Some(key_or_zero(value).map_err(|e| bad(&e))?),
                "listen_port" => req.listen_port = Some(value.parse().map_err(|e| bad(&e))?),
                "fwmark" => req.fwmark = Some(value.parse().map_err(|e| bad(&e))?),
                "replace_peers" => {
                    flag(key, value)?;
                    req.replace_peers = true;
                }
                _ => return Err(UapiError::invalid(format!("unknown device key `{key}`"))),
            }
            continue;
        };
        match key {
            "remove" => {
                flag(key, value)?;
                peer.remove = true;
            }
            "update_only" => {
                flag(key, value)?;
                peer.update_only = true;
            }
            "preshared_key" => peer.preshared_key = Some(key_or_zero(value).map_err(|e| bad(&e))?),
            "endpoint" => {
                peer.endpoint = Some(
                    value
                        .parse()
                        .map_err(|_| bad(&format!("`{value}` is not IP:PORT or [IPv6]:PORT")))?,
                );
            }
            "persistent_keepalive_interval" => {
                peer.persistent_keepalive = Some(value.parse().map_err(|e| bad(&e))?);
            }
            "replace_allowed_ips" => {
                flag(key, value)?;
                peer.replace_allowed_ips = true;
                peer.allowed_ips.clear();
            }
            "allowed_ip" => peer.allowed_ips.push(value.parse().map_err(|e| bad(&e))?),
            "protocol_version" => {
                if value != "1" {
                    return Err(bad(&format!("version `{value}` is not 1")));
                }
            }
            _ => return Err(UapiError::invalid(format!("unknown peer key `{key}`"))),
        }
    }
    Ok(req)
}

/// Writes a transaction as `set=1` lines (what a client sends; the tests check the parser against it) (without `set=1` and the final empty line).
#[cfg(test)]
pub(crate) fn write_set(req: &SetRequest) -> String {
    let mut s = String::new();
    let hex = |k: Option<Key>| k.unwrap_or(Key([0; 32])).to_hex();
    if let Some(k) = req.private_key {
        let _ = writeln!(s, "private_key={}", hex(k));
    }
    if let Some(p) = req.listen_port {
        let _ = writeln!(s, "listen_port={p}");
    }
    if let Some(m) = req.fwmark {
        let _ = writeln!(s, "fwmark={m}");
    }
    if req.replace_peers {
        s.push_str("replace_peers=true\n");
    }
    for p in &req.peers {
        let _ = writeln!(s, "public_key={}", p.public_key.to_hex());
        if p.remove {
            s.push_str("remove=true\n");
        }
        if p.update_only {
            s.push_str("update_only=true\n");
        }
        if let Some(k) = p.preshared_key {
            let _ = writeln!(s, "preshared_key={}", hex(k));
        }
        if let Some(e) = p.endpoint {
            let _ = writeln!(s, "endpoint={e}");
        }
        if let Some(k) = p.persistent_keepalive {
            let _ = writeln!(s, "persistent_keepalive_interval={k}");
        }
        if p.replace_allowed_ips {
            s.push_str("replace_allowed_ips=true\n");
        }
        for a in &p.allowed_ips {
            let _ = writeln!(s, "allowed_ip={a}");
        }
    }
    s
}

/// Writes a `get=1` answer's lines, in wireguard-go's order (without the final `errno=0` and empty line).
pub(crate) fn write_get(info: &DeviceInfo) -> String {
    let mut s = String::new();
    if let Some(k) = info.private_key {
        let _ = writeln!(s, "private_key={}", k.to_hex());
    }
    if info.listen_port != 0 {
        let _ = writeln!(s, "listen_port={}", info.listen_port);
    }
    if info.fwmark != 0 {
        let _ = writeln!(s, "fwmark={}", info.fwmark);
    }
    for p in &info.peers {
        let _ = writeln!(s, "public_key={}", p.public_key.to_hex());
        let _ = writeln!(
            s,
            "preshared_key={}",
            p.preshared_key.unwrap_or(Key([0; 32])).to_hex()
        );
        s.push_str("protocol_version=1\n");
        if let Some(e) = p.endpoint {
            let _ = writeln!(s, "endpoint={e}");
        }
        let _ = writeln!(s, "last_handshake_time_sec={}", p.last_handshake.0);
        let _ = writeln!(s, "last_handshake_time_nsec={}", p.last_handshake.1);
        let _ = writeln!(s, "tx_bytes={}", p.tx_bytes);
        let _ = writeln!(s, "rx_bytes={}", p.rx_bytes);
        let _ = writeln!(
            s,
            "persistent_keepalive_interval={}",
            p.persistent_keepalive
        );
        for a in &p.allowed_ips {
            let _ = writeln!(s, "allowed_ip={a}");
        }
    }
    s
}

/// Parses a `get=1` answer's lines (up to, not including, `errno=`): what a client such as the tests reads.
#[cfg(test)]
pub(crate) fn parse_get<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<DeviceInfo, UapiError> {
    let mut info = DeviceInfo::default();
    for line in lines {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| UapiError::protocol(format!("`{line}` is not key=value")))?;
        let bad = |e: &dyn std::fmt::Display| UapiError::invalid(format!("{key}: {e}"));
        if key == "public_key" {
            info.peers.push(PeerInfo {
                public_key: Key::from_hex(value).map_err(|e| bad(&e))?,
                preshared_key: None,
                endpoint: None,
                last_handshake: (0, 0),
                rx_bytes: 0,
                tx_bytes: 0,
                persistent_keepalive: 0,
                allowed_ips: Vec::new(),
            });
            continue;
        }
        let Some(peer) = info.peers.last_mut() else {
            match key {
                "private_key" => info.private_key = key_or_zero(value).map_err(|e| bad(&e))?,
                "listen_port" => info.listen_port = value.parse().map_err(|e| bad(&e))?,
                "fwmark" => info.fwmark = value.parse().map_err(|e| bad(&e))?,
                _ => return Err(UapiError::invalid(format!("unknown device key `{key}`"))),
            }
            continue;
        };
        match key {
            "preshared_key" => peer.preshared_key = key_or_zero(value).map_err(|e| bad(&e))?,
            "protocol_version" => {}
            "endpoint" => peer.endpoint = Some(value.parse().map_err(|e| bad(&e))?),
            "last_handshake_time_sec" => {
                peer.last_handshake.0 = value.parse().map_err(|e| bad(&e))?
            }
            "last_handshake_time_nsec" => {
                peer.last_handshake.1 = value.parse().map_err(|e| bad(&e))?
            }
            "tx_bytes" => peer.tx_bytes = value.parse().map_err(|e| bad(&e))?,
            "rx_bytes" => peer.rx_bytes = value.parse().map_err(|e| bad(&e))?,
            "persistent_keepalive_interval" => {
                peer.persistent_keepalive = value.parse().map_err(|e| bad(&e))?;
            }
            "allowed_ip" => peer.allowed_ips.push(value.parse().map_err(|e| bad(&e))?),
            _ => return Err(UapiError::invalid(format!("unknown peer key `{key}`"))),
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::{cidr, endpoint, key};
    use proptest::prelude::*;

    const K1: &str = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";
    const K2: &str = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33";

    fn lines(text: &str) -> impl Iterator<Item = &str> {
        text.lines()
    }

    #[test]
    fn what_wg_setconf_sends_is_understood() {
        let text = format!(
            "private_key={K1}\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n\
             public_key={K2}\npreshared_key={}\nendpoint=[fd00::2]:51820\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n\
             allowed_ip=fd00::2/128\nprotocol_version=1\n",
            "0".repeat(64)
        );
        let req = parse_set(lines(&text)).unwrap();
        assert_eq!(req.private_key, Some(Some(Key::from_hex(K1).unwrap())));
        assert_eq!(req.listen_port, Some(51820));
        assert_eq!(req.fwmark, Some(0));
        assert!(req.replace_peers);
        let p = &req.peers[0];
        assert_eq!(p.preshared_key, Some(None));
        assert_eq!(p.endpoint, Some("[fd00::2]:51820".parse().unwrap()));
        assert_eq!(p.persistent_keepalive, Some(25));
        assert!(p.replace_allowed_ips);
        assert_eq!(p.allowed_ips.len(), 2);
    }

    #[test]
    fn errors_carry_wireguard_gos_errno() {
        let cases: &[(&str, i32)] = &[
            ("private_key=xyz", -libc::EINVAL),
            ("listen_port=65536", -libc::EINVAL),
            ("nonsense=1", -libc::EINVAL),
            ("no equals sign", -libc::EPROTO),
            ("replace_peers=false", -libc::EINVAL),
            (&format!("public_key={K1}\nwat=1"), -libc::EINVAL),
            (
                &format!("public_key={K1}\nallowed_ip=10.0.0.0/33"),
                -libc::EINVAL,
            ),
            (
                &format!("public_key={K1}\nendpoint=example.com:1"),
                -libc::EINVAL,
            ),
            (
                &format!("public_key={K1}\nprotocol_version=2"),
                -libc::EINVAL,
            ),
            (&format!("public_key={K1}\nremove=yes"), -libc::EINVAL),
            ("public_key=00", -libc::EINVAL),
        ];
        for (text, errno) in cases {
            assert_eq!(
                parse_set(lines(text)).map_err(|e| e.errno),
                Err(*errno),
                "{text}"
            );
        }
    }

    #[test]
    fn replace_allowed_ips_drops_the_lines_before_it() {
        let text = format!(
            "public_key={K1}\nallowed_ip=10.0.0.1/32\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n"
        );
        let req = parse_set(lines(&text)).unwrap();
        assert_eq!(
            req.peers[0].allowed_ips,
            vec!["10.0.0.2/32".parse().unwrap()]
        );
    }

    fn nonzero_key() -> impl Strategy<Value = Key> {
        key().prop_filter("the zero key means none", |k| !k.is_zero())
    }

    fn peer_update() -> impl Strategy<Value = PeerUpdate> {
        (
            nonzero_key(),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            proptest::option::of(proptest::option::of(nonzero_key())),
            proptest::option::of(endpoint()),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(cidr(), 0..4),
        )
            .prop_map(
                |(public_key, (remove, update_only, replace), psk, endpoint, ka, ips)| PeerUpdate {
                    public_key,
                    remove,
                    update_only,
                    preshared_key: psk,
                    endpoint,
                    persistent_keepalive: ka,
                    replace_allowed_ips: replace,
                    allowed_ips: ips,
                },
            )
    }

    fn set_request() -> impl Strategy<Value = SetRequest> {
        (
            proptest::option::of(proptest::option::of(nonzero_key())),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::collection::vec(peer_update(), 0..4),
        )
            .prop_map(|(private_key, listen_port, fwmark, replace_peers, peers)| {
                SetRequest {
                    private_key,
                    listen_port,
                    fwmark,
                    replace_peers,
                    peers,
                }
            })
    }

    fn peer_info() -> impl Strategy<Value = PeerInfo> {
        (
            nonzero_key(),
            proptest::option::of(nonzero_key()),
            proptest::option::of(endpoint()),
            (any::<u64>(), 0u32..1_000_000_000),
            (any::<u64>(), any::<u64>(), any::<u16>()),
            proptest::collection::vec(cidr(), 0..4),
        )
            .prop_map(
                |(public_key, preshared_key, endpoint, last_handshake, (rx, tx, ka), ips)| {
                    PeerInfo {
                        public_key,
                        preshared_key,
                        endpoint,
                        last_handshake,
                        rx_bytes: rx,
                        tx_bytes: tx,
                        persistent_keepalive: ka,
                        allowed_ips: ips,
                    }
                },
            )
    }

    fn device_info() -> impl Strategy<Value = DeviceInfo> {
        (
            proptest::option::of(nonzero_key()),
            any::<u16>(),
            any::<u32>(),
            proptest::collection::vec(peer_info(), 0..4),
        )
            .prop_map(|(private_key, listen_port, fwmark, peers)| DeviceInfo {
                private_key,
                listen_port,
                fwmark,
                peers,
            })
    }

    proptest! {
        #[test]
        fn a_written_set_parses_back_the_same(req in set_request()) {
            prop_assert_eq!(parse_set(write_set(&req).lines()), Ok(req));
        }

        #[test]
        fn a_written_get_parses_back_the_same(info in device_info()) {
            prop_assert_eq!(parse_get(write_get(&info).lines()), Ok(info));
        }

        #[test]
        fn any_line_is_an_answer_never_a_panic(text in "([a-z_]{0,30}(=[ -~]{0,70})?\n){0,10}") {
            let _ = parse_set(text.lines());
            let _ = parse_get(text.lines());
        }
    }
}
