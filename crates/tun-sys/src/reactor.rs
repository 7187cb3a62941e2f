//! An [`Epoll`] registered with tokio's reactor (feature `tokio`): an async wait on all its items at once.
//!
//! tokio's registration of an fd is `unsafe`: the reactor's state is keyed by the fd, which must refer to the
//! same open file for as long as it is registered. Only the epoll fd is registered here, and it is owned by
//! the registration and never replaced, so the contract holds by construction; the fds whose readiness is
//! wanted are items of the epoll, which the reactor never sees (see [`crate::epoll`]).

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

use crate::epoll::Epoll;

/// Why an [`AsyncEpoll`] could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// No tokio runtime is running on this thread.
    #[error("no tokio runtime is running on this thread")]
    NoRuntime,
    /// The runtime was built without its IO driver (`enable_io` or `enable_all` on its builder).
    #[error("the tokio runtime has no IO driver (build it with enable_io or enable_all)")]
    NoIoDriver,
    /// The reactor refused the fd.
    #[error("epoll registration with the tokio reactor")]
    Io(#[source] io::Error),
}

/// An [`Epoll`] registered with the reactor of the tokio runtime it was made in, for readability: ready
/// whenever one of its items is.
#[derive(Debug)]
pub struct AsyncEpoll(AsyncFd<Epoll>);

impl AsyncEpoll {
    /// Registers `epoll` with the current tokio runtime's reactor.
    ///
    /// tokio panics when the runtime has no IO driver; that panic is caught here and returned as
    /// [`RegisterError::NoIoDriver`] (its message still reaches the panic hook; with `panic = "abort"` the
    /// process aborts, as tokio's own types would make it).
    pub fn register(epoll: Epoll) -> Result<AsyncEpoll, RegisterError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RegisterError::NoRuntime);
        }
        // tokio offers no way to ask a runtime whether it has an IO driver: its registration finds out, by a
        // panic before it changes anything. Nothing is shared with the closure but the epoll it consumes, which
        // unwinding closes.
        let registered = catch_unwind(AssertUnwindSafe(move || {
            // SAFETY: the AsyncFd owns the epoll, whose OwnedFd keeps the same number for the same open file
            // until the AsyncFd is dropped: nothing closes it, nothing can swap its file (`io::retire` and
            // `io::replace` take only a `RetirableFd`, and `Epoll` lends its fd only as a `BorrowedFd`), and this
            // type never hands out the `&mut AsyncFd` that could swap the epoll itself.
            unsafe { AsyncFd::register_with_interest(epoll, Interest::READABLE) }
        }));
        match registered {
            Ok(Ok(fd)) => Ok(AsyncEpoll(fd)),
            Ok(Err(e)) => Err(RegisterError::Io(e.into())),
            Err(panic) if is_io_disabled(panic.as_ref()) => Err(RegisterError::NoIoDriver),
            Err(panic) => resume_unwind(panic),
        }
    }

    /// Waits until an item of the epoll is ready. Clear the guard's readiness once the I/O it stood for has
    /// found nothing to do (`WouldBlock`): the next wait then lasts until something new happens to an item.
    ///
    /// # Errors
    /// The reactor's, when it is shutting down.
    pub async fn ready(&self) -> io::Result<AsyncFdReadyGuard<'_, Epoll>> {
        self.0.readable().await
    }

    /// The epoll, to add items to it.
    pub fn epoll(&self) -> &Epoll {
        self.0.get_ref()
    }
}

/// Whether a panic's payload is tokio's "IO is disabled".
fn is_io_disabled(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    message.is_some_and(|m| m.contains("IO is disabled"))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::os::fd::AsFd;
    use std::task::Poll;
    use std::time::Duration;

    use super::*;
    use crate::wait::{EventFd, Interest};

    #[test]
    fn outside_a_runtime_it_is_refused() {
        let err = AsyncEpoll::register(Epoll::new().unwrap()).unwrap_err();
        assert!(matches!(err, RegisterError::NoRuntime), "{err:?}");
    }

    #[test]
    fn in_a_runtime_without_io_it_is_refused_not_a_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _entered = rt.enter();
        let err = AsyncEpoll::register(Epoll::new().unwrap()).unwrap_err();
        assert!(matches!(err, RegisterError::NoIoDriver), "{err:?}");
    }

    #[test]
    fn an_item_that_becomes_ready_wakes_the_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cancel = EventFd::new().unwrap();
            let registered = AsyncEpoll::register(Epoll::new().unwrap()).unwrap();
            registered
                .epoll()
                .add(cancel.as_fd(), Interest::Read)
                .unwrap();
            let mut ready = std::pin::pin!(registered.ready());
            let first = std::future::poll_fn(|cx| Poll::Ready(ready.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "ready before any item was");
            cancel.signal().unwrap();
            let guard = tokio::time::timeout(Duration::from_secs(10), ready)
                .await
                .expect("woken by the signal")
                .unwrap();
            assert!(guard.ready().is_readable());
        });
    }
}
