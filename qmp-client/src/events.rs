//! Event subscriptions, `wait_event` and `QEMUMachine.event_match`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use qmp_proto::Event;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::ReusableBoxFuture;

use crate::error::{Disconnect, Error};
use crate::shared::{Arrived, Shared, wait_closed};

/// A subscriber fell behind and `missed` events were dropped for it. The
/// subscription goes on with the oldest event still buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the event subscriber fell behind and missed {missed} events")]
pub struct Lagged {
    /// How many events this subscriber lost.
    pub missed: u64,
}

type Next = (
    Option<Result<Event, Lagged>>,
    broadcast::Receiver<Arc<Arrived>>,
    watch::Receiver<Option<Disconnect>>,
);

/// Every event from the moment of subscribing, through a bounded buffer
/// ([`Config::event_buffer`](crate::Config::event_buffer)).
///
/// A slow subscriber never delays command replies or other subscribers: it
/// is told [`Lagged`] and continues. The stream ends after the connection
/// closes, once the events that arrived before the close are delivered.
/// Also a [`Stream`].
pub struct EventStream {
    next: ReusableBoxFuture<'static, Next>,
    done: bool,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("done", &self.done)
            .finish()
    }
}

impl EventStream {
    pub(crate) fn new(shared: &Shared) -> Self {
        let (receiver, _) = shared.subscribe();
        let closed = shared.watch_closed();
        Self {
            next: ReusableBoxFuture::new(next_event(receiver, closed)),
            done: false,
        }
    }

    /// The next event, `Err(Lagged)` after a loss, `None` once the
    /// connection is closed and every earlier event was delivered.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no event.
    pub async fn recv(&mut self) -> Option<Result<Event, Lagged>> {
        futures::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Lagged>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let (item, receiver, closed) = std::task::ready!(self.next.poll(cx));
        if item.is_none() {
            self.done = true;
        } else {
            self.next.set(next_event(receiver, closed));
        }
        Poll::Ready(item)
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

async fn next_event(
    mut receiver: broadcast::Receiver<Arc<Arrived>>,
    mut closed: watch::Receiver<Option<Disconnect>>,
) -> Next {
    let item = match receive(&mut receiver, &mut closed).await {
        Received::Event(arrived) => Some(Ok(arrived.event.clone())),
        Received::Lagged(missed) => Some(Err(Lagged { missed })),
        Received::Closed(_) => None,
    };
    (item, receiver, closed)
}

pub(crate) enum Received {
    Event(Arc<Arrived>),
    Lagged(u64),
    Closed(Disconnect),
}

/// The next event, or the close reason once the connection is closed and
/// the events that arrived before the close are consumed.
pub(crate) async fn receive(
    receiver: &mut broadcast::Receiver<Arc<Arrived>>,
    closed: &mut watch::Receiver<Option<Disconnect>>,
) -> Received {
    use broadcast::error::{RecvError, TryRecvError};
    tokio::select! {
        biased;
        received = receiver.recv() => match received {
            Ok(arrived) => Received::Event(arrived),
            Err(RecvError::Lagged(missed)) => Received::Lagged(missed),
            Err(RecvError::Closed) => Received::Closed(Disconnect::DriverGone),
        },
        reason = wait_closed(closed.clone()) => match receiver.try_recv() {
            // Events published before the close are still delivered.
            Ok(arrived) => Received::Event(arrived),
            Err(TryRecvError::Lagged(missed)) => Received::Lagged(missed),
            Err(TryRecvError::Empty | TryRecvError::Closed) => Received::Closed(reason),
        },
    }
}

/// A wait for one event, subscribed at creation: create it *before* sending
/// the command whose event you await, so the event cannot be missed.
///
/// Made by [`Client::event_waiter`](crate::Client::event_waiter); finish
/// with [`EventWaiter::wait`].
#[derive(Debug)]
pub struct EventWaiter {
    shared: Arc<Shared>,
    receiver: broadcast::Receiver<Arc<Arrived>>,
    closed: watch::Receiver<Option<Disconnect>>,
    min_seq: u64,
    name: String,
    filter: Option<Value>,
}

impl EventWaiter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        name: &str,
        filter: Option<&Value>,
        include_backlog: bool,
    ) -> Self {
        let (receiver, next_seq) = shared.subscribe();
        let closed = shared.watch_closed();
        Self {
            shared,
            receiver,
            closed,
            min_seq: if include_backlog { 0 } else { next_seq },
            name: name.to_owned(),
            filter: filter.cloned(),
        }
    }

    fn wanted(&self, event: &Event) -> bool {
        event.name == self.name && self.filter.as_ref().is_none_or(|f| matches_event(event, f))
    }

    /// Waits up to `timeout` (`None`: forever) for a matching event and
    /// consumes it: no other waiter gets the same event.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future consumes nothing.
    pub async fn wait(mut self, timeout: Option<Duration>) -> Result<Event, Error> {
        let search = self.search();
        let found = match timeout {
            Some(limit) => match tokio::time::timeout(limit, search).await {
                Ok(found) => found,
                Err(_) => {
                    return Err(Error::EventTimeout {
                        name: self.name.clone(),
                        filter: self.filter.clone(),
                        timeout: limit,
                    });
                }
            },
            None => search.await,
        };
        found.map_err(Error::Disconnected)
    }

