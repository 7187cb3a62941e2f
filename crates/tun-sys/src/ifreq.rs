//! `struct ifreq` and interface names, as zerocopy types.
//!
//! The kernel's `ifreq` is a 16-byte name followed by a union. We only ever use the union as a `short`
//! (flags) or an `int` (index, MTU), so each use gets its own `repr(C)` struct of exactly
//! `size_of::<libc::ifreq>()` bytes: the kernel copies that many bytes in and out, and every field is read by
//! name instead of by offset.

use std::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `IFNAMSIZ`: bytes of an interface name including the terminating NUL.
pub const IFNAMSIZ: usize = libc::IFNAMSIZ;

/// Bytes of the `ifreq` union that follow the name.
const UNION_LEN: usize = size_of::<libc::ifreq>() - IFNAMSIZ;

/// Why a string is not a valid interface name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The empty string names nothing (to let the kernel choose, pass no name at all).
    #[error("interface name is empty")]
    Empty,
    /// More than 15 bytes: with its NUL it would not fit in `IFNAMSIZ`.
    #[error("interface name is {0} bytes long, at most 15 are allowed")]
    TooLong(usize),
    /// A byte the kernel refuses in interface names (`/`, `:`, NUL or whitespace).
    #[error("interface name contains the forbidden byte {0:#04x}")]
    ForbiddenByte(u8),
    /// `.` and `..` are refused by the kernel.
    #[error("interface name may not be \".\" or \"..\"")]
    Dots,
    /// A template (a name with `%`) must have exactly one `%`, followed by `d` (`tun%d`).
    #[error("interface name template must have one %, followed by d")]
    BadTemplate,
}

/// A valid Linux interface name (or kernel template such as `tun%d`), stored NUL-padded as the kernel
/// wants it.
///
/// The rules are the kernel's own `dev_valid_name`: 1 to 15 bytes, not `.` or `..`, and no `/`, `:`, NUL or
/// byte the kernel counts as white space (ASCII white space, the vertical tab and 0xA0, so also `à`).
///
/// ```
/// use tun_sys::ifreq::IfName;
/// assert_eq!(IfName::new("tun%d")?.as_str(), "tun%d");
/// assert!(IfName::new("a/b").is_err());
/// assert!(IfName::new("sixteen-bytes-xx").is_err());
/// # Ok::<(), tun_sys::ifreq::NameError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct IfName([u8; IFNAMSIZ]);

impl IfName {
    /// Checks `name` against the kernel's rules and encodes it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        Self::from_bytes(name.as_bytes())
    }

    /// Checks a name given as bytes (Linux names need not be UTF-8) against the kernel's rules and encodes it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, NameError> {
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() >= IFNAMSIZ {
            return Err(NameError::TooLong(bytes.len()));
        }
        if bytes == b"." || bytes == b".." {
            return Err(NameError::Dots);
        }
        if let Some(&bad) = bytes
            .iter()
            .find(|&&b| matches!(b, b'/' | b':' | 0) || is_kernel_space(b))
        {
            return Err(NameError::ForbiddenByte(bad));
        }
        // The kernel's dev_alloc_name: one `%`, and it must be `%d`.
        if let Some(at) = bytes.iter().position(|&b| b == b'%') {
            let rest = &bytes[at + 1..];
            if rest.first() != Some(&b'd') || rest.contains(&b'%') {
                return Err(NameError::BadTemplate);
            }
        }
        let mut raw = [0u8; IFNAMSIZ];
        raw[..bytes.len()].copy_from_slice(bytes);
        Ok(Self(raw))
    }

    /// The all-zero name: in TUNSETIFF it asks the kernel to pick one (`tun%d`).
    pub const fn empty() -> Self {
        Self([0; IFNAMSIZ])
    }

    /// The name's bytes up to (not including) the first NUL.
    pub fn bytes(&self) -> &[u8] {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        &self.0[..len]
    }

    /// The name as text; names the kernel returns that are not UTF-8 come out lossily converted.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes()).unwrap_or("<non-utf8>")
    }

    /// The name as an owned string, converting non-UTF-8 bytes lossily.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// True when the name is the kernel template form (contains `%`).
    pub fn is_template(&self) -> bool {
        self.bytes().contains(&b'%')
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.bytes()), f)
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.bytes()))
    }
}

/// The kernel's `isspace`, which `dev_valid_name` refuses: the ASCII white space including the vertical tab
/// (0x0B, which Rust's `is_ascii_whitespace` leaves out) and, from its Latin-1 table, the no-break space
/// 0xA0, which is also the second byte of UTF-8 characters such as `à` (0xC3 0xA0).
fn is_kernel_space(byte: u8) -> bool {
    matches!(byte, 0x09..=0x0D | b' ' | 0xA0)
}

/// `struct ifreq` with the union used as `short ifr_flags` (TUNSETIFF, TUNGETIFF, SIOCGIFFLAGS, SIOCSIFFLAGS).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct IfreqFlags {
    /// The interface name.
    pub(crate) name: IfName,
    /// The flags (interface `IFF_*` flags, or TUN `IFF_*` flags for the TUN ioctls).
    pub(crate) flags: u16,
    _rest: [u8; UNION_LEN - 2],
}

impl IfreqFlags {
    /// An `ifreq` for `name` carrying `flags`.
    pub(crate) fn new(name: IfName, flags: u16) -> Self {
        Self {
            name,
            flags,
            _rest: [0; UNION_LEN - 2],
        }
    }
}

