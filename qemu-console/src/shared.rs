//! State shared by the drain task and the console handle.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::history::{End, History};
use crate::text::escape;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    error_tail: usize,
    history: Mutex<History>,
    /// Bumped after every change of `history` (bytes or end), so waiters
    /// that subscribed before looking never miss a wake-up.
    changes: watch::Sender<()>,
    log_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(name: String, error_tail: usize, history: History) -> Self {
        Self {
            name,
            error_tail,
            history: Mutex::new(history),
            changes: watch::Sender::new(()),
            log_error: Mutex::new(None),
        }
    }

    /// Locks the history. Nothing panics while holding it, but a poisoned
    /// lock still holds consistent bytes, so poisoning is ignored.
    pub(crate) fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }

    pub(crate) fn push(&self, bytes: &[u8]) {
        self.history().push(bytes);
        self.changes.send_replace(());
    }

    pub(crate) fn finish(&self, end: End) {
        self.history().set_end(end);
        self.changes.send_replace(());
    }

    /// The escaped end of the transcript, for error messages.
    pub(crate) fn escaped_tail(&self, history: &History) -> String {
        escape(history.tail(self.error_tail))
    }

    pub(crate) fn set_log_error(&self, error: String) {
        *self
            .log_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    pub(crate) fn log_error(&self) -> Option<String> {
        self.log_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
