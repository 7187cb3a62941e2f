//! Cryptokey routing: the longest prefix over every peer's allowed IPs that holds an address.
//!
//! The table is built when the configuration changes and only read on the data path. Each family keeps one
//! sorted list of masked prefixes per prefix length, longest first; a lookup tries each length present with
//! a binary search. Configurations have few distinct lengths (typically a /32 or /128 per peer and a few
//! subnets), so a lookup is a handful of comparisons, allocates nothing and hashes nothing.

use std::net::IpAddr;

use crate::cidr::{Cidr, addr_bits, family_bits, mask};

/// Prefixes of one length: `(masked address, value)` sorted by address.
#[derive(Debug, Clone)]
struct Level<T> {
    len: u8,
    entries: Vec<(u128, T)>,
}

/// The table of one address family, lengths in decreasing order.
#[derive(Debug, Clone)]
struct Family<T> {
    bits: u8,
    levels: Vec<Level<T>>,
}

impl<T> Family<T> {
    fn new(bits: u8) -> Self {
        Self {
            bits,
            levels: Vec::new(),
        }
    }

    /// Adds a prefix to its level, unsorted: [`sort`](Self::sort) orders the levels once every prefix is in.
    fn push(&mut self, key: u128, len: u8, value: T) {
        let at = match self.levels.binary_search_by(|l| len.cmp(&l.len)) {
            Ok(at) => at,
            Err(at) => {
                self.levels.insert(
                    at,
                    Level {
                        len,
                        entries: Vec::new(),
                    },
                );
                at
            }
        };
        self.levels[at].entries.push((key, value));
    }

    /// Sorts each level by address and keeps the last value given to a prefix. One sort of the whole table:
    /// inserting each prefix in its place would move half a level per prefix, quadratic in a large
    /// configuration.
    fn sort(&mut self) {
        for level in &mut self.levels {
            // Stable: of equal prefixes the one given last comes last, and its value moves into the one kept.
            level.entries.sort_by_key(|&(k, _)| k);
            level.entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                same
            });
        }
    }

    fn lookup(&self, addr: u128) -> Option<&T> {
        self.levels.iter().find_map(|level| {
            let key = addr & mask(self.bits, level.len);
            level
                .entries
                .binary_search_by(|(k, _)| k.cmp(&key))
                .ok()
                .map(|i| &level.entries[i].1)
        })
    }
}

/// Allowed IPs of all peers: which value (a peer) owns the longest prefix holding an address.
#[derive(Debug, Clone)]
pub(crate) struct AllowedIps<T> {
    v4: Family<T>,
    v6: Family<T>,
}

impl<T> Default for AllowedIps<T> {
    fn default() -> Self {
        Self {
            v4: Family::new(32),
            v6: Family::new(128),
        }
    }
}

/// The table of `(prefix, value)` pairs; a prefix given twice belongs to the later value.
impl<T> FromIterator<(Cidr, T)> for AllowedIps<T> {
    fn from_iter<I: IntoIterator<Item = (Cidr, T)>>(entries: I) -> Self {
        let mut table = Self::default();
        for (cidr, value) in entries {
            let key = addr_bits(cidr.addr());
            table.family_mut(cidr.addr()).push(key, cidr.len(), value);
        }
        table.v4.sort();
        table.v6.sort();
        table
    }
}

impl<T> AllowedIps<T> {
    /// The value of the longest prefix that holds `ip`.
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<&T> {
        self.family(ip).lookup(addr_bits(ip))
    }

    fn family(&self, ip: IpAddr) -> &Family<T> {
        if family_bits(ip) == 32 {
            &self.v4
        } else {
            &self.v6
        }
    }

    fn family_mut(&mut self, ip: IpAddr) -> &mut Family<T> {
        if family_bits(ip) == 32 {
            &mut self.v4
        } else {
            &mut self.v6
        }
    }
}

