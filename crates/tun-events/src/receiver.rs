//! The receiving end of a monitor: a small queue that folds what the reader has not taken yet.
//!
//! The monitor thread must never wait for the reader, and the reader must always end up with the newest
//! state. So the queue is bounded by folding instead of blocking or dropping the newest:
//!
//! - at most [`MAX_PENDING_TRANSITIONS`] `Up`/`Down` events wait; when one more arrives, the two oldest are
//!   removed. Transitions alternate (the monitor reports changes only), so the two oldest are an `Up` and a
//!   `Down` in some order, and removing both leaves the reader's view consistent: it still sees every
//!   transition it needs to reach the newest state, in order;
//! - at most one `MtuUpdate` waits: a newer MTU replaces an older one that was not read yet.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::Event;

/// The most `Up`/`Down` events that wait for a reader; an even number, so folding removes whole flaps.
pub const MAX_PENDING_TRANSITIONS: usize = 4;

/// The most events that wait for a reader: the pending transitions and one MTU update.
pub const MAX_PENDING: usize = MAX_PENDING_TRANSITIONS + 1;

/// Why [`Events::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// No event is pending; more may come.
    #[error("no event pending")]
    Empty,
    /// No event is pending and none will come: the monitor stopped (or the device is unmonitored).
    #[error("the link monitor has stopped")]
    Disconnected,
}

/// Why [`Events::recv_timeout`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// The timeout passed without an event.
    #[error("no event within the timeout")]
    Timeout,
    /// No event is pending and none will come: the monitor stopped (or the device is unmonitored).
    #[error("the link monitor has stopped")]
    Disconnected,
}

/// The queue shared by a monitor (the only writer) and its [`Events`] receivers.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    closed: bool,
}

impl State {
    fn push(&mut self, event: Event) {
        if event.is_link_state() {
            self.events.push_back(event);
            if self.transitions() > MAX_PENDING_TRANSITIONS {
                self.drop_oldest_transitions(2);
            }
        } else {
            self.events.retain(|e| e.is_link_state());
            self.events.push_back(event);
        }
    }

    fn transitions(&self) -> usize {
        self.events.iter().filter(|e| e.is_link_state()).count()
    }

    fn drop_oldest_transitions(&mut self, mut count: usize) {
        self.events.retain(|e| {
            if count > 0 && e.is_link_state() {
                count -= 1;
                false
            } else {
                true
            }
        });
    }
}

impl Queue {
    /// A new, open, empty queue.
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Adds an event, folding older pending ones to stay within [`MAX_PENDING`]. Never blocks on readers
    /// (the lock is only ever held for a few instructions).
    pub(crate) fn push(&self, event: Event) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.push(event);
        drop(state);
        self.ready.notify_all();
    }

    /// True once [`Queue::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Marks the queue closed: readers take what is pending, then see it disconnected.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

/// A receiver of a monitor's [`Event`]s.
///
/// Clones share one queue: each event goes to one of them. Once the monitor stops (the device was closed,
/// or the monitor failed; see the device's read error), the pending events can still be taken, after which
/// the receiver reports that it is disconnected. Receivers of unmonitored devices are disconnected from the
/// start ([`Events::closed`]).
#[derive(Debug, Clone)]
pub struct Events {
    queue: Option<Arc<Queue>>,
}

impl Events {
    pub(crate) fn new(queue: Arc<Queue>) -> Self {
        Self { queue: Some(queue) }
    }

    /// A receiver that never yields an event: what an unmonitored device gives.
    ///
    /// ```
    /// let events = tun_events::Events::closed();
    /// assert_eq!(events.recv(), None);
    /// ```
    #[must_use]
    pub const fn closed() -> Self {
        Self { queue: None }
    }

