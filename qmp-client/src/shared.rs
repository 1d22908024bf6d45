//! State shared by the connection task and every handle: the event hub,
//! the close reason and the greeting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use qmp_proto::{Event, Greeting};
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::error::Disconnect;

/// An event with its arrival number and whether a waiter consumed it.
#[derive(Debug)]
pub(crate) struct Arrived {
    pub(crate) seq: u64,
    pub(crate) event: Event,
    taken: AtomicBool,
}

impl Arrived {
    /// Marks the event consumed by a waiter; false if another took it.
    pub(crate) fn take(&self) -> bool {
        !self.taken.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn is_taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct Hub {
    next_seq: u64,
    backlog: VecDeque<Arc<Arrived>>,
    backlog_limit: usize,
    sender: broadcast::Sender<Arc<Arrived>>,
}

/// What the connection task and the handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    hub: Mutex<Hub>,
    closed: watch::Sender<Option<Disconnect>>,
    greeting: OnceLock<Greeting>,
    /// Bytes of encoded commands waiting to be written.
    unwritten: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Arc<Self> {
        let (sender, _) = broadcast::channel(config.event_buffer.max(1));
        let (closed, _) = watch::channel(None);
        Arc::new(Self {
            hub: Mutex::new(Hub {
                next_seq: 0,
                backlog: VecDeque::new(),
                backlog_limit: config.event_backlog,
                sender,
            }),
            closed,
            greeting: OnceLock::new(),
            unwritten: AtomicUsize::new(0),
        })
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        // A panic elsewhere cannot leave the hub inconsistent: every update
        // is a single push or pop.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an event for the backlog and every subscriber. Never waits.
    pub(crate) fn publish(&self, event: Event) {
        let mut hub = self.hub();
        let arrived = Arc::new(Arrived {
            seq: hub.next_seq,
            event,
            taken: AtomicBool::new(false),
        });
        hub.next_seq += 1;
        if hub.backlog_limit > 0 {
            while hub.backlog.len() >= hub.backlog_limit {
                hub.backlog.pop_front();
            }
            hub.backlog.push_back(arrived.clone());
        }
        // No subscriber is fine: the backlog keeps it for waiters.
        let _ = hub.sender.send(arrived);
    }

    /// A live subscription plus the number of the next event, taken
    /// atomically with respect to [`publish`](Self::publish).
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<Arc<Arrived>>, u64) {
        let hub = self.hub();
        (hub.sender.subscribe(), hub.next_seq)
    }

    /// Takes the oldest untaken backlog event numbered at least `min_seq`
    /// that satisfies `wanted`.
    pub(crate) fn take_from_backlog(
        &self,
        min_seq: u64,
        wanted: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let mut hub = self.hub();
        hub.backlog.retain(|arrived| !arrived.is_taken());
        let index = hub.backlog.iter().position(|arrived| {
            arrived.seq >= min_seq && wanted(&arrived.event) && !arrived.is_taken()
        })?;
        let arrived = hub.backlog.remove(index)?;
        arrived.take().then(|| arrived.event.clone())
    }

    /// Takes every untaken backlog event, oldest first, and empties the backlog.
    pub(crate) fn drain_backlog(&self) -> Vec<Event> {
        let mut hub = self.hub();
        hub.backlog
            .drain(..)
            .filter(|arrived| arrived.take())
            .map(|arrived| arrived.event.clone())
            .collect()
    }

    /// Records why the connection ended; the first reason wins.
    pub(crate) fn close(&self, reason: Disconnect) {
        self.closed.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    pub(crate) fn close_reason(&self) -> Option<Disconnect> {
        self.closed.borrow().clone()
    }

    pub(crate) fn watch_closed(&self) -> watch::Receiver<Option<Disconnect>> {
        self.closed.subscribe()
    }

    pub(crate) fn set_unwritten(&self, bytes: usize) {
        self.unwritten.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn unwritten(&self) -> usize {
        self.unwritten.load(Ordering::Relaxed)
    }

    pub(crate) fn set_greeting(&self, greeting: Greeting) {
        let _ = self.greeting.set(greeting);
    }

    pub(crate) fn greeting(&self) -> Option<&Greeting> {
        self.greeting.get()
    }
}

/// Resolves when `closed` holds a reason, and returns it.
pub(crate) async fn wait_closed(mut closed: watch::Receiver<Option<Disconnect>>) -> Disconnect {
    match closed.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone().unwrap_or(Disconnect::DriverGone),
        // The sender lives in `Shared`, which the caller holds.
        Err(_) => Disconnect::DriverGone,
    }
}
