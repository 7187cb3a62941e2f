//! IP prefixes (`10.0.0.0/24`, `fd00::/64`): allowed IPs and routes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP prefix with its host bits cleared, as WireGuard stores allowed IPs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Cidr {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CidrError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("`{0}` is not an IP address")]
    Address(String),
    /// The length is not a number or longer than the address.
    #[error("`{0}` is not a prefix length for this address (0-32 for IPv4, 0-128 for IPv6)")]
    Length(String),
    /// No `/LEN`.
    #[error("`{0}` has no prefix length (ADDRESS/LEN)")]
    NoLength(String),
}

/// The bits of an address family.
pub(crate) fn family_bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `addr` as a number: IPv4 addresses in the low 32 bits.
pub(crate) fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The mask of a `len`-bit prefix in a `bits`-bit family, as a number like [`addr_bits`].
pub(crate) fn mask(bits: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let all = if bits == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        all & (all << (bits - len))
    }
}

impl Cidr {
    /// `addr/len` with the host bits of `addr` cleared; `None` when `len` is longer than the address.
    pub(crate) fn new(addr: IpAddr, len: u8) -> Option<Cidr> {
        let bits = family_bits(addr);
        if len > bits {
            return None;
        }
        let masked = addr_bits(addr) & mask(bits, len);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(masked as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(masked)),
        };
        Some(Cidr { addr, len })
    }

    /// The network address (host bits cleared).
    pub(crate) fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub(crate) fn len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies inside the prefix: the naive scan the routing table is tested against.
    #[cfg(test)]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && addr_bits(ip) & mask(family_bits(ip), self.len) == addr_bits(self.addr)
    }
}

/// Reads `ADDRESS/LEN` without clearing host bits: interface addresses keep them (`10.0.0.1/24`).
pub(crate) fn parse_prefix(text: &str) -> Result<(IpAddr, u8), CidrError> {
    let text = text.trim();
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| CidrError::NoLength(text.to_owned()))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| CidrError::Address(addr.to_owned()))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|&l| l <= family_bits(addr) && !len.starts_with('+'))
        .ok_or_else(|| CidrError::Length(len.to_owned()))?;
    Ok((addr, len))
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDRESS/LEN`; host bits are cleared, as wireguard-go does.
    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let (addr, len) = parse_prefix(text)?;
        Ok(Cidr::new(addr, len).expect("parse_prefix checked the length"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared() {
        let c: Cidr = "10.1.2.3/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.1.0.0/16");
        let c: Cidr = "fd00::1:2/112".parse().unwrap();
        assert_eq!(c.to_string(), "fd00::1:0/112");
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
    }

    #[test]
    fn contains_checks_family_and_prefix() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.255.1".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("::a01:1".parse().unwrap()));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains("fd00::1".parse().unwrap()));
        assert!(!all.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn malformed_prefixes_are_errors() {
        assert!(matches!(
            "10.0.0.0".parse::<Cidr>(),
            Err(CidrError::NoLength(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Length(_))
        ));
        assert!(matches!(
            "10.0.0.0/+3".parse::<Cidr>(),
            Err(CidrError::Length(_))
        ));
        assert!(matches!(
            "fd00::/129".parse::<Cidr>(),
            Err(CidrError::Length(_))
        ));
        assert!(matches!("x/3".parse::<Cidr>(), Err(CidrError::Address(_))));
    }
}
