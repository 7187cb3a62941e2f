//! The facade's one error type.

use std::io;

use tun_offload::OffloadError;

/// Everything that can go wrong with a [`Tun`](crate::Tun).
///
/// Match on the variants, or ask [`is_transient`](Self::is_transient) (try again later) and
/// [`is_fatal`](Self::is_fatal) (the device is unusable). The `errno` stays reachable through
/// [`std::error::Error::source`] and [`raw_os_error`](Self::raw_os_error). Each message says what failed;
/// the cause (the kernel's error, the broken rule) is not repeated in it but returned by `source()`.
/// [`report`](Self::report) prints the whole chain:
///
/// ```no_run
/// if let Err(e) = tun::Builder::new().name("tun%d").mtu(1420).build() {
///     // e.g. "open on /dev/net/tun: No such file or directory (os error 2)"
///     eprintln!("{}", e.report());
///     if e.is_fatal() {
///         std::process::exit(1);
///     }
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device was closed; every call after `close()` (or one blocked while it happened) gets this.
    #[error("TUN device is closed")]
    Closed,
    /// A non-blocking call could not go on without waiting: nothing to read now, or the kernel's queue is full
    /// (see [`Tun::try_read_packets`](crate::Tun::try_read_packets)). Transient: try again once the fd is
    /// ready.
    #[error("the operation would block")]
    WouldBlock,
    /// A read with a timeout saw no packet in time ([`Tun::read_packets_timeout`](crate::Tun::read_packets_timeout)).
    /// Transient; nothing was lost.
    #[error("no packet within the timeout")]
    TimedOut,
    /// An async device was made outside a tokio runtime; `Builder::build_async` created nothing,
    /// `AsyncTun::new` closed the device it was given.
    #[error("no tokio runtime is running on this thread")]
    NoAsyncRuntime,
    /// An async device was made in a tokio runtime built without its IO driver; as for
    /// [`NoAsyncRuntime`](Self::NoAsyncRuntime), nothing is left. Build the runtime with `enable_io()` or
    /// `enable_all()`.
    #[error("the tokio runtime has no IO driver: build it with enable_io() or enable_all()")]
    AsyncIoDisabled,
    /// The interface name breaks the kernel's rules; nothing was created.
    #[error("invalid interface name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        #[source]
        reason: tun_sys::NameError,
    },
    /// The MTU is outside what the device takes: 68 to 65535, on a TAP device to 65521 (1280 or more for
    /// IPv6 to work on it).
    #[error("invalid MTU {mtu}: a TUN device takes 68..=65535, a TAP device 68..=65521")]
    InvalidMtu {
        /// The MTU as given.
        mtu: u32,
    },
    /// An interface of that name exists and cannot be attached to: another fd holds its only queue (`EBUSY`),
    /// or it is not a TUN or TAP device (`EINVAL`). A device of the other layer or queue kind is
    /// [`Error::SettingsMismatch`] instead.
    #[error(
        "interface {name} exists and cannot be attached to (in use, or not a TUN device of this kind)"
    )]
    DeviceBusy {
        /// The device name.
        name: String,
        /// The kernel's answer to TUNSETIFF.
        #[source]
        source: io::Error,
    },
    /// A queue was attached to an existing device whose settings differ from the builder's: the queues of one
    /// device share its virtio-net header (offloads) and multi-queue flag, so the new queue was refused and
    /// closed. Build it with the device's settings, or use [`Tun::open_queue`](crate::Tun::open_queue).
    #[error(
        "interface {name} exists with {setting} {}, the builder asked for {setting} {}: queues of one device \
         share it",
        on_off(*.device),
        on_off(*.asked)
    )]
    SettingsMismatch {
        /// The device name.
        name: String,
        /// The builder setting that differs: `"offload"`, `"multi_queue"` or `"layer"` (whose values say
        /// whether it is [`Layer::L2`](crate::Layer::L2)).
        setting: &'static str,
        /// The device's value.
        device: bool,
        /// The builder's value.
        asked: bool,
    },
    /// [`Tun::open_queue`](crate::Tun::open_queue) on a device built without
    /// [`multi_queue(true)`](crate::Builder::multi_queue): it has exactly one queue.
    #[error("interface {name} has a single queue (built without multi_queue(true))")]
    NotMultiQueue {
        /// The device name.
        name: String,
    },
    /// [`Tun::from_fd`](crate::Tun::from_fd) was given an fd that is not a TUN device without packet
    /// information (`IFF_TUN | IFF_NO_PI`): a TAP device hands over Ethernet frames and a device with packet
    /// information puts 4 bytes before each packet, neither of which is an IP packet.
    #[error("{name} cannot be used: {reason}")]
    UnsupportedDevice {
        /// The device name.
        name: String,
        /// What it is instead.
        reason: &'static str,
    },
    /// An interface of that name exists, and the builder asked for a new one
    /// ([`exclusive`](crate::Builder::exclusive)).
    #[error("interface {name} exists (an exclusive build creates a new device)")]
    DeviceExists {
        /// The device name.
        name: String,
        /// The kernel's answer to TUNSETIFF (`EBUSY`).
        #[source]
        source: io::Error,
    },
    /// The caller's buffer cannot hold the next packet. Nothing was lost: the packet is returned by the next
    /// call that has room for it.
    #[error("buffer {index} too small: packet needs {need} bytes (with offset), buffer has {have}")]
    BufferTooSmall {
        /// Index of the buffer in the caller's batch.
        index: usize,
        /// Bytes needed, offset included.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The arguments disagree with each other or with the device (for example `sizes` shorter than `bufs`, or
    /// an `offset` too small for the virtio-net header).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// An address or route given to the configuration is impossible (a prefix longer than the address, host
    /// bits set in a route's destination, a multicast or unspecified interface address); refused before
    /// any system call, nothing was changed.
    #[error("invalid address {addr}/{prefix_len}: {reason}")]
    InvalidAddress {
        /// The address or route destination as given.
        addr: std::net::IpAddr,
        /// The prefix length as given.
        prefix_len: u8,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The kernel refused an IPv6 address (`EINVAL`) because the device's MTU is below 1280, the least IPv6
    /// works with: raise the MTU ([`Tun::set_mtu`](crate::Tun::set_mtu)) first.
    #[error("IPv6 needs an MTU of at least 1280 and {device} has {mtu}")]
    Ipv6MtuTooSmall {
        /// The device name.
        device: DeviceName,
        /// The device's MTU.
        mtu: u32,
        /// The kernel's answer to RTM_NEWADDR.
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{op} on {device}")]
    Io {
        /// The operation (ioctl name or call) that failed.
        op: &'static str,
        /// The device name ("/dev/net/tun" before one exists).
        device: DeviceName,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A packet is not one the offload engine can handle. On write: not a well-formed IP packet (no
    /// IPv4/IPv6 header, a header cut short, a length field claiming more bytes than the packet has, or more
    /// than 65535 bytes), refused before the write because the kernel would take some of these silently and
    /// drop them later. On read: a super-packet from the kernel that could not be split (malformed, or
    /// inconsistent with its virtio-net header); it is dropped and the next read goes on.
    #[error("invalid packet")]
    InvalidPacket(#[source] OffloadError),
    /// Some packets of a write batch failed or were left unwritten; the others were written.
    #[error(transparent)]
    Batch(BatchError),
    /// The link monitor could not start, so the build failed. A monitor that fails later never reaches the
    /// data path: its receivers disconnect and [`Events::take_error`](tun_events::Events::take_error) says
    /// why, while packet I/O goes on.
    #[error(transparent)]
    Monitor(#[from] tun_events::MonitorError),
}

impl Error {
    /// The facade's error for what the offload engine refused: a buffer too small and bad arguments as
    /// such, anything else as an invalid packet.
    pub(crate) fn from_offload(error: OffloadError) -> Self {
        match error {
            OffloadError::BufferTooSmall { index, need, have } => {
                Error::BufferTooSmall { index, need, have }
            }
            OffloadError::InvalidArgument(what) => Error::InvalidArgument(what),
            other => Error::InvalidPacket(other),
        }
    }

    /// The same error once more, for each further packet of a write that failed as a whole (a merged
    /// packet): the kernel's error is copied by its errno (or kind), the others a write fails with as they
    /// are; any other (none reaches here) as an `Io` error carrying its message.
    pub(crate) fn same_again(&self) -> Self {
        let io = |e: &io::Error| {
            e.raw_os_error()
                .map_or_else(|| io::Error::from(e.kind()), io::Error::from_raw_os_error)
        };
        match self {
            Error::Closed => Error::Closed,
            Error::WouldBlock => Error::WouldBlock,
            Error::TimedOut => Error::TimedOut,
            Error::Io { op, device, source } => Error::Io {
                op,
                device: *device,
                source: io(source),
            },
            Error::InvalidPacket(e) => Error::InvalidPacket(e.clone()),
            Error::InvalidArgument(what) => Error::InvalidArgument(what),
            Error::BufferTooSmall { index, need, have } => Error::BufferTooSmall {
                index: *index,
                need: *need,
                have: *have,
            },
            other => Error::Io {
                op: "write",
                device: DeviceName::from(""),
                source: io::Error::other(other.to_string()),
            },
        }
    }

    /// An [`Error::Io`] for `op` on `device`, except that a call that would block is [`Error::WouldBlock`]:
    /// there is one way to say so.
    pub(crate) fn io(op: &'static str, device: impl Into<DeviceName>, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::WouldBlock {
            return Error::WouldBlock;
        }
        Error::Io {
            op,
            device: device.into(),
            source,
        }
    }

    /// This error followed by each of its causes, `": "` between them: for a log line.
    pub fn report(&self) -> impl std::fmt::Display + '_ {
        Report(self)
    }

    /// The `errno` behind this error, if it came from the kernel.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. }
            | Error::DeviceBusy { source, .. }
            | Error::DeviceExists { source, .. }
            | Error::Ipv6MtuTooSmall { source, .. } => source.raw_os_error(),
            Error::Monitor(e) => e.io_error().and_then(io::Error::raw_os_error),
            _ => None,
        }
    }

    /// True when retrying later can succeed: the call was interrupted or would block, timed out, the kernel was short
    /// of buffers, or the link is down (writes to a down TUN device fail with `EIO`).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::WouldBlock | Error::TimedOut => true,
            Error::Io { source, .. } => {
                source.kind() == io::ErrorKind::Interrupted
                    || matches!(
                        source.raw_os_error(),
                        Some(libc::ENOBUFS | libc::ENOMEM | libc::EIO | libc::ENETDOWN)
                    )
            }
            // Left by a full queue, or refused for reasons that pass.
            Error::Batch(batch) => {
                (!batch.failed.is_empty() || !batch.unwritten.is_empty())
                    && batch.failed.iter().all(|p| p.error.is_transient())
            }
            _ => false,
        }
    }

    /// True when the device is unusable from now on: closed, deleted (`EBADFD`, `ENODEV`, `ENXIO`) or the fd is
    /// invalid (`EBADF`).
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Closed => true,
            Error::Io { source, .. } => {
                matches!(
                    source.raw_os_error(),
                    Some(libc::EBADFD | libc::EBADF | libc::ENODEV | libc::ENXIO)
                )
            }
            Error::Batch(batch) => batch.failed.iter().any(|p| p.error.is_fatal()),
            _ => false,
        }
    }
}

