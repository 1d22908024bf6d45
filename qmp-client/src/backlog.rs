//! The event backlog as `QEMUMachine` keeps it: `get_qmp_events` (list and
//! drain), `get_qmp_event` (the oldest, waiting or not) and `clear_events`.
//!
//! Events taken here are consumed, as a [`Client::wait_event`] consumes
//! the event it returns: each backlog event goes to one taker. Subscribers
//! ([`Client::events`]) are not affected: they see every event.

use std::time::Duration;

use qmp_proto::Event;

use crate::client::Client;
use crate::error::Error;
use crate::events::{Received, receive};

impl Client {
    /// Every event received and not yet taken, oldest first, and empties
    /// the backlog (`QEMUMachine.get_qmp_events(wait=False)`). The backlog
    /// keeps the latest [`Config::event_backlog`](crate::Config::event_backlog)
    /// events. Events that arrived before the connection ended are still
    /// returned after it ended.
    pub fn take_events(&self) -> Vec<Event> {
        self.shared().drain_backlog()
    }

    /// [`take_events`](Self::take_events), after waiting up to `timeout`
    /// (`None`: as long as the connection lives) for at least one event
    /// (`QEMUMachine.get_qmp_events(wait=True)`).
    ///
    /// # Errors
    ///
    /// [`Error::EventTimeout`] (named `"any event"`) when none came in
    /// time; [`Error::Disconnected`] when the connection ended with no
    /// event left to take.
    pub async fn wait_events(&self, timeout: Option<Duration>) -> Result<Vec<Event>, Error> {
        let first = self.next_event(timeout).await?;
        let mut events = vec![first];
        events.extend(self.take_events());
        Ok(events)
    }

    /// Takes the oldest event not yet taken, waiting up to `timeout`
    /// (`None`: as long as the connection lives) when there is none
    /// (`QEMUMachine.get_qmp_event(wait=…)`; for `wait=False` see
    /// [`try_next_event`](Self::try_next_event)).
    ///
    /// # Errors
    ///
    /// As [`wait_events`](Self::wait_events).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future takes nothing.
    pub async fn next_event(&self, timeout: Option<Duration>) -> Result<Event, Error> {
        let shared = self.shared();
        // Subscribe before looking, so an event that arrives in between is seen.
        let (mut receiver, _) = shared.subscribe();
        let mut closed = shared.watch_closed();
        let search = async {
            loop {
                if let Some(event) = shared.take_from_backlog(0, |_| true) {
                    return Ok(event);
                }
                match receive(&mut receiver, &mut closed).await {
                    Received::Event(arrived) => {
                        if arrived.take() {
                            return Ok(arrived.event.clone());
                        }
                    }
                    // What the live buffer lost is looked for in the backlog.
                    Received::Lagged(_) => {}
                    Received::Closed(reason) => {
                        return shared
                            .take_from_backlog(0, |_| true)
                            .ok_or(Error::Disconnected(reason));
                    }
                }
            }
        };
        match timeout {
            None => search.await,
            Some(limit) => tokio::time::timeout(limit, search)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::EventTimeout {
                        name: "any event".into(),
                        filter: None,
                        timeout: limit,
                    })
                }),
        }
    }

    /// Takes the oldest event not yet taken, if there is one, without
    /// waiting (`QEMUMachine.get_qmp_event(wait=False)`).
    pub fn try_next_event(&self) -> Option<Event> {
        self.shared().take_from_backlog(0, |_| true)
    }

    /// Forgets every event received so far (`QEMUMachine.clear_events`):
    /// later [`wait_event`](Self::wait_event)s and takes see only newer ones.
    pub fn clear_events(&self) {
        let dropped = self.shared().drain_backlog().len();
        tracing::debug!(dropped, "cleared the event backlog");
    }
}
