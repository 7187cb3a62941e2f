//! Interface ioctls (SIOC*) on a datagram control socket.
//!
//! They act on the network namespace the socket was created in, whichever thread calls them later: create
//! the socket in the device's namespace (see [`crate::netns::run_in`]).

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use crate::flags::IfFlags;
use crate::ifreq::{IfName, IfreqFlags, IfreqHwAddr, IfreqInt};
use crate::sys::{cvt, ioctl_ptr};

/// A close-on-exec `AF_INET` datagram socket, the handle the SIOC* ioctls need, in the calling thread's
/// network namespace.
pub fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers; it returns a new descriptor or -1.
    let raw =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// SIOCGIFINDEX: the interface index of `name`.
pub fn index(sock: BorrowedFd<'_>, name: IfName) -> io::Result<u32> {
    get_int(sock, name, IntGetter::Index)
}

/// SIOCGIFMTU: the MTU of `name`.
pub fn mtu(sock: BorrowedFd<'_>, name: IfName) -> io::Result<u32> {
    get_int(sock, name, IntGetter::Mtu)
}

/// SIOCGIFTXQLEN: the transmit queue length of `name` (packets the kernel queues for the device).
pub fn tx_queue_len(sock: BorrowedFd<'_>, name: IfName) -> io::Result<u32> {
    get_int(sock, name, IntGetter::TxQueueLen)
}

/// The SIOCG* requests that answer with one non-negative `int` in the `struct ifreq`.
#[derive(Debug, Clone, Copy)]
enum IntGetter {
    /// SIOCGIFINDEX (`ifr_ifindex`).
    Index,
    /// SIOCGIFMTU (`ifr_mtu`).
    Mtu,
    /// SIOCGIFTXQLEN (`ifr_qlen`).
    TxQueueLen,
}

fn get_int(sock: BorrowedFd<'_>, name: IfName, getter: IntGetter) -> io::Result<u32> {
    let request = match getter {
        IntGetter::Index => libc::SIOCGIFINDEX,
        IntGetter::Mtu => libc::SIOCGIFMTU,
        IntGetter::TxQueueLen => libc::SIOCGIFTXQLEN,
    };
    let mut req = IfreqInt::new(name, 0);
    // SAFETY: these requests read the name from and write one `int` (`ifr_ifindex`, `ifr_mtu`, `ifr_qlen`) into a
    // `struct ifreq`, which `IfreqInt` is, size for size.
    unsafe { ioctl_ptr(sock, request as libc::Ioctl, &mut req) }?;
    u32::try_from(req.value).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// SIOCSIFMTU: sets the MTU of `name` (`EINVAL` outside the device's range; TUN accepts 68..=65535 for IPv4).
pub fn set_mtu(sock: BorrowedFd<'_>, name: IfName, mtu: u32) -> io::Result<()> {
    let value = i32::try_from(mtu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut req = IfreqInt::new(name, value);
    // SAFETY: SIOCSIFMTU reads a `struct ifreq` (`IfreqInt`) with the name and `ifr_mtu`.
    unsafe { ioctl_ptr(sock, libc::SIOCSIFMTU as libc::Ioctl, &mut req) }.map(drop)
}

/// SIOCSIFTXQLEN: sets the transmit queue length of `name` (`EINVAL` beyond `i32::MAX`).
pub fn set_tx_queue_len(sock: BorrowedFd<'_>, name: IfName, len: u32) -> io::Result<()> {
    let value = i32::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut req = IfreqInt::new(name, value);
    // SAFETY: SIOCSIFTXQLEN reads a `struct ifreq` (`IfreqInt`) with the name and `ifr_qlen`.
    unsafe { ioctl_ptr(sock, libc::SIOCSIFTXQLEN as libc::Ioctl, &mut req) }.map(drop)
}

/// SIOCGIFFLAGS: the interface flags of `name`.
pub fn flags(sock: BorrowedFd<'_>, name: IfName) -> io::Result<IfFlags> {
    let mut req = IfreqFlags::new(name, 0);
    // SAFETY: SIOCGIFFLAGS reads the name from and writes `ifr_flags` into a `struct ifreq` (`IfreqFlags`).
    unsafe { ioctl_ptr(sock, libc::SIOCGIFFLAGS as libc::Ioctl, &mut req) }?;
    Ok(IfFlags::from_bits_retain(u32::from(req.flags)))
}

/// SIOCSIFFLAGS: sets the interface flags of `name` (for example [`IfFlags::UP`]).
pub fn set_flags(sock: BorrowedFd<'_>, name: IfName, flags: IfFlags) -> io::Result<()> {
    // `ifr_flags` is a short: flags above it (LOWER_UP, DORMANT, ECHO) are the kernel's to report only.
    let bits = u16::try_from(flags.bits()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{flags:?} has flags SIOCSIFFLAGS cannot set"),
        )
    })?;
    let mut req = IfreqFlags::new(name, bits);
    // SAFETY: SIOCSIFFLAGS reads a `struct ifreq` (`IfreqFlags`) with the name and `ifr_flags`.
    unsafe { ioctl_ptr(sock, libc::SIOCSIFFLAGS as libc::Ioctl, &mut req) }.map(drop)
}

