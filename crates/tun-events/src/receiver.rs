//! The receiving ends of a monitor: one small queue per receiver, each folding what its reader has not taken
//! yet.
//!
//! Every receiver sees every event (from the moment it was made), so one part of a program watching the link
//! never steals another part's events. The monitor thread must never wait for a reader, and each reader must
//! always end up with the newest state. So each queue is bounded by folding instead of blocking or dropping
//! the newest:
//!
//! - at most [`MAX_PENDING_TRANSITIONS`] `Running`/`NotRunning` events wait; when one more arrives, the two oldest are
//!   removed. Transitions alternate (the monitor reports changes only), so the two oldest are an `Running` and a
//!   `NotRunning` in some order, and removing both leaves the reader's view consistent: it still sees every
//!   transition it needs to reach the newest state, in order;
//! - at most one `MtuUpdate` waits: a newer MTU replaces an older one that was not read yet.
//!
//! Receivers wait either by blocking (a condition variable) or asynchronously ([`Events::recv_async`], a
//! future woken through the task's `Waker`, with any executor and without a thread of its own).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::Event;
use crate::error_slot::ErrorSlot;

/// The most `Running`/`NotRunning` events that wait for a reader; an even number, so folding removes whole flaps.
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

/// What a monitor (the only writer) shares with its [`Events`] receivers: the list of receivers to deliver
/// to.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    hub: Mutex<Hub>,
    /// The error the monitor hit, until a receiver (or the monitor's handle) takes it.
    errors: ErrorSlot,
}

#[derive(Debug)]
struct Hub {
    /// The receivers still alive (dead ones are pruned on the next push or the next new receiver, so that
    /// receivers made and dropped while the link is quiet do not pile up).
    receivers: Vec<Weak<Inbox>>,
    /// Events pushed before the first receiver existed: they are that receiver's (a device found running
    /// when the monitor starts is reported `Running` this way).
    early: Option<State>,
    closed: bool,
}

/// One receiver's queue.
#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    closed: bool,
    /// Tasks waiting in [`Recv`] futures, each under its future's ticket: woken (and removed) by the next push
    /// or close, or removed when their future is dropped, so an abandoned future keeps no task alive.
    wakers: Vec<(u64, Waker)>,
    /// The ticket the next waiting [`Recv`] future gets.
    next_ticket: u64,
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

    /// Registers (or updates) the waker of the future holding `ticket`, handing out a ticket if it has none.
    fn wait(&mut self, ticket: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *ticket
            && let Some((_, registered)) = self.wakers.iter_mut().find(|(t, _)| *t == id)
        {
            // Polled again, perhaps by another task: only the newest waker is to be woken.
            if !registered.will_wake(waker) {
                registered.clone_from(waker);
            }
            return;
        }
        let id = *ticket.get_or_insert_with(|| {
            self.next_ticket += 1;
            self.next_ticket
        });
        self.wakers.push((id, waker.clone()));
    }

    /// Forgets the waker registered under `ticket`, if it is still there.
    fn stop_waiting(&mut self, ticket: u64) {
        if let Some(at) = self.wakers.iter().position(|(t, _)| *t == ticket) {
            self.wakers.swap_remove(at);
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

impl Inbox {
    fn new(state: State) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(state),
            ready: Condvar::new(),
        })
    }

    /// Changes the state under its lock, then wakes every reader waiting on it.
    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state.lock();
        change(&mut state);
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.ready.notify_all();
        wakers.into_iter().for_each(|(_, waker)| waker.wake());
    }
}

impl Queue {
    /// A new, open queue without receivers.
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Where the monitor puts the error it hits.
    pub(crate) fn errors(&self) -> &ErrorSlot {
        &self.errors
    }

    /// Adds an event to every receiver, folding older pending ones to stay within [`MAX_PENDING`]. Never
    /// blocks on readers (each lock is only ever held for a few instructions).
    pub(crate) fn push(&self, event: Event) {
        let mut hub = self.hub.lock();
        if hub.closed {
            return;
        }
        if hub.receivers.is_empty()
            && let Some(early) = hub.early.as_mut()
        {
            early.push(event);
            return;
        }
        hub.receivers.retain(|receiver| match receiver.upgrade() {
            Some(inbox) => {
                inbox.update(|state| state.push(event));
                true
            }
            None => false,
        });
    }