    async fn search(&mut self) -> Result<Event, Disconnect> {
        if let Some(event) = self.take_backlogged() {
            return Ok(event);
        }
        loop {
            match receive(&mut self.receiver, &mut self.closed).await {
                Received::Event(arrived) => {
                    if arrived.seq >= self.min_seq && self.wanted(&arrived.event) && arrived.take()
                    {
                        return Ok(arrived.event.clone());
                    }
                }
                // What the live buffer lost may still be in the backlog.
                Received::Lagged(_) => {
                    if let Some(event) = self.take_backlogged() {
                        return Ok(event);
                    }
                }
                Received::Closed(reason) => return Err(reason),
            }
        }
    }

    fn take_backlogged(&self) -> Option<Event> {
        self.shared
            .take_from_backlog(self.min_seq, |event| self.wanted(event))
    }
}

/// Whether `event` matches `filter` in the sense of QEMU's
/// `QEMUMachine.event_match`, with the event seen as the JSON QEMU sent
/// (`{"event": .., "data": {..}, "timestamp": {..}}`).
pub fn matches_event(event: &Event, filter: &Value) -> bool {
    let Value::Object(filter) = filter else {
        return filter.is_null();
    };
    filter.iter().all(|(key, wanted)| match key.as_str() {
        "event" => event_match(&Value::String(event.name.clone()), wanted),
        "data" => match wanted {
            Value::Object(wanted) => wanted.iter().all(|(key, wanted)| {
                event
                    .data
                    .get(key)
                    .is_some_and(|value| event_match(value, wanted))
            }),
            other => other.is_null(),
        },
        "timestamp" => {
            let timestamp = serde_json::json!({
                "seconds": event.timestamp.seconds,
                "microseconds": event.timestamp.microseconds,
            });
            event_match(&timestamp, wanted)
        }
        _ => false,
    })
}

/// QEMU's `QEMUMachine.event_match`: whether `event` is a recursive
/// superset of `filter`.
///
/// A `null` filter matches anything; an object filter matches an object
/// holding every key of the filter with a matching value (recursively);
/// any other filter must equal the value. As in QEMU, `null` cannot be
/// matched explicitly.
///
/// ```
/// use serde_json::json;
/// use qmp_client::event_match;
/// assert!(event_match(&json!({"foo": {"bar": 1, "rab": 2}}), &json!({"foo": {"rab": 2}})));
/// assert!(!event_match(&json!({"foo": {"bar": 1}}), &json!({"foo": {"abc": null}})));
/// ```
pub fn event_match(event: &Value, filter: &Value) -> bool {
    match filter {
        Value::Null => true,
        Value::Object(filter) => match event {
            Value::Object(event) => filter.iter().all(|(key, wanted)| {
                event
                    .get(key)
                    .is_some_and(|value| event_match(value, wanted))
            }),
            _ => false,
        },
        other => other == event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmp_proto::{JsonObject, Timestamp};
    use serde_json::json;

    /// The examples documented on `QEMUMachine.event_match` (qemu
    /// python/qemu/machine/machine.py), filter on the left.
    #[test]
    fn qemu_machine_event_match_examples() {
        // None matches any object.
        assert!(event_match(&json!({"foo": {"bar": 1}}), &Value::Null));
        // {"foo": None} matches {"foo": {"bar": 1}}
        assert!(event_match(
            &json!({"foo": {"bar": 1}}),
            &json!({"foo": null})
        ));
        // {"foo": None} matches {"foo": 5}
        assert!(event_match(&json!({"foo": 5}), &json!({"foo": null})));
        // {"foo": {"abc": None}} does not match {"foo": {"bar": 1}}
        assert!(!event_match(
            &json!({"foo": {"bar": 1}}),
            &json!({"foo": {"abc": null}})
        ));
        // {"foo": {"rab": 2}} matches {"foo": {"bar": 1, "rab": 2}}
        assert!(event_match(
            &json!({"foo": {"bar": 1, "rab": 2}}),
            &json!({"foo": {"rab": 2}})
        ));
    }

    #[test]
    fn values_must_be_equal_and_keys_present() {
        assert!(!event_match(&json!({"foo": 5}), &json!({"foo": 6})));
        assert!(!event_match(&json!({"foo": 5}), &json!({"bar": null})));
        assert!(!event_match(&json!(5), &json!({"foo": null})));
        assert!(event_match(&json!({"a": [1, 2]}), &json!({"a": [1, 2]})));
        assert!(!event_match(&json!({"a": [1, 2]}), &json!({"a": [1]})));
        assert!(event_match(&json!({}), &json!({})));
    }

    #[test]
    fn events_match_as_the_json_qemu_sent() {
        let data: JsonObject = json!({"device": "d0", "path": "/machine/peripheral/d0"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let event = Event::new(
            "DEVICE_DELETED",
            data,
            Timestamp {
                seconds: 1,
                microseconds: 2,
            },
        );
        assert!(matches_event(&event, &json!({"data": {"device": "d0"}})));
        assert!(matches_event(&event, &json!({"event": "DEVICE_DELETED"})));
        assert!(matches_event(&event, &json!({"timestamp": {"seconds": 1}})));
        assert!(matches_event(&event, &Value::Null));
        assert!(!matches_event(&event, &json!({"data": {"device": "d1"}})));
        assert!(!matches_event(&event, &json!({"data": {"missing": null}})));
        assert!(!matches_event(&event, &json!({"other": null})));
    }
}