/// The source (`source == true`) or destination address of an IP packet; `None` for anything too short or
/// of another version.
pub(crate) fn packet_addr(packet: &[u8], source: bool) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let at = if source { 12 } else { 16 };
            let bytes: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
            (packet.len() >= 20).then(|| IpAddr::from(bytes))
        }
        6 => {
            let at = if source { 8 } else { 24 };
            let bytes: [u8; 16] = packet.get(at..at + 16)?.try_into().ok()?;
            (packet.len() >= 40).then(|| IpAddr::from(bytes))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn the_longest_prefix_wins() {
        let t: AllowedIps<char> = [
            (cidr("0.0.0.0/0"), 'a'),
            (cidr("10.0.0.0/8"), 'b'),
            (cidr("10.1.0.0/16"), 'c'),
            (cidr("::/0"), 'd'),
            (cidr("fd00::/64"), 'e'),
        ]
        .into_iter()
        .collect();
        let at = |s: &str| t.lookup(s.parse().unwrap()).copied();
        assert_eq!(at("10.1.2.3"), Some('c'));
        assert_eq!(at("10.2.0.1"), Some('b'));
        assert_eq!(at("192.168.0.1"), Some('a'));
        assert_eq!(at("fd00::5"), Some('e'));
        assert_eq!(at("fd01::5"), Some('d'));
    }

    #[test]
    fn a_prefix_given_again_changes_hands() {
        let t: AllowedIps<i32> = [
            (cidr("10.0.0.0/24"), 1),
            (cidr("10.0.0.0/24"), 3),
            (cidr("10.0.0.0/24"), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(t.lookup("10.0.0.9".parse().unwrap()), Some(&2));
        assert_eq!(t.lookup("10.0.1.9".parse().unwrap()), None);
    }

    #[test]
    fn a_large_table_builds_in_a_sort_not_a_square() {
        // wg setconf of a big route list: 200 000 prefixes of one length, in descending order (the worst case
        // for building a sorted level one insertion at a time: each moves the whole level). One sort takes a
        // fraction of a second even unoptimised; insertion in place took tens of seconds.
        let n = 200_000u32;
        let started = std::time::Instant::now();
        let t: AllowedIps<u32> = (0..n)
            .rev()
            .map(|i| {
                (
                    Cidr::new(IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i)), 32).unwrap(),
                    i,
                )
            })
            .collect();
        let took = started.elapsed();
        assert_eq!(t.lookup(IpAddr::from([10, 0, 0, 7])), Some(&7));
        assert!(
            took < std::time::Duration::from_secs(5),
            "building {n} prefixes took {took:?}"
        );
    }

    #[test]
    fn families_do_not_mix() {
        let t: AllowedIps<i32> = [(cidr("0.0.0.0/0"), 1)].into_iter().collect();
        assert_eq!(t.lookup("::1".parse().unwrap()), None);
        // An IPv4-mapped IPv6 address is IPv6 here, as in WireGuard.
        assert_eq!(t.lookup("::ffff:10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn packet_addresses_are_read_from_the_header() {
        use std::net::{SocketAddrV4, SocketAddrV6};
        use tun_test_support::packets::{udp4_packet, udp6_packet};
        let v4 = udp4_packet(
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1000),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 2000),
            b"",
        );
        assert_eq!(
            packet_addr(&v4, true),
            Some(Ipv4Addr::new(10, 0, 0, 1).into())
        );
        assert_eq!(
            packet_addr(&v4, false),
            Some(Ipv4Addr::new(10, 0, 0, 2).into())
        );
        assert_eq!(packet_addr(&v4[..19], false), None);
        let v6 = udp6_packet(
            SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1000, 0, 0),
            SocketAddrV6::new("::2".parse().unwrap(), 2000, 0, 0),
            b"",
        );
        assert_eq!(packet_addr(&v6, true), Some(Ipv6Addr::LOCALHOST.into()));
        assert_eq!(
            packet_addr(&v6, false),
            Some("::2".parse::<IpAddr>().unwrap())
        );
        assert_eq!(packet_addr(&v6[..39], true), None);
        assert_eq!(packet_addr(&[], true), None);
        assert_eq!(packet_addr(&[0x10; 40], true), None);
    }

    /// Addresses drawn from a small space, so that prefixes overlap and lookups hit them.
    fn small_addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (0u8..4, any::<u8>()).prop_map(|(a, b)| IpAddr::from([10, a, b, 0])),
            (0u16..4, any::<u16>()).prop_map(|(a, b)| IpAddr::from([0xfd00, a, 0, 0, 0, 0, b, 0])),
        ]
    }

    fn prefix() -> impl Strategy<Value = Cidr> {
        (small_addr(), any::<u8>()).prop_map(|(addr, len)| {
            let len = len % (family_bits(addr) + 1);
            Cidr::new(addr, len).unwrap()
        })
    }

    fn probe() -> impl Strategy<Value = IpAddr> {
        (small_addr(), any::<u16>()).prop_map(|(addr, low)| match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) | u32::from(low & 0xff))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) | u128::from(low))),
        })
    }

    proptest! {
        #[test]
        fn lookup_agrees_with_a_scan_of_every_prefix(
            entries in proptest::collection::vec((prefix(), 0u8..8), 0..40),
            probes in proptest::collection::vec(probe(), 1..40),
        ) {
            let table: AllowedIps<u8> = entries.iter().copied().collect();
            for ip in probes {
                // The naive answer: the longest prefix holding `ip`; of equal prefixes, the last inserted.
                let naive = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, (c, _))| c.contains(ip))
                    .max_by_key(|(i, (c, _))| (c.len(), *i))
                    .map(|(_, (_, v))| *v);
                prop_assert_eq!(table.lookup(ip).copied(), naive, "lookup of {}", ip);
            }
        }
    }
}
