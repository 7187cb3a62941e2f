//! The `--config FILE` format: wg-quick's `[Interface]` and `[Peer]` sections, keys in base64.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::cidr::{Cidr, parse_prefix};
use crate::key::Key;

/// The MTU when the file names none (wg-quick's usual 1420: 1500 less the WireGuard overhead over IPv6).
pub(crate) const DEFAULT_MTU: u32 = 1420;

/// What a configuration file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FileConfig {
    /// `[Interface] PrivateKey`.
    pub(crate) private_key: Option<Key>,
    /// `[Interface] ListenPort`.
    pub(crate) listen_port: Option<u16>,
    /// `[Interface] Address`, host bits kept.
    pub(crate) addresses: Vec<(IpAddr, u8)>,
    /// `[Interface] MTU`.
    pub(crate) mtu: Option<u32>,
    /// The `[Peer]` sections in order.
    pub(crate) peers: Vec<FilePeer>,
}

/// One `[Peer]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePeer {
    /// `PublicKey` (required).
    pub(crate) public_key: Key,
    /// `PresharedKey`.
    pub(crate) preshared_key: Option<Key>,
    /// `Endpoint`: `ip:port` or `[v6]:port`.
    pub(crate) endpoint: Option<SocketAddr>,
    /// `AllowedIPs`, host bits cleared.
    pub(crate) allowed_ips: Vec<Cidr>,
    /// `PersistentKeepalive` in seconds (`off` is none).
    pub(crate) persistent_keepalive: Option<u16>,
}

/// A configuration file that cannot be used: where and why.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// A line is wrong.
    #[error("{}:{line}: {what}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
}

/// Reads and parses `path`.
pub(crate) fn load(path: &Path) -> Result<FileConfig, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|(line, what)| ConfError::Line {
        path: path.to_owned(),
        line,
        what,
    })
}

/// A `[Peer]` being read, before its public key is known to be there.
#[derive(Default)]
struct PeerDraft {
    line: usize,
    public_key: Option<Key>,
    preshared_key: Option<Key>,
    endpoint: Option<SocketAddr>,
    allowed_ips: Vec<Cidr>,
    persistent_keepalive: Option<u16>,
}

impl PeerDraft {
    fn finish(self) -> Result<FilePeer, (usize, String)> {
        let public_key = self
            .public_key
            .ok_or_else(|| (self.line, "this [Peer] section has no PublicKey".to_owned()))?;
        Ok(FilePeer {
            public_key,
            preshared_key: self.preshared_key,
            endpoint: self.endpoint,
            allowed_ips: self.allowed_ips,
            persistent_keepalive: self.persistent_keepalive,
        })
    }
}

enum Section {
    None,
    Interface,
    Peer(PeerDraft),
}

