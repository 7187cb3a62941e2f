//! The monitor's one pending error, shared by the thread that hits it and the handle that reports it.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::MonitorError;

/// The one pending error, with an atomic flag so that checking for none costs no lock.
#[derive(Debug, Default)]
pub(crate) struct ErrorSlot {
    set: AtomicBool,
    error: Mutex<Option<MonitorError>>,
}

impl ErrorSlot {
    /// Keeps `error` unless an earlier one is still untaken: the first error is the cause, later ones are
    /// usually its consequences, and the slot stays bounded.
    pub(crate) fn store(&self, error: MonitorError) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(error);
        }
        self.set.store(true, Ordering::Release);
    }

    pub(crate) fn take(&self) -> Option<MonitorError> {
        if !self.set.load(Ordering::Acquire) {
            return None;
        }
        let mut slot = self.error.lock();
        self.set.store(false, Ordering::Release);
        slot.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_slot_keeps_the_first_error_until_taken() {
        let slot = ErrorSlot::default();
        assert!(slot.take().is_none());
        slot.store(MonitorError::Lost {
            device: "a".into(),
            attempts: 1,
        });
        slot.store(MonitorError::Lost {
            device: "b".into(),
            attempts: 2,
        });
        assert!(matches!(
            slot.take(),
            Some(MonitorError::Lost { attempts: 1, .. })
        ));
        assert!(slot.take().is_none());
    }
}
