//! Proptest strategies for the values the configuration file and the configuration protocol both carry.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use crate::cidr::Cidr;
use crate::key::Key;

/// Any 32-byte key.
pub(crate) fn key() -> impl Strategy<Value = Key> {
    any::<[u8; 32]>().prop_map(Key)
}

/// Any IPv4 or IPv6 prefix.
pub(crate) fn cidr() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, l)| Cidr::new(IpAddr::from(a), l).unwrap()),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, l)| Cidr::new(IpAddr::from(a), l).unwrap()),
    ]
}

/// Any IPv4 or IPv6 endpoint.
pub(crate) fn endpoint() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::from(a), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::from(a), p)),
    ]
}