/// Parses a file's text; an error is `(line, what)`.
pub(crate) fn parse(text: &str) -> Result<FileConfig, (usize, String)> {
    let mut config = FileConfig::default();
    let mut section = Section::None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            if let Section::Peer(peer) = std::mem::replace(&mut section, Section::None) {
                config.peers.push(peer.finish()?);
            }
            section = match line.to_ascii_lowercase().as_str() {
                "[interface]" => Section::Interface,
                "[peer]" => Section::Peer(PeerDraft {
                    line: n,
                    ..PeerDraft::default()
                }),
                _ => {
                    return Err((
                        n,
                        format!("unknown section `{line}` ([Interface] or [Peer])"),
                    ));
                }
            };
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| (n, format!("`{line}` is not `Key = Value`")))?;
        let (key, value) = (key.trim(), value.trim());
        let bad = |e: &dyn std::fmt::Display| (n, format!("{key}: {e}"));
        match &mut section {
            Section::None => return Err((n, format!("`{key}` outside [Interface] or [Peer]"))),
            Section::Interface => match key.to_ascii_lowercase().as_str() {
                "privatekey" => {
                    config.private_key = Some(Key::from_base64(value).map_err(|e| bad(&e))?);
                }
                "listenport" => {
                    config.listen_port = Some(value.parse().map_err(|e| bad(&e))?);
                }
                "address" => {
                    for item in list(value) {
                        config
                            .addresses
                            .push(parse_prefix(item).map_err(|e| bad(&e))?);
                    }
                }
                "mtu" => {
                    let mtu: u32 = value.parse().map_err(|e| bad(&e))?;
                    if !(576..=65535).contains(&mtu) {
                        return Err(bad(&"an MTU is 576 to 65535"));
                    }
                    config.mtu = Some(mtu);
                }
                _ => return Err((n, format!("unknown key `{key}` in [Interface]"))),
            },
            Section::Peer(peer) => match key.to_ascii_lowercase().as_str() {
                "publickey" => {
                    peer.public_key = Some(Key::from_base64(value).map_err(|e| bad(&e))?)
                }
                "presharedkey" => {
                    peer.preshared_key = Some(Key::from_base64(value).map_err(|e| bad(&e))?);
                }
                "endpoint" => {
                    let endpoint: SocketAddr = value.parse().map_err(|_| {
                        bad(&format!("`{value}` is not ADDRESS:PORT or [IPv6]:PORT"))
                    })?;
                    peer.endpoint = Some(endpoint);
                }
                "allowedips" => {
                    for item in list(value) {
                        let cidr = if item.contains('/') {
                            item.parse().map_err(|e| bad(&e))?
                        } else {
                            // A bare address is the host alone, as `wg` reads it.
                            let addr: IpAddr = item
                                .parse()
                                .map_err(|_| bad(&format!("`{item}` is not an IP address")))?;
                            Cidr::new(addr, crate::cidr::family_bits(addr))
                                .expect("a full-length prefix is valid")
                        };
                        peer.allowed_ips.push(cidr);
                    }
                }
                "persistentkeepalive" => {
                    peer.persistent_keepalive = if value.eq_ignore_ascii_case("off") {
                        None
                    } else {
                        Some(value.parse().map_err(|e| bad(&e))?).filter(|&s| s != 0)
                    };
                }
                _ => return Err((n, format!("unknown key `{key}` in [Peer]"))),
            },
        }
    }
    if let Section::Peer(peer) = section {
        config.peers.push(peer.finish()?);
    }
    Ok(config)
}