/// `struct ifreq` with the union used as an `int` (`ifr_ifindex`, `ifr_mtu`).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct IfreqInt {
    /// The interface name.
    pub(crate) name: IfName,
    /// The value: an interface index or an MTU.
    pub(crate) value: i32,
    _rest: [u8; UNION_LEN - 4],
}

impl IfreqInt {
    /// An `ifreq` for `name` carrying `value`.
    pub(crate) fn new(name: IfName, value: i32) -> Self {
        Self {
            name,
            value,
            _rest: [0; UNION_LEN - 4],
        }
    }
}

/// `struct ifreq` with the union used as `struct sockaddr ifr_hwaddr` (SIOCGIFHWADDR, SIOCSIFHWADDR): the
/// address family (`ARPHRD_*`) and up to 14 bytes of hardware address, of which Ethernet uses 6.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct IfreqHwAddr {
    /// The interface name.
    pub(crate) name: IfName,
    /// `sa_family`: the hardware type (`ARPHRD_ETHER` for Ethernet).
    pub(crate) family: u16,
    /// `sa_data`: the address, from its first byte.
    pub(crate) data: [u8; 14],
    _rest: [u8; UNION_LEN - 16],
}

impl IfreqHwAddr {
    /// An `ifreq` for `name` carrying the hardware address `data` of type `family`.
    pub(crate) fn new(name: IfName, family: u16, data: [u8; 14]) -> Self {
        Self {
            name,
            family,
            data,
            _rest: [0; UNION_LEN - 16],
        }
    }
}

const _: () = assert!(size_of::<IfreqFlags>() == size_of::<libc::ifreq>());
const _: () = assert!(size_of::<IfreqHwAddr>() == size_of::<libc::ifreq>());
const _: () = assert!(size_of::<IfreqInt>() == size_of::<libc::ifreq>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_structs_have_the_kernel_size_with_the_value_right_after_the_name() {
        assert_eq!(size_of::<IfreqFlags>(), size_of::<libc::ifreq>());
        assert_eq!(size_of::<IfreqInt>(), size_of::<libc::ifreq>());
        let req = IfreqInt::new(IfName::new("ab").unwrap(), 0x0102_0304);
        let bytes = req.as_bytes();
        assert_eq!(&bytes[..3], b"ab\0");
        assert_eq!(&bytes[16..20], &0x0102_0304i32.to_ne_bytes());
        assert!(bytes[20..].iter().all(|&b| b == 0));
        let req = IfreqFlags::new(IfName::new("x").unwrap(), 0x1001);
        assert_eq!(&req.as_bytes()[16..18], &0x1001u16.to_ne_bytes());
    }

    #[test]
    fn name_of_fifteen_bytes_fits_and_is_nul_terminated() {
        let name = IfName::new("abcdefghijklmno").unwrap();
        assert_eq!(name.bytes(), b"abcdefghijklmno");
        assert_eq!(IntoBytes::as_bytes(&name)[15], 0);
    }

    #[test]
    fn name_of_sixteen_bytes_is_refused() {
        assert_eq!(IfName::new("abcdefghijklmnop"), Err(NameError::TooLong(16)));
    }

    #[test]
    fn names_with_slash_colon_nul_or_space_are_refused() {
        assert_eq!(IfName::new("a/b"), Err(NameError::ForbiddenByte(b'/')));
        assert_eq!(IfName::new("a:b"), Err(NameError::ForbiddenByte(b':')));
        assert_eq!(IfName::new("a\0b"), Err(NameError::ForbiddenByte(0)));
        assert_eq!(IfName::new("a b"), Err(NameError::ForbiddenByte(b' ')));
    }

    #[test]
    fn bytes_the_kernel_counts_as_space_are_refused_vertical_tab_and_no_break_space_too() {
        assert_eq!(IfName::new("a\x0bb"), Err(NameError::ForbiddenByte(0x0B)));
        assert_eq!(IfName::new("a\u{a0}b"), Err(NameError::ForbiddenByte(0xA0)));
        assert_eq!(
            IfName::new("tun\u{e0}"),
            Err(NameError::ForbiddenByte(0xA0))
        );
        assert_eq!(
            IfName::from_bytes(b"a\xa0"),
            Err(NameError::ForbiddenByte(0xA0))
        );
        assert!(
            IfName::new("tun\u{e9}").is_ok(),
            "é is 0xC3 0xA9: no space byte"
        );
    }

    #[test]
    fn empty_and_dot_names_are_refused() {
        assert_eq!(IfName::new(""), Err(NameError::Empty));
        assert_eq!(IfName::new("."), Err(NameError::Dots));
        assert_eq!(IfName::new(".."), Err(NameError::Dots));
    }

    #[test]
    fn template_names_are_accepted_and_recognised() {
        let name = IfName::new("tun%d").unwrap();
        assert!(name.is_template());
        assert!(!IfName::new("tun0").unwrap().is_template());
    }

    #[test]
    fn templates_the_kernel_would_refuse_are_refused() {
        for bad in ["tun%d%d", "tun%", "%x", "a%%d", "%d%"] {
            assert_eq!(IfName::new(bad), Err(NameError::BadTemplate), "{bad}");
        }
        assert!(IfName::new("%d").is_ok());
        assert!(IfName::new("t%dx").is_ok());
    }

    #[test]
    fn name_decoded_from_kernel_bytes_stops_at_the_first_nul() {
        let mut raw = [0u8; IFNAMSIZ];
        raw[..4].copy_from_slice(b"tun7");
        raw[5] = b'x';
        let name = IfName::read_from_bytes(&raw).unwrap();
        assert_eq!(name.as_str(), "tun7");
    }
}
