//! Typed flag sets for the TUN ioctls and the interface flags, so callers never pass raw `c_int` bits.

use bitflags::bitflags;

bitflags! {
    /// The flags of TUNSETIFF / TUNGETIFF / TUNGETFEATURES (`IFF_*` from `linux/if_tun.h`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TunFlags: u16 {
        /// A layer-3 TUN device (as opposed to TAP).
        const TUN = libc::IFF_TUN as u16;
        /// A layer-2 TAP device: Ethernet frames instead of IP packets.
        const TAP = libc::IFF_TAP as u16;
        /// No 4-byte packet information header before each packet.
        const NO_PI = libc::IFF_NO_PI as u16;
        /// A `virtio_net_hdr` precedes each packet (needed for offloads).
        const VNET_HDR = libc::IFF_VNET_HDR as u16;
        /// The device may have several queues (one fd each).
        const MULTI_QUEUE = libc::IFF_MULTI_QUEUE as u16;
        /// Read-only: the device is persistent.
        const PERSIST = libc::IFF_PERSIST as u16;
        /// Fail instead of attaching when the named device exists.
        const TUN_EXCL = libc::IFF_TUN_EXCL as u16;
    }

    /// The offloads of TUNSETOFFLOAD (`TUN_F_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Offloads: u32 {
        /// The kernel may hand us packets with partial checksums (NEEDS_CSUM).
        const CSUM = libc::TUN_F_CSUM;
        /// TCP segmentation offload for IPv4.
        const TSO4 = libc::TUN_F_TSO4;
        /// TCP segmentation offload for IPv6.
        const TSO6 = libc::TUN_F_TSO6;
        /// TSO with ECN (CWR) handling.
        const TSO_ECN = libc::TUN_F_TSO_ECN;
        /// UDP segmentation offload for IPv4 (accepted only together with USO6 and CSUM).
        const USO4 = libc::TUN_F_USO4;
        /// UDP segmentation offload for IPv6 (accepted only together with USO4 and CSUM).
        const USO6 = libc::TUN_F_USO6;
    }

    /// Interface flags (`IFF_*` from `linux/if.h`): `ifi_flags` / `ifi_change` of rtnetlink link messages,
    /// and the low 16 bits of them that SIOCGIFFLAGS / SIOCSIFFLAGS carry in `ifr_flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct IfFlags: u32 {
        /// Administratively up.
        const UP = libc::IFF_UP as u32;
        /// Operationally up (for TUN: a queue is attached).
        const RUNNING = libc::IFF_RUNNING as u32;
        /// Point-to-point link.
        const POINTOPOINT = libc::IFF_POINTOPOINT as u32;
        /// No ARP.
        const NOARP = libc::IFF_NOARP as u32;
        /// Supports multicast.
        const MULTICAST = libc::IFF_MULTICAST as u32;
        /// The driver signals the carrier (rtnetlink only: beyond `ifr_flags`).
        const LOWER_UP = libc::IFF_LOWER_UP as u32;
    }
}

impl Offloads {
    /// `self` without the offloads of `other` (the same as [`difference`](Self::difference)).
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        self.difference(other)
    }
}