/// The items of a comma-separated list, empty ones left out.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::{cidr, endpoint, key};
    use proptest::prelude::*;

    const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PUB: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    #[test]
    fn a_wg_quick_file_is_read() {
        let text = format!(
            "# a comment\n[Interface]\nPrivateKey = {PRIV}\nListenPort = 51820\n\
             Address = 10.0.0.1/24, fd00::1/64\nAddress = 10.9.0.1/32\nMTU = 1380\n\n\
             [Peer]\nPublicKey = {PUB}\nPresharedKey = {PRIV}\nEndpoint = [fd00:1::2]:51820\n\
             AllowedIPs = 10.0.0.2/32, fd00::2/128 # inline\nAllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n\
             [peer]\npublickey={PRIV}\nendpoint=192.0.2.1:1\nallowedips=10.7.0.9\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.private_key, Some(Key::from_base64(PRIV).unwrap()));
        assert_eq!(c.listen_port, Some(51820));
        assert_eq!(c.mtu, Some(1380));
        assert_eq!(
            c.addresses,
            vec![
                ("10.0.0.1".parse().unwrap(), 24),
                ("fd00::1".parse().unwrap(), 64),
                ("10.9.0.1".parse().unwrap(), 32)
            ]
        );
        assert_eq!(c.peers.len(), 2);
        let p = &c.peers[0];
        assert_eq!(p.public_key, Key::from_base64(PUB).unwrap());
        assert_eq!(p.endpoint, Some("[fd00:1::2]:51820".parse().unwrap()));
        assert_eq!(p.persistent_keepalive, Some(25));
        let allowed: Vec<String> = p.allowed_ips.iter().map(ToString::to_string).collect();
        assert_eq!(allowed, ["10.0.0.2/32", "fd00::2/128", "0.0.0.0/0"]);
        assert_eq!(c.peers[1].allowed_ips[0].to_string(), "10.7.0.9/32");
        assert_eq!(c.peers[1].persistent_keepalive, None);
    }

    #[test]
    fn an_unknown_key_names_its_line_and_key() {
        let err = parse("[Interface]\nPrivateKey = x\n").unwrap_err();
        assert_eq!(err.0, 2);
        let err = parse(&format!(
            "[Interface]\nPrivateKey = {PRIV}\n\nDNS = 1.1.1.1\n"
        ))
        .unwrap_err();
        assert_eq!(err, (4, "unknown key `DNS` in [Interface]".to_owned()));
        let err = parse(&format!("[Peer]\nPublicKey = {PUB}\nPostUp = true\n")).unwrap_err();
        assert_eq!(err, (3, "unknown key `PostUp` in [Peer]".to_owned()));
    }

    #[test]
    fn the_error_of_a_file_names_the_file() {
        let dir = std::env::temp_dir().join(format!("tun-wg-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wg0.conf");
        std::fs::write(&path, "[Interface]\nTable = off\n").unwrap();
        let msg = load(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(msg.starts_with(&format!("{}:2: ", path.display())), "{msg}");
        assert!(msg.contains("`Table`"), "{msg}");
    }

    #[test]
    fn malformed_lines_are_errors() {
        for (text, line) in [
            ("PrivateKey = x\n", 1),
            ("[Interface]\nListenPort = 70000\n", 2),
            ("[Interface]\nAddress = 10.0.0.1\n", 2),
            ("[Interface]\nMTU = 100\n", 2),
            ("[Interface]\njust words\n", 2),
            ("[Wat]\n", 1),
            ("[Peer]\nEndpoint = 1.2.3.4:1\n", 1),
            (
                "[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nEndpoint = host:1\n",
                3,
            ),
            (
                "[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 10.0.0.0/40\n",
                3,
            ),
        ] {
            assert_eq!(parse(text).map_err(|e| e.0), Err(line), "{text}");
        }
    }

    fn peer() -> impl Strategy<Value = FilePeer> {
        (
            key(),
            proptest::option::of(key()),
            proptest::option::of(endpoint()),
            proptest::collection::vec(cidr(), 0..4),
            proptest::option::of(1u16..),
        )
            .prop_map(
                |(public_key, preshared_key, endpoint, allowed_ips, persistent_keepalive)| {
                    FilePeer {
                        public_key,
                        preshared_key,
                        endpoint,
                        allowed_ips,
                        persistent_keepalive,
                    }
                },
            )
    }

    fn config() -> impl Strategy<Value = FileConfig> {
        (
            proptest::option::of(key()),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(cidr().prop_map(|c| (c.addr(), c.len())), 0..3),
            proptest::option::of(576u32..=65535),
            proptest::collection::vec(peer(), 0..4),
        )
            .prop_map(
                |(private_key, listen_port, addresses, mtu, peers)| FileConfig {
                    private_key,
                    listen_port,
                    addresses,
                    mtu,
                    peers,
                },
            )
    }

    /// Writes a configuration as a file would say it (lists split over lines and joined by commas).
    fn write(c: &FileConfig) -> String {
        let mut s = String::from("[Interface]\n");
        if let Some(k) = c.private_key {
            s += &format!("PrivateKey = {}\n", k.to_base64());
        }
        if let Some(p) = c.listen_port {
            s += &format!("ListenPort={p}\n");
        }
        for (a, l) in &c.addresses {
            s += &format!("Address = {a}/{l}\n");
        }
        if let Some(m) = c.mtu {
            s += &format!("MTU = {m} # bytes\n");
        }
        for p in &c.peers {
            s += &format!("\n[Peer]\nPublicKey = {}\n", p.public_key.to_base64());
            if let Some(k) = p.preshared_key {
                s += &format!("PresharedKey = {}\n", k.to_base64());
            }
            if let Some(e) = p.endpoint {
                s += &format!("Endpoint = {e}\n");
            }
            let ips: Vec<String> = p.allowed_ips.iter().map(ToString::to_string).collect();
            s += &format!("AllowedIPs = {}\n", ips.join(", "));
            if let Some(k) = p.persistent_keepalive {
                s += &format!("PersistentKeepalive = {k}\n");
            }
        }
        s
    }

    proptest! {
        #[test]
        fn a_written_configuration_reads_back_the_same(c in config()) {
            prop_assert_eq!(parse(&write(&c)), Ok(c));
        }

        #[test]
        fn any_text_is_an_answer_never_a_panic(text in "(\\[Peer\\]|\\[Interface\\]|[A-Za-z]{1,12} ?= ?[ -~]{0,50}|[ -~]{0,20})(\n(\\[Peer\\]|\\[Interface\\]|[A-Za-z]{1,12} ?= ?[ -~]{0,50}|[ -~]{0,20})){0,8}") {
            let _ = parse(&text);
        }
    }
}
