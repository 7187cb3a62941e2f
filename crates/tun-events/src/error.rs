//! What can go wrong in a link monitor.

use std::io;

use tun_sys::netlink::MalformedMessage;

/// A link monitor's failure: returned by [`Monitor::spawn`](crate::Monitor::spawn), or taken from its
/// receivers ([`Events::take_error`](crate::Events::take_error)) once it ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// A system call or netlink request failed; the monitor has stopped.
    #[error("link monitor of {device}: {operation} failed")]
    Io {
        /// What was being done (`"netlink receive"`, `"TUNGETDEVNETNS"`, `"setns"`, ...).
        operation: &'static str,
        /// The device's name when the monitor last looked it up.
        device: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel sent a message the parser rejected. The monitor read the link state again and goes on.
    #[error("link monitor of {device}: malformed netlink message")]
    Malformed {
        /// The device's name when the monitor last looked it up.
        device: String,
        /// What was wrong with it.
        #[source]
        source: MalformedMessage,
    },
    /// The device could not be found in the namespace its fd reports, even after retrying as often as it
    /// moved; the monitor has stopped.
    #[error(
        "link monitor of {device}: device not found in its network namespace after {attempts} lookups"
    )]
    Lost {
        /// The device's name when the monitor last looked it up.
        device: String,
        /// How many lookups failed in a row.
        attempts: u32,
    },
    /// The monitor thread did not finish starting in time; it has been stopped.
    #[error("link monitor of {device}: no link state from the kernel within {timeout_ms} ms")]
    StartTimeout {
        /// The device's name.
        device: String,
        /// How long the start waited.
        timeout_ms: u64,
    },
    /// The monitor thread panicked (a bug); it has stopped.
    #[error("link monitor of {device}: monitor thread panicked")]
    Panicked {
        /// The device's name.
        device: String,
    },
}

impl MonitorError {
    /// True when the monitor stopped because of this error (its events receiver is disconnected); false
    /// when it recovered and goes on ([`MonitorError::Malformed`]).
    #[must_use]
    pub const fn is_fatal(&self) -> bool {
        !matches!(self, Self::Malformed { .. })
    }

    /// The underlying OS error, if there is one.
    #[must_use]
    pub const fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_message_names_device_and_operation_and_keeps_errno() {
        let error = MonitorError::Io {
            operation: "netlink receive",
            device: "tun0".into(),
            source: io::Error::from_raw_os_error(libc::EBADF),
        };
        assert_eq!(
            error.to_string(),
            "link monitor of tun0: netlink receive failed"
        );
        assert_eq!(
            error.io_error().and_then(io::Error::raw_os_error),
            Some(libc::EBADF)
        );
        assert!(error.is_fatal());
    }

    #[test]
    fn malformed_message_is_not_fatal() {
        let error = MonitorError::Malformed {
            device: "tun0".into(),
            source: MalformedMessage::LengthTooSmall { offset: 0, len: 0 },
        };
        assert!(!error.is_fatal());
        assert!(error.io_error().is_none());
    }
}