/// The name of the device an [`Error::Io`] is about: its interface name (at most 15 bytes), or what was
/// opened before there was one (`/dev/net/tun`). A copy, so that an error on the data path allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceName {
    bytes: [u8; 15],
    len: u8,
}

impl DeviceName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Keeps the first 15 bytes of `name`: every interface name fits.
    fn of(name: &[u8]) -> Self {
        let len = name.len().min(15);
        let mut bytes = [0; 15];
        bytes[..len].copy_from_slice(&name[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }
}

impl From<tun_sys::IfName> for DeviceName {
    fn from(name: tun_sys::IfName) -> Self {
        Self::of(name.bytes())
    }
}

impl From<&str> for DeviceName {
    fn from(name: &str) -> Self {
        Self::of(name.as_bytes())
    }
}

impl From<String> for DeviceName {
    fn from(name: String) -> Self {
        Self::of(name.as_bytes())
    }
}

impl PartialEq<&str> for DeviceName {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl std::fmt::Debug for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

/// Displays an error and its chain of causes (see [`Error::report`]).
struct Report<'a>(&'a Error);

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// `on` or `off`, for messages about settings.
fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// What happened to a write batch in which some packets failed or were left unwritten. Its
/// [`source`](std::error::Error::source) is the first failure. Every packet of the batch is in exactly one
/// of three places: written (counted), [`failed`](Self::failed) or [`unwritten`](Self::unwritten).
#[derive(Debug)]
pub struct BatchError {
    /// How many of the caller's packets were written (a packet merged into a written super-packet counts).
    pub written: usize,
    /// The packets that failed, by index in the caller's batch, each with why; in the batch's order, but for
    /// the packets of a write that found the device failed, which come last.
    pub failed: Vec<PacketError>,
    /// The packets not attempted, by index, in order: the kernel's queue filled up (offer them again once
    /// the device is writable) or the device failed (the last entry of `failed` says why).
    pub unwritten: Vec<usize>,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packet(s) written, {} failed",
            self.written,
            self.failed.len()
        )?;
        if !self.unwritten.is_empty() {
            write!(f, ", {} not attempted", self.unwritten.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failed
            .first()
            .map(|first| first as &(dyn std::error::Error + 'static))
    }
}

/// One packet of a batch that failed; its [`source`](std::error::Error::source) says why.
#[derive(Debug, thiserror::Error)]
#[error("packet {index} failed")]
pub struct PacketError {
    /// Index of the packet in the caller's batch.
    pub index: usize,
    /// Why it failed.
    #[source]
    pub error: Error,
}

impl From<Error> for io::Error {
    /// Wraps the error, context and all (get it back with [`io::Error::get_ref`] and `downcast_ref::<Error>`,
    /// the `errno` with [`Error::raw_os_error`]), with the kind of the kernel's error where there is one;
    /// `Closed` becomes `BrokenPipe`, bad arguments and too-small buffers `InvalidInput`.
    fn from(err: Error) -> io::Error {
        let kind = match &err {
            Error::Closed => io::ErrorKind::BrokenPipe,
            Error::WouldBlock => io::ErrorKind::WouldBlock,
            Error::TimedOut => io::ErrorKind::TimedOut,
            Error::NoAsyncRuntime | Error::AsyncIoDisabled => io::ErrorKind::Unsupported,
            Error::Io { source, .. }
            | Error::DeviceBusy { source, .. }
            | Error::DeviceExists { source, .. } => source.kind(),
            Error::InvalidName { .. }
            | Error::InvalidMtu { .. }
            | Error::SettingsMismatch { .. }
            | Error::NotMultiQueue { .. }
            | Error::UnsupportedDevice { .. }
            | Error::InvalidArgument(_)
            | Error::InvalidAddress { .. }
            | Error::Ipv6MtuTooSmall { .. }
            | Error::BufferTooSmall { .. } => io::ErrorKind::InvalidInput,
            Error::InvalidPacket(_) => io::ErrorKind::InvalidData,
            Error::Batch(_) | Error::Monitor(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_message_names_operation_and_device() {
        let err = Error::io(
            "SIOCSIFMTU",
            "tun7",
            io::Error::from_raw_os_error(libc::EINVAL),
        );
        let text = err.to_string();
        assert!(text.starts_with("SIOCSIFMTU on tun7"), "{text}");
        // The cause is returned, not repeated; the report shows both.
        assert!(!text.contains("Invalid argument"), "{text}");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("Invalid argument")));
        let report = err.report().to_string();
        assert!(
            report.starts_with("SIOCSIFMTU on tun7: Invalid argument"),
            "{report}"
        );
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn closed_and_deleted_device_are_fatal_not_transient() {
        assert!(Error::Closed.is_fatal());
        assert!(!Error::Closed.is_transient());
        let gone = Error::io("read", "tun0", io::Error::from_raw_os_error(libc::EBADFD));
        assert!(gone.is_fatal());
        assert!(!gone.is_transient());
    }

    #[test]
    fn would_block_and_no_buffers_are_transient() {
        assert!(Error::WouldBlock.is_transient());
        assert!(!Error::WouldBlock.is_fatal());
        assert!(Error::TimedOut.is_transient());
        assert_eq!(
            io::Error::from(Error::WouldBlock).kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            io::Error::from(Error::TimedOut).kind(),
            io::ErrorKind::TimedOut
        );
        // One way to say "would block", whatever the call that found it.
        assert!(matches!(
            Error::io("write", "t", io::Error::from(io::ErrorKind::WouldBlock)),
            Error::WouldBlock
        ));
        assert!(matches!(
            Error::io("read", "t", io::Error::from_raw_os_error(libc::EAGAIN)),
            Error::WouldBlock
        ));
        assert!(
            Error::io("write", "t", io::Error::from_raw_os_error(libc::ENOBUFS)).is_transient()
        );
        assert!(
            !Error::io("write", "t", io::Error::from_raw_os_error(libc::EINVAL)).is_transient()
        );
    }

    #[test]
    fn batch_is_fatal_when_any_packet_failed_fatally() {
        let batch = BatchError {
            written: 3,
            failed: vec![
                PacketError {
                    index: 1,
                    error: Error::io("write", "t", io::Error::from_raw_os_error(libc::EINVAL)),
                },
                PacketError {
                    index: 4,
                    error: Error::Closed,
                },
            ],
            unwritten: vec![5, 6],
        };
        let text = batch.to_string();
        assert!(
            text.contains("3 packet(s) written, 2 failed, 2 not attempted"),
            "{text}"
        );
        assert!(Error::Batch(batch).is_fatal());
        let refused = batch_of([libc::EINVAL, libc::EMSGSIZE]);
        assert!(!refused.is_fatal(), "{refused}");
    }

    /// A batch whose packets failed with these errnos, in order.
    fn batch_of<const N: usize>(errnos: [i32; N]) -> Error {
        let failed = errnos
            .into_iter()
            .enumerate()
            .map(|(index, errno)| PacketError {
                index,
                error: Error::io("write", "t", io::Error::from_raw_os_error(errno)),
            })
            .collect();
        Error::Batch(BatchError {
            written: 0,
            failed,
            unwritten: Vec::new(),
        })
    }

    #[test]
    fn batch_is_transient_only_when_every_failed_packet_is() {
        assert!(batch_of([libc::ENOBUFS, libc::EIO]).is_transient());
        assert!(!batch_of([libc::ENOBUFS, libc::EINVAL]).is_transient());
        assert!(!batch_of([]).is_transient());
        // Left by a full queue, nothing refused: try again.
        let left = Error::Batch(BatchError {
            written: 2,
            failed: Vec::new(),
            unwritten: vec![2, 3],
        });
        assert!(left.is_transient() && !left.is_fatal());
    }

    #[test]
    fn an_io_error_names_its_device_by_a_copy_of_the_name() {
        let name = tun_sys::IfName::new("tun7").unwrap();
        let err = Error::io("write", name, io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(err.to_string(), "write on tun7");
        let Error::Io { device, .. } = err else {
            unreachable!()
        };
        assert_eq!(device, "tun7");
        assert_eq!(DeviceName::from("/dev/net/tun").to_string(), "/dev/net/tun");
        assert_eq!(DeviceName::from("sixteen-bytes-xx").as_bytes().len(), 15);
    }

    #[test]
    fn offload_errors_map_to_what_they_mean() {
        let small = OffloadError::BufferTooSmall {
            index: 2,
            need: 9,
            have: 4,
        };
        assert!(matches!(
            Error::from_offload(small),
            Error::BufferTooSmall {
                index: 2,
                need: 9,
                have: 4
            }
        ));
        assert!(matches!(
            Error::from_offload(OffloadError::InvalidArgument("x")),
            Error::InvalidArgument("x")
        ));
        assert!(matches!(
            Error::from_offload(OffloadError::Malformed("x")),
            Error::InvalidPacket(_)
        ));
    }

    #[test]
    fn conversion_to_io_error_keeps_the_errno() {
        let err: io::Error =
            Error::io("write", "t", io::Error::from_raw_os_error(libc::EMSGSIZE)).into();
        assert_eq!(
            err.kind(),
            io::Error::from_raw_os_error(libc::EMSGSIZE).kind()
        );
        // The context travels with it.
        assert!(err.to_string().starts_with("write on t"), "{err}");
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert_eq!(inner.and_then(Error::raw_os_error), Some(libc::EMSGSIZE));
        let closed: io::Error = Error::Closed.into();
        assert_eq!(closed.kind(), io::ErrorKind::BrokenPipe);
    }
}
