//! The events a link monitor reports.

use std::fmt;

/// A change in the state of the monitored link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// The link became running (`IFF_RUNNING`): administratively up ([`IFF_UP`], what `ip link set up` and
    /// `Tun::set_up` change) with a queue attached.
    ///
    /// [`IFF_UP`]: https://man7.org/linux/man-pages/man7/netdevice.7.html
    Running,
    /// The link stopped running (taken down, or its last queue detached) after having run.
    NotRunning,
    /// The link's MTU changed to this value.
    MtuUpdate(u32),
}

impl Event {
    /// True for [`Event::Running`] and [`Event::NotRunning`], the events that change whether the link runs.
    #[must_use]
    pub const fn is_link_state(self) -> bool {
        matches!(self, Self::Running | Self::NotRunning)
    }
}

/// As a log line would show it: `running`, `not running`, `mtu 1400`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Running => f.write_str("running"),
            Self::NotRunning => f.write_str("not running"),
            Self::MtuUpdate(mtu) => write!(f, "mtu {mtu}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_lowercase_line_per_event() {
        assert_eq!(Event::Running.to_string(), "running");
        assert_eq!(Event::NotRunning.to_string(), "not running");
        assert_eq!(Event::MtuUpdate(1400).to_string(), "mtu 1400");
    }

    #[test]
    fn only_running_and_not_running_are_link_state() {
        assert!(Event::Running.is_link_state());
        assert!(Event::NotRunning.is_link_state());
        assert!(!Event::MtuUpdate(1500).is_link_state());
    }
}
