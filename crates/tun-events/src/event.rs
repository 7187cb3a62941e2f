//! The events a link monitor reports.

use std::fmt;

/// A change in the state of the monitored link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// The link became running (`IFF_RUNNING`): administratively up with a queue attached.
    Up,
    /// The link stopped running after having been up.
    Down,
    /// The link's MTU changed to this value.
    MtuUpdate(u32),
}

impl Event {
    /// True for [`Event::Up`] and [`Event::Down`], the events that change whether the link runs.
    #[must_use]
    pub const fn is_link_state(self) -> bool {
        matches!(self, Self::Up | Self::Down)
    }
}

/// One word per event, as a log line would show it: `up`, `down`, `mtu 1400`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Up => f.write_str("up"),
            Self::Down => f.write_str("down"),
            Self::MtuUpdate(mtu) => write!(f, "mtu {mtu}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_lowercase_line_per_event() {
        assert_eq!(Event::Up.to_string(), "up");
        assert_eq!(Event::Down.to_string(), "down");
        assert_eq!(Event::MtuUpdate(1400).to_string(), "mtu 1400");
    }

    #[test]
    fn only_up_and_down_are_link_state() {
        assert!(Event::Up.is_link_state());
        assert!(Event::Down.is_link_state());
        assert!(!Event::MtuUpdate(1500).is_link_state());
    }
}