    /// A new receiver: it gets every event pushed from now on (and, if it is the first, those pushed before).
    pub(crate) fn subscribe(self: &Arc<Self>) -> Events {
        let mut hub = self.hub.lock();
        let state = match hub.early.take() {
            Some(early) => early,
            None => State {
                closed: hub.closed,
                ..State::default()
            },
        };
        self.register(&mut hub, state)
    }

    fn register(self: &Arc<Self>, hub: &mut Hub, state: State) -> Events {
        let inbox = Inbox::new(state);
        hub.receivers.retain(|receiver| receiver.strong_count() > 0);
        hub.receivers.push(Arc::downgrade(&inbox));
        Events {
            link: Some((Arc::clone(self), inbox)),
        }
    }

    /// True once [`Queue::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.hub.lock().closed
    }

    /// Marks the queue closed: readers take what is pending, then see it disconnected.
    pub(crate) fn close(&self) {
        let mut hub = self.hub.lock();
        hub.closed = true;
        if let Some(early) = hub.early.as_mut() {
            early.closed = true;
        }
        for inbox in hub.receivers.iter().filter_map(Weak::upgrade) {
            inbox.update(|state| state.closed = true);
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            receivers: Vec::new(),
            early: Some(State::default()),
            closed: false,
        }
    }
}

/// A receiver of a monitor's [`Event`]s.
///
/// Every receiver gets every event from the moment it was made: one from `events()` starts empty (the first
/// one a monitor hands out also gets what happened before it, such as `Running` for a device found running), a
/// clone starts with a copy of what is pending in the original. Once the monitor stops (the device was
/// closed, or the monitor failed; see the device's read error), the pending events can still be taken, after
/// which the receiver reports that it is disconnected. Receivers of unmonitored devices are disconnected from
/// the start ([`Events::closed`]).
///
/// Wait for events by blocking ([`recv`](Self::recv), [`recv_timeout`](Self::recv_timeout), [`iter`](Self::iter))
/// or in async code ([`recv_async`](Self::recv_async), with any executor).
#[derive(Debug)]
pub struct Events {
    /// The monitor's queue (to clone into) and this receiver's inbox; `None` for [`Events::closed`].
    link: Option<(Arc<Queue>, Arc<Inbox>)>,
}

impl Clone for Events {
    /// Another receiver that sees the same events from now on, starting with a copy of the pending ones.
    fn clone(&self) -> Self {
        let Some((queue, inbox)) = &self.link else {
            return Self::closed();
        };
        let mut hub = queue.hub.lock();
        let state = {
            let mine = inbox.state.lock();
            State {
                events: mine.events.clone(),
                closed: mine.closed,
                ..State::default()
            }
        };
        queue.register(&mut hub, state)
    }
}

impl Events {
    /// A receiver that never yields an event: what an unmonitored device gives.
    ///
    /// ```
    /// let events = tun_events::Events::closed();
    /// assert_eq!(events.recv(), None);
    /// ```
    #[must_use]
    pub const fn closed() -> Self {
        Self { link: None }
    }

    fn inbox(&self) -> Option<&Inbox> {
        self.link.as_ref().map(|(_, inbox)| &**inbox)
    }

