//! The link state as reported so far, and which events a new observation of the link adds.

use crate::Event;

/// What the monitor has told its reader about the link.
///
/// The first observation only records the MTU (the device was created with it; nothing changed). A link
/// that is not running at first is not reported as down: `NotRunning` only ever follows an `Running`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkTracker {
    up: bool,
    mtu: Option<u32>,
}

impl LinkTracker {
    /// Compares an observation (from a notification or a `RTM_GETLINK` reply) with what was reported and
    /// returns the events to report, in order: the link state change first, then the MTU change.
    ///
    /// MTU changes come as `RTM_NEWLINK` with `ifi_change` 0, so the MTU is compared with the last value
    /// rather than trusted to be flagged. A message without `IFLA_MTU` leaves the MTU as it was.
    pub(crate) fn observe(&mut self, running: bool, mtu: Option<u32>) -> Changes {
        let mut changes = Changes::default();
        if running != self.up {
            self.up = running;
            changes.state = Some(if running {
                Event::Running
            } else {
                Event::NotRunning
            });
        }
        if let Some(mtu) = mtu {
            if self.mtu.is_some_and(|last| last != mtu) {
                changes.mtu = Some(Event::MtuUpdate(mtu));
            }
            self.mtu = Some(mtu);
        }
        changes
    }

    /// The device is gone (deleted while its fd was open): report `NotRunning` if it was up.
    pub(crate) fn gone(&mut self) -> Changes {
        let changes = Changes {
            state: self.up.then_some(Event::NotRunning),
            mtu: None,
        };
        self.up = false;
        changes
    }
}

/// The events one observation produced: at most a state change and an MTU change.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changes {
    state: Option<Event>,
    mtu: Option<Event>,
}

impl IntoIterator for Changes {
    type Item = Event;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Event>, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        [self.state, self.mtu].into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event::{MtuUpdate, NotRunning, Running};

    fn observe(tracker: &mut LinkTracker, running: bool, mtu: Option<u32>) -> Vec<Event> {
        tracker.observe(running, mtu).into_iter().collect()
    }

    #[test]
    fn first_observation_of_a_down_link_reports_nothing() {
        let mut tracker = LinkTracker::default();
        assert_eq!(observe(&mut tracker, false, Some(1500)), vec![]);
    }

    #[test]
    fn first_observation_of_a_running_link_reports_up_but_not_its_mtu() {
        let mut tracker = LinkTracker::default();
        assert_eq!(observe(&mut tracker, true, Some(1500)), vec![Running]);
    }

    #[test]
    fn up_mtu_down_sequence_is_reported_in_order() {
        let mut tracker = LinkTracker::default();
        let mut seen = observe(&mut tracker, false, Some(1500));
        seen.extend(observe(&mut tracker, true, Some(1500)));
        seen.extend(observe(&mut tracker, true, Some(1400)));
        seen.extend(observe(&mut tracker, false, Some(1400)));
        assert_eq!(seen, vec![Running, MtuUpdate(1400), NotRunning]);
    }

    #[test]
    fn repeated_observations_are_folded() {
        let mut tracker = LinkTracker::default();
        observe(&mut tracker, true, Some(1500));
        assert_eq!(observe(&mut tracker, true, Some(1500)), vec![]);
        observe(&mut tracker, false, Some(1500));
        assert_eq!(observe(&mut tracker, false, Some(1500)), vec![]);
    }

    #[test]
    fn state_and_mtu_change_together_give_state_then_mtu() {
        let mut tracker = LinkTracker::default();
        observe(&mut tracker, false, Some(1500));
        assert_eq!(
            observe(&mut tracker, true, Some(9000)),
            vec![Running, MtuUpdate(9000)]
        );
    }

    #[test]
    fn message_without_mtu_keeps_the_last_one() {
        let mut tracker = LinkTracker::default();
        observe(&mut tracker, true, Some(1500));
        assert_eq!(observe(&mut tracker, true, None), vec![]);
        assert_eq!(observe(&mut tracker, true, Some(1500)), vec![]);
    }

    #[test]
    fn gone_reports_down_only_after_up() {
        let mut tracker = LinkTracker::default();
        assert_eq!(tracker.gone().into_iter().collect::<Vec<_>>(), vec![]);
        observe(&mut tracker, true, Some(1500));
        assert_eq!(
            tracker.gone().into_iter().collect::<Vec<_>>(),
            vec![NotRunning]
        );
        assert_eq!(tracker.gone().into_iter().collect::<Vec<_>>(), vec![]);
    }
}