/// SIOCGIFHWADDR: the Ethernet (MAC) address of `name`. `EINVAL` for an interface whose hardware address
/// is not an Ethernet one (a TUN device has none).
pub fn hw_address(sock: BorrowedFd<'_>, name: IfName) -> io::Result<[u8; 6]> {
    let mut req = IfreqHwAddr::new(name, 0, [0; 14]);
    // SAFETY: SIOCGIFHWADDR reads the name from and writes `ifr_hwaddr` into a `struct ifreq` (`IfreqHwAddr`).
    unsafe { ioctl_ptr(sock, libc::SIOCGIFHWADDR as libc::Ioctl, &mut req) }?;
    if req.family != libc::ARPHRD_ETHER {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&req.data[..6]);
    Ok(mac)
}

/// SIOCSIFHWADDR: sets the Ethernet (MAC) address of `name` (`EADDRNOTAVAIL` for a multicast or all-zero
/// address, `EINVAL` for an interface without one).
pub fn set_hw_address(sock: BorrowedFd<'_>, name: IfName, mac: [u8; 6]) -> io::Result<()> {
    let mut data = [0u8; 14];
    data[..6].copy_from_slice(&mac);
    let mut req = IfreqHwAddr::new(name, libc::ARPHRD_ETHER, data);
    // SAFETY: SIOCSIFHWADDR reads a `struct ifreq` (`IfreqHwAddr`) with the name and `ifr_hwaddr`.
    unsafe { ioctl_ptr(sock, libc::SIOCSIFHWADDR as libc::Ioctl, &mut req) }.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn flags_beyond_ifr_flags_are_refused_before_the_ioctl() {
        let sock = control_socket().unwrap();
        let lo = IfName::new("lo").unwrap();
        let err = set_flags(sock.as_fd(), lo, IfFlags::UP | IfFlags::LOWER_UP).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Not the kernel's EINVAL: no ioctl was made.
        assert_eq!(err.raw_os_error(), None, "{err}");
        // What SIOCGIFFLAGS reports comes from the 16-bit `ifr_flags`, widened without sign extension.
        let lo_flags = flags(sock.as_fd(), lo).unwrap().bits();
        assert!(lo_flags <= u32::from(u16::MAX));
        assert_ne!(
            lo_flags & libc::IFF_LOOPBACK.cast_unsigned(),
            0,
            "{lo_flags:#x}"
        );
    }

    #[test]
    fn loopback_has_index_and_mtu_and_unknown_name_is_enodev() {
        let sock = control_socket().unwrap();
        let lo = IfName::new("lo").unwrap();
        assert!(index(sock.as_fd(), lo).unwrap() >= 1);
        assert!(mtu(sock.as_fd(), lo).unwrap() >= 1280);
        // The same queue length as the kernel shows in sysfs (1000 for loopback by default).
        let sysfs = std::fs::read_to_string("/sys/class/net/lo/tx_queue_len").unwrap();
        assert_eq!(
            tx_queue_len(sock.as_fd(), lo).unwrap(),
            sysfs.trim().parse::<u32>().unwrap()
        );
        let missing = IfName::new("no-such-if0").unwrap();
        assert_eq!(
            index(sock.as_fd(), missing).unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
    }

    #[test]
    fn loopback_has_no_ethernet_address() {
        let sock = control_socket().unwrap();
        let lo = IfName::new("lo").unwrap();
        // ARPHRD_LOOPBACK, not an Ethernet address.
        assert_eq!(
            hw_address(sock.as_fd(), lo).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn mtu_beyond_i32_is_einval_before_any_call() {
        let sock = control_socket().unwrap();
        let err = set_mtu(sock.as_fd(), IfName::new("lo").unwrap(), u32::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }
}