    /// Waits for the next event; `None` once the monitor has stopped and nothing is pending.
    #[must_use]
    pub fn recv(&self) -> Option<Event> {
        let inbox = self.inbox()?;
        let mut state = inbox.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Some(event);
            }
            if state.closed {
                return None;
            }
            inbox.ready.wait(&mut state);
        }
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let inbox = self.inbox().ok_or(RecvTimeoutError::Disconnected)?;
        // A timeout too large for an Instant is as good as forever.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = inbox.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Ok(event);
            }
            if state.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            match deadline {
                Some(deadline) => {
                    if inbox.ready.wait_until(&mut state, deadline).timed_out()
                        && state.events.is_empty()
                        && !state.closed
                    {
                        return Err(RecvTimeoutError::Timeout);
                    }
                }
                None => inbox.ready.wait(&mut state),
            }
        }
    }

    /// Takes the next event if one is pending, without waiting.
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        let inbox = self.inbox().ok_or(TryRecvError::Disconnected)?;
        let mut state = inbox.state.lock();
        match state.events.pop_front() {
            Some(event) => Ok(event),
            None if state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Waits for the next event without blocking the thread: the future resolves to the event, or to `None`
    /// once the monitor has stopped and nothing is pending. It works with any executor (the monitor wakes the
    /// task through its `Waker`; no thread or timer of its own). Dropping it loses no event and keeps
    /// nothing: the task's waker goes with it.
    ///
    /// ```no_run
    /// # async fn watch(events: tun_events::Events) {
    /// while let Some(event) = events.recv_async().await {
    ///     println!("link: {event:?}");
    /// }
    /// # }
    /// ```
    pub fn recv_async(&self) -> Recv<'_> {
        Recv {
            events: self,
            ticket: None,
        }
    }

    /// How many events wait to be read (never more than [`MAX_PENDING`]).
    #[must_use]
    pub fn pending(&self) -> usize {
        self.inbox()
            .map_or(0, |inbox| inbox.state.lock().events.len())
    }

    /// True once the monitor has stopped; events it queued before may still be pending.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inbox().is_none_or(|inbox| inbox.state.lock().closed)
    }

    /// Takes the error the monitor hit, if any (one receiver takes it; cheap when there is none). A fatal
    /// one stopped the monitor: [`recv`](Self::recv) then ends with `None` once the pending events are read,
    /// and this says why.
    pub fn take_error(&self) -> Option<crate::MonitorError> {
        self.link.as_ref()?.0.errors.take()
    }

    /// A blocking iterator over the events, ending when the monitor stops.
    #[must_use]
    pub const fn iter(&self) -> Iter<'_> {
        Iter { events: self }
    }
}

/// The future of [`Events::recv_async`]: the next event, or `None` once the monitor has stopped and nothing
/// is pending.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a> {
    events: &'a Events,
    /// Where this future's waker is registered in the inbox, once it has waited.
    ticket: Option<u64>,
}

