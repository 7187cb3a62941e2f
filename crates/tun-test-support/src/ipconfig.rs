//! What `ip -j addr` and `ip -j route` say about a device: the reference the configuration tests check the
//! library against.

use std::net::IpAddr;

use crate::NetNs;

/// One address of a device as `ip -j addr show dev NAME` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddress {
    /// `local`: the device's own address.
    pub addr: IpAddr,
    /// `prefixlen`.
    pub prefix_len: u8,
    /// `address`, present when the address has a point-to-point peer.
    pub peer: Option<IpAddr>,
    /// `tentative`: duplicate address detection has not finished; nothing can bind to it yet.
    pub tentative: bool,
}

/// One route as `ip -j route show dev NAME` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRoute {
    /// `dst` (`default` is the unspecified address).
    pub dest: IpAddr,
    /// The prefix length of `dst` (32 or 128 when it has none).
    pub prefix_len: u8,
    /// `metric`, when shown.
    pub metric: Option<u32>,
}

impl NetNs {
    /// The addresses of `dev`, IPv4 and IPv6, from `ip -j addr show dev DEV`.
    pub fn addresses(&self, dev: &str) -> Vec<IpAddress> {
        let out = self.ip(&["-j", "addr", "show", "dev", dev]);
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j addr: {e}: {out}"));
        let infos = value
            .pointer("/0/addr_info")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        infos
            .iter()
            .map(|info| {
                let ip = |key: &str| {
                    info.get(key)
                        .and_then(serde_json::Value::as_str)
                        .map(|s| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{s}: {e}")))
                };
                IpAddress {
                    addr: ip("local").unwrap_or_else(|| panic!("no local in {info}")),
                    prefix_len: info
                        .get("prefixlen")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|p| u8::try_from(p).ok())
                        .unwrap_or_else(|| panic!("no prefixlen in {info}")),
                    peer: ip("address"),
                    tentative: info.get("tentative").is_some(),
                }
            })
            .collect()
    }

    /// The routes of the main table through `dev`, IPv4 then IPv6, from `ip -j [-6] route show dev DEV`.
    pub fn routes(&self, dev: &str) -> Vec<IpRoute> {
        ["-4", "-6"]
            .into_iter()
            .flat_map(|family| {
                let out = self.ip(&["-j", family, "route", "show", "dev", dev]);
                let value: serde_json::Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("ip -j route: {e}: {out}"));
                let routes = value.as_array().cloned().unwrap_or_default();
                routes
                    .iter()
                    .map(|route| parse_route(route, family == "-6"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn parse_route(route: &serde_json::Value, v6: bool) -> IpRoute {
    let dst = route
        .get("dst")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("no dst in {route}"));
    let (dest, prefix_len) = if dst == "default" {
        let unspecified: IpAddr = if v6 {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        (unspecified, 0)
    } else {
        let (addr, len) = dst.split_once('/').unwrap_or((dst, ""));
        let addr: IpAddr = addr.parse().unwrap_or_else(|e| panic!("{dst}: {e}"));
        let full = if addr.is_ipv4() { 32 } else { 128 };
        (addr, len.parse().unwrap_or(full))
    };
    IpRoute {
        dest,
        prefix_len,
        metric: route
            .get("metric")
            .and_then(serde_json::Value::as_u64)
            .and_then(|m| u32::try_from(m).ok()),
    }
}
