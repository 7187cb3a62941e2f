//! Typed flag sets for the TUN ioctls, so callers never pass raw `c_int` bits.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

macro_rules! flag_set {
    ($(#[$meta:meta])* $name:ident($repr:ty) { $($(#[$fmeta:meta])* $flag:ident = $value:expr;)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name($repr);

        impl $name {
            $($(#[$fmeta])* pub const $flag: Self = Self($value as $repr);)*

            /// No flag set.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The raw bits, as the kernel sees them.
            pub const fn bits(self) -> $repr {
                self.0
            }

            /// Flags from raw kernel bits, unknown bits kept.
            pub const fn from_bits_retain(bits: $repr) -> Self {
                Self(bits)
            }

            /// True when every flag of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// `self` without the flags of `other`.
            pub const fn without(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }

            /// True when no flag is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                Self(self.0 & rhs.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut rest = self.0;
                let mut first = true;
                write!(f, "{}(", stringify!($name))?;
                $(
                    let bit = $value as $repr;
                    if bit != 0 && rest & bit == bit {
                        if !first { f.write_str(" | ")?; }
                        f.write_str(stringify!($flag))?;
                        first = false;
                        rest &= !bit;
                    }
                )*
                if rest != 0 {
                    if !first { f.write_str(" | ")?; }
                    write!(f, "{rest:#x}")?;
                }
                f.write_str(")")
            }
        }
    };
}

flag_set! {
    /// The flags of TUNSETIFF / TUNGETIFF / TUNGETFEATURES (`IFF_*` from `linux/if_tun.h`).
    TunFlags(u16) {
        /// A layer-3 TUN device (as opposed to TAP).
        TUN = libc::IFF_TUN;
        /// No 4-byte packet information header before each packet.
        NO_PI = libc::IFF_NO_PI;
        /// A `virtio_net_hdr` precedes each packet (needed for offloads).
        VNET_HDR = libc::IFF_VNET_HDR;
        /// The device may have several queues (one fd each).
        MULTI_QUEUE = libc::IFF_MULTI_QUEUE;
        /// Read-only: the device is persistent.
        PERSIST = libc::IFF_PERSIST;
        /// Fail instead of attaching when the named device exists.
        TUN_EXCL = libc::IFF_TUN_EXCL;
    }
}

flag_set! {
    /// The offloads of TUNSETOFFLOAD (`TUN_F_*`).
    Offloads(u32) {
        /// The kernel may hand us packets with partial checksums (NEEDS_CSUM).
        CSUM = libc::TUN_F_CSUM;
        /// TCP segmentation offload for IPv4.
        TSO4 = libc::TUN_F_TSO4;
        /// TCP segmentation offload for IPv6.
        TSO6 = libc::TUN_F_TSO6;
        /// TSO with ECN (CWR) handling.
        TSO_ECN = libc::TUN_F_TSO_ECN;
        /// UDP segmentation offload for IPv4 (accepted only together with USO6 and CSUM).
        USO4 = libc::TUN_F_USO4;
        /// UDP segmentation offload for IPv6 (accepted only together with USO4 and CSUM).
        USO6 = libc::TUN_F_USO6;
    }
}

flag_set! {
    /// Interface flags of SIOCGIFFLAGS / SIOCSIFFLAGS (`IFF_*` from `linux/if.h`).
    IfFlags(u16) {
        /// Administratively up.
        UP = libc::IFF_UP;
        /// Operationally up (carrier, queue attached).
        RUNNING = libc::IFF_RUNNING;
        /// Point-to-point link.
        POINTOPOINT = libc::IFF_POINTOPOINT;
        /// No ARP.
        NOARP = libc::IFF_NOARP;
        /// Supports multicast.
        MULTICAST = libc::IFF_MULTICAST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_match_the_kernel_headers() {
        assert_eq!(TunFlags::TUN.bits(), 0x0001);
        assert_eq!(TunFlags::NO_PI.bits(), 0x1000);
        assert_eq!(TunFlags::VNET_HDR.bits(), 0x4000);
        assert_eq!(TunFlags::MULTI_QUEUE.bits(), 0x0100);
        assert_eq!(
            (Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6).bits(),
            0x07
        );
        assert_eq!((Offloads::USO4 | Offloads::USO6).bits(), 0x60);
        assert_eq!(IfFlags::UP.bits(), 1);
    }

    #[test]
    fn contains_and_without_work_bitwise() {
        let all = Offloads::CSUM | Offloads::TSO4 | Offloads::USO4;
        assert!(all.contains(Offloads::CSUM | Offloads::USO4));
        assert!(!all.contains(Offloads::TSO6));
        assert_eq!(all.without(Offloads::USO4), Offloads::CSUM | Offloads::TSO4);
    }

    #[test]
    fn debug_names_known_flags_and_shows_unknown_bits() {
        let flags = TunFlags::TUN | TunFlags::NO_PI | TunFlags::from_bits_retain(0x0008);
        assert_eq!(format!("{flags:?}"), "TunFlags(TUN | NO_PI | 0x8)");
    }
}