impl Future for Recv<'_> {
    type Output = Option<Event>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        let Some(inbox) = this.events.inbox() else {
            return Poll::Ready(None);
        };
        let mut state = inbox.state.lock();
        let ready = match state.events.pop_front() {
            Some(event) => Some(Some(event)),
            None if state.closed => Some(None),
            None => None,
        };
        match ready {
            Some(output) => {
                if let Some(ticket) = this.ticket.take() {
                    state.stop_waiting(ticket);
                }
                Poll::Ready(output)
            }
            None => {
                state.wait(&mut this.ticket, cx.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for Recv<'_> {
    /// An abandoned future (a timeout passed, a `select!` took another branch) takes its waker with it, so
    /// that the task it would have woken can be freed now rather than at the next event.
    fn drop(&mut self) {
        if let (Some(ticket), Some(inbox)) = (self.ticket, self.events.inbox()) {
            inbox.state.lock().stop_waiting(ticket);
        }
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
    use Event::{MtuUpdate, NotRunning, Running};

    fn queue_with(events: &[Event]) -> (Arc<Queue>, Events) {
        let queue = Queue::new();
        for event in events {
            queue.push(*event);
        }
        let receiver = queue.subscribe();
        (queue, receiver)
    }

    fn drain(events: &Events) -> Vec<Event> {
        std::iter::from_fn(|| events.try_recv().ok())
            .take(MAX_PENDING + 1)
            .collect()
    }

    #[test]
    fn events_are_received_in_order() {
        let (_queue, events) = queue_with(&[Running, MtuUpdate(1400), NotRunning]);
        assert_eq!(drain(&events), vec![Running, MtuUpdate(1400), NotRunning]);
    }

    #[test]
    fn newer_mtu_replaces_an_unread_older_one() {
        let (_queue, events) = queue_with(&[MtuUpdate(1400), Running, MtuUpdate(1300)]);
        assert_eq!(drain(&events), vec![Running, MtuUpdate(1300)]);
    }

    #[test]
    fn unread_flaps_fold_to_the_bound_and_end_in_the_newest_state() {
        let queue = Queue::new();
        let events = queue.subscribe();
        for i in 0..1001 {
            queue.push(if i % 2 == 0 { Running } else { NotRunning });
            queue.push(MtuUpdate(1000 + i));
            assert!(events.pending() <= MAX_PENDING);
        }
        let pending = drain(&events);
        assert_eq!(pending, vec![Running, NotRunning, Running, MtuUpdate(2000)]);
    }

    #[test]
    fn folded_transitions_still_alternate_from_the_readers_last_state() {
        let (queue, events) = queue_with(&[Running]);
        assert_eq!(events.try_recv(), Ok(Running));
        for event in [NotRunning, Running, NotRunning, Running, NotRunning] {
            queue.push(event);
        }
        // The reader last saw Running; what remains must start with NotRunning and alternate to the final NotRunning.
        assert_eq!(drain(&events), vec![NotRunning, Running, NotRunning]);
    }

    #[test]
    fn pending_events_survive_close_then_receiver_disconnects() {
        let (queue, events) = queue_with(&[Running]);
        queue.close();
        assert!(events.is_closed());
        assert_eq!(events.recv(), Some(Running));
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
        queue.push(Running);
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
        let (seen, arrived) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            events
                .iter()
                .inspect(|event| seen.send(*event).unwrap())
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(20));
        queue.push(Running);
        // Woken by the push itself, not only by the close that follows.
        assert_eq!(arrived.recv_timeout(Duration::from_secs(5)), Ok(Running));
        queue.close();
        assert_eq!(reader.join().unwrap(), vec![Running]);
    }

    #[test]
    fn every_receiver_sees_every_event() {
        let (queue, first) = queue_with(&[]);
        let second = queue.subscribe();
        queue.push(Running);
        queue.push(NotRunning);
        assert_eq!(drain(&first), vec![Running, NotRunning]);
        assert_eq!(drain(&second), vec![Running, NotRunning]);
    }

    #[test]
    fn a_clone_starts_with_the_pending_events_then_sees_every_new_one() {
        let (queue, events) = queue_with(&[Running, NotRunning]);
        assert_eq!(events.try_recv(), Ok(Running));
        let other = events.clone();
        queue.push(MtuUpdate(1400));
        assert_eq!(drain(&events), vec![NotRunning, MtuUpdate(1400)]);
        assert_eq!(drain(&other), vec![NotRunning, MtuUpdate(1400)]);
    }

    #[test]
    fn events_before_the_first_receiver_go_to_it_and_not_to_later_ones() {
        let (queue, first) = queue_with(&[Running]);
        let later = queue.subscribe();
        assert_eq!(drain(&first), vec![Running]);
        assert_eq!(later.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn dropped_receivers_are_forgotten_and_a_receiver_made_after_close_is_disconnected() {
        let (queue, events) = queue_with(&[]);
        drop(queue.subscribe());
        queue.push(Running);
        assert_eq!(queue.hub.lock().receivers.len(), 1);
        queue.close();
        assert_eq!(events.recv(), Some(Running));
        assert_eq!(
            queue.subscribe().try_recv(),
            Err(TryRecvError::Disconnected)
        );
    }

    #[test]
    fn receivers_made_and_dropped_while_the_link_is_quiet_do_not_pile_up() {
        let (queue, events) = queue_with(&[]);
        for _ in 0..1000 {
            drop(queue.subscribe());
            drop(events.clone());
        }
        assert!(queue.hub.lock().receivers.len() <= 2);
    }

    /// Polls `future` to completion on this thread, parking between polls (a minimal executor).
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    #[test]
    fn async_recv_is_woken_by_a_push_and_by_close() {
        let (queue, events) = queue_with(&[]);
        let (seen, arrived) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let first = block_on(events.recv_async());
            seen.send(first).unwrap();
            (first, block_on(events.recv_async()))
        });
        std::thread::sleep(Duration::from_millis(20));
        queue.push(Running);
        // Woken by the push itself, not only by the close that follows.
        assert_eq!(
            arrived.recv_timeout(Duration::from_secs(5)),
            Ok(Some(Running))
        );
        queue.close();
        assert_eq!(reader.join().unwrap(), (Some(Running), None));
    }

    #[test]
    fn pending_async_recv_registers_its_waker_once() {
        let (queue, events) = queue_with(&[]);
        let count = Arc::new(Count(0.into()));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let mut recv = events.recv_async();
        for _ in 0..3 {
            assert!(Pin::new(&mut recv).poll(&mut cx).is_pending());
        }
        assert_eq!(events.inbox().unwrap().state.lock().wakers.len(), 1);
        queue.push(MtuUpdate(1280));
        assert_eq!(wakes(&count), 1);
        assert_eq!(
            Pin::new(&mut recv).poll(&mut cx),
            Poll::Ready(Some(MtuUpdate(1280)))
        );
        assert!(events.inbox().unwrap().state.lock().wakers.is_empty());
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn wakes(count: &Count) -> usize {
        count.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn dropped_pending_async_recv_leaves_no_waker_and_others_are_still_woken() {
        let (queue, events) = queue_with(&[]);
        let (kept_count, dropped_count) = (Arc::new(Count(0.into())), Arc::new(Count(0.into())));
        let (kept_waker, dropped_waker) = (
            Waker::from(Arc::clone(&kept_count)),
            Waker::from(Arc::clone(&dropped_count)),
        );
        let mut kept = events.recv_async();
        assert!(
            Pin::new(&mut kept)
                .poll(&mut Context::from_waker(&kept_waker))
                .is_pending()
        );
        // Two abandoned futures, one of them of the same task as the kept one.
        for waker in [&dropped_waker, &kept_waker] {
            let mut abandoned = events.recv_async();
            assert!(
                Pin::new(&mut abandoned)
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        assert_eq!(events.inbox().unwrap().state.lock().wakers.len(), 1);
        // The abandoned future's task is no longer referenced (the count's only holders are the test's).
        assert_eq!(Arc::strong_count(&dropped_count), 2);
        queue.push(Running);
        assert_eq!((wakes(&kept_count), wakes(&dropped_count)), (1, 0));
        assert_eq!(
            Pin::new(&mut kept).poll(&mut Context::from_waker(&kept_waker)),
            Poll::Ready(Some(Running))
        );
    }

    #[test]
    fn async_recv_polled_by_another_task_wakes_that_task_only() {
        let (queue, events) = queue_with(&[]);
        let (first_count, second_count) = (Arc::new(Count(0.into())), Arc::new(Count(0.into())));
        let (first, second) = (
            Waker::from(Arc::clone(&first_count)),
            Waker::from(Arc::clone(&second_count)),
        );
        let mut recv = events.recv_async();
        assert!(
            Pin::new(&mut recv)
                .poll(&mut Context::from_waker(&first))
                .is_pending()
        );
        assert!(
            Pin::new(&mut recv)
                .poll(&mut Context::from_waker(&second))
                .is_pending()
        );
        assert_eq!(events.inbox().unwrap().state.lock().wakers.len(), 1);
        queue.push(Running);
        assert_eq!((wakes(&first_count), wakes(&second_count)), (0, 1));
    }

    #[test]
    fn the_monitors_error_is_taken_from_a_receiver_once() {
        let queue = Queue::new();
        let events = queue.subscribe();
        let other = events.clone();
        assert!(events.take_error().is_none());
        queue.errors().store(crate::MonitorError::Lost {
            device: "t0".into(),
            attempts: 3,
        });
        queue.close();
        assert!(matches!(
            other.take_error(),
            Some(crate::MonitorError::Lost { attempts: 3, .. })
        ));
        assert!(events.take_error().is_none(), "taken once");
        assert_eq!(
            events.recv(),
            None,
            "a failed monitor disconnects its receivers"
        );
        assert!(Events::closed().take_error().is_none());
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
