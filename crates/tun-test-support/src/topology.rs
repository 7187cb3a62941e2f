//! The two-namespace tunnel every data-path test and benchmark builds: namespace A with `tunA`, namespace B
//! with `tunB`, and a forwarder between them.
//!
//! ```text
//!   namespace A                                             namespace B
//!   10.77.0.1, fd77::1 --> tunA --> [ forwarder ] --> tunB --> 10.77.0.2, fd77::2
//! ```
//!
//! The addresses exist only inside namespaces made for a test or a run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Device name in namespace A.
pub const DEV_A: &str = "tunA";
/// Device name in namespace B.
pub const DEV_B: &str = "tunB";
/// A's IPv4 address.
pub const A4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// B's IPv4 address.
pub const B4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// A's IPv6 address.
pub const A6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
/// B's IPv6 address.
pub const B6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

/// A's address of the given IP version.
pub fn a_addr(v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(A6) } else { IpAddr::V4(A4) }
}

/// B's address of the given IP version.
pub fn b_addr(v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(B6) } else { IpAddr::V4(B4) }
}