    /// Waits for the next event; `None` once the monitor has stopped and nothing is pending.
    #[must_use]
    pub fn recv(&self) -> Option<Event> {
        let queue = self.queue.as_ref()?;
        let mut state = queue.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Some(event);
            }
            if state.closed {
                return None;
            }
            queue.ready.wait(&mut state);
        }
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let queue = self.queue.as_ref().ok_or(RecvTimeoutError::Disconnected)?;
        // A timeout too large for an Instant is as good as forever.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = queue.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Ok(event);
            }
            if state.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            match deadline {
                Some(deadline) => {
                    if queue.ready.wait_until(&mut state, deadline).timed_out()
                        && state.events.is_empty()
                        && !state.closed
                    {
                        return Err(RecvTimeoutError::Timeout);
                    }
                }
                None => queue.ready.wait(&mut state),
            }
        }
    }

    /// Takes the next event if one is pending, without waiting.
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        let queue = self.queue.as_ref().ok_or(TryRecvError::Disconnected)?;
        let mut state = queue.state.lock();
        match state.events.pop_front() {
            Some(event) => Ok(event),
            None if state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// How many events wait to be read (never more than [`MAX_PENDING`]).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |queue| queue.state.lock().events.len())
    }

    /// True once the monitor has stopped; events it queued before may still be pending.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.queue
            .as_ref()
            .is_none_or(|queue| queue.state.lock().closed)
    }

    /// A blocking iterator over the events, ending when the monitor stops.
    #[must_use]
    pub const fn iter(&self) -> Iter<'_> {
        Iter { events: self }
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = Event;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The blocking iterator of [`Events::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    events: &'a Events,
}

impl Iterator for Iter<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.events.recv()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event::{Down, MtuUpdate, Up};

    fn queue_with(events: &[Event]) -> (Arc<Queue>, Events) {
        let queue = Queue::new();
        for event in events {
            queue.push(*event);
        }
        let receiver = Events::new(Arc::clone(&queue));
        (queue, receiver)
    }

    fn drain(events: &Events) -> Vec<Event> {
        std::iter::from_fn(|| events.try_recv().ok())
            .take(MAX_PENDING + 1)
            .collect()
    }

    #[test]
    fn events_are_received_in_order() {
        let (_queue, events) = queue_with(&[Up, MtuUpdate(1400), Down]);
        assert_eq!(drain(&events), vec![Up, MtuUpdate(1400), Down]);
    }

    #[test]
    fn newer_mtu_replaces_an_unread_older_one() {
        let (_queue, events) = queue_with(&[MtuUpdate(1400), Up, MtuUpdate(1300)]);
        assert_eq!(drain(&events), vec![Up, MtuUpdate(1300)]);
    }

    #[test]
    fn unread_flaps_fold_to_the_bound_and_end_in_the_newest_state() {
        let queue = Queue::new();
        let events = Events::new(Arc::clone(&queue));
        for i in 0..1001 {
            queue.push(if i % 2 == 0 { Up } else { Down });
            queue.push(MtuUpdate(1000 + i));
            assert!(events.pending() <= MAX_PENDING);
        }
        let pending = drain(&events);
        assert_eq!(pending, vec![Up, Down, Up, MtuUpdate(2000)]);
    }

    #[test]
    fn folded_transitions_still_alternate_from_the_readers_last_state() {
        let (queue, events) = queue_with(&[Up]);
        assert_eq!(events.try_recv(), Ok(Up));
        for event in [Down, Up, Down, Up, Down] {
            queue.push(event);
        }
        // The reader last saw Up; what remains must start with Down and alternate to the final Down.
        assert_eq!(drain(&events), vec![Down, Up, Down]);
    }

    #[test]
    fn pending_events_survive_close_then_receiver_disconnects() {
        let (queue, events) = queue_with(&[Up]);
        queue.close();
        assert!(events.is_closed());
        assert_eq!(events.recv(), Some(Up));
        assert_eq!(events.recv(), None);
        assert_eq!(events.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            events.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn push_after_close_is_ignored() {
        let (queue, events) = queue_with(&[]);
        queue.close();
        queue.push(Up);
        assert_eq!(events.pending(), 0);
    }

    #[test]
    fn empty_open_queue_is_empty_not_disconnected() {
        let (_queue, events) = queue_with(&[]);
        assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            events.recv_timeout(Duration::from_millis(10)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(!events.is_closed());
    }

    #[test]
    fn closed_receiver_is_disconnected_at_once() {
        let events = Events::closed();
        assert_eq!(events.recv(), None);
        assert_eq!(events.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            events.recv_timeout(Duration::from_secs(60)),
            Err(RecvTimeoutError::Disconnected)
        );
        assert!(events.is_closed());
        assert_eq!(events.iter().count(), 0);
    }

    #[test]
    fn blocked_recv_wakes_on_push_and_on_close() {
        let (queue, events) = queue_with(&[]);
        let reader = std::thread::spawn(move || events.iter().collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(20));
        queue.push(Up);
        queue.close();
        assert_eq!(reader.join().unwrap(), vec![Up]);
    }

    #[test]
    fn clones_share_one_queue() {
        let (_queue, events) = queue_with(&[Up, Down]);
        let other = events.clone();
        assert_eq!(events.try_recv(), Ok(Up));
        assert_eq!(other.try_recv(), Ok(Down));
        assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn huge_timeout_waits_like_recv() {
        let (queue, events) = queue_with(&[]);
        let reader = std::thread::spawn(move || events.recv_timeout(Duration::MAX));
        std::thread::sleep(Duration::from_millis(20));
        queue.push(MtuUpdate(9000));
        assert_eq!(reader.join().unwrap(), Ok(MtuUpdate(9000)));
    }
}
